/* SPDX-License-Identifier: MIT */
/*
 * Probe: the O_DIRECT alignment each path's file system asks for
 * (statx STATX_DIOALIGN; ask about a regular file, directories give none).
 * Build and run: cc -O2 -o /tmp/dioalign tools/probes/dioalign.c &&
 *   touch /tmp/f /work/f && /tmp/dioalign /tmp/f /work/f
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct statx st;
		if (statx(AT_FDCWD, argv[i], 0, STATX_DIOALIGN, &st) < 0) {
			perror(argv[i]);
			continue;
		}
		if (!(st.stx_mask & STATX_DIOALIGN))
			printf("%s: no STATX_DIOALIGN answer\n", argv[i]);
		else
			printf("%s: memory alignment %u B, offset alignment %u B\n", argv[i],
			       st.stx_dio_mem_align, st.stx_dio_offset_align);
	}
	return 0;
}
