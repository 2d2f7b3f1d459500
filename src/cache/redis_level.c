/*
 * redis_level.c - the "redis" level: the local level's L1 per loop, with
 * Redis behind it as L2, shared by every node (docs/cache.md).
 *
 * Per loop, two Redis connections (redis/redis.h): "cache" for commands,
 * with CLIENT TRACKING on, redirected to "cache-sub", which is subscribed
 * to __redis__:invalidate. Redis then tells us of every change to a key
 * this loop read, whoever made it, and the key's generation is bumped
 * (every loop's L1 copy dies). Tracking only holds while both connections
 * do: when either drops, every generation is bumped (the whole L1 is
 * flushed), and L1 is neither used nor filled until both are back.
 *
 * The L2 protocol, cache-aside with leases (as in "Scaling Memcache",
 * NSDI 2013), two Lua scripts:
 *   lookup(K, L, token): K's value if there is one; else a lease (L = token,
 *     NX, lease_ms) for this request to fill from the store; else "busy":
 *     another node is filling, look again shortly, at most cache_wait.
 *   fill(K, L, token, value): SET K only while L still holds our token.
 * A write deletes K and L after its commit (DEL), before it answers: a
 * fill that read the old row finds its lease gone and stores nothing, so
 * the stale-fill race is closed across nodes, and one node fills a key at
 * a time. A delete that cannot reach Redis is kept and sent as soon as
 * commands go through again: first on a new connection, when the breaker
 * closes, and with the next write's deletes; until then (or until the
 * entry's redis_ttl) that key may be stale in Redis: that is the bound
 * when Redis is unreachable.
 *
 * Redis is a cache, not a dependency: while it is not usable (connecting,
 * breaker open, commands past their deadline) every read goes to the store
 * and nothing is cached.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cache/l2_codec.h"
#include "cache/local_int.h"
#include "obs/log.h"
#include "redis/redis.h"

enum l2ev {
	X_HIT,		 /* found in Redis */
	X_MISS,		 /* not there: we took the lease and read the store */
	X_FILL,		 /* stored in Redis under our lease */
	X_FILL_REJECTED, /* our lease was gone (a write came): nothing stored */
	X_LEASE_WAIT,	 /* another node held the lease: looked again */
	X_INVALIDATION,	 /* keys deleted in Redis by our writes */
	X_BYPASS,	 /* Redis not usable: straight to the store */
	X_COUNT
};

#define PENDING_MAX 8
#define RETRY_MAX   4096

struct ld_cache_l2 {
	char node[20]; /* random, in every lease token */
	/* Per generation slot, shared by all loops: deletes of keys there that
	 * have not reached Redis. While one is pending, no loop reads the
	 * slot's keys from Redis (it may hold what the write replaced). */
	_Atomic uint32_t *dirty;
};

struct ld_cache_l2_loop {
	struct ld_cache_loop *l;
	struct ld_redis *data, *sub;
	bool sub_ready, closing;
	long long sub_id;
	char sha_lookup[48], sha_fill[48];
	unsigned setup_left;
	uint64_t seq;
	struct ld_cache_key pending[PENDING_MAX]; /* this write's deletes, until sync */
	unsigned npending;
	struct ld_cache_key *retry; /* deletes that did not reach Redis */
	unsigned nretry;
	unsigned retry_out; /* kept deletes sent again, not answered yet */
	bool retry_lost_logged;
	uv_timer_t poll_timer;
	_Atomic uint64_t ev[LD_CACHE_KINDS][X_COUNT];
	_Atomic uint64_t tracked; /* keys Redis told us another connection changed */
	_Atomic uint64_t flushes;
	_Atomic uint64_t retry_len;
};

static const char lookup_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then return {1, v} end\n"
    "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end\n"
    "return {3}\n";

static const char fill_lua[] = "if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
			       "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
			       "  redis.call('DEL', KEYS[2])\n"
			       "  return 1\n"
			       "end\n"
			       "return 0\n";

static void xcount(struct ld_cache_l2_loop *x, unsigned kind, enum l2ev e)
{
	atomic_fetch_add_explicit(&x->ev[kind][e], 1, memory_order_relaxed);
}

static const char *prefix(const struct ld_cache_l2_loop *x)
{
	return x->l->c->cfg.redis->prefix;
}

static int key_of(char *out, size_t cap, const struct ld_cache_l2_loop *x, char which,
		  const struct ld_cache_key *k)
{
	return ld_l2_key(out, cap, prefix(x), which, k);
}

