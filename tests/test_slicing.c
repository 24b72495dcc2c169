/* SPDX-License-Identifier: MIT */
/*
 * Slicing: zbl_substr_of and zbl_splice (with and without claim_by). Both
 * share storage and never copy bytes; the tests check contents, segment
 * layout, pointer identity with the original memory, and that other lists
 * sharing the blocks are not affected.
 */
#include "zbl_test.h"

static void test_substr_of_takes_the_requested_range_across_segments(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI", "JKL");
	zbl_t *other = zt_new();

	assert_rc(zbl_append(other, "TO BE CLEARED", 13), 0);
	assert_rc(zbl_substr_of(other, bl, 4, 4), 0);
	assert_list_str(other, "EFGH");
	assert_size_equal(zbl_segments(other), 2);
	assert_list_str(bl, "ABCDEFGHIJKL");
	assert_size_equal(zbl_segments(bl), 4);
	zbl_free(bl);
	zbl_free(other);
}

static void test_substr_of_shares_storage_without_copying(void **state)
{
	(void)state;
	static const char mem[] = "0123456789abcdef";
	zbl_t *src = zt_new(), *dst = zt_new();
	struct zbl_stats st;
	const char *p;

	assert_rc(zbl_append_ref(src, mem, 16, NULL, NULL), 0);
	zbl_stats_reset();
	assert_rc(zbl_substr_of(dst, src, 5, 7), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_size_equal(zt_runs(dst, &p, NULL, 1), 1);
	assert_ptr_equal(p, mem + 5);
	assert_list_str(dst, "56789ab");
	zbl_free(src);
	zbl_free(dst);
}

static void test_substr_of_whole_list_equals_source(void **state)
{
	(void)state;
	zbl_t *src = ZT_LIST("one", "two", "three"), *dst = zt_new();

	assert_rc(zbl_substr_of(dst, src, 0, zbl_length(src)), 0);
	assert_true(zbl_contents_equal(dst, src));
	assert_size_equal(zbl_segments(dst), 3);
	zbl_free(src);
	zbl_free(dst);
}

static void test_substr_of_empty_range_at_end_gives_empty_list(void **state)
{
	(void)state;
	zbl_t *src = ZT_LIST("abc"), *dst = ZT_LIST("old");

	assert_rc(zbl_substr_of(dst, src, 3, 0), 0);
	assert_size_equal(zbl_length(dst), 0);
	assert_size_equal(zbl_segments(dst), 0);
	assert_rc(zbl_substr_of(dst, src, 1, 0), 0);
	assert_size_equal(zbl_length(dst), 0);
	zbl_free(src);
	zbl_free(dst);
}

static void test_substr_of_into_itself_narrows_the_list(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI");

	assert_rc(zbl_substr_of(bl, bl, 2, 5), 0);
	assert_list_str(bl, "CDEFG");
	assert_size_equal(zbl_segments(bl), 3);
	assert_rc(zbl_substr_of(bl, bl, 1, 3), 0);
	assert_list_str(bl, "DEF");
	assert_size_equal(zbl_segments(bl), 1);
	zbl_free(bl);
}

static void test_substr_of_within_one_segment_gives_one_segment(void **state)
{
	(void)state;
	zbl_t *src = ZT_LIST("ABC", "DEFGHIJ", "KL"), *dst = zt_new();

	assert_rc(zbl_substr_of(dst, src, 4, 4), 0);
	assert_list_str(dst, "EFGH");
	assert_size_equal(zbl_segments(dst), 1);
	zbl_free(src);
	zbl_free(dst);
}

static void test_substr_of_out_of_range_fails_and_keeps_destination(void **state)
{
	(void)state;
	zbl_t *src = ZT_LIST("abc", "def"), *dst = ZT_LIST("keep", "me");
	struct zt_snap s;

	zt_snap_take(&s, dst);
	assert_rc(zbl_substr_of(dst, src, 4, 3), -ERANGE);
	assert_rc(zbl_substr_of(dst, src, 7, 0), -ERANGE);
	assert_rc(zbl_substr_of(dst, src, 0, 7), -ERANGE);
	assert_unchanged(&s, dst);
	zbl_free(src);
	zbl_free(dst);
}

static void test_substr_of_on_empty_source_only_allows_empty_range(void **state)
{
	(void)state;
	zbl_t *src = zt_new(), *dst = zt_new();

	assert_rc(zbl_substr_of(dst, src, 1, 1), -ERANGE);
	assert_rc(zbl_substr_of(dst, src, 0, 0), 0);
	assert_size_equal(zbl_length(dst), 0);
	zbl_free(src);
	zbl_free(dst);
}

static void test_substr_of_survives_freeing_the_source(void **state)
{
	(void)state;
	zbl_t *src = zt_new(), *dst = zt_new();

	assert_rc(zbl_append(src, "library memory", 14), 0);
	assert_rc(zbl_substr_of(dst, src, 8, 6), 0);
	zbl_free(src);
	assert_list_str(dst, "memory");
	zbl_free(dst);
}

static void test_substr_of_long_list_picks_right_segments(void **state)
{
	(void)state;
	enum { NSEG = 5000 };
	static char mem[NSEG * 3];
	zbl_t *src = zt_new(), *dst = zt_new();

	zt_fill_random(mem, sizeof(mem), 7);
	for (size_t i = 0; i < NSEG; i++)
		assert_rc(zbl_append_ref(src, mem + 3 * i, 3, NULL, NULL), 0);
	assert_size_equal(zbl_segments(src), NSEG);
	for (size_t off = 0; off < sizeof(mem); off += 997) {
		size_t len = sizeof(mem) - off < 10 ? sizeof(mem) - off : 10;

		assert_rc(zbl_substr_of(dst, src, off, len), 0);
		assert_list_bytes(dst, mem + off, len);
	}
	zbl_free(src);
	zbl_free(dst);
}

static void test_splice_removes_range_and_appends_it_to_claim_by(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI", "JKL");
	zbl_t *other = zt_new();

	assert_rc(zbl_splice(bl, 0, 0, NULL), 0);
	assert_list_str(bl, "ABCDEFGHIJKL");
	assert_rc(zbl_append_ref(other, "X", 1, NULL, NULL), 0);
	assert_rc(zbl_splice(bl, 4, 4, other), 0);
	assert_size_equal(zbl_segments(other), 3);
	assert_list_str(other, "XEFGH");
	assert_list_str(bl, "ABCDIJKL");
	assert_rc(zbl_splice(bl, 4, 4, NULL), 0);
	assert_list_str(bl, "ABCD");
	zbl_free(bl);
	zbl_free(other);
}

static void test_splice_of_range_inside_partial_segment(void **state)
{
	(void)state;
	static const char tail[] = "abcdefghij";
	zbl_t *bl = zt_new(), *other = zt_new();

	assert_rc(zbl_append_ref(bl, "0123456789", 10, NULL, NULL), 0);
	assert_rc(zbl_append_ref(bl, tail + 5, 5, NULL, NULL), 0);
	assert_rc(zbl_splice(bl, 10, 4, other), 0);
	assert_size_equal(zbl_length(bl), 11);
	assert_list_str(bl, "0123456789j");
	assert_list_str(other, "fghi");
	zbl_free(bl);
	zbl_free(other);
}

static void test_splice_middle_of_one_segment_leaves_two_segments(void **state)
{
	(void)state;
	static const char mem[] = "0123456789";
	zbl_t *bl = zt_new();
	const char *p[2];

	assert_rc(zbl_append_ref(bl, mem, 10, NULL, NULL), 0);
	assert_rc(zbl_splice(bl, 3, 4, NULL), 0);
	assert_list_str(bl, "012789");
	assert_size_equal(zbl_segments(bl), 2);
	assert_size_equal(zt_runs(bl, p, NULL, 2), 2);
	assert_ptr_equal(p[0], mem);
	assert_ptr_equal(p[1], mem + 7);
	zbl_free(bl);
}

static void test_splice_claim_by_shares_storage_without_copying(void **state)
{
	(void)state;
	static const char mem[] = "0123456789";
	zbl_t *bl = zt_new(), *claim = zt_new();
	struct zbl_stats st;
	const char *p;

	assert_rc(zbl_append_ref(bl, mem, 10, NULL, NULL), 0);
	zbl_stats_reset();
	assert_rc(zbl_splice(bl, 2, 5, claim), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_size_equal(zt_runs(claim, &p, NULL, 1), 1);
	assert_ptr_equal(p, mem + 2);
	assert_list_str(claim, "23456");
	zbl_free(bl);
	zbl_free(claim);
}

static void test_splice_front_and_back(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI");
	zbl_t *front = zt_new(), *back = zt_new();

	assert_rc(zbl_splice(bl, 0, 4, front), 0);
	assert_list_str(front, "ABCD");
	assert_list_str(bl, "EFGHI");
	assert_rc(zbl_splice(bl, 3, 2, back), 0);
	assert_list_str(back, "HI");
	assert_list_str(bl, "EFG");
	assert_size_equal(zbl_segments(bl), 2);
	zbl_free(bl);
	zbl_free(front);
	zbl_free(back);
}

static void test_splice_of_everything_empties_the_list(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF"), *claim = zt_new();

	assert_rc(zbl_splice(bl, 0, 6, claim), 0);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	assert_list_str(claim, "ABCDEF");
	assert_size_equal(zbl_segments(claim), 2);
	zbl_free(bl);
	zbl_free(claim);
}

static void test_splice_of_zero_bytes_is_a_no_op_even_at_end(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF"), *claim = zt_new();
	struct zt_snap s;

	zt_snap_take(&s, bl);
	assert_rc(zbl_splice(bl, 6, 0, claim), 0);
	assert_rc(zbl_splice(bl, 3, 0, claim), 0);
	assert_rc(zbl_splice(bl, 0, 0, NULL), 0);
	assert_unchanged(&s, bl);
	assert_size_equal(zbl_length(claim), 0);
	zbl_free(bl);
	zbl_free(claim);
}

static void test_splice_out_of_range_fails_and_changes_neither_list(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF"), *claim = ZT_LIST("claim");
	struct zt_snap s1, s2;

	zt_snap_take(&s1, bl);
	zt_snap_take(&s2, claim);
	assert_rc(zbl_splice(bl, 5, 2, claim), -ERANGE);
	assert_rc(zbl_splice(bl, 7, 0, claim), -ERANGE);
	assert_rc(zbl_splice(bl, 0, 7, NULL), -ERANGE);
	assert_unchanged(&s1, bl);
	assert_unchanged(&s2, claim);
	zbl_free(bl);
	zbl_free(claim);
}

static void test_splice_on_empty_list(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_rc(zbl_splice(bl, 1, 1, NULL), -ERANGE);
	assert_rc(zbl_splice(bl, 0, 0, NULL), 0);
	zbl_free(bl);
}

static void test_splice_does_not_affect_lists_sharing_the_blocks(void **state)
{
	(void)state;
	zbl_t *bl = zt_new(), *copy = zt_new(), *slice = zt_new();

	assert_rc(zbl_append(bl, "0123456789", 10), 0);
	assert_rc(zbl_append_list(copy, bl), 0);
	assert_rc(zbl_substr_of(slice, bl, 2, 6), 0);
	assert_rc(zbl_splice(bl, 1, 8, NULL), 0);
	assert_list_str(bl, "09");
	assert_list_str(copy, "0123456789");
	assert_list_str(slice, "234567");
	/* Appending after the splice must not overwrite bytes still seen by others. */
	assert_rc(zbl_append(bl, "abcdefgh", 8), 0);
	assert_list_str(bl, "09abcdefgh");
	assert_list_str(copy, "0123456789");
	assert_list_str(slice, "234567");
	zbl_free(bl);
	zbl_free(copy);
	zbl_free(slice);
}

static void test_splice_into_itself_is_rejected(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF");
	struct zt_snap s;

	zt_snap_take(&s, bl);
	assert_rc(zbl_splice(bl, 1, 2, bl), -EINVAL);
	assert_unchanged(&s, bl);
	zbl_free(bl);
}

static void test_splice_claim_by_appends_after_existing_content(void **state)
{
	(void)state;
	zbl_t *bl = zt_new(), *claim = zt_new();

	assert_rc(zbl_append(claim, "head:", 5), 0);
	assert_rc(zbl_append(bl, "abcdef", 6), 0);
	assert_rc(zbl_splice(bl, 2, 2, claim), 0);
	assert_rc(zbl_splice(bl, 0, 1, claim), 0);
	assert_list_str(claim, "head:cda");
	assert_list_str(bl, "bef");
	zbl_free(bl);
	zbl_free(claim);
}

static void test_repeated_front_splices_consume_a_long_list(void **state)
{
	(void)state;
	enum { NSEG = 3000 };
	static char mem[NSEG * 4];
	zbl_t *bl = zt_new(), *out = zt_new();
	size_t consumed = 0;
	uint64_t rs = 3;

	zt_fill_random(mem, sizeof(mem), 11);
	for (size_t i = 0; i < NSEG; i++)
		assert_rc(zbl_append_ref(bl, mem + 4 * i, 4, NULL, NULL), 0);
	while (zbl_length(bl) > 0) {
		size_t n = 1 + zt_rand(&rs) % 50;

		if (n > zbl_length(bl))
			n = zbl_length(bl);
		assert_rc(zbl_splice(bl, 0, n, out), 0);
		consumed += n;
		assert_size_equal(zbl_length(bl), sizeof(mem) - consumed);
	}
	assert_list_bytes(out, mem, sizeof(mem));
	zbl_free(bl);
	zbl_free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_substr_of_takes_the_requested_range_across_segments),
		cmocka_unit_test(test_substr_of_shares_storage_without_copying),
		cmocka_unit_test(test_substr_of_whole_list_equals_source),
		cmocka_unit_test(test_substr_of_empty_range_at_end_gives_empty_list),
		cmocka_unit_test(test_substr_of_into_itself_narrows_the_list),
		cmocka_unit_test(test_substr_of_within_one_segment_gives_one_segment),
		cmocka_unit_test(test_substr_of_out_of_range_fails_and_keeps_destination),
		cmocka_unit_test(test_substr_of_on_empty_source_only_allows_empty_range),
		cmocka_unit_test(test_substr_of_survives_freeing_the_source),
		cmocka_unit_test(test_substr_of_long_list_picks_right_segments),
		cmocka_unit_test(test_splice_removes_range_and_appends_it_to_claim_by),
		cmocka_unit_test(test_splice_of_range_inside_partial_segment),
		cmocka_unit_test(test_splice_middle_of_one_segment_leaves_two_segments),
		cmocka_unit_test(test_splice_claim_by_shares_storage_without_copying),
		cmocka_unit_test(test_splice_front_and_back),
		cmocka_unit_test(test_splice_of_everything_empties_the_list),
		cmocka_unit_test(test_splice_of_zero_bytes_is_a_no_op_even_at_end),
		cmocka_unit_test(test_splice_out_of_range_fails_and_changes_neither_list),
		cmocka_unit_test(test_splice_on_empty_list),
		cmocka_unit_test(test_splice_does_not_affect_lists_sharing_the_blocks),
		cmocka_unit_test(test_splice_into_itself_is_rejected),
		cmocka_unit_test(test_splice_claim_by_appends_after_existing_content),
		cmocka_unit_test(test_repeated_front_splices_consume_a_long_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
