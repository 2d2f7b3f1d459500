/*
 * queue_pg.c - the job queue on PostgreSQL. Contract in queue.h; the tables
 * and the outbox triggers that insert jobs are migration 3 of the
 * PostgreSQL store (store/pg_schema.c).
 *
 * Unlike SQLite, many workers write at once, so a claim must not hand one
 * job to two of them, nor make them queue behind each other: the claim's
 * subquery locks the oldest due ready job `FOR UPDATE SKIP LOCKED`, so a
 * second claimer passes over a row the first holds and takes the next
 * (under READ COMMITTED a row another claim changed meanwhile is checked
 * again and dropped, and the scan goes on). Every later change is
 * conditioned on `state = 'leased' AND lease_owner = $owner`, the whole
 * lease check, as on SQLite.
 *
 * Each change is one statement (data-modifying CTEs), so one round trip and
 * its own transaction: the complete deletes the job and writes the photo's
 * outcome and versions, and an outcome is written only when the job was
 * still ours (the photo's update reads the deletion's RETURNING).
 *
 * Connection loss: a statement that fails on a broken connection answers
 * -EIO (the worker retries later); the next call reconnects (PQreset) and
 * prepares the statements again. A complete whose answer was lost may have
 * committed: the retried job then finds its photo finished, or is -ESTALE,
 * which is why handlers are idempotent.
 */
#include "jobs/queue_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"

/* The outcome's versions, three (name, width, height, size, etag) rows from
 * parameter n on; a row with an empty name is not there. */
#define VERSIONS_FROM(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o)                                 \
	" v AS (INSERT INTO photo_versions (photo_id, name, width, height, size, etag)"            \
	" SELECT f.id, x.name, x.width, x.height, x.size, x.etag FROM f, (VALUES"                  \
	" ($" #a "::text, $" #b "::integer, $" #c "::integer, $" #d "::bigint, $" #e "::text),"    \
	" ($" #f "::text, $" #g "::integer, $" #h "::integer, $" #i "::bigint, $" #j "::text),"    \
	" ($" #k "::text, $" #l "::integer, $" #m "::integer, $" #n "::bigint, $" #o "::text))"    \
	" x (name, width, height, size, etag) WHERE x.name <> ''"                                  \
	" ON CONFLICT (photo_id, name) DO UPDATE SET width = excluded.width,"                      \
	" height = excluded.height, size = excluded.size, etag = excluded.etag)"

#define EX_VERSIONS                                                                                \
	"'128', 128, 85, 4000, '\"a\"', '512', 512, 341, 40000, '\"b\"', '', 0, 0, 0, ''"

