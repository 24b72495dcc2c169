/* SPDX-License-Identifier: MIT */
/*
 * Randomized differential test: random sequences of operations run on a few
 * lists and, in parallel, on flat byte arrays that model them. After every
 * step each list's length and bytes are compared with its model (lists that
 * still hold unread kernel pages are checked by writing them to a scratch
 * file, so the check does not itself materialize them).
 *
 * Operations: append, append_zero, append_ref, append_file, splice_from,
 * append_list, claim_append, substr_of, splice (with and without claim_by),
 * copy_out, iterators, c_str, rebuild, rebuild_aligned, crc32c (against ISA-L
 * on the model), cmp and contents_equal (against memcmp order), write_fd,
 * splice_to with ZBL_DRAIN, clear, and out-of-range calls that must fail and
 * change nothing.
 *
 * Environment: ZBL_SEED (default 0x5EED), ZBL_ITERS (sequences, default
 * 4000), ZBL_SEQ (run only that sequence, to reproduce a failure).
 */
#include "zbl_test.h"

#include <signal.h>

#define NLISTS 4
#define STEPS 40
#define LIST_MAX (96 * 1024)
#define FILE_LEN (256 * 1024)
#define LOG_LINES STEPS
#define LOG_WIDTH 160

struct model {
	unsigned char *b;
	size_t len, cap;
};

static zbl_t *L[NLISTS];
static struct model M[NLISTS];
static unsigned char *file_data;
static int file_fd = -1;
static int scratch_fd = -1;
static atomic_int refs_live;

static unsigned long long seed;
static int cur_seq, cur_step;
static char oplog[LOG_LINES][LOG_WIDTH];
static int oplog_n;

static void logop(const char *fmt, ...)
{
	va_list ap;

	if (oplog_n >= LOG_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(oplog[oplog_n++], LOG_WIDTH, fmt, ap);
	va_end(ap);
}

/* Reports a mismatch with everything needed to reproduce it, then fails. */
#define DFAIL(...) do {                                                       \
	char dmsg_[512];                                                      \
	snprintf(dmsg_, sizeof(dmsg_), __VA_ARGS__);                          \
	dfail(dmsg_, __LINE__);                                               \
} while (0)

static void dfail(const char *msg, int line)
{
	print_error("differential test failed at line %d: %s\n", line, msg);
	print_error("reproduce with: ZBL_SEED=%llu ZBL_SEQ=%d (step %d)\n", seed, cur_seq,
		    cur_step);
	print_error("operations of this sequence:\n");
	for (int i = 0; i < oplog_n; i++)
		print_error("  %2d: %s\n", i, oplog[i]);
	fail_msg("ZBL_SEED=%llu ZBL_SEQ=%d step %d: %s", seed, cur_seq, cur_step, msg);
}

#define DCHECK_RC(expr, want) do {                                            \
	long long dr_ = (long long)(expr), dw_ = (long long)(want);           \
	if (dr_ != dw_)                                                       \
		DFAIL("%s returned %lld (%s), expected %lld (%s)", #expr, dr_, \
		      zt_errname(dr_), dw_, zt_errname(dw_));                 \
} while (0)

#define DCHECK(cond, ...) do {                                                \
	if (!(cond))                                                          \
		DFAIL(__VA_ARGS__);                                           \
} while (0)

/* ---- models ------------------------------------------------------------- */

static void model_reserve(struct model *m, size_t n)
{
	if (m->cap >= n)
		return;
	m->cap = n * 2 + 64;
	m->b = realloc(m->b, m->cap);
	assert_non_null(m->b);
}

static void model_append(struct model *m, const void *p, size_t n)
{
	const unsigned char *src = p;

	/* The source may be the model itself (a list appended to itself). */
	uintptr_t s0 = (uintptr_t)src, b0 = (uintptr_t)m->b;
	bool inside = m->b && s0 >= b0 && s0 < b0 + m->cap;
	size_t at = inside ? (size_t)(s0 - b0) : 0;

	model_reserve(m, m->len + n);
	if (inside)
		src = m->b + at;
	if (n)
		memmove(m->b + m->len, src, n);
	m->len += n;
}

static void model_erase(struct model *m, size_t off, size_t n)
{
	memmove(m->b + off, m->b + off + n, m->len - off - n);
	m->len -= n;
}

