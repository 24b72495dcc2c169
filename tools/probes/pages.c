/* SPDX-License-Identifier: MIT */
/*
 * Probe: file -> pipe takes page-cache references, tee duplicates without
 * consuming, pipe -> file copies. A page of A is spliced into pipe P, tee'd
 * into Q (P's byte count is read before and after), Q is spliced into B;
 * then A is overwritten and P and B are read.
 * Build and run: cc -O2 -o /tmp/pages tools/probes/pages.c && /tmp/pages /tmp
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char pa[4096], pb[4096], buf[4096], in_pipe = 0, in_b = 0;
	int p[2], q[2], before = 0, after = 0, teed = 0;
	loff_t off = 0;

	if (argc < 2)
		return 2;
	snprintf(pa, sizeof(pa), "%s/probe-a", argv[1]);
	snprintf(pb, sizeof(pb), "%s/probe-b", argv[1]);
	int a = open(pa, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int b = open(pb, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (a < 0 || b < 0 || pipe(p) || pipe(q))
		return 1;
	memset(buf, 'o', sizeof(buf));
	pwrite(a, buf, sizeof(buf), 0);
	splice(a, &off, p[1], NULL, sizeof(buf), SPLICE_F_MOVE);
	ioctl(p[0], FIONREAD, &before);
	ssize_t t = tee(p[0], q[1], sizeof(buf), 0);
	ioctl(p[0], FIONREAD, &after);
	ioctl(q[0], FIONREAD, &teed);
	printf("tee: source held %d B, tee returned %zd, source holds %d B, copy holds %d B\n",
	       before, t, after, teed);
	splice(q[0], NULL, b, NULL, sizeof(buf), SPLICE_F_MOVE);
	memset(buf, 'N', sizeof(buf));
	pwrite(a, buf, sizeof(buf), 0);
	read(p[0], &in_pipe, 1);
	pread(b, &in_b, 1, 0);
	printf("after A was overwritten with 'N': pipe P holds '%c', file B holds '%c'\n", in_pipe,
	       in_b);
	unlink(pa);
	unlink(pb);
	return 0;
}
