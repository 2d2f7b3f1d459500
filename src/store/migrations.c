/*
 * migrations.c - the SQLite schema history and the code that applies it.
 *
 * Never edit a migration that has shipped: databases in the field already
 * ran it. Change the schema by appending a new entry.
 */
#include "store/migrations.h"

#include <errno.h>
#include <stdio.h>

/*
 * Version 1: users and items.
 *
 * STRICT tables (SQLite 3.37+) reject a value of the wrong type instead of
 * silently storing it. `id INTEGER PRIMARY KEY` makes the id the rowid, so
 * point reads are one b-tree search. Times are Unix milliseconds. The items
 * index serves a user's newest-first page as one range scan in index order
 * (keyset pagination: `id < cursor ORDER BY id DESC`), and also the
 * foreign-key lookup from users to items.
 */
static const char v1_sql[] = "CREATE TABLE users ("
			     " id INTEGER PRIMARY KEY,"
			     " handle TEXT NOT NULL UNIQUE,"
			     " display_name TEXT NOT NULL,"
			     " password_hash TEXT NOT NULL,"
			     " created_ms INTEGER NOT NULL,"
			     " updated_ms INTEGER NOT NULL,"
			     " version INTEGER NOT NULL"
			     ") STRICT;"
			     "CREATE TABLE items ("
			     " id INTEGER PRIMARY KEY,"
			     " user_id INTEGER NOT NULL REFERENCES users (id),"
			     " content TEXT NOT NULL,"
			     " created_ms INTEGER NOT NULL,"
			     " updated_ms INTEGER NOT NULL,"
			     " version INTEGER NOT NULL"
			     ") STRICT;"
			     "CREATE INDEX items_user_id ON items (user_id, id DESC);";

/*
 * Version 2: photos, their versions, and the job queue.
 *
 * Photo bytes live in the blob store; a row holds what the API shows. The
 * queue is a table of the same database, so a photo and its job change in
 * one transaction (a transactional outbox): the triggers insert the
 * thumbnail job in the very statement that moves a photo from `uploading`
 * to `processing`, and the removal job in the statement that deletes it.
 * No code path can mark a photo uploaded without its job or delete one and
 * forget its objects.
 *
 * Jobs: `ready` (claimable from run_at_ms on), `leased` (a worker owns it
 * until lease_until_ms; past that another worker may take it), `dead` (out
 * of attempts: kept, with its last error, for a person to look at). A
 * finished job is deleted. The partial indexes serve the claim (oldest ready
 * first), the lease reaper, the dead count and the in-flight uploads count,
 * each a search over the rows it wants only.
 */
static const char v2_sql[] =
    "CREATE TABLE photos ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users (id),"
    " status TEXT NOT NULL CHECK (status IN"
    "  ('uploading', 'processing', 'ready', 'partial', 'failed')),"
    " content_type TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " width INTEGER NOT NULL,"
    " height INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " version INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX photos_user_id ON photos (user_id, id DESC);"
    "CREATE INDEX photos_uploading ON photos (user_id, created_ms) WHERE status = 'uploading';"
    "CREATE TABLE photo_versions ("
    " photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " width INTEGER NOT NULL,"
    " height INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " etag TEXT NOT NULL,"
    " PRIMARY KEY (photo_id, name)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE jobs ("
    " id INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " subject INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('ready', 'leased', 'dead')),"
    " attempts INTEGER NOT NULL,"
    " run_at_ms INTEGER NOT NULL,"
    " lease_owner TEXT NOT NULL,"
    " lease_until_ms INTEGER NOT NULL,"
    " last_error TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX jobs_ready ON jobs (run_at_ms) WHERE state = 'ready';"
    "CREATE INDEX jobs_leased ON jobs (lease_until_ms) WHERE state = 'leased';"
    "CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'dead';"
    "CREATE TRIGGER photos_outbox_thumbnail AFTER UPDATE OF status ON photos"
    " WHEN OLD.status = 'uploading' AND NEW.status = 'processing' BEGIN"
    " INSERT INTO jobs (kind, subject, state, attempts, run_at_ms, lease_owner,"
    "  lease_until_ms, last_error, created_ms, updated_ms)"
    " VALUES ('thumbnail', NEW.id, 'ready', 0, NEW.updated_ms, '', 0, '',"
    "  NEW.updated_ms, NEW.updated_ms);"
    " END;"
    "CREATE TRIGGER photos_outbox_remove AFTER DELETE ON photos BEGIN"
    " INSERT INTO jobs (kind, subject, state, attempts, run_at_ms, lease_owner,"
    "  lease_until_ms, last_error, created_ms, updated_ms)"
    " VALUES ('remove_objects', OLD.id, 'ready', 0, OLD.updated_ms, '', 0, '',"
    "  OLD.updated_ms, OLD.updated_ms);"
    " END;";

