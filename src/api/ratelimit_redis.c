/*
 * ratelimit_redis.c - the Redis backend of the rate limits (ratelimit.h,
 * docs/operations.md "Across nodes"): every node's loops keep one TAT per
 * key in one Redis, so the nodes together allow each budget once.
 *
 * A decision is one EVALSHA of the GCRA script below on the loop's own
 * connection ("ratelimit", redis/redis.h: its deadline, reconnects and
 * breaker). The script reads the time from Redis (TIME), so the nodes'
 * clocks do not matter, and runs atomically, so two nodes deciding for one
 * key at once cannot both take its last request. hiredis writes what a loop
 * pass queued in one go when the loop next polls, so the decisions of one
 * pass share one write and one round trip (a pipeline), with no batching
 * of our own.
 *
 * Redis holds the TAT in microseconds as a decimal string, with PEXPIRE at
 * the moment it is back in the past (then the key is fully replenished,
 * so dropping it loses nothing): memory is bounded by the active keys.
 *
 * While Redis cannot answer (not connected, the breaker open, a command
 * past its deadline or lost with its connection, an error reply), the
 * decision is made at once in a local table (ratelimit.c's) against the
 * loop's fallback share: the budget divided by --ratelimit-nodes and by the
 * loops. Bounded, never unlimited; when Redis answers again the shared
 * state is used again (what the fallback allowed is not charged to it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ratelimit_int.h"
#include "redis/redis.h"

/* KEYS[1] the key; ARGV[1] the emission interval t, ARGV[2] the window
 * w = t * quota, in microseconds. Returns {allowed 0|1, ahead}: how far
 * the TAT is past now, after the step when allowed, else before it. */
static const char gcra_lua[] =
    "local now = redis.call('TIME')\n"
    "now = tonumber(now[1]) * 1000000 + tonumber(now[2])\n"
    "local t, w = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local ahead = (tonumber(redis.call('GET', KEYS[1]) or 0) or 0) - now\n"
    "if ahead < 0 then ahead = 0 end\n"
    "if ahead + t > w then return {0, ahead} end\n"
    "ahead = ahead + t\n"
    "redis.call('SET', KEYS[1], string.format('%d', now + ahead), 'PX',\n"
    "           math.floor(ahead / 1000) + 1)\n"
    "return {1, ahead}\n";

struct ld_rl_redis {
	struct ld_rl_loop *l;
	struct ld_redis *conn;
	char sha[48]; /* "" until the script is loaded on this connection */
	bool closing;
};

struct rl_cmd {
	struct ld_rl_loop *l;
	struct ld_rl_wait *w;
	struct ld_gcra_key k;
	struct ld_gcra_budget b;
	uint64_t sent_ns;
};

const double ld__rl_lat_le[LD_RL_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
						 0.01,	 0.025,	  0.05,	  0.25,	 0};
_Atomic uint64_t ld__rl_lat_count[LD_RL_LAT_BUCKETS];
_Atomic uint64_t ld__rl_lat_sum_ns;

static void count(enum ld_rl_source s)
{
	atomic_fetch_add_explicit(&ld__rl_by_source[s], 1, memory_order_relaxed);
}

static void observe(uint64_t ns)
{
	unsigned i = 0;

	while (i + 1 < LD_RL_LAT_BUCKETS && (double)ns / 1e9 > ld__rl_lat_le[i])
		i++;
	atomic_fetch_add_explicit(&ld__rl_lat_count[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ld__rl_lat_sum_ns, ns, memory_order_relaxed);
}

/* fallback decides k locally against the loop's share of the whole. */
static void fallback(struct ld_rl_loop *l, const struct ld_gcra_key *k, struct ld_gcra_decision *d)
{
	const struct ld_rl_config *c = l->c;
	const struct ld_gcra_budget *b =
	    k->kind == 3 ? &c->fallback48[k->budget - LD_RL_ADDR_READS] : &c->fallback[k->budget];

	ld__rl_local_decide(l, k, b, ld__rl_now_ns(), d);
	count(LD_RL_SRC_FALLBACK);
}

/* key_name: <prefix>rl:<budget>:u<user id> | a<address, 32 hex> | n<its
 * /48, 12 hex>. */
static int key_name(char *out, size_t cap, const char *prefix, const struct ld_gcra_key *k)
{
	char id[40];
	int64_t uid;

	if (k->kind == 1) {
		memcpy(&uid, k->id, sizeof(uid));
		snprintf(id, sizeof(id), "u%" PRId64, uid);
	} else {
		unsigned n = k->kind == 3 ? 6 : 16;

		id[0] = k->kind == 3 ? 'n' : 'a';
		for (unsigned i = 0; i < n; i++)
			snprintf(id + 1 + 2 * i, 3, "%02x", k->id[i]);
	}
	return snprintf(out, cap, "%srl:%s:%s", prefix, ld_rl_budget_names[k->budget], id);
}

static void on_reply(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct rl_cmd *u = udata;
	struct ld_rl_loop *l = u->l;
	struct ld_gcra_decision d;

	(void)err;
	if (l->redis->closing)
		goto out; /* no request waits: the loop stops once all are answered */
	if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER &&
	    reply->element[1]->type == REDIS_REPLY_INTEGER && reply->element[1]->integer >= 0) {
		ld_gcra_describe(&u->b, reply->element[0]->integer == 1,
				 (uint64_t)reply->element[1]->integer, &d);
		count(LD_RL_SRC_REDIS);
		observe(ld__rl_now_ns() - u->sent_ns);
	} else {
		/* The script is gone (SCRIPT FLUSH, another server behind the
		 * address): a new connection loads it again. */
		if (reply && reply->type == REDIS_REPLY_ERROR &&
		    !strncmp(reply->str, "NOSCRIPT", 8))
			ld_redis_fail(r, "the rate-limit script is not loaded in Redis");
		fallback(l, &u->k, &d);
	}
	u->w->done(u->w, &d);
out:
	free(u);
}

