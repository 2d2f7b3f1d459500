/*
 * postgres.c - the PostgreSQL store: open (migrations, id seed), and per
 * loop a pool of non-blocking, pipelined libpq connections. The contract is
 * in store.h and postgres.h; this file explains the why.
 *
 * One op is one "unit" on a connection: its prepared statement and a Sync.
 * Units are answered in the order they were sent, so each connection keeps
 * them in a FIFO and matches results to its head: the statement's result,
 * a NULL (end of that statement), then PGRES_PIPELINE_SYNC, which is the
 * COMMIT of the op's implicit transaction having returned.
 */
#include "store/postgres.h"
#include "store/pg_array.h"
#include "store/pg_int.h"
#include "store/pg_replica.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/ids.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/stats.h"
#include "store/pg_resolve.h"

/* Reads in one read batch at most (one Sync), and item creates in one
 * write batch (one transaction; write_batch lowers it); more start another. */
#define READ_BATCH_MAX	     64
#define WRITE_BATCH_MAX	     128
#define POOL_MAX	     64
#define BACKOFF_BASE_MS	     50
#define BACKOFF_CAP_MS	     5000
#define ADVISORY_LOCK_KEY    0x6c6164646572LL /* "ladder" */
#define LD_PG_ID_WINDOWS     16u	/* windows of the id sequence bits: 64 ids per ms each */
#define LD_PG_ID_WINDOW_LOCK 0x6c646964 /* "ldid": the id windows' advisory lock class */
/* "ldidtake": held while a node picks its window, so nodes pick in turn. */
#define LD_PG_ID_TAKE_LOCK 0x6c64696474616b65LL

#define OID_INT8  20
#define OID_TEXT  25
#define OID_BYTEA 17

struct ld_store {
	char *conninfo;
	/* Host names to resolve off the loop, by target (0: the primary, k:
	 * replica k), or NULL where the conninfo needs no lookup. */
	struct ld_pg_hosts *hosts[LD_PG_REPLICAS_MAX + 1];
	unsigned pool;
	uint64_t connect_timeout_ms;
	unsigned queue_max; /* per loop */
	unsigned batch_max; /* item creates per write batch */
	uint64_t op_timeout_ns;
	int64_t idem_retention_ms;

	uv_mutex_t idmu;
	struct ld_idgen idgen;
	/* The connection that holds this store's id window (an advisory lock,
	 * migration 4), open for the store's life; NULL when every window was
	 * held and the window was taken from the sequence instead. */
	PGconn *window_pg;
	/* That window's number, which every connection to the primary also
	 * holds (shared) from its setup on; -1 with window_pg NULL. */
	int64_t id_window;

	_Atomic uint64_t commits, committed_ops, errors, timeouts;
	_Atomic unsigned depth;
	_Atomic uint64_t rng;
	/* Loops with no ready connection: ping() fails on every loop while
	 * any is (a balancer must not send requests that one loop would
	 * refuse). */
	_Atomic unsigned unready_loops;

	struct ld_pg_rep_set reps; /* --pg-replicas (pg_replica.h) */
	/* The timeline of the primary the last connection to it found (0:
	 * none yet). Each promotion starts a new timeline, so a change here
	 * is "the primary changed" for /metrics (alerts.yml). */
	_Atomic uint64_t primary_timeline;
};

/* A write batch: item creates sent as one transaction (one statement,
 * item_insert_many, and one Sync), each op answered by its row. */
struct wbatch {
	unsigned n;
	bool read;	    /* its statement's rows came: st[] holds their answers */
	bool failed;	    /* a statement failed: the transaction rolled back */
	bool unsent;	    /* its Sync was never queued: it cannot commit */
	unsigned failed_at; /* the statement that failed */
	struct ld_store_op *ops[WRITE_BATCH_MAX];
	int st[WRITE_BATCH_MAX]; /* what each op's statement said */
};

struct unit {
	/* NULL: setup (prepares), a write batch (wb), or an op given up on */
	struct ld_store_op *op;
	struct wbatch *wb; /* a write batch, or its position query once committed */
	bool write;
	bool setup;
	bool got;	/* a result of the current statement came */
	bool ran;	/* the statement ran without error (its transaction commits) */
	bool aborted;	/* a statement before the op's own failed */
	unsigned cmd;	/* statements answered so far */
	unsigned ncmds; /* statements in the unit */
	int status;	/* what the statement said */
	/* Read routing (pg_replica.h): aux is a position query (the flush
	 * position after a write's commit, or a timer's sample) answered in
	 * pos; follow: a write whose flush-position query comes next, which
	 * takes the op over once the write committed (committed: answer OK
	 * whatever becomes of the query); retry: a replica's read that failed
	 * there and goes to the primary. */
	enum { AUX_NONE, AUX_LSN, AUX_SAMPLE } aux;
	bool follow, committed, retry;
	/* A read batched with the ones sent after it on the same connection
	 * in the same loop pass: no Sync of its own (the batch's last read
	 * has it); resend: skipped after a failed neighbour, sent again. */
	bool nosync, resend;
	/* timed_out: a read given up on as the node's failure (its breaker
	 * counted it): its late answer is not also counted as a success. */
	bool timed_out;
	uint64_t pos;
	struct unit *next;
};

enum pgc_state { PGC_DOWN, PGC_CONNECTING, PGC_SETUP, PGC_READY };

struct ld_store_conn;

/* One libpq connection of a loop's pool. */
struct pgc {
	struct ld_store_conn *c;
	PGconn *pg;
	uv_poll_t *poll; /* NULL when none; re-made when the socket changes */
	int fd;
	int events;
	enum pgc_state state;
	uv_timer_t timer; /* connect timeout while connecting, retry wait while down */
	unsigned attempt; /* failed attempts in a row */
	bool logged_down; /* said once per outage */
	bool resolving;	  /* its host names are being looked up (attempt gen) */
	unsigned gen;
	struct unit *head, *tail;
	struct unit *open; /* the last read of a batch still open (no Sync yet) */
	unsigned nopen;	   /* reads in that batch */
	unsigned nunits;   /* ops on it, for load balancing */
	unsigned target;   /* 0: the primary; k: replica k of --pg-replicas */
	bool batching;	   /* a write batch is on it, its COMMIT not yet returned */
};

struct ld_store_conn {
	struct ld_store *s;
	uv_loop_t *loop;
	/* npool connections to the primary, then npool to each replica. */
	struct pgc *pgc;
	unsigned npool, npgc;
	struct ld_pg_rep_loop rl;
	uv_timer_t sample;		       /* reads every node's position (replicas only) */
	bool sampling[LD_PG_REPLICAS_MAX + 1]; /* by target: a sample in flight */
	uint64_t sample_ns[LD_PG_REPLICAS_MAX + 1];

	/* Ops waiting for a ready connection, linked through op->next. */
	struct ld_store_op *wait_head, *wait_tail;
	/* Item creates waiting for the next write batch, linked through
	 * op->next; sent from prep on a primary connection without a batch
	 * in flight. */
	struct ld_store_op *bq_head, *bq_tail;

	uv_timer_t expire;
	uint64_t expire_at_ns;
	/* Sends the write batch queue and closes every open read batch (its
	 * Sync, one flush) once per loop pass, before the loop waits. */
	uv_prepare_t prep;

	bool ready;	   /* a connection is ready; else counted in unready_loops */
	unsigned inflight; /* ops submitted and not completed */
	unsigned handles;
	bool closing;
	bool closed;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one_line trims libpq's multi-line messages for a log field. */
static const char *one_line(const char *msg, char *buf, size_t cap)
{
	size_t n;

	snprintf(buf, cap, "%s", msg ? msg : "");
	n = strcspn(buf, "\n");
	buf[n] = '\0';
	return buf;
}

/* ---- open: migrations and the id seed (blocking, main thread) ----------- */

static int exec_ok(PGconn *pg, const char *sql, char *err, size_t errlen, const char *what)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	char line[256];
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		set_err(err, errlen, "%s: %s", what,
			one_line(PQresultErrorMessage(r), line, sizeof(line)));
		rc = -EIO;
	}
	PQclear(r);
	return rc;
}

/* query_int runs sql and returns its first column of its first row. */
static int query_int(PGconn *pg, const char *sql, int64_t *out, char *err, size_t errlen,
		     const char *what)
{
	PGresult *r = PQexec(pg, sql);
	char line[256];
	int rc = -EIO;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		set_err(err, errlen, "%s: %s", what,
			one_line(PQresultErrorMessage(r), line, sizeof(line)));
		goto out;
	}
	*out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	rc = 0;
out:
	PQclear(r);
	return rc;
}

/* take_id_window finds this store's id window: the first of the
 * LD_PG_ID_WINDOWS advisory locks (two-key form, its own key space) that no
 * session holds, taken shared by pg for as long as pg stays open, so live
 * nodes never share one and a restarted node takes a free one again;
 * returns 1. Every connection of the node to the primary takes the same
 * lock shared as well when it is made (setup), so a node keeps its window
 * across a failover: the lease dies with the old primary, and the new
 * primary learns the window is taken as soon as the node's pools reconnect
 * to it, before a node starting later looks. Nodes pick one at a time
 * (LD_PG_ID_TAKE_LOCK), so two never take the same free window.
 * When all are held (more nodes than windows) it takes the next value of
 * migration 4's sequence, shared with some other node, and returns 0 (a
 * clash is then a primary-key refusal, answered 503: see status_of). */
static int take_id_window(PGconn *pg, int64_t *w, char *err, size_t errlen)
{
	char sql[384];
	int64_t got = -1, one = 0;

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
		 (long long)LD_PG_ID_TAKE_LOCK);
	if (exec_ok(pg, "BEGIN", err, errlen, "take an id window") != 0 ||
	    exec_ok(pg, sql, err, errlen, "take an id window") != 0)
		goto fail;
	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(min(w), -1) FROM generate_series(0, %u) w WHERE NOT EXISTS "
		 "(SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = %d::oid "
		 "AND l.objid = w::oid AND l.objsubid = 2)",
		 LD_PG_ID_WINDOWS - 1, LD_PG_ID_WINDOW_LOCK);
	if (query_int(pg, sql, &got, err, errlen, "take an id window") != 0)
		goto fail;
	if (got >= 0) {
		snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_advisory_lock_shared(%d, %lld)",
			 LD_PG_ID_WINDOW_LOCK, (long long)got);
		if (query_int(pg, sql, &one, err, errlen, "take an id window") != 0)
			goto fail;
		*w = got;
	} else if (query_int(pg, "SELECT nextval('ladder_id_windows')", w, err, errlen,
			     "take an id window") != 0) {
		goto fail;
	}
	if (exec_ok(pg, "COMMIT", err, errlen, "take an id window") != 0)
		goto fail;
	if (got >= 0)
		return 1;
	ld_log_event("warn",
		     "store: every id window is held by another node; sharing one (a clash is a "
		     "503)",
		     NULL);
	return 0;
fail:
	PQclear(PQexec(pg, "ROLLBACK"));
	return -EIO;
}

/* migrate applies each migration in its own transaction, under a
 * transaction-scoped advisory lock: several nodes (or `ladder migrate` next
 * to a starting server) may run this at once; the lock makes them take
 * turns, and each reads the version again once it holds the lock. */
