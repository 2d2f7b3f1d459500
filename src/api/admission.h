/*
 * admission.h - overload control in the request path (docs/operations.md,
 * "Overload"): an adaptive concurrency limit per event loop, a bounded wait
 * queue with a queueing-delay target in front of it, and a time budget
 * (deadline) per request that goes with it to the store and the cache.
 *
 * Admission. A routed request that passed its rate limit is admitted when
 * fewer than the loop's limit (api/conclimit.h) are in flight, counted from
 * admission to its response (ld_req_respond, through the server's on_respond
 * hook), whatever its handler does meanwhile (store, cache, thread pool).
 * Otherwise it waits in the loop's queue (api/codel.h) and is admitted, in
 * its order (adaptive LIFO), as requests finish; it is shed with 503, Retry-After and a problem
 * document naming why when the queue is full, when it waited past the
 * allowed wait, when its deadline passed while it waited, or when its
 * client went away (then the connection closes; nobody reads the answer).
 * /healthz, /readyz, /metrics, /debug/stats and photo byte uploads are never
 * limited, queued or shed. With shed_writes_last, queued writes are
 * admitted before queued reads and a write may take a queued read's place.
 *
 * Deadlines. Every routed request gets a deadline when it is dispatched:
 * now + --request-deadline (by default --store-timeout), or sooner when the client sends
 * Request-Timeout: N (milliseconds, 1..999999999; anything else is a 400
 * naming the header). Each store op of the request is due by it (and by
 * --store-timeout from its submit, whichever comes first); an op whose
 * request's deadline has already passed is not sent to the store at all
 * (the handler sees LD_STORE_TIMEOUT and answers 503, nothing changed); one
 * already late does no cache lookup.
 *
 * Threads: settings are written before the loops start; each loop's state
 * is its own (loop thread only); the metrics are relaxed atomics.
 */
#ifndef LD_API_ADMISSION_H
#define LD_API_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "api/codel.h"
#include "api/conclimit.h"
#include "base/buf.h"

struct ld_api_req;
struct ld_api_loop;
struct ld_req;
struct uv_loop_s;

/* The [admission] settings of serve. */
struct ld_adm_config {
	bool enabled;		    /* --admission on|off (on) */
	unsigned initial_limit;	    /* 32 */
	unsigned min_limit;	    /* 1 */
	unsigned max_limit;	    /* 1000 */
	uint64_t window_ms;	    /* 100ms */
	unsigned tolerance_pct;	    /* 50 */
	uint64_t probe_interval_ms; /* 30s */
	unsigned queue;		    /* 128 per loop (0: no queue, shed at once) */
	uint64_t target_ms;	    /* 5ms */
	uint64_t interval_ms;	    /* 100ms */
	bool shed_writes_last;	    /* off */
	uint64_t
	    deadline_ms; /* 0 (= store_timeout_ms): a request's budget when the client sets none */
	/* Set by serve from other sections. */
	uint64_t store_timeout_ms; /* --store-timeout */
};
extern struct ld_adm_config ld_adm_cfg;

/* ld_adm_register adds [admission] to serve's settings; before
 * ld_config_load. */
int ld_adm_register(void);

/* ld_adm_setup checks the settings together and sizes the metrics for
 * nloops loops; 0, or -EINVAL (err names the settings) or -ENOMEM. */
int ld_adm_setup(unsigned nloops, char *err, size_t errlen);

/* One request's admission state (in struct ld_api_req, zeroed per request). */
struct ld_api_adm {
	struct ld_codel_entry e;
	void (*handler)(struct ld_api_req *q);
	uint64_t deadline_ns; /* uv_hrtime() ns; 0 = none */
	uint64_t admitted_ns;
	bool counted; /* in flight: on_respond releases it */
	bool queued;
	bool expired; /* a store op was not sent: the deadline had passed */
};

/* Per-loop state for api.c's loop hooks (al->adm; NULL when off). */
int ld_api_adm_loop_open(struct ld_api_loop *al, unsigned index, struct uv_loop_s *uv);
void ld_api_adm_loop_close(struct ld_api_loop *al);

/* ld_api_adm_budget reads Request-Timeout and sets the request's deadline:
 * 0, or -1 after answering 400. */
int ld_api_adm_budget(struct ld_api_req *q);

/* ld_api_adm_admit: false to run handler now (admitted, or not subject to
 * admission); true when the request was taken: shed (answered), or queued
 * (handler runs later, on this loop). */
bool ld_api_adm_admit(struct ld_api_req *q, void (*handler)(struct ld_api_req *q));

/* ld_api_adm_respond is the server's on_respond hook: the request leaves
 * the in-flight count (its RTT goes to the limit). */
void ld_api_adm_respond(struct ld_req *r, int status, void *arg);

/* ld_api_adm_expired says whether the request's deadline has passed at
 * now_ns, counting it once as dropped work (where: "store", "cache"). */
bool ld_api_adm_expired(struct ld_api_req *q, uint64_t now_ns, const char *where);

/* ld_api_adm_store_deadline is the deadline for a store op submitted at
 * now_ns: the request's, or the store's own default when sooner. */
uint64_t ld_api_adm_store_deadline(const struct ld_api_req *q, uint64_t now_ns);

/* ld_api_adm_metrics appends the ladder_admission_* and
 * ladder_deadline_* series. */
void ld_api_adm_metrics(struct ld_buf *out);

#endif