static void model_set(struct model *m, const void *p, size_t n)
{
	unsigned char *tmp = malloc(n ? n : 1);

	assert_non_null(tmp);
	if (n)
		memcpy(tmp, p, n);
	m->len = 0;
	model_append(m, tmp, n);
	free(tmp);
}

static int model_cmp(const struct model *a, const struct model *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->b, b->b, n) : 0;

	if (c)
		return c < 0 ? -1 : 1;
	return (a->len > b->len) - (a->len < b->len);
}

/* ---- random choices ---------------------------------------------------- */

static uint64_t rs;

static uint64_t rnd(uint64_t n)
{
	return n ? zt_rand(&rs) % n : 0;
}

static size_t rlen(void)
{
	uint64_t r = rnd(100);

	if (r < 50)
		return rnd(17);
	if (r < 80)
		return rnd(257);
	if (r < 95)
		return rnd(4097);
	return rnd(20001);
}

/* A valid (off, len) inside a list of length @n. */
static void rrange(size_t n, size_t *off, size_t *len)
{
	*off = rnd(n + 1);
	*len = rnd(n - *off + 1);
	if (rnd(4) == 0 && n > 0) {
		/* Favour ranges that end exactly at the end or start at 0. */
		if (rnd(2))
			*len = n - *off;
		else
			*off = 0;
	}
}

/* An (off, len) that ends past a list of length @n, including overflowing sums. */
static void rbad_range(size_t n, size_t *off, size_t *len)
{
	switch (rnd(5)) {
	case 0:
		*off = n + 1 + rnd(4);
		*len = rnd(3);
		break;
	case 1:
		*off = rnd(n + 1);
		*len = n - *off + 1 + rnd(4);
		break;
	case 2:
		*off = SIZE_MAX - rnd(3);
		*len = 1 + rnd(3);
		break;
	case 3:
		*off = rnd(n + 1);
		*len = SIZE_MAX - rnd(3);
		break;
	default:
		*off = SIZE_MAX;
		*len = SIZE_MAX;
		break;
	}
}

static void rbytes(unsigned char *p, size_t n)
{
	/* Small alphabets sometimes, so comparisons often run deep before differing. */
	unsigned mod = rnd(3) == 0 ? 2 : 256;

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(zt_rand(&rs) % mod);
}

static void free_ref(void *ctx)
{
	free(ctx);
	atomic_fetch_sub(&refs_live, 1);
}

/* ---- checks ------------------------------------------------------------- */

static uint32_t ref_crc(const struct model *m, uint32_t s)
{
	return zt_ref_crc32c(m->b, m->len, s);
}

/* Reads the list's bytes without materializing kernel pages: write to scratch. */
static unsigned char *bytes_via_scratch(int i)
{
	size_t len = zbl_length(L[i]);
	unsigned char *buf = malloc(len + 1);
	int64_t off = 0;
	size_t done = 0;

	assert_non_null(buf);
	assert_int_equal(ftruncate(scratch_fd, 0), 0);
	DCHECK_RC(zbl_splice_to(L[i], scratch_fd, &off, 0), (ssize_t)len);
	DCHECK(off == (int64_t)len, "splice_to advanced *off to %lld, expected %zu",
	       (long long)off, len);
	while (done < len) {
		ssize_t r = pread(scratch_fd, buf + done, len - done, (off_t)done);

		assert_true(r > 0);
		done += (size_t)r;
	}
	return buf;
}

static void check_list(int i)
{
	size_t len = zbl_length(L[i]), kb = zbl_kernel_bytes(L[i]);
	size_t segs = zbl_segments(L[i]);
	unsigned char *got;

	DCHECK(len == M[i].len, "list %d length %zu, model %zu", i, len, M[i].len);
	DCHECK(kb <= len, "list %d kernel_bytes %zu > length %zu", i, kb, len);
	DCHECK(zbl_is_contiguous(L[i]) == (segs <= 1), "list %d is_contiguous wrong with %zu segments",
	       i, segs);
	DCHECK(len > 0 || segs == 0, "list %d is empty but has %zu segments", i, segs);
	if (kb > 0) {
		got = bytes_via_scratch(i);
		DCHECK(zbl_kernel_bytes(L[i]) == kb, "list %d: writing it out changed kernel_bytes from %zu to %zu",
		       i, kb, zbl_kernel_bytes(L[i]));
	} else {
		got = malloc(len + 1);
		assert_non_null(got);
		DCHECK_RC(zbl_copy_out(L[i], 0, len, got), 0);
	}
	for (size_t k = 0; k < len; k++)
		if (got[k] != M[i].b[k]) {
			unsigned g = got[k], w = M[i].b[k];

			free(got);
			DFAIL("list %d differs from its model at byte %zu of %zu: 0x%02x, expected 0x%02x",
			      i, k, len, g, w);
		}
	free(got);
}

