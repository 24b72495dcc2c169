/* SPDX-License-Identifier: MIT */
/*
 * Every system call the library's data path makes goes through these
 * wrappers, so that one place can observe or (in a fault-injection build)
 * fail them. In a normal build they are the system calls themselves.
 */
#ifndef ZBL_SYS_H
#define ZBL_SYS_H

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef ZBL_FAULT_INJECTION
/* Returns true (and sets errno) when the call named @what should fail now. */
bool zbl__fault(const char *what);
#define ZBL__FAULT(what, fail) do { if (zbl__fault(what)) return (fail); } while (0)
#else
#define ZBL__FAULT(what, fail) do { } while (0)
#endif

static inline int zbl__sys_open(const char *path, int flags)
{
	ZBL__FAULT("open", -1);
	return open(path, flags);
}

static inline int zbl__sys_fcntl(int fd, int cmd, int arg)
{
	ZBL__FAULT("fcntl", -1);
	return fcntl(fd, cmd, arg);
}

static inline int zbl__sys_pipe2(int fds[2], int flags)
{
	ZBL__FAULT("pipe2", -1);
	return pipe2(fds, flags);
}

static inline ssize_t zbl__sys_splice(int in, loff_t *in_off, int out, loff_t *out_off,
				      size_t len, unsigned flags)
{
	ZBL__FAULT("splice", -1);
	return splice(in, in_off, out, out_off, len, flags);
}

static inline ssize_t zbl__sys_tee(int in, int out, size_t len, unsigned flags)
{
	ZBL__FAULT("tee", -1);
	return tee(in, out, len, flags);
}

static inline ssize_t zbl__sys_read(int fd, void *buf, size_t len)
{
	ZBL__FAULT("read", -1);
	return read(fd, buf, len);
}

static inline ssize_t zbl__sys_readv(int fd, const struct iovec *iov, int n, int64_t *off)
{
	ZBL__FAULT("readv", -1);
	return off ? preadv(fd, iov, n, *off) : readv(fd, iov, n);
}

static inline ssize_t zbl__sys_pread(int fd, void *buf, size_t len, off_t off)
{
	ZBL__FAULT("pread", -1);
	return pread(fd, buf, len, off);
}

static inline ssize_t zbl__sys_writev(int fd, const struct iovec *iov, int n, int64_t *off)
{
	ZBL__FAULT("writev", -1);
	return off ? pwritev(fd, iov, n, *off) : writev(fd, iov, n);
}

static inline ssize_t zbl__sys_sendfile(int out, int in, off_t *off, size_t len)
{
	ZBL__FAULT("sendfile", -1);
	return sendfile(out, in, off, len);
}

static inline ssize_t zbl__sys_copy_file_range(int in, loff_t *in_off, int out, loff_t *out_off,
					       size_t len)
{
	ZBL__FAULT("copy_file_range", -1);
	return copy_file_range(in, in_off, out, out_off, len, 0);
}

#endif /* ZBL_SYS_H */
