/* SPDX-License-Identifier: MIT */
/*
 * Fault injection at every system call and allocation (issue 4).
 *
 * Linked against zbl_fault, the library built with -DZBL_FAULT_INJECTION.
 * For each public operation, on lists of memory, pipe pages (from a pipe and
 * from a socket), file ranges, pipe pages shared with a second list, and one
 * pipe block large enough to be read into memory through a memfd, and
 * for every injection mode (one call failing with EINTR, EAGAIN, ENOMEM,
 * EMFILE, EPERM, EPIPE or EINVAL, or one read/write-like call moving fewer
 * bytes), the test walks N = 1, 2, ... failing the Nth eligible call until
 * the operation completes without reaching the fault, and checks each run:
 * - the result is a success or a negative errno;
 * - a success has exactly the right bytes; without a fault it is complete;
 * - a failure left every list as it was (length, segments, bytes);
 * - partial progress is reported exactly: what reached a destination, or
 *   what left a source, is the returned count, with nothing lost or repeated;
 * - no descriptor or pipe is left behind (counted after zbl_pool_flush), and
 *   no descriptor is closed twice;
 *   memory leaks are LeakSanitizer's job in the sanitizer build.
 * At the end it prints how many injection points it covered.
 *
 * FT_VERBOSE=1 prints every run; FT_FILTER=substring runs only the matching
 * operations.
 */
#include "kpage_util.h"

#include <isa-l/crc.h>

#include "fault.h"

#define PAT_BYTES ((size_t)256 * 1024)
#define SRC_BYTES ((size_t)30000)
/* Runs per operation, layout and mode before the walk is called endless. */
#define WALK_MAX 2000

static unsigned char pat[PAT_BYTES];  /* bytes that go into lists */
static unsigned char spat[SRC_BYTES]; /* bytes sources hold */

/* ------------------------------------------------------------------------ */
/* Modes and layouts.                                                        */

static const int mode_errno[] = { EINTR, EAGAIN, ENOMEM, EMFILE, EPERM, EPIPE, EINVAL, 0 };
#define MODES (sizeof(mode_errno) / sizeof(mode_errno[0]))

static const char *mode_name(size_t m)
{
	return mode_errno[m] ? strerrorname_np(mode_errno[m]) : "short";
}

enum layout { L_MEM, L_PIPE, L_SOCK, L_FILE, L_SHARED, L_BIGPIPE, LAYOUTS };
static const char *const layout_name[LAYOUTS] = { "mem", "pipe", "sock", "file", "shared",
						  "bigpipe" };

/*
 * Bytes of the L_BIGPIPE pipe block: above the 128 KiB from which a block is
 * read into a mapping, and with no mapping cached for reuse (zbl_pool_flush
 * before each run), so reading it takes the memfd route (src/kind_pipe.c).
 */
#define BIG_PIPE_BYTES ((size_t)150000)

/* A growing byte array: the model of a list. */
struct model {
	unsigned char *b;
	size_t len;
};

static void m_add(struct model *m, const void *p, size_t n)
{
	m->b = realloc(m->b, m->len + n + 1);
	assert_non_null(m->b);
	if (p)
		memcpy(m->b + m->len, p, n);
	else
		memset(m->b + m->len, 0, n);
	m->len += n;
}

/* Removes bytes [off, off+n) and returns them in @out (may be NULL). */
static void m_cut(struct model *m, size_t off, size_t n, struct model *out)
{
	if (out)
		m_add(out, m->b + off, n);
	memmove(m->b + off, m->b + off + n, m->len - off - n);
	m->len -= n;
}

/* ------------------------------------------------------------------------ */
/* One run's world.                                                          */

struct fx {
	enum layout layout;
	zbl_t *bl, *other, *share;
	struct model m, om;
	size_t segs, osegs;
	int file;           /* backs file segments and zbl_append_file */
	int src, src_w;     /* source of splice_from/read_fd */
	int dst, dst_r;     /* destination of write_fd/splice_to */
	bool dst_file;
	int64_t off;
	atomic_int released;
	bool ref_appended;
};

/* Splices exactly @n bytes of @p into @bl as the page-cache pages of a file. */
static void fill_file_pages(zbl_t *bl, const unsigned char *p, size_t n)
{
	int fd = zt_temp_file(p, n);

	zk_splice_in(bl, fd, n);
	zk_close(&fd);
}

/* Splices exactly @n bytes of @p into @bl through a pipe or socket of kind @k. */
static void fill_kernel(zbl_t *bl, enum zk_kind k, const unsigned char *p, size_t n)
{
	int fds[2];

	zk_pair(k, fds);
	zt_write_full(fds[1], p, n);
	zk_end_writes(k, &fds[1]);
	zk_splice_in(bl, fds[0], n);
	zk_close(&fds[0]);
	zk_close(&fds[1]);
}