/* Snapshot for "a failed call changed nothing": length, segment count, bytes. */
struct dsnap {
	size_t len, segs;
};

static void dsnap(struct dsnap *s, int i)
{
	s->len = zbl_length(L[i]);
	s->segs = zbl_segments(L[i]);
}

static void dsnap_check(const struct dsnap *s, int i, const char *what)
{
	DCHECK(zbl_length(L[i]) == s->len && zbl_segments(L[i]) == s->segs,
	       "failed %s changed list %d: length %zu -> %zu, segments %zu -> %zu", what, i,
	       s->len, zbl_length(L[i]), s->segs, zbl_segments(L[i]));
}

/* ---- operations ---------------------------------------------------------- */

static void op_append(int i)
{
	size_t n = rlen();
	unsigned char *p = malloc(n + 1);

	assert_non_null(p);
	rbytes(p, n);
	logop("append(L%d, %zu bytes)", i, n);
	DCHECK_RC(zbl_append(L[i], p, n), 0);
	model_append(&M[i], p, n);
	free(p);
}

static void op_append_zero(int i)
{
	size_t n = rlen();
	unsigned char *z = calloc(1, n + 1);

	assert_non_null(z);
	logop("append_zero(L%d, %zu)", i, n);
	DCHECK_RC(zbl_append_zero(L[i], n), 0);
	model_append(&M[i], z, n);
	free(z);
}

static void op_append_ref(int i)
{
	size_t n = rlen();
	unsigned char *p = malloc(n + 1);

	assert_non_null(p);
	rbytes(p, n);
	logop("append_ref(L%d, %zu bytes)", i, n);
	model_append(&M[i], p, n);
	atomic_fetch_add(&refs_live, 1);
	DCHECK_RC(zbl_append_ref(L[i], p, n, free_ref, p), 0);
}

static void op_append_file(int i)
{
	size_t off = rnd(FILE_LEN + 1), n;

	if (rnd(10) == 0) {
		struct dsnap s;

		n = FILE_LEN - off + 1 + rnd(100);
		logop("append_file(L%d, off %zu, len %zu) past EOF", i, off, n);
		dsnap(&s, i);
		DCHECK_RC(zbl_append_file(L[i], file_fd, (int64_t)off, n), -ERANGE);
		dsnap_check(&s, i, "append_file");
		return;
	}
	n = rnd(FILE_LEN - off + 1);
	if (n > 30000)
		n = rnd(30000);
	logop("append_file(L%d, off %zu, len %zu)", i, off, n);
	DCHECK_RC(zbl_append_file(L[i], file_fd, (int64_t)off, n), 0);
	model_append(&M[i], file_data + off, n);
}

static void op_splice_from(int i)
{
	int64_t off = (int64_t)rnd(FILE_LEN + 1);
	size_t n = rlen(), want = n;

	if ((size_t)off + want > FILE_LEN)
		want = FILE_LEN - (size_t)off;
	logop("splice_from(L%d, file, off %lld, len %zu)", i, (long long)off, n);
	int64_t start = off;

	DCHECK_RC(zbl_splice_from(L[i], file_fd, &off, n, 0), (ssize_t)want);
	DCHECK(off == start + (int64_t)want, "splice_from advanced *off from %lld to %lld, expected +%zu",
	       (long long)start, (long long)off, want);
	model_append(&M[i], file_data + start, want);
}

static void op_append_list(int d, int s)
{
	logop("append_list(L%d, L%d)", d, s);
	DCHECK_RC(zbl_append_list(L[d], L[s]), 0);
	model_append(&M[d], M[s].b, M[s].len);
}

