/*
 * test_store.c - the SQLite store driven through its vtable on a real libuv
 * loop: every op and status, pagination, content bytes, batching and load
 * shedding, deadlines, closing with ops in flight, done() resubmitting, two
 * loops on two threads, schema and migrations. Every test runs twice: on
 * the SQLite driver, then on sqlite-deferred (every completion on a later
 * loop iteration). Durability, failure and throughput are in
 * test_store_durability.c.
 */
#include "store_env.h"
#include "store/postgres.h"

/* ---- tests ---------------------------------------------------------------- */

static void test_registry_and_names(void)
{
	struct ld_store_config cfg;

	CHECK(ld_store_driver("sqlite") == &ld_sqlite_vt);
	CHECK(ld_store_driver("sqlite-deferred") == &ld_deferred_vt);
	CHECK(ld_store_driver("postgres") == &ld_pg_vt);
	CHECK(ld_store_driver("mysql") == NULL);
	CHECK(ld_store_driver(NULL) == NULL);
	CHECK_STR(ld_store_status_name(LD_STORE_OK), "ok");
	CHECK_STR(ld_store_status_name(LD_STORE_NOT_FOUND), "not_found");
	CHECK_STR(ld_store_status_name(LD_STORE_CONFLICT), "conflict");
	CHECK_STR(ld_store_status_name(LD_STORE_PRECONDITION), "precondition");
	CHECK_STR(ld_store_status_name(LD_STORE_FORBIDDEN), "forbidden");
	CHECK_STR(ld_store_status_name(LD_STORE_BUSY), "busy");
	CHECK_STR(ld_store_status_name(LD_STORE_UNAVAILABLE), "unavailable");
	CHECK_STR(ld_store_status_name(LD_STORE_ERROR), "error");
	CHECK_STR(ld_store_status_name(LD_STORE_TIMEOUT), "timeout");
	CHECK_STR(ld_store_status_name(12345), "unknown");
	ld_store_config_default(&cfg);
	CHECK_INT(cfg.write_queue_max, 8192);
	CHECK_INT(cfg.write_batch_max, 1024);
	CHECK_INT(cfg.busy_timeout_ms, 5000);
	CHECK(cfg.synchronous_full);
	CHECK_INT(cfg.op_timeout_ms, 2000);
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
	/* One op is with the writer, four wait, five were shed (at once on
	 * SQLite, a few loop iterations later on sqlite-deferred). */
	run_until(&e, &t, 5);
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

/* The reads of one loop iteration share a snapshot; a write committed
 * meanwhile (here through another loop) must still be visible to the next
 * read, or a client could read its acknowledged write back as missing. */
static void test_read_snapshot_sees_commits(void)
{
	struct env e;
	uv_loop_t loop2;
	struct ld_store_conn *c2 = NULL;
	struct ld_store_op op, w;
	struct tally t, t2;
	int64_t uid;

	if (vt != &ld_sqlite_vt)
		return; /* about SQLite's inline reads; nothing is inline when deferred */
	env_setup(&e);
	if (env_open(&e))
		goto out;
	uid = make_user(&e, "snap");
	tally_init(&t);
	tally_init(&t2);
	/* Opens this loop's snapshot; the loop does not run again below, so
	 * nothing ends it. */
	op_init(&op, LD_OP_ITEM_GET, &t);
	op.id = 1;
	vt->submit(e.c, &op);
	CHECK_INT(t.done, 1);
	CHECK_INT(op.status, LD_STORE_NOT_FOUND);
	CHECK_INT(uv_loop_init(&loop2), 0);
	CHECK_INT(vt->conn_open(e.s, &loop2, &c2), 0);
	op_init(&w, LD_OP_ITEM_CREATE, &t2);
	w.actor_id = uid;
	set_content(&w, "after", 5);
	vt->submit(c2, &w);
	while (t2.done < 1)
		uv_run(&loop2, UV_RUN_ONCE);
	CHECK_INT(w.status, LD_STORE_OK);
	op_init(&op, LD_OP_ITEM_GET, &t);
	op.id = w.item.id;
	vt->submit(e.c, &op);
	CHECK_INT(t.done, 2);
	CHECK_INT(op.status, LD_STORE_OK);
	CHECK_INT(op.item.content_len, 5);
	vt->conn_close(c2);
	uv_run(&loop2, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop2), 0);
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

/* ---- the contract: deadlines, closing, resubmitting ---------------------- */

static uint64_t ms_from_now(unsigned ms)
{
	return uv_hrtime() + (uint64_t)ms * 1000000;
}

/* A write that cannot get the database by its deadline ends in TIMEOUT and
 * is never committed: the one the writer holds (waiting for the lock) at its
 * own deadline, those still queued behind it through the conn's timer. */
static void test_write_deadline(void)
{
	struct env e;
	struct ld_store_op ops[4];
	struct ld_store_stats st;
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	lock = hold_write_lock(&e);
	for (i = 0; i < 4; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "late", 4);
		/* The first is taken by the writer; the others wait in the
		 * queue, with earlier deadlines than the first. */
		ops[i].deadline_ns = ms_from_now(i == 0 ? 300 : 100);
		vt->submit(e.c, &ops[i]);
		if (i == 0)
			wait_taken(&e);
	}
	run_until(&e, &t, 4);
	CHECK_INT(t.wrong_thread, 0);
	for (i = 0; i < 4; i++)
		CHECK_INT(ops[i].status, LD_STORE_TIMEOUT);
	stats(&e, &st);
	CHECK_INT(st.timeouts, 4);
	CHECK_INT(st.queue_depth, 0);
	CHECK_INT(st.errors, 0);
	release_write_lock(lock);
	/* Timed out means not committed, not even after the lock is free. */
	CHECK_INT(count_items(&e, alice), 0);
	CHECK_INT(item_op(&e, LD_OP_ITEM_CREATE, 0, alice, 0, "now", &ops[0]), LD_STORE_OK);
	CHECK_INT(count_items(&e, alice), 1);

	/* A deadline already passed: nothing is tried, reads included. */
	op_init(&ops[0], LD_OP_ITEM_CREATE, NULL);
	ops[0].actor_id = alice;
	ops[0].deadline_ns = uv_hrtime() - 1;
	CHECK_INT(exec(&e, &ops[0]), LD_STORE_TIMEOUT);
	op_init(&ops[0], LD_OP_USER_GET, NULL);
	ops[0].id = alice;
	ops[0].deadline_ns = uv_hrtime() - 1;
	CHECK_INT(exec(&e, &ops[0]), LD_STORE_TIMEOUT);
	CHECK_INT(count_items(&e, alice), 1);
out:
	env_cleanup(&e);
}

