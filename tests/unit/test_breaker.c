/*
 * test_breaker.c - the circuit breaker on a fake clock: every transition
 * (closed -> open by failures in a row and by failure rate, open -> half-open
 * by time, half-open -> closed by trial successes, half-open -> open by a
 * failure), the trial bound, the refusals, and the metrics and hook.
 */
#include "base/breaker.h"

#include <stdlib.h>

#include "unit.h"

#define MS 1000000ull

static const struct ld_breaker_config consec = {
    .failures = 3, .open_ns = 100 * MS, .trials = 2, .successes = 2};

static int changes;
static enum ld_breaker_state last_from;

static void on_change(struct ld_breaker *b, enum ld_breaker_state from, void *udata)
{
	(void)b;
	(void)udata;
	changes++;
	last_from = from;
}

static void test_consecutive_failures_open(void)
{
	struct ld_breaker b;
	uint64_t t = 1000 * MS;
	bool trial;

	ld_breaker_init(&b, &consec, "primary", "store", 0);
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	CHECK(ld_breaker_allow(&b, t, &trial) && !trial);
	ld_breaker_failure(&b, t, false, "refused");
	ld_breaker_failure(&b, t, false, "refused");
	/* A success between breaks the row. */
	ld_breaker_success(&b, t, false);
	ld_breaker_failure(&b, t, false, "refused");
	ld_breaker_failure(&b, t, false, "refused");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	ld_breaker_failure(&b, t, false, "refused");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
	CHECK(!ld_breaker_allow(&b, t + 99 * MS, &trial) && !trial);
	CHECK(!ld_breaker_ready(&b, t + 99 * MS));
	CHECK_INT(atomic_load(&b.refused), 1);
}

static void test_open_half_open_closed(void)
{
	struct ld_breaker b;
	uint64_t t = 5 * MS;
	bool t1, t2, t3;

	ld_breaker_init(&b, &consec, "replica1", "store", 2);
	b.on_change = on_change;
	changes = 0;
	for (int i = 0; i < 3; i++)
		ld_breaker_failure(&b, t, false, "timeout");
	CHECK_INT(changes, 1);
	CHECK_INT(last_from, LD_BREAKER_CLOSED);
	/* A failure while open (a reconnect that failed) restarts the wait. */
	ld_breaker_failure(&b, t + 50 * MS, false, "refused");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
	CHECK(!ld_breaker_ready(&b, t + 120 * MS));
	/* A success while open is one sent before: ignored. */
	ld_breaker_success(&b, t + 120 * MS, false);
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
	CHECK(ld_breaker_ready(&b, t + 150 * MS));
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN); /* ready changes nothing */
	/* Half-open: two trials at a time, the third is refused. */
	CHECK(ld_breaker_allow(&b, t + 150 * MS, &t1) && t1);
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_HALF_OPEN);
	CHECK_INT(last_from, LD_BREAKER_OPEN);
	CHECK(ld_breaker_allow(&b, t + 150 * MS, &t2) && t2);
	CHECK(!ld_breaker_allow(&b, t + 150 * MS, &t3) && !t3);
	CHECK(!ld_breaker_ready(&b, t + 150 * MS));
	/* A trial that never went gives its place back. */
	ld_breaker_cancel(&b, t2);
	CHECK(ld_breaker_ready(&b, t + 150 * MS));
	CHECK(ld_breaker_allow(&b, t + 150 * MS, &t2) && t2);
	/* A non-trial success says nothing; two trial successes close it. */
	ld_breaker_success(&b, t + 151 * MS, false);
	ld_breaker_success(&b, t + 151 * MS, true);
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_HALF_OPEN);
	ld_breaker_success(&b, t + 152 * MS, true);
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	CHECK_INT(last_from, LD_BREAKER_HALF_OPEN);
	CHECK_INT(changes, 3);
	/* Closed afresh: the old failures do not count toward the next row. */
	ld_breaker_failure(&b, t + 160 * MS, false, "refused");
	ld_breaker_failure(&b, t + 160 * MS, false, "refused");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	CHECK_INT(atomic_load(&b.into[LD_BREAKER_OPEN]), 1);
	CHECK_INT(atomic_load(&b.into[LD_BREAKER_HALF_OPEN]), 1);
	CHECK_INT(atomic_load(&b.into[LD_BREAKER_CLOSED]), 1);
}

