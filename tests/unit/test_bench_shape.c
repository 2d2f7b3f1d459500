/*
 * test_bench_shape.c - durations, rates, stage interpolation, the open-loop
 * schedule (constant and Poisson) and the Zipf sampler.
 */
#include <math.h>
#include <stdlib.h>

#include "bench/shape.h"
#include "unit.h"

static void test_durations_and_rates(void)
{
	double v;

	CHECK_INT(ld_parse_duration("10s", &v), 0);
	CHECK_DBL(v, 10, 1e-12);
	CHECK_INT(ld_parse_duration("250ms", &v), 0);
	CHECK_DBL(v, 0.25, 1e-12);
	CHECK_INT(ld_parse_duration("1.5m", &v), 0);
	CHECK_DBL(v, 90, 1e-12);
	CHECK_INT(ld_parse_duration("2h", &v), 0);
	CHECK_DBL(v, 7200, 1e-9);
	CHECK_INT(ld_parse_duration("500us", &v), 0);
	CHECK_DBL(v, 0.0005, 1e-12);
	CHECK_INT(ld_parse_duration("3", &v), 0);
	CHECK_DBL(v, 3, 1e-12);
	CHECK(ld_parse_duration("", &v) < 0);
	CHECK(ld_parse_duration("s", &v) < 0);
	CHECK(ld_parse_duration("10 s", &v) < 0);
	CHECK(ld_parse_duration("-1s", &v) < 0);
	CHECK(ld_parse_duration("1d", &v) < 0);
	CHECK(ld_parse_duration("nan", &v) < 0);
	CHECK_INT(ld_parse_rate("1000", &v), 0);
	CHECK_DBL(v, 1000, 1e-12);
	CHECK_INT(ld_parse_rate("2.5k", &v), 0);
	CHECK_DBL(v, 2500, 1e-9);
	CHECK(ld_parse_rate("fast", &v) < 0);
	CHECK(ld_parse_rate("10/s", &v) < 0);
	CHECK(ld_parse_rate("2e289", &v) < 0);
	CHECK(ld_parse_duration("32E28", &v) < 0);
}

static void test_constant_schedule_exact(void)
{
	struct ld_shape sh;

	ld_shape_constant(&sh, 1000, 10);
	CHECK_DBL(ld_shape_total_s(&sh), 10, 1e-12);
	CHECK_DBL(ld_shape_count_at(&sh, 10), 10000, 1e-6);
	/* Request k is due at exactly k / rate. */
	for (int k = 0; k < 10000; k += 997)
		CHECK_DBL(ld_shape_time_of(&sh, k), k / 1000.0, 1e-9);
	CHECK(ld_shape_time_of(&sh, 10000) < 0); /* past the end */
	CHECK_DBL(ld_shape_rate_at(&sh, 3.3), 1000, 1e-9);
}

static void test_stage_interpolation(void)
{
	struct ld_shape sh;
	char err[128];

	CHECK_INT(ld_shape_parse(&sh, "30s:100,1m:1000,30s:0", 0, err, sizeof(err)), 0);
	CHECK_INT(sh.n, 3);
	CHECK_DBL(ld_shape_total_s(&sh), 120, 1e-9);
	/* Linear between targets, from the start rate. */
	CHECK_DBL(ld_shape_rate_at(&sh, 0), 0, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 15), 50, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 30), 100, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 60), 550, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 105), 500, 1e-9);
	/* Counts are the areas: 1500 + 33000 + 15000. */
	CHECK_DBL(ld_shape_count_at(&sh, 30), 1500, 1e-6);
	CHECK_DBL(ld_shape_count_at(&sh, 90), 34500, 1e-6);
	CHECK_DBL(ld_shape_count_at(&sh, 120), 49500, 1e-6);
	/* time_of inverts count_at everywhere, ramps included. */
	for (double a = 0.5; a < 49500; a += 777.7) {
		double t = ld_shape_time_of(&sh, a);
		CHECK(t >= 0);
		CHECK_DBL(ld_shape_count_at(&sh, t), a, 1e-6 * (a + 1));
	}
	/* Non-decreasing send times through a ramp down to zero. */
	{
		double last = -1;
		for (int k = 0; k < 49500; k++) {
			double t = ld_shape_time_of(&sh, k);
			CHECK(t >= last);
			last = t;
		}
	}
	/* A start rate and a zero-length jump. */
	CHECK_INT(ld_shape_parse(&sh, "0s:200,1s:200", 50, err, sizeof(err)), 0);
	CHECK_DBL(ld_shape_count_at(&sh, 1), 200, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 0.5), 200, 1e-9);
}

