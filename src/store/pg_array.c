/*
 * pg_array.c - binary array parameters (contract in pg_array.h).
 */
#include "store/pg_array.h"

#include <errno.h>
#include <string.h>

#define HEADER 20u /* ndim, has-nulls, element OID, count, lower bound */

static void put32(char *at, uint32_t v)
{
	at[0] = (char)(v >> 24);
	at[1] = (char)(v >> 16);
	at[2] = (char)(v >> 8);
	at[3] = (char)v;
}

size_t ld_pg_array_size(size_t n, size_t payload)
{
	return HEADER + 4 * n + payload;
}

void ld_pg_array_start(struct ld_pg_array *a, char *buf, size_t cap, uint32_t elem_oid)
{
	a->buf = buf;
	a->cap = cap;
	a->len = 0;
	a->n = 0;
	a->failed = cap < HEADER;
	if (a->failed)
		return;
	put32(buf, 1);
	put32(buf + 4, 0);
	put32(buf + 8, elem_oid);
	put32(buf + 12, 0); /* the count: ld_pg_array_end */
	put32(buf + 16, 1);
	a->len = HEADER;
}

/* room reserves 4 + n bytes for one element, or fails the array. */
static char *room(struct ld_pg_array *a, size_t n)
{
	char *at;

	if (a->failed || n > INT32_MAX || a->n == INT32_MAX || a->cap - a->len < 4 + n) {
		a->failed = true;
		return NULL;
	}
	at = a->buf + a->len;
	put32(at, (uint32_t)n);
	a->len += 4 + n;
	a->n++;
	return at + 4;
}

void ld_pg_array_int8(struct ld_pg_array *a, int64_t v)
{
	char *at = room(a, 8);
	uint64_t u = (uint64_t)v;

	if (!at)
		return;
	put32(at, (uint32_t)(u >> 32));
	put32(at + 4, (uint32_t)u);
}

void ld_pg_array_bytes(struct ld_pg_array *a, const void *p, size_t n)
{
	char *at = room(a, n);

	if (at && n)
		memcpy(at, p, n);
}

int ld_pg_array_end(struct ld_pg_array *a)
{
	if (a->failed)
		return -ENOSPC;
	if (a->n == 0) {
		/* No dimension at all: array_recv's empty array. */
		put32(a->buf, 0);
		a->len = 12;
		return 0;
	}
	put32(a->buf + 12, a->n);
	return 0;
}
