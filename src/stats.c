/* SPDX-License-Identifier: MIT */
/*
 * Process-wide counters and the trace of copies (materializations and
 * fallbacks).
 */
#include <execinfo.h>
#include <stdlib.h>
#include <unistd.h>

#include "zbl_int.h"

struct zbl__stats zbl__stats;

#define LOAD(f) atomic_load_explicit(&zbl__stats.f, memory_order_relaxed)
#define ZERO(f) atomic_store_explicit(&zbl__stats.f, 0, memory_order_relaxed)

void zbl_stats_get(struct zbl_stats *out)
{
	if (!out)
		return;
	out->bytes_copied_in = LOAD(bytes_copied_in);
	out->bytes_spliced_in = LOAD(bytes_spliced_in);
	out->bytes_copied_out = LOAD(bytes_copied_out);
	out->bytes_spliced_out = LOAD(bytes_spliced_out);
	out->bytes_teed = LOAD(bytes_teed);
	out->bytes_materialized = LOAD(bytes_materialized);
	out->materializations = LOAD(materializations);
	out->fallbacks = LOAD(fallbacks);
	out->pipes_created = LOAD(pipes_created);
	out->pipes_live = LOAD(pipes_live);
}

void zbl_stats_reset(void)
{
	ZERO(bytes_copied_in);
	ZERO(bytes_spliced_in);
	ZERO(bytes_copied_out);
	ZERO(bytes_spliced_out);
	ZERO(bytes_teed);
	ZERO(bytes_materialized);
	ZERO(materializations);
	ZERO(fallbacks);
	ZERO(pipes_created);
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
