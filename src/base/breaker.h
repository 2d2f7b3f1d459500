/*
 * breaker.h - a circuit breaker for one dependency (the PostgreSQL primary,
 * a replica, a Redis connection): it notices that calls to the dependency
 * keep failing and then refuses them at once for a while, so that callers
 * go elsewhere (or fail fast) instead of waiting on a dead peer, and the
 * peer is not hammered while it comes back.
 *
 * States and transitions:
 *
 *   closed     every call goes. It opens when `failures` failures (a
 *              refused or timed-out connect, a lost connection, a call past
 *              its deadline) come in a row, or when, over the last
 *              `window`, at least `min_calls` outcomes were recorded and
 *              at least `rate_pct` percent of them were failures.
 *   open       every call is refused (ld_breaker_allow says false). A
 *              failure reported while open (a reconnect that failed) starts
 *              the open period again: the peer is still down. Successes are
 *              ignored (calls let through before it opened).
 *   half-open  once `open` has passed since the last failure: at most
 *              `trials` calls at a time are let through as trials. A
 *              failure (trial or not) opens it again; `successes` trial
 *              successes close it (counters and window start afresh).
 *
 * Each change is logged (one line: "<dep> breaker open|half-open|closed",
 * with name, loop, why and rule: "in-a-row" or "rate" for an opening,
 * "half-open" for a failure that reopens it, "trial" for the trial
 * successes that close it, "time" for the end of the open period)
 * and counted; ld_breaker_render_metrics writes
 * every registered breaker's state and transitions (docs/operations.md).
 *
 * Time is passed in (ns, any monotonic origin) so tests drive a fake clock;
 * nothing here reads a clock, starts a timer or does I/O. A breaker
 * belongs to one thread (its loop); only the figures the metrics read are
 * atomics, and the registry has its own lock.
 */
#ifndef LD_BREAKER_H
#define LD_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

enum ld_breaker_state { LD_BREAKER_CLOSED = 0, LD_BREAKER_OPEN = 1, LD_BREAKER_HALF_OPEN = 2 };

struct ld_breaker_config {
	unsigned failures;  /* failures in a row that open it; 0: never this way */
	unsigned rate_pct;  /* failure share (1..100) over window that opens it; 0: off */
	unsigned min_calls; /* outcomes in the window before the rate counts */
	uint64_t window_ns; /* the rate's window (LD_BREAKER_BUCKETS buckets) */
	uint64_t open_ns;   /* open this long after the last failure, then half-open */
	unsigned trials;    /* half-open: trial calls out at once (0 is taken as 1) */
	unsigned successes; /* half-open: trial successes that close it (0 is taken as 1) */
};

#define LD_BREAKER_BUCKETS 10

struct ld_breaker {
	struct ld_breaker_config cfg;
	enum ld_breaker_state state;
	unsigned in_row;     /* failures in a row (closed) */
	uint64_t opened_ns;  /* the last failure while open (or the opening) */
	unsigned trials_out; /* half-open: trials let through, not yet reported */
	unsigned trial_ok;   /* half-open: trial successes so far */
	struct {
		uint64_t slot; /* which bucket-wide time slot it counts (0: none yet) */
		uint32_t ok, failed;
	} win[LD_BREAKER_BUCKETS];
	char dep[32];  /* the metrics' dep label: primary, replica1, redis */
	char name[32]; /* the user: store, cache, ratelimit */
	unsigned loop;
	/* Called after each change (may be NULL): the user's own reaction,
	 * a probe timer for one. */
	void (*on_change)(struct ld_breaker *b, enum ld_breaker_state from, void *udata);
	void *udata;
	/* Read by the metrics from any thread. */
	_Atomic int gauge;
	_Atomic uint64_t into[3]; /* transitions into each state */
	_Atomic uint64_t refused; /* calls ld_breaker_allow refused */
	bool registered;
	struct ld_breaker *reg_next;
};

/* ld_breaker_init sets b up closed (not registered). */
void ld_breaker_init(struct ld_breaker *b, const struct ld_breaker_config *cfg, const char *dep,
		     const char *name, unsigned loop);

/* ld_breaker_register adds b to the metrics (once); ld_breaker_unregister
 * takes it out: call it before b's memory goes. */
void ld_breaker_register(struct ld_breaker *b);
void ld_breaker_unregister(struct ld_breaker *b);

/* ld_breaker_allow: may a call go now? Open whose time is up becomes
 * half-open here. *trial says the call is a trial: its outcome must be
 * reported with trial set, or ld_breaker_cancel called if it never went
 * (else the half-open slot stays taken). A refusal is counted. */
bool ld_breaker_allow(struct ld_breaker *b, uint64_t now_ns, bool *trial);

/* ld_breaker_ready: would ld_breaker_allow say yes now (nothing changes)? */
bool ld_breaker_ready(const struct ld_breaker *b, uint64_t now_ns);

/* ld_breaker_cancel gives back a trial that was not sent. */
void ld_breaker_cancel(struct ld_breaker *b, bool trial);

/* ld_breaker_success / ld_breaker_failure report an outcome (trial: the
 * call was let through as one). why is for the log line of an opening. */
void ld_breaker_success(struct ld_breaker *b, uint64_t now_ns, bool trial);
void ld_breaker_failure(struct ld_breaker *b, uint64_t now_ns, bool trial, const char *why);

static inline enum ld_breaker_state ld_breaker_state(const struct ld_breaker *b)
{
	return b->state;
}

/* ld_breaker_state_name: "closed", "open", "half-open". */
const char *ld_breaker_state_name(enum ld_breaker_state s);

/* ld_breaker_render_metrics appends ladder_breaker_state,
 * ladder_breaker_transitions_total and ladder_breaker_refused_total for
 * every registered breaker (nothing when there is none). */
int ld_breaker_render_metrics(struct ld_buf *out);

#endif