static void fx_setup(struct fx *f, enum layout layout)
{
	memset(f, 0, sizeof(*f));
	f->layout = layout;
	f->src = f->src_w = f->dst = f->dst_r = -1;
	f->bl = zt_new();
	f->other = zt_new();
	f->file = zt_temp_file(pat, PAT_BYTES);
	/* The other list has a memory segment, so claims into it must grow its array. */
	/* Four segments fill its first array, so any append into it must grow the array. */
	assert_rc(zbl_append(f->other, "other:", 6), 0);
	m_add(&f->om, "other:", 6);
	for (int i = 0; i < 3; i++) {
		assert_rc(zbl_append_ref(f->other, "ref", 3, NULL, NULL), 0);
		m_add(&f->om, "ref", 3);
	}

	switch (layout) {
	case L_MEM:
		assert_rc(zbl_append(f->bl, pat, 3000), 0);
		assert_rc(zbl_append_ref(f->bl, pat + 3000, 5000, NULL, NULL), 0);
		assert_rc(zbl_append(f->bl, pat + 8000, 1000), 0);
		m_add(&f->m, pat, 9000);
		break;
	case L_PIPE:
	case L_SHARED:
		assert_rc(zbl_append(f->bl, pat, 1000), 0);
		fill_kernel(f->bl, ZK_PIPE, pat + 1000, 20000);
		m_add(&f->m, pat, 21000);
		break;
	case L_SOCK:
		fill_kernel(f->bl, ZK_UNIX, pat + 500, 24000);
		assert_rc(zbl_append(f->bl, pat + 24500, 700), 0);
		m_add(&f->m, pat + 500, 24700);
		break;
	case L_FILE:
		/* The long range is read into mmap'ed memory (over 128 KiB). */
		assert_rc(zbl_append_file(f->bl, f->file, 100, 3000), 0);
		assert_rc(zbl_append(f->bl, pat + 3100, 500), 0);
		assert_rc(zbl_append_file(f->bl, f->file, 3600, 140000), 0);
		m_add(&f->m, pat + 100, 143500);
		break;
	case L_BIGPIPE:
		assert_rc(zbl_append(f->bl, pat, 2000), 0);
		fill_file_pages(f->bl, pat + 2000, BIG_PIPE_BYTES);
		m_add(&f->m, pat, 2000 + BIG_PIPE_BYTES);
		break;
	default:
		fail();
	}
	if (layout == L_SHARED) {
		/* A second list holds the pipe block too: writes must tee, not drain it. */
		f->share = zt_new();
		assert_rc(zbl_substr_of(f->share, f->bl, 500, 15000), 0);
	}
	f->segs = zbl_segments(f->bl);
	f->osegs = zbl_segments(f->other);
}

static void fx_source(struct fx *f, enum zk_kind k)
{
	int fds[2];

	zk_pair(k, fds);
	zt_write_full(fds[1], spat, SRC_BYTES);
	zk_end_writes(k, &fds[1]);
	f->src = fds[0];
	f->src_w = fds[1];
}

static void fx_file_source(struct fx *f)
{
	f->src = zt_temp_file(spat, SRC_BYTES);
	f->off = 1000; /* start inside the file; the position stays at 0 */
}

static void fx_dest(struct fx *f, enum zk_kind k)
{
	int fds[2];

	if (k == ZK_FILE) {
		f->dst = zt_temp_fd(0);
		f->dst_file = true;
		return;
	}
	zk_pair(k, fds);
	if (k == ZK_PIPE) {
		/* Room for any list here, so only an injected fault stops a write. */
		assert_true(fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) >= (1 << 20) ||
			    fcntl(fds[1], F_GETPIPE_SZ) >= 256 * 1024);
	} else {
		zk_set_socket_buffers(fds, 8 << 20);
	}
	/* Non-blocking, so that a wrong "bytes left" can never hang the test. */
	zk_set_nonblock(fds[1], true);
	f->dst = fds[1];
	f->dst_r = fds[0];
}

static void release_cb(void *ctx)
{
	atomic_fetch_add((atomic_int *)ctx, 1);
}

static void fx_teardown(struct fx *f)
{
	zbl_free(f->bl);
	zbl_free(f->other);
	zbl_free(f->share);
	if (f->ref_appended && atomic_load(&f->released) != 1)
		fail_msg("zbl_append_ref's release ran %d times, expected once",
			 atomic_load(&f->released));
	zk_close(&f->file);
	zk_close(&f->src);
	zk_close(&f->src_w);
	zk_close(&f->dst);
	zk_close(&f->dst_r);
	free(f->m.b);
	free(f->om.b);
}

/* ------------------------------------------------------------------------ */
/* Checks.                                                                   */

static void check_list(const zbl_t *bl, const struct model *m, const char *what)
{
	unsigned char *flat;

	if (zbl_length(bl) != m->len)
		fail_msg("%s: length %zu, expected %zu", what, zbl_length(bl), m->len);
	if (zbl_kernel_bytes(bl) > zbl_length(bl))
		fail_msg("%s: %zu kernel bytes in a list of %zu", what, zbl_kernel_bytes(bl),
			 zbl_length(bl));
	flat = malloc(m->len + 1);
	assert_non_null(flat);
	int rc = zbl_copy_out(bl, 0, m->len, flat);
	if (rc != 0)
		fail_msg("%s: reading the list back failed: %d (%s)", what, rc, zt_errname(rc));
	zk_assert_bytes_(flat, m->b, m->len, what, __FILE__, __LINE__);
	free(flat);
}

/* Everything readable now from @fd (non-blocking, until EOF or EAGAIN). */
static struct model drain_fd(int fd)
{
	struct model got = { 0 };
	unsigned char buf[65536];

	zk_set_nonblock(fd, true);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		m_add(&got, buf, (size_t)r);
	}
	return got;
}

/* What reached the destination. */
static struct model dest_bytes(struct fx *f)
{
	struct model got = { 0 };

	if (f->dst_file) {
		size_t n;
		unsigned char *p = zt_file_contents(f->dst, &n);
		m_add(&got, p, n);
		free(p);
		return got;
	}
	return drain_fd(f->dst_r);
}

/* ------------------------------------------------------------------------ */
/* Operations.                                                               */

enum src_kind { S_NONE, S_PIPE, S_SOCK, S_FILE };
enum dst_kind { D_NONE, D_PIPE, D_SOCK, D_FILE, D_FILE_OFF };

