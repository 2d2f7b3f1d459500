/*
 * test_store_idem.c - idempotency keys in the SQLite store (store.h, struct
 * ld_idem): a keyed write keeps its answer in its own transaction, a failed
 * one keeps nothing, a key already kept undoes the write (alone, inside its
 * batch), expired keys read as absent, are replaced, and are reaped a batch
 * at a time. Every test runs on SQLite, then on sqlite-deferred.
 */
#include "store_env.h"

static void set_key(struct ld_idem *k, const char *key, unsigned char fp, int status)
{
	memset(k, 0, sizeof(*k));
	k->key_len = strlen(key);
	memcpy(k->key, key, k->key_len);
	memset(k->fp, fp, sizeof(k->fp));
	k->status = status;
}

/* lookup runs IDEM_GET for (actor, key) into *got and op. */
static int lookup(struct env *e, int64_t actor, const char *key, struct ld_idem *got,
		  struct ld_store_op *op)
{
	set_key(got, key, 0, 0);
	op_init(op, LD_OP_IDEM_GET, NULL);
	op->actor_id = actor;
	op->idem = got;
	return exec(e, op);
}

static void test_default_retention_is_a_day(void)
{
	struct ld_store_config cfg;

	ld_store_config_default(&cfg);
	CHECK_INT(cfg.idem_retention_ms, 24LL * 3600 * 1000);
}

static void test_keyed_writes_keep_their_answer(void)
{
	struct env e;
	struct ld_store_op op, look;
	struct ld_idem k, got;
	int64_t alice, bob, id;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	bob = make_user(&e, "bob");

	set_key(&k, "create-1", 0xab, 201);
	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = alice;
	op.idem = &k;
	set_content(&op, "hello", 5);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	id = op.item.id;

	CHECK_INT(lookup(&e, alice, "create-1", &got, &look), LD_STORE_OK);
	CHECK(memcmp(got.fp, k.fp, LD_IDEM_FP_LEN) == 0);
	CHECK_INT(got.status, 201);
	CHECK_INT(look.item.id, id);
	CHECK_INT(look.item.user_id, alice);
	CHECK_STR(look.item.content, "hello");
	CHECK_INT(look.item.content_len, 5);
	CHECK_INT(look.item.version, 1);
	CHECK_INT(look.item.created_ms, op.item.created_ms);
	/* Keys belong to one user; another key is another key. */
	CHECK_INT(lookup(&e, bob, "create-1", &got, &look), LD_STORE_NOT_FOUND);
	CHECK_INT(lookup(&e, alice, "create-2", &got, &look), LD_STORE_NOT_FOUND);

	/* An update keeps the item as written. */
	set_key(&k, "put-1", 0xcd, 200);
	op_init(&op, LD_OP_ITEM_UPDATE, NULL);
	op.id = id;
	op.actor_id = alice;
	op.expect_version = 1;
	op.idem = &k;
	set_content(&op, "again", 5);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(lookup(&e, alice, "put-1", &got, &look), LD_STORE_OK);
	CHECK_INT(got.status, 200);
	CHECK_STR(look.item.content, "again");
	CHECK_INT(look.item.version, 2);

	/* A failed write keeps nothing: a stale version, then another user's. */
	set_key(&k, "put-2", 0xcd, 200);
	op.expect_version = 1;
	CHECK_INT(exec(&e, &op), LD_STORE_PRECONDITION);
	CHECK_INT(lookup(&e, alice, "put-2", &got, &look), LD_STORE_NOT_FOUND);
	set_key(&k, "del-1", 0xef, 204);
	op_init(&op, LD_OP_ITEM_DELETE, NULL);
	op.id = id;
	op.actor_id = bob;
	op.idem = &k;
	CHECK_INT(exec(&e, &op), LD_STORE_FORBIDDEN);
	CHECK_INT(lookup(&e, bob, "del-1", &got, &look), LD_STORE_NOT_FOUND);

	/* A delete keeps its status and the id. */
	op.actor_id = alice;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(lookup(&e, alice, "del-1", &got, &look), LD_STORE_OK);
	CHECK_INT(got.status, 204);
	CHECK_INT(look.item.id, id);
	CHECK_INT(look.item.content_len, 0);
out:
	env_cleanup(&e);
}

/* Two requests with one key in one batch (as two processes' would meet in
 * a shared database): the second is undone alone; its neighbours commit. */
