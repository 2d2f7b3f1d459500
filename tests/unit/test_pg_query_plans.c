/*
 * test_pg_query_plans.c - every statement the PostgreSQL driver prepares,
 * planned on a populated database: none may read users, items,
 * idempotency_keys, photos, photo_versions or jobs with a Seq Scan. Each is
 * planned as the driver runs it, a prepared statement, twice: with the
 * example values (a custom plan) and as the generic plan a connection
 * settles on after a few executions.
 *
 * The queue driver's per-job statements (queue_pg.h) are held to the same;
 * its scrape-time counts are exempt.
 *
 * The test starts its own PostgreSQL 15 (pg_env.h) and always stops it.
 */
#include "unit.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>

#include "jobs/queue_pg.h"
#include "pg_env.h"
#include "store/postgres.h"

#define USERS  20000
#define ITEMS  100000
#define PHOTOS 50000
#define JOBS   30000

static bool exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static PGconn *db;

/* populate: the driver's schema (its own migration) and enough rows that a
 * scan costs more than an index search: photos of many users, most done,
 * some uploading; jobs mostly dead (what stays in the table), some ready,
 * some leased, none of them expired at the examples' time. */
static void test_populate(void)
{
	char sql[512];
	unsigned i;

	for (i = 0; i < ld_pg_nmigrations; i++)
		CHECK(exec_ok(db, ld_pg_migrations[i].sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO users SELECT g, 'user' || g, 'User ' || g, '$argon2id$x', g, g, 1"
		 " FROM generate_series(1, %d) g",
		 USERS);
	CHECK(exec_ok(db, sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO items SELECT g, 1 + g %% %d, 'item'::bytea, g, g, 1"
		 " FROM generate_series(1, %d) g",
		 USERS, ITEMS);
	CHECK(exec_ok(db, sql));
	/* Keys of many users, a tenth of them expired (the example time of the
	 * statements is in the middle of their expiry times). */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO idempotency_keys SELECT 1 + g %% %d, 'key-' || g, 'fp'::bytea, 201,"
		 " g, 'item'::bytea, g, g, 1, g, 1699999000000 + g * 100"
		 " FROM generate_series(1, %d) g",
		 USERS, ITEMS);
	CHECK(exec_ok(db, sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO photos SELECT g, 1 + g %% %d, CASE WHEN g %% 50 = 0 THEN 'uploading'"
		 " WHEN g %% 50 = 1 THEN 'processing' ELSE 'ready' END, 'image/jpeg', 1000,"
		 " 3000, 2000, '', g, g, 1 FROM generate_series(1, %d) g",
		 USERS, PHOTOS);
	CHECK(exec_ok(db, sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO photo_versions SELECT g, n, 128, 85, 4000, '\"e\"'"
		 " FROM generate_series(1, %d) g, (VALUES ('128'), ('512'), ('1600')) v (n)",
		 PHOTOS);
	CHECK(exec_ok(db, sql));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO jobs (kind, subject, state, attempts, run_at_ms, lease_owner,"
		 " lease_until_ms, last_error, created_ms, updated_ms)"
		 " SELECT 'thumbnail', g, CASE WHEN g %% 10 = 0 THEN 'ready' WHEN g %% 10 = 1"
		 " THEN 'leased' ELSE 'dead' END, 1, 1699999970000 + g, 'w', 1700000030000 + g,"
		 " '', g, g"
		 " FROM generate_series(1, %d) g",
		 JOBS);
	CHECK(exec_ok(db, sql));
	CHECK(exec_ok(db, "ANALYZE"));
}

/* explain_args returns the plan text of prepared statement name executed
 * with args ("(v1, v2)" or ""), custom (generic = false) or generic. */
static void explain_args(const char *name, const char *args, bool generic, char *out, size_t cap)
{
	char q[1024];
	size_t n = 0;
	PGresult *r;
	int row;

	out[0] = '\0';
	exec_ok(db, generic ? "SET plan_cache_mode = force_generic_plan"
			    : "SET plan_cache_mode = force_custom_plan");
	snprintf(q, sizeof(q), "EXPLAIN EXECUTE %s%s", name, args);
	r = PQexec(db, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(out, cap, "EXPLAIN failed: %s", PQresultErrorMessage(r));
		PQclear(r);
		return;
	}
	n = 0;
	for (row = 0; row < PQntuples(r) && n < cap; row++)
		n += (size_t)snprintf(out + n, cap - n, "%s\n", PQgetvalue(r, row, 0));
	PQclear(r);
}

/* explain plans store statement i with its examples. */
static void explain(unsigned i, bool generic, char *out, size_t cap)
{
	const struct ld_pg_stmt *s = &ld_pg_stmts[i];
	char args[512];
	size_t n = 0;
	unsigned j;

	args[0] = '\0';
	for (j = 0; j < s->nparams; j++)
		n += (size_t)snprintf(args + n, sizeof(args) - n, "%s%s", j ? ", " : "(",
				      s->example[j]);
	if (s->nparams)
		snprintf(args + n, sizeof(args) - n, ")");
	explain_args(s->name, args, generic, out, cap);
}

/* scans names the table a plan reads with a Seq Scan, or NULL. */
static const char *scans(const char *plan)
{
	static const char *const tables[] = {"users", "items", "photos", "photo_versions", "jobs"};
	static char hit[64];
	unsigned i;

	if (strstr(plan, "EXPLAIN failed"))
		return "(explain failed)";
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char needle[48];
		const char *p;

		snprintf(needle, sizeof(needle), "Seq Scan on %s", tables[i]);
		/* "photos" must not match inside "photo_versions" and back. */
		for (p = plan; (p = strstr(p, needle)); p += strlen(needle)) {
			char next = p[strlen(needle)];

			if (next == ' ' || next == '\n' || next == '\0') {
				snprintf(hit, sizeof(hit), "%s", tables[i]);
				return hit;
			}
		}
	}
	return NULL;
}

static void test_every_statement_uses_an_index(void)
{
	static const Oid oids[] = {[LD_PG_INT8] = 20,
				   [LD_PG_TEXT] = 25,
				   [LD_PG_BYTEA] = 17,
				   [LD_PG_INT8_ARRAY] = 1016,
				   [LD_PG_BYTEA_ARRAY] = 1001};
	char plan[8192];
	unsigned i, j, g;

	for (i = 0; i < LD_PG_SQL_COUNT; i++) {
		const struct ld_pg_stmt *s = &ld_pg_stmts[i];
		Oid types[LD_PG_PARAMS_MAX];
		PGresult *r;

		for (j = 0; j < s->nparams; j++)
			types[j] = oids[s->types[j]];
		r = PQprepare(db, s->name, s->sql, (int)s->nparams, types);
		CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		for (g = 0; g < 2; g++) {
			explain(i, g == 1, plan, sizeof(plan));
			if (scans(plan)) {
				fprintf(stderr, "%s (%s plan):\n%s", s->name,
					g ? "generic" : "custom", plan);
				CHECK(!"a statement reads a table with a Seq Scan");
			}
		}
	}
}

/* The queue's per-job statements, prepared as the driver prepares them
 * (text parameters typed by the SQL's casts). */
static void test_every_queue_statement_uses_an_index(void)
{
	char plan[8192];
	unsigned i, g;

	for (i = 0; i < LD_QPG_COUNT; i++) {
		const struct ld_qpg_stmt *s = &ld_queue_pg_stmts[i];
		PGresult *r = PQprepare(db, s->name, s->sql, (int)s->nparams, NULL);

		CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "%s: %s", s->name, PQresultErrorMessage(r));
		PQclear(r);
		for (g = 0; g < 2; g++) {
			explain_args(s->name, s->example, g == 1, plan, sizeof(plan));
			CHECK(!strstr(plan, "EXPLAIN failed"));
			if (s->hot && scans(plan)) {
				fprintf(stderr, "%s (%s plan):\n%s", s->name,
					g ? "generic" : "custom", plan);
				CHECK(!"a queue statement reads a table with a Seq Scan");
			}
		}
	}
}

/* The in-flight count inside ladder_photo_create (EXPLAIN does not show a
 * function's inner queries): it must search photos_uploading. */
static void test_photo_create_count_uses_its_index(void)
{
	char plan[8192] = "";
	unsigned g;
	PGresult *r = PQprepare(db, "uploading_count",
				"SELECT count(*) FROM photos WHERE user_id = $1 AND"
				" status = 'uploading' AND created_ms > $2",
				2, (const Oid[]){20, 20});

	CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	CHECK(strstr(ld_pg_migrations[2].sql, "SELECT count(*) FROM photos WHERE user_id = p_user"
					      " AND status = 'uploading'   AND created_ms > "
					      "p_since") != NULL);
	for (g = 0; g < 2; g++) {
		explain_args("uploading_count", "(42, 1699999100000)", g == 1, plan, sizeof(plan));
		CHECK(strstr(plan, "photos_uploading") != NULL);
		if (!strstr(plan, "photos_uploading"))
			fprintf(stderr, "%s", plan);
	}
}

/* The list must walk the (user_id, id DESC) index: a page is a range scan,
 * no sort of the user's items. */
static void test_list_walks_the_index(void)
{
	char plan[8192];
	unsigned g;

	for (g = 0; g < 2; g++) {
		explain(LD_PG_ITEM_LIST, g == 1, plan, sizeof(plan));
		CHECK(strstr(plan, "items_user_id") != NULL);
		if (!strstr(plan, "items_user_id"))
			fprintf(stderr, "%s", plan);
	}
}

/* A key is found by its primary key, and the reaper takes its batch from
 * the expiry index, not by reading every key. */
static void test_idempotency_keys_use_their_indexes(void)
{
	static const unsigned pk[] = {LD_PG_IDEM_GET, LD_PG_IDEM_CLEAR};
	char plan[8192];
	unsigned g, i;

	for (g = 0; g < 2; g++) {
		for (i = 0; i < sizeof(pk) / sizeof(pk[0]); i++) {
			explain(pk[i], g == 1, plan, sizeof(plan));
			CHECK(strstr(plan, "idempotency_keys_pkey") != NULL);
			if (!strstr(plan, "idempotency_keys_pkey"))
				fprintf(stderr, "%s", plan);
		}
		explain(LD_PG_IDEM_REAP, g == 1, plan, sizeof(plan));
		CHECK(strstr(plan, "idempotency_keys_expires") != NULL);
		CHECK(strstr(plan, "Tid Scan on idempotency_keys") != NULL);
		if (!strstr(plan, "idempotency_keys_expires") || !strstr(plan, "Tid Scan"))
			fprintf(stderr, "%s", plan);
	}
}

int main(void)
{
	int rc;

	rc = pg_start();
	if (rc != 0) {
		fprintf(stderr, "cannot start PostgreSQL (%s): %s\n", PG_BIN, strerror(-rc));
		pg_stop();
		return 1;
	}
	db = pg_connect("postgres");
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(db));
		PQfinish(db);
		pg_stop();
		return 1;
	}
	RUN(test_populate);
	RUN(test_every_statement_uses_an_index);
	RUN(test_list_walks_the_index);
	RUN(test_idempotency_keys_use_their_indexes);
	RUN(test_every_queue_statement_uses_an_index);
	RUN(test_photo_create_count_uses_its_index);
	PQfinish(db);
	pg_stop();
	return unit_finish();
}
