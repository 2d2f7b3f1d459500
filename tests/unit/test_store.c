/*
 * test_store.c - the SQLite store driven through its vtable on a real libuv
 * loop, on a fresh database in a temporary directory per test.
 *
 * Batching is made deterministic without test hooks in the driver: a second
 * connection holds the write lock (BEGIN IMMEDIATE), so the writer sits in
 * its busy handler with the first op while the test queues more behind it.
 *
 * `test_store --bench [SECONDS] [DIR]` instead measures durable write
 * throughput of the driver alone (64 item creates in flight); it asserts
 * nothing.
 */
#include "unit.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "obs/metrics.h"
#include "store/migrations.h"
#include "store/sqlite.h"
#include "store/store.h"

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

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void env_setup(struct env *e)
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
static int env_open(struct env *e)
{
	char err[256] = "";
	int rc;

	rc = vt->open(&e->cfg, &e->s, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "open: %s\n", err);
		return rc;
	}
	CHECK_INT(uv_loop_init(&e->loop), 0);
	rc = vt->conn_open(e->s, &e->loop, &e->c);
	CHECK_INT(rc, 0);
	return rc;
}

static void env_close(struct env *e)
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

static void env_cleanup(struct env *e)
{
	env_close(e);
	rm_tree(e->dir);
}

static void on_done(struct ld_store_op *op)
{
	struct tally *t = op->udata;
	uv_thread_t self = uv_thread_self();

	t->done++;
	if (!uv_thread_equal(&self, &t->thread))
		t->wrong_thread++;
}

static void op_init(struct ld_store_op *op, enum ld_store_op_kind kind, struct tally *t)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->done = on_done;
	op->udata = t;
	op->status = 99; /* not a status: proves the driver set one */
}

static void tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	t->thread = uv_thread_self();
}

static void run_until(struct env *e, struct tally *t, unsigned n)
{
	while (t->done < n)
		uv_run(&e->loop, UV_RUN_ONCE);
}

/* exec submits one op and runs the loop until it completed. */
static int exec(struct env *e, struct ld_store_op *op)
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

static void set_user(struct ld_store_op *op, const char *handle, const char *name)
{
	snprintf(op->user.handle, sizeof(op->user.handle), "%s", handle);
	snprintf(op->user.display_name, sizeof(op->user.display_name), "%s", name);
	snprintf(op->user.password_hash, sizeof(op->user.password_hash), "$argon2id$%s", handle);
}

static void set_content(struct ld_store_op *op, const void *p, size_t n)
{
	memcpy(op->item.content, p, n);
	op->item.content[n] = '\0';
	op->item.content_len = n;
}

static int64_t make_user(struct env *e, const char *handle)
{
	struct ld_store_op op;

	op_init(&op, LD_OP_USER_CREATE, NULL);
	set_user(&op, handle, handle);
	CHECK_INT(exec(e, &op), LD_STORE_OK);
	return op.user.id;
}

static int64_t make_item(struct env *e, int64_t owner, const char *text)
{
	struct ld_store_op op;

	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = owner;
	set_content(&op, text, strlen(text));
	CHECK_INT(exec(e, &op), LD_STORE_OK);
	return op.item.id;
}

static void stats(struct env *e, struct ld_store_stats *st)
{
	vt->stats(e->s, st);
}

/* hold_write_lock takes the database's write lock from a second connection,
 * so the writer blocks in BEGIN IMMEDIATE until release_write_lock. */
