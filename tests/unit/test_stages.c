/*
 * test_stages.c - the request stage clock (partition), stage sets (record,
 * merge), HDR cumulative buckets, and the cross-loop gather of obs/stats.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "obs/stages.h"
#include "obs/stats.h"
#include "unit.h"

static void test_partition(void)
{
	struct ld_stage_clock c;

	ld_stage_clock_start(&c, 1000, true);
	ld_stage_mark_at(&c, LD_STAGE_READ, 1500);
	ld_stage_mark_at(&c, LD_STAGE_AUTH, 1700);
	ld_stage_mark_at(&c, LD_STAGE_HANDLER, 1750);
	/* A stage may be entered twice: its times add. */
	ld_stage_mark_at(&c, LD_STAGE_READ, 1800);
	/* A clock read from before the last mark charges nothing. */
	ld_stage_mark_at(&c, LD_STAGE_RENDER, 1790);
	ld_stage_mark_at(&c, LD_STAGE_WRITE, 2100);
	CHECK_INT(c.ns[LD_STAGE_READ], 550);
	CHECK_INT(c.ns[LD_STAGE_AUTH], 200);
	CHECK_INT(c.ns[LD_STAGE_HANDLER], 50);
	CHECK_INT(c.ns[LD_STAGE_RENDER], 0);
	CHECK_INT(c.ns[LD_STAGE_WRITE], 300);
	CHECK_INT(ld_stage_total(&c), 1100);
	CHECK_INT(c.last - c.start, 1100);
	CHECK(c.seen & (1u << LD_STAGE_RENDER));
	CHECK(!(c.seen & (1u << LD_STAGE_STORE)));
}

static void test_partition_real_clock(void)
{
	struct ld_stage_clock c;
	uint64_t t0 = uv_hrtime(), t1;

	ld_stage_clock_start(&c, t0, true);
	for (int i = 0; i < 1000; i++)
		ld_stage_mark(&c, (enum ld_stage)(i % LD_STAGE_COUNT));
	t1 = uv_hrtime();
	CHECK_INT(ld_stage_total(&c), c.last - t0);
	CHECK(c.last <= t1);
}

static void test_off_is_noop(void)
{
	struct ld_stage_clock c;
	struct ld_stage_set s;

	ld_stage_clock_start(&c, 10, false);
	ld_stage_mark_at(&c, LD_STAGE_READ, 20);
	ld_stage_mark(&c, LD_STAGE_AUTH);
	ld_stage_mark_store(&c, 30, 40, 50, 60);
	CHECK_INT(ld_stage_total(&c), 0);
	CHECK_INT(c.seen, 0);
	CHECK_INT(ld_stage_set_init(&s, 2), 0);
	ld_stage_record(&s, 0, &c, 60);
	CHECK_INT(ld_stage_hist_at(&s, 0, LD_STAGE_TOTAL)->h.total, 0);
	ld_stage_set_release(&s);
}

static void test_store_split(void)
{
	struct ld_stage_clock c;

	/* A write: submitted at 100, taken at 130, BEGIN 135, COMMIT back at
	 * 400, done on the loop at 450. */
	ld_stage_clock_start(&c, 0, true);
	ld_stage_mark_at(&c, LD_STAGE_HANDLER, 100);
	ld_stage_mark_store(&c, 130, 135, 400, 450);
	CHECK_INT(c.ns[LD_STAGE_STORE_QUEUE], 30);
	CHECK_INT(c.ns[LD_STAGE_STORE_COMMIT], 265);
	CHECK_INT(c.ns[LD_STAGE_STORE], 5 + 50);
	CHECK_INT(ld_stage_total(&c), 450);

	/* The writer's reads out of order or outside the call: clamped, and
	 * the partition still holds. */
	ld_stage_clock_start(&c, 0, true);
	ld_stage_mark_at(&c, LD_STAGE_HANDLER, 100);
	ld_stage_mark_store(&c, 90, 500, 80, 300);
	CHECK_INT(c.ns[LD_STAGE_STORE_QUEUE], 0);
	CHECK_INT(c.ns[LD_STAGE_STORE_COMMIT], 0);
	CHECK_INT(c.ns[LD_STAGE_STORE], 200);
	CHECK_INT(ld_stage_total(&c), 300);

	/* An inline read: everything is store. */
	ld_stage_clock_start(&c, 0, true);
	ld_stage_mark_at(&c, LD_STAGE_HANDLER, 10);
	ld_stage_mark_store(&c, 0, 0, 0, 25);
	CHECK_INT(c.ns[LD_STAGE_STORE], 15);
	CHECK(!(c.seen & (1u << LD_STAGE_STORE_QUEUE)));
	CHECK_INT(ld_stage_total(&c), 25);
}

