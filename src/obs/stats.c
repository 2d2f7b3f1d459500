/*
 * stats.c - per-loop figures, the writer's figures and the gather that makes
 * one snapshot of them (see stats.h for the design; stats_render.c writes
 * the snapshot out).
 */
#include "obs/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/stats_int.h"
#include "obs/threads.h"

/* How often each loop checks how late its timer fires. */
#define LAG_INTERVAL_MS 100

struct obs_loop {
	unsigned index;
	uv_loop_t *uv;
	uv_async_t async;
	uv_timer_t lag_timer;
	bool attached; /* handles initialised */
	bool open;     /* async may be signalled (under g.mu) */
	uint64_t lag_due;
	uint64_t opened_ns;
	/* Loop thread only while open; final once closed. */
	struct ld_hdr lag;
	uint64_t lag_sum_ns;
	struct ld_stage_set set;
	uint64_t reads;
	int tid;
	uint64_t busy_final;
	unsigned contributed; /* gen of the last gather it joined (under g.mu) */
};

enum gather_state { IDLE, GATHERING, SERVING };

static struct {
	bool ready;
	bool stage_timing;
	unsigned nloops;
	struct obs_loop *loops;

	uv_mutex_t mu; /* everything of the gather below */
	enum gather_state state;
	unsigned gen, remaining, serving;
	struct ld_obs_waiter *current, *queued, *queued_tail;
	struct ld_obs_snapshot acc;

	uv_mutex_t wmu; /* the writer's figures */
	struct ld_obs_writer w;
} g;

static uint64_t busy_ns(struct obs_loop *l)
{
	uint64_t up = uv_hrtime() - l->opened_ns, idle = uv_metrics_idle_time(l->uv);

	return up > idle ? up - idle : 0;
}

static int writer_init(struct ld_obs_writer *w)
{
	int rc;

	memset(w, 0, sizeof(*w));
	rc = ld_hdr_init(&w->batch, 1 << 20, LD_STAGE_SIGFIGS);
	if (!rc)
		rc = ld_hdr_init(&w->commit, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS);
	if (!rc)
		rc = ld_hdr_init(&w->sync, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS);
	return rc;
}

static void writer_release(struct ld_obs_writer *w)
{
	ld_hdr_release(&w->batch);
	ld_hdr_release(&w->commit);
	ld_hdr_release(&w->sync);
}

static void writer_copy(struct ld_obs_writer *dst, const struct ld_obs_writer *src)
{
	ld_hdr_reset(&dst->batch);
	ld_hdr_reset(&dst->commit);
	ld_hdr_reset(&dst->sync);
	ld_hdr_merge(&dst->batch, &src->batch);
	ld_hdr_merge(&dst->commit, &src->commit);
	ld_hdr_merge(&dst->sync, &src->sync);
	dst->busy_ns = src->busy_ns;
	dst->commit_sum_ns = src->commit_sum_ns;
	dst->sync_sum_ns = src->sync_sum_ns;
	dst->commits = src->commits;
	dst->batches = src->batches;
	dst->writes = src->writes;
	dst->tid = src->tid;
}

void ld_obs_fini(void)
{
	unsigned i;

	if (!g.ready)
		return;
	for (i = 0; i < g.nloops; i++) {
		ld_hdr_release(&g.loops[i].lag);
		ld_stage_set_release(&g.loops[i].set);
	}
	if (g.acc.loops)
		for (i = 0; i < g.nloops; i++)
			ld_hdr_release(&g.acc.loops[i].lag);
	free(g.acc.loops);
	ld_stage_set_release(&g.acc.stages);
	writer_release(&g.acc.w);
	writer_release(&g.w);
	free(g.loops);
	uv_mutex_destroy(&g.mu);
	uv_mutex_destroy(&g.wmu);
	memset(&g, 0, sizeof(g));
}

