/*
 * sqlite.h - the embedded SQLite driver of store.h, and the internals its
 * tests look at (the statement table).
 *
 * Layout: data_dir/ladder.db in WAL mode. One writer connection owned by one
 * writer thread; one read-only connection per loop thread (conn_open). Reads
 * run inline on the loop thread and complete before submit returns. Writes
 * are queued (bounded: write_queue_max, then LD_STORE_BUSY at once), handed
 * to the writer once per loop iteration (before the loop blocks, so a write
 * submitted outside a running loop waits for uv_run), and committed in
 * groups of up to write_batch_max ops per BEGIN IMMEDIATE ... COMMIT, so one
 * fsync covers the whole group; each op is one changing statement, and SQLite
 * undoes a failed statement alone, so one op's constraint error does not undo
 * its neighbours. Every op of a group is
 * completed after its COMMIT returned, through the submitting conn's
 * uv_async_t, on the submitting loop thread. A third thread, woken by the
 * writer, checkpoints the WAL so that no commit has to.
 *
 * Driver-specific behaviour on top of store.h:
 *   - ITEM_LIST tells an empty page of an existing user (OK, nitems 0) from
 *     a missing user (NOT_FOUND) with one more primary-key read in the same
 *     read transaction.
 *   - Deadlines: reads run inline in microseconds and are not timed; one
 *     whose deadline_ns has already passed ends in TIMEOUT untried. A write
 *     still staged or queued at its deadline is completed with TIMEOUT by
 *     the conn's timer and removed from the queue. The writer's wait for the
 *     database's write lock (another process holds it) ends at the earliest
 *     deadline of its batch; the ops due then end in TIMEOUT, and no op's
 *     statement runs after its deadline. Once its statement ran, a write
 *     completes with the COMMIT's result: the bound past the deadline is
 *     the batch's statements plus one COMMIT (local disk I/O).
 *   - ping() fails when the store is unhealthy, or when the writer has
 *     waited for the database without committing for longer than
 *     op_timeout_ms; idle after such a stall, the writer tries the lock
 *     every 100 ms, so readiness comes back with no traffic.
 *   - After an I/O error (a failed fsync, a full disk, corruption) the store
 *     marks itself unhealthy: stats().healthy is false, ping() fails, and
 *     writes end in LD_STORE_UNAVAILABLE until a restart, because a write
 *     acknowledged after a failed fsync could not be trusted to be on disk.
 *   - conn_close with writes still in flight does not free the conn: it
 *     closes once the last of them completed (their done() still runs).
 *   - stats().committed_ops counts every op of a committed transaction,
 *     including those that ended NOT_FOUND or CONFLICT inside it.
 *   - A write with an idempotency key (store.h, struct ld_idem) runs inside
 *     a savepoint of its batch: its statement, then the key's row; a key
 *     already kept undoes both (CONFLICT) without touching the other ops
 *     of the batch. IDEM_REAP is one more op of a batch (one DELETE with a
 *     LIMIT), so the reaper never holds the write lock for long.
 */
#ifndef LD_SQLITE_H
#define LD_SQLITE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

extern const struct ld_store_vt ld_sqlite_vt;

/* Every SQL statement the driver prepares, by index into ld_sqlite_stmts. */
enum ld_sql_id {
	/* Read connection (one per loop). */
	LD_SQL_USER_GET,
	LD_SQL_USER_GET_BY_HANDLE,
	LD_SQL_USER_EXISTS,
	LD_SQL_ITEM_GET,
	LD_SQL_ITEM_LIST,
	LD_SQL_READ_BEGIN, /* a read snapshot shared by the reads of one loop iteration */
	LD_SQL_READ_END,
	/* Writer connection. */
	LD_SQL_MAX_IDS,
	LD_SQL_USER_INSERT,
	LD_SQL_USER_UPDATE,
	LD_SQL_ITEM_INSERT,
	LD_SQL_ITEM_UPDATE,
	LD_SQL_ITEM_DELETE,
	LD_SQL_ITEM_CHECK,
	LD_SQL_BEGIN,
	LD_SQL_COMMIT,
	LD_SQL_ROLLBACK,
	/* Photos (read connection). */
	LD_SQL_PHOTO_GET,
	LD_SQL_PHOTO_VERSIONS,
	LD_SQL_PHOTO_LIST,
	/* Photos (writer). */
	LD_SQL_PHOTO_INSERT,
	LD_SQL_PHOTO_COMPLETE,
	LD_SQL_PHOTO_DELETE,
	LD_SQL_PHOTO_CHECK,
	/* Idempotency keys (sqlite_idem.c): the lookup on the read
	 * connection, the rest on the writer. */
	LD_SQL_IDEM_GET,
	LD_SQL_IDEM_PUT,
	LD_SQL_IDEM_REAP,
	LD_SQL_SAVEPOINT,
	LD_SQL_RELEASE,
	LD_SQL_ROLLBACK_TO,
	LD_SQL_COUNT
};

enum ld_sql_role {
	LD_SQL_READER, /* prepared on every loop's read-only connection */
	LD_SQL_WRITER, /* prepared on the writer's connection */
};

#define LD_SQL_PARAMS_MAX 11

/* An example value for one parameter, so tests can bind and plan each
 * statement as the driver runs it. */
struct ld_sql_param {
	bool is_text;
	int64_t i;
	const char *text;
};

struct ld_sql_stmt {
	const char *name;
	const char *sql; /* parameters are ?1..?nparams, always bound */
	enum ld_sql_role role;
	unsigned nparams;
	struct ld_sql_param example[LD_SQL_PARAMS_MAX];
};

/* Indexed by enum ld_sql_id; LD_SQL_COUNT entries. */
extern const struct ld_sql_stmt ld_sqlite_stmts[LD_SQL_COUNT];

#endif