/*
 * Version 3: idempotency keys (docs/api.md). One row per (user, key) that a
 * successful write kept, written in the write's own transaction: the
 * request's fingerprint, and the answer to replay (its status and the item
 * as it was written; a delete keeps only the id). The primary key serves the
 * lookup; the expiry index lets the reaper take the oldest expired rows a
 * small batch at a time without reading the rest.
 */
static const char v3_sql[] =
    "CREATE TABLE idempotency_keys ("
    " user_id INTEGER NOT NULL,"
    " key TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL,"
    " status INTEGER NOT NULL,"
    " item_id INTEGER NOT NULL,"
    " item_content TEXT NOT NULL,"
    " item_created_ms INTEGER NOT NULL,"
    " item_updated_ms INTEGER NOT NULL,"
    " item_version INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " PRIMARY KEY (user_id, key)"
    ") STRICT;"
    "CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_ms);";

const struct ld_migration ld_sqlite_migrations[] = {
    {1, "users and items", v1_sql},
    {2, "photos, photo versions and jobs", v2_sql},
    {3, "idempotency keys", v3_sql},
};
const unsigned ld_sqlite_nmigrations =
    sizeof(ld_sqlite_migrations) / sizeof(ld_sqlite_migrations[0]);

int ld_sqlite_schema_version(void)
{
	return ld_sqlite_migrations[ld_sqlite_nmigrations - 1].version;
}

int ld_sqlite_user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*out = sqlite3_column_int(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* apply_one runs migration m in its own transaction. The version is read
 * again inside the transaction because another process (`ladder migrate`
 * next to a starting server) may have applied it in the meantime. */
static int apply_one(sqlite3 *db, const struct ld_migration *m, char *err, size_t errlen)
{
	char set_version[64];
	char *msg = NULL;
	int rc = -EIO, current = 0;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	if (ld_sqlite_user_version(db, &current) != 0)
		goto fail;
	if (current >= m->version) {
		rc = 0;
		goto commit;
	}
	if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	/* PRAGMA takes no bound parameters; the version is an int we own. */
	snprintf(set_version, sizeof(set_version), "PRAGMA user_version = %d", m->version);
	if (sqlite3_exec(db, set_version, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	rc = 0;
commit:
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		rc = -EIO;
		goto fail;
	}
	goto out;
fail:
	snprintf(err, errlen, "migration %d (%s) failed: %s", m->version, m->what,
		 msg ? msg : sqlite3_errmsg(db));
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_free(msg);
	return rc;
}

int ld_sqlite_migrate(sqlite3 *db, const struct ld_migration *list, unsigned n, char *err,
		      size_t errlen)
{
	int rc = -EIO, current = 0, latest = n ? list[n - 1].version : 0;
	unsigned i;

	if (ld_sqlite_user_version(db, &current) != 0) {
		snprintf(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (current > latest) {
		snprintf(err, errlen,
			 "database schema version %d is newer than this binary supports (%d): "
			 "run a newer ladder or restore a backup",
			 current, latest);
		rc = -EPROTO;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (list[i].version <= current)
			continue;
		rc = apply_one(db, &list[i], err, errlen);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	return rc;
}
