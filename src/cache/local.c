/*
 * local.c - the "local" level: an L1 per loop (l1.h) with one fill per key
 * at a time, a bounded wait behind it, and per-loop counters for /metrics.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/local_int.h"

/* A fill held back by test_fill_delay_ms. */
struct delayed {
	struct delayed *next;
	struct ld_cache_key key;
	struct ld_cache_ticket t;
	uint64_t due_ns;
	int status;
	bool problem;
	char etag[48];
	size_t body_len;
	char body[];
};

void ld__cache_count(struct ld_cache_loop *l, unsigned kind, enum ev e)
{
	atomic_store_explicit(&l->ev[kind][e],
			      atomic_load_explicit(&l->ev[kind][e], memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void sync_evictions(struct ld_cache_loop *l)
{
	for (unsigned k = 0; k < LD_CACHE_KINDS; k++)
		atomic_store_explicit(&l->evictions[k], l->l1.evictions[k], memory_order_relaxed);
}

int ld__local_open(const struct ld_cache_config *cfg, unsigned nloops, struct ld_cache **out,
		   char *err, size_t errlen)
{
	struct ld_cache *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (!c)
		goto fail;
	c->cfg = *cfg;
	c->nloops = nloops;
	c->loops = calloc(nloops ? nloops : 1, sizeof(*c->loops));
	/* 64K slots (512 KiB): collisions only cost hits. */
	if (!c->loops || ld_cache_gens_init(&c->gens, 16) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	snprintf(err, errlen, "cache: out of memory");
	if (c)
		free(c->loops);
	free(c);
	return rc;
}

void ld__local_close(struct ld_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nloops; i++)
		if (c->loops[i]) {
			ld_l1_release(&c->loops[i]->l1);
			free(c->loops[i]);
		}
	ld_cache_gens_release(&c->gens);
	free(c->loops);
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	/* The loop's memory stays until local_close: a /metrics render on
	 * another loop may still be reading it. */
	h->data = NULL;
}

int ld__local_loop_open(struct ld_cache *c, unsigned index, uv_loop_t *uv,
			struct ld_cache_loop **out)
{
	struct ld_cache_loop *l;
	int rc;

	if (index >= c->nloops)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->c = c;
	l->index = index;
	l->uv = uv;
	l->delayed_tail = &l->delayed;
	rc = ld_l1_init(&l->l1, (size_t)c->cfg.l1_bytes, uv_hrtime() ^ ((uint64_t)index << 32));
	if (rc) {
		free(l);
		return rc;
	}
	l->l1.grace_ns = c->cfg.serve_stale_ms * 1000000ull;
	uv_timer_init(uv, &l->wait_timer);
	uv_timer_init(uv, &l->delay_timer);
	l->wait_timer.data = l->delay_timer.data = l;
	c->loops[index] = l;
	*out = l;
	return 0;
}

void ld__local_loop_close(struct ld_cache_loop *l)
{
	struct delayed *d, *next;

	if (!l)
		return;
	/* Every connection is gone, so no request waits; held fills die. */
	for (d = l->delayed; d; d = next) {
		next = d->next;
		free(d);
	}
	for (unsigned b = 0; b < INFLIGHT_BUCKETS; b++)
		while (l->inflight[b]) {
			struct inflight *f = l->inflight[b];

			l->inflight[b] = f->next;
			free(f);
		}
	uv_close((uv_handle_t *)&l->wait_timer, on_timer_closed);
	uv_close((uv_handle_t *)&l->delay_timer, on_timer_closed);
}

struct inflight **ld__inflight_at(struct ld_cache_loop *l, const struct ld_cache_key *k,
				  uint64_t hash)
{
	struct inflight **p = &l->inflight[(hash >> 40) % INFLIGHT_BUCKETS];

	while (*p && ((*p)->key.id != k->id || (*p)->key.kind != k->kind))
		p = &(*p)->next;
	return p;
}

static void wake_all(struct ld_cache_waiter *w, enum ld_cache_wake how)
{
	while (w) {
		struct ld_cache_waiter *next = w->next;

		w->next = NULL;
		w->wake(w, how);
		w = next;
	}
}

/* on_wait_timer sends every waiter that has waited wait_ms to the store. */
static void on_wait_timer(uv_timer_t *t)
{
	struct ld_cache_loop *l = t->data;
	uint64_t now = uv_hrtime(), wait_ns = l->c->cfg.wait_ms * 1000000ull, next = 0;
	struct ld_cache_waiter *expired = NULL, **etail = &expired;

	for (unsigned b = 0; b < INFLIGHT_BUCKETS; b++)
		for (struct inflight *f = l->inflight[b]; f; f = f->next) {
			if (!f->head)
				continue;
			if (now - f->started_ns >= wait_ns) {
				for (struct ld_cache_waiter *w = f->head; w; w = w->next)
					ld__cache_count(l, f->key.kind, EV_WAIT_TIMEOUT);
				*etail = f->head;
				etail = f->tail;
				f->head = NULL;
				f->tail = &f->head;
				f->timed_out = true;
				l->nwaiting--;
			} else {
				uint64_t left = f->started_ns + wait_ns - now;

				if (!next || left < next)
					next = left;
			}
		}
	if (next)
		uv_timer_start(&l->wait_timer, on_wait_timer, next / 1000000 + 1, 0);
	wake_all(expired, LD_CACHE_WOKE_STORE);
}

static enum ld_cache_result local_lookup(struct ld_cache_loop *l, const struct ld_cache_key *k,
					 struct ld_cache_waiter *w, struct ld_cache_ticket *t,
					 struct ld_cache_value *v, uint64_t now_ns)
{
	uint64_t hash = ld_cache_key_hash(k);
	uint64_t gen = ld_cache_gen_load(&l->c->gens, hash);
	const struct ld_l1_entry *e;
	enum ld_l1_miss why;
	struct inflight **p, *f;

	t->gen = gen;
	t->filler = false;
	e = ld_l1_get(&l->l1, k, hash, gen, now_ns, &why);
	if (e) {
		ld__cache_count(l, k->kind, EV_HIT);
		v->status = e->status;
		v->problem = e->problem;
		v->etag = e->etag;
		v->body = e->body;
		v->body_len = e->body_len;
		return LD_CACHE_HIT;
	}
	p = ld__inflight_at(l, k, hash);
	if (*p) {
		f = *p;
		if (w && !f->timed_out) {
			ld__park(l, f, w, true);
			return LD_CACHE_WAIT;
		}
		ld__cache_count(l, k->kind, EV_MISS);
		return LD_CACHE_MISS; /* not the filler: someone else is */
	}
	ld__cache_count(l, k->kind, EV_MISS);
	if (!ld__inflight_new(l, k, hash))
		return LD_CACHE_MISS; /* no coalescing, no fill */
	t->filler = true;
	return LD_CACHE_MISS;
}

bool ld__local_lookup_stale(struct ld_cache_loop *l, const struct ld_cache_key *k,
			    struct ld_cache_value *v, uint64_t *past_ms)
{
	uint64_t hash = ld_cache_key_hash(k), past;
	const struct ld_l1_entry *e;

	if (!l->l1.grace_ns)
		return false;
	e = ld_l1_get_stale(&l->l1, k, hash, ld_cache_gen_load(&l->c->gens, hash), uv_hrtime(),
			    &past);
	if (!e)
		return false;
	if (past)
		ld__cache_count(l, k->kind, EV_STALE);
	*past_ms = past ? (past + 999999) / 1000000 : 0;
	v->status = e->status;
	v->problem = e->problem;
	v->etag = e->etag;
	v->body = e->body;
	v->body_len = e->body_len;
	return true;
}

struct inflight *ld__inflight_new(struct ld_cache_loop *l, const struct ld_cache_key *k,
				  uint64_t hash)
{
	struct inflight **p = ld__inflight_at(l, k, hash), *f;

	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->key = *k;
	f->started_ns = uv_hrtime();
	f->tail = &f->head;
	f->gen = ld_cache_gen_load(&l->c->gens, hash);
	*p = f;
	return f;
}

void ld__park(struct ld_cache_loop *l, struct inflight *f, struct ld_cache_waiter *w,
	      bool coalesced)
{
	w->next = NULL;
	if (!f->head)
		l->nwaiting++;
	*f->tail = w;
	f->tail = &w->next;
	if (coalesced)
		ld__cache_count(l, f->key.kind, EV_COALESCED);
	if (!uv_is_active((uv_handle_t *)&l->wait_timer))
		uv_timer_start(&l->wait_timer, on_wait_timer,
			       l->c->cfg.wait_ms ? l->c->cfg.wait_ms : 1, 0);
}

struct ld_cache_waiter *ld__unpark_first(struct ld_cache_loop *l, struct inflight *f)
{
	struct ld_cache_waiter *w = f->head;

	if (!w)
		return NULL;
	f->head = w->next;
	if (!f->head) {
		f->tail = &f->head;
		l->nwaiting--;
	}
	w->next = NULL;
	return w;
}

/* finish removes k's fill record and wakes its waiters; the redis level
 * first sees the value the fill read (v, NULL when there is none). */
static void finish(struct ld_cache_loop *l, const struct ld_cache_key *k, uint64_t hash,
		   bool filled, const struct ld_cache_value *v)
{
	struct inflight **p = ld__inflight_at(l, k, hash), *f = *p;
	struct ld_cache_waiter *w;

	if (!f)
		return;
	*p = f->next;
	w = f->head;
	if (w)
		l->nwaiting--;
	if (l->l2)
		ld__l2_filled(l, f, v);
	free(f);
	wake_all(w, filled ? LD_CACHE_WOKE_FILLED : LD_CACHE_WOKE_STORE);
}

void ld__finish(struct ld_cache_loop *l, const struct ld_cache_key *k, uint64_t hash,
		enum ld_cache_wake how)
{
	struct inflight **p = ld__inflight_at(l, k, hash), *f = *p;
	struct ld_cache_waiter *w;

	if (!f)
		return;
	*p = f->next;
	w = f->head;
	if (w)
		l->nwaiting--;
	free(f);
	wake_all(w, how);
}

bool ld__put(struct ld_cache_loop *l, const struct ld_cache_key *k, uint64_t hash, uint64_t gen,
	     const struct ld_cache_value *v)
{
	const struct ld_cache_config *cfg = &l->c->cfg;
	uint64_t ttl;

	/* The slot moved since the ticket: a write committed after (or while)
	 * this fill's read, so what it read may be the old version. */
	if (ld_cache_gen_load(&l->c->gens, hash) != gen) {
		ld__cache_count(l, k->kind, EV_FILL_DROPPED);
		return false;
	}
	ttl = (v->status == 404 ? cfg->negative_ttl_ms : cfg->ttl_ms) * 1000000ull;
	if (ld_l1_put(&l->l1, k, hash, gen, uv_hrtime(), ld_l1_jitter(&l->l1, ttl), v) != 0)
		return false;
	ld__cache_count(l, k->kind, EV_FILL);
	sync_evictions(l);
	return true;
}

static bool apply(struct ld_cache_loop *l, const struct ld_cache_key *k, uint64_t hash,
		  const struct ld_cache_ticket *t, const struct ld_cache_value *v)
{
	return ld__put(l, k, hash, t->gen, v);
}

static void on_delay_timer(uv_timer_t *tm)
{
	struct ld_cache_loop *l = tm->data;
	uint64_t now = uv_hrtime();

	while (l->delayed && l->delayed->due_ns <= now) {
		struct delayed *d = l->delayed;
		uint64_t hash = ld_cache_key_hash(&d->key);
		struct ld_cache_value v = {d->status, d->problem, d->etag, d->body, d->body_len};
		bool ok;

		l->delayed = d->next;
		if (!l->delayed)
			l->delayed_tail = &l->delayed;
		ok = apply(l, &d->key, hash, &d->t, &v);
		finish(l, &d->key, hash, ok, &v);
		free(d);
	}
	if (l->delayed)
		uv_timer_start(&l->delay_timer, on_delay_timer,
			       (l->delayed->due_ns - now) / 1000000 + 1, 0);
}

void ld__local_fill(struct ld_cache_loop *l, const struct ld_cache_key *k,
		    const struct ld_cache_ticket *t, const struct ld_cache_value *v)
{
	uint64_t hash = ld_cache_key_hash(k);
	uint64_t delay = l->c->cfg.test_fill_delay_ms;

	if (!t->filler)
		return;
	if (v && delay) {
		/* TEST ONLY: hold the fill, its waiters with it, so a write can
		 * commit between this fill's read and its store. */
		struct delayed *d = malloc(sizeof(*d) + v->body_len);

		if (d && strlen(v->etag) < sizeof(d->etag)) {
			d->next = NULL;
			d->key = *k;
			d->t = *t;
			d->due_ns = uv_hrtime() + delay * 1000000ull;
			d->status = v->status;
			d->problem = v->problem;
			snprintf(d->etag, sizeof(d->etag), "%s", v->etag);
			d->body_len = v->body_len;
			memcpy(d->body, v->body, v->body_len);
			*l->delayed_tail = d;
			l->delayed_tail = &d->next;
			if (!uv_is_active((uv_handle_t *)&l->delay_timer))
				uv_timer_start(&l->delay_timer, on_delay_timer, delay, 0);
			return;
		}
		free(d);
		v = NULL;
	}
	finish(l, k, hash, v ? apply(l, k, hash, t, v) : false, v);
}

void ld__local_invalidate(struct ld_cache_loop *l, const struct ld_cache_key *k)
{
	uint64_t hash = ld_cache_key_hash(k);

	/* The bump is what every loop sees; removing our own copy only gives
	 * its memory back sooner. */
	ld_cache_gen_bump(&l->c->gens, hash);
	ld_l1_remove(&l->l1, k, hash);
	ld__cache_count(l, k->kind, EV_INVALIDATION);
}

static const char *const ev_metric[EV_COUNT] = {
    [EV_HIT] = "hits",
    [EV_MISS] = "misses",
    [EV_FILL] = "fills",
    [EV_FILL_DROPPED] = "fills_dropped",
    [EV_COALESCED] = "coalesced_waits",
    [EV_WAIT_TIMEOUT] = "wait_timeouts",
    [EV_INVALIDATION] = "invalidations",
    [EV_STALE] = "stale_served",
};

static const char *const ev_help[EV_COUNT] = {
    [EV_HIT] = "Lookups answered from the cache.",
    [EV_MISS] = "Lookups that went to the store.",
    [EV_FILL] = "Responses stored in the cache after a miss.",
    [EV_FILL_DROPPED] = "Fills dropped because a write made them stale while they were read.",
    [EV_COALESCED] = "Requests that waited for another request's fill of the same key.",
    [EV_WAIT_TIMEOUT] = "Waits behind a fill that timed out and went to the store.",
    [EV_INVALIDATION] = "Keys invalidated by writes.",
    [EV_STALE] = "Served past their TTL: the store could not answer (--cache-serve-stale).",
};

int ld__local_render(struct ld_cache *c, struct ld_buf *out)
{
	uint64_t sum[LD_CACHE_KINDS][EV_COUNT + 1];
	uint64_t bytes = 0;

	memset(sum, 0, sizeof(sum));
	for (unsigned i = 0; i < c->nloops; i++) {
		struct ld_cache_loop *l = c->loops[i];

		if (!l)
			continue;
		for (unsigned k = 0; k < LD_CACHE_KINDS; k++) {
			for (unsigned e = 0; e < EV_COUNT; e++)
				sum[k][e] +=
				    atomic_load_explicit(&l->ev[k][e], memory_order_relaxed);
			sum[k][EV_COUNT] +=
			    atomic_load_explicit(&l->evictions[k], memory_order_relaxed);
		}
		bytes += atomic_load_explicit(&l->l1.bytes, memory_order_relaxed);
	}
	for (unsigned e = 0; e <= EV_COUNT; e++) {
		const char *name = e < EV_COUNT ? ev_metric[e] : "evictions";

		ld_buf_printf(
		    out, "# HELP ladder_cache_%s_total %s\n# TYPE ladder_cache_%s_total counter\n",
		    name, e < EV_COUNT ? ev_help[e] : "Entries pushed out to keep the byte budget.",
		    name);
		for (unsigned k = 0; k < LD_CACHE_KINDS; k++)
			ld_buf_printf(out,
				      "ladder_cache_%s_total{level=\"l1\",route=\"%s\"} %llu\n",
				      name, ld_cache_kind_route(k), (unsigned long long)sum[k][e]);
		if (c->l2)
			ld__l2_render_ev(c, name, out);
	}
	ld_buf_printf(out,
		      "# HELP ladder_cache_bytes Bytes the cache holds, all loops together.\n"
		      "# TYPE ladder_cache_bytes gauge\n"
		      "ladder_cache_bytes{level=\"l1\"} %llu\n"
		      "# HELP ladder_cache_budget_bytes The byte budget, all loops together.\n"
		      "# TYPE ladder_cache_budget_bytes gauge\n"
		      "ladder_cache_budget_bytes{level=\"l1\"} %llu\n",
		      (unsigned long long)bytes, (unsigned long long)c->cfg.l1_bytes * c->nloops);
	return ld_buf_error(out);
}

const struct ld_cache_vt ld_cache_local = {
    .name = "local",
    .open = ld__local_open,
    .close = ld__local_close,
    .loop_open = ld__local_loop_open,
    .loop_close = ld__local_loop_close,
    .lookup = local_lookup,
    .fill = ld__local_fill,
    .invalidate = ld__local_invalidate,
    .lookup_stale = ld__local_lookup_stale,
    .render_metrics = ld__local_render,
};
