/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, main.c: owns the command line, the root directory, the
 * listening socket, the worker threads and the job threads, and the
 * signals that stop them. The rest of the server is in the files named in
 * serve.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

#define LISTEN_BACKLOG		1024
/*
 * Job threads for syncs. An fdatasync waits on the disk, not the CPU: a
 * few at once let the device merge their flushes, and more would only
 * queue behind the same device.
 */
#define SYNC_THREADS		4

static void serve_usage(FILE *out)
{
	fprintf(out,
		"usage: zbl serve [options]\n"
		"  --root DIR          object directory (default ./zbl-data, created)\n"
		"  --listen HOST:PORT  address (default 127.0.0.1:8080; port 0 picks one)\n"
		"  --max-object N      largest PUT body, bytes, K/M/G/T suffixes (default 4G)\n"
		"  --copy              move bodies with read()/write() instead of zbl splicing\n"
		"  --threads N         event loops (default: one per CPU)\n"
		"  --idle-timeout S    drop clients idle or slow to send a head (default 30)\n"
		"  --no-sync           answer PUT and DELETE before the change is on stable\n"
		"                      storage (no fdatasync, no directory fsync): a crash or\n"
		"                      power cut can lose or truncate acknowledged objects\n"
		"  --no-direct         write uploads through the page cache even where the\n"
		"                      direct route (io_uring + O_DIRECT) is available\n"
		"  --quiet             no access log\n"
		"PUT is answered 201/200 only once the object's bytes (fdatasync) and its name\n"
		"(fsync of the root) are durable, DELETE 204 once the root is fsynced.\n"
		"Uploads go socket -> memory -> O_DIRECT writes through io_uring where io_uring\n"
		"runs and the root takes O_DIRECT; otherwise socket -> pipe -> page cache with\n"
		"paced writeback. The listening line says which.\n"
		"Prints 'listening on HOST:PORT' on stderr when ready; stops on SIGINT/SIGTERM.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "zbl serve: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	serve_usage(stderr);
	return CLI_EXIT_USAGE;
}

/* Parses the command line into @srv. Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct server *srv, const char **root,
		      const char **listen_on, bool *no_direct)
{
	uint64_t idle_s = 30, threads = 0;

	srv->max_object = DEFAULT_MAX_OBJECT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			serve_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--copy")) {
			srv->copy = true;
			takes = false;
		} else if (!strcmp(a, "--no-direct")) {
			*no_direct = true;
			takes = false;
		} else if (!strcmp(a, "--no-sync")) {
			srv->no_sync = true;
			takes = false;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			srv->quiet = true;
			takes = false;
		} else if (!v && (!strcmp(a, "--root") || !strcmp(a, "--listen") ||
				  !strcmp(a, "--max-object") || !strcmp(a, "--threads") ||
				  !strcmp(a, "--idle-timeout"))) {
			return usage_error("%s needs a value", a);
		} else if (!strcmp(a, "--root")) {
			*root = v;
		} else if (!strcmp(a, "--listen")) {
			*listen_on = v;
		} else if (!strcmp(a, "--max-object")) {
			if (cli_parse_size(v, &srv->max_object) < 0)
				return usage_error("--max-object: '%s' is not a size", v);
		} else if (!strcmp(a, "--threads")) {
			if (cli_parse_size(v, &threads) < 0 || threads < 1 || threads > 1024)
				return usage_error("--threads: '%s' is not 1..1024", v);
		} else if (!strcmp(a, "--idle-timeout")) {
			if (cli_parse_size(v, &idle_s) < 0 || idle_s < 1 || idle_s > 86400)
				return usage_error("--idle-timeout: '%s' is not 1..86400 seconds", v);
		} else {
			return usage_error("unknown option '%s'", a);
		}
		if (takes)
			i++;
	}
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (uint64_t)n : 1;
	}
	srv->idle_ns = idle_s * 1000000000u;
	srv->threads = (int)threads;
	return -1;
}

/* Opens (creating) the root and the listener. Returns 0, or 1 after saying why. */
static int open_root_and_listener(struct server *srv, const char *root, const char *listen_on)
{
	char err[256];

	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "zbl serve: creating root %s: %s\n", root, strerror(errno));
		return 1;
	}
	srv->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (srv->root_fd < 0) {
		fprintf(stderr, "zbl serve: root %s: %s\n", root, strerror(errno));
		return 1;
	}
	srv->listen_fd = cli_listen_tcp(listen_on, LISTEN_BACKLOG, err, sizeof(err));
	if (srv->listen_fd < 0) {
		fprintf(stderr, "zbl serve: listen %s\n", err);
		close(srv->root_fd);
		return 1;
	}
	fcntl(srv->listen_fd, F_SETFL, fcntl(srv->listen_fd, F_GETFL) | O_NONBLOCK);
	if (getenv(TEST_NO_PROC_ENV) && strcmp(getenv(TEST_NO_PROC_ENV), "0")) {
		atomic_store(&srv->named_tmp, true);
		fprintf(stderr, "zbl serve: %s is set: uploads use named temporary files\n",
			TEST_NO_PROC_ENV);
	} else if (access("/proc/self/fd", X_OK) < 0) {
		atomic_store(&srv->named_tmp, true);
		fprintf(stderr, "zbl serve: /proc/self/fd: %s; uploads go to named temporary "
			"files (" HTTP_TMP_PREFIX "*) in the root, renamed when complete\n",
			strerror(errno));
	}
	return 0;
}