static int redis_decide(struct ld_rl_loop *l, const struct ld_gcra_key *k,
			const struct ld_gcra_budget *b, uint64_t now_ns, struct ld_gcra_decision *d,
			struct ld_rl_wait *w)
{
	struct ld_rl_redis *x = l->redis;
	struct rl_cmd *u;
	char key[128], t[24], win[24];
	uint64_t tv, wv;

	(void)now_ns;
	if (!x->sha[0] || !ld_redis_usable(x->conn) || !(u = malloc(sizeof(*u)))) {
		fallback(l, k, d);
		return 0;
	}
	u->l = l;
	u->w = w;
	u->k = *k;
	u->b = *b;
	u->sent_ns = ld__rl_now_ns();
	ld_gcra_interval_us(b, &tv, &wv);
	snprintf(t, sizeof(t), "%" PRIu64, tv);
	snprintf(win, sizeof(win), "%" PRIu64, wv);
	key_name(key, sizeof(key), ld_redis_cfg(x->conn)->prefix, k);
	if (ld_redis_command(x->conn, 0, on_reply, u, 6,
			     (const char *[]){"EVALSHA", x->sha, "1", key, t, win}, NULL) != 0) {
		free(u);
		fallback(l, k, d);
		return 0;
	}
	return 1;
}

static void on_sha(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct ld_rl_redis *x = udata;
	char why[160];

	(void)err;
	if (!reply || x->closing)
		return;
	if (reply->type != REDIS_REPLY_STRING || reply->len >= sizeof(x->sha)) {
		snprintf(why, sizeof(why), "rate-limit script refused: %.120s",
			 reply->type == REDIS_REPLY_ERROR ? reply->str : "not a SHA");
		ld_redis_fail(r, why);
		return;
	}
	memcpy(x->sha, reply->str, reply->len);
	x->sha[reply->len] = '\0';
	ld_redis_ready(r);
}

static void on_connect(struct ld_redis *r, void *udata)
{
	struct ld_rl_redis *x = udata;

	x->sha[0] = '\0';
	if (ld_redis_command(r, LD_REDIS_SETUP, on_sha, x, 3,
			     (const char *[]){"SCRIPT", "LOAD", gcra_lua}, NULL) != 0)
		ld_redis_fail(r, "rate-limit set-up could not be sent");
}

static void on_down(struct ld_redis *r, void *udata)
{
	(void)r;
	(void)udata; /* its commands were failed: each fell back already */
}

static int redis_open(const struct ld_rl_config *c, unsigned loop_index, uv_loop_t *uv,
		      struct ld_rl_loop **out)
{
	struct ld_rl_loop *l = calloc(1, sizeof(*l));
	struct ld_rl_redis *x = calloc(1, sizeof(*x));
	int rc = -ENOMEM;

	*out = NULL;
	if (!l || !x)
		goto fail;
	rc = ld__rl_local_open(c, l);
	if (rc)
		goto fail;
	x->l = l;
	l->redis = x;
	rc = ld_redis_open(uv, c->redis, "ratelimit", loop_index,
			   &(struct ld_redis_hooks){on_connect, on_down, x, NULL}, true, &x->conn);
	if (rc)
		goto fail;
	*out = l;
	return 0;
fail:
	if (l)
		ld__rl_local_close(l);
	free(x);
	free(l);
	return rc;
}

static void redis_close(struct ld_rl_loop *l)
{
	l->redis->closing = true;
	ld_redis_close(l->redis->conn);
	ld__rl_local_close(l);
	free(l->redis);
	free(l);
}

const struct ld_rl_vt ld_rl_redis_vt = {
    .name = "redis",
    .loop_open = redis_open,
    .loop_close = redis_close,
    .decide = redis_decide,
};
