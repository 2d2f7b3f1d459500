/*
 * test_pg_array.c - binary array parameters (store/pg_array.h): the exact
 * bytes of an int8[] and a bytea[] with nasty content (quotes, backslashes,
 * braces, commas, NUL, multi-byte UTF-8, empty), a buffer too small failing
 * and staying failed, and a fuzz-style round trip through a real
 * PostgreSQL 15 (pg_env.h): random contents sent as one bytea[] parameter
 * come back element by element, byte for byte, in order.
 */
#include "unit.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "pg_env.h"
#include "store/pg_array.h"

static const char be1[4] = {0, 0, 0, 1};

static void test_int8_array_bytes(void)
{
	char buf[64];
	struct ld_pg_array a;
	static const unsigned char want[] = {
	    0, 0, 0, 1, 0,    0,    0,	  0,	0,    0,    0,	  20,
	    0, 0, 0, 2, 0,    0,    0,	  1,				 /* header */
	    0, 0, 0, 8, 0,    0,    0,	  0,	0,    0,    0x10, 0x92,	 /* 4242 */
	    0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; /* -1 */

	CHECK_INT(ld_pg_array_size(2, 16), sizeof(want));
	ld_pg_array_start(&a, buf, sizeof(buf), LD_PG_OID_INT8);
	ld_pg_array_int8(&a, 4242);
	ld_pg_array_int8(&a, -1);
	CHECK_INT(ld_pg_array_end(&a), 0);
	CHECK_INT(a.len, sizeof(want));
	CHECK_MEM(buf, want, sizeof(want));
}

static void test_bytea_array_keeps_nasty_content_as_is(void)
{
	static const char nasty[] = "a\"b\\c{d},e'f\0g\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 NULL";
	size_t nl = sizeof(nasty) - 1;
	char buf[256];
	struct ld_pg_array a;
	size_t at;

	ld_pg_array_start(&a, buf, sizeof(buf), LD_PG_OID_BYTEA);
	ld_pg_array_bytes(&a, nasty, nl);
	ld_pg_array_bytes(&a, "", 0);
	ld_pg_array_bytes(&a, "{}", 2);
	CHECK_INT(ld_pg_array_end(&a), 0);
	CHECK_INT(a.len, ld_pg_array_size(3, nl + 2));
	CHECK_MEM(buf, be1, 4);				/* one dimension */
	CHECK_MEM(buf + 8, ((char[]){0, 0, 0, 17}), 4); /* bytea */
	CHECK_MEM(buf + 12, ((char[]){0, 0, 0, 3}), 4); /* three elements */
	CHECK_MEM(buf + 16, be1, 4);			/* from 1 */
	CHECK_MEM(buf + 20, ((char[]){0, 0, 0, (char)nl}), 4);
	CHECK_MEM(buf + 24, nasty, nl);
	at = 24 + nl;
	CHECK_MEM(buf + at, ((char[]){0, 0, 0, 0}), 4); /* the empty one */
	CHECK_MEM(buf + at + 4, ((char[]){0, 0, 0, 2}), 4);
	CHECK_MEM(buf + at + 8, "{}", 2);
}

static void test_empty_array_has_no_dimension(void)
{
	char buf[32];
	struct ld_pg_array a;

	ld_pg_array_start(&a, buf, sizeof(buf), LD_PG_OID_INT8);
	CHECK_INT(ld_pg_array_end(&a), 0);
	CHECK_INT(a.len, 12);
	CHECK_MEM(buf, ((char[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20}), 12);
}

static void test_too_small_fails_and_sticks(void)
{
	char buf[40];
	struct ld_pg_array a;

	ld_pg_array_start(&a, buf, ld_pg_array_size(1, 8) - 1, LD_PG_OID_INT8);
	ld_pg_array_int8(&a, 1);
	CHECK(a.failed);
	ld_pg_array_start(&a, buf, sizeof(buf), LD_PG_OID_BYTEA);
	ld_pg_array_bytes(&a, "0123456789012345", 16); /* 20 + 20 fits */
	CHECK(!a.failed);
	ld_pg_array_bytes(&a, "x", 1);
	ld_pg_array_bytes(&a, "", 0); /* would fit, but the failure sticks */
	CHECK(a.failed);
	CHECK_INT(ld_pg_array_end(&a), -ENOSPC);
	ld_pg_array_start(&a, buf, 19, LD_PG_OID_INT8);
	CHECK_INT(ld_pg_array_end(&a), -ENOSPC);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* fill writes random content of up to 1024 bytes, mostly from the bytes an
 * array literal or bytea escape would trip on. */
static size_t fill(char *out)
{
	static const char *const bits[] = {
	    "\"", "\\", "{", "}", ",", "'", " ", "NULL", "\\x", "\xc3\xa9", "\xf0\x9f\x98\x80",
	    "\n", "a"};
	size_t n = 0, want = next_rand() % 1025;

	while (n < want) {
		uint32_t k = next_rand() % 15;

		if (k < 13) {
			size_t l = strlen(bits[k]);

			if (n + l > want)
				break;
			memcpy(out + n, bits[k], l);
			n += l;
		} else {
			out[n++] = (char)(k == 13 ? 0 : next_rand());
		}
	}
	return n;
}

#define ROUNDS 20
#define ELEMS  128

static void test_round_trip_through_postgres(void)
{
	PGconn *db = pg_connect("postgres");
	static char content[ELEMS][1024];
	static size_t len[ELEMS];
	const Oid types[2] = {LD_PG_OID_BYTEAA, LD_PG_OID_INT8A};
	char *bufs[2];
	size_t cap[2];

	CHECK(PQstatus(db) == CONNECTION_OK);
	if (PQstatus(db) != CONNECTION_OK) {
		PQfinish(db);
		return;
	}
	{
		PGresult *r =
		    PQprepare(db, "rt",
			      "SELECT v.ord, v.c, w.i FROM unnest($1::bytea[]) WITH ORDINALITY"
			      " AS v (c, ord) JOIN unnest($2::bigint[]) WITH ORDINALITY AS"
			      " w (i, ord) ON w.ord = v.ord ORDER BY v.ord",
			      2, types);

		CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
		PQclear(r);
	}
	cap[0] = ld_pg_array_size(ELEMS, sizeof(content));
	cap[1] = ld_pg_array_size(ELEMS, 8 * ELEMS);
	bufs[0] = malloc(cap[0]);
	bufs[1] = malloc(cap[1]);
	for (unsigned round = 0; round < ROUNDS && bufs[0] && bufs[1]; round++) {
		struct ld_pg_array a, b;
		unsigned n = 1 + next_rand() % ELEMS, i;
		const char *vals[2];
		int lens[2], fmts[2] = {1, 1};
		PGresult *r;

		ld_pg_array_start(&a, bufs[0], cap[0], LD_PG_OID_BYTEA);
		ld_pg_array_start(&b, bufs[1], cap[1], LD_PG_OID_INT8);
		for (i = 0; i < n; i++) {
			len[i] = fill(content[i]);
			ld_pg_array_bytes(&a, content[i], len[i]);
			ld_pg_array_int8(&b, (int64_t)next_rand() << 31 ^ -(int64_t)i);
		}
		CHECK_INT(ld_pg_array_end(&a), 0);
		CHECK_INT(ld_pg_array_end(&b), 0);
		vals[0] = bufs[0];
		vals[1] = bufs[1];
		lens[0] = (int)a.len;
		lens[1] = (int)b.len;
		r = PQexecPrepared(db, "rt", 2, vals, lens, fmts, 1);
		CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fprintf(stderr, "round trip: %s", PQresultErrorMessage(r));
		CHECK_INT(PQntuples(r), n);
		for (i = 0; i < n && (int)i < PQntuples(r); i++) {
			int64_t want = (int64_t)0, got = 0;

			CHECK_INT(PQgetlength(r, (int)i, 1), len[i]);
			if ((size_t)PQgetlength(r, (int)i, 1) == len[i])
				CHECK_MEM(PQgetvalue(r, (int)i, 1), content[i], len[i]);
			/* The int8 element read back as sent (network order). */
			memcpy(&got, PQgetvalue(r, (int)i, 2), 8);
			memcpy(&want, bufs[1] + 20 + 12 * i + 4, 8);
			CHECK(got == want);
		}
		PQclear(r);
	}
	free(bufs[0]);
	free(bufs[1]);
	PQfinish(db);
}

int main(void)
{
	int rc;

	RUN(test_int8_array_bytes);
	RUN(test_bytea_array_keeps_nasty_content_as_is);
	RUN(test_empty_array_has_no_dimension);
	RUN(test_too_small_fails_and_sticks);
	rc = pg_start();
	if (rc != 0) {
		fprintf(stderr, "cannot start PostgreSQL (%s): %s\n", PG_BIN, strerror(-rc));
		pg_stop();
		return 1;
	}
	RUN(test_round_trip_through_postgres);
	pg_stop();
	return unit_finish();
}
