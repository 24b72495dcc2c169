/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, routes.c: owns what each request does once its head is in:
 * GET and HEAD of an object or of /_stats and /_metrics, PUT, DELETE, and
 * the answer to anything else. Handlers queue a response (conn.c), start an
 * upload's body, or hand disk work to a job thread; they never do socket
 * I/O of their own, except the one-line 100 Continue.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

/* On a job thread: the commit of a finished upload, durably. */
static int run_commit(struct job *job)
{
	struct conn *c = conn_of_job(job);

	return store_commit(c->w->srv, c->tmp_fd, c->tmp_name, c->name, &c->old_fd, true);
}

/* On a job thread: a delete, durably. */
static int run_delete(struct job *job)
{
	struct conn *c = conn_of_job(job);

	return store_delete(c->w->srv->root_fd, c->name, true);
}

static void respond_store_error(struct conn *c, int err, const char *doing)
{
	int status = store_status(err);

	if (status == 404)
		respond_error(c, 404, false, "no object %s", c->name);
	else
		respond_error(c, status, status == 507, "%s %s: %s", doing, c->name, err_str(err));
}

/*
 * A small body is read into the response, so head and body leave in one
 * sendmsg: at 4 KiB the copy costs less than the calls that avoid it (a
 * duplicate descriptor, sendfile, the SIGPIPE guard around it). Counted as
 * copied in the access log and /_stats.
 */
static int append_small_body(struct conn *c, int fd, uint64_t first, uint64_t len)
{
	char buf[SMALL_BODY_BYTES];
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(first + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the file was truncated behind the server's back */
		got += (size_t)n;
	}
	c->body_copied += len;
	return zbl_append(c->out, buf, len);
}