struct op {
	const char *name;
	/* Sets the source or destination up (the list is already built). */
	enum src_kind src;
	enum dst_kind dst;
	/* Runs the operation with faults armed; returns its result as a long. */
	long (*act)(struct fx *f);
	/*
	 * Checks the outcome with faults disarmed. @fired: a fault was injected.
	 * Returns whether the operation failed (for the statistics).
	 */
	bool (*check)(struct fx *f, long rc, bool fired);
	unsigned flags;
};

/* Result of an operation that has no partial progress: 0 or -errno. */
static bool check_all_or_nothing(struct fx *f, long rc, bool fired, struct model *want_bl,
				 struct model *want_other)
{
	if (rc > 0)
		fail_msg("returned %ld, expected 0 or -errno", rc);
	if (rc == 0) {
		check_list(f->bl, want_bl, "list after success");
		if (want_other)
			check_list(f->other, want_other, "other list after success");
		return false;
	}
	if (!fired)
		fail_msg("failed with %ld (%s) without an injected fault", rc, zt_errname(rc));
	assert_size_equal(zbl_segments(f->bl), f->segs);
	assert_size_equal(zbl_segments(f->other), f->osegs);
	check_list(f->bl, &f->m, "list after failure");
	check_list(f->other, &f->om, "other list after failure");
	return true;
}

/* An append of @n bytes of @p (zeros if NULL) to the list: all of them, or nothing. */
static bool check_appended(struct fx *f, long rc, bool fired, const void *p, size_t n)
{
	struct model w = { 0 };
	m_add(&w, f->m.b, f->m.len);
	m_add(&w, p, n);
	bool failed = check_all_or_nothing(f, rc, fired, &w, NULL);
	free(w.b);
	return failed;
}

static long act_append(struct fx *f)
{
	return zbl_append(f->bl, pat + 1234, 7000);
}

static bool check_append(struct fx *f, long rc, bool fired)
{
	return check_appended(f, rc, fired, pat + 1234, 7000);
}

static long act_append_zero(struct fx *f)
{
	return zbl_append_zero(f->bl, 70000);
}

static bool check_append_zero(struct fx *f, long rc, bool fired)
{
	return check_appended(f, rc, fired, NULL, 70000);
}

static long act_append_ref(struct fx *f)
{
	f->ref_appended = true;
	return zbl_append_ref(f->bl, pat + 99, 4000, release_cb, &f->released);
}

static bool check_append_ref(struct fx *f, long rc, bool fired)
{
	bool failed = check_appended(f, rc, fired, pat + 99, 4000);
	/* On failure ownership passed anyway: release ran already. */
	if (failed && atomic_load(&f->released) != 1)
		fail_msg("failed zbl_append_ref ran release %d times, expected once",
			 atomic_load(&f->released));
	return failed;
}

static long act_append_file(struct fx *f)
{
	return zbl_append_file(f->bl, f->file, 10, 6000);
}

static bool check_append_file(struct fx *f, long rc, bool fired)
{
	return check_appended(f, rc, fired, pat + 10, 6000);
}

static long act_append_list(struct fx *f)
{
	return zbl_append_list(f->other, f->bl);
}

static bool check_append_list(struct fx *f, long rc, bool fired)
{
	struct model w = { 0 };
	m_add(&w, f->om.b, f->om.len);
	m_add(&w, f->m.b, f->m.len);
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, &w);
	free(w.b);
	return failed;
}

static long act_claim_append(struct fx *f)
{
	return zbl_claim_append(f->other, f->bl);
}

static bool check_claim_append(struct fx *f, long rc, bool fired)
{
	struct model w = { 0 }, empty = { 0 };
	m_add(&w, f->om.b, f->om.len);
	m_add(&w, f->m.b, f->m.len);
	bool failed = check_all_or_nothing(f, rc, fired, &empty, &w);
	free(w.b);
	return failed;
}

static long act_substr(struct fx *f)
{
	return zbl_substr_of(f->other, f->bl, 10, f->m.len - 25);
}

static bool check_substr(struct fx *f, long rc, bool fired)
{
	struct model w = { 0 };
	m_add(&w, f->m.b + 10, f->m.len - 25);
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, &w);
	free(w.b);
	return failed;
}

static long act_splice(struct fx *f)
{
	return zbl_splice(f->bl, 700, 1500, f->other);
}

static bool check_splice(struct fx *f, long rc, bool fired)
{
	struct model w = { 0 }, o = { 0 };
	m_add(&w, f->m.b, f->m.len);
	m_add(&o, f->om.b, f->om.len);
	m_cut(&w, 700, 1500, &o);
	bool failed = check_all_or_nothing(f, rc, fired, &w, &o);
	free(w.b);
	free(o.b);
	return failed;
}

static long act_splice_split(struct fx *f)
{
	/* From the middle of one segment: the list grows by a segment. */
	return zbl_splice(f->bl, 1100, 10, NULL);
}

static bool check_splice_split(struct fx *f, long rc, bool fired)
{
	struct model w = { 0 };
	m_add(&w, f->m.b, f->m.len);
	m_cut(&w, 1100, 10, NULL);
	bool failed = check_all_or_nothing(f, rc, fired, &w, NULL);
	free(w.b);
	return failed;
}

static unsigned char *outbuf;

static long act_copy_out(struct fx *f)
{
	return zbl_copy_out(f->bl, 3, f->m.len - 7, outbuf);
}

static bool check_copy_out(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);
	if (!failed)
		zk_assert_bytes(outbuf, f->m.b + 3, f->m.len - 7);
	return failed;
}

