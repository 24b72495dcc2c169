/* SPDX-License-Identifier: MIT */
/*
 * zbl_hexdump: the contents in exactly the format of `hexdump -C`.
 */
#include "zbl_int.h"

#define ROW_BYTES 16

static void put_row(FILE *out, size_t off, const unsigned char *row, size_t n)
{
	char line[96];
	char *p = line;

	p += sprintf(p, "%08zx  ", off);
	for (size_t i = 0; i < ROW_BYTES; i++) {
		if (i == ROW_BYTES / 2)
			*p++ = ' ';
		if (i < n)
			p += sprintf(p, "%02x ", row[i]);
		else
			p += sprintf(p, "   ");
	}
	*p++ = ' ';
	*p++ = '|';
	for (size_t i = 0; i < n; i++)
		*p++ = row[i] >= 0x20 && row[i] < 0x7f ? (char)row[i] : '.';
	*p++ = '|';
	*p++ = '\n';
	fwrite(line, 1, (size_t)(p - line), out);
}

int zbl_hexdump(const zbl_t *bl, FILE *out)
{
	unsigned char row[ROW_BYTES], prev[ROW_BYTES];
	bool have_prev = false, folded = false;
	zbl_iter_t it;
	size_t off = 0;

	if (!bl || !out)
		return -EINVAL;
	if (!bl->len)
		return 0;
	zbl_iter_init(&it, bl, 0);
	while (off < bl->len) {
		size_t n = bl->len - off < ROW_BYTES ? bl->len - off : ROW_BYTES;
		int err = zbl_iter_copy(&it, n, row);
		if (err < 0)
			return err;
		/* Like hexdump, a full row equal to the row before is folded into one '*'. */
		if (n == ROW_BYTES && have_prev && memcmp(row, prev, ROW_BYTES) == 0) {
			if (!folded)
				fputs("*\n", out);
			folded = true;
		} else {
			put_row(out, off, row, n);
			folded = false;
		}
		memcpy(prev, row, ROW_BYTES);
		have_prev = n == ROW_BYTES;
		off += n;
	}
	fprintf(out, "%08zx\n", off);
	return ferror(out) ? -EIO : 0;
}
