/* SPDX-License-Identifier: MIT */
/*
 * The zbl benchmark harness: rows of variants run round-robin in one
 * process, medians, targets, and the helpers the rows share.
 *
 * A row is a set of variants that do the same work by different means (a
 * read()/write() loop, a raw splice loop, zbl...). Every round runs each
 * variant once, in rotated order, so slow drifts of a shared machine hit all
 * variants alike. A variant's round is prep() (untimed), run() (timed: wall
 * clock and getrusage of the whole process, every thread included), then
 * check() (untimed: verifies the destination got the right bytes).
 */
#ifndef ZBL_BENCH_H
#define ZBL_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "zbl.h"

#define BENCH_MAX_VARIANTS 8
#define BENCH_MAX_TARGETS 12
#define BENCH_MAX_ROUNDS 64
#define BENCH_MAX_ROWS 48

/* Message size for socket rows: a storage daemon's object write. */
#define BENCH_MSG_BYTES ((size_t)4 << 20)
/* Chunk size of the copy and raw splice loops (and of their pipes). */
#define BENCH_CHUNK_BYTES ((size_t)1 << 20)

enum bench_unit {
	BENCH_BYTES,    /* work is bytes moved: GB/s and CPU s/GB */
	BENCH_OPS,      /* work is operations: Mops/s and CPU ns/op */
};

enum bench_target_kind {
	BENCH_THRU_GE,  /* throughput(num) / throughput(den) >= threshold */
	BENCH_TIME_LE,  /* time(num) / time(den) <= threshold, i.e. thru(den) / thru(num) */
	BENCH_INFO,     /* a throughput ratio printed for information, no threshold */
	BENCH_INFO_TIME, /* a time ratio printed for information, no threshold */
	BENCH_CPU_LE,   /* CPU per unit(num) / CPU per unit(den) <= threshold */
	BENCH_INFO_CPU, /* a CPU-per-unit ratio printed for information, no threshold */
	BENCH_VALUE_LE, /* a figure of variant num, from the row's value(), <= threshold */
	BENCH_INFO_OWN_CPU, /* CPU less the peer thread's, num / den, for information */
};

struct bench_row;

struct bench_target {
	int num, den;                /* variant indexes (BENCH_VALUE_LE: den == num) */
	enum bench_target_kind kind;
	double threshold;
	/* BENCH_VALUE_LE: what the figure is ("staged B/object"), and how to get it */
	const char *what;
	double (*value_fn)(const struct bench_row *row, int v);
	/* filled in by the harness */
	double value;
	bool pass;
};

struct bench_variant {
	const char *name;
	/*
	 * What memory the variant's timed part draws, one of:
	 * - "warm": resident before the round (reused by the process, or the
	 *   page cache of a file kept in place);
	 * - "new to process": freed to the kernel before the round, so page
	 *   faults and zeroing count, but it may still be resident in the guest;
	 * - "new to guest": given back to the host before the round (free page
	 *   reporting), so each page also costs a host fault.
	 * The row's (bench_row.memory) when NULL.
	 */
	const char *memory;
	/* Untimed set-up for one round (may be NULL). */
	int (*prep)(struct bench_row *row, int v);
	/* The timed work; sets *work to bytes or operations done. */
	int (*run)(struct bench_row *row, int v, double *work);
	/* Untimed verification and clean-up after a round (may be NULL). */
	int (*check)(struct bench_row *row, int v, bool verify);
};

struct bench_result {
	double thru[BENCH_MAX_ROUNDS];     /* work per second */
	double cpu[BENCH_MAX_ROUNDS];      /* CPU seconds per unit of work */
	double mcpu[BENCH_MAX_ROUNDS];     /* the machine's busy CPU seconds (/proc/stat) per unit */
	double own[BENCH_MAX_ROUNDS];      /* cpu less the peer thread's (bench_row.peer_cpu) */
	double wall[BENCH_MAX_ROUNDS];     /* seconds */
	double work;                       /* work units of the last round */
	int rounds;
	double med_thru, med_cpu, med_mcpu, med_own, med_wall;
	struct zbl_stats stats;            /* summed over rounds (prep + run) */
};

