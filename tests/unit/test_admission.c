/*
 * test_admission.c - the adaptive concurrency limit (api/conclimit.h) and the
 * wait queue with its delay target (api/codel.h), on a fake clock.
 */
#include <errno.h>

#include "api/codel.h"
#include "api/conclimit.h"
#include "unit.h"

#define MS 1000000ull
#define US 1000ull

static const struct ld_climit_params P = {
    .initial = 32,
    .min_limit = 4,
    .max_limit = 1000,
    .window_ns = 100 * MS,
    .window_samples = 8,
    .tolerance = 0.5,
    .probe_interval_ns = 30000 * MS,
    .probe_samples = 16,
};

/* feed gives n samples of rtt, spread evenly over span_ns from *now. */
static void feed(struct ld_climit *l, unsigned n, uint64_t rtt, unsigned inflight, uint64_t *now,
		 uint64_t span_ns)
{
	for (unsigned i = 0; i < n; i++) {
		*now += span_ns / n;
		ld_climit_sample(l, rtt, inflight, 0, *now);
	}
}

static void test_first_pinned_probe_comes_soon(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	/* Started under a burst: the first probe (not pinned) sees 2 ms. */
	ld_climit_init(&l, &P, now);
	feed(&l, 16, 2 * MS, 32, &now, 16 * MS);
	CHECK_INT(l.min_rtt_ns, 2 * MS);
	/* 10 windows later, not 30 s, a pinned probe measures 100 us. */
	for (int i = 0; i < 10; i++)
		feed(&l, 10, 2 * MS, 32, &now, 100 * MS);
	CHECK(l.probing);
	CHECK_INT(ld_climit_limit(&l), 4);
	feed(&l, 16, 100 * US, 4, &now, 16 * MS);
	CHECK(!l.probing);
	CHECK_INT(l.min_rtt_ns, 100 * US);
	/* The one after that is a probe interval away. */
	CHECK_INT(l.next_probe_ns, now + 30000 * MS);
}

static void test_limit_starts_with_a_probe(void)
{
	struct ld_climit l;
	uint64_t now = 1000 * MS;

	ld_climit_init(&l, &P, now);
	CHECK(l.probing);
	CHECK_INT(ld_climit_limit(&l), 32); /* the first probe is not pinned */
	feed(&l, 15, 100 * US, 4, &now, 15 * MS);
	CHECK(l.probing);
	feed(&l, 1, 100 * US, 4, &now, 1 * MS);
	CHECK(!l.probing);
	CHECK_INT(l.min_rtt_ns, 100 * US);
	CHECK_INT(ld_climit_limit(&l), 32); /* back to the initial limit */
}

static void test_min_rtt_is_the_probe_median(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	ld_climit_init(&l, &P, now);
	/* 8 fast, 8 slow (one outlier each side does not move a median). */
	feed(&l, 7, 50 * US, 4, &now, 7 * MS);
	feed(&l, 1, 1 * US, 4, &now, 1 * MS);
	feed(&l, 7, 400 * US, 4, &now, 7 * MS);
	feed(&l, 1, 900 * MS, 4, &now, 1 * MS);
	CHECK(!l.probing);
	CHECK_INT(l.min_rtt_ns, 400 * US); /* samples[16/2] of the sorted 16 */
}

/* probe_done starts l and runs its first probe and, 10 windows later, the
 * first pinned one, both at rtt: the next probe is then a probe interval
 * away, and the limit is still the initial one (the windows between were
 * app-limited). */
static void probe_done(struct ld_climit *l, uint64_t *now, uint64_t rtt)
{
	ld_climit_init(l, &P, *now);
	feed(l, 16, rtt, 4, now, 16 * MS);
	for (int i = 0; i < 10; i++)
		feed(l, 10, rtt, 4, now, 100 * MS);
	CHECK(l->probing);
	*now += rtt; /* the first admitted under the probe finish */
	feed(l, 16, rtt, 4, now, 16 * MS);
	CHECK(!l->probing);
}

