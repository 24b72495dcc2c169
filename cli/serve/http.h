/* SPDX-License-Identifier: MIT */
/*
 * zbl serve: HTTP/1.1 request heads, ranges, object names and response
 * heads, as pure functions over bytes. Nothing here touches a socket, so it
 * is tested directly (tests/test_serve_http.c) and fuzzed
 * (fuzz/fuzz_http_head.c).
 *
 * Every byte from the network is hostile. The head parser accepts only what
 * RFC 9112 allows a server to accept without guessing, and refuses the rest
 * with a status (400, or 505 for an HTTP version other than 1.0 and 1.1)
 * and a one-line reason; a refused head ends the connection, because what
 * follows it cannot be trusted to be a next request (docs/DESIGN.md,
 * "Parsing requests strictly").
 */
#ifndef ZBL_SERVE_HTTP_H
#define ZBL_SERVE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#define HTTP_URL_MAX_BYTES		1024
#define HTTP_NAME_MAX_BYTES		255
#define HTTP_VALUE_MAX_BYTES		256
/* Object names starting with this are the server's temporary files. */
#define HTTP_TMP_PREFIX			".zbl-tmp."

enum http_method { M_OTHER, M_GET, M_HEAD, M_PUT, M_DELETE };

/* What a complete, accepted request head says. */
struct http_head {
	enum http_method method;
	char method_str[16];
	char url[HTTP_URL_MAX_BYTES + 1];
	size_t url_len;
	bool url_too_long;
	unsigned version_major, version_minor;
	bool keep_alive;
	bool has_content_length;
	uint64_t content_length;
	bool has_transfer_encoding;	/* only "chunked" gets this far */
	bool expect_continue;
	bool upgrade;
	bool has_range;
	char range[HTTP_VALUE_MAX_BYTES + 1];
	unsigned host_count;
};

/* Parser state for one connection; one head at a time. */
struct http_parser {
	llhttp_t ll;
	struct http_head *head;
	char field[32];
	size_t field_len;
	bool field_too_long;
	char value[HTTP_VALUE_MAX_BYTES + 1];
	size_t value_len;
	bool value_too_long;
	/* The raw-byte check carried across calls: the byte before the next one. */
	char prev;
	size_t line_bytes;		/* bytes of the current line so far */
	bool request_line_done;		/* past it (the empty lines before it skipped) */
	unsigned request_line_spaces;
	size_t protocol_bytes;		/* of "HTTP/" matched after the second SP */
	/* The HTTP-version as llhttp read it ("1.1"), to tell a 505 from a 400. */
	char version[4];
	size_t version_len;
	/* Set when the head is refused. */
	int status;
	const char *reason;
};

enum http_result {
	HTTP_MORE,	/* every byte given was taken; the head is not complete */
	HTTP_DONE,	/* the head is complete and accepted */
	HTTP_BAD,	/* refused: p->status and p->reason say why */
};

/* Prepares @p to parse one request head into @head (which it clears). */
void http_parser_start(struct http_parser *p, struct http_head *head);

/*
 * Feeds the next @len bytes of the connection. Returns HTTP_MORE when all
 * were taken and more are needed; HTTP_DONE with *@used set to the bytes of
 * @buf that belonged to the head (the rest is body or the next request);
 * HTTP_BAD when the head is refused. After HTTP_DONE or HTTP_BAD, start a
 * new head with http_parser_start().
 */
enum http_result http_parse(struct http_parser *p, const char *buf, size_t len, size_t *used);

/*
 * The object name in @head's URL: "/NAME", NAME 1..255 of [A-Za-z0-9._-],
 * not "." or "..", and not starting with HTTP_TMP_PREFIX; a query string is
 * ignored. No percent-decoding is done, so "%2e%2e" and "%2f" are simply
 * invalid. Returns false if the URL names no object.
 */
bool http_url_to_name(const struct http_head *head, char name[HTTP_NAME_MAX_BYTES + 1]);

/*
 * Parses "bytes=a-b", "bytes=a-" or "bytes=-n" against an object of @size.
 * Returns 1 with [*first, *last] set, 0 to ignore the header (not a single
 * byte range we understand: RFC 9110 lets a server then send everything), or
 * -1 if unsatisfiable.
 */
int http_parse_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last);

/* The reason phrase of a status code. */
const char *http_reason(int status);

/*
 * Formats a response head into @buf (size @len): status line, Server,
 * Content-Length, @extra (whole header lines, may be NULL), Connection:
 * close when @close. Returns its length, or -1 if it does not fit.
 */
int http_format_head(char *buf, size_t len, int status, uint64_t content_length,
		     const char *extra, bool close);

#endif /* ZBL_SERVE_HTTP_H */
