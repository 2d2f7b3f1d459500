/*
 * test_ratelimit.c - GCRA (burst, steady rate, Retry-After, eviction) with a
 * clock the test drives, the RateLimit fields, budgets, CIDR lists and the
 * Forwarded / X-Forwarded-For client pick.
 */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/gcra.h"
#include "api/ratelimit.h"
#include "redis/redis.h"

#define S  1000000000ULL
#define MS 1000000ULL
#define T0 (1000 * S) /* any monotonic start */

static struct ld_gcra_key key(uint8_t budget, uint8_t n)
{
	struct ld_gcra_key k;

	memset(&k, 0, sizeof(k));
	k.budget = budget;
	k.kind = 1;
	k.id[0] = n;
	return k;
}

static void test_burst_then_refused(void)
{
	struct ld_gcra_budget b = {10, 1000}; /* 10 per second */
	uint64_t tat = 0;
	struct ld_gcra_decision d;
	int i;

	for (i = 0; i < 10; i++) {
		ld_gcra_step(&tat, &b, T0, &d);
		CHECK(d.allowed);
		CHECK_INT(d.remaining, 9 - i);
	}
	CHECK_INT(d.quota, 10);
	CHECK_INT(d.window_s, 1);
	CHECK_INT(d.reset_s, 1); /* the whole quota is back in 1 s */
	ld_gcra_step(&tat, &b, T0, &d);
	CHECK(!d.allowed);
	CHECK_INT(d.remaining, 0);
	CHECK_INT(d.retry_after_s, 1);
	/* A refused request costs nothing: still one interval to wait. */
	ld_gcra_step(&tat, &b, T0 + 99 * MS, &d);
	CHECK(!d.allowed);
	ld_gcra_step(&tat, &b, T0 + 100 * MS, &d);
	CHECK(d.allowed);
	CHECK_INT(d.remaining, 0);
}

static void test_steady_rate(void)
{
	struct ld_gcra_budget b = {10, 1000};
	uint64_t tat = 0, now = T0;
	struct ld_gcra_decision d;
	int allowed = 0, i;

	/* Drain the burst, then offer 20/s for 10 s: 10/s get through. */
	for (i = 0; i < 10; i++)
		ld_gcra_step(&tat, &b, now, &d);
	for (i = 0; i < 200; i++) {
		now += 50 * MS;
		ld_gcra_step(&tat, &b, now, &d);
		allowed += d.allowed;
	}
	CHECK_INT(allowed, 100);
}

static void test_retry_after_long_window(void)
{
	struct ld_gcra_budget b = {120, 60000}; /* 120 a minute: one per 500 ms */
	uint64_t tat = 0;
	struct ld_gcra_decision d;
	int i;

	for (i = 0; i < 120; i++)
		ld_gcra_step(&tat, &b, T0, &d);
	CHECK(d.allowed);
	CHECK_INT(d.reset_s, 60);
	ld_gcra_step(&tat, &b, T0, &d);
	CHECK(!d.allowed);
	CHECK_INT(d.retry_after_s, 1); /* 500 ms, rounded up */
	CHECK_INT(d.reset_s, 60);
	ld_gcra_step(&tat, &b, T0 + 30 * S, &d); /* half a window later: 60 back */
	CHECK(d.allowed);
	CHECK_INT(d.remaining, 59);
	CHECK_INT(d.reset_s, 31);

	struct ld_gcra_budget slow = {2, 60000}; /* one per 30 s */
	tat = 0;
	ld_gcra_step(&tat, &slow, T0, &d);
	ld_gcra_step(&tat, &slow, T0, &d);
	CHECK(d.allowed);
	ld_gcra_step(&tat, &slow, T0 + 10 * S, &d);
	CHECK(!d.allowed);
	CHECK_INT(d.retry_after_s, 20);
}