static bool l2_up(struct ld_cache_l2_loop *x)
{
	return x->sub_ready && ld_redis_usable(x->data);
}

/* flush: tracking is broken, so nothing in any L1 can be trusted; the
 * bumps also drop every fill under way. */
static void flush(struct ld_cache_l2_loop *x, const char *why)
{
	struct ld_cache_gens *g = &x->l->c->gens;

	for (uint64_t i = 0; i <= g->mask; i++)
		ld_cache_gen_bump(g, i);
	ld_l1_clear(&x->l->l1);
	atomic_fetch_add_explicit(&x->flushes, 1, memory_order_relaxed);
	(void)why;
}

/* ---- deletes ------------------------------------------------------------- */

static _Atomic uint32_t *dirty_of(struct ld_cache_l2_loop *x, const struct ld_cache_key *k)
{
	return &x->l->c->l2->dirty[ld_cache_key_hash(k) & x->l->c->gens.mask];
}

static void retry_gauge(struct ld_cache_l2_loop *x)
{
	atomic_store_explicit(&x->retry_len, x->nretry + x->retry_out, memory_order_relaxed);
}

/* retry_add keeps k's delete for when Redis is usable; fresh: it was not
 * kept before (its slot is marked until a delete reaches Redis; a key
 * dropped for want of room stays marked). */
static void retry_add(struct ld_cache_l2_loop *x, const struct ld_cache_key *k, bool fresh)
{
	if (fresh)
		atomic_fetch_add_explicit(dirty_of(x, k), 1, memory_order_acq_rel);
	if (!x->retry)
		x->retry = calloc(RETRY_MAX, sizeof(*x->retry));
	if (!x->retry || x->nretry >= RETRY_MAX) {
		if (!x->retry_lost_logged) {
			x->retry_lost_logged = true;
			ld_log_event("warn",
				     "cache: deletes that could not reach Redis were dropped (too "
				     "many): those keys may be stale there until cache_redis_ttl",
				     NULL);
		}
		return;
	}
	x->retry[x->nretry++] = *k;
	retry_gauge(x);
}

struct del_cmd {
	struct ld_cache_l2_loop *x;
	struct ld_cache_waiter *w;
	bool retry; /* the kept deletes, sent again */
	unsigned n;
	struct ld_cache_key keys[];
};

/* bump_keys ends every L1 copy of keys again. A read on another loop may
 * have sent its GET after the write's first bump and had it answered by
 * Redis before the DEL ran: that answer is the old version, filled under
 * the new generation. Its GET went before the DEL's answer came back, so
 * a second bump when the DEL is answered (or has failed), before the write
 * is acknowledged, drops it. */
static void bump_keys(struct ld_cache_l2_loop *x, const struct ld_cache_key *keys, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t hash = ld_cache_key_hash(&keys[i]);

		ld_cache_gen_bump(&x->l->c->gens, hash);
		ld_l1_remove(&x->l->l1, &keys[i], hash);
	}
}

static void on_del_reply(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct del_cmd *d = udata;
	struct ld_cache_l2_loop *x = d->x;

	(void)r;
	(void)err;
	if (!x->closing) {
		bool ok = reply && reply->type != REDIS_REPLY_ERROR;

		bump_keys(x, d->keys, d->n);
		if (d->retry)
			x->retry_out -= d->n;
		for (unsigned i = 0; i < d->n; i++)
			if (!ok)
				retry_add(x, &d->keys[i], !d->retry);
			else if (d->retry)
				atomic_fetch_sub_explicit(dirty_of(x, &d->keys[i]), 1,
							  memory_order_acq_rel);
		retry_gauge(x);
		if (d->w)
			d->w->wake(d->w, LD_CACHE_WOKE_FILLED);
	}
	free(d);
}

