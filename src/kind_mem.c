/* SPDX-License-Identifier: MIT */
/*
 * Library memory kinds: inline blocks, whose bytes follow the header and
 * which have room for appends, and aligned blocks, whose bytes start on a
 * boundary of their own (zbl_rebuild_aligned, and reads laid out for
 * O_DIRECT). Layer 2 (see zbl_int.h).
 */
#include <stdlib.h>

#include "zbl_int.h"

static void release_inline(struct zbl__block *b)
{
	zbl__mem_free((char *)b, b->u.mem_tag);
}

const struct zbl__kind zbl__kind_inline = {
	.name = "inline",
	.release = release_inline,
};

/*
 * A block with its bytes after the header. Large ones (big appends, the
 * carriage of a long list, c_str and rebuild) are mappings of their own from
 * zbl__mem_alloc(): populated in one call, on huge pages from 2 MiB, and kept
 * for reuse when released. Faulting fresh memory in 4 KiB at a time cost more
 * than filling it (bench: appends/fresh, c_str).
 */
struct zbl__block *zbl__block_new_inline(size_t cap)
{
	zbl__memtag_t tag;

	if (cap > PTRDIFF_MAX - sizeof(struct zbl__block) - ZBL__MAP_ROUND)
		return NULL;
	struct zbl__block *b = (struct zbl__block *)zbl__mem_alloc(sizeof(*b) + cap, &tag, false);
	if (!b)
		return NULL;
	zbl__block_init(b, &zbl__kind_inline, b->inline_data, cap, 0);
	b->u.mem_tag = tag;
	return b;
}

static void release_aligned(struct zbl__block *b)
{
	zbl__mem_free(atomic_load_explicit(&b->data, memory_order_relaxed), b->u.mem_tag);
	free(b);
}

const struct zbl__kind zbl__kind_aligned = {
	.name = "aligned",
	.release = release_aligned,
};

/*
 * A block whose bytes start at a multiple of @align. Large ones are mappings
 * from zbl__mem_alloc_aligned(), like large inline blocks: zbl_read_fd's
 * blocks are of this kind (see zbl__prepare_append()).
 */
struct zbl__block *zbl__block_new_aligned(size_t cap, size_t align)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));
	zbl__memtag_t tag;
	char *mem;

	if (!b)
		return NULL;
	mem = zbl__mem_alloc_aligned(cap, align, &tag);
	if (!mem) {
		free(b);
		return NULL;
	}
	zbl__block_init(b, &zbl__kind_aligned, mem, cap, 0);
	b->u.mem_tag = tag;
	return b;
}