static void op_claim_append(int d, int s)
{
	logop("claim_append(L%d, L%d)", d, s);
	if (d == s) {
		struct dsnap sn;

		dsnap(&sn, d);
		DCHECK_RC(zbl_claim_append(L[d], L[s]), -EINVAL);
		dsnap_check(&sn, d, "claim_append");
		return;
	}
	DCHECK_RC(zbl_claim_append(L[d], L[s]), 0);
	model_append(&M[d], M[s].b, M[s].len);
	M[s].len = 0;
}

static void op_substr_of(int d, int s)
{
	size_t off, n;

	if (rnd(10) == 0) {
		struct dsnap sd, ss;

		rbad_range(M[s].len, &off, &n);
		logop("substr_of(L%d, L%d, %zu, %zu) out of range", d, s, off, n);
		dsnap(&sd, d);
		dsnap(&ss, s);
		DCHECK_RC(zbl_substr_of(L[d], L[s], off, n), -ERANGE);
		dsnap_check(&sd, d, "substr_of");
		dsnap_check(&ss, s, "substr_of");
		return;
	}
	rrange(M[s].len, &off, &n);
	logop("substr_of(L%d, L%d, %zu, %zu)", d, s, off, n);
	DCHECK_RC(zbl_substr_of(L[d], L[s], off, n), 0);
	model_set(&M[d], M[s].b + off, n);
}

static void op_splice(int i, int c)
{
	size_t off, n;

	if (c == i) {
		struct dsnap sn;

		rrange(M[i].len, &off, &n);
		logop("splice(L%d, %zu, %zu, claim_by itself)", i, off, n);
		dsnap(&sn, i);
		DCHECK_RC(zbl_splice(L[i], off, n, L[i]), -EINVAL);
		dsnap_check(&sn, i, "splice into itself");
		return;
	}
	if (rnd(10) == 0) {
		struct dsnap sn, sc;

		rbad_range(M[i].len, &off, &n);
		logop("splice(L%d, %zu, %zu, %s%d) out of range", i, off, n, c < 0 ? "NULL" : "L",
		      c < 0 ? 0 : c);
		dsnap(&sn, i);
		if (c >= 0)
			dsnap(&sc, c);
		DCHECK_RC(zbl_splice(L[i], off, n, c < 0 ? NULL : L[c]), -ERANGE);
		dsnap_check(&sn, i, "splice");
		if (c >= 0)
			dsnap_check(&sc, c, "splice (claim_by)");
		return;
	}
	rrange(M[i].len, &off, &n);
	logop("splice(L%d, %zu, %zu, %s%d)", i, off, n, c < 0 ? "NULL" : "L", c < 0 ? 0 : c);
	DCHECK_RC(zbl_splice(L[i], off, n, c < 0 ? NULL : L[c]), 0);
	if (c >= 0)
		model_append(&M[c], M[i].b + off, n);
	model_erase(&M[i], off, n);
}

static void op_copy_out(int i)
{
	size_t off, n;
	unsigned char *buf;

	if (rnd(8) == 0) {
		unsigned char sentinel[4] = { 0xA5, 0xA5, 0xA5, 0xA5 };

		rbad_range(M[i].len, &off, &n);
		logop("copy_out(L%d, %zu, %zu) out of range", i, off, n);
		DCHECK_RC(zbl_copy_out(L[i], off, n, sentinel), -ERANGE);
		DCHECK(sentinel[0] == 0xA5 && sentinel[3] == 0xA5, "failed copy_out wrote bytes");
		return;
	}
	rrange(M[i].len, &off, &n);
	logop("copy_out(L%d, %zu, %zu)", i, off, n);
	buf = malloc(n + 1);
	assert_non_null(buf);
	DCHECK_RC(zbl_copy_out(L[i], off, n, buf), 0);
	DCHECK(n == 0 || memcmp(buf, M[i].b + off, n) == 0, "copy_out(L%d, %zu, %zu) wrong bytes",
	       i, off, n);
	if (off == 0 && n == M[i].len)
		DCHECK(zbl_kernel_bytes(L[i]) == 0,
		       "kernel_bytes is %zu after reading the whole list", zbl_kernel_bytes(L[i]));
	free(buf);
}

