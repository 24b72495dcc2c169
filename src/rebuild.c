/* SPDX-License-Identifier: MIT */
/*
 * Making lists contiguous or aligned (c_str, rebuild, rebuild_aligned): the
 * operations that turn segments, kernel pages included, into new memory.
 */
#include <stdlib.h>

#include "zbl_int.h"

/* Copies @len bytes of @bl from segment @i on into a new block aligned to @align. */
static int copy_to_new_block(const zbl_t *bl, size_t i, size_t len, size_t align,
			     struct zbl__block **out)
{
	struct zbl__block *b = align > 16 ? zbl__block_new_aligned(len, align)
					  : zbl__block_new_inline(len);
	int err;

	if (!b)
		return -ENOMEM;
	/* Kernel pages go straight into the new block: the list is about to drop them. */
	err = zbl__copy_range_through(bl, zbl__seg_at(bl, i)->start - bl->base, len,
				      (char *)atomic_load(&b->data));
	if (err < 0) {
		zbl__block_put(b);
		return err;
	}
	atomic_store_explicit(&b->fill, len, memory_order_relaxed);
	*out = b;
	return 0;
}

/* Replaces segments [i, j) of @bl, pushed to @tmp, by one new block. */
static int push_copy(zbl_t *tmp, const zbl_t *bl, size_t i, size_t j, size_t align)
{
	const struct zbl__seg *a = zbl__seg_at(bl, i), *z = zbl__seg_at(bl, j - 1);
	size_t len = z->start + z->len - a->start;
	struct zbl__block *b;
	int err = copy_to_new_block(bl, i, len, align, &b);

	if (err < 0)
		return err;
	zbl__push_seg(tmp, b, 0, len);
	return 0;
}

int zbl_rebuild(zbl_t *bl)
{
	zbl_t tmp = { 0 };
	int err;

	if (!bl)
		return -EINVAL;
	if (bl->count == 0 ||
	    (bl->count == 1 && !zbl__block_is_kernel(zbl__seg_at(bl, 0)->b)))
		return 0;
	if (zbl__reserve(&tmp, 1) < 0)
		return -ENOMEM;
	err = push_copy(&tmp, bl, 0, bl->count, 1);
	if (err < 0) {
		free(tmp.v);
		return err;
	}
	zbl__replace(bl, &tmp);
	return 0;
}

/* A segment rebuild_aligned keeps as it is. */
static bool seg_aligned(const zbl_t *bl, size_t i, size_t align)
{
	const struct zbl__seg *s = zbl__seg_at(bl, i);

	if (zbl__block_is_kernel(s->b))
		return false;
	uintptr_t addr = (uintptr_t)s->data;
	return (addr & (align - 1)) == 0 && ((s->len & (align - 1)) == 0 || i == bl->count - 1);
}

int zbl_rebuild_aligned(zbl_t *bl, size_t align)
{
	zbl_t tmp = { 0 };
	size_t i = 0;
	bool changed = false;

	if (!bl || align == 0 || (align & (align - 1)))
		return -EINVAL;
	if (zbl__reserve(&tmp, bl->count) < 0)
		return -ENOMEM;
	while (i < bl->count) {
		if (seg_aligned(bl, i, align)) {
			const struct zbl__seg *s = zbl__seg_at(bl, i++);
			zbl__block_get(s->b);
			zbl__push_seg(&tmp, s->b, s->off, s->len);
			continue;
		}
		/* Copy the run of segments up to the next one that can stay. */
		size_t j = i + 1;
		while (j < bl->count && !seg_aligned(bl, j, align))
			j++;
		int err = push_copy(&tmp, bl, i, j, align);
		if (err < 0) {
			zbl_clear(&tmp);
			free(tmp.v);
			return err;
		}
		changed = true;
		i = j;
	}
	if (changed)
		zbl__replace(bl, &tmp);
	else {
		zbl_clear(&tmp);
		free(tmp.v);
	}
	return 0;
}

const char *zbl_c_str(zbl_t *bl)
{
	int err;

	if (!bl) {
		errno = EINVAL;
		return NULL;
	}
	if (!bl->len) {
		errno = 0;
		return NULL;
	}
	err = zbl_rebuild(bl);
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	return zbl__seg_at(bl, 0)->data;
}
