/*
 * points.c - parse measured (concurrency, throughput) points.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/num.h"
#include "plan/points.h"

#include "base/lines.h"
#include "plan/usl.h"

void ld_points_init(struct ld_points *p)
{
	memset(p, 0, sizeof(*p));
}

void ld_points_release(struct ld_points *p)
{
	free(p->n);
	free(p->x);
	ld_points_init(p);
}

int ld_points_add(struct ld_points *p, double n, double x)
{
	double *nn, *nx;
	size_t cap;
	int rc = 0;

	if (p->count >= LD_USL_POINTS_MAX) {
		rc = -E2BIG;
		goto out;
	}
	if (p->count == p->cap) {
		cap = p->cap ? p->cap * 2 : 16;
		nn = realloc(p->n, cap * sizeof(double));
		if (!nn) {
			rc = -ENOMEM;
			goto out;
		}
		p->n = nn;
		nx = realloc(p->x, cap * sizeof(double));
		if (!nx) {
			rc = -ENOMEM;
			goto out;
		}
		p->x = nx;
		p->cap = cap;
	}
	p->n[p->count] = n;
	p->x[p->count] = x;
	p->count++;
out:
	return rc;
}

int ld_points_parse_one(const char *s, double *n, double *x, char *err, size_t errlen)
{
	char buf[LD_POINTS_LINE_MAX + 1], why[128];
	char *sep;
	size_t len = strlen(s);
	int rc = -EINVAL;

	if (len > LD_POINTS_LINE_MAX) {
		snprintf(err, errlen, "point longer than %d bytes", LD_POINTS_LINE_MAX);
		rc = -E2BIG;
		goto out;
	}
	memcpy(buf, s, len + 1);
	sep = strpbrk(buf, ",;\t");
	if (!sep) {
		/* "N X": the first run of blanks after a token separates. */
		sep = buf;
		while (*sep == ' ')
			sep++;
		sep = strchr(sep, ' ');
	}
	if (!sep) {
		snprintf(err, errlen, "expected 'concurrency,throughput', got '%.40s'", s);
		goto out;
	}
	*sep = '\0';
	if (ld_num_parse(buf, LD_NUM_COUNT, n, why, sizeof(why))) {
		snprintf(err, errlen, "concurrency: %s", why);
		goto out;
	}
	if (ld_num_parse(sep + 1, LD_NUM_COUNT, x, why, sizeof(why))) {
		snprintf(err, errlen, "throughput: %s", why);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* is_header: a line that does not start like a number (a CSV header). */
static int is_header(const char *s)
{
	return !(isdigit((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.');
}

int ld_points_parse(struct ld_points *p, const char *name, const char *text, size_t len, char *err,
		    size_t errlen)
{
	char line[LD_POINTS_LINE_MAX + 1], why[192];
	struct ld_lines lines;
	size_t seen = 0;
	int rc = 0;

	ld_lines_init(&lines, name, text, len);
	while ((rc = ld_lines_next(&lines, line, LD_POINTS_LINE_MAX, err, errlen)) == 1) {
		size_t n = strlen(line);
		double cn, cx;
		char *s;

		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		if (seen++ == 0 && is_header(s))
			continue;
		rc = ld_points_parse_one(s, &cn, &cx, why, sizeof(why));
		if (!rc)
			rc = ld_points_add(p, cn, cx);
		if (rc == -E2BIG)
			snprintf(why, sizeof(why), "more than %d points", LD_USL_POINTS_MAX);
		else if (rc == -ENOMEM)
			snprintf(why, sizeof(why), "out of memory");
		if (rc) {
			snprintf(err, errlen, "%s:%zu: %s", name, lines.lineno, why);
			goto out;
		}
	}
out:
	return rc;
}
