/*
 * usl.c - Levenberg-Marquardt fit of the Universal Scalability Law.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "plan/usl.h"

#define LM_ITER_MAX 500

double ld_usl_eval(const struct ld_usl *u, double n)
{
	double d = 1 + u->sigma * (n - 1) + u->kappa * n * (n - 1);

	return u->lambda * n / d;
}

/* sse is the sum of squared residuals for parameters p = {lambda, sigma,
 * kappa}. */
static double sse(const double *p, const double *n, const double *x, size_t count)
{
	struct ld_usl u = {.lambda = p[0], .sigma = p[1], .kappa = p[2]};
	double s = 0;
	size_t i;

	for (i = 0; i < count; i++) {
		double r = x[i] - ld_usl_eval(&u, n[i]);

		s += r * r;
	}
	return s;
}

/* solve3 solves a 3x3 system by Gaussian elimination with partial pivoting;
 * -1 when it is singular. */
static int solve3(double a[3][3], double b[3], double out[3])
{
	int i, j, k, piv;

	for (i = 0; i < 3; i++) {
		piv = i;
		for (j = i + 1; j < 3; j++)
			if (fabs(a[j][i]) > fabs(a[piv][i]))
				piv = j;
		if (fabs(a[piv][i]) < 1e-300)
			return -1;
		if (piv != i) {
			for (k = 0; k < 3; k++) {
				double t = a[i][k];

				a[i][k] = a[piv][k];
				a[piv][k] = t;
			}
			double t = b[i];

			b[i] = b[piv];
			b[piv] = t;
		}
		for (j = i + 1; j < 3; j++) {
			double f = a[j][i] / a[i][i];

			for (k = i; k < 3; k++)
				a[j][k] -= f * a[i][k];
			b[j] -= f * b[i];
		}
	}
	for (i = 2; i >= 0; i--) {
		double s = b[i];

		for (k = i + 1; k < 3; k++)
			s -= a[i][k] * out[k];
		out[i] = s / a[i][i];
	}
	return 0;
}

/* start guesses lambda from the smallest N (throughput per unit before any
 * interference shows), then sigma and kappa by linear least squares on
 * lambda N / X - 1 = sigma (N - 1) + kappa N (N - 1). */
static void start(const double *n, const double *x, size_t count, double *p)
{
	double s11 = 0, s12 = 0, s22 = 0, t1 = 0, t2 = 0, det;
	size_t i, lo = 0;

	for (i = 1; i < count; i++)
		if (n[i] < n[lo])
			lo = i;
	p[0] = x[lo] / n[lo];
	for (i = 0; i < count; i++) {
		double a = n[i] - 1, b = n[i] * (n[i] - 1), y = p[0] * n[i] / x[i] - 1;

		s11 += a * a;
		s12 += a * b;
		s22 += b * b;
		t1 += a * y;
		t2 += b * y;
	}
	det = s11 * s22 - s12 * s12;
	p[1] = p[2] = 0;
	if (fabs(det) > 1e-300) {
		p[1] = (t1 * s22 - t2 * s12) / det;
		p[2] = (s11 * t2 - s12 * t1) / det;
	}
	if (!(p[1] >= 0))
		p[1] = 0;
	if (!(p[2] >= 0))
		p[2] = 0;
}