/* send_dels sends DEL of keys and their leases; 0 or -EAGAIN/-ENOMEM. */
static int send_dels(struct ld_cache_l2_loop *x, unsigned flags, const struct ld_cache_key *keys,
		     unsigned n, struct ld_cache_waiter *w, bool retry)
{
	size_t nargs = 1 + 2 * (size_t)n;
	const char **argv = calloc(nargs, sizeof(*argv));
	size_t *lens = calloc(nargs, sizeof(*lens));
	char *names = malloc(2 * (size_t)n * 96);
	struct del_cmd *d = malloc(sizeof(*d) + n * sizeof(d->keys[0]));
	int rc = -ENOMEM;

	if (!argv || !lens || !names || !d)
		goto out;
	argv[0] = "DEL";
	lens[0] = 3;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < 2; j++) {
			char *p = names + (2 * i + j) * 96;
			int len = key_of(p, 96, x, j ? 'l' : 'c', &keys[i]);

			argv[1 + 2 * i + j] = p;
			lens[1 + 2 * i + j] = len > 0 && len < 96 ? (size_t)len : 0;
		}
	d->x = x;
	d->w = w;
	d->retry = retry;
	d->n = n;
	memcpy(d->keys, keys, n * sizeof(d->keys[0]));
	rc = ld_redis_command(x->data, flags, on_del_reply, d, (int)nargs, argv, lens);
	if (rc == 0) {
		for (unsigned i = 0; i < n; i++)
			xcount(x, keys[i].kind, X_INVALIDATION);
		d = NULL;
	}
out:
	free(d);
	free(names);
	free(lens);
	free(argv);
	return rc;
}

/* send_retry sends the kept deletes again; they stay in the gauge (and
 * their slots marked) until Redis answers. 0 or what send_dels said. */
static int send_retry(struct ld_cache_l2_loop *x, unsigned flags)
{
	unsigned n = x->nretry;
	int rc;

	if (!n)
		return 0;
	rc = send_dels(x, flags, x->retry, n, NULL, true);
	if (rc == 0) {
		x->nretry = 0;
		x->retry_out += n;
		retry_gauge(x);
	}
	return rc;
}

static void redis_invalidate(struct ld_cache_loop *l, const struct ld_cache_key *k)
{
	struct ld_cache_l2_loop *x = l->l2;

	ld__local_invalidate(l, k);
	if (x->npending < PENDING_MAX)
		x->pending[x->npending++] = *k;
	else
		retry_add(x, k, true);
}

static bool redis_sync(struct ld_cache_loop *l, struct ld_cache_waiter *w)
{
	struct ld_cache_l2_loop *x = l->l2;
	unsigned n = x->npending;

	/* Kept deletes go whenever commands do, not only on a reconnect: the
	 * breaker may stay open well past the connection's return. */
	if (x->nretry && ld_redis_usable(x->data))
		(void)send_retry(x, 0);
	if (!n)
		return false;
	x->npending = 0;
	/* Not connected, or the breaker is open: kept for when it is back
	 * (the write is answered now: Redis is not a dependency). */
	if (!ld_redis_usable(x->data) || send_dels(x, 0, x->pending, n, w, false) != 0) {
		bump_keys(x, x->pending, n);
		for (unsigned i = 0; i < n; i++)
			retry_add(x, &x->pending[i], true);
		return false;
	}
	return w != NULL;
}

/* ---- look-ups and fills ---------------------------------------------------- */

struct lk_cmd {
	struct ld_cache_l2_loop *x;
	struct ld_cache_key key;
	char token[40];
};

static void arm_poll(struct ld_cache_l2_loop *x);

static void on_lookup_reply(struct ld_redis *r, const redisReply *reply, const char *err,
			    void *udata)
{
	struct lk_cmd *u = udata;
	struct ld_cache_l2_loop *x = u->x;
	struct ld_cache_loop *l = x->l;
	uint64_t hash = ld_cache_key_hash(&u->key), now;
	struct inflight *f;
	struct ld_cache_waiter *w;
	struct ld_cache_value v;
	char etag[48];
	long long what;

	(void)r;
	(void)err;
	if (x->closing)
		goto out;
	f = *ld__inflight_at(l, &u->key, hash);
	if (!f || f->l2 != L2_LOOKUP || strcmp(f->token, u->token))
		goto out;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER) {
		xcount(x, u->key.kind, X_BYPASS);
		ld__finish(l, &u->key, hash, LD_CACHE_WOKE_STORE);
		goto out;
	}
	what = reply->element[0]->integer;
	if (what == 1 && reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_STRING &&
	    ld_l2_decode(reply->element[1]->str, reply->element[1]->len, &v, etag, sizeof(etag))) {
		xcount(x, u->key.kind, X_HIT);
		/* Under the generation taken before the GET: an invalidation
		 * that came since drops it. */
		ld__finish(l, &u->key, hash,
			   ld__put(l, &u->key, hash, f->gen, &v) ? LD_CACHE_WOKE_FILLED
								 : LD_CACHE_WOKE_STORE);
	} else if (what == 2) {
		xcount(x, u->key.kind, X_MISS);
		f->l2 = L2_FILLING;
		w = ld__unpark_first(l, f);
		if (!w) /* every waiter gave up: the lease lapses by itself */
			ld__finish(l, &u->key, hash, LD_CACHE_WOKE_STORE);
		else
			w->wake(w, LD_CACHE_WOKE_FILL); /* may end f: last */
	} else if (what == 3) {
		now = uv_hrtime();
		xcount(x, u->key.kind, X_LEASE_WAIT);
		/* The waits themselves end by cache_wait (the L1 wait timer). */
		if (!f->head) {
			ld__finish(l, &u->key, hash, LD_CACHE_WOKE_STORE);
		} else {
			f->l2 = L2_BUSY;
			f->poll_ns = now + (l->c->cfg.wait_ms / 10 + 1) * 1000000ull;
			arm_poll(x);
		}
	} else {
		xcount(x, u->key.kind, X_BYPASS);
		ld__finish(l, &u->key, hash, LD_CACHE_WOKE_STORE);
	}