static sqlite3 *hold_write_lock(struct env *e)
{
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/ladder.db", e->data);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static void release_write_lock(sqlite3 *db)
{
	CHECK_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* wait_taken waits until the writer has taken everything submitted (it is
 * then blocked on the lock with it). Writes are handed over when the loop
 * runs, so run it once without blocking first. */
static void wait_taken(struct env *e)
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

/* ---- tests ---------------------------------------------------------------- */

static void test_registry_and_names(void)
{
	struct ld_store_config cfg;

	CHECK(ld_store_driver("sqlite") == &ld_sqlite_vt);
	CHECK(ld_store_driver("postgres") == NULL);
	CHECK(ld_store_driver(NULL) == NULL);
	CHECK_STR(ld_store_status_name(LD_STORE_OK), "ok");
	CHECK_STR(ld_store_status_name(LD_STORE_NOT_FOUND), "not_found");
	CHECK_STR(ld_store_status_name(LD_STORE_CONFLICT), "conflict");
	CHECK_STR(ld_store_status_name(LD_STORE_PRECONDITION), "precondition");
	CHECK_STR(ld_store_status_name(LD_STORE_FORBIDDEN), "forbidden");
	CHECK_STR(ld_store_status_name(LD_STORE_BUSY), "busy");
	CHECK_STR(ld_store_status_name(LD_STORE_UNAVAILABLE), "unavailable");
	CHECK_STR(ld_store_status_name(LD_STORE_ERROR), "error");
	CHECK_STR(ld_store_status_name(12345), "unknown");
	ld_store_config_default(&cfg);
	CHECK_INT(cfg.write_queue_max, 8192);
	CHECK_INT(cfg.write_batch_max, 1024);
	CHECK_INT(cfg.busy_timeout_ms, 5000);
	CHECK(cfg.synchronous_full);
}

static void test_users(void)
{
	struct env e;
	struct ld_store_op op;
	int64_t id;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;

	op_init(&op, LD_OP_USER_CREATE, NULL);
	set_user(&op, "alice", "Alice Ä");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	id = op.user.id;
	CHECK(id > 0);
	CHECK_INT(op.user.version, 1);
	CHECK(op.user.created_ms > 1700000000000LL);
	CHECK_INT(op.user.updated_ms, op.user.created_ms);

	op_init(&op, LD_OP_USER_GET, NULL);
	op.id = id;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.user.id, id);
	CHECK_STR(op.user.handle, "alice");
	CHECK_STR(op.user.display_name, "Alice Ä");
	CHECK_STR(op.user.password_hash, "$argon2id$alice");
	CHECK_INT(op.user.version, 1);

	op_init(&op, LD_OP_USER_GET_BY_HANDLE, NULL);
	snprintf(op.user.handle, sizeof(op.user.handle), "alice");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.user.id, id);
	CHECK_STR(op.user.display_name, "Alice Ä");

	/* The same handle in a later batch. */
	op_init(&op, LD_OP_USER_CREATE, NULL);
	set_user(&op, "alice", "Another");
	CHECK_INT(exec(&e, &op), LD_STORE_CONFLICT);

	op_init(&op, LD_OP_USER_GET, NULL);
	op.id = id + 1;
	CHECK_INT(exec(&e, &op), LD_STORE_NOT_FOUND);
	op_init(&op, LD_OP_USER_GET_BY_HANDLE, NULL);
	snprintf(op.user.handle, sizeof(op.user.handle), "nobody");
	CHECK_INT(exec(&e, &op), LD_STORE_NOT_FOUND);

	op_init(&op, LD_OP_USER_UPDATE, NULL);
	op.id = id;
	snprintf(op.user.display_name, sizeof(op.user.display_name), "Alice B.");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.user.id, id);
	CHECK_INT(op.user.version, 2);
	CHECK_STR(op.user.handle, "alice");
	CHECK_STR(op.user.display_name, "Alice B.");
	CHECK_STR(op.user.password_hash, "$argon2id$alice");
	CHECK(op.user.updated_ms >= op.user.created_ms);

	op_init(&op, LD_OP_USER_GET, NULL);
	op.id = id;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_STR(op.user.display_name, "Alice B.");
	CHECK_INT(op.user.version, 2);

	op_init(&op, LD_OP_USER_UPDATE, NULL);
	op.id = id + 7;
	snprintf(op.user.display_name, sizeof(op.user.display_name), "Ghost");
	CHECK_INT(exec(&e, &op), LD_STORE_NOT_FOUND);
out:
	env_cleanup(&e);
}

static int item_op(struct env *e, enum ld_store_op_kind kind, int64_t id, int64_t actor,
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

static void test_items(void)
{
	struct env e;
	struct ld_store_op op;
	int64_t alice, bob, item;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	bob = make_user(&e, "bob");

	CHECK_INT(item_op(&e, LD_OP_ITEM_CREATE, 0, alice, 0, "first", &op), LD_STORE_OK);
	item = op.item.id;
	CHECK(item > bob);
	CHECK_INT(op.item.user_id, alice);
	CHECK_INT(op.item.version, 1);
	CHECK_INT(op.item.content_len, 5);
	CHECK_INT(op.item.created_ms, op.item.updated_ms);

	/* An owner that does not exist. */
	CHECK_INT(item_op(&e, LD_OP_ITEM_CREATE, 0, bob + 1000, 0, "x", &op), LD_STORE_NOT_FOUND);

	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, item, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(op.item.id, item);
	CHECK_INT(op.item.user_id, alice);
	CHECK_INT(op.item.content_len, 5);
	CHECK_STR(op.item.content, "first");
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, item + 1, 0, 0, NULL, &op), LD_STORE_NOT_FOUND);

	/* Update: missing beats forbidden beats precondition. */
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, item + 1, bob, 9, "y", &op), LD_STORE_NOT_FOUND);
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, item, bob, 9, "y", &op), LD_STORE_FORBIDDEN);
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, item, bob, 0, "y", &op), LD_STORE_FORBIDDEN);
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, item, alice, 9, "y", &op), LD_STORE_PRECONDITION);
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, item, alice, 1, "second", &op), LD_STORE_OK);
	CHECK_INT(op.item.version, 2);
	CHECK_INT(op.item.id, item);
	CHECK_INT(op.item.user_id, alice);
	CHECK_STR(op.item.content, "second");
	CHECK(op.item.updated_ms >= op.item.created_ms);
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, item, alice, 0, "third", &op), LD_STORE_OK);
	CHECK_INT(op.item.version, 3);
	/* The refused updates changed nothing. */
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, item, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_STR(op.item.content, "third");
	CHECK_INT(op.item.version, 3);

	/* Delete, same order of checks. */
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, item + 1, bob, 9, NULL, &op), LD_STORE_NOT_FOUND);
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, item, bob, 9, NULL, &op), LD_STORE_FORBIDDEN);
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, item, alice, 2, NULL, &op), LD_STORE_PRECONDITION);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, item, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, item, alice, 3, NULL, &op), LD_STORE_OK);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, item, 0, 0, NULL, &op), LD_STORE_NOT_FOUND);
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, item, alice, 0, NULL, &op), LD_STORE_NOT_FOUND);

	/* Delete with expect_version 0 takes any version. */
	item = make_item(&e, bob, "bob's");
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, item, bob, 0, NULL, &op), LD_STORE_OK);
out:
	env_cleanup(&e);
}

