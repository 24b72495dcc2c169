/* SPDX-License-Identifier: MIT */
/*
 * Kernel pages and threads:
 * - draining a list into a non-blocking socket whose reader is slow: loop on
 *   zbl_splice_to(ZBL_DRAIN), waiting with poll on -EAGAIN; the received
 *   stream must equal the list, with nothing lost or duplicated;
 * - lists sharing pipe blocks used from different threads at once: one reads
 *   (materializing the blocks) while another writes the same blocks to a file,
 *   or both read; contents exact and each block materialized once;
 * - zbl_splice_from racing a writer thread: data that arrives just after the
 *   library's splice(2) said EAGAIN must not turn into an error.
 */
#include "kpage_util.h"

#include <isa-l/crc.h>

/* ------------------------------------------------------------------------ */
/* Non-blocking drain with a slow reader. */

struct drain_result {
	size_t eagains, partials, calls;
};

/*
 * Drains @bl into the non-blocking @fd; a reader thread on @peer reads
 * @chunk bytes every @delay_us. Returns what the loop saw.
 */
static struct drain_result drain_slowly(zbl_t *bl, enum zk_kind k, const unsigned char *want,
					size_t n)
{
	int fds[2];
	struct zk_reader rd = { .chunk = 8 * ZK_KiB, .delay_us = 100 };
	struct drain_result res = { 0 };
	size_t sent = 0;
	ssize_t r = 0;

	zk_pair(k, fds);
	if (zk_is_socket(k))
		zk_set_socket_buffers(fds, 32 * 1024);
	zk_set_nonblock(fds[1], true);
	zk_reader_start(&rd, fds[0], n + 1);
	while (zbl_length(bl)) {
		size_t before = zbl_length(bl);
		r = zbl_splice_to(bl, fds[1], NULL, ZBL_DRAIN);
		res.calls++;
		if (r == -EAGAIN) {
			res.eagains++;
			if (zbl_length(bl) != before)
				break;
			struct pollfd p = { .fd = fds[1], .events = POLLOUT };
			if (poll(&p, 1, 10000) != 1)
				break;
			continue;
		}
		if (r <= 0 || zbl_length(bl) != before - (size_t)r)
			break;
		if ((size_t)r < before)
			res.partials++;
		sent += (size_t)r;
	}
	size_t left = zbl_length(bl);
	zk_end_writes(k, &fds[1]);
	zk_reader_join(&rd);
	zk_close(&fds[0]);
	zk_close(&fds[1]);
	if (left)
		fail_msg("drain stopped with %zu bytes left after %zu sent: last result %zd (%s)",
			 left, sent, r, zt_errname(r));
	assert_size_equal(sent, n);
	zk_reader_check(&rd, want, n);
	zk_reader_free(&rd);
	printf("# %zu bytes to a slow %s reader: %zu calls, %zu partial, %zu EAGAIN\n", n,
	       zk_kind_name[k], res.calls, res.partials, res.eagains);
	assert_true(res.partials + res.eagains > 0);
	return res;
}

/* A list of pipe pages (pattern @seed) alone drained to a slow reader of kind @k. */
static void drain_pipe_pages_slowly(enum zk_kind k, uint64_t seed)
{
	size_t n = 4 * ZK_MiB + 3;
	unsigned char *bytes = zk_pat_alloc(n, seed);
	zbl_t *bl = zk_pipe_list(n, seed);

	zbl_stats_reset();
	drain_slowly(bl, k, bytes, n);
	zk_assert_stats(.bytes_spliced_out = n);
	zbl_free(bl);
	free(bytes);
}

static void test_nonblocking_drain_of_pipe_pages_to_a_slow_tcp_reader_loses_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	drain_pipe_pages_slowly(ZK_TCP, 1);
}

static void test_nonblocking_drain_of_pipe_pages_to_a_slow_unix_reader_loses_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	drain_pipe_pages_slowly(ZK_UNIX, 2);
}

static void test_nonblocking_drain_of_pipe_pages_to_a_slow_pipe_reader_loses_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	drain_pipe_pages_slowly(ZK_PIPE, 3);
}

