/* SPDX-License-Identifier: MIT */
/*
 * zbl: a zero-copy object server, a copier and a capability report built on
 * the zbl library. Each subcommand lives in its own file.
 */
#include <stdio.h>
#include <string.h>

#include "zbl.h"
#include "cli.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zbl <command> [options]\n"
		"\n"
		"commands:\n"
		"  serve [--root DIR] [--listen HOST:PORT] [--max-object N] [--copy]\n"
		"        [--threads N] [--idle-timeout S] [--quiet]\n"
		"                 HTTP/1.1 object server (PUT/GET/HEAD/DELETE /NAME)\n"
		"  cp SRC DST     copy bytes through a bufferlist; SRC and DST are a file,\n"
		"                 '-', tcp:HOST:PORT, listen:HOST:PORT or unix:PATH\n"
		"  caps           what this kernel and user allow zbl to do\n"
		"  bench [ARGS]   the benchmark suite against the alternatives\n"
		"                 (zbl_bench; 'zbl bench --help' lists its options)\n"
		"  version        print the library version\n"
		"\n"
		"'zbl <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *cmd = argv[1];

	if (!strcmp(cmd, "serve"))
		return cli_serve(argc - 1, argv + 1);
	if (!strcmp(cmd, "cp"))
		return cli_cp(argc - 1, argv + 1);
	if (!strcmp(cmd, "caps"))
		return cli_caps(argc - 1, argv + 1);
	if (!strcmp(cmd, "bench"))
		return cli_bench(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("zbl %s\n", ZBL_VERSION_STRING);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "zbl: unknown command '%s'\n", cmd);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
