/*
 * pg_schema.c - what the PostgreSQL driver says to the database: its
 * statements, its schema history, and its [postgres] configuration section.
 *
 * Never edit a migration that has shipped: append a new one.
 */
#include <stddef.h>

#include "base/config.h"
#include "store/postgres.h"

/*
 * Version 1: users and items, as in SQLite. Content is bytea: the API lets
 * content hold NUL bytes, which a text column refuses. The items index
 * serves a user's newest-first page as one range scan (keyset pagination).
 */
static const char v1_sql[] = "CREATE TABLE users ("
			     " id bigint PRIMARY KEY,"
			     " handle text NOT NULL UNIQUE,"
			     " display_name text NOT NULL,"
			     " password_hash text NOT NULL,"
			     " created_ms bigint NOT NULL,"
			     " updated_ms bigint NOT NULL,"
			     " version bigint NOT NULL);"
			     "CREATE TABLE items ("
			     " id bigint PRIMARY KEY,"
			     " user_id bigint NOT NULL REFERENCES users (id),"
			     " content bytea NOT NULL,"
			     " created_ms bigint NOT NULL,"
			     " updated_ms bigint NOT NULL,"
			     " version bigint NOT NULL);"
			     "CREATE INDEX items_user_id ON items (user_id, id DESC);";

/*
 * Version 2: idempotency keys, as in SQLite (migrations.c, version 3): the
 * primary key serves the lookup and the unique check of a keyed write, the
 * expiry index the reaper.
 */
static const char v2_sql[] =
    "CREATE TABLE idempotency_keys ("
    " user_id bigint NOT NULL,"
    " key text NOT NULL,"
    " fingerprint bytea NOT NULL,"
    " status integer NOT NULL,"
    " item_id bigint NOT NULL,"
    " item_content bytea NOT NULL,"
    " item_created_ms bigint NOT NULL,"
    " item_updated_ms bigint NOT NULL,"
    " item_version bigint NOT NULL,"
    " created_ms bigint NOT NULL,"
    " expires_ms bigint NOT NULL,"
    " PRIMARY KEY (user_id, key));"
    "CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_ms);";

const struct ld_pg_migration ld_pg_migrations[] = {
    {1, "users and items", v1_sql},
    {2, "idempotency keys", v2_sql},
};
const unsigned ld_pg_nmigrations = sizeof(ld_pg_migrations) / sizeof(ld_pg_migrations[0]);

#define I LD_PG_INT8
#define T LD_PG_TEXT
#define B LD_PG_BYTEA

