/* SPDX-License-Identifier: MIT */
/*
 * Kernel-page segments moving through descriptors: windows written exactly,
 * data kept without ZBL_DRAIN and shared between lists, draining exactly what
 * was written, mixed memory/pipe/file lists, the blocking and non-blocking
 * behaviour of zbl_splice_from, pipes filled by tiny pieces, file ranges from
 * zbl_append_file, and sinks the kernel treats specially (a full blocking
 * pipe, O_APPEND, O_DIRECT). Each test checks the bytes exactly and the
 * counters of struct zbl_stats (reset at the start of every test).
 *
 * Pipe pages come from an AF_UNIX socket unless a test says otherwise, so they
 * do not alias a file's page cache.
 */
#include "kpage_util.h"

/* ------------------------------------------------------------------------ */
/* Descriptors. Runs first, before any other test can leak. */

static void test_descriptors_and_pipes_live_return_to_start_after_free_and_pool_flush(void **state)
{
	(void)state;
	zk_begin(30);
	/* Warm up: the library opens /dev/null once, on first use, and keeps it. */
	zbl_t *w = zk_pipe_list(1000, 1);
	free(zk_write_to(w, ZK_FILE, ZBL_DRAIN).data);
	zbl_free(w);
	zbl_pool_flush();
	int start = zk_fd_count();
	assert_size_equal(zk_stats().pipes_live, 0);

	size_t na = 3 * ZK_MiB + 7, nb = 200000;
	unsigned char *ba = zk_pat_alloc(na, 2), *bb = zk_pat_alloc(nb, 3);
	zbl_t *a = zk_pipe_list(na, 2);
	zbl_t *b = zk_file_pipe_list(nb, 3);
	zbl_t *c = zt_new(), *d = zt_new();
	int f = zk_pattern_file(100000, 4);
	assert_rc(zbl_append_list(c, a), 0);
	assert_rc(zbl_append_list(c, b), 0);
	assert_rc(zbl_append(c, "xyz", 3), 0);
	assert_rc(zbl_append_file(c, f, 10, 50000), 0);
	close(f);
	assert_true(zk_fd_count() > start);
	assert_true(zk_stats().pipes_live > 0);

	unsigned char *flat = zt_flat(a); /* materializes a's blocks */
	zk_assert_bytes(flat, ba, na);
	free(flat);
	struct zk_out o = zk_write_to(c, ZK_TCP, 0);
	assert_rc(o.r, na + nb + 3 + 50000);
	free(o.data);
	assert_rc(zbl_substr_of(d, a, 12345, ZK_MiB), 0);
	zk_assert_out(zk_write_to(d, ZK_PIPE, 0), ba + 12345, ZK_MiB);
	zk_assert_out(zk_write_to(b, ZK_FILE, ZBL_DRAIN), bb, nb);
	o = zk_write_to(c, ZK_UNIX, ZBL_DRAIN);
	assert_rc(o.r, na + nb + 3 + 50000);
	free(o.data);

	zbl_free(a);
	zbl_free(b);
	zbl_free(c);
	zbl_free(d);
	zbl_pool_flush();
	assert_int_equal(zk_fd_count(), start);
	assert_size_equal(zk_stats().pipes_live, 0);
	free(ba);
	free(bb);
}

/* ------------------------------------------------------------------------ */
/* Windows (Ceph's raw_pipe ignored the segment's offset and length). */

#define WIN_N (3 * ZK_MiB + 12345)

struct window {
	size_t off, len;
};

static const struct window windows[] = {
	{ 0, 1 },
	{ 1, 1 },
	{ 4095, 2 },
	{ 4097, 65537 },
	{ 100001, 777777 },
	{ ZK_MiB - 1, ZK_MiB + 3 }, /* across the 1 MiB boundary of full library pipes */
	{ 3, WIN_N - 3 },
	{ 0, WIN_N - 1 },
	{ WIN_N - 1, 1 },
	{ 2 * ZK_MiB - 4093, ZK_MiB + 4093 + 100 },
};

static void write_windows(enum zk_kind k, size_t nwin)
{
	unsigned char *bytes = zk_pat_alloc(WIN_N, 10 + k);
	zbl_t *src = zk_pipe_list(WIN_N, 10 + k);

	for (size_t i = 0; i < nwin; i++) {
		const struct window *wi = &windows[i];
		zbl_t *w = zt_new();
		assert_rc(zbl_substr_of(w, src, wi->off, wi->len), 0);
		zbl_stats_reset();
		zk_assert_out(zk_write_to(w, k, 0), bytes + wi->off, wi->len);
		zk_assert_stats(.bytes_spliced_out = wi->len, .bytes_teed = ZK_ANY);
		assert_true(zk_stats().bytes_teed >= wi->len);
		zbl_free(w);
	}
	/* The source is untouched: its full bytes still go out. */
	zk_assert_out(zk_write_to(src, k, 0), bytes, WIN_N);
	assert_size_equal(zbl_kernel_bytes(src), WIN_N);
	zbl_free(src);
	free(bytes);
}

static void test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_a_file(void **state)
{
	(void)state;
	zk_begin(30);
	write_windows(ZK_FILE, sizeof(windows) / sizeof(windows[0]));
}

static void test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_tcp(void **state)
{
	(void)state;
	zk_begin(30);
	write_windows(ZK_TCP, sizeof(windows) / sizeof(windows[0]));
}

static void test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_unix(void **state)
{
	(void)state;
	zk_begin(30);
	write_windows(ZK_UNIX, sizeof(windows) / sizeof(windows[0]));
}

static void test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_a_pipe(void **state)
{
	(void)state;
	zk_begin(30);
	/* The pipe sink holds 1 MiB; windows up to that size. */
	write_windows(ZK_PIPE, 6);
}

static void test_zbl_splice_of_the_middle_writes_the_rest_and_the_claimed_part_exactly(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 400000, off = 5001, len = 70001;
	unsigned char *bytes = zk_pat_alloc(n, 20);
	zbl_t *bl = zk_pipe_list(n, 20), *claimed = zt_new();
	unsigned char *rest = malloc(n - len);

	assert_non_null(rest);
	memcpy(rest, bytes, off);
	memcpy(rest + off, bytes + off + len, n - off - len);
	assert_rc(zbl_splice(bl, off, len, claimed), 0);
	zbl_stats_reset();
	zk_assert_out(zk_write_to(bl, ZK_FILE, 0), rest, n - len);
	zk_assert_out(zk_write_to(claimed, ZK_TCP, 0), bytes + off, len);
	zk_assert_stats(.bytes_spliced_out = n, .bytes_teed = ZK_ANY);
	/* Draining both: bl still shares its block between two segments, claimed too. */
	zk_assert_out(zk_write_to(bl, ZK_UNIX, ZBL_DRAIN), rest, n - len);
	zk_assert_out(zk_write_to(claimed, ZK_FILE, ZBL_DRAIN), bytes + off, len);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_length(claimed), 0);
	zbl_free(bl);
	zbl_free(claimed);
	free(rest);
	free(bytes);
}

