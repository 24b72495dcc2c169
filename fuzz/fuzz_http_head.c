/* SPDX-License-Identifier: MIT */
/*
 * Fuzzing the request-head parser of zbl serve (cli/serve/http.c, issue 12)
 * against a reference written here from RFC 9112's grammar.
 *
 * Input: two bytes choose how the rest is cut into pieces, and the rest is
 * what a client sent. The pieces alternate between the sizes the two bytes
 * give (0 means "everything left"), so (0, x) is one call, (1, 1) a byte at
 * a time and (3, 200) a short piece then long ones. Each piece goes to
 * http_parse() as a read from a socket would, until it answers HTTP_DONE or
 * HTTP_BAD.
 *
 * What must hold, besides no crash, leak or undefined behaviour:
 * - The answer does not depend on the cut: the same result, `used`, status
 *   and parsed fields as feeding everything in one call.
 * - HTTP_DONE only for a head the reference accepts, of exactly `used`
 *   bytes, with the same method, target, version, Content-Length and
 *   Transfer-Encoding as the reference read.
 * - Never HTTP_MORE once a complete head the reference accepts is there.
 * - HTTP_BAD always with a status of 400, 501 or 505 and a reason.
 * - Loosely the converse: a head the reference accepts whose method, target,
 *   Host and framing headers are ordinary (see ordinary()) gets HTTP_DONE.
 *
 * Build and run: make fuzz (FUZZ_SECONDS=N, FUZZ_TARGETS=http_head); make
 * check replays fuzz/corpus_http and fuzz/regressions_http and fuzzes for
 * half a minute.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_http_head: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(cond, ...) do { if (!(cond)) die(__VA_ARGS__); } while (0)

/* ------------------------------------------------------------------------ */
/*
 * The reference: RFC 9112's request-head grammar, read directly and strictly.
 *
 *   request-head = *( CRLF ) request-line *( field-line CRLF ) CRLF
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   field-line   = field-name ":" OWS field-value OWS
 *
 * method and field-name are tokens, request-target visible ASCII, the
 * version "HTTP/1.0" or "HTTP/1.1", and a field value any run of VCHAR,
 * obs-text, SP and HTAB. Then: one Host in HTTP/1.1 and at most one in
 * 1.0; Content-Length 1*DIGIT, at most once; Transfer-Encoding exactly
 * "chunked" (any case), at most once; never both. It departs from the
 * strictest reading twice: empty lines before the request line are skipped,
 * as RFC 9112 2.2 asks of a server and llhttp does; and a request-target is
 * checked for its characters only, not for which of RFC 9112 3.2's forms it
 * has (llhttp checks those, so the server is the stricter there).
 */

enum ref_result { REF_MORE, REF_OK, REF_BAD };

/* What the reference read from an accepted head; pointers into the input. */
struct ref_head {
	size_t len;			/* bytes of the head, its blank line included */
	const uint8_t *method;
	size_t method_len;
	const uint8_t *target;
	size_t target_len;
	unsigned minor;			/* HTTP/1.minor */
	unsigned host_count;
	const uint8_t *host;		/* the Host value without its OWS */
	size_t host_len;
	size_t host_line_len;		/* the Host value with its OWS */
	unsigned cl_count;
	bool cl_overflow;		/* more than 2^64 - 1 */
	uint64_t content_length;
	size_t cl_trailing_htabs;	/* HTABs in the OWS after the Content-Length digits */
	unsigned te_count;
};

