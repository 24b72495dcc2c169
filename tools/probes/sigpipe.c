/* SPDX-License-Identifier: MIT */
/*
 * Probe: splice(2) from a pipe into a socket whose peer has closed. A child
 * splices with the default disposition and the parent reports how it ended;
 * then the same with SIGPIPE blocked: the error, and whether the signal is
 * left pending (it is consumed with sigwait, as zbl's guard does).
 * Build and run: cc -O2 -o /tmp/sigpipe tools/probes/sigpipe.c && /tmp/sigpipe
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
#include <sys/wait.h>
#include <unistd.h>

/* A connected socket whose peer is closed. */
static int dead_peer(int domain)
{
	int sv[2];
	if (domain == AF_UNIX) {
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		close(sv[1]);
		return sv[0];
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	bind(l, (void *)&a, sizeof(a));
	listen(l, 1);
	getsockname(l, (void *)&a, &al);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	connect(s, (void *)&a, sizeof(a));
	close(accept(l, NULL, NULL));
	close(l);
	return s;
}

/* Splices 5 bytes at a time until a splice fails (TCP accepts the first, then gets RST). */
static ssize_t splice_until_error(int s, int *tries)
{
	int p[2];
	ssize_t r;
	pipe(p);
	*tries = 0;
	do {
		write(p[1], "hello", 5);
		r = splice(p[0], NULL, s, NULL, 5, 0);
		++*tries;
		usleep(10000);
	} while (r > 0 && *tries < 100);
	return r;
}

int main(void)
{
	int domains[] = { AF_UNIX, AF_INET }, tries;
	for (int i = 0; i < 2; i++) {
		const char *name = domains[i] == AF_UNIX ? "AF_UNIX" : "TCP";
		pid_t pid = fork();
		if (pid == 0) {
			splice_until_error(dead_peer(domains[i]), &tries);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("%s, default disposition: child %s\n", name,
		       WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited normally");
		sigset_t set, pend, old;
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &set, &old);
		ssize_t r = splice_until_error(dead_peer(domains[i]), &tries);
		int e = errno;
		sigpending(&pend);
		printf("%s, SIGPIPE blocked: splice %d = %zd (%s), SIGPIPE pending: %s\n", name, tries,
		       r, strerror(e), sigismember(&pend, SIGPIPE) ? "yes" : "no");
		int sig;
		sigwait(&set, &sig); /* consume it, as zbl does */
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return 0;
}
