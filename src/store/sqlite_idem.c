/*
 * sqlite_idem.c - idempotency keys in the SQLite store: the lookup (loop
 * thread, read connection), the keyed write and the reaper (writer thread).
 * The contract is in store.h (struct ld_idem) and sqlite.h.
 */
#include <time.h>

#include "store/sqlite_int.h"

static int64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ld__sqlite_idem_get(struct ld_store_conn *c, struct ld_store_op *op, int *rcp)
{
	sqlite3_stmt *st = c->stmt[LD_SQL_IDEM_GET];
	struct ld_item *it = &op->item;
	int status = LD_STORE_ERROR, rc, n;

	if (!op->idem || op->idem->key_len == 0 || op->idem->key_len > LD_IDEM_KEY_MAX) {
		*rcp = SQLITE_MISUSE;
		return LD_STORE_ERROR;
	}
	sqlite3_bind_int64(st, 1, op->actor_id);
	sqlite3_bind_text(st, 2, op->idem->key, (int)op->idem->key_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_unix_ms());
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_bytes(st, 0);
		memset(op->idem->fp, 0, sizeof(op->idem->fp));
		if (n == LD_IDEM_FP_LEN)
			memcpy(op->idem->fp, sqlite3_column_blob(st, 0), LD_IDEM_FP_LEN);
		op->idem->status = sqlite3_column_int(st, 1);
		it->id = sqlite3_column_int64(st, 2);
		it->user_id = op->actor_id;
		n = sqlite3_column_bytes(st, 3);
		if (n > LD_CONTENT_MAX)
			n = LD_CONTENT_MAX;
		memcpy(it->content, n ? (const char *)sqlite3_column_blob(st, 3) : "", (size_t)n);
		it->content[n] = '\0';
		it->content_len = (size_t)n;
		it->created_ms = sqlite3_column_int64(st, 4);
		it->updated_ms = sqlite3_column_int64(st, 5);
		it->version = sqlite3_column_int64(st, 6);
		status = LD_STORE_OK;
	} else if (rc == SQLITE_DONE) {
		status = LD_STORE_NOT_FOUND;
	} else {
		*rcp = rc;
	}
	sqlite3_reset(st);
	return status;
}

static int step_done(struct ld_store *s, enum ld_sql_id id)
{
	int rc = sqlite3_step(s->stmt[id]);

	sqlite3_reset(s->stmt[id]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* put_key writes the key's row for op, which has just succeeded. Returns
 * SQLITE_OK with *kept true, SQLITE_OK with *kept false when an unexpired
 * row is already there, or the error. */
static int put_key(struct ld_store *s, const struct ld_store_op *op, int64_t now, bool *kept)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_IDEM_PUT];
	const struct ld_item *it = &op->item;
	bool deleted = op->kind == LD_OP_ITEM_DELETE;
	int rc;

	sqlite3_bind_int64(st, 1, op->actor_id);
	sqlite3_bind_text(st, 2, op->idem->key, (int)op->idem->key_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, op->idem->fp, LD_IDEM_FP_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, op->idem->status);
	/* A delete answers with no body: only its id is kept. */
	sqlite3_bind_int64(st, 5, deleted ? op->id : it->id);
	sqlite3_bind_text(st, 6, deleted ? "" : it->content, deleted ? 0 : (int)it->content_len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, deleted ? 0 : it->created_ms);
	sqlite3_bind_int64(st, 8, deleted ? 0 : it->updated_ms);
	sqlite3_bind_int64(st, 9, deleted ? 0 : it->version);
	sqlite3_bind_int64(st, 10, now);
	sqlite3_bind_int64(st, 11, now + (int64_t)s->idem_retention_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	*kept = sqlite3_changes(s->db) == 1;
	return SQLITE_OK;
}

int ld__sqlite_idem_write(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp,
			  int (*apply)(struct ld_store *, struct ld_store_op *, int64_t, int *))
{
	bool kept = false;
	int status, rc;

	if (op->idem->key_len == 0 || op->idem->key_len > LD_IDEM_KEY_MAX ||
	    (op->kind != LD_OP_ITEM_CREATE && op->kind != LD_OP_ITEM_UPDATE &&
	     op->kind != LD_OP_ITEM_DELETE)) {
		*rcp = SQLITE_MISUSE;
		return LD_STORE_ERROR;
	}
	/* The savepoint makes the write and its key one unit inside the
	 * batch: undoing it leaves the neighbours' statements alone. */
	rc = step_done(s, LD_SQL_SAVEPOINT);
	if (rc != SQLITE_OK) {
		*rcp = rc;
		return LD_STORE_ERROR;
	}
	status = apply(s, op, now, rcp);
	if (status == LD_STORE_OK) {
		rc = put_key(s, op, now, &kept);
		if (rc != SQLITE_OK) {
			*rcp = rc;
			status = LD_STORE_ERROR;
		} else if (!kept) {
			status = LD_STORE_CONFLICT;
		}
		if (status != LD_STORE_OK && !sqlite3_get_autocommit(s->db)) {
			rc = step_done(s, LD_SQL_ROLLBACK_TO);
			if (rc != SQLITE_OK && status == LD_STORE_CONFLICT) {
				*rcp = rc;
				status = LD_STORE_ERROR;
			}
		}
	}
	/* A failure that rolled the whole transaction back took the savepoint
	 * with it; the batch sees that and fails. */
	if (!sqlite3_get_autocommit(s->db)) {
		rc = step_done(s, LD_SQL_RELEASE);
		if (rc != SQLITE_OK && status != LD_STORE_ERROR) {
			*rcp = rc;
			status = LD_STORE_ERROR;
		}
	}
	return status;
}

int ld__sqlite_idem_reap(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_IDEM_REAP];
	int rc;

	op->nitems = 0;
	if (op->limit == 0 || op->limit > 100000) {
		*rcp = SQLITE_MISUSE;
		return LD_STORE_ERROR;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, op->limit);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*rcp = rc;
		return LD_STORE_ERROR;
	}
	op->nitems = (unsigned)sqlite3_changes(s->db);
	return LD_STORE_OK;
}