/* clang-format off */
const struct ld_pg_stmt ld_pg_stmts[LD_PG_SQL_COUNT] = {
	[LD_PG_USER_GET] = {"user_get",
		"SELECT id, handle, display_name, password_hash, created_ms, updated_ms, version"
		" FROM users WHERE id = $1",
		1, {I}, {"42"}},
	[LD_PG_USER_GET_BY_HANDLE] = {"user_get_by_handle",
		"SELECT id, handle, display_name, password_hash, created_ms, updated_ms, version"
		" FROM users WHERE handle = $1",
		1, {T}, {"'alice'"}},
	[LD_PG_ITEM_GET] = {"item_get",
		"SELECT id, user_id, content, created_ms, updated_ms, version"
		" FROM items WHERE id = $1",
		1, {I}, {"4242"}},
	/* One statement tells the three answers apart: no row is a missing
	 * owner, one row of NULLs an empty page, else the page (limit + 1
	 * rows asked for: the extra one only says there is another page). */
	[LD_PG_ITEM_LIST] = {"item_list",
		"SELECT i.id, i.user_id, i.content, i.created_ms, i.updated_ms, i.version"
		" FROM users u LEFT JOIN LATERAL (SELECT id, user_id, content, created_ms,"
		" updated_ms, version FROM items WHERE user_id = u.id AND id < $2"
		" ORDER BY id DESC LIMIT $3) i ON true WHERE u.id = $1 ORDER BY i.id DESC",
		3, {I, I, I}, {"42", "9223372036854775807", "21"}},
	[LD_PG_USER_INSERT] = {"user_insert",
		"INSERT INTO users (id, handle, display_name, password_hash, created_ms,"
		" updated_ms, version) VALUES ($1, $2, $3, $4, $5, $5, 1)",
		5, {I, T, T, T, I}, {"43", "'bob'", "'Bob'", "'$argon2id$x'", "1700000000000"}},
	[LD_PG_USER_UPDATE] = {"user_update",
		"UPDATE users SET display_name = $2, updated_ms = $3, version = version + 1"
		" WHERE id = $1 RETURNING handle, password_hash, created_ms, version",
		3, {I, T, I}, {"42", "'Alice B.'", "1700000000000"}},
	/* A missing owner fails the foreign key: NOT_FOUND without a lookup. */
	[LD_PG_ITEM_INSERT] = {"item_insert",
		"INSERT INTO items (id, user_id, content, created_ms, updated_ms, version)"
		" VALUES ($1, $2, $3, $4, $4, 1)",
		4, {I, I, B, I}, {"4243", "42", "'hello'::bytea", "1700000000000"}},
	/* Update and delete answer in one statement why they changed nothing:
	 * (true, ...) changed; (false, ..., owner) the row as it is (not the
	 * owner, or a stale version); no row: missing. */
	[LD_PG_ITEM_UPDATE] = {"item_update",
		"WITH u AS (UPDATE items SET content = $4, updated_ms = $5,"
		" version = version + 1"
		" WHERE id = $1 AND user_id = $2 AND ($3 = 0 OR version = $3)"
		" RETURNING created_ms, version)"
		" SELECT true, created_ms, version, $2 FROM u"
		" UNION ALL SELECT false, created_ms, version, user_id FROM items"
		" WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)",
		5, {I, I, I, B, I},
		{"4242", "42", "1", "'hello again'::bytea", "1700000000000"}},
	[LD_PG_ITEM_DELETE] = {"item_delete",
		"WITH d AS (DELETE FROM items"
		" WHERE id = $1 AND user_id = $2 AND ($3 = 0 OR version = $3)"
		" RETURNING created_ms, version)"
		" SELECT true, created_ms, version, $2 FROM d"
		" UNION ALL SELECT false, created_ms, version, user_id FROM items"
		" WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM d)",
		3, {I, I, I}, {"4242", "42", "0"}},

	/* ---- idempotency keys ---- */
	/* An expired row is as good as none: the reaper may not have come by. */
	[LD_PG_IDEM_GET] = {"idem_get",
		"SELECT fingerprint, status::bigint, item_id, item_content, item_created_ms,"
		" item_updated_ms, item_version FROM idempotency_keys"
		" WHERE user_id = $1 AND key = $2 AND expires_ms > $3",
		3, {I, T, I}, {"42", "'k-1'", "1700000000000"}},
	[LD_PG_IDEM_CLEAR] = {"idem_clear",
		"DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND expires_ms <= $3",
		3, {I, T, I}, {"42", "'k-1'", "1700000000000"}},
	/* The data-modifying CTE runs whether or not the outer statement reads
	 * it; a key already kept fails the primary key and undoes the item. */
	[LD_PG_ITEM_INSERT_IDEM] = {"item_insert_idem",
		"WITH i AS (INSERT INTO items (id, user_id, content, created_ms, updated_ms,"
		" version) VALUES ($1, $2, $3, $4, $4, 1))"
		" INSERT INTO idempotency_keys (user_id, key, fingerprint, status, item_id,"
		" item_content, item_created_ms, item_updated_ms, item_version, created_ms,"
		" expires_ms) VALUES ($2, $5, $6, $7, $1, $3, $4, $4, 1, $4, $8)",
		8, {I, I, B, I, T, B, I, I},
		{"4243", "42", "'hello'::bytea", "1700000000000", "'k-1'", "'fp'::bytea", "201",
		 "1700086400000"}},
	/* As item_update, and the key's row only when the update happened. */
	[LD_PG_ITEM_UPDATE_IDEM] = {"item_update_idem",
		"WITH u AS (UPDATE items SET content = $4, updated_ms = $5,"
		" version = version + 1"
		" WHERE id = $1 AND user_id = $2 AND ($3 = 0 OR version = $3)"
		" RETURNING created_ms, version),"
		" k AS (INSERT INTO idempotency_keys (user_id, key, fingerprint, status, item_id,"
		" item_content, item_created_ms, item_updated_ms, item_version, created_ms,"
		" expires_ms) SELECT $2, $6, $7, $8, $1, $4, created_ms, $5, version, $5, $9"
		" FROM u)"
		" SELECT true, created_ms, version, $2 FROM u"
		" UNION ALL SELECT false, created_ms, version, user_id FROM items"
		" WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)",
		9, {I, I, I, B, I, T, B, I, I},
		{"4242", "42", "1", "'hello again'::bytea", "1700000000000", "'k-1'", "'fp'::bytea",
		 "200", "1700086400000"}},
	[LD_PG_ITEM_DELETE_IDEM] = {"item_delete_idem",
		"WITH d AS (DELETE FROM items"
		" WHERE id = $1 AND user_id = $2 AND ($3 = 0 OR version = $3)"
		" RETURNING created_ms, version),"
		" k AS (INSERT INTO idempotency_keys (user_id, key, fingerprint, status, item_id,"
		" item_content, item_created_ms, item_updated_ms, item_version, created_ms,"
		" expires_ms) SELECT $2, $5, $6, $7, $1, ''::bytea, 0, 0, 0, $4, $8 FROM d)"
		" SELECT true, created_ms, version, $2 FROM d"
		" UNION ALL SELECT false, created_ms, version, user_id FROM items"
		" WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM d)",
		8, {I, I, I, I, T, B, I, I},
		{"4242", "42", "0", "1700000000000", "'k-1'", "'fp'::bytea", "204",
		 "1700086400000"}},
	/* A batch of the oldest expired keys, from the expiry index; rows
	 * another node's reaper holds are skipped, not waited for. */
	[LD_PG_IDEM_REAP] = {"idem_reap",
		"DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY (SELECT ctid"
		" FROM idempotency_keys WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2"
		" FOR UPDATE SKIP LOCKED))",
		2, {I, I}, {"1700000000000", "256"}},
};
/* clang-format on */

