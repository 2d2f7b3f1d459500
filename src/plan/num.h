/*
 * num.h - numbers as people write them in capacity plans: "10M", "1B",
 * "1KB", "1KiB", "50ms", "20%", "3x", "$150", "50M/day".
 *
 * Decimal suffixes are powers of 1000 (K, M, B or G, T, P; KB, MB, GB, TB,
 * PB), binary ones powers of 1024 (KiB, MiB, GiB, TiB, PiB): the source
 * design is decimal (1 KB x 1 billion = 1 TB). Suffixes are case-insensitive
 * except that a lone "m" in a duration is minutes and "ms" milliseconds.
 *
 * Every parser is pure: no locale, no global state, safe from any thread.
 * Errors: 0 on success, -EINVAL with a short lower-case reason in err (which
 * names what was expected, never the field: the caller adds that).
 */
#ifndef LD_PLAN_NUM_H
#define LD_PLAN_NUM_H

#include <stddef.h>

/* What a value means, which decides the suffixes it accepts. */
enum ld_num_kind {
	LD_NUM_COUNT,	 /* 10M, 1B, 2.5e6 */
	LD_NUM_BYTES,	 /* 1KB, 5MB, 1.5TiB; a bare number is bytes */
	LD_NUM_DURATION, /* 50ms, 2s, 5m, 1h, 1d; a bare number is seconds */
	LD_NUM_FRACTION, /* 20% or 0.2 */
	LD_NUM_FACTOR,	 /* 3 or 3x */
	LD_NUM_MONEY,	 /* 150, $150, 0.02 */
	LD_NUM_RATE,	 /* a count per period: 1B/month (default), 50M/day, 400/s */
};

/* A rate as written: n events per `per_s` seconds, or per month when per_s is
 * 0 (a month's length is itself an input, so it is resolved late). */
struct ld_rate {
	double n;
	double per_s;
};

/* ld_num_parse parses s as kind into *out (for LD_NUM_RATE, out must point at a
 * struct ld_rate; for every other kind at a double). Leading and trailing
 * blanks are ignored. NaN, infinities and hex floats are refused. */
int ld_num_parse(const char *s, enum ld_num_kind kind, void *out, char *err, size_t errlen);

/* ld_rate_per_s resolves r to events per second given a month's length. */
double ld_rate_per_s(const struct ld_rate *r, double seconds_per_month);

/* Formatting for reports: the result is written into out (at least 32 bytes)
 * and returned. Decimal SI prefixes, 3 significant digits ("1.23M",
 * "36.0 TB", "115 GB/s" is the caller's unit). */
char *ld_num_fmt_si(double v, char *out, size_t outlen);
char *ld_num_fmt_bytes(double v, char *out, size_t outlen);
char *ld_num_fmt_duration(double seconds, char *out, size_t outlen);

#endif
