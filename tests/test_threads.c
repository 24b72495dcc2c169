/* SPDX-License-Identifier: MIT */
/*
 * Threads: lists that share storage are used from different threads at the
 * same time. One thread reads (crc32c, copy_out, iterators) while another
 * slices, appends and frees lists over the same blocks; reference counts must
 * stay right and every release callback must run exactly once. Kernel-page
 * blocks shared between threads must be materialized once and read correctly.
 *
 * cmocka's assertions are not thread-safe, so worker threads record their
 * first failure in their context and the main thread reports it after join.
 */
#include "zbl_test.h"

#include <pthread.h>
#include <signal.h>

struct worker {
	pthread_t th;
	int id;
	int iters;
	zbl_t *bl;                   /* the worker's own list over the shared blocks */
	const unsigned char *model;  /* the bytes bl holds */
	size_t len;
	pthread_barrier_t *start;
	char failure[256];           /* first failure, empty if none */
};

#define W_CHECK(w, cond, ...) do {                                            \
	if (!(cond)) {                                                        \
		if (!(w)->failure[0])                                         \
			snprintf((w)->failure, sizeof((w)->failure),          \
				 __VA_ARGS__);                                \
		goto out;                                                     \
	}                                                                     \
} while (0)

static void assert_worker_ok(const struct worker *w)
{
	if (w->failure[0])
		fail_msg("worker %d: %s", w->id, w->failure);
}

/*
 * The shared list every thread starts from: library memory, two borrowed
 * buffers with release callbacks, and a library block with tail room last.
 */
struct shared {
	unsigned char *model;
	size_t len;
	unsigned char *ref1, *ref2;
	atomic_int released1, released2;
	zbl_t *base;
};

enum { LIB1 = 300000, REF1 = 200000, REF2 = 500000, LIB2 = 1000 };

static void shared_build(struct shared *sh)
{
	size_t pos = 0;

	sh->len = LIB1 + REF1 + REF2 + LIB2;
	sh->model = zt_random_bytes(sh->len, 70);
	sh->ref1 = malloc(REF1);
	sh->ref2 = malloc(REF2);
	assert_non_null(sh->ref1);
	assert_non_null(sh->ref2);
	atomic_init(&sh->released1, 0);
	atomic_init(&sh->released2, 0);
	memcpy(sh->ref1, sh->model + LIB1, REF1);
	memcpy(sh->ref2, sh->model + LIB1 + REF1, REF2);
	sh->base = zt_new();
	assert_rc(zbl_append(sh->base, sh->model, LIB1), 0);
	pos += LIB1;
	assert_rc(zbl_append_ref(sh->base, sh->ref1, REF1, zt_count_release, &sh->released1), 0);
	pos += REF1;
	assert_rc(zbl_append_ref(sh->base, sh->ref2, REF2, zt_count_release, &sh->released2), 0);
	pos += REF2;
	assert_rc(zbl_append(sh->base, sh->model + pos, LIB2), 0);
	assert_size_equal(zbl_length(sh->base), sh->len);
}

static void shared_free(struct shared *sh)
{
	free(sh->model);
	free(sh->ref1);
	free(sh->ref2);
}

