/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, conn.c: owns one connection's life, a small state machine run
 * by its worker's loop (level-triggered: EPOLLIN while reading, EPOLLOUT
 * only while a response waits for room):
 *
 *   HEAD --(head accepted)--> routes.c --> SEND, or BODY (PUT), or SYNC
 *   BODY --(all of it in the temporary file)--> SYNC (or SEND with --no-sync)
 *   SYNC --(the job thread is done)--> SEND
 *   SEND --(response out)--> HEAD (keep-alive) or LINGER (close)
 *
 * Uploads go socket -> bufferlist (zbl_splice_from) -> temporary file
 * (zbl_splice_to, ZBL_DRAIN); downloads go file -> bufferlist
 * (zbl_append_file) -> socket. Bytes read past the end of a head are the
 * start of its body or of the next pipelined request; they are parsed as a
 * request only once the body before them has been read whole. A response
 * sent while a declared body is still unread closes the connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

static void conn_run(struct worker *w, struct watcher *wt, uint32_t events);
static void conn_job_done(struct job *job);
static void conn_resume(struct conn *c);

/* An event left in the batch for a connection freed earlier in it. */
static void conn_gone(struct worker *w, struct watcher *wt, uint32_t events)
{
	(void)w;
	(void)wt;
	(void)events;
}

void conn_set_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &c->watch };

	if (c->events == events)
		return;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

/* Accepted connection @fd: a new connection in HEAD, or NULL (and @fd closed). */
struct conn *conn_new(struct worker *w, int fd, const char *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };

	if (c) {
		c->in = malloc(HEAD_BUF_BYTES);
		c->in_bl = zbl_new();
		c->out = zbl_new();
	}
	if (!c || !c->in || !c->in_bl || !c->out)
		goto fail;
	c->watch.cb = conn_run;
	c->w = w;
	c->fd = fd;
	c->tmp_fd = c->src_fd = c->old_fd = c->dio_fd = -1;
	c->job.done = conn_job_done;
	c->resume = conn_resume;
	c->state = ST_HEAD;
	c->events = EPOLLIN;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	http_parser_start(&c->parser, &c->head);
	c->head_deadline_ns = c->deadline_ns = cli_now_ns() + w->srv->idle_ns;
	ev.data.ptr = &c->watch;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	atomic_fetch_add(&w->srv->connections, 1);
	return c;
fail:
	if (c) {
		free(c->in);
		zbl_free(c->in_bl);
		zbl_free(c->out);
		free(c);
	}
	close(fd);
	return NULL;
}

/*
 * Frees the connection. Never while a job holds it (ST_SYNC): loop.c waits
 * for jobs first. While ring operations still use it, they are cancelled
 * and the last one's callback frees it (upload.c).
 */
void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	c->dead = true;
	if (upload_cancel(c))
		return;
	upload_end(c);
	request_reset_body(c);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	zbl_free(c->in_bl);
	zbl_free(c->out);
	free(c->cbuf);
	free(c->in);
	atomic_fetch_sub(&w->srv->connections, 1);
	/*
	 * The epoll batch being run may still hold an event for it (a ring or
	 * job callback can free a connection whose hang-up comes later in the
	 * same batch): its memory goes once the batch is over (conn_bury).
	 */
	c->watch.cb = conn_gone;
	c->next = w->graveyard;
	w->graveyard = c;
}

/* The connections freed while the last epoll batch ran: their memory goes now. */
void conn_bury(struct worker *w)
{
	while (w->graveyard) {
		struct conn *c = w->graveyard;
		w->graveyard = c->next;
		free(c);
	}
}

/* ------------------------------------------------------------------------ */
/* I/O steps, one per state; each returns when it must wait */

/*
 * Feeds buffered input to the parser. Returns with the connection in a new
 * state when a head is complete or refused, or still in ST_HEAD wanting more.
 */
static void parse_head(struct conn *c)
{
	size_t used = 0;
	enum http_result r;

	if (c->in_fed == c->in_len)
		return;
	if (!c->in_request) {
		c->in_request = true;
		c->t_start_ns = cli_now_ns();
		c->name[0] = c->why[0] = '\0';
	}
	r = http_parse(&c->parser, c->in + c->in_fed, c->in_len - c->in_fed, &used);
	if (r == HTTP_MORE) {
		c->in_fed = c->in_len;
		if (c->in_len - c->in_off == HEAD_BUF_BYTES)
			respond_error(c, 431, true, "the request head is over %d bytes",
				      HEAD_BUF_BYTES);
		return;
	}
	if (r == HTTP_BAD) {
		/* Nothing after a refused head can be trusted: answer, then close. */
		c->head.method = M_OTHER;
		respond_error(c, c->parser.status, true, "malformed request: %s",
			      c->parser.reason);
		return;
	}
	c->in_off = c->in_fed = c->in_fed + used;
	c->close_after = !c->head.keep_alive;
	c->body_bytes = c->body_in = c->body_copied = c->lib_copied = 0;
	c->body_out = false;
	route_request(c);
}

