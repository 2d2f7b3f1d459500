/*
 * store_env.h - what the store's unit tests share: a fresh database in a
 * temporary directory, a real libuv loop and its conn, ops run to
 * completion, and the write lock held from a second connection.
 *
 * Batching is made deterministic without test hooks in the driver: while the
 * test holds the write lock (BEGIN IMMEDIATE), the writer sits in its busy
 * handler with the first op, and the test queues more behind it.
 *
 * Included by one test file each; the helpers are static inline so a file
 * need not use them all.
 */
#ifndef LD_STORE_ENV_H
#define LD_STORE_ENV_H

#include "unit.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "store/deferred.h"
#include "store/migrations.h"
#include "store/sqlite.h"
#include "store/store.h"

/* The driver under test: test_store runs every test through SQLite and
 * again through sqlite-deferred, whose completions all come later. */
static const struct ld_store_vt *vt = &ld_sqlite_vt;

struct env {
	char dir[PATH_MAX];  /* the temporary directory */
	char data[PATH_MAX]; /* data_dir inside it */
	struct ld_store_config cfg;
	struct ld_store *s;
	uv_loop_t loop;
	struct ld_store_conn *c;
};

/* Counts completions and checks they arrive on the expected thread. */
struct tally {
	unsigned done;
	unsigned wrong_thread;
	uv_thread_t thread;
};

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static inline void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void env_setup(struct env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "%s/ladder-store-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(e->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	/* A missing parent too: open creates both. */
	if (snprintf(e->data, sizeof(e->data), "%.4000s/data/db", e->dir) < 0)
		exit(2);
	ld_store_config_default(&e->cfg);
	e->cfg.data_dir = e->data;
	e->cfg.synchronous_full = false;
	e->cfg.busy_timeout_ms = 30000;
}

/* env_open opens the store, a loop and its conn; 0 or the open error. */
static inline int env_open(struct env *e)
{
	char err[256] = "";
	int rc;

	rc = vt->open(&e->cfg, &e->s, err, sizeof(err));
	if (rc != 0) {
		/* A store that does not open fails the test, never skips it. */
		fprintf(stderr, "open: %s\n", err);
		CHECK_INT(rc, 0);
		return rc;
	}
	CHECK_INT(uv_loop_init(&e->loop), 0);
	rc = vt->conn_open(e->s, &e->loop, &e->c);
	CHECK_INT(rc, 0);
	return rc;
}

static inline void env_close(struct env *e)
{
	if (e->c) {
		vt->conn_close(e->c);
		e->c = NULL;
		uv_run(&e->loop, UV_RUN_DEFAULT);
		CHECK_INT(uv_loop_close(&e->loop), 0);
	}
	if (e->s) {
		vt->close(e->s);
		e->s = NULL;
	}
}

static inline void env_cleanup(struct env *e)
{
	env_close(e);
	rm_tree(e->dir);
}

static inline void on_done(struct ld_store_op *op)
{
	struct tally *t = op->udata;
	uv_thread_t self = uv_thread_self();

	t->done++;
	if (!uv_thread_equal(&self, &t->thread))
		t->wrong_thread++;
}

static inline void op_init(struct ld_store_op *op, enum ld_store_op_kind kind, struct tally *t)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->done = on_done;
	op->udata = t;
	op->status = 99; /* not a status: proves the driver set one */
}

static inline void tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	t->thread = uv_thread_self();
}

static inline void run_until(struct env *e, struct tally *t, unsigned n)
{
	while (t->done < n)
		uv_run(&e->loop, UV_RUN_ONCE);
}

/* exec submits one op and runs the loop until it completed. */
static inline int exec(struct env *e, struct ld_store_op *op)
{
	struct tally t;

	tally_init(&t);
	op->done = on_done;
	op->udata = &t;
	vt->submit(e->c, op);
	run_until(e, &t, 1);
	CHECK_INT(t.done, 1);
	CHECK_INT(t.wrong_thread, 0);
	return op->status;
}

static inline void set_user(struct ld_store_op *op, const char *handle, const char *name)
{
	snprintf(op->user.handle, sizeof(op->user.handle), "%s", handle);
	snprintf(op->user.display_name, sizeof(op->user.display_name), "%s", name);
	snprintf(op->user.password_hash, sizeof(op->user.password_hash), "$argon2id$%s", handle);
}

static inline void set_content(struct ld_store_op *op, const void *p, size_t n)
{
	memcpy(op->item.content, p, n);
	op->item.content[n] = '\0';
	op->item.content_len = n;
}

static inline int64_t make_user(struct env *e, const char *handle)
{
	struct ld_store_op op;

	op_init(&op, LD_OP_USER_CREATE, NULL);
	set_user(&op, handle, handle);
	/* Set-up, not the test: never subject to a short op_timeout_ms. */
	op.deadline_ns = uv_hrtime() + 30000000000ULL;
	CHECK_INT(exec(e, &op), LD_STORE_OK);
	return op.user.id;
}

static inline int64_t make_item(struct env *e, int64_t owner, const char *text)
{
	struct ld_store_op op;

	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = owner;
	set_content(&op, text, strlen(text));
	CHECK_INT(exec(e, &op), LD_STORE_OK);
	return op.item.id;
}

static inline void stats(struct env *e, struct ld_store_stats *st)
{
	vt->stats(e->s, st);
}

/* hold_write_lock takes the database's write lock from a second connection,
 * so the writer blocks in BEGIN IMMEDIATE until release_write_lock. */
static inline sqlite3 *hold_write_lock(struct env *e)
{
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/ladder.db", e->data);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static inline void release_write_lock(sqlite3 *db)
{
	CHECK_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* wait_taken waits until the writer has taken everything submitted (it is
 * then blocked on the lock with it). Writes are handed over when the loop
 * runs, so run it once without blocking first. */
static inline void wait_taken(struct env *e)
{
	struct ld_store_stats st;
	int i;

	uv_run(&e->loop, UV_RUN_NOWAIT);
	for (i = 0; i < 10000; i++) {
		stats(e, &st);
		if (st.queue_depth == 0)
			return;
		usleep(1000);
	}
	CHECK(!"writer never took the queued op");
}

static inline int item_op(struct env *e, enum ld_store_op_kind kind, int64_t id, int64_t actor,
			  int64_t expect, const char *text, struct ld_store_op *op)
{
	op_init(op, kind, NULL);
	op->id = id;
	op->actor_id = actor;
	op->expect_version = expect;
	if (text)
		set_content(op, text, strlen(text));
	return exec(e, op);
}

static inline int list_page(struct env *e, int64_t user, int64_t before, unsigned limit,
			    struct ld_item *items, struct ld_store_op *op)
{
	op_init(op, LD_OP_ITEM_LIST, NULL);
	op->id = user;
	op->before_id = before;
	op->limit = limit;
	op->items = items;
	return exec(e, op);
}

static inline unsigned count_items(struct env *e, int64_t user)
{
	static struct ld_item items[LD_LIST_MAX];
	struct ld_store_op op;
	int64_t cursor = 0;
	unsigned n = 0;

	do {
		if (list_page(e, user, cursor, LD_LIST_MAX, items, &op) != LD_STORE_OK)
			break;
		n += op.nitems;
		if (op.nitems)
			cursor = items[op.nitems - 1].id;
	} while (op.has_more);
	return n;
}

#endif
