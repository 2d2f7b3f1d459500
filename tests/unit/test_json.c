#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "base/json.h"

/* finish checks the writer's result and returns the document. */
static const char *doc(struct ld_json *j, struct ld_buf *b, int want)
{
	CHECK_INT(ld_json_finish(j), want);
	return b->data ? b->data : "";
}

static void test_nested_document(void)
{
	struct ld_buf b;
	struct ld_json j;

	ld_buf_init(&b, 4096);
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "id");
	ld_json_id(&j, 7312589412937728LL);
	ld_json_key(&j, "handle");
	ld_json_str(&j, "ada");
	ld_json_key(&j, "n");
	ld_json_int(&j, -42);
	ld_json_key(&j, "u");
	ld_json_uint(&j, 18446744073709551615ull);
	ld_json_key(&j, "ok");
	ld_json_bool(&j, true);
	ld_json_key(&j, "no");
	ld_json_bool(&j, false);
	ld_json_key(&j, "nil");
	ld_json_null(&j);
	ld_json_key(&j, "items");
	ld_json_arr_begin(&j);
	ld_json_obj_begin(&j);
	ld_json_obj_end(&j);
	ld_json_arr_begin(&j);
	ld_json_arr_end(&j);
	ld_json_int(&j, 1);
	ld_json_str(&j, "two");
	ld_json_raw(&j, "{\"pre\":[1]}", 11);
	ld_json_arr_end(&j);
	ld_json_key(&j, "at");
	ld_json_time_ms(&j, 1795000000123LL);
	ld_json_key(&j, "x");
	ld_json_double(&j, 0.5);
	ld_json_obj_end(&j);
	CHECK_STR(doc(&j, &b, 0),
		  "{\"id\":\"7312589412937728\",\"handle\":\"ada\",\"n\":-42,"
		  "\"u\":18446744073709551615,\"ok\":true,\"no\":false,\"nil\":null,"
		  "\"items\":[{},[],1,\"two\",{\"pre\":[1]}],"
		  "\"at\":\"2026-11-18T11:06:40.123Z\",\"x\":0.5}");
	ld_buf_release(&b);

	/* Top-level scalars and empty containers are documents too. */
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_arr_end(&j);
	CHECK_STR(doc(&j, &b, 0), "[]");
	ld_buf_release(&b);
	ld_json_init(&j, &b);
	ld_json_str(&j, NULL);
	CHECK_STR(doc(&j, &b, 0), "null");
	ld_buf_release(&b);
}

static void test_escapes(void)
{
	static const char *const want[32] = {
	    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
	    "\\b",     "\\t",	  "\\n",     "\\u000b", "\\f",	   "\\r",     "\\u000e", "\\u000f",
	    "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
	    "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
	};
	struct ld_buf b;
	struct ld_json j;
	char in[3], expect[16];
	int c;

	for (c = 0; c < 32; c++) {
		ld_buf_init(&b, 64);
		ld_json_init(&j, &b);
		in[0] = 'a';
		in[1] = (char)c;
		in[2] = 'z';
		ld_json_strn(&j, in, 3);
		snprintf(expect, sizeof(expect), "\"a%sz\"", want[c]);
		CHECK_STR(doc(&j, &b, 0), expect);
		ld_buf_release(&b);
	}
	/* Every other ASCII byte except '"' and '\\' is copied. */
	for (c = 32; c < 128; c++) {
		ld_buf_init(&b, 64);
		ld_json_init(&j, &b);
		in[0] = (char)c;
		ld_json_strn(&j, in, 1);
		if (c == '"')
			CHECK_STR(doc(&j, &b, 0), "\"\\\"\"");
		else if (c == '\\')
			CHECK_STR(doc(&j, &b, 0), "\"\\\\\"");
		else
			CHECK(b.len == 3 && b.data[1] == c);
		ld_buf_release(&b);
	}
	ld_buf_init(&b, 256);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	/* UTF-8 passes through; U+2028/U+2029 are escaped for JavaScript, and
	 * their neighbours (U+2026, a cut-off sequence) are not touched. */
	ld_json_str(&j, "caf\xc3\xa9 \xe2\x80\xa8|\xe2\x80\xa9|\xe2\x80\xa6|/");
	ld_json_strn(&j, "\xe2\x80", 2);
	ld_json_strn(&j, "k\0v", 3);
	ld_json_arr_end(&j);
	CHECK_STR(doc(&j, &b, 0), "[\"caf\xc3\xa9 \\u2028|\\u2029|\xe2\x80\xa6|/\","
				  "\"\xe2\x80\",\"k\\u0000v\"]");
	ld_buf_release(&b);

	/* Keys are escaped the same way. */
	ld_buf_init(&b, 256);
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "a\"b\n");
	ld_json_int(&j, 1);
	ld_json_obj_end(&j);
	CHECK_STR(doc(&j, &b, 0), "{\"a\\\"b\\n\":1}");
	ld_buf_release(&b);
}

