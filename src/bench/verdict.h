/*
 * verdict.h - the analysis half of `ladder bench --profile`: from the figures
 * of each step of a run (offered load, throughput, the server's stage times,
 * the utilisation of each resource) it names the saturated resource, its
 * evidence and the next step, checks itself with the utilisation law
 * (U = X * S per resource) and the stage-share sum, and fits the Universal
 * Scalability Law across the steps of a breakpoint run.
 *
 * Inputs are plain numbers (profile.c fills them from the stats document and
 * /proc), so the rules are tested on synthetic series. Pure; no I/O; safe
 * from any thread.
 */
#ifndef LD_BENCH_VERDICT_H
#define LD_BENCH_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/usl.h"

/* The server's stages, in the order of the stats document. */
enum ld_prof_stage {
	LD_ST_READ,
	LD_ST_QUEUE,
	LD_ST_AUTH,
	LD_ST_HANDLER,
	LD_ST_HASH,
	LD_ST_CACHE,
	LD_ST_STORE_QUEUE,
	LD_ST_STORE_COMMIT,
	LD_ST_STORE_POOL,
	LD_ST_STORE,
	LD_ST_RENDER,
	LD_ST_WRITE,
	LD_ST_COUNT
};

const char *ld_prof_stage_name(int stage);

#define LD_PROF_THREADS 16
#define LD_PROF_CORES	16

/* Saturation threshold: a resource this busy is the limit. */
#define LD_PROF_SATURATED 0.9
/* Below saturation, a resource this busy is named the likely limit when
 * latency rose; under it, nothing is. */
#define LD_PROF_LIKELY 0.75
/* The utilisation law is reported broken past this relative gap. */
#define LD_PROF_LAW_TOL 0.2
/* The stage sums must be within this of the total (the sums are exact; the
 * slack covers requests finishing between the reads of two counters). */
#define LD_PROF_SHARE_TOL 0.02

struct ld_prof_thread {
	char name[16];
	double busy; /* CPU seconds per second */
};

/* One step: a breakpoint rate, or the whole run. Fractions are 0..1 of one
 * core or of wall time; -1 where the figure was not available. */
struct ld_prof_step {
	double offered_rps, achieved_rps, wall_s;
	int64_t p99_us;	  /* the generator's corrected p99 in the step */
	int64_t requests; /* requests the server finished in the step */
	double total_ns;  /* sum of their server-side times */
	double stage_ns[LD_ST_COUNT];
	int64_t server_p99_ns; /* from the latest document */

	int loops;
	double loop_busy;	    /* busiest loop: wall-clock busy fraction */
	int loop_busy_idx;	    /* which loop */
	double loop_cpu;	    /* that loop thread's CPU, seconds per second */
	double loop_cpu_per_req_ns; /* all loop CPU / requests */
	int loop_core;		    /* the core the busiest loop last ran on (-1: unknown) */
	double loop_core_busy;	    /* that core's busy fraction (anyone's work) */

	double writer_busy; /* writer_busy_ns / wall */
	double commits_per_s, writes_per_commit, commit_mean_ns;
	int64_t sync_p99_ns, commit_p99_ns;
	int64_t queue_depth, queue_cap;
	double pool_wait_share; /* store_pool / (store_pool + store): waits for a connection */

	double server_cpu;	  /* whole process, cores */
	double server_quota;	  /* its CPU cgroup's quota in cores, 0 none */
	double server_throttled;  /* fraction of enforcement periods throttled */
	int server_pinned;	  /* cores its affinity allows, when fewer than all; else 0 */
	int server_core0;	  /* the first of them */
	double server_cores_busy; /* their mean busy fraction (anyone's work) */
	double server_cores_irq;  /* interrupt time on them, cores */
	int nthreads;
	struct ld_prof_thread threads[LD_PROF_THREADS]; /* the server's, busiest first */

	double gen_cpu;	       /* the generator process, cores */
	double gen_thread_max; /* its busiest thread */
	double gen_allowed;    /* cores it may use: min(threads, affinity, quota, online cores) */
	double gen_quota;      /* 0: none */
	double gen_throttled;
	int gen_core;		   /* the core its busiest thread ran on last */
	int gen_pinned, gen_core0; /* as server_pinned, for the generator */
	double gen_cores_busy, gen_cores_irq;
	double late_frac; /* sends more than 1 ms behind schedule / sent */

	int ncpu;
	double core_busy_max, core_busy_mean;
	double core_busy[LD_PROF_CORES]; /* the first LD_PROF_CORES cores */
	double irq_cores;		 /* interrupt and softirq time, cores */
	double run_queue;		 /* procs_running at the end */
	double ctxt_per_s, server_nonvol_per_s, server_vol_per_s;
	double disk_busy; /* busiest whole disk */
	char disk[32];
	int64_t rss_kb, mem_avail_kb, tcp_inuse, tcp_tw;
};

enum ld_prof_kind {
	LD_PROF_NONE, /* nothing saturated */
	LD_PROF_GENERATOR,
	LD_PROF_APP_CPU,
	LD_PROF_COMMIT,
	LD_PROF_DATABASE,
	LD_PROF_DISK,
	LD_PROF_HOST_CPU,    /* every core busy, mostly with other processes */
	LD_PROF_INCONCLUSIVE /* too little data */
};

const char *ld_prof_kind_name(enum ld_prof_kind k);

#define LD_PROF_NOTES 8

struct ld_prof_verdict {
	enum ld_prof_kind kind;
	int step;	   /* the step judged (the highest offered load) */
	double util;	   /* the saturated resource's utilisation */
	char line[768];	   /* "app CPU: loop thread 98% busy, ...; add loop threads..." */
	char next[256];	   /* the next step, also the tail of line */
	bool shares_ok;	   /* stage shares add up */
	double shares_sum; /* sum of stages / total, on the judged step */
	int nnotes;
	char notes[LD_PROF_NOTES][320]; /* utilisation-law checks, share check */
	bool law_ok;			/* every utilisation-law check agreed */
	bool have_usl;
	struct ld_usl usl;
	double usl_base;		 /* offered rate of N = 1 */
	double contention_rps, peak_rps; /* where 10% of linear is lost; X's peak */
	char usl_line[480];
};

/* ld_prof_judge fills v from n steps (in offered-load order). */
void ld_prof_judge(const struct ld_prof_step *steps, int n, struct ld_prof_verdict *v);

/* ld_prof_share returns the stage's share of the step's server time (0..1). */
double ld_prof_share(const struct ld_prof_step *s, int stage);

#endif
