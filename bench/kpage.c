/* SPDX-License-Identifier: MIT */
/*
 * Rows about reading data:
 *   crc32c       zbl_crc32c of a long list against ISA-L on one flat buffer
 *   materialize  pipe data read into memory through zbl against read()
 */
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

static void no_release(void *ctx)
{
	(void)ctx;
}

/* ------------------------------------------------------------------------ */
/* crc32c */

struct crc {
	size_t len;
	unsigned char *flat;
	zbl_t *bl;
	int reps;
	uint32_t want, got;
};

static int crc_run(struct bench_row *row, int v, double *work)
{
	struct crc *c = row->ctx;
	uint32_t crc = 0;

	for (int i = 0; i < c->reps; i++) {
		switch (v) {
		case 0:
			crc = bench_crc(0, c->flat, c->len);
			break;
		case 1:
			/* Cold: forget the cached per-block CRCs (a flag per block,
			 * O(segments), timed with the rest). */
			zbl_invalidate_crc(c->bl);
			crc = zbl_crc32c(c->bl, 0);
			break;
		default:
			crc = zbl_crc32c(c->bl, 0);
			break;
		}
	}
	c->got = crc;
	*work = (double)c->len * c->reps;
	return 0;
}

static int crc_check(struct bench_row *row, int v, bool verify)
{
	struct crc *c = row->ctx;

	(void)v;
	(void)verify;
	return c->got == c->want ? 0 : -EILSEQ;
}

static int row_crc(struct bench *b)
{
	struct crc c = { .len = bench_size(b, (size_t)256 << 20, (size_t)16 << 20) };
	struct bench_row *row;
	uint64_t s = 31337;
	int isal, cold, ret = -1;

	c.reps = b->quick ? 1 : 4;
	row = bench_row_new(b, "crc32c", BENCH_BYTES,
			    "crc32c of %zu MiB, x%d per round: one flat buffer vs a list of "
			    "4 KiB..1 MiB segments over the same memory", c.len >> 20, c.reps);
	if (!row)
		return -1;
	c.flat = malloc(c.len);
	c.bl = zbl_new();
	if (!c.flat || !c.bl) {
		bench_fail(row, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c.len; i += BENCH_PATTERN_BYTES)
		memcpy(c.flat + i, bench_pattern(),
		       c.len - i < BENCH_PATTERN_BYTES ? c.len - i : BENCH_PATTERN_BYTES);
	/* Segment sizes spread evenly on a log scale from 4 KiB to 1 MiB. */
	for (size_t off = 0; off < c.len;) {
		size_t n = (size_t)4096 << (bench_rand(&s) % 9);

		n += bench_rand(&s) % n;
		if (n > (size_t)1 << 20)
			n = (size_t)1 << 20;
		if (n > c.len - off)
			n = c.len - off;
		if (zbl_append_ref(c.bl, c.flat + off, n, no_release, NULL) < 0) {
			bench_fail(row, "out of memory");
			goto out;
		}
		off += n;
	}
	c.want = bench_crc(0, c.flat, c.len);
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note), "%zu segments; cold = zbl_invalidate_crc before "
		 "each zbl_crc32c; cached = the per-block CRC cache at work (info)",
		 zbl_segments(c.bl));
	isal = bench_add_variant(row, "ISA-L crc32_iscsi flat", NULL, crc_run, crc_check);
	cold = bench_add_variant(row, "zbl_crc32c cold", NULL, crc_run, crc_check);
	int cached = bench_add_variant(row, "zbl_crc32c cached", NULL, crc_run, crc_check);
	bench_add_target(row, cold, isal, BENCH_THRU_GE, 0.95);
	bench_add_target(row, cached, isal, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
out:
	zbl_free(c.bl);
	free(c.flat);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* materialize */

#define MAX_PIPES 1024

struct mat {
	size_t total;            /* bytes per round */
	size_t piece;            /* bytes per source pipe */
	size_t npipes;
	int fds[MAX_PIPES];      /* read ends of the filled source pipes */
	zbl_t *bl;
	char *dst;
	uint32_t want;
	const char *cstr;
};

static void mat_close(struct mat *c)
{
	for (size_t i = 0; i < c->npipes; i++)
		if (c->fds[i] >= 0) {
			close(c->fds[i]);
			c->fds[i] = -1;
		}
}

/* Fills one source pipe per piece with the pattern (the kernel copies it in). */
static int mat_fill(struct mat *c)
{
	const unsigned char *pat = bench_pattern();

	for (size_t i = 0; i < c->npipes; i++) {
		int p[2], err;

		if (bench_pipe(p, c->piece) < (int)c->piece) {
			close(p[0]);
			close(p[1]);
			return -ENOSPC;
		}
		err = bench_write_all(p[1], pat + (i * c->piece) % BENCH_PATTERN_BYTES, c->piece);
		close(p[1]);
		if (err < 0) {
			close(p[0]);
			return err;
		}
		c->fds[i] = p[0];
	}
	return 0;
}

static int mat_take(struct mat *c)
{
	for (size_t i = 0; i < c->npipes; i++) {
		ssize_t r = zbl_splice_from(c->bl, c->fds[i], NULL, c->piece, 0);

		if (r != (ssize_t)c->piece)
			return r < 0 ? (int)r : -EIO;
	}
	return 0;
}

static int mat_prep(struct bench_row *row, int v)
{
	struct mat *c = row->ctx;
	int err = mat_fill(c);

	if (err < 0)
		return err;
	c->bl = zbl_new();
	if (!c->bl)
		return -ENOMEM;
	/* The "copy_out only" variant takes the pages before the clock starts. */
	return v == 2 ? mat_take(c) : 0;
}

static int mat_run(struct bench_row *row, int v, double *work)
{
	struct mat *c = row->ctx;
	int err = 0;

	switch (v) {
	case 0:
		for (size_t i = 0; i < c->npipes; i++)
			for (size_t got = 0; got < c->piece;) {
				ssize_t n = read(c->fds[i], c->dst + i * c->piece + got,
						 c->piece - got);
				if (n <= 0)
					return n < 0 ? -errno : -EIO;
				got += (size_t)n;
			}
		break;
	case 1:
		err = mat_take(c);
		if (!err)
			err = zbl_copy_out(c->bl, 0, c->total, c->dst);
		break;
	case 2:
		err = zbl_copy_out(c->bl, 0, c->total, c->dst);
		break;
	case 3:
		err = mat_take(c);
		if (!err && !(c->cstr = zbl_c_str(c->bl)))
			err = -errno;
		break;
	default: {
		/* Each block is read into memory once and seen in place, as a parser would. */
		zbl_iter_t it;
		const char *p;
		err = mat_take(c);
		if (!err)
			err = zbl_iter_init(&it, c->bl, 0);
		while (!err && zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p))
			;
		break;
	}
	}
	*work = (double)c->total;
	return err;
}

