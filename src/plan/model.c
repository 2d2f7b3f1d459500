/*
 * model.c - month-by-month resources, cost and the timeline of rungs.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/erlang.h"
#include "plan/model.h"
#include "plan/num.h"

const char *const ld_plan_rung_names[LD_PLAN_RUNGS + 1] = {
    "",
    "rung 1: single box (ladder serve + embedded SQLite)",
    "rung 2: separate components (PostgreSQL host, object storage)",
    "rung 3: horizontal (HAProxy, N app nodes, read replicas)",
    "rung 4: cache (Redis cache-aside)",
    "rung 5: autoscale (node count follows load)",
    "rung 6: shard + async (several PostgreSQL clusters, queue + workers)",
};

/* Triggers, each reported once, at the first month it fires. */
enum trigger {
	T_BOX,
	T_SQLITE_WRITES,
	T_BOX_DATA,
	T_MEDIA,
	T_HORIZONTAL,
	T_REPLICAS,
	T_CACHE,
	T_AUTOSCALE,
	T_SHARD_WRITES,
	T_SHARD_DATA,
	T_QUEUE,
	T_SLO,
	T_COUNT
};

double ld_plan_servers_util(double rps, double request_time, double utilisation)
{
	return rps * request_time / utilisation;
}

static double ceil_pos(double v)
{
	/* Tiny float noise (714.2857... is fine, 3.0000000001 is 3) must not
	 * buy a whole extra node. */
	double r = nearbyint(v);

	if (fabs(v - r) < 1e-9 * (fabs(v) > 1 ? fabs(v) : 1))
		return r > 0 ? r : 0;
	return v > 0 ? ceil(v) : 0;
}

