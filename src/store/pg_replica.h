/*
 * pg_replica.h - the PostgreSQL driver's read routing: which node answers a
 * read (the primary, or a replica in rotation), how each loop tracks every
 * replica's replay position and lag, the replica list of --pg-replicas, and
 * the routing series of /metrics.
 *
 * Pure bookkeeping: no I/O, no libuv, no libpq. postgres.c sends the
 * statements (ld_pg_rep_stmts) and reports what they said; this module
 * decides. docs/store.md has the why.
 *
 * Positions are PostgreSQL WAL positions (LSNs) as unsigned 64-bit numbers;
 * 0 means "none known".
 *
 * Lag. Each loop keeps the primary's positions it has seen (the flush
 * position read on a timer, and the position after each of its writes'
 * commits), each with the time it first saw the primary there. A replica
 * that has replayed up to R lacks, at most, what came after R; the first
 * sample past R says since when the primary had something the replica has
 * not: lag = now - that sample's time (0 when the replica has replayed every
 * position the loop knows). This reads 0 for an idle, caught-up replica
 * (unlike now() - pg_last_xact_replay_timestamp(), which grows while the
 * primary is idle), and it grows from the first write a paused replica
 * misses. It overstates by at most the sampling interval plus the
 * coalescing of samples (max_lag / 100): conservative, never optimistic.
 *
 * Rotation. A replica is in rotation on a loop while it has a ready
 * connection, its replay position has been read since it came up, and its
 * lag is within max_lag; it leaves when its lag passes max_lag and comes
 * back once the lag is at most half of it (no flapping at the edge).
 *
 * Breakers (base/breaker.h). Each loop has one per node: dep "primary",
 * "replica1"... Failures are what postgres.c reports: a connect refused,
 * failed or timed out, a connection lost, a statement past its deadline.
 * Any answer from the node is a success; once the open period is over,
 * the first answer (a reconnect's prepares, a sample, a trial op, the
 * probe a ready connection sends then) is the trial that closes it.
 * While a replica's breaker is not closed, the replica is out of rotation
 * (its reads go to the primary); while the primary's is open,
 * ld_pg_rep_allow refuses and postgres.c fails the op at once
 * (LD_STORE_UNAVAILABLE) instead of making it wait.
 */
#ifndef LD_PG_REPLICA_H
#define LD_PG_REPLICA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/breaker.h"
#include "base/buf.h"

#define LD_PG_REPLICAS_MAX 8
#define LD_PG_SAMPLES	   256

/* Statements every connection prepares besides ld_pg_stmts. */
enum ld_pg_rep_sql {
	LD_PG_REP_FLUSH_LSN,
	LD_PG_REP_REPLAY_LSN,
	LD_PG_REP_COMMIT_LSN,
	LD_PG_REP_SQL_COUNT
};

struct ld_pg_rep_stmt {
	const char *name;
	const char *sql;
};

extern const struct ld_pg_rep_stmt ld_pg_rep_stmts[LD_PG_REP_SQL_COUNT];

/* Process-wide: the replicas and the counters every loop adds to. */
struct ld_pg_rep_replica {
	char *conninfo; /* a secret: never logged or printed */
	_Atomic uint64_t reads;
	_Atomic uint64_t outs, ins;  /* rotation changes, summed over loops */
	_Atomic unsigned in_loops;   /* loops that have it in rotation */
	_Atomic unsigned up_loops;   /* loops with a ready connection to it */
	_Atomic uint64_t lag_us;     /* the last lag a loop measured */
	_Atomic uint64_t replay_pos; /* the last replay position a loop read */
};

struct ld_pg_rep_set {
	unsigned n;
	uint64_t max_lag_ns;
	struct ld_pg_rep_replica r[LD_PG_REPLICAS_MAX];
	_Atomic uint64_t primary_reads;
	/* Reads that went to the primary only because no replica in rotation
	 * had replayed their token. */
	_Atomic uint64_t token_primary_reads;
	struct ld_breaker_config breaker;  /* every node's, on every loop */
	_Atomic unsigned loops;		   /* loops started: the breakers' loop label */
	_Atomic unsigned primary_unclosed; /* loops whose primary breaker is not closed */
};

/* ld_pg_rep_set_init splits list (--pg-replicas: conninfos separated by
 * commas) into set. A comma separates two conninfos only where the next
 * one starts: "postgresql://", "postgres://" or a key=value pair; so a
 * multi-host conninfo (host=a,b port=1,2) or a quoted value keeps its
 * commas. Each conninfo is checked by check (libpq's parser; NULL: none),
 * which writes why into its buffer. An empty list is no replicas. 0, or
 * -EINVAL / -ENOMEM with err naming the bad entry by its place
 * ("replica 2"), never its text. */
