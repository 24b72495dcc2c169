/* SPDX-License-Identifier: MIT */
/*
 * Internal definitions shared by the library's source files. Nothing here is
 * part of the public API; functions shared between files are named zbl__*.
 *
 * The files form layers, and calls only go down (tools/layers.sh checks the
 * object files in make check; docs/DESIGN.md, section "Layers"):
 *   1. system and resources: sys.h and fault.c (system calls), stats.c
 *      (counters and trace), mem.c (library memory and the mapping cache),
 *      pipe.c (the pipe pool), fdutil.c (descriptor utilities), direct.c
 *      (O_DIRECT alignment and the blocks around unaligned writes);
 *   2. storage kinds: kind_mem.c, kind_ref.c, kind_file.c, kind_pipe.c, and
 *      block.c, which reaches them only through struct zbl__kind;
 *   3. lists: list.c, iter.c, crc.c, rebuild.c, hexdump.c;
 *   4. movement between lists and descriptors: move_in.c, move_out.c;
 *   5. rings and caps: ring_uring.c, ring.c (ring_int.h), caps.c.
 * This header is declared in the same order.
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

/* ===================== 1. System and resources ===================== */

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
	atomic_uint_least64_t bytes_sent_zerocopy;
	atomic_uint_least64_t bytes_zerocopy_copied;
	atomic_uint_least64_t bytes_direct;
	atomic_uint_least64_t bytes_staged;
	atomic_uint_least64_t ring_ops;
	atomic_uint_least64_t ring_sync_ops;
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

/* stats.c: reports a copy the caller may want to find (ZBL_TRACE). */
void zbl__trace(const char *what, size_t bytes);

/*
 * mem.c: library memory for large copies. zbl__mem_alloc() says how it got
 * the memory in a tag that zbl__mem_free() needs back: malloc, a private
 * mapping (kept for reuse when freed), or a memfd's shared mapping (never
 * kept: after fork() parent and child would both reuse it). Read the tag
 * only through these accessors.
 */
typedef size_t zbl__memtag_t;

/* Mappings are multiples of this, so a tag's bit 0 is free to say "shared". */
#define ZBL__MAP_ROUND ((size_t)64 * 1024)
#define ZBL__MEMTAG_SHARED ((size_t)1)
_Static_assert(ZBL__MAP_ROUND % 2 == 0, "mapping lengths must leave bit 0 of a tag free");

/* The tag of a mapping of @len bytes (a multiple of ZBL__MAP_ROUND), or of malloc memory (0). */
static inline zbl__memtag_t zbl__memtag_map(size_t len, bool shared)
{
	return len | (shared ? ZBL__MEMTAG_SHARED : 0);
}

/* The mapping's length; 0 for malloc memory. */
static inline size_t zbl__memtag_len(zbl__memtag_t t)
{
	return t & ~ZBL__MEMTAG_SHARED;
}

static inline bool zbl__memtag_shared(zbl__memtag_t t)
{
	return (t & ZBL__MEMTAG_SHARED) != 0;
}

char *zbl__mem_alloc(size_t len, zbl__memtag_t *tag, bool reused_only);
char *zbl__mem_alloc_aligned(size_t len, size_t align, zbl__memtag_t *tag);
void zbl__mem_free(char *p, zbl__memtag_t tag);
size_t zbl__mem_map_len(size_t len);
void zbl__mem_cache_flush(void);

/*
 * A pipe: one descriptor open for reading and writing (rfd == wfd), or two
 * where /proc is missing; size is its capacity in bytes.
 */
struct zbl__pipe {
	int rfd;
	int wfd;
	size_t size;
};

/* pipe.c */
int zbl__pipe_get(struct zbl__pipe *p, size_t min_bytes, bool scratch);
void zbl__pipe_put(struct zbl__pipe *p, size_t bytes_left);
int zbl__pipe_discard(int rfd, size_t len, size_t *moved);
int zbl__devnull(void);
size_t zbl__pipe_bytes_max(void);
bool zbl__pipes_single_fd(void);
long zbl__read_proc_long(const char *path, long dflt);
size_t zbl__held_pipe_bytes(void);

