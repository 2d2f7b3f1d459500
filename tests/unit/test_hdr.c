/*
 * test_hdr.c - the HDR histogram against exact percentiles computed by sorting.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "obs/hdr.h"
#include "unit.h"

#define N 1000000

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* splitmix64: a fixed seed makes every run see the same data. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double unif(void)
{
	return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999, 100};

/* check_against_sorted records vals, sorts a copy and compares every
 * percentile: the histogram may only be above the exact value, by less than
 * 0.1% of it (3 significant digits). */
static void check_against_sorted(int64_t *vals, size_t n)
{
	struct ld_hdr h;
	double sum = 0;

	CHECK_INT(ld_hdr_init(&h, LD_HDR_HOUR_US, 3), 0);
	for (size_t i = 0; i < n; i++) {
		ld_hdr_record(&h, vals[i]);
		sum += (double)vals[i];
	}
	qsort(vals, n, sizeof(vals[0]), cmp64);
	CHECK_INT(h.total, (long long)n);
	CHECK_INT(ld_hdr_min(&h), vals[0]);
	CHECK_INT(ld_hdr_max(&h), vals[n - 1]);
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
		int64_t want = (int64_t)(pcts[k] / 100.0 * (double)n + 0.5);
		int64_t exact, got = ld_hdr_percentile(&h, pcts[k]);
		if (want < 1)
			want = 1;
		exact = vals[want - 1];
		CHECK(got >= exact);
		CHECK_DBL((double)got, (double)exact, 0.001 * (double)exact + 0.5);
	}
	CHECK_DBL(ld_hdr_mean(&h), sum / (double)n, 0.001 * sum / (double)n);
	ld_hdr_release(&h);
}

static void test_uniform(void)
{
	int64_t *v = malloc(N * sizeof(*v));
	for (size_t i = 0; i < N; i++)
		v[i] = 1 + (int64_t)(rng() % 10000000);
	check_against_sorted(v, N);
	free(v);
}

static void test_exponential(void)
{
	int64_t *v = malloc(N * sizeof(*v));
	for (size_t i = 0; i < N; i++)
		v[i] = 1 + (int64_t)(-log(unif()) * 20000.0);
	check_against_sorted(v, N);
	free(v);
}

static void test_bimodal(void)
{
	/* Fast answers around 300 us and a 2% tail of stalls around 1.2 s. */
	int64_t *v = malloc(N * sizeof(*v));
	for (size_t i = 0; i < N; i++) {
		if (rng() % 100 < 2)
			v[i] = 1200000 + (int64_t)(rng() % 50000);
		else
			v[i] = 200 + (int64_t)(rng() % 200);
	}
	check_against_sorted(v, N);
	free(v);
}

static void test_small_values_exact(void)
{
	struct ld_hdr h;

	CHECK_INT(ld_hdr_init(&h, LD_HDR_HOUR_US, 3), 0);
	for (int64_t v = 0; v < 2048; v++)
		CHECK_INT(ld_hdr_highest_equivalent(&h, v), v);
	ld_hdr_record(&h, 1);
	ld_hdr_record(&h, 2);
	ld_hdr_record(&h, 3);
	CHECK_INT(ld_hdr_percentile(&h, 50), 2);
	CHECK_INT(ld_hdr_percentile(&h, 100), 3);
	CHECK_INT(ld_hdr_percentile(&h, 0), 1);
	ld_hdr_release(&h);
}

static void test_merge_equals_single(void)
{
	struct ld_hdr all, a, b, m;

	CHECK_INT(ld_hdr_init(&all, LD_HDR_HOUR_US, 3), 0);
	CHECK_INT(ld_hdr_init(&a, LD_HDR_HOUR_US, 3), 0);
	CHECK_INT(ld_hdr_init(&b, LD_HDR_HOUR_US, 3), 0);
	CHECK_INT(ld_hdr_init(&m, LD_HDR_HOUR_US, 3), 0);
	for (int i = 0; i < 200000; i++) {
		int64_t v = 1 + (int64_t)(-log(unif()) * 5000.0);
		ld_hdr_record(&all, v);
		ld_hdr_record(i % 3 ? &a : &b, v);
	}
	CHECK_INT(ld_hdr_merge(&m, &a), 0);
	CHECK_INT(ld_hdr_merge(&m, &b), 0);
	CHECK_INT(m.total, all.total);
	CHECK_INT(m.min, all.min);
	CHECK_INT(m.max, all.max);
	CHECK_INT(m.counts_len, all.counts_len);
	CHECK(memcmp(m.counts, all.counts, (size_t)all.counts_len * sizeof(int64_t)) == 0);
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++)
		CHECK_INT(ld_hdr_percentile(&m, pcts[k]), ld_hdr_percentile(&all, pcts[k]));
	CHECK_DBL(ld_hdr_stddev(&m), ld_hdr_stddev(&all), 1e-9);
	/* A histogram of another shape cannot be merged. */
	ld_hdr_release(&b);
	CHECK_INT(ld_hdr_init(&b, 1000, 2), 0);
	CHECK(ld_hdr_merge(&m, &b) < 0);
	/* Reset empties all of it. */
	ld_hdr_reset(&m);
	CHECK_INT(m.total, 0);
	for (int i = 0; i < m.counts_len; i++)
		if (m.counts[i])
			CHECK_INT(m.counts[i], 0);
	ld_hdr_release(&all);
	ld_hdr_release(&a);
	ld_hdr_release(&b);
	ld_hdr_release(&m);
}

