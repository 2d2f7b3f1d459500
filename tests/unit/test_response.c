/*
 * test_response.c - the response builder: a header block is sent whole or
 * not at all. When the application's header lines, its body or the header
 * block itself pass their cap, the answer becomes a complete 500 problem
 * (logged with the request id), never a header block with lines missing.
 *
 * The builder runs here on a connection made by hand, with no socket: it
 * only fills c->x->wbufs, which the test reads back through the client-side
 * response parser.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/client.h"
#include "http/server_int.h"
#include "unit.h"

#define REQUEST_ID "test-req-7"

struct fixture {
	struct ld_server s;
	struct ld_worker w;
	struct ld_conn *c;
};

/* setup makes a connection with the caps conn.c gives it, except the header
 * block's, which the test picks (0: conn.c's 64 KiB). */
static void setup(struct fixture *f, size_t whdr_max, enum ld_http_method method)
{
	struct ld_req *r;

	memset(&f->s, 0, sizeof(f->s));
	memset(&f->w, 0, sizeof(f->w));
	f->w.s = &f->s;
	f->c = calloc(1, sizeof(*f->c));
	f->c->w = &f->w;
	f->c->x = calloc(1, sizeof(*f->c->x)); /* what on_alloc attaches */
	ld_buf_init(&f->c->x->whdr, whdr_max ? whdr_max : 64 * 1024);
	ld_buf_init(&f->c->x->wgzip, 16 * 1024 * 1024);
	r = &f->c->x->req;
	ld_buf_init(&r->out_hdrs, 16 * 1024);
	ld_buf_init(&r->out_body, 16 * 1024 * 1024);
	r->conn = f->c;
	r->body_file = -1; /* as exchange_get leaves it: no file body */
	r->h.method = method;
	r->h.version_minor = 1;
	snprintf(r->request_id, sizeof(r->request_id), "%s", REQUEST_ID);
	r->request_id_len = strlen(REQUEST_ID);
	memset(r->trace_id, 'a', 32);
	memset(r->span_id, 'b', 16);
	memcpy(r->trace_flags, "01", 3);
}

static void teardown(struct fixture *f)
{
	ld_buf_release(&f->c->x->whdr);
	ld_buf_release(&f->c->x->wgzip);
	ld_buf_release(&f->c->x->req.out_hdrs);
	ld_buf_release(&f->c->x->req.out_body);
	free(f->c->x);
	free(f->c);
}

struct sent {
	char head[64 * 1024]; /* the header block, NUL-terminated */
	size_t head_len;
	int status;
	bool done;
	struct ld_buf body;
};

/* read_back parses what the builder queued as a client would, and checks
 * the header block's shape line by line: CRLF endings only, "Name: value"
 * fields, one blank line at the very end, a Content-Length equal to the
 * body sent. */
static void read_back(struct fixture *f, struct sent *out)
{
	struct ld_conn *c = f->c;
	struct ld_http_resp resp;
	char *line, *end;
	size_t body_sent = 0;
	long long cl = -1;

	memset(out, 0, sizeof(*out) - sizeof(out->body));
	ld_buf_init(&out->body, 16 * 1024 * 1024);
	CHECK(c->x->nwbufs >= 1);
	if (c->x->nwbufs < 1)
		return;
	CHECK(c->x->wbufs[0].len < sizeof(out->head));
	out->head_len = c->x->wbufs[0].len;
	memcpy(out->head, c->x->wbufs[0].base, out->head_len);
	out->head[out->head_len] = '\0';
	if (c->x->nwbufs > 1)
		body_sent = c->x->wbufs[1].len;

	CHECK(out->head_len >= 4 && !strcmp(out->head + out->head_len - 4, "\r\n\r\n"));
	CHECK(strstr(out->head, "\r\n\r\n") == out->head + out->head_len - 4);
	CHECK(!strncmp(out->head, "HTTP/1.1 ", 9));
	for (line = strstr(out->head, "\r\n") + 2; line < out->head + out->head_len - 2;
	     line = end + 2) {
		end = strstr(line, "\r\n");
		CHECK(end != NULL);
		if (!end)
			break;
		CHECK(memchr(line, '\n', (size_t)(end - line)) == NULL);
		CHECK(memchr(line, '\r', (size_t)(end - line)) == NULL);
		CHECK(strstr(line, ": ") != NULL && strstr(line, ": ") < end);
		if (!strncmp(line, "Content-Length: ", 16))
			cl = atoll(line + 16);
	}

	ld_http_resp_init(&resp, c->x->req.h.method == LD_HTTP_HEAD, &out->body);
	CHECK_INT(ld_http_resp_feed(&resp, c->x->wbufs[0].base, c->x->wbufs[0].len),
		  (long long)c->x->wbufs[0].len);
	if (c->x->nwbufs > 1)
		CHECK_INT(ld_http_resp_feed(&resp, c->x->wbufs[1].base, c->x->wbufs[1].len),
			  (long long)c->x->wbufs[1].len);
	out->status = resp.status;
	out->done = resp.done;
	CHECK(resp.done);
	if (c->x->req.h.method == LD_HTTP_HEAD)
		CHECK_INT(body_sent, 0);
	else
		CHECK_INT(cl, (long long)body_sent);
}