/* clang-format off */
const struct ld_qpg_stmt ld_queue_pg_stmts[LD_QPG_COUNT] = {
	/* Expired leases in one statement: out of attempts, the job is dead
	 * and its photo failed together (a job that killed every worker that
	 * took it: a decoder crash, the OOM killer); the others are ready
	 * again. A lease its owner is settling right now makes the reap wait
	 * for that row; once the owner commits, the row is read again and
	 * left alone if it is no longer leased (and its photo no longer
	 * processing), so the owner's outcome stands. */
	[LD_QPG_REAP] = {"qjob_reap",
		"WITH p AS (UPDATE photos SET status = 'failed',"
		"  reason = 'the worker died on it ' || $2::integer || ' times',"
		"  updated_ms = $1::bigint, version = version + 1"
		"  WHERE status = 'processing' AND id IN (SELECT subject FROM jobs"
		"   WHERE state = 'leased' AND lease_until_ms <= $1::bigint"
		"   AND attempts >= $2::integer AND kind = 'thumbnail'))"
		" UPDATE jobs SET lease_owner = '', updated_ms = $1::bigint,"
		"  state = CASE WHEN attempts >= $2::integer THEN 'dead' ELSE 'ready' END,"
		"  run_at_ms = CASE WHEN attempts >= $2::integer THEN run_at_ms"
		"   ELSE $1::bigint END,"
		"  last_error = CASE WHEN attempts >= $2::integer"
		"   THEN 'the worker died on it ' || attempts || ' times' ELSE last_error END"
		" WHERE state = 'leased' AND lease_until_ms <= $1::bigint",
		2, "(1700000000000, 5)", true},
	[LD_QPG_CLAIM] = {"qjob_claim",
		"UPDATE jobs SET state = 'leased', attempts = attempts + 1, lease_owner = $2::text,"
		" lease_until_ms = $1::bigint + $3::bigint, updated_ms = $1::bigint"
		" WHERE id = (SELECT id FROM jobs WHERE state = 'ready' AND run_at_ms <= $1::bigint"
		"  ORDER BY run_at_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
		" RETURNING id, kind, subject, attempts",
		3, "(1700000000000, 'host:1:0', 60000)", true},
	/* $3 = 0 (no photo has id 0): a job without an outcome. */
	[LD_QPG_COMPLETE] = {"qjob_complete",
		"WITH d AS (DELETE FROM jobs WHERE id = $1::bigint AND state = 'leased'"
		"  AND lease_owner = $2::text RETURNING id),"
		" f AS (UPDATE photos SET status = $4::text, reason = $5::text, width = $6::integer,"
		"  height = $7::integer, updated_ms = $8::bigint, version = version + 1"
		"  WHERE id = $3::bigint AND status = 'processing' AND EXISTS (SELECT 1 FROM d)"
		"  RETURNING id),"
		VERSIONS_FROM(9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23)
		" SELECT count(*) FROM d",
		23, "(7, 'host:1:0', 4242, 'ready', '', 6000, 4000, 1700000000000, " EX_VERSIONS ")",
		true},
	[LD_QPG_FAIL] = {"qjob_fail",
		"WITH j AS (UPDATE jobs SET"
		"  state = CASE WHEN attempts >= $3::integer THEN 'dead' ELSE 'ready' END,"
		"  run_at_ms = $4::bigint, last_error = $5::text, lease_owner = '',"
		"  updated_ms = $6::bigint"
		"  WHERE id = $1::bigint AND state = 'leased' AND lease_owner = $2::text"
		"  RETURNING state),"
		" f AS (UPDATE photos SET status = $8::text, reason = $9::text, width = $10::integer,"
		"  height = $11::integer, updated_ms = $6::bigint, version = version + 1"
		"  WHERE id = $7::bigint AND status = 'processing'"
		"  AND EXISTS (SELECT 1 FROM j WHERE state = 'dead') RETURNING id),"
		VERSIONS_FROM(12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26)
		" SELECT state FROM j",
		26, "(7, 'host:1:0', 5, 1700000001000, 'decode failed', 1700000000000, 4242,"
		" 'failed', 'gave up', 0, 0, '', 0, 0, 0, '', '', 0, 0, 0, '', '', 0, 0, 0, '')",
		true},
	[LD_QPG_RELEASE] = {"qjob_release",
		"UPDATE jobs SET state = 'ready', attempts = attempts - 1, lease_owner = '',"
		" run_at_ms = $3::bigint, updated_ms = $3::bigint"
		" WHERE id = $1::bigint AND state = 'leased' AND lease_owner = $2::text",
		3, "(7, 'host:1:0', 1700000000000)", true},
	[LD_QPG_PHOTO] = {"qjob_photo",
		"SELECT id, user_id, status, content_type, size FROM photos WHERE id = $1::bigint",
		1, "(4242)", true},
	/* At scrape time, not per job: counting a state that most jobs are in
	 * may read the table. */
	[LD_QPG_STATS] = {"qjob_stats",
		"SELECT (SELECT count(*) FROM jobs WHERE state = 'ready'),"
		" (SELECT count(*) FROM jobs WHERE state = 'leased'),"
		" (SELECT count(*) FROM jobs WHERE state = 'dead'),"
		" (SELECT min(run_at_ms) FROM jobs WHERE state = 'ready'"
		"  AND run_at_ms <= $1::bigint)",
		1, "(1700000000000)", false},
};
/* clang-format on */

#define QP_MAX 26

/* The schema version that brings the jobs table (pg_schema.c). */
#define SCHEMA_JOBS 3

struct ld_queue {
	PGconn *pg;
	char *conninfo;
	char owner[LD_JOB_OWNER_MAX + 1];
	int64_t lease_ms;
	unsigned max_attempts;
	bool sync;
	bool prepared; /* the statements exist on this connection */
};

/* Text parameters of one statement. */
struct qparams {
	const char *v[QP_MAX];
	char num[QP_MAX][24];
	char text[4][LD_JOB_ERROR_MAX + 1];
	unsigned n, ntext;
};

