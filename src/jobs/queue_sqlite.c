/*
 * queue_sqlite.c - the job queue on SQLite. Contract in queue.h; the tables
 * and the triggers that insert jobs are migration 2 (store/migrations.c).
 *
 * A claim is one statement, `UPDATE ... WHERE id = (SELECT ... LIMIT 1)
 * RETURNING`: SQLite has one writer at a time, so the select and the update
 * cannot interleave with another worker's, and two workers never lease the
 * same job. Every later change is conditioned on `lease_owner = ?` and
 * `state = 'leased'`, which is the whole lease check.
 */
#include "jobs/queue_sqlite.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "store/migrations.h"

/* clang-format off */
#define P_INT(v)  {false, (v), NULL}
#define P_TEXT(s) {true, 0, (s)}

const struct ld_sql_stmt ld_queue_sqlite_stmts[LD_QSQL_COUNT] = {
	/* A lease that ran out with its attempts spent is a job that killed
	 * every worker that took it (a decoder crash, the OOM killer): it dies
	 * here, as job_fail would make it, or it would loop for ever. The photo
	 * first, while its job is still the leased one. */
	[LD_QSQL_REAP_DEAD_PHOTO] = {"job_reap_dead_photo",
		"UPDATE photos SET status = 'failed',"
		" reason = 'the worker died on it ' || ?2 || ' times', updated_ms = ?1,"
		" version = version + 1"
		" WHERE status = 'processing' AND id IN (SELECT subject FROM jobs"
		"  WHERE state = 'leased' AND lease_until_ms <= ?1 AND attempts >= ?2"
		"  AND kind = 'thumbnail')",
		LD_SQL_WRITER, 2, {P_INT(1700000000000), P_INT(5)}},
	[LD_QSQL_REAP_DEAD] = {"job_reap_dead",
		"UPDATE jobs SET state = 'dead', lease_owner = '', updated_ms = ?1,"
		" last_error = 'the worker died on it ' || attempts || ' times'"
		" WHERE state = 'leased' AND lease_until_ms <= ?1 AND attempts >= ?2",
		LD_SQL_WRITER, 2, {P_INT(1700000000000), P_INT(5)}},
	/* The others (run after job_reap_dead, in its transaction) go back to
	 * ready. */
	[LD_QSQL_REAP] = {"job_reap",
		"UPDATE jobs SET state = 'ready', lease_owner = '', run_at_ms = ?1,"
		" updated_ms = ?1 WHERE state = 'leased' AND lease_until_ms <= ?1",
		LD_SQL_WRITER, 1, {P_INT(1700000000000)}},
	[LD_QSQL_CLAIM] = {"job_claim",
		"UPDATE jobs SET state = 'leased', attempts = attempts + 1, lease_owner = ?2,"
		" lease_until_ms = ?1 + ?3, updated_ms = ?1"
		" WHERE id = (SELECT id FROM jobs WHERE state = 'ready' AND run_at_ms <= ?1"
		"  ORDER BY run_at_ms LIMIT 1)"
		" RETURNING id, kind, subject, attempts",
		LD_SQL_WRITER, 3, {P_INT(1700000000000), P_TEXT("host:1:0"), P_INT(60000)}},
	[LD_QSQL_DELETE] = {"job_delete",
		"DELETE FROM jobs WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
		LD_SQL_WRITER, 2, {P_INT(7), P_TEXT("host:1:0")}},
	[LD_QSQL_FAIL] = {"job_fail",
		"UPDATE jobs SET state = CASE WHEN attempts >= ?3 THEN 'dead' ELSE 'ready' END,"
		" run_at_ms = ?4, last_error = ?5, lease_owner = '', updated_ms = ?6"
		" WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2 RETURNING state",
		LD_SQL_WRITER, 6,
		{P_INT(7), P_TEXT("host:1:0"), P_INT(5), P_INT(1700000001000),
		 P_TEXT("decode failed"), P_INT(1700000000000)}},
	[LD_QSQL_RELEASE] = {"job_release",
		"UPDATE jobs SET state = 'ready', attempts = attempts - 1, lease_owner = '',"
		" run_at_ms = ?3, updated_ms = ?3"
		" WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
		LD_SQL_WRITER, 3, {P_INT(7), P_TEXT("host:1:0"), P_INT(1700000000000)}},
	[LD_QSQL_PHOTO] = {"job_photo",
		"SELECT id, user_id, status, content_type, size FROM photos WHERE id = ?1",
		LD_SQL_WRITER, 1, {P_INT(4242)}},
	[LD_QSQL_FINISH] = {"photo_finish",
		"UPDATE photos SET status = ?2, reason = ?3, width = ?4, height = ?5,"
		" updated_ms = ?6, version = version + 1"
		" WHERE id = ?1 AND status = 'processing'",
		LD_SQL_WRITER, 6,
		{P_INT(4242), P_TEXT("ready"), P_TEXT(""), P_INT(6000), P_INT(4000),
		 P_INT(1700000000000)}},
	[LD_QSQL_VERSION] = {"photo_version_put",
		"INSERT OR REPLACE INTO photo_versions (photo_id, name, width, height, size, etag)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		LD_SQL_WRITER, 6,
		{P_INT(4242), P_TEXT("512"), P_INT(512), P_INT(341), P_INT(40000),
		 P_TEXT("\"0123456789abcdef\"")}},
	[LD_QSQL_N_READY] = {"job_count_ready",
		"SELECT count(*) FROM jobs WHERE state = 'ready'",
		LD_SQL_WRITER, 0, {{0}}},
	[LD_QSQL_N_LEASED] = {"job_count_leased",
		"SELECT count(*) FROM jobs WHERE state = 'leased'",
		LD_SQL_WRITER, 0, {{0}}},
	[LD_QSQL_N_DEAD] = {"job_count_dead",
		"SELECT count(*) FROM jobs WHERE state = 'dead'",
		LD_SQL_WRITER, 0, {{0}}},
	[LD_QSQL_OLDEST] = {"job_oldest_ready",
		"SELECT min(run_at_ms) FROM jobs WHERE state = 'ready' AND run_at_ms <= ?1",
		LD_SQL_WRITER, 1, {P_INT(1700000000000)}},
	[LD_QSQL_BEGIN] = {"job_begin", "BEGIN IMMEDIATE", LD_SQL_WRITER, 0, {{0}}},
	[LD_QSQL_COMMIT] = {"job_commit", "COMMIT", LD_SQL_WRITER, 0, {{0}}},
	[LD_QSQL_ROLLBACK] = {"job_rollback", "ROLLBACK", LD_SQL_WRITER, 0, {{0}}},
};
/* clang-format on */

