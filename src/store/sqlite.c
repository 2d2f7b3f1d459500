/*
 * sqlite.c - the embedded SQLite store: the statement table, open and close,
 * inline reads on per-loop read-only connections, and the loop side of the
 * write queue. The writer and checkpointer threads are in sqlite_write.c.
 * The contract is in store.h and sqlite.h; this file explains the why.
 */
#include "store/sqlite.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/file.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/migrations.h"
#include "store/sqlite_int.h"

/* Writer: 16 MiB of page cache keeps the b-tree interior pages of both
 * tables and the index hot. Readers: 8 MiB each plus mmap, so a point read is
 * a few memory lookups and no read(2). The WAL is truncated back to 64 MiB
 * after a checkpoint so a burst does not leave a huge file behind. */
#define WRITER_CACHE_KIB   16384
#define READER_CACHE_KIB   8192
#define READER_MMAP_BYTES  (256LL << 20)
#define JOURNAL_SIZE_LIMIT (64LL << 20)

/* clang-format off */
#define P_INT(v)  {false, (v), NULL}
#define P_TEXT(s) {true, 0, (s)}

const struct ld_sql_stmt ld_sqlite_stmts[LD_SQL_COUNT] = {
	[LD_SQL_USER_GET] = {"user_get",
		"SELECT id, handle, display_name, password_hash, created_ms, updated_ms, version"
		" FROM users WHERE id = ?1",
		LD_SQL_READER, 1, {P_INT(42)}},
	[LD_SQL_USER_GET_BY_HANDLE] = {"user_get_by_handle",
		"SELECT id, handle, display_name, password_hash, created_ms, updated_ms, version"
		" FROM users WHERE handle = ?1",
		LD_SQL_READER, 1, {P_TEXT("alice")}},
	[LD_SQL_USER_EXISTS] = {"user_exists",
		"SELECT 1 FROM users WHERE id = ?1",
		LD_SQL_READER, 1, {P_INT(42)}},
	[LD_SQL_ITEM_GET] = {"item_get",
		"SELECT id, user_id, content, created_ms, updated_ms, version"
		" FROM items WHERE id = ?1",
		LD_SQL_READER, 1, {P_INT(4242)}},
	[LD_SQL_ITEM_LIST] = {"item_list",
		"SELECT id, user_id, content, created_ms, updated_ms, version"
		" FROM items WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
		LD_SQL_READER, 3, {P_INT(42), P_INT(INT64_MAX), P_INT(21)}},
	[LD_SQL_READ_BEGIN] = {"read_begin", "BEGIN", LD_SQL_READER, 0, {{0}}},
	[LD_SQL_READ_END] = {"read_end", "COMMIT", LD_SQL_READER, 0, {{0}}},
	[LD_SQL_MAX_IDS] = {"max_ids",
		"SELECT coalesce((SELECT max(id) FROM users), 0),"
		" max(coalesce((SELECT max(id) FROM items), 0),"
		"  coalesce((SELECT max(id) FROM photos), 0))",
		LD_SQL_WRITER, 0, {{0}}},
	[LD_SQL_USER_INSERT] = {"user_insert",
		"INSERT INTO users (id, handle, display_name, password_hash, created_ms,"
		" updated_ms, version) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)",
		LD_SQL_WRITER, 5,
		{P_INT(43), P_TEXT("bob"), P_TEXT("Bob"), P_TEXT("$argon2id$x"),
		 P_INT(1700000000000)}},
	/* RETURNING gives back the columns the op does not carry in one step. */
	[LD_SQL_USER_UPDATE] = {"user_update",
		"UPDATE users SET display_name = ?2, updated_ms = ?3, version = version + 1"
		" WHERE id = ?1 RETURNING handle, password_hash, created_ms, version",
		LD_SQL_WRITER, 3, {P_INT(42), P_TEXT("Alice B."), P_INT(1700000000000)}},
	/* A missing owner fails the foreign key: NOT_FOUND without a lookup. */
	[LD_SQL_ITEM_INSERT] = {"item_insert",
		"INSERT INTO items (id, user_id, content, created_ms, updated_ms, version)"
		" VALUES (?1, ?2, ?3, ?4, ?4, 1)",
		LD_SQL_WRITER, 4,
		{P_INT(4243), P_INT(42), P_TEXT("hello"), P_INT(1700000000000)}},
	/* The fast path is one statement; only when it changes nothing does
	 * item_check find out why (missing, forbidden or precondition). */
	[LD_SQL_ITEM_UPDATE] = {"item_update",
		"UPDATE items SET content = ?4, updated_ms = ?5, version = version + 1"
		" WHERE id = ?1 AND user_id = ?2 AND (?3 = 0 OR version = ?3)"
		" RETURNING created_ms, version",
		LD_SQL_WRITER, 5,
		{P_INT(4242), P_INT(42), P_INT(1), P_TEXT("hello again"),
		 P_INT(1700000000000)}},
	[LD_SQL_ITEM_DELETE] = {"item_delete",
		"DELETE FROM items WHERE id = ?1 AND user_id = ?2 AND (?3 = 0 OR version = ?3)",
		LD_SQL_WRITER, 3, {P_INT(4242), P_INT(42), P_INT(0)}},
	[LD_SQL_ITEM_CHECK] = {"item_check",
		"SELECT user_id, version FROM items WHERE id = ?1",
		LD_SQL_WRITER, 1, {P_INT(4242)}},
	[LD_SQL_BEGIN] = {"begin", "BEGIN IMMEDIATE", LD_SQL_WRITER, 0, {{0}}},
	[LD_SQL_COMMIT] = {"commit", "COMMIT", LD_SQL_WRITER, 0, {{0}}},
	[LD_SQL_ROLLBACK] = {"rollback", "ROLLBACK", LD_SQL_WRITER, 0, {{0}}},

	/* ---- photos ---- */
	[LD_SQL_PHOTO_GET] = {"photo_get",
		"SELECT id, user_id, status, content_type, size, width, height, reason,"
		" created_ms, updated_ms, version FROM photos WHERE id = ?1",
		LD_SQL_READER, 1, {P_INT(4242)}},
	[LD_SQL_PHOTO_VERSIONS] = {"photo_versions",
		"SELECT name, width, height, size, etag FROM photo_versions WHERE photo_id = ?1",
		LD_SQL_READER, 1, {P_INT(4242)}},
	[LD_SQL_PHOTO_LIST] = {"photo_list",
		"SELECT id, user_id, status, content_type, size, width, height, reason,"
		" created_ms, updated_ms, version"
		" FROM photos WHERE user_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
		LD_SQL_READER, 3, {P_INT(42), P_INT(INT64_MAX), P_INT(21)}},
	/* The in-flight cap and the insert are one statement: two uploads
	 * started at once cannot both see room for one. Old uploads that were
	 * never completed stop counting once their URL has expired. */
	[LD_SQL_PHOTO_INSERT] = {"photo_insert",
		"INSERT INTO photos (id, user_id, status, content_type, size, width, height,"
		" reason, created_ms, updated_ms, version)"
		" SELECT ?1, ?2, 'uploading', '', 0, 0, 0, '', ?3, ?3, 1"
		" WHERE (SELECT count(*) FROM photos WHERE user_id = ?2 AND status = 'uploading'"
		"  AND created_ms > ?5) < ?4",
		LD_SQL_WRITER, 5,
		{P_INT(4243), P_INT(42), P_INT(1700000000000), P_INT(4), P_INT(1699999100000)}},
	/* The outbox trigger of migration 2 queues the thumbnail job in this
	 * very statement. */
	[LD_SQL_PHOTO_COMPLETE] = {"photo_complete",
		"UPDATE photos SET status = 'processing', content_type = ?3, size = ?4,"
		" width = ?5, height = ?6, updated_ms = ?7, version = version + 1"
		" WHERE id = ?1 AND user_id = ?2 AND status = 'uploading'"
		" RETURNING created_ms, version",
		LD_SQL_WRITER, 7,
		{P_INT(4242), P_INT(42), P_TEXT("image/jpeg"), P_INT(1000000), P_INT(3000),
		 P_INT(2000), P_INT(1700000000000)}},
	[LD_SQL_PHOTO_DELETE] = {"photo_delete",
		"DELETE FROM photos WHERE id = ?1 AND user_id = ?2",
		LD_SQL_WRITER, 2, {P_INT(4242), P_INT(42)}},
	[LD_SQL_PHOTO_CHECK] = {"photo_check",
		"SELECT user_id FROM photos WHERE id = ?1",
		LD_SQL_WRITER, 1, {P_INT(4242)}},

	/* ---- idempotency keys (sqlite_idem.c) ---- */
	/* An expired row is as good as none: the reaper may not have come by. */
	[LD_SQL_IDEM_GET] = {"idem_get",
		"SELECT fingerprint, status, item_id, item_content, item_created_ms,"
		" item_updated_ms, item_version FROM idempotency_keys"
		" WHERE user_id = ?1 AND key = ?2 AND expires_ms > ?3",
		LD_SQL_READER, 3, {P_INT(42), P_TEXT("k-1"), P_INT(1700000000000)}},
	/* A row already there is replaced only once it has expired; otherwise
	 * nothing changes and the writer undoes the op (a key kept by another
	 * process's request). */
	[LD_SQL_IDEM_PUT] = {"idem_put",
		"INSERT INTO idempotency_keys (user_id, key, fingerprint, status, item_id,"
		" item_content, item_created_ms, item_updated_ms, item_version, created_ms,"
		" expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
		" ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
		" status = excluded.status, item_id = excluded.item_id,"
		" item_content = excluded.item_content,"
		" item_created_ms = excluded.item_created_ms,"
		" item_updated_ms = excluded.item_updated_ms,"
		" item_version = excluded.item_version, created_ms = excluded.created_ms,"
		" expires_ms = excluded.expires_ms"
		" WHERE idempotency_keys.expires_ms <= excluded.created_ms",
		LD_SQL_WRITER, 11,
		{P_INT(42), P_TEXT("k-1"), P_TEXT("fp"), P_INT(201), P_INT(4243), P_TEXT("hello"),
		 P_INT(1700000000000), P_INT(1700000000000), P_INT(1), P_INT(1700000000000),
		 P_INT(1700086400000)}},
	/* The oldest expired keys, a batch at a time, from the expiry index. */
	[LD_SQL_IDEM_REAP] = {"idem_reap",
		"DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys"
		" WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
		LD_SQL_WRITER, 2, {P_INT(1700000000000), P_INT(256)}},
	[LD_SQL_SAVEPOINT] = {"savepoint", "SAVEPOINT idem", LD_SQL_WRITER, 0, {{0}}},
	[LD_SQL_RELEASE] = {"release", "RELEASE idem", LD_SQL_WRITER, 0, {{0}}},
	[LD_SQL_ROLLBACK_TO] = {"rollback_to", "ROLLBACK TO idem", LD_SQL_WRITER, 0, {{0}}},
};
/* clang-format on */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* is_io_error: errors after which the file cannot be trusted to hold what
 * SQLite reported as written. */
