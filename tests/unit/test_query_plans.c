/*
 * test_query_plans.c - every SQL statement the SQLite driver runs, planned
 * against a populated database: none may read a whole table, and a user's
 * item list must walk the (user_id, id DESC) index in order, with no sort.
 *
 * Plans are checked twice: with SQLite's default guesses, and again after
 * ANALYZE, because real statistics are what a long-running database plans
 * with, and they can turn a search into a scan.
 */
#include "unit.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "jobs/queue_sqlite.h"
#include "store/migrations.h"
#include "store/sqlite.h"

#define USERS  3000
#define ITEMS  30000
#define PHOTOS 3000

struct plan {
	char text[2048]; /* every step's detail, one per line */
	unsigned full_scans;
	bool temp_btree;
	int rc; /* SQLITE_OK when the statement could be planned */
};

/* is_full_scan: SQLite names a step that visits every row of a table or
 * index "SCAN x" (with or without an index); "SCAN CONSTANT ROW" is a
 * SELECT without FROM and reads nothing. A search bounded only by a range
 * on the rowid ("rowid<?") reads the whole table when the bound is open,
 * as a list cursor's first page is, so it counts as a scan too. */
static bool is_full_scan(const char *detail)
{
	if (strncmp(detail, "SCAN ", 5) == 0)
		return strcmp(detail, "SCAN CONSTANT ROW") != 0;
	return strstr(detail, "(rowid<?)") || strstr(detail, "(rowid>?)") ||
	       strstr(detail, "(rowid>? AND rowid<?)");
}

/* partial_index_scan: "SCAN t USING [COVERING ]INDEX i" where i is a partial
 * index reads only the rows the index holds (the jobs of one state, for a
 * queue-depth count), not the table: that is the point of such an index. */
