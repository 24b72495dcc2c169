/* SPDX-License-Identifier: MIT */
/*
 * Iterators: zbl_iter_init, zbl_iter_advance, zbl_iter_offset,
 * zbl_iter_remaining, zbl_iter_copy and zbl_iter_get_ptr_and_advance.
 */
#include "zbl_test.h"

static void test_iter_init_at_start_sees_whole_list(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF");
	zbl_iter_t it;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	assert_size_equal(zbl_iter_offset(&it), 0);
	assert_size_equal(zbl_iter_remaining(&it), 6);
	zbl_free(bl);
}

static void test_iter_init_at_offset_and_at_end(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF");
	zbl_iter_t it;
	const char *p = NULL;
	char c;

	assert_rc(zbl_iter_init(&it, bl, 4), 0);
	assert_size_equal(zbl_iter_offset(&it), 4);
	assert_size_equal(zbl_iter_remaining(&it), 2);
	assert_rc(zbl_iter_copy(&it, 1, &c), 0);
	assert_int_equal(c, 'E');
	assert_rc(zbl_iter_init(&it, bl, 6), 0);
	assert_size_equal(zbl_iter_remaining(&it), 0);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 10, &p), 0);
	zbl_free(bl);
}

static void test_iter_init_past_end_is_out_of_range(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC");
	zbl_iter_t it;

	assert_rc(zbl_iter_init(&it, bl, 4), -ERANGE);
	assert_rc(zbl_iter_init(&it, bl, SIZE_MAX), -ERANGE);
	zbl_free(bl);
}

static void test_iter_on_empty_list(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	zbl_iter_t it;
	const char *p = NULL;
	char c;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	assert_size_equal(zbl_iter_remaining(&it), 0);
	assert_rc(zbl_iter_advance(&it, 0), 0);
	assert_rc(zbl_iter_advance(&it, 1), -ERANGE);
	assert_rc(zbl_iter_copy(&it, 0, &c), 0);
	assert_rc(zbl_iter_copy(&it, 1, &c), -ERANGE);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 1, &p), 0);
	zbl_free(bl);
}

static void test_iter_advance_crosses_segment_boundaries(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("AB", "CDE", "F", "GHIJ");
	zbl_iter_t it;
	char c;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	for (size_t i = 0; i < 10; i++) {
		assert_size_equal(zbl_iter_offset(&it), i);
		assert_size_equal(zbl_iter_remaining(&it), 10 - i);
		assert_rc(zbl_iter_copy(&it, 1, &c), 0);
		assert_int_equal(c, 'A' + (int)i);
	}
	assert_rc(zbl_iter_init(&it, bl, 1), 0);
	assert_rc(zbl_iter_advance(&it, 5), 0);
	assert_size_equal(zbl_iter_offset(&it), 6);
	assert_rc(zbl_iter_copy(&it, 1, &c), 0);
	assert_int_equal(c, 'G');
	assert_rc(zbl_iter_advance(&it, 3), 0);
	assert_size_equal(zbl_iter_remaining(&it), 0);
	assert_rc(zbl_iter_advance(&it, 0), 0);
	zbl_free(bl);
}

static void test_iter_advance_past_end_fails_and_keeps_cursor(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF");
	zbl_iter_t it;
	char c;

	assert_rc(zbl_iter_init(&it, bl, 2), 0);
	assert_rc(zbl_iter_advance(&it, 5), -ERANGE);
	assert_rc(zbl_iter_advance(&it, SIZE_MAX), -ERANGE);
	assert_size_equal(zbl_iter_offset(&it), 2);
	assert_size_equal(zbl_iter_remaining(&it), 4);
	assert_rc(zbl_iter_copy(&it, 1, &c), 0);
	assert_int_equal(c, 'C');
	assert_rc(zbl_iter_advance(&it, 3), 0);
	assert_size_equal(zbl_iter_remaining(&it), 0);
	zbl_free(bl);
}

