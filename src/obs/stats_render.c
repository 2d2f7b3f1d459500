/*
 * stats_render.c - a gathered snapshot as the ladder-stats/1 JSON document
 * and as Prometheus series (see stats.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "obs/stats_int.h"
#include "obs/threads.h"

/* ---- JSON ------------------------------------------------------------------ */

/* hist_obj writes {"count","sum<u>","p50<u>",...,"max<u>"}; u is "_ns" for
 * times and "" for counts such as batch sizes. */
static void hist_obj(struct ld_json *j, const struct ld_hdr *h, uint64_t sum, const char *u)
{
	static const struct {
		const char *name;
		double p;
	} pct[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}};
	char key[24];

	ld_json_obj_begin(j);
	ld_json_key(j, "count");
	ld_json_int(j, h->total);
	snprintf(key, sizeof(key), "sum%s", u);
	ld_json_key(j, key);
	ld_json_uint(j, sum);
	for (unsigned i = 0; i < sizeof(pct) / sizeof(pct[0]); i++) {
		snprintf(key, sizeof(key), "%s%s", pct[i].name, u);
		ld_json_key(j, key);
		ld_json_int(j, ld_hdr_percentile(h, pct[i].p));
	}
	snprintf(key, sizeof(key), "max%s", u);
	ld_json_key(j, key);
	ld_json_int(j, ld_hdr_max(h));
	ld_json_obj_end(j);
}

static void routes_json(struct ld_json *j, const struct ld_obs_snapshot *s)
{
	const struct ld_stage_set *set = &s->stages;

	ld_json_key(j, "routes");
	ld_json_arr_begin(j);
	for (unsigned r = 0; r < set->nroutes; r++) {
		const struct ld_stage_hist *t = ld_stage_hist_at(set, r, LD_STAGE_TOTAL);

		ld_json_obj_begin(j);
		ld_json_key(j, "route");
		ld_json_str(j, s->routes[r]);
		ld_json_key(j, "requests");
		ld_json_int(j, t->h.total);
		ld_json_key(j, "total");
		hist_obj(j, &t->h, t->sum_ns, "_ns");
		ld_json_key(j, "stages");
		ld_json_obj_begin(j);
		for (unsigned st = 0; st < LD_STAGE_COUNT; st++) {
			const struct ld_stage_hist *h = ld_stage_hist_at(set, r, st);

			ld_json_key(j, ld_stage_name(st));
			hist_obj(j, &h->h, h->sum_ns, "_ns");
		}
		ld_json_obj_end(j);
		ld_json_obj_end(j);
	}
	ld_json_arr_end(j);
}

static uint64_t reads_of(const struct ld_obs_snapshot *s)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < s->nloops; i++)
		n += s->loops[i].reads;
	return n;
}

int ld_obs_render_json(const struct ld_obs_snapshot *s, const struct ld_obs_store_info *st,
		       struct ld_buf *out)
{
	struct ld_thread_cpu th[LD_THREADS_MAX]; /* 5 KiB of stack */
	unsigned nth = ld_threads_read(th, LD_THREADS_MAX);
	struct ld_json j;

