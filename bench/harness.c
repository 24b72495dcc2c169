/* SPDX-License-Identifier: MIT */
/*
 * Running rows: rounds, rotation, timing, medians, targets; and reporting
 * them as a table, JSON and an SVG chart.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

bool bench_selected(const struct bench *b, const char *group)
{
	const char *p = b->only;
	size_t n = strlen(group);

	if (!p)
		return true;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, group, n))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

/* A size for a row: the full size scaled by BENCH_SCALE, or the quick size. */
size_t bench_size(const struct bench *b, size_t full, size_t quick)
{
	double s;

	if (b->quick)
		return quick;
	s = full * b->scale;
	return s < 1 ? 1 : (size_t)s;
}

struct bench_row *bench_row_new(struct bench *b, const char *group, enum bench_unit unit,
				const char *fmt, ...)
{
	struct bench_row *row;
	va_list ap;

	if (b->nrows == BENCH_MAX_ROWS)
		return NULL;
	row = calloc(1, sizeof(*row));
	if (!row)
		return NULL;
	row->group = group;
	row->unit = unit;
	row->bench = b;
	/* Rows whose variants draw memory new to the guest say so (bench.h). */
	row->memory = "warm";
	snprintf(row->name, sizeof(row->name), "%s", group);
	va_start(ap, fmt);
	vsnprintf(row->title, sizeof(row->title), fmt, ap);
	va_end(ap);
	b->rows[b->nrows++] = row;
	return row;
}

int bench_add_variant(struct bench_row *row, const char *name,
		      int (*prep)(struct bench_row *, int),
		      int (*run)(struct bench_row *, int, double *),
		      int (*check)(struct bench_row *, int, bool))
{
	struct bench_variant *v;

	if (row->nvariants == BENCH_MAX_VARIANTS)
		abort();
	v = &row->variants[row->nvariants];
	v->name = name;
	v->prep = prep;
	v->run = run;
	v->check = check;
	return row->nvariants++;
}

void bench_add_target(struct bench_row *row, int num, int den, enum bench_target_kind kind,
		      double threshold)
{
	struct bench_target *t;

	if (row->ntargets == BENCH_MAX_TARGETS)
		abort();
	t = &row->targets[row->ntargets++];
	t->num = num;
	t->den = den;
	t->kind = kind;
	t->threshold = threshold;
}

void bench_add_value_target(struct bench_row *row, int v, const char *what,
			    double (*value)(const struct bench_row *row, int v), double threshold)
{
	bench_add_target(row, v, v, BENCH_VALUE_LE, threshold);
	row->targets[row->ntargets - 1].what = what;
	row->targets[row->ntargets - 1].value_fn = value;
}

void bench_fail(struct bench_row *row, const char *fmt, ...)
{
	va_list ap;

	if (row->failed)
		return;
	row->failed = true;
	va_start(ap, fmt);
	vsnprintf(row->error, sizeof(row->error), fmt, ap);
	va_end(ap);
	fprintf(stderr, "zbl_bench: %s: %s\n", row->name, row->error);
}

void bench_add_mem(struct bench *b, const char *name, double bytes, double rss_bytes)
{
	if (b->nmem == (int)(sizeof(b->mem) / sizeof(b->mem[0])))
		return;
	b->mem[b->nmem].name = name;
	b->mem[b->nmem].bytes = bytes;
	b->mem[b->nmem].rss_bytes = rss_bytes;
	b->nmem++;
}

