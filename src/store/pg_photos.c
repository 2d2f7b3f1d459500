/*
 * pg_photos.c - the photo ops of the PostgreSQL store: how each LD_OP_PHOTO_*
 * is bound to its statement (pg_schema.c) and how its answer becomes the
 * op's outputs. Connections, pipelining and deadlines are postgres.c's; the
 * semantics are store.h's, the same as SQLite's (sqlite_write.c).
 */
#include <stdio.h>

#include "store/pg_int.h"

bool ld__pg_photo_kind(enum ld_store_op_kind kind)
{
	return kind == LD_OP_PHOTO_CREATE || kind == LD_OP_PHOTO_GET ||
	       kind == LD_OP_PHOTO_COMPLETE || kind == LD_OP_PHOTO_DELETE ||
	       kind == LD_OP_PHOTO_LIST;
}

int ld__pg_photo_bind(struct ld_store_op *op, int64_t now, int64_t id, struct params *p)
{
	struct ld_photo *ph = &op->photo;

	p->n = 0;
	switch (op->kind) {
	case LD_OP_PHOTO_GET:
		p_int(p, op->id);
		return LD_PG_PHOTO_GET;
	case LD_OP_PHOTO_LIST:
		if (!op->photos || op->limit == 0 || op->limit > LD_LIST_MAX)
			return -1;
		p_int(p, op->id);
		p_int(p, op->before_id > 0 ? op->before_id : INT64_MAX);
		p_int(p, (int64_t)op->limit + 1);
		return LD_PG_PHOTO_LIST;
	case LD_OP_PHOTO_CREATE:
		/* The answer only says which of three: the photo is filled here
		 * and kept when it says "created". */
		memset(ph, 0, sizeof(*ph));
		ph->id = id;
		ph->user_id = op->actor_id;
		snprintf(ph->status, sizeof(ph->status), "uploading");
		ph->created_ms = ph->updated_ms = now;
		ph->version = 1;
		p_int(p, id);
		p_int(p, op->actor_id);
		p_int(p, now);
		p_int(p, op->limit);
		p_int(p, op->expect_version); /* uploads created before it do not count */
		return LD_PG_PHOTO_CREATE;
	case LD_OP_PHOTO_COMPLETE:
		ph->updated_ms = now;
		p_int(p, op->id);
		p_int(p, op->actor_id);
		p_text(p, ph->content_type, sizeof(ph->content_type) - 1);
		p_int(p, ph->size);
		p_int(p, ph->width);
		p_int(p, ph->height);
		p_int(p, now);
		return LD_PG_PHOTO_COMPLETE;
	case LD_OP_PHOTO_DELETE:
		p_int(p, op->id);
		p_int(p, op->actor_id);
		return LD_PG_PHOTO_DELETE;
	default:
		return -1;
	}
}

/* row_photo reads the photo columns 0..10 (photo_get and photo_list). */
static void row_photo(const PGresult *r, int row, struct ld_photo *p)
{
	p->id = get_i64(r, row, 0);
	p->user_id = get_i64(r, row, 1);
	get_bytes(r, row, 2, p->status, sizeof(p->status));
	get_bytes(r, row, 3, p->content_type, sizeof(p->content_type));
	p->size = get_i64(r, row, 4);
	p->width = (int)get_i64(r, row, 5);
	p->height = (int)get_i64(r, row, 6);
	get_bytes(r, row, 7, p->reason, sizeof(p->reason));
	p->created_ms = get_i64(r, row, 8);
	p->updated_ms = get_i64(r, row, 9);
	p->version = get_i64(r, row, 10);
	p->nversions = 0;
}

static int photo_get(const PGresult *r, struct ld_store_op *op)
{
	struct ld_photo *p = &op->photo;
	int n = PQntuples(r), i;

	if (n == 0)
		return LD_STORE_NOT_FOUND;
	row_photo(r, 0, p);
	for (i = 0; i < n && p->nversions < LD_PHOTO_VERSIONS_MAX; i++) {
		struct ld_photo_version *v;

		if (PQgetisnull(r, i, 11))
			break; /* the photo's row when it has no versions */
		v = &p->versions[p->nversions++];
		get_bytes(r, i, 11, v->name, sizeof(v->name));
		v->width = (int)get_i64(r, i, 12);
		v->height = (int)get_i64(r, i, 13);
		v->size = get_i64(r, i, 14);
		get_bytes(r, i, 15, v->etag, sizeof(v->etag));
	}
	return LD_STORE_OK;
}

static void photo_page_row(const PGresult *r, int i, struct ld_store_op *op, unsigned slot)
{
	row_photo(r, i, &op->photos[slot]);
}

/* why_unchanged reads photo_complete's and photo_delete's answer: changed,
 * or why not in store.h's order (missing, not the owner, not uploading). */
static int why_unchanged(const PGresult *r, struct ld_store_op *op)
{
	struct ld_photo *p = &op->photo;

	if (PQntuples(r) == 0)
		return LD_STORE_NOT_FOUND;
	if (!get_bool(r, 0, 0))
		return get_i64(r, 0, 3) != op->actor_id ? LD_STORE_FORBIDDEN
							: LD_STORE_PRECONDITION;
	if (op->kind == LD_OP_PHOTO_COMPLETE) {
		p->id = op->id;
		p->user_id = op->actor_id;
		snprintf(p->status, sizeof(p->status), "processing");
		p->created_ms = get_i64(r, 0, 1);
		p->version = get_i64(r, 0, 2);
		p->reason[0] = '\0';
		p->nversions = 0;
	}
	return LD_STORE_OK;
}

int ld__pg_photo_rows(const PGresult *r, struct ld_store_op *op)
{
	switch (op->kind) {
	case LD_OP_PHOTO_GET:
		return photo_get(r, op);
	case LD_OP_PHOTO_LIST:
		return ld__pg_read_page(r, op, photo_page_row);
	case LD_OP_PHOTO_CREATE:
		if (PQntuples(r) != 1)
			return LD_STORE_ERROR;
		switch (get_i64(r, 0, 0)) {
		case 0:
			return LD_STORE_OK;
		case -1:
			return LD_STORE_NOT_FOUND; /* no such owner */
		case -2:
			return LD_STORE_CONFLICT; /* uploads in flight at the cap */
		default:
			return LD_STORE_ERROR;
		}
	case LD_OP_PHOTO_COMPLETE:
	case LD_OP_PHOTO_DELETE:
		return why_unchanged(r, op);
	default:
		return LD_STORE_ERROR;
	}
}