	ld_json_init(&j, out);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "schema");
	ld_json_str(&j, "ladder-stats/1");
	ld_json_key(&j, "pid");
	ld_json_int(&j, getpid());
	ld_json_key(&j, "now_ns");
	ld_json_uint(&j, s->now_ns);
	ld_json_key(&j, "started_ns");
	ld_json_uint(&j, s->started_ns);
	ld_json_key(&j, "loops");
	ld_json_uint(&j, s->nloops);
	ld_json_key(&j, "clock_ticks");
	ld_json_int(&j, sysconf(_SC_CLK_TCK));
	ld_json_key(&j, "stage_timing");
	ld_json_bool(&j, s->stage_timing);
	routes_json(&j, s);

	ld_json_key(&j, "loop_stats");
	ld_json_arr_begin(&j);
	for (unsigned i = 0; i < s->nloops; i++) {
		const struct ld_obs_loop_view *l = &s->loops[i];

		ld_json_obj_begin(&j);
		ld_json_key(&j, "loop");
		ld_json_uint(&j, i);
		ld_json_key(&j, "tid");
		ld_json_int(&j, l->tid);
		ld_json_key(&j, "cpu_ns");
		ld_json_uint(&j, l->tid ? ld_thread_cpu_ns(l->tid) : 0);
		ld_json_key(&j, "busy_ns");
		ld_json_uint(&j, l->busy_ns);
		ld_json_key(&j, "reads");
		ld_json_uint(&j, l->reads);
		ld_json_key(&j, "lag");
		hist_obj(&j, &l->lag, l->lag_sum_ns, "_ns");
		ld_json_obj_end(&j);
	}
	ld_json_arr_end(&j);

	ld_json_key(&j, "threads");
	ld_json_arr_begin(&j);
	for (unsigned i = 0; i < nth; i++) {
		ld_json_obj_begin(&j);
		ld_json_key(&j, "name");
		ld_json_str(&j, th[i].name);
		ld_json_key(&j, "tid");
		ld_json_int(&j, th[i].tid);
		ld_json_key(&j, "cpu_ns");
		ld_json_uint(&j, th[i].cpu_ns);
		ld_json_obj_end(&j);
	}
	ld_json_arr_end(&j);

	ld_json_key(&j, "store");
	ld_json_obj_begin(&j);
	ld_json_key(&j, "driver");
	ld_json_str(&j, st->driver);
	ld_json_key(&j, "writer_busy_ns");
	ld_json_uint(&j, s->w.busy_ns);
	ld_json_key(&j, "commits");
	ld_json_uint(&j, s->w.commits);
	ld_json_key(&j, "batches");
	ld_json_uint(&j, s->w.batches);
	ld_json_key(&j, "writes");
	ld_json_uint(&j, s->w.writes);
	ld_json_key(&j, "batch");
	hist_obj(&j, &s->w.batch, s->w.writes, "");
	ld_json_key(&j, "commit");
	hist_obj(&j, &s->w.commit, s->w.commit_sum_ns, "_ns");
	ld_json_key(&j, "sync");
	hist_obj(&j, &s->w.sync, s->w.sync_sum_ns, "_ns");
	ld_json_key(&j, "queue_depth");
	ld_json_uint(&j, st->queue_depth);
	ld_json_key(&j, "queue_cap");
	ld_json_uint(&j, st->queue_cap);
	ld_json_key(&j, "reads");
	ld_json_uint(&j, reads_of(s));
	ld_json_key(&j, "pool_in_use");
	ld_json_uint(&j, st->pool_in_use);
	ld_json_key(&j, "pool_size");
	ld_json_uint(&j, st->pool_size);
	if (st->render)
		st->render(st->render_store, &j);
	ld_json_obj_end(&j);
	ld_json_obj_end(&j);
	return ld_json_finish(&j);
}

/* ---- Prometheus ------------------------------------------------------------ */

/* Buckets in seconds, from a microsecond step to a timed-out request. */
static const double bounds_s[] = {1e-6, 2.5e-6, 5e-6,	1e-5, 2.5e-5, 5e-5,   1e-4, 2.5e-4,
				  5e-4, 1e-3,	2.5e-3, 5e-3, 1e-2,   2.5e-2, 5e-2, 0.1,
				  0.25, 0.5,	1,	2.5,  5,      10};
#define NB (sizeof(bounds_s) / sizeof(bounds_s[0]))

/* prom_hist writes the _bucket, _sum and _count lines of one HDR histogram
 * of nanoseconds; labels is `a="b",c="d"` (never empty here). */
static void prom_hist(struct ld_buf *out, const char *name, const char *labels,
		      const struct ld_hdr *h, uint64_t sum_ns)
{
	int64_t bounds_ns[NB], cum[NB];

	for (unsigned i = 0; i < NB; i++)
		bounds_ns[i] = (int64_t)(bounds_s[i] * 1e9 + 0.5);
	ld_hdr_cumulative(h, bounds_ns, (int)NB, cum);
	for (unsigned i = 0; i < NB; i++)
		ld_buf_printf(out, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels, bounds_s[i],
			      (long long)cum[i]);
	ld_buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %lld\n", name, labels, (long long)h->total);
	ld_buf_printf(out, "%s_sum{%s} %.9g\n", name, labels, (double)sum_ns * 1e-9);
	ld_buf_printf(out, "%s_count{%s} %lld\n", name, labels, (long long)h->total);
}

