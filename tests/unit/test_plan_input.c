/*
 * test_plan_input.c - the planner's parsers and validation: numbers with
 * suffixes, the assumptions file (errors name FILE:LINE and the field), the
 * `ladder bench` report reader and measured points.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "plan/assume.h"
#include "plan/bench_report.h"
#include "plan/num.h"
#include "plan/points.h"
#include "unit.h"

static double num(const char *s, enum ld_num_kind k)
{
	double v = NAN;
	char err[128];

	if (ld_num_parse(s, k, &v, err, sizeof(err)))
		return NAN;
	return v;
}

static void test_num_suffixes(void)
{
	CHECK_DBL(num("10M", LD_NUM_COUNT), 10e6, 0);
	CHECK_DBL(num("1B", LD_NUM_COUNT), 1e9, 0);
	CHECK_DBL(num("1G", LD_NUM_COUNT), 1e9, 0);
	CHECK_DBL(num("2.5e6", LD_NUM_COUNT), 2.5e6, 0);
	CHECK_DBL(num(" 1.5k ", LD_NUM_COUNT), 1500, 0);
	CHECK_DBL(num("1KB", LD_NUM_BYTES), 1000, 0);
	CHECK_DBL(num("1kb", LD_NUM_BYTES), 1000, 0);
	CHECK_DBL(num("1KiB", LD_NUM_BYTES), 1024, 0);
	CHECK_DBL(num("5 MB", LD_NUM_BYTES), 5e6, 0);
	CHECK_DBL(num("1TiB", LD_NUM_BYTES), 1099511627776.0, 0);
	CHECK_DBL(num("512", LD_NUM_BYTES), 512, 0);
	CHECK_DBL(num("50ms", LD_NUM_DURATION), 0.05, 1e-15);
	CHECK_DBL(num("5m", LD_NUM_DURATION), 300, 0);
	CHECK_DBL(num("250us", LD_NUM_DURATION), 250e-6, 1e-18);
	CHECK_DBL(num("1d", LD_NUM_DURATION), 86400, 0);
	CHECK_DBL(num("2", LD_NUM_DURATION), 2, 0);
	CHECK_DBL(num("20%", LD_NUM_FRACTION), 0.2, 1e-15);
	CHECK_DBL(num("0.2", LD_NUM_FRACTION), 0.2, 0);
	CHECK_DBL(num("-5%", LD_NUM_FRACTION), -0.05, 1e-15);
	CHECK_DBL(num("3x", LD_NUM_FACTOR), 3, 0);
	CHECK_DBL(num("$0.02", LD_NUM_MONEY), 0.02, 0);
}

static void test_num_rates(void)
{
	struct ld_rate r;
	char err[128];

	CHECK_INT(ld_num_parse("1B/month", LD_NUM_RATE, &r, err, sizeof(err)), 0);
	CHECK_DBL(ld_rate_per_s(&r, 2.5e6), 400, 1e-12);
	CHECK_INT(ld_num_parse("1B", LD_NUM_RATE, &r, err, sizeof(err)), 0);
	CHECK_DBL(r.per_s, 0, 0);
	CHECK_DBL(ld_rate_per_s(&r, 2.5e6), 400, 1e-12);
	CHECK_INT(ld_num_parse("50M/day", LD_NUM_RATE, &r, err, sizeof(err)), 0);
	CHECK_DBL(ld_rate_per_s(&r, 2.5e6), 50e6 / 86400, 1e-9);
	CHECK_INT(ld_num_parse("400/s", LD_NUM_RATE, &r, err, sizeof(err)), 0);
	CHECK_DBL(ld_rate_per_s(&r, 2.5e6), 400, 0);
	CHECK_INT(ld_num_parse("30K / min", LD_NUM_RATE, &r, err, sizeof(err)), 0);
	CHECK_DBL(ld_rate_per_s(&r, 2.5e6), 500, 0);
	/* Trailing blanks after the number or the slash (found by fuzzing). */
	CHECK_INT(ld_num_parse("5 ", LD_NUM_RATE, &r, err, sizeof(err)), 0);
	CHECK_DBL(r.n, 5, 0);
	CHECK_INT(ld_num_parse("5/ ", LD_NUM_RATE, &r, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_num_parse("5 \t ", LD_NUM_COUNT, &r.n, err, sizeof(err)), 0);
	CHECK_INT(ld_num_parse("1B/fortnight", LD_NUM_RATE, &r, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "rate") != NULL);
}

