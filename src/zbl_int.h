/* SPDX-License-Identifier: MIT */
/*
 * Internal definitions shared by the library's source files. Nothing here is
 * part of the public API; functions shared between files are named zbl__*.
 */
#ifndef ZBL_INT_H
#define ZBL_INT_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "zbl.h"
#include "sys.h"

#define ZBL__LIKELY(x) __builtin_expect(!!(x), 1)
#define ZBL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * Storage block kinds. The kind is a tag switched on where behaviour differs;
 * reading bytes never goes through an indirect call (Ceph's virtual
 * get_data() on raw_pipe slowed every access: docs/DESIGN.md, section
 * "No indirect call per access").
 */
enum zbl__kind {
	ZBL__BLOCK_INLINE,   /* library memory allocated with the header; has tail room */
	ZBL__BLOCK_ALIGNED,  /* library memory from posix_memalign, freed with free() */
	ZBL__BLOCK_REF,      /* caller memory with a release callback */
	ZBL__BLOCK_FILE,     /* a range of a regular file, read lazily */
	ZBL__BLOCK_PIPE,     /* kernel pages held in a pipe */
};

/* One cached CRC per block: crc32c of bytes [off, off+len) with seed @seed. */
struct zbl__crc_cache {
	atomic_flag lock;
	bool valid;
	size_t off;
	size_t len;
	uint32_t seed;
	uint32_t crc;
};

/*
 * A pipe: one descriptor open for reading and writing (rfd == wfd), or two
 * where /proc is missing; size is its capacity in bytes.
 */
struct zbl__pipe {
	int rfd;
	int wfd;
	size_t size;
};

/* Kernel-page storage: file ranges and pipes. */
struct zbl__kblock {
	int fd;              /* file: our duplicate of the caller's descriptor */
	int64_t file_off;    /* file: offset of byte 0 of the block in the file */
	struct zbl__pipe pipe; /* pipe: holds block bytes [head, cap) */
	/*
	 * pipe: block bytes already consumed from the pipe (drained, or read
	 * into memory). Changes only under zbl__pipe_lock held exclusively, or
	 * while a single list holds the block.
	 */
	size_t head;
	bool sealed;         /* pipe: ran out of slots; append no more */
	bool lost;           /* pipe: emptying it failed midway; its bytes are gone (-EIO) */
	size_t copy_len;     /* length of the mapping holding the materialized copy, 0 if malloc */
};

struct zbl__block {
	atomic_uint refs;
	uint8_t kind;
	/*
	 * Readable bytes. Set at creation for memory kinds; for kernel kinds NULL
	 * until the block is materialized, then set once (release store) and never
	 * changed again, so readers only need an acquire load.
	 */
	char *_Atomic data;
	size_t cap;          /* bytes of storage */
	/*
	 * Bytes of storage handed out to segments (INLINE/ALIGNED only; equal to
	 * cap for other kinds). A list may append into [fill, cap) only after it
	 * advanced fill with a compare-and-swap from the end of its own last
	 * segment, so two lists sharing the block cannot both take the same room.
	 */
	atomic_size_t fill;
	struct zbl__crc_cache crc;
	union {
		struct {
			void (*release)(void *ctx);
			void *ctx;
		} ref;
		struct zbl__kblock k;
		size_t map_len; /* INLINE: length of its own mapping, 0 if malloc */
	} u;
	/* INLINE blocks: the bytes follow the header. */
	char inline_data[] __attribute__((aligned(16)));
};

/* A segment: a window onto a block. */
struct zbl__seg {
	struct zbl__block *b;
	/*
	 * The window's bytes when the block is memory (so reads need not touch
	 * the block header), NULL for kernel-page blocks.
	 */
	const char *data;
	size_t off;          /* offset in the block */
	size_t len;          /* bytes; never 0 in a list */
	size_t start;        /* position in the list plus the list's base */
};

/*
 * A list is an array of segments used as a deque: segments [head, head+count)
 * are live. Each segment records its start position (plus base) so that the
 * segment holding an offset is found by binary search; removing from the
 * front only moves head and base.
 */
struct zbl {
	struct zbl__seg *v;
	size_t head;
	size_t count;
	size_t cap;
	size_t base;
	size_t len;
};

