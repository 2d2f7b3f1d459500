/*
 * cache.c - choosing a level, and the [cache] settings of `ladder serve`.
 */
#include "cache/cache.h"

#include <stdio.h>
#include <string.h>

#include "base/config.h"

static const char *const kind_routes[LD_CACHE_KINDS] = {
    [LD_CACHE_ITEM] = "/v1/items/{id}",
    [LD_CACHE_USER] = "/v1/users/{id}",
    [LD_CACHE_USER_ITEMS] = "/v1/users/{id}/items",
};

const char *ld_cache_kind_route(unsigned kind)
{
	return kind < LD_CACHE_KINDS ? kind_routes[kind] : "unknown";
}

const struct ld_cache_vt *ld_cache_driver(const char *mode, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", "");
	if (!strcmp(mode, "local"))
		return &ld_cache_local;
	if (!strcmp(mode, "redis"))
		return &ld_cache_redis;
	if (strcmp(mode, "none"))
		snprintf(err, errlen, "'%s' is not a cache mode (none, local, redis)", mode);
	return NULL;
}

/* base/units.h's names clash with <sys/param.h>'s MIN, which uv.h brings. */
#define C_KiB 1024ull
#define C_GiB (1024ull * 1024 * C_KiB)
#define C_MIN 60000ull
#define C_DAY (24ull * 60 * C_MIN)

#define F(field)                                                                                   \
	offsetof(struct ld_cache_config, field), sizeof(((struct ld_cache_config *)0)->field)

static const struct ld_opt cache_opts[] = {
    {"cache", 0, "mode", "LADDER_CACHE", LD_OPT_STR, F(mode), 0, "local", 1, 0, NULL, 0, NULL, NULL,
     "none|local|redis",
     "response cache for item, user and first-page list reads (docs/cache.md); local = "
     "per-loop in-process; redis = that in front of Redis (--redis)"},
    {"cache-bytes", 0, "bytes", "LADDER_CACHE_BYTES", LD_OPT_SIZE, F(l1_bytes), 0, "16MiB",
     64 * C_KiB, 64 * C_GiB, NULL, 0, NULL, NULL, "SIZE",
     "the in-process cache's byte budget per loop thread"},
    {"cache-ttl", 0, "ttl", "LADDER_CACHE_TTL", LD_OPT_DUR, F(ttl_ms), 0, "5s", 1, C_DAY, NULL, 0,
     NULL, NULL, "DURATION", "lifetime of a cached response (minus up to 10% jitter)"},
    {"cache-negative-ttl", 0, "negative_ttl", "LADDER_CACHE_NEGATIVE_TTL", LD_OPT_DUR,
     F(negative_ttl_ms), 0, "1s", 1, C_DAY, NULL, 0, NULL, NULL, "DURATION",
     "lifetime of a cached 404 (a missing id)"},
    {"cache-wait", 0, "wait", "LADDER_CACHE_WAIT", LD_OPT_DUR, F(wait_ms), 0, "100ms", 1, C_MIN,
     NULL, 0, NULL, NULL, "DURATION",
     "longest a read waits for another request's fill of the same key before it goes to "
     "the store"},
    {"test-cache-fill-delay", 0, "test_fill_delay", "LADDER_TEST_CACHE_FILL_DELAY", LD_OPT_DUR,
     F(test_fill_delay_ms), 0, "0s", 0, C_MIN, NULL, 0, NULL, NULL, "DURATION",
     "TEST ONLY: hold every cache fill this long after its read; never set it in production"},
    {"cache-redis-ttl", 0, "redis_ttl", "LADDER_CACHE_REDIS_TTL", LD_OPT_DUR, F(l2_ttl_ms), 0, "1m",
     1, C_DAY, NULL, 0, NULL, NULL, "DURATION",
     "lifetime of a response kept in Redis (the staleness bound when a delete cannot reach "
     "Redis)"},
    {"cache-serve-stale", 0, "serve_stale", "LADDER_CACHE_SERVE_STALE", LD_OPT_DUR,
     F(serve_stale_ms), 0, "0s", 0, C_DAY, NULL, 0, NULL, NULL, "DURATION",
     "when the store cannot answer a read, serve a cached response up to this long past its "
     "TTL, marked stale (Cache-Status, Warning); 0s: never (docs/operations.md)"},
    {"cache-lease", 0, "fill_lease", "LADDER_CACHE_LEASE", LD_OPT_DUR, F(lease_ms), 0, "1s", 1,
     C_MIN, NULL, 0, NULL, NULL, "DURATION",
     "lifetime of a fill lease in Redis (one node fills a key; the others wait)"},
};

static const struct ld_opt_section cache_section = {
    "cache", cache_opts, sizeof(cache_opts) / sizeof(cache_opts[0]), NULL};

static unsigned char cache_source[sizeof(cache_opts) / sizeof(cache_opts[0])];

int ld_cache_config_register(struct ld_cache_config *cfg)
{
	return ld_config_register(&cache_section, cfg, cache_source);
}
