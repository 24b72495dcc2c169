/* SPDX-License-Identifier: MIT */
/*
 * Rows that move data between sockets and files over TCP loopback:
 *   ingest     socket -> file, 4 MiB messages
 *   file2sock  file -> socket, with a read() receiver and a splice receiver
 *   relay      socket -> socket
 * The peers are threads of this process, so getrusage covers both ends and
 * the loopback TCP processing they cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* Splices @n bytes from pipe @rfd to @out; 0, or -errno (-EIO if @out took nothing). */
static int splice_all(int rfd, int out, size_t n)
{
	for (size_t put = 0; put < n;) {
		ssize_t w = splice(rfd, NULL, out, NULL, n - put, SPLICE_F_MOVE);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		put += (size_t)w;
	}
	return 0;
}

void *bench_sender_main(void *arg)
{
	struct bench_peer *p = arg;
	const unsigned char *pat = bench_pattern();
	size_t sent = 0;

	while (sent < p->bytes) {
		size_t po = sent % BENCH_PATTERN_BYTES;
		size_t n = BENCH_PATTERN_BYTES - po;
		ssize_t w;

		if (n > p->bytes - sent)
			n = p->bytes - sent;
		w = write(p->fd, pat + po, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			p->err = w < 0 ? -errno : -EIO;
			break;
		}
		sent += (size_t)w;
	}
	close(p->fd);
	p->fd = -1;
	p->cpu = bench_thread_cpu();
	return NULL;
}

