/* SPDX-License-Identifier: MIT */
/* zbl caps: what this kernel and user allow the library to do (zbl_caps). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "zbl.h"
#include "cli.h"

int cli_caps(int argc, char **argv)
{
	struct zbl_caps c;
	int err;

	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			printf("usage: zbl caps\n");
			return 0;
		}
		fprintf(stderr, "usage: zbl caps\n");
		return CLI_EXIT_USAGE;
	}
	err = zbl_caps(&c);
	if (err < 0) {
		fprintf(stderr, "zbl caps: %s\n", strerror(-err));
		return 1;
	}
	printf("zbl %s\n", ZBL_VERSION_STRING);
	printf("pipe-max-size          %zu bytes\n", c.pipe_max_size);
	printf("pipe size used         %zu bytes\n", c.pipe_bytes);
	if (c.pipe_user_pages_soft)
		printf("pipe-user-pages-soft   %zu pages (%zu MiB per user)%s\n",
		       c.pipe_user_pages_soft, c.pipe_user_pages_soft * 4096 >> 20,
		       c.budget_applies ? "" : "; not binding for this process (capability)");
	else
		printf("pipe-user-pages-soft   unlimited or unknown\n");
	printf("pipe bytes held now    %zu\n", c.pipe_bytes_held);
	printf("single-fd pipes        %s\n",
	       c.single_fd_pipes ? "yes (/proc/self/fd reopen)" : "no (two fds per pipe)");
	printf("file->pipe splice      %s\n",
	       c.splice_file_aliases ? "aliases page cache (later file writes show through)" : "copies");
	printf("vmsplice               %s\n",
	       c.vmsplice_aliases ? "aliases user pages" : "copies");
	if (c.io_uring)
		printf("io_uring               yes (rings use it)\n");
	else
		printf("io_uring               no: %s (rings use the synchronous engine)\n",
		       c.io_uring_why_not);
	printf("zero-copy sends        %s\n", c.send_zc ? "yes (io_uring SENDMSG_ZC)" : "no");
	if (c.memlock_limit == UINT64_MAX)
		printf("RLIMIT_MEMLOCK         unlimited\n");
	else
		printf("RLIMIT_MEMLOCK         %" PRIu64 " bytes (pins of zero-copy sends in flight: at most half)\n",
		       c.memlock_limit);
	return 0;
}