/* RFC 9110 5.6.2: tchar. */
static bool ref_tchar(uint8_t ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* RFC 9110 5.5: field-vchar (VCHAR / obs-text), SP and HTAB. */
static bool ref_field_char(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || (ch >= 0x21 && ch <= 0x7e) || ch >= 0x80;
}

static bool ows(uint8_t ch)
{
	return ch == ' ' || ch == '\t';
}

/* The bytes being read and how far the reference got. */
struct cursor {
	const uint8_t *b;
	size_t len, pos;
};

/* CRLF at the cursor: REF_OK past it, REF_MORE if the input ends first. */
static enum ref_result crlf(struct cursor *c)
{
	if (c->pos == c->len)
		return REF_MORE;
	if (c->b[c->pos] != '\r')
		return REF_BAD;
	if (c->pos + 1 == c->len)
		return REF_MORE;
	if (c->b[c->pos + 1] != '\n')
		return REF_BAD;
	c->pos += 2;
	return REF_OK;
}

/* One or more bytes that @ok accepts, then @end, which is skipped. */
static enum ref_result run_then(struct cursor *c, bool (*ok)(uint8_t), uint8_t end,
				const uint8_t **start, size_t *n)
{
	*start = c->b + c->pos;
	*n = 0;
	for (;;) {
		if (c->pos == c->len)
			return REF_MORE;
		if (c->b[c->pos] == end)
			break;
		if (!ok(c->b[c->pos]))
			return REF_BAD;
		c->pos++;
		(*n)++;
	}
	if (*n == 0)
		return REF_BAD;
	c->pos++;
	return REF_OK;
}

/*
 * RFC 9112 3.2's request-target, as far as its characters go: visible
 * ASCII. Which of its four forms a target has is llhttp's to check; the
 * server refusing more than this is allowed for in ordinary().
 */
static bool ref_target_char(uint8_t ch)
{
	return ch >= 0x21 && ch <= 0x7e;
}

static bool name_is(const uint8_t *name, size_t n, const char *want)
{
	return n == strlen(want) && !strncasecmp((const char *)name, want, n);
}

static enum ref_result ref_field(struct ref_head *r, const uint8_t *name, size_t name_len,
				 const uint8_t *v, size_t n)
{
	size_t htab = 0, line_len = n;

	/* The field value without the OWS around it (RFC 9112 5). */
	while (n && ows(v[0]))
		v++, n--;
	for (; n && ows(v[n - 1]); n--)
		if (v[n - 1] == '\t')
			htab++;
	if (name_is(name, name_len, "host")) {
		r->host_count++;
		r->host = v;
		r->host_len = n;
		r->host_line_len = line_len;
	} else if (name_is(name, name_len, "content-length")) {
		/* RFC 9110 8.6: 1*DIGIT; a list of them is not taken. */
		if (++r->cl_count > 1 || n == 0)
			return REF_BAD;
		r->content_length = 0;
		for (size_t i = 0; i < n; i++) {
			if (v[i] < '0' || v[i] > '9')
				return REF_BAD;
			if (r->content_length > (UINT64_MAX - (v[i] - '0')) / 10)
				r->cl_overflow = true;
			r->content_length = r->content_length * 10 + (v[i] - '0');
		}
		r->cl_trailing_htabs = htab;
	} else if (name_is(name, name_len, "transfer-encoding")) {
		if (++r->te_count > 1 || n != 7 || strncasecmp((const char *)v, "chunked", 7))
			return REF_BAD;
	}
	return REF_OK;
}

/*
 * Reads a request head from the start of @b. REF_OK with @r filled when a
 * complete head is there and acceptable, REF_MORE when the bytes so far
 * could still begin one, REF_BAD when they cannot.
 */
static enum ref_result ref_parse(const uint8_t *b, size_t len, struct ref_head *r)
{
	static const char version[] = "HTTP/1.";
	struct cursor c = { b, len, 0 };
	enum ref_result e;

	memset(r, 0, sizeof(*r));
	/*
	 * RFC 9112 2.2: "a server that is expecting to receive and parse a
	 * request-line SHOULD ignore at least one empty line (CRLF) received
	 * prior to the request-line". llhttp ignores any number; so does this.
	 */
	while (c.pos < len && b[c.pos] == '\r')
		if ((e = crlf(&c)) != REF_OK)
			return e;
	/* request-line = method SP request-target SP HTTP-version CRLF */
	if ((e = run_then(&c, ref_tchar, ' ', &r->method, &r->method_len)) != REF_OK)
		return e;
	if ((e = run_then(&c, ref_target_char, ' ', &r->target, &r->target_len)) != REF_OK)
		return e;
	for (size_t i = 0; i < sizeof(version) - 1; i++, c.pos++) {
		if (c.pos == len)
			return REF_MORE;
		if (b[c.pos] != (uint8_t)version[i])
			return REF_BAD;
	}
	if (c.pos == len)
		return REF_MORE;
	if (b[c.pos] != '0' && b[c.pos] != '1')
		return REF_BAD;
	r->minor = b[c.pos++] - '0';
	if ((e = crlf(&c)) != REF_OK)
		return e;
	/* *( field-line CRLF ) CRLF, field-line = field-name ":" OWS field-value OWS */
	for (;;) {
		const uint8_t *name, *value;
		size_t name_len, value_len = 0;

		if (c.pos == len)
			return REF_MORE;
		if (b[c.pos] == '\r') {
			if ((e = crlf(&c)) != REF_OK)
				return e;
			break;
		}
		if ((e = run_then(&c, ref_tchar, ':', &name, &name_len)) != REF_OK)
			return e;
		value = b + c.pos;
		for (; c.pos < len && b[c.pos] != '\r'; c.pos++, value_len++)
			if (!ref_field_char(b[c.pos]))
				return REF_BAD;
		if ((e = crlf(&c)) != REF_OK)
			return e;
		if ((e = ref_field(r, name, name_len, value, value_len)) != REF_OK)
			return e;
	}
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1; more than one is never valid. */
	if (r->host_count > 1 || (r->minor == 1 && r->host_count == 0))
		return REF_BAD;
	/* RFC 9112 6.1: a server may reject Content-Length with Transfer-Encoding; this does. */
	if (r->cl_count && r->te_count)
		return REF_BAD;
	r->len = c.pos;
	return REF_OK;
}

/* ------------------------------------------------------------------------ */
/* The converse, loosely */

/* RFC 3986 host and port characters, as http.c takes them for Host. */
static bool host_char(uint8_t ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("-._~!$&'()*+,;=:%[]", ch) != NULL;
}

/* An origin-form target of unreserved characters, slashes and a plain query. */
static bool ordinary_target_char(uint8_t ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("-._~/?=&%", ch) != NULL;
}

static bool method_is(const struct ref_head *r, const char *m)
{
	return r->method_len == strlen(m) && !memcmp(r->method, m, r->method_len);
}

/*
 * A head the reference accepts that zbl serve must accept too. What the
 * server may refuse although the grammar allows it is left out, each for
 * its reason:
 * - methods other than GET, HEAD, PUT and DELETE: llhttp knows a fixed set
 *   of methods and refuses the others (with a 400, where RFC 9110 9.1 would
 *   rather have a 501 for a well-formed method the server does not know);
 * - targets other than plain origin-form paths: llhttp checks the target's
 *   form (it starts with '/', or is '*', an absolute URL or an authority)
 *   and the characters of each part, beyond "visible ASCII";
 * - a Host that is not a host[:port], or longer than HTTP_VALUE_MAX_BYTES
 *   with its OWS: RFC 9112 3.2 requires a 400 for an invalid Host, and
 *   http.c bounds the value before it trims it;
 * - Transfer-Encoding in HTTP/1.0: RFC 9112 6.1 says such framing is faulty;
 * - a Content-Length over 2^64 - 1, or followed by HTAB: llhttp refuses
 *   both (the second is OWS that RFC 9112 5 allows, but refusing a
 *   malformed-looking length costs a client nothing it needs).
 */
static bool ordinary(const struct ref_head *r)
{
	if (!method_is(r, "GET") && !method_is(r, "HEAD") && !method_is(r, "PUT") &&
	    !method_is(r, "DELETE"))
		return false;
	if (r->target[0] != '/')
		return false;
	for (size_t i = 0; i < r->target_len; i++)
		if (!ordinary_target_char(r->target[i]))
			return false;
	if (r->host_line_len > HTTP_VALUE_MAX_BYTES)
		return false;
	for (size_t i = 0; i < r->host_len; i++)
		if (!host_char(r->host[i]))
			return false;
	if (r->te_count && r->minor == 0)
		return false;
	return !r->cl_overflow && !r->cl_trailing_htabs;
}

/* ------------------------------------------------------------------------ */
/* The parser under test */

struct outcome {
	enum http_result r;
	size_t used;
	int status;
	const char *reason;
	struct http_head head;
};

/* Feeds @data to a fresh parser in pieces of @a and @b bytes in turn (0: all that is left). */
static void feed(const uint8_t *data, size_t len, size_t a, size_t b, struct outcome *o)
{
	struct http_parser p;
	size_t off = 0;

	http_parser_start(&p, &o->head);
	o->r = HTTP_MORE;
	o->used = 0;
	for (int turn = 0; off < len && o->r == HTTP_MORE; turn ^= 1) {
		size_t piece = turn ? b : a;
		size_t used = SIZE_MAX;

		if (piece == 0 || piece > len - off)
			piece = len - off;
		o->r = http_parse(&p, (const char *)data + off, piece, &used);
		if (o->r == HTTP_DONE) {
			CHECK(used <= piece, "used %zu of a %zu-byte piece", used, piece);
			o->used = off + used;
		}
		off += piece;
	}
	o->status = p.status;
	o->reason = p.reason;
	if (o->r == HTTP_BAD)
		CHECK((o->status == 400 || o->status == 501 || o->status == 505) && o->reason,
		      "refused with status %d, reason %s", o->status,
		      o->reason ? o->reason : "(none)");
	else
		CHECK(o->status == 0, "status %d set without HTTP_BAD", o->status);
}

static const char *result_name(enum http_result r)
{
	return r == HTTP_MORE ? "HTTP_MORE" : r == HTTP_DONE ? "HTTP_DONE" : "HTTP_BAD";
}

/* The parsed fields of two accepted heads agree. */
static void check_same_head(const struct http_head *x, const struct http_head *y)
{
	CHECK(x->method == y->method && !strcmp(x->method_str, y->method_str),
	      "method %s vs %s", x->method_str, y->method_str);
	/* What a URL too long holds is never read (http_url_to_name refuses it). */
	CHECK(x->url_too_long == y->url_too_long, "url_too_long %d vs %d", x->url_too_long,
	      y->url_too_long);
	CHECK(x->url_too_long || (x->url_len == y->url_len && !memcmp(x->url, y->url, x->url_len)),
	      "url %s vs %s", x->url, y->url);
	CHECK(x->version_major == y->version_major && x->version_minor == y->version_minor,
	      "version %u.%u vs %u.%u", x->version_major, x->version_minor,
	      y->version_major, y->version_minor);
	CHECK(x->keep_alive == y->keep_alive, "keep_alive %d vs %d", x->keep_alive,
	      y->keep_alive);
	CHECK(x->has_content_length == y->has_content_length &&
	      x->content_length == y->content_length, "content_length %d/%llu vs %d/%llu",
	      x->has_content_length, (unsigned long long)x->content_length,
	      y->has_content_length, (unsigned long long)y->content_length);
	CHECK(x->has_transfer_encoding == y->has_transfer_encoding,
	      "has_transfer_encoding %d vs %d", x->has_transfer_encoding,
	      y->has_transfer_encoding);
	CHECK(x->host_count == y->host_count, "host_count %u vs %u", x->host_count,
	      y->host_count);
	CHECK(x->has_range == y->has_range && !strcmp(x->range, y->range), "range %s vs %s",
	      x->range, y->range);
	CHECK(x->expect_continue == y->expect_continue && x->upgrade == y->upgrade,
	      "expect_continue %d/upgrade %d vs %d/%d", x->expect_continue, x->upgrade,
	      y->expect_continue, y->upgrade);
}

/* An accepted head says what the reference read from the same bytes. */
static void check_against_reference(const struct outcome *o, const struct ref_head *r)
{
	const struct http_head *h = &o->head;

	CHECK(o->used == r->len, "used %zu, the reference's head is %zu bytes", o->used,
	      r->len);
	CHECK(strlen(h->method_str) == r->method_len &&
	      !memcmp(h->method_str, r->method, r->method_len), "method %s, reference %.*s",
	      h->method_str, (int)r->method_len, (const char *)r->method);
	if (r->target_len > HTTP_URL_MAX_BYTES)
		CHECK(h->url_too_long, "a %zu-byte target not flagged too long", r->target_len);
	else
		CHECK(!h->url_too_long && h->url_len == r->target_len &&
		      !memcmp(h->url, r->target, r->target_len), "url %s, reference %.*s",
		      h->url, (int)r->target_len, (const char *)r->target);
	CHECK(h->version_major == 1 && h->version_minor == r->minor,
	      "version %u.%u, reference 1.%u", h->version_major, h->version_minor, r->minor);
	CHECK(h->host_count == r->host_count, "host_count %u, reference %u", h->host_count,
	      r->host_count);
	CHECK(h->has_content_length == (r->cl_count == 1), "has_content_length %d, reference %u",
	      h->has_content_length, r->cl_count);
	CHECK(!h->has_content_length || (!r->cl_overflow && h->content_length == r->content_length),
	      "content_length %llu, reference %llu%s", (unsigned long long)h->content_length,
	      (unsigned long long)r->content_length, r->cl_overflow ? " (overflowed)" : "");
	CHECK(h->has_transfer_encoding == (r->te_count == 1),
	      "has_transfer_encoding %d, reference %u", h->has_transfer_encoding, r->te_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, cut;
	struct ref_head ref;
	enum ref_result rr;

	if (size < 2)
		return 0;
	feed(data + 2, size - 2, 0, 0, &whole);
	feed(data + 2, size - 2, data[0], data[1], &cut);
	rr = ref_parse(data + 2, size - 2, &ref);

	CHECK(cut.r == whole.r, "cut (%u, %u): %s, in one call: %s", data[0], data[1],
	      result_name(cut.r), result_name(whole.r));
	if (whole.r == HTTP_BAD)
		CHECK(cut.status == whole.status, "cut (%u, %u): status %d (%s), in one call: %d (%s)",
		      data[0], data[1], cut.status, cut.reason, whole.status, whole.reason);
	if (whole.r == HTTP_DONE) {
		CHECK(cut.used == whole.used, "cut (%u, %u): used %zu, in one call: %zu",
		      data[0], data[1], cut.used, whole.used);
		check_same_head(&cut.head, &whole.head);
		CHECK(rr == REF_OK, "accepted a head the reference finds %s",
		      rr == REF_BAD ? "malformed" : "incomplete");
		check_against_reference(&whole, &ref);
	}
	if (rr == REF_OK) {
		/*
		 * Except after "PRI": llhttp then reads on for the rest of the
		 * HTTP/2 connection preface ("SM\r\n\r\n", RFC 9113 3.4) and
		 * refuses it whole.
		 */
		CHECK(whole.r != HTTP_MORE || method_is(&ref, "PRI"),
		      "wants more after a complete %zu-byte head", ref.len);
		if (ordinary(&ref))
			CHECK(whole.r == HTTP_DONE, "refused an ordinary head: %d %s", whole.status,
			      whole.reason);
	}
	return 0;
}
