/*
 * usl.h - the Universal Scalability Law, fitted to measured points.
 *
 *   X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))
 *
 * N is concurrency (connections, threads, nodes), X throughput. lambda is the
 * throughput of one unit without interference, sigma the contention penalty
 * (a serial fraction, as in Amdahl's law) and kappa the coherency penalty
 * (pairwise crosstalk, which makes throughput fall past a peak at
 * N* = sqrt((1 - sigma) / kappa)).
 *
 * References: N. J. Gunther, "Guerrilla Capacity Planning" (Springer, 2007);
 * B. Schwartz, "Practical Scalability Analysis with the Universal
 * Scalability Law" (VividCortex, 2015), whose example data set is the unit
 * test here.
 *
 * The fit is non-linear least squares on the throughput residuals by
 * Levenberg-Marquardt, started from a linearised fit; sigma and kappa are
 * kept >= 0. Pure and deterministic; safe from any thread.
 */
#ifndef LD_PLAN_USL_H
#define LD_PLAN_USL_H

#include <stddef.h>

#define LD_USL_POINTS_MAX 10000

struct ld_usl {
	double sigma, kappa, lambda;
	double r2;     /* coefficient of determination on X */
	double rmse;   /* root mean squared residual, in X's unit */
	double peak_n; /* N*, infinite when kappa is 0 */
	double peak_x; /* X(N*), or the asymptote lambda / sigma when kappa is 0 */
	int iterations;
	const char *limit; /* "contention", "coherency" or "none" at the peak */
};

/* ld_usl_fit fits count points (n[i], x[i]): at least 3, with n >= 1 and
 * x > 0 finite, and at least 3 distinct n. Returns 0, or -EINVAL with the
 * reason (naming the point) in err. */
int ld_usl_fit(const double *n, const double *x, size_t count, struct ld_usl *u, char *err,
	       size_t errlen);

/* ld_usl_eval is X(N) for fitted parameters. */
double ld_usl_eval(const struct ld_usl *u, double n);

#endif
