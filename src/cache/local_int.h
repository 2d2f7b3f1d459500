/*
 * local_int.h - the "local" level's insides, shared with the "redis" level
 * (redis_level.c), which is the local level with Redis behind it: the same
 * L1 per loop, the same one-fill-per-key records and waits, plus hooks.
 */
#ifndef LD_CACHE_LOCAL_INT_H
#define LD_CACHE_LOCAL_INT_H

#include <stdatomic.h>

#include "cache/l1.h"

enum ev {
	EV_HIT,
	EV_MISS,
	EV_FILL,
	EV_FILL_DROPPED, /* its slot moved since the ticket: it may be stale */
	EV_COALESCED,	 /* waited behind another request's fill */
	EV_WAIT_TIMEOUT, /* waited past wait_ms and went to the store */
	EV_INVALIDATION,
	EV_STALE, /* served past its TTL: the store could not answer */
	EV_COUNT
};

#define INFLIGHT_BUCKETS 256

/* Where a fill record of the redis level stands (0 for the local level). */
enum l2_state {
	L2_NONE = 0, /* no Redis step: a request of ours reads the store */
	L2_LOOKUP,   /* the Redis look-up is out; every request waits */
	L2_BUSY,     /* another node holds the key's lease: poll again */
	L2_FILLING   /* we hold the lease; our first waiter reads the store */
};

struct inflight {
	struct inflight *next;
	struct ld_cache_key key;
	uint64_t started_ns;
	bool timed_out; /* its waiters were sent to the store; newcomers go too */
	struct ld_cache_waiter *head, **tail;
	/* The redis level's. */
	enum l2_state l2;
	uint64_t gen;	  /* the key's generation when the record was made */
	uint64_t poll_ns; /* L2_BUSY: when to look again */
	char token[40];	  /* the lease's token (L2_FILLING) */
};

struct ld_cache_l2;
struct ld_cache_l2_loop;

struct ld_cache {
	struct ld_cache_config cfg;
	struct ld_cache_gens gens;
	unsigned nloops;
	struct ld_cache_loop **loops; /* for metrics; set by loop_open */
	struct ld_cache_l2 *l2;	      /* the redis level's, or NULL */
};

struct ld_cache_loop {
	struct ld_cache *c;
	unsigned index;
	uv_loop_t *uv;
	struct ld_l1 l1;
	struct inflight *inflight[INFLIGHT_BUCKETS];
	unsigned nwaiting; /* inflight records with waiters */
	uv_timer_t wait_timer;
	uv_timer_t delay_timer;
	struct delayed *delayed, **delayed_tail;
	/* Written by the owner only (relaxed), read by render_metrics. */
	_Atomic uint64_t ev[LD_CACHE_KINDS][EV_COUNT];
	_Atomic uint64_t evictions[LD_CACHE_KINDS];
	struct ld_cache_l2_loop *l2; /* the redis level's, or NULL */
};

void ld__cache_count(struct ld_cache_loop *l, unsigned kind, enum ev e);

int ld__local_open(const struct ld_cache_config *cfg, unsigned nloops, struct ld_cache **out,
		   char *err, size_t errlen);
void ld__local_close(struct ld_cache *c);
bool ld__local_lookup_stale(struct ld_cache_loop *l, const struct ld_cache_key *k,
			    struct ld_cache_value *v, uint64_t *past_ms);
int ld__local_loop_open(struct ld_cache *c, unsigned index, uv_loop_t *uv,
			struct ld_cache_loop **out);
void ld__local_loop_close(struct ld_cache_loop *l);
void ld__local_fill(struct ld_cache_loop *l, const struct ld_cache_key *k,
		    const struct ld_cache_ticket *t, const struct ld_cache_value *v);
void ld__local_invalidate(struct ld_cache_loop *l, const struct ld_cache_key *k);
int ld__local_render(struct ld_cache *c, struct ld_buf *out);

/* The fill record of k (*p NULL when there is none). */
struct inflight **ld__inflight_at(struct ld_cache_loop *l, const struct ld_cache_key *k,
				  uint64_t hash);
/* ld__inflight_new adds a record for k (none there) with no waiters. */
struct inflight *ld__inflight_new(struct ld_cache_loop *l, const struct ld_cache_key *k,
				  uint64_t hash);
/* ld__park puts w behind f's fill (coalesced: count it as a coalesced
 * wait; the redis level parks the record's first request too). */
void ld__park(struct ld_cache_loop *l, struct inflight *f, struct ld_cache_waiter *w,
	      bool coalesced);
/* ld__unpark_first takes f's first waiter off (NULL when none). */
struct ld_cache_waiter *ld__unpark_first(struct ld_cache_loop *l, struct inflight *f);
/* ld__finish removes k's record and wakes its waiters with how. */
void ld__finish(struct ld_cache_loop *l, const struct ld_cache_key *k, uint64_t hash,
		enum ld_cache_wake how);
/* ld__put stores v in this loop's L1 under gen; false when the slot moved
 * since (dropped, counted) or it did not fit. */
bool ld__put(struct ld_cache_loop *l, const struct ld_cache_key *k, uint64_t hash, uint64_t gen,
	     const struct ld_cache_value *v);

/* Hooks the redis level sets (redis_level.c). */
/* ld__l2_filled runs when a fill of ours ends, before its record goes: v
 * is what the store answered (NULL: nothing to keep). */
void ld__l2_filled(struct ld_cache_loop *l, struct inflight *f, const struct ld_cache_value *v);
/* ld__l2_render_ev appends the level="l2" series of counter
 * ladder_cache_NAME_total (inside its family). */
void ld__l2_render_ev(struct ld_cache *c, const char *name, struct ld_buf *out);

#endif
