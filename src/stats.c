/* SPDX-License-Identifier: MIT */
/*
 * Process-wide counters and the trace of copies (materializations and
 * fallbacks).
 */
#include <execinfo.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "zbl_int.h"

struct zbl__stats zbl__stats;
__thread struct zbl__stats *zbl__stats_tls __attribute__((tls_model("initial-exec")));

/* Every counter but the pipes_live gauge. */
#define COUNTERS(X)                                                                 \
	X(bytes_copied_in) X(bytes_spliced_in) X(bytes_copied_out) X(bytes_spliced_out) \
	X(bytes_teed) X(bytes_materialized) X(materializations) X(fallbacks)           \
	X(pipes_created) X(bytes_sent_zerocopy) X(bytes_zerocopy_copied) X(bytes_direct) \
	X(bytes_staged) X(ring_ops) X(ring_sync_ops)

#define LOAD(s, f) atomic_load_explicit(&(s)->f, memory_order_relaxed)

/* A thread's counters, on the list of live threads while it runs. */
struct counted_thread {
	struct zbl__stats c;
	struct counted_thread *next, **pprev;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counted_thread *threads;
static struct zbl_stats baseline;  /* the sums at the last zbl_stats_reset() */
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static bool thread_key_ok;

/* At thread exit: what it counted moves to the process-wide counters. */
static void thread_exit(void *arg)
{
	struct counted_thread *t = arg;

	pthread_mutex_lock(&threads_lock);
#define FOLD(f) atomic_fetch_add_explicit(&zbl__stats.f, LOAD(&t->c, f), memory_order_relaxed);
	COUNTERS(FOLD)
#undef FOLD
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	pthread_mutex_unlock(&threads_lock);
	free(t);
	/* Destructors that run after this one count process-wide. */
	zbl__stats_tls = &zbl__stats;
}

static void thread_key_init(void)
{
	thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
}

/* If the library is unloaded, exiting threads must not call into it. */
__attribute__((destructor)) static void thread_key_unload(void)
{
	if (thread_key_ok)
		pthread_key_delete(thread_key);
}

struct zbl__stats *zbl__stats_register(void)
{
	/* Not through the fault shim: failing here only costs speed, never a result. */
	struct counted_thread *t = NULL;

	pthread_once(&thread_key_once, thread_key_init);
	if (thread_key_ok)
		t = calloc(1, sizeof(*t));
	if (t && pthread_setspecific(thread_key, t) != 0) {
		free(t);
		t = NULL;
	}
	if (!t)
		return zbl__stats_tls = &zbl__stats;
	pthread_mutex_lock(&threads_lock);
	t->next = threads;
	t->pprev = &threads;
	if (threads)
		threads->pprev = &t->next;
	threads = t;
	pthread_mutex_unlock(&threads_lock);
	return zbl__stats_tls = &t->c;
}

/* The counters since the process started: exited threads' and live ones'. */
static void sum_counters(struct zbl_stats *out)
{
#define SUM(f) out->f = LOAD(&zbl__stats, f);
	COUNTERS(SUM)
#undef SUM
	for (struct counted_thread *t = threads; t; t = t->next) {
#define ADD(f) out->f += LOAD(&t->c, f);
		COUNTERS(ADD)
#undef ADD
	}
}

void zbl_stats_get(struct zbl_stats *out)
{
	if (!out)
		return;
	pthread_mutex_lock(&threads_lock);
	sum_counters(out);
#define SINCE_RESET(f) out->f -= baseline.f;
	COUNTERS(SINCE_RESET)
#undef SINCE_RESET
	pthread_mutex_unlock(&threads_lock);
	out->pipes_live = LOAD(&zbl__stats, pipes_live);
}

void zbl_stats_thread_get(struct zbl_stats *out)
{
	if (!out)
		return;
	struct zbl__stats *t = zbl__stats_self();
	/* Counting process-wide (no memory for its own counters): nothing to show apart. */
	if (t == &zbl__stats) {
		memset(out, 0, sizeof(*out));
	} else {
#define COPY(f) out->f = LOAD(t, f);
		COUNTERS(COPY)
#undef COPY
	}
	out->pipes_live = LOAD(&zbl__stats, pipes_live);
}

void zbl_stats_reset(void)
{
	pthread_mutex_lock(&threads_lock);
	sum_counters(&baseline);
	pthread_mutex_unlock(&threads_lock);
}

/*
 * Tracing: off unless ZBL_TRACE is set in the environment (then each event
 * goes to stderr with a backtrace) or a callback is installed.
 */
static _Atomic(zbl_trace_fn) trace_fn;
static void *_Atomic trace_ctx;

void zbl_trace_set(zbl_trace_fn fn, void *ctx)
{
	atomic_store(&trace_ctx, ctx);
	atomic_store(&trace_fn, fn);
}

static void trace_stderr(const char *what, size_t bytes)
{
	void *frames[16];
	int n = backtrace(frames, 16);

	fprintf(stderr, "zbl: %s: %zu bytes copied, at:\n", what, bytes);
	fflush(stderr);
	/* Skip this function and zbl__trace itself. */
	if (n > 2)
		backtrace_symbols_fd(frames + 2, n - 2, STDERR_FILENO);
}

void zbl__trace(const char *what, size_t bytes)
{
	zbl_trace_fn fn = atomic_load_explicit(&trace_fn, memory_order_acquire);
	/* Events are rare and already cost a copy: reading the environment each time is fine. */
	const char *env = getenv("ZBL_TRACE");

	if (fn)
		fn(what, bytes, atomic_load(&trace_ctx));
	if (env && *env && strcmp(env, "0") != 0)
		trace_stderr(what, bytes);
}
