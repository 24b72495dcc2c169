/* SPDX-License-Identifier: MIT */
/*
 * The per-user pipe budget. An unprivileged user may hold
 * fs.pipe-user-pages-soft pages (16384 = 64 MiB by default) in pipes across
 * all its processes; past that, new pipes get 2 pages and F_SETPIPE_SZ fails
 * with EPERM (docs/DESIGN.md, section "Pipe sizes and the per-user budget").
 * Root in this environment is exempt (CAP_SYS_ADMIN), so each test re-executes
 * this program as user nobody (65534, no supplementary groups) and the child
 * runs the test:
 * - 200 MiB from a TCP socket to a file in 4 MiB rounds (zbl_splice_from,
 *   then zbl_splice_to(ZBL_DRAIN)), verified against the generated pattern;
 * - lists holding pipes until the budget is spent (our own probe pipe cannot
 *   be grown any more), then a further transfer, which must still deliver
 *   every byte by falling back to copies; the held lists stay readable and
 *   writable.
 * Not root: exit 77 (skipped), as the user cannot be switched.
 */
#include "kpage_util.h"

#define NOBODY 65534

static void child_transfer_200m(void **state)
{
	(void)state;
	size_t total = 200 * ZK_MiB, round = 4 * ZK_MiB, done = 0;
	int fds[2], out = zt_temp_fd(0);
	struct zk_writer w = { .seed = 200, .len = total, .chunk = ZK_MiB, .end = 1 };
	zbl_t *bl = zt_new();

	assert_true(zk_pipe_budget_applies());
	zk_pair(ZK_TCP, fds);
	w.fd = fds[1];
	zk_writer_start(&w);
	zbl_stats_reset();
	while (done < total) {
		size_t have;
		ssize_t in = zk_splice_upto(bl, fds[0], NULL, round, false, &have);
		if (have < round) {
			shutdown(fds[0], SHUT_RDWR);
			fail_msg("zbl_splice_from returned %zd (%s) at byte %zu", in, zt_errname(in),
				 done + have);
		}
		ssize_t r = zbl_splice_to(bl, out, NULL, ZBL_DRAIN);
		if (r != (ssize_t)round)
			fail_msg("zbl_splice_to(ZBL_DRAIN) returned %zd (%s) at byte %zu", r,
				 zt_errname(r), done);
		assert_size_equal(zbl_length(bl), 0);
		done += round;
	}
	assert_rc(zbl_splice_from(bl, fds[0], NULL, 1, 0), 0); /* the stream ended there */
	zk_writer_join(&w);
	assert_int_equal(w.err, 0);
	struct zbl_stats s = zk_stats();
	zk_print_stats("200 MiB socket -> list -> file as nobody");
	printf("# fallbacks: %llu\n", (unsigned long long)s.fallbacks);
	assert_size_equal(s.bytes_spliced_in + s.bytes_copied_in, total);
	assert_size_equal(s.bytes_spliced_out + s.bytes_copied_out, total);

	/* The file holds the pattern, byte for byte. */
	unsigned char *buf = malloc(ZK_MiB);
	assert_non_null(buf);
	struct stat st;
	assert_int_equal(fstat(out, &st), 0);
	assert_size_equal(st.st_size, total);
	for (size_t off = 0; off < total; off += ZK_MiB) {
		ssize_t r = pread(out, buf, ZK_MiB, (off_t)off);
		assert_int_equal(r, (ssize_t)ZK_MiB);
		size_t bad = zk_pat_mismatch(buf, ZK_MiB, 200, off);
		if (bad != SIZE_MAX)
			fail_msg("the file differs from the sent stream at byte %zu", off + bad);
	}
	free(buf);
	close(out);
	close(fds[0]);
	close(fds[1]);
	zbl_free(bl);
	zbl_pool_flush();
	assert_size_equal(zk_stats().pipes_live, 0);
}

/* Whether this user could still grow a new pipe to 128 KiB. */
static bool budget_left(void)
{
	int p[2];
	bool ok;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	ok = fcntl(p[1], F_SETPIPE_SZ, 128 * 1024) >= 0;
	if (!ok)
		assert_int_equal(errno, EPERM);
	close(p[0]);
	close(p[1]);
	return ok;
}

/*
 * Fills @held (room for @max) with lists of the @n bytes of the file @f as
 * pipe pages until this user could not grow another pipe; returns how many.
 */
static size_t hold_lists_until_the_budget_is_spent(zbl_t **held, size_t max, int f, size_t n)
{
	size_t held_n = 0;

	while (held_n < max && budget_left())
		held[held_n++] = zk_list_spliced_from_file(f, n);
	return held_n;
}

