/* SPDX-License-Identifier: MIT */
/*
 * Rings (include/zbl.h, "Asynchronous I/O: rings"; issue 14, "Tests"). Every
 * scenario runs on both engines: the io_uring one, which must really be
 * io_uring here unless zbl_caps() says io_uring cannot be set up (then it is
 * skipped, saying why), and ZBL_RING_SYNC.
 *
 * - Differential: random sequences of operations (writes of lists mixing
 *   library memory, zbl_append_ref memory, file ranges and pipe pages to TCP
 *   and AF_UNIX sockets, pipes and a file at offsets, with and without
 *   ZBL_DRAIN; reads and splice_from from the same kinds; fsync) run through
 *   an io_uring ring, a ZBL_RING_SYNC ring and the synchronous functions
 *   (zbl_write_fd, zbl_splice_to, zbl_read_fd, zbl_splice_from), which must
 *   give the same results and bytes, and the bytes a model predicts.
 * - Borrowed memory sent to a TCP peer that does not read yet is released
 *   only after the peer read it and the kernel let go, exactly once.
 * - As nobody with RLIMIT_MEMLOCK at 64 KiB, 1 MiB sends never fail, arrive
 *   intact, and a zero-copy send that could not pin memory is counted.
 * - Under a seccomp filter answering io_uring_setup with EPERM, the ring is
 *   "sync", zbl_caps says why, and the differential and ordering tests pass.
 * - 10,000 small writes queued on one socket arrive in order, their
 *   callbacks in order with the right counts.
 * - A peer gone mid-transfer: -EPIPE or -ECONNRESET, no SIGPIPE, no leak.
 * - zbl_ring_cancel, zbl_ring_free with work in flight, zbl_ring_fd.
 * - A read waiting on a socket does not hold up a write to it.
 * - Writes and fsync on one file run in submission order.
 *
 * Direct I/O through the ring is in test_ring_direct.c (it is skipped as a
 * whole where the filesystem refuses O_DIRECT).
 *
 * Environment: ZBL_SEED (differential seed, default 0x51A6), ZBL_RING_SEQS
 * (sequences, default 120), ZBL_SEQ (run only that sequence), ZK_FILTER /
 * ZK_SKIP (cmocka patterns). Every test has a watchdog.
 */
#include "ring_util.h"

#include <liburing.h>

#define NOBODY 65534

/* ======================================================================== */
/* Differential                                                              */
/* ======================================================================== */

/*
 * A sequence has a few batches. At the start of a batch the test changes the
 * world the same way for every runner (appends lists, feeds bytes into the
 * runners' sources, ends a source); then the batch's operations are
 * submitted to each ring together and the ring is run until every callback
 * ran, or done one after the other by the synchronous functions. The
 * operations of a batch are chosen so that their results do not depend on
 * timing: a stream read is only issued while bytes are waiting for it (the
 * test waits with FIONREAD until everything fed has arrived) or the source
 * has ended, and a list being read into is not used again in the batch (it
 * belongs to the operation until its callback).
 */
#define DF_LISTS 3
#define DF_RUNNERS 3
#define DF_BATCH_OPS 6
#define DF_BATCHES 6
#define DF_LIST_MAX ((size_t)256 * 1024)
#define DF_UNREAD_MAX 32768          /* bytes fed but not read, per channel: fits any buffer */
#define DF_FILE_IN ((size_t)96 * 1024)
#define DF_FILE_OUT_MAX ((size_t)512 * 1024)
#define DF_DATA_MAX 32               /* buffers behind zbl_append_ref pieces, per sequence */

enum df_ch { CH_TCP, CH_UNIX, CH_PIPE, CH_N };
static const char *const df_ch_name[CH_N] = { "tcp", "unix", "pipe" };

enum df_kind {
	OP_WRITE,        /* list to a channel */
	OP_WRITE_FILE,   /* list to the output file at an offset */
	OP_FSYNC,        /* the output file */
	OP_READ,         /* zbl_ring_read / zbl_read_fd from a channel */
	OP_SPLICE,       /* zbl_ring_splice_from / zbl_splice_from(ZBL_SOME) from a channel */
	OP_READ_FILE,    /* from the input file at an offset */
	OP_SPLICE_FILE,
};
static const char *const df_kind_name[] = { "write", "write_file", "fsync", "read", "splice_from",
					    "read_file", "splice_from_file" };

struct df_op {
	enum df_kind kind;
	int list;
	enum df_ch ch;
	unsigned flags;    /* ZBL_DRAIN for writes */
	int64_t off;       /* files */
	size_t len;        /* reads */
	ssize_t want;      /* the expected result, or SSIZE_MAX: "as the runners agree" */
};

struct buf {
	unsigned char *b;
	size_t len, cap;
};

static void buf_add(struct buf *m, const void *p, size_t n)
{
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + n)
			cap *= 2;
		m->b = realloc(m->b, cap);
		assert_non_null(m->b);
		m->cap = cap;
	}
	if (n)
		memcpy(m->b + m->len, p, n);
	m->len += n;
}

static void buf_put(struct buf *m, size_t off, const void *p, size_t n)
{
	if (!n)
		return; /* writing nothing at an offset leaves a file as it was */
	if (off + n > m->len) {
		size_t old = m->len;
		if (off + n > m->cap) {
			size_t cap = m->cap ? m->cap : 4096;
			while (cap < off + n)
				cap *= 2;
			m->b = realloc(m->b, cap);
			assert_non_null(m->b);
			m->cap = cap;
		}
		memset(m->b + old, 0, off + n - old);
		m->len = off + n;
	}
	memcpy(m->b + off, p, n);
}

struct df_runner {
	const char *name;
	zbl_ring_t *ring;           /* NULL: the synchronous functions */
	int rfd[CH_N], wfd[CH_N];   /* the runner's ends: read from, written to */
	int feed[CH_N];             /* the test's ends that feed rfd */
	struct zr_sink sink[CH_N];  /* the test's ends that receive wfd's bytes */
	int file_out, file_in;
	zbl_t *bl[DF_LISTS];
	struct zr_release rel;
	size_t nrefs;
	struct zr_op res[DF_BATCH_OPS];
};

/* The model and the state shared by the runners of one sequence. */
struct df_seq {
	uint64_t rng;
	struct buf list[DF_LISTS];
	struct buf out[CH_N];       /* what each channel's sink must receive */
	struct buf fed[CH_N];       /* every byte fed into each channel */
	size_t consumed[CH_N];      /* of those, read by the runners */
	bool ended[CH_N];           /* the test ended the source */
	struct buf file_out;
	unsigned char *file_in;     /* DF_FILE_IN bytes */
	int file_in_fd;
	unsigned char *data[DF_DATA_MAX];
	int ndata;
	int nrunners;
	struct df_runner r[DF_RUNNERS];
	/* For failure messages. */
	unsigned long long seed;
	int seq, batch;
	char log[2048];
	size_t loglen;
};

static void df_log(struct df_seq *s, const char *fmt, ...)
{
	va_list ap;

	if (s->loglen >= sizeof(s->log) - 1)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(s->log + s->loglen, sizeof(s->log) - s->loglen, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->loglen += (size_t)n;
	if (s->loglen > sizeof(s->log) - 1)
		s->loglen = sizeof(s->log) - 1;
}

#define DF_FAIL(s, ...) do {                                                  \
	printf("# differential: seed 0x%llx sequence %d batch %d (ZBL_SEED=0x%llx " \
	       "ZBL_SEQ=%d); operations so far:\n%s\n", (s)->seed, (s)->seq,  \
	       (s)->batch, (s)->seed, (s)->seq, (s)->log);                   \
	fail_msg(__VA_ARGS__);                                                \
} while (0)

