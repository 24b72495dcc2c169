/* SPDX-License-Identifier: MIT */
/*
 * Signals. Writing to a socket whose peer is gone, or to a pipe without a
 * reader, makes the kernel raise SIGPIPE; splice(2) has no MSG_NOSIGNAL. With
 * SIGPIPE at its default disposition (this program sets SIG_DFL) that would
 * kill the process. The library must return -EPIPE or -ECONNRESET instead,
 * leave no SIGPIPE pending, not deliver it to the caller's handler or to
 * another thread, and leave a SIGPIPE the caller had pending alone. A failed
 * call leaves the list as it was.
 *
 * Also: EINTR from a signal handler installed without SA_RESTART is retried
 * inside zbl_splice_from and zbl_splice_to, never returned.
 */
#include "kpage_util.h"

static bool sigpipe_pending(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigpending(&s);
	return sigismember(&s, SIGPIPE);
}

enum list_kind { L_MEMORY, L_PIPE, L_FILE, L_MIXED, L_KINDS };
static const char *const list_name[L_KINDS] = { "memory", "pipe pages", "file range",
						"mixed" };

static zbl_t *make_list_n(enum list_kind k, size_t n)
{
	zbl_t *bl;
	int f;

	switch (k) {
	case L_MEMORY: {
		unsigned char *b = zk_pat_alloc(n, 1);
		bl = zt_new();
		assert_rc(zbl_append(bl, b, n), 0);
		free(b);
		return bl;
	}
	case L_PIPE:
		return zk_pipe_list(n, 2);
	case L_FILE:
		bl = zt_new();
		f = zk_pattern_file(n, 3);
		assert_rc(zbl_append_file(bl, f, 0, n), 0);
		close(f);
		return bl;
	default:
		bl = zk_pipe_list(n, 4);
		assert_rc(zbl_append(bl, "memory", 6), 0);
		f = zk_pattern_file(n, 5);
		assert_rc(zbl_append_file(bl, f, 0, n), 0);
		close(f);
		return bl;
	}
}

static zbl_t *make_list(enum list_kind k)
{
	return make_list_n(k, 200000);
}

/*
 * A descriptor whose reader is gone: a pipe with its read end closed, an
 * AF_UNIX socket whose peer closed, or a TCP socket whose peer closed with
 * SO_LINGER 0 (a reset).
 */
static int gone_sink(enum zk_kind k)
{
	int fds[2];

	zk_pair(k, fds);
	if (k == ZK_TCP) {
		struct linger lg = { 1, 0 };
		assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	}
	close(fds[0]);
	if (k == ZK_TCP)
		usleep(10000); /* let the reset arrive */
	return fds[1];
}

enum call { C_SPLICE_TO, C_DRAIN, C_WRITE_FD, C_CALLS };
static const char *const call_name[C_CALLS] = { "zbl_splice_to", "zbl_splice_to(ZBL_DRAIN)",
						"zbl_write_fd" };

static ssize_t do_call(enum call c, zbl_t *bl, int fd)
{
	switch (c) {
	case C_SPLICE_TO:
		return zbl_splice_to(bl, fd, NULL, 0);
	case C_DRAIN:
		return zbl_splice_to(bl, fd, NULL, ZBL_DRAIN);
	default:
		return zbl_write_fd(bl, fd);
	}
}

/*
 * Calls until -EPIPE (TCP first reports the reset as -ECONNRESET, which raises
 * no signal; the next write gets -EPIPE and SIGPIPE). Every error must be one
 * of the two; a failed call leaves the list's length alone.
 */
static void expect_epipe(enum zk_kind sink, enum list_kind lk, enum call c)
{
	zbl_t *bl = make_list(lk);
	int fd = gone_sink(sink);
	bool epipe = false;

	for (int i = 0; i < 10 && !epipe; i++) {
		size_t before = zbl_length(bl);
		ssize_t r = do_call(c, bl, fd);
		if (r >= 0)
			continue; /* TCP may take bytes before it knows */
		if (r != -EPIPE && r != -ECONNRESET)
			fail_msg("%s of %s to a %s without reader returned %zd (%s)", call_name[c],
				 list_name[lk], zk_kind_name[sink], r, zt_errname(r));
		assert_size_equal(zbl_length(bl), before);
		epipe = r == -EPIPE;
		if (sigpipe_pending())
			fail_msg("%s of %s to a %s left SIGPIPE pending", call_name[c],
				 list_name[lk], zk_kind_name[sink]);
	}
	if (!epipe)
		fail_msg("%s of %s to a %s without reader never returned -EPIPE", call_name[c],
			 list_name[lk], zk_kind_name[sink]);
	close(fd);
	zbl_free(bl);
}

