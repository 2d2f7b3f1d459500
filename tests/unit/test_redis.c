/*
 * test_redis.c - the Redis client (redis/redis.h): URLs, the backoff, and a
 * connection against a fake server on loopback that first never answers
 * (deadlines cut it, the breaker opens and refuses fast) and then answers
 * every PING (the connection comes back, the probe closes the breaker and
 * the user is told commands go through again).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <uv.h>

#include "base/config.h"
#include "cache/l2_codec.h"
#include "redis/redis.h"
#include "serve_config.h"
#include "unit.h"

static void test_url_parse(void)
{
	struct ld_redis_addr a;
	char err[200];

	CHECK_INT(ld_redis_url_parse("redis://127.0.0.1:7001/3", &a, err, sizeof(err)), 0);
	CHECK_STR(a.host, "127.0.0.1");
	CHECK_INT(a.port, 7001);
	CHECK_INT(a.db, 3);
	CHECK_INT(ld_redis_url_parse("redis://cache", &a, err, sizeof(err)), 0);
	CHECK_STR(a.host, "cache");
	CHECK_INT(a.port, 6379);
	CHECK_INT(a.db, 0);
	CHECK_INT(ld_redis_url_parse("redis://[::1]:6380/", &a, err, sizeof(err)), 0);
	CHECK_STR(a.host, "::1");
	CHECK_INT(a.port, 6380);
	CHECK_INT(ld_redis_url_parse("http://h:1", &a, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "'http://h:1' is not a redis:// URL (redis://host:port[/db])");
	CHECK_INT(ld_redis_url_parse("redis://h:0", &a, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_redis_url_parse("redis://h:65536", &a, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_redis_url_parse("redis://h/16", &a, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "'redis://h/16' is not a redis URL (redis://host:port[/db], db 0 to 15)");
	CHECK_INT(ld_redis_url_parse("redis://h:1x", &a, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_redis_url_parse("redis://", &a, err, sizeof(err)), -EINVAL);
	CHECK_INT(ld_redis_url_parse("redis://:pw@h:1", &a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "pw") == NULL);
	CHECK(strstr(err, "--redis-password") != NULL);
}

static void test_backoff_full_jitter(void)
{
	/* The ceiling doubles from the base up to the cap; the delay is
	 * anywhere from 0 to the ceiling. */
	CHECK_INT(ld_redis_backoff_ms(50, 2000, 0, 50), 50);
	CHECK_INT(ld_redis_backoff_ms(50, 2000, 0, 51), 0);
	CHECK_INT(ld_redis_backoff_ms(50, 2000, 3, 400), 400);
	CHECK_INT(ld_redis_backoff_ms(50, 2000, 3, 401), 0);
	CHECK_INT(ld_redis_backoff_ms(50, 2000, 20, 2000), 2000);
	CHECK_INT(ld_redis_backoff_ms(50, 2000, 60, 123456789), 123456789 % 2001);
	for (uint64_t r = 0; r < 5000; r += 7)
		CHECK(ld_redis_backoff_ms(50, 2000, 5, r) <= 1600);
}

