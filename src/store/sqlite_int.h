/*
 * sqlite_int.h - what the SQLite driver's two files share: the store and
 * conn structs and a few helpers. sqlite.c holds open/close, the read path,
 * the submit side of the write queue and the loop-side connection;
 * sqlite_write.c holds the writer thread (group commit) and the
 * checkpointer thread. Not for use outside src/store.
 */
#ifndef LD_SQLITE_INT_H
#define LD_SQLITE_INT_H

#include <limits.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "base/ids.h"
#include "store/sqlite.h"

struct ld_store {
	char path[PATH_MAX];
	unsigned write_queue_max;
	unsigned write_batch_max;
	unsigned busy_timeout_ms;
	bool sync_full;
	uint64_t test_commit_delay_us; /* TEST ONLY (see store.h) */
	uint64_t idem_retention_ms;    /* idempotency keys expire this long after */
	uint64_t op_timeout_ns;	       /* default deadline of an op */

	/* Writer thread only (after open returned). */
	sqlite3 *db;
	sqlite3_stmt *stmt[LD_SQL_COUNT]; /* the LD_SQL_WRITER ones */
	struct ld_idgen idgen;
	uint64_t busy_until_ns; /* the busy handler gives up here (uv_hrtime) */
	uv_thread_t thread;
	bool thread_started;

	/* The write queue: ops linked through op->next, guarded by mu. */
	uv_mutex_t mu;
	uv_cond_t cv;
	struct ld_store_op *head, *tail;
	unsigned queued; /* ops in the list */
	bool writer_waiting;
	bool sync_ready; /* mu and cv initialised */
	_Atomic bool closing;

	/* Ops submitted and not yet taken by the writer, staged on a loop or
	 * in the list. A submit reserves its place here without the lock,
	 * which is what makes write_queue_max a hard cap across loops. */
	_Atomic unsigned depth;

	/* The checkpointer: its own connection and thread, woken by the
	 * writer's WAL hook; ckpt_* guarded by ckpt_mu. */
	sqlite3 *ckpt_db;
	uv_thread_t ckpt_thread;
	bool ckpt_started;
	uv_mutex_t ckpt_mu;
	uv_cond_t ckpt_cv;
	bool ckpt_wanted;
	bool ckpt_stop;

	_Atomic uint64_t commits;
	_Atomic uint64_t committed_ops;
	_Atomic uint64_t errors;
	_Atomic uint64_t timeouts;
	_Atomic bool healthy;
	/* When the writer last started to wait for the database without having
	 * committed since (0: it is keeping up). ping() reads it; the writer
	 * clears it after a commit, or after an idle probe got the lock. */
	_Atomic uint64_t stalled_since_ns;
	_Atomic int nconns;
};

struct ld_store_conn {
	struct ld_store *s;
	sqlite3 *db;			  /* read-only; this loop thread only */
	sqlite3_stmt *stmt[LD_SQL_COUNT]; /* the LD_SQL_READER ones */

	/* Finished writes: the writer appends under mu and wakes the loop
	 * with async; the loop takes the whole list and calls done(). */
	uv_async_t async;
	uv_mutex_t mu;
	struct ld_store_op *done_head, *done_tail;

	/* Writes submitted during this loop iteration, handed to the writer
	 * in one go just before the loop blocks (prepare phase). */
	uv_prepare_t flush;
	struct ld_store_op *stage_head, *stage_tail;
	unsigned staged;

	/* Times out writes still queued at their deadline: armed for the
	 * earliest due_ns among this conn's queued writes that it knows of
	 * (expire_at_ns, 0 when stopped), never one timer per op. */
	uv_timer_t expire;
	uint64_t expire_at_ns;

	/* The read snapshot of this loop iteration (see begin_read). */
	uv_prepare_t endread;
	bool in_read;
	uint64_t read_seq;

	/* Loop thread only. */
	unsigned inflight; /* writes submitted and not yet completed */
	unsigned handles;  /* open libuv handles; the conn goes with the last */
	bool closing;	   /* conn_close was called */
	bool closed;	   /* the handles are closing */
};

/* ld__sqlite_log_error records one failed statement: a log line, a metric,
 * and the health flag for errors that need a restart. Any thread. */
void ld__sqlite_log_error(struct ld_store *s, sqlite3 *db, const char *what, int rc);

/* ld__sqlite_pragma runs a PRAGMA; the first column of its row, if any, is
 * copied to out when out is not NULL. 0 or -EIO. */
int ld__sqlite_pragma(sqlite3 *db, const char *sql, char *out, size_t outlen);

/* ld__sqlite_copy_text copies a text column into dst (cap bytes with the
 * NUL), cutting it if it does not fit. */
void ld__sqlite_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col);

/* ld__sqlite_busy_handler is the writer's busy handler: it waits for the
 * lock until s->busy_until_ns, so a batch's wait ends at its first deadline. */
int ld__sqlite_busy_handler(void *arg, int count);

/* ld__sqlite_writer_main is the writer thread (arg: the store). It returns
 * once closing is set and the queue is empty. */
void ld__sqlite_writer_main(void *arg);

/* ld__sqlite_ckpt_start opens the checkpointer's connection, starts its
 * thread and installs the writer's WAL hook; ld__sqlite_ckpt_stop joins it
 * and closes the connection (safe when start failed or never ran). */
int ld__sqlite_ckpt_start(struct ld_store *s, char *err, size_t errlen);
void ld__sqlite_ckpt_stop(struct ld_store *s);

/* ld__sqlite_timed_out counts n ops that ended in LD_STORE_TIMEOUT, in
 * stats() and in ladder_store_errors_total{kind="timeout"}. Any thread. */
void ld__sqlite_timed_out(struct ld_store *s, unsigned n);

/* Idempotency keys (sqlite_idem.c). ld__sqlite_idem_get is IDEM_GET on
 * a loop's read connection (inside its read snapshot). ld__sqlite_idem_write
 * runs a keyed write on the writer: apply (the writer's own dispatch) inside
 * a savepoint, then the key's row, undoing both when the key is already
 * kept. ld__sqlite_idem_reap is IDEM_REAP. Each returns the op's status and
 * puts a failing SQLite code in *rcp. */
int ld__sqlite_idem_get(struct ld_store_conn *c, struct ld_store_op *op, int *rcp);
int ld__sqlite_idem_write(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp,
			  int (*apply)(struct ld_store *, struct ld_store_op *, int64_t, int *));
int ld__sqlite_idem_reap(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp);

/* ld__sqlite_text_len is strnlen for the fixed-size strings of an op. */
static inline int ld__sqlite_text_len(const char *s, size_t max)
{
	return (int)strnlen(s, max);
}

#endif