out:
	free(u);
}

/* send_lookup runs the lookup script for f under a new token. */
static int send_lookup(struct ld_cache_l2_loop *x, struct inflight *f)
{
	struct lk_cmd *u = malloc(sizeof(*u));
	char kc[96], kl[96], ms[24];
	int rc;

	if (!u)
		return -ENOMEM;
	u->x = x;
	u->key = f->key;
	snprintf(f->token, sizeof(f->token), "%s:%" PRIx64, x->l->c->l2->node, ++x->seq);
	memcpy(u->token, f->token, sizeof(u->token));
	/* A hit is kept in L1 under the generation from before this GET: a
	 * change Redis reports after it drops it. */
	f->gen = ld_cache_gen_load(&x->l->c->gens, ld_cache_key_hash(&f->key));
	key_of(kc, sizeof(kc), x, 'c', &f->key);
	key_of(kl, sizeof(kl), x, 'l', &f->key);
	snprintf(ms, sizeof(ms), "%" PRIu64, x->l->c->cfg.lease_ms);
	rc = ld_redis_command(x->data, 0, on_lookup_reply, u, 7,
			      (const char *[]){"EVALSHA", x->sha_lookup, "2", kc, kl, f->token, ms},
			      NULL);
	if (rc)
		free(u);
	else
		f->l2 = L2_LOOKUP;
	return rc;
}

static void on_poll(uv_timer_t *t)
{
	struct ld_cache_l2_loop *x = t->data;
	struct ld_cache_loop *l = x->l;
	uint64_t now = uv_hrtime();
	struct ld_cache_key due[64];
	unsigned n = 0;

	/* Collect first: finishing wakes requests, which may change the
	 * records under the walk. */
	for (unsigned b = 0; b < INFLIGHT_BUCKETS && n < 64; b++)
		for (struct inflight *f = l->inflight[b]; f && n < 64; f = f->next)
			if (f->l2 == L2_BUSY && f->poll_ns <= now)
				due[n++] = f->key;
	for (unsigned i = 0; i < n; i++) {
		uint64_t hash = ld_cache_key_hash(&due[i]);
		struct inflight *f = *ld__inflight_at(l, &due[i], hash);

		if (!f || f->l2 != L2_BUSY)
			continue;
		if (!f->head) { /* every waiter gave up (cache_wait) */
			ld__finish(l, &due[i], hash, LD_CACHE_WOKE_STORE);
		} else if (!l2_up(x) || send_lookup(x, f) != 0) {
			xcount(x, due[i].kind, X_BYPASS);
			ld__finish(l, &due[i], hash, LD_CACHE_WOKE_STORE);
		}
	}
	arm_poll(x);
}

static void arm_poll(struct ld_cache_l2_loop *x)
{
	struct ld_cache_loop *l = x->l;
	uint64_t now = uv_hrtime(), next = 0;

	if (x->closing)
		return;
	for (unsigned b = 0; b < INFLIGHT_BUCKETS; b++)
		for (struct inflight *f = l->inflight[b]; f; f = f->next)
			if (f->l2 == L2_BUSY && (!next || f->poll_ns < next))
				next = f->poll_ns;
	if (!next)
		return;
	uv_timer_start(&x->poll_timer, on_poll, next > now ? (next - now) / 1000000 + 1 : 0, 0);
}