static void child_past_budget(void **state)
{
	(void)state;
	enum { MAX_HELD = 400 };
	size_t n = ZK_MiB, held_n;
	int f = zk_pattern_file(n, 300);
	unsigned char *bytes = zk_pat_alloc(n, 300);
	zbl_t *held[MAX_HELD];

	assert_true(zk_pipe_budget_applies());
	printf("# fs.pipe-user-pages-soft = %ld pages\n",
	       zbl__read_proc_long("/proc/sys/fs/pipe-user-pages-soft", -1));
	/* Hold 1 MiB lists of pipe pages until the budget is spent. */
	held_n = hold_lists_until_the_budget_is_spent(held, MAX_HELD, f, n);
	assert_false(budget_left());
	zk_print_stats("held lists");
	printf("# budget spent after %zu lists of 1 MiB\n", held_n);

	/* A further transfer still delivers every byte, by copying. */
	size_t tn = 4 * ZK_MiB + 17;
	unsigned char *tb = zk_pat_alloc(tn, 301);
	int fds[2], out = zt_temp_fd(0);
	struct zk_writer w = { .buf = tb, .len = tn, .end = 1 };
	zbl_t *bl = zt_new();
	zk_pair(ZK_UNIX, fds);
	w.fd = fds[1];
	zk_writer_start(&w);
	zbl_stats_reset();
	size_t have;
	ssize_t in = zk_splice_upto(bl, fds[0], NULL, tn, false, &have);
	if (have < tn) {
		shutdown(fds[0], SHUT_RDWR);
		fail_msg("zbl_splice_from past the budget returned %zd (%s) after %zu", in,
			 zt_errname(in), have);
	}
	zk_writer_join(&w);
	struct zbl_stats s = zk_stats();
	zk_print_stats("transfer past the budget");
	assert_true(s.fallbacks > 0);
	assert_size_equal(s.bytes_spliced_in + s.bytes_copied_in, tn);
	assert_list_bytes(bl, tb, tn);
	assert_rc(zbl_splice_to(bl, out, NULL, ZBL_DRAIN), tn);
	assert_file_bytes(out, tb, tn);
	close(fds[0]);
	close(fds[1]);

	/* The lists held from before stay readable and writable. */
	int out2 = zt_temp_fd(0);
	ssize_t r = zbl_splice_to(held[0], out2, NULL, 0);
	if (r != (ssize_t)n)
		fail_msg("writing a held list (flags 0) past the budget returned %zd (%s)", r,
			 zt_errname(r));
	assert_file_bytes(out2, bytes, n);
	unsigned char *flat = malloc(n);
	int rc = zbl_copy_out(held[1], 0, n, flat);
	if (rc != 0)
		fail_msg("reading a held list past the budget returned %d (%s)", rc, zt_errname(rc));
	zk_assert_bytes(flat, bytes, n);
	free(flat);
	assert_int_equal(ftruncate(out2, 0), 0);
	assert_int_equal(lseek(out2, 0, SEEK_SET), 0);
	assert_rc(zbl_splice_to(held[2], out2, NULL, ZBL_DRAIN), n);
	assert_file_bytes(out2, bytes, n);

	for (size_t i = 0; i < held_n; i++)
		zbl_free(held[i]);
	zbl_free(bl);
	zbl_pool_flush();
	assert_size_equal(zk_stats().pipes_live, 0);
	assert_true(budget_left());
	close(out);
	close(out2);
	close(f);
	free(tb);
	free(bytes);
}

/* The held lists are only drained: that needs no further pipe. */
static void child_past_budget_drain(void **state)
{
	(void)state;
	enum { MAX_HELD = 400 };
	size_t n = ZK_MiB, held_n;
	int f = zk_pattern_file(n, 302), out = zt_temp_fd(0);
	unsigned char *bytes = zk_pat_alloc(n, 302);
	zbl_t *held[MAX_HELD];

	held_n = hold_lists_until_the_budget_is_spent(held, MAX_HELD, f, n);
	for (size_t i = 0; i < held_n; i++) {
		int64_t off = 0;
		assert_int_equal(ftruncate(out, 0), 0);
		assert_rc(zbl_splice_to(held[i], out, &off, ZBL_DRAIN), n);
		assert_file_bytes(out, bytes, n);
		zbl_free(held[i]);
	}
	close(out);
	close(f);
	free(bytes);
}

static const struct zk_child children[] = {
	{ "transfer_200m", child_transfer_200m },
	{ "past_budget", child_past_budget },
	{ "past_budget_drain", child_past_budget_drain },
};

static void run_as_nobody(const char *name)
{
	int rc = zk_run_child(name, 0, NOBODY);

	if (rc >= 120 && rc <= 122)
		fail_msg("could not start the child as uid %d (status %d)", NOBODY, rc);
	assert_int_equal(rc, 0);
}

static void test_200_mib_socket_to_file_in_4_mib_rounds_as_nobody_arrives_exact(void **state)
{
	(void)state;
	zk_watchdog(__func__, 60);
	run_as_nobody("transfer_200m");
}

static void test_past_the_pipe_budget_a_transfer_falls_back_and_held_lists_stay_usable(void **state)
{
	(void)state;
	zk_watchdog(__func__, 60);
	run_as_nobody("past_budget");
}

static void test_past_the_pipe_budget_held_lists_drain_exactly(void **state)
{
	(void)state;
	zk_watchdog(__func__, 60);
	run_as_nobody("past_budget_drain");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_200_mib_socket_to_file_in_4_mib_rounds_as_nobody_arrives_exact),
		cmocka_unit_test(test_past_the_pipe_budget_a_transfer_falls_back_and_held_lists_stay_usable),
		cmocka_unit_test(test_past_the_pipe_budget_held_lists_drain_exactly),
	};

	zk_child_dispatch(argc, argv, children, sizeof(children) / sizeof(children[0]));
	if (geteuid() != 0) {
		printf("test_kpage_nobody: skipped: must run as root to switch to uid %d "
		       "(the per-user pipe budget does not apply to root here)\n", NOBODY);
		return 77;
	}
	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
