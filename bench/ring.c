/* SPDX-License-Identifier: MIT */
/*
 * Rows of the ring (zbl_ring_*, issue 14), over TCP loopback:
 *   direct     socket -> O_DIRECT file through the ring, against zbl's
 *              buffered splice ingest and dd oflag=direct
 *   memsock    memory -> socket: writev against the ring's zero-copy route
 *   smallops   4 KiB request/response: the ring against epoll + sync calls
 * The peers are threads of this process (dd a child it waits for), so the
 * CPU figures cover both ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* A received object: the ingest row's message. */
#define OBJ_BYTES BENCH_MSG_BYTES
/* Objects a ring ingest holds at once (written or being received). */
#define OBJS_IN_FLIGHT 4
/*
 * Memory the library and malloc keep goes back to the kernel right before
 * a round, so the round allocates (and faults in) what it uses, from pages
 * the guest has just freed. Memory new to the guest cannot be had on
 * demand: free page reporting hands freed pages to the host in batches,
 * from 2 s after they are freed, and the guest reuses the pages it has not
 * reported first. Waiting 1.5 s before each round still let a new file run
 * at 1.0-2.1 GB/s after its first round's 0.33-0.37 (four full runs).
 */
static void release_memory(void)
{
	zbl_pool_flush();
	malloc_trim(0);
}

/* What each ring loop here keeps: its ring, a list, and when to stop. */
struct ring_job {
	zbl_ring_t *ring;
	zbl_t *bl;
	bool done;
	int err;                 /* the first error */
};

static void job_fail(struct ring_job *j, int err)
{
	if (err < 0 && !j->err)
		j->err = err;
}

/*
 * Runs a loop on a new ring (io_uring where it can be had, the synchronous
 * engine with @flags ZBL_RING_SYNC) with a new list:
 * @start submits the first operations, the callbacks the rest, until one
 * sets done or an error. Freeing the ring cancels what is left, waits for
 * the kernel, and runs the callbacks still due (a last write's error shows
 * up then). Returns 0 or the first error.
 */
static int ring_job_run(struct ring_job *j, void (*start)(struct ring_job *j), unsigned flags)
{
	int n = -ENOMEM;

	j->ring = zbl_ring_new(0, flags);
	j->bl = zbl_new();
	if (j->ring && j->bl) {
		start(j);
		for (n = 0; !j->done && !j->err && n >= 0;)
			n = zbl_ring_run(j->ring, 1, -1);
	}
	zbl_ring_free(j->ring);
	zbl_free(j->bl);
	job_fail(j, n);
	return j->err;
}

/* ------------------------------------------------------------------------ */
/* direct: socket -> O_DIRECT file through the ring */

/* The variants, in the order they are added. */
enum { DIRECT_RING, DIRECT_RING_NEW, DIRECT_DD, DIRECT_BUF_NEW, DIRECT_BUF_PLACE, DIRECT_FLOOR,
       DIRECT_RAW };

struct direct {
	size_t total;
	uint32_t crc;            /* of the pattern stream, total bytes */
	uint32_t zero_crc;       /* of total zero bytes (what dd writes) */
	int dfile;               /* O_DIRECT, preallocated: the ring and dd overwrite it */
	int place;               /* buffered, overwritten in place */
	int fresh;               /* buffered, a new file each round (-1 between) */
	int rx;
	struct bench_peer tx;
	char *obj_buf;           /* the floor's and raw loop's read() buffer, aligned, reused */
};

/* One ring ingest: objects are received whole, then written; OBJS_IN_FLIGHT at most. */
struct ring_ingest {
	struct ring_job job;     /* job.bl: the object being received */
	struct direct *c;
	size_t have;             /* its bytes so far */
	int64_t off;             /* where it goes in the file */
	int writes;              /* objects being written */
	bool reading, eof;
};

static void ri_read(struct ring_ingest *s);

static void ri_fsync_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct ring_ingest *s = arg;

	(void)ring;
	job_fail(&s->job, (int)res);
	s->job.done = true;
}