static void test_num_rejects(void)
{
	static const char *const bad[] = {"",	   "abc", "1..2", "0x10", "inf", "nan",
					  "1e999", "10Q", "M",	  "--1",  "1 2", "1e"};
	double v;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = ld_num_parse(bad[i], LD_NUM_COUNT, &v, err, sizeof(err));

		if (!strcmp(bad[i], "1e")) {
			/* "1e" is 1 followed by a stray 'e': not a suffix. */
			CHECK_INT(rc, -EINVAL);
			continue;
		}
		CHECK_INT(rc, -EINVAL);
		CHECK(strstr(err, "expected") != NULL);
	}
	CHECK_INT(ld_num_parse("1KB", LD_NUM_COUNT, &v, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_num_parse("20", LD_NUM_FRACTION, &v, err, sizeof(err)), 0); /* bounds later */
	CHECK_INT(ld_num_parse("5MB", LD_NUM_DURATION, &v, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_num_parse(NULL, LD_NUM_COUNT, &v, err, sizeof(err)), -EINVAL);
}

static void test_num_format(void)
{
	char b[32];

	CHECK_STR(ld_num_fmt_si(400, b, sizeof(b)), "400");
	CHECK_STR(ld_num_fmt_si(40000, b, sizeof(b)), "40.0K");
	CHECK_STR(ld_num_fmt_si(231481, b, sizeof(b)), "231K");
	CHECK_STR(ld_num_fmt_bytes(36e12, b, sizeof(b)), "36.0 TB");
	CHECK_STR(ld_num_fmt_bytes(1e12, b, sizeof(b)), "1.00 TB");
	CHECK_STR(ld_num_fmt_bytes(999.9e9, b, sizeof(b)), "1.00 TB");
	CHECK_STR(ld_num_fmt_duration(0.05, b, sizeof(b)), "50.0 ms");
}

static int parse(struct ld_assume *a, const char *text, char *err, size_t errlen)
{
	ld_assume_defaults(a);
	return ld_assume_parse(a, "t.ini", text, strlen(text), err, errlen);
}

static void test_assumptions_file(void)
{
	struct ld_assume a;
	char err[256] = "";

	CHECK_INT(parse(&a,
			"# a comment\n"
			"[workload]\n"
			"users = 20M   # trailing comment\n"
			"writes = 50M/day\r\n"
			"  write_bytes=2KiB\n"
			"growth = 5%\n"
			"\n"
			"[prices]\n"
			"price_app_node = $99 ; other comment style\n"
			"request-time = 3ms\n",
			err, sizeof(err)),
		  0);
	CHECK_DBL(a.users, 20e6, 0);
	CHECK_DBL(ld_rate_per_s(&a.writes, a.seconds_per_month), 50e6 / 86400, 1e-9);
	CHECK_DBL(a.write_bytes, 2048, 0);
	CHECK_DBL(a.growth, 0.05, 1e-15);
	CHECK_DBL(a.price_app_node, 99, 0);
	CHECK_DBL(a.request_time, 0.003, 1e-15);
	CHECK_INT(ld_assume_validate(&a, err, sizeof(err)), 0);
}

static void test_assumptions_errors_name_line_and_field(void)
{
	static const struct {
		const char *text, *want1, *want2;
	} cases[] = {
	    {"users = 10M\nusers = -5\n", "t.ini:2:", "users"},
	    {"users = -5\n", "t.ini:1:", "negative"},
	    {"\n\nreads = lots\n", "t.ini:3:", "reads"},
	    {"target_utilisation = 1.5\n", "target_utilisation", "absurd"},
	    {"target_utilisation = 150%\n", "target_utilisation", "absurd"},
	    {"users =\n", "t.ini:1:", "users: missing"},
	    {"bogus = 3\n", "t.ini:1:", "bogus: unknown"},
	    {"users 10M\n", "t.ini:1:", "key = value"},
	    {"[nowhere]\n", "t.ini:1:", "unknown section"},
	    {"users = 1M\nusers = 2M\n", "t.ini:2:", "set twice"},
	    {"months = 2.5\n", "months", "whole number"},
	    {"months = 0\n", "months", "below the minimum"},
	    {"users = 1e20\n", "users", "absurd"},
	    {"= 5\n", "t.ini:1:", "missing key"},
	};
	struct ld_assume a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CHECK(parse(&a, cases[i].text, err, sizeof(err)) < 0);
		if (!strstr(err, cases[i].want1) || !strstr(err, cases[i].want2))
			fprintf(stderr, "case %zu: err \"%s\"\n", i, err);
		CHECK(strstr(err, cases[i].want1) != NULL);
		CHECK(strstr(err, cases[i].want2) != NULL);
	}
}

