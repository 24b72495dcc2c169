/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the zbl test programs: assertions that print both values
 * (with errno names for negative results), builders for lists with a known
 * segment layout, and snapshots to check that a failed call changed nothing.
 *
 * Every test builds its inputs itself; nothing here keeps state between tests.
 */
#ifndef ZBL_TEST_H
#define ZBL_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>
#include <isa-l/crc.h>

#include <zbl.h>

/* Exit status that tells CTest a test program was skipped. */
#define ZBL_TEST_SKIP 77

static inline const char *zt_errname(long long v)
{
	const char *n;

	if (v >= 0)
		return "ok";
	n = strerrorname_np((int)-v);
	return n ? n : "?";
}

/*
 * Asserts that an int/ssize_t result equals the expected value, printing both
 * as signed numbers and, when negative, as errno names (-ERANGE, ...).
 */
#define assert_rc(expr, expected) do {                                        \
	long long zt_a_ = (long long)(expr);                                  \
	long long zt_b_ = (long long)(expected);                              \
	if (zt_a_ != zt_b_)                                                   \
		fail_msg("%s returned %lld (%s), expected %lld (%s)", #expr,  \
			 zt_a_, zt_errname(zt_a_), zt_b_, zt_errname(zt_b_)); \
} while (0)

/* Asserts two sizes are equal, printing both in decimal. */
#define assert_size_equal(a, b) do {                                          \
	unsigned long long zt_a_ = (unsigned long long)(a);                   \
	unsigned long long zt_b_ = (unsigned long long)(b);                   \
	if (zt_a_ != zt_b_)                                                   \
		fail_msg("%s == %llu, expected %s == %llu", #a, zt_a_, #b,    \
			 zt_b_);                                              \
} while (0)

/* Asserts two 32-bit CRCs are equal, printing both in hex. */
#define assert_crc_equal(a, b) do {                                           \
	uint32_t zt_a_ = (uint32_t)(a), zt_b_ = (uint32_t)(b);                \
	if (zt_a_ != zt_b_)                                                   \
		fail_msg("%s == 0x%08x, expected %s == 0x%08x", #a, zt_a_,    \
			 #b, zt_b_);                                          \
} while (0)

/* Returns a malloc'ed flat copy of the whole list (never NULL). */
static inline unsigned char *zt_flat(const zbl_t *bl)
{
	size_t len = zbl_length(bl);
	unsigned char *p = malloc(len ? len : 1);
	int rc;

	assert_non_null(p);
	rc = zbl_copy_out(bl, 0, len, p);
	if (rc != 0)
		fail_msg("zbl_copy_out of the whole list returned %d (%s)", rc,
			 zt_errname(rc));
	return p;
}

/* Asserts the list holds exactly @len bytes equal to @data; reports the first difference. */
#define assert_list_bytes(bl, data, len) \
	zt_assert_list_bytes((bl), (data), (len), #bl, __FILE__, __LINE__)

static inline void zt_assert_list_bytes(const zbl_t *bl, const void *data, size_t len,
					const char *name, const char *file, int line)
{
	size_t have = zbl_length(bl);
	unsigned char *flat;
	const unsigned char *want = data;

	if (have != len)
		fail_msg("%s:%d: zbl_length(%s) == %zu, expected %zu", file, line, name,
			 have, len);
	flat = zt_flat(bl);
	for (size_t i = 0; i < len; i++) {
		if (flat[i] != want[i]) {
			unsigned got = flat[i];

			free(flat);
			fail_msg("%s:%d: %s differs at byte %zu: 0x%02x, expected 0x%02x",
				 file, line, name, i, got, want[i]);
		}
	}
	free(flat);
}

/* Asserts the list's contents equal the NUL-terminated string @s (without the NUL). */
#define assert_list_str(bl, s) assert_list_bytes((bl), (s), strlen(s))

static inline zbl_t *zt_new(void)
{
	zbl_t *bl = zbl_new();

	assert_non_null(bl);
	return bl;
}

/*
 * Builds a list with one segment per string, each referring to the string's
 * own memory (zbl_append_ref, no release), so the layout is known exactly.
 * The strings must outlive the list (literals do).
 */
static inline zbl_t *zt_list_of(const char *const *parts, size_t n)
{
	zbl_t *bl = zt_new();

	for (size_t i = 0; i < n; i++)
		assert_rc(zbl_append_ref(bl, parts[i], strlen(parts[i]), NULL, NULL), 0);
	return bl;
}

#define ZT_LIST(...) zt_list_of((const char *const[]){ __VA_ARGS__ }, \
	sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* Release callback that counts its calls in an atomic_int passed as ctx. */
static inline void zt_count_release(void *ctx)
{
	atomic_fetch_add((atomic_int *)ctx, 1);
}

/*
 * Collects the start pointer and length of every contiguous run the iterator
 * reports (one per segment). Returns the number of runs; fills at most @max.
 */
static inline size_t zt_runs(const zbl_t *bl, const char **ptrs, size_t *lens, size_t max)
{
	zbl_iter_t it;
	const char *p;
	size_t n = 0, got;

	assert_rc(zbl_iter_init(&it, bl, 0), 0);
	while ((got = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)) > 0) {
		if (n < max) {
			if (ptrs)
				ptrs[n] = p;
			if (lens)
				lens[n] = got;
		}
		n++;
	}
	return n;
}