static void test_key_kept_already_undoes_the_write_alone(void)
{
	struct env e;
	struct ld_store_op ops[4];
	struct ld_idem k1, k2;
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	set_key(&k1, "same", 1, 201);
	set_key(&k2, "same", 2, 201);
	tally_init(&t);
	lock = hold_write_lock(&e);
	for (i = 0; i < 4; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "x", 1);
		ops[i].deadline_ns = uv_hrtime() + 30000000000ULL;
	}
	ops[1].idem = &k1;
	ops[2].idem = &k2;
	vt->submit(e.c, &ops[0]);
	wait_taken(&e);
	for (i = 1; i < 4; i++)
		vt->submit(e.c, &ops[i]);
	release_write_lock(lock);
	run_until(&e, &t, 4);
	CHECK_INT(ops[0].status, LD_STORE_OK);
	CHECK_INT(ops[1].status, LD_STORE_OK);
	CHECK_INT(ops[2].status, LD_STORE_CONFLICT);
	CHECK_INT(ops[3].status, LD_STORE_OK);
	CHECK_INT(count_items(&e, alice), 3);
	/* The first request's answer is the one kept. */
	{
		struct ld_store_op look;
		struct ld_idem got;

		CHECK_INT(lookup(&e, alice, "same", &got, &look), LD_STORE_OK);
		CHECK_INT(got.fp[0], 1);
		CHECK_INT(look.item.id, ops[1].item.id);
	}
out:
	env_cleanup(&e);
}

static void test_expired_keys_are_replaced_and_reaped(void)
{
	struct env e;
	struct ld_store_op op, look;
	struct ld_idem k, got;
	int64_t alice;
	char key[16];
	unsigned i;

	env_setup(&e);
	e.cfg.idem_retention_ms = 1;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		set_key(&k, key, 7, 201);
		op_init(&op, LD_OP_ITEM_CREATE, NULL);
		op.actor_id = alice;
		op.idem = &k;
		set_content(&op, "x", 1);
		CHECK_INT(exec(&e, &op), LD_STORE_OK);
	}
	usleep(5000); /* past the 1 ms retention: what is tested is the store's clock */
	CHECK_INT(lookup(&e, alice, "k0", &got, &look), LD_STORE_NOT_FOUND);
	/* The expired row is replaced, not a conflict. */
	set_key(&k, "k0", 9, 201);
	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = alice;
	op.idem = &k;
	set_content(&op, "y", 1);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	usleep(5000);
	/* Five expired keys, two per batch. */
	op_init(&op, LD_OP_IDEM_REAP, NULL);
	op.limit = 2;
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 2);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 2);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 1);
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.nitems, 0);
	CHECK_INT(count_items(&e, alice), 6);
out:
	env_cleanup(&e);
}

static void test_misuse_is_an_error(void)
{
	struct env e;
	struct ld_store_op op;
	struct ld_idem k;
	int64_t alice;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	/* No key, or a key on an op that cannot carry one. */
	set_key(&k, "", 0, 201);
	op_init(&op, LD_OP_ITEM_CREATE, NULL);
	op.actor_id = alice;
	op.idem = &k;
	set_content(&op, "x", 1);
	CHECK_INT(exec(&e, &op), LD_STORE_ERROR);
	set_key(&k, "u", 0, 200);
	op_init(&op, LD_OP_USER_UPDATE, NULL);
	op.id = alice;
	op.idem = &k;
	snprintf(op.user.display_name, sizeof(op.user.display_name), "A");
	CHECK_INT(exec(&e, &op), LD_STORE_ERROR);
	op_init(&op, LD_OP_IDEM_REAP, NULL);
	op.limit = 0;
	CHECK_INT(exec(&e, &op), LD_STORE_ERROR);
	CHECK_INT(count_items(&e, alice), 0);
out:
	env_cleanup(&e);
}

int main(void)
{
	unsigned pass;

	RUN(test_default_retention_is_a_day);
	for (pass = 0; pass < 2; pass++) {
		vt = pass == 0 ? &ld_sqlite_vt : &ld_deferred_vt;
		RUN(test_keyed_writes_keep_their_answer);
		RUN(test_key_kept_already_undoes_the_write_alone);
		RUN(test_expired_keys_are_replaced_and_reaped);
		RUN(test_misuse_is_an_error);
	}
	return unit_finish();
}
