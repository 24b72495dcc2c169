/* SPDX-License-Identifier: MIT */
/*
 * Moving bytes from descriptors into lists: zbl_read_fd copies into library
 * memory, zbl_splice_from takes kernel pages into pipe blocks (kind_pipe.c)
 * and copies where the kernel will not. Layer 4 (see zbl_int.h).
 */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "zbl_int.h"

/* First and largest buffer zbl_read_fd allocates per read(2). */
#define READ_CHUNK_BYTES_MIN ((size_t)64 * 1024)
#define READ_CHUNK_BYTES_MAX ((size_t)1024 * 1024)

/*
 * Reads from an O_DIRECT file (docs/DESIGN.md, section "Reading into lists
 * laid out for O_DIRECT"), which takes only aligned offsets, lengths and
 * memory: each piece reads the aligned blocks around the wanted bytes into a
 * new aligned block and keeps the window, so nothing is copied twice. The
 * block is placed so that the window is page-congruent to the list where
 * the memory alignment allows (it does whenever the list's length and the
 * file offset agree modulo mem_align, as when a file is read from its start
 * into an empty list). The position, or *@off, moves past exactly the bytes
 * appended. Same results as read_copy().
 */
static ssize_t read_direct(zbl_t *bl, struct zbl__dio *d, int64_t *off, size_t len, bool some)
{
	size_t total = 0, chunk = READ_CHUNK_BYTES_MIN;
	int64_t pos;
	int err = 0;

	if (off)
		pos = *off;
	else if ((err = zbl__dio_position(d, &pos)) < 0)
		return err;
	while (total < len) {
		size_t want = len - total < chunk ? len - total : chunk;
		size_t head = (uint64_t)pos % d->blk;
		size_t span = (head + want + d->blk - 1) & ~(d->blk - 1);
		size_t align = d->mem_align > ZBL__DIO_PAGE ? d->mem_align : ZBL__DIO_PAGE;
		size_t lead = ((bl->len - head) % ZBL__DIO_PAGE) & ~(d->mem_align - 1);
		struct zbl__block *b;
		ssize_t n;

		if (zbl__reserve(bl, 1) < 0 || !(b = zbl__block_new_aligned(lead + span, align))) {
			err = -ENOMEM;
			break;
		}
		do {
			n = zbl__sys_pread(d->fd, zbl__block_room(b) + lead, span, pos - (int64_t)head);
		} while (n < 0 && errno == EINTR);
		size_t got = n > (ssize_t)head ? (size_t)n - head : 0;
		if (got > want)
			got = want;
		err = n < 0 ? -errno : 0;
		/* The position first: if it cannot move, the bytes are not appended. */
		if (got && !off)
			err = zbl__dio_seek(d, pos + (int64_t)got);
		if (!got || err) {
			zbl__block_put(b);
			break;
		}
		atomic_store_explicit(&b->fill, lead + head + got, memory_order_relaxed);
		zbl__push_seg(bl, b, lead + head, got);
		ZBL__STAT_ADD(bytes_copied_in, got);
		ZBL__STAT_ADD(bytes_direct, got);
		pos += (int64_t)got;
		if (off)
			*off = pos;
		total += got;
		if (some || got < want)
			break; /* ZBL_SOME, or the end of the file */
		if (chunk < READ_CHUNK_BYTES_MAX)
			chunk *= 2;
	}
	return total ? (ssize_t)total : err;
}

/*
 * After read(2) refused a piece with EINVAL: if @fd is an O_DIRECT file, the
 * rest of the @len bytes (@total are in) are read by read_direct(); asked only
 * then, so other descriptors pay nothing. Otherwise the error stands.
 */
static ssize_t read_copy_direct(zbl_t *bl, int fd, int64_t *off, size_t len, bool some,
				size_t total)
{
	struct zbl__dio d;
	int fl = zbl__fd_flags(fd);
	ssize_t r = -EINVAL;

	if (fl >= 0 && (fl & O_DIRECT) && zbl__dio_init(&d, fd, fl)) {
		r = read_direct(bl, &d, off, len - total, some);
		zbl__dio_done(&d);
	}
	if (r < 0)
		return total ? (ssize_t)total : r;
	return (ssize_t)(total + (size_t)r);
}