static void handle_get(struct conn *c)
{
	struct server *srv = c->w->srv;
	uint64_t first = 0, last = 0, len;
	char extra[160];
	int fd, status = 200, r;

	fd = store_open_object(srv->root_fd, c->name, &len);
	if (fd < 0) {
		respond_store_error(c, -fd, "opening");
		return;
	}
	extra[0] = '\0';
	r = c->head.has_range ? http_parse_range(c->head.range, len, &first, &last) : 0;
	if (r < 0) {
		close(fd);
		snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64 "\r\n", len);
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
	if (c->head.method == M_HEAD || len == 0) {
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
	/*
	 * A small body is copied into the response; a larger one is a lazy
	 * reference to the file's pages, sent by sendfile/splice.
	 */
	if (len <= SMALL_BODY_BYTES)
		r = append_small_body(c, fd, first, len);
	else
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
	struct server *srv = c->w->srv;

	c->job.run = run_delete;
	if (srv->no_sync) {
		c->job.result = store_delete(srv->root_fd, c->name, false);
		route_job_done(c);
		return;
	}
	c->state = ST_SYNC;
	jobs_submit(c->w, &c->job);
}

/*
 * The body is all in the temporary file. A durable server hands the commit
 * (fdatasync, link, directory fsync) to a job thread and answers when it
 * comes back; --no-sync commits here and answers at once.
 */
void route_body_done(struct conn *c)
{
	struct server *srv = c->w->srv;

	c->job.run = run_commit;
	if (c->direct && !srv->no_sync) {
		/* The syncs go through the ring: no thread waits on the disk. */
		int r = upload_commit(c);
		if (r == 0)
			return;
		c->job.result = r;
		route_job_done(c);
		return;
	}
	if (srv->no_sync) {
		c->job.result = store_commit(srv, c->tmp_fd, c->tmp_name, c->name, &c->old_fd,
					     false);
		route_job_done(c);
		return;
	}
	c->state = ST_SYNC;
	jobs_submit(c->w, &c->job);
}

/* A commit or delete has finished (c->job.result): answer it. */
void route_job_done(struct conn *c)
{
	struct server *srv = c->w->srv;
	bool commit = c->job.run == run_commit;
	int r = c->job.result;

	if (!srv->no_sync) {
		atomic_fetch_add(&srv->syncs, 1);
		atomic_fetch_add(&srv->sync_ns, c->job.ns);
	}
	if (r < 0) {
		respond_store_error(c, -r, commit ? "storing" : "deleting");
		return;
	}
	if (commit) {
		close(c->tmp_fd);
		c->tmp_fd = -1;
	}
	if (queue_head(c, commit ? r : 204, 0, NULL) < 0)
		c->close_after = true;
	start_send(c);
}

static void handle_put(struct conn *c)
{
	struct server *srv = c->w->srv;
	uint64_t content_length = c->head.content_length;
	size_t have = c->in_len - c->in_off, take;
	int fd, r;

	/*
	 * The object is stored only whole and its size must be known up front
	 * (for --max-object, before reading any of it): no chunked uploads.
	 */
	if (c->head.has_transfer_encoding) {
		respond_error(c, 411, true, "PUT needs Content-Length; "
			      "Transfer-Encoding (chunked) uploads are not accepted");
		return;
	}
	if (!c->head.has_content_length) {
		respond_error(c, 411, true, "PUT needs Content-Length");
		return;
	}
	if (content_length > srv->max_object) {
		respond_error(c, 413, true, "Content-Length %" PRIu64 " is over --max-object %" PRIu64,
			      content_length, srv->max_object);
		return;
	}
	fd = store_open_tmp(srv, c->tmp_name, sizeof(c->tmp_name));
	if (fd < 0) {
		respond_error(c, store_status(-fd) == 507 ? 507 : 500, true,
			      "temporary file in the root: %s", err_str(-fd));
		return;
	}
	c->tmp_fd = fd;
	c->body_left = content_length;
	c->body_bytes = content_length;
	c->body_written = c->writeback_from = 0;

	/* Bytes read with the head are the start of the body: they go first. */
	take = have < content_length ? have : (size_t)content_length;
	if (srv->direct && (r = upload_start(c, c->in + c->in_off, take)) < 0 &&
	    r != -EMFILE && r != -ENFILE) {
		/* A full disk is known before any body byte is read: the space is reserved first. */
		respond_error(c, store_status(-r) == 507 ? 507 : 500, true,
			      "reserving %" PRIu64 " bytes for %s: %s", content_length, c->name,
			      err_str(-r));
		return;
	}
	/* Out of descriptors for the O_DIRECT one: this upload goes buffered. */
	if (c->direct) {
		c->body_in += take;
		c->in_off += take;
		c->body_left -= take;
		c->body_copied += take;
	} else if (take) {
		ssize_t w = -EIO;
		c->body_in += take;
		if (srv->copy ? (w = write(fd, c->in + c->in_off, take)) == (ssize_t)take
			      : zbl_append(c->in_bl, c->in + c->in_off, take) == 0) {
			c->in_off += take;
			c->body_left -= take;
			c->body_copied += take;
			if (srv->copy)
				c->body_written += take;
		} else {
			int err = w < 0 ? errno : EIO;
			respond_error(c, store_status(err) == 507 ? 507 : 500, true,
				      "writing %s: %s", c->name, err_str(err));
			return;
		}
	}
	if (c->head.expect_continue && c->body_left) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		/* An empty socket buffer always takes 25 bytes; if not, give up on the client. */
		if (write(c->fd, cont, sizeof(cont) - 1) != sizeof(cont) - 1) {
			request_reset_body(c);
			conn_close(c);
			return;
		}
		atomic_fetch_add(&srv->bytes_out, sizeof(cont) - 1);
	}
	/* conn.c reads the body next; epoll already waits for input, as it did for the head. */
	c->state = ST_BODY;
	c->deadline_ns = cli_now_ns() + srv->idle_ns;
}

/* A complete, accepted head: decide what to do with the request. */
void route_request(struct conn *c)
{
	const struct http_head *h = &c->head;
	bool has_body = h->has_transfer_encoding || (h->has_content_length && h->content_length);

	c->body_unread = has_body;
	if (h->upgrade) {
		respond_error(c, 400, true, "protocol upgrades are not supported");
		return;
	}
	if (h->method != M_PUT && has_body) {
		/* Bodies are only understood on PUT; skipping them is not worth the risk. */
		respond_error(c, 400, true, "a request body is only accepted with PUT");
		return;
	}
	if (!h->url_too_long && (!strcmp(h->url, "/_stats") || !strcmp(h->url, "/_metrics"))) {
		if (h->method == M_GET || h->method == M_HEAD)
			stats_respond(c, h->url[2] == 'm');
		else
			respond_error(c, 405, false, "%s answers GET and HEAD", h->url);
		return;
	}
	if (!http_url_to_name(h, c->name)) {
		c->name[0] = '\0';
		respond_error(c, 400, true,
			      "the path must be /NAME, NAME 1 to %d of A-Z a-z 0-9 . _ - "
			      "(not . or .. or starting with " HTTP_TMP_PREFIX ")",
			      HTTP_NAME_MAX_BYTES);
		return;
	}
	switch (h->method) {
	case M_GET:
	case M_HEAD:
		handle_get(c);
		break;
	case M_PUT:
		handle_put(c);
		break;
	case M_DELETE:
		handle_delete(c);
		break;
	default:
		respond_error(c, 405, false, "%s is not supported", h->method_str);
		break;
	}
}
