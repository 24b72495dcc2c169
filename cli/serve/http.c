/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, http.c: owns the HTTP/1.1 wire format. Request heads are parsed
 * here (llhttp, built in its strict mode, plus the checks below), and so are
 * Range values and object names; response heads are formatted here. No
 * socket I/O: the functions take and give bytes.
 *
 * llhttp does the grammar. What it leaves to the server, or accepts in the
 * version Debian ships, is checked here, because RFC 9112 says a server
 * must reject it or must not guess at it: every line ends in CRLF (a bare
 * CR or LF, or a NUL, would let two parsers see different messages), one
 * SP between the request line's parts, no obs-fold, field names are
 * non-empty tokens right up to the colon, exactly one Host in HTTP/1.1,
 * Content-Length never with Transfer-Encoding, and only the versions 1.0
 * and 1.1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "zbl.h"

/* RFC 9110 5.6.2: tchar. */
static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* RFC 9110 5.5: field-vchar, SP and HTAB; obs-text is allowed, controls are not. */
static bool is_field_char(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* RFC 3986 host and port characters (reg-name, IP literals, port). */
static bool is_host_char(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("-._~!$&'()*+,;=:%[]", ch) != NULL;
}

static int refuse(struct http_parser *p, int status, const char *reason)
{
	if (!p->status) {
		p->status = status;
		p->reason = reason;
	}
	return HPE_USER;
}

static struct http_parser *parser_of(llhttp_t *ll)
{
	return ll->data;
}

/*
 * Appends a span llhttp handed over to @dst (room for @max bytes and a NUL).
 * Past @max the text is marked too long and kept as it was: too long for
 * any name or value the server acts on, so it can match none of them.
 */
static void append_span(char *dst, size_t *dst_len, size_t max, bool *too_long,
			const char *at, size_t len)
{
	if (*too_long || *dst_len + len > max) {
		*too_long = true;
		return;
	}
	memcpy(dst + *dst_len, at, len);
	*dst_len += len;
	dst[*dst_len] = '\0';
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
	struct http_head *h = parser_of(ll)->head;

	append_span(h->url, &h->url_len, HTTP_URL_MAX_BYTES, &h->url_too_long, at, len);
	return 0;
}

/* Collects the version across calls: the 505 must not depend on where reads split the line. */
static int on_version(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = parser_of(ll);

	if (p->version_len + len >= sizeof(p->version)) {
		/* Longer than DIGIT "." DIGIT: not a version at all. */
		p->version_len = sizeof(p->version);
		return 0;
	}
	memcpy(p->version + p->version_len, at, len);
	p->version_len += len;
	p->version[p->version_len] = '\0';
	return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = parser_of(ll);

	for (size_t i = 0; i < len; i++)
		if (!is_tchar((unsigned char)at[i]))
			return refuse(p, 400, "a header name holds a character that is not a token "
				      "character (whitespace before the colon?)");
	append_span(p->field, &p->field_len, sizeof(p->field) - 1, &p->field_too_long, at, len);
	return 0;
}

/*
 * RFC 9110 5.1: a field name is a token, so it is never empty; llhttp 8.1
 * takes a line such as ": v" as a field with no name (and no callback for
 * the name, so on_header_field cannot see it).
 */
static int on_header_field_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);

	if (p->field_len == 0 && !p->field_too_long)
		return refuse(p, 400, "a header line without a name");
	return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = parser_of(ll);

	for (size_t i = 0; i < len; i++)
		if (!is_field_char((unsigned char)at[i]))
			return refuse(p, 400, "a header value holds a control character");
	append_span(p->value, &p->value_len, HTTP_VALUE_MAX_BYTES, &p->value_too_long, at, len);
	return 0;
}

static bool field_is(const struct http_parser *p, const char *name)
{
	return !p->field_too_long && !strcasecmp(p->field, name);
}

/* The value without the optional whitespace llhttp may leave at its end. */
static void trim_value(struct http_parser *p)
{
	while (p->value_len && (p->value[p->value_len - 1] == ' ' ||
				p->value[p->value_len - 1] == '\t'))
		p->value[--p->value_len] = '\0';
}

