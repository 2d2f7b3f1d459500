/*
 * retry.c - which requests are retried, when, and how many (retry.h).
 */
#include "bench/retry.h"

#include <string.h>
#include <strings.h>

void ld_retry_budget_init(struct ld_retry_budget *b, const struct ld_retry_policy *p)
{
	b->milli = 0;
	b->per = p->budget_milli;
	b->cap_milli = (uint64_t)(p->budget_cap ? p->budget_cap : 1) * 1000;
}

void ld_retry_budget_request(struct ld_retry_budget *b)
{
	b->milli += b->per;
	if (b->milli > b->cap_milli)
		b->milli = b->cap_milli;
}

bool ld_retry_budget_take(struct ld_retry_budget *b)
{
	if (b->milli < 1000)
		return false;
	b->milli -= 1000;
	return true;
}

uint64_t ld_retry_delay_ns(const struct ld_retry_policy *p, int n, uint64_t rnd,
			   int64_t retry_after_s)
{
	uint64_t ceil = p->base_ns, d;

	/* Doubling stops at the cap (and long before it could overflow). */
	for (int i = 1; i < n && ceil < p->cap_ns; i++)
		ceil *= 2;
	if (ceil > p->cap_ns)
		ceil = p->cap_ns;
	d = ceil ? rnd % (ceil + 1) : 0;
	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000000000ULL > d)
		d = (uint64_t)retry_after_s * 1000000000ULL;
	return d;
}

static bool method_is(const char *req, size_t len, const char *m)
{
	size_t n = strlen(m);

	return len > n && !memcmp(req, m, n) && req[n] == ' ';
}

/* has_key: an Idempotency-Key field in the header (before the blank line). */
static bool has_key(const char *req, size_t len)
{
	static const char name[] = "\r\nidempotency-key:";
	const size_t n = sizeof(name) - 1;

	for (size_t i = 0; i + n <= len; i++) {
		if (req[i] == '\r' && i + 3 < len && !memcmp(req + i, "\r\n\r\n", 4))
			return false;
		if (!strncasecmp(req + i, name, n))
			return true;
	}
	return false;
}

bool ld_retry_idempotent(const char *req, size_t len)
{
	if (method_is(req, len, "GET") || method_is(req, len, "HEAD") ||
	    method_is(req, len, "PUT") || method_is(req, len, "DELETE") ||
	    method_is(req, len, "OPTIONS"))
		return true;
	return method_is(req, len, "POST") && has_key(req, len);
}

bool ld_retry_status(int status)
{
	return status == 429 || status == 503;
}