static int migrate(PGconn *pg, char *err, size_t errlen)
{
	char sql[128];
	int64_t current = 0;
	int latest = ld_pg_migrations[ld_pg_nmigrations - 1].version, rc = -EIO;
	unsigned i = 0;

	for (;;) {
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)",
			 (long long)ADVISORY_LOCK_KEY);
		if (exec_ok(pg, "BEGIN", err, errlen, "migrate") != 0 ||
		    exec_ok(pg, sql, err, errlen, "migrate: advisory lock") != 0 ||
		    exec_ok(pg,
			    "CREATE TABLE IF NOT EXISTS ladder_schema (version integer NOT NULL)",
			    err, errlen, "migrate: schema table") != 0 ||
		    query_int(pg, "SELECT coalesce(max(version), 0) FROM ladder_schema", &current,
			      err, errlen, "migrate: read version") != 0)
			goto fail;
		if (current > latest) {
			set_err(err, errlen,
				"database schema version %lld is newer than this binary supports "
				"(%d): run a newer ladder or restore a backup",
				(long long)current, latest);
			rc = -EPROTO;
			goto fail;
		}
		while (i < ld_pg_nmigrations && ld_pg_migrations[i].version <= current)
			i++;
		if (i == ld_pg_nmigrations)
			break;
		if (exec_ok(pg, ld_pg_migrations[i].sql, err, errlen, ld_pg_migrations[i].what) !=
		    0)
			goto fail;
		snprintf(sql, sizeof(sql), "INSERT INTO ladder_schema VALUES (%d)",
			 ld_pg_migrations[i].version);
		if (exec_ok(pg, "DELETE FROM ladder_schema", err, errlen, "migrate") != 0 ||
		    exec_ok(pg, sql, err, errlen, "migrate") != 0 ||
		    exec_ok(pg, "COMMIT", err, errlen, "migrate: commit") != 0)
			goto fail;
	}
	rc = exec_ok(pg, "COMMIT", err, errlen, "migrate: commit");
	goto out;
fail:
	PQclear(PQexec(pg, "ROLLBACK"));
out:
	return rc;
}

static void pg_close(struct ld_store *s);

/* check_conninfo: libpq can parse it, and it names one server. libpq's
 * message quotes the text, which may hold a password: the caller gets a
 * reason without it. A replica's replay position is sampled per replica,
 * and its reads go over any of its pool's connections: with several hosts
 * (host=a,b) those could reach different servers, and a read with a token
 * could go to one that has not replayed what the sample said. */
static int check_conninfo(const char *conninfo, char *why, size_t whylen)
{
	char *msg = NULL;
	PQconninfoOption *o = PQconninfoParse(conninfo, &msg), *i;
	int rc = 0;

	PQfreemem(msg);
	if (!o) {
		snprintf(why, whylen, "libpq cannot parse it");
		return -EINVAL;
	}
	for (i = o; i->keyword; i++)
		if ((strcmp(i->keyword, "host") == 0 || strcmp(i->keyword, "hostaddr") == 0) &&
		    i->val && strchr(i->val, ',')) {
			snprintf(why, whylen,
				 "it names several hosts (%s): give each replica its own entry",
				 i->keyword);
			rc = -EINVAL;
			break;
		}
	PQconninfoFree(o);
	return rc;
}

/* quiet drops the server's notices ("relation already exists, skipping"):
 * libpq would print them on stderr. */
static void quiet(void *arg, const char *message)
{
}

static int pg_open(const struct ld_store_config *cfg, struct ld_store **out, char *err,
		   size_t errlen)
{
	const struct ld_pg_config *pc = &ld_pg_settings;
	struct ld_store *s;
	PGconn *pg = NULL;
	int64_t a = 0, b = 0, w = 0;
	char line[256];
	int rc = -ENOMEM;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	s->id_window = -1;
	if (!pc->primary[0]) {
		set_err(err, errlen, "--pg-primary (LADDER_PG_PRIMARY) is not set");
		rc = -EINVAL;
		goto fail;
	}
	if (cfg->op_timeout_ms == 0 || cfg->write_queue_max == 0) {
		set_err(err, errlen, "op_timeout_ms and write_queue_max must be set");
		rc = -EINVAL;
		goto fail;
	}
	s->conninfo = strdup(pc->primary);
	s->pool = pc->pool ? pc->pool : 2;
	if (s->pool > POOL_MAX)
		s->pool = POOL_MAX;
	s->connect_timeout_ms = pc->connect_timeout_ms ? pc->connect_timeout_ms : 5000;
	s->queue_max = cfg->write_queue_max;
	s->batch_max = cfg->write_batch_max && cfg->write_batch_max < WRITE_BATCH_MAX
			   ? cfg->write_batch_max
			   : WRITE_BATCH_MAX;
	s->op_timeout_ns = (uint64_t)cfg->op_timeout_ms * 1000000;
	s->idem_retention_ms = (int64_t)cfg->idem_retention_ms;
	atomic_init(&s->rng, (uint64_t)uv_hrtime() | 1);
	if (!s->conninfo || uv_mutex_init(&s->idmu) != 0) {
		free(s->conninfo);
		free(s);
		s = NULL;
		set_err(err, errlen, "out of memory");
		goto out;
	}
	/* Replicas are only parsed here: one that is down at start joins the
	 * rotation when it answers. */
	rc = ld_pg_rep_set_init(&s->reps, pc->replicas,
				(pc->max_replica_lag_ms ? pc->max_replica_lag_ms : 1000) * 1000000,
				check_conninfo, err, errlen);
	if (rc != 0)
		goto fail;
	s->reps.breaker = (struct ld_breaker_config){
	    .failures = pc->breaker_failures ? pc->breaker_failures : 3,
	    .open_ns = (pc->breaker_open_ms ? pc->breaker_open_ms : 1000) * 1000000,
	    /* 0 percent is off: a configuration filled in by hand (tests)
	     * gets only the failures in a row. */
	    .rate_pct = pc->breaker_rate_pct,
	    .min_calls = pc->breaker_min_calls ? pc->breaker_min_calls : 20,
	    .window_ns = (pc->breaker_window_ms ? pc->breaker_window_ms : 10000) * 1000000,
	    .trials = 1,
	    .successes = 1};
	rc = ld_pg_hosts_parse(s->conninfo, &s->hosts[0], err, errlen);
	for (unsigned k = 0; rc == 0 && k < s->reps.n; k++)
		rc = ld_pg_hosts_parse(s->reps.r[k].conninfo, &s->hosts[k + 1], err, errlen);
	if (rc != 0)
		goto fail;
	rc = -EIO;
	pg = PQconnectdb(s->conninfo);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		/* libpq's message names the host, never the password. */
		set_err(err, errlen, "cannot connect to the primary: %s",
			one_line(pg ? PQerrorMessage(pg) : "out of memory", line, sizeof(line)));
		goto fail;
	}
	PQsetNoticeProcessor(pg, quiet, NULL);
	rc = migrate(pg, err, errlen);
	if (rc != 0)
		goto fail;
	rc = -EIO;
	if (query_int(pg, "SELECT coalesce(max(id), 0) FROM users", &a, err, errlen,
		      "read max ids") != 0 ||
	    query_int(pg,
		      "SELECT greatest((SELECT coalesce(max(id), 0) FROM items),"
		      " (SELECT coalesce(max(id), 0) FROM photos))",
		      &b, err, errlen, "read max ids") != 0)
		goto fail;
	rc = take_id_window(pg, &w, err, errlen);
	if (rc < 0)
		goto fail;
	s->id_window = -1;
	if (rc == 1) {
		s->window_pg = pg; /* holds the window's lock from now on */
		s->id_window = w;
		pg = NULL;
	}
	/* Several app nodes share the database: each makes ids in a window of
	 * its own (migration 4). */
	ld_idgen_init_window(&s->idgen, 0, a > b ? a : b, (unsigned)(w % LD_PG_ID_WINDOWS),
			     LD_PG_ID_WINDOWS);
	rc = 0;
	*out = s;
	goto out;
fail:
	pg_close(s);
out:
	PQfinish(pg);
	return rc;
}

static void pg_close(struct ld_store *s)
{
	if (!s)
		return;
	ld_pg_rep_set_free(&s->reps);
	if (s->window_pg)
		PQfinish(s->window_pg);
	uv_mutex_destroy(&s->idmu);
	for (unsigned k = 0; k <= LD_PG_REPLICAS_MAX; k++)
		ld_pg_hosts_free(s->hosts[k]);
	free(s->conninfo);
	free(s);
}

static void pg_stats(struct ld_store *s, struct ld_store_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->commits = atomic_load(&s->commits);
	out->committed_ops = atomic_load(&s->committed_ops);
	out->errors = atomic_load(&s->errors);
	out->timeouts = atomic_load(&s->timeouts);
	out->queue_depth = atomic_load(&s->depth);
	/* Nothing here needs a restart: a lost primary is retried. */
	out->healthy = true;
}

/* ---- completion ------------------------------------------------------------ */

static void maybe_finish(struct ld_store_conn *c);

static void complete(struct ld_store_conn *c, struct ld_store_op *op, int status)
{
	struct ld_store *s = c->s;

	if (status == LD_STORE_TIMEOUT) {
		atomic_fetch_add_explicit(&s->timeouts, 1, memory_order_relaxed);
		ld_metrics_store_error("timeout");
	} else if (status == LD_STORE_ERROR || status == LD_STORE_UNAVAILABLE) {
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
	}
	op->status = status;
	op->next = NULL;
	c->inflight--;
	atomic_fetch_sub_explicit(&s->depth, 1, memory_order_relaxed);
	op->done(op); /* may submit again */
}

/* ---- parameters and rows ------------------------------------------------- */

static void row_user(const PGresult *r, int row, struct ld_user *u)
{
	u->id = get_i64(r, row, 0);
	get_bytes(r, row, 1, u->handle, sizeof(u->handle));
	get_bytes(r, row, 2, u->display_name, sizeof(u->display_name));
	get_bytes(r, row, 3, u->password_hash, sizeof(u->password_hash));
	u->created_ms = get_i64(r, row, 4);
	u->updated_ms = get_i64(r, row, 5);
	u->version = get_i64(r, row, 6);
}

static void row_item(const PGresult *r, int row, struct ld_item *it)
{
	it->id = get_i64(r, row, 0);
	it->user_id = get_i64(r, row, 1);
	/* Content may hold NUL bytes: the column's length is its length. */
	it->content_len = get_bytes(r, row, 2, it->content, sizeof(it->content));
	it->created_ms = get_i64(r, row, 3);
	it->updated_ms = get_i64(r, row, 4);
	it->version = get_i64(r, row, 5);
}

static int64_t next_id(struct ld_store *s, int64_t now)
{
	int64_t id;

	uv_mutex_lock(&s->idmu);
	id = ld_idgen_next(&s->idgen, now);
	uv_mutex_unlock(&s->idmu);
	return id;
}

/* bind fills p for op and returns its statement; -1 for an op that cannot be
 * sent (a bad limit, oversized content). Creates take their id and times
 * here, and write them into the op (the answer only says "done"). */
