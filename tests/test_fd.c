/* SPDX-License-Identifier: MIT */
/*
 * File descriptors: zbl_read_fd, zbl_write_fd, zbl_splice_from, zbl_splice_to
 * and zbl_append_file over pipes, regular files, AF_UNIX socketpairs and TCP
 * loopback sockets: blocking and non-blocking behaviour, the pread-like `off`
 * rule, ZBL_DRAIN, lists longer than IOV_MAX, SIGPIPE never escaping, and
 * kernel-page segments being written out without being copied or consumed.
 */
#include "fixtures.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* ---- helpers ------------------------------------------------------------ */

static off_t fd_position(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* A list of @n segments made from @data, alternating borrowed and copied pieces. */
static zbl_t *list_of_pieces(const unsigned char *data, size_t len, size_t n)
{
	zbl_t *bl = zt_new();
	size_t piece = len / n, off = 0;

	for (size_t i = 0; i < n; i++) {
		size_t l = i == n - 1 ? len - off : piece;

		assert_rc(zbl_append_ref(bl, data + off, l, NULL, NULL), 0);
		off += l;
	}
	return bl;
}

/* ---- zbl_read_fd ---------------------------------------------------------- */

static void test_read_fd_from_pipe_stops_at_end_of_file(void **state)
{
	(void)state;
	int p[2];
	zbl_t *bl = zt_new();

	zk_pair(ZK_PIPE, p);
	zt_write_full(p[1], "hello world", 11);
	close(p[1]);
	assert_rc(zbl_read_fd(bl, p[0], 100), 11);
	assert_list_str(bl, "hello world");
	assert_rc(zbl_read_fd(bl, p[0], 100), 0);
	assert_list_str(bl, "hello world");
	close(p[0]);
	zbl_free(bl);
}

static void test_read_fd_from_file_reads_len_and_advances_position(void **state)
{
	(void)state;
	unsigned char *data = zt_random_bytes(1000, 40);
	int fd = zt_temp_file(data, 1000);
	zbl_t *bl = zt_new();

	assert_rc(zbl_read_fd(bl, fd, 300), 300);
	assert_int_equal(fd_position(fd), 300);
	assert_rc(zbl_read_fd(bl, fd, 5000), 700);
	assert_rc(zbl_read_fd(bl, fd, 5000), 0);
	assert_list_bytes(bl, data, 1000);
	close(fd);
	free(data);
	zbl_free(bl);
}

static void test_read_fd_appends_after_existing_contents(void **state)
{
	(void)state;
	int fd = zt_temp_file("tail", 4);
	zbl_t *bl = ZT_LIST("head-");

	assert_rc(zbl_read_fd(bl, fd, 4), 4);
	assert_list_str(bl, "head-tail");
	close(fd);
	zbl_free(bl);
}

static void test_read_fd_on_empty_nonblocking_pipe_returns_eagain(void **state)
{
	(void)state;
	int p[2];
	zbl_t *bl = ZT_LIST("keep");
	struct zt_snap s;

	zk_pair(ZK_PIPE, p);
	zk_set_nonblock(p[0], true);
	zt_snap_take(&s, bl);
	assert_rc(zbl_read_fd(bl, p[0], 10), -EAGAIN);
	assert_unchanged(&s, bl);
	close(p[0]);
	close(p[1]);
	zbl_free(bl);
}

static void test_read_fd_on_nonblocking_pipe_returns_what_is_there(void **state)
{
	(void)state;
	int p[2];
	zbl_t *bl = zt_new();

	zk_pair(ZK_PIPE, p);
	zk_set_nonblock(p[0], true);
	zt_write_full(p[1], "0123456789", 10);
	assert_rc(zbl_read_fd(bl, p[0], 100), 10);
	assert_list_str(bl, "0123456789");
	assert_rc(zbl_read_fd(bl, p[0], 100), -EAGAIN);
	close(p[0]);
	close(p[1]);
	zbl_free(bl);
}

/*
 * A writer thread sends @len random bytes (from @seed) into a fresh pair of
 * kind @k and closes its end; reading with zbl_splice_from (@splice) or
 * zbl_read_fd until end of file takes exactly those bytes, then returns 0.
 */
static void read_until_end_of_file(enum zk_kind k, size_t len, uint64_t seed, bool splice)
{
	unsigned char *data = zt_random_bytes(len, seed);
	int fds[2];
	struct zk_writer w = { .buf = data, .len = len, .end = 2 };
	zbl_t *bl = zt_new();
	ssize_t total = 0, r;

	zk_pair(k, fds);
	w.fd = fds[1];
	zk_writer_start(&w);
	while ((r = splice ? zbl_splice_from(bl, fds[0], NULL, 1 << 20, 0)
			   : zbl_read_fd(bl, fds[0], 1 << 20)) > 0)
		total += r;
	assert_rc(r, 0);
	zk_writer_join(&w);
	assert_int_equal(w.err, 0);
	assert_size_equal(total, len);
	assert_list_bytes(bl, data, len);
	close(fds[0]);
	free(data);
	zbl_free(bl);
}

static void test_read_fd_from_socketpair_until_shutdown(void **state)
{
	(void)state;
	read_until_end_of_file(ZK_UNIX, 200000, 41, false);
}

static void test_read_fd_counts_bytes_copied_in(void **state)
{
	(void)state;
	int fd = zt_temp_file("0123456789abcdef", 16);
	zbl_t *bl = zt_new();
	struct zbl_stats st;

	zbl_stats_reset();
	assert_rc(zbl_read_fd(bl, fd, 16), 16);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 16);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	close(fd);
	zbl_free(bl);
}

/* ---- zbl_write_fd ----------------------------------------------------------- */

static void test_write_fd_to_pipe_writes_everything_and_keeps_list(void **state)
{
	(void)state;
	unsigned char *data = zt_random_bytes(1000, 42);
	zbl_t *bl = list_of_pieces(data, 1000, 7);
	struct zt_snap s;
	unsigned char buf[1000];
	int p[2];

	zk_pair(ZK_PIPE, p);
	zt_snap_take(&s, bl);
	assert_rc(zbl_write_fd(bl, p[1]), 1000);
	zt_read_full(p[0], buf, 1000);
	assert_memory_equal(buf, data, 1000);
	assert_unchanged(&s, bl);
	close(p[0]);
	close(p[1]);
	free(data);
	zbl_free(bl);
}

