/* SPDX-License-Identifier: MIT */
/*
 * Moving lists out to descriptors: zbl_write_fd and zbl_splice_to. Memory
 * segments go by writev or sendmsg, kernel-page segments by their kind's
 * write (splice, tee, sendfile, copy_file_range), and to O_DIRECT files
 * aligned runs straight from memory and the rest staged through aligned
 * memory. Layer 4 (see zbl_int.h).
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "zbl_int.h"

/* One zbl__write_list() call: what @fd is, and the SIGPIPE guard. */
struct out_state {
	int sock;                        /* 1 a socket, 0 not, -1 not known yet */
	bool dontwait;                   /* ZBL__OUT_DONTWAIT */
	int direct;                      /* 1 O_DIRECT, 0 not, -1 not asked yet */
	struct zbl__dio dio;             /* when direct */
	bool whole_blocks;               /* the last memory run was pieces of whole 512-byte blocks */
	bool guarded;
	struct zbl__sigpipe_guard guard;
};

/* Blocks SIGPIPE for the rest of the call, before the first write that can raise it. */
static void guard_on(struct out_state *o)
{
	if (!o->guarded) {
		zbl__sigpipe_block(&o->guard);
		o->guarded = true;
	}
}

/* The smallest block any device has: pieces of other lengths never went by O_DIRECT. */
#define DIO_BLOCK_MIN ((size_t)512)

/*
 * Writes the memory segments from index @i on, up to the first kernel-page
 * segment: the run's bytes, or -errno if none went. @skip bytes of segment
 * @i were already written. To a socket this is sendmsg with MSG_NOSIGNAL (no
 * SIGPIPE guard needed) and, when more segments follow, MSG_MORE, so a
 * response's head and the file pages after it leave in the same packets;
 * to anything else writev.
 */
static ssize_t write_memory_run(const zbl_t *bl, size_t i, size_t skip, size_t max, int fd,
				int64_t *off, size_t *run_segs, struct out_state *o)
{
	struct iovec iov[IOV_MAX];
	int n = 0;
	ssize_t r;

	o->whole_blocks = true;
	for (; i < bl->count && n < IOV_MAX && max; i++) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		if (zbl__block_is_kernel(s->b))
			break;
		size_t len = s->len - skip < max ? s->len - skip : max;
		iov[n++] = (struct iovec){ (void *)(s->data + skip), len };
		o->whole_blocks &= len % DIO_BLOCK_MIN == 0;
		max -= len;
		skip = 0;
	}
	*run_segs = (size_t)n;
	if (!off && o->sock != 0) {
		r = zbl__write_iov(fd, NULL, iov, n,
				   MSG_NOSIGNAL | (i < bl->count ? MSG_MORE : 0) |
				   (o->dontwait ? MSG_DONTWAIT : 0));
		if (r != -ENOTSOCK) {
			o->sock = 1;
			goto out;
		}
		o->sock = 0;
	}
	guard_on(o);
	r = zbl__write_iov(fd, off, iov, n, -1);
out:
	if (r > 0)
		ZBL__STAT_ADD(bytes_copied_out, r);
	return r;
}

/*
 * O_DIRECT (docs/DESIGN.md, section "Writing to O_DIRECT files"): the kernel
 * takes a piece only if its memory address, file offset and length are
 * aligned (statx STATX_DIOALIGN; section "O_DIRECT alignment"), and refuses
 * anything else with EINVAL, while list segments start and end anywhere.
 * Runs that meet the alignment go straight from list memory; the rest is
 * staged: copied into aligned memory, with the partial blocks at its ends
 * completed from the file, and written as whole blocks.
 */

/* Most bytes one staged write copies through aligned memory. */
#define STAGE_BYTES_MAX ((size_t)1024 * 1024)

/* One call's staging memory: @cap bytes at @p, then one block (@spare) for partial blocks. */
struct stage {
	char *p;
	size_t cap;
	char *spare;
	zbl__memtag_t tag;
};

static int stage_reserve(struct stage *st, const struct zbl__dio *d, size_t len)
{
	size_t align = d->mem_align > d->blk ? d->mem_align : d->blk;

	if (align < ZBL__DIO_PAGE)
		align = ZBL__DIO_PAGE;
	if (st->p && st->cap >= len)
		return 0;
	zbl__mem_free(st->p, st->tag);
	st->cap = (len + align - 1) & ~(align - 1);
	st->p = zbl__mem_alloc_aligned(st->cap + d->blk, align, &st->tag);
	st->spare = st->p ? st->p + st->cap : NULL;
	return st->p ? 0 : -ENOMEM;
}

/* The segment holding list position @pos (< length), and *@skip, the bytes of it before pos. */
static size_t seg_index(const zbl_t *bl, size_t pos, size_t *skip)
{
	size_t i = zbl__find(bl, pos);

	*skip = pos + bl->base - zbl__seg_at(bl, i)->start;
	return i;
}

