/* SPDX-License-Identifier: MIT */
/*
 * zbl cp SRC DST: moves bytes between files, standard streams and sockets
 * through a bufferlist, as kernel pages where the kernel allows it
 * (zbl_splice_from, then zbl_splice_to with ZBL_DRAIN), and says how many
 * bytes were copied through user memory after all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zbl.h"
#include "cli.h"

/* Bytes taken from the source per step: about one pipe, then drained to the sink. */
#define CP_STEP_BYTES		((size_t)1 << 20)
#define PROGRESS_EVERY_NS	(200ull * 1000000u)

struct endpoint {
	const char *spec;
	int fd;
	bool is_socket;
	bool close_fd;
	uint64_t size;		/* known size of a regular-file source, else 0 */
};

static void cp_usage(FILE *out)
{
	fprintf(out,
		"usage: zbl cp [--quiet] SRC DST\n"
		"  SRC and DST are each one of:\n"
		"    PATH               a file (DST is created or truncated)\n"
		"    -                  standard input / standard output\n"
		"    tcp:HOST:PORT      connect to a TCP address\n"
		"    listen:HOST:PORT   accept one TCP connection\n"
		"    unix:PATH          connect to a Unix stream socket\n"
		"  Bytes move as kernel pages where possible; a summary on stderr says how\n"
		"  many were copied. A progress bar is drawn when stderr is a terminal.\n");
}

