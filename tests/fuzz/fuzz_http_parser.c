/*
 * fuzz_http_parser.c - the request parser against arbitrary bytes.
 *
 * The first input byte picks a split point; the rest is the request. It is
 * parsed whole with the default limits, then again fed in two pieces (each in
 * an exact-size heap buffer, so a read past what has arrived trips ASan and
 * the buffer moves between the calls like a growing read buffer), and the
 * outcomes must agree. It is parsed once more with tiny limits, whole and
 * byte by byte, so that the limit paths are reached by short inputs too.
 * Accepted requests must satisfy the invariants the server relies on; a
 * rejection found on a prefix must be the one for the whole input (it may
 * not depend on bytes after it), and ld_http_parser_idle must say exactly
 * whether only skipped empty lines have come.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ld_http_request whole, part;

static void check(int cond)
{
	if (!cond)
		abort();
}

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static int ows(char c)
{
	return c == ' ' || c == '\t';
}

static int ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] | 0x20) : a[i];

		if (c != b[i])
			return 0;
	}
	return 1;
}

/* lead returns how many bytes of skipped empty lines start buf[0..len). */
static size_t lead(const char *buf, size_t len)
{
	size_t n = 0;

	while (n + 2 <= len && buf[n] == '\r' && buf[n + 1] == '\n')
		n += 2;
	return n;
}

/* invariants of one outcome: a known status, or a request that lies inside
 * the header block with the framing rules applied. */
static void invariants(const struct ld_http_limits *lim, const char *buf, size_t len, int rc,
		       const struct ld_http_request *r)
{
	const struct ld_http_field *host;
	const char *line_end;
	unsigned i;
	size_t h, skip;

	if (rc <= 0) {
		check(rc == 0 || rc == -400 || rc == -414 || rc == -431 || rc == -505);
		return;
	}
	h = r->header_len;
	check((size_t)rc == h && h <= len && h <= lim->headers_max && h >= 4);
	check(memcmp(buf + h - 4, "\r\n\r\n", 4) == 0);
	skip = lead(buf, h);
	check(skip <= 2 * LD_HTTP_LEADING_EMPTY_MAX);
	check(r->method_str == buf + skip && r->method_len > 0);
	check(inside(r->target, r->target_len, buf, h) && r->target_len > 0);
	check(r->target == r->method_str + r->method_len + 1);
	for (i = 0; i < r->target_len; i++) /* visible ASCII but '#' */
		check(r->target[i] > 0x20 && r->target[i] < 0x7f && r->target[i] != '#');
	for (i = 0; i < r->method_len; i++)
		check(r->method_str[i] > 0x20 && r->method_str[i] < 0x7f);
	/* The version closes the request line: "HTTP/1." DIGIT CRLF. */
	line_end = r->target + r->target_len;
	check(memcmp(line_end, " HTTP/1.", 8) == 0 && line_end[8] >= '0' && line_end[8] <= '9');
	check(line_end[9] == '\r' && line_end[10] == '\n');
	check(r->version_minor == (line_end[8] != '0'));
	if (r->target[0] == '/' || r->target[0] == '*') {
		check(r->target[0] == '/' || (r->target_len == 1 && r->method == LD_HTTP_OPTIONS));
		check(r->path == r->target);
		host = ld_http_find(r, "host");
		check(host ? r->authority == host->value && r->authority_len == host->value_len
			   : r->authority == NULL);
	} else {
		/* absolute-form: the path follows the authority, or is "/". */
		size_t sl = ieq(r->target, "http://", 7) ? 7 : 8;

		check(sl == 7 || ieq(r->target, "https://", 8));
		check(r->authority == r->target + sl && r->authority_len > 0);
		check(!memchr(r->authority, '@', r->authority_len));
		if (inside(r->path, r->path_len, buf, h))
			check(r->path == r->authority + r->authority_len && r->path[0] == '/');
		else
			check(r->path_len == 1 && r->path[0] == '/');
	}
	check(r->path_len <= r->target_len);
	if (r->query)
		check(r->query[-1] == '?' && r->query + r->query_len == r->target + r->target_len);
	else if (r->path[0] == '/' && inside(r->path, r->path_len, buf, h))
		check(r->path + r->path_len == r->target + r->target_len);
	check(!r->authority || r->authority_len > 0);
	check(r->nfields <= lim->fields_max);
	for (i = 0; i < r->nfields; i++) {
		const struct ld_http_field *f = &r->fields[i];

		check(inside(f->name, f->name_len, buf, h) && f->name_len > 0);
		check(inside(f->value, f->value_len, buf, h));
		check(f->name[f->name_len] == ':');
		if (f->value_len)
			check(!ows(f->value[0]) && !ows(f->value[f->value_len - 1]));
		check(!memchr(f->value, '\r', f->value_len) &&
		      !memchr(f->value, '\n', f->value_len));
		if (f->name_len == 4 && ieq(f->name, "host", 4))
			check(f->value_len > 0);
	}
	check(r->content_length >= -1);
	check(!(r->chunked && r->content_length >= 0));
	check(!(r->chunked && r->version_minor == 0));
	if (r->version_minor == 1)
		check(ld_http_find(r, "host") != NULL);
}

