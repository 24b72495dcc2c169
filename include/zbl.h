/* SPDX-License-Identifier: MIT */
/**
 * @file zbl.h
 * @brief zbl: reference-counted bufferlists whose data can stay in kernel pages.
 *
 * A list (::zbl_t) is an ordered sequence of segments; each segment is a window
 * (offset, length) onto a reference-counted storage block. A block holds user
 * memory, library memory, kernel pages held in a pipe, or a range of a file.
 * Slicing and sharing never copy bytes; moving data between descriptors uses
 * splice(2)/tee(2) where the kernel allows it, and every copy the library makes
 * instead is counted (see ::zbl_stats).
 *
 * Conventions for every function:
 * - `int` results are 0 on success or a negative errno value; `ssize_t` results
 *   are a byte count (>= 0) or a negative errno value. errno is not the error
 *   channel, except for functions returning pointers (NULL, errno set).
 * - A failed call leaves its arguments as they were, unless documented otherwise.
 * - Out-of-range offsets or lengths give -ERANGE; NULL or otherwise invalid
 *   arguments give -EINVAL. Nothing aborts, asserts or exits on bad input.
 * - One list is used by one thread at a time; lists sharing storage may be used
 *   by different threads at once. Statistics are process-wide and thread-safe.
 * - No signal escapes: writing to a socket or pipe whose peer is gone returns
 *   -EPIPE (or -ECONNRESET) and SIGPIPE never kills the process.
 *
 * Kernel pages are references, not snapshots: bytes taken from a file by
 * zbl_append_file() or zbl_splice_from() are the file's page-cache pages and
 * change if the file is written before they are consumed. Reading them
 * (copy_out, iterators, crc32c...) copies a block into memory once, and later
 * reads see that copy; writing them out (zbl_write_fd, zbl_splice_to) still
 * moves the pages themselves, so if the file was changed in between, what is
 * written is the file's new bytes, not what was read (and not what a CRC
 * computed earlier covers). Bytes from sockets and pipes never change.
 */
#ifndef ZBL_H
#define ZBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Library version as a string, "major.minor.patch". */
#define ZBL_VERSION_STRING "0.1.0"

/**
 * @brief A bufferlist: an ordered sequence of segments onto shared storage.
 *
 * Opaque; create with zbl_new() and release with zbl_free().
 */
typedef struct zbl zbl_t;

/**
 * @brief A read cursor over a list, allocated by the caller (usually on the stack).
 *
 * Initialise it with zbl_iter_init(). It is invalid after the list is modified.
 * The fields are private to the library.
 */
typedef struct zbl_iter {
	const zbl_t *_bl;    /**< private: the list */
	size_t _seg;         /**< private: index of the current segment */
	size_t _seg_off;     /**< private: offset inside the current segment */
	size_t _off;         /**< private: offset inside the list */
} zbl_iter_t;

/**
 * @brief Process-wide counters, read with zbl_stats_get().
 *
 * Every byte that enters or leaves a list through the library is counted in
 * exactly one of the "in" and one of the "out" counters, so a program can tell
 * whether its data moved as kernel pages or was copied. bytes_direct,
 * bytes_staged, bytes_sent_zerocopy and bytes_zerocopy_copied are not a
 * third kind: they say how bytes already counted in bytes_copied_in or
 * bytes_copied_out met a descriptor opened with O_DIRECT (see "File
 * descriptors"), or went by a zero-copy send (see "Asynchronous I/O:
 * rings").
 */
struct zbl_stats {
	uint64_t bytes_copied_in;     /**< bytes put into lists by a user-space copy */
	uint64_t bytes_spliced_in;    /**< bytes put into lists as kernel pages, not copied */
	uint64_t bytes_copied_out;    /**< bytes written out from user memory (write/writev) */
	uint64_t bytes_spliced_out;   /**< bytes written out by splice from kernel pages */
	uint64_t bytes_teed;          /**< bytes duplicated pipe-to-pipe by tee */
	uint64_t bytes_materialized;  /**< kernel-page bytes copied into user memory to be read */
	uint64_t materializations;    /**< how many times that happened */
	uint64_t fallbacks;           /**< zero-copy requests that had to copy instead */
	uint64_t pipes_created;       /**< pipes ever created */
	uint64_t pipes_live;          /**< pipes open now, pooled ones included */
	uint64_t bytes_sent_zerocopy;   /**< memory bytes the kernel sent without copying them (io_uring SEND_ZC; also in bytes_copied_out) */
	uint64_t bytes_zerocopy_copied; /**< memory bytes sent zero-copy that the kernel copied anyway (loopback always does; also in bytes_copied_out) */
	uint64_t bytes_direct;          /**< bytes moved by direct I/O straight from/to list memory (also in bytes_copied_out or bytes_copied_in) */
	uint64_t bytes_staged;          /**< bytes copied through aligned memory to meet direct-I/O alignment (also in bytes_copied_out) */
	uint64_t ring_ops;              /**< ring operations completed */
	uint64_t ring_sync_ops;         /**< of those, by the synchronous engine */
};

/**
 * @brief Flag for zbl_splice_to(): remove the bytes written from the front of the list.
 *
 * Draining lets the library move kernel pages that only this list references
 * straight out of their pipe, without duplicating them with tee first.
 */
#define ZBL_DRAIN 0x1u

/**
 * @brief Flag for zbl_splice_from(): return what has arrived, as recv(2) does.
 *
 * The call returns as soon as one splice has moved bytes and found no more
 * waiting: a blocking descriptor is waited on only until the first bytes
 * come, and a non-blocking one is not asked again for more (no closing
 * EAGAIN). Without it, the call waits for @p len bytes on a blocking
 * descriptor and takes bytes until EAGAIN on a non-blocking one. For a
 * relay that forwards bytes as they come, whatever its threading.
 */
