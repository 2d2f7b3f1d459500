/*
 * profile.h - `ladder bench --profile URL`: while the load runs, sample the
 * server's stats document (URL + /debug/stats, schema ladder-stats/1) and
 * the host's /proc figures for the server's pid and for the generator
 * itself; at the end, turn them into per-step figures and a verdict
 * (verdict.h) for the text, JSON and HTML reports.
 *
 * Sampling runs on a thread of its own, one blocking GET on its own
 * loopback connection and a few small file reads per interval, so the engine
 * loops never wait on it. The server must run on this host (its pid comes
 * from the document and is read in /proc).
 *
 * Use: ld_profile_open, then for each step (a breakpoint rate, or the whole
 * run) ld_profile_step_begin / ld_profile_step_end, then ld_profile_finish.
 * The steps' snapshots are taken on the caller's thread between runs; the
 * interval samples on the sampler thread, which is joined in step_end.
 * Bounded: at most LD_PROFILE_STEPS steps and LD_PROFILE_SAMPLES samples.
 */
#ifndef LD_BENCH_PROFILE_H
#define LD_BENCH_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/json.h"
#include "bench/engine.h"
#include "bench/verdict.h"

#define LD_PROFILE_STEPS   256
#define LD_PROFILE_SAMPLES 4096
#define LD_PROFILE_LOOPS   64
#define LD_PROFILE_THREADS 128
#define LD_PROFILE_DOC_MAX (4 * 1024 * 1024)

/* The cumulative figures of one stats document that the profile uses. */
struct ld_prof_doc {
	int64_t pid, now_ns, loops, clock_ticks;
	int64_t requests;
	double total_ns;
	double stage_ns[LD_ST_COUNT];
	int64_t total_p99_ns; /* of the route with the most requests */
	int nloops;
	int64_t loop_tid[LD_PROFILE_LOOPS];
	double loop_busy_ns[LD_PROFILE_LOOPS], loop_cpu_ns[LD_PROFILE_LOOPS];
	int nthreads; /* the server's names of its threads */
	int64_t thread_tid[LD_PROFILE_THREADS];
	char thread_name[LD_PROFILE_THREADS][16];
	bool have_store;
	double writer_busy_ns;
	int64_t commits, writes, commit_count;
	double commit_sum_ns;
	int64_t commit_p99_ns, sync_p99_ns, queue_depth, queue_cap;
};

/* ld_prof_doc_parse reads a ladder-stats/1 document. Returns 0, or -EINVAL
 * with the reason in err (not JSON, another schema, no pid). */
int ld_prof_doc_parse(const char *text, size_t len, struct ld_prof_doc *d, char *err,
		      size_t errlen);

struct ld_profile;

/* ld_profile_open checks that url (the server's base, http://host:port)
 * serves the stats document and that its pid is on this host. gen_threads
 * is the engine's thread count (the generator's CPU allowance). Returns 0,
 * or -errno with the reason in err. */
int ld_profile_open(struct ld_profile **pp, const char *url, double interval_s, int gen_threads,
		    char *err, size_t errlen);

/* ld_profile_step_begin snapshots and starts the sampler for a step offered
 * offered_rps (0 for a closed loop). Returns 0 or -errno (err says why). */
int ld_profile_step_begin(struct ld_profile *p, double offered_rps, char *err, size_t errlen);

/* ld_profile_step_end stops the sampler and closes the step with the
 * engine's result for it (throughput, p99, late sends, timeline). */
int ld_profile_step_end(struct ld_profile *p, const struct ld_bench_result *r, char *err,
			size_t errlen);

/* ld_profile_finish judges the steps; call once, after the last step. */
void ld_profile_finish(struct ld_profile *p);

const struct ld_prof_verdict *ld_profile_verdict(const struct ld_profile *p);
/* ld_profile_steps returns the steps (*n of them). */
const struct ld_prof_step *ld_profile_steps(const struct ld_profile *p, int *n);
/* ld_profile_points returns what the charts plot against offered load: the
 * steps of a breakpoint run, else the interval samples. */
const struct ld_prof_step *ld_profile_points(const struct ld_profile *p, int *n);

/* ld_profile_text prints the report (a table per step, the verdict, the
 * checks and the USL fit). */
void ld_profile_text(FILE *f, const struct ld_profile *p);

/* ld_profile_json writes the "profile" object's value. */
void ld_profile_json(struct ld_json *j, const struct ld_profile *p);

/* ld_prof_step_from computes a step's figures from two documents and two
 * host snapshots (a = start, b = end); exposed for the unit tests. */
struct ld_procfs_snap;
void ld_prof_step_from(const struct ld_prof_doc *a, const struct ld_prof_doc *b,
		       const struct ld_procfs_snap *ha, const struct ld_procfs_snap *hb,
		       int gen_threads, struct ld_prof_step *s);

/* ld_profile_run runs one step of load (ld_bench_run) between
 * step_begin and step_end. offered_rps 0 takes the run's own target rate
 * (or its throughput, closed loop). A failed sample does not stop the load:
 * it is counted and its reason printed on stderr. Returns ld_bench_run's
 * result. */
int ld_profile_run(struct ld_profile *p, const struct ld_bench_cfg *cfg,
		   struct ld_bench_result *res, double offered_rps);

void ld_profile_free(struct ld_profile *p);

#endif
