/* SPDX-License-Identifier: MIT */
/*
 * In-memory rows against libevent's evbuffer, the bufferlist most C network
 * programs already have:
 *   appends   many small appends (16..128 bytes) to 64 MiB
 *   copyout   64-byte copies at random offsets in 16k segments of 4 KiB
 *   drain     append/drain cycles on a queue with a standing backlog
 *   share     sharing a whole list with another
 *   slice     taking a 64 KiB window of a list, sharing storage
 */
#include <errno.h>
#include <event2/buffer.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

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

/* CRC of an evbuffer's contents, walking its chains without copying. */
static uint32_t ev_crc(struct evbuffer *ev)
{
	int n = evbuffer_peek(ev, -1, NULL, NULL, 0);
	struct evbuffer_iovec *iov = calloc(n > 0 ? n : 1, sizeof(*iov));
	uint32_t crc = 0;

	if (!iov)
		return 0;
	n = evbuffer_peek(ev, -1, NULL, iov, n);
	for (int i = 0; i < n; i++)
		crc = bench_crc(crc, iov[i].iov_base, iov[i].iov_len);
	free(iov);
	return crc;
}

/* ------------------------------------------------------------------------ */
/* appends */

struct appends {
	size_t total;
	size_t n;
	uint16_t *sizes;
	const unsigned char *src;   /* a source at least total bytes long */
	uint32_t crc;
	zbl_t *bl;
	struct evbuffer *ev;
};

/*
 * Fresh memory: whatever the previous round freed goes back to the kernel,
 * from malloc (trimmed) and from zbl's cache of released mappings alike.
 */
static int appends_fresh_prep(struct bench_row *row, int v)
{
	(void)row;
	(void)v;
	malloc_trim(0);
	zbl_pool_flush();
	return 0;
}

static int appends_run(struct bench_row *row, int v, double *work)
{
	struct appends *c = row->ctx;
	size_t off = 0;

	if (v == 0) {
		c->ev = evbuffer_new();
		if (!c->ev)
			return -ENOMEM;
		for (size_t i = 0; i < c->n; i++) {
			if (evbuffer_add(c->ev, c->src + off, c->sizes[i]) < 0)
				return -ENOMEM;
			off += c->sizes[i];
		}
	} else {
		c->bl = zbl_new();
		if (!c->bl)
			return -ENOMEM;
		for (size_t i = 0; i < c->n; i++) {
			int err = zbl_append(c->bl, c->src + off, c->sizes[i]);

			if (err < 0)
				return err;
			off += c->sizes[i];
		}
	}
	*work = (double)off;
	return 0;
}

static int appends_check(struct bench_row *row, int v, bool verify)
{
	struct appends *c = row->ctx;
	int ret = 0;

	if (v == 0) {
		if (evbuffer_get_length(c->ev) != c->total ||
		    (verify && ev_crc(c->ev) != c->crc))
			ret = -EILSEQ;
		evbuffer_free(c->ev);
		c->ev = NULL;
	} else {
		if (zbl_length(c->bl) != c->total || (verify && zbl_crc32c(c->bl, 0) != c->crc))
			ret = -EILSEQ;
		zbl_free(c->bl);
		c->bl = NULL;
	}
	return ret;
}