/*
 * Reads up to @len bytes from @fd (at *off when given) into library memory at
 * the end of the list. Returns bytes appended, 0 at end of file, or -errno
 * when nothing was read; see zbl_read_fd for the stopping rule.
 */
ssize_t zbl__read_copy(zbl_t *bl, int fd, int64_t *off, size_t len, bool some)
{
	size_t total = 0, chunk = READ_CHUNK_BYTES_MIN;

	if (len > SIZE_MAX - bl->len)
		len = SIZE_MAX - bl->len;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (total < len) {
		size_t want = len - total < chunk ? len - total : chunk;
		struct zbl__block *nb;
		struct iovec iov[2];
		size_t n1;
		char *p1;
		int niov = 0, err;
		ssize_t n;

		err = zbl__prepare_append(bl, want, true, &p1, &n1, &nb);
		if (err < 0)
			return total ? (ssize_t)total : err;
		if (n1)
			iov[niov++] = (struct iovec){ p1, n1 };
		if (nb)
			iov[niov++] = (struct iovec){ zbl__block_room(nb), want - n1 };
		do {
			n = zbl__sys_readv(fd, iov, niov, off);
		} while (n < 0 && errno == EINTR);
		err = n < 0 ? -errno : 0;
		if (n <= 0) {
			zbl__commit_append(bl, n1, 0, nb, 0);
			if (err == -EINVAL)
				return read_copy_direct(bl, fd, off, len, some, total);
			if (n == 0 || total)
				break;
			return err;
		}
		size_t got = (size_t)n;
		zbl__commit_append(bl, n1, got < n1 ? got : n1, nb, got > n1 ? got - n1 : 0);
		ZBL__STAT_ADD(bytes_copied_in, got);
		if (off)
			*off += (int64_t)got;
		total += got;
		if (some)
			break; /* ZBL_SOME: what had arrived; another read could wait */
		/* A full read suggests more is waiting: read bigger pieces next time. */
		if (got == want && chunk < READ_CHUNK_BYTES_MAX)
			chunk *= 2;
	}
	return (ssize_t)total;
}

ssize_t zbl_read_fd(zbl_t *bl, int fd, size_t len)
{
	if (!bl || fd < 0)
		return -EINVAL;
	if (len == 0)
		return 0;
	return zbl__read_copy(bl, fd, NULL, len, false);
}

/*
 * Whether splice(2) from @fd cannot work at all, so copying is the only
 * way: the file system or socket type does not support it.
 */
static bool splice_unsupported(int err)
{
	return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP;
}

/* Consecutive "pipe full" verdicts, with no byte moved between, before a pipe is sealed. */
#define PIPE_FULL_VERDICTS 8

/*
 * What one zbl_splice_from call learnt about its source, asked only when a
 * splice first finds nothing there.
 */
struct source {
	bool probed;
	int flags;          /* F_GETFL */
	bool splice_waits;  /* a blocking socket: an empty pipe may wait in splice */
};

static void source_probe(struct source *src, int fd, const int64_t *off)
{
	if (src->probed)
		return;
	src->probed = true;
	src->flags = zbl__fd_flags(fd);
	src->splice_waits = src->flags >= 0 && !(src->flags & O_NONBLOCK) && !off &&
			    !zbl__is_fifo(fd);
}

/*
 * The list's last segment when new bytes can go into its block's pipe: a
 * pipe block with room whose window runs to the block's end.
 */
static struct zbl__seg *open_pipe_tail(zbl_t *bl, size_t *room)
{
	if (!bl->count)
		return NULL;
	struct zbl__seg *s = zbl__seg_at(bl, bl->count - 1);
	if (s->off + s->len != s->b->cap)
		return NULL;
	*room = zbl__pipe_block_room(s->b);
	return *room ? s : NULL;
}

