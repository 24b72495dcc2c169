/* SPDX-License-Identifier: MIT */
/*
 * When the kernel will not give the library what zero copy needs, it must
 * still move every byte: by copying, counted in `fallbacks`.
 * - No pipes can be created (the process is out of descriptors, EMFILE):
 *   zbl_splice_from copies; lists already holding pipe pages can still be
 *   read and written.
 * - The library's own cap on pipes (a quarter of RLIMIT_NOFILE) is reached:
 *   the same, in a child started with a low RLIMIT_NOFILE so the library
 *   computes its cap afresh.
 * - The descriptor cannot be spliced from at all (splice(2) says EINVAL on
 *   this kernel for eventfd and for /proc/self/cmdline): copying instead.
 * - Every fallback and materialization is reported to the trace callback.
 * The per-user pipe budget of an unprivileged user is tested in
 * test_kpage_nobody.c.
 */
#include "kpage_util.h"

#include <sys/eventfd.h>

/* Fills every free descriptor below a limit of @limit; returns how many were taken. */
static int exhaust_descriptors(rlim_t limit, int *taken, int max)
{
	struct rlimit rl = { limit, limit };
	int n = 0;

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (;;) {
		int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			assert_int_equal(errno, EMFILE);
			break;
		}
		assert_true(n < max);
		taken[n++] = fd;
	}
	return n;
}

/* Child: the process runs out of descriptors. */
static void child_emfile(void **state)
{
	(void)state;
	size_t n = 3 * ZK_MiB + 5, nheld = 500000;
	unsigned char *bytes = zk_pat_alloc(n, 1), *held_bytes = zk_pat_alloc(nheld, 2);
	zbl_t *held = zk_pipe_list(nheld, 2), *shared = zt_new(), *bl = zt_new();
	int sv[2], out = zt_temp_fd(0), out2 = zt_temp_fd(0), taken[1024];
	struct zk_writer w = { .buf = bytes, .len = n, .end = 1 };

	assert_rc(zbl_append_list(shared, held), 0);
	zk_pair(ZK_UNIX, sv);
	w.fd = sv[1];
	zk_writer_start(&w);
	zbl_pool_flush();
	int ntaken = exhaust_descriptors((rlim_t)zk_fd_count() + 8, taken, 1024);
	assert_int_equal(pipe2((int[2]){ 0, 0 }, 0), -1);

	/* Incoming bytes: no pipe can be had, so they are copied, and counted. */
	zbl_stats_reset();
	size_t have;
	ssize_t r = zk_splice_upto(bl, sv[0], NULL, n, false, &have);
	if (have < n)
		fail_msg("zbl_splice_from without descriptors returned %zd (%s) after %zu", r,
			 zt_errname(r), have);
	zk_writer_join(&w);
	struct zbl_stats s = zk_stats();
	zk_print_stats("splice_from with EMFILE");
	assert_size_equal(s.bytes_copied_in, n);
	assert_size_equal(s.bytes_spliced_in, 0);
	assert_true(s.fallbacks > 0);
	assert_list_bytes(bl, bytes, n);

	/* Pipe pages held from before: still readable and writable, by copying if need be. */
	zbl_stats_reset();
	assert_rc(zbl_splice_to(held, out, NULL, 0), nheld);
	assert_file_bytes(out, held_bytes, nheld);
	assert_list_bytes(held, held_bytes, nheld);
	zk_print_stats("held pipe pages written and read with EMFILE");

	/* Draining a list that shares nothing needs no new pipe. */
	zbl_t *sole = zt_new();
	assert_rc(zbl_claim_append(sole, bl), 0);
	assert_rc(zbl_splice_to(sole, out2, NULL, ZBL_DRAIN), n);
	assert_file_bytes(out2, bytes, n);

	for (int i = 0; i < ntaken; i++)
		close(taken[i]);
	/* Descriptors are back: zero copy again. */
	zbl_stats_reset();
	zbl_t *again = zk_pipe_list(100000, 3);
	zk_assert_stats(.bytes_spliced_in = 100000);
	zbl_free(again);
	zbl_free(sole);
	zbl_free(bl);
	zbl_free(held);
	zbl_free(shared);
	close(sv[0]);
	close(sv[1]);
	close(out);
	close(out2);
	free(bytes);
	free(held_bytes);
}

/*
 * What the pipe-cap children start from: 24 lists, each holding the same
 * 100000 bytes of a file as one zbl_splice_from made them (pipe pages until
 * the library's cap, copies after), counted from zero.
 */
enum { CAP_LISTS = 24 };

struct cap_lists {
	size_t n;
	int f, out;
	unsigned char *bytes;
	zbl_t *lists[CAP_LISTS];
};

