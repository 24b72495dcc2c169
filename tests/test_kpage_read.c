/* SPDX-License-Identifier: MIT */
/*
 * Reading kernel pages held in pipes: zbl_copy_out, iterators, zbl_crc32c
 * (checked against ISA-L's crc32_iscsi), zbl_cmp, zbl_contents_equal,
 * zbl_hexdump, zbl_c_str and zbl_rebuild*. Each storage block is copied into
 * user memory at most once (bytes_materialized counts the block's bytes once,
 * materializations counts blocks; the copy is made by teeing the pipe into a
 * scratch pipe, so bytes_teed grows by the same amount), later reads do not
 * copy again, and later writes to descriptors still move the kernel pages
 * (bytes_spliced_out grows, bytes_copied_out stays 0) -- except after
 * zbl_c_str/zbl_rebuild, which turn the list into memory.
 */
#include "kpage_util.h"

#include <isa-l/crc.h>

#define N (2 * ZK_MiB + 777)

/* After splice_from every block is one segment of its own. */
static size_t blocks_of(const zbl_t *bl)
{
	return zbl_segments(bl);
}

static void test_copy_out_of_pipe_pages_materializes_each_block_once(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 1);
	zbl_t *bl = zk_pipe_list(N, 1);
	size_t blocks = blocks_of(bl);
	unsigned char *buf = malloc(N);

	assert_non_null(buf);
	assert_size_equal(zbl_kernel_bytes(bl), N);
	zbl_stats_reset();
	assert_rc(zbl_copy_out(bl, 0, N, buf), 0);
	zk_assert_bytes(buf, bytes, N);
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks, .bytes_teed = N);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	/* Reading again, whole or in odd pieces, copies nothing more from the kernel. */
	memset(buf, 0, N);
	assert_rc(zbl_copy_out(bl, 0, N, buf), 0);
	zk_assert_bytes(buf, bytes, N);
	for (size_t off = 1; off < N; off += 99991) {
		size_t len = N - off < 70001 ? N - off : 70001;
		assert_rc(zbl_copy_out(bl, off, len, buf), 0);
		zk_assert_bytes(buf, bytes + off, len);
	}
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks, .bytes_teed = N);
	zbl_free(bl);
	free(buf);
	free(bytes);
}

static void test_crc32c_of_pipe_pages_matches_isal_and_materializes_once(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 2);
	zbl_t *bl = zk_pipe_list(N, 2), *win = zt_new();
	size_t blocks = blocks_of(bl);
	const uint32_t seeds[] = { 0, ~0u, 0x12345678u };

	zbl_stats_reset();
	for (size_t i = 0; i < 3; i++)
		assert_crc_equal(zbl_crc32c(bl, seeds[i]), crc32_iscsi(bytes, (int)N, seeds[i]));
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks, .bytes_teed = N);
	assert_rc(zbl_substr_of(win, bl, 4097, ZK_MiB + 3), 0);
	assert_crc_equal(zbl_crc32c(win, 7), crc32_iscsi(bytes + 4097, (int)(ZK_MiB + 3), 7));
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks, .bytes_teed = N);
	/* A window of fresh pipe pages, read through its window only. */
	zbl_t *fresh = zk_pipe_list(N, 2), *fwin = zt_new();
	assert_rc(zbl_substr_of(fwin, fresh, 333333, 1000001), 0);
	zbl_free(fresh);
	assert_crc_equal(zbl_crc32c(fwin, 0), crc32_iscsi(bytes + 333333, 1000001, 0));
	zbl_free(fwin);
	zbl_free(win);
	zbl_free(bl);
	free(bytes);
}