void *bench_receiver_main(void *arg)
{
	static __thread char buf[BENCH_CHUNK_BYTES];
	struct bench_peer *p = arg;
	int pp[2] = { -1, -1 }, null = -1;

	p->bytes = 0;
	p->crc = 0;
	if (p->use_splice) {
		if (bench_pipe(pp, BENCH_CHUNK_BYTES) < 0 ||
		    (null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
			p->err = -errno;
			goto out;
		}
	}
	for (;;) {
		ssize_t r;

		if (p->use_splice) {
			r = splice(p->fd, NULL, pp[1], NULL, BENCH_CHUNK_BYTES, SPLICE_F_MOVE);
			if (r > 0 && (p->err = splice_all(pp[0], null, (size_t)r)) < 0)
				goto out;
		} else {
			r = read(p->fd, buf, sizeof(buf));
			if (r > 0 && p->crc_on)
				p->crc = bench_crc(p->crc, buf, (size_t)r);
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			p->err = -errno;
		if (r <= 0)
			break;
		p->bytes += (size_t)r;
	}
out:
	if (pp[0] >= 0) {
		close(pp[0]);
		close(pp[1]);
	}
	if (null >= 0)
		close(null);
	p->cpu = bench_thread_cpu();
	return NULL;
}

int bench_peer_start(struct bench_peer *p, void *(*fn)(void *))
{
	p->err = 0;
	return -pthread_create(&p->thread, NULL, fn, p);
}

int bench_rx_start(struct bench_peer *rx, int *tx)
{
	int err = bench_tcp_pair(&rx->fd, tx);

	if (err < 0)
		return err;
	err = bench_peer_start(rx, bench_receiver_main);
	if (err < 0) {
		close(rx->fd);
		close(*tx);
	}
	return err;
}

int bench_rx_join(struct bench_peer *rx, int tx, ssize_t sent, size_t total, double *work)
{
	close(tx);
	pthread_join(rx->thread, NULL);
	close(rx->fd);
	if (sent < 0)
		return (int)sent;
	if (rx->err < 0)
		return rx->err;
	*work = (double)rx->bytes;
	return (size_t)sent == total ? 0 : -EIO;
}

int bench_tx_open(struct bench_peer *tx, int *rx, size_t total)
{
	tx->bytes = total;
	return bench_tcp_pair(rx, &tx->fd);
}

int bench_tx_start(struct bench_peer *tx, int rx)
{
	int err = bench_peer_start(tx, bench_sender_main);

	if (err < 0) {
		close(rx);
		close(tx->fd);
	}
	return err;
}

int bench_tx_join(struct bench_peer *tx, int rx, ssize_t got, size_t total, double *work)
{
	/* A failed receiver closes its socket so the sender cannot hang. */
	close(rx);
	pthread_join(tx->thread, NULL);
	if (got < 0)
		return (int)got;
	if (tx->err < 0)
		return tx->err;
	*work = (double)got;
	return (size_t)got == total ? 0 : -EIO;
}

int bench_rx_check(const struct bench_peer *rx, size_t total, uint32_t crc, bool verify)
{
	if (rx->bytes != total)
		return -EIO;
	if (verify && rx->crc_on && rx->crc != crc)
		return -EILSEQ;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The movers: each moves everything from @in to @out, returns bytes or -errno. */

static ssize_t move_copy(int in, int out, int64_t *in_off, size_t msg, size_t limit)
{
	static char *buf;
	size_t total = 0;

	if (!buf && !(buf = malloc(BENCH_MSG_BYTES)))
		return -ENOMEM;
	if (msg > BENCH_MSG_BYTES)
		msg = BENCH_MSG_BYTES;
	for (;;) {
		size_t got = 0;
		ssize_t r = 1;

		/* A message at a time, as a server would collect one before storing it;
		 * a relay (msg == chunk) forwards whatever arrived. */
		while (got < msg && total + got < limit) {
			size_t want = msg - got;

			if (want > limit - total - got)
				want = limit - total - got;
			r = in_off ? pread(in, buf + got, want, *in_off + got) :
				     read(in, buf + got, want);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
			if (!in_off && msg == BENCH_CHUNK_BYTES)
				break;
		}
		if (r < 0)
			return -errno;
		int err = bench_write_all(out, buf, got);
		if (err < 0)
			return err;
		total += got;
		if (in_off)
			*in_off += (int64_t)got;
		if (r == 0 || !got || total == limit)
			return (ssize_t)total;
	}
}

/* Makes @fd non-blocking; its old flags go to *@fl (restore with F_SETFL). */
static int set_nonblock(int fd, int *fl)
{
	*fl = fcntl(fd, F_GETFL);
	if (*fl < 0 || fcntl(fd, F_SETFL, *fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Waits until @fd is readable; 0, or -errno. */
static int wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, -1) < 0 && errno != EINTR ? -errno : 0;
}

/*
 * Raw splice through one pipe, a chunk at a time. Blocking, a thread per
 * connection's loop: each splice(2) waits for bytes, then takes all that
 * have arrived. @nonblock, an event loop's (HAProxy's): @in is made
 * non-blocking, and an EAGAIN waits in poll(2).
 */
static ssize_t move_splice(int in, int out, int64_t *in_off, size_t limit, bool nonblock)
{
	int p[2], fl = -1;
	size_t total = 0;
	ssize_t ret = 0;

	if (nonblock && (ret = set_nonblock(in, &fl)) < 0)
		return ret;
	if (bench_pipe(p, BENCH_CHUNK_BYTES) < 0) {
		ret = -errno;
		goto restore;
	}
	while (total < limit) {
		size_t want = limit - total < BENCH_CHUNK_BYTES ? limit - total : BENCH_CHUNK_BYTES;
		loff_t o = in_off ? *in_off : 0;
		ssize_t r = splice(in, in_off ? &o : NULL, p[1], NULL, want,
				   SPLICE_F_MOVE | (nonblock ? SPLICE_F_NONBLOCK : 0));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN && nonblock) {
			if ((ret = wait_readable(in)) < 0)
				break;
			continue;
		}
		if (r < 0) {
			ret = -errno;
			break;
		}
		if (r == 0)
			break;
		if (in_off)
			*in_off = o;
		if ((ret = splice_all(p[0], out, (size_t)r)) < 0)
			break;
		total += (size_t)r;
	}
	close(p[0]);
	close(p[1]);
restore:
	if (fl >= 0)
		fcntl(in, F_SETFL, fl);
	return ret < 0 ? ret : (ssize_t)total;
}

/*
 * Splices up to @want bytes from @in into the empty pipe @p: waits for the
 * first bytes, then takes what keeps arriving without waiting. A pipe can
 * run out of slots before it holds @want bytes (small skb fragments take a
 * slot each), and a blocking splice into a full pipe waits for ever, so the
 * first EAGAIN ends the fill: the caller moves on to another pipe.
 * Returns bytes held (0 at end of stream), or -errno.
 */
static ssize_t fill_pipe(int in, int p, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t r = splice(in, NULL, p, NULL, want - got,
				   SPLICE_F_MOVE | (got ? SPLICE_F_NONBLOCK : 0));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN && got)
			break;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * Raw splice that holds a whole message before storing it, as zbl does: the
 * message fills as many pipes as it takes (an unprivileged pipe holds at
 * most 1 MiB, fewer bytes when fragments use up its slots), then each is
 * spliced to @out.
 */
static ssize_t move_splice_held(int in, int out, size_t msg)
{
	enum { MAX_PIPES = 64 };
	size_t np = 0, total = 0, held[MAX_PIPES];
	int p[MAX_PIPES][2];
	ssize_t ret = 0;
	bool eof = false;

	while (!eof) {
		size_t got = 0, used = 0;

		while (got < msg && used < MAX_PIPES) {
			if (used == np) {
				if (bench_pipe(p[np], BENCH_CHUNK_BYTES) < 0) {
					ret = -errno;
					goto out;
				}
				np++;
			}
			size_t want = msg - got < BENCH_CHUNK_BYTES ? msg - got : BENCH_CHUNK_BYTES;
			ret = fill_pipe(in, p[used][1], want);
			if (ret < 0)
				goto out;
			if (ret == 0) {
				eof = true;
				break;
			}
			held[used++] = (size_t)ret;
			got += (size_t)ret;
		}
		for (size_t i = 0; i < used; i++)
			if ((ret = splice_all(p[i][0], out, held[i])) < 0)
				goto out;
		total += got;
	}
	ret = 0;
out:
	for (size_t i = 0; i < np; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	return ret < 0 ? ret : (ssize_t)total;
}

/* zbl: take up to @msg bytes as kernel pages (@flags: zbl_splice_from's), then
 * write them out draining. */
ssize_t bench_move_zbl(int in, int out, size_t msg, unsigned flags)
{
	zbl_t *bl = zbl_new();
	size_t total = 0;
	ssize_t r;

	if (!bl)
		return -ENOMEM;
	while ((r = zbl_splice_from(bl, in, NULL, msg, flags)) > 0) {
		ssize_t w = zbl_splice_to(bl, out, NULL, ZBL_DRAIN);

		if (w < 0) {
			r = w;
			break;
		}
		if ((size_t)w != (size_t)r) {
			r = -EIO;
			break;
		}
		total += (size_t)r;
	}
	zbl_free(bl);
	return r < 0 ? r : (ssize_t)total;
}

/*
 * zbl as an event loop would use it: the source is non-blocking, so
 * zbl_splice_from returns what has arrived (up to @msg) instead of waiting
 * for all of it. With @flags 0 it takes bytes until EAGAIN before anything
 * is written; with ZBL_SOME it returns after one splice that found no more,
 * the raw non-blocking loop's form (a splice, then its bytes out).
 */
static ssize_t move_zbl_nonblock(int in, int out, size_t msg, unsigned flags)
{
	zbl_t *bl;
	size_t total = 0;
	ssize_t r;
	int fl;

	if ((r = set_nonblock(in, &fl)) < 0)
		return r;
	if (!(bl = zbl_new())) {
		r = -ENOMEM;
		goto restore;
	}
	for (;;) {
		r = zbl_splice_from(bl, in, NULL, msg, flags);
		if (r == -EAGAIN) {
			if ((r = wait_readable(in)) < 0)
				break;
			continue;
		}
		if (r <= 0)
			break;
		ssize_t w = zbl_splice_to(bl, out, NULL, ZBL_DRAIN);

		if (w != r) {
			r = w < 0 ? w : -EIO;
			break;
		}
		total += (size_t)r;
	}
	zbl_free(bl);
restore:
	fcntl(in, F_SETFL, fl);
	return r < 0 ? r : (ssize_t)total;
}

/* ------------------------------------------------------------------------ */
/* ingest: socket -> file */

/* The variants, in the order they are added. */
enum {
	INGEST_COPY, INGEST_SPLICE_HELD, INGEST_ZBL,
	INGEST_COPY_STREAM, INGEST_SPLICE_STREAM, INGEST_SPLICE_STREAM_NB, INGEST_ZBL_STREAM
};

struct ingest {
	size_t total;
	uint32_t crc;            /* of the pattern stream, total bytes */
	int file;
	int rx;
	struct bench_peer tx;
};

static int ingest_prep(struct bench_row *row, int v)
{
	struct ingest *c = row->ctx;
	int err;

	(void)v;
	/*
	 * Every variant writes into the same resident page cache: the file is
	 * overwritten in place, never truncated, and flushed here so that no
	 * writeback runs during the timed part. Truncating would free 1 GiB
	 * each round; on a VM with free page reporting (virtio-balloon) the
	 * host takes freed memory back, and the next variant to fault it in
	 * again runs 3-7x slower, whichever variant that happens to be.
	 * Before a verifying round the old bytes are overwritten with zeros,
	 * so the check sees only what this variant wrote.
	 */
	err = bench_file_rewind(c->file, c->total, bench_round_verifies(row));
	return err < 0 ? err : bench_tx_open(&c->tx, &c->rx, c->total);
}

static int ingest_run(struct bench_row *row, int v, double *work)
{
	struct ingest *c = row->ctx;
	ssize_t got;
	int err = bench_tx_start(&c->tx, c->rx);

	if (err < 0)
		return err;
	switch (v) {
	case INGEST_COPY:
		got = move_copy(c->rx, c->file, NULL, BENCH_MSG_BYTES, SIZE_MAX);
		break;
	case INGEST_SPLICE_HELD:
		got = move_splice_held(c->rx, c->file, BENCH_MSG_BYTES);
		break;
	case INGEST_ZBL:
		got = bench_move_zbl(c->rx, c->file, BENCH_MSG_BYTES, 0);
		break;
	case INGEST_COPY_STREAM:
		got = move_copy(c->rx, c->file, NULL, BENCH_CHUNK_BYTES, SIZE_MAX);
		break;
	case INGEST_SPLICE_STREAM:
	case INGEST_SPLICE_STREAM_NB:
		got = move_splice(c->rx, c->file, NULL, SIZE_MAX, v == INGEST_SPLICE_STREAM_NB);
		break;
	default:
		/*
		 * Like the raw loop, whose blocking splice returns what has
		 * arrived: zbl_splice_from on a blocking socket waits for all
		 * of len (zbl_read_fd's rule), so an event loop's non-blocking
		 * source is the streaming form.
		 */
		got = move_zbl_nonblock(c->rx, c->file, BENCH_CHUNK_BYTES, 0);
		break;
	}
	return bench_tx_join(&c->tx, c->rx, got, c->total, work);
}

static int ingest_check(struct bench_row *row, int v, bool verify)
{
	struct ingest *c = row->ctx;

	(void)v;
	return bench_file_check(c->file, c->total, c->crc, verify);
}

static int row_ingest(struct bench *b)
{
	struct ingest c = { .total = bench_size(b, (size_t)1 << 30, (size_t)32 << 20) };
	struct bench_row *row;
	int zbl, copy, spl, copy_stream, spl_stream, spl_stream_nb, zbl_stream, ret;

	c.total -= c.total % BENCH_MSG_BYTES;
	if (!c.total)
		c.total = BENCH_MSG_BYTES;
	row = bench_row_new(b, "ingest", BENCH_BYTES,
			    "socket -> file, TCP loopback, %zu MiB per round in 4 MiB messages, "
			    "file in %s", c.total >> 20, b->dir);
	if (!row)
		return -1;
	c.file = bench_temp_file(b, "ingest");
	if (c.file < 0) {
		bench_fail(row, "temp file in %s: %s", b->dir, strerror(-c.file));
		return -1;
	}
	c.crc = bench_pattern_crc(c.total);
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note),
		 "'held' variants take a whole 4 MiB message before writing it (copy: one "
		 "4 MiB buffer; raw: as many 1 MiB pipes as it takes; zbl: one zbl_splice_from, "
		 "then zbl_splice_to(ZBL_DRAIN)); 'streaming' ones write what has arrived, up "
		 "to 1 MiB at a time (copy: a 1 MiB buffer; raw: one pipe, blocking or "
		 "non-blocking + poll; zbl: non-blocking source, poll + zbl_splice_from). The "
		 "file is overwritten in place each round, so every variant writes into "
		 "resident page cache");
	copy = bench_add_variant(row, "copy, held", ingest_prep, ingest_run, ingest_check);
	spl = bench_add_variant(row, "raw splice, held", ingest_prep, ingest_run, ingest_check);
	zbl = bench_add_variant(row, "zbl, held", ingest_prep, ingest_run, ingest_check);
	copy_stream = bench_add_variant(row, "copy, streaming", ingest_prep, ingest_run,
					ingest_check);
	spl_stream = bench_add_variant(row, "raw splice, streaming", ingest_prep, ingest_run,
				       ingest_check);
	spl_stream_nb = bench_add_variant(row, "raw splice, streaming, non-blocking",
					  ingest_prep, ingest_run, ingest_check);
	zbl_stream = bench_add_variant(row, "zbl, streaming, non-blocking", ingest_prep,
				       ingest_run, ingest_check);
	/*
	 * Targets compare zbl with the raw splice loop of the same form.
	 * Issue 5's zbl/copy >= 3 is gone: storing socket bytes in a file
	 * costs one copy on every route (splice cannot move pages into the
	 * page cache), so it is information.
	 */
	bench_add_target(row, zbl, spl, BENCH_THRU_GE, 0.95);
	bench_add_target(row, zbl_stream, spl_stream_nb, BENCH_THRU_GE, 0.95);
	bench_add_target(row, zbl, copy, BENCH_INFO, 0);
	bench_add_target(row, zbl_stream, copy_stream, BENCH_INFO, 0);
	bench_add_target(row, zbl_stream, spl_stream, BENCH_INFO, 0);
	bench_add_target(row, spl, copy, BENCH_INFO, 0);
	bench_add_target(row, spl_stream, copy_stream, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
	close(c.file);
	row->ctx = NULL;
	return ret;
}

/* ------------------------------------------------------------------------ */
/* file2sock: file -> socket */

struct f2s {
	size_t total;
	uint32_t crc;
	int file;
	int tx;
	struct bench_peer rx;
};

static int f2s_prep(struct bench_row *row, int v)
{
	struct f2s *c = row->ctx;

	(void)v;
	return bench_rx_start(&c->rx, &c->tx);
}

static int f2s_run(struct bench_row *row, int v, double *work)
{
	struct f2s *c = row->ctx;
	int64_t off = 0;
	ssize_t sent = 0;
	int err;

	switch (v) {
	case 0:
		sent = move_copy(c->file, c->tx, &off, BENCH_CHUNK_BYTES, c->total);
		break;
	case 1:
		while ((size_t)sent < c->total) {
			off_t o = sent;
			ssize_t w = sendfile(c->tx, c->file, &o, c->total - (size_t)sent);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				sent = w < 0 ? -errno : -EIO;
				break;
			}
			sent += w;
		}
		break;
	case 2:
		sent = move_splice(c->file, c->tx, &off, c->total, false);
		break;
	default: {
		zbl_t *bl = zbl_new();

		if (!bl) {
			sent = -ENOMEM;
			break;
		}
		err = zbl_append_file(bl, c->file, 0, c->total);
		sent = err < 0 ? err : zbl_splice_to(bl, c->tx, NULL, ZBL_DRAIN);
		zbl_free(bl);
		break;
	}
	}
	return bench_rx_join(&c->rx, c->tx, sent, c->total, work);
}

static int f2s_check(struct bench_row *row, int v, bool verify)
{
	struct f2s *c = row->ctx;

	(void)v;
	return bench_rx_check(&c->rx, c->total, c->crc, verify);
}

static int row_f2s(struct bench *b, int file, size_t total, uint32_t crc, bool splice_rx)
{
	struct f2s c = { .total = total, .crc = crc, .file = file };
	struct bench_row *row;
	int zbl, sf, ret;

	row = bench_row_new(b, "file2sock", BENCH_BYTES,
			    "file -> socket, TCP loopback, %zu MiB per round, receiver %s",
			    total >> 20, splice_rx ? "splices to /dev/null" : "read()s");
	if (!row)
		return -1;
	snprintf(row->name, sizeof(row->name), "file2sock/%s", splice_rx ? "splice-rx" : "read-rx");
	c.rx.use_splice = splice_rx;
	c.rx.crc_on = !splice_rx;
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note),
		 "file in page cache; copy is pread+write 1 MiB; raw splice 1 MiB file->pipe->"
		 "socket; zbl is zbl_append_file of the whole file + zbl_splice_to(ZBL_DRAIN)");
	bench_add_variant(row, "read/write copy", f2s_prep, f2s_run, f2s_check);
	sf = bench_add_variant(row, "sendfile", f2s_prep, f2s_run, f2s_check);
	bench_add_variant(row, "raw splice", f2s_prep, f2s_run, f2s_check);
	zbl = bench_add_variant(row, "zbl", f2s_prep, f2s_run, f2s_check);
	bench_add_target(row, zbl, sf, BENCH_THRU_GE, 1.0);
	bench_add_target(row, zbl, 0, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
	return ret;
}

static int rows_f2s(struct bench *b)
{
	size_t total = bench_size(b, (size_t)1 << 30, (size_t)32 << 20);
	int file = bench_temp_file(b, "file2sock"), ret;
	uint32_t crc;

	if (file < 0)
		return -1;
	if (bench_write_repeated(file, bench_pattern(), total) < 0) {
		close(file);
		return -1;
	}
	/* Read it once so every variant starts from a warm page cache. */
	crc = (uint32_t)bench_file_crc(file, total);
	ret = row_f2s(b, file, total, crc, false);
	ret |= row_f2s(b, file, total, crc, true);
	close(file);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* relay: socket -> socket */

/* The variants, in the order they are added. */
enum { RELAY_COPY, RELAY_SPLICE, RELAY_SPLICE_NB, RELAY_ZBL, RELAY_ZBL_NB, RELAY_ZBL_SOME };

struct relay {
	size_t total;
	uint32_t crc;
	bool crc_on;
	int a_rx, b_tx;
	struct bench_peer tx, rx;
};

static int relay_prep(struct bench_row *row, int v)
{
	struct relay *c = row->ctx;
	int err;

	(void)v;
	err = bench_tx_open(&c->tx, &c->a_rx, c->total);
	if (err < 0)
		return err;
	c->rx.crc_on = c->crc_on;
	c->rx.use_splice = !c->crc_on;
	err = bench_rx_start(&c->rx, &c->b_tx);
	if (err < 0) {
		close(c->a_rx);
		close(c->tx.fd);
	}
	return err;
}

static int relay_run(struct bench_row *row, int v, double *work)
{
	struct relay *c = row->ctx;
	ssize_t got;
	int err = bench_peer_start(&c->tx, bench_sender_main);

	if (err < 0) {
		close(c->a_rx);
		close(c->tx.fd);
		bench_rx_join(&c->rx, c->b_tx, err, c->total, work);
		return err;
	}
	switch (v) {
	case RELAY_COPY:
		got = move_copy(c->a_rx, c->b_tx, NULL, BENCH_CHUNK_BYTES, SIZE_MAX);
		break;
	case RELAY_SPLICE:
		got = move_splice(c->a_rx, c->b_tx, NULL, SIZE_MAX, false);
		break;
	case RELAY_SPLICE_NB:
		got = move_splice(c->a_rx, c->b_tx, NULL, SIZE_MAX, true);
		break;
	case RELAY_ZBL:
		got = bench_move_zbl(c->a_rx, c->b_tx, BENCH_CHUNK_BYTES, 0);
		break;
	case RELAY_ZBL_SOME:
		got = bench_move_zbl(c->a_rx, c->b_tx, BENCH_CHUNK_BYTES, ZBL_SOME);
		break;
	default:
		got = move_zbl_nonblock(c->a_rx, c->b_tx, BENCH_CHUNK_BYTES, ZBL_SOME);
		break;
	}
	close(c->a_rx);
	pthread_join(c->tx.thread, NULL);
	err = bench_rx_join(&c->rx, c->b_tx, got, c->total, work);
	return err < 0 || c->tx.err >= 0 ? err : c->tx.err;
}

static int relay_check(struct bench_row *row, int v, bool verify)
{
	struct relay *c = row->ctx;

	(void)v;
	return bench_rx_check(&c->rx, c->total, c->crc, verify);
}

static int row_relay(struct bench *b)
{
	struct relay c = { .total = bench_size(b, (size_t)1 << 30, (size_t)32 << 20) };
	struct bench_row *row;
	int ret;

	/* Checking content needs a copying receiver, which would blur the
	 * difference between relays; only --quick and --verify pay for it. */
	c.crc_on = b->quick || b->verify_all;
	c.crc = bench_pattern_crc(c.total);
	row = bench_row_new(b, "relay", BENCH_BYTES,
			    "socket -> socket relay, TCP loopback, %zu MiB per round, receiver %s",
			    c.total >> 20, c.crc_on ? "read()s and CRCs" : "splices to /dev/null");
	if (!row)
		return -1;
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note),
		 "copy forwards what each read() returns (up to 1 MiB); raw splice 1 MiB through "
		 "one pipe, blocking (a thread per connection) or non-blocking with poll (an "
		 "event loop); zbl_splice_from 1 MiB (blocking: waits for all of it; "
		 "non-blocking with ZBL_SOME: what one splice found, the raw event loop's form; "
		 "ZBL_SOME on a blocking source: what has arrived, the raw blocking loop's form) "
		 "then zbl_splice_to(ZBL_DRAIN)");
	bench_add_variant(row, "read/write copy", relay_prep, relay_run, relay_check);
	int spl = bench_add_variant(row, "raw splice", relay_prep, relay_run, relay_check);
	int spl_nb = bench_add_variant(row, "raw splice, non-blocking", relay_prep, relay_run,
				       relay_check);
	int zbl = bench_add_variant(row, "zbl", relay_prep, relay_run, relay_check);
	int zbl_nb = bench_add_variant(row, "zbl, non-blocking, ZBL_SOME", relay_prep, relay_run,
				       relay_check);
	bench_add_target(row, zbl, spl, BENCH_THRU_GE, 0.95);
	bench_add_target(row, zbl_nb, spl_nb, BENCH_THRU_GE, 0.95);
	int zbl_some = bench_add_variant(row, "zbl, ZBL_SOME", relay_prep, relay_run,
					 relay_check);
	bench_add_target(row, zbl_some, spl, BENCH_INFO, 0);
	bench_add_target(row, zbl_nb, spl, BENCH_INFO, 0);
	bench_add_target(row, zbl, RELAY_COPY, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
	return ret;
}

int bench_rows_net(struct bench *b)
{
	struct statfs sfs;
	int ret = 0;

	if (statfs(b->dir, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
		fprintf(stderr, "zbl_bench: warning: %s is tmpfs; socket->file rows are meant for "
			"a disk filesystem (use --dir)\n", b->dir);
	if (bench_selected(b, "ingest"))
		ret |= row_ingest(b);
	if (bench_selected(b, "file2sock"))
		ret |= rows_f2s(b);
	if (bench_selected(b, "relay"))
		ret |= row_relay(b);
	return ret;
}