/* block.c */
void zbl__block_init(struct zbl__block *b, enum zbl__kind kind, char *data, size_t cap,
		     size_t fill);
struct zbl__block *zbl__block_new_inline(size_t cap);
struct zbl__block *zbl__block_new_aligned(size_t cap, size_t align);
struct zbl__block *zbl__block_new_ref(const void *data, size_t len,
				      void (*release)(void *), void *ctx);
struct zbl__block *zbl__block_new_file(int fd, int64_t off, size_t len);
void zbl__block_put(struct zbl__block *b);
const char *zbl__block_materialize(struct zbl__block *b);
void zbl__pipe_lock(const struct zbl__block *b, bool exclusive);
void zbl__pipe_unlock(const struct zbl__block *b);
void zbl__copy_cache_flush(void);
char *zbl__copy_alloc(size_t len, size_t *maplen, bool reused_only);
/* Set in a mapping length handed to zbl__copy_free(): a memfd's (shared) mapping. */
#define ZBL__MAP_SHARED ((size_t)1)
void zbl__copy_free(char *p, size_t maplen);
size_t zbl__copy_map_len(size_t len);

static inline void zbl__block_get(struct zbl__block *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

static inline bool zbl__block_is_kernel(const struct zbl__block *b)
{
	return b->kind >= ZBL__BLOCK_FILE;
}

/*
 * Readable bytes of a block. Memory kinds return at once; kernel kinds are
 * materialized on first use (an explicit, counted copy). NULL with errno set
 * if kernel pages could not be read.
 */
static inline const char *zbl__block_data(struct zbl__block *b)
{
	char *d = atomic_load_explicit(&b->data, memory_order_acquire);
	if (ZBL__LIKELY(d != NULL))
		return d;
	return zbl__block_materialize(b);
}

/* fdio.c */
struct zbl__sigpipe_guard {
	sigset_t old;
	bool was_pending;
};
void zbl__sigpipe_block(struct zbl__sigpipe_guard *g);
void zbl__sigpipe_restore(struct zbl__sigpipe_guard *g, bool epipe);
int zbl__file_read(struct zbl__block *b, char *dst);
ssize_t zbl__read_copy(zbl_t *bl, int fd, int64_t *off, size_t len, bool some);
ssize_t zbl__write_out(zbl_t *bl, int fd, int64_t *off, unsigned flags);
ssize_t zbl__write_kernel_seg(struct zbl__seg *s, size_t skip, int fd, int64_t *off, bool drain,
			      bool more);

/* stats.c: reports a copy the caller may want to find (ZBL_TRACE). */
void zbl__trace(const char *what, size_t bytes);

/* pipe.c */
int zbl__pipe_get(struct zbl__pipe *p, size_t min_bytes, bool scratch);
void zbl__pipe_put(struct zbl__pipe *p, size_t bytes_left);
int zbl__pipe_discard(int rfd, size_t len, size_t *moved);
int zbl__devnull(void);
size_t zbl__pipe_bytes_max(void);
bool zbl__pipes_single_fd(void);
long zbl__read_proc_long(const char *path, long dflt);
size_t zbl__held_pipe_bytes(void);

/* kpage.c */
struct zbl__block *zbl__block_new_pipe(const struct zbl__pipe *p);
int zbl__kpage_materialize(struct zbl__block *b, char **data, size_t *maplen);
int zbl__kpage_read_window(const struct zbl__seg *s, char *dst);
ssize_t zbl__write_pipe_seg(struct zbl__seg *s, size_t skip, int fd, int64_t *off, bool drain,
			    bool more);

/* list.c */
static inline struct zbl__seg *zbl__seg_at(const zbl_t *bl, size_t i)
{
	return &bl->v[bl->head + i];
}

/* Points @s at bytes [off, off+len) of @b (start is set by the caller). */
static inline void zbl__seg_set(struct zbl__seg *s, struct zbl__block *b, size_t off, size_t len)
{
	s->b = b;
	s->data = zbl__block_is_kernel(b) ? NULL
		  : atomic_load_explicit(&b->data, memory_order_relaxed) + off;
	s->off = off;
	s->len = len;
}

/* Drops the first @n bytes of segment @s (n < len). */
static inline void zbl__seg_trim_front(struct zbl__seg *s, size_t n)
{
	if (s->data)
		s->data += n;
	s->off += n;
	s->len -= n;
	s->start += n;
}

/* The segment's bytes, reading kernel pages into memory if needed; NULL + errno on failure. */
static inline const char *zbl__seg_data(const struct zbl__seg *s)
{
	if (ZBL__LIKELY(s->data != NULL))
		return s->data;
	const char *d = zbl__block_data(s->b);
	return d ? d + s->off : NULL;
}
size_t zbl__find(const zbl_t *bl, size_t off);
int zbl__reserve(zbl_t *bl, size_t more);
void zbl__push_seg(zbl_t *bl, struct zbl__block *b, size_t off, size_t len);
void zbl__drop_front(zbl_t *bl, size_t n);
void zbl__replace(zbl_t *bl, zbl_t *with);
int zbl__prepare_append(zbl_t *bl, size_t len, char **p1, size_t *n1,
			struct zbl__block **nb);
void zbl__commit_append(zbl_t *bl, size_t n1, size_t u1, struct zbl__block *nb, size_t u2);
int zbl__copy_range(const zbl_t *bl, size_t off, size_t len, void *dst);

/*
 * stats.c: the counters. Each thread counts into its own copy with plain
 * (unlocked) adds, registered so zbl_stats_get() can sum them; a locked add
 * per call was a quarter of a small append. pipes_live is a process-wide
 * gauge in zbl__stats, which also holds what exited threads counted.
 */
struct zbl__stats {
	atomic_uint_least64_t bytes_copied_in;
	atomic_uint_least64_t bytes_spliced_in;
	atomic_uint_least64_t bytes_copied_out;
	atomic_uint_least64_t bytes_spliced_out;
	atomic_uint_least64_t bytes_teed;
	atomic_uint_least64_t bytes_materialized;
	atomic_uint_least64_t materializations;
	atomic_uint_least64_t fallbacks;
	atomic_uint_least64_t pipes_created;
	atomic_uint_least64_t pipes_live;
};
extern struct zbl__stats zbl__stats;
extern __thread struct zbl__stats *zbl__stats_tls __attribute__((tls_model("initial-exec")));
struct zbl__stats *zbl__stats_register(void);

/* This thread's counters; &zbl__stats if it has none (out of memory, exiting). */
static inline struct zbl__stats *zbl__stats_self(void)
{
	struct zbl__stats *t = zbl__stats_tls;

	return t ? t : zbl__stats_register();
}

#define ZBL__STAT_ADD(field, n)                                                              \
	do {                                                                                 \
		struct zbl__stats *t_ = zbl__stats_self();                                   \
		if (t_ == &zbl__stats)                                                       \
			atomic_fetch_add_explicit(&t_->field, (uint64_t)(n),                 \
						  memory_order_relaxed);                     \
		else                                                                         \
			atomic_store_explicit(&t_->field,                                    \
					      atomic_load_explicit(&t_->field,               \
								   memory_order_relaxed) +   \
						      (uint64_t)(n),                         \
					      memory_order_relaxed);                         \
	} while (0)
/* The process-wide gauge of open pipes. */
#define ZBL__PIPES_LIVE_ADD(n) \
	atomic_fetch_add_explicit(&zbl__stats.pipes_live, (uint64_t)(n), memory_order_relaxed)
#define ZBL__PIPES_LIVE_SUB(n) \
	atomic_fetch_sub_explicit(&zbl__stats.pipes_live, (uint64_t)(n), memory_order_relaxed)

/* crc.c */
uint32_t zbl__crc32c_block(struct zbl__block *b, size_t off, size_t len, uint32_t crc,
			   int *err);

/* Size of new blocks for small appends (the carriage), header included. */
#define ZBL__APPEND_BLOCK_TOTAL_MIN ((size_t)4096)
/* Up to one huge page: see zbl__block_new_inline(). */
#define ZBL__APPEND_BLOCK_TOTAL_MAX ((size_t)2 << 20)

#endif /* ZBL_INT_H */
