/*
 * queue_bench.c - claim and complete throughput of the job queue, on
 * SQLite or on PostgreSQL (bench/thumbs.sh builds and runs it). N photos are
 * completed the way the API does it (the outbox trigger queues N jobs),
 * then the queue claims and completes them as fast as it can: jobs/s, each
 * a claim (the lease reaper, then one UPDATE ... RETURNING; on PostgreSQL
 * with FOR UPDATE SKIP LOCKED) and a complete (one transaction), durable or
 * not as asked. SQLite: one connection. PostgreSQL: THREADS connections,
 * one per thread, as a worker's job threads (default 1).
 *
 * Usage: queue_bench DATA_DIR N SYNC(0|1)
 *        queue_bench --pg CONNINFO N SYNC(0|1) [THREADS]
 * Prints "jobs-done jobs/s".
 */
#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "jobs/queue.h"
#include "store/migrations.h"
#include "store/postgres.h"

#define THREADS_MAX 64

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct drainer {
	uv_thread_t t;
	const struct ld_queue_vt *vt;
	struct ld_queue *q;
	long done;
};

/* drain claims and completes until the queue is empty. */
static void drain(void *arg)
{
	struct drainer *d = arg;
	struct ld_job j;
	int64_t now;

	for (;;) {
		now = now_ms();
		if (d->vt->claim(d->q, now, &j) != 0)
			break;
		if (d->vt->complete(d->q, &j, now, NULL) == 0)
			d->done++;
	}
}

/* fill_sqlite migrates data_dir/ladder.db and queues n jobs. */
static int fill_sqlite(const char *dir, long n)
{
	char path[4096], err[256] = "";
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	long i;

	snprintf(path, sizeof(path), "%s/ladder.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (ld_sqlite_migrate(db, ld_sqlite_migrations, ld_sqlite_nmigrations, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	sqlite3_exec(db, "INSERT OR IGNORE INTO users VALUES (1, 'b', 'b', 'x', 1, 1, 1)", NULL,
		     NULL, NULL);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(db,
			   "INSERT INTO photos VALUES (?1, 1, 'uploading', '', 0, 0, 0, '', 1, "
			   "1, 1)",
			   -1, &st, NULL);
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, 1000000 + i);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "UPDATE photos SET status = 'processing' WHERE status = 'uploading'", NULL,
		     NULL, NULL);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return 0;
}

/* fill_pg migrates the database (the store's own open) and queues n jobs. */
static int fill_pg(const char *conninfo, long n)
{
	struct ld_store_config sc;
	struct ld_store *s = NULL;
	char err[256] = "", sql[512];
	PGconn *pg;
	PGresult *r;
	int rc = 1;

	snprintf(ld_pg_settings.primary, sizeof(ld_pg_settings.primary), "%s", conninfo);
	ld_store_config_default(&sc);
	if (ld_pg_vt.open(&sc, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	ld_pg_vt.close(s);
	pg = PQconnectdb(conninfo);
	snprintf(sql, sizeof(sql),
		 "BEGIN;"
		 "INSERT INTO users VALUES (1, 'b', 'b', 'x', 1, 1, 1) ON CONFLICT DO NOTHING;"
		 "INSERT INTO photos SELECT 1000000 + g, 1, 'uploading', '', 0, 0, 0, '', 1, 1, 1"
		 " FROM generate_series(0, %ld) g;"
		 "UPDATE photos SET status = 'processing' WHERE status = 'uploading';"
		 "COMMIT",
		 n - 1);
	r = PQexec(pg, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		/* On its own: VACUUM refuses a transaction block. */
		r = PQexec(pg, "VACUUM ANALYZE jobs");
		rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : 1;
	}
	if (rc)
		fprintf(stderr, "filling the queue: %s", PQerrorMessage(pg));
	PQclear(r);
	PQfinish(pg);
	return rc;
}

int main(int argc, char **argv)
{
	static struct drainer d[THREADS_MAX];
	struct ld_queue_config cfg;
	const struct ld_queue_vt *vt = &ld_queue_sqlite_vt;
	char err[256] = "", owner[32];
	bool pg = argc >= 2 && strcmp(argv[1], "--pg") == 0;
	long n, done = 0, threads = 1, i;
	uint64_t t0, t1;

	if (pg ? argc != 5 && argc != 6 : argc != 4)
		return 2;
	if (pg) {
		argv++;
		vt = &ld_queue_pg_vt;
		threads = argc == 6 ? atol(argv[4]) : 1;
		if (threads < 1 || threads > THREADS_MAX)
			return 2;
	}
	n = atol(argv[2]);
	if ((pg ? fill_pg(argv[1], n) : fill_sqlite(argv[1], n)) != 0)
		return 1;
	ld_queue_config_default(&cfg);
	cfg.data_dir = argv[1];
	cfg.conninfo = argv[1];
	cfg.synchronous_full = argv[3][0] == '1';
	for (i = 0; i < threads; i++) {
		snprintf(owner, sizeof(owner), "bench:%ld", i);
		cfg.owner = owner;
		d[i].vt = vt;
		if (vt->open(&cfg, &d[i].q, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}
	t0 = uv_hrtime();
	for (i = 0; i < threads; i++)
		if (uv_thread_create(&d[i].t, drain, &d[i]) != 0)
			return 1;
	for (i = 0; i < threads; i++) {
		uv_thread_join(&d[i].t);
		done += d[i].done;
	}
	t1 = uv_hrtime();
	for (i = 0; i < threads; i++)
		vt->close(d[i].q);
	printf("%ld %.0f\n", done, (double)done / ((double)(t1 - t0) / 1e9));
	return done == n ? 0 : 1;
}