/* same compares two accepted requests parsed from two copies of the input,
 * by offsets. */
static void same(const char *a, const struct ld_http_request *x, const char *b,
		 const struct ld_http_request *y)
{
	unsigned i;

	check(x->method == y->method && x->method_len == y->method_len);
	check(x->method_str - a == y->method_str - b);
	check(x->target - a == y->target - b && x->target_len == y->target_len);
	check(x->path_len == y->path_len && (x->query == NULL) == (y->query == NULL));
	check(x->path == y->path || x->path - a == y->path - b);
	check(!x->query || x->query - a == y->query - b);
	check((x->authority == NULL) == (y->authority == NULL) &&
	      x->authority_len == y->authority_len);
	check(!x->authority || x->authority - a == y->authority - b);
	check(x->version_minor == y->version_minor && x->nfields == y->nfields);
	check(x->content_length == y->content_length && x->chunked == y->chunked);
	check(x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue);
	check(x->header_len == y->header_len);
	for (i = 0; i < x->nfields; i++) {
		check(x->fields[i].name - a == y->fields[i].name - b);
		check(x->fields[i].name_len == y->fields[i].name_len);
		check(x->fields[i].value - a == y->fields[i].value - b);
		check(x->fields[i].value_len == y->fields[i].value_len);
	}
}

static char *copy(const uint8_t *p, size_t n)
{
	char *b = malloc(n ? n : 1);

	if (!b)
		abort();
	if (n)
		memcpy(b, p, n);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_http_limits def,
	    tiny = {
		.request_line_max = 24, .header_line_max = 16, .headers_max = 64, .fields_max = 3};
	struct ld_http_parser p;
	const uint8_t *in;
	const char *why;
	char *a, *b;
	size_t len, cut, i;
	int rc, rc2;

	if (size < 1)
		return 0;
	in = data + 1;
	len = size - 1;
	cut = len * data[0] / 255;
	ld_http_limits_default(&def);

	/* Whole. */
	a = copy(in, len);
	ld_http_parser_init(&p, &def);
	rc = ld_http_parse_request(&p, a, len, &whole);
	invariants(&def, a, len, rc, &whole);
	check(p.scanned <= len);
	check((rc < 0) == (p.why != NULL)); /* a refusal says why */
	why = p.why;

	/* In two pieces: an answer on the first piece must be the final one. */
	ld_http_parser_init(&p, &def);
	b = copy(in, cut);
	rc2 = ld_http_parse_request(&p, b, cut, &part);
	invariants(&def, b, cut, rc2, &part);
	if (rc2 != 0) {
		check(rc2 == rc && p.why == why);
		if (rc > 0)
			same(a, &whole, b, &part);
	}
	free(b);
	if (rc2 == 0) {
		b = copy(in, len);
		rc2 = ld_http_parse_request(&p, b, len, &part);
		check(rc2 == rc);
		check(p.why == why); /* the same reason, however it arrived */
		if (rc > 0)
			same(a, &whole, b, &part);
		free(b);
	}

	/* Tiny limits, whole and then byte by byte in one buffer. */
	ld_http_parser_init(&p, &tiny);
	rc = ld_http_parse_request(&p, a, len, &whole);
	invariants(&tiny, a, len, rc, &whole);
	why = p.why;
	ld_http_parser_init(&p, &tiny);
	check(ld_http_parser_idle(&p));
	rc2 = 0;
	for (i = 1; i <= len && rc2 == 0; i++) {
		rc2 = ld_http_parse_request(&p, a, i, &part);
		/* Idle exactly while what came is CRLFs, perhaps then a CR. */
		if (rc2 == 0) {
			size_t skip = lead(a, i);

			check(ld_http_parser_idle(&p) ==
			      (skip == i || (skip + 1 == i && a[skip] == '\r')));
		}
	}
	check(rc2 == rc && p.why == why);
	/* A rejection is final: asked again, the same answer. */
	if (rc2 < 0)
		check(ld_http_parse_request(&p, a, i - 1, &part) == rc2 && p.why == why);
	if (rc > 0)
		same(a, &whole, a, &part);
	free(a);
	return 0;
}
