/*
 * test_log.c - request lines are appended whole or not at all, and a loop's
 * log buffer never stays failed.
 */
#include <errno.h>
#include <string.h>

#include "obs/log.h"
#include "unit.h"

static struct ld_log_request line(const char *route)
{
	struct ld_log_request e = {
	    .request_id = "r-1",
	    .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
	    .method = "GET",
	    .route = route,
	    .status = 200,
	    .bytes = 12,
	    .duration_ns = 5000,
	};
	return e;
}

static void test_whole_line(void)
{
	struct ld_buf b;
	struct ld_log_request e = line("/v1/items/{id}");

	ld_buf_init(&b, 1 << 20);
	CHECK_INT(ld_log_request_line(&b, &e), 0);
	CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
	CHECK(strstr(b.data, "\"route\":\"/v1/items/{id}\",\"status\":200") != NULL);
	CHECK(memchr(b.data, '\n', b.len) == b.data + b.len - 1);
	ld_buf_release(&b);
}

/* Near its cap the buffer refuses the line and keeps the lines it holds. */
static void test_full_buffer_keeps_its_lines(void)
{
	struct ld_buf b;
	struct ld_log_request e = line("/r");
	size_t held;

	ld_buf_init(&b, 1500);
	CHECK_INT(ld_log_request_line(&b, &e), 0);
	CHECK_INT(ld_log_request_line(&b, &e), 0);
	while (b.len + 1024 <= 1500)
		CHECK_INT(ld_log_request_line(&b, &e), 0);
	held = b.len;
	CHECK_INT(ld_log_request_line(&b, &e), -E2BIG);
	CHECK_INT(b.len, held);
	CHECK_INT(ld_buf_error(&b), 0);
	CHECK(b.data[b.len - 1] == '\n');
	ld_buf_release(&b);
}

/* A line longer than the room reserved fails the buffer; the buffer is
 * started afresh, so the next line gets through. */
static void test_overlong_line_does_not_stick(void)
{
	static char route[3000];
	struct ld_buf b;
	struct ld_log_request big, small = line("/r");

	memset(route, 'a', sizeof(route) - 1);
	big = line(route);
	ld_buf_init(&b, 2048);
	CHECK_INT(ld_log_request_line(&b, &small), 0);
	CHECK_INT(ld_log_request_line(&b, &big), -E2BIG);
	CHECK_INT(ld_buf_error(&b), 0);
	CHECK_INT(b.len, 0);
	CHECK_INT(ld_log_request_line(&b, &small), 0);
	CHECK(b.len > 0 && strstr(b.data, "\"route\":\"/r\"") != NULL);
	ld_buf_release(&b);
}

int main(void)
{
	RUN(test_whole_line);
	RUN(test_full_buffer_keeps_its_lines);
	RUN(test_overlong_line_does_not_stick);
	return unit_finish();
}
