/*
 * l1.h - the in-process cache structure behind the "local" level: a hash
 * table of rendered responses with LRU eviction under a byte budget, TTL
 * with jitter, and the generation check (cache.h says why generations).
 *
 * One struct ld_l1 belongs to one thread: no locks. Time is passed in, so
 * the structure is tested without a clock. The generation array
 * (struct ld_cache_gens) is shared by every thread.
 */
#ifndef LD_CACHE_L1_H
#define LD_CACHE_L1_H

#include <stdatomic.h>

#include "cache/cache.h"

/* Generations: one counter per key-hash slot, shared by all loops. Two keys
 * in one slot only cost each other hits, never correctness. */
struct ld_cache_gens {
	_Atomic uint64_t *slot;
	uint64_t mask;
};

int ld_cache_gens_init(struct ld_cache_gens *g, unsigned log2_slots);
void ld_cache_gens_release(struct ld_cache_gens *g);

static inline uint64_t ld_cache_gen_load(const struct ld_cache_gens *g, uint64_t hash)
{
	return atomic_load_explicit(&g->slot[hash & g->mask], memory_order_acquire);
}

static inline void ld_cache_gen_bump(struct ld_cache_gens *g, uint64_t hash)
{
	atomic_fetch_add_explicit(&g->slot[hash & g->mask], 1, memory_order_acq_rel);
}

/* The LRU list's links; first in an entry, so a link is its entry. */
struct ld_l1_link {
	struct ld_l1_link *prev, *next;
};

struct ld_l1_entry {
	struct ld_l1_link lru;	   /* LRU list, most recent first (must be first) */
	struct ld_l1_entry *hnext; /* bucket chain */
	uint64_t hash;
	struct ld_cache_key key;
	uint64_t gen;	     /* the slot's generation the fill was started under */
	uint64_t expires_ns; /* 0 = never (not used by the level) */
	size_t cost;	     /* bytes charged to the budget */
	int status;
	bool problem;
	char etag[48];
	size_t body_len;
	char body[];
};

/* Why a get found nothing. */
enum ld_l1_miss { LD_L1_ABSENT = 0, LD_L1_EXPIRED, LD_L1_STALE };

struct ld_l1 {
	struct ld_l1_entry **buckets;
	size_t nbuckets;       /* power of two */
	struct ld_l1_link lru; /* sentinel: lru.next is the newest */
	size_t budget;
	_Atomic size_t bytes; /* written by the owner only; read by metrics */
	size_t count;
	uint64_t rng;
	uint64_t evictions[LD_CACHE_KINDS]; /* pushed out by the budget */
	/* An entry past its expiry is kept this much longer for
	 * ld_l1_get_stale (0: dropped at expiry). Set after ld_l1_init. */
	uint64_t grace_ns;
};

/* ld_l1_init sets up an empty cache of budget bytes (entries, their
 * bodies and the table count against it). 0, -EINVAL (budget too small
 * for the table), -ENOMEM. */
int ld_l1_init(struct ld_l1 *c, size_t budget, uint64_t seed);
void ld_l1_release(struct ld_l1 *c);

/* ld_l1_get returns the entry for k when it is there, not expired at now
 * and filled under generation gen; else NULL with *why set, and an expired
 * or stale entry is removed (an expired one within grace_ns of its expiry
 * is kept, for ld_l1_get_stale). A hit becomes the most recently used. */
const struct ld_l1_entry *ld_l1_get(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash,
				    uint64_t gen, uint64_t now_ns, enum ld_l1_miss *why);

/* ld_l1_get_stale returns k's entry when it was filled under generation gen
 * and is not more than grace_ns past its expiry at now (it may not be
 * expired at all), with *past_ns how long past (at least 1 once expired; 0:
 * still fresh); else NULL.
 * An entry of another generation is never returned: a write since made it
 * wrong, not just old. The LRU order is not changed. */
const struct ld_l1_entry *ld_l1_get_stale(struct ld_l1 *c, const struct ld_cache_key *k,
					  uint64_t hash, uint64_t gen, uint64_t now_ns,
					  uint64_t *past_ns);

/* ld_l1_put stores v for k under gen until now + ttl (replacing any
 * entry), evicting least recently used entries until it fits. 0, -E2BIG
 * (v alone is over the budget: nothing stored) or -ENOMEM. */
int ld_l1_put(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash, uint64_t gen,
	      uint64_t now_ns, uint64_t ttl_ns, const struct ld_cache_value *v);

/* ld_l1_clear drops every entry. */
void ld_l1_clear(struct ld_l1 *c);

/* ld_l1_remove drops k's entry if any; 1 when there was one. */
int ld_l1_remove(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash);

/* ld_l1_jitter is ttl minus a random 0..10% of it, so entries filled
 * together do not all expire in the same instant. */
uint64_t ld_l1_jitter(struct ld_l1 *c, uint64_t ttl_ns);

/* The bytes one entry costs (exposed for tests). */
size_t ld_l1_cost(size_t body_len);

#endif