static void test_write_fd_of_empty_list_writes_nothing(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	int fd = zt_temp_fd(0);

	assert_rc(zbl_write_fd(bl, fd), 0);
	assert_file_bytes(fd, "", 0);
	close(fd);
	zbl_free(bl);
}

static void test_write_fd_same_list_twice_to_file(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("abc", "defg");
	int fd = zt_temp_fd(0);

	assert_rc(zbl_write_fd(bl, fd), 7);
	assert_int_equal(fd_position(fd), 7);
	assert_rc(zbl_write_fd(bl, fd), 7);
	assert_int_equal(fd_position(fd), 14);
	assert_file_bytes(fd, "abcdefgabcdefg", 14);
	close(fd);
	zbl_free(bl);
}

static void test_write_fd_counts_bytes_copied_out(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("abc", "defg");
	int fd = zt_temp_fd(0);
	struct zbl_stats st;

	zbl_stats_reset();
	assert_rc(zbl_write_fd(bl, fd), 7);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_out, 7);
	assert_size_equal(st.bytes_spliced_out, 0);
	close(fd);
	zbl_free(bl);
}

/*
 * Builds a list of more than 3 * IOV_MAX segments of 1 to 5 bytes, each a copy
 * in its own block (appended to a separate list and claimed), and returns the
 * flat model of its bytes in *model.
 */
static zbl_t *list_longer_than_iov_max(unsigned char **model, size_t *len)
{
	size_t nseg = 3 * IOV_MAX + 1;
	unsigned char *data = zt_random_bytes(nseg * 8, 43);
	zbl_t *bl = zt_new();

	*len = 0;
	*model = malloc(nseg * 5);
	assert_non_null(*model);
	for (size_t i = 0; i < nseg; i++) {
		size_t n = 1 + i % 5;
		zbl_t *piece = zt_new();

		assert_rc(zbl_append(piece, data + 8 * i, n), 0);
		assert_rc(zbl_claim_append(bl, piece), 0);
		zbl_free(piece);
		memcpy(*model + *len, data + 8 * i, n);
		*len += n;
	}
	free(data);
	assert_size_equal(zbl_segments(bl), nseg);
	return bl;
}

static void test_write_fd_of_more_than_iov_max_segments_to_file(void **state)
{
	(void)state;
	size_t nseg = 2 * IOV_MAX + 7;
	unsigned char *data = zt_random_bytes(nseg * 4, 45);
	zbl_t *bl = zt_new();
	unsigned char *model = malloc(nseg * 2);
	size_t total = 0;
	int fd = zt_temp_fd(0);

	assert_non_null(model);
	for (size_t i = 0; i < nseg; i++) {
		size_t n = 1 + (i % 2);

		assert_rc(zbl_append_ref(bl, data + 4 * i, n, NULL, NULL), 0);
		memcpy(model + total, data + 4 * i, n);
		total += n;
	}
	assert_size_equal(zbl_segments(bl), nseg);
	assert_rc(zbl_write_fd(bl, fd), (ssize_t)total);
	assert_file_bytes(fd, model, total);
	close(fd);
	free(data);
	free(model);
	zbl_free(bl);
}

static void test_write_fd_of_more_than_iov_max_segments_to_socket(void **state)
{
	(void)state;
	unsigned char *model;
	size_t len;
	zbl_t *bl;
	struct zk_reader d = { 0 };
	int s[2];

	bl = list_longer_than_iov_max(&model, &len);
	zk_pair(ZK_UNIX, s);
	zk_reader_start(&d, s[0], len + 1);
	assert_rc(zbl_write_fd(bl, s[1]), (ssize_t)len);
	shutdown(s[1], SHUT_WR);
	zk_reader_join(&d);
	assert_size_equal(d.got, len);
	assert_memory_equal(d.buf, model, len);
	zk_reader_free(&d);
	free(model);
	close(s[0]);
	close(s[1]);
	zbl_free(bl);
}

static void test_write_fd_of_more_than_iov_max_segments_to_pipe(void **state)
{
	(void)state;
	unsigned char *model;
	size_t len;
	zbl_t *bl = list_longer_than_iov_max(&model, &len);
	struct zk_reader d = { 0 };
	int p[2];

	zk_pair(ZK_PIPE, p);
	zk_reader_start(&d, p[0], len + 1);
	assert_rc(zbl_write_fd(bl, p[1]), (ssize_t)len);
	close(p[1]);
	zk_reader_join(&d);
	assert_size_equal(d.got, len);
	assert_memory_equal(d.buf, model, len);
	zk_reader_free(&d);
	free(model);
	close(p[0]);
	zbl_free(bl);
}

static void test_write_fd_to_full_nonblocking_pipe_returns_partial_then_eagain(void **state)
{
	(void)state;
	size_t len = 1 << 20;
	unsigned char *data = zt_random_bytes(len, 47);
	zbl_t *bl = list_of_pieces(data, len, 5);
	unsigned char *got = malloc(len);
	struct zt_snap s;
	ssize_t n;
	int p[2];

	assert_non_null(got);
	zk_pair(ZK_PIPE, p);
	zk_set_nonblock(p[1], true);
	zk_set_nonblock(p[0], true);
	zt_snap_take(&s, bl);
	n = zbl_write_fd(bl, p[1]);
	if (n <= 0 || (size_t)n >= len)
		fail_msg("zbl_write_fd into a 64 KiB non-blocking pipe returned %zd (%s)",
			 n, zt_errname(n));
	assert_rc(zbl_write_fd(bl, p[1]), -EAGAIN);
	assert_unchanged(&s, bl);
	assert_size_equal(zk_read_available(p[0], got, len), (size_t)n);
	assert_memory_equal(got, data, (size_t)n);
	close(p[0]);
	close(p[1]);
	free(data);
	free(got);
	zbl_free(bl);
}

static void test_write_fd_to_pipe_without_reader_returns_epipe(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("nobody", "listens");
	int p[2];

	/* SIGPIPE has its default action (kill): the library must not let it fire. */
	zk_pair(ZK_PIPE, p);
	close(p[0]);
	assert_rc(zbl_write_fd(bl, p[1]), -EPIPE);
	close(p[1]);
	zbl_free(bl);
}

