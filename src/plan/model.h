/*
 * model.h - the capacity model: assumptions in, one row of resources and
 * cost per month out, plus the timeline of rungs to climb.
 *
 * Month m (1-based) runs every rate at base x (1 + growth)^(m - 1). Per
 * second figures divide a month's count by seconds_per_month (2.5e6 in the
 * source design). Peaks are averages x peak_ratio. Sizes are the figures at
 * the end of the month. See docs/plan.md for every formula.
 *
 * Pure and deterministic: no I/O, no clock, no global state. Errors: 0,
 * -EINVAL (assumptions fail ld_assume_validate; the reason is in err) or
 * -ENOMEM.
 */
#ifndef LD_PLAN_MODEL_H
#define LD_PLAN_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "plan/assume.h"

#define LD_PLAN_EVENTS_MAX 32
#define LD_PLAN_RUNGS	   6

struct ld_plan_month {
	int month;
	int rung; /* highest rung in place (rungs are climbed, never left) */
	double users;

	/* traffic, per second */
	double writes_avg, writes_peak, reads_avg, reads_peak;
	double uploads_avg, views_avg;

	/* storage, bytes at the end of the month */
	double data_new;     /* content written this month */
	double data_raw;     /* content kept (retention applied) */
	double data_indexed; /* one copy with indexes and storage overhead */
	double copies;	     /* database copies: max(replication, 1 + replicas) */
	double data_total;   /* every copy */
	double media_new, media_stored;

	/* bandwidth, bytes per second */
	double ingress_avg, ingress_peak;
	double egress_avg, egress_peak; /* everything users receive */
	double cdn_avg;			/* of which the CDN serves */
	double origin_avg, origin_peak; /* what leaves the origin */

	/* app nodes at peak */
	double servers_util;   /* RPS x request_time / target_utilisation (cores) */
	double nodes_util;     /* servers_util / node_cores, rounded up */
	double nodes_measured; /* from per-node measured capacities */
	double nodes_erlang;   /* M/M/k per node meeting the latency objective */
	bool erlang_ok;	       /* false: the objective cannot be met by adding nodes */
	double latency_q;      /* the percentile's response time at nodes_needed */
	double nodes_needed;   /* max of the three */
	double nodes_total;    /* + redundancy */
	double nodes_avg;      /* needed at average load, + redundancy */

	/* cache */
	double cache_memory; /* hot set, with overhead */
	bool cache_in_use;
	double cache_nodes;

	/* database */
	bool box_fits;	      /* the load fits one box with SQLite (redundancy aside) */
	bool box_holds;	      /* rung 1: one box is enough: it fits and no spare is asked */
	double db_reads_peak; /* after the cache, when there is one */
	double shards, shards_writes, shards_data;
	double replicas; /* read replicas per shard */
	double replicas_nocache;
	double db_nodes;

	/* pools (Little's law, at peak) */
	double inflight; /* requests in the app tier */
	double db_busy;	 /* database connections busy */
	double pool_per_node;

	/* background jobs */
	double jobs_avg, jobs_peak, workers, worker_nodes;

	/* cost per month, in the price table's currency */
	double cost_app, cost_db, cost_cache, cost_storage, cost_object, cost_egress, cost_cdn;
	double cost_total;
};

struct ld_plan_event {
	int month;
	int rung;
	char what[48];	/* short machine-friendly tag, e.g. "shard-data" */
	char text[400]; /* one sentence for people */
};

struct ld_plan {
	struct ld_assume a;
	int nmonths;
	struct ld_plan_month *months; /* owned; freed by ld_plan_release */
	struct ld_plan_event events[LD_PLAN_EVENTS_MAX];
	int nevents;
	int rung_now; /* while computing: the rung in place before this month */
};

extern const char *const ld_plan_rung_names[LD_PLAN_RUNGS + 1];

/* ld_plan_compute validates a, then fills p (which owns a copy of a). */
int ld_plan_compute(const struct ld_assume *a, struct ld_plan *p, char *err, size_t errlen);

void ld_plan_release(struct ld_plan *p);

/* ld_plan_servers_util is the utilisation formula on its own:
 * servers = rps x mean request time / target utilisation (not rounded). */
double ld_plan_servers_util(double rps, double request_time, double utilisation);

#endif
