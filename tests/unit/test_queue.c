/*
 * test_queue.c - the job queue, on SQLite and again on PostgreSQL (a
 * throwaway cluster, pg_env.h; the schema made by the postgres store's own
 * open): the outbox triggers make exactly one job per uploaded or deleted
 * photo; claims lease one job to one owner; expired leases go to another
 * worker and the old owner's late complete changes nothing; failures retry
 * until the attempts run out, then the job is dead; release gives an
 * attempt back; the backoff window doubles up to its cap. On PostgreSQL
 * also: a claim passes over a job another transaction holds (SKIP LOCKED)
 * instead of waiting, and workers claiming at once never share a job. The
 * clock is passed in, so nothing here waits.
 */
#include "unit.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "jobs/queue.h"
#include "pg_env.h"
#include "store/migrations.h"
#include "store/postgres.h"

static char tmpdir[] = "/tmp/ld_test_queue_XXXXXX";
static sqlite3 *db; /* the server's side: makes photos */
static PGconn *pg;  /* the same on PostgreSQL */
static char conninfo[256];
static const struct ld_queue_vt *vt = &ld_queue_sqlite_vt; /* the driver under test */

#define T0 1700000000000LL

/* try runs sql on the server's side: 0, or -1 when the database refused it. */
static int try(const char *sql)
{
	PGresult *r;
	int rc;

	if (vt == &ld_queue_sqlite_vt)
		return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	r = PQexec(pg, sql);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	PQclear(r);
	return rc;
}

static void exec(const char *sql)
{
	if (try(sql) != 0) {
		fprintf(stderr, "%s: %s\n", sql,
			vt == &ld_queue_sqlite_vt ? sqlite3_errmsg(db) : PQerrorMessage(pg));
		CHECK(!"sql failed");
	}
}

static int64_t scalar(const char *sql)
{
	sqlite3_stmt *st = NULL;
	PGresult *r;
	int64_t v = -999;

	if (vt != &ld_queue_sqlite_vt) {
		r = PQexec(pg, sql);
		CHECK_INT(PQresultStatus(r), PGRES_TUPLES_OK);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		return v;
	}
	CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* upload makes photo id (uploading) and completes it (processing): the
 * trigger queues its thumbnail job. */
static void upload(int64_t id)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO photos VALUES (%lld, 1, 'uploading', 'image/jpeg', 0, 0, 0, '',"
		 " %lld, %lld, 1)",
		 (long long)id, T0, T0);
	exec(sql);
	snprintf(sql, sizeof(sql),
		 "UPDATE photos SET status = 'processing', size = 100, updated_ms = %lld"
		 " WHERE id = %lld",
		 T0, (long long)id);
	exec(sql);
}

static struct ld_queue *open_queue(const char *owner, int64_t lease_ms, unsigned max_attempts)
{
	struct ld_queue_config cfg;
	struct ld_queue *q = NULL;
	char err[256] = "";

