/*
 * slo.c - parse and evaluate --slo thresholds (grammar in slo.h).
 */
#include "bench/slo.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/shape.h"

static void trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	memmove(s, s + i, n - i + 1);
}

static int parse_term(struct ld_slo_term *t, char *item)
{
	char *opp, *name = item, *val;
	char *end;

	memset(t, 0, sizeof(*t));
	snprintf(t->text, sizeof(t->text), "%s", item);
	opp = strpbrk(item, "<>");
	if (!opp)
		return -EINVAL;
	if (opp[0] == '<')
		t->op = opp[1] == '=' ? LD_SLO_LE : LD_SLO_LT;
	else
		t->op = opp[1] == '=' ? LD_SLO_GE : LD_SLO_GT;
	val = opp + (opp[1] == '=' ? 2 : 1);
	*opp = '\0';
	trim(name);
	trim(val);
	if (!*val)
		return -EINVAL;
	if (!strncmp(name, "service.", 8)) {
		t->service = true;
		name += 8;
	}
	if (!strcmp(name, "errors") || !strcmp(name, "error_rate")) {
		size_t n = strlen(val);
		bool pct = n && val[n - 1] == '%';
		if (t->service)
			return -EINVAL;
		if (pct)
			val[n - 1] = '\0';
		t->metric = LD_SLO_ERRORS;
		t->value = strtod(val, &end);
		if (end == val || *end || !isfinite(t->value) || t->value < 0)
			return -EINVAL;
		if (pct)
			t->value /= 100;
		return t->value <= 1 ? 0 : -EINVAL;
	}
	if (!strcmp(name, "rps")) {
		if (t->service)
			return -EINVAL;
		t->metric = LD_SLO_RPS;
		return ld_parse_rate(val, &t->value);
	}
	if (!strcmp(name, "mean")) {
		t->metric = LD_SLO_MEAN;
	} else if (!strcmp(name, "max")) {
		t->metric = LD_SLO_MAX;
	} else if (name[0] == 'p' && name[1] >= '0' && name[1] <= '9') {
		t->metric = LD_SLO_PCT;
		t->pct = strtod(name + 1, &end);
		if (*end || !(t->pct > 0) || t->pct > 100)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	/* A bare number is milliseconds, the unit people write SLOs in. */
	t->value = strtod(val, &end);
	if (end == val || !isfinite(t->value) || t->value < 0)
		return -EINVAL;
	if (*end == '\0') {
		t->value *= 1000;
	} else {
		double secs;
		if (ld_parse_duration(val, &secs))
			return -EINVAL;
		t->value = secs * 1e6;
	}
	/* 6E307 ms is a finite number but an infinite number of microseconds. */
	return isfinite(t->value) ? 0 : -EINVAL;
}

int ld_slo_parse(struct ld_slo *s, const char *spec, char *err, size_t errlen)
{
	int rc = -EINVAL;
	char item[64];
	const char *p = spec;

	memset(s, 0, sizeof(*s));
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty objective list");
		goto out;
	}
	while (*p) {
		size_t len = strcspn(p, ",");
		if (len >= sizeof(item) || s->n == LD_SLO_TERMS_MAX) {
			snprintf(err, errlen, "too many or too long terms");
			goto out;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		trim(item);
		if (!*item || parse_term(&s->t[s->n], item)) {
			snprintf(err, errlen,
				 "bad term '%.*s' (want e.g. p99<5ms, errors<0.1%%, rps>=900)",
				 (int)len, p);
			goto out;
		}
		s->n++;
		p += len;
		if (*p == ',' && *++p == '\0') {
			snprintf(err, errlen, "a comma with no term after it");
			goto out;
		}
	}
	rc = 0;
out:
	return rc;
}

double ld_slo_measure(const struct ld_slo_term *t, const struct ld_hdr *lat,
		      const struct ld_hdr *svc, double error_rate, double achieved_rps)
{
	const struct ld_hdr *h = t->service ? svc : lat;

	switch (t->metric) {
	case LD_SLO_ERRORS:
		return error_rate;
	case LD_SLO_RPS:
		return achieved_rps;
	case LD_SLO_MEAN:
		return ld_hdr_mean(h);
	case LD_SLO_MAX:
		return (double)ld_hdr_max(h);
	default:
		return (double)ld_hdr_percentile(h, t->pct);
	}
}

static bool holds(enum ld_slo_op op, double got, double limit)
{
	switch (op) {
	case LD_SLO_LT:
		return got < limit;
	case LD_SLO_LE:
		return got <= limit;
	case LD_SLO_GT:
		return got > limit;
	default:
		return got >= limit;
	}
}

int ld_slo_check(const struct ld_slo *s, const struct ld_hdr *lat, const struct ld_hdr *svc,
		 double error_rate, double achieved_rps, char *why, size_t whylen)
{
	int broken = 0;
	size_t used = 0;

	if (whylen)
		why[0] = '\0';
	for (int i = 0; i < s->n; i++) {
		const struct ld_slo_term *t = &s->t[i];
		double got = ld_slo_measure(t, lat, svc, error_rate, achieved_rps);
		bool latency = t->metric != LD_SLO_ERRORS && t->metric != LD_SLO_RPS;
		bool empty = latency && (t->service ? svc : lat)->total == 0;
		char fig[48];

		if (!empty && holds(t->op, got, t->value))
			continue;
		broken++;
		if (empty)
			snprintf(fig, sizeof(fig), "no answers");
		else if (t->metric == LD_SLO_ERRORS)
			snprintf(fig, sizeof(fig), "%.4g%%", got * 100);
		else if (t->metric == LD_SLO_RPS)
			snprintf(fig, sizeof(fig), "%.1f/s", got);
		else
			snprintf(fig, sizeof(fig), "%.3fms", got / 1000);
		if (used < whylen) {
			int w = snprintf(why + used, whylen - used, "%s%s broken: %s",
					 used ? "; " : "", t->text, fig);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	return broken;
}
