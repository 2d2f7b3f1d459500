/*
 * test_plan_model.c - the source design's arithmetic must come out of the
 * planner: 1B writes x 1 KB = 1 TB a month, 36 TB in 3 years, 400 writes/s
 * and 40,000 reads/s at 2.5e6 s a month; the Instagram-scale photo example;
 * the node formula; and the timeline of rungs.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "plan/assume.h"
#include "plan/model.h"
#include "plan/report.h"
#include "unit.h"

static void set(struct ld_assume *a, const char *k, const char *v)
{
	char err[256] = "";
	int rc = ld_assume_set(a, k, v, err, sizeof(err));

	if (rc)
		fprintf(stderr, "set %s=%s: %s\n", k, v, err);
	CHECK_INT(rc, 0);
}

static const struct ld_plan_event *find_event(const struct ld_plan *p, const char *what)
{
	int i;

	for (i = 0; i < p->nevents; i++)
		if (!strcmp(p->events[i].what, what))
			return &p->events[i];
	return NULL;
}

static void test_source_design_defaults(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	/* The defaults are the workload the design is built for. */
	ld_assume_defaults(&a);
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_INT(p.nmonths, 36);
	CHECK_DBL(p.months[0].writes_avg, 400, 1e-9);
	CHECK_DBL(p.months[0].reads_avg, 40000, 1e-6);
	CHECK_DBL(p.months[0].data_new, 1e12, 1);
	CHECK_DBL(p.months[0].data_raw, 1e12, 1);
	CHECK_DBL(p.months[35].data_raw, 36e12, 1);
	/* 100:1 reads to writes, and peak is average x peak_ratio. */
	CHECK_DBL(p.months[0].reads_avg / p.months[0].writes_avg, 100, 1e-9);
	CHECK_DBL(p.months[0].writes_peak, 400 * a.peak_ratio, 1e-9);
	ld_plan_release(&p);
}

static void test_source_design_explicit(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	/* The same figures spelled as a user would, with no growth. */
	ld_assume_defaults(&a);
	set(&a, "writes", "1B/month");
	set(&a, "reads", "100B");
	set(&a, "write_bytes", "1KB");
	set(&a, "seconds_per_month", "2.5e6");
	set(&a, "months", "36");
	set(&a, "growth", "0%");
	set(&a, "index_overhead", "0");
	set(&a, "storage_overhead", "0");
	set(&a, "replication", "1");
	set(&a, "redundancy", "0");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].data_new, 1e12, 1);
	CHECK_DBL(p.months[11].data_raw, 12e12, 1);
	CHECK_DBL(p.months[35].data_raw, 36e12, 1);
	CHECK_DBL(p.months[35].data_indexed, 36e12, 1);
	CHECK_DBL(p.months[0].ingress_avg, 400 * 1000, 1e-6);
	/* Binary units are not decimal ones: 1 KiB x 1B is 1.024 TB. */
	set(&a, "write_bytes", "1KiB");
	ld_plan_release(&p);
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].data_new, 1.024e12, 1);
	ld_plan_release(&p);
}

static void test_storage_overheads_and_retention(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	ld_assume_defaults(&a);
	set(&a, "index_overhead", "30%");
	set(&a, "storage_overhead", "20%");
	set(&a, "replication", "3");
	set(&a, "max_replicas", "100");
	set(&a, "replica_read_capacity", "1G");
	set(&a, "primary_max_data", "1EB");
	set(&a, "redundancy", "1");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].data_indexed, 1e12 * 1.3 * 1.2, 1);
	CHECK_DBL(p.months[0].copies, 3, 0);
	CHECK_DBL(p.months[0].data_total, 1e12 * 1.3 * 1.2 * 3, 10);
	ld_plan_release(&p);

	/* Keeping 12 months caps stored content at 12 TB. */
	set(&a, "retention_months", "12");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[11].data_raw, 12e12, 1);
	CHECK_DBL(p.months[35].data_raw, 12e12, 1);
	ld_plan_release(&p);
}