static void test_assumptions_limits(void)
{
	struct ld_assume a;
	char big[LD_ASSUME_LINE_MAX + 20], err[256];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ld_assume_defaults(&a);
	CHECK_INT(ld_assume_parse(&a, "t.ini", big, strlen(big), err, sizeof(err)), -E2BIG);
	CHECK(strstr(err, "t.ini:1:") != NULL);
	CHECK_INT(ld_assume_parse(&a, "t.ini", "users = 1\0M\n", 12, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_assume_load(&a, "/nonexistent/plan.ini", err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/nonexistent/plan.ini") != NULL);
}

static void test_validate_combinations(void)
{
	struct ld_assume a;
	char err[256];

	ld_assume_defaults(&a);
	CHECK_INT(ld_assume_validate(&a, err, sizeof(err)), 0);
	/* Zero users cannot read. */
	CHECK_INT(ld_assume_set(&a, "users", "0", err, sizeof(err)), 0);
	CHECK_INT(ld_assume_validate(&a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "users") != NULL);
	ld_assume_defaults(&a);
	CHECK_INT(ld_assume_set(&a, "slo_latency", "100us", err, sizeof(err)), 0);
	CHECK_INT(ld_assume_validate(&a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "slo_latency") != NULL);
	/* A per-month rate turns absurd once the month is known. */
	ld_assume_defaults(&a);
	a.writes.n = 1e20;
	CHECK_INT(ld_assume_validate(&a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "writes") != NULL);
	/* Direct sets are bounded too. */
	CHECK_INT(ld_assume_set(&a, "peak_ratio", "0.5", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "peak_ratio") != NULL);
	CHECK_INT(ld_assume_set(&a, "redundancy", "3", err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_assume_set(&a, "nope", "3", err, sizeof(err)), -ENOENT);
	CHECK(ld_assume_find("node-read-capacity") == ld_assume_find("node_read_capacity"));
}

static int bench(const char *json, struct ld_bench_report *r, char *err, size_t errlen)
{
	return ld_bench_report_parse("r.json", json, strlen(json), r, err, errlen);
}

static void test_bench_report(void)
{
	struct ld_bench_report r;
	struct ld_assume a;
	char err[256];

	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"config\":{\"connections\":64,\"rate\":"
			"\"max\",\"mode\":\"closed\",\"duration_s\":30},\"machine\":{\"cores\":8},"
			"\"results\":{\"requests\":900000,\"achieved_rps\":30000,\"errors\":0,"
			"\"error_rate\":0,\"latency_us\":{\"mean\":2100,\"p99\":9000}},"
			"\"mix\":{\"read\":{\"requests\":1,\"achieved_rps\":27000},"
			"\"write\":{\"achieved_rps\":3000}},"
			"\"breakpoint\":{\"max_rate_held\":36000,\"steps\":[]}}",
			&r, err, sizeof(err)),
		  0);
	CHECK_DBL(r.connections, 64, 0);
	CHECK(r.rate_max && !r.open_loop);
	CHECK_DBL(r.cores, 8, 0);
	CHECK_DBL(r.achieved_rps, 30000, 0);
	CHECK_DBL(r.latency_p99_us, 9000, 0);
	CHECK(r.has_read && r.has_write && r.has_breakpoint);
	ld_assume_defaults(&a);
	ld_bench_report_apply(&r, "r.json", &a);
	/* 36000 held, split 9:1 as measured. */
	CHECK_DBL(a.node_read_capacity, 32400, 1e-9);
	CHECK_DBL(a.node_write_capacity, 3600, 1e-9);
	CHECK(a.capacity_mixed);
	CHECK(strstr(a.capacity_source, "r.json") != NULL);

	/* Minimal: only what is required. */
	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1234.5}}", &r,
			err, sizeof(err)),
		  0);
	CHECK(!r.has_connections && !r.has_breakpoint && !r.has_read);
	ld_assume_defaults(&a);
	ld_bench_report_apply(&r, "r.json", &a);
	CHECK_DBL(a.node_read_capacity, 1234.5, 0);
	CHECK(!a.capacity_mixed);
	/* A breakpoint where nothing held is no capacity figure. */
	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":10},"
			"\"breakpoint\":{\"max_rate_held\":null}}",
			&r, err, sizeof(err)),
		  0);
	CHECK(!r.has_breakpoint);
}

