/* SPDX-License-Identifier: MIT */
/*
 * zbl_crc32c: CRC-32C with Ceph's convention (no inversion), checked against
 * known values and against ISA-L's crc32_iscsi over a flat copy, including
 * the per-block CRC cache (repeated calls, other seeds, other windows).
 */
#include "zbl_test.h"

/* Asserts zbl_crc32c(bl, seed) equals ISA-L's CRC of the list's flat bytes. */
static void assert_crc_matches_reference(const zbl_t *bl, uint32_t seed)
{
	unsigned char *flat = zt_flat(bl);
	uint32_t want = zt_ref_crc32c(flat, zbl_length(bl), seed);

	free(flat);
	errno = EBADF;
	assert_crc_equal(zbl_crc32c(bl, seed), want);
	assert_int_equal(errno, 0);
}

static void test_reference_crc_agrees_with_published_values(void **state)
{
	(void)state;
	assert_crc_equal(zt_ref_crc32c("A", 1, 0), 0xB3109EBF);
	assert_crc_equal(~zt_ref_crc32c("123456789", 9, ~0u), 0xE3069283);
}

static void test_crc32c_of_A_with_seed_zero(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("A");
	uint32_t crc;

	crc = zbl_crc32c(bl, 0);
	assert_crc_equal(crc, 0xB3109EBF);
	/* Ceph's test feeds the result back as the next seed. */
	crc = zbl_crc32c(bl, crc);
	assert_crc_equal(crc, 0x5FA5C0CC);
	zbl_free(bl);
}

static void test_crc32c_check_value_with_inversion(void **state)
{
	(void)state;
	zbl_t *one = ZT_LIST("123456789");
	zbl_t *many = ZT_LIST("1", "23", "456", "789");

	assert_crc_equal(~zbl_crc32c(one, ~0u), 0xE3069283);
	assert_crc_equal(~zbl_crc32c(many, ~0u), 0xE3069283);
	zbl_free(one);
	zbl_free(many);
}

static void test_crc32c_of_empty_or_null_list_returns_seed(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();

	assert_crc_equal(zbl_crc32c(bl, 0), 0);
	assert_crc_equal(zbl_crc32c(bl, 0xDEADBEEF), 0xDEADBEEF);
	assert_crc_equal(zbl_crc32c(NULL, 0x12345678), 0x12345678);
	zbl_free(bl);
}

static void test_crc32c_of_many_segments_equals_single_segment(void **state)
{
	(void)state;
	enum { LEN = 300000 };
	unsigned char *data = zt_random_bytes(LEN, 21);
	uint64_t rs = 1234;
	static const uint32_t seeds[] = { 0, 1, 5, 0xFFFFFFFF, 0x80000000, 0x1EDC6F41 };

	for (int round = 0; round < 20; round++) {
		zbl_t *single = zt_new(), *multi = zt_new();
		size_t pos = 0, maxpiece = 1 + zt_rand(&rs) % (round < 10 ? 64 : 70000);

		assert_rc(zbl_append_ref(single, data, LEN, NULL, NULL), 0);
		while (pos < LEN) {
			size_t n = 1 + zt_rand(&rs) % maxpiece;

			if (n > LEN - pos)
				n = LEN - pos;
			assert_rc(zbl_append_ref(multi, data + pos, n, NULL, NULL), 0);
			pos += n;
		}
		for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
			uint32_t want = zt_ref_crc32c(data, LEN, seeds[i]);

			assert_crc_equal(zbl_crc32c(single, seeds[i]), want);
			assert_crc_equal(zbl_crc32c(multi, seeds[i]), want);
		}
		zbl_free(single);
		zbl_free(multi);
	}
	free(data);
}