/* Moves the bytes; returns bytes appended, 0 at end of file, or -errno. @some: ZBL_SOME. */
static ssize_t splice_from_fd(zbl_t *bl, int fd, int64_t *off, size_t len, bool some,
			      bool *fallback)
{
	struct source src = { .probed = false };
	size_t total = 0;
	int full_verdicts = 0;

	*fallback = false;
	while (total < len) {
		size_t room = 0;
		struct zbl__seg *tail = open_pipe_tail(bl, &room);
		struct zbl__block *b = tail ? tail->b : NULL;
		struct zbl__pipe p;
		ssize_t moved;
		int err;

		if (!b) {
			if (zbl__reserve(bl, 1) < 0)
				return total ? (ssize_t)total : -ENOMEM;
			err = zbl__pipe_get(&p, 0, false);
			if (err < 0) {
				/* No pipe to be had (descriptors, budget): copy instead. */
				*fallback = true;
				return (ssize_t)total;
			}
			b = zbl__block_new_pipe(&p);
			if (!b) {
				zbl__pipe_put(&p, 0);
				return total ? (ssize_t)total : -ENOMEM;
			}
			room = p.size;
		}
		size_t asked = len - total < room ? len - total : room;
		enum zbl__fill res = zbl__pipe_block_fill(b, fd, off, asked, false, &moved);
		/*
		 * Nothing there yet. A blocking socket source may wait for it in
		 * one blocking splice into an empty pipe, a new block's (a pipe
		 * source stays on non-blocking splices and poll: see
		 * zbl__pipe_block_fill() and zbl__fd_wait()).
		 */
		if (res == ZBL__FILL_EMPTY && !(some && total)) {
			source_probe(&src, fd, off);
			if (!tail && src.splice_waits)
				res = zbl__pipe_block_fill(b, fd, off, asked, true, &moved);
		}
		err = errno;
		if (res == ZBL__FILL_MOVED) {
			if (tail)
				zbl__grow_tail(bl, (size_t)moved);
			else
				zbl__push_seg(bl, b, 0, (size_t)moved);
			if (off)
				*off += moved;
			total += (size_t)moved;
			full_verdicts = 0;
			/* ZBL_SOME: a splice that took less than it could found the source empty. */
			if (some && (size_t)moved < asked)
				return (ssize_t)total;
			continue;
		}
		if (!tail)
			zbl__block_put(b); /* an empty new block: its pipe goes back to the pool */
		switch (res) {
		case ZBL__FILL_PIPE_FULL:
			/*
			 * Only a pipe holding bytes (a tail) can be full: see
			 * zbl__pipe_block_fill(). Data may have arrived between
			 * the EAGAIN and the poll. A pipe out of slots fails
			 * every time, so believe "full" only after it repeats
			 * without any byte moving in between.
			 */
			if (++full_verdicts < PIPE_FULL_VERDICTS)
				continue;
			zbl__pipe_block_seal(tail->b);
			full_verdicts = 0;
			continue;
		case ZBL__FILL_EOF:
			return (ssize_t)total;
		case ZBL__FILL_EMPTY:
			if (some && total)
				return (ssize_t)total;
			/*
			 * SPLICE_F_NONBLOCK also makes pipe and AF_UNIX sources
			 * non-blocking: for a blocking source, wait as read(2) would.
			 */
			source_probe(&src, fd, off);
			if (zbl__fd_wait(fd, src.flags, POLLIN))
				continue;
			return total ? (ssize_t)total : -EAGAIN;
		default:
			if (!total && splice_unsupported(err)) {
				*fallback = true;
				return 0;
			}
			return total ? (ssize_t)total : -err;
		}
	}
	return (ssize_t)total;
}

ssize_t zbl_splice_from(zbl_t *bl, int fd, int64_t *off, size_t len, unsigned flags)
{
	bool fallback;
	ssize_t r, c;

	if (!bl || fd < 0 || (flags & ~ZBL_SOME) || (off && *off < 0))
		return -EINVAL;
	/* "Up to len": never more than the list or a file offset can hold. */
	if (len > SIZE_MAX - bl->len)
		len = SIZE_MAX - bl->len;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (off && (uint64_t)len > (uint64_t)(INT64_MAX - *off))
		len = (size_t)(INT64_MAX - *off);
	if (len == 0)
		return 0;
	r = splice_from_fd(bl, fd, off, len, flags & ZBL_SOME, &fallback);
	if (r < 0 || !fallback || (r && (flags & ZBL_SOME)))
		return r;
	/* The kernel would not hold these bytes as pages: copy the rest, and say so. */
	c = zbl__read_copy(bl, fd, off, len - (size_t)r, flags & ZBL_SOME);
	if (c > 0) {
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: zbl_splice_from", (size_t)c);
	}
	if (c < 0)
		return r ? r : c;
	return r + c;
}
