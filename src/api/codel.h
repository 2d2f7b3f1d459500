/*
 * codel.h - the bounded wait queue in front of the concurrency limit, with a
 * queueing-delay target in the manner of CoDel (Nichols and Jacobson, "Controlling
 * Queue Delay", 2012) as servers use it (Facebook's "Fail at Scale", 2015).
 * Pure: no clock, no I/O; entries are intrusive (the request holds its own).
 *
 * A queue that empties now and then is a good queue: it absorbs bursts. One
 * that has not been empty for more than an interval is a standing queue: it only
 * adds delay. So the longest a request may wait depends on which it is:
 *
 *   allowed wait = interval  while the queue was empty within the last interval
 *                = target    once it has not been (a standing queue)
 *
 * and a request that has waited longer than the allowed wait is dropped from
 * the head (the oldest first: it is the one least likely to be useful); so
 * is one whose own deadline has passed. Empty means drained by service: a
 * standing queue that its own sheds (or clients that left) emptied is still
 * standing for a newcomer that comes within the target. Else in an overload
 * the first requests of each round would wait the whole interval, the queue
 * turn standing, the target shed everything in it at once, and the empty
 * queue start the next round with the interval again: every queued request
 * would wait up to the interval.
 *
 * Adaptive LIFO (also "Fail at Scale"): while the queue drains within half
 * the target, requests are admitted oldest first; once its oldest entry has
 * waited longer, newest first. In an overload the queue never drains, and
 * oldest first every admitted request would first wait about as long as
 * the oldest may (the allowed wait: the target once the queue stands,
 * after the expiry of the heads that waited longer). Newest first, the
 * admitted requests wait about one service slot, and the ones left behind
 * run out their allowed wait and are shed: as many are shed either way (the
 * overload decides that), but the ones served are served fast. Half the
 * target, not the target: a standing queue's heads past the target are shed
 * before each pop, so a test on the target itself would never see one. Not
 * on the queue's length: a closed loop of more clients than the limit keeps
 * a long queue that drains in well under a millisecond, and newest first
 * would starve its oldest until they were shed.
 *
 * A full queue (cap entries) refuses a newcomer, except that with
 * writes_first a write takes the place of the newest queued read, and queued
 * writes are admitted before queued reads (reads are shed first).
 *
 * Defaults (api/admission.c): cap 128, target 5 ms, interval 100 ms.
 */
#ifndef LD_API_CODEL_H
#define LD_API_CODEL_H

#include <stdbool.h>
#include <stdint.h>

enum ld_codel_class { LD_CODEL_READ = 0, LD_CODEL_WRITE = 1 };

/* Why an entry left the queue without being admitted. */
enum ld_codel_drop {
	LD_CODEL_FULL = 0, /* the queue was full (or a write took its place) */
	LD_CODEL_DELAY,	   /* waited past the allowed wait */
	LD_CODEL_DEADLINE, /* its own deadline passed while it waited */
	LD_CODEL_GONE,	   /* its client went away (the caller's finding) */
	LD_CODEL_NDROPS
};

struct ld_codel_entry {
	struct ld_codel_entry *prev, *next;
	uint64_t enq_ns;      /* when it was queued */
	uint64_t deadline_ns; /* 0 = none */
	enum ld_codel_class cls;
};

struct ld_codel_params {
	unsigned cap; /* entries at most (0: every newcomer is refused) */
	uint64_t target_ns, interval_ns;
	bool writes_first;
};

struct ld_codel {
	struct ld_codel_params p;
	struct {
		struct ld_codel_entry *head, *tail;
	} list[2]; /* by class when writes_first, else everything in [0] */
	unsigned len;
	uint64_t last_empty_ns;	   /* the last time the queue was empty (drained) */
	uint64_t dropped_empty_ns; /* the last time sheds emptied it (0: never) */
};

void ld_codel_init(struct ld_codel *q, const struct ld_codel_params *p, uint64_t now_ns);

/* ld_codel_push queues e (its cls and deadline_ns set by the caller) at
 * now_ns. 0 when queued; -ENOSPC when full and e is refused. With
 * writes_first, a write pushed into a full queue that holds a read is queued
 * and *evicted gets that read (the newest), which the caller sheds as
 * LD_CODEL_FULL; *evicted is NULL otherwise. */
int ld_codel_push(struct ld_codel *q, struct ld_codel_entry *e, uint64_t now_ns,
		  struct ld_codel_entry **evicted);

/* ld_codel_expire removes and returns one entry that must be dropped at
 * now_ns (its deadline passed, or it waited past the allowed wait), with
 * the reason in *why; NULL when none. Call it until NULL before admitting. */
struct ld_codel_entry *ld_codel_expire(struct ld_codel *q, uint64_t now_ns,
				       enum ld_codel_drop *why);

/* ld_codel_expire_head is ld_codel_expire looking at the oldest entry of
 * each list only: O(1), for every admission turn (a full look, which finds
 * any deadline, costs the length of the queue). */
struct ld_codel_entry *ld_codel_expire_head(struct ld_codel *q, uint64_t now_ns,
					    enum ld_codel_drop *why);

/* ld_codel_head_due is ld_codel_next_due for the oldest entries only, not
 * counting deadlines; 0 when the queue is empty. */
uint64_t ld_codel_head_due(const struct ld_codel *q, uint64_t now_ns);

/* ld_codel_pop removes and returns the next entry to admit, or NULL when
 * empty: writes first when so configured; within a class the oldest while
 * the oldest has waited no longer than half the target, else the newest
 * (adaptive LIFO, above). */
struct ld_codel_entry *ld_codel_pop(struct ld_codel *q, uint64_t now_ns);

/* ld_codel_remove takes e out (its client went away, the loop closes). */
void ld_codel_remove(struct ld_codel *q, struct ld_codel_entry *e, uint64_t now_ns);

/* ld_codel_excuse tells q that its caller holds it up at now_ns for a
 * reason of its own, not an overload: a min-RTT probe pins the limit to 1,
 * and a closed loop of eight clients then waits seven round trips each,
 * which a standing queue's target would shed (clients that never offered
 * more than eight at once could get 503s at a probe). The queue counts as
 * drained at now_ns: the interval is the allowed wait while the caller
 * says so and for an interval after. Entries already due stay due. */
void ld_codel_excuse(struct ld_codel *q, uint64_t now_ns);

/* ld_codel_allowed_wait is the longest wait allowed at now_ns (above). */
uint64_t ld_codel_allowed_wait(const struct ld_codel *q, uint64_t now_ns);

/* ld_codel_next_due is when the next entry will be due for expiry (its
 * deadline, or its queue time plus the allowed wait), at the earliest;
 * 0 when the queue is empty. */
uint64_t ld_codel_next_due(const struct ld_codel *q, uint64_t now_ns);

/* ld_codel_first returns the oldest entry of list i (0 or 1), or NULL; for
 * walking the queue with ->next. */
struct ld_codel_entry *ld_codel_first(const struct ld_codel *q, unsigned i);

#endif
