/* SPDX-License-Identifier: MIT */
/*
 * Direct I/O (include/zbl.h and API.md, "Direct I/O"; issue 14): a
 * descriptor opened with O_DIRECT takes any offset and length, with the same
 * result on disk as a buffered write. Runs whose address, file offset and
 * length meet the file's alignment (statx STATX_DIOALIGN) go straight from
 * list memory (bytes_direct); the rest go through aligned memory
 * (bytes_staged). Each write scenario runs through both ring engines; the
 * synchronous zbl_splice_to is checked against the same reference.
 *
 * - An aligned 1 MiB list of aligned memory at offset 0: all direct.
 * - Lists of every storage kind at unaligned offsets and lengths, over a
 *   file with other bytes around them: the file equals a buffered reference
 *   written with pwrite, and something was staged.
 * - Reads through the ring from an O_DIRECT file at any offset and length
 *   equal buffered reads.
 * - An object received into an empty list by reads of odd sizes (the ring's
 *   and zbl_read_fd) is laid out so that every byte's address is congruent
 *   to its list offset modulo 4096; written at offset 0 it stages at most
 *   its final partial page.
 *
 * The files are made in ZBL_DIO_DIR (default: the current directory; tmpfs
 * may refuse O_DIRECT). Where O_DIRECT is refused the program prints
 * "skipped: <reason>" and exits 77.
 */
#include "ring_util.h"

#include <linux/stat.h>

static const char *dio_dir;
static size_t dio_mem_align = 4096, dio_off_align = 4096;

/* An unlinked file in dio_dir opened read-write with O_DIRECT (and one without, on the same file). */
static int dio_open(int *buffered)
{
	int fd = open(dio_dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	char path[64];

	if (fd < 0)
		fail_msg("O_TMPFILE | O_DIRECT in %s: %s", dio_dir, strerror(errno));
	if (buffered) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		*buffered = open(path, O_RDWR | O_CLOEXEC);
		assert_true(*buffered >= 0);
	}
	return fd;
}

/* Whether O_DIRECT works in @dir; fills @why otherwise. Learns the alignment. */
static bool dio_probe(const char *dir, char *why, size_t n)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	void *buf = NULL;
	struct statx st;

	if (fd < 0) {
		snprintf(why, n, "O_TMPFILE | O_DIRECT refused in %s: %s", dir, strerror(errno));
		return false;
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &st) == 0 &&
	    (st.stx_mask & STATX_DIOALIGN)) {
		if (!st.stx_dio_offset_align) {
			snprintf(why, n, "statx says %s does not support direct I/O here", dir);
			close(fd);
			return false;
		}
		dio_mem_align = st.stx_dio_mem_align;
		dio_off_align = st.stx_dio_offset_align;
	}
	if (posix_memalign(&buf, 4096, 4096) != 0)
		abort();
	memset(buf, 'x', 4096);
	ssize_t w = pwrite(fd, buf, 4096, 0);
	free(buf);
	close(fd);
	if (w != 4096) {
		snprintf(why, n, "an aligned 4 KiB O_DIRECT write in %s failed: %s", dir,
			 w < 0 ? strerror(errno) : "short");
		return false;
	}
	return true;
}

/* Writes @bl to @fd at @off through @ring, or with zbl_splice_to when ring is NULL. */
static ssize_t dio_write(zbl_ring_t *ring, zbl_t *bl, int fd, int64_t off)
{
	if (!ring) {
		int64_t o = off;
		ssize_t r = zbl_splice_to(bl, fd, &o, 0);
		if (r >= 0)
			assert_int_equal(o, off + r);
		return r;
	}
	struct zr_op op = { 0 };
	assert_rc(ZR_CALL(zbl_ring_write(ring, bl, fd, off, 0, zr_cb, &op)), 0);
	zr_pump(ring, &op, 1, NULL, 0, 20000, "direct write");
	zr_assert_once(&op, ring, "direct write");
	return op.result;
}

static void print_dio_stats(const char *what)
{
	struct zbl_stats s = zk_stats();

	printf("# %s: bytes_direct=%llu bytes_staged=%llu bytes_copied_out=%llu "
	       "bytes_spliced_out=%llu fallbacks=%llu\n", what,
	       (unsigned long long)s.bytes_direct, (unsigned long long)s.bytes_staged,
	       (unsigned long long)s.bytes_copied_out, (unsigned long long)s.bytes_spliced_out,
	       (unsigned long long)s.fallbacks);
	fflush(stdout);
}

