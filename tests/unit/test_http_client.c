/*
 * test_http_client.c - URL parsing, request bytes and the response parser,
 * fed whole, byte by byte and pipelined.
 */
#include <errno.h>
#include <string.h>

#include "http/client.h"
#include "unit.h"

/* feed_all feeds s in pieces of step bytes until a response is done;
 * returns bytes consumed or a negative error. */
static ssize_t feed_all(struct ld_http_resp *r, const char *s, size_t n, size_t step)
{
	size_t off = 0;

	while (off < n && !r->done) {
		size_t k = n - off < step ? n - off : step;
		ssize_t got = ld_http_resp_feed(r, s + off, k);
		if (got < 0)
			return got;
		off += (size_t)got;
		if ((size_t)got < k && !r->done)
			return -1000; /* stopped early without finishing */
	}
	return (ssize_t)off;
}

static void test_content_length_any_split(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n"
			"Content-Type: text/plain\r\n\r\nhello";
	for (size_t step = 1; step <= strlen(s); step++) {
		struct ld_http_resp r;
		struct ld_buf body;
		ld_buf_init(&body, 100);
		ld_http_resp_init(&r, false, &body);
		CHECK_INT(feed_all(&r, s, strlen(s), step), (long long)strlen(s));
		CHECK(r.done);
		CHECK_INT(r.status, 200);
		CHECK(r.keep_alive);
		CHECK_INT(r.content_length, 5);
		CHECK_INT(body.len, 5);
		CHECK_MEM(body.data, "hello", 5);
		ld_buf_release(&body);
	}
}

static void test_pipelined(void)
{
	const char *s = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"
			"HTTP/1.1 201 \r\ncontent-length: 0\r\n\r\n";
	struct ld_http_resp r;
	ssize_t n;

	ld_http_resp_init(&r, false, NULL);
	n = ld_http_resp_feed(&r, s, strlen(s));
	CHECK_INT(n, (long long)strlen("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc"));
	CHECK(r.done);
	CHECK_INT(r.status, 404);
	CHECK_INT(r.body_bytes, 3);
	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_feed(&r, s + n, strlen(s) - (size_t)n), (long long)strlen(s) - n);
	CHECK(r.done);
	CHECK_INT(r.status, 201);
}

static void test_chunked(void)
{
	const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
			"X-Trailer: yes\r\n\r\n";
	for (size_t step = 1; step <= strlen(s); step += 3) {
		struct ld_http_resp r;
		struct ld_buf body;
		ld_buf_init(&body, 100);
		ld_http_resp_init(&r, false, &body);
		CHECK_INT(feed_all(&r, s, strlen(s), step), (long long)strlen(s));
		CHECK(r.done);
		CHECK(r.chunked);
		CHECK_INT(body.len, 31);
		CHECK_MEM(body.data, "helloabcdefghijklmnopqrstuvwxyz", 31);
		ld_buf_release(&body);
	}
}

static void test_until_close(void)
{
	const char *s = "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nsome body";
	struct ld_http_resp r;

	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_feed(&r, s, strlen(s)), (long long)strlen(s));
	CHECK(!r.done);
	CHECK(!r.keep_alive);
	CHECK_INT(ld_http_resp_eof(&r), 1);
	CHECK(r.done);
	CHECK_INT(r.body_bytes, 9);
	/* EOF in the middle of a Content-Length body is an error. */
	ld_http_resp_init(&r, false, NULL);
	s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
	CHECK_INT(ld_http_resp_feed(&r, s, strlen(s)), (long long)strlen(s));
	CHECK_INT(ld_http_resp_eof(&r), -EPROTO);
	/* EOF before anything is just a closed idle connection. */
	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_eof(&r), 0);
}

static void test_no_body_cases(void)
{
	struct ld_http_resp r;
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
	const char *s204 = "HTTP/1.1 204 No Content\r\n\r\n";
	const char *s304 = "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n";

	ld_http_resp_init(&r, true, NULL);
	CHECK_INT(ld_http_resp_feed(&r, head, strlen(head)), (long long)strlen(head));
	CHECK(r.done);
	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_feed(&r, s204, strlen(s204)), (long long)strlen(s204));
	CHECK(r.done);
	CHECK_INT(r.status, 204);
	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_feed(&r, s304, strlen(s304)), (long long)strlen(s304));
	CHECK(r.done);
}