/* What a list looked like, to check that a failed call left it unchanged. */
struct zt_snap {
	size_t len;
	size_t segs;
	unsigned char *bytes;
	size_t nruns;
	const char *ptrs[64];
	size_t lens[64];
};

static inline void zt_snap_take(struct zt_snap *s, const zbl_t *bl)
{
	s->len = zbl_length(bl);
	s->segs = zbl_segments(bl);
	s->bytes = zt_flat(bl);
	s->nruns = zt_runs(bl, s->ptrs, s->lens, 64);
}

#define assert_unchanged(s, bl) zt_assert_unchanged((s), (bl), #bl, __FILE__, __LINE__)

/* Asserts that @bl still has the snapshot's bytes and segment layout; frees the snapshot. */
static inline void zt_assert_unchanged(struct zt_snap *s, const zbl_t *bl, const char *name,
				       const char *file, int line)
{
	const char *ptrs[64];
	size_t lens[64];
	size_t nruns;

	if (zbl_length(bl) != s->len)
		fail_msg("%s:%d: %s length changed from %zu to %zu", file, line, name,
			 s->len, zbl_length(bl));
	if (zbl_segments(bl) != s->segs)
		fail_msg("%s:%d: %s segment count changed from %zu to %zu", file, line,
			 name, s->segs, zbl_segments(bl));
	zt_assert_list_bytes(bl, s->bytes, s->len, name, file, line);
	nruns = zt_runs(bl, ptrs, lens, 64);
	if (nruns != s->nruns)
		fail_msg("%s:%d: %s run count changed from %zu to %zu", file, line, name,
			 s->nruns, nruns);
	for (size_t i = 0; i < nruns && i < 64; i++)
		if (ptrs[i] != s->ptrs[i] || lens[i] != s->lens[i])
			fail_msg("%s:%d: %s run %zu moved from (%p, %zu) to (%p, %zu)", file,
				 line, name, i, (const void *)s->ptrs[i], s->lens[i],
				 (const void *)ptrs[i], lens[i]);
	free(s->bytes);
	s->bytes = NULL;
}

/* splitmix64: small, fast, reproducible pseudo-random numbers for test inputs. */
static inline uint64_t zt_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline void zt_fill_random(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t st = seed;

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(zt_rand(&st) >> 56);
}

/* Returns @len malloc'ed bytes filled by zt_fill_random() from @seed (never NULL). */
static inline unsigned char *zt_random_bytes(size_t len, uint64_t seed)
{
	unsigned char *p = malloc(len ? len : 1);

	assert_non_null(p);
	zt_fill_random(p, len, seed);
	return p;
}

