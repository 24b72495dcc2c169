/* SPDX-License-Identifier: MIT */
/*
 * Positioning cost: zbl_copy_out of 64 bytes at random offsets in lists of
 * 1k to 1M segments. With a binary search over segment start offsets the
 * cost grows with log(segments), not segments.
 *
 *   build/bench/bench_position [reads-per-size]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zbl.h"

#define SEG_BYTES 64

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void noop_release(void *ctx)
{
	(void)ctx;
}

/* What finding an offset costs without an index: walk the segments from the front. */
static void walk_copy(const zbl_t *bl, size_t off, size_t len, char *out)
{
	zbl_iter_t it;
	const char *p;
	size_t n;

	zbl_iter_init(&it, bl, 0);
	while (off && (n = zbl_iter_get_ptr_and_advance(&it, off, &p)))
		off -= n;
	zbl_iter_copy(&it, len, out);
}

static unsigned long next_rand(unsigned long *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

int main(int argc, char **argv)
{
	static char seg[SEG_BYTES];
	long reads = argc > 1 ? atol(argv[1]) : 2000000;
	double base = 0;
	char out[SEG_BYTES];
	unsigned long sum = 0;

	printf("zbl_copy_out of %d bytes at random offsets; 'flat' is memcpy from one buffer of\n"
	       "the same size (the memory-hierarchy floor), 'walk' finds the offset by walking\n"
	       "segments from the front (a list without an index)\n\n", SEG_BYTES);
	printf("%-10s %10s %12s %12s %12s %10s\n", "segments", "MiB", "zbl ns", "flat ns",
	       "walk ns", "zbl vs 1k");
	for (size_t nsegs = 1000; nsegs <= 1000000; nsegs *= 10) {
		zbl_t *bl = zbl_new();
		unsigned long x = 88172645463325252ul;

		/* append_ref keeps each piece its own segment (no tail-room merging). */
		for (size_t i = 0; i < nsegs; i++)
			if (zbl_append_ref(bl, seg, sizeof(seg), noop_release, NULL) < 0)
				return 1;
		if (zbl_segments(bl) != nsegs)
			return 1;
		size_t len = zbl_length(bl);
		char *flat = calloc(1, len);
		if (!flat)
			return 1;

		double t0 = now_ns();
		for (long r = 0; r < reads; r++) {
			zbl_copy_out(bl, next_rand(&x) % (len - SEG_BYTES), SEG_BYTES, out);
			sum += (unsigned char)out[0];
		}
		double ns = (now_ns() - t0) / reads;

		t0 = now_ns();
		for (long r = 0; r < reads; r++) {
			memcpy(out, flat + next_rand(&x) % (len - SEG_BYTES), SEG_BYTES);
			__asm__ volatile("" : : "r"(out) : "memory");
		}
		double flat_ns = (now_ns() - t0) / reads;

		long walks = (long)(20000000 / nsegs) + 1;
		t0 = now_ns();
		for (long r = 0; r < walks; r++)
			walk_copy(bl, next_rand(&x) % (len - SEG_BYTES), SEG_BYTES, out);
		double walk_ns = (now_ns() - t0) / walks;

		if (nsegs == 1000)
			base = ns;
		printf("%-10zu %10.1f %12.1f %12.1f %12.0f %9.2fx\n", nsegs, len / 1048576.0, ns,
		       flat_ns, walk_ns, ns / base);
		free(flat);
		zbl_free(bl);
	}
	return sum == 1;
}
