/* SPDX-License-Identifier: MIT */
/*
 * Reading a list: zbl_copy_out, zbl_c_str, zbl_rebuild, zbl_rebuild_aligned,
 * zbl_cmp and zbl_contents_equal.
 */
#include "zbl_test.h"

/* Builds a list of borrowed slices [off, off+len) of @base, one segment each. */
static zbl_t *slices_of(const char *base, const size_t (*sl)[2], size_t n)
{
	zbl_t *bl = zt_new();

	for (size_t i = 0; i < n; i++)
		assert_rc(zbl_append_ref(bl, base + sl[i][0], sl[i][1], NULL, NULL), 0);
	assert_size_equal(zbl_segments(bl), n);
	return bl;
}

/* Asserts that every segment of @bl starts at an address aligned to @align. */
#define assert_all_segments_aligned(bl, align) \
	zt_assert_aligned((bl), (align), __FILE__, __LINE__)

static void zt_assert_aligned(const zbl_t *bl, size_t align, const char *file, int line)
{
	zbl_iter_t it;
	const char *p;
	size_t got, seg = 0;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	while ((got = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)) > 0) {
		if ((uintptr_t)p % align != 0)
			fail_msg("%s:%d: segment %zu at %p (length %zu) is not aligned to %zu",
				 file, line, seg, (const void *)p, got, align);
		seg++;
	}
	assert_size_equal(seg, zbl_segments(bl));
}

static void test_copy_out_reads_a_range_spanning_segments(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI");
	char buf[16] = { 0 };

	assert_rc(zbl_copy_out(bl, 2, 5, buf), 0);
	assert_memory_equal(buf, "CDEFG", 5);
	assert_rc(zbl_copy_out(bl, 0, 9, buf), 0);
	assert_memory_equal(buf, "ABCDEFGHI", 9);
	assert_rc(zbl_copy_out(bl, 8, 1, buf), 0);
	assert_int_equal(buf[0], 'I');
	zbl_free(bl);
}

static void test_copy_out_of_zero_bytes_is_allowed_up_to_the_end(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC");
	char buf[1] = { 'z' };

	assert_rc(zbl_copy_out(bl, 3, 0, buf), 0);
	assert_rc(zbl_copy_out(bl, 0, 0, NULL), 0);
	assert_int_equal(buf[0], 'z');
	zbl_free(bl);
}

static void test_copy_out_out_of_range_writes_nothing(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF");
	char buf[16];

	memset(buf, '#', sizeof(buf));
	assert_rc(zbl_copy_out(bl, 4, 3, buf), -ERANGE);
	assert_rc(zbl_copy_out(bl, 0, 7, buf), -ERANGE);
	assert_rc(zbl_copy_out(bl, 7, 0, buf), -ERANGE);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], '#');
	zbl_free(bl);
}

static void test_copy_out_of_empty_list(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	char c;

	assert_rc(zbl_copy_out(bl, 0, 0, &c), 0);
	assert_rc(zbl_copy_out(bl, 0, 1, &c), -ERANGE);
	zbl_free(bl);
}

static void test_c_str_of_empty_list_is_null_with_errno_zero(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	errno = EBADF;
	assert_null(zbl_c_str(bl));
	assert_int_equal(errno, 0);
	zbl_free(bl);
}

static void test_c_str_joins_segments_into_one(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("A", "BC", "DEF");
	const char *p;

	p = zbl_c_str(bl);
	assert_non_null(p);
	assert_memory_equal(p, "ABCDEF", 6);
	assert_size_equal(zbl_segments(bl), 1);
	assert_true(zbl_is_contiguous(bl));
	assert_list_str(bl, "ABCDEF");
	/* A second call on the now-contiguous list returns the same bytes. */
	assert_ptr_equal(zbl_c_str(bl), p);
	zbl_free(bl);
}

static void test_c_str_of_single_memory_segment_does_not_copy(void **state)
{
	(void)state;
	static const char mem[] = "already contiguous";
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, mem, strlen(mem), NULL, NULL), 0);
	assert_ptr_equal(zbl_c_str(bl), mem);
	assert_size_equal(zbl_segments(bl), 1);
	zbl_free(bl);
}