static void cap_lists_setup(struct cap_lists *c, uint64_t seed)
{
	c->n = 100000;
	c->f = zk_pattern_file(c->n, seed);
	c->out = zt_temp_fd(0);
	c->bytes = zk_pat_alloc(c->n, seed);
	zbl_stats_reset();
	for (int i = 0; i < CAP_LISTS; i++)
		c->lists[i] = zk_list_spliced_from_file(c->f, c->n);
}

/* Writes each list to the file c->out at offset 0 (flags 0) and checks the file each time. */
static void cap_lists_write_each(struct cap_lists *c)
{
	for (int i = 0; i < CAP_LISTS; i++) {
		int64_t off = 0;
		assert_int_equal(ftruncate(c->out, 0), 0);
		ssize_t r = zbl_splice_to(c->lists[i], c->out, &off, 0);
		if (r != (ssize_t)c->n)
			fail_msg("list %d: zbl_splice_to with the pipe cap reached returned %zd (%s)",
				 i, r, zt_errname(r));
		assert_file_bytes(c->out, c->bytes, c->n);
	}
}

static void cap_lists_teardown(struct cap_lists *c)
{
	for (int i = 0; i < CAP_LISTS; i++)
		zbl_free(c->lists[i]);
	close(c->f);
	close(c->out);
	free(c->bytes);
}

/*
 * Child started with RLIMIT_NOFILE 64: the library allows itself 16 pipes.
 * Many lists each hold pipe pages from a file; once the cap is reached new
 * bytes are copied, and every list stays readable and writable.
 */
static void child_pipe_cap(void **state)
{
	(void)state;
	struct cap_lists c;

	cap_lists_setup(&c, 4);
	struct zbl_stats s = zk_stats();
	zk_print_stats("24 lists under a cap of 16 pipes");
	assert_true(s.pipes_live <= 16);
	assert_true(s.fallbacks > 0);
	assert_size_equal(s.bytes_spliced_in + s.bytes_copied_in, CAP_LISTS * c.n);
	/* Every list, pipe pages or not, reads and writes its bytes. */
	for (int i = 0; i < CAP_LISTS; i++) {
		unsigned char *flat = malloc(c.n);
		int rc = zbl_copy_out(c.lists[i], 0, c.n, flat);
		if (rc != 0)
			fail_msg("list %d: zbl_copy_out with the pipe cap reached returned %d (%s)", i,
				 rc, zt_errname(rc));
		zk_assert_bytes(flat, c.bytes, c.n);
		free(flat);
	}
	cap_lists_write_each(&c);
	cap_lists_teardown(&c);
}

/* Child: the held lists are written before anything reads them. */
static void child_pipe_cap_write_first(void **state)
{
	(void)state;
	struct cap_lists c;

	cap_lists_setup(&c, 5);
	cap_lists_write_each(&c);
	cap_lists_teardown(&c);
}

/*
 * Child: descriptors run out while two threads use lists sharing pipe blocks;
 * the pool holds a single idle scratch pipe that the threads take turns at.
 * One thread reads list a (copy_out), the other writes list b (flags 0) to a
 * file. Whichever finds no scratch pipe must still produce exact bytes,
 * whatever the other is doing with the same blocks at that moment.
 */
enum { ROUNDS = 32 };

struct emt_job {
	zbl_t *bl;
	const unsigned char *want;
	size_t n;
	int fd;
	pthread_barrier_t *start;
	char err[200];
};

static void *emt_reader(void *arg)
{
	struct emt_job *j = arg;
	unsigned char *buf = malloc(j->n);

	pthread_barrier_wait(j->start);
	int rc = zbl_copy_out(j->bl, 0, j->n, buf);
	if (rc)
		snprintf(j->err, sizeof(j->err), "copy_out returned %d (%s)", rc, zt_errname(rc));
	else if (memcmp(buf, j->want, j->n))
		snprintf(j->err, sizeof(j->err), "copy_out bytes differ at %zu",
			 zk_pat_mismatch(buf, j->n, 7, 0));
	free(buf);
	return NULL;
}

static void *emt_writer(void *arg)
{
	struct emt_job *j = arg;
	int64_t off = 0;

	pthread_barrier_wait(j->start);
	ssize_t r = zbl_splice_to(j->bl, j->fd, &off, 0);
	if (r != (ssize_t)j->n)
		snprintf(j->err, sizeof(j->err), "splice_to returned %zd (%s)", r, zt_errname(r));
	return NULL;
}