struct bench_row {
	const char *group;           /* what --only matches */
	char name[64];
	char title[160];
	char note[2048];              /* printed under the table, copied to the JSON */
	enum bench_unit unit;
	const char *memory;          /* the variants' memory unless they say ("warm" by default) */
	bool machine_cpu;            /* print the machine's CPU too (kernel threads, interrupts) */
	/*
	 * Print the CPU less a peer thread's (the loopback sender or receiver
	 * standing in for the network): each run sets peer_cpu to that
	 * thread's CPU seconds for the round (bench_peer.cpu).
	 */
	bool split_peer;
	double peer_cpu;
	int nvariants;
	struct bench_variant variants[BENCH_MAX_VARIANTS];
	int ntargets;
	struct bench_target targets[BENCH_MAX_TARGETS];
	void *ctx;                   /* the row's own state */
	const struct bench *bench;   /* the run this row belongs to */
	int round;                   /* the round being run, set before prep */
	struct bench_result res[BENCH_MAX_VARIANTS];
	bool failed;                 /* a variant failed or moved the wrong bytes */
	char error[160];
};

/* Memory overhead measurements, printed as their own table. */
struct bench_mem {
	const char *name;
	double bytes;                /* heap bytes per item (mallinfo2) */
	double rss_bytes;            /* RSS growth per item (/proc/self/statm), 0 if not measured */
};

struct bench {
	int rounds;
	bool quick;
	bool verify_all;             /* verify every round, not only the first */
	double scale;                /* BENCH_SCALE: multiplies default sizes */
	const char *only;            /* comma-separated groups, or NULL for all */
	const char *variant;         /* run only variants whose name contains this (profiling) */
	const char *dir;             /* where the file rows put their files */
	const char *json_path;
	const char *svg_path;
	int nrows;
	struct bench_row *rows[BENCH_MAX_ROWS];
	int nmem;
	struct bench_mem mem[16];
};

