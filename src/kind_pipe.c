/* SPDX-License-Identifier: MIT */
/*
 * Pipe blocks: kernel pages held in a pipe. Filling one from a descriptor
 * (for zbl_splice_from, move_in.c), writing windows of it out (tee for
 * shared data, splice straight out when draining the only reference), and
 * reading it into memory when a program wants to look at the bytes. Layer 2
 * (see zbl_int.h).
 *
 * A pipe block holds block bytes [head, cap) in its pipe, in order. head is
 * 0 unless the only list holding the block drained bytes from its front.
 */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "zbl_int.h"

#define PIPE_LOCKS 64

/*
 * A shared pipe block's pipe is only ever duplicated (tee), which the kernel
 * makes safe between threads, except when no scratch pipe can be had and a
 * reader must empty the pipe into memory. Those two exclude each
 * other with these locks: shared for duplicating, exclusive for emptying.
 * Nothing blocks while holding one (our pipes are non-blocking).
 */
static pthread_rwlock_t pipe_locks[PIPE_LOCKS] = {
	[0 ... PIPE_LOCKS - 1] = PTHREAD_RWLOCK_INITIALIZER
};

static pthread_rwlock_t *pipe_lock_of(const struct zbl__block *b)
{
	return &pipe_locks[((uintptr_t)b >> 6) % PIPE_LOCKS];
}

static void pipe_lock(const struct zbl__block *b, bool exclusive)
{
	if (exclusive)
		pthread_rwlock_wrlock(pipe_lock_of(b));
	else
		pthread_rwlock_rdlock(pipe_lock_of(b));
}

static void pipe_unlock(const struct zbl__block *b)
{
	pthread_rwlock_unlock(pipe_lock_of(b));
}

static void release_pipe(struct zbl__block *b)
{
	zbl__mem_free(atomic_load_explicit(&b->data, memory_order_relaxed), b->u.k.copy_tag);
	zbl__pipe_put(&b->u.k.pipe, b->cap - b->u.k.head);
	free(b);
}

struct zbl__block *zbl__block_new_pipe(const struct zbl__pipe *p)
{
	struct zbl__block *b = zbl__sys_malloc(sizeof(*b));

	if (!b)
		return NULL;
	zbl__block_init(b, &zbl__kind_pipe, NULL, 0, 0);
	b->u.k.fd = -1;
	b->u.k.file_off = 0;
	b->u.k.pipe = *p;
	b->u.k.head = 0;
	b->u.k.sealed = false;
	b->u.k.lost = false;
	b->u.k.copy_tag = 0;
	return b;
}

/*
 * Duplicates the first @len bytes of @src into the empty pipe @dst with tee.
 * dst is at least as large as src, so one tee takes everything; a short tee
 * means the slots ran out and is an error.
 */