static void test_numbers(void)
{
	static const struct {
		int64_t v;
		const char *s;
	} ints[] = {
	    {0, "0"},
	    {-1, "-1"},
	    {9, "9"},
	    {10, "10"},
	    {INT64_MAX, "9223372036854775807"},
	    {INT64_MIN, "-9223372036854775808"},
	};
	static const struct {
		double v;
		const char *s;
	} dbls[] = {
	    {0.5, "0.5"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {0.1, "0.1"},
	    {-0.0, "-0"},
	    {1e300, "1e+300"},
	    {100, "100"},
	    {1.0 / 3, "0.3333333333333333"},
	    {2.5e-8, "2.5e-08"},
	};
	struct ld_buf b;
	struct ld_json j;
	char want[64], *end;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	double d, back;
	size_t i;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		ld_buf_init(&b, 64);
		ld_json_init(&j, &b);
		ld_json_int(&j, ints[i].v);
		CHECK_STR(doc(&j, &b, 0), ints[i].s);
		ld_buf_release(&b);
	}
	for (i = 0; i < 5000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		ld_buf_init(&b, 64);
		ld_json_init(&j, &b);
		ld_json_arr_begin(&j);
		ld_json_int(&j, (int64_t)(x >> (i % 64)) * (i % 2 ? -1 : 1));
		ld_json_uint(&j, x);
		ld_json_arr_end(&j);
		snprintf(want, sizeof(want), "[%lld,%llu]",
			 (long long)(int64_t)(x >> (i % 64)) * (i % 2 ? -1 : 1),
			 (unsigned long long)x);
		CHECK_STR(doc(&j, &b, 0), want);
		ld_buf_release(&b);

		/* Doubles read back bit for bit. */
		memcpy(&d, &x, sizeof(d));
		if (!isfinite(d))
			continue;
		ld_buf_init(&b, 64);
		ld_json_init(&j, &b);
		ld_json_double(&j, d);
		back = strtod(doc(&j, &b, 0), &end);
		CHECK(*end == '\0');
		CHECK(memcmp(&back, &d, sizeof(d)) == 0);
		ld_buf_release(&b);
	}
	for (i = 0; i < sizeof(dbls) / sizeof(dbls[0]); i++) {
		ld_buf_init(&b, 64);
		ld_json_init(&j, &b);
		ld_json_double(&j, dbls[i].v);
		CHECK_STR(doc(&j, &b, 0), dbls[i].s);
		ld_buf_release(&b);
	}
	/* JSON has no NaN or infinity. */
	ld_buf_init(&b, 64);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_double(&j, NAN);
	ld_json_double(&j, INFINITY);
	ld_json_double(&j, -INFINITY);
	ld_json_arr_end(&j);
	CHECK_STR(doc(&j, &b, 0), "[null,null,null]");
	ld_buf_release(&b);
	/* Ids are strings so JavaScript keeps every digit. */
	ld_buf_init(&b, 64);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_id(&j, 9007199254740993LL);
	ld_json_id(&j, INT64_MAX);
	ld_json_id(&j, -5);
	ld_json_arr_end(&j);
	CHECK_STR(doc(&j, &b, 0), "[\"9007199254740993\",\"9223372036854775807\",\"-5\"]");
	ld_buf_release(&b);
}

