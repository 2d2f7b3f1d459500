/*
 * cache.h - the response cache in front of the store (docs/cache.md).
 *
 * Cache-aside for a few read routes: what is kept is the rendered response
 * (status, body, content type, ETag), so a hit costs no store call and no
 * JSON work. A level is a const table of functions (struct ld_cache_vt);
 * "local" is the per-loop in-process L1. A later "redis" level (L1 in front
 * of a shared L2) slots in behind the same table: the API layer only calls
 * lookup, fill and invalidate.
 *
 * Correctness under writes rests on generations: a process-wide array of
 * counters, one per key-hash slot. A write bumps the slot of every key it
 * makes stale after its commit and before its 2xx (invalidate). A lookup
 * reads the slot (acquire) and takes it as the fill's ticket; an entry is
 * only served while its slot still holds the generation it was filled
 * under, and a fill whose slot moved since its ticket was taken is dropped.
 * So a read that starts after a write was acknowledged never gets the
 * version before it, on any loop, without locks or messages between loops.
 *
 * Threads: a struct ld_cache_loop belongs to one loop thread and every call
 * taking one is made on that thread; the generation array is the only
 * shared state (atomics). render_metrics may run on any thread.
 */
#ifndef LD_CACHE_H
#define LD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

/* What is cached: one kind per cached route. */
enum ld_cache_kind {
	LD_CACHE_ITEM = 0,   /* GET /v1/items/{id} */
	LD_CACHE_USER,	     /* GET /v1/users/{id} */
	LD_CACHE_USER_ITEMS, /* GET /v1/users/{id}/items, first page, default limit */
	LD_CACHE_KINDS
};

/* ld_cache_kind_route is the route label of a kind ("/v1/items/{id}"). */
const char *ld_cache_kind_route(unsigned kind);

struct ld_cache_key {
	enum ld_cache_kind kind;
	int64_t id;
};

/* ld_cache_key_hash mixes a key into 64 bits; every bit depends on every
 * bit of the id and the kind (the low bits pick a generation slot, higher
 * ones a bucket). */
uint64_t ld_cache_key_hash(const struct ld_cache_key *k);

/* A cached response. The pointers are into the level's memory and valid
 * until the next call on the same ld_cache_loop. */
struct ld_cache_value {
	int status;	  /* 200 or 404 */
	bool problem;	  /* Content-Type application/problem+json */
	const char *etag; /* quoted entity tag, "" when the route has none */
	const char *body; /* uncompressed: gzip is decided per request */
	size_t body_len;
};

/* What a miss hands its caller: fill with it (or abandon) exactly once
 * when filler is set; a non-filler just goes to the store. */
struct ld_cache_ticket {
	uint64_t gen;
	bool filler;
};

/* How a parked request is woken: */
enum ld_cache_wake {
	LD_CACHE_WOKE_FILLED = 0, /* the fill was stored: look up again */
	LD_CACHE_WOKE_STORE,	  /* dropped, failed or too slow: go to the store, no fill */
	LD_CACHE_WOKE_FILL	  /* go to the store and fill with your ticket */
};

/* A request parked behind another request's fill of the same key (or,
 * for sync, a write waiting for its deletes). wake runs on the loop
 * thread, once. */
struct ld_cache_waiter {
	struct ld_cache_waiter *next;
	void (*wake)(struct ld_cache_waiter *w, enum ld_cache_wake how);
};

enum ld_cache_result { LD_CACHE_HIT = 0, LD_CACHE_MISS, LD_CACHE_WAIT };

struct ld_redis_config;

