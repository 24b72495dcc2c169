/* SPDX-License-Identifier: MIT */
/*
 * Probe: a pipe's default size in bytes and in slots, F_SETPIPE_SZ rounding
 * and its EPERM above /proc/sys/fs/pipe-max-size, EBUSY when shrinking below
 * the slots in use, the cost of making a pipe as src/pipe.c does, and the
 * per-user budget (fs.pipe-user-pages-soft), which empty pipes count against.
 * Build and run: cc -O2 -o /tmp/pipecap tools/probes/pipecap.c && /tmp/pipecap
 * and as nobody: setpriv --reuid=65534 --regid=65534 --clear-groups /tmp/pipecap
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

static char page[64][4096] __attribute__((aligned(4096)));

int main(void)
{
	int p[2];

	pipe2(p, O_NONBLOCK);
	printf("default size: %d bytes\n", fcntl(p[1], F_GETPIPE_SZ));
	/* vmsplice of 1-byte pieces from distinct pages: one slot each, no merging. */
	size_t n = 0;
	for (int i = 0; i < 64; i++) {
		struct iovec iov = { page[i], 1 };
		if (vmsplice(p[1], &iov, 1, SPLICE_F_NONBLOCK) != 1)
			break;
		n++;
	}
	printf("1-byte vmsplice pieces accepted: %zu (then EAGAIN)\n", n);
	int r = fcntl(p[1], F_SETPIPE_SZ, 4096);
	printf("shrink to 4096 while %zu slots are used: %s\n", n, r < 0 ? strerror(errno) : "ok");
	close(p[0]);
	close(p[1]);
	/* write(2) of 1 byte appends to the last page while it has room. */
	pipe2(p, O_NONBLOCK);
	n = 0;
	while (write(p[1], "x", 1) == 1)
		n++;
	printf("1-byte write()s accepted: %zu bytes\n", n);
	close(p[0]);
	close(p[1]);
	int sizes[] = { 1, 4097, 65537, 100000, 1048576, 1048577 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pipe2(p, O_NONBLOCK);
		r = fcntl(p[1], F_SETPIPE_SZ, sizes[i]);
		if (r < 0)
			printf("F_SETPIPE_SZ %7d -> %s\n", sizes[i], strerror(errno));
		else
			printf("F_SETPIPE_SZ %7d -> %d\n", sizes[i], fcntl(p[1], F_GETPIPE_SZ));
		close(p[0]);
		close(p[1]);
	}
	/* One pipe as src/pipe.c makes it: pipe2, one O_RDWR descriptor, 1 MiB; then closed. */
	struct timespec t0, t1;
	int made = 10000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < made; i++) {
		char path[32];
		pipe2(p, O_NONBLOCK | O_CLOEXEC);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
		int one = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		close(p[0]);
		close(p[1]);
		fcntl(one, F_SETPIPE_SZ, 1048576);
		fcntl(one, F_GETPIPE_SZ);
		close(one);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("make, grow to 1 MiB and close a pipe: %.1f us each\n",
	       ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / made);
	/* Per-user budget: grow pipes to 1 MiB until refused (pipes are kept open). */
	int grown = 0;
	for (;;) {
		if (pipe2(p, O_NONBLOCK) < 0 || fcntl(p[1], F_SETPIPE_SZ, 1048576) < 0)
			break;
		grown++;
	}
	printf("1 MiB pipes before refusal: %d (%s); next new pipe: %d bytes\n", grown,
	       strerror(errno), fcntl(p[1], F_GETPIPE_SZ));
	return 0;
}