/* ------------------------------------------------------------------------ */

/* An aligned 1 MiB list of aligned memory written at offset 0 goes all direct. */
static void aligned_all_direct(zbl_ring_t *r)
{
	size_t len = ZK_MiB;
	unsigned char *buf = NULL;
	struct zr_release rel = { 0 };
	int buffered, fd = dio_open(&buffered);
	zbl_t *bl = zt_new();

	assert_int_equal(posix_memalign((void **)&buf, 4096, len), 0);
	zk_pat_fill(buf, len, 71, 0);
	assert_rc(zbl_append_ref(bl, buf, len, zr_release_cb, &rel), 0);
	zbl_stats_reset();
	assert_rc(dio_write(r, bl, fd, 0), len);
	print_dio_stats(r ? "aligned 1 MiB at offset 0 (ring)" : "aligned 1 MiB at offset 0 (zbl_splice_to)");
	struct zbl_stats s = zk_stats();
	assert_size_equal(s.bytes_direct, len);
	assert_size_equal(s.bytes_staged, 0);
	assert_size_equal(s.fallbacks, 0);
	assert_file_bytes(buffered, buf, len);
	zbl_free(bl);
	if (r)
		zbl_ring_free(r);
	assert_int_equal(atomic_load(&rel.calls), 1);
	free(buf);
	close(fd);
	close(buffered);
}

static void test_aligned_1mib_from_aligned_memory_at_offset_0_goes_all_direct(void **state)
{
	zk_begin(30);
	aligned_all_direct(zr_open(state));
}

static void test_sync_splice_to_aligned_1mib_goes_all_direct(void **state)
{
	(void)state;
	zk_begin(30);
	aligned_all_direct(NULL);
}

/*
 * Writes of lists mixing memory, borrowed memory, file ranges and pipe pages
 * at unaligned offsets and lengths (and a few aligned ones), one after the
 * other, over a 2 MiB file of other bytes: the O_DIRECT file ends equal to a
 * buffered file that got the same bytes with pwrite. Something is staged;
 * a write at an odd offset cannot go straight from memory.
 */
static void unaligned_writes(zbl_ring_t *r)
{
	static const struct { int64_t off; size_t len; } cases[] = {
		{ 1, 1 }, { 1000, 100 }, { 511, 2 }, { 4095, 4097 }, { 4096 + 7, 65536 + 13 },
		{ 0, 4096 }, { 8192, 300000 }, { 3, 512 }, { 512, 512 }, { 1048576 - 3, 300001 },
		{ 2 * 1048576 - 10, 20 }, /* grows the file by 10 */ { 12345, 777777 },
	};
	size_t ncases = sizeof(cases) / sizeof(cases[0]), base = 2 * ZK_MiB;
	uint64_t rng = 0xD10;
	int buffered, fd = dio_open(&buffered), ref = zt_temp_fd(0);
	unsigned char *init = zk_pat_alloc(base, 72);
	struct zr_release rel = { 0 };
	size_t nrefs = 0;
	unsigned char *datas[32];

	zt_write_full(buffered, init, base);
	assert_int_equal(pwrite(ref, init, base, 0), (ssize_t)base);
	assert_int_equal(fsync(buffered), 0);
	zbl_stats_reset();
	for (size_t i = 0; i < ncases; i++) {
		size_t len = cases[i].len;
		unsigned char *d = malloc(len);
		assert_non_null(d);
		zt_fill_random(d, len, zt_rand(&rng));
		datas[i] = d;
		zbl_t *bl = i % 3 == 0 ? zr_mixed_list(d, len, &rng, ZR_MEM | ZR_REF, 100000, &rel,
						       &nrefs)
				       : zr_mixed_list(d, len, &rng, ZR_ALL, 50000, &rel, &nrefs);
		ssize_t w = dio_write(r, bl, fd, cases[i].off);
		if (w != (ssize_t)len)
			fail_msg("O_DIRECT write of %zu bytes at offset %lld returned %zd (%s)", len,
				 (long long)cases[i].off, w, zt_errname(w));
		assert_int_equal(pwrite(ref, d, len, cases[i].off), (ssize_t)len);
		zbl_free(bl);
	}
	print_dio_stats(r ? "unaligned O_DIRECT writes (ring)" : "unaligned O_DIRECT writes (zbl_splice_to)");
	struct zbl_stats s = zk_stats();
	if (s.bytes_staged == 0)
		fail_msg("writes at offsets like 1, 1000 and 4095 staged nothing (bytes_staged 0)");
	size_t rlen, dlen;
	unsigned char *want = zt_file_contents(ref, &rlen);
	unsigned char *got = zt_file_contents(buffered, &dlen);
	if (dlen != rlen)
		fail_msg("the O_DIRECT file holds %zu bytes, the buffered reference %zu", dlen, rlen);
	zk_assert_bytes(got, want, rlen);
	free(want);
	free(got);
	if (r)
		zbl_ring_free(r);
	assert_size_equal(atomic_load(&rel.calls), nrefs);
	for (size_t i = 0; i < ncases; i++)
		free(datas[i]);
	free(init);
	close(fd);
	close(buffered);
	close(ref);
}