static void test_draining_a_trimmed_sole_owned_list_writes_only_its_window_without_tee(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 300000;
	unsigned char *bytes = zk_pat_alloc(n, 21);
	zbl_t *bl = zk_pipe_list(n, 21);

	assert_rc(zbl_splice(bl, 0, 777, NULL), 0);
	assert_rc(zbl_splice(bl, n - 777 - 555, 555, NULL), 0);
	zbl_stats_reset();
	zk_assert_out(zk_write_to(bl, ZK_FILE, ZBL_DRAIN), bytes + 777, n - 777 - 555);
	/* Only this list holds the pages: they leave the pipe directly, nothing is teed. */
	zk_assert_stats(.bytes_spliced_out = n - 777 - 555);
	assert_size_equal(zbl_length(bl), 0);
	zbl_free(bl);
	zbl_pool_flush();
	assert_size_equal(zk_stats().pipes_live, 0);
	free(bytes);
}

/* ------------------------------------------------------------------------ */
/* Keeping and sharing (Ceph's raw_pipe consumed the pipe on the first write). */

static void keep_twice(enum zk_kind k)
{
	size_t n = 300001;
	unsigned char *bytes = zk_pat_alloc(n, 30 + k);
	zbl_t *bl = zk_pipe_list(n, 30 + k);

	zbl_stats_reset();
	zk_assert_out(zk_write_to(bl, k, 0), bytes, n);
	zk_assert_out(zk_write_to(bl, k, 0), bytes, n);
	zk_assert_out(zk_write_to(bl, k, ZK_WRITE_FD), bytes, n);
	zk_assert_stats(.bytes_spliced_out = 3 * n, .bytes_teed = 3 * n);
	assert_size_equal(zbl_length(bl), n);
	assert_size_equal(zbl_kernel_bytes(bl), n);
	zk_assert_out(zk_write_to(bl, k, ZBL_DRAIN), bytes, n);
	assert_size_equal(zbl_length(bl), 0);
	zk_assert_stats(.bytes_spliced_out = 4 * n, .bytes_teed = 3 * n);
	zbl_free(bl);
	free(bytes);
}

static void test_writing_without_drain_keeps_the_data_for_another_write_to_a_file(void **state)
{
	(void)state;
	zk_begin(30);
	keep_twice(ZK_FILE);
}

static void test_writing_without_drain_keeps_the_data_for_another_write_to_tcp(void **state)
{
	(void)state;
	zk_begin(30);
	keep_twice(ZK_TCP);
}

static void test_writing_without_drain_keeps_the_data_for_another_write_to_unix(void **state)
{
	(void)state;
	zk_begin(30);
	keep_twice(ZK_UNIX);
}

static void test_writing_without_drain_keeps_the_data_for_another_write_to_a_pipe(void **state)
{
	(void)state;
	zk_begin(30);
	keep_twice(ZK_PIPE);
}

static void test_two_lists_sharing_pipe_blocks_each_write_the_full_data(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 2 * ZK_MiB + 99;
	unsigned char *bytes = zk_pat_alloc(n, 40);
	zbl_t *a = zk_pipe_list(n, 40), *b = zt_new();

	assert_rc(zbl_append_list(b, a), 0);
	zbl_stats_reset();
	zk_assert_out(zk_write_to(a, ZK_TCP, 0), bytes, n);
	zk_assert_out(zk_write_to(b, ZK_UNIX, 0), bytes, n);
	zk_assert_out(zk_write_to(b, ZK_FILE, 0), bytes, n);
	zk_assert_out(zk_write_to(a, ZK_FILE, 0), bytes, n);
	zk_assert_stats(.bytes_spliced_out = 4 * n, .bytes_teed = 4 * n);
	zbl_free(a);
	zbl_free(b);
	free(bytes);
}

static void test_list_appended_to_itself_writes_its_data_twice(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 123457;
	unsigned char *bytes = malloc(2 * n);
	zbl_t *bl = zk_pipe_list(n, 41);

	assert_non_null(bytes);
	zk_pat_fill(bytes, n, 41, 0);
	memcpy(bytes + n, bytes, n);
	assert_rc(zbl_append_list(bl, bl), 0);
	zk_assert_out(zk_write_to(bl, ZK_FILE, 0), bytes, 2 * n);
	zk_assert_out(zk_write_to(bl, ZK_TCP, ZBL_DRAIN), bytes, 2 * n);
	assert_size_equal(zbl_length(bl), 0);
	zbl_free(bl);
	free(bytes);
}

/* ------------------------------------------------------------------------ */
/* Draining. */

static void drain_into_small_pipe(zbl_t *bl, const unsigned char *bytes, size_t n)
{
	int p[2];
	unsigned char *out = malloc(n);
	size_t written = 0, got = 0, partial = 0;

	assert_non_null(out);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	while (written < n) {
		ssize_t r = zbl_splice_to(bl, p[1], NULL, ZBL_DRAIN);
		if (r == -EAGAIN) {
			got += zk_read_available(p[0], out + got, n - got);
			continue;
		}
		if (r <= 0)
			fail_msg("zbl_splice_to(ZBL_DRAIN) to a non-blocking pipe returned %zd (%s) "
				 "after %zu of %zu bytes", r, zt_errname(r), written, n);
		if ((size_t)r < n - written)
			partial++;
		written += (size_t)r;
		/* Exactly the bytes written left the list ... */
		assert_size_equal(zbl_length(bl), n - written);
		/* ... and exactly those are in the pipe. */
		got += zk_read_available(p[0], out + got, n - got);
		assert_size_equal(got, written);
		zk_assert_bytes(out, bytes, got);
	}
	assert_true(partial > 0);
	close(p[0]);
	close(p[1]);
	free(out);
}

static void test_drain_to_a_full_nonblocking_pipe_removes_exactly_the_bytes_written(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB + 333;
	unsigned char *bytes = zk_pat_alloc(n, 50);
	zbl_t *bl = zk_pipe_list(n, 50);

	zbl_stats_reset();
	drain_into_small_pipe(bl, bytes, n);
	zk_assert_stats(.bytes_spliced_out = n);
	zbl_free(bl);
	free(bytes);
}

