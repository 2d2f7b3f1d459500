/*
 * bench_report.h - reads the JSON report `ladder bench` writes
 * (schema "ladder-bench/1") for the figures the planner needs.
 *
 * Tolerant of missing optional parts (config, machine, latency, mix,
 * breakpoint, cache), strict about types: a present member of the wrong type is an
 * error naming the file and the member path ("r.json: results.achieved_rps:
 * expected a number, got a string"). Required: schema, results and
 * results.achieved_rps.
 *
 * Pure apart from ld_bench_report_load, which reads a file of at most
 * LD_BENCH_REPORT_MAX bytes. Errors: 0, -EINVAL (bad report), -E2BIG (file
 * too large) or a negative errno from reading.
 */
#ifndef LD_PLAN_BENCH_REPORT_H
#define LD_PLAN_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "plan/assume.h"

#define LD_BENCH_REPORT_MAX (16 * 1024 * 1024)

struct ld_bench_report {
	bool has_connections;
	double connections;			/* config.connections */
	bool rate_max;				/* config.rate was "max" */
	double rate;				/* config.rate when a number, else 0 */
	bool open_loop;				/* config.mode == "open" (the default) */
	double cores;				/* machine.cores, 0 when absent */
	double achieved_rps;			/* results.achieved_rps */
	double error_rate;			/* results.error_rate, 0 when absent */
	double latency_mean_us, latency_p99_us; /* 0 when absent */
	bool has_read, has_write;
	double read_rps, write_rps; /* mix.read / mix.write achieved_rps */
	bool has_breakpoint;
	double max_rate_held; /* breakpoint.max_rate_held */
	bool has_cache_hit_ratio;
	double cache_hit_ratio; /* cache.hit_ratio, 0 to 1 (null or absent: none) */
	double cache_lookups;	/* cache.lookups, 0 when absent */
};

/* ld_bench_report_parse parses len bytes of JSON; name labels errors. */
int ld_bench_report_parse(const char *name, const char *text, size_t len, struct ld_bench_report *r,
			  char *err, size_t errlen);

/* ld_bench_report_load reads and parses the file at path. */
int ld_bench_report_load(const char *path, struct ld_bench_report *r, char *err, size_t errlen);

/* ld_bench_report_apply sets a's per-node read (and, with a read/write mix,
 * write) capacities from r, and says where they came from in
 * a->capacity_source. The capacity is breakpoint.max_rate_held when present
 * (the highest rate that met the objective), else results.achieved_rps;
 * with a mix it is split in the measured read/write proportion. A report
 * with a measured cache hit ratio (cache.hit_ratio, the server's counters
 * over the run) sets a->cache_hit_ratio to it (at most the field's bound,
 * 0.9999) and says so in a->cache_source; without one, both are left as
 * they were. */
void ld_bench_report_apply(const struct ld_bench_report *r, const char *name, struct ld_assume *a);

#endif