static int row_appends(struct bench *b, bool warm)
{
	struct appends c = { .total = bench_size(b, (size_t)64 << 20, (size_t)4 << 20) };
	uint64_t s = 12345;
	size_t sum = 0, cap;
	struct bench_row *row;
	unsigned char *src;
	int ev, zbl, ret;

	cap = c.total / 16 + 1;
	c.sizes = malloc(cap * sizeof(*c.sizes));
	src = malloc(c.total);
	if (!c.sizes || !src)
		return -1;
	for (size_t i = 0; i < c.total; i += BENCH_PATTERN_BYTES)
		memcpy(src + i, bench_pattern(),
		       c.total - i < BENCH_PATTERN_BYTES ? c.total - i : BENCH_PATTERN_BYTES);
	while (sum < c.total) {
		size_t n = 16 + bench_rand(&s) % 113;

		if (n > c.total - sum)
			n = c.total - sum;
		c.sizes[c.n++] = (uint16_t)n;
		sum += n;
	}
	c.src = src;
	c.crc = bench_crc(0, src, c.total);
	row = bench_row_new(b, "appends", BENCH_BYTES,
			    "%zu appends of 16..128 bytes (copied) to %zu MiB, into a new list, "
			    "%s memory", c.n, c.total >> 20, warm ? "warm" : "fresh");
	if (!row)
		return -1;
	snprintf(row->name, sizeof(row->name), "appends/%s", warm ? "warm" : "fresh");
	row->ctx = &c;
	row->memory = warm ? "warm" : "new to process";
	snprintf(row->note, sizeof(row->note), "evbuffer_add vs zbl_append; freeing the "
		 "buffer is not timed; %s", warm ? "malloc keeps freed memory (M_TRIM_THRESHOLD, "
		 "M_MMAP_THRESHOLD raised) and zbl keeps up to 32 MiB of released mappings, "
		 "as in a long-running program" :
		 "memory is new to the process each round (malloc_trim and zbl_pool_flush "
		 "before each): page faults count");
	if (warm) {
		/* Both libraries allocate through malloc, so this favours neither. */
		mallopt(M_MMAP_THRESHOLD, 32 << 20);
		mallopt(M_TRIM_THRESHOLD, 1 << 30);
	}
	ev = bench_add_variant(row, "evbuffer_add", warm ? NULL : appends_fresh_prep, appends_run,
			       appends_check);
	zbl = bench_add_variant(row, "zbl_append", warm ? NULL : appends_fresh_prep, appends_run,
				appends_check);
	/* The target applies to fresh memory, the stricter case; warm is shown for information. */
	bench_add_target(row, zbl, ev, warm ? BENCH_INFO : BENCH_THRU_GE, 1.5);
	ret = bench_run_row(b, row);
	if (warm) {
		mallopt(M_TRIM_THRESHOLD, 128 << 10);
		malloc_trim(0);
	}
	row->ctx = NULL;
	free(c.sizes);
	free(src);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* A list of many 4 KiB segments over one flat buffer, as zbl and evbuffer. */

#define SEG_BYTES 4096

struct seglist {
	size_t nsegs, len;
	unsigned char *flat;
	zbl_t *bl;
	struct evbuffer *ev;
};

static int seglist_init(struct seglist *s, size_t nsegs)
{
	s->nsegs = nsegs;
	s->len = nsegs * SEG_BYTES;
	s->flat = malloc(s->len);
	s->bl = zbl_new();
	s->ev = evbuffer_new();
	if (!s->flat || !s->bl || !s->ev)
		return -ENOMEM;
	for (size_t i = 0; i < s->len; i += BENCH_PATTERN_BYTES)
		memcpy(s->flat + i, bench_pattern() + 7,
		       s->len - i < BENCH_PATTERN_BYTES - 7 ? s->len - i : BENCH_PATTERN_BYTES - 7);
	/* By reference on both sides, so each 4 KiB piece stays its own segment
	 * (chain) instead of being merged into tail room. */
	for (size_t i = 0; i < nsegs; i++) {
		if (zbl_append_ref(s->bl, s->flat + i * SEG_BYTES, SEG_BYTES, no_release, NULL) < 0)
			return -ENOMEM;
		if (evbuffer_add_reference(s->ev, s->flat + i * SEG_BYTES, SEG_BYTES,
					   ev_no_cleanup, NULL) < 0)
			return -ENOMEM;
	}
	if (zbl_segments(s->bl) != nsegs || zbl_length(s->bl) != s->len ||
	    evbuffer_get_length(s->ev) != s->len)
		return -EILSEQ;
	return 0;
}

static void seglist_fini(struct seglist *s)
{
	zbl_free(s->bl);
	if (s->ev)
		evbuffer_free(s->ev);
	free(s->flat);
}

/* ------------------------------------------------------------------------ */
/* copyout: 64 bytes at random offsets */

#define COPY_BYTES 64

struct copyout {
	struct seglist s;
	size_t ops[2];
	unsigned long sum;
};

static int copyout_run(struct bench_row *row, int v, double *work)
{
	struct copyout *c = row->ctx;
	uint64_t x = 88172645463325252ull + (uint64_t)v;
	const size_t span = c->s.len - COPY_BYTES;
	char out[COPY_BYTES];

	if (v == 0) {
		for (size_t i = 0; i < c->ops[0]; i++) {
			struct evbuffer_ptr p;

			/* evbuffer's positioning walks the chains from the front. */
			if (evbuffer_ptr_set(c->s.ev, &p, bench_rand(&x) % span, EVBUFFER_PTR_SET) < 0 ||
			    evbuffer_copyout_from(c->s.ev, &p, out, COPY_BYTES) != COPY_BYTES)
				return -EIO;
			c->sum += (unsigned char)out[0];
		}
	} else {
		for (size_t i = 0; i < c->ops[1]; i++) {
			int err = zbl_copy_out(c->s.bl, bench_rand(&x) % span, COPY_BYTES, out);

			if (err < 0)
				return err;
			c->sum += (unsigned char)out[0];
		}
	}
	*work = (double)c->ops[v];
	return 0;
}

static int copyout_check(struct bench_row *row, int v, bool verify)
{
	struct copyout *c = row->ctx;
	uint64_t x = 99;
	char out[COPY_BYTES];

	if (!verify)
		return 0;
	for (int i = 0; i < 1000; i++) {
		size_t off = bench_rand(&x) % (c->s.len - COPY_BYTES);

		if (v == 0) {
			struct evbuffer_ptr p;

			if (evbuffer_ptr_set(c->s.ev, &p, off, EVBUFFER_PTR_SET) < 0 ||
			    evbuffer_copyout_from(c->s.ev, &p, out, COPY_BYTES) != COPY_BYTES)
				return -EIO;
		} else if (zbl_copy_out(c->s.bl, off, COPY_BYTES, out) < 0) {
			return -EIO;
		}
		if (memcmp(out, c->s.flat + off, COPY_BYTES))
			return -EILSEQ;
	}
	return 0;
}

static int row_copyout(struct bench *b)
{
	struct copyout c = { 0 };
	struct bench_row *row;
	int ev, zbl, ret;
	size_t nsegs = b->quick ? 1024 : 16384;  /* the list shape; not scaled */

	/* evbuffer's lookup is linear in the segments, so it gets fewer
	 * operations; the rates are per operation either way. */
	c.ops[0] = bench_size(b, 4000, 2000);
	c.ops[1] = bench_size(b, 500000, 20000);
	row = bench_row_new(b, "copyout", BENCH_OPS,
			    "copy_out of %d bytes at random offsets, %zu segments of 4 KiB",
			    COPY_BYTES, nsegs);
	if (!row)
		return -1;
	if (seglist_init(&c.s, nsegs) < 0) {
		bench_fail(row, "cannot build the lists");
		seglist_fini(&c.s);
		return -1;
	}
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note), "evbuffer_ptr_set(EVBUFFER_PTR_SET) + "
		 "evbuffer_copyout_from vs zbl_copy_out; both lists hold the same 4 KiB pieces "
		 "by reference");
	ev = bench_add_variant(row, "evbuffer_copyout_from", NULL, copyout_run, copyout_check);
	zbl = bench_add_variant(row, "zbl_copy_out", NULL, copyout_run, copyout_check);
	bench_add_target(row, zbl, ev, BENCH_THRU_GE, 10.0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
	seglist_fini(&c.s);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* drain: append/drain cycles */

#define DRAIN_BACKLOG ((size_t)64 << 10)

struct drain {
	size_t cycles;
	uint16_t sizes[4096];
	unsigned char *src;
};

static int drain_run(struct bench_row *row, int v, double *work)
{
	struct drain *c = row->ctx;
	size_t moved = 0;
	int ret = 0;

	/* A queue that always holds about DRAIN_BACKLOG bytes: each cycle
	 * appends one message (64..4096 bytes, copied) at the back and consumes
	 * the same amount from the front, as a protocol's output buffer does. */
	if (v == 0) {
		struct evbuffer *ev = evbuffer_new();

		if (!ev || evbuffer_add(ev, c->src, DRAIN_BACKLOG) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < c->cycles; i++) {
			size_t n = c->sizes[i % 4096];

			if (evbuffer_add(ev, c->src + (i % 4096) * 16, n) < 0 ||
			    evbuffer_drain(ev, n) < 0) {
				ret = -ENOMEM;
				break;
			}
			moved += n;
		}
		if (evbuffer_get_length(ev) != DRAIN_BACKLOG)
			ret = -EILSEQ;
		evbuffer_free(ev);
	} else {
		zbl_t *bl = zbl_new();

		if (!bl || zbl_append(bl, c->src, DRAIN_BACKLOG) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < c->cycles; i++) {
			size_t n = c->sizes[i % 4096];

			if ((ret = zbl_append(bl, c->src + (i % 4096) * 16, n)) < 0 ||
			    (ret = zbl_splice(bl, 0, n, NULL)) < 0)
				break;
			moved += n;
		}
		if (!ret && zbl_length(bl) != DRAIN_BACKLOG)
			ret = -EILSEQ;
		zbl_free(bl);
	}
	*work = (double)c->cycles;
	return ret < 0 ? ret : 0;
}

static int row_drain(struct bench *b)
{
	struct drain c = { .cycles = bench_size(b, 2000000, 50000) };
	struct bench_row *row;
	uint64_t s = 777;
	int ev, zbl, ret;

	c.src = malloc(DRAIN_BACKLOG + 4096 * 16 + 4096);
	if (!c.src)
		return -1;
	memcpy(c.src, bench_pattern(), DRAIN_BACKLOG + 4096 * 16 + 4096);
	for (int i = 0; i < 4096; i++)
		c.sizes[i] = (uint16_t)(64 + bench_rand(&s) % 4033);
	row = bench_row_new(b, "drain", BENCH_OPS,
			    "append/drain cycles: append 64..4096 bytes, consume as many from the "
			    "front, 64 KiB backlog, %zu cycles", c.cycles);
	if (!row)
		return -1;
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note), "evbuffer_add + evbuffer_drain vs zbl_append + "
		 "zbl_splice(bl, 0, n, NULL)");
	ev = bench_add_variant(row, "evbuffer add+drain", NULL, drain_run, NULL);
	zbl = bench_add_variant(row, "zbl append+splice", NULL, drain_run, NULL);
	bench_add_target(row, zbl, ev, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
	free(c.src);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* share and slice */

#define SLICE_BYTES ((size_t)64 << 10)

struct share {
	struct seglist s;
	size_t ops[2];
	bool slice;
	zbl_t *dst;
	struct evbuffer *edst;
	uint32_t last_crc[2];
	size_t last_off[2];
};

/*
 * The fair evbuffer equivalent of zbl_substr_of: evbuffer cannot share a
 * window of another buffer, only a whole buffer (evbuffer_add_buffer_reference)
 * or caller memory (evbuffer_add_reference). So a window is found with
 * evbuffer_ptr_set, its pieces listed with evbuffer_peek, and each piece added
 * to the destination with evbuffer_add_reference: no bytes copied, like zbl.
 * This favours evbuffer: nothing keeps the source's memory alive for the
 * slice, which zbl's reference counts do.
 */
static int ev_slice(struct evbuffer *src, struct evbuffer *dst, size_t off, size_t len)
{
	struct evbuffer_iovec iov[64];
	struct evbuffer_ptr p;
	int n;

	if (evbuffer_ptr_set(src, &p, off, EVBUFFER_PTR_SET) < 0)
		return -EIO;
	n = evbuffer_peek(src, len, &p, iov, 64);
	if (n < 0 || n > 64)
		return -EIO;
	for (int i = 0; i < n && len; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;

		if (evbuffer_add_reference(dst, iov[i].iov_base, k, ev_no_cleanup, NULL) < 0)
			return -ENOMEM;
		len -= k;
	}
	return len ? -EIO : 0;
}

static int share_run(struct bench_row *row, int v, double *work)
{
	struct share *c = row->ctx;
	uint64_t x = 4242 + (uint64_t)v;
	const size_t span = c->s.len - SLICE_BYTES;
	int err = 0;

	for (size_t i = 0; i < c->ops[v] && !err; i++) {
		size_t off = c->slice ? bench_rand(&x) % span : 0;

		c->last_off[v] = off;
		if (v == 0) {
			/* Empty the destination as zbl_substr_of replaces its dst. */
			evbuffer_drain(c->edst, evbuffer_get_length(c->edst));
			if (c->slice)
				err = ev_slice(c->s.ev, c->edst, off, SLICE_BYTES);
			else if (evbuffer_add_buffer_reference(c->edst, c->s.ev) < 0)
				err = -ENOMEM;
		} else if (c->slice) {
			err = zbl_substr_of(c->dst, c->s.bl, off, SLICE_BYTES);
		} else {
			zbl_clear(c->dst);
			err = zbl_append_list(c->dst, c->s.bl);
		}
	}
	*work = (double)c->ops[v];
	return err;
}

static int share_check(struct bench_row *row, int v, bool verify)
{
	struct share *c = row->ctx;
	size_t len = c->slice ? SLICE_BYTES : c->s.len;
	uint32_t want;

	if (!verify)
		return 0;
	want = bench_crc(0, c->s.flat + c->last_off[v], len);
	if (v == 0)
		return evbuffer_get_length(c->edst) == len && ev_crc(c->edst) == want ? 0 : -EILSEQ;
	return zbl_length(c->dst) == len && zbl_crc32c(c->dst, 0) == want ? 0 : -EILSEQ;
}

static int row_share(struct bench *b, bool slice)
{
	struct share c = { .slice = slice };
	struct bench_row *row;
	int ev, zbl, ret;
	size_t nsegs = b->quick ? 1024 : 16384;  /* the list shape; not scaled */

	if (slice) {
		c.ops[0] = bench_size(b, 4000, 2000);
		c.ops[1] = bench_size(b, 300000, 20000);
		row = bench_row_new(b, "slice", BENCH_OPS,
				    "take a %zu KiB window at a random offset of %zu segments of "
				    "4 KiB, sharing storage", SLICE_BYTES >> 10, nsegs);
	} else {
		c.ops[0] = bench_size(b, 500, 200);
		c.ops[1] = bench_size(b, 2000, 200);
		row = bench_row_new(b, "share", BENCH_OPS,
				    "share a whole list of %zu segments of 4 KiB with another",
				    nsegs);
	}
	if (!row)
		return -1;
	c.dst = zbl_new();
	c.edst = evbuffer_new();
	if (seglist_init(&c.s, nsegs) < 0 || !c.dst || !c.edst) {
		bench_fail(row, "cannot build the lists");
		ret = -1;
		goto out;
	}
	row->ctx = &c;
	if (slice)
		snprintf(row->note, sizeof(row->note), "zbl_substr_of vs evbuffer_ptr_set + "
			 "evbuffer_peek + evbuffer_add_reference per piece (evbuffer has no "
			 "window sharing; see ev_slice())");
	else
		snprintf(row->note, sizeof(row->note), "zbl_clear + zbl_append_list vs "
			 "evbuffer_drain + evbuffer_add_buffer_reference");
	ev = bench_add_variant(row, slice ? "evbuffer peek+add_reference" :
				     "evbuffer_add_buffer_reference", NULL, share_run, share_check);
	zbl = bench_add_variant(row, slice ? "zbl_substr_of" : "zbl_append_list", NULL,
				share_run, share_check);
	bench_add_target(row, zbl, ev, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
out:
	zbl_free(c.dst);
	if (c.edst)
		evbuffer_free(c.edst);
	seglist_fini(&c.s);
	return ret;
}

int bench_rows_mem(struct bench *b)
{
	int ret = 0;

	if (bench_selected(b, "appends")) {
		ret |= row_appends(b, false);
		ret |= row_appends(b, true);
	}
	if (bench_selected(b, "copyout"))
		ret |= row_copyout(b);
	if (bench_selected(b, "drain"))
		ret |= row_drain(b);
	if (bench_selected(b, "share"))
		ret |= row_share(b, false);
	if (bench_selected(b, "slice"))
		ret |= row_share(b, true);
	return ret;
}
