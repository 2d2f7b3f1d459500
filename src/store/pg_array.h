/*
 * pg_array.h - one-dimensional array parameters in PostgreSQL's binary
 * format (what array_recv reads), for the statements that take a column of
 * values as one parameter (a write batch's items, pg_schema.c).
 *
 * Binary, not the text literal format: an element is its length and its
 * bytes, so content with quotes, backslashes, braces, commas, NUL or any
 * UTF-8 needs no quoting or escaping at all, and bytea needs no hex.
 *
 * Layout (network order): int32 ndim (1), int32 has-nulls (0), uint32 the
 * element type's OID, int32 the element count, int32 the lower bound (1),
 * then per element int32 its length and its bytes. No element is NULL. An
 * empty array is ndim 0 and no dimension (12 bytes).
 *
 * The buffer is the caller's, of a capacity it sized with ld_pg_array_size;
 * the first element that does not fit marks the array failed (it sticks),
 * and ld_pg_array_end says so.
 */
#ifndef LD_PG_ARRAY_H
#define LD_PG_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LD_PG_OID_INT8	 20u
#define LD_PG_OID_BYTEA	 17u
#define LD_PG_OID_INT8A	 1016u /* bigint[] */
#define LD_PG_OID_BYTEAA 1001u /* bytea[] */

struct ld_pg_array {
	char *buf;
	size_t cap, len;
	uint32_t n;  /* elements so far */
	bool failed; /* an element did not fit: sticks */
};

/* ld_pg_array_size: the bytes of an array of n elements whose values take
 * payload bytes in all (8 each for int8). */
size_t ld_pg_array_size(size_t n, size_t payload);

/* ld_pg_array_start begins an array of elem_oid elements in buf (cap
 * bytes): its header, the count filled in by ld_pg_array_end. */
void ld_pg_array_start(struct ld_pg_array *a, char *buf, size_t cap, uint32_t elem_oid);

/* ld_pg_array_int8 / ld_pg_array_bytes append one element. */
void ld_pg_array_int8(struct ld_pg_array *a, int64_t v);
void ld_pg_array_bytes(struct ld_pg_array *a, const void *p, size_t n);

/* ld_pg_array_end fills in the element count: 0, or -ENOSPC when something
 * did not fit (the buffer then holds no usable array). a->len is the
 * parameter's length. */
int ld_pg_array_end(struct ld_pg_array *a);

#endif
