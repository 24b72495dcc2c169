/* SPDX-License-Identifier: MIT */
/*
 * Storage blocks: creation, reference counting, release, and materialization
 * of kernel-page blocks into user memory.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zbl_int.h"

void zbl__block_init(struct zbl__block *b, enum zbl__kind kind, char *data, size_t cap,
		       size_t fill)
{
	atomic_init(&b->refs, 1);
	b->kind = (uint8_t)kind;
	atomic_init(&b->data, data);
	b->cap = cap;
	atomic_init(&b->fill, fill);
	atomic_flag_clear(&b->crc.lock);
	b->crc.valid = false;
}

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
#define COPY_MMAP_ROUND ((size_t)64 * 1024)
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
	return (len + COPY_MMAP_ROUND - 1) & ~(COPY_MMAP_ROUND - 1);
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

void zbl__copy_cache_flush(void)
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

/*
 * A fresh mapping of @len bytes (a multiple of the page size), populated.
 * From 2 MiB it starts on a huge page boundary (the kernel aligns only
 * lengths that are multiples of 2 MiB) and asks for huge pages; both are
 * advice, and where they are refused the pages are small.
 */
static void *map_fresh(size_t len)
{
	/* zbl__copy_alloc() bounds len by PTRDIFF_MAX: the span cannot wrap. */
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

size_t zbl__copy_map_len(size_t len)
{
	return len < COPY_MMAP_BYTES_MIN ? 0 : copy_map_len(len);
}

/*
 * Memory for @len bytes; *maplen is the length of the mapping it is part of
 * (a cached one may be longer), or 0 for malloc memory. With @reused_only,
 * NULL rather than a fresh mapping (the caller has a cheaper way to get one).
 */
char *zbl__copy_alloc(size_t len, size_t *maplen, bool reused_only)
{
	*maplen = 0;
	if (len > PTRDIFF_MAX - COPY_MMAP_ROUND) {
		errno = ENOMEM;
		return NULL;
	}
	if (len < COPY_MMAP_BYTES_MIN)
		return zbl__sys_malloc(len ? len : 1);
	void *p = copy_cache_take(copy_map_len(len), maplen);
	if (p || reused_only)
		return p;
	*maplen = copy_map_len(len);
	return map_fresh(*maplen);
}

void zbl__copy_free(char *p, size_t maplen)
{
	if (!p)
		return;
	/*
	 * A memfd's mapping is shared: after fork() parent and child would both
	 * reuse it (a block header in it would even share its refcount). Never kept.
	 */
	if (maplen & ZBL__MAP_SHARED)
		munmap(p, maplen & ~ZBL__MAP_SHARED);
	else if (!maplen)
		free(p);
	else if (!copy_cache_give(p, maplen))
		munmap(p, maplen);
}

/*
 * A block with its bytes after the header. Large ones (big appends, the
 * carriage of a long list, c_str and rebuild) are mappings of their own from
 * zbl__copy_alloc(): populated in one call, on huge pages from 2 MiB, and kept
 * for reuse when released. Faulting fresh memory in 4 KiB at a time cost more
 * than filling it (bench: appends/fresh, c_str).
 */
struct zbl__block *zbl__block_new_inline(size_t cap)
{
	size_t maplen;

	if (cap > PTRDIFF_MAX - sizeof(struct zbl__block) - COPY_MMAP_ROUND)
		return NULL;
	struct zbl__block *b = (struct zbl__block *)zbl__copy_alloc(sizeof(*b) + cap, &maplen,
								    false);
	if (!b)
		return NULL;
	zbl__block_init(b, ZBL__BLOCK_INLINE, b->inline_data, cap, 0);
	b->u.map_len = maplen;
	return b;
}

struct zbl__block *zbl__block_new_aligned(size_t cap, size_t align)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));
	void *mem = NULL;

	if (!b)
		return NULL;
	if (align < sizeof(void *))
		align = sizeof(void *);
	mem = zbl__sys_memalign(align, cap ? cap : 1);
	if (!mem) {
		free(b);
		return NULL;
	}
	zbl__block_init(b, ZBL__BLOCK_ALIGNED, mem, cap, 0);
	return b;
}

struct zbl__block *zbl__block_new_ref(const void *data, size_t len,
				      void (*release)(void *), void *ctx)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));

	if (!b)
		return NULL;
	zbl__block_init(b, ZBL__BLOCK_REF, (char *)data, len, len);
	b->u.ref.release = release;
	b->u.ref.ctx = ctx;
	return b;
}