static void peer_gone(enum zk_kind sink)
{
	for (int lk = 0; lk < L_KINDS; lk++)
		for (int c = 0; c < C_CALLS; c++)
			expect_epipe(sink, lk, c);
	assert_false(sigpipe_pending());
}

static void test_writing_to_a_pipe_without_reader_returns_epipe_and_the_process_lives(void **state)
{
	(void)state;
	zk_begin(30);
	peer_gone(ZK_PIPE);
}

static void test_writing_to_a_unix_socket_whose_peer_closed_returns_epipe_and_the_process_lives(void **state)
{
	(void)state;
	zk_begin(30);
	peer_gone(ZK_UNIX);
}

static void test_writing_to_a_tcp_socket_whose_peer_reset_returns_epipe_and_the_process_lives(void **state)
{
	(void)state;
	zk_begin(30);
	peer_gone(ZK_TCP);
}

/* A TCP peer that closes normally (FIN, then a reset when our data arrives). */
static void test_writing_to_a_tcp_socket_whose_peer_closed_normally_returns_epipe(void **state)
{
	(void)state;
	zk_begin(30);
	for (int lk = 0; lk < L_KINDS; lk++) {
		int fds[2];
		zbl_t *bl = make_list(lk);
		ssize_t r = 0;
		zk_pair(ZK_TCP, fds);
		close(fds[0]);
		for (int i = 0; i < 50; i++) {
			r = zbl_splice_to(bl, fds[1], NULL, 0);
			if (r == -EPIPE)
				break;
			if (r < 0 && r != -ECONNRESET)
				fail_msg("%s: zbl_splice_to returned %zd (%s)", list_name[lk], r,
					 zt_errname(r));
			usleep(2000);
		}
		assert_rc(r, -EPIPE);
		assert_false(sigpipe_pending());
		close(fds[1]);
		zbl_free(bl);
	}
}

static volatile sig_atomic_t handler_calls;

static void count_handler(int sig)
{
	(void)sig;
	handler_calls++;
}

static void test_sigpipe_never_reaches_the_callers_handler(void **state)
{
	(void)state;
	zk_begin(30);
	struct sigaction sa = { .sa_handler = count_handler }, old;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, &old);
	handler_calls = 0;
	for (int lk = 0; lk < L_KINDS; lk++) {
		expect_epipe(ZK_PIPE, lk, C_SPLICE_TO);
		expect_epipe(ZK_UNIX, lk, C_DRAIN);
	}
	sigaction(SIGPIPE, &old, NULL);
	assert_int_equal(handler_calls, 0);
}