/* The blocks are shared with another list: every partial write tees again. */
static void test_nonblocking_drain_of_shared_pipe_pages_to_a_slow_reader_loses_nothing(void **state)
{
	(void)state;
	zk_begin(30);
	size_t n = 4 * ZK_MiB + 3;
	unsigned char *bytes = zk_pat_alloc(n, 4);
	zbl_t *bl = zk_pipe_list(n, 4), *other = zt_new();

	assert_rc(zbl_append_list(other, bl), 0);
	zbl_stats_reset();
	drain_slowly(bl, ZK_TCP, bytes, n);
	zk_assert_stats(.bytes_spliced_out = n, .bytes_teed = ZK_ANY);
	/* The other holder still has everything. */
	zk_assert_out(zk_write_to(other, ZK_FILE, ZBL_DRAIN), bytes, n);
	zbl_free(bl);
	zbl_free(other);
	free(bytes);
}

static void test_nonblocking_drain_of_a_mixed_list_to_a_slow_reader_keeps_order(void **state)
{
	(void)state;
	zk_begin(30);
	size_t np = 2 * ZK_MiB + 1, nm = 300001, nf = ZK_MiB + 5;
	size_t n = np + nm + nf + np;
	unsigned char *bytes = malloc(n);
	unsigned char *m = zk_pat_alloc(nm, 6);
	int f = zk_pattern_file(nf, 7);
	zbl_t *bl = zk_pipe_list(np, 5), *p2 = zk_pipe_list(np, 8);

	assert_non_null(bytes);
	zk_pat_fill(bytes, np, 5, 0);
	memcpy(bytes + np, m, nm);
	zk_pat_fill(bytes + np + nm, nf, 7, 0);
	zk_pat_fill(bytes + np + nm + nf, np, 8, 0);
	assert_rc(zbl_append(bl, m, nm), 0);
	assert_rc(zbl_append_file(bl, f, 0, nf), 0);
	assert_rc(zbl_claim_append(bl, p2), 0);
	close(f);
	zbl_stats_reset();
	drain_slowly(bl, ZK_TCP, bytes, n);
	zk_assert_stats(.bytes_copied_out = nm, .bytes_spliced_out = 2 * np + nf);
	zbl_free(bl);
	zbl_free(p2);
	free(m);
	free(bytes);
}

/* ------------------------------------------------------------------------ */
/* Threads sharing blocks. */

struct shared_job {
	zbl_t *bl;
	const unsigned char *want;
	size_t n;
	uint32_t crc;
	int fd;       /* writer: output file */
	int rounds;
	unsigned flags;
	pthread_barrier_t *start;
	char err[256];
};

static void *reader_main(void *arg)
{
	struct shared_job *j = arg;
	unsigned char *buf = malloc(j->n);

	pthread_barrier_wait(j->start);
	for (int i = 0; i < j->rounds && !j->err[0]; i++) {
		int rc = zbl_copy_out(j->bl, 0, j->n, buf);
		if (rc != 0)
			snprintf(j->err, sizeof(j->err), "copy_out returned %d", rc);
		else if (memcmp(buf, j->want, j->n) != 0)
			snprintf(j->err, sizeof(j->err), "copy_out bytes differ");
		uint32_t c = zbl_crc32c(j->bl, 0);
		if (c != j->crc)
			snprintf(j->err, sizeof(j->err), "crc32c 0x%08x, expected 0x%08x", c, j->crc);
		zbl_iter_t it;
		const char *p;
		size_t got, pos = 0;
		zbl_iter_init(&it, j->bl, 0);
		while ((got = zbl_iter_get_ptr_and_advance(&it, 65536, &p)) > 0) {
			if (memcmp(p, j->want + pos, got) != 0)
				snprintf(j->err, sizeof(j->err), "iterator bytes differ at %zu", pos);
			pos += got;
		}
		if (pos != j->n)
			snprintf(j->err, sizeof(j->err), "iterator saw %zu bytes", pos);
	}
	free(buf);
	return NULL;
}

static void *writer_main(void *arg)
{
	struct shared_job *j = arg;

	pthread_barrier_wait(j->start);
	for (int i = 0; i < j->rounds && !j->err[0]; i++) {
		int64_t off = (int64_t)i * (int64_t)j->n;
		ssize_t r = zbl_splice_to(j->bl, j->fd, &off, j->flags);
		if (r != (ssize_t)j->n)
			snprintf(j->err, sizeof(j->err), "zbl_splice_to returned %zd", r);
	}
	return NULL;
}

/*
 * Fresh pipe blocks each round, shared by list a (read by one thread) and
 * list b (written to a file by another, @flags 0 or ZBL_DRAIN on its last
 * write). Both start together.
 */
