/* SPDX-License-Identifier: MIT */
/*
 * Direct I/O (zbl.h, "File descriptors"; docs/DESIGN.md, sections "Writing
 * to O_DIRECT files" and "Reading into lists laid out for O_DIRECT"): every
 * function that moves a list to or from a descriptor takes one opened with
 * O_DIRECT at any offset and length, with the result a buffered write or
 * read gives. Each write here is compared byte for byte with the same bytes
 * written by pwrite(2) to a buffered copy of the file, and the counters are
 * checked: aligned runs of list memory in bytes_direct, the rest in
 * bytes_staged, every byte once in bytes_copied_out.
 *
 * O_DIRECT needs a file system that does it and says its alignment (statx
 * STATX_DIOALIGN): the files are made in the working directory (ctest runs
 * the tests in the build tree, on the root file system here) or in
 * $ZBL_DIRECT_DIR. Where it cannot, the program prints "skipped: <why>" and
 * exits 77.
 */
#include "kpage_util.h"

#include <sys/uio.h>

static const char *dir = ".";
static size_t blk, mem_align; /* what statx says of files in dir */

/* ------------------------------------------------------------------------ */
/* Files.                                                                    */

/*
 * A new file in dir holding @n bytes of @init, opened with O_DIRECT and
 * @flags (O_RDWR, O_WRONLY, O_APPEND...); unlinked already. -errno if it
 * cannot be made or opened.
 */
static int direct_file(const void *init, size_t n, int flags)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/zbl-direct-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	zt_write_full(fd, init, n);
	close(fd);
	fd = open(path, flags | O_DIRECT | O_CLOEXEC);
	int err = errno;
	unlink(path);
	return fd >= 0 ? fd : -err;
}

/* The same, failing the test if it cannot be opened. */
static int direct_file_ok(const void *init, size_t n, int flags)
{
	int fd = direct_file(init, n, flags);

	if (fd < 0)
		fail_msg("opening a file in %s with O_DIRECT: %s", dir, zt_errname(fd));
	return fd;
}

/* Everything in the file behind @fd, read through a descriptor of its own without O_DIRECT. */
static unsigned char *file_bytes(int fd, size_t *len)
{
	char link[64];

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	int rfd = open(link, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	unsigned char *p = zt_file_contents(rfd, len);
	close(rfd);
	return p;
}

/*
 * What a buffered file holding @n bytes of @init contains after pwrite(2) of
 * @len bytes of @data at @off: the reference every direct write must match.
 */
static unsigned char *buffered_reference(const void *init, size_t n, const void *data, size_t len,
					 int64_t off, size_t *out_len)
{
	int fd = zt_temp_fd(0);

	zt_write_full(fd, init, n);
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(fd, (const char *)data + done, len - done, off + (off_t)done);
		assert_true(w > 0);
		done += (size_t)w;
	}
	unsigned char *p = zt_file_contents(fd, out_len);
	close(fd);
	return p;
}

/* Asserts the file behind @fd equals the buffered reference of the same write. */
static void assert_like_buffered(int fd, const void *init, size_t n, const void *data, size_t len,
				 int64_t off, const char *what)
{
	size_t got_len, want_len;
	unsigned char *got = file_bytes(fd, &got_len);
	unsigned char *want = buffered_reference(init, n, data, len, off, &want_len);

	if (got_len != want_len) {
		free(got);
		free(want);
		fail_msg("%s: the file holds %zu bytes, a buffered write leaves %zu", what, got_len,
			 want_len);
	}
	zk_assert_bytes_(got, want, want_len, what, __FILE__, __LINE__);
	free(got);
	free(want);
}

/* ------------------------------------------------------------------------ */
/* Counters.                                                                 */

struct split {
	uint64_t direct, staged, copied_out, spliced_out;
};

static struct split split_now(void)
{
	struct zbl_stats s = zk_stats();

	return (struct split){ s.bytes_direct, s.bytes_staged, s.bytes_copied_out,
			       s.bytes_spliced_out };
}

/* Counter changes since @before. */
static struct split split_since(struct split before)
{
	struct split s = split_now();

	return (struct split){ s.direct - before.direct, s.staged - before.staged,
			       s.copied_out - before.copied_out,
			       s.spliced_out - before.spliced_out };
}