static void test_growth(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	ld_assume_defaults(&a);
	set(&a, "growth", "10%");
	set(&a, "months", "13");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[1].writes_avg, 440, 1e-9);
	CHECK_DBL(p.months[12].writes_avg, 400 * pow(1.1, 12), 1e-6);
	/* Stored content is the sum of a geometric series. */
	CHECK_DBL(p.months[12].data_raw, 1e12 * (pow(1.1, 13) - 1) / 0.1, 1e3);
	ld_plan_release(&p);
}

static void test_instagram_example(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];
	double per_day, year;

	/* 500M daily users, 10% post a 5 MB set of versions a day; 200M users
	 * view 100 photos a day, 0.5 MB served per view. A real month, so
	 * 12 months are a year (365.25 days). */
	ld_assume_defaults(&a);
	set(&a, "users", "500M");
	set(&a, "writes", "0");
	set(&a, "reads", "0");
	set(&a, "media_uploads", "50M/day");
	set(&a, "media_bytes", "5MB");
	set(&a, "media_views", "20B/day");
	set(&a, "media_served_bytes", "0.5MB");
	set(&a, "cdn_hit_ratio", "0");
	set(&a, "seconds_per_month", "30.4375d");
	set(&a, "months", "12");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	per_day = p.months[0].uploads_avg * 86400 * a.media_bytes;
	CHECK_DBL(per_day, 250e12, 1e3); /* 250 TB/day */
	year = p.months[11].media_stored;
	CHECK_DBL(year, 250e12 * 365.25, 1e6); /* 91.3 PB, "about 90 PB a year" */
	CHECK(year > 85e15 && year < 95e15);
	/* 200M x 100 / 86400 = 231,481 views/s, "about 230,000 reads/s". */
	CHECK_DBL(p.months[0].views_avg, 231481.48, 0.01);
	/* x 0.5 MB = 115.7 GB/s, "about 115 GB/s". */
	CHECK_DBL(p.months[0].egress_avg, 115.74e9, 0.01e9);
	CHECK_DBL(p.months[0].origin_avg, p.months[0].egress_avg, 1);
	ld_plan_release(&p);

	/* A CDN taking 90% leaves a tenth at the origin. */
	set(&a, "cdn_hit_ratio", "90%");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].origin_avg, 11.574e9, 0.001e9);
	CHECK_DBL(p.months[0].cdn_avg, 104.17e9, 0.01e9);
	CHECK(find_event(&p, "object-storage") != NULL);
	ld_plan_release(&p);
}

static void test_node_formula(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	/* 10,000 RPS x 50 ms / 0.7 = 714.3, rounded up to 715. */
	CHECK_DBL(ld_plan_servers_util(10000, 0.050, 0.7), 714.2857, 1e-4);

	/* Through the planner: one core per node, no peak, 10,000 RPS. */
	ld_assume_defaults(&a);
	set(&a, "writes", "0");
	set(&a, "reads", "10000/s");
	set(&a, "peak_ratio", "1");
	set(&a, "request_time", "50ms");
	set(&a, "target_utilisation", "70%");
	set(&a, "node_cores", "1");
	set(&a, "slo_latency", "1s");
	set(&a, "months", "1");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].servers_util, 714.2857, 1e-4);
	CHECK_DBL(p.months[0].nodes_util, 715, 0);
	CHECK_DBL(p.months[0].nodes_total, p.months[0].nodes_needed + a.redundancy, 0);
	CHECK(p.months[0].nodes_needed >= 715);
	ld_plan_release(&p);

	/* Eight cores a node: 714.3 / 8 = 89.3 -> 90 nodes. */
	set(&a, "node_cores", "8");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].nodes_util, 90, 0);
	ld_plan_release(&p);
}