/* A report's measured cache hit ratio replaces the assumed one and says
 * where it came from; a report without one leaves it alone. */
static void test_bench_report_cache(void)
{
	struct ld_bench_report r;
	struct ld_assume a;
	char err[256];

	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":100},"
			"\"cache\":{\"source\":\"x\",\"hit_ratio\":0.75,\"lookups\":16000,"
			"\"l1\":{\"hits\":13000,\"misses\":3000,\"coalesced_waits\":0}}}",
			&r, err, sizeof(err)),
		  0);
	CHECK(r.has_cache_hit_ratio);
	CHECK_DBL(r.cache_hit_ratio, 0.75, 0);
	CHECK_DBL(r.cache_lookups, 16000, 0);
	ld_assume_defaults(&a);
	CHECK_DBL(a.cache_hit_ratio, 0.9, 0);
	CHECK(strstr(a.cache_source, "assumed") != NULL);
	ld_bench_report_apply(&r, "r.json", &a);
	CHECK_DBL(a.cache_hit_ratio, 0.75, 0);
	CHECK_STR(a.cache_source, "r.json: measured 75.0% of 16000 look-ups (the server's cache "
				  "counters over the run)");

	/* Every read a hit: kept just under 1, the field's bound. */
	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":100},"
			"\"cache\":{\"hit_ratio\":1,\"lookups\":5}}",
			&r, err, sizeof(err)),
		  0);
	ld_assume_defaults(&a);
	ld_bench_report_apply(&r, "r.json", &a);
	CHECK_DBL(a.cache_hit_ratio, 0.9999, 0);

	/* No look-up in the run (null), or no cache object: the input stays. */
	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":100},"
			"\"cache\":{\"hit_ratio\":null,\"lookups\":0}}",
			&r, err, sizeof(err)),
		  0);
	CHECK(!r.has_cache_hit_ratio);
	ld_assume_defaults(&a);
	a.cache_hit_ratio = 0.5;
	ld_bench_report_apply(&r, "r.json", &a);
	CHECK_DBL(a.cache_hit_ratio, 0.5, 0);
	CHECK(strstr(a.cache_source, "assumed") != NULL);
	CHECK_INT(bench("{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":100}}", &r,
			err, sizeof(err)),
		  0);
	CHECK(!r.has_cache_hit_ratio);

	/* An input given after the report wins, and the source says so. */
	CHECK_INT(ld_assume_set(&a, "cache_hit_ratio", "70%", err, sizeof(err)), 0);
	CHECK_DBL(a.cache_hit_ratio, 0.7, 1e-12);
	CHECK_STR(a.cache_source, "given as an input");
}