/* Reader: CRCs with several seeds, copy_out of random ranges, iteration. */
static void *reader_main(void *arg)
{
	struct worker *w = arg;
	static const uint32_t seeds[] = { 0, 1, 0xFFFFFFFF, 0x12345678 };
	uint32_t want[4];
	unsigned char *buf = malloc(w->len);
	zbl_t *slice = zbl_new(), *mine = zbl_new();
	uint64_t rs = 1000 + (uint64_t)w->id;

	for (int i = 0; i < 4; i++)
		want[i] = zt_ref_crc32c(w->model, w->len, seeds[i]);
	pthread_barrier_wait(w->start);
	W_CHECK(w, buf && slice && mine, "out of memory");
	for (int it = 0; it < w->iters; it++) {
		size_t off = zt_rand(&rs) % w->len;
		size_t n = zt_rand(&rs) % (w->len - off + 1);
		uint32_t seed = seeds[it % 4], got;
		zbl_iter_t iter;
		const char *p;
		size_t run, pos;
		int rc;

		got = zbl_crc32c(w->bl, seed);
		W_CHECK(w, got == want[it % 4], "iteration %d: crc32c(seed 0x%x) = 0x%08x, expected 0x%08x",
			it, seed, got, want[it % 4]);
		rc = zbl_copy_out(w->bl, off, n, buf);
		W_CHECK(w, rc == 0, "iteration %d: copy_out(%zu, %zu) = %d", it, off, n, rc);
		W_CHECK(w, memcmp(buf, w->model + off, n) == 0,
			"iteration %d: copy_out(%zu, %zu) returned wrong bytes", it, off, n);
		rc = zbl_substr_of(slice, w->bl, off, n);
		W_CHECK(w, rc == 0, "iteration %d: substr_of = %d", it, rc);
		got = zbl_crc32c(slice, seed);
		W_CHECK(w, got == zt_ref_crc32c(w->model + off, n, seed),
			"iteration %d: crc32c of slice [%zu, +%zu) wrong", it, off, n);
		rc = zbl_iter_init(&iter, w->bl, off);
		W_CHECK(w, rc == 0, "iteration %d: iter_init = %d", it, rc);
		pos = off;
		while ((run = zbl_iter_get_ptr_and_advance(&iter, 65536, &p)) > 0) {
			W_CHECK(w, memcmp(p, w->model + pos, run) == 0,
				"iteration %d: iterator bytes at %zu wrong", it, pos);
			pos += run;
		}
		W_CHECK(w, pos == w->len, "iteration %d: iterator stopped at %zu of %zu", it, pos,
			w->len);
		/* Appending to a private copy may use the shared block's tail room. */
		zbl_clear(mine);
		rc = zbl_append_list(mine, w->bl);
		W_CHECK(w, rc == 0, "iteration %d: append_list = %d", it, rc);
		{
			char tag[16];
			size_t tl = (size_t)snprintf(tag, sizeof(tag), "R%d-%d", w->id, it);
			char back[16];

			rc = zbl_append(mine, tag, tl);
			W_CHECK(w, rc == 0, "iteration %d: append = %d", it, rc);
			rc = zbl_copy_out(mine, w->len, tl, back);
			W_CHECK(w, rc == 0 && memcmp(back, tag, tl) == 0,
				"iteration %d: own appended bytes were overwritten", it);
			rc = zbl_copy_out(mine, w->len - 100, 100, buf);
			W_CHECK(w, rc == 0 && memcmp(buf, w->model + w->len - 100, 100) == 0,
				"iteration %d: shared bytes before the tail changed", it);
		}
	}
out:
	free(buf);
	zbl_free(slice);
	zbl_free(mine);
	return NULL;
}

/* One mutator step; returns false after recording a failure. */
static bool mutate_once(struct worker *w, int it, unsigned char *buf, uint64_t *rs)
{
	zbl_t *a = zbl_new(), *b = zbl_new(), *c = zbl_new();
	size_t off = zt_rand(rs) % w->len;
	size_t n = zt_rand(rs) % (w->len - off + 1);
	char tag[16];
	size_t tl = (size_t)snprintf(tag, sizeof(tag), "M%d-%d", w->id, it);
	bool ok = false;
	int rc;

	W_CHECK(w, a && b && c, "out of memory");
	rc = zbl_append_list(a, w->bl);
	W_CHECK(w, rc == 0, "iteration %d: append_list = %d", it, rc);
	/* May go into the tail room of the block the other threads also see. */
	rc = zbl_append(a, tag, tl);
	W_CHECK(w, rc == 0, "iteration %d: append = %d", it, rc);
	rc = zbl_substr_of(b, a, off, n);
	W_CHECK(w, rc == 0, "iteration %d: substr_of = %d", it, rc);
	rc = zbl_splice(a, off, n, c);
	W_CHECK(w, rc == 0, "iteration %d: splice = %d", it, rc);
	W_CHECK(w, zbl_contents_equal(b, c), "iteration %d: substr and splice disagree", it);
	rc = zbl_copy_out(a, 0, zbl_length(a), buf);
	W_CHECK(w, rc == 0, "iteration %d: copy_out = %d", it, rc);
	W_CHECK(w, memcmp(buf, w->model, off) == 0 &&
		memcmp(buf + off, w->model + off + n, w->len - off - n) == 0 &&
		memcmp(buf + w->len - n, tag, tl) == 0,
		"iteration %d: list after splice(%zu, %zu) has wrong bytes", it, off, n);
	if (it % 7 == 0) {
		rc = zbl_rebuild(c);
		W_CHECK(w, rc == 0, "iteration %d: rebuild = %d", it, rc);
	}
	ok = true;
out:
	zbl_free(a);
	zbl_free(b);
	zbl_free(c);
	return ok;
}