static int check_points(const double *n, const double *x, size_t count, char *err, size_t errlen)
{
	size_t i, j, distinct = 0;
	int rc = -EINVAL;

	if (count < 3) {
		snprintf(err, errlen,
			 "points: need at least 3 (concurrency, throughput) points, "
			 "got %zu",
			 count);
		goto out;
	}
	if (count > LD_USL_POINTS_MAX) {
		snprintf(err, errlen, "points: more than %d", LD_USL_POINTS_MAX);
		goto out;
	}
	for (i = 0; i < count; i++) {
		if (!isfinite(n[i]) || n[i] < 1 || n[i] > 1e9) {
			snprintf(err, errlen, "point %zu: concurrency %g must be in [1, 1e9]",
				 i + 1, n[i]);
			goto out;
		}
		if (!isfinite(x[i]) || x[i] <= 0 || x[i] > 1e15) {
			snprintf(err, errlen, "point %zu: throughput %g must be in (0, 1e15]",
				 i + 1, x[i]);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (n[j] == n[i])
				break;
		if (j == i)
			distinct++;
	}
	if (distinct < 3) {
		snprintf(err, errlen,
			 "points: need at least 3 distinct concurrency values, got "
			 "%zu",
			 distinct);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int ld_usl_fit(const double *n, const double *x, size_t count, struct ld_usl *u, char *err,
	       size_t errlen)
{
	double p[3], mu = 1e-3, cur, mean = 0, sst = 0, cmp_n, ts, tk;
	size_t i;
	int it, rc;

	rc = check_points(n, x, count, err, errlen);
	if (rc)
		goto out;
	start(n, x, count, p);
	cur = sse(p, n, x, count);
	for (it = 0; it < LM_ITER_MAX; it++) {
		double jtj[3][3] = {{0}}, jtr[3] = {0}, a[3][3], b[3], d[3], q[3], next;
		int k, l, improved = 0;

		for (i = 0; i < count; i++) {
			double den = 1 + p[1] * (n[i] - 1) + p[2] * n[i] * (n[i] - 1);
			double f = p[0] * n[i] / den, r = x[i] - f;
			double g[3] = {n[i] / den, -f * (n[i] - 1) / den,
				       -f * n[i] * (n[i] - 1) / den};

			for (k = 0; k < 3; k++) {
				jtr[k] += g[k] * r;
				for (l = 0; l < 3; l++)
					jtj[k][l] += g[k] * g[l];
			}
		}
		/* Marquardt's scaling (damping on the diagonal) copes with
		 * parameters six orders of magnitude apart (kappa ~ 1e-4,
		 * lambda ~ 1e2). */
		while (mu < 1e12) {
			for (k = 0; k < 3; k++) {
				for (l = 0; l < 3; l++)
					a[k][l] = jtj[k][l];
				a[k][k] += mu * (jtj[k][k] > 0 ? jtj[k][k] : 1e-12);
				b[k] = jtr[k];
			}
			if (solve3(a, b, d)) {
				mu *= 10;
				continue;
			}
			for (k = 0; k < 3; k++)
				q[k] = p[k] + d[k];
			if (q[1] < 0)
				q[1] = 0;
			if (q[2] < 0)
				q[2] = 0;
			if (!(q[0] > 0)) {
				mu *= 10;
				continue;
			}
			next = sse(q, n, x, count);
			if (next < cur) {
				improved = 1;
				break;
			}
			mu *= 10;
		}
		if (!improved)
			break;
		/* Stop once a step gains almost nothing. */
		if (cur - next <= 1e-15 * cur) {
			p[0] = q[0];
			p[1] = q[1];
			p[2] = q[2];
			cur = next;
			break;
		}
		p[0] = q[0];
		p[1] = q[1];
		p[2] = q[2];
		cur = next;
		mu = mu / 10 > 1e-12 ? mu / 10 : 1e-12;
	}
	u->lambda = p[0];
	u->sigma = p[1];
	u->kappa = p[2];
	u->iterations = it;
	for (i = 0; i < count; i++)
		mean += x[i];
	mean /= (double)count;
	for (i = 0; i < count; i++)
		sst += (x[i] - mean) * (x[i] - mean);
	u->r2 = sst > 0 ? 1 - cur / sst : 1;
	u->rmse = sqrt(cur / (double)count);
	cmp_n = n[0];
	for (i = 1; i < count; i++)
		if (n[i] > cmp_n)
			cmp_n = n[i];
	/* A kappa whose term is rounding noise even at the largest measured N
	 * (exact Amdahl data fits to kappa ~ 1e-15) is zero: otherwise it
	 * predicts a peak a million units out that no point supports. */
	if (u->kappa * cmp_n * (cmp_n - 1) < 1e-9 * (1 + u->sigma * (cmp_n - 1)))
		u->kappa = 0;
	if (u->kappa > 0 && u->sigma < 1) {
		u->peak_n = sqrt((1 - u->sigma) / u->kappa);
		u->peak_x = ld_usl_eval(u, u->peak_n);
	} else {
		u->peak_n = INFINITY;
		u->peak_x = u->sigma > 0 ? u->lambda / u->sigma : INFINITY;
	}
	/* Compare the two penalty terms where it matters: at the peak, or at
	 * the largest measured N when there is none. */
	if (isfinite(u->peak_n))
		cmp_n = u->peak_n;
	ts = u->sigma * (cmp_n - 1);
	tk = u->kappa * cmp_n * (cmp_n - 1);
	if (ts == 0 && tk == 0)
		u->limit = "none";
	else
		u->limit = ts >= tk ? "contention" : "coherency";
	rc = 0;
out:
	return rc;
}
