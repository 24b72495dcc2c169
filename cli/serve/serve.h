/* SPDX-License-Identifier: MIT */
/*
 * zbl serve: the types and calls its files share.
 *
 * The server is split by concern, as nginx splits parsing from the request
 * state machine and both from the event loop:
 *   main.c    options, the listener, worker threads, signals
 *   loop.c    each worker's epoll loop: watchers, accept, timeouts
 *   conn.c    the per-connection state machine: head, body, sync, send
 *   http.c    request-head parsing, ranges, names, response heads (no I/O)
 *   routes.c  the method handlers: what each request does
 *   upload.c  the direct route of an upload: ring reads, O_DIRECT writes,
 *             the commit's syncs through the ring
 *   store.c   objects on disk: open, temporary files, commit, delete, and
 *             the one errno-to-status mapping (no HTTP)
 *   jobs.c    the threads that run blocking disk work (syncs) off the loops
 *   stats.c   the access log, the counters, /_stats and /_metrics
 *   respond.c the response queued for a request, and the request's resources
 * Calls run one way, down this order: main, loop, conn, routes, upload, stats,
 * respond, jobs, store, http. What must reach up (a job or a ring
 * callback coming back to its connection, an epoll event to its
 * descriptor's owner) goes through a callback set by the higher file:
 * struct job's done, struct conn's resume, struct watcher's cb.
 */
#ifndef ZBL_SERVE_H
#define ZBL_SERVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>

#include "zbl.h"
#include "http.h"

/* Request head: everything up to the blank line must fit here, or 431. */
#define HEAD_BUF_BYTES		(16 * 1024)
/* Largest zbl_splice_from() per step: about one pipe's worth, then drain to the file. */
#define BODY_STEP_BYTES		((size_t)1 << 20)
/* Per-connection bounce buffer for --copy. */
/* GET bodies up to this size are copied into the response (routes.c). */
#define SMALL_BODY_BYTES	((size_t)16 << 10)
#define COPY_BUF_BYTES		((size_t)256 << 10)
/* Bytes moved for one connection before the loop lets the others run. */
#define FAIR_SHARE_BYTES	((uint64_t)16 << 20)
/*
 * Upload bytes written to the temporary file between two calls that start
 * their writeback (sync_file_range), as RocksDB's bytes_per_sync does: the
 * fdatasync before the acknowledgement then finds little left to write.
 */
#define WRITEBACK_STEP_BYTES	((uint64_t)8 << 20)
/*
 * The direct route (upload.c): each O_DIRECT write is one chunk; an upload
 * holds at most its window (being received or written), and a worker's
 * uploads together at most the worker's.
 */
#define UPLOAD_CHUNK_BYTES	((uint64_t)4 << 20)
#define UPLOAD_WINDOW_BYTES	((uint64_t)16 << 20)
#define WORKER_WINDOW_BYTES	((uint64_t)64 << 20)
/* How long to wait for a client to close after an error response. */
#define LINGER_NS		(2ull * 1000000000u)
#define DEFAULT_MAX_OBJECT	((uint64_t)4 << 30)
/* Set (not "0") by the tests only: behave as if /proc were not mounted. */
#define TEST_NO_PROC_ENV	"ZBL_SERVE_TEST_NO_PROC"

struct conn;
struct worker;

/* ------------------------------------------------------------------------ */
/* The server and its workers */

struct server {
	int root_fd;
	int listen_fd;
	uint64_t max_object;
	uint64_t idle_ns;
	bool copy;
	bool quiet;
	bool no_sync;			/* --no-sync: acknowledge before data is durable */
	bool direct;			/* uploads take the direct route (upload.c) */
	atomic_bool named_tmp;		/* uploads go to named temporary files (no /proc) */
	int threads;
	atomic_bool stop;
	struct jobs *jobs;		/* sync threads; NULL with --no-sync */
	atomic_uint_fast64_t requests, bytes_in, bytes_out;
	atomic_uint_fast64_t body_kernel, body_copied;
	atomic_uint_fast64_t body_direct, body_staged;	/* uploads' bytes by O_DIRECT, staged */
	atomic_uint_fast64_t syncs, sync_ns;
	atomic_uint_fast64_t connections;
	atomic_uint_fast32_t tmp_seq;
};