static int bind_op(struct ld_store *s, struct ld_store_op *op, struct params *p, int64_t now)
{
	p->n = 0;
	switch (op->kind) {
	case LD_OP_USER_GET:
		p_int(p, op->id);
		return LD_PG_USER_GET;
	case LD_OP_USER_GET_BY_HANDLE:
		p_text(p, op->user.handle, LD_HANDLE_MAX);
		return LD_PG_USER_GET_BY_HANDLE;
	case LD_OP_ITEM_GET:
		p_int(p, op->id);
		return LD_PG_ITEM_GET;
	case LD_OP_ITEM_LIST:
		if (!op->items || op->limit == 0 || op->limit > LD_LIST_MAX)
			return -1;
		p_int(p, op->id);
		p_int(p, op->before_id > 0 ? op->before_id : INT64_MAX);
		p_int(p, (int64_t)op->limit + 1);
		return LD_PG_ITEM_LIST;
	case LD_OP_USER_CREATE:
		op->user.id = next_id(s, now);
		op->user.created_ms = op->user.updated_ms = now;
		op->user.version = 1;
		p_int(p, op->user.id);
		p_text(p, op->user.handle, LD_HANDLE_MAX);
		p_text(p, op->user.display_name, LD_DISPLAY_NAME_MAX);
		p_text(p, op->user.password_hash, LD_PASSWORD_HASH_MAX);
		p_int(p, now);
		return LD_PG_USER_INSERT;
	case LD_OP_USER_UPDATE:
		op->user.updated_ms = now;
		p_int(p, op->id);
		p_text(p, op->user.display_name, LD_DISPLAY_NAME_MAX);
		p_int(p, now);
		return LD_PG_USER_UPDATE;
	case LD_OP_ITEM_CREATE:
		if (op->item.content_len > LD_CONTENT_MAX)
			return -1;
		op->item.id = next_id(s, now);
		op->item.user_id = op->actor_id;
		op->item.created_ms = op->item.updated_ms = now;
		op->item.version = 1;
		p_int(p, op->item.id);
		p_int(p, op->actor_id);
		p_bytes(p, op->item.content, op->item.content_len);
		p_int(p, now);
		return LD_PG_ITEM_INSERT;
	case LD_OP_ITEM_UPDATE:
		if (op->item.content_len > LD_CONTENT_MAX)
			return -1;
		op->item.updated_ms = now;
		p_int(p, op->id);
		p_int(p, op->actor_id);
		p_int(p, op->expect_version);
		p_bytes(p, op->item.content, op->item.content_len);
		p_int(p, now);
		return LD_PG_ITEM_UPDATE;
	case LD_OP_ITEM_DELETE:
		p_int(p, op->id);
		p_int(p, op->actor_id);
		p_int(p, op->expect_version);
		return LD_PG_ITEM_DELETE;
	case LD_OP_IDEM_GET:
		if (!op->idem || op->idem->key_len == 0 || op->idem->key_len > LD_IDEM_KEY_MAX)
			return -1;
		p_int(p, op->actor_id);
		p_bytes(p, op->idem->key, op->idem->key_len);
		p_int(p, now);
		return LD_PG_IDEM_GET;
	case LD_OP_IDEM_REAP:
		if (op->limit == 0 || op->limit > 100000)
			return -1;
		p_int(p, now);
		p_int(p, op->limit);
		return LD_PG_IDEM_REAP;
	default:
		if (!ld__pg_photo_kind(op->kind))
			return -1;
		return ld__pg_photo_bind(op, now,
					 op->kind == LD_OP_PHOTO_CREATE ? next_id(s, now) : 0, p);
	}
}

/* bind_keyed turns the statement bind_op chose for a write with an
 * idempotency key into its keyed form, adding the key's parameters after
 * the write's own (pg_schema.c). -1 for an op that cannot carry a key. */
static int bind_keyed(struct ld_store *s, struct ld_store_op *op, struct params *p, int id,
		      int64_t now)
{
	const struct ld_idem *k = op->idem;

	if (k->key_len == 0 || k->key_len > LD_IDEM_KEY_MAX)
		return -1;
	if (id == LD_PG_ITEM_INSERT)
		id = LD_PG_ITEM_INSERT_IDEM;
	else if (id == LD_PG_ITEM_UPDATE)
		id = LD_PG_ITEM_UPDATE_IDEM;
	else if (id == LD_PG_ITEM_DELETE)
		id = LD_PG_ITEM_DELETE_IDEM;
	else
		return -1;
	if (id == LD_PG_ITEM_DELETE_IDEM)
		p_int(p, now);
	p_bytes(p, k->key, k->key_len);
	p_bytes(p, (const char *)k->fp, LD_IDEM_FP_LEN);
	p_int(p, k->status);
	p_int(p, now + s->idem_retention_ms);
	return id;
}

static bool is_write(enum ld_store_op_kind k)
{
	return k == LD_OP_USER_CREATE || k == LD_OP_USER_UPDATE || k == LD_OP_ITEM_CREATE ||
	       k == LD_OP_ITEM_UPDATE || k == LD_OP_ITEM_DELETE || k == LD_OP_IDEM_REAP ||
	       k == LD_OP_PHOTO_CREATE || k == LD_OP_PHOTO_COMPLETE || k == LD_OP_PHOTO_DELETE;
}

static bool known_kind(enum ld_store_op_kind k)
{
	return (unsigned)k < LD_OP_KIND_COUNT;
}

/* why_unchanged reads item_update/item_delete's answer (see pg_schema.c). */
static int why_unchanged(const PGresult *r, struct ld_store_op *op)
{
	if (PQntuples(r) == 0)
		return LD_STORE_NOT_FOUND;
	if (get_bool(r, 0, 0)) {
		if (op->kind == LD_OP_ITEM_UPDATE) {
			op->item.id = op->id;
			op->item.user_id = op->actor_id;
			op->item.content[op->item.content_len] = '\0';
			op->item.created_ms = get_i64(r, 0, 1);
			op->item.version = get_i64(r, 0, 2);
		}
		return LD_STORE_OK;
	}
	return get_i64(r, 0, 3) != op->actor_id ? LD_STORE_FORBIDDEN : LD_STORE_PRECONDITION;
}

int ld__pg_read_page(const PGresult *r, struct ld_store_op *op, ld__pg_row_fn row)
{
	int n = PQntuples(r), i;

	op->nitems = 0;
	op->has_more = false;
	if (n == 0)
		return LD_STORE_NOT_FOUND;
	for (i = 0; i < n; i++) {
		if (PQgetisnull(r, i, 0))
			break; /* the owner's row of an empty page */
		if (op->nitems == op->limit) {
			op->has_more = true;
			break;
		}
		row(r, i, op, op->nitems++);
	}
	return LD_STORE_OK;
}

static void item_page_row(const PGresult *r, int i, struct ld_store_op *op, unsigned slot)
{
	row_item(r, i, &op->items[slot]);
}

/* create_answer: an item create's status from what its statement said
 * (item_insert, item_insert_many in pg_schema.c). */
static int create_answer(bool inserted, bool owner_exists)
{
	if (inserted)
		return LD_STORE_OK;
	if (!owner_exists)
		return LD_STORE_NOT_FOUND; /* no such owner */
	/* The id is taken: two nodes in one id window (more than
	 * LD_PG_ID_WINDOWS at once). Nothing was inserted, so the write is
	 * refused as "not done, try again", as status_of does for a keyed
	 * create's primary-key refusal. */
	ld_log_event("error", "store: statement failed",
		     (const char *const[]){"op", "create: id clash", "sqlstate", "23505", "detail",
					   "the item's id is taken", NULL});
	ld_metrics_store_error("postgres");
	return LD_STORE_BUSY;
}

/* read_rows turns a statement's tuples into the op's outputs. */
static int read_rows(const PGresult *r, struct ld_store_op *op)
{
	int n = PQntuples(r);

	if (ld__pg_photo_kind(op->kind))
		return ld__pg_photo_rows(r, op);
	switch (op->kind) {
	case LD_OP_USER_GET:
	case LD_OP_USER_GET_BY_HANDLE:
		if (n == 0)
			return LD_STORE_NOT_FOUND;
		row_user(r, 0, &op->user);
		return LD_STORE_OK;
	case LD_OP_ITEM_GET:
		if (n == 0)
			return LD_STORE_NOT_FOUND;
		row_item(r, 0, &op->item);
		return LD_STORE_OK;
	case LD_OP_ITEM_LIST:
		return ld__pg_read_page(r, op, item_page_row);
	case LD_OP_USER_UPDATE:
		if (n == 0)
			return LD_STORE_NOT_FOUND;
		op->user.id = op->id;
		get_bytes(r, 0, 0, op->user.handle, sizeof(op->user.handle));
		get_bytes(r, 0, 1, op->user.password_hash, sizeof(op->user.password_hash));
		op->user.created_ms = get_i64(r, 0, 2);
		op->user.version = get_i64(r, 0, 3);
		return LD_STORE_OK;
	case LD_OP_ITEM_UPDATE:
	case LD_OP_ITEM_DELETE:
		return why_unchanged(r, op);
	case LD_OP_IDEM_GET:
		if (n == 0)
			return LD_STORE_NOT_FOUND;
		memset(op->idem->fp, 0, sizeof(op->idem->fp));
		if (PQgetlength(r, 0, 0) == LD_IDEM_FP_LEN)
			memcpy(op->idem->fp, PQgetvalue(r, 0, 0), LD_IDEM_FP_LEN);
		op->idem->status = (int)get_i64(r, 0, 1);
		op->item.id = get_i64(r, 0, 2);
		op->item.user_id = op->actor_id;
		op->item.content_len =
		    get_bytes(r, 0, 3, op->item.content, sizeof(op->item.content));
		op->item.created_ms = get_i64(r, 0, 4);
		op->item.updated_ms = get_i64(r, 0, 5);
		op->item.version = get_i64(r, 0, 6);
		return LD_STORE_OK;
	case LD_OP_IDEM_REAP:
		op->nitems = (unsigned)strtoul(PQcmdTuples((PGresult *)r), NULL, 10);
		return LD_STORE_OK;
	case LD_OP_ITEM_CREATE:
		if (op->idem)
			return LD_STORE_OK; /* the keyed form: COMMAND_OK */
		/* (inserted, owner exists): see item_insert in pg_schema.c. */
		if (n != 1)
			return LD_STORE_ERROR;
		return create_answer(get_i64(r, 0, 0) == 1, get_bool(r, 0, 1));
	default: /* the user create: COMMAND_OK */
		return LD_STORE_OK;
	}
}

static void log_result_error(const PGresult *r, const char *what)
{
	char line[256];
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *kv[] = {"op",	what,
			    "sqlstate", state ? state : "",
			    "detail",	one_line(PQresultErrorMessage(r), line, sizeof(line)),
			    NULL};

	ld_log_event("error", "store: statement failed", kv);
	ld_metrics_store_error("postgres");
}

/* id_clash says whether a unique violation is on a row's id (its primary
 * key), not on a handle or an idempotency key. */
static bool id_clash(const PGresult *r)
{
	const char *c = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);

	return c && (strcmp(c, "users_pkey") == 0 || strcmp(c, "items_pkey") == 0 ||
		     strcmp(c, "photos_pkey") == 0);
}

/* status_of maps one statement result to an op status. */
static int status_of(const PGresult *r, struct ld_store_op *op)
{
	const char *state;

	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		return read_rows(r, op);
	case PGRES_FATAL_ERROR:
		state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state && (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0)) {
			/* The server is shutting down or cut the session (a
			 * fast shutdown answers the statement it cuts so): a
			 * database that went away, never a 500. A write so
			 * answered was not made (its statement failed). */
			log_result_error(r, "server going away");
			return LD_STORE_UNAVAILABLE;
		}
		if (state && strcmp(state, "23505") == 0 && id_clash(r)) {
			/* Two nodes in one id window (more than LD_PG_ID_WINDOWS
			 * at once) made the same id: nothing was committed, so
			 * the write is refused as "not done, try again". */
			log_result_error(r, "create: id clash");
			return LD_STORE_BUSY;
		}
		if (state && strcmp(state, "23505") == 0 && op->kind == LD_OP_USER_CREATE)
			return LD_STORE_CONFLICT; /* the handle; ids never repeat */
		if (state && strcmp(state, "23503") == 0 && op->kind == LD_OP_ITEM_CREATE)
			return LD_STORE_NOT_FOUND; /* no such owner */
		if (state && strcmp(state, "23505") == 0 && op->idem)
			return LD_STORE_CONFLICT; /* the key is kept already (postgres.h) */
		log_result_error(r, is_write(op->kind) ? "write" : "read");
		return LD_STORE_ERROR;
	default:
		log_result_error(r, "pipeline");
		return LD_STORE_ERROR;
	}
}