static void test_crc32c_continues_from_previous_result(void **state)
{
	(void)state;
	enum { LEN = 200000 };
	unsigned char *data = zt_random_bytes(LEN, 22);
	zbl_t *whole = zt_new(), *head = zt_new(), *tail = zt_new();

	assert_rc(zbl_append(whole, data, LEN), 0);
	for (size_t cut = 0; cut <= LEN; cut += 33333) {
		uint32_t seed = (uint32_t)cut * 2654435761u;

		assert_rc(zbl_substr_of(head, whole, 0, cut), 0);
		assert_rc(zbl_substr_of(tail, whole, cut, LEN - cut), 0);
		assert_crc_equal(zbl_crc32c(tail, zbl_crc32c(head, seed)),
				 zbl_crc32c(whole, seed));
		assert_crc_equal(zbl_crc32c(whole, seed), zt_ref_crc32c(data, LEN, seed));
	}
	free(data);
	zbl_free(whole);
	zbl_free(head);
	zbl_free(tail);
}

static void test_crc32c_repeated_calls_and_other_seeds_stay_correct(void **state)
{
	(void)state;
	size_t len = 4 << 20;
	unsigned char *data = zt_random_bytes(len, 23);
	zbl_t *bl = zt_new(), *shared = zt_new();
	static const uint32_t seeds[] = { 0, 0, 5, 5, 0, 0xFFFFFFFF, 7, 0xFFFFFFFF, 0 };

	assert_rc(zbl_append(bl, data, len), 0);
	assert_rc(zbl_append_list(shared, bl), 0);
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		uint32_t want = zt_ref_crc32c(data, len, seeds[i]);

		assert_crc_equal(zbl_crc32c(bl, seeds[i]), want);
		assert_crc_equal(zbl_crc32c(shared, seeds[i]), want);
	}
	free(data);
	zbl_free(bl);
	zbl_free(shared);
}

static void test_crc32c_of_different_windows_of_one_block(void **state)
{
	(void)state;
	size_t len = 1 << 20;
	unsigned char *data = zt_random_bytes(len, 24);
	zbl_t *bl = zt_new(), *win = zt_new();
	static const size_t w[][2] = {
		{ 0, 1 << 20 }, { 0, 1 << 19 }, { 1, (1 << 20) - 1 }, { 4096, 65536 },
		{ 0, 1 << 20 }, { 100000, 900000 }, { 4096, 65536 }, { 4097, 65535 },
	};

	assert_rc(zbl_append(bl, data, len), 0);
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		for (uint32_t seed = 0; seed < 3; seed++) {
			assert_rc(zbl_substr_of(win, bl, w[i][0], w[i][1]), 0);
			assert_crc_equal(zbl_crc32c(win, seed),
					 zt_ref_crc32c(data + w[i][0], w[i][1], seed));
		}
	}
	free(data);
	zbl_free(bl);
	zbl_free(win);
}

static void test_crc32c_after_appending_into_tail_room_covers_new_bytes(void **state)
{
	(void)state;
	enum { LEN = 100000 };
	unsigned char *data = zt_random_bytes(LEN, 25);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append(bl, data, LEN / 2), 0);
	assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, LEN / 2, 0));
	for (size_t pos = LEN / 2; pos < LEN; pos += 1000) {
		assert_rc(zbl_append(bl, data + pos, 1000), 0);
		assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, pos + 1000, 0));
		assert_crc_equal(zbl_crc32c(bl, 9), zt_ref_crc32c(data, pos + 1000, 9));
	}
	free(data);
	zbl_free(bl);
}

static void test_crc32c_after_splice_and_substr_reflects_new_contents(void **state)
{
	(void)state;
	enum { LEN = 500000 };
	unsigned char *data = zt_random_bytes(LEN, 26);
	zbl_t *bl = zt_new(), *cut = zt_new();

	assert_rc(zbl_append(bl, data, LEN), 0);
	assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, LEN, 0));
	assert_rc(zbl_splice(bl, 1000, 100000, cut), 0);
	assert_crc_matches_reference(bl, 0);
	assert_crc_matches_reference(bl, 0xFFFFFFFF);
	assert_crc_equal(zbl_crc32c(cut, 0), zt_ref_crc32c(data + 1000, 100000, 0));
	assert_rc(zbl_substr_of(bl, bl, 1, zbl_length(bl) - 2), 0);
	assert_crc_matches_reference(bl, 0);
	free(data);
	zbl_free(bl);
	zbl_free(cut);
}

