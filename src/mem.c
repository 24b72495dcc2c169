/* SPDX-License-Identifier: MIT */
/*
 * Library memory for large copies: materialized kernel pages, big inline
 * blocks, the carriage of long lists. Layer 1 (see zbl_int.h): it calls only
 * the system.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zbl_int.h"

/*
 * Large library memory: materialized copies of kernel pages and big INLINE
 * blocks. Each is a mapping of its own with its pages populated in one call:
 * faulting a fresh megabyte in page by page cost more than the copy itself
 * (bench/experiments/materialize.c, bench appends/fresh), and from 2 MiB it is
 * placed on huge pages. Clearing fresh pages still costs about as much as the
 * copy, so released mappings are kept (up to COPY_CACHE_BYTES) and reused; a
 * reused mapping holds old bytes, but nobody reads bytes of it that the new
 * owner has not written. zbl_pool_flush returns them.
 */
#define COPY_MMAP_BYTES_MIN ((size_t)128 * 1024)
#define COPY_CACHE_SLOTS 64
#define COPY_CACHE_BYTES ((size_t)64 * 1024 * 1024)

struct mapping {
	void *p;
	size_t len;
};

/* Kept mappings, oldest first. */
static struct {
	pthread_mutex_t lock;
	size_t n, bytes;
	struct mapping slot[COPY_CACHE_SLOTS];
} copy_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Removes slot @i, keeping the order. Under the lock. */
static struct mapping copy_cache_remove(size_t i)
{
	struct mapping m = copy_cache.slot[i];

	copy_cache.bytes -= m.len;
	copy_cache.n--;
	memmove(&copy_cache.slot[i], &copy_cache.slot[i + 1],
		(copy_cache.n - i) * sizeof(copy_cache.slot[0]));
	return m;
}

static size_t copy_map_len(size_t len)
{
	return (len + ZBL__MAP_ROUND - 1) & ~(ZBL__MAP_ROUND - 1);
}

/* A cached mapping of at least @len bytes and at most a quarter more, or NULL. */
static void *copy_cache_take(size_t len, size_t *maplen)
{
	void *p = NULL;

	pthread_mutex_lock(&copy_cache.lock);
	for (size_t i = copy_cache.n; i-- > 0;) {
		size_t have = copy_cache.slot[i].len;
		if (have < len || have - len > len / 4)
			continue;
		p = copy_cache_remove(i).p;
		*maplen = have;
		break;
	}
	pthread_mutex_unlock(&copy_cache.lock);
	return p;
}

/*
 * Keeps a released mapping. The most recently released are the likeliest to
 * be wanted again (a workload that changed sizes wants the new ones), so a
 * full cache drops its oldest to make room.
 */
static bool copy_cache_give(void *p, size_t len)
{
	struct mapping old[COPY_CACHE_SLOTS];
	size_t nold = 0;

	if (len > COPY_CACHE_BYTES)
		return false;
	pthread_mutex_lock(&copy_cache.lock);
	while (copy_cache.n == COPY_CACHE_SLOTS || copy_cache.bytes + len > COPY_CACHE_BYTES)
		old[nold++] = copy_cache_remove(0);
	copy_cache.slot[copy_cache.n].p = p;
	copy_cache.slot[copy_cache.n++].len = len;
	copy_cache.bytes += len;
	pthread_mutex_unlock(&copy_cache.lock);
	for (size_t i = 0; i < nold; i++)
		munmap(old[i].p, old[i].len);
	return true;
}

void zbl__mem_cache_flush(void)
{
	pthread_mutex_lock(&copy_cache.lock);
	while (copy_cache.n) {
		copy_cache.n--;
		munmap(copy_cache.slot[copy_cache.n].p, copy_cache.slot[copy_cache.n].len);
	}
	copy_cache.bytes = 0;
	pthread_mutex_unlock(&copy_cache.lock);
}

#define HUGE_PAGE_BYTES ((size_t)2 << 20)
/* Mappings start on a page: the smallest page of x86_64 and arm64 alike. */
#define PAGE_BYTES ((size_t)4096)

/*
 * A fresh mapping of @len bytes (a multiple of the page size), populated.
 * From 2 MiB it starts on a huge page boundary (the kernel aligns only
 * lengths that are multiples of 2 MiB) and asks for huge pages; both are
 * advice, and where they are refused the pages are small.
 */
static void *map_fresh(size_t len)
{
	/* zbl__mem_alloc() bounds len by PTRDIFF_MAX: the span cannot wrap. */
	if (len < HUGE_PAGE_BYTES)
		return zbl__sys_mmap_anon(len, MAP_POPULATE);
	size_t span = len + HUGE_PAGE_BYTES;
	char *p = zbl__sys_mmap_anon(span, 0);
	if (!p)
		return NULL;
	char *a = (char *)(((uintptr_t)p + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + span > a + len)
		munmap(a + len, (size_t)(p + span - (a + len)));
	madvise(a, len, MADV_HUGEPAGE);
	madvise(a, len, MADV_POPULATE_WRITE);
	return a;
}

size_t zbl__mem_map_len(size_t len)
{
	return len < COPY_MMAP_BYTES_MIN ? 0 : copy_map_len(len);
}

/*
 * Memory for @len bytes, with *@tag for zbl__mem_free(): the mapping it is
 * part of (a cached one may be longer), or malloc memory. With @reused_only,
 * NULL rather than a fresh mapping (the caller has a cheaper way to get one).
 */
char *zbl__mem_alloc(size_t len, zbl__memtag_t *tag, bool reused_only)
{
	size_t maplen = 0;

	*tag = 0;
	if (len > PTRDIFF_MAX - ZBL__MAP_ROUND) {
		errno = ENOMEM;
		return NULL;
	}
	if (len < COPY_MMAP_BYTES_MIN)
		return zbl__sys_malloc(len ? len : 1);
	void *p = copy_cache_take(copy_map_len(len), &maplen);
	if (!p && !reused_only) {
		maplen = copy_map_len(len);
		p = map_fresh(maplen);
	}
	if (p)
		*tag = zbl__memtag_map(maplen, false);
	return p;
}

/*
 * Memory for @len bytes starting at a multiple of @align (a power of two),
 * with *@tag for zbl__mem_free(). Large pieces aligned to at most a page are
 * mappings (populated, kept for reuse) as zbl__mem_alloc() gives them: reads
 * and direct I/O into fresh memory would fault it in a page at a time.
 */
char *zbl__mem_alloc_aligned(size_t len, size_t align, zbl__memtag_t *tag)
{
	*tag = 0;
	if (len >= COPY_MMAP_BYTES_MIN && align <= PAGE_BYTES)
		return zbl__mem_alloc(len, tag, false);
	return zbl__sys_memalign(align < sizeof(void *) ? sizeof(void *) : align, len ? len : 1);
}

void zbl__mem_free(char *p, zbl__memtag_t tag)
{
	size_t maplen = zbl__memtag_len(tag);

	if (!p)
		return;
	/*
	 * A memfd's mapping is shared: after fork() parent and child would both
	 * reuse it (a block header in it would even share its refcount). Never kept.
	 */
	if (zbl__memtag_shared(tag))
		munmap(p, maplen);
	else if (!maplen)
		free(p);
	else if (!copy_cache_give(p, maplen))
		munmap(p, maplen);
}