/* ---- connections: state, loss, backoff ----------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *h);
static void arm_probes(struct ld_store_conn *c, unsigned target);
static int send_aux(struct pgc *p, int aux, enum ld_pg_rep_sql stmt);
static void start_connect(struct pgc *p);
static void drain(struct pgc *p);
static void dispatch_waiting(struct ld_store_conn *c);

/* release drops one of the things that keep c alive (its handles, a host
 * lookup under way) and frees it after the last. */
static void release(struct ld_store_conn *c)
{
	unsigned i;

	if (--c->handles > 0)
		return;
	for (i = 0; i < c->npgc; i++)
		PQfinish(c->pgc[i].pg);
	free(c->pgc);
	free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct ld_store_conn *c = h->data;

	if ((void *)h != (void *)&c->expire && (void *)h != (void *)&c->sample &&
	    (void *)h != (void *)&c->prep &&
	    !(h >= (uv_handle_t *)c->pgc && h < (uv_handle_t *)(c->pgc + c->npgc)))
		free(h); /* a poll handle */
	release(c);
}

static void drop_poll(struct pgc *p)
{
	if (!p->poll)
		return;
	uv_poll_stop(p->poll);
	uv_close((uv_handle_t *)p->poll, on_handle_closed);
	p->poll = NULL;
	p->events = 0;
}

/* watch makes the poll handle wait for events on the connection's socket,
 * re-made when libpq moved to another socket (multi-host conninfo). */
static int watch(struct pgc *p, int events)
{
	int fd = PQsocket(p->pg);

	if (fd < 0)
		return -EBADF;
	if (p->poll && (fd != p->fd))
		drop_poll(p);
	if (!p->poll) {
		p->poll = malloc(sizeof(*p->poll));
		if (!p->poll)
			return -ENOMEM;
		if (uv_poll_init(p->c->loop, p->poll, fd) != 0) {
			free(p->poll);
			p->poll = NULL;
			return -EIO;
		}
		p->poll->data = p->c;
		p->c->handles++;
		p->fd = fd;
		p->events = 0;
	}
	if (events != p->events) {
		p->events = events;
		uv_poll_start(p->poll, events, on_poll);
	}
	return 0;
}

static struct pgc *pick(struct ld_store_conn *c);
static struct pgc *pick_target(struct ld_store_conn *c, unsigned target);
static void route_op(struct ld_store_conn *c, struct ld_store_op *op, bool primary_only);

/* rep_note tells the routing whether replica p->target has a ready
 * connection (the primary's readiness is note_ready's). */
static void rep_note(struct pgc *p)
{
	if (p->target && !p->c->closing)
		ld_pg_rep_up(&p->c->rl, p->target, pick_target(p->c, p->target) != NULL);
}

/* note_ready keeps c->ready and the store's count of unready loops in step
 * with whether a connection of c's pool is ready. A closing conn leaves the
 * count. */
static void note_ready(struct ld_store_conn *c)
{
	bool ready = c->closing || pick(c) != NULL;

	if (ready == c->ready)
		return;
	c->ready = ready;
	if (ready)
		atomic_fetch_sub(&c->s->unready_loops, 1);
	else
		atomic_fetch_add(&c->s->unready_loops, 1);
}

static bool pool_down(const struct ld_store_conn *c)
{
	unsigned i;

	for (i = 0; i < c->npool; i++)
		if (c->pgc[i].state != PGC_DOWN)
			return false;
	return true;
}

/* fail_waiting answers every waiting op UNAVAILABLE (no connection left,
 * or the conn is closing): none of them was sent. */
static void fail_waiting(struct ld_store_conn *c)
{
	struct ld_store_op *op;

	while ((op = c->wait_head)) {
		c->wait_head = op->next;
		if (!c->wait_head)
			c->wait_tail = NULL;
		complete(c, op, LD_STORE_UNAVAILABLE);
	}
	while ((op = c->bq_head)) {
		c->bq_head = op->next;
		if (!c->bq_head)
			c->bq_tail = NULL;
		complete(c, op, LD_STORE_UNAVAILABLE);
	}
}

static void on_prep(uv_prepare_t *h);

/* bq_push queues an item create for the next write batch (prep sends it).
 * A closing conn sends nothing more: the op was not made. */
static void bq_push(struct ld_store_conn *c, struct ld_store_op *op)
{
	if (c->closing) {
		complete(c, op, LD_STORE_UNAVAILABLE);
		return;
	}
	op->next = NULL;
	if (c->bq_tail)
		c->bq_tail->next = op;
	else
		c->bq_head = op;
	c->bq_tail = op;
	uv_prepare_start(&c->prep, on_prep);
}

/* wb_answer answers every op of a committed batch with its statement's
 * answer; pos (0: none) is the token of those it made. */
static void wb_answer(struct ld_store_conn *c, struct wbatch *wb, uint64_t pos)
{
	for (unsigned i = 0; i < wb->n; i++) {
		if (wb->st[i] == LD_STORE_OK)
			wb->ops[i]->commit_pos = pos;
		complete(c, wb->ops[i], wb->st[i]);
	}
	free(wb);
}

/* wb_rolled_back ends a batch known not to have committed (a statement of
 * it failed, or its Sync was never sent): the failed op gets its answer,
 * and the others, not made, go in a later batch. Each round answers one op
 * at least, so this ends. lost: the connection went; a statement error then
 * is the server cutting the session (a shutdown, a terminated backend),
 * answered UNAVAILABLE as a write alone is, known not made. */
static void wb_rolled_back(struct ld_store_conn *c, struct wbatch *wb, bool lost)
{
	for (unsigned i = 0; i < wb->n; i++) {
		if (wb->failed && i == wb->failed_at)
			complete(c, wb->ops[i],
				 lost && wb->st[i] == LD_STORE_ERROR ? LD_STORE_UNAVAILABLE
								     : wb->st[i]);
		else
			bq_push(c, wb->ops[i]);
	}
	free(wb);
}

/* wb_lost ends a batch whose connection was lost before its COMMIT's answer
 * came. If no statement failed and its Sync was sent, it may have
 * committed: each op whose statement made its row is UNAVAILABLE with
 * outcome_unknown, never resent; one whose statement said it made nothing
 * (no such owner, an id clash) has that answer whatever became of the
 * transaction. */
static void wb_lost(struct ld_store_conn *c, struct unit *u)
{
	struct wbatch *wb = u->wb;

	u->wb = NULL;
	if (wb->failed || wb->unsent) {
		wb_rolled_back(c, wb, true);
		return;
	}
	for (unsigned i = 0; i < wb->n; i++) {
		if (wb->read && wb->st[i] != LD_STORE_OK) {
			complete(c, wb->ops[i], wb->st[i]);
			continue;
		}
		wb->ops[i]->outcome_unknown = true;
		complete(c, wb->ops[i], LD_STORE_UNAVAILABLE);
	}
	free(wb);
}

/* backoff_ms: full jitter, a random wait in [0, min(cap, base * 2^n)]. */
static uint64_t backoff_ms(struct ld_store *s, unsigned attempt)
{
	uint64_t cap = BACKOFF_BASE_MS, x = atomic_load(&s->rng);

	while (attempt-- > 0 && cap < BACKOFF_CAP_MS)
		cap *= 2;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	atomic_store(&s->rng, x);
	return x % (cap + 1);
}

/* lose ends a connection: units in flight are answered UNAVAILABLE, and a
 * new attempt is scheduled. A write among them may have committed (its Sync
 * was sent), so it is marked outcome_unknown and never resent, unless its
 * statement had already failed (its transaction cannot commit). why is for
 * the log. */
static void lose(struct pgc *p, const char *why)
{
	struct ld_store_conn *c = p->c;
	struct unit *u, *next;
	char line[256];

	if (p->state == PGC_DOWN)
		return;
	if (!p->logged_down) {
		char k[16];
		const char *kv[] = {"detail",
				    one_line(why ? why : PQerrorMessage(p->pg), line, sizeof(line)),
				    "replica", k, NULL};

		snprintf(k, sizeof(k), "%u", p->target);
		if (p->target)
			ld_log_event("warn", "store: connection to a replica lost or refused", kv);
		else
			ld_log_event("error", "store: connection to the primary lost or refused",
				     (const char *const[]){kv[0], kv[1], NULL});
		p->logged_down = true;
	}
	if (!c->closing) {
		ld_pg_rep_failed(&c->rl, p->target, uv_hrtime(),
				 one_line(why ? why : PQerrorMessage(p->pg), line, sizeof(line)));
		arm_probes(c, p->target); /* the others still up probe for it */
	}
	drop_poll(p);
	PQfinish(p->pg);
	p->pg = NULL;
	p->state = PGC_DOWN;
	p->resolving = false; /* a lookup's late answer is ignored */
	u = p->head;
	p->head = p->tail = NULL;
	p->open = NULL;
	p->nopen = 0;
	p->nunits = 0;
	p->batching = false;
	uv_timer_stop(&p->timer);
	if (!c->closing) {
		uv_timer_start(&p->timer, on_timer, backoff_ms(c->s, p->attempt), 0);
		p->attempt++;
	}
	rep_note(p);
	for (; u; u = next) {
		next = u->next;
		if (u->aux == AUX_SAMPLE)
			c->sampling[p->target] = false;
		if (u->wb && u->committed) {
			/* Committed, its position query lost: no token. */
			wb_answer(c, u->wb, 0);
		} else if (u->wb) {
			wb_lost(c, u);
		} else if (u->op && p->target && !u->write) {
			route_op(c, u->op, true); /* a read: the primary answers it */
		} else if (u->op && u->committed) {
			complete(c, u->op, LD_STORE_OK);
		} else if (u->op) {
			bool failed = (u->cmd > 0 || u->got) && !u->ran;

			u->op->outcome_unknown = u->write && !failed;
			complete(c, u->op, LD_STORE_UNAVAILABLE);
		}
		free(u);
	}
	note_ready(c);
	if (pool_down(c))
		fail_waiting(c);
	maybe_finish(c);
}

