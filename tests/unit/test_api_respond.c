/*
 * test_api_respond.c - handlers check what their JSON writer made of the
 * body: a document the writer could not finish becomes a 500 problem (with
 * the handler's header lines gone, logged with the request id), never a
 * 200 with a body cut short or empty. And the password copy is bounded by
 * the one cap the validators use.
 *
 * ld_api_json_status only prepares the answer, so it runs here on a request
 * made by hand, with no server.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "base/json.h"
#include "unit.h"

#define REQUEST_ID "api-req-9"

static void setup(struct ld_req *r, struct ld_api_req *q, size_t body_max)
{
	memset(r, 0, sizeof(*r));
	memset(q, 0, sizeof(*q));
	q->r = r;
	ld_buf_init(&r->out_hdrs, 16 * 1024);
	ld_buf_init(&r->out_body, body_max);
	snprintf(r->request_id, sizeof(r->request_id), "%s", REQUEST_ID);
}

static void teardown(struct ld_req *r)
{
	ld_buf_release(&r->out_hdrs);
	ld_buf_release(&r->out_body);
}

static int saved_stdout = -1;
static FILE *captured;

static void capture_begin(void)
{
	fflush(stdout);
	captured = tmpfile();
	saved_stdout = dup(STDOUT_FILENO);
	dup2(fileno(captured), STDOUT_FILENO);
}

static char *capture_end(void)
{
	long n;
	char *text;

	fflush(stdout);
	dup2(saved_stdout, STDOUT_FILENO);
	close(saved_stdout);
	n = ftell(captured);
	text = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	rewind(captured);
	if (n > 0 && fread(text, 1, (size_t)n, captured) != (size_t)n)
		text[0] = '\0';
	fclose(captured);
	return text;
}

static void check_problem_500(struct ld_req *r)
{
	json_t *doc;

	CHECK_STR(r->content_type, "application/problem+json");
	CHECK_INT(r->out_hdrs.len, 0);
	CHECK_INT(ld_buf_error(&r->out_body), 0);
	doc = json_loadb(r->out_body.data ? r->out_body.data : "", r->out_body.len, 0, NULL);
	CHECK(doc != NULL);
	if (!doc)
		return;
	CHECK_STR(json_string_value(json_object_get(doc, "type")), "/problems/internal");
	CHECK_INT(json_integer_value(json_object_get(doc, "status")), 500);
	CHECK_STR(json_string_value(json_object_get(doc, "detail")),
		  "the response body could not be written");
	json_decref(doc);
}

static void test_whole_document_keeps_its_status(void)
{
	struct ld_req r;
	struct ld_api_req q;
	struct ld_json j;

	setup(&r, &q, 1024);
	ld_req_header_str(&r, "ETag", "\"1.1\"");
	ld_json_init(&j, &r.out_body);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "id");
	ld_json_id(&j, 1);
	ld_json_obj_end(&j);
	CHECK_INT(ld_api_json_status(&q, &j, 201), 201);
	CHECK_STR(r.out_body.data, "{\"id\":\"1\"}");
	CHECK_STR(r.out_hdrs.data, "ETag: \"1.1\"\r\n");
	CHECK(r.content_type == NULL);
	teardown(&r);
}

/* The body's cap passed half way through a list: the answer is a 500, and
 * the ETag and Location the handler added for the document go with it. */
static void test_cap_passed_becomes_500(void)
{
	struct ld_req r;
	struct ld_api_req q;
	struct ld_json j;
	char *log;

	setup(&r, &q, 512);
	ld_req_header_str(&r, "ETag", "\"1.1\"");
	ld_req_header(&r, "Location", "/v1/items/%d", 1);
	ld_json_init(&j, &r.out_body);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "items");
	ld_json_arr_begin(&j);
	for (int i = 0; i < 100; i++)
		ld_json_str(&j, "an item of some length");
	ld_json_arr_end(&j);
	ld_json_obj_end(&j);
	CHECK_INT(ld_json_finish(&j), -E2BIG);
	capture_begin();
	CHECK_INT(ld_api_json_status(&q, &j, 200), 500);
	log = capture_end();
	check_problem_500(&r);
	CHECK(strstr(log, "\"level\":\"error\"") != NULL);
	CHECK(strstr(log, "\"request_id\":\"" REQUEST_ID "\"") != NULL);
	free(log);
	teardown(&r);
}

/* A writer misused (a container left open) is caught the same way. */
static void test_unfinished_document_becomes_500(void)
{
	struct ld_req r;
	struct ld_api_req q;
	struct ld_json j;

	setup(&r, &q, 1024);
	ld_json_init(&j, &r.out_body);
	ld_json_obj_begin(&j);
	ld_json_key(&j, "id");
	ld_json_id(&j, 1);
	capture_begin();
	CHECK_INT(ld_api_json_status(&q, &j, 200), 500);
	free(capture_end());
	check_problem_500(&r);
	teardown(&r);
}

/* When not even the problem document fits, the status is still 500 and the
 * body buffer has failed: the response builder then sends its own 500. */
static void test_no_room_for_the_problem(void)
{
	struct ld_req r;
	struct ld_api_req q;
	struct ld_json j;

	setup(&r, &q, 16);
	ld_json_init(&j, &r.out_body);
	ld_json_str(&j, "more than sixteen bytes");
	capture_begin();
	CHECK_INT(ld_api_json_status(&q, &j, 200), 500);
	free(capture_end());
	CHECK_INT(ld_buf_error(&r.out_body), -E2BIG);
	teardown(&r);
}

static void test_password_copy_is_capped(void)
{
	struct ld_req r;
	struct ld_api_req q;
	char pw[LD_PASSWORD_MAX + 1];
	struct ld_str s = {pw, LD_PASSWORD_MAX};

	setup(&r, &q, 16);
	memset(pw, 'p', sizeof(pw));
	CHECK_INT(ld_api_keep_password(&q, &s), 0);
	CHECK_INT(q.password_len, LD_PASSWORD_MAX);
	CHECK_INT(q.password[LD_PASSWORD_MAX], '\0');
	CHECK_INT(strlen(q.password), LD_PASSWORD_MAX);
	s.n = LD_PASSWORD_MAX + 1;
	q.password_len = 0;
	CHECK_INT(ld_api_keep_password(&q, &s), -E2BIG);
	CHECK_INT(q.password_len, 0);
	teardown(&r);
}

int main(void)
{
	RUN(test_whole_document_keeps_its_status);
	RUN(test_cap_passed_becomes_500);
	RUN(test_unfinished_document_becomes_500);
	RUN(test_no_room_for_the_problem);
	RUN(test_password_copy_is_capped);
	return unit_finish();
}