static int on_header_value_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);
	struct http_head *h = p->head;
	int r = 0;

	trim_value(p);
	if (!p->field_len && !p->field_too_long)
		r = refuse(p, 400, "a header line with an empty name");
	else if (field_is(p, "host")) {
		if (++h->host_count > 1)
			r = refuse(p, 400, "more than one Host header");
		for (size_t i = 0; !r && i < p->value_len; i++)
			if (!is_host_char((unsigned char)p->value[i]))
				r = refuse(p, 400, "the Host header is not a host[:port]");
		if (p->value_too_long)
			r = refuse(p, 400, "the Host header is too long");
	} else if (field_is(p, "transfer-encoding")) {
		/*
		 * RFC 9112 6.3: chunked must be the final coding, or the length
		 * cannot be known (400); other codings we do not implement (501).
		 * One header only: a list split over two could hide either.
		 */
		if (h->has_transfer_encoding)
			r = refuse(p, 400, "more than one Transfer-Encoding header");
		else if (p->value_too_long || strcasecmp(p->value, "chunked") != 0) {
			size_t n = p->value_len;
			bool final_chunked = n >= 7 && !strcasecmp(p->value + n - 7, "chunked") &&
					     (n == 7 || p->value[n - 8] == ' ' ||
					      p->value[n - 8] == ',' || p->value[n - 8] == '\t');
			r = final_chunked && !p->value_too_long
				    ? refuse(p, 501, "only the chunked transfer coding is implemented")
				    : refuse(p, 400, "Transfer-Encoding whose final coding is not "
					     "chunked: the body length cannot be known");
		}
		h->has_transfer_encoding = true;
	} else if (field_is(p, "range")) {
		if (!p->value_too_long) {
			memcpy(h->range, p->value, p->value_len + 1);
			h->has_range = true;
		}
	} else if (field_is(p, "expect")) {
		h->expect_continue = !p->value_too_long && !strcasecmp(p->value, "100-continue");
	}
	p->field_len = p->value_len = 0;
	p->field_too_long = p->value_too_long = false;
	p->field[0] = p->value[0] = '\0';
	return r;
}

/* The end of the head: check the whole, then stop; the body is not llhttp's business. */
static int on_headers_complete(llhttp_t *ll)
{
	struct http_parser *p = parser_of(ll);
	struct http_head *h = p->head;

	h->version_major = ll->http_major;
	h->version_minor = ll->http_minor;
	if (h->version_major != 1 || h->version_minor > 1)
		return refuse(p, 505, "only HTTP/1.0 and HTTP/1.1 are served");
	if (h->version_minor == 1 && h->host_count == 0)
		return refuse(p, 400, "an HTTP/1.1 request needs a Host header");
	if ((ll->flags & F_CONTENT_LENGTH) && h->has_transfer_encoding)
		return refuse(p, 400, "Content-Length together with Transfer-Encoding");
	if (h->has_transfer_encoding && h->version_minor == 0)
		return refuse(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
	h->has_content_length = (ll->flags & F_CONTENT_LENGTH) != 0;
	h->content_length = h->has_content_length ? ll->content_length : 0;
	h->keep_alive = llhttp_should_keep_alive(ll);
	h->upgrade = ll->upgrade;
	switch (ll->method) {
	case HTTP_GET: h->method = M_GET; break;
	case HTTP_HEAD: h->method = M_HEAD; break;
	case HTTP_PUT: h->method = M_PUT; break;
	case HTTP_DELETE: h->method = M_DELETE; break;
	default: h->method = M_OTHER; break;
	}
	snprintf(h->method_str, sizeof(h->method_str), "%s",
		 llhttp_method_name((llhttp_method_t)ll->method));
	return HPE_PAUSED;
}

static llhttp_settings_t settings = {
	.on_url = on_url,
	.on_version = on_version,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
};

void http_parser_start(struct http_parser *p, struct http_head *head)
{
	memset(p, 0, sizeof(*p));
	memset(head, 0, sizeof(*head));
	p->head = head;
	llhttp_init(&p->ll, HTTP_REQUEST, &settings);
	p->ll.data = p;
}

/*
 * The line-level rules llhttp does not hold in the version Debian ships:
 * every CR is followed by LF and every LF follows a CR, no NUL, no line
 * after the request line starts with whitespace (obs-fold, RFC 9112 5.2),
 * the request line's parts are separated by exactly one SP (RFC 9112 3
 * allows a recipient to split on runs of whitespace instead, but a proxy
 * in front that does not would see another request-target), and its
 * protocol is HTTP (llhttp also takes RTSP/ and ICE/ there, and would
 * report RTSP/1.0 as HTTP/1.0). Runs over exactly the bytes llhttp took,
 * carrying state across calls. Returns the reason a line breaks a rule,
 * or NULL.
 */
static const char *check_bytes(struct http_parser *p, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (p->prev == '\r' && ch != '\n')
			return "a bare CR in the request head";
		if (ch == '\0')
			return "a NUL byte in the request head";
		if (ch == '\n' && p->prev != '\r')
			return "a line of the request head ends in LF without CR";
		if (p->request_line_done && p->line_bytes == 0 && (ch == ' ' || ch == '\t'))
			return "a folded header line (obs-fold)";
		if (!p->request_line_done && ch == ' ') {
			if (p->prev == ' ')
				return "more than one space between the parts of the request line";
			p->request_line_spaces++;
		} else if (!p->request_line_done && p->request_line_spaces == 2 &&
			   p->protocol_bytes < 5) {
			if (ch != "HTTP/"[p->protocol_bytes++])
				return "the request line's protocol is not HTTP";
		}
		p->prev = ch;
		p->line_bytes++;
		if (ch == '\n') {
			/* The first line with more than its CRLF is the request line. */
			if (p->line_bytes > 2)
				p->request_line_done = true;
			p->line_bytes = 0;
		}
	}
	return NULL;
}

