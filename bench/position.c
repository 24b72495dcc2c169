/* SPDX-License-Identifier: MIT */
/*
 * Positioning cost and memory overhead.
 *
 * position/<n>: zbl_copy_out of 64 bytes at random offsets in a list of n
 * segments of 64 bytes, against memcpy from one flat buffer of the same size
 * (the memory-hierarchy floor) and against finding the offset by walking the
 * segments from the front (what a list without an index pays). With a binary
 * search over segment start offsets the cost grows with log(segments).
 *
 * Memory: heap bytes (mallinfo2) per empty list, per segment and per shared
 * segment, for zbl and evbuffer, plus RSS growth per segment.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define POS_SEG_BYTES 64

static void no_release(void *ctx)
{
	(void)ctx;
}

static void ev_no_cleanup(const void *data, size_t len, void *ctx)
{
	(void)data;
	(void)len;
	(void)ctx;
}

struct pos {
	size_t nsegs, len;
	zbl_t *bl;
	char *flat;
	size_t ops[3];
	unsigned long sum;
};

/* Finds @off by walking the segments from the front, then copies. */
static int walk_copy(const zbl_t *bl, size_t off, size_t len, char *out)
{
	zbl_iter_t it;
	const char *p;
	size_t n;

	zbl_iter_init(&it, bl, 0);
	while (off && (n = zbl_iter_get_ptr_and_advance(&it, off, &p)))
		off -= n;
	return zbl_iter_copy(&it, len, out);
}

static int pos_run(struct bench_row *row, int v, double *work)
{
	struct pos *c = row->ctx;
	uint64_t x = 88172645463325252ull + (uint64_t)v;
	const size_t span = c->len - POS_SEG_BYTES;
	char out[POS_SEG_BYTES];

	for (size_t i = 0; i < c->ops[v]; i++) {
		size_t off = bench_rand(&x) % span;

		if (v == 0) {
			memcpy(out, c->flat + off, POS_SEG_BYTES);
			__asm__ volatile("" : : "r"(out) : "memory");
		} else if (v == 1) {
			int err = zbl_copy_out(c->bl, off, POS_SEG_BYTES, out);

			if (err < 0)
				return err;
		} else if (walk_copy(c->bl, off, POS_SEG_BYTES, out) < 0) {
			return -EIO;
		}
		c->sum += (unsigned char)out[0];
	}
	*work = (double)c->ops[v];
	return 0;
}

static int pos_check(struct bench_row *row, int v, bool verify)
{
	struct pos *c = row->ctx;
	uint64_t x = 5;
	char out[POS_SEG_BYTES];

	if (!verify || v == 0)
		return 0;
	for (int i = 0; i < 100; i++) {
		size_t off = bench_rand(&x) % (c->len - POS_SEG_BYTES);
		int err = v == 1 ? zbl_copy_out(c->bl, off, POS_SEG_BYTES, out) :
				   walk_copy(c->bl, off, POS_SEG_BYTES, out);

		if (err < 0 || memcmp(out, c->flat + off, POS_SEG_BYTES))
			return -EILSEQ;
	}
	return 0;
}

