/*
 * test_bench_retry.c - `ladder bench --retries`: which requests may be
 * retried, the full-jitter backoff with Retry-After as its floor (a fake
 * random number), and the retry budget's token bucket.
 */
#include "unit.h"

#include <string.h>

#include "bench/retry.h"
#include "http/client.h"

#define MS 1000000ULL
#define S  1000000000ULL

static const struct ld_retry_policy pol = {
    .max = 5, .base_ns = 50 * MS, .cap_ns = 2 * S, .budget_milli = 100, .budget_cap = 10};

static void test_backoff_full_jitter(void)
{
	/* The ceiling doubles from base and stops at the cap; the wait is
	 * rnd modulo (ceiling + 1): anything from 0 to the ceiling. */
	CHECK_INT(ld_retry_delay_ns(&pol, 1, 0, -1), 0);
	CHECK_INT(ld_retry_delay_ns(&pol, 1, 50 * MS, -1), 50 * MS);
	CHECK_INT(ld_retry_delay_ns(&pol, 1, 50 * MS + 1, -1), 0);
	CHECK_INT(ld_retry_delay_ns(&pol, 2, 100 * MS, -1), 100 * MS);
	CHECK_INT(ld_retry_delay_ns(&pol, 3, 200 * MS, -1), 200 * MS);
	CHECK_INT(ld_retry_delay_ns(&pol, 3, 200 * MS + 1, -1), 0);
	CHECK_INT(ld_retry_delay_ns(&pol, 6, 1600 * MS, -1), 1600 * MS);
	CHECK_INT(ld_retry_delay_ns(&pol, 7, 2 * S, -1), 2 * S); /* 3.2s: capped */
	CHECK_INT(ld_retry_delay_ns(&pol, 7, 2 * S + 1, -1), 0);
	CHECK_INT(ld_retry_delay_ns(&pol, 60, ~0ULL, -1), ~0ULL % (2 * S + 1)); /* no overflow */
	CHECK_INT(ld_retry_delay_ns(&pol, 2, 7, -1), 7);
}

static void test_retry_after_is_the_floor(void)
{
	CHECK_INT(ld_retry_delay_ns(&pol, 1, 10 * MS, 3), 3 * S);
	CHECK_INT(ld_retry_delay_ns(&pol, 1, 10 * MS, 0), 10 * MS);
	/* A jittered wait longer than Retry-After stays. */
	{
		struct ld_retry_policy p = pol;

		p.base_ns = 5 * S;
		p.cap_ns = 5 * S;
		CHECK_INT(ld_retry_delay_ns(&p, 1, 4 * S, 1), 4 * S);
	}
}

static void test_budget_ten_percent(void)
{
	struct ld_retry_budget b;
	int granted = 0;

	ld_retry_budget_init(&b, &pol);
	/* Empty at the start: a fault from the first request gets nothing. */
	CHECK(!ld_retry_budget_take(&b));
	/* Every request fails and asks for a retry: one in ten gets it. */
	for (int i = 0; i < 1000; i++) {
		ld_retry_budget_request(&b);
		if (ld_retry_budget_take(&b))
			granted++;
	}
	CHECK_INT(granted, 100);
	/* A long healthy stretch saves up at most the cap. */
	for (int i = 0; i < 100000; i++)
		ld_retry_budget_request(&b);
	granted = 0;
	while (ld_retry_budget_take(&b))
		granted++;
	CHECK_INT(granted, 10);
}

static void test_budget_zero_never_retries(void)
{
	struct ld_retry_policy p = pol;
	struct ld_retry_budget b;

	p.budget_milli = 0;
	ld_retry_budget_init(&b, &p);
	for (int i = 0; i < 10000; i++)
		ld_retry_budget_request(&b);
	CHECK(!ld_retry_budget_take(&b));
}

static bool idem(const char *s)
{
	return ld_retry_idempotent(s, strlen(s));
}

static void test_idempotent_requests(void)
{
	CHECK(idem("GET /v1/items/1 HTTP/1.1\r\nHost: a\r\n\r\n"));
	CHECK(idem("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"));
	CHECK(idem("PUT /v1/items/1 HTTP/1.1\r\nHost: a\r\n\r\n{}"));
	CHECK(idem("DELETE /v1/items/1 HTTP/1.1\r\nHost: a\r\n\r\n"));
	CHECK(!idem("POST /v1/items HTTP/1.1\r\nHost: a\r\n\r\n{}"));
	CHECK(!idem("PATCH /v1/items/1 HTTP/1.1\r\nHost: a\r\n\r\n{}"));
	CHECK(idem("POST /v1/items HTTP/1.1\r\nHost: a\r\nidempotency-key: \"k\"\r\n\r\n{}"));
	CHECK(idem("POST /v1/items HTTP/1.1\r\nIdempotency-Key: \"k\"\r\n\r\n"));
	/* In the body it is not a field. */
	CHECK(!idem("POST /v1/items HTTP/1.1\r\nHost: a\r\n\r\n\r\nIdempotency-Key: \"k\""));
	CHECK(!idem("GETX / HTTP/1.1\r\n\r\n"));
	CHECK(!idem("GET"));
}

static void test_retry_statuses(void)
{
	CHECK(ld_retry_status(429));
	CHECK(ld_retry_status(503));
	CHECK(!ld_retry_status(500));
	CHECK(!ld_retry_status(502));
	CHECK(!ld_retry_status(404));
	CHECK(!ld_retry_status(200));
}

static int64_t retry_after_of(const char *resp)
{
	struct ld_http_resp r;

	ld_http_resp_init(&r, false, NULL);
	if (ld_http_resp_feed(&r, resp, strlen(resp)) != (ssize_t)strlen(resp) || !r.done)
		return -99;
	return r.retry_after_s;
}

static void test_retry_after_parsed(void)
{
	CHECK_INT(retry_after_of("HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: "
				 "0\r\n\r\n"),
		  7);
	CHECK_INT(retry_after_of("HTTP/1.1 503 Busy\r\nretry-after:  120 \r\nContent-Length: "
				 "0\r\n\r\n"),
		  120);
	/* A date, or nothing: unknown. */
	CHECK_INT(retry_after_of("HTTP/1.1 503 Busy\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 "
				 "GMT\r\nContent-Length: 0\r\n\r\n"),
		  -1);
	CHECK_INT(retry_after_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), -1);
	/* Not mistaken for a framing field. */
	CHECK_INT(retry_after_of("HTTP/1.1 429 X\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\nab"),
		  1);
}

int main(void)
{
	RUN(test_backoff_full_jitter);
	RUN(test_retry_after_is_the_floor);
	RUN(test_budget_ten_percent);
	RUN(test_budget_zero_never_retries);
	RUN(test_idempotent_requests);
	RUN(test_retry_statuses);
	RUN(test_retry_after_parsed);
	return unit_finish();
}