static enum ld_cache_result redis_lookup(struct ld_cache_loop *l, const struct ld_cache_key *k,
					 struct ld_cache_waiter *w, struct ld_cache_ticket *t,
					 struct ld_cache_value *v, uint64_t now_ns)
{
	struct ld_cache_l2_loop *x = l->l2;
	uint64_t hash = ld_cache_key_hash(k);
	uint64_t gen = ld_cache_gen_load(&l->c->gens, hash);
	bool up = l2_up(x);
	const struct ld_l1_entry *e;
	enum ld_l1_miss why;
	struct inflight *f;

	t->gen = gen;
	t->filler = false;
	/* Without tracking, an L1 copy might have missed another node's
	 * write (and every copy was flushed when tracking went). */
	e = up ? ld_l1_get(&l->l1, k, hash, gen, now_ns, &why) : NULL;
	if (e) {
		/* A look-up after a wake (w NULL) was counted already: as a
		 * miss that Redis answered, or as a coalesced wait. */
		if (w)
			ld__cache_count(l, k->kind, EV_HIT);
		v->status = e->status;
		v->problem = e->problem;
		v->etag = e->etag;
		v->body = e->body;
		v->body_len = e->body_len;
		return LD_CACHE_HIT;
	}
	f = *ld__inflight_at(l, k, hash);
	if (f && w && !f->timed_out) {
		ld__park(l, f, w, true);
		return LD_CACHE_WAIT;
	}
	ld__cache_count(l, k->kind, EV_MISS);
	if (f || !w)
		return LD_CACHE_MISS; /* someone else fills; or a look-up after a wake */
	if (!up ||
	    atomic_load_explicit(&l->c->l2->dirty[hash & l->c->gens.mask], memory_order_acquire)) {
		xcount(x, k->kind, X_BYPASS);
		return LD_CACHE_MISS;
	}
	f = ld__inflight_new(l, k, hash);
	if (!f)
		return LD_CACHE_MISS;
	if (send_lookup(x, f) != 0) {
		xcount(x, k->kind, X_BYPASS);
		ld__finish(l, k, hash, LD_CACHE_WOKE_STORE);
		return LD_CACHE_MISS;
	}
	/* The first request waits for Redis too: a hit answers it, a lease
	 * sends it to the store to fill (its ticket is f's generation). */
	ld__park(l, f, w, false);
	return LD_CACHE_WAIT;
}

struct fill_cmd {
	struct ld_cache_l2_loop *x;
	enum ld_cache_kind kind;
};

static void on_fill_reply(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct fill_cmd *u = udata;

	(void)r;
	(void)err;
	if (!u->x->closing && reply && reply->type == REDIS_REPLY_INTEGER)
		xcount(u->x, u->kind, reply->integer == 1 ? X_FILL : X_FILL_REJECTED);
	free(u);
}

void ld__l2_filled(struct ld_cache_loop *l, struct inflight *f, const struct ld_cache_value *v)
{
	struct ld_cache_l2_loop *x = l->l2;
	const struct ld_cache_config *cfg = &l->c->cfg;
	char kc[96], kl[96], ttl[24];
	struct fill_cmd *u;
	size_t len = 0;
	char *val;

	if (!x || x->closing || f->l2 != L2_FILLING || !v)
		return;
	/* Sent even when this loop's generation moved (a flush, or a write
	 * here): the lease decides for Redis, and any write since our lease
	 * was granted deleted it. */
	val = ld_l2_encode(v, &len);
	u = malloc(sizeof(*u));
	if (!val || !u)
		goto out;
	u->x = x;
	u->kind = f->key.kind;
	key_of(kc, sizeof(kc), x, 'c', &f->key);
	key_of(kl, sizeof(kl), x, 'l', &f->key);
	snprintf(ttl, sizeof(ttl), "%" PRIu64,
		 v->status == 404 ? cfg->negative_ttl_ms : cfg->l2_ttl_ms);
	if (ld_redis_command(
		x->data, 0, on_fill_reply, u, 8,
		(const char *[]){"EVALSHA", x->sha_fill, "2", kc, kl, f->token, val, ttl},
		(const size_t[]){7, strlen(x->sha_fill), 1, strlen(kc), strlen(kl),
				 strlen(f->token), len, strlen(ttl)}) == 0)
		u = NULL;
out:
	free(u);
	free(val);
}