static const char *c_str_result;
static int c_str_errno;

static long act_c_str(struct fx *f)
{
	errno = 0;
	c_str_result = zbl_c_str(f->bl);
	c_str_errno = errno;
	return c_str_result ? 0 : -(c_str_errno ? c_str_errno : EIO);
}

static bool check_c_str(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);
	if (!failed) {
		zk_assert_bytes(c_str_result, f->m.b, f->m.len);
		assert_size_equal(zbl_segments(f->bl), 1);
		assert_size_equal(zbl_kernel_bytes(f->bl), 0);
	} else if (c_str_errno == 0) {
		fail_msg("zbl_c_str returned NULL for a non-empty list with errno 0");
	}
	return failed;
}

static long act_rebuild(struct fx *f)
{
	return zbl_rebuild(f->bl);
}

static bool check_rebuild(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);
	if (!failed)
		assert_size_equal(zbl_segments(f->bl), 1);
	return failed;
}

static long act_rebuild_aligned(struct fx *f)
{
	return zbl_rebuild_aligned(f->bl, 4096);
}

static bool check_rebuild_aligned(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);
	if (!failed) {
		const char *p;
		zbl_iter_t it;
		assert_rc(zbl_iter_init(&it, f->bl, 0), 0);
		while (zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p) > 0)
			if ((uintptr_t)p & 4095)
				fail_msg("a segment starts at %p after rebuild_aligned(4096)", p);
	}
	return failed;
}

static uint32_t crc_result;
static int crc_errno;

static long act_crc(struct fx *f)
{
	errno = 0;
	crc_result = zbl_crc32c(f->bl, 0x12345678);
	crc_errno = errno;
	return crc_errno ? -crc_errno : 0;
}

static bool check_crc(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);
	if (!failed)
		assert_crc_equal(crc_result, crc32_iscsi(f->m.b, (int)f->m.len, 0x12345678));
	return failed;
}

static zbl_t *cmp_ref;

static long act_cmp(struct fx *f)
{
	errno = 0;
	bool eq = zbl_contents_equal(f->bl, cmp_ref);
	return eq ? 0 : -EIO;
}

static bool check_cmp(struct fx *f, long rc, bool fired)
{
	return check_all_or_nothing(f, rc, fired, &f->m, NULL);
}

static long act_iter(struct fx *f)
{
	zbl_iter_t it;
	const char *p;
	size_t got = 0, n;
	int rc = zbl_iter_init(&it, f->bl, 5);

	if (rc < 0)
		return rc;
	/* The first run by pointer, the rest by copy. */
	errno = 0;
	n = zbl_iter_get_ptr_and_advance(&it, 100, &p);
	if (n == 0)
		return -(errno ? errno : EIO);
	memcpy(outbuf, p, n);
	got = n;
	rc = zbl_iter_copy(&it, f->m.len - 5 - got, outbuf + got);
	return rc;
}

static bool check_iter(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);
	if (!failed)
		zk_assert_bytes(outbuf, f->m.b + 5, f->m.len - 5);
	return failed;
}

/* Write-outs: what arrived is exactly the first rc bytes; with ZBL_DRAIN they left the list. */
static char *hex_got, *hex_want;
static size_t hex_got_len, hex_want_len;

static long act_hexdump(struct fx *f)
{
	FILE *out = open_memstream(&hex_got, &hex_got_len);
	int rc;

	assert_non_null(out);
	rc = zbl_hexdump(f->bl, out);
	fclose(out);
	return rc;
}

static bool check_hexdump(struct fx *f, long rc, bool fired)
{
	bool failed = check_all_or_nothing(f, rc, fired, &f->m, NULL);

	if (!failed) {
		/* The same dump as of a plain memory copy of the bytes. */
		FILE *out = open_memstream(&hex_want, &hex_want_len);
		assert_non_null(out);
		assert_rc(zbl_hexdump(cmp_ref, out), 0);
		fclose(out);
		assert_size_equal(hex_got_len, hex_want_len);
		zk_assert_bytes(hex_got, hex_want, hex_want_len);
	}
	free(hex_got);
	free(hex_want);
	hex_got = hex_want = NULL;
	return failed;
}

static long act_write_fd(struct fx *f)
{
	return zbl_write_fd(f->bl, f->dst);
}

static long act_splice_to(struct fx *f)
{
	return zbl_splice_to(f->bl, f->dst, NULL, 0);
}

static long act_splice_to_drain(struct fx *f)
{
	return zbl_splice_to(f->bl, f->dst, NULL, ZBL_DRAIN);
}

static long act_splice_to_off(struct fx *f)
{
	return zbl_splice_to(f->bl, f->dst, &f->off, 0);
}

static long act_splice_to_off_drain(struct fx *f)
{
	return zbl_splice_to(f->bl, f->dst, &f->off, ZBL_DRAIN);
}

#define OP_DRAIN 0x1u
#define OP_OFF 0x2u

static const struct op *cur_op;

