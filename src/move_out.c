/* SPDX-License-Identifier: MIT */
/*
 * Moving lists out to descriptors: zbl_write_fd and zbl_splice_to. Memory
 * segments go by writev or sendmsg, kernel-page segments by their kind's
 * write (splice, tee, sendfile, copy_file_range), and O_DIRECT files that
 * refuse unaligned pieces through an aligned bounce buffer. Layer 4 (see
 * zbl_int.h).
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "zbl_int.h"

/* One zbl__write_list() call: whether @fd is a socket, and the SIGPIPE guard. */
struct out_state {
	int sock;                        /* 1 a socket, 0 not, -1 not known yet */
	bool dontwait;                   /* ZBL__OUT_DONTWAIT */
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

	for (; i < bl->count && n < IOV_MAX && max; i++) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		if (zbl__block_is_kernel(s->b))
			break;
		size_t len = s->len - skip < max ? s->len - skip : max;
		iov[n++] = (struct iovec){ (void *)(s->data + skip), len };
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
 * O_DIRECT takes only memory, file offsets and lengths aligned to the
 * device's logical block (docs/DESIGN.md, section "O_DIRECT alignment"); the
 * kernel refuses anything else with EINVAL, and a list's segments start and
 * end anywhere. The rest of the list from @pos is copied through an aligned
 * buffer in aligned pieces, so a list whose total length and file offset are
 * aligned is written whatever its segments are (docs/DESIGN.md, section
 * "Writing to O_DIRECT files"). Returns bytes written, or -errno if none.
 */
#define DIRECT_BOUNCE_BYTES ((size_t)1024 * 1024)
#define DIRECT_ALIGN ((size_t)4096)

static ssize_t write_bounced(const zbl_t *bl, size_t pos, int fd, int64_t *off)
{
	size_t left = bl->len - pos, done = 0;
	size_t size = left < DIRECT_BOUNCE_BYTES ? left : DIRECT_BOUNCE_BYTES;
	char *buf = NULL;
	ssize_t err = 0;

	size = (size + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
	if (posix_memalign((void **)&buf, DIRECT_ALIGN, size) != 0)
		return -ENOMEM;
	while (done < left) {
		size_t n = left - done < size ? left - done : size;
		int rc = zbl__copy_range(bl, pos + done, n, buf);
		if (rc < 0) {
			err = rc;
			break;
		}
		struct iovec iov = { buf, n };
		int64_t at = off ? *off + (int64_t)done : 0;
		ssize_t r = zbl__write_iov(fd, off ? &at : NULL, &iov, 1, -1);
		if (r <= 0) {
			err = r ? r : -EIO;
			break;
		}
		done += (size_t)r;
		ZBL__STAT_ADD(bytes_copied_out, r);
		if ((size_t)r < n)
			break;
	}
	free(buf);
	if (done) {
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: aligned copy for O_DIRECT", done);
	}
	return done ? (ssize_t)done : err;
}

ssize_t zbl__write_list(zbl_t *bl, int fd, int64_t *off, unsigned flags, size_t max)
{
	struct out_state o = { .sock = -1, .dontwait = flags & ZBL__OUT_DONTWAIT };
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

		if (zbl__block_is_kernel(s->b)) {
			guard_on(&o); /* splice and sendfile have no MSG_NOSIGNAL */
			r = zbl__block_write(s, skip, s->len - skip < room ? s->len - skip : room, fd,
					     off, flags & ZBL_DRAIN, i + 1 < bl->count);
		} else {
			r = write_memory_run(bl, i, skip, room, fd, off, &run_segs, &o);
		}
		if (r == -EINVAL && zbl__is_o_direct(fd)) {
			guard_on(&o);
			r = write_bounced(bl, total, fd, off);
		}
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
	}
	if (o.guarded)
		zbl__sigpipe_restore(&o.guard, err == -EPIPE);
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
