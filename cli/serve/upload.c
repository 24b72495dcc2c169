/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, upload.c: owns the direct route of an upload, where the
 * worker's ring (io_uring) receives the body and writes it to disk, and
 * the loop never waits on the disk:
 *
 *   prefix   the bytes before the first 4096-aligned file offset (those
 *            read with the head, and the rest of their page) are written
 *            buffered through the temporary file's ordinary descriptor;
 *   body     zbl_ring_read appends the socket's bytes to c->in_bl, laid
 *            out congruent to their file offsets; each full chunk leaves
 *            by zbl_ring_write(ZBL_DRAIN) to a second, O_DIRECT
 *            descriptor of the same file, straight from that memory,
 *            while the next chunk arrives;
 *   tail     the final partial page is written buffered (staged);
 *   commit   fdatasync through the ring, the link on the loop (a
 *            metadata change), fsync of the root through the ring, then
 *            the answer.
 *
 * Memory is bounded: an upload holds at most UPLOAD_WINDOW_BYTES (room
 * being read into, chunks being written), and a worker's uploads together
 * at most WORKER_WINDOW_BYTES; an upload that finds no room waits in the
 * worker's queue until a write gives some back. The file is preallocated
 * to the declared length first, so a full disk is a 507 before any body
 * byte is read.
 *
 * A connection with ring operations in flight is never freed: conn_free()
 * cancels them (upload_cancel) and the last callback frees it. Callbacks
 * reach back up to the connection's state machine only through c->resume
 * and c->job.done, which conn.c sets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

#define PAGE			((uint64_t)4096)
#define PAGE_DOWN(x)		((x) & ~(PAGE - 1))
#define PAGE_UP(x)		PAGE_DOWN((x) + PAGE - 1)

/* ------------------------------------------------------------------------ */
/* Whether a root gets the direct route */

/*
 * The direct route needs an io_uring ring (the synchronous engine would
 * write on the loop) and a filesystem that takes O_DIRECT. Returns true,
 * or false with @why saying which is missing.
 */
bool upload_direct_possible(struct server *srv, char *why, size_t len)
{
	zbl_ring_t *ring = zbl_ring_new(4, 0);
	struct zbl_caps caps;
	int fd;

	if (!ring) {
		snprintf(why, len, "no ring: %s", strerror(errno));
		return false;
	}
	if (strcmp(zbl_ring_backend(ring), "io_uring")) {
		zbl_ring_free(ring);
		if (zbl_caps(&caps) == 0 && caps.io_uring_why_not)
			snprintf(why, len, "io_uring unavailable: %s", caps.io_uring_why_not);
		else
			snprintf(why, len, "io_uring unavailable");
		return false;
	}
	zbl_ring_free(ring);
	fd = openat(srv->root_fd, ".", O_TMPFILE | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		char name[64];
		snprintf(name, sizeof(name), HTTP_TMP_PREFIX "probe.%d", (int)getpid());
		fd = openat(srv->root_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC,
			    0600);
		if (fd >= 0)
			unlinkat(srv->root_fd, name, 0);
	}
	if (fd < 0) {
		snprintf(why, len, "the root refuses O_DIRECT: %s", strerror(errno));
		return false;
	}
	close(fd);
	return true;
}

/* ------------------------------------------------------------------------ */
/* Memory */

static void mem_take(struct conn *c, uint64_t n)
{
	c->dio_mem += n;
	c->w->dio_mem += n;
}

static void kick(struct conn *c);
static void pump(struct conn *c);

/* Gives @n bytes back, and lets uploads waiting for room go on. */
static void mem_give(struct conn *c, uint64_t n)
{
	struct worker *w = c->w;

	c->dio_mem -= n;
	w->dio_mem -= n;
	while (w->dio_waiters && !w->stopping &&
	       w->dio_mem + UPLOAD_CHUNK_BYTES <= WORKER_WINDOW_BYTES) {
		struct conn *next = w->dio_waiters;
		w->dio_waiters = next->dio_wait_next;
		next->dio_waiting = false;
		kick(next);
	}
}

