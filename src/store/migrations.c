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

const struct ld_migration ld_sqlite_migrations[] = {
    {1, "users and items", v1_sql},
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
