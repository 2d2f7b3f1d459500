/*
 * queue_sqlite.h - the SQLite queue driver's statement table, for the tests
 * that plan every statement (tests/unit/test_query_plans.c).
 *
 * The worker opens its own read-write connection to data_dir/ladder.db; the
 * server's writer and any number of workers take turns on SQLite's write
 * lock (busy_timeout), each transaction short: a claim is one UPDATE.
 */
#ifndef LD_QUEUE_SQLITE_H
#define LD_QUEUE_SQLITE_H

#include "jobs/queue.h"
#include "store/sqlite.h"

enum ld_qsql_id {
	LD_QSQL_REAP_DEAD_PHOTO, /* photos of expired leases out of attempts: failed */
	LD_QSQL_REAP_DEAD,	 /* expired leases out of attempts: dead */
	LD_QSQL_REAP,		 /* the other expired leases back to ready */
	LD_QSQL_CLAIM,		 /* lease the oldest due ready job */
	LD_QSQL_DELETE,		 /* complete: the job goes, if still ours */
	LD_QSQL_FAIL,		 /* retry later or dead, if still ours */
	LD_QSQL_RELEASE,	 /* back to ready, attempt not counted, if still ours */
	LD_QSQL_PHOTO,		 /* the job's photo */
	LD_QSQL_FINISH,		 /* a processing photo becomes ready, partial or failed */
	LD_QSQL_VERSION,	 /* upsert one version of a photo */
	LD_QSQL_N_READY,	 /* stats */
	LD_QSQL_N_LEASED,	 /* stats */
	LD_QSQL_N_DEAD,		 /* stats */
	LD_QSQL_OLDEST,		 /* stats: run_at of the oldest due ready job */
	LD_QSQL_BEGIN,
	LD_QSQL_COMMIT,
	LD_QSQL_ROLLBACK,
	LD_QSQL_COUNT
};

/* Indexed by enum ld_qsql_id; every entry has role LD_SQL_WRITER. */
extern const struct ld_sql_stmt ld_queue_sqlite_stmts[LD_QSQL_COUNT];

#endif