int ld_pg_rep_set_init(struct ld_pg_rep_set *set, const char *list, uint64_t max_lag_ns,
		       int (*check)(const char *conninfo, char *why, size_t whylen), char *err,
		       size_t errlen);
void ld_pg_rep_set_free(struct ld_pg_rep_set *set);

/* ld_pg_rep_sample_ms is how often a loop reads every node's position. */
unsigned ld_pg_rep_sample_ms(const struct ld_pg_rep_set *set);

/* Per loop (touched by its own thread only, save the set's atomics). */
struct ld_pg_rep_sample {
	uint64_t pos, t_ns;
};

struct ld_pg_rep_node {
	bool up;    /* a connection is ready */
	bool known; /* replay position read since it came up */
	bool in;    /* in rotation */
	uint64_t replay_pos;
	uint64_t lag_ns;
};

struct ld_pg_rep_loop {
	struct ld_pg_rep_set *set;
	struct ld_pg_rep_sample samples[LD_PG_SAMPLES]; /* a ring, oldest first */
	unsigned head, count;
	unsigned next; /* round robin over the replicas */
	struct ld_pg_rep_node r[LD_PG_REPLICAS_MAX];
	struct ld_breaker br[LD_PG_REPLICAS_MAX + 1]; /* by target: 0 the primary */
};

void ld_pg_rep_loop_init(struct ld_pg_rep_loop *l, struct ld_pg_rep_set *set);
/* ld_pg_rep_loop_fini takes the loop's replicas out of the set's gauges
 * and its breakers out of the metrics. */
void ld_pg_rep_loop_fini(struct ld_pg_rep_loop *l);

/* ld_pg_rep_breakers_start numbers the loop and puts its breakers (set up
 * closed by ld_pg_rep_loop_init) in the metrics. */
void ld_pg_rep_breakers_start(struct ld_pg_rep_loop *l);

/* ld_pg_rep_failed: target (0 the primary, k replica k) failed at now_ns
 * (why is for the log line of an opening). ld_pg_rep_answered: it
 * answered. ld_pg_rep_allow: may an op go to target now (a refusal is
 * counted; see the breakers above). */
void ld_pg_rep_failed(struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns, const char *why);
void ld_pg_rep_answered(struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns);
bool ld_pg_rep_allow(struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns);
/* ld_pg_rep_open_left: true while target's breaker is open, with *left_ns
 * the time until its open period is over (0: over). */
bool ld_pg_rep_open_left(const struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns,
			 uint64_t *left_ns);
/* ld_pg_rep_primary_closed: the primary's breaker is closed on every loop
 * (readiness: a node whose breaker refuses writes is not ready). */
bool ld_pg_rep_primary_closed(const struct ld_pg_rep_set *set);
/* ld_pg_rep_ready: would ld_pg_rep_allow say yes (nothing changes)? */
bool ld_pg_rep_ready(const struct ld_pg_rep_loop *l, unsigned target, uint64_t now_ns);

/* ld_pg_rep_primary_at: the primary was at pos (or past it) at now_ns. */
void ld_pg_rep_primary_at(struct ld_pg_rep_loop *l, uint64_t pos, uint64_t now_ns);

/* ld_pg_rep_replayed: replica k (1-based) had replayed up to pos at now_ns
 * (0: it said none, as a node not in recovery does: out of rotation). */
void ld_pg_rep_replayed(struct ld_pg_rep_loop *l, unsigned k, uint64_t pos, uint64_t now_ns);

/* ld_pg_rep_up: replica k has (or no longer has) a ready connection. Down
 * takes it out of rotation at once; up puts it back only after its replay
 * position has been read. */
void ld_pg_rep_up(struct ld_pg_rep_loop *l, unsigned k, bool up);

/* ld_pg_rep_route picks the node for a read: a replica k (1..n) in rotation
 * that has replayed at least min_pos (0: no token), the next such in turn,
 * else 0 (the primary). replica_ok false (a read that must see the
 * primary): 0. The read is counted for the node picked; *forced says
 * whether it was its token that sent it to the primary. */
unsigned ld_pg_rep_route(struct ld_pg_rep_loop *l, bool replica_ok, uint64_t min_pos, bool *forced);

/* ld_pg_rep_render appends the routing series (Prometheus text) to out. */
void ld_pg_rep_render(struct ld_pg_rep_set *set, struct ld_buf *out);

/* ld_pg_rep_render_json writes the same figures as members of an open
 * JSON object: "primary_reads", "token_primary_reads", "replicas": [...]. */
struct ld_json;
void ld_pg_rep_render_json(struct ld_pg_rep_set *set, struct ld_json *j);

#endif