static void ri_write_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct ring_ingest *s = arg;

	(void)ring;
	s->writes--;
	job_fail(&s->job, (int)res);
	if (!s->eof && !s->reading && !s->job.err)
		ri_read(s);
}

/* The object received so far goes to the file; the list is empty again. */
static void ri_write(struct ring_ingest *s)
{
	int err = zbl_ring_write(s->job.ring, s->job.bl, s->c->dfile, s->off, ZBL_DRAIN,
				 ri_write_cb, s);

	if (err < 0) {
		job_fail(&s->job, err);
		return;
	}
	s->off += (int64_t)s->have;
	s->have = 0;
	s->writes++;
}

static void ri_read_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct ring_ingest *s = arg;

	(void)ring;
	s->reading = false;
	if (res < 0) {
		job_fail(&s->job, (int)res);
		return;
	}
	s->have += (size_t)res;
	if (res == 0) {
		/* End of stream: the last object (if any), then fdatasync after every write. */
		s->eof = true;
		if (s->have)
			ri_write(s);
		if (!s->job.err)
			job_fail(&s->job, zbl_ring_fsync(s->job.ring, s->c->dfile, ZBL_DATASYNC,
							 ri_fsync_cb, s));
		return;
	}
	if (s->have == OBJ_BYTES)
		ri_write(s);
	if (s->writes < OBJS_IN_FLIGHT && !s->job.err)
		ri_read(s);
}

static void ri_read(struct ring_ingest *s)
{
	int err = zbl_ring_read(s->job.ring, s->job.bl, s->c->rx, -1, OBJ_BYTES - s->have, 0,
				ri_read_cb, s);

	job_fail(&s->job, err);
	s->reading = err == 0;
}

static void ri_start(struct ring_job *j)
{
	ri_read((struct ring_ingest *)j);
}

static ssize_t ring_ingest(struct direct *c)
{
	struct ring_ingest s = { .c = c };
	int err = ring_job_run(&s.job, ri_start, 0);

	return err < 0 ? err : s.off;
}

/*
 * dd of the same size, as a child process (its CPU is counted when it is
 * waited for): from /dev/zero into the same preallocated file, O_DIRECT,
 * 4 MiB blocks, fdatasync at the end.
 */