static void test_c_str_does_not_change_lists_sharing_the_segments(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("AB", "CD", "EF"), *other = zt_new();
	const char *p[3];

	assert_rc(zbl_append_list(other, bl), 0);
	assert_non_null(zbl_c_str(bl));
	assert_size_equal(zbl_segments(other), 3);
	assert_size_equal(zt_runs(other, p, NULL, 3), 3);
	assert_memory_equal(p[0], "AB", 2);
	assert_list_str(other, "ABCDEF");
	zbl_free(bl);
	zbl_free(other);
}

static void test_c_str_releases_borrowed_memory_it_no_longer_needs(void **state)
{
	(void)state;
	static const char mem[] = "borrowed";
	atomic_int released = 0;
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, mem, 8, zt_count_release, &released), 0);
	assert_rc(zbl_append(bl, "+lib", 4), 0);
	assert_non_null(zbl_c_str(bl));
	assert_int_equal(atomic_load(&released), 1);
	assert_list_str(bl, "borrowed+lib");
	zbl_free(bl);
	assert_int_equal(atomic_load(&released), 1);
}

static void test_rebuild_makes_one_segment_with_same_contents(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("one", "two", "three", "four");

	assert_rc(zbl_rebuild(bl), 0);
	assert_size_equal(zbl_segments(bl), 1);
	assert_list_str(bl, "onetwothreefour");
	zbl_free(bl);
}

static void test_rebuild_of_single_memory_segment_keeps_it(void **state)
{
	(void)state;
	static const char mem[] = "single";
	zbl_t *bl = zt_new();
	const char *p;

	assert_rc(zbl_append_ref(bl, mem, 6, NULL, NULL), 0);
	assert_rc(zbl_rebuild(bl), 0);
	assert_size_equal(zt_runs(bl, &p, NULL, 1), 1);
	assert_ptr_equal(p, mem);
	zbl_free(bl);
}

static void test_rebuild_of_empty_list_succeeds(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_rc(zbl_rebuild(bl), 0);
	assert_size_equal(zbl_length(bl), 0);
	assert_rc(zbl_rebuild_aligned(bl, 64), 0);
	assert_size_equal(zbl_length(bl), 0);
	zbl_free(bl);
}

static void test_rebuild_of_large_list_keeps_bytes(void **state)
{
	(void)state;
	size_t len = 1 << 20;
	unsigned char *data = zt_random_bytes(len, 5);
	zbl_t *bl = zt_new();

	for (size_t off = 0; off < len; off += 4096)
		assert_rc(zbl_append_ref(bl, data + off, 4096, NULL, NULL), 0);
	assert_rc(zbl_rebuild(bl), 0);
	assert_size_equal(zbl_segments(bl), 1);
	assert_list_bytes(bl, data, len);
	zbl_free(bl);
	free(data);
}

static void test_rebuild_aligned_aligns_every_segment_for_each_power_of_two(void **state)
{
	(void)state;
	char *base = aligned_alloc(8192, 16384);
	static const size_t sl[][2] = {
		{ 1, 1 }, { 3, 100 }, { 200, 64 }, { 4096, 4096 }, { 8193, 33 },
		{ 9000, 700 }, { 12288, 4095 },
	};

	assert_non_null(base);
	zt_fill_random(base, 16384, 9);
	for (size_t align = 1; align <= 8192; align <<= 1) {
		zbl_t *bl = slices_of(base, sl, sizeof(sl) / sizeof(sl[0]));
		unsigned char *before = zt_flat(bl);
		size_t len = zbl_length(bl);

		assert_rc(zbl_rebuild_aligned(bl, align), 0);
		assert_all_segments_aligned(bl, align);
		assert_list_bytes(bl, before, len);
		free(before);
		zbl_free(bl);
	}
	free(base);
}

