/*
 * api.c - routing to handlers, and what every handler shares: problem
 * documents, JSON bodies, bearer authentication, store completion.
 */
#include "api/api.h"
#include "api/idempotency.h"
#include "api/params.h"
#include "api/session_token.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/ids.h"
#include "base/json.h"
#include "http/router.h"
#include "http/status.h"
#include "obs/log.h"
#include "obs/metrics.h"

static const char *const route_names[LD_ROUTE_COUNT] = {
    [LD_ROUTE_NONE] = "unmatched",
    [LD_ROUTE_USERS] = "/v1/users",
    [LD_ROUTE_USER] = "/v1/users/{id}",
    [LD_ROUTE_USER_ITEMS] = "/v1/users/{id}/items",
    [LD_ROUTE_SESSIONS] = "/v1/sessions",
    [LD_ROUTE_ITEMS] = "/v1/items",
    [LD_ROUTE_ITEM] = "/v1/items/{id}",
    [LD_ROUTE_HEALTHZ] = "/healthz",
    [LD_ROUTE_READYZ] = "/readyz",
    [LD_ROUTE_METRICS] = "/metrics",
    [LD_ROUTE_DEBUG_STATS] = "/debug/stats",
    [LD_ROUTE_PHOTOS] = "/v1/photos",
    [LD_ROUTE_PHOTO] = "/v1/photos/{id}",
    [LD_ROUTE_PHOTO_CONTENT] = "/v1/photos/{id}/content",
    [LD_ROUTE_PHOTO_COMPLETE] = "/v1/photos/{id}/complete",
    [LD_ROUTE_PHOTO_ORIGINAL] = "/v1/photos/{id}/original",
    [LD_ROUTE_PHOTO_V128] = "/v1/photos/{id}/128",
    [LD_ROUTE_PHOTO_V512] = "/v1/photos/{id}/512",
    [LD_ROUTE_PHOTO_V1600] = "/v1/photos/{id}/1600",
    [LD_ROUTE_USER_PHOTOS] = "/v1/users/{id}/photos",
};

typedef void (*handler_fn)(struct ld_api_req *q);

/* handlers[route][method]; HEAD falls back to GET. */
static const handler_fn handlers[LD_ROUTE_COUNT][LD_HTTP_METHOD_COUNT] = {
    [LD_ROUTE_USERS] = {[LD_HTTP_POST] = ld_api_users_create},
    [LD_ROUTE_USER] = {[LD_HTTP_GET] = ld_api_user_get, [LD_HTTP_PATCH] = ld_api_user_patch},
    [LD_ROUTE_USER_ITEMS] = {[LD_HTTP_GET] = ld_api_user_items},
    [LD_ROUTE_SESSIONS] = {[LD_HTTP_POST] = ld_api_sessions_create},
    [LD_ROUTE_ITEMS] = {[LD_HTTP_POST] = ld_api_items_create},
    [LD_ROUTE_ITEM] = {[LD_HTTP_GET] = ld_api_item_get,
		       [LD_HTTP_PUT] = ld_api_item_put,
		       [LD_HTTP_DELETE] = ld_api_item_delete},
    [LD_ROUTE_HEALTHZ] = {[LD_HTTP_GET] = ld_api_healthz},
    [LD_ROUTE_READYZ] = {[LD_HTTP_GET] = ld_api_readyz},
    [LD_ROUTE_METRICS] = {[LD_HTTP_GET] = ld_api_metrics},
    [LD_ROUTE_DEBUG_STATS] = {[LD_HTTP_GET] = ld_api_debug_stats},
    [LD_ROUTE_PHOTOS] = {[LD_HTTP_POST] = ld_api_photos_create},
    [LD_ROUTE_PHOTO] = {[LD_HTTP_GET] = ld_api_photo_get, [LD_HTTP_DELETE] = ld_api_photo_delete},
    [LD_ROUTE_PHOTO_CONTENT] = {[LD_HTTP_PUT] = ld_api_photo_put_content},
    [LD_ROUTE_PHOTO_COMPLETE] = {[LD_HTTP_POST] = ld_api_photo_complete},
    [LD_ROUTE_PHOTO_ORIGINAL] = {[LD_HTTP_GET] = ld_api_photo_version},
    [LD_ROUTE_PHOTO_V128] = {[LD_HTTP_GET] = ld_api_photo_version},
    [LD_ROUTE_PHOTO_V512] = {[LD_HTTP_GET] = ld_api_photo_version},
    [LD_ROUTE_PHOTO_V1600] = {[LD_HTTP_GET] = ld_api_photo_version},
    [LD_ROUTE_USER_PHOTOS] = {[LD_HTTP_GET] = ld_api_user_photos},
};