static void test_cache_value_and_key_codec(void)
{
	struct ld_cache_value v = {200, false, "\"e1\"", "{\"a\":1}", 7}, got;
	struct ld_cache_key k = {LD_CACHE_USER_ITEMS, 42}, back;
	char etag[48], key[64];
	size_t len;
	char *enc = ld_l2_encode(&v, &len);

	CHECK(enc != NULL);
	CHECK_INT(len, 18);
	CHECK(enc && !memcmp(enc, "200 0 \"e1\"\n{\"a\":1}", 18));
	CHECK(enc && ld_l2_decode(enc, len, &got, etag, sizeof(etag)));
	CHECK_INT(got.status, 200);
	CHECK_INT(got.problem, 0);
	CHECK_STR(got.etag, "\"e1\"");
	CHECK_INT(got.body_len, 7);
	free(enc);
	CHECK(ld_l2_decode("404 1 \n{}", 9, &got, etag, sizeof(etag)));
	CHECK_INT(got.status, 404);
	CHECK_INT(got.problem, 1);
	CHECK_STR(got.etag, "");
	/* Whatever else Redis holds is not an answer. */
	CHECK(!ld_l2_decode("500 0 x\n", 8, &got, etag, sizeof(etag)));
	CHECK(!ld_l2_decode("200 2 x\n", 8, &got, etag, sizeof(etag)));
	CHECK(!ld_l2_decode("200 0 x", 7, &got, etag, sizeof(etag)));
	CHECK(!ld_l2_decode("200 0 a\rb\n", 10, &got, etag, sizeof(etag)));
	CHECK(!ld_l2_decode("200 0\nxx", 8, &got, etag, sizeof(etag)));
	CHECK(!ld_l2_decode("200 0 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 57,
			    &got, etag, sizeof(etag)));
	CHECK_INT(ld_l2_key(key, sizeof(key), "ladder:", 'c', &k), 12);
	CHECK_STR(key, "ladder:c:l42");
	CHECK(ld_l2_parse_key("ladder:", key, strlen(key), &back));
	CHECK_INT(back.kind, LD_CACHE_USER_ITEMS);
	CHECK_INT(back.id, 42);
	CHECK(!ld_l2_parse_key("ladder:", "ladder:l:l42", 12, &back)); /* a lease */
	CHECK(!ld_l2_parse_key("ladder:", "other:c:l42", 11, &back));
	CHECK(!ld_l2_parse_key("ladder:", "ladder:c:l042", 13, &back));
	CHECK(!ld_l2_parse_key("ladder:", "ladder:c:x42", 12, &back));
	CHECK(!ld_l2_parse_key("ladder:", "ladder:c:i99999999999999999999", 30, &back));
}

/* ---- a fake server ------------------------------------------------------- */

struct fake {
	uv_tcp_t srv;
	int port;
	bool answer; /* reply +PONG to every PING */
	int conns;
};

struct fconn {
	uv_tcp_t h;
	struct fake *f;
	char tail[8];
};

static void on_fclose(uv_handle_t *h)
{
	free(h->data);
}

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(n);
	b->len = b->base ? n : 0;
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

static void on_fread(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct fconn *c = s->data;

	if (n < 0) {
		uv_close((uv_handle_t *)s, on_fclose);
		free(b->base);
		return;
	}
	if (c->f->answer)
		for (ssize_t i = 0; i + 4 <= n; i++)
			if (!memcmp(b->base + i, "PING", 4)) {
				static char pong[] = "+PONG\r\n";
				uv_write_t *w = malloc(sizeof(*w));
				uv_buf_t out = uv_buf_init(pong, 7);

				if (w)
					uv_write(w, s, &out, 1, on_written);
			}
	free(b->base);
}

static void on_fconn(uv_stream_t *srv, int status)
{
	struct fake *f = srv->data;
	struct fconn *c = calloc(1, sizeof(*c));

	if (status || !c) {
		free(c);
		return;
	}
	c->f = f;
	uv_tcp_init(srv->loop, &c->h);
	c->h.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->h) == 0) {
		f->conns++;
		uv_read_start((uv_stream_t *)&c->h, on_alloc, on_fread);
	} else
		uv_close((uv_handle_t *)&c->h, on_fclose);
}

static int fake_start(uv_loop_t *uv, struct fake *f)
{
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof(got);

	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(uv, &f->srv);
	f->srv.data = f;
	if (uv_tcp_bind(&f->srv, (const struct sockaddr *)&a, 0) ||
	    uv_listen((uv_stream_t *)&f->srv, 16, on_fconn) ||
	    uv_tcp_getsockname(&f->srv, (struct sockaddr *)&got, &len))
		return -1;
	f->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
	return 0;
}

/* run_until runs the loop until pred or timeout_ms. */
static bool run_until(uv_loop_t *uv, bool (*pred)(struct ld_redis *), struct ld_redis *r,
		      uint64_t timeout_ms)
{
	uint64_t end = uv_hrtime() + timeout_ms * 1000000ull;

	while (!pred(r) && uv_hrtime() < end)
		uv_run(uv, UV_RUN_ONCE);
	return pred(r);
}

static bool is_open(struct ld_redis *r)
{
	return ld_redis_breaker_state(r) == LD_REDIS_OPEN;
}