static void read_while_writing(int rounds, int writes, bool drain_last)
{
	size_t n = 4 * ZK_MiB + 123;
	unsigned char *bytes = zk_pat_alloc(n, 10);
	uint32_t crc = crc32_iscsi(bytes, (int)n, 0);

	for (int round = 0; round < rounds; round++) {
		zbl_t *src = zk_pipe_list(n, 10), *a = zt_new(), *b = zt_new();
		size_t blocks = zbl_segments(src);
		int fd = zt_temp_fd(0);
		pthread_barrier_t start;
		pthread_t tr, tw;
		struct shared_job r = { .bl = a, .want = bytes, .n = n, .crc = crc, .rounds = 3,
					.start = &start };
		struct shared_job w = { .bl = b, .want = bytes, .n = n, .fd = fd, .rounds = writes,
					.start = &start };

		assert_rc(zbl_append_list(a, src), 0);
		assert_rc(zbl_append_list(b, src), 0);
		zbl_free(src);
		if (drain_last)
			w.flags = ZBL_DRAIN, w.rounds = 1;
		pthread_barrier_init(&start, NULL, 2);
		zbl_stats_reset();
		pthread_create(&tr, NULL, reader_main, &r);
		pthread_create(&tw, NULL, writer_main, &w);
		pthread_join(tr, NULL);
		pthread_join(tw, NULL);
		pthread_barrier_destroy(&start);
		if (r.err[0])
			fail_msg("round %d: reader: %s", round, r.err);
		if (w.err[0])
			fail_msg("round %d: writer: %s", round, w.err);
		size_t flen;
		unsigned char *file = zt_file_contents(fd, &flen);
		assert_size_equal(flen, (size_t)w.rounds * n);
		for (int i = 0; i < w.rounds; i++)
			zk_assert_bytes(file + (size_t)i * n, bytes, n);
		free(file);
		close(fd);
		/* Each block copied into memory once, however the threads interleaved. */
		zk_assert_stats(.bytes_materialized = n, .materializations = blocks,
				.bytes_spliced_out = (size_t)w.rounds * n, .bytes_teed = ZK_ANY);
		if (drain_last)
			assert_size_equal(zbl_length(b), 0);
		assert_list_bytes(a, bytes, n);
		zbl_free(a);
		zbl_free(b);
	}
	free(bytes);
}

static void test_one_thread_reads_while_another_writes_the_same_shared_blocks(void **state)
{
	(void)state;
	zk_begin(60);
	read_while_writing(6, 3, false);
}

static void test_one_thread_reads_while_another_drains_a_list_sharing_the_blocks(void **state)
{
	(void)state;
	zk_begin(60);
	read_while_writing(6, 1, true);
}

static void test_two_threads_reading_the_same_blocks_materialize_each_block_once(void **state)
{
	(void)state;
	zk_begin(60);
	size_t n = 4 * ZK_MiB + 123;
	unsigned char *bytes = zk_pat_alloc(n, 11);
	uint32_t crc = crc32_iscsi(bytes, (int)n, 0);

	for (int round = 0; round < 6; round++) {
		zbl_t *src = zk_pipe_list(n, 11), *a = zt_new(), *b = zt_new();
		size_t blocks = zbl_segments(src);
		pthread_barrier_t start;
		pthread_t t1, t2;
		struct shared_job j1 = { .bl = a, .want = bytes, .n = n, .crc = crc, .rounds = 2,
					 .start = &start };
		struct shared_job j2 = j1;

		j2.bl = b;
		assert_rc(zbl_append_list(a, src), 0);
		assert_rc(zbl_append_list(b, src), 0);
		zbl_free(src);
		pthread_barrier_init(&start, NULL, 2);
		zbl_stats_reset();
		pthread_create(&t1, NULL, reader_main, &j1);
		pthread_create(&t2, NULL, reader_main, &j2);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		pthread_barrier_destroy(&start);
		if (j1.err[0] || j2.err[0])
			fail_msg("round %d: %s %s", round, j1.err, j2.err);
		zk_assert_stats(.bytes_materialized = n, .materializations = blocks,
				.bytes_teed = n);
		zbl_free(a);
		zbl_free(b);
	}
	free(bytes);
}

/* One thread keeps taking and dropping references while another writes. */
struct churn_job {
	zbl_t *bl;
	size_t n;
	atomic_bool *stop;
	size_t iters;
};

static void *churn_main(void *arg)
{
	struct churn_job *j = arg;

	while (!atomic_load(j->stop)) {
		zbl_t *t = zbl_new(), *w = zbl_new();
		zbl_append_list(t, j->bl);
		zbl_substr_of(w, t, j->iters % j->n, 1);
		zbl_free(t);
		zbl_free(w);
		j->iters++;
	}
	return NULL;
}

