/*
 * gcra.h - the generic cell rate algorithm over a fixed-size table of keys,
 * and the RateLimit fields it is advertised with (docs/api.md).
 *
 * A budget is "quota requests per window": the emission interval is
 * T = window / quota, and a key may be up to one window ahead of now, so a
 * quiet key has a burst of quota requests and then quota per window. One
 * 64-bit theoretical arrival time (TAT) per key is the whole state.
 *
 * The table is set-associative (LD_GCRA_WAYS slots per set, the set chosen
 * by a keyed SipHash of the key, so a client cannot aim keys at one set). A
 * new key takes an empty slot, else the slot of its set with the smallest
 * TAT: one whose TAT is in the past is fully replenished, so reusing it loses
 * nothing; only when every slot of the set is still owed time is a live
 * entry evicted (counted), and its key starts afresh with a full burst. So a
 * flood of keys larger than the table never grows memory and never removes
 * the limit: each key still gets at most one burst per eviction.
 *
 * Time is the caller's (nanoseconds, monotonic, > 0): the tests drive it.
 * Not thread-safe: one table per event loop.
 */
#ifndef LD_API_GCRA_H
#define LD_API_GCRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LD_GCRA_WAYS 8

/* A key: which budget, and the user id or the client address (16 bytes,
 * IPv4 as ::ffff:a.b.c.d). Compared as bytes: zero the padding. */
struct ld_gcra_key {
	uint8_t budget;
	uint8_t kind; /* 1 user, 2 address (IPv6: its /64), 3 an IPv6 /48 */
	uint8_t pad[6];
	uint8_t id[16];
};

struct ld_gcra_budget {
	uint32_t quota;	    /* requests per window, >= 1 */
	uint64_t window_ms; /* >= 1 */
};

struct ld_gcra_decision {
	bool allowed;
	uint32_t quota;		/* the budget's quota (RateLimit-Policy q) */
	uint64_t window_s;	/* the window in whole seconds, at least 1 (w) */
	uint32_t remaining;	/* requests that would be allowed now (r) */
	uint64_t reset_s;	/* seconds until the whole quota is back (t) */
	uint64_t retry_after_s; /* refused: seconds until one request fits */
};

struct ld_gcra_table;

struct ld_gcra_stats {
	uint64_t entries;   /* slots holding a key */
	uint64_t capacity;  /* slots */
	uint64_t evictions; /* live entries (still owed time) dropped for a new key */
};

/* ld_gcra_open makes a table of at least slots entries (rounded up to whole
 * sets, power of two); 0 or -ENOMEM / -EINVAL (slots 0). */
int ld_gcra_open(unsigned slots, struct ld_gcra_table **out);
void ld_gcra_close(struct ld_gcra_table *t);

/* ld_gcra_decide takes one request of key against b at now_ns, and says
 * whether it is allowed; a refused request costs nothing. */
void ld_gcra_decide(struct ld_gcra_table *t, const struct ld_gcra_key *k,
		    const struct ld_gcra_budget *b, uint64_t now_ns, struct ld_gcra_decision *d);

/* ld_gcra_step is the algorithm alone on one stored TAT (0 = none): *tat is
 * updated when allowed. Pure. */
void ld_gcra_step(uint64_t *tat, const struct ld_gcra_budget *b, uint64_t now_ns,
		  struct ld_gcra_decision *d);

void ld_gcra_stats(const struct ld_gcra_table *t, struct ld_gcra_stats *st);

/* The same algorithm kept elsewhere (Redis, api/ratelimit_redis.c), in
 * microseconds: ld_gcra_interval_us gives the emission interval t and the
 * window w = t * quota it stores against; ld_gcra_describe fills d from the
 * outcome of one step: allowed, and ahead, how far the key's TAT is past
 * now after the step (allowed) or before it (refused), in microseconds.
 * The fields are the ones ld_gcra_step gives. Pure. */
void ld_gcra_interval_us(const struct ld_gcra_budget *b, uint64_t *t, uint64_t *w);
void ld_gcra_describe(const struct ld_gcra_budget *b, bool allowed, uint64_t ahead_us,
		      struct ld_gcra_decision *d);

/* ld_gcra_fields writes the two fields of draft-ietf-httpapi-ratelimit-
 * headers-10 for policy name: into policy, `"name";q=Q;w=W`, into state,
 * `"name";r=R;t=T`. name is a token of [a-z0-9-]. Each buffer takes 96
 * bytes. */
#define LD_GCRA_FIELD_MAX 96
void ld_gcra_fields(const char *name, const struct ld_gcra_decision *d,
		    char policy[LD_GCRA_FIELD_MAX], char state[LD_GCRA_FIELD_MAX]);

/* ld_gcra_budget_parse reads "Q/DURATION" ("600/1m", "20/1s"); 0 or
 * -EINVAL. */
int ld_gcra_budget_parse(const char *s, struct ld_gcra_budget *b);

#endif
