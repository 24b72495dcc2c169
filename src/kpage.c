/* SPDX-License-Identifier: MIT */
/*
 * Pipe-backed blocks: bringing bytes in from a descriptor as kernel pages
 * (zbl_splice_from), writing windows of them out (tee for shared data,
 * splice straight out when draining the only reference), and reading them
 * into memory when a program wants to look at them.
 *
 * A pipe block holds block bytes [head, cap) in its pipe, in order. head is
 * 0 unless the only list holding the block drained bytes from its front.
 */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "zbl_int.h"

struct zbl__block *zbl__block_new_pipe(const struct zbl__pipe *p)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));

	if (!b)
		return NULL;
	zbl__block_init(b, ZBL__BLOCK_PIPE, NULL, 0, 0);
	b->u.k.fd = -1;
	b->u.k.file_off = 0;
	b->u.k.pipe = *p;
	b->u.k.head = 0;
	b->u.k.sealed = false;
	b->u.k.lost = false;
	b->u.k.copy_len = 0;
	return b;
}

/*
 * Duplicates the first @len bytes of @src into the empty pipe @dst with tee.
 * dst is at least as large as src, so one tee takes everything; a short tee
 * means the slots ran out and is an error.
 */
static int tee_all(int src, const struct zbl__pipe *dst, size_t len)
{
	ssize_t r;

	do {
		r = zbl__sys_tee(src, dst->wfd, len, SPLICE_F_NONBLOCK);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if ((size_t)r != len)
		return -EIO;
	ZBL__STAT_ADD(bytes_teed, r);
	return 0;
}

/* Failed reads in a row tolerated while emptying a pipe, before its bytes are given up. */
#define CONSUME_RETRIES 8

/*
 * Reads the block's bytes out of its pipe, emptying it: the way to read them
 * when no scratch pipe can be had (the pipe budget or descriptors are spent).
 * Later writes of the block then go from memory, as counted fallbacks.
 *
 * Other lists may hold the block and be duplicating its pipe in other
 * threads, so this holds the block's pipe lock exclusively. Bytes read out
 * exist only in @dst, so a failing read is retried; the pipe holds them, so
 * only an injected fault or a broken kernel fails repeatedly. Should that
 * happen after some bytes left the pipe, the block is marked lost and every
 * later use of it fails with -EIO rather than return wrong bytes.
 */
static int read_pipe_consuming(struct zbl__block *b, char *dst)
{
	int err = 0, fails = 0;

	zbl__pipe_lock(b, true);
	size_t head = b->u.k.head;
	while (head < b->cap) {
		ssize_t r = zbl__sys_read(b->u.k.pipe.rfd, dst + head, b->cap - head);
		if (r > 0) {
			head += (size_t)r;
			fails = 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		err = r < 0 ? -errno : -EIO;
		if (head == b->u.k.head || ++fails > CONSUME_RETRIES)
			break;
		err = 0;
	}
	if (err && head != b->u.k.head) {
		b->u.k.lost = true;
		err = -EIO;
	}
	b->u.k.head = head;
	zbl__pipe_unlock(b);
	if (err)
		return err;
	ZBL__STAT_ADD(fallbacks, 1);
	zbl__trace("fallback: materialize by emptying the pipe", b->cap);
	return 0;
}

/* Reads exactly @len bytes from the scratch pipe into @dst. */
static int read_all(int rfd, char *dst, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = zbl__sys_read(rfd, dst + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

/*
 * Maps a new memfd of @maplen bytes and moves the @len bytes in the scratch
 * pipe into it at @head: shmem takes the pipe's pages without clearing new
 * ones first, which made this three times faster than reading into fresh
 * anonymous memory (bench/experiments/materialize.c). Returns the mapping with
 * *moved set to the bytes that arrived (the caller reads any rest from the
 * pipe), or NULL with nothing moved if memfds or the mapping are unavailable.
 */
static char *splice_to_memfd(int rfd, size_t head, size_t len, size_t maplen, size_t *moved)
{
	static atomic_bool no_memfd;
	loff_t o = (loff_t)head;
	char *p = NULL;

	*moved = 0;
	if (atomic_load_explicit(&no_memfd, memory_order_relaxed))
		return NULL;
	int m = zbl__sys_memfd_create("zbl-materialized", MFD_CLOEXEC);
	if (m < 0) {
		/*
		 * Only a kernel without memfd_create turns the route off for good.
		 * These arguments are valid wherever it exists, and the other
		 * failures (descriptors, memory, a policy refusing it) may pass:
		 * meanwhile they cost one failed call per materialization.
		 */
		if (errno == ENOSYS)
			atomic_store_explicit(&no_memfd, true, memory_order_relaxed);
		return NULL;
	}
	/*
	 * The whole mapping is file-backed, so writing into it when it is
	 * reused for another block never faults past the end of the file.
	 */
	if (zbl__sys_ftruncate(m, (off_t)maplen) == 0)
		p = zbl__sys_mmap_shared(m, maplen);
	while (p && o < (loff_t)(head + len)) {
		ssize_t r = zbl__sys_splice(rfd, NULL, m, &o, head + len - (size_t)o, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
	}
	/* The mapping keeps the memory; a failed close has released m all the same. */
	zbl__sys_close(m);
	if (!p)
		return NULL;
	*moved = (size_t)o - head;
	/* Map the pages now, in one call, rather than fault them in one by one. */
	zbl__sys_madvise(p + (head & ~(size_t)4095), (size_t)o - (head & ~(size_t)4095),
			 MADV_POPULATE_READ);
	return p;
}

/*
 * Copies the block's bytes [head, cap) into new memory *data (block offsets,
 * so data + head holds the first), without consuming the block's pipe: tee
 * into a scratch pipe, then read from that. *maplen is for zbl__copy_free.
 */
int zbl__kpage_materialize(struct zbl__block *b, char **data, size_t *maplen)
{
	size_t head = b->u.k.head, len = b->cap - head;
	struct zbl__pipe scratch;
	char *p;
	int err;

	*data = NULL;
	if (b->u.k.lost)
		return -EIO;
	err = zbl__pipe_get(&scratch, b->u.k.pipe.size, true);
	if (err == -ENOBUFS || err == -EMFILE || err == -ENFILE) {
		p = zbl__copy_alloc(b->cap, maplen, false);
		if (!p)
			return -ENOMEM;
		err = read_pipe_consuming(b, p);
		if (err < 0) {
			zbl__copy_free(p, *maplen);
			return err;
		}
		*data = p;
		return 0;
	}
	if (err < 0)
		return err == -ENOMEM ? err : -EIO;
	err = len ? tee_all(b->u.k.pipe.rfd, &scratch, len) : 0;
	if (err < 0) {
		zbl__pipe_put(&scratch, 1);
		return err;
	}
	/* Reused memory first, then a memfd, then fresh memory. */
	p = zbl__copy_alloc(b->cap, maplen, true);
	size_t moved = 0;
	if (!p && (*maplen = zbl__copy_map_len(b->cap)) != 0) {
		p = splice_to_memfd(scratch.rfd, head, len, *maplen, &moved);
		if (p)
			*maplen |= ZBL__MAP_SHARED;
	}
	if (!p)
		p = zbl__copy_alloc(b->cap, maplen, false);
	err = p ? read_all(scratch.rfd, p + head + moved, len - moved) : -ENOMEM;
	/* On error the scratch pipe may still hold bytes: pipe_put closes it then. */
	zbl__pipe_put(&scratch, err ? 1 : 0);
	if (err < 0) {
		zbl__copy_free(p, *maplen);
		return err;
	}
	*data = p;
	return 0;
}

/*
 * Puts exactly block bytes [from, from+len) of @b into a new scratch pipe:
 * tee the pipe's front, then drop what precedes the window. Another thread
 * may be emptying a shared block's pipe into memory, so the tee holds the
 * block's pipe lock shared. Returns 0 with *scratch holding the window;
 * -EAGAIN if no scratch pipe can be had or the bytes were already read out
 * of the pipe (use the block's memory copy); -EIO if they are lost.
 */
static int tee_window(struct zbl__block *b, size_t from, size_t len, struct zbl__pipe *scratch)
{
	int err;

	if (zbl__pipe_get(scratch, b->u.k.pipe.size, true) < 0)
		return -EAGAIN;
	zbl__pipe_lock(b, false);
	bool emptied = from < b->u.k.head;
	size_t rel = emptied ? 0 : from - b->u.k.head;
	err = b->u.k.lost ? -EIO : emptied ? -EAGAIN : tee_all(b->u.k.pipe.rfd, scratch, rel + len);
	zbl__pipe_unlock(b);
	if (!err)
		err = zbl__pipe_discard(scratch->rfd, rel, NULL);
	if (err < 0)
		zbl__pipe_put(scratch, err == -EAGAIN ? 0 : 1);
	return err;
}

/*
 * Copies the segment's bytes straight into @dst without keeping a copy in the
 * block: for rebuild and c_str, which replace the segment by new memory, so
 * a cached copy would be made only to be copied again and dropped. Returns
 * -EAGAIN when this cannot be done this way (no scratch pipe, or the pipe was
 * emptied into memory); the caller then reads through the block as usual.
 */
int zbl__kpage_read_window(const struct zbl__seg *s, char *dst)
{
	struct zbl__block *b = s->b;
	struct zbl__pipe scratch;
	int err;

	err = tee_window(b, s->off, s->len, &scratch);
	if (err < 0)
		return err;
	err = read_all(scratch.rfd, dst, s->len);
	zbl__pipe_put(&scratch, err ? 1 : 0);
	if (!err) {
		ZBL__STAT_ADD(bytes_materialized, s->len);
		ZBL__STAT_ADD(materializations, 1);
		zbl__trace("materialize", s->len);
	}
	return err;
}

/*
 * For a blocking @fd, waits until it is ready for @events and returns true;
 * false at once for a non-blocking one. @fl is @fd's F_GETFL flags, or -2
 * to ask for them here.
 */
static bool fd_waits(int fd, int fl, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	if (fl == -2)
		fl = zbl__sys_fcntl(fd, F_GETFL, 0);
	if (fl < 0 || (fl & O_NONBLOCK))
		return false;
	while (zbl__sys_poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return false;
	return true;
}

static bool is_fifo(int fd)
{
	struct stat st;

	return zbl__sys_fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/*
 * Splices @len bytes from pipe descriptor @rfd to @fd (at *off + done when
 * off is given). Returns bytes moved, or -errno if none. Blocks as @fd does.
 */
static ssize_t splice_out(int rfd, int fd, int64_t *off, size_t len, bool more)
{
	size_t done = 0;

	while (done < len) {
		loff_t o = off ? *off + (int64_t)done : 0;
		/* MSG_MORE on the last bytes would cork them in TCP for 200 ms. */
		ssize_t r = zbl__sys_splice(rfd, NULL, fd, off ? &o : NULL, len - done,
					    more ? SPLICE_F_MORE : 0);
		if (r < 0 && errno == EINTR)
			continue;
		/*
		 * Our pipe is O_NONBLOCK, and the kernel makes a pipe-to-pipe
		 * splice non-blocking if either end is: for a blocking
		 * destination, wait as write(2) would.
		 */
		if (r < 0 && errno == EAGAIN && is_fifo(fd) && fd_waits(fd, -2, POLLOUT))
			continue;
		if (r <= 0) {
			if (done)
				break;
			return r < 0 ? -errno : -EIO;
		}
		done += (size_t)r;
		ZBL__STAT_ADD(bytes_spliced_out, r);
	}
	return (ssize_t)done;
}

/* Writes from the block's memory copy: the fallback when pipes are unavailable. */
static ssize_t write_from_memory(struct zbl__seg *s, size_t skip, int fd, int64_t *off)
{
	const char *d = zbl__seg_data(s);
	ssize_t r;

	if (!d)
		return -errno;
	struct iovec iov = { (void *)(d + skip), s->len - skip };
	do {
		r = zbl__sys_writev(fd, &iov, 1, off);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	ZBL__STAT_ADD(bytes_copied_out, r);
	ZBL__STAT_ADD(fallbacks, 1);
	zbl__trace("fallback: write of pipe pages from memory", (size_t)r);
	return r;
}

ssize_t zbl__write_pipe_seg(struct zbl__seg *s, size_t skip, int fd, int64_t *off, bool drain,
			    bool more)
{
	struct zbl__block *b = s->b;
	size_t len = s->len - skip;
	struct zbl__pipe scratch;
	ssize_t r;
	int err;

	if (drain && atomic_load_explicit(&b->refs, memory_order_acquire) == 1) {
		/*
		 * Only this list holds the block and it gives the bytes up: move
		 * them straight out of the block's pipe, no tee. Nobody else can
		 * touch the pipe, so no lock either.
		 */
		if (b->u.k.lost)
			return -EIO;
		/* The pipe was emptied into memory (read_pipe_consuming): write from there. */
		if (s->off + skip < b->u.k.head)
			return write_from_memory(s, skip, fd, off);
		size_t rel = s->off + skip - b->u.k.head, moved;
		err = zbl__pipe_discard(b->u.k.pipe.rfd, rel, &moved);
		b->u.k.head += moved;
		if (err < 0)
			return err;
		r = splice_out(b->u.k.pipe.rfd, fd, off, len, more);
		if (r > 0)
			b->u.k.head += (size_t)r;
		if (r == -EINVAL) /* a destination splice refuses, e.g. O_APPEND */
			return write_from_memory(s, skip, fd, off);
		return r;
	}
	/* Shared or kept: duplicate the pipe's front, drop the head, send the window. */
	err = tee_window(b, s->off + skip, len, &scratch);
	if (err == -EAGAIN)
		return write_from_memory(s, skip, fd, off);
	if (err < 0)
		return err;
	r = splice_out(scratch.rfd, fd, off, len, more);
	size_t left = r > 0 ? len - (size_t)r : len;
	/* Empty the scratch pipe so it can be pooled; if that fails it is closed. */
	if (left && zbl__pipe_discard(scratch.rfd, left, NULL) == 0)
		left = 0;
	zbl__pipe_put(&scratch, left);
	if (r == -EINVAL) /* a destination splice refuses, e.g. O_APPEND */
		return write_from_memory(s, skip, fd, off);
	return r;
}

/*
 * Whether @fd has bytes to read now. Tells "the source is empty" from "our
 * pipe is full" after a non-blocking splice returned EAGAIN, which can mean
 * either (docs/DESIGN.md, section "Telling a full pipe from an empty source").
 */
static bool readable_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return zbl__sys_poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/*
 * The list's last segment when it is a pipe block that only this list holds,
 * whose window runs to the block's end and which nobody has read into memory:
 * new bytes can go into the same pipe.
 */
static struct zbl__seg *open_pipe_tail(zbl_t *bl)
{
	if (!bl->count)
		return NULL;
	struct zbl__seg *s = zbl__seg_at(bl, bl->count - 1);
	struct zbl__block *b = s->b;
	if (b->kind != ZBL__BLOCK_PIPE || s->off + s->len != b->cap ||
	    atomic_load_explicit(&b->refs, memory_order_acquire) != 1 ||
	    atomic_load_explicit(&b->data, memory_order_acquire) || b->u.k.sealed ||
	    b->cap - b->u.k.head >= b->u.k.pipe.size)
		return NULL;
	return s;
}

/* Consecutive "pipe full" verdicts, with no byte moved between, before a pipe is sealed. */
#define PIPE_FULL_VERDICTS 8

/* Outcome of one splice into a pipe block. */
enum fill_result { FILL_MOVED, FILL_EOF, FILL_PIPE_FULL, FILL_EMPTY, FILL_ERROR };

/*
 * One splice of up to @want bytes from @fd into the block's pipe; the caller
 * caps @want at the room left in the pipe. @wait: @fd is blocking, so an
 * empty pipe may be filled by a blocking splice, which sleeps in the kernel
 * until bytes come and then takes all that have arrived; only an empty pipe,
 * since a blocking splice into a pipe out of slots would wait for ever.
 */
static enum fill_result splice_into(int fd, int64_t *off, struct zbl__block *b, size_t want,
				    bool wait, ssize_t *moved)
{
	bool empty = b->cap == b->u.k.head;
	ssize_t r;

	do {
		loff_t o = off ? *off : 0;
		r = zbl__sys_splice(fd, off ? &o : NULL, b->u.k.pipe.wfd, NULL, want,
				    SPLICE_F_MOVE | (wait && empty ? 0 : SPLICE_F_NONBLOCK));
	} while (r < 0 && errno == EINTR);
	*moved = r;
	if (r > 0)
		return FILL_MOVED;
	if (r == 0)
		return FILL_EOF;
	if (errno != EAGAIN)
		return FILL_ERROR;
	/*
	 * EAGAIN: the source is empty, or the pipe ran out of slots before
	 * bytes. An empty pipe has every slot free: the source was empty.
	 */
	if (empty)
		return FILL_EMPTY;
	return readable_now(fd) ? FILL_PIPE_FULL : FILL_EMPTY;
}

/*
 * Whether splice(2) from @fd cannot work at all, so copying is the only
 * way: the file system or socket type does not support it.
 */
static bool splice_unsupported(int err)
{
	return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP;
}

/* Moves the bytes; returns bytes appended, 0 at end of file, or -errno. @some: ZBL_SOME. */
static ssize_t splice_from_fd(zbl_t *bl, int fd, int64_t *off, size_t len, bool some,
			      bool *fallback)
{
	size_t total = 0;
	int full_verdicts = 0;
	/*
	 * @fd's F_GETFL flags, asked only when a splice first finds nothing
	 * (-2: not yet), and whether it may then wait in a blocking splice.
	 */
	int fl = -2;
	bool splice_waits = false;

	*fallback = false;
	while (total < len) {
		struct zbl__seg *tail = open_pipe_tail(bl);
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
		}
		bool was_empty = b->cap == b->u.k.head;
		size_t room = b->u.k.pipe.size - (b->cap - b->u.k.head);
		size_t asked = len - total < room ? len - total : room;
		enum fill_result res = splice_into(fd, off, b, asked, false, &moved);
		/*
		 * Nothing there yet. A blocking socket source may wait for it in
		 * one blocking splice into the empty pipe (a pipe source stays on
		 * non-blocking splices and poll: see splice_into() and fd_waits()).
		 */
		if (res == FILL_EMPTY && !(some && total)) {
			if (fl == -2) {
				fl = zbl__sys_fcntl(fd, F_GETFL, 0);
				splice_waits = fl >= 0 && !(fl & O_NONBLOCK) && !off && !is_fifo(fd);
			}
			if (was_empty && splice_waits)
				res = splice_into(fd, off, b, asked, true, &moved);
		}
		err = errno;
		if (res == FILL_MOVED) {
			b->cap += (size_t)moved;
			atomic_store_explicit(&b->fill, b->cap, memory_order_relaxed);
			if (tail) {
				tail->len += (size_t)moved;
				bl->len += (size_t)moved;
			} else {
				zbl__push_seg(bl, b, 0, (size_t)moved);
			}
			if (off)
				*off += moved;
			total += (size_t)moved;
			full_verdicts = 0;
			ZBL__STAT_ADD(bytes_spliced_in, moved);
			/* ZBL_SOME: a splice that took less than it could found the source empty. */
			if (some && (size_t)moved < asked)
				return (ssize_t)total;
			continue;
		}
		if (!tail)
			zbl__block_put(b); /* an empty new block: its pipe goes back to the pool */
		switch (res) {
		case FILL_PIPE_FULL:
			/*
			 * Only a pipe holding bytes (a tail) can be full: see
			 * splice_into(). Data may have arrived between the EAGAIN
			 * and the poll. A pipe out of slots fails every time, so
			 * believe "full" only after it repeats without any byte
			 * moving in between.
			 */
			if (++full_verdicts < PIPE_FULL_VERDICTS)
				continue;
			tail->b->u.k.sealed = true;
			full_verdicts = 0;
			continue;
		case FILL_EOF:
			return (ssize_t)total;
		case FILL_EMPTY:
			if (some && total)
				return (ssize_t)total;
			/*
			 * SPLICE_F_NONBLOCK also makes pipe and AF_UNIX sources
			 * non-blocking: for a blocking source, wait as read(2) would.
			 */
			if (fd_waits(fd, fl, POLLIN))
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