/* request fills a clock with a fixed pattern scaled by k. */
static void request(struct ld_stage_clock *c, uint64_t k, bool write)
{
	ld_stage_clock_start(c, 1000, true);
	ld_stage_mark_at(c, LD_STAGE_READ, 1000 + 10 * k);
	ld_stage_mark_at(c, LD_STAGE_HANDLER, 1000 + 15 * k);
	if (write)
		ld_stage_mark_store(c, 1000 + 20 * k, 1000 + 21 * k, 1000 + 90 * k, 1000 + 95 * k);
	else
		ld_stage_mark_store(c, 0, 0, 0, 1000 + 40 * k);
	ld_stage_mark_at(c, LD_STAGE_RENDER, 1000 + 100 * k);
	ld_stage_mark_at(c, LD_STAGE_WRITE, 1000 + 110 * k);
}

static uint64_t stage_sum(const struct ld_stage_set *s, unsigned route)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < LD_STAGE_COUNT; i++)
		t += ld_stage_hist_at(s, route, i)->sum_ns;
	return t;
}

static void test_record_and_merge(void)
{
	struct ld_stage_set a, b, m;
	struct ld_stage_clock c;

	CHECK_INT(ld_stage_set_init(&a, 3), 0);
	CHECK_INT(ld_stage_set_init(&b, 3), 0);
	CHECK_INT(ld_stage_set_init(&m, 3), 0);
	for (uint64_t k = 1; k <= 100; k++) {
		/* Each ends at its last mark, 1000 + 110 * k. */
		request(&c, k, false);
		ld_stage_record(&a, 1, &c, 1000 + 110 * k);
		request(&c, k * 7, true);
		ld_stage_record(&b, 2, &c, 1000 + 110 * k * 7);
	}
	/* Past the last route: folded into it. */
	request(&c, 3, true);
	ld_stage_record(&b, 99, &c, 1000 + 110 * 3);
	CHECK_INT(ld_stage_hist_at(&a, 1, LD_STAGE_TOTAL)->h.total, 100);
	CHECK_INT(ld_stage_hist_at(&a, 1, LD_STAGE_STORE)->h.total, 100);
	CHECK_INT(ld_stage_hist_at(&a, 1, LD_STAGE_STORE_COMMIT)->h.total, 0);
	CHECK_INT(ld_stage_hist_at(&a, 1, LD_STAGE_AUTH)->h.total, 0);
	CHECK_INT(ld_stage_hist_at(&b, 2, LD_STAGE_STORE_COMMIT)->h.total, 101);
	CHECK_INT(ld_stage_hist_at(&a, 1, LD_STAGE_TOTAL)->sum_ns, 110 * 5050);
	CHECK_INT(stage_sum(&a, 1), ld_stage_hist_at(&a, 1, LD_STAGE_TOTAL)->sum_ns);
	CHECK_INT(stage_sum(&b, 2), ld_stage_hist_at(&b, 2, LD_STAGE_TOTAL)->sum_ns);

	CHECK_INT(ld_stage_set_merge(&m, &a), 0);
	CHECK_INT(ld_stage_set_merge(&m, &b), 0);
	CHECK_INT(ld_stage_set_merge(&m, &a), 0);
	CHECK_INT(ld_stage_hist_at(&m, 1, LD_STAGE_TOTAL)->h.total, 200);
	CHECK_INT(ld_stage_hist_at(&m, 2, LD_STAGE_TOTAL)->h.total, 101);
	CHECK_INT(ld_stage_hist_at(&m, 0, LD_STAGE_TOTAL)->h.total, 0);
	CHECK_INT(ld_stage_hist_at(&m, 1, LD_STAGE_TOTAL)->sum_ns, 2 * 110 * 5050);
	CHECK_INT(stage_sum(&m, 1), ld_stage_hist_at(&m, 1, LD_STAGE_TOTAL)->sum_ns);
	CHECK_INT(stage_sum(&m, 2), ld_stage_hist_at(&m, 2, LD_STAGE_TOTAL)->sum_ns);
	/* Percentiles come from the merged counts, within 1%. */
	CHECK_DBL(ld_hdr_percentile(&ld_stage_hist_at(&m, 2, LD_STAGE_TOTAL)->h, 50),
		  110.0 * 7 * 50, 110.0 * 7 * 50 * 0.01);
	CHECK_INT(ld_hdr_max(&ld_stage_hist_at(&m, 2, LD_STAGE_TOTAL)->h), 110 * 700);

	ld_stage_set_reset(&m);
	CHECK_INT(ld_stage_hist_at(&m, 1, LD_STAGE_TOTAL)->h.total, 0);
	CHECK_INT(stage_sum(&m, 1), 0);
	ld_stage_set_release(&b);
	CHECK(ld_stage_set_init(&b, 2) == 0);
	CHECK(ld_stage_set_merge(&m, &b) < 0);
	ld_stage_set_release(&a);
	ld_stage_set_release(&b);
	ld_stage_set_release(&m);
}

