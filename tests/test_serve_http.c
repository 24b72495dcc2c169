/* SPDX-License-Identifier: MIT */
/*
 * zbl serve's HTTP wire format (cli/serve/http.c): the request-head parser,
 * object names from URLs, Range values and response heads. The parser is fed
 * bytes as a socket would deliver them, whole or in pieces, and must accept
 * exactly what RFC 9112 lets a server accept, refusing the rest with the
 * status the RFC asks for.
 */
#include "zbl_test.h"

#include "http.h"

/* What one head parse gave. */
struct parsed {
	enum http_result r;
	size_t used;
	int status;
	const char *reason;
	struct http_head head;
};

/* Feeds @len bytes to a fresh parser in pieces of @piece bytes (0: all at once). */
static struct parsed parse_pieces(const char *bytes, size_t len, size_t piece)
{
	struct parsed out = { .r = HTTP_MORE };
	struct http_parser p;

	http_parser_start(&p, &out.head);
	for (size_t off = 0; off < len && out.r == HTTP_MORE;) {
		size_t n = piece == 0 || piece > len - off ? len - off : piece;
		size_t used = 0;

		out.r = http_parse(&p, bytes + off, n, &used);
		if (out.r == HTTP_DONE)
			out.used = off + used;
		off += n;
	}
	out.status = p.status;
	out.reason = p.reason;
	return out;
}

/* A string literal, NUL bytes inside it included, in one call. */
#define PARSE(lit) parse_pieces((lit), sizeof(lit) - 1, 0)

static const char *result_name(enum http_result r)
{
	switch (r) {
	case HTTP_MORE: return "HTTP_MORE";
	case HTTP_DONE: return "HTTP_DONE";
	case HTTP_BAD: return "HTTP_BAD";
	}
	return "?";
}

/* Asserts the result, printing both and the parser's reason for a refusal. */
#define assert_result(pr, expected) do {                                        \
	const struct parsed *zt_p_ = &(pr);                                     \
	if (zt_p_->r != (expected))                                             \
		fail_msg("http_parse gave %s (status %d: %s), expected %s",     \
			 result_name(zt_p_->r), zt_p_->status,                  \
			 zt_p_->reason ? zt_p_->reason : "no reason",           \
			 result_name(expected));                                \
} while (0)

/* Asserts a refusal with @status, printing the reason if the status differs. */
#define assert_refused(pr, expected_status) do {                                \
	const struct parsed *zt_r_ = &(pr);                                     \
	assert_result(*zt_r_, HTTP_BAD);                                        \
	if (zt_r_->status != (expected_status))                                 \
		fail_msg("refused with %d (%s), expected %d", zt_r_->status,    \
			 zt_r_->reason ? zt_r_->reason : "no reason",           \
			 (expected_status));                                    \
	assert_non_null(zt_r_->reason);                                         \
} while (0)

/* ------------------------------------------------------------------------ */
/* Heads that are accepted, and what they say */

static void test_minimal_get_with_host_in_http_1_1_is_accepted(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_int_equal(pr.head.method, M_GET);
	assert_string_equal(pr.head.method_str, "GET");
	assert_string_equal(pr.head.url, "/a");
	assert_int_equal(pr.head.version_major, 1);
	assert_int_equal(pr.head.version_minor, 1);
	assert_int_equal(pr.head.host_count, 1);
	assert_false(pr.head.has_content_length);
	assert_false(pr.head.has_transfer_encoding);
}

static void test_http_1_0_without_host_is_accepted(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.0\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_int_equal(pr.head.version_minor, 0);
	assert_int_equal(pr.head.host_count, 0);
}

static void test_put_head_delete_are_told_apart(void **state)
{
	(void)state;
	struct parsed put = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
	struct parsed head = PARSE("HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n");
	struct parsed del = PARSE("DELETE /a HTTP/1.1\r\nHost: h\r\n\r\n");
	struct parsed other = PARSE("OPTIONS /a HTTP/1.1\r\nHost: h\r\n\r\n");

	assert_result(put, HTTP_DONE);
	assert_int_equal(put.head.method, M_PUT);
	assert_result(head, HTTP_DONE);
	assert_int_equal(head.head.method, M_HEAD);
	assert_result(del, HTTP_DONE);
	assert_int_equal(del.head.method, M_DELETE);
	assert_result(other, HTTP_DONE);
	assert_int_equal(other.head.method, M_OTHER);
	assert_string_equal(other.head.method_str, "OPTIONS");
}