static void test_measured_nodes(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	ld_assume_defaults(&a);
	set(&a, "peak_ratio", "1");
	set(&a, "node_read_capacity", "10000");
	set(&a, "node_write_capacity", "1000");
	set(&a, "target_utilisation", "0.5");
	set(&a, "months", "1");
	/* Separately measured: 40000/10000 + 400/1000 = 4.4, / 0.5 = 8.8 -> 9. */
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].nodes_measured, 9, 0);
	ld_plan_release(&p);
	/* Measured together in one mixed run: max(4, 0.4) / 0.5 = 8. */
	a.capacity_mixed = true;
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK_DBL(p.months[0].nodes_measured, 8, 0);
	ld_plan_release(&p);
}

static void test_single_box_holds(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];
	const struct ld_plan_event *e;

	/* A small service: one box with SQLite, no redundancy asked. */
	ld_assume_defaults(&a);
	set(&a, "users", "10K");
	set(&a, "writes", "1M");
	set(&a, "reads", "20M");
	set(&a, "redundancy", "0");
	set(&a, "months", "12");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	CHECK(p.months[0].box_holds);
	CHECK_INT(p.months[11].rung, 1);
	e = find_event(&p, "box-holds");
	CHECK(e != NULL && e->month == 1 && e->rung == 1);
	CHECK_DBL(p.months[0].cost_db, 0, 0);
	CHECK_DBL(p.months[0].cost_app, a.price_app_node, 0);
	ld_plan_release(&p);
}

static void test_timeline_shard_by_data(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];
	const struct ld_plan_event *e;
	int i;

	/* 1 TB a month, no overheads, a 10 TB primary: month 11 has 11 TB. */
	ld_assume_defaults(&a);
	set(&a, "index_overhead", "0");
	set(&a, "storage_overhead", "0");
	set(&a, "primary_max_data", "10TB");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	e = find_event(&p, "shard-data");
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(e->month, 11);
		CHECK_INT(e->rung, 6);
		CHECK(strstr(e->text, "single-primary") != NULL);
	}
	CHECK_DBL(p.months[9].shards, 1, 0);
	CHECK_DBL(p.months[10].shards, 2, 0);
	CHECK_DBL(p.months[35].shards, 4, 0);
	/* Rungs never go down. */
	for (i = 1; i < p.nmonths; i++)
		CHECK(p.months[i].rung >= p.months[i - 1].rung);
	/* The timeline is in month order. */
	for (i = 1; i < p.nevents; i++)
		CHECK(p.events[i].month >= p.events[i - 1].month);
	ld_plan_release(&p);
}

static void test_timeline_writes_cache_queue(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];
	const struct ld_plan_event *e;

	/* Writes growing 20% a month from 4,000/s peak pass a 10,000/s
	 * primary in month 6 (4000 x 1.2^5 = 9953 < 10000; x 1.2^6 = 11944). */
	ld_assume_defaults(&a);
	set(&a, "writes", "4000/s");
	set(&a, "peak_ratio", "1");
	set(&a, "growth", "20%");
	set(&a, "months", "12");
	set(&a, "primary_max_data", "1EB");
	set(&a, "jobs_per_write", "0.5");
	set(&a, "job_time", "100ms");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	e = find_event(&p, "shard-writes");
	CHECK(e != NULL && e->month == 7);
	/* 4000 x 0.5 jobs/s x 0.1 s / 0.7 = 285.7 -> 286 workers. */
	CHECK_DBL(p.months[0].workers, 286, 0);
	CHECK(find_event(&p, "queue") != NULL);
	ld_plan_release(&p);

	/* 120K reads/s over 20K/s database nodes needs 5 replicas; with at
	 * most 2 allowed, a cache is the step, and it cuts database reads by
	 * the hit ratio. */
	ld_assume_defaults(&a);
	set(&a, "max_replicas", "2");
	set(&a, "months", "2");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	e = find_event(&p, "cache");
	CHECK(e != NULL && e->month == 1);
	CHECK(p.months[0].cache_in_use);
	CHECK_DBL(p.months[0].replicas_nocache, 5, 0);
	CHECK_DBL(p.months[0].db_reads_peak, 120000 * 0.1, 1e-6);
	CHECK_DBL(p.months[0].replicas, 1, 0); /* 12K/s fits one node; N+1 keeps a replica */
	CHECK_DBL(p.months[0].cache_memory, 1e12 * a.cache_hot_share * 1.5, 1);
	CHECK(p.months[0].cache_nodes >= 2);
	ld_plan_release(&p);
}

