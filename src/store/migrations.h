/*
 * migrations.h - the SQLite schema as data: an ordered list of SQL scripts,
 * version n bringing a database from n-1 to n. PRAGMA user_version records
 * the last one applied, so opening any older database upgrades it in place
 * and opening a newer one is refused instead of guessed at.
 *
 * Threading: the functions use only the connection passed in; call them on
 * the thread that owns it (the store runs them in open(), before the writer
 * thread starts).
 */
#ifndef LD_MIGRATIONS_H
#define LD_MIGRATIONS_H

#include <sqlite3.h>
#include <stddef.h>

struct ld_migration {
	int version;	  /* 1, 2, 3 ... in order, no gaps */
	const char *what; /* one line for logs and errors */
	const char *sql;  /* one or more statements */
};

/* The migrations this binary knows; the last one's version is the schema
 * version it writes. */
extern const struct ld_migration ld_sqlite_migrations[];
extern const unsigned ld_sqlite_nmigrations;

/* ld_sqlite_schema_version is the version of the last migration. */
int ld_sqlite_schema_version(void);

/* ld_sqlite_user_version reads PRAGMA user_version. Returns 0 or -EIO. */
int ld_sqlite_user_version(sqlite3 *db, int *out);

/* ld_sqlite_migrate applies every migration of list (n entries) newer than
 * the database's user_version, each in its own IMMEDIATE transaction that
 * also sets user_version, so a failure leaves the database at the last
 * version that fully applied. Returns 0; -EPROTO when the database is newer
 * than the list (written by a newer binary); -EIO when a migration fails (the
 * message, naming the version, goes to err). */
int ld_sqlite_migrate(sqlite3 *db, const struct ld_migration *list, unsigned n, char *err,
		      size_t errlen);

#endif
