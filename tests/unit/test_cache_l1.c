/*
 * test_cache_l1.c - the in-process cache structure: LRU eviction under the
 * byte budget, TTL with jitter, generations, expired entries kept through
 * the serve-stale grace period.
 */
#include <errno.h>
#include <stdlib.h>

#include "cache/l1.h"
#include "unit.h"

static struct ld_cache_value val(const char *body)
{
	return (struct ld_cache_value){200, false, "\"1.1\"", body, strlen(body)};
}

static const struct ld_l1_entry *get(struct ld_l1 *c, int64_t id, uint64_t gen, uint64_t now,
				     enum ld_l1_miss *why)
{
	struct ld_cache_key k = {LD_CACHE_ITEM, id};

	return ld_l1_get(c, &k, ld_cache_key_hash(&k), gen, now, why);
}

static int put(struct ld_l1 *c, int64_t id, uint64_t gen, uint64_t now, uint64_t ttl,
	       const char *body)
{
	struct ld_cache_key k = {LD_CACHE_ITEM, id};
	struct ld_cache_value v = val(body);

	return ld_l1_put(c, &k, ld_cache_key_hash(&k), gen, now, ttl, &v);
}

static void test_put_get(void)
{
	struct ld_l1 c;
	enum ld_l1_miss why;
	const struct ld_l1_entry *e;

	CHECK_INT(ld_l1_init(&c, 1 << 20, 1), 0);
	CHECK(get(&c, 7, 0, 0, &why) == NULL);
	CHECK_INT(why, LD_L1_ABSENT);
	CHECK_INT(put(&c, 7, 0, 0, 1000, "{\"id\":7}"), 0);
	e = get(&c, 7, 0, 10, &why);
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(e->body_len, 8);
		CHECK(memcmp(e->body, "{\"id\":7}", 8) == 0);
		CHECK_STR(e->etag, "\"1.1\"");
		CHECK_INT(e->status, 200);
	}
	/* Another kind with the same id is another key. */
	{
		struct ld_cache_key k = {LD_CACHE_USER, 7};

		CHECK(ld_l1_get(&c, &k, ld_cache_key_hash(&k), 0, 10, &why) == NULL);
	}
	ld_l1_release(&c);
}

static void test_ttl(void)
{
	struct ld_l1 c;
	enum ld_l1_miss why;

	CHECK_INT(ld_l1_init(&c, 1 << 20, 1), 0);
	CHECK_INT(put(&c, 1, 0, 100, 50, "x"), 0);
	CHECK(get(&c, 1, 0, 149, &why) != NULL);
	CHECK(get(&c, 1, 0, 150, &why) == NULL);
	CHECK_INT(why, LD_L1_EXPIRED);
	/* Expired entries are removed: only the table is left. */
	CHECK_INT(c.count, 0);
	CHECK_INT(atomic_load(&c.bytes), c.nbuckets * sizeof(void *));
	ld_l1_release(&c);
}

static void test_jitter(void)
{
	struct ld_l1 c;
	uint64_t lo = UINT64_MAX, hi = 0;

	CHECK_INT(ld_l1_init(&c, 1 << 20, 42), 0);
	for (int i = 0; i < 10000; i++) {
		uint64_t t = ld_l1_jitter(&c, 1000000);

		lo = t < lo ? t : lo;
		hi = t > hi ? t : hi;
	}
	/* Within [90%, 100%] of the TTL, and actually spread over it. */
	CHECK(lo >= 900000);
	CHECK(hi <= 1000000);
	CHECK(lo < 910000);
	CHECK(hi > 990000);
	ld_l1_release(&c);
}

static void test_generation(void)
{
	struct ld_l1 c;
	struct ld_cache_gens g;
	struct ld_cache_key k = {LD_CACHE_ITEM, 5};
	uint64_t h = ld_cache_key_hash(&k), gen;
	enum ld_l1_miss why;

	CHECK_INT(ld_l1_init(&c, 1 << 20, 1), 0);
	CHECK_INT(ld_cache_gens_init(&g, 4), 0);
	gen = ld_cache_gen_load(&g, h);
	CHECK_INT(put(&c, 5, gen, 0, 1000, "old"), 0);
	CHECK(get(&c, 5, ld_cache_gen_load(&g, h), 1, &why) != NULL);
	/* A write bumps the slot: the entry filled before it is stale. */
	ld_cache_gen_bump(&g, h);
	CHECK(get(&c, 5, ld_cache_gen_load(&g, h), 2, &why) == NULL);
	CHECK_INT(why, LD_L1_STALE);
	CHECK_INT(c.count, 0);
	CHECK(ld_cache_gen_load(&g, h) == gen + 1);
	ld_cache_gens_release(&g);
	ld_l1_release(&c);
}

