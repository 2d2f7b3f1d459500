/*
 * params.c - the small parsers of request details: query parameters, list
 * cursors and entity-tag lists. Kept apart from the handlers so they can be
 * unit-tested and fuzzed on their own.
 */
#include "api/params.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base/b64.h"

/* etag_list_has says whether a comma-separated list of entity tags contains
 * tag; weak says whether W/ prefixes are ignored (If-None-Match uses weak
 * comparison, If-Match strong). "*" matches any existing resource. */
/* parse_int reads 1-19 digits at p; returns the end or NULL. */
static const char *parse_int(const char *p, const char *end, int64_t *out)
{
	uint64_t v = 0;
	int digits = 0;

	while (p < end && *p >= '0' && *p <= '9' && digits < 19) {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
		digits++;
	}
	if (!digits || v > INT64_MAX || (p < end && *p >= '0' && *p <= '9'))
		return NULL;
	*out = (int64_t)v;
	return p;
}

bool ld_etag_list_has(const char *v, size_t n, const char *tag, bool weak)
{
	const char *p = v, *end = v + n;
	size_t tlen = strlen(tag);

	while (p < end) {
		const char *e;
		bool is_weak = false;

		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		if (*p == '*')
			return true;
		if (end - p > 2 && p[0] == 'W' && p[1] == '/') {
			is_weak = true;
			p += 2;
		}
		e = p;
		if (e < end && *e == '"') {
			e = memchr(e + 1, '"', (size_t)(end - e - 1));
			if (!e)
				break;
			e++;
		} else {
			while (e < end && *e != ',')
				e++;
		}
		if ((weak || !is_weak) && (size_t)(e - p) == tlen && memcmp(p, tag, tlen) == 0)
			return true;
		p = e;
	}
	return false;
}

/* if_match_version turns If-Match into the version the write expects:
 * 0 for "*", the version of a strong tag naming this item, or -1 when no tag
 * in the list can match this item (412 without touching the store). */
int64_t ld_if_match_version(const char *v, size_t n, int64_t id)
{
	const char *p = v, *end = v + n;
	int64_t tid, ver;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		if (*p == '*')
			return 0;
		/* Our tags are "<id>.<version>"; anything else cannot match. */
		if (*p == '"') {
			const char *q = p + 1;

			q = parse_int(q, end, &tid);
			if (q && q < end && *q == '.')
				q = parse_int(q + 1, end, &ver);
			else
				q = NULL;
			if (q && q < end && *q == '"' && tid == id && ver > 0)
				return ver;
		}
		while (p < end && *p != ',')
			p++;
	}
	return -1;
}

/* The list cursor is the last id of the page, as base64url of 8 big-endian
 * bytes: opaque to clients, cheap to check, and keyset (never OFFSET). */
void ld_cursor_encode(int64_t id, char *out, size_t cap)
{
	unsigned char b[8];
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(id & 0xff);
		id >>= 8;
	}
	ld_b64url_encode(b, 8, out, cap);
}

int ld_cursor_decode(const char *s, size_t n, int64_t *id)
{
	unsigned char b[8];
	uint64_t v = 0;
	int i;

	if (ld_b64url_decode(s, n, b, sizeof(b)) != 8)
		return -EINVAL;
	for (i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	if (v == 0 || v > INT64_MAX)
		return -EINVAL;
	*id = (int64_t)v;
	return 0;
}

/* query_param finds name=value in the query string (no percent-decoding is
 * needed for the API's parameters: digits and base64url). */
bool ld_query_param(const char *query, size_t qlen, const char *name, const char **v, size_t *n)
{
	const char *p = query, *end = query + qlen;
	size_t nl = strlen(name);

	if (!p)
		return false;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;

		if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
			*v = p + nl + 1;
			*n = (size_t)(e - *v);
			return true;
		}
		if ((size_t)(e - p) == nl && memcmp(p, name, nl) == 0) {
			*v = e;
			*n = 0;
			return true;
		}
		p = e + 1;
	}
	return false;
}