static void op_iter(int i)
{
	zbl_iter_t it;
	size_t len = M[i].len, pos = rnd(len + 1);
	unsigned char buf[4096];
	int moves = 1 + (int)rnd(8);

	if (rnd(10) == 0) {
		size_t bad = len + 1 + rnd(3);

		logop("iter_init(L%d, %zu) out of range", i, bad);
		DCHECK_RC(zbl_iter_init(&it, L[i], bad), -ERANGE);
		return;
	}
	logop("iter(L%d) from %zu, %d moves", i, pos, moves);
	DCHECK_RC(zbl_iter_init(&it, L[i], pos), 0);
	for (int k = 0; k < moves; k++) {
		size_t rem = len - pos, n = rnd(2) ? rnd(64) : rnd(sizeof(buf) + 1);
		const char *p = NULL;
		size_t got;

		DCHECK(zbl_iter_offset(&it) == pos && zbl_iter_remaining(&it) == rem,
		       "iterator at %zu/%zu, expected %zu/%zu", zbl_iter_offset(&it),
		       zbl_iter_remaining(&it), pos, rem);
		switch (rnd(3)) {
		case 0:
			if (n > rem && rnd(2)) {
				DCHECK_RC(zbl_iter_advance(&it, n), -ERANGE);
				break;
			}
			if (n > rem)
				n = rem;
			DCHECK_RC(zbl_iter_advance(&it, n), 0);
			pos += n;
			break;
		case 1:
			if (n > sizeof(buf))
				n = sizeof(buf);
			if (n > rem) {
				DCHECK_RC(zbl_iter_copy(&it, n, buf), -ERANGE);
				break;
			}
			DCHECK_RC(zbl_iter_copy(&it, n, buf), 0);
			DCHECK(n == 0 || memcmp(buf, M[i].b + pos, n) == 0,
			       "iter_copy at %zu of %zu bytes wrong", pos, n);
			pos += n;
			break;
		default:
			got = zbl_iter_get_ptr_and_advance(&it, n, &p);
			DCHECK(got <= n && got <= rem, "get_ptr_and_advance(%zu) returned %zu with %zu left",
			       n, got, rem);
			DCHECK(got > 0 || n == 0 || rem == 0,
			       "get_ptr_and_advance(%zu) returned 0 with %zu left", n, rem);
			DCHECK(got == 0 || memcmp(p, M[i].b + pos, got) == 0,
			       "get_ptr_and_advance at %zu: %zu bytes wrong", pos, got);
			pos += got;
			break;
		}
	}
}

static void op_c_str(int i)
{
	const char *p;

	logop("c_str(L%d)", i);
	errno = EBADF;
	p = zbl_c_str(L[i]);
	if (M[i].len == 0) {
		DCHECK(p == NULL && errno == 0, "c_str of empty list: %p, errno %d", (const void *)p,
		       errno);
		return;
	}
	DCHECK(p != NULL, "c_str returned NULL (errno %d)", errno);
	DCHECK(memcmp(p, M[i].b, M[i].len) == 0, "c_str bytes wrong");
	DCHECK(zbl_segments(L[i]) == 1, "c_str left %zu segments", zbl_segments(L[i]));
	DCHECK(zbl_kernel_bytes(L[i]) == 0, "c_str left %zu kernel bytes", zbl_kernel_bytes(L[i]));
}

static void op_rebuild(int i)
{
	logop("rebuild(L%d)", i);
	DCHECK_RC(zbl_rebuild(L[i]), 0);
	DCHECK(zbl_segments(L[i]) == (M[i].len ? 1u : 0u), "rebuild left %zu segments",
	       zbl_segments(L[i]));
	DCHECK(zbl_kernel_bytes(L[i]) == 0, "rebuild left %zu kernel bytes", zbl_kernel_bytes(L[i]));
}

