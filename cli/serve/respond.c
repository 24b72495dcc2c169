/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, respond.c: owns the response queued for a request, and the
 * request's resources that a response ends (its temporary file, open
 * objects, lists). Handlers (routes.c, stats.c) and the state machine
 * (conn.c) queue responses through these calls and then return: conn.c
 * sends what is queued.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

static void set_why(struct conn *c, const char *fmt, va_list ap)
{
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
}

/* Notes what went wrong with the request, for the error body and the access log. */
void note_why(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_why(c, fmt, ap);
	va_end(ap);
}

void request_reset_body(struct conn *c)
{
	if (c->tmp_fd >= 0) {
		close(c->tmp_fd);
		c->tmp_fd = -1;
	}
	store_discard_tmp(c->w->srv->root_fd, c->tmp_name);
	if (c->src_fd >= 0) {
		close(c->src_fd);
		c->src_fd = -1;
	}
	if (c->old_fd >= 0) {
		close(c->old_fd);
		c->old_fd = -1;
	}
	zbl_clear(c->in_bl);
	zbl_clear(c->out);
	c->cb_off = c->cb_len = 0;
}

/*
 * Queues a response head in c->out. @content_length is what the head
 * announces. A response to a request whose body has not been read whole
 * closes the connection: the unread bytes must never be taken for a request.
 */
int queue_head(struct conn *c, int status, uint64_t content_length, const char *extra)
{
	char head[512];
	int n;

	if (c->body_unread)
		c->close_after = true;
	c->status = status;
	n = http_format_head(head, sizeof(head), status, content_length, extra, c->close_after);
	if (n < 0)
		return -EOVERFLOW;
	return zbl_append(c->out, head, (size_t)n);
}

/*
 * The response is tried at once (conn_steps runs send_step next); only a
 * send that has to wait asks epoll for EPOLLOUT, which saves two epoll_ctl
 * calls on every response that fits the socket buffer.
 */
void start_send(struct conn *c)
{
	c->state = ST_SEND;
	c->deadline_ns = cli_now_ns() + c->w->srv->idle_ns;
}

/*
 * An error response whose one-line text body says what was wrong (printf
 * @fmt); the access log shows the same words. @close ends the connection
 * after it: the rest of the input cannot be trusted to be a next request.
 */
void respond_error(struct conn *c, int status, bool close, const char *fmt, ...)
{
	char body[sizeof(c->why) + 64];
	const char *extra = "Content-Type: text/plain\r\n";
	va_list ap;
	int n;

	va_start(ap, fmt);
	set_why(c, fmt, ap);
	va_end(ap);
	n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_reason(status), c->why);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	if (status == 405)
		extra = c->name[0] ? "Content-Type: text/plain\r\nAllow: GET, HEAD, PUT, DELETE\r\n"
				   : "Content-Type: text/plain\r\nAllow: GET, HEAD\r\n";
	if (close)
		c->close_after = true;
	request_reset_body(c);
	if (c->head.method == M_HEAD)
		n = 0;
	if (queue_head(c, status, (uint64_t)n, extra) < 0 || zbl_append(c->out, body, (size_t)n) < 0)
		c->close_after = true;
	start_send(c);
}

void respond_text(struct conn *c, int status, const char *type, const char *text, size_t len)
{
	char extra[128];

	snprintf(extra, sizeof(extra), "Content-Type: %s\r\n", type);
	if (queue_head(c, status, len, extra) < 0 ||
	    (c->head.method != M_HEAD && zbl_append(c->out, text, len) < 0)) {
		zbl_clear(c->out);
		respond_error(c, 500, true, "out of memory for the response");
		return;
	}
	start_send(c);
}

