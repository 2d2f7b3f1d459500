/*
 * queue_pg.h - the PostgreSQL queue driver's statement table, for the test
 * that plans every statement on a populated database
 * (tests/unit/test_pg_query_plans.c).
 *
 * Each worker thread holds one blocking libpq connection to the primary
 * (the worker's threads do nothing else while they wait; serve's loops
 * never use this driver). Every change is one statement, so its own
 * implicit transaction: a claim, a complete with its photo's outcome, a
 * failure with its dead outcome.
 */
#ifndef LD_QUEUE_PG_H
#define LD_QUEUE_PG_H

#include <stdbool.h>

#include "jobs/queue.h"

enum ld_qpg_id {
	LD_QPG_REAP,	 /* expired leases: back to ready, or dead with their photo failed */
	LD_QPG_CLAIM,	 /* lease the oldest due ready job, skipping locked ones */
	LD_QPG_COMPLETE, /* the job goes, if still ours, with its photo's outcome */
	LD_QPG_FAIL,	 /* retry later or dead (with the dead outcome), if still ours */
	LD_QPG_RELEASE,	 /* back to ready, attempt not counted, if still ours */
	LD_QPG_PHOTO,	 /* the job's photo */
	LD_QPG_STATS,	 /* counts by state, the oldest due ready job (at scrape time) */
	LD_QPG_COUNT
};

struct ld_qpg_stmt {
	const char *name;
	const char *sql; /* text parameters, typed by casts in the SQL */
	unsigned nparams;
	const char *example; /* "(v1, v2, ...)" as SQL, for EXPLAIN EXECUTE */
	bool hot;	     /* run per job: must never scan a table */
};

extern const struct ld_qpg_stmt ld_queue_pg_stmts[LD_QPG_COUNT];

#endif
