/* SPDX-License-Identifier: MIT */
/*
 * Every system call the library's data path makes goes through these
 * wrappers, so that one place can observe or (in a fault-injection build)
 * fail them. In a normal build they are the system calls themselves.
 */
#ifndef ZBL_SYS_H
#define ZBL_SYS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <liburing.h>

#ifdef ZBL_FAULT_INJECTION
/* Returns true (and sets errno) when the call named @what should fail now. */
bool zbl__fault(const char *what);
/* Returns true when the allocation named @what should fail now. */
bool zbl__fault_alloc(const char *what);
/* Returns true when the read- or write-like call named @what should move fewer bytes now. */
bool zbl__fault_short(const char *what);
/* Returns true (and sets errno) when the close(2) just made should report a failure. */
bool zbl__fault_close(void);
/* Counts a close(2) of a descriptor that was not open: a double close. */
void zbl__fault_bad_close(void);
#define ZBL__SHORT(len) ((len) > 1 ? (len) / 2 : (len))
#define ZBL__FAULT(what, fail) do { if (zbl__fault(what)) return (fail); } while (0)
#define ZBL__FAULT_ALLOC(what) do { if (zbl__fault_alloc(what)) return NULL; } while (0)
#define ZBL__FAULT_CLOSE(r) do {                                               \
	if ((r) < 0 && errno == EBADF)                                          \
		zbl__fault_bad_close();                                         \
	if (zbl__fault_close())                                                 \
		return -1;                                                      \
} while (0)
#define ZBL__FAULT_LEN(what, len) (zbl__fault_short(what) ? ZBL__SHORT(len) : (len))
/* A short readv/writev moves part of the first iovec only. */
#define ZBL__FAULT_IOV(what, iov, n) do {                                      \
	static __thread struct iovec one_;                                      \
	if ((n) > 0 && zbl__fault_short(what)) {                                \
		one_ = (iov)[0];                                                \
		one_.iov_len = ZBL__SHORT(one_.iov_len);                        \
		(iov) = &one_;                                                  \
		(n) = 1;                                                        \
	}                                                                       \
} while (0)
#else
#define ZBL__FAULT(what, fail) do { } while (0)
#define ZBL__FAULT_ALLOC(what) do { } while (0)
#define ZBL__FAULT_CLOSE(r) do { } while (0)
#define ZBL__FAULT_LEN(what, len) (len)
#define ZBL__FAULT_IOV(what, iov, n) do { } while (0)
#endif

/*
 * Allocations: the same shim, so a fault-injection build can fail each one.
 * Memory is still released with free()/munmap() directly: src/fault.c says
 * why failing those would test nothing.
 */
static inline void *zbl__sys_malloc(size_t n)
{
	ZBL__FAULT_ALLOC("malloc");
	return malloc(n);
}

static inline void *zbl__sys_calloc(size_t n, size_t size)
{
	ZBL__FAULT_ALLOC("calloc");
	return calloc(n, size);
}

/* posix_memalign(3) returning the memory, or NULL. */
static inline void *zbl__sys_memalign(size_t align, size_t n)
{
	void *p;

	ZBL__FAULT_ALLOC("posix_memalign");
	return posix_memalign(&p, align, n) == 0 ? p : NULL;
}