/* check_internal_error checks a whole 500 problem answer that carries none
 * of the application's header lines. */
static void check_internal_error(struct sent *s, bool head)
{
	json_t *doc;

	CHECK_INT(s->status, 500);
	CHECK(!strncmp(s->head, "HTTP/1.1 500 Internal Server Error\r\n", 36));
	CHECK(strstr(s->head, "\r\nContent-Type: application/problem+json\r\n") != NULL);
	CHECK(strstr(s->head, "\r\nX-Request-Id: " REQUEST_ID "\r\n") != NULL);
	CHECK(strstr(s->head, "\r\ntraceparent: 00-") != NULL);
	CHECK(strstr(s->head, "X-Filler") == NULL);
	CHECK(strstr(s->head, "ETag") == NULL);
	if (head) {
		CHECK_INT(s->body.len, 0);
		return;
	}
	doc = json_loadb(s->body.data ? s->body.data : "", s->body.len, 0, NULL);
	CHECK(doc != NULL);
	if (!doc)
		return;
	CHECK_STR(json_string_value(json_object_get(doc, "type")), "/problems/internal");
	CHECK_STR(json_string_value(json_object_get(doc, "title")), "Internal server error");
	CHECK_INT(json_integer_value(json_object_get(doc, "status")), 500);
	CHECK(json_is_string(json_object_get(doc, "detail")));
	json_decref(doc);
}

/* The log goes to stdout: capture_begin points it at a temporary file and
 * capture_end returns what was written (free it). */
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

static void add_fillers(struct ld_req *r, int n)
{
	for (int i = 0; i < n; i++)
		ld_req_header(r, "X-Filler", "%04d-%0100d", i, i);
}

static void test_whole_answer(void)
{
	struct fixture f;
	struct sent s;

	setup(&f, 0, LD_HTTP_GET);
	ld_req_header_str(&f.c->x->req, "ETag", "\"1.1\"");
	add_fillers(&f.c->x->req, 10);
	ld_buf_puts(&f.c->x->req.out_body, "{\"id\":\"1\"}");
	CHECK_INT(ld__response_build(f.c, 200), 0);
	read_back(&f, &s);
	CHECK_INT(s.status, 200);
	CHECK(!strncmp(s.head, "HTTP/1.1 200 OK\r\n", 17));
	CHECK(strstr(s.head, "\r\nETag: \"1.1\"\r\n") != NULL);
	CHECK(strstr(s.head, "\r\nX-Filler: 0009-") != NULL);
	CHECK(strstr(s.head, "\r\nContent-Length: 10\r\n") != NULL);
	CHECK_INT(s.body.len, 10);
	ld_buf_release(&s.body);
	teardown(&f);
}

/* Header lines past out_hdrs' 16 KiB cap: before, the lines that fit went
 * out and the rest were silently missing from a 200. */
static void test_app_header_lines_overflow(void)
{
	struct fixture f;
	struct sent s;
	char *log;

	setup(&f, 0, LD_HTTP_GET);
	ld_req_header_str(&f.c->x->req, "ETag", "\"1.1\"");
	add_fillers(&f.c->x->req, 200); /* 200 lines of 118 bytes: 23 KiB */
	CHECK_INT(ld_buf_error(&f.c->x->req.out_hdrs), -E2BIG);
	ld_buf_puts(&f.c->x->req.out_body, "{\"id\":\"1\"}");
	capture_begin();
	CHECK_INT(ld__response_build(f.c, 200), -E2BIG);
	log = capture_end();
	read_back(&f, &s);
	check_internal_error(&s, false);
	/* The log names the request and the answer that was replaced. */
	CHECK(strstr(log, "\"level\":\"error\"") != NULL);
	CHECK(strstr(log, "\"request_id\":\"" REQUEST_ID "\"") != NULL);
	CHECK(strstr(log, "\"status\":\"200 (error -7)\"") != NULL);
	free(log);
	ld_buf_release(&s.body);
	teardown(&f);
}

