/*
 * verdict.c - which resource limits the server, from the profile's steps.
 *
 * The order of the rules matters: a busy generator makes every other figure
 * a measurement of the generator, so it is checked first; then the server's
 * resources compete on utilisation, the busiest at or past the threshold
 * winning. When none is saturated but latency rose, the busiest one is named
 * as the likely limit, and when latency did not rise either, nothing is.
 */
#include "bench/verdict.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const stage_names[LD_ST_COUNT] = {
    [LD_ST_READ] = "read",
    [LD_ST_QUEUE] = "queue",
    [LD_ST_AUTH] = "auth",
    [LD_ST_HANDLER] = "handler",
    [LD_ST_HASH] = "hash",
    [LD_ST_CACHE] = "cache",
    [LD_ST_STORE_QUEUE] = "store_queue",
    [LD_ST_STORE_COMMIT] = "store_commit",
    [LD_ST_STORE_POOL] = "store_pool",
    [LD_ST_STORE] = "store",
    [LD_ST_RENDER] = "render",
    [LD_ST_WRITE] = "write",
};

/* What each stage is, in the words of the verdict line. */
static const char *const stage_words[LD_ST_COUNT] = {
    [LD_ST_READ] = "reading requests",
    [LD_ST_QUEUE] = "admission",
    [LD_ST_AUTH] = "token checks",
    [LD_ST_HANDLER] = "handler logic (routing, JSON parsing, validation)",
    [LD_ST_HASH] = "password hashing",
    [LD_ST_CACHE] = "the cache",
    [LD_ST_STORE_QUEUE] = "the writer queue",
    [LD_ST_STORE_COMMIT] = "commits",
    [LD_ST_STORE_POOL] = "waiting for a database connection",
    [LD_ST_STORE] = "store calls",
    [LD_ST_RENDER] = "JSON and gzip",
    [LD_ST_WRITE] = "writing responses",
};

const char *ld_prof_stage_name(int stage)
{
	return stage >= 0 && stage < LD_ST_COUNT ? stage_names[stage] : "?";
}

const char *ld_prof_kind_name(enum ld_prof_kind k)
{
	switch (k) {
	case LD_PROF_GENERATOR:
		return "load generator";
	case LD_PROF_APP_CPU:
		return "app CPU";
	case LD_PROF_COMMIT:
		return "commit latency";
	case LD_PROF_DATABASE:
		return "database";
	case LD_PROF_DISK:
		return "disk";
	case LD_PROF_HOST_CPU:
		return "host CPU";
	case LD_PROF_INCONCLUSIVE:
		return "inconclusive";
	case LD_PROF_NONE:
		break;
	}
	return "none";
}

double ld_prof_share(const struct ld_prof_step *s, int stage)
{
	return s->total_ns > 0 ? s->stage_ns[stage] / s->total_ns : 0;
}