int ld_obs_init(const struct ld_obs_config *cfg)
{
	unsigned i;
	int rc = -EINVAL;

	if (g.ready || !cfg->nloops || !cfg->nroutes)
		goto out;
	memset(&g, 0, sizeof(g));
	uv_mutex_init(&g.mu);
	uv_mutex_init(&g.wmu);
	g.ready = true; /* from here on fini undoes whatever was made */
	g.stage_timing = cfg->stage_timing;
	g.nloops = cfg->nloops;
	g.acc.routes = cfg->route_names;
	g.acc.nloops = cfg->nloops;
	g.acc.stage_timing = cfg->stage_timing;
	g.acc.started_ns = uv_hrtime();
	rc = -ENOMEM;
	g.loops = calloc(cfg->nloops, sizeof(*g.loops));
	g.acc.loops = calloc(cfg->nloops, sizeof(*g.acc.loops));
	if (!g.loops || !g.acc.loops)
		goto fail;
	for (i = 0; i < cfg->nloops; i++) {
		g.loops[i].index = i;
		rc = ld_hdr_init(&g.loops[i].lag, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS);
		if (!rc)
			rc =
			    ld_hdr_init(&g.acc.loops[i].lag, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS);
		if (!rc)
			rc = ld_stage_set_init(&g.loops[i].set, cfg->nroutes);
		if (rc)
			goto fail;
	}
	rc = ld_stage_set_init(&g.acc.stages, cfg->nroutes);
	if (!rc)
		rc = writer_init(&g.w);
	if (!rc)
		rc = writer_init(&g.acc.w);
	if (rc)
		goto fail;
	goto out;
fail:
	ld_obs_fini();
out:
	return rc;
}

bool ld_obs_stage_timing(void)
{
	return g.stage_timing;
}

/* ---- the gather (everything below runs under g.mu) ------------------------ */

static void complete(void);

/* contribute merges loop l into the accumulator: on l's thread, or after l
 * closed (its figures no longer move). */
static void contribute(struct obs_loop *l)
{
	struct ld_obs_loop_view *v = &g.acc.loops[l->index];

	ld_stage_set_merge(&g.acc.stages, &l->set);
	ld_hdr_reset(&v->lag);
	ld_hdr_merge(&v->lag, &l->lag);
	v->lag_sum_ns = l->lag_sum_ns;
	v->reads = l->reads;
	v->tid = l->tid;
	v->busy_ns = l->open ? busy_ns(l) : l->busy_final;
	v->open = l->open;
	l->contributed = g.gen;
	if (--g.remaining == 0)
		complete();
}

/* complete finishes the snapshot and wakes every loop with a waiter. */
static void complete(void)
{
	struct ld_obs_waiter *w, *o;

	uv_mutex_lock(&g.wmu);
	writer_copy(&g.acc.w, &g.w);
	uv_mutex_unlock(&g.wmu);
	g.acc.now_ns = uv_hrtime();
	g.state = SERVING;
	g.serving = 0;
	for (w = g.current; w; w = w->next) {
		w->ready = true;
		g.serving++;
	}
	for (w = g.current; w; w = w->next) {
		/* One wake-up per loop, however many waiters it has. */
		for (o = g.current; o != w && o->loop != w->loop; o = o->next)
			;
		if (o == w && g.loops[w->loop].open)
			uv_async_send(&g.loops[w->loop].async);
	}
}

static void start_cycle(void)
{
	unsigned i;

	g.current = g.queued;
	g.queued = g.queued_tail = NULL;
	g.gen++;
	g.state = GATHERING;
	ld_stage_set_reset(&g.acc.stages);
	g.remaining = g.nloops;
	for (i = 0; i < g.nloops; i++) {
		if (g.loops[i].open)
			uv_async_send(&g.loops[i].async);
	}
	/* Stopped loops cannot answer; their figures are final. */
	for (i = 0; i < g.nloops && g.state == GATHERING; i++)
		if (!g.loops[i].open)
			contribute(&g.loops[i]);
}

static void end_serving(unsigned n)
{
	g.serving -= n;
	if (g.serving || g.state != SERVING)
		return;
	g.current = NULL; /* every waiter was taken off already */
	g.state = IDLE;
	if (g.queued)
		start_cycle();
}

static void on_async(uv_async_t *a)
{
	struct obs_loop *l = a->data;
	struct ld_obs_waiter *w, *mine = NULL, **pp, *next;
	unsigned n = 0;

	uv_mutex_lock(&g.mu);
	if (g.state == GATHERING && l->contributed != g.gen)
		contribute(l);
	if (g.state == SERVING) {
		/* Take this loop's waiters off the list: once answered, the
		 * request that holds a waiter ends and its memory is reused
		 * (the next request on the connection zeroes it), so no other
		 * thread may reach it through the list any more. They are
		 * answered outside the lock, while the accumulator stays still
		 * (SERVING until every waiter of the cycle is done). */
		for (pp = &g.current; (w = *pp) != NULL;) {
			if (w->loop == l->index && w->ready) {
				*pp = w->next;
				w->next = mine;
				mine = w;
				n++;
			} else {
				pp = &w->next;
			}
		}
	}
	uv_mutex_unlock(&g.mu);
	for (w = mine; w; w = next) {
		next = w->next; /* cb ends the request holding w */
		w->cb(&g.acc, w->arg);
	}
	if (n) {
		uv_mutex_lock(&g.mu);
		end_serving(n);
		uv_mutex_unlock(&g.mu);
	}
}

