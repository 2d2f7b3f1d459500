/*
 * test_bench_html.c - the HTML report fails whole or not at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "bench/report.h"
#include "unit.h"

static struct ld_bench_opts o;
static struct ld_bench_result r;
static struct ld_bench_extra x;
static struct ld_bench_point pts[3];

static void setup(void)
{
	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	memset(&x, 0, sizeof(x));
	strcpy(o.cmdline, "ladder bench --rate 100 <http://127.0.0.1/&\"x\">");
	o.slo_text = "p99<5ms";
	strcpy(x.slo_why, "p99 1.2ms < 5ms");
	CHECK_INT(ld_hdr_init(&r.latency, 60000000, 3), 0);
	CHECK_INT(ld_hdr_init(&r.service, 60000000, 3), 0);
	for (int k = 0; k < LD_BENCH_KINDS; k++)
		CHECK_INT(ld_hdr_init(&r.kind_latency[k], 60000000, 3), 0);
	for (int64_t v = 1; v < 5000; v += 7) {
		ld_hdr_record(&r.latency, v * 3);
		ld_hdr_record(&r.service, v);
	}
	for (int i = 0; i < 3; i++) {
		pts[i].t = i + 1;
		pts[i].p50_us = 100 * (i + 1);
		pts[i].max_us = 900 * (i + 1);
		pts[i].target_rps = 100;
		pts[i].achieved_rps = 99 + i;
	}
	r.timeline = pts;
	r.npoints = 3;
	r.requests = 714;
	r.window_s = 3;
}

static void teardown(void)
{
	ld_hdr_release(&r.latency);
	ld_hdr_release(&r.service);
	for (int k = 0; k < LD_BENCH_KINDS; k++)
		ld_hdr_release(&r.kind_latency[k]);
}

/* Every cap short of the whole report fails, even the ones where a large
 * append fails and a later small one (the closing tag) still fits. */
static void test_truncation_is_an_error(void)
{
	struct ld_buf b;
	size_t full;

	setup();
	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_bench_html(&b, &o, &r, &x), 0);
	full = b.len;
	CHECK(full > 1000);
	CHECK(strstr(b.data, "&lt;http://127.0.0.1/&amp;&quot;x&quot;&gt;") != NULL);
	CHECK(b.len >= 15 && !strcmp(b.data + b.len - 15, "</body></html>\n"));
	ld_buf_release(&b);
	for (size_t cap = 0; cap < full; cap += cap < 2000 ? 1 : 97) {
		ld_buf_init(&b, cap);
		CHECK_INT(ld_bench_html(&b, &o, &r, &x), -E2BIG);
		ld_buf_release(&b);
	}
	ld_buf_init(&b, full);
	CHECK_INT(ld_bench_html(&b, &o, &r, &x), 0);
	CHECK_INT((long long)b.len, (long long)full);
	ld_buf_release(&b);
	teardown();
}

/* With --retries: the totals in a table, a chart of them per second with
 * a point per timeline second, and still all or nothing. */
static void test_retries_section(void)
{
	struct ld_buf b;
	size_t full;

	setup();
	o.retries = 3;
	o.retry_base_s = 0.05;
	o.retry_cap_s = 2;
	o.retry_budget = 0.1;
	r.retries = 19;
	r.retry_denied = 162;
	r.retry_gave_up = 4;
	pts[1].retries = 19;
	pts[1].retry_denied = 162;
	pts[2].retry_gave_up = 4;
	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_bench_html(&b, &o, &r, &x), 0);
	full = b.len;
	CHECK(strstr(b.data, "<tr><td>19</td><td>162</td><td>4</td><td>0.0266</td></tr>") != NULL);
	CHECK(strstr(b.data, "a retry budget of 10% of the requests") != NULL);
	CHECK(strstr(b.data, "<svg id=\"retries-over-time\"") != NULL);
	CHECK(strstr(b.data, "data-name=\"denied by the budget\" data-points=\"3\"") != NULL);
	ld_buf_release(&b);
	for (size_t cap = full - 400; cap < full; cap += 13) {
		ld_buf_init(&b, cap);
		CHECK_INT(ld_bench_html(&b, &o, &r, &x), -E2BIG);
		ld_buf_release(&b);
	}
	/* Without retries: no section. */
	o.retries = 0;
	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_bench_html(&b, &o, &r, &x), 0);
	CHECK(strstr(b.data, "retries") == NULL);
	ld_buf_release(&b);
	memset(pts, 0, sizeof(pts));
	teardown();
}

int main(void)
{
	RUN(test_truncation_is_an_error);
	RUN(test_retries_section);
	return unit_finish();
}
