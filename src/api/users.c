/*
 * users.c - POST /v1/users, GET and PATCH /v1/users/{id}.
 */
#include <sodium.h>
#include <string.h>

#include "api/api.h"
#include "base/json.h"

static void respond_user(struct ld_api_req *q, int status, const struct ld_user *u)
{
	struct ld_json j;

	ld_json_init(&j, &q->r->out_body);
	ld_api_write_user(&j, u);
	if (status == 201)
		ld_req_header(q->r, "Location", "/v1/users/%lld", (long long)u->id);
	ld_api_respond_json(q, &j, status);
}

static void created(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status == LD_STORE_CONFLICT) {
		ld_api_problem(q, 409, "the handle is taken");
		return;
	}
	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	respond_user(q, 201, &op->user);
}

static void hash_work(uv_work_t *w)
{
	struct ld_api_req *q = w->data;

	q->work_rc =
	    ld_password_hash(&q->api->auth, q->password, q->password_len, q->op.user.password_hash);
	sodium_memzero(q->password, sizeof(q->password));
}

static void hash_done(uv_work_t *w, int status)
{
	struct ld_api_req *q = w->data;

	ld_stage_mark(&q->r->stages, LD_STAGE_HASH);
	if (status != 0 || q->work_rc != 0) {
		ld_api_problem(q, 503, "password hashing failed for lack of memory; retry");
		return;
	}
	q->op.kind = LD_OP_USER_CREATE;
	ld_api_submit(q, created);
}

void ld_api_users_create(struct ld_api_req *q)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str handle = {0}, name = {0}, pw = {0};
	json_t *body = ld_api_json_body(q);

	if (!body)
		return;
	if (ld_validate_user_create(body, &handle, &name, &pw, &v)) {
		ld_api_problem_fields(q, &v);
		goto out;
	}
	memcpy(q->op.user.handle, handle.s, handle.n);
	q->op.user.handle[handle.n] = '\0';
	memcpy(q->op.user.display_name, name.s, name.n);
	q->op.user.display_name[name.n] = '\0';
	if (ld_api_keep_password(q, &pw) != 0) {
		ld_api_problem(q, 500, "a validated password passed its cap");
		goto out;
	}
	/* argon2id takes tens of milliseconds by design: never on the loop. */
	q->work.data = q;
	ld_stage_mark(&q->r->stages, LD_STAGE_HANDLER);
	if (uv_queue_work(&q->r->loop->uv, &q->work, hash_work, hash_done) != 0) {
		sodium_memzero(q->password, sizeof(q->password));
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
	}
out:
	json_decref(body);
}

static void got_user(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	respond_user(q, 200, &op->user);
}

static void user_get_store(struct ld_api_req *q)
{
	q->op.kind = LD_OP_USER_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, got_user);
}

void ld_api_user_get(struct ld_api_req *q)
{
	if (!ld_api_cache_try(q, LD_CACHE_USER, q->path_id, user_get_store))
		user_get_store(q);
}

void ld_api_user_patch(struct ld_api_req *q)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str name = {0};
	json_t *body;

	if (ld_api_authenticate(q))
		return;
	if (q->r->user_id != q->path_id) {
		ld_api_problem(q, 403, "a user may only change their own profile");
		return;
	}
	body = ld_api_json_body(q);
	if (!body)
		return;
	if (ld_validate_user_patch(body, &name, &v)) {
		ld_api_problem_fields(q, &v);
		goto out;
	}
	q->op.kind = LD_OP_USER_UPDATE;
	q->op.id = q->path_id;
	q->op.actor_id = q->r->user_id;
	memcpy(q->op.user.display_name, name.s, name.n);
	q->op.user.display_name[name.n] = '\0';
	ld_api_submit(q, got_user);
out:
	json_decref(body);
}
