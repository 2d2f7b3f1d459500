/*
 * queue_bench.c - claim and complete throughput of the SQLite job queue
 * (bench/thumbs.sh builds and runs it). N photos are completed the way the
 * API does it (the outbox trigger queues N jobs), then one queue connection
 * claims and completes them as fast as it can: jobs/s, each a claim (one
 * UPDATE ... RETURNING, plus the lease reaper) and a complete (one
 * transaction), durable or not as asked.
 *
 * Usage: queue_bench DATA_DIR N SYNC(0|1)
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include "jobs/queue.h"
#include "store/migrations.h"

int main(int argc, char **argv)
{
	struct ld_queue_config cfg;
	struct ld_queue *q = NULL;
	struct ld_job j;
	char path[4096], err[256] = "";
	sqlite3 *db = NULL;
	long n, i, done = 0;
	uint64_t t0, t1;
	int64_t now;

	if (argc != 4)
		return 2;
	n = atol(argv[2]);
	snprintf(path, sizeof(path), "%s/ladder.db", argv[1]);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (ld_sqlite_migrate(db, ld_sqlite_migrations, ld_sqlite_nmigrations, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	sqlite3_exec(db, "INSERT OR IGNORE INTO users VALUES (1, 'b', 'b', 'x', 1, 1, 1)", NULL,
		     NULL, NULL);
	{
		sqlite3_stmt *st;

		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_prepare_v2(
		    db,
		    "INSERT INTO photos VALUES (?1, 1, 'uploading', '', 0, 0, 0, '', 1, "
		    "1, 1)",
		    -1, &st, NULL);
		for (i = 0; i < n; i++) {
			sqlite3_bind_int64(st, 1, 1000000 + i);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		sqlite3_finalize(st);
		sqlite3_exec(db,
			     "UPDATE photos SET status = 'processing' WHERE status = 'uploading'",
			     NULL, NULL, NULL);
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	ld_queue_config_default(&cfg);
	cfg.data_dir = argv[1];
	cfg.owner = "bench";
	cfg.synchronous_full = argv[3][0] == '1';
	if (ld_queue_sqlite_vt.open(&cfg, &q, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = uv_hrtime();
	for (;;) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (ld_queue_sqlite_vt.claim(q, now, &j) != 0)
			break;
		if (ld_queue_sqlite_vt.complete(q, &j, now, NULL) == 0)
			done++;
	}
	t1 = uv_hrtime();
	ld_queue_sqlite_vt.close(q);
	printf("%ld %.0f\n", done, (double)done / ((double)(t1 - t0) / 1e9));
	return done == n ? 0 : 1;
}