/* mmap(2) of fresh anonymous memory; NULL (not MAP_FAILED) on failure. */
static inline void *zbl__sys_mmap_anon(size_t n, int extra_flags)
{
	ZBL__FAULT_ALLOC("mmap");
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * mmap(2) of @n bytes of @fd shared, read-write, from offset 0; NULL (not
 * MAP_FAILED) on failure. Any errno may come back (ENODEV, EAGAIN, ENOMEM).
 */
static inline void *zbl__sys_mmap_shared(int fd, size_t n)
{
	ZBL__FAULT("mmap", NULL);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* madvise(2): only hints are given, so a failure costs speed, never bytes. */
static inline int zbl__sys_madvise(void *p, size_t n, int advice)
{
	ZBL__FAULT("madvise", -1);
	return madvise(p, n, advice);
}

static inline int zbl__sys_memfd_create(const char *name, unsigned flags)
{
	ZBL__FAULT("memfd_create", -1);
	return memfd_create(name, flags);
}

static inline int zbl__sys_ftruncate(int fd, off_t len)
{
	ZBL__FAULT("ftruncate", -1);
	return ftruncate(fd, len);
}

/*
 * close(2). Linux releases the descriptor even when close fails (EINTR,
 * EIO), so a caller must never retry it (the number may already be someone
 * else's) and can only ignore the result. The shim therefore fails a close
 * after really closing, and counts closes of descriptors that were not open.
 */
static inline int zbl__sys_close(int fd)
{
	int r = close(fd);

	ZBL__FAULT_CLOSE(r);
	return r;
}

static inline int zbl__sys_fstat(int fd, struct stat *st)
{
	ZBL__FAULT("fstat", -1);
	return fstat(fd, st);
}

static inline int zbl__sys_poll(struct pollfd *p, nfds_t n, int ms)
{
	ZBL__FAULT("poll", -1);
	return poll(p, n, ms);
}

/*
 * The ring's calls (ring.c, ring_uring.c). liburing's functions return
 * -errno and make the io_uring_setup, io_uring_enter and io_uring_register
 * system calls: each wrapper names the one it makes.
 */
static inline int zbl__sys_uring_init(unsigned entries, struct io_uring *ring,
				      struct io_uring_params *p)
{
	ZBL__FAULT("io_uring_setup", -errno);
	return io_uring_queue_init_params(entries, ring, p);
}

static inline int zbl__sys_uring_submit(struct io_uring *ring)
{
	ZBL__FAULT("io_uring_enter", -errno);
	return io_uring_submit(ring);
}

static inline int zbl__sys_uring_submit_wait(struct io_uring *ring, struct io_uring_cqe **cqe,
					     struct __kernel_timespec *ts)
{
	ZBL__FAULT("io_uring_enter", -errno);
	return io_uring_submit_and_wait_timeout(ring, cqe, 1, ts, NULL);
}

static inline struct io_uring_probe *zbl__sys_uring_probe(struct io_uring *ring)
{
	ZBL__FAULT("io_uring_register", NULL);
	return io_uring_get_probe_ring(ring);
}

static inline int zbl__sys_epoll_create(void)
{
	ZBL__FAULT("epoll_create", -1);
	return epoll_create1(EPOLL_CLOEXEC);
}

static inline int zbl__sys_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	ZBL__FAULT("epoll_ctl", -1);
	return epoll_ctl(ep, op, fd, ev);
}

static inline int zbl__sys_epoll_wait(int ep, struct epoll_event *ev, int n, int ms)
{
	ZBL__FAULT("epoll_wait", -1);
	return epoll_wait(ep, ev, n, ms);
}

static inline int zbl__sys_eventfd(void)
{
	ZBL__FAULT("eventfd", -1);
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static inline int zbl__sys_getsockopt(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	ZBL__FAULT("getsockopt", -1);
	return getsockopt(fd, level, name, v, &len);
}

static inline int zbl__sys_ioctl_int(int fd, unsigned long req, int *v)
{
	ZBL__FAULT("ioctl", -1);
	return ioctl(fd, req, v);
}

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

static inline int zbl__sys_dup_cloexec(int fd)
{
	ZBL__FAULT("dup", -1);
	return fcntl(fd, F_DUPFD_CLOEXEC, 0);
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
	len = ZBL__FAULT_LEN("splice", len);
	return splice(in, in_off, out, out_off, len, flags);
}

static inline ssize_t zbl__sys_tee(int in, int out, size_t len, unsigned flags)
{
	ZBL__FAULT("tee", -1);
	len = ZBL__FAULT_LEN("tee", len);
	return tee(in, out, len, flags);
}

static inline ssize_t zbl__sys_read(int fd, void *buf, size_t len)
{
	ZBL__FAULT("read", -1);
	len = ZBL__FAULT_LEN("read", len);
	return read(fd, buf, len);
}

static inline ssize_t zbl__sys_readv(int fd, const struct iovec *iov, int n, int64_t *off)
{
	ZBL__FAULT("readv", -1);
	ZBL__FAULT_IOV("readv", iov, n);
	return off ? preadv(fd, iov, n, *off) : readv(fd, iov, n);
}

static inline ssize_t zbl__sys_pread(int fd, void *buf, size_t len, off_t off)
{
	ZBL__FAULT("pread", -1);
	len = ZBL__FAULT_LEN("pread", len);
	return pread(fd, buf, len, off);
}

static inline ssize_t zbl__sys_writev(int fd, const struct iovec *iov, int n, int64_t *off)
{
	ZBL__FAULT("writev", -1);
	ZBL__FAULT_IOV("writev", iov, n);
	return off ? pwritev(fd, iov, n, *off) : writev(fd, iov, n);
}

/* sendmsg(2) of iovecs to a socket (for its flags: MSG_MORE, MSG_NOSIGNAL). */
static inline ssize_t zbl__sys_sendmsg(int fd, const struct iovec *iov, int n, int flags)
{
	ZBL__FAULT("sendmsg", -1);
	ZBL__FAULT_IOV("sendmsg", iov, n);
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	return sendmsg(fd, &m, flags);
}

static inline ssize_t zbl__sys_sendfile(int out, int in, off_t *off, size_t len)
{
	ZBL__FAULT("sendfile", -1);
	len = ZBL__FAULT_LEN("sendfile", len);
	return sendfile(out, in, off, len);
}

static inline ssize_t zbl__sys_copy_file_range(int in, loff_t *in_off, int out, loff_t *out_off,
					       size_t len)
{
	ZBL__FAULT("copy_file_range", -1);
	len = ZBL__FAULT_LEN("copy_file_range", len);
	return copy_file_range(in, in_off, out, out_off, len, 0);
}

#endif /* ZBL_SYS_H */
