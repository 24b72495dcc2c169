/* SPDX-License-Identifier: MIT */
/*
 * Kernel pages from every source kind to every sink kind, at sizes that hit
 * the edges (1 byte, just under a page, just over a 64 KiB pipe, 1 MiB = one
 * full library pipe, 64 MiB = many pipes): zbl_splice_from until the whole
 * stream is in the list, then one zbl_splice_to(ZBL_DRAIN). The received
 * bytes must equal the sent ones, and the counters must show that nothing
 * went through user memory:
 *   bytes_copied_in == bytes_copied_out == bytes_materialized == fallbacks == 0,
 *   bytes_spliced_in == bytes_spliced_out == size, bytes_teed == 0 (the
 *   drained list is the only holder, so nothing needs duplicating).
 *
 * Sources: a regular file, TCP on 127.0.0.1, an AF_UNIX socketpair and a
 * pipe, each fed by a writer thread (the file is written beforehand).
 * Sinks: the same kinds, drained by a reader thread (a file is read back).
 *
 * Run unprivileged (e.g. setpriv --reuid=65534 --regid=65534 --clear-groups),
 * the per-user pipe budget (fs.pipe-user-pages-soft, 64 MiB) cannot hold the
 * 64 MiB case: there the library may fall back to copying, so only the byte
 * totals are checked and the fallbacks are printed.
 */
#include "kpage_util.h"

static const size_t sizes[] = { 1, 4095, 65537, ZK_MiB, 64 * ZK_MiB };
static const char *const size_names[] = { "1_byte", "4095_bytes", "65537_bytes", "1MiB",
					  "64MiB" };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define SEED 0x6b70616765ull

static unsigned char *pattern; /* 64 MiB of pattern SEED */
static int source_file[NSIZES] = { -1, -1, -1, -1, -1 };
static zbl_t *cur; /* the running test's list, freed by the teardown even after a failure */

struct transfer_case {
	enum zk_kind src, dst;
	size_t size_idx;
};

static int source_file_for(size_t idx)
{
	if (source_file[idx] < 0)
		source_file[idx] = zk_pattern_file(sizes[idx], SEED);
	return source_file[idx];
}

/* Fills @bl with the whole stream from a source of kind @k; returns the stream's bytes. */
static void fill_from(zbl_t *bl, enum zk_kind k, size_t idx)
{
	size_t size = sizes[idx], have;
	int fds[2] = { -1, -1 };
	struct zk_writer w = { .buf = pattern, .len = size };
	ssize_t r = 0, eof;

	if (k == ZK_FILE) {
		int fd = source_file_for(idx);
		int64_t off = 0;
		r = zk_splice_upto(bl, fd, &off, size, false, &have);
		eof = zbl_splice_from(bl, fd, &off, 1, 0);
		if (have != size)
			fail_msg("zbl_splice_from(file) returned %zd (%s) after %zu of %zu bytes",
				 r, zt_errname(r), have, size);
		assert_rc(eof, 0);
		assert_int_equal(off, (int64_t)size);
		return;
	}
	zk_pair(k, fds);
	w.fd = fds[1];
	w.end = k == ZK_PIPE ? 2 : 1; /* the writer closes a pipe's write end itself */
	zk_writer_start(&w);
	r = zk_splice_upto(bl, fds[0], NULL, size, false, &have);
	eof = have == size ? zbl_splice_from(bl, fds[0], NULL, 1, 0) : 0;
	if (have != size)
		shutdown(fds[0], SHUT_RDWR);
	zk_writer_join(&w);
	if (k == ZK_PIPE)
		fds[1] = -1;
	zk_close(&fds[0]);
	zk_close(&fds[1]);
	if (have != size)
		fail_msg("zbl_splice_from(%s) returned %zd (%s) after %zu of %zu bytes",
			 zk_kind_name[k], r, zt_errname(r), have, size);
	assert_int_equal(w.err, 0);
	assert_rc(eof, 0); /* then end of file, nothing more */
}

static void drain_to(zbl_t *bl, enum zk_kind k, size_t size)
{
	int fds[2] = { -1, -1 };
	struct zk_reader rd = { 0 };
	ssize_t r;

	if (k == ZK_FILE) {
		int fd = zt_temp_fd(0);
		r = zbl_splice_to(bl, fd, NULL, ZBL_DRAIN);
		if (r == (ssize_t)size)
			assert_file_bytes(fd, pattern, size);
		close(fd);
		assert_rc(r, size);
		return;
	}
	zk_pair(k, fds);
	zk_reader_start(&rd, fds[0], size + 1);
	r = zbl_splice_to(bl, fds[1], NULL, ZBL_DRAIN);
	zk_end_writes(k, &fds[1]);
	zk_reader_join(&rd);
	zk_close(&fds[0]);
	zk_close(&fds[1]);
	assert_rc(r, size);
	zk_reader_check(&rd, pattern, size);
	zk_reader_free(&rd);
}

static void test_transfer(void **state)
{
	const struct transfer_case *c = *state;
	size_t size = sizes[c->size_idx];
	zbl_t *bl;

	zk_begin(60);
	bl = cur = zt_new();
	fill_from(bl, c->src, c->size_idx);
	assert_size_equal(zbl_length(bl), size);
	bool budget = zk_pipe_budget_applies() && size > 16 * ZK_MiB;
	if (!budget)
		assert_size_equal(zbl_kernel_bytes(bl), zbl_length(bl));

	drain_to(bl, c->dst, size);
	assert_size_equal(zbl_length(bl), 0);

	struct zbl_stats s = zk_stats();
	if (budget) {
		/* The per-user budget cannot hold this much: copies are allowed, bytes are not lost. */
		zk_print_stats("unprivileged, per-user pipe budget applies");
		assert_size_equal(s.bytes_spliced_in + s.bytes_copied_in, size);
		assert_size_equal(s.bytes_spliced_out + s.bytes_copied_out, size);
	} else {
		zk_assert_stats(.bytes_spliced_in = size, .bytes_spliced_out = size);
	}
}

static int teardown(void **state)
{
	(void)state;
	zbl_free(cur);
	cur = NULL;
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	pattern = zk_pat_alloc(64 * ZK_MiB, SEED);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSIZES; i++)
		if (source_file[i] >= 0)
			close(source_file[i]);
	free(pattern);
	zbl_pool_flush();
	return 0;
}

int main(void)
{
	static struct transfer_case cases[ZK_KINDS * ZK_KINDS * NSIZES];
	static struct CMUnitTest tests[ZK_KINDS * ZK_KINDS * NSIZES];
	size_t n = 0;

	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	for (size_t si = 0; si < NSIZES; si++) {
		for (int src = 0; src < ZK_KINDS; src++) {
			for (int dst = 0; dst < ZK_KINDS; dst++) {
				char *name;
				cases[n] = (struct transfer_case){ src, dst, si };
				if (asprintf(&name, "%s_to_list_to_%s_%s_arrives_exact_without_copies",
					     zk_kind_name[src], zk_kind_name[dst], size_names[si]) < 0)
					return 1;
				tests[n] = (struct CMUnitTest){ name, test_transfer, NULL, teardown,
								&cases[n] };
				n++;
			}
		}
	}
	return _cmocka_run_group_tests("kpage_matrix", tests, n, group_setup, group_teardown);
}
