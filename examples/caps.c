/* SPDX-License-Identifier: MIT */
/* Prints what this kernel and user allow zbl to do (zbl_caps). */
#include <stdio.h>

#include "zbl.h"

int main(void)
{
	struct zbl_caps c;

	if (zbl_caps(&c) < 0)
		return 1;
	printf("pipe-max-size          %zu bytes\n", c.pipe_max_size);
	printf("pipe size used         %zu bytes\n", c.pipe_bytes);
	printf("pipe-user-pages-soft   %zu pages (%zu MiB per user)%s\n", c.pipe_user_pages_soft,
	       c.pipe_user_pages_soft * 4096 >> 20,
	       c.budget_applies ? "" : "; not binding for this process (capability)");
	printf("pipe bytes held now    %zu\n", c.pipe_bytes_held);
	printf("single-fd pipes        %s\n", c.single_fd_pipes ? "yes (/proc/self/fd reopen)" : "no (two fds per pipe)");
	printf("file->pipe splice      %s\n", c.splice_file_aliases ? "aliases page cache (later file writes show through)" : "copies");
	printf("vmsplice               %s\n", c.vmsplice_aliases ? "aliases user pages" : "copies");
	return 0;
}