static void test_write_fd_to_socket_with_closed_peer_returns_epipe(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("nobody", "listens");
	ssize_t r;
	int s[2];

	zk_pair(ZK_UNIX, s);
	close(s[0]);
	r = zbl_write_fd(bl, s[1]);
	if (r != -EPIPE && r != -ECONNRESET)
		fail_msg("zbl_write_fd to a closed peer returned %zd (%s)", r, zt_errname(r));
	close(s[1]);
	zbl_free(bl);
}

/*
 * A response's shape: a head in memory (sent with MSG_MORE), file pages,
 * a memory tail. Everything arrives in order over TCP, with and without
 * draining, and a closed peer still gives -EPIPE with SIGPIPE at its default.
 */
static void test_head_file_tail_to_tcp_arrive_in_order(void **state)
{
	(void)state;
	enum { LEN = 300000 };
	unsigned char *body = zt_random_bytes(LEN, 77), *got = malloc(LEN + 64);
	int fd = zt_temp_file(body, LEN), tcp[2];
	const char *failed;

	assert_non_null(got);
	if (!zk_try_tcp_pair(tcp, &failed)) {
		print_message("TCP loopback is not available (%s: %s); skipping\n", failed,
			      strerror(errno));
		close(fd);
		free(body);
		free(got);
		skip();
	}
	int a = tcp[1], b = tcp[0];
	for (unsigned flags = 0; flags <= ZBL_DRAIN; flags += ZBL_DRAIN) {
		zbl_t *bl = zt_new();
		size_t n = 0;
		assert_rc(zbl_append(bl, "HTTP/1.1 200 OK\r\n\r\n", 19), 0);
		assert_rc(zbl_append_file(bl, fd, 0, LEN), 0);
		assert_rc(zbl_append(bl, "end", 3), 0);
		/* The socket buffer may not take it all at once: a reader runs alongside. */
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			size_t want = 19 + LEN + 3;
			while (n < want) {
				ssize_t r = read(b, got + n, want - n);
				if (r <= 0)
					_exit(2);
				n += (size_t)r;
			}
			_exit(memcmp(got, "HTTP/1.1 200 OK\r\n\r\n", 19) ||
			      memcmp(got + 19, body, LEN) || memcmp(got + 19 + LEN, "end", 3));
		}
		assert_rc(zbl_splice_to(bl, a, NULL, flags), 19 + LEN + 3);
		assert_size_equal(zbl_length(bl), flags ? 0 : 19 + LEN + 3);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		zbl_free(bl);
	}
	close(b);
	zbl_t *bl = zt_new();
	assert_rc(zbl_append(bl, "head", 4), 0);
	assert_rc(zbl_append_file(bl, fd, 0, LEN), 0);
	ssize_t r = zbl_splice_to(bl, a, NULL, 0);
	/* The first bytes may still be taken by the closing socket before the reset. */
	while (r > 0)
		r = zbl_splice_to(bl, a, NULL, ZBL_DRAIN);
	if (r != -EPIPE && r != -ECONNRESET)
		fail_msg("writing to a closed TCP peer returned %zd (%s)", r, zt_errname(r));
	zbl_free(bl);
	close(a);
	close(fd);
	free(body);
	free(got);
}

/* ---- zbl_append_file --------------------------------------------------------- */

static void test_append_file_is_lazy_and_survives_closing_the_fd(void **state)
{
	(void)state;
	enum { LEN = 100000 };
	unsigned char *data = zt_random_bytes(LEN, 48);
	int fd = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();
	struct zbl_stats st;
	unsigned char *out = malloc(LEN);

	assert_non_null(out);
	zbl_stats_reset();
	assert_rc(zbl_append_file(bl, fd, 1000, 50000), 0);
	close(fd);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, 0);
	assert_size_equal(st.bytes_materialized, 0);
	assert_size_equal(zbl_length(bl), 50000);
	assert_size_equal(zbl_kernel_bytes(bl), 50000);
	assert_rc(zbl_copy_out(bl, 0, 50000, out), 0);
	assert_memory_equal(out, data + 1000, 50000);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	zbl_stats_get(&st);
	assert_true(st.bytes_materialized >= 50000);
	free(data);
	free(out);
	zbl_free(bl);
}

static void test_append_file_keeps_its_own_duplicate_of_the_fd(void **state)
{
	(void)state;
	int fd = zt_temp_file("original file", 13);
	int other;
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_file(bl, fd, 0, 13), 0);
	close(fd);
	/* The number is reused by an unrelated file; the list must not follow it. */
	other = zt_temp_file("something else", 14);
	assert_list_str(bl, "original file");
	close(other);
	zbl_free(bl);
}

static void test_append_file_past_end_of_file_is_out_of_range(void **state)
{
	(void)state;
	int fd = zt_temp_file("0123456789", 10);
	zbl_t *bl = ZT_LIST("keep");
	struct zt_snap s;

	zt_snap_take(&s, bl);
	assert_rc(zbl_append_file(bl, fd, 0, 11), -ERANGE);
	assert_rc(zbl_append_file(bl, fd, 5, 6), -ERANGE);
	assert_rc(zbl_append_file(bl, fd, 11, 0), -ERANGE);
	assert_rc(zbl_append_file(bl, fd, 20, 1), -ERANGE);
	assert_rc(zbl_append_file(bl, fd, 1, SIZE_MAX), -ERANGE);
	assert_rc(zbl_append_file(bl, fd, INT64_MAX, 2), -ERANGE);
	assert_unchanged(&s, bl);
	assert_rc(zbl_append_file(bl, fd, 5, 5), 0);
	assert_list_str(bl, "keep56789");
	assert_rc(zbl_append_file(bl, fd, 10, 0), 0);
	assert_list_str(bl, "keep56789");
	close(fd);
	zbl_free(bl);
}

