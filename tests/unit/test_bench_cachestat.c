/*
 * test_bench_cachestat.c - the cache counters ladder bench reads from the
 * server's /metrics: parsing (levels, routes summed, other series and
 * comments skipped), the difference over a run, the hit ratio and its JSON.
 */
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "bench/cachestat.h"
#include "unit.h"

static const char before[] =
    "# HELP ladder_cache_hits_total answered from the cache\n"
    "# TYPE ladder_cache_hits_total counter\n"
    "ladder_cache_hits_total{level=\"l1\",route=\"/v1/items/{id}\"} 100\n"
    "ladder_cache_hits_total{level=\"l1\",route=\"/v1/users/{id}/items\"} 20\n"
    "ladder_cache_misses_total{level=\"l1\",route=\"/v1/items/{id}\"} 10\n"
    "ladder_cache_coalesced_waits_total{level=\"l1\",route=\"/v1/items/{id}\"} 2\n"
    "ladder_cache_hits_total{level=\"l2\",route=\"/v1/items/{id}\"} 4\n"
    "ladder_cache_misses_total{level=\"l2\",route=\"/v1/items/{id}\"} 6\n"
    "ladder_cache_fills_total{level=\"l1\",route=\"/v1/items/{id}\"} 99\n"
    "ladder_cache_bytes{level=\"l1\"} 4096\n"
    "ladder_http_requests_total{route=\"/v1/items/{id}\",status=\"200\"} 5000\n";

static const char after[] =
    "ladder_cache_hits_total{level=\"l1\",route=\"/v1/items/{id}\"} 700\n"
    "ladder_cache_hits_total{level=\"l1\",route=\"/v1/users/{id}/items\"} 220\n"
    "ladder_cache_misses_total{level=\"l1\",route=\"/v1/items/{id}\"} 90\n"
    "ladder_cache_coalesced_waits_total{level=\"l1\",route=\"/v1/items/{id}\"} 12\n"
    "ladder_cache_hits_total{level=\"l2\",route=\"/v1/items/{id}\"} 64\n"
    "ladder_cache_misses_total{level=\"l2\",route=\"/v1/items/{id}\"} 26";

static void test_parse(void)
{
	struct ld_cache_stat s;

	ld_cache_stat_parse(before, strlen(before), &s);
	CHECK(s.found);
	CHECK(s.level[LD_CSTAT_L1] && s.level[LD_CSTAT_L2]);
	CHECK_DBL(s.hits[LD_CSTAT_L1], 120, 0);
	CHECK_DBL(s.misses[LD_CSTAT_L1], 10, 0);
	CHECK_DBL(s.coalesced[LD_CSTAT_L1], 2, 0);
	CHECK_DBL(s.hits[LD_CSTAT_L2], 4, 0);
	CHECK_DBL(s.misses[LD_CSTAT_L2], 6, 0);

	/* A server without a cache has no such series. */
	ld_cache_stat_parse("ladder_http_requests_total{route=\"/\"} 3\n# x\n", 41, &s);
	CHECK(!s.found && !s.level[LD_CSTAT_L1]);
	ld_cache_stat_parse("", 0, &s);
	CHECK(!s.found);
}

static void test_delta_ratio_json(void)
{
	struct ld_cache_stat a, b, d;
	struct ld_json j;
	struct ld_buf out;

	ld_cache_stat_parse(before, strlen(before), &a);
	ld_cache_stat_parse(after, strlen(after), &b);
	ld_cache_stat_delta(&a, &b, &d);
	CHECK(d.found);
	/* L1: 800 hits, 80 misses, 10 coalesced waits; L2: 60 hits. */
	CHECK_DBL(ld_cache_stat_lookups(&d), 890, 0);
	CHECK_DBL(ld_cache_stat_ratio(&d), 860.0 / 890.0, 1e-12);

	ld_buf_init(&out, 4096);
	ld_json_init(&j, &out);
	ld_json_obj_begin(&j);
	ld_cache_stat_json(&j, &d);
	ld_json_obj_end(&j);
	CHECK_INT(ld_json_finish(&j), 0);
	CHECK(out.data && strstr(out.data, "\"lookups\":890") != NULL);
	CHECK(out.data && strstr(out.data, "\"l1\":{\"hits\":800,\"misses\":80,"
					   "\"coalesced_waits\":10}") != NULL);
	CHECK(out.data && strstr(out.data, "\"l2\":{\"hits\":60,\"misses\":20,"
					   "\"coalesced_waits\":0}") != NULL);
	ld_buf_release(&out);

	/* No look-up in the run: no ratio (null in the report). */
	ld_cache_stat_delta(&a, &a, &d);
	CHECK_DBL(ld_cache_stat_ratio(&d), -1, 0);
	ld_buf_init(&out, 4096);
	ld_json_init(&j, &out);
	ld_json_obj_begin(&j);
	ld_cache_stat_json(&j, &d);
	ld_json_obj_end(&j);
	CHECK_INT(ld_json_finish(&j), 0);
	CHECK(out.data && strstr(out.data, "\"hit_ratio\":null") != NULL);
	ld_buf_release(&out);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_delta_ratio_json);
	return unit_finish();
}
