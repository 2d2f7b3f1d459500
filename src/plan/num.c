/*
 * num.c - parse and format the numbers of a capacity plan.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan/num.h"

/* A numeric literal longer than this is not a number anyone typed. */
#define NUM_TEXT_MAX 64

struct suffix {
	const char *name;
	double mul;
};

static const struct suffix count_suffixes[] = {
    {"", 1}, {"k", 1e3}, {"m", 1e6}, {"b", 1e9}, {"g", 1e9}, {"t", 1e12}, {"p", 1e15},
};

static const struct suffix byte_suffixes[] = {
    {"", 1},
    {"b", 1},
    {"k", 1e3},
    {"kb", 1e3},
    {"mb", 1e6},
    {"gb", 1e9},
    {"tb", 1e12},
    {"pb", 1e15},
    {"eb", 1e18},
    {"kib", 1024.0},
    {"mib", 1024.0 * 1024},
    {"gib", 1024.0 * 1024 * 1024},
    {"tib", 1024.0 * 1024 * 1024 * 1024},
    {"pib", 1024.0 * 1024 * 1024 * 1024 * 1024},
};

/* Durations are matched case-sensitively for "m" (minutes) vs "ms". */
static const struct suffix duration_suffixes[] = {
    {"", 1},   {"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},   {"s", 1},	 {"sec", 1},
    {"m", 60}, {"min", 60},  {"h", 3600},  {"hour", 3600}, {"d", 86400}, {"day", 86400},
};

static const struct suffix period_suffixes[] = {
    {"s", 1},
    {"sec", 1},
    {"second", 1},
    {"min", 60},
    {"minute", 60},
    {"h", 3600},
    {"hour", 3600},
    {"d", 86400},
    {"day", 86400},
    {"w", 7 * 86400.0},
    {"week", 7 * 86400.0},
    {"month", 0},
    {"mo", 0},
    {"y", 365.25 * 86400},
    {"year", 365.25 * 86400},
};

static const char *skip_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* scan_number finds the end of a plain decimal literal ([+-]d[.d][e[+-]d])
 * so strtod never sees hex floats, "inf" or "nan". Returns the length, 0 if
 * there is no literal. */
static size_t scan_number(const char *s)
{
	size_t i = 0, digits = 0;

	if (s[i] == '+' || s[i] == '-')
		i++;
	while (isdigit((unsigned char)s[i])) {
		i++;
		digits++;
	}
	if (s[i] == '.') {
		i++;
		while (isdigit((unsigned char)s[i])) {
			i++;
			digits++;
		}
	}
	if (!digits)
		return 0;
	if (s[i] == 'e' || s[i] == 'E') {
		size_t j = i + 1;

		if (s[j] == '+' || s[j] == '-')
			j++;
		if (isdigit((unsigned char)s[j])) {
			while (isdigit((unsigned char)s[j]))
				j++;
			i = j;
		}
	}
	return i;
}

static int find_suffix(const struct suffix *tab, size_t n, const char *s, size_t len,
		       int case_sensitive, double *mul)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strlen(tab[i].name) != len)
			continue;
		if (case_sensitive ? !strncmp(tab[i].name, s, len)
				   : !strncasecmp(tab[i].name, s, len)) {
			*mul = tab[i].mul;
			return 0;
		}
	}
	return -EINVAL;
}

/* trimmed_len is the length of s without trailing blanks. */
static size_t trimmed_len(const char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	return n;
}

static const char *kind_example(enum ld_num_kind kind)
{
	switch (kind) {
	case LD_NUM_COUNT:
		return "a count like 10M or 2.5e6";
	case LD_NUM_BYTES:
		return "a size like 1KB, 5MB or 1GiB";
	case LD_NUM_DURATION:
		return "a duration like 50ms, 2s or 1h";
	case LD_NUM_FRACTION:
		return "a fraction like 20% or 0.2";
	case LD_NUM_FACTOR:
		return "a factor like 3 or 3x";
	case LD_NUM_MONEY:
		return "an amount like 150 or $0.02";
	case LD_NUM_RATE:
		return "a rate like 1B/month, 50M/day or 400/s";
	}
	return "a number";
}

