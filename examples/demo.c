/* SPDX-License-Identifier: MIT */
/*
 * A first look at zbl: build a list from copies, borrowed memory and a file
 * range, slice it without copying, and print what happened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zbl.h"

static void released(void *ctx)
{
	printf("  release callback: \"%s\" is no longer referenced\n", (const char *)ctx);
}

static void print_stats(void)
{
	struct zbl_stats st;

	zbl_stats_get(&st);
	printf("  copied in %llu, spliced in %llu, copied out %llu, spliced out %llu,"
	       " materialized %llu, fallbacks %llu\n",
	       (unsigned long long)st.bytes_copied_in, (unsigned long long)st.bytes_spliced_in,
	       (unsigned long long)st.bytes_copied_out, (unsigned long long)st.bytes_spliced_out,
	       (unsigned long long)st.bytes_materialized, (unsigned long long)st.fallbacks);
}

int main(void)
{
	static const char borrowed[] = "borrowed memory, not copied; ";
	char path[] = "/tmp/zbl-demo-XXXXXX";
	zbl_t *bl = zbl_new(), *part = zbl_new();
	int fd, err;

	if (!bl || !part)
		return 1;
	fd = mkstemp(path);
	if (fd < 0 || write(fd, "and a file range read lazily.\n", 30) != 30)
		return 1;
	unlink(path);

	printf("zbl %s demo\n", ZBL_VERSION_STRING);
	zbl_append(bl, "Hello from a copy; ", 19);
	zbl_append_ref(bl, borrowed, strlen(borrowed), released, (void *)borrowed);
	err = zbl_append_file(bl, fd, 0, 30);
	if (err < 0) {
		fprintf(stderr, "zbl_append_file: %s\n", strerror(-err));
		return 1;
	}
	close(fd); /* the list keeps its own descriptor */
	printf("list: %zu bytes in %zu segments, %zu bytes still only in the kernel\n",
	       zbl_length(bl), zbl_segments(bl), zbl_kernel_bytes(bl));
	print_stats();

	zbl_substr_of(part, bl, 6, 40);
	printf("substr_of(6, 40) shares storage: %zu bytes in %zu segments\n",
	       zbl_length(part), zbl_segments(part));
	printf("crc32c(list, 0) = 0x%08x\n", zbl_crc32c(bl, 0));
	printf("after reading it, kernel bytes: %zu\n", zbl_kernel_bytes(bl));
	zbl_hexdump(bl, stdout);

	printf("writing the list to stdout:\n  ");
	fflush(stdout);
	if (zbl_write_fd(bl, STDOUT_FILENO) < 0)
		return 1;
	print_stats();

	zbl_free(bl);
	printf("freed the list; the slice still holds the borrowed bytes\n");
	zbl_free(part);
	return 0;
}