static void test_half_open_failure_reopens(void)
{
	struct ld_breaker b;
	uint64_t t = 0;
	bool trial;

	ld_breaker_init(&b, &consec, "redis", "cache", 0);
	for (int i = 0; i < 3; i++)
		ld_breaker_failure(&b, t, false, "timeout");
	t += 100 * MS;
	CHECK(ld_breaker_allow(&b, t, &trial) && trial);
	ld_breaker_success(&b, t, true);
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_HALF_OPEN); /* one of two */
	CHECK(ld_breaker_allow(&b, t, &trial) && trial);
	ld_breaker_failure(&b, t + 1 * MS, true, "timeout");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
	/* The open period runs from the failure that reopened it. */
	CHECK(!ld_breaker_ready(&b, t + 100 * MS));
	CHECK(ld_breaker_ready(&b, t + 101 * MS));
	/* A non-trial failure in half-open reopens it too. */
	CHECK(ld_breaker_allow(&b, t + 101 * MS, &trial) && trial);
	ld_breaker_failure(&b, t + 102 * MS, false, "lost");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
}

static void test_failure_rate_opens(void)
{
	const struct ld_breaker_config cfg = {
	    .rate_pct = 50, .min_calls = 10, .window_ns = 1000 * MS, .open_ns = 100 * MS};
	struct ld_breaker b;
	uint64_t t = 10000 * MS;
	int i;

	ld_breaker_init(&b, &cfg, "primary", "store", 0);
	/* 4 of 9: under the minimum and under the rate. */
	for (i = 0; i < 5; i++)
		ld_breaker_success(&b, t, false);
	for (i = 0; i < 4; i++)
		ld_breaker_failure(&b, t, false, "timeout");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	/* 5 of 10: at the rate, at the minimum. */
	ld_breaker_failure(&b, t + 10 * MS, false, "timeout");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
}

static void test_failure_rate_window_slides(void)
{
	const struct ld_breaker_config cfg = {
	    .rate_pct = 50, .min_calls = 4, .window_ns = 1000 * MS, .open_ns = 100 * MS};
	struct ld_breaker b;
	uint64_t t = 10000 * MS;

	ld_breaker_init(&b, &cfg, "primary", "store", 0);
	ld_breaker_success(&b, t, false);
	ld_breaker_failure(&b, t, false, "timeout");
	ld_breaker_failure(&b, t, false, "timeout");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED); /* 3 outcomes < 4 */
	/* A window later those have gone: 1 failure of 1 is under the minimum. */
	ld_breaker_failure(&b, t + 1500 * MS, false, "timeout");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	/* Three successes and one failure more: 2 of 5 is under 50%. */
	for (int i = 0; i < 3; i++)
		ld_breaker_success(&b, t + 1600 * MS, false);
	ld_breaker_failure(&b, t + 1600 * MS, false, "timeout");
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_CLOSED);
	ld_breaker_failure(&b, t + 1700 * MS, false, "timeout");
	/* 3 of 6: opens. */
	CHECK_INT(ld_breaker_state(&b), LD_BREAKER_OPEN);
}

static void test_metrics(void)
{
	struct ld_breaker a, b;
	struct ld_buf m;

	ld_breaker_init(&a, &consec, "primary", "store", 0);
	ld_breaker_init(&b, &consec, "replica1", "store", 1);
	ld_buf_init(&m, 1 << 16);
	CHECK_INT(ld_breaker_render_metrics(&m), 0);
	CHECK_INT(m.len, 0); /* none registered */
	ld_breaker_register(&a);
	ld_breaker_register(&b);
	ld_breaker_register(&b); /* once */
	for (int i = 0; i < 3; i++)
		ld_breaker_failure(&b, 0, false, "refused");
	CHECK_INT(ld_breaker_render_metrics(&m), 0);
	CHECK(
	    m.data &&
	    strstr(m.data, "ladder_breaker_state{dep=\"primary\",name=\"store\",loop=\"0\"} 0\n"));
	CHECK(
	    m.data &&
	    strstr(m.data, "ladder_breaker_state{dep=\"replica1\",name=\"store\",loop=\"1\"} 1\n"));
	CHECK(m.data && strstr(m.data, "ladder_breaker_transitions_total{dep=\"replica1\",name="
				       "\"store\",loop=\"1\",to=\"open\"} 1\n"));
	ld_breaker_unregister(&a);
	ld_breaker_unregister(&b);
	ld_buf_reset(&m);
	CHECK_INT(ld_breaker_render_metrics(&m), 0);
	CHECK_INT(m.len, 0);
	ld_buf_release(&m);
}

int main(void)
{
	RUN(test_consecutive_failures_open);
	RUN(test_open_half_open_closed);
	RUN(test_half_open_failure_reopens);
	RUN(test_failure_rate_opens);
	RUN(test_failure_rate_window_slides);
	RUN(test_metrics);
	return unit_finish();
}
