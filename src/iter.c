/* SPDX-License-Identifier: MIT */
/*
 * Iterators and the reads built on them: copy_out, cmp, contents_equal.
 */
#include "zbl_int.h"

static void iter_seek(zbl_iter_t *it, const zbl_t *bl, size_t off)
{
	it->_bl = bl;
	it->_off = off;
	if (off == bl->len) {
		it->_seg = bl->count;
		it->_seg_off = 0;
		return;
	}
	it->_seg = zbl__find(bl, off);
	it->_seg_off = off + bl->base - zbl__seg_at(bl, it->_seg)->start;
}

int zbl_iter_init(zbl_iter_t *it, const zbl_t *bl, size_t off)
{
	if (!it || !bl)
		return -EINVAL;
	if (off > bl->len)
		return -ERANGE;
	iter_seek(it, bl, off);
	return 0;
}

size_t zbl_iter_offset(const zbl_iter_t *it)
{
	return it ? it->_off : 0;
}

size_t zbl_iter_remaining(const zbl_iter_t *it)
{
	return it && it->_bl ? it->_bl->len - it->_off : 0;
}

/* Moves forward @n bytes; n <= remaining. Short moves stay in O(1). */
static void iter_forward(zbl_iter_t *it, size_t n)
{
	const zbl_t *bl = it->_bl;

	if (n == 0)
		return;
	if (it->_off + n == bl->len || n >= zbl__seg_at(bl, it->_seg)->len * 4) {
		iter_seek(it, bl, it->_off + n);
		return;
	}
	it->_off += n;
	n += it->_seg_off;
	while (n && n >= zbl__seg_at(bl, it->_seg)->len) {
		n -= zbl__seg_at(bl, it->_seg)->len;
		it->_seg++;
	}
	it->_seg_off = n;
}

int zbl_iter_advance(zbl_iter_t *it, size_t n)
{
	if (!it || !it->_bl)
		return -EINVAL;
	if (n > it->_bl->len - it->_off)
		return -ERANGE;
	iter_forward(it, n);
	return 0;
}

size_t zbl_iter_get_ptr_and_advance(zbl_iter_t *it, size_t want, const char **p)
{
	if (p)
		*p = NULL;
	if (!it || !it->_bl || !p || it->_off == it->_bl->len || want == 0)
		return 0;
	const struct zbl__seg *s = zbl__seg_at(it->_bl, it->_seg);
	const char *d = zbl__seg_data(s);
	if (!d)
		return 0;
	size_t n = s->len - it->_seg_off;
	if (n > want)
		n = want;
	*p = d + it->_seg_off;
	it->_off += n;
	it->_seg_off += n;
	if (it->_seg_off == s->len) {
		it->_seg++;
		it->_seg_off = 0;
	}
	return n;
}

int zbl_iter_copy(zbl_iter_t *it, size_t len, void *dst)
{
	if (!it || !it->_bl || (!dst && len))
		return -EINVAL;
	if (len > it->_bl->len - it->_off)
		return -ERANGE;
	zbl_iter_t save = *it;
	char *out = dst;
	while (len) {
		const char *p;
		size_t n = zbl_iter_get_ptr_and_advance(it, len, &p);
		if (!n) {
			int err = errno ? -errno : -EIO;
			*it = save;
			return err;
		}
		memcpy(out, p, n);
		out += n;
		len -= n;
	}
	return 0;
}

static int copy_range(const zbl_t *bl, size_t off, size_t len, void *dst)
{
	zbl_iter_t it;

	iter_seek(&it, bl, off);
	return zbl_iter_copy(&it, len, dst);
}

/*
 * Copies bytes [off, off+len) of @bl to @dst like copy_range(), but
 * reads kernel pages nobody has read yet straight into @dst instead of into
 * a copy kept in their block: for bytes on their way out of the list
 * (rebuild, staging for O_DIRECT), which a kept copy would only double.
 */
int zbl__copy_range_through(const zbl_t *bl, size_t off, size_t len, char *dst)
{
	if (!len)
		return 0;
	size_t i = zbl__find(bl, off);
	size_t skip = off + bl->base - zbl__seg_at(bl, i)->start;

	while (len) {
		struct zbl__seg w = *zbl__seg_at(bl, i++);
		int err = -EAGAIN;

		zbl__seg_trim_front(&w, skip);
		if (w.len > len)
			w.len = len;
		if (!atomic_load_explicit(&w.b->data, memory_order_acquire))
			err = zbl__block_read_window(&w, dst);
		if (err == -EAGAIN) {
			const char *p = zbl__seg_data(&w);
			if (!p)
				return errno ? -errno : -EIO;
			memcpy(dst, p, w.len);
			err = 0;
		}
		if (err < 0)
			return err;
		dst += w.len;
		len -= w.len;
		skip = 0;
	}
	return 0;
}

int zbl_copy_out(const zbl_t *bl, size_t off, size_t len, void *dst)
{
	if (!bl || (!dst && len))
		return -EINVAL;
	if (off > bl->len || len > bl->len - off)
		return -ERANGE;
	return copy_range(bl, off, len, dst);
}

/*
 * memcmp order of @a and @b; *read_all says whether every byte compared could
 * be read (kernel pages that cannot be read end a list early).
 */
static int cmp_lists(const zbl_t *a, const zbl_t *b, bool *read_all)
{
	zbl_iter_t ia, ib;
	const char *pa = NULL, *pb = NULL;
	size_t na = 0, nb = 0;

	iter_seek(&ia, a, 0);
	iter_seek(&ib, b, 0);
	for (;;) {
		if (!na)
			na = zbl_iter_get_ptr_and_advance(&ia, SIZE_MAX, &pa);
		if (!nb)
			nb = zbl_iter_get_ptr_and_advance(&ib, SIZE_MAX, &pb);
		if (!na || !nb) {
			*read_all = (na || !zbl_iter_remaining(&ia)) &&
				    (nb || !zbl_iter_remaining(&ib));
			return (na != 0) - (nb != 0);
		}
		size_t n = na < nb ? na : nb;
		int r = memcmp(pa, pb, n);
		if (r) {
			*read_all = true;
			return r < 0 ? -1 : 1;
		}
		pa += n, na -= n;
		pb += n, nb -= n;
	}
}

int zbl_cmp(const zbl_t *a, const zbl_t *b)
{
	bool read_all;

	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return cmp_lists(a, b, &read_all);
}

bool zbl_contents_equal(const zbl_t *a, const zbl_t *b)
{
	if (!a || !b)
		return a == b;
	if (a->len != b->len)
		return false;
	/*
	 * Two lists sharing a block that cannot be read would both end early
	 * at the same place and look equal: that is a failure, not equality.
	 */
	bool read_all;
	return cmp_lists(a, b, &read_all) == 0 && read_all;
}
