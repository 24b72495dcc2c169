/* SPDX-License-Identifier: MIT */
/*
 * The harness of the kernel-page tests (test_kpage_*.c, test_fault.c): exact
 * checks of struct zbl_stats, a per-test watchdog, descriptor counting, and
 * re-executing the test program as a child (with another user or resource
 * limit) that reports through its exit code. Their set-up (patterns, pairs,
 * threads, lists of kernel pages) is in fixtures.h.
 *
 * Everything is static inline, for the reason fixtures.h gives.
 *
 * ZK_FILTER=pattern in the environment runs only the matching tests,
 * ZK_SKIP=pattern skips the matching ones (cmocka wildcards * and ?).
 */
#ifndef KPAGE_UTIL_H
#define KPAGE_UTIL_H

#include "fixtures.h"
#include "seccomp_util.h"
/*
 * The library's internal declarations: tests link the static library, which
 * has every symbol, so they call zbl__read_proc_long() instead of keeping a
 * copy of it.
 */
#include "zbl_int.h"

#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Statistics: exact expectations, ZK_ANY for "do not check".               */

#define ZK_ANY UINT64_MAX

/*
 * Expected counters: every field not named is 0, except pipes_created and
 * pipes_live, which are not checked unless named.
 */
#pragma GCC diagnostic ignored "-Woverride-init"
#define ZK_STATS(...) ((struct zbl_stats){ .pipes_created = ZK_ANY, .pipes_live = ZK_ANY, \
					   __VA_ARGS__ })

static inline void zk_stats_str(const struct zbl_stats *s, char *buf, size_t n)
{
	snprintf(buf, n,
		 "copied_in=%llu spliced_in=%llu copied_out=%llu spliced_out=%llu teed=%llu "
		 "materialized=%llu materializations=%llu fallbacks=%llu pipes_created=%llu "
		 "pipes_live=%llu",
		 (unsigned long long)s->bytes_copied_in, (unsigned long long)s->bytes_spliced_in,
		 (unsigned long long)s->bytes_copied_out,
		 (unsigned long long)s->bytes_spliced_out, (unsigned long long)s->bytes_teed,
		 (unsigned long long)s->bytes_materialized,
		 (unsigned long long)s->materializations, (unsigned long long)s->fallbacks,
		 (unsigned long long)s->pipes_created, (unsigned long long)s->pipes_live);
}

/* Returns the name of the first field of @have that differs from @want, or NULL. */
static inline const char *zk_stats_diff(const struct zbl_stats *have, const struct zbl_stats *want)
{
#define ZK_CMP_(f) if (want->f != ZK_ANY && want->f != have->f) return #f
	ZK_CMP_(bytes_copied_in);
	ZK_CMP_(bytes_spliced_in);
	ZK_CMP_(bytes_copied_out);
	ZK_CMP_(bytes_spliced_out);
	ZK_CMP_(bytes_teed);
	ZK_CMP_(bytes_materialized);
	ZK_CMP_(materializations);
	ZK_CMP_(fallbacks);
	ZK_CMP_(pipes_created);
	ZK_CMP_(pipes_live);
#undef ZK_CMP_
	return NULL;
}

#define zk_assert_stats(...) zk_assert_stats_(ZK_STATS(__VA_ARGS__), __FILE__, __LINE__)

static inline void zk_assert_stats_(struct zbl_stats want, const char *file, int line)
{
	struct zbl_stats have;
	const char *bad;

	zbl_stats_get(&have);
	bad = zk_stats_diff(&have, &want);
	if (bad) {
		char h[512], w[512];
		zk_stats_str(&have, h, sizeof(h));
		zk_stats_str(&want, w, sizeof(w));
		fail_msg("%s:%d: stats.%s differs\n  have: %s\n  want: %s (%llu = any)", file,
			 line, bad, h, w, (unsigned long long)ZK_ANY);
	}
}

static inline struct zbl_stats zk_stats(void)
{
	struct zbl_stats s;

	zbl_stats_get(&s);
	return s;
}

static inline void zk_print_stats(const char *what)
{
	struct zbl_stats s = zk_stats();
	char buf[512];

	zk_stats_str(&s, buf, sizeof(buf));
	printf("# %s: %s\n", what, buf);
	fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* Watchdog: a hung test kills the program with a message instead of ctest's
 * 600 s timeout. */

static const char *volatile zk_watchdog_what = "?";

static inline void zk_watchdog_fire(int sig)
{
	static const char m1[] = "\nkpage watchdog: test ";
	static const char m2[] = " did not finish in time (hung?)\n";
	const char *w = zk_watchdog_what;
	(void)sig;
	(void)!write(2, m1, sizeof(m1) - 1);
	(void)!write(2, w, strlen(w));
	(void)!write(2, m2, sizeof(m2) - 1);
	_exit(3);
}

static inline int zk_fd_count(void);

static inline void zk_watchdog(const char *what, unsigned secs)
{
	/* Under valgrind (tools/valgrind.sh sets ZBL_VALGRIND) code runs ~20x slower. */
	if (getenv("ZBL_VALGRIND"))
		secs *= 20;
	zk_watchdog_what = what;
	signal(SIGALRM, zk_watchdog_fire);
	alarm(secs);
}

/*
 * Start of every test: watchdog, no idle pooled pipes (so pipe counts and the
 * per-user budget start from what live lists hold), counters zeroed.
 */
#define zk_begin(secs) zk_begin_(__func__, (secs))

static inline void zk_begin_(const char *name, unsigned secs)
{
	zk_watchdog(name, secs);
	zbl_pool_flush();
	if (getenv("ZK_VERBOSE"))
		printf("# %s: starts with %llu pipes live, %d descriptors\n", name,
		       (unsigned long long)zk_stats().pipes_live, zk_fd_count());
	zbl_stats_reset();
}

/* ------------------------------------------------------------------------ */
/* Descriptors and privileges.                                              */

/* Number of open descriptors of this process (entries of /proc/self/fd). */
static inline int zk_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/*
 * Whether the kernel's per-user pipe budget (fs.pipe-user-pages-soft) applies
 * to this process: it has neither CAP_SYS_RESOURCE nor CAP_SYS_ADMIN.
 */
static inline bool zk_pipe_budget_applies(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long cap = 0;

	if (!f)
		return geteuid() != 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &cap) == 1)
			break;
	fclose(f);
	return !(cap & ((1ull << 21) | (1ull << 24)));
}