static void test_drain_of_a_shared_list_to_a_full_pipe_leaves_the_other_list_intact(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB + 333;
	unsigned char *bytes = zk_pat_alloc(n, 51);
	zbl_t *bl = zk_pipe_list(n, 51), *other = zt_new();

	assert_rc(zbl_append_list(other, bl), 0);
	drain_into_small_pipe(bl, bytes, n);
	assert_size_equal(zbl_length(other), n);
	assert_size_equal(zbl_kernel_bytes(other), n);
	zk_assert_out(zk_write_to(other, ZK_TCP, 0), bytes, n);
	/* Now the only holder: draining it needs no tee. */
	zbl_stats_reset();
	zk_assert_out(zk_write_to(other, ZK_FILE, ZBL_DRAIN), bytes, n);
	zk_assert_stats(.bytes_spliced_out = n);
	zbl_free(bl);
	zbl_free(other);
	free(bytes);
}

static void test_drain_of_one_list_leaves_a_list_sharing_its_blocks_intact(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 3 * ZK_MiB + 5;
	unsigned char *bytes = zk_pat_alloc(n, 52);
	zbl_t *a = zk_pipe_list(n, 52), *b = zt_new(), *part = zt_new();

	assert_rc(zbl_append_list(b, a), 0);
	assert_rc(zbl_substr_of(part, a, 1000, ZK_MiB), 0);
	zbl_stats_reset();
	zk_assert_out(zk_write_to(a, ZK_FILE, ZBL_DRAIN), bytes, n);
	assert_size_equal(zbl_length(a), 0);
	zk_assert_stats(.bytes_spliced_out = n, .bytes_teed = n);
	zk_assert_out(zk_write_to(part, ZK_UNIX, ZBL_DRAIN), bytes + 1000, ZK_MiB);
	assert_size_equal(zbl_length(b), n);
	zk_assert_out(zk_write_to(b, ZK_TCP, 0), bytes, n);
	zk_assert_out(zk_write_to(b, ZK_FILE, ZBL_DRAIN), bytes, n);
	zbl_free(a);
	zbl_free(b);
	zbl_free(part);
	free(bytes);
}

/* ------------------------------------------------------------------------ */
/* Mixed lists. */

static unsigned char ref_bytes[4096];

struct mixed {
	zbl_t *bl;
	unsigned char *bytes;
	size_t len, mem, pipe, file;
};

/* memory | pipe (socket) | file range | memory | pipe (file) | caller memory */
static struct mixed mixed_list(void)
{
	struct mixed m = { 0 };
	size_t np1 = 100000, nf = 70000, nm2 = 1000, np2 = 50000;
	int f = zk_pattern_file(200000, 61);
	unsigned char *m2 = zk_pat_alloc(nm2, 62);
	int64_t off = 77777;

	zk_pat_fill(ref_bytes, sizeof(ref_bytes), 63, 0);
	m.len = 5 + np1 + nf + nm2 + np2 + sizeof(ref_bytes);
	m.bytes = malloc(m.len);
	assert_non_null(m.bytes);
	unsigned char *p = m.bytes;
	memcpy(p, "HEAD:", 5);
	p += 5;
	zk_pat_fill(p, np1, 60, 0);
	p += np1;
	zk_pat_fill(p, nf, 61, 3333);
	p += nf;
	memcpy(p, m2, nm2);
	p += nm2;
	zk_pat_fill(p, np2, 61, 77777);
	p += np2;
	memcpy(p, ref_bytes, sizeof(ref_bytes));

	m.bl = zt_new();
	assert_rc(zbl_append(m.bl, "HEAD:", 5), 0);
	zk_splice_from_writer(m.bl, ZK_UNIX, (struct zk_writer){ .seed = 60, .len = np1 });
	assert_rc(zbl_append_file(m.bl, f, 3333, nf), 0);
	assert_rc(zbl_append(m.bl, m2, nm2), 0);
	assert_rc(zbl_splice_from(m.bl, f, &off, np2, 0), np2);
	assert_rc(zbl_append_ref(m.bl, ref_bytes, sizeof(ref_bytes), NULL, NULL), 0);
	close(f);
	free(m2);
	m.mem = 5 + nm2 + sizeof(ref_bytes);
	m.pipe = np1 + np2;
	m.file = nf;
	assert_size_equal(zbl_length(m.bl), m.len);
	assert_size_equal(zbl_kernel_bytes(m.bl), m.pipe + m.file);
	return m;
}

static void test_mixed_memory_pipe_and_file_list_is_written_in_order_to_every_sink(void **state)
{
	(void)state;
	zk_begin(30);
	struct mixed m = mixed_list();

	for (int k = 0; k < ZK_KINDS; k++) {
		zbl_stats_reset();
		zk_assert_out(zk_write_to(m.bl, k, 0), m.bytes, m.len);
		zk_assert_stats(.bytes_copied_out = m.mem, .bytes_spliced_out = m.pipe + m.file,
				.bytes_teed = m.pipe);
		zbl_stats_reset();
		zk_assert_out(zk_write_to(m.bl, k, ZK_WRITE_FD), m.bytes, m.len);
		zk_assert_stats(.bytes_copied_out = m.mem, .bytes_spliced_out = m.pipe + m.file,
				.bytes_teed = m.pipe);
	}
	zbl_free(m.bl);
	free(m.bytes);
}

static void test_mixed_list_drained_to_a_socket_goes_in_order_and_empties_the_list(void **state)
{
	(void)state;
	zk_begin(30);
	struct mixed m = mixed_list();

	zbl_stats_reset();
	zk_assert_out(zk_write_to(m.bl, ZK_TCP, ZBL_DRAIN), m.bytes, m.len);
	zk_assert_stats(.bytes_copied_out = m.mem, .bytes_spliced_out = m.pipe + m.file);
	assert_size_equal(zbl_length(m.bl), 0);
	zbl_free(m.bl);
	free(m.bytes);
}

/* ------------------------------------------------------------------------ */
/* Sources: blocking and non-blocking. */

