/* SPDX-License-Identifier: MIT */
/*
 * Differential fuzzing of zbl (issue 4): libFuzzer decodes its input into a
 * sequence of operations on a few lists and applies each to the library and
 * to a model (one flat byte array per list), then compares them.
 *
 * Operations: append, append_zero, append_ref, append_list, claim_append,
 * append_file, substr_of, splice, copy_out, iterators, c_str, rebuild,
 * rebuild_aligned, crc32c (against ISA-L's crc32_iscsi over the model), cmp,
 * contents_equal, hexdump (against a `hexdump -C` formatter of the model's
 * own, and into a stream whose writes fail), splice_from and read_fd from
 * pipes, AF_UNIX sockets and regular files, splice_to (with and without
 * ZBL_DRAIN) and write_fd to non-blocking pipes, sockets and files and to
 * blocking pipes and sockets that a second thread drains, clear, freeing a
 * list while others share its blocks, and reading lists while the file
 * behind their file-range segments has shrunk.
 *
 * Ring operations (issue 14) are differential twice over: the same write
 * (zbl_ring_write, with and without ZBL_DRAIN, to pipes, AF_UNIX and TCP
 * sockets, and files at offsets) or read (zbl_ring_read,
 * zbl_ring_splice_from, from the same kinds) runs through an io_uring ring,
 * a ZBL_RING_SYNC ring and the synchronous functions (zbl_write_fd,
 * zbl_splice_to, zbl_read_fd, zbl_splice_from with ZBL_SOME), each on fresh
 * descriptors holding the same bytes. The three results and the bytes moved
 * must agree with each other and with the model. One of the three, chosen by
 * the input, works on the list itself, the others on lists sharing its
 * storage; each ring is freed after its operation, so a ring that keeps a
 * descriptor or pipe fails the checks at the end of the input.
 *
 * Encoding of a step: an opcode byte (bit 7 defers the byte comparison, bit 6
 * is an operation's own option, the low six bits choose the operation: 52
 * and up the ring operations, which no committed input used before, the rest
 * modulo 26 as always), a byte of list numbers, then the operation's own
 * arguments.
 *
 * After each step every list's length, segment count and kernel-byte count
 * are checked (kernel bytes never exceed the length) and, unless the step's
 * opcode asks to defer it, its bytes: reading bytes copies kernel pages into
 * memory, so deferring keeps the paths that only run on untouched kernel
 * pages reachable. Everything is compared at the end of each input, and no
 * descriptor or pipe may be left once the lists are freed.
 *
 * Build and run: make fuzz (FUZZ_SECONDS=N); make check replays fuzz/corpus
 * and fuzz/regressions and fuzzes for about a minute.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include <zbl.h>

#define LISTS 4
#define OPS_MAX 48
/* Largest list the model follows; longer results skip the operation. */
#define LIST_BYTES_MAX ((size_t)768 * 1024)
#define FILE_BYTES ((size_t)512 * 1024)
#define PAT_BYTES ((size_t)512 * 1024)
/* What a source may hold: less than an empty pipe or socket buffer takes. */
#define PIPE_SRC_MAX ((size_t)60000)
#define SOCK_SRC_MAX ((size_t)100000)
#define TCP_SRC_MAX ((size_t)48000)
/* Opcodes (low six bits) from here on are ring operations. */
#define RING_OP_FIRST 52
/* How long a ring may take over one operation before the input fails. */
#define RING_OP_MS 10000

static unsigned char pat[PAT_BYTES];     /* memory given to zbl_append_ref */
static unsigned char filebytes[FILE_BYTES];
static int file_fd = -1;                 /* holds filebytes */
static int fds_baseline = -1;
static unsigned char *scratch;           /* LIST_BYTES_MAX * 2 */

static long refs_appended, refs_released;

/* ------------------------------------------------------------------------ */

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_ops: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(cond, ...) do { if (!(cond)) die(__VA_ARGS__); } while (0)

struct model {
	unsigned char *b;
	size_t len, cap;
};

static void m_reserve(struct model *m, size_t n)
{
	if (m->len + n <= m->cap)
		return;
	size_t cap = m->cap ? m->cap : 256;
	while (cap < m->len + n)
		cap *= 2;
	m->b = realloc(m->b, cap);
	CHECK(m->b, "out of memory");
	m->cap = cap;
}

static void m_add(struct model *m, const void *p, size_t n)
{
	if (!n)
		return;
	/* The bytes may be the model's own (a list appended to itself). */
	const unsigned char *c = p;
	if (c && m->b && c >= m->b && c < m->b + m->len) {
		size_t at = (size_t)(c - m->b);
		m_reserve(m, n);
		p = m->b + at;
	}
	m_reserve(m, n);
	if (p)
		memmove(m->b + m->len, p, n);
	else
		memset(m->b + m->len, 0, n);
	m->len += n;
}

static void m_cut(struct model *m, size_t off, size_t n)
{
	if (!n)
		return;
	memmove(m->b + off, m->b + off + n, m->len - off - n);
	m->len -= n;
}

/* The input, read as numbers; zeros once it runs out. */
struct in {
	const uint8_t *p;
	size_t left;
};

static uint8_t u8(struct in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	return (uint16_t)(u8(in) | u8(in) << 8);
}

static uint32_t u32(struct in *in)
{
	return (uint32_t)u16(in) | (uint32_t)u16(in) << 16;
}

/* A length up to @max, mostly small: the top bits of the byte choose the scale. */
static size_t len_of(struct in *in, size_t max)
{
	uint8_t s = u8(in);
	size_t n;

	switch (s >> 6) {
	case 0:
		n = s & 63;
		break;
	case 1:
		n = u8(in) + ((size_t)(s & 63) << 8);
		break;
	case 2:
		n = u16(in);
		break;
	default:
		n = u32(in);
		break;
	}
	return max ? n % (max + 1) : 0;
}

/* Bytes that differ from run to run: splitmix64 seeded from the input. */
static void gen(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t st = seed, w = 0;

	for (size_t i = 0; i < n; i++) {
		if (!(i & 7)) {
			uint64_t z = (st += 0x9E3779B97F4A7C15ull);
			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
			z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
			w = z ^ (z >> 31);
		}
		p[i] = (unsigned char)(w >> (8 * (i & 7)));
	}
}

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		CHECK(w > 0, "write to a test descriptor failed: %s", strerror(errno));
		c += w;
		n -= (size_t)w;
	}
}

