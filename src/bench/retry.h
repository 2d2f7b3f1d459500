/*
 * retry.h - how `ladder bench --retries` retries (docs/bench.md, "Retries"):
 * which requests may be retried, the backoff, and the retry budget. Pure:
 * the engine gives the clock and the random numbers, the tests fake them.
 *
 * - Only idempotent requests: GET, HEAD, PUT, DELETE, OPTIONS, and a POST
 *   that carries an Idempotency-Key (the server replays its first outcome).
 * - Only on an answer that says "later" (429, 503) or a connection that
 *   failed under the request (reset, closed, a write that failed): never
 *   on a timeout (its time is spent) nor another status.
 * - Exponential backoff with full jitter: retry n (1-based) waits
 *   random[0, min(cap, base * 2^(n-1))]; a Retry-After the server sent is
 *   the floor.
 * - A retry budget, a token bucket: every first attempt adds budget_milli
 *   thousandths of a token (100: a retry per 10 requests), a retry takes a
 *   whole one, and the bucket holds at most cap tokens and starts empty. So
 *   over any stretch of the run the retries are at most budget_milli/1000 of
 *   the requests plus cap: a fault that fails every request costs that much
 *   extra load, not (1 + retries) times the load.
 *
 * Threading: a budget belongs to one engine thread.
 */
#ifndef LD_BENCH_RETRY_H
#define LD_BENCH_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ld_retry_policy {
	int max;	       /* retries per request; 0: off */
	uint64_t base_ns;      /* first retry's longest wait */
	uint64_t cap_ns;       /* longest wait */
	unsigned budget_milli; /* tokens per first attempt, in thousandths */
	unsigned budget_cap;   /* most whole tokens the bucket holds */
};

struct ld_retry_budget {
	uint64_t milli, cap_milli;
	unsigned per;
};

void ld_retry_budget_init(struct ld_retry_budget *b, const struct ld_retry_policy *p);
/* ld_retry_budget_request: a first attempt was sent. */
void ld_retry_budget_request(struct ld_retry_budget *b);
/* ld_retry_budget_take: true (one token spent) when a retry may go. */
bool ld_retry_budget_take(struct ld_retry_budget *b);

/* ld_retry_delay_ns is retry n's wait (n >= 1) for the random number rnd,
 * at least retry_after_s seconds when that is >= 0. */
uint64_t ld_retry_delay_ns(const struct ld_retry_policy *p, int n, uint64_t rnd,
			   int64_t retry_after_s);

/* ld_retry_idempotent says whether the request bytes may be sent again. */
bool ld_retry_idempotent(const char *req, size_t len);

/* ld_retry_status: an answer worth retrying (429, 503). */
bool ld_retry_status(int status);

#endif