static void test_content_bytes(void)
{
	/* Two to four byte sequences, and an embedded NUL. */
	static const char utf8[] = "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac "
				   "\xf0\x9f\x98\x80 z\0tail";
	char big[LD_CONTENT_MAX];
	struct env e;
	struct ld_store_op op;
	struct ld_item items[2];
	int64_t alice, small, full;
	size_t i;

	/* 1024 bytes: 341 three-byte characters and one ASCII byte. */
	for (i = 0; i + 3 <= sizeof(big); i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	big[sizeof(big) - 1] = '!';

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");

	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = alice;
	set_content(&op, utf8, sizeof(utf8) - 1);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	small = op.item.id;

	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = alice;
	set_content(&op, big, sizeof(big));
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	full = op.item.id;

	/* One byte too many is refused, not truncated. */
	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = alice;
	op.item.content_len = LD_CONTENT_MAX + 1;
	CHECK_INT(exec(&e, &op), LD_STORE_ERROR);

	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, small, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(op.item.content_len, sizeof(utf8) - 1);
	CHECK_MEM(op.item.content, utf8, sizeof(utf8) - 1);
	CHECK_INT(op.item.content[op.item.content_len], 0);

	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, full, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(op.item.content_len, LD_CONTENT_MAX);
	CHECK_MEM(op.item.content, big, sizeof(big));
	CHECK_INT(op.item.content[LD_CONTENT_MAX], 0);

	op_init(&op, LD_OP_ITEM_LIST, NULL);
	op.id = alice;
	op.limit = 2;
	op.items = items;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 2);
	CHECK_INT(items[0].id, full);
	CHECK_INT(items[0].content_len, LD_CONTENT_MAX);
	CHECK_MEM(items[0].content, big, sizeof(big));
	CHECK_INT(items[1].id, small);
	CHECK_INT(items[1].content_len, sizeof(utf8) - 1);
	CHECK_MEM(items[1].content, utf8, sizeof(utf8) - 1);

	/* Updates keep content exact too: empty, then the full 1024 bytes. */
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, small, alice, 1, NULL, &op), LD_STORE_OK);
	CHECK_INT(op.item.content_len, 0);
	op_init(&op, LD_OP_ITEM_UPDATE, NULL);
	op.id = small;
	op.actor_id = alice;
	set_content(&op, big, sizeof(big));
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, small, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(op.item.content_len, LD_CONTENT_MAX);
	CHECK_MEM(op.item.content, big, sizeof(big));
	CHECK_INT(op.item.version, 3);
out:
	env_cleanup(&e);
}

/* list_page runs one ITEM_LIST and returns its status. */
static int list_page(struct env *e, int64_t user, int64_t before, unsigned limit,
		     struct ld_item *items, struct ld_store_op *op)
{
	op_init(op, LD_OP_ITEM_LIST, NULL);
	op->id = user;
	op->before_id = before;
	op->limit = limit;
	op->items = items;
	return exec(e, op);
}