/* Everything readable now from non-blocking @fd, appended to @m. */
static void read_avail(int fd, struct model *m)
{
	unsigned char buf[65536];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		m_add(m, buf, (size_t)r);
	}
}

static int tmpfile_fd(void)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		char path[] = "/tmp/zbl-fuzz-XXXXXX";
		fd = mkostemp(path, O_CLOEXEC);
		CHECK(fd >= 0, "no temporary file: %s", strerror(errno));
		unlink(path);
	}
	return fd;
}

static void release_cb(void *ctx)
{
	(void)ctx;
	refs_released++;
}

/* ------------------------------------------------------------------------ */

struct state {
	zbl_t *bl[LISTS];
	struct model m[LISTS];
	bool dirty[LISTS];  /* bytes not compared since the last change */
	/*
	 * Some list got pages spliced from the file. They are the file's page
	 * cache pages: shrinking the file zeroes the part of a page past the new
	 * end in place, so their bytes change (documented in zbl.h), and the
	 * model cannot follow. The shrinking step is left out then.
	 */
	bool file_pages;
};

static void check_counters(struct state *s, int i)
{
	const zbl_t *bl = s->bl[i];
	size_t len = zbl_length(bl), segs = zbl_segments(bl), kb = zbl_kernel_bytes(bl);

	CHECK(len == s->m[i].len, "list %d: length %zu, model %zu", i, len, s->m[i].len);
	CHECK(kb <= len, "list %d: %zu kernel bytes in %zu", i, kb, len);
	CHECK((segs == 0) == (len == 0), "list %d: %zu segments for %zu bytes", i, segs, len);
	CHECK(segs <= len, "list %d: %zu segments for %zu bytes", i, segs, len);
	CHECK(zbl_is_contiguous(bl) == (segs <= 1), "list %d: is_contiguous wrong", i);
}

static void check_bytes(struct state *s, int i)
{
	size_t len = s->m[i].len;
	int rc = zbl_copy_out(s->bl[i], 0, len, scratch);

	CHECK(rc == 0, "list %d: copy_out of all %zu bytes: %d", i, len, rc);
	if (len && memcmp(scratch, s->m[i].b, len) != 0) {
		size_t k = 0;
		while (scratch[k] == s->m[i].b[k])
			k++;
		die("list %d differs from the model at byte %zu of %zu: 0x%02x, expected 0x%02x",
		    i, k, len, scratch[k], s->m[i].b[k]);
	}
	s->dirty[i] = false;
}

/* True when growing list @i by @n bytes would leave the range the model follows. */
static bool too_long(struct state *s, int i, size_t n)
{
	return n > LIST_BYTES_MAX || s->m[i].len > LIST_BYTES_MAX - n;
}

static int cmp_model(const struct model *a, const struct model *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->b, b->b, n) : 0;

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