void ld_obs_gather(struct ld_obs_waiter *w, unsigned index, ld_obs_cb cb, void *arg)
{
	w->cb = cb;
	w->arg = arg;
	w->loop = index;
	w->ready = false;
	w->next = NULL;
	uv_mutex_lock(&g.mu);
	if (g.queued_tail)
		g.queued_tail->next = w;
	else
		g.queued = w;
	g.queued_tail = w;
	if (g.state == IDLE)
		start_cycle();
	uv_mutex_unlock(&g.mu);
}

/* ---- loops ----------------------------------------------------------------- */

static void on_lag(uv_timer_t *t)
{
	struct obs_loop *l = t->data;
	uint64_t now = uv_hrtime();

	if (!l->lag_due) {
		/* The first run, on the loop's own thread: learn its id. */
		char name[LD_THREAD_NAME_MAX];

		snprintf(name, sizeof(name), "loop-%u", l->index);
		ld_thread_register(name);
		l->tid = ld_thread_self();
	} else {
		uint64_t late = now > l->lag_due ? now - l->lag_due : 0;

		ld_hdr_record(&l->lag, (int64_t)late);
		l->lag_sum_ns += late;
	}
	l->lag_due = now + (uint64_t)LAG_INTERVAL_MS * 1000000u;
	uv_timer_start(t, on_lag, LAG_INTERVAL_MS, 0);
}

int ld_obs_loop_open(unsigned index, uv_loop_t *loop)
{
	struct obs_loop *l;
	int rc = -EINVAL;

	if (!g.ready || index >= g.nloops)
		goto out;
	l = &g.loops[index];
	l->uv = loop;
	/* Idle-time accounting must be switched on before the loop runs. */
	rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
	if (rc)
		goto out;
	rc = uv_async_init(loop, &l->async, on_async);
	if (rc)
		goto out;
	l->async.data = l;
	uv_timer_init(loop, &l->lag_timer);
	l->lag_timer.data = l;
	uv_timer_start(&l->lag_timer, on_lag, 0, 0);
	/* Neither handle may keep a draining loop alive. */
	uv_unref((uv_handle_t *)&l->async);
	uv_unref((uv_handle_t *)&l->lag_timer);
	l->attached = true;
	l->opened_ns = uv_hrtime();
	uv_mutex_lock(&g.mu);
	l->open = true;
	uv_mutex_unlock(&g.mu);
out:
	return rc;
}

void ld_obs_loop_close(unsigned index)
{
	struct obs_loop *l;

	if (!g.ready || index >= g.nloops || !g.loops[index].attached)
		return;
	l = &g.loops[index];
	uv_mutex_lock(&g.mu);
	if (g.state == GATHERING && l->contributed != g.gen)
		contribute(l);
	l->busy_final = busy_ns(l);
	l->open = false;
	uv_mutex_unlock(&g.mu);
	l->attached = false;
	uv_close((uv_handle_t *)&l->async, NULL);
	uv_close((uv_handle_t *)&l->lag_timer, NULL);
}

void ld_obs_record(unsigned index, unsigned route, const struct ld_stage_clock *c, uint64_t end_ns)
{
	if (index < g.nloops)
		ld_stage_record(&g.loops[index].set, route, c, end_ns);
}

void ld_obs_count_read(unsigned index)
{
	if (index < g.nloops)
		g.loops[index].reads++;
}

void ld_obs_writer_batch(unsigned n, bool committed, uint64_t taken, uint64_t commit_start,
			 uint64_t sync_start, uint64_t commit_end, uint64_t done)
{
	if (!g.ready)
		return;
	uv_mutex_lock(&g.wmu);
	if (!g.w.tid)
		g.w.tid = ld_thread_self();
	if (committed) {
		ld_hdr_record(&g.w.batch, n);
		if (commit_end >= commit_start) {
			ld_hdr_record(&g.w.commit, (int64_t)(commit_end - commit_start));
			g.w.commit_sum_ns += commit_end - commit_start;
		}
		if (commit_end >= sync_start) {
			ld_hdr_record(&g.w.sync, (int64_t)(commit_end - sync_start));
			g.w.sync_sum_ns += commit_end - sync_start;
		}
		g.w.commits++;
		g.w.writes += n;
	}
	if (done >= taken)
		g.w.busy_ns += done - taken;
	g.w.batches++;
	uv_mutex_unlock(&g.wmu);
}