static int flush_out(struct pgc *p)
{
	int r = PQflush(p->pg);

	if (r < 0)
		return -EIO;
	/* 1: more to send; read meanwhile, or client and server may both
	 * wait for the other to read. */
	return watch(p, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void push_unit(struct pgc *p, struct unit *u)
{
	u->next = NULL;
	if (p->tail)
		p->tail->next = u;
	else
		p->head = u;
	p->tail = u;
	if (u->op)
		p->nunits++;
	if (u->wb)
		p->nunits += u->wb->n;
}

/* The primary's timeline: the first 8 hex digits of the name of the WAL
 * file it writes to, which pg_walfile_name() takes from the timeline WAL
 * is inserted on now (pg_control_checkpoint()'s lags until the checkpoint
 * after a promotion). 0 on a node in recovery, where it would fail. */
static const char timeline_sql[] =
    "SELECT CASE WHEN pg_is_in_recovery() THEN 0 ELSE ('x' || "
    "substr(pg_walfile_name(pg_current_wal_flush_lsn()), 1, 8))::bit(32)::bigint END"
    " AS ladder_timeline";

/* note_timeline takes the answer to timeline_sql (text format); the other
 * row of a setup (the id window's lock) is told apart by its column. */
static void note_timeline(struct pgc *p, const PGresult *r)
{
	long long v;
	char *end;

	if (p->target || PQntuples(r) != 1 || PQnfields(r) != 1 ||
	    strcmp(PQfname(r, 0), "ladder_timeline") != 0 || PQgetisnull(r, 0, 0))
		return;
	v = strtoll(PQgetvalue(r, 0, 0), &end, 10);
	if (*end || v <= 0)
		return;
	atomic_store(&p->c->s->primary_timeline, (uint64_t)v);
}

static Oid oid_of(enum ld_pg_type t)
{
	switch (t) {
	case LD_PG_INT8:
		return OID_INT8;
	case LD_PG_TEXT:
		return OID_TEXT;
	case LD_PG_INT8_ARRAY:
		return LD_PG_OID_INT8A;
	case LD_PG_BYTEA_ARRAY:
		return LD_PG_OID_BYTEAA;
	default:
		return OID_BYTEA;
	}
}

/* setup prepares every statement in one pipelined round trip; a connection
 * to the primary reads its timeline in the same one. */
static void setup(struct pgc *p)
{
	struct unit *u = calloc(1, sizeof(*u));
	Oid types[LD_PG_PARAMS_MAX];
	char lock_sql[96] = "";
	unsigned i, j;

	if (!u)
		goto fail;
	u->setup = true;
	/* The primary's connections read its timeline too (timeline_sql). */
	u->ncmds = LD_PG_SQL_COUNT + LD_PG_REP_SQL_COUNT + (p->target ? 0 : 1);
	if (p->target == 0 && p->c->s->id_window >= 0) {
		/* Hold the node's id window on the primary too (take_id_window):
		 * after a failover this is what tells the new primary. Shared, so
		 * every connection of the node may; "try", so setup never waits. */
		snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_try_advisory_lock_shared(%d, %lld)",
			 LD_PG_ID_WINDOW_LOCK, (long long)p->c->s->id_window);
		u->ncmds++;
	}
	if (PQsetnonblocking(p->pg, 1) != 0 || PQenterPipelineMode(p->pg) != 1) {
		free(u);
		goto fail;
	}
	for (i = 0; i < LD_PG_SQL_COUNT; i++) {
		for (j = 0; j < ld_pg_stmts[i].nparams; j++)
			types[j] = oid_of(ld_pg_stmts[i].types[j]);
		if (PQsendPrepare(p->pg, ld_pg_stmts[i].name, ld_pg_stmts[i].sql,
				  (int)ld_pg_stmts[i].nparams, types) != 1) {
			free(u);
			goto fail;
		}
	}
	for (i = 0; i < LD_PG_REP_SQL_COUNT; i++) {
		if (PQsendPrepare(p->pg, ld_pg_rep_stmts[i].name, ld_pg_rep_stmts[i].sql, 0,
				  NULL) != 1) {
			free(u);
			goto fail;
		}
	}
	if (lock_sql[0] && PQsendQueryParams(p->pg, lock_sql, 0, NULL, NULL, NULL, NULL, 0) != 1) {
		free(u);
		goto fail;
	}
	if (!p->target &&
	    PQsendQueryParams(p->pg, timeline_sql, 0, NULL, NULL, NULL, NULL, 0) != 1) {
		free(u);
		goto fail;
	}
	if (PQpipelineSync(p->pg) != 1) {
		free(u);
		goto fail;
	}
	push_unit(p, u);
	p->state = PGC_SETUP;
	if (flush_out(p) != 0)
		goto fail;
	return;
fail:
	lose(p, NULL);
}

static void connect_step(struct pgc *p)
{
	PostgresPollingStatusType st = PQconnectPoll(p->pg);

	/* libpq may have closed the socket and opened another (the next host
	 * of a multi-host conninfo), quite possibly under the same number:
	 * the kernel forgot the old registration, so watch afresh after every
	 * step of a connect (a handful per connection). */
	drop_poll(p);
	switch (st) {
	case PGRES_POLLING_READING:
		if (watch(p, UV_READABLE) != 0)
			lose(p, "cannot watch the socket");
		break;
	case PGRES_POLLING_WRITING:
		if (watch(p, UV_WRITABLE) != 0)
			lose(p, "cannot watch the socket");
		break;
	case PGRES_POLLING_OK:
		setup(p);
		break;
	default:
		lose(p, NULL);
		break;
	}
}

/* connect_with starts libpq's connect: with the target's conninfo as it
 * is, or with kw/vals from a host lookup (every host with its address, so
 * libpq has nothing to resolve). */
static void connect_with(struct pgc *p, const char *const *kw, const char *const *vals)
{
	struct ld_store_conn *c = p->c;

	p->pg =
	    kw ? PQconnectStartParams(kw, vals, 1)
	       : PQconnectStart(p->target ? c->s->reps.r[p->target - 1].conninfo : c->s->conninfo);
	if (!p->pg || PQstatus(p->pg) == CONNECTION_BAD) {
		lose(p, NULL);
		return;
	}
	PQsetNoticeProcessor(p->pg, quiet, NULL);
	/* Before the first PQconnectPoll, libpq wants the socket writable. */
	if (watch(p, UV_WRITABLE) != 0)
		lose(p, "cannot watch the socket");
}

static void on_resolved(void *arg, unsigned tag, int status, const char *const *kw,
			const char *const *vals, const char *err)
{
	struct pgc *p = arg;
	struct ld_store_conn *c = p->c;

	if (p->resolving && tag == p->gen && !c->closing) {
		p->resolving = false;
		if (status != 0)
			lose(p, err);
		else
			connect_with(p, kw, vals);
	}
	release(c);
}

/* start_connect makes one connection attempt, bounded by connect_timeout
 * from here: PQconnectStart would resolve host names itself, blocking the
 * loop, so a conninfo that names hosts without hostaddr has them looked up
 * on the thread pool first (pg_resolve.h). */
static void start_connect(struct pgc *p)
{
	struct ld_store_conn *c = p->c;
	const struct ld_pg_hosts *hosts = c->s->hosts[p->target];

	p->state = PGC_CONNECTING;
	uv_timer_start(&p->timer, on_timer, c->s->connect_timeout_ms, 0);
	if (!hosts) {
		connect_with(p, NULL, NULL);
		return;
	}
	p->resolving = true;
	c->handles++; /* c stays until the lookup answers */
	if (ld_pg_resolve(c->loop, hosts, p, ++p->gen, on_resolved) != 0) {
		c->handles--;
		lose(p, "out of memory for a host lookup");
	}
}

/* arm_probe: while p's node has its breaker open, its ready connection
 * wakes when the open period is over (the timer is idle while ready). */
static void arm_probe(struct pgc *p)
{
	uint64_t left;

	if (p->state == PGC_READY && !p->c->closing &&
	    ld_pg_rep_open_left(&p->c->rl, p->target, uv_hrtime(), &left))
		uv_timer_start(&p->timer, on_timer, left / 1000000 + 1, 0);
}

/* probe sends a position query on ready p, the trial of its node's breaker
 * once the open period is over: its answer closes the breaker
 * (pg_replica.h), with traffic or without. */
static void probe(struct pgc *p)
{
	struct ld_store_conn *c = p->c;
	uint64_t left;
	int rc;

	if (!ld_pg_rep_open_left(&c->rl, p->target, uv_hrtime(), &left))
		return; /* closed, or half-open with a trial out: its outcome decides */
	if (left) {
		arm_probe(p); /* a failure since moved the end */
		return;
	}
	if (c->sampling[p->target])
		return; /* a query is out already: its answer is the trial */
	rc = send_aux(p, AUX_SAMPLE, p->target ? LD_PG_REP_REPLAY_LSN : LD_PG_REP_FLUSH_LSN);
	if (rc == -ENOMEM)
		return;
	if (rc == 0) {
		c->sampling[p->target] = true;
		c->sample_ns[p->target] = uv_hrtime();
		rc = flush_out(p);
	}
	if (rc != 0)
		lose(p, NULL);
}

static void arm_probes(struct ld_store_conn *c, unsigned target)
{
	unsigned i;

	for (i = target * c->npool; i < (target + 1) * c->npool && i < c->npgc; i++)
		arm_probe(&c->pgc[i]);
}

static void on_timer(uv_timer_t *h)
{
	struct pgc *p = h->data;

	if (p->state == PGC_DOWN) {
		if (!p->c->closing)
			start_connect(p);
	} else if (p->state == PGC_CONNECTING || p->state == PGC_SETUP) {
		lose(p, "connection attempt timed out");
	} else if (!p->c->closing) {
		probe(p);
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct ld_store_conn *c = h->data;
	struct pgc *p = NULL;
	unsigned i;

	for (i = 0; i < c->npgc; i++)
		if (c->pgc[i].poll == h)
			p = &c->pgc[i];
	if (!p)
		return;
	if (status < 0) {
		/* POLLERR (libuv says EBADF and stops the handle): a failed
		 * connect, a reset. libpq finds out what happened when it
		 * reads the socket: a multi-host connect goes to the next host,
		 * a live connection is lost with libpq's own reason. */
		p->events = 0;
		events = UV_READABLE | UV_WRITABLE;
	}
	if (p->state == PGC_CONNECTING) {
		connect_step(p);
		return;
	}
	if (events & UV_WRITABLE) {
		if (flush_out(p) != 0) {
			lose(p, NULL);
			return;
		}
	}
	if (events & UV_READABLE) {
		if (PQconsumeInput(p->pg) != 1) {
			lose(p, NULL);
			return;
		}
		drain(p);
	}
}

/* ---- results ------------------------------------------------------------- */

/* aux_done takes a position query's answer: a write's commit position (the
 * op is answered now, OK: it committed), or a sample of a node. */
static void aux_done(struct pgc *p, struct unit *u)
{
	struct ld_store_conn *c = p->c;
	uint64_t now = uv_hrtime();

	if (u->aux == AUX_SAMPLE) {
		c->sampling[p->target] = false;
		if (p->target)
			ld_pg_rep_replayed(&c->rl, p->target, u->pos, now);
		else
			ld_pg_rep_primary_at(&c->rl, u->pos, now);
		return;
	}
	ld_pg_rep_primary_at(&c->rl, u->pos, now);
	if (u->wb) {
		/* A write batch's one commit position is every write's token. */
		struct wbatch *wb = u->wb;

		u->wb = NULL;
		wb_answer(c, wb, u->pos);
	} else if (u->op) {
		u->op->commit_pos = u->pos;
		complete(c, u->op, LD_STORE_OK);
	}
}

/* batch_done finishes a write batch at its Sync, the COMMIT of the one
 * transaction that held every op of it. Committed (no statement failed, the
 * COMMIT returned): the ops are answered with the commit position the next
 * unit reads (same flush), each with its own statement's answer. A
 * statement failed: nothing committed, the failed op is answered and the
 * others go again. The COMMIT itself failed: every op is ERROR, none
 * made. */
static void batch_done(struct pgc *p, struct unit *u)
{
	struct ld_store_conn *c = p->c;
	struct ld_store *s = c->s;
	struct wbatch *wb = u->wb;
	bool committed = u->status == LD_STORE_OK && !wb->failed && u->cmd >= u->ncmds;
	uint64_t now = uv_hrtime(), sent = wb->ops[0]->t_commit_ns;

	u->wb = NULL;
	p->batching = false;
	if (!committed) {
		if (wb->failed) {
			wb_rolled_back(c, wb, false);
		} else {
			for (unsigned i = 0; i < wb->n; i++)
				wb->st[i] = LD_STORE_ERROR;
			wb_answer(c, wb, 0);
		}
	} else {
		unsigned made = 0;

		for (unsigned i = 0; i < wb->n; i++) {
			wb->ops[i]->t_committed_ns = now;
			made += wb->st[i] == LD_STORE_OK;
		}
		/* Counted as the writes it made, as a write alone that made
		 * nothing (no such owner) is not counted. */
		if (made) {
			atomic_fetch_add_explicit(&s->commits, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&s->committed_ops, made, memory_order_relaxed);
			ld_metrics_write_batch(made, now - sent);
			ld_obs_writer_batch(made, true, now, sent, sent, now, now);
		}
		if (u->follow && u->next && u->next->aux == AUX_LSN) {
			u->next->wb = wb;
			u->next->write = true;
			u->next->committed = true;
			p->nunits += wb->n;
		} else {
			wb_answer(c, wb, 0);
		}
	}
	/* The connection is free for the next batch: what queued meanwhile. */
	if (c->bq_head)
		uv_prepare_start(&c->prep, on_prep);
}

/* unit_done finishes the head unit at its Sync. */
static void unit_done(struct pgc *p, struct unit *u)
{
	struct ld_store_conn *c = p->c;
	struct ld_store *s = c->s;

	p->head = u->next;
	if (!p->head)
		p->tail = NULL;
	if (u->op)
		p->nunits--;
	if ((!u->setup || u->status == LD_STORE_OK) && !u->timed_out)
		ld_pg_rep_answered(&c->rl, p->target, uv_hrtime());
	if (u->wb) {
		p->nunits -= u->wb->n;
		if (!u->aux) {
			batch_done(p, u);
			free(u);
			return;
		}
	}
	if (u->setup) {
		int st = u->status;

		free(u);
		if (st != LD_STORE_OK) {
			lose(p, "preparing the statements failed");
			return;
		}
		uv_timer_stop(&p->timer); /* the connect timeout */
		p->state = PGC_READY;
		p->attempt = 0;
		if (p->logged_down)
			ld_log_event("info",
				     p->target ? "store: connected to a replica"
					       : "store: connected to the primary",
				     NULL);
		p->logged_down = false;
		rep_note(p);
		note_ready(c);
		arm_probe(p); /* the breaker still open: its trial, later */
		dispatch_waiting(c);
		if (c->bq_head && !p->target)
			uv_prepare_start(&c->prep, on_prep);
		return;
	}
	if (u->aux) {
		aux_done(p, u);
		free(u);
		return;
	}
	if (u->op) {
		if (u->write && u->ran && u->cmd >= u->ncmds) {
			uint64_t now = uv_hrtime();

			/* Each write is a transaction of its own: a batch of one,
			 * sent at t_commit_ns, committed now. No writer thread
			 * is busy meanwhile (taken = now adds no busy time). */
			u->op->t_committed_ns = now;
			atomic_fetch_add_explicit(&s->commits, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&s->committed_ops, 1, memory_order_relaxed);
			ld_metrics_write_batch(1, now - u->op->t_commit_ns);
			ld_obs_writer_batch(1, true, now, u->op->t_commit_ns, u->op->t_commit_ns,
					    now, now);
		}
		if (u->follow && u->status == LD_STORE_OK && u->next && u->next->aux == AUX_LSN) {
			/* Committed: the op is answered with the flush
			 * position the next unit reads (the same round trip). */
			u->next->op = u->op;
			u->next->write = true;
			u->next->committed = true;
			p->nunits++;
		} else if (u->resend) {
			route_op(c, u->op, false);
		} else if (u->retry) {
			route_op(c, u->op, true);
		} else {
			complete(c, u->op, u->status);
		}
	}
	free(u);
}

/* wb_rows reads item_insert_many's answer: row (ordinal, inserted, owner
 * exists) per op. An op without its row (never: one per array element)
 * keeps ERROR. */
static void wb_rows(struct wbatch *wb, const PGresult *r)
{
	int n = PQntuples(r);

	for (int row = 0; row < n && PQnfields(r) == 3; row++) {
		int64_t ord = get_i64(r, row, 0);

		if (ord < 1 || ord > (int64_t)wb->n)
			continue;
		wb->st[ord - 1] = create_answer(get_bool(r, row, 1), get_bool(r, row, 2));
	}
	wb->read = true;
}

/* drain takes every result libpq has read, in order. */
static void drain(struct pgc *p)
{
	struct unit *u;
	PGresult *r;

	while (p->pg && (u = p->head)) {
		if (u->nosync && u->cmd >= u->ncmds) {
			/* A batched read without a Sync of its own: done at
			 * its statement's end (it may have ended while it was
			 * its batch's last, before the next joined). */
			unit_done(p, u);
			maybe_finish(p->c);
			continue;
		}
		if (PQisBusy(p->pg))
			break;
		r = PQgetResult(p->pg);
		if (!r) {
			if (!u->got)
				break; /* nothing more yet */
			u->got = false;
			u->cmd++;
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			unit_done(p, u);
			maybe_finish(p->c);
			continue;
		}
		u->got = true;
		if (u->setup) {
			/* Prepares answer COMMAND_OK; the window's lock and the
			 * timeline a row each. */
			if (PQresultStatus(r) == PGRES_TUPLES_OK) {
				note_timeline(p, r);
			} else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				log_result_error(r, "prepare");
				u->status = LD_STORE_ERROR;
			}
		} else if (u->cmd >= u->ncmds) {
			/* An error at the Sync: the COMMIT itself failed. */
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				log_result_error(r, "commit");
				u->status = LD_STORE_ERROR;
			}
		} else if (u->aux) {
			if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
			    !PQgetisnull(r, 0, 0))
				u->pos = (uint64_t)get_i64(r, 0, 0);
		} else if (u->wb) {
			/* A write batch's one statement: a row per op. It
			 * cannot fail for one op's reasons; when it fails (a
			 * shutdown, a full disk) the transaction rolls back and
			 * its first op takes the answer, as if its statement
			 * alone had failed: the others go in a later batch. */
			struct wbatch *wb = u->wb;

			if (PQresultStatus(r) == PGRES_TUPLES_OK) {
				wb_rows(wb, r);
			} else if (!wb->failed) {
				wb->failed = true;
				wb->failed_at = 0;
				wb->st[0] = status_of(r, wb->ops[0]);
			}
		} else if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED && !u->write) {
			/* A read skipped because a read before it in its batch
			 * failed: it changes nothing, so it goes again, routed
			 * as any read. */
			u->resend = true;
		} else if (u->op && p->target && PQresultStatus(r) != PGRES_TUPLES_OK) {
			/* A replica's error (a conflict with recovery, a
			 * shutdown): the read is the primary's to answer. */
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

			ld_log_event("warn",
				     "store: a read failed on a replica; sent to the primary",
				     (const char *const[]){"sqlstate", state ? state : "", NULL});
			u->retry = true;
		} else if (u->op && u->cmd + 1 < u->ncmds) {
			/* A statement before the op's own (a keyed write's
			 * clean-up): the op's fails with it. */
			if (PQresultStatus(r) != PGRES_COMMAND_OK &&
			    PQresultStatus(r) != PGRES_TUPLES_OK && !u->aborted) {
				log_result_error(r, "write");
				u->aborted = true;
				u->status = LD_STORE_ERROR;
			}
		} else if (u->op && !u->aborted) {
			u->ran = PQresultStatus(r) == PGRES_TUPLES_OK ||
				 PQresultStatus(r) == PGRES_COMMAND_OK;
			u->status = status_of(r, u->op);
			/* libpq's own error for a connection that broke under
			 * the statement (no SQLSTATE): gone, not a bug. */
			if (u->status == LD_STORE_ERROR && !u->ran &&
			    PQstatus(p->pg) == CONNECTION_BAD)
				u->status = LD_STORE_UNAVAILABLE;
		}
		PQclear(r);
	}
	if (p->pg && PQstatus(p->pg) == CONNECTION_BAD)
		lose(p, NULL);
}