/* Asserts a write of @len bytes was counted once: direct + staged == copied_out == len. */
static void assert_split_whole(struct split d, size_t len, const char *what)
{
	if (d.direct + d.staged != len || d.copied_out != len || d.spliced_out != 0)
		fail_msg("%s: %zu bytes counted as direct %llu + staged %llu, copied_out %llu, "
			 "spliced_out %llu",
			 what, len, (unsigned long long)d.direct, (unsigned long long)d.staged,
			 (unsigned long long)d.copied_out, (unsigned long long)d.spliced_out);
}

/* ------------------------------------------------------------------------ */
/* Lists.                                                                    */

/*
 * A list of @len bytes of @data as memory segments at addresses that are
 * never aligned: copies in pieces of 1, 511 and 7777 bytes, and a borrowed
 * window starting 3 bytes into @data's allocation.
 */
static zbl_t *unaligned_memory_list(const unsigned char *data, size_t len)
{
	static const size_t pieces[] = { 1, 511, 7777, 70000 };
	zbl_t *bl = zt_new();
	size_t at = 0, k = 0;

	while (at < len) {
		size_t n = pieces[k++ % 4];
		if (n > len - at)
			n = len - at;
		if (k % 4 == 0)
			assert_rc(zbl_append_ref(bl, data + at, n, NULL, NULL), 0);
		else
			assert_rc(zbl_append(bl, data + at, n), 0);
		at += n;
	}
	return bl;
}

/*
 * The usual write: an O_DIRECT file (@flags) holding @n pattern bytes, and a
 * list of @len other pattern bytes in unaligned memory.
 */
struct wfx {
	unsigned char *init, *data;
	size_t n, len;
	int fd;
	zbl_t *bl;
};

static struct wfx wfx_open(size_t n, size_t len, int flags, uint64_t seed)
{
	struct wfx w = { .n = n, .len = len };

	w.init = zk_pat_alloc(n + 1, seed);
	w.data = zk_pat_alloc(len + 1, seed + 1);
	w.fd = direct_file_ok(w.init, n, flags);
	w.bl = unaligned_memory_list(w.data, len);
	return w;
}

static void wfx_close(struct wfx *w)
{
	zbl_free(w->bl);
	close(w->fd);
	free(w->init);
	free(w->data);
}

/* ------------------------------------------------------------------------ */
/* Writes.                                                                   */

/*
 * Writes the unaligned memory list of @len bytes at @off into a file of @n
 * bytes with zbl_splice_to and checks the file and the counters.
 */
static void write_at(size_t n, int64_t off, size_t len)
{
	struct wfx w = wfx_open(n, len, O_RDWR, 7);
	int64_t at = off;
	char what[128];

	snprintf(what, sizeof(what), "%zu bytes at %lld into a file of %zu", len, (long long)off, n);
	struct split before = split_now();
	ssize_t r = zbl_splice_to(w.bl, w.fd, &at, 0);
	if (r != (ssize_t)len)
		fail_msg("%s: zbl_splice_to returned %zd (%s)", what, r, zt_errname(r));
	assert_size_equal(at, off + (int64_t)len);
	assert_split_whole(split_since(before), len, what);
	assert_like_buffered(w.fd, w.init, n, w.data, len, off, what);
	assert_list_bytes(w.bl, w.data, len);
	wfx_close(&w);
}

static void test_writes_at_any_offset_and_length_match_a_buffered_write(void **state)
{
	static const int64_t offs[] = { 0, 1, 511, 512, 1000, 4095, 4096 + 7, 65536 };
	static const size_t lens[] = { 1, 100, 511, 512, 513, 4096, 10000, 300001 };
	static const size_t sizes[] = { 0, 5000, 400000 };

	(void)state;
	zk_begin(120);
	/* Inside the file, across its end, and past it (a hole before the bytes). */
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
		for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++)
			for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
				write_at(sizes[s], offs[o], lens[l]);
}

/*
 * Memory at odd addresses, a copy, a file range, and pipe pages from a
 * socket (zbl_splice_from) in one list, written at an odd offset into the
 * middle of a file: the kernel pages are staged like unaligned memory.
 */