/* The default deadline comes from op_timeout_ms, and ping() reports a writer
 * that has not got the database for longer than that, without any I/O of
 * its own; it recovers once the lock is free, with no traffic. */
static void test_stalled_writer_health(void)
{
	struct env e;
	struct ld_store_op op;
	struct ld_store_stats st;
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	int i;

	env_setup(&e);
	e.cfg.op_timeout_ms = 100;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	CHECK_INT(vt->ping(e.c), 0);
	tally_init(&t);
	lock = hold_write_lock(&e);
	op_init(&op, LD_OP_USER_UPDATE, &t);
	op.id = alice;
	snprintf(op.user.display_name, sizeof(op.user.display_name), "never");
	vt->submit(e.c, &op);
	run_until(&e, &t, 1);
	CHECK_INT(op.status, LD_STORE_TIMEOUT);
	for (i = 0; i < 5000 && vt->ping(e.c) == 0; i++)
		usleep(1000);
	CHECK_INT(vt->ping(e.c), -EIO);
	stats(&e, &st);
	CHECK(st.healthy); /* a stall is not an I/O error: no restart needed */
	release_write_lock(lock);
	for (i = 0; i < 5000 && vt->ping(e.c) != 0; i++)
		usleep(1000);
	CHECK_INT(vt->ping(e.c), 0);
	op_init(&op, LD_OP_USER_GET, NULL);
	op.id = alice;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_STR(op.user.display_name, "alice");
out:
	env_cleanup(&e);
}

/* close() with the writer unable to get the database still returns: what
 * is queued ends at its deadline. */
static void test_close_with_stalled_writer(void)
{
	struct env e;
	struct ld_store_op ops[3];
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	unsigned i;

	env_setup(&e);
	e.cfg.op_timeout_ms = 100;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	lock = hold_write_lock(&e);
	for (i = 0; i < 3; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "x", 1);
		vt->submit(e.c, &ops[i]);
	}
	/* conn_close with all three in flight; the loop runs until the conn
	 * is gone, then the store closes, lock still held. */
	env_close(&e);
	CHECK_INT(t.done, 3);
	for (i = 0; i < 3; i++)
		CHECK_INT(ops[i].status, LD_STORE_TIMEOUT);
	release_write_lock(lock);
out:
	env_cleanup(&e);
}

/* conn_close with writes in flight: they still complete with their result
 * (done() on the loop), a submit after close is UNAVAILABLE, and the conn
 * goes after the last one. */
static void test_conn_close_in_flight(void)
{
	struct env e;
	struct ld_store_op ops[3], after;
	struct tally t;
	int64_t alice;
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	for (i = 0; i < 3; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "closing", 7);
		vt->submit(e.c, &ops[i]);
	}
	vt->conn_close(e.c);
	op_init(&after, LD_OP_USER_GET, &t);
	after.id = alice;
	vt->submit(e.c, &after);
	uv_run(&e.loop, UV_RUN_DEFAULT); /* returns once the conn is gone */
	CHECK_INT(uv_loop_close(&e.loop), 0);
	e.c = NULL;
	CHECK_INT(t.done, 4);
	CHECK_INT(t.wrong_thread, 0);
	for (i = 0; i < 3; i++)
		CHECK_INT(ops[i].status, LD_STORE_OK);
	CHECK_INT(after.status, LD_STORE_UNAVAILABLE);
	vt->close(e.s);
	e.s = NULL;
	/* They were committed: a new store sees them. */
	if (env_open(&e) == 0)
		CHECK_INT(count_items(&e, alice), 3);