static bool partial_index_scan(sqlite3 *db, const char *detail)
{
	const char *p = strstr(detail, " INDEX ");
	char name[128];
	sqlite3_stmt *st = NULL;
	bool partial = false;
	size_t n;

	if (strncmp(detail, "SCAN ", 5) != 0 || !p)
		return false;
	p += 7;
	n = strcspn(p, " ");
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	if (sqlite3_prepare_v2(db,
			       "SELECT partial FROM sqlite_schema s, pragma_index_list(s.name) l"
			       " WHERE s.type = 'table' AND l.name = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		partial = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	}
	sqlite3_finalize(st);
	return partial;
}

/* explain plans sql with params bound (n of them, may be NULL). */
static void explain(sqlite3 *db, const char *sql, const struct ld_sql_param *params, unsigned n,
		    struct plan *p)
{
	char q[1024];
	sqlite3_stmt *st = NULL;
	size_t len = 0;
	unsigned i;

	memset(p, 0, sizeof(*p));
	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	p->rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (p->rc != SQLITE_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if (params[i].is_text)
			sqlite3_bind_text(st, (int)i + 1, params[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, (int)i + 1, params[i].i);
	}
	while ((p->rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);

		if (!d)
			continue;
		if (is_full_scan(d) && !partial_index_scan(db, d))
			p->full_scans++;
		if (strstr(d, "USE TEMP B-TREE"))
			p->temp_btree = true;
		if (len < sizeof(p->text))
			len += (size_t)snprintf(p->text + len, sizeof(p->text) - len, "%s\n", d);
	}
	if (p->rc == SQLITE_DONE)
		p->rc = SQLITE_OK;
out:
	sqlite3_finalize(st);
}

static sqlite3 *populate(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *u = NULL, *it = NULL;
	char err[256] = "", handle[32];
	int64_t i;

	CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
	CHECK_INT(
	    ld_sqlite_migrate(db, ld_sqlite_migrations, ld_sqlite_nmigrations, err, sizeof(err)),
	    0);
	CHECK_INT(sqlite3_exec(db, "PRAGMA foreign_keys = ON; BEGIN", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, ld_sqlite_stmts[LD_SQL_USER_INSERT].sql, -1, &u, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, ld_sqlite_stmts[LD_SQL_ITEM_INSERT].sql, -1, &it, NULL),
		  SQLITE_OK);
	for (i = 1; i <= USERS; i++) {
		snprintf(handle, sizeof(handle), "user%lld", (long long)i);
		sqlite3_bind_int64(u, 1, i * 1000);
		sqlite3_bind_text(u, 2, handle, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(u, 3, handle, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(u, 4, "$argon2id$v=19$m=19456,t=2,p=1$x$y", -1, SQLITE_STATIC);
		sqlite3_bind_int64(u, 5, 1700000000000 + i);
		CHECK_INT(sqlite3_step(u), SQLITE_DONE);
		sqlite3_reset(u);
	}
	/* Skewed ownership, like real traffic: a tenth of the users own half
	 * the items. */
	for (i = 1; i <= ITEMS; i++) {
		int64_t owner = i % 2 ? (i % (USERS / 10)) + 1 : (i % USERS) + 1;

		sqlite3_bind_int64(it, 1, USERS * 1000 + i);
		sqlite3_bind_int64(it, 2, owner * 1000);
		sqlite3_bind_text(it, 3, "some content of an ordinary length for an item", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(it, 4, 1700000000000 + i);
		CHECK_INT(sqlite3_step(it), SQLITE_DONE);
		sqlite3_reset(it);
	}
	sqlite3_finalize(u);
	sqlite3_finalize(it);
	/* Photos of every status; the outbox trigger queues a job for each one
	 * that leaves `uploading`, and most jobs are done (deleted) by the
	 * time the table is looked at, a few are leased or dead. */
	CHECK_INT(sqlite3_prepare_v2(db,
				     "INSERT INTO photos VALUES (?1, ?2, 'uploading', 'image/jpeg',"
				     " 0, 0, 0, '', ?3, ?3, 1)",
				     -1, &it, NULL),
		  SQLITE_OK);
	for (i = 1; i <= PHOTOS; i++) {
		sqlite3_bind_int64(it, 1, (USERS + ITEMS) * 1000 + i);
		sqlite3_bind_int64(it, 2, ((i % USERS) + 1) * 1000);
		sqlite3_bind_int64(it, 3, 1700000000000 + i);
		CHECK_INT(sqlite3_step(it), SQLITE_DONE);
		sqlite3_reset(it);
	}
	sqlite3_finalize(it);
	CHECK_INT(
	    sqlite3_exec(db,
			 "UPDATE photos SET status = 'processing' WHERE id % 10 <> 0;"
			 "DELETE FROM jobs WHERE id % 20 <> 0;"
			 "UPDATE jobs SET state = 'leased', lease_until_ms = run_at_ms + 60000"
			 " WHERE id % 40 = 0;"
			 "UPDATE jobs SET state = 'dead' WHERE id % 60 = 0;"
			 "UPDATE photos SET status = 'ready' WHERE id % 10 > 5;"
			 "INSERT INTO photo_versions SELECT id, '128', 128, 85, 4000, '\"x\"'"
			 " FROM photos WHERE status = 'ready'",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	/* Idempotency keys of many users; the statements' example time is in
	 * the middle of their expiry times. */
	CHECK_INT(sqlite3_exec(db,
			       "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g"
			       " WHERE n < 20000)"
			       " INSERT INTO idempotency_keys SELECT (n % 3000 + 1) * 1000,"
			       " 'key-' || n, x'00', 201, n, 'c', n, n, 1, n,"
			       " 1699999000000 + n * 100 FROM g",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

/* check_table plans every statement of one statement table. */
static void check_table(sqlite3 *db, const char *when, const struct ld_sql_stmt *table, unsigned n)
{
	struct plan p;
	sqlite3_stmt *st = NULL;
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct ld_sql_stmt *s = &table[i];

		CHECK(s->name != NULL && s->sql != NULL);
		if (!s->name || !s->sql)
			continue;
		/* The table is honest about parameters and roles. */
		CHECK_INT(sqlite3_prepare_v2(db, s->sql, -1, &st, NULL), SQLITE_OK);
		CHECK_INT(sqlite3_bind_parameter_count(st), s->nparams);
		if (s->role == LD_SQL_READER && !sqlite3_stmt_readonly(st)) {
			fprintf(stderr, "%s: reader statement writes\n", s->name);
			CHECK(!"reader statement is not read-only");
		}
		sqlite3_finalize(st);
		st = NULL;

		explain(db, s->sql, s->example, s->nparams, &p);
		CHECK_INT(p.rc, SQLITE_OK);
		if (p.full_scans) {
			fprintf(stderr, "%s (%s): full scan:\n%s", s->name, when, p.text);
			CHECK_INT(p.full_scans, 0);
		}
		if (p.temp_btree) {
			fprintf(stderr, "%s (%s): temp b-tree:\n%s", s->name, when, p.text);
			CHECK(!p.temp_btree);
		}
	}
}

/* check_all plans every statement the store and the job queue run. */
static void check_all(sqlite3 *db, const char *when)
{
	struct plan p;

	check_table(db, when, ld_sqlite_stmts, LD_SQL_COUNT);
	check_table(db, when, ld_queue_sqlite_stmts, LD_QSQL_COUNT);

	/* The claim takes the oldest ready job from the partial index, in its
	 * order. */
	explain(db, ld_queue_sqlite_stmts[LD_QSQL_CLAIM].sql,
		ld_queue_sqlite_stmts[LD_QSQL_CLAIM].example,
		ld_queue_sqlite_stmts[LD_QSQL_CLAIM].nparams, &p);
	CHECK(strstr(p.text, "SEARCH jobs USING INDEX jobs_ready (run_at_ms<?)") != NULL);
	explain(db, ld_queue_sqlite_stmts[LD_QSQL_REAP].sql,
		ld_queue_sqlite_stmts[LD_QSQL_REAP].example,
		ld_queue_sqlite_stmts[LD_QSQL_REAP].nparams, &p);
	CHECK(strstr(p.text, "SEARCH jobs USING INDEX jobs_leased (lease_until_ms<?)") != NULL);
	/* So do the reaps that end the expired leases out of attempts. */
	explain(db, ld_queue_sqlite_stmts[LD_QSQL_REAP_DEAD].sql,
		ld_queue_sqlite_stmts[LD_QSQL_REAP_DEAD].example,
		ld_queue_sqlite_stmts[LD_QSQL_REAP_DEAD].nparams, &p);
	CHECK(strstr(p.text, "SEARCH jobs USING INDEX jobs_leased (lease_until_ms<?)") != NULL);
	explain(db, ld_queue_sqlite_stmts[LD_QSQL_REAP_DEAD_PHOTO].sql,
		ld_queue_sqlite_stmts[LD_QSQL_REAP_DEAD_PHOTO].example,
		ld_queue_sqlite_stmts[LD_QSQL_REAP_DEAD_PHOTO].nparams, &p);
	CHECK(strstr(p.text, "SEARCH jobs USING INDEX jobs_leased (lease_until_ms<?)") != NULL);

	/* The upload cap counts one user's uploads in flight in the partial
	 * index; a user's photos page walks its own index in order. */
	explain(db, ld_sqlite_stmts[LD_SQL_PHOTO_INSERT].sql,
		ld_sqlite_stmts[LD_SQL_PHOTO_INSERT].example,
		ld_sqlite_stmts[LD_SQL_PHOTO_INSERT].nparams, &p);
	CHECK(strstr(p.text,
		     "SEARCH photos USING INDEX photos_uploading (user_id=? AND created_ms>?)") !=
	      NULL);
	explain(db, ld_sqlite_stmts[LD_SQL_PHOTO_LIST].sql,
		ld_sqlite_stmts[LD_SQL_PHOTO_LIST].example,
		ld_sqlite_stmts[LD_SQL_PHOTO_LIST].nparams, &p);
	CHECK(strstr(p.text, "SEARCH photos USING INDEX photos_user_id (user_id=? AND id<?)") !=
	      NULL);
	CHECK(!p.temp_btree);

	/* A key is found by its primary key; the reaper takes the oldest
	 * expired keys from the expiry index. */
	explain(db, ld_sqlite_stmts[LD_SQL_IDEM_GET].sql, ld_sqlite_stmts[LD_SQL_IDEM_GET].example,
		ld_sqlite_stmts[LD_SQL_IDEM_GET].nparams, &p);
	CHECK(strstr(p.text, "SEARCH idempotency_keys USING INDEX "
			     "sqlite_autoindex_idempotency_keys_1 (user_id=? AND key=?)") != NULL);
	explain(db, ld_sqlite_stmts[LD_SQL_IDEM_REAP].sql,
		ld_sqlite_stmts[LD_SQL_IDEM_REAP].example,
		ld_sqlite_stmts[LD_SQL_IDEM_REAP].nparams, &p);
	CHECK(strstr(p.text, "SEARCH idempotency_keys USING COVERING INDEX "
			     "idempotency_keys_expires (expires_ms<?)") != NULL);
	if (!strstr(p.text, "idempotency_keys_expires"))
		fprintf(stderr, "idem_reap (%s):\n%s", when, p.text);

	/* The list walks the composite index in its own order. */
	explain(db, ld_sqlite_stmts[LD_SQL_ITEM_LIST].sql,
		ld_sqlite_stmts[LD_SQL_ITEM_LIST].example,
		ld_sqlite_stmts[LD_SQL_ITEM_LIST].nparams, &p);
	CHECK(strstr(p.text, "SEARCH items USING INDEX items_user_id (user_id=? AND id<?)") !=
	      NULL);
	CHECK(!p.temp_btree);
	CHECK_INT(p.full_scans, 0);
	/* Point reads are searches on the primary key or the handle. */
	explain(db, ld_sqlite_stmts[LD_SQL_ITEM_GET].sql, ld_sqlite_stmts[LD_SQL_ITEM_GET].example,
		1, &p);
	CHECK(strstr(p.text, "SEARCH items USING INTEGER PRIMARY KEY (rowid=?)") != NULL);
	explain(db, ld_sqlite_stmts[LD_SQL_USER_GET_BY_HANDLE].sql,
		ld_sqlite_stmts[LD_SQL_USER_GET_BY_HANDLE].example, 1, &p);
	CHECK(strstr(p.text, "SEARCH users USING INDEX sqlite_autoindex_users_1 (handle=?)") !=
	      NULL);
}

static void test_plans_default_statistics(void)
{
	sqlite3 *db = populate();

	check_all(db, "no statistics");
	sqlite3_close(db);
}

static void test_plans_after_analyze(void)
{
	sqlite3 *db = populate();

	CHECK_INT(sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
	check_all(db, "after ANALYZE");
	sqlite3_close(db);
}

/* The checker itself must be able to fail: queries with no usable index,
 * or an order the index does not give, are caught. */
static void test_checker_catches_bad_plans(void)
{
	static const struct ld_sql_param name = {true, 0, "user7"};
	static const struct ld_sql_param owner = {false, 7000, NULL};
	sqlite3 *db = populate();
	struct plan p;

	explain(db, "SELECT id FROM users WHERE display_name = ?1", &name, 1, &p);
	CHECK_INT(p.rc, SQLITE_OK);
	CHECK_INT(p.full_scans, 1);
	CHECK(strstr(p.text, "SCAN users") != NULL);

	explain(db, "SELECT id FROM items WHERE content LIKE '%x%' ORDER BY id DESC LIMIT 5", NULL,
		0, &p);
	CHECK_INT(p.full_scans, 1);

	explain(db, "SELECT id FROM items WHERE user_id = ?1 ORDER BY created_ms DESC LIMIT 20",
		&owner, 1, &p);
	CHECK_INT(p.full_scans, 0);
	CHECK(p.temp_btree);

	/* Without the composite index the list would walk the rowid range. */
	explain(db,
		"SELECT id FROM items NOT INDEXED WHERE user_id = ?1 AND id < ?2"
		" ORDER BY id DESC LIMIT 21",
		&owner, 1, &p);
	CHECK_INT(p.full_scans, 1);

	explain(db, "SELECT 1", NULL, 0, &p);
	CHECK_INT(p.full_scans, 0);

	/* A count over a whole ordinary index is a scan; over a partial index
	 * it reads only the rows of that state. */
	explain(db, "SELECT count(*) FROM items INDEXED BY items_user_id", NULL, 0, &p);
	CHECK_INT(p.full_scans, 1);
	explain(db, "SELECT count(*) FROM jobs WHERE state = 'dead'", NULL, 0, &p);
	CHECK(strstr(p.text, "SCAN jobs USING INDEX jobs_dead") != NULL);
	CHECK_INT(p.full_scans, 0);
	explain(db, "SELECT count(*) FROM jobs WHERE state = 'done'", NULL, 0, &p);
	CHECK_INT(p.full_scans, 1);
	sqlite3_close(db);
}

int main(void)
{
	RUN(test_plans_default_statistics);
	RUN(test_plans_after_analyze);
	RUN(test_checker_catches_bad_plans);
	return unit_finish();
}
