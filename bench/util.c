/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the benchmark rows: clocks, a reproducible data pattern
 * and its CRC, TCP loopback pairs, temporary files, pipes, memory readings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <isa-l/crc.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double bench_thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64: cheap, reproducible, and good enough to scatter offsets. */
uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

const unsigned char *bench_pattern(void)
{
	static unsigned char *pat;

	if (!pat) {
		uint64_t s = 0x9e3779b97f4a7c15ull;

		/* Page-aligned: O_DIRECT writes and whole-page references take it as it is. */
		if (posix_memalign((void **)&pat, 4096, BENCH_PATTERN_BYTES) != 0)
			abort();
		for (size_t i = 0; i < BENCH_PATTERN_BYTES; i += 8) {
			uint64_t x = bench_rand(&s);
			memcpy(pat + i, &x, 8);
		}
	}
	return pat;
}

uint32_t bench_crc(uint32_t crc, const void *p, size_t len)
{
	/* crc32_iscsi takes an int length. */
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p = (const char *)p + n;
		len -= n;
	}
	return crc;
}

uint32_t bench_pattern_crc(size_t len)
{
	const unsigned char *pat = bench_pattern();
	uint32_t crc = 0;

	while (len) {
		size_t n = len < BENCH_PATTERN_BYTES ? len : BENCH_PATTERN_BYTES;

		crc = bench_crc(crc, pat, n);
		len -= n;
	}
	return crc;
}

/* A connected TCP pair on 127.0.0.1: *rx receives, *tx sends. */
int bench_tcp_pair(int *rx, int *tx)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0)
		return -errno;
	if (bind(l, (void *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (void *)&a, &al) < 0)
		goto fail;
	*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*tx < 0)
		goto fail;
	if (connect(*tx, (void *)&a, sizeof(a)) < 0) {
		close(*tx);
		goto fail;
	}
	*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*rx < 0) {
		close(*tx);
		goto fail;
	}
	close(l);
	return 0;
fail:
	close(l);
	return -errno;
}

int bench_write_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p = (const char *)p + w;
		len -= (size_t)w;
	}
	return 0;
}

int bench_write_repeated(int fd, const void *buf, size_t total)
{
	for (size_t put = 0; put < total; put += BENCH_PATTERN_BYTES) {
		size_t n = total - put < BENCH_PATTERN_BYTES ? total - put : BENCH_PATTERN_BYTES;
		int err = bench_write_all(fd, buf, n);

		if (err < 0)
			return err;
	}
	return 0;
}

int bench_zero_file(int fd, size_t len)
{
	/* Aligned, so that O_DIRECT files can be zeroed too. */
	static const char zeros[BENCH_PATTERN_BYTES] __attribute__((aligned(4096)));

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return bench_write_repeated(fd, zeros, len);
}

int bench_file_rewind(int fd, size_t len, bool verify)
{
	int err = verify ? bench_zero_file(fd, len) : 0;

	if (err < 0)
		return err;
	if (fdatasync(fd) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return 0;
}

int bench_file_check(int fd, size_t len, uint32_t crc, bool verify)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size != len)
		return -EIO;
	if (verify && bench_file_crc(fd, len) != crc)
		return -EILSEQ;
	return 0;
}

/* An anonymous file in the bench directory (unlinked at once). */
int bench_temp_file(const struct bench *b, const char *tag)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/zbl-bench-%s-XXXXXX", b->dir, tag);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

int64_t bench_file_crc(int fd, size_t len)
{
	/* Aligned, so that O_DIRECT files can be read too (in whole pages). */
	static char buf[1 << 20] __attribute__((aligned(4096)));
	uint32_t crc = 0;
	off_t off = 0;

	while ((size_t)off < len) {
		size_t want = len - off < sizeof(buf) ? len - off : sizeof(buf);
		ssize_t r = pread(fd, buf, want, off);

		if (r <= 0)
			return -1;
		crc = bench_crc(crc, buf, (size_t)r);
		off += r;
	}
	return crc;
}

/* A pipe of at least @bytes if the system allows, else as large as it gets. */
int bench_pipe(int p[2], size_t bytes)
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	(void)fcntl(p[1], F_SETPIPE_SZ, (int)bytes);
	return fcntl(p[1], F_GETPIPE_SZ);
}

size_t bench_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, rss = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (size_t)sysconf(_SC_PAGESIZE);
}

size_t bench_heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

bool bench_free_page_reporting(void)
{
	glob_t g;
	bool on = false;

	if (glob("/sys/bus/virtio/drivers/virtio_balloon/*/features", 0, NULL, &g) != 0)
		return false;
	for (size_t i = 0; i < g.gl_pathc && !on; i++) {
		char bits[65] = "";
		FILE *f = fopen(g.gl_pathv[i], "re");

		if (!f)
			continue;
		/* One character per feature bit; VIRTIO_BALLOON_F_REPORTING is bit 5. */
		on = fgets(bits, sizeof(bits), f) && strlen(bits) > 5 && bits[5] == '1';
		fclose(f);
	}
	globfree(&g);
	return on;
}
