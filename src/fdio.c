/* SPDX-License-Identifier: MIT */
/*
 * Moving lists to and from file descriptors: read_fd, write_fd, splice_from,
 * splice_to, and reading file-range blocks.
 */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "zbl_int.h"

/* First and largest buffer zbl_read_fd allocates per read(2). */
#define READ_CHUNK_BYTES_MIN ((size_t)64 * 1024)
#define READ_CHUNK_BYTES_MAX ((size_t)1024 * 1024)

/*
 * SIGPIPE guard: writing into a socket or pipe whose peer is gone raises
 * SIGPIPE in the writing thread, and splice(2) has no MSG_NOSIGNAL. Block it
 * in this thread around the writes and consume the one we caused (the
 * technique libcurl uses), so the host's disposition never applies.
 */
void zbl__sigpipe_block(struct zbl__sigpipe_guard *g)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	g->was_pending = false;
	if (sigismember(&g->old, SIGPIPE)) {
		sigset_t pend;
		sigpending(&pend);
		g->was_pending = sigismember(&pend, SIGPIPE);
	}
}

void zbl__sigpipe_restore(struct zbl__sigpipe_guard *g, bool epipe)
{
	if (epipe && !g->was_pending) {
		sigset_t set;
		struct timespec zero = { 0, 0 };
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int zbl__file_read(struct zbl__block *b, char *dst)
{
	size_t done = 0;

	while (done < b->cap) {
		ssize_t n = zbl__sys_pread(b->u.k.fd, dst + done, b->cap - done,
					   b->u.k.file_off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file shrank after zbl_append_file */
		done += (size_t)n;
	}
	return 0;
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

		err = zbl__prepare_append(bl, want, &p1, &n1, &nb);
		if (err < 0)
			return total ? (ssize_t)total : err;
		if (n1)
			iov[niov++] = (struct iovec){ p1, n1 };
		if (nb)
			iov[niov++] = (struct iovec){ nb->inline_data, want - n1 };
		do {
			n = zbl__sys_readv(fd, iov, niov, off);
		} while (n < 0 && errno == EINTR);
		err = n < 0 ? -errno : 0;
		if (n <= 0) {
			zbl__commit_append(bl, n1, 0, nb, 0);
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

ssize_t zbl_write_fd(const zbl_t *bl, int fd)
{
	if (!bl)
		return -EINVAL;
	return zbl__write_out((zbl_t *)bl, fd, NULL, 0);
}

ssize_t zbl_splice_to(zbl_t *bl, int fd, int64_t *off, unsigned flags)
{
	if (!bl || (flags & ~ZBL_DRAIN))
		return -EINVAL;
	return zbl__write_out(bl, fd, off, flags);
}

/*
 * Writes iovecs to @fd (at *off when given) by writev, or with @flags >= 0
 * to a socket by sendmsg(@flags); -errno on failure.
 */
static ssize_t write_iov(int fd, int64_t *off, const struct iovec *iov, int n, int flags)
{
	ssize_t r;

	do {
		r = flags >= 0 ? zbl__sys_sendmsg(fd, iov, n, flags) : zbl__sys_writev(fd, iov, n, off);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* One zbl__write_out() call: whether @fd is a socket, and the SIGPIPE guard. */
struct out_state {
	int sock;                        /* 1 a socket, 0 not, -1 not known yet */
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
static ssize_t write_memory_run(const zbl_t *bl, size_t i, size_t skip, int fd, int64_t *off,
				size_t *run_segs, struct out_state *o)
{
	struct iovec iov[IOV_MAX];
	int n = 0;
	ssize_t r;

	for (; i < bl->count && n < IOV_MAX; i++) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		if (zbl__block_is_kernel(s->b))
			break;
		iov[n++] = (struct iovec){ (void *)(s->data + skip), s->len - skip };
		skip = 0;
	}
	*run_segs = (size_t)n;
	if (!off && o->sock != 0) {
		r = write_iov(fd, NULL, iov, n, MSG_NOSIGNAL | (i < bl->count ? MSG_MORE : 0));
		if (r != -ENOTSOCK) {
			o->sock = 1;
			goto out;
		}
		o->sock = 0;
	}
	guard_on(o);
	r = write_iov(fd, off, iov, n, -1);
out:
	if (r > 0)
		ZBL__STAT_ADD(bytes_copied_out, r);
	return r;
}

/* Fallback for kernel pages the kernel cannot move: copy through a bounce buffer. */
static ssize_t write_file_copy(const struct zbl__block *b, size_t from, size_t len, int fd,
			       int64_t *off)
{
	char buf[64 * 1024];
	size_t n = len < sizeof(buf) ? len : sizeof(buf);
	ssize_t r;

	do {
		r = zbl__sys_pread(b->u.k.fd, buf, n, b->u.k.file_off + (off_t)from);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ENODATA; /* the file shrank after zbl_append_file */
	struct iovec iov = { buf, (size_t)r };
	r = write_iov(fd, off, &iov, 1, -1);
	if (r > 0) {
		ZBL__STAT_ADD(fallbacks, 1);
		ZBL__STAT_ADD(bytes_copied_out, r);
		zbl__trace("fallback: write of file range", (size_t)r);
	}
	return r;
}

/*
 * Writes part of a file-range segment without copying through user memory:
 * sendfile(2) to the descriptor's position, copy_file_range(2) to an offset.
 * Returns bytes written or -errno.
 */
static ssize_t write_file_seg(const struct zbl__seg *s, size_t skip, int fd, int64_t *off)
{
	const struct zbl__block *b = s->b;
	size_t from = s->off + skip, len = s->len - skip;
	off_t in = b->u.k.file_off + (off_t)from;
	ssize_t r;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	do {
		if (off) {
			loff_t in64 = in, out64 = *off;
			r = zbl__sys_copy_file_range(b->u.k.fd, &in64, fd, &out64, len);
		} else {
			r = zbl__sys_sendfile(fd, b->u.k.fd, &in, len);
		}
	} while (r < 0 && errno == EINTR);
	if (r > 0) {
		ZBL__STAT_ADD(bytes_spliced_out, r);
		return r;
	}
	if (r == 0)
		return -ENODATA; /* the file shrank after zbl_append_file */
	if (errno == EINVAL || errno == ENOSYS || errno == EXDEV || errno == EOPNOTSUPP ||
	    errno == EBADF)
		return write_file_copy(b, from, len, fd, off);
	return -errno;
}

ssize_t zbl__write_kernel_seg(struct zbl__seg *s, size_t skip, int fd, int64_t *off, bool drain,
			      bool more)
{
	if (s->b->kind == ZBL__BLOCK_PIPE)
		return zbl__write_pipe_seg(s, skip, fd, off, drain, more);
	return write_file_seg(s, skip, fd, off);
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

static bool is_o_direct(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_DIRECT);
}

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
		ssize_t r = write_iov(fd, off ? &at : NULL, &iov, 1, -1);
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

ssize_t zbl__write_out(zbl_t *bl, int fd, int64_t *off, unsigned flags)
{
	struct out_state o = { .sock = -1 };
	size_t total = 0, i = 0, skip = 0;
	ssize_t err = 0;

	if (fd < 0)
		return -EINVAL;
	if (!bl->len)
		return 0;
	while (i < bl->count) {
		struct zbl__seg *s = zbl__seg_at(bl, i);
		size_t run_segs = 1;
		ssize_t r;

		if (zbl__block_is_kernel(s->b)) {
			guard_on(&o); /* splice and sendfile have no MSG_NOSIGNAL */
			r = zbl__write_kernel_seg(s, skip, fd, off, flags & ZBL_DRAIN,
						  i + 1 < bl->count);
		} else {
			r = write_memory_run(bl, i, skip, fd, off, &run_segs, &o);
		}
		if (r == -EINVAL && is_o_direct(fd)) {
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
