/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, loop.c: owns each worker's event loop. One thread per core,
 * each with its own epoll set; all share one non-blocking listening socket
 * registered with EPOLLEXCLUSIVE. Every registered descriptor carries a
 * watcher with its own callback: the listener accepts, the wake eventfd
 * stops the loop, the done eventfd brings finished jobs back, the ring's
 * descriptor runs the direct route's callbacks (upload.c), and each
 * connection runs its state machine (conn.c). Once a second the loop drops
 * connections past their deadline.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

#define ACCEPT_BATCH		32
#define EVENTS_MAX		64
#define SWEEP_INTERVAL_NS	1000000000u
/* After accept ran out of descriptors or memory: how long until it tries again. */
#define ACCEPT_PAUSE_NS		1000000000u

static void accept_some(struct worker *w, struct watcher *wt, uint32_t events)
{
	struct server *srv = w->srv;

	(void)wt;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int one = 1;
		int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The listen socket stays readable: stop polling it for a while. */
				fprintf(stderr, "zbl serve: accept: %s; pausing for 1 s\n",
					strerror(errno));
				epoll_ctl(w->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
				w->accept_paused = true;
				w->accept_resume_ns = cli_now_ns() + ACCEPT_PAUSE_NS;
			}
			return;
		}
		cli_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_new(w, fd, peer);
	}
}

static void add_listener(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->listen_watch };

	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->srv->listen_fd, &ev) == 0)
		w->accept_paused = false;
}

static void wake(struct worker *w, struct watcher *wt, uint32_t events)
{
	(void)wt;
	(void)events;
	atomic_store(&w->srv->stop, true);
}

static void jobs_came_back(struct worker *w, struct watcher *wt, uint32_t events)
{
	(void)wt;
	(void)events;
	jobs_reap(w);
}

static void sweep(struct worker *w, uint64_t now)
{
	struct conn *c = w->conns, *next;

	for (; c; c = next) {
		next = c->next;
		conn_expire(c, now);
	}
	if (!w->conns && atomic_load(&w->srv->connections) == 0)
		zbl_pool_flush(); /* nothing in flight anywhere: give idle pipes back */
	if (w->accept_paused && now >= w->accept_resume_ns)
		add_listener(w);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *srv = w->srv;
	struct epoll_event evs[EVENTS_MAX];
	uint64_t next_sweep = cli_now_ns() + SWEEP_INTERVAL_NS;

	while (!atomic_load(&srv->stop)) {
		int n = epoll_wait(w->epfd, evs, EVENTS_MAX, 1000);
		for (int i = 0; i < n; i++) {
			struct watcher *wt = evs[i].data.ptr;
			wt->cb(w, wt, evs[i].events);
		}
		conn_bury(w);
		uint64_t now = cli_now_ns();
		if (now >= next_sweep) {
			sweep(w, now);
			next_sweep = now + SWEEP_INTERVAL_NS;
		}
	}
	/* Jobs write into their connections: let them finish before freeing those. */
	jobs_wait_idle(w);
	/* So do ring callbacks: every one runs now (cancelled), and only counts. */
	w->stopping = true;
	zbl_ring_free(w->ring);
	w->ring = NULL;
	while (w->conns)
		conn_free(w->conns);
	conn_bury(w);
	return NULL;
}

static int watch(struct worker *w, int fd, struct watcher *wt,
		 void (*cb)(struct worker *, struct watcher *, uint32_t))
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = wt };

	wt->cb = cb;
	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * Sets up worker @id's epoll set, wake and done eventfds and the listener.
 * Returns 0 or -errno; worker_destroy() undoes what was done either way.
 */
int worker_init(struct worker *w, struct server *srv, int id)
{
	w->srv = srv;
	w->id = id;
	w->epfd = w->wake_fd = w->done_fd = -1;
	pthread_mutex_init(&w->done_lock, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->epfd < 0 || w->wake_fd < 0 || w->done_fd < 0 ||
	    watch(w, w->wake_fd, &w->wake_watch, wake) < 0 ||
	    watch(w, w->done_fd, &w->done_watch, jobs_came_back) < 0)
		return -errno;
	if (srv->direct) {
		/* The direct route's ring: its descriptor polls readable when callbacks wait. */
		w->ring = zbl_ring_new(0, 0);
		if (!w->ring || watch(w, zbl_ring_fd(w->ring), &w->ring_watch, upload_ring_ready) < 0)
			return w->ring ? -errno : -ENOMEM;
	}
	w->listen_watch.cb = accept_some;
	add_listener(w);
	return 0;
}

void worker_destroy(struct worker *w)
{
	zbl_ring_free(w->ring);
	w->ring = NULL;
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->done_fd >= 0)
		close(w->done_fd);
	pthread_mutex_destroy(&w->done_lock);
}