static void eagain_leaves_list_unchanged(enum zk_kind k)
{
	int fds[2];
	zbl_t *bl = zt_new();
	struct zt_snap snap;
	unsigned char b150[150];

	zk_pair(k, fds);
	zk_set_nonblock(fds[0], true);
	zbl_stats_reset();
	/* Empty list. */
	assert_rc(zbl_splice_from(bl, fds[0], NULL, 4096, 0), -EAGAIN);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	/* A list whose last segment is a pipe block it may append to (not read yet). */
	zk_pat_fill(b150, sizeof(b150), 70 + k, 0);
	zt_write_full(fds[1], b150, 100);
	zk_wait(fds[0], POLLIN, 5000);
	assert_rc(zbl_splice_from(bl, fds[0], NULL, 4096, 0), 100);
	size_t segs = zbl_segments(bl);
	assert_rc(zbl_splice_from(bl, fds[0], NULL, 4096, 0), -EAGAIN);
	assert_size_equal(zbl_length(bl), 100);
	assert_size_equal(zbl_segments(bl), segs);
	assert_size_equal(zbl_kernel_bytes(bl), 100);
	/* More data later goes after the rest. */
	zt_write_full(fds[1], b150 + 100, 50);
	zk_wait(fds[0], POLLIN, 5000);
	assert_rc(zbl_splice_from(bl, fds[0], NULL, 4096, 0), 50);
	assert_list_bytes(bl, b150, 150);
	/* A list that was read (materialized) and a list ending in memory. */
	zt_snap_take(&snap, bl);
	assert_rc(zbl_splice_from(bl, fds[0], NULL, 4096, 0), -EAGAIN);
	assert_unchanged(&snap, bl);
	zbl_t *mem = zt_new();
	assert_rc(zbl_append(mem, "abc", 3), 0);
	zt_snap_take(&snap, mem);
	assert_rc(zbl_splice_from(mem, fds[0], NULL, 4096, 0), -EAGAIN);
	assert_unchanged(&snap, mem);
	/* Reading pipe pages tees them into a scratch pipe first. */
	zk_assert_stats(.bytes_spliced_in = 150, .bytes_copied_in = 3, .bytes_materialized = 150,
			.bytes_teed = 150, .materializations = ZK_ANY);
	zbl_free(bl);
	zbl_free(mem);
	close(fds[0]);
	close(fds[1]);
}

static void test_nonblocking_splice_from_empty_tcp_socket_returns_eagain_and_changes_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	eagain_leaves_list_unchanged(ZK_TCP);
}

static void test_nonblocking_splice_from_empty_unix_socket_returns_eagain_and_changes_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	eagain_leaves_list_unchanged(ZK_UNIX);
}

static void test_nonblocking_splice_from_empty_pipe_returns_eagain_and_changes_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	eagain_leaves_list_unchanged(ZK_PIPE);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void blocking_source_waits(enum zk_kind k)
{
	int fds[2];
	size_t n = 5000;
	unsigned char *bytes = zk_pat_alloc(n, 80 + k);
	struct zk_writer w = { .buf = bytes, .len = n, .start_delay_us = 100000, .end = 1 };
	zbl_t *bl = zt_new();

	zk_pair(k, fds);
	w.fd = fds[1];
	zk_writer_start(&w);
	double t0 = now_ms();
	ssize_t r = zbl_splice_from(bl, fds[0], NULL, n, 0);
	double dt = now_ms() - t0;
	zk_writer_join(&w);
	assert_rc(r, n);
	if (dt < 90)
		fail_msg("zbl_splice_from returned after %.1f ms, before the data was written", dt);
	assert_list_bytes(bl, bytes, n);
	zk_assert_stats(.bytes_spliced_in = n, .bytes_materialized = n, .bytes_teed = n,
			.materializations = ZK_ANY);
	zbl_free(bl);
	close(fds[0]);
	close(fds[1]);
	free(bytes);
}

static void test_blocking_pipe_source_blocks_until_data_arrives(void **state)
{
	(void)state;
	zk_begin(30);
	blocking_source_waits(ZK_PIPE);
}

static void test_blocking_unix_source_blocks_until_data_arrives(void **state)
{
	(void)state;
	zk_begin(30);
	blocking_source_waits(ZK_UNIX);
}

static void test_blocking_tcp_source_blocks_until_data_arrives(void **state)
{
	(void)state;
	zk_begin(30);
	blocking_source_waits(ZK_TCP);
}

/*
 * zbl.h: zbl_splice_from has the "same stopping rule as zbl_read_fd()": on a
 * blocking descriptor it stops early only at end of file. A writer sends 100
 * bytes, pauses, sends 100 more: asking for 200 returns 200, as zbl_read_fd does.
 */
static void stopping_rule(enum zk_kind k, bool splice)
{
	int fds[2];
	unsigned char bytes[200];
	struct zk_writer w = { .buf = bytes, .len = 200, .chunk = 100, .delay_us = 150000,
			       .end = 1 };
	zbl_t *bl = zt_new();
	ssize_t r;

	zk_pat_fill(bytes, sizeof(bytes), 90 + k, 0);
	zk_pair(k, fds);
	w.fd = fds[1];
	zk_writer_start(&w);
	r = splice ? zbl_splice_from(bl, fds[0], NULL, 200, 0) : zbl_read_fd(bl, fds[0], 200);
	zk_writer_join(&w);
	close(fds[0]);
	close(fds[1]);
	if (r != 200)
		fail_msg("%s on a blocking %s returned %zd after the first 100 bytes; "
			 "zbl_read_fd waits for all 200 (zbl.h: same stopping rule)",
			 splice ? "zbl_splice_from" : "zbl_read_fd", zk_kind_name[k], r);
	assert_list_bytes(bl, bytes, 200);
	zbl_free(bl);
}

static void test_read_fd_on_blocking_pipe_waits_for_len_bytes(void **state)
{
	(void)state;
	zk_begin(30);
	stopping_rule(ZK_PIPE, false);
}

static void test_splice_from_on_blocking_pipe_waits_for_len_bytes_like_read_fd(void **state)
{
	(void)state;
	zk_begin(30);
	stopping_rule(ZK_PIPE, true);
}

static void test_splice_from_on_blocking_unix_socket_waits_for_len_bytes_like_read_fd(void **state)
{
	(void)state;
	zk_begin(30);
	stopping_rule(ZK_UNIX, true);
}

static void test_splice_from_on_blocking_tcp_socket_waits_for_len_bytes_like_read_fd(void **state)
{
	(void)state;
	zk_begin(30);
	stopping_rule(ZK_TCP, true);
}

/*
 * ZBL_SOME: return what has arrived, as recv(2) does. The same writer (100
 * bytes, a 150 ms pause, 100 more, end): the first call returns the first
 * 100 instead of waiting for 200, the next the second 100.
 */
static void some_rule(enum zk_kind k, bool nonblocking)
{
	int fds[2];
	unsigned char bytes[200];
	struct zk_writer w = { .buf = bytes, .len = 200, .chunk = 100, .delay_us = 150000,
			       .end = 1 };
	zbl_t *bl = zt_new();
	ssize_t r = 0, calls = 0;
	size_t have = 0;

	zk_pat_fill(bytes, sizeof(bytes), 110 + k, 0);
	zk_pair(k, fds);
	if (nonblocking)
		zk_set_nonblock(fds[0], true);
	w.fd = fds[1];
	zk_writer_start(&w);
	while (have < 200 && (r = zbl_splice_from(bl, fds[0], NULL, 200 - have, ZBL_SOME)) != 0) {
		if (r == -EAGAIN && nonblocking) {
			struct pollfd p = { .fd = fds[0], .events = POLLIN };
			poll(&p, 1, 5000);
			continue;
		}
		if (r < 0)
			fail_msg("zbl_splice_from(ZBL_SOME) on a %s: %s", zk_kind_name[k],
				 strerror((int)-r));
		if (calls++ == 0 && r != 100)
			fail_msg("zbl_splice_from(ZBL_SOME) on a %s %s returned %zd; the first "
				 "100 bytes had arrived and the rest comes 150 ms later",
				 nonblocking ? "non-blocking" : "blocking", zk_kind_name[k], r);
		have += (size_t)r;
	}
	zk_writer_join(&w);
	close(fds[0]);
	close(fds[1]);
	assert_size_equal(have, 200);
	zk_assert_stats(.bytes_spliced_in = 200);
	assert_list_bytes(bl, bytes, 200);
	zbl_free(bl);
}

