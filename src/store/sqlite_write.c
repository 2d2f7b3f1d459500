/*
 * sqlite_write.c - the SQLite store's writer thread (group commit) and its
 * checkpointer thread. See sqlite.h for the contract and sqlite_int.h for
 * the structs.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "obs/metrics.h"
#include "obs/stats.h"
#include "obs/threads.h"
#include "store/sqlite_int.h"

/* The writer's WAL hook wakes the checkpointer once the log holds this many
 * pages (SQLite's own default for its in-line checkpoints, ~4 MiB). If the
 * checkpointer cannot catch up with a writer that never pauses, the WAL
 * cannot restart; at the second mark the writer copies the rest itself. */
#define CKPT_FRAMES	  1000
#define CKPT_FORCE_FRAMES 16000

static int64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* why_no_row tells why an update or delete of one owned row (an item or a
 * photo) matched nothing, in the order the contract gives: missing, then
 * not the owner, then a stale version (for a photo's complete: not
 * uploading any more). check reads the row's owner by id. */
static int why_no_row(struct ld_store *s, int check, const struct ld_store_op *op, int *rcp)
{
	sqlite3_stmt *st = s->stmt[check];
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, op->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		status = LD_STORE_NOT_FOUND;
	else if (rc != SQLITE_ROW)
		*rcp = rc;
	else if (sqlite3_column_int64(st, 0) != op->actor_id)
		status = LD_STORE_FORBIDDEN;
	else
		status = LD_STORE_PRECONDITION;
	sqlite3_reset(st);
	return status;
}

static int item_why(struct ld_store *s, const struct ld_store_op *op, int *rcp)
{
	return why_no_row(s, LD_SQL_ITEM_CHECK, op, rcp);
}

static int user_create(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_USER_INSERT];
	struct ld_user *u = &op->user;
	int64_t id = ld_idgen_next(&s->idgen, now);
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, u->handle, ld__sqlite_text_len(u->handle, LD_HANDLE_MAX),
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 3, u->display_name,
			  ld__sqlite_text_len(u->display_name, LD_DISPLAY_NAME_MAX), SQLITE_STATIC);
	sqlite3_bind_text(st, 4, u->password_hash,
			  ld__sqlite_text_len(u->password_hash, LD_PASSWORD_HASH_MAX),
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		u->id = id;
		u->created_ms = now;
		u->updated_ms = now;
		u->version = 1;
		status = LD_STORE_OK;
	} else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		status = LD_STORE_CONFLICT; /* the handle; ids never repeat */
	} else {
		*rcp = rc;
	}
	sqlite3_reset(st);
	return status;
}

static int user_update(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_USER_UPDATE];
	struct ld_user *u = &op->user;
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, op->id);
	sqlite3_bind_text(st, 2, u->display_name,
			  ld__sqlite_text_len(u->display_name, LD_DISPLAY_NAME_MAX), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	/* With RETURNING every change is made by the first step. */
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		u->id = op->id;
		ld__sqlite_copy_text(u->handle, sizeof(u->handle), st, 0);
		ld__sqlite_copy_text(u->password_hash, sizeof(u->password_hash), st, 1);
		u->created_ms = sqlite3_column_int64(st, 2);
		u->version = sqlite3_column_int64(st, 3);
		u->updated_ms = now;
		status = LD_STORE_OK;
	} else if (rc == SQLITE_DONE) {
		status = LD_STORE_NOT_FOUND;
	} else {
		*rcp = rc;
	}
	sqlite3_reset(st);
	return status;
}

static int item_create(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_ITEM_INSERT];
	struct ld_item *it = &op->item;
	int64_t id;
	int status = LD_STORE_ERROR, rc;

	if (it->content_len > LD_CONTENT_MAX) {
		*rcp = SQLITE_TOOBIG;
		goto out;
	}
	id = ld_idgen_next(&s->idgen, now);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, op->actor_id);
	sqlite3_bind_text(st, 3, it->content, (int)it->content_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		it->id = id;
		it->user_id = op->actor_id;
		it->content[it->content_len] = '\0';
		it->created_ms = now;
		it->updated_ms = now;
		it->version = 1;
		status = LD_STORE_OK;
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		status = LD_STORE_NOT_FOUND; /* no such owner */
	} else {
		*rcp = rc;
	}
	sqlite3_reset(st);