/* The caller blocks SIGPIPE itself and has one pending: it stays, exactly one. */
static void test_a_sigpipe_the_caller_had_pending_stays_pending(void **state)
{
	(void)state;
	zk_begin(30);
	sigset_t set, old;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	/* Blocked, nothing pending: the library's own SIGPIPE does not stay behind. */
	for (int lk = 0; lk < L_KINDS; lk++) {
		zbl_t *bl = make_list(lk);
		int fd = gone_sink(ZK_PIPE);
		assert_rc(zbl_splice_to(bl, fd, NULL, 0), -EPIPE);
		assert_false(sigpipe_pending());
		close(fd);
		zbl_free(bl);
	}
	/* Blocked with one pending from the caller: it is still there afterwards. */
	for (int lk = 0; lk < L_KINDS; lk++) {
		zbl_t *bl = make_list(lk);
		int fd = gone_sink(ZK_PIPE);
		pthread_kill(pthread_self(), SIGPIPE);
		assert_true(sigpipe_pending());
		assert_rc(zbl_splice_to(bl, fd, NULL, 0), -EPIPE);
		assert_true(sigpipe_pending());
		assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
		assert_false(sigpipe_pending());
		close(fd);
		zbl_free(bl);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Another thread of the process leaves SIGPIPE unblocked at its default
 * disposition: a signal directed at the process instead of the writing
 * thread would kill it.
 */
static atomic_bool bystander_stop;

static void *bystander(void *arg)
{
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (!atomic_load(&bystander_stop))
		usleep(1000);
	return NULL;
}

static void test_sigpipe_does_not_reach_another_thread_with_it_unblocked(void **state)
{
	(void)state;
	zk_begin(30);
	pthread_t th;

	atomic_store(&bystander_stop, false);
	assert_int_equal(pthread_create(&th, NULL, bystander, NULL), 0);
	for (int i = 0; i < 20; i++) {
		expect_epipe(ZK_PIPE, L_PIPE, C_DRAIN);
		expect_epipe(ZK_UNIX, L_MIXED, C_WRITE_FD);
		expect_epipe(ZK_TCP, L_FILE, C_SPLICE_TO);
	}
	usleep(20000);
	atomic_store(&bystander_stop, true);
	pthread_join(th, NULL);
}

/* ------------------------------------------------------------------------ */
/* EINTR. */

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

struct pester {
	pthread_t th;
	pthread_t target;
	atomic_bool stop;
};

static void *pester_main(void *arg)
{
	struct pester *p = arg;

	while (!atomic_load(&p->stop)) {
		pthread_kill(p->target, SIGUSR1);
		usleep(200);
	}
	return NULL;
}

static void pester_start(struct pester *p)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = 0 }; /* no SA_RESTART */

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	usr1_count = 0;
	p->target = pthread_self();
	atomic_store(&p->stop, false);
	assert_int_equal(pthread_create(&p->th, NULL, pester_main, p), 0);
}

static void pester_stop(struct pester *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->th, NULL);
	signal(SIGUSR1, SIG_DFL);
}

/*
 * A run of an EINTR test during which no signal arrived (the signalling
 * thread may not run for tens of milliseconds on a loaded machine) proves
 * nothing either way, so it is repeated; after this many runs the test fails.
 */
#define EINTR_ATTEMPTS 5

/* Whether a run that no signal interrupted should be repeated. */
static bool eintr_again(int attempt, const char *what)
{
	if (usr1_count > 0)
		return false;
	if (attempt + 1 >= EINTR_ATTEMPTS)
		fail_msg("%s: no signal arrived during %d runs", what, EINTR_ATTEMPTS);
	printf("# %s: no signal arrived during the run (a busy machine?): again\n", what);
	return true;
}

static void eintr_source_once(enum zk_kind k)
{
	size_t n = 256 * ZK_KiB, have = 0;
	int fds[2];
	unsigned char *bytes = zk_pat_alloc(n, 20 + k);
	struct zk_writer w = { .buf = bytes, .len = n, .chunk = 4096, .delay_us = 500, .end = 1 };
	struct pester p;
	zbl_t *bl = zt_new();
	ssize_t r = 0;

	zk_pair(k, fds);
	w.fd = fds[1];
	zk_writer_start(&w);
	pester_start(&p);
	r = zk_splice_upto(bl, fds[0], NULL, n, false, &have);
	pester_stop(&p);
	if (have < n)
		shutdown(fds[0], SHUT_RDWR);
	zk_writer_join(&w);
	close(fds[0]);
	close(fds[1]);
	if (have < n)
		fail_msg("blocking zbl_splice_from(%s) returned %zd (%s) after %zu bytes with "
			 "signals arriving", zk_kind_name[k], r, zt_errname(r), have);
	assert_list_bytes(bl, bytes, n);
	zbl_free(bl);
	free(bytes);
}

static void eintr_source(enum zk_kind k)
{
	for (int attempt = 0;; attempt++) {
		eintr_source_once(k);
		if (!eintr_again(attempt, zk_kind_name[k]))
			break;
	}
}

static void test_signals_without_sa_restart_do_not_fail_splice_from_a_pipe(void **state)
{
	(void)state;
	zk_begin(30);
	eintr_source(ZK_PIPE);
}

