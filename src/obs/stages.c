/*
 * stages.c - the request stage clock and per-loop stage histograms (see
 * stages.h for the contract).
 */
#include "obs/stages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char *const names[LD_STAGE_COUNT + 1] = {
    [LD_STAGE_READ] = "read",
    [LD_STAGE_QUEUE] = "queue",
    [LD_STAGE_AUTH] = "auth",
    [LD_STAGE_HANDLER] = "handler",
    [LD_STAGE_HASH] = "hash",
    [LD_STAGE_CACHE] = "cache",
    [LD_STAGE_STORE_QUEUE] = "store_queue",
    [LD_STAGE_STORE_COMMIT] = "store_commit",
    [LD_STAGE_STORE_POOL] = "store_pool",
    [LD_STAGE_STORE] = "store",
    [LD_STAGE_RENDER] = "render",
    [LD_STAGE_WRITE] = "write",
    [LD_STAGE_TOTAL] = "total",
};

const char *ld_stage_name(unsigned stage)
{
	return stage <= LD_STAGE_TOTAL ? names[stage] : "unknown";
}

void ld_stage_clock_start(struct ld_stage_clock *c, uint64_t start_ns, bool on)
{
	memset(c, 0, sizeof(*c));
	c->start = start_ns;
	c->last = start_ns;
	c->on = on;
}

void ld_stage_mark(struct ld_stage_clock *c, enum ld_stage stage)
{
	if (c->on)
		ld_stage_mark_at(c, stage, uv_hrtime());
}

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void ld_stage_mark_store(struct ld_stage_clock *c, uint64_t taken, uint64_t commit_start,
			 uint64_t commit_end, uint64_t now)
{
	uint64_t t0, a, b, e;

	if (!c->on)
		return;
	if (now < c->last)
		now = c->last;
	if (!taken) {
		ld_stage_mark_at(c, LD_STAGE_STORE, now);
		return;
	}
	t0 = c->last;
	a = clamp(taken, t0, now);
	b = clamp(commit_start, a, now);
	e = clamp(commit_end, b, now);
	c->ns[LD_STAGE_STORE_QUEUE] += a - t0;
	c->ns[LD_STAGE_STORE_COMMIT] += e - b;
	c->ns[LD_STAGE_STORE] += (b - a) + (now - e);
	c->seen |= 1u << LD_STAGE_STORE_QUEUE | 1u << LD_STAGE_STORE_COMMIT | 1u << LD_STAGE_STORE;
	c->last = now;
}

uint64_t ld_stage_total(const struct ld_stage_clock *c)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < LD_STAGE_COUNT; i++)
		t += c->ns[i];
	return t;
}

int ld_stage_set_init(struct ld_stage_set *s, unsigned nroutes)
{
	size_t n = (size_t)nroutes * (LD_STAGE_COUNT + 1);
	int rc = 0, len;

	memset(s, 0, sizeof(*s));
	if (!nroutes) {
		rc = -EINVAL;
		goto out;
	}
	s->hist = calloc(n, sizeof(*s->hist));
	if (!s->hist) {
		rc = -ENOMEM;
		goto out;
	}
	s->nroutes = nroutes;
	/* One block for all the slots: it is large enough that calloc maps
	 * fresh zero pages, and a page no request ever hits is never backed by
	 * memory. Separate small callocs would be zeroed, hence resident, at
	 * once: megabytes per loop for histograms that mostly stay empty. */
	len = ld_hdr_counts_len(LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS);
	s->counts = calloc(n * (size_t)len, sizeof(int64_t));
	if (!s->counts) {
		rc = -ENOMEM;
		ld_stage_set_release(s);
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = ld_hdr_init_at(&s->hist[i].h, LD_STAGE_HIGHEST_NS, LD_STAGE_SIGFIGS,
				    s->counts + i * (size_t)len);
	if (rc)
		ld_stage_set_release(s);
out:
	return rc;
}

void ld_stage_set_release(struct ld_stage_set *s)
{
	size_t n = (size_t)s->nroutes * (LD_STAGE_COUNT + 1);

	if (s->hist)
		for (size_t i = 0; i < n; i++)
			ld_hdr_release(&s->hist[i].h);
	free(s->hist);
	free(s->counts);
	memset(s, 0, sizeof(*s));
}

void ld_stage_set_reset(struct ld_stage_set *s)
{
	size_t n = (size_t)s->nroutes * (LD_STAGE_COUNT + 1);

	for (size_t i = 0; i < n; i++) {
		ld_hdr_reset(&s->hist[i].h);
		s->hist[i].sum_ns = 0;
	}
}

static void add(struct ld_stage_hist *h, uint64_t ns)
{
	ld_hdr_record(&h->h, ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ns);
	h->sum_ns += ns;
}

void ld_stage_record(struct ld_stage_set *s, unsigned route, const struct ld_stage_clock *c,
		     uint64_t end_ns)
{
	if (!c->on || !s->nroutes)
		return;
	if (route >= s->nroutes)
		route = s->nroutes - 1;
	for (unsigned i = 0; i < LD_STAGE_COUNT; i++)
		if (c->seen & (1u << i))
			add(ld_stage_hist_at(s, route, i), c->ns[i]);
	/* The request's own start-to-end time, not the sum of its stages: a
	 * total that is the sum would make "the stages add up" hold by
	 * construction and hide any time no stage was charged with. */
	add(ld_stage_hist_at(s, route, LD_STAGE_TOTAL), end_ns > c->start ? end_ns - c->start : 0);
}

int ld_stage_set_merge(struct ld_stage_set *dst, const struct ld_stage_set *src)
{
	size_t n = (size_t)src->nroutes * (LD_STAGE_COUNT + 1);
	int rc = 0;

	if (dst->nroutes != src->nroutes)
		return -EINVAL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!src->hist[i].h.total)
			continue;
		rc = ld_hdr_merge(&dst->hist[i].h, &src->hist[i].h);
		dst->hist[i].sum_ns += src->hist[i].sum_ns;
	}
	return rc;
}