static void test_iterators_read_pipe_pages_exactly_and_materialize_once(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 3);
	zbl_t *bl = zk_pipe_list(N, 3);
	size_t blocks = blocks_of(bl);
	unsigned char *buf = malloc(N);
	zbl_iter_t it;
	const char *p;
	size_t got, pos = 0;

	assert_non_null(buf);
	zbl_stats_reset();
	assert_rc(zbl_iter_init(&it, bl, 12345), 0);
	assert_rc(zbl_iter_copy(&it, 70000, buf), 0);
	zk_assert_bytes(buf, bytes + 12345, 70000);
	assert_size_equal(zbl_iter_offset(&it), 12345 + 70000);
	assert_rc(zbl_iter_advance(&it, ZK_MiB), 0);
	assert_size_equal(zbl_iter_remaining(&it), N - 12345 - 70000 - ZK_MiB);
	assert_rc(zbl_iter_copy(&it, zbl_iter_remaining(&it), buf), 0);
	zk_assert_bytes(buf, bytes + 12345 + 70000 + ZK_MiB, N - 12345 - 70000 - ZK_MiB);
	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	while ((got = zbl_iter_get_ptr_and_advance(&it, 100000, &p)) > 0) {
		assert_non_null(p);
		zk_assert_bytes(p, bytes + pos, got);
		pos += got;
	}
	assert_size_equal(pos, N);
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks, .bytes_teed = N);
	zbl_free(bl);
	free(buf);
	free(bytes);
}

static void test_cmp_and_contents_equal_compare_pipe_pages_by_their_bytes(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 4);
	zbl_t *a = zk_pipe_list(N, 4), *b = zk_pipe_list(N, 4);
	zbl_t *mem = zt_new(), *bigger = zt_new(), *prefix = zt_new();
	size_t blocks = blocks_of(a) + blocks_of(b);

	assert_rc(zbl_append(mem, bytes, N), 0);
	bytes[N - 5] ^= 0x80;
	assert_rc(zbl_append(bigger, bytes, N), 0);
	bool a_smaller = (bytes[N - 5] & 0x80) != 0;
	bytes[N - 5] ^= 0x80;
	assert_rc(zbl_append(prefix, bytes, N - 1), 0);

	zbl_stats_reset();
	assert_true(zbl_contents_equal(a, b));
	assert_int_equal(zbl_cmp(a, b), 0);
	assert_true(zbl_contents_equal(a, mem));
	assert_int_equal(zbl_cmp(mem, b), 0);
	assert_false(zbl_contents_equal(a, bigger));
	if (a_smaller)
		assert_true(zbl_cmp(a, bigger) < 0 && zbl_cmp(bigger, b) > 0);
	else
		assert_true(zbl_cmp(a, bigger) > 0 && zbl_cmp(bigger, b) < 0);
	assert_false(zbl_contents_equal(a, prefix));
	assert_true(zbl_cmp(prefix, a) < 0);
	assert_true(zbl_cmp(b, prefix) > 0);
	zk_assert_stats(.bytes_materialized = 2 * N, .materializations = blocks,
			.bytes_teed = 2 * N);
	zbl_free(a);
	zbl_free(b);
	zbl_free(mem);
	zbl_free(bigger);
	zbl_free(prefix);
	free(bytes);
}

static void test_hexdump_of_pipe_pages_equals_hexdump_of_the_same_bytes_in_memory(void **state)
{
	(void)state;
	zk_begin(30);
	/* Pattern, a run of zeros (folded to '*'), pattern again, odd length. */
	size_t n = 1000 + 5000 + 1237;
	unsigned char *bytes = calloc(1, n);

	assert_non_null(bytes);
	zk_pat_fill(bytes, 1000, 5, 0);
	zk_pat_fill(bytes + 6000, 1237, 5, 6000);
	zbl_t *bl = zt_new(), *mem = zt_new();
	zk_splice_from_writer(bl, ZK_UNIX, (struct zk_writer){ .buf = bytes, .len = n, .chunk = 3000 });
	assert_rc(zbl_append(mem, bytes, n), 0);

	zbl_stats_reset();
	char *h1 = zt_hexdump_str(bl), *h2 = zt_hexdump_str(mem);
	assert_string_equal(h1, h2);
	assert_non_null(strstr(h1, "\n*\n"));
	free(h1);
	h1 = zt_hexdump_str(bl);
	assert_string_equal(h1, h2);
	zk_assert_stats(.bytes_materialized = n, .materializations = blocks_of(bl),
			.bytes_teed = n);
	free(h1);
	free(h2);
	zbl_free(bl);
	zbl_free(mem);
	free(bytes);
}