/* A misuse is reported as -EINVAL, sticks, and stops output at that point. */
static void test_misuse(void)
{
	struct ld_buf b;
	struct ld_json j;
	int i;

	ld_buf_init(&b, 1024);

	/* Value without a key in an object. */
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_int(&j, 1);
	ld_json_key(&j, "a");
	ld_json_int(&j, 2);
	ld_json_obj_end(&j);
	CHECK_STR(doc(&j, &b, -EINVAL), "{");
	ld_buf_reset(&b);

	/* Key in an array, key at top level, two keys in a row. */
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_key(&j, "a");
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_json_init(&j, &b);
	ld_json_key(&j, "a");
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_buf_reset(&b);
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "a");
	ld_json_key(&j, "b");
	CHECK_STR(doc(&j, &b, -EINVAL), "{\"a\":");
	ld_buf_reset(&b);

	/* Closing with a key waiting, closing the wrong kind, closing too much. */
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "a");
	ld_json_obj_end(&j);
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_json_init(&j, &b);
	ld_json_obj_begin(&j);
	ld_json_arr_end(&j);
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_arr_end(&j);
	ld_json_arr_end(&j);
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_buf_reset(&b);

	/* Unclosed containers, an empty document, two top-level values. */
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_obj_begin(&j);
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_json_init(&j, &b);
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	ld_buf_reset(&b);
	ld_json_init(&j, &b);
	ld_json_int(&j, 1);
	ld_json_int(&j, 2);
	CHECK_STR(doc(&j, &b, -EINVAL), "1");
	ld_buf_reset(&b);

	/* LD_JSON_DEPTH_MAX levels are fine, one more is not. */
	ld_json_init(&j, &b);
	for (i = 0; i < LD_JSON_DEPTH_MAX; i++)
		ld_json_arr_begin(&j);
	for (i = 0; i < LD_JSON_DEPTH_MAX; i++)
		ld_json_arr_end(&j);
	CHECK_INT(ld_json_finish(&j), 0);
	CHECK_INT(b.len, 2 * LD_JSON_DEPTH_MAX);
	ld_buf_reset(&b);
	ld_json_init(&j, &b);
	for (i = 0; i <= LD_JSON_DEPTH_MAX; i++)
		ld_json_obj_begin(&j), ld_json_key(&j, "k");
	ld_json_int(&j, 1);
	for (i = 0; i <= LD_JSON_DEPTH_MAX; i++)
		ld_json_obj_end(&j);
	CHECK_INT(ld_json_finish(&j), -EINVAL);
	CHECK_INT(j.depth, LD_JSON_DEPTH_MAX);
	ld_buf_release(&b);
}

/* The buffer cap surfaces as -E2BIG, and the buffer (whose first failure
 * sticks) holds no part of the document after it. */
static void test_cap(void)
{
	struct ld_buf b;
	struct ld_json j;

	ld_buf_init(&b, 16);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_str(&j, "0123456789");
	CHECK_INT(b.len, 13);
	ld_json_str(&j, "abcdef"); /* needs 9 more bytes: over the cap */
	ld_json_int(&j, 1);	   /* would fit, but the error sticks */
	ld_json_arr_end(&j);
	CHECK_INT(ld_json_finish(&j), -E2BIG);
	CHECK_INT(b.len, 0);
	CHECK(b.data == NULL);
	CHECK_INT(ld_buf_error(&b), -E2BIG);
	ld_buf_release(&b);

	/* A buffer that failed under someone else's append fails the
	 * document too, even though every call of the writer went in. */
	ld_buf_init(&b, 16);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_int(&j, 1);
	ld_json_arr_end(&j);
	CHECK_INT(ld_buf_puts(&b, "0123456789abcdef"), -E2BIG);
	CHECK_INT(ld_json_finish(&j), -E2BIG);
	ld_buf_release(&b);

	/* Exactly at the cap is fine. */
	ld_buf_init(&b, 14);
	ld_json_init(&j, &b);
	ld_json_arr_begin(&j);
	ld_json_str(&j, "0123456789");
	ld_json_arr_end(&j);
	CHECK_STR(doc(&j, &b, 0), "[\"0123456789\"]");
	ld_buf_release(&b);
}

