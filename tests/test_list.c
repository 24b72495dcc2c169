/* SPDX-License-Identifier: MIT */
/*
 * List lifecycle and the ways of adding data: zbl_new/free/clear, queries,
 * zbl_append (tail room), zbl_append_zero, zbl_append_ref (borrowed memory and
 * its release callback), zbl_append_list (sharing) and zbl_claim_append
 * (moving), plus the copy counters they must (not) touch.
 */
#include "zbl_test.h"

static void test_new_list_is_empty_and_contiguous(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	assert_true(zbl_is_contiguous(bl));
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	zbl_free(bl);
}

static void test_free_and_clear_accept_null(void **state)
{
	(void)state;
	zbl_free(NULL);
	zbl_clear(NULL);
	assert_size_equal(zbl_length(NULL), 0);
	assert_size_equal(zbl_segments(NULL), 0);
	assert_true(zbl_is_contiguous(NULL));
	assert_size_equal(zbl_kernel_bytes(NULL), 0);
}

static void test_append_copies_the_callers_bytes(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	char buf[] = "ABC";

	assert_rc(zbl_append(bl, buf, 3), 0);
	buf[0] = 'X';
	assert_list_str(bl, "ABC");
	assert_size_equal(zbl_segments(bl), 1);
	zbl_free(bl);
}

static void test_append_of_zero_bytes_changes_nothing(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_rc(zbl_append(bl, NULL, 0), 0);
	assert_rc(zbl_append(bl, "x", 0), 0);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	zbl_free(bl);
}

static void test_small_appends_fill_tail_room_without_adding_segments(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	char expect[64];

	for (int i = 0; i < 64; i++) {
		expect[i] = (char)('a' + i % 26);
		assert_rc(zbl_append(bl, &expect[i], 1), 0);
		assert_size_equal(zbl_segments(bl), 1);
	}
	assert_list_bytes(bl, expect, 64);
	zbl_free(bl);
}

/*
 * The carriage grows with the list up to blocks of about 2 MiB: 8 MiB of
 * small appends take a handful of blocks, not thousands. A list sharing the
 * last block and appending to it gets room of its own (no overwrite).
 */
static void test_small_appends_to_a_long_list_use_few_large_blocks(void **state)
{
	(void)state;
	enum { TOTAL = 8 << 20 };
	unsigned char *expect = malloc(TOTAL + 256); /* the last piece may run past TOTAL */
	zbl_t *bl = zt_new(), *other = zt_new();
	size_t n = 0;

	assert_non_null(expect);
	while (n < TOTAL) {
		size_t k = 16 + n % 97;
		for (size_t i = 0; i < k; i++)
			expect[n + i] = (unsigned char)((n + i) * 131 >> 3);
		assert_rc(zbl_append(bl, expect + n, k), 0);
		n += k;
	}
	assert_true(zbl_segments(bl) <= 16);
	assert_list_bytes(bl, expect, n);
	/* Share the list, then both append: each sees only its own tail. */
	assert_rc(zbl_append_list(other, bl), 0);
	assert_rc(zbl_append(other, "xyz", 3), 0);
	assert_rc(zbl_append(bl, "ABC", 3), 0);
	memcpy(expect + n, "ABC", 3);
	assert_list_bytes(bl, expect, n + 3);
	memcpy(expect + n, "xyz", 3);
	assert_list_bytes(other, expect, n + 3);
	zbl_free(bl);
	zbl_free(other);
	/* The kept memory of the freed blocks goes back; the process stays usable. */
	zbl_pool_flush();
	free(expect);
}

/*
 * A small trailer after megabytes of borrowed memory starts a small block,
 * not a huge one: 8000 more bytes no longer fit its tail room.
 */