static void test_splice_from_some_on_blocking_pipe_returns_what_arrived(void **state)
{
	(void)state;
	zk_begin(30);
	some_rule(ZK_PIPE, false);
}

static void test_splice_from_some_on_blocking_unix_socket_returns_what_arrived(void **state)
{
	(void)state;
	zk_begin(30);
	some_rule(ZK_UNIX, false);
}

static void test_splice_from_some_on_blocking_tcp_socket_returns_what_arrived(void **state)
{
	(void)state;
	zk_begin(30);
	some_rule(ZK_TCP, false);
}

static void test_splice_from_some_on_nonblocking_tcp_socket_returns_what_arrived(void **state)
{
	(void)state;
	zk_begin(30);
	some_rule(ZK_TCP, true);
}

/* ------------------------------------------------------------------------ */
/* Tiny pieces: each 1-byte write on an AF_UNIX socket is its own skb and takes
 * a whole pipe slot, so a 1 MiB pipe is full after 256 bytes. */

static void tiny_pieces(bool nonblocking)
{
	size_t n = 5000, have = 0;
	int sv[2];
	unsigned char *bytes = zk_pat_alloc(n, 100 + nonblocking);
	struct zk_writer w = { .buf = bytes, .len = n, .chunk = 1, .end = 1 };
	zbl_t *bl = zt_new();
	ssize_t r = 0;

	zk_pair(ZK_UNIX, sv);
	if (nonblocking)
		zk_set_nonblock(sv[0], true);
	w.fd = sv[1];
	zk_writer_start(&w);
	r = zk_splice_upto(bl, sv[0], NULL, n, nonblocking, &have);
	if (have < n)
		shutdown(sv[0], SHUT_RDWR);
	zk_writer_join(&w);
	if (have < n)
		fail_msg("zbl_splice_from returned %zd (%s) after %zu of %zu one-byte pieces", r,
			 zt_errname(r), have, n);
	if (nonblocking)
		zk_wait(sv[0], POLLIN, 5000);
	assert_rc(zbl_splice_from(bl, sv[0], NULL, 1, 0), 0);
	printf("# %zu one-byte pieces arrived in %zu segments\n", n, zbl_segments(bl));
	if (zk_pipe_budget_applies()) {
		/* Each piece takes a pipe slot: the per-user budget may run out. */
		zk_print_stats("unprivileged, per-user pipe budget applies");
		assert_size_equal(zk_stats().bytes_spliced_in + zk_stats().bytes_copied_in, n);
	} else {
		zk_assert_stats(.bytes_spliced_in = n);
	}
	assert_list_bytes(bl, bytes, n);
	zk_assert_out(zk_write_to(bl, ZK_TCP, ZBL_DRAIN), bytes, n);
	close(sv[0]);
	close(sv[1]);
	zbl_free(bl);
	free(bytes);
}

static void test_thousands_of_one_byte_pieces_fill_pipe_slots_and_all_arrive(void **state)
{
	(void)state;
	zk_begin(30);
	tiny_pieces(false);
}

static void test_thousands_of_one_byte_pieces_arrive_with_a_nonblocking_socket(void **state)
{
	(void)state;
	zk_begin(30);
	tiny_pieces(true);
}

/*
 * A pipe is full of tiny pieces only when all its slots are used: a library
 * pipe of pipe-max-size bytes has pipe-max-size / 4096 slots, so n one-byte
 * pieces need n / slots pipes. A pipe sealed early (taken for full because a
 * piece arrived between the splice's EAGAIN and the check that followed)
 * wastes a whole pipe of the per-user budget. Allow twice the minimum.
 */
static void tiny_pieces_pipes(bool nonblocking)
{
	size_t n = 20000, have = 0;
	size_t slots = (size_t)zbl__read_proc_long("/proc/sys/fs/pipe-max-size", 1 << 20) / 4096;
	size_t min_pipes = (n + slots - 1) / slots;
	int sv[2];
	struct zk_writer w = { .seed = 105, .len = n, .chunk = 1, .end = 1 };
	zbl_t *bl = zt_new();

	zk_pair(ZK_UNIX, sv);
	if (nonblocking)
		zk_set_nonblock(sv[0], true);
	w.fd = sv[1];
	zk_writer_start(&w);
	zk_splice_upto(bl, sv[0], NULL, n, nonblocking, &have);
	if (have < n)
		shutdown(sv[0], SHUT_RDWR);
	zk_writer_join(&w);
	close(sv[0]);
	close(sv[1]);
	assert_size_equal(have, n);
	struct zbl_stats s = zk_stats();
	printf("# %zu one-byte pieces: %zu segments, %llu pipes created, %llu fallbacks "
	       "(at least %zu pipes of %zu slots needed)\n",
	       n, zbl_segments(bl), (unsigned long long)s.pipes_created,
	       (unsigned long long)s.fallbacks, min_pipes, slots);
	size_t segs = zbl_segments(bl);
	zbl_free(bl);
	if (segs > 2 * min_pipes)
		fail_msg("%zu one-byte pieces were spread over %zu pipe blocks; %zu pipes of %zu "
			 "slots hold them (pipes sealed before they were full?)",
			 n, segs, min_pipes, slots);
}

/* The waste depends on timing: a few rounds make it show reliably. */
static void test_one_byte_pieces_from_a_blocking_socket_do_not_waste_pipes(void **state)
{
	(void)state;
	zk_begin(30);
	for (int i = 0; i < 4; i++) {
		zbl_stats_reset();
		tiny_pieces_pipes(false);
	}
}

static void test_one_byte_pieces_from_a_nonblocking_socket_do_not_waste_pipes(void **state)
{
	(void)state;
	zk_begin(30);
	for (int i = 0; i < 4; i++) {
		zbl_stats_reset();
		tiny_pieces_pipes(true);
	}
}

/* ------------------------------------------------------------------------ */
/* zbl_append_file. */