static void test_http_1_1_keeps_the_connection_alive_by_default(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_true(pr.head.keep_alive);
}

static void test_http_1_1_connection_close_ends_keep_alive(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_false(pr.head.keep_alive);
}

static void test_http_1_0_closes_the_connection_by_default(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.0\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_false(pr.head.keep_alive);
}

static void test_http_1_0_connection_keep_alive_keeps_it_alive(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_true(pr.head.keep_alive);
}

static void test_content_length_is_parsed(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 123456789012\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_true(pr.head.has_content_length);
	assert_int_equal(pr.head.content_length, 123456789012ULL);
}

static void test_chunked_transfer_encoding_is_accepted(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_true(pr.head.has_transfer_encoding);
	assert_false(pr.head.has_content_length);
}

static void test_range_and_expect_are_kept(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2 \r\n"
				 "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_true(pr.head.has_range);
	assert_string_equal(pr.head.range, "bytes=1-2");
	assert_true(pr.head.expect_continue);
}

static void test_used_ends_right_after_the_blank_line(void **state)
{
	(void)state;
	static const char head[] = "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
	static const char bytes[] = "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
	struct parsed pr = PARSE(bytes);

	assert_result(pr, HTTP_DONE);
	assert_int_equal(pr.used, sizeof(head) - 1);
	assert_memory_equal(bytes + pr.used, "hello", 5);
}

