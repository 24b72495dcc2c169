/* SPDX-License-Identifier: MIT */
/*
 * Descriptor utilities: the SIGPIPE guard, waiting for and testing
 * readiness, what kind of descriptor this is, and writing iovecs. Layer 1
 * (see zbl_int.h): it calls only the system.
 */
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "zbl_int.h"

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

/* @fd's F_GETFL flags, or -1. */
int zbl__fd_flags(int fd)
{
	return zbl__sys_fcntl(fd, F_GETFL, 0);
}

/*
 * For a blocking @fd, waits until it is ready for @events and returns true;
 * false at once for a non-blocking one. @flags is @fd's zbl__fd_flags().
 */
bool zbl__fd_wait(int fd, int flags, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	if (flags < 0 || (flags & O_NONBLOCK))
		return false;
	while (zbl__sys_poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return false;
	return true;
}

bool zbl__is_fifo(int fd)
{
	struct stat st;

	return zbl__sys_fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/*
 * Whether @fd has bytes to read now. Tells "the source is empty" from "our
 * pipe is full" after a non-blocking splice returned EAGAIN, which can mean
 * either (docs/DESIGN.md, section "Telling a full pipe from an empty source").
 */
bool zbl__readable_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return zbl__sys_poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/*
 * Writes iovecs to @fd (at *off when given) by writev, or with @flags >= 0
 * to a socket by sendmsg(@flags); -errno on failure.
 */
ssize_t zbl__write_iov(int fd, int64_t *off, const struct iovec *iov, int n, int flags)
{
	ssize_t r;

	do {
		r = flags >= 0 ? zbl__sys_sendmsg(fd, iov, n, flags) : zbl__sys_writev(fd, iov, n, off);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}