static void test_rebuild_aligned_keeps_aligned_whole_multiple_segments(void **state)
{
	(void)state;
	enum { ALIGN = 32 };
	char *base = aligned_alloc(4096, 4096);
	/*
	 * Ceph's rebuild_aligned_size_and_memory layout: an unaligned byte and an
	 * aligned 63-byte piece form a run to merge; an aligned 64-byte segment
	 * must be kept as it is; then another run to merge.
	 */
	static const size_t sl[][2] = {
		{ 1, 1 }, { 64, 63 }, { 128, 64 }, { 257, 1 }, { 320, 63 },
	};
	zbl_t *bl;
	unsigned char *before;
	const char *ptrs[8];
	size_t lens[8], n, kept = 0;

	assert_non_null(base);
	zt_fill_random(base, 4096, 10);
	bl = slices_of(base, sl, 5);
	before = zt_flat(bl);
	assert_rc(zbl_rebuild_aligned(bl, ALIGN), 0);
	assert_all_segments_aligned(bl, ALIGN);
	assert_list_bytes(bl, before, 192);
	n = zt_runs(bl, ptrs, lens, 8);
	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++)
		if (ptrs[i] == base + 128 && lens[i] == 64)
			kept++;
	assert_size_equal(kept, 1);
	free(before);
	zbl_free(bl);
	free(base);
}

static void test_rebuild_aligned_of_aligned_list_changes_nothing(void **state)
{
	(void)state;
	char *base = aligned_alloc(4096, 4096);
	static const size_t sl[][2] = { { 0, 512 }, { 1024, 512 }, { 2048, 100 } };
	zbl_t *bl;
	struct zt_snap s;

	assert_non_null(base);
	zt_fill_random(base, 4096, 12);
	bl = slices_of(base, sl, 3);
	zt_snap_take(&s, bl);
	assert_rc(zbl_rebuild_aligned(bl, 512), 0);
	assert_unchanged(&s, bl);
	zbl_free(bl);
	free(base);
}

static void test_rebuild_aligned_fixes_offset_into_aligned_block(void **state)
{
	(void)state;
	enum { ALIGN = 32 };
	char *base = aligned_alloc(4096, 4096);
	zbl_t *bl = zt_new();

	/* Ceph's is_aligned case: an aligned buffer viewed from offset 1. */
	assert_non_null(base);
	zt_fill_random(base, 4096, 13);
	assert_rc(zbl_append_ref(bl, base + 1, ALIGN, NULL, NULL), 0);
	assert_rc(zbl_rebuild_aligned(bl, ALIGN), 0);
	assert_all_segments_aligned(bl, ALIGN);
	assert_list_bytes(bl, base + 1, ALIGN);
	assert_rc(zbl_rebuild_aligned(bl, 4096), 0);
	assert_all_segments_aligned(bl, 4096);
	assert_list_bytes(bl, base + 1, ALIGN);
	zbl_free(bl);
	free(base);
}

static void test_rebuild_aligned_works_on_appended_library_memory(void **state)
{
	(void)state;
	zbl_t *bl = zt_new(), *head = zt_new();
	unsigned char data[10000];

	zt_fill_random(data, sizeof(data), 14);
	assert_rc(zbl_append(bl, data, 7), 0);
	assert_rc(zbl_append(bl, data + 7, sizeof(data) - 7), 0);
	/* Drop 3 bytes from the front so the first segment starts unaligned. */
	assert_rc(zbl_splice(bl, 0, 3, head), 0);
	assert_rc(zbl_rebuild_aligned(bl, 4096), 0);
	assert_all_segments_aligned(bl, 4096);
	assert_list_bytes(bl, data + 3, sizeof(data) - 3);
	assert_list_bytes(head, data, 3);
	zbl_free(bl);
	zbl_free(head);
}

static void test_rebuild_aligned_rejects_non_power_of_two(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("abc", "def");
	static const size_t bad[] = { 0, 3, 6, 24, 100, 4097, SIZE_MAX };
	struct zt_snap s;

	zt_snap_take(&s, bl);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rc(zbl_rebuild_aligned(bl, bad[i]), -EINVAL);
	assert_unchanged(&s, bl);
	zbl_free(bl);
}