/* fdutil.c */
struct zbl__sigpipe_guard {
	sigset_t old;
	bool was_pending;
};
void zbl__sigpipe_block(struct zbl__sigpipe_guard *g);
void zbl__sigpipe_restore(struct zbl__sigpipe_guard *g, bool epipe);
int zbl__fd_flags(int fd);
bool zbl__fd_wait(int fd, int flags, short events);
bool zbl__is_fifo(int fd);
bool zbl__readable_now(int fd);
ssize_t zbl__write_iov(int fd, int64_t *off, const struct iovec *iov, int n, int flags);

/*
 * direct.c: one call's view of an O_DIRECT descriptor. Alignments come from
 * statx(STATX_DIOALIGN) at every call, never cached: a descriptor number
 * can name another file later, and F_SETFL can switch O_DIRECT.
 */
#define ZBL__DIO_ALIGN_DEFAULT ((size_t)4096)
/*
 * The period of the layout zbl_read_fd gives list memory: every byte's
 * address is congruent to its list offset modulo this (zbl.h, zbl_read_fd).
 */
#define ZBL__DIO_PAGE ((size_t)4096)

struct zbl__dio {
	int fd;
	int rfd;           /* the file reopened read-only when fd is O_WRONLY, or -1 */
	bool append;       /* O_APPEND: writes say RWF_NOAPPEND to go where asked */
	size_t mem_align;  /* memory addresses: stx_dio_mem_align */
	size_t blk;        /* file offsets and lengths: stx_dio_offset_align */
	int64_t size;      /* the file's size once asked (fstat), -1 before */
};

bool zbl__dio_init(struct zbl__dio *d, int fd, int fl);
void zbl__dio_done(struct zbl__dio *d);
int zbl__dio_position(struct zbl__dio *d, int64_t *pos);
int zbl__dio_seek(struct zbl__dio *d, int64_t pos);
int zbl__dio_read_block(struct zbl__dio *d, int64_t at, char *buf);
ssize_t zbl__dio_write(struct zbl__dio *d, const struct iovec *iov, int n, int64_t at);
ssize_t zbl__dio_write_staged(struct zbl__dio *d, char *buf, size_t span, int64_t at, size_t from,
			      size_t to);

/* ========================= 2. Storage kinds ========================= */

struct zbl__block;
struct zbl__seg;

/*
 * A storage kind: how a block's bytes are held (library memory, borrowed
 * memory, pipe pages, a file range), one file per kind (kind_*.c). Each
 * block points at its kind, and block.c reaches a kind only through these
 * operations. They are cold paths: reading bytes never goes through them,
 * since a memory block's data pointer is set at creation and a kernel
 * block's once it is materialized (Ceph's virtual get_data() on raw_pipe
 * slowed every access: docs/DESIGN.md, section "No indirect call per
 * access"). Adding a kind means adding a file that defines one of these.
 */
struct zbl__kind {
	const char *name;
	/* Bytes in kernel pages: data is NULL until materialized, and writes go by @write. */
	bool kernel;
	/* Frees the block's storage and the block itself. */
	void (*release)(struct zbl__block *b);
	/*
	 * Kernel kinds: reads the block's bytes into new memory *@data (at block
	 * offsets: data + i holds byte i), with *@tag for zbl__mem_free();
	 * *@copied is how many bytes that copied. 0 or -errno.
	 */
	int (*materialize)(struct zbl__block *b, char **data, zbl__memtag_t *tag, size_t *copied);
	/*
	 * Kernel kinds: writes @len bytes of segment @s from @skip (len <=
	 * s->len - skip) to @fd (at *@off when given; the caller advances it)
	 * without copying through user memory. @drain:
	 * the list gives these bytes up; @how: ZBL__W_MORE (more data follows),
	 * ZBL__W_NOWAIT (never wait for a blocking @fd: -EAGAIN). Returns bytes
	 * written, -errno, or ZBL__WRITE_FROM_MEMORY when the bytes must go from
	 * the block's memory copy instead (zbl__block_write does that, counted).
	 */
	ssize_t (*write)(struct zbl__seg *s, size_t skip, size_t len, int fd, int64_t *off,
			 bool drain, unsigned how);
	/*
	 * Optional: copies segment @s's bytes into @dst without keeping a copy
	 * in the block. 0, -errno, or -EAGAIN to read through the block instead.
	 */
	int (*read_window)(const struct zbl__seg *s, char *dst);
};