static void test_interim_and_keepalive(void)
{
	struct ld_http_resp r;
	const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n"
			"Content-Length: 2\r\n\r\nok";
	const char *s10 = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";

	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_feed(&r, s, strlen(s)), (long long)strlen(s));
	CHECK(r.done);
	CHECK_INT(r.status, 200);
	CHECK(!r.keep_alive);
	ld_http_resp_init(&r, false, NULL);
	CHECK_INT(ld_http_resp_feed(&r, s10, strlen(s10)), (long long)strlen(s10));
	CHECK(r.done);
	CHECK(r.keep_alive);
	CHECK_INT(r.version_minor, 0);
}

static void test_rejects(void)
{
	static const char *const bad[] = {
	    "HTTP/2.0 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 2000 OK\r\n\r\n",
	    "HTTP/1.1 099 OK\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "http/1.1 200 OK\r\n\r\n",
	    "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nBad[name]: 1\r\n\r\n",
	    "HTTP/1.1 101 Switching Protocols\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
	};
	static const size_t lens[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ld_http_resp r;
		size_t n = i < sizeof(lens) / sizeof(lens[0]) && lens[i] ? lens[i] : strlen(bad[i]);
		ssize_t got;
		ld_http_resp_init(&r, false, NULL);
		got = feed_all(&r, bad[i], n, n);
		if (got != -EPROTO)
			fprintf(stderr, "case %zu: got %zd\n", i, got);
		CHECK_INT(got, -EPROTO);
	}
}

static void test_limits(void)
{
	struct ld_http_resp r;
	struct ld_buf big, body;
	ssize_t got;

	ld_buf_init(&big, 1 << 20);
	ld_buf_puts(&big, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 3000; i++)
		ld_buf_printf(&big, "X-Filler-%d: %040d\r\n", i, i);
	ld_http_resp_init(&r, false, NULL);
	got = ld_http_resp_feed(&r, big.data, big.len);
	CHECK_INT(got, -E2BIG);
	/* The body buffer's cap holds too. */
	ld_buf_init(&body, 4);
	ld_http_resp_init(&r, false, &body);
	got = ld_http_resp_feed(&r, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12345678", 46);
	CHECK_INT(got, -E2BIG);
	ld_buf_release(&big);
	ld_buf_release(&body);
}

static void test_url(void)
{
	struct ld_http_url u;

	CHECK_INT(ld_http_url_parse("http://127.0.0.1:8080/v1/items?x=1", &u), 0);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_STR(u.port, "8080");
	CHECK_STR(u.path, "/v1/items?x=1");
	CHECK_STR(u.authority, "127.0.0.1:8080");
	CHECK_INT(ld_http_url_parse("http://localhost", &u), 0);
	CHECK_STR(u.port, "80");
	CHECK_STR(u.path, "/");
	CHECK_STR(u.authority, "localhost");
	CHECK_INT(ld_http_url_parse("http://[::1]:9/a", &u), 0);
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.authority, "[::1]:9");
	CHECK_INT(ld_http_url_parse("https://x/", &u), -EINVAL);
	CHECK_INT(ld_http_url_parse("http://:80/", &u), -EINVAL);
	CHECK_INT(ld_http_url_parse("http://h:99999/", &u), -EINVAL);
	CHECK_INT(ld_http_url_parse("http://h:0/", &u), -EINVAL);
	CHECK_INT(ld_http_url_parse("http://h/a b", &u), -EINVAL);
	CHECK_INT(ld_http_url_parse("http://u@h/", &u), -EINVAL);
	CHECK_INT(ld_http_url_parse("ftp", &u), -EINVAL);
}

static void test_request_write(void)
{
	struct ld_buf b;
	const char *hdrs[] = {"Accept: */*", "X-A: b", NULL};
	const char *bad[] = {"NoColon", NULL};
	const char *want = "POST /x HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\nX-A: b\r\n"
			   "Content-Length: 2\r\n\r\n{}";

	ld_buf_init(&b, 4096);
	CHECK_INT(ld_http_request_write(&b, "POST", "h:1", "/x", hdrs, "{}", 2), 0);
	CHECK_STR(b.data, want);
	ld_buf_reset(&b);
	CHECK_INT(ld_http_request_write(&b, "GET", "h", "/", NULL, NULL, 0), 0);
	CHECK_STR(b.data, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	ld_buf_reset(&b);
	CHECK_INT(ld_http_request_write(&b, "GET", "h", "/", bad, NULL, 0), -EINVAL);
	ld_buf_release(&b);
}

int main(void)
{
	RUN(test_content_length_any_split);
	RUN(test_pipelined);
	RUN(test_chunked);
	RUN(test_until_close);
	RUN(test_no_body_cases);
	RUN(test_interim_and_keepalive);
	RUN(test_rejects);
	RUN(test_limits);
	RUN(test_url);
	RUN(test_request_write);
	return unit_finish();
}
