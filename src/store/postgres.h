/*
 * postgres.h - the PostgreSQL driver of store.h ("postgres"), and the
 * internals its tests look at (the statement table, the migrations).
 *
 * Layout: open() connects once, blocking, on the main thread (never a loop
 * thread): it applies the schema migrations under an advisory lock and seeds
 * the id generator with the largest stored id, then disconnects. Each loop
 * thread (conn_open) keeps its own small pool of libpq connections to the
 * primary, driven by libpq's non-blocking API (PQconnectStart/PQconnectPoll,
 * PQsocket watched with uv_poll), in pipeline mode, with every statement
 * prepared once at connect.
 *
 * Driver-specific behaviour on top of store.h (docs/store.md has the why):
 *   - Every op is one prepared statement followed by its own Sync, so it is
 *     its own implicit transaction: a write is acknowledged only when the
 *     server's answer to that Sync (its COMMIT) has come back, and one op's
 *     error (a taken handle) aborts nothing but that op.
 *   - An op goes to the ready connection of the pool with the fewest ops in
 *     flight. Ops submitted while no connection is ready (start-up, a
 *     reconnect under way) wait in the conn's queue until one is, or until
 *     their deadline (TIMEOUT). At most write_queue_max ops per loop are in
 *     flight or waiting; more get BUSY at once.
 *   - Deadlines: an op not yet sent ends in TIMEOUT at its deadline; a read
 *     already sent ends in TIMEOUT at its deadline and its answer is dropped
 *     when it comes. A write already sent waits for its COMMIT's answer, for
 *     at most op_timeout_ms past its deadline; then the connection is closed
 *     and the write ends as on connection loss.
 *   - Connection loss: ops in flight end in UNAVAILABLE (a replica's reads
 *     go to the primary). A write whose Sync was sent has outcome_unknown
 *     set (the COMMIT may or may not have happened; it is never retried),
 *     unless its statement had already failed (not made) or its COMMIT had
 *     returned (OK). The connection is re-made after an exponential
 *     backoff with full jitter (50 ms doubling to 5 s). While every
 *     connection of the pool is down, ops end in UNAVAILABLE at once, and
 *     ping() fails (so /readyz answers 503) until one is ready again.
 *   - conn_close answers waiting ops UNAVAILABLE, lets those in flight
 *     complete, and closes the libpq connections after the last.
 *   - A write with an idempotency key (store.h, struct ld_idem) is one unit
 *     of two statements before its Sync, so one implicit transaction: the
 *     key's expired row (if any) is cleared, then one statement makes the
 *     write and keeps the key's row. A key another node's request holds
 *     (committed, or still in flight: PostgreSQL makes the insert wait for
 *     it) fails the unique index and undoes the write: CONFLICT.
 *     IDEM_REAP deletes a batch of expired keys by ctid, skipping rows
 *     another node's reaper has locked.
 *   - Replicas (--pg-replicas): each loop also keeps a pool to each replica.
 *     Writes and sign-in's read by handle go to the primary; other reads to
 *     a replica in rotation, in turn, or to the primary when none is
 *     (pg_replica.h says when one is). A read with op->min_pos goes only to
 *     a replica whose replay position, as last read, is at least that, else
 *     to the primary. A read lost with a replica's connection, or failed
 *     there, is sent again to the primary (a read is safe to repeat).
 *     Every write reads pg_current_wal_flush_lsn() right after its Sync, in
 *     the same flush, and answers it as op->commit_pos; a connection lost
 *     between the two still answers OK (it committed), with no position.
 *     Replicas never count for ping(): the primary is what must be there.
 *   - Ids come from the project's own generator (base/ids.h), shared by the
 *     loops of the process under a lock, seeded at open with the largest id
 *     stored.
 */
#ifndef LD_POSTGRES_H
#define LD_POSTGRES_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

extern const struct ld_store_vt ld_pg_vt;

