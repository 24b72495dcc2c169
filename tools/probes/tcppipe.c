/* SPDX-License-Identifier: MIT */
/*
 * Probe: how many bytes a default (64 KiB, 16-slot) pipe takes from a TCP
 * socket before splice says EAGAIN. COUNT sends of SEND_BYTES each, 2 ms
 * apart, over loopback with TCP_NODELAY; then splice until EAGAIN.
 * Build and run: cc -O2 -o /tmp/tcppipe tools/probes/tcppipe.c && /tmp/tcppipe 1000 40
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	size_t msg = strtoul(argv[1], NULL, 0), count = strtoul(argv[2], NULL, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	bind(l, (void *)&a, sizeof(a));
	listen(l, 1);
	getsockname(l, (void *)&a, &al);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	connect(s, (void *)&a, sizeof(a));
	int r = accept4(l, NULL, NULL, SOCK_NONBLOCK); /* SPLICE_F_NONBLOCK alone would not stop a blocking socket from waiting */
	char *buf = calloc(1, msg);
	for (size_t i = 0; i < count; i++) {
		if (write(s, buf, msg) != (ssize_t)msg)
			return 1;
		usleep(2000); /* one segment per send */
	}
	usleep(50000);
	int queued = 0;
	ioctl(r, FIONREAD, &queued);
	int p[2];
	pipe2(p, O_NONBLOCK);
	size_t got = 0;
	ssize_t n;
	while ((n = splice(r, NULL, p[1], NULL, 1 << 20, SPLICE_F_NONBLOCK)) > 0)
		got += (size_t)n;
	int left = 0;
	ioctl(r, FIONREAD, &left);
	printf("sent %zu x %zu B: socket had %d B queued; pipe (%d B) took %zu B, then %s; "
	       "%d B still queued\n", count, msg, queued, fcntl(p[1], F_GETPIPE_SZ), got,
	       n < 0 ? strerror(errno) : "EOF", left);
	return 0;
}