static void test_append_file_is_written_out_by_splice_to_every_sink_without_copies(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 150000;
	int f = zk_pattern_file(200000, 110);
	unsigned char *bytes = malloc(n);
	zbl_t *bl = zt_new();

	assert_non_null(bytes);
	zk_pat_fill(bytes, n, 110, 1000);
	assert_rc(zbl_append_file(bl, f, 1000, n), 0);
	close(f);
	assert_size_equal(zbl_kernel_bytes(bl), n);
	for (int k = 0; k < ZK_KINDS; k++) {
		zbl_stats_reset();
		zk_assert_out(zk_write_to(bl, k, 0), bytes, n);
		zk_assert_out(zk_write_to(bl, k, ZK_WRITE_FD), bytes, n);
		zk_assert_stats(.bytes_spliced_out = 2 * n);
	}
	/* At an explicit offset of a file (copy_file_range), leaving its position alone. */
	int out = zt_temp_fd(0);
	int64_t off = 4096;
	zbl_stats_reset();
	assert_rc(zbl_splice_to(bl, out, &off, 0), n);
	assert_int_equal(off, 4096 + (int64_t)n);
	assert_int_equal(lseek(out, 0, SEEK_CUR), 0);
	size_t flen;
	unsigned char *got = zt_file_contents(out, &flen);
	assert_size_equal(flen, 4096 + n);
	zk_assert_bytes(got + 4096, bytes, n);
	free(got);
	close(out);
	zk_assert_stats(.bytes_spliced_out = n);
	assert_size_equal(zbl_kernel_bytes(bl), n);
	zbl_free(bl);
	free(bytes);
}

static void test_append_file_changed_before_reading_shows_the_new_bytes(void **state)
{
	(void)state;
	zk_begin(30);
	int f = zk_pattern_file(100000, 111);
	zbl_t *bl = zt_new();
	char got[9] = { 0 };

	assert_rc(zbl_append_file(bl, f, 1000, 50000), 0);
	/* Documented: the list refers to the file; a change before the first read is seen. */
	assert_int_equal(pwrite(f, "NEWBYTES", 8, 1010), 8);
	assert_rc(zbl_copy_out(bl, 10, 8, got), 0);
	assert_string_equal(got, "NEWBYTES");
	struct zk_out o = zk_write_to(bl, ZK_FILE, 0);
	assert_rc(o.r, 50000);
	assert_memory_equal(o.data + 10, "NEWBYTES", 8);
	free(o.data);
	close(f);
	zbl_free(bl);
}

/*
 * Reads see the copy made at the first read; writes still move the kernel
 * pages (docs/DESIGN.md, section "Materialize once"), so a file changed
 * after the read is written with its new bytes. Both halves of that rule are checked, and the write stays a
 * zero-copy one.
 */
static void read_then_change_then_write(zbl_t *bl, int f, int64_t file_off, size_t n)
{
	unsigned char *before = zt_flat(bl); /* reads (materializes) */
	unsigned char *changed = malloc(n);
	struct zbl_stats st0, st1;

	assert_non_null(changed);
	memset(changed, 'Z', n);
	assert_int_equal(pwrite(f, changed, n, file_off), (ssize_t)n);
	unsigned char *again = zt_flat(bl);
	zk_assert_bytes(again, before, n);
	zbl_stats_get(&st0);
	struct zk_out o = zk_write_to(bl, ZK_TCP, 0);
	zbl_stats_get(&st1);
	assert_rc(o.r, n);
	zk_assert_bytes(o.data, changed, n);
	assert_int_equal(st1.bytes_copied_out, st0.bytes_copied_out);
	free(o.data);
	free(again);
	free(before);
	free(changed);
}

static void test_append_file_read_then_changed_reads_the_copy_and_writes_the_new_pages(void **state)
{
	(void)state;
	zk_begin(30);
	int f = zk_pattern_file(100000, 112);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_file(bl, f, 1000, 50000), 0);
	read_then_change_then_write(bl, f, 1000, 50000);
	close(f);
	zbl_free(bl);
}

static void test_pipe_pages_from_a_file_read_then_changed_read_the_copy_and_write_the_new_pages(void **state)
{
	(void)state;
	zk_begin(30);
	int f = zk_pattern_file(100000, 113);
	zbl_t *bl = zt_new();
	int64_t off = 0;

	assert_rc(zbl_splice_from(bl, f, &off, 50000, 0), 50000);
	read_then_change_then_write(bl, f, 0, 50000);
	close(f);
	zbl_free(bl);
}

static void test_pipe_pages_from_a_file_changed_before_reading_are_documented(void **state)
{
	(void)state;
	zk_begin(30);
	int f = zk_pattern_file(100000, 114);
	zbl_t *bl = zt_new();
	int64_t off = 0;
	char got[9] = { 0 };

	assert_rc(zbl_splice_from(bl, f, &off, 50000, 0), 50000);
	assert_int_equal(pwrite(f, "NEWBYTES", 8, 500), 8);
	assert_rc(zbl_copy_out(bl, 500, 8, got), 0);
	/*
	 * file -> pipe takes page-cache references (docs/DESIGN.md, section "File
	 * pages are references; pipe to file is a copy"), so today the list sees
	 * the change; a kernel that copies would not. Both are allowed; the test
	 * records which one this kernel does.
	 */
	unsigned char old[8];
	zk_pat_fill(old, 8, 114, 500);
	bool is_new = memcmp(got, "NEWBYTES", 8) == 0;
	assert_true(is_new || memcmp(got, old, 8) == 0);
	printf("# pipe pages spliced from a file %s a later write to the file\n",
	       is_new ? "see" : "do not see");
	close(f);
	zbl_free(bl);
}

static void truncated(off_t to)
{
	int f = zk_pattern_file(100000, 115);
	zbl_t *bl = zt_new();
	char buf[64];

	assert_rc(zbl_append_file(bl, f, 1000, 50000), 0);
	assert_int_equal(ftruncate(f, to), 0);
	/* Reading fails with an error, not SIGBUS (SIGBUS is at its default: it would kill us). */
	int rc = zbl_copy_out(bl, 0, sizeof(buf), buf);
	if (rc >= 0)
		fail_msg("zbl_copy_out of a truncated file range returned %d", rc);
	printf("# copy_out of a range truncated to %lld: %d (%s)\n", (long long)to, rc,
	       zt_errname(rc));
	errno = 0;
	(void)zbl_crc32c(bl, 0);
	assert_int_equal(errno, EIO);
	int out = zt_temp_fd(0);
	ssize_t r = zbl_splice_to(bl, out, NULL, ZBL_DRAIN);
	close(out);
	if (r >= 0 && (size_t)r == 50000)
		fail_msg("zbl_splice_to of a truncated file range wrote all %zd bytes", r);
	printf("# splice_to of a range truncated to %lld: %zd (%s)\n", (long long)to, r,
	       zt_errname(r));
	/* A failed drain leaves the list as it was (only bytes actually written go). */
	if (r < 0)
		assert_size_equal(zbl_length(bl), 50000);
	close(f);
	zbl_free(bl);
}

