/*
 * pg_int.h - what the PostgreSQL driver's files share (postgres.c, the
 * connections and users and items; pg_photos.c, the photo ops): binary
 * parameters and result columns, and the photo ops' entry points.
 */
#ifndef LD_PG_INT_H
#define LD_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store/postgres.h"

static inline uint64_t be64(int64_t v)
{
	uint64_t u = (uint64_t)v;

	return ((u & 0xffULL) << 56) | ((u & 0xff00ULL) << 40) | ((u & 0xff0000ULL) << 24) |
	       ((u & 0xff000000ULL) << 8) | ((u >> 8) & 0xff000000ULL) | ((u >> 24) & 0xff0000ULL) |
	       ((u >> 40) & 0xff00ULL) | (u >> 56);
}

/* get_i64 reads an int8 or int4 column (binary, network order); 0 for NULL. */
static inline int64_t get_i64(const PGresult *r, int row, int col)
{
	uint64_t v;
	uint32_t w;

	if (PQgetisnull(r, row, col))
		return 0;
	if (PQgetlength(r, row, col) == 4) {
		memcpy(&w, PQgetvalue(r, row, col), 4);
		return (int32_t)__builtin_bswap32(w);
	}
	if (PQgetlength(r, row, col) != 8)
		return 0;
	memcpy(&v, PQgetvalue(r, row, col), 8);
	return (int64_t)be64((int64_t)v);
}

static inline size_t get_bytes(const PGresult *r, int row, int col, char *dst, size_t cap)
{
	size_t n = (size_t)PQgetlength(r, row, col);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, PQgetvalue(r, row, col), n);
	dst[n] = '\0';
	return n;
}

static inline bool get_bool(const PGresult *r, int row, int col)
{
	return PQgetlength(r, row, col) == 1 && PQgetvalue(r, row, col)[0] != 0;
}

/* Bound values of one statement: binary, int8 in network order. */
struct params {
	const char *v[LD_PG_PARAMS_MAX];
	int len[LD_PG_PARAMS_MAX];
	int fmt[LD_PG_PARAMS_MAX];
	uint64_t ints[LD_PG_PARAMS_MAX];
	unsigned n;
};

static inline void p_int(struct params *p, int64_t v)
{
	p->ints[p->n] = be64(v);
	p->v[p->n] = (const char *)&p->ints[p->n];
	p->len[p->n] = 8;
	p->fmt[p->n] = 1;
	p->n++;
}

static inline void p_bytes(struct params *p, const char *s, size_t n)
{
	p->v[p->n] = s;
	p->len[p->n] = (int)n;
	p->fmt[p->n] = 1;
	p->n++;
}

static inline void p_text(struct params *p, const char *s, size_t max)
{
	p_bytes(p, s, strnlen(s, max));
}

/* ld__pg_row_fn stores row i of r into slot slot of op's page (items or
 * photos). */
typedef void (*ld__pg_row_fn)(const PGresult *r, int i, struct ld_store_op *op, unsigned slot);

/* ld__pg_read_page reads a list statement's answer into op's page with row:
 * no row at all means the owner does not exist (LD_STORE_NOT_FOUND); a row
 * whose first column is NULL is the owner's row of an empty page; one row
 * beyond op->limit sets has_more. Shared by the item and photo lists. */
int ld__pg_read_page(const PGresult *r, struct ld_store_op *op, ld__pg_row_fn row);

/* ---- pg_photos.c ---- */

/* ld__pg_photo_kind: op is one of the LD_OP_PHOTO_* kinds. */
bool ld__pg_photo_kind(enum ld_store_op_kind kind);

/* ld__pg_photo_bind fills p for a photo op and returns its statement, or -1
 * for an op that cannot be sent (a bad list limit). now is Unix ms; id the
 * new photo's id (PHOTO_CREATE only). */
int ld__pg_photo_bind(struct ld_store_op *op, int64_t now, int64_t id, struct params *p);

/* ld__pg_photo_rows turns a photo statement's tuples into the op's outputs
 * and status. */
int ld__pg_photo_rows(const PGresult *r, struct ld_store_op *op);

#endif