struct ld_queue {
	sqlite3 *db;
	sqlite3_stmt *st[LD_QSQL_COUNT];
	char owner[LD_JOB_OWNER_MAX + 1];
	int64_t lease_ms;
	unsigned max_attempts;
};

void ld_queue_config_default(struct ld_queue_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->owner = "worker";
	cfg->lease_ms = 60000;
	cfg->max_attempts = 5;
	cfg->busy_timeout_ms = 5000;
	cfg->synchronous_full = true;
	cfg->connect_timeout_ms = 5000;
}

int64_t ld_job_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, double rnd)
{
	int64_t window = base_ms;
	unsigned i;

	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	for (i = 1; i < attempt && window < cap_ms; i++)
		window = window > INT64_MAX / 2 ? INT64_MAX : window * 2;
	if (window > cap_ms)
		window = cap_ms;
	if (rnd < 0)
		rnd = 0;
	if (rnd >= 1)
		rnd = 0.999999999;
	return (int64_t)(rnd * (double)(window + 1));
}

static void log_db(struct ld_queue *q, const char *what)
{
	const char *kv[] = {"op", what, "detail", sqlite3_errmsg(q->db), NULL};

	ld_log_event("error", "queue: statement failed", kv);
}

static int step_done(struct ld_queue *q, enum ld_qsql_id id)
{
	int rc = sqlite3_step(q->st[id]);

	sqlite3_reset(q->st[id]);
	if (rc != SQLITE_DONE) {
		log_db(q, ld_queue_sqlite_stmts[id].name);
		return -EIO;
	}
	return 0;
}