static void test_append_file_truncated_to_zero_fails_reads_with_an_errno_not_sigbus(void **state)
{
	(void)state;
	zk_begin(30);
	truncated(0);
}

static void test_append_file_truncated_inside_the_range_fails_reads_with_an_errno(void **state)
{
	(void)state;
	zk_begin(30);
	truncated(1000 + 25000);
}

/* ------------------------------------------------------------------------ */
/* Sinks the kernel treats specially. */

/*
 * A blocking pipe whose reader is slower than the writer: the library's own
 * pipes are O_NONBLOCK, and splice(2) between two pipes does not block if
 * either is O_NONBLOCK, so the library sees EAGAIN from a descriptor the
 * caller opened blocking. A blocking write must still write everything.
 */
static void slow_pipe_sink(zbl_t *bl, const unsigned char *bytes, size_t n, unsigned flags)
{
	int p[2];
	struct zk_reader rd = { .chunk = 16 * ZK_KiB, .delay_us = 500, .start_delay_us = 50000 };
	ssize_t r;

	zk_pair(ZK_PIPE, p);
	zk_reader_start(&rd, p[0], n + 1);
	r = zk_write_call(bl, p[1], flags);
	close(p[1]);
	zk_reader_join(&rd);
	close(p[0]);
	if (r != (ssize_t)n)
		fail_msg("%s to a blocking pipe with a slow reader returned %zd (%s) of %zu",
			 zk_write_call_name(flags), r, zt_errname(r), n);
	zk_reader_check(&rd, bytes, n);
	zk_reader_free(&rd);
}

static void test_splice_to_a_blocking_pipe_with_a_slow_reader_writes_everything(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n, 120);
	zbl_t *bl = zk_pipe_list(n, 120);

	slow_pipe_sink(bl, bytes, n, 0);
	zbl_free(bl);
	free(bytes);
}

static void test_write_fd_to_a_blocking_pipe_with_a_slow_reader_writes_everything(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n, 121);
	zbl_t *bl = zk_pipe_list(n, 121);

	slow_pipe_sink(bl, bytes, n, ZK_WRITE_FD);
	zbl_free(bl);
	free(bytes);
}

static void test_drain_to_a_blocking_pipe_with_a_slow_reader_writes_everything(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n, 122);
	zbl_t *bl = zk_pipe_list(n, 122);

	slow_pipe_sink(bl, bytes, n, ZBL_DRAIN);
	assert_size_equal(zbl_length(bl), 0);
	zbl_free(bl);
	free(bytes);
}

static void test_file_range_to_a_blocking_pipe_with_a_slow_reader_writes_everything(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n, 123);
	int f = zk_pattern_file(n, 123);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_file(bl, f, 0, n), 0);
	close(f);
	slow_pipe_sink(bl, bytes, n, 0);
	zbl_free(bl);
	free(bytes);
}

/* splice(2) into an O_APPEND file is EINVAL; log files are usually O_APPEND. */
static void append_sink(zbl_t *bl, const unsigned char *bytes, size_t n)
{
	int fd = zt_temp_fd(O_APPEND);
	size_t len;

	zt_write_full(fd, "prefix", 6);
	ssize_t r = zbl_splice_to(bl, fd, NULL, 0);
	if (r != (ssize_t)n) {
		close(fd);
		fail_msg("zbl_splice_to an O_APPEND file returned %zd (%s), expected %zu", r,
			 zt_errname(r), n);
	}
	unsigned char *got = zt_file_contents(fd, &len);
	close(fd);
	assert_size_equal(len, 6 + n);
	assert_memory_equal(got, "prefix", 6);
	zk_assert_bytes(got + 6, bytes, n);
	free(got);
}

static void test_pipe_pages_written_to_an_o_append_file_are_appended(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 200000;
	unsigned char *bytes = zk_pat_alloc(n, 124);
	zbl_t *bl = zk_pipe_list(n, 124);

	append_sink(bl, bytes, n);
	zk_print_stats("pipe pages to O_APPEND");
	zbl_free(bl);
	free(bytes);
}

static void test_file_range_written_to_an_o_append_file_is_appended(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 200000;
	unsigned char *bytes = zk_pat_alloc(n, 125);
	int f = zk_pattern_file(n, 125);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_file(bl, f, 0, n), 0);
	close(f);
	append_sink(bl, bytes, n);
	zk_print_stats("file range to O_APPEND");
	zbl_free(bl);
	free(bytes);
}

/*
 * O_DIRECT needs block-aligned memory, file offsets and lengths
 * (docs/DESIGN.md, section "O_DIRECT alignment"); pipe buffers from a socket
 * start anywhere in their pages and a program's memory anywhere at all. Each
 * list is written at offset 0 with a total length that is a multiple of 4096,
 * so only the library's own alignment is under test. Returns false (after
 * skipping) where the file system has no O_DIRECT.
 */
static void write_to_o_direct_file(zbl_t *bl, const unsigned char *want, size_t n,
				   const char *what)
{
	char path[] = "/tmp/zbl-kpage-XXXXXX", link[64];
	int fd = mkstemp(path);
	size_t len;

	assert_true(fd >= 0);
	close(fd);
	fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	unlink(path);
	if (fd < 0) {
		zbl_free(bl);
		skip(); /* the file system does not do O_DIRECT */
	}
	ssize_t r = zbl_splice_to(bl, fd, NULL, 0);
	zk_print_stats(what);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	int rfd = open(link, O_RDONLY | O_CLOEXEC);
	close(fd);
	assert_true(rfd >= 0);
	if (r != (ssize_t)n) {
		close(rfd);
		fail_msg("%s: zbl_splice_to an O_DIRECT file returned %zd (%s), expected %zu",
			 what, r, zt_errname(r), n);
	}
	unsigned char *got = zt_file_contents(rfd, &len);
	close(rfd);
	assert_size_equal(len, n);
	zk_assert_bytes(got, want, n);
	assert_list_bytes(bl, want, n);
	free(got);
	zbl_free(bl);
}

static void test_socket_pages_written_to_an_o_direct_file_arrive_exactly(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n, 126);

	write_to_o_direct_file(zk_pipe_list(n, 126), bytes, n, "socket pages to O_DIRECT");
	free(bytes);
}

/* Memory at odd addresses in odd-sized pieces: the kernel refuses it as it is. */
static void test_unaligned_memory_written_to_an_o_direct_file_arrives_exactly(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 3 * ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n + 1, 127);
	zbl_t *bl = zt_new();

	zk_pat_fill(bytes, n + 1, 127, 0);
	assert_rc(zbl_append(bl, bytes, 1000), 0);
	assert_rc(zbl_append_ref(bl, bytes + 1000, ZK_MiB, NULL, NULL), 0);
	for (size_t at = 1000 + ZK_MiB; at < n; at += 7777)
		assert_rc(zbl_append(bl, bytes + at, at + 7777 < n ? 7777 : n - at), 0);
	write_to_o_direct_file(bl, bytes, n, "unaligned memory to O_DIRECT");
	free(bytes);
}

