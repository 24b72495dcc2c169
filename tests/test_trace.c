/* SPDX-License-Identifier: MIT */
/*
 * Tracing and capabilities: every materialization and fallback reaches the
 * trace callback with its byte count, and ZBL_TRACE=1 prints it with a
 * backtrace; zbl_caps reports this kernel's limits.
 */
#include "zbl_test.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

struct trace_log {
	int events;
	size_t bytes;
	char last[64];
};

static void record(const char *what, size_t bytes, void *ctx)
{
	struct trace_log *log = ctx;

	log->events++;
	log->bytes += bytes;
	snprintf(log->last, sizeof(log->last), "%s", what);
}

/* A list holding @len bytes of a pattern as pipe pages (spliced from a pipe). */
static zbl_t *pipe_backed_list(size_t len)
{
	zbl_t *bl = zt_new();
	int p[2];

	assert_int_equal(pipe(p), 0);
	for (size_t i = 0; i < len; i++) {
		char c = (char)('a' + i % 26);
		assert_int_equal(write(p[1], &c, 1), 1);
	}
	close(p[1]);
	assert_rc(zbl_splice_from(bl, p[0], NULL, len, 0), (ssize_t)len);
	close(p[0]);
	assert_size_equal(zbl_kernel_bytes(bl), len);
	return bl;
}

static void test_materialization_is_reported_to_the_trace_callback(void **state)
{
	(void)state;
	struct trace_log log = { 0 };
	zbl_t *bl = pipe_backed_list(1000);
	char buf[10];

	zbl_trace_set(record, &log);
	assert_rc(zbl_copy_out(bl, 500, sizeof(buf), buf), 0);
	assert_int_equal(log.events, 1);
	assert_size_equal(log.bytes, 1000);
	assert_string_equal(log.last, "materialize");
	/* A second read uses the copy: no new event. */
	assert_rc(zbl_copy_out(bl, 0, sizeof(buf), buf), 0);
	assert_int_equal(log.events, 1);
	zbl_trace_set(NULL, NULL);
	zbl_free(bl);
}

static void test_fallback_is_reported_to_the_trace_callback(void **state)
{
	(void)state;
	struct trace_log log = { 0 };
	zbl_t *bl = zt_new();
	/* /dev/zero cannot be spliced from in every kernel; a memfd-less source that
	 * always can't is an eventfd-like object; use a socket that is not a stream. */
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "datagram", 8), 8);
	zbl_trace_set(record, &log);
	ssize_t r = zbl_splice_from(bl, sv[0], NULL, 8, 0);
	zbl_trace_set(NULL, NULL);
	if (r == 8 && zbl_kernel_bytes(bl) == 8) {
		/* This kernel splices datagrams: nothing fell back, nothing to report. */
		assert_int_equal(log.events, 0);
	} else {
		assert_rc(r, 8);
		assert_int_equal(log.events, 1);
		assert_size_equal(log.bytes, 8);
		assert_string_equal(log.last, "fallback: zbl_splice_from");
	}
	assert_list_str(bl, "datagram");
	close(sv[0]);
	close(sv[1]);
	zbl_free(bl);
}

static void test_zbl_trace_env_prints_event_and_backtrace(void **state)
{
	(void)state;
	int err[2];
	char out[8192] = { 0 };
	size_t got = 0;
	ssize_t n;

	assert_int_equal(pipe(err), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[4];
		dup2(err[1], STDERR_FILENO);
		setenv("ZBL_TRACE", "1", 1);
		zbl_t *bl = pipe_backed_list(100);
		int rc = zbl_copy_out(bl, 0, 4, buf) == 0 ? 0 : 1;
		/* Freed, so that a leak checker following the child finds nothing. */
		zbl_free(bl);
		zbl_pool_flush();
		_exit(rc);
	}
	close(err[1]);
	while (got < sizeof(out) - 1 && (n = read(err[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)n;
	close(err[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (!strstr(out, "zbl: materialize: 100 bytes copied, at:"))
		fail_msg("stderr was: %s", out);
	/* The backtrace names at least one frame of this program or the library. */
	assert_non_null(strstr(out, "test_trace"));
}

static void test_caps_reports_pipe_limits(void **state)
{
	(void)state;
	struct zbl_caps c;

	assert_rc(zbl_caps(NULL), -EINVAL);
	assert_rc(zbl_caps(&c), 0);
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	size_t max = 0;
	if (f) {
		assert_int_equal(fscanf(f, "%zu", &max), 1);
		fclose(f);
		assert_size_equal(c.pipe_max_size, max);
		assert_true(c.pipe_bytes <= max);
	}
	assert_true(c.pipe_bytes >= 4096);
	print_message("caps: pipe_max_size %zu, pipe_bytes %zu, budget %zu pages%s, single fd %d,"
		      " file splice aliases %d, vmsplice aliases %d\n",
		      c.pipe_max_size, c.pipe_bytes, c.pipe_user_pages_soft,
		      c.budget_applies ? "" : " (not binding)", c.single_fd_pipes,
		      c.splice_file_aliases, c.vmsplice_aliases);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_materialization_is_reported_to_the_trace_callback),
		cmocka_unit_test(test_fallback_is_reported_to_the_trace_callback),
		cmocka_unit_test(test_zbl_trace_env_prints_event_and_backtrace),
		cmocka_unit_test(test_caps_reports_pipe_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
