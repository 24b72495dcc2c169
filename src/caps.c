/* SPDX-License-Identifier: MIT */
/*
 * zbl_caps: what this kernel and user allow, found once by probing.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sys/resource.h>

#include "ring_int.h"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool file_aliases, vm_aliases;

/* Whether bytes put in a pipe show a later write to their source. */
static void probe(void)
{
	int p[2];
	char c = 0;

	/* file -> pipe: splice a byte of a temporary file, then change the file. */
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 && pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
		loff_t off = 0;
		if (pwrite(fd, "A", 1, 0) == 1 && splice(fd, &off, p[1], NULL, 1, 0) == 1 &&
		    pwrite(fd, "B", 1, 0) == 1 && read(p[0], &c, 1) == 1)
			file_aliases = c == 'B';
		close(p[0]);
		close(p[1]);
	}
	if (fd >= 0)
		close(fd);

	/* vmsplice: give a page to a pipe, then write the page. */
	char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page != MAP_FAILED && pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
		struct iovec iov = { page, 1 };
		page[0] = 'A';
		if (vmsplice(p[1], &iov, 1, 0) == 1) {
			page[0] = 'B';
			if (read(p[0], &c, 1) == 1)
				vm_aliases = c == 'B';
		}
		close(p[0]);
		close(p[1]);
	}
	if (page != MAP_FAILED)
		munmap(page, 4096);
}

/* Whether the budget binds: CAP_SYS_RESOURCE or CAP_SYS_ADMIN exempt a process. */
static bool budget_applies(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long eff = 0;

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return !(eff & (1ull << 24)) && !(eff & (1ull << 21)); /* SYS_RESOURCE, SYS_ADMIN */
}

int zbl_caps(struct zbl_caps *out)
{
	struct rlimit rl;
	long v;

	if (!out)
		return -EINVAL;
	pthread_once(&probe_once, probe);
	memset(out, 0, sizeof(*out));
	v = zbl__read_proc_long("/proc/sys/fs/pipe-max-size", -1);
	out->pipe_max_size = v > 0 ? (size_t)v : 0;
	out->pipe_bytes = zbl__pipe_bytes_max();
	v = zbl__read_proc_long("/proc/sys/fs/pipe-user-pages-soft", -1);
	out->pipe_user_pages_soft = v > 0 ? (size_t)v : 0;
	out->pipe_bytes_held = zbl__held_pipe_bytes();
	out->budget_applies = budget_applies();
	out->single_fd_pipes = zbl__pipes_single_fd();
	out->splice_file_aliases = file_aliases;
	out->vmsplice_aliases = vm_aliases;
	out->io_uring = zbl__uring_available(&out->io_uring_why_not, &out->send_zc) == 0;
	out->memlock_limit = UINT64_MAX;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		out->memlock_limit = rl.rlim_cur;
	return 0;
}