static void test_cost(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];
	const struct ld_plan_month *m;

	ld_assume_defaults(&a);
	set(&a, "months", "1");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	m = &p.months[0];
	CHECK_DBL(m->cost_storage, m->data_total / 1e9 * a.price_storage_gb, 1e-9);
	CHECK_DBL(m->cost_egress, m->origin_avg * a.seconds_per_month / 1e9 * a.price_egress_gb,
		  1e-9);
	CHECK_DBL(m->cost_db, m->db_nodes * a.price_db_node, 1e-9);
	CHECK_DBL(m->cost_total,
		  m->cost_app + m->cost_db + m->cost_cache + m->cost_storage + m->cost_object +
		      m->cost_egress + m->cost_cdn,
		  1e-6);
	ld_plan_release(&p);
}

static void test_little_pools(void)
{
	struct ld_assume a;
	struct ld_plan p;
	char err[256];

	ld_assume_defaults(&a);
	set(&a, "months", "1");
	set(&a, "db_query_time", "2ms");
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	/* L = lambda W: (db reads + writes at peak) x 2 ms. */
	CHECK_DBL(p.months[0].db_busy,
		  (p.months[0].db_reads_peak + p.months[0].writes_peak) * 0.002, 1e-9);
	CHECK(p.months[0].inflight > 0);
	ld_plan_release(&p);
}

static void test_render_all_formats(void)
{
	static const enum ld_plan_format fmts[] = {LD_PLAN_TEXT, LD_PLAN_JSON, LD_PLAN_MARKDOWN,
						   LD_PLAN_HTML};
	struct ld_assume a;
	struct ld_plan p;
	struct ld_buf b;
	char err[256];
	size_t i;

	ld_assume_defaults(&a);
	CHECK_INT(ld_plan_compute(&a, &p, err, sizeof(err)), 0);
	for (i = 0; i < 4; i++) {
		ld_buf_init(&b, 1 << 24);
		CHECK_INT(ld_plan_render(&p, fmts[i], 6, &b), 0);
		CHECK(b.len > 100);
		CHECK(b.data && strstr(b.data, "EXAMPLE") != NULL);
		if (fmts[i] == LD_PLAN_HTML) {
			CHECK(strstr(b.data, "<svg") != NULL);
			/* Self-contained: nothing fetched from anywhere. */
			CHECK(strstr(b.data, "src=") == NULL);
			CHECK(strstr(b.data, "<script") == NULL);
		}
		ld_buf_release(&b);
	}
	/* A tiny cap is reported, not overrun. */
	ld_buf_init(&b, 64);
	CHECK_INT(ld_plan_render(&p, LD_PLAN_TEXT, 1, &b), -E2BIG);
	ld_buf_release(&b);
	ld_plan_release(&p);
}

int main(void)
{
	RUN(test_source_design_defaults);
	RUN(test_source_design_explicit);
	RUN(test_storage_overheads_and_retention);
	RUN(test_growth);
	RUN(test_instagram_example);
	RUN(test_node_formula);
	RUN(test_measured_nodes);
	RUN(test_single_box_holds);
	RUN(test_timeline_shard_by_data);
	RUN(test_timeline_writes_cache_queue);
	RUN(test_cost);
	RUN(test_little_pools);
	RUN(test_render_all_formats);
	return unit_finish();
}
