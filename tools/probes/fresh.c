/* SPDX-License-Identifier: MIT */
/*
 * Probe: the cost of faulting in 1 GiB of anonymous memory (MAP_POPULATE)
 * at once after the same amount was freed, and again after WAIT_SECONDS,
 * time for the virtio balloon's free page reporting to hand the freed
 * memory back to the host (reported_kib is printed alongside).
 * Build and run: cc -O2 -o /tmp/fresh tools/probes/fresh.c && /tmp/fresh 10
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long reported(void)
{
	long v = -1;
	FILE *f = fopen("/sys/module/page_reporting/parameters/reported_kib", "r");
	if (f) {
		fscanf(f, "%ld", &v);
		fclose(f);
	}
	return v;
}

static double populate(size_t len)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	munmap(p, len);
	return (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	size_t len = (size_t)1 << 30;
	int wait = atoi(argv[1]);
	for (int i = 0; i < 2; i++) {
		long r0 = reported();
		printf("populate 1 GiB: %.3f s", populate(len));
		printf("; at once again: %.3f s", populate(len));
		sleep(wait);
		long r1 = reported();
		printf("; after %d s (reported_kib +%ld): %.3f s\n", wait, r1 - r0, populate(len));
	}
	return 0;
}
