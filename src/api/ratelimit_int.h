/*
 * ratelimit_int.h - what the rate-limit backends share (ratelimit.c,
 * ratelimit_redis.c); not for other modules.
 */
#ifndef LD_API_RATELIMIT_INT_H
#define LD_API_RATELIMIT_INT_H

#include <stdatomic.h>

#include "api/ratelimit.h"

struct ld_rl_redis;

/* One loop's state: the local table (with Redis, the fallback's), and the
 * Redis side when the store is redis. */
struct ld_rl_loop {
	const struct ld_rl_config *c;
	struct ld_gcra_table *t;
	struct ld_rl_redis *redis; /* NULL: local store */
};

/* The local table's open, close and decide (a loop's whole state with the
 * local store; the fallback's table with Redis). */
int ld__rl_local_open(const struct ld_rl_config *c, struct ld_rl_loop *l);
void ld__rl_local_close(struct ld_rl_loop *l);
void ld__rl_local_decide(struct ld_rl_loop *l, const struct ld_gcra_key *k,
			 const struct ld_gcra_budget *b, uint64_t now_ns,
			 struct ld_gcra_decision *d);

/* Decisions by where they were made. */
enum ld_rl_source { LD_RL_SRC_LOCAL = 0, LD_RL_SRC_REDIS, LD_RL_SRC_FALLBACK, LD_RL_NSRC };
extern _Atomic uint64_t ld__rl_by_source[LD_RL_NSRC];

/* The Redis decisions' latency, send to reply: a histogram. */
#define LD_RL_LAT_BUCKETS 11
extern const double ld__rl_lat_le[LD_RL_LAT_BUCKETS]; /* seconds; the last is +Inf */
extern _Atomic uint64_t ld__rl_lat_count[LD_RL_LAT_BUCKETS];
extern _Atomic uint64_t ld__rl_lat_sum_ns;

uint64_t ld__rl_now_ns(void);

#endif