static int mat_check(struct bench_row *row, int v, bool verify)
{
	struct mat *c = row->ctx;
	int ret = 0;

	if (verify && v == 4) {
		zbl_iter_t it;
		const char *p;
		uint32_t crc = 0;
		size_t n;
		if (zbl_iter_init(&it, c->bl, 0) < 0)
			ret = -EIO;
		while (!ret && (n = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)))
			crc = bench_crc(crc, p, n);
		if (!ret && crc != c->want)
			ret = -EILSEQ;
	} else if (verify) {
		const void *p = v == 3 ? (const void *)c->cstr : c->dst;

		if (!p || bench_crc(0, p, c->total) != c->want)
			ret = -EILSEQ;
	}
	memset(c->dst, 0, c->total);
	zbl_free(c->bl);
	c->bl = NULL;
	c->cstr = NULL;
	mat_close(c);
	return ret;
}

static int row_materialize(struct bench *b)
{
	struct mat c = { .total = bench_size(b, (size_t)64 << 20, (size_t)8 << 20) };
	struct bench_row *row;
	int rd, all, ret = -1;

	c.piece = (size_t)1 << 20;
	c.npipes = c.total / c.piece;
	if (c.npipes > MAX_PIPES)
		c.npipes = MAX_PIPES;
	if (!c.npipes)
		c.npipes = 1;
	c.total = c.npipes * c.piece;
	for (size_t i = 0; i < MAX_PIPES; i++)
		c.fds[i] = -1;
	row = bench_row_new(b, "materialize", BENCH_BYTES,
			    "read %zu MiB of pipe data (%zu pipes of 1 MiB) into memory",
			    c.total >> 20, c.npipes);
	if (!row)
		return -1;
	/* Pre-faulted, so no variant pays for the first touch of dst. */
	c.dst = mmap(NULL, c.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		     -1, 0);
	if (c.dst == MAP_FAILED) {
		bench_fail(row, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c.npipes; i++)
		c.want = bench_crc(c.want, bench_pattern() + (i * c.piece) % BENCH_PATTERN_BYTES,
				   c.piece);
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note), "target: zbl_splice_from every pipe, then read "
		 "every block in place with an iterator, against read() of the same pipes into "
		 "a warm buffer; copy_out also copies into the caller's buffer after caching "
		 "each block (2 copies, info); 'copy_out only' takes the pages untimed (info)");
	rd = bench_add_variant(row, "read() from the pipes", mat_prep, mat_run, mat_check);
	all = bench_add_variant(row, "zbl splice_from+copy_out", mat_prep, mat_run, mat_check);
	int only = bench_add_variant(row, "zbl copy_out only", mat_prep, mat_run, mat_check);
	int cstr = bench_add_variant(row, "zbl splice_from+c_str", mat_prep, mat_run, mat_check);
	int iter = bench_add_variant(row, "zbl splice_from+iterate", mat_prep, mat_run, mat_check);
	bench_add_target(row, iter, rd, BENCH_TIME_LE, 1.3);
	bench_add_target(row, all, rd, BENCH_INFO_TIME, 0);
	bench_add_target(row, only, rd, BENCH_INFO_TIME, 0);
	bench_add_target(row, cstr, rd, BENCH_INFO_TIME, 0);
	ret = bench_run_row(b, row);
	if (row->failed) {
		zbl_free(c.bl);
		mat_close(&c);
	}
	row->ctx = NULL;
	munmap(c.dst, c.total);
	return ret;
}

int bench_rows_kpage(struct bench *b)
{
	int ret = 0;

	if (bench_selected(b, "crc32c"))
		ret |= row_crc(b);
	if (bench_selected(b, "materialize"))
		ret |= row_materialize(b);
	return ret;
}
