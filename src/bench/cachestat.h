/*
 * cachestat.h - the server's response-cache counters, read from its
 * /metrics (Prometheus text, docs/cache.md "Metrics") before and after a
 * run, so the report can give the hit ratio the load actually met.
 *
 * Per level ("l1", "l2"), summed over routes: hits, misses, coalesced
 * waits. The hit ratio is (L1 hits + L2 hits) / (L1 hits + L1 misses + L1
 * coalesced waits): every look-up of a cached route is one of those three
 * at L1, and an L1 miss may still be an L2 hit. A coalesced wait (answered
 * by another request's fill) is not counted as a hit, so the ratio errs
 * low: the planner then expects a few more store reads than there are.
 *
 * Pure apart from ld_cache_stat_fetch (one blocking GET, httpget.h).
 */
#ifndef LD_BENCH_CACHESTAT_H
#define LD_BENCH_CACHESTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/json.h"

enum { LD_CSTAT_L1, LD_CSTAT_L2, LD_CSTAT_LEVELS };

struct ld_cache_stat {
	bool found; /* any ladder_cache_{hits,misses}_total series (a cache is on) */
	bool level[LD_CSTAT_LEVELS];
	double hits[LD_CSTAT_LEVELS], misses[LD_CSTAT_LEVELS], coalesced[LD_CSTAT_LEVELS];
};

/* ld_cache_stat_parse reads the counters out of len bytes of Prometheus
 * text; lines it does not know are skipped, so it never fails. */
void ld_cache_stat_parse(const char *text, size_t len, struct ld_cache_stat *s);

/* ld_cache_stat_fetch GETs base_path + "/metrics" from addr (authority for
 * the Host header and messages) and parses it. Returns 0 (s->found false
 * when the server has no cache series, or answered other than 200), or a
 * negative errno with the reason in err when there was no answer. */
int ld_cache_stat_fetch(const struct sockaddr_storage *addr, const char *authority,
			const char *base_path, struct ld_cache_stat *s, char *err, size_t errlen);

/* ld_cache_stat_delta sets d to b - a (a taken before the run, b after). */
void ld_cache_stat_delta(const struct ld_cache_stat *a, const struct ld_cache_stat *b,
			 struct ld_cache_stat *d);

/* ld_cache_stat_lookups: L1 look-ups (hits + misses + coalesced waits). */
double ld_cache_stat_lookups(const struct ld_cache_stat *d);

/* ld_cache_stat_ratio: the hit ratio of d, -1 when it saw no look-up. */
double ld_cache_stat_ratio(const struct ld_cache_stat *d);

/* ld_cache_stat_json writes d as the report's "cache" object's members. */
void ld_cache_stat_json(struct ld_json *j, const struct ld_cache_stat *d);

#endif