static void child_emfile_threads(void **state)
{
	(void)state;
	size_t n = 4 * ZK_MiB;
	unsigned char *bytes = zk_pat_alloc(n, 7);
	zbl_t *a[ROUNDS], *b[ROUNDS];
	int out[ROUNDS], taken[1024];

	for (int r = 0; r < ROUNDS; r++) {
		zbl_t *src = zk_pipe_list(n, 7);
		a[r] = zt_new();
		b[r] = zt_new();
		assert_rc(zbl_append_list(a[r], src), 0);
		assert_rc(zbl_append_list(b[r], src), 0);
		zbl_free(src);
		out[r] = zt_temp_fd(0);
	}
	/* Leave exactly one idle scratch pipe in the pool. */
	zbl_pool_flush();
	zbl_t *t = zk_pipe_list(1000, 8), *t2 = zt_new();
	assert_rc(zbl_append_list(t2, t), 0);
	int tf = zt_temp_fd(0);
	assert_rc(zbl_splice_to(t, tf, NULL, 0), 1000);
	close(tf);
	zbl_free(t2);
	zbl_free(t);
	int ntaken = exhaust_descriptors((rlim_t)zk_fd_count() + 8, taken, 1024);

	zbl_stats_reset();
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_t start;
		pthread_t tr, tw;
		struct emt_job jr = { .bl = a[r], .want = bytes, .n = n, .start = &start };
		struct emt_job jw = { .bl = b[r], .want = bytes, .n = n, .fd = out[r],
				      .start = &start };
		pthread_barrier_init(&start, NULL, 2);
		pthread_create(&tr, NULL, emt_reader, &jr);
		pthread_create(&tw, NULL, emt_writer, &jw);
		pthread_join(tr, NULL);
		pthread_join(tw, NULL);
		pthread_barrier_destroy(&start);
		size_t len;
		unsigned char *got = zt_file_contents(out[r], &len);
		size_t bad = zk_pat_mismatch(got, len, 7, 0);
		free(got);
		if (bad != SIZE_MAX)
			fail_msg("round %d: the %zu bytes written differ from the list at byte %zu "
				 "(reader: %s; writer: %s)", r, len, bad, jr.err, jw.err);
		if (jr.err[0] || jw.err[0])
			fail_msg("round %d: reader: %s; writer: %s", r, jr.err, jw.err);
		assert_size_equal(len, n);
		assert_list_bytes(b[r], bytes, n);
	}
	zk_print_stats("two threads sharing blocks without descriptors");
	for (int i = 0; i < ntaken; i++)
		close(taken[i]);
	for (int r = 0; r < ROUNDS; r++) {
		zbl_free(a[r]);
		zbl_free(b[r]);
		close(out[r]);
	}
	free(bytes);
}

static const struct zk_child children[] = {
	{ "emfile", child_emfile },
	{ "pipe_cap", child_pipe_cap },
	{ "pipe_cap_write_first", child_pipe_cap_write_first },
	{ "emfile_threads", child_emfile_threads },
};

static void test_splice_from_copies_when_no_pipe_can_be_created_and_held_pages_stay_usable(void **state)
{
	(void)state;
	zk_watchdog(__func__, 60);
	assert_int_equal(zk_run_child("emfile", 0, (uid_t)-1), 0);
}

/* Runs child @name with RLIMIT_NOFILE 64, so that the library caps itself at 16 pipes. */
static void run_pipe_cap_child(const char *test, const char *name)
{
	if (getenv("ZBL_VALGRIND")) {
		printf("# skipped under valgrind: valgrind needs descriptors of its own above a 64-descriptor limit\n");
		skip();
	}
	zk_watchdog(test, 60);
	assert_int_equal(zk_run_child(name, 64, (uid_t)-1), 0);
}

static void test_pipe_cap_from_rlimit_nofile_falls_back_and_every_list_stays_readable(void **state)
{
	(void)state;
	run_pipe_cap_child(__func__, "pipe_cap");
}

static void test_pipe_cap_from_rlimit_nofile_falls_back_and_every_list_stays_writable(void **state)
{
	(void)state;
	run_pipe_cap_child(__func__, "pipe_cap_write_first");
}

/*
 * Out of descriptors, one thread reads a shared block (emptying its pipe, as
 * no scratch pipe can be had) while another writes it (tee): neither may see
 * the other's half-done work.
 */