static int run_dd(struct direct *c)
{
	enum { DD_FD = 100 };
	char count[32], bs[32];
	char *argv[] = { "dd", "if=/dev/zero", "of=/dev/fd/100", bs, count, "oflag=direct",
			 "conv=notrunc,fdatasync", "status=none", NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, err;

	snprintf(bs, sizeof(bs), "bs=%zu", OBJ_BYTES);
	snprintf(count, sizeof(count), "count=%zu", c->total / OBJ_BYTES);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, c->dfile, DD_FD);
	err = posix_spawnp(&pid, "dd", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		return -err;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/*
 * read() the stream into one aligned buffer, OBJ_BYTES at a time; with
 * @file >= 0 each full buffer (and the last part) is written there by
 * pwrite, O_DIRECT, one after the other: the plain loop a user would write.
 * With @file -1 nothing is kept (the floor). Bytes read, or -errno.
 */
static ssize_t read_all(int fd, char *buf, size_t len, int file)
{
	ssize_t got = 0, r;
	size_t have = 0;

	do {
		r = read(fd, buf + have, len - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		have += (size_t)r;
		if (have == len || (r == 0 && have)) {
			if (file >= 0 && pwrite(file, buf, have, got) != (ssize_t)have)
				return -EIO;
			got += (ssize_t)have;
			have = 0;
		}
	} while (r);
	return got;
}

static int direct_prep(struct bench_row *row, int v)
{
	struct direct *c = row->ctx;
	bool verify = bench_round_verifies(row);
	int err = 0;

	switch (v) {
	case DIRECT_RING_NEW:
		release_memory();
		/* fall through */
	case DIRECT_RING:
	case DIRECT_RAW:
		/* The check must see only what this round wrote. */
		if (verify)
			err = bench_zero_file(c->dfile, c->total);
		break;
	case DIRECT_FLOOR:
		break;
	case DIRECT_DD:
		/* dd writes zeros: the pattern first, so the check sees dd's bytes. */
		if (verify && lseek(c->dfile, 0, SEEK_SET) == 0)
			err = bench_write_repeated(c->dfile, bench_pattern(), c->total);
		return err;
	case DIRECT_BUF_NEW:
		/*
		 * The last round's file goes right before the new one is written,
		 * its blocks freed now (syncfs commits the journal and its
		 * discards): the new file's page cache takes the pages it frees.
		 */
		if (c->fresh >= 0) {
			close(c->fresh);
			c->fresh = -1;
			if (syncfs(c->place) < 0)
				return -errno;
		}
		release_memory();
		c->fresh = bench_temp_file(row->bench, "direct-new");
		if (c->fresh < 0)
			return c->fresh;
		break;
	default:
		/* Resident page cache, as the ingest row's. */
		err = bench_file_rewind(c->place, c->total, verify);
		break;
	}
	return err < 0 ? err : bench_tx_open(&c->tx, &c->rx, c->total);
}

static int direct_run(struct bench_row *row, int v, double *work)
{
	struct direct *c = row->ctx;
	int file = v == DIRECT_BUF_NEW ? c->fresh : c->place;
	ssize_t got;
	int err;

	if (v == DIRECT_DD) {
		err = run_dd(c);
		*work = (double)c->total;
		return err;
	}
	err = bench_tx_start(&c->tx, c->rx);
	if (err < 0)
		return err;
	if (v == DIRECT_RING || v == DIRECT_RING_NEW) {
		got = ring_ingest(c);
	} else if (v == DIRECT_FLOOR) {
		got = read_all(c->rx, c->obj_buf, OBJ_BYTES, -1);
	} else if (v == DIRECT_RAW) {
		got = read_all(c->rx, c->obj_buf, OBJ_BYTES, c->dfile);
		if (got >= 0 && fdatasync(c->dfile) < 0)
			got = -errno;
	} else {
		got = bench_move_zbl(c->rx, file, OBJ_BYTES, 0);
		if (got >= 0 && fdatasync(file) < 0)
			got = -errno;
	}
	err = bench_tx_join(&c->tx, c->rx, got, c->total, work);
	row->peer_cpu = c->tx.cpu;
	return err;
}

static int direct_check(struct bench_row *row, int v, bool verify)
{
	struct direct *c = row->ctx;
	int file = v == DIRECT_BUF_NEW ? c->fresh : v == DIRECT_BUF_PLACE ? c->place : c->dfile;

	/* The floor keeps nothing: that every byte came is checked by bench_tx_join. */
	if (v == DIRECT_FLOOR)
		return 0;
	return bench_file_check(file, c->total, v == DIRECT_DD ? c->zero_crc : c->crc, verify);
}

/*
 * Bytes of each object that did not go straight from list memory to the
 * file: staged through aligned memory (bytes_staged), or bounced by an
 * older write path that counts them as copied_out and fallbacks instead.
 */
static double direct_staged_per_object(const struct bench_row *row, int v)
{
	const struct direct *c = row->ctx;
	const struct bench_result *r = &row->res[v];
	double objects = (double)r->rounds * (double)(c->total / OBJ_BYTES);
	double written = (double)r->rounds * (double)c->total;

	return (written - (double)r->stats.bytes_direct) / objects;
}

/*
 * What writing costs on top of receiving: each variant's CPU less the
 * sender's and less the floor's (receiving alone), the ring over the
 * buffered variant that draws the same kind of memory. Process CPU: the
 * buffered variants' writeback runs in kernel threads it does not count,
 * which favours them.
 */
static double direct_write_cpu_ratio(const struct bench_row *row, int v)
{
	int buffered = v == DIRECT_RING_NEW ? DIRECT_BUF_NEW : DIRECT_BUF_PLACE;
	double floor = row->res[DIRECT_FLOOR].med_own;
	double num = row->res[v].med_own - floor, den = row->res[buffered].med_own - floor;

	if (!row->res[DIRECT_FLOOR].rounds || !row->res[buffered].rounds || den <= 0)
		return -1;
	return num > 0 ? num / den : 0;
}

static uint32_t zeros_crc(size_t len)
{
	static const char zeros[BENCH_PATTERN_BYTES];
	uint32_t crc = 0;

	for (size_t n; len; len -= n) {
		n = len < sizeof(zeros) ? len : sizeof(zeros);
		crc = bench_crc(crc, zeros, n);
	}
	return crc;
}

/* The O_DIRECT file: preallocated, then written once, so every round overwrites allocated blocks. */
static int direct_file(const struct bench *b, size_t total)
{
	char path[64];
	int tmp = bench_temp_file(b, "direct"), fd;

	if (tmp < 0)
		return tmp;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", tmp);
	fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		close(tmp);
		return fd;
	}
	close(tmp);
	if (fallocate(fd, 0, 0, (off_t)total) < 0 || bench_zero_file(fd, total) < 0 ||
	    fdatasync(fd) < 0) {
		int err = -errno;

		close(fd);
		return err ? err : -EIO;
	}
	return fd;
}

static int row_direct(struct bench *b)
{
	struct direct c = { .total = bench_size(b, (size_t)1 << 30, (size_t)32 << 20), .fresh = -1 };
	struct bench_row *row;
	int ring, ring_new, dd, buf_new, buf_place, floor, raw, ret = -1;

	c.total -= c.total % OBJ_BYTES;
	if (!c.total)
		c.total = OBJ_BYTES;
	row = bench_row_new(b, "direct", BENCH_BYTES,
			    "socket -> file, TCP loopback, %zu MiB per round in 4 MiB objects, "
			    "fdatasync at the end, files in %s", c.total >> 20, b->dir);
	if (!row)
		return -1;
	row->machine_cpu = true;
	row->split_peer = true;
	c.dfile = direct_file(b, c.total);
	c.place = bench_temp_file(b, "direct-place");
	c.obj_buf = aligned_alloc(4096, OBJ_BYTES);
	if (!c.obj_buf || c.dfile < 0 || c.place < 0 ||
	    bench_write_repeated(c.place, bench_pattern(), c.total) < 0) {
		bench_fail(row, "O_DIRECT or buffered file in %s: %s", b->dir,
			   strerror(c.dfile < 0 ? -c.dfile : c.place < 0 ? -c.place : EIO));
		goto out;
	}
	c.crc = bench_pattern_crc(c.total);
	c.zero_crc = zeros_crc(c.total);
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note),
		 "ring: zbl_ring_read until a 4 MiB object is whole, zbl_ring_write(ZBL_DRAIN) "
		 "to an O_DIRECT file (fallocate, then written once before the rounds: they "
		 "overwrite allocated blocks), %d objects in flight at most, "
		 "zbl_ring_fsync(ZBL_DATASYNC) at the end. dd: a child 'dd if=/dev/zero bs=4M "
		 "oflag=direct conv=notrunc,fdatasync' into the same file. buffered: "
		 "zbl_splice_from(4 MiB) + zbl_splice_to(ZBL_DRAIN), then fdatasync, into a new "
		 "file each round (the old one is deleted right before) or a file overwritten "
		 "in place. floor: read() into one 4 MiB buffer, nothing written (what "
		 "receiving alone costs). 'new memory': the library's and malloc's kept memory "
		 "is given back to the kernel right before. Staged = bytes not written straight "
		 "from list memory (bytes_staged, or bounced and counted as copied_out). mach. = "
		 "the whole machine's busy CPU (/proc/stat). -peer = CPU less the sender "
		 "thread's, which stands in for the network (on loopback it also does the "
		 "receiving side's TCP processing). 'write CPU' = -peer less the floor's: what "
		 "writing adds to receiving", OBJS_IN_FLIGHT);
	ring = bench_add_variant(row, "zbl ring, O_DIRECT", direct_prep, direct_run,
				 direct_check);
	ring_new = bench_add_variant(row, "zbl ring, O_DIRECT, new memory", direct_prep,
				     direct_run, direct_check);
	row->variants[ring_new].memory = "new to process";
	dd = bench_add_variant(row, "dd oflag=direct", direct_prep, direct_run, direct_check);
	row->variants[dd].memory = "new to process";
	buf_new = bench_add_variant(row, "zbl splice, buffered, new file", direct_prep,
				    direct_run, direct_check);
	row->variants[buf_new].memory = "new to process";
	buf_place = bench_add_variant(row, "zbl splice, buffered, in place", direct_prep,
				      direct_run, direct_check);
	floor = bench_add_variant(row, "floor: read() only, no file", direct_prep, direct_run,
				  direct_check);
	raw = bench_add_variant(row, "raw: read() + pwrite O_DIRECT", direct_prep, direct_run,
				direct_check);
	/*
	 * The CPU target was ring <= 0.35x buffered for the whole
	 * ingest. Receiving alone (the floor: one copy out of the socket, and
	 * the loopback sender) costs more than 0.35x already, so that ratio is
	 * printed for information next to the floor's, and the target is on
	 * what writing adds to receiving. Each pairs variants that draw the
	 * same kind of memory; the new file is the comparison.
	 */
	bench_add_value_target(row, ring_new, "write CPU ring / buffered new file",
			       direct_write_cpu_ratio, 0.35);
	bench_add_target(row, ring, dd, BENCH_THRU_GE, 0.9);
	bench_add_value_target(row, ring, "staged B/object", direct_staged_per_object, 4096);
	bench_add_target(row, ring_new, buf_new, BENCH_INFO_CPU, 0);
	bench_add_target(row, floor, buf_new, BENCH_INFO_CPU, 0);
	bench_add_target(row, ring, buf_place, BENCH_INFO_CPU, 0);
	bench_add_target(row, floor, buf_place, BENCH_INFO_CPU, 0);
	bench_add_target(row, ring, raw, BENCH_INFO, 0);
	bench_add_target(row, ring, floor, BENCH_INFO, 0);
	bench_add_target(row, ring, buf_new, BENCH_INFO, 0);
	ret = bench_run_row(b, row);
out:
	if (c.fresh >= 0)
		close(c.fresh);
	if (c.dfile >= 0)
		close(c.dfile);
	if (c.place >= 0)
		close(c.place);
	free(c.obj_buf);
	row->ctx = NULL;
	return row->failed ? -1 : ret;
}

