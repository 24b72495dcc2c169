/* SPDX-License-Identifier: MIT */
/*
 * zbl_bench: zbl against the alternatives, in one process run.
 *
 *   build/bench/zbl_bench [--only ROW[,ROW...]] [--rounds N] [--quick] [--verify]
 *                         [--variant SUBSTRING] [--dir DIR] [--json FILE] [--svg FILE]
 *
 * Rows: ingest file2sock relay direct memsock smallops appends copyout drain
 * share slice crc32c materialize position memory. Each row runs its variants
 * round-robin (rounds rotated, medians), prints GB/s or Mops/s, CPU per unit of work
 * (getrusage of the whole process, peer threads included), ratios against
 * the stated targets with PASS/FAIL, and zbl's counters. BENCH_SCALE=0.25
 * shrinks the default sizes; --quick uses small sizes for a smoke test.
 * The exit status is 0 if every row ran and moved the right bytes (timing
 * targets never change it), 1 otherwise.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const char *const groups[] = {
	"ingest", "file2sock", "relay", "direct", "memsock", "smallops", "appends", "copyout", "drain", "share", "slice",
	"crc32c", "materialize", "position", "memory",
};

static void usage(FILE *f)
{
	fprintf(f, "usage: zbl_bench [--only ROW[,ROW...]] [--rounds N] [--quick] [--verify]\n"
		   "                 [--variant SUBSTRING] [--dir DIR] [--json FILE] [--svg FILE]\n"
		   "--variant runs only the variants whose name contains SUBSTRING (for perf)\n"
		   "rows:");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		fprintf(f, " %s", groups[i]);
	fprintf(f, "\nenvironment: BENCH_SCALE (default 1) multiplies the default sizes\n");
}

static bool known_groups(const char *only)
{
	char *copy = strdup(only), *save = NULL;
	bool ok = copy != NULL;

	for (char *g = strtok_r(copy, ",", &save); g && ok; g = strtok_r(NULL, ",", &save)) {
		bool found = false;

		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			found |= !strcmp(g, groups[i]);
		if (!found) {
			fprintf(stderr, "zbl_bench: unknown row '%s'\n", g);
			ok = false;
		}
	}
	free(copy);
	return ok;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "only", required_argument, NULL, 'o' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "quick", no_argument, NULL, 'q' },
		{ "verify", no_argument, NULL, 'v' },
		{ "variant", required_argument, NULL, 'V' },
		{ "dir", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = {
		.rounds = 0,
		.scale = 1.0,
		.dir = "/tmp",
		.json_path = "bench-results.json",
		.svg_path = "bench-results.svg",
	};
	const char *scale = getenv("BENCH_SCALE");
	struct zbl_caps caps;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "o:r:qvV:d:j:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			b.only = optarg;
			break;
		case 'r':
			b.rounds = atoi(optarg);
			break;
		case 'q':
			b.quick = true;
			break;
		case 'v':
			b.verify_all = true;
			break;
		case 'V':
			b.variant = optarg;
			break;
		case 'd':
			b.dir = optarg;
			break;
		case 'j':
			b.json_path = optarg;
			break;
		case 's':
			b.svg_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || (b.only && !known_groups(b.only))) {
		usage(stderr);
		return 2;
	}
	if (!b.rounds)
		b.rounds = b.quick ? 2 : 5;
	if (b.rounds < 1 || b.rounds > BENCH_MAX_ROUNDS) {
		fprintf(stderr, "zbl_bench: --rounds must be 1..%d\n", BENCH_MAX_ROUNDS);
		return 2;
	}
	if (scale && (b.scale = strtod(scale, NULL)) <= 0) {
		fprintf(stderr, "zbl_bench: BENCH_SCALE must be a positive number\n");
		return 2;
	}
	if (b.quick)
		b.verify_all = true;
	/* A peer that dies must show up as an error in its row, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	zbl_caps(&caps);
	printf("zbl %s benchmarks: %d round%s per row (medians), %s sizes%s\n",
	       ZBL_VERSION_STRING, b.rounds, b.rounds == 1 ? "" : "s",
	       b.quick ? "--quick" : "full", b.scale != 1.0 && !b.quick ? " x BENCH_SCALE" : "");
	printf("pipes: %zu bytes each (max %zu), user budget %zu pages%s; "
	       "file->pipe splice aliases: %s, vmsplice aliases: %s\n",
	       caps.pipe_bytes, caps.pipe_max_size, caps.pipe_user_pages_soft,
	       caps.budget_applies ? "" : " (not applied to this process)",
	       caps.splice_file_aliases ? "yes" : "no", caps.vmsplice_aliases ? "yes" : "no");
	if (bench_free_page_reporting())
		printf("free page reporting: on (a virtio-balloon takes freed memory back and "
		       "faulting it in again is slow; ingest overwrites its file in place, "
		       "appends/fresh and direct's new file and new memory free theirs right "
		       "before their rounds and take it again)\n");
	printf("CPU = getrusage user+sys of the whole process (peer threads and io_uring workers "
	       "included) and of the child processes it waited for\n"
	       "memory: what each variant's timed part draws: warm (resident before the round), "
	       "new to process (page faults count), new to guest (host faults too)\n");

	ret |= bench_rows_net(&b);
	ret |= bench_rows_ring(&b);
	ret |= bench_rows_mem(&b);
	ret |= bench_rows_kpage(&b);
	ret |= bench_rows_position(&b);

	bench_print_summary(&b);
	if (b.json_path && *b.json_path) {
		if (bench_write_json(&b, b.json_path) < 0) {
			perror(b.json_path);
			ret = -1;
		} else {
			printf("wrote %s\n", b.json_path);
		}
	}
	if (b.svg_path && *b.svg_path) {
		if (bench_write_svg(&b, b.svg_path) < 0) {
			perror(b.svg_path);
			ret = -1;
		} else {
			printf("wrote %s\n", b.svg_path);
		}
	}
	for (int i = 0; i < b.nrows; i++)
		free(b.rows[i]);
	return ret ? 1 : 0;
}