static void test_memory_fixed(void)
{
	struct ld_hdr h;
	const int64_t *counts;
	int len;

	CHECK_INT(ld_hdr_init(&h, LD_HDR_HOUR_US, 3), 0);
	counts = h.counts;
	len = h.counts_len;
	/* An hour at 3 digits fits in a fixed 256 KiB of counts. */
	CHECK((size_t)len * sizeof(int64_t) < 256 * 1024);
	CHECK(h.highest >= LD_HDR_HOUR_US);
	CHECK_INT(h.sub_bucket_count, 2048);
	for (int i = 0; i < 100000; i++)
		ld_hdr_record(&h, (int64_t)(rng() % (uint64_t)LD_HDR_HOUR_US));
	/* Both bounds and beyond them: clamped, never a reallocation. */
	ld_hdr_record(&h, 0);
	ld_hdr_record(&h, h.highest);
	ld_hdr_record(&h, -1);
	ld_hdr_record(&h, h.highest + 1);
	ld_hdr_record_n(&h, INT64_MAX, 3);
	CHECK(h.counts == counts);
	CHECK_INT(h.counts_len, len);
	CHECK_INT(h.clamped, 5);
	CHECK_INT(h.total, 100007);
	ld_hdr_release(&h);
	CHECK(ld_hdr_init(&h, 1, 3) < 0);
	CHECK(ld_hdr_init(&h, 1000, 0) < 0);
}

static void test_bounds_clamped(void)
{
	struct ld_hdr h;

	CHECK_INT(ld_hdr_init(&h, LD_HDR_HOUR_US, 3), 0);
	ld_hdr_record(&h, 0);
	ld_hdr_record(&h, LD_HDR_HOUR_US);
	CHECK_INT(h.clamped, 0);
	ld_hdr_record(&h, h.highest + 1);
	ld_hdr_record(&h, INT64_MAX);
	ld_hdr_record(&h, -5);
	CHECK_INT(h.clamped, 3);
	CHECK_INT(h.total, 5);
	CHECK_INT(ld_hdr_min(&h), 0);
	CHECK_INT(ld_hdr_max(&h), h.highest);
	CHECK_INT(ld_hdr_percentile(&h, 100), h.highest);
	/* One hour is kept to 3 digits. */
	CHECK_DBL((double)ld_hdr_percentile(&h, 50), (double)LD_HDR_HOUR_US,
		  0.001 * (double)LD_HDR_HOUR_US);
	ld_hdr_release(&h);
}

static void test_hgrm_parses_back(void)
{
	struct ld_hdr h;
	char line[256];
	FILE *f = tmpfile();
	double last_v = -1, last_p = -1, mean = 0, max = 0, p50_v = -1;
	long long last_c = -1, total = 0;
	int rows = 0, header = 0, saw_100 = 0, buckets = 0, subs = 0;

	CHECK_INT(ld_hdr_init(&h, LD_HDR_HOUR_US, 3), 0);
	for (int i = 0; i < 100000; i++)
		ld_hdr_record(&h, 100 + (int64_t)(-log(unif()) * 3000.0));
	CHECK_INT(ld_hdr_write_hgrm(&h, f, 1000.0), 0);
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		double v, p, inv;
		long long c;
		if (strstr(line, "Value") && strstr(line, "1/(1-Percentile)")) {
			header = 1;
		} else if (sscanf(line, "#[Mean = %lf", &mean) == 1 ||
			   sscanf(line, "#[Mean    = %lf", &mean) == 1) {
		} else if (sscanf(line, "#[Max     = %lf, Total count    = %lld", &max, &total) ==
			   2) {
		} else if (sscanf(line, "#[Buckets = %d, SubBuckets     = %d", &buckets, &subs) ==
			   2) {
		} else if (sscanf(line, "%lf %lf %lld %lf", &v, &p, &c, &inv) >= 3) {
			CHECK(v >= last_v);
			CHECK(p >= last_p);
			CHECK(c >= last_c);
			if (p < 1.0)
				CHECK_DBL(inv, 1.0 / (1.0 - p), 0.01 + 1e-6 / (1.0 - p));
			if (p == 1.0)
				saw_100 = 1;
			if (p >= 0.5 && p50_v < 0)
				p50_v = v;
			last_v = v;
			last_p = p;
			last_c = c;
			rows++;
		}
	}
	fclose(f);
	CHECK(header);
	CHECK(rows > 50);
	CHECK(saw_100);
	CHECK_INT(last_c, h.total);
	CHECK_INT(total, h.total);
	CHECK_DBL(max, (double)h.max / 1000.0, 0.001);
	CHECK_DBL(last_v, (double)h.max / 1000.0, 0.001);
	CHECK_DBL(mean, ld_hdr_mean(&h) / 1000.0, 0.001);
	CHECK_INT(buckets, h.bucket_count);
	CHECK_INT(subs, 2048);
	/* The median line agrees with the percentile query. */
	CHECK_DBL(p50_v, (double)ld_hdr_percentile(&h, 50) / 1000.0, 0.001);
	ld_hdr_release(&h);
}

int main(void)
{
	RUN(test_uniform);
	RUN(test_exponential);
	RUN(test_bimodal);
	RUN(test_small_values_exact);
	RUN(test_merge_equals_single);
	RUN(test_memory_fixed);
	RUN(test_bounds_clamped);
	RUN(test_hgrm_parses_back);
	return unit_finish();
}