static void test_unaligned_direct_writes_equal_a_buffered_reference(void **state)
{
	zk_begin(60);
	unaligned_writes(zr_open(state));
}

static void test_sync_splice_to_unaligned_direct_writes_equal_a_buffered_reference(void **state)
{
	(void)state;
	zk_begin(60);
	unaligned_writes(NULL);
}

/*
 * An all-memory list written at an offset that is not a multiple of the
 * file's alignment: every byte is accounted for, direct or staged, and some
 * are staged. Written at a 4096-aligned offset from a 4096-aligned start, the
 * same bytes less a partial last block go direct.
 */
static void test_direct_and_staged_bytes_split_as_the_alignment_says(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);
	size_t len = 256 * ZK_KiB + 100;
	unsigned char *buf = NULL;
	int buffered, fd = dio_open(&buffered);
	zbl_t *bl = zt_new();

	assert_int_equal(posix_memalign((void **)&buf, 4096, len), 0);
	zk_pat_fill(buf, len, 73, 0);
	assert_rc(zbl_append_ref(bl, buf, len, NULL, NULL), 0);

	zbl_stats_reset();
	assert_rc(dio_write(r, bl, fd, 0), len);
	struct zbl_stats s = zk_stats();
	print_dio_stats("256 KiB + 100 at offset 0");
	/* Everything but the last partial block is aligned in memory, offset and length. */
	size_t tail = len % dio_off_align;
	assert_size_equal(s.bytes_direct, len - tail);
	if (s.bytes_staged < tail || s.bytes_staged > dio_off_align)
		fail_msg("bytes_staged %llu for a %zu-byte tail (alignment %zu)",
			 (unsigned long long)s.bytes_staged, tail, dio_off_align);

	zbl_stats_reset();
	assert_rc(dio_write(r, bl, fd, 1000), len);
	s = zk_stats();
	print_dio_stats("256 KiB + 100 at offset 1000");
	if (s.bytes_staged == 0)
		fail_msg("a write at offset 1000 (alignment %zu) staged nothing", dio_off_align);
	if (s.bytes_direct + s.bytes_staged < len)
		fail_msg("bytes_direct %llu + bytes_staged %llu do not cover the %zu bytes written",
			 (unsigned long long)s.bytes_direct, (unsigned long long)s.bytes_staged, len);
	unsigned char *want = calloc(1, len + 1000);
	assert_non_null(want);
	memcpy(want, buf, 1000);
	memcpy(want + 1000, buf, len);
	assert_file_bytes(buffered, want, len + 1000);
	free(want);
	zbl_ring_free(r);
	zbl_free(bl);
	free(buf);
	close(fd);
	close(buffered);
}