static void test_append_file_rejects_non_regular_files(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("keep");
	struct zt_snap s;
	int p[2], s2[2], dir, fd;

	zk_pair(ZK_PIPE, p);
	zk_pair(ZK_UNIX, s2);
	dir = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(dir >= 0);
	fd = zt_temp_file("x", 1);
	zt_snap_take(&s, bl);
	assert_rc(zbl_append_file(bl, p[0], 0, 0), -EINVAL);
	assert_rc(zbl_append_file(bl, s2[0], 0, 1), -EINVAL);
	assert_rc(zbl_append_file(bl, dir, 0, 1), -EINVAL);
	assert_rc(zbl_append_file(bl, -1, 0, 1), -EINVAL);
	assert_rc(zbl_append_file(bl, fd, -1, 1), -EINVAL);
	close(fd);
	assert_rc(zbl_append_file(bl, fd, 0, 1), -EINVAL);
	assert_rc(zbl_append_file(NULL, dir, 0, 1), -EINVAL);
	assert_unchanged(&s, bl);
	close(p[0]);
	close(p[1]);
	close(s2[0]);
	close(s2[1]);
	close(dir);
	zbl_free(bl);
}

static void test_append_file_sees_changes_until_first_read_then_is_fixed(void **state)
{
	(void)state;
	int fd = zt_temp_file("aaaaaaaaaa", 10);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append_file(bl, fd, 2, 6), 0);
	assert_int_equal(pwrite(fd, "BBBB", 4, 3), 4);
	assert_list_str(bl, "aBBBBa");
	assert_int_equal(pwrite(fd, "CCCC", 4, 3), 4);
	assert_list_str(bl, "aBBBBa");
	close(fd);
	zbl_free(bl);
}

static void test_append_file_of_shrunk_file_fails_to_read_and_write(void **state)
{
	(void)state;
	int fd = zt_temp_file("0123456789", 10);
	int out = zt_temp_fd(0);
	zbl_t *bl = zt_new();
	char buf[10];

	assert_rc(zbl_append_file(bl, fd, 2, 8), 0);
	assert_int_equal(ftruncate(fd, 1), 0);
	assert_rc(zbl_write_fd(bl, out), -ENODATA);
	assert_rc(zbl_copy_out(bl, 0, 8, buf), -EIO);
	close(fd);
	close(out);
	zbl_free(bl);
}

static void test_write_fd_of_file_segments_moves_pages_without_copying(void **state)
{
	(void)state;
	enum { LEN = 300000 };
	unsigned char *data = zt_random_bytes(LEN, 49);
	int in = zt_temp_file(data, LEN), out = zt_temp_fd(0);
	zbl_t *bl = zt_new();
	struct zbl_stats st;

	assert_rc(zbl_append_file(bl, in, 0, LEN), 0);
	close(in);
	zbl_stats_reset();
	assert_rc(zbl_write_fd(bl, out), LEN);
	assert_rc(zbl_write_fd(bl, out), LEN);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_materialized, 0);
	assert_size_equal(st.materializations, 0);
	assert_size_equal(st.bytes_spliced_out, 2 * LEN);
	assert_size_equal(st.bytes_copied_out, 0);
	assert_size_equal(zbl_kernel_bytes(bl), LEN);
	{
		size_t have;
		unsigned char *got = zt_file_contents(out, &have);

		assert_size_equal(have, 2 * LEN);
		assert_memory_equal(got, data, LEN);
		assert_memory_equal(got + LEN, data, LEN);
		free(got);
	}
	close(out);
	free(data);
	zbl_free(bl);
}

static void test_write_fd_of_mixed_list_to_socket_keeps_order(void **state)
{
	(void)state;
	enum { LEN = 150000 };
	unsigned char *data = zt_random_bytes(LEN, 50);
	int fd = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();
	struct zk_reader d = { 0 };
	int s[2];

	assert_rc(zbl_append(bl, data, 100), 0);
	assert_rc(zbl_append_file(bl, fd, 100, 70000), 0);
	assert_rc(zbl_append_ref(bl, data + 70100, 33, NULL, NULL), 0);
	assert_rc(zbl_append_file(bl, fd, 70133, 9), 0);
	assert_rc(zbl_append(bl, data + 70142, LEN - 70142), 0);
	close(fd);
	zk_pair(ZK_UNIX, s);
	zk_reader_start(&d, s[0], 2 * LEN + 1);
	assert_rc(zbl_write_fd(bl, s[1]), LEN);
	assert_rc(zbl_write_fd(bl, s[1]), LEN);
	shutdown(s[1], SHUT_WR);
	zk_reader_join(&d);
	assert_size_equal(d.got, 2 * LEN);
	assert_memory_equal(d.buf, data, LEN);
	assert_memory_equal(d.buf + LEN, data, LEN);
	zk_reader_free(&d);
	close(s[0]);
	close(s[1]);
	free(data);
	zbl_free(bl);
}

static void test_write_fd_of_file_segment_to_pipe_without_reader_returns_epipe(void **state)
{
	(void)state;
	int fd = zt_temp_file("kernel pages", 12);
	zbl_t *bl = zt_new();
	int p[2];

	assert_rc(zbl_append_file(bl, fd, 0, 12), 0);
	close(fd);
	zk_pair(ZK_PIPE, p);
	close(p[0]);
	assert_rc(zbl_write_fd(bl, p[1]), -EPIPE);
	close(p[1]);
	zbl_free(bl);
}

/* ---- zbl_splice_from ------------------------------------------------------- */

static void test_splice_from_file_with_offset_leaves_fd_position_alone(void **state)
{
	(void)state;
	enum { LEN = 50000 };
	unsigned char *data = zt_random_bytes(LEN, 51);
	int fd = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();
	int64_t off = 1000;
	struct zbl_stats st;

	assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
	zbl_stats_reset();
	assert_rc(zbl_splice_from(bl, fd, &off, 20000, 0), 20000);
	assert_int_equal(off, 21000);
	assert_int_equal(fd_position(fd), 3);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_spliced_in + st.bytes_copied_in, 20000);
	assert_size_equal(zbl_kernel_bytes(bl), st.bytes_spliced_in);
	assert_list_bytes(bl, data + 1000, 20000);
	close(fd);
	free(data);
	zbl_free(bl);
}

static void test_splice_from_file_without_offset_uses_and_advances_position(void **state)
{
	(void)state;
	enum { LEN = 50000 };
	unsigned char *data = zt_random_bytes(LEN, 52);
	int fd = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();

	assert_int_equal(lseek(fd, 100, SEEK_SET), 100);
	assert_rc(zbl_splice_from(bl, fd, NULL, 30000, 0), 30000);
	assert_int_equal(fd_position(fd), 30100);
	assert_list_bytes(bl, data + 100, 30000);
	close(fd);
	free(data);
	zbl_free(bl);
}