static bool check_write(struct fx *f, long rc, bool fired)
{
	bool drain = cur_op->flags & OP_DRAIN;
	struct model got = dest_bytes(f);
	struct model want = { 0 };

	if (rc > (long)f->m.len)
		fail_msg("wrote %ld bytes of a %zu-byte list", rc, f->m.len);
	if (!fired && rc != (long)f->m.len)
		fail_msg("returned %ld (%s) without an injected fault, expected %zu", rc,
			 zt_errname(rc), f->m.len);
	size_t n = rc > 0 ? (size_t)rc : 0;
	if (got.len != n)
		fail_msg("returned %ld but the destination received %zu bytes", rc, got.len);
	zk_assert_bytes_(got.b, f->m.b, n, "destination bytes", __FILE__, __LINE__);
	if (cur_op->flags & OP_OFF)
		assert_size_equal(f->off, n);
	if (f->dst_file && !(cur_op->flags & OP_OFF))
		assert_size_equal(lseek(f->dst, 0, SEEK_CUR), n);
	if (f->dst_file && (cur_op->flags & OP_OFF))
		assert_size_equal(lseek(f->dst, 0, SEEK_CUR), 0);
	m_add(&want, drain ? f->m.b + n : f->m.b, drain ? f->m.len - n : f->m.len);
	if (rc < 0 || !drain) {
		assert_size_equal(zbl_segments(f->bl), f->segs);
	}
	check_list(f->bl, &want, drain ? "list after draining write" : "list after write");
	if (f->share) {
		struct model sh = { 0 };
		m_add(&sh, f->m.b + 500, 15000);
		check_list(f->share, &sh, "list sharing the blocks");
		free(sh.b);
	}
	free(got.b);
	free(want.b);
	return rc < 0;
}

/* Read-ins: the list gained exactly what left the source, and the source kept the rest. */
static long act_splice_from(struct fx *f)
{
	return zbl_splice_from(f->bl, f->src, NULL, SRC_BYTES, 0);
}

static long act_read_fd(struct fx *f)
{
	return zbl_read_fd(f->bl, f->src, SRC_BYTES);
}

static bool check_read(struct fx *f, long rc, bool fired)
{
	struct model want = { 0 };
	size_t n = rc > 0 ? (size_t)rc : 0;
	bool file = cur_op->src == S_FILE;
	size_t start = file && (cur_op->flags & OP_OFF) ? 1000 : 0;
	size_t avail = SRC_BYTES - start;

	if (rc > (long)avail)
		fail_msg("read %ld bytes from a source of %zu", rc, avail);
	if (!fired && rc != (long)avail)
		fail_msg("returned %ld (%s) without an injected fault, expected %zu", rc,
			 zt_errname(rc), avail);
	if (rc < 0)
		assert_size_equal(zbl_segments(f->bl), f->segs);
	m_add(&want, f->m.b, f->m.len);
	m_add(&want, spat + start, n);
	check_list(f->bl, &want, "list after reading in");
	if (file) {
		/* Offset and position: exactly the bytes taken. */
		if (cur_op->flags & OP_OFF) {
			assert_size_equal(f->off, 1000 + n);
			assert_size_equal(lseek(f->src, 0, SEEK_CUR), 0);
		} else {
			assert_size_equal(lseek(f->src, 0, SEEK_CUR), n);
		}
	} else {
		/* Nothing lost or repeated: the list's new bytes then the source's rest. */
		struct model rest = drain_fd(f->src);
		if (rest.len != avail - n)
			fail_msg("returned %ld: the source still holds %zu bytes, expected %zu",
				 rc, rest.len, avail - n);
		zk_assert_bytes_(rest.b, spat + n, rest.len, "rest of the source", __FILE__,
				 __LINE__);
		free(rest.b);
	}
	free(want.b);
	return rc < 0;
}

static long act_splice_from_off(struct fx *f)
{
	return zbl_splice_from(f->bl, f->src, &f->off, SRC_BYTES, 0);
}

static const struct op ops[] = {
	{ "append", S_NONE, D_NONE, act_append, check_append, 0 },
	{ "append_zero", S_NONE, D_NONE, act_append_zero, check_append_zero, 0 },
	{ "append_ref", S_NONE, D_NONE, act_append_ref, check_append_ref, 0 },
	{ "append_file", S_NONE, D_NONE, act_append_file, check_append_file, 0 },
	{ "append_list", S_NONE, D_NONE, act_append_list, check_append_list, 0 },
	{ "claim_append", S_NONE, D_NONE, act_claim_append, check_claim_append, 0 },
	{ "substr_of", S_NONE, D_NONE, act_substr, check_substr, 0 },
	{ "splice", S_NONE, D_NONE, act_splice, check_splice, 0 },
	{ "splice_split", S_NONE, D_NONE, act_splice_split, check_splice_split, 0 },
	{ "copy_out", S_NONE, D_NONE, act_copy_out, check_copy_out, 0 },
	{ "c_str", S_NONE, D_NONE, act_c_str, check_c_str, 0 },
	{ "rebuild", S_NONE, D_NONE, act_rebuild, check_rebuild, 0 },
	{ "rebuild_aligned", S_NONE, D_NONE, act_rebuild_aligned, check_rebuild_aligned, 0 },
	{ "crc32c", S_NONE, D_NONE, act_crc, check_crc, 0 },
	{ "contents_equal", S_NONE, D_NONE, act_cmp, check_cmp, 0 },
	{ "iter", S_NONE, D_NONE, act_iter, check_iter, 0 },
	{ "hexdump", S_NONE, D_NONE, act_hexdump, check_hexdump, 0 },
	{ "write_fd/pipe", S_NONE, D_PIPE, act_write_fd, check_write, 0 },
	{ "write_fd/sock", S_NONE, D_SOCK, act_write_fd, check_write, 0 },
	{ "write_fd/file", S_NONE, D_FILE, act_write_fd, check_write, 0 },
	{ "splice_to/pipe", S_NONE, D_PIPE, act_splice_to, check_write, 0 },
	{ "splice_to/sock", S_NONE, D_SOCK, act_splice_to, check_write, 0 },
	{ "splice_to/file", S_NONE, D_FILE, act_splice_to, check_write, 0 },
	{ "splice_to/file@off", S_NONE, D_FILE, act_splice_to_off, check_write, OP_OFF },
	{ "splice_to_drain/pipe", S_NONE, D_PIPE, act_splice_to_drain, check_write, OP_DRAIN },
	{ "splice_to_drain/sock", S_NONE, D_SOCK, act_splice_to_drain, check_write, OP_DRAIN },
	{ "splice_to_drain/file", S_NONE, D_FILE, act_splice_to_drain, check_write, OP_DRAIN },
	{ "splice_to_drain/file@off", S_NONE, D_FILE, act_splice_to_off_drain, check_write,
	  OP_DRAIN | OP_OFF },
	{ "splice_from/pipe", S_PIPE, D_NONE, act_splice_from, check_read, 0 },
	{ "splice_from/sock", S_SOCK, D_NONE, act_splice_from, check_read, 0 },
	{ "splice_from/file@off", S_FILE, D_NONE, act_splice_from_off, check_read, OP_OFF },
	{ "splice_from/file", S_FILE, D_NONE, act_splice_from, check_read, 0 },
	{ "read_fd/pipe", S_PIPE, D_NONE, act_read_fd, check_read, 0 },
	{ "read_fd/sock", S_SOCK, D_NONE, act_read_fd, check_read, 0 },
	{ "read_fd/file", S_FILE, D_NONE, act_read_fd, check_read, 0 },
};
#define OPS (sizeof(ops) / sizeof(ops[0]))