static void test_mixed_segments_are_written_exactly(void **state)
{
	(void)state;
	zk_begin(60);
	size_t n = ZK_MiB, pipe_n = 200000, file_n = 150000, mem_n = 333;
	unsigned char *data = zk_pat_alloc(n, 21);
	unsigned char *init = zk_pat_alloc(3 * ZK_MiB, 22);
	int src = zk_pattern_file(n, 21);
	int fd = direct_file_ok(init, 3 * ZK_MiB, O_RDWR);
	zbl_t *bl = zt_new(), *pipes = zk_pipe_list(n, 21);
	int64_t off = 12345, at = off;

	assert_rc(zbl_append_ref(bl, data, mem_n, NULL, NULL), 0);
	assert_rc(zbl_substr_of(pipes, pipes, mem_n, pipe_n), 0);
	assert_rc(zbl_append_list(bl, pipes), 0);
	assert_rc(zbl_append_file(bl, src, (int64_t)(mem_n + pipe_n), file_n), 0);
	size_t used = mem_n + pipe_n + file_n;
	assert_rc(zbl_append(bl, data + used, n - used), 0);
	assert_true(zbl_kernel_bytes(bl) == pipe_n + file_n);

	struct split before = split_now();
	assert_rc(zbl_splice_to(bl, fd, &at, 0), n);
	assert_split_whole(split_since(before), n, "mixed list");
	assert_like_buffered(fd, init, 3 * ZK_MiB, data, n, off, "mixed list");
	/* Staging read the kernel pages without keeping a copy: they are still kernel pages. */
	assert_size_equal(zbl_kernel_bytes(bl), pipe_n + file_n);
	assert_list_bytes(bl, data, n);
	zbl_free(pipes);
	zbl_free(bl);
	close(src);
	close(fd);
	free(data);
	free(init);
}

/*
 * Aligned memory goes straight; unaligned memory and whatever follows it up
 * to the next aligned run is staged. The split is exact.
 */
static void test_aligned_runs_go_direct_and_the_rest_is_staged(void **state)
{
	(void)state;
	zk_begin(30);
	unsigned char *a = aligned_alloc(4096, 8192), *c = aligned_alloc(4096, 4096);
	unsigned char *b = malloc(1001);
	unsigned char all[8192 + 1000 + 4096];
	int fd = direct_file_ok("", 0, O_RDWR);
	zbl_t *bl = zt_new();
	int64_t at = 0;

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	zk_pat_fill(all, sizeof(all), 31, 0);
	memcpy(a, all, 8192);
	memcpy(b + 1, all + 8192, 1000);
	memcpy(c, all + 9192, 4096);
	assert_rc(zbl_append_ref(bl, a, 8192, NULL, NULL), 0);
	assert_rc(zbl_append_ref(bl, b + 1, 1000, NULL, NULL), 0);
	assert_rc(zbl_append_ref(bl, c, 4096, NULL, NULL), 0);
	struct split before = split_now();
	assert_rc(zbl_splice_to(bl, fd, &at, 0), sizeof(all));
	struct split d = split_since(before);
	assert_split_whole(d, sizeof(all), "aligned, unaligned, aligned");
	/* c's bytes follow 1000 unaligned ones: in the file they are not aligned either. */
	assert_size_equal(d.direct, 8192);
	assert_size_equal(d.staged, 1000 + 4096);
	assert_like_buffered(fd, "", 0, all, sizeof(all), 0, "aligned, unaligned, aligned");
	zbl_free(bl);
	close(fd);
	free(a);
	free(b);
	free(c);
}

/* zbl_write_fd uses the descriptor's position and leaves it just past the bytes. */
static void test_write_fd_writes_at_the_position_and_advances_it(void **state)
{
	(void)state;
	zk_begin(30);
	size_t len = 70001;
	struct wfx w = wfx_open(20000, len, O_RDWR, 41);

	assert_true(lseek(w.fd, 777, SEEK_SET) == 777);
	assert_rc(zbl_write_fd(w.bl, w.fd), len);
	assert_size_equal(lseek(w.fd, 0, SEEK_CUR), 777 + len);
	assert_like_buffered(w.fd, w.init, w.n, w.data, len, 777, "zbl_write_fd at position 777");
	/* A second write continues there. */
	assert_rc(zbl_write_fd(w.bl, w.fd), len);
	assert_size_equal(lseek(w.fd, 0, SEEK_CUR), 777 + 2 * len);
	size_t got_len;
	unsigned char *got = file_bytes(w.fd, &got_len);
	assert_size_equal(got_len, 777 + 2 * len);
	zk_assert_bytes(got + 777 + len, w.data, len);
	free(got);
	wfx_close(&w);
}