static double rusage_seconds(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * RUSAGE_SELF covers every thread of the process, finished ones too, and
 * io_uring's kernel workers, which are threads of the process that set up
 * the ring. RUSAGE_CHILDREN adds the child processes a row ran and waited
 * for (dd).
 */
static double cpu_seconds(void)
{
	return rusage_seconds(RUSAGE_SELF) + rusage_seconds(RUSAGE_CHILDREN);
}

/*
 * The machine's busy CPU seconds, every CPU and every task: /proc/stat's
 * user, nice, system, irq and softirq (not idle, iowait or the host's
 * steal). It adds what no process is charged with: the kernel's own
 * threads (writeback, the page-reporting worker) and interrupts. In ticks
 * of 10 ms, and whatever else runs on the machine counts too.
 */
static double machine_cpu_seconds(void)
{
	unsigned long long user, nice, sys, idle, iowait, irq, softirq;
	FILE *f = fopen("/proc/stat", "re");
	int n = 0;

	if (!f)
		return 0;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
		   &iowait, &irq, &softirq);
	fclose(f);
	if (n != 7)
		return 0;
	return (double)(user + nice + sys + irq + softirq) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[BENCH_MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The counters of struct zbl_stats (pipes_live, a gauge, is not one). */
#define STATS_COUNTERS(X) \
	X(bytes_copied_in) X(bytes_spliced_in) X(bytes_copied_out) X(bytes_spliced_out) \
	X(bytes_teed) X(bytes_materialized) X(materializations) X(fallbacks) X(pipes_created) \
	X(bytes_sent_zerocopy) X(bytes_zerocopy_copied) X(bytes_direct) X(bytes_staged) \
	X(ring_ops) X(ring_sync_ops)

static void stats_add(struct zbl_stats *sum, const struct zbl_stats *a, const struct zbl_stats *b)
{
#define ADD(f) sum->f += b->f - a->f;
	STATS_COUNTERS(ADD)
#undef ADD
	sum->pipes_live = b->pipes_live;
}

static bool stats_any(const struct zbl_stats *s)
{
#define ANY(f) s->f ||
	return STATS_COUNTERS(ANY) false;
#undef ANY
}

static bool kind_info(enum bench_target_kind k)
{
	return k == BENCH_INFO || k == BENCH_INFO_TIME || k == BENCH_INFO_CPU ||
	       k == BENCH_INFO_OWN_CPU;
}

/* Whether the target is "at most" (time, CPU, a figure) rather than "at least". */
static bool kind_le(enum bench_target_kind k)
{
	return k == BENCH_TIME_LE || k == BENCH_CPU_LE || k == BENCH_VALUE_LE;
}

static const char *kind_what(const struct bench_target *t)
{
	return t->kind == BENCH_TIME_LE || t->kind == BENCH_INFO_TIME ? "time" :
	       t->kind == BENCH_CPU_LE || t->kind == BENCH_INFO_CPU ? "CPU" :
	       t->kind == BENCH_INFO_OWN_CPU ? "CPU less peer" :
	       t->kind == BENCH_VALUE_LE ? t->what : "ratio";
}

static void compute_targets(struct bench_row *row)
{
	for (int i = 0; i < row->ntargets; i++) {
		struct bench_target *t = &row->targets[i];
		double n = row->res[t->num].med_thru, d = row->res[t->den].med_thru;

		double cn = row->res[t->num].med_cpu, cd = row->res[t->den].med_cpu;

		if (t->kind == BENCH_TIME_LE || t->kind == BENCH_INFO_TIME)
			t->value = n > 0 ? d / n : 0;
		else if (t->kind == BENCH_CPU_LE || t->kind == BENCH_INFO_CPU)
			t->value = cd > 0 ? cn / cd : 0;
		else if (t->kind == BENCH_INFO_OWN_CPU)
			t->value = row->res[t->den].med_own > 0 ?
				   row->res[t->num].med_own / row->res[t->den].med_own : 0;
		else if (t->kind == BENCH_VALUE_LE)
			t->value = row->res[t->num].rounds ? t->value_fn(row, t->num) : -1;
		else
			t->value = d > 0 ? n / d : 0;
		if (row->failed)
			t->pass = false;
		else if (t->kind == BENCH_THRU_GE)
			t->pass = t->value >= t->threshold;
		else if (t->kind == BENCH_TIME_LE || t->kind == BENCH_CPU_LE)
			t->pass = t->value > 0 && t->value <= t->threshold;
		else if (t->kind == BENCH_VALUE_LE)
			t->pass = t->value >= 0 && t->value <= t->threshold;
		else
			t->pass = true;
	}
}

static void print_mib(const char *what, uint64_t v, double rounds, bool *first)
{
	if (!v)
		return;
	printf("%s%s %.1f MiB", *first ? "" : ", ", what, v / rounds / 1048576.0);
	*first = false;
}

static const char *variant_memory(const struct bench_row *row, int v)
{
	return row->variants[v].memory ? row->variants[v].memory : row->memory;
}

static void print_row(const struct bench_row *row, int rounds)
{
	const bool bytes = row->unit == BENCH_BYTES;

	printf("\n== %s: %s\n", row->name, row->title);
	printf("   %-36s %12s %12s", "variant", bytes ? "GB/s" : "Mops/s",
	       bytes ? "CPU s/GB" : "CPU ns/op");
	if (row->machine_cpu)
		printf(" %12s", bytes ? "mach. s/GB" : "mach. ns/op");
	if (row->split_peer)
		printf(" %12s", bytes ? "-peer s/GB" : "-peer ns/op");
	printf(" %12s  %s\n", "ms/round", "memory");
	for (int v = 0; v < row->nvariants; v++) {
		const struct bench_result *r = &row->res[v];

		printf("   %-36s %12.3f %12.3f", row->variants[v].name,
		       r->med_thru / 1e6 / (bytes ? 1e3 : 1), r->med_cpu * 1e9);
		if (row->machine_cpu)
			printf(" %12.3f", r->med_mcpu * 1e9);
		if (row->split_peer)
			printf(" %12.3f", r->med_own * 1e9);
		printf(" %12.2f  %s\n", r->med_wall * 1e3, variant_memory(row, v));
	}
	for (int i = 0; i < row->ntargets; i++) {
		const struct bench_target *t = &row->targets[i];
		const char *a = row->variants[t->num].name, *d = row->variants[t->den].name;

		if (t->kind == BENCH_VALUE_LE)
			printf("   %s, %s = %.3g, target <= %.3g: %s\n", t->what, a, t->value,
			       t->threshold, t->pass ? "PASS" : "FAIL");
		else if (kind_info(t->kind))
			printf("   %s %s / %s = %.2f (info)\n", kind_what(t), a, d, t->value);
		else
			printf("   %s %s / %s = %.2f, target %s %.2f: %s\n", kind_what(t), a, d,
			       t->value, kind_le(t->kind) ? "<=" : ">=", t->threshold,
			       t->pass ? "PASS" : "FAIL");
	}
	for (int v = 0; v < row->nvariants; v++) {
		const struct zbl_stats *s = &row->res[v].stats;
		bool first = true;

		if (!stats_any(s))
			continue;
		printf("   zbl counters per round, %s: ", row->variants[v].name);
		print_mib("spliced_in", s->bytes_spliced_in, rounds, &first);
		print_mib("copied_in", s->bytes_copied_in, rounds, &first);
		print_mib("spliced_out", s->bytes_spliced_out, rounds, &first);
		print_mib("copied_out", s->bytes_copied_out, rounds, &first);
		print_mib("teed", s->bytes_teed, rounds, &first);
		print_mib("materialized", s->bytes_materialized, rounds, &first);
		print_mib("direct", s->bytes_direct, rounds, &first);
		print_mib("staged", s->bytes_staged, rounds, &first);
		print_mib("sent_zerocopy", s->bytes_sent_zerocopy, rounds, &first);
		print_mib("zerocopy_copied", s->bytes_zerocopy_copied, rounds, &first);
		if (s->ring_ops) {
			printf("%sring_ops %.1f (sync engine %.1f)", first ? "" : ", ",
			       s->ring_ops / (double)rounds, s->ring_sync_ops / (double)rounds);
			first = false;
		}
		printf("%sfallbacks %.1f, pipes_created %.1f\n", first ? "" : ", ",
		       s->fallbacks / (double)rounds, s->pipes_created / (double)rounds);
	}
	if (row->note[0])
		printf("   note: %s\n", row->note);
	if (row->failed)
		printf("   ERROR: %s\n", row->error);
}

bool bench_round_verifies(const struct bench_row *row)
{
	return row->round == 0 || row->bench->verify_all;
}

int bench_run_row(struct bench *b, struct bench_row *row)
{
	const int n = row->nvariants;

	for (int r = 0; r < b->rounds && !row->failed; r++) {
		for (int i = 0; i < n && !row->failed; i++) {
			/* Rotate the starting variant so none always runs first. */
			int v = (r + i) % n;
			struct bench_variant *var = &row->variants[v];
			struct bench_result *res = &row->res[v];
			struct zbl_stats s0, s1;
			double work = 0, t0, t1, c0, c1, m0, m1;
			int err;

			if (b->variant && !strstr(var->name, b->variant))
				continue;
			row->round = r;
			row->peer_cpu = 0;
			zbl_stats_get(&s0);
			if (var->prep && (err = var->prep(row, v)) < 0) {
				bench_fail(row, "%s: prep failed: %s", var->name, strerror(-err));
				break;
			}
			m0 = machine_cpu_seconds();
			c0 = cpu_seconds();
			t0 = bench_now();
			err = var->run(row, v, &work);
			t1 = bench_now();
			c1 = cpu_seconds();
			m1 = machine_cpu_seconds();
			zbl_stats_get(&s1);
			if (err < 0) {
				bench_fail(row, "%s: %s", var->name, strerror(-err));
				break;
			}
			if (var->check && (err = var->check(row, v, bench_round_verifies(row))) < 0) {
				bench_fail(row, "%s: wrong result (%s)", var->name, strerror(-err));
				break;
			}
			stats_add(&res->stats, &s0, &s1);
			if (t1 <= t0)
				t1 = t0 + 1e-9;
			res->thru[res->rounds] = work / (t1 - t0);
			res->cpu[res->rounds] = work > 0 ? (c1 - c0) / work : 0;
			res->mcpu[res->rounds] = work > 0 ? (m1 - m0) / work : 0;
			res->own[res->rounds] = work > 0 ? (c1 - c0 - row->peer_cpu) / work : 0;
			res->wall[res->rounds] = t1 - t0;
			res->work = work;
			res->rounds++;
		}
	}
	for (int v = 0; v < n; v++) {
		struct bench_result *res = &row->res[v];

		if (!res->rounds)
			continue;
		res->med_thru = median(res->thru, res->rounds);
		res->med_cpu = median(res->cpu, res->rounds);
		res->med_mcpu = median(res->mcpu, res->rounds);
		res->med_own = median(res->own, res->rounds);
		res->med_wall = median(res->wall, res->rounds);
	}
	compute_targets(row);
	print_row(row, b->rounds);
	fflush(stdout);
	return row->failed ? -1 : 0;
}

void bench_print_summary(const struct bench *b)
{
	int pass = 0, fail = 0;

	if (b->nmem) {
		printf("\n== memory overhead (heap bytes from mallinfo2; RSS growth where measured)\n");
		printf("   %-52s %12s %12s\n", "item", "heap B", "RSS B");
		for (int i = 0; i < b->nmem; i++)
			printf("   %-52s %12.1f %12.1f\n", b->mem[i].name, b->mem[i].bytes,
			       b->mem[i].rss_bytes);
	}
	printf("\n== targets\n");
	for (int i = 0; i < b->nrows; i++) {
		const struct bench_row *row = b->rows[i];

		for (int t = 0; t < row->ntargets; t++) {
			const struct bench_target *tg = &row->targets[t];

			if (kind_info(tg->kind))
				continue;
			printf("   %-4s %-34s %-38s %6.2f %s %.2f%s%s\n", tg->pass ? "PASS" : "FAIL",
			       row->name, row->variants[tg->num].name, tg->value,
			       kind_le(tg->kind) ? "<=" : ">=", tg->threshold,
			       tg->kind == BENCH_THRU_GE ? "" : " ", tg->kind == BENCH_THRU_GE ? "" :
			       kind_what(tg));
			if (tg->pass)
				pass++;
			else
				fail++;
		}
	}
	printf("   %d passed, %d failed\n", pass, fail);
}

/* ------------------------------------------------------------------------ */
/* JSON */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* JSON has no NaN or infinity; a value that is not finite is written as null. */
static void json_num(FILE *f, double v)
{
	if (v != v || v > 1e300 || v < -1e300)
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static const char *kind_name(enum bench_target_kind k)
{
	return k == BENCH_THRU_GE ? "throughput_ratio_ge" :
	       k == BENCH_TIME_LE ? "time_ratio_le" :
	       k == BENCH_CPU_LE ? "cpu_ratio_le" :
	       k == BENCH_VALUE_LE ? "value_le" :
	       k == BENCH_INFO ? "info_throughput_ratio" :
	       k == BENCH_INFO_CPU ? "info_cpu_ratio" : "info_time_ratio";
}

static void json_stats(FILE *f, const struct zbl_stats *s, int rounds)
{
	fprintf(f, "{\"rounds\": %d", rounds);
#define FIELD(n) fprintf(f, ", \"" #n "\": %llu", (unsigned long long)s->n);
	STATS_COUNTERS(FIELD)
#undef FIELD
	fputc('}', f);
}

int bench_write_json(const struct bench *b, const char *path)
{
	FILE *f = fopen(path, "w");
	struct utsname u;
	char date[64];
	time_t now = time(NULL);

	if (!f)
		return -1;
	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "{\n  \"tool\": \"zbl_bench\",\n  \"zbl_version\": ");
	json_str(f, ZBL_VERSION_STRING);
	fprintf(f, ",\n  \"date\": ");
	json_str(f, date);
	fprintf(f, ",\n  \"machine\": {\"sysname\": ");
	json_str(f, u.sysname);
	fprintf(f, ", \"release\": ");
	json_str(f, u.release);
	fprintf(f, ", \"machine\": ");
	json_str(f, u.machine);
	fprintf(f, ", \"cpus\": %ld, \"free_page_reporting\": %s},\n",
		sysconf(_SC_NPROCESSORS_ONLN), bench_free_page_reporting() ? "true" : "false");
	fprintf(f, "  \"rounds\": %d,\n  \"quick\": %s,\n  \"scale\": ", b->rounds,
		b->quick ? "true" : "false");
	json_num(f, b->scale);
	fprintf(f, ",\n  \"rows\": [");
	for (int i = 0; i < b->nrows; i++) {
		const struct bench_row *row = b->rows[i];
		const bool bytes = row->unit == BENCH_BYTES;

		fprintf(f, "%s\n    {\"group\": ", i ? "," : "");
		json_str(f, row->group);
		fprintf(f, ", \"name\": ");
		json_str(f, row->name);
		fprintf(f, ", \"title\": ");
		json_str(f, row->title);
		fprintf(f, ", \"unit\": \"%s\", \"ok\": %s", bytes ? "bytes" : "ops",
			row->failed ? "false" : "true");
		if (row->failed) {
			fprintf(f, ", \"error\": ");
			json_str(f, row->error);
		}
		if (row->note[0]) {
			fprintf(f, ", \"note\": ");
			json_str(f, row->note);
		}
		fprintf(f, ",\n     \"variants\": [");
		for (int v = 0; v < row->nvariants; v++) {
			const struct bench_result *r = &row->res[v];

			fprintf(f, "%s\n       {\"name\": ", v ? "," : "");
			json_str(f, row->variants[v].name);
			fprintf(f, ", \"work_per_round\": ");
			json_num(f, r->work);
			fprintf(f, ", \"%s\": ", bytes ? "gb_per_s" : "mops_per_s");
			json_num(f, r->med_thru / 1e6 / (bytes ? 1e3 : 1));
			fprintf(f, ", \"%s\": ", bytes ? "cpu_s_per_gb" : "cpu_ns_per_op");
			json_num(f, r->med_cpu * 1e9);
			fprintf(f, ", \"%s\": ", bytes ? "machine_cpu_s_per_gb" : "machine_cpu_ns_per_op");
			json_num(f, r->med_mcpu * 1e9);
			if (row->split_peer) {
				fprintf(f, ", \"%s\": ", bytes ? "cpu_less_peer_s_per_gb" :
							       "cpu_less_peer_ns_per_op");
				json_num(f, r->med_own * 1e9);
			}
			fprintf(f, ", \"memory\": ");
			json_str(f, variant_memory(row, v));
			fprintf(f, ", \"wall_s\": ");
			json_num(f, r->med_wall);
			fprintf(f, ", \"rounds_%s\": [", bytes ? "gb_per_s" : "mops_per_s");
			for (int k = 0; k < r->rounds; k++) {
				fprintf(f, "%s", k ? ", " : "");
				json_num(f, r->thru[k] / 1e6 / (bytes ? 1e3 : 1));
			}
			fprintf(f, "], \"zbl_stats\": ");
			json_stats(f, &r->stats, r->rounds);
			fprintf(f, "}");
		}
		fprintf(f, "],\n     \"targets\": [");
		for (int t = 0; t < row->ntargets; t++) {
			const struct bench_target *tg = &row->targets[t];

			fprintf(f, "%s\n       {\"num\": ", t ? "," : "");
			json_str(f, row->variants[tg->num].name);
			fprintf(f, ", \"den\": ");
			json_str(f, row->variants[tg->den].name);
			fprintf(f, ", \"kind\": \"%s\", ", kind_name(tg->kind));
			if (tg->kind == BENCH_VALUE_LE) {
				fprintf(f, "\"what\": ");
				json_str(f, tg->what);
				fprintf(f, ", ");
			}
			fprintf(f, "\"threshold\": ");
			if (kind_info(tg->kind))
				fputs("null", f);
			else
				json_num(f, tg->threshold);
			fprintf(f, ", \"value\": ");
			json_num(f, tg->value);
			fprintf(f, ", \"pass\": %s}", tg->pass ? "true" : "false");
		}
		fprintf(f, "]}");
	}
	fprintf(f, "\n  ],\n  \"memory\": [");
	for (int i = 0; i < b->nmem; i++) {
		fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
		json_str(f, b->mem[i].name);
		fprintf(f, ", \"heap_bytes\": ");
		json_num(f, b->mem[i].bytes);
		fprintf(f, ", \"rss_bytes\": ");
		json_num(f, b->mem[i].rss_bytes);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* SVG: one horizontal bar per target, as a fraction of the target. */

static void svg_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

int bench_write_svg(const struct bench *b, const char *path)
{
	/* The bar length is value / threshold for "at least" targets and
	 * threshold / value for "at most" ones, so the target is always the
	 * line at 1 and longer is better; bars are cut at max_frac. */
	const double max_frac = 3.0;
	const int label_w = 470, bar_w = 420, row_h = 26, top = 50;
	int n = 0, y;
	FILE *f;

	for (int i = 0; i < b->nrows; i++)
		for (int t = 0; t < b->rows[i]->ntargets; t++)
			n += !kind_info(b->rows[i]->targets[t].kind);
	f = fopen(path, "w");
	if (!f)
		return -1;
	const int w = label_w + bar_w + 150, h = top + n * row_h + 40;
	const double x1 = label_w + bar_w / max_frac;

	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h, w, h);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">zbl %s: ratio "
		"against each target (1 = target; longer is better; %d round%s, medians%s)</text>\n",
		ZBL_VERSION_STRING, b->rounds, b->rounds == 1 ? "" : "s",
		b->quick ? ", --quick sizes" : "");
	for (int k = 0; k <= (int)max_frac; k++)
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">%dx</text>\n",
			label_w + k * bar_w / max_frac, top - 8, k);
	y = top;
	for (int i = 0; i < b->nrows; i++) {
		const struct bench_row *row = b->rows[i];

		for (int t = 0; t < row->ntargets; t++) {
			const struct bench_target *tg = &row->targets[t];
			double frac;

			if (kind_info(tg->kind))
				continue;
			if (kind_le(tg->kind))
				frac = tg->value > 0 ? tg->threshold / tg->value :
				       tg->value == 0 && tg->pass ? max_frac : 0;
			else
				frac = tg->value / tg->threshold;
			if (frac > max_frac)
				frac = max_frac;
			if (frac < 0 || frac != frac)
				frac = 0;
			fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8,
				y + row_h / 2 + 4);
			svg_text(f, row->name);
			fputs(": ", f);
			if (tg->kind == BENCH_VALUE_LE) {
				svg_text(f, tg->what);
				fputs(", ", f);
				svg_text(f, row->variants[tg->num].name);
			} else {
				if (tg->kind == BENCH_CPU_LE)
					fputs("CPU ", f);
				svg_text(f, row->variants[tg->num].name);
				fputs(" / ", f);
				svg_text(f, row->variants[tg->den].name);
			}
			fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
				"fill=\"%s\"/>\n", label_w, y + 4, frac * bar_w / max_frac, row_h - 8,
				tg->pass ? "#3a9a4a" : "#c8412c");
			fprintf(f, "<text x=\"%.1f\" y=\"%d\">%.2f (%s%s %.2f) %s</text>\n",
				label_w + frac * bar_w / max_frac + 6, y + row_h / 2 + 4, tg->value,
				tg->kind == BENCH_TIME_LE ? "time " : tg->kind == BENCH_CPU_LE ? "CPU " : "",
				kind_le(tg->kind) ? "&lt;=" : "&gt;=", tg->threshold,
				tg->pass ? "PASS" : "FAIL");
			y += row_h;
		}
	}
	fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\" "
		"stroke-dasharray=\"4 3\"/>\n", x1, top - 4, x1, y + 4);
	fprintf(f, "<text x=\"10\" y=\"%d\" fill=\"#666\">bars cut at %.0fx the target; "
		"see bench-results.json for every figure</text>\n", y + 28, max_frac);
	fprintf(f, "</svg>\n");
	return fclose(f) ? -1 : 0;
}