#define ZBL__WRITE_FROM_MEMORY ((ssize_t)-4096)

extern const struct zbl__kind zbl__kind_inline;  /* kind_mem.c: bytes after the header */
extern const struct zbl__kind zbl__kind_aligned; /* kind_mem.c: posix_memalign memory */
extern const struct zbl__kind zbl__kind_ref;     /* kind_ref.c: caller memory, released by callback */
extern const struct zbl__kind zbl__kind_file;    /* kind_file.c: a file range, read lazily */
extern const struct zbl__kind zbl__kind_pipe;    /* kind_pipe.c: kernel pages held in a pipe */

/* One cached CRC per block: crc32c of bytes [off, off+len) with seed @seed. */
struct zbl__crc_cache {
	atomic_flag lock;
	bool valid;
	size_t off;
	size_t len;
	uint32_t seed;
	uint32_t crc;
};

/* Kernel-page storage: file ranges and pipes. */
struct zbl__kblock {
	int fd;              /* file: our duplicate of the caller's descriptor */
	int64_t file_off;    /* file: offset of byte 0 of the block in the file */
	struct zbl__pipe pipe; /* pipe: holds block bytes [head, cap) */
	/*
	 * pipe: block bytes already consumed from the pipe (drained, or read
	 * into memory). Changes only under the block's pipe lock held
	 * exclusively, or while a single list holds the block.
	 */
	size_t head;
	bool sealed;         /* pipe: ran out of slots; append no more */
	bool lost;           /* pipe: emptying it failed midway; its bytes are gone (-EIO) */
	zbl__memtag_t copy_tag; /* how the materialized copy was allocated */
};

struct zbl__block {
	atomic_uint refs;
	/* Copied from kind->kernel, so that the fast paths need no second load. */
	bool kernel;
	const struct zbl__kind *kind;
	/*
	 * Readable bytes. Set at creation for memory kinds; for kernel kinds NULL
	 * until the block is materialized, then set once (release store) and never
	 * changed again, so readers only need an acquire load.
	 */
	char *_Atomic data;
	size_t cap;          /* bytes of storage */
	/*
	 * Bytes of storage handed out to segments (inline and aligned only; equal
	 * to cap for other kinds). A list may append into [fill, cap) only after
	 * it advanced fill with a compare-and-swap from the end of its own last
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
		zbl__memtag_t mem_tag; /* inline: how header and bytes were allocated; aligned: the bytes */
	} u;
	/* Inline blocks: the bytes follow the header. */
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

/* Sets up a new block of @kind; the kind's constructor fills in the rest. */
static inline void zbl__block_init(struct zbl__block *b, const struct zbl__kind *kind, char *data,
				   size_t cap, size_t fill)
{
	atomic_init(&b->refs, 1);
	b->kind = kind;
	b->kernel = kind->kernel;
	atomic_init(&b->data, data);
	b->cap = cap;
	atomic_init(&b->fill, fill);
	atomic_flag_clear(&b->crc.lock);
	b->crc.valid = false;
}

/* kind_mem.c, kind_ref.c, kind_file.c */
struct zbl__block *zbl__block_new_inline(size_t cap);
struct zbl__block *zbl__block_new_aligned(size_t cap, size_t align);
struct zbl__block *zbl__block_new_ref(const void *data, size_t len,
				      void (*release)(void *), void *ctx);
struct zbl__block *zbl__block_new_file(int fd, int64_t off, size_t len);