/* With ZBL_DRAIN the bytes written leave the list, staged ones too. */
static void test_draining_write_removes_what_it_wrote(void **state)
{
	(void)state;
	zk_begin(30);
	size_t len = 100003;
	unsigned char *data = zk_pat_alloc(len, 51);
	int fd = direct_file_ok("", 0, O_RDWR);
	zbl_t *bl = zt_new(), *pipes = zk_pipe_list(len, 51);
	int64_t at = 3;

	assert_rc(zbl_append(bl, "abc", 3), 0);
	assert_rc(zbl_claim_append(bl, pipes), 0);
	assert_rc(zbl_splice_to(bl, fd, &at, ZBL_DRAIN), len + 3);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(at, len + 6);
	unsigned char *want = malloc(len + 3);
	assert_non_null(want);
	memcpy(want, "abc", 3);
	memcpy(want + 3, data, len);
	assert_like_buffered(fd, "", 0, want, len + 3, 3, "draining write");
	zbl_free(pipes);
	zbl_free(bl);
	close(fd);
	free(want);
	free(data);
}

/*
 * A write-only descriptor cannot read the blocks around an unaligned write;
 * the library reads them through the file opened again from /proc.
 */
static void test_write_only_descriptor_keeps_the_bytes_around_unaligned_ends(void **state)
{
	(void)state;
	zk_begin(30);
	struct wfx w = wfx_open(10000, 3001, O_WRONLY, 61);
	int64_t at = 2047;

	assert_rc(zbl_splice_to(w.bl, w.fd, &at, 0), w.len);
	assert_like_buffered(w.fd, w.init, w.n, w.data, w.len, 2047, "write-only descriptor");
	wfx_close(&w);
}

/* O_APPEND|O_DIRECT: the bytes go at the end, however long the file is. */
static void test_append_descriptor_appends_at_an_unaligned_end(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 1000, len = 5000;
	struct wfx w = wfx_open(n, len, O_WRONLY | O_APPEND, 71);

	assert_rc(zbl_write_fd(w.bl, w.fd), len);
	assert_rc(zbl_write_fd(w.bl, w.fd), len);
	size_t got_len;
	unsigned char *got = file_bytes(w.fd, &got_len);
	assert_size_equal(got_len, n + 2 * len);
	zk_assert_bytes(got, w.init, n);
	zk_assert_bytes(got + n, w.data, len);
	zk_assert_bytes(got + n + len, w.data, len);
	free(got);
	wfx_close(&w);
}

/* ------------------------------------------------------------------------ */
/* Reads and the layout they give.                                           */

/* Odd read sizes, cycled. */
static const size_t odd_reads[] = { 1, 7, 4095, 10000, 333, 65537, 2, 4097, 123457 };
#define ODD_READS (sizeof(odd_reads) / sizeof(odd_reads[0]))

/* Reads all @len bytes of @fd into @bl with zbl_read_fd calls of odd sizes. */
static void read_in_odd_pieces(zbl_t *bl, int fd, size_t len)
{
	size_t got = 0;

	for (size_t k = 0; got < len; k++) {
		size_t want = odd_reads[k % ODD_READS];
		ssize_t r = zbl_read_fd(bl, fd, want);
		if (r <= 0)
			fail_msg("zbl_read_fd returned %zd (%s) after %zu of %zu bytes", r,
				 zt_errname(r), got, len);
		got += (size_t)r;
	}
}

/* Asserts every byte of @bl lies at an address congruent to its offset modulo 4096. */
static void assert_page_congruent(const zbl_t *bl)
{
	zbl_iter_t it;
	const char *p;
	size_t n;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	for (;;) {
		size_t off = zbl_iter_offset(&it);
		if (!(n = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)))
			break;
		if (((uintptr_t)p - off) % 4096)
			fail_msg("list offset %zu (a run of %zu bytes) is at %p: offset %zu of its "
				 "page, expected %zu", off, n, (const void *)p,
				 (size_t)((uintptr_t)p % 4096), off % 4096);
	}
}