static void op_rebuild_aligned(int i)
{
	size_t align = (size_t)1 << rnd(14);
	zbl_iter_t it;
	const char *p;
	size_t got, segs = 0, before = zbl_segments(L[i]);

	if (rnd(10) == 0) {
		struct dsnap sn;
		size_t bad = align < 4 ? 3 : align + 1 + rnd(align - 1);

		logop("rebuild_aligned(L%d, %zu) not a power of two", i, bad);
		dsnap(&sn, i);
		DCHECK_RC(zbl_rebuild_aligned(L[i], bad), -EINVAL);
		dsnap_check(&sn, i, "rebuild_aligned");
		return;
	}
	logop("rebuild_aligned(L%d, %zu)", i, align);
	DCHECK_RC(zbl_rebuild_aligned(L[i], align), 0);
	DCHECK(zbl_kernel_bytes(L[i]) == 0, "rebuild_aligned left %zu kernel bytes",
	       zbl_kernel_bytes(L[i]));
	DCHECK(zbl_segments(L[i]) <= before, "rebuild_aligned grew %zu segments to %zu", before,
	       zbl_segments(L[i]));
	DCHECK_RC(zbl_iter_init(&it, L[i], 0), 0);
	while ((got = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)) > 0) {
		DCHECK((uintptr_t)p % align == 0, "segment %zu at %p not aligned to %zu", segs,
		       (const void *)p, align);
		segs++;
	}
	DCHECK(segs == zbl_segments(L[i]), "iterator saw %zu runs for %zu segments", segs,
	       zbl_segments(L[i]));
}

static void op_crc(int i)
{
	static const uint32_t fixed[] = { 0, 0xFFFFFFFF, 1 };
	uint32_t s = rnd(2) ? fixed[rnd(3)] : (uint32_t)zt_rand(&rs);
	uint32_t got, want = ref_crc(&M[i], s);

	logop("crc32c(L%d, 0x%08x)", i, s);
	errno = EBADF;
	got = zbl_crc32c(L[i], s);
	DCHECK(got == want, "crc32c(L%d, 0x%08x) = 0x%08x, ISA-L says 0x%08x", i, s, got, want);
	DCHECK(errno == 0, "crc32c left errno %d", errno);
}

static void op_cmp(int a, int b)
{
	int got = zbl_cmp(L[a], L[b]), want = model_cmp(&M[a], &M[b]);
	bool eq = zbl_contents_equal(L[a], L[b]);

	logop("cmp(L%d, L%d)", a, b);
	got = (got > 0) - (got < 0);
	DCHECK(got == want, "cmp(L%d, L%d) sign %d, memcmp order says %d", a, b, got, want);
	DCHECK(eq == (want == 0), "contents_equal(L%d, L%d) = %d, expected %d", a, b, eq,
	       want == 0);
}

static void op_write_fd(int i)
{
	size_t len = M[i].len, kb = zbl_kernel_bytes(L[i]);
	unsigned char *buf = malloc(len + 1);
	size_t done = 0;

	assert_non_null(buf);
	logop("write_fd(L%d)", i);
	assert_int_equal(ftruncate(scratch_fd, 0), 0);
	assert_true(lseek(scratch_fd, 0, SEEK_SET) == 0);
	DCHECK_RC(zbl_write_fd(L[i], scratch_fd), (ssize_t)len);
	DCHECK(lseek(scratch_fd, 0, SEEK_CUR) == (off_t)len, "write_fd left the position at %lld",
	       (long long)lseek(scratch_fd, 0, SEEK_CUR));
	DCHECK(zbl_kernel_bytes(L[i]) == kb, "write_fd changed kernel_bytes from %zu to %zu", kb,
	       zbl_kernel_bytes(L[i]));
	while (done < len) {
		ssize_t r = pread(scratch_fd, buf + done, len - done, (off_t)done);

		assert_true(r > 0);
		done += (size_t)r;
	}
	DCHECK(len == 0 || memcmp(buf, M[i].b, len) == 0, "write_fd(L%d) wrote wrong bytes", i);
	free(buf);
}

static void op_drain(int i)
{
	size_t len = M[i].len;
	unsigned char *buf = malloc(len + 1);
	int64_t off = 0;
	size_t done = 0;

	assert_non_null(buf);
	logop("splice_to(L%d, file, off 0, ZBL_DRAIN)", i);
	assert_int_equal(ftruncate(scratch_fd, 0), 0);
	DCHECK_RC(zbl_splice_to(L[i], scratch_fd, &off, ZBL_DRAIN), (ssize_t)len);
	DCHECK(off == (int64_t)len, "splice_to advanced *off to %lld, expected %zu", (long long)off,
	       len);
	DCHECK(zbl_length(L[i]) == 0, "ZBL_DRAIN left %zu bytes", zbl_length(L[i]));
	while (done < len) {
		ssize_t r = pread(scratch_fd, buf + done, len - done, (off_t)done);

		assert_true(r > 0);
		done += (size_t)r;
	}
	DCHECK(len == 0 || memcmp(buf, M[i].b, len) == 0, "splice_to(L%d) wrote wrong bytes", i);
	M[i].len = 0;
	free(buf);
}