/* ------------------------------------------------------------------------ */
/* The walk.                                                                 */

/* The run being checked, printed by the group teardown if a check failed. */
static char ft_ctx[256];
static bool ft_in_run;

static unsigned long total_runs, total_faults, total_failures, total_recovered;
/* Distinct (operation, layout, mode, Nth call) points where a fault was injected. */
static unsigned long points;
static unsigned long sites[OPS][LAYOUTS]; /* faults per op and layout */

static const char *const call_names[] = {
	"malloc", "calloc", "posix_memalign", "mmap", "open", "fcntl", "dup", "fstat", "poll",
	"pipe2", "splice", "tee", "read", "readv", "pread", "writev", "sendfile",
	"copy_file_range", "memfd_create", "ftruncate", "madvise", "close",
};
#define CALLS (sizeof(call_names) / sizeof(call_names[0]))
static unsigned long call_hits[CALLS];

static void count_call(const char *name)
{
	for (size_t i = 0; i < CALLS; i++)
		if (name && strcmp(name, call_names[i]) == 0)
			call_hits[i]++;
}

static void prepare_io(struct fx *f, const struct op *op)
{
	switch (op->src) {
	case S_PIPE:
		fx_source(f, ZK_PIPE);
		break;
	case S_SOCK:
		fx_source(f, ZK_UNIX);
		break;
	case S_FILE:
		fx_file_source(f);
		if (!(op->flags & OP_OFF))
			f->off = 0;
		break;
	default:
		break;
	}
	switch (op->dst) {
	case D_PIPE:
		fx_dest(f, ZK_PIPE);
		break;
	case D_SOCK:
		fx_dest(f, ZK_UNIX);
		break;
	case D_FILE:
	case D_FILE_OFF:
		fx_dest(f, ZK_FILE);
		f->off = 0;
		break;
	default:
		break;
	}
}

/* One operation on one layout in one mode: walks N until no fault is reached. */
static void walk(size_t oi, enum layout layout, size_t mode)
{
	const struct op *op = &ops[oi];
	bool verbose = getenv("FT_VERBOSE") != NULL;

	cur_op = op;
	for (unsigned long n = 1;; n++) {
		struct fx f;

		zbl_pool_flush();
		int fds_before = zk_fd_count();
		uint64_t live_before = zk_stats().pipes_live;

		if (n > WALK_MAX)
			fail_msg("%s on %s lists, %s: still reaching faults after %d calls",
				 op->name, layout_name[layout], mode_name(mode), WALK_MAX);
		fx_setup(&f, layout);
		prepare_io(&f, op);
		cmp_ref = zt_new();
		assert_rc(zbl_append(cmp_ref, f.m.b, f.m.len), 0);

		if (mode_errno[mode])
			zbl__fault_arm(NULL, n, mode_errno[mode], 1);
		else
			zbl__fault_arm_short(NULL, n);
		long rc = op->act(&f);
		unsigned long injected = zbl__fault_injected();
		const char *first = zbl__fault_first();
		zbl__fault_disarm();

		if (verbose)
			printf("# %-24s %-6s %-7s N=%-3lu rc=%ld (%s)%s%s\n", op->name,
			       layout_name[layout], mode_name(mode), n, rc, zt_errname(rc),
			       injected ? " fault at " : "", injected ? first : "");
		if (rc < 0 && rc < -4095)
			fail_msg("%s returned %ld: not a -errno", op->name, rc);
		snprintf(ft_ctx, sizeof(ft_ctx), "%s on %s lists, %s at eligible call %lu (%s): rc %ld",
			 op->name, layout_name[layout], mode_name(mode), n,
			 injected ? first : "not reached", rc);
		ft_in_run = true;
		bool failed = op->check(&f, rc, injected > 0);
		ft_in_run = false;

		zbl_free(cmp_ref);
		cmp_ref = NULL;
		fx_teardown(&f);
		zbl_pool_flush();
		int fds_after = zk_fd_count();
		if (fds_after != fds_before)
			fail_msg("%s on %s lists, %s at call %lu (%s): %d descriptors before, %d after",
				 op->name, layout_name[layout], mode_name(mode), n,
				 first ? first : "none", fds_before, fds_after);
		if (zk_stats().pipes_live != live_before)
			fail_msg("%s on %s lists, %s at call %lu: %llu pipes live before, %llu after",
				 op->name, layout_name[layout], mode_name(mode), n,
				 (unsigned long long)live_before,
				 (unsigned long long)zk_stats().pipes_live);
		if (zbl__fault_bad_closes())
			fail_msg("%s on %s lists, %s at call %lu (%s): %lu closes of descriptors "
				 "that were not open", op->name, layout_name[layout], mode_name(mode),
				 n, first ? first : "none", zbl__fault_bad_closes());
		total_runs++;
		if (!injected)
			break;
		total_faults += injected;
		points++;
		sites[oi][layout]++;
		count_call(first);
		if (failed)
			total_failures++;
		else
			total_recovered++;
	}
}