/* The total is the request's own end minus its start, not the sum of its
 * stages: time no mark charged shows as a difference. */
static void test_total_is_measured(void)
{
	struct ld_stage_set s;
	struct ld_stage_clock c;

	CHECK_INT(ld_stage_set_init(&s, 1), 0);
	request(&c, 1, false); /* last mark at 1110 */
	ld_stage_record(&s, 0, &c, 1115);
	CHECK_INT(stage_sum(&s, 0), 110);
	CHECK_INT(ld_stage_hist_at(&s, 0, LD_STAGE_TOTAL)->sum_ns, 115);
	/* An end before the start (clocks of two threads) counts 0. */
	request(&c, 1, false);
	ld_stage_record(&s, 0, &c, 999);
	CHECK_INT(ld_stage_hist_at(&s, 0, LD_STAGE_TOTAL)->h.total, 2);
	CHECK_INT(ld_stage_hist_at(&s, 0, LD_STAGE_TOTAL)->sum_ns, 115);
	ld_stage_set_release(&s);
}

static void test_hdr_memory_and_names(void)
{
	struct ld_hdr h;

	CHECK_INT(ld_hdr_init(&h, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS), 0);
	/* The size docs/operations.md quotes per histogram. */
	CHECK_INT((long long)h.counts_len * 8, 30720);
	CHECK_INT(ld_hdr_counts_len(LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS), h.counts_len);
	CHECK_INT(ld_hdr_counts_len(1, 2), -EINVAL);
	ld_hdr_release(&h);
	{
		/* Borrowed storage: used in place, left alone by release. */
		static int64_t slots[3840];
		struct ld_hdr b;

		CHECK_INT(ld_hdr_init_at(&b, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS, slots), 0);
		ld_hdr_record(&b, 1000);
		CHECK_INT(b.total, 1);
		CHECK_INT(slots[b.lo_idx], 1);
		ld_hdr_release(&b);
		CHECK(b.counts == NULL);
	}
	CHECK_STR(ld_stage_name(LD_STAGE_STORE_COMMIT), "store_commit");
	CHECK_STR(ld_stage_name(LD_STAGE_TOTAL), "total");
	for (unsigned i = 0; i < LD_STAGE_COUNT; i++)
		CHECK(strcmp(ld_stage_name(i), "unknown") != 0);
}

static void test_hdr_cumulative(void)
{
	struct ld_hdr h;
	int64_t bounds[] = {0, 5, 100, 1000, 5000, 1000000}, out[6];

	CHECK_INT(ld_hdr_init(&h, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS), 0);
	ld_hdr_cumulative(&h, bounds, 6, out);
	for (int i = 0; i < 6; i++)
		CHECK_INT(out[i], 0);
	ld_hdr_record(&h, 3);
	ld_hdr_record(&h, 5);
	ld_hdr_record(&h, 6);
	ld_hdr_record_n(&h, 999, 4);
	ld_hdr_record(&h, 200000);
	ld_hdr_cumulative(&h, bounds, 6, out);
	CHECK_INT(out[0], 0);
	CHECK_INT(out[1], 2);
	CHECK_INT(out[2], 3);
	CHECK_INT(out[3], 7);
	CHECK_INT(out[4], 7);
	CHECK_INT(out[5], 8);
	ld_hdr_release(&h);
}

