/*
 * sessions.c - POST /v1/sessions: handle + password -> signed bearer token.
 *
 * An unknown handle and a wrong password get the same answer, and both run
 * one argon2id verification (against a dummy hash of the same cost when the
 * handle is unknown), so neither the body nor the time tells which it was.
 */
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "base/json.h"

static void verify_work(uv_work_t *w)
{
	struct ld_api_req *q = w->data;
	const char *hash = q->user_found ? q->op.user.password_hash : q->api->auth.dummy_hash;

	q->work_rc = ld_password_verify(hash, q->password, q->password_len);
	sodium_memzero(q->password, sizeof(q->password));
}

static void verify_done(uv_work_t *w, int status)
{
	struct ld_api_req *q = w->data;
	struct ld_json j;
	char token[LD_TOKEN_MAX];
	int64_t expires = 0;

	ld_stage_mark(&q->r->stages, LD_STAGE_HASH);
	if (status != 0 || q->work_rc != 0 || !q->user_found) {
		ld_req_header(q->r, "WWW-Authenticate", "Bearer");
		ld_api_problem(q, 401, "invalid handle or password");
		return;
	}
	if (ld_token_issue(&q->api->auth, q->op.user.id, time(NULL), token, sizeof(token),
			   &expires) != 0) {
		ld_api_problem(q, 500, "could not sign a token");
		return;
	}
	q->r->user_id = q->op.user.id;
	ld_json_init(&j, &q->r->out_body);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "token");
	ld_json_str(&j, token);
	ld_json_key(&j, "expires_at");
	ld_json_time_ms(&j, expires * 1000);
	ld_json_key(&j, "user_id");
	ld_json_id(&j, q->op.user.id);
	ld_json_obj_end(&j);
	sodium_memzero(token, sizeof(token));
	ld_req_header(q->r, "Cache-Control", "no-store");
	ld_api_respond_json(q, &j, 201);
}

static void looked_up(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status != LD_STORE_OK && op->status != LD_STORE_NOT_FOUND) {
		sodium_memzero(q->password, sizeof(q->password));
		ld_api_store_failed(q, op->status);
		return;
	}
	q->user_found = op->status == LD_STORE_OK;
	q->work.data = q;
	ld_stage_mark(&q->r->stages, LD_STAGE_HANDLER);
	if (uv_queue_work(&q->r->loop->uv, &q->work, verify_work, verify_done) != 0) {
		sodium_memzero(q->password, sizeof(q->password));
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
	}
}

void ld_api_sessions_create(struct ld_api_req *q)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str handle = {0}, pw = {0};
	json_t *body = ld_api_json_body(q);

	if (!body)
		return;
	if (ld_validate_session(body, &handle, &pw, &v)) {
		ld_api_problem_fields(q, &v);
		goto out;
	}
	memcpy(q->op.user.handle, handle.s, handle.n);
	q->op.user.handle[handle.n] = '\0';
	if (ld_api_keep_password(q, &pw) != 0) {
		ld_api_problem(q, 500, "a validated password passed its cap");
		goto out;
	}
	q->op.kind = LD_OP_USER_GET_BY_HANDLE;
	ld_api_submit(q, looked_up);
out:
	json_decref(body);
}