out:
	return status;
}

static int item_update(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_ITEM_UPDATE];
	struct ld_item *it = &op->item;
	int status = LD_STORE_ERROR, rc;

	if (it->content_len > LD_CONTENT_MAX) {
		*rcp = SQLITE_TOOBIG;
		goto out;
	}
	sqlite3_bind_int64(st, 1, op->id);
	sqlite3_bind_int64(st, 2, op->actor_id);
	sqlite3_bind_int64(st, 3, op->expect_version);
	sqlite3_bind_text(st, 4, it->content, (int)it->content_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		it->id = op->id;
		it->user_id = op->actor_id;
		it->content[it->content_len] = '\0';
		it->created_ms = sqlite3_column_int64(st, 0);
		it->version = sqlite3_column_int64(st, 1);
		it->updated_ms = now;
		status = LD_STORE_OK;
	} else if (rc != SQLITE_DONE) {
		*rcp = rc;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		status = item_why(s, op, rcp);
out:
	return status;
}

static int item_delete(struct ld_store *s, struct ld_store_op *op, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_ITEM_DELETE];
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, op->id);
	sqlite3_bind_int64(st, 2, op->actor_id);
	sqlite3_bind_int64(st, 3, op->expect_version);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		*rcp = rc;
	else if (sqlite3_changes(s->db) == 1)
		status = LD_STORE_OK;
	else
		status = item_why(s, op, rcp);
	return status;
}

/* ---- photos ---- */

static int photo_why(struct ld_store *s, const struct ld_store_op *op, int *rcp)
{
	return why_no_row(s, LD_SQL_PHOTO_CHECK, op, rcp);
}

static int photo_create(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_PHOTO_INSERT];
	struct ld_photo *p = &op->photo;
	int64_t id = ld_idgen_next(&s->idgen, now);
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, op->actor_id);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, op->limit);
	sqlite3_bind_int64(st, 5, op->expect_version);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE && sqlite3_changes(s->db) == 1) {
		memset(p, 0, sizeof(*p));
		p->id = id;
		p->user_id = op->actor_id;
		snprintf(p->status, sizeof(p->status), "uploading");
		p->created_ms = p->updated_ms = now;
		p->version = 1;
		status = LD_STORE_OK;
	} else if (rc == SQLITE_DONE) {
		status = LD_STORE_CONFLICT; /* uploads in flight at the cap */
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		status = LD_STORE_NOT_FOUND; /* no such owner */
	} else {
		*rcp = rc;
	}
	return status;
}

static int photo_complete(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_PHOTO_COMPLETE];
	struct ld_photo *p = &op->photo;
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, op->id);
	sqlite3_bind_int64(st, 2, op->actor_id);
	sqlite3_bind_text(st, 3, p->content_type,
			  ld__sqlite_text_len(p->content_type, sizeof(p->content_type) - 1),
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, p->size);
	sqlite3_bind_int(st, 5, p->width);
	sqlite3_bind_int(st, 6, p->height);
	sqlite3_bind_int64(st, 7, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		p->id = op->id;
		p->user_id = op->actor_id;
		snprintf(p->status, sizeof(p->status), "processing");
		p->created_ms = sqlite3_column_int64(st, 0);
		p->version = sqlite3_column_int64(st, 1);
		p->updated_ms = now;
		p->reason[0] = '\0';
		p->nversions = 0;
		status = LD_STORE_OK;
	} else if (rc != SQLITE_DONE) {
		*rcp = rc;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		status = photo_why(s, op, rcp);
	return status;
}

