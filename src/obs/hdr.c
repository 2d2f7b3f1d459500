/*
 * hdr.c - log-linear histogram (see hdr.h for the layout and the contract).
 *
 * Index arithmetic: a value v lives in bucket b = the position of its highest
 * set bit above the sub-bucket range, and in sub-bucket s = v >> b. Bucket 0
 * uses all sub_bucket_count sub-buckets; every later bucket only the upper
 * half (the lower half would repeat the previous bucket at double width), so
 * the counts array is (bucket_count + 1) * half slots long.
 */
#include "obs/hdr.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int bucket_of(const struct ld_hdr *h, int64_t v)
{
	/* OR with the sub-bucket mask so small values land in bucket 0. */
	uint64_t x = (uint64_t)v | (uint64_t)(h->sub_bucket_count - 1);

	return 63 - __builtin_clzll(x) - h->sub_half_magnitude;
}

static int index_of(const struct ld_hdr *h, int64_t v)
{
	int b = bucket_of(h, v);
	int s = (int)(v >> b);

	return ((b + 1) << h->sub_half_magnitude) + s - (h->sub_bucket_count >> 1);
}

/* value_at_index is the lowest value of slot i. */
static int64_t value_at_index(const struct ld_hdr *h, int i)
{
	int half = h->sub_bucket_count >> 1;
	int b = (i >> h->sub_half_magnitude) - 1;
	int s = (i & (half - 1)) + half;

	if (b < 0) {
		s -= half;
		b = 0;
	}
	return (int64_t)s << b;
}

static int64_t slot_width(const struct ld_hdr *h, int64_t v)
{
	return (int64_t)1 << bucket_of(h, v);
}

int64_t ld_hdr_lowest_equivalent(const struct ld_hdr *h, int64_t v)
{
	int b = bucket_of(h, v);

	return (v >> b) << b;
}

int64_t ld_hdr_highest_equivalent(const struct ld_hdr *h, int64_t v)
{
	return ld_hdr_lowest_equivalent(h, v) + slot_width(h, v) - 1;
}

static int64_t median_equivalent(const struct ld_hdr *h, int64_t v)
{
	return ld_hdr_lowest_equivalent(h, v) + (slot_width(h, v) >> 1);
}

/* layout sets every field of h but the counts; 0 or -EINVAL. */
static int layout(struct ld_hdr *h, int64_t highest, int sigfigs)
{
	int64_t largest = 2, top;
	int mag = 0, buckets = 1;

	memset(h, 0, sizeof(*h));
	if (sigfigs < 1 || sigfigs > 5 || highest < 2 || highest > (INT64_MAX >> 2))
		return -EINVAL;
	for (int i = 0; i < sigfigs; i++)
		largest *= 10; /* 2 * 10^sigfigs values must be told apart */
	while (((int64_t)1 << (mag + 1)) < largest)
		mag++;
	h->sub_half_magnitude = mag; /* sub_bucket_count = 2^(mag+1) >= largest */
	h->sub_bucket_count = 1 << (mag + 1);
	top = h->sub_bucket_count;
	while (top - 1 < highest) {
		top <<= 1;
		buckets++;
	}
	h->bucket_count = buckets;
	h->highest = top - 1;
	h->sigfigs = sigfigs;
	h->counts_len = (buckets + 1) * (h->sub_bucket_count >> 1);
	return 0;
}

int ld_hdr_counts_len(int64_t highest, int sigfigs)
{
	struct ld_hdr h;
	int rc = layout(&h, highest, sigfigs);

	return rc ? rc : h.counts_len;
}

int ld_hdr_init(struct ld_hdr *h, int64_t highest, int sigfigs)
{
	int rc = layout(h, highest, sigfigs);

	if (rc)
		goto out;
	h->counts = calloc((size_t)h->counts_len, sizeof(int64_t));
	if (!h->counts) {
		rc = -ENOMEM;
		goto out;
	}
	ld_hdr_reset(h);
out:
	return rc;
}

int ld_hdr_init_at(struct ld_hdr *h, int64_t highest, int sigfigs, int64_t *counts)
{
	int rc = layout(h, highest, sigfigs);

	if (rc == 0) {
		h->counts = counts;
		h->borrowed = 1;
		ld_hdr_reset(h);
	}
	return rc;
}

void ld_hdr_release(struct ld_hdr *h)
{
	if (!h->borrowed)
		free(h->counts);
	h->counts = NULL;
}

void ld_hdr_reset(struct ld_hdr *h)
{
	if (h->lo_idx <= h->hi_idx && h->total)
		memset(h->counts + h->lo_idx, 0,
		       (size_t)(h->hi_idx - h->lo_idx + 1) * sizeof(int64_t));
	h->total = 0;
	h->min = INT64_MAX;
	h->max = 0;
	h->clamped = 0;
	h->lo_idx = h->counts_len;
	h->hi_idx = -1;
}

void ld_hdr_record_n(struct ld_hdr *h, int64_t v, int64_t n)
{
	int i;

	if (n <= 0)
		return;
	if (v < 0 || v > h->highest) {
		h->clamped += n;
		v = v < 0 ? 0 : h->highest;
	}
	i = index_of(h, v);
	h->counts[i] += n;
	h->total += n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	if (i < h->lo_idx)
		h->lo_idx = i;
	if (i > h->hi_idx)
		h->hi_idx = i;
}

void ld_hdr_record(struct ld_hdr *h, int64_t v)
{
	ld_hdr_record_n(h, v, 1);
}