static void op_clear(int i)
{
	logop("clear(L%d)", i);
	zbl_clear(L[i]);
	M[i].len = 0;
}

/* Runs one random operation; growing ones are skipped when lists are large. */
static void step(void)
{
	int a = (int)rnd(NLISTS), b = (int)rnd(NLISTS);
	bool big = M[a].len > LIST_MAX;
	uint64_t op = rnd(100);

	if (big && op < 40)
		op = 40 + rnd(60);
	if (op < 10)
		op_append(a);
	else if (op < 14)
		op_append_zero(a);
	else if (op < 21)
		op_append_ref(a);
	else if (op < 25)
		op_append_file(a);
	else if (op < 29)
		op_splice_from(a);
	else if (op < 35) {
		if (M[a].len + M[b].len > 2 * LIST_MAX)
			op_clear(a);
		else
			op_append_list(a, b);
	} else if (op < 40) {
		if (M[a].len + M[b].len > 2 * LIST_MAX)
			op_clear(b);
		else
			op_claim_append(a, b);
	} else if (op < 48)
		op_substr_of(a, b);
	else if (op < 58)
		op_splice(a, rnd(3) == 0 ? -1 : b);
	else if (op < 64)
		op_copy_out(a);
	else if (op < 71)
		op_iter(a);
	else if (op < 74)
		op_c_str(a);
	else if (op < 77)
		op_rebuild(a);
	else if (op < 81)
		op_rebuild_aligned(a);
	else if (op < 86)
		op_crc(a);
	else if (op < 91)
		op_cmp(a, b);
	else if (op < 94)
		op_write_fd(a);
	else if (op < 96)
		op_drain(a);
	else
		op_clear(a);
}

static void run_sequence(int seq)
{
	cur_seq = seq;
	oplog_n = 0;
	rs = seed ^ ((uint64_t)seq * 0xD1B54A32D192ED03ull);
	(void)zt_rand(&rs);
	for (int i = 0; i < NLISTS; i++) {
		L[i] = zbl_new();
		assert_non_null(L[i]);
		M[i].len = 0;
		/* Models always own a buffer, so their byte pointers are never NULL. */
		model_reserve(&M[i], 64);
	}
	for (cur_step = 0; cur_step < STEPS; cur_step++) {
		step();
		for (int i = 0; i < NLISTS; i++)
			check_list(i);
	}
	for (int i = 0; i < NLISTS; i++) {
		zbl_free(L[i]);
		L[i] = NULL;
	}
	DCHECK(atomic_load(&refs_live) == 0,
	       "%d append_ref blocks were not released after every list was freed",
	       atomic_load(&refs_live));
}

static unsigned long long env_ull(const char *name, unsigned long long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void test_random_operation_sequences_match_flat_models(void **state)
{
	(void)state;
	int iters = (int)env_ull("ZBL_ITERS", 4000);
	long long only = getenv("ZBL_SEQ") ? (long long)env_ull("ZBL_SEQ", 0) : -1;

	seed = env_ull("ZBL_SEED", 0x5EED);
	print_message("differential: ZBL_SEED=%llu ZBL_ITERS=%d%s\n", seed, iters,
		      only >= 0 ? " (one sequence, ZBL_SEQ)" : "");
	file_data = zt_random_bytes(FILE_LEN, seed);
	file_fd = zt_temp_file(file_data, FILE_LEN);
	scratch_fd = zt_temp_file("", 0);
	if (only >= 0)
		run_sequence((int)only);
	else
		for (int seq = 0; seq < iters; seq++)
			run_sequence(seq);
	close(file_fd);
	close(scratch_fd);
	free(file_data);
	for (int i = 0; i < NLISTS; i++) {
		free(M[i].b);
		M[i].b = NULL;
		M[i].cap = 0;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_operation_sequences_match_flat_models),
	};

	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