static void test_fields(void)
{
	struct ld_gcra_budget b = {100, 1000};
	uint64_t tat = 0;
	struct ld_gcra_decision d;
	char pol[LD_GCRA_FIELD_MAX], st[LD_GCRA_FIELD_MAX];
	int i;

	for (i = 0; i < 43; i++)
		ld_gcra_step(&tat, &b, T0, &d);
	ld_gcra_fields("user-writes", &d, pol, st);
	CHECK(strcmp(pol, "\"user-writes\";q=100;w=1") == 0);
	CHECK(strcmp(st, "\"user-writes\";r=57;t=1") == 0);
	/* A sub-second window is advertised as 1 s. */
	struct ld_gcra_budget fast = {5, 200};
	tat = 0;
	ld_gcra_step(&tat, &fast, T0, &d);
	ld_gcra_fields("addr-reads", &d, pol, st);
	CHECK(strcmp(pol, "\"addr-reads\";q=5;w=1") == 0);
	CHECK(strcmp(st, "\"addr-reads\";r=4;t=1") == 0);
}

static void test_table_keys_apart(void)
{
	struct ld_gcra_table *t;
	struct ld_gcra_budget b = {3, 1000};
	struct ld_gcra_decision d;
	struct ld_gcra_key a = key(0, 1), c = key(0, 2), a_w = key(1, 1);
	struct ld_gcra_stats st;
	int i;

	CHECK_INT(ld_gcra_open(64, &t), 0);
	for (i = 0; i < 3; i++)
		ld_gcra_decide(t, &a, &b, T0, &d);
	CHECK(d.allowed);
	ld_gcra_decide(t, &a, &b, T0, &d);
	CHECK(!d.allowed);
	ld_gcra_decide(t, &c, &b, T0, &d); /* another user */
	CHECK(d.allowed);
	CHECK_INT(d.remaining, 2);
	ld_gcra_decide(t, &a_w, &b, T0, &d); /* same user, other budget */
	CHECK(d.allowed);
	ld_gcra_stats(t, &st);
	CHECK_INT(st.entries, 3);
	CHECK_INT(st.capacity, 64);
	CHECK_INT(st.evictions, 0);
	ld_gcra_close(t);
}

static void test_table_flood_bounded(void)
{
	struct ld_gcra_table *t;
	struct ld_gcra_budget b = {2, 10000};
	struct ld_gcra_decision d;
	struct ld_gcra_stats st;
	struct ld_gcra_key k;
	unsigned i;

	CHECK_INT(ld_gcra_open(8, &t), 0); /* one set */
	/* 1000 live keys into 8 slots: memory stays, the oldest go. */
	for (i = 0; i < 1000; i++) {
		k = key(0, 0);
		memcpy(k.id, &i, sizeof(i));
		ld_gcra_decide(t, &k, &b, T0 + i, &d);
		CHECK(d.allowed);
	}
	ld_gcra_stats(t, &st);
	CHECK_INT(st.entries, 8);
	CHECK_INT(st.capacity, 8);
	CHECK_INT(st.evictions, 992);
	/* A key that is still held keeps its debt. */
	ld_gcra_decide(t, &k, &b, T0 + 1000, &d);
	CHECK(d.allowed);
	ld_gcra_decide(t, &k, &b, T0 + 1000, &d);
	CHECK(!d.allowed);
	/* Stale entries (fully replenished) are reused without an eviction. */
	k = key(0, 0);
	k.id[15] = 7;
	ld_gcra_decide(t, &k, &b, T0 + 100 * S, &d);
	ld_gcra_stats(t, &st);
	CHECK_INT(st.evictions, 992);
	ld_gcra_close(t);
}

static void test_budget_parse(void)
{
	struct ld_gcra_budget b;

	CHECK_INT(ld_gcra_budget_parse("600/1m", &b), 0);
	CHECK_INT(b.quota, 600);
	CHECK_INT(b.window_ms, 60000);
	CHECK_INT(ld_gcra_budget_parse("20/1s", &b), 0);
	CHECK_INT(b.window_ms, 1000);
	CHECK_INT(ld_gcra_budget_parse("0/1s", &b), -22);
	CHECK_INT(ld_gcra_budget_parse("10", &b), -22);
	CHECK_INT(ld_gcra_budget_parse("10/", &b), -22);
	CHECK_INT(ld_gcra_budget_parse("/1s", &b), -22);
	CHECK_INT(ld_gcra_budget_parse("10/5", &b), -22);
	CHECK_INT(ld_gcra_budget_parse("x/1s", &b), -22);
}

static void v4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	out[12] = a, out[13] = b, out[14] = c, out[15] = d;
}

