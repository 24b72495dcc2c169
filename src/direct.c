/* SPDX-License-Identifier: MIT */
/*
 * Descriptors opened with O_DIRECT: the alignment their file asks for, where
 * a call's bytes go in the file, and the blocks of the file that a write at
 * an unaligned offset or length must read, complete and write back. Layer 1
 * (see zbl_int.h): it calls only the system. The movement files decide what
 * goes straight from list memory and what is staged (move_out.c, move_in.c;
 * docs/DESIGN.md, section "Writing to O_DIRECT files").
 */
#include <stdio.h>
#include <sys/stat.h>

#include "zbl_int.h"

/*
 * Sets up @d for a call on @fd (F_GETFL flags @fl, O_DIRECT among them) and
 * says whether direct I/O applies: only to regular files and block devices
 * (a pipe opened O_DIRECT is a packet pipe, with no alignment).
 *
 * The alignment is asked of the file at every call and never cached: the
 * descriptor number may name another file next time, and F_SETFL can switch
 * O_DIRECT. A file system that gives no answer (no STATX_DIOALIGN, or 0)
 * gets ZBL__DIO_ALIGN_DEFAULT, which every block device accepts: bytes may
 * then be staged that did not need it, but no write fails for it. If statx
 * itself fails, the descriptor is treated as not direct and the kernel's
 * EINVAL stands.
 */
bool zbl__dio_init(struct zbl__dio *d, int fd, int fl)
{
	struct statx stx;

	d->fd = fd;
	d->rfd = -1;
	d->append = (fl & O_APPEND) != 0;
	d->size = -1;
	d->mem_align = ZBL__DIO_ALIGN_DEFAULT;
	d->blk = ZBL__DIO_ALIGN_DEFAULT;
	memset(&stx, 0, sizeof(stx));
	if (zbl__sys_statx(fd, STATX_TYPE | STATX_DIOALIGN, &stx) < 0 ||
	    !(stx.stx_mask & STATX_TYPE) || !(S_ISREG(stx.stx_mode) || S_ISBLK(stx.stx_mode)))
		return false;
	/* Powers of two, as the kernel reports them; anything else gets the default. */
	if ((stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align &&
	    stx.stx_dio_mem_align && !(stx.stx_dio_offset_align & (stx.stx_dio_offset_align - 1)) &&
	    !(stx.stx_dio_mem_align & (stx.stx_dio_mem_align - 1))) {
		d->mem_align = stx.stx_dio_mem_align;
		d->blk = stx.stx_dio_offset_align;
	}
	return true;
}

void zbl__dio_done(struct zbl__dio *d)
{
	if (d->rfd >= 0)
		zbl__sys_close(d->rfd);
	d->rfd = -1;
}

/* The file's size, asked once per call and then kept up to date by the caller's writes. */
static int dio_size(struct zbl__dio *d)
{
	struct stat st;

	if (d->size >= 0)
		return 0;
	if (zbl__sys_fstat(d->fd, &st) < 0)
		return -errno;
	d->size = st.st_size;
	return 0;
}

/*
 * Where the descriptor's own position is: the end of the file with O_APPEND
 * (where write(2) would put the bytes), else lseek's answer.
 */
int zbl__dio_position(struct zbl__dio *d, int64_t *pos)
{
	if (d->append) {
		int err = dio_size(d);
		*pos = d->size;
		return err;
	}
	off_t p = zbl__sys_lseek(d->fd, 0, SEEK_CUR);
	if (p < 0)
		return -errno;
	*pos = p;
	return 0;
}

int zbl__dio_seek(struct zbl__dio *d, int64_t pos)
{
	return zbl__sys_lseek(d->fd, pos, SEEK_SET) < 0 ? -errno : 0;
}

/*
 * A descriptor opened O_WRONLY cannot pread. The same file opened again
 * read-only through /proc can; without /proc, or without permission to
 * read the file, the write cannot keep the bytes around its ends and fails
 * with -EBADF, the error pread gave.
 */
static int dio_reader(struct zbl__dio *d)
{
	char path[64];

	if (d->rfd >= 0)
		return d->rfd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->fd);
	d->rfd = zbl__sys_open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	return d->rfd >= 0 ? d->rfd : -EBADF;
}

/*
 * Reads the block of the file at @at (a multiple of blk) into @buf (blk
 * bytes, aligned to mem_align), with zeros past the end of the file, as a
 * buffered write's hole would read. A block wholly past the end is not
 * read at all, so a write-only descriptor writing a new file needs no /proc.
 */
int zbl__dio_read_block(struct zbl__dio *d, int64_t at, char *buf)
{
	int err = dio_size(d);
	ssize_t r;

	if (err < 0)
		return err;
	if (at >= d->size) {
		memset(buf, 0, d->blk);
		return 0;
	}
	size_t want = d->size - at < (int64_t)d->blk ? (size_t)(d->size - at) : d->blk;
	int fd = d->rfd >= 0 ? d->rfd : d->fd;
	for (;;) {
		r = zbl__sys_pread(fd, buf, d->blk, at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EBADF && fd == d->fd) {
			fd = dio_reader(d);
			if (fd < 0)
				return fd;
			continue;
		}
		break;
	}
	if (r < 0)
		return -errno;
	if ((size_t)r < want)
		return -EIO; /* the file shrank under us */
	memset(buf + r, 0, d->blk - (size_t)r);
	return 0;
}

/* Writes iovecs at @at, where asked even with O_APPEND; bytes written or -errno. */
ssize_t zbl__dio_write(struct zbl__dio *d, const struct iovec *iov, int n, int64_t at)
{
	ssize_t r;

	do {
		r = zbl__sys_pwritev(d->fd, iov, n, at, d->append ? RWF_NOAPPEND : 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (d->size >= 0 && at + r > d->size)
		d->size = at + r;
	return r;
}

/*
 * Writes a staged span: @span bytes of @buf (whole blocks) at the aligned
 * @at, of which [@from, @to) are the caller's bytes and the rest what the
 * file held there (zbl__dio_read_block). Returns how many of the caller's
 * bytes went, or -errno.
 *
 * A span ending in a partial block writes zeros past @to. Where that made
 * the file longer than a buffered write of the caller's bytes would have,
 * it is cut back to max(old end, @at + @to): a file already longer keeps
 * its end. Readers may see the padding between the write and the cut; if
 * the cut fails, the error is returned and the file keeps up to blk - 1
 * bytes of zeros past the data.
 */
ssize_t zbl__dio_write_staged(struct zbl__dio *d, char *buf, size_t span, int64_t at, size_t from,
			      size_t to)
{
	int64_t old = d->size; /* known whenever the span has a partial block: it was read */
	struct iovec iov = { buf, span };
	ssize_t r = zbl__dio_write(d, &iov, 1, at);

	if (r <= 0)
		return r ? r : -EIO;
	size_t done = (size_t)r > from ? ((size_t)r < to ? (size_t)r : to) - from : 0;
	int64_t want = at + (int64_t)(from + done);
	if (old >= 0 && old > want)
		want = old;
	if (to < span && at + r > want) {
		while (zbl__sys_ftruncate(d->fd, want) < 0)
			if (errno != EINTR)
				return -errno;
		d->size = want;
	}
	return done ? (ssize_t)done : -EIO;
}