/*
 * The request line's version is well formed, HTTP/DIGIT.DIGIT, but not one
 * we serve: that is a 505, where a malformed version (or a malformed line
 * after a good one) is a 400.
 */
static bool unserved_version(const struct http_parser *p)
{
	const char *v = p->version;

	return p->version_len == 3 && v[0] >= '0' && v[0] <= '9' && v[1] == '.' && v[2] >= '0' &&
	       v[2] <= '9' && !(v[0] == '1' && (v[2] == '0' || v[2] == '1'));
}

enum http_result http_parse(struct http_parser *p, const char *buf, size_t len, size_t *used)
{
	llhttp_errno_t e = llhttp_execute(&p->ll, buf, len);
	size_t took = len;
	const char *why;

	if (e != HPE_OK) {
		const char *at = llhttp_get_error_pos(&p->ll);
		took = at && at >= buf && at <= buf + len ? (size_t)(at - buf) : 0;
	}
	/*
	 * A broken line explains any later complaint (llhttp may have ended a
	 * line at a bare CR), so its reason wins over the callbacks' own.
	 */
	why = check_bytes(p, buf, took);
	if (why) {
		p->status = 400;
		p->reason = why;
		return HTTP_BAD;
	}
	if (p->status)
		return HTTP_BAD;
	if (e == HPE_OK)
		return HTTP_MORE;
	if (e == HPE_PAUSED) {
		*used = took;
		return HTTP_DONE;
	}
	if (e == HPE_INVALID_VERSION && unserved_version(p))
		refuse(p, 505, "only HTTP/1.0 and HTTP/1.1 are served");
	refuse(p, 400, llhttp_get_error_reason(&p->ll));
	return HTTP_BAD;
}

bool http_url_to_name(const struct http_head *head, char name[HTTP_NAME_MAX_BYTES + 1])
{
	const char *u = head->url;
	size_t n = 0;

	if (head->url_too_long || u[0] != '/')
		return false;
	for (u++; *u && *u != '?'; u++) {
		char ch = *u;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
		if (n == HTTP_NAME_MAX_BYTES)
			return false;
		name[n++] = ch;
	}
	name[n] = '\0';
	if (n == 0 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strncmp(name, HTTP_TMP_PREFIX, strlen(HTTP_TMP_PREFIX)) != 0;
}

int http_parse_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *p;
	char *end;
	unsigned long long a, b;

	if (strncasecmp(v, "bytes=", 6))
		return 0;
	p = v + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return 0;
	if (*p == '-') {
		if (p[1] < '0' || p[1] > '9')
			return 0;
		errno = 0;
		b = strtoull(p + 1, &end, 10);
		if (errno || *end)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 0;
	p = end + 1;
	if (!*p) {
		b = UINT64_MAX;
	} else {
		if (*p < '0' || *p > '9')
			return 0;
		b = strtoull(p, &end, 10);
		if (errno || *end || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 416: return "Range Not Satisfiable";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

int http_format_head(char *buf, size_t len, int status, uint64_t content_length,
		     const char *extra, bool close)
{
	int n = snprintf(buf, len,
			 "HTTP/1.1 %d %s\r\nServer: zbl/%s\r\nContent-Length: %" PRIu64 "\r\n%s%s\r\n",
			 status, http_reason(status), ZBL_VERSION_STRING, content_length,
			 extra ? extra : "", close ? "Connection: close\r\n" : "");

	return n < 0 || (size_t)n >= len ? -1 : n;
}