/* ---- submit, deadlines --------------------------------------------------- */

static void on_expire(uv_timer_t *h);

static void arm_expire(struct ld_store_conn *c, uint64_t due)
{
	uint64_t now;

	if (c->expire_at_ns && c->expire_at_ns <= due)
		return;
	now = uv_hrtime();
	c->expire_at_ns = due;
	uv_timer_start(&c->expire, on_expire, due > now ? (due - now) / 1000000 + 1 : 0, 0);
}

/* send_aux queues a position query and its Sync on p (not flushed): 0,
 * -ENOMEM or -EIO with nothing queued, -EPIPE when the Sync failed. */
static int close_batch(struct pgc *p);

static int send_aux(struct pgc *p, int aux, enum ld_pg_rep_sql stmt)
{
	struct unit *a;

	if (close_batch(p) != 0)
		return -EIO;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->aux = aux;
	a->ncmds = 1;
	a->status = LD_STORE_OK;
	if (PQsendQueryPrepared(p->pg, ld_pg_rep_stmts[stmt].name, 0, NULL, NULL, NULL, 1) != 1) {
		free(a);
		return -EIO;
	}
	push_unit(p, a);
	return PQpipelineSync(p->pg) == 1 ? 0 : -EPIPE;
}

/* close_batch ends p's open read batch, if any, with its Sync (not
 * flushed). 0, or -EIO: the connection failed (its reads are on it). */
static int close_batch(struct pgc *p)
{
	if (!p->open)
		return 0;
	p->open = NULL;
	p->nopen = 0;
	return PQpipelineSync(p->pg) == 1 ? 0 : -EIO;
}

/* batchable: the ops that go in write batches. An item create's statement
 * cannot fail for its own reasons (item_insert in pg_schema.c: a missing
 * owner or a taken id inserts no row), so one item never aborts its
 * neighbours' transaction. That statement was chosen over a SAVEPOINT per
 * item, which would cost two more statements each (SAVEPOINT, RELEASE) and
 * a subtransaction on the server. An item insert locks only its owner's
 * row in KEY SHARE, which another batch's inserts share, so two batches
 * never wait for each other. Keyed creates go alone: their key may be kept
 * already, a failure that would roll the batch back (their one statement
 * with its CTE is a transaction of its own, as before). */
static bool batchable(const struct ld_store_op *op)
{
	return op->kind == LD_OP_ITEM_CREATE && !op->idem;
}

/* send_batch takes up to batch_max item creates off the batch queue and
 * sends them on p as one transaction: their one statement (item_insert_many:
 * the ids, owners and contents as binary arrays, pg_array.h), one Sync (the
 * COMMIT), then the commit position query and its Sync, in one flush. 0;
 * -ENOMEM with the queue as it was; or -EIO when the connection failed (the
 * ops taken are then on it, answered by its loss). */