/*
 * The stage profile (obs/stats.h) is kept per handler, "METHOD /path", not
 * per path as in the request metrics: a GET and a PUT of one item have
 * nothing in common below the router. Index 0 ("unmatched") takes every
 * request that reached no handler (no route, 404 on a bad id, 405, errors of
 * the HTTP layer). Built once by ld_api_app.
 */
#define PROFILE_MAX (LD_ROUTE_COUNT * 4)
static char profile_text[PROFILE_MAX][64];
static const char *profile_names[PROFILE_MAX];
static unsigned profile_count;
static unsigned char profile_index[LD_ROUTE_COUNT][LD_HTTP_METHOD_COUNT];

static void profile_build(void)
{
	unsigned r, m;

	if (profile_count)
		return;
	profile_names[profile_count++] = "unmatched";
	for (r = 1; r < LD_ROUTE_COUNT; r++)
		for (m = 0; m < LD_HTTP_METHOD_COUNT; m++) {
			if (!handlers[r][m] || profile_count == PROFILE_MAX)
				continue;
			snprintf(profile_text[profile_count], sizeof(profile_text[0]), "%s %s",
				 ld_http_method_name((enum ld_http_method)m), route_names[r]);
			profile_names[profile_count] = profile_text[profile_count];
			profile_index[r][m] = (unsigned char)profile_count++;
		}
}

const char *const *ld_api_profile_routes(unsigned *n)
{
	profile_build();
	*n = profile_count;
	return profile_names;
}

/* problem_write puts the problem document for status into the body (and
 * its Content-Type, and Retry-After for a 503), logs a 500 with the request
 * id, and returns the status to send. v adds 422's "errors" when non-NULL. A
 * document the writer could not finish is replaced by a 500 of its own. */
static int problem_write(struct ld_api_req *q, int status, const char *detail,
			 const struct ld_api_verr *v)
{
	struct ld_json j;
	unsigned i;
	int rc;

	ld_buf_reset(&q->r->out_body);
	ld_json_init(&j, &q->r->out_body);
	ld_http_problem_open(&j, status, detail);
	if (v) {
		ld_json_key(&j, "errors");
		ld_json_arr_begin(&j);
		for (i = 0; i < v->n; i++) {
			ld_json_obj_begin(&j);
			ld_json_key(&j, "field");
			ld_json_str(&j, v->field[i]);
			ld_json_key(&j, "message");
			ld_json_str(&j, v->message[i]);
			ld_json_obj_end(&j);
		}
		ld_json_arr_end(&j);
	}
	ld_json_obj_end(&j);
	rc = ld_json_finish(&j);
	if (rc && status != 500) {
		ld_buf_reset(&q->r->out_hdrs); /* they were for the answer that failed */
		return problem_write(q, 500, "the error document could not be written", NULL);
	}
	/* A 500 that failed too has a failed body buffer (the writer's only
	 * possible failure for it), and the server answers a 500 of its own. */
	q->r->content_type = "application/problem+json";
	if (status == 503)
		ld_req_header(q->r, "Retry-After", "1");
	if (status >= 500 && status != 503) {
		ld_log_event(
		    "error", "internal error",
		    (const char *const[]){"request_id", q->r->request_id, "detail", detail, NULL});
	}
	return status;
}

void ld_api_problem(struct ld_api_req *q, int status, const char *detail)
{
	status = problem_write(q, status, detail, NULL);
	ld_api_cache_settle(q, status);
	ld_req_respond(q->r, status);
}

