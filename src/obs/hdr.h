/*
 * hdr.h - HDR-style log-linear histogram of integer values.
 *
 * The value range [0, highest] is cut into buckets that double in width; each
 * bucket is split into a fixed number of linear sub-buckets, enough that every
 * recorded value is known to `sigfigs` significant decimal digits (3 digits:
 * 2048 sub-buckets, so the relative error of a reported value is under 1/1024,
 * i.e. below 0.1%). Values up to 2047 are exact. This is the layout Gil Tene's
 * HdrHistogram uses, so figures and .hgrm output compare directly with it.
 *
 * Units are the caller's; ladder records microseconds everywhere, and with
 * LD_HDR_HOUR_US as highest a histogram holds 0 us .. a little over 71 minutes
 * in a fixed 188 KiB.
 *
 * Memory: all counts are allocated once by ld_hdr_init and never grow; the
 * size depends only on (highest, sigfigs), never on what is recorded.
 * Out of range: a value above highest is recorded as highest and a negative
 * value as 0; both are counted in `clamped` so a report can say so.
 * Threading: none inside. Use one histogram per thread and merge them with
 * ld_hdr_merge (exact: counts are added bucket by bucket). Percentiles are
 * always computed from counts, never averaged across histograms.
 */
#ifndef LD_HDR_H
#define LD_HDR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One hour in microseconds: the least highest value ladder asks for. */
#define LD_HDR_HOUR_US 3600000000LL

struct ld_hdr {
	int64_t highest;	/* largest value representable (a bucket top) */
	int sigfigs;		/* 1..5 */
	int sub_bucket_count;	/* power of two, >= 2 * 10^sigfigs */
	int sub_half_magnitude; /* log2(sub_bucket_count / 2) */
	int bucket_count;	/* doubling buckets needed to reach highest */
	int counts_len;		/* (bucket_count + 1) * sub_bucket_count / 2 */
	int64_t *counts;	/* counts_len slots, owned */
	int64_t total;		/* values recorded (clamped ones included) */
	int64_t min;		/* INT64_MAX while empty */
	int64_t max;		/* 0 while empty */
	int64_t clamped;	/* values that fell outside [0, highest] */
	int lo_idx, hi_idx;	/* range of slots that may be non-zero (speeds merge/reset) */
	int borrowed;		/* counts belong to the caller (ld_hdr_init_at) */
};

/* ld_hdr_init allocates a histogram for 0..highest (highest >= 2) at sigfigs
 * significant digits (1..5). Returns 0, -EINVAL for bad arguments, -ENOMEM. */
int ld_hdr_init(struct ld_hdr *h, int64_t highest, int sigfigs);

/* ld_hdr_counts_len is the number of count slots ld_hdr_init would allocate
 * for (highest, sigfigs), or -EINVAL. */
int ld_hdr_counts_len(int64_t highest, int sigfigs);

/* ld_hdr_init_at is ld_hdr_init on caller-owned, zeroed storage of
 * ld_hdr_counts_len slots (many histograms in one block whose untouched pages
 * stay unbacked); the storage must outlive h, and ld_hdr_release leaves it. */
int ld_hdr_init_at(struct ld_hdr *h, int64_t highest, int sigfigs, int64_t *counts);

/* ld_hdr_release frees the counts; h may be re-initialised afterwards. */
void ld_hdr_release(struct ld_hdr *h);

/* ld_hdr_reset forgets every value but keeps the memory. */
void ld_hdr_reset(struct ld_hdr *h);

/* ld_hdr_record adds one value; ld_hdr_record_n adds n copies of it. */
void ld_hdr_record(struct ld_hdr *h, int64_t v);
void ld_hdr_record_n(struct ld_hdr *h, int64_t v, int64_t n);

/* ld_hdr_merge adds every count of src into dst. Both must have been
 * initialised with the same (highest, sigfigs); otherwise -EINVAL and dst is
 * unchanged. */
int ld_hdr_merge(struct ld_hdr *dst, const struct ld_hdr *src);

/* ld_hdr_percentile returns the value at percentile p (0..100): the highest
 * value equivalent to the smallest recorded value with at least p% of all
 * values at or below it (HdrHistogram's definition). 0 when empty. */
int64_t ld_hdr_percentile(const struct ld_hdr *h, double p);

/* Mean and standard deviation use each slot's middle value. 0 when empty. */
double ld_hdr_mean(const struct ld_hdr *h);
double ld_hdr_stddev(const struct ld_hdr *h);
int64_t ld_hdr_min(const struct ld_hdr *h); /* 0 when empty */
int64_t ld_hdr_max(const struct ld_hdr *h);

/* ld_hdr_cumulative sets out[i] to the number of values whose slot starts at
 * or below bounds[i] (ascending): "values <= bound" to the histogram's
 * precision, for cumulative buckets such as Prometheus' le. One pass. */
void ld_hdr_cumulative(const struct ld_hdr *h, const int64_t *bounds, int n, int64_t *out);

/* Equivalence ranges: every value in [lowest_equivalent(v),
 * highest_equivalent(v)] shares v's slot. */
int64_t ld_hdr_lowest_equivalent(const struct ld_hdr *h, int64_t v);
int64_t ld_hdr_highest_equivalent(const struct ld_hdr *h, int64_t v);

/*
 * Percentile iteration, as HdrHistogram's percentile iterator: steps of
 * percentile that halve the remaining distance to 100% every
 * `ticks_per_half` steps, so the tail gets as many lines as the body.
 * Start with ld_hdr_iter_init, then call ld_hdr_iter_next until it returns
 * 0. Each step sets value (highest equivalent value), percentile (0..100) and
 * count (values at or below). The last step is always percentile 100.
 */
struct ld_hdr_iter {
	const struct ld_hdr *h;
	int ticks_per_half;
	int idx;	 /* slot being reported, -1 before the start */
	int64_t cum;	 /* count up to and including idx */
	double next_pct; /* percentile to report next */
	int done;	 /* 1 once the 100% line was produced */
	int64_t value;
	double percentile;
	int64_t count;
};

void ld_hdr_iter_init(struct ld_hdr_iter *it, const struct ld_hdr *h, int ticks_per_half);
int ld_hdr_iter_next(struct ld_hdr_iter *it);

/* ld_hdr_write_hgrm writes the percentile distribution in HdrHistogram's
 * outputPercentileDistribution text layout (.hgrm) with values divided by
 * scale (1000.0 turns microseconds into milliseconds, as wrk2 does) and 5
 * ticks per half distance. Returns 0 or -EIO when the stream fails. */
int ld_hdr_write_hgrm(const struct ld_hdr *h, FILE *f, double scale);

#endif