static void test_cidr(void)
{
	struct ld_rl_cidr c[4];
	unsigned n;
	char err[160];
	uint8_t a[16];

	CHECK_INT(
	    ld_rl_cidr_list("10.0.0.0/8, 192.168.1.7,2001:db8::/32", c, 4, &n, err, sizeof(err)),
	    0);
	CHECK_INT(n, 3);
	v4(a, 10, 9, 8, 7);
	CHECK(ld_rl_cidr_match(c, n, a));
	v4(a, 11, 0, 0, 1);
	CHECK(!ld_rl_cidr_match(c, n, a));
	v4(a, 192, 168, 1, 7);
	CHECK(ld_rl_cidr_match(c, n, a));
	v4(a, 192, 168, 1, 8);
	CHECK(!ld_rl_cidr_match(c, n, a));
	CHECK_INT(ld_rl_cidr_list("", c, 4, &n, err, sizeof(err)), 0);
	CHECK_INT(n, 0);
	CHECK_INT(ld_rl_cidr_list("10.0.0.0/33", c, 4, &n, err, sizeof(err)), -22);
	CHECK(strstr(err, "'10.0.0.0/33' is not an address or CIDR") != NULL);
	CHECK_INT(ld_rl_cidr_list("nope", c, 4, &n, err, sizeof(err)), -22);
}

/* pick runs ld_rl_forwarded_client on one line. */
static int pick(const char *line, bool forwarded, const struct ld_rl_cidr *tr, unsigned n,
		uint8_t out[16])
{
	size_t len = strlen(line);

	return ld_rl_forwarded_client(&line, &len, 1, forwarded, tr, n, out);
}

static void test_forwarded_pick(void)
{
	struct ld_rl_cidr tr[2];
	unsigned n;
	char err[160];
	uint8_t out[16], want[16];
	const char *xff = "6.6.6.6, 203.0.113.5, 10.0.0.2";
	const char *fwd = "for=6.6.6.6;proto=http, for=\"203.0.113.9:4711\", for=10.0.0.3";
	const char *fwd6 = "for=\"[2001:db8::7]:80\"";

	CHECK_INT(ld_rl_cidr_list("10.0.0.0/8", tr, 2, &n, err, sizeof(err)), 0);
	/* The rightmost entry that is not ours; the client's own on the left
	 * is never used. */
	CHECK_INT(pick(xff, false, tr, n, out), 0);
	v4(want, 203, 0, 113, 5);
	CHECK(memcmp(out, want, 16) == 0);
	CHECK_INT(pick(fwd, true, tr, n, out), 0);
	v4(want, 203, 0, 113, 9);
	CHECK(memcmp(out, want, 16) == 0);
	CHECK_INT(pick(fwd6, true, tr, n, out), 0);
	CHECK(out[0] == 0x20 && out[1] == 0x01 && out[15] == 7);
	CHECK_INT(pick("junk", false, tr, n, out), -1);
	CHECK_INT(pick("", false, tr, n, out), -1);
	/* All of them ours: the leftmost. */
	CHECK_INT(pick("10.1.1.1, 10.0.0.2", false, tr, n, out), 0);
	v4(want, 10, 1, 1, 1);
	CHECK(memcmp(out, want, 16) == 0);
}

static void test_forwarded_unreadable_is_unknown(void)
{
	struct ld_rl_cidr tr[2];
	unsigned n;
	char err[160];
	uint8_t out[16], want[16];

	CHECK_INT(ld_rl_cidr_list("10.0.0.0/8", tr, 2, &n, err, sizeof(err)), 0);
	/* Past our proxies an entry we cannot read: the client is unknown,
	 * not the proxy that wrote the right end. */
	CHECK_INT(pick("junk, 10.0.0.2", false, tr, n, out), -1);
	CHECK_INT(pick("for=x, for=10.0.0.3", true, tr, n, out), -1);
	/* Unreadable left of the client: the client stands. */
	CHECK_INT(pick("junk, 203.0.113.5, 10.0.0.2", false, tr, n, out), 0);
	v4(want, 203, 0, 113, 5);
	CHECK(memcmp(out, want, 16) == 0);
}