#define ZBL_SOME 0x2u

/* ------------------------------------------------------------------------ */
/** @name Lifecycle and queries */
/** @{ */

/**
 * @brief Creates an empty list.
 * @return the list, or NULL with errno ENOMEM.
 * Release it with zbl_free().
 * @par May it copy?
 * No: it allocates the list's header only.
 */
zbl_t *zbl_new(void);

/**
 * @brief Frees a list and drops its references to storage.
 *
 * Storage shared with other lists stays alive for them; a block whose last
 * reference goes away is released (user memory through its release callback).
 * @param bl the list, or NULL (no-op). @p bl is invalid after the call.
 * @par May it copy?
 * No: storage whose last reference goes is released without being read (a
 * pipe still holding bytes is closed).
 */
void zbl_free(zbl_t *bl);

/**
 * @brief Empties a list, dropping its references to storage.
 * @param bl the list, or NULL (no-op).
 * @par May it copy?
 * No: as with zbl_free(), storage is released without being read.
 */
void zbl_clear(zbl_t *bl);

/**
 * @brief Total bytes in the list. O(1).
 * @param bl the list; NULL gives 0.
 * @return the list's length in bytes.
 * @par May it copy?
 * No: it reads the list's own bookkeeping.
 */
size_t zbl_length(const zbl_t *bl);

/**
 * @brief Number of segments in the list (Ceph's get_num_buffers). O(1).
 * @param bl the list; NULL gives 0.
 * @return the number of segments.
 * @par May it copy?
 * No: it reads the list's own bookkeeping.
 */
size_t zbl_segments(const zbl_t *bl);

/**
 * @brief Whether the list has at most one segment.
 * @param bl the list; NULL gives true (an empty list is contiguous).
 * @return true for zero or one segment, false for more.
 * @par May it copy?
 * No: it reads the list's own bookkeeping.
 */
bool zbl_is_contiguous(const zbl_t *bl);

/**
 * @brief Bytes of the list held only as kernel pages (pipe or file segments)
 *        and not yet copied into user memory.
 *
 * `zbl_kernel_bytes(bl) == zbl_length(bl)` asserts that nothing in the list
 * has been materialized. O(segments).
 * @param bl the list; NULL gives 0.
 * @return those bytes.
 * @par May it copy?
 * No: it counts bytes without reading them.
 */
size_t zbl_kernel_bytes(const zbl_t *bl);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Adding data */
/** @{ */

/**
 * @brief Copies @p len bytes to the end of the list.
 *
 * The bytes go into the tail room of the last library-owned block when it has
 * room (no new segment), otherwise into a new block.
 * @param bl the list.
 * @param data the bytes; may be NULL only when @p len is 0.
 * @param len how many bytes.
 * @return 0; -EINVAL if @p bl is NULL or @p data is NULL with @p len > 0;
 *         -ERANGE if the list's length would overflow; -ENOMEM (list
 *         unchanged).
 * @par May it copy?
 * Always: the bytes are copied into library memory, counted in
 * bytes_copied_in. zbl_append_ref() appends caller memory without a copy.
 */
int zbl_append(zbl_t *bl, const void *data, size_t len);

/**
 * @brief Appends @p len zero bytes.
 * @return 0; -EINVAL if @p bl is NULL; -ERANGE if the list's length would
 *         overflow; -ENOMEM (list unchanged).
 * @par May it copy?
 * It writes @p len zero bytes into library memory, counted in
 * bytes_copied_in.
 */
int zbl_append_zero(zbl_t *bl, size_t len);

/**
 * @brief Appends all of @p src to @p dst, sharing its storage. Never copies bytes.
 *
 * @p src is unchanged. @p dst may be @p src (the list is doubled).
 * @return 0; -EINVAL if either is NULL; -ERANGE if the length of @p dst
 *         would overflow; -ENOMEM (dst unchanged).
 * @par May it copy?
 * Never: @p dst shares the blocks of @p src, each gaining a reference.
 */
int zbl_append_list(zbl_t *dst, const zbl_t *src);

/**
 * @brief Moves all segments of @p src to the end of @p dst. Never copies bytes.
 *
 * After the call @p src is empty (and still a valid list).
 * @return 0; -EINVAL if either is NULL or they are the same list; -ERANGE
 *         if the length of @p dst would overflow; -ENOMEM (both unchanged).
 * @par May it copy?
 * Never: the segments themselves move to @p dst.
 */
int zbl_claim_append(zbl_t *dst, zbl_t *src);

/**
 * @brief Appends caller memory without copying it.
 *
 * The list (and every list it shares the block with) refers to @p data
 * directly. `release(ctx)` is called exactly once, from whichever thread drops
 * the last reference, when no list refers to the memory any more; it is also
 * called (before returning) if the append fails with -ERANGE or -ENOMEM, so
 * ownership passes to the library on every call but one with invalid
 * arguments. The caller must not change or free the memory until then.
 * @param bl the list.
 * @param data the memory; may be NULL only when @p len is 0.
 * @param len its length; 0 appends nothing (release is still called once).
 * @param release called when the memory is no longer referenced, or NULL.
 * @param ctx passed to @p release.
 * @return 0; -EINVAL if @p bl is NULL or @p data is NULL with @p len > 0 (then
 *         @p release is not called); -ERANGE if the list's length would
 *         overflow; -ENOMEM.
 * @par May it copy?
 * Never: the list refers to @p data itself, and so does every list that
 * shares the block.
 */
int zbl_append_ref(zbl_t *bl, const void *data, size_t len,
		   void (*release)(void *ctx), void *ctx);