out:
	env_cleanup(&e);
}

/* done() may submit the same op again: a chain create user -> get it ->
 * create an item -> list, each step from the previous one's done(). */
struct chain {
	struct tally t;
	struct env *e;
	struct ld_item items[2];
	int status[4];
	unsigned step;
};

static void chain_done(struct ld_store_op *op)
{
	struct chain *ch = op->udata;
	int64_t uid;

	ch->status[ch->step++] = op->status;
	if (op->status != LD_STORE_OK || ch->step == 4) {
		ch->t.done = 1;
		return;
	}
	switch (ch->step) {
	case 1:
		uid = op->user.id;
		memset(op, 0, sizeof(*op));
		op->kind = LD_OP_USER_GET;
		op->id = uid;
		break;
	case 2:
		uid = op->user.id;
		memset(op, 0, sizeof(*op));
		op->kind = LD_OP_ITEM_CREATE;
		op->actor_id = uid;
		set_content(op, "chained", 7);
		break;
	default:
		uid = op->item.user_id;
		memset(op, 0, sizeof(*op));
		op->kind = LD_OP_ITEM_LIST;
		op->id = uid;
		op->limit = 2;
		op->items = ch->items;
		break;
	}
	op->done = chain_done;
	op->udata = ch;
	vt->submit(ch->e->c, op);
}

static void test_done_resubmits(void)
{
	struct env e;
	struct chain ch;
	struct ld_store_op op;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	memset(&ch, 0, sizeof(ch));
	tally_init(&ch.t);
	ch.e = &e;
	op_init(&op, LD_OP_USER_CREATE, NULL);
	set_user(&op, "chain", "Chain");
	op.done = chain_done;
	op.udata = &ch;
	vt->submit(e.c, &op);
	run_until(&e, &ch.t, 1);
	CHECK_INT(ch.step, 4);
	CHECK_INT(ch.status[0], LD_STORE_OK);
	CHECK_INT(ch.status[1], LD_STORE_OK);
	CHECK_INT(ch.status[2], LD_STORE_OK);
	CHECK_INT(ch.status[3], LD_STORE_OK);
	CHECK_INT(op.nitems, 1);
	CHECK_STR(ch.items[0].content, "chained");
out:
	env_cleanup(&e);
}

/* Through sqlite-deferred nothing completes inside submit, reads included,
 * and completions of ops submitted together come back in another order. */
static struct ld_store_op order_ops[16];
static unsigned order_seen[16], order_n;

static void order_done(struct ld_store_op *op)
{
	order_seen[order_n++] = (unsigned)(op - order_ops);
}

static void test_deferred_completes_later(void)
{
	struct env e;
	int64_t alice;
	unsigned i;
	bool reordered = false;

	if (vt != &ld_deferred_vt)
		return;
	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	order_n = 0;
	for (i = 0; i < 16; i++) {
		op_init(&order_ops[i], LD_OP_USER_GET, NULL);
		order_ops[i].id = alice;
		order_ops[i].done = order_done;
		vt->submit(e.c, &order_ops[i]);
		CHECK_INT(order_n, 0);
	}
	for (i = 0; i < 100000 && order_n < 16; i++)
		uv_run(&e.loop, UV_RUN_ONCE);
	CHECK_INT(order_n, 16);
	for (i = 0; i < 16; i++) {
		CHECK_INT(order_ops[i].status, LD_STORE_OK);
		if (i > 0 && order_seen[i] < order_seen[i - 1])
			reordered = true;
	}
	CHECK(reordered);
out:
	env_cleanup(&e);
}

static void run_all(void)
{
	fprintf(stderr, "driver %s\n", vt->name);
	RUN(test_registry_and_names);
	RUN(test_users);
	RUN(test_items);
	RUN(test_content_bytes);
	RUN(test_list_pagination);
	RUN(test_conflict_in_one_batch);
	RUN(test_busy_when_queue_full);
	RUN(test_group_commit_batches);
	RUN(test_write_deadline);
	RUN(test_stalled_writer_health);
	RUN(test_close_with_stalled_writer);
	RUN(test_conn_close_in_flight);
	RUN(test_done_resubmits);
	RUN(test_deferred_completes_later);
	RUN(test_two_loops_two_threads);
	RUN(test_read_snapshot_sees_commits);
	RUN(test_schema_and_pragmas);
	RUN(test_newer_database_refused);
	RUN(test_migration_steps);
}

int main(void)
{
	vt = &ld_sqlite_vt;
	run_all();
	vt = &ld_deferred_vt;
	run_all();
	return unit_finish();
}