/* Mutator: builds and frees lists over the same blocks, appends, splices. */
static void *mutator_main(void *arg)
{
	struct worker *w = arg;
	uint64_t rs = 2000 + (uint64_t)w->id;
	unsigned char *buf = malloc(w->len + 64);

	pthread_barrier_wait(w->start);
	W_CHECK(w, buf != NULL, "out of memory");
	for (int it = 0; it < w->iters; it++)
		if (!mutate_once(w, it, buf, &rs))
			break;
out:
	free(buf);
	return NULL;
}

static void run_workers(struct worker *w, int n, void *(*fn[])(void *))
{
	pthread_barrier_t start;

	assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
	for (int i = 0; i < n; i++) {
		w[i].start = &start;
		w[i].id = i;
		w[i].failure[0] = '\0';
		assert_int_equal(pthread_create(&w[i].th, NULL, fn[i], &w[i]), 0);
	}
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_join(w[i].th, NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < n; i++)
		assert_worker_ok(&w[i]);
}

static void test_reader_and_mutator_threads_share_blocks_safely(void **state)
{
	(void)state;
	struct shared sh;
	struct worker w[2];
	void *(*fn[2])(void *) = { reader_main, mutator_main };

	shared_build(&sh);
	for (int i = 0; i < 2; i++) {
		w[i].bl = zt_new();
		assert_rc(zbl_append_list(w[i].bl, sh.base), 0);
		w[i].model = sh.model;
		w[i].len = sh.len;
		w[i].iters = 150;
	}
	/* From here on only the workers' lists hold the blocks. */
	zbl_free(sh.base);
	run_workers(w, 2, fn);
	assert_int_equal(atomic_load(&sh.released1), 0);
	assert_int_equal(atomic_load(&sh.released2), 0);
	zbl_free(w[0].bl);
	assert_int_equal(atomic_load(&sh.released1), 0);
	zbl_free(w[1].bl);
	assert_int_equal(atomic_load(&sh.released1), 1);
	assert_int_equal(atomic_load(&sh.released2), 1);
	shared_free(&sh);
}

static void test_four_threads_mixing_readers_and_mutators(void **state)
{
	(void)state;
	struct shared sh;
	struct worker w[4];
	void *(*fn[4])(void *) = { reader_main, mutator_main, reader_main, mutator_main };

	shared_build(&sh);
	for (int i = 0; i < 4; i++) {
		w[i].bl = zt_new();
		assert_rc(zbl_append_list(w[i].bl, sh.base), 0);
		w[i].model = sh.model;
		w[i].len = sh.len;
		w[i].iters = 60;
	}
	zbl_free(sh.base);
	run_workers(w, 4, fn);
	for (int i = 0; i < 4; i++)
		zbl_free(w[i].bl);
	assert_int_equal(atomic_load(&sh.released1), 1);
	assert_int_equal(atomic_load(&sh.released2), 1);
	shared_free(&sh);
}

/* Takes and drops references to one borrowed block as fast as it can. */
static void *ref_churn_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(w->start);
	for (int it = 0; it < w->iters; it++) {
		zbl_t *a = zbl_new(), *b = zbl_new();
		int rc;

		W_CHECK(w, a && b, "out of memory");
		rc = zbl_append_list(a, w->bl);
		W_CHECK(w, rc == 0, "append_list = %d", rc);
		rc = zbl_substr_of(b, a, (size_t)it % w->len, 1);
		W_CHECK(w, rc == 0, "substr_of = %d", rc);
		rc = zbl_claim_append(a, b);
		W_CHECK(w, rc == 0, "claim_append = %d", rc);
		zbl_free(a);
		zbl_free(b);
		continue;
out:
		zbl_free(a);
		zbl_free(b);
		break;
	}
	return NULL;
}

