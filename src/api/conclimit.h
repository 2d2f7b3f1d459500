/*
 * conclimit.h - an adaptive concurrency limit (the gradient family: TCP
 * Vegas, Netflix's gradient limiters, Envoy's adaptive concurrency filter).
 * Pure: no clock, no I/O; the caller passes the times. One per event loop
 * (api/admission.h), so no locks.
 *
 * The limit is how many admitted requests may be in flight at once. It
 * follows the ratio of two round-trip times (RTT: admission to response):
 *
 *   min RTT     the service time with no queue in front of the store. It is
 *               measured, not guessed: during a probe the limit is pinned to
 *               min_limit (so nothing queues inside the server: with the
 *               default of 1, not even for a core; four CPU-bound hashes in
 *               flight on one core each take four times as long) and min RTT
 *               becomes the median of the next probe_samples RTTs of
 *               requests admitted during the probe (the ones admitted before
 *               it, at the full limit, finish with the load's waits in
 *               them); a pinned probe that has run probe_max ends sooner,
 *               at its first RTT past it while requests wait, with the
 *               median of what it has. Its queue is the limiter's own
 *               doing: at limit 1 a closed loop of six clients of a 10 ms
 *               write would wait the 16 round trips of the probe, newest
 *               first (codel.h), its oldest longer than the queue allows
 *               (api/admission.c sets probe_max to half the queue's
 *               interval, so a wait ends before the interval for round
 *               trips shorter than half of it). While nothing waits the
 *               probe costs nobody anything and takes all its samples (a
 *               quiet loop's few RTTs within probe_max say little). At
 *               least one RTT, so a store that got slower for good is
 *               still measured (else the limit would shrink to the floor
 *               and stay there). A probe runs at start and every
 *               probe_interval after. The first one is not pinned (a
 *               server starts unloaded, and must not queue its first
 *               burst behind min_limit): it measures at the initial
 *               limit, so the first pinned probe follows 10 windows
 *               later, not a probe interval (a server started under load
 *               measured its load's queueing). Only a probe sets min RTT:
 *               a window's median follows the mix of requests (a quiet
 *               100 ms of cache hits is not the store's no-queue RTT).
 *   sample RTT  the median RTT of the last window (window_ns, and at least
 *               window_samples RTTs; up to LD_CLIMIT_SAMPLES kept, a
 *               reservoir sample beyond that). Medians, not means: a mix of
 *               microsecond reads and millisecond writes has a mean that
 *               says nothing.
 *
 * At the end of each window:
 *
 *   gradient  = clamp(min_rtt * (1 + tolerance) / sample_rtt, 0.5, 2.0)
 *   new limit = gradient * limit + sqrt(limit)         (the headroom)
 *
 * clamped to [min_limit, max_limit]. RTTs within tolerance of min RTT let the
 * limit grow; RTTs that climb (requests waiting for the writer, the database
 * pool, the thread pool) shrink it, by at most half per window. The limit
 * does not grow while the loop is app-limited (in flight never reached half
 * the limit during the window): an idle server must not arrive at its first
 * burst with a limit it never earned.
 *
 * Defaults (api/admission.c): limit starts at 32 within [1, 1000], window
 * 100 ms and 8 samples, tolerance 0.5, a probe of 16 samples (or, while
 * requests wait, those of its first 50 ms, at least one) every 30 s.
 */
#ifndef LD_API_CONCLIMIT_H
#define LD_API_CONCLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define LD_CLIMIT_SAMPLES 256

struct ld_climit_params {
	unsigned initial;	    /* limit before the first window moves it */
	unsigned min_limit;	    /* floor, and the limit during a probe (>= 1) */
	unsigned max_limit;	    /* ceiling (>= min_limit) */
	uint64_t window_ns;	    /* how often the limit moves */
	unsigned window_samples;    /* RTTs a window needs to move the limit (>= 1) */
	double tolerance;	    /* RTT above min RTT taken as no queue (0.5 = 50%) */
	uint64_t probe_interval_ns; /* time between min-RTT probes */
	unsigned probe_samples;	    /* RTTs per probe (1..LD_CLIMIT_SAMPLES) */
	uint64_t probe_max_ns;	    /* a pinned probe ends at its first RTT past this while
				     * requests wait (0: never early) */
};

struct ld_climit {
	struct ld_climit_params p;
	double limit;	      /* the adaptive limit (not the probe's) */
	bool probing;	      /* pinned to min_limit, measuring min RTT */
	uint64_t min_rtt_ns;  /* 0 until the first probe ends */
	uint64_t last_rtt_ns; /* the last window's sample RTT (0: none yet) */
	uint64_t window_start_ns, next_probe_ns;
	uint64_t probe_start_ns; /* when the running pinned probe began */
	unsigned inflight_max;	 /* highest in-flight count seen in the window */
	unsigned seen;		 /* RTTs offered in this window or probe */
	unsigned n;		 /* RTTs kept in samples[] */
	uint64_t rng;
	uint64_t samples[LD_CLIMIT_SAMPLES];
};

/* ld_climit_init starts l with a probe at now_ns. */
void ld_climit_init(struct ld_climit *l, const struct ld_climit_params *p, uint64_t now_ns);

/* ld_climit_limit is the limit in force: min_limit during a probe (but the
 * first). */
unsigned ld_climit_limit(const struct ld_climit *l);

/* ld_climit_pinned says whether a probe holds the limit at min_limit now
 * (every probe but the first). */
bool ld_climit_pinned(const struct ld_climit *l);

/* ld_climit_sample takes one request's RTT; inflight is the number in
 * flight when it finished, itself included, and queued the number waiting
 * for admission then (a pinned probe past probe_max ends only while some
 * do). It may end a probe or a window (and move the limit, or start a
 * probe). */
void ld_climit_sample(struct ld_climit *l, uint64_t rtt_ns, unsigned inflight, unsigned queued,
		      uint64_t now_ns);

#endif