/*
 * Writes from list memory the run at @pos that O_DIRECT takes as it is: the
 * file offset @at aligned, and each piece in memory at an aligned address
 * and a whole number of blocks long. Returns bytes written, 0 if no such run
 * starts at @pos, or -errno.
 */
static ssize_t write_direct_run(const zbl_t *bl, size_t pos, struct zbl__dio *d, int64_t at)
{
	struct iovec iov[IOV_MAX];
	size_t skip, i = seg_index(bl, pos, &skip);
	int n = 0;

	if ((uint64_t)at % d->blk)
		return 0;
	for (; i < bl->count && n < IOV_MAX; i++, skip = 0) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		size_t len = s->len - skip, take = len - len % d->blk;
		if (!s->data || (uintptr_t)(s->data + skip) % d->mem_align || !take)
			break;
		iov[n++] = (struct iovec){ (void *)(s->data + skip), take };
		if (take < len)
			break;
	}
	if (!n)
		return 0;
	ssize_t r = zbl__dio_write(d, iov, n, at);
	if (r > 0) {
		ZBL__STAT_ADD(bytes_copied_out, r);
		ZBL__STAT_ADD(bytes_direct, r);
	}
	return r ? r : -EIO;
}

/*
 * How many bytes from @pos (file offset @at) to stage: up to the next
 * position where write_direct_run() can start, at most @max. Only memory
 * can start one; within a memory segment the candidates are the aligned
 * file offsets, whose addresses repeat modulo mem_align after
 * max(mem_align, blk) bytes, so no more are tried.
 */
static size_t stage_len(const zbl_t *bl, size_t pos, const struct zbl__dio *d, int64_t at,
			size_t max)
{
	size_t skip, i = seg_index(bl, pos, &skip), n = 0;
	size_t period = d->mem_align > d->blk ? d->mem_align : d->blk;

	for (; i < bl->count && n < max; i++, skip = 0) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		size_t len = s->len - skip;
		if (s->data) {
			size_t x = (d->blk - (uint64_t)(at + (int64_t)n) % d->blk) % d->blk;
			if (!n && !x)
				x = d->blk; /* @pos itself cannot start a run, or we would not stage */
			for (size_t stop = x + period; x < stop && x + d->blk <= len && x < max - n;
			     x += d->blk)
				if ((uintptr_t)(s->data + skip + x) % d->mem_align == 0)
					return n + x;
		}
		n += len;
	}
	return n < max ? n : max;
}

/*
 * Stages the bytes from @pos that cannot go straight (see stage_len()):
 * copies them into aligned memory, completes the partial blocks at either
 * end with what the file holds there (read-modify-write), and writes whole
 * blocks. Returns bytes of the list written, or -errno.
 */
static ssize_t write_staged(const zbl_t *bl, size_t pos, struct zbl__dio *d, int64_t at,
			    struct stage *st)
{
	size_t lead = (uint64_t)at % d->blk;
	size_t max = STAGE_BYTES_MAX > 2 * d->blk ? STAGE_BYTES_MAX : 2 * d->blk;
	size_t n = stage_len(bl, pos, d, at, max - lead), end = lead + n;
	size_t span = (end + d->blk - 1) & ~(d->blk - 1);
	int64_t from = at - (int64_t)lead;
	int err = stage_reserve(st, d, span);

	if (!err && lead) {
		err = zbl__dio_read_block(d, from, st->spare);
		memcpy(st->p, st->spare, lead);
	}
	if (!err && end < span) {
		size_t tail = end - end % d->blk;
		/* A span of one partial block: the spare still holds it. */
		if (!lead || tail)
			err = zbl__dio_read_block(d, from + (int64_t)tail, st->spare);
		memcpy(st->p + end, st->spare + end % d->blk, span - end);
	}
	if (!err)
		err = zbl__copy_range_through(bl, pos, n, st->p + lead);
	if (err < 0)
		return err;
	ssize_t r = zbl__dio_write_staged(d, st->p, span, from, lead, end);
	if (r > 0) {
		ZBL__STAT_ADD(bytes_copied_out, r);
		ZBL__STAT_ADD(bytes_staged, r);
	}
	return r;
}

/*
 * Writes bytes [@pos, length) of the list to the O_DIRECT descriptor of @d
 * at *@off, or at its position, which it then moves past
 * them: aligned runs straight from list memory, the rest staged. Kernel
 * pages are always staged (socket pipe buffers start anywhere in their
 * pages). Returns bytes written, or -errno if none. If the position cannot
 * be moved after writing, the error is returned, as the caller would
 * otherwise write the next bytes over these.
 */