/* ------------------------------------------------------------------------ */
/* memsock: memory -> socket */

#define MEMSOCK_MSG_BYTES BENCH_PATTERN_BYTES
/* Writes a ring has queued at once. */
#define MEMSOCK_QUEUED 4

enum { MEMSOCK_WRITEV, MEMSOCK_RING };

struct memsock {
	size_t total;
	uint32_t crc;
	bool crc_on;
	zbl_t *msg;              /* 1 MiB of the pattern, by reference */
	int tx;
	struct bench_peer rx;
};

struct ring_send {
	struct ring_job job;
	struct memsock *c;
	size_t queued, done_bytes;
	int inflight;
};

static void rs_more(struct ring_send *s);

static void rs_write_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct ring_send *s = arg;

	(void)ring;
	s->inflight--;
	job_fail(&s->job, (int)res);
	if (res < 0)
		return;
	s->done_bytes += (size_t)res;
	s->job.done = s->done_bytes == s->c->total;
	rs_more(s);
}

/* Queues messages until MEMSOCK_QUEUED are in the ring or all are. */
static void rs_more(struct ring_send *s)
{
	while (!s->job.err && s->inflight < MEMSOCK_QUEUED && s->queued < s->c->total) {
		/* Flags 0: the operation takes its own references; the message stays. */
		int err = zbl_ring_write(s->job.ring, s->c->msg, s->c->tx, -1, 0, rs_write_cb, s);

		if (err < 0) {
			job_fail(&s->job, err);
			return;
		}
		s->queued += zbl_length(s->c->msg);
		s->inflight++;
	}
}