int ld_hdr_merge(struct ld_hdr *dst, const struct ld_hdr *src)
{
	if (dst->counts_len != src->counts_len || dst->sub_bucket_count != src->sub_bucket_count)
		return -EINVAL;
	for (int i = src->lo_idx; i <= src->hi_idx; i++)
		dst->counts[i] += src->counts[i];
	if (src->total) {
		dst->total += src->total;
		dst->clamped += src->clamped;
		if (src->min < dst->min)
			dst->min = src->min;
		if (src->max > dst->max)
			dst->max = src->max;
		if (src->lo_idx < dst->lo_idx)
			dst->lo_idx = src->lo_idx;
		if (src->hi_idx > dst->hi_idx)
			dst->hi_idx = src->hi_idx;
	}
	return 0;
}

int64_t ld_hdr_percentile(const struct ld_hdr *h, double p)
{
	int64_t want, cum = 0;

	if (!h->total)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	want = (int64_t)(p / 100.0 * (double)h->total + 0.5);
	if (want < 1)
		want = 1;
	for (int i = h->lo_idx; i <= h->hi_idx; i++) {
		cum += h->counts[i];
		if (cum >= want) {
			int64_t v = ld_hdr_highest_equivalent(h, value_at_index(h, i));
			/* Never report beyond what was actually seen. */
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

void ld_hdr_cumulative(const struct ld_hdr *h, const int64_t *bounds, int n, int64_t *out)
{
	int64_t cum = 0;
	int b = 0;

	for (int i = h->lo_idx; i <= h->hi_idx && b < n; i++) {
		if (!h->counts[i])
			continue;
		while (b < n && value_at_index(h, i) > bounds[b])
			out[b++] = cum;
		cum += h->counts[i];
	}
	while (b < n)
		out[b++] = cum;
}

double ld_hdr_mean(const struct ld_hdr *h)
{
	double sum = 0;

	if (!h->total)
		return 0;
	for (int i = h->lo_idx; i <= h->hi_idx; i++)
		if (h->counts[i])
			sum += (double)h->counts[i] *
			       (double)median_equivalent(h, value_at_index(h, i));
	return sum / (double)h->total;
}

double ld_hdr_stddev(const struct ld_hdr *h)
{
	double mean = ld_hdr_mean(h), sq = 0;

	if (!h->total)
		return 0;
	for (int i = h->lo_idx; i <= h->hi_idx; i++) {
		if (h->counts[i]) {
			double d = (double)median_equivalent(h, value_at_index(h, i)) - mean;
			sq += d * d * (double)h->counts[i];
		}
	}
	return sqrt(sq / (double)h->total);
}

int64_t ld_hdr_min(const struct ld_hdr *h)
{
	return h->total ? h->min : 0;
}

int64_t ld_hdr_max(const struct ld_hdr *h)
{
	return h->max;
}

void ld_hdr_iter_init(struct ld_hdr_iter *it, const struct ld_hdr *h, int ticks_per_half)
{
	memset(it, 0, sizeof(*it));
	it->h = h;
	it->ticks_per_half = ticks_per_half > 0 ? ticks_per_half : 1;
	it->idx = -1;
	it->done = h->total == 0;
}

int ld_hdr_iter_next(struct ld_hdr_iter *it)
{
	const struct ld_hdr *h = it->h;

	if (it->done)
		return 0;
	if (it->idx >= 0 && it->cum >= h->total) {
		/* Everything was reported: close with the 100% line. */
		it->percentile = 100.0;
		it->done = 1;
		return 1;
	}
	for (;;) {
		if (it->idx < 0 || 100.0 * (double)it->cum / (double)h->total < it->next_pct ||
		    h->counts[it->idx] == 0) {
			/* Move to the next non-empty slot. */
			do {
				it->idx = it->idx < 0 ? h->lo_idx : it->idx + 1;
				if (it->idx > h->hi_idx) {
					it->done = 1;
					return 0;
				}
			} while (h->counts[it->idx] == 0);
			it->cum += h->counts[it->idx];
		}
		if (it->next_pct <= 100.0 * (double)it->cum / (double)h->total) {
			double half;
			int64_t v = ld_hdr_highest_equivalent(h, value_at_index(h, it->idx));

			it->value = v > h->max ? h->max : v;
			it->count = it->cum;
			it->percentile = it->next_pct;
			/* Halve the distance to 100% every ticks_per_half steps. */
			half = pow(2.0, floor(log2(100.0 / (100.0 - it->next_pct))) + 1);
			it->next_pct += 100.0 / ((double)it->ticks_per_half * half);
			return 1;
		}
	}
}

int ld_hdr_write_hgrm(const struct ld_hdr *h, FILE *f, double scale)
{
	struct ld_hdr_iter it;
	int d = h->sigfigs;

	fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
		"1/(1-Percentile)");
	ld_hdr_iter_init(&it, h, 5);
	while (ld_hdr_iter_next(&it)) {
		double p = it.percentile / 100.0;

		if (it.percentile < 100.0)
			fprintf(f, "%12.*f %2.12f %10lld %14.2f\n", d, (double)it.value / scale, p,
				(long long)it.count, 1.0 / (1.0 - p));
		else
			fprintf(f, "%12.*f %2.12f %10lld\n", d, (double)it.value / scale, p,
				(long long)it.count);
	}
	fprintf(f, "#[Mean    = %12.*f, StdDeviation   = %12.*f]\n", d, ld_hdr_mean(h) / scale, d,
		ld_hdr_stddev(h) / scale);
	fprintf(f, "#[Max     = %12.*f, Total count    = %12lld]\n", d,
		(double)ld_hdr_max(h) / scale, (long long)h->total);
	fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", h->bucket_count,
		h->sub_bucket_count);
	return ferror(f) ? -EIO : 0;
}