static void test_used_stops_at_the_first_of_two_pipelined_heads(void **state)
{
	(void)state;
	static const char first[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");

	assert_result(pr, HTTP_DONE);
	assert_int_equal(pr.used, sizeof(first) - 1);
	assert_string_equal(pr.head.url, "/a");
}

static void test_empty_lines_before_the_request_line_are_skipped(void **state)
{
	(void)state;
	static const char bytes[] = "\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\nX: a  b\r\n\r\n";
	struct parsed pr = PARSE(bytes);

	/* RFC 9112 2.2: a server SHOULD ignore at least one empty line there. */
	assert_result(pr, HTTP_DONE);
	assert_string_equal(pr.head.url, "/a");
	assert_int_equal(pr.used, sizeof(bytes) - 1);
}

static void test_an_incomplete_head_wants_more(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\n");

	assert_result(pr, HTTP_MORE);
	assert_int_equal(pr.status, 0);
}

/* Heads of every kind, each fed whole and then in pieces of 1, 2, 3 and 7 bytes. */
static const struct {
	const char *text;
	enum http_result r;
	int status;
} piece_cases[] = {
	{ "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_DONE, 0 },
	{ "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", HTTP_DONE, 0 },
	{ "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP_DONE, 0 },
	{ "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b", HTTP_DONE, 0 },
	{ "GET /a HTTP/1.1\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/1.1\r\nHost : h\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", HTTP_BAD, 400 },
	{ "GET  /a HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a RTSP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a\r\n\r\n", HTTP_BAD, 505 },
	{ "\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_DONE, 0 },
	{ "GET /a HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/1.1\nHost: h\n\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/2.0\r\nHost: h\r\n\r\n", HTTP_BAD, 505 },
	{ "GET /a HTTP/1.2\r\nHost: h\r\n\r\n", HTTP_BAD, 505 },
	{ "GET /a HTTP/3.1\r\nHost: h\r\n\r\n", HTTP_BAD, 505 },
	{ "GET /a HTTP/1.1\rHost: h\r\n\r\n", HTTP_BAD, 400 },
	{ "GET /a HTTP/1.x\r\nHost: h\r\n\r\n", HTTP_BAD, 400 },
	{ "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_BAD, 501 },
	{ "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_BAD, 400 },
};

static void test_byte_at_a_time_gives_the_same_result_as_one_call(void **state)
{
	(void)state;
	static const size_t pieces[] = { 1, 2, 3, 7 };

	for (size_t i = 0; i < sizeof(piece_cases) / sizeof(piece_cases[0]); i++) {
		const char *t = piece_cases[i].text;
		struct parsed whole = parse_pieces(t, strlen(t), 0);

		if (whole.r != piece_cases[i].r || whole.status != piece_cases[i].status)
			fail_msg("case %zu in one call: %s %d (%s), expected %s %d", i,
				 result_name(whole.r), whole.status, whole.reason,
				 result_name(piece_cases[i].r), piece_cases[i].status);
		for (size_t j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
			struct parsed cut = parse_pieces(t, strlen(t), pieces[j]);

			if (cut.r != whole.r || cut.status != whole.status || cut.used != whole.used)
				fail_msg("case %zu in %zu-byte pieces: %s %d (%s) used %zu, in one "
					 "call: %s %d (%s) used %zu", i, pieces[j],
					 result_name(cut.r), cut.status, cut.reason, cut.used,
					 result_name(whole.r), whole.status, whole.reason,
					 whole.used);
			if (whole.r == HTTP_DONE) {
				assert_string_equal(cut.head.url, whole.head.url);
				assert_int_equal(cut.head.content_length, whole.head.content_length);
				assert_int_equal(cut.head.keep_alive, whole.head.keep_alive);
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Heads that are refused */

static void test_http_1_1_without_host_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nAccept: */*\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_repeated_host_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nhost: h\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_repeated_host_in_http_1_0_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.0\r\nHost: h\r\nHost: i\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_host_that_is_not_a_host_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h/x\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_whitespace_before_the_colon_is_refused_400(void **state)
{
	(void)state;
	struct parsed space = PARSE("GET /a HTTP/1.1\r\nHost : h\r\n\r\n");
	struct parsed tab = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A\t: b\r\n\r\n");

	assert_refused(space, 400);
	assert_refused(tab, 400);
}

static void test_header_line_without_a_name_is_refused_400(void **state)
{
	(void)state;
	struct parsed value = PARSE("GET /a HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n");
	struct parsed empty = PARSE("GET /a HTTP/1.1\r\n:\r\nHost: h\r\n\r\n");

	assert_refused(value, 400);
	assert_refused(empty, 400);
}

static void test_content_length_with_transfer_encoding_is_refused_400(void **state)
{
	(void)state;
	struct parsed cl_first = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
				       "Transfer-Encoding: chunked\r\n\r\n");
	struct parsed te_first = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
				       "Content-Length: 3\r\n\r\n");

	assert_refused(cl_first, 400);
	assert_refused(te_first, 400);
}

static void test_differing_duplicate_content_lengths_are_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
				 "Content-Length: 4\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_content_length_that_is_not_digits_is_refused_400(void **state)
{
	(void)state;
	struct parsed sign = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n");
	struct parsed list = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n");
	struct parsed over = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\n"
				   "Content-Length: 18446744073709551616\r\n\r\n");

	assert_refused(sign, 400);
	assert_refused(list, 400);
	assert_refused(over, 400);
}

static void test_obs_fold_is_refused_400(void **state)
{
	(void)state;
	struct parsed space = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n");
	struct parsed tab = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\tc\r\n\r\n");

	assert_refused(space, 400);
	assert_refused(tab, 400);
}

static void test_bare_cr_is_refused_400(void **state)
{
	(void)state;
	struct parsed line = PARSE("GET /a HTTP/1.1\rHost: h\r\n\r\n");
	struct parsed value = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\rc\r\n\r\n");
	struct parsed end = PARSE("GET /a HTTP/1.1\r\nHost: h\r\n\rX");

	/* Not a 505: the version, 1.1, is served; the line around it is broken. */
	assert_refused(line, 400);
	assert_refused(value, 400);
	assert_refused(end, 400);
}

static void test_bare_lf_is_refused_400(void **state)
{
	(void)state;
	struct parsed line = PARSE("GET /a HTTP/1.1\nHost: h\r\n\r\n");
	struct parsed field = PARSE("GET /a HTTP/1.1\r\nHost: h\n\r\n");
	struct parsed end = PARSE("GET /a HTTP/1.1\r\nHost: h\r\n\n");

	assert_refused(line, 400);
	assert_refused(field, 400);
	assert_refused(end, 400);
}

static void test_nul_in_the_request_line_is_refused_400(void **state)
{
	(void)state;
	struct parsed url = PARSE("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n");
	struct parsed method = PARSE("GE\0T /a HTTP/1.1\r\nHost: h\r\n\r\n");

	assert_refused(url, 400);
	assert_refused(method, 400);
}

static void test_nul_in_a_header_name_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-\0A: b\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_nul_in_a_header_value_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\0c\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_control_character_in_a_header_value_is_refused_400(void **state)
{
	(void)state;
	struct parsed ctl = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\001c\r\n\r\n");
	struct parsed del = PARSE("GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\177c\r\n\r\n");

	assert_refused(ctl, 400);
	assert_refused(del, 400);
}

static void test_http_2_0_is_refused_505(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/2.0\r\nHost: h\r\n\r\n");

	assert_refused(pr, 505);
}

static void test_http_1_2_is_refused_505(void **state)
{
	(void)state;
	struct parsed pr = PARSE("GET /a HTTP/1.2\r\nHost: h\r\n\r\n");

	assert_refused(pr, 505);
}

static void test_two_spaces_in_the_request_line_are_refused_400(void **state)
{
	(void)state;
	struct parsed method = PARSE("GET  /a HTTP/1.1\r\nHost: h\r\n\r\n");
	struct parsed target = PARSE("GET /a  HTTP/1.1\r\nHost: h\r\n\r\n");

	assert_refused(method, 400);
	assert_refused(target, 400);
}

static void test_protocol_other_than_http_is_refused_400(void **state)
{
	(void)state;
	struct parsed rtsp = PARSE("GET /a RTSP/1.0\r\n\r\n");
	struct parsed ice = PARSE("SOURCE /a ICE/1.1\r\nHost: h\r\n\r\n");

	/* llhttp 8.1 reads both, and would report them as HTTP/1.0 and 1.1. */
	assert_refused(rtsp, 400);
	assert_refused(ice, 400);
}

static void test_malformed_version_is_refused_400(void **state)
{
	(void)state;
	struct parsed lower = PARSE("GET /a http/1.1\r\nHost: h\r\n\r\n");
	struct parsed digits = PARSE("GET /a HTTP/1.10\r\nHost: h\r\n\r\n");
	struct parsed space = PARSE("GET /a HTTP/1.1 \r\nHost: h\r\n\r\n");

	assert_refused(lower, 400);
	assert_refused(digits, 400);
	assert_refused(space, 400);
}

static void test_unknown_coding_before_final_chunked_is_refused_501(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");

	assert_refused(pr, 501);
}

static void test_transfer_encoding_not_ending_in_chunked_is_refused_400(void **state)
{
	(void)state;
	struct parsed gzip = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n");
	struct parsed after = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");

	assert_refused(gzip, 400);
	assert_refused(after, 400);
}

static void test_repeated_transfer_encoding_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n");

	assert_refused(pr, 400);
}

static void test_transfer_encoding_in_http_1_0_is_refused_400(void **state)
{
	(void)state;
	struct parsed pr = PARSE("PUT /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");

	assert_refused(pr, 400);
}

/* ------------------------------------------------------------------------ */
/* http_url_to_name */

/* http_url_to_name() of a head whose URL is @url. */
static bool name_of(const char *url, char name[HTTP_NAME_MAX_BYTES + 1])
{
	struct http_head head = { 0 };

	assert_true(strlen(url) <= HTTP_URL_MAX_BYTES);
	strcpy(head.url, url);
	head.url_len = strlen(url);
	name[0] = '\0';
	return http_url_to_name(&head, name);
}

static void test_url_to_name_accepts_a_plain_name(void **state)
{
	(void)state;
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_true(name_of("/Obj_1-2.tar.gz", name));
	assert_string_equal(name, "Obj_1-2.tar.gz");
}

static void test_url_to_name_ignores_the_query_string(void **state)
{
	(void)state;
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_true(name_of("/obj?x=1&y=/../..", name));
	assert_string_equal(name, "obj");
}

static void test_url_to_name_refuses_dot_and_dot_dot(void **state)
{
	(void)state;
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_false(name_of("/.", name));
	assert_false(name_of("/..", name));
	assert_false(name_of("/..?x", name));
	/* Names that only contain dots are fine when they are not those two. */
	assert_true(name_of("/...", name));
	assert_string_equal(name, "...");
}

static void test_url_to_name_refuses_percent_encoding(void **state)
{
	(void)state;
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_false(name_of("/%2e", name));
	assert_false(name_of("/%2e%2e", name));
	assert_false(name_of("/a%2fb", name));
}

static void test_url_to_name_refuses_the_temporary_file_prefix(void **state)
{
	(void)state;
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_false(name_of("/" HTTP_TMP_PREFIX "abc", name));
	assert_false(name_of("/" HTTP_TMP_PREFIX, name));
	/* Only the whole prefix is reserved. */
	assert_true(name_of("/.zbl-tmp", name));
	assert_string_equal(name, ".zbl-tmp");
}

static void test_url_to_name_takes_255_characters_and_refuses_256(void **state)
{
	(void)state;
	char url[HTTP_NAME_MAX_BYTES + 3];
	char name[HTTP_NAME_MAX_BYTES + 1];

	url[0] = '/';
	memset(url + 1, 'n', HTTP_NAME_MAX_BYTES);
	url[HTTP_NAME_MAX_BYTES + 1] = '\0';
	assert_true(name_of(url, name));
	assert_int_equal(strlen(name), HTTP_NAME_MAX_BYTES);
	url[HTTP_NAME_MAX_BYTES + 1] = 'n';
	url[HTTP_NAME_MAX_BYTES + 2] = '\0';
	assert_false(name_of(url, name));
}

static void test_url_to_name_refuses_empty_nested_and_other_forms(void **state)
{
	(void)state;
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_false(name_of("/", name));
	assert_false(name_of("/?x", name));
	assert_false(name_of("/a/b", name));
	assert_false(name_of("a", name));
	assert_false(name_of("*", name));
	assert_false(name_of("http://h/a", name));
	assert_false(name_of("/a b", name));
	assert_false(name_of("/a#b", name));
}

static void test_url_to_name_refuses_a_url_that_was_too_long(void **state)
{
	(void)state;
	struct http_head head = { .url = "/a", .url_len = 2, .url_too_long = true };
	char name[HTTP_NAME_MAX_BYTES + 1];

	assert_false(http_url_to_name(&head, name));
}

/* ------------------------------------------------------------------------ */
/* http_parse_range */

/* Asserts http_parse_range(@v, @size) returns @want and, for 1, the range [@f, @l]. */
static void check_range(const char *v, uint64_t size, int want, uint64_t f, uint64_t l)
{
	uint64_t first = 12345, last = 67890;
	int r = http_parse_range(v, size, &first, &last);

	if (r != want)
		fail_msg("http_parse_range(\"%s\", %llu) returned %d, expected %d", v,
			 (unsigned long long)size, r, want);
	if (want == 1 && (first != f || last != l))
		fail_msg("http_parse_range(\"%s\", %llu) gave [%llu, %llu], expected [%llu, %llu]",
			 v, (unsigned long long)size, (unsigned long long)first,
			 (unsigned long long)last, (unsigned long long)f, (unsigned long long)l);
}

static void test_range_first_byte_only(void **state)
{
	(void)state;
	check_range("bytes=0-0", 10, 1, 0, 0);
}

static void test_range_closed_is_clamped_to_the_object(void **state)
{
	(void)state;
	check_range("bytes=2-5", 10, 1, 2, 5);
	check_range("bytes=2-500", 10, 1, 2, 9);
	check_range("BYTES=9-9", 10, 1, 9, 9);
}

static void test_range_suffix_takes_the_last_n_bytes(void **state)
{
	(void)state;
	check_range("bytes=-3", 10, 1, 7, 9);
	check_range("bytes=-10", 10, 1, 0, 9);
	check_range("bytes=-11", 10, 1, 0, 9);
}

static void test_range_open_ended_runs_to_the_last_byte(void **state)
{
	(void)state;
	check_range("bytes=4-", 10, 1, 4, 9);
	check_range("bytes=0-", 1, 1, 0, 0);
}

static void test_range_unsatisfiable_returns_minus_one(void **state)
{
	(void)state;
	check_range("bytes=10-", 10, -1, 0, 0);
	check_range("bytes=10-20", 10, -1, 0, 0);
	check_range("bytes=-0", 10, -1, 0, 0);
	check_range("bytes=0-0", 0, -1, 0, 0);
	check_range("bytes=-5", 0, -1, 0, 0);
}

static void test_range_with_several_ranges_is_ignored(void **state)
{
	(void)state;
	check_range("bytes=0-1,3-4", 10, 0, 0, 0);
	check_range("bytes=0-1, 3-4", 10, 0, 0, 0);
}

static void test_range_garbage_is_ignored(void **state)
{
	(void)state;
	check_range("", 10, 0, 0, 0);
	check_range("bytes=", 10, 0, 0, 0);
	check_range("bytes=-", 10, 0, 0, 0);
	check_range("bytes=--1", 10, 0, 0, 0);
	check_range("bytes=a-b", 10, 0, 0, 0);
	check_range("bytes=1-2x", 10, 0, 0, 0);
	check_range("bytes=5-2", 10, 0, 0, 0);
	check_range("bytes=1- 2", 10, 0, 0, 0);
	check_range("items=0-1", 10, 0, 0, 0);
	check_range("bytes=99999999999999999999-", 10, 0, 0, 0);
	check_range("bytes=-99999999999999999999", 10, 0, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* http_format_head */

static void test_format_head_writes_status_server_and_length(void **state)
{
	(void)state;
	char buf[256];
	int n = http_format_head(buf, sizeof(buf), 206, 42, NULL, false);

	assert_string_equal(buf, "HTTP/1.1 206 Partial Content\r\nServer: zbl/" ZBL_VERSION_STRING
			    "\r\nContent-Length: 42\r\n\r\n");
	assert_int_equal(n, strlen(buf));
}

static void test_format_head_adds_extra_lines_and_connection_close(void **state)
{
	(void)state;
	char buf[256];
	int n = http_format_head(buf, sizeof(buf), 404, 0, "X-A: b\r\n", true);

	assert_string_equal(buf, "HTTP/1.1 404 Not Found\r\nServer: zbl/" ZBL_VERSION_STRING
			    "\r\nContent-Length: 0\r\nX-A: b\r\nConnection: close\r\n\r\n");
	assert_int_equal(n, strlen(buf));
}

static void test_format_head_returns_minus_one_when_the_buffer_is_too_small(void **state)
{
	(void)state;
	char buf[256];
	int n = http_format_head(buf, sizeof(buf), 200, 5, NULL, false);

	assert_true(n > 0);
	/* The terminating NUL must fit as well: n bytes are one too few. */
	assert_int_equal(http_format_head(buf, (size_t)n, 200, 5, NULL, false), -1);
	assert_int_equal(http_format_head(buf, 1, 200, 5, NULL, false), -1);
	assert_int_equal(http_format_head(buf, (size_t)n + 1, 200, 5, NULL, false), n);
}

static void test_reason_of_an_unknown_status(void **state)
{
	(void)state;
	assert_string_equal(http_reason(505), "HTTP Version Not Supported");
	assert_string_equal(http_reason(299), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_get_with_host_in_http_1_1_is_accepted),
		cmocka_unit_test(test_http_1_0_without_host_is_accepted),
		cmocka_unit_test(test_put_head_delete_are_told_apart),
		cmocka_unit_test(test_http_1_1_keeps_the_connection_alive_by_default),
		cmocka_unit_test(test_http_1_1_connection_close_ends_keep_alive),
		cmocka_unit_test(test_http_1_0_closes_the_connection_by_default),
		cmocka_unit_test(test_http_1_0_connection_keep_alive_keeps_it_alive),
		cmocka_unit_test(test_content_length_is_parsed),
		cmocka_unit_test(test_chunked_transfer_encoding_is_accepted),
		cmocka_unit_test(test_range_and_expect_are_kept),
		cmocka_unit_test(test_used_ends_right_after_the_blank_line),
		cmocka_unit_test(test_used_stops_at_the_first_of_two_pipelined_heads),
		cmocka_unit_test(test_empty_lines_before_the_request_line_are_skipped),
		cmocka_unit_test(test_an_incomplete_head_wants_more),
		cmocka_unit_test(test_byte_at_a_time_gives_the_same_result_as_one_call),
		cmocka_unit_test(test_http_1_1_without_host_is_refused_400),
		cmocka_unit_test(test_repeated_host_is_refused_400),
		cmocka_unit_test(test_repeated_host_in_http_1_0_is_refused_400),
		cmocka_unit_test(test_host_that_is_not_a_host_is_refused_400),
		cmocka_unit_test(test_whitespace_before_the_colon_is_refused_400),
		cmocka_unit_test(test_header_line_without_a_name_is_refused_400),
		cmocka_unit_test(test_content_length_with_transfer_encoding_is_refused_400),
		cmocka_unit_test(test_differing_duplicate_content_lengths_are_refused_400),
		cmocka_unit_test(test_content_length_that_is_not_digits_is_refused_400),
		cmocka_unit_test(test_obs_fold_is_refused_400),
		cmocka_unit_test(test_bare_cr_is_refused_400),
		cmocka_unit_test(test_bare_lf_is_refused_400),
		cmocka_unit_test(test_nul_in_the_request_line_is_refused_400),
		cmocka_unit_test(test_nul_in_a_header_name_is_refused_400),
		cmocka_unit_test(test_nul_in_a_header_value_is_refused_400),
		cmocka_unit_test(test_control_character_in_a_header_value_is_refused_400),
		cmocka_unit_test(test_http_2_0_is_refused_505),
		cmocka_unit_test(test_http_1_2_is_refused_505),
		cmocka_unit_test(test_two_spaces_in_the_request_line_are_refused_400),
		cmocka_unit_test(test_protocol_other_than_http_is_refused_400),
		cmocka_unit_test(test_malformed_version_is_refused_400),
		cmocka_unit_test(test_unknown_coding_before_final_chunked_is_refused_501),
		cmocka_unit_test(test_transfer_encoding_not_ending_in_chunked_is_refused_400),
		cmocka_unit_test(test_repeated_transfer_encoding_is_refused_400),
		cmocka_unit_test(test_transfer_encoding_in_http_1_0_is_refused_400),
		cmocka_unit_test(test_url_to_name_accepts_a_plain_name),
		cmocka_unit_test(test_url_to_name_ignores_the_query_string),
		cmocka_unit_test(test_url_to_name_refuses_dot_and_dot_dot),
		cmocka_unit_test(test_url_to_name_refuses_percent_encoding),
		cmocka_unit_test(test_url_to_name_refuses_the_temporary_file_prefix),
		cmocka_unit_test(test_url_to_name_takes_255_characters_and_refuses_256),
		cmocka_unit_test(test_url_to_name_refuses_empty_nested_and_other_forms),
		cmocka_unit_test(test_url_to_name_refuses_a_url_that_was_too_long),
		cmocka_unit_test(test_range_first_byte_only),
		cmocka_unit_test(test_range_closed_is_clamped_to_the_object),
		cmocka_unit_test(test_range_suffix_takes_the_last_n_bytes),
		cmocka_unit_test(test_range_open_ended_runs_to_the_last_byte),
		cmocka_unit_test(test_range_unsatisfiable_returns_minus_one),
		cmocka_unit_test(test_range_with_several_ranges_is_ignored),
		cmocka_unit_test(test_range_garbage_is_ignored),
		cmocka_unit_test(test_format_head_writes_status_server_and_length),
		cmocka_unit_test(test_format_head_adds_extra_lines_and_connection_close),
		cmocka_unit_test(test_format_head_returns_minus_one_when_the_buffer_is_too_small),
		cmocka_unit_test(test_reason_of_an_unknown_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