static void test_reads_of_any_sizes_keep_addresses_congruent_to_offsets(void **state)
{
	(void)state;
	zk_begin(30);
	size_t len = 3 * ZK_MiB + 1234;
	unsigned char *data = zk_pat_alloc(len, 81);
	int src = zk_pattern_file(len, 81);
	zbl_t *bl = zt_new();

	read_in_odd_pieces(bl, src, len);
	assert_list_bytes(bl, data, len);
	assert_page_congruent(bl);
	/* After other bytes the congruence starts again with the next read. */
	zbl_t *mixed = zt_new();
	assert_rc(zbl_append(mixed, "header", 6), 0);
	assert_true(lseek(src, 0, SEEK_SET) == 0);
	read_in_odd_pieces(mixed, src, 200000);
	zbl_t *tail = zt_new();
	assert_rc(zbl_substr_of(tail, mixed, 6, zbl_length(mixed) - 6), 0);
	assert_list_bytes(tail, data, zbl_length(tail));
	zbl_iter_t it;
	const char *p;
	assert_rc(zbl_iter_init(&it, mixed, 6), 0);
	assert_true(zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p) > 0);
	assert_size_equal((uintptr_t)p % 4096, 6);
	zbl_free(tail);
	zbl_free(mixed);
	zbl_free(bl);
	close(src);
	free(data);
}

/*
 * The point of the layout: an object read into an empty list in any number
 * of pieces and written at offset 0 stages at most its final partial page.
 */
static void test_object_read_in_odd_pieces_stages_only_its_last_partial_page(void **state)
{
	(void)state;
	zk_begin(30);
	size_t len = 3 * ZK_MiB + 1234;
	unsigned char *data = zk_pat_alloc(len, 91);
	int src = zk_pattern_file(len, 91);
	int fd = direct_file_ok("", 0, O_WRONLY);
	zbl_t *bl = zt_new();
	int64_t at = 0;

	read_in_odd_pieces(bl, src, len);
	struct split before = split_now();
	assert_rc(zbl_splice_to(bl, fd, &at, ZBL_DRAIN), len);
	struct split d = split_since(before);
	printf("# object of %zu bytes read in odd pieces: direct %llu, staged %llu\n", len,
	       (unsigned long long)d.direct, (unsigned long long)d.staged);
	assert_split_whole(d, len, "object read in odd pieces");
	if (d.staged >= 4096)
		fail_msg("%llu bytes staged, expected less than a page",
			 (unsigned long long)d.staged);
	assert_like_buffered(fd, "", 0, data, len, 0, "object read in odd pieces");
	zbl_free(bl);
	close(src);
	close(fd);
	free(data);
}

/* A list of whole aligned blocks goes direct even though no write was refused. */
static void test_fully_aligned_list_is_counted_direct(void **state)
{
	(void)state;
	zk_begin(30);
	size_t len = ZK_MiB;
	unsigned char *data = zk_pat_alloc(len, 95);
	int src = zk_pattern_file(len, 95);
	int fd = direct_file_ok("", 0, O_RDWR);
	zbl_t *bl = zt_new();
	int64_t at = 0;

	assert_rc(zbl_read_fd(bl, src, len), len);
	struct split before = split_now();
	assert_rc(zbl_splice_to(bl, fd, &at, 0), len);
	struct split d = split_since(before);
	assert_split_whole(d, len, "aligned list");
	assert_size_equal(d.direct, len);
	assert_like_buffered(fd, "", 0, data, len, 0, "aligned list");
	zbl_free(bl);
	close(src);
	close(fd);
	free(data);
}

/*
 * Reads from an O_DIRECT descriptor at unaligned offsets and lengths: an
 * aligned superset is read and the wanted window kept; *off, or the
 * descriptor's position, moves by exactly the bytes returned.
 */
