/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, stats.c: owns what the server says about itself: the access
 * log (one line per request: bytes moved, and of those how many the kernel
 * moved as pages and how many were copied), the process-wide counters, and
 * the /_stats (JSON) and /_metrics (Prometheus) pages.
 */
#include <inttypes.h>
#include <stdio.h>

#include "serve.h"
#include "cli.h"

/*
 * The connection this thread is running now (conn_run sets it). The
 * library's counters are process-wide and several loops run at once, so they
 * cannot say which request a copy was made for; its trace callback runs in
 * the thread that copied, from inside the call that copied, and a thread
 * works on one connection at a time: the copy belongs to tl_conn's request.
 */
__thread struct conn *tl_conn;

void stats_trace_copy(const char *what, size_t bytes, void *ctx)
{
	(void)what;
	(void)ctx;
	if (tl_conn)
		tl_conn->lib_copied += bytes;
}

/*
 * Body bytes that really moved: for an upload, what arrived (a PUT cut short
 * by a full disk or a vanished client received only part of its declared
 * length); for a download, what left.
 */
static uint64_t body_moved(const struct conn *c)
{
	uint64_t unsent;

	if (!c->body_out)
		return c->body_in;
	if (c->state != ST_SEND)
		return c->body_bytes;
	/* The head goes out before the body, so the last bytes unsent are the body's. */
	unsent = zbl_length(c->out);
	if (c->src_fd >= 0)
		unsent += (c->src_end - c->src_off) + (c->cb_len - c->cb_off);
	return unsent < c->body_bytes ? c->body_bytes - unsent : 0;
}

void stats_log_request(struct conn *c)
{
	struct server *srv = c->w->srv;
	const struct http_head *h = &c->head;
	uint64_t us = (cli_now_ns() - c->t_start_ns) / 1000;
	uint64_t moved = body_moved(c), copied = c->body_copied + c->lib_copied;
	char route[80] = "";

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
	if (c->direct)
		snprintf(route, sizeof(route), " direct=%" PRIu64 " staged=%" PRIu64, c->dio_direct,
			 c->dio_staged);
	fprintf(stderr, "%s %s /%s %d %" PRIu64 " %" PRIu64 ".%03" PRIu64 "ms kernel=%" PRIu64
		" copied=%" PRIu64 "%s%s%s%s\n", c->peer, h->method_str[0] ? h->method_str : "-",
		c->name[0] ? c->name : (h->url_len ? h->url + 1 : ""), c->status, moved,
		us / 1000, us % 1000, moved - copied, copied, route,
		c->why[0] ? " error=\"" : "", c->why, c->why[0] ? "\"" : "");
}

/* The counters, by name, in one table for /_stats and /_metrics. */
struct stat_field {
	const char *name;
	uint64_t value;
	bool gauge;
};

static size_t collect(struct server *srv, struct stat_field *f)
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
	F(bytes_sent_zerocopy, false);
	F(bytes_zerocopy_copied, false);
	F(bytes_direct, false);
	F(bytes_staged, false);
	F(ring_ops, false);
	F(ring_sync_ops, false);
#undef F
#define S(x, g) f[n++] = (struct stat_field){ #x, atomic_load(&srv->x), g }
	S(requests, false);
	S(bytes_in, false);
	S(bytes_out, false);
	f[n++] = (struct stat_field){ "body_bytes_kernel", atomic_load(&srv->body_kernel), false };
	f[n++] = (struct stat_field){ "body_bytes_copied", atomic_load(&srv->body_copied), false };
	/* Uploads on the direct route: written by O_DIRECT, and through the page cache. */
	f[n++] = (struct stat_field){ "body_bytes_direct", atomic_load(&srv->body_direct), false };
	f[n++] = (struct stat_field){ "body_bytes_staged", atomic_load(&srv->body_staged), false };
	f[n++] = (struct stat_field){ "direct_route", srv->direct ? 1 : 0, true };
	S(connections, true);
	/* 1 when acknowledgements wait for fdatasync and the directory fsync (no --no-sync). */
	f[n++] = (struct stat_field){ "durable", srv->no_sync ? 0 : 1, true };
	S(syncs, false);
	f[n++] = (struct stat_field){ "sync_us", atomic_load(&srv->sync_ns) / 1000, false };
#undef S
	return n;
}

void stats_respond(struct conn *c, bool prometheus)
{
	struct stat_field f[48];
	size_t n = collect(c->w->srv, f), len = 0;
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