static void test_xff_ports_and_brackets(void)
{
	struct ld_rl_cidr tr[2];
	unsigned n;
	char err[160];
	uint8_t out[16], want[16];

	CHECK_INT(ld_rl_cidr_list("10.0.0.0/8", tr, 2, &n, err, sizeof(err)), 0);
	CHECK_INT(pick("1.2.3.4:5678", false, tr, n, out), 0);
	v4(want, 1, 2, 3, 4);
	CHECK(memcmp(out, want, 16) == 0);
	CHECK_INT(pick("9.9.9.9, [2001:db8::1]:443, 10.0.0.2:80", false, tr, n, out), 0);
	CHECK(out[0] == 0x20 && out[1] == 0x01 && out[2] == 0x0d && out[3] == 0xb8 && out[15] == 1);
	CHECK_INT(pick("[2001:db8::2]", false, tr, n, out), 0);
	CHECK(out[0] == 0x20 && out[15] == 2);
	CHECK_INT(pick("2001:db8::3", false, tr, n, out), 0);
	CHECK(out[0] == 0x20 && out[15] == 3);
	CHECK_INT(pick("[2001:db8::1]x", false, tr, n, out), -1);
	CHECK_INT(pick("[2001:db8::1", false, tr, n, out), -1);
}

static void test_forwarded_many_lines(void)
{
	struct ld_rl_cidr tr[2];
	unsigned n;
	char err[160];
	uint8_t out[16], want[16];
	/* The client's own line first, then the one a proxy added (HAProxy's
	 * option forwardfor): the proxy's line decides. */
	const char *lines[] = {"9.9.9.9", "203.0.113.5"};
	size_t lens[] = {7, 11};
	/* The client's line ends with a trusted address; the proxy's line
	 * holds only its own: the walk goes on into the earlier line. */
	const char *lines2[] = {"6.6.6.6, 203.0.113.8", "10.0.0.2"};
	size_t lens2[] = {20, 8};

	CHECK_INT(ld_rl_cidr_list("10.0.0.0/8", tr, 2, &n, err, sizeof(err)), 0);
	CHECK_INT(ld_rl_forwarded_client(lines, lens, 2, false, tr, n, out), 0);
	v4(want, 203, 0, 113, 5);
	CHECK(memcmp(out, want, 16) == 0);
	CHECK_INT(ld_rl_forwarded_client(lines2, lens2, 2, false, tr, n, out), 0);
	v4(want, 203, 0, 113, 8);
	CHECK(memcmp(out, want, 16) == 0);
	CHECK_INT(ld_rl_forwarded_client(lines, lens, 0, false, tr, n, out), -1);
}

/* The Redis script's step (ratelimit_redis.c), in microseconds: what
 * ld_gcra_describe is fed. */
static bool script_step(uint64_t *tat_us, uint64_t now_us, uint64_t t, uint64_t w, uint64_t *ahead)
{
	uint64_t a = *tat_us > now_us ? *tat_us - now_us : 0;

	if (a + t > w) {
		*ahead = a;
		return false;
	}
	*ahead = a + t;
	*tat_us = now_us + *ahead;
	return true;
}

static void test_describe_matches_step(void)
{
	/* Whatever the clock, the decisions and fields the Redis script gives
	 * are the local table's. */
	const struct ld_gcra_budget budgets[] = {{10, 1000}, {5, 600000}, {3, 7}, {120, 60000}};

	for (unsigned bi = 0; bi < sizeof(budgets) / sizeof(budgets[0]); bi++) {
		const struct ld_gcra_budget *b = &budgets[bi];
		uint64_t tat = 0, tat_us = 0, t, w, ahead;
		struct ld_gcra_decision dl, dr;

		ld_gcra_interval_us(b, &t, &w);
		CHECK_INT(t * b->quota, w);
		for (unsigned i = 0; i < 3 * b->quota + 5; i++) {
			/* Requests a third of an interval apart: bursts, refusals
			 * and refills. */
			uint64_t now_us = 1000000 + i * (t / 3 + 1);
			bool ok = script_step(&tat_us, now_us, t, w, &ahead);

			ld_gcra_step(&tat, b, now_us * 1000, &dl);
			ld_gcra_describe(b, ok, ahead, &dr);
			CHECK_INT(dr.allowed, dl.allowed);
			CHECK_INT(dr.quota, dl.quota);
			CHECK_INT(dr.window_s, dl.window_s);
			CHECK_INT(dr.remaining, dl.remaining);
			CHECK_INT(dr.reset_s, dl.reset_s);
			CHECK_INT(dr.retry_after_s, dl.retry_after_s);
		}
	}
}

