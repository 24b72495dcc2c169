/* SPDX-License-Identifier: MIT */
/*
 * File ranges (zbl_append_file): a range of a regular file held by our own
 * duplicate of the caller's descriptor, read only when a program looks at
 * the bytes, and written out by sendfile(2) or copy_file_range(2) without
 * passing through user memory. Layer 2 (see zbl_int.h).
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "zbl_int.h"

static void release_file(struct zbl__block *b)
{
	zbl__mem_free(atomic_load_explicit(&b->data, memory_order_relaxed), b->u.k.copy_tag);
	zbl__sys_close(b->u.k.fd);
	free(b);
}

/* Reads bytes [from, from+len) of the range into @dst. */
static int file_read(const struct zbl__block *b, size_t from, size_t len, char *dst)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = zbl__sys_pread(b->u.k.fd, dst + done, len - done,
					   b->u.k.file_off + (off_t)(from + done));
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

static int materialize_file(struct zbl__block *b, char **data, zbl__memtag_t *tag, size_t *copied)
{
	char *p = zbl__mem_alloc(b->cap, tag, false);
	int err = p ? file_read(b, 0, b->cap, p) : -ENOMEM;

	if (err < 0) {
		zbl__mem_free(p, *tag);
		return err;
	}
	*data = p;
	*copied = b->cap;
	return 0;
}

/* Fallback for file pages the kernel cannot move: copy through a bounce buffer. */
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
	r = zbl__write_iov(fd, off, &iov, 1, -1);
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
 * With ZBL__W_NOWAIT, to a pipe by a non-blocking splice(2) instead: sendfile
 * waits for a blocking pipe's slots, and a page at an odd offset takes two.
 * Returns bytes written or -errno.
 */
static ssize_t write_file(struct zbl__seg *s, size_t skip, size_t len, int fd, int64_t *off,
			  bool drain, unsigned how)
{
	const struct zbl__block *b = s->b;
	size_t from = s->off + skip;
	off_t in = b->u.k.file_off + (off_t)from;
	ssize_t r;

	bool to_pipe = !off && (how & ZBL__W_NOWAIT) && zbl__is_fifo(fd);

	(void)drain;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	do {
		if (to_pipe) {
			loff_t in64 = in;
			r = zbl__sys_splice(b->u.k.fd, &in64, fd, NULL, len, SPLICE_F_NONBLOCK);
		} else if (off) {
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
	if (to_pipe && errno == EAGAIN)
		return -EAGAIN;
	if (errno == EINVAL || errno == ENOSYS || errno == EXDEV || errno == EOPNOTSUPP ||
	    errno == EBADF)
		return write_file_copy(b, from, len, fd, off);
	return -errno;
}

/* A window read for a caller that keeps no copy (zbl__copy_range_through): one pread. */
static int read_window_file(const struct zbl__seg *s, char *dst)
{
	return file_read(s->b, s->off, s->len, dst);
}

const struct zbl__kind zbl__kind_file = {
	.name = "file",
	.kernel = true,
	.release = release_file,
	.materialize = materialize_file,
	.write = write_file,
	.read_window = read_window_file,
};

struct zbl__block *zbl__block_new_file(int fd, int64_t off, size_t len)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));

	if (!b)
		return NULL;
	zbl__block_init(b, &zbl__kind_file, NULL, len, len);
	b->u.k.fd = fd;
	b->u.k.file_off = off;
	b->u.k.copy_tag = 0;
	return b;
}