/*
 * What an epoll event is about. Every registered descriptor carries one of
 * these (libuv's uv__io_t), so the loop never guesses from a pointer's value.
 */
struct watcher {
	void (*cb)(struct worker *w, struct watcher *wt, uint32_t events);
};

struct worker {
	struct server *srv;
	pthread_t thread;
	int id;
	int epfd;
	int wake_fd;			/* eventfd: the main thread asks us to stop */
	struct watcher wake_watch, listen_watch, done_watch;
	bool accept_paused;
	uint64_t accept_resume_ns;	/* out of descriptors: retry accepting then */
	struct conn *conns;		/* every open connection, for the timeout sweep */
	struct conn *graveyard;		/* freed during this epoll batch (conn_bury) */

	/* Finished jobs (jobs.c) come back here; done_fd (eventfd) wakes the loop. */
	int done_fd;
	pthread_mutex_t done_lock;
	struct job *done;
	unsigned jobs_in_flight;

	/* The direct route's ring (NULL without it), and its memory window. */
	zbl_ring_t *ring;
	struct watcher ring_watch;
	uint64_t dio_mem;		/* bytes the worker's uploads hold */
	struct conn *dio_waiters;	/* uploads waiting for room in the window */
	bool stopping;			/* the ring is being freed: callbacks only count */
	/*
	 * The root's shared fsync (upload.c): uploads linked and waiting for
	 * the next one, and those the one running covers (NULL: none runs).
	 */
	struct conn *root_wait, *root_batch;
};

/* ------------------------------------------------------------------------ */
/* Connections */

enum conn_state {
	ST_HEAD,	/* reading a request head */
	ST_BODY,	/* receiving a PUT body into the temporary file */
	ST_SYNC,	/* a job is making the request's change durable */
	ST_SEND,	/* writing a response */
	ST_LINGER,	/* response sent, discarding input until the client closes */
};

/*
 * Blocking work handed to a job thread (jobs.c), which knows nothing of
 * what it does: @run is called there, @done back on @w's loop. Whatever
 * @run touches belongs to the job until @done.
 */
struct job {
	struct job *next;
	struct worker *w;		/* whose loop the job returns to */
	int (*run)(struct job *job);	/* on a job thread: the work; returns its result */
	void (*done)(struct job *job);	/* on the loop, after run */
	int result;			/* what run returned: >= 0 or -errno */
	uint64_t ns;			/* how long run took */
};

struct conn {
	struct watcher watch;		/* first: the epoll event points here */
	struct conn *prev, *next;
	struct worker *w;
	int fd;
	enum conn_state state;
	bool dead;			/* closed by a step; freed by conn_run */
	uint32_t events;		/* what epoll waits for now */
	char peer[64];

	/* Input buffer: unconsumed bytes are [in_off, in_len); [in_off, in_fed) were parsed. */
	char *in;
	size_t in_off, in_fed, in_len;
	struct http_parser parser;
	struct http_head head;		/* the request being served */

	bool close_after;
	bool body_unread;		/* the request declared a body not yet all read */
	uint64_t head_deadline_ns;	/* slow-header limit; fixed when the request starts */
	uint64_t deadline_ns;		/* idle limit; pushed back by progress */
	uint64_t t_start_ns;
	bool in_request;		/* some bytes of a request have arrived */

	/* The object named by the URL. */
	char name[HTTP_NAME_MAX_BYTES + 1];

	/* PUT: the body goes to tmp_fd, linked as name when complete. */
	int tmp_fd;
	char tmp_name[64];		/* set only when O_TMPFILE was not available */
	/*
	 * The object a PUT replaced, held open until the response is out: the
	 * kernel frees its page cache when the last reference goes, which for a
	 * large object took longer than the upload's own last step.
	 */
	int old_fd;
	uint64_t body_left;
	uint64_t body_written;		/* bytes in the temporary file */
	uint64_t writeback_from;	/* where writeback has not been started yet */
	struct job job;			/* the request's sync job (ST_SYNC) */
	/* Runs the state machine again after a ring callback (conn.c). */
	void (*resume)(struct conn *c);