static void test_iter_copy_spans_segments_and_advances(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF", "GHI");
	zbl_iter_t it;
	char buf[8];

	assert_rc(zbl_iter_init(&it, bl, 1), 0);
	assert_rc(zbl_iter_copy(&it, 6, buf), 0);
	assert_memory_equal(buf, "BCDEFG", 6);
	assert_size_equal(zbl_iter_offset(&it), 7);
	assert_rc(zbl_iter_copy(&it, 2, buf), 0);
	assert_memory_equal(buf, "HI", 2);
	assert_size_equal(zbl_iter_remaining(&it), 0);
	zbl_free(bl);
}

static void test_iter_copy_of_more_than_remains_fails_and_keeps_cursor(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC", "DEF");
	zbl_iter_t it;
	char buf[8];

	memset(buf, '#', sizeof(buf));
	assert_rc(zbl_iter_init(&it, bl, 2), 0);
	assert_rc(zbl_iter_copy(&it, 5, buf), -ERANGE);
	assert_size_equal(zbl_iter_offset(&it), 2);
	assert_rc(zbl_iter_copy(&it, 4, buf), 0);
	assert_memory_equal(buf, "CDEF", 4);
	zbl_free(bl);
}

static void test_get_ptr_and_advance_stops_at_segment_end(void **state)
{
	(void)state;
	static const char s1[] = "ABC", s2[] = "DEFG";
	zbl_t *bl = zt_new();
	zbl_iter_t it;
	const char *p;

	assert_rc(zbl_append_ref(bl, s1, 3, NULL, NULL), 0);
	assert_rc(zbl_append_ref(bl, s2, 4, NULL, NULL), 0);
	assert_rc(zbl_iter_init(&it, bl, 1), 0);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 100, &p), 2);
	assert_ptr_equal(p, s1 + 1);
	assert_size_equal(zbl_iter_offset(&it), 3);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 100, &p), 4);
	assert_ptr_equal(p, s2);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 100, &p), 0);
	assert_size_equal(zbl_iter_offset(&it), 7);
	zbl_free(bl);
}

static void test_get_ptr_and_advance_returns_at_most_want(void **state)
{
	(void)state;
	static const char s1[] = "ABCDEFGH";
	zbl_t *bl = zt_new();
	zbl_iter_t it;
	const char *p;

	assert_rc(zbl_append_ref(bl, s1, 8, NULL, NULL), 0);
	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 3, &p), 3);
	assert_ptr_equal(p, s1);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 3, &p), 3);
	assert_ptr_equal(p, s1 + 3);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 0, &p), 0);
	assert_size_equal(zbl_iter_offset(&it), 6);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 3, &p), 2);
	assert_ptr_equal(p, s1 + 6);
	zbl_free(bl);
}

static void test_get_ptr_and_advance_points_into_shared_storage(void **state)
{
	(void)state;
	static const char mem[] = "0123456789";
	zbl_t *src = zt_new(), *dst = zt_new();
	zbl_iter_t it;
	const char *p;

	assert_rc(zbl_append_ref(src, mem, 10, NULL, NULL), 0);
	assert_rc(zbl_substr_of(dst, src, 4, 5), 0);
	assert_rc(zbl_iter_init(&it, dst, 1), 0);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p), 4);
	assert_ptr_equal(p, mem + 5);
	zbl_free(src);
	zbl_free(dst);
}

static void test_iter_walks_a_long_list_with_mixed_steps(void **state)
{
	(void)state;
	enum { LEN = 100000 };
	unsigned char *data = zt_random_bytes(LEN, 17), *out = malloc(LEN);
	zbl_t *bl = zt_new();
	zbl_iter_t it;
	uint64_t rs = 99;
	size_t pos = 0;

	assert_non_null(out);
	zt_append_random_pieces(bl, data, LEN, 700, &rs);
	memset(out, 0, LEN);
	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	pos = 0;
	while (pos < LEN) {
		size_t n = zt_rand(&rs) % 900, r = LEN - pos;
		const char *p;
		size_t got;

		switch (zt_rand(&rs) % 3) {
		case 0:
			if (n > r)
				n = r;
			assert_rc(zbl_iter_advance(&it, n), 0);
			memcpy(out + pos, data + pos, n);
			break;
		case 1:
			if (n > r) {
				assert_rc(zbl_iter_copy(&it, n, out + pos), -ERANGE);
				n = r;
			}
			assert_rc(zbl_iter_copy(&it, n, out + pos), 0);
			break;
		default:
			got = zbl_iter_get_ptr_and_advance(&it, n, &p);
			assert_true(got <= n);
			if (n > 0)
				assert_true(got > 0);
			memcpy(out + pos, p, got);
			n = got;
			break;
		}
		pos += n;
		assert_size_equal(zbl_iter_offset(&it), pos);
		assert_size_equal(zbl_iter_remaining(&it), LEN - pos);
	}
	assert_memory_equal(out, data, LEN);
	free(data);
	free(out);
	zbl_free(bl);
}