static void test_list_pagination(void)
{
	static struct ld_item items[LD_LIST_MAX];
	struct env e;
	struct ld_store_op op;
	int64_t alice, bob, carol, mine[25], cursor = 0;
	char text[32];
	unsigned i, page, seen = 0;
	const unsigned sizes[] = {10, 10, 5};

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	bob = make_user(&e, "bob");
	carol = make_user(&e, "carol");
	/* Interleave another user's items so the filter matters. */
	for (i = 0; i < 25; i++) {
		snprintf(text, sizeof(text), "alice %u", i);
		mine[i] = make_item(&e, alice, text);
		snprintf(text, sizeof(text), "bob %u", i);
		make_item(&e, bob, text);
	}
	for (i = 1; i < 25; i++)
		CHECK(mine[i] > mine[i - 1]);

	/* 25 items in pages of 10: 10, 10, 5, newest first, no gap or repeat. */
	for (page = 0; page < 3; page++) {
		CHECK_INT(list_page(&e, alice, cursor, 10, items, &op), LD_STORE_OK);
		CHECK_INT(op.nitems, sizes[page]);
		CHECK_INT(op.has_more, page < 2);
		for (i = 0; i < op.nitems && seen < 25; i++, seen++) {
			snprintf(text, sizeof(text), "alice %u", 24 - seen);
			CHECK_INT(items[i].id, mine[24 - seen]);
			CHECK_INT(items[i].user_id, alice);
			CHECK_STR(items[i].content, text);
			CHECK_INT(items[i].version, 1);
		}
		if (op.nitems)
			cursor = items[op.nitems - 1].id;
	}
	CHECK_INT(seen, 25);

	/* Exactly a page left: has_more is false (limit+1 rows were asked). */
	CHECK_INT(list_page(&e, alice, mine[5], 5, items, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 5);
	CHECK(!op.has_more);
	CHECK_INT(items[0].id, mine[4]);
	CHECK_INT(items[4].id, mine[0]);
	/* Past the oldest item: an empty page of an existing user. */
	CHECK_INT(list_page(&e, alice, mine[0], 5, items, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 0);
	CHECK(!op.has_more);
	/* The largest page. */
	CHECK_INT(list_page(&e, bob, 0, LD_LIST_MAX, items, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 25);
	CHECK(!op.has_more);

	CHECK_INT(list_page(&e, carol, 0, 10, items, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 0);
	CHECK_INT(list_page(&e, carol + 999, 0, 10, items, &op), LD_STORE_NOT_FOUND);
	/* Bad requests are errors, never an overrun. */
	CHECK_INT(list_page(&e, alice, 0, 0, items, &op), LD_STORE_ERROR);
	CHECK_INT(list_page(&e, alice, 0, LD_LIST_MAX + 1, items, &op), LD_STORE_ERROR);
	CHECK_INT(list_page(&e, alice, 0, 10, NULL, &op), LD_STORE_ERROR);
out:
	env_cleanup(&e);
}

/* A duplicate handle inside one batch: the first wins, the second is a
 * conflict, and the rest of the batch commits. */
static void test_conflict_in_one_batch(void)
{
	struct env e;
	struct ld_store_op ops[5];
	struct ld_store_stats before, after;
	struct tally t;
	sqlite3 *lock;
	const char *handles[] = {"first", "dup", "dup", "other", "dup"};
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	tally_init(&t);
	stats(&e, &before);
	lock = hold_write_lock(&e);
	for (i = 0; i < 5; i++) {
		op_init(&ops[i], LD_OP_USER_CREATE, &t);
		set_user(&ops[i], handles[i], "x");
		vt->submit(e.c, &ops[i]);
		if (i == 0)
			wait_taken(&e);
	}
	CHECK_INT(t.done, 0); /* nothing completes before its commit */
	release_write_lock(lock);
	run_until(&e, &t, 5);
	CHECK_INT(t.wrong_thread, 0);
	CHECK_INT(ops[0].status, LD_STORE_OK);
	CHECK_INT(ops[1].status, LD_STORE_OK);
	CHECK_INT(ops[2].status, LD_STORE_CONFLICT);
	CHECK_INT(ops[3].status, LD_STORE_OK);
	CHECK_INT(ops[4].status, LD_STORE_CONFLICT);
	stats(&e, &after);
	/* "first" alone, then the four others in one transaction. */
	CHECK_INT(after.commits - before.commits, 2);
	CHECK_INT(after.committed_ops - before.committed_ops, 5);
	CHECK_INT(after.errors, before.errors);
	CHECK(ops[3].user.id > ops[1].user.id);

	op_init(&ops[0], LD_OP_USER_GET_BY_HANDLE, NULL);
	snprintf(ops[0].user.handle, sizeof(ops[0].user.handle), "dup");
	CHECK_INT(exec(&e, &ops[0]), LD_STORE_OK);
	CHECK_INT(ops[0].user.id, ops[1].user.id);
	op_init(&ops[0], LD_OP_USER_GET_BY_HANDLE, NULL);
	snprintf(ops[0].user.handle, sizeof(ops[0].user.handle), "other");
	CHECK_INT(exec(&e, &ops[0]), LD_STORE_OK);
out:
	env_cleanup(&e);
}

static void test_busy_when_queue_full(void)
{
	struct env e;
	struct ld_store_op ops[10];
	struct ld_store_stats st;
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	unsigned i, busy = 0, ok = 0;

	env_setup(&e);
	e.cfg.write_queue_max = 4;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	lock = hold_write_lock(&e);
	for (i = 0; i < 10; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "x", 1);
		vt->submit(e.c, &ops[i]);
		if (i == 0)
			wait_taken(&e);
	}
	/* One op is with the writer, four wait, five were shed at once. */
	CHECK_INT(t.done, 5);
	for (i = 5; i < 10; i++)
		CHECK_INT(ops[i].status, LD_STORE_BUSY);
	stats(&e, &st);
	CHECK_INT(st.queue_depth, 4);
	CHECK(st.healthy);
	release_write_lock(lock);
	run_until(&e, &t, 10);
	for (i = 0; i < 10; i++) {
		busy += ops[i].status == LD_STORE_BUSY;
		ok += ops[i].status == LD_STORE_OK;
	}
	CHECK_INT(busy, 5);
	CHECK_INT(ok, 5);
	stats(&e, &st);
	CHECK_INT(st.queue_depth, 0);
out:
	env_cleanup(&e);
}

/* Many writes queued at once go out in batches of write_batch_max. */
static void test_group_commit_batches(void)
{
	static struct ld_store_op ops[101];
	static struct ld_item items[LD_LIST_MAX];
	struct env e;
	struct ld_store_stats before, after;
	struct ld_store_op op;
	struct tally t;
	sqlite3 *lock;
	int64_t alice, cursor = 0;
	unsigned i, listed = 0;

	env_setup(&e);
	e.cfg.write_batch_max = 16;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	stats(&e, &before);
	lock = hold_write_lock(&e);
	for (i = 0; i < 101; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "batched", 7);
		vt->submit(e.c, &ops[i]);
		if (i == 0)
			wait_taken(&e);
	}
	release_write_lock(lock);
	run_until(&e, &t, 101);
	CHECK_INT(t.wrong_thread, 0);
	for (i = 0; i < 101; i++) {
		CHECK_INT(ops[i].status, LD_STORE_OK);
		if (i > 0)
			CHECK(ops[i].item.id > ops[i - 1].item.id);
	}
	stats(&e, &after);
	/* 1 alone, then 100 in batches of 16: 7 more commits. */
	CHECK_INT(after.commits - before.commits, 8);
	CHECK_INT(after.committed_ops - before.committed_ops, 101);
	do {
		CHECK_INT(list_page(&e, alice, cursor, LD_LIST_MAX, items, &op), LD_STORE_OK);
		listed += op.nitems;
		if (op.nitems)
			cursor = items[op.nitems - 1].id;
	} while (op.has_more && op.status == LD_STORE_OK);
	CHECK_INT(listed, 101);
out:
	env_cleanup(&e);
}

/* ---- two loops on two threads ------------------------------------------- */

#define PER_THREAD 400
#define IN_FLIGHT  32

struct worker {
	struct ld_store *s;
	int64_t owner;
	uv_loop_t loop;
	struct ld_store_conn *c;
	struct ld_store_op ops[IN_FLIGHT];
	struct tally t;
	unsigned submitted, ok;
	int open_rc;
};

static void worker_done(struct ld_store_op *op)
{
	struct worker *w = op->udata;
	uv_thread_t self = uv_thread_self();

	w->t.done++;
	if (!uv_thread_equal(&self, &w->t.thread))
		w->t.wrong_thread++;
	w->ok += op->status == LD_STORE_OK;
	if (w->submitted < PER_THREAD) {
		/* Keep the pipeline full from inside the completion. */
		w->submitted++;
		op->status = 99;
		vt->submit(w->c, op);
	}
}

static void worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	w->t.thread = uv_thread_self();
	uv_loop_init(&w->loop);
	w->open_rc = vt->conn_open(w->s, &w->loop, &w->c);
	if (w->open_rc != 0)
		return;
	for (i = 0; i < IN_FLIGHT; i++) {
		memset(&w->ops[i], 0, sizeof(w->ops[i]));
		w->ops[i].kind = LD_OP_ITEM_CREATE;
		w->ops[i].actor_id = w->owner;
		w->ops[i].done = worker_done;
		w->ops[i].udata = w;
		set_content(&w->ops[i], "threaded", 8);
		w->submitted++;
		vt->submit(w->c, &w->ops[i]);
	}
	while (w->t.done < PER_THREAD)
		uv_run(&w->loop, UV_RUN_ONCE);
	vt->conn_close(w->c);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
}

static unsigned count_items(struct env *e, int64_t user)
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

static void test_two_loops_two_threads(void)
{
	static struct worker w[2];
	struct env e;
	struct ld_store_stats st;
	uv_thread_t th[2];
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = e.s;
		w[i].owner = make_user(&e, i ? "thread_b" : "thread_a");
	}
	for (i = 0; i < 2; i++)
		CHECK_INT(uv_thread_create(&th[i], worker_main, &w[i]), 0);
	for (i = 0; i < 2; i++)
		uv_thread_join(&th[i]);
	for (i = 0; i < 2; i++) {
		CHECK_INT(w[i].open_rc, 0);
		CHECK_INT(w[i].t.done, PER_THREAD);
		CHECK_INT(w[i].ok, PER_THREAD);
		CHECK_INT(w[i].t.wrong_thread, 0);
		CHECK_INT(count_items(&e, w[i].owner), PER_THREAD);
	}
	stats(&e, &st);
	CHECK(st.committed_ops >= 2 * PER_THREAD + 2);
	CHECK_INT(st.errors, 0);
out:
	env_cleanup(&e);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void test_reopen_finds_everything(void)
{
	struct env e;
	struct ld_store_op op;
	int64_t alice, kept, gone, later;

	env_setup(&e);
	e.cfg.synchronous_full = true;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	kept = make_item(&e, alice, "kept");
	gone = make_item(&e, alice, "gone");
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, kept, alice, 1, "kept v2", &op), LD_STORE_OK);
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, gone, alice, 1, NULL, &op), LD_STORE_OK);
	op_init(&op, LD_OP_USER_UPDATE, NULL);
	op.id = alice;
	snprintf(op.user.display_name, sizeof(op.user.display_name), "Alice 2");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	env_close(&e);

	if (env_open(&e) != 0)
		goto out;
	op_init(&op, LD_OP_USER_GET_BY_HANDLE, NULL);
	snprintf(op.user.handle, sizeof(op.user.handle), "alice");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.user.id, alice);
	CHECK_STR(op.user.display_name, "Alice 2");
	CHECK_INT(op.user.version, 2);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, kept, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_STR(op.item.content, "kept v2");
	CHECK_INT(op.item.version, 2);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, gone, 0, 0, NULL, &op), LD_STORE_NOT_FOUND);
	/* New ids continue above everything stored. */
	later = make_item(&e, alice, "later");
	CHECK(later > gone);
	CHECK_INT(count_items(&e, alice), 2);