static int df_open_runner(struct df_seq *s, struct df_runner *r, const char *name,
			  zbl_ring_t *ring)
{
	int p[2];

	memset(r, 0, sizeof(*r));
	r->name = name;
	r->ring = ring;
	/* Sockets: one pair carries both directions. */
	zr_tcp_pair(p, false);
	r->rfd[CH_TCP] = r->wfd[CH_TCP] = p[0];
	r->feed[CH_TCP] = p[1];
	zr_sink_open(&r->sink[CH_TCP], dup(p[1]));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
	r->rfd[CH_UNIX] = r->wfd[CH_UNIX] = p[0];
	r->feed[CH_UNIX] = p[1];
	zr_sink_open(&r->sink[CH_UNIX], dup(p[1]));
	/* Pipes: one each way, large enough that feeding never waits. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fcntl(p[1], F_SETPIPE_SZ, 256 * 1024);
	r->rfd[CH_PIPE] = p[0];
	r->feed[CH_PIPE] = p[1];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r->wfd[CH_PIPE] = p[1];
	zr_sink_open(&r->sink[CH_PIPE], p[0]);
	for (int c = 0; c < CH_N; c++)
		zk_set_nonblock(r->feed[c], true);
	/*
	 * The synchronous functions get non-blocking descriptors: zbl_read_fd
	 * then stops at what has arrived, as one receive does, and writes
	 * are retried here. The rings get blocking ones (they must not wait
	 * on them anyway).
	 */
	if (!ring)
		for (int c = 0; c < CH_N; c++) {
			zk_set_nonblock(r->rfd[c], true);
			zk_set_nonblock(r->wfd[c], true);
		}
	r->file_out = zt_temp_fd(0);
	/* Its own open file description: positions are not shared. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->file_in_fd);
	r->file_in = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(r->file_in >= 0);
	return 0;
}

static void df_close_runner(struct df_runner *r)
{
	for (int c = 0; c < CH_N; c++) {
		if (r->rfd[c] != r->wfd[c])
			zk_close(&r->rfd[c]);
		zk_close(&r->wfd[c]);
		r->rfd[c] = -1;
		zk_close(&r->feed[c]);
		zk_close(&r->sink[c].fd);
		zr_sink_free(&r->sink[c]);
	}
	zk_close(&r->file_out);
	zk_close(&r->file_in);
	for (int l = 0; l < DF_LISTS; l++) {
		zbl_free(r->bl[l]);
		r->bl[l] = NULL;
	}
	if (r->ring)
		zbl_ring_free(r->ring);
	r->ring = NULL;
}

static size_t df_rand(struct df_seq *s, size_t n)
{
	return n ? (size_t)(zt_rand(&s->rng) % n) : 0;
}

/* A length, mostly small, sometimes large, up to @max. */
static size_t df_len(struct df_seq *s, size_t max)
{
	size_t n;

	switch (df_rand(s, 4)) {
	case 0:
		n = df_rand(s, 64);
		break;
	case 1:
		n = df_rand(s, 4096);
		break;
	case 2:
		n = df_rand(s, 40000);
		break;
	default:
		n = df_rand(s, 300000);
		break;
	}
	return n > max ? max : n;
}

/* New random bytes kept for the sequence (zbl_append_ref pieces refer to them). */
static unsigned char *df_data(struct df_seq *s, size_t n)
{
	unsigned char *d = malloc(n ? n : 1);

	assert_non_null(d);
	zt_fill_random(d, n, zt_rand(&s->rng));
	if (s->ndata < DF_DATA_MAX)
		s->data[s->ndata++] = d;
	else
		fail_msg("differential: too many data buffers");
	return d;
}

/* Appends a new list of mixed kinds to list @l of every runner (the same bytes and layout). */
static void df_append_mixed(struct df_seq *s, int l, size_t n)
{
	unsigned char *d = df_data(s, n);
	uint64_t layout = zt_rand(&s->rng);
	size_t piece = 1 + df_len(s, 100000);

	for (int k = 0; k < s->nrunners; k++) {
		struct df_runner *r = &s->r[k];
		uint64_t rng = layout;
		zbl_t *tmp = zr_mixed_list(d, n, &rng, ZR_ALL, piece, &r->rel, &r->nrefs);
		assert_rc(zbl_claim_append(r->bl[l], tmp), 0);
		zbl_free(tmp);
	}
	buf_add(&s->list[l], d, n);
	df_log(s, "  append_mixed list %d += %zu (pieces <= %zu)\n", l, n, piece);
}

/* Feeds @n new bytes into channel @c of every runner and waits until they have arrived. */
static void df_feed(struct df_seq *s, enum df_ch c, size_t n)
{
	unsigned char *d = malloc(n ? n : 1);

	assert_non_null(d);
	zt_fill_random(d, n, zt_rand(&s->rng));
	for (int k = 0; k < s->nrunners; k++) {
		size_t done = 0;
		while (done < n) {
			ssize_t w = write(s->r[k].feed[c], d + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				DF_FAIL(s, "feeding %zu bytes into %s of runner %s: %s (the test keeps "
					"sources under %d unread bytes, which must fit)", n,
					df_ch_name[c], s->r[k].name, w < 0 ? strerror(errno) : "0",
					DF_UNREAD_MAX);
			done += (size_t)w;
		}
	}
	buf_add(&s->fed[c], d, n);
	free(d);
	for (int k = 0; k < s->nrunners; k++)
		zr_wait_inq(s->r[k].rfd[c], (int)(s->fed[c].len - s->consumed[c]), 5000);
	df_log(s, "  feed %s += %zu\n", df_ch_name[c], n);
}

static void df_end_source(struct df_seq *s, enum df_ch c)
{
	for (int k = 0; k < s->nrunners; k++) {
		if (c == CH_PIPE)
			zk_close(&s->r[k].feed[c]);
		else
			assert_int_equal(shutdown(s->r[k].feed[c], SHUT_WR), 0);
	}
	s->ended[c] = true;
	df_log(s, "  end source %s\n", df_ch_name[c]);
}

/*
 * Chooses a batch: world changes first (done here, for every runner), then
 * up to DF_BATCH_OPS operations with their expected results.
 */
static int df_plan(struct df_seq *s, struct df_op *ops)
{
	bool locked[DF_LISTS] = { false };
	size_t avail[CH_N];
	bool splice_done[CH_N] = { false };
	int n = 0, want = 1 + (int)df_rand(s, DF_BATCH_OPS);

	/* World changes. */
	for (int l = 0; l < DF_LISTS; l++)
		if (df_rand(s, 3) == 0 && s->list[l].len < DF_LIST_MAX)
			df_append_mixed(s, l, 1 + df_len(s, DF_LIST_MAX - s->list[l].len - 1));
	for (int c = 0; c < CH_N; c++) {
		size_t unread = s->fed[c].len - s->consumed[c];
		if (!s->ended[c] && df_rand(s, 2) == 0 && unread < DF_UNREAD_MAX)
			df_feed(s, c, 1 + df_rand(s, DF_UNREAD_MAX - unread));
		else if (!s->ended[c] && df_rand(s, 12) == 0)
			df_end_source(s, c);
		avail[c] = s->fed[c].len - s->consumed[c];
	}

	for (int tries = 0; n < want && tries < 50; tries++) {
		struct df_op op = { .list = (int)df_rand(s, DF_LISTS), .ch = (enum df_ch)df_rand(s, CH_N),
				    .off = -1, .want = 0 };
		switch (df_rand(s, 10)) {
		case 0:
		case 1:
		case 2:
			op.kind = OP_WRITE;
			break;
		case 3:
			op.kind = OP_WRITE_FILE;
			break;
		case 4:
			op.kind = OP_FSYNC;
			break;
		case 5:
		case 6:
			op.kind = OP_READ;
			break;
		case 7:
			op.kind = OP_SPLICE;
			break;
		case 8:
			op.kind = OP_READ_FILE;
			break;
		default:
			op.kind = OP_SPLICE_FILE;
			break;
		}
		if (op.kind != OP_FSYNC && locked[op.list])
			continue;
		switch (op.kind) {
		case OP_WRITE:
		case OP_WRITE_FILE: {
			struct buf *m = &s->list[op.list];
			op.flags = df_rand(s, 3) == 0 ? ZBL_DRAIN : 0;
			if (op.kind == OP_WRITE_FILE) {
				op.off = (int64_t)df_rand(s, DF_FILE_OUT_MAX - DF_LIST_MAX);
				if (df_rand(s, 2))
					op.off &= ~(int64_t)4095; /* page-aligned, sometimes */
				buf_put(&s->file_out, (size_t)op.off, m->b, m->len);
			} else {
				buf_add(&s->out[op.ch], m->b, m->len);
			}
			op.want = (ssize_t)m->len;
			if (op.flags & ZBL_DRAIN)
				m->len = 0;
			break;
		}
		case OP_FSYNC:
			op.flags = df_rand(s, 2) ? ZBL_DATASYNC : 0;
			op.want = 0;
			break;
		case OP_READ:
		case OP_SPLICE: {
			/* Never a read that would wait: bytes are there, or the source ended. */
			if (splice_done[op.ch] || (!avail[op.ch] && !s->ended[op.ch]))
				continue;
			op.len = 1 + df_len(s, 65536);
			if (s->list[op.list].len + op.len > DF_LIST_MAX + 65536)
				continue;
			size_t got = op.len < avail[op.ch] ? op.len : avail[op.ch];
			if (op.kind == OP_READ) {
				op.want = (ssize_t)got;
				avail[op.ch] -= got;
			} else {
				/*
				 * At most one per channel per batch, and no read after
				 * it: splice_from with ZBL_SOME may return less than
				 * is waiting; the runners must agree.
				 */
				op.want = got ? SSIZE_MAX : 0;
				splice_done[op.ch] = true;
			}
			locked[op.list] = true;
			break;
		}
		case OP_READ_FILE:
		case OP_SPLICE_FILE: {
			op.off = (int64_t)df_rand(s, DF_FILE_IN + 100);
			op.len = 1 + df_len(s, 65536);
			if (s->list[op.list].len + op.len > DF_LIST_MAX + 65536)
				continue;
			size_t left = (size_t)op.off < DF_FILE_IN ? DF_FILE_IN - (size_t)op.off : 0;
			op.want = (ssize_t)(op.len < left ? op.len : left);
			locked[op.list] = true;
			break;
		}
		}
		ops[n++] = op;
	}
	return n;
}

static void df_submit_ring(struct df_seq *s, struct df_runner *r, const struct df_op *op,
			   struct zr_op *res)
{
	zbl_t *bl = r->bl[op->list];
	int rc = 0;

	switch (op->kind) {
	case OP_WRITE:
		rc = (int)ZR_CALL(zbl_ring_write(r->ring, bl, r->wfd[op->ch], -1, op->flags, zr_cb,
						 res));
		break;
	case OP_WRITE_FILE:
		rc = (int)ZR_CALL(zbl_ring_write(r->ring, bl, r->file_out, op->off, op->flags,
						 zr_cb, res));
		break;
	case OP_FSYNC:
		rc = (int)ZR_CALL(zbl_ring_fsync(r->ring, r->file_out, op->flags, zr_cb, res));
		break;
	case OP_READ:
		rc = (int)ZR_CALL(zbl_ring_read(r->ring, bl, r->rfd[op->ch], -1, op->len, 0, zr_cb,
						res));
		break;
	case OP_SPLICE:
		rc = (int)ZR_CALL(zbl_ring_splice_from(r->ring, bl, r->rfd[op->ch], -1, op->len, 0,
						       zr_cb, res));
		break;
	case OP_READ_FILE:
		rc = (int)ZR_CALL(zbl_ring_read(r->ring, bl, r->file_in, op->off, op->len, 0, zr_cb,
						res));
		break;
	case OP_SPLICE_FILE:
		rc = (int)ZR_CALL(zbl_ring_splice_from(r->ring, bl, r->file_in, op->off, op->len, 0,
						       zr_cb, res));
		break;
	}
	if (rc != 0)
		DF_FAIL(s, "%s ring: submitting %s returned %d (%s)", r->name,
			df_kind_name[op->kind], rc, zt_errname(rc));
	if (res->calls)
		DF_FAIL(s, "%s ring: the callback of %s ran inside its submission", r->name,
			df_kind_name[op->kind]);
	if ((op->kind == OP_WRITE || op->kind == OP_WRITE_FILE) && (op->flags & ZBL_DRAIN) &&
	    zbl_length(bl) != 0)
		DF_FAIL(s, "%s ring: a ZBL_DRAIN write left %zu bytes in the list at submission",
			r->name, zbl_length(bl));
}

/* Writes all of @bl to non-blocking @fd with the synchronous functions, emptying @sink. */
static ssize_t df_sync_write_stream(zbl_t *bl, int fd, unsigned flags, struct zr_sink *sink)
{
	size_t len = zbl_length(bl), done = 0;
	long long end = zr_now_ms() + 10000;

	while (done < len) {
		ssize_t w;
		if (flags & ZBL_DRAIN) {
			w = zbl_splice_to(bl, fd, NULL, ZBL_DRAIN);
		} else {
			zbl_t *rest = zt_new();
			assert_rc(zbl_substr_of(rest, bl, done, len - done), 0);
			w = zbl_write_fd(rest, fd);
			zbl_free(rest);
		}
		if (w == -EAGAIN || w == 0) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			zr_sink_drain(sink);
			poll(&p, 1, 10);
			if (zr_now_ms() > end)
				fail_msg("synchronous write of %zu bytes stuck at %zu", len, done);
			continue;
		}
		if (w < 0)
			return w;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static ssize_t df_do_sync(struct df_runner *r, const struct df_op *op)
{
	zbl_t *bl = r->bl[op->list];
	int64_t off = op->off;

	switch (op->kind) {
	case OP_WRITE:
		return df_sync_write_stream(bl, r->wfd[op->ch], op->flags, &r->sink[op->ch]);
	case OP_WRITE_FILE:
		return zbl_splice_to(bl, r->file_out, &off, op->flags);
	case OP_FSYNC:
		if (op->flags & ZBL_DATASYNC)
			return fdatasync(r->file_out) < 0 ? -errno : 0;
		return fsync(r->file_out) < 0 ? -errno : 0;
	case OP_READ: {
		ssize_t got = zbl_read_fd(bl, r->rfd[op->ch], op->len);
		return got;
	}
	case OP_SPLICE:
		return zbl_splice_from(bl, r->rfd[op->ch], NULL, op->len, ZBL_SOME);
	case OP_READ_FILE:
		assert_true(lseek(r->file_in, op->off, SEEK_SET) == op->off);
		return zbl_read_fd(bl, r->file_in, op->len);
	case OP_SPLICE_FILE:
		return zbl_splice_from(bl, r->file_in, &off, op->len, ZBL_SOME);
	}
	return -EINVAL;
}

/* Checks list @l of every runner against the model. */
static void df_check_list(struct df_seq *s, int l)
{
	for (int k = 0; k < s->nrunners; k++) {
		zbl_t *bl = s->r[k].bl[l];
		struct buf *m = &s->list[l];
		if (zbl_length(bl) != m->len)
			DF_FAIL(s, "runner %s: list %d holds %zu bytes, the model %zu", s->r[k].name,
				l, zbl_length(bl), m->len);
		unsigned char *flat = zt_flat(bl);
		for (size_t i = 0; i < m->len; i++)
			if (flat[i] != m->b[i]) {
				unsigned got = flat[i];
				free(flat);
				DF_FAIL(s, "runner %s: list %d differs from the model at byte %zu of "
					"%zu: 0x%02x, expected 0x%02x", s->r[k].name, l, i, m->len,
					got, m->b[i]);
			}
		free(flat);
	}
}

static void df_run_batch(struct df_seq *s, const struct df_op *ops, int n)
{
	ssize_t results[DF_RUNNERS][DF_BATCH_OPS];

	for (int i = 0; i < n; i++)
		df_log(s, "  %s list %d %s off %lld len %zu flags %u -> %zd\n",
		       df_kind_name[ops[i].kind], ops[i].list, df_ch_name[ops[i].ch],
		       (long long)ops[i].off, ops[i].len, ops[i].flags, ops[i].want);
	for (int k = 0; k < s->nrunners; k++) {
		struct df_runner *r = &s->r[k];
		if (!r->ring) {
			for (int i = 0; i < n; i++)
				results[k][i] = df_do_sync(r, &ops[i]);
			continue;
		}
		memset(r->res, 0, sizeof(r->res));
		for (int i = 0; i < n; i++)
			df_submit_ring(s, r, &ops[i], &r->res[i]);
		zr_pump(r->ring, r->res, (size_t)n, r->sink, CH_N, 10000, r->name);
		for (int i = 0; i < n; i++) {
			if (r->res[i].calls != 1 || r->res[i].in_library || r->res[i].ring != r->ring)
				DF_FAIL(s, "%s ring: operation %d (%s): callback ran %d times%s%s",
					r->name, i, df_kind_name[ops[i].kind], r->res[i].calls,
					r->res[i].in_library ? ", inside a submission" : "",
					r->res[i].ring != r->ring ? ", with another ring" : "");
			results[k][i] = r->res[i].result;
		}
	}
	/* Same results everywhere, and the expected ones. */
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < s->nrunners; k++)
			if (results[k][i] != results[0][i])
				DF_FAIL(s, "operation %d (%s on list %d, %s): %s got %zd (%s), %s got "
					"%zd (%s)", i, df_kind_name[ops[i].kind], ops[i].list,
					df_ch_name[ops[i].ch], s->r[0].name, results[0][i],
					zt_errname(results[0][i]), s->r[k].name, results[k][i],
					zt_errname(results[k][i]));
		ssize_t got = results[0][i];
		if (ops[i].want == SSIZE_MAX) {
			size_t waiting = s->fed[ops[i].ch].len - s->consumed[ops[i].ch];
			if (got <= 0 || (size_t)got > ops[i].len || (size_t)got > waiting)
				DF_FAIL(s, "operation %d (splice_from %zu of %zu waiting on %s) "
					"returned %zd (%s)", i, ops[i].len, waiting,
					df_ch_name[ops[i].ch], got, zt_errname(got));
		} else if (got != ops[i].want) {
			DF_FAIL(s, "operation %d (%s on list %d, %s, len %zu) returned %zd (%s), "
				"expected %zd", i, df_kind_name[ops[i].kind], ops[i].list,
				df_ch_name[ops[i].ch], ops[i].len, got, zt_errname(got),
				ops[i].want);
		}
		/* The model follows the reads. */
		if (got > 0 && (ops[i].kind == OP_READ || ops[i].kind == OP_SPLICE)) {
			enum df_ch c = ops[i].ch;
			buf_add(&s->list[ops[i].list], s->fed[c].b + s->consumed[c], (size_t)got);
			s->consumed[c] += (size_t)got;
		} else if (got > 0 && (ops[i].kind == OP_READ_FILE || ops[i].kind == OP_SPLICE_FILE)) {
			buf_add(&s->list[ops[i].list], s->file_in + ops[i].off, (size_t)got);
		}
	}
	/* Lists are compared now and then: reading kernel pages copies them into memory. */
	for (int l = 0; l < DF_LISTS; l++)
		if (df_rand(s, 4) == 0)
			df_check_list(s, l);
}

/* Ends every runner's writes and checks what each sink and output file got. */
static void df_finish(struct df_seq *s)
{
	for (int k = 0; k < s->nrunners; k++) {
		struct df_runner *r = &s->r[k];
		shutdown(r->wfd[CH_TCP], SHUT_WR);
		shutdown(r->wfd[CH_UNIX], SHUT_WR);
		zk_close(&r->wfd[CH_PIPE]);
		long long end = zr_now_ms() + 5000;
		for (int c = 0; c < CH_N; c++) {
			while (!r->sink[c].eof && !r->sink[c].err) {
				if (!zr_sink_drain(&r->sink[c])) {
					struct pollfd p = { .fd = r->sink[c].fd, .events = POLLIN };
					poll(&p, 1, 10);
				}
				if (zr_now_ms() > end)
					DF_FAIL(s, "runner %s: %s sink did not end", r->name,
						df_ch_name[c]);
			}
			if (r->sink[c].err)
				DF_FAIL(s, "runner %s: reading the %s sink: %s", r->name,
					df_ch_name[c], strerror(r->sink[c].err));
			struct buf *m = &s->out[c];
			if (r->sink[c].len != m->len)
				DF_FAIL(s, "runner %s: %zu bytes arrived on %s, the model %zu",
					r->name, r->sink[c].len, df_ch_name[c], m->len);
			for (size_t i = 0; i < m->len; i++)
				if (r->sink[c].buf[i] != m->b[i])
					DF_FAIL(s, "runner %s: byte %zu of %zu on %s is 0x%02x, "
						"expected 0x%02x", r->name, i, m->len,
						df_ch_name[c], r->sink[c].buf[i], m->b[i]);
		}
		size_t flen;
		unsigned char *f = zt_file_contents(r->file_out, &flen);
		if (flen != s->file_out.len)
			DF_FAIL(s, "runner %s: the output file holds %zu bytes, the model %zu",
				r->name, flen, s->file_out.len);
		for (size_t i = 0; i < flen; i++)
			if (f[i] != s->file_out.b[i]) {
				unsigned got = f[i];
				free(f);
				DF_FAIL(s, "runner %s: output file byte %zu is 0x%02x, expected "
					"0x%02x", r->name, i, got, s->file_out.b[i]);
			}
		free(f);
	}
	for (int l = 0; l < DF_LISTS; l++)
		df_check_list(s, l);
}

/*
 * One sequence through the runners: the engines of @engines (rings) plus the
 * synchronous functions.
 */
static void df_sequence(unsigned long long seed, int seq, const struct zr_engine *const *engines,
			int nengines)
{
	static struct df_seq s; /* large; one sequence at a time */
	struct df_op ops[DF_BATCH_OPS];
	int fds_before = zk_fd_count();

	memset(&s, 0, sizeof(s));
	s.seed = seed;
	s.seq = seq;
	s.rng = seed ^ ((uint64_t)seq * 0x9E3779B97F4A7C15ull);
	s.file_in = malloc(DF_FILE_IN);
	assert_non_null(s.file_in);
	zt_fill_random(s.file_in, DF_FILE_IN, zt_rand(&s.rng));
	s.file_in_fd = zt_temp_file(s.file_in, DF_FILE_IN);
	s.nrunners = nengines + 1;
	df_open_runner(&s, &s.r[0], "synchronous functions", NULL);
	for (int k = 0; k < nengines; k++)
		df_open_runner(&s, &s.r[k + 1], engines[k]->flags & ZBL_RING_SYNC ?
			       "ZBL_RING_SYNC" : "flags 0", zr_new_engine(engines[k], 0));
	for (int k = 0; k < s.nrunners; k++)
		for (int l = 0; l < DF_LISTS; l++)
			s.r[k].bl[l] = zt_new();
	for (int l = 0; l < DF_LISTS; l++)
		if (df_rand(&s, 4))
			df_append_mixed(&s, l, 1 + df_len(&s, DF_LIST_MAX - 1));
	for (s.batch = 0; s.batch < DF_BATCHES; s.batch++) {
		df_log(&s, "batch %d:\n", s.batch);
		int n = df_plan(&s, ops);
		df_run_batch(&s, ops, n);
	}
	df_finish(&s);
	/* Every borrowed piece is released once the lists and rings are gone. */
	for (int k = 0; k < s.nrunners; k++) {
		struct df_runner *r = &s.r[k];
		df_close_runner(r);
		if ((size_t)atomic_load(&r->rel.calls) != r->nrefs)
			DF_FAIL(&s, "runner %s: %d release callbacks for %zu zbl_append_ref pieces",
				r->name, atomic_load(&r->rel.calls), r->nrefs);
		if (atomic_load(&r->rel.in_library))
			DF_FAIL(&s, "runner %s: a release callback ran inside a submission",
				r->name);
	}
	for (int c = 0; c < CH_N; c++) {
		free(s.out[c].b);
		free(s.fed[c].b);
	}
	for (int l = 0; l < DF_LISTS; l++)
		free(s.list[l].b);
	free(s.file_out.b);
	for (int i = 0; i < s.ndata; i++)
		free(s.data[i]);
	free(s.file_in);
	close(s.file_in_fd);
	zbl_pool_flush();
	int fds_after = zk_fd_count();
	if (fds_after != fds_before)
		DF_FAIL(&s, "%d descriptors open after the sequence, %d before", fds_after,
			fds_before);
}

static unsigned long long env_ull(const char *name, unsigned long long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* Runs the differential: @nseq sequences (ZBL_RING_SEQS overrides), or ZBL_SEQ alone. */
static void df_run(const struct zr_engine *first, int nseq)
{
	const struct zr_engine *engines[2] = { first, &zr_engine_sync };
	unsigned long long seed = env_ull("ZBL_SEED", 0x51A6);
	const char *one = getenv("ZBL_SEQ");

	nseq = (int)env_ull("ZBL_RING_SEQS", (unsigned long long)nseq);
	if (getenv("ZBL_VALGRIND") && nseq > 4)
		nseq = 4;
	if (one && *one) {
		df_sequence(seed, atoi(one), engines, 2);
		return;
	}
	for (int q = 0; q < nseq; q++)
		df_sequence(seed, q, engines, 2);
	printf("# differential: %d sequences (seed 0x%llx), flags-0 ring \"%s\"\n", nseq, seed,
	       first->require_uring ? "io_uring" : "as the library chose");
}

static void child_differential(void **state)
{
	(void)state;
	zk_begin(120);
	struct zbl_caps c = zr_caps();
	if (!c.io_uring)
		printf("# io_uring is not available here (%s): the differential compares the "
		       "synchronous engine with itself and the functions\n",
		       c.io_uring_why_not ? c.io_uring_why_not : "?");
	df_run(&zr_engine_default, 120);
}

/*
 * The differential runs in a child with a deadline: an engine that blocks
 * inside zbl_ring_run cannot be interrupted, and the watchdog would end the
 * whole program, not just this test.
 */
static void test_differential_io_uring_sync_ring_and_sync_functions_agree(void **state)
{
	(void)state;
	struct zk_child_opts o = { .uid = (uid_t)-1, .deadline_ms = 60000 };

	zk_watchdog(__func__, 120);
	zr_expect_child("differential", &o);
}

/* ======================================================================== */
/* Engines, arguments, the ring's descriptor                                 */
/* ======================================================================== */

/*
 * zbl_caps() reports io_uring as the kernel answers this process: a ring set
 * up here with io_uring_setup(2) means io_uring must be reported available
 * (and zbl_ring_new(0, 0) must use it); a refusal must be reported with a
 * reason. SEND_ZC support follows the kernel's opcode probe, and
 * memlock_limit is RLIMIT_MEMLOCK.
 */
static void test_caps_report_io_uring_as_the_kernel_answers(void **state)
{
	(void)state;
	zk_begin(10);
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	long fd = syscall(__NR_io_uring_setup, 4, &p);
	int err = fd < 0 ? errno : 0;
	struct zbl_caps c = zr_caps();
	struct rlimit rl;

	printf("# zbl_caps: io_uring %d (%s), send_zc %d, memlock_limit %llu; io_uring_setup "
	       "here: %s\n", c.io_uring, c.io_uring_why_not ? c.io_uring_why_not : "-",
	       c.send_zc, (unsigned long long)c.memlock_limit, fd >= 0 ? "ok" : strerror(err));
	if (fd >= 0) {
		close((int)fd);
		if (!c.io_uring)
			fail_msg("io_uring_setup works here, but zbl_caps says io_uring is not "
				 "available (%s)", c.io_uring_why_not ? c.io_uring_why_not : "no reason");
		if (c.io_uring_why_not)
			fail_msg("zbl_caps gives a reason (%s) although io_uring is available",
				 c.io_uring_why_not);
		struct io_uring_probe *probe = io_uring_get_probe();
		if (probe) {
			bool zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
			io_uring_free_probe(probe);
			if (zc != c.send_zc)
				fail_msg("the kernel's probe says SEND_ZC is %ssupported, zbl_caps "
					 "says send_zc %d", zc ? "" : "not ", c.send_zc);
		}
	} else {
		if (c.io_uring)
			fail_msg("io_uring_setup fails here (%s), but zbl_caps says io_uring is "
				 "available", strerror(err));
		if (!c.io_uring_why_not || !*c.io_uring_why_not)
			fail_msg("zbl_caps says io_uring is not available without a reason");
		if (c.send_zc)
			fail_msg("zbl_caps says send_zc without io_uring");
	}
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	assert_size_equal(c.memlock_limit,
			  rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
}

/* Bad arguments give -EINVAL (NULL with errno EINVAL from zbl_ring_new), queue nothing,
 * run no callback and leave the list as it was. */
static void test_bad_arguments_are_refused_and_queue_nothing(void **state)
{
	zk_begin(10);
	const struct zr_engine *e = zr_engine_of(state);
	zbl_ring_t *r = zr_open(state);
	struct zr_op op = { 0 };
	int p[2];
	zbl_t *bl = ZT_LIST("abc", "defgh");
	struct zt_snap snap;

	errno = 0;
	assert_null(zbl_ring_new(0, 0x80));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(zbl_ring_new(4097, e->flags));
	assert_int_equal(errno, EINVAL);
	zbl_ring_t *big = zbl_ring_new(4096, e->flags);
	assert_non_null(big);
	zbl_ring_free(big);
	zbl_ring_free(NULL);

	assert_null(zbl_ring_backend(NULL));
	assert_rc(zbl_ring_fd(NULL), -EINVAL);
	assert_rc(zbl_ring_run(NULL, 0, 0), -EINVAL);
	assert_rc(zbl_ring_cancel(NULL, 0), -EINVAL);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	zt_snap_take(&snap, bl);
	assert_rc(ZR_CALL(zbl_ring_write(NULL, bl, p[1], -1, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_write(r, NULL, p[1], -1, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, -1, -1, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, p[1], -2, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, p[1], -1, 0x80, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, p[1], -1, ZBL_DRAIN | 0x80, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_read(NULL, bl, p[0], -1, 10, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_read(r, NULL, p[0], -1, 10, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_read(r, bl, -1, -1, 10, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_read(r, bl, p[0], -1, 10, 0x80, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_splice_from(NULL, bl, p[0], -1, 10, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_splice_from(r, NULL, p[0], -1, 10, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_splice_from(r, bl, -1, -1, 10, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_splice_from(r, bl, p[0], -1, 10, 0x80, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_fsync(NULL, p[1], 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_fsync(r, -1, 0, zr_cb, &op)), -EINVAL);
	assert_rc(ZR_CALL(zbl_ring_fsync(r, p[1], 0x80, zr_cb, &op)), -EINVAL);
	assert_unchanged(&snap, bl);

	/* Nothing was queued: nothing runs, nothing was written. */
	assert_rc(zr_run_checked(r, 0, 0), 0);
	assert_rc(zr_run_checked(r, 1, 50), 0);
	assert_int_equal(op.calls, 0);
	assert_int_equal(zr_inq(p[0]), 0);
	assert_rc(ZR_CALL(zbl_ring_cancel(r, p[1])), 0);
	zbl_ring_free(r);
	assert_int_equal(op.calls, 0);
	zbl_free(bl);
	close(p[0]);
	close(p[1]);
}

/*
 * zbl_ring_fd() polls readable when zbl_ring_run(ring, 0, 0) would run a
 * callback: when bytes arrive for a waiting read (without any call into the
 * library in between), and when an operation is queued. An idle ring's
 * descriptor does not poll readable (an epoll loop would spin).
 */
static void test_ring_fd_polls_readable_when_a_callback_is_ready(void **state)
{
	zk_begin(20);
	zbl_ring_t *r = zr_open(state);
	int fd = zbl_ring_fd(r), sv[2], p[2];
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	struct zr_op rd = { 0 }, wr = { 0 };
	zbl_t *in = zt_new(), *out = ZT_LIST("queued");

	assert_int_equal(poll(&pf, 1, 0), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_rc(ZR_CALL(zbl_ring_read(r, in, sv[0], -1, 100, 0, zr_cb, &rd)), 0);
	/* Let the read start waiting. */
	for (int i = 0; i < 5; i++)
		zr_run_checked(r, 0, 0);
	assert_int_equal(rd.calls, 0);
	if (poll(&pf, 1, 100) != 0)
		fail_msg("the %s ring's descriptor polls readable while its only operation, a "
			 "read, waits for bytes that have not come", zbl_ring_backend(r));

	zt_write_full(sv[1], "hello", 5);
	if (poll(&pf, 1, 5000) != 1)
		fail_msg("bytes came for a waiting read, but the %s ring's descriptor did not "
			 "poll readable within 5 s", zbl_ring_backend(r));
	/* A callback is ready (zbl_ring_run with min_done 0 runs it, at most after
	 * a second try for an engine that first learns of the bytes). */
	for (int i = 0; i < 100 && !rd.calls; i++) {
		zr_run_checked(r, 0, 0);
		if (!rd.calls)
			usleep(1000);
	}
	zr_assert_result(&rd, r, 5, "read of a waiting socket");
	assert_list_str(in, "hello");
	if (poll(&pf, 1, 50) != 0)
		fail_msg("the %s ring's descriptor still polls readable after every callback ran",
			 zbl_ring_backend(r));

	/* A queued operation: the ring has work. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_rc(ZR_CALL(zbl_ring_write(r, out, p[1], -1, 0, zr_cb, &wr)), 0);
	if (poll(&pf, 1, 5000) != 1)
		fail_msg("an operation is queued, but the %s ring's descriptor does not poll "
			 "readable", zbl_ring_backend(r));
	zr_pump(r, &wr, 1, NULL, 0, 5000, "write to a pipe");
	zr_assert_result(&wr, r, 6, "write to a pipe");
	if (poll(&pf, 1, 50) != 0)
		fail_msg("the %s ring's descriptor polls readable when the ring is idle",
			 zbl_ring_backend(r));
	zbl_ring_free(r);
	zbl_free(in);
	zbl_free(out);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

/* A callback may queue the next operation; zbl_ring_run from inside one is -EBUSY. */
struct chain {
	struct zr_op op[3];
	int next;
	int fd;
	int run_rc;
	zbl_t *bl;
};

static void chain_cb(zbl_ring_t *ring, ssize_t result, void *arg)
{
	struct chain *c = arg;
	int i = c->next++;

	zr_cb(ring, result, &c->op[i]);
	c->run_rc = zbl_ring_run(ring, 0, 0);
	if (c->next < 3) {
		char msg[2] = { (char)('1' + c->next), 0 };
		zbl_clear(c->bl);
		zbl_append(c->bl, msg, 1);
		if (zbl_ring_write(ring, c->bl, c->fd, -1, 0, chain_cb, c) != 0)
			c->run_rc = -12345;
	}
}

static void test_callbacks_may_queue_more_and_run_from_a_callback_is_ebusy(void **state)
{
	zk_begin(20);
	zbl_ring_t *r = zr_open(state);
	struct chain c = { .run_rc = 1 };
	int p[2];
	char got[4] = { 0 };

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	c.fd = p[1];
	c.bl = ZT_LIST("1");
	assert_rc(ZR_CALL(zbl_ring_write(r, c.bl, p[1], -1, 0, chain_cb, &c)), 0);
	zr_pump(r, c.op, 3, NULL, 0, 5000, "three chained writes");
	for (int i = 0; i < 3; i++)
		zr_assert_result(&c.op[i], r, 1, "chained write");
	assert_rc(c.run_rc, -EBUSY);
	zt_read_full(p[0], got, 3);
	assert_string_equal(got, "123");
	zbl_ring_free(r);
	zbl_free(c.bl);
	close(p[0]);
	close(p[1]);
}

/* ======================================================================== */
/* Borrowed memory and zero-copy sends                                       */
/* ======================================================================== */

static void print_zc_stats(const char *what, const struct zbl_stats *s)
{
	printf("# %s: bytes_sent_zerocopy=%llu bytes_zerocopy_copied=%llu bytes_copied_out=%llu "
	       "bytes_spliced_out=%llu fallbacks=%llu ring_ops=%llu ring_sync_ops=%llu\n", what,
	       (unsigned long long)s->bytes_sent_zerocopy,
	       (unsigned long long)s->bytes_zerocopy_copied,
	       (unsigned long long)s->bytes_copied_out, (unsigned long long)s->bytes_spliced_out,
	       (unsigned long long)s->fallbacks, (unsigned long long)s->ring_ops,
	       (unsigned long long)s->ring_sync_ops);
	fflush(stdout);
}

/* ring_ops counts completed operations, ring_sync_ops those of the synchronous engine. */
static void assert_ring_op_counts(bool uring, const struct zbl_stats *s, uint64_t n)
{
	assert_size_equal(s->ring_ops, n);
	assert_size_equal(s->ring_sync_ops, uring ? 0 : n);
}

/*
 * 1 MiB of caller memory (zbl_append_ref) written to a TCP peer whose
 * buffers are small and which does not read: the operation
 * cannot complete, and the memory stays referenced (the list itself was
 * freed right after submission). Once the peer has read everything the
 * write completes; the release callback follows, from zbl_ring_run, once the
 * kernel has let go (after the ACKs, for a zero-copy send), and exactly once.
 */
static void test_borrowed_memory_is_released_only_after_the_peer_read_it(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);
	bool uring = zr_is_uring(r);
	size_t len = ZK_MiB;
	unsigned char *buf = NULL;
	struct zr_release rel = { 0 };
	struct zr_op op = { 0 };
	struct zr_sink sink;
	struct zbl_stats s;
	int fds[2];
	zbl_t *bl = zt_new();

	assert_int_equal(posix_memalign((void **)&buf, 4096, len), 0);
	zk_pat_fill(buf, len, 21, 0);
	zr_tcp_pair(fds, true);
	zbl_stats_reset();
	assert_rc(zbl_append_ref(bl, buf, len, zr_release_cb, &rel), 0);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, fds[1], -1, 0, zr_cb, &op)), 0);
	zbl_free(bl); /* the operation holds its own reference */
	assert_int_equal(atomic_load(&rel.calls), 0);

	zr_pump_for(r, NULL, 0, 300);
	if (op.calls)
		fail_msg("a 1 MiB write to a peer that reads nothing completed (result %zd): the "
			 "socket buffers are larger than this test assumes", op.result);
	if (atomic_load(&rel.calls))
		fail_msg("the release callback ran while the write was still in progress and the "
			 "peer had read nothing");

	/* The peer reads everything. */
	zr_sink_open(&sink, fds[0]);
	zr_pump(r, &op, 1, &sink, 1, 10000, "1 MiB write to a reading peer");
	zr_assert_result(&op, r, len, "1 MiB of borrowed memory to TCP");
	long long t0 = zr_now_ms();
	while (sink.len < len && zr_now_ms() - t0 < 5000) {
		zr_sink_drain(&sink);
		zk_wait(fds[0], POLLIN, 5000);
	}
	zr_assert_sink(&sink, buf, len, "the peer");

	/* The kernel lets go after the peer's ACKs: keep running the ring. */
	t0 = zr_now_ms();
	while (!atomic_load(&rel.calls) && zr_now_ms() - t0 < 5000) {
		struct pollfd pf = { .fd = zbl_ring_fd(r), .events = POLLIN };
		zr_sink_drain(&sink);
		poll(&pf, 1, 10);
		zr_run_checked(r, 0, 0);
	}
	printf("# release callback %s %lld ms after the write's callback (%s engine)\n",
	       atomic_load(&rel.calls) ? "ran" : "had not run", zr_now_ms() - t0,
	       zbl_ring_backend(r));
	if (atomic_load(&rel.calls) != 1)
		fail_msg("the release callback ran %d times within 5 s of the write's completion, "
			 "expected once", atomic_load(&rel.calls));
	if (atomic_load(&rel.in_library))
		fail_msg("the release callback ran inside a submission or zbl_ring_cancel");
	zr_pump_for(r, &sink, 1, 50);
	zbl_ring_free(r);
	assert_int_equal(atomic_load(&rel.calls), 1);

	zbl_stats_get(&s);
	print_zc_stats("1 MiB of borrowed memory to a TCP loopback peer", &s);
	assert_ring_op_counts(uring, &s, 1);
	if (s.bytes_sent_zerocopy + s.bytes_zerocopy_copied > 0) {
		/* Loopback always copies: a zero-copy send here must have been reported copied. */
		if (s.bytes_zerocopy_copied == 0)
			fail_msg("zero-copy sends were made on loopback, where the kernel always "
				 "copies, but bytes_zerocopy_copied is 0");
		assert_true(s.bytes_zerocopy_copied <= len);
	}
	if (!uring && (s.bytes_sent_zerocopy || s.bytes_zerocopy_copied))
		fail_msg("the synchronous engine counted zero-copy sends");
	if (!uring)
		assert_size_equal(s.bytes_copied_out, len);
	assert_true(s.bytes_copied_out + s.bytes_sent_zerocopy + s.bytes_zerocopy_copied >= len);
	zr_sink_free(&sink);
	close(fds[0]);
	close(fds[1]);
	free(buf);
}

/*
 * Runs in a child as nobody with RLIMIT_MEMLOCK at 64 KiB: writes of 1 MiB of
 * memory to a TCP socket through the ring. A zero-copy send of 1 MiB cannot
 * pin its pages under that limit (without registered buffers each send in
 * flight counts against RLIMIT_MEMLOCK; the kernel answers -ENOMEM), so the
 * library must copy instead, count it in fallbacks, and never fail the write.
 */
static void memlock_body(const struct zr_engine *e)
{
	zk_begin(60);
	struct zbl_caps c = zr_caps();
	size_t len = ZK_MiB, rounds = 4, total = len * rounds;
	unsigned char *data = zk_pat_alloc(total, 31);
	struct zr_release rel = { 0 };
	size_t nrefs = 0;
	struct zr_op op[4] = { { 0 } };
	struct zr_sink sink;
	struct zbl_stats s;
	int fds[2];

	assert_int_equal(geteuid(), NOBODY);
	printf("# as uid %d: memlock_limit %llu, io_uring %d (%s), send_zc %d\n", NOBODY,
	       (unsigned long long)c.memlock_limit, c.io_uring,
	       c.io_uring_why_not ? c.io_uring_why_not : "-", c.send_zc);
	assert_size_equal(c.memlock_limit, 64 * ZK_KiB);
	zbl_ring_t *r = zr_new_engine(e, 0);
	bool uring = zr_is_uring(r);
	zr_tcp_pair(fds, false);
	zr_sink_open(&sink, fds[0]);
	zbl_stats_reset();
	for (size_t i = 0; i < rounds; i++) {
		const unsigned char *d = data + i * len;
		zbl_t *bl = zt_new();
		switch (i) {
		case 0: /* library memory */
			assert_rc(zbl_append(bl, d, len), 0);
			break;
		case 1: /* borrowed memory */
			assert_rc(zbl_append_ref(bl, d, len, zr_release_cb, &rel), 0);
			nrefs++;
			break;
		default: /* both, in large runs */
			assert_rc(zbl_append(bl, d, len / 2 - 100), 0);
			assert_rc(zbl_append_ref(bl, d + len / 2 - 100, len / 2 + 100, zr_release_cb,
						 &rel), 0);
			nrefs++;
			break;
		}
		assert_rc(ZR_CALL(zbl_ring_write(r, bl, fds[1], -1, 0, zr_cb, &op[i])), 0);
		zbl_free(bl);
		/* The last two are in flight together. */
		if (i < 2)
			zr_pump(r, &op[i], 1, &sink, 1, 20000, "1 MiB write as nobody");
	}
	zr_pump(r, op, rounds, &sink, 1, 20000, "1 MiB writes as nobody");
	for (size_t i = 0; i < rounds; i++)
		zr_assert_result(&op[i], r, len, "1 MiB write with RLIMIT_MEMLOCK at 64 KiB");
	long long t0 = zr_now_ms();
	while (sink.len < total && zr_now_ms() - t0 < 5000) {
		zr_sink_drain(&sink);
		zk_wait(fds[0], POLLIN, 5000);
	}
	zr_assert_sink(&sink, data, total, "the peer");
	t0 = zr_now_ms();
	while ((size_t)atomic_load(&rel.calls) < nrefs && zr_now_ms() - t0 < 5000)
		zr_pump_for(r, &sink, 1, 10);
	zbl_ring_free(r);
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	zbl_stats_get(&s);
	print_zc_stats("1 MiB sends as nobody with RLIMIT_MEMLOCK 64 KiB", &s);
	assert_ring_op_counts(uring, &s, rounds);
	if (uring && c.send_zc && s.bytes_sent_zerocopy > 0 && s.fallbacks == 0)
		fail_msg("with RLIMIT_MEMLOCK at 64 KiB, 1 MiB sends went zero-copy "
			 "(bytes_sent_zerocopy %llu) and no fallback was counted: a send that "
			 "could not pin its memory must copy and count it in fallbacks",
			 (unsigned long long)s.bytes_sent_zerocopy);
	if (uring && !c.send_zc)
		printf("# SEND_ZC is not supported here: nothing to fall back from\n");
	zr_sink_free(&sink);
	close(fds[0]);
	close(fds[1]);
	free(data);
}

static void child_memlock_uring(void **state)
{
	(void)state;
	memlock_body(&zr_engine_uring);
}

static void child_memlock_sync(void **state)
{
	(void)state;
	memlock_body(&zr_engine_sync);
}

static void test_as_nobody_with_64k_memlock_1mib_sends_never_fail_and_count_the_fallback(void **state)
{
	const struct zr_engine *e = zr_engine_of(state);
	struct zk_child_opts o = { .uid = NOBODY, .memlock = 64 * 1024, .deadline_ms = 80000 };

	zk_watchdog(__func__, 90);
	if (geteuid() != 0) {
		printf("# skipped: must run as root to switch to uid %d\n", NOBODY);
		skip();
	}
	zr_expect_child(e->flags & ZBL_RING_SYNC ? "memlock_sync" : "memlock_uring", &o);
}

/* ======================================================================== */
/* Ordering                                                                  */
/* ======================================================================== */

/*
 * 10,000 writes of 1..100 bytes (library memory, borrowed memory, both, and
 * ZBL_DRAIN), all queued on one socket before the ring runs: the bytes arrive
 * in submission order (each write's bytes are its own stretch of a random
 * stream, so any reordering or interleaving shows), and the callbacks run in
 * submission order, each once, with its write's length.
 */
static void small_writes_on(zbl_ring_t *r, enum zk_kind k)
{
	enum { N = 10000 };
	struct zr_op *ops = calloc(N, sizeof(*ops));
	size_t *lens = calloc(N, sizeof(*lens)), total = 0, nrefs = 0;
	uint64_t rng = 0xA11CE + (uint64_t)k;
	unsigned char *data;
	struct zr_release rel = { 0 };
	struct zr_sink sink;
	int fds[2], first = zr_cb_count;
	char what[64];

	assert_non_null(ops);
	assert_non_null(lens);
	for (int i = 0; i < N; i++) {
		lens[i] = 1 + zt_rand(&rng) % 100;
		total += lens[i];
	}
	data = malloc(total);
	assert_non_null(data);
	zt_fill_random(data, total, zt_rand(&rng));
	zk_pair(k, fds);
	size_t off = 0;
	for (int i = 0; i < N; i++) {
		zbl_t *bl = zt_new();
		unsigned flags = 0;
		switch (i % 4) {
		case 0:
			assert_rc(zbl_append(bl, data + off, lens[i]), 0);
			break;
		case 1:
			assert_rc(zbl_append_ref(bl, data + off, lens[i], zr_release_cb, &rel), 0);
			nrefs++;
			break;
		case 2:
			assert_rc(zbl_append(bl, data + off, lens[i] / 2), 0);
			assert_rc(zbl_append_ref(bl, data + off + lens[i] / 2, lens[i] - lens[i] / 2,
						 zr_release_cb, &rel), 0);
			nrefs++;
			break;
		default:
			assert_rc(zbl_append(bl, data + off, lens[i]), 0);
			flags = ZBL_DRAIN;
			break;
		}
		long long rc = ZR_CALL(zbl_ring_write(r, bl, fds[1], -1, flags, zr_cb, &ops[i]));
		if (rc != 0)
			fail_msg("queueing small write %d of %d returned %lld (%s)", i, N, rc,
				 zt_errname(rc));
		if (flags & ZBL_DRAIN)
			assert_size_equal(zbl_length(bl), 0);
		zbl_free(bl);
		off += lens[i];
	}
	if (zr_cb_count != first)
		fail_msg("%d callbacks ran while writes were queued", zr_cb_count - first);
	zr_sink_open(&sink, fds[0]);
	snprintf(what, sizeof(what), "10,000 small writes to %s", zk_kind_name[k]);
	zr_pump(r, ops, N, &sink, 1, 30000, what);
	for (int i = 0; i < N; i++) {
		if (ops[i].calls != 1 || ops[i].in_library)
			fail_msg("%s: write %d: callback ran %d times%s", what, i, ops[i].calls,
				 ops[i].in_library ? " (inside a submission)" : "");
		if (ops[i].result != (ssize_t)lens[i])
			fail_msg("%s: write %d of %zu bytes: result %zd (%s)", what, i, lens[i],
				 ops[i].result, zt_errname(ops[i].result));
		if (ops[i].order != first + i + 1)
			fail_msg("%s: write %d's callback ran as number %d, expected %d (callbacks "
				 "out of submission order)", what, i, ops[i].order - first, i + 1);
	}
	long long t0 = zr_now_ms();
	while (sink.len < total && zr_now_ms() - t0 < 5000) {
		zr_sink_drain(&sink);
		if (sink.len < total)
			zk_wait(fds[0], POLLIN, 5000);
	}
	zr_assert_sink(&sink, data, total, what);
	assert_int_equal(zr_inq(fds[0]), 0);
	/* Borrowed pieces go once the kernel is done (at once for a copying send). */
	t0 = zr_now_ms();
	while ((size_t)atomic_load(&rel.calls) < nrefs && zr_now_ms() - t0 < 5000)
		zr_pump_for(r, &sink, 1, 10);
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	zr_sink_free(&sink);
	close(fds[0]);
	close(fds[1]);
	free(data);
	free(lens);
	free(ops);
}

static void test_10000_small_writes_queued_on_one_socket_arrive_and_call_back_in_order(void **state)
{
	zk_begin(60);
	zbl_ring_t *r = zr_open(state);
	struct zbl_stats s;

	small_writes_on(r, ZK_TCP);
	small_writes_on(r, ZK_UNIX);
	zbl_ring_free(r);
	zbl_stats_get(&s);
	assert_size_equal(s.ring_ops, 20000);
}

/*
 * Request/response on one socket: a read is queued first and waits for the
 * response, then the request is written on the same socket. The write must
 * not wait behind the read (a deadlock otherwise: the peer answers only the
 * request it received). 20 rounds, reads alternating between zbl_ring_read
 * and zbl_ring_splice_from, on TCP and AF_UNIX.
 */
static void request_response_on(zbl_ring_t *r, enum zk_kind k)
{
	int fds[2];
	uint64_t rng = 0xBEEF + (uint64_t)k;
	unsigned char req[8192], resp[4096], got[8192];

	zk_pair(k, fds); /* fds[1]: the ring's socket; fds[0]: the peer, driven here */
	for (int round = 0; round < 20; round++) {
		size_t qlen = 1 + zt_rand(&rng) % sizeof(req), plen = 1 + zt_rand(&rng) % sizeof(resp);
		struct zr_op rd = { 0 }, wr = { 0 };
		zbl_t *in = zt_new(), *out = zt_new();

		zt_fill_random(req, qlen, zt_rand(&rng));
		zt_fill_random(resp, plen, zt_rand(&rng));
		assert_rc(zbl_append(out, req, qlen), 0);
		if (round % 2)
			assert_rc(ZR_CALL(zbl_ring_splice_from(r, in, fds[1], -1, sizeof(resp), 0,
							       zr_cb, &rd)), 0);
		else
			assert_rc(ZR_CALL(zbl_ring_read(r, in, fds[1], -1, sizeof(resp), 0, zr_cb,
							&rd)), 0);
		assert_rc(ZR_CALL(zbl_ring_write(r, out, fds[1], -1, 0, zr_cb, &wr)), 0);
		zbl_free(out);
		long long end = zr_now_ms() + 5000;
		while (!wr.calls) {
			zr_run_checked(r, 1, 20);
			if (zr_now_ms() > end)
				fail_msg("round %d on %s: the request was not written within 5 s while a "
					 "read waited on the same socket (the write is held up by the "
					 "read)", round, zk_kind_name[k]);
		}
		zr_assert_result(&wr, r, qlen, "request");
		if (rd.calls)
			fail_msg("round %d: the read completed (%zd) before any response was sent",
				 round, rd.result);
		zt_read_full(fds[0], got, qlen);
		zk_assert_bytes(got, req, qlen);
		zt_write_full(fds[0], resp, plen);
		zr_pump(r, &rd, 1, NULL, 0, 5000, "response");
		zr_assert_once(&rd, r, "response read");
		/* One receive takes what has arrived: all of it, or its first part. */
		if (rd.result <= 0 || (size_t)rd.result > plen)
			fail_msg("round %d: the response read returned %zd (%s), %zu were sent", round,
				 rd.result, zt_errname(rd.result), plen);
		size_t have = (size_t)rd.result;
		while (have < plen) {
			/* The rest, should it have come in pieces. */
			struct zr_op more = { 0 };
			assert_rc(ZR_CALL(zbl_ring_read(r, in, fds[1], -1, plen - have, 0, zr_cb,
							&more)), 0);
			zr_pump(r, &more, 1, NULL, 0, 5000, "rest of the response");
			if (more.result <= 0)
				fail_msg("round %d: reading the rest of the response: %zd (%s)", round,
					 more.result, zt_errname(more.result));
			have += (size_t)more.result;
		}
		assert_list_bytes(in, resp, plen);
		zbl_free(in);
	}
	close(fds[0]);
	close(fds[1]);
}

static void test_a_read_waiting_does_not_hold_up_a_write_on_the_same_socket(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);

	request_response_on(r, ZK_TCP);
	request_response_on(r, ZK_UNIX);
	zbl_ring_free(r);
}

/*
 * Writes and fsyncs on one file run in submission order: overlapping writes
 * queued together leave the last one's bytes, an fsync's callback comes after
 * those of every write queued before it on the file, and a write queued after
 * an fsync still lands. Lists of memory, file ranges and pipe pages.
 */
static void test_writes_and_fsyncs_on_one_file_run_in_submission_order(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);
	enum { W = 8 };
	struct zr_op w[W] = { { 0 } }, sync1 = { 0 }, sync2 = { 0 }, last = { 0 };
	int f = zt_temp_fd(0);
	uint64_t rng = 77;
	struct zr_release rel = { 0 };
	size_t nrefs = 0;
	unsigned char *want = calloc(1, 512 * 1024), *d[W + 1];
	size_t want_len = 0;

	assert_non_null(want);
	for (int i = 0; i <= W; i++) {
		size_t n = 1 + zt_rand(&rng) % 100000;
		int64_t off = i == W ? 300000 : (int64_t)(zt_rand(&rng) % 150000);
		d[i] = malloc(n);
		assert_non_null(d[i]);
		zt_fill_random(d[i], n, zt_rand(&rng));
		zbl_t *bl = zr_mixed_list(d[i], n, &rng, ZR_ALL, 20000, &rel, &nrefs);
		memcpy(want + off, d[i], n);
		if ((size_t)off + n > want_len)
			want_len = (size_t)off + n;
		if (i < W) {
			assert_rc(ZR_CALL(zbl_ring_write(r, bl, f, off, i % 3 == 2 ? ZBL_DRAIN : 0,
							 zr_cb, &w[i])), 0);
			w[i].want = n;
		} else {
			assert_rc(ZR_CALL(zbl_ring_write(r, bl, f, off, 0, zr_cb, &last)), 0);
			last.want = n;
		}
		zbl_free(bl);
		if (i == W - 1)
			assert_rc(ZR_CALL(zbl_ring_fsync(r, f, ZBL_DATASYNC, zr_cb, &sync1)), 0);
	}
	assert_rc(ZR_CALL(zbl_ring_fsync(r, f, 0, zr_cb, &sync2)), 0);
	struct zr_op *all[W + 3];
	for (int i = 0; i < W; i++)
		all[i] = &w[i];
	all[W] = &sync1;
	all[W + 1] = &last;
	all[W + 2] = &sync2;
	long long end = zr_now_ms() + 20000;
	for (int i = 0; i < W + 3; i++)
		while (!all[i]->calls) {
			zr_run_checked(r, 1, 20);
			if (zr_now_ms() > end)
				fail_msg("operation %d of %d on the file did not complete", i, W + 3);
		}
	for (int i = 0; i < W; i++)
		zr_assert_result(&w[i], r, w[i].want, "write to a file");
	zr_assert_result(&last, r, last.want, "write after an fsync");
	zr_assert_result(&sync1, r, 0, "fdatasync");
	zr_assert_result(&sync2, r, 0, "fsync");
	for (int i = 0; i < W; i++)
		if (w[i].order > sync1.order)
			fail_msg("write %d's callback (number %d) ran after the fsync queued behind it "
				 "(number %d)", i, w[i].order, sync1.order);
	if (last.order > sync2.order)
		fail_msg("the last write's callback ran after the fsync queued behind it");
	assert_file_bytes(f, want, want_len);
	zbl_ring_free(r);
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	close(f);
	for (int i = 0; i <= W; i++)
		free(d[i]);
	free(want);
}

/* ======================================================================== */
/* zbl_ring_run never waits on a descriptor that is not ready                */
/* ======================================================================== */

/*
 * Runs @fn(@flags) in a forked child and fails unless it exits 0 within
 * @ms: a zbl_ring_run that blocks would otherwise hang the whole program.
 * The child reports a wrong result through its exit status.
 */
static void zr_bounded_child(int (*fn)(unsigned flags), unsigned flags, int ms, const char *what)
{
	pid_t pid;
	int st = 0;

	if (getenv("ZBL_VALGRIND"))
		ms *= 20;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(0);
		_exit(fn(flags));
	}
	long long end = zr_now_ms() + ms;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (zr_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("%s: still inside the ring after %d ms (zbl_ring_run waited on a "
				 "descriptor that was not ready, or spun)", what, ms);
		}
		usleep(2000);
	}
	if (WIFSIGNALED(st))
		fail_msg("%s: the child was killed by signal %d", what, WTERMSIG(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("%s: the child found a wrong result (status %d, see its output)", what,
			 WEXITSTATUS(st));
}

static void slots_cb(zbl_ring_t *r, ssize_t res, void *a)
{
	(void)r;
	*(ssize_t *)a = res;
}

/*
 * A pipe's capacity is counted in slots, not bytes: 15 of its 16 slots hold a
 * byte each (spliced file pages do not merge), and the list to write is 3
 * bytes of memory (which take the last slot) then 100 bytes of a file range.
 * zbl_ring_run(ring, 0, 0) must come back at once, and the write finish once
 * the pipe is read.
 */
static int pipe_slots_child(unsigned flags)
{
	char buf[4096];
	int f = zt_temp_fd(0), p[2];
	ssize_t res = 1234;

	memset(buf, 'f', sizeof(buf));
	if (pwrite(f, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || pipe2(p, O_CLOEXEC) < 0)
		return 10;
	for (int i = 0; i < 15; i++) {
		loff_t o = i;
		if (splice(f, &o, p[1], NULL, 1, 0) != 1)
			return 11;
	}
	zbl_t *bl = zbl_new();
	zbl_append(bl, "abc", 3);
	zbl_append_file(bl, f, 0, 100);
	zbl_ring_t *r = zbl_ring_new(0, flags);
	if (!r || zbl_ring_write(r, bl, p[1], -1, 0, slots_cb, &res) != 0)
		return 12;
	int n = zbl_ring_run(r, 0, 0);
	printf("# %s ring: zbl_ring_run(ring, 0, 0) with the pipe's slots spent returned %d\n",
	       zbl_ring_backend(r), n);
	fflush(stdout);
	/* The reader comes: 15 + 3 + 100 bytes. */
	size_t got = 0;
	zk_set_nonblock(p[0], true);
	for (int i = 0; i < 2000 && (res == 1234 || got < 118); i++) {
		ssize_t k = read(p[0], buf, sizeof(buf));
		if (k > 0)
			got += (size_t)k;
		zbl_ring_run(r, 0, 0);
		usleep(1000);
	}
	zbl_ring_free(r);
	zbl_free(bl);
	if (res != 103 || got != 118) {
		printf("# write result %zd (expected 103), %zu bytes read (expected 118)\n", res, got);
		return 1;
	}
	return 0;
}

static void test_run_does_not_block_when_a_pipe_runs_out_of_slots_mid_list(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state); /* checks the engine, or skips */
	unsigned flags = zr_engine_of(state)->flags;

	zbl_ring_free(r);
	zr_bounded_child(pipe_slots_child, flags, 5000, "a write to a pipe whose slots run out");
}

/*
 * The peer of an AF_UNIX socket has shut down its writing side (so the
 * socket polls POLLRDHUP for good), and a file range larger than the socket
 * buffer is written to it while the peer does not read: the write waits for
 * room, and zbl_ring_run(ring, 0, 0) must come back. Once the peer reads,
 * the write completes.
 */
static int half_closed_child(unsigned flags)
{
	size_t len = ZK_MiB;
	unsigned char *buf = malloc(len);
	int sv[2];
	ssize_t res = 1234;

	if (!buf || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 10;
	memset(buf, 'h', len);
	int f = zt_temp_fd(0);
	if (pwrite(f, buf, len, 0) != (ssize_t)len)
		return 11;
	shutdown(sv[1], SHUT_WR);
	zbl_t *bl = zbl_new();
	zbl_append_file(bl, f, 0, len);
	close(f);
	zbl_ring_t *r = zbl_ring_new(0, flags);
	if (!r || zbl_ring_write(r, bl, sv[0], -1, 0, slots_cb, &res) != 0)
		return 12;
	for (int i = 0; i < 3; i++) {
		int n = zbl_ring_run(r, 0, 0);
		printf("# %s ring: zbl_ring_run(ring, 0, 0) on a half-closed socket returned %d\n",
		       zbl_ring_backend(r), n);
		fflush(stdout);
	}
	size_t got = 0;
	zk_set_nonblock(sv[1], true);
	for (int i = 0; i < 3000 && (res == 1234 || got < len); i++) {
		ssize_t k = read(sv[1], buf, len);
		if (k > 0)
			got += (size_t)k;
		zbl_ring_run(r, 0, 0);
		usleep(500);
	}
	zbl_ring_free(r);
	zbl_free(bl);
	free(buf);
	if (res != (ssize_t)len || got != len) {
		printf("# write result %zd, %zu bytes read, expected %zu\n", res, got, len);
		return 1;
	}
	return 0;
}

static void test_run_does_not_spin_on_a_socket_whose_peer_shut_down_writing(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);
	unsigned flags = zr_engine_of(state)->flags;

	zbl_ring_free(r);
	zr_bounded_child(half_closed_child, flags, 5000,
			 "kernel pages to a socket whose peer shut down writing");
}

/* ======================================================================== */
/* Failures, cancel, free                                                    */
/* ======================================================================== */

static bool sigpipe_pending(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigpending(&s);
	return sigismember(&s, SIGPIPE);
}

struct sink_has {
	struct zr_sink *sink;
	size_t n;
};

static bool sink_has_fn(void *arg)
{
	struct sink_has *h = arg;

	return h->sink->len >= h->n;
}

/*
 * 8 MiB (memory, borrowed memory, pipe pages, a file range) written to a
 * peer that reads 64 KiB and closes: the write's callback gets -EPIPE or
 * -ECONNRESET. SIGPIPE stays at its default disposition here, so a signal
 * raised by the engine would kill the test; none may be left pending either.
 * Afterwards no descriptor, pipe or borrowed piece is left.
 */
static void peer_gone_on(void **state, enum zk_kind k)
{
	int fds_before = zk_fd_count();
	zbl_pool_flush();
	uint64_t pipes_before = zk_stats().pipes_live;
	zbl_ring_t *r = zr_open(state);
	size_t len = 8 * ZK_MiB;
	unsigned char *data = zk_pat_alloc(len, 41);
	struct zr_release rel = { 0 };
	size_t nrefs = 0;
	struct zr_op op = { 0 };
	struct zr_sink sink;
	int fds[2];
	zbl_t *bl = zt_new();
	char what[64];

	snprintf(what, sizeof(what), "8 MiB to a %s peer that leaves", zk_kind_name[k]);
	assert_rc(zbl_append(bl, data, 2 * ZK_MiB), 0);
	assert_rc(zbl_append_ref(bl, data + 2 * ZK_MiB, 2 * ZK_MiB, zr_release_cb, &rel), 0);
	nrefs++;
	zr_append_pipe_pages(bl, data + 4 * ZK_MiB, ZK_MiB);
	int f = zt_temp_file(data + 5 * ZK_MiB, 3 * ZK_MiB);
	assert_rc(zbl_append_file(bl, f, 0, 3 * ZK_MiB), 0);
	close(f);
	zk_pair(k, fds);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, fds[1], -1, 0, zr_cb, &op)), 0);
	zbl_free(bl);

	zr_sink_open(&sink, fds[0]);
	sink.max = 64 * ZK_KiB;
	struct sink_has h = { &sink, sink.max };
	zr_pump_until(r, sink_has_fn, &h, &sink, 1, 10000, what);
	zk_assert_bytes(sink.buf, data, sink.len);
	if (op.calls)
		fail_msg("%s: the write completed (%zd) with 64 KiB read", what, op.result);
	zk_close(&fds[0]); /* the reader leaves, with bytes unread: TCP resets */
	zr_pump(r, &op, 1, NULL, 0, 10000, what);
	zr_assert_once(&op, r, what);
	if (op.result != -EPIPE && op.result != -ECONNRESET)
		fail_msg("%s: the write's result is %zd (%s), expected -EPIPE or -ECONNRESET",
			 what, op.result, zt_errname(op.result));
	if (sigpipe_pending())
		fail_msg("%s: SIGPIPE is left pending", what);
	/* Borrowed memory goes back, from the ring, once the kernel lets go. */
	long long t0 = zr_now_ms();
	while ((size_t)atomic_load(&rel.calls) < nrefs && zr_now_ms() - t0 < 5000)
		zr_pump_for(r, NULL, 0, 10);
	zbl_ring_free(r);
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	assert_false(atomic_load(&rel.in_library));
	close(fds[1]);
	zr_sink_free(&sink);
	free(data);
	zbl_pool_flush();
	assert_size_equal(zk_stats().pipes_live, pipes_before);
	int fds_after = zk_fd_count();
	if (fds_after != fds_before)
		fail_msg("%s: %d descriptors open after, %d before", what, fds_after, fds_before);
}

static void test_a_peer_gone_mid_transfer_gives_epipe_without_sigpipe_or_leaks(void **state)
{
	zk_begin(60);
	peer_gone_on(state, ZK_TCP);
	peer_gone_on(state, ZK_UNIX);
	peer_gone_on(state, ZK_PIPE);
}

/*
 * On one TCP socket whose peer neither reads nor writes: a read waiting for
 * data, a 4 MiB write that cannot finish (the buffers are small), and five
 * writes queued behind it. zbl_ring_cancel on the socket: no callback runs
 * inside it; then each runs once, from zbl_ring_run, with -ECANCELED, and
 * the count returned is how many did. Borrowed memory comes back (after the
 * peer goes, for bytes a zero-copy send left in the socket), and the peer
 * got nothing of the queued writes.
 */
static void test_cancel_a_waiting_read_and_writes_queued_behind_a_blocked_write(void **state)
{
	zk_begin(30);
	int fds_before = zk_fd_count();
	zbl_ring_t *r = zr_open(state);
	enum { N = 7 };
	struct zr_op op[N] = { { 0 } };
	struct zr_release rel = { 0 };
	size_t nrefs = 0, big = 4 * ZK_MiB;
	unsigned char *data = zk_pat_alloc(big, 51);
	int fds[2];
	zbl_t *in = zt_new();

	zr_tcp_pair(fds, true); /* fds[1] the ring's socket, fds[0] the silent peer */
	assert_rc(ZR_CALL(zbl_ring_read(r, in, fds[1], -1, 4096, 0, zr_cb, &op[0])), 0);
	for (int i = 1; i < N; i++) {
		zbl_t *bl = zt_new();
		size_t n = i == 1 ? big : 1000 * (size_t)i;
		assert_rc(zbl_append_ref(bl, data, n, zr_release_cb, &rel), 0);
		nrefs++;
		assert_rc(ZR_CALL(zbl_ring_write(r, bl, fds[1], -1, i == 3 ? ZBL_DRAIN : 0, zr_cb,
						 &op[i])), 0);
		zbl_free(bl);
	}
	zr_pump_for(r, NULL, 0, 200);
	for (int i = 0; i < N; i++)
		if (op[i].calls)
			fail_msg("operation %d completed (%zd) before the cancel; it cannot", i,
				 op[i].result);
	int before = zr_cb_count;
	long long n = ZR_CALL(zbl_ring_cancel(r, fds[1]));
	if (zr_cb_count != before)
		fail_msg("%d callbacks ran inside zbl_ring_cancel", zr_cb_count - before);
	if (atomic_load(&rel.in_library))
		fail_msg("a release callback ran inside zbl_ring_cancel");
	zr_pump(r, op, N, NULL, 0, 10000, "cancelled operations");
	int cancelled = 0;
	for (int i = 0; i < N; i++) {
		zr_assert_once(&op[i], r, "cancelled operation");
		if (op[i].result != -ECANCELED)
			fail_msg("operation %d: result %zd (%s) after zbl_ring_cancel, expected "
				 "-ECANCELED (it could not have completed)", i, op[i].result,
				 zt_errname(op[i].result));
		cancelled++;
	}
	if (n != cancelled)
		fail_msg("zbl_ring_cancel returned %lld, but %d operations were cancelled", n,
			 cancelled);
	/* Nothing more runs, and the list that was being read into is the caller's again. */
	assert_rc(zr_run_checked(r, 1, 50), 0);
	assert_size_equal(zbl_length(in), 0);
	/* The peer goes: bytes a zero-copy send left in the socket are let go. */
	close(fds[0]);
	long long t0 = zr_now_ms();
	while ((size_t)atomic_load(&rel.calls) < nrefs && zr_now_ms() - t0 < 5000)
		zr_pump_for(r, NULL, 0, 10);
	if ((size_t)atomic_load(&rel.calls) != nrefs)
		fail_msg("%d of %zu borrowed pieces released 5 s after cancel and the peer's close",
			 atomic_load(&rel.calls), nrefs);
	zbl_ring_free(r);
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	close(fds[1]);
	zbl_free(in);
	free(data);
	zbl_pool_flush();
	assert_int_equal(zk_fd_count(), fds_before);
}

/*
 * zbl_ring_cancel before the ring ever ran: every operation on the
 * descriptor is cancelled or, for an engine that started it at once, has
 * completed; the pipe holds exactly the completed ones' bytes, in order.
 * Operations on another descriptor are not touched.
 */
static void test_cancel_before_the_ring_ran_leaves_other_descriptors_alone(void **state)
{
	zk_begin(20);
	zbl_ring_t *r = zr_open(state);
	int p[2], q[2];
	struct zr_op op[4] = { { 0 } }, other = { 0 };
	const char *const parts[4] = { "one,", "two,", "three,", "four" };
	zbl_t *in = zt_new();

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(q, O_CLOEXEC), 0);
	for (int i = 0; i < 3; i++) {
		zbl_t *bl = ZT_LIST(parts[i]);
		assert_rc(ZR_CALL(zbl_ring_write(r, bl, p[1], -1, 0, zr_cb, &op[i])), 0);
		zbl_free(bl);
	}
	assert_rc(ZR_CALL(zbl_ring_read(r, in, p[0], -1, 100, 0, zr_cb, &op[3])), 0);
	zbl_t *o = ZT_LIST(parts[3]);
	assert_rc(ZR_CALL(zbl_ring_write(r, o, q[1], -1, 0, zr_cb, &other)), 0);
	zbl_free(o);
	long long n1 = ZR_CALL(zbl_ring_cancel(r, p[1]));
	long long n0 = ZR_CALL(zbl_ring_cancel(r, p[0]));
	for (int i = 0; i < 4; i++)
		if (op[i].calls)
			fail_msg("operation %d's callback ran inside a submission or zbl_ring_cancel",
				 i);
	zr_pump(r, op, 4, NULL, 0, 5000, "cancelled before running");
	zr_pump(r, &other, 1, NULL, 0, 5000, "write to another pipe");
	zr_assert_result(&other, r, 4, "write to a descriptor that was not cancelled");
	char buf[64] = { 0 };
	zt_read_full(q[0], buf, 4);
	assert_string_equal(buf, "four");

	size_t written = 0;
	int cancelled_w = 0;
	bool gap = false;
	char want[64] = { 0 };
	for (int i = 0; i < 3; i++) {
		zr_assert_once(&op[i], r, "write cancelled before the ring ran");
		if (op[i].result == -ECANCELED) {
			cancelled_w++;
			gap = true;
		} else if (op[i].result == (ssize_t)strlen(parts[i]) && !gap) {
			strcat(want, parts[i]);
			written += strlen(parts[i]);
		} else {
			fail_msg("write %d: result %zd (%s): neither -ECANCELED nor all of it in order",
				 i, op[i].result, zt_errname(op[i].result));
		}
	}
	zr_assert_once(&op[3], r, "read cancelled before the ring ran");
	/* The read may have taken written bytes before its cancel: only with a result. */
	size_t taken = 0;
	if (op[3].result == -ECANCELED) {
		assert_size_equal(zbl_length(in), 0);
	} else if (op[3].result > 0) {
		taken = (size_t)op[3].result;
		assert_list_bytes(in, want, taken);
	} else {
		fail_msg("read: result %zd (%s) after zbl_ring_cancel", op[3].result,
			 zt_errname(op[3].result));
	}
	assert_int_equal(n1, cancelled_w);
	assert_int_equal(n0, op[3].result == -ECANCELED ? 1 : 0);
	assert_int_equal(zr_inq(p[0]), (int)(written - taken));
	if (written > taken) {
		zt_read_full(p[0], buf, written - taken);
		assert_memory_equal(buf, want + taken, written - taken);
	}
	zbl_ring_free(r);
	zbl_free(in);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* Closes a descriptor after a delay: the peer of a socket that zbl_ring_free waits on. */
struct closer {
	pthread_t th;
	int fd;
	unsigned delay_ms;
};

static void *closer_main(void *arg)
{
	struct closer *c = arg;

	zk_thread_block_sigpipe();
	usleep(c->delay_ms * 1000);
	close(c->fd);
	return NULL;
}

/*
 * zbl_ring_free with operations in flight: a read waiting on an AF_UNIX
 * socket, writes blocked on it and on a pipe nobody reads, 4 MiB of borrowed
 * memory blocked on a TCP socket whose peer leaves 300 ms later (a zero-copy
 * send's pages are let go only then), and a file write with an fsync behind
 * it. zbl_ring_free returns, every callback has run exactly once (the
 * blocked ones with -ECANCELED; the TCP write may see the reset first; the
 * file write and fsync may complete), every borrowed piece is released
 * once, and no descriptor or pipe is left.
 */
static void test_free_with_operations_in_flight_runs_every_callback_once(void **state)
{
	zk_begin(30);
	int fds_before = zk_fd_count();
	zbl_pool_flush();
	uint64_t pipes_before = zk_stats().pipes_live;
	zbl_ring_t *r = zr_open(state);
	enum { READ, UNIX_W, PIPE_W, TCP_W, FILE_W, FSYNC, N };
	struct zr_op op[N] = { { 0 } };
	struct zr_release rel = { 0 };
	size_t nrefs = 0, big = 4 * ZK_MiB;
	unsigned char *data = zk_pat_alloc(big, 61);
	int sv[2], p[2], t[2], f = zt_temp_fd(0);
	struct closer cl;
	zbl_t *in = zt_new(), *bl;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	zr_tcp_pair(t, true);
	assert_rc(ZR_CALL(zbl_ring_read(r, in, sv[0], -1, 4096, 0, zr_cb, &op[READ])), 0);
	bl = zt_new();
	assert_rc(zbl_append(bl, data, big), 0);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, sv[0], -1, 0, zr_cb, &op[UNIX_W])), 0);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, p[1], -1, ZBL_DRAIN, zr_cb, &op[PIPE_W])), 0);
	zbl_free(bl);
	bl = zt_new();
	assert_rc(zbl_append_ref(bl, data, big, zr_release_cb, &rel), 0);
	nrefs++;
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, t[1], -1, 0, zr_cb, &op[TCP_W])), 0);
	assert_rc(ZR_CALL(zbl_ring_write(r, bl, f, 4096, 0, zr_cb, &op[FILE_W])), 0);
	zbl_free(bl);
	assert_rc(ZR_CALL(zbl_ring_fsync(r, f, 0, zr_cb, &op[FSYNC])), 0);
	zr_pump_for(r, NULL, 0, 100);
	for (int i = READ; i <= TCP_W; i++)
		if (op[i].calls)
			fail_msg("operation %d completed (%zd) before zbl_ring_free; it cannot", i,
				 op[i].result);
	cl.fd = t[0];
	cl.delay_ms = 300;
	assert_int_equal(pthread_create(&cl.th, NULL, closer_main, &cl), 0);
	zbl_ring_free(r);
	pthread_join(cl.th, NULL);
	for (int i = 0; i < N; i++) {
		char what[32];
		snprintf(what, sizeof(what), "operation %d", i);
		zr_assert_once(&op[i], r, what);
	}
	for (int i = READ; i <= PIPE_W; i++)
		if (op[i].result != -ECANCELED)
			fail_msg("operation %d: result %zd (%s) from zbl_ring_free, expected -ECANCELED",
				 i, op[i].result, zt_errname(op[i].result));
	if (op[TCP_W].result != -ECANCELED && op[TCP_W].result != -ECONNRESET &&
	    op[TCP_W].result != -EPIPE)
		fail_msg("TCP write: result %zd (%s) from zbl_ring_free", op[TCP_W].result,
			 zt_errname(op[TCP_W].result));
	if (op[FILE_W].result != -ECANCELED && op[FILE_W].result != (ssize_t)big)
		fail_msg("file write: result %zd (%s)", op[FILE_W].result,
			 zt_errname(op[FILE_W].result));
	if (op[FSYNC].result != -ECANCELED && op[FSYNC].result != 0)
		fail_msg("fsync: result %zd (%s)", op[FSYNC].result, zt_errname(op[FSYNC].result));
	if (op[FSYNC].result == 0 && op[FILE_W].result != (ssize_t)big)
		fail_msg("the fsync succeeded although the write before it did not complete");
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	assert_size_equal(zbl_length(in), 0);
	zbl_free(in);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	close(t[1]);
	close(f);
	free(data);
	zbl_pool_flush();
	assert_size_equal(zk_stats().pipes_live, pipes_before);
	assert_int_equal(zk_fd_count(), fds_before);
}