static void rs_start(struct ring_job *j)
{
	rs_more((struct ring_send *)j);
}

static int memsock_prep(struct bench_row *row, int v)
{
	struct memsock *c = row->ctx;

	(void)v;
	c->rx.crc_on = c->crc_on;
	c->rx.use_splice = !c->crc_on;
	return bench_rx_start(&c->rx, &c->tx);
}

static int memsock_run(struct bench_row *row, int v, double *work)
{
	struct memsock *c = row->ctx;
	ssize_t sent = 0, err = 0;

	if (v == MEMSOCK_WRITEV) {
		while ((size_t)sent < c->total && (err = zbl_write_fd(c->msg, c->tx)) >= 0)
			sent += err;
	} else {
		struct ring_send s = { .c = c };

		/* Freeing the ring waits for the zero-copy notifications too. */
		err = ring_job_run(&s.job, rs_start, 0);
		sent = (ssize_t)s.done_bytes;
	}
	return bench_rx_join(&c->rx, c->tx, err < 0 ? err : sent, c->total, work);
}

static int memsock_check(struct bench_row *row, int v, bool verify)
{
	struct memsock *c = row->ctx;

	(void)v;
	return bench_rx_check(&c->rx, c->total, c->crc, verify);
}

static int row_memsock(struct bench *b)
{
	struct memsock c = { .total = bench_size(b, (size_t)1 << 30, (size_t)32 << 20) };
	struct bench_row *row;
	struct zbl_caps caps;
	char memlock[32] = "unlimited";
	int wv, rg, ret;

	c.total -= c.total % MEMSOCK_MSG_BYTES;
	if (!c.total)
		c.total = MEMSOCK_MSG_BYTES;
	/* Checking content needs a copying receiver; only --quick and --verify pay for it. */
	c.crc_on = b->quick || b->verify_all;
	c.crc = bench_pattern_crc(c.total);
	zbl_caps(&caps);
	if (caps.memlock_limit != UINT64_MAX)
		snprintf(memlock, sizeof(memlock), "%llu KiB",
			 (unsigned long long)(caps.memlock_limit >> 10));
	row = bench_row_new(b, "memsock", BENCH_BYTES,
			    "memory -> socket, TCP loopback (loopback always copies), %zu MiB per "
			    "round in 1 MiB lists, receiver %s", c.total >> 20,
			    c.crc_on ? "read()s and CRCs" : "splices to /dev/null");
	if (!row)
		return -1;
	c.msg = zbl_new();
	if (!c.msg || zbl_append_ref(c.msg, bench_pattern(), MEMSOCK_MSG_BYTES, NULL, NULL) < 0) {
		bench_fail(row, "no memory for the message");
		zbl_free(c.msg);
		return -1;
	}
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note),
		 "loopback always copies: the kernel copies every zero-copy send here and says "
		 "so (zerocopy_copied), and the ring then stops asking for zero-copy on that "
		 "socket, so this row measures the ring's route and its cost, not a zero-copy "
		 "gain (a network card is needed for that). writev: zbl_write_fd of a 1 MiB "
		 "list of the caller's memory (zbl_append_ref), over and over. ring: "
		 "zbl_ring_write of the same list, %d queued at once (SEND_ZC for runs of "
		 "16 KiB or more within the pinned-memory budget; SEND_ZC here: %s, "
		 "RLIMIT_MEMLOCK %s); the ring is freed in the timed part, after the "
		 "kernel's last notification", MEMSOCK_QUEUED, caps.send_zc ? "yes" : "no",
		 memlock);
	wv = bench_add_variant(row, "zbl_write_fd (writev)", memsock_prep, memsock_run,
			       memsock_check);
	rg = bench_add_variant(row, "zbl_ring_write (SEND_ZC route)", memsock_prep, memsock_run,
			       memsock_check);
	bench_add_target(row, rg, wv, BENCH_INFO, 0);
	bench_add_target(row, rg, wv, BENCH_INFO_CPU, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
	zbl_free(c.msg);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* smallops: 4 KiB request/response */

#define SMALL_BYTES 4096

enum { SMALL_RING, SMALL_EPOLL, SMALL_SYNC };

struct small {
	size_t ops;
	int srv;                 /* the server's end, in the timed part (this thread) */
	int cli;                 /* the client's end, in a peer thread */
	bool verify;
	pthread_t client;
	size_t answered;         /* client: responses received (and right) */
	int cli_err;
	size_t served;
};

/* The client: a request, then wait for the whole response, which must be the request. */
static void *small_client(void *arg)
{
	struct small *c = arg;
	const unsigned char *pat = bench_pattern();
	char buf[SMALL_BYTES];

	c->answered = 0;
	for (size_t i = 0; i < c->ops && !c->cli_err; i++) {
		const unsigned char *req = pat + (i * SMALL_BYTES) % BENCH_PATTERN_BYTES;
		size_t got = 0;
		int err = bench_write_all(c->cli, req, SMALL_BYTES);

		if (err < 0) {
			c->cli_err = err;
			break;
		}
		while (got < SMALL_BYTES) {
			ssize_t r = read(c->cli, buf + got, SMALL_BYTES - got);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				c->cli_err = r < 0 ? -errno : -EIO;
				break;
			}
			got += (size_t)r;
		}
		if (!c->cli_err && c->verify && memcmp(buf, req, SMALL_BYTES))
			c->cli_err = -EILSEQ;
		if (!c->cli_err)
			c->answered++;
	}
	/* The server sees the end of the stream and stops. */
	shutdown(c->cli, SHUT_WR);
	return NULL;
}