static void test_probe_skips_requests_admitted_before_it(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	probe_done(&l, &now, 100 * US);
	now += 30000 * MS;
	feed(&l, 8, 100 * US, 32, &now, 100 * MS); /* a window ends: the probe starts */
	CHECK(l.probing);
	/* Requests admitted at the full limit before it finish with 5 ms:
	 * not its samples, however many. */
	feed(&l, 40, 5 * MS, 32, &now, 1 * MS);
	CHECK(l.probing);
	CHECK_INT(l.n, 0);
	/* The ones admitted under it are. */
	feed(&l, 16, 200 * US, 1, &now, 16 * MS);
	CHECK(!l.probing);
	CHECK_INT(l.min_rtt_ns, 200 * US);
}

static void test_rtt_at_min_grows_the_limit(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	probe_done(&l, &now, 100 * US);
	/* A window at min RTT with the limit in use: gradient 1.5, so
	 * 32 * 1.5 + sqrt(32) = 53.66. */
	feed(&l, 20, 100 * US, 30, &now, 100 * MS);
	CHECK_DBL(l.limit, 32 * 1.5 + 5.656854, 0.001);
	CHECK_INT(l.last_rtt_ns, 100 * US);
}

static void test_rtt_that_climbs_shrinks_the_limit(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	probe_done(&l, &now, 100 * US);
	/* Twice the tolerated RTT: gradient 0.5 (the floor), 16 + sqrt 32. */
	feed(&l, 20, 300 * US, 32, &now, 100 * MS);
	CHECK_DBL(l.limit, 16 + 5.656854, 0.001);
	/* Far worse still only halves per window, and stops at min_limit. */
	for (int i = 0; i < 20; i++)
		feed(&l, 20, 100 * MS, 32, &now, 100 * MS);
	CHECK_INT(ld_climit_limit(&l), 4);
	/* Back to min RTT: it recovers. */
	for (int i = 0; i < 12; i++)
		feed(&l, 20, 100 * US, 1000, &now, 100 * MS);
	CHECK_INT(ld_climit_limit(&l), 1000);
}

static void test_app_limited_does_not_grow(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	probe_done(&l, &now, 100 * US);
	/* In flight never reached half the limit: no growth at min RTT. */
	feed(&l, 20, 100 * US, 15, &now, 100 * MS);
	CHECK_DBL(l.limit, 32, 0.0001);
	/* But a climbing RTT still shrinks it. */
	feed(&l, 20, 1 * MS, 15, &now, 100 * MS);
	CHECK(l.limit < 32);
}

static void test_window_needs_time_and_samples(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	probe_done(&l, &now, 100 * US);
	/* Many samples in less than a window: nothing moves. */
	feed(&l, 100, 10 * MS, 32, &now, 50 * MS);
	CHECK_DBL(l.limit, 32, 0.0001);
	/* A whole window with fewer than window_samples: nothing either. */
	ld_climit_init(&l, &P, now);
	feed(&l, 16, 100 * US, 4, &now, 16 * MS);
	feed(&l, 7, 10 * MS, 32, &now, 500 * MS);
	CHECK_DBL(l.limit, 32, 0.0001);
	feed(&l, 1, 10 * MS, 32, &now, 1 * MS);
	CHECK(l.limit < 32);
}

static void test_probe_ends_early_only_while_requests_wait(void)
{
	struct ld_climit_params p = P;
	struct ld_climit l;
	uint64_t now = 0;

	p.probe_max_ns = 50 * MS;
	/* The first probe (not pinned) takes its 16 even with a queue. */
	ld_climit_init(&l, &p, now);
	for (int i = 0; i < 15; i++) {
		now += 10 * MS;
		ld_climit_sample(&l, 1 * MS, 4, 3, now);
	}
	CHECK(l.probing);
	now += 10 * MS;
	ld_climit_sample(&l, 1 * MS, 4, 3, now);
	CHECK(!l.probing);
	/* A pinned one with nothing waiting: all 16, however long. */
	for (int i = 0; i < 10; i++)
		feed(&l, 10, 1 * MS, 4, &now, 100 * MS);
	CHECK(ld_climit_pinned(&l));
	for (int i = 0; i < 8; i++) {
		now += 10 * MS;
		ld_climit_sample(&l, 1 * MS, 1, 0, now);
	}
	CHECK(ld_climit_pinned(&l));
	/* ... until requests wait: then its next RTT ends it, with the
	 * median of the 9 it has. */
	now += 10 * MS;
	ld_climit_sample(&l, 3 * MS, 1, 2, now);
	CHECK(!l.probing);
	CHECK_INT(l.min_rtt_ns, 1 * MS);
}

