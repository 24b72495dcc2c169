/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C with ISA-L's crc32_iscsi (Ceph's convention: no inversion), and the
 * per-block cache of the CRC of a segment's range.
 *
 * The cache holds, per block, the CRC of one range for the seed it was
 * computed with (as Ceph's buffer::raw does), so a miss costs one pass over
 * the bytes and nothing more. The CRC register is linear in its seed:
 * crc(s1, d) ^ crc(s2, d) = crc(s1 ^ s2, zeros(len(d))), and running a
 * register over n zero bytes multiplies it by x^(8n) modulo the polynomial.
 * So a cached value serves any other seed after one multiplication, computed
 * in O(log n) steps from a table of x^(2^k).
 */
#include <isa-l/crc.h>
#include <limits.h>

#include "zbl_int.h"

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

/* Smallest segment whose CRC is cached; below this recomputing is cheaper than the lock. */
#define CRC_CACHE_MIN_BYTES ((size_t)4096)

/* crc32_iscsi takes an int length. */
#define CRC_CHUNK_BYTES ((size_t)1 << 30)

/* a * b modulo the polynomial, in reflected bit order (bit 31 is x^0). */
static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	while (a) {
		if (a & m) {
			p ^= b;
			a &= ~m;
		}
		m >>= 1;
		b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return p;
}

/* x^(2^k) modulo the polynomial, for k = 0..63. */
static uint32_t x2k[64];
static pthread_once_t x2k_once = PTHREAD_ONCE_INIT;

static void x2k_init(void)
{
	x2k[0] = 1u << 30; /* x^1 */
	for (int k = 1; k < 64; k++)
		x2k[k] = gf_mul(x2k[k - 1], x2k[k - 1]);
}

/* The register @crc after running over @n zero bytes. */
static uint32_t crc_shift_zeros(uint32_t crc, size_t n)
{
	uint32_t p = 1u << 31; /* x^0 */
	int k = 3;             /* n bytes are 8n = n << 3 bits */

	if (!crc || !n)
		return crc;
	pthread_once(&x2k_once, x2k_init);
	for (uint64_t m = n; m; m >>= 1, k++)
		if (m & 1)
			p = gf_mul(x2k[k & 63], p);
	return gf_mul(p, crc);
}

static uint32_t crc_mem(uint32_t crc, const char *p, size_t len)
{
	while (len) {
		size_t n = len < CRC_CHUNK_BYTES ? len : CRC_CHUNK_BYTES;
		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return crc;
}

static void cache_lock(struct zbl__crc_cache *c)
{
	while (atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire))
		__builtin_ia32_pause();
}

static void cache_unlock(struct zbl__crc_cache *c)
{
	atomic_flag_clear_explicit(&c->lock, memory_order_release);
}

uint32_t zbl__crc32c_block(struct zbl__block *b, size_t off, size_t len, uint32_t crc, int *err)
{
	const char *d = zbl__block_data(b);
	struct zbl__crc_cache *c = &b->crc;
	uint32_t seed, out;
	bool hit;

	if (!d) {
		*err = errno ? errno : EIO;
		return crc;
	}
	if (len < CRC_CACHE_MIN_BYTES)
		return crc_mem(crc, d + off, len);
	cache_lock(c);
	hit = c->valid && c->off == off && c->len == len;
	seed = c->seed;
	out = c->crc;
	cache_unlock(c);
	if (hit)
		return out ^ crc_shift_zeros(seed ^ crc, len);
	out = crc_mem(crc, d + off, len);
	cache_lock(c);
	c->valid = true;
	c->off = off;
	c->len = len;
	c->seed = crc;
	c->crc = out;
	cache_unlock(c);
	return out;
}

uint32_t zbl_crc32c(const zbl_t *bl, uint32_t crc)
{
	int err = 0;

	errno = 0;
	if (!bl)
		return crc;
	for (size_t i = 0; i < bl->count && !err; i++) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		crc = zbl__crc32c_block(s->b, s->off, s->len, crc, &err);
	}
	errno = err;
	return crc;
}

void zbl_invalidate_crc(zbl_t *bl)
{
	if (!bl)
		return;
	for (size_t i = 0; i < bl->count; i++) {
		struct zbl__crc_cache *c = &zbl__seg_at(bl, i)->b->crc;
		cache_lock(c);
		c->valid = false;
		cache_unlock(c);
	}
}