/* ======================================================================== */
/* io_uring refused by seccomp                                               */
/* ======================================================================== */

/*
 * In a child whose seccomp filter answers io_uring_setup with EPERM, as
 * Docker's and Kubernetes' default profiles do: zbl_caps says io_uring is
 * not available and why, zbl_ring_new(0, 0) gives a "sync" ring, and the
 * ring tests pass on it (flags 0 and ZBL_RING_SYNC alike).
 */
static void child_seccomp(void **state)
{
	(void)state;
	zk_begin(60);
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	errno = 0;
	long fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd >= 0 || errno != EPERM)
		fail_msg("the seccomp filter is not in place: io_uring_setup returned %ld (%s)", fd,
			 strerror(errno));
	struct zbl_caps c = zr_caps();
	printf("# under seccomp: io_uring %d, io_uring_why_not \"%s\", send_zc %d\n", c.io_uring,
	       c.io_uring_why_not ? c.io_uring_why_not : "(null)", c.send_zc);
	assert_false(c.io_uring);
	assert_false(c.send_zc);
	if (!c.io_uring_why_not || (!strcasestr(c.io_uring_why_not, "EPERM") &&
				    !strcasestr(c.io_uring_why_not, "refused") &&
				    !strcasestr(c.io_uring_why_not, "not permitted")))
		fail_msg("zbl_caps' io_uring_why_not (\"%s\") does not say io_uring_setup was "
			 "refused (EPERM)", c.io_uring_why_not ? c.io_uring_why_not : "(null)");
	zbl_ring_t *r = zbl_ring_new(0, 0);
	assert_non_null(r);
	assert_string_equal(zbl_ring_backend(r), "sync");
	zbl_ring_free(r);

	/* The suite, on the ring the library chooses by itself. */
	void *st = (void *)&zr_engine_default;
	df_run(&zr_engine_default, 32);
	test_bad_arguments_are_refused_and_queue_nothing(&st);
	test_ring_fd_polls_readable_when_a_callback_is_ready(&st);
	test_callbacks_may_queue_more_and_run_from_a_callback_is_ebusy(&st);
	test_borrowed_memory_is_released_only_after_the_peer_read_it(&st);
	test_10000_small_writes_queued_on_one_socket_arrive_and_call_back_in_order(&st);
	test_a_read_waiting_does_not_hold_up_a_write_on_the_same_socket(&st);
	test_writes_and_fsyncs_on_one_file_run_in_submission_order(&st);
	test_run_does_not_block_when_a_pipe_runs_out_of_slots_mid_list(&st);
	test_run_does_not_spin_on_a_socket_whose_peer_shut_down_writing(&st);
	test_a_peer_gone_mid_transfer_gives_epipe_without_sigpipe_or_leaks(&st);
	test_cancel_a_waiting_read_and_writes_queued_behind_a_blocked_write(&st);
	test_cancel_before_the_ring_ran_leaves_other_descriptors_alone(&st);
	test_free_with_operations_in_flight_runs_every_callback_once(&st);
}