static void test_iter_init_at_every_offset_reads_the_right_byte(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("a", "bc", "def", "ghij", "k", "lmnopq");
	zbl_iter_t it;
	const char *expect = "abcdefghijklmnopq";

	for (size_t off = 0; off < 17; off++) {
		char c;

		assert_rc(zbl_iter_init(&it, bl, off), 0);
		assert_rc(zbl_iter_copy(&it, 1, &c), 0);
		assert_int_equal(c, expect[off]);
	}
	zbl_free(bl);
}

static void test_iter_over_file_segments_reads_file_bytes(void **state)
{
	(void)state;
	static const char text[] = "0123456789ABCDEFGHIJ";
	int fd = zt_temp_file(text, 20);
	zbl_t *bl = zt_new();
	zbl_iter_t it;
	const char *p;
	char buf[8];
	size_t got;

	assert_rc(zbl_append(bl, "<", 1), 0);
	assert_rc(zbl_append_file(bl, fd, 2, 10), 0);
	assert_rc(zbl_append(bl, ">", 1), 0);
	close(fd);
	assert_rc(zbl_iter_init(&it, bl, 1), 0);
	got = zbl_iter_get_ptr_and_advance(&it, 4, &p);
	assert_size_equal(got, 4);
	assert_memory_equal(p, "2345", 4);
	assert_rc(zbl_iter_copy(&it, 7, buf), 0);
	assert_memory_equal(buf, "6789AB>", 7);
	zbl_free(bl);
}

static void test_iter_null_arguments_are_harmless(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("ABC");
	zbl_iter_t it;
	const char *p = NULL;
	char c;

	assert_rc(zbl_iter_init(NULL, bl, 0), -EINVAL);
	assert_rc(zbl_iter_init(&it, NULL, 0), -EINVAL);
	assert_rc(zbl_iter_advance(NULL, 1), -EINVAL);
	assert_size_equal(zbl_iter_offset(NULL), 0);
	assert_size_equal(zbl_iter_remaining(NULL), 0);
	assert_rc(zbl_iter_copy(NULL, 1, &c), -EINVAL);
	assert_size_equal(zbl_iter_get_ptr_and_advance(NULL, 1, &p), 0);
	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	assert_rc(zbl_iter_copy(&it, 1, NULL), -EINVAL);
	assert_size_equal(zbl_iter_get_ptr_and_advance(&it, 1, NULL), 0);
	assert_size_equal(zbl_iter_offset(&it), 0);
	zbl_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iter_init_at_start_sees_whole_list),
		cmocka_unit_test(test_iter_init_at_offset_and_at_end),
		cmocka_unit_test(test_iter_init_past_end_is_out_of_range),
		cmocka_unit_test(test_iter_on_empty_list),
		cmocka_unit_test(test_iter_advance_crosses_segment_boundaries),
		cmocka_unit_test(test_iter_advance_past_end_fails_and_keeps_cursor),
		cmocka_unit_test(test_iter_copy_spans_segments_and_advances),
		cmocka_unit_test(test_iter_copy_of_more_than_remains_fails_and_keeps_cursor),
		cmocka_unit_test(test_get_ptr_and_advance_stops_at_segment_end),
		cmocka_unit_test(test_get_ptr_and_advance_returns_at_most_want),
		cmocka_unit_test(test_get_ptr_and_advance_points_into_shared_storage),
		cmocka_unit_test(test_iter_walks_a_long_list_with_mixed_steps),
		cmocka_unit_test(test_iter_init_at_every_offset_reads_the_right_byte),
		cmocka_unit_test(test_iter_over_file_segments_reads_file_bytes),
		cmocka_unit_test(test_iter_null_arguments_are_harmless),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
