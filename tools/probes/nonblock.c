/* SPDX-License-Identifier: MIT */
/*
 * Probe: does splice(SPLICE_F_NONBLOCK) wait on an empty blocking source
 * (TCP, AF_UNIX, pipe)? An alarm interrupts a splice that waits, after 1 s.
 * Also: a pipe reopened O_RDWR through /proc/self/fd is both of its ends.
 * Build and run: cc -O2 -o /tmp/nonblock tools/probes/nonblock.c && /tmp/nonblock
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void on_alarm(int s) { (void)s; }

static void try(const char *name, int src)
{
	int p[2];
	struct timespec a, b;
	pipe2(p, O_NONBLOCK);
	alarm(1);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ssize_t r = splice(src, NULL, p[1], NULL, 4096, SPLICE_F_NONBLOCK);
	int e = errno;
	clock_gettime(CLOCK_MONOTONIC, &b);
	alarm(0);
	printf("%-22s splice(SPLICE_F_NONBLOCK) = %zd (%s) after %.3f s\n", name, r,
	       r < 0 ? strerror(e) : "", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	bind(l, (void *)&a, sizeof(a));
	listen(l, 1);
	getsockname(l, (void *)&a, &al);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	connect(s, (void *)&a, sizeof(a));
	int tcp = accept(l, NULL, NULL);
	int un[2], pp[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, un);
	pipe(pp);
	try("blocking TCP socket:", tcp);
	try("blocking AF_UNIX socket:", un[0]);
	try("blocking pipe:", pp[0]);

	int q[2];
	char path[64], c = 0;
	pipe(q);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", q[0]);
	int one = open(path, O_RDWR | O_NONBLOCK);
	close(q[0]);
	close(q[1]);
	ssize_t w = write(one, "z", 1), r = read(one, &c, 1), r2 = read(one, &c, 1);
	printf("/proc/self/fd reopen O_RDWR: write %zd, read %zd ('%c'), read when empty %zd (%s)\n",
	       w, r, c, r2, strerror(errno));
	return 0;
}