/* ---- the gather across loop threads --------------------------------------- */

static const char *const routes[] = {"a", "b"};

struct tloop {
	uv_loop_t uv;
	uv_thread_t th;
	unsigned index;
	uv_async_t cmd; /* referenced: keeps the loop running until told */
	int what;	/* 1 record, 2 gather, 3 stop */
	int nrecord;
	struct ld_obs_waiter w;
	char *doc;
	int gathered;
	int done; /* commands finished */
};

static struct tloop loops[2];

static void gathered(const struct ld_obs_snapshot *snap, void *arg)
{
	struct tloop *t = arg;
	struct ld_buf b;
	struct ld_obs_store_info st = {.driver = "test", .queue_cap = 9};

	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_obs_render_json(snap, &st, &b), 0);
	t->doc = strndup(b.data ? b.data : "", b.len);
	ld_buf_reset(&b);
	CHECK_INT(ld_obs_render_prom(snap, &st, &b), 0);
	CHECK(b.len > 0 &&
	      strstr(b.data, "ladder_stage_seconds_bucket{route=\"b\",stage=\"read\"") != NULL);
	ld_buf_release(&b);
	t->gathered++;
}

static void on_cmd(uv_async_t *a)
{
	struct tloop *t = a->data;
	struct ld_stage_clock c;

	if (t->what == 1) {
		for (int i = 0; i < t->nrecord; i++) {
			request(&c, 1 + (uint64_t)i, t->index == 1);
			ld_obs_record(t->index, t->index, &c, 1000 + 110 * (1 + (uint64_t)i));
		}
	} else if (t->what == 2) {
		ld_obs_gather(&t->w, t->index, gathered, t);
	} else if (t->what == 3) {
		ld_obs_loop_close(t->index);
		uv_close((uv_handle_t *)&t->cmd, NULL);
	}
	__atomic_add_fetch(&t->done, 1, __ATOMIC_RELEASE);
}

static void run_loop(void *arg)
{
	struct tloop *t = arg;

	uv_run(&t->uv, UV_RUN_DEFAULT);
}

/* send_cmd runs command what on loop i and waits (bounded) until it ran:
 * wake-ups of one async handle coalesce, so one command at a time. */
static int send_cmd(int i, int what)
{
	int before = __atomic_load_n(&loops[i].done, __ATOMIC_ACQUIRE);

	loops[i].what = what;
	uv_async_send(&loops[i].cmd);
	for (int k = 0; k < 5000; k++) {
		if (__atomic_load_n(&loops[i].done, __ATOMIC_ACQUIRE) > before)
			return 0;
		uv_sleep(1);
	}
	return -1;
}

static int wait_gathered(int i, int n)
{
	for (int k = 0; k < 5000; k++) {
		if (__atomic_load_n(&loops[i].gathered, __ATOMIC_ACQUIRE) >= n)
			return 0;
		uv_sleep(1);
	}
	return -1;
}

static json_t *route_obj(json_t *doc, const char *name)
{
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(doc, "routes"), i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "route")), name) == 0)
			return r;
	}
	return NULL;
}

static long long stages_sum(json_t *r)
{
	const char *k;
	json_t *v;
	long long t = 0;

	json_object_foreach(json_object_get(r, "stages"), k, v)
	{
		t += json_integer_value(json_object_get(v, "sum_ns"));
	}
	return t;
}

/* known_total is what n requests recorded by on_cmd took by their own
 * clocks (ends 1000 + 110 k for k = 1..n after a start at 1000), summed;
 * reps times over. Worked out apart from any stage. */
static long long known_total(long long n, long long reps)
{
	return reps * 110 * n * (n + 1) / 2;
}

