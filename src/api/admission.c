/*
 * admission.c - the concurrency limit, wait queue and deadlines of the
 * request path (admission.h).
 *
 * Queued requests are admitted and swept from one timer per loop, never from
 * inside another request's ld_req_respond: a response kicks the timer (due
 * now), so admission never nests handlers on the stack. While the queue
 * holds anything the timer also runs at the next entry's expiry, and at
 * least every SWEEP_MS to look for clients that went away.
 */
#include "api/admission.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "base/config.h"
#include "obs/metrics.h"

#define SWEEP_MS 20

struct ld_adm_config ld_adm_cfg;

#define O(f) offsetof(struct ld_adm_config, f), 0, 0

/* clang-format off */
static const struct ld_opt adm_opts[] = {
    {"admission", 0, "admission", "LADDER_ADMISSION", LD_OPT_BOOL, O(enabled), "on", 0, 0, NULL, 0,
     NULL, NULL, "on|off", "adaptive concurrency limit and wait queue per loop (off: no limit)"},
    {"admission-initial-limit", 0, "admission_initial_limit", "LADDER_ADMISSION_INITIAL_LIMIT", LD_OPT_UINT,
     O(initial_limit), "32", 1, 1000000, NULL, 0, NULL, NULL, "N",
     "requests in flight per loop before the limit has adapted"},
    {"admission-min-limit", 0, "admission_min_limit", "LADDER_ADMISSION_MIN_LIMIT", LD_OPT_UINT,
     O(min_limit), "1", 1, 1000000, NULL, 0, NULL, NULL, "N",
     "the limit never goes below this (and is this during a min-RTT probe)"},
    {"admission-max-limit", 0, "admission_max_limit", "LADDER_ADMISSION_MAX_LIMIT", LD_OPT_UINT,
     O(max_limit), "1000", 1, 1000000, NULL, 0, NULL, NULL, "N",
     "the limit never goes above this"},
    {"admission-window", 0, "admission_window", "LADDER_ADMISSION_WINDOW", LD_OPT_DUR, O(window_ms),
     "100ms", 1, 60000, NULL, 0, NULL, NULL, "DURATION",
     "how often the limit moves (each time from the window's median RTT)"},
    {"admission-tolerance", 0, "admission_tolerance", "LADDER_ADMISSION_TOLERANCE", LD_OPT_UINT,
     O(tolerance_pct), "50", 0, 1000, NULL, 0, NULL, NULL, "PERCENT",
     "RTT above the min RTT that still counts as no queue"},
    {"admission-probe-interval", 0, "admission_probe_interval", "LADDER_ADMISSION_PROBE_INTERVAL",
     LD_OPT_DUR, O(probe_interval_ms), "30s", 1, 86400000, NULL, 0, NULL, NULL, "DURATION",
     "how often the min RTT is measured again (limit pinned to the minimum meanwhile)"},
    {"admission-queue", 0, "admission_queue", "LADDER_ADMISSION_QUEUE", LD_OPT_UINT, O(queue), "128", 0,
     65536, NULL, 0, NULL, NULL, "N", "requests that may wait for the limit, per loop"},
    {"admission-queue-target", 0, "admission_queue_target", "LADDER_ADMISSION_QUEUE_TARGET", LD_OPT_DUR,
     O(target_ms), "5ms", 1, 60000, NULL, 0, NULL, NULL, "DURATION",
     "longest wait in a standing queue (one not empty for a whole interval)"},
    {"admission-queue-interval", 0, "admission_queue_interval", "LADDER_ADMISSION_QUEUE_INTERVAL",
     LD_OPT_DUR, O(interval_ms), "100ms", 1, 600000, NULL, 0, NULL, NULL, "DURATION",
     "longest wait otherwise; a queue not empty for this long is standing"},
    {"shed-writes-last", 0, "shed_writes_last", "LADDER_SHED_WRITES_LAST", LD_OPT_BOOL,
     O(shed_writes_last), "off", 0, 0, NULL, 0, NULL, NULL, "on|off",
     "queued writes go before queued reads, and may take a read's place in a full queue"},
    {"request-deadline", 0, "request_deadline", "LADDER_REQUEST_DEADLINE", LD_OPT_DUR,
     O(deadline_ms), "0s", 0, 3600000, NULL, 0, NULL, NULL, "DURATION",
     "a request's time budget from dispatch; 0s: --store-timeout (Request-Timeout may only "
     "shorten it)"},
};
/* clang-format on */

