/* SPDX-License-Identifier: MIT */
/*
 * A first look at zbl: build a list from copies, borrowed memory and a file
 * range, slice it without copying, and print what happened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
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

#define STREAM_BYTES ((size_t)64 << 20)

static void *send_stream(void *arg)
{
	int fd = *(int *)arg;
	static char buf[1 << 16];
	size_t left = STREAM_BYTES;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 131);
	while (left) {
		ssize_t w = write(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (w <= 0)
			break;
		left -= (size_t)w;
	}
	close(fd);
	return NULL;
}

/* The main job: bytes from a socket to a file as kernel pages, never copied through memory. */
static int socket_to_file(void)
{
	char path[] = "/tmp/zbl-demo-out-XXXXXX";
	int sv[2], out = mkstemp(path);
	zbl_t *bl = zbl_new();
	pthread_t t;
	size_t moved = 0;
	ssize_t r;

	if (out < 0 || !bl || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 1;
	unlink(path);
	zbl_stats_reset();
	pthread_create(&t, NULL, send_stream, &sv[1]);
	printf("\nsocket -> list -> file, %zu MiB in 4 MiB messages:\n", STREAM_BYTES >> 20);
	while ((r = zbl_splice_from(bl, sv[0], NULL, (size_t)4 << 20, 0)) > 0) {
		if (zbl_kernel_bytes(bl) != zbl_length(bl))
			printf("  (some bytes were copied into memory)\n");
		if (zbl_splice_to(bl, out, NULL, ZBL_DRAIN) < 0)
			return 1;
		moved += (size_t)r;
	}
	close(sv[0]); /* unblocks the sender if we stopped early */
	pthread_join(t, NULL);
	close(out);
	zbl_free(bl);
	printf("  moved %zu bytes (%s)\n", moved, r == 0 ? "to end of stream" : strerror((int)-r));
	print_stats();
	return moved == STREAM_BYTES ? 0 : 1;
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
	return socket_to_file();
}