static void note(struct ld_prof_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct ld_prof_verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (v->nnotes == LD_PROF_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(v->notes[v->nnotes++], sizeof(v->notes[0]), fmt, ap);
	va_end(ap);
}

/* pinned_foreign is the CPU of the server's own cores spent on other
 * processes. */
static double pinned_foreign(const struct ld_prof_step *s)
{
	double f = s->server_pinned * s->server_cores_busy - s->server_cpu - s->server_cores_irq;

	return f > 0 ? f : 0;
}

static double app_util(const struct ld_prof_step *s)
{
	double u = s->loop_busy > s->loop_cpu ? s->loop_busy : s->loop_cpu;

	/* Capped by a cgroup: what it used of what it was given. */
	if (s->server_quota > 0 && s->server_cpu / s->server_quota > u)
		u = s->server_cpu / s->server_quota;
	if (s->server_quota > 0 && s->server_throttled > u)
		u = s->server_throttled;
	/* Pinned: its cores, full with its own work or interrupts (full with
	 * other processes' is the host's verdict). */
	if (s->server_pinned && pinned_foreign(s) < 0.25 * s->server_pinned &&
	    s->server_cores_busy > u)
		u = s->server_cores_busy;
	return u;
}

static double gen_foreign(const struct ld_prof_step *s)
{
	double f = s->gen_pinned * s->gen_cores_busy - s->gen_cpu - s->gen_cores_irq;

	return f > 0 ? f : 0;
}

static double gen_util(const struct ld_prof_step *s)
{
	double u = s->gen_allowed > 0 ? s->gen_cpu / s->gen_allowed : 0;

	/* Throttled in most periods: it hit its cap, even when a busy host
	 * kept it from using all of it. */
	if (s->gen_quota > 0 && s->gen_throttled > u)
		u = s->gen_throttled;
	/* Pinned: its cores full with its own work and the interrupts of
	 * its sockets. */
	if (s->gen_pinned && gen_foreign(s) < 0.25 * s->gen_pinned && s->gen_cores_busy > u)
		u = s->gen_cores_busy;

	return u > s->gen_thread_max ? u : s->gen_thread_max;
}

/* top_stages writes the two largest stage shares: "61% of request time in
 * JSON and gzip, 20% in store calls". */
static void top_stages(const struct ld_prof_step *s, char *out, size_t n)
{
	int a = -1, b = -1;

	for (int k = 0; k < LD_ST_COUNT; k++) {
		double sh = ld_prof_share(s, k);
		if (a < 0 || sh > ld_prof_share(s, a)) {
			b = a;
			a = k;
		} else if (b < 0 || sh > ld_prof_share(s, b)) {
			b = k;
		}
	}
	if (s->total_ns <= 0 || a < 0) {
		snprintf(out, n, "no server stage times");
		return;
	}
	snprintf(out, n, "%.0f%% of request time in %s, %.0f%% in %s", 100 * ld_prof_share(s, a),
		 stage_words[a], 100 * ld_prof_share(s, b), stage_words[b]);
}

static void shares_check(const struct ld_prof_step *s, struct ld_prof_verdict *v)
{
	double sum = 0;

	for (int k = 0; k < LD_ST_COUNT; k++)
		sum += s->stage_ns[k];
	v->shares_sum = s->total_ns > 0 ? sum / s->total_ns : 0;
	v->shares_ok = s->total_ns > 0 && fabs(v->shares_sum - 1) <= LD_PROF_SHARE_TOL;
	if (s->total_ns <= 0)
		note(v, "stage shares: the server finished no request in the step");
	else if (v->shares_ok)
		note(v,
		     "stage shares add up to %.1f%% of the server's time (%lld requests, mean "
		     "%.3f ms)",
		     100 * v->shares_sum, (long long)s->requests,
		     s->requests ? s->total_ns / (double)s->requests / 1e6 : 0);
	else
		note(v,
		     "stage shares do NOT add up: %.1f%% of the server's time (%lld requests): "
		     "%.3f ms per request %s",
		     100 * v->shares_sum, (long long)s->requests,
		     s->requests ? fabs(s->total_ns - sum) / (double)s->requests / 1e6 : 0,
		     sum < s->total_ns ? "falls between stages" : "is counted twice");
}

/* law compares a measured utilisation with throughput x service time. */
static void law(struct ld_prof_verdict *v, const char *what, double measured, double x, double s_ns,
		const char *why_more, const char *why_less)
{
	double pred = x * s_ns / 1e9, big = measured > pred ? measured : pred;

	if (big < 0.05)
		return; /* too idle for the comparison to mean anything */
	/* Relative and absolute: 6% against 7% is noise, not a finding. */
	if (fabs(measured - pred) / big <= LD_PROF_LAW_TOL || fabs(measured - pred) < 0.05) {
		note(v, "utilisation law holds for the %s: %.0f%% busy, %.0f/s x %.1f us = %.0f%%",
		     what, 100 * measured, x, s_ns / 1e3, 100 * pred);
		return;
	}
	v->law_ok = false;
	note(v,
	     "utilisation law disagrees for the %s: %.0f%% busy measured, but %.0f/s x %.1f us "
	     "= %.0f%%: %s",
	     what, 100 * measured, x, s_ns / 1e3, 100 * pred,
	     measured > pred ? why_more : why_less);
}

static void law_checks(const struct ld_prof_step *steps, int n, const struct ld_prof_step *s,
		       struct ld_prof_verdict *v)
{
	const struct ld_prof_step *s0 = &steps[0];
	char more[200];
	double x;

	v->law_ok = true;
	/* The loop: service time = its CPU per request at the lightest step
	 * (no queueing there), throughput per loop. */
	if (s->loops > 0 && s0->loop_cpu_per_req_ns > 0 && s->wall_s > 0) {
		x = (double)s->requests / s->wall_s / s->loops;
		double s0_us = s0->loop_cpu_per_req_ns / 1e3, cur_us = s->loop_cpu_per_req_ns / 1e3;
		char less[200];

		if (s->server_quota > 0 && s->server_throttled > 0.05)
			snprintf(
			    more, sizeof(more),
			    "the loop waits for CPU it is not given (its cgroup caps the server "
			    "at %.2f cores, throttled in %.0f%% of periods)",
			    s->server_quota, 100 * s->server_throttled);
		else if (cur_us > 1.2 * s0_us)
			snprintf(
			    more, sizeof(more),
			    "CPU per request grew with load (%.1f us at the lightest step, %.1f "
			    "us here)",
			    s0_us, cur_us);
		else
			snprintf(
			    more, sizeof(more),
			    "the loop is busy without using CPU: it waits for a core (run queue "
			    "%.0f, its core %d %.0f%% busy)",
			    s->run_queue, s->loop_core, 100 * s->loop_core_busy);
		if (cur_us > 0 && cur_us < 0.8 * s0_us)
			snprintf(
			    less, sizeof(less),
			    "CPU per request fell with load (%.1f us at the lightest step, %.1f "
			    "us here: more requests per pass of the loop)",
			    s0_us, cur_us);
		else
			snprintf(less, sizeof(less), "the loop's busy clock misses work");
		law(v, "loop", s->loop_busy, x, s0->loop_cpu_per_req_ns, more, less);
	}
	/* The writer: service time = mean commit time, throughput = commits/s. */
	if (s->commits_per_s > 0)
		law(v, "writer", s->writer_busy, s->commits_per_s, s->commit_mean_ns,
		    "the writer spends time outside commits (queue handling, callbacks)",
		    "commits overlap the busy clock's gaps: the two counters disagree");
	(void)n;
}

/* usl fits X(N) over the steps, N = offered / the first step's offered. */
static void usl(const struct ld_prof_step *steps, int n, struct ld_prof_verdict *v)
{
	double nn[256], xx[256], e;
	char err[160];
	int m = 0;

	if (n < 3)
		return;
	v->usl_base = steps[0].offered_rps;
	for (int i = 0; i < n && m < 256; i++) {
		if (!(steps[i].achieved_rps > 0) || !(steps[i].offered_rps > 0))
			continue;
		nn[m] = steps[i].offered_rps / v->usl_base;
		xx[m] = steps[i].achieved_rps;
		m++;
	}
	if (v->usl_base <= 0 || ld_usl_fit(nn, xx, (size_t)m, &v->usl, err, sizeof(err))) {
		snprintf(v->usl_line, sizeof(v->usl_line), "USL: no fit over %d steps (%s)", n,
			 m < 3 ? "fewer than 3 steps with throughput" : err);
		return;
	}
	v->have_usl = true;
	/* 1 / (1 + s (N-1) + k N (N-1)) = 0.9: k N^2 + (s - k) N - (s + 1/9) = 0. */
	if (v->usl.kappa > 0) {
		double b = v->usl.sigma - v->usl.kappa, c = -(v->usl.sigma + 1.0 / 9);
		e = (-b + sqrt(b * b - 4 * v->usl.kappa * c)) / (2 * v->usl.kappa);
	} else if (v->usl.sigma > 0) {
		e = 1 + 1 / (9 * v->usl.sigma);
	} else {
		e = INFINITY;
	}
	v->contention_rps = e * v->usl_base;
	v->peak_rps = v->usl.peak_n * v->usl_base;
	{
		char where[200];
		const char *dom = v->usl.sigma * (e - 1) >= v->usl.kappa * e * (e - 1)
				      ? "contention (sigma)"
				      : "coherency (kappa)";
		double top = 0;
		for (int i = 0; i < n; i++)
			top = steps[i].offered_rps > top ? steps[i].offered_rps : top;
		if (isfinite(e) && v->contention_rps > 1.5 * top)
			snprintf(
			    where, sizeof(where),
			    "no sign of contention up to %.0f/s (extrapolated: 10%% below linear "
			    "at %.0f/s)",
			    top, v->contention_rps);
		else if (isfinite(e))
			snprintf(where, sizeof(where), "10%% below linear at %.0f/s offered, %s",
				 v->contention_rps, dom);
		else
			snprintf(where, sizeof(where), "linear over the steps");
		snprintf(v->usl_line, sizeof(v->usl_line),
			 "USL over %d steps (N = offered / %.0f/s): sigma %.4f, kappa %.6f, "
			 "lambda %.0f/s, R^2 %.3f; %s; %s",
			 m, v->usl_base, v->usl.sigma, v->usl.kappa, v->usl.lambda, v->usl.r2,
			 where,
			 v->usl.kappa > 0 ? "throughput peaks past which coherency makes it fall"
					  : "no coherency penalty: throughput levels off");
		if (v->usl.kappa > 0 && isfinite(v->peak_rps)) {
			size_t l = strlen(v->usl_line);
			snprintf(v->usl_line + l, sizeof(v->usl_line) - l,
				 " (peak %.0f/s at %.0f/s offered)", v->usl.peak_x, v->peak_rps);
		} else if (v->usl.sigma > 0) {
			size_t l = strlen(v->usl_line);
			snprintf(v->usl_line + l, sizeof(v->usl_line) - l, " toward %.0f/s",
				 v->usl.peak_x);
		}
	}
}

static void gen_line(const struct ld_prof_step *s, struct ld_prof_verdict *v)
{
	char cap[120] = "";

	if (s->gen_quota > 0)
		snprintf(cap, sizeof(cap), ", capped at %.2f cores by its CPU cgroup%s",
			 s->gen_quota, s->gen_throttled > 0.05 ? ", throttled" : "");
	snprintf(v->next, sizeof(v->next),
		 "give the generator more CPU (lift its cap, -t threads, its own core or machine) "
		 "before reading the server's figures");
	if (s->gen_pinned && gen_util(s) == s->gen_cores_busy && s->gen_cores_busy > 0) {
		char cores[48];
		if (s->gen_pinned == 1)
			snprintf(cores, sizeof(cores), "core %d", s->gen_core0);
		else
			snprintf(cores, sizeof(cores), "%d cores", s->gen_pinned);
		snprintf(v->line, sizeof(v->line),
			 "the load generator: its %s (its affinity) was %.0f%% busy (the generator "
			 "%.2f cores, interrupts %.2f; %.0f%% of sends late), the figures measure "
			 "it, not the server; %s",
			 cores, 100 * s->gen_cores_busy, s->gen_cpu, s->gen_cores_irq,
			 100 * s->late_frac, v->next);
	} else if (s->gen_quota > 0 && s->gen_allowed > 0 &&
		   s->gen_throttled > s->gen_cpu / s->gen_allowed)
		snprintf(v->line, sizeof(v->line),
			 "the load generator: it hit its CPU cap in %.0f%% of periods (%.2f of "
			 "%.2f cores%s; %.0f%% of sends late), the figures measure it, not the "
			 "server; %s",
			 100 * s->gen_throttled, s->gen_cpu, s->gen_allowed, cap,
			 100 * s->late_frac, v->next);
	else
		snprintf(v->line, sizeof(v->line),
			 "the load generator: its core was %.0f%% busy (%.2f of %.2f cores%s; "
			 "%.0f%% of sends late), the figures measure it, not the server; %s",
			 100 * v->util, s->gen_cpu, s->gen_allowed, cap, 100 * s->late_frac,
			 v->next);
}

static void app_line(const struct ld_prof_step *s, struct ld_prof_verdict *v, bool sat)
{
	const char *likely = sat ? "" : " (likely; below 90%)";
	char stages[200], core[48] = "";

	top_stages(s, stages, sizeof(stages));
	/* Capped: the quota is what ran out, whatever the loop's clock says. */
	if (s->server_quota > 0 && s->server_cpu / s->server_quota >= s->loop_busy) {
		snprintf(v->next, sizeof(v->next),
			 "give the server more CPU (its cap), add loop threads or nodes (rung 3)");
		snprintf(v->line, sizeof(v->line),
			 "app CPU%s: the server used %.2f of the %.2f cores its CPU cgroup allows "
			 "(throttled in %.0f%% of periods), loop thread %d %.0f%% busy, %s; %s",
			 likely, s->server_cpu, s->server_quota, 100 * s->server_throttled,
			 s->loop_busy_idx, 100 * s->loop_busy, stages, v->next);
		return;
	}
	snprintf(v->next, sizeof(v->next), "add loop threads or nodes (rung 3)");
	if (s->server_pinned && s->server_cores_busy >= s->loop_busy) {
		char cores[48];
		double others = pinned_foreign(s);
		if (s->server_pinned == 1)
			snprintf(cores, sizeof(cores), "core %d", s->server_core0);
		else
			snprintf(cores, sizeof(cores), "%d cores", s->server_pinned);
		snprintf(v->line, sizeof(v->line),
			 "app CPU%s: the server's %s (its affinity) %.0f%% busy: the server %.2f "
			 "cores (loop thread %d %.0f%% busy, %.0f%% CPU), interrupts %.2f, others "
			 "%.2f; %s; %s",
			 likely, cores, 100 * s->server_cores_busy, s->server_cpu, s->loop_busy_idx,
			 100 * s->loop_busy, 100 * s->loop_cpu, s->server_cores_irq, others, stages,
			 v->next);
		return;
	}
	if (s->loop_core >= 0 && s->loop_core_busy > 0)
		snprintf(core, sizeof(core), " on core %d, %.0f%% busy", s->loop_core,
			 100 * s->loop_core_busy);
	snprintf(v->line, sizeof(v->line),
		 "app CPU%s: loop thread %d %.0f%% busy (%.0f%% of a core in CPU time)%s; %s; %s",
		 likely, s->loop_busy_idx, 100 * s->loop_busy, 100 * s->loop_cpu, core, stages,
		 v->next);
}

static void commit_line(const struct ld_prof_step *s, struct ld_prof_verdict *v, bool sat)
{
	snprintf(v->next, sizeof(v->next),
		 "batch more writes per commit, faster storage for the sync, or the store on its "
		 "own host (rung 2)");
	snprintf(
	    v->line, sizeof(v->line),
	    "commit latency%s: writer busy %.0f%%, fsync p99 %.1f ms, commit p99 %.1f ms, %.0f "
	    "writes per commit, %.0f commits/s, writer queue %lld of %lld; %s",
	    sat ? "" : " (likely; below 90%)", 100 * s->writer_busy, (double)s->sync_p99_ns / 1e6,
	    (double)s->commit_p99_ns / 1e6, s->writes_per_commit, s->commits_per_s,
	    (long long)s->queue_depth, (long long)s->queue_cap, v->next);
}

static void disk_line(const struct ld_prof_step *s, struct ld_prof_verdict *v, bool sat)
{
	snprintf(v->next, sizeof(v->next), "faster storage, or the store on its own host (rung 2)");
	snprintf(v->line, sizeof(v->line), "disk%s: %s busy %.0f%% of the time; %s",
		 sat ? "" : " (likely; below 90%)", s->disk[0] ? s->disk : "?", 100 * s->disk_busy,
		 v->next);
}

/* foreign_cores is the CPU the host's cores spent on neither the server
 * nor the generator. */
static double foreign_cores(const struct ld_prof_step *s)
{
	double f = s->ncpu * s->core_busy_mean - s->server_cpu - s->gen_cpu - s->irq_cores;

	return f > 0 ? f : 0;
}

static void host_line(const struct ld_prof_step *s, struct ld_prof_verdict *v)
{
	snprintf(v->next, sizeof(v->next),
		 "measure on a quieter machine, or give the server and the generator cores of "
		 "their own (taskset)");
	if (s->server_pinned) {
		char cores[48];
		if (s->server_pinned == 1)
			snprintf(cores, sizeof(cores), "core %d", s->server_core0);
		else
			snprintf(cores, sizeof(cores), "%d cores", s->server_pinned);
		snprintf(v->line, sizeof(v->line),
			 "host CPU: the server's %s (its affinity) %.0f%% busy, %.2f cores of it "
			 "other processes' (the server %.2f, interrupts %.2f), run queue %.0f: "
			 "requests wait for a core, not for the server; %s",
			 cores, 100 * s->server_cores_busy, pinned_foreign(s), s->server_cpu,
			 s->server_cores_irq, s->run_queue, v->next);
		return;
	}
	snprintf(v->line, sizeof(v->line),
		 "host CPU: all %d cores %.0f%% busy, run queue %.0f; the server used %.2f cores, "
		 "the generator %.2f, interrupts %.2f, other processes %.2f: requests wait for a "
		 "core, not for the server; %s",
		 s->ncpu, 100 * s->core_busy_mean, s->run_queue, s->server_cpu, s->gen_cpu,
		 s->irq_cores, foreign_cores(s), v->next);
}

void ld_prof_judge(const struct ld_prof_step *steps, int n, struct ld_prof_verdict *v)
{
	const struct ld_prof_step *s;
	double u_app, u_commit, u_disk, u_gen, best;
	enum ld_prof_kind kind;
	bool rising;

	memset(v, 0, sizeof(*v));
	v->law_ok = true;
	if (n <= 0) {
		v->kind = LD_PROF_INCONCLUSIVE;
		snprintf(v->line, sizeof(v->line), "inconclusive: no profile sample was taken");
		return;
	}
	v->step = n - 1;
	s = &steps[n - 1];
	shares_check(s, v);
	law_checks(steps, n, s, v);
	usl(steps, n, v);

	u_gen = gen_util(s);
	u_app = app_util(s);
	u_commit = s->writer_busy;
	u_disk = s->disk_busy;
	if (u_gen >= LD_PROF_SATURATED) {
		v->kind = LD_PROF_GENERATOR;
		v->util = u_gen;
		gen_line(s, v);
		/* Both at their limit: the rate where they meet is a floor of
		 * the server's capacity, and says so. */
		if (u_app >= LD_PROF_SATURATED || u_commit >= LD_PROF_SATURATED) {
			size_t l = strlen(v->line);
			snprintf(
			    v->line + l, sizeof(v->line) - l,
			    "; the server is at its limit too (%s %.0f%%): this rate is a floor "
			    "of its capacity",
			    u_app >= u_commit ? "app CPU" : "commit latency",
			    100 * (u_app >= u_commit ? u_app : u_commit));
		}
		return;
	}
	if (s->pool_wait_share >= 0.5) {
		v->kind = LD_PROF_DATABASE;
		v->util = s->pool_wait_share;
		snprintf(v->next, sizeof(v->next),
			 "a larger pool, read replicas (rung 3) or a cache (rung 4)");
		snprintf(v->line, sizeof(v->line), "database: pool waits %.0f%% of store time; %s",
			 100 * s->pool_wait_share, v->next);
		return;
	}
	kind = LD_PROF_APP_CPU;
	best = u_app;
	if (u_commit > best) {
		kind = LD_PROF_COMMIT;
		best = u_commit;
	}
	if (u_disk > best) {
		kind = LD_PROF_DISK;
		best = u_disk;
	}
	/* Below saturation, a resource is named only when the load shows it:
	 * latency climbing over the steps, or throughput short of the offer. */
	rising = (n > 1 && steps[0].p99_us > 0 && s->p99_us > 3 * steps[0].p99_us) ||
		 (s->offered_rps > 0 && s->achieved_rps < 0.9 * s->offered_rps);
	/* The cores are full but not with our work: the server and the
	 * generator wait to run. */
	if (best < LD_PROF_SATURATED &&
	    ((s->server_pinned && s->server_cores_busy >= LD_PROF_SATURATED &&
	      pinned_foreign(s) >= 0.25 * s->server_pinned) ||
	     (!s->server_pinned && s->ncpu > 0 && s->core_busy_mean >= LD_PROF_SATURATED &&
	      foreign_cores(s) >= 0.5))) {
		v->kind = LD_PROF_HOST_CPU;
		v->util = s->server_pinned ? s->server_cores_busy : s->core_busy_mean;
		host_line(s, v);
		return;
	}
	if (best < LD_PROF_SATURATED && !(rising && best >= LD_PROF_LIKELY)) {
		v->kind = LD_PROF_NONE;
		v->util = best;
		if (rising)
			snprintf(v->next, sizeof(v->next),
				 "repeat the step; a latency rise with idle resources is a stall "
				 "(another process, the network), not capacity");
		else
			snprintf(v->next, sizeof(v->next), "offer more load to find the limit");
		snprintf(v->line, sizeof(v->line),
			 "no resource saturated at %.0f/s: app CPU %.0f%%, writer %.0f%%, disk "
			 "%.0f%%, generator %.0f%%%s; %s",
			 s->achieved_rps, 100 * u_app, 100 * u_commit, 100 * u_disk, 100 * u_gen,
			 rising ? ", yet latency rose" : "", v->next);
		return;
	}
	v->kind = kind;
	v->util = best;
	if (kind == LD_PROF_APP_CPU)
		app_line(s, v, best >= LD_PROF_SATURATED);
	else if (kind == LD_PROF_COMMIT)
		commit_line(s, v, best >= LD_PROF_SATURATED);
	else
		disk_line(s, v, best >= LD_PROF_SATURATED);
}
