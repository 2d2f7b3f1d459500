/*
 * test_store_photos.c - the photo ops of the SQLite store, and the same
 * again on the PostgreSQL store (a throwaway cluster, pg_env.h): the
 * in-flight upload cap is exact (and stale uploads stop counting),
 * completing moves `uploading` to `processing` and queues exactly one
 * thumbnail job in the same commit, the refusals say why (missing, not the
 * owner, not uploading), reads return versions, lists are newest first and
 * keyset paginated, and a delete queues the removal of the photo's objects.
 * On PostgreSQL also: two creates at once cannot both take the last place
 * under the cap (each would count in its own snapshot).
 */
#include "unit.h"

#include <sqlite3.h>

#include "pg_env.h"
#include "store/postgres.h"
#include "store_env.h"

static PGconn *pg; /* a connection of the test's own (what a worker sees) */

static int photo_op(struct env *e, enum ld_store_op_kind kind, int64_t id, int64_t actor,
		    struct ld_store_op *op)
{
	op_init(op, kind, NULL);
	op->id = id;
	op->actor_id = actor;
	return exec(e, op);
}

static int create(struct env *e, int64_t actor, unsigned limit, int64_t since,
		  struct ld_store_op *op)
{
	op_init(op, LD_OP_PHOTO_CREATE, NULL);
	op->actor_id = actor;
	op->limit = limit;
	op->expect_version = since;
	return exec(e, op);
}

static int complete(struct env *e, int64_t id, int64_t actor, struct ld_store_op *op)
{
	op_init(op, LD_OP_PHOTO_COMPLETE, NULL);
	op->id = id;
	op->actor_id = actor;
	snprintf(op->photo.content_type, sizeof(op->photo.content_type), "image/png");
	op->photo.size = 1234;
	op->photo.width = 640;
	op->photo.height = 480;
	return exec(e, op);
}

/* jobs counts the queue's rows of kind for subject, read through a
 * connection of its own (what a worker sees). */
static int64_t jobs(struct env *e, const char *kind, int64_t subject)
{
	char path[PATH_MAX + 16], sql[256];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	snprintf(path, sizeof(path), "%s/ladder.db", e->data);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE kind = '%s' AND subject = %lld",
		 kind, (long long)subject);
	if (vt == &ld_pg_vt) {
		PGresult *r = PQexec(pg, sql);

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		return n;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_photo_lifecycle(void)
{
	static struct ld_photo page[LD_LIST_MAX];
	struct env e;
	struct ld_store_op op;
	int64_t alice, bob, p1, p2, p3;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	bob = make_user(&e, "bob");

	CHECK_INT(create(&e, alice, 2, 0, &op), LD_STORE_OK);
	p1 = op.photo.id;
	CHECK(p1 > bob);
	CHECK_STR(op.photo.status, "uploading");
	CHECK_INT(op.photo.user_id, alice);
	CHECK_INT(create(&e, alice, 2, 0, &op), LD_STORE_OK);
	p2 = op.photo.id;
	/* The cap: two in flight, the third is refused... */
	CHECK_INT(create(&e, alice, 2, 0, &op), LD_STORE_CONFLICT);
	/* ...unless the old ones have expired (created before `since`). */
	CHECK_INT(create(&e, alice, 2, INT64_MAX / 2, &op), LD_STORE_OK);
	p3 = op.photo.id;
	/* Another user has a cap of their own; a missing one is NOT_FOUND. */
	CHECK_INT(create(&e, bob, 2, 0, &op), LD_STORE_OK);
	CHECK_INT(create(&e, bob + 1000, 2, 0, &op), LD_STORE_NOT_FOUND);

	/* Completing: the owner only, once, with its job in the same commit. */
	CHECK_INT(jobs(&e, "thumbnail", p1), 0);
	CHECK_INT(complete(&e, p1 + 1000, alice, &op), LD_STORE_NOT_FOUND);
	CHECK_INT(complete(&e, p1, bob, &op), LD_STORE_FORBIDDEN);
	CHECK_INT(jobs(&e, "thumbnail", p1), 0);
	CHECK_INT(complete(&e, p1, alice, &op), LD_STORE_OK);
	CHECK_STR(op.photo.status, "processing");
	CHECK_INT(op.photo.version, 2);
	CHECK_INT(jobs(&e, "thumbnail", p1), 1);
	CHECK_INT(complete(&e, p1, alice, &op), LD_STORE_PRECONDITION);
	CHECK_INT(jobs(&e, "thumbnail", p1), 1);
	/* A completed upload no longer counts against the cap. */
	CHECK_INT(create(&e, alice, 3, 0, &op), LD_STORE_OK);

	CHECK_INT(photo_op(&e, LD_OP_PHOTO_GET, p1, 0, &op), LD_STORE_OK);
	CHECK_STR(op.photo.status, "processing");
	CHECK_STR(op.photo.content_type, "image/png");
	CHECK_INT(op.photo.size, 1234);
	CHECK_INT(op.photo.width, 640);
	CHECK_INT(op.photo.nversions, 0);
	CHECK_INT(photo_op(&e, LD_OP_PHOTO_GET, p1 + 1000, 0, &op), LD_STORE_NOT_FOUND);

	/* Newest first, keyset pages. */
	op_init(&op, LD_OP_PHOTO_LIST, NULL);
	op.id = alice;
	op.limit = 2;
	op.photos = page;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 2);
	CHECK(op.has_more);
	CHECK(page[0].id > page[1].id);
	CHECK_INT(page[1].id, p3);
	op_init(&op, LD_OP_PHOTO_LIST, NULL);
	op.id = alice;
	op.limit = 10;
	op.before_id = p3;
	op.photos = page;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 2);
	CHECK(!op.has_more);
	CHECK_INT(page[0].id, p2);
	CHECK_INT(page[1].id, p1);
	op_init(&op, LD_OP_PHOTO_LIST, NULL);
	op.id = bob + 1000;
	op.limit = 10;
	op.photos = page;
	CHECK_INT(exec(&e, &op), LD_STORE_NOT_FOUND);

	/* Delete: the owner only; the removal job is queued with it. */
	CHECK_INT(photo_op(&e, LD_OP_PHOTO_DELETE, p1, bob, &op), LD_STORE_FORBIDDEN);
	CHECK_INT(photo_op(&e, LD_OP_PHOTO_DELETE, p1, alice, &op), LD_STORE_OK);
	CHECK_INT(jobs(&e, "remove_objects", p1), 1);
	CHECK_INT(photo_op(&e, LD_OP_PHOTO_DELETE, p1, alice, &op), LD_STORE_NOT_FOUND);
	CHECK_INT(photo_op(&e, LD_OP_PHOTO_GET, p1, 0, &op), LD_STORE_NOT_FOUND);
	env_close(&e);
