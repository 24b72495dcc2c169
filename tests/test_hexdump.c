/* SPDX-License-Identifier: MIT */
/*
 * zbl_hexdump must write exactly what `hexdump -C` writes for the same bytes:
 * each case runs /usr/bin/hexdump -C on a file holding the list's bytes and
 * compares the two outputs character for character. The program skips (exit
 * 77) where hexdump is not installed.
 */
#include "zbl_test.h"

#include <sys/wait.h>

#define HEXDUMP "/usr/bin/hexdump"

/* Output of `hexdump -C` on @len bytes of @data, as a malloc'ed string. */
static char *ref_dump(const void *data, size_t len)
{
	char path[] = "/tmp/zbl-hexdump-XXXXXX";
	char cmd[128];
	int fd = mkstemp(path);
	FILE *p;
	char *out = NULL;
	size_t size = 0, cap = 0;

	assert_true(fd >= 0);
	zt_write_full(fd, data, len);
	close(fd);
	snprintf(cmd, sizeof(cmd), HEXDUMP " -C %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	for (;;) {
		size_t r;

		if (cap - size < 4096) {
			cap = cap ? 2 * cap : 65536;
			out = realloc(out, cap + 1);
			assert_non_null(out);
		}
		r = fread(out + size, 1, cap - size, p);
		if (r == 0)
			break;
		size += r;
	}
	assert_int_equal(pclose(p), 0);
	unlink(path);
	if (!out) {
		out = malloc(1);
		assert_non_null(out);
	}
	out[size] = '\0';
	return out;
}

/* Asserts zbl_hexdump(bl) equals hexdump -C over the list's bytes, line by line. */
static void assert_dump_matches_hexdump(const zbl_t *bl)
{
	unsigned char *flat = zt_flat(bl);
	char *want = ref_dump(flat, zbl_length(bl));
	char *got = zt_hexdump_str(bl);

	if (strcmp(got, want) != 0) {
		const char *g = got, *w = want;
		int line = 1;

		while (*g && *g == *w) {
			if (*g == '\n')
				line++;
			g++;
			w++;
		}
		print_error("zbl_hexdump output:\n%s\nhexdump -C output:\n%s\n", got, want);
		fail_msg("outputs differ at line %d (length %zu): got \"%.80s\", expected \"%.80s\"",
			 line, zbl_length(bl), g, w);
	}
	free(flat);
	free(want);
	free(got);
}

/* Builds a list from @len bytes of @data cut into pieces of at most @piece bytes. */
static zbl_t *list_in_pieces(const void *data, size_t len, size_t piece)
{
	zbl_t *bl = zt_new();
	const char *p = data;

	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;

		assert_rc(zbl_append_ref(bl, p + off, n, NULL, NULL), 0);
	}
	return bl;
}