/* The header block itself over its cap, with the application's lines each
 * within theirs. */
static void test_header_block_overflow(void)
{
	struct fixture f;
	struct sent s;

	setup(&f, 1024, LD_HTTP_GET);
	add_fillers(&f.c->x->req, 10); /* 1180 bytes: fits out_hdrs, not whdr */
	CHECK_INT(ld_buf_error(&f.c->x->req.out_hdrs), 0);
	ld_buf_puts(&f.c->x->req.out_body, "{\"id\":\"1\"}");
	capture_begin();
	CHECK_INT(ld__response_build(f.c, 201), -E2BIG);
	free(capture_end());
	read_back(&f, &s);
	check_internal_error(&s, false);
	ld_buf_release(&s.body);
	teardown(&f);
}

/* A body the handler lost to its buffer's cap is no 200 with an empty body. */
static void test_body_overflow(void)
{
	struct fixture f;
	struct sent s;

	setup(&f, 0, LD_HTTP_GET);
	ld_buf_release(&f.c->x->req.out_body);
	/* A cap with room for the server's own problem document. */
	ld_buf_init(&f.c->x->req.out_body, 512);
	ld_buf_puts(&f.c->x->req.out_body, "{\"items\":[");
	for (int i = 0; i < 100; i++)
		ld_buf_printf(&f.c->x->req.out_body, "\"item %02d\",", i);
	CHECK_INT(ld_buf_error(&f.c->x->req.out_body), -E2BIG);
	capture_begin();
	CHECK_INT(ld__response_build(f.c, 200), -E2BIG);
	free(capture_end());
	read_back(&f, &s);
	check_internal_error(&s, false);
	ld_buf_release(&s.body);
	teardown(&f);
}

static void test_head_overflow(void)
{
	struct fixture f;
	struct sent s;

	setup(&f, 0, LD_HTTP_HEAD);
	add_fillers(&f.c->x->req, 200);
	capture_begin();
	CHECK_INT(ld__response_build(f.c, 200), -E2BIG);
	free(capture_end());
	read_back(&f, &s);
	check_internal_error(&s, true);
	CHECK_INT(f.c->x->nwbufs, 1);
	ld_buf_release(&s.body);
	teardown(&f);
}

/* When not even the 500 fits, nothing is queued (the caller closes). */
static void test_nothing_fits(void)
{
	struct fixture f;

	setup(&f, 64, LD_HTTP_GET);
	capture_begin();
	CHECK_INT(ld__response_build(f.c, 200), -E2BIG);
	free(capture_end());
	CHECK_INT(f.c->x->nwbufs, 0);
	teardown(&f);
}

/* A file body: the header block says its length, only the header is
 * queued (the file goes out with sendfile), never gzipped; a HEAD or a 304
 * sends no file. */
static void test_file_body(void)
{
	static const int statuses[] = {200, 200, 304};
	static const enum ld_http_method methods[] = {LD_HTTP_GET, LD_HTTP_HEAD, LD_HTTP_GET};

	for (unsigned i = 0; i < 3; i++) {
		struct fixture f;
		FILE *tmp = tmpfile();
		char head[4096];

		setup(&f, 0, methods[i]);
		f.s.cfg.gzip = true;
		f.s.cfg.gzip_min = 1;
		f.c->x->req.accept_gzip = true;
		CHECK(fwrite("0123456789abcdef", 1, 16, tmp) == 16);
		fflush(tmp);
		f.c->x->req.body_file = dup(fileno(tmp));
		f.c->x->req.body_file_len = 16;
		CHECK_INT(ld__response_build(f.c, statuses[i]), 0);
		CHECK_INT(f.c->x->nwbufs, 1);
		snprintf(head, sizeof(head), "%.*s", (int)f.c->x->wbufs[0].len,
			 f.c->x->wbufs[0].base);
		CHECK(strstr(head, "Content-Encoding") == NULL);
		CHECK((strstr(head, "\r\nContent-Length: 16\r\n") != NULL) == (statuses[i] == 200));
		CHECK(f.c->x->file_send == (i == 0));
		close(f.c->x->req.body_file);
		fclose(tmp);
		teardown(&f);
	}
}

int main(void)
{
	RUN(test_whole_answer);
	RUN(test_file_body);
	RUN(test_app_header_lines_overflow);
	RUN(test_header_block_overflow);
	RUN(test_body_overflow);
	RUN(test_head_overflow);
	RUN(test_nothing_fits);
	return unit_finish();
}