static void queue_close(struct ld_queue *q)
{
	unsigned i;

	if (!q)
		return;
	for (i = 0; i < LD_QSQL_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q);
}

static int queue_open(const struct ld_queue_config *cfg, struct ld_queue **out, char *err,
		      size_t errlen)
{
	struct ld_queue *q;
	char path[PATH_MAX], sql[64];
	int rc = -ENOMEM, n, version = 0;
	unsigned i;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		goto out;
	rc = -EINVAL;
	if (!cfg->data_dir || !cfg->owner || !cfg->owner[0] ||
	    strlen(cfg->owner) > LD_JOB_OWNER_MAX || cfg->lease_ms <= 0 || cfg->max_attempts == 0 ||
	    cfg->busy_timeout_ms > INT_MAX) {
		snprintf(err, errlen, "queue: data_dir, owner, lease and attempts must be set");
		goto fail;
	}
	snprintf(q->owner, sizeof(q->owner), "%s", cfg->owner);
	q->lease_ms = cfg->lease_ms;
	q->max_attempts = cfg->max_attempts;
	n = snprintf(path, sizeof(path), "%s/ladder.db", cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "queue: data directory path too long");
		goto fail;
	}
	rc = -EIO;
	/* No CREATE: the worker works on a database the server (or `ladder
	 * migrate`) made; a wrong --data is an error, not a new empty file. */
	if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "queue: open %s: %s", path,
			 q->db ? sqlite3_errmsg(q->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, (int)cfg->busy_timeout_ms);
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s",
		 cfg->synchronous_full ? "FULL" : "NORMAL");
	if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(q->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "queue: %s: pragma: %s", path, sqlite3_errmsg(q->db));
		goto fail;
	}
	if (ld_sqlite_user_version(q->db, &version) != 0 || version < 2) {
		snprintf(err, errlen,
			 "queue: %s has schema version %d, jobs need 2: run `ladder migrate`", path,
			 version);
		goto fail;
	}
	for (i = 0; i < LD_QSQL_COUNT; i++) {
		if (sqlite3_prepare_v3(q->db, ld_queue_sqlite_stmts[i].sql, -1,
				       SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "queue: prepare %s: %s",
				 ld_queue_sqlite_stmts[i].name, sqlite3_errmsg(q->db));
			goto fail;
		}
	}
	*out = q;
	rc = 0;
	goto out;
fail:
	queue_close(q);
out:
	return rc;
}

static void bind_owner(struct ld_queue *q, sqlite3_stmt *st, int idx)
{
	sqlite3_bind_text(st, idx, q->owner, -1, SQLITE_STATIC);
}

/* reap ends the expired leases in one transaction: out of attempts, the job
 * is dead and its photo failed together (a photo never stays `processing`
 * behind a dead job); the others are ready again. */
static int reap(struct ld_queue *q, int64_t now_ms)
{
	int rc;

	rc = step_done(q, LD_QSQL_BEGIN);
	if (rc != 0)
		return rc;
	sqlite3_bind_int64(q->st[LD_QSQL_REAP_DEAD_PHOTO], 1, now_ms);
	sqlite3_bind_int64(q->st[LD_QSQL_REAP_DEAD_PHOTO], 2, q->max_attempts);
	rc = step_done(q, LD_QSQL_REAP_DEAD_PHOTO);
	if (rc == 0) {
		sqlite3_bind_int64(q->st[LD_QSQL_REAP_DEAD], 1, now_ms);
		sqlite3_bind_int64(q->st[LD_QSQL_REAP_DEAD], 2, q->max_attempts);
		rc = step_done(q, LD_QSQL_REAP_DEAD);
	}
	if (rc == 0) {
		sqlite3_bind_int64(q->st[LD_QSQL_REAP], 1, now_ms);
		rc = step_done(q, LD_QSQL_REAP);
	}
	if (rc == 0)
		rc = step_done(q, LD_QSQL_COMMIT);
	if (rc != 0 && !sqlite3_get_autocommit(q->db))
		step_done(q, LD_QSQL_ROLLBACK);
	return rc;
}