static void head_step(struct conn *c)
{
	struct server *srv = c->w->srv;
	ssize_t r;

	/* Pipelined bytes already buffered come before anything new. */
	if (c->in_fed < c->in_len) {
		parse_head(c);
		if (c->state != ST_HEAD || c->dead)
			return;
	}
	if (c->in_len == HEAD_BUF_BYTES) {
		/* Compacting is all that can make room (parse_head caught a full head). */
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_fed -= c->in_off;
		c->in_off = 0;
	}
	do {
		r = read(c->fd, c->in + c->in_len, HEAD_BUF_BYTES - c->in_len);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN)
		return;
	if (r <= 0) {
		/* A client may close between requests; mid-head it is just gone. */
		conn_close(c);
		return;
	}
	atomic_fetch_add(&srv->bytes_in, (uint64_t)r);
	c->in_len += (size_t)r;
	parse_head(c);
}

/* An upload ended before its body did: log what arrived, keep nothing. */
static void body_abort(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void body_abort(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->status = 0;
	stats_log_request(c);
	conn_close(c);
}

/*
 * Moves body bytes from the socket to the temporary file. zbl path: splice
 * into the list as kernel pages, then drain the list into the file.
 */
static void body_step(struct conn *c)
{
	struct server *srv = c->w->srv;
	uint64_t moved = 0;

	if (c->direct) {
		upload_body_step(c);
		if (c->state != ST_BODY || c->dead)
			return;
		if (c->dio_body_done) {
			c->body_unread = false;
			route_body_done(c);
		} else if (c->dio_started) {
			/* The ring reads the socket now: epoll must not wake us for it. */
			conn_set_events(c, EPOLLET);
		}
		return;
	}

	while (c->body_left || zbl_length(c->in_bl)) {
		ssize_t r = 0;

		if (moved >= FAIR_SHARE_BYTES)
			return; /* level-triggered: we will be called again */
		if (c->body_left && srv->copy) {
			size_t want = c->body_left < COPY_BUF_BYTES ? (size_t)c->body_left
								    : COPY_BUF_BYTES;
			if (!c->cbuf && !(c->cbuf = malloc(COPY_BUF_BYTES))) {
				respond_error(c, 500, true, "out of memory");
				return;
			}
			do {
				r = read(c->fd, c->cbuf, want);
			} while (r < 0 && errno == EINTR);
			if (r < 0)
				r = -errno;
		} else if (c->body_left) {
			size_t want = c->body_left < BODY_STEP_BYTES ? (size_t)c->body_left
								     : BODY_STEP_BYTES;
			/* Copies the library had to make are counted by stats_trace_copy(). */
			r = zbl_splice_from(c->in_bl, c->fd, NULL, want, 0);
		}
		if (r == -EAGAIN && !zbl_length(c->in_bl))
			return;
		if (r == 0 && c->body_left) {
			body_abort(c, "client closed the connection with %" PRIu64 " of %" PRIu64
				   " body bytes sent; nothing stored", c->body_in, c->body_bytes);
			return;
		}
		if (r < 0 && r != -EAGAIN) {
			body_abort(c, "reading the body: %s; nothing stored", err_str((int)-r));
			return;
		}
		if (r > 0) {
			c->body_left -= (uint64_t)r;
			c->body_in += (uint64_t)r;
			moved += (uint64_t)r;
			atomic_fetch_add(&srv->bytes_in, (uint64_t)r);
			c->deadline_ns = cli_now_ns() + srv->idle_ns;
		}
		if (r > 0 && srv->copy) {
			int err = store_write_at(c->tmp_fd, c->cbuf, (size_t)r, c->body_written);
			if (err < 0) {
				respond_error(c, store_status(-err) == 507 ? 507 : 500, true,
					      "writing %s: %s", c->name, err_str(-err));
				return;
			}
			c->body_copied += (uint64_t)r;
			c->body_written += (uint64_t)r;
		}
		/* The file is a regular one: the drain blocks only on the disk. */
		while (zbl_length(c->in_bl)) {
			ssize_t w = zbl_splice_to(c->in_bl, c->tmp_fd, NULL, ZBL_DRAIN);
			if (w < 0) {
				respond_error(c, store_status((int)-w) == 507 ? 507 : 500, true,
					      "writing %s: %s", c->name, err_str((int)-w));
				return;
			}
			c->body_written += (uint64_t)w;
		}
		if (!srv->no_sync && c->body_written - c->writeback_from >= WRITEBACK_STEP_BYTES) {
			store_start_writeback(c->tmp_fd, c->writeback_from, c->body_written);
			c->writeback_from = c->body_written;
		}
		if (r == -EAGAIN)
			return;
	}
	c->body_unread = false;
	route_body_done(c);
}

/* Writes the response: the list (head and zero-copy body), then any --copy body. */
static void send_step(struct conn *c)
{
	struct server *srv = c->w->srv;
	uint64_t moved = 0;

	while (zbl_length(c->out)) {
		ssize_t w = zbl_splice_to(c->out, c->fd, NULL, ZBL_DRAIN);
		if (w == -EAGAIN)
			return;
		if (w < 0) {
			note_why(c, "sending the response: %s", err_str((int)-w));
			stats_log_request(c);
			conn_close(c);
			return;
		}
		atomic_fetch_add(&srv->bytes_out, (uint64_t)w);
		c->deadline_ns = cli_now_ns() + srv->idle_ns;
		moved += (uint64_t)w;
		if (moved >= FAIR_SHARE_BYTES)
			return;
	}
	while (c->src_fd >= 0) {
		ssize_t r;

		if (c->cb_off == c->cb_len) {
			size_t want;
			if (c->src_off == c->src_end) {
				close(c->src_fd);
				c->src_fd = -1;
				break;
			}
			if (!c->cbuf && !(c->cbuf = malloc(COPY_BUF_BYTES))) {
				note_why(c, "out of memory");
				stats_log_request(c);
				conn_close(c);
				return;
			}
			want = c->src_end - c->src_off < COPY_BUF_BYTES ?
			       (size_t)(c->src_end - c->src_off) : COPY_BUF_BYTES;
			r = pread(c->src_fd, c->cbuf, want, (off_t)c->src_off);
			if (r <= 0) {
				/* The object shrank under us or the disk failed: cut the connection. */
				note_why(c, "reading %s: %s", c->name,
					 r < 0 ? err_str(errno) : "the object shrank");
				stats_log_request(c);
				conn_close(c);
				return;
			}
			c->src_off += (uint64_t)r;
			c->cb_off = 0;
			c->cb_len = (size_t)r;
		}
		r = send(c->fd, c->cbuf + c->cb_off, c->cb_len - c->cb_off, MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			note_why(c, "sending the response: %s", r < 0 ? err_str(errno) : "closed");
			stats_log_request(c);
			conn_close(c);
			return;
		}
		c->cb_off += (size_t)r;
		c->body_copied += (uint64_t)r;
		atomic_fetch_add(&srv->bytes_out, (uint64_t)r);
		c->deadline_ns = cli_now_ns() + srv->idle_ns;
		moved += (uint64_t)r;
		if (moved >= FAIR_SHARE_BYTES)
			return;
	}
	/* The response is out: log it, then close, linger, or start on the next request. */
	stats_log_request(c);
	upload_end(c);
	request_reset_body(c);
	c->in_request = false;
	if (c->close_after) {
		/*
		 * Closing with unread input makes the kernel send RST, which can
		 * destroy the response before the client reads it: stop writing
		 * and read until the client closes (briefly).
		 */
		shutdown(c->fd, SHUT_WR);
		c->state = ST_LINGER;
		c->deadline_ns = cli_now_ns() + (srv->idle_ns < LINGER_NS ? srv->idle_ns : LINGER_NS);
		conn_set_events(c, EPOLLIN);
		return;
	}
	/* Keep-alive: what is left in the buffer is the next (pipelined) request. */
	memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
	c->in_len -= c->in_off;
	c->in_off = c->in_fed = 0;
	http_parser_start(&c->parser, &c->head);
	c->state = ST_HEAD;
	c->head_deadline_ns = cli_now_ns() + srv->idle_ns;
	c->deadline_ns = c->head_deadline_ns;
	c->status = 0;
	conn_set_events(c, EPOLLIN);
}

/* After a closing response: input is read and thrown away, never parsed. */
static void linger_step(struct conn *c)
{
	char buf[4096];
	ssize_t r;

	do {
		r = read(c->fd, buf, sizeof(buf));
	} while (r > 0 || (r < 0 && errno == EINTR));
	if (r < 0 && errno == EAGAIN)
		return;
	conn_close(c);
}

/*
 * Runs the connection's current state until it must wait. Handlers move
 * between states directly (a complete head may lead straight to sending),
 * so one call may finish several pipelined requests.
 */
static void conn_steps(struct conn *c)
{
	/*
	 * A step that returns in the same state is waiting (for the socket, or
	 * letting other connections run; epoll is level-triggered, so it comes
	 * back). A new state runs at once: a parsed head is answered without
	 * another trip through epoll, and a finished response goes straight on
	 * to the next pipelined request.
	 */
	for (;;) {
		enum conn_state s = c->state;

		switch (s) {
		case ST_HEAD:
			head_step(c);
			break;
		case ST_BODY:
			body_step(c);
			break;
		case ST_SYNC:
			/*
			 * A job holds the connection: epoll must not wake us for
			 * it. Edge-triggered with no events still reports a hang-up,
			 * but once, not on every turn of the loop.
			 */
			conn_set_events(c, EPOLLET);
			return;
		case ST_SEND:
			send_step(c);
			break;
		case ST_LINGER:
			linger_step(c);
			break;
		}
		if (c->dead) {
			conn_free(c);
			return;
		}
		if (c->state == s && !(s == ST_HEAD && c->in_fed < c->in_len)) {
			/* A response still going out waits for room in the socket. */
			if (s == ST_SEND)
				conn_set_events(c, EPOLLOUT);
			return;
		}
		/*
		 * A response went out and no pipelined bytes wait: epoll says
		 * when the next request comes, a read() now would mostly find
		 * nothing (one system call per request saved).
		 */
		if (s == ST_SEND && c->state == ST_HEAD && c->in_len == 0)
			return;
	}
}

/* Runs a connection woken by epoll, charging the library's copies to it (stats_trace_copy). */
static void conn_run(struct worker *w, struct watcher *wt, uint32_t events)
{
	struct conn *c = (struct conn *)wt;

	(void)w;
	/* Held by a job, or freed once the ring lets go of it. */
	if (c->state == ST_SYNC || c->dead)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && c->state != ST_BODY && c->state != ST_HEAD) {
		if (c->state == ST_SEND) {
			note_why(c, "client went away before the response was sent");
			stats_log_request(c);
		}
		conn_free(c);
		return;
	}
	tl_conn = c;
	conn_steps(c);
	tl_conn = NULL;
}