static void test_bench_report_errors(void)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	    {"[]", "top"},
	    {"{}", "schema"},
	    {"{\"schema\":\"ladder-bench/2\",\"results\":{\"achieved_rps\":1}}", "schema"},
	    {"{\"schema\":\"ladder-bench/1\"}", "results"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{}}", "results.achieved_rps"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":\"fast\"}}",
	     "results.achieved_rps: expected a number"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":-1}}",
	     "results.achieved_rps"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":[]}", "results: expected an object"},
	    {"{\"schema\":\"ladder-bench/1\",\"config\":{\"connections\":1.5},\"results\":{"
	     "\"achieved_rps\":1}}",
	     "config.connections"},
	    {"{\"schema\":\"ladder-bench/1\",\"config\":{\"rate\":\"slow\"},\"results\":{"
	     "\"achieved_rps\":1}}",
	     "config.rate"},
	    {"{\"schema\":\"ladder-bench/1\",\"config\":{\"mode\":3},\"results\":{"
	     "\"achieved_rps\":1}}",
	     "config.mode"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1},\"mix\":{\"read\":"
	     "{}}}",
	     "mix.read.achieved_rps"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1,\"latency_us\":{"
	     "\"p99\":true}}}",
	     "results.latency_us.p99"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1},\"breakpoint\":{"
	     "\"max_rate_held\":\"x\"}}",
	     "breakpoint.max_rate_held"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1},\"cache\":{"
	     "\"hit_ratio\":1.5}}",
	     "cache.hit_ratio: 1.5 is not a fraction"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1},\"cache\":{"
	     "\"hit_ratio\":\"high\"}}",
	     "cache.hit_ratio: expected a number"},
	    {"{\"schema\":\"ladder-bench/1\",\"results\":{\"achieved_rps\":1},\"cache\":3}",
	     "cache: expected an object"},
	    {"{\"schema\":\"ladder-bench/1\",\"schema\":\"ladder-bench/1\"}", "invalid JSON"},
	    {"{\"schema\":", "invalid JSON"},
	};
	struct ld_bench_report r;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CHECK(bench(cases[i].json, &r, err, sizeof(err)) < 0);
		if (!strstr(err, cases[i].want) || strncmp(err, "r.json", 6))
			fprintf(stderr, "case %zu: err \"%s\"\n", i, err);
		CHECK(strncmp(err, "r.json", 6) == 0);
		CHECK(strstr(err, cases[i].want) != NULL);
	}
}

static void test_points(void)
{
	struct ld_points p;
	double n, x;
	char err[256];
	const char *csv =
	    "concurrency,throughput\n# comment\n1,65\n18 996\n36\t1652\n\n72,1.853K\r\n";

	ld_points_init(&p);
	CHECK_INT(ld_points_parse(&p, "p.csv", csv, strlen(csv), err, sizeof(err)), 0);
	CHECK_INT(p.count, 4);
	if (p.count == 4) {
		CHECK_DBL(p.n[1], 18, 0);
		CHECK_DBL(p.x[1], 996, 0);
		CHECK_DBL(p.x[3], 1853, 0);
	}
	CHECK_INT(ld_points_parse(&p, "p.csv", "1,2\nfoo,3\n", 10, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "p.csv:2:") != NULL && strstr(err, "concurrency") != NULL);
	CHECK_INT(ld_points_parse(&p, "p.csv", "5\n", 2, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "p.csv:1:") != NULL);
	CHECK_INT(ld_points_parse_one("4,x", &n, &x, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "throughput") != NULL);
	CHECK_INT(ld_points_parse_one("4, 9", &n, &x, err, sizeof(err)), 0);
	CHECK_DBL(x, 9, 0);
	ld_points_release(&p);
}

int main(void)
{
	RUN(test_num_suffixes);
	RUN(test_num_rates);
	RUN(test_num_rejects);
	RUN(test_num_format);
	RUN(test_assumptions_file);
	RUN(test_assumptions_errors_name_line_and_field);
	RUN(test_assumptions_limits);
	RUN(test_validate_combinations);
	RUN(test_bench_report);
	RUN(test_bench_report_cache);
	RUN(test_bench_report_errors);
	RUN(test_points);
	return unit_finish();
}
