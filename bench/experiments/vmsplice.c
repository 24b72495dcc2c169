/* SPDX-License-Identifier: MIT */
/*
 * Whether vmsplice(2) pays for writing library-owned memory, against
 * writev(2), in one run with interleaved rounds (medians). The sender writes
 * one page-aligned, populated 1 MiB mapping over and over:
 *   - to a pipe whose reader read()s;
 *   - to a TCP loopback socket whose reader read()s (vmsplice into a pipe,
 *     then splice to the socket);
 *   - to a TCP loopback socket whose reader splices to /dev/null.
 * Each with writev, with vmsplice of the same mapping (the best case, but
 * unsafe for a library: the mapping is rewritten while the kernel may still
 * reference its pages), and with vmsplice of a fresh mapping per write,
 * filled and unmapped after (what a library must do to never rewrite pages
 * the kernel holds). Prints throughput, the sender's CPU seconds per GiB,
 * and the ratios to writev. zbl writes memory with writev; this is the
 * evidence for that.
 *
 *   build/bench/experiment_vmsplice [MiB per round, default 1024] [rounds, default 5]
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)

static size_t total_bytes;

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *reader_read(void *arg)
{
	int fd = *(int *)arg;
	char *b = malloc(CHUNK);
	size_t got = 0;
	ssize_t r;

	while (b && (r = read(fd, b, CHUNK)) > 0)
		got += (size_t)r;
	free(b);
	return (void *)got;
}

static void *reader_splice(void *arg)
{
	int fd = *(int *)arg, p[2], dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t r;

	if (dn < 0 || pipe(p) < 0)
		return NULL;
	fcntl(p[1], F_SETPIPE_SZ, (int)CHUNK);
	while ((r = splice(fd, NULL, p[1], NULL, CHUNK, 0)) > 0) {
		got += (size_t)r;
		while (r > 0) {
			ssize_t w = splice(p[0], NULL, dn, NULL, (size_t)r, 0);
			if (w <= 0)
				return NULL;
			r -= w;
		}
	}
	close(p[0]);
	close(p[1]);
	close(dn);
	return (void *)got;
}

static void tcp_pair(int *rx, int *tx)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (void *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (void *)&a, &al) < 0)
		exit(2);
	*tx = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(*tx, (void *)&a, sizeof(a)) < 0)
		exit(2);
	*rx = accept(l, NULL, NULL);
	close(l);
}

/* Sends CHUNK bytes from @buf to @fd; @sp is a scratch pipe for vmsplice to a socket. */
static void send_chunk(int fd, bool pipe_dst, int mode, int sp[2], char *buf)
{
	bool vms = mode > 0;
	char *fresh = NULL;

	if (mode == 2) {
		fresh = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (fresh == MAP_FAILED)
			exit(2);
		memcpy(fresh, buf, CHUNK);
		buf = fresh;
	}
	struct iovec v = { buf, CHUNK };

	while (v.iov_len) {
		ssize_t w;
		if (!vms) {
			w = writev(fd, &v, 1);
		} else if (pipe_dst) {
			w = vmsplice(fd, &v, 1, 0);
		} else {
			w = vmsplice(sp[1], &v, 1, 0);
			for (ssize_t left = w; left > 0;) {
				ssize_t s = splice(sp[0], NULL, fd, NULL, (size_t)left, SPLICE_F_MORE);
				if (s <= 0)
					exit(3);
				left -= s;
			}
		}
		if (w <= 0)
			exit(3);
		v.iov_base = (char *)v.iov_base + w;
		v.iov_len -= (size_t)w;
	}
	if (fresh)
		munmap(fresh, CHUNK);
}

static const char *const dest_name[] = { "pipe, read()ing reader", "TCP, read()ing reader",
					 "TCP, splicing reader" };
#define NDEST 3

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	double gbps[NDEST][3][64], cpu[NDEST][3][64];
	char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	total_bytes = (mib ? mib : 1) << 20;
	if (buf == MAP_FAILED || rounds < 1 || rounds > 64)
		return 2;
	memset(buf, 'v', CHUNK);
	for (int r = 0; r < rounds; r++)
		for (int d = 0; d < NDEST; d++)
			for (int vms = 0; vms < 3; vms++) {
				int rx, tx, sp[2];
				pthread_t t;
				void *got;
				if (d == 0) {
					int p[2];
					if (pipe(p) < 0)
						return 2;
					fcntl(p[1], F_SETPIPE_SZ, (int)CHUNK);
					rx = p[0];
					tx = p[1];
				} else {
					tcp_pair(&rx, &tx);
				}
				if (pipe(sp) < 0)
					return 2;
				fcntl(sp[1], F_SETPIPE_SZ, (int)CHUNK);
				pthread_create(&t, NULL, d == 2 ? reader_splice : reader_read, &rx);
				double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
				for (size_t sent = 0; sent < total_bytes; sent += CHUNK)
					send_chunk(tx, d == 0, vms, sp, buf);
				double c1 = now(CLOCK_THREAD_CPUTIME_ID);
				close(tx);
				pthread_join(t, &got);
				double t1 = now(CLOCK_MONOTONIC);
				close(rx);
				close(sp[0]);
				close(sp[1]);
				if ((size_t)got != total_bytes) {
					fprintf(stderr, "%s: %zu of %zu bytes arrived\n", dest_name[d],
						(size_t)got, total_bytes);
					return 1;
				}
				gbps[d][vms][r] = total_bytes / (t1 - t0) / 1e9;
				cpu[d][vms][r] = (c1 - c0) / (total_bytes / 1073741824.0);
			}
	printf("memory -> fd, 1 MiB page-aligned writes, %zu MiB per round, %d rounds (medians)\n",
	       mib, rounds);
	printf("GB/s (sender CPU s/GiB)\n");
	printf("%-24s %16s %16s %16s %10s %10s\n", "destination", "writev", "vmsplice same",
	       "vmsplice fresh", "same/wv", "fresh/wv");
	for (int d = 0; d < NDEST; d++) {
		double m[3], c[3];
		for (int v = 0; v < 3; v++) {
			qsort(gbps[d][v], rounds, sizeof(double), cmp_d);
			qsort(cpu[d][v], rounds, sizeof(double), cmp_d);
			m[v] = gbps[d][v][rounds / 2];
			c[v] = cpu[d][v][rounds / 2];
		}
		printf("%-24s %6.2f (%6.3f) %6.2f (%6.3f) %6.2f (%6.3f) %10.2f %10.2f\n", dest_name[d],
		       m[0], c[0], m[1], c[1], m[2], c[2], m[1] / m[0], m[2] / m[0]);
	}
	munmap(buf, CHUNK);
	return 0;
}