static void add_event(struct ld_plan *p, bool *fired, enum trigger t, int month, int rung,
		      const char *what, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void add_event(struct ld_plan *p, bool *fired, enum trigger t, int month, int rung,
		      const char *what, const char *fmt, ...)
{
	struct ld_plan_event *e;
	va_list ap;

	/* The single box's own limits stop mattering once it has been left. */
	if ((t == T_SQLITE_WRITES || t == T_BOX_DATA) && p->rung_now >= 2)
		fired[t] = true;
	if (fired[t] || p->nevents >= LD_PLAN_EVENTS_MAX)
		return;
	fired[t] = true;
	e = &p->events[p->nevents++];
	e->month = month;
	e->rung = rung;
	snprintf(e->what, sizeof(e->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

/* app_nodes sizes the app tier for rps (reads r, writes w) three ways. */
static void app_nodes(const struct ld_assume *a, double r, double w, struct ld_plan_month *m)
{
	double rps = r + w, need_r, need_w, n = 0;
	struct ld_mmc q;

	m->servers_util = ld_plan_servers_util(rps, a->request_time, a->target_utilisation);
	m->nodes_util = ceil_pos(m->servers_util / a->node_cores);
	need_r = r / ld_assume_read_capacity(a);
	need_w = w / a->node_write_capacity;
	/* Capacities measured together in one mixed run already include each
	 * other's load, so the larger share decides; separately measured ones
	 * share a node's time and add up. */
	m->nodes_measured = ceil_pos((a->capacity_mixed ? fmax(need_r, need_w) : need_r + need_w) /
				     a->target_utilisation);
	m->erlang_ok = true;
	m->nodes_erlang = 0;
	m->latency_q = a->request_time;
	if (rps > 0) {
		m->erlang_ok = !ld_mmc_size_nodes(rps, a->request_time, a->node_cores,
						  a->slo_latency, a->slo_percentile, &n, &q);
		m->nodes_erlang = m->erlang_ok ? n : 0;
	}
	m->nodes_needed = fmax(1, fmax(m->nodes_util, fmax(m->nodes_measured, m->nodes_erlang)));
	if (rps > 0 && !ld_mmc_eval(rps / m->nodes_needed, a->request_time, a->node_cores, &q)) {
		m->latency_q = ld_mmc_resp_quantile(&q, a->slo_percentile);
		m->inflight = ld_little(rps, q.w);
	}
	m->nodes_total = m->nodes_needed + a->redundancy;
}

/* month_traffic fills rates, storage and bandwidth of month index i. */
static void month_traffic(const struct ld_assume *a, const double *new_content,
			  const double *new_media, int i, struct ld_plan_month *m)
{
	double g = pow(1 + a->growth, i), spm = a->seconds_per_month;
	int j, first = 0;

	m->month = i + 1;
	m->users = a->users * g;
	m->writes_avg = ld_rate_per_s(&a->writes, spm) * g;
	m->reads_avg = ld_rate_per_s(&a->reads, spm) * g;
	m->writes_peak = m->writes_avg * a->peak_ratio;
	m->reads_peak = m->reads_avg * a->peak_ratio;
	m->uploads_avg = ld_rate_per_s(&a->media_uploads, spm) * g;
	m->views_avg = ld_rate_per_s(&a->media_views, spm) * g;

	m->data_new = new_content[i];
	m->media_new = new_media[i];
	if (a->retention_months > 0 && i + 1 > a->retention_months)
		first = i + 1 - (int)a->retention_months;
	m->data_raw = a->initial_data;
	m->media_stored = 0;
	for (j = first; j <= i; j++) {
		m->data_raw += new_content[j];
		m->media_stored += new_media[j];
	}
	m->data_indexed = m->data_raw * (1 + a->index_overhead) * (1 + a->storage_overhead);

	m->ingress_avg = m->writes_avg * a->write_bytes + m->uploads_avg * a->media_upload_bytes;
	m->ingress_peak = m->ingress_avg * a->peak_ratio;
	m->egress_avg = m->reads_avg * a->read_bytes + m->views_avg * a->media_served_bytes;
	m->egress_peak = m->egress_avg * a->peak_ratio;
	m->cdn_avg = m->views_avg * a->media_served_bytes * a->cdn_hit_ratio;
	m->origin_avg = m->egress_avg - m->cdn_avg;
	m->origin_peak = m->origin_avg * a->peak_ratio;
}

/* month_database sizes cache, shards and replicas; cache_on is sticky. */
static void month_database(const struct ld_assume *a, bool *cache_on, struct ld_plan_month *m)
{
	double per_shard, k = a->redundancy;

	m->shards_writes = ceil_pos(m->writes_peak / a->primary_write_capacity);
	m->shards_data = ceil_pos(m->data_indexed / a->primary_max_data);
	m->shards = fmax(1, fmax(m->shards_writes, m->shards_data));
	/* Database nodes a shard needs for its reads, the primary included. */
	per_shard = m->reads_peak / m->shards;
	m->replicas_nocache = fmax(k, ceil_pos(per_shard / a->replica_read_capacity) - 1);
	if (m->replicas_nocache > a->max_replicas)
		*cache_on = true;
	m->cache_in_use = *cache_on;
	m->cache_memory = m->data_raw * a->cache_hot_share * (1 + a->cache_overhead);
	m->db_reads_peak = m->reads_peak * (m->cache_in_use ? 1 - a->cache_hit_ratio : 1);
	m->replicas =
	    fmax(k, ceil_pos(m->db_reads_peak / m->shards / a->replica_read_capacity) - 1);
	m->cache_nodes = 0;
	if (m->cache_in_use)
		m->cache_nodes = fmax(1, ceil_pos(m->cache_memory / a->cache_node_memory)) + k;
	m->copies = fmax(a->replication, 1 + m->replicas);
	m->data_total = m->data_indexed * m->copies;
	m->db_nodes = m->shards * (1 + m->replicas);
	m->db_busy = ld_little(m->db_reads_peak + m->writes_peak, a->db_query_time);
	m->pool_per_node = ceil_pos(m->db_busy / m->nodes_needed / a->target_utilisation);
}

static void month_jobs(const struct ld_assume *a, struct ld_plan_month *m)
{
	m->jobs_avg = m->writes_avg * a->jobs_per_write + m->uploads_avg * a->jobs_per_upload;
	m->jobs_peak = m->jobs_avg * a->peak_ratio;
	m->workers = 0;
	m->worker_nodes = 0;
	if (m->jobs_peak > 0 && a->job_time > 0) {
		m->workers = ceil_pos(m->jobs_peak * a->job_time / a->target_utilisation);
		m->worker_nodes = ceil_pos(m->workers / a->node_cores) + a->redundancy;
	}
}

static void month_cost(const struct ld_assume *a, struct ld_plan_month *m)
{
	double gb_month = a->seconds_per_month / 1e9;

	if (m->rung == 1) {
		/* One box runs everything: it is the app node and the database. */
		m->cost_app = a->price_app_node;
		m->cost_db = 0;
	} else {
		m->cost_app = (m->nodes_total + m->worker_nodes) * a->price_app_node;
		m->cost_db = m->db_nodes * a->price_db_node;
	}
	m->cost_cache = m->cache_nodes * a->price_cache_node;
	m->cost_storage = m->data_total / 1e9 * a->price_storage_gb;
	m->cost_object = m->media_stored / 1e9 * a->price_object_gb;
	m->cost_egress = m->origin_avg * gb_month * a->price_egress_gb;
	m->cost_cdn = m->cdn_avg * gb_month * a->price_cdn_gb;
	m->cost_total = m->cost_app + m->cost_db + m->cost_cache + m->cost_storage +
			m->cost_object + m->cost_egress + m->cost_cdn;
}

/* box_event says, for month 1, whether one box with SQLite is enough, and if
 * not, why: the load itself, or only the spare nodes redundancy asks for. */
static void box_event(struct ld_plan *p, bool *fired, const struct ld_plan_month *m, bool writes_ok,
		      bool data_ok, bool one_node)
{
	const struct ld_assume *a = &p->a;
	char b1[32], b2[32], b3[32], why[320];
	size_t n = 0;

	ld_num_fmt_si(m->writes_peak, b1, sizeof(b1));
	ld_num_fmt_si(a->node_write_capacity, b2, sizeof(b2));
	ld_num_fmt_si(m->reads_peak, b3, sizeof(b3));
	if (m->box_holds) {
		add_event(p, fired, T_BOX, 1, 1, "box-holds",
			  "one box with SQLite holds the load: peak %s writes/s against the %s/s "
			  "it holds, %s reads/s on 1 node",
			  b1, b2, b3);
		return;
	}
	if (m->box_fits) {
		add_event(p, fired, T_BOX, 1, 2, "box-spare",
			  "the load fits one box with SQLite (peak %s writes/s against the %s/s it "
			  "holds, %s reads/s on 1 node); only redundancy %.0f (N+%.0f) asks for a "
			  "second box: --redundancy 0 (redundancy = 0 in an assumptions file) "
			  "accepts a single box",
			  b1, b2, b3, a->redundancy, a->redundancy);
		return;
	}
	why[0] = '\0';
#define WHY(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(why + n, sizeof(why) - n, "%s", n ? ", " : "");                  \
		n += w_ > 0 && (size_t)w_ < sizeof(why) - n ? (size_t)w_ : 0;                      \
		w_ = snprintf(why + n, sizeof(why) - n, __VA_ARGS__);                              \
		n += w_ > 0 && (size_t)w_ < sizeof(why) - n ? (size_t)w_ : 0;                      \
	} while (0)
	if (!writes_ok)
		WHY("peak %s writes/s pass the %s/s it holds", b1, b2);
	if (!one_node)
		WHY("peak %s reads/s and %s writes/s need %.0f app nodes", b3, b1, m->nodes_needed);
	if (!data_ok)
		WHY("the data (%s with indexes) passes the %s it holds",
		    ld_num_fmt_bytes(m->data_indexed, b2, sizeof(b2)),
		    ld_num_fmt_bytes(a->box_max_data, b3, sizeof(b3)));
	if (m->media_stored > 0)
		WHY("media needs object storage");
	if (!m->erlang_ok)
		WHY("no node count meets the latency objective");
#undef WHY
	add_event(p, fired, T_BOX, 1, 2, "box-fails",
		  "one box with SQLite does not hold the load: %s", why);
}

/* month_rung decides the rung this month needs and records first events. */
static void month_rung(struct ld_plan *p, bool *fired, int prev, struct ld_plan_month *m)
{
	const struct ld_assume *a = &p->a;
	char b1[32], b2[32];
	int rung = prev > 0 ? prev : 1, mo = m->month;
	bool writes_ok = m->writes_peak <= a->node_write_capacity;
	bool data_ok = m->data_indexed <= a->box_max_data;
	bool one_node = m->nodes_needed <= 1;

	m->box_fits = writes_ok && data_ok && one_node && m->media_stored == 0 && m->erlang_ok;
	m->box_holds = m->box_fits && a->redundancy == 0;
	p->rung_now = prev;
	if (mo == 1)
		box_event(p, fired, m, writes_ok, data_ok, one_node);
	if (!writes_ok) {
		add_event(p, fired, T_SQLITE_WRITES, mo, 2, "box-writes",
			  "peak %s writes/s pass the %s/s one box with SQLite holds: move the "
			  "database to its own PostgreSQL host",
			  ld_num_fmt_si(m->writes_peak, b1, sizeof(b1)),
			  ld_num_fmt_si(a->node_write_capacity, b2, sizeof(b2)));
		rung = rung > 2 ? rung : 2;
	}
	if (!data_ok) {
		add_event(p, fired, T_BOX_DATA, mo, 2, "box-data",
			  "data (%s with indexes) passes the %s one box holds: database on its "
			  "own host",
			  ld_num_fmt_bytes(m->data_indexed, b1, sizeof(b1)),
			  ld_num_fmt_bytes(a->box_max_data, b2, sizeof(b2)));
		rung = rung > 2 ? rung : 2;
	}
	if (m->media_stored > 0) {
		add_event(p, fired, T_MEDIA, mo, 2, "object-storage",
			  "media (%s this month) goes to object storage behind a CDN",
			  ld_num_fmt_bytes(m->media_new, b1, sizeof(b1)));
		rung = rung > 2 ? rung : 2;
	}
	if (m->nodes_total > 1) {
		add_event(p, fired, T_HORIZONTAL, mo, 3, "horizontal",
			  "%.0f app nodes (%.0f for peak load + %.0f spare) behind HAProxy",
			  m->nodes_total, m->nodes_needed, a->redundancy);
		rung = rung > 3 ? rung : 3;
	}
	if (m->replicas_nocache > a->redundancy) {
		add_event(p, fired, T_REPLICAS, mo, 3, "read-replicas",
			  "peak %s reads/s pass what one database node serves (%s/s): read "
			  "replicas",
			  ld_num_fmt_si(m->reads_peak / m->shards, b1, sizeof(b1)),
			  ld_num_fmt_si(a->replica_read_capacity, b2, sizeof(b2)));
		rung = rung > 3 ? rung : 3;
	}
	if (m->cache_in_use) {
		add_event(p, fired, T_CACHE, mo, 4, "cache",
			  "reads would need %.0f replicas per primary (more than %.0f): cache "
			  "the hot set (%s) in Redis",
			  m->replicas_nocache, a->max_replicas,
			  ld_num_fmt_bytes(m->cache_memory, b1, sizeof(b1)));
		rung = rung > 4 ? rung : 4;
	}
	if (m->nodes_total >= a->autoscale_min_nodes && m->nodes_total >= 1.5 * m->nodes_avg) {
		add_event(p, fired, T_AUTOSCALE, mo, 5, "autoscale",
			  "peak needs %.0f app nodes, average %.0f: let the node count follow "
			  "load",
			  m->nodes_total, m->nodes_avg);
		rung = rung > 5 ? rung : 5;
	}
	if (m->shards_writes > 1) {
		add_event(p, fired, T_SHARD_WRITES, mo, 6, "shard-writes",
			  "peak %s writes/s pass what one primary holds (%s/s): shard (%.0f "
			  "shards)",
			  ld_num_fmt_si(m->writes_peak, b1, sizeof(b1)),
			  ld_num_fmt_si(a->primary_write_capacity, b2, sizeof(b2)), m->shards);
		rung = 6;
	}
	if (m->shards_data > 1) {
		add_event(p, fired, T_SHARD_DATA, mo, 6, "shard-data",
			  "data (%s with indexes) passes the single-primary limit (%s): shard "
			  "(%.0f shards)",
			  ld_num_fmt_bytes(m->data_indexed, b1, sizeof(b1)),
			  ld_num_fmt_bytes(a->primary_max_data, b2, sizeof(b2)), m->shards);
		rung = 6;
	}
	if (m->jobs_peak > 0 && a->job_time > 0) {
		add_event(p, fired, T_QUEUE, mo, 6, "queue",
			  "%s background jobs/s at peak: queue + %.0f workers",
			  ld_num_fmt_si(m->jobs_peak, b1, sizeof(b1)), m->workers);
		rung = 6;
	}
	if (!m->erlang_ok)
		add_event(p, fired, T_SLO, mo, rung, "slo-unreachable",
			  "the latency objective cannot be met by adding nodes: the request time "
			  "alone is too long for it at the percentile, or the nodes needed pass "
			  "the model's limit of 10M servers");
	m->rung = rung;
}

int ld_plan_compute(const struct ld_assume *a, struct ld_plan *p, char *err, size_t errlen)
{
	double *new_content = NULL, *new_media = NULL;
	bool fired[T_COUNT] = {false}, cache_on = false;
	int i, n, rc;

	memset(p, 0, sizeof(*p));
	rc = ld_assume_validate(a, err, errlen);
	if (rc)
		goto out;
	p->a = *a;
	n = (int)a->months;
	rc = -ENOMEM;
	p->months = calloc((size_t)n, sizeof(*p->months));
	new_content = calloc((size_t)n, sizeof(double));
	new_media = calloc((size_t)n, sizeof(double));
	if (!p->months || !new_content || !new_media) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	p->nmonths = n;
	for (i = 0; i < n; i++) {
		double g = pow(1 + a->growth, i), spm = a->seconds_per_month;

		new_content[i] = ld_rate_per_s(&a->writes, spm) * g * spm * a->write_bytes;
		new_media[i] = ld_rate_per_s(&a->media_uploads, spm) * g * spm * a->media_bytes;
	}
	for (i = 0; i < n; i++) {
		struct ld_plan_month *m = &p->months[i], avg;
		double r, w;

		month_traffic(a, new_content, new_media, i, m);
		app_nodes(a, m->reads_peak, m->writes_peak, m);
		/* The same sizing at average load says how much autoscaling
		 * could save. */
		memset(&avg, 0, sizeof(avg));
		r = m->reads_avg;
		w = m->writes_avg;
		app_nodes(a, r, w, &avg);
		m->nodes_avg = avg.nodes_total;
		month_database(a, &cache_on, m);
		month_jobs(a, m);
		month_rung(p, fired, i ? p->months[i - 1].rung : 0, m);
		month_cost(a, m);
	}
	rc = 0;
out:
	if (rc)
		ld_plan_release(p);
	free(new_content);
	free(new_media);
	return rc;
}

void ld_plan_release(struct ld_plan *p)
{
	free(p->months);
	p->months = NULL;
	p->nmonths = 0;
}
