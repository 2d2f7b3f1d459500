/*
 * shape.c - durations, rates, stage lists, the schedule, PRNG and Zipf.
 */
#include "bench/shape.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ld_parse_duration(const char *s, double *secs)
{
	char *end;
	double v, mul = 1;

	if (!s || !*s)
		return -EINVAL;
	v = strtod(s, &end);
	if (end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		mul = 1;
	else if (!strcmp(end, "ms"))
		mul = 1e-3;
	else if (!strcmp(end, "us"))
		mul = 1e-6;
	else if (!strcmp(end, "m"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else
		return -EINVAL;
	/* A year bounds every run; beyond it the arithmetic stops being exact. */
	if (v * mul > 366 * 86400.0)
		return -EINVAL;
	*secs = v * mul;
	return 0;
}

int ld_parse_rate(const char *s, double *rps)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	v = strtod(s, &end);
	if (end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	if (*end == 'k' || *end == 'K') {
		v *= 1e3;
		end++;
	}
	if (*end || v > 1e9)
		return -EINVAL;
	*rps = v;
	return 0;
}

void ld_shape_finish(struct ld_shape *sh)
{
	double r0 = sh->start_rate;

	sh->t0[0] = 0;
	sh->a0[0] = 0;
	for (int i = 0; i < sh->n; i++) {
		/* Under a microsecond a ramp is a jump: k = dr/dt would overflow. */
		if (sh->dur[i] < 1e-6)
			sh->dur[i] = 0;
		sh->t0[i + 1] = sh->t0[i] + sh->dur[i];
		sh->a0[i + 1] = sh->a0[i] + (r0 + sh->target[i]) / 2 * sh->dur[i];
		r0 = sh->target[i];
	}
}

void ld_shape_constant(struct ld_shape *sh, double rate, double secs)
{
	memset(sh, 0, sizeof(*sh));
	sh->n = 1;
	sh->start_rate = rate;
	sh->dur[0] = secs;
	sh->target[0] = rate;
	ld_shape_finish(sh);
}

int ld_shape_parse(struct ld_shape *sh, const char *spec, double start_rate, char *err,
		   size_t errlen)
{
	int rc = -EINVAL;
	char item[128];
	const char *p = spec;

	memset(sh, 0, sizeof(*sh));
	sh->start_rate = start_rate;
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty stage list");
		goto out;
	}
	while (*p) {
		size_t len = strcspn(p, ",");
		char *colon;

		if (len == 0 || len >= sizeof(item)) {
			snprintf(err, errlen, "stage %d is empty or too long", sh->n + 1);
			goto out;
		}
		if (sh->n == LD_SHAPE_STAGES_MAX) {
			snprintf(err, errlen, "more than %d stages", LD_SHAPE_STAGES_MAX);
			goto out;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		colon = strchr(item, ':');
		if (!colon) {
			snprintf(err, errlen, "stage '%s' is not DURATION:RATE", item);
			goto out;
		}
		*colon = '\0';
		if (ld_parse_duration(item, &sh->dur[sh->n])) {
			snprintf(err, errlen, "stage %d: bad duration '%s'", sh->n + 1, item);
			goto out;
		}
		if (ld_parse_rate(colon + 1, &sh->target[sh->n])) {
			snprintf(err, errlen, "stage %d: bad rate '%s'", sh->n + 1, colon + 1);
			goto out;
		}
		sh->n++;
		p += len;
		if (*p == ',' && *++p == '\0') {
			snprintf(err, errlen, "a comma with no stage after it");
			goto out;
		}
	}
	ld_shape_finish(sh);
	if (ld_shape_total_s(sh) <= 0) {
		snprintf(err, errlen, "stages last no time");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int ld_shape_preset(struct ld_shape *sh, const char *name, double rate, double secs)
{
	if (!strcmp(name, "soak")) {
		ld_shape_constant(sh, rate, secs);
		return 0;
	}
	if (!strcmp(name, "spike")) {
		/* 40% base, a fast climb to 10x, 20% at the peak, a fast fall, base. */
		memset(sh, 0, sizeof(*sh));
		sh->start_rate = rate;
		sh->n = 5;
		sh->dur[0] = secs * 0.35;
		sh->target[0] = rate;
		sh->dur[1] = secs * 0.05;
		sh->target[1] = rate * 10;
		sh->dur[2] = secs * 0.2;
		sh->target[2] = rate * 10;
		sh->dur[3] = secs * 0.05;
		sh->target[3] = rate;
		sh->dur[4] = secs * 0.35;
		sh->target[4] = rate;
		ld_shape_finish(sh);
		return 0;
	}
	return -EINVAL;
}

double ld_shape_total_s(const struct ld_shape *sh)
{
	return sh->t0[sh->n];
}

static double stage_start_rate(const struct ld_shape *sh, int i)
{
	return i == 0 ? sh->start_rate : sh->target[i - 1];
}

double ld_shape_rate_at(const struct ld_shape *sh, double t)
{
	for (int i = 0; i < sh->n; i++) {
		if (t < sh->t0[i + 1]) {
			double r0 = stage_start_rate(sh, i);
			double f = sh->dur[i] > 0 ? (t - sh->t0[i]) / sh->dur[i] : 1;
			return r0 + (sh->target[i] - r0) * (f < 0 ? 0 : f);
		}
	}
	return sh->n ? sh->target[sh->n - 1] : 0;
}

double ld_shape_count_at(const struct ld_shape *sh, double t)
{
	for (int i = 0; i < sh->n; i++) {
		if (t < sh->t0[i + 1]) {
			double r0 = stage_start_rate(sh, i), tau = t - sh->t0[i];
			double k = sh->dur[i] > 0 ? (sh->target[i] - r0) / sh->dur[i] : 0;
			if (tau < 0)
				tau = 0;
			return sh->a0[i] + r0 * tau + k * tau * tau / 2;
		}
	}
	return sh->a0[sh->n];
}

double ld_shape_time_of(const struct ld_shape *sh, double a)
{
	for (int i = 0; i < sh->n; i++) {
		double da, r0, k, disc, tau;

		if (a >= sh->a0[i + 1] || sh->dur[i] <= 0)
			continue;
		da = a - sh->a0[i];
		if (da < 0)
			da = 0;
		r0 = stage_start_rate(sh, i);
		k = (sh->target[i] - r0) / sh->dur[i];
		/* Solve k/2 tau^2 + r0 tau = da in the form that stays exact when
		 * k is near 0 (no cancellation between r0 and the root). */
		disc = r0 * r0 + 2 * k * da;
		if (disc < 0)
			disc = 0;
		if (r0 + sqrt(disc) <= 0)
			tau = 0;
		else
			tau = 2 * da / (r0 + sqrt(disc));
		if (!(tau >= 0))
			tau = 0;
		if (tau > sh->dur[i])
			tau = sh->dur[i];
		return sh->t0[i] + tau;
	}
	return -1;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void ld_rng_seed(struct ld_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t ld_rng_next(struct ld_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double ld_rng_unit(struct ld_rng *r)
{
	return ((double)(ld_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

double ld_rng_exp(struct ld_rng *r)
{
	return -log(ld_rng_unit(r));
}

/* (exp(x) - 1) / x, continuous at 0. */
static double expm1_over_x(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x / 2 * (1 + x / 3);
}

/* log(1 + x) / x, continuous at 0. */
static double log1p_over_x(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x / 3);
}

/* H(x), an antiderivative of x^-s shifted so the exponent 1 needs no case. */
static double zipf_hint(const struct ld_zipf *z, double x)
{
	double lx = log(x);

	return expm1_over_x((1 - z->s) * lx) * lx;
}

static double zipf_h(const struct ld_zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double zipf_hint_inv(const struct ld_zipf *z, double x)
{
	double t = x * (1 - z->s);

	if (t < -1)
		t = -1; /* rounding can step just outside the domain */
	return exp(log1p_over_x(t) * x);
}

int ld_zipf_init(struct ld_zipf *z, uint64_t n, double s)
{
	if (n < 1 || !(s >= 0) || !isfinite(s))
		return -EINVAL;
	z->n = n;
	z->s = s;
	z->h_x1 = zipf_hint(z, 1.5) - 1;
	z->h_n = zipf_hint(z, (double)n + 0.5);
	z->cut = 2 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2));
	return 0;
}

uint64_t ld_zipf_next(const struct ld_zipf *z, struct ld_rng *r)
{
	for (;;) {
		/* Draw from the continuous hat, round to a rank, accept if the
		 * rank's true mass covers the point (almost always). */
		double u = z->h_n + ld_rng_unit(r) * (z->h_x1 - z->h_n);
		double x = zipf_hint_inv(z, u);
		double kd = floor(x + 0.5);
		uint64_t k;

		if (kd < 1)
			kd = 1;
		if (kd > (double)z->n)
			kd = (double)z->n;
		k = (uint64_t)kd;
		if (kd - x <= z->cut || u >= zipf_hint(z, kd + 0.5) - zipf_h(z, kd))
			return k;
	}
}