static bool op_selected(const struct op *op)
{
	const char *flt = getenv("FT_FILTER");

	return !flt || !*flt || strstr(op->name, flt);
}

enum op_group { G_LIST, G_WRITE, G_READ };

static enum op_group group_of(const struct op *op)
{
	return op->dst != D_NONE ? G_WRITE : op->src != S_NONE ? G_READ : G_LIST;
}

static void run_op_group(enum op_group g)
{
	for (size_t oi = 0; oi < OPS; oi++) {
		if (!op_selected(&ops[oi]) || group_of(&ops[oi]) != g)
			continue;
		zk_watchdog(ops[oi].name, 120);
		for (int l = 0; l < LAYOUTS; l++)
			for (size_t m = 0; m < MODES; m++)
				walk(oi, (enum layout)l, m);
	}
	alarm(0);
}

static void test_every_fault_in_list_operations_is_clean(void **state)
{
	(void)state;
	run_op_group(G_LIST);
}

static void test_every_fault_in_write_outs_is_clean(void **state)
{
	(void)state;
	run_op_group(G_WRITE);
}

static void test_every_fault_in_read_ins_is_clean(void **state)
{
	(void)state;
	run_op_group(G_READ);
}

/*
 * A fault that keeps failing (every call from the Nth on, the way descriptors
 * or memory stay exhausted) still ends each operation in bounded time with a
 * clean result.
 */
static void test_persistent_faults_end_cleanly(void **state)
{
	static const int errs[] = { ENOMEM, EMFILE, EAGAIN, EPERM };

	(void)state;
	zk_watchdog(__func__, 120);
	for (size_t oi = 0; oi < OPS; oi++) {
		if (!op_selected(&ops[oi]))
			continue;
		cur_op = &ops[oi];
		for (int l = 0; l < LAYOUTS; l++) {
			for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
				for (unsigned long n = 1; n < 200; n++) {
					struct fx f;
					int fds_before = zk_fd_count();

					fx_setup(&f, (enum layout)l);
					prepare_io(&f, &ops[oi]);
					cmp_ref = zt_new();
					assert_rc(zbl_append(cmp_ref, f.m.b, f.m.len), 0);
					zbl__fault_arm(NULL, n, errs[e], 0);
					long rc = ops[oi].act(&f);
					unsigned long injected = zbl__fault_injected();
					zbl__fault_disarm();
					snprintf(ft_ctx, sizeof(ft_ctx),
						 "%s on %s lists, %s persistent from call %lu: rc %ld",
						 ops[oi].name, layout_name[l], strerrorname_np(errs[e]),
						 n, rc);
					ft_in_run = true;
					ops[oi].check(&f, rc, injected > 0);
					ft_in_run = false;
					zbl_free(cmp_ref);
					fx_teardown(&f);
					zbl_pool_flush();
					assert_int_equal(zk_fd_count(), fds_before);
					assert_int_equal(zbl__fault_bad_closes(), 0);
					total_runs++;
					if (!injected)
						break;
					total_faults += injected;
				}
			}
		}
	}
	alarm(0);
}

/*
 * Regression (src/kind_pipe.c, read_pipe_consuming): when no scratch pipe can be
 * had, kernel pages are read into memory by emptying the block's own pipe.
 * A read that stopped short followed by a failing one used to leave the bytes
 * already read gone from the pipe, their buffer freed and the block's head
 * past them: the next read of the list "succeeded" with uninitialised memory.
 * Now a failed read is retried, and a block whose bytes are truly gone fails
 * with -EIO.
 */
static void test_failed_consuming_read_loses_no_bytes(void **state)
{
	struct fx f;

	(void)state;
	fx_setup(&f, L_PIPE);
	zbl_pool_flush();
	/* No pipe can be had, the first read is short, the second fails. */
	zbl__fault_arm("pipe2", 1, EMFILE, 0);
	zbl__fault_add_short("read", 1);
	zbl__fault_add("read", 2, EIO, 1);
	int rc = zbl_copy_out(f.bl, 0, f.m.len, outbuf);
	unsigned long injected = zbl__fault_injected();
	zbl__fault_disarm();
	(void)injected;
	if (rc == 0) {
		zk_assert_bytes(outbuf, f.m.b, f.m.len);
	} else {
		assert_size_equal(zbl_length(f.bl), f.m.len);
		/*
		 * The list must still read as it was, or keep failing: never other
		 * bytes. Take the freed copy buffer first, so that a reused one
		 * cannot hide lost bytes by still holding them.
		 */
		void *hold = malloc(20000);
		assert_non_null(hold);
		memset(hold, 0x5A, 20000);
		memset(outbuf, 0xA5, f.m.len);
		rc = zbl_copy_out(f.bl, 0, f.m.len, outbuf);
		free(hold);
		if (rc == 0 && memcmp(outbuf, f.m.b, f.m.len) != 0) {
			size_t k = 0;
			while (outbuf[k] == f.m.b[k])
				k++;
			fx_teardown(&f);
			fail_msg("after a failed consuming read, copy_out succeeded with wrong "
				 "bytes from byte %zu", k);
		}
	}
	fx_teardown(&f);
	zbl_pool_flush();
}