static void test_splice_from_file_stops_at_end_of_file(void **state)
{
	(void)state;
	enum { LEN = 10000 };
	unsigned char *data = zt_random_bytes(LEN, 53);
	int fd = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();
	int64_t off = 9000;

	assert_rc(zbl_splice_from(bl, fd, &off, 5000, 0), 1000);
	assert_int_equal(off, LEN);
	assert_rc(zbl_splice_from(bl, fd, &off, 5000, 0), 0);
	assert_int_equal(off, LEN);
	assert_rc(zbl_splice_from(bl, fd, NULL, LEN + 10, 0), LEN);
	assert_rc(zbl_splice_from(bl, fd, NULL, 10, 0), 0);
	assert_size_equal(zbl_length(bl), 1000 + LEN);
	{
		unsigned char *flat = zt_flat(bl);

		assert_memory_equal(flat, data + 9000, 1000);
		assert_memory_equal(flat + 1000, data, LEN);
		free(flat);
	}
	close(fd);
	free(data);
	zbl_free(bl);
}

static void test_splice_from_pipe_reads_until_end_of_file(void **state)
{
	(void)state;
	read_until_end_of_file(ZK_PIPE, 300000, 54, true);
}

static void test_splice_from_nonblocking_pipe_returns_eagain_or_what_is_there(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	int p[2];

	zk_pair(ZK_PIPE, p);
	zk_set_nonblock(p[0], true);
	assert_rc(zbl_splice_from(bl, p[0], NULL, 100, 0), -EAGAIN);
	assert_size_equal(zbl_length(bl), 0);
	zt_write_full(p[1], "twelve bytes", 12);
	assert_rc(zbl_splice_from(bl, p[0], NULL, 100, 0), 12);
	assert_list_str(bl, "twelve bytes");
	assert_rc(zbl_splice_from(bl, p[0], NULL, 100, 0), -EAGAIN);
	close(p[1]);
	assert_rc(zbl_splice_from(bl, p[0], NULL, 100, 0), 0);
	assert_list_str(bl, "twelve bytes");
	close(p[0]);
	zbl_free(bl);
}

static void test_splice_from_socketpair_reads_the_stream(void **state)
{
	(void)state;
	read_until_end_of_file(ZK_UNIX, 250000, 55, true);
}

static void test_splice_from_with_offset_on_pipe_is_espipe(void **state)
{
	(void)state;
	zbl_t *bl = zt_new();
	int64_t off = 0;
	int p[2];

	zk_pair(ZK_PIPE, p);
	zt_write_full(p[1], "data", 4);
	assert_rc(zbl_splice_from(bl, p[0], &off, 4, 0), -ESPIPE);
	assert_int_equal(off, 0);
	assert_size_equal(zbl_length(bl), 0);
	close(p[0]);
	close(p[1]);
	zbl_free(bl);
}

static void test_spliced_pipe_data_can_be_written_twice(void **state)
{
	(void)state;
	enum { LEN = 100000 };
	unsigned char *data = zt_random_bytes(LEN, 56);
	zbl_t *bl = zt_new();
	int out = zt_temp_fd(0);

	/* Ceph's raw_pipe consumed the pipe on the first write-out. */
	zk_splice_from_writer(bl, ZK_PIPE, (struct zk_writer){ .buf = data, .len = LEN });
	assert_rc(zbl_write_fd(bl, out), LEN);
	assert_rc(zbl_write_fd(bl, out), LEN);
	assert_rc(zbl_splice_to(bl, out, NULL, 0), LEN);
	{
		size_t have;
		unsigned char *got = zt_file_contents(out, &have);

		assert_size_equal(have, 3 * LEN);
		for (int i = 0; i < 3; i++)
			assert_memory_equal(got + (size_t)i * LEN, data, LEN);
		free(got);
	}
	assert_list_bytes(bl, data, LEN);
	close(out);
	free(data);
	zbl_free(bl);
}

static void test_slice_of_spliced_data_writes_exactly_its_window(void **state)
{
	(void)state;
	enum { LEN = 60000 };
	unsigned char *data = zt_random_bytes(LEN, 57);
	zbl_t *bl = zt_new(), *win = zt_new();
	int s[2];
	struct zk_reader d = { 0 };

	zk_splice_from_writer(bl, ZK_PIPE, (struct zk_writer){ .buf = data, .len = LEN });
	assert_rc(zbl_substr_of(win, bl, 1234, 40000), 0);
	zk_pair(ZK_UNIX, s);
	zk_reader_start(&d, s[0], 2 * LEN);
	assert_rc(zbl_write_fd(win, s[1]), 40000);
	assert_rc(zbl_write_fd(bl, s[1]), LEN);
	shutdown(s[1], SHUT_WR);
	zk_reader_join(&d);
	assert_size_equal(d.got, 40000 + LEN);
	assert_memory_equal(d.buf, data + 1234, 40000);
	assert_memory_equal(d.buf + 40000, data, LEN);
	zk_reader_free(&d);
	close(s[0]);
	close(s[1]);
	free(data);
	zbl_free(bl);
	zbl_free(win);
}

static void test_reading_spliced_data_materializes_each_block_once(void **state)
{
	(void)state;
	enum { LEN = 40000 };
	unsigned char *data = zt_random_bytes(LEN, 58);
	int fd = zt_temp_file(data, LEN), out = zt_temp_fd(0);
	zbl_t *bl = zt_new(), *copy = zt_new();
	struct zbl_stats st1, st2;
	unsigned char *buf = malloc(LEN);
	int64_t off = 0;

	assert_non_null(buf);
	assert_rc(zbl_splice_from(bl, fd, &off, LEN, 0), LEN);
	assert_rc(zbl_append_list(copy, bl), 0);
	zbl_stats_reset();
	assert_rc(zbl_copy_out(bl, 0, LEN, buf), 0);
	assert_memory_equal(buf, data, LEN);
	zbl_stats_get(&st1);
	assert_true(st1.bytes_materialized <= LEN);
	assert_size_equal(zbl_kernel_bytes(bl), 0);
	/* Reading again, through this list or one sharing the blocks, copies nothing. */
	assert_rc(zbl_copy_out(bl, 0, LEN, buf), 0);
	assert_rc(zbl_copy_out(copy, 0, LEN, buf), 0);
	assert_memory_equal(buf, data, LEN);
	(void)zbl_crc32c(copy, 0);
	zbl_stats_get(&st2);
	assert_size_equal(st2.bytes_materialized, st1.bytes_materialized);
	assert_size_equal(st2.materializations, st1.materializations);
	assert_size_equal(zbl_kernel_bytes(copy), 0);
	/* Writing out afterwards still produces the right bytes. */
	assert_rc(zbl_write_fd(bl, out), LEN);
	assert_file_bytes(out, data, LEN);
	close(fd);
	close(out);
	free(buf);
	free(data);
	zbl_free(bl);
	zbl_free(copy);
}