static const struct ld_opt_section adm_section = {
    "admission", adm_opts, sizeof(adm_opts) / sizeof(adm_opts[0]),
    "Overload control: concurrency limit, wait queue, deadlines (docs/operations.md)"};
static unsigned char adm_sources[sizeof(adm_opts) / sizeof(adm_opts[0])];

int ld_adm_register(void)
{
	return ld_config_register(&adm_section, &ld_adm_cfg, adm_sources);
}

/* ---- metrics ---------------------------------------------------------------- */

static const char *const drop_names[LD_CODEL_NDROPS] = {
    [LD_CODEL_FULL] = "queue_full",
    [LD_CODEL_DELAY] = "queue_delay",
    [LD_CODEL_DEADLINE] = "deadline",
    [LD_CODEL_GONE] = "client_gone",
};

struct adm_stats {
	_Atomic unsigned limit, inflight, qlen;
	_Atomic uint64_t min_rtt_ns, rtt_ns, last_wait_ns;
	_Atomic uint64_t admitted, dequeued, wait_ns_total;
	_Atomic uint64_t shed[LD_CODEL_NDROPS][2];
};

static struct adm_stats *stats;
static unsigned nstats;
static _Atomic uint64_t expired_store, expired_cache;

int ld_adm_setup(unsigned nloops, char *err, size_t errlen)
{
	const struct ld_adm_config *c = &ld_adm_cfg;

	if (c->min_limit > c->max_limit) {
		snprintf(err, errlen,
			 "--admission-min-limit (%u) is above --admission-max-limit (%u)",
			 c->min_limit, c->max_limit);
		return -EINVAL;
	}
	if (c->target_ms > c->interval_ms) {
		snprintf(err, errlen,
			 "--admission-queue-target is longer than --admission-queue-interval");
		return -EINVAL;
	}
	free(stats);
	stats = calloc(nloops ? nloops : 1, sizeof(*stats));
	if (!stats) {
		snprintf(err, errlen, "admission: out of memory");
		return -ENOMEM;
	}
	nstats = nloops ? nloops : 1;
	return 0;
}

#define RLX memory_order_relaxed

/* ---- per loop ---------------------------------------------------------------- */

struct ld_adm_loop {
	unsigned index;
	struct ld_climit lim;
	struct ld_codel q;
	unsigned inflight;
	uint64_t last_sweep_ns; /* the last full look at the queue */
	uv_timer_t timer;
	struct adm_stats *st;
};

static struct ld_api_req *req_of(struct ld_codel_entry *e)
{
	return (struct ld_api_req *)((char *)e - offsetof(struct ld_api_req, adm.e));
}

static void publish(struct ld_adm_loop *a)
{
	atomic_store_explicit(&a->st->limit, ld_climit_limit(&a->lim), RLX);
	atomic_store_explicit(&a->st->inflight, a->inflight, RLX);
	atomic_store_explicit(&a->st->qlen, a->q.len, RLX);
	atomic_store_explicit(&a->st->min_rtt_ns, a->lim.min_rtt_ns, RLX);
	atomic_store_explicit(&a->st->rtt_ns, a->lim.last_rtt_ns, RLX);
}

