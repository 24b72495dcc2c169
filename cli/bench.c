/* SPDX-License-Identifier: MIT */
/*
 * zbl bench: runs the benchmark suite, the separate program zbl_bench (it
 * links libevent for its evbuffer baseline, which the tool itself does not
 * need). Looked for in $ZBL_BENCH, next to a build tree's zbl, then where
 * `make install` puts it (relative to this program, then the configured path).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef ZBL_LIBEXECDIR
#define ZBL_LIBEXECDIR "/usr/local/libexec/zbl"
#endif

/* The directory of this executable into @dir; false if /proc cannot say. */
static bool self_dir(char *dir, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", dir, len - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= len - 1)
		return false;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return false;
	*slash = '\0';
	return true;
}

int cli_bench(int argc, char **argv)
{
	char dir[PATH_MAX], cand[4][PATH_MAX + 32];
	const char *env = getenv("ZBL_BENCH");
	int n = 0;

	if (env && *env)
		snprintf(cand[n++], sizeof(cand[0]), "%s", env);
	if (self_dir(dir, sizeof(dir))) {
		snprintf(cand[n++], sizeof(cand[0]), "%s/../bench/zbl_bench", dir);
		/* Installed under another prefix than the one configured. */
		snprintf(cand[n++], sizeof(cand[0]), "%s/../libexec/zbl/zbl_bench", dir);
	}
	snprintf(cand[n++], sizeof(cand[0]), "%s/zbl_bench", ZBL_LIBEXECDIR);
	for (int i = 0; i < n; i++) {
		if (access(cand[i], X_OK) != 0)
			continue;
		argv[0] = cand[i];
		execv(cand[i], argv);
		fprintf(stderr, "zbl bench: cannot run %s: %s\n", cand[i], strerror(errno));
		return 1;
	}
	fprintf(stderr,
		"zbl bench: the benchmark program zbl_bench is not installed or built.\n"
		"It needs libevent-dev; in the source tree 'make bench' installs that, builds it\n"
		"and runs it. Looked for:\n");
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  %s\n", cand[i]);
	(void)argc;
	return 1;
}