static int row_position(struct bench *b, size_t nsegs)
{
	struct pos c = { .nsegs = nsegs, .len = nsegs * POS_SEG_BYTES };
	struct bench_row *row;
	int flat, zbl, ret = -1;

	c.ops[0] = c.ops[1] = bench_size(b, 1000000, 20000);
	/* A walk costs O(segments): about 20M segment steps per round. */
	c.ops[2] = bench_size(b, 20000000, 2000000) / nsegs + 1;
	row = bench_row_new(b, "position", BENCH_OPS,
			    "copy_out of %d bytes at random offsets, %zu segments of %d bytes",
			    POS_SEG_BYTES, nsegs, POS_SEG_BYTES);
	if (!row)
		return -1;
	snprintf(row->name, sizeof(row->name), "position/%zuk", nsegs / 1000);
	c.bl = zbl_new();
	c.flat = malloc(c.len);
	if (!c.bl || !c.flat) {
		bench_fail(row, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c.len; i += BENCH_PATTERN_BYTES)
		memcpy(c.flat + i, bench_pattern(),
		       c.len - i < BENCH_PATTERN_BYTES ? c.len - i : BENCH_PATTERN_BYTES);
	/* append_ref keeps each piece its own segment (no tail-room merging). */
	for (size_t i = 0; i < nsegs; i++)
		if (zbl_append_ref(c.bl, c.flat + i * POS_SEG_BYTES, POS_SEG_BYTES, no_release,
				   NULL) < 0) {
			bench_fail(row, "out of memory");
			goto out;
		}
	if (zbl_segments(c.bl) != nsegs) {
		bench_fail(row, "%zu segments, expected %zu", zbl_segments(c.bl), nsegs);
		goto out;
	}
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note), "flat = memcpy from one buffer of the same size; "
		 "walk = offset found by iterating from the front (no index)");
	flat = bench_add_variant(row, "flat memcpy", NULL, pos_run, pos_check);
	zbl = bench_add_variant(row, "zbl_copy_out", NULL, pos_run, pos_check);
	int walk = bench_add_variant(row, "walk from front", NULL, pos_run, pos_check);
	bench_add_target(row, zbl, flat, BENCH_INFO_TIME, 0);
	bench_add_target(row, walk, zbl, BENCH_INFO_TIME, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
out:
	zbl_free(c.bl);
	free(c.flat);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* Memory overhead */

#define MEM_LISTS 10000

static int mem_overhead(struct bench *b)
{
	const size_t nsegs = b->quick ? 10000 : 1000000;
	static char seg[64];
	zbl_t **lists = calloc(MEM_LISTS, sizeof(*lists));
	struct evbuffer **evs = calloc(MEM_LISTS, sizeof(*evs));
	size_t h0, r0;
	int ret = 0;

	if (!lists || !evs)
		return -1;

	h0 = bench_heap_bytes();
	for (int i = 0; i < MEM_LISTS; i++)
		if (!(lists[i] = zbl_new()))
			ret = -1;
	bench_add_mem(b, "zbl: empty list (zbl_new)", (double)(bench_heap_bytes() - h0) / MEM_LISTS, 0);
	h0 = bench_heap_bytes();
	for (int i = 0; i < MEM_LISTS && !ret; i++)
		if (zbl_append(lists[i], seg, 1) < 0)
			ret = -1;
	bench_add_mem(b, "zbl: first 1-byte zbl_append to a list", (double)(bench_heap_bytes() - h0) / MEM_LISTS, 0);
	for (int i = 0; i < MEM_LISTS; i++)
		zbl_free(lists[i]);

	h0 = bench_heap_bytes();
	for (int i = 0; i < MEM_LISTS; i++)
		if (!(evs[i] = evbuffer_new()))
			ret = -1;
	bench_add_mem(b, "evbuffer: empty buffer (evbuffer_new)", (double)(bench_heap_bytes() - h0) / MEM_LISTS, 0);
	for (int i = 0; i < MEM_LISTS; i++)
		evbuffer_free(evs[i]);

	/* Per segment: one list of many by-reference pieces (a block each). */
	zbl_t *bl = zbl_new(), *sh = zbl_new();

	if (!bl || !sh)
		ret = -1;
	h0 = bench_heap_bytes();
	r0 = bench_rss_bytes();
	for (size_t i = 0; i < nsegs && !ret; i++)
		if (zbl_append_ref(bl, seg, sizeof(seg), no_release, NULL) < 0)
			ret = -1;
	bench_add_mem(b, "zbl: segment of its own block (zbl_append_ref)",
		      (double)(bench_heap_bytes() - h0) / nsegs,
		      (double)(bench_rss_bytes() - r0) / nsegs);
	/* Per shared segment: the same pieces in a second list (no new blocks). */
	h0 = bench_heap_bytes();
	r0 = bench_rss_bytes();
	if (!ret && zbl_append_list(sh, bl) < 0)
		ret = -1;
	bench_add_mem(b, "zbl: shared segment (zbl_append_list)",
		      (double)(bench_heap_bytes() - h0) / nsegs,
		      (double)(bench_rss_bytes() - r0) / nsegs);
	zbl_free(sh);
	zbl_free(bl);

	struct evbuffer *ev = evbuffer_new(), *esh = evbuffer_new();

	if (!ev || !esh)
		ret = -1;
	h0 = bench_heap_bytes();
	r0 = bench_rss_bytes();
	for (size_t i = 0; i < nsegs && !ret; i++)
		if (evbuffer_add_reference(ev, seg, sizeof(seg), ev_no_cleanup, NULL) < 0)
			ret = -1;
	bench_add_mem(b, "evbuffer: chain (evbuffer_add_reference)",
		      (double)(bench_heap_bytes() - h0) / nsegs,
		      (double)(bench_rss_bytes() - r0) / nsegs);
	h0 = bench_heap_bytes();
	r0 = bench_rss_bytes();
	if (!ret && evbuffer_add_buffer_reference(esh, ev) < 0)
		ret = -1;
	bench_add_mem(b, "evbuffer: shared chain (evbuffer_add_buffer_reference)",
		      (double)(bench_heap_bytes() - h0) / nsegs,
		      (double)(bench_rss_bytes() - r0) / nsegs);
	if (esh)
		evbuffer_free(esh);
	if (ev)
		evbuffer_free(ev);
	free(lists);
	free(evs);
	if (ret)
		fprintf(stderr, "zbl_bench: memory overhead: an allocation failed\n");
	return ret;
}

int bench_rows_position(struct bench *b)
{
	int ret = 0;

	if (bench_selected(b, "position"))
		for (size_t n = 1000; n <= (b->quick ? 10000 : 1000000); n *= 10)
			ret |= row_position(b, n);
	if (bench_selected(b, "memory"))
		ret |= mem_overhead(b);
	return ret;
}