void ld_api_problem_fields(struct ld_api_req *q, const struct ld_api_verr *v)
{
	char detail[160];

	snprintf(detail, sizeof(detail), "%s: %s", v->field[0], v->message[0]);
	ld_req_respond(q->r, problem_write(q, 422, detail, v));
}

int ld_api_json_status(struct ld_api_req *q, const struct ld_json *j, int status)
{
	if (ld_json_finish(j) == 0)
		return status;
	/* The header lines the handler added described the document that
	 * failed (its ETag, its Location): they go with it. */
	ld_buf_reset(&q->r->out_hdrs);
	return problem_write(q, 500, "the response body could not be written", NULL);
}

void ld_api_respond_json(struct ld_api_req *q, const struct ld_json *j, int status)
{
	status = ld_api_json_status(q, j, status);
	ld_api_cache_settle(q, status);
	ld_req_respond(q->r, status);
}

/* ---- cache-aside ---------------------------------------------------------- */

static void cache_hit(struct ld_api_req *q, const struct ld_cache_value *v)
{
	struct ld_req *r = q->r;
	const struct ld_http_field *inm;

	if (v->etag[0]) {
		ld_req_header_str(r, "ETag", v->etag);
		inm = ld_http_find(&r->h, "if-none-match");
		if (v->status == 200 && inm &&
		    ld_etag_list_has(inm->value, inm->value_len, v->etag, true)) {
			ld_req_respond(r, 304);
			return;
		}
	}
	/* The uncompressed body: ld_req_respond gzips it when this client
	 * accepts gzip, as for a response rendered now. */
	if (ld_buf_append(&r->out_body, v->body, v->body_len) != 0) {
		ld_buf_reset(&r->out_hdrs);
		ld_api_problem(q, 500, "the cached response could not be copied");
		return;
	}
	if (v->problem)
		r->content_type = "application/problem+json";
	ld_req_respond(r, v->status);
}

/* cache_lookup: 1 when answered or parked, 0 to go to the store. */
static int cache_lookup(struct ld_api_req *q, bool may_wait)
{
	struct ld_cache_value v;
	enum ld_cache_result res;

	/* The entry's TTL is checked against the step's reading: a lookup is
	 * reached in the step that dispatched or resumed q. */
	res = q->api->cvt->lookup(q->al->cache, &q->ck, may_wait ? &q->cw : NULL, &q->ct, &v,
				  ld_req_now(q->r));
	ld_stage_mark(&q->r->stages, LD_STAGE_CACHE);
	if (res == LD_CACHE_HIT)
		cache_hit(q, &v);
	return res != LD_CACHE_MISS;
}

static void cache_woken(struct ld_cache_waiter *w, enum ld_cache_wake how)
{
	struct ld_api_req *q = (struct ld_api_req *)((char *)w - offsetof(struct ld_api_req, cw));

	ld_req_step_begin(q->r); /* q resumes after its wait */
	/* The wait is cache time. A fill that was stored is looked up again
	 * (no second wait); one dropped or too slow sends us to the store,
	 * and so does a turn to fill (with the ticket the lookup gave). */
	if (how == LD_CACHE_WOKE_FILLED && cache_lookup(q, false))
		return;
	if (how != LD_CACHE_WOKE_FILLED) {
		ld_stage_mark(&q->r->stages, LD_STAGE_CACHE);
		q->ct.filler = how == LD_CACHE_WOKE_FILL;
	}
	q->cache_miss(q);
}

bool ld_api_cache_try(struct ld_api_req *q, enum ld_cache_kind kind, int64_t id,
		      void (*miss)(struct ld_api_req *q))
{
	/* A read with a Ladder-Session token must see a write that may have
	 * gone through another node, which this cache would not know of: it
	 * goes to the store (and fills nothing). */
	if (!q->api->cvt || !q->al->cache || q->op.min_pos)
		return false;
	q->ck.kind = kind;
	q->ck.id = id;
	q->cache_miss = miss;
	q->cw.wake = cache_woken;
	/* One whose budget has run out does no lookup at all; one woken from
	 * a wait behind another's fill past its deadline does not go on to
	 * the store (ld_api_submit). */
	if (ld_api_adm_expired(q, ld_req_now(q->r), "cache")) {
		ld_api_store_failed(q, LD_STORE_TIMEOUT);
		return true;
	}
	return cache_lookup(q, true) != 0;
}

