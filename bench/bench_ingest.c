/* SPDX-License-Identifier: MIT */
/*
 * Socket -> file ingest over TCP loopback, three receivers in one run with
 * interleaved rounds: a read()/write() copy loop, a raw splice loop
 * (socket -> pipe -> file), and zbl (zbl_splice_from 4 MiB messages, then
 * zbl_splice_to with ZBL_DRAIN). Prints the median throughput, receiver CPU
 * seconds per GiB, the ratios, and zbl's counters.
 *
 *   build/bench/bench_ingest [MiB per round, default 1024] [rounds, default 3] [dir]
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zbl.h"

#ifndef MSG_BYTES
#define MSG_BYTES ((size_t)4 << 20)
#endif

static size_t total_bytes;

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *sender(void *arg)
{
	int fd = *(int *)arg;
	static char buf[1 << 20];
	size_t left = total_bytes;

	memset(buf, 'z', sizeof(buf));
	while (left) {
		ssize_t w = write(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (w <= 0)
			break;
		left -= (size_t)w;
	}
	close(fd);
	return NULL;
}

/* A connected TCP pair on 127.0.0.1: *rx receives, *tx sends. */
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

static size_t recv_copy(int s, int f)
{
	static char buf[MSG_BYTES];
	size_t total = 0;

	for (;;) {
		size_t got = 0;
		ssize_t r = 1;
		while (got < MSG_BYTES && (r = read(s, buf + got, MSG_BYTES - got)) > 0)
			got += (size_t)r;
		for (size_t put = 0; put < got;) {
			ssize_t w = write(f, buf + put, got - put);
			if (w <= 0)
				exit(3);
			put += (size_t)w;
		}
		total += got;
		if (r <= 0)
			return total;
	}
}

static size_t recv_splice(int s, int f)
{
	int p[2];
	size_t total = 0;

	if (pipe(p) < 0)
		exit(3);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		ssize_t r = splice(s, NULL, p[1], NULL, 1 << 20, SPLICE_F_MOVE);
		if (r <= 0)
			break;
		for (ssize_t put = 0; put < r;) {
			ssize_t w = splice(p[0], NULL, f, NULL, (size_t)(r - put), SPLICE_F_MOVE);
			if (w <= 0)
				exit(3);
			put += w;
		}
		total += (size_t)r;
	}
	close(p[0]);
	close(p[1]);
	return total;
}

static size_t recv_zbl(int s, int f)
{
	zbl_t *bl = zbl_new();
	size_t total = 0;
	ssize_t r = 1;

	while (r > 0) {
		r = zbl_splice_from(bl, s, NULL, MSG_BYTES, 0);
		if (r < 0)
			exit(3);
		if (zbl_length(bl) && zbl_splice_to(bl, f, NULL, ZBL_DRAIN) < 0)
			exit(3);
		total += (size_t)r;
	}
	zbl_free(bl);
	return total;
}

typedef size_t (*recv_fn)(int, int);
static const struct {
	const char *name;
	recv_fn fn;
} modes[] = { { "read/write copy", recv_copy }, { "raw splice", recv_splice }, { "zbl", recv_zbl } };
#define NMODES 3

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	const char *dir = argc > 3 ? argv[3] : "/tmp";
	double gbps[NMODES][64], cpu[NMODES][64];
	char path[4096];
	struct zbl_stats st;

	total_bytes = mib << 20;
	if (rounds < 1 || rounds > 64)
		return 2;
	snprintf(path, sizeof(path), "%s/zbl-bench-ingest-XXXXXX", dir);
	int f = mkstemp(path);
	if (f < 0)
		return 2;
	unlink(path);
	zbl_stats_reset();
	for (int r = 0; r < rounds; r++) {
		for (int m = 0; m < NMODES; m++) {
			int rx, tx;
			/* BENCH_ONLY=<receiver name> runs one receiver, for profiling. */
			if (getenv("BENCH_ONLY") && strcmp(getenv("BENCH_ONLY"), modes[m].name)) {
				gbps[m][r] = cpu[m][r] = 0;
				continue;
			}
			pthread_t t;
			if (ftruncate(f, 0) < 0 || lseek(f, 0, SEEK_SET) < 0)
				return 2;
			tcp_pair(&rx, &tx);
			pthread_create(&t, NULL, sender, &tx);
			double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
			size_t got = modes[m].fn(rx, f);
			double c1 = now(CLOCK_THREAD_CPUTIME_ID), t1 = now(CLOCK_MONOTONIC);
			pthread_join(t, NULL);
			close(rx);
			if (got != total_bytes) {
				fprintf(stderr, "%s: got %zu of %zu bytes\n", modes[m].name, got, total_bytes);
				return 1;
			}
			gbps[m][r] = total_bytes / (t1 - t0) / 1e9;
			cpu[m][r] = (c1 - c0) / (total_bytes / 1073741824.0);
		}
	}
	zbl_stats_get(&st);
	printf("socket->file ingest, TCP loopback, %zu MiB per round, %d rounds (medians)\n", mib,
	       rounds);
	printf("%-18s %10s %14s %12s\n", "receiver", "GB/s", "CPU s/GiB", "zbl / this");
	double med[NMODES], medc[NMODES];
	for (int m = 0; m < NMODES; m++) {
		qsort(gbps[m], rounds, sizeof(double), cmp_d);
		qsort(cpu[m], rounds, sizeof(double), cmp_d);
		med[m] = gbps[m][rounds / 2];
		medc[m] = cpu[m][rounds / 2];
	}
	for (int m = 0; m < NMODES; m++)
		printf("%-18s %10.2f %14.3f %11.2fx\n", modes[m].name, med[m], medc[m],
		       med[NMODES - 1] / med[m]);
	printf("zbl counters over all zbl rounds: spliced_in %llu, copied_in %llu, spliced_out %llu,"
	       " copied_out %llu, teed %llu, materialized %llu, fallbacks %llu, pipes_created %llu\n",
	       (unsigned long long)st.bytes_spliced_in, (unsigned long long)st.bytes_copied_in,
	       (unsigned long long)st.bytes_spliced_out, (unsigned long long)st.bytes_copied_out,
	       (unsigned long long)st.bytes_teed, (unsigned long long)st.bytes_materialized,
	       (unsigned long long)st.fallbacks, (unsigned long long)st.pipes_created);
	close(f);
	return 0;
}