static void test_times(void)
{
	static const struct {
		int64_t ms;
		const char *s;
	} cases[] = {
	    {0, "1970-01-01T00:00:00.000Z"},
	    {-1, "1969-12-31T23:59:59.999Z"},
	    {-86400000, "1969-12-31T00:00:00.000Z"},
	    {1, "1970-01-01T00:00:00.001Z"},
	    {951782400000LL, "2000-02-29T00:00:00.000Z"}, /* 400-year leap day */
	    {951868799999LL, "2000-02-29T23:59:59.999Z"},
	    {951868800000LL, "2000-03-01T00:00:00.000Z"},
	    {1709164800000LL, "2024-02-29T00:00:00.000Z"},
	    {1735689599999LL, "2024-12-31T23:59:59.999Z"},
	    {-2203891200000LL, "1900-03-01T00:00:00.000Z"}, /* 1900 had no Feb 29 */
	    {-2203977600000LL, "1900-02-28T00:00:00.000Z"},
	    {2147483647000LL, "2038-01-19T03:14:07.000Z"},
	    {2147483648000LL, "2038-01-19T03:14:08.000Z"},
	    {4107542400000LL, "2100-03-01T00:00:00.000Z"}, /* 2100 has no Feb 29 */
	    {4107456000000LL, "2100-02-28T00:00:00.000Z"},
	    {13574563200000LL, "2400-02-29T00:00:00.000Z"},
	    {253402300799999LL, "9999-12-31T23:59:59.999Z"},
	    {253402300800000LL, "9999-12-31T23:59:59.999Z"}, /* clamped */
	    {INT64_MAX, "9999-12-31T23:59:59.999Z"},
	    {-62167219200000LL, "0000-01-01T00:00:00.000Z"},
	    {-62167219200001LL, "0000-01-01T00:00:00.000Z"}, /* clamped */
	    {INT64_MIN, "0000-01-01T00:00:00.000Z"},
	    {-62135596800000LL, "0001-01-01T00:00:00.000Z"},
	};
	char out[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 'x', sizeof(out));
		CHECK_INT(ld_time_rfc3339(cases[i].ms, out), 24);
		CHECK_STR(out, cases[i].s);
	}
}

/* The C library's gmtime_r as an independent oracle over a wide range. */
static void test_times_against_gmtime(void)
{
	uint64_t x = 0x2545f4914f6cdd1dull;
	char out[32], want[96];
	struct tm tm;
	int64_t ms;
	time_t t;
	int i, bad = 0;

	for (i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Years 0000 to 9999, plus dense coverage near the epoch. */
		if (i % 2)
			ms = (int64_t)(x % 315537897600000ull) - 62167219200000LL;
		else
			ms = (int64_t)(x % 200000000000ull) - 100000000000LL;
		t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
		gmtime_r(&t, &tm);
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(ms - (int64_t)t * 1000));
		ld_time_rfc3339(ms, out);
		if (strcmp(out, want) != 0 && bad++ < 5)
			fprintf(stderr, "%lld: %s != %s\n", (long long)ms, out, want);
	}
	CHECK_INT(bad, 0);
}

int main(void)
{
	RUN(test_nested_document);
	RUN(test_escapes);
	RUN(test_numbers);
	RUN(test_misuse);
	RUN(test_cap);
	RUN(test_times);
	RUN(test_times_against_gmtime);
	return unit_finish();
}
