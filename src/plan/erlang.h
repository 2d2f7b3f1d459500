/*
 * erlang.h - queueing models for sizing: M/M/c (Erlang C) and Little's law.
 *
 * An M/M/c queue has Poisson arrivals at rate lambda, c servers (cores,
 * workers, connections) and exponential service times of mean s, so the
 * offered load is A = lambda s erlangs and each server is busy rho = A / c.
 * With C(c, A) the probability that a request waits (Erlang C):
 *
 *   P(W > t) = C e^{-(c mu - lambda) t}         (mu = 1 / s)
 *   E[W]     = C / (c mu - lambda)
 *   T = W + S, and P(T > t) follows in closed form (a waiting time that is 0
 *   with probability 1 - C, else exponential, plus an exponential service).
 *
 * References: A. K. Erlang (1917); L. Kleinrock, Queueing Systems vol. 1
 * (1975), section 3.5; J. D. C. Little, "A proof for the queuing formula
 * L = lambda W", Operations Research 9 (1961).
 *
 * Pure functions, safe from any thread. Functions returning int give 0,
 * -EINVAL for inputs outside their domain or -ERANGE when no server count up
 * to the limit meets the objective.
 */
#ifndef LD_PLAN_ERLANG_H
#define LD_PLAN_ERLANG_H

/* Server counts above this are refused: no plan needs them, and it bounds
 * the O(c) recursion. */
#define LD_ERLANG_C_MAX 10000000.0

/* ld_erlang_b is the blocking probability of c servers offered A erlangs
 * (computed by the stable recursion B(k) = A B(k-1) / (k + A B(k-1))). */
double ld_erlang_b(double c, double a);

/* ld_erlang_c is the probability of waiting; 1 when A >= c (unstable). */
double ld_erlang_c(double c, double a);

struct ld_mmc {
	double lambda;	/* arrivals per second */
	double service; /* mean service time, seconds */
	double c;	/* servers */
	double a;	/* offered load, erlangs */
	double rho;	/* utilisation of each server */
	double pwait;	/* Erlang C */
	double wq;	/* mean wait in queue, seconds */
	double w;	/* mean response time (wait + service), seconds */
	double lq;	/* mean number waiting (Little: lambda wq) */
	double l;	/* mean number in system (Little: lambda w) */
};

/* ld_mmc_eval fills m for lambda > 0, service > 0 and c >= 1; -EINVAL
 * otherwise. An unstable queue (A >= c) is reported with pwait 1 and
 * infinite waits, not as an error. */
int ld_mmc_eval(double lambda, double service, double c, struct ld_mmc *m);

/* ld_mmc_wait_tail is P(W > t); ld_mmc_resp_tail is P(T > t), T = W + S. */
double ld_mmc_wait_tail(const struct ld_mmc *m, double t);
double ld_mmc_resp_tail(const struct ld_mmc *m, double t);

/* ld_mmc_resp_quantile is the p-quantile (0 < p < 1) of the response time,
 * infinite for an unstable queue. */
double ld_mmc_resp_quantile(const struct ld_mmc *m, double p);

/* ld_mmc_size finds the smallest c whose p-quantile of response time is at
 * most slo, and fills m for it. -ERANGE when even infinitely many servers
 * cannot (the service time alone exceeds slo at p: s ln(1/(1-p)) > slo). */
int ld_mmc_size(double lambda, double service, double slo, double p, struct ld_mmc *m);

/* ld_mmc_size_nodes splits lambda evenly over n nodes of k servers each
 * (each its own M/M/k queue, as behind a round-robin balancer) and finds the
 * smallest n meeting the objective; m describes one node. */
int ld_mmc_size_nodes(double lambda, double service, double k, double slo, double p, double *n,
		      struct ld_mmc *m);

/* ld_little is Little's law L = lambda W: the mean number in a system. */
double ld_little(double lambda, double w);

#endif