static void setup_cfg(const char *store, unsigned nodes, const struct ld_redis_config *rc)
{
	memset(&ld_rl_cfg, 0, sizeof(ld_rl_cfg));
	ld_rl_cfg.enabled = true;
	snprintf(ld_rl_cfg.store, sizeof(ld_rl_cfg.store), "%s", store);
	ld_rl_cfg.nodes = nodes;
	ld_rl_cfg.ipv6_48_scale = 8;
	ld_rl_cfg.redis = rc;
	for (unsigned i = 0; i < LD_RL_NBUDGETS; i++)
		CHECK_INT(
		    ld_gcra_budget_parse(i & 1 ? "601/10s" : "600/10s", &ld_rl_cfg.budget[i].b), 0);
}

static void test_setup_shares(void)
{
	struct ld_redis_config rc;
	char err[200];

	memset(&rc, 0, sizeof(rc));
	/* Local: each of 2 loops enforces half, rounded up. */
	setup_cfg("local", 3, &rc);
	CHECK_INT(ld_rl_setup(2, err, sizeof(err)), 0);
	CHECK(!ld_rl_cfg.use_redis);
	CHECK_INT(ld_rl_cfg.per_loop[LD_RL_USER_READS].quota, 300);
	CHECK_INT(ld_rl_cfg.per_loop[LD_RL_USER_WRITES].quota, 301);
	CHECK_INT(ld_rl_cfg.per_loop48[0].quota, 2400);
	/* Redis: the whole budget in Redis; the fallback over 3 nodes x 2
	 * loops, rounded up, never 0. */
	snprintf(rc.url, sizeof(rc.url), "redis://127.0.0.1:6379");
	setup_cfg("redis", 3, &rc);
	CHECK_INT(ld_rl_setup(2, err, sizeof(err)), 0);
	CHECK(ld_rl_cfg.use_redis);
	CHECK_INT(ld_rl_cfg.per_loop[LD_RL_USER_READS].quota, 600);
	CHECK_INT(ld_rl_cfg.per_loop[LD_RL_USER_WRITES].quota, 601);
	CHECK_INT(ld_rl_cfg.per_loop[LD_RL_USER_READS].window_ms, 10000);
	CHECK_INT(ld_rl_cfg.per_loop48[1].quota, 601 * 8);
	CHECK_INT(ld_rl_cfg.fallback[LD_RL_USER_READS].quota, 100);
	CHECK_INT(ld_rl_cfg.fallback[LD_RL_ADDR_WRITES].quota, 101);
	CHECK_INT(ld_rl_cfg.fallback48[0].quota, 800);
	CHECK_INT(ld_rl_cfg.fallback[LD_RL_USER_READS].window_ms, 10000);
	setup_cfg("redis", 10000, &rc);
	CHECK_INT(ld_rl_setup(4, err, sizeof(err)), 0);
	CHECK_INT(ld_rl_cfg.fallback[LD_RL_USER_READS].quota, 1);
	/* Redis without its URL, or a bad one: refused, naming the flag. */
	rc.url[0] = '\0';
	setup_cfg("redis", 1, &rc);
	CHECK_INT(ld_rl_setup(1, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--ratelimit-store redis needs the Redis server: --redis URL") != NULL);
	snprintf(rc.url, sizeof(rc.url), "http://x");
	setup_cfg("redis", 1, &rc);
	CHECK_INT(ld_rl_setup(1, err, sizeof(err)), -EINVAL);
	CHECK(strncmp(err, "--redis: ", 9) == 0);
}

int main(void)
{
	RUN(test_burst_then_refused);
	RUN(test_steady_rate);
	RUN(test_retry_after_long_window);
	RUN(test_fields);
	RUN(test_table_keys_apart);
	RUN(test_table_flood_bounded);
	RUN(test_budget_parse);
	RUN(test_cidr);
	RUN(test_forwarded_pick);
	RUN(test_forwarded_unreadable_is_unknown);
	RUN(test_xff_ports_and_brackets);
	RUN(test_forwarded_many_lines);
	RUN(test_describe_matches_step);
	RUN(test_setup_shares);
	return unit_finish();
}