static void test_trailer_after_a_large_borrowed_segment_gets_a_small_block(void **state)
{
	(void)state;
	enum { BIG = 4 << 20 };
	static char big[BIG];
	char more[8000];
	zbl_t *bl = zt_new();

	memset(more, 'm', sizeof(more));
	assert_rc(zbl_append_ref(bl, big, BIG, NULL, NULL), 0);
	assert_rc(zbl_append(bl, "crc!", 4), 0);
	assert_size_equal(zbl_segments(bl), 2);
	assert_rc(zbl_append(bl, more, sizeof(more)), 0);
	assert_size_equal(zbl_segments(bl), 3);
	assert_size_equal(zbl_length(bl), BIG + 4 + sizeof(more));
	zbl_free(bl);
}

static void test_append_after_borrowed_memory_adds_a_segment(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	static const char ref[] = "borrowed";

	assert_rc(zbl_append_ref(bl, ref, 8, NULL, NULL), 0);
	assert_rc(zbl_append(bl, "+copy", 5), 0);
	assert_size_equal(zbl_segments(bl), 2);
	assert_list_str(bl, "borrowed+copy");
	zbl_free(bl);
}

static void test_large_append_keeps_every_byte(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	size_t len = 3 * 1024 * 1024 + 17;
	unsigned char *data = zt_random_bytes(len, 1);

	assert_rc(zbl_append(bl, data, 100), 0);
	assert_rc(zbl_append(bl, data + 100, len - 100), 0);
	assert_list_bytes(bl, data, len);
	free(data);
	zbl_free(bl);
}

static void test_many_appends_accumulate_in_order(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	size_t total = 0;
	unsigned char *model = malloc(200000);
	uint64_t rs = 42;

	assert_non_null(model);
	while (total < 190000) {
		size_t n = zt_rand(&rs) % 1000;

		zt_fill_random(model + total, n, total);
		assert_rc(zbl_append(bl, model + total, n), 0);
		total += n;
		assert_size_equal(zbl_length(bl), total);
	}
	assert_list_bytes(bl, model, total);
	free(model);
	zbl_free(bl);
}

static void test_appends_to_lists_sharing_a_block_never_overwrite_each_other(void **state)
{
	(void)state;
	zbl_t *a = zt_new();
	zbl_t *b = zt_new();
	zbl_t *c = zt_new();

	/* a's block has tail room; b and c refer to the same block. */
	assert_rc(zbl_append(a, "abc", 3), 0);
	assert_rc(zbl_append_list(b, a), 0);
	assert_rc(zbl_substr_of(c, a, 0, 3), 0);
	assert_rc(zbl_append(a, "X", 1), 0);
	assert_rc(zbl_append(b, "YY", 2), 0);
	assert_rc(zbl_append(c, "ZZZ", 3), 0);
	assert_list_str(a, "abcX");
	assert_list_str(b, "abcYY");
	assert_list_str(c, "abcZZZ");
	zbl_free(a);
	zbl_free(b);
	zbl_free(c);
}

static void test_append_to_a_prefix_slice_does_not_clobber_the_original(void **state)
{
	(void)state;
	zbl_t *a = zt_new();
	zbl_t *b = zt_new();

	assert_rc(zbl_append(a, "0123456789", 10), 0);
	assert_rc(zbl_substr_of(b, a, 0, 4), 0);
	assert_rc(zbl_append(b, "XYZ", 3), 0);
	assert_list_str(a, "0123456789");
	assert_list_str(b, "0123XYZ");
	zbl_free(a);
	zbl_free(b);
}

static void test_append_zero_appends_zero_bytes(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	unsigned char expect[1 + 5000] = { 'A' };

	assert_rc(zbl_append(bl, "A", 1), 0);
	assert_rc(zbl_append_zero(bl, 5000), 0);
	assert_list_bytes(bl, expect, sizeof(expect));
	zbl_free(bl);
}

static void test_append_zero_of_zero_bytes_changes_nothing(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_rc(zbl_append(bl, "A", 1), 0);
	assert_rc(zbl_append_zero(bl, 0), 0);
	assert_list_str(bl, "A");
	assert_size_equal(zbl_segments(bl), 1);
	zbl_free(bl);
}