void ld_api_cache_settle(struct ld_api_req *q, int status)
{
	struct ld_req *r = q->r;
	struct ld_cache_value v = {.status = status, .etag = q->cache_etag};
	bool ok = (status == 200 || status == 404) && !ld_buf_error(&r->out_body);

	if (!q->ct.filler)
		return;
	q->ct.filler = false;
	/* Sent as a fill (fresh) but answered by a replica: not kept. */
	if (q->store_done && !q->op.fresh)
		ok = false;
	v.problem = status == 404;
	v.body = r->out_body.data ? r->out_body.data : "";
	v.body_len = r->out_body.len;
	q->api->cvt->fill(q->al->cache, &q->ck, &(struct ld_cache_ticket){q->ct.gen, true},
			  ok ? &v : NULL);
}

/* cache_serve_stale answers a cached read whose store read failed with
 * what the cache still holds past its TTL (--cache-serve-stale), marked
 * stale: Cache-Status (RFC 9211) and the older Warning 110 (RFC 7234), so
 * a client or a proxy can tell. True when it answered. */
static bool cache_serve_stale(struct ld_api_req *q)
{
	const struct ld_cache_vt *cvt = q->api->cvt;
	struct ld_cache_value v;
	uint64_t past_ms;

	if (!q->cache_miss || !cvt || !cvt->lookup_stale || !q->al->cache)
		return false;
	/* Our fill, if we held it, is abandoned first (its waiters go to the
	 * store, and fall back here too); after it, v stays valid. */
	ld_api_cache_settle(q, 503);
	if (!cvt->lookup_stale(q->al->cache, &q->ck, &v, &past_ms))
		return false;
	if (past_ms) {
		ld_req_header(q->r, "Cache-Status", "ladder; hit; detail=stale");
		ld_req_header(q->r, "Warning", "110 - \"Response is Stale\"");
	}
	cache_hit(q, &v);
	return true;
}

static void cache_synced(struct ld_cache_waiter *w, enum ld_cache_wake how)
{
	struct ld_api_req *q = (struct ld_api_req *)((char *)w - offsetof(struct ld_api_req, cw));

	(void)how;
	q->store_done(&q->op);
}

/* cache_invalidate deletes what a write made stale, after its commit and
 * before its answer: the item, its owner's first page, a new user's 404s.
 * Every status: a failed write changed nothing, but an extra delete only
 * costs a fill. True when the answer waits for the level's deletes
 * elsewhere (Redis): cache_synced gives it. */
static bool cache_invalidate(struct ld_api_req *q, const struct ld_store_op *op)
{
	const struct ld_cache_vt *cvt = q->api->cvt;
	struct ld_cache_loop *cl = q->al->cache;

	if (!cvt || !cl)
		return false;
	switch (op->kind) {
	case LD_OP_USER_CREATE:
		if (op->status != LD_STORE_OK)
			break;
		cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_USER, op->user.id});
		cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_USER_ITEMS, op->user.id});
		break;
	case LD_OP_USER_UPDATE:
		cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_USER, op->id});
		break;
	case LD_OP_ITEM_CREATE:
		if (op->status == LD_STORE_OK)
			cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_ITEM, op->item.id});
		cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_USER_ITEMS, op->actor_id});
		break;
	case LD_OP_ITEM_UPDATE:
	case LD_OP_ITEM_DELETE:
		/* Only the owner's writes succeed, so the owner is the actor. */
		cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_ITEM, op->id});
		cvt->invalidate(cl, &(struct ld_cache_key){LD_CACHE_USER_ITEMS, op->actor_id});
		break;
	default:
		break;
	}
	if (!cvt->sync)
		return false;
	if (op != &q->op) {
		cvt->sync(cl, NULL); /* sent, not waited for */
		return false;
	}
	q->cw.wake = cache_synced;
	return cvt->sync(cl, &q->cw);
}