/* Applies ZK_FILTER and ZK_SKIP (see the top of this file). */
static inline void zk_apply_filter(void)
{
	const char *f = getenv("ZK_FILTER"), *s = getenv("ZK_SKIP");

	if (f && *f)
		cmocka_set_test_filter(f);
	if (s && *s)
		cmocka_set_skip_filter(s);
}

/* ------------------------------------------------------------------------ */
/* Children: the test program re-executed with "--zk-child NAME".           */

/*
 * A child is an ordinary cmocka test function that the parent runs in a new
 * process (a fresh library: its pipe limits are computed again, its pool and
 * counters are empty). The child runs it as a group of one and exits with the
 * number of failures.
 */
struct zk_child {
	const char *name;
	CMUnitTestFunction fn;
};

/* Runs the named child if argv asks for one; otherwise returns. */
static inline void zk_child_dispatch(int argc, char **argv, const struct zk_child *tab, size_t n)
{
	if (argc < 3 || strcmp(argv[1], "--zk-child") != 0)
		return;
	signal(SIGPIPE, SIG_DFL);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tab[i].name, argv[2]) == 0) {
			struct CMUnitTest t = { tab[i].name, tab[i].fn, NULL, NULL, NULL };
			int rc = _cmocka_run_group_tests(tab[i].name, &t, 1, NULL, NULL);
			fflush(stdout);
			exit(rc ? 1 : 0);
		}
	}
	fprintf(stderr, "unknown child %s\n", argv[2]);
	exit(2);
}

/* What a child runs with, applied between fork and exec. */
struct zk_child_opts {
	uid_t uid;             /* run as this uid/gid without groups; (uid_t)-1: unchanged */
	rlim_t nofile;         /* RLIMIT_NOFILE (soft and hard); 0: unchanged */
	rlim_t memlock;        /* RLIMIT_MEMLOCK (soft and hard), bytes; 0: unchanged */
	bool deny_io_uring;    /* io_uring_setup fails with EPERM (seccomp) */
	int deadline_ms;       /* killed after this long (0: waited for); status 124 then */
};

static inline long long zk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Re-executes this program as child @name (see zk_child_dispatch) with the
 * options applied between fork and exec. Returns its exit status, 128 +
 * signal if it was killed, 120..123 when an option could not be applied
 * (120 setrlimit, 121 setresuid, 122 fexecve, 123 the seccomp filter), or
 * 124 when it outlived its deadline (then it is killed).
 */
static inline int zk_run_child_with(const char *name, const struct zk_child_opts *o)
{
	int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	pid_t pid;
	int st;

	assert_true(exe >= 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *args[] = { "zk-child", "--zk-child", (char *)name, NULL };

		alarm(0);
		if (o->nofile) {
			struct rlimit rl = { o->nofile, o->nofile };
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(120);
		}
		if (o->memlock) {
			struct rlimit rl = { o->memlock, o->memlock };
			if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
				_exit(120);
		}
		if (o->deny_io_uring && zs_deny_io_uring_setup() < 0)
			_exit(123);
		if (o->uid != (uid_t)-1) {
			if (setgroups(0, NULL) < 0 || setresgid(o->uid, o->uid, o->uid) < 0 ||
			    setresuid(o->uid, o->uid, o->uid) < 0)
				_exit(121);
		}
		fexecve(exe, args, environ);
		_exit(122);
	}
	close(exe);
	long long end = zk_now_ms() + (getenv("ZBL_VALGRIND") ? 20 : 1) * (long long)o->deadline_ms;
	for (;;) {
		pid_t w = waitpid(pid, &st, o->deadline_ms ? WNOHANG : 0);
		if (w == pid)
			break;
		if (w < 0)
			assert_int_equal(errno, EINTR);
		if (w == 0 && zk_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return 124;
		}
		if (w == 0)
			usleep(5000);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/*
 * Child @name with @nofile as RLIMIT_NOFILE when not 0, as uid/gid @uid
 * without supplementary groups when uid is not (uid_t)-1, waited for.
 */
static inline int zk_run_child(const char *name, rlim_t nofile, uid_t uid)
{
	struct zk_child_opts o = { .uid = uid, .nofile = nofile };

	return zk_run_child_with(name, &o);
}

#endif /* KPAGE_UTIL_H */