static void test_references_taken_and_dropped_in_one_thread_while_another_writes(void **state)
{
	(void)state;
	zk_begin(60);
	size_t n = 2 * ZK_MiB + 1;
	unsigned char *bytes = zk_pat_alloc(n, 12);
	zbl_t *a = zk_pipe_list(n, 12), *b = zt_new();
	atomic_bool stop = false;
	struct churn_job j = { .bl = a, .n = n, .stop = &stop };
	pthread_t th;

	assert_rc(zbl_append_list(b, a), 0);
	pthread_create(&th, NULL, churn_main, &j);
	for (int i = 0; i < 10; i++)
		zk_assert_out(zk_write_to(b, ZK_FILE, 0), bytes, n);
	zk_assert_out(zk_write_to(b, ZK_UNIX, ZBL_DRAIN), bytes, n);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	assert_true(j.iters > 0);
	assert_list_bytes(a, bytes, n);
	zbl_free(a);
	zbl_free(b);
	free(bytes);
}

/* ------------------------------------------------------------------------ */
/* zbl_splice_from racing a writer. */

struct racer {
	int fd;
	atomic_int *go;
	unsigned spin;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(r->go))
		;
	for (volatile unsigned i = 0; i < r->spin; i++)
		;
	(void)!write(r->fd, "x", 1);
	return NULL;
}

/*
 * A blocking source: the byte arrives while zbl_splice_from is starting, at
 * varying moments. Every call must return the byte: EAGAIN plus "readable" a
 * moment later means the data just arrived, not that a brand-new empty pipe
 * is full (docs/DESIGN.md, section "Telling a full pipe from an empty
 * source").
 */
static void race(enum zk_kind k, int iters)
{
	int bad = 0;
	ssize_t first_bad = 0;

	for (int it = 0; it < iters; it++) {
		int fds[2];
		atomic_int go = 0;
		struct racer r = { .go = &go, .spin = (unsigned)(it % 64) * 50 };
		pthread_t th;
		zbl_t *bl = zt_new();

		zk_pair(k, fds);
		r.fd = fds[1];
		pthread_create(&th, NULL, racer_main, &r);
		atomic_store(&go, 1);
		ssize_t got = zbl_splice_from(bl, fds[0], NULL, 1, 0);
		if (got != 1 && !bad++)
			first_bad = got;
		pthread_join(th, NULL);
		close(fds[0]);
		close(fds[1]);
		zbl_free(bl);
	}
	if (bad)
		fail_msg("%d of %d blocking zbl_splice_from(%s) calls racing the writer failed; "
			 "the first returned %zd (%s)",
			 bad, iters, zk_kind_name[k], first_bad, zt_errname(first_bad));
}

static void test_blocking_splice_from_a_pipe_racing_its_writer_always_gets_the_data(void **state)
{
	(void)state;
	zk_begin(60);
	race(ZK_PIPE, 10000);
}

static void test_blocking_splice_from_unix_racing_its_writer_always_gets_the_data(void **state)
{
	(void)state;
	zk_begin(60);
	race(ZK_UNIX, 4000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nonblocking_drain_of_pipe_pages_to_a_slow_tcp_reader_loses_nothing),
		cmocka_unit_test(test_nonblocking_drain_of_pipe_pages_to_a_slow_unix_reader_loses_nothing),
		cmocka_unit_test(test_nonblocking_drain_of_pipe_pages_to_a_slow_pipe_reader_loses_nothing),
		cmocka_unit_test(test_nonblocking_drain_of_shared_pipe_pages_to_a_slow_reader_loses_nothing),
		cmocka_unit_test(test_nonblocking_drain_of_a_mixed_list_to_a_slow_reader_keeps_order),
		cmocka_unit_test(test_one_thread_reads_while_another_writes_the_same_shared_blocks),
		cmocka_unit_test(test_one_thread_reads_while_another_drains_a_list_sharing_the_blocks),
		cmocka_unit_test(test_two_threads_reading_the_same_blocks_materialize_each_block_once),
		cmocka_unit_test(test_references_taken_and_dropped_in_one_thread_while_another_writes),
		cmocka_unit_test(test_blocking_splice_from_a_pipe_racing_its_writer_always_gets_the_data),
		cmocka_unit_test(test_blocking_splice_from_unix_racing_its_writer_always_gets_the_data),
	};

	signal(SIGPIPE, SIG_DFL);
	zk_apply_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