static const struct ld_l1_entry *get_stale(struct ld_l1 *c, int64_t id, uint64_t gen, uint64_t now,
					   uint64_t *past)
{
	struct ld_cache_key k = {LD_CACHE_ITEM, id};

	return ld_l1_get_stale(c, &k, ld_cache_key_hash(&k), gen, now, past);
}

static void test_stale_grace(void)
{
	struct ld_l1 c;
	enum ld_l1_miss why;
	const struct ld_l1_entry *e;
	uint64_t past;

	CHECK_INT(ld_l1_init(&c, 1 << 20, 1), 0);
	/* No grace: an expired entry goes at the first get, as before. */
	CHECK_INT(put(&c, 1, 0, 0, 100, "a"), 0);
	CHECK(get(&c, 1, 0, 100, &why) == NULL);
	CHECK_INT(why, LD_L1_EXPIRED);
	CHECK(get_stale(&c, 1, 0, 100, &past) == NULL);
	c.grace_ns = 1000;
	CHECK_INT(put(&c, 1, 0, 0, 100, "a"), 0);
	/* Fresh: get_stale returns it, not past. */
	e = get_stale(&c, 1, 0, 50, &past);
	CHECK(e != NULL);
	CHECK_INT(past, 0);
	/* Expired: get misses but keeps it; get_stale returns it, past. */
	CHECK(get(&c, 1, 0, 600, &why) == NULL);
	CHECK_INT(why, LD_L1_EXPIRED);
	e = get_stale(&c, 1, 0, 600, &past);
	CHECK(e != NULL && e->body_len == 1 && e->body[0] == 'a');
	CHECK_INT(past, 501);
	/* Another generation (a write since): never. */
	CHECK(get_stale(&c, 1, 1, 600, &past) == NULL);
	/* Past the grace: no longer, and the next get drops it. */
	CHECK(get_stale(&c, 1, 0, 1100, &past) == NULL);
	CHECK(get(&c, 1, 0, 1100, &why) == NULL);
	CHECK_INT(c.count, 0);
	/* A get under another generation drops it at once, grace or not. */
	CHECK_INT(put(&c, 2, 0, 0, 100, "b"), 0);
	CHECK(get(&c, 2, 1, 200, &why) == NULL);
	CHECK_INT(why, LD_L1_STALE);
	CHECK(get_stale(&c, 2, 0, 200, &past) == NULL);
	ld_l1_release(&c);
}

static void test_lru_budget(void)
{
	struct ld_l1 c;
	enum ld_l1_miss why;
	char body[200];
	size_t budget = 64 * 1024;
	int i;

	memset(body, 'a', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	CHECK_INT(ld_l1_init(&c, budget, 1), 0);
	/* Far more keys than fit: the budget always holds. */
	for (i = 1; i <= 5000; i++) {
		CHECK_INT(put(&c, i, 0, 0, 1000, body), 0);
		CHECK(atomic_load(&c.bytes) <= budget);
		/* Key 1 is used all along, so it is never the oldest. */
		CHECK(get(&c, 1, 0, 0, &why) != NULL);
	}
	CHECK(c.evictions[LD_CACHE_ITEM] > 4000);
	CHECK(get(&c, 2, 0, 0, &why) == NULL);	  /* evicted long ago */
	CHECK(get(&c, 5000, 0, 0, &why) != NULL); /* the newest */
	CHECK(c.count > 100);
	ld_l1_release(&c);
}

static void test_too_big(void)
{
	struct ld_l1 c;
	char *big = malloc(70000);

	memset(big, 'b', 69999);
	big[69999] = '\0';
	CHECK_INT(ld_l1_init(&c, 64 * 1024, 1), 0);
	CHECK_INT(put(&c, 1, 0, 0, 1000, big), -E2BIG);
	CHECK_INT(c.count, 0);
	ld_l1_release(&c);
	CHECK_INT(ld_l1_init(&c, 100, 1), -EINVAL);
	free(big);
}

int main(void)
{
	RUN(test_put_get);
	RUN(test_ttl);
	RUN(test_jitter);
	RUN(test_generation);
	RUN(test_stale_grace);
	RUN(test_lru_budget);
	RUN(test_too_big);
	return unit_finish();
}
