/* SPDX-License-Identifier: MIT */
/*
 * zbl serve: an HTTP/1.1 object server whose bodies stay in kernel pages.
 *
 * Uploads go socket -> bufferlist (zbl_splice_from) -> temporary file
 * (zbl_splice_to, ZBL_DRAIN) and are linked into place when complete;
 * downloads go file -> bufferlist (zbl_append_file) -> socket. Headers are
 * parsed with llhttp from a per-connection buffer; bytes read past the end of
 * the headers are the start of the body (or of the next pipelined request).
 *
 * One thread per core, each with its own epoll loop; all share one
 * non-blocking listening socket registered with EPOLLEXCLUSIVE. Each
 * connection is a small state machine, level-triggered: it waits for
 * EPOLLIN while reading and EPOLLOUT while writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llhttp.h>

#include "zbl.h"
#include "cli.h"

/* Request head: everything up to the blank line must fit here, or 431. */
#define HEAD_BUF_BYTES		(16 * 1024)
#define URL_MAX_BYTES		1024
#define NAME_MAX_BYTES		255
#define HEADER_VALUE_MAX_BYTES	256
/* Largest zbl_splice_from() per step: about one pipe's worth, then drain to the file. */
#define BODY_STEP_BYTES		((size_t)1 << 20)
/* Per-connection bounce buffer for --copy. */
#define COPY_BUF_BYTES		((size_t)256 << 10)
/* Bytes moved for one connection before the loop lets the others run. */
#define FAIR_SHARE_BYTES	((uint64_t)16 << 20)
#define ACCEPT_BATCH		32
#define EVENTS_MAX		64
#define LISTEN_BACKLOG		1024
/* How long to wait for a client to close after an error response. */
#define LINGER_NS		(2ull * 1000000000u)
#define DEFAULT_MAX_OBJECT	((uint64_t)4 << 30)
#define TMP_PREFIX		".zbl-tmp."
/* Set (not "0") by the tests only: behave as if /proc were not mounted. */
#define TEST_NO_PROC_ENV	"ZBL_SERVE_TEST_NO_PROC"

enum conn_state {
	ST_HEAD,	/* reading a request head */
	ST_BODY,	/* receiving a PUT body into the temporary file */
	ST_SEND,	/* writing a response */
	ST_LINGER,	/* response sent, discarding input until the client closes */
};

enum method { M_OTHER, M_GET, M_HEAD, M_PUT, M_DELETE };

struct server {
	int root_fd;
	int listen_fd;
	uint64_t max_object;
	uint64_t idle_ns;
	bool copy;
	bool quiet;
	atomic_bool named_tmp;		/* uploads go to named temporary files (no /proc) */
	int threads;
	atomic_bool stop;
	atomic_uint_fast64_t requests, bytes_in, bytes_out;
	atomic_uint_fast64_t body_kernel, body_copied;
	atomic_uint_fast64_t connections;
	atomic_uint_fast32_t tmp_seq;
};

struct worker {
	struct server *srv;
	pthread_t thread;
	int id;
	int epfd;
	int wake_fd;			/* eventfd: the main thread asks us to stop */
	bool accept_paused;
	uint64_t accept_resume_ns;	/* out of descriptors: retry accepting then */
	struct conn *conns;		/* every open connection, for the timeout sweep */
};

struct conn {
	struct conn *prev, *next;
	struct worker *w;
	int fd;
	enum conn_state state;
	bool dead;			/* closed by a step; freed by conn_run */
	uint32_t events;		/* what epoll waits for now */
	char peer[64];

	/* Input buffer: unconsumed bytes are [in_off, in_len); [in_off, in_fed) went to llhttp. */
	char *in;
	size_t in_off, in_fed, in_len;
	llhttp_t parser;

	/* The request being parsed or served. */
	enum method method;
	char method_str[16];
	char url[URL_MAX_BYTES + 1];
	size_t url_len;
	bool url_too_long;
	char field[32];
	size_t field_len;
	char value[HEADER_VALUE_MAX_BYTES + 1];
	size_t value_len;
	bool value_too_long;
	char range[HEADER_VALUE_MAX_BYTES + 1];
	bool has_range;
	bool expect_continue;
	bool keep_alive;
	bool close_after;
	uint64_t head_deadline_ns;	/* slow-header limit; fixed when the request starts */
	uint64_t deadline_ns;		/* idle limit; pushed back by progress */
	uint64_t t_start_ns;
	bool in_request;		/* some bytes of a request have arrived */

	/* PUT: the body goes to tmp_fd, linked as name when complete. */
	char name[NAME_MAX_BYTES + 1];
	int tmp_fd;
	char tmp_name[64];		/* set only when O_TMPFILE was not available */
	/*
	 * The object a PUT replaced, held open until the response is out: the
	 * kernel frees its page cache when the last reference goes, which for a
	 * large object took longer than the upload's own last step.
	 */
	int old_fd;
	uint64_t body_left;

	/* Lists: body bytes in flight to the file, and the response being sent. */
	zbl_t *in_bl;
	zbl_t *out;

	/* --copy: response body read from src_fd into cbuf and written from there. */
	int src_fd;
	uint64_t src_off, src_end;
	char *cbuf;
	size_t cb_off, cb_len;

	/* Access log. */
	int status;
	char why[160];			/* for an error or an aborted request: what went wrong */
	uint64_t body_bytes;		/* body bytes to receive (PUT) or send (GET) */
	bool body_out;			/* the body is in the response */
	uint64_t body_copied;		/* of those, copied by the server itself */
	uint64_t lib_copied;		/* of those, copied by the library (trace_copy) */
};