	/* The direct route (upload.c). */
	bool direct;			/* this upload takes it */
	bool dio_started;		/* the prefix is written: the ring has the body */
	bool dio_reading;		/* a ring read into in_bl is in flight */
	bool dio_waiting;		/* queued for room in the worker's window */
	bool dio_body_done;		/* every body byte is written */
	bool dio_failed;		/* stopping: see dio_fail_status and why */
	int dio_fail_status;		/* 0: the client went away; else the answer */
	int dio_fd;			/* O_DIRECT descriptor of the temporary file */
	unsigned ring_ops;		/* ring operations not yet called back */
	uint64_t dio_base;		/* file offset where the ring's part starts (aligned) */
	uint64_t dio_queued;		/* bytes past dio_base given to writes (or staged) */
	uint64_t dio_pending;		/* of those, in writes not yet complete */
	uint64_t dio_read_want;		/* room of the read in flight */
	uint64_t dio_mem;		/* bytes held: read room, list, writes */
	uint64_t dio_direct;		/* bytes written by O_DIRECT */
	uint64_t dio_staged;		/* bytes written through the page cache */
	uint64_t dio_sync_start_ns;
	int dio_commit_status;		/* 201 or 200, kept across the root's fsync */
	struct conn *dio_wait_next;	/* in the window's queue, or the root fsync's */

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
	uint64_t body_in;		/* body bytes received so far (PUT) */
	bool body_out;			/* the body is in the response */
	uint64_t body_copied;		/* of those, copied by the server itself */
	uint64_t lib_copied;		/* of those, copied by the library (trace_copy) */
};

/* The connection whose job this is (struct conn embeds its job). */
static inline struct conn *conn_of_job(struct job *job)
{
	return (struct conn *)((char *)job - offsetof(struct conn, job));
}

/*
 * Marks the connection for closing. Steps call this; conn_steps() frees it
 * once no step is using it any more.
 */
static inline void conn_close(struct conn *c)
{
	c->dead = true;
}

/* A description of @err that stays valid (unlike strerror's buffer). */
static inline const char *err_str(int err)
{
	const char *d = strerrordesc_np(err);

	return d ? d : "unknown error";
}

/* conn.c */
struct conn *conn_new(struct worker *w, int fd, const char *peer);
void conn_free(struct conn *c);
void conn_bury(struct worker *w);
void conn_set_events(struct conn *c, uint32_t events);
void conn_expire(struct conn *c, uint64_t now);

/* respond.c */
void start_send(struct conn *c);
int queue_head(struct conn *c, int status, uint64_t content_length, const char *extra);
void respond_error(struct conn *c, int status, bool close, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void respond_text(struct conn *c, int status, const char *type, const char *text, size_t len);
void note_why(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void request_reset_body(struct conn *c);

/* upload.c */
bool upload_direct_possible(struct server *srv, char *why, size_t len);
int upload_start(struct conn *c, const char *bytes, size_t take);
void upload_body_step(struct conn *c);
bool upload_cancel(struct conn *c);
void upload_end(struct conn *c);
int upload_commit(struct conn *c);
void upload_ring_ready(struct worker *w, struct watcher *wt, uint32_t events);

/* routes.c */
void route_request(struct conn *c);
void route_body_done(struct conn *c);
void route_job_done(struct conn *c);

/* store.c: objects on disk, no HTTP. Results are -errno on failure. */
int store_open_object(int root_fd, const char *name, uint64_t *size);
int store_open_tmp(struct server *srv, char *tmp_name, size_t tmp_name_len);
int store_commit(struct server *srv, int tmp_fd, char *tmp_name, const char *name,
		 int *old_fd, bool durable);
int store_delete(int root_fd, const char *name, bool durable);
void store_discard_tmp(int root_fd, char *tmp_name);
int store_write_at(int fd, const void *buf, size_t n, uint64_t off);
void store_start_writeback(int fd, uint64_t from, uint64_t to);
int store_status(int err);

/* jobs.c */
struct jobs *jobs_start(int threads);
void jobs_stop(struct jobs *jobs);
void jobs_submit(struct worker *w, struct job *job);
void jobs_wait_idle(struct worker *w);
void jobs_reap(struct worker *w);

/* stats.c */
void stats_trace_copy(const char *what, size_t bytes, void *ctx);
void stats_log_request(struct conn *c);
void stats_respond(struct conn *c, bool prometheus);
extern __thread struct conn *tl_conn;

/* loop.c */
void *worker_main(void *arg);
int worker_init(struct worker *w, struct server *srv, int id);
void worker_destroy(struct worker *w);

#endif /* ZBL_SERVE_H */
