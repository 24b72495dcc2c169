/* SPDX-License-Identifier: MIT */
/*
 * no_io_uring PROGRAM [ARGS...]: runs PROGRAM under a seccomp filter that
 * answers io_uring_setup with EPERM, as Docker and Kubernetes' default
 * profiles do (tests/seccomp_util.h). The filter stays for everything
 * PROGRAM starts, so a whole test script can run inside it: the object
 * server's tests run this way to check its route without io_uring.
 * Exits 77 (skip) where the filter cannot be installed.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "seccomp_util.h"

int main(int argc, char **argv)
{
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: no_io_uring PROGRAM [ARGS...]\n");
		return 2;
	}
	err = zs_deny_io_uring_setup();
	if (err < 0) {
		printf("SKIP: cannot install the seccomp filter: %s\n", strerror(-err));
		return 77;
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