/* ---- zbl_splice_to ------------------------------------------------------------ */

static void test_splice_to_file_with_offset_leaves_fd_position_alone(void **state)
{
	(void)state;
	enum { LEN = 20000 };
	unsigned char *data = zt_random_bytes(LEN, 59);
	int src = zt_temp_file(data, LEN), out = zt_temp_fd(0);
	zbl_t *bl = zt_new();
	int64_t off = 100;
	struct zt_snap s;

	assert_rc(zbl_append(bl, data, 10), 0);
	assert_rc(zbl_append_file(bl, src, 10, LEN - 20), 0);
	assert_rc(zbl_append_ref(bl, data + LEN - 10, 10, NULL, NULL), 0);
	close(src);
	assert_int_equal(lseek(out, 7, SEEK_SET), 7);
	zt_snap_take(&s, bl);
	assert_rc(zbl_splice_to(bl, out, &off, 0), LEN);
	assert_int_equal(off, 100 + LEN);
	assert_int_equal(fd_position(out), 7);
	assert_unchanged(&s, bl);
	{
		size_t have;
		unsigned char *got = zt_file_contents(out, &have);

		assert_size_equal(have, 100 + LEN);
		assert_memory_equal(got + 100, data, LEN);
		free(got);
	}
	close(out);
	free(data);
	zbl_free(bl);
}

static void test_splice_to_file_without_offset_uses_and_advances_position(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("0123", "4567");
	int out = zt_temp_fd(0);

	assert_int_equal(lseek(out, 2, SEEK_SET), 2);
	assert_rc(zbl_splice_to(bl, out, NULL, 0), 8);
	assert_int_equal(fd_position(out), 10);
	assert_rc(zbl_splice_to(bl, out, NULL, 0), 8);
	assert_int_equal(fd_position(out), 18);
	{
		size_t have;
		unsigned char *got = zt_file_contents(out, &have);

		assert_size_equal(have, 18);
		assert_memory_equal(got + 2, "0123456701234567", 16);
		free(got);
	}
	close(out);
	zbl_free(bl);
}

static void test_splice_to_with_offset_on_pipe_is_espipe(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("data");
	int64_t off = 0;
	struct zt_snap s;
	int p[2];

	zk_pair(ZK_PIPE, p);
	zt_snap_take(&s, bl);
	assert_rc(zbl_splice_to(bl, p[1], &off, 0), -ESPIPE);
	assert_rc(zbl_splice_to(bl, p[1], &off, ZBL_DRAIN), -ESPIPE);
	assert_int_equal(off, 0);
	assert_unchanged(&s, bl);
	close(p[0]);
	close(p[1]);
	zbl_free(bl);
}

static void test_splice_to_with_unknown_flags_is_rejected(void **state)
{
	(void)state;
	zbl_t *bl = ZT_LIST("data");
	struct zt_snap s;
	int out = zt_temp_fd(0);

	zt_snap_take(&s, bl);
	assert_rc(zbl_splice_to(bl, out, NULL, 0x80), -EINVAL);
	assert_rc(zbl_splice_to(bl, out, NULL, ZBL_DRAIN | 0x100), -EINVAL);
	assert_unchanged(&s, bl);
	assert_file_bytes(out, "", 0);
	close(out);
	zbl_free(bl);
}

static void test_splice_to_drain_to_file_empties_the_list(void **state)
{
	(void)state;
	enum { LEN = 30000 };
	unsigned char *data = zt_random_bytes(LEN, 60);
	int src = zt_temp_file(data, LEN), out = zt_temp_fd(0);
	zbl_t *bl = zt_new();

	assert_rc(zbl_append(bl, data, 5000), 0);
	assert_rc(zbl_append_file(bl, src, 5000, LEN - 5000), 0);
	close(src);
	assert_rc(zbl_splice_to(bl, out, NULL, ZBL_DRAIN), LEN);
	assert_size_equal(zbl_length(bl), 0);
	assert_size_equal(zbl_segments(bl), 0);
	assert_file_bytes(out, data, LEN);
	close(out);
	free(data);
	zbl_free(bl);
}

static void test_splice_to_drain_removes_exactly_the_bytes_written(void **state)
{
	(void)state;
	enum { LEN = 200000 };
	unsigned char *data = zt_random_bytes(LEN, 61);
	int src = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();
	unsigned char *got = malloc(LEN);
	size_t received = 0;
	int p[2], rounds = 0;

	assert_non_null(got);
	/* Memory, file pages and pipe pages, in that order. */
	assert_rc(zbl_append(bl, data, 30000), 0);
	assert_rc(zbl_append_file(bl, src, 30000, 70000), 0);
	zk_splice_from_writer(bl, ZK_PIPE,
			      (struct zk_writer){ .buf = data + 100000, .len = LEN - 100000 });
	close(src);

	zk_pair(ZK_PIPE, p);
	(void)fcntl(p[1], F_SETPIPE_SZ, 4096);
	zk_set_nonblock(p[0], true);
	zk_set_nonblock(p[1], true);
	while (zbl_length(bl) > 0) {
		size_t before = zbl_length(bl);
		ssize_t n = zbl_splice_to(bl, p[1], NULL, ZBL_DRAIN);
		size_t avail;

		if (n <= 0)
			fail_msg("round %d: zbl_splice_to(ZBL_DRAIN) into an empty pipe returned %zd (%s)",
				 rounds, n, zt_errname(n));
		assert_size_equal(zbl_length(bl), before - (size_t)n);
		if (zbl_length(bl) > 0) {
			/* The pipe is full now: nothing more goes, and nothing is lost. */
			assert_rc(zbl_splice_to(bl, p[1], NULL, ZBL_DRAIN), -EAGAIN);
			assert_size_equal(zbl_length(bl), before - (size_t)n);
		}
		avail = zk_read_available(p[0], got + received, LEN - received);
		assert_size_equal(avail, (size_t)n);
		received += avail;
		rounds++;
	}
	assert_size_equal(received, LEN);
	assert_memory_equal(got, data, LEN);
	assert_true(rounds > 1);
	close(p[0]);
	close(p[1]);
	free(got);
	free(data);
	zbl_free(bl);
}