static void test_writing_after_reading_still_moves_the_pages_without_copying(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 6);
	zbl_t *bl = zk_pipe_list(N, 6);
	size_t blocks = blocks_of(bl);
	unsigned char *flat;

	zbl_stats_reset();
	flat = zt_flat(bl);
	free(flat);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	zk_assert_out(zk_write_to(bl, ZK_FILE, 0), bytes, N);
	zk_assert_out(zk_write_to(bl, ZK_TCP, ZK_WRITE_FD), bytes, N);
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks,
			.bytes_spliced_out = 2 * N, .bytes_teed = 3 * N);
	zk_assert_out(zk_write_to(bl, ZK_UNIX, ZBL_DRAIN), bytes, N);
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks,
			.bytes_spliced_out = 3 * N, .bytes_teed = 3 * N);
	zbl_free(bl);
	free(bytes);
}

static void test_kernel_bytes_go_from_the_length_to_zero_as_blocks_are_read(void **state)
{
	(void)state;
	zk_begin(30);
	zbl_t *bl = zk_pipe_list(N, 7), *win = zt_new();
	char c;

	assert_size_equal(zbl_kernel_bytes(bl), N);
	assert_rc(zbl_substr_of(win, bl, 100, 1000), 0);
	assert_size_equal(zbl_kernel_bytes(win), 1000);
	/* Reading one byte of the last block copies that block only. */
	assert_rc(zbl_copy_out(bl, N - 1, 1, &c), 0);
	size_t kb = zbl_kernel_bytes(bl);
	if (blocks_of(bl) > 1) {
		assert_true(kb > 0 && kb < N);
		assert_size_equal(zbl_kernel_bytes(win), 1000); /* in the first block, not read */
	}
	unsigned char *flat = zt_flat(bl);
	free(flat);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	assert_size_equal(zbl_kernel_bytes(win), 0);
	zbl_free(win);
	zbl_free(bl);
}

static void test_c_str_of_pipe_pages_gives_memory_and_leaves_no_kernel_bytes(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 8);
	zbl_t *bl = zk_pipe_list(N, 8);
	const char *p;

	zbl_stats_reset();
	p = zbl_c_str(bl);
	assert_non_null(p);
	zk_assert_bytes(p, bytes, N);
	assert_size_equal(zbl_segments(bl), 1);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	zk_assert_stats(.bytes_materialized = ZK_ANY, .materializations = ZK_ANY,
			.bytes_teed = ZK_ANY);
	assert_true(zk_stats().bytes_materialized >= N);
	/* The list is memory now: writing it copies from user memory. */
	zbl_stats_reset();
	zk_assert_out(zk_write_to(bl, ZK_FILE, 0), bytes, N);
	zk_assert_stats(.bytes_copied_out = N);
	zbl_free(bl);
	free(bytes);
}

static void test_rebuild_of_pipe_pages_gives_memory_with_the_same_bytes(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 9);
	zbl_t *a = zk_pipe_list(N, 9), *b = zk_pipe_list(N, 9);

	assert_rc(zbl_rebuild(a), 0);
	assert_size_equal(zbl_segments(a), 1);
	assert_size_equal(zbl_kernel_bytes(a), 0);
	assert_list_bytes(a, bytes, N);
	assert_rc(zbl_rebuild_aligned(b, 4096), 0);
	assert_size_equal(zbl_kernel_bytes(b), 0);
	assert_list_bytes(b, bytes, N);
	zbl_free(a);
	zbl_free(b);
	free(bytes);
}