static void test_two_threads_sharing_blocks_without_descriptors_read_and_write_exactly(void **state)
{
	(void)state;
	zk_watchdog(__func__, 120);
	/* The interleaving that broke it came up in about half the runs: try several. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(zk_run_child("emfile_threads", 0, (uid_t)-1), 0);
}

/* ------------------------------------------------------------------------ */
/* Descriptors splice(2) refuses. */

static void test_splice_from_an_eventfd_falls_back_to_copying(void **state)
{
	(void)state;
	zk_begin(30);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int p[2];
	uint64_t v = 0x1122334455667788ull, got = 0;
	zbl_t *bl = zt_new();

	assert_true(efd >= 0);
	/* Precondition: this kernel refuses to splice from an eventfd. */
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(splice(efd, NULL, p[1], NULL, 8, SPLICE_F_NONBLOCK), -1);
	assert_int_equal(errno, EINVAL);
	close(p[0]);
	close(p[1]);

	assert_int_equal(write(efd, &v, 8), 8);
	zbl_stats_reset();
	assert_rc(zbl_splice_from(bl, efd, NULL, 8, 0), 8);
	zk_assert_stats(.bytes_copied_in = 8, .fallbacks = 1);
	assert_rc(zbl_copy_out(bl, 0, 8, &got), 0);
	assert_int_equal(got, v);
	/* Asking for more returns what there was (non-blocking). */
	assert_int_equal(write(efd, &v, 8), 8);
	assert_rc(zbl_splice_from(bl, efd, NULL, 64, 0), 8);
	assert_size_equal(zbl_length(bl), 16);
	/* Nothing there: -EAGAIN, list unchanged. */
	assert_rc(zbl_splice_from(bl, efd, NULL, 8, 0), -EAGAIN);
	assert_size_equal(zbl_length(bl), 16);
	close(efd);

	/* ZBL_SOME on the copying route: a blocking eventfd returns its 8 bytes
	 * instead of waiting for the 64 asked. */
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(write(efd, &v, 8), 8);
	assert_rc(zbl_splice_from(bl, efd, NULL, 64, ZBL_SOME), 8);
	assert_size_equal(zbl_length(bl), 24);
	close(efd);
	zbl_free(bl);
}

static void test_splice_from_a_proc_file_falls_back_to_copying(void **state)
{
	(void)state;
	if (getenv("ZBL_VALGRIND")) {
		printf("# skipped under valgrind: valgrind serves /proc/self/cmdline from a regular file, which splices\n");
		skip();
	}
	zk_begin(30);
	char want[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t wlen;
	zbl_t *bl = zt_new();

	assert_true(fd >= 0);
	wlen = read(fd, want, sizeof(want));
	assert_true(wlen > 0);
	int64_t off = 0;
	zbl_stats_reset();
	assert_rc(zbl_splice_from(bl, fd, &off, 1 << 20, 0), wlen);
	assert_int_equal(off, wlen);
	zk_assert_stats(.bytes_copied_in = wlen, .fallbacks = 1);
	assert_list_bytes(bl, want, (size_t)wlen);
	assert_rc(zbl_splice_from(bl, fd, &off, 1 << 20, 0), 0); /* end of file */
	close(fd);
	zbl_free(bl);
}

/* ------------------------------------------------------------------------ */
/* The trace names every copy. */

struct trace_log {
	size_t fallbacks, fallback_bytes, materializations, materialized_bytes;
};

static void trace_cb(const char *what, size_t bytes, void *ctx)
{
	struct trace_log *log = ctx;

	if (strncmp(what, "fallback", 8) == 0) {
		log->fallbacks++;
		log->fallback_bytes += bytes;
	} else if (strcmp(what, "materialize") == 0) {
		log->materializations++;
		log->materialized_bytes += bytes;
	}
}

static void test_every_fallback_and_materialization_reaches_the_trace_callback(void **state)
{
	(void)state;
	zk_begin(30);
	struct trace_log log = { 0 };
	int efd = eventfd(7, EFD_NONBLOCK | EFD_CLOEXEC);
	zbl_t *bl = zt_new(), *p = zk_pipe_list(300000, 6);

	zbl_trace_set(trace_cb, &log);
	zbl_stats_reset();
	assert_rc(zbl_splice_from(bl, efd, NULL, 8, 0), 8);
	unsigned char *flat = zt_flat(p);
	free(flat);
	zbl_trace_set(NULL, NULL);
	struct zbl_stats s = zk_stats();
	assert_size_equal(log.fallbacks, s.fallbacks);
	assert_size_equal(log.fallback_bytes, 8);
	assert_size_equal(log.materializations, s.materializations);
	assert_size_equal(log.materialized_bytes, s.bytes_materialized);
	assert_size_equal(s.bytes_materialized, 300000);
	close(efd);
	zbl_free(bl);
	zbl_free(p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splice_from_copies_when_no_pipe_can_be_created_and_held_pages_stay_usable),
		cmocka_unit_test(test_pipe_cap_from_rlimit_nofile_falls_back_and_every_list_stays_readable),
		cmocka_unit_test(test_pipe_cap_from_rlimit_nofile_falls_back_and_every_list_stays_writable),
		cmocka_unit_test(test_two_threads_sharing_blocks_without_descriptors_read_and_write_exactly),
		cmocka_unit_test(test_splice_from_an_eventfd_falls_back_to_copying),
		cmocka_unit_test(test_splice_from_a_proc_file_falls_back_to_copying),
		cmocka_unit_test(test_every_fallback_and_materialization_reaches_the_trace_callback),
	};

	zk_child_dispatch(argc, argv, children, sizeof(children) / sizeof(children[0]));
	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
