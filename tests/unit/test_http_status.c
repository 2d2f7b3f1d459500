/*
 * test_http_status.c - the one status table: ordered (the lookup is a binary
 * search), every row complete, and the status line, the problem documents
 * and the metrics' series all reading the same rows.
 */
#include <jansson.h>
#include <string.h>

#include "base/json.h"
#include "http/status.h"
#include "obs/metrics.h"
#include "unit.h"

static void test_table_is_ordered_and_complete(void)
{
	unsigned codes[LD_HTTP_STATUS_MAX + 1], n, i;
	const char *slug, *title;

	n = ld_http_status_codes(codes, LD_HTTP_STATUS_MAX + 1);
	CHECK(n >= 20);
	CHECK(n <= LD_HTTP_STATUS_MAX);
	for (i = 0; i < n; i++) {
		if (i)
			CHECK(codes[i] > codes[i - 1]);
		CHECK(codes[i] >= 200 && codes[i] < 600);
		CHECK(strcmp(ld_http_reason((int)codes[i]), "Unknown") != 0);
		ld_http_problem_kind((int)codes[i], &slug, &title);
		CHECK(slug && title && slug[0] && title[0]);
		/* Every error has a problem type of its own; only 500 itself
		 * is "internal". */
		if (codes[i] >= 400)
			CHECK_INT(strcmp(slug, "internal") == 0, codes[i] == 500);
	}
	/* A short array gets the first rows only. */
	CHECK_INT(ld_http_status_codes(codes, 2), 2);
	CHECK_INT(codes[0], 200);
	CHECK_INT(codes[1], 201);
}

static void test_lookups(void)
{
	const char *slug, *title;

	CHECK_STR(ld_http_reason(200), "OK");
	CHECK_STR(ld_http_reason(413), "Content Too Large");
	CHECK_STR(ld_http_reason(503), "Service Unavailable");
	CHECK_STR(ld_http_reason(299), "Unknown");
	CHECK_STR(ld_http_reason(-1), "Unknown");
	ld_http_problem_kind(422, &slug, &title);
	CHECK_STR(slug, "validation");
	CHECK_STR(title, "Validation failed");
	ld_http_problem_kind(431, &slug, &title);
	CHECK_STR(slug, "header-too-large");
	CHECK_STR(ld_http_reason(505), "HTTP Version Not Supported");
	ld_http_problem_kind(505, &slug, &title);
	CHECK_STR(slug, "http-version-not-supported");
	CHECK_STR(title, "HTTP version not supported");
	/* Not an error, or not a status of ours: the internal kind. */
	ld_http_problem_kind(200, &slug, &title);
	CHECK_STR(slug, "internal");
	ld_http_problem_kind(599, &slug, &title);
	CHECK_STR(slug, "internal");
	CHECK_STR(title, "Internal server error");
}

static void test_problem_open(void)
{
	struct ld_buf b;
	struct ld_json j;
	json_t *doc;

	ld_buf_init(&b, 4096);
	ld_json_init(&j, &b);
	ld_http_problem_open(&j, 412, "If-Match does not match");
	ld_json_obj_end(&j);
	CHECK_INT(ld_json_finish(&j), 0);
	CHECK_STR(b.data, "{\"type\":\"/problems/precondition-failed\",\"title\":\"Precondition "
			  "failed\",\"status\":412,\"detail\":\"If-Match does not match\"}");
	doc = json_loadb(b.data, b.len, 0, NULL);
	CHECK(doc != NULL);
	json_decref(doc);
	ld_buf_release(&b);
}

/* The metrics are given the table's codes: each gets its own series under
 * its own number, and a code outside the table is "other". */
static void test_metrics_series_follow_the_table(void)
{
	static const char *const routes[] = {"/r"};
	static const char *const methods[] = {"OTHER", "GET"};
	unsigned codes[LD_HTTP_STATUS_MAX], n, i;
	struct ld_metrics_labels l = {routes, 1, methods, 2, codes, 0};
	struct ld_buf b;
	char want[128];

	n = ld_http_status_codes(codes, LD_HTTP_STATUS_MAX);
	l.nstatuses = n;
	CHECK_INT(ld_metrics_init(&l), 0);
	for (i = 0; i < n; i++)
		ld_metrics_request(0, 1, codes[i], 1000, 1);
	ld_metrics_request(0, 1, 299, 1000, 1);
	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_metrics_render(&b), 0);
	for (i = 0; i < n; i++) {
		snprintf(
		    want, sizeof(want),
		    "ladder_http_requests_total{route=\"/r\",method=\"GET\",status=\"%u\"} 1\n",
		    codes[i]);
		CHECK(strstr(b.data, want) != NULL);
	}
	CHECK(strstr(b.data, "{route=\"/r\",method=\"GET\",status=\"other\"} 1\n") != NULL);
	ld_buf_release(&b);
}

int main(void)
{
	RUN(test_table_is_ordered_and_complete);
	RUN(test_lookups);
	RUN(test_problem_open);
	RUN(test_metrics_series_follow_the_table);
	return unit_finish();
}