static void qp_int(struct qparams *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

/* qp_text binds s, cut to LD_JOB_ERROR_MAX bytes with every byte outside
 * ASCII as '?': messages from decoders and strerror may be cut inside a
 * UTF-8 sequence, which a text column refuses. */
static void qp_text(struct qparams *p, const char *s)
{
	char *d = p->text[p->ntext++];
	size_t i;

	s = s ? s : "";
	for (i = 0; s[i] && i < LD_JOB_ERROR_MAX; i++)
		d[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	d[i] = '\0';
	p->v[p->n++] = d;
}

/* qp_const binds a string the project owns (names, etags, states). */
static void qp_const(struct qparams *p, const char *s)
{
	p->v[p->n++] = s ? s : "";
}

/* qp_outcome binds photo id, status, reason, width, height, [now,] and the
 * three version rows; o NULL binds photo 0, which matches nothing. */
static void qp_outcome(struct qparams *p, const struct ld_photo_outcome *o, const int64_t *now)
{
	unsigned i;

	qp_int(p, o ? o->photo_id : 0);
	qp_const(p, o && o->status ? o->status : "");
	qp_text(p, o && o->reason ? o->reason : "");
	qp_int(p, o ? o->width : 0);
	qp_int(p, o ? o->height : 0);
	if (now)
		qp_int(p, *now);
	for (i = 0; i < LD_PHOTO_VERSIONS; i++) {
		const struct ld_photo_version_row *v =
		    o && i < o->nversions ? &o->versions[i] : NULL;

		qp_const(p, v ? v->name : "");
		qp_int(p, v ? v->width : 0);
		qp_int(p, v ? v->height : 0);
		qp_int(p, v ? v->size : 0);
		qp_const(p, v ? v->etag : "");
	}
}

static void log_pg(struct ld_queue *q, const char *what, const PGresult *r)
{
	char line[256];
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(q->pg);
	const char *kv[] = {"op", what, "detail", line, NULL};

	snprintf(line, sizeof(line), "%s", msg && msg[0] ? msg : PQerrorMessage(q->pg));
	line[strcspn(line, "\n")] = '\0';
	ld_log_event("error", "queue: statement failed", kv);
}

static void quiet(void *arg, const char *message)
{
}

/* ready makes sure the connection is up with the statements prepared,
 * reconnecting after a loss. 0 or -EIO (logged). */
static int ready(struct ld_queue *q)
{
	PGresult *r;
	unsigned i;

	if (PQstatus(q->pg) != CONNECTION_OK) {
		q->prepared = false;
		PQreset(q->pg);
		if (PQstatus(q->pg) != CONNECTION_OK) {
			log_pg(q, "reconnect", NULL);
			return -EIO;
		}
	}
	if (q->prepared)
		return 0;
	r = PQexec(q->pg, q->sync ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_pg(q, "set synchronous_commit", r);
		PQclear(r);
		return -EIO;
	}
	PQclear(r);
	for (i = 0; i < LD_QPG_COUNT; i++) {
		r = PQprepare(q->pg, ld_queue_pg_stmts[i].name, ld_queue_pg_stmts[i].sql,
			      (int)ld_queue_pg_stmts[i].nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_pg(q, ld_queue_pg_stmts[i].name, r);
			PQclear(r);
			return -EIO;
		}
		PQclear(r);
	}
	q->prepared = true;
	return 0;
}

/* run executes statement id; the result (to PQclear), or NULL with -EIO
 * logged. */
static PGresult *run(struct ld_queue *q, enum ld_qpg_id id, const struct qparams *p)
{
	PGresult *r;
	ExecStatusType st;

	if (ready(q) != 0)
		return NULL;
	r = PQexecPrepared(q->pg, ld_queue_pg_stmts[id].name, (int)p->n, p->v, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		log_pg(q, ld_queue_pg_stmts[id].name, r);
		PQclear(r);
		return NULL;
	}
	return r;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? -1 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void queue_close(struct ld_queue *q)
{
	if (!q)
		return;
	PQfinish(q->pg);
	free(q->conninfo);
	free(q);
}

static int queue_open(const struct ld_queue_config *cfg, struct ld_queue **out, char *err,
		      size_t errlen)
{
	struct ld_queue *q;
	PGresult *r = NULL;
	char line[256], secs[24];
	int rc = -ENOMEM;
	long version;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		goto out;
	rc = -EINVAL;
	if (!cfg->conninfo || !cfg->conninfo[0] || !cfg->owner || !cfg->owner[0] ||
	    strlen(cfg->owner) > LD_JOB_OWNER_MAX || cfg->lease_ms <= 0 || cfg->max_attempts == 0) {
		snprintf(err, errlen, "queue: conninfo, owner, lease and attempts must be set");
		goto fail;
	}
	snprintf(q->owner, sizeof(q->owner), "%s", cfg->owner);
	q->lease_ms = cfg->lease_ms;
	q->max_attempts = cfg->max_attempts;
	q->sync = cfg->synchronous_full;
	rc = -ENOMEM;
	q->conninfo = strdup(cfg->conninfo);
	if (!q->conninfo)
		goto fail;
	rc = -EIO;
	/* connect_timeout after the conninfo overrides one inside it: a
	 * primary that does not answer costs one bounded wait, at open and at
	 * each reconnect (PQreset keeps the options), not the kernel's SYN
	 * retries (minutes), which would hold a job thread or a scrape. */
	snprintf(secs, sizeof(secs), "%llu",
		 (unsigned long long)(cfg->connect_timeout_ms
					  ? (cfg->connect_timeout_ms + 999) / 1000
					  : 5));
	q->pg = PQconnectdbParams((const char *const[]){"dbname", "connect_timeout", NULL},
				  (const char *const[]){q->conninfo, secs, NULL}, 1);
	if (!q->pg || PQstatus(q->pg) != CONNECTION_OK) {
		/* libpq's message names the host, never the password. */
		snprintf(line, sizeof(line), "%s", q->pg ? PQerrorMessage(q->pg) : "out of memory");
		line[strcspn(line, "\n")] = '\0';
		snprintf(err, errlen, "queue: cannot connect to the primary: %s", line);
		goto fail;
	}
	PQsetNoticeProcessor(q->pg, quiet, NULL);
	/* The worker migrates nothing: the server (or `ladder migrate`) made
	 * the schema; an older one is an error, not a reason to change it. */
	r = PQexec(q->pg, "SELECT coalesce(max(version), 0) FROM ladder_schema");
	version = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
		      ? strtol(PQgetvalue(r, 0, 0), NULL, 10)
		      : 0;
	if (version < SCHEMA_JOBS) {
		snprintf(err, errlen,
			 "queue: the postgres store has schema version %ld, jobs need %d: run "
			 "`ladder migrate --store postgres`",
			 version, SCHEMA_JOBS);
		goto fail;
	}
	if (ready(q) != 0) {
		snprintf(line, sizeof(line), "%s", PQerrorMessage(q->pg));
		line[strcspn(line, "\n")] = '\0';
		snprintf(err, errlen, "queue: preparing the statements failed: %s", line);
		goto fail;
	}
	*out = q;
	rc = 0;
	goto out;
fail:
	queue_close(q);
out:
	PQclear(r);
	return rc;
}

/* pipe_result takes the result of the next statement of a pipeline (and
 * the NULL that ends it); NULL with -EIO logged when it failed. */
static PGresult *pipe_result(struct ld_queue *q, enum ld_qpg_id id)
{
	PGresult *r = PQgetResult(q->pg), *end;
	ExecStatusType st = PQresultStatus(r);

	if (r && (end = PQgetResult(q->pg)))
		PQclear(end); /* never: one result per statement */
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		log_pg(q, ld_queue_pg_stmts[id].name, r);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* queue_claim: the reap, then the claim, sent together (pipeline mode:
 * one round trip) as one transaction; the claim's snapshot, taken after
 * the reap, sees the leases the reap returned to ready. */
static int queue_claim(struct ld_queue *q, int64_t now_ms, struct ld_job *out)
{
	struct qparams reap = {0}, claim = {0};
	PGresult *r = NULL, *c = NULL;
	int rc = -EIO;

	if (ready(q) != 0)
		return -EIO;
	qp_int(&reap, now_ms);
	qp_int(&reap, q->max_attempts);
	qp_int(&claim, now_ms);
	qp_const(&claim, q->owner);
	qp_int(&claim, q->lease_ms);
	if (PQenterPipelineMode(q->pg) != 1 ||
	    PQsendQueryPrepared(q->pg, ld_queue_pg_stmts[LD_QPG_REAP].name, (int)reap.n, reap.v,
				NULL, NULL, 0) != 1 ||
	    PQsendQueryPrepared(q->pg, ld_queue_pg_stmts[LD_QPG_CLAIM].name, (int)claim.n, claim.v,
				NULL, NULL, 0) != 1 ||
	    PQpipelineSync(q->pg) != 1) {
		log_pg(q, "qjob_claim", NULL);
		goto out;
	}
	r = pipe_result(q, LD_QPG_REAP);
	/* After a failed reap the claim is PIPELINE_ABORTED: read it anyway. */
	c = r ? pipe_result(q, LD_QPG_CLAIM) : PQgetResult(q->pg);
	if (!r && c) {
		PQclear(c);
		c = NULL;
		PQclear(PQgetResult(q->pg));
	}
	/* The Sync's answer: the transaction's COMMIT returned. */
	{
		PGresult *sync = PQgetResult(q->pg);

		if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
			log_pg(q, "qjob_claim: commit", sync);
			PQclear(c);
			c = NULL;
		}
		PQclear(sync);
	}
	if (!r || !c)
		goto out;
	rc = -EAGAIN;
	if (PQntuples(c) == 1) {
		memset(out, 0, sizeof(*out));
		out->id = col_i64(c, 0, 0);
		snprintf(out->kind, sizeof(out->kind), "%s", PQgetvalue(c, 0, 1));
		out->subject = col_i64(c, 0, 2);
		out->attempts = (unsigned)col_i64(c, 0, 3);
		rc = 0;
	}
out:
	PQclear(r);
	PQclear(c);
	/* Back to ordinary mode for the other calls; a connection that
	 * cannot leave it is broken: reset it on the next call. */
	if (PQpipelineStatus(q->pg) != PQ_PIPELINE_OFF && PQexitPipelineMode(q->pg) != 1) {
		PQreset(q->pg);
		q->prepared = false;
	}
	return rc;
}

static int queue_complete(struct ld_queue *q, const struct ld_job *job, int64_t now_ms,
			  const struct ld_photo_outcome *outcome)
{
	struct qparams p = {0};
	PGresult *r;
	int rc;

	qp_int(&p, job->id);
	qp_const(&p, q->owner);
	qp_outcome(&p, outcome, &now_ms);
	r = run(q, LD_QPG_COMPLETE, &p);
	if (!r)
		return -EIO;
	/* No job deleted: no longer ours, and nothing was recorded (the
	 * worker that holds it now will). */
	rc = PQntuples(r) == 1 && col_i64(r, 0, 0) == 1 ? 0 : -ESTALE;
	PQclear(r);
	return rc;
}

static int queue_fail(struct ld_queue *q, const struct ld_job *job, int64_t now_ms,
		      int64_t retry_at_ms, const char *error,
		      const struct ld_photo_outcome *dead_outcome, bool *dead)
{
	struct qparams p = {0};
	PGresult *r;
	int rc = -ESTALE;

	*dead = false;
	qp_int(&p, job->id);
	qp_const(&p, q->owner);
	qp_int(&p, q->max_attempts);
	qp_int(&p, retry_at_ms);
	qp_text(&p, error);
	qp_int(&p, now_ms);
	qp_outcome(&p, dead_outcome, NULL);
	r = run(q, LD_QPG_FAIL, &p);
	if (!r)
		return -EIO;
	if (PQntuples(r) == 1) {
		*dead = strcmp(PQgetvalue(r, 0, 0), "dead") == 0;
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int queue_release(struct ld_queue *q, const struct ld_job *job, int64_t now_ms)
{
	struct qparams p = {0};
	PGresult *r;
	int rc;

	qp_int(&p, job->id);
	qp_const(&p, q->owner);
	qp_int(&p, now_ms);
	r = run(q, LD_QPG_RELEASE, &p);
	if (!r)
		return -EIO;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : -ESTALE;
	PQclear(r);
	return rc;
}

static int queue_photo(struct ld_queue *q, int64_t id, struct ld_job_photo *out)
{
	struct qparams p = {0};
	PGresult *r;
	int rc = -ENOENT;

	qp_int(&p, id);
	r = run(q, LD_QPG_PHOTO, &p);
	if (!r)
		return -EIO;
	if (PQntuples(r) == 1) {
		memset(out, 0, sizeof(*out));
		out->id = col_i64(r, 0, 0);
		out->user_id = col_i64(r, 0, 1);
		snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, 0, 2));
		snprintf(out->content_type, sizeof(out->content_type), "%s", PQgetvalue(r, 0, 3));
		out->size = col_i64(r, 0, 4);
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int queue_stats(struct ld_queue *q, int64_t now_ms, struct ld_queue_stats *out)
{
	struct qparams p = {0};
	PGresult *r;
	int64_t oldest;

	memset(out, 0, sizeof(*out));
	qp_int(&p, now_ms);
	r = run(q, LD_QPG_STATS, &p);
	if (!r)
		return -EIO;
	out->ready = col_i64(r, 0, 0);
	out->leased = col_i64(r, 0, 1);
	out->dead = col_i64(r, 0, 2);
	oldest = col_i64(r, 0, 3);
	if (!PQgetisnull(r, 0, 3))
		out->oldest_age_ms = now_ms - oldest;
	PQclear(r);
	return 0;
}

const struct ld_queue_vt ld_queue_pg_vt = {
    .name = "postgres",
    .open = queue_open,
    .claim = queue_claim,
    .complete = queue_complete,
    .fail = queue_fail,
    .release = queue_release,
    .photo = queue_photo,
    .stats = queue_stats,
    .close = queue_close,
};
