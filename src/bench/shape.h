/*
 * shape.h - what `ladder bench` sends when: durations, rates, load shapes
 * (constant, stages, presets), the open-loop schedule, a seeded PRNG and a
 * Zipf sampler.
 *
 * A shape is a piecewise-linear target rate r(t) over [0, total_s]. The
 * schedule is the inverse of its integral A(t) = \int_0^t r: request k
 * (counting from 0) is due when A(t) = k, so a constant rate gives exactly
 * t0 + k / rate, and a ramp spaces requests as k6's ramping-arrival-rate
 * does. Poisson arrivals put exponential gaps (mean 1) in A instead.
 *
 * Everything here is pure computation: no I/O, no globals, any thread.
 */
#ifndef LD_BENCH_SHAPE_H
#define LD_BENCH_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LD_SHAPE_STAGES_MAX 64

struct ld_shape {
	int n;				    /* stages */
	double start_rate;		    /* rate at t = 0 */
	double dur[LD_SHAPE_STAGES_MAX];    /* seconds, >= 0 */
	double target[LD_SHAPE_STAGES_MAX]; /* rate reached (linearly) at the stage's end */
	double t0[LD_SHAPE_STAGES_MAX + 1]; /* stage start times; t0[n] = total */
	double a0[LD_SHAPE_STAGES_MAX + 1]; /* A at stage starts; a0[n] = total count */
};

/* ld_parse_duration reads "250ms", "10s", "1.5m", "2h", "500us" or a bare
 * number of seconds (at most 366 days) into *secs. Returns 0 or -EINVAL. */
int ld_parse_duration(const char *s, double *secs);

/* ld_parse_rate reads a non-negative number of requests per second ("1000",
 * "2.5k", "1e4"; at most 1e9). Returns 0 or -EINVAL ("max" is the caller's
 * business). */
int ld_parse_rate(const char *s, double *rps);

/* ld_shape_constant makes a single stage at rate for secs. */
void ld_shape_constant(struct ld_shape *sh, double rate, double secs);

/* ld_shape_parse reads a stage list "30s:100,1m:1000,30s:0" (duration:target
 * rate, linear between targets, starting from start_rate). Returns 0, or
 * -EINVAL with a reason in err. */
int ld_shape_parse(struct ld_shape *sh, const char *spec, double start_rate, char *err,
		   size_t errlen);

/* ld_shape_finish computes the stage boundaries; the parse and constant
 * functions call it, callers that fill stages by hand must too. */
void ld_shape_finish(struct ld_shape *sh);

double ld_shape_total_s(const struct ld_shape *sh);
double ld_shape_rate_at(const struct ld_shape *sh, double t);
/* ld_shape_count_at is A(t), the requests due in [0, t). */
double ld_shape_count_at(const struct ld_shape *sh, double t);
/* ld_shape_time_of inverts A: the time at which A reaches a, or a negative
 * value when the shape ends first. */
double ld_shape_time_of(const struct ld_shape *sh, double a);

/* Presets, documented in --help: "spike" (base, 10x for a while, base) and
 * "soak" (constant). rate is the base rate, secs the total length. Returns
 * 0 or -EINVAL for an unknown name. */
int ld_shape_preset(struct ld_shape *sh, const char *name, double rate, double secs);

/* A small fast PRNG (xoshiro256**) seeded through splitmix64. */
struct ld_rng {
	uint64_t s[4];
};

void ld_rng_seed(struct ld_rng *r, uint64_t seed);
uint64_t ld_rng_next(struct ld_rng *r);
/* ld_rng_unit is uniform in (0, 1): never exactly 0 or 1. */
double ld_rng_unit(struct ld_rng *r);
/* ld_rng_exp is exponential with mean 1. */
double ld_rng_exp(struct ld_rng *r);

/*
 * Zipf over ranks 1..n with exponent s >= 0: P(k) is proportional to k^-s.
 * Sampling is O(1) with no table (rejection-inversion, Hoermann and
 * Derflinger 1996), so a hot set over millions of keys costs nothing.
 */
struct ld_zipf {
	uint64_t n;
	double s;
	double h_x1, h_n, cut;
};

/* Returns 0 or -EINVAL (n < 1, s < 0 or not finite). */
int ld_zipf_init(struct ld_zipf *z, uint64_t n, double s);
/* ld_zipf_next returns a rank in 1..n. */
uint64_t ld_zipf_next(const struct ld_zipf *z, struct ld_rng *r);

#endif