/* The ring server: read a request whole, write it back (ZBL_DRAIN), read the next. */
struct ring_srv {
	struct ring_job job;     /* job.bl: the request being read */
	struct small *c;
	size_t have;
};

static void srv_read(struct ring_srv *s);

static void srv_write_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct ring_srv *s = arg;

	(void)ring;
	if (res != SMALL_BYTES)
		job_fail(&s->job, res < 0 ? (int)res : -EIO);
}

static void srv_read_cb(zbl_ring_t *ring, ssize_t res, void *arg)
{
	struct ring_srv *s = arg;
	int err;

	(void)ring;
	if (res <= 0) {
		/* The client's end of stream (after the last response) ends the loop. */
		job_fail(&s->job, res < 0 ? (int)res : s->have ? -EIO : 0);
		s->job.done = true;
		return;
	}
	s->have += (size_t)res;
	if (s->have == SMALL_BYTES) {
		err = zbl_ring_write(s->job.ring, s->job.bl, s->c->srv, -1, ZBL_DRAIN, srv_write_cb,
				     s);
		if (err < 0) {
			job_fail(&s->job, err);
			return;
		}
		s->have = 0;
		s->c->served++;
	}
	srv_read(s);
}

static void srv_read(struct ring_srv *s)
{
	job_fail(&s->job, zbl_ring_read(s->job.ring, s->job.bl, s->c->srv, -1,
					SMALL_BYTES - s->have, 0, srv_read_cb, s));
}

