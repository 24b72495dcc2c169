/* SPDX-License-Identifier: MIT */
/*
 * zbl_splice_from: bring bytes from a descriptor into the list as kernel pages.
 */
#include "zbl_int.h"

ssize_t zbl_splice_from(zbl_t *bl, int fd, int64_t *off, size_t len, unsigned flags)
{
	ssize_t r;

	if (!bl || fd < 0 || flags || (off && *off < 0))
		return -EINVAL;
	if (len == 0)
		return 0;
	/* Where pages cannot be held, copy (a counted fallback). */
	r = zbl__read_copy(bl, fd, off, len);
	if (r > 0) {
		ZBL__STAT_ADD(fallbacks, 1);
		zbl__trace("fallback: zbl_splice_from", (size_t)r);
	}
	return r;
}

void zbl_pool_flush(void)
{
}