static void test_signals_without_sa_restart_do_not_fail_splice_from_unix(void **state)
{
	(void)state;
	zk_begin(30);
	eintr_source(ZK_UNIX);
}

static void test_signals_without_sa_restart_do_not_fail_splice_from_tcp(void **state)
{
	(void)state;
	zk_begin(30);
	eintr_source(ZK_TCP);
}

static void eintr_sink_once(enum zk_kind k, enum list_kind lk, unsigned flags)
{
	int fds[2];
	zbl_t *bl = make_list_n(lk, 2 * ZK_MiB);
	unsigned char *want = zt_flat(bl);
	size_t n = zbl_length(bl);
	struct zk_reader rd = { .chunk = 64 * ZK_KiB, .delay_us = 1000 };
	struct pester p;

	zk_pair(k, fds);
	if (k == ZK_TCP)
		zk_set_socket_buffers(fds, 64 * 1024); /* the writer has to wait for the reader */
	zk_reader_start(&rd, fds[0], n + 1);
	pester_start(&p);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ssize_t r = zk_write_call(bl, fds[1], flags);
	pester_stop(&p);
	zk_end_writes(k, &fds[1]);
	zk_reader_join(&rd);
	zk_close(&fds[0]);
	zk_close(&fds[1]);
	if (r != (ssize_t)n)
		fail_msg("blocking write of %s to %s returned %zd (%s) of %zu with signals arriving",
			 list_name[lk], zk_kind_name[k], r, zt_errname(r), n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# %s to %s: %d signals during the write (%.1f ms)\n", list_name[lk],
	       zk_kind_name[k], (int)usr1_count,
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	zk_reader_check(&rd, want, n);
	zk_reader_free(&rd);
	free(want);
	zbl_free(bl);
}

static void eintr_sink(enum zk_kind k, enum list_kind lk, unsigned flags)
{
	for (int attempt = 0;; attempt++) {
		eintr_sink_once(k, lk, flags);
		if (!eintr_again(attempt, zk_kind_name[k]))
			break;
	}
}

static void test_signals_without_sa_restart_do_not_fail_writes_to_a_slow_tcp_reader(void **state)
{
	(void)state;
	zk_begin(30);
	eintr_sink(ZK_TCP, L_PIPE, 0);
	eintr_sink(ZK_TCP, L_MIXED, ZK_WRITE_FD);
	eintr_sink(ZK_TCP, L_PIPE, ZBL_DRAIN);
}

static void test_signals_without_sa_restart_do_not_fail_writes_to_a_slow_pipe_reader(void **state)
{
	(void)state;
	zk_begin(30);
	eintr_sink(ZK_PIPE, L_PIPE, 0);
	eintr_sink(ZK_PIPE, L_MIXED, ZK_WRITE_FD);
	eintr_sink(ZK_PIPE, L_PIPE, ZBL_DRAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writing_to_a_pipe_without_reader_returns_epipe_and_the_process_lives),
		cmocka_unit_test(test_writing_to_a_unix_socket_whose_peer_closed_returns_epipe_and_the_process_lives),
		cmocka_unit_test(test_writing_to_a_tcp_socket_whose_peer_reset_returns_epipe_and_the_process_lives),
		cmocka_unit_test(test_writing_to_a_tcp_socket_whose_peer_closed_normally_returns_epipe),
		cmocka_unit_test(test_sigpipe_never_reaches_the_callers_handler),
		cmocka_unit_test(test_a_sigpipe_the_caller_had_pending_stays_pending),
		cmocka_unit_test(test_sigpipe_does_not_reach_another_thread_with_it_unblocked),
		cmocka_unit_test(test_signals_without_sa_restart_do_not_fail_splice_from_a_pipe),
		cmocka_unit_test(test_signals_without_sa_restart_do_not_fail_splice_from_unix),
		cmocka_unit_test(test_signals_without_sa_restart_do_not_fail_splice_from_tcp),
		cmocka_unit_test(test_signals_without_sa_restart_do_not_fail_writes_to_a_slow_tcp_reader),
		cmocka_unit_test(test_signals_without_sa_restart_do_not_fail_writes_to_a_slow_pipe_reader),
	};

	/* Default dispositions: a SIGPIPE that escapes the library kills this program. */
	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