/* kind_pipe.c: a pipe block and filling it (zbl_splice_from, move_in.c). */
struct zbl__block *zbl__block_new_pipe(const struct zbl__pipe *p);
size_t zbl__pipe_block_room(struct zbl__block *b);
enum zbl__fill { ZBL__FILL_MOVED, ZBL__FILL_EOF, ZBL__FILL_PIPE_FULL, ZBL__FILL_EMPTY,
		 ZBL__FILL_ERROR };
enum zbl__fill zbl__pipe_block_fill(struct zbl__block *b, int fd, int64_t *off, size_t want,
				    bool wait, ssize_t *moved);
void zbl__pipe_block_seal(struct zbl__block *b);

/* block.c */
void zbl__block_put(struct zbl__block *b);
const char *zbl__block_materialize(struct zbl__block *b);
#define ZBL__W_MORE 0x1u
#define ZBL__W_NOWAIT 0x2u
ssize_t zbl__block_write(struct zbl__seg *s, size_t skip, size_t len, int fd, int64_t *off,
			 bool drain, unsigned how);
int zbl__block_read_window(const struct zbl__seg *s, char *dst);

static inline void zbl__block_get(struct zbl__block *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

static inline bool zbl__block_is_kernel(const struct zbl__block *b)
{
	return b->kernel;
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

/* Where bytes appended to a new memory block go: after those handed out (fill). */
static inline char *zbl__block_room(struct zbl__block *b)
{
	return atomic_load_explicit(&b->data, memory_order_relaxed) +
	       atomic_load_explicit(&b->fill, memory_order_relaxed);
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

/* ============================== 3. Lists ============================== */

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

/* list.c */
static inline struct zbl__seg *zbl__seg_at(const zbl_t *bl, size_t i)
{
	return &bl->v[bl->head + i];
}

size_t zbl__find(const zbl_t *bl, size_t off);
int zbl__reserve(zbl_t *bl, size_t more);
void zbl__push_seg(zbl_t *bl, struct zbl__block *b, size_t off, size_t len);
void zbl__grow_tail(zbl_t *bl, size_t n);
void zbl__drop_front(zbl_t *bl, size_t n);
void zbl__replace(zbl_t *bl, zbl_t *with);
int zbl__prepare_append(zbl_t *bl, size_t len, bool congruent, char **p1, size_t *n1,
			struct zbl__block **nb);
void zbl__commit_append(zbl_t *bl, size_t n1, size_t u1, struct zbl__block *nb, size_t u2);

/* iter.c */
int zbl__copy_range_through(const zbl_t *bl, size_t off, size_t len, char *dst);

/* crc.c */
uint32_t zbl__crc32c_block(struct zbl__block *b, size_t off, size_t len, uint32_t crc,
			   int *err);

/* Size of new blocks for small appends (the carriage), header included. */
#define ZBL__APPEND_BLOCK_TOTAL_MIN ((size_t)4096)
/* Up to one huge page: see zbl__block_new_inline(). */
#define ZBL__APPEND_BLOCK_TOTAL_MAX ((size_t)2 << 20)

/* ========================= 4. Movement ========================= */

/* move_in.c: one read (@some) or up to @len bytes into library memory; see zbl_read_fd. */
ssize_t zbl__read_copy(zbl_t *bl, int fd, int64_t *off, size_t len, bool some);

/*
 * move_out.c: zbl_splice_to() with at most @max bytes; with ZBL__OUT_DONTWAIT
 * memory goes to a socket with MSG_DONTWAIT and kernel pages never wait for
 * a blocking pipe (for the ring's engines, which bound what goes to a
 * blocking descriptor by @max and ZBL__OUT_ONE instead).
 */
#define ZBL__OUT_DONTWAIT 0x100u
#define ZBL__OUT_ONE 0x200u      /* stop after one write (a segment, or a run of memory) */
ssize_t zbl__write_list(zbl_t *bl, int fd, int64_t *off, unsigned flags, size_t max);

#endif /* ZBL_INT_H */
