/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the ring tests (test_ring*.c): the two engines as cmocka
 * states, callbacks that record what happened to each operation, a loop that
 * runs a ring while it empties the test's own ends of sockets and pipes (all
 * in the calling thread, with a deadline), lists mixing every storage kind,
 * TCP pairs with small buffers, and re-executing the test program as a child
 * with another user, a lower RLIMIT_MEMLOCK or a seccomp filter.
 *
 * Static inline only: CMake links every other .c file of tests/ into every
 * test program, so shared code lives in headers.
 */
#ifndef RING_UTIL_H
#define RING_UTIL_H

#include "kpage_util.h"
#include "seccomp_util.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

/* ------------------------------------------------------------------------ */
/* Engines. Each engine test is registered once per engine (ZR_TESTS), with
 * the engine as its cmocka state.                                          */

struct zr_engine {
	const char *name;   /* for messages */
	unsigned flags;     /* for zbl_ring_new() */
	/*
	 * Flags 0 asks for io_uring: where zbl_caps() says io_uring can be set
	 * up, the ring must be "io_uring"; where it cannot, the test is skipped
	 * for this engine (require_uring) or runs on the ring the library gave
	 * (the default engine, which must then be "sync").
	 */
	bool require_uring;
};

static const struct zr_engine zr_engine_uring = { "io_uring", 0, true };
static const struct zr_engine zr_engine_sync = { "sync", ZBL_RING_SYNC, false };
static const struct zr_engine zr_engine_default = { "default (flags 0)", 0, false };

#define ZR_TEST_ON(fn, eng, tag) { #fn " [" tag "]", fn, NULL, NULL, (void *)&(eng) }
/* Registers @fn once per engine. */
#define ZR_TESTS(fn) ZR_TEST_ON(fn, zr_engine_uring, "io_uring"), \
		     ZR_TEST_ON(fn, zr_engine_sync, "sync")

static inline const struct zr_engine *zr_engine_of(void **state)
{
	const struct zr_engine *e = state ? *state : NULL;

	return e ? e : &zr_engine_default;
}

static inline struct zbl_caps zr_caps(void)
{
	struct zbl_caps c;

	assert_rc(zbl_caps(&c), 0);
	return c;
}

/*
 * A ring of engine @e with @entries (0: the library's default). Checks the
 * engine it got: "sync" for ZBL_RING_SYNC, "io_uring" for flags 0 wherever
 * zbl_caps() says io_uring can be set up. Skips the test (cmocka skip(), after
 * printing why) when io_uring is wanted and unavailable.
 */
static inline zbl_ring_t *zr_new_engine(const struct zr_engine *e, unsigned entries)
{
	struct zbl_caps c = zr_caps();
	zbl_ring_t *r;
	const char *b;

	errno = 0;
	r = zbl_ring_new(entries, e->flags);
	if (!r)
		fail_msg("zbl_ring_new(%u, 0x%x) returned NULL, errno %d (%s)", entries, e->flags,
			 errno, strerror(errno));
	b = zbl_ring_backend(r);
	if (!b)
		fail_msg("zbl_ring_backend of a ring returned NULL");
	if (e->flags & ZBL_RING_SYNC) {
		if (strcmp(b, "sync") != 0)
			fail_msg("a ring made with ZBL_RING_SYNC says its engine is \"%s\"", b);
	} else if (c.io_uring) {
		if (strcmp(b, "io_uring") != 0)
			fail_msg("zbl_caps says io_uring can be set up, but zbl_ring_new(%u, 0) "
				 "gave a \"%s\" ring", entries, b);
	} else {
		if (strcmp(b, "sync") != 0)
			fail_msg("zbl_caps says io_uring cannot be set up (%s), but the ring says "
				 "\"%s\"", c.io_uring_why_not ? c.io_uring_why_not : "(no reason)",
				 b);
		if (e->require_uring) {
			zbl_ring_free(r);
			printf("# skipped: the io_uring engine: io_uring is not available here: %s\n",
			       c.io_uring_why_not ? c.io_uring_why_not : "(zbl_caps gives no reason)");
			fflush(stdout);
			skip();
		}
	}
	if (zbl_ring_fd(r) < 0)
		fail_msg("zbl_ring_fd of a %s ring returned %d (%s)", b, zbl_ring_fd(r),
			 zt_errname(zbl_ring_fd(r)));
	return r;
}