static int send_batch(struct pgc *p)
{
	struct ld_store_conn *c = p->c;
	struct ld_store *s = c->s;
	struct ld_store_op *op, *refused = NULL;
	struct params prm;
	struct ld_pg_array ids, owners, contents;
	struct unit *u;
	struct wbatch *wb;
	int64_t now = now_unix_ms();
	uint64_t t = uv_hrtime();
	size_t n = 0, payload = 0, isz, csz;
	char *buf = NULL;
	int rc = 0;

	if (close_batch(p) != 0)
		return -EIO; /* nothing of the queue was taken */
	/* The arrays' size: the ops the loop below takes (bind_op refuses
	 * only oversized content, which takes no room). */
	for (op = c->bq_head; op && n < s->batch_max; op = op->next)
		if (op->item.content_len <= LD_CONTENT_MAX) {
			n++;
			payload += op->item.content_len;
		}
	isz = ld_pg_array_size(n, 8 * n);
	csz = ld_pg_array_size(n, payload);
	u = calloc(1, sizeof(*u));
	wb = malloc(sizeof(*wb));
	buf = malloc(2 * isz + csz);
	if (!u || !wb || !buf) {
		free(u);
		free(wb);
		free(buf);
		return -ENOMEM; /* the queue stays for a later pass */
	}
	wb->n = 0;
	wb->read = wb->failed = wb->unsent = false;
	wb->failed_at = 0;
	ld_pg_array_start(&ids, buf, isz, LD_PG_OID_INT8);
	ld_pg_array_start(&owners, buf + isz, isz, LD_PG_OID_INT8);
	ld_pg_array_start(&contents, buf + 2 * isz, csz, LD_PG_OID_BYTEA);
	while ((op = c->bq_head) && wb->n < s->batch_max) {
		c->bq_head = op->next;
		if (!c->bq_head)
			c->bq_tail = NULL;
		op->next = NULL;
		if (bind_op(s, op, &prm, now) < 0) {
			/* Answered once the batch is on the wire: its done()
			 * may send on p. */
			op->next = refused;
			refused = op;
			continue;
		}
		op->t_taken_ns = op->t_commit_ns = t;
		wb->ops[wb->n] = op;
		wb->st[wb->n++] = LD_STORE_ERROR;
		ld_pg_array_int8(&ids, op->item.id);
		ld_pg_array_int8(&owners, op->item.user_id);
		ld_pg_array_bytes(&contents, op->item.content, op->item.content_len);
	}
	if (!wb->n) {
		free(u);
		free(wb);
		goto out;
	}
	if (ld_pg_array_end(&ids) != 0 || ld_pg_array_end(&owners) != 0 ||
	    ld_pg_array_end(&contents) != 0) {
		/* Sized from the same ops: a bug, never sent (answering them
		 * ends it, where sending them again would repeat it). */
		for (unsigned i = 0; i < wb->n; i++) {
			wb->ops[i]->next = refused;
			refused = wb->ops[i];
		}
		free(u);
		free(wb);
		goto out;
	}
	prm.n = 0;
	p_bytes(&prm, buf, ids.len);
	p_bytes(&prm, buf + isz, owners.len);
	p_bytes(&prm, buf + 2 * isz, contents.len);
	p_int(&prm, now);
	if (PQsendQueryPrepared(p->pg, ld_pg_stmts[LD_PG_ITEM_INSERT_MANY].name, (int)prm.n, prm.v,
				prm.len, prm.fmt, 1) != 1)
		wb->unsent = true; /* no Sync will follow: it cannot commit */
	u->wb = wb;
	u->write = true;
	u->ncmds = 1;
	u->status = LD_STORE_OK;
	push_unit(p, u);
	p->batching = true;
	rc = -EIO;
	if (wb->unsent || PQpipelineSync(p->pg) != 1)
		goto out; /* a Sync that failed may have gone: unknown */
	rc = send_aux(p, AUX_LSN, LD_PG_REP_COMMIT_LSN);
	if (rc != 0 && rc != -ENOMEM) {
		rc = -EIO;
		goto out;
	}
	u->follow = rc == 0;
	rc = flush_out(p) != 0 ? -EIO : 0;
out:
	free(buf); /* libpq copied the parameters into its output buffer */
	while ((op = refused)) {
		refused = op->next;
		ld_log_event("error", "store: op refused by the postgres driver",
			     (const char *const[]){"detail", "invalid content", NULL});
		complete(c, op, LD_STORE_ERROR);
	}
	return rc;
}

/* batcher: the ready primary connection without a write batch on it that
 * has the fewest ops, or NULL. */
static struct pgc *batcher(struct ld_store_conn *c)
{
	struct pgc *best = NULL;

	for (unsigned i = 0; i < c->npool; i++) {
		struct pgc *p = &c->pgc[i];

		if (p->state == PGC_READY && !p->batching && (!best || p->nunits < best->nunits))
			best = p;
	}
	return best;
}

/* on_prep runs once per loop pass, before the loop waits. It sends the
 * write batch queue: every item create queued in this pass, and all that
 * queued while the connection's previous batch was committing, share one
 * transaction and one COMMIT (one WAL flush), as the SQLite writer's
 * batches do. A batch never waits for more work: it takes what is queued
 * when a connection is free (one batch in flight per connection), and a
 * batch's COMMIT returning starts this again. Then it closes every open
 * read batch: the reads routed to one connection in this pass go in one
 * send and share one Sync (one round trip, fewer wakeups on both sides). */
static void on_prep(uv_prepare_t *h)
{
	struct ld_store_conn *c = h->data;
	struct pgc *p;
	bool again;
	unsigned i;

	uv_prepare_stop(h);
	/* A loss answers ops whose callbacks may send reads and writes
	 * again: those go in this pass too, not after the loop has waited. */
	do {
		again = false;
		while (c->bq_head && (p = batcher(c))) {
			int rc = send_batch(p);

			if (rc == -ENOMEM)
				break; /* the next pass, or batch, tries again */
			if (rc != 0) {
				lose(p, NULL);
				again = true;
			}
		}
		for (i = 0; i < c->npgc; i++) {
			p = &c->pgc[i];
			if (p->open && (close_batch(p) != 0 || flush_out(p) != 0)) {
				lose(p, NULL);
				again = true;
			}
		}
	} while (again);
}

/* batched_read: a read that joins p's open batch (no Sync of its own until
 * the batch closes). Keyed lookups read the commit position after their
 * Sync, so they go alone, as writes do. */
static bool batched_read(const struct ld_store_op *op)
{
	return !is_write(op->kind) && op->kind != LD_OP_IDEM_GET;
}

/* send_op puts op on connection p: a read joins p's open batch (its Sync
 * comes from on_prep); anything else closes that batch first and goes with
 * a Sync of its own. 0, or -EIO when the connection failed (op is then not
 * on it). */
static int send_op(struct pgc *p, struct ld_store_op *op)
{
	struct params prm, clear = {.n = 0};
	struct unit *u;
	int64_t now = now_unix_ms();
	int id = bind_op(p->c->s, op, &prm, now);

	if (id >= 0 && op->idem && op->kind != LD_OP_IDEM_GET) {
		id = bind_keyed(p->c->s, op, &prm, id, now);
		p_int(&clear, op->actor_id);
		p_bytes(&clear, op->idem->key, op->idem->key_len);
		p_int(&clear, now);
	}

	if (id < 0) {
		/* A bad list limit, oversized content, or an op kind this
		 * driver does not carry out yet. */
		ld_log_event("error", "store: op refused by the postgres driver",
			     (const char *const[]){
				 "detail", "invalid or not supported on postgres yet", NULL});
		complete(p->c, op, LD_STORE_ERROR);
		return 0;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		complete(p->c, op, LD_STORE_ERROR);
		return 0;
	}
	if (!batched_read(op) && close_batch(p) != 0) {
		free(u);
		return -EIO;
	}
	u->op = op;
	u->write = is_write(op->kind);
	if (u->write) /* the stage clock: queued until now, committing from now */
		op->t_taken_ns = op->t_commit_ns = uv_hrtime();
	u->ncmds = clear.n ? 2 : 1;
	u->status = LD_STORE_ERROR;
	/* A keyed write: its key's expired row goes first, in the same
	 * implicit transaction (no Sync between). */
	if (clear.n && PQsendQueryPrepared(p->pg, ld_pg_stmts[LD_PG_IDEM_CLEAR].name, (int)clear.n,
					   clear.v, clear.len, clear.fmt, 1) != 1) {
		free(u);
		return -EIO; /* nothing of it was queued */
	}
	if (PQsendQueryPrepared(p->pg, ld_pg_stmts[id].name, (int)prm.n, prm.v, prm.len, prm.fmt,
				1) != 1) {
		if (!clear.n) {
			free(u);
			return -EIO; /* nothing of it was queued */
		}
		push_unit(p, u); /* the clean-up was: the unit is on the wire */
		return -EPIPE;
	}
	/* From here the statement may run; the unit must be answered from
	 * the connection (or as a loss). */
	if (batched_read(op)) {
		if (p->open)
			p->open->nosync = true; /* the Sync is the new last's */
		push_unit(p, u);
		p->open = u;
		if (++p->nopen >= READ_BATCH_MAX && close_batch(p) != 0)
			return -EPIPE;
		uv_prepare_start(&p->c->prep, on_prep);
		return 0;
	}
	push_unit(p, u);
	if (PQpipelineSync(p->pg) != 1)
		return -EPIPE;
	if (u->write || op->kind == LD_OP_IDEM_GET) {
		/* The commit position for Ladder-Session, read after the
		 * Sync (the COMMIT) in the same flush: no extra round trip. A
		 * kept answer's lookup reads it too: its write committed
		 * before, so a replayed answer carries a token as good. */
		int rc = send_aux(p, AUX_LSN, LD_PG_REP_COMMIT_LSN);

		if (rc != 0 && rc != -ENOMEM)
			return -EPIPE;
		u->follow = rc == 0;
	}
	if (flush_out(p) != 0)
		return -EPIPE;
	return 0;
}

/* pick_target: the ready connection to target (0: the primary, k: replica
 * k) with the fewest ops on it, or NULL. */
static struct pgc *pick_target(struct ld_store_conn *c, unsigned target)
{
	struct pgc *best = NULL;
	unsigned i, lo = target * c->npool;

	for (i = lo; i < lo + c->npool && i < c->npgc; i++)
		if (c->pgc[i].state == PGC_READY && (!best || c->pgc[i].nunits < best->nunits))
			best = &c->pgc[i];
	return best;
}

static struct pgc *pick(struct ld_store_conn *c)
{
	return pick_target(c, 0);
}

/* Reads a replica may answer (pg_replica.h): sign-in's read by handle stays
 * on the primary, so a handle made a moment ago signs in without a token. */
static bool replica_kind(enum ld_store_op_kind k)
{
	return k == LD_OP_USER_GET || k == LD_OP_ITEM_GET || k == LD_OP_ITEM_LIST;
}

/* route_op sends op on the best ready connection (a read to a replica in
 * rotation that has replayed op->min_pos, unless primary_only), or makes it
 * wait for the primary. */
static void route_op(struct ld_store_conn *c, struct ld_store_op *op, bool primary_only)
{
	struct pgc *p;
	unsigned k;
	bool forced;
	int rc;

	/* A cache fill must come from the primary. With the primary's breaker
	 * open, a replica answers it instead and fresh is cleared: the API
	 * then fills nothing (docs/operations.md, degraded modes). */
	if (op->fresh && !primary_only && replica_kind(op->kind) &&
	    !ld_pg_rep_ready(&c->rl, 0, uv_hrtime()))
		op->fresh = false;
	for (;;) {
		p = NULL;
		if (!is_write(op->kind)) {
			k = ld_pg_rep_route(&c->rl,
					    !primary_only && !op->fresh && replica_kind(op->kind),
					    op->min_pos, &forced);
			if (k)
				p = pick_target(c, k);
		}
		if (!p && !ld_pg_rep_allow(&c->rl, 0, uv_hrtime())) {
			/* The primary's breaker is open: fail now, not at the
			 * deadline (docs/operations.md, degraded modes). */
			complete(c, op, LD_STORE_UNAVAILABLE);
			return;
		}
		if (!p)
			p = pick(c);
		if (p && batchable(op)) {
			bq_push(c, op);
			return;
		}
		if (!p) {
			if (pool_down(c)) {
				complete(c, op, LD_STORE_UNAVAILABLE);
				return;
			}
			op->next = NULL;
			if (c->wait_tail)
				c->wait_tail->next = op;
			else
				c->wait_head = op;
			c->wait_tail = op;
			return;
		}
		rc = send_op(p, op);
		if (rc == 0)
			return;
		lose(p, NULL); /* answers op too when it was queued (-EPIPE) */
		if (rc == -EPIPE)
			return;
	}
}

