/*
 * slo.h - service-level objectives for `ladder bench --slo`.
 *
 * Grammar: terms separated by commas, each METRIC OP VALUE with OP one of
 * < <= > >=:
 *   p50 p90 p95 p99 p99.9 p99.99 (any pNN[.N]), mean, max
 *       latency from the intended send time (coordinated-omission safe);
 *       prefix "service." for service time; VALUE is a duration (5ms, 250us,
 *       1.5s; a bare number is milliseconds)
 *   errors  VALUE is a rate: "0.1%" or a fraction "0.001"
 *   rps     achieved requests per second
 * Example: "p99<5ms, p99.9<=20ms, errors<0.1%, rps>=900".
 *
 * Threading: pure functions of their arguments.
 */
#ifndef LD_BENCH_SLO_H
#define LD_BENCH_SLO_H

#include <stdbool.h>
#include <stddef.h>

#include "obs/hdr.h"

#define LD_SLO_TERMS_MAX 16

enum ld_slo_metric { LD_SLO_PCT, LD_SLO_MEAN, LD_SLO_MAX, LD_SLO_ERRORS, LD_SLO_RPS };
enum ld_slo_op { LD_SLO_LT, LD_SLO_LE, LD_SLO_GT, LD_SLO_GE };

struct ld_slo_term {
	enum ld_slo_metric metric;
	bool service; /* service time instead of corrected latency */
	double pct;   /* for LD_SLO_PCT */
	enum ld_slo_op op;
	double value;  /* microseconds, a fraction, or requests/s */
	char text[64]; /* the term as written, for messages */
};

struct ld_slo {
	int n;
	struct ld_slo_term t[LD_SLO_TERMS_MAX];
};

/* ld_slo_parse reads spec into s. Returns 0, or -EINVAL with the offending
 * term named in err. */
int ld_slo_parse(struct ld_slo *s, const char *spec, char *err, size_t errlen);

/* ld_slo_measure returns the figure a term is about. */
double ld_slo_measure(const struct ld_slo_term *t, const struct ld_hdr *lat,
		      const struct ld_hdr *svc, double error_rate, double achieved_rps);

/* ld_slo_check evaluates every term and returns how many are broken; the
 * broken ones are described in why ("p99<5ms broken: 7.31ms; ..."). An empty
 * histogram breaks every latency term: no answers is no evidence. */
int ld_slo_check(const struct ld_slo *s, const struct ld_hdr *lat, const struct ld_hdr *svc,
		 double error_rate, double achieved_rps, char *why, size_t whylen);

#endif