/* The engine named by the test's state, with the default number of entries. */
static inline zbl_ring_t *zr_open(void **state)
{
	return zr_new_engine(zr_engine_of(state), 0);
}

static inline bool zr_is_uring(zbl_ring_t *r)
{
	return strcmp(zbl_ring_backend(r), "io_uring") == 0;
}

/* ------------------------------------------------------------------------ */
/* What happened to each operation.                                         */

/* Callbacks run so far in this process, and whether the test is inside a
 * library call that must not run callbacks (a submission, zbl_ring_cancel). */
static int zr_cb_count;
static atomic_int zr_in_library;

struct zr_op {
	int calls;         /* times its callback ran: must end at exactly 1 */
	ssize_t result;    /* the last callback's result */
	int order;         /* zr_cb_count after it ran: callbacks are numbered from 1 */
	bool in_library;   /* it ran inside a submission or zbl_ring_cancel */
	zbl_ring_t *ring;  /* the ring it was given */
	size_t want;       /* what the test expects (its own use) */
};

static inline void zr_cb(zbl_ring_t *ring, ssize_t result, void *arg)
{
	struct zr_op *op = arg;

	op->calls++;
	op->result = result;
	op->order = ++zr_cb_count;
	op->ring = ring;
	if (atomic_load(&zr_in_library))
		op->in_library = true;
}

/*
 * Wraps a submission or zbl_ring_cancel: a callback (or release callback)
 * that runs inside is recorded as a violation.
 */
#define ZR_CALL(call) ({                                                      \
	atomic_fetch_add(&zr_in_library, 1);                                  \
	long long zr_rc_ = (long long)(call);                                 \
	atomic_fetch_sub(&zr_in_library, 1);                                  \
	zr_rc_;                                                               \
})

/* Counts the release callbacks of zbl_append_ref memory. */
struct zr_release {
	atomic_int calls;
	atomic_bool in_library;
};

static inline void zr_release_cb(void *ctx)
{
	struct zr_release *r = ctx;

	if (atomic_load(&zr_in_library))
		atomic_store(&r->in_library, true);
	atomic_fetch_add(&r->calls, 1);
}

static inline bool zr_ops_done(const struct zr_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].calls == 0)
			return false;
	return true;
}

/* Asserts @op's callback ran exactly once, on @ring, outside submissions. */
#define zr_assert_once(op, ring, what) zr_assert_once_((op), (ring), (what), __FILE__, __LINE__)

static inline void zr_assert_once_(const struct zr_op *op, zbl_ring_t *ring, const char *what,
				   const char *file, int line)
{
	if (op->calls != 1)
		fail_msg("%s:%d: %s: callback ran %d times, expected exactly once", file, line,
			 what, op->calls);
	if (op->in_library)
		fail_msg("%s:%d: %s: callback ran inside a submission or zbl_ring_cancel", file,
			 line, what);
	if (op->ring != ring)
		fail_msg("%s:%d: %s: callback got ring %p, expected %p", file, line, what,
			 (void *)op->ring, (void *)ring);
}

/* Asserts @op ran exactly once with result @want. */
#define zr_assert_result(op, ring, want, what) do {                           \
	zr_assert_once((op), (ring), (what));                                 \
	if ((long long)(op)->result != (long long)(want))                     \
		fail_msg("%s:%d: %s: result %lld (%s), expected %lld (%s)",   \
			 __FILE__, __LINE__, (what), (long long)(op)->result, \
			 zt_errname((op)->result), (long long)(want),         \
			 zt_errname((long long)(want)));                      \
} while (0)

