#include "unit.h"

#include <errno.h>
#include <stdint.h>

#include "api/params.h"
#include "http/negotiate.h"
#include "obs/trace.h"

#define S(x) x, strlen(x)

static void test_etag_lists(void)
{
	CHECK(ld_etag_list_has(S("\"5.2\""), "\"5.2\"", true));
	CHECK(ld_etag_list_has(S("\"1.1\", \"5.2\""), "\"5.2\"", true));
	CHECK(ld_etag_list_has(S("W/\"5.2\""), "\"5.2\"", true));
	CHECK(!ld_etag_list_has(S("W/\"5.2\""), "\"5.2\"", false)); /* strong comparison */
	CHECK(ld_etag_list_has(S("*"), "\"5.2\"", false));
	CHECK(!ld_etag_list_has(S("\"5.3\""), "\"5.2\"", true));
	CHECK(!ld_etag_list_has(S("\"5.2"), "\"5.2\"", true)); /* unterminated */
	CHECK(!ld_etag_list_has(S(""), "\"5.2\"", true));
	/* A comma inside a quoted tag does not split it. */
	CHECK(!ld_etag_list_has(S("\"a,\"5.2\""), "\"5.2\"", true));
}

static void test_if_match_version(void)
{
	CHECK_INT(ld_if_match_version(S("\"77.3\""), 77), 3);
	CHECK_INT(ld_if_match_version(S("*"), 77), 0);
	CHECK_INT(ld_if_match_version(S("\"76.3\""), 77), -1); /* another item's tag */
	CHECK_INT(ld_if_match_version(S("\"76.3\", \"77.9\""), 77), 9);
	CHECK_INT(ld_if_match_version(S("W/\"77.3\""), 77), -1); /* weak never matches */
	CHECK_INT(ld_if_match_version(S("\"77.0\""), 77), -1);
	CHECK_INT(ld_if_match_version(S("\"77.3"), 77), -1);
	CHECK_INT(ld_if_match_version(S("\"77.99999999999999999999\""), 77), -1);
	CHECK_INT(ld_if_match_version(S("garbage"), 77), -1);
}

static void test_cursor_roundtrip(void)
{
	char buf[16];
	int64_t id = 0;

	ld_cursor_encode(7312589412937728LL, buf, sizeof(buf));
	CHECK_INT(strlen(buf), 11);
	CHECK_INT(ld_cursor_decode(buf, strlen(buf), &id), 0);
	CHECK_INT(id, 7312589412937728LL);
	ld_cursor_encode(INT64_MAX, buf, sizeof(buf));
	CHECK_INT(ld_cursor_decode(buf, strlen(buf), &id), 0);
	CHECK_INT(id, INT64_MAX);
	CHECK_INT(ld_cursor_decode(S("AAAAAAAAAAA"), &id), -EINVAL); /* zero */
	CHECK_INT(ld_cursor_decode(S("__________8"), &id), -EINVAL); /* negative */
	CHECK_INT(ld_cursor_decode(S("abc"), &id), -EINVAL);	     /* too short */
	CHECK_INT(ld_cursor_decode(S("AAAAAAAAAA%"), &id), -EINVAL);
	CHECK_INT(ld_cursor_decode(S(""), &id), -EINVAL);
}

static void test_query_param(void)
{
	const char *v;
	size_t n;

	CHECK(ld_query_param(S("limit=5&cursor=abc"), "cursor", &v, &n));
	CHECK_INT(n, 3);
	CHECK_MEM(v, "abc", 3);
	CHECK(ld_query_param(S("limit=5&cursor=abc"), "limit", &v, &n));
	CHECK_INT(n, 1);
	CHECK(!ld_query_param(S("limits=5"), "limit", &v, &n));
	CHECK(ld_query_param(S("limit"), "limit", &v, &n));
	CHECK_INT(n, 0);
	CHECK(!ld_query_param(NULL, 0, "limit", &v, &n));
	CHECK(ld_query_param(S("a=1&&limit=2"), "limit", &v, &n));
	CHECK_MEM(v, "2", 1);
}

static void test_accept_encoding(void)
{
	CHECK(ld_accepts_gzip(S("gzip")));
	CHECK(ld_accepts_gzip(S("deflate, gzip;q=0.5")));
	CHECK(ld_accepts_gzip(S("GZIP")));
	CHECK(ld_accepts_gzip(S("*")));
	CHECK(!ld_accepts_gzip(S("gzip;q=0")));
	CHECK(!ld_accepts_gzip(S("gzip; q=0.000")));
	CHECK(ld_accepts_gzip(S("gzip;q=0.001")));
	CHECK(!ld_accepts_gzip(S("identity")));
	CHECK(!ld_accepts_gzip(S("gzipx, br")));
	CHECK(!ld_accepts_gzip(S("")));
}

static void test_traceparent(void)
{
	char tid[33], flags[3];

	CHECK_INT(ld_traceparent_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
				       tid, flags),
		  0);
	CHECK_STR(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
	CHECK_STR(flags, "01");
	/* All-zero ids, upper-case hex, version ff, bad separators. */
	CHECK(ld_traceparent_parse(S("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
				   tid, flags) != 0);
	CHECK(ld_traceparent_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
				   tid, flags) != 0);
	CHECK(ld_traceparent_parse(S("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
				   tid, flags) != 0);
	CHECK(ld_traceparent_parse(S("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
				   tid, flags) != 0);
	CHECK(ld_traceparent_parse(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"),
				   tid, flags) != 0);
	/* A future version may append fields. */
	CHECK_INT(
	    ld_traceparent_parse(S("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
				 tid, flags),
	    0);
	CHECK(ld_traceparent_parse(S("00-4bf9"), tid, flags) != 0);
}

static void test_request_id(void)
{
	CHECK(ld_request_id_ok(S("abc-123_x.y:z")));
	CHECK(!ld_request_id_ok(S("")));
	CHECK(!ld_request_id_ok(S("a b")));
	CHECK(!ld_request_id_ok(S("a\"b")));
	CHECK(!ld_request_id_ok(S("a\r\nX-Evil: 1")));
	char long_id[130];
	memset(long_id, 'a', 129);
	long_id[129] = '\0';
	CHECK(!ld_request_id_ok(long_id, 129));
	CHECK(ld_request_id_ok(long_id, 128));
}

int main(void)
{
	RUN(test_etag_lists);
	RUN(test_if_match_version);
	RUN(test_cursor_roundtrip);
	RUN(test_query_param);
	RUN(test_accept_encoding);
	RUN(test_traceparent);
	RUN(test_request_id);
	return unit_finish();
}