static void test_splice_to_drain_partial_write_keeps_the_unwritten_rest(void **state)
{
	(void)state;
	enum { LEN = 300000 };
	unsigned char *data = zt_random_bytes(LEN, 65);
	int src = zt_temp_file(data, LEN);
	zbl_t *bl = zt_new();
	unsigned char *got = malloc(LEN);
	ssize_t n;
	int p[2];

	assert_non_null(got);
	assert_rc(zbl_append(bl, data, 1000), 0);
	assert_rc(zbl_append_file(bl, src, 1000, LEN - 1000), 0);
	close(src);
	zk_pair(ZK_PIPE, p);
	zk_set_nonblock(p[0], true);
	zk_set_nonblock(p[1], true);
	n = zbl_splice_to(bl, p[1], NULL, ZBL_DRAIN);
	if (n <= 0 || n >= LEN)
		fail_msg("zbl_splice_to(ZBL_DRAIN) into a 64 KiB pipe returned %zd (%s)", n,
			 zt_errname(n));
	assert_size_equal(zbl_length(bl), LEN - (size_t)n);
	assert_size_equal(zk_read_available(p[0], got, LEN), (size_t)n);
	assert_memory_equal(got, data, (size_t)n);
	assert_list_bytes(bl, data + n, LEN - (size_t)n);
	close(p[0]);
	close(p[1]);
	free(got);
	free(data);
	zbl_free(bl);
}

static void test_splice_to_drain_leaves_lists_sharing_the_pages_intact(void **state)
{
	(void)state;
	enum { LEN = 50000 };
	unsigned char *data = zt_random_bytes(LEN, 62);
	zbl_t *bl = zt_new(), *keep = zt_new();
	int out = zt_temp_fd(0), out2 = zt_temp_fd(0);

	zk_splice_from_writer(bl, ZK_PIPE, (struct zk_writer){ .buf = data, .len = LEN });
	assert_rc(zbl_append_list(keep, bl), 0);
	assert_rc(zbl_splice_to(bl, out, NULL, ZBL_DRAIN), LEN);
	assert_size_equal(zbl_length(bl), 0);
	assert_file_bytes(out, data, LEN);
	assert_rc(zbl_write_fd(keep, out2), LEN);
	assert_file_bytes(out2, data, LEN);
	assert_list_bytes(keep, data, LEN);
	close(out);
	close(out2);
	free(data);
	zbl_free(bl);
	zbl_free(keep);
}

static void test_splice_to_flags_zero_twice_writes_twice(void **state)
{
	(void)state;
	enum { LEN = 70000 };
	unsigned char *data = zt_random_bytes(LEN, 63);
	int src = zt_temp_file(data, LEN), s[2];
	zbl_t *bl = zt_new();
	struct zk_reader d = { 0 };

	assert_rc(zbl_append_file(bl, src, 0, LEN), 0);
	close(src);
	zk_pair(ZK_UNIX, s);
	zk_reader_start(&d, s[0], 2 * LEN + 1);
	assert_rc(zbl_splice_to(bl, s[1], NULL, 0), LEN);
	assert_rc(zbl_splice_to(bl, s[1], NULL, 0), LEN);
	shutdown(s[1], SHUT_WR);
	zk_reader_join(&d);
	assert_size_equal(d.got, 2 * LEN);
	assert_memory_equal(d.buf, data, LEN);
	assert_memory_equal(d.buf + LEN, data, LEN);
	assert_size_equal(zbl_length(bl), LEN);
	zk_reader_free(&d);
	close(s[0]);
	close(s[1]);
	free(data);
	zbl_free(bl);
}

static void test_splice_to_drain_of_more_than_iov_max_segments(void **state)
{
	(void)state;
	unsigned char *model;
	size_t len;
	zbl_t *bl = list_longer_than_iov_max(&model, &len);
	int out = zt_temp_fd(0);

	assert_rc(zbl_splice_to(bl, out, NULL, ZBL_DRAIN), (ssize_t)len);
	assert_size_equal(zbl_length(bl), 0);
	assert_file_bytes(out, model, len);
	close(out);
	free(model);
	zbl_free(bl);
}

static void test_splice_to_pipe_without_reader_returns_epipe(void **state)
{
	(void)state;
	int fd = zt_temp_file("pages", 5);
	zbl_t *bl = zt_new();
	struct zt_snap s;
	int p[2];

	assert_rc(zbl_append(bl, "mem", 3), 0);
	assert_rc(zbl_append_file(bl, fd, 0, 5), 0);
	close(fd);
	zt_snap_take(&s, bl);
	zk_pair(ZK_PIPE, p);
	close(p[0]);
	assert_rc(zbl_splice_to(bl, p[1], NULL, 0), -EPIPE);
	assert_rc(zbl_splice_to(bl, p[1], NULL, ZBL_DRAIN), -EPIPE);
	assert_unchanged(&s, bl);
	close(p[1]);
	zbl_free(bl);
}