/* ------------------------------------------------------------------------ */
/* Sinks: the test's ends of sockets and pipes, read in the test's thread.  */

struct zr_sink {
	int fd;
	unsigned char *buf;
	size_t len, cap;
	size_t max;   /* stop reading after this many bytes (0: no limit) */
	bool eof;
	int err;      /* errno of a failed read */
};

/* Reads @fd (made non-blocking) into memory whenever the ring is run. */
static inline void zr_sink_open(struct zr_sink *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->cap = 64 * 1024;
	s->buf = malloc(s->cap);
	assert_non_null(s->buf);
	zk_set_nonblock(fd, true);
}

/* Reads what is there now; returns whether anything came. */
static inline bool zr_sink_drain(struct zr_sink *s)
{
	bool got = false;

	while (!s->eof && !s->err && s->fd >= 0) {
		size_t want;
		ssize_t r;

		if (s->max && s->len >= s->max)
			break;
		if (s->len == s->cap) {
			s->cap *= 2;
			s->buf = realloc(s->buf, s->cap);
			assert_non_null(s->buf);
		}
		want = s->cap - s->len;
		if (s->max && want > s->max - s->len)
			want = s->max - s->len;
		r = read(s->fd, s->buf + s->len, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0) {
			s->err = errno;
			break;
		}
		if (r == 0) {
			s->eof = true;
			break;
		}
		s->len += (size_t)r;
		got = true;
	}
	return got;
}

static inline void zr_sink_free(struct zr_sink *s)
{
	free(s->buf);
	s->buf = NULL;
}

/* Asserts the sink got exactly @len bytes equal to @want. */
#define zr_assert_sink(s, want, wlen, what) do {                              \
	if ((s)->err)                                                         \
		fail_msg("%s: reading the sink failed: %s", (what),           \
			 strerror((s)->err));                                 \
	if ((s)->len != (size_t)(wlen))                                       \
		fail_msg("%s: %zu bytes arrived, expected %zu", (what),       \
			 (s)->len, (size_t)(wlen));                           \
	zk_assert_bytes((s)->buf, (want), (wlen));                            \
} while (0)

/* ------------------------------------------------------------------------ */
/* Running a ring.                                                          */

static inline long long zr_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Calls zbl_ring_run(ring, min_done, timeout) once and checks that its
 * result is the number of callbacks that ran. Returns it.
 */
static inline int zr_run_checked(zbl_ring_t *r, unsigned min_done, int timeout_ms)
{
	int before = zr_cb_count;
	int rc = zbl_ring_run(r, min_done, timeout_ms);

	if (rc < 0)
		fail_msg("zbl_ring_run(%u, %d) returned %d (%s)", min_done, timeout_ms, rc,
			 zt_errname(rc));
	if (rc != zr_cb_count - before)
		fail_msg("zbl_ring_run(%u, %d) returned %d, but %d callbacks ran", min_done,
			 timeout_ms, rc, zr_cb_count - before);
	return rc;
}

typedef bool (*zr_done_fn)(void *arg);

struct zr_ops_arg {
	const struct zr_op *ops;
	size_t n;
};

static inline bool zr_ops_done_fn(void *arg)
{
	const struct zr_ops_arg *a = arg;

	return zr_ops_done(a->ops, a->n);
}

/*
 * Runs @ring until done(arg), emptying @sinks in between, as an event loop
 * would: poll on zbl_ring_fd() and the sinks, then zbl_ring_run(ring, 0, 0).
 * The poll waits at most 10 ms, so a ring descriptor that never polls
 * readable slows the loop but does not stall it (its own test checks it).
 * Without sinks it waits in zbl_ring_run(ring, 1, 20) instead. Fails after
 * @ms milliseconds, naming @what.
 */
