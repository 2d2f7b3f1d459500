/*
 * points.h - (concurrency, throughput) points for `ladder plan fit`.
 *
 * Text form, one point per line: "N,X", "N X" or "N<TAB>X" (a CSV as
 * spreadsheets and `ladder bench` loops write it). Blank lines and lines
 * starting with '#' are skipped; so is a first line that does not start like a
 * number (a CSV header such as "concurrency,throughput"). Numbers take the suffixes of
 * num.h counts ("1.2K"). At most LD_USL_POINTS_MAX points, lines of at most
 * LD_POINTS_LINE_MAX bytes.
 *
 * Pure; errors (-EINVAL, -E2BIG) name NAME:LINE in err.
 */
#ifndef LD_PLAN_POINTS_H
#define LD_PLAN_POINTS_H

#include <stddef.h>

#define LD_POINTS_LINE_MAX 256

struct ld_points {
	double *n, *x; /* owned, count entries each */
	size_t count, cap;
};

void ld_points_init(struct ld_points *p);
void ld_points_release(struct ld_points *p);

/* ld_points_add appends one point; -E2BIG past LD_USL_POINTS_MAX. */
int ld_points_add(struct ld_points *p, double n, double x);

/* ld_points_parse_one parses "N,X" (or "N X") into *n and *x. */
int ld_points_parse_one(const char *s, double *n, double *x, char *err, size_t errlen);

/* ld_points_parse adds every point of a text of len bytes. */
int ld_points_parse(struct ld_points *p, const char *name, const char *text, size_t len, char *err,
		    size_t errlen);

#endif
