/*
 * test_plan_queue.c - the planner's models: the Universal Scalability Law
 * fit against the published example, and M/M/c (Erlang C) against textbook
 * values, a second independent formula and a simulation.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan/erlang.h"
#include "plan/usl.h"
#include "unit.h"

/* --- USL --- */

static void test_usl_published_example(void)
{
	/* B. Schwartz, "Practical Scalability Analysis with the Universal
	 * Scalability Law": sigma 0.02773, kappa 0.0001043, lambda 89.99,
	 * peak about 1884 at N = 96. */
	static const double n[] = {1, 18, 36, 72, 108, 144, 216};
	static const double x[] = {65, 996, 1652, 1853, 1829, 1775, 1702};
	struct ld_usl u;
	char err[256];

	CHECK_INT(ld_usl_fit(n, x, 7, &u, err, sizeof(err)), 0);
	CHECK_DBL(u.sigma, 0.02773, 0.00005);
	CHECK_DBL(u.kappa, 0.0001043, 0.0000005);
	CHECK_DBL(u.lambda, 89.99, 0.05);
	CHECK_DBL(u.peak_n, 96, 1);
	CHECK_DBL(u.peak_x, 1884, 1);
	CHECK(u.r2 > 0.98 && u.r2 < 1);
	CHECK_STR(u.limit, "contention");
	CHECK_DBL(ld_usl_eval(&u, 1), u.lambda, 1e-9);
}

static void test_usl_recovers_exact_parameters(void)
{
	struct ld_usl truth = {.sigma = 0.05, .kappa = 0.001, .lambda = 100}, u;
	double n[40], x[40];
	char err[256];
	int i;

	for (i = 0; i < 40; i++) {
		n[i] = 1 + 2 * i;
		x[i] = ld_usl_eval(&truth, n[i]);
	}
	CHECK_INT(ld_usl_fit(n, x, 40, &u, err, sizeof(err)), 0);
	CHECK_DBL(u.sigma, 0.05, 1e-6);
	CHECK_DBL(u.kappa, 0.001, 1e-8);
	CHECK_DBL(u.lambda, 100, 1e-4);
	CHECK_DBL(u.r2, 1, 1e-9);
	CHECK_DBL(u.peak_n, sqrt(0.95 / 0.001), 1e-3);
	/* At the peak the coherency term 0.001 x 30.8 x 29.8 = 0.92 is
	 * smaller than contention 0.05 x 29.8 = 1.49. */
	CHECK_STR(u.limit, "contention");

	/* Strong crosstalk, little serialisation: coherency limits. */
	truth.sigma = 0.001;
	truth.kappa = 0.002;
	for (i = 0; i < 40; i++)
		x[i] = ld_usl_eval(&truth, n[i]);
	CHECK_INT(ld_usl_fit(n, x, 40, &u, err, sizeof(err)), 0);
	CHECK_DBL(u.kappa, 0.002, 1e-7);
	CHECK_STR(u.limit, "coherency");
}

static void test_usl_amdahl_has_no_peak(void)
{
	struct ld_usl truth = {.sigma = 0.1, .kappa = 0, .lambda = 50}, u;
	double n[] = {1, 2, 4, 8, 16, 32, 64}, x[7];
	char err[256];
	int i;

	for (i = 0; i < 7; i++)
		x[i] = ld_usl_eval(&truth, n[i]);
	CHECK_INT(ld_usl_fit(n, x, 7, &u, err, sizeof(err)), 0);
	CHECK_DBL(u.sigma, 0.1, 1e-6);
	CHECK(u.kappa == 0);
	CHECK(isinf(u.peak_n));
	CHECK_DBL(u.peak_x, 500, 0.01);
}

static void test_usl_rejects_bad_points(void)
{
	double n[] = {1, 2, 3, 4}, x[] = {10, 19, 27, 34};
	double nd[] = {1, 1, 2, 2}, nbad[] = {1, 0.5, 3, 4}, xbad[] = {10, -1, 27, 34};
	struct ld_usl u;
	char err[256];

	CHECK_INT(ld_usl_fit(n, x, 2, &u, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "at least 3") != NULL);
	CHECK_INT(ld_usl_fit(nd, x, 4, &u, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "distinct") != NULL);
	CHECK_INT(ld_usl_fit(nbad, x, 4, &u, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "point 2") != NULL && strstr(err, "concurrency") != NULL);
	CHECK_INT(ld_usl_fit(n, xbad, 4, &u, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "point 2") != NULL && strstr(err, "throughput") != NULL);
	x[3] = NAN;
	CHECK_INT(ld_usl_fit(n, x, 4, &u, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "point 4") != NULL);
}

