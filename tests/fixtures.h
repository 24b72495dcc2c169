/* SPDX-License-Identifier: MIT */
/*
 * Set-up shared by the test programs that move bytes through descriptors:
 * reproducible byte patterns, connected descriptor pairs (TCP on 127.0.0.1,
 * AF_UNIX, pipes), temporary files, writer and reader threads, and lists of
 * kernel pages built from them. Helpers are named zk_; the list and
 * assertion helpers they build on (zt_) are in zbl_test.h, and the harness
 * of the kernel-page tests (counters, watchdog, children) in kpage_util.h.
 *
 * Everything is static inline: CMake links every tests/ file not named
 * test_*.c into every test program, and each program is one translation unit,
 * so a header is compiled once per program either way, with no link order to
 * get right between the fixtures and zbl_static or zbl_fault.
 */
#ifndef ZBL_TEST_FIXTURES_H
#define ZBL_TEST_FIXTURES_H

#include "zbl_test.h"

#include <arpa/inet.h>
#include <endian.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#define ZK_KiB ((size_t)1024)
#define ZK_MiB ((size_t)1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Reproducible patterns: byte p of stream @seed is byte p%8 of word p/8.    */

static inline uint64_t zk_pat_word(uint64_t seed, uint64_t w)
{
	uint64_t z = seed * 0x9E3779B97F4A7C15ull + w * 0xD1B54A32D192ED03ull + 1;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline unsigned char zk_pat_byte(uint64_t seed, uint64_t pos)
{
	return (unsigned char)(zk_pat_word(seed, pos / 8) >> (8 * (pos % 8)));
}

/* Fills @buf with bytes [pos, pos+len) of pattern @seed. */
static inline void zk_pat_fill(void *buf, size_t len, uint64_t seed, uint64_t pos)
{
	unsigned char *p = buf;

	while (len && (pos % 8)) {
		*p++ = zk_pat_byte(seed, pos++);
		len--;
	}
	while (len >= 8) {
		uint64_t w = htole64(zk_pat_word(seed, pos / 8));
		memcpy(p, &w, 8);
		p += 8;
		pos += 8;
		len -= 8;
	}
	while (len) {
		*p++ = zk_pat_byte(seed, pos++);
		len--;
	}
}

/* Index of the first byte of @buf that differs from the pattern, or SIZE_MAX. */
static inline size_t zk_pat_mismatch(const void *buf, size_t len, uint64_t seed, uint64_t pos)
{
	unsigned char tmp[16384];
	const unsigned char *p = buf;

	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof(tmp) ? len - done : sizeof(tmp);
		zk_pat_fill(tmp, n, seed, pos + done);
		if (memcmp(tmp, p + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (tmp[i] != p[done + i])
					return done + i;
		}
		done += n;
	}
	return SIZE_MAX;
}

/* malloc'ed @len bytes of pattern @seed from position 0. */
static inline unsigned char *zk_pat_alloc(size_t len, uint64_t seed)
{
	unsigned char *p = malloc(len ? len : 1);

	assert_non_null(p);
	zk_pat_fill(p, len, seed, 0);
	return p;
}

/* Asserts two buffers are equal, naming the first differing byte. */
#define zk_assert_bytes(got, want, len) \
	zk_assert_bytes_((got), (want), (len), #got, __FILE__, __LINE__)

static inline void zk_assert_bytes_(const void *got, const void *want, size_t len,
				    const char *name, const char *file, int line)
{
	const unsigned char *g = got, *w = want;

	if (len && memcmp(g, w, len) != 0) {
		for (size_t i = 0; i < len; i++)
			if (g[i] != w[i])
				fail_msg("%s:%d: %s differs at byte %zu of %zu: 0x%02x, expected 0x%02x",
					 file, line, name, i, len, g[i], w[i]);
	}
}

/* ------------------------------------------------------------------------ */
/* Descriptors.                                                              */

static inline void zk_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
}

/* Waits until @fd is ready for @events (POLLIN/POLLOUT); fails after @ms. */
static inline void zk_wait(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	if (r != 1)
		fail_msg("poll(fd %d, events 0x%x) returned %d after %d ms", fd, events, r, ms);
}

/* Closes *@fd unless it is -1 already, and sets it to -1. */
static inline void zk_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Reads what the non-blocking @fd holds now (until EAGAIN) into @buf and
 * returns how many bytes that was. Fails the test if it holds more than @cap
 * bytes, or if the read ends (end of file) or fails instead of saying EAGAIN.
 */
static inline size_t zk_read_available(int fd, void *buf, size_t cap)
{
	unsigned char *p = buf;
	size_t got = 0;

	for (;;) {
		unsigned char extra;
		ssize_t r = got < cap ? read(fd, p + got, cap - got) : read(fd, &extra, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return got;
		if (r > 0 && got == cap)
			fail_msg("fd %d holds more than the %zu bytes expected", fd, cap);
		if (r <= 0)
			fail_msg("read of fd %d returned %zd (%s) after %zu bytes, not EAGAIN", fd,
				 r, r < 0 ? strerror(errno) : "end of file", got);
		got += (size_t)r;
	}
}

/* ------------------------------------------------------------------------ */
/* Connected pairs. Index 0 is read from, index 1 written to.               */

enum zk_kind { ZK_FILE, ZK_TCP, ZK_UNIX, ZK_PIPE, ZK_KINDS };

static const char *const zk_kind_name[ZK_KINDS] = { "file", "tcp", "unix", "pipe" };

static inline bool zk_is_socket(enum zk_kind k)
{
	return k == ZK_TCP || k == ZK_UNIX;
}

/*
 * A TCP connection over 127.0.0.1 on an ephemeral port: fds[0] accepted,
 * fds[1] connected. Returns false where loopback TCP cannot be had, with
 * nothing left open and the name of the call that failed in *@failed (errno
 * says why), so that a test can skip.
 */
static inline bool zk_try_tcp_pair(int fds[2], const char **failed)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	fds[0] = fds[1] = -1;
	*failed = "socket";
	if (l < 0)
		return false;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) != 0) {
		*failed = "bind";
	} else if (listen(l, 1) != 0) {
		*failed = "listen";
	} else if (getsockname(l, (struct sockaddr *)&a, &alen) != 0) {
		*failed = "getsockname";
	} else if ((fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		*failed = "socket";
	} else if (connect(fds[1], (struct sockaddr *)&a, sizeof(a)) != 0) {
		*failed = "connect";
	} else if ((fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		*failed = "accept4";
	} else {
		*failed = NULL;
	}
	int err = errno;
	close(l);
	if (*failed)
		zk_close(&fds[1]);
	errno = err;
	return !*failed;
}

/* zk_try_tcp_pair(), failing the test where loopback TCP cannot be had. */
static inline void zk_tcp_pair(int fds[2])
{
	const char *failed;

	if (!zk_try_tcp_pair(fds, &failed))
		fail_msg("%s for a TCP pair over 127.0.0.1 failed: %s", failed, strerror(errno));
}

/* A connected pair of kind @k (not ZK_FILE): data written to fds[1] is read from fds[0]. */
static inline void zk_pair(enum zk_kind k, int fds[2])
{
	switch (k) {
	case ZK_TCP:
		zk_tcp_pair(fds);
		break;
	case ZK_UNIX:
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
		break;
	case ZK_PIPE:
		assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
		break;
	default:
		fail_msg("zk_pair: not a stream kind");
	}
}

/*
 * Sets the send buffer of the writing end (fds[1]) and the receive buffer
 * of the reading end (fds[0]) of a socket pair to @bytes: with the FORCE
 * options, which pass net.core.[rw]mem_max where the process may
 * (CAP_NET_ADMIN), else with the plain ones, which the kernel caps there.
 * Small buffers make a writer wait for its reader; large ones let a whole
 * list fit. Best effort: the kernel may round the size, so nothing is checked.
 */
static inline void zk_set_socket_buffers(int fds[2], int bytes)
{
	if (setsockopt(fds[1], SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	if (setsockopt(fds[0], SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

/* Ends the writing side: shutdown for sockets (the reader sees end of file), close for pipes. */
static inline void zk_end_writes(enum zk_kind k, int *wfd)
{
	if (*wfd < 0)
		return;
	if (zk_is_socket(k)) {
		shutdown(*wfd, SHUT_WR);
	} else {
		close(*wfd);
		*wfd = -1;
	}
}

/* A temporary file holding pattern @seed bytes [0, len). */
static inline int zk_pattern_file(size_t len, uint64_t seed)
{
	int fd = zt_temp_fd(0);
	unsigned char *buf = malloc(ZK_MiB);
	size_t done = 0;

	assert_non_null(buf);
	while (done < len) {
		size_t n = len - done < ZK_MiB ? len - done : ZK_MiB;
		zk_pat_fill(buf, n, seed, done);
		zt_write_full(fd, buf, n);
		done += n;
	}
	free(buf);
	assert_true(lseek(fd, 0, SEEK_SET) == 0);
	return fd;
}

/* ------------------------------------------------------------------------ */
/* Threads. Helper threads block SIGPIPE: only the thread calling the
 * library is exposed to it. */

/*
 * Whether the read(2) or write(2) on @fd that returned @r should be made
 * again: it was interrupted, or the descriptor is non-blocking and was not
 * ready (then this waits up to a second for @events first).
 */
static inline bool zk_again(int fd, ssize_t r, short events)
{
	if (r >= 0 || (errno != EINTR && errno != EAGAIN))
		return false;
	if (errno == EAGAIN) {
		struct pollfd pf = { .fd = fd, .events = events };

		poll(&pf, 1, 1000);
	}
	return true;
}

static inline void zk_thread_block_sigpipe(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/*
 * Writes @len bytes to @fd: from @buf, or pattern @seed when buf is NULL.
 * Each write(2) is at most @chunk bytes (0: 256 KiB), separated by @delay_us.
 * Then ends the stream: @end 1 shutdown(SHUT_WR), 2 close, 0 nothing.
 */
struct zk_writer {
	pthread_t th;
	int fd;
	const unsigned char *buf;
	uint64_t seed;
	size_t len;
	size_t chunk;
	unsigned delay_us;
	unsigned start_delay_us;
	int end;
	size_t done;
	int err;
};

static inline void *zk_writer_main(void *arg)
{
	struct zk_writer *w = arg;
	size_t chunk = w->chunk ? w->chunk : 256 * ZK_KiB;
	unsigned char *tmp = w->buf ? NULL : malloc(chunk);

	zk_thread_block_sigpipe();
	if (w->start_delay_us)
		usleep(w->start_delay_us);
	while (w->done < w->len) {
		size_t n = w->len - w->done < chunk ? w->len - w->done : chunk;
		const unsigned char *p;
		if (w->buf) {
			p = w->buf + w->done;
		} else {
			zk_pat_fill(tmp, n, w->seed, w->done);
			p = tmp;
		}
		size_t off = 0;
		while (off < n) {
			ssize_t r = write(w->fd, p + off, n - off);
			if (zk_again(w->fd, r, POLLOUT))
				continue;
			if (r <= 0) {
				w->err = r < 0 ? errno : EIO;
				goto out;
			}
			off += (size_t)r;
			w->done += (size_t)r;
		}
		if (w->delay_us)
			usleep(w->delay_us);
	}
out:
	free(tmp);
	if (w->end == 1)
		shutdown(w->fd, SHUT_WR);
	else if (w->end == 2)
		close(w->fd);
	return NULL;
}

static inline void zk_writer_start(struct zk_writer *w)
{
	w->done = 0;
	w->err = 0;
	assert_int_equal(pthread_create(&w->th, NULL, zk_writer_main, w), 0);
}

static inline void zk_writer_join(struct zk_writer *w)
{
	assert_int_equal(pthread_join(w->th, NULL), 0);
}

/*
 * Reads @fd until end of file into buf (at most cap bytes; more is an
 * overflow error), @chunk bytes per read(2) (0: 1 MiB), sleeping @delay_us
 * after each read and @start_delay_us before the first.
 */
struct zk_reader {
	pthread_t th;
	int fd;
	unsigned char *buf;
	size_t cap;
	size_t chunk;
	unsigned delay_us;
	unsigned start_delay_us;
	size_t got;
	bool overflow;
	int err;
	size_t reads;
};

static inline void *zk_reader_main(void *arg)
{
	struct zk_reader *r = arg;
	size_t chunk = r->chunk ? r->chunk : ZK_MiB;
	unsigned char *scratch = malloc(chunk);

	zk_thread_block_sigpipe();
	if (r->start_delay_us)
		usleep(r->start_delay_us);
	for (;;) {
		size_t room = r->cap - r->got;
		unsigned char *dst = room ? r->buf + r->got : scratch;
		size_t want = room ? (room < chunk ? room : chunk) : chunk;
		ssize_t n = read(r->fd, dst, want);
		if (zk_again(r->fd, n, POLLIN))
			continue;
		if (n < 0) {
			r->err = errno;
			break;
		}
		if (n == 0)
			break;
		r->reads++;
		if (!room)
			r->overflow = true;
		else
			r->got += (size_t)n;
		if (r->delay_us)
			usleep(r->delay_us);
	}
	free(scratch);
	return NULL;
}

static inline void zk_reader_start(struct zk_reader *r, int fd, size_t cap)
{
	r->fd = fd;
	r->cap = cap;
	r->buf = malloc(cap ? cap : 1);
	assert_non_null(r->buf);
	r->got = 0;
	r->overflow = false;
	r->err = 0;
	r->reads = 0;
	assert_int_equal(pthread_create(&r->th, NULL, zk_reader_main, r), 0);
}

static inline void zk_reader_join(struct zk_reader *r)
{
	assert_int_equal(pthread_join(r->th, NULL), 0);
}

/* Asserts the reader got exactly @want (len bytes) and saw no error. */
static inline void zk_reader_check(struct zk_reader *r, const void *want, size_t len)
{
	if (r->err)
		fail_msg("reader: read failed: %s", strerror(r->err));
	if (r->overflow || r->got != len)
		fail_msg("reader got %zu bytes%s, expected %zu", r->got,
			 r->overflow ? " and more (overflow)" : "", len);
	zk_assert_bytes(r->buf, want, len);
}

static inline void zk_reader_free(struct zk_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* ------------------------------------------------------------------------ */
/* Lists of kernel pages.                                                    */

/*
 * Splices from @fd (at *@off unless @off is NULL) into @bl, one
 * zbl_splice_from call after another, until @want bytes have arrived, the
 * source ends or a call fails. -EAGAIN is waited out with poll only when
 * @wait_eagain (for a non-blocking source; from a blocking one -EAGAIN is
 * the result the test must see). Returns the last call's result and, in
 * *@have, how many bytes arrived; the caller decides what a short count means.
 */
static inline ssize_t zk_splice_upto(zbl_t *bl, int fd, int64_t *off, size_t want,
				     bool wait_eagain, size_t *have)
{
	ssize_t r = 0;

	*have = 0;
	while (*have < want) {
		r = zbl_splice_from(bl, fd, off, want - *have, 0);
		if (r == -EAGAIN && wait_eagain) {
			zk_wait(fd, POLLIN, 10000);
			continue;
		}
		if (r <= 0)
			break;
		*have += (size_t)r;
	}
	return r;
}

/*
 * Splices exactly @len bytes from @fd into @bl (several calls; waits with
 * poll on EAGAIN). Fails the test on an error or early end of file.
 */
static inline void zk_splice_in(zbl_t *bl, int fd, size_t len)
{
	size_t have;
	ssize_t r = zk_splice_upto(bl, fd, NULL, len, true, &have);

	if (have < len)
		fail_msg("zbl_splice_from returned %zd (%s) after %zu of %zu bytes", r,
			 zt_errname(r), have, len);
}

/*
 * Appends to @bl, as pipe pages, the w.len bytes that writer @w sends (from
 * w.buf, or pattern w.seed; chunk and delays as set): the writer thread
 * writes them into a fresh connected pair of kind @k and ends the stream,
 * and the list splices exactly that many. Fails the test on a short
 * transfer or a failed write.
 */
static inline void zk_splice_from_writer(zbl_t *bl, enum zk_kind k, struct zk_writer w)
{
	int fds[2];

	zk_pair(k, fds);
	w.fd = fds[1];
	w.end = k == ZK_PIPE ? 2 : 1; /* close a pipe's write end, shut a socket's */
	zk_writer_start(&w);
	zk_splice_in(bl, fds[0], w.len);
	zk_writer_join(&w);
	assert_int_equal(w.err, 0);
	if (k == ZK_PIPE)
		fds[1] = -1; /* the writer closed it */
	zk_close(&fds[0]);
	zk_close(&fds[1]);
}

/*
 * A list holding @len bytes of pattern @seed as pipe pages that came from an
 * AF_UNIX socket (so they do not alias any file's page cache).
 */
static inline zbl_t *zk_pipe_list(size_t len, uint64_t seed)
{
	zbl_t *bl = zt_new();

	zk_splice_from_writer(bl, ZK_UNIX, (struct zk_writer){ .seed = seed, .len = len });
	return bl;
}

/*
 * A new list holding bytes [0, @n) of the file behind @fd, taken by one
 * zbl_splice_from at offset 0, which must move all of them: pipe pages
 * while the library can have pipes, copies where it cannot.
 */
static inline zbl_t *zk_list_spliced_from_file(int fd, size_t n)
{
	zbl_t *bl = zt_new();
	int64_t off = 0;

	assert_rc(zbl_splice_from(bl, fd, &off, n, 0), n);
	return bl;
}

/* A list holding @len bytes of pattern @seed as pipe pages spliced from a file. */
static inline zbl_t *zk_file_pipe_list(size_t len, uint64_t seed)
{
	int fd = zk_pattern_file(len, seed);
	zbl_t *bl = zt_new();

	zk_splice_in(bl, fd, len);
	close(fd);
	return bl;
}

/*
 * What arrived at a sink: the call's result and the bytes (malloc'ed).
 * zk_write_to() writes @bl to a fresh sink of kind @k with zbl_splice_to(flags),
 * or zbl_write_fd() when @flags is ZK_WRITE_FD, while a reader thread collects
 * the bytes; a pipe sink is grown to 1 MiB so that writes up to that size
 * never find it full (the full blocking pipe has tests of its own).
 */
#define ZK_WRITE_FD 0x100u

/* Writes @bl to @fd: zbl_write_fd when @flags is ZK_WRITE_FD, else zbl_splice_to(flags). */
static inline ssize_t zk_write_call(zbl_t *bl, int fd, unsigned flags)
{
	return flags == ZK_WRITE_FD ? zbl_write_fd(bl, fd) : zbl_splice_to(bl, fd, NULL, flags);
}

/* The name of the call zk_write_call() makes with @flags, for messages. */
static inline const char *zk_write_call_name(unsigned flags)
{
	return flags == ZK_WRITE_FD ? "zbl_write_fd" : "zbl_splice_to";
}

struct zk_out {
	ssize_t r;
	unsigned char *data;
	size_t len;
};

static inline struct zk_out zk_write_to(zbl_t *bl, enum zk_kind k, unsigned flags)
{
	struct zk_out o = { 0 };
	int fds[2] = { -1, -1 };
	struct zk_reader rd = { 0 };
	int fd;

	if (k == ZK_FILE) {
		fd = zt_temp_fd(0);
		o.r = zk_write_call(bl, fd, flags);
		o.data = zt_file_contents(fd, &o.len);
		close(fd);
		return o;
	}
	zk_pair(k, fds);
	if (k == ZK_PIPE)
		fcntl(fds[1], F_SETPIPE_SZ, (int)ZK_MiB);
	zk_reader_start(&rd, fds[0], zbl_length(bl) * 2 + 16);
	o.r = zk_write_call(bl, fds[1], flags);
	zk_end_writes(k, &fds[1]);
	zk_reader_join(&rd);
	zk_close(&fds[0]);
	zk_close(&fds[1]);
	if (rd.err || rd.overflow) {
		zk_reader_free(&rd);
		fail_msg("reader of the %s sink failed: %s", zk_kind_name[k],
			 rd.err ? strerror(rd.err) : "overflow");
	}
	o.data = rd.buf;
	o.len = rd.got;
	return o;
}

/* Asserts the call returned @len and exactly @want (len bytes) arrived; frees the output. */
#define zk_assert_out(o, want, wlen) zk_assert_out_((o), (want), (wlen), __FILE__, __LINE__)

static inline void zk_assert_out_(struct zk_out o, const void *want, size_t len, const char *file,
				  int line)
{
	if (o.r != (ssize_t)len) {
		free(o.data);
		fail_msg("%s:%d: write returned %zd (%s), expected %zu", file, line, o.r,
			 zt_errname(o.r), len);
	}
	if (o.len != len) {
		free(o.data);
		fail_msg("%s:%d: %zu bytes arrived, expected %zu", file, line, o.len, len);
	}
	zk_assert_bytes_(o.data, want, len, "output", file, line);
	free(o.data);
}


#endif /* ZBL_TEST_FIXTURES_H */