static void unwait(struct conn *c)
{
	if (!c->dio_waiting)
		return;
	for (struct conn **p = &c->w->dio_waiters; *p; p = &(*p)->dio_wait_next) {
		if (*p == c) {
			*p = c->dio_wait_next;
			break;
		}
	}
	c->dio_waiting = false;
}

/* ------------------------------------------------------------------------ */
/* Ending */

/*
 * The upload stops with nothing stored: @status 0 (the client went away:
 * logged and closed) or an error status (answered, then closed). Once no
 * ring operation is left, the state machine runs on (c->resume).
 */
static void fail(struct conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct conn *c, int status, const char *fmt, ...)
{
	va_list ap;

	if (c->dio_failed)
		return;
	c->dio_failed = true;
	c->dio_fail_status = status;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	unwait(c);
	if (c->ring_ops && c->w->ring) {
		zbl_ring_cancel(c->w->ring, c->fd);
		zbl_ring_cancel(c->w->ring, c->dio_fd);
	}
}

/* After a failure, once the ring has let go of everything: answer or log, and close. */
static void settle_failure(struct conn *c)
{
	char why[sizeof(c->why)];

	/* The list's bytes and any room go back; respond_error or conn_free clears the list. */
	mem_give(c, c->dio_mem);
	if (c->dio_fail_status) {
		snprintf(why, sizeof(why), "%s", c->why);
		respond_error(c, c->dio_fail_status, true, "%s", why);
	} else {
		c->status = 0;
		stats_log_request(c);
		conn_close(c);
	}
}

/*
 * After every callback, and when an upload gets room: moves it on, and
 * hands it back to the state machine (c->resume) when its body is all
 * written, when it failed and the ring has let go, or when it is dead and
 * the ring has let go.
 */
static void kick(struct conn *c)
{
	if (c->w->stopping)
		return;
	if (!c->dead && !c->dio_failed)
		pump(c);
	if (c->dead) {
		/* conn_free() is waiting for the ring: the last callback finishes it. */
		if (!c->ring_ops)
			c->resume(c);
		return;
	}
	if (c->dio_failed) {
		if (!c->ring_ops) {
			settle_failure(c);
			c->resume(c);
		}
		return;
	}
	if (!c->body_left && !c->dio_pending && !zbl_length(c->in_bl) && !c->dio_reading &&
	    !c->dio_body_done) {
		c->dio_body_done = true;
		c->resume(c);
	}
}

/* ------------------------------------------------------------------------ */
/* Body */

static void write_cb(zbl_ring_t *ring, ssize_t res, void *arg);

/* Queues the first @n bytes of c->in_bl (a multiple of 4096) for an O_DIRECT write. */
static int write_chunk(struct conn *c, uint64_t n)
{
	zbl_t *chunk = zbl_new();
	int err = chunk ? zbl_splice(c->in_bl, 0, (size_t)n, chunk) : -ENOMEM;

	if (!err)
		err = zbl_ring_write(c->w->ring, chunk, c->dio_fd,
				     (int64_t)(c->dio_base + c->dio_queued), ZBL_DRAIN, write_cb, c);
	if (err) {
		/* The chunk's bytes are freed with it: the upload fails, nothing leaks. */
		zbl_free(chunk);
		return err;
	}
	zbl_free(chunk); /* ZBL_DRAIN emptied it: the write owns the blocks */
	c->ring_ops++;
	c->dio_queued += n;
	c->dio_pending += n;
	return 0;
}

/*
 * The final partial page: copied out of the list and written through the
 * buffered descriptor (it cannot be a whole O_DIRECT block without writing
 * past the object's end). Counted as staged.
 */
static int write_tail(struct conn *c)
{
	char buf[PAGE];
	size_t n = zbl_length(c->in_bl);
	int err;

	if (zbl_copy_out(c->in_bl, 0, n, buf) < 0)
		return -EIO;
	err = store_write_at(c->tmp_fd, buf, n, c->dio_base + c->dio_queued);
	if (err)
		return err;
	zbl_clear(c->in_bl);
	mem_give(c, n);
	c->dio_queued += n;
	c->dio_staged += n;
	return 0;
}