/* A connected pair: [0] read, [1] write. Sockets or pipes, both non-blocking on [1]. */
static void make_pair(bool sock, int fds[2])
{
	if (sock) {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
		int sz = 4 << 20;
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		setsockopt(fds[0], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	} else {
		CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
	}
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
}

/* Writes @n bytes of @data into a fresh pipe or socket and ends it; returns the read end. */
static int make_source(bool sock, const unsigned char *data, size_t n, bool nonblock)
{
	int fds[2];

	make_pair(sock, fds);
	/* Sources are written whole before they are read, so they must fit. */
	fcntl(fds[1], F_SETFL, 0);
	write_all(fds[1], data, n);
	close(fds[1]); /* end of file after the bytes */
	if (nonblock)
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
	return fds[0];
}

/* ------------------------------------------------------------------------ */

static void op_splice_from(struct state *s, int i, struct in *in, uint8_t kind)
{
	size_t n;
	int fd;
	int64_t off = 0;
	bool file = false, by_read = kind & 4, nonblock = kind & 8;

	switch (kind & 3) {
	case 0:
	case 1: {
		bool sock = kind & 1;
		n = len_of(in, sock ? SOCK_SRC_MAX : PIPE_SRC_MAX);
		if (too_long(s, i, n))
			return;
		gen(scratch, n, u32(in));
		fd = make_source(sock, scratch, n, nonblock);
		break;
	}
	default:
		file = true;
		off = (int64_t)(u32(in) % (FILE_BYTES + 1));
		n = len_of(in, FILE_BYTES - (size_t)off);
		if (too_long(s, i, n))
			return;
		memcpy(scratch, filebytes + off, n);
		fd = file_fd;
		s->file_pages = true;
		break;
	}
	/* Several calls of a chosen size, until the source is empty. */
	size_t chunk = len_of(in, 200000) + 1, got = 0;
	ssize_t r_last = 0;
	if (chunk < n / 32 + 1)
		chunk = n / 32 + 1; /* bounded work per input */
	int64_t o = off;
	for (int calls = 0; got < n; calls++) {
		size_t want = n - got < chunk ? n - got : chunk;
		ssize_t r;
		CHECK(calls < 100000, "%s made no progress: %zd after %zu of %zu bytes (kind %u, chunk %zu, list %zu bytes in %zu segments, %zu kernel)",
		      by_read && !file ? "read_fd" : "splice_from", r_last, got, n, kind, chunk,
		      zbl_length(s->bl[i]), zbl_segments(s->bl[i]), zbl_kernel_bytes(s->bl[i]));
		if (by_read && !file)
			r = zbl_read_fd(s->bl[i], fd, want);
		else
			r = zbl_splice_from(s->bl[i], fd, file ? &o : NULL, want, 0);
		r_last = r;
		if (r == -EAGAIN && nonblock)
			continue;
		CHECK(r > 0 && (size_t)r <= want,
		      "%s of %zu (%zu of %zu done, kind %u) returned %zd", by_read ? "read_fd" : "splice_from",
		      want, got, n, kind, r);
		got += (size_t)r;
	}
	if (file)
		CHECK(o == off + (int64_t)n, "splice_from offset %lld, expected %lld",
		      (long long)o, (long long)(off + n));
	else
		close(fd);
	m_add(&s->m[i], scratch, n);
	s->dirty[i] = true;
}

static void op_splice_to(struct state *s, int i, uint8_t kind)
{
	int fds[2] = { -1, -1 }, fd;
	bool drain = kind & 4, to_file = (kind & 3) == 2, write_fd = (kind & 3) == 3;
	bool use_off = kind & 8;
	int64_t off = 0;
	struct model got = { 0 };
	size_t len = s->m[i].len;
	ssize_t r;

	if (to_file) {
		fd = tmpfile_fd();
	} else {
		make_pair(kind & 1, fds);
		if (!(kind & 1))
			fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
		fd = fds[1];
	}
	if (write_fd)
		r = zbl_write_fd(s->bl[i], fd);
	else
		r = zbl_splice_to(s->bl[i], fd, to_file && use_off ? &off : NULL,
				  drain ? ZBL_DRAIN : 0);
	if (to_file) {
		struct stat st;
		CHECK(fstat(fd, &st) == 0, "fstat");
		m_reserve(&got, (size_t)st.st_size);
		CHECK(pread(fd, got.b, (size_t)st.st_size, 0) == st.st_size, "pread");
		got.len = (size_t)st.st_size;
		CHECK(r == (ssize_t)len, "splice_to a file of %zu bytes returned %zd", len, r);
		if (use_off && !write_fd)
			CHECK(off == (int64_t)len && lseek(fd, 0, SEEK_CUR) == 0,
			      "splice_to with an offset: offset %lld, position %lld", (long long)off,
			      (long long)lseek(fd, 0, SEEK_CUR));
		close(fd);
	} else {
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		read_avail(fds[0], &got);
		close(fds[0]);
		close(fds[1]);
		/* A non-blocking destination may take less; never -EAGAIN for an empty list. */
		CHECK(r >= 0 || (r == -EAGAIN && len), "splice_to/write_fd returned %zd", r);
	}
	size_t n = r > 0 ? (size_t)r : 0;
	CHECK(got.len == n, "returned %zd but %zu bytes arrived", r, got.len);
	CHECK(!n || memcmp(got.b, s->m[i].b, n) == 0, "written bytes differ from the list");
	free(got.b);
	if (drain && !write_fd) {
		m_cut(&s->m[i], 0, n);
		s->dirty[i] = true;
	}
}

/* Reads a blocking descriptor to its end: the far side of a blocking destination. */
struct drainer {
	pthread_t thread;
	int fd;
	struct model got;
	int err;
};

static void *drainer_main(void *arg)
{
	struct drainer *d = arg;
	unsigned char buf[65536];

	for (;;) {
		ssize_t r = read(d->fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			d->err = errno;
		if (r <= 0)
			return NULL;
		m_add(&d->got, buf, (size_t)r);
	}
}

/*
 * splice_to or write_fd into a blocking pipe or socket that another thread
 * empties as it can: the call must wait for room rather than fail or stop
 * short, so it returns the whole length and everything arrives in order.
 * Kind bits: 0 socket, 1 write_fd, 2 drain, 3 a small destination (one
 * page of pipe, the smallest socket buffer), which makes it wait often.
 */
static void op_splice_to_blocking(struct state *s, int i, uint8_t kind)
{
	bool sock = kind & 1, write_fd = kind & 2, drain = kind & 4, small = kind & 8;
	size_t len = s->m[i].len;
	struct drainer d = { 0 };
	int fds[2];
	ssize_t r;

	make_pair(sock, fds);
	CHECK(fcntl(fds[1], F_SETFL, 0) == 0, "making the destination blocking");
	if (small && sock) {
		int sz = 1; /* the kernel raises it to its minimum */
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
		setsockopt(fds[0], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	} else if (small) {
		fcntl(fds[1], F_SETPIPE_SZ, 4096);
	}
	d.fd = fds[0];
	CHECK(pthread_create(&d.thread, NULL, drainer_main, &d) == 0, "pthread_create");
	if (write_fd)
		r = zbl_write_fd(s->bl[i], fds[1]);
	else
		r = zbl_splice_to(s->bl[i], fds[1], NULL, drain ? ZBL_DRAIN : 0);
	close(fds[1]); /* end of file for the drainer */
	CHECK(pthread_join(d.thread, NULL) == 0, "pthread_join");
	close(fds[0]);
	CHECK(d.err == 0, "reading the destination: %s", strerror(d.err));
	CHECK(r == (ssize_t)len, "%s to a blocking %s of a %zu-byte list returned %zd",
	      write_fd ? "write_fd" : "splice_to", sock ? "socket" : "pipe", len, r);
	CHECK(d.got.len == len && (!len || memcmp(d.got.b, s->m[i].b, len) == 0),
	      "%zu bytes arrived of %zu, or they differ from the list", d.got.len, len);
	free(d.got.b);
	if (drain && !write_fd) {
		m_cut(&s->m[i], 0, len);
		s->dirty[i] = true;
	}
}

/*
 * What `hexdump -C` writes for the model's bytes, written here from the
 * format rather than from zbl's code: rows of 16, a space after the eighth
 * byte, printable ASCII between bars, a full row equal to the one before it
 * folded into one "*" line, and the length last. Nothing for no bytes.
 */
static void hexdump_model(const struct model *m, struct model *out)
{
	char line[96];
	bool folded = false;

	for (size_t off = 0; off < m->len; off += 16) {
		const unsigned char *row = m->b + off;
		size_t n = m->len - off < 16 ? m->len - off : 16;
		if (n == 16 && off >= 16 && memcmp(row, row - 16, 16) == 0) {
			if (!folded)
				m_add(out, "*\n", 2);
			folded = true;
			continue;
		}
		folded = false;
		int k = snprintf(line, sizeof(line), "%08zx ", off);
		for (size_t c = 0; c < 16; c++) {
			if (c < n)
				k += snprintf(line + k, sizeof(line) - (size_t)k, "%s%02x", c == 8 ? "  " : " ",
					      row[c]);
			else
				k += snprintf(line + k, sizeof(line) - (size_t)k, "%s  ", c == 8 ? "  " : " ");
		}
		k += snprintf(line + k, sizeof(line) - (size_t)k, "  |");
		for (size_t c = 0; c < n; c++)
			line[k++] = row[c] >= 0x20 && row[c] < 0x7f ? (char)row[c] : '.';
		k += snprintf(line + k, sizeof(line) - (size_t)k, "|\n");
		m_add(out, line, (size_t)k);
	}
	if (m->len) {
		int k = snprintf(line, sizeof(line), "%08zx\n", m->len);
		m_add(out, line, (size_t)k);
	}
}

/*
 * zbl_hexdump into memory, compared with the model's dump; with @to_full,
 * into an unbuffered stream on /dev/full, where every write fails: -EIO for
 * a list with bytes, 0 for an empty one (nothing to write). Either way the
 * list is unchanged.
 */
static void op_hexdump(struct state *s, int i, bool to_full)
{
	struct model want = { 0 };
	char *got = NULL;
	size_t got_len = 0;
	FILE *out;
	int rc;

	if (to_full) {
		out = fopen("/dev/full", "we");
		CHECK(out, "fopen /dev/full: %s", strerror(errno));
		setvbuf(out, NULL, _IONBF, 0);
		rc = zbl_hexdump(s->bl[i], out);
		fclose(out);
		CHECK(rc == (s->m[i].len ? -EIO : 0), "hexdump of %zu bytes to /dev/full: %d",
		      s->m[i].len, rc);
		return;
	}
	out = open_memstream(&got, &got_len);
	CHECK(out, "open_memstream");
	rc = zbl_hexdump(s->bl[i], out);
	fclose(out);
	CHECK(rc == 0, "hexdump: %d", rc);
	hexdump_model(&s->m[i], &want);
	if (got_len != want.len || (want.len && memcmp(got, want.b, want.len) != 0)) {
		size_t k = 0;
		while (k < got_len && k < want.len && got[k] == (char)want.b[k])
			k++;
		die("hexdump of list %d (%zu bytes) differs at output byte %zu of %zu (expected %zu)",
		    i, s->m[i].len, k, got_len, want.len);
	}
	free(got);
	free(want.b);
}

static void op_iter(struct state *s, int i, struct in *in)
{
	const struct model *m = &s->m[i];
	size_t off = u32(in) % (m->len + 2);
	zbl_iter_t it;
	int rc = zbl_iter_init(&it, s->bl[i], off);

	if (off > m->len) {
		CHECK(rc == -ERANGE, "iter_init past the end: %d", rc);
		return;
	}
	CHECK(rc == 0, "iter_init(%zu): %d", off, rc);
	for (int steps = 0; steps < 16; steps++) {
		CHECK(zbl_iter_offset(&it) == off, "iter offset %zu, expected %zu",
		      zbl_iter_offset(&it), off);
		CHECK(zbl_iter_remaining(&it) == m->len - off, "iter remaining wrong");
		uint8_t how = u8(in);
		size_t n = len_of(in, m->len - off + 1);
		const char *p;
		switch (how % 3) {
		case 0: {
			size_t got = zbl_iter_get_ptr_and_advance(&it, n, &p);
			CHECK(got <= n && (got > 0 || !n || off == m->len),
			      "get_ptr_and_advance(%zu) at %zu of %zu: %zu", n, off, m->len, got);
			CHECK(!got || memcmp(p, m->b + off, got) == 0, "iterator bytes differ");
			off += got;
			break;
		}
		case 1:
			rc = zbl_iter_copy(&it, n, scratch);
			if (n > m->len - off) {
				CHECK(rc == -ERANGE, "iter_copy past the end: %d", rc);
			} else {
				CHECK(rc == 0 && (!n || memcmp(scratch, m->b + off, n) == 0),
				      "iter_copy(%zu) at %zu: %d", n, off, rc);
				off += n;
			}
			break;
		default:
			rc = zbl_iter_advance(&it, n);
			if (n > m->len - off) {
				CHECK(rc == -ERANGE, "iter_advance past the end: %d", rc);
			} else {
				CHECK(rc == 0, "iter_advance: %d", rc);
				off += n;
			}
			break;
		}
	}
}

/*
 * The file behind append_file segments shrinks to @keep bytes for a while:
 * reads of missing bytes must fail (never return other bytes, never SIGBUS),
 * a success must be right, and two lists that cannot both be read in full
 * are never "equal". Then the file gets the same bytes back, so the model
 * stays valid.
 */
static void op_truncated(struct state *s, int i, int j, size_t keep)
{
	struct model *m = &s->m[i];
	int rc;

	if (s->file_pages)
		return;
	CHECK(ftruncate(file_fd, (off_t)keep) == 0, "ftruncate");
	rc = zbl_copy_out(s->bl[i], 0, m->len, scratch);
	CHECK(rc == 0 || rc == -EIO, "copy_out of a list on a shrunk file: %d", rc);
	bool readable_i = rc == 0;
	if (rc == 0 && m->len && memcmp(scratch, m->b, m->len) != 0) {
		size_t k = 0;
		while (scratch[k] == m->b[k])
			k++;
		die("copy_out of list %d on a file shrunk to %zu returned 0x%02x at byte %zu of "
		    "%zu, expected 0x%02x", i, keep, scratch[k], k, m->len, m->b[k]);
	}
	rc = zbl_copy_out(s->bl[j], 0, s->m[j].len, scratch);
	bool readable_j = rc == 0;
	if (zbl_contents_equal(s->bl[i], s->bl[j]))
		CHECK(readable_i && readable_j && cmp_model(m, &s->m[j]) == 0,
		      "contents_equal(%d, %d) true on a shrunk file (readable %d %d)", i, j,
		      readable_i, readable_j);
	errno = 0;
	uint32_t c = zbl_crc32c(s->bl[i], 0);
	if (errno == 0)
		CHECK(c == (m->len ? crc32_iscsi(m->b, (int)m->len, 0) : 0),
		      "crc32c on a shrunk file: no error but a wrong CRC");
	const char *p = zbl_c_str(s->bl[i]);
	if (p)
		CHECK(memcmp(p, m->b, m->len) == 0, "c_str on a shrunk file returned other bytes");
	/* A draining write stops where the bytes end; what went is exactly what left. */
	int fds[2];
	make_pair(false, fds);
	fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	ssize_t r = zbl_splice_to(s->bl[i], fds[1], NULL, ZBL_DRAIN);
	struct model got = { 0 };
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	read_avail(fds[0], &got);
	close(fds[0]);
	close(fds[1]);
	size_t n = r > 0 ? (size_t)r : 0;
	CHECK(got.len == n && (!n || memcmp(got.b, m->b, n) == 0),
	      "draining write on a shrunk file returned %zd, %zu bytes arrived", r, got.len);
	free(got.b);
	m_cut(m, 0, n);
	s->dirty[i] = true;
	CHECK(pwrite(file_fd, filebytes + keep, FILE_BYTES - keep, (off_t)keep) ==
	      (ssize_t)(FILE_BYTES - keep), "restoring the file");
}


/* ------------------------------------------------------------------------ */
/* Ring operations: io_uring ring, ZBL_RING_SYNC ring, synchronous functions. */

enum { RUN_URING, RUN_SYNC_RING, RUN_FUNCS, RUNNERS };
static const char *const runner_name[RUNNERS] = { "io_uring ring", "ZBL_RING_SYNC ring",
						  "synchronous functions" };

struct ring_done {
	int calls;
	ssize_t result;
};

static void ring_cb(zbl_ring_t *ring, ssize_t result, void *arg)
{
	struct ring_done *d = arg;

	(void)ring;
	d->calls++;
	d->result = result;
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A ring for runner @r; the io_uring one must be io_uring wherever zbl_caps says it can be. */
static zbl_ring_t *ring_for(int r)
{
	zbl_ring_t *ring = zbl_ring_new(0, r == RUN_URING ? 0 : ZBL_RING_SYNC);
	struct zbl_caps c;

	CHECK(ring, "zbl_ring_new: %s", strerror(errno));
	CHECK(zbl_caps(&c) == 0, "zbl_caps");
	const char *b = zbl_ring_backend(ring);
	CHECK(b && strcmp(b, r == RUN_URING && c.io_uring ? "io_uring" : "sync") == 0,
	      "%s: zbl_ring_backend says %s (zbl_caps: io_uring %d)", runner_name[r],
	      b ? b : "NULL", c.io_uring);
	return ring;
}

/* Runs @ring until @d's callback ran; then frees the ring, which must run no callback again. */
static void ring_finish(zbl_ring_t *ring, struct ring_done *d, const char *what)
{
	long long end = now_ms() + RING_OP_MS;

	while (!d->calls) {
		int rc = zbl_ring_run(ring, 1, 100);
		CHECK(rc >= 0, "%s: zbl_ring_run returned %d", what, rc);
		CHECK(now_ms() < end, "%s: no completion after %d ms", what, RING_OP_MS);
	}
	zbl_ring_free(ring);
	CHECK(d->calls == 1, "%s: the callback ran %d times", what, d->calls);
}

/* A TCP connection over 127.0.0.1: [0] accepted (read), [1] connected (written). */
static void tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(l >= 0, "socket: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0 &&
	      getsockname(l, (struct sockaddr *)&a, &alen) == 0, "listen: %s", strerror(errno));
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fds[1] >= 0 && connect(fds[1], (struct sockaddr *)&a, sizeof(a)) == 0,
	      "connect: %s", strerror(errno));
	fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fds[0] >= 0, "accept: %s", strerror(errno));
	close(l);
}

/* Kinds of descriptor in the low two bits of a ring operation's kind byte. */
enum { RK_PIPE, RK_UNIX, RK_FILE, RK_TCP };

/* A destination stream of kind @k: [0] read by a drainer thread, [1] written. */
static void ring_dest_pair(int k, int fds[2])
{
	if (k == RK_TCP) {
		tcp_pair(fds);
	} else {
		make_pair(k == RK_UNIX, fds);
		fcntl(fds[1], F_SETFL, 0);
	}
}

/*
 * zbl_ring_write of list @i, through each runner in turn, to a fresh
 * destination. Kind bits: 0-1 pipe, AF_UNIX, file, TCP; 2 ZBL_DRAIN; 3 the
 * rings' destination is non-blocking; 4-5 which runner writes the list itself
 * (the others write lists sharing its storage, and go first: with ZBL_DRAIN
 * the list is empty after); 6 the rings' caller frees its list right after
 * submitting; 7 a file offset follows.
 */
static void op_ring_write(struct state *s, int i, struct in *in)
{
	uint8_t kind = u8(in);
	int k = kind & 3, owner = ((kind >> 4) & 3) % RUNNERS;
	bool drain = kind & 4, nonblock = kind & 8, free_early = kind & 0x40;
	int64_t off = (k == RK_FILE && (kind & 0x80)) ? (int64_t)(u32(in) % (1 << 20)) : 0;
	size_t len = s->m[i].len;
	ssize_t res[RUNNERS];
	struct model got[RUNNERS] = { { 0 } };

	for (int n = 0; n < RUNNERS; n++) {
		int r = (owner + 1 + n) % RUNNERS; /* the owner last */
		bool own = r == owner;
		zbl_t *bl = s->bl[i];
		int fds[2] = { -1, -1 }, fd;
		struct drainer d = { 0 };

		if (!own) {
			bl = zbl_new();
			CHECK(bl && zbl_append_list(bl, s->bl[i]) == 0, "copying the list");
		}
		if (k == RK_FILE) {
			fd = tmpfile_fd();
		} else {
			ring_dest_pair(k, fds);
			d.fd = fds[0];
			CHECK(pthread_create(&d.thread, NULL, drainer_main, &d) == 0, "pthread_create");
			fd = fds[1];
		}
		if (r == RUN_FUNCS) {
			int64_t o = off;
			if (k == RK_FILE)
				res[r] = zbl_splice_to(bl, fd, &o, drain ? ZBL_DRAIN : 0);
			else if (drain)
				res[r] = zbl_splice_to(bl, fd, NULL, ZBL_DRAIN);
			else
				res[r] = zbl_write_fd(bl, fd);
		} else {
			zbl_ring_t *ring = ring_for(r);
			struct ring_done done = { 0 };
			if (nonblock && k != RK_FILE)
				fcntl(fd, F_SETFL, O_NONBLOCK);
			int rc = zbl_ring_write(ring, bl, fd, k == RK_FILE ? off : -1,
						drain ? ZBL_DRAIN : 0, ring_cb, &done);
			CHECK(rc == 0, "%s: zbl_ring_write returned %d", runner_name[r], rc);
			CHECK(!done.calls, "%s: the callback ran inside zbl_ring_write", runner_name[r]);
			CHECK(!drain || zbl_length(bl) == 0,
			      "%s: zbl_ring_write(ZBL_DRAIN) left %zu bytes in the list",
			      runner_name[r], zbl_length(bl));
			if (free_early && !own) {
				zbl_free(bl);
				bl = NULL;
			}
			ring_finish(ring, &done, runner_name[r]);
			res[r] = done.result;
		}
		if (k == RK_FILE) {
			struct stat st;
			CHECK(fstat(fd, &st) == 0, "fstat");
			m_reserve(&got[r], (size_t)st.st_size);
			CHECK(pread(fd, got[r].b, (size_t)st.st_size, 0) == st.st_size, "pread");
			got[r].len = (size_t)st.st_size;
			close(fd);
		} else {
			close(fds[1]);
			CHECK(pthread_join(d.thread, NULL) == 0, "pthread_join");
			close(fds[0]);
			CHECK(d.err == 0, "%s: reading the destination: %s", runner_name[r],
			      strerror(d.err));
			got[r] = d.got;
		}
		if (!own)
			zbl_free(bl);
	}
	/* The same result and bytes from every runner: the whole list, at the offset. */
	for (int r = 0; r < RUNNERS; r++) {
		size_t want_len = k == RK_FILE && len ? (size_t)off + len : len;
		CHECK(res[r] == (ssize_t)len, "%s: writing %zu bytes (kind 0x%02x) returned %zd",
		      runner_name[r], len, kind, res[r]);
		CHECK(got[r].len == want_len, "%s: %zu bytes arrived (kind 0x%02x), expected %zu",
		      runner_name[r], got[r].len, kind, want_len);
		if (k == RK_FILE)
			for (size_t b = 0; b < (size_t)off && b < got[r].len; b++)
				CHECK(got[r].b[b] == 0, "%s: file byte %zu before the offset is 0x%02x",
				      runner_name[r], b, got[r].b[b]);
		size_t at = k == RK_FILE && len ? (size_t)off : 0;
		CHECK(!len || memcmp(got[r].b + at, s->m[i].b, len) == 0,
		      "%s: the bytes written (kind 0x%02x) differ from the list", runner_name[r],
		      kind);
		free(got[r].b);
	}
	if (drain) {
		m_cut(&s->m[i], 0, len);
		s->dirty[i] = true;
	}
}

/* Waits (a few seconds at most) until @fd has @n bytes to read. */
static void wait_inq(int fd, size_t n)
{
	long long end = now_ms() + 5000;
	int have = 0;

	while (ioctl(fd, FIONREAD, &have) == 0 && (size_t)have < n) {
		CHECK(now_ms() < end, "only %d of %zu bytes arrived on a loopback socket", have, n);
		usleep(100);
	}
}

/*
 * A stream source of kind @k holding @n bytes of @data then end of file,
 * everything arrived: the read end.
 */
static int ring_source(int k, const unsigned char *data, size_t n)
{
	int fds[2];

	if (k != RK_TCP)
		return make_source(k == RK_UNIX, data, n, false);
	tcp_pair(fds);
	write_all(fds[1], data, n);
	close(fds[1]);
	wait_inq(fds[0], n);
	return fds[0];
}

/*
 * zbl_ring_read (@splice false) or zbl_ring_splice_from of up to a chosen
 * length into list @i, through each runner, from a fresh source holding the
 * same bytes. Kind bits: 0-1 pipe, AF_UNIX, file, TCP; 3 the rings' source
 * is non-blocking; 4-5 which runner reads into the list itself (the others
 * into lists sharing its storage). A stream read returns what one receive
 * gives: everything waiting, up to the length. A file read is short only at
 * end of file. splice_from may return less (as zbl_splice_from with ZBL_SOME
 * does) but never nothing while bytes wait, and the runners must agree.
 */
static void op_ring_read(struct state *s, int i, struct in *in, bool splice)
{
	uint8_t kind = u8(in);
	int k = kind & 3, owner = ((kind >> 4) & 3) % RUNNERS;
	bool nonblock = kind & 8;
	size_t n, len, expect;
	int64_t off = -1;
	const unsigned char *src;
	ssize_t res[RUNNERS];

	if (k == RK_FILE) {
		off = (int64_t)(u32(in) % (FILE_BYTES + 16));
		len = 1 + len_of(in, FILE_BYTES);
		n = (size_t)off < FILE_BYTES ? FILE_BYTES - (size_t)off : 0;
		src = (size_t)off < FILE_BYTES ? filebytes + off : filebytes;
	} else {
		/* A TCP source is written whole before it is read: within the first window. */
		n = len_of(in, k == RK_UNIX ? SOCK_SRC_MAX : k == RK_TCP ? TCP_SRC_MAX : PIPE_SRC_MAX);
		len = 1 + len_of(in, 200000);
		gen(scratch, n, u32(in));
		src = scratch;
	}
	expect = len < n ? len : n;
	if (too_long(s, i, expect))
		return;
	size_t before = s->m[i].len;
	for (int q = 0; q < RUNNERS; q++) {
		int r = (owner + 1 + q) % RUNNERS;
		bool own = r == owner;
		zbl_t *bl = s->bl[i];
		int fd;

		if (!own) {
			bl = zbl_new();
			CHECK(bl && zbl_append_list(bl, s->bl[i]) == 0, "copying the list");
		}
		if (k == RK_FILE) {
			/* Its own open file description: the position is the runner's own. */
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/fd/%d", file_fd);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			CHECK(fd >= 0, "reopening the file: %s", strerror(errno));
		} else {
			fd = ring_source(k, src, n);
		}
		if (r == RUN_FUNCS) {
			int64_t o = off;
			if (splice) {
				res[r] = zbl_splice_from(bl, fd, k == RK_FILE ? &o : NULL, len, ZBL_SOME);
			} else {
				if (k == RK_FILE)
					CHECK(lseek(fd, off, SEEK_SET) == off, "lseek");
				res[r] = zbl_read_fd(bl, fd, len);
			}
		} else {
			zbl_ring_t *ring = ring_for(r);
			struct ring_done done = { 0 };
			int rc;
			if (nonblock && k != RK_FILE)
				fcntl(fd, F_SETFL, O_NONBLOCK);
			if (splice)
				rc = zbl_ring_splice_from(ring, bl, fd, off, len, 0, ring_cb, &done);
			else
				rc = zbl_ring_read(ring, bl, fd, off, len, 0, ring_cb, &done);
			CHECK(rc == 0, "%s: submitting a read returned %d", runner_name[r], rc);
			CHECK(!done.calls, "%s: the callback ran inside the submission", runner_name[r]);
			ring_finish(ring, &done, runner_name[r]);
			res[r] = done.result;
		}
		close(fd);
		if (res[r] > 0 && !own) {
			/* What was appended: the source's first bytes. */
			size_t got = (size_t)res[r];
			CHECK(zbl_length(bl) == before + got, "%s: the list grew by %zu, result %zd",
			      runner_name[r], zbl_length(bl) - before, res[r]);
			CHECK(zbl_copy_out(bl, before, got, scratch + LIST_BYTES_MAX) == 0 &&
			      memcmp(scratch + LIST_BYTES_MAX, src, got) == 0,
			      "%s: the bytes read (kind 0x%02x) differ from the source", runner_name[r],
			      kind);
		}
		if (!own)
			zbl_free(bl);
	}
	for (int r = 0; r < RUNNERS; r++) {
		CHECK(res[r] == res[RUN_FUNCS], "%s returned %zd, %s %zd (%s of %zu from %zu bytes, "
		      "kind 0x%02x)", runner_name[r], res[r], runner_name[RUN_FUNCS], res[RUN_FUNCS],
		      splice ? "splice_from" : "read", len, n, kind);
		if (splice)
			CHECK(res[r] <= (ssize_t)expect && (res[r] > 0 || !expect),
			      "%s: splice_from of %zu with %zu bytes waiting returned %zd",
			      runner_name[r], len, n, res[r]);
		else
			CHECK(res[r] == (ssize_t)expect,
			      "%s: read of %zu with %zu bytes waiting returned %zd, expected %zu",
			      runner_name[r], len, n, res[r], expect);
	}
	if (res[0] > 0) {
		m_add(&s->m[i], src, (size_t)res[0]);
		s->dirty[i] = true;
		if (splice && k == RK_FILE)
			s->file_pages = true;
	}
}

static void step(struct state *s, struct in *in)
{
	uint8_t op = u8(in), a = u8(in);
	int i = a % LISTS, j = (a >> 2) % LISTS;
	bool defer = op & 0x80;
	struct model *m = &s->m[i], *mj = &s->m[j];
	size_t off, n;
	int rc;

	/* Bit 7 defers the byte comparison, bit 6 is an operation's own option. */
	unsigned code = op & 0x3f;
	switch (code >= RING_OP_FIRST ? 26 + (code - RING_OP_FIRST) % 3 : code % 26) {
	case 0: /* append */
		n = len_of(in, 300000);
		if (too_long(s, i, n))
			break;
		gen(scratch, n, u32(in));
		CHECK(zbl_append(s->bl[i], scratch, n) == 0, "append %zu", n);
		m_add(m, scratch, n);
		s->dirty[i] = true;
		break;
	case 1: /* append_zero */
		n = len_of(in, 300000);
		if (too_long(s, i, n))
			break;
		CHECK(zbl_append_zero(s->bl[i], n) == 0, "append_zero %zu", n);
		m_add(m, NULL, n);
		s->dirty[i] = true;
		break;
	case 2: /* append_ref */
		off = u32(in) % PAT_BYTES;
		n = len_of(in, PAT_BYTES - off);
		if (too_long(s, i, n))
			break;
		refs_appended++;
		CHECK(zbl_append_ref(s->bl[i], pat + off, n, release_cb, NULL) == 0, "append_ref");
		m_add(m, pat + off, n);
		s->dirty[i] = true;
		break;
	case 3: /* append_list, also of a list to itself */
		if (too_long(s, i, mj->len))
			break;
		CHECK(zbl_append_list(s->bl[i], s->bl[j]) == 0, "append_list");
		m_add(m, mj->b, mj->len);
		s->dirty[i] = true;
		break;
	case 4: /* claim_append */
		if (i == j) {
			CHECK(zbl_claim_append(s->bl[i], s->bl[j]) == -EINVAL, "claim_append self");
			break;
		}
		if (too_long(s, i, mj->len))
			break;
		CHECK(zbl_claim_append(s->bl[i], s->bl[j]) == 0, "claim_append");
		m_add(m, mj->b, mj->len);
		mj->len = 0;
		s->dirty[i] = s->dirty[j] = true;
		break;
	case 5: /* append_file */
		off = u32(in) % (FILE_BYTES + 16);
		n = len_of(in, FILE_BYTES + 16);
		if (too_long(s, i, n))
			break;
		rc = zbl_append_file(s->bl[i], file_fd, (int64_t)off, n);
		if (off + n > FILE_BYTES) {
			CHECK(rc == -ERANGE, "append_file past the end: %d", rc);
			break;
		}
		CHECK(rc == 0, "append_file(%zu, %zu): %d", off, n, rc);
		m_add(m, filebytes + off, n);
		s->dirty[i] = true;
		break;
	case 6: /* substr_of, also in place */
		off = u32(in) % (mj->len + 2);
		n = len_of(in, mj->len + 1);
		rc = zbl_substr_of(s->bl[i], s->bl[j], off, n);
		if (off > mj->len || n > mj->len - off) {
			CHECK(rc == -ERANGE, "substr_of out of range: %d", rc);
			break;
		}
		CHECK(rc == 0, "substr_of: %d", rc);
		memmove(scratch, mj->b + off, n);
		m->len = 0;
		m_add(m, scratch, n);
		s->dirty[i] = true;
		break;
	case 7: /* splice, claimed by another list or dropped */
		off = u32(in) % (m->len + 2);
		n = len_of(in, m->len + 1);
		bool claim = i != j && (op & 0x40);
		if (claim && too_long(s, j, n))
			break;
		rc = zbl_splice(s->bl[i], off, n, claim ? s->bl[j] : NULL);
		if (off > m->len || n > m->len - off) {
			CHECK(rc == -ERANGE, "splice out of range: %d", rc);
			break;
		}
		CHECK(rc == 0, "splice(%zu, %zu): %d", off, n, rc);
		if (claim) {
			m_add(mj, m->b + off, n);
			s->dirty[j] = true;
		}
		m_cut(m, off, n);
		s->dirty[i] = true;
		break;
	case 8: /* copy_out */
		off = u32(in) % (m->len + 2);
		n = len_of(in, m->len + 1);
		rc = zbl_copy_out(s->bl[i], off, n, scratch);
		if (off > m->len || n > m->len - off) {
			CHECK(rc == -ERANGE, "copy_out out of range: %d", rc);
			break;
		}
		CHECK(rc == 0 && (!n || memcmp(scratch, m->b + off, n) == 0),
		      "copy_out(%zu, %zu): %d or bytes differ", off, n, rc);
		break;
	case 9:
		op_iter(s, i, in);
		break;
	case 10: { /* c_str */
		errno = 1234;
		const char *p = zbl_c_str(s->bl[i]);
		if (!m->len) {
			CHECK(!p && errno == 0, "c_str of an empty list: %p, errno %d", p, errno);
			break;
		}
		CHECK(p && memcmp(p, m->b, m->len) == 0, "c_str bytes differ (errno %d)", errno);
		CHECK(zbl_segments(s->bl[i]) == 1 && zbl_kernel_bytes(s->bl[i]) == 0,
		      "after c_str: %zu segments, %zu kernel bytes", zbl_segments(s->bl[i]),
		      zbl_kernel_bytes(s->bl[i]));
		break;
	}
	case 11: /* rebuild */
		CHECK(zbl_rebuild(s->bl[i]) == 0, "rebuild");
		CHECK(zbl_segments(s->bl[i]) <= 1 && zbl_kernel_bytes(s->bl[i]) == 0,
		      "after rebuild: %zu segments", zbl_segments(s->bl[i]));
		s->dirty[i] = true;
		break;
	case 12: { /* rebuild_aligned */
		size_t align = (size_t)1 << (u8(in) % 14);
		CHECK(zbl_rebuild_aligned(s->bl[i], align) == 0, "rebuild_aligned(%zu)", align);
		CHECK(zbl_kernel_bytes(s->bl[i]) == 0, "kernel bytes after rebuild_aligned");
		zbl_iter_t it;
		const char *p;
		size_t got;
		CHECK(zbl_iter_init(&it, s->bl[i], 0) == 0, "iter_init");
		while ((got = zbl_iter_get_ptr_and_advance(&it, SIZE_MAX, &p)) > 0)
			CHECK(((uintptr_t)p & (align - 1)) == 0, "segment at %p not aligned to %zu",
			      (const void *)p, align);
		s->dirty[i] = true;
		break;
	}
	case 13: { /* crc32c */
		uint32_t seed = u32(in);
		errno = 0;
		uint32_t c = zbl_crc32c(s->bl[i], seed);
		uint32_t want = m->len ? crc32_iscsi(m->b, (int)m->len, seed) : seed;
		CHECK(c == want && errno == 0, "crc32c 0x%08x, expected 0x%08x (errno %d)", c, want,
		      errno);
		/* Cached CRCs answer the second time; the result must not change. */
		CHECK(zbl_crc32c(s->bl[i], seed) == want, "second crc32c differs");
		break;
	}
	case 14: /* cmp, contents_equal */
		CHECK(sign(zbl_cmp(s->bl[i], s->bl[j])) == sign(cmp_model(m, mj)),
		      "cmp(%d, %d) = %d, model %d", i, j, zbl_cmp(s->bl[i], s->bl[j]),
		      cmp_model(m, mj));
		CHECK(zbl_contents_equal(s->bl[i], s->bl[j]) == (cmp_model(m, mj) == 0),
		      "contents_equal(%d, %d) wrong", i, j);
		break;
	case 15:
	case 16:
		op_splice_from(s, i, in, u8(in));
		break;
	case 17:
	case 18:
		op_splice_to(s, i, u8(in));
		break;
	case 19: /* clear */
		zbl_clear(s->bl[i]);
		m->len = 0;
		break;
	case 20: /* free while other lists share the blocks */
		zbl_free(s->bl[i]);
		s->bl[i] = zbl_new();
		CHECK(s->bl[i], "zbl_new");
		m->len = 0;
		break;
	case 21: /* invalid arguments change nothing */
		CHECK(zbl_append(s->bl[i], NULL, 1) == -EINVAL, "append NULL");
		CHECK(zbl_splice(s->bl[i], m->len, 1, NULL) == -ERANGE, "splice past the end");
		CHECK(zbl_copy_out(s->bl[i], SIZE_MAX, 1, scratch) == -ERANGE, "copy_out SIZE_MAX");
		CHECK(zbl_rebuild_aligned(s->bl[i], 3) == -EINVAL, "rebuild_aligned(3)");
		CHECK(zbl_splice_to(s->bl[i], -1, NULL, 0) == -EINVAL, "splice_to(-1)");
		break;
	case 23:
		op_truncated(s, i, j, u32(in) % FILE_BYTES);
		break;
	case 24:
		op_hexdump(s, i, op & 0x40);
		break;
	case 25:
		op_splice_to_blocking(s, i, u8(in));
		break;
	case 26:
		op_ring_write(s, i, in);
		break;
	case 27:
		op_ring_read(s, i, in, false);
		break;
	case 28:
		op_ring_read(s, i, in, true);
		break;
	default: /* compare now */
		check_bytes(s, i);
		break;
	}
	for (int k = 0; k < LISTS; k++) {
		check_counters(s, k);
		if (!defer && s->dirty[k])
			check_bytes(s, k);
	}
}

static int init(void)
{
	gen(pat, PAT_BYTES, 1);
	gen(filebytes, FILE_BYTES, 2);
	scratch = malloc(LIST_BYTES_MAX * 2 + 1);
	if (!scratch)
		return -1;
	file_fd = tmpfile_fd();
	write_all(file_fd, filebytes, FILE_BYTES);
	/* The library's lasting descriptors (/dev/null) exist after a first discard. */
	zbl_t *bl = zbl_new();
	int fd = make_source(false, pat, 100, false);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	zbl_splice_from(bl, fd, NULL, 100, 0);
	zbl_splice_to(bl, devnull, NULL, ZBL_DRAIN);
	zbl_append(bl, "x", 1);
	zbl_splice_from(bl, file_fd, &(int64_t){ 0 }, 10, 0);
	zbl_splice(bl, 0, 1, NULL);
	zbl_splice_to(bl, devnull, NULL, ZBL_DRAIN);
	zbl_free(bl);
	close(fd);
	close(devnull);
	zbl_pool_flush();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct state s = { 0 };
	struct in in = { data, size };

	if (!ready) {
		if (init() < 0)
			abort();
		ready = true;
	}
	/* Counted per input: libFuzzer itself opens descriptors between inputs. */
	fds_baseline = fd_count();
	for (int i = 0; i < LISTS; i++) {
		s.bl[i] = zbl_new();
		CHECK(s.bl[i], "zbl_new");
		m_reserve(&s.m[i], 1); /* never a NULL model, even when empty */
	}
	for (int n = 0; n < OPS_MAX && in.left; n++)
		step(&s, &in);
	for (int i = 0; i < LISTS; i++) {
		check_counters(&s, i);
		check_bytes(&s, i);
	}
	for (int i = 0; i < LISTS; i++) {
		zbl_free(s.bl[i]);
		free(s.m[i].b);
	}
	CHECK(refs_released == refs_appended, "%ld append_ref releases for %ld appends",
	      refs_released, refs_appended);
	zbl_pool_flush();
	struct zbl_stats st;
	zbl_stats_get(&st);
	CHECK(st.pipes_live == 0, "%llu pipes live after every list was freed",
	      (unsigned long long)st.pipes_live);
	int fds = fd_count();
	CHECK(fds == fds_baseline, "%d descriptors open after the input, %d before", fds,
	      fds_baseline);
	return 0;
}