/* The connection's job came back (jobs.c): answer the request. */
static void conn_job_done(struct job *job)
{
	struct conn *c = conn_of_job(job);

	tl_conn = c;
	route_job_done(c);
	conn_set_events(c, EPOLLIN);
	conn_steps(c);
	tl_conn = NULL;
}

/* A ring callback (upload.c) moved the connection on, or let go of a dead one. */
static void conn_resume(struct conn *c)
{
	/* It may run inside another connection's step (upload.c's window queue). */
	struct conn *outer = tl_conn;

	if (c->dead) {
		conn_free(c);
		return;
	}
	tl_conn = c;
	conn_steps(c);
	tl_conn = outer;
}

/* Drops the connection if it is past its deadline; a slow head is limited from its first byte. */
void conn_expire(struct conn *c, uint64_t now)
{
	bool late = now > c->deadline_ns ||
		    (c->state == ST_HEAD && c->in_request && now > c->head_deadline_ns);

	/*
	 * A connection whose job is running is the job's until it comes back;
	 * a dead one waits for the ring to let go of it.
	 */
	if (!late || c->state == ST_SYNC || c->dead)
		return;
	/* Waiting for room in the worker's upload window is the server's delay, not the client's. */
	if (c->dio_waiting) {
		c->deadline_ns = now + c->w->srv->idle_ns;
		return;
	}
	if (c->state == ST_BODY || c->state == ST_SEND || c->in_request) {
		if (!c->status)
			c->status = 408;
		note_why(c, c->state == ST_HEAD && now <= c->deadline_ns ?
			 "request head not complete within --idle-timeout" :
			 "no progress for --idle-timeout; connection dropped");
		stats_log_request(c);
	}
	conn_free(c);
}
