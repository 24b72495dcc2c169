/* SPDX-License-Identifier: MIT */
/*
 * Pipes: creation (one descriptor per pipe where /proc allows), sizing within
 * the kernel's limits, a capped pool of empty pipes, and /dev/null for
 * discarding bytes.
 *
 * Limits this file respects (docs/DESIGN.md, sections "Pipe sizes and the
 * per-user budget" and "The pipe pool"):
 * - F_SETPIPE_SZ above /proc/sys/fs/pipe-max-size fails with EPERM without
 *   CAP_SYS_RESOURCE; an unprivileged user past fs.pipe-user-pages-soft gets
 *   EPERM too, and new pipes of 2 pages. We ask for less, and below
 *   PIPE_BYTES_MIN we give the pipe up so callers fall back to memory.
 * - Every pipe costs descriptors; at most a quarter of RLIMIT_NOFILE are
 *   used for pipes, leaving the rest to the program.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "zbl_int.h"

/* Largest pipe we ask for (further capped by /proc/sys/fs/pipe-max-size). */
#define PIPE_BYTES_WANT ((size_t)1 << 20)
/* Smallest pipe worth holding data in; smaller ones mean the budget is spent. */
#define PIPE_BYTES_MIN ((size_t)64 * 1024)
/* Empty pipes kept for reuse. */
#define POOL_PIPES_MAX 16

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static size_t pipe_bytes_max;     /* what we ask F_SETPIPE_SZ for */
static size_t pipes_live_max;     /* descriptors we allow ourselves */
static bool single_fd = true;     /* /proc reopen works */
static int devnull_fd = -1;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zbl__pipe pool[POOL_PIPES_MAX];
static size_t pool_count;

/* Pipe bytes held by this process's pipes (a share of the per-user budget). */
static atomic_size_t held_pipe_bytes;

long zbl__read_proc_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v = dflt;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

static void pipes_init(void)
{
	struct rlimit rl;
	long max = zbl__read_proc_long("/proc/sys/fs/pipe-max-size", (long)PIPE_BYTES_WANT);

	pipe_bytes_max = PIPE_BYTES_WANT;
	if (max > 0 && (size_t)max < pipe_bytes_max)
		pipe_bytes_max = (size_t)max;
	pipes_live_max = 256;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		pipes_live_max = rl.rlim_cur / 4 > 8 ? rl.rlim_cur / 4 : 8;
	devnull_fd = zbl__sys_open("/dev/null", O_WRONLY | O_CLOEXEC);
}

size_t zbl__pipe_bytes_max(void)
{
	pthread_once(&init_once, pipes_init);
	return pipe_bytes_max;
}