static void test_release_runs_exactly_once_after_concurrent_sharing(void **state)
{
	(void)state;
	enum { NT = 4, ROUNDS = 20 };
	static const char mem[] = "a block shared by many threads";

	for (int round = 0; round < ROUNDS; round++) {
		atomic_int released = 0;
		zbl_t *base = zt_new();
		struct worker w[NT];
		void *(*fn[NT])(void *);

		assert_rc(zbl_append_ref(base, mem, sizeof(mem) - 1, zt_count_release, &released), 0);
		for (int i = 0; i < NT; i++) {
			fn[i] = ref_churn_main;
			w[i].bl = zt_new();
			assert_rc(zbl_append_list(w[i].bl, base), 0);
			w[i].len = sizeof(mem) - 1;
			w[i].iters = 2000;
		}
		zbl_free(base);
		run_workers(w, NT, fn);
		assert_int_equal(atomic_load(&released), 0);
		/* The last list to go must trigger the release, whichever it is. */
		for (int i = 0; i < NT; i++) {
			zbl_free(w[(i + round) % NT].bl);
			assert_int_equal(atomic_load(&released), i == NT - 1 ? 1 : 0);
		}
	}
}

/* Frees its list at the barrier so that the last drop races with the other thread. */
static void *free_at_barrier_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(w->start);
	zbl_free(w->bl);
	w->bl = NULL;
	return NULL;
}

static void test_simultaneous_last_frees_release_once(void **state)
{
	(void)state;
	static const char mem[] = "raced";

	for (int round = 0; round < 500; round++) {
		atomic_int released = 0;
		struct worker w[2];
		void *(*fn[2])(void *) = { free_at_barrier_main, free_at_barrier_main };
		zbl_t *base = zt_new();

		assert_rc(zbl_append_ref(base, mem, 5, zt_count_release, &released), 0);
		for (int i = 0; i < 2; i++) {
			w[i].bl = zt_new();
			assert_rc(zbl_substr_of(w[i].bl, base, (size_t)i, 3), 0);
		}
		zbl_free(base);
		run_workers(w, 2, fn);
		assert_int_equal(atomic_load(&released), 1);
	}
}

/* Reads the worker's (kernel-page) list in full once, at the barrier. */
static void *read_once_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(w->len);
	int rc;

	pthread_barrier_wait(w->start);
	W_CHECK(w, buf != NULL, "out of memory");
	if (w->id % 2) {
		uint32_t got = zbl_crc32c(w->bl, 0);

		W_CHECK(w, got == zt_ref_crc32c(w->model, w->len, 0), "crc32c of kernel pages wrong");
	} else {
		rc = zbl_copy_out(w->bl, 0, w->len, buf);
		W_CHECK(w, rc == 0, "copy_out = %d", rc);
		W_CHECK(w, memcmp(buf, w->model, w->len) == 0, "copy_out of kernel pages wrong");
	}
out:
	free(buf);
	return NULL;
}

static void check_concurrent_materialization(zbl_t *src, const unsigned char *model, size_t len)
{
	enum { NT = 4 };
	struct worker w[NT];
	void *(*fn[NT])(void *);
	struct zbl_stats before, after;

	assert_size_equal(zbl_kernel_bytes(src), len);
	for (int i = 0; i < NT; i++) {
		fn[i] = read_once_main;
		w[i].bl = zt_new();
		assert_rc(zbl_append_list(w[i].bl, src), 0);
		w[i].model = model;
		w[i].len = len;
	}
	zbl_stats_get(&before);
	run_workers(w, NT, fn);
	zbl_stats_get(&after);
	/* Each block is copied into memory at most once, however many threads read it. */
	assert_true(after.bytes_materialized - before.bytes_materialized <= len);
	for (int i = 0; i < NT; i++) {
		assert_size_equal(zbl_kernel_bytes(w[i].bl), 0);
		assert_list_bytes(w[i].bl, model, len);
		zbl_free(w[i].bl);
	}
	assert_size_equal(zbl_kernel_bytes(src), 0);
}

static void test_threads_reading_shared_file_pages_materialize_them_once(void **state)
{
	(void)state;
	enum { LEN = 400000 };
	unsigned char *data = zt_random_bytes(LEN, 71);
	int fd;

	fd = zt_temp_file(data, LEN);
	for (int round = 0; round < 10; round++) {
		zbl_t *src = zt_new();

		assert_rc(zbl_append_file(src, fd, 0, LEN), 0);
		check_concurrent_materialization(src, data, LEN);
		zbl_free(src);
	}
	close(fd);
	free(data);
}