struct zbl__block *zbl__block_new_file(int fd, int64_t off, size_t len)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));

	if (!b)
		return NULL;
	zbl__block_init(b, ZBL__BLOCK_FILE, NULL, len, len);
	b->u.k.fd = fd;
	b->u.k.file_off = off;
	b->u.k.copy_len = 0;
	return b;
}

static void block_release(struct zbl__block *b)
{
	char *data = atomic_load_explicit(&b->data, memory_order_relaxed);

	switch ((enum zbl__kind)b->kind) {
	case ZBL__BLOCK_INLINE:
		zbl__copy_free((char *)b, b->u.map_len);
		return;
	case ZBL__BLOCK_ALIGNED:
		free(data);
		break;
	case ZBL__BLOCK_REF:
		if (b->u.ref.release)
			b->u.ref.release(b->u.ref.ctx);
		break;
	case ZBL__BLOCK_FILE:
		zbl__copy_free(data, b->u.k.copy_len);
		zbl__sys_close(b->u.k.fd);
		break;
	case ZBL__BLOCK_PIPE:
		zbl__copy_free(data, b->u.k.copy_len);
		zbl__pipe_put(&b->u.k.pipe, b->cap - b->u.k.head);
		break;
	}
	free(b);
}

void zbl__block_put(struct zbl__block *b)
{
	/*
	 * acq_rel: every other holder's use of the block happens before it is
	 * freed (an acquire fence after a release decrement would do, but
	 * ThreadSanitizer does not model fences).
	 */
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		block_release(b);
}

/*
 * Kernel-page blocks may be shared by lists in different threads; the first
 * reader copies the bytes into memory under a lock so that each block is
 * copied at most once. Locks are striped by block address to avoid a mutex
 * per block.
 */
#define MATERIALIZE_LOCKS 64
static pthread_mutex_t materialize_lock[MATERIALIZE_LOCKS] = {
	[0 ... MATERIALIZE_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER
};

/*
 * A shared pipe block's pipe is only ever duplicated (tee), which the kernel
 * makes safe between threads, except when no scratch pipe can be had and a
 * reader must empty the pipe into memory (kpage.c). Those two exclude each
 * other with these locks: shared for duplicating, exclusive for emptying.
 * Nothing blocks while holding one (our pipes are non-blocking).
 */
static pthread_rwlock_t pipe_lock[MATERIALIZE_LOCKS] = {
	[0 ... MATERIALIZE_LOCKS - 1] = PTHREAD_RWLOCK_INITIALIZER
};

static pthread_rwlock_t *pipe_lock_of(const struct zbl__block *b)
{
	return &pipe_lock[((uintptr_t)b >> 6) % MATERIALIZE_LOCKS];
}

void zbl__pipe_lock(const struct zbl__block *b, bool exclusive)
{
	if (exclusive)
		pthread_rwlock_wrlock(pipe_lock_of(b));
	else
		pthread_rwlock_rdlock(pipe_lock_of(b));
}

void zbl__pipe_unlock(const struct zbl__block *b)
{
	pthread_rwlock_unlock(pipe_lock_of(b));
}

const char *zbl__block_materialize(struct zbl__block *b)
{
	pthread_mutex_t *lock = &materialize_lock[((uintptr_t)b >> 6) % MATERIALIZE_LOCKS];
	char *data;
	int err;

	pthread_mutex_lock(lock);
	data = atomic_load_explicit(&b->data, memory_order_acquire);
	if (data) {
		pthread_mutex_unlock(lock);
		return data;
	}
	/* A drained pipe block no longer holds its first head bytes: they are not copied. */
	size_t copied = b->kind == ZBL__BLOCK_PIPE ? b->cap - b->u.k.head : b->cap;
	size_t maplen;
	if (b->kind == ZBL__BLOCK_PIPE) {
		err = zbl__kpage_materialize(b, &data, &maplen);
	} else {
		data = zbl__copy_alloc(b->cap, &maplen, false);
		err = data ? zbl__file_read(b, data) : -ENOMEM;
	}
	if (err < 0) {
		pthread_mutex_unlock(lock);
		zbl__copy_free(data, maplen);
		errno = -err;
		return NULL;
	}
	b->u.k.copy_len = maplen;
	atomic_store_explicit(&b->data, data, memory_order_release);
	pthread_mutex_unlock(lock);
	ZBL__STAT_ADD(bytes_materialized, copied);
	ZBL__STAT_ADD(materializations, 1);
	zbl__trace("materialize", copied);
	return data;
}
