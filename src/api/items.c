/*
 * items.c - items: create, read (with ETag / If-None-Match), replace (with
 * If-Match), delete, and a user's newest-first keyset-paginated list.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/idempotency.h"
#include "api/params.h"
#include "base/json.h"

static void respond_item(struct ld_api_req *q, int status, const struct ld_item *it)
{
	struct ld_json j;
	char etag[48];

	ld_api_etag(it, etag);
	ld_req_header_str(q->r, "ETag", etag);
	memcpy(q->cache_etag, etag, sizeof(q->cache_etag));
	ld_json_init(&j, &q->r->out_body);
	ld_api_write_item(&j, it);
	if (status == 201)
		ld_req_header(q->r, "Location", "/v1/items/%lld", (long long)it->id);
	ld_api_respond_json(q, &j, status);
}

void ld_api_item_replay(struct ld_api_req *q, int status, const struct ld_item *it)
{
	if (status == 204)
		ld_req_respond(q->r, 204);
	else
		respond_item(q, status, it);
}

/* content_field validates the body and copies the content into q->op.item;
 * returns 0, or answers 422 and returns -1. */
static int content_field(struct ld_api_req *q, json_t *body)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str c = {0};

	if (ld_validate_item(body, &c, &v)) {
		ld_api_problem_fields(q, &v);
		return -1;
	}
	memcpy(q->op.item.content, c.s, c.n);
	q->op.item.content[c.n] = '\0';
	q->op.item.content_len = c.n;
	return 0;
}

static void item_written(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status == LD_STORE_NOT_FOUND && op->kind == LD_OP_ITEM_CREATE) {
		/* The token's user no longer exists. */
		ld_req_header(q->r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		ld_api_problem(q, 401, "the token's user does not exist");
		return;
	}
	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	respond_item(q, op->kind == LD_OP_ITEM_CREATE ? 201 : 200, &op->item);
}

void ld_api_items_create(struct ld_api_req *q)
{
	json_t *body;

	if (ld_api_authenticate(q))
		return;
	body = ld_api_json_body(q);
	if (!body)
		return;
	if (content_field(q, body) == 0) {
		q->op.kind = LD_OP_ITEM_CREATE;
		q->op.actor_id = q->r->user_id;
		ld_api_idem_submit(q, 201, item_written);
	}
	json_decref(body);
}

static void item_read(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	const struct ld_http_field *inm;
	char etag[48];

	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	ld_api_etag(&op->item, etag);
	inm = ld_http_find(&q->r->h, "if-none-match");
	if (inm && ld_etag_list_has(inm->value, inm->value_len, etag, true)) {
		if (q->ct.filler) {
			/* A 304 still fills: render the body the cache keeps,
			 * then send none. */
			struct ld_json j;

			memcpy(q->cache_etag, etag, sizeof(q->cache_etag));
			ld_json_init(&j, &q->r->out_body);
			ld_api_write_item(&j, &op->item);
			ld_api_cache_settle(q, ld_json_finish(&j) == 0 ? 200 : 500);
			ld_buf_reset(&q->r->out_body);
		}
		ld_req_header_str(q->r, "ETag", etag);
		ld_req_respond(q->r, 304);
		return;
	}
	respond_item(q, 200, &op->item);
}

static void item_get_store(struct ld_api_req *q)
{
	q->op.kind = LD_OP_ITEM_GET;
	q->op.id = q->path_id;
	ld_api_submit(q, item_read);
}

void ld_api_item_get(struct ld_api_req *q)
{
	if (!ld_api_cache_try(q, LD_CACHE_ITEM, q->path_id, item_get_store))
		item_get_store(q);
}

static int preconditions(struct ld_api_req *q, bool required)
{
	const struct ld_http_field *im = ld_http_find(&q->r->h, "if-match");

	if (!im) {
		if (required) {
			ld_api_problem(q, 428, "this update needs If-Match with the item's ETag");
			return -1;
		}
		q->op.expect_version = 0;
		return 0;
	}
	q->op.expect_version = ld_if_match_version(im->value, im->value_len, q->path_id);
	if (q->op.expect_version < 0) {
		ld_api_problem(q, 412, "If-Match does not match the current version");
		return -1;
	}
	return 0;
}

void ld_api_item_put(struct ld_api_req *q)
{
	json_t *body;

	if (ld_api_authenticate(q))
		return;
	if (preconditions(q, true))
		return;
	body = ld_api_json_body(q);
	if (!body)
		return;
	if (content_field(q, body) == 0) {
		q->op.kind = LD_OP_ITEM_UPDATE;
		q->op.id = q->path_id;
		q->op.actor_id = q->r->user_id;
		ld_api_idem_submit(q, 200, item_written);
	}
	json_decref(body);
}

static void item_deleted(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;

	if (op->status != LD_STORE_OK) {
		ld_api_store_failed(q, op->status);
		return;
	}
	ld_req_respond(q->r, 204);
}

void ld_api_item_delete(struct ld_api_req *q)
{
	if (ld_api_authenticate(q))
		return;
	if (preconditions(q, false))
		return;
	q->op.kind = LD_OP_ITEM_DELETE;
	q->op.id = q->path_id;
	q->op.actor_id = q->r->user_id;
	ld_api_idem_submit(q, 204, item_deleted);
}

static int64_t item_id(const void *row)
{
	return ((const struct ld_item *)row)->id;
}

static void item_row(struct ld_json *j, const void *row)
{
	ld_api_write_item(j, row);
}

static void listed(struct ld_store_op *op)
{
	struct ld_api_req *q = op->udata;
	const struct ld_api_page pg = {
	    op->items, sizeof(*op->items), op->nitems, op->has_more, item_id, item_row};

	struct ld_item *rows = q->items;

	/* q is not ours once answered (a pipelined request may take it):
	 * the rows are let go from a local. */
	q->items = NULL;
	if (op->status != LD_STORE_OK)
		ld_api_store_failed(q, op->status);
	else
		ld_api_respond_page(q, "items", &pg);
	free(rows);
}

static void list_store(struct ld_api_req *q)
{
	q->items = malloc(sizeof(*q->items) * q->op.limit);
	if (!q->items) {
		ld_api_problem(q, 503, "out of memory; retry after a moment");
		return;
	}
	q->op.items = q->items;
	/* A missing user is a 404, not an empty list: the list op says so
	 * itself (NOT_FOUND), in the same round trip. */
	q->op.kind = LD_OP_ITEM_LIST;
	q->op.id = q->path_id;
	ld_api_submit(q, listed);
}

void ld_api_user_items(struct ld_api_req *q)
{
	unsigned limit;
	int64_t before;

	if (ld_api_page_params(q, &limit, &before) != 0)
		return;
	q->op.limit = limit;
	q->op.before_id = before;
	/* Only the first page with the default limit is cached: it is the one
	 * every client reads, and one key per user is one delete per write. */
	if (before == 0 && limit == 20 &&
	    ld_api_cache_try(q, LD_CACHE_USER_ITEMS, q->path_id, list_store))
		return;
	list_store(q);
}
