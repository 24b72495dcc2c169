/* SPDX-License-Identifier: MIT */
/*
 * Probe: what durability costs on this disk for a 64 MiB object written in
 * 1 MiB pieces: fdatasync at the end, alone or after sync_file_range(WRITE)
 * of every 8 MiB while writing; for a new file also the rename over the
 * previous object and the directory fsync. Each row is timed step by step.
 * Build and run: cc -O2 -o /tmp/syncost tools/probes/syncost.c &&
 *   mkdir -p /work/p && /tmp/syncost /work/p 3
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIECE (1 << 20)
#define TOTAL (64 << 20)
#define SFR_EVERY (8 << 20) /* the server's WRITEBACK_STEP_BYTES */

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void round_(const char *dir, bool sfr, bool fresh, char *buf)
{
	char tmp[4096], name[4096];
	snprintf(tmp, sizeof(tmp), "%s/syncost.tmp", dir);
	snprintf(name, sizeof(name), "%s/syncost.obj", dir);
	int d = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = open(fresh ? tmp : name, O_WRONLY | O_CREAT | (fresh ? O_TRUNC : 0), 0600);
	double t0 = now();
	for (size_t off = 0; off < TOTAL; off += PIECE) {
		buf[0]++; /* different bytes every round */
		pwrite(fd, buf, PIECE, off);
		if (sfr && (off + PIECE) % SFR_EVERY == 0)
			sync_file_range(fd, off + PIECE - SFR_EVERY, SFR_EVERY, SYNC_FILE_RANGE_WRITE);
	}
	double t1 = now();
	fdatasync(fd);
	double t2 = now();
	double t3 = t2, t4 = t2;
	if (fresh) {
		rename(tmp, name); /* replaces last round's object: its pages and blocks are freed here */
		t3 = now();
		fsync(d);
		t4 = now();
	}
	close(fd);
	close(d);
	printf("%-9s %-27s write %5.1f ms, fdatasync %5.1f ms, rename %5.1f ms, dir fsync %4.1f ms\n",
	       fresh ? "new" : "overwrite", sfr ? "sync_file_range every 8 MiB" : "fdatasync only",
	       (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	char *buf = malloc(PIECE);
	memset(buf, 'x', PIECE);
	int rounds = atoi(argv[2]);
	for (int r = 0; r < rounds; r++)
		for (int m = 0; m < 4; m++)
			round_(argv[1], m & 1, m & 2, buf);
	char p[4096];
	snprintf(p, sizeof(p), "%s/syncost.obj", argv[1]);
	unlink(p);
	return 0;
}