struct ld_cache_config {
	char mode[16];			     /* none | local | redis */
	uint64_t l1_bytes;		     /* L1 byte budget per loop */
	uint64_t ttl_ms;		     /* entry lifetime, minus up to 10% jitter */
	uint64_t negative_ttl_ms;	     /* lifetime of a cached 404 */
	uint64_t wait_ms;		     /* longest wait behind another fill */
	uint64_t test_fill_delay_ms;	     /* TEST ONLY: hold every fill this long */
	uint64_t l2_ttl_ms;		     /* redis: a Redis entry's lifetime */
	uint64_t lease_ms;		     /* redis: a fill lease's lifetime */
	uint64_t serve_stale_ms;	     /* keep expired entries this long for lookup_stale */
	const struct ld_redis_config *redis; /* redis: the [redis] settings (set by serve) */
};

struct ld_cache;
struct ld_cache_loop;

struct ld_cache_vt {
	const char *name;
	/* open: nloops loops will call loop_open. 0 or a negative errno with
	 * the reason in err. */
	int (*open)(const struct ld_cache_config *cfg, unsigned nloops, struct ld_cache **out,
		    char *err, size_t errlen);
	void (*close)(struct ld_cache *c);
	/* loop_open on loop index's thread; loop_close there once it stops
	 * serving (handles it owns are closed on uv). */
	int (*loop_open)(struct ld_cache *c, unsigned index, uv_loop_t *uv,
			 struct ld_cache_loop **out);
	void (*loop_close)(struct ld_cache_loop *l);
	/* lookup: HIT with *v set; MISS with *t set (t->filler: this request
	 * fills); WAIT when w was parked behind a fill in progress (only when
	 * w is not NULL; w->wake comes later, once). now_ns is the caller's
	 * reading of uv_hrtime() (a request's step clock, http/server.h) that
	 * an entry's TTL is checked against. */
	enum ld_cache_result (*lookup)(struct ld_cache_loop *l, const struct ld_cache_key *k,
				       struct ld_cache_waiter *w, struct ld_cache_ticket *t,
				       struct ld_cache_value *v, uint64_t now_ns);
	/* lookup_stale (NULL: none): the store could not answer a read of k
	 * (unavailable, timed out); true with *v when this loop still holds
	 * an entry for k of the current generation expired for at most
	 * serve_stale (*past_ms: how long, 0 when it is fresh again). A write
	 * since (a generation bump) always means no. */
	bool (*lookup_stale)(struct ld_cache_loop *l, const struct ld_cache_key *k,
			     struct ld_cache_value *v, uint64_t *past_ms);
	/* fill stores v (copied) under t, or abandons the fill when v is NULL;
	 * either way the key's waiters are woken. */
	void (*fill)(struct ld_cache_loop *l, const struct ld_cache_key *k,
		     const struct ld_cache_ticket *t, const struct ld_cache_value *v);
	/* invalidate: k is stale from now on, on every loop. Call after the
	 * commit and before the answer that acknowledges it. */
	void (*invalidate)(struct ld_cache_loop *l, const struct ld_cache_key *k);
	/* sync (NULL for a level with nothing to wait for): the deletes the
	 * invalidate calls since the last sync made elsewhere (Redis) are
	 * sent; true when w was parked until they are done (w->wake later,
	 * once, how is LD_CACHE_WOKE_FILLED), false when there is nothing to
	 * wait for. */
	bool (*sync)(struct ld_cache_loop *l, struct ld_cache_waiter *w);
	/* render_metrics appends the level's Prometheus series. */
	int (*render_metrics)(struct ld_cache *c, struct ld_buf *out);
};

/* ld_cache_driver: the table for a mode, NULL for "none" and for a mode
 * that is not built; err says why for the latter (and is "" for none). */
const struct ld_cache_vt *ld_cache_driver(const char *mode, char *err, size_t errlen);

/* ld_cache_config_register adds serve's [cache] settings (--cache,
 * --cache-bytes, ...) writing into cfg; call before ld_config_load. */
int ld_cache_config_register(struct ld_cache_config *cfg);

extern const struct ld_cache_vt ld_cache_local;
extern const struct ld_cache_vt ld_cache_redis;

#endif
