/*
 * l2_codec.c - keys and values of the redis level in Redis (l2_codec.h).
 */
#include "cache/l2_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char kind_char[LD_CACHE_KINDS] = {'i', 'u', 'l'};

int ld_l2_key(char *out, size_t cap, const char *prefix, char which, const struct ld_cache_key *k)
{
	return snprintf(out, cap, "%s%c:%c%" PRId64, prefix, which,
			(unsigned)k->kind < LD_CACHE_KINDS ? kind_char[k->kind] : '?', k->id);
}

bool ld_l2_parse_key(const char *prefix, const char *s, size_t n, struct ld_cache_key *k)
{
	size_t pl = strlen(prefix), i;
	int64_t id = 0;

	if (n < pl + 4 || memcmp(s, prefix, pl) || s[pl] != 'c' || s[pl + 1] != ':')
		return false;
	s += pl + 2;
	n -= pl + 2;
	for (i = 0; i < LD_CACHE_KINDS && kind_char[i] != s[0]; i++)
		;
	/* Ids are positive and at most 19 digits: no sign, no leading zero. */
	if (i == LD_CACHE_KINDS || n < 2 || n > 20 || s[1] == '0')
		return false;
	for (size_t j = 1; j < n; j++) {
		if (s[j] < '0' || s[j] > '9' || id > (INT64_MAX - (s[j] - '0')) / 10)
			return false;
		id = id * 10 + (s[j] - '0');
	}
	k->kind = (enum ld_cache_kind)i;
	k->id = id;
	return true;
}

char *ld_l2_encode(const struct ld_cache_value *v, size_t *len)
{
	char head[96];
	int n = snprintf(head, sizeof(head), "%d %d %s\n", v->status, v->problem ? 1 : 0, v->etag);
	char *out;

	if (n < 0 || (size_t)n >= sizeof(head))
		return NULL;
	out = malloc((size_t)n + v->body_len + 1);
	if (!out)
		return NULL;
	memcpy(out, head, (size_t)n);
	if (v->body_len)
		memcpy(out + n, v->body, v->body_len);
	*len = (size_t)n + v->body_len;
	return out;
}

bool ld_l2_decode(const char *s, size_t n, struct ld_cache_value *v, char *etag, size_t etagcap)
{
	const char *nl = n ? memchr(s, '\n', n) : NULL, *sp;
	size_t el;

	if (!nl || n < 7 || (memcmp(s, "200 ", 4) != 0 && memcmp(s, "404 ", 4) != 0) ||
	    (s[4] != '0' && s[4] != '1') || s[5] != ' ')
		return false;
	v->status = s[0] == '2' ? 200 : 404;
	v->problem = s[4] == '1';
	sp = s + 6;
	el = (size_t)(nl - sp);
	if (nl < sp || el >= etagcap)
		return false;
	for (size_t i = 0; i < el; i++)
		if ((unsigned char)sp[i] < 0x20 || sp[i] == 0x7f)
			return false; /* it goes into a header line */
	memcpy(etag, sp, el);
	etag[el] = '\0';
	v->etag = etag;
	v->body = nl + 1;
	v->body_len = n - (size_t)(nl + 1 - s);
	return true;
}