static int photo_delete(struct ld_store *s, struct ld_store_op *op, int *rcp)
{
	sqlite3_stmt *st = s->stmt[LD_SQL_PHOTO_DELETE];
	int status = LD_STORE_ERROR, rc;

	sqlite3_bind_int64(st, 1, op->id);
	sqlite3_bind_int64(st, 2, op->actor_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		*rcp = rc;
	else if (sqlite3_changes(s->db) == 1)
		status = LD_STORE_OK;
	else
		status = photo_why(s, op, rcp);
	return status;
}

static int apply_op(struct ld_store *s, struct ld_store_op *op, int64_t now, int *rcp)
{
	switch (op->kind) {
	case LD_OP_USER_CREATE:
		return user_create(s, op, now, rcp);
	case LD_OP_USER_UPDATE:
		return user_update(s, op, now, rcp);
	case LD_OP_ITEM_CREATE:
		return item_create(s, op, now, rcp);
	case LD_OP_ITEM_UPDATE:
		return item_update(s, op, now, rcp);
	case LD_OP_ITEM_DELETE:
		return item_delete(s, op, rcp);
	case LD_OP_PHOTO_CREATE:
		return photo_create(s, op, now, rcp);
	case LD_OP_PHOTO_COMPLETE:
		return photo_complete(s, op, now, rcp);
	case LD_OP_PHOTO_DELETE:
		return photo_delete(s, op, rcp);
	case LD_OP_IDEM_REAP:
		return ld__sqlite_idem_reap(s, op, now, rcp);
	default:
		*rcp = SQLITE_MISUSE;
		return LD_STORE_ERROR;
	}
}

static int run(struct ld_store *s, enum ld_sql_id id)
{
	int rc = sqlite3_step(s->stmt[id]);

	sqlite3_reset(s->stmt[id]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void fail_batch(struct ld_store *s, struct ld_store_op *batch, unsigned n, int status)
{
	struct ld_store_op *op;

	for (op = batch; op; op = op->next)
		op->status = status;
	atomic_fetch_add_explicit(&s->errors, n, memory_order_relaxed);
}

/* When the writer's parts of a batch happened (uv_hrtime), for the stats. */
struct batch_times {
	uint64_t begin, sync, end;
	unsigned n; /* ops the transaction ran (the late ones left out) */
	bool committed;
};

/* test_delay sleeps before a COMMIT when the test-only setting asks for it,
 * to make commits the bottleneck on purpose. */
static void test_delay(const struct ld_store *s)
{
	struct timespec ts;

	if (!s->test_commit_delay_us)
		return;
	ts.tv_sec = (time_t)(s->test_commit_delay_us / 1000000);
	ts.tv_nsec = (long)(s->test_commit_delay_us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* How long the writer, idle after it could not get the database, waits
 * before it tries the lock again on its own (so /readyz recovers without
 * traffic). */
#define PROBE_NS (100ULL * 1000000)

int ld__sqlite_busy_handler(void *arg, int count)
{
	struct ld_store *s = arg;
	uint64_t now = uv_hrtime(), left;
	struct timespec ts;

	if (now >= s->busy_until_ns)
		return 0;
	/* Short sleeps first (a checkpoint holds the lock for microseconds),
	 * never past the deadline. */
	left = s->busy_until_ns - now;
	if (left > (count < 10 ? 1000000ULL : 5000000ULL))
		left = count < 10 ? 1000000ULL : 5000000ULL;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)left;
	nanosleep(&ts, NULL);
	return 1;
}

/* drop_late moves the ops of *batchp whose deadline has passed to the end of
 * *latep with LD_STORE_TIMEOUT: none of their statements has run, so they
 * are never committed. Returns how many ops stay; *first is the earliest
 * deadline among them. */
static unsigned drop_late(struct ld_store *s, struct ld_store_op **batchp,
			  struct ld_store_op ***late_tail, uint64_t *first)
{
	struct ld_store_op **pp = batchp, *op;
	uint64_t now = uv_hrtime();
	unsigned n = 0, late = 0;

	*first = UINT64_MAX;
	while ((op = *pp)) {
		if (op->due_ns <= now) {
			*pp = op->next;
			op->next = NULL;
			op->status = LD_STORE_TIMEOUT;
			**late_tail = op;
			*late_tail = &op->next;
			late++;
			continue;
		}
		if (op->due_ns < *first)
			*first = op->due_ns;
		n++;
		pp = &op->next;
	}
	if (late)
		ld__sqlite_timed_out(s, late);
	return n;
}

/* begin opens the batch's transaction. While another connection holds the
 * write lock, the busy handler waits until the earliest deadline in the batch
 * (or busy_timeout, whichever is first); at a deadline the ops due are moved
 * to the late list and the rest wait on. Returns SQLITE_OK with *np ops left
 * (0: all timed out, no transaction open), or the error. */
static int begin(struct ld_store *s, struct ld_store_op **batchp, struct ld_store_op ***late_tail,
		 unsigned *np)
{
	uint64_t give_up = uv_hrtime() + (uint64_t)s->busy_timeout_ms * 1000000, first;
	int rc;

	for (;;) {
		*np = drop_late(s, batchp, late_tail, &first);
		if (*np == 0)
			return SQLITE_OK;
		s->busy_until_ns = first < give_up ? first : give_up;
		rc = run(s, LD_SQL_BEGIN);
		if (rc == SQLITE_OK)
			break;
		if ((rc & 0xff) != SQLITE_BUSY || uv_hrtime() < first || uv_hrtime() >= give_up)
			return rc;
	}
	/* Inside the transaction the lock is ours; a checkpoint may still make
	 * a statement wait briefly. */
	s->busy_until_ns = uv_hrtime() + (uint64_t)s->busy_timeout_ms * 1000000;
	/* Nothing starts past its deadline: the lock may have come just late. */
	*np = drop_late(s, batchp, late_tail, &first);
	if (*np == 0) {
		run(s, LD_SQL_ROLLBACK);
		atomic_store_explicit(&s->stalled_since_ns, 0, memory_order_relaxed);
	}
	return SQLITE_OK;
}

/* run_batch commits the ops of *batchp in one transaction and sets every
 * op's status; ops whose deadline passed before their statement ran are moved
 * to *late_tail. Nothing is acknowledged unless the COMMIT returned. */
static void run_batch(struct ld_store *s, struct ld_store_op **batchp,
		      struct ld_store_op ***late_tail, struct batch_times *bt)
{
	struct ld_store_op *op;
	uint64_t t0 = uv_hrtime();
	int64_t now = now_unix_ms();
	unsigned n = 0, nerr = 0; /* nerr: ops that failed alone, inside a batch that commits */
	uint64_t unset = 0;
	bool unknown = false; /* the COMMIT itself failed */
	int rc, orc;

	for (op = *batchp; op; op = op->next)
		n++;
	if (!atomic_load(&s->healthy)) {
		fail_batch(s, *batchp, n, LD_STORE_UNAVAILABLE);
		goto out;
	}
	/* Stalled until a commit says otherwise (ping reads it). */
	atomic_compare_exchange_strong(&s->stalled_since_ns, &unset, t0);
	rc = begin(s, batchp, late_tail, &n);
	if (rc != SQLITE_OK)
		goto fail;
	if (n == 0)
		goto out;
	/* Every op is one changing statement, and SQLite undoes a failed
	 * statement (a taken handle) by itself while the transaction goes on:
	 * no savepoint per op is needed. A keyed write is two statements, and
	 * brings its own savepoint (sqlite_idem.c). */
	for (op = *batchp; op; op = op->next) {
		orc = SQLITE_OK;
		op->status = op->idem ? ld__sqlite_idem_write(s, op, now, &orc, apply_op)
				      : apply_op(s, op, now, &orc);
		if (op->status == LD_STORE_OK)
			continue;
		if (op->status == LD_STORE_ERROR) {
			nerr++;
			ld__sqlite_log_error(s, s->db, "write", orc);
		}
		/* If SQLite rolled the whole transaction back (some I/O and
		 * memory errors do), the batch is lost. */
		if (sqlite3_get_autocommit(s->db)) {
			rc = orc;
			goto fail;
		}
	}
	test_delay(s);
	bt->sync = uv_hrtime();
	rc = run(s, LD_SQL_COMMIT);
	if (rc != SQLITE_OK) {
		/* The frames may have reached the WAL before the sync failed:
		 * a crash recovery could still find the batch. */
		unknown = true;
		goto fail;
	}
	bt->end = uv_hrtime();
	bt->begin = t0;
	bt->committed = true;
	bt->n = n;
	for (op = *batchp; op; op = op->next) {
		op->t_commit_ns = t0;
		op->t_committed_ns = bt->end;
	}
	/* Release: a reader that sees the new count sees the commit (begin_read). */
	atomic_fetch_add_explicit(&s->commits, 1, memory_order_release);
	atomic_fetch_add_explicit(&s->committed_ops, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->errors, nerr, memory_order_relaxed);
	atomic_store_explicit(&s->stalled_since_ns, 0, memory_order_relaxed);
	ld_metrics_write_batch(n, bt->end - t0);
	goto out;
fail:
	ld__sqlite_log_error(s, s->db, "batch", rc);
	if (!sqlite3_get_autocommit(s->db))
		run(s, LD_SQL_ROLLBACK);
	/* An I/O error made the store unusable: UNAVAILABLE, as for every
	 * write after it, and of unknown outcome if it hit the COMMIT.
	 * Anything else was rolled back: an ERROR, not committed. */
	if (atomic_load(&s->healthy)) {
		fail_batch(s, *batchp, n, LD_STORE_ERROR);
	} else {
		fail_batch(s, *batchp, n, LD_STORE_UNAVAILABLE);
		for (op = *batchp; op; op = op->next)
			op->outcome_unknown = unknown;
	}
out:
	return;
}

/* probe tries the write lock once while the writer is idle after a stall;
 * getting it means the database is writable again. */
static void probe(struct ld_store *s)
{
	s->busy_until_ns = uv_hrtime() + PROBE_NS / 2;
	if (run(s, LD_SQL_BEGIN) != SQLITE_OK)
		return;
	run(s, LD_SQL_ROLLBACK);
	atomic_store_explicit(&s->stalled_since_ns, 0, memory_order_relaxed);
}

/* complete_batch hands each op back to its conn. Runs of ops from the same
 * conn go in one append and one wake-up. The async send happens under the
 * conn's lock: once the loop has taken the last op, conn_close may free the
 * conn, and the lock guarantees the writer is no longer touching it. */
static void complete_batch(struct ld_store_op *batch)
{
	struct ld_store_op *first = batch, *last, *next;
	struct ld_store_conn *c;

	while (first) {
		c = first->conn;
		last = first;
		while (last->next && last->next->conn == c)
			last = last->next;
		next = last->next;
		last->next = NULL;
		uv_mutex_lock(&c->mu);
		if (c->done_tail)
			c->done_tail->next = first;
		else
			c->done_head = first;
		c->done_tail = last;
		uv_async_send(&c->async);
		uv_mutex_unlock(&c->mu);
		first = next;
	}
}

void ld__sqlite_writer_main(void *arg)
{
	struct ld_store *s = arg;
	struct ld_store_op *batch, *last, *late, **late_tail;
	struct batch_times bt;
	uint64_t taken;
	unsigned n;
	int rc;

	ld_thread_register("writer");
	/* The writer's own busy handler, so a wait for the lock ends at the
	 * batch's first deadline (open used busy_timeout for migrations). */
	sqlite3_busy_handler(s->db, ld__sqlite_busy_handler, s);
	for (;;) {
		uv_mutex_lock(&s->mu);
		while (!s->head && !atomic_load(&s->closing)) {
			s->writer_waiting = true;
			if (!atomic_load_explicit(&s->stalled_since_ns, memory_order_relaxed)) {
				uv_cond_wait(&s->cv, &s->mu);
				s->writer_waiting = false;
				continue;
			}
			rc = uv_cond_timedwait(&s->cv, &s->mu, PROBE_NS);
			s->writer_waiting = false;
			if (rc == UV_ETIMEDOUT && !s->head && !atomic_load(&s->closing)) {
				uv_mutex_unlock(&s->mu);
				probe(s);
				uv_mutex_lock(&s->mu);
			}
		}
		if (!s->head) {
			/* Closing and every queued op is done. */
			uv_mutex_unlock(&s->mu);
			break;
		}
		/* Take everything that waits, up to the batch cap: whatever
		 * piled up during the last fsync rides the next one. */
		batch = s->head;
		if (s->queued <= s->write_batch_max) {
			n = s->queued;
			s->head = s->tail = NULL;
		} else {
			n = s->write_batch_max;
			for (last = batch; --n > 0;)
				last = last->next;
			n = s->write_batch_max;
			s->head = last->next;
			last->next = NULL;
		}
		s->queued -= n;
		uv_mutex_unlock(&s->mu);
		atomic_fetch_sub_explicit(&s->depth, n, memory_order_relaxed);

		taken = uv_hrtime();
		memset(&bt, 0, sizeof(bt));
		for (last = batch; last; last = last->next)
			last->t_taken_ns = taken;
		late = NULL;
		late_tail = &late;
		run_batch(s, &batch, &late_tail, &bt);
		complete_batch(batch);
		complete_batch(late);
		ld_obs_writer_batch(bt.n, bt.committed, taken, bt.begin, bt.sync, bt.end,
				    uv_hrtime());
	}
}

/* flush hands the writes staged on c to the writer: one lock and at most one
 * wake-up per loop iteration, however many requests wrote. Without this the
 * writer, idle after a commit, would wake for the first op that a loop
 * resubmits and commit it alone while the rest pile up behind its fsync. */

/* ---- checkpoints, off the writer's path ----------------------------------- */

/*
 * SQLite normally checkpoints inside the COMMIT that crosses the threshold:
 * that commit then copies thousands of pages into the database file and
 * fsyncs it, and every op of its batch (and all queued behind) waits. Here
 * the writer only wakes another thread, which runs PASSIVE checkpoints on
 * its own connection while the writer goes on appending to the WAL.
 */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct ld_store *s = arg;
	int rc;

	if (frames >= CKPT_FORCE_FRAMES) {
		/* Nothing appends while the writer is in here, so this
		 * checkpoint can finish and let the WAL restart. BUSY means the
		 * checkpointer is at it; the next commit tries again. */
		rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			ld__sqlite_log_error(s, db, "checkpoint", rc);
	} else if (frames >= CKPT_FRAMES) {
		uv_mutex_lock(&s->ckpt_mu);
		if (!s->ckpt_wanted) {
			s->ckpt_wanted = true;
			uv_cond_signal(&s->ckpt_cv);
		}
		uv_mutex_unlock(&s->ckpt_mu);
	}
	return SQLITE_OK;
}

static void ckpt_main(void *arg)
{
	struct ld_store *s = arg;
	int rc;

	ld_thread_register("checkpointer");
	for (;;) {
		uv_mutex_lock(&s->ckpt_mu);
		while (!s->ckpt_wanted && !s->ckpt_stop)
			uv_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
		if (s->ckpt_stop) {
			uv_mutex_unlock(&s->ckpt_mu);
			break;
		}
		s->ckpt_wanted = false;
		uv_mutex_unlock(&s->ckpt_mu);
		rc = sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
					       NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			ld__sqlite_log_error(s, s->ckpt_db, "checkpoint", rc);
	}
}

int ld__sqlite_ckpt_start(struct ld_store *s, char *err, size_t errlen)
{
	char sql[64];
	int rc = -EIO;

	if (uv_mutex_init(&s->ckpt_mu) != 0)
		goto out;
	if (uv_cond_init(&s->ckpt_cv) != 0) {
		uv_mutex_destroy(&s->ckpt_mu);
		goto out;
	}
	s->ckpt_started = true; /* from here on stop() has something to undo */
	if (sqlite3_open_v2(s->path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(s->ckpt_db, 1);
	sqlite3_busy_timeout(s->ckpt_db, (int)s->busy_timeout_ms);
	/* The checkpoint's fsyncs follow the same durability setting. */
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s", s->sync_full ? "FULL" : "NORMAL");
	if (ld__sqlite_pragma(s->ckpt_db, sql, NULL, 0) != 0)
		goto fail;
	rc = uv_thread_create(&s->ckpt_thread, ckpt_main, s);
	if (rc != 0)
		goto fail;
	/* Replaces SQLite's in-line auto-checkpoint on the writer. */
	sqlite3_wal_hook(s->db, on_wal_commit, s);
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "checkpointer: %s",
		 s->ckpt_db ? sqlite3_errmsg(s->ckpt_db) : "cannot start");
	sqlite3_close(s->ckpt_db);
	s->ckpt_db = NULL;
	rc = -EIO;
out:
	return rc;
}

void ld__sqlite_ckpt_stop(struct ld_store *s)
{
	if (!s->ckpt_started)
		return;
	if (s->ckpt_db) {
		uv_mutex_lock(&s->ckpt_mu);
		s->ckpt_stop = true;
		uv_cond_signal(&s->ckpt_cv);
		uv_mutex_unlock(&s->ckpt_mu);
		uv_thread_join(&s->ckpt_thread);
		sqlite3_close(s->ckpt_db);
		s->ckpt_db = NULL;
	}
	if (s->db)
		sqlite3_wal_hook(s->db, NULL, NULL);
	uv_cond_destroy(&s->ckpt_cv);
	uv_mutex_destroy(&s->ckpt_mu);
	s->ckpt_started = false;
}