static bool is_closed_and_usable(struct ld_redis *r)
{
	return ld_redis_breaker_state(r) == LD_REDIS_CLOSED && ld_redis_usable(r);
}

static int answered, failed, usable_calls;

static void on_usable(struct ld_redis *r, void *udata)
{
	(void)udata;
	CHECK(ld_redis_usable(r));
	usable_calls++;
}

static void on_cmd(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	(void)r;
	(void)udata;
	if (reply && reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "PONG"))
		answered++;
	else if (!reply && err)
		failed++;
}

/* close_left closes the fake's accepted connections still open. */
static void close_left(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h) && h->type == UV_TCP)
		uv_close(h, on_fclose);
}

static void test_deadline_breaker_and_recovery(void)
{
	uv_loop_t uv;
	struct fake f = {0};
	struct ld_redis_config cfg = {0};
	struct ld_redis *r = NULL;
	struct ld_buf m;

	ld_buf_init(&m, 1 << 20);
	CHECK_INT(uv_loop_init(&uv), 0);
	CHECK_INT(fake_start(&uv, &f), 0);
	snprintf(cfg.url, sizeof(cfg.url), "redis://127.0.0.1:%d", f.port);
	cfg.connect_timeout_ms = 50;
	cfg.command_timeout_ms = 50;
	cfg.backoff_base_ms = 5;
	cfg.backoff_max_ms = 20;
	cfg.breaker_failures = 3;
	cfg.breaker_open_ms = 100;
	CHECK_INT(ld_redis_open(&uv, &cfg, "test", 0,
				&(struct ld_redis_hooks){NULL, NULL, NULL, on_usable}, true, &r),
		  0);
	/* Nobody answers: each set-up PING runs past the deadline. */
	CHECK(run_until(&uv, is_open, r, 5000));
	CHECK(f.conns >= 3);
	CHECK(!ld_redis_usable(r));
	CHECK_INT(ld_redis_command(r, 0, on_cmd, NULL, 1, (const char *[]){"PING"}, NULL), -EAGAIN);
	CHECK_INT(ld_redis_render_metrics(&m), 0);
	CHECK(m.data && strstr(m.data, "ladder_redis_breaker_state{conn=\"test\",loop=\"0\"} 1"));
	CHECK(m.data &&
	      strstr(m.data, "ladder_redis_breaker_opens_total{conn=\"test\",loop=\"0\"} 1"));
	/* It answers now: a reconnect gets ready, the probe closes the
	 * breaker, and commands go through. */
	f.answer = true;
	CHECK(run_until(&uv, is_closed_and_usable, r, 5000));
	/* Ready came with the breaker open: the user hears of it once, when
	 * the probe closes it (what it held back can go). */
	CHECK_INT(usable_calls, 1);
	CHECK_INT(ld_redis_command(r, 0, on_cmd, NULL, 1, (const char *[]){"PING"}, NULL), 0);
	for (int i = 0; i < 1000 && answered == 0; i++)
		uv_run(&uv, UV_RUN_ONCE);
	CHECK_INT(answered, 1);
	/* Silent again: the command in flight fails at its deadline (the
	 * connection is cut), never later. */
	f.answer = false;
	CHECK_INT(ld_redis_command(r, 0, on_cmd, NULL, 1, (const char *[]){"PING"}, NULL), 0);
	for (int i = 0; i < 100000 && failed == 0; i++)
		uv_run(&uv, UV_RUN_ONCE);
	CHECK_INT(failed, 1);
	ld_buf_reset(&m);
	CHECK_INT(ld_redis_render_metrics(&m), 0);
	CHECK(m.data && strstr(m.data, "ladder_redis_errors_total{conn=\"test\",loop=\"0\",kind="
				       "\"timeout\"}") != NULL);
	ld_buf_release(&m);
	ld_redis_close(r);
	uv_close((uv_handle_t *)&f.srv, NULL);
	uv_walk(&uv, close_left, NULL);
	uv_run(&uv, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&uv), 0);
}

/* A host name: resolved off the loop (uv_getaddrinfo), then connected to
 * its address; a close while the resolve is out frees nothing early. */
