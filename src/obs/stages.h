/*
 * stages.h - where a request's time goes: a per-request stage clock and the
 * per-loop histograms it is recorded into.
 *
 * The clock partitions a request's life into stages by consecutive clock
 * reads: ld_stage_mark(c, S) charges the time since the previous mark (or
 * since the request's first byte) to stage S, so every nanosecond between
 * the first byte and the last mark belongs to exactly one stage. The total
 * recorded is not their sum but the request's own clock, first byte to the
 * end read when it is recorded, so a stretch no mark charged (a stage left
 * unmarked at the end) shows as total > sum of stages instead of vanishing
 * from both. A mark is one clock read and two adds; nothing allocates.
 *
 * A stage set (struct ld_stage_set) holds, per route and per stage plus the
 * total, an HDR histogram of nanoseconds (2 significant digits, 0..60 s,
 * 30 KiB each; memory that is never written is never touched) and an exact
 * sum. Each loop thread owns one set and is the only thread that writes it;
 * sets are combined with ld_stage_set_merge (see stats.h for how another
 * thread gets a consistent copy).
 */
#ifndef LD_STAGES_H
#define LD_STAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "obs/hdr.h"

enum ld_stage {
	LD_STAGE_READ = 0,     /* first byte seen -> header and body parsed, request set up */
	LD_STAGE_QUEUE,	       /* waiting in the admission queue: to admitted or shed */
	LD_STAGE_AUTH,	       /* bearer token verification (and routing before it) */
	LD_STAGE_HANDLER,      /* handler logic: routing, body JSON parse, validation */
	LD_STAGE_HASH,	       /* password hashing on the thread pool, pool wait included */
	LD_STAGE_CACHE,	       /* cache look-up, a wait behind a fill included */
	LD_STAGE_STORE_QUEUE,  /* write submitted -> the writer thread takes its batch */
	LD_STAGE_STORE_COMMIT, /* the batch's BEGIN .. synced COMMIT on the writer */
	LD_STAGE_STORE_POOL,   /* waiting for a pooled database connection (unused so far) */
	LD_STAGE_STORE,	       /* inline read; for writes the rest of the round trip */
	LD_STAGE_RENDER,       /* JSON body, gzip and header assembly */
	LD_STAGE_WRITE,	       /* response queued -> the kernel took every byte */
	LD_STAGE_COUNT
};

/* The index of the per-route total, after the stages. */
#define LD_STAGE_TOTAL LD_STAGE_COUNT

/* Histogram bounds in nanoseconds: 60 s at 2 significant digits. */
#define LD_STAGE_HIGHEST_NS 60000000000LL
#define LD_STAGE_SIGFIGS    2

/* ld_stage_name is "read", "store_commit", ...; "total" for LD_STAGE_TOTAL. */
const char *ld_stage_name(unsigned stage);

/* One request's clock; lives in the request, no allocation. */
struct ld_stage_clock {
	uint64_t start; /* first byte of the request */
	uint64_t last;	/* the previous mark */
	uint64_t ns[LD_STAGE_COUNT];
	uint32_t seen; /* bit per stage that was marked */
	bool on;       /* stage timing enabled for this request */
};

/* ld_stage_clock_start begins a request at start_ns (its first byte). With
 * on false every later call on c is a no-op. */
void ld_stage_clock_start(struct ld_stage_clock *c, uint64_t start_ns, bool on);

/* ld_stage_mark_at charges [last, now] to stage and moves last to now; a now
 * before last (clocks read on two threads) charges 0. */
static inline void ld_stage_mark_at(struct ld_stage_clock *c, enum ld_stage stage, uint64_t now)
{
	if (!c->on)
		return;
	if (now > c->last) {
		c->ns[stage] += now - c->last;
		c->last = now;
	}
	c->seen |= 1u << stage;
}

/* ld_stage_mark reads the monotonic clock (uv_hrtime) and marks. */
void ld_stage_mark(struct ld_stage_clock *c, enum ld_stage stage);

/* ld_stage_mark_store closes a store call that began at the previous mark.
 * taken, commit_start, commit_end are the writer's clock reads for a write
 * (0 for an op that never reached a writer): [last, taken] is store_queue,
 * [commit_start, commit_end] store_commit, the rest up to now is store. The
 * three reads are clamped into [last, now] in order, so the partition holds
 * whatever the other thread saw. */
void ld_stage_mark_store(struct ld_stage_clock *c, uint64_t taken, uint64_t commit_start,
			 uint64_t commit_end, uint64_t now);

/* ld_stage_total is the sum of the stages so far (== last - start). */
uint64_t ld_stage_total(const struct ld_stage_clock *c);

/* Histograms per route x (stages + total). */
struct ld_stage_hist {
	struct ld_hdr h;
	uint64_t sum_ns; /* exact; the histogram's own mean is slot-rounded */
};

struct ld_stage_set {
	unsigned nroutes;
	struct ld_stage_hist *hist; /* nroutes * (LD_STAGE_COUNT + 1) */
	int64_t *counts;	    /* every histogram's slots, one block */
};

/* ld_stage_set_init allocates a set for nroutes routes; 0, -EINVAL or
 * -ENOMEM (then the set is released). */
int ld_stage_set_init(struct ld_stage_set *s, unsigned nroutes);
void ld_stage_set_release(struct ld_stage_set *s);
void ld_stage_set_reset(struct ld_stage_set *s);

/* ld_stage_hist_at is the histogram of (route, stage); stage may be
 * LD_STAGE_TOTAL. route must be < nroutes. */
static inline struct ld_stage_hist *ld_stage_hist_at(const struct ld_stage_set *s, unsigned route,
						     unsigned stage)
{
	return &s->hist[route * (LD_STAGE_COUNT + 1) + stage];
}

/* ld_stage_record adds a finished request of route (clamped to the last
 * route) to s: each stage it passed through, and its total, end_ns minus
 * the request's start (0 when end_ns is before it): measured, not summed.
 * The owner thread only. */
void ld_stage_record(struct ld_stage_set *s, unsigned route, const struct ld_stage_clock *c,
		     uint64_t end_ns);

/* ld_stage_set_merge adds every count and sum of src into dst (same
 * nroutes, else -EINVAL). */
int ld_stage_set_merge(struct ld_stage_set *dst, const struct ld_stage_set *src);

#endif
