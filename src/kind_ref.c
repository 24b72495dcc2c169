/* SPDX-License-Identifier: MIT */
/*
 * Borrowed memory (zbl_append_ref): the caller's bytes, handed back through
 * its release callback when the last reference goes. Layer 2 (see zbl_int.h).
 */
#include <stdlib.h>

#include "zbl_int.h"

static void release_ref(struct zbl__block *b)
{
	if (b->u.ref.release)
		b->u.ref.release(b->u.ref.ctx);
	free(b);
}

const struct zbl__kind zbl__kind_ref = {
	.name = "ref",
	.release = release_ref,
};

struct zbl__block *zbl__block_new_ref(const void *data, size_t len,
				      void (*release)(void *), void *ctx)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));

	if (!b)
		return NULL;
	zbl__block_init(b, &zbl__kind_ref, (char *)data, len, len);
	b->u.ref.release = release;
	b->u.ref.ctx = ctx;
	return b;
}