static void read_cb(zbl_ring_t *ring, ssize_t res, void *arg);

/*
 * Moves the upload on: full chunks (and, at the end, the rest) go to the
 * disk, and the next read is queued if there is room. Never waits.
 */
static void pump(struct conn *c)
{
	struct worker *w = c->w;
	uint64_t have = zbl_length(c->in_bl);
	int err = 0;

	if (c->dio_failed || c->dead || w->stopping)
		return;
	while (!err && (have >= UPLOAD_CHUNK_BYTES || (!c->body_left && have >= PAGE)) &&
	       !c->dio_reading) {
		uint64_t n = have >= UPLOAD_CHUNK_BYTES ? UPLOAD_CHUNK_BYTES : PAGE_DOWN(have);
		err = write_chunk(c, n);
		have = zbl_length(c->in_bl);
	}
	if (!err && !c->body_left && have && !c->dio_reading)
		err = write_tail(c);
	if (err) {
		fail(c, store_status(-err) == 507 ? 507 : 500, "writing %s: %s", c->name,
		     err_str(-err));
		return;
	}
	if (!c->body_left || c->dio_reading || c->dio_waiting)
		return;
	/* Room: this upload's window, then the worker's. */
	uint64_t room = c->dio_mem < UPLOAD_WINDOW_BYTES ? UPLOAD_WINDOW_BYTES - c->dio_mem : 0;
	uint64_t want = UPLOAD_CHUNK_BYTES - have % UPLOAD_CHUNK_BYTES;
	if (want > c->body_left)
		want = c->body_left;
	if (room < want)
		return; /* a write's completion brings it back here */
	if (w->dio_mem + want > WORKER_WINDOW_BYTES && w->dio_mem) {
		c->dio_wait_next = NULL;
		struct conn **p = &w->dio_waiters;
		while (*p)
			p = &(*p)->dio_wait_next;
		*p = c;
		c->dio_waiting = true;
		return;
	}
	err = zbl_ring_read(w->ring, c->in_bl, c->fd, -1, (size_t)want, 0, read_cb, c);
	if (err) {
		fail(c, 500, "reading the body: %s", err_str(-err));
		return;
	}
	mem_take(c, want);
	c->dio_read_want = want;
	c->dio_reading = true;
	c->ring_ops++;
}

static void read_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->w->srv;

	(void)ring;
	c->ring_ops--;
	c->dio_reading = false;
	mem_give(c, c->dio_read_want - (res > 0 ? (uint64_t)res : 0));
	if (res > 0) {
		c->body_left -= (uint64_t)res;
		c->body_in += (uint64_t)res;
		/* Received into memory: a copy, the one every route to a file pays. */
		c->body_copied += (uint64_t)res;
		atomic_fetch_add(&srv->bytes_in, (uint64_t)res);
		c->deadline_ns = cli_now_ns() + srv->idle_ns;
	} else if (res == 0) {
		fail(c, 0, "client closed the connection with %" PRIu64 " of %" PRIu64
		     " body bytes sent; nothing stored", c->body_in, c->body_bytes);
	} else if (res != -ECANCELED) {
		fail(c, 0, "reading the body: %s; nothing stored", err_str((int)-res));
	}
	kick(c);
}

static void write_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct conn *c = arg;
	/* Each write is one chunk; they complete in order on the descriptor. */
	uint64_t n = c->dio_pending < UPLOAD_CHUNK_BYTES ? c->dio_pending : UPLOAD_CHUNK_BYTES;

	(void)ring;
	c->ring_ops--;
	if (res >= 0 && (uint64_t)res != n && !c->dio_failed)
		res = -EIO;
	c->dio_pending -= n;
	mem_give(c, n);
	if (res > 0) {
		c->dio_direct += (uint64_t)res;
		atomic_fetch_add(&c->w->srv->body_direct, (uint64_t)res);
	} else if (res < 0 && res != -ECANCELED) {
		fail(c, store_status((int)-res) == 507 ? 507 : 500, "writing %s: %s", c->name,
		     err_str((int)-res));
	}
	c->deadline_ns = cli_now_ns() + c->w->srv->idle_ns;
	kick(c);
}