static void test_splice_between_tcp_sockets_forwards_the_stream(void **state)
{
	(void)state;
	enum { LEN = 1 << 20 };
	unsigned char *data = zt_random_bytes(LEN, 64);
	int in[2], out[2];
	zbl_t *bl = zt_new();
	struct zk_writer w = { .buf = data, .len = LEN };
	struct zk_reader d = { 0 };
	size_t moved = 0;
	ssize_t r;
	const char *failed;

	if (!zk_try_tcp_pair(in, &failed) || !zk_try_tcp_pair(out, &failed)) {
		print_message("TCP loopback is not available (%s: %s); skipping\n", failed,
			      strerror(errno));
		zk_close(&in[0]);
		zk_close(&in[1]);
		free(data);
		zbl_free(bl);
		skip();
		return;
	}
	int a1 = in[1], b1 = in[0], a2 = out[1], b2 = out[0];
	/* a1 -> b1 (spliced in) -> list -> a2 (spliced out) -> b2. */
	w.fd = a1;
	zk_writer_start(&w);
	zk_reader_start(&d, b2, LEN + 1);
	while ((r = zbl_splice_from(bl, b1, NULL, 256 * 1024, 0)) > 0 || zbl_length(bl) > 0) {
		ssize_t w;

		if (r < 0)
			fail_msg("zbl_splice_from(TCP) returned %zd (%s)", r, zt_errname(r));
		w = zbl_splice_to(bl, a2, NULL, ZBL_DRAIN);
		if (w < 0)
			fail_msg("zbl_splice_to(TCP, ZBL_DRAIN) returned %zd (%s)", w, zt_errname(w));
		moved += (size_t)w;
		if (moved == LEN)
			break;
	}
	zk_writer_join(&w);
	assert_int_equal(w.err, 0);
	shutdown(a1, SHUT_WR);
	assert_rc(zbl_splice_from(bl, b1, NULL, 100, 0), 0);
	shutdown(a2, SHUT_WR);
	zk_reader_join(&d);
	assert_size_equal(moved, LEN);
	assert_size_equal(d.got, LEN);
	assert_memory_equal(d.buf, data, LEN);
	zk_reader_free(&d);
	close(a1);
	close(b1);
	close(a2);
	close(b2);
	free(data);
	zbl_free(bl);
}

static void test_splice_from_rejects_unknown_flags(void **state)
{
	(void)state;
	int fd = zt_temp_file("abc", 3);
	zbl_t *bl = zt_new();

	assert_rc(zbl_splice_from(bl, fd, NULL, 3, 0x40), -EINVAL);
	assert_int_equal(fd_position(fd), 0);
	assert_size_equal(zbl_length(bl), 0);
	close(fd);
	zbl_free(bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_fd_from_pipe_stops_at_end_of_file),
		cmocka_unit_test(test_read_fd_from_file_reads_len_and_advances_position),
		cmocka_unit_test(test_read_fd_appends_after_existing_contents),
		cmocka_unit_test(test_read_fd_on_empty_nonblocking_pipe_returns_eagain),
		cmocka_unit_test(test_read_fd_on_nonblocking_pipe_returns_what_is_there),
		cmocka_unit_test(test_read_fd_from_socketpair_until_shutdown),
		cmocka_unit_test(test_read_fd_counts_bytes_copied_in),
		cmocka_unit_test(test_write_fd_to_pipe_writes_everything_and_keeps_list),
		cmocka_unit_test(test_write_fd_of_empty_list_writes_nothing),
		cmocka_unit_test(test_write_fd_same_list_twice_to_file),
		cmocka_unit_test(test_write_fd_counts_bytes_copied_out),
		cmocka_unit_test(test_write_fd_of_more_than_iov_max_segments_to_file),
		cmocka_unit_test(test_write_fd_of_more_than_iov_max_segments_to_socket),
		cmocka_unit_test(test_write_fd_of_more_than_iov_max_segments_to_pipe),
		cmocka_unit_test(test_write_fd_to_full_nonblocking_pipe_returns_partial_then_eagain),
		cmocka_unit_test(test_write_fd_to_pipe_without_reader_returns_epipe),
		cmocka_unit_test(test_write_fd_to_socket_with_closed_peer_returns_epipe),
		cmocka_unit_test(test_head_file_tail_to_tcp_arrive_in_order),
		cmocka_unit_test(test_append_file_is_lazy_and_survives_closing_the_fd),
		cmocka_unit_test(test_append_file_keeps_its_own_duplicate_of_the_fd),
		cmocka_unit_test(test_append_file_past_end_of_file_is_out_of_range),
		cmocka_unit_test(test_append_file_rejects_non_regular_files),
		cmocka_unit_test(test_append_file_sees_changes_until_first_read_then_is_fixed),
		cmocka_unit_test(test_append_file_of_shrunk_file_fails_to_read_and_write),
		cmocka_unit_test(test_write_fd_of_file_segments_moves_pages_without_copying),
		cmocka_unit_test(test_write_fd_of_mixed_list_to_socket_keeps_order),
		cmocka_unit_test(test_write_fd_of_file_segment_to_pipe_without_reader_returns_epipe),
		cmocka_unit_test(test_splice_from_file_with_offset_leaves_fd_position_alone),
		cmocka_unit_test(test_splice_from_file_without_offset_uses_and_advances_position),
		cmocka_unit_test(test_splice_from_file_stops_at_end_of_file),
		cmocka_unit_test(test_splice_from_pipe_reads_until_end_of_file),
		cmocka_unit_test(test_splice_from_nonblocking_pipe_returns_eagain_or_what_is_there),
		cmocka_unit_test(test_splice_from_socketpair_reads_the_stream),
		cmocka_unit_test(test_splice_from_with_offset_on_pipe_is_espipe),
		cmocka_unit_test(test_spliced_pipe_data_can_be_written_twice),
		cmocka_unit_test(test_slice_of_spliced_data_writes_exactly_its_window),
		cmocka_unit_test(test_reading_spliced_data_materializes_each_block_once),
		cmocka_unit_test(test_splice_to_file_with_offset_leaves_fd_position_alone),
		cmocka_unit_test(test_splice_to_file_without_offset_uses_and_advances_position),
		cmocka_unit_test(test_splice_to_with_offset_on_pipe_is_espipe),
		cmocka_unit_test(test_splice_to_with_unknown_flags_is_rejected),
		cmocka_unit_test(test_splice_to_drain_to_file_empties_the_list),
		cmocka_unit_test(test_splice_to_drain_removes_exactly_the_bytes_written),
		cmocka_unit_test(test_splice_to_drain_partial_write_keeps_the_unwritten_rest),
		cmocka_unit_test(test_splice_to_drain_leaves_lists_sharing_the_pages_intact),
		cmocka_unit_test(test_splice_to_flags_zero_twice_writes_twice),
		cmocka_unit_test(test_splice_to_drain_of_more_than_iov_max_segments),
		cmocka_unit_test(test_splice_to_pipe_without_reader_returns_epipe),
		cmocka_unit_test(test_splice_between_tcp_sockets_forwards_the_stream),
		cmocka_unit_test(test_splice_from_rejects_unknown_flags),
	};

	/* The library must keep SIGPIPE from killing us even with the default action. */
	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