static void test_stage_errors(void)
{
	struct ld_shape sh;
	char err[128];

	CHECK(ld_shape_parse(&sh, "", 0, err, sizeof(err)) < 0);
	CHECK(ld_shape_parse(&sh, "10s", 0, err, sizeof(err)) < 0);
	CHECK(strstr(err, "DURATION:RATE") != NULL);
	CHECK(ld_shape_parse(&sh, "10x:5", 0, err, sizeof(err)) < 0);
	CHECK(strstr(err, "duration") != NULL);
	CHECK(ld_shape_parse(&sh, "10s:abc", 0, err, sizeof(err)) < 0);
	CHECK(strstr(err, "rate") != NULL);
	CHECK(ld_shape_parse(&sh, "10s:5,,1s:3", 0, err, sizeof(err)) < 0);
	CHECK(ld_shape_parse(&sh, "0s:5", 0, err, sizeof(err)) < 0);
	CHECK(ld_shape_parse(&sh, "1s:5,", 0, err, sizeof(err)) < 0);
}

static void test_presets(void)
{
	struct ld_shape sh;

	CHECK_INT(ld_shape_preset(&sh, "spike", 100, 100), 0);
	CHECK_DBL(ld_shape_total_s(&sh), 100, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 10), 100, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 50), 1000, 1e-9);
	CHECK_DBL(ld_shape_rate_at(&sh, 90), 100, 1e-9);
	CHECK_INT(ld_shape_preset(&sh, "soak", 300, 3600), 0);
	CHECK_DBL(ld_shape_count_at(&sh, 3600), 300 * 3600.0, 1e-3);
	CHECK(ld_shape_preset(&sh, "wave", 1, 1) < 0);
}

static void test_poisson_gaps(void)
{
	struct ld_rng r;
	double sum = 0, sq = 0;
	int n = 1000000;

	ld_rng_seed(&r, 42);
	for (int i = 0; i < n; i++) {
		double g = ld_rng_exp(&r);
		sum += g;
		sq += g * g;
	}
	/* Exponential(1): mean 1, variance 1 (sd of the mean 0.001). */
	CHECK_DBL(sum / n, 1.0, 0.005);
	CHECK_DBL(sq / n - (sum / n) * (sum / n), 1.0, 0.01);
	/* Same seed, same stream. */
	{
		struct ld_rng a, b;
		ld_rng_seed(&a, 7);
		ld_rng_seed(&b, 7);
		for (int i = 0; i < 100; i++)
			CHECK(ld_rng_next(&a) == ld_rng_next(&b));
	}
}

static void check_zipf(uint64_t n, double s)
{
	struct ld_zipf z;
	struct ld_rng r;
	int draws = 1000000;
	int64_t *cnt = calloc(n + 1, sizeof(int64_t));
	double hn = 0;

	CHECK_INT(ld_zipf_init(&z, n, s), 0);
	ld_rng_seed(&r, 12345);
	for (uint64_t k = 1; k <= n; k++)
		hn += pow((double)k, -s);
	for (int i = 0; i < draws; i++) {
		uint64_t k = ld_zipf_next(&z, &r);
		if (k >= 1 && k <= n) /* ld_zipf_next clamps; the guard keeps cnt safe */
			cnt[k]++;
	}
	/* The first ranks hold most of the mass: each within 4 sd of theory. */
	for (uint64_t k = 1; k <= 20 && k <= n; k++) {
		double p = pow((double)k, -s) / hn, want = p * draws;
		double sd = sqrt(draws * p * (1 - p));
		if (fabs((double)cnt[k] - want) > 4 * sd + 1)
			fprintf(stderr, "n=%llu s=%g rank %llu: %lld vs %.1f\n",
				(unsigned long long)n, s, (unsigned long long)k, (long long)cnt[k],
				want);
		CHECK(fabs((double)cnt[k] - want) <= 4 * sd + 1);
	}
	free(cnt);
}

static void test_zipf_frequencies(void)
{
	check_zipf(1000, 1.0);
	check_zipf(100, 0.0); /* uniform */
	check_zipf(50000, 1.2);
	check_zipf(10, 0.5);
	check_zipf(1, 1.0);
	{
		struct ld_zipf z;
		CHECK(ld_zipf_init(&z, 0, 1) < 0);
		CHECK(ld_zipf_init(&z, 10, -1) < 0);
		CHECK(ld_zipf_init(&z, 10, NAN) < 0);
	}
}

int main(void)
{
	RUN(test_durations_and_rates);
	RUN(test_constant_schedule_exact);
	RUN(test_stage_interpolation);
	RUN(test_stage_errors);
	RUN(test_presets);
	RUN(test_poisson_gaps);
	RUN(test_zipf_frequencies);
	return unit_finish();
}