int ld_api_keep_password(struct ld_api_req *q, const struct ld_str *pw)
{
	/* The validators cap passwords at LD_PASSWORD_MAX; the check makes the
	 * copy's safety this function's own, not its callers'. */
	_Static_assert(sizeof(q->password) == LD_PASSWORD_MAX + 1,
		       "password holds LD_PASSWORD_MAX bytes and a NUL");
	if (pw->n > LD_PASSWORD_MAX)
		return -E2BIG;
	memcpy(q->password, pw->s, pw->n);
	q->password[pw->n] = '\0';
	q->password_len = pw->n;
	return 0;
}

#define UNKNOWN_OUTCOME                                                                            \
	"the store became unavailable after the write was sent: the outcome is unknown; "          \
	"retry with an Idempotency-Key, or read before retrying"

void ld_api_store_failed(struct ld_api_req *q, int status)
{
	/* The store down for reads: a cached answer past its TTL, where the
	 * configuration allows it (docs/operations.md, degraded modes). */
	if ((status == LD_STORE_UNAVAILABLE || status == LD_STORE_TIMEOUT) && cache_serve_stale(q))
		return;
	switch (status) {
	case LD_STORE_NOT_FOUND:
		ld_api_problem(q, 404, "no such resource");
		break;
	case LD_STORE_CONFLICT:
		ld_api_problem(q, 409, "the resource conflicts with an existing one");
		break;
	case LD_STORE_PRECONDITION:
		ld_api_problem(q, 412, "If-Match does not match the current version");
		break;
	case LD_STORE_FORBIDDEN:
		ld_api_problem(q, 403, "the resource belongs to another user");
		break;
	case LD_STORE_BUSY:
		ld_metrics_shed();
		ld_api_problem(q, 503, "the server is overloaded; retry after a moment");
		break;
	case LD_STORE_UNAVAILABLE:
		/* A write whose COMMIT was sent when the database went away: the
		 * client must know a blind retry may make it twice. */
		if (q->op.status == status && q->op.outcome_unknown)
			ld_api_problem(q, 503, UNKNOWN_OUTCOME);
		else
			ld_api_problem(q, 503, "the store is not available");
		break;
	case LD_STORE_TIMEOUT:
		if (q->adm.expired) {
			ld_api_problem(q, 503,
				       "the request's time budget ran out before the store was "
				       "asked (Request-Timeout, or the server's request deadline); "
				       "nothing was changed");
			break;
		}
		/* The contract says a timed-out write was not committed, so a
		 * retry is safe: 503, not 504 (outcome unknown). */
		ld_api_problem(q, 503,
			       "the store did not answer in time; nothing was changed, retry");
		break;
	default:
		ld_api_problem(q, 500, "the store failed; see the server log");
		break;
	}
}

/* is_json_type accepts application/json with optional parameters. */
static bool is_json_type(const struct ld_http_field *f)
{
	size_t n = f->value_len;
	const char *semi = memchr(f->value, ';', n);

	if (semi)
		n = (size_t)(semi - f->value);
	while (n && (f->value[n - 1] == ' ' || f->value[n - 1] == '\t'))
		n--;
	return n == 16 && strncasecmp(f->value, "application/json", 16) == 0;
}

json_t *ld_api_json_body(struct ld_api_req *q)
{
	struct ld_req *r = q->r;
	const struct ld_http_field *ct;
	json_error_t jerr;
	json_t *obj = NULL;
	char detail[256];

	if (r->h.content_length < 0 && !r->h.chunked) {
		ld_api_problem(q, 411,
			       "this route needs a request body with Content-Length or "
			       "chunked Transfer-Encoding");
		goto out;
	}
	ct = ld_http_find(&r->h, "content-type");
	if (!ct || !is_json_type(ct)) {
		ld_api_problem(q, 415, "Content-Type must be application/json");
		goto out;
	}
	obj = ld_json_parse_body(r->body, r->body_len, &jerr);
	if (!obj) {
		/* jansson's text quotes the input ("near '...'"), which may be a
		 * password: keep only what went wrong and where. */
		char *near = strstr(jerr.text, " near ");

		if (near)
			*near = '\0';
		snprintf(detail, sizeof(detail), "the body is not valid JSON: %s (at byte %d)",
			 jerr.text, jerr.position);
		ld_api_problem(q, 400, detail);
	}
out:
	return obj;
}