static bool is_io_error(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
		return true;
	default:
		return false;
	}
}

static const char *error_kind(int rc)
{
	if (is_io_error(rc))
		return "io";
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return "busy";
	return "sqlite";
}

void ld__sqlite_log_error(struct ld_store *s, sqlite3 *db, const char *what, int rc)
{
	/* Errors the driver raises itself (a bad limit, oversized content)
	 * leave the connection's own error empty. */
	const char *detail = db && sqlite3_errcode(db) != SQLITE_OK ? sqlite3_errmsg(db) : "";
	const char *kv[] = {"op", what, "error", sqlite3_errstr(rc), "detail", detail, NULL};

	ld_log_event("error", "store: statement failed", kv);
	ld_metrics_store_error(error_kind(rc));
	if (is_io_error(rc) && atomic_exchange(&s->healthy, false))
		ld_log_event("error", "store: unhealthy after an i/o error, restart needed", NULL);
}

void ld__sqlite_timed_out(struct ld_store *s, unsigned n)
{
	atomic_fetch_add_explicit(&s->timeouts, n, memory_order_relaxed);
	while (n-- > 0)
		ld_metrics_store_error("timeout");
}

static int prepare_role(sqlite3 *db, sqlite3_stmt **stmt, enum ld_sql_role role, char *err,
			size_t errlen)
{
	int rc = 0;
	unsigned i;

	for (i = 0; i < LD_SQL_COUNT; i++) {
		if (ld_sqlite_stmts[i].role != role)
			continue;
		/* PERSISTENT: these live as long as the connection. */
		if (sqlite3_prepare_v3(db, ld_sqlite_stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
				       &stmt[i], NULL) != SQLITE_OK) {
			set_err(err, errlen, "prepare %s: %s", ld_sqlite_stmts[i].name,
				sqlite3_errmsg(db));
			rc = -EIO;
			goto out;
		}
	}
out:
	return rc;
}