/* --- Erlang C --- */

/* erlang_c_direct is the textbook formula summed in log space (lgamma),
 * independent of the recursion the planner uses. */
static double erlang_c_direct(int c, double a)
{
	double top = c * log(a) - lgamma(c + 1.0) + log(c / (c - a));
	double mx = top, sum = 0;
	int k;

	for (k = 0; k < c; k++)
		mx = fmax(mx, k * log(a) - lgamma(k + 1.0));
	for (k = 0; k < c; k++)
		sum += exp(k * log(a) - lgamma(k + 1.0) - mx);
	sum += exp(top - mx);
	return exp(top - mx) / sum;
}

static void test_erlang_textbook_values(void)
{
	/* Two servers offered one erlang: C = A^2/2! * 2 / (1 + A + 2) = 1/3. */
	CHECK_DBL(ld_erlang_c(2, 1), 1.0 / 3, 1e-12);
	/* Three servers, two erlangs: 4/9. */
	CHECK_DBL(ld_erlang_c(3, 2), 4.0 / 9, 1e-12);
	/* One server: the probability of waiting is the utilisation. */
	CHECK_DBL(ld_erlang_c(1, 0.75), 0.75, 1e-12);
	/* Erlang B table: 10 erlangs on 10 lines block 21.46% of calls. */
	CHECK_DBL(ld_erlang_b(10, 10), 0.21458, 0.00001);
	/* Overloaded: everybody waits. */
	CHECK_DBL(ld_erlang_c(5, 5), 1, 0);
	CHECK_DBL(ld_erlang_c(5, 7), 1, 0);
}

static void test_erlang_c_matches_direct_formula(void)
{
	static const struct {
		int c;
		double a;
	} cases[] = {{2, 1}, {5, 3.5}, {10, 8}, {24, 20}, {50, 45}, {200, 180}, {500, 480}};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_DBL(ld_erlang_c(cases[i].c, cases[i].a),
			  erlang_c_direct(cases[i].c, cases[i].a), 1e-10);
}

static void test_mmc_mm1_closed_forms(void)
{
	struct ld_mmc m;

	/* M/M/1 at rho 0.8, service 10 ms: Wq = rho/(mu - lambda) = 40 ms,
	 * W = 1/(mu - lambda) = 50 ms, and T is exponential, so its p99 is
	 * W ln 100. */
	CHECK_INT(ld_mmc_eval(80, 0.010, 1, &m), 0);
	CHECK_DBL(m.pwait, 0.8, 1e-12);
	CHECK_DBL(m.wq, 0.040, 1e-12);
	CHECK_DBL(m.w, 0.050, 1e-12);
	CHECK_DBL(m.l, 4, 1e-9); /* Little: 80/s x 50 ms */
	CHECK_DBL(m.lq, 3.2, 1e-9);
	CHECK_DBL(ld_mmc_resp_tail(&m, 0.1), exp(-2), 1e-12);
	CHECK_DBL(ld_mmc_resp_quantile(&m, 0.99), 0.050 * log(100), 1e-9);
	CHECK_DBL(ld_mmc_wait_tail(&m, 0.1), 0.8 * exp(-20 * 0.1), 1e-12);
	CHECK_DBL(ld_little(80, 0.05), 4, 1e-12);
	CHECK_INT(ld_mmc_eval(0, 0.01, 1, &m), -EINVAL);
	CHECK_INT(ld_mmc_eval(10, 0.01, 0, &m), -EINVAL);
}