static inline void zr_pump_until(zbl_ring_t *r, zr_done_fn done, void *arg, struct zr_sink *sinks,
				 size_t nsinks, int ms, const char *what)
{
	long long end = zr_now_ms() + ms;

	for (;;) {
		for (size_t i = 0; i < nsinks; i++)
			zr_sink_drain(&sinks[i]);
		if (nsinks)
			zr_run_checked(r, 0, 0);
		else
			zr_run_checked(r, 1, 20);
		for (size_t i = 0; i < nsinks; i++)
			zr_sink_drain(&sinks[i]);
		if (done(arg))
			return;
		if (zr_now_ms() > end)
			fail_msg("%s: not done after %d ms", what, ms);
		if (nsinks) {
			struct pollfd p[9];
			size_t n = 0;

			p[n++] = (struct pollfd){ .fd = zbl_ring_fd(r), .events = POLLIN };
			for (size_t i = 0; i < nsinks && n < 9; i++)
				if (sinks[i].fd >= 0 && !sinks[i].eof && !sinks[i].err &&
				    !(sinks[i].max && sinks[i].len >= sinks[i].max))
					p[n++] = (struct pollfd){ .fd = sinks[i].fd, .events = POLLIN };
			poll(p, n, 10);
		}
	}
}

/* Runs @ring until every one of @ops has had its callback. */
static inline void zr_pump(zbl_ring_t *r, struct zr_op *ops, size_t nops, struct zr_sink *sinks,
			   size_t nsinks, int ms, const char *what)
{
	struct zr_ops_arg a = { ops, nops };

	zr_pump_until(r, zr_ops_done_fn, &a, sinks, nsinks, ms, what);
}

/* Runs @ring for about @ms milliseconds (emptying @sinks), whatever completes. */
static inline void zr_pump_for(zbl_ring_t *r, struct zr_sink *sinks, size_t nsinks, int ms)
{
	long long end = zr_now_ms() + ms;

	while (zr_now_ms() < end) {
		for (size_t i = 0; i < nsinks; i++)
			zr_sink_drain(&sinks[i]);
		zr_run_checked(r, 0, 0);
		struct pollfd p = { .fd = zbl_ring_fd(r), .events = POLLIN };
		poll(&p, 1, 5);
	}
}

/* ------------------------------------------------------------------------ */
/* Lists and descriptors.                                                   */

/* Appends @len bytes of @data to @bl as pipe pages (they went through a pipe; len <= 1 MiB). */
static inline void zr_append_pipe_pages(zbl_t *bl, const void *data, size_t len)
{
	int p[2];
	size_t have = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		fail_msg("pipe2: %s (%d descriptors open)", strerror(errno), zk_fd_count());
	if (len > 60000 && fcntl(p[1], F_SETPIPE_SZ, (int)ZK_MiB) < (int)len)
		fail_msg("cannot grow a pipe to hold %zu bytes: %s", len, strerror(errno));
	zt_write_full(p[1], data, len);
	close(p[1]);
	while (have < len) {
		ssize_t r = zbl_splice_from(bl, p[0], NULL, len - have, 0);

		if (r <= 0)
			fail_msg("zbl_splice_from of a full pipe returned %zd (%s)", r,
				 zt_errname(r));
		have += (size_t)r;
	}
	close(p[0]);
}

/* Storage kinds for zr_mixed_list(). */
enum {
	ZR_MEM = 1,    /* zbl_append: library memory */
	ZR_REF = 2,    /* zbl_append_ref: the caller's memory, with a release callback */
	ZR_FILE = 4,   /* zbl_append_file: a range of a file */
	ZR_PIPE = 8,   /* zbl_splice_from: pipe pages */
	ZR_ALL = 15,
};

#define ZR_PIECES_MAX 32

/*
 * A list holding @len bytes equal to @data, in pieces of the kinds in @kinds
 * chosen at random (@rng), of random sizes up to @piece_max (but at least
 * len / ZR_PIECES_MAX). ZR_REF pieces
 * refer to @data itself, which must stay unchanged until @rel has counted
 * *nrefs releases (nrefs is increased by the pieces added).
 */