static int open_socket(struct endpoint *e, const char *what, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (!strncmp(what, "unix:", 5)) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		const char *path = what + 5;

		if (!*path || strlen(path) >= sizeof(un.sun_path)) {
			snprintf(err, errlen, "'%s': bad socket path", what);
			return -1;
		}
		strcpy(un.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
			snprintf(err, errlen, "%s: %s", what, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	} else if (!strncmp(what, "tcp:", 4)) {
		if (cli_resolve(what + 4, false, &ss, &len, err, errlen) < 0)
			return -1;
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
			snprintf(err, errlen, "%s: %s", what, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	} else {
		int lfd = cli_listen_tcp(what + 7, 1, err, errlen);
		if (lfd < 0)
			return -1;
		if (isatty(STDERR_FILENO)) {
			char addr[80];
			len = sizeof(ss);
			getsockname(lfd, (struct sockaddr *)&ss, &len);
			cli_addr_str((struct sockaddr *)&ss, addr, sizeof(addr));
			fprintf(stderr, "zbl cp: waiting for a connection on %s\n", addr);
		}
		do {
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		} while (fd < 0 && errno == EINTR);
		if (fd < 0)
			snprintf(err, errlen, "%s: accept: %s", what, strerror(errno));
		close(lfd);
		if (fd < 0)
			return -1;
	}
	e->fd = fd;
	e->is_socket = true;
	e->close_fd = true;
	return 0;
}

static int open_endpoint(struct endpoint *e, const char *spec, bool src, char *err,
			 size_t errlen)
{
	struct stat st;

	e->spec = spec;
	e->fd = -1;
	if (!strcmp(spec, "-")) {
		e->fd = src ? STDIN_FILENO : STDOUT_FILENO;
	} else if (!strncmp(spec, "tcp:", 4) || !strncmp(spec, "listen:", 7) ||
		   !strncmp(spec, "unix:", 5)) {
		return open_socket(e, spec, err, errlen);
	} else {
		e->fd = open(spec, src ? O_RDONLY | O_CLOEXEC
				       : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (e->fd < 0) {
			snprintf(err, errlen, "%s: %s", spec, strerror(errno));
			return -1;
		}
		e->close_fd = true;
	}
	if (fstat(e->fd, &st) == 0) {
		e->is_socket = S_ISSOCK(st.st_mode);
		if (src && S_ISREG(st.st_mode))
			e->size = (uint64_t)st.st_size;
	}
	return 0;
}

static void human(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void progress(uint64_t done, uint64_t total, uint64_t ns)
{
	char d[32], rate[32];
	double secs = (double)ns / 1e9;

	human(done, d, sizeof(d));
	human(secs > 0 ? (uint64_t)((double)done / secs) : 0, rate, sizeof(rate));
	if (total) {
		int width = 30, fill = (int)(done * (uint64_t)width / total);
		if (fill > width)
			fill = width;
		fprintf(stderr, "\r[%.*s%*s] %3d%% %s %s/s ", fill,
			"##############################", width - fill, "",
			(int)(done * 100 / total), d, rate);
	} else {
		fprintf(stderr, "\r%s %s/s ", d, rate);
	}
}

int cli_cp(int argc, char **argv)
{
	struct endpoint src = { .fd = -1 }, dst = { .fd = -1 };
	const char *args[2];
	int nargs = 0, status = 0;
	bool quiet = false, bar;
	char err[300];
	struct zbl_stats s0, s1;
	uint64_t moved = 0, t0, last = 0;
	zbl_t *bl;
	ssize_t r = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cp_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			quiet = true;
		} else if (argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--")) {
			fprintf(stderr, "zbl cp: unknown option '%s'\n", argv[i]);
			cp_usage(stderr);
			return CLI_EXIT_USAGE;
		} else if (!strcmp(argv[i], "--")) {
			continue;
		} else if (nargs < 2) {
			args[nargs++] = argv[i];
		} else {
			nargs = 3;
		}
	}
	if (nargs != 2) {
		fprintf(stderr, "zbl cp: need exactly SRC and DST\n");
		cp_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (int i = 0; i < 2; i++) {
		const char *s = args[i];
		if ((!strncmp(s, "tcp:", 4) && !s[4]) || (!strncmp(s, "listen:", 7) && !s[7]) ||
		    (!strncmp(s, "unix:", 5) && !s[5])) {
			fprintf(stderr, "zbl cp: '%s': address missing\n", s);
			cp_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	if (open_endpoint(&src, args[0], true, err, sizeof(err)) < 0 ||
	    open_endpoint(&dst, args[1], false, err, sizeof(err)) < 0) {
		fprintf(stderr, "zbl cp: %s\n", err);
		status = 1;
		goto out;
	}
	bl = zbl_new();
	if (!bl) {
		fprintf(stderr, "zbl cp: out of memory\n");
		status = 1;
		goto out;
	}
	bar = !quiet && isatty(STDERR_FILENO);
	zbl_stats_get(&s0);
	t0 = cli_now_ns();
	for (;;) {
		r = zbl_splice_from(bl, src.fd, NULL, CP_STEP_BYTES, 0);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			fprintf(stderr, "\nzbl cp: reading %s: %s\n", src.spec, strerror((int)-r));
			status = 1;
			break;
		}
		if (r == 0)
			break;
		/* Drain everything before reading more: the list never holds much. */
		while (zbl_length(bl)) {
			ssize_t w = zbl_splice_to(bl, dst.fd, NULL, ZBL_DRAIN);
			if (w < 0 && w != -EINTR && w != -EAGAIN) {
				fprintf(stderr, "\nzbl cp: writing %s: %s\n", dst.spec,
					strerror((int)-w));
				status = 1;
				goto done;
			}
			if (w > 0)
				moved += (uint64_t)w;
		}
		if (bar) {
			uint64_t now = cli_now_ns();
			if (now - last >= PROGRESS_EVERY_NS) {
				progress(moved, src.size, now - t0);
				last = now;
			}
		}
	}
done:
	zbl_free(bl);
	if (dst.is_socket)
		shutdown(dst.fd, SHUT_WR); /* the peer sees end of data */
	if (!quiet) {
		uint64_t ns = cli_now_ns() - t0;
		double secs = (double)ns / 1e9;
		char total[32], rate[32];

		if (bar)
			progress(moved, src.size, ns);
		zbl_stats_get(&s1);
		human(moved, total, sizeof(total));
		human(secs > 0 ? (uint64_t)((double)moved / secs) : 0, rate, sizeof(rate));
		fprintf(stderr, "%szbl cp: %" PRIu64 " bytes (%s) in %.3f s, %s/s\n",
			bar ? "\n" : "", moved, total, secs, rate);
		fprintf(stderr, "zbl cp: in: %" PRIu64 " bytes as kernel pages, %" PRIu64
			" copied; out: %" PRIu64 " spliced, %" PRIu64 " copied; %" PRIu64
			" fallbacks\n",
			s1.bytes_spliced_in - s0.bytes_spliced_in,
			s1.bytes_copied_in - s0.bytes_copied_in,
			s1.bytes_spliced_out - s0.bytes_spliced_out,
			s1.bytes_copied_out - s0.bytes_copied_out, s1.fallbacks - s0.fallbacks);
	}
out:
	if (src.close_fd)
		close(src.fd);
	if (dst.close_fd && close(dst.fd) < 0 && !status) {
		fprintf(stderr, "zbl cp: closing %s: %s\n", dst.spec, strerror(errno));
		status = 1;
	}
	return status;
}