/* check_doc: loop 0 recorded na requests for route a in runs of 30, loop 1
 * nb for route b. */
static void check_doc(const char *text, long long na, long long nb)
{
	json_error_t e;
	json_t *doc = json_loads(text, 0, &e), *a, *b;

	CHECK(doc != NULL);
	if (!doc)
		return;
	CHECK_STR(json_string_value(json_object_get(doc, "schema")), "ladder-stats/1");
	CHECK_INT(json_integer_value(json_object_get(doc, "loops")), 2);
	CHECK_INT(json_array_size(json_object_get(doc, "loop_stats")), 2);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "store"), "queue_cap")),
		  9);
	a = route_obj(doc, "a");
	b = route_obj(doc, "b");
	CHECK(a && b);
	if (a && b) {
		CHECK_INT(json_integer_value(json_object_get(a, "requests")), na);
		CHECK_INT(json_integer_value(json_object_get(b, "requests")), nb);
		/* The totals are the requests' own clocks, and every stretch of
		 * them is in a stage. */
		CHECK_INT(
		    json_integer_value(json_object_get(json_object_get(a, "total"), "sum_ns")),
		    known_total(30, na / 30));
		CHECK_INT(
		    json_integer_value(json_object_get(json_object_get(b, "total"), "sum_ns")),
		    known_total(nb, 1));
		CHECK_INT(stages_sum(a), known_total(30, na / 30));
		CHECK_INT(stages_sum(b), known_total(nb, 1));
		CHECK_INT(
		    json_integer_value(json_object_get(
			json_object_get(json_object_get(b, "stages"), "store_commit"), "count")),
		    nb);
		CHECK_INT(
		    json_integer_value(json_object_get(
			json_object_get(json_object_get(a, "stages"), "store_commit"), "count")),
		    0);
	}
	json_decref(doc);
}

static void test_gather_across_loops(void)
{
	struct ld_obs_config cfg = {
	    .nloops = 2, .route_names = routes, .nroutes = 2, .stage_timing = true};

	CHECK_INT(ld_obs_init(&cfg), 0);
	CHECK(ld_obs_stage_timing());
	for (int i = 0; i < 2; i++) {
		loops[i].index = (unsigned)i;
		uv_loop_init(&loops[i].uv);
		uv_async_init(&loops[i].uv, &loops[i].cmd, on_cmd);
		loops[i].cmd.data = &loops[i];
		CHECK_INT(ld_obs_loop_open((unsigned)i, &loops[i].uv), 0);
		uv_thread_create(&loops[i].th, run_loop, &loops[i]);
	}
	loops[0].nrecord = 30;
	loops[1].nrecord = 50;
	CHECK_INT(send_cmd(0, 1), 0);
	CHECK_INT(send_cmd(1, 1), 0);
	CHECK_INT(send_cmd(0, 2), 0);
	CHECK_INT(wait_gathered(0, 1), 0);
	if (loops[0].doc)
		check_doc(loops[0].doc, 30, 50);
	free(loops[0].doc);
	loops[0].doc = NULL;

	/* Loop 1 stops; its figures stay in every later snapshot. */
	CHECK_INT(send_cmd(1, 3), 0);
	uv_thread_join(&loops[1].th);
	CHECK_INT(send_cmd(0, 1), 0);
	CHECK_INT(send_cmd(0, 2), 0);
	CHECK_INT(wait_gathered(0, 2), 0);
	if (loops[0].doc)
		check_doc(loops[0].doc, 60, 50);
	free(loops[0].doc);
	CHECK_INT(send_cmd(0, 3), 0);
	uv_thread_join(&loops[0].th);
	for (int i = 0; i < 2; i++) {
		uv_run(&loops[i].uv, UV_RUN_NOWAIT);
		uv_loop_close(&loops[i].uv);
	}
	ld_obs_fini();
}

int main(void)
{
	RUN(test_partition);
	RUN(test_partition_real_clock);
	RUN(test_off_is_noop);
	RUN(test_store_split);
	RUN(test_record_and_merge);
	RUN(test_total_is_measured);
	RUN(test_hdr_memory_and_names);
	RUN(test_hdr_cumulative);
	RUN(test_gather_across_loops);
	return unit_finish();
}