/**
 * @brief Appends a lazy reference to bytes [off, off+len) of a regular file.
 *
 * Nothing is read now. The library keeps its own duplicate of @p fd (closed
 * when the last reference goes), so the caller may close @p fd at once. The
 * bytes are read from the file when they are first read through the list,
 * and written out by splice from the file (no user-space copy) by
 * zbl_write_fd()/zbl_splice_to(). They are the file's bytes at the time they
 * are read or written out: if the file changes before then, the list sees the
 * new bytes; if it shrinks, reads fail with -EIO and writes with -ENODATA.
 * @return 0; -EINVAL if @p bl is NULL, @p fd is not an open regular file, or
 *         @p off is negative; -ERANGE if the range ends past end of file;
 *         -EMFILE/-ENFILE if the descriptor cannot be duplicated; -ENOMEM.
 * @par May it copy?
 * Not now: nothing is read. Reading the bytes through the list later
 * (zbl_copy_out(), iterators, zbl_crc32c()...) copies the whole range into
 * memory once, counted in bytes_materialized and materializations. Writing
 * them out (zbl_write_fd(), zbl_splice_to()) goes by sendfile(2), or
 * copy_file_range(2) at an offset, without a user-space copy (counted in
 * bytes_spliced_out); where the kernel refuses those for the two
 * descriptors, the bytes are copied through a 64 KiB buffer instead, counted
 * in fallbacks and bytes_copied_out.
 */
int zbl_append_file(zbl_t *bl, int fd, int64_t off, size_t len);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Slicing */
/** @{ */

/**
 * @brief Replaces @p dst with bytes [off, off+len) of @p src, sharing storage.
 *
 * @p dst may be @p src. Finding @p off is O(log segments).
 * @return 0; -EINVAL if either is NULL; -ERANGE if off + len > length(src);
 *         -ENOMEM. On failure @p dst is unchanged.
 * @par May it copy?
 * Never: @p dst shares the storage of @p src.
 */
int zbl_substr_of(zbl_t *dst, const zbl_t *src, size_t off, size_t len);

/**
 * @brief Removes bytes [off, off+len) from @p bl.
 *
 * If @p claim_by is not NULL the removed bytes are appended to it, sharing
 * storage. `len == 0` is a no-op returning 0 (after the range check).
 * Removing from the front is O(log segments); from the middle it moves the
 * segment array, O(segments).
 * @return 0; -EINVAL if @p bl is NULL or @p claim_by is @p bl; -ERANGE if
 *         off + len > length(bl) or the length of @p claim_by would
 *         overflow; -ENOMEM (both unchanged).
 * @par May it copy?
 * Never: the removed bytes are dropped, or @p claim_by shares their storage.
 */
int zbl_splice(zbl_t *bl, size_t off, size_t len, zbl_t *claim_by);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Reading */
/** @{ */

/**
 * @brief Copies bytes [off, off+len) of the list to @p dst.
 *
 * @return 0; -EINVAL if @p bl is NULL or @p dst is NULL with @p len > 0;
 *         -ERANGE if off + len > length; -EIO/-ENOMEM if kernel pages could
 *         not be read.
 * @par May it copy?
 * Yes, into @p dst (not counted: the bytes stay in the list). Kernel-page
 * segments are first copied into memory, once per block, counted in
 * bytes_materialized and materializations (traced as "materialize"); later
 * reads of the block, through any list, use that copy. A pipe block is
 * duplicated with tee(2) into a scratch pipe and read from there, so its
 * pages stay in the pipe for zero-copy writes. Where no scratch pipe can be
 * had (the pipe budget or descriptors are spent) the block's own pipe is
 * emptied into memory instead, counted in fallbacks too, and later writes of
 * that block copy from memory.
 */
int zbl_copy_out(const zbl_t *bl, size_t off, size_t len, void *dst);

/**
 * @brief Pointer to all bytes of the list, contiguous.
 *
 * Rebuilds the list into one memory segment if it has several or its only
 * segment holds kernel pages (a copy). The bytes are read-only: writing
 * through the pointer is not allowed, as other lists may share them and
 * cached CRCs would go stale (if you do, call zbl_invalidate_crc()).
 * @return the bytes, valid until the list is next modified or freed; NULL
 *         with errno 0 for an empty list; NULL with errno EINVAL (bl NULL),
 *         ENOMEM or EIO on failure (list unchanged).
 * @par May it copy?
 * Yes, unless the list already is one memory segment: its bytes are copied
 * into one new block, memory segments with memcpy (not counted, as no byte
 * enters or leaves the list) and kernel pages from their pipe or file
 * (counted in bytes_materialized).
 */
const char *zbl_c_str(zbl_t *bl);

/**
 * @brief Makes the list one memory segment (a copy unless it already is one).
 * @return 0; -EINVAL if @p bl is NULL; -ENOMEM or -EIO (list unchanged).
 * @par May it copy?
 * Yes, unless the list already is one memory segment: as zbl_c_str(), it
 * copies every segment into one new block, memory with memcpy (not counted)
 * and kernel pages from their pipe or file (counted in bytes_materialized).
 */
int zbl_rebuild(zbl_t *bl);

/**
 * @brief Makes every segment start at an address aligned to @p align and
 *        merges segments where that needs a copy anyway.
 *
 * Segments that already start aligned and have a length that is a multiple
 * of @p align (or are last) are kept; each run of other segments is copied
 * into one new aligned block.
 * @return 0; -EINVAL if @p bl is NULL or @p align is not a power of two;
 *         -ENOMEM or -EIO (list unchanged).
 * @par May it copy?
 * The runs of segments it replaces: memory with memcpy (not counted) and
 * kernel pages, which are always among them, from their pipe or file
 * (counted in bytes_materialized).
 */
int zbl_rebuild_aligned(zbl_t *bl, size_t align);

/**
 * @brief Compares contents in memcmp order; a proper prefix sorts first.
 * @return <0, 0 or >0. NULL sorts before any list; two NULLs are equal.
 *         Kernel pages that cannot be read compare as if empty from there on.
 * @par May it copy?
 * Not memory segments, which are compared where they are;
 * kernel-page segments are read into memory first, once per block, as
 * zbl_copy_out() describes (counted in bytes_materialized).
 */
