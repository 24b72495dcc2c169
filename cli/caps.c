/* SPDX-License-Identifier: MIT */
/* zbl caps: what this kernel and user allow the library to do (zbl_caps). */
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
	return 0;
}
