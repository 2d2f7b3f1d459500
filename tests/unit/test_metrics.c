/*
 * test_metrics.c - the labels come from the caller (no dependency on the
 * HTTP layer), their ceilings are refused at init, and a render that runs
 * out of room hands out nothing.
 */
#include <errno.h>
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

int main(void)
{
	RUN(test_labels_are_the_callers);
	RUN(test_ceilings);
	RUN(test_render_out_of_room);
	return unit_finish();
}