/* ------------------------------------------------------------------------ */
/* Start, prefix, cancel */

/*
 * Sets up the direct route for an upload whose temporary file is
 * c->tmp_fd: the O_DIRECT descriptor, the preallocation, and the @take
 * body bytes that came with the head (written now, buffered). Returns 0
 * or -errno (a full disk is -ENOSPC or -EFBIG: nothing was read yet).
 */
int upload_start(struct conn *c, const char *bytes, size_t take)
{
	uint64_t len = c->body_bytes;
	char path[64];

	if (c->tmp_name[0])
		c->dio_fd = openat(c->w->srv->root_fd, c->tmp_name, O_WRONLY | O_DIRECT | O_CLOEXEC);
	else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", c->tmp_fd);
		c->dio_fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	}
	if (c->dio_fd < 0)
		return -errno;
	if (len && fallocate(c->dio_fd, 0, 0, (off_t)len) < 0 && errno != EOPNOTSUPP)
		return -errno;
	c->direct = true;
	c->dio_base = PAGE_UP((uint64_t)take) < len ? PAGE_UP((uint64_t)take) : len;
	if (take) {
		int err = store_write_at(c->tmp_fd, bytes, take, 0);
		if (err)
			return err;
	}
	c->dio_staged += take;
	return 0;
}

/*
 * Runs from the loop while the upload is in ST_BODY: reads the rest of the
 * prefix with read() (less than a page), then hands the body to the ring.
 * Returns once it must wait; c->dio_body_done says the body is all on its
 * way to the disk and written.
 */
void upload_body_step(struct conn *c)
{
	struct server *srv = c->w->srv;
	char buf[PAGE];

	while (c->body_in < c->dio_base) {
		size_t want = (size_t)(c->dio_base - c->body_in);
		ssize_t r = read(c->fd, buf, want < sizeof(buf) ? want : sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			if (r)
				fail(c, 0, "reading the body: %s; nothing stored", err_str(errno));
			else
				fail(c, 0, "client closed the connection with %" PRIu64 " of %"
				     PRIu64 " body bytes sent; nothing stored", c->body_in,
				     c->body_bytes);
			settle_failure(c);
			return;
		}
		int err = store_write_at(c->tmp_fd, buf, (size_t)r, c->body_in);
		if (err) {
			fail(c, store_status(-err) == 507 ? 507 : 500, "writing %s: %s", c->name,
			     err_str(-err));
			settle_failure(c);
			return;
		}
		c->body_in += (uint64_t)r;
		c->body_left -= (uint64_t)r;
		c->dio_staged += (uint64_t)r;
		atomic_fetch_add(&srv->bytes_in, (uint64_t)r);
		c->deadline_ns = cli_now_ns() + srv->idle_ns;
	}
	if (c->dio_started)
		return;
	c->dio_started = true;
	if (!c->body_left) {
		c->dio_body_done = true;
		return;
	}
	pump(c);
	if (c->dio_failed && !c->ring_ops)
		settle_failure(c);
}

/*
 * The connection is being freed: cancels its ring operations. Returns
 * true if some are still to call back (the last one frees it).
 */
bool upload_cancel(struct conn *c)
{
	unwait(c);
	if (!c->ring_ops || !c->w->ring)
		return false;
	zbl_ring_cancel(c->w->ring, c->fd);
	if (c->dio_fd >= 0)
		zbl_ring_cancel(c->w->ring, c->dio_fd);
	return true;
}