/* Ring reads from an O_DIRECT file at any offset and length equal buffered reads. */
static void test_direct_reads_at_any_offset_and_length_equal_buffered_reads(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);
	size_t size = ZK_MiB + 333;
	int buffered, fd = dio_open(&buffered);
	unsigned char *data = zk_pat_alloc(size, 74);
	static const struct { int64_t off; size_t len; } cases[] = {
		{ 0, 4096 }, { 1, 1 }, { 1000, 100 }, { 4095, 4097 }, { 512, 65536 },
		{ 7, 300000 }, { (int64_t)ZK_MiB - 1, 500 }, /* past the end: short */
		{ (int64_t)ZK_MiB + 333, 10 }, /* at the end: 0 */ { 0, 2 * ZK_MiB },
	};

	zt_write_full(buffered, data, size);
	assert_int_equal(fsync(buffered), 0);
	zbl_stats_reset();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zr_op op = { 0 };
		zbl_t *bl = zt_new();
		size_t left = (size_t)cases[i].off < size ? size - (size_t)cases[i].off : 0;
		size_t want = cases[i].len < left ? cases[i].len : left;
		assert_rc(ZR_CALL(zbl_ring_read(r, bl, fd, cases[i].off, cases[i].len, 0, zr_cb, &op)),
			  0);
		zr_pump(r, &op, 1, NULL, 0, 20000, "direct read");
		zr_assert_once(&op, r, "direct read");
		if (op.result != (ssize_t)want)
			fail_msg("O_DIRECT read of %zu at %lld returned %zd (%s), expected %zu",
				 cases[i].len, (long long)cases[i].off, op.result,
				 zt_errname(op.result), want);
		assert_list_bytes(bl, data + (size_t)cases[i].off, want);
		zbl_free(bl);
	}
	print_dio_stats("O_DIRECT reads");
	/*
	 * Unaligned reads read the aligned blocks around the window into list
	 * memory and keep the window: direct I/O, nothing copied twice, so
	 * nothing staged (zbl_read_fd's contract in zbl.h).
	 */
	assert_true(zk_stats().bytes_direct > 0);
	assert_int_equal(zk_stats().bytes_staged, 0);
	zbl_ring_free(r);
	free(data);
	close(fd);
	close(buffered);
}

/*
 * Every memory byte's address is congruent to its list offset modulo 4096
 * (API.md, "Direct I/O"): checked through the iterator, which reports each
 * segment's memory where it is.
 */
static void assert_laid_out_for_direct_io(const zbl_t *bl, const char *what)
{
	zbl_iter_t it;
	const char *p;
	size_t got, off = 0;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	while ((got = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)) > 0) {
		if (((uintptr_t)p & 4095) != (off & 4095))
			fail_msg("%s: bytes at list offset %zu (%zu of them) are at address %p, "
				 "%zu mod 4096, not %zu", what, off, got, (const void *)p,
				 (size_t)((uintptr_t)p & 4095), off & 4095);
		off += got;
	}
	assert_size_equal(off, zbl_length(bl));
}

/* The pieces an object arrives in: odd sizes, as a network delivers them. */
static const size_t piece_sizes[] = { 1, 1447, 2896, 100, 65536, 7, 4096, 4095, 131072,
				      33333, 1, 150000, 12345 };

static size_t object_size(void)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(piece_sizes) / sizeof(piece_sizes[0]); i++)
		n += piece_sizes[i];
	return n;
}

/*
 * Receives an object into an empty list, one piece per read: the test sends
 * a piece, waits until it has arrived, and reads it with one zbl_ring_read
 * (ring) or zbl_read_fd (NULL ring, non-blocking socket).
 */
static zbl_t *receive_object(zbl_ring_t *r, const unsigned char *obj)
{
	int sv[2];
	size_t off = 0;
	zbl_t *bl = zt_new();

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int big = 4 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (!r)
		zk_set_nonblock(sv[0], true);
	for (size_t i = 0; i < sizeof(piece_sizes) / sizeof(piece_sizes[0]); i++) {
		size_t n = piece_sizes[i];
		zt_write_full(sv[1], obj + off, n);
		zr_wait_inq(sv[0], (int)n, 5000);
		ssize_t got;
		if (r) {
			struct zr_op op = { 0 };
			assert_rc(ZR_CALL(zbl_ring_read(r, bl, sv[0], -1, n + 100000, 0, zr_cb, &op)),
				  0);
			zr_pump(r, &op, 1, NULL, 0, 5000, "ring read of a piece");
			zr_assert_once(&op, r, "ring read of a piece");
			got = op.result;
		} else {
			got = zbl_read_fd(bl, sv[0], n + 100000);
		}
		if (got != (ssize_t)n)
			fail_msg("reading piece %zu (%zu bytes waiting) returned %zd (%s)", i, n, got,
				 zt_errname(got));
		off += n;
	}
	close(sv[0]);
	close(sv[1]);
	assert_list_bytes(bl, obj, off);
	return bl;
}