static void route(struct ld_store_conn *c, struct ld_store_op *op)
{
	route_op(c, op, false);
}

static void dispatch_waiting(struct ld_store_conn *c)
{
	struct ld_store_op *op;

	while ((op = c->wait_head) && pick(c)) {
		c->wait_head = op->next;
		if (!c->wait_head)
			c->wait_tail = NULL;
		route(c, op);
	}
}

static void pg_submit(struct ld_store_conn *c, struct ld_store_op *op)
{
	struct ld_store *s = c->s;
	uint64_t now = uv_hrtime();

	op->conn = c;
	op->next = NULL;
	op->outcome_unknown = false;
	op->t_taken_ns = op->t_commit_ns = op->t_committed_ns = 0;
	op->due_ns = op->deadline_ns ? op->deadline_ns : now + s->op_timeout_ns;
	/* A read that times out with (nearly) the whole store timeout spent
	 * on it is the node's failure (its breaker counts it); one cut short
	 * by a client's smaller budget says nothing of the node. Every request
	 * gives its ops a deadline (its budget, at most the store timeout from
	 * now), so "nearly": at least 90% of it left at submit. */
	op->full_budget = op->due_ns > now && op->due_ns - now >= s->op_timeout_ns / 10 * 9;
	c->inflight++;
	atomic_fetch_add_explicit(&s->depth, 1, memory_order_relaxed);
	if (op->due_ns <= now) {
		complete(c, op, LD_STORE_TIMEOUT);
		return;
	}
	if (c->closing) {
		complete(c, op, LD_STORE_UNAVAILABLE);
		return;
	}
	if (!known_kind(op->kind)) {
		complete(c, op, LD_STORE_ERROR);
		return;
	}
	if (c->inflight > s->queue_max) {
		/* Shed: counted where it becomes a 503 (api.c), not here. */
		op->status = LD_STORE_BUSY;
		c->inflight--;
		atomic_fetch_sub_explicit(&s->depth, 1, memory_order_relaxed);
		op->done(op);
		return;
	}
	arm_expire(c, op->due_ns);
	route(c, op);
}

/* take_late moves the ops of the queue head..tail (linked by next, never
 * sent) whose deadline is at or before now to the list ending at late_tail,
 * in order, and returns its new end; *next becomes the earliest deadline
 * left in the queue when that is sooner (0: none yet). */
static struct ld_store_op **take_late(struct ld_store_op **head, struct ld_store_op **tail,
				      uint64_t now, struct ld_store_op **late_tail, uint64_t *next)
{
	struct ld_store_op **pp, *op, *prev = NULL;

	for (pp = head; (op = *pp);) {
		if (op->due_ns <= now) {
			*pp = op->next;
			if (*tail == op)
				*tail = prev;
			op->next = NULL;
			*late_tail = op;
			late_tail = &op->next;
			continue;
		}
		if (!*next || op->due_ns < *next)
			*next = op->due_ns;
		prev = op;
		pp = &op->next;
	}
	return late_tail;
}

/* on_expire: waiting ops past their deadline end in TIMEOUT (never sent);
 * reads in flight past theirs too (their answer is dropped later); a write
 * in flight for op_timeout past its deadline means the connection is stuck:
 * it is closed, and the write ends as on a loss (UNAVAILABLE, outcome
 * unknown). */
static void on_expire(uv_timer_t *h)
{
	struct ld_store_conn *c = h->data;
	struct ld_store *s = c->s;
	struct ld_store_op *op, *late = NULL, **late_tail = &late;
	uint64_t now = uv_hrtime(), next = 0, due;
	struct unit *u;
	unsigned i;

	c->expire_at_ns = 0;
	late_tail = take_late(&c->wait_head, &c->wait_tail, now, late_tail, &next);
	/* Queued for a batch, never sent: as a waiting op. */
	late_tail = take_late(&c->bq_head, &c->bq_tail, now, late_tail, &next);
	for (i = 0; i < c->npgc; i++) {
		struct pgc *p = &c->pgc[i];
		bool stuck = false;

		for (u = p->head; u; u = u->next) {
			/* A batch's writes wait for their COMMIT as a write
			 * alone does. */
			for (unsigned k = 0; u->wb && k < u->wb->n; k++) {
				due = u->wb->ops[k]->due_ns + s->op_timeout_ns;
				if (due <= now)
					stuck = true;
				else if (!next || due < next)
					next = due;
			}
			if (!u->op)
				continue;
			due = u->op->due_ns + (u->write ? s->op_timeout_ns : 0);
			if (due > now) {
				if (!next || due < next)
					next = due;
				continue;
			}
			if (u->write) {
				stuck = true;
				continue;
			}
			op = u->op;
			u->op = NULL; /* its answer, when it comes, is dropped */
			/* Past the store's own deadline (not a client's shorter
			 * budget, which says nothing of the node): a timeout. */
			if (op->full_budget) {
				u->timed_out = true;
				ld_pg_rep_failed(&c->rl, p->target, now,
						 "a read got no answer within the store timeout");
				arm_probes(c, p->target);
			}
			p->nunits--;
			op->next = NULL;
			*late_tail = op;
			late_tail = &op->next;
		}
		if (stuck)
			lose(p, "a commit took longer than the store timeout past its deadline");
	}
	if (next)
		arm_expire(c, next);
	while ((op = late)) {
		late = op->next;
		complete(c, op, LD_STORE_TIMEOUT);
	}
	maybe_finish(c);
}

/* ---- conn open/close, ping ------------------------------------------------ */

/* on_sample reads every node's position (pg_replica.h): the primary's
 * flush position and each replica's replay position, one tiny statement on
 * a ready connection of each, never two at once to one node. A replica
 * whose last sample has gone unanswered for longer than the bound is taken
 * out of rotation until it answers. */
static void on_sample(uv_timer_t *h)
{
	struct ld_store_conn *c = h->data;
	uint64_t now = uv_hrtime();
	struct pgc *p;
	unsigned k;
	int rc;

	if (c->closing)
		return;
	for (k = 0; k <= c->s->reps.n; k++) {
		if (c->sampling[k]) {
			if (k && now - c->sample_ns[k] > c->s->reps.max_lag_ns)
				ld_pg_rep_replayed(&c->rl, k, 0, now);
			continue;
		}
		p = pick_target(c, k);
		if (!p)
			continue;
		rc = send_aux(p, AUX_SAMPLE, k ? LD_PG_REP_REPLAY_LSN : LD_PG_REP_FLUSH_LSN);
		if (rc == -ENOMEM)
			continue;
		if (rc == 0) {
			c->sampling[k] = true;
			c->sample_ns[k] = now;
			rc = flush_out(p);
		}
		if (rc != 0)
			lose(p, NULL);
	}
}

static int pg_render_metrics(struct ld_store *s, struct ld_buf *out)
{
	uint64_t tl = atomic_load(&s->primary_timeline);

	ld_pg_rep_render(&s->reps, out);
	/* No series before the first connection: a jump from 0 would read as
	 * a change of primary. */
	if (tl)
		ld_buf_printf(out,
			      "# HELP ladder_pg_primary_timeline Timeline of the primary this "
			      "node last connected to (a promotion starts a new one).\n"
			      "# TYPE ladder_pg_primary_timeline gauge\n"
			      "ladder_pg_primary_timeline %llu\n",
			      (unsigned long long)tl);
	return ld_buf_error(out);
}

static void pg_render_stats(struct ld_store *s, struct ld_json *j)
{
	ld_pg_rep_render_json(&s->reps, j);
}

static void on_sample(uv_timer_t *h);

static int pg_conn_open(struct ld_store *s, uv_loop_t *loop, struct ld_store_conn **out)
{
	struct ld_store_conn *c = calloc(1, sizeof(*c));
	unsigned i;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->s = s;
	c->loop = loop;
	c->npool = s->pool;
	c->npgc = s->pool * (1 + s->reps.n);
	c->pgc = calloc(c->npgc, sizeof(*c->pgc));
	if (!c->pgc) {
		free(c);
		return -ENOMEM;
	}
	ld_pg_rep_loop_init(&c->rl, &s->reps);
	ld_pg_rep_breakers_start(&c->rl);
	uv_timer_init(loop, &c->expire);
	c->expire.data = c;
	uv_timer_init(loop, &c->sample);
	c->sample.data = c;
	uv_prepare_init(loop, &c->prep); /* cannot fail */
	c->prep.data = c;
	c->handles = 3;
	if (s->reps.n) {
		unsigned ms = ld_pg_rep_sample_ms(&s->reps);

		uv_timer_start(&c->sample, on_sample, ms, ms);
	}
	atomic_fetch_add(&s->unready_loops, 1); /* until a connection is ready */
	for (i = 0; i < c->npgc; i++) {
		struct pgc *p = &c->pgc[i];

		p->c = c;
		p->target = i / c->npool;
		p->fd = -1;
		uv_timer_init(loop, &p->timer);
		p->timer.data = p;
		c->handles++;
		start_connect(p);
	}
	*out = c;
	return 0;
}

/* pg_ping: ready while at least one connection of every loop's pool is,
 * and no loop's breaker for the primary refuses. */
static int pg_ping(struct ld_store_conn *c)
{
	if (c->closing || !pick(c) || atomic_load(&c->s->unready_loops) != 0 ||
	    !ld_pg_rep_primary_closed(&c->s->reps))
		return -EIO;
	return 0;
}

static void maybe_finish(struct ld_store_conn *c)
{
	unsigned i;

	if (!c->closing || c->closed || c->inflight > 0)
		return;
	c->closed = true;
	uv_close((uv_handle_t *)&c->expire, on_handle_closed);
	uv_timer_stop(&c->sample);
	uv_close((uv_handle_t *)&c->sample, on_handle_closed);
	uv_prepare_stop(&c->prep);
	uv_close((uv_handle_t *)&c->prep, on_handle_closed);
	for (i = 0; i < c->npgc; i++) {
		drop_poll(&c->pgc[i]);
		uv_timer_stop(&c->pgc[i].timer);
		/* The timer's data is the pgc; the close callback wants c. */
		c->pgc[i].timer.data = c;
		uv_close((uv_handle_t *)&c->pgc[i].timer, on_handle_closed);
	}
	/* The PGconns are finished in the last close callback: a drain
	 * further up the stack may still be reading from one. */
}

static void pg_conn_close(struct ld_store_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->sample);
	ld_pg_rep_loop_fini(&c->rl);
	note_ready(c);
	fail_waiting(c);
	maybe_finish(c);
}

const struct ld_store_vt ld_pg_vt = {
    .name = "postgres",
    .open = pg_open,
    .conn_open = pg_conn_open,
    .submit = pg_submit,
    .ping = pg_ping,
    .conn_close = pg_conn_close,
    .stats = pg_stats,
    .close = pg_close,
    .render_metrics = pg_render_metrics,
    .render_stats = pg_render_stats,
};