out:
	env_cleanup(&e);
}

static void test_schema_and_pragmas(void)
{
	struct env e;
	char path[PATH_MAX + 16];
	struct stat st;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int v = -1;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	/* data_dir and its missing parent were created, private. */
	CHECK_INT(stat(e.data, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/ladder.db", e.data);
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	CHECK_INT(ld_sqlite_user_version(db, &v), 0);
	CHECK_INT(v, ld_sqlite_schema_version());
	CHECK(v >= 1);
	CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(q), SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	CHECK_INT(sqlite3_prepare_v2(db,
				     "SELECT count(*) FROM pragma_table_list"
				     " WHERE name IN ('users', 'items') AND strict = 1",
				     -1, &q, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_step(q), SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(q, 0), 2);
	sqlite3_finalize(q);
	CHECK_INT(vt->ping(e.c), 0);
	sqlite3_close(db);
out:
	env_cleanup(&e);
}

static void test_newer_database_refused(void)
{
	struct env e;
	char path[PATH_MAX + 16], sql[64], err[256] = "";
	sqlite3 *db = NULL;
	struct ld_store *s = NULL;
	int v = -1;

	env_setup(&e);
	snprintf(e.data, sizeof(e.data), "%s", e.dir);
	e.cfg.data_dir = e.data;
	snprintf(path, sizeof(path), "%s/ladder.db", e.dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", ld_sqlite_schema_version() + 1);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	CHECK_INT(vt->open(&e.cfg, &s, err, sizeof(err)), -EPROTO);
	CHECK(s == NULL);
	CHECK(strstr(err, "newer") != NULL);
	/* Refused means untouched. */
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(ld_sqlite_user_version(db, &v), 0);
	CHECK_INT(v, ld_sqlite_schema_version() + 1);
	sqlite3_close(db);
	env_cleanup(&e);
}

/* Each migration is its own transaction: a failing one leaves the database
 * at the previous version with none of its statements applied. */
static void test_migration_steps(void)
{
	static const struct ld_migration broken[] = {
	    {1, "a", "CREATE TABLE a (x INTEGER);"},
	    {2, "b then a clash", "CREATE TABLE b (y INTEGER); CREATE TABLE a (z INTEGER);"},
	};
	static const struct ld_migration fixed[] = {
	    {1, "a", "CREATE TABLE a (x INTEGER);"},
	    {2, "b", "CREATE TABLE b (y INTEGER);"},
	};
	sqlite3 *db = NULL;
	char err[256] = "";
	int v = -1;

	CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
	CHECK_INT(ld_sqlite_migrate(db, broken, 2, err, sizeof(err)), -EIO);
	CHECK(strstr(err, "migration 2") != NULL);
	CHECK_INT(ld_sqlite_user_version(db, &v), 0);
	CHECK_INT(v, 1);
	CHECK_INT(sqlite3_exec(db, "SELECT y FROM b", NULL, NULL, NULL), SQLITE_ERROR);
	CHECK_INT(sqlite3_exec(db, "SELECT x FROM a", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(ld_sqlite_migrate(db, fixed, 2, err, sizeof(err)), 0);
	CHECK_INT(ld_sqlite_user_version(db, &v), 0);
	CHECK_INT(v, 2);
	CHECK_INT(sqlite3_exec(db, "SELECT y FROM b", NULL, NULL, NULL), SQLITE_OK);
	/* Running again is a no-op. */
	CHECK_INT(ld_sqlite_migrate(db, fixed, 2, err, sizeof(err)), 0);
	/* The real list applies to an empty database. */
	sqlite3_close(db);
	CHECK_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
	CHECK_INT(
	    ld_sqlite_migrate(db, ld_sqlite_migrations, ld_sqlite_nmigrations, err, sizeof(err)),
	    0);
	CHECK_INT(ld_sqlite_user_version(db, &v), 0);
	CHECK_INT(v, ld_sqlite_schema_version());
	sqlite3_close(db);
}

/* conn_close with writes in flight: they still complete, then the conn goes.
 * store close commits what is still queued before it returns. */
static void test_close_with_writes_in_flight(void)
{
	static struct ld_store_op ops[50];
	struct env e;
	struct ld_store_op op;
	struct tally t;
	struct ld_store_conn *c;
	int64_t alice;
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	for (i = 0; i < 50; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "late", 4);
		vt->submit(e.c, &ops[i]);
	}
	c = e.c;
	vt->conn_close(c);
	/* After close began: refused at once. */
	op_init(&op, LD_OP_ITEM_GET, &t);
	vt->submit(c, &op);
	CHECK_INT(op.status, LD_STORE_UNAVAILABLE);
	CHECK_INT(vt->ping(c), -EIO);
	e.c = NULL;
	vt->close(e.s);
	e.s = NULL;
	/* The writer finished everything; completions wait in the conn. */
	uv_run(&e.loop, UV_RUN_DEFAULT);
	CHECK_INT(t.done, 51);
	CHECK_INT(t.wrong_thread, 0);
	for (i = 0; i < 50; i++)
		CHECK_INT(ops[i].status, LD_STORE_OK);
	CHECK_INT(uv_loop_close(&e.loop), 0);

	if (env_open(&e) != 0)
		goto out;
	CHECK_INT(count_items(&e, alice), 50);
out:
	env_cleanup(&e);
}

/* The writer hands checkpoints to another thread: pages written through
 * the WAL must reach the database file while the store is open, or the WAL
 * would grow without end. */
static void test_checkpoints_happen(void)
{
	static struct ld_store_op ops[64];
	static char content[1000];
	char path[PATH_MAX + 16];
	struct env e;
	struct stat st;
	struct tally t;
	int64_t alice;
	unsigned round, i, waited;

	memset(content, 'c', sizeof(content));
	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/ladder.db", e.data);
	alice = make_user(&e, "alice");
	CHECK_INT(stat(path, &st), 0);
	CHECK(st.st_size < 1 << 20);
	/* About 6 MiB of items: several times the checkpoint mark. */
	for (round = 0; round < 100; round++) {
		tally_init(&t);
		for (i = 0; i < 64; i++) {
			op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
			ops[i].actor_id = alice;
			set_content(&ops[i], content, sizeof(content));
			vt->submit(e.c, &ops[i]);
		}
		run_until(&e, &t, 64);
		CHECK_INT(ops[63].status, LD_STORE_OK);
	}
	for (waited = 0; waited < 10000; waited += 10) {
		CHECK_INT(stat(path, &st), 0);
		if (st.st_size > 2 << 20)
			break;
		usleep(10000);
	}
	CHECK(st.st_size > 2 << 20);
	CHECK_INT(count_items(&e, alice), 6400);
out:
	env_cleanup(&e);
}

/* ---- a failing fsync ------------------------------------------------------ */

/*
 * A VFS shim over the default one: once armed, a file that was handed a
 * write containing the marker fails every later sync. Frames of the marked
 * ops reach the WAL, then the COMMIT's fsync fails, exactly as a dying disk
 * would report it.
 */
struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's file, right after this struct */
	bool poisoned;
};

static sqlite3_vfs shim_vfs;
static sqlite3_vfs *real_vfs;
static atomic_bool shim_armed;
static const char shim_marker[] = "FAIL-THE-SYNC";

#define REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (atomic_load(&shim_armed) && memmem(p, (size_t)n, shim_marker, strlen(shim_marker)))
		((struct shim_file *)f)->poisoned = true;
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
	if (atomic_load(&shim_armed) && ((struct shim_file *)f)->poisoned)
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int shim_lock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int shim_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int shim_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int shim_caps(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods shim_io = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_size,
    shim_lock,
    shim_unlock,
    shim_reserved,
    shim_fcntl,
    shim_sector,
    shim_caps,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
		     int *out_flags)
{
	struct shim_file *sf = (struct shim_file *)f;
	int rc;

	sf->real = (sqlite3_file *)(sf + 1);
	sf->poisoned = false;
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
	sf->base.pMethods = sf->real->pMethods ? &shim_io : NULL;
	return rc;
}

static void test_commit_failure(void)
{
	struct env e;
	struct ld_store_op ops[4], op;
	struct ld_store_stats st;
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	unsigned i;

	real_vfs = sqlite3_vfs_find(NULL);
	shim_vfs = *real_vfs;
	shim_vfs.pNext = NULL;
	shim_vfs.zName = "ladder-test-failsync";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	CHECK_INT(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);

	env_setup(&e);
	e.cfg.synchronous_full = true;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	make_item(&e, alice, "fine");
	atomic_store(&shim_armed, true);

	/* ops[0] commits alone; ops[1..3] carry the marker and share the
	 * transaction whose COMMIT cannot sync. */
	tally_init(&t);
	lock = hold_write_lock(&e);
	for (i = 0; i < 4; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		if (i == 0)
			set_content(&ops[i], "before", 6);
		else
			set_content(&ops[i], shim_marker, strlen(shim_marker));
		vt->submit(e.c, &ops[i]);
		if (i == 0)
			wait_taken(&e);
	}
	release_write_lock(lock);
	run_until(&e, &t, 4);
	CHECK_INT(ops[0].status, LD_STORE_OK);
	for (i = 1; i < 4; i++)
		CHECK_INT(ops[i].status, LD_STORE_ERROR);
	stats(&e, &st);
	CHECK(!st.healthy);
	CHECK_INT(st.errors, 3);
	CHECK_INT(vt->ping(e.c), -EIO);

	/* Unhealthy: writes are refused at once, reads still answer and see
	 * none of the failed batch. */
	op_init(&op, LD_OP_ITEM_CREATE, &t);
	op.actor_id = alice;
	set_content(&op, "after", 5);
	vt->submit(e.c, &op);
	CHECK_INT(op.status, LD_STORE_UNAVAILABLE);
	CHECK_INT(t.done, 5);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, ops[0].item.id, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(count_items(&e, alice), 2);
out:
	atomic_store(&shim_armed, false);
	env_cleanup(&e);
	sqlite3_vfs_unregister(&shim_vfs);
	sqlite3_vfs_register(real_vfs, 1);
}

/* ---- throughput (not a test) ---------------------------------------------- */

#define BENCH_IN_FLIGHT 64
#define BENCH_SAMPLES	(1u << 22)

struct bench {
	struct env *e;
	struct ld_store_op ops[BENCH_IN_FLIGHT];
	uint64_t started[BENCH_IN_FLIGHT];
	uint32_t *lat_us; /* capped: BENCH_SAMPLES */
	uint64_t nlat, done, failed, deadline;
	unsigned inflight;
};

static struct bench bench;

static void bench_done(struct ld_store_op *op)
{
	size_t i = (size_t)(op - bench.ops);
	uint64_t now = uv_hrtime();

	bench.inflight--;
	bench.done++;
	if (op->status != LD_STORE_OK)
		bench.failed++;
	if (bench.nlat < BENCH_SAMPLES)
		bench.lat_us[bench.nlat++] = (uint32_t)((now - bench.started[i]) / 1000);
	if (now < bench.deadline) {
		bench.started[i] = now;
		bench.inflight++;
		vt->submit(bench.e->c, op);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* metric_value finds "name value" in a Prometheus exposition. */
static double metric_value(const char *text, const char *name)
{
	const char *p = text;
	size_t n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
		p += n;
	}
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* bench_main: --bench [SECONDS] [DIR] [nosync] */
static int bench_main(int argc, char **argv)
{
	static char content[LD_CONTENT_MAX];
	struct env e;
	struct ld_store_stats st0, st1;
	struct ld_buf m;
	double secs = argc > 2 ? atof(argv[2]) : 5, wall, cpu0;
	uint64_t t0;
	unsigned i;
	int64_t owner;

	if (argc > 3)
		setenv("TMPDIR", argv[3], 1);
	env_setup(&e);
	e.cfg.synchronous_full = !(argc > 4 && strcmp(argv[4], "nosync") == 0);
	if (secs <= 0 || env_open(&e) != 0)
		return 2;
	memset(content, 'x', sizeof(content));
	owner = make_user(&e, "bench");
	bench.e = &e;
	bench.lat_us = calloc(BENCH_SAMPLES, sizeof(uint32_t));
	if (!bench.lat_us)
		return 2;
	vt->stats(e.s, &st0);
	cpu0 = cpu_seconds();
	t0 = uv_hrtime();
	bench.deadline = t0 + (uint64_t)(secs * 1e9);
	for (i = 0; i < BENCH_IN_FLIGHT; i++) {
		memset(&bench.ops[i], 0, sizeof(bench.ops[i]));
		bench.ops[i].kind = LD_OP_ITEM_CREATE;
		bench.ops[i].actor_id = owner;
		bench.ops[i].done = bench_done;
		set_content(&bench.ops[i], content, sizeof(content));
		bench.started[i] = uv_hrtime();
		bench.inflight++;
		vt->submit(e.c, &bench.ops[i]);
	}
	while (bench.inflight > 0)
		uv_run(&e.loop, UV_RUN_ONCE);
	wall = (double)(uv_hrtime() - t0) / 1e9;
	vt->stats(e.s, &st1);
	qsort(bench.lat_us, bench.nlat, sizeof(uint32_t), cmp_u32);
	ld_buf_init(&m, 1 << 20);
	ld_metrics_render(&m);
	printf("store bench: %s, %u in flight, %zu-byte item creates, %s\n", e.data,
	       BENCH_IN_FLIGHT, sizeof(content),
	       e.cfg.synchronous_full ? "synchronous=FULL" : "synchronous=NORMAL");
	printf("writes        %llu in %.2f s (%llu failed)\n", (unsigned long long)bench.done, wall,
	       (unsigned long long)bench.failed);
	printf("throughput    %.0f writes/s\n", (double)bench.done / wall);
	printf("batches       %llu commits, mean %.1f ops per commit\n",
	       (unsigned long long)(st1.commits - st0.commits),
	       (double)(st1.committed_ops - st0.committed_ops) /
		   (double)(st1.commits - st0.commits ? st1.commits - st0.commits : 1));
	printf(
	    "commit        mean %.3f ms (BEGIN to synced COMMIT)\n",
	    metric_value(m.data ? m.data : "", "ladder_store_commit_duration_seconds_sum") /
		metric_value(m.data ? m.data : "", "ladder_store_commit_duration_seconds_count") *
		1e3);
	if (getenv("LADDER_BENCH_METRICS"))
		fputs(m.data ? m.data : "", stdout);
	if (bench.nlat)
		printf("op latency    p50 %u us, p99 %u us, max %u us (submit to done)\n",
		       bench.lat_us[bench.nlat / 2], bench.lat_us[bench.nlat * 99 / 100],
		       bench.lat_us[bench.nlat - 1]);
	printf("cpu           %.1f us per write (all threads)\n",
	       (cpu_seconds() - cpu0) * 1e6 / (double)(bench.done ? bench.done : 1));
	ld_buf_release(&m);
	free(bench.lat_us);
	env_cleanup(&e);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
		return bench_main(argc, argv);
	RUN(test_registry_and_names);
	RUN(test_users);
	RUN(test_items);
	RUN(test_content_bytes);
	RUN(test_list_pagination);
	RUN(test_conflict_in_one_batch);
	RUN(test_busy_when_queue_full);
	RUN(test_group_commit_batches);
	RUN(test_two_loops_two_threads);
	RUN(test_reopen_finds_everything);
	RUN(test_schema_and_pragmas);
	RUN(test_newer_database_refused);
	RUN(test_migration_steps);
	RUN(test_close_with_writes_in_flight);
	RUN(test_checkpoints_happen);
	RUN(test_commit_failure);
	return unit_finish();
}