static void test_threads_reading_shared_pipe_pages_materialize_them_once(void **state)
{
	(void)state;
	enum { LEN = 200000 };
	unsigned char *data = zt_random_bytes(LEN, 72);
	int fd;

	fd = zt_temp_file(data, LEN);
	for (int round = 0; round < 10; round++) {
		zbl_t *src = zt_new();
		int64_t off = 0;
		struct zbl_stats st;

		zbl_stats_reset();
		assert_rc(zbl_splice_from(src, fd, &off, LEN, 0), LEN);
		zbl_stats_get(&st);
		if (st.bytes_spliced_in != LEN) {
			zbl_free(src);
			close(fd);
			free(data);
			print_message("splice from a file fell back to copying; skipping\n");
			skip();
		}
		check_concurrent_materialization(src, data, LEN);
		zbl_free(src);
	}
	close(fd);
	free(data);
}

/* Writes its kernel-page list to a file of its own while other threads read it. */
static void *write_out_main(void *arg)
{
	struct worker *w = arg;
	int fd = -1;
	ssize_t r;

	{
		char path[] = "/tmp/zbl-thread-XXXXXX";

		fd = mkstemp(path);
		if (fd >= 0)
			unlink(path);
	}
	pthread_barrier_wait(w->start);
	W_CHECK(w, fd >= 0, "mkstemp failed");
	for (int i = 0; i < 3; i++) {
		r = zbl_write_fd(w->bl, fd);
		W_CHECK(w, r == (ssize_t)w->len, "write_fd = %zd, expected %zu", r, w->len);
	}
	{
		unsigned char *buf = malloc(w->len);

		W_CHECK(w, buf != NULL, "out of memory");
		for (int i = 0; i < 3; i++) {
			r = pread(fd, buf, w->len, (off_t)(i * w->len));
			if (r != (ssize_t)w->len || memcmp(buf, w->model, w->len) != 0) {
				free(buf);
				W_CHECK(w, false, "copy %d written to the file is wrong", i);
			}
		}
		free(buf);
	}
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void test_threads_writing_and_reading_shared_pipe_pages(void **state)
{
	(void)state;
	enum { LEN = 150000, NT = 4 };
	unsigned char *data = zt_random_bytes(LEN, 73);
	int fd;

	fd = zt_temp_file(data, LEN);
	for (int round = 0; round < 5; round++) {
		zbl_t *src = zt_new();
		int64_t off = 0;
		struct worker w[NT];
		void *(*fn[NT])(void *) = { write_out_main, read_once_main, write_out_main,
					    read_once_main };

		assert_rc(zbl_splice_from(src, fd, &off, LEN, 0), LEN);
		for (int i = 0; i < NT; i++) {
			w[i].bl = zt_new();
			assert_rc(zbl_append_list(w[i].bl, src), 0);
			w[i].model = data;
			w[i].len = LEN;
		}
		run_workers(w, NT, fn);
		for (int i = 0; i < NT; i++)
			zbl_free(w[i].bl);
		assert_list_bytes(src, data, LEN);
		zbl_free(src);
	}
	close(fd);
	free(data);
}

/* Computes CRCs with its own seeds over a list sharing one large block. */
static void *crc_main(void *arg)
{
	struct worker *w = arg;
	uint32_t seeds[3] = { (uint32_t)w->id, 0xFFFFFFFFu - (uint32_t)w->id, 0 };
	uint32_t want[3];

	for (int i = 0; i < 3; i++)
		want[i] = zt_ref_crc32c(w->model, w->len, seeds[i]);
	pthread_barrier_wait(w->start);
	for (int it = 0; it < w->iters; it++) {
		uint32_t got = zbl_crc32c(w->bl, seeds[it % 3]);

		W_CHECK(w, got == want[it % 3], "iteration %d: crc32c(0x%x) = 0x%08x, expected 0x%08x",
			it, seeds[it % 3], got, want[it % 3]);
	}
out:
	return NULL;
}

static void test_concurrent_crc_with_different_seeds_on_one_block(void **state)
{
	(void)state;
	enum { LEN = 1 << 20, NT = 4 };
	unsigned char *data = zt_random_bytes(LEN, 74);
	zbl_t *base = zt_new();
	struct worker w[NT];
	void *(*fn[NT])(void *) = { crc_main, crc_main, crc_main, crc_main };

	assert_rc(zbl_append(base, data, LEN), 0);
	for (int i = 0; i < NT; i++) {
		w[i].bl = zt_new();
		assert_rc(zbl_append_list(w[i].bl, base), 0);
		w[i].model = data;
		w[i].len = LEN;
		w[i].iters = 60;
	}
	run_workers(w, NT, fn);
	for (int i = 0; i < NT; i++)
		zbl_free(w[i].bl);
	zbl_free(base);
	free(data);
}

/* Appends many small pieces to its own list, for the statistics test. */
static void *append_counter_main(void *arg)
{
	struct worker *w = arg;
	int rc;

	pthread_barrier_wait(w->start);
	for (int it = 0; it < w->iters; it++) {
		rc = zbl_append(w->bl, "0123456789", 10);
		W_CHECK(w, rc == 0, "append = %d", rc);
	}
out:
	return NULL;
}

static void test_statistics_count_every_byte_from_concurrent_threads(void **state)
{
	(void)state;
	enum { NT = 4, ITERS = 20000 };
	struct worker w[NT];
	void *(*fn[NT])(void *) = { append_counter_main, append_counter_main,
				    append_counter_main, append_counter_main };
	struct zbl_stats st;

	for (int i = 0; i < NT; i++) {
		w[i].bl = zt_new();
		w[i].iters = ITERS;
	}
	zbl_stats_reset();
	run_workers(w, NT, fn);
	zbl_stats_get(&st);
	assert_size_equal(st.bytes_copied_in, (size_t)NT * ITERS * 10);
	for (int i = 0; i < NT; i++) {
		assert_size_equal(zbl_length(w[i].bl), (size_t)ITERS * 10);
		zbl_free(w[i].bl);
	}
}

/*
 * Like append_counter_main, and checks that its own counters saw exactly its
 * own appends while the others appended too.
 */
static void *append_own_counter_main(void *arg)
{
	struct worker *w = arg;
	struct zbl_stats before, after;

	pthread_barrier_wait(w->start);
	zbl_stats_thread_get(&before);
	for (int it = 0; it < w->iters; it++) {
		if (it == w->iters / 2 && w->id == 0)
			zbl_stats_reset(); /* must not touch any thread's own counters */
		int rc = zbl_append(w->bl, "0123456789", 10);
		W_CHECK(w, rc == 0, "append = %d", rc);
	}
	zbl_stats_thread_get(&after);
	W_CHECK(w, after.bytes_copied_in - before.bytes_copied_in == (uint64_t)w->iters * 10,
		"thread counted %llu bytes copied in, appended %d",
		(unsigned long long)(after.bytes_copied_in - before.bytes_copied_in),
		w->iters * 10);
out:
	return NULL;
}

static void test_each_thread_sees_its_own_counters(void **state)
{
	(void)state;
	enum { NT = 3, ITERS = 20000 };
	struct worker w[NT];
	void *(*fn[NT])(void *) = { append_own_counter_main, append_own_counter_main,
				    append_own_counter_main };
	struct zbl_stats mine_before, mine_after, all;

	zbl_stats_thread_get(&mine_before);
	for (int i = 0; i < NT; i++) {
		w[i].bl = zt_new();
		w[i].iters = ITERS;
	}
	run_workers(w, NT, fn);
	zbl_stats_thread_get(&mine_after);
	/* This thread appended nothing meanwhile. */
	assert_int_equal(mine_after.bytes_copied_in, mine_before.bytes_copied_in);
	/* The process-wide sum still holds what the exited threads counted after the reset. */
	zbl_stats_get(&all);
	assert_true(all.bytes_copied_in >= (uint64_t)ITERS / 2 * 10);
	assert_true(all.bytes_copied_in <= (uint64_t)NT * ITERS * 10);
	for (int i = 0; i < NT; i++)
		zbl_free(w[i].bl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_and_mutator_threads_share_blocks_safely),
		cmocka_unit_test(test_four_threads_mixing_readers_and_mutators),
		cmocka_unit_test(test_release_runs_exactly_once_after_concurrent_sharing),
		cmocka_unit_test(test_simultaneous_last_frees_release_once),
		cmocka_unit_test(test_threads_reading_shared_file_pages_materialize_them_once),
		cmocka_unit_test(test_threads_reading_shared_pipe_pages_materialize_them_once),
		cmocka_unit_test(test_threads_writing_and_reading_shared_pipe_pages),
		cmocka_unit_test(test_concurrent_crc_with_different_seeds_on_one_block),
		cmocka_unit_test(test_statistics_count_every_byte_from_concurrent_threads),
		cmocka_unit_test(test_each_thread_sees_its_own_counters),
	};

	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