static void received_object_stages_at_most_its_last_page(zbl_ring_t *r)
{
	size_t len = object_size();
	unsigned char *obj = zk_pat_alloc(len, 75);
	int buffered, fd = dio_open(&buffered);
	zbl_t *bl = receive_object(r, obj);

	assert_laid_out_for_direct_io(bl, r ? "object received by zbl_ring_read"
					    : "object received by zbl_read_fd");
	zbl_stats_reset();
	assert_rc(dio_write(r, bl, fd, 0), len);
	struct zbl_stats s = zk_stats();
	printf("# object of %zu bytes (%zu past the last full page): bytes_direct=%llu "
	       "bytes_staged=%llu\n", len, len % 4096, (unsigned long long)s.bytes_direct,
	       (unsigned long long)s.bytes_staged);
	if (s.bytes_staged > 4096)
		fail_msg("a received object written at offset 0 staged %llu bytes; at most its final "
			 "partial page (%zu bytes) may be", (unsigned long long)s.bytes_staged,
			 len % 4096);
	assert_true(s.bytes_direct >= len - 4096);
	assert_file_bytes(buffered, obj, len);
	zbl_free(bl);
	if (r)
		zbl_ring_free(r);
	free(obj);
	close(fd);
	close(buffered);
}

static void test_an_object_received_by_ring_reads_stages_at_most_its_last_page(void **state)
{
	zk_begin(30);
	received_object_stages_at_most_its_last_page(zr_open(state));
}

static void test_an_object_received_by_zbl_read_fd_stages_at_most_its_last_page(void **state)
{
	(void)state;
	zk_begin(30);
	received_object_stages_at_most_its_last_page(NULL);
}

/* Writes then fdatasync through the ring: the data is there after the sync's callback. */
static void test_direct_writes_then_fdatasync_complete_in_order(void **state)
{
	zk_begin(30);
	zbl_ring_t *r = zr_open(state);
	int buffered, fd = dio_open(&buffered);
	enum { N = 6 };
	struct zr_op w[N] = { { 0 } }, sync = { 0 };
	size_t piece = 100000, total = piece * N;
	unsigned char *data = zk_pat_alloc(total, 76);

	/* Preallocated space: the case the direct ingest uses. */
	assert_int_equal(fallocate(buffered, 0, 0, (off_t)total), 0);
	for (int i = 0; i < N; i++) {
		zbl_t *bl = zt_new();
		assert_rc(zbl_append(bl, data + i * piece, piece), 0);
		assert_rc(ZR_CALL(zbl_ring_write(r, bl, fd, (int64_t)(i * piece), ZBL_DRAIN, zr_cb,
						 &w[i])), 0);
		zbl_free(bl);
	}
	assert_rc(ZR_CALL(zbl_ring_fsync(r, fd, ZBL_DATASYNC, zr_cb, &sync)), 0);
	zr_pump(r, &sync, 1, NULL, 0, 20000, "fdatasync after direct writes");
	for (int i = 0; i < N; i++) {
		zr_assert_result(&w[i], r, piece, "direct write");
		if (w[i].order > sync.order)
			fail_msg("write %d's callback ran after the fdatasync queued behind it", i);
	}
	zr_assert_result(&sync, r, 0, "fdatasync");
	assert_file_bytes(buffered, data, total);
	zbl_ring_free(r);
	free(data);
	close(fd);
	close(buffered);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		ZR_TESTS(test_aligned_1mib_from_aligned_memory_at_offset_0_goes_all_direct),
		cmocka_unit_test(test_sync_splice_to_aligned_1mib_goes_all_direct),
		ZR_TESTS(test_unaligned_direct_writes_equal_a_buffered_reference),
		cmocka_unit_test(test_sync_splice_to_unaligned_direct_writes_equal_a_buffered_reference),
		ZR_TESTS(test_direct_and_staged_bytes_split_as_the_alignment_says),
		ZR_TESTS(test_direct_reads_at_any_offset_and_length_equal_buffered_reads),
		ZR_TESTS(test_an_object_received_by_ring_reads_stages_at_most_its_last_page),
		cmocka_unit_test(test_an_object_received_by_zbl_read_fd_stages_at_most_its_last_page),
		ZR_TESTS(test_direct_writes_then_fdatasync_complete_in_order),
	};
	char why[256];

	(void)argc;
	(void)argv;
	dio_dir = getenv("ZBL_DIO_DIR");
	if (!dio_dir || !*dio_dir)
		dio_dir = ".";
	if (!dio_probe(dio_dir, why, sizeof(why))) {
		printf("test_ring_direct: skipped: %s (set ZBL_DIO_DIR to a directory on a "
		       "filesystem with direct I/O)\n", why);
		return ZBL_TEST_SKIP;
	}
	printf("# direct I/O in %s: memory alignment %zu, offset alignment %zu\n", dio_dir,
	       dio_mem_align, dio_off_align);
	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
