/* SPDX-License-Identifier: MIT */
/*
 * Lists: lifecycle, the segment array, appends and slicing. Nothing here
 * copies bytes except zbl_append() and zbl_append_zero().
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zbl_int.h"

zbl_t *zbl_new(void)
{
	zbl_t *bl = zbl__sys_calloc(1, sizeof(*bl));

	if (!bl)
		errno = ENOMEM;
	return bl;
}

void zbl_clear(zbl_t *bl)
{
	if (!bl)
		return;
	for (size_t i = 0; i < bl->count; i++)
		zbl__block_put(zbl__seg_at(bl, i)->b);
	bl->head = 0;
	bl->count = 0;
	bl->base = 0;
	bl->len = 0;
}

void zbl_free(zbl_t *bl)
{
	if (!bl)
		return;
	zbl_clear(bl);
	free(bl->v);
	free(bl);
}

size_t zbl_length(const zbl_t *bl)
{
	return bl ? bl->len : 0;
}

size_t zbl_segments(const zbl_t *bl)
{
	return bl ? bl->count : 0;
}

bool zbl_is_contiguous(const zbl_t *bl)
{
	return zbl_segments(bl) <= 1;
}

size_t zbl_kernel_bytes(const zbl_t *bl)
{
	size_t n = 0;

	if (!bl)
		return 0;
	for (size_t i = 0; i < bl->count; i++) {
		const struct zbl__seg *s = zbl__seg_at(bl, i);
		if (zbl__block_is_kernel(s->b) &&
		    !atomic_load_explicit(&s->b->data, memory_order_acquire))
			n += s->len;
	}
	return n;
}

/*
 * Index (relative to head) of the segment holding byte @off; off < len.
 * A branchless binary search over the segments' start offsets that
 * prefetches both possible next probes: on lists far larger than the cache
 * most probes miss, and overlapping those misses is what keeps a lookup in a
 * million segments close to one in a thousand.
 */
size_t zbl__find(const zbl_t *bl, size_t off)
{
	const struct zbl__seg *v = bl->v + bl->head;
	size_t key = off + bl->base;
	size_t n = bl->count;

	/* The last segment is the common target (appends, tail reads): try it first. */
	if (v[n - 1].start <= key)
		return n - 1;
	const struct zbl__seg *lo = v;
	while (n > 1) {
		size_t half = n / 2;
		__builtin_prefetch(&lo[half / 2].start);
		__builtin_prefetch(&lo[half + half / 2].start);
		lo = lo[half].start <= key ? lo + half : lo;
		n -= half;
	}
	return (size_t)(lo - v);
}

/*
 * Segment arrays of long lists are searched at random; on huge pages their
 * lookups take far fewer TLB misses (this matters most in virtual machines).
 */
#define SEG_ARRAY_HUGE_BYTES ((size_t)2 << 20)

static struct zbl__seg *seg_array_alloc(size_t n)
{
	size_t bytes = n * sizeof(struct zbl__seg);
	void *p;