static void test_reads_from_o_direct_at_unaligned_offsets_return_exactly_the_window(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 300000;
	unsigned char *data = zk_pat_alloc(n, 101);
	int fd = direct_file_ok(data, n, O_RDONLY);
	zbl_t *bl = zt_new();
	int64_t off = 777;

	uint64_t direct = zk_stats().bytes_direct;
	assert_rc(zbl_splice_from(bl, fd, &off, 10000, 0), 10000);
	assert_size_equal(off, 10777);
	assert_list_bytes(bl, data + 777, 10000);
	assert_size_equal(lseek(fd, 0, SEEK_CUR), 0);

	zbl_clear(bl);
	assert_true(lseek(fd, 1001, SEEK_SET) == 1001);
	assert_rc(zbl_read_fd(bl, fd, 5000), 5000);
	assert_size_equal(lseek(fd, 0, SEEK_CUR), 6001);
	assert_rc(zbl_read_fd(bl, fd, 3333), 3333);
	assert_size_equal(lseek(fd, 0, SEEK_CUR), 9334);
	assert_list_bytes(bl, data + 1001, 8333);
	if (zk_stats().bytes_direct - direct != 10000 + 8333)
		fail_msg("bytes_direct grew by %llu, expected %d",
			 (unsigned long long)(zk_stats().bytes_direct - direct), 10000 + 8333);

	/* To the end of the file: short there, then 0. */
	zbl_clear(bl);
	assert_true(lseek(fd, (off_t)n - 100, SEEK_SET) == (off_t)n - 100);
	assert_rc(zbl_read_fd(bl, fd, 5000), 100);
	assert_rc(zbl_read_fd(bl, fd, 5000), 0);
	assert_size_equal(lseek(fd, 0, SEEK_CUR), n);
	assert_list_bytes(bl, data + n - 100, 100);

	/* A whole unaligned tail of the file in one call, odd reads after a memory prefix. */
	zbl_clear(bl);
	assert_rc(zbl_append(bl, "x", 1), 0);
	off = 3;
	assert_rc(zbl_splice_from(bl, fd, &off, n, 0), n - 3);
	assert_size_equal(off, n);
	zbl_t *tail = zt_new();
	assert_rc(zbl_substr_of(tail, bl, 1, n - 3), 0);
	assert_list_bytes(tail, data + 3, n - 3);
	zbl_free(tail);
	zbl_free(bl);
	close(fd);
	free(data);
}

/* ------------------------------------------------------------------------ */

/* Whether dir takes O_DIRECT and reports its alignment; if not, why not. */
static bool direct_io_here(char *why, size_t n)
{
	const char *env = getenv("ZBL_DIRECT_DIR");
	struct statx stx;

	if (env && *env)
		dir = env;
	int fd = direct_file("", 0, O_RDWR);
	if (fd < 0) {
		snprintf(why, n, "%s: a file opened with O_DIRECT: %s", dir, strerror((int)-fd));
		return false;
	}
	int rc = statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx);
	close(fd);
	if (rc < 0 || !(stx.stx_mask & STATX_DIOALIGN) || !stx.stx_dio_offset_align) {
		snprintf(why, n, "%s: the file system reports no direct-I/O alignment (statx "
			 "STATX_DIOALIGN)", dir);
		return false;
	}
	blk = stx.stx_dio_offset_align;
	mem_align = stx.stx_dio_mem_align;
	return true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_at_any_offset_and_length_match_a_buffered_write),
		cmocka_unit_test(test_mixed_segments_are_written_exactly),
		cmocka_unit_test(test_aligned_runs_go_direct_and_the_rest_is_staged),
		cmocka_unit_test(test_write_fd_writes_at_the_position_and_advances_it),
		cmocka_unit_test(test_draining_write_removes_what_it_wrote),
		cmocka_unit_test(test_write_only_descriptor_keeps_the_bytes_around_unaligned_ends),
		cmocka_unit_test(test_append_descriptor_appends_at_an_unaligned_end),
		cmocka_unit_test(test_reads_of_any_sizes_keep_addresses_congruent_to_offsets),
		cmocka_unit_test(test_object_read_in_odd_pieces_stages_only_its_last_partial_page),
		cmocka_unit_test(test_fully_aligned_list_is_counted_direct),
		cmocka_unit_test(test_reads_from_o_direct_at_unaligned_offsets_return_exactly_the_window),
	};
	char why[PATH_MAX + 128];

	if (!direct_io_here(why, sizeof(why))) {
		printf("skipped: %s\n", why);
		return ZBL_TEST_SKIP;
	}
	printf("# O_DIRECT in %s: blocks of %zu bytes, memory aligned to %zu\n", dir, blk,
	       mem_align);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