static void redis_fill(struct ld_cache_loop *l, const struct ld_cache_key *k,
		       const struct ld_cache_ticket *t, const struct ld_cache_value *v)
{
	ld__local_fill(l, k, t, v);
}

/* ---- the two connections ----------------------------------------------------- */

static void on_message(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct ld_cache_l2_loop *x = udata;
	const redisReply *p;
	struct ld_cache_key k;

	(void)err;
	if (!reply || x->closing || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (!strcasecmp(reply->element[0]->str, "subscribe")) {
		ld_redis_ready(r);
		x->sub_ready = true;
		ld_redis_start(x->data);
		return;
	}
	if (strcasecmp(reply->element[0]->str, "message"))
		return;
	p = reply->element[2];
	if (p->type == REDIS_REPLY_NIL) { /* FLUSHALL / FLUSHDB */
		flush(x, "Redis was flushed");
		return;
	}
	if (p->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < p->elements; i++) {
		const redisReply *e = p->element[i];

		if (e->type != REDIS_REPLY_STRING ||
		    !ld_l2_parse_key(prefix(x), e->str, e->len, &k))
			continue;
		ld_cache_gen_bump(&x->l->c->gens, ld_cache_key_hash(&k));
		ld_l1_remove(&x->l->l1, &k, ld_cache_key_hash(&k));
		atomic_fetch_add_explicit(&x->tracked, 1, memory_order_relaxed);
	}
}

static void on_client_id(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct ld_cache_l2_loop *x = udata;

	(void)err;
	if (!reply || x->closing)
		return;
	if (reply->type != REDIS_REPLY_INTEGER) {
		ld_redis_fail(r, "CLIENT ID did not answer a number");
		return;
	}
	x->sub_id = reply->integer;
	if (ld_redis_command(r, LD_REDIS_SETUP | LD_REDIS_PUSH, on_message, x, 2,
			     (const char *[]){"SUBSCRIBE", "__redis__:invalidate"}, NULL) != 0)
		ld_redis_fail(r, "SUBSCRIBE could not be sent");
}

static void sub_connect(struct ld_redis *r, void *udata)
{
	if (ld_redis_command(r, LD_REDIS_SETUP, on_client_id, udata, 2,
			     (const char *[]){"CLIENT", "ID"}, NULL) != 0)
		ld_redis_fail(r, "CLIENT ID could not be sent");
}

static void sub_down(struct ld_redis *r, void *udata)
{
	struct ld_cache_l2_loop *x = udata;

	(void)r;
	x->sub_ready = false;
	flush(x, "the invalidation connection was lost");
	/* Its tracking points at a connection that is gone: cut it; its
	 * reconnects fail (and count for its breaker) until the subscriber is
	 * back, which starts it at once. */
	ld_redis_fail(x->data, "the invalidation connection was lost");
}

static void on_setup(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct ld_cache_l2_loop *x = udata;
	char why[160];

	(void)err;
	if (!reply || x->closing)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "cache set-up refused: %.120s", reply->str);
		ld_redis_fail(r, why);
		return;
	}
	if (x->setup_left && --x->setup_left == 0)
		ld_redis_ready(r);
}

static void on_sha(struct ld_redis *r, const redisReply *reply, const char *err, void *udata)
{
	struct ld_cache_l2_loop *x = udata;

	if (reply && !x->closing && reply->type == REDIS_REPLY_STRING && reply->len < 48) {
		/* Replies come in order: the lookup script's first. */
		char *dst = x->sha_lookup[0] ? x->sha_fill : x->sha_lookup;

		memcpy(dst, reply->str, reply->len);
		dst[reply->len] = '\0';
	}
	on_setup(r, reply, err, udata);
}

static void data_connect(struct ld_redis *r, void *udata)
{
	struct ld_cache_l2_loop *x = udata;
	char id[24];
	int rc = 0;

	if (!x->sub_ready) {
		ld_redis_fail(r, "the invalidation connection is not up");
		return;
	}
	snprintf(id, sizeof(id), "%lld", x->sub_id);
	x->sha_lookup[0] = x->sha_fill[0] = '\0';
	x->setup_left = 3;
	rc |= ld_redis_command(r, LD_REDIS_SETUP, on_setup, x, 5,
			       (const char *[]){"CLIENT", "TRACKING", "on", "REDIRECT", id}, NULL);
	rc |= ld_redis_command(r, LD_REDIS_SETUP, on_sha, x, 3,
			       (const char *[]){"SCRIPT", "LOAD", lookup_lua}, NULL);
	rc |= ld_redis_command(r, LD_REDIS_SETUP, on_sha, x, 3,
			       (const char *[]){"SCRIPT", "LOAD", fill_lua}, NULL);
	/* Deletes that missed Redis go first, before this loop reads. */
	if (!rc && send_retry(x, LD_REDIS_SETUP) != 0)
		rc = -1;
	if (rc)
		ld_redis_fail(r, "cache set-up could not be sent");
}

