/*
 * l1.c - the per-loop cache structure (l1.h).
 */
#include "cache/l1.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

uint64_t ld_cache_key_hash(const struct ld_cache_key *k)
{
	/* splitmix64's finaliser over id and kind: ids are dense, so the low
	 * bits must depend on every input bit. */
	uint64_t x = (uint64_t)k->id * 0x9e3779b97f4a7c15ull + (uint64_t)k->kind + 1;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

int ld_cache_gens_init(struct ld_cache_gens *g, unsigned log2_slots)
{
	size_t n = (size_t)1 << log2_slots;

	g->slot = calloc(n, sizeof(*g->slot));
	if (!g->slot)
		return -ENOMEM;
	g->mask = n - 1;
	return 0;
}

void ld_cache_gens_release(struct ld_cache_gens *g)
{
	free(g->slot);
	g->slot = NULL;
}

size_t ld_l1_cost(size_t body_len)
{
	/* The entry and its body, plus the allocator's rounding (16). */
	return (sizeof(struct ld_l1_entry) + body_len + 15) & ~(size_t)15;
}

static size_t used(const struct ld_l1 *c)
{
	return atomic_load_explicit(&c->bytes, memory_order_relaxed);
}

static void add_bytes(struct ld_l1 *c, size_t n, bool plus)
{
	size_t b = used(c);

	atomic_store_explicit(&c->bytes, plus ? b + n : b - n, memory_order_relaxed);
}

int ld_l1_init(struct ld_l1 *c, size_t budget, uint64_t seed)
{
	size_t table, nb = 64;

	memset(c, 0, sizeof(*c));
	/* One bucket per ~256 bytes of budget (a small item's entry), up to
	 * 1M: chains stay short without resizing. The table is paid from the
	 * budget. */
	while (nb < budget / 256 && nb < ((size_t)1 << 20))
		nb <<= 1;
	table = nb * sizeof(*c->buckets);
	if (budget < table + ld_l1_cost(0))
		return -EINVAL;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (!c->buckets)
		return -ENOMEM;
	c->nbuckets = nb;
	c->lru.next = c->lru.prev = &c->lru;
	c->budget = budget;
	atomic_store_explicit(&c->bytes, table, memory_order_relaxed);
	c->rng = seed | 1;
	return 0;
}

static struct ld_l1_entry **slot_of(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash)
{
	struct ld_l1_entry **p = &c->buckets[(hash >> 20) & (c->nbuckets - 1)];

	while (*p && ((*p)->key.id != k->id || (*p)->key.kind != k->kind))
		p = &(*p)->hnext;
	return p;
}

static void lru_unlink(struct ld_l1_entry *e)
{
	e->lru.prev->next = e->lru.next;
	e->lru.next->prev = e->lru.prev;
}

static void lru_front(struct ld_l1 *c, struct ld_l1_entry *e)
{
	e->lru.next = c->lru.next;
	e->lru.prev = &c->lru;
	c->lru.next->prev = &e->lru;
	c->lru.next = &e->lru;
}

_Static_assert(offsetof(struct ld_l1_entry, lru) == 0, "an entry starts with its links");

static struct ld_l1_entry *entry_of(struct ld_l1_link *l)
{
	return (struct ld_l1_entry *)(void *)l; /* lru is the first member */
}

/* drop removes the entry *p points at. */
static void drop(struct ld_l1 *c, struct ld_l1_entry **p)
{
	struct ld_l1_entry *e = *p;

	*p = e->hnext;
	lru_unlink(e);
	add_bytes(c, e->cost, false);
	c->count--;
	free(e);
}

void ld_l1_release(struct ld_l1 *c)
{
	struct ld_l1_link *e, *next;

	for (e = c->lru.next; c->buckets && e != &c->lru; e = next) {
		next = e->next;
		free(entry_of(e));
	}
	free(c->buckets);
	memset(c, 0, sizeof(*c));
}

const struct ld_l1_entry *ld_l1_get(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash,
				    uint64_t gen, uint64_t now_ns, enum ld_l1_miss *why)
{
	struct ld_l1_entry **p = slot_of(c, k, hash);
	struct ld_l1_entry *e = *p;

	if (!e) {
		*why = LD_L1_ABSENT;
		return NULL;
	}
	if (e->gen != gen || (e->expires_ns && now_ns >= e->expires_ns)) {
		*why = e->gen != gen ? LD_L1_STALE : LD_L1_EXPIRED;
		/* Expired but of the right generation: kept through the grace
		 * period, in case the store cannot answer (ld_l1_get_stale). */
		if (e->gen != gen || now_ns - e->expires_ns >= c->grace_ns)
			drop(c, p);
		return NULL;
	}
	lru_unlink(e);
	lru_front(c, e);
	return e;
}

const struct ld_l1_entry *ld_l1_get_stale(struct ld_l1 *c, const struct ld_cache_key *k,
					  uint64_t hash, uint64_t gen, uint64_t now_ns,
					  uint64_t *past_ns)
{
	struct ld_l1_entry *e = *slot_of(c, k, hash);

	*past_ns = 0;
	if (!e || e->gen != gen)
		return NULL;
	if (e->expires_ns && now_ns >= e->expires_ns) {
		*past_ns = now_ns - e->expires_ns + 1; /* at least 1 once expired */
		if (*past_ns > c->grace_ns)
			return NULL;
	}
	return e;
}

void ld_l1_clear(struct ld_l1 *c)
{
	while (c->lru.next != &c->lru) {
		struct ld_l1_entry *e = entry_of(c->lru.next);

		drop(c, slot_of(c, &e->key, e->hash));
	}
}

int ld_l1_remove(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash)
{
	struct ld_l1_entry **p = slot_of(c, k, hash);

	if (!*p)
		return 0;
	drop(c, p);
	return 1;
}

int ld_l1_put(struct ld_l1 *c, const struct ld_cache_key *k, uint64_t hash, uint64_t gen,
	      uint64_t now_ns, uint64_t ttl_ns, const struct ld_cache_value *v)
{
	size_t cost = ld_l1_cost(v->body_len), etag_len = strlen(v->etag);
	size_t table = c->nbuckets * sizeof(*c->buckets);
	struct ld_l1_entry *e;

	if (etag_len >= sizeof(e->etag) || cost > c->budget - table)
		return -E2BIG;
	ld_l1_remove(c, k, hash);
	while (used(c) + cost > c->budget) {
		struct ld_l1_entry *old = entry_of(c->lru.prev);

		c->evictions[old->key.kind]++;
		drop(c, slot_of(c, &old->key, old->hash));
	}
	e = malloc(sizeof(*e) + v->body_len);
	if (!e)
		return -ENOMEM;
	e->hash = hash;
	e->key = *k;
	e->gen = gen;
	e->expires_ns = now_ns + ttl_ns;
	e->cost = cost;
	e->status = v->status;
	e->problem = v->problem;
	memcpy(e->etag, v->etag, etag_len + 1);
	e->body_len = v->body_len;
	memcpy(e->body, v->body, v->body_len);
	e->hnext = NULL;
	*slot_of(c, k, hash) = e;
	lru_front(c, e);
	add_bytes(c, cost, true);
	c->count++;
	return 0;
}

uint64_t ld_l1_jitter(struct ld_l1 *c, uint64_t ttl_ns)
{
	/* xorshift64: cheap, and only spreads expiry times. */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return ttl_ns - (ttl_ns / 10) * (c->rng % 1001) / 1000;
}