/*
 * The connection this thread is running now (conn_run sets it). The
 * library's counters are process-wide and several loops run at once, so they
 * cannot say which request a copy was made for; its trace callback runs in
 * the thread that copied, from inside the call that copied, and a thread
 * works on one connection at a time: the copy belongs to tl_conn's request.
 */
static __thread struct conn *tl_conn;

static void trace_copy(const char *what, size_t bytes, void *ctx)
{
	(void)what;
	(void)ctx;
	if (tl_conn)
		tl_conn->lib_copied += bytes;
}

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 416: return "Range Not Satisfiable";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

/* A description of @err that stays valid (unlike strerror's buffer). */
static const char *err_str(int err)
{
	const char *d = strerrordesc_np(err);

	return d ? d : "unknown error";
}

/* Notes what went wrong with the request, for the error body and the access log. */
static void set_why(struct conn *c, const char *fmt, va_list ap)
{
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
}

static void note_why(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_why(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_why(c, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Connection bookkeeping */

static void conn_set_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

static void request_reset_body(struct conn *c)
{
	if (c->tmp_fd >= 0) {
		close(c->tmp_fd);
		c->tmp_fd = -1;
	}
	if (c->tmp_name[0]) {
		/* Named fallback temporary file: an aborted upload must leave nothing. */
		unlinkat(c->w->srv->root_fd, c->tmp_name, 0);
		c->tmp_name[0] = '\0';
	}
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

static void conn_free(struct conn *c)
{
	struct worker *w = c->w;

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
	free(c);
}

/*
 * Marks the connection for closing. Steps call this; the loop in conn_run()
 * frees it once no step is using it any more.
 */
static void conn_close(struct conn *c)
{
	c->dead = true;
}

/* ------------------------------------------------------------------------ */
/* Parsing */

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = p->data;

	c->url_len = 0;
	c->url_too_long = false;
	c->field_len = 0;
	c->value_len = 0;
	c->has_range = false;
	c->expect_continue = false;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->url_len + len > URL_MAX_BYTES) {
		c->url_too_long = true;
		return 0;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	size_t n = len;

	/* Names longer than any we look at are kept truncated and never match. */
	if (c->field_len + n >= sizeof(c->field))
		n = sizeof(c->field) - 1 - c->field_len;
	memcpy(c->field + c->field_len, at, n);
	c->field_len += n;
	c->field[c->field_len] = '\0';
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->value_len + len > HEADER_VALUE_MAX_BYTES) {
		c->value_too_long = true;
		return 0;
	}
	memcpy(c->value + c->value_len, at, len);
	c->value_len += len;
	c->value[c->value_len] = '\0';
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct conn *c = p->data;

	if (!strcasecmp(c->field, "range") && !c->value_too_long) {
		memcpy(c->range, c->value, c->value_len + 1);
		c->has_range = true;
	} else if (!strcasecmp(c->field, "expect")) {
		c->expect_continue = !strcasecmp(c->value, "100-continue");
	}
	c->field_len = 0;
	c->value_len = 0;
	c->value_too_long = false;
	c->field[0] = c->value[0] = '\0';
	return 0;
}

/* Stop at the end of the head: the body is not llhttp's business. */
static int on_headers_complete(llhttp_t *p)
{
	(void)p;
	return HPE_PAUSED;
}

static llhttp_settings_t parser_settings;

static void parser_start(struct conn *c)
{
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
}

/*
 * NAME: 1..255 of [A-Za-z0-9._-], not "." or "..", and not our temporary
 * prefix. The URL must be exactly "/NAME" (a query string is ignored); no
 * percent-decoding is done, so "%2e%2e" and "%2f" are simply invalid.
 */
static bool url_to_name(const struct conn *c, char *name)
{
	const char *u = c->url;
	size_t n = 0;

	if (c->url_too_long || u[0] != '/')
		return false;
	for (u++; *u && *u != '?'; u++) {
		char ch = *u;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
		if (n == NAME_MAX_BYTES)
			return false;
		name[n++] = ch;
	}
	name[n] = '\0';
	if (n == 0 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0;
}

/* ------------------------------------------------------------------------ */
/* Responses */

/* Body bytes received or sent so far: all of them unless the request was cut short. */
static uint64_t body_moved(const struct conn *c)
{
	uint64_t unsent;

	if (c->state == ST_BODY)
		return c->body_bytes - c->body_left;
	if (c->state != ST_SEND || !c->body_out)
		return c->body_bytes;
	/* The head goes out before the body, so the last bytes unsent are the body's. */
	unsent = zbl_length(c->out);
	if (c->src_fd >= 0)
		unsent += (c->src_end - c->src_off) + (c->cb_len - c->cb_off);
	return unsent < c->body_bytes ? c->body_bytes - unsent : 0;
}

static void log_request(struct conn *c)
{
	struct server *srv = c->w->srv;
	uint64_t us = (cli_now_ns() - c->t_start_ns) / 1000;
	uint64_t moved = body_moved(c), copied = c->body_copied + c->lib_copied;

	/*
	 * A pipe emptied into memory is reported whole (its capacity), which
	 * can be more than this body; no more than the body was copied.
	 */
	if (copied > moved)
		copied = moved;
	atomic_fetch_add(&srv->requests, 1);
	atomic_fetch_add(&srv->body_kernel, moved - copied);
	atomic_fetch_add(&srv->body_copied, copied);
	if (srv->quiet)
		return;
	fprintf(stderr, "%s %s /%s %d %" PRIu64 " %" PRIu64 ".%03" PRIu64 "ms kernel=%" PRIu64
		" copied=%" PRIu64 "%s%s%s\n", c->peer, c->method_str[0] ? c->method_str : "-",
		c->name[0] ? c->name : (c->url_len ? c->url + 1 : ""), c->status, moved,
		us / 1000, us % 1000, moved - copied, copied,
		c->why[0] ? " error=\"" : "", c->why, c->why[0] ? "\"" : "");
}

/*
 * Queues a response head (and, for errors, a short text body) in c->out and
 * switches to sending. @content_length is what the head announces.
 */
static int queue_head(struct conn *c, int status, uint64_t content_length,
		      const char *extra)
{
	char head[512];
	int n;

	c->status = status;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nServer: zbl/%s\r\nContent-Length: %" PRIu64 "\r\n%s%s\r\n",
		     status, reason(status), ZBL_VERSION_STRING, content_length,
		     extra ? extra : "", c->close_after ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EOVERFLOW;
	return zbl_append(c->out, head, (size_t)n);
}

/*
 * The response is tried at once (conn_steps runs send_step next); only a
 * send that has to wait asks epoll for EPOLLOUT, which saves two epoll_ctl
 * calls on every response that fits the socket buffer.
 */
static void start_send(struct conn *c)
{
	c->state = ST_SEND;
	c->deadline_ns = cli_now_ns() + c->w->srv->idle_ns;
}

/*
 * An error response whose one-line text body says what was wrong (printf
 * @fmt); the access log shows the same words. @close ends the connection
 * after it: the rest of the input cannot be trusted to be a next request.
 */
static void respond_error(struct conn *c, int status, bool close, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void respond_error(struct conn *c, int status, bool close, const char *fmt, ...)
{
	char body[sizeof(c->why) + 64];
	const char *extra = "Content-Type: text/plain\r\n";
	va_list ap;
	int n;

	va_start(ap, fmt);
	set_why(c, fmt, ap);
	va_end(ap);
	n = snprintf(body, sizeof(body), "%d %s: %s\n", status, reason(status), c->why);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	if (status == 405)
		extra = c->name[0] ? "Content-Type: text/plain\r\nAllow: GET, HEAD, PUT, DELETE\r\n"
				   : "Content-Type: text/plain\r\nAllow: GET, HEAD\r\n";
	if (close)
		c->close_after = true;
	request_reset_body(c);
	if (c->method == M_HEAD)
		n = 0;
	if (queue_head(c, status, (uint64_t)n, extra) < 0 || zbl_append(c->out, body, (size_t)n) < 0)
		c->close_after = true;
	start_send(c);
}

static void respond_text(struct conn *c, int status, const char *type, const char *text,
			 size_t len)
{
	char extra[128];

	snprintf(extra, sizeof(extra), "Content-Type: %s\r\n", type);
	if (queue_head(c, status, len, extra) < 0 ||
	    (c->method != M_HEAD && zbl_append(c->out, text, len) < 0)) {
		zbl_clear(c->out);
		respond_error(c, 500, true, "out of memory for the response");
		return;
	}
	start_send(c);
}

/* The counters of struct zbl_stats, by name, in one table for /_stats and /_metrics. */
struct stat_field {
	const char *name;
	uint64_t value;
	bool gauge;
};

static size_t collect_stats(struct server *srv, struct stat_field *f)
{
	struct zbl_stats st;
	size_t n = 0;

	zbl_stats_get(&st);
#define F(x, g) f[n++] = (struct stat_field){ #x, st.x, g }
	F(bytes_copied_in, false);
	F(bytes_spliced_in, false);
	F(bytes_copied_out, false);
	F(bytes_spliced_out, false);
	F(bytes_teed, false);
	F(bytes_materialized, false);
	F(materializations, false);
	F(fallbacks, false);
	F(pipes_created, false);
	F(pipes_live, true);
#undef F
	f[n++] = (struct stat_field){ "requests", atomic_load(&srv->requests), false };
	f[n++] = (struct stat_field){ "bytes_in", atomic_load(&srv->bytes_in), false };
	f[n++] = (struct stat_field){ "bytes_out", atomic_load(&srv->bytes_out), false };
	f[n++] = (struct stat_field){ "body_bytes_kernel", atomic_load(&srv->body_kernel), false };
	f[n++] = (struct stat_field){ "body_bytes_copied", atomic_load(&srv->body_copied), false };
	f[n++] = (struct stat_field){ "connections", atomic_load(&srv->connections), true };
	return n;
}

static void respond_stats(struct conn *c, bool prometheus)
{
	struct stat_field f[32];
	size_t n = collect_stats(c->w->srv, f), len = 0;
	char text[4096];

	if (!prometheus)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "{");
	for (size_t i = 0; i < n; i++) {
		if (prometheus)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
						"# TYPE zbl_%s%s %s\nzbl_%s%s %" PRIu64 "\n",
						f[i].name, f[i].gauge ? "" : "_total",
						f[i].gauge ? "gauge" : "counter", f[i].name,
						f[i].gauge ? "" : "_total", f[i].value);
		else
			len += (size_t)snprintf(text + len, sizeof(text) - len,
						"%s\"%s\": %" PRIu64, i ? ", " : "", f[i].name,
						f[i].value);
	}
	if (!prometheus)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "}\n");
	respond_text(c, 200, prometheus ? "text/plain; version=0.0.4" : "application/json",
		     text, len);
}

/*
 * Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against an object of @size.
 * Returns 1 with [*first, *last] set, 0 to ignore the header (not a single
 * byte range we understand: RFC 9110 lets a server then send everything), or
 * -1 if unsatisfiable.
 */
static int parse_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *p;
	char *end;
	unsigned long long a, b;

	if (strncasecmp(v, "bytes=", 6))
		return 0;
	p = v + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return 0;
	if (*p == '-') {
		if (p[1] < '0' || p[1] > '9')
			return 0;
		errno = 0;
		b = strtoull(p + 1, &end, 10);
		if (errno || *end)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 0;
	p = end + 1;
	if (!*p) {
		b = UINT64_MAX;
	} else {
		if (*p < '0' || *p > '9')
			return 0;
		b = strtoull(p, &end, 10);
		if (errno || *end || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

static void handle_get(struct conn *c)
{
	struct server *srv = c->w->srv;
	struct stat st;
	uint64_t first = 0, last = 0, len;
	char extra[160];
	int fd, status = 200, r;

	fd = openat(srv->root_fd, c->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP)
			respond_error(c, 404, false, "no object %s", c->name);
		else
			respond_error(c, 500, false, "opening %s: %s", c->name, err_str(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		respond_error(c, 404, false, "no object %s", c->name);
		return;
	}
	len = (uint64_t)st.st_size;
	extra[0] = '\0';
	r = c->has_range ? parse_range(c->range, len, &first, &last) : 0;
	if (r < 0) {
		close(fd);
		snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64 "\r\n", len);
		c->status = 416;
		if (queue_head(c, 416, 0, extra) < 0)
			c->close_after = true;
		start_send(c);
		return;
	}
	if (r > 0) {
		status = 206;
		snprintf(extra, sizeof(extra), "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
			 "\r\n", first, last, len);
		len = last - first + 1;
	}
	strcat(extra, "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n");
	if (queue_head(c, status, len, extra) < 0) {
		close(fd);
		zbl_clear(c->out);
		respond_error(c, 500, true, "out of memory for the response");
		return;
	}
	if (c->method == M_HEAD || len == 0) {
		close(fd);
		start_send(c);
		return;
	}
	c->body_bytes = len;
	c->body_out = true;
	if (srv->copy) {
		c->src_fd = fd;
		c->src_off = first;
		c->src_end = first + len;
		start_send(c);
		return;
	}
	/* The body as a lazy reference to the file's pages: sent by sendfile/splice. */
	r = zbl_append_file(c->out, fd, (int64_t)first, len);
	close(fd);
	if (r < 0) {
		zbl_clear(c->out);
		respond_error(c, 500, true, "reading %s: %s", c->name, err_str(-r));
		return;
	}
	start_send(c);
}

static void handle_delete(struct conn *c)
{
	struct stat st;
	int fd = c->w->srv->root_fd, err = 0;

	/* Only regular files are objects; anything else in the root is not ours. */
	if (fstatat(fd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = ENOENT;
	else if (unlinkat(fd, c->name, 0) < 0)
		err = errno;
	if (err == ENOENT) {
		respond_error(c, 404, false, "no object %s", c->name);
		return;
	}
	if (err) {
		respond_error(c, 500, false, "deleting %s: %s", c->name, err_str(err));
		return;
	}
	c->status = 204;
	if (queue_head(c, 204, 0, NULL) < 0)
		c->close_after = true;
	start_send(c);
}

/*
 * The temporary file for an upload: an unnamed O_TMPFILE in the root (so
 * nothing is left behind even if the server dies), or a named one, removed
 * on abort, where the filesystem lacks O_TMPFILE or there is no /proc to
 * link an unnamed file into place with.
 */
static int open_tmp(struct conn *c)
{
	struct server *srv = c->w->srv;
	int fd;

	if (!atomic_load(&srv->named_tmp)) {
		fd = openat(srv->root_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fd;
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -errno;
	}
	for (int tries = 0; tries < 100; tries++) {
		snprintf(c->tmp_name, sizeof(c->tmp_name), TMP_PREFIX "%d.%u", (int)getpid(),
			 (unsigned)atomic_fetch_add(&srv->tmp_seq, 1));
		fd = openat(srv->root_fd, c->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			break;
	}
	c->tmp_name[0] = '\0';
	return -errno;
}

/*
 * Gives the unnamed temporary file the name @name in the root. Through
 * /proc/self/fd any user may; linkat(AT_EMPTY_PATH) would need
 * CAP_DAC_READ_SEARCH, so it is only the second try. Returns 0 or -errno
 * (-EEXIST if @name exists).
 */
static int link_unnamed(struct conn *c, const char *name)
{
	struct server *srv = c->w->srv;
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->tmp_fd);
	if (linkat(AT_FDCWD, proc, srv->root_fd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	if (linkat(c->tmp_fd, "", srv->root_fd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno == ENOENT || errno == EPERM) {
		/* /proc went away after start-up: later uploads take the named path. */
		atomic_store(&srv->named_tmp, true);
		return -ENOENT;
	}
	return -errno;
}

/* Links the finished upload into place. Returns 201 (new), 200 (replaced) or -errno. */
/* Keeps the object about to be replaced open (c->old_fd); nothing if there is none. */
static void hold_old(struct conn *c)
{
	if (c->old_fd < 0)
		c->old_fd = openat(c->w->srv->root_fd, c->name,
				   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

static int commit_tmp(struct conn *c)
{
	struct server *srv = c->w->srv;
	char tmp[64];
	bool existed;
	int r;

	if (c->tmp_name[0]) {
		hold_old(c);
		existed = c->old_fd >= 0 ||
			  faccessat(srv->root_fd, c->name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
		if (renameat(srv->root_fd, c->tmp_name, srv->root_fd, c->name) < 0)
			return -errno;
		c->tmp_name[0] = '\0';
		return existed ? 200 : 201;
	}
	/* A new name is linked directly, which cannot replace anything. */
	r = link_unnamed(c, c->name);
	if (r != -EEXIST)
		return r < 0 ? r : 201;
	/* Replacing: link under a temporary name, then rename over the old object. */
	for (int tries = 0; tries < 100; tries++) {
		snprintf(tmp, sizeof(tmp), TMP_PREFIX "%d.%u", (int)getpid(),
			 (unsigned)atomic_fetch_add(&srv->tmp_seq, 1));
		r = link_unnamed(c, tmp);
		if (r != -EEXIST)
			break;
	}
	if (r < 0)
		return r;
	hold_old(c);
	if (renameat(srv->root_fd, tmp, srv->root_fd, c->name) < 0) {
		r = -errno;
		unlinkat(srv->root_fd, tmp, 0);
		return r;
	}
	return 200;
}

static void finish_put(struct conn *c)
{
	int r;

	r = commit_tmp(c);
	if (r < 0) {
		respond_error(c, r == -ENOSPC || r == -EDQUOT ? 507 : 500, true,
			      "storing %s: %s", c->name, err_str(-r));
		return;
	}
	close(c->tmp_fd);
	c->tmp_fd = -1;
	if (queue_head(c, r, 0, NULL) < 0)
		c->close_after = true;
	start_send(c);
}

static void handle_put(struct conn *c, uint64_t content_length)
{
	struct server *srv = c->w->srv;
	size_t have = c->in_len - c->in_off, take;
	int fd;

	/*
	 * The object is stored only whole and its size must be known up front
	 * (for --max-object, before reading any of it): no chunked uploads.
	 */
	if (c->parser.flags & F_TRANSFER_ENCODING) {
		respond_error(c, 411, true, "PUT needs Content-Length; "
			      "Transfer-Encoding (chunked) uploads are not accepted");
		return;
	}
	if (!(c->parser.flags & F_CONTENT_LENGTH)) {
		respond_error(c, 411, true, "PUT needs Content-Length");
		return;
	}
	if (content_length > srv->max_object) {
		respond_error(c, 413, true, "Content-Length %" PRIu64 " is over --max-object %" PRIu64,
			      content_length, srv->max_object);
		return;
	}
	fd = open_tmp(c);
	if (fd < 0) {
		respond_error(c, fd == -ENOSPC || fd == -EDQUOT ? 507 : 500, true,
			      "temporary file in the root: %s", err_str(-fd));
		return;
	}
	c->tmp_fd = fd;
	c->body_left = content_length;
	c->body_bytes = content_length;

	/* Bytes read with the head are the start of the body: they go first. */
	take = have < content_length ? have : (size_t)content_length;
	if (take) {
		ssize_t w = -EIO;
		if (srv->copy ? (w = write(fd, c->in + c->in_off, take)) == (ssize_t)take
			      : zbl_append(c->in_bl, c->in + c->in_off, take) == 0) {
			c->in_off += take;
			c->body_left -= take;
			c->body_copied += take;
		} else {
			int err = w < 0 ? errno : EIO;
			respond_error(c, err == ENOSPC || err == EDQUOT ? 507 : 500, true,
				      "writing %s: %s", c->name, err_str(err));
			return;
		}
	}
	if (c->expect_continue && c->body_left) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		/* An empty socket buffer always takes 25 bytes; if not, give up on the client. */
		if (write(c->fd, cont, sizeof(cont) - 1) != sizeof(cont) - 1) {
			request_reset_body(c);
			conn_close(c);
			return;
		}
		atomic_fetch_add(&srv->bytes_out, sizeof(cont) - 1);
	}
	c->state = ST_BODY;
	c->deadline_ns = cli_now_ns() + srv->idle_ns;
	conn_set_events(c, EPOLLIN);
}

/* A complete head is in c->in up to @head_end: decide what to do with the request. */
static void handle_request(struct conn *c, size_t head_end)
{
	struct server *srv = c->w->srv;
	uint64_t content_length = c->parser.content_length;
	bool has_body;

	c->in_off = head_end;
	c->in_fed = head_end;
	c->keep_alive = llhttp_should_keep_alive(&c->parser);
	c->close_after = !c->keep_alive;
	c->body_bytes = c->body_copied = c->lib_copied = 0;
	c->body_out = false;
	switch (c->parser.method) {
	case HTTP_GET: c->method = M_GET; break;
	case HTTP_HEAD: c->method = M_HEAD; break;
	case HTTP_PUT: c->method = M_PUT; break;
	case HTTP_DELETE: c->method = M_DELETE; break;
	default: c->method = M_OTHER; break;
	}
	snprintf(c->method_str, sizeof(c->method_str), "%s",
		 llhttp_method_name((llhttp_method_t)c->parser.method));
	has_body = (c->parser.flags & F_TRANSFER_ENCODING) ||
		   ((c->parser.flags & F_CONTENT_LENGTH) && content_length);

	if (c->parser.upgrade) {
		respond_error(c, 400, true, "protocol upgrades are not supported");
		return;
	}
	if (c->method != M_PUT && has_body) {
		/* Bodies are only understood on PUT; skipping them is not worth the risk. */
		respond_error(c, 400, true, "a request body is only accepted with PUT");
		return;
	}
	if (!c->url_too_long && (!strcmp(c->url, "/_stats") || !strcmp(c->url, "/_metrics"))) {
		if (c->method == M_GET || c->method == M_HEAD)
			respond_stats(c, c->url[2] == 'm');
		else
			respond_error(c, 405, false, "%s answers GET and HEAD", c->url);
		return;
	}
	if (!url_to_name(c, c->name)) {
		c->name[0] = '\0';
		respond_error(c, 400, c->method == M_PUT,
			      "the path must be /NAME, NAME 1 to %d of A-Z a-z 0-9 . _ - "
			      "(not . or .. or starting with " TMP_PREFIX ")", NAME_MAX_BYTES);
		return;
	}
	switch (c->method) {
	case M_GET:
	case M_HEAD:
		handle_get(c);
		break;
	case M_PUT:
		handle_put(c, content_length);
		break;
	case M_DELETE:
		handle_delete(c);
		break;
	default:
		respond_error(c, 405, false, "%s is not supported", c->method_str);
		break;
	}
	(void)srv;
}

/*
 * Feeds buffered input to llhttp. Returns with the connection in a new state
 * when a head is complete or malformed, or still in ST_HEAD wanting more.
 */
static void parse_head(struct conn *c)
{
	llhttp_errno_t e;

	if (c->in_fed == c->in_len)
		return;
	if (!c->in_request) {
		c->in_request = true;
		c->t_start_ns = cli_now_ns();
		c->name[0] = c->method_str[0] = c->why[0] = '\0';
		c->url_len = 0;
		c->url[0] = '\0';
	}
	e = llhttp_execute(&c->parser, c->in + c->in_fed, c->in_len - c->in_fed);
	if (e == HPE_OK) {
		c->in_fed = c->in_len;
		if (c->in_len - c->in_off == HEAD_BUF_BYTES)
			respond_error(c, 431, true, "the request head is over %d bytes",
				      HEAD_BUF_BYTES);
		return;
	}
	if (e == HPE_PAUSED) {
		handle_request(c, (size_t)(llhttp_get_error_pos(&c->parser) - c->in));
		return;
	}
	c->method = M_OTHER;
	respond_error(c, 400, true, "malformed request: %s", llhttp_get_error_reason(&c->parser));
}

/* ------------------------------------------------------------------------ */
/* I/O steps, one per state; each returns when it must wait */

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

static void request_done(struct conn *c);

/*
 * Moves body bytes from the socket to the temporary file. zbl path: splice
 * into the list as kernel pages, then drain the list into the file.
 */
static void body_step(struct conn *c)
{
	struct server *srv = c->w->srv;
	uint64_t moved = 0;

	while (c->body_left || zbl_length(c->in_bl)) {
		ssize_t r = 0;

		if (moved >= FAIR_SHARE_BYTES)
			return; /* level-triggered: we will be called again */
		if (c->body_left && srv->copy) {
			if (!c->cbuf && !(c->cbuf = malloc(COPY_BUF_BYTES))) {
				respond_error(c, 500, true, "out of memory");
				return;
			}
			size_t want = c->body_left < COPY_BUF_BYTES ? (size_t)c->body_left
								    : COPY_BUF_BYTES;
			do {
				r = read(c->fd, c->cbuf, want);
			} while (r < 0 && errno == EINTR);
			if (r > 0) {
				for (ssize_t done = 0, w; done < r; done += w) {
					w = write(c->tmp_fd, c->cbuf + done, (size_t)(r - done));
					if (w < 0 && errno == EINTR) {
						w = 0;
						continue;
					}
					if (w <= 0) {
						int err = w < 0 ? errno : EIO;
						respond_error(c, err == ENOSPC || err == EDQUOT ? 507 : 500,
							      true, "writing %s: %s", c->name,
							      err_str(err));
						return;
					}
				}
				c->body_copied += (uint64_t)r;
			} else if (r < 0) {
				r = -errno;
			}
		} else if (c->body_left) {
			size_t want = c->body_left < BODY_STEP_BYTES ? (size_t)c->body_left
								     : BODY_STEP_BYTES;
			/* Copies the library had to make are counted by trace_copy(). */
			r = zbl_splice_from(c->in_bl, c->fd, NULL, want, 0);
		}
		if (r == -EAGAIN && !zbl_length(c->in_bl))
			return;
		if (r == 0 && c->body_left) {
			/* The client went away mid-body: drop the upload, keep nothing. */
			c->status = 0;
			note_why(c, "client closed the connection with %" PRIu64 " of %" PRIu64
				 " body bytes sent; nothing stored", c->body_bytes - c->body_left,
				 c->body_bytes);
			log_request(c);
			conn_close(c);
			return;
		}
		if (r < 0 && r != -EAGAIN) {
			c->status = 0;
			note_why(c, "reading the body: %s; nothing stored", err_str((int)-r));
			log_request(c);
			conn_close(c);
			return;
		}
		if (r > 0) {
			c->body_left -= (uint64_t)r;
			moved += (uint64_t)r;
			atomic_fetch_add(&srv->bytes_in, (uint64_t)r);
			c->deadline_ns = cli_now_ns() + srv->idle_ns;
		}
		/* The file is a regular one: the drain blocks only on the disk. */
		while (zbl_length(c->in_bl)) {
			ssize_t w = zbl_splice_to(c->in_bl, c->tmp_fd, NULL, ZBL_DRAIN);
			if (w < 0) {
				respond_error(c, w == -ENOSPC || w == -EDQUOT ? 507 : 500, true,
					      "writing %s: %s", c->name, err_str((int)-w));
				return;
			}
		}
		if (r == -EAGAIN)
			return;
	}
	finish_put(c);
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
			log_request(c);
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
				log_request(c);
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
				log_request(c);
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
			log_request(c);
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
	request_done(c);
}

/* The response is out: log it, then close, linger, or start on the next request. */
static void request_done(struct conn *c)
{
	struct server *srv = c->w->srv;

	log_request(c);
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
	parser_start(c);
	c->state = ST_HEAD;
	c->head_deadline_ns = cli_now_ns() + srv->idle_ns;
	c->deadline_ns = c->head_deadline_ns;
	c->status = 0;
	c->method = M_OTHER;
	conn_set_events(c, EPOLLIN);
}

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

/* Runs a connection woken by epoll, charging the library's copies to it (trace_copy). */
static void conn_run(struct conn *c, uint32_t events)
{
	if (events & (EPOLLERR | EPOLLHUP) && c->state != ST_BODY && c->state != ST_HEAD) {
		if (c->state == ST_SEND) {
			note_why(c, "client went away before the response was sent");
			log_request(c);
		}
		conn_free(c);
		return;
	}
	tl_conn = c;
	conn_steps(c);
	tl_conn = NULL;
}

/* ------------------------------------------------------------------------ */
/* Event loops */

static void accept_some(struct worker *w)
{
	struct server *srv = w->srv;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int one = 1;
		int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The listen socket stays readable: stop polling it for a second. */
				fprintf(stderr, "zbl serve: accept: %s; pausing for 1 s\n",
					strerror(errno));
				epoll_ctl(w->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
				w->accept_paused = true;
				w->accept_resume_ns = cli_now_ns() + 1000000000u;
			}
			return;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (c) {
			c->in = malloc(HEAD_BUF_BYTES);
			c->in_bl = zbl_new();
			c->out = zbl_new();
		}
		if (!c || !c->in || !c->in_bl || !c->out) {
			if (c) {
				free(c->in);
				zbl_free(c->in_bl);
				zbl_free(c->out);
				free(c);
			}
			close(fd);
			continue;
		}
		c->w = w;
		c->fd = fd;
		c->tmp_fd = c->src_fd = c->old_fd = -1;
		c->state = ST_HEAD;
		c->events = EPOLLIN;
		cli_addr_str((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		parser_start(c);
		c->head_deadline_ns = c->deadline_ns = cli_now_ns() + srv->idle_ns;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			zbl_free(c->in_bl);
			zbl_free(c->out);
			free(c->in);
			free(c);
			close(fd);
			continue;
		}
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		atomic_fetch_add(&srv->connections, 1);
	}
}

static void add_listener(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL };

	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->srv->listen_fd, &ev) == 0)
		w->accept_paused = false;
}

/* Drops connections past their deadline; a slow head is limited from its first byte. */
static void sweep(struct worker *w, uint64_t now)
{
	struct conn *c = w->conns, *next;

	for (; c; c = next) {
		next = c->next;
		bool late = now > c->deadline_ns ||
			    (c->state == ST_HEAD && c->in_request && now > c->head_deadline_ns);
		if (!late)
			continue;
		if (c->state == ST_BODY || c->state == ST_SEND || c->in_request) {
			if (!c->status)
				c->status = 408;
			note_why(c, c->state == ST_HEAD && now <= c->deadline_ns ?
				 "request head not complete within --idle-timeout" :
				 "no progress for --idle-timeout; connection dropped");
			log_request(c);
		}
		conn_free(c);
	}
	if (!w->conns && atomic_load(&w->srv->connections) == 0)
		zbl_pool_flush(); /* nothing in flight anywhere: give idle pipes back */
	if (w->accept_paused && now >= w->accept_resume_ns)
		add_listener(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *srv = w->srv;
	struct epoll_event evs[EVENTS_MAX];
	uint64_t next_sweep = cli_now_ns() + 1000000000u;

	while (!atomic_load(&srv->stop)) {
		int n = epoll_wait(w->epfd, evs, EVENTS_MAX, 1000);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				accept_some(w);
			else if (evs[i].data.ptr == (void *)w)
				atomic_store(&srv->stop, true);
			else
				conn_run(evs[i].data.ptr, evs[i].events);
		}
		uint64_t now = cli_now_ns();
		if (now >= next_sweep) {
			sweep(w, now);
			next_sweep = now + 1000000000u;
		}
	}
	while (w->conns)
		conn_free(w->conns);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Command line */

static void serve_usage(FILE *out)
{
	fprintf(out,
		"usage: zbl serve [options]\n"
		"  --root DIR          object directory (default ./zbl-data, created)\n"
		"  --listen HOST:PORT  address (default 127.0.0.1:8080; port 0 picks one)\n"
		"  --max-object N      largest PUT body, bytes, K/M/G/T suffixes (default 4G)\n"
		"  --copy              move bodies with read()/write() instead of zbl splicing\n"
		"  --threads N         event loops (default: one per CPU)\n"
		"  --idle-timeout S    drop clients idle or slow to send a head (default 30)\n"
		"  --quiet             no access log\n"
		"Prints 'listening on HOST:PORT' on stderr when ready; stops on SIGINT/SIGTERM.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "zbl serve: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	serve_usage(stderr);
	return CLI_EXIT_USAGE;
}

int cli_serve(int argc, char **argv)
{
	struct server srv = { .root_fd = -1, .listen_fd = -1 };
	const char *root = "./zbl-data", *listen_on = "127.0.0.1:8080";
	uint64_t max_object = DEFAULT_MAX_OBJECT, idle_s = 30, threads = 0;
	char err[256], addr[80];
	struct worker *workers;
	sigset_t sigs;
	int sig, status = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			serve_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--copy")) {
			srv.copy = true;
			takes = false;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			srv.quiet = true;
			takes = false;
		} else if (!v && (!strcmp(a, "--root") || !strcmp(a, "--listen") ||
				  !strcmp(a, "--max-object") || !strcmp(a, "--threads") ||
				  !strcmp(a, "--idle-timeout"))) {
			return usage_error("%s needs a value", a);
		} else if (!strcmp(a, "--root")) {
			root = v;
		} else if (!strcmp(a, "--listen")) {
			listen_on = v;
		} else if (!strcmp(a, "--max-object")) {
			if (cli_parse_size(v, &max_object) < 0)
				return usage_error("--max-object: '%s' is not a size", v);
		} else if (!strcmp(a, "--threads")) {
			if (cli_parse_size(v, &threads) < 0 || threads < 1 || threads > 1024)
				return usage_error("--threads: '%s' is not 1..1024", v);
		} else if (!strcmp(a, "--idle-timeout")) {
			if (cli_parse_size(v, &idle_s) < 0 || idle_s < 1 || idle_s > 86400)
				return usage_error("--idle-timeout: '%s' is not 1..86400 seconds", v);
		} else {
			return usage_error("unknown option '%s'", a);
		}
		if (takes)
			i++;
	}
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (uint64_t)n : 1;
	}
	srv.max_object = max_object;
	srv.idle_ns = idle_s * 1000000000u;
	srv.threads = (int)threads;

	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "zbl serve: creating root %s: %s\n", root, strerror(errno));
		return 1;
	}
	srv.root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (srv.root_fd < 0) {
		fprintf(stderr, "zbl serve: root %s: %s\n", root, strerror(errno));
		return 1;
	}
	srv.listen_fd = cli_listen_tcp(listen_on, LISTEN_BACKLOG, err, sizeof(err));
	if (srv.listen_fd < 0) {
		fprintf(stderr, "zbl serve: listen %s\n", err);
		close(srv.root_fd);
		return 1;
	}
	fcntl(srv.listen_fd, F_SETFL, fcntl(srv.listen_fd, F_GETFL) | O_NONBLOCK);
	if (getenv(TEST_NO_PROC_ENV) && strcmp(getenv(TEST_NO_PROC_ENV), "0")) {
		atomic_store(&srv.named_tmp, true);
		fprintf(stderr, "zbl serve: %s is set: uploads use named temporary files\n",
			TEST_NO_PROC_ENV);
	} else if (access("/proc/self/fd", X_OK) < 0) {
		atomic_store(&srv.named_tmp, true);
		fprintf(stderr, "zbl serve: /proc/self/fd: %s; uploads go to named temporary "
			"files (" TMP_PREFIX "*) in the root, renamed when complete\n",
			strerror(errno));
	}

	/* Peers that vanish must give EPIPE, not kill us; signals go to sigwait below. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	llhttp_settings_init(&parser_settings);
	parser_settings.on_message_begin = on_message_begin;
	parser_settings.on_url = on_url;
	parser_settings.on_header_field = on_header_field;
	parser_settings.on_header_value = on_header_value;
	parser_settings.on_header_value_complete = on_header_value_complete;
	parser_settings.on_headers_complete = on_headers_complete;
	zbl_trace_set(trace_copy, NULL);

	workers = calloc(threads, sizeof(*workers));
	if (!workers) {
		fprintf(stderr, "zbl serve: out of memory\n");
		return 1;
	}
	int started = 0;
	for (int i = 0; i < (int)threads; i++) {
		struct worker *w = &workers[i];
		struct epoll_event ev = { .events = EPOLLIN };

		w->srv = &srv;
		w->id = i;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ev.data.ptr = w;
		if (w->epfd < 0 || w->wake_fd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0) {
			fprintf(stderr, "zbl serve: epoll: %s\n", strerror(errno));
			status = 1;
			break;
		}
		add_listener(w);
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			fprintf(stderr, "zbl serve: cannot start thread %d\n", i);
			status = 1;
			break;
		}
		started++;
	}

	if (!status) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(srv.listen_fd, (struct sockaddr *)&ss, &sl);
		cli_addr_str((struct sockaddr *)&ss, addr, sizeof(addr));
		fprintf(stderr, "zbl serve: listening on %s, root %s, %d thread%s, %s bodies\n",
			addr, root, started, started == 1 ? "" : "s",
			srv.copy ? "copied (--copy)" : "zero-copy");
		while (sigwait(&sigs, &sig) != 0)
			;
		fprintf(stderr, "zbl serve: %s, stopping\n", strsignal(sig));
	}
	atomic_store(&srv.stop, true);
	for (int i = 0; i < (int)threads; i++) {
		uint64_t one = 1;
		if (workers[i].wake_fd >= 0 && write(workers[i].wake_fd, &one, sizeof(one)) < 0)
			continue;
	}
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	for (int i = 0; i < (int)threads; i++) {
		if (workers[i].epfd > 0)
			close(workers[i].epfd);
		if (workers[i].wake_fd > 0)
			close(workers[i].wake_fd);
	}
	free(workers);
	zbl_trace_set(NULL, NULL);
	close(srv.listen_fd);
	close(srv.root_fd);
	return status;
}