static void test_host_name_is_resolved(void)
{
	uv_loop_t uv;
	struct fake f = {0};
	struct ld_redis_config cfg = {0};
	struct ld_redis *r = NULL, *gone = NULL;
	int before = answered;

	CHECK_INT(uv_loop_init(&uv), 0);
	CHECK_INT(fake_start(&uv, &f), 0);
	f.answer = true;
	snprintf(cfg.url, sizeof(cfg.url), "redis://localhost:%d", f.port);
	cfg.connect_timeout_ms = 2000;
	cfg.command_timeout_ms = 2000;
	cfg.backoff_base_ms = 5;
	cfg.backoff_max_ms = 20;
	cfg.breaker_failures = 3;
	cfg.breaker_open_ms = 100;
	CHECK_INT(ld_redis_open(&uv, &cfg, "test-name", 0, NULL, true, &gone), 0);
	ld_redis_close(gone);
	CHECK_INT(ld_redis_open(&uv, &cfg, "test-name", 1, NULL, true, &r), 0);
	CHECK(!ld_redis_usable(r)); /* the resolve is out: nothing connected yet */
	CHECK(run_until(&uv, is_closed_and_usable, r, 5000));
	CHECK_INT(f.conns, 1);
	CHECK_INT(ld_redis_command(r, 0, on_cmd, NULL, 1, (const char *[]){"PING"}, NULL), 0);
	for (int i = 0; i < 1000 && answered == before; i++)
		uv_run(&uv, UV_RUN_ONCE);
	CHECK_INT(answered, before + 1);
	ld_redis_close(r);
	uv_close((uv_handle_t *)&f.srv, NULL);
	uv_walk(&uv, close_left, NULL);
	uv_run(&uv, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&uv), 0);
}

/* The breaker's settings: both modes on by default, each one set by its
 * flag or its environment variable, and a bad value refused by name. */
static void test_breaker_settings(void)
{
	static struct ld_redis_config cfg;
	char err[256] = "";

	CHECK_INT(ld_redis_config_register(&cfg), 0);
	CHECK_INT(load_serve(err, sizeof(err), NULL), LD_CONFIG_OK);
	CHECK_INT(cfg.breaker_failures, 5);
	CHECK_INT(cfg.breaker_rate_pct, 50);
	CHECK_INT(cfg.breaker_min_calls, 20);
	CHECK_INT(cfg.breaker_window_ms, 10000);
	setenv("LADDER_REDIS_BREAKER_MIN_CALLS", "7", 1);
	CHECK_INT(load_serve(err, sizeof(err), "--redis-breaker-failure-rate", "0",
			     "--redis-breaker-window", "1m30s", NULL),
		  LD_CONFIG_OK);
	CHECK_INT(cfg.breaker_rate_pct, 0);
	CHECK_INT(cfg.breaker_min_calls, 7);
	CHECK_INT(cfg.breaker_window_ms, 90000);
	unsetenv("LADDER_REDIS_BREAKER_MIN_CALLS");
	CHECK_INT(load_serve(err, sizeof(err), "--redis-breaker-failure-rate", "101", NULL),
		  -EINVAL);
	CHECK_STR(err, "--redis-breaker-failure-rate: 101 is out of range (0 to 100)");
	CHECK_INT(load_serve(err, sizeof(err), "--redis-breaker-min-calls", "0", NULL), -EINVAL);
	CHECK_STR(err, "--redis-breaker-min-calls: 0 is out of range (1 to 1000000)");
	setenv("LADDER_REDIS_BREAKER_WINDOW", "10", 1);
	CHECK_INT(load_serve(err, sizeof(err), NULL), -EINVAL);
	CHECK_STR(err,
		  "LADDER_REDIS_BREAKER_WINDOW: '10' is not a duration (try 10s, 500ms or 2m)");
	unsetenv("LADDER_REDIS_BREAKER_WINDOW");
}

int main(void)
{
	RUN(test_url_parse);
	RUN(test_backoff_full_jitter);
	RUN(test_cache_value_and_key_codec);
	RUN(test_deadline_breaker_and_recovery);
	RUN(test_host_name_is_resolved);
	RUN(test_breaker_settings);
	return unit_finish();
}
