/*
 * profile.c - the sampler of `ladder bench --profile` and the step figures
 * it derives from two samples.
 */
#include "bench/profile.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/httpget.h"
#include "bench/procfs.h"
#include "http/client.h"

#define FETCH_TIMEOUT_MS 3000

struct sample {
	struct ld_prof_doc doc;
	struct ld_procfs_snap host;
};

struct ld_profile {
	struct ld_http_url url;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	double interval_s;
	int gen_threads;
	pid_t pid;
	int64_t loops;
	struct ld_buf req, body;

	/* the current step */
	struct sample begin, prev, cur;
	double offered;
	uint64_t step_t0;
	pthread_t thr;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int fetch_errors;
	char last_err[160];

	int nsteps;
	struct ld_prof_step steps[LD_PROFILE_STEPS];
	int nsamples;
	struct ld_prof_step *samples; /* LD_PROFILE_SAMPLES */
	double *sample_t;	      /* seconds since its step began */
	int sample_step0;	      /* first sample of the current step */
	struct ld_prof_verdict verdict;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the stats document ---- */

static int64_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (int64_t)json_integer_value(v)
	       : json_is_real(v)  ? (int64_t)json_real_value(v)
				  : 0;
}

static double jnum(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : 0;
}

int ld_prof_doc_parse(const char *text, size_t len, struct ld_prof_doc *d, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je), *routes, *ls, *store, *v;
	const char *schema;
	int64_t most = -1;
	size_t i;
	int rc = -EINVAL;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the stats document is not a JSON object (%s)", je.text);
		goto out;
	}
	schema = json_string_value(json_object_get(root, "schema"));
	if (!schema || strcmp(schema, "ladder-stats/1")) {
		snprintf(err, errlen, "the stats document's schema is '%s', not ladder-stats/1",
			 schema ? schema : "(none)");
		goto out;
	}
	d->pid = jint(root, "pid");
	d->now_ns = jint(root, "now_ns");
	d->loops = jint(root, "loops");
	d->clock_ticks = jint(root, "clock_ticks");
	if (d->pid <= 0 || d->now_ns <= 0) {
		snprintf(err, errlen, "the stats document has no pid or now_ns");
		goto out;
	}
	routes = json_object_get(root, "routes");
	json_array_foreach(routes, i, v)
	{
		json_t *total = json_object_get(v, "total"), *stages = json_object_get(v, "stages");
		const char *name = json_string_value(json_object_get(v, "route"));
		int64_t count = jint(total, "count");

		/* The sampler's own requests ("GET /debug/stats") are not the
		 * load's. */
		if (name && strlen(name) >= 12 && !strcmp(name + strlen(name) - 12, "/debug/stats"))
			continue;
		d->requests += count;
		d->total_ns += jnum(total, "sum_ns");
		for (int k = 0; k < LD_ST_COUNT; k++)
			d->stage_ns[k] +=
			    jnum(json_object_get(stages, ld_prof_stage_name(k)), "sum_ns");
		if (count > most) {
			most = count;
			d->total_p99_ns = jint(total, "p99_ns");
		}
	}
	json_array_foreach(json_object_get(root, "threads"), i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		if (d->nthreads == LD_PROFILE_THREADS)
			break;
		snprintf(d->thread_name[d->nthreads], sizeof(d->thread_name[0]), "%s",
			 name ? name : "?");
		d->thread_tid[d->nthreads] = jint(v, "tid");
		d->nthreads++;
	}
	ls = json_object_get(root, "loop_stats");
	json_array_foreach(ls, i, v)
	{
		if (d->nloops == LD_PROFILE_LOOPS)
			break;
		d->loop_tid[d->nloops] = jint(v, "tid");
		d->loop_busy_ns[d->nloops] = jnum(v, "busy_ns");
		d->loop_cpu_ns[d->nloops] = jnum(v, "cpu_ns");
		d->nloops++;
	}
	store = json_object_get(root, "store");
	if (json_is_object(store)) {
		json_t *commit = json_object_get(store, "commit");
		d->have_store = true;
		d->writer_busy_ns = jnum(store, "writer_busy_ns");
		d->commits = jint(store, "commits");
		d->writes = jint(store, "writes");
		d->commit_count = jint(commit, "count");
		d->commit_sum_ns = jnum(commit, "sum_ns");
		d->commit_p99_ns = jint(commit, "p99_ns");
		d->sync_p99_ns = jint(json_object_get(store, "sync"), "p99_ns");
		d->queue_depth = jint(store, "queue_depth");
		d->queue_cap = jint(store, "queue_cap");
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* fetch GETs the stats document on a connection of its own (closed after
 * it: once a second, a connect costs less than keeping state). */
static int fetch(struct ld_profile *p, struct ld_prof_doc *d, char *err, size_t errlen)
{
	int status, rc;

	rc = ld_bench_http_fetch(&p->addr, p->addrlen, p->url.authority, &p->req, FETCH_TIMEOUT_MS,
				 "stats document", &status, &p->body, err, errlen);
	if (rc)
		goto out;
	if (status != 200) {
		rc = -EPROTO;
		snprintf(err, errlen, "GET %s/debug/stats answered %d (not 200)", p->url.authority,
			 status);
		goto out;
	}
	rc = ld_prof_doc_parse(p->body.data ? p->body.data : "", p->body.len, d, err, errlen);
out:
	return rc;
}

static int take(struct ld_profile *p, struct sample *s, char *err, size_t errlen)
{
	int rc = fetch(p, &s->doc, err, errlen);

	if (rc)
		return rc;
	rc = ld_procfs_snap(p->pid, &s->host);
	if (rc)
		snprintf(err, errlen,
			 "cannot read /proc/%d of the server (%s): is it on this host?",
			 (int)p->pid, strerror(-rc));
	return rc;
}

/* ---- figures of a step ---- */

static double frac(double num, double den)
{
	return den > 0 ? num / den : 0;
}

static int cmp_thread(const void *a, const void *b)
{
	const struct ld_prof_thread *x = a, *y = b;
	return (x->busy < y->busy) - (x->busy > y->busy);
}

static const char *thread_name(const struct ld_prof_doc *d, int tid, const char *comm)
{
	for (int i = 0; i < d->nthreads; i++)
		if (d->thread_tid[i] == tid)
			return d->thread_name[i];
	return comm;
}

/* proc_cpu sums the CPU of threads alive in both samples (cores) and
 * reports the busiest; names come from the stats document when given
 * (the kernel's comm of every server thread is the program's name). */
static double proc_cpu(const struct ld_procfs_proc *a, const struct ld_procfs_proc *b,
		       const struct ld_prof_doc *names, double ticks_per_s, double wall_s,
		       struct ld_prof_thread *top, int *ntop, int maxtop,
		       const struct ld_procfs_task **busiest)
{
	struct ld_prof_thread all[LD_PROCFS_TASKS];
	double sum = 0, best = -1;
	int n = 0;

	if (busiest)
		*busiest = NULL;
	for (int i = 0; i < b->ntasks; i++) {
		const struct ld_procfs_task *tb = &b->tasks[i],
					    *ta = ld_procfs_task_find(a, tb->tid);
		double u;
		if (!ta || tb->ticks < ta->ticks)
			continue;
		u = frac((double)(tb->ticks - ta->ticks) / ticks_per_s, wall_s);
		sum += u;
		snprintf(all[n].name, sizeof(all[n].name), "%s",
			 names ? thread_name(names, tb->tid, tb->comm) : tb->comm);
		all[n].busy = u;
		n++;
		if (u > best) {
			best = u;
			if (busiest)
				*busiest = tb;
		}
	}
	if (top) {
		qsort(all, (size_t)n, sizeof(all[0]), cmp_thread);
		*ntop = n < maxtop ? n : maxtop;
		memcpy(top, all, sizeof(all[0]) * (size_t)*ntop);
	}
	return sum;
}

static void cgroup_figures(const struct ld_procfs_cgroup *a, const struct ld_procfs_cgroup *b,
			   double *quota, double *throttled)
{
	*quota = b->have ? b->quota_cores : 0;
	*throttled = b->nr_periods > a->nr_periods ? (double)(b->nr_throttled - a->nr_throttled) /
							 (double)(b->nr_periods - a->nr_periods)
						   : 0;
}

/* pinned_cores fills *k (cores in mask, 0 when it allows all), the first
 * of them, their mean busy fraction and their interrupt time in cores. */
static void pinned_cores(const struct ld_procfs_snap *ha, const struct ld_procfs_snap *hb,
			 uint64_t m, int *k, int *first, double *busy, double *irq)
{
	int n = __builtin_popcountll(m);

	*k = 0;
	*first = -1;
	*busy = *irq = 0;
	if (!m || n >= hb->cpu.ncpu || hb->cpu.ncpu > 64)
		return;
	*k = n;
	*first = __builtin_ctzll(m);
	for (int c = 0; c < hb->cpu.ncpu && c < ha->cpu.ncpu; c++) {
		double tot = (double)(hb->cpu.total[c] - ha->cpu.total[c]);
		if (!(m & (1ULL << c)))
			continue;
		*busy += frac((double)(hb->cpu.busy[c] - ha->cpu.busy[c]), tot) / n;
		*irq += frac((double)(hb->cpu.irq[c] - ha->cpu.irq[c]), tot);
	}
}

void ld_prof_step_from(const struct ld_prof_doc *a, const struct ld_prof_doc *b,
		       const struct ld_procfs_snap *ha, const struct ld_procfs_snap *hb,
		       int gen_threads, struct ld_prof_step *s)
{
	double wall_ns = (double)(b->now_ns - a->now_ns), host_s;
	double ticks = b->clock_ticks > 0 ? (double)b->clock_ticks : (double)sysconf(_SC_CLK_TCK);
	double loop_cpu_all = 0, busy_sum = 0, best_d = 0;
	const struct ld_procfs_task *gt;
	int64_t commits;
	int best = -1;

	memset(s, 0, sizeof(*s));
	host_s = (double)(hb->mono_ns - ha->mono_ns) / 1e9;
	s->wall_s = wall_ns / 1e9;
	s->requests = b->requests - a->requests;
	s->total_ns = b->total_ns - a->total_ns;
	for (int k = 0; k < LD_ST_COUNT; k++)
		s->stage_ns[k] = b->stage_ns[k] - a->stage_ns[k];
	s->server_p99_ns = b->total_p99_ns;
	s->achieved_rps = frac((double)s->requests, s->wall_s);

	/* loops: the busiest by its wall-clock busy time */
	s->loops = b->nloops ? b->nloops : (int)b->loops;
	s->loop_core = -1;
	s->loop_busy_idx = 0;
	for (int i = 0; i < b->nloops && i < a->nloops; i++) {
		double d = b->loop_busy_ns[i] - a->loop_busy_ns[i];
		loop_cpu_all += b->loop_cpu_ns[i] - a->loop_cpu_ns[i];
		busy_sum += d;
		if (best < 0 || d > best_d) {
			best = i;
			best_d = d;
		}
	}
	if (best >= 0) {
		const struct ld_procfs_task *ta =
		    ld_procfs_task_find(&ha->target, (int)b->loop_tid[best]);
		const struct ld_procfs_task *tb =
		    ld_procfs_task_find(&hb->target, (int)b->loop_tid[best]);
		s->loop_busy_idx = best;
		s->loop_core = tb ? tb->processor : -1;
		s->loop_busy = frac(best_d, wall_ns);
		s->loop_cpu = frac(b->loop_cpu_ns[best] - a->loop_cpu_ns[best], wall_ns);
		/* Without cpu_ns in the document, the thread's /proc ticks. */
		if (s->loop_cpu == 0 && ta && tb && tb->ticks >= ta->ticks)
			s->loop_cpu = frac((double)(tb->ticks - ta->ticks) / ticks, host_s);
		if (loop_cpu_all == 0 && ta && tb && tb->ticks >= ta->ticks)
			loop_cpu_all = (double)(tb->ticks - ta->ticks) / ticks * 1e9;
	}
	(void)busy_sum;
	s->loop_cpu_per_req_ns = s->requests > 0 ? loop_cpu_all / (double)s->requests : 0;

	/* the writer */
	commits = b->commits - a->commits;
	s->writer_busy = frac(b->writer_busy_ns - a->writer_busy_ns, wall_ns);
	s->commits_per_s = frac((double)commits, s->wall_s);
	s->writes_per_commit = frac((double)(b->writes - a->writes), (double)commits);
	s->commit_mean_ns =
	    frac(b->commit_sum_ns - a->commit_sum_ns, (double)(b->commit_count - a->commit_count));
	s->pool_wait_share = frac(s->stage_ns[LD_ST_STORE_POOL],
				  s->stage_ns[LD_ST_STORE_POOL] + s->stage_ns[LD_ST_STORE]);
	s->commit_p99_ns = b->commit_p99_ns;
	s->sync_p99_ns = b->sync_p99_ns;
	s->queue_depth = b->queue_depth;
	s->queue_cap = b->queue_cap;

	/* the server process */
	s->server_cpu = proc_cpu(&ha->target, &hb->target, b, ticks, host_s, s->threads,
				 &s->nthreads, LD_PROF_THREADS, NULL);
	cgroup_figures(&ha->target.cg, &hb->target.cg, &s->server_quota, &s->server_throttled);
	s->server_vol_per_s =
	    frac((double)(hb->target.st.vol_ctxt - ha->target.st.vol_ctxt), host_s);
	s->server_nonvol_per_s =
	    frac((double)(hb->target.st.nonvol_ctxt - ha->target.st.nonvol_ctxt), host_s);
	s->rss_kb = hb->target.st.rss_kb;

	/* the generator */
	/* The whole process's ticks: engine threads live only inside a run,
	 * so a step's two samples never see them, but their time stays in
	 * the process's count. */
	proc_cpu(&ha->self, &hb->self, NULL, ticks, host_s, NULL, NULL, 0, &gt);
	s->gen_cpu = hb->self.ticks >= ha->self.ticks
			 ? frac((double)(hb->self.ticks - ha->self.ticks) / ticks, host_s)
			 : 0;
	if (gt) {
		const struct ld_procfs_task *g0 = ld_procfs_task_find(&ha->self, gt->tid);
		s->gen_thread_max = g0 ? frac((double)(gt->ticks - g0->ticks) / ticks, host_s) : 0;
		s->gen_core = gt->processor;
	}
	cgroup_figures(&ha->self.cg, &hb->self.cg, &s->gen_quota, &s->gen_throttled);
	s->gen_allowed = gen_threads > 0 ? gen_threads : 1;
	if (hb->cpu.ncpu > 0 && s->gen_allowed > hb->cpu.ncpu)
		s->gen_allowed = hb->cpu.ncpu;
	if (hb->self.st.cpus_allowed &&
	    s->gen_allowed > __builtin_popcountll(hb->self.st.cpus_allowed))
		s->gen_allowed = __builtin_popcountll(hb->self.st.cpus_allowed);
	if (s->gen_quota > 0 && s->gen_quota < s->gen_allowed)
		s->gen_allowed = s->gen_quota;

	/* the host */
	s->ncpu = hb->cpu.ncpu;
	for (int c = 0; c < hb->cpu.ncpu && c < ha->cpu.ncpu; c++) {
		double u = frac((double)(hb->cpu.busy[c] - ha->cpu.busy[c]),
				(double)(hb->cpu.total[c] - ha->cpu.total[c]));
		s->core_busy_mean += u / hb->cpu.ncpu;
		if (u > s->core_busy_max)
			s->core_busy_max = u;
		if (c < LD_PROF_CORES)
			s->core_busy[c] = u;
		if (c == s->loop_core)
			s->loop_core_busy = u;
		s->irq_cores += frac((double)(hb->cpu.irq[c] - ha->cpu.irq[c]),
				     (double)(hb->cpu.total[c] - ha->cpu.total[c]));
	}
	/* A process pinned to some cores (taskset) has only those: how busy
	 * they were, with anyone's work, is its CPU headroom. */
	pinned_cores(ha, hb, hb->target.st.cpus_allowed, &s->server_pinned, &s->server_core0,
		     &s->server_cores_busy, &s->server_cores_irq);
	pinned_cores(ha, hb, hb->self.st.cpus_allowed, &s->gen_pinned, &s->gen_core0,
		     &s->gen_cores_busy, &s->gen_cores_irq);
	s->run_queue = (double)hb->cpu.procs_running;
	s->ctxt_per_s = frac((double)(hb->cpu.ctxt - ha->cpu.ctxt), host_s);
	for (int i = 0; i < hb->ndisks; i++)
		for (int j = 0; j < ha->ndisks; j++) {
			double u;
			if (strcmp(hb->disks[i].name, ha->disks[j].name))
				continue;
			u = frac((double)(hb->disks[i].io_ticks_ms - ha->disks[j].io_ticks_ms),
				 host_s * 1e3);
			if (u > s->disk_busy || !s->disk[0]) {
				s->disk_busy = u;
				snprintf(s->disk, sizeof(s->disk), "%s", hb->disks[i].name);
			}
		}
	s->mem_avail_kb = hb->mem_avail_kb;
	s->tcp_inuse = hb->tcp_inuse;
	s->tcp_tw = hb->tcp_tw;
}

/* ---- the session ---- */

static void *sampler(void *arg)
{
	struct ld_profile *p = arg;
	uint64_t next = mono_ns();

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct timespec ts;
		char err[160];
		int rc;

		next += (uint64_t)(p->interval_s * 1e9);
		ts.tv_sec = (time_t)(next / 1000000000ULL);
		ts.tv_nsec = (long)(next % 1000000000ULL);
		while (!p->stop && mono_ns() < next)
			if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
				break;
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->mu);
		rc = take(p, &p->cur, err, sizeof(err));
		pthread_mutex_lock(&p->mu);
		if (rc) {
			p->fetch_errors++;
			snprintf(p->last_err, sizeof(p->last_err), "%s", err);
			continue;
		}
		if (p->nsamples < LD_PROFILE_SAMPLES) {
			ld_prof_step_from(&p->prev.doc, &p->cur.doc, &p->prev.host, &p->cur.host,
					  p->gen_threads, &p->samples[p->nsamples]);
			p->samples[p->nsamples].offered_rps = p->offered;
			p->sample_t[p->nsamples] = (double)(p->cur.host.mono_ns - p->step_t0) / 1e9;
			p->nsamples++;
		}
		p->prev = p->cur;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int ld_profile_open(struct ld_profile **pp, const char *url, double interval_s, int gen_threads,
		    char *err, size_t errlen)
{
	struct ld_profile *p = calloc(1, sizeof(*p));
	struct addrinfo hints, *res = NULL;
	int rc;

	*pp = NULL;
	if (!p)
		return -ENOMEM;
	p->samples = calloc(LD_PROFILE_SAMPLES, sizeof(*p->samples));
	p->sample_t = calloc(LD_PROFILE_SAMPLES, sizeof(*p->sample_t));
	ld_buf_init(&p->req, 4096);
	ld_buf_init(&p->body, LD_PROFILE_DOC_MAX);
	pthread_mutex_init(&p->mu, NULL);
	{
		/* The sampler's deadlines are CLOCK_MONOTONIC. */
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	p->interval_s = interval_s;
	p->gen_threads = gen_threads;
	if (!p->samples || !p->sample_t) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (ld_http_url_parse(url, &p->url)) {
		rc = -EINVAL;
		snprintf(err, errlen, "'%s' is not an http:// URL", url);
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(p->url.host, p->url.port, &hints, &res) || !res) {
		rc = -EHOSTUNREACH;
		snprintf(err, errlen, "cannot resolve '%s'", p->url.host);
		goto out;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	{
		/* the base URL's path, without a trailing slash, + /debug/stats */
		char path[2100];
		size_t l = strlen(p->url.path);
		while (l > 0 && p->url.path[l - 1] == '/')
			l--;
		snprintf(path, sizeof(path), "%.*s/debug/stats", (int)l, p->url.path);
		static const char *const hdrs[] = {"Connection: close", NULL};
		rc = ld_http_request_write(&p->req, "GET", p->url.authority, path, hdrs, NULL, 0);
		if (rc) {
			snprintf(err, errlen, "cannot build the stats request");
			goto out;
		}
	}
	rc = fetch(p, &p->begin.doc, err, errlen);
	if (rc)
		goto out;
	p->pid = (pid_t)p->begin.doc.pid;
	p->loops = p->begin.doc.loops;
	rc = ld_procfs_snap(p->pid, &p->begin.host);
	if (rc) {
		snprintf(err, errlen,
			 "the server's pid %d is not readable in /proc (%s): the profile needs the "
			 "server on this host",
			 (int)p->pid, strerror(-rc));
		goto out;
	}
	*pp = p;
	p = NULL;
out:
	ld_profile_free(p);
	return rc;
}

int ld_profile_step_begin(struct ld_profile *p, double offered_rps, char *err, size_t errlen)
{
	int rc;

	if (p->nsteps == LD_PROFILE_STEPS) {
		snprintf(err, errlen, "more than %d profile steps", LD_PROFILE_STEPS);
		return -E2BIG;
	}
	rc = take(p, &p->begin, err, errlen);
	if (rc)
		return rc;
	p->prev = p->begin;
	p->offered = offered_rps;
	p->step_t0 = p->begin.host.mono_ns;
	p->sample_step0 = p->nsamples;
	p->stop = false;
	rc = -pthread_create(&p->thr, NULL, sampler, p);
	if (rc) {
		snprintf(err, errlen, "cannot start the sampler thread: %s", strerror(-rc));
		return rc;
	}
	p->running = true;
	return 0;
}

static void stop_sampler(struct ld_profile *p)
{
	if (!p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thr, NULL);
	p->running = false;
}

/* point_at returns the engine's timeline point covering t seconds. */
static const struct ld_bench_point *point_at(const struct ld_bench_result *r, double t)
{
	for (int i = 0; i < r->npoints; i++)
		if (r->timeline[i].t >= t - 0.5)
			return &r->timeline[i];
	return r->npoints ? &r->timeline[r->npoints - 1] : NULL;
}

int ld_profile_step_end(struct ld_profile *p, const struct ld_bench_result *r, char *err,
			size_t errlen)
{
	struct sample end;
	struct ld_prof_step *s;
	int rc;

	stop_sampler(p);
	rc = take(p, &end, err, errlen);
	if (rc)
		return rc;
	s = &p->steps[p->nsteps++];
	ld_prof_step_from(&p->begin.doc, &end.doc, &p->begin.host, &end.host, p->gen_threads, s);
	s->offered_rps = p->offered > 0	     ? p->offered
			 : r->target_rps > 0 ? r->target_rps
					     : r->achieved_rps;
	s->p99_us = ld_hdr_percentile(&r->latency, 99);
	s->late_frac = r->requests > 0 ? (double)r->late / (double)r->requests : 0;
	/* The engine's threads ran between the step's two samples: their
	 * busiest share and core come from the interval samples (time
	 * weighted). */
	{
		double w = 0, sum = 0;
		for (int i = p->sample_step0; i < p->nsamples; i++) {
			sum += p->samples[i].gen_thread_max * p->samples[i].wall_s;
			w += p->samples[i].wall_s;
			s->gen_core = p->samples[i].gen_core;
		}
		if (w > 0)
			s->gen_thread_max = sum / w;
	}
	/* The interval samples take the engine's figures of their second. */
	for (int i = p->sample_step0; i < p->nsamples; i++) {
		const struct ld_bench_point *pt = point_at(r, p->sample_t[i]);
		if (!pt)
			continue;
		p->samples[i].offered_rps = pt->target_rps > 0 ? pt->target_rps : pt->achieved_rps;
		p->samples[i].p99_us = pt->p99_us;
	}
	return 0;
}

int ld_profile_run(struct ld_profile *p, const struct ld_bench_cfg *cfg,
		   struct ld_bench_result *res, double offered_rps)
{
	char err[200];
	bool on = ld_profile_step_begin(p, offered_rps, err, sizeof(err)) == 0;
	int rc;

	if (!on)
		fprintf(stderr, "ladder bench: --profile: step not profiled: %s\n", err);
	rc = ld_bench_run(cfg, res);
	if (on && rc) {
		stop_sampler(p);
	} else if (on && ld_profile_step_end(p, res, err, sizeof(err))) {
		fprintf(stderr, "ladder bench: --profile: step not profiled: %s\n", err);
	}
	return rc;
}

void ld_profile_finish(struct ld_profile *p)
{
	stop_sampler(p);
	ld_prof_judge(p->steps, p->nsteps, &p->verdict);
}

const struct ld_prof_verdict *ld_profile_verdict(const struct ld_profile *p)
{
	return &p->verdict;
}

const struct ld_prof_step *ld_profile_steps(const struct ld_profile *p, int *n)
{
	*n = p->nsteps;
	return p->steps;
}

const struct ld_prof_step *ld_profile_points(const struct ld_profile *p, int *n)
{
	if (p->nsteps > 1) {
		*n = p->nsteps;
		return p->steps;
	}
	*n = p->nsamples;
	return p->samples;
}

void ld_profile_free(struct ld_profile *p)
{
	if (!p)
		return;
	stop_sampler(p);
	ld_buf_release(&p->req);
	ld_buf_release(&p->body);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->samples);
	free(p->sample_t);
	free(p);
}

/* ---- reports ---- */

static int top_stage(const struct ld_prof_step *s)
{
	int a = 0;

	for (int k = 1; k < LD_ST_COUNT; k++)
		if (s->stage_ns[k] > s->stage_ns[a])
			a = k;
	return a;
}

void ld_profile_text(FILE *f, const struct ld_profile *p)
{
	const struct ld_prof_verdict *v = &p->verdict;
	const struct ld_prof_step *last = p->nsteps ? &p->steps[p->nsteps - 1] : NULL;

	fprintf(f, "\nprofile: server pid %d, %lld loop(s), %d step(s), %d sample(s) every %gs",
		(int)p->pid, (long long)p->loops, p->nsteps, p->nsamples, p->interval_s);
	if (p->fetch_errors)
		fprintf(f, ", %d failed (last: %s)", p->fetch_errors, p->last_err);
	fputc('\n', f);
	fprintf(f, "  %9s %9s %8s %6s %6s %7s %6s %6s %5s  %s\n", "offered/s", "served/s", "p99 ms",
		"loop%", "cpu%", "writer%", "gen%", "disk%", "core%", "top stage");
	for (int i = 0; i < p->nsteps; i++) {
		const struct ld_prof_step *s = &p->steps[i];
		int t = top_stage(s);
		fprintf(f, "  %9.0f %9.0f %8.2f %6.0f %6.0f %7.0f %6.0f %6.0f %5.0f  %s %.0f%%\n",
			s->offered_rps, s->achieved_rps, (double)s->p99_us / 1e3,
			100 * s->loop_busy, 100 * s->loop_cpu, 100 * s->writer_busy,
			100 * (s->gen_allowed > 0 ? s->gen_cpu / s->gen_allowed : 0),
			100 * s->disk_busy, 100 * s->core_busy_max, ld_prof_stage_name(t),
			100 * ld_prof_share(s, t));
	}
	if (last && last->total_ns > 0) {
		fprintf(f, "  stage shares at %.0f/s offered (mean %.3f ms per request):",
			last->offered_rps,
			last->requests ? last->total_ns / (double)last->requests / 1e6 : 0);
		for (int k = 0; k < LD_ST_COUNT; k++)
			if (last->stage_ns[k] > 0)
				fprintf(f, " %s %.1f%%", ld_prof_stage_name(k),
					100 * ld_prof_share(last, k));
		fputc('\n', f);
	}
	if (last) {
		fprintf(f, "  server: %.2f cores", last->server_cpu);
		if (last->server_quota > 0)
			fprintf(f, " of %.2f allowed (cgroup; throttled %.0f%% of periods)",
				last->server_quota, 100 * last->server_throttled);
		if (last->server_pinned)
			fprintf(f, ", pinned to %d core(s) from core %d, %.0f%% busy",
				last->server_pinned, last->server_core0,
				100 * last->server_cores_busy);
		fprintf(f, ", threads");
		/* busiest first; idle ones (under 0.5%) left out */
		for (int i = 0; i < last->nthreads && i < 6 && last->threads[i].busy >= 0.005; i++)
			fprintf(f, " %s %.0f%%", last->threads[i].name,
				100 * last->threads[i].busy);
		fprintf(f, "; switches %.0f/s voluntary, %.0f/s forced; RSS %lld MiB\n",
			last->server_vol_per_s, last->server_nonvol_per_s,
			(long long)(last->rss_kb / 1024));
		fprintf(f, "  generator: %.2f of %.2f cores, busiest thread %.0f%% on core %d",
			last->gen_cpu, last->gen_allowed, 100 * last->gen_thread_max,
			last->gen_core);
		if (last->gen_quota > 0)
			fprintf(f, " (cgroup %.2f cores, throttled %.0f%%)", last->gen_quota,
				100 * last->gen_throttled);
		if (last->gen_pinned)
			fprintf(f, ", pinned to %d core(s) from core %d, %.0f%% busy",
				last->gen_pinned, last->gen_core0, 100 * last->gen_cores_busy);
		fprintf(f, ", late sends %.1f%%\n", 100 * last->late_frac);
		fprintf(
		    f,
		    "  host: %d cores, busiest %.0f%%, mean %.0f%% (interrupts %.2f cores), run "
		    "queue "
		    "%.0f, %.0f switches/s; disk %s busy %.0f%%; %lld MiB available; TCP %lld in "
		    "use, %lld time-wait\n",
		    last->ncpu, 100 * last->core_busy_max, 100 * last->core_busy_mean,
		    last->irq_cores, last->run_queue, last->ctxt_per_s,
		    last->disk[0] ? last->disk : "-", 100 * last->disk_busy,
		    (long long)(last->mem_avail_kb / 1024), (long long)last->tcp_inuse,
		    (long long)last->tcp_tw);
		if (last->commits_per_s > 0)
			fprintf(
			    f,
			    "  store: writer busy %.0f%%, %.0f commits/s, %.1f writes per commit, "
			    "commit mean %.3f ms p99 %.3f ms, sync p99 %.3f ms\n",
			    100 * last->writer_busy, last->commits_per_s, last->writes_per_commit,
			    last->commit_mean_ns / 1e6, (double)last->commit_p99_ns / 1e6,
			    (double)last->sync_p99_ns / 1e6);
	}
	fprintf(f, "verdict: %s\n", v->line);
	for (int i = 0; i < v->nnotes; i++)
		fprintf(f, "  check: %s\n", v->notes[i]);
	if (v->usl_line[0])
		fprintf(f, "  %s\n", v->usl_line);
}

static void step_json(struct ld_json *j, const struct ld_prof_step *s, bool full)
{
	ld_json_obj_begin(j);
	ld_json_key(j, "offered_rps");
	ld_json_double(j, s->offered_rps);
	ld_json_key(j, "achieved_rps");
	ld_json_double(j, s->achieved_rps);
	ld_json_key(j, "p99_us");
	ld_json_int(j, s->p99_us);
	ld_json_key(j, "requests");
	ld_json_int(j, s->requests);
	ld_json_key(j, "server_mean_ns");
	ld_json_double(j, s->requests ? s->total_ns / (double)s->requests : 0);
	ld_json_key(j, "shares");
	ld_json_obj_begin(j);
	for (int k = 0; k < LD_ST_COUNT; k++) {
		ld_json_key(j, ld_prof_stage_name(k));
		ld_json_double(j, ld_prof_share(s, k));
	}
	ld_json_obj_end(j);
	ld_json_key(j, "utilisation");
	ld_json_obj_begin(j);
	ld_json_key(j, "loop");
	ld_json_double(j, s->loop_busy);
	ld_json_key(j, "loop_cpu");
	ld_json_double(j, s->loop_cpu);
	ld_json_key(j, "writer");
	ld_json_double(j, s->writer_busy);
	ld_json_key(j, "server_cpu_cores");
	ld_json_double(j, s->server_cpu);
	ld_json_key(j, "generator");
	ld_json_double(j, s->gen_allowed > 0 ? s->gen_cpu / s->gen_allowed : 0);
	ld_json_key(j, "disk");
	ld_json_double(j, s->disk_busy);
	ld_json_key(j, "core_max");
	ld_json_double(j, s->core_busy_max);
	ld_json_obj_end(j);
	if (full) {
		ld_json_key(j, "server");
		ld_json_obj_begin(j);
		ld_json_key(j, "loops");
		ld_json_int(j, s->loops);
		ld_json_key(j, "busiest_loop");
		ld_json_int(j, s->loop_busy_idx);
		ld_json_key(j, "loop_cpu_per_request_ns");
		ld_json_double(j, s->loop_cpu_per_req_ns);
		ld_json_key(j, "quota_cores");
		ld_json_double(j, s->server_quota);
		ld_json_key(j, "throttled");
		ld_json_double(j, s->server_throttled);
		ld_json_key(j, "pinned_cores");
		ld_json_int(j, s->server_pinned);
		ld_json_key(j, "pinned_busy");
		ld_json_double(j, s->server_cores_busy);
		ld_json_key(j, "voluntary_switches_per_s");
		ld_json_double(j, s->server_vol_per_s);
		ld_json_key(j, "forced_switches_per_s");
		ld_json_double(j, s->server_nonvol_per_s);
		ld_json_key(j, "rss_kb");
		ld_json_int(j, s->rss_kb);
		ld_json_key(j, "threads");
		ld_json_arr_begin(j);
		for (int i = 0; i < s->nthreads; i++) {
			ld_json_obj_begin(j);
			ld_json_key(j, "name");
			ld_json_str(j, s->threads[i].name);
			ld_json_key(j, "busy");
			ld_json_double(j, s->threads[i].busy);
			ld_json_obj_end(j);
		}
		ld_json_arr_end(j);
		ld_json_obj_end(j);
		ld_json_key(j, "store");
		ld_json_obj_begin(j);
		ld_json_key(j, "commits_per_s");
		ld_json_double(j, s->commits_per_s);
		ld_json_key(j, "writes_per_commit");
		ld_json_double(j, s->writes_per_commit);
		ld_json_key(j, "commit_mean_ns");
		ld_json_double(j, s->commit_mean_ns);
		ld_json_key(j, "commit_p99_ns");
		ld_json_int(j, s->commit_p99_ns);
		ld_json_key(j, "sync_p99_ns");
		ld_json_int(j, s->sync_p99_ns);
		ld_json_key(j, "queue_depth");
		ld_json_int(j, s->queue_depth);
		ld_json_obj_end(j);
		ld_json_key(j, "generator");
		ld_json_obj_begin(j);
		ld_json_key(j, "cpu_cores");
		ld_json_double(j, s->gen_cpu);
		ld_json_key(j, "allowed_cores");
		ld_json_double(j, s->gen_allowed);
		ld_json_key(j, "busiest_thread");
		ld_json_double(j, s->gen_thread_max);
		ld_json_key(j, "core");
		ld_json_int(j, s->gen_core);
		ld_json_key(j, "quota_cores");
		ld_json_double(j, s->gen_quota);
		ld_json_key(j, "throttled");
		ld_json_double(j, s->gen_throttled);
		ld_json_key(j, "pinned_cores");
		ld_json_int(j, s->gen_pinned);
		ld_json_key(j, "pinned_busy");
		ld_json_double(j, s->gen_cores_busy);
		ld_json_key(j, "late");
		ld_json_double(j, s->late_frac);
		ld_json_obj_end(j);
		ld_json_key(j, "host");
		ld_json_obj_begin(j);
		ld_json_key(j, "cores");
		ld_json_int(j, s->ncpu);
		ld_json_key(j, "core_busy_mean");
		ld_json_double(j, s->core_busy_mean);
		ld_json_key(j, "run_queue");
		ld_json_double(j, s->run_queue);
		ld_json_key(j, "switches_per_s");
		ld_json_double(j, s->ctxt_per_s);
		ld_json_key(j, "disk");
		ld_json_str(j, s->disk);
		ld_json_key(j, "mem_available_kb");
		ld_json_int(j, s->mem_avail_kb);
		ld_json_key(j, "tcp_inuse");
		ld_json_int(j, s->tcp_inuse);
		ld_json_key(j, "tcp_tw");
		ld_json_int(j, s->tcp_tw);
		ld_json_obj_end(j);
	}
	ld_json_obj_end(j);
}

void ld_profile_json(struct ld_json *j, const struct ld_profile *p)
{
	const struct ld_prof_verdict *v = &p->verdict;

	ld_json_obj_begin(j);
	ld_json_key(j, "server_pid");
	ld_json_int(j, p->pid);
	ld_json_key(j, "interval_s");
	ld_json_double(j, p->interval_s);
	ld_json_key(j, "sample_errors");
	ld_json_int(j, p->fetch_errors);
	ld_json_key(j, "verdict");
	ld_json_obj_begin(j);
	ld_json_key(j, "resource");
	ld_json_str(j, ld_prof_kind_name(v->kind));
	ld_json_key(j, "line");
	ld_json_str(j, v->line);
	ld_json_key(j, "next");
	ld_json_str(j, v->next);
	ld_json_key(j, "utilisation");
	ld_json_double(j, v->util);
	ld_json_key(j, "step");
	ld_json_int(j, v->step);
	ld_json_key(j, "shares_ok");
	ld_json_bool(j, v->shares_ok);
	ld_json_key(j, "shares_sum");
	ld_json_double(j, v->shares_sum);
	ld_json_key(j, "law_ok");
	ld_json_bool(j, v->law_ok);
	ld_json_key(j, "notes");
	ld_json_arr_begin(j);
	for (int i = 0; i < v->nnotes; i++)
		ld_json_str(j, v->notes[i]);
	ld_json_arr_end(j);
	ld_json_obj_end(j);
	ld_json_key(j, "usl");
	if (v->have_usl) {
		ld_json_obj_begin(j);
		ld_json_key(j, "base_rps");
		ld_json_double(j, v->usl_base);
		ld_json_key(j, "sigma");
		ld_json_double(j, v->usl.sigma);
		ld_json_key(j, "kappa");
		ld_json_double(j, v->usl.kappa);
		ld_json_key(j, "lambda");
		ld_json_double(j, v->usl.lambda);
		ld_json_key(j, "r2");
		ld_json_double(j, v->usl.r2);
		ld_json_key(j, "contention_rps");
		ld_json_double(j, v->contention_rps);
		ld_json_key(j, "peak_rps");
		ld_json_double(j, v->peak_rps);
		ld_json_key(j, "line");
		ld_json_str(j, v->usl_line);
		ld_json_obj_end(j);
	} else {
		ld_json_null(j);
	}
	ld_json_key(j, "steps");
	ld_json_arr_begin(j);
	for (int i = 0; i < p->nsteps; i++)
		step_json(j, &p->steps[i], true);
	ld_json_arr_end(j);
	ld_json_key(j, "samples");
	ld_json_arr_begin(j);
	for (int i = 0; i < p->nsamples; i++)
		step_json(j, &p->samples[i], false);
	ld_json_arr_end(j);
	ld_json_obj_end(j);
}
