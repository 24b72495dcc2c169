/* SPDX-License-Identifier: MIT */
/*
 * Setting up the io_uring engine, and finding out once per process whether
 * it can be had at all and why not: kernel.io_uring_disabled, a seccomp
 * policy that refuses io_uring_setup (Docker since 25.0, Kubernetes'
 * default profile), or a kernel without it. Layer 5 (see zbl_int.h); ring.c
 * runs the engine.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ring_int.h"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_err;
static bool probe_send_zc;
static char probe_why[160];

static void probe(void)
{
	struct io_uring_params p = { 0 };
	struct io_uring ring;
	long disabled = zbl__read_proc_long("/proc/sys/kernel/io_uring_disabled", 0);
	int err = zbl__sys_uring_init(2, &ring, &p);

	if (err < 0) {
		probe_err = err;
		if (disabled == 2)
			snprintf(probe_why, sizeof(probe_why),
				 "kernel.io_uring_disabled is 2 (io_uring_setup: %s)", strerror(-err));
		else if (disabled == 1 && err == -EPERM)
			snprintf(probe_why, sizeof(probe_why),
				 "kernel.io_uring_disabled is 1 and this process is not in "
				 "kernel.io_uring_group (EPERM)");
		else if (err == -EPERM)
			snprintf(probe_why, sizeof(probe_why),
				 "io_uring_setup refused (EPERM): a seccomp or container policy");
		else if (err == -ENOSYS)
			snprintf(probe_why, sizeof(probe_why), "this kernel has no io_uring (ENOSYS)");
		else
			snprintf(probe_why, sizeof(probe_why), "io_uring_setup failed: %s",
				 strerror(-err));
		return;
	}
	struct io_uring_probe *pr = zbl__sys_uring_probe(&ring);
	/*
	 * SENDMSG_ZC came with 6.1; the usage report ring.c asks for with 6.2:
	 * a kernel in between refuses the first send with EINVAL, and ring.c
	 * then stops using zero-copy.
	 */
	probe_send_zc = pr && io_uring_opcode_supported(pr, IORING_OP_SENDMSG_ZC);
	if (pr)
		io_uring_free_probe(pr);
	io_uring_queue_exit(&ring);
}

int zbl__uring_available(const char **why_not, bool *send_zc)
{
	pthread_once(&probe_once, probe);
	if (why_not)
		*why_not = probe_err ? probe_why : NULL;
	if (send_zc)
		*send_zc = !probe_err && probe_send_zc;
	return probe_err;
}

int zbl__uring_init(struct zbl_ring *r, unsigned entries)
{
	struct io_uring_params p = { 0 };
	int err;

	if (zbl__uring_available(NULL, &r->send_zc) < 0)
		return -ENOSYS;
	/*
	 * Completions may outnumber requests (a zero-copy send has two), so
	 * the completion queue is four times the submission queue.
	 */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = entries * 4;
	err = zbl__sys_uring_init(entries, &r->ring, &p);
	if (err < 0)
		return err;
	r->entries = entries;
	return 0;
}

void zbl__uring_exit(struct zbl_ring *r)
{
	io_uring_queue_exit(&r->ring);
}