/* ---- the [postgres] configuration section ------------------------------- */

struct ld_pg_config ld_pg_settings;
static unsigned char pg_source[5];

#define F(field)  offsetof(struct ld_pg_config, field)
#define FS(field) F(field), sizeof(((struct ld_pg_config *)0)->field)

/* clang-format off */
static const struct ld_opt pg_opts[] = {
    {"pg-primary", 0, "primary", "LADDER_PG_PRIMARY", LD_OPT_STR, FS(primary), 0, "", 0, 0,
     NULL, LD_OPT_SECRET, NULL, NULL, "CONNINFO",
     "--store postgres: the primary, as a libpq URI or key=value string (several hosts with "
     "target_session_attrs=read-write allowed); a secret (it may hold a password)"},
    {"pg-pool", 0, "pool", "LADDER_PG_POOL", LD_OPT_UINT, F(pool), 0, 0, "2", 1, 64, NULL, 0,
     NULL, NULL, "N", "pipelined connections per loop thread to the primary, and to each replica"},
    {"pg-connect-timeout", 0, "connect_timeout", "LADDER_PG_CONNECT_TIMEOUT", LD_OPT_DUR,
     F(connect_timeout_ms), 0, 0, "5s", 100, 3600000, NULL, 0, NULL, NULL, "DURATION",
     "longest wait for one connection attempt to the primary (or a replica)"},
    {"pg-replicas", 0, "replicas", "LADDER_PG_REPLICAS", LD_OPT_STR, FS(replicas), 0, "", 0, 0,
     NULL, LD_OPT_SECRET, NULL, NULL, "CONNINFO[,CONNINFO...]",
     "--store postgres: streaming replicas that answer reads (empty: the primary answers "
     "them); a secret"},
    {"max-replica-lag", 0, "max_replica_lag", "LADDER_MAX_REPLICA_LAG", LD_OPT_DUR,
     F(max_replica_lag_ms), 0, 0, "1s", 10, 3600000, NULL, 0, NULL, NULL, "DURATION",
     "a replica further behind the primary than this leaves the read rotation (reads "
     "without a Ladder-Session token may be this stale)"},
};
/* clang-format on */

_Static_assert(sizeof(pg_opts) / sizeof(pg_opts[0]) == sizeof(pg_source), "one source per option");

static const struct ld_opt_section pg_section = {"postgres", pg_opts,
						 sizeof(pg_opts) / sizeof(pg_opts[0]),
						 "used with --store postgres (docs/store.md)"};

int ld_pg_config_register(void)
{
	static int done, rc;

	if (!done) {
		done = 1;
		rc = ld_config_register(&pg_section, &ld_pg_settings, pg_source);
	}
	return rc;
}