static void test_mmc_tail_integrates_to_mean(void)
{
	struct ld_mmc m;
	double t, dt = 1e-5, sum = 0;

	/* E[T] = integral of P(T > t): an independent check of the tail. Case
	 * theta != mu and theta == mu (c mu - lambda = mu: 3 x 10 - 20 = 10). */
	CHECK_INT(ld_mmc_eval(700, 0.01, 8, &m), 0);
	for (t = 0; t < 2; t += dt)
		sum += (ld_mmc_resp_tail(&m, t) + ld_mmc_resp_tail(&m, t + dt)) / 2 * dt;
	CHECK_DBL(sum, m.w, 1e-6);
	CHECK_INT(ld_mmc_eval(20, 0.1, 3, &m), 0);
	sum = 0;
	for (t = 0; t < 20; t += 1e-4)
		sum += (ld_mmc_resp_tail(&m, t) + ld_mmc_resp_tail(&m, t + 1e-4)) / 2 * 1e-4;
	CHECK_DBL(sum, m.w, 1e-6);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
	/* xorshift64*: deterministic, good enough for a queue simulation. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return ((rng_state * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0) + 1e-300;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void test_mmc_matches_simulation(void)
{
	enum { N = 200000, C = 4 };
	double *resp = malloc(N * sizeof(double)), free_at[C] = {0}, t = 0, sum = 0;
	double lambda = 300, s = 0.01; /* A = 3 erlangs on 4 servers */
	struct ld_mmc m;
	int i, k, best;

	CHECK(resp != NULL);
	if (!resp)
		return;
	/* FCFS multi-server: each arrival takes the server free first. */
	for (i = 0; i < N; i++) {
		double start, svc;

		t += -log(uniform()) / lambda;
		svc = -log(uniform()) * s;
		for (best = 0, k = 1; k < C; k++)
			if (free_at[k] < free_at[best])
				best = k;
		start = fmax(t, free_at[best]);
		free_at[best] = start + svc;
		resp[i] = free_at[best] - t;
		sum += resp[i];
	}
	qsort(resp, N, sizeof(double), cmp_double);
	CHECK_INT(ld_mmc_eval(lambda, s, C, &m), 0);
	CHECK_DBL(sum / N, m.w, 0.03 * m.w);
	CHECK_DBL(resp[(int)(0.99 * N)], ld_mmc_resp_quantile(&m, 0.99),
		  0.05 * ld_mmc_resp_quantile(&m, 0.99));
	free(resp);
}

static void test_mmc_sizing(void)
{
	struct ld_mmc m, prev;
	double n;

	/* 10,000 RPS x 50 ms = 500 erlangs; p99 within 250 ms. */
	CHECK_INT(ld_mmc_size(10000, 0.050, 0.250, 0.99, &m), 0);
	CHECK(m.c > 500);
	CHECK(ld_mmc_resp_quantile(&m, 0.99) <= 0.250 + 1e-9);
	/* The smallest: one server fewer misses it. */
	CHECK_INT(ld_mmc_eval(10000, 0.050, m.c - 1, &prev), 0);
	CHECK(prev.a >= prev.c || ld_mmc_resp_quantile(&prev, 0.99) > 0.250);
	/* Exponential service alone has p99 = 50 ms x ln 100 = 230 ms: no
	 * server count reaches 200 ms. */
	CHECK_INT(ld_mmc_size(10000, 0.050, 0.200, 0.99, &m), -ERANGE);

	/* Nodes of 8 servers, each its own queue. */
	CHECK_INT(ld_mmc_size_nodes(10000, 0.050, 8, 0.300, 0.99, &n, &m), 0);
	CHECK(n * 8 > 500);
	CHECK(ld_mmc_resp_quantile(&m, 0.99) <= 0.300 + 1e-9);
	CHECK_INT(ld_mmc_eval(10000 / (n - 1), 0.050, 8, &prev), 0);
	CHECK(prev.a >= prev.c || ld_mmc_resp_quantile(&prev, 0.99) > 0.300);
	CHECK_INT(ld_mmc_size_nodes(10000, 0.050, 0, 0.3, 0.99, &n, &m), -EINVAL);
}

int main(void)
{
	RUN(test_usl_published_example);
	RUN(test_usl_recovers_exact_parameters);
	RUN(test_usl_amdahl_has_no_peak);
	RUN(test_usl_rejects_bad_points);
	RUN(test_erlang_textbook_values);
	RUN(test_erlang_c_matches_direct_formula);
	RUN(test_mmc_mm1_closed_forms);
	RUN(test_mmc_tail_integrates_to_mean);
	RUN(test_mmc_matches_simulation);
	RUN(test_mmc_sizing);
	return unit_finish();
}