/* Reads exactly @len bytes from @fd (looping over short reads); fails the test on EOF/error. */
static inline void zt_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("read returned %zd (%s) with %zu bytes still expected", r,
				 r < 0 ? strerror(errno) : "EOF", len);
		p += r;
		len -= (size_t)r;
	}
}

/* Writes all of @len bytes to @fd; fails the test on error. */
static inline void zt_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail_msg("write returned %zd (%s)", w, strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

/*
 * Creates an unlinked empty temporary regular file and returns a descriptor
 * open read-write, close-on-exec, with the extra open(2) @flags (O_APPEND...).
 */
static inline int zt_temp_fd(int flags)
{
	char path[] = "/tmp/zbl-test-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC | flags);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/*
 * Creates an unlinked temporary regular file holding @len bytes of @data and
 * returns a read-write descriptor positioned at offset 0.
 */
static inline int zt_temp_file(const void *data, size_t len)
{
	int fd = zt_temp_fd(0);

	zt_write_full(fd, data, len);
	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	return fd;
}

/* Reads the whole regular file behind @fd from offset 0 with pread (position untouched). */
static inline unsigned char *zt_file_contents(int fd, size_t *len_out)
{
	struct stat st;
	unsigned char *buf;
	size_t done = 0;

	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	while (done < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);

		assert_true(r > 0);
		done += (size_t)r;
	}
	*len_out = done;
	return buf;
}

/* Asserts the regular file behind @fd holds exactly @len bytes equal to @data. */
#define assert_file_bytes(fd, data, len) \
	zt_assert_file_bytes((fd), (data), (len), #fd, __FILE__, __LINE__)

static inline void zt_assert_file_bytes(int fd, const void *data, size_t len, const char *name,
					const char *file, int line)
{
	size_t have;
	unsigned char *got = zt_file_contents(fd, &have);
	const unsigned char *want = data;

	if (have != len) {
		free(got);
		fail_msg("%s:%d: the file behind %s holds %zu bytes, expected %zu", file, line,
			 name, have, len);
	}
	if (len && memcmp(got, want, len) != 0) {
		for (size_t i = 0; i < len; i++) {
			if (got[i] != want[i]) {
				unsigned g = got[i];

				free(got);
				fail_msg("%s:%d: the file behind %s differs at byte %zu of %zu: "
					 "0x%02x, expected 0x%02x", file, line, name, i, len, g,
					 want[i]);
			}
		}
	}
	free(got);
}

/*
 * The reference CRC-32C (ISA-L's crc32_iscsi, Ceph's convention: no
 * inversion) of @len bytes at @data, in pieces small enough for its int
 * length. Uses no cmocka assertion, so worker threads may call it.
 */
static inline uint32_t zt_ref_crc32c(const void *data, size_t len, uint32_t seed)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		seed = crc32_iscsi((unsigned char *)p, (int)n, seed);
		p += n;
		len -= n;
	}
	return seed;
}

/* Returns what zbl_hexdump(bl) writes, as a malloc'ed NUL-terminated string. */
static inline char *zt_hexdump_str(const zbl_t *bl)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	assert_rc(zbl_hexdump(bl, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

/*
 * Appends @len bytes of @data to @bl in pieces of 1 to @maxpiece bytes, each
 * copied (zbl_append) or borrowed (zbl_append_ref) at random: sizes and
 * choices come from *@rs, which moves on by two numbers a piece.
 */
static inline void zt_append_random_pieces(zbl_t *bl, const void *data, size_t len,
					   size_t maxpiece, uint64_t *rs)
{
	const unsigned char *p = data;

	for (size_t pos = 0; pos < len;) {
		size_t n = 1 + zt_rand(rs) % maxpiece;

		if (n > len - pos)
			n = len - pos;
		if (zt_rand(rs) & 1)
			assert_rc(zbl_append(bl, p + pos, n), 0);
		else
			assert_rc(zbl_append_ref(bl, p + pos, n, NULL, NULL), 0);
		pos += n;
	}
}

static inline bool zt_is_pow2(size_t a)
{
	return a && !(a & (a - 1));
}

#endif /* ZBL_TEST_H */