/* Memory, socket pages and a file range in one list, none of it aligned. */
static void test_mixed_list_written_to_an_o_direct_file_arrives_exactly(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 2 * ZK_MiB, mem = 333, pipe_n = ZK_MiB + 4000;
	unsigned char *bytes = zk_pat_alloc(n, 128);
	int f = zk_pattern_file(n, 128);
	zbl_t *bl = zt_new(), *p = zk_pipe_list(n, 128);

	assert_rc(zbl_append(bl, bytes, mem), 0);
	assert_rc(zbl_substr_of(p, p, mem, pipe_n), 0);
	assert_rc(zbl_append_list(bl, p), 0);
	assert_rc(zbl_append_file(bl, f, (int64_t)(mem + pipe_n), n - mem - pipe_n), 0);
	close(f);
	zbl_free(p);
	write_to_o_direct_file(bl, bytes, n, "mixed list to O_DIRECT");
	free(bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptors_and_pipes_live_return_to_start_after_free_and_pool_flush),
		cmocka_unit_test(test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_a_file),
		cmocka_unit_test(test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_tcp),
		cmocka_unit_test(test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_unix),
		cmocka_unit_test(test_substr_windows_at_odd_offsets_write_exactly_their_bytes_to_a_pipe),
		cmocka_unit_test(test_zbl_splice_of_the_middle_writes_the_rest_and_the_claimed_part_exactly),
		cmocka_unit_test(test_draining_a_trimmed_sole_owned_list_writes_only_its_window_without_tee),
		cmocka_unit_test(test_writing_without_drain_keeps_the_data_for_another_write_to_a_file),
		cmocka_unit_test(test_writing_without_drain_keeps_the_data_for_another_write_to_tcp),
		cmocka_unit_test(test_writing_without_drain_keeps_the_data_for_another_write_to_unix),
		cmocka_unit_test(test_writing_without_drain_keeps_the_data_for_another_write_to_a_pipe),
		cmocka_unit_test(test_two_lists_sharing_pipe_blocks_each_write_the_full_data),
		cmocka_unit_test(test_list_appended_to_itself_writes_its_data_twice),
		cmocka_unit_test(test_drain_to_a_full_nonblocking_pipe_removes_exactly_the_bytes_written),
		cmocka_unit_test(test_drain_of_a_shared_list_to_a_full_pipe_leaves_the_other_list_intact),
		cmocka_unit_test(test_drain_of_one_list_leaves_a_list_sharing_its_blocks_intact),
		cmocka_unit_test(test_mixed_memory_pipe_and_file_list_is_written_in_order_to_every_sink),
		cmocka_unit_test(test_mixed_list_drained_to_a_socket_goes_in_order_and_empties_the_list),
		cmocka_unit_test(test_nonblocking_splice_from_empty_tcp_socket_returns_eagain_and_changes_nothing),
		cmocka_unit_test(test_nonblocking_splice_from_empty_unix_socket_returns_eagain_and_changes_nothing),
		cmocka_unit_test(test_nonblocking_splice_from_empty_pipe_returns_eagain_and_changes_nothing),
		cmocka_unit_test(test_blocking_pipe_source_blocks_until_data_arrives),
		cmocka_unit_test(test_blocking_unix_source_blocks_until_data_arrives),
		cmocka_unit_test(test_blocking_tcp_source_blocks_until_data_arrives),
		cmocka_unit_test(test_read_fd_on_blocking_pipe_waits_for_len_bytes),
		cmocka_unit_test(test_splice_from_on_blocking_pipe_waits_for_len_bytes_like_read_fd),
		cmocka_unit_test(test_splice_from_on_blocking_unix_socket_waits_for_len_bytes_like_read_fd),
		cmocka_unit_test(test_splice_from_on_blocking_tcp_socket_waits_for_len_bytes_like_read_fd),
		cmocka_unit_test(test_splice_from_some_on_blocking_pipe_returns_what_arrived),
		cmocka_unit_test(test_splice_from_some_on_blocking_unix_socket_returns_what_arrived),
		cmocka_unit_test(test_splice_from_some_on_blocking_tcp_socket_returns_what_arrived),
		cmocka_unit_test(test_splice_from_some_on_nonblocking_tcp_socket_returns_what_arrived),
		cmocka_unit_test(test_thousands_of_one_byte_pieces_fill_pipe_slots_and_all_arrive),
		cmocka_unit_test(test_thousands_of_one_byte_pieces_arrive_with_a_nonblocking_socket),
		cmocka_unit_test(test_one_byte_pieces_from_a_blocking_socket_do_not_waste_pipes),
		cmocka_unit_test(test_one_byte_pieces_from_a_nonblocking_socket_do_not_waste_pipes),
		cmocka_unit_test(test_append_file_is_written_out_by_splice_to_every_sink_without_copies),
		cmocka_unit_test(test_append_file_changed_before_reading_shows_the_new_bytes),
		cmocka_unit_test(test_append_file_read_then_changed_reads_the_copy_and_writes_the_new_pages),
		cmocka_unit_test(test_pipe_pages_from_a_file_changed_before_reading_are_documented),
		cmocka_unit_test(test_pipe_pages_from_a_file_read_then_changed_read_the_copy_and_write_the_new_pages),
		cmocka_unit_test(test_append_file_truncated_to_zero_fails_reads_with_an_errno_not_sigbus),
		cmocka_unit_test(test_append_file_truncated_inside_the_range_fails_reads_with_an_errno),
		cmocka_unit_test(test_splice_to_a_blocking_pipe_with_a_slow_reader_writes_everything),
		cmocka_unit_test(test_write_fd_to_a_blocking_pipe_with_a_slow_reader_writes_everything),
		cmocka_unit_test(test_drain_to_a_blocking_pipe_with_a_slow_reader_writes_everything),
		cmocka_unit_test(test_file_range_to_a_blocking_pipe_with_a_slow_reader_writes_everything),
		cmocka_unit_test(test_pipe_pages_written_to_an_o_append_file_are_appended),
		cmocka_unit_test(test_file_range_written_to_an_o_append_file_is_appended),
		cmocka_unit_test(test_socket_pages_written_to_an_o_direct_file_arrive_exactly),
		cmocka_unit_test(test_unaligned_memory_written_to_an_o_direct_file_arrives_exactly),
		cmocka_unit_test(test_mixed_list_written_to_an_o_direct_file_arrives_exactly),
	};

	signal(SIGPIPE, SIG_DFL);
	signal(SIGBUS, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