static inline zbl_t *zr_mixed_list(const unsigned char *data, size_t len, uint64_t *rng,
				   unsigned kinds, size_t piece_max, struct zr_release *rel,
				   size_t *nrefs)
{
	zbl_t *bl = zt_new();
	int f = -1;
	size_t off = 0;
	unsigned choice[4];
	unsigned nchoice = 0;

	for (unsigned k = 1; k <= ZR_PIPE; k <<= 1)
		if (kinds & k)
			choice[nchoice++] = k;
	assert_true(nchoice > 0);
	if (kinds & ZR_FILE)
		f = zt_temp_file(data, len);
	while (off < len) {
		size_t n = 1 + zt_rand(rng) % (piece_max ? piece_max : 1);
		unsigned k = choice[zt_rand(rng) % nchoice];

		/* At most about ZR_PIECES_MAX pieces: each pipe piece holds descriptors. */
		if (n < len / ZR_PIECES_MAX)
			n = len / ZR_PIECES_MAX;

		if (n > len - off)
			n = len - off;
		switch (k) {
		case ZR_MEM:
			assert_rc(zbl_append(bl, data + off, n), 0);
			break;
		case ZR_REF:
			assert_rc(zbl_append_ref(bl, data + off, n, zr_release_cb, rel), 0);
			(*nrefs)++;
			break;
		case ZR_FILE:
			assert_rc(zbl_append_file(bl, f, (int64_t)off, n), 0);
			break;
		default:
			zr_append_pipe_pages(bl, data + off, n);
			break;
		}
		off += n;
	}
	if (f >= 0)
		close(f);
	assert_size_equal(zbl_length(bl), len);
	return bl;
}

/*
 * A TCP connection over 127.0.0.1: fds[0] accepted, fds[1] connected. With
 * @small, fds[0]'s receive buffer and fds[1]'s send buffer are set to 16 KiB
 * (the kernel doubles it) before the connection is made, so the first
 * advertised window is small too: then only about 100 KiB written to fds[1]
 * can wait in the kernel while nobody reads fds[0]. Not the minimum: with a
 * receive buffer of a few KiB, loopback TCP shrinks its window below one
 * segment and crawls on window probes (5 KiB in 4 s, measured here).
 */
static inline void zr_tcp_pair(int fds[2], bool small)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int tiny = 16384;

	assert_true(l >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (small)
		assert_int_equal(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)), 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fds[1] >= 0);
	if (small)
		assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny)), 0);
	assert_int_equal(connect(fds[1], (struct sockaddr *)&a, sizeof(a)), 0);
	fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fds[0] >= 0);
	close(l);
}

/* Bytes waiting to be read on @fd (FIONREAD). */
static inline int zr_inq(int fd)
{
	int n = 0;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* Waits (at most @ms) until @fd has at least @n bytes waiting to be read. */
static inline void zr_wait_inq(int fd, int n, int ms)
{
	long long end = zr_now_ms() + ms;

	while (zr_inq(fd) < n) {
		if (zr_now_ms() > end)
			fail_msg("fd %d has %d bytes to read after %d ms, expected %d", fd,
				 zr_inq(fd), ms, n);
		usleep(200);
	}
}

/* ------------------------------------------------------------------------ */
/* Children.                                                                */

/* Runs child @name and fails unless it passed; 77 from the child skips the test. */
static inline void zr_expect_child(const char *name, const struct zk_child_opts *o)
{
	int rc = zk_run_child_with(name, o);

	if (rc >= 120 && rc <= 123)
		fail_msg("could not start child %s (status %d: %s)", name, rc,
			 rc == 120 ? "setrlimit" : rc == 121 ? "setresuid" :
			 rc == 122 ? "fexecve" : "seccomp filter");
	if (rc == 124)
		fail_msg("child %s did not finish within %d ms (hung inside the ring?); rerun it "
			 "alone with ZK_FILTER to see where", name, o->deadline_ms);
	if (rc == ZBL_TEST_SKIP)
		skip();
	if (rc != 0)
		fail_msg("child %s failed (status %d%s)", name, rc,
			 rc > 128 ? ", killed by a signal" : "");
}

#endif /* RING_UTIL_H */