static void test_append_zero_into_reused_tail_room_is_zeroed(void **state)
{
	(void)state;
	zbl_t *a = zt_new();
	unsigned char expect[3 + 100] = { 'a', 'b', 'c' };
	unsigned char junk[100];

	/* Fill tail room with junk, then drop that part and append zeros. */
	memset(junk, 0xEE, sizeof(junk));
	assert_rc(zbl_append(a, "abc", 3), 0);
	assert_rc(zbl_append(a, junk, sizeof(junk)), 0);
	assert_rc(zbl_splice(a, 3, 100, NULL), 0);
	assert_rc(zbl_append_zero(a, 100), 0);
	assert_list_bytes(a, expect, sizeof(expect));
	zbl_free(a);
}

static void test_append_ref_refers_to_caller_memory_without_copying(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	static const char mem[] = "zero-copy user memory";
	struct zbl_stats st;
	const char *p;

	zbl_stats_reset();
	assert_rc(zbl_append_ref(bl, mem, sizeof(mem) - 1, NULL, NULL), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_size_equal(zbl_segments(bl), 1);
	assert_size_equal(zt_runs(bl, &p, NULL, 1), 1);
	assert_ptr_equal(p, mem);
	assert_list_str(bl, mem);
	zbl_free(bl);
}

static void test_append_ref_release_runs_once_when_last_sharing_list_is_freed(void **state)
{
	(void)state;
	atomic_int released = 0;
	static const char mem[] = "shared by three lists";
	zbl_t *a = zt_new(), *b = zt_new(), *c = zt_new(), *d = zt_new();

	assert_rc(zbl_append_ref(a, mem, sizeof(mem) - 1, zt_count_release, &released), 0);
	assert_rc(zbl_substr_of(b, a, 3, 5), 0);
	assert_rc(zbl_append_list(c, a), 0);
	assert_rc(zbl_splice(c, 0, 2, d), 0);
	zbl_free(a);
	assert_int_equal(atomic_load(&released), 0);
	zbl_free(c);
	assert_int_equal(atomic_load(&released), 0);
	zbl_clear(b);
	assert_int_equal(atomic_load(&released), 0);
	assert_list_str(d, "sh");
	zbl_free(d);
	assert_int_equal(atomic_load(&released), 1);
	zbl_free(b);
	assert_int_equal(atomic_load(&released), 1);
}

static void test_append_ref_release_runs_once_when_list_is_cleared(void **state)
{
	(void)state;
	atomic_int released = 0;
	static const char mem[] = "abc";
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, mem, 3, zt_count_release, &released), 0);
	zbl_clear(bl);
	assert_int_equal(atomic_load(&released), 1);
	assert_size_equal(zbl_length(bl), 0);
	assert_rc(zbl_append(bl, "reuse", 5), 0);
	assert_list_str(bl, "reuse");
	zbl_free(bl);
	assert_int_equal(atomic_load(&released), 1);
}

static void test_append_ref_release_runs_once_when_spliced_out_entirely(void **state)
{
	(void)state;
	atomic_int released = 0;
	static const char mem[] = "gone";
	zbl_t *bl = zt_new();

	assert_rc(zbl_append(bl, "keep", 4), 0);
	assert_rc(zbl_append_ref(bl, mem, 4, zt_count_release, &released), 0);
	assert_rc(zbl_splice(bl, 4, 4, NULL), 0);
	assert_int_equal(atomic_load(&released), 1);
	assert_list_str(bl, "keep");
	zbl_free(bl);
	assert_int_equal(atomic_load(&released), 1);
}

static void test_append_ref_of_zero_bytes_releases_once_and_adds_nothing(void **state)
{
	(void)state;
	atomic_int released = 0;
	static const char mem[] = "x";
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, mem, 0, zt_count_release, &released), 0);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	zbl_free(bl);
	assert_int_equal(atomic_load(&released), 1);
}

