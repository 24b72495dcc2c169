/* SPDX-License-Identifier: MIT */
/*
 * Blocks, whatever their kind: reference counting, release, materializing a
 * kernel block's bytes into memory once, and writing a window of a kernel
 * block out. Layer 2 (see zbl_int.h): it reaches the kinds only through
 * struct zbl__kind, and the lists call it.
 */
#include <sys/uio.h>

#include "zbl_int.h"

void zbl__block_put(struct zbl__block *b)
{
	/*
	 * acq_rel: every other holder's use of the block happens before it is
	 * freed (an acquire fence after a release decrement would do, but
	 * ThreadSanitizer does not model fences).
	 */
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		b->kind->release(b);
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
	zbl__memtag_t tag = 0;
	size_t copied = 0;
	char *data;
	int err;

	pthread_mutex_lock(lock);
	data = atomic_load_explicit(&b->data, memory_order_acquire);
	if (data) {
		pthread_mutex_unlock(lock);
		return data;
	}
	err = b->kind->materialize(b, &data, &tag, &copied);
	if (err < 0) {
		pthread_mutex_unlock(lock);
		errno = -err;
		return NULL;
	}
	b->u.k.copy_tag = tag;
	atomic_store_explicit(&b->data, data, memory_order_release);
	pthread_mutex_unlock(lock);
	ZBL__STAT_ADD(bytes_materialized, copied);
	ZBL__STAT_ADD(materializations, 1);
	zbl__trace("materialize", copied);
	return data;
}

/* Writes from the block's memory copy: the fallback when the kernel cannot move the pages. */
static ssize_t write_from_memory(struct zbl__seg *s, size_t skip, size_t len, int fd,
				 int64_t *off)
{
	const char *d = zbl__seg_data(s);
	struct iovec iov;
	ssize_t r;

	if (!d)
		return -errno;
	iov = (struct iovec){ (void *)(d + skip), len };
	r = zbl__write_iov(fd, off, &iov, 1, -1);
	if (r > 0) {
		ZBL__STAT_ADD(bytes_copied_out, r);
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: write of kernel pages from memory", (size_t)r);
	}
	return r;
}

ssize_t zbl__block_write(struct zbl__seg *s, size_t skip, size_t len, int fd, int64_t *off,
			 bool drain, unsigned how)
{
	ssize_t r = s->b->kind->write(s, skip, len, fd, off, drain, how);

	if (r == ZBL__WRITE_FROM_MEMORY)
		r = write_from_memory(s, skip, len, fd, off);
	return r;
}

int zbl__block_read_window(const struct zbl__seg *s, char *dst)
{
	int err;

	if (!s->b->kind->read_window)
		return -EAGAIN;
	err = s->b->kind->read_window(s, dst);
	if (!err) {
		ZBL__STAT_ADD(bytes_materialized, s->len);
		ZBL__STAT_ADD(materializations, 1);
		zbl__trace("materialize", s->len);
	}
	return err;
}