static void prom_threads(struct ld_buf *out)
{
	struct ld_thread_cpu th[LD_THREADS_MAX]; /* 5 KiB of stack */
	unsigned n = ld_threads_read(th, LD_THREADS_MAX), i, k;

	ld_buf_puts(out, "# HELP ladder_thread_cpu_seconds_total CPU time of the process's "
			 "threads by role (loop-N, writer, checkpointer, main, pool).\n"
			 "# TYPE ladder_thread_cpu_seconds_total counter\n");
	/* One series per name: the thread pool's threads add up. */
	for (i = 0; i < n; i++) {
		uint64_t ns = th[i].cpu_ns;

		for (k = 0; k < i && strcmp(th[k].name, th[i].name) != 0; k++)
			;
		if (k < i)
			continue;
		for (k = i + 1; k < n; k++)
			if (strcmp(th[k].name, th[i].name) == 0)
				ns += th[k].cpu_ns;
		ld_buf_printf(out, "ladder_thread_cpu_seconds_total{thread=\"%s\"} %.9g\n",
			      th[i].name, (double)ns * 1e-9);
	}
}

int ld_obs_render_prom(const struct ld_obs_snapshot *s, const struct ld_obs_store_info *st,
		       struct ld_buf *out)
{
	const struct ld_stage_set *set = &s->stages;
	char labels[256];

	ld_buf_puts(out, "# HELP ladder_stage_seconds Time of each request spent in each stage, "
			 "by route; the stages of a request add up to its whole time.\n"
			 "# TYPE ladder_stage_seconds histogram\n");
	for (unsigned r = 0; r < set->nroutes; r++)
		for (unsigned i = 0; i < LD_STAGE_COUNT; i++) {
			const struct ld_stage_hist *h = ld_stage_hist_at(set, r, i);

			if (!h->h.total)
				continue;
			snprintf(labels, sizeof(labels), "route=\"%s\",stage=\"%s\"", s->routes[r],
				 ld_stage_name(i));
			prom_hist(out, "ladder_stage_seconds", labels, &h->h, h->sum_ns);
		}
	ld_buf_puts(out, "# HELP ladder_loop_lag_seconds How late each event loop's periodic "
			 "timer fires.\n"
			 "# TYPE ladder_loop_lag_seconds histogram\n");
	for (unsigned i = 0; i < s->nloops; i++) {
		snprintf(labels, sizeof(labels), "loop=\"%u\"", i);
		prom_hist(out, "ladder_loop_lag_seconds", labels, &s->loops[i].lag,
			  s->loops[i].lag_sum_ns);
	}
	ld_buf_puts(out, "# HELP ladder_loop_busy_seconds_total Time each event loop spent "
			 "outside its poll wait.\n"
			 "# TYPE ladder_loop_busy_seconds_total counter\n");
	for (unsigned i = 0; i < s->nloops; i++)
		ld_buf_printf(out, "ladder_loop_busy_seconds_total{loop=\"%u\"} %.9g\n", i,
			      (double)s->loops[i].busy_ns * 1e-9);
	prom_threads(out);
	ld_buf_printf(out,
		      "# HELP ladder_store_writer_busy_seconds_total Time the store's writer "
		      "thread spent on batches (busy fraction = rate of this).\n"
		      "# TYPE ladder_store_writer_busy_seconds_total counter\n"
		      "ladder_store_writer_busy_seconds_total %.9g\n"
		      "# HELP ladder_store_write_queue_depth Writes waiting for the writer thread "
		      "now.\n"
		      "# TYPE ladder_store_write_queue_depth gauge\n"
		      "ladder_store_write_queue_depth %u\n"
		      "# HELP ladder_store_write_queue_capacity Writes that may wait before new "
		      "ones are refused.\n"
		      "# TYPE ladder_store_write_queue_capacity gauge\n"
		      "ladder_store_write_queue_capacity %u\n",
		      (double)s->w.busy_ns * 1e-9, st->queue_depth, st->queue_cap);
	ld_buf_printf(out,
		      "# HELP ladder_store_read_ops_total Store reads served on the event "
		      "loops.\n"
		      "# TYPE ladder_store_read_ops_total counter\n"
		      "ladder_store_read_ops_total %llu\n",
		      (unsigned long long)reads_of(s));
	/* The buffer's first failure sticks (buf.h): one check for all. */
	return ld_buf_error(out);
}