int zbl_cmp(const zbl_t *a, const zbl_t *b);

/**
 * @brief Whether two lists have the same length and bytes.
 * @return true if equal; false otherwise or if either is NULL (two NULLs are
 *         equal) or kernel pages could not be read.
 * @par May it copy?
 * Not memory segments, which are compared where they are;
 * kernel-page segments are read into memory first, once per block, as
 * zbl_copy_out() describes (counted in bytes_materialized).
 */
bool zbl_contents_equal(const zbl_t *a, const zbl_t *b);

/**
 * @brief CRC-32C (Castagnoli) of the contents, continuing from @p crc.
 *
 * No inversion before or after (Ceph's convention):
 * `zbl_crc32c(<"A">, 0) == 0xB3109EBF`,
 * `~zbl_crc32c(<"123456789">, ~0u) == 0xE3069283`. Computed with ISA-L's
 * crc32_iscsi. The CRC of each large segment's range is cached in its block,
 * so a repeated CRC of unchanged shared data does not reread it (a different
 * seed is adjusted in O(log length)). Bytes are assumed not to change while
 * referenced; see zbl_invalidate_crc().
 * @return the CRC; for NULL or an empty list, @p crc. If kernel pages cannot
 *         be read the result covers the bytes before them and errno is set
 *         to EIO (errno is 0 otherwise).
 * @par May it copy?
 * Not memory segments, which are read where they are; kernel-page segments
 * are read into memory first, once per block, as zbl_copy_out() describes
 * (counted in bytes_materialized), even when their CRC is cached.
 */
uint32_t zbl_crc32c(const zbl_t *bl, uint32_t crc);

/**
 * @brief Forgets the cached CRCs of every block the list refers to.
 *
 * Needed only if a program changed bytes in place (memory given to
 * zbl_append_ref() or written through zbl_c_str()) against the rules.
 * @param bl the list, or NULL (no-op).
 * @par May it copy?
 * No: it reads no bytes.
 */
void zbl_invalidate_crc(zbl_t *bl);

/**
 * @brief Writes the contents to @p out in exactly the format of `hexdump -C`.
 *
 * Rows of 16 bytes; a row equal to the one before is folded into one `*`
 * line; a final line gives the length. An empty list writes nothing.
 * @return 0; -EINVAL if an argument is NULL; -EIO if writing or reading
 *         kernel pages failed.
 * @par May it copy?
 * It copies 16 bytes at a time into a buffer of its own to format them (not
 * counted);
 * kernel-page segments are read into memory first, once per block, as
 * zbl_copy_out() describes (counted in bytes_materialized).
 */
int zbl_hexdump(const zbl_t *bl, FILE *out);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Iterators */
/** @{ */

/**
 * @brief Initialises a cursor at offset @p off of @p bl. O(log segments).
 * @return 0; -EINVAL if @p it or @p bl is NULL; -ERANGE if off > length.
 * @par May it copy?
 * No: it reads no bytes.
 */
int zbl_iter_init(zbl_iter_t *it, const zbl_t *bl, size_t off);

/**
 * @brief Moves the cursor forward by @p n bytes.
 * @return 0; -EINVAL if @p it is NULL; -ERANGE (cursor unchanged) if fewer
 *         than @p n bytes remain.
 * @par May it copy?
 * No: it skips bytes without reading them.
 */
int zbl_iter_advance(zbl_iter_t *it, size_t n);

/**
 * @brief Offset of the cursor in its list.
 * @return the offset; 0 for NULL.
 * @par May it copy?
 * No: it reads the cursor only.
 */
size_t zbl_iter_offset(const zbl_iter_t *it);

/**
 * @brief Bytes after the cursor.
 * @return how many bytes follow the cursor; 0 for NULL.
 * @par May it copy?
 * No: it reads the cursor only.
 */
size_t zbl_iter_remaining(const zbl_iter_t *it);

/**
 * @brief Copies @p len bytes at the cursor to @p dst and advances.
 * @return 0; -EINVAL for NULL arguments; -ERANGE (cursor unchanged) if fewer
 *         than @p len remain; -EIO if kernel pages could not be read.
 * @par May it copy?
 * Yes, into @p dst (not counted: the bytes stay in the list);
 * kernel-page segments are read into memory first, once per block, as
 * zbl_copy_out() describes (counted in bytes_materialized).
 */
int zbl_iter_copy(zbl_iter_t *it, size_t len, void *dst);

/**
 * @brief Points @p *p at the bytes under the cursor and advances past them.
 *
 * The pointer is valid until the list is modified or freed.
 * @return how many bytes are contiguous there, at most @p want; 0 at the end,
 *         for NULL arguments, or if kernel pages could not be read (errno
 *         EIO; *p NULL).
 * @par May it copy?
 * Not memory segments: @p *p points into the list's own storage.
 * Kernel-page segments are read into memory first, once per block, as
 * zbl_copy_out() describes (counted in bytes_materialized).
 */