/* The [postgres] section of serve's configuration (registered by
 * ld_pg_config_register, read by open()). */
struct ld_pg_config {
	char primary[2048];	     /* libpq conninfo (URI or key=value); a secret */
	unsigned pool;		     /* connections per loop thread */
	uint64_t connect_timeout_ms; /* one connection attempt */
	char replicas[8192];	     /* conninfos, comma-separated (pg_replica.h); a secret */
	uint64_t max_replica_lag_ms; /* a replica further behind leaves the read rotation */
	unsigned breaker_failures;   /* failures in a row that open a node's breaker */
	uint64_t breaker_open_ms;    /* how long it refuses before a trial */
	unsigned breaker_rate_pct;   /* failure share (percent) that opens it; 0: off */
	unsigned breaker_min_calls;  /* outcomes in the window before the share counts */
	uint64_t breaker_window_ms;  /* the share's window */
};

/* ld_pg_config_register adds [postgres] to serve's and migrate's settings.
 * Call once, before ld_config_load. 0 or a negative errno. */
int ld_pg_config_register(void);

/* The live configuration the section writes to (tests may fill it). */
extern struct ld_pg_config ld_pg_settings;

/* The section itself, for other commands' option sets (`ladder worker`
 * takes the same settings: ld_optset_add(set, &ld_pg_section,
 * &ld_pg_settings, NULL)). */
struct ld_opt_section;
extern const struct ld_opt_section ld_pg_section;

/* Every statement the driver prepares. */
enum ld_pg_sql_id {
	LD_PG_USER_GET,
	LD_PG_USER_GET_BY_HANDLE,
	LD_PG_ITEM_GET,
	LD_PG_ITEM_LIST,
	LD_PG_USER_INSERT,
	LD_PG_USER_UPDATE,
	LD_PG_ITEM_INSERT,
	LD_PG_ITEM_UPDATE,
	LD_PG_ITEM_DELETE,
	/* A write batch's item creates in one statement (arrays, pg_array.h). */
	LD_PG_ITEM_INSERT_MANY,
	/* Idempotency keys: the lookup, the expired row of one key cleared
	 * before a keyed write (same transaction), the keyed writes (the
	 * write and its key's row in one statement), the reaper. */
	LD_PG_IDEM_GET,
	LD_PG_IDEM_CLEAR,
	LD_PG_ITEM_INSERT_IDEM,
	LD_PG_ITEM_UPDATE_IDEM,
	LD_PG_ITEM_DELETE_IDEM,
	LD_PG_IDEM_REAP,
	LD_PG_PHOTO_GET,
	LD_PG_PHOTO_LIST,
	LD_PG_PHOTO_CREATE,
	LD_PG_PHOTO_COMPLETE,
	LD_PG_PHOTO_DELETE,
	LD_PG_SQL_COUNT
};

#define LD_PG_PARAMS_MAX 9

/* The array types are bound in binary array format (pg_array.h). */
enum ld_pg_type { LD_PG_INT8, LD_PG_TEXT, LD_PG_BYTEA, LD_PG_INT8_ARRAY, LD_PG_BYTEA_ARRAY };

struct ld_pg_stmt {
	const char *name;
	const char *sql; /* parameters $1..$nparams */
	unsigned nparams;
	enum ld_pg_type types[LD_PG_PARAMS_MAX];
	const char *example[LD_PG_PARAMS_MAX]; /* a value as SQL text, for EXPLAIN */
};

extern const struct ld_pg_stmt ld_pg_stmts[LD_PG_SQL_COUNT];

/* The schema history, as for SQLite (migrations.h): version n brings the
 * database from n-1 to n; table ladder_schema holds the version applied. */
struct ld_pg_migration {
	int version;
	const char *what;
	const char *sql;
};

extern const struct ld_pg_migration ld_pg_migrations[];
extern const unsigned ld_pg_nmigrations;

#endif