static int queue_claim(struct ld_queue *q, int64_t now_ms, struct ld_job *out)
{
	sqlite3_stmt *st = q->st[LD_QSQL_CLAIM];
	const unsigned char *kind;
	int rc;

	/* The reap, then the claim in its own transaction: a reaped job that
	 * another worker claims first is fine, it is that worker's now. */
	rc = reap(q, now_ms);
	if (rc != 0)
		return rc;
	sqlite3_bind_int64(st, 1, now_ms);
	bind_owner(q, st, 2);
	sqlite3_bind_int64(st, 3, q->lease_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->id = sqlite3_column_int64(st, 0);
		kind = sqlite3_column_text(st, 1);
		snprintf(out->kind, sizeof(out->kind), "%s", kind ? (const char *)kind : "");
		out->subject = sqlite3_column_int64(st, 2);
		out->attempts = (unsigned)sqlite3_column_int(st, 3);
		/* Step to the end so the UPDATE's transaction commits now. */
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? 0 : -EIO;
	} else {
		rc = rc == SQLITE_DONE ? -EAGAIN : -EIO;
	}
	if (rc == -EIO)
		log_db(q, "job_claim");
	sqlite3_reset(st);
	return rc;
}

static int put_outcome(struct ld_queue *q, const struct ld_photo_outcome *o, int64_t now_ms)
{
	sqlite3_stmt *st = q->st[LD_QSQL_FINISH];
	unsigned i;
	int rc;

	sqlite3_bind_int64(st, 1, o->photo_id);
	sqlite3_bind_text(st, 2, o->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, o->reason ? o->reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, o->width);
	sqlite3_bind_int(st, 5, o->height);
	sqlite3_bind_int64(st, 6, now_ms);
	rc = step_done(q, LD_QSQL_FINISH);
	/* A photo deleted meanwhile (or already finished by an earlier run of
	 * this job) gets no versions: the foreign key would refuse them. */
	if (rc != 0 || sqlite3_changes(q->db) == 0)
		return rc;
	for (i = 0; i < o->nversions && i < LD_PHOTO_VERSIONS; i++) {
		const struct ld_photo_version_row *v = &o->versions[i];

		st = q->st[LD_QSQL_VERSION];
		sqlite3_bind_int64(st, 1, o->photo_id);
		sqlite3_bind_text(st, 2, v->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, v->width);
		sqlite3_bind_int(st, 4, v->height);
		sqlite3_bind_int64(st, 5, v->size);
		sqlite3_bind_text(st, 6, v->etag, -1, SQLITE_STATIC);
		rc = step_done(q, LD_QSQL_VERSION);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int queue_complete(struct ld_queue *q, const struct ld_job *job, int64_t now_ms,
			  const struct ld_photo_outcome *outcome)
{
	sqlite3_stmt *st = q->st[LD_QSQL_DELETE];
	int rc;

	rc = step_done(q, LD_QSQL_BEGIN);
	if (rc != 0)
		return rc;
	/* The lease check first: a job that is no longer ours records
	 * nothing, the worker that holds it now will. */
	sqlite3_bind_int64(st, 1, job->id);
	bind_owner(q, st, 2);
	rc = step_done(q, LD_QSQL_DELETE);
	if (rc != 0)
		goto rollback;
	if (sqlite3_changes(q->db) != 1) {
		rc = -ESTALE;
		goto rollback;
	}
	if (outcome) {
		rc = put_outcome(q, outcome, now_ms);
		if (rc != 0)
			goto rollback;
	}
	rc = step_done(q, LD_QSQL_COMMIT);
	if (rc == 0)
		return 0;
rollback:
	if (!sqlite3_get_autocommit(q->db))
		step_done(q, LD_QSQL_ROLLBACK);
	return rc;
}

static int queue_fail(struct ld_queue *q, const struct ld_job *job, int64_t now_ms,
		      int64_t retry_at_ms, const char *error,
		      const struct ld_photo_outcome *dead_outcome, bool *dead)
{
	sqlite3_stmt *st = q->st[LD_QSQL_FAIL];
	const unsigned char *state;
	int rc;

	*dead = false;
	rc = step_done(q, LD_QSQL_BEGIN);
	if (rc != 0)
		return rc;
	sqlite3_bind_int64(st, 1, job->id);
	bind_owner(q, st, 2);
	sqlite3_bind_int64(st, 3, q->max_attempts);
	sqlite3_bind_int64(st, 4, retry_at_ms);
	sqlite3_bind_text(st, 5, error ? error : "",
			  (int)strnlen(error ? error : "", LD_JOB_ERROR_MAX), SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		state = sqlite3_column_text(st, 0);
		*dead = state && strcmp((const char *)state, "dead") == 0;
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	} else {
		rc = rc == SQLITE_DONE ? -ESTALE : -EIO;
	}
	if (rc == -EIO)
		log_db(q, "job_fail");
	sqlite3_reset(st);
	if (rc == 0 && *dead && dead_outcome)
		rc = put_outcome(q, dead_outcome, now_ms);
	if (rc == 0)
		rc = step_done(q, LD_QSQL_COMMIT);
	if (rc != 0) {
		*dead = false;
		if (!sqlite3_get_autocommit(q->db))
			step_done(q, LD_QSQL_ROLLBACK);
	}
	return rc;
}

static int queue_release(struct ld_queue *q, const struct ld_job *job, int64_t now_ms)
{
	sqlite3_stmt *st = q->st[LD_QSQL_RELEASE];
	int rc;

	sqlite3_bind_int64(st, 1, job->id);
	bind_owner(q, st, 2);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = step_done(q, LD_QSQL_RELEASE);
	if (rc == 0 && sqlite3_changes(q->db) != 1)
		rc = -ESTALE;
	return rc;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const unsigned char *p = sqlite3_column_text(st, col);

	snprintf(dst, cap, "%s", p ? (const char *)p : "");
}

static int queue_photo(struct ld_queue *q, int64_t id, struct ld_job_photo *out)
{
	sqlite3_stmt *st = q->st[LD_QSQL_PHOTO];
	int rc;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->id = sqlite3_column_int64(st, 0);
		out->user_id = sqlite3_column_int64(st, 1);
		copy_col(out->status, sizeof(out->status), st, 2);
		copy_col(out->content_type, sizeof(out->content_type), st, 3);
		out->size = sqlite3_column_int64(st, 4);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		log_db(q, "job_photo");
		rc = -EIO;
	}
	sqlite3_reset(st);
	return rc;
}

static int count(struct ld_queue *q, enum ld_qsql_id id, int64_t now_ms, int64_t *out)
{
	sqlite3_stmt *st = q->st[id];
	int rc;

	if (ld_queue_sqlite_stmts[id].nparams == 1)
		sqlite3_bind_int64(st, 1, now_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		log_db(q, ld_queue_sqlite_stmts[id].name);
		rc = -EIO;
	}
	sqlite3_reset(st);
	return rc;
}

static int queue_stats(struct ld_queue *q, int64_t now_ms, struct ld_queue_stats *out)
{
	int64_t oldest = -1;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = count(q, LD_QSQL_N_READY, now_ms, &out->ready);
	if (rc == 0)
		rc = count(q, LD_QSQL_N_LEASED, now_ms, &out->leased);
	if (rc == 0)
		rc = count(q, LD_QSQL_N_DEAD, now_ms, &out->dead);
	if (rc == 0)
		rc = count(q, LD_QSQL_OLDEST, now_ms, &oldest);
	if (rc == 0 && oldest >= 0)
		out->oldest_age_ms = now_ms - oldest;
	return rc;
}

const struct ld_queue_vt ld_queue_sqlite_vt = {
    .name = "sqlite",
    .open = queue_open,
    .claim = queue_claim,
    .complete = queue_complete,
    .fail = queue_fail,
    .release = queue_release,
    .photo = queue_photo,
    .stats = queue_stats,
    .close = queue_close,
};