size_t zbl_iter_get_ptr_and_advance(zbl_iter_t *it, size_t want, const char **p);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name File descriptors
 *
 * `off` arguments follow pread/pwrite: NULL uses and advances the
 * descriptor's own position; non-NULL starts at `*off`, leaves the position
 * alone, and advances `*off` by the bytes moved (-ESPIPE on a descriptor that
 * cannot seek).
 *
 * Direct I/O: all four functions take a regular file or block device opened
 * with O_DIRECT at any offset and length, and leave the same bytes, file
 * size and position as a buffered call; alignment never gives -EINVAL. The
 * alignment is the file's own (statx STATX_DIOALIGN; 4096 where the file
 * system does not say), asked in each call that meets O_DIRECT, never
 * cached. The library notices O_DIRECT only when the kernel refuses an
 * unaligned piece with EINVAL or, for writes, when a run of whole 512-byte
 * blocks went to a descriptor that is not a socket: other descriptors pay
 * no extra system call. Writing:
 * - runs of list memory whose address, file offset and length are aligned
 *   go straight from the list (counted in bytes_direct);
 * - everything else, kernel pages (pipe and file segments) included, is
 *   copied into aligned library memory and written in whole blocks
 *   (bytes_staged, one fallback per call, traced as "fallback: staged for
 *   O_DIRECT"); kernel pages are read into it without a copy kept in their
 *   block (counted in bytes_materialized too). Both kinds are in
 *   bytes_copied_out. Kernel pages written before the library noticed
 *   O_DIRECT went by splice, as the kernel took them;
 * - an unaligned start or end rewrites its block: the block is read from
 *   the file first (zeros past its end), so a write in the middle of a file
 *   keeps the bytes around it. Another writer of the same block at the same
 *   time can lose its bytes, as with any read-modify-write;
 * - a last block padded with zeros past the old end of the file is cut
 *   back with ftruncate(2) to where a buffered write would end the file (a
 *   file that was longer keeps its end). Readers may see the zeros for that
 *   moment; if the ftruncate fails, its error is returned and the file ends
 *   in up to one block of zeros past the data;
 * - a descriptor opened O_WRONLY cannot read those blocks: the file is
 *   opened again read-only through /proc/self/fd for it. Blocks wholly past
 *   the end of the file are never read, so writing a new file needs no
 *   /proc. Where the reopening fails (no /proc, no permission to read),
 *   the call fails with -EBADF before writing the block;
 * - O_APPEND: the bytes go at the end of the file, as write(2) puts them;
 * - with @p off NULL, the position is moved past the bytes at the end; if
 *   that lseek fails, its error is returned though the bytes are written.
 *
 * Reading: where the kernel refuses a read as unaligned, the aligned blocks
 * around the bytes asked for are read into library memory and only those
 * bytes kept (no second copy; counted in bytes_direct as well as
 * bytes_copied_in); the position, or `*off`, moves past exactly the bytes
 * returned. Aligned reads the kernel takes as they are count as any read.
 */
/** @{ */

/**
 * @brief Reads up to @p len bytes from @p fd into library memory and appends them.
 *
 * A copy (counted in bytes_copied_in). Retries EINTR; keeps reading until
 * @p len bytes, end of file, or EAGAIN on a non-blocking descriptor after
 * something was read.
 *
 * The memory is laid out for direct I/O: every byte appended lies at an
 * address congruent to its list offset modulo 4096 (the list's tail room is
 * used only where it already is, and new blocks start at the matching page
 * offset and end on a page). So a list filled from empty by any number of
 * these reads, of any sizes, written to an O_DIRECT file at a 4096-aligned
 * offset goes straight from memory but for its last partial block, which is
 * staged (see "Direct I/O" above). From an O_DIRECT descriptor, any position
 * and length work.
 * @return bytes appended; 0 at end of file; -EAGAIN if a non-blocking
 *         descriptor had nothing; -EINVAL for a NULL list or negative fd;
 *         another -errno from read(2) if nothing was read (an error after
 *         some bytes returns the count; the next call reports it).
 * @par May it copy?
 * Always: read(2) copies the bytes into library memory, counted in
 * bytes_copied_in. zbl_splice_from() takes them as kernel pages instead.
 */
ssize_t zbl_read_fd(zbl_t *bl, int fd, size_t len);

/**
 * @brief Writes all of @p bl to @p fd; @p bl is unchanged.
 *
 * Retries partial writes and EINTR; memory segments go by writev(2), or to
 * a socket by sendmsg(2) with MSG_NOSIGNAL (and MSG_MORE when kernel pages
 * follow, so a head and its body share packets); kernel-page segments by
 * splice(2) or sendfile(2) (see zbl_splice_to()). SIGPIPE never reaches the
 * process: it is blocked in the calling thread around the writes that can
 * raise it. To an O_DIRECT file, at the position and with any length:
 * aligned memory runs go straight (bytes_direct) and the rest is staged
 * through aligned memory (bytes_staged), as described under "Direct I/O"
 * above; the position ends just past the bytes.
 * @return bytes written (the list's length on a blocking descriptor); on a
 *         non-blocking one the bytes written before EAGAIN, or -EAGAIN if
 *         none; -EPIPE/-ECONNRESET if the peer is gone; another -errno.
 * @par May it copy?
 * Memory segments are copied by the kernel from user memory, as by any
 * write(2) (counted in bytes_copied_out). Kernel-page segments are not: they
 * go by tee(2) and splice(2), or sendfile(2), without passing through user
 * memory, except in the fallbacks zbl_splice_to() lists for @p flags 0,
 * counted in fallbacks.
 */
ssize_t zbl_write_fd(const zbl_t *bl, int fd);

/**
 * @brief Moves up to @p len bytes from @p fd into the list as kernel pages.
 *
 * @p fd may be a socket, pipe or regular file. Where the kernel cannot splice
 * from it the bytes are copied instead (counted in fallbacks and
 * bytes_copied_in), into memory laid out as zbl_read_fd() lays it. A file
 * opened with O_DIRECT that the kernel will not splice from is read at any
 * @p off and length that way (see "Direct I/O" above). Same stopping rule
 * as zbl_read_fd(). Respects the descriptor's blocking mode.
 * @param flags 0, or ::ZBL_SOME to return once bytes have arrived (others
 *        give -EINVAL).
 * @return bytes appended; 0 at end of file; -EAGAIN if a non-blocking
 *         descriptor had nothing; -EINVAL for a NULL list, a negative fd or
 *         *off, or unknown flags; -ENOMEM; another -errno from splice(2) or
 *         read(2) if nothing was read (an error after some bytes returns the
 *         count; the next call reports it).
 * @par May it copy?
 * Not where the kernel allows splicing: splice(2) moves the bytes into pipes
 * the list owns, counted in bytes_spliced_in (from a regular file the pipe
 * refers to the file's page-cache pages). The call copies instead, by read(2)
 * into library memory, counted in bytes_copied_in and once in fallbacks
 * (traced as "fallback: zbl_splice_from"), when no pipe can be had (the
 * per-user budget fs.pipe-user-pages-soft is spent, the library's pipes use
 * a quarter of RLIMIT_NOFILE, or pipe2(2) fails) or when the kernel cannot
 * splice from @p fd (splice(2) fails with EINVAL, ENOSYS or EOPNOTSUPP).
 */
ssize_t zbl_splice_from(zbl_t *bl, int fd, int64_t *off, size_t len, unsigned flags);

/**
 * @brief Writes the list to @p fd from the front, like zbl_write_fd().
 *
 * With @p flags 0 the list is unchanged and may be written again. With
 * ::ZBL_DRAIN the bytes written are removed from the front of @p bl, also
 * when the call then fails or stops at EAGAIN (partial progress is never
 * lost: the return value says how much went).
 * To an O_DIRECT file, at any *@p off and length: aligned memory runs go
 * straight (bytes_direct), the rest, kernel pages included, is staged
 * through aligned memory (bytes_staged); see "Direct I/O" above.
 * @return bytes written; on a non-blocking descriptor the bytes written
 *         before EAGAIN, or -EAGAIN if none; -EINVAL for bad arguments or
 *         unknown flags; -ESPIPE if @p off is given for an unseekable fd;
 *         -EPIPE/-ECONNRESET if the peer is gone; -EBADF if an O_DIRECT
 *         descriptor opened O_WRONLY needs the bytes around an unaligned
 *         end and the file cannot be opened again to read them; another
 *         -errno.
 * @par May it copy?
 * Memory segments are copied by the kernel from user memory, as by any
 * write(2) (counted in bytes_copied_out). Kernel-page segments never pass
 * through user memory: a pipe block's window is duplicated with tee(2) into
 * a scratch pipe (counted in bytes_teed) and spliced out (bytes_spliced_out);
 * with ::ZBL_DRAIN, a pipe block that only this list holds is spliced
 * straight out of its own pipe, without tee; a file range goes by
 * sendfile(2), or by copy_file_range(2) when @p off is given
 * (bytes_spliced_out). Splicing into a regular file still copies inside the
 * kernel, from the pipe's pages into the page cache. The call falls back to
 * copying through user memory, counted in fallbacks and bytes_copied_out
 * and reported to zbl_trace_set() and ZBL_TRACE, when:
 * - no scratch pipe can be had (the pipe budget or descriptors are spent),
 *   or the block's pipe was already emptied into memory: the window is
 *   written from the block's memory copy, read into memory first if need be
 *   (counted in bytes_materialized);
 * - @p fd refuses splice(2) with EINVAL (a file opened with O_APPEND): the
 *   same;
 * - sendfile(2) or copy_file_range(2) refuses the file range (EINVAL, ENOSYS,
 *   EXDEV, EOPNOTSUPP or EBADF): it is read into a 64 KiB buffer and written
 *   from there;
 * - @p fd was opened with O_DIRECT: runs of list memory at aligned
 *   addresses, offsets and lengths go straight (bytes_direct); the rest,
 *   kernel pages included, is staged through aligned memory (bytes_staged;
 *   see "Direct I/O" above).
 */
ssize_t zbl_splice_to(zbl_t *bl, int fd, int64_t *off, unsigned flags);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Instrumentation */
/** @{ */

/**
 * @brief Copies the process-wide counters into @p out (NULL: no-op).
 *
 * The sum over every thread, exited ones included, since the start or the
 * last zbl_stats_reset(). Each counter is read atomically; the set is not one
 * snapshot while other threads work.
 * @par May it copy?
 * No list bytes: it copies counters only.
 */
void zbl_stats_get(struct zbl_stats *out);

/**
 * @brief Copies the calling thread's own counters into @p out (NULL: no-op).
 *
 * What the library did in this thread since the thread first called it, not
 * changed by zbl_stats_reset(): take the difference of two calls to see what
 * one request cost in a server with a loop per thread. pipes_live is the
 * process-wide gauge. All zeros (but pipes_live) in the unlikely case that
 * the thread could not get memory for counters of its own; it then counts in
 * the process-wide ones only.
 * @par May it copy?
 * No list bytes: it copies counters only.
 */
void zbl_stats_thread_get(struct zbl_stats *out);

/**
 * @brief Makes every process-wide counter but pipes_live start again from zero.
 * @par May it copy?
 * No: it touches counters only.
 */
void zbl_stats_reset(void);

/**
 * @brief Closes every idle pooled pipe, and unmaps the memory kept for reuse
 * (at most 64 MiB, from freed blocks of 128 KiB or more: materialized kernel
 * pages and the large blocks that long lists of small appends grow into).
 * @par May it copy?
 * No: it closes and unmaps, and no list loses bytes (pooled pipes are empty,
 * kept memory belongs to no block).
 */
void zbl_pool_flush(void);

/**
 * @brief A trace callback: @p what names the event ("materialize" when kernel
 *        pages were copied into memory to be read, "fallback: <function>" when
 *        a zero-copy request had to copy), @p bytes how many bytes were copied.
 *
 * Called in the thread that copied, from inside the library: it must not
 * call back into the library with a list it was given by that thread.
 */
typedef void (*zbl_trace_fn)(const char *what, size_t bytes, void *ctx);

/**
 * @brief Installs (or, with NULL, removes) a process-wide trace callback,
 *        called for every materialization and fallback.
 *
 * Independently, setting the environment variable ZBL_TRACE=1 prints each
 * event to stderr with a backtrace of the call site (checked at each event).
 * @par May it copy?
 * No. The callback it installs is told of every copy the other calls make.
 */
void zbl_trace_set(zbl_trace_fn fn, void *ctx);

/**
 * @brief What this kernel and user allow, as found by zbl_caps().
 */
struct zbl_caps {
	size_t pipe_max_size;         /**< /proc/sys/fs/pipe-max-size, bytes */
	size_t pipe_bytes;            /**< size the library asks for each pipe, bytes */
	size_t pipe_user_pages_soft;  /**< per-user budget, pages (0: unlimited or unknown) */
	size_t pipe_bytes_held;       /**< bytes of pipe capacity this process holds now */
	bool budget_applies;          /**< false if this process may exceed the budget (CAP_SYS_ADMIN/CAP_SYS_RESOURCE) */
	bool single_fd_pipes;         /**< one descriptor per pipe via /proc/self/fd */
	bool splice_file_aliases;     /**< file->pipe splice shares page-cache pages (later file writes show through) */
	bool vmsplice_aliases;        /**< vmsplice shares user pages instead of copying them */
	bool io_uring;                /**< an io_uring can be set up here: zbl_ring_new() uses it */
	const char *io_uring_why_not; /**< why not (kernel.io_uring_disabled, a seccomp/container refusal, no kernel support); NULL when it can */
	bool send_zc;                 /**< io_uring zero-copy sends (SEND_ZC) are supported */
	uint64_t memlock_limit;       /**< RLIMIT_MEMLOCK, bytes (UINT64_MAX: unlimited): pages pinned by zero-copy sends count against it */
};

/**
 * @brief Fills @p out with what this kernel and user allow.
 *
 * The first call probes the kernel (a few pipe and file operations on a
 * temporary file, well under a millisecond); later calls reuse the probe.
 * The library never relies on aliasing for correctness; the probe results
 * are reported so a program can tell what a "zero-copy" path means here.
 * To let an unprivileged user hold more data in pipes, raise the sysctl
 * fs.pipe-user-pages-soft (pages, per user across all its processes).
 * @return 0; -EINVAL if @p out is NULL.
 * @par May it copy?
 * No list bytes (the first call's probe moves a few bytes of its own through
 * pipes and a temporary file).
 */
int zbl_caps(struct zbl_caps *out);

/** @} */
/* ------------------------------------------------------------------------ */
/**
 * @name Asynchronous I/O: rings
 *
 * A ring queues operations on lists and descriptors and reports each one's
 * completion through a callback. Its engine is io_uring where the kernel and
 * the process allow it, and otherwise a synchronous engine with the same
 * behaviour: io_uring may be missing, disabled by kernel.io_uring_disabled,
 * or refused by a container's seccomp profile (Docker since 25.0,
 * Kubernetes' default), so the synchronous engine is a first-class engine,
 * not a degraded one.
 *
 * Rules for every ring operation:
 * - Submission functions return 0 when queued or -errno (nothing queued, the
 *   list unchanged); then the callback runs exactly once, always from
 *   zbl_ring_run() or zbl_ring_free(), never from inside a submission.
 * - On one descriptor, writes and fsyncs run in submission order and their
 *   bytes never interleave; reads run in submission order too. A read
 *   waiting for data never holds up a write to the same descriptor.
 * - Release callbacks of zbl_append_ref() memory held by an operation run
 *   from zbl_ring_run() or zbl_ring_free(), never from a submission function
 *   or zbl_ring_cancel().
 * - A ring is used by one thread at a time; different rings may share
 *   lists' storage across threads.
 * - zbl_ring_run() does not wait on a socket or pipe that is not ready, nor,
 *   with the io_uring engine, on a disk write, beyond its timeout. The
 *   synchronous engine writes files with blocking calls.
 * - The same operations on the two engines give the same bytes, results and
 *   callbacks.
 *
 * Zero-copy sends: memory segments written to a TCP or UDP socket may go by
 * io_uring SEND_ZC, where the kernel sends from the list's pages and says
 * when it no longer needs them; their blocks (and zbl_append_ref() release
 * callbacks) are held until then, which may be after the operation's
 * callback and lasts until the peer acknowledges the data. Only runs of at
 * least 16 KiB go this way, within a budget of pinned memory. On loopback
 * the kernel always copies (counted in bytes_zerocopy_copied), and a socket
 * whose sends were copied stops using zero-copy.
 */
/** @{ */

/** @brief A ring of asynchronous operations; see zbl_ring_new(). */
typedef struct zbl_ring zbl_ring_t;

/**
 * @brief Completion callback: @p result is the operation's result (bytes or
 *        0 on success, -errno on failure, -ECANCELED when cancelled).
 */
typedef void (*zbl_ring_cb)(zbl_ring_t *ring, ssize_t result, void *arg);

/** @brief Flag for zbl_ring_new(): use the synchronous engine. */
#define ZBL_RING_SYNC 0x1u

/** @brief Flag for zbl_ring_fsync(): fdatasync instead of fsync. */
#define ZBL_DATASYNC 0x1u

/**
 * @brief A ring with up to @p entries operations in the kernel at once
 *        (0: a library default of 64); more may be queued.
 *
 * Falls back to the synchronous engine by itself where io_uring cannot be
 * set up (zbl_caps() says why), and with ::ZBL_RING_SYNC.
 * @return the ring; NULL with errno ENOMEM, or EINVAL for unknown flags or
 *         more than 4096 entries.
 * @par May it copy?
 * No: it moves no bytes.
 */
zbl_ring_t *zbl_ring_new(unsigned entries, unsigned flags);

/**
 * @brief Cancels every operation not yet complete, runs every outstanding
 *        callback (-ECANCELED for cancelled ones), waits until the kernel
 *        references no block of any operation (zero-copy notifications
 *        included; a disk write already in the kernel is waited for), and
 *        frees the ring. NULL is a no-op. Not from inside a callback.
 * @par May it copy?
 * No: it moves no bytes.
 */
void zbl_ring_free(zbl_ring_t *ring);

/**
 * @brief Names the ring's engine.
 * @return "io_uring" whenever an io_uring could be set up for the ring,
 *         otherwise "sync"; NULL for a NULL ring.
 * @par May it copy?
 * No.
 */
const char *zbl_ring_backend(const zbl_ring_t *ring);

/**
 * @brief A descriptor that polls readable whenever zbl_ring_run(ring, 0, 0)
 *        would run a callback or make progress, for an epoll or poll loop.
 * @return the descriptor (owned by the ring), or -EINVAL.
 * @par May it copy?
 * No.
 */
int zbl_ring_fd(const zbl_ring_t *ring);

/**
 * @brief Submits what is queued, runs the callbacks of what has completed
 *        (in this thread), and waits until at least @p min_done callbacks
 *        have run or @p timeout_ms passed (-1: no limit).
 *
 * With @p min_done 0 it does not wait. With nothing queued or in flight it
 * returns at once.
 * @return how many callbacks ran (0 on timeout), or -errno (-EINVAL, or
 *         -EBUSY from inside a callback).
 * @par May it copy?
 * Only as the operations it runs do (see each).
 */
int zbl_ring_run(zbl_ring_t *ring, unsigned min_done, int timeout_ms);

/**
 * @brief Reads into library memory appended to @p bl (a copy).
 *
 * Sockets and pipes (@p off -1): completes with what one receive returns,
 * as recv(2). Files (@p off >= 0): up to @p len, short only at end of file;
 * with O_DIRECT, any offset and length. The memory is laid out for direct
 * I/O: every byte's address is congruent to its list offset modulo 4096
 * when the list's earlier bytes are (an empty list is).
 * @p bl belongs to the operation until its callback: do not use it before.
 * @param flags 0 or ::ZBL_SOME (the same: a stream read always returns what
 *        one receive gives).
 * @return 0 when queued; -EINVAL for bad arguments. The callback's result:
 *         bytes appended, 0 at end of data, or -errno.
 * @par May it copy?
 * Yes, always: the bytes are read into library memory (bytes_copied_in).
 * A read from an O_DIRECT file at an unaligned offset or length reads the
 * aligned blocks around it and keeps the window (bytes_staged).
 */
int zbl_ring_read(zbl_ring_t *ring, zbl_t *bl, int fd, int64_t off, size_t len, unsigned flags,
		  zbl_ring_cb cb, void *arg);

/**
 * @brief Like zbl_ring_read(), but takes the bytes as kernel pages, as
 *        zbl_splice_from() with ::ZBL_SOME does.
 * @return 0 when queued; -EINVAL for bad arguments. The callback's result:
 *         bytes appended, 0 at end of data, or -errno.
 * @par May it copy?
 * As zbl_splice_from(): no where the kernel can splice from @p fd
 * (bytes_spliced_in), yes where it cannot (fallbacks, bytes_copied_in).
 */
int zbl_ring_splice_from(zbl_ring_t *ring, zbl_t *bl, int fd, int64_t off, size_t len,
			 unsigned flags, zbl_ring_cb cb, void *arg);

/**
 * @brief Writes all of @p bl to @p fd: a socket or pipe with @p off -1, a
 *        file at @p off >= 0 (its position untouched).
 *
 * At submission the operation takes its own references to the storage: with
 * @p flags 0, @p bl is unchanged and the caller may change or free it at
 * once; with ::ZBL_DRAIN, @p bl is empty on return and its blocks belong to
 * the operation. Memory segments to TCP/UDP sockets may go zero-copy (see
 * "Zero-copy sends" in zbl(3)); kernel-page and file segments move as zbl_splice_to() moves them.
 * A file opened with O_DIRECT takes any offset and length: aligned runs go
 * straight from list memory (bytes_direct), the rest through aligned memory
 * (bytes_staged).
 * @return 0 when queued; -EINVAL for bad arguments. The callback's result:
 *         the bytes written (all of them), or -errno (a prefix may have been
 *         written).
 * @par May it copy?
 * Memory is sent from the list's own pages: by SEND_ZC without a copy
 * where the kernel can (bytes_sent_zerocopy; bytes_zerocopy_copied when it
 * copied anyway, as on loopback), otherwise by the kernel's usual copy into
 * the socket or file (bytes_copied_out). Kernel pages move as in
 * zbl_splice_to(). For O_DIRECT, unaligned pieces are copied into aligned
 * memory first (bytes_staged).
 */
int zbl_ring_write(zbl_ring_t *ring, zbl_t *bl, int fd, int64_t off, unsigned flags,
		   zbl_ring_cb cb, void *arg);

/**
 * @brief fsync (fdatasync with ::ZBL_DATASYNC) of @p fd after every operation
 *        on @p fd submitted earlier to this ring has completed.
 * @return 0 when queued; -EINVAL. The callback's result: 0 or -errno.
 * @par May it copy?
 * No.
 */
int zbl_ring_fsync(zbl_ring_t *ring, int fd, unsigned flags, zbl_ring_cb cb, void *arg);

/**
 * @brief Cancels the operations on @p fd not yet complete.
 *
 * Their callbacks run (from zbl_ring_run()) with -ECANCELED, even after
 * partial progress (a stream is then in an unknown state), unless they
 * completed first.
 * @return how many were cancelled, or -errno.
 * @par May it copy?
 * No.
 */
int zbl_ring_cancel(zbl_ring_t *ring, int fd);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* ZBL_H */