static void test_hexdump_of_empty_list_writes_nothing(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	char *got = zt_hexdump_str(bl);

	assert_string_equal(got, "");
	free(got);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_of_one_byte_matches_known_text(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("A");
	char *got = zt_hexdump_str(bl);

	assert_string_equal(got,
		"00000000  41                                                |A|\n"
		"00000001\n");
	free(got);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_of_two_full_rows_matches_known_text(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	char *got;

	/* Ceph's hexdump input, with an embedded NUL. */
	assert_rc(zbl_append(bl, "013245678901234\0006789012345678901234", 32), 0);
	got = zt_hexdump_str(bl);
	assert_string_equal(got,
		"00000000  30 31 33 32 34 35 36 37  38 39 30 31 32 33 34 00  |013245678901234.|\n"
		"00000010  36 37 38 39 30 31 32 33  34 35 36 37 38 39 30 31  |6789012345678901|\n"
		"00000020\n");
	free(got);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_of_partial_rows_around_sixteen(void **state)
{
	(void)state;
	static const char text[] = "The quick brown fox jumps over the lazy dog, twice over.";
	static const size_t lens[] = { 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 49, 55 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		zbl_t *bl = list_in_pieces(text, lens[i], 5);

		assert_dump_matches_hexdump(bl);
		zbl_free(bl);
	}
}

static void test_hexdump_shows_unprintable_bytes_as_dots(void **state)
{
	(void)state;
	unsigned char all[256];
	zbl_t *bl;

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	bl = list_in_pieces(all, sizeof(all), 37);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_folds_repeated_rows_into_a_star(void **state)
{
	(void)state;
	unsigned char zeros[64] = { 0 };
	zbl_t *bl = list_in_pieces(zeros, sizeof(zeros), 64);
	char *got = zt_hexdump_str(bl);

	assert_string_equal(got,
		"00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
		"*\n"
		"00000040\n");
	free(got);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_folds_repeats_in_the_middle_and_resumes(void **state)
{
	(void)state;
	unsigned char buf[16 * 8 + 5];
	zbl_t *bl;

	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "header row bytes", 16);
	memcpy(buf + 16 * 6, "a different row.", 16);
	bl = list_in_pieces(buf, sizeof(buf), 13);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_does_not_fold_a_partial_last_row(void **state)
{
	(void)state;
	unsigned char buf[16 * 3 + 8];
	zbl_t *bl;

	memset(buf, 'r', sizeof(buf));
	bl = list_in_pieces(buf, sizeof(buf), 16);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_two_equal_rows_then_end(void **state)
{
	(void)state;
	unsigned char buf[32];
	zbl_t *bl;

	memset(buf, 0xAB, sizeof(buf));
	bl = list_in_pieces(buf, sizeof(buf), 7);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_separate_runs_of_repeats(void **state)
{
	(void)state;
	unsigned char buf[16 * 20];
	zbl_t *bl;

	memset(buf, 0, sizeof(buf));
	memset(buf + 16 * 5, 1, 16);
	memset(buf + 16 * 9, 1, 16 * 4);
	memset(buf + 16 * 15, 0, 16 * 5);
	buf[16 * 19 + 3] = 9;
	bl = list_in_pieces(buf, sizeof(buf), 100);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_of_random_multi_segment_lists(void **state)
{
	(void)state;
	uint64_t rs = 31;

	for (int round = 0; round < 60; round++) {
		size_t len = zt_rand(&rs) % 400;
		unsigned char *buf = malloc(len + 1);
		int alphabet = 1 + (int)(zt_rand(&rs) % 3);
		zbl_t *bl = zt_new();

		assert_non_null(buf);
		/* A tiny alphabet in 16-byte rows makes repeated rows likely. */
		for (size_t i = 0; i < len; i += 16) {
			unsigned char v = (unsigned char)(zt_rand(&rs) % (unsigned)alphabet);

			for (size_t j = i; j < len && j < i + 16; j++)
				buf[j] = (alphabet == 3 && (zt_rand(&rs) & 1)) ? 'q' : v;
		}
		zt_append_random_pieces(bl, buf, len, 40, &rs);
		assert_dump_matches_hexdump(bl);
		zbl_free(bl);
		free(buf);
	}
}

static void test_hexdump_of_large_mostly_zero_list(void **state)
{
	(void)state;
	size_t len = 1 << 20;
	unsigned char *buf = calloc(1, len);
	zbl_t *bl = zt_new();

	assert_non_null(buf);
	buf[len / 2 + 3] = 0x42;
	buf[len - 1] = 0x7f;
	assert_rc(zbl_append(bl, buf, len / 3), 0);
	assert_rc(zbl_append_ref(bl, buf + len / 3, len - len / 3, NULL, NULL), 0);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
	free(buf);
}

static void test_hexdump_of_file_segments(void **state)
{
	(void)state;
	unsigned char data[1000];
	zbl_t *bl = zt_new();
	int fd;

	zt_fill_random(data, sizeof(data), 32);
	memset(data + 100, 'z', 200);
	fd = zt_temp_file(data, sizeof(data));
	assert_rc(zbl_append_file(bl, fd, 3, 990), 0);
	close(fd);
	assert_dump_matches_hexdump(bl);
	zbl_free(bl);
}

static void test_hexdump_to_a_regular_file(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("hello, ", "hexdump ", "file\n");
	FILE *f = tmpfile();
	char buf[512];
	size_t n;
	unsigned char *flat = zt_flat(bl);
	char *want = ref_dump(flat, zbl_length(bl));

	assert_non_null(f);
	assert_rc(zbl_hexdump(bl, f), 0);
	assert_int_equal(fflush(f), 0);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	assert_string_equal(buf, want);
	fclose(f);
	free(flat);
	free(want);
	zbl_free(bl);
}

static void test_hexdump_reports_write_failure_as_eio(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	unsigned char data[20000];
	FILE *f = fopen("/dev/full", "w");

	if (!f) {
		skip();
		return;
	}
	zt_fill_random(data, sizeof(data), 33);
	assert_rc(zbl_append(bl, data, sizeof(data)), 0);
	assert_rc(zbl_hexdump(bl, f), -EIO);
	fclose(f);
	zbl_free(bl);
}

static void test_hexdump_rejects_null_arguments(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("x");

	assert_rc(zbl_hexdump(NULL, stdout), -EINVAL);
	assert_rc(zbl_hexdump(bl, NULL), -EINVAL);
	zbl_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hexdump_of_empty_list_writes_nothing),
		cmocka_unit_test(test_hexdump_of_one_byte_matches_known_text),
		cmocka_unit_test(test_hexdump_of_two_full_rows_matches_known_text),
		cmocka_unit_test(test_hexdump_of_partial_rows_around_sixteen),
		cmocka_unit_test(test_hexdump_shows_unprintable_bytes_as_dots),
		cmocka_unit_test(test_hexdump_folds_repeated_rows_into_a_star),
		cmocka_unit_test(test_hexdump_folds_repeats_in_the_middle_and_resumes),
		cmocka_unit_test(test_hexdump_does_not_fold_a_partial_last_row),
		cmocka_unit_test(test_hexdump_two_equal_rows_then_end),
		cmocka_unit_test(test_hexdump_separate_runs_of_repeats),
		cmocka_unit_test(test_hexdump_of_random_multi_segment_lists),
		cmocka_unit_test(test_hexdump_of_large_mostly_zero_list),
		cmocka_unit_test(test_hexdump_of_file_segments),
		cmocka_unit_test(test_hexdump_to_a_regular_file),
		cmocka_unit_test(test_hexdump_reports_write_failure_as_eio),
		cmocka_unit_test(test_hexdump_rejects_null_arguments),
	};

	if (access(HEXDUMP, X_OK) != 0) {
		printf("SKIP: %s is not installed; zbl_hexdump needs it as the reference\n",
		       HEXDUMP);
		return ZBL_TEST_SKIP;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
