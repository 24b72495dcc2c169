/* SPDX-License-Identifier: MIT */
/*
 * Storage blocks: creation, reference counting, release, and materialization
 * of kernel-page blocks into user memory.
 */
#include <fcntl.h>
#include <stdlib.h>
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

struct zbl__block *zbl__block_new_inline(size_t cap)
{
	if (cap > SIZE_MAX - sizeof(struct zbl__block))
		return NULL;
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b) + cap);
	if (!b)
		return NULL;
	zbl__block_init(b, ZBL__BLOCK_INLINE, b->inline_data, cap, 0);
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
	return b;
}

/*
 * Memory for reading kernel pages into. Large copies are mapped with their
 * pages populated in one call: faulting a fresh megabyte in page by page
 * cost more than the copy itself (bench/bench_materialize).
 */
#define COPY_MMAP_BYTES_MIN ((size_t)128 * 1024)

static char *copy_alloc(size_t len)
{
	if (len < COPY_MMAP_BYTES_MIN)
		return zbl__sys_malloc(len ? len : 1);
	return zbl__sys_mmap_anon(len, MAP_POPULATE);
}

static void copy_free(char *p, size_t len)
{
	if (!p)
		return;
	if (len < COPY_MMAP_BYTES_MIN)
		free(p);
	else
		munmap(p, len);
}

static void block_release(struct zbl__block *b)
{
	char *data = atomic_load_explicit(&b->data, memory_order_relaxed);

	switch ((enum zbl__kind)b->kind) {
	case ZBL__BLOCK_INLINE:
		break;
	case ZBL__BLOCK_ALIGNED:
		free(data);
		break;
	case ZBL__BLOCK_REF:
		if (b->u.ref.release)
			b->u.ref.release(b->u.ref.ctx);
		break;
	case ZBL__BLOCK_FILE:
		copy_free(data, b->cap);
		close(b->u.k.fd);
		break;
	case ZBL__BLOCK_PIPE:
		copy_free(data, b->cap);
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
	data = copy_alloc(b->cap);
	if (!data) {
		pthread_mutex_unlock(lock);
		errno = ENOMEM;
		return NULL;
	}
	err = b->kind == ZBL__BLOCK_FILE ? zbl__file_read(b, data) : zbl__kpage_read_pipe(b, data);
	if (err < 0) {
		pthread_mutex_unlock(lock);
		copy_free(data, b->cap);
		errno = -err;
		return NULL;
	}
	atomic_store_explicit(&b->data, data, memory_order_release);
	pthread_mutex_unlock(lock);
	ZBL__STAT_ADD(bytes_materialized, copied);
	ZBL__STAT_ADD(materializations, 1);
	zbl__trace("materialize", copied);
	return data;
}