int ld_api_authenticate(struct ld_api_req *q)
{
	struct ld_req *r = q->r;
	const struct ld_http_field *f = ld_http_find(&r->h, "authorization");
	int64_t uid = 0;
	int rc = -1;

	if (!f) {
		ld_stage_mark(&r->stages, LD_STAGE_AUTH);
		ld_req_header(r, "WWW-Authenticate", "Bearer");
		ld_api_problem(q, 401, "this route needs an Authorization: Bearer token");
		goto out;
	}
	rc = f->value_len < 8 || strncasecmp(f->value, "Bearer ", 7) != 0 ||
	     ld_token_verify(&q->api->auth, f->value + 7, f->value_len - 7, time(NULL), &uid) != 0;
	ld_stage_mark(&r->stages, LD_STAGE_AUTH);
	if (rc) {
		rc = -1;
		ld_req_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		ld_api_problem(q, 401, "the bearer token is malformed, expired or not ours");
		goto out;
	}
	r->user_id = uid;
	rc = 0;
out:
	return rc;
}

/* store_done closes the store stage with the driver's own clock reads, then
 * hands the op to the handler's completion. */
static void store_done(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	struct ld_req *r = q->r;

	if (r->stages.on)
		ld_stage_mark_store(&r->stages, op->t_taken_ns, op->t_commit_ns, op->t_committed_ns,
				    ld_now_ns());
	if (op->kind == LD_OP_USER_GET || op->kind == LD_OP_USER_GET_BY_HANDLE ||
	    op->kind == LD_OP_ITEM_GET || op->kind == LD_OP_ITEM_LIST ||
	    op->kind == LD_OP_PHOTO_GET || op->kind == LD_OP_PHOTO_LIST) {
		ld_obs_count_read(r->loop->index);
	} else {
		if (op->status == LD_STORE_OK && op->commit_pos) {
			char tok[LD_SESSION_TOKEN_MAX];

			ld_session_token_format(op->commit_pos, tok);
			ld_req_header_str(r, "Ladder-Session", tok);
		}
		if (cache_invalidate(q, op))
			return; /* answered once the deletes elsewhere are done */
	}
	q->store_done(op);
}

void ld_api_submit(struct ld_api_req *q, void (*done)(struct ld_store_op *op))
{
	/* One reading ends the handler stage and starts the store's: the
	 * deadline is checked and handed on at the moment the op is sent. */
	uint64_t now = ld_req_step_begin(q->r);

	ld_stage_mark_at(&q->r->stages, LD_STAGE_HANDLER, now);
	q->store_done = done;
	q->op.fresh = q->ct.filler; /* a cache fill reads from the primary */
	q->op.done = store_done;
	q->op.udata = q;
	q->op.t_taken_ns = q->op.t_commit_ns = q->op.t_committed_ns = 0;
	/* Work whose deadline has passed is not done: the handler gets the
	 * store's own answer for a late op, without the store. */
	if (ld_api_adm_expired(q, now, "store")) {
		q->op.status = LD_STORE_TIMEOUT;
		q->op.outcome_unknown = false;
		q->op.commit_pos = 0;
		done(&q->op);
		return;
	}
	q->op.deadline_ns = ld_api_adm_store_deadline(q, now);
	q->api->vt->submit(q->al->store, &q->op);
}

void ld_api_write_user(struct ld_json *j, const struct ld_user *u)
{
	ld_json_obj_begin(j);
	ld_json_key(j, "id");
	ld_json_id(j, u->id);
	ld_json_key(j, "handle");
	ld_json_str(j, u->handle);
	ld_json_key(j, "display_name");
	ld_json_str(j, u->display_name);
	ld_json_key(j, "created_at");
	ld_json_time_ms(j, u->created_ms);
	ld_json_key(j, "updated_at");
	ld_json_time_ms(j, u->updated_ms);
	ld_json_obj_end(j);
}