	if (bytes < 2 * SEG_ARRAY_HUGE_BYTES)
		return zbl__sys_malloc(bytes);
	bytes = (bytes + SEG_ARRAY_HUGE_BYTES - 1) & ~(SEG_ARRAY_HUGE_BYTES - 1);
	p = zbl__sys_memalign(SEG_ARRAY_HUGE_BYTES, bytes);
	if (!p)
		return NULL;
	/* Only advice: where transparent huge pages are off this fails harmlessly. */
	madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

/* Ensures room for @more segments after the live ones. */
int zbl__reserve(zbl_t *bl, size_t more)
{
	if (more > SIZE_MAX / sizeof(struct zbl__seg) - bl->count)
		return -ENOMEM;
	if (bl->head + bl->count + more <= bl->cap)
		return 0;
	/* Reclaim the space before head when it is at least half the array. */
	if (bl->count + more <= bl->cap && bl->head >= bl->cap / 2) {
		memmove(bl->v, bl->v + bl->head, bl->count * sizeof(*bl->v));
		bl->head = 0;
		return 0;
	}
	size_t need = bl->count + more;
	size_t ncap = bl->cap ? bl->cap : 4;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 / sizeof(struct zbl__seg) ? need : ncap * 2;
	struct zbl__seg *v = seg_array_alloc(ncap);
	if (!v)
		return -ENOMEM;
	if (bl->count)
		memcpy(v, bl->v + bl->head, bl->count * sizeof(*v));
	free(bl->v);
	bl->v = v;
	bl->cap = ncap;
	bl->head = 0;
	return 0;
}

/* Appends a segment taking over one reference to @b; room must be reserved. */
void zbl__push_seg(zbl_t *bl, struct zbl__block *b, size_t off, size_t len)
{
	struct zbl__seg *s = &bl->v[bl->head + bl->count++];

	zbl__seg_set(s, b, off, len);
	s->start = bl->base + bl->len;
	bl->len += len;
}

/* Extends the last segment by @n bytes its block now holds past the window. */
void zbl__grow_tail(zbl_t *bl, size_t n)
{
	zbl__seg_at(bl, bl->count - 1)->len += n;
	bl->len += n;
}

/* Removes @n bytes from the front (n <= len), dropping emptied segments. */
void zbl__drop_front(zbl_t *bl, size_t n)
{
	bl->len -= n;
	bl->base += n;
	while (n) {
		struct zbl__seg *s = zbl__seg_at(bl, 0);
		if (s->len > n) {
			zbl__seg_trim_front(s, n);
			return;
		}
		n -= s->len;
		zbl__block_put(s->b);
		bl->head++;
		bl->count--;
	}
	if (!bl->count) {
		bl->head = 0;
		bl->base = 0;
	}
}

/* Replaces the contents of @bl with those of @with, which becomes empty. */
void zbl__replace(zbl_t *bl, zbl_t *with)
{
	zbl_clear(bl);
	free(bl->v);
	*bl = *with;
	memset(with, 0, sizeof(*with));
}

/*
 * Tail room of the last segment's block that this list may write into, or 0.
 * Only library-owned blocks have tail room, and only the list whose last
 * segment ends where the block's handed-out bytes end may take it. *only
 * tells whether this list's last segment is the block's only holder.
 * @congruent: only room whose address is congruent to the list's length
 * modulo ZBL__DIO_PAGE (see zbl__prepare_append()).
 */
static size_t tail_room(const zbl_t *bl, bool congruent, struct zbl__seg **last, bool *only)
{
	if (!bl->count)
		return 0;
	struct zbl__seg *s = zbl__seg_at(bl, bl->count - 1);
	struct zbl__block *b = s->b;
	if (b->kind != &zbl__kind_inline && b->kind != &zbl__kind_aligned)
		return 0;
	if (congruent && ((uintptr_t)(s->data + s->len) - bl->len) % ZBL__DIO_PAGE)
		return 0;
	/*
	 * Acquire: if another list just dropped the block, its claims on the
	 * room happen before the fill load below.
	 */
	*only = atomic_load_explicit(&b->refs, memory_order_acquire) == 1;
	size_t end = s->off + s->len;
	if (atomic_load_explicit(&b->fill, memory_order_relaxed) != end)
		return 0;
	*last = s;
	return b->cap - end;
}

/*
 * Claims up to @want bytes of tail room in the last segment's block and
 * returns where to write them (the claimed count in *got), or NULL. The
 * caller then either extends the last segment by *got or gives the room back
 * with unclaim_tail().
 */
static char *claim_tail(zbl_t *bl, size_t want, bool congruent, size_t *got)
{
	struct zbl__seg *s = NULL;
	bool only = false;
	size_t room = tail_room(bl, congruent, &s, &only);

	*got = 0;
	if (!room || !want)
		return NULL;
	size_t n = want < room ? want : room;
	size_t end = s->off + s->len;
	/* Nobody else can claim room in a block only this list holds: no locked instruction. */
	if (only)
		atomic_store_explicit(&s->b->fill, end + n, memory_order_relaxed);
	else if (!atomic_compare_exchange_strong(&s->b->fill, &end, end + n))
		return NULL;
	*got = n;
	return (char *)atomic_load_explicit(&s->b->data, memory_order_relaxed) + end;
}

/*
 * Gives back room taken by claim_tail(). No other list can have claimed
 * beyond it meanwhile: their last segments do not end at the new fill.
 */
static void unclaim_tail(zbl_t *bl, size_t keep)
{
	struct zbl__seg *s = zbl__seg_at(bl, bl->count - 1);

	atomic_store_explicit(&s->b->fill, s->off + s->len + keep, memory_order_relaxed);
}

/*
 * Capacity of a new block for appends (Ceph's carriage), header included:
 * twice the list's last append block, from one page up to one huge page, and
 * never more than the list already holds. So a list built by small appends
 * takes few blocks, a queue with a small backlog keeps small ones, and a
 * trailer after megabytes of kernel pages gets one page, not a huge one.
 */
static size_t append_block_bytes(const zbl_t *bl, size_t need)
{
	size_t total = ZBL__APPEND_BLOCK_TOTAL_MIN, prev = 0;

	if (bl->count) {
		const struct zbl__block *b = zbl__seg_at(bl, bl->count - 1)->b;
		if (b->kind == &zbl__kind_inline || b->kind == &zbl__kind_aligned)
			prev = sizeof(*b) + b->cap;
	}
	while (total < ZBL__APPEND_BLOCK_TOTAL_MAX && total * 2 <= bl->len && total < 2 * prev)
		total *= 2;
	size_t cap = total - sizeof(struct zbl__block);
	return need > cap ? need : cap;
}

/*
 * A new block for @need bytes that will start at list offset @at.
 * @congruent: the bytes start at an address congruent to @at modulo
 * ZBL__DIO_PAGE, in a page-aligned block whose first (at % page) bytes stay
 * unused and which ends on a page. Either way the bytes go at zbl__block_room(): the block's fill
 * says where.
 */
static struct zbl__block *new_append_block(const zbl_t *bl, size_t at, size_t need,
					   bool congruent)
{
	if (!congruent)
		return zbl__block_new_inline(append_block_bytes(bl, need));
	size_t lead = at % ZBL__DIO_PAGE;
	size_t cap = append_block_bytes(bl, need);
	if (cap > SIZE_MAX - lead - ZBL__DIO_PAGE)
		return NULL;
	/* Ending on a page, the block leaves the next one starting at its page offset 0. */
	cap = (lead + cap + ZBL__DIO_PAGE - 1) & ~(ZBL__DIO_PAGE - 1);
	struct zbl__block *b = zbl__block_new_aligned(cap, ZBL__DIO_PAGE);
	if (b)
		atomic_store_explicit(&b->fill, lead, memory_order_relaxed);
	return b;
}

/*
 * Makes room for @len more bytes at the end of the list: tail room first,
 * then one new block for the rest. On success (*p1, *n1) is the claimed tail
 * room (n1 may be 0) and *nb a new block for the remaining len - n1 bytes (or
 * NULL), to be written at zbl__block_room(*nb); the caller writes the bytes
 * and calls zbl__commit_append() with how many it wrote to each. On failure
 * nothing has changed.
 *
 * With @congruent (zbl_read_fd, docs/DESIGN.md, section "Reading into
 * lists laid out for O_DIRECT"), every byte's address is congruent to its
 * list offset modulo ZBL__DIO_PAGE: tail room is used only where it already
 * is, and a new block starts at the page offset of the list's length. So
 * bytes read into a list in any number of pieces lie in memory as they will
 * in a file at an aligned offset, and go to an O_DIRECT file without
 * staging. Plain appends do not pay for it: their blocks keep the header in
 * front of the bytes, in one allocation.
 */
int zbl__prepare_append(zbl_t *bl, size_t len, bool congruent, char **p1, size_t *n1,
			struct zbl__block **nb)
{
	if (len > SIZE_MAX - bl->len)
		return -ERANGE;
	*nb = NULL;
	*p1 = claim_tail(bl, len, congruent, n1);
	if (len > *n1) {
		if (zbl__reserve(bl, 1) < 0 ||
		    !(*nb = new_append_block(bl, bl->len + *n1, len - *n1, congruent))) {
			if (*n1)
				unclaim_tail(bl, 0);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Adds to the list the @u1 bytes written into claimed tail room of @n1 bytes
 * and the @u2 bytes written into @nb; unused room goes back, an unused new
 * block is freed. u2 > 0 only if u1 == n1.
 */
void zbl__commit_append(zbl_t *bl, size_t n1, size_t u1, struct zbl__block *nb, size_t u2)
{
	if (u1 < n1)
		unclaim_tail(bl, u1);
	if (u1) {
		zbl__seg_at(bl, bl->count - 1)->len += u1;
		bl->len += u1;
	}
	if (nb && u2) {
		size_t at = atomic_load_explicit(&nb->fill, memory_order_relaxed);
		atomic_store_explicit(&nb->fill, at + u2, memory_order_relaxed);
		zbl__push_seg(bl, nb, at, u2);
	} else if (nb) {
		zbl__block_put(nb);
	}
}

/* Copies @len bytes (from @data, or zeros when NULL) to the end of the list. */
static int append_bytes(zbl_t *bl, const void *data, size_t len)
{
	struct zbl__block *nb;
	size_t n1;
	char *p1;
	int err;

	if (len == 0)
		return 0;
	err = zbl__prepare_append(bl, len, false, &p1, &n1, &nb);
	if (err < 0)
		return err;
	if (data) {
		if (n1)
			memcpy(p1, data, n1);
		if (nb)
			memcpy(zbl__block_room(nb), (const char *)data + n1, len - n1);
	} else {
		if (n1)
			memset(p1, 0, n1);
		if (nb)
			memset(zbl__block_room(nb), 0, len - n1);
	}
	zbl__commit_append(bl, n1, n1, nb, len - n1);
	ZBL__STAT_ADD(bytes_copied_in, len);
	return 0;
}

int zbl_append(zbl_t *bl, const void *data, size_t len)
{
	if (!bl || (!data && len))
		return -EINVAL;
	/*
	 * The common case, kept short: the bytes fit the tail room of a block
	 * that only this list holds (see claim_tail()).
	 */
	if (bl->count && len && len <= SIZE_MAX - bl->len) {
		struct zbl__seg *s = zbl__seg_at(bl, bl->count - 1);
		struct zbl__block *b = s->b;
		size_t end = s->off + s->len;
		if (b->kind == &zbl__kind_inline && b->cap - end >= len &&
		    atomic_load_explicit(&b->refs, memory_order_acquire) == 1 &&
		    atomic_load_explicit(&b->fill, memory_order_relaxed) == end) {
			memcpy(b->inline_data + end, data, len);
			atomic_store_explicit(&b->fill, end + len, memory_order_relaxed);
			s->len += len;
			bl->len += len;
			ZBL__STAT_ADD(bytes_copied_in, len);
			return 0;
		}
	}
	return append_bytes(bl, data, len);
}

int zbl_append_zero(zbl_t *bl, size_t len)
{
	if (!bl)
		return -EINVAL;
	return append_bytes(bl, NULL, len);
}

int zbl_append_list(zbl_t *dst, const zbl_t *src)
{
	if (!dst || !src)
		return -EINVAL;
	size_t n = src->count;
	if (src->len > SIZE_MAX - dst->len)
		return -ERANGE;
	if (zbl__reserve(dst, n) < 0)
		return -ENOMEM;
	/* src may be dst: only the n segments present before the call are read. */
	for (size_t i = 0; i < n; i++) {
		const struct zbl__seg *s = zbl__seg_at(src, i);
		zbl__block_get(s->b);
		zbl__push_seg(dst, s->b, s->off, s->len);
	}
	return 0;
}

int zbl_claim_append(zbl_t *dst, zbl_t *src)
{
	if (!dst || !src || dst == src)
		return -EINVAL;
	if (src->len > SIZE_MAX - dst->len)
		return -ERANGE;
	if (!dst->count) {
		/* Take src's whole array: O(1). */
		zbl_t tmp = *src;
		memset(src, 0, sizeof(*src));
		zbl__replace(dst, &tmp);
		return 0;
	}
	if (zbl__reserve(dst, src->count) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < src->count; i++) {
		const struct zbl__seg *s = zbl__seg_at(src, i);
		zbl__push_seg(dst, s->b, s->off, s->len);
	}
	src->head = src->count = 0;
	src->base = src->len = 0;
	return 0;
}

int zbl_append_ref(zbl_t *bl, const void *data, size_t len,
		   void (*release)(void *ctx), void *ctx)
{
	struct zbl__block *b;

	if (!bl || (!data && len))
		return -EINVAL;
	if (len > SIZE_MAX - bl->len) {
		if (release)
			release(ctx);
		return -ERANGE;
	}
	if (len == 0) {
		if (release)
			release(ctx);
		return 0;
	}
	if (zbl__reserve(bl, 1) < 0 || !(b = zbl__block_new_ref(data, len, release, ctx))) {
		if (release)
			release(ctx);
		return -ENOMEM;
	}
	zbl__push_seg(bl, b, 0, len);
	return 0;
}

int zbl_append_file(zbl_t *bl, int fd, int64_t off, size_t len)
{
	struct zbl__block *b;
	struct stat st;
	int dfd;

	if (!bl || fd < 0 || off < 0)
		return -EINVAL;
	if (zbl__sys_fstat(fd, &st) < 0)
		return errno == EBADF ? -EINVAL : -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (len > (uint64_t)INT64_MAX || (uint64_t)off + len > (uint64_t)st.st_size)
		return -ERANGE;
	if (len > SIZE_MAX - bl->len)
		return -ERANGE;
	if (len == 0)
		return 0;
	int fl = zbl__sys_fcntl(fd, F_GETFL, 0);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EINVAL;
	if (zbl__reserve(bl, 1) < 0)
		return -ENOMEM;
	dfd = zbl__sys_dup_cloexec(fd);
	if (dfd < 0)
		return -errno;
	b = zbl__block_new_file(dfd, off, len);
	if (!b) {
		zbl__sys_close(dfd);
		return -ENOMEM;
	}
	zbl__push_seg(bl, b, 0, len);
	return 0;
}

/* Appends to @dst the bytes [off, off+len) of @src, sharing; room reserved. */
static void push_range(zbl_t *dst, const zbl_t *src, size_t off, size_t len)
{
	size_t i = zbl__find(src, off);
	size_t skip = off + src->base - zbl__seg_at(src, i)->start;

	while (len) {
		const struct zbl__seg *s = zbl__seg_at(src, i++);
		size_t n = s->len - skip;
		if (n > len)
			n = len;
		zbl__block_get(s->b);
		zbl__push_seg(dst, s->b, s->off + skip, n);
		len -= n;
		skip = 0;
	}
}

/* Number of segments covering bytes [off, off+len) of @bl; len > 0. */
static size_t segs_in_range(const zbl_t *bl, size_t off, size_t len)
{
	return zbl__find(bl, off + len - 1) - zbl__find(bl, off) + 1;
}

int zbl_substr_of(zbl_t *dst, const zbl_t *src, size_t off, size_t len)
{
	zbl_t tmp = { 0 };

	if (!dst || !src)
		return -EINVAL;
	if (off > src->len || len > src->len - off)
		return -ERANGE;
	if (len) {
		if (zbl__reserve(&tmp, segs_in_range(src, off, len)) < 0)
			return -ENOMEM;
		push_range(&tmp, src, off, len);
	}
	zbl__replace(dst, &tmp);
	return 0;
}

int zbl_splice(zbl_t *bl, size_t off, size_t len, zbl_t *claim_by)
{
	if (!bl || claim_by == bl)
		return -EINVAL;
	if (off > bl->len || len > bl->len - off)
		return -ERANGE;
	if (len == 0)
		return 0;
	/* Consuming from the front, the queue's common case, needs no search. */
	if (off == 0 && !claim_by) {
		zbl__drop_front(bl, len);
		return 0;
	}
	if (claim_by) {
		if (len > SIZE_MAX - claim_by->len)
			return -ERANGE;
		if (zbl__reserve(claim_by, segs_in_range(bl, off, len)) < 0)
			return -ENOMEM;
	}
	size_t first = zbl__find(bl, off);
	size_t last = zbl__find(bl, off + len - 1);
	struct zbl__seg *fs = zbl__seg_at(bl, first);
	struct zbl__seg *ls = zbl__seg_at(bl, last);
	size_t keep_head = off + bl->base - fs->start;                 /* bytes of first kept */
	size_t keep_tail = ls->start + ls->len - (off + len + bl->base); /* bytes of last kept */
	/* Cutting the middle out of one segment leaves two: one more slot. */
	bool split = first == last && keep_head && keep_tail;

	if (split && zbl__reserve(bl, 1) < 0)
		return -ENOMEM;
	/* zbl__reserve may have moved the array. */
	fs = zbl__seg_at(bl, first);
	ls = zbl__seg_at(bl, last);

	if (claim_by)
		push_range(claim_by, bl, off, len);
	if (off == 0) {
		zbl__drop_front(bl, len);
		return 0;
	}
	if (split) {
		struct zbl__block *b = fs->b;
		size_t tail_off = fs->off + keep_head + len;
		zbl__block_get(b);
		fs->len = keep_head;
		memmove(fs + 2, fs + 1, (bl->count - first - 1) * sizeof(*fs));
		zbl__seg_set(&fs[1], b, tail_off, keep_tail);
		fs[1].start = fs->start + keep_head;
		bl->count++;
		for (size_t i = first + 2; i < bl->count; i++)
			zbl__seg_at(bl, i)->start -= len;
		bl->len -= len;
		return 0;
	}
	/* Segments [drop_from, drop_to) go entirely; first and last may be trimmed. */
	size_t drop_from = first, drop_to = last + 1;
	if (keep_head) {
		fs->len = keep_head;
		drop_from++;
	}
	if (keep_tail) {
		zbl__seg_trim_front(ls, ls->len - keep_tail);
		drop_to--;
	}
	for (size_t i = drop_from; i < drop_to; i++)
		zbl__block_put(zbl__seg_at(bl, i)->b);
	struct zbl__seg *d = zbl__seg_at(bl, drop_from);
	memmove(d, d + (drop_to - drop_from), (bl->count - drop_to) * sizeof(*d));
	bl->count -= drop_to - drop_from;
	for (size_t i = drop_from; i < bl->count; i++)
		zbl__seg_at(bl, i)->start -= len;
	bl->len -= len;
	return 0;
}