static void test_under_a_seccomp_filter_refusing_io_uring_the_ring_is_sync_and_passes(void **state)
{
	(void)state;
	struct zk_child_opts o = { .uid = (uid_t)-1, .deny_io_uring = true, .deadline_ms = 150000 };

	zk_watchdog(__func__, 180);
	if (!zs_supported()) {
		printf("# skipped: no seccomp filter for this architecture in seccomp_util.h\n");
		skip();
	}
	zr_expect_child("seccomp", &o);
}

/* ======================================================================== */

static const struct zk_child children[] = {
	{ "differential", child_differential },
	{ "memlock_uring", child_memlock_uring },
	{ "memlock_sync", child_memlock_sync },
	{ "seccomp", child_seccomp },
};

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_report_io_uring_as_the_kernel_answers),
		ZR_TESTS(test_bad_arguments_are_refused_and_queue_nothing),
		ZR_TESTS(test_ring_fd_polls_readable_when_a_callback_is_ready),
		ZR_TESTS(test_callbacks_may_queue_more_and_run_from_a_callback_is_ebusy),
		cmocka_unit_test(test_differential_io_uring_sync_ring_and_sync_functions_agree),
		ZR_TESTS(test_borrowed_memory_is_released_only_after_the_peer_read_it),
		ZR_TESTS(test_as_nobody_with_64k_memlock_1mib_sends_never_fail_and_count_the_fallback),
		cmocka_unit_test(test_under_a_seccomp_filter_refusing_io_uring_the_ring_is_sync_and_passes),
		ZR_TESTS(test_10000_small_writes_queued_on_one_socket_arrive_and_call_back_in_order),
		ZR_TESTS(test_a_read_waiting_does_not_hold_up_a_write_on_the_same_socket),
		ZR_TESTS(test_writes_and_fsyncs_on_one_file_run_in_submission_order),
		ZR_TESTS(test_run_does_not_block_when_a_pipe_runs_out_of_slots_mid_list),
		ZR_TESTS(test_run_does_not_spin_on_a_socket_whose_peer_shut_down_writing),
		ZR_TESTS(test_a_peer_gone_mid_transfer_gives_epipe_without_sigpipe_or_leaks),
		ZR_TESTS(test_cancel_a_waiting_read_and_writes_queued_behind_a_blocked_write),
		ZR_TESTS(test_cancel_before_the_ring_ran_leaves_other_descriptors_alone),
		ZR_TESTS(test_free_with_operations_in_flight_runs_every_callback_once),
	};

	zk_child_dispatch(argc, argv, children, sizeof(children) / sizeof(children[0]));
	/* A SIGPIPE that escapes the library kills this program: never ignored here. */
	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