/* data_usable: commands go through again (set-up done with the breaker
 * closed, or the breaker closed): what was kept while they did not goes. */
static void data_usable(struct ld_redis *r, void *udata)
{
	struct ld_cache_l2_loop *x = udata;

	(void)r;
	if (!x->closing)
		(void)send_retry(x, 0); /* else the next write's sync tries */
}

static void data_down(struct ld_redis *r, void *udata)
{
	(void)r;
	flush(udata, "the cache connection was lost");
}

/* ---- the level ------------------------------------------------------------- */

static int redis_open(const struct ld_cache_config *cfg, unsigned nloops, struct ld_cache **out,
		      char *err, size_t errlen)
{
	struct ld_redis_addr addr;
	char why[200];
	uint64_t id;
	int rc;

	if (!cfg->redis || !cfg->redis->url[0]) {
		snprintf(err, errlen,
			 "--cache redis needs the Redis server: --redis URL "
			 "(LADDER_REDIS, [redis] redis_url)");
		return -EINVAL;
	}
	if (ld_redis_url_parse(cfg->redis->url, &addr, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "--redis: %s", why);
		return -EINVAL;
	}
	rc = ld__local_open(cfg, nloops, out, err, errlen);
	if (rc)
		return rc;
	(*out)->l2 = calloc(1, sizeof(*(*out)->l2));
	if ((*out)->l2)
		(*out)->l2->dirty = calloc((*out)->gens.mask + 1, sizeof(*(*out)->l2->dirty));
	if (!(*out)->l2 || !(*out)->l2->dirty) {
		if ((*out)->l2)
			free((*out)->l2);
		ld__local_close(*out);
		snprintf(err, errlen, "cache: out of memory");
		return -ENOMEM;
	}
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = uv_hrtime();
	snprintf((*out)->l2->node, sizeof((*out)->l2->node), "%016" PRIx64, id);
	return 0;
}

static void redis_close(struct ld_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nloops; i++)
		if (c->loops[i] && c->loops[i]->l2) {
			free(c->loops[i]->l2->retry);
			free(c->loops[i]->l2);
		}
	if (c->l2)
		free(c->l2->dirty);
	free(c->l2);
	c->l2 = NULL;
	ld__local_close(c);
}

static void on_poll_closed(uv_handle_t *h)
{
	h->data = NULL; /* the memory stays until redis_close (metrics) */
}

static int redis_loop_open(struct ld_cache *c, unsigned index, uv_loop_t *uv,
			   struct ld_cache_loop **out)
{
	struct ld_cache_l2_loop *x = calloc(1, sizeof(*x));
	struct ld_cache_loop *l;
	int rc;

