/*
 * erlang.c - M/M/c queues: Erlang B and C, response-time tails, sizing.
 */
#include <errno.h>
#include <math.h>

#include "plan/erlang.h"

double ld_erlang_b(double c, double a)
{
	double b = 1, k;

	/* The recursion never overflows, unlike the textbook sum of A^k / k!,
	 * which is what makes it usable for thousands of servers. */
	for (k = 1; k <= c; k++)
		b = a * b / (k + a * b);
	return b;
}

double ld_erlang_c(double c, double a)
{
	double b, rho;

	if (a >= c)
		return 1;
	if (a <= 0)
		return 0;
	b = ld_erlang_b(c, a);
	rho = a / c;
	return b / (1 - rho * (1 - b));
}

int ld_mmc_eval(double lambda, double service, double c, struct ld_mmc *m)
{
	int rc = -EINVAL;

	if (!(lambda > 0) || !(service > 0) || !(c >= 1) || c > LD_ERLANG_C_MAX ||
	    !isfinite(lambda) || !isfinite(service) || c != floor(c))
		goto out;
	m->lambda = lambda;
	m->service = service;
	m->c = c;
	m->a = lambda * service;
	m->rho = m->a / c;
	m->pwait = ld_erlang_c(c, m->a);
	if (m->a >= c) {
		m->wq = INFINITY;
	} else {
		m->wq = m->pwait / (c / service - lambda);
	}
	m->w = m->wq + service;
	m->lq = ld_little(lambda, m->wq);
	m->l = ld_little(lambda, m->w);
	rc = 0;
out:
	return rc;
}

double ld_mmc_wait_tail(const struct ld_mmc *m, double t)
{
	double theta;

	if (m->a >= m->c)
		return 1;
	if (t < 0)
		return 1;
	theta = m->c / m->service - m->lambda;
	return m->pwait * exp(-theta * t);
}

double ld_mmc_resp_tail(const struct ld_mmc *m, double t)
{
	double mu = 1 / m->service, theta, h;

	if (m->a >= m->c)
		return 1;
	if (t <= 0)
		return 1;
	theta = m->c * mu - m->lambda;
	/* Given that it waits, a request spends Exp(theta) + Exp(mu): the
	 * hypoexponential tail, with the Erlang-2 limit when the rates meet. */
	if (fabs(theta - mu) < 1e-9 * mu)
		h = (1 + mu * t) * exp(-mu * t);
	else
		h = (theta * exp(-mu * t) - mu * exp(-theta * t)) / (theta - mu);
	return (1 - m->pwait) * exp(-mu * t) + m->pwait * h;
}

double ld_mmc_resp_quantile(const struct ld_mmc *m, double p)
{
	double lo = 0, hi = m->service, q = 1 - p;
	int i;

	if (m->a >= m->c || !(p > 0 && p < 1))
		return INFINITY;
	while (ld_mmc_resp_tail(m, hi) > q && hi < 1e12)
		hi *= 2;
	/* The tail is strictly decreasing in t, so bisection converges. */
	for (i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
		double mid = (lo + hi) / 2;

		if (ld_mmc_resp_tail(m, mid) > q)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* meets reports whether the system of x units keeps the p-quantile of
 * response time <= slo: x servers sharing one queue (k == 0), or x nodes of
 * k servers each with lambda split evenly over them. */
static int meets(double lambda, double service, double k, double x, double slo, double p,
		 struct ld_mmc *m)
{
	double per = k > 0 ? lambda / x : lambda, c = k > 0 ? k : x;

	if (ld_mmc_eval(per, service, c, m))
		return 0;
	if (m->a >= c)
		return 0;
	return ld_mmc_resp_tail(m, slo) <= 1 - p;
}

/* search finds the least x >= lo that meets the objective: double an upper
 * bound, then bisect (more units never make the tail worse). */
static int search(double lambda, double service, double k, double slo, double p, double *x,
		  struct ld_mmc *m)
{
	double lo = floor(lambda * service / (k > 0 ? k : 1)) + 1, hi, mid;
	int rc = -EINVAL;

	if (!(lambda > 0) || !(service > 0) || !(slo > 0) || !(p > 0 && p < 1) ||
	    !isfinite(lambda) || !isfinite(service) || !isfinite(slo) || k > LD_ERLANG_C_MAX)
		goto out;
	/* With endless servers nobody waits and T is just the service time. */
	rc = -ERANGE;
	if (exp(-slo / service) > 1 - p)
		goto out;
	hi = lo;
	while (!meets(lambda, service, k, hi, slo, p, m)) {
		if (hi * (k > 0 ? k : 1) * 2 > LD_ERLANG_C_MAX)
			goto out;
		lo = hi + 1;
		hi *= 2;
	}
	while (lo < hi) {
		mid = floor((lo + hi) / 2);
		if (meets(lambda, service, k, mid, slo, p, m))
			hi = mid;
		else
			lo = mid + 1;
	}
	/* Leave m describing the answer, not the last probe. */
	meets(lambda, service, k, hi, slo, p, m);
	*x = hi;
	rc = 0;
out:
	return rc;
}

int ld_mmc_size(double lambda, double service, double slo, double p, struct ld_mmc *m)
{
	double c;

	return search(lambda, service, 0, slo, p, &c, m);
}

int ld_mmc_size_nodes(double lambda, double service, double k, double slo, double p, double *n,
		      struct ld_mmc *m)
{
	int rc = -EINVAL;

	if (k >= 1 && k == floor(k))
		rc = search(lambda, service, k, slo, p, n, m);
	return rc;
}

double ld_little(double lambda, double w)
{
	return lambda * w;
}