static void test_append_ref_with_null_release_is_allowed(void **state)
{
	(void)state;
	static const char mem[] = "no callback";
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, mem, strlen(mem), NULL, NULL), 0);
	assert_list_str(bl, mem);
	zbl_free(bl);
}

static void test_append_ref_segments_stay_separate(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI", "JKL");

	assert_size_equal(zbl_segments(bl), 4);
	assert_false(zbl_is_contiguous(bl));
	assert_list_str(bl, "ABCDEFGHIJKL");
	zbl_free(bl);
}

static void test_append_list_shares_storage_and_leaves_source_unchanged(void **state)
{
	(void)state;
	static const char m1[] = "first", m2[] = "second";
	zbl_t *src = zt_new(), *dst = zt_new();
	const char *ptrs[4];
	struct zbl_stats st;

	assert_rc(zbl_append_ref(src, m1, 5, NULL, NULL), 0);
	assert_rc(zbl_append_ref(src, m2, 6, NULL, NULL), 0);
	assert_rc(zbl_append(dst, "X", 1), 0);
	zbl_stats_reset();
	assert_rc(zbl_append_list(dst, src), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_list_str(dst, "Xfirstsecond");
	assert_list_str(src, "firstsecond");
	assert_size_equal(zbl_segments(src), 2);
	assert_size_equal(zbl_segments(dst), 3);
	assert_size_equal(zt_runs(dst, ptrs, NULL, 4), 3);
	assert_ptr_equal(ptrs[1], m1);
	assert_ptr_equal(ptrs[2], m2);
	zbl_free(src);
	zbl_free(dst);
}

static void test_append_list_of_itself_doubles_the_list(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ab", "cd");

	assert_rc(zbl_append_list(bl, bl), 0);
	assert_list_str(bl, "abcdabcd");
	assert_size_equal(zbl_segments(bl), 4);
	zbl_free(bl);
}

static void test_append_list_of_empty_list_changes_nothing(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ab");
	zbl_t *empty = zt_new();

	assert_rc(zbl_append_list(bl, empty), 0);
	assert_list_str(bl, "ab");
	assert_size_equal(zbl_segments(bl), 1);
	zbl_free(bl);
	zbl_free(empty);
}

static void test_append_list_source_survives_destination_free(void **state)
{
	(void)state;
	zbl_t *src = zt_new(), *dst = zt_new();

	assert_rc(zbl_append(src, "persistent", 10), 0);
	assert_rc(zbl_append_list(dst, src), 0);
	zbl_free(dst);
	assert_list_str(src, "persistent");
	zbl_free(src);
}

static void test_claim_append_moves_segments_and_empties_source(void **state)
{
	(void)state;
	zbl_t *from = ZT_LIST("fr");
	zbl_t *to = ZT_LIST("to__");
	struct zbl_stats st;

	zbl_stats_reset();
	assert_rc(zbl_claim_append(to, from), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_list_str(to, "to__fr");
	assert_size_equal(zbl_segments(to), 2);
	assert_size_equal(zbl_length(from), 0);
	assert_size_equal(zbl_segments(from), 0);
	zbl_free(from);
	zbl_free(to);
}

static void test_claim_append_keeps_the_same_storage(void **state)
{
	(void)state;
	static const char mem[] = "moved";
	atomic_int released = 0;
	zbl_t *from = zt_new(), *to = zt_new();
	const char *p[2];

	assert_rc(zbl_append_ref(from, mem, 5, zt_count_release, &released), 0);
	assert_rc(zbl_append(to, "A", 1), 0);
	assert_rc(zbl_claim_append(to, from), 0);
	assert_size_equal(zt_runs(to, p, NULL, 2), 2);
	assert_ptr_equal(p[1], mem);
	zbl_free(from);
	assert_int_equal(atomic_load(&released), 0);
	zbl_free(to);
	assert_int_equal(atomic_load(&released), 1);
}

static void test_claim_append_source_remains_usable(void **state)
{
	(void)state;
	zbl_t *from = zt_new(), *to = zt_new();

	assert_rc(zbl_append(from, "one", 3), 0);
	assert_rc(zbl_claim_append(to, from), 0);
	assert_rc(zbl_append(from, "two", 3), 0);
	assert_list_str(from, "two");
	assert_list_str(to, "one");
	assert_rc(zbl_claim_append(to, from), 0);
	assert_list_str(to, "onetwo");
	assert_size_equal(zbl_length(from), 0);
	zbl_free(from);
	zbl_free(to);
}

static void test_claim_append_into_empty_and_from_empty(void **state)
{
	(void)state;
	zbl_t *a = zt_new(), *b = zt_new();

	assert_rc(zbl_claim_append(a, b), 0);
	assert_size_equal(zbl_length(a), 0);
	assert_rc(zbl_append(b, "x", 1), 0);
	assert_rc(zbl_claim_append(a, b), 0);
	assert_list_str(a, "x");
	assert_rc(zbl_claim_append(a, b), 0);
	assert_list_str(a, "x");
	zbl_free(a);
	zbl_free(b);
}

static void test_claim_append_of_itself_is_rejected(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("self");

	assert_rc(zbl_claim_append(bl, bl), -EINVAL);
	assert_list_str(bl, "self");
	zbl_free(bl);
}

static void test_append_after_claim_does_not_write_into_claimed_shared_block(void **state)
{
	(void)state;
	zbl_t *a = zt_new(), *b = zt_new(), *keep = zt_new();

	/* b's block is still referenced by keep after moving it into a. */
	assert_rc(zbl_append(b, "shared", 6), 0);
	assert_rc(zbl_append_list(keep, b), 0);
	assert_rc(zbl_claim_append(a, b), 0);
	assert_rc(zbl_append(a, "+a", 2), 0);
	assert_rc(zbl_append(keep, "+k", 2), 0);
	assert_list_str(a, "shared+a");
	assert_list_str(keep, "shared+k");
	zbl_free(a);
	zbl_free(b);
	zbl_free(keep);
}

static void test_clear_empties_the_list_and_keeps_it_usable(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("a", "b", "c");

	zbl_clear(bl);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	assert_true(zbl_is_contiguous(bl));
	assert_rc(zbl_append(bl, "again", 5), 0);
	assert_list_str(bl, "again");
	zbl_free(bl);
}

static void test_is_contiguous_follows_segment_count(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_true(zbl_is_contiguous(bl));
	assert_rc(zbl_append(bl, "A", 1), 0);
	assert_true(zbl_is_contiguous(bl));
	assert_size_equal(zbl_segments(bl), 1);
	assert_rc(zbl_append_ref(bl, "B", 1, NULL, NULL), 0);
	assert_false(zbl_is_contiguous(bl));
	assert_size_equal(zbl_segments(bl), 2);
	zbl_free(bl);
}

static void test_memory_lists_hold_no_kernel_bytes(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_rc(zbl_append(bl, "abc", 3), 0);
	assert_rc(zbl_append_zero(bl, 10), 0);
	assert_rc(zbl_append_ref(bl, "ref", 3, NULL, NULL), 0);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	zbl_free(bl);
}

static void test_stats_reset_zeroes_counters(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	struct zbl_stats st;

	assert_rc(zbl_append(bl, "abc", 3), 0);
	zbl_stats_reset();
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_size_equal(st.bytes_spliced_in, 0);
	assert_size_equal(st.bytes_copied_out, 0);
	assert_size_equal(st.bytes_spliced_out, 0);
	assert_size_equal(st.bytes_teed, 0);
	assert_size_equal(st.bytes_materialized, 0);
	assert_size_equal(st.materializations, 0);
	assert_size_equal(st.fallbacks, 0);
	assert_size_equal(st.pipes_created, 0);
	zbl_stats_get(NULL);
	zbl_free(bl);
}

static void test_stats_count_bytes_copied_in_by_append(void **state)
{
	(void)state;
	zbl_t *bl = zt_new(), *other = zt_new();
	struct zbl_stats st;
	char buf[1000];

	memset(buf, 'q', sizeof(buf));
	zbl_stats_reset();
	assert_rc(zbl_append(bl, buf, 10), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 10);
	assert_rc(zbl_append(bl, buf, 1000), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 1010);
	/* Sharing, slicing and moving never copy. */
	assert_rc(zbl_append_list(other, bl), 0);
	assert_rc(zbl_substr_of(other, bl, 5, 500), 0);
	assert_rc(zbl_splice(bl, 0, 100, other), 0);
	assert_rc(zbl_claim_append(other, bl), 0);
	assert_rc(zbl_append_ref(bl, buf, 1000, NULL, NULL), 0);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 1010);
	assert_size_equal(st.bytes_spliced_in, 0);
	assert_size_equal(st.bytes_materialized, 0);
	zbl_free(bl);
	zbl_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_list_is_empty_and_contiguous),
		cmocka_unit_test(test_free_and_clear_accept_null),
		cmocka_unit_test(test_append_copies_the_callers_bytes),
		cmocka_unit_test(test_append_of_zero_bytes_changes_nothing),
		cmocka_unit_test(test_small_appends_fill_tail_room_without_adding_segments),
		cmocka_unit_test(test_small_appends_to_a_long_list_use_few_large_blocks),
		cmocka_unit_test(test_trailer_after_a_large_borrowed_segment_gets_a_small_block),
		cmocka_unit_test(test_append_after_borrowed_memory_adds_a_segment),
		cmocka_unit_test(test_large_append_keeps_every_byte),
		cmocka_unit_test(test_many_appends_accumulate_in_order),
		cmocka_unit_test(test_appends_to_lists_sharing_a_block_never_overwrite_each_other),
		cmocka_unit_test(test_append_to_a_prefix_slice_does_not_clobber_the_original),
		cmocka_unit_test(test_append_zero_appends_zero_bytes),
		cmocka_unit_test(test_append_zero_of_zero_bytes_changes_nothing),
		cmocka_unit_test(test_append_zero_into_reused_tail_room_is_zeroed),
		cmocka_unit_test(test_append_ref_refers_to_caller_memory_without_copying),
		cmocka_unit_test(test_append_ref_release_runs_once_when_last_sharing_list_is_freed),
		cmocka_unit_test(test_append_ref_release_runs_once_when_list_is_cleared),
		cmocka_unit_test(test_append_ref_release_runs_once_when_spliced_out_entirely),
		cmocka_unit_test(test_append_ref_of_zero_bytes_releases_once_and_adds_nothing),
		cmocka_unit_test(test_append_ref_with_null_release_is_allowed),
		cmocka_unit_test(test_append_ref_segments_stay_separate),
		cmocka_unit_test(test_append_list_shares_storage_and_leaves_source_unchanged),
		cmocka_unit_test(test_append_list_of_itself_doubles_the_list),
		cmocka_unit_test(test_append_list_of_empty_list_changes_nothing),
		cmocka_unit_test(test_append_list_source_survives_destination_free),
		cmocka_unit_test(test_claim_append_moves_segments_and_empties_source),
		cmocka_unit_test(test_claim_append_keeps_the_same_storage),
		cmocka_unit_test(test_claim_append_source_remains_usable),
		cmocka_unit_test(test_claim_append_into_empty_and_from_empty),
		cmocka_unit_test(test_claim_append_of_itself_is_rejected),
		cmocka_unit_test(test_append_after_claim_does_not_write_into_claimed_shared_block),
		cmocka_unit_test(test_clear_empties_the_list_and_keeps_it_usable),
		cmocka_unit_test(test_is_contiguous_follows_segment_count),
		cmocka_unit_test(test_memory_lists_hold_no_kernel_bytes),
		cmocka_unit_test(test_stats_reset_zeroes_counters),
		cmocka_unit_test(test_stats_count_bytes_copied_in_by_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