/*
 * Reads all of an L_BIGPIPE list with the first call named @call failing with
 * @err (with @short_first, the first moving half and the second failing);
 * checks that the fault was reached, the bytes, and the descriptors.
 */
static void read_big_pipe_failing(const char *call, int err, bool short_first, const char *what)
{
	struct fx f;

	zbl_pool_flush();
	int fds_before = zk_fd_count();
	fx_setup(&f, L_BIGPIPE);
	uint64_t materialized = zk_stats().materializations;
	memset(outbuf, 0xA5, f.m.len);
	if (short_first) {
		zbl__fault_arm_short(call, 1);
		zbl__fault_add(call, 2, err, 1);
	} else {
		zbl__fault_arm(call, 1, err, 1);
	}
	int rc = zbl_copy_out(f.bl, 0, f.m.len, outbuf);
	unsigned long injected = zbl__fault_injected();
	zbl__fault_disarm();
	if (injected != (short_first ? 2u : 1u))
		fail_msg("%s: %lu faults reached: reading did not take the memfd route", what,
			 injected);
	if (rc != 0)
		fail_msg("%s: copy_out returned %d (%s), expected a fallback to succeed", what,
			 rc, zt_errname(rc));
	zk_assert_bytes_(outbuf, f.m.b, f.m.len, what, __FILE__, __LINE__);
	assert_int_equal(zk_stats().materializations - materialized, 1);
	fx_teardown(&f);
	zbl_pool_flush();
	assert_int_equal(zk_fd_count(), fds_before);
	assert_int_equal(zbl__fault_bad_closes(), 0);
}

/*
 * Each call of the memfd route (src/kind_pipe.c, splice_to_memfd) failing once:
 * the block is still read, with the right bytes, by the next way (fresh
 * memory, or what the memfd did not get read from the scratch pipe), and no
 * descriptor is left open or closed twice.
 */
static void test_memfd_route_failures_fall_back(void **state)
{
	(void)state;
	read_big_pipe_failing("memfd_create", EMFILE, false, "memfd_create fails");
	read_big_pipe_failing("ftruncate", EPERM, false, "ftruncate of the memfd fails");
	read_big_pipe_failing("mmap", ENODEV, false, "mmap of the memfd fails");
	/* Reading starts with a tee into a scratch pipe: the first splice is into the memfd. */
	read_big_pipe_failing("splice", EIO, false, "splice into the memfd fails");
	read_big_pipe_failing("splice", EIO, true, "splice into the memfd stops half-way");
	read_big_pipe_failing("madvise", EINVAL, false, "madvise of the memfd mapping fails");
	read_big_pipe_failing("close", EIO, false, "close of the memfd fails");
}

/*
 * Regression (src/kind_pipe.c, splice_to_memfd): one memfd_create failing with
 * EINVAL used to turn the memfd route off for the rest of the process, as
 * if the kernel had no memfds; only ENOSYS means that now.
 */
static void test_one_failed_memfd_create_keeps_the_route(void **state)
{
	(void)state;
	read_big_pipe_failing("memfd_create", EINVAL, false, "memfd_create fails with EINVAL");
	read_big_pipe_failing("memfd_create", EMFILE, false, "memfd_create after an EINVAL");
}

static int group_setup(void **state)
{
	(void)state;
	zk_pat_fill(pat, sizeof(pat), 4, 0);
	zk_pat_fill(spat, sizeof(spat), 5, 0);
	outbuf = malloc(PAT_BYTES);
	/* Descriptors the library keeps for good (/dev/null) are opened first. */
	if (zbl__devnull() < 0)
		return -1;
	return outbuf ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	free(outbuf);
	if (ft_in_run)
		printf("# FAILED while checking %s\n", ft_ctx);
	printf("# fault injection: %lu runs, %lu faults injected at %lu injection points "
	       "(%lu ended in a clean -errno, %lu succeeded anyway)\n",
	       total_runs, total_faults, points, total_failures, total_recovered);
	printf("# first fault by call:");
	for (size_t i = 0; i < CALLS; i++)
		if (call_hits[i])
			printf(" %s=%lu", call_names[i], call_hits[i]);
	printf("\n# points by operation (mem/pipe/sock/file/shared/bigpipe):\n");
	for (size_t oi = 0; oi < OPS; oi++) {
		if (!op_selected(&ops[oi]))
			continue;
		printf("#   %-26s", ops[oi].name);
		for (int l = 0; l < LAYOUTS; l++)
			printf(" %4lu", sites[oi][l]);
		printf("\n");
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fault_in_list_operations_is_clean),
		cmocka_unit_test(test_every_fault_in_write_outs_is_clean),
		cmocka_unit_test(test_every_fault_in_read_ins_is_clean),
		cmocka_unit_test(test_persistent_faults_end_cleanly),
		cmocka_unit_test(test_failed_consuming_read_loses_no_bytes),
		cmocka_unit_test(test_memfd_route_failures_fall_back),
		cmocka_unit_test(test_one_failed_memfd_create_keeps_the_route),
	};

	zk_apply_filter();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
