/*
 * conclimit.c - the gradient concurrency limit (conclimit.h says the
 * algorithm).
 */
#include "api/conclimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Windows from the first probe to the first pinned one (conclimit.h). */
#define FIRST_REPROBE 10

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* median sorts the kept samples (at most LD_CLIMIT_SAMPLES, once per
 * window) and returns the middle one; at least 1 ns, so ratios stay
 * finite. */
static uint64_t median(struct ld_climit *l)
{
	uint64_t m;

	if (!l->n)
		return 1;
	qsort(l->samples, l->n, sizeof(l->samples[0]), cmp_u64);
	m = l->samples[l->n / 2];
	return m ? m : 1;
}

static void reset_window(struct ld_climit *l, uint64_t now_ns)
{
	l->window_start_ns = now_ns;
	l->inflight_max = 0;
	l->seen = 0;
	l->n = 0;
}

void ld_climit_init(struct ld_climit *l, const struct ld_climit_params *p, uint64_t now_ns)
{
	memset(l, 0, sizeof(*l));
	l->p = *p;
	if (l->p.min_limit < 1)
		l->p.min_limit = 1;
	if (l->p.max_limit < l->p.min_limit)
		l->p.max_limit = l->p.min_limit;
	if (l->p.window_samples < 1)
		l->p.window_samples = 1;
	if (l->p.probe_samples < 1)
		l->p.probe_samples = 1;
	if (l->p.probe_samples > LD_CLIMIT_SAMPLES)
		l->p.probe_samples = LD_CLIMIT_SAMPLES;
	l->limit = l->p.initial;
	if (l->limit < l->p.min_limit)
		l->limit = l->p.min_limit;
	if (l->limit > l->p.max_limit)
		l->limit = l->p.max_limit;
	l->rng = 0x9e3779b97f4a7c15ull;
	l->probing = true;
	reset_window(l, now_ns);
}

bool ld_climit_pinned(const struct ld_climit *l)
{
	/* The first probe is not pinned (min_rtt_ns is still 0): a server
	 * starts unloaded, and a fresh one must not queue its first burst. */
	return l->probing && l->min_rtt_ns;
}

unsigned ld_climit_limit(const struct ld_climit *l)
{
	return ld_climit_pinned(l) ? l->p.min_limit : (unsigned)l->limit;
}

/* keep adds a sample: every one until the array is full, then each with
 * probability LD_CLIMIT_SAMPLES / seen in place of a random one (reservoir
 * sampling), so a busy window's median is still of the whole window. */
static void keep(struct ld_climit *l, uint64_t rtt_ns)
{
	uint64_t j;

	l->seen++;
	if (l->n < LD_CLIMIT_SAMPLES) {
		l->samples[l->n++] = rtt_ns;
		return;
	}
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	j = l->rng % l->seen;
	if (j < LD_CLIMIT_SAMPLES)
		l->samples[j] = rtt_ns;
}

static void end_window(struct ld_climit *l)
{
	double g, next, target;

	l->last_rtt_ns = median(l);
	target = (double)l->min_rtt_ns * (1.0 + l->p.tolerance);
	g = target / (double)l->last_rtt_ns;
	if (g > 2.0)
		g = 2.0;
	if (g < 0.5)
		g = 0.5;
	next = g * l->limit + sqrt(l->limit);
	/* App-limited: the window never used half the limit, so its RTTs say
	 * nothing about more concurrency. */
	if (next > l->limit && 2u * l->inflight_max < (unsigned)l->limit)
		next = l->limit;
	if (next < l->p.min_limit)
		next = l->p.min_limit;
	if (next > l->p.max_limit)
		next = l->p.max_limit;
	l->limit = next;
}

void ld_climit_sample(struct ld_climit *l, uint64_t rtt_ns, unsigned inflight, unsigned queued,
		      uint64_t now_ns)
{
	if (inflight > l->inflight_max)
		l->inflight_max = inflight;
	/* A pinned probe measures only requests admitted under it: the ones
	 * admitted before, at the full limit, finish during its first moments
	 * with every wait of the load in their RTT. */
	if (l->probing && l->min_rtt_ns && now_ns - rtt_ns < l->probe_start_ns)
		return;
	keep(l, rtt_ns);
	if (l->probing) {
		/* Long enough, or as long as its queue may wait (conclimit.h). */
		bool waited = ld_climit_pinned(l) && queued && l->p.probe_max_ns &&
			      now_ns - l->probe_start_ns >= l->p.probe_max_ns;

		if (l->seen < l->p.probe_samples && !waited)
			return;
		/* The first probe (not pinned) measured whatever a start under
		 * load queued: the first pinned one comes after FIRST_REPROBE
		 * windows, not a whole probe interval later. */
		uint64_t next =
		    l->min_rtt_ns ? l->p.probe_interval_ns : FIRST_REPROBE * l->p.window_ns;

		if (next > l->p.probe_interval_ns)
			next = l->p.probe_interval_ns;
		l->min_rtt_ns = median(l);
		l->probing = false;
		l->next_probe_ns = now_ns + next;
		reset_window(l, now_ns);
		return;
	}
	if (now_ns - l->window_start_ns < l->p.window_ns || l->seen < l->p.window_samples)
		return;
	end_window(l);
	reset_window(l, now_ns);
	if (now_ns >= l->next_probe_ns) {
		l->probing = true;
		l->probe_start_ns = now_ns;
	}
}