static int tee_all(int src, const struct zbl__pipe *dst, size_t len)
{
	ssize_t r;

	do {
		r = zbl__sys_tee(src, dst->wfd, len, SPLICE_F_NONBLOCK);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if ((size_t)r != len)
		return -EIO;
	ZBL__STAT_ADD(bytes_teed, r);
	return 0;
}

/* Failed reads in a row tolerated while emptying a pipe, before its bytes are given up. */
#define CONSUME_RETRIES 8

/*
 * Reads the block's bytes out of its pipe, emptying it: the way to read them
 * when no scratch pipe can be had (the pipe budget or descriptors are spent).
 * Later writes of the block then go from memory, as counted fallbacks.
 *
 * Other lists may hold the block and be duplicating its pipe in other
 * threads, so this holds the block's pipe lock exclusively. Bytes read out
 * exist only in @dst, so a failing read is retried; the pipe holds them, so
 * only an injected fault or a broken kernel fails repeatedly. Should that
 * happen after some bytes left the pipe, the block is marked lost and every
 * later use of it fails with -EIO rather than return wrong bytes.
 */
static int read_pipe_consuming(struct zbl__block *b, char *dst)
{
	int err = 0, fails = 0;

	pipe_lock(b, true);
	size_t head = b->u.k.head;
	while (head < b->cap) {
		ssize_t r = zbl__sys_read(b->u.k.pipe.rfd, dst + head, b->cap - head);
		if (r > 0) {
			head += (size_t)r;
			fails = 0;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		err = r < 0 ? -errno : -EIO;
		if (head == b->u.k.head || ++fails > CONSUME_RETRIES)
			break;
		err = 0;
	}
	if (err && head != b->u.k.head) {
		b->u.k.lost = true;
		err = -EIO;
	}
	b->u.k.head = head;
	pipe_unlock(b);
	if (err)
		return err;
	ZBL__STAT_ADD(fallbacks, 1);
	zbl__trace("fallback: materialize by emptying the pipe", b->cap);
	return 0;
}

/* Reads exactly @len bytes from the scratch pipe into @dst. */
static int read_all(int rfd, char *dst, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = zbl__sys_read(rfd, dst + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

/*
 * Maps a new memfd of @maplen bytes and moves the @len bytes in the scratch
 * pipe into it at @head: shmem takes the pipe's pages without clearing new
 * ones first, which made this three times faster than reading into fresh
 * anonymous memory (bench/experiments/materialize.c). Returns the mapping with
 * *moved set to the bytes that arrived (the caller reads any rest from the
 * pipe), or NULL with nothing moved if memfds or the mapping are unavailable.
 */
static char *splice_to_memfd(int rfd, size_t head, size_t len, size_t maplen, size_t *moved)
{
	static atomic_bool no_memfd;
	loff_t o = (loff_t)head;
	char *p = NULL;

	*moved = 0;
	if (atomic_load_explicit(&no_memfd, memory_order_relaxed))
		return NULL;
	int m = zbl__sys_memfd_create("zbl-materialized", MFD_CLOEXEC);
	if (m < 0) {
		/*
		 * Only a kernel without memfd_create turns the route off for good.
		 * These arguments are valid wherever it exists, and the other
		 * failures (descriptors, memory, a policy refusing it) may pass:
		 * meanwhile they cost one failed call per materialization.
		 */
		if (errno == ENOSYS)
			atomic_store_explicit(&no_memfd, true, memory_order_relaxed);
		return NULL;
	}
	/*
	 * The whole mapping is file-backed, so writing into it when it is
	 * reused for another block never faults past the end of the file.
	 */
	if (zbl__sys_ftruncate(m, (off_t)maplen) == 0)
		p = zbl__sys_mmap_shared(m, maplen);
	while (p && o < (loff_t)(head + len)) {
		ssize_t r = zbl__sys_splice(rfd, NULL, m, &o, head + len - (size_t)o, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
	}
	/* The mapping keeps the memory; a failed close has released m all the same. */
	zbl__sys_close(m);
	if (!p)
		return NULL;
	*moved = (size_t)o - head;
	/* Map the pages now, in one call, rather than fault them in one by one. */
	zbl__sys_madvise(p + (head & ~(size_t)4095), (size_t)o - (head & ~(size_t)4095),
			 MADV_POPULATE_READ);
	return p;
}

/*
 * Copies the block's bytes [head, cap) into new memory *data (block offsets,
 * so data + head holds the first), without consuming the block's pipe: tee
 * into a scratch pipe, then read from that. A drained block no longer holds
 * its first head bytes: they are not copied.
 */
static int materialize_pipe(struct zbl__block *b, char **data, zbl__memtag_t *tag,
			    size_t *copied)
{
	size_t head = b->u.k.head, len = b->cap - head;
	struct zbl__pipe scratch;
	char *p;
	int err;

	*data = NULL;
	*copied = len;
	if (b->u.k.lost)
		return -EIO;
	err = zbl__pipe_get(&scratch, b->u.k.pipe.size, true);
	if (err == -ENOBUFS || err == -EMFILE || err == -ENFILE) {
		p = zbl__mem_alloc(b->cap, tag, false);
		if (!p)
			return -ENOMEM;
		err = read_pipe_consuming(b, p);
		if (err < 0) {
			zbl__mem_free(p, *tag);
			return err;
		}
		*data = p;
		return 0;
	}
	if (err < 0)
		return err == -ENOMEM ? err : -EIO;
	err = len ? tee_all(b->u.k.pipe.rfd, &scratch, len) : 0;
	if (err < 0) {
		zbl__pipe_put(&scratch, 1);
		return err;
	}
	/* Reused memory first, then a memfd, then fresh memory. */
	p = zbl__mem_alloc(b->cap, tag, true);
	size_t moved = 0, maplen = zbl__mem_map_len(b->cap);
	if (!p && maplen) {
		p = splice_to_memfd(scratch.rfd, head, len, maplen, &moved);
		if (p)
			*tag = zbl__memtag_map(maplen, true);
	}
	if (!p)
		p = zbl__mem_alloc(b->cap, tag, false);
	err = p ? read_all(scratch.rfd, p + head + moved, len - moved) : -ENOMEM;
	/* On error the scratch pipe may still hold bytes: pipe_put closes it then. */
	zbl__pipe_put(&scratch, err ? 1 : 0);
	if (err < 0) {
		zbl__mem_free(p, *tag);
		return err;
	}
	*data = p;
	return 0;
}

/*
 * Puts exactly block bytes [from, from+len) of @b into a new scratch pipe:
 * tee the pipe's front, then drop what precedes the window. Another thread
 * may be emptying a shared block's pipe into memory, so the tee holds the
 * block's pipe lock shared. Returns 0 with *scratch holding the window;
 * -EAGAIN if no scratch pipe can be had or the bytes were already read out
 * of the pipe (use the block's memory copy); -EIO if they are lost.
 */
static int tee_window(struct zbl__block *b, size_t from, size_t len, struct zbl__pipe *scratch)
{
	int err;

	if (zbl__pipe_get(scratch, b->u.k.pipe.size, true) < 0)
		return -EAGAIN;
	pipe_lock(b, false);
	bool emptied = from < b->u.k.head;
	size_t rel = emptied ? 0 : from - b->u.k.head;
	err = b->u.k.lost ? -EIO : emptied ? -EAGAIN : tee_all(b->u.k.pipe.rfd, scratch, rel + len);
	pipe_unlock(b);
	if (!err)
		err = zbl__pipe_discard(scratch->rfd, rel, NULL);
	if (err < 0)
		zbl__pipe_put(scratch, err == -EAGAIN ? 0 : 1);
	return err;
}

/*
 * Copies the segment's bytes straight into @dst without keeping a copy in the
 * block: for rebuild and c_str, which replace the segment by new memory, so
 * a cached copy would be made only to be copied again and dropped. Returns
 * -EAGAIN when this cannot be done this way (no scratch pipe, or the pipe was
 * emptied into memory); the caller then reads through the block as usual.
 */
static int read_window_pipe(const struct zbl__seg *s, char *dst)
{
	struct zbl__block *b = s->b;
	struct zbl__pipe scratch;
	int err;

	err = tee_window(b, s->off, s->len, &scratch);
	if (err < 0)
		return err;
	err = read_all(scratch.rfd, dst, s->len);
	zbl__pipe_put(&scratch, err ? 1 : 0);
	return err;
}

/*
 * Splices @len bytes from pipe descriptor @rfd to @fd (at *off + done when
 * off is given). Returns bytes moved, or -errno if none. Blocks as @fd does,
 * unless @how has ZBL__W_NOWAIT.
 */
static ssize_t splice_out(int rfd, int fd, int64_t *off, size_t len, unsigned how)
{
	size_t done = 0;

	while (done < len) {
		loff_t o = off ? *off + (int64_t)done : 0;
		/* MSG_MORE on the last bytes would cork them in TCP for 200 ms. */
		ssize_t r = zbl__sys_splice(rfd, NULL, fd, off ? &o : NULL, len - done,
					    (how & ZBL__W_MORE) ? SPLICE_F_MORE : 0);
		if (r < 0 && errno == EINTR)
			continue;
		/*
		 * Our pipe is O_NONBLOCK, and the kernel makes a pipe-to-pipe
		 * splice non-blocking if either end is: for a blocking
		 * destination, wait as write(2) would.
		 */
		if (r < 0 && errno == EAGAIN && !(how & ZBL__W_NOWAIT) && zbl__is_fifo(fd) &&
		    zbl__fd_wait(fd, zbl__fd_flags(fd), POLLOUT))
			continue;
		if (r <= 0) {
			if (done)
				break;
			return r < 0 ? -errno : -EIO;
		}
		done += (size_t)r;
		ZBL__STAT_ADD(bytes_spliced_out, r);
	}
	return (ssize_t)done;
}

/*
 * Writes a window of a pipe block: straight out of the block's pipe when
 * this list is its only holder and gives the bytes up, through a scratch
 * pipe filled by tee otherwise.
 */
static ssize_t write_pipe(struct zbl__seg *s, size_t skip, size_t len, int fd, int64_t *off,
			  bool drain, unsigned how)
{
	struct zbl__block *b = s->b;
	struct zbl__pipe scratch;
	ssize_t r;
	int err;

	if (drain && atomic_load_explicit(&b->refs, memory_order_acquire) == 1) {
		/*
		 * Only this list holds the block and it gives the bytes up: move
		 * them straight out of the block's pipe, no tee. Nobody else can
		 * touch the pipe, so no lock either.
		 */
		if (b->u.k.lost)
			return -EIO;
		/* The pipe was emptied into memory (read_pipe_consuming): write from there. */
		if (s->off + skip < b->u.k.head)
			return ZBL__WRITE_FROM_MEMORY;
		size_t rel = s->off + skip - b->u.k.head, moved;
		err = zbl__pipe_discard(b->u.k.pipe.rfd, rel, &moved);
		b->u.k.head += moved;
		if (err < 0)
			return err;
		r = splice_out(b->u.k.pipe.rfd, fd, off, len, how);
		if (r > 0)
			b->u.k.head += (size_t)r;
		if (r == -EINVAL) /* a destination splice refuses, e.g. O_APPEND */
			return ZBL__WRITE_FROM_MEMORY;
		return r;
	}
	/* Shared or kept: duplicate the pipe's front, drop the head, send the window. */
	err = tee_window(b, s->off + skip, len, &scratch);
	if (err == -EAGAIN)
		return ZBL__WRITE_FROM_MEMORY;
	if (err < 0)
		return err;
	r = splice_out(scratch.rfd, fd, off, len, how);
	size_t left = r > 0 ? len - (size_t)r : len;
	/* Empty the scratch pipe so it can be pooled; if that fails it is closed. */
	if (left && zbl__pipe_discard(scratch.rfd, left, NULL) == 0)
		left = 0;
	zbl__pipe_put(&scratch, left);
	if (r == -EINVAL) /* a destination splice refuses, e.g. O_APPEND */
		return ZBL__WRITE_FROM_MEMORY;
	return r;
}

const struct zbl__kind zbl__kind_pipe = {
	.name = "pipe",
	.kernel = true,
	.release = release_pipe,
	.materialize = materialize_pipe,
	.write = write_pipe,
	.read_window = read_window_pipe,
};

/*
 * How many more bytes a pipe block can take from zbl_splice_from: 0 unless
 * it is a pipe block that only one list holds, that nobody has read into
 * memory and that has not run out of slots. The list checks that its
 * window runs to the block's end.
 */
size_t zbl__pipe_block_room(struct zbl__block *b)
{
	size_t held;

	if (b->kind != &zbl__kind_pipe ||
	    atomic_load_explicit(&b->refs, memory_order_acquire) != 1 ||
	    atomic_load_explicit(&b->data, memory_order_acquire) || b->u.k.sealed)
		return 0;
	held = b->cap - b->u.k.head;
	return held < b->u.k.pipe.size ? b->u.k.pipe.size - held : 0;
}

/* The pipe ran out of slots before bytes: append no more to it. */
void zbl__pipe_block_seal(struct zbl__block *b)
{
	b->u.k.sealed = true;
}

/*
 * One splice of up to @want bytes from @fd into the block's pipe, which
 * grows the block by what moved; the caller caps @want at the room left
 * (zbl__pipe_block_room). A failure leaves its errno. @wait: @fd is blocking, so an
 * empty pipe may be filled by a blocking splice, which sleeps in the kernel
 * until bytes come and then takes all that have arrived; only an empty pipe,
 * since a blocking splice into a pipe out of slots would wait for ever.
 */
enum zbl__fill zbl__pipe_block_fill(struct zbl__block *b, int fd, int64_t *off, size_t want,
				    bool wait, ssize_t *moved)
{
	bool empty = b->cap == b->u.k.head;
	ssize_t r;

	do {
		loff_t o = off ? *off : 0;
		r = zbl__sys_splice(fd, off ? &o : NULL, b->u.k.pipe.wfd, NULL, want,
				    SPLICE_F_MOVE | (wait && empty ? 0 : SPLICE_F_NONBLOCK));
	} while (r < 0 && errno == EINTR);
	*moved = r;
	if (r > 0) {
		b->cap += (size_t)r;
		atomic_store_explicit(&b->fill, b->cap, memory_order_relaxed);
		ZBL__STAT_ADD(bytes_spliced_in, r);
		return ZBL__FILL_MOVED;
	}
	if (r == 0)
		return ZBL__FILL_EOF;
	if (errno != EAGAIN)
		return ZBL__FILL_ERROR;
	/*
	 * EAGAIN: the source is empty, or the pipe ran out of slots before
	 * bytes. An empty pipe has every slot free: the source was empty.
	 */
	if (empty)
		return ZBL__FILL_EMPTY;
	return zbl__readable_now(fd) ? ZBL__FILL_PIPE_FULL : ZBL__FILL_EMPTY;
}