/* What the request used of the worker's window goes back (the request ends). */
void upload_end(struct conn *c)
{
	if (c->dio_mem)
		mem_give(c, c->dio_mem);
	if (c->dio_fd >= 0) {
		close(c->dio_fd);
		c->dio_fd = -1;
	}
	atomic_fetch_add(&c->w->srv->body_staged, c->dio_staged);
	c->direct = c->dio_started = c->dio_body_done = c->dio_failed = false;
	c->dio_base = c->dio_queued = c->dio_pending = c->dio_read_want = 0;
	c->dio_direct = c->dio_staged = 0;
	c->dio_fail_status = c->dio_commit_status = 0;
}

/* ------------------------------------------------------------------------ */
/* Commit */

static void commit_done(struct conn *c, int result)
{
	c->job.result = result;
	c->job.ns = cli_now_ns() - c->dio_sync_start_ns;
	c->job.done(&c->job);
}

/* A commit's sync came back: whether the commit goes on (not stopping, not freed). */
static bool sync_came_back(struct conn *c)
{
	c->ring_ops--;
	if (c->w->stopping)
		return false;
	if (c->dead) {
		kick(c);
		return false;
	}
	return true;
}

static void root_sync_start(struct worker *w);

/* The uploads the root's fsync covered: each is answered with @res, or its own status. */
static void answer_batch(struct worker *w, ssize_t res)
{
	struct conn *batch = w->root_batch;

	w->root_batch = NULL;
	while (batch) {
		struct conn *c = batch;
		batch = c->dio_wait_next;
		c->dio_wait_next = NULL;
		if (sync_came_back(c))
			commit_done(c, res < 0 ? (int)res : c->dio_commit_status);
	}
}

/*
 * The root's fsync is shared (group commit, as a database's log is): one
 * covers every upload linked before it was submitted. Uploads linked while
 * one runs wait for the next, so a burst of N uploads costs about two root
 * fsyncs, not N, and each still answers only once its own name is durable.
 */
static void root_synced(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct worker *w = arg;

	(void)ring;
	answer_batch(w, res);
	if (!w->stopping)
		root_sync_start(w);
}

/* Starts the root's fsync for the uploads waiting for one, unless one runs (root_batch). */
static void root_sync_start(struct worker *w)
{
	int r;

	if (w->root_batch || !w->root_wait)
		return;
	r = zbl_ring_fsync(w->ring, w->srv->root_fd, 0, root_synced, w);
	w->root_batch = w->root_wait;
	w->root_wait = NULL;
	/* Not even queued: every waiting upload fails, as its own fsync would have. */
	if (r < 0)
		answer_batch(w, r);
}

static void data_synced(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->w->srv;
	int r;

	(void)ring;
	if (!sync_came_back(c))
		return;
	if (res < 0) {
		commit_done(c, (int)res);
		return;
	}
	/* The bytes are durable: the name may exist now. A link waits on no disk. */
	r = store_commit(srv, c->tmp_fd, c->tmp_name, c->name, &c->old_fd, false);
	if (r < 0) {
		commit_done(c, r);
		return;
	}
	c->dio_commit_status = r;
	/* Waits for the root's next fsync (dio_wait_next is free: the body is done). */
	c->ring_ops++;
	c->dio_wait_next = c->w->root_wait;
	c->w->root_wait = c;
	root_sync_start(c->w);
}

/*
 * The body is on the disk (or in the page cache for its staged pages): the
 * durable commit runs through the ring, and c->job.done answers it.
 * Returns 0 once started (ST_SYNC), or -errno if it could not start.
 */
int upload_commit(struct conn *c)
{
	int r = zbl_ring_fsync(c->w->ring, c->dio_fd, ZBL_DATASYNC, data_synced, c);

	if (r < 0)
		return r;
	c->ring_ops++;
	c->state = ST_SYNC;
	c->dio_sync_start_ns = cli_now_ns();
	return 0;
}

/* The loop's watcher for the ring's descriptor: runs what has completed. */
void upload_ring_ready(struct worker *w, struct watcher *wt, uint32_t events)
{
	(void)wt;
	(void)events;
	if (w->ring)
		zbl_ring_run(w->ring, 0, 0);
}