int cli_serve(int argc, char **argv)
{
	struct server srv = { .root_fd = -1, .listen_fd = -1 };
	const char *root = "./zbl-data", *listen_on = "127.0.0.1:8080";
	struct worker *workers;
	char addr[80], route[200], why[160];
	bool no_direct = false;
	sigset_t sigs;
	int sig, status, inited = 0, started = 0;

	status = parse_args(argc, argv, &srv, &root, &listen_on, &no_direct);
	if (status >= 0)
		return status;
	status = open_root_and_listener(&srv, root, listen_on);
	if (status)
		return status;
	if (srv.no_sync)
		fprintf(stderr, "zbl serve: WARNING: --no-sync: PUT and DELETE are acknowledged "
			"before they are on stable storage; a crash can lose acknowledged objects\n");

	/*
	 * Peers that vanish must give EPIPE, not kill us; a file that reaches
	 * RLIMIT_FSIZE must give EFBIG (answered 507), not kill us either.
	 * SIGINT and SIGTERM go to sigwait below.
	 */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	zbl_trace_set(stats_trace_copy, NULL);

	/* Which route uploads take: said on the listening line. */
	if (srv.copy)
		snprintf(route, sizeof(route), "buffered (--copy)");
	else if (no_direct)
		snprintf(route, sizeof(route), "buffered (--no-direct)");
	else if (upload_direct_possible(&srv, why, sizeof(why)))
		srv.direct = true;
	else
		snprintf(route, sizeof(route), "buffered (%s)", why);
	if (srv.direct)
		snprintf(route, sizeof(route), "O_DIRECT through io_uring");

	if (!srv.no_sync && !(srv.jobs = jobs_start(SYNC_THREADS))) {
		fprintf(stderr, "zbl serve: cannot start sync threads: %s\n", strerror(errno));
		status = 1;
	}
	workers = calloc((size_t)srv.threads, sizeof(*workers));
	if (!workers) {
		fprintf(stderr, "zbl serve: out of memory\n");
		status = 1;
	}
	for (int i = 0; !status && i < srv.threads; i++) {
		struct worker *w = &workers[i];
		int r = worker_init(w, &srv, i);

		inited++;
		if (r < 0) {
			fprintf(stderr, "zbl serve: epoll: %s\n", strerror(-r));
			status = 1;
		} else if (pthread_create(&w->thread, NULL, worker_main, w)) {
			fprintf(stderr, "zbl serve: cannot start thread %d\n", i);
			status = 1;
		} else {
			started++;
		}
	}

	if (!status) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		getsockname(srv.listen_fd, (struct sockaddr *)&ss, &sl);
		cli_addr_str((struct sockaddr *)&ss, addr, sizeof(addr));
		fprintf(stderr, "zbl serve: listening on %s, root %s, %d thread%s, %s bodies, "
			"uploads %s, %s\n", addr, root, started, started == 1 ? "" : "s",
			srv.copy ? "copied (--copy)" : srv.direct ? "zero-copy GET" : "zero-copy",
			route,
			srv.no_sync ? "NOT durable (--no-sync)"
				    : "durable (fdatasync + directory fsync before 201/200/204)");
		while (sigwait(&sigs, &sig) != 0)
			;
		fprintf(stderr, "zbl serve: %s, stopping\n", strsignal(sig));
	}
	atomic_store(&srv.stop, true);
	/* Only workers that were set up have a wake eventfd (a zeroed one would be fd 0). */
	for (int i = 0; i < inited; i++) {
		uint64_t one = 1;
		if (workers[i].wake_fd >= 0 && write(workers[i].wake_fd, &one, sizeof(one)) < 0)
			continue;
	}
	for (int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	for (int i = 0; i < inited; i++)
		worker_destroy(&workers[i]);
	free(workers);
	jobs_stop(srv.jobs);
	zbl_trace_set(NULL, NULL);
	close(srv.listen_fd);
	close(srv.root_fd);
	return status;
}