int ld_api_adm_loop_open(struct ld_api_loop *al, unsigned index, uv_loop_t *uv)
{
	const struct ld_adm_config *c = &ld_adm_cfg;
	struct ld_adm_loop *a;
	uint64_t now = uv_hrtime();

	al->adm = NULL;
	if (!c->enabled)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->index = index;
	a->st = &stats[index < nstats ? index : 0];
	ld_climit_init(&a->lim,
		       &(struct ld_climit_params){
			   .initial = c->initial_limit,
			   .min_limit = c->min_limit,
			   .max_limit = c->max_limit,
			   .window_ns = c->window_ms * 1000000ull,
			   .window_samples = 8,
			   .tolerance = c->tolerance_pct / 100.0,
			   .probe_interval_ns = c->probe_interval_ms * 1000000ull,
			   .probe_samples = 16,
			   /* Its queue must not wait as long as the queue
			    * allows: the probe would shed (conclimit.h). */
			   .probe_max_ns = c->interval_ms * 1000000ull / 2,
		       },
		       now);
	ld_codel_init(&a->q,
		      &(struct ld_codel_params){
			  .cap = c->queue,
			  .target_ns = c->target_ms * 1000000ull,
			  .interval_ns = c->interval_ms * 1000000ull,
			  .writes_first = c->shed_writes_last,
		      },
		      now);
	uv_timer_init(uv, &a->timer);
	a->timer.data = a;
	publish(a);
	al->adm = a;
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void ld_api_adm_loop_close(struct ld_api_loop *al)
{
	struct ld_adm_loop *a = al->adm;

	if (!a)
		return;
	/* Every connection is gone before loop_fini, and a queued request
	 * holds its connection: the queue is empty. */
	uv_timer_stop(&a->timer);
	uv_close((uv_handle_t *)&a->timer, on_timer_closed);
	al->adm = NULL;
}

/* ---- deadlines --------------------------------------------------------------- */

static bool exempt(const struct ld_api_req *q);

int ld_api_adm_budget(struct ld_api_req *q)
{
	const struct ld_http_field *f = ld_http_find(&q->r->h, "request-timeout");
	uint64_t ms = ld_adm_cfg.deadline_ms ? ld_adm_cfg.deadline_ms : ld_adm_cfg.store_timeout_ms;
	uint64_t v = 0;
	size_t i;

	/* Health checks and the like take no budget: a balancer's probe is
	 * answered whatever it sends. */
	if (exempt(q))
		return 0;
	if (f) {
		bool ok = f->value_len >= 1 && f->value_len <= 9;

		for (i = 0; ok && i < f->value_len; i++) {
			ok = f->value[i] >= '0' && f->value[i] <= '9';
			v = v * 10 + (uint64_t)(f->value[i] - '0');
		}
		if (!ok || v == 0) {
			ld_api_problem(q, 400,
				       "the Request-Timeout header must be a whole number of "
				       "milliseconds from 1 to 999999999");
			return -1;
		}
		if (v < ms)
			ms = v;
	}
	/* The budget runs from the dispatch's reading (ld_req_now): this is
	 * the request's first step. */
	q->adm.deadline_ns = ms ? ld_req_now(q->r) + ms * 1000000ull : 0;
	return 0;
}

bool ld_api_adm_expired(struct ld_api_req *q, uint64_t now_ns, const char *where)
{
	if (!q->adm.deadline_ns || now_ns < q->adm.deadline_ns)
		return false;
	if (!q->adm.expired)
		atomic_fetch_add_explicit(strcmp(where, "cache") ? &expired_store : &expired_cache,
					  1, RLX);
	q->adm.expired = true;
	return true;
}

uint64_t ld_api_adm_store_deadline(const struct ld_api_req *q, uint64_t now_ns)
{
	uint64_t own =
	    ld_adm_cfg.store_timeout_ms ? now_ns + ld_adm_cfg.store_timeout_ms * 1000000ull : 0;

	if (!q->adm.deadline_ns)
		return own;
	return own && own < q->adm.deadline_ns ? own : q->adm.deadline_ns;
}

/* ---- admission ------------------------------------------------------------- */

static bool exempt(const struct ld_api_req *q)
{
	switch (q->r->route) {
	case LD_ROUTE_HEALTHZ:
	case LD_ROUTE_READYZ:
	case LD_ROUTE_METRICS:
	case LD_ROUTE_DEBUG_STATS:
	case LD_ROUTE_PHOTO_CONTENT: /* its body is in a sink already */
		return true;
	default:
		return false;
	}
}

static enum ld_codel_class class_of(const struct ld_api_req *q)
{
	enum ld_http_method m = q->r->h.method;

	return m == LD_HTTP_GET || m == LD_HTTP_HEAD ? LD_CODEL_READ : LD_CODEL_WRITE;
}

static const char *const shed_detail[LD_CODEL_NDROPS] = {
    [LD_CODEL_FULL] = "the server is overloaded: too many requests are waiting; retry after a "
		      "moment",
    [LD_CODEL_DELAY] = "the server is overloaded: the request waited too long for capacity; "
		       "retry after a moment",
    [LD_CODEL_DEADLINE] = "the request's time budget ran out while it waited for capacity "
			  "(Request-Timeout, or the server's request deadline)",
    [LD_CODEL_GONE] = "the client went away while the request waited",
};

/* shed answers q 503 for why at now (Retry-After comes with every 503
 * problem); a queued q's wait up to now is its queue stage. */
static void shed(struct ld_adm_loop *a, struct ld_api_req *q, enum ld_codel_drop why, uint64_t now)
{
	if (q->adm.queued)
		ld_stage_mark_at(&q->r->stages, LD_STAGE_QUEUE, now);
	q->adm.queued = false;
	atomic_fetch_add_explicit(&a->st->shed[why][q->adm.e.cls], 1, RLX);
	ld_metrics_shed();
	if (why == LD_CODEL_GONE)
		ld_req_close_after(q->r);
	ld_api_problem(q, 503, shed_detail[why]);
}

static void start(struct ld_adm_loop *a, struct ld_api_req *q, uint64_t now)
{
	q->adm.counted = true;
	q->adm.admitted_ns = now;
	a->inflight++;
	atomic_fetch_add_explicit(&a->st->admitted, 1, RLX);
}

static void on_timer(uv_timer_t *t);

/* arm sets the timer for the queue's next event, unless it is due sooner
 * already (a kick). */
static void arm(struct ld_adm_loop *a, uint64_t now)
{
	uint64_t due = ld_codel_head_due(&a->q, now), ms = SWEEP_MS, since;

	if (!a->q.len)
		return;
	since = (now - a->last_sweep_ns) / 1000000;
	ms = since >= SWEEP_MS ? 0 : SWEEP_MS - since;
	if (due && due <= now)
		ms = 0;
	else if (due && (due - now + 999999) / 1000000 < ms)
		ms = (due - now + 999999) / 1000000;
	if (uv_is_active((uv_handle_t *)&a->timer) && uv_timer_get_due_in(&a->timer) <= ms)
		return;
	uv_timer_start(&a->timer, on_timer, ms, 0);
}

/* gone_one finds a queued request whose client has gone, or NULL. */
static struct ld_codel_entry *gone_one(struct ld_adm_loop *a)
{
	for (unsigned i = 0; i < 2; i++)
		for (struct ld_codel_entry *e = ld_codel_first(&a->q, i); e; e = e->next)
			if (ld_req_client_gone(req_of(e)->r))
				return e;
	return NULL;
}

static void on_timer(uv_timer_t *t)
{
	struct ld_adm_loop *a = t->data;
	struct ld_codel_entry *e;
	enum ld_codel_drop why;
	uint64_t now = uv_hrtime();

	/* A full look (every deadline, every client) costs the queue's
	 * length in steps and a syscall per entry: every SWEEP_MS, not on each
	 * of the many kicks of a busy loop, which look at the heads only. Each
	 * shed or handler below may answer at once and so run the next
	 * pipelined request of its connection, which may queue: every step
	 * starts again from the queue as it is now. */
	bool sweep = now - a->last_sweep_ns >= SWEEP_MS * 1000000ull;

	/* A pinned probe's queue is the limiter's own doing (codel.h). */
	if (ld_climit_pinned(&a->lim))
		ld_codel_excuse(&a->q, now);

	/* A shed answers at once and may dispatch and queue the connection's
	 * next pipelined request with a reading taken after ours: the clock
	 * is read again after each, so no entry is younger than now. */
	while ((e = sweep ? ld_codel_expire(&a->q, now, &why)
			  : ld_codel_expire_head(&a->q, now, &why))) {
		shed(a, req_of(e), why, now);
		now = uv_hrtime();
	}
	if (sweep) {
		a->last_sweep_ns = now;
		while ((e = gone_one(a))) {
			ld_codel_remove(&a->q, e, now);
			shed(a, req_of(e), LD_CODEL_GONE, now);
			now = uv_hrtime();
		}
	}
	while (a->inflight < ld_climit_limit(&a->lim) && (e = ld_codel_pop(&a->q, now))) {
		struct ld_api_req *q = req_of(e);
		uint64_t wait = now > e->enq_ns ? now - e->enq_ns : 0;

		/* Its deadline may have passed since the last full look. */
		if (e->deadline_ns && now >= e->deadline_ns) {
			shed(a, q, LD_CODEL_DEADLINE, now);
			now = uv_hrtime();
			continue;
		}

		q->adm.queued = false;
		ld_stage_mark_at(&q->r->stages, LD_STAGE_QUEUE, now);
		atomic_store_explicit(&a->st->last_wait_ns, wait, RLX);
		atomic_fetch_add_explicit(&a->st->wait_ns_total, wait, RLX);
		atomic_fetch_add_explicit(&a->st->dequeued, 1, RLX);
		start(a, q, now);
		/* The handler resumes q after its wait: a step of its own,
		 * beginning at this reading. */
		ld_req_step_at(q->r, now);
		q->adm.handler(q);
		now = uv_hrtime();
	}
	publish(a);
	arm(a, now);
}

bool ld_api_adm_admit(struct ld_api_req *q, void (*handler)(struct ld_api_req *q))
{
	struct ld_adm_loop *a = q->al->adm;
	struct ld_codel_entry *evicted;
	uint64_t now;

	if (!a || exempt(q))
		return false;
	/* In the step that dispatched q, or that the rate limiter's answer
	 * resumed (ld_api_rl_admit): its reading is now. */
	now = ld_req_now(q->r);
	q->adm.e.cls = class_of(q);
	if (a->inflight < ld_climit_limit(&a->lim)) {
		start(a, q, now);
		publish(a);
		return false;
	}
	q->adm.handler = handler;
	q->adm.e.deadline_ns = q->adm.deadline_ns;
	if (ld_codel_push(&a->q, &q->adm.e, now, &evicted) != 0) {
		shed(a, q, LD_CODEL_FULL, now);
		publish(a);
		return true;
	}
	q->adm.queued = true;
	if (evicted)
		shed(a, req_of(evicted), LD_CODEL_FULL, now);
	publish(a);
	arm(a, now);
	return true;
}

void ld_api_adm_respond(struct ld_req *r, int status, void *arg)
{
	struct ld_api_req *q = r->app;
	struct ld_adm_loop *a;
	uint64_t now;

	(void)status;
	(void)arg;
	if (!q || !q->adm.counted || !q->al || !(a = q->al->adm))
		return;
	q->adm.counted = false;
	now = ld_req_now(r); /* ld_req_respond's reading, the answer built */
	ld_climit_sample(&a->lim, now - q->adm.admitted_ns, a->inflight, a->q.len, now);
	a->inflight--;
	/* The queue's turn comes from the timer, not from this stack. */
	if (a->q.len && a->inflight < ld_climit_limit(&a->lim))
		uv_timer_start(&a->timer, on_timer, 0, 0);
	publish(a);
}

void ld_api_adm_metrics(struct ld_buf *out)
{
	static const char *const cls[2] = {"read", "write"};
	unsigned i, d, k;

	ld_buf_printf(out,
		      "# HELP ladder_admission_enabled Whether the adaptive concurrency limit "
		      "is on.\n"
		      "# TYPE ladder_admission_enabled gauge\n"
		      "ladder_admission_enabled %d\n",
		      ld_adm_cfg.enabled ? 1 : 0);
	ld_buf_printf(out, "# HELP ladder_deadline_expired_total Requests whose time budget ran "
			   "out before a store op or a cache wait was started (the work was not "
			   "done); those that ran out in the wait queue are "
			   "ladder_admission_shed_total{reason=\"deadline\"}.\n"
			   "# TYPE ladder_deadline_expired_total counter\n");
	ld_buf_printf(out, "ladder_deadline_expired_total{where=\"store\"} %llu\n",
		      (unsigned long long)atomic_load_explicit(&expired_store, RLX));
	ld_buf_printf(out, "ladder_deadline_expired_total{where=\"cache\"} %llu\n",
		      (unsigned long long)atomic_load_explicit(&expired_cache, RLX));
	if (!ld_adm_cfg.enabled || !stats)
		return;
	ld_buf_puts(out, "# HELP ladder_admission_shed_total Requests shed with 503 by "
			 "admission control, by reason and class.\n"
			 "# TYPE ladder_admission_shed_total counter\n");
	for (d = 0; d < LD_CODEL_NDROPS; d++)
		for (k = 0; k < 2; k++) {
			uint64_t n = 0;

			for (i = 0; i < nstats; i++)
				n += atomic_load_explicit(&stats[i].shed[d][k], RLX);
			ld_buf_printf(out,
				      "ladder_admission_shed_total{reason=\"%s\",class=\"%s\"} "
				      "%llu\n",
				      drop_names[d], cls[k], (unsigned long long)n);
		}
#define GAUGE(name, help, type, expr)                                                              \
	do {                                                                                       \
		ld_buf_puts(out, "# HELP " name " " help "\n# TYPE " name " " type "\n");          \
		for (i = 0; i < nstats; i++)                                                       \
			ld_buf_printf(out, name "{loop=\"%u\"} %.9g\n", i, (double)(expr));        \
	} while (0)
	GAUGE("ladder_admission_limit", "The concurrency limit in force per loop.", "gauge",
	      atomic_load_explicit(&stats[i].limit, RLX));
	GAUGE("ladder_admission_inflight", "Admitted requests not answered yet, per loop.", "gauge",
	      atomic_load_explicit(&stats[i].inflight, RLX));
	GAUGE("ladder_admission_queue_length", "Requests waiting for the limit, per loop.", "gauge",
	      atomic_load_explicit(&stats[i].qlen, RLX));
	GAUGE("ladder_admission_min_rtt_seconds",
	      "The min RTT the limit compares with (the last probe's median).", "gauge",
	      atomic_load_explicit(&stats[i].min_rtt_ns, RLX) / 1e9);
	GAUGE("ladder_admission_rtt_seconds", "The last window's median RTT.", "gauge",
	      atomic_load_explicit(&stats[i].rtt_ns, RLX) / 1e9);
	GAUGE("ladder_admission_queue_delay_seconds",
	      "How long the last request admitted from the queue waited.", "gauge",
	      atomic_load_explicit(&stats[i].last_wait_ns, RLX) / 1e9);
	GAUGE("ladder_admission_admitted_total", "Requests admitted (at once or after a wait).",
	      "counter", atomic_load_explicit(&stats[i].admitted, RLX));
	GAUGE("ladder_admission_dequeued_total", "Requests admitted after a wait in the queue.",
	      "counter", atomic_load_explicit(&stats[i].dequeued, RLX));
	GAUGE("ladder_admission_queue_wait_seconds_total",
	      "Time the requests admitted from the queue waited there.", "counter",
	      atomic_load_explicit(&stats[i].wait_ns_total, RLX) / 1e9);
#undef GAUGE
}