int ld_num_parse(const char *s, enum ld_num_kind kind, void *out, char *err, size_t errlen)
{
	char lit[NUM_TEXT_MAX + 1];
	const char *p, *suf, *slash;
	size_t n, len, suflen;
	double v, mul = 1, per = 0;
	int rc = -EINVAL;

	if (!s)
		goto bad;
	p = skip_blank(s);
	len = trimmed_len(p);
	if (kind == LD_NUM_MONEY && len && *p == '$') {
		p++;
		len--;
	}
	n = scan_number(p);
	if (!n || n > NUM_TEXT_MAX || n > len)
		goto bad;
	memcpy(lit, p, n);
	lit[n] = '\0';
	errno = 0;
	v = strtod(lit, NULL);
	if (errno || !isfinite(v))
		goto bad;
	suf = skip_blank(p + n);
	/* Blanks after the number may be the trailing ones already cut. */
	if (suf > p + len)
		suf = p + len;
	suflen = len - (size_t)(suf - p);

	switch (kind) {
	case LD_NUM_COUNT:
		if (find_suffix(count_suffixes, sizeof(count_suffixes) / sizeof(count_suffixes[0]),
				suf, suflen, 0, &mul))
			goto bad;
		break;
	case LD_NUM_BYTES:
		if (find_suffix(byte_suffixes, sizeof(byte_suffixes) / sizeof(byte_suffixes[0]),
				suf, suflen, 0, &mul))
			goto bad;
		break;
	case LD_NUM_DURATION:
		if (find_suffix(duration_suffixes,
				sizeof(duration_suffixes) / sizeof(duration_suffixes[0]), suf,
				suflen, 1, &mul))
			goto bad;
		break;
	case LD_NUM_FRACTION:
		if (suflen == 1 && *suf == '%')
			mul = 0.01;
		else if (suflen)
			goto bad;
		break;
	case LD_NUM_FACTOR:
		if (suflen == 1 && (*suf == 'x' || *suf == 'X'))
			mul = 1;
		else if (suflen)
			goto bad;
		break;
	case LD_NUM_MONEY:
		if (suflen)
			goto bad;
		break;
	case LD_NUM_RATE: {
		size_t cl;

		slash = memchr(suf, '/', suflen);
		cl = slash ? (size_t)(slash - suf) : suflen;
		while (cl && (suf[cl - 1] == ' ' || suf[cl - 1] == '\t'))
			cl--;
		if (find_suffix(count_suffixes, sizeof(count_suffixes) / sizeof(count_suffixes[0]),
				suf, cl, 0, &mul))
			goto bad;
		if (slash) {
			const char *ps = skip_blank(slash + 1);
			size_t pl;

			if (ps > p + len)
				ps = p + len;
			pl = len - (size_t)(ps - p);

			if (find_suffix(period_suffixes,
					sizeof(period_suffixes) / sizeof(period_suffixes[0]), ps,
					pl, 0, &per))
				goto bad;
		}
		break;
	}
	}
	v *= mul;
	if (!isfinite(v))
		goto bad;
	if (kind == LD_NUM_RATE) {
		struct ld_rate *r = out;

		r->n = v;
		r->per_s = per;
	} else {
		*(double *)out = v;
	}
	rc = 0;
	goto out;
bad:
	if (err && errlen)
		snprintf(err, errlen, "expected %s, got '%.40s'", kind_example(kind), s ? s : "");
out:
	return rc;
}

double ld_rate_per_s(const struct ld_rate *r, double seconds_per_month)
{
	double per = r->per_s > 0 ? r->per_s : seconds_per_month;

	return per > 0 ? r->n / per : 0;
}

/* fmt_scaled prints v with 3 significant digits and the largest prefix in
 * tab that keeps it >= 1. */
static char *fmt_scaled(double v, const char *const *names, const double *muls, size_t n,
			const char *sep, char *out, size_t outlen)
{
	double a = fabs(v);
	size_t i = 0;
	double x;

	if (!isfinite(v)) {
		snprintf(out, outlen, "-");
		return out;
	}
	while (i + 1 < n && a >= muls[i + 1] * 0.9995)
		i++;
	x = v / muls[i];
	if (fabs(x) >= 99.95 || (i == 0 && fabs(x - nearbyint(x)) < 1e-9))
		snprintf(out, outlen, "%.0f%s%s", x, *names[i] ? sep : "", names[i]);
	else if (fabs(x) >= 9.995)
		snprintf(out, outlen, "%.1f%s%s", x, *names[i] ? sep : "", names[i]);
	else
		snprintf(out, outlen, "%.2f%s%s", x, *names[i] ? sep : "", names[i]);
	return out;
}

char *ld_num_fmt_si(double v, char *out, size_t outlen)
{
	static const char *const names[] = {"", "K", "M", "B", "T", "P"};
	static const double muls[] = {1, 1e3, 1e6, 1e9, 1e12, 1e15};

	return fmt_scaled(v, names, muls, 6, "", out, outlen);
}

char *ld_num_fmt_bytes(double v, char *out, size_t outlen)
{
	static const char *const names[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
	static const double muls[] = {1, 1e3, 1e6, 1e9, 1e12, 1e15, 1e18};

	return fmt_scaled(v, names, muls, 7, " ", out, outlen);
}

char *ld_num_fmt_duration(double seconds, char *out, size_t outlen)
{
	static const char *const names[] = {"us", "ms", "s"};
	static const double muls[] = {1e-6, 1e-3, 1};

	if (seconds == 0) {
		snprintf(out, outlen, "0 s");
		return out;
	}
	return fmt_scaled(seconds, names, muls, 3, " ", out, outlen);
}