	ld_queue_config_default(&cfg);
	cfg.data_dir = tmpdir;
	cfg.conninfo = conninfo;
	cfg.owner = owner;
	cfg.lease_ms = lease_ms;
	cfg.max_attempts = max_attempts;
	cfg.synchronous_full = false;
	CHECK_INT(vt->open(&cfg, &q, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	return q;
}

static void test_outbox_triggers(void)
{
	exec("DELETE FROM jobs; DELETE FROM photos");
	exec("INSERT INTO photos VALUES (10, 1, 'uploading', 'image/png', 0, 0, 0, '', 1, 1, 1)");
	/* Uploading: no job yet. */
	CHECK_INT(scalar("SELECT count(*) FROM jobs"), 0);
	exec("UPDATE photos SET status = 'processing', updated_ms = 5 WHERE id = 10");
	CHECK_INT(scalar("SELECT count(*) FROM jobs WHERE kind = 'thumbnail' AND subject = 10"
			 " AND state = 'ready' AND run_at_ms = 5"),
		  1);
	/* Only the uploading -> processing move makes one. */
	exec("UPDATE photos SET status = 'ready' WHERE id = 10");
	CHECK_INT(scalar("SELECT count(*) FROM jobs"), 1);
	exec("DELETE FROM photos WHERE id = 10");
	CHECK_INT(
	    scalar("SELECT count(*) FROM jobs WHERE kind = 'remove_objects' AND subject = 10"), 1);
	/* A failed statement takes its job with it: no job without its photo. */
	CHECK_INT(try("UPDATE photos SET status = 'bogus' WHERE id = 11"), 0); /* no row */
	exec("INSERT INTO photos VALUES (11, 1, 'uploading', 'image/png', 0, 0, 0, '', 1, 1, 1)");
	CHECK_INT(try("UPDATE photos SET status = 'processing', size = 'x' WHERE id = 11"), -1);
	CHECK_INT(scalar("SELECT count(*) FROM jobs WHERE subject = 11"), 0);
	CHECK_INT(scalar("SELECT count(*) FROM photos WHERE id = 11 AND status = 'uploading'"), 1);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

static void test_claim_complete(void)
{
	struct ld_queue *q = open_queue("w1", 1000, 5);
	struct ld_job j1, j2;
	struct ld_photo_outcome o = {0};
	struct ld_job_photo p;
	struct ld_queue_stats s;

	exec("DELETE FROM jobs; DELETE FROM photos");
	CHECK_INT(vt->claim(q, T0, &j1), -EAGAIN);
	upload(20);
	upload(21);
	CHECK_INT(vt->stats(q, T0 + 250, &s), 0);
	CHECK_INT(s.ready, 2);
	CHECK_INT(s.leased, 0);
	CHECK_INT(s.oldest_age_ms, 250);
	CHECK_INT(vt->claim(q, T0, &j1), 0);
	CHECK_STR(j1.kind, "thumbnail");
	CHECK_INT(j1.subject, 20);
	CHECK_INT(j1.attempts, 1);
	CHECK_INT(vt->claim(q, T0, &j2), 0);
	CHECK_INT(j2.subject, 21);
	CHECK_INT(vt->claim(q, T0, &j2), -EAGAIN);
	CHECK_INT(vt->photo(q, 20, &p), 0);
	CHECK_STR(p.status, "processing");
	CHECK_STR(p.content_type, "image/jpeg");
	CHECK_INT(p.size, 100);
	CHECK_INT(vt->photo(q, 99, &p), -ENOENT);

	o.photo_id = 20;
	o.status = "partial";
	o.reason = "1600: decode failed";
	o.width = 3000;
	o.height = 2000;
	o.nversions = 2;
	snprintf(o.versions[0].name, sizeof(o.versions[0].name), "128");
	o.versions[0].width = 128;
	o.versions[0].height = 85;
	o.versions[0].size = 4000;
	snprintf(o.versions[0].etag, sizeof(o.versions[0].etag), "\"a\"");
	snprintf(o.versions[1].name, sizeof(o.versions[1].name), "512");
	o.versions[1].width = 512;
	o.versions[1].height = 341;
	o.versions[1].size = 30000;
	snprintf(o.versions[1].etag, sizeof(o.versions[1].etag), "\"b\"");
	CHECK_INT(vt->complete(q, &j1, T0 + 10, &o), 0);
	CHECK_INT(
	    scalar(
		"SELECT count(*) FROM jobs WHERE id IN (SELECT id FROM jobs WHERE subject = 20)"),
	    0);
	CHECK_INT(scalar("SELECT count(*) FROM photos WHERE id = 20 AND status = 'partial'"
			 " AND reason = '1600: decode failed' AND width = 3000 AND version = 2"),
		  1);
	CHECK_INT(scalar("SELECT count(*) FROM photo_versions WHERE photo_id = 20"), 2);
	CHECK_INT(scalar("SELECT height FROM photo_versions WHERE photo_id = 20 AND name = '512'"),
		  341);
	/* Completing twice: the job is gone, nothing changes. */
	CHECK_INT(vt->complete(q, &j1, T0 + 20, &o), -ESTALE);
	CHECK_INT(scalar("SELECT version FROM photos WHERE id = 20"), 2);

	/* A photo deleted while its job ran: the job completes, no versions
	 * are written for a photo that is gone. */
	exec("DELETE FROM photos WHERE id = 21");
	o.photo_id = 21;
	CHECK_INT(vt->complete(q, &j2, T0 + 30, &o), 0);
	CHECK_INT(scalar("SELECT count(*) FROM photo_versions WHERE photo_id = 21"), 0);
	CHECK_INT(
	    scalar("SELECT count(*) FROM jobs WHERE kind = 'remove_objects' AND subject = 21"), 1);
	vt->close(q);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

static void test_lease_expiry_moves_the_job(void)
{
	struct ld_queue *a = open_queue("worker-a", 1000, 5);
	struct ld_queue *b = open_queue("worker-b", 1000, 5);
	struct ld_job ja, jb;
	bool dead = true;

	exec("DELETE FROM jobs; DELETE FROM photos");
	upload(30);
	CHECK_INT(vt->claim(a, T0, &ja), 0);
	/* Within the lease nobody else gets it. */
	CHECK_INT(vt->claim(b, T0 + 999, &jb), -EAGAIN);
	/* Worker a went quiet: at the end of its lease b takes the job. */
	CHECK_INT(vt->claim(b, T0 + 1000, &jb), 0);
	CHECK_INT(jb.id, ja.id);
	CHECK_INT(jb.attempts, 2);
	/* a comes back: every change it tries is refused. */
	CHECK_INT(vt->complete(a, &ja, T0 + 1100, NULL), -ESTALE);
	CHECK_INT(vt->fail(a, &ja, T0 + 1100, T0 + 2000, "late", NULL, &dead), -ESTALE);
	CHECK(!dead);
	CHECK_INT(vt->release(a, &ja, T0 + 1100), -ESTALE);
	CHECK_INT(
	    scalar("SELECT count(*) FROM jobs WHERE state = 'leased' AND lease_owner = 'worker-b'"),
	    1);
	CHECK_INT(vt->complete(b, &jb, T0 + 1200, NULL), 0);
	CHECK_INT(scalar("SELECT count(*) FROM jobs"), 0);
	vt->close(a);
	vt->close(b);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

static void test_retries_then_dead(void)
{
	struct ld_queue *q = open_queue("w", 1000, 3);
	struct ld_queue_stats s;
	struct ld_job j;
	bool dead = true;
	int64_t now = T0;

	exec("DELETE FROM jobs; DELETE FROM photos");
	upload(40);
	CHECK_INT(vt->claim(q, now, &j), 0);
	CHECK_INT(vt->fail(q, &j, now, now + 500, "boom 1", NULL, &dead), 0);
	CHECK(!dead);
	/* Not before its retry time. */
	CHECK_INT(vt->claim(q, now + 499, &j), -EAGAIN);
	CHECK_INT(vt->claim(q, now + 500, &j), 0);
	CHECK_INT(j.attempts, 2);
	/* A drained attempt is given back. */
	CHECK_INT(vt->release(q, &j, now + 600), 0);
	CHECK_INT(vt->claim(q, now + 600, &j), 0);
	CHECK_INT(j.attempts, 2);
	CHECK_INT(vt->fail(q, &j, now + 700, now + 700, "boom 2", NULL, &dead), 0);
	CHECK(!dead);
	CHECK_INT(vt->claim(q, now + 700, &j), 0);
	CHECK_INT(j.attempts, 3);
	{
		struct ld_photo_outcome gave_up = {
		    .photo_id = 40, .status = "failed", .reason = "gave up: boom 3"};

		CHECK_INT(vt->fail(q, &j, now + 800, now + 800, "boom 3", &gave_up, &dead), 0);
	}
	CHECK(dead);
	/* The dead job took its photo to `failed` with it. */
	CHECK_INT(scalar("SELECT count(*) FROM photos WHERE id = 40 AND status = 'failed'"
			 " AND reason = 'gave up: boom 3'"),
		  1);
	CHECK_INT(vt->claim(q, now + 100000, &j), -EAGAIN);
	CHECK_INT(scalar("SELECT count(*) FROM jobs WHERE state = 'dead' AND last_error = 'boom 3'"
			 " AND attempts = 3"),
		  1);
	CHECK_INT(vt->stats(q, now + 1000, &s), 0);
	CHECK_INT(s.ready, 0);
	CHECK_INT(s.dead, 1);
	CHECK_INT(s.oldest_age_ms, 0);
	vt->close(q);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

/* A job whose every worker died on it (the lease ran out each time, no fail
 * was ever recorded) must run out of attempts too: the reap that finds it
 * expired with its attempts spent makes it dead and its photo failed. */
static void test_reaped_out_of_attempts_is_dead(void)
{
	struct ld_queue *q = open_queue("w", 1000, 2);
	struct ld_queue_stats s;
	struct ld_job j;

	exec("DELETE FROM jobs; DELETE FROM photos");
	upload(50);
	CHECK_INT(vt->claim(q, T0, &j), 0);
	CHECK_INT(j.attempts, 1);
	/* The worker died: the lease runs out, one attempt is left. */
	CHECK_INT(vt->claim(q, T0 + 1000, &j), 0);
	CHECK_INT(j.attempts, 2);
	CHECK_INT(scalar("SELECT count(*) FROM photos WHERE id = 50 AND status = 'processing'"), 1);
	/* It died again with the last attempt: nothing more to claim. */
	CHECK_INT(vt->claim(q, T0 + 2000, &j), -EAGAIN);
	CHECK_INT(scalar("SELECT count(*) FROM jobs WHERE state = 'dead' AND attempts = 2"
			 " AND lease_owner = '' AND last_error = 'the worker died on it 2 times'"),
		  1);
	CHECK_INT(scalar("SELECT count(*) FROM photos WHERE id = 50 AND status = 'failed'"
			 " AND reason = 'the worker died on it 2 times' AND version = 2"),
		  1);
	CHECK_INT(vt->claim(q, T0 + 100000, &j), -EAGAIN);
	CHECK_INT(vt->stats(q, T0 + 100000, &s), 0);
	CHECK_INT(s.ready, 0);
	CHECK_INT(s.leased, 0);
	CHECK_INT(s.dead, 1);
	vt->close(q);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

static void test_open_errors(void)
{
	struct ld_queue_config cfg;
	struct ld_queue *q = NULL;
	char err[256] = "", dir[] = "/tmp/ld_test_queue_empty_XXXXXX";

	ld_queue_config_default(&cfg);
	CHECK(mkdtemp(dir) != NULL);
	cfg.data_dir = dir;
	CHECK_INT(ld_queue_sqlite_vt.open(&cfg, &q, err, sizeof(err)), -EIO);
	CHECK(strstr(err, "queue: open ") != NULL);
	CHECK(strstr(err, "ladder.db: unable to open database file") != NULL);
	CHECK(q == NULL);
	rmdir(dir);
	cfg.data_dir = tmpdir;
	cfg.owner = "";
	CHECK_INT(ld_queue_sqlite_vt.open(&cfg, &q, err, sizeof(err)), -EINVAL);
}

static void test_backoff(void)
{
	/* The window doubles from the base and stops at the cap. */
	CHECK_INT(ld_job_backoff_ms(1, 1000, 60000, 0.999999), 1000);
	CHECK_INT(ld_job_backoff_ms(2, 1000, 60000, 0.999999), 2000);
	CHECK_INT(ld_job_backoff_ms(3, 1000, 60000, 0.999999), 4000);
	CHECK_INT(ld_job_backoff_ms(7, 1000, 60000, 0.999999), 60000);
	CHECK_INT(ld_job_backoff_ms(500, 1000, 60000, 0.999999), 60000);
	/* Full jitter: anywhere from 0. */
	CHECK_INT(ld_job_backoff_ms(3, 1000, 60000, 0.0), 0);
	CHECK_INT(ld_job_backoff_ms(3, 1000, 60000, 0.5), 2000);
	CHECK_INT(ld_job_backoff_ms(3, 0, 60000, 0.5), 0);
}

/* ---- PostgreSQL only ---------------------------------------------------- */

static void test_pg_open_errors(void)
{
	struct ld_queue_config cfg;
	struct ld_queue *q = NULL;
	char err[256] = "", ci[256];

	ld_queue_config_default(&cfg);
	cfg.conninfo = "";
	CHECK_INT(ld_queue_pg_vt.open(&cfg, &q, err, sizeof(err)), -EINVAL);
	pg_conninfo("no_such_db", ci, sizeof(ci));
	cfg.conninfo = ci;
	CHECK_INT(ld_queue_pg_vt.open(&cfg, &q, err, sizeof(err)), -EIO);
	CHECK(strstr(err, "queue: cannot connect to the primary: ") != NULL);
	CHECK(strstr(err, "no_such_db") != NULL);
	CHECK(q == NULL);
	/* A database the store never migrated: the worker changes nothing. */
	pg_conninfo("postgres", ci, sizeof(ci));
	CHECK_INT(ld_queue_pg_vt.open(&cfg, &q, err, sizeof(err)), -EIO);
	CHECK_STR(err, "queue: the postgres store has schema version 0, jobs need 3: run "
		       "`ladder migrate --store postgres`");
	CHECK(q == NULL);
	/* A primary that takes the connection and never answers: the wait
	 * is the connect timeout, whatever the conninfo says. */
	{
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		CHECK(fd >= 0);
		CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		CHECK_INT(listen(fd, 8), 0);
		CHECK_INT(getsockname(fd, (struct sockaddr *)&a, &len), 0);
		snprintf(ci, sizeof(ci),
			 "hostaddr=127.0.0.1 port=%d user=postgres connect_timeout=600",
			 ntohs(a.sin_port));
		cfg.conninfo = ci;
		cfg.connect_timeout_ms = 1000;
		CHECK_INT(ld_queue_pg_vt.open(&cfg, &q, err, sizeof(err)), -EIO);
		CHECK(strstr(err, "queue: cannot connect to the primary: ") != NULL);
		CHECK(strstr(err, "timeout expired") != NULL);
		close(fd);
	}
}

/* A job another transaction holds (a worker in the middle of claiming or
 * settling it) is passed over, not waited for: the claim takes the next
 * one. The queue's session gives up on a lock after 2 s, so a claim that
 * waited would fail here instead of hanging. */
static void test_pg_claim_skips_locked(void)
{
	struct ld_queue_config cfg;
	struct ld_queue *q = NULL;
	struct ld_job j;
	char err[256] = "", ci[320];
	PGconn *other = pg_connect("ladder_q");
	PGresult *r;

	exec("DELETE FROM jobs; DELETE FROM photos");
	upload(60);
	upload(61);
	snprintf(ci, sizeof(ci), "%s options='-c lock_timeout=2000'", conninfo);
	ld_queue_config_default(&cfg);
	cfg.conninfo = ci;
	cfg.owner = "w";
	cfg.synchronous_full = false;
	CHECK_INT(ld_queue_pg_vt.open(&cfg, &q, err, sizeof(err)), 0);
	CHECK_INT(PQstatus(other), CONNECTION_OK);
	r = PQexec(other, "BEGIN");
	PQclear(r);
	r = PQexec(other, "SELECT id FROM jobs WHERE subject = 60 FOR UPDATE");
	CHECK_INT(PQntuples(r), 1);
	PQclear(r);
	CHECK_INT(ld_queue_pg_vt.claim(q, T0, &j), 0);
	CHECK_INT(j.subject, 61);
	CHECK_INT(ld_queue_pg_vt.claim(q, T0, &j), -EAGAIN);
	r = PQexec(other, "COMMIT");
	PQclear(r);
	CHECK_INT(ld_queue_pg_vt.claim(q, T0, &j), 0);
	CHECK_INT(j.subject, 60);
	PQfinish(other);
	ld_queue_pg_vt.close(q);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

#define RACE_THREADS 4
#define RACE_JOBS    300

struct racer {
	uv_thread_t t;
	struct ld_queue *q;
	unsigned done, stale, errors;
	int64_t ids[RACE_JOBS];
};

static void race(void *arg)
{
	struct racer *r = arg;
	struct ld_photo_outcome o = {.status = "ready", .reason = ""};
	struct ld_job j;
	int rc;

	while ((rc = ld_queue_pg_vt.claim(r->q, T0, &j)) == 0) {
		o.photo_id = j.subject;
		rc = ld_queue_pg_vt.complete(r->q, &j, T0, &o);
		if (rc == 0 && r->done < RACE_JOBS)
			r->ids[r->done++] = j.id;
		else if (rc == -ESTALE)
			r->stale++;
		else
			r->errors++;
	}
	if (rc != -EAGAIN)
		r->errors++;
}

/* Workers claiming at once: every job is claimed and completed exactly
 * once, none is lost, none is handed to two of them. */
static void test_pg_concurrent_claims_never_share(void)
{
	static struct racer r[RACE_THREADS];
	static bool seen[RACE_JOBS * 4];
	char owner[16], sql[256];
	unsigned i, k, total = 0;
	int64_t base;

	exec("DELETE FROM jobs; DELETE FROM photos");
	snprintf(sql, sizeof(sql),
		 "INSERT INTO photos SELECT g, 1, 'uploading', 'image/jpeg', 0, 0, 0, '', 1, 1, 1"
		 " FROM generate_series(1000, %d) g",
		 1000 + RACE_JOBS - 1);
	exec(sql);
	exec("UPDATE photos SET status = 'processing' WHERE status = 'uploading'");
	base = scalar("SELECT min(id) FROM jobs");
	CHECK_INT(scalar("SELECT count(*) FROM jobs"), RACE_JOBS);
	for (i = 0; i < RACE_THREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		snprintf(owner, sizeof(owner), "racer-%u", i);
		r[i].q = open_queue(owner, 60000, 5);
	}
	for (i = 0; i < RACE_THREADS; i++)
		CHECK_INT(uv_thread_create(&r[i].t, race, &r[i]), 0);
	for (i = 0; i < RACE_THREADS; i++)
		uv_thread_join(&r[i].t);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < RACE_THREADS; i++) {
		CHECK_INT(r[i].stale, 0);
		CHECK_INT(r[i].errors, 0);
		for (k = 0; k < r[i].done; k++) {
			int64_t at = r[i].ids[k] - base;

			CHECK(at >= 0 && at < RACE_JOBS * 4);
			if (at >= 0 && at < RACE_JOBS * 4) {
				CHECK(!seen[at]); /* completed twice */
				seen[at] = true;
			}
		}
		total += r[i].done;
		ld_queue_pg_vt.close(r[i].q);
	}
	CHECK_INT(total, RACE_JOBS);
	CHECK_INT(scalar("SELECT count(*) FROM jobs"), 0);
	CHECK_INT(scalar("SELECT count(*) FROM photos WHERE status = 'ready'"), RACE_JOBS);
	exec("DELETE FROM jobs; DELETE FROM photos");
}

/* run_pg: the shared tests again on PostgreSQL, with the schema made by
 * the postgres store's own open (its migrations), then its own tests. */
static void run_pg(void)
{
	struct ld_store_config sc;
	struct ld_store *s = NULL;
	char err[256] = "";
	PGconn *admin;
	PGresult *r;
	int rc;

	rc = pg_start();
	if (rc != 0) {
		fprintf(stderr, "cannot start PostgreSQL (%s): %s\n", PG_BIN, strerror(-rc));
		CHECK(!"PostgreSQL started");
		return;
	}
	admin = pg_connect("postgres");
	r = PQexec(admin, "CREATE DATABASE ladder_q");
	CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(admin);
	pg_conninfo("ladder_q", conninfo, sizeof(conninfo));
	snprintf(ld_pg_settings.primary, sizeof(ld_pg_settings.primary), "%s", conninfo);
	ld_store_config_default(&sc);
	CHECK_INT(ld_pg_vt.open(&sc, &s, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	if (s)
		ld_pg_vt.close(s);
	pg = pg_connect("ladder_q");
	vt = &ld_queue_pg_vt;
	exec("INSERT INTO users VALUES (1, 'alice', 'Alice', 'x', 1, 1, 1)");
	RUN(test_outbox_triggers);
	RUN(test_claim_complete);
	RUN(test_lease_expiry_moves_the_job);
	RUN(test_retries_then_dead);
	RUN(test_reaped_out_of_attempts_is_dead);
	RUN(test_pg_open_errors);
	RUN(test_pg_claim_skips_locked);
	RUN(test_pg_concurrent_claims_never_share);
	PQfinish(pg);
	pg = NULL;
	vt = &ld_queue_sqlite_vt;
	pg_stop();
}

int main(void)
{
	char path[256], err[256] = "";
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(path, sizeof(path), "%s/ladder.db", tmpdir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	sqlite3_busy_timeout(db, 5000);
	exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON");
	CHECK_INT(
	    ld_sqlite_migrate(db, ld_sqlite_migrations, ld_sqlite_nmigrations, err, sizeof(err)),
	    0);
	exec("INSERT INTO users VALUES (1, 'alice', 'Alice', 'x', 1, 1, 1)");
	RUN(test_outbox_triggers);
	RUN(test_claim_complete);
	RUN(test_lease_expiry_moves_the_job);
	RUN(test_retries_then_dead);
	RUN(test_reaped_out_of_attempts_is_dead);
	RUN(test_open_errors);
	RUN(test_backoff);
	run_pg();
	sqlite3_close(db);
	snprintf(path, sizeof(path), "rm -rf %s", tmpdir);
	rc = system(path);
	(void)rc;
	return unit_finish();
}