static void test_probe_comes_back(void)
{
	struct ld_climit l;
	uint64_t now = 0;

	probe_done(&l, &now, 100 * US);
	now += 30000 * MS; /* the probe interval has passed */
	feed(&l, 8, 100 * US, 32, &now, 8 * MS);
	CHECK(l.probing);
	CHECK(ld_climit_pinned(&l));
	CHECK_INT(ld_climit_limit(&l), 4);
	/* The new probe replaces min RTT (the store got slower for good). */
	now += 2 * MS;
	feed(&l, 16, 2 * MS, 4, &now, 16 * MS);
	CHECK(!l.probing);
	CHECK_INT(l.min_rtt_ns, 2 * MS);
	CHECK(!ld_climit_pinned(&l));
	CHECK(ld_climit_limit(&l) > 4);
}

/* ---- the queue ---------------------------------------------------------- */

static const struct ld_codel_params Q = {
    .cap = 3, .target_ns = 5 * MS, .interval_ns = 100 * MS, .writes_first = false};

static void test_queue_fifo_and_cap(void)
{
	struct ld_codel q;
	struct ld_codel_entry e[4] = {0}, *ev;
	struct ld_codel_params p = Q;

	p.target_ns = 20 * MS; /* oldest first: nothing waits half of it */
	ld_codel_init(&q, &p, 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT(ld_codel_push(&q, &e[i], (uint64_t)i * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &e[3], 3 * MS, &ev), -ENOSPC);
	CHECK(ev == NULL);
	CHECK_INT(q.len, 3);
	CHECK(ld_codel_pop(&q, 4 * MS) == &e[0]);
	CHECK(ld_codel_pop(&q, 4 * MS) == &e[1]);
	CHECK(ld_codel_pop(&q, 4 * MS) == &e[2]);
	CHECK(ld_codel_pop(&q, 4 * MS) == NULL);
	CHECK_INT(q.last_empty_ns, 4 * MS);
}

static void test_queue_interval_then_target(void)
{
	struct ld_codel q;
	struct ld_codel_entry a = {0}, b = {0}, c = {0}, *ev;
	enum ld_codel_drop why = LD_CODEL_NDROPS;

	ld_codel_init(&q, &Q, 0);
	CHECK_INT(ld_codel_push(&q, &a, 10 * MS, &ev), 0);
	/* Not standing: a request may wait the interval. */
	CHECK_INT(ld_codel_allowed_wait(&q, 50 * MS), 100 * MS);
	CHECK(ld_codel_expire(&q, 110 * MS, &why) == NULL);	 /* exactly 100 ms: still allowed */
	CHECK_INT(ld_codel_next_due(&q, 50 * MS), 110 * MS + 1); /* when it turns standing */
	/* The queue has not been empty since 10 ms: at 110 ms it is standing,
	 * and the target applies to everything in it. */
	CHECK_INT(ld_codel_push(&q, &b, 108 * MS, &ev), 0);
	CHECK_INT(ld_codel_allowed_wait(&q, 111 * MS), 5 * MS);
	CHECK(ld_codel_expire(&q, 111 * MS, &why) == &a);
	CHECK_INT(why, LD_CODEL_DELAY);
	CHECK(ld_codel_expire(&q, 111 * MS, &why) == NULL); /* b waited 3 ms */
	CHECK(ld_codel_expire(&q, 114 * MS, &why) == &b);   /* 6 ms > 5 ms */
	/* Empty again: the next one gets the interval. */
	CHECK_INT(q.len, 0);
	CHECK_INT(ld_codel_push(&q, &c, 120 * MS, &ev), 0);
	CHECK_INT(ld_codel_allowed_wait(&q, 150 * MS), 100 * MS);
	CHECK(ld_codel_expire(&q, 150 * MS, &why) == NULL);
	CHECK(ld_codel_pop(&q, 150 * MS) == &c);
}

static void test_queue_emptied_by_sheds_stays_standing(void)
{
	struct ld_codel q;
	struct ld_codel_entry a = {0}, b = {0}, c = {0}, d = {0}, *ev;
	enum ld_codel_drop why = LD_CODEL_NDROPS;

	ld_codel_init(&q, &Q, 0);
	CHECK_INT(ld_codel_push(&q, &a, 10 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &b, 105 * MS, &ev), 0);
	/* Standing at 110 ms: the target sheds both, which empties it. */
	CHECK(ld_codel_expire(&q, 111 * MS, &why) == &a);
	CHECK(ld_codel_expire(&q, 111 * MS, &why) == &b);
	CHECK_INT(q.len, 0);
	/* A newcomer within the target: the overload goes on, the queue is
	 * still standing (not the interval again). */
	CHECK_INT(ld_codel_push(&q, &c, 113 * MS, &ev), 0);
	CHECK_INT(ld_codel_allowed_wait(&q, 114 * MS), 5 * MS);
	CHECK(ld_codel_expire(&q, 119 * MS, &why) == &c);
	CHECK_INT(why, LD_CODEL_DELAY);
	/* Empty for longer than the target: a lull, drained: the interval. */
	CHECK_INT(ld_codel_push(&q, &d, 130 * MS, &ev), 0);
	CHECK_INT(ld_codel_allowed_wait(&q, 131 * MS), 100 * MS);
	/* Service that empties it drains it. */
	CHECK(ld_codel_pop(&q, 140 * MS) == &d);
	CHECK_INT(q.last_empty_ns, 140 * MS);
}

static void test_queue_excused_while_a_probe_holds_it(void)
{
	struct ld_codel q;
	struct ld_codel_entry a = {0}, b = {0}, c = {0}, *ev;
	enum ld_codel_drop why = LD_CODEL_NDROPS;

	/* A closed loop keeps the queue from emptying: standing from 120 ms. */
	ld_codel_init(&q, &Q, 0);
	CHECK_INT(ld_codel_push(&q, &a, 10 * MS, &ev), 0);
	CHECK(ld_codel_pop(&q, 10 * MS) == &a);
	CHECK_INT(ld_codel_push(&q, &b, 20 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &c, 21 * MS, &ev), 0);
	CHECK(ld_codel_pop(&q, 22 * MS) == &b);
	CHECK_INT(ld_codel_push(&q, &b, 200 * MS, &ev), 0);
	CHECK_INT(ld_codel_allowed_wait(&q, 201 * MS), 5 * MS);
	/* A probe pins the limit from 200 ms: b waits longer than the
	 * target for it, and is not shed while the probe says so ... */
	ld_codel_excuse(&q, 200 * MS);
	ld_codel_excuse(&q, 210 * MS);
	CHECK_INT(ld_codel_allowed_wait(&q, 212 * MS), 100 * MS);
	/* ... c waited past the interval before the probe began: still due. */
	CHECK(ld_codel_expire(&q, 212 * MS, &why) == &c);
	CHECK_INT(why, LD_CODEL_DELAY);
	CHECK(ld_codel_expire(&q, 212 * MS, &why) == NULL);
	/* ... nor for an interval after the probe's last excuse ... */
	CHECK(ld_codel_expire(&q, 300 * MS, &why) == NULL);
	/* ... and then the queue is standing again (b: 111 ms > 5 ms). */
	CHECK_INT(ld_codel_allowed_wait(&q, 311 * MS), 5 * MS);
	CHECK(ld_codel_expire(&q, 311 * MS, &why) == &b);
	CHECK_INT(why, LD_CODEL_DELAY);
}

static void test_queue_entry_newer_than_the_reading(void)
{
	struct ld_codel q;
	struct ld_codel_entry a = {0}, *ev;
	enum ld_codel_drop why = LD_CODEL_NDROPS;

	/* A shed may queue the next pipelined request with a reading later
	 * than the caller's: it has waited 0, not 2^64 - 1 ns. */
	ld_codel_init(&q, &Q, 0);
	CHECK_INT(ld_codel_push(&q, &a, 50 * MS, &ev), 0);
	CHECK(ld_codel_expire(&q, 49 * MS, &why) == NULL);
	CHECK(ld_codel_expire_head(&q, 49 * MS, &why) == NULL);
	CHECK(ld_codel_pop(&q, 49 * MS) == &a);
}

static void test_queue_deadline(void)
{
	struct ld_codel q;
	struct ld_codel_entry a = {0}, b = {0}, *ev;
	enum ld_codel_drop why = LD_CODEL_NDROPS;

	ld_codel_init(&q, &Q, 0);
	a.deadline_ns = 0;
	b.deadline_ns = 30 * MS;
	CHECK_INT(ld_codel_push(&q, &a, 10 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &b, 20 * MS, &ev), 0);
	CHECK_INT(ld_codel_next_due(&q, 20 * MS), 30 * MS);
	CHECK(ld_codel_expire(&q, 29 * MS, &why) == NULL);
	/* b's deadline passes first though a is older. */
	CHECK(ld_codel_expire(&q, 30 * MS, &why) == &b);
	CHECK_INT(why, LD_CODEL_DEADLINE);
	CHECK(ld_codel_pop(&q, 30 * MS) == &a);
}

static void test_queue_heads_only(void)
{
	struct ld_codel q;
	struct ld_codel_entry a = {0}, b = {0}, *ev;
	enum ld_codel_drop why = LD_CODEL_NDROPS;

	ld_codel_init(&q, &Q, 0);
	b.deadline_ns = 30 * MS;
	CHECK_INT(ld_codel_push(&q, &a, 10 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &b, 20 * MS, &ev), 0);
	/* The head's own due time, deadlines of the others not counted. */
	CHECK_INT(ld_codel_head_due(&q, 20 * MS), 110 * MS + 1);
	/* b's deadline passed, but b is not a head: only a full look finds it. */
	CHECK(ld_codel_expire_head(&q, 40 * MS, &why) == NULL);
	CHECK(ld_codel_expire(&q, 40 * MS, &why) == &b);
	CHECK_INT(why, LD_CODEL_DEADLINE);
	/* The head past the allowed wait. */
	CHECK(ld_codel_expire_head(&q, 110 * MS + 1, &why) == &a);
	CHECK_INT(why, LD_CODEL_DELAY);
	CHECK_INT(ld_codel_head_due(&q, 120 * MS), 0);
}

static void test_queue_writes_first(void)
{
	struct ld_codel_params p = Q;
	struct ld_codel q;
	struct ld_codel_entry r1 = {.cls = LD_CODEL_READ}, r2 = {.cls = LD_CODEL_READ},
			      w1 = {.cls = LD_CODEL_WRITE}, w2 = {.cls = LD_CODEL_WRITE},
			      w3 = {.cls = LD_CODEL_WRITE}, r3 = {.cls = LD_CODEL_READ}, *ev;

	p.writes_first = true;
	p.target_ns = 20 * MS; /* oldest first within a class (below half of it) */
	ld_codel_init(&q, &p, 0);
	CHECK_INT(ld_codel_push(&q, &r1, 1 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &r2, 2 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &w1, 3 * MS, &ev), 0);
	/* Full: a read is refused; a write takes the newest read's place. */
	CHECK_INT(ld_codel_push(&q, &r3, 4 * MS, &ev), -ENOSPC);
	CHECK_INT(ld_codel_push(&q, &w2, 5 * MS, &ev), 0);
	CHECK(ev == &r2);
	CHECK_INT(ld_codel_push(&q, &w3, 6 * MS, &ev), 0);
	CHECK(ev == &r1);
	/* Full of writes: a write is refused too. */
	CHECK_INT(ld_codel_push(&q, &r2, 7 * MS, &ev), -ENOSPC);
	CHECK(ev == NULL);
	CHECK(ld_codel_pop(&q, 8 * MS) == &w1);
	CHECK_INT(ld_codel_push(&q, &r3, 8 * MS, &ev), 0);
	/* Writes go first even when the read is older. */
	CHECK(ld_codel_pop(&q, 9 * MS) == &w2);
	CHECK(ld_codel_pop(&q, 9 * MS) == &w3);
	CHECK(ld_codel_pop(&q, 9 * MS) == &r3);
	CHECK(ld_codel_pop(&q, 9 * MS) == NULL);
}

static void test_queue_adaptive_lifo(void)
{
	struct ld_codel_params p = Q;
	struct ld_codel q;
	struct ld_codel_entry e[6] = {0}, w = {.cls = LD_CODEL_WRITE}, w2 = {.cls = LD_CODEL_WRITE},
			      *ev;

	p.cap = 8;
	ld_codel_init(&q, &p, 0);
	for (int i = 0; i < 6; i++)
		CHECK_INT(ld_codel_push(&q, &e[i], (uint64_t)i * 100 * US, &ev), 0);
	/* Six waiting, the oldest for 1 ms: a long queue that drains fast
	 * (more clients than the limit) goes oldest first. */
	CHECK(ld_codel_pop(&q, 1 * MS) == &e[0]);
	CHECK(ld_codel_pop(&q, 1 * MS) == &e[1]);
	/* Its oldest (e[2], queued 5.8 ms ago) past the 5 ms target: newest
	 * first. */
	CHECK(ld_codel_pop(&q, 6 * MS) == &e[5]);
	CHECK(ld_codel_pop(&q, 6 * MS) == &e[4]);
	/* A newcomer goes first while the old ones wait on. */
	CHECK_INT(ld_codel_push(&q, &e[5], 6 * MS, &ev), 0);
	CHECK(ld_codel_pop(&q, 6 * MS) == &e[5]);
	CHECK(ld_codel_pop(&q, 6 * MS) == &e[3]);
	CHECK(ld_codel_pop(&q, 6 * MS) == &e[2]);
	CHECK(ld_codel_pop(&q, 6 * MS) == NULL);
	/* Writes first still holds, newest first within the writes. */
	p.writes_first = true;
	ld_codel_init(&q, &p, 0);
	CHECK_INT(ld_codel_push(&q, &e[0], 1 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &w, 2 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &e[1], 3 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &w2, 4 * MS, &ev), 0);
	CHECK(ld_codel_pop(&q, 8 * MS) == &w2);
	CHECK(ld_codel_pop(&q, 8 * MS) == &w);
	CHECK(ld_codel_pop(&q, 8 * MS) == &e[1]);
	CHECK(ld_codel_pop(&q, 8 * MS) == &e[0]);
}

static void test_queue_remove_and_no_queue(void)
{
	struct ld_codel_params p = Q;
	struct ld_codel q;
	struct ld_codel_entry a = {0}, b = {0}, c = {0}, *ev;

	ld_codel_init(&q, &p, 0);
	CHECK_INT(ld_codel_push(&q, &a, 1 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &b, 2 * MS, &ev), 0);
	CHECK_INT(ld_codel_push(&q, &c, 3 * MS, &ev), 0);
	ld_codel_remove(&q, &b, 4 * MS);
	CHECK(ld_codel_first(&q, 0) == &a);
	CHECK(a.next == &c);
	CHECK(c.prev == &a);
	ld_codel_remove(&q, &a, 5 * MS);
	ld_codel_remove(&q, &c, 6 * MS);
	CHECK_INT(q.len, 0);
	/* Clients that left did not drain it: emptied, not served. */
	CHECK_INT(q.last_empty_ns, 1 * MS);
	CHECK_INT(q.dropped_empty_ns, 6 * MS);
	CHECK_INT(ld_codel_next_due(&q, 6 * MS), 0);
	/* cap 0: nothing waits. */
	p.cap = 0;
	ld_codel_init(&q, &p, 0);
	CHECK_INT(ld_codel_push(&q, &a, 1 * MS, &ev), -ENOSPC);
}

/* ---- the two together: a closed loop ------------------------------------ */

/* A closed loop of n clients, each sending its next request 200 us after
 * its answer, against a store that takes svc per request whatever the
 * concurrency (a database write: the server's limit cannot speed it up),
 * with admission as api/admission.c runs it: each step the probe's excuse,
 * the sheds of the heads due, then admissions from the queue while the
 * limit allows. Returns the sheds in secs seconds; *pinned gets the time
 * the limit was pinned by a probe, *l the limiter at the end. */
#define LOOP_MAX 16
#define NONE	 UINT64_MAX
static unsigned closed_loop(unsigned n, uint64_t svc, uint64_t probe_max, uint64_t secs,
			    uint64_t *pinned, struct ld_climit *l)
{
	struct ld_climit_params p = P;
	struct ld_codel q;
	struct ld_codel_params qp = Q;
	struct ld_codel_entry e[LOOP_MAX] = {{0}};
	uint64_t send[LOOP_MAX], done[LOOP_MAX], admitted[LOOP_MAX], step = 50 * US;
	unsigned inflight = 0, sheds = 0;

	p.min_limit = 1;
	p.probe_max_ns = probe_max;
	qp.cap = 128;
	ld_climit_init(l, &p, 0);
	ld_codel_init(&q, &qp, 0);
	*pinned = 0;
	for (unsigned i = 0; i < n; i++)
		send[i] = (uint64_t)i * 10 * US, done[i] = 0;
	/* send[i] == NONE: client i waits for its answer. */
	for (uint64_t now = 0; now < secs * 1000 * MS; now += step) {
		struct ld_codel_entry *x;
		enum ld_codel_drop why;

		for (unsigned i = 0; i < n; i++) {
			if (done[i] && done[i] <= now) {
				ld_climit_sample(l, now - admitted[i], inflight, q.len, now);
				inflight--;
				done[i] = 0;
				send[i] = now + 200 * US;
			}
		}
		for (unsigned i = 0; i < n; i++) {
			if (send[i] == NONE || send[i] > now)
				continue;
			send[i] = NONE;
			if (inflight < ld_climit_limit(l)) {
				inflight++;
				admitted[i] = now;
				done[i] = now + svc;
			} else {
				CHECK_INT(ld_codel_push(&q, &e[i], now, &x), 0);
			}
		}
		if (ld_climit_pinned(l)) {
			ld_codel_excuse(&q, now);
			*pinned += step;
		}
		while ((x = ld_codel_expire_head(&q, now, &why))) {
			sheds++;
			send[x - e] = now + 200 * US; /* the client sends again */
		}
		while (inflight < ld_climit_limit(l) && (x = ld_codel_pop(&q, now))) {
			inflight++;
			admitted[x - e] = now;
			done[x - e] = now + svc;
		}
	}
	return sheds;
}

static void test_closed_loop_is_not_shed_by_a_probe(void)
{
	struct ld_climit l;
	uint64_t pinned;

	/* Six clients of a 10 ms write: the limit of 32 never queues them,
	 * but a pinned probe (limit 1) does. Sixteen round trips of it,
	 * newest first, and the oldest wait past the interval: shed. */
	CHECK(closed_loop(6, 10 * MS, 0, 3, &pinned, &l) > 0);
	CHECK(pinned >= 16 * 10 * MS);
	/* A probe of at most half the interval (api/admission.c): nobody is
	 * shed, and it still measures the write, for round trips up to
	 * about half the interval. */
	static const uint64_t svcs[] = {1 * MS, 2 * MS, 5 * MS, 10 * MS, 20 * MS, 40 * MS};

	for (unsigned k = 0; k < sizeof(svcs) / sizeof(svcs[0]); k++) {
		uint64_t svc = svcs[k];

		CHECK_INT(closed_loop(6, svc, 50 * MS, 3, &pinned, &l), 0);
		CHECK(pinned > 0);
		CHECK(pinned <= 50 * MS + svc + 1 * MS);
		CHECK(l.min_rtt_ns >= svc && l.min_rtt_ns <= svc + 1 * MS);
		CHECK(ld_climit_limit(&l) >= 6);
	}
}

int main(void)
{
	RUN(test_limit_starts_with_a_probe);
	RUN(test_first_pinned_probe_comes_soon);
	RUN(test_probe_skips_requests_admitted_before_it);
	RUN(test_min_rtt_is_the_probe_median);
	RUN(test_rtt_at_min_grows_the_limit);
	RUN(test_rtt_that_climbs_shrinks_the_limit);
	RUN(test_app_limited_does_not_grow);
	RUN(test_window_needs_time_and_samples);
	RUN(test_probe_comes_back);
	RUN(test_probe_ends_early_only_while_requests_wait);
	RUN(test_queue_fifo_and_cap);
	RUN(test_queue_interval_then_target);
	RUN(test_queue_emptied_by_sheds_stays_standing);
	RUN(test_queue_excused_while_a_probe_holds_it);
	RUN(test_queue_entry_newer_than_the_reading);
	RUN(test_queue_deadline);
	RUN(test_queue_heads_only);
	RUN(test_queue_writes_first);
	RUN(test_queue_adaptive_lifo);
	RUN(test_queue_remove_and_no_queue);
	RUN(test_closed_loop_is_not_shed_by_a_probe);
	return unit_finish();
}