static ssize_t write_direct(const zbl_t *bl, size_t pos, struct zbl__dio *d, int64_t *off)
{
	struct stage st = { 0 };
	int64_t start = 0;
	size_t done = 0, staged = 0;
	ssize_t err = 0;

	if (off)
		start = *off;
	else
		err = zbl__dio_position(d, &start);
	while (!err && pos + done < bl->len) {
		int64_t at = start + (int64_t)done;
		ssize_t r = write_direct_run(bl, pos + done, d, at);
		if (r == 0) {
			r = write_staged(bl, pos + done, d, at, &st);
			staged += r > 0 ? (size_t)r : 0;
		}
		if (r < 0)
			err = r;
		else
			done += (size_t)r;
	}
	if (!off && done) {
		int e = zbl__dio_seek(d, start + (int64_t)done);
		if (e < 0) {
			done = 0;
			err = e;
		}
	}
	zbl__mem_free(st.p, st.tag);
	if (staged) {
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: staged for O_DIRECT", staged);
	}
	return done ? (ssize_t)done : err;
}

/*
 * Whether @fd is a file opened O_DIRECT, asked at most once per call and
 * only when a write suggests it: the kernel refused a piece (EINVAL), or
 * took a memory run of whole blocks to a descriptor that is not a socket
 * (it may have gone by direct I/O, and the rest must be planned for it).
 * Sockets and buffered writes of other lengths never pay the fcntl.
 */
static bool out_direct(struct out_state *o, int fd)
{
	if (o->direct < 0) {
		int fl = zbl__fd_flags(fd);
		o->direct = fl >= 0 && (fl & O_DIRECT) && zbl__dio_init(&o->dio, fd, fl);
	}
	return o->direct;
}

ssize_t zbl__write_list(zbl_t *bl, int fd, int64_t *off, unsigned flags, size_t max)
{
	struct out_state o = { .sock = -1, .dontwait = flags & ZBL__OUT_DONTWAIT, .direct = -1 };
	size_t total = 0, i = 0, skip = 0;
	ssize_t err = 0;

	if (fd < 0)
		return -EINVAL;
	if (!bl->len)
		return 0;
	while (i < bl->count && total < max) {
		struct zbl__seg *s = zbl__seg_at(bl, i);
		size_t run_segs = 1, room = max - total;
		ssize_t r;

		if (o.direct == 1) {
			r = write_direct(bl, total, &o.dio, off);
		} else if (zbl__block_is_kernel(s->b)) {
			guard_on(&o); /* splice and sendfile have no MSG_NOSIGNAL */
			r = zbl__block_write(s, skip, s->len - skip < room ? s->len - skip : room, fd,
					     off, flags & ZBL_DRAIN,
					     (i + 1 < bl->count ? ZBL__W_MORE : 0) |
					     (o.dontwait ? ZBL__W_NOWAIT : 0));
		} else {
			r = write_memory_run(bl, i, skip, room, fd, off, &run_segs, &o);
			/* Whole blocks to a file may have gone by direct I/O: then say so. */
			if (r > 0 && o.sock != 1 && o.whole_blocks && out_direct(&o, fd))
				ZBL__STAT_ADD(bytes_direct, r);
		}
		if (r == -EINVAL && o.direct < 0 && o.sock != 1 && out_direct(&o, fd))
			r = write_direct(bl, total, &o.dio, off);
		if (r <= 0) {
			err = r ? r : -EIO;
			break;
		}
		if (off)
			*off += r;
		total += (size_t)r;
		/* Advance past what went, segment by segment. */
		size_t left = (size_t)r;
		while (left) {
			size_t in_seg = zbl__seg_at(bl, i)->len - skip;
			if (left < in_seg) {
				skip += left;
				break;
			}
			left -= in_seg;
			skip = 0;
			i++;
		}
		/* A blocking stream polled writable takes one write without waiting, not two. */
		if (flags & ZBL__OUT_ONE)
			break;
	}
	if (o.guarded)
		zbl__sigpipe_restore(&o.guard, err == -EPIPE);
	if (o.direct == 1)
		zbl__dio_done(&o.dio);
	if ((flags & ZBL_DRAIN) && total)
		zbl__drop_front(bl, total);
	if (total)
		return (ssize_t)total;
	return err;
}

/* The public calls, after zbl__write_list(). */
ssize_t zbl_write_fd(const zbl_t *bl, int fd)
{
	if (!bl)
		return -EINVAL;
	return zbl__write_list((zbl_t *)bl, fd, NULL, 0, SIZE_MAX);
}

ssize_t zbl_splice_to(zbl_t *bl, int fd, int64_t *off, unsigned flags)
{
	if (!bl || (flags & ~ZBL_DRAIN))
		return -EINVAL;
	return zbl__write_list(bl, fd, off, flags, SIZE_MAX);
}