int zbl__devnull(void)
{
	pthread_once(&init_once, pipes_init);
	int fd = __atomic_load_n(&devnull_fd, __ATOMIC_ACQUIRE);
	if (fd >= 0)
		return fd;
	/* The first open failed (descriptors ran out?): try again, keep one winner. */
	fd = zbl__sys_open("/dev/null", O_WRONLY | O_CLOEXEC);
	int none = -1;
	if (fd >= 0 && !__atomic_compare_exchange_n(&devnull_fd, &none, fd, false,
						    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		zbl__sys_close(fd);
		fd = none;
	}
	return fd;
}

/*
 * Makes one descriptor that is both ends of the pipe: opening
 * /proc/self/fd/N read-write gives a descriptor whose file is the pipe with
 * both modes, so the pair can be closed (the LWN workaround). Returns -1 where
 * /proc is missing, and the caller keeps two descriptors.
 */
static int reopen_rdwr(int rfd)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", rfd);
	return zbl__sys_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

/* Grows the pipe as far as limits allow; returns its size in bytes. */
static size_t pipe_grow(int fd, size_t want)
{
	for (size_t sz = want; sz >= PIPE_BYTES_MIN; sz /= 2) {
		if (zbl__sys_fcntl(fd, F_SETPIPE_SZ, (int)sz) >= 0)
			break;
		if (errno != EPERM && errno != EBUSY)
			break;
	}
	int got = zbl__sys_fcntl(fd, F_GETPIPE_SZ, 0);
	return got > 0 ? (size_t)got : 0;
}

static void pipe_close(struct zbl__pipe *p)
{
	if (p->rfd >= 0)
		zbl__sys_close(p->rfd);
	if (p->wfd >= 0 && p->wfd != p->rfd)
		zbl__sys_close(p->wfd);
	atomic_fetch_sub_explicit(&held_pipe_bytes, p->size, memory_order_relaxed);
	ZBL__PIPES_LIVE_SUB(1);
	p->rfd = p->wfd = -1;
}

static int pipe_create(struct zbl__pipe *p, bool scratch)
{
	int fds[2];

	/*
	 * The cap keeps lists from holding all descriptors. Scratch pipes are
	 * exempt: they are returned at once, and without one the data already
	 * held could be neither read nor written.
	 */
	if (!scratch &&
	    atomic_load_explicit(&zbl__stats.pipes_live, memory_order_relaxed) >= pipes_live_max)
		return -EMFILE;
	if (zbl__sys_pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	ZBL__STAT_ADD(pipes_created, 1);
	ZBL__PIPES_LIVE_ADD(1);
	p->rfd = fds[0];
	p->wfd = fds[1];
	p->size = 0;
	if (__atomic_load_n(&single_fd, __ATOMIC_RELAXED)) {
		int fd = reopen_rdwr(fds[0]);
		if (fd >= 0) {
			zbl__sys_close(fds[0]);
			zbl__sys_close(fds[1]);
			p->rfd = p->wfd = fd;
		} else if (errno == ENOENT || errno == EACCES || errno == ENXIO) {
			/* No /proc here: keep two descriptors from now on. */
			__atomic_store_n(&single_fd, false, __ATOMIC_RELAXED);
		}
	}
	p->size = pipe_grow(p->wfd, pipe_bytes_max);
	atomic_fetch_add_explicit(&held_pipe_bytes, p->size, memory_order_relaxed);
	if (p->size < PIPE_BYTES_MIN) {
		/* The per-user pipe budget is spent (fs.pipe-user-pages-soft). */
		pipe_close(p);
		return -ENOBUFS;
	}
	return 0;
}

int zbl__pipe_get(struct zbl__pipe *p, size_t min_bytes, bool scratch)
{
	pthread_once(&init_once, pipes_init);
	pthread_mutex_lock(&pool_lock);
	for (size_t i = pool_count; i-- > 0;) {
		if (pool[i].size >= min_bytes) {
			*p = pool[i];
			pool[i] = pool[--pool_count];
			pthread_mutex_unlock(&pool_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	int err = pipe_create(p, scratch);
	if (err < 0)
		return err;
	if (p->size < min_bytes) {
		pipe_close(p);
		return -ENOBUFS;
	}
	return 0;
}

void zbl__pipe_put(struct zbl__pipe *p, size_t bytes_left)
{
	/* A pipe still holding bytes would hand them to its next user: close it. */
	if (bytes_left == 0) {
		pthread_mutex_lock(&pool_lock);
		if (pool_count < POOL_PIPES_MAX) {
			pool[pool_count++] = *p;
			pthread_mutex_unlock(&pool_lock);
			return;
		}
		pthread_mutex_unlock(&pool_lock);
	}
	pipe_close(p);
}

void zbl_pool_flush(void)
{
	struct zbl__pipe idle[POOL_PIPES_MAX];
	size_t n;

	pthread_mutex_lock(&pool_lock);
	n = pool_count;
	memcpy(idle, pool, n * sizeof(*idle));
	pool_count = 0;
	pthread_mutex_unlock(&pool_lock);
	for (size_t i = 0; i < n; i++)
		pipe_close(&idle[i]);
	zbl__mem_cache_flush();
}

/*
 * Moves @len bytes out of the pipe's front to /dev/null (the cheapest way to
 * drop bytes from a pipe). Returns 0 or -errno; *moved (if not NULL) says how
 * many went, also on failure.
 */
int zbl__pipe_discard(int rfd, size_t len, size_t *moved)
{
	int null = zbl__devnull();
	size_t done = 0;
	int err = 0;

	if (null < 0)
		err = -EBADF;
	while (!err && done < len) {
		ssize_t r = zbl__sys_splice(rfd, NULL, null, NULL, len - done, SPLICE_F_NONBLOCK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			err = r < 0 ? -errno : -EIO;
		else
			done += (size_t)r;
	}
	if (moved)
		*moved = done;
	return err;
}

bool zbl__pipes_single_fd(void)
{
	pthread_once(&init_once, pipes_init);
	return __atomic_load_n(&single_fd, __ATOMIC_RELAXED);
}

size_t zbl__held_pipe_bytes(void)
{
	return atomic_load_explicit(&held_pipe_bytes, memory_order_relaxed);
}