static void test_rebuild_aligned_does_not_change_sharing_lists(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("a", "bc", "def"), *other = zt_new();
	struct zt_snap s;

	assert_rc(zbl_append_list(other, bl), 0);
	zt_snap_take(&s, other);
	assert_rc(zbl_rebuild_aligned(bl, 64), 0);
	assert_all_segments_aligned(bl, 64);
	assert_unchanged(&s, other);
	zbl_free(bl);
	zbl_free(other);
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

static void test_cmp_orders_like_memcmp_with_prefix_first(void **state)
{
	(void)state;
	zbl_t *a = ZT_LIST("A"), *ab = ZT_LIST("AB"), *ac = ZT_LIST("AC");
	zbl_t *ab2 = ZT_LIST("A", "B");

	assert_int_equal(sign(zbl_cmp(a, ab)), -1);
	assert_int_equal(sign(zbl_cmp(ab, a)), 1);
	assert_int_equal(sign(zbl_cmp(ac, ab)), 1);
	assert_int_equal(sign(zbl_cmp(ab, ac)), -1);
	assert_int_equal(zbl_cmp(ab, ab), 0);
	assert_int_equal(zbl_cmp(ab, ab2), 0);
	assert_int_equal(sign(zbl_cmp(ab2, ac)), -1);
	zbl_free(a);
	zbl_free(ab);
	zbl_free(ac);
	zbl_free(ab2);
}

static void test_cmp_compares_bytes_as_unsigned(void **state)
{
	(void)state;
	static const unsigned char hi[] = { 0x80 }, lo[] = { 0x7f };
	zbl_t *a = zt_new(), *b = zt_new();

	assert_rc(zbl_append(a, hi, 1), 0);
	assert_rc(zbl_append(b, lo, 1), 0);
	assert_int_equal(sign(zbl_cmp(a, b)), 1);
	assert_int_equal(sign(zbl_cmp(b, a)), -1);
	zbl_free(a);
	zbl_free(b);
}

static void test_cmp_of_empty_list_sorts_first(void **state)
{
	(void)state;
	zbl_t *e1 = zt_new(), *e2 = zt_new(), *x = ZT_LIST("\x01");
	static const unsigned char zero = 0;
	zbl_t *z = zt_new();

	assert_rc(zbl_append(z, &zero, 1), 0);
	assert_int_equal(zbl_cmp(e1, e2), 0);
	assert_int_equal(sign(zbl_cmp(e1, x)), -1);
	assert_int_equal(sign(zbl_cmp(x, e1)), 1);
	assert_int_equal(sign(zbl_cmp(e1, z)), -1);
	assert_int_equal(sign(zbl_cmp(z, e1)), 1);
	zbl_free(e1);
	zbl_free(e2);
	zbl_free(x);
	zbl_free(z);
}

static void test_cmp_ignores_segmentation(void **state)
{
	(void)state;
	zbl_t *a = ZT_LIST("abc", "defg", "h", "ij");
	zbl_t *b = ZT_LIST("a", "bcdefghi", "j");
	zbl_t *c = ZT_LIST("a", "bcdefghi", "k");
	zbl_t *d = ZT_LIST("abcdefgh", "i", "j", "");

	assert_int_equal(zbl_cmp(a, b), 0);
	assert_int_equal(sign(zbl_cmp(a, c)), -1);
	assert_int_equal(sign(zbl_cmp(c, b)), 1);
	assert_int_equal(zbl_cmp(d, a), 0);
	zbl_free(a);
	zbl_free(b);
	zbl_free(c);
	zbl_free(d);
}

static void test_cmp_treats_null_as_smallest(void **state)
{
	(void)state;
	zbl_t *e = zt_new(), *x = ZT_LIST("x");

	assert_int_equal(zbl_cmp(NULL, NULL), 0);
	assert_int_equal(sign(zbl_cmp(NULL, x)), -1);
	assert_int_equal(sign(zbl_cmp(x, NULL)), 1);
	assert_int_equal(sign(zbl_cmp(NULL, e)), -1);
	assert_int_equal(sign(zbl_cmp(e, NULL)), 1);
	zbl_free(e);
	zbl_free(x);
}

static void test_contents_equal_ignores_segmentation(void **state)
{
	(void)state;
	zbl_t *a = ZT_LIST("ab", "cdef"), *b = ZT_LIST("abc", "d", "ef");
	zbl_t *c = ZT_LIST("abcdeg"), *d = ZT_LIST("abcde");
	zbl_t *e1 = zt_new(), *e2 = zt_new();

	assert_true(zbl_contents_equal(a, b));
	assert_true(zbl_contents_equal(a, a));
	assert_false(zbl_contents_equal(a, c));
	assert_false(zbl_contents_equal(a, d));
	assert_false(zbl_contents_equal(d, a));
	assert_true(zbl_contents_equal(e1, e2));
	assert_false(zbl_contents_equal(e1, a));
	assert_true(zbl_contents_equal(NULL, NULL));
	assert_false(zbl_contents_equal(NULL, e1));
	assert_false(zbl_contents_equal(a, NULL));
	zbl_free(a);
	zbl_free(b);
	zbl_free(c);
	zbl_free(d);
	zbl_free(e1);
	zbl_free(e2);
}

static void test_reading_file_segments_materializes_them_once(void **state)
{
	(void)state;
	static const char text[] = "file-backed bytes, read lazily";
	int fd = zt_temp_file(text, sizeof(text) - 1);
	zbl_t *bl = zt_new();
	const char *p;

	assert_rc(zbl_append_file(bl, fd, 5, 20), 0);
	close(fd);
	assert_size_equal(zbl_kernel_bytes(bl), 20);
	p = zbl_c_str(bl);
	assert_non_null(p);
	assert_memory_equal(p, text + 5, 20);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	assert_size_equal(zbl_segments(bl), 1);
	zbl_free(bl);
}

static void test_rebuild_aligned_copies_file_segments_into_memory(void **state)
{
	(void)state;
	unsigned char text[3000];
	int fd;
	zbl_t *bl = zt_new();

	zt_fill_random(text, sizeof(text), 15);
	fd = zt_temp_file(text, sizeof(text));
	assert_rc(zbl_append_file(bl, fd, 0, 1000), 0);
	assert_rc(zbl_append_file(bl, fd, 1001, 1999), 0);
	close(fd);
	assert_size_equal(zbl_kernel_bytes(bl), 2999);
	assert_rc(zbl_rebuild_aligned(bl, 16), 0);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	assert_all_segments_aligned(bl, 16);
	memmove(text + 1000, text + 1001, 1999);
	assert_list_bytes(bl, text, 2999);
	zbl_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_out_reads_a_range_spanning_segments),
		cmocka_unit_test(test_copy_out_of_zero_bytes_is_allowed_up_to_the_end),
		cmocka_unit_test(test_copy_out_out_of_range_writes_nothing),
		cmocka_unit_test(test_copy_out_of_empty_list),
		cmocka_unit_test(test_c_str_of_empty_list_is_null_with_errno_zero),
		cmocka_unit_test(test_c_str_joins_segments_into_one),
		cmocka_unit_test(test_c_str_of_single_memory_segment_does_not_copy),
		cmocka_unit_test(test_c_str_does_not_change_lists_sharing_the_segments),
		cmocka_unit_test(test_c_str_releases_borrowed_memory_it_no_longer_needs),
		cmocka_unit_test(test_rebuild_makes_one_segment_with_same_contents),
		cmocka_unit_test(test_rebuild_of_single_memory_segment_keeps_it),
		cmocka_unit_test(test_rebuild_of_empty_list_succeeds),
		cmocka_unit_test(test_rebuild_of_large_list_keeps_bytes),
		cmocka_unit_test(test_rebuild_aligned_aligns_every_segment_for_each_power_of_two),
		cmocka_unit_test(test_rebuild_aligned_keeps_aligned_whole_multiple_segments),
		cmocka_unit_test(test_rebuild_aligned_of_aligned_list_changes_nothing),
		cmocka_unit_test(test_rebuild_aligned_fixes_offset_into_aligned_block),
		cmocka_unit_test(test_rebuild_aligned_works_on_appended_library_memory),
		cmocka_unit_test(test_rebuild_aligned_rejects_non_power_of_two),
		cmocka_unit_test(test_rebuild_aligned_does_not_change_sharing_lists),
		cmocka_unit_test(test_cmp_orders_like_memcmp_with_prefix_first),
		cmocka_unit_test(test_cmp_compares_bytes_as_unsigned),
		cmocka_unit_test(test_cmp_of_empty_list_sorts_first),
		cmocka_unit_test(test_cmp_ignores_segmentation),
		cmocka_unit_test(test_cmp_treats_null_as_smallest),
		cmocka_unit_test(test_contents_equal_ignores_segmentation),
		cmocka_unit_test(test_reading_file_segments_materializes_them_once),
		cmocka_unit_test(test_rebuild_aligned_copies_file_segments_into_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
