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
	ld_req_respond(q->r, status);
}

static bool handle_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 3 || n > LD_HANDLE_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* display_name_check: 1-128 bytes, no control characters (they would only
 * ever be a mistake or an attack on someone's terminal). */
static const char *display_name_check(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > LD_DISPLAY_NAME_MAX)
		return "must be 1-128 bytes of UTF-8";
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "must not contain control characters";
	return NULL;
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
	const char *handle = NULL, *name = NULL, *pw = NULL, *msg;
	size_t hlen = 0, nlen = 0, plen = 0;
	json_t *body = ld_api_json_body(q);
	int has_name;

	if (!body)
		return;
	if (ld_api_string_field(body, "handle", &handle, &hlen, &v) == 0)
		ld_api_verr_add(&v, "handle", "is required");
	else if (handle && !handle_ok(handle, hlen))
		ld_api_verr_add(&v, "handle", "must be 3-32 characters of a-z, 0-9 and _");
	has_name = ld_api_string_field(body, "display_name", &name, &nlen, &v);
	if (has_name == 1 && (msg = display_name_check(name, nlen)))
		ld_api_verr_add(&v, "display_name", msg);
	if (ld_api_string_field(body, "password", &pw, &plen, &v) == 0)
		ld_api_verr_add(&v, "password", "is required");
	else if (pw && (plen < 8 || plen > 256))
		ld_api_verr_add(&v, "password", "must be 8-256 bytes");
	if (v.n) {
		ld_api_problem_fields(q, &v);
		goto out;
	}
	memcpy(q->op.user.handle, handle, hlen);
	q->op.user.handle[hlen] = '\0';
	/* The display name defaults to the handle. */
	if (has_name != 1) {
		name = handle;
		nlen = hlen;
	}
	memcpy(q->op.user.display_name, name, nlen);
	q->op.user.display_name[nlen] = '\0';
	memcpy(q->password, pw, plen);
	q->password_len = plen;
	/* argon2id takes tens of milliseconds by design: never on the loop. */
	q->work.data = q;
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

void ld_api_user_get(struct ld_api_req *q)
{
	q->op.kind = LD_OP_USER_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, got_user);
}

void ld_api_user_patch(struct ld_api_req *q)
{
	struct ld_api_verr v = {.n = 0};
	const char *name = NULL, *msg;
	size_t nlen = 0;
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
	if (ld_api_string_field(body, "display_name", &name, &nlen, &v) == 0)
		ld_api_verr_add(&v, "display_name", "is required");
	else if (name && (msg = display_name_check(name, nlen)))
		ld_api_verr_add(&v, "display_name", msg);
	if (v.n) {
		ld_api_problem_fields(q, &v);
		goto out;
	}
	q->op.kind = LD_OP_USER_UPDATE;
	q->op.id = q->path_id;
	q->op.actor_id = q->r->user_id;
	memcpy(q->op.user.display_name, name, nlen);
	q->op.user.display_name[nlen] = '\0';
	ld_api_submit(q, got_user);
out:
	json_decref(body);
}