void ld_api_write_item(struct ld_json *j, const struct ld_item *it)
{
	ld_json_obj_begin(j);
	ld_json_key(j, "id");
	ld_json_id(j, it->id);
	ld_json_key(j, "user_id");
	ld_json_id(j, it->user_id);
	ld_json_key(j, "content");
	ld_json_strn(j, it->content, it->content_len);
	ld_json_key(j, "created_at");
	ld_json_time_ms(j, it->created_ms);
	ld_json_key(j, "updated_at");
	ld_json_time_ms(j, it->updated_ms);
	ld_json_key(j, "version");
	ld_json_int(j, it->version);
	ld_json_obj_end(j);
}

void ld_api_etag(const struct ld_item *it, char *out)
{
	/* Hand-formatted: this runs on every item read. */
	size_t n = 0;

	out[n++] = '"';
	n += ld_id_format(it->id, out + n);
	out[n++] = '.';
	n += ld_id_format(it->version > 0 ? it->version : 0, out + n);
	out[n++] = '"';
	out[n] = '\0';
}

static void allow_header(struct ld_req *r, unsigned route)
{
	char allow[96] = "";
	unsigned m;

	for (m = 1; m < LD_HTTP_METHOD_COUNT; m++) {
		if (!handlers[route][m])
			continue;
		if (allow[0])
			strcat(allow, ", ");
		strcat(allow, ld_http_method_name((enum ld_http_method)m));
		if (m == LD_HTTP_GET)
			strcat(allow, ", HEAD");
	}
	ld_req_header(r, "Allow", "%s", allow);
}

/* method_implemented: a method is known when at least one route has a
 * handler for it (HEAD with GET). Anything else, a token the parser does not
 * name (PROPFIND, "get") or one no route uses (OPTIONS), is 501 on every path
 * (RFC 9110 15.6.2); a known method on a route without it stays 405. */
static bool implemented[LD_HTTP_METHOD_COUNT];

/* implemented_build fills implemented[] from handlers[] once, before any
 * loop runs (ld_api_app), so a request's check is one load rather than a
 * walk over every route. */
static void implemented_build(void)
{
	for (unsigned m = 0; m < LD_HTTP_METHOD_COUNT; m++)
		for (unsigned route = 0; route < LD_ROUTE_COUNT; route++)
			if (m != LD_HTTP_OTHER && handlers[route][m])
				implemented[m] = true;
	implemented[LD_HTTP_HEAD] = implemented[LD_HTTP_GET];
}

static bool method_implemented(enum ld_http_method method)
{
	return (unsigned)method < LD_HTTP_METHOD_COUNT && implemented[method];
}

/* session_token reads the request's Ladder-Session header (docs/api.md)
 * into q->op.min_pos: 0, or -1 after answering 400 for one this service
 * never gives out. */
static int session_token(struct ld_api_req *q)
{
	const struct ld_http_field *f = ld_http_find(&q->r->h, "ladder-session");

	if (!f || ld_session_token_parse(f->value, f->value_len, &q->op.min_pos) == 0)
		return 0;
	ld_api_problem(q, 400,
		       "the Ladder-Session header is not a token this service gave out: send back "
		       "the value of a write's Ladder-Session response header, or none");
	return -1;
}

/* admit runs once the rate limit has let q through: its handler now, or
 * later from the admission queue, or never (shed). */
static void admit(struct ld_api_req *q)
{
	if (!ld_api_adm_admit(q, q->handler))
		q->handler(q);
}