static void test_crc32c_of_appended_lists_with_prior_random_seeds(void **state)
{
	(void)state;
	/* Ceph's crc32c_append: cached per-segment CRCs must not leak into the total. */
	zbl_t *bl1 = zt_new(), *bl2 = zt_new();
	uint64_t rs = 27;

	for (int j = 0; j < 200; j++) {
		zbl_t *bl = zt_new();

		for (int i = 0; i < 200; i++) {
			char x = (char)zt_rand(&rs);

			assert_rc(zbl_append(bl, &x, 1), 0);
			assert_rc(zbl_append(bl1, &x, 1), 0);
		}
		(void)zbl_crc32c(bl, (uint32_t)zt_rand(&rs));
		assert_rc(zbl_append_list(bl2, bl), 0);
		zbl_free(bl);
	}
	assert_crc_equal(zbl_crc32c(bl2, 0), zbl_crc32c(bl1, 0));
	assert_crc_matches_reference(bl2, 0);
	assert_crc_matches_reference(bl2, 0x7);
	zbl_free(bl1);
	zbl_free(bl2);
}

static void test_crc32c_of_same_large_block_twice_in_one_list(void **state)
{
	(void)state;
	size_t len = 1 << 20;
	unsigned char *data = zt_random_bytes(len, 28);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, data, len, NULL, NULL), 0);
	assert_rc(zbl_append_list(bl, bl), 0);
	assert_crc_matches_reference(bl, 0);
	assert_crc_matches_reference(bl, 3);
	assert_crc_matches_reference(bl, 0);
	free(data);
	zbl_free(bl);
}

static void test_crc32c_after_invalidate_crc_sees_changed_bytes(void **state)
{
	(void)state;
	size_t len = 1 << 20;
	unsigned char *data = zt_random_bytes(len, 29);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_ref(bl, data, len, NULL, NULL), 0);
	assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, len, 0));
	/* Changing referenced memory breaks the rules; invalidate_crc repairs it. */
	data[len / 2] ^= 0xFF;
	zbl_invalidate_crc(bl);
	assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, len, 0));
	assert_crc_equal(zbl_crc32c(bl, 1), zt_ref_crc32c(data, len, 1));
	zbl_invalidate_crc(NULL);
	zbl_free(bl);
	free(data);
}

static void test_crc32c_over_file_segments_matches_reference(void **state)
{
	(void)state;
	enum { LEN = 70000 };
	unsigned char *data = zt_random_bytes(LEN, 30);
	zbl_t *bl = zt_new();
	int fd;

	fd = zt_temp_file(data, LEN);
	assert_rc(zbl_append(bl, data, 10), 0);
	assert_rc(zbl_append_file(bl, fd, 10, LEN - 20), 0);
	assert_rc(zbl_append(bl, data + LEN - 10, 10), 0);
	close(fd);
	assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, LEN, 0));
	assert_crc_equal(zbl_crc32c(bl, 0), zt_ref_crc32c(data, LEN, 0));
	assert_crc_equal(zbl_crc32c(bl, 77), zt_ref_crc32c(data, LEN, 77));
	free(data);
	zbl_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_crc_agrees_with_published_values),
		cmocka_unit_test(test_crc32c_of_A_with_seed_zero),
		cmocka_unit_test(test_crc32c_check_value_with_inversion),
		cmocka_unit_test(test_crc32c_of_empty_or_null_list_returns_seed),
		cmocka_unit_test(test_crc32c_of_many_segments_equals_single_segment),
		cmocka_unit_test(test_crc32c_continues_from_previous_result),
		cmocka_unit_test(test_crc32c_repeated_calls_and_other_seeds_stay_correct),
		cmocka_unit_test(test_crc32c_of_different_windows_of_one_block),
		cmocka_unit_test(test_crc32c_after_appending_into_tail_room_covers_new_bytes),
		cmocka_unit_test(test_crc32c_after_splice_and_substr_reflects_new_contents),
		cmocka_unit_test(test_crc32c_of_appended_lists_with_prior_random_seeds),
		cmocka_unit_test(test_crc32c_of_same_large_block_twice_in_one_list),
		cmocka_unit_test(test_crc32c_after_invalidate_crc_sees_changed_bytes),
		cmocka_unit_test(test_crc32c_over_file_segments_matches_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