out:
	env_cleanup(&e);
}

/* create_sent starts photo_create for (id, user 1, cap 1) on c without
 * waiting for its answer. */
static void create_sent(PGconn *c, int64_t id)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT ladder_photo_create(%lld, 1, 1700000000000, 1, 0)::int8",
		 (long long)id);
	CHECK_INT(PQsendQuery(c, sql), 1);
}

static int64_t answer(PGconn *c)
{
	PGresult *r;
	int64_t v = -99;

	while ((r = PQgetResult(c))) {
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	return v;
}

/* Two creates for one user with one place left: the first, in a
 * transaction not yet committed, holds the place; the second must wait for
 * it and then see it (at the cap), not count in a snapshot that missed it.
 * Deterministic: the second is sent while the first is open. */
static void test_pg_cap_holds_when_creates_race(void)
{
	PGconn *a = pg_connect("ladder_p"), *b = pg_connect("ladder_p");
	PGresult *r;
	int waited = 0;

	CHECK_INT(PQstatus(a), CONNECTION_OK);
	CHECK_INT(PQstatus(b), CONNECTION_OK);
	r = PQexec(a, "INSERT INTO users VALUES (1, 'racer', 'R', 'x', 1, 1, 1)");
	CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	r = PQexec(a, "BEGIN");
	PQclear(r);
	create_sent(a, 9001);
	CHECK_INT(answer(a), 0); /* created, not committed */
	create_sent(b, 9002);
	/* b waits for a's lock of the owner: no answer while a is open. */
	for (waited = 0; waited < 20; waited++) {
		CHECK_INT(PQconsumeInput(b), 1);
		if (!PQisBusy(b))
			break;
		usleep(10000);
	}
	CHECK_INT(waited, 20);
	r = PQexec(a, "COMMIT");
	PQclear(r);
	CHECK_INT(answer(b), -2); /* at the cap */
	r = PQexec(a, "SELECT count(*) FROM photos WHERE user_id = 1");
	CHECK_STR(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
	PQfinish(a);
	PQfinish(b);
}

static void run_pg(void)
{
	PGconn *admin;
	PGresult *r;
	int rc;

	rc = pg_start();
	if (rc != 0) {
		fprintf(stderr, "cannot start PostgreSQL (%s): %s\n", PG_BIN, strerror(-rc));
		CHECK(!"PostgreSQL started");
		pg_stop();
		return;
	}
	admin = pg_connect("postgres");
	r = PQexec(admin, "CREATE DATABASE ladder_s");
	PQclear(r);
	r = PQexec(admin, "CREATE DATABASE ladder_p");
	PQclear(r);
	PQfinish(admin);
	pg_conninfo("ladder_s", ld_pg_settings.primary, sizeof(ld_pg_settings.primary));
	pg = pg_connect("ladder_s");
	vt = &ld_pg_vt;
	RUN(test_photo_lifecycle);
	PQfinish(pg);
	/* A second database, made by the store's migrations too. */
	pg_conninfo("ladder_p", ld_pg_settings.primary, sizeof(ld_pg_settings.primary));
	{
		struct ld_store_config sc;
		struct ld_store *st = NULL;
		char err[256] = "";

		ld_store_config_default(&sc);
		CHECK_INT(ld_pg_vt.open(&sc, &st, err, sizeof(err)), 0);
		if (st)
			ld_pg_vt.close(st);
	}
	RUN(test_pg_cap_holds_when_creates_race);
	vt = &ld_sqlite_vt;
	pg_stop();
}

int main(void)
{
	RUN(test_photo_lifecycle);
	run_pg();
	return unit_finish();
}