static void on_request(struct ld_req *r, void *arg)
{
	struct ld_api *api = arg;
	struct ld_api_req *q = r->app;
	struct ld_route_match m;
	enum ld_http_method method = r->h.method;
	handler_fn fn;
	int route;

	q->r = r;
	q->api = api;
	q->al = r->loop->app;
	if (!method_implemented(method)) {
		r->route = LD_ROUTE_NONE;
		ld_api_problem(q, 501, "the server does not implement this method");
		return;
	}
	route = ld_router_match(route_names, LD_ROUTE_COUNT, r->h.path, r->h.path_len, &m);
	if (route < 0) {
		r->route = LD_ROUTE_NONE;
		ld_api_problem(q, 404, "no route matches this path");
		return;
	}
	r->route = (unsigned)route;
	if (m.param && ld_id_parse(m.param, m.param_len, &q->path_id) != 0) {
		ld_api_problem(q, 404, "no such resource: ids are positive decimal integers");
		return;
	}
	fn = handlers[route][method];
	if (!fn && method == LD_HTTP_HEAD) {
		fn = handlers[route][LD_HTTP_GET];
		method = LD_HTTP_GET;
	}
	if (!fn) {
		allow_header(r, (unsigned)route);
		ld_api_problem(q, 405, "this method is not allowed on this route");
		return;
	}
	r->profile_route = profile_index[route][method];
	q->handler = fn;
	if (session_token(q) != 0 || ld_api_adm_budget(q) != 0 || ld_api_rl_admit(q, admit))
		return;
	admit(q);
}

static void on_http_error(struct ld_req *r, int status, const char *detail, void *arg)
{
	struct ld_api_req *q = r->app;

	q->r = r;
	q->api = arg;
	q->al = r->loop->app;
	r->route = LD_ROUTE_NONE;
	ld_api_problem(q, status, detail);
}

static int loop_init(struct ld_loop *l, void *arg)
{
	struct ld_api *api = arg;
	struct ld_api_loop *al = calloc(1, sizeof(*al));
	int rc = -ENOMEM;

	if (!al)
		goto out;
	al->api = api;
	rc = ld_obs_loop_open(l->index, &l->uv);
	if (rc) {
		free(al);
		goto out;
	}
	rc = api->vt->conn_open(api->store, &l->uv, &al->store);
	if (rc) {
		ld_obs_loop_close(l->index);
		free(al);
		goto out;
	}
	if (api->cvt) {
		rc = api->cvt->loop_open(api->cache, l->index, &l->uv, &al->cache);
		if (rc) {
			api->vt->conn_close(al->store);
			ld_obs_loop_close(l->index);
			free(al);
			goto out;
		}
	}
	/* One reaper of expired idempotency keys per process is plenty. */
	if (ld_api_rl_loop_open(al, l->index, &l->uv) != 0 ||
	    ld_api_adm_loop_open(al, l->index, &l->uv) != 0 ||
	    (l->index == 0 && ld_api_idem_reaper_start(al, &l->uv) != 0)) {
		ld_api_adm_loop_close(al);
		ld_api_rl_loop_close(al);
		if (al->cache)
			api->cvt->loop_close(al->cache);
		api->vt->conn_close(al->store);
		ld_obs_loop_close(l->index);
		free(al);
		rc = -ENOMEM;
		goto out;
	}
	l->app = al;
out:
	return rc;
}

static void loop_fini(struct ld_loop *l, void *arg)
{
	struct ld_api *api = arg;
	struct ld_api_loop *al = l->app;

	if (al) {
		ld_obs_loop_close(l->index);
		ld_api_idem_reaper_stop(al); /* before the store conn: its op may be out */
		ld_api_adm_loop_close(al);
		ld_api_rl_loop_close(al);
		if (al->cache)
			api->cvt->loop_close(al->cache);
		api->vt->conn_close(al->store);
		free(al);
		l->app = NULL;
	}
}

void ld_api_app(struct ld_api *api, struct ld_server_app *app)
{
	memset(app, 0, sizeof(*app));
	profile_build();
	implemented_build();
	app->app_req_size = sizeof(struct ld_api_req);
	app->route_names = route_names;
	app->nroutes = LD_ROUTE_COUNT;
	app->loop_init = loop_init;
	app->loop_fini = loop_fini;
	app->on_request = on_request;
	app->on_http_error = on_http_error;
	app->on_respond = ld_api_adm_respond;
	app->body_max = ld_photos_body_max;
	app->body_sink = ld_photos_body_sink;
	app->arg = api;
}