	if (!x)
		return -ENOMEM;
	rc = ld__local_loop_open(c, index, uv, &l);
	if (rc) {
		free(x);
		return rc;
	}
	x->l = l;
	l->l2 = x;
	uv_timer_init(uv, &x->poll_timer);
	x->poll_timer.data = x;
	rc = ld_redis_open(uv, c->cfg.redis, "cache-sub", index,
			   &(struct ld_redis_hooks){sub_connect, sub_down, x, NULL}, true, &x->sub);
	if (!rc)
		rc =
		    ld_redis_open(uv, c->cfg.redis, "cache", index,
				  &(struct ld_redis_hooks){data_connect, data_down, x, data_usable},
				  false, &x->data);
	if (rc) {
		x->closing = true;
		ld_redis_close(x->sub);
		uv_close((uv_handle_t *)&x->poll_timer, on_poll_closed);
		ld__local_loop_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

static void redis_loop_close(struct ld_cache_loop *l)
{
	struct ld_cache_l2_loop *x;

	if (!l)
		return;
	x = l->l2;
	x->closing = true;
	ld_redis_close(x->data);
	ld_redis_close(x->sub);
	x->data = x->sub = NULL;
	uv_close((uv_handle_t *)&x->poll_timer, on_poll_closed);
	ld__local_loop_close(l);
}

static const char *const x_metric[X_COUNT] = {
    [X_HIT] = "hits",
    [X_MISS] = "misses",
    [X_FILL] = "fills",
    [X_FILL_REJECTED] = "fills_dropped",
    [X_LEASE_WAIT] = "coalesced_waits",
    [X_INVALIDATION] = "invalidations",
    [X_BYPASS] = NULL,
};

void ld__l2_render_ev(struct ld_cache *c, const char *name, struct ld_buf *out)
{
	for (unsigned e = 0; e < X_COUNT; e++) {
		if (!x_metric[e] || strcmp(x_metric[e], name))
			continue;
		for (unsigned k = 0; k < LD_CACHE_KINDS; k++) {
			uint64_t sum = 0;

			for (unsigned i = 0; i < c->nloops; i++)
				if (c->loops[i] && c->loops[i]->l2)
					sum += atomic_load_explicit(&c->loops[i]->l2->ev[k][e],
								    memory_order_relaxed);
			ld_buf_printf(out,
				      "ladder_cache_%s_total{level=\"l2\",route=\"%s\"} %llu\n",
				      name, ld_cache_kind_route(k), (unsigned long long)sum);
		}
	}
}

static uint64_t sum_of(struct ld_cache *c, size_t off)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < c->nloops; i++)
		if (c->loops[i] && c->loops[i]->l2)
			s += atomic_load_explicit(
			    (_Atomic uint64_t *)(void *)((char *)c->loops[i]->l2 + off),
			    memory_order_relaxed);
	return s;
}

static int redis_render(struct ld_cache *c, struct ld_buf *out)
{
	int rc = ld__local_render(c, out);

	if (rc)
		return rc;
	ld_buf_printf(out, "# HELP ladder_cache_bypass_total Reads sent straight to the store "
			   "because Redis was not usable (down, slow, breaker open).\n"
			   "# TYPE ladder_cache_bypass_total counter\n");
	for (unsigned k = 0; k < LD_CACHE_KINDS; k++) {
		uint64_t sum = 0;

		for (unsigned i = 0; i < c->nloops; i++)
			if (c->loops[i] && c->loops[i]->l2)
				sum += atomic_load_explicit(&c->loops[i]->l2->ev[k][X_BYPASS],
							    memory_order_relaxed);
		ld_buf_printf(out, "ladder_cache_bypass_total{level=\"l2\",route=\"%s\"} %llu\n",
			      ld_cache_kind_route(k), (unsigned long long)sum);
	}
	ld_buf_printf(
	    out,
	    "# HELP ladder_cache_tracked_invalidations_total Keys Redis reported changed "
	    "(client tracking), dropped from L1.\n"
	    "# TYPE ladder_cache_tracked_invalidations_total counter\n"
	    "ladder_cache_tracked_invalidations_total{level=\"l1\"} %llu\n"
	    "# HELP ladder_cache_flushes_total Whole-L1 flushes: a Redis connection dropped, so "
	    "invalidations may have been missed.\n"
	    "# TYPE ladder_cache_flushes_total counter\n"
	    "ladder_cache_flushes_total{level=\"l1\"} %llu\n"
	    "# HELP ladder_cache_pending_deletes Deletes that could not reach Redis: kept to "
	    "be sent when it is usable, or sent again and not answered yet.\n"
	    "# TYPE ladder_cache_pending_deletes gauge\n"
	    "ladder_cache_pending_deletes{level=\"l2\"} %llu\n",
	    (unsigned long long)sum_of(c, offsetof(struct ld_cache_l2_loop, tracked)),
	    (unsigned long long)sum_of(c, offsetof(struct ld_cache_l2_loop, flushes)),
	    (unsigned long long)sum_of(c, offsetof(struct ld_cache_l2_loop, retry_len)));
	if (ld_redis_render_metrics(out) != 0)
		return -ENOMEM;
	return ld_buf_error(out);
}

const struct ld_cache_vt ld_cache_redis = {
    .name = "redis",
    .open = redis_open,
    .close = redis_close,
    .loop_open = redis_loop_open,
    .loop_close = redis_loop_close,
    .lookup = redis_lookup,
    .fill = redis_fill,
    .invalidate = redis_invalidate,
    .sync = redis_sync,
    .lookup_stale = ld__local_lookup_stale,
    .render_metrics = redis_render,
};