static void srv_start(struct ring_job *j)
{
	srv_read((struct ring_srv *)j);
}

static int serve_ring(struct small *c, unsigned flags)
{
	struct ring_srv s = { .c = c };

	return ring_job_run(&s.job, srv_start, flags);
}

/* The epoll server: a non-blocking socket, zbl_read_fd when readable, zbl_write_fd back. */
static int serve_epoll(struct small *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	zbl_t *bl = zbl_new();
	int ep = epoll_create1(EPOLL_CLOEXEC), fl = fcntl(c->srv, F_GETFL), err = 0;

	if (!bl || ep < 0 || fl < 0 || fcntl(c->srv, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, c->srv, &ev) < 0) {
		err = bl ? -errno : -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (epoll_wait(ep, &ev, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		r = zbl_read_fd(bl, c->srv, SMALL_BYTES - zbl_length(bl));
		if (r == -EAGAIN)
			continue;
		if (r <= 0) {
			err = r < 0 ? (int)r : zbl_length(bl) ? -EIO : 0;
			break;
		}
		if (zbl_length(bl) < SMALL_BYTES)
			continue;
		/* 4 KiB always fits an idle socket's buffer; wait for room if it did not. */
		while (zbl_length(bl) && err >= 0) {
			struct epoll_event out = { .events = EPOLLOUT };

			r = zbl_write_fd(bl, c->srv);
			if (r > 0)
				err = zbl_splice(bl, 0, (size_t)r, NULL);
			else if (r != -EAGAIN)
				err = (int)r;
			else if (epoll_ctl(ep, EPOLL_CTL_MOD, c->srv, &out) < 0 ||
				 epoll_wait(ep, &out, 1, -1) < 0 ||
				 epoll_ctl(ep, EPOLL_CTL_MOD, c->srv, &ev) < 0)
				err = -errno;
		}
		if (err < 0)
			break;
		c->served++;
	}
out:
	if (fl >= 0)
		fcntl(c->srv, F_SETFL, fl);
	if (ep >= 0)
		close(ep);
	zbl_free(bl);
	return err;
}

static int small_prep(struct bench_row *row, int v)
{
	struct small *c = row->ctx;
	int one = 1, err;

	(void)v;
	err = bench_tcp_pair(&c->srv, &c->cli);
	if (err < 0)
		return err;
	/* As request/response servers and clients set them. */
	setsockopt(c->srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->verify = bench_round_verifies(row);
	c->cli_err = 0;
	c->served = 0;
	return 0;
}

static int small_run(struct bench_row *row, int v, double *work)
{
	struct small *c = row->ctx;
	int err = -pthread_create(&c->client, NULL, small_client, c);

	if (err < 0) {
		close(c->srv);
		close(c->cli);
		return err;
	}
	if (v == SMALL_EPOLL)
		err = serve_epoll(c);
	else
		err = serve_ring(c, v == SMALL_SYNC ? ZBL_RING_SYNC : 0);
	/* A failed server closes its socket so the client cannot hang. */
	close(c->srv);
	pthread_join(c->client, NULL);
	close(c->cli);
	if (err < 0)
		return err;
	if (c->cli_err < 0)
		return c->cli_err;
	*work = (double)c->answered;
	return c->answered == c->ops && c->served == c->ops ? 0 : -EIO;
}

static int row_small(struct bench *b)
{
	struct small c = { .ops = bench_size(b, 50000, 2000) };
	struct bench_row *row;
	int rg, ep, sy, ret;

	row = bench_row_new(b, "smallops", BENCH_OPS,
			    "4 KiB request/response, TCP loopback, %zu round trips per round, "
			    "server in this thread, client in another", c.ops);
	if (!row)
		return -1;
	row->ctx = &c;
	snprintf(row->note, sizeof(row->note),
		 "an echo server (each request is read whole, then written back) against a "
		 "client that writes a request and reads the response; TCP_NODELAY. ring: "
		 "zbl_ring_read of what is missing of the request, zbl_ring_write(ZBL_DRAIN) "
		 "of it, and the next read at once, on io_uring or the synchronous engine "
		 "(ZBL_RING_SYNC); epoll: a non-blocking socket, "
		 "epoll_wait, zbl_read_fd, zbl_write_fd. One Mops = a million round trips; the "
		 "client's CPU counts");
	rg = bench_add_variant(row, "ring (io_uring)", small_prep, small_run, NULL);
	ep = bench_add_variant(row, "epoll + zbl_read_fd/zbl_write_fd", small_prep, small_run,
			       NULL);
	sy = bench_add_variant(row, "ring (synchronous engine)", small_prep, small_run, NULL);
	bench_add_target(row, rg, ep, BENCH_INFO, 0);
	bench_add_target(row, rg, ep, BENCH_INFO_CPU, 0);
	bench_add_target(row, sy, ep, BENCH_INFO, 0);
	bench_add_target(row, sy, ep, BENCH_INFO_CPU, 0);
	ret = bench_run_row(b, row);
	row->ctx = NULL;
	return ret;
}

int bench_rows_ring(struct bench *b)
{
	int ret = 0;

	if (bench_selected(b, "direct"))
		ret |= row_direct(b);
	if (bench_selected(b, "memsock"))
		ret |= row_memsock(b);
	if (bench_selected(b, "smallops"))
		ret |= row_small(b);
	return ret;
}