static void test_reading_part_of_a_block_materializes_the_whole_block_once(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 100000;
	unsigned char *bytes = zk_pat_alloc(n, 10);
	zbl_t *bl = zk_file_pipe_list(n, 10), *win = zt_new();
	char buf[10];

	if (blocks_of(bl) != 1)
		fail_msg("100000 bytes spliced from a file took %zu blocks", blocks_of(bl));
	assert_rc(zbl_substr_of(win, bl, 1000, 10), 0);
	zbl_stats_reset();
	assert_rc(zbl_copy_out(win, 0, 10, buf), 0);
	zk_assert_bytes(buf, bytes + 1000, 10);
	zk_assert_stats(.bytes_materialized = n, .materializations = 1, .bytes_teed = n);
	assert_list_bytes(bl, bytes, n);
	zk_assert_stats(.bytes_materialized = n, .materializations = 1, .bytes_teed = n);
	zbl_free(win);
	zbl_free(bl);
	free(bytes);
}

/*
 * A list drains the front of its only block into a non-blocking pipe that
 * takes 64 KiB, then reads the rest: only the bytes still held are copied.
 */
static void test_reading_after_a_partial_drain_copies_only_the_bytes_still_held(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 100000;
	unsigned char *bytes = zk_pat_alloc(n, 11);
	zbl_t *bl = zk_file_pipe_list(n, 11);
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	ssize_t r = zbl_splice_to(bl, p[1], NULL, ZBL_DRAIN);
	assert_true(r > 0 && (size_t)r < n);
	close(p[0]);
	close(p[1]);
	size_t left = n - (size_t)r;
	assert_size_equal(zbl_length(bl), left);
	zbl_stats_reset();
	assert_list_bytes(bl, bytes + r, left);
	zk_assert_stats(.bytes_materialized = left, .materializations = 1, .bytes_teed = left);
	zbl_free(bl);
	free(bytes);
}

static void test_lists_sharing_blocks_materialize_them_once_between_them(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *bytes = zk_pat_alloc(N, 12);
	zbl_t *a = zk_pipe_list(N, 12), *b = zt_new(), *w = zt_new();
	size_t blocks = blocks_of(a);

	assert_rc(zbl_append_list(b, a), 0);
	assert_rc(zbl_substr_of(w, a, 5, N - 10), 0);
	zbl_stats_reset();
	assert_list_bytes(w, bytes + 5, N - 10);
	assert_list_bytes(b, bytes, N);
	assert_list_bytes(a, bytes, N);
	assert_crc_equal(zbl_crc32c(b, 0), crc32_iscsi(bytes, (int)N, 0));
	zk_assert_stats(.bytes_materialized = N, .materializations = blocks, .bytes_teed = N);
	zbl_free(a);
	zbl_free(b);
	zbl_free(w);
	free(bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_out_of_pipe_pages_materializes_each_block_once),
		cmocka_unit_test(test_crc32c_of_pipe_pages_matches_isal_and_materializes_once),
		cmocka_unit_test(test_iterators_read_pipe_pages_exactly_and_materialize_once),
		cmocka_unit_test(test_cmp_and_contents_equal_compare_pipe_pages_by_their_bytes),
		cmocka_unit_test(test_hexdump_of_pipe_pages_equals_hexdump_of_the_same_bytes_in_memory),
		cmocka_unit_test(test_writing_after_reading_still_moves_the_pages_without_copying),
		cmocka_unit_test(test_kernel_bytes_go_from_the_length_to_zero_as_blocks_are_read),
		cmocka_unit_test(test_c_str_of_pipe_pages_gives_memory_and_leaves_no_kernel_bytes),
		cmocka_unit_test(test_rebuild_of_pipe_pages_gives_memory_with_the_same_bytes),
		cmocka_unit_test(test_reading_part_of_a_block_materializes_the_whole_block_once),
		cmocka_unit_test(test_reading_after_a_partial_drain_copies_only_the_bytes_still_held),
		cmocka_unit_test(test_lists_sharing_blocks_materialize_them_once_between_them),
	};

	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