static void finalize_all(sqlite3_stmt **stmt)
{
	unsigned i;

	for (i = 0; i < LD_SQL_COUNT; i++) {
		sqlite3_finalize(stmt[i]);
		stmt[i] = NULL;
	}
}

int ld__sqlite_pragma(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO, step;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && out) {
		const unsigned char *v = sqlite3_column_text(st, 0);

		snprintf(out, outlen, "%s", v ? (const char *)v : "");
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Process-wide SQLite settings, applied before the library initialises.
 * Memory statistics take a global mutex on every allocation, which the
 * reader threads and the writer would fight over; we do not use them. */
static uv_once_t global_once = UV_ONCE_INIT;

static void global_init(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

/* open_writer opens (creating) the database, sets the durability pragmas
 * and brings the schema up to date. */
static int open_writer(struct ld_store *s, char *err, size_t errlen)
{
	char mode[16] = "";
	char sql[64];
	int rc = -EIO;

	if (sqlite3_open_v2(s->path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		set_err(err, errlen, "open %s: %s", s->path,
			s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, (int)s->busy_timeout_ms);
	if (ld__sqlite_pragma(s->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode)) != 0 ||
	    strcmp(mode, "wal") != 0) {
		set_err(err, errlen, "%s: cannot switch to WAL mode (%s)", s->path,
			mode[0] ? mode : sqlite3_errmsg(s->db));
		goto out;
	}
	/* WAL + FULL syncs the log on every commit: a COMMIT that returned is on
	 * disk. NORMAL syncs only at checkpoints (tests and benchmarks). */
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s", s->sync_full ? "FULL" : "NORMAL");
	if (ld__sqlite_pragma(s->db, sql, NULL, 0) != 0 ||
	    ld__sqlite_pragma(s->db, "PRAGMA foreign_keys = ON", NULL, 0) != 0 ||
	    ld__sqlite_pragma(s->db, "PRAGMA temp_store = MEMORY", NULL, 0) != 0) {
		set_err(err, errlen, "%s: pragma: %s", s->path, sqlite3_errmsg(s->db));
		goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %lld", JOURNAL_SIZE_LIMIT);
	if (ld__sqlite_pragma(s->db, sql, NULL, 0) != 0)
		goto pragma_fail;
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", WRITER_CACHE_KIB);
	if (ld__sqlite_pragma(s->db, sql, NULL, 0) != 0)
		goto pragma_fail;
	rc = ld_sqlite_migrate(s->db, ld_sqlite_migrations, ld_sqlite_nmigrations, err, errlen);
	goto out;
pragma_fail:
	set_err(err, errlen, "%s: pragma: %s", s->path, sqlite3_errmsg(s->db));
out:
	return rc;
}

/* init_ids seeds the writer's id generator with the largest stored id, so
 * ids stay unique and increasing across restarts even if the clock went
 * back. Shard 0 until sharding is configured. */
static int init_ids(struct ld_store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_MAX_IDS];
	int64_t a, b;
	int rc = -EIO;

	if (sqlite3_step(st) != SQLITE_ROW) {
		set_err(err, errlen, "read max ids: %s", sqlite3_errmsg(s->db));
		goto out;
	}
	a = sqlite3_column_int64(st, 0);
	b = sqlite3_column_int64(st, 1);
	ld_idgen_init(&s->idgen, 0, a > b ? a : b);
	rc = 0;
out:
	sqlite3_reset(st);
	return rc;
}

static void sqlite_close(struct ld_store *s);

static int sqlite_open(const struct ld_store_config *cfg, struct ld_store **out, char *err,
		       size_t errlen)
{
	struct ld_store *s;
	int rc = -ENOMEM, n;

	*out = NULL;
	uv_once(&global_once, global_init);
	s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	s->write_queue_max = cfg->write_queue_max;
	s->write_batch_max = cfg->write_batch_max;
	s->busy_timeout_ms = cfg->busy_timeout_ms;
	s->sync_full = cfg->synchronous_full;
	s->test_commit_delay_us = cfg->test_commit_delay_us;
	s->idem_retention_ms = cfg->idem_retention_ms;
	s->op_timeout_ns = (uint64_t)cfg->op_timeout_ms * 1000000;
	atomic_init(&s->healthy, true);
	if (!cfg->data_dir || s->write_queue_max == 0 || s->write_batch_max == 0 ||
	    s->busy_timeout_ms > INT_MAX || cfg->op_timeout_ms == 0) {
		set_err(err, errlen,
			"store: data_dir, write_queue_max, write_batch_max and op_timeout_ms "
			"must be set");
		rc = -EINVAL;
		goto fail;
	}
	rc = ld_make_dirs(cfg->data_dir, err, errlen);
	if (rc != 0)
		goto fail;
	n = snprintf(s->path, sizeof(s->path), "%s/ladder.db", cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		set_err(err, errlen, "data directory path too long");
		rc = -ENAMETOOLONG;
		goto fail;
	}
	rc = open_writer(s, err, errlen);
	if (rc != 0)
		goto fail;
	rc = prepare_role(s->db, s->stmt, LD_SQL_WRITER, err, errlen);
	if (rc != 0)
		goto fail;
	rc = init_ids(s, err, errlen);
	if (rc != 0)
		goto fail;
	if (uv_mutex_init(&s->mu) != 0 || uv_cond_init(&s->cv) != 0) {
		set_err(err, errlen, "cannot create writer lock");
		rc = -ENOMEM;
		goto fail;
	}
	s->sync_ready = true;
	rc = ld__sqlite_ckpt_start(s, err, errlen);
	if (rc != 0)
		goto fail;
	rc = uv_thread_create(&s->thread, ld__sqlite_writer_main, s);
	if (rc != 0) {
		set_err(err, errlen, "cannot start writer thread: %s", uv_strerror(rc));
		goto fail;
	}
	s->thread_started = true;
	*out = s;
	goto out;
fail:
	sqlite_close(s);
out:
	return rc;
}

/* ---- reads, inline on the loop thread ---------------------------------- */

void ld__sqlite_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *p = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (!p)
		n = 0;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p ? (const char *)p : "", n);
	dst[n] = '\0';
}

static void row_user(sqlite3_stmt *st, struct ld_user *u)
{
	u->id = sqlite3_column_int64(st, 0);
	ld__sqlite_copy_text(u->handle, sizeof(u->handle), st, 1);
	ld__sqlite_copy_text(u->display_name, sizeof(u->display_name), st, 2);
	ld__sqlite_copy_text(u->password_hash, sizeof(u->password_hash), st, 3);
	u->created_ms = sqlite3_column_int64(st, 4);
	u->updated_ms = sqlite3_column_int64(st, 5);
	u->version = sqlite3_column_int64(st, 6);
}

static void row_item(sqlite3_stmt *st, struct ld_item *it)
{
	it->id = sqlite3_column_int64(st, 0);
	it->user_id = sqlite3_column_int64(st, 1);
	ld__sqlite_copy_text(it->content, sizeof(it->content), st, 2);
	/* Content may hold NUL bytes: the column length, not strlen, is its
	 * length (copy_text copied that many). */
	it->content_len = (size_t)sqlite3_column_bytes(st, 2);
	if (it->content_len > LD_CONTENT_MAX)
		it->content_len = LD_CONTENT_MAX;
	it->created_ms = sqlite3_column_int64(st, 3);
	it->updated_ms = sqlite3_column_int64(st, 4);
	it->version = sqlite3_column_int64(st, 5);
}

/* read_page fills one keyset page of statement `which` (owner, before id,
 * limit): limit+1 rows are asked for, and the extra row only says that
 * another page exists. row() stores row i; rows says the caller gave room. */
static int read_page(struct ld_store_conn *c, struct ld_store_op *op, int which, bool rows,
		     void (*row)(sqlite3_stmt *st, struct ld_store_op *op, unsigned i), int *rcp)
{
	sqlite3_stmt *st = c->stmt[which];
	int64_t before = op->before_id > 0 ? op->before_id : INT64_MAX;
	int status = LD_STORE_ERROR, rc;

	op->nitems = 0;
	op->has_more = false;
	if (!rows || op->limit == 0 || op->limit > LD_LIST_MAX) {
		*rcp = SQLITE_MISUSE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, op->id);
	sqlite3_bind_int64(st, 2, before);
	sqlite3_bind_int64(st, 3, (int64_t)op->limit + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (op->nitems == op->limit) {
			op->has_more = true;
			break;
		}
		row(st, op, op->nitems++);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*rcp = rc;
		goto out;
	}
	status = LD_STORE_OK;
	if (op->nitems == 0) {
		/* An empty page: tell "nothing yet" from "no such user". */
		st = c->stmt[LD_SQL_USER_EXISTS];
		sqlite3_bind_int64(st, 1, op->id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			status = LD_STORE_NOT_FOUND;
		} else if (rc != SQLITE_ROW) {
			*rcp = rc;
			status = LD_STORE_ERROR;
		}
		sqlite3_reset(st);
	}
out:
	/* Reset at once: a statement left mid-way holds a read snapshot, which
	 * would stop checkpoints from recycling the WAL. */
	sqlite3_reset(c->stmt[which]);
	return status;
}

static void item_at(sqlite3_stmt *st, struct ld_store_op *op, unsigned i)
{
	row_item(st, &op->items[i]);
}

static int read_list(struct ld_store_conn *c, struct ld_store_op *op, int *rcp)
{
	return read_page(c, op, LD_SQL_ITEM_LIST, op->items != NULL, item_at, rcp);
}

static void row_photo(sqlite3_stmt *st, struct ld_photo *p)
{
	p->id = sqlite3_column_int64(st, 0);
	p->user_id = sqlite3_column_int64(st, 1);
	ld__sqlite_copy_text(p->status, sizeof(p->status), st, 2);
	ld__sqlite_copy_text(p->content_type, sizeof(p->content_type), st, 3);
	p->size = sqlite3_column_int64(st, 4);
	p->width = sqlite3_column_int(st, 5);
	p->height = sqlite3_column_int(st, 6);
	ld__sqlite_copy_text(p->reason, sizeof(p->reason), st, 7);
	p->created_ms = sqlite3_column_int64(st, 8);
	p->updated_ms = sqlite3_column_int64(st, 9);
	p->version = sqlite3_column_int64(st, 10);
	p->nversions = 0;
}

/* read_photo reads a photo and its versions (two searches, one snapshot). */
static int read_photo(struct ld_store_conn *c, struct ld_store_op *op, int *rcp)
{
	sqlite3_stmt *st = c->stmt[LD_SQL_PHOTO_GET];
	struct ld_photo *p = &op->photo;
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, op->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		status = LD_STORE_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		*rcp = rc;
	else
		row_photo(st, p);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return status;
	st = c->stmt[LD_SQL_PHOTO_VERSIONS];
	sqlite3_bind_int64(st, 1, op->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && p->nversions < LD_PHOTO_VERSIONS_MAX) {
		struct ld_photo_version *v = &p->versions[p->nversions++];

		ld__sqlite_copy_text(v->name, sizeof(v->name), st, 0);
		v->width = sqlite3_column_int(st, 1);
		v->height = sqlite3_column_int(st, 2);
		v->size = sqlite3_column_int64(st, 3);
		ld__sqlite_copy_text(v->etag, sizeof(v->etag), st, 4);
	}
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		status = LD_STORE_OK;
	else
		*rcp = rc;
	sqlite3_reset(st);
	return status;
}

static void photo_at(sqlite3_stmt *st, struct ld_store_op *op, unsigned i)
{
	row_photo(st, &op->photos[i]);
}

/* read_photo_list is read_page for a user's photos. */
static int read_photo_list(struct ld_store_conn *c, struct ld_store_op *op, int *rcp)
{
	return read_page(c, op, LD_SQL_PHOTO_LIST, op->photos != NULL, photo_at, rcp);
}

/* read_one runs a point read that returns at most one row. */
static int read_one(struct ld_store_conn *c, struct ld_store_op *op, int *rcp)
{
	sqlite3_stmt *st;
	int status = LD_STORE_ERROR, rc;

	switch (op->kind) {
	case LD_OP_USER_GET:
		st = c->stmt[LD_SQL_USER_GET];
		sqlite3_bind_int64(st, 1, op->id);
		break;
	case LD_OP_USER_GET_BY_HANDLE:
		st = c->stmt[LD_SQL_USER_GET_BY_HANDLE];
		sqlite3_bind_text(st, 1, op->user.handle,
				  ld__sqlite_text_len(op->user.handle, LD_HANDLE_MAX),
				  SQLITE_STATIC);
		break;
	default: /* LD_OP_ITEM_GET */
		st = c->stmt[LD_SQL_ITEM_GET];
		sqlite3_bind_int64(st, 1, op->id);
		break;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (op->kind == LD_OP_ITEM_GET)
			row_item(st, &op->item);
		else
			row_user(st, &op->user);
		status = LD_STORE_OK;
	} else if (rc == SQLITE_DONE) {
		status = LD_STORE_NOT_FOUND;
	} else {
		*rcp = rc;
	}
	sqlite3_reset(st);
	return status;
}

/*
 * Read snapshots. Every autocommit read would take and drop the WAL read lock
 * (two fcntl calls, a third of a point read's cost), so the reads of one loop
 * iteration share one read transaction instead. It ends just before the loop
 * blocks (prepare phase), and at once when the writer has committed since it
 * began: the commit counter goes up after a COMMIT returns and before its ops
 * are acknowledged, so a read that follows an acknowledgement, on any loop,
 * always sees that write.
 */
static void end_read(struct ld_store_conn *c)
{
	sqlite3_stmt *st = c->stmt[LD_SQL_READ_END];

	if (!c->in_read)
		return;
	c->in_read = false;
	uv_prepare_stop(&c->endread);
	if (!sqlite3_get_autocommit(c->db)) {
		sqlite3_step(st);
		sqlite3_reset(st);
		/* A read-only COMMIT should not fail; if it does, never leave a
		 * stale snapshot open behind the next reads. */
		if (!sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

static void on_endread(uv_prepare_t *h)
{
	end_read(h->data);
}

static void begin_read(struct ld_store_conn *c)
{
	uint64_t seq = atomic_load_explicit(&c->s->commits, memory_order_acquire);
	sqlite3_stmt *st = c->stmt[LD_SQL_READ_BEGIN];
	int rc;

	if (c->in_read && c->read_seq == seq)
		return;
	end_read(c);
	/* BEGIN is deferred: the snapshot is taken by the first SELECT, after
	 * seq was read, so it holds at least every commit counted in seq. */
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		c->in_read = true;
		c->read_seq = seq;
		uv_prepare_start(&c->endread, on_endread);
	}
}

static void do_read(struct ld_store_conn *c, struct ld_store_op *op)
{
	int rc = SQLITE_OK;

	begin_read(c);
	if (op->kind == LD_OP_ITEM_LIST)
		op->status = read_list(c, op, &rc);
	else if (op->kind == LD_OP_PHOTO_GET)
		op->status = read_photo(c, op, &rc);
	else if (op->kind == LD_OP_PHOTO_LIST)
		op->status = read_photo_list(c, op, &rc);
	else if (op->kind == LD_OP_IDEM_GET)
		op->status = ld__sqlite_idem_get(c, op, &rc);
	else
		op->status = read_one(c, op, &rc);
	if (op->status == LD_STORE_ERROR) {
		end_read(c);
		atomic_fetch_add_explicit(&c->s->errors, 1, memory_order_relaxed);
		ld__sqlite_log_error(c->s, c->db, "read", rc);
	}
}

/* ---- writes: the loop side of the queue ----------------------------------- */

static void on_expire(uv_timer_t *h);
static void close_handles(struct ld_store_conn *c);

/* arm_expire makes sure the conn's timer fires by due. One timer per conn:
 * it only moves when an op is due before the one it waits for. */
static void arm_expire(struct ld_store_conn *c, uint64_t due)
{
	uint64_t now;

	if (c->expire_at_ns && c->expire_at_ns <= due)
		return;
	now = uv_hrtime();
	c->expire_at_ns = due;
	/* Rounded up, plus the loop's clock lags real time a little: a timer
	 * that fires early finds nothing due and re-arms. */
	uv_timer_start(&c->expire, on_expire, due > now ? (due - now) / 1000000 + 1 : 0, 0);
}

/* take_expired moves the ops of c in list (head, tail) whose deadline has
 * passed to *late_tail, and lowers *next to the earliest deadline of c's ops
 * that stay. Returns how many it moved. */
static unsigned take_expired(struct ld_store_op **head, struct ld_store_op **tail,
			     struct ld_store_conn *c, uint64_t now, struct ld_store_op ***late_tail,
			     uint64_t *next)
{
	struct ld_store_op **pp = head, *op, *prev = NULL;
	unsigned n = 0;

	while ((op = *pp)) {
		if (op->conn != c) {
			prev = op;
			pp = &op->next;
			continue;
		}
		if (op->due_ns <= now) {
			*pp = op->next;
			if (*tail == op)
				*tail = prev;
			op->next = NULL;
			**late_tail = op;
			*late_tail = &op->next;
			n++;
			continue;
		}
		if (*next == 0 || op->due_ns < *next)
			*next = op->due_ns;
		prev = op;
		pp = &op->next;
	}
	return n;
}

/* on_expire completes with TIMEOUT the writes of this conn that are still
 * staged or queued at their deadline: the writer has not taken them, so they
 * are never committed. Those the writer has taken end by its own deadline
 * check (run_batch). The queue is walked under the writer's lock, only when
 * the timer fires, which with a writer that keeps up is once per timeout. */
static void on_expire(uv_timer_t *h)
{
	struct ld_store_conn *c = h->data;
	struct ld_store *s = c->s;
	struct ld_store_op *late = NULL, **late_tail = &late, *op, *next_op;
	uint64_t now = uv_hrtime(), next = 0;
	unsigned staged, queued;

	c->expire_at_ns = 0;
	staged = take_expired(&c->stage_head, &c->stage_tail, c, now, &late_tail, &next);
	c->staged -= staged;
	if (!c->stage_head)
		uv_prepare_stop(&c->flush);
	uv_mutex_lock(&s->mu);
	queued = take_expired(&s->head, &s->tail, c, now, &late_tail, &next);
	s->queued -= queued;
	uv_mutex_unlock(&s->mu);
	atomic_fetch_sub_explicit(&s->depth, staged + queued, memory_order_relaxed);
	if (staged + queued)
		ld__sqlite_timed_out(s, staged + queued);
	if (next)
		arm_expire(c, next);
	for (op = late; op; op = next_op) {
		next_op = op->next; /* done() may resubmit the op */
		op->next = NULL;
		op->status = LD_STORE_TIMEOUT;
		c->inflight--;
		op->done(op);
	}
	if (c->closing && c->inflight == 0)
		close_handles(c);
}

static void flush(struct ld_store_conn *c)
{
	struct ld_store *s = c->s;
	bool wake;

	if (!c->stage_head)
		return;
	uv_mutex_lock(&s->mu);
	if (s->tail)
		s->tail->next = c->stage_head;
	else
		s->head = c->stage_head;
	s->tail = c->stage_tail;
	s->queued += c->staged;
	wake = s->writer_waiting;
	uv_mutex_unlock(&s->mu);
	if (wake)
		uv_cond_signal(&s->cv);
	c->stage_head = c->stage_tail = NULL;
	c->staged = 0;
	uv_prepare_stop(&c->flush);
}

static void on_flush(uv_prepare_t *h)
{
	flush(h->data);
}

static void enqueue(struct ld_store_conn *c, struct ld_store_op *op)
{
	struct ld_store *s = c->s;
	int status = LD_STORE_UNAVAILABLE;

	if (atomic_load_explicit(&s->closing, memory_order_relaxed) ||
	    !atomic_load_explicit(&s->healthy, memory_order_relaxed))
		goto refuse;
	if (atomic_fetch_add_explicit(&s->depth, 1, memory_order_relaxed) >= s->write_queue_max) {
		atomic_fetch_sub_explicit(&s->depth, 1, memory_order_relaxed);
		status = LD_STORE_BUSY;
		goto refuse;
	}
	if (c->stage_tail)
		c->stage_tail->next = op;
	else
		c->stage_head = op;
	c->stage_tail = op;
	if (c->staged++ == 0)
		uv_prepare_start(&c->flush, on_flush);
	c->inflight++;
	arm_expire(c, op->due_ns);
	return;
refuse:
	/* Complete at once, before submit returns. A shed write is counted
	 * where it becomes a 503 (api.c), once, whatever the driver. */
	if (status != LD_STORE_BUSY)
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
	op->status = status;
	op->done(op);
}

static void sqlite_submit(struct ld_store_conn *c, struct ld_store_op *op)
{
	bool read = op->kind == LD_OP_USER_GET || op->kind == LD_OP_USER_GET_BY_HANDLE ||
		    op->kind == LD_OP_ITEM_GET || op->kind == LD_OP_ITEM_LIST ||
		    op->kind == LD_OP_PHOTO_GET || op->kind == LD_OP_PHOTO_LIST ||
		    op->kind == LD_OP_IDEM_GET;

	op->conn = c;
	op->next = NULL;
	op->outcome_unknown = false;
	/* Reads take microseconds inline: only a deadline the caller set can
	 * have passed already, so only then is the clock read. */
	if (op->deadline_ns)
		op->due_ns = op->deadline_ns;
	else
		op->due_ns = read ? 0 : uv_hrtime() + c->s->op_timeout_ns;
	if (op->deadline_ns && op->deadline_ns <= uv_hrtime()) {
		ld__sqlite_timed_out(c->s, 1);
		op->status = LD_STORE_TIMEOUT;
		op->done(op);
		return;
	}
	if (c->closing) {
		atomic_fetch_add_explicit(&c->s->errors, 1, memory_order_relaxed);
		op->status = LD_STORE_UNAVAILABLE;
		op->done(op);
		return;
	}
	switch (op->kind) {
	case LD_OP_USER_GET:
	case LD_OP_USER_GET_BY_HANDLE:
	case LD_OP_ITEM_GET:
	case LD_OP_ITEM_LIST:
	case LD_OP_PHOTO_GET:
	case LD_OP_PHOTO_LIST:
	case LD_OP_IDEM_GET:
		do_read(c, op);
		op->done(op);
		break;
	case LD_OP_USER_CREATE:
	case LD_OP_USER_UPDATE:
	case LD_OP_ITEM_CREATE:
	case LD_OP_ITEM_UPDATE:
	case LD_OP_ITEM_DELETE:
	case LD_OP_PHOTO_CREATE:
	case LD_OP_PHOTO_COMPLETE:
	case LD_OP_PHOTO_DELETE:
	case LD_OP_IDEM_REAP:
		enqueue(c, op);
		break;
	default:
		atomic_fetch_add_explicit(&c->s->errors, 1, memory_order_relaxed);
		op->status = LD_STORE_ERROR;
		op->done(op);
		break;
	}
}

/* ---- connections --------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	struct ld_store_conn *c = h->data;

	if (--c->handles > 0)
		return;
	uv_mutex_destroy(&c->mu);
	free(c);
}

/* close_handles ends the conn's life: its memory goes with the last handle,
 * in the close callback. */
static void close_handles(struct ld_store_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	uv_close((uv_handle_t *)&c->async, on_conn_closed);
	uv_close((uv_handle_t *)&c->flush, on_conn_closed);
	uv_close((uv_handle_t *)&c->endread, on_conn_closed);
	uv_close((uv_handle_t *)&c->expire, on_conn_closed);
}

static void on_writes_done(uv_async_t *h)
{
	struct ld_store_conn *c = h->data;
	struct ld_store_op *op, *next;

	uv_mutex_lock(&c->mu);
	op = c->done_head;
	c->done_head = c->done_tail = NULL;
	uv_mutex_unlock(&c->mu);
	for (; op; op = next) {
		next = op->next; /* done() may reuse the op */
		op->next = NULL;
		c->inflight--;
		op->done(op);
	}
	if (c->closing && c->inflight == 0)
		close_handles(c);
}

static int sqlite_conn_open(struct ld_store *s, uv_loop_t *loop, struct ld_store_conn **out)
{
	struct ld_store_conn *c;
	char sql[64];
	int rc = -ENOMEM;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->s = s;
	rc = -EIO;
	if (sqlite3_open_v2(s->path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, (int)s->busy_timeout_ms);
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d", READER_CACHE_KIB);
	if (ld__sqlite_pragma(c->db, sql, NULL, 0) != 0)
		goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %lld", READER_MMAP_BYTES);
	if (ld__sqlite_pragma(c->db, sql, NULL, 0) != 0)
		goto fail;
	if (prepare_role(c->db, c->stmt, LD_SQL_READER, NULL, 0) != 0)
		goto fail;
	if (uv_mutex_init(&c->mu) != 0)
		goto fail;
	rc = uv_async_init(loop, &c->async, on_writes_done);
	if (rc != 0) {
		uv_mutex_destroy(&c->mu);
		goto fail;
	}
	c->async.data = c;
	uv_prepare_init(loop, &c->flush); /* cannot fail */
	c->flush.data = c;
	uv_prepare_init(loop, &c->endread);
	c->endread.data = c;
	uv_timer_init(loop, &c->expire);
	c->expire.data = c;
	c->handles = 4;
	atomic_fetch_add(&s->nconns, 1);
	*out = c;
	rc = 0;
	goto out;
fail:
	if (c->db)
		ld_log_event("error", "store: cannot open read connection",
			     (const char *const[]){"detail", sqlite3_errmsg(c->db), NULL});
	finalize_all(c->stmt);
	sqlite3_close(c->db);
	free(c);
out:
	return rc;
}

/* sqlite_ping answers from what the store knows, without touching the
 * database: unhealthy after an I/O error, or when the writer has waited for
 * the database for longer than an op may take without committing since
 * (another process holds the lock, the disk stalls). */
static int sqlite_ping(struct ld_store_conn *c)
{
	uint64_t since = atomic_load_explicit(&c->s->stalled_since_ns, memory_order_relaxed);

	if (c->closing || !atomic_load(&c->s->healthy))
		return -EIO;
	if (since && uv_hrtime() - since > c->s->op_timeout_ns)
		return -EIO;
	return 0;
}

static void sqlite_conn_close(struct ld_store_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	flush(c);
	end_read(c);
	/* The read connection goes now (nothing reads after close); the async
	 * handle stays until every write in flight has completed, so their
	 * done() still runs and the writer never signals freed memory. */
	finalize_all(c->stmt);
	sqlite3_close(c->db);
	c->db = NULL;
	atomic_fetch_sub(&c->s->nconns, 1);
	if (c->inflight == 0)
		close_handles(c);
}

static void sqlite_stats(struct ld_store *s, struct ld_store_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->commits = atomic_load(&s->commits);
	out->committed_ops = atomic_load(&s->committed_ops);
	out->errors = atomic_load(&s->errors);
	out->timeouts = atomic_load(&s->timeouts);
	out->healthy = atomic_load(&s->healthy);
	out->queue_depth = atomic_load(&s->depth);
}

/* sqlite_close also serves open()'s failure path, so every field may still
 * be unset. */
static void sqlite_close(struct ld_store *s)
{
	int n;

	if (!s)
		return;
	if (s->thread_started) {
		uv_mutex_lock(&s->mu);
		atomic_store(&s->closing, true);
		uv_mutex_unlock(&s->mu);
		uv_cond_signal(&s->cv);
		/* The writer commits and completes everything still queued,
		 * then exits. */
		uv_thread_join(&s->thread);
	}
	/* After the writer: its last commits may still wake the checkpointer. */
	ld__sqlite_ckpt_stop(s);
	n = atomic_load(&s->nconns);
	if (n != 0)
		ld_log_event("error", "store: closed while read connections are open", NULL);
	finalize_all(s->stmt);
	/* The last connection to close checkpoints the WAL into the database
	 * file and removes it. */
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		ld_log_event("error", "store: close failed",
			     (const char *const[]){"detail", sqlite3_errmsg(s->db), NULL});
	if (s->sync_ready) {
		uv_cond_destroy(&s->cv);
		uv_mutex_destroy(&s->mu);
	}
	free(s);
}

const struct ld_store_vt ld_sqlite_vt = {
    .name = "sqlite",
    .open = sqlite_open,
    .conn_open = sqlite_conn_open,
    .submit = sqlite_submit,
    .ping = sqlite_ping,
    .conn_close = sqlite_conn_close,
    .stats = sqlite_stats,
    .close = sqlite_close,
};
