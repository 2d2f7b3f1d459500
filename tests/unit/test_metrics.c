/*
 * test_metrics.c - the labels come from the caller (no dependency on the
 * HTTP layer), their ceilings are refused at init, a render that runs
 * out of room hands out nothing, and counts from many threads (more than
 * there are shards) all arrive.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "obs/metrics.h"
#include "unit.h"

static const char *const routes[] = {"/a", "/b"};
static const char *const methods[] = {"ANY", "FETCH", "STORE"};
static const unsigned statuses[] = {200, 404};

static void init(void)
{
	struct ld_metrics_labels l = {routes, 2, methods, 3, statuses, 2};

	CHECK_INT(ld_metrics_init(&l), 0);
}

/* The method names are the caller's; an id past them counts under [0]. */
static void test_labels_are_the_callers(void)
{
	struct ld_buf b;

	init();
	ld_metrics_request(1, 2, 404, 5000, 10);
	ld_metrics_request(0, 1, 200, 5000, 10);
	ld_metrics_request(0, 1, 200, 5000, 10);
	ld_metrics_request(0, 9, 201, 5000, 10);
	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_metrics_render(&b), 0);
	CHECK(strstr(b.data, "ladder_http_requests_total{route=\"/b\",method=\"STORE\","
			     "status=\"404\"} 1\n") != NULL);
	CHECK(strstr(b.data, "ladder_http_requests_total{route=\"/a\",method=\"FETCH\","
			     "status=\"200\"} 2\n") != NULL);
	CHECK(strstr(b.data, "ladder_http_requests_total{route=\"/a\",method=\"ANY\","
			     "status=\"other\"} 1\n") != NULL);
	CHECK(strstr(b.data, "method=\"GET\"") == NULL);
	ld_buf_release(&b);
}

static void test_ceilings(void)
{
	static const char *const many[40] = {"x"};
	static const unsigned codes[40] = {200};
	static const unsigned big[] = {200, 600};
	struct ld_metrics_labels l = {many, 33, methods, 3, statuses, 2};

	CHECK_INT(ld_metrics_init(&l), -E2BIG);
	l.nroutes = 2;
	l.methods = many;
	l.nmethods = 17;
	CHECK_INT(ld_metrics_init(&l), -E2BIG);
	l.methods = methods;
	l.nmethods = 3;
	l.statuses = codes;
	l.nstatuses = 33;
	CHECK_INT(ld_metrics_init(&l), -E2BIG);
	l.statuses = big;
	l.nstatuses = 2;
	CHECK_INT(ld_metrics_init(&l), -EINVAL);
	init();
}

/* Out of room, the render fails as a whole: the buffer's first failure
 * sticks, so no scrape gets a truncated exposition. */
static void test_render_out_of_room(void)
{
	struct ld_buf b;

	init();
	ld_buf_init(&b, 256);
	CHECK_INT(ld_metrics_render(&b), -E2BIG);
	CHECK_INT(b.len, 0);
	CHECK_INT(ld_buf_error(&b), -E2BIG);
	ld_buf_release(&b);
}

#define COUNTERS 70 /* more threads than metrics.c's SHARDS_MAX (64) */
#define EACH	 1000

static void *count_some(void *arg)
{
	/* A gauge may move up on one thread and down on another: 34 threads
	 * end at +1 in flight and 36 at -1, read back as -2 in all. */
	ld_metrics_inflight((intptr_t)arg < COUNTERS / 2 + 1 ? -1 : 1);
	ld_metrics_connections(1);
	for (int i = 0; i < EACH; i++) {
		ld_metrics_inflight(1);
		ld_metrics_request(1, 0, 200, 200000, 3);
		ld_metrics_inflight(-1);
	}
	return NULL;
}

/* Every thread counts into a shard of its own, the ones past the last
 * shard into one they share: the render's sums are exact either way. */
static void test_counts_from_many_threads(void)
{
	pthread_t t[COUNTERS];
	struct ld_buf b;
	char want[160];

	init();
	for (int i = 0; i < COUNTERS; i++)
		CHECK_INT(pthread_create(&t[i], NULL, count_some, (void *)(intptr_t)i), 0);
	for (int i = 0; i < COUNTERS; i++)
		pthread_join(t[i], NULL);
	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_metrics_render(&b), 0);
	snprintf(want, sizeof(want),
		 "ladder_http_requests_total{route=\"/b\",method=\"ANY\",status=\"200\"} %d\n",
		 COUNTERS * EACH);
	CHECK(strstr(b.data, want) != NULL);
	snprintf(want, sizeof(want), "ladder_http_response_bytes_total{route=\"/b\"} %d\n",
		 COUNTERS * EACH * 3 + 10); /* + the 404 of test_labels_are_the_callers */
	CHECK(strstr(b.data, want) != NULL);
	snprintf(want, sizeof(want),
		 "ladder_http_request_duration_seconds_bucket{route=\"/b\",le=\"0.00025\"} %d\n",
		 COUNTERS * EACH + 1);
	CHECK(strstr(b.data, want) != NULL);
	CHECK(strstr(b.data, "ladder_http_requests_in_flight -2\n") != NULL);
	snprintf(want, sizeof(want), "ladder_http_open_connections %d\n", COUNTERS);
	CHECK(strstr(b.data, want) != NULL);
	snprintf(want, sizeof(want), "ladder_http_connections_total %d\n", COUNTERS);
	CHECK(strstr(b.data, want) != NULL);
	ld_buf_release(&b);
	ld_metrics_inflight(2);
}

int main(void)
{
	RUN(test_labels_are_the_callers);
	RUN(test_ceilings);
	RUN(test_render_out_of_room);
	RUN(test_counts_from_many_threads);
	return unit_finish();
}