/* harness.c */
bool bench_selected(const struct bench *b, const char *group);
size_t bench_size(const struct bench *b, size_t full, size_t quick);
struct bench_row *bench_row_new(struct bench *b, const char *group, enum bench_unit unit,
				const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int bench_add_variant(struct bench_row *row, const char *name,
		      int (*prep)(struct bench_row *, int),
		      int (*run)(struct bench_row *, int, double *),
		      int (*check)(struct bench_row *, int, bool));
void bench_add_target(struct bench_row *row, int num, int den, enum bench_target_kind kind,
		      double threshold);
/* A target on one variant's own figure: @value(row, v) <= @threshold. */
void bench_add_value_target(struct bench_row *row, int v, const char *what,
			    double (*value)(const struct bench_row *row, int v), double threshold);
int bench_run_row(struct bench *b, struct bench_row *row);
/* Whether this round's check verifies the result (a prep may prepare for it). */
bool bench_round_verifies(const struct bench_row *row);
void bench_fail(struct bench_row *row, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void bench_add_mem(struct bench *b, const char *name, double bytes, double rss_bytes);
int bench_write_json(const struct bench *b, const char *path);
int bench_write_svg(const struct bench *b, const char *path);
void bench_print_summary(const struct bench *b);

/* util.c */
double bench_now(void);
/* CPU seconds (user + system) of the calling thread. */
double bench_thread_cpu(void);
uint64_t bench_rand(uint64_t *state);
/* A repeating pseudo-random pattern: stream byte i is bench_pattern()[i % BENCH_PATTERN_BYTES].
 * Page-aligned. */
#define BENCH_PATTERN_BYTES ((size_t)1 << 20)
const unsigned char *bench_pattern(void);
/* CRC-32C (ISA-L, no inversion) of the first len bytes of the pattern stream. */
uint32_t bench_pattern_crc(size_t len);
uint32_t bench_crc(uint32_t crc, const void *p, size_t len);
int bench_tcp_pair(int *rx, int *tx);
int bench_write_all(int fd, const void *p, size_t len);
/*
 * Writes @total bytes to @fd at its position: @buf (BENCH_PATTERN_BYTES
 * long) over and over. With the pattern the bytes are the sender's stream.
 */
int bench_write_repeated(int fd, const void *buf, size_t total);
/* Overwrites the first @len bytes of @fd with zeros, in place (O_DIRECT too). */
int bench_zero_file(int fd, size_t len);
/*
 * Before a round that overwrites the first @len bytes of @fd in place: with
 * @verify zeros first (the check then sees only that round's bytes); then
 * flushed, so that no writeback runs in the timed part, and rewound.
 */
int bench_file_rewind(int fd, size_t len, bool verify);
/* After a round: @fd is @len bytes long and, with @verify, they have CRC @crc. */
int bench_file_check(int fd, size_t len, uint32_t crc, bool verify);
int bench_temp_file(const struct bench *b, const char *tag);
/*
 * Whether a virtio-balloon device takes freed guest memory back (free page
 * reporting): memory freed here then costs a host fault per page when it
 * is used again, so rows must not free and refault between rounds.
 */
bool bench_free_page_reporting(void);
/* CRC of the first len bytes of a file (O_DIRECT too), by pread; -1 (as int64) on error. */
int64_t bench_file_crc(int fd, size_t len);
int bench_pipe(int p[2], size_t bytes);
size_t bench_rss_bytes(void);
size_t bench_heap_bytes(void);

/* net.c: a peer thread that sends the pattern stream, or receives and counts (and CRCs). */
struct bench_peer {
	pthread_t thread;
	int fd;
	size_t bytes;            /* to send; or received */
	bool crc_on;             /* receiver: CRC what arrives */
	bool use_splice;         /* receiver: splice to /dev/null instead of read() */
	uint32_t crc;
	int err;
	double cpu;              /* the peer thread's own CPU seconds, when it ends */
};
int bench_peer_start(struct bench_peer *p, void *(*fn)(void *));
/* Sends p->bytes of the pattern stream to p->fd, then closes it. */
void *bench_sender_main(void *arg);
/* Reads p->fd to its end (or splices it to /dev/null); p->bytes is what came. */
void *bench_receiver_main(void *arg);
/* A TCP pair whose sending end a sender thread will feed @total bytes of the pattern; *@rx reads. */
int bench_tx_open(struct bench_peer *tx, int *rx, size_t total);
/* Starts the sender; if it cannot start, both ends are closed. */
int bench_tx_start(struct bench_peer *tx, int rx);
/*
 * After the reading side moved @got bytes (or failed with it, -errno):
 * closes @rx, waits for the sender, and sets *@work. 0 if all @total
 * bytes came, or the first error.
 */
int bench_tx_join(struct bench_peer *tx, int rx, ssize_t got, size_t total, double *work);
/* A TCP pair whose receiving end a receiver thread (bench_receiver_main) drains; *@tx sends. */
int bench_rx_start(struct bench_peer *rx, int *tx);
/*
 * After the sending side wrote @sent bytes (or failed with it, -errno):
 * closes @tx, waits for the receiver, closes its end and sets *@work to
 * what it got. 0 if all @total bytes went, or the first error.
 */
int bench_rx_join(struct bench_peer *rx, int tx, ssize_t sent, size_t total, double *work);
/* 0 if the receiver got @total bytes and, when @verify and it CRCs, the right ones. */
int bench_rx_check(const struct bench_peer *rx, size_t total, uint32_t crc, bool verify);
/* zbl_splice_from up to @msg bytes (@flags), zbl_splice_to(ZBL_DRAIN), until the end of @in. */
ssize_t bench_move_zbl(int in, int out, size_t msg, unsigned flags);

/* The rows, one file per family. */
int bench_rows_net(struct bench *b);      /* net.c: ingest, file->socket, relay */
int bench_rows_mem(struct bench *b);      /* mem.c: against evbuffer */
int bench_rows_kpage(struct bench *b);    /* kpage.c: crc32c, materialize */
int bench_rows_position(struct bench *b); /* position.c: positioning and memory overhead */
int bench_rows_ring(struct bench *b);     /* ring.c: direct ingest, memory to a socket, small ops */

#endif /* ZBL_BENCH_H */
