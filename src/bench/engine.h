/*
 * engine.h - the load engine of `ladder bench`: N libuv threads, each with its
 * own loop, connections, schedule and histograms.
 *
 * Open loop (the default): every thread owns a share of the schedule (the
 * shape's integral inverted; thread j of T takes requests j, j+T, ...). A
 * timerfd armed at the next intended send time (nanosecond resolution, no
 * spinning) wakes the loop; every due request goes to an idle connection, or
 * waits in a queue with its clock running while a new connection is opened
 * (up to max_connections). Latency = answer time - intended time; service
 * time = answer time - actual write time. Requests sent more than 1 ms after
 * their time are counted late; queued requests that outlive the timeout are
 * timeouts; those still unsent when the run ends are dropped. Every one of
 * them goes into the latency histogram (at least the timeout, or its real
 * wait), none is left out.
 *
 * Retries (cfg.retry.max > 0, bench/retry.h): a request that may be retried
 * and failed in a way worth retrying waits its backoff and is sent again,
 * on any connection, within the retry budget; it is still one request: its
 * latency runs from its first intended send time to its last answer, and
 * only that last outcome is counted (and given to on_response). A retry
 * that would go after its first intended time plus the timeout is not
 * made.
 *
 * Closed loop (rate <= 0): `connections` connections each send the next
 * request as soon as the previous answer arrives, as wrk does. Latency then
 * equals service time; the report says so.
 *
 * Threading: ld_bench_run is called from one thread and blocks until the run
 * ends; workload callbacks run on the engine threads (several at once when
 * threads > 1) and must be safe for that. The tick callback runs on the
 * calling thread once a second.
 */
#ifndef LD_BENCH_ENGINE_H
#define LD_BENCH_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "bench/retry.h"
#include "bench/shape.h"
#include "obs/hdr.h"

#define LD_BENCH_KINDS 2 /* request kinds a workload may tag (read, write) */

enum ld_bench_err {
	LD_ERR_CONNECT,
	LD_ERR_TIMEOUT,
	LD_ERR_READ, /* reset or closed before the answer was complete */
	LD_ERR_WRITE,
	LD_ERR_PARSE, /* the answer broke HTTP/1.1 */
	LD_ERR_5XX,
	LD_ERR_4XX,	/* only when 4xx count as errors */
	LD_ERR_DROPPED, /* never sent: the queue was full or the run ended */
	LD_ERR_COUNT
};

/* ld_bench_err_name returns "connect", "timeout", ... */
const char *ld_bench_err_name(enum ld_bench_err e);

/* One request, filled in by the workload. */
struct ld_bench_req {
	const char *data; /* bytes to write; must stay valid until the answer */
	size_t len;
	bool head;	/* the request is HEAD (its answer has no body) */
	bool want_body; /* hand the body to on_response */
	int kind;	/* 0..LD_BENCH_KINDS-1 */
	uint64_t tag;	/* the workload's own */
};

struct ld_bench_workload {
	/* next fills req. scratch is the connection's own buffer (reset before
	 * the call) for requests built on the fly; rng is the thread's. A
	 * negative return stops this thread's sending (for example when a
	 * seeding list is exhausted). */
	int (*next)(void *ctx, struct ld_rng *rng, struct ld_buf *scratch,
		    struct ld_bench_req *req);
	/* on_response is optional. status is 0 when the request failed (error
	 * kind in err); body is set only when req->want_body. */
	void (*on_response)(void *ctx, const struct ld_bench_req *req, int status, int err,
			    const char *body, size_t len);
	void *ctx;
	/* per_kind asks for figures per req->kind (kind_latency, kind_count,
	 * kind_in_window); a workload that tags no kinds leaves it false and
	 * saves a second histogram record per answer. */
	bool per_kind;
};

/* One second of the run, merged over threads. */
struct ld_bench_point {
	double t;	     /* seconds since start at the end of this interval */
	double secs;	     /* length of the interval */
	double target_rps;   /* planned sends in the interval / secs */
	double achieved_rps; /* answers (any status) in the interval / secs */
	int64_t count, errors;
	int64_t p50_us, p90_us, p99_us, p999_us, max_us;
	/* Retries sent, refused by the budget and given up in the interval
	 * (as the result's totals, per second). */
	int64_t retries, retry_denied, retry_gave_up;
	bool warmup;
};

/* Running totals for progress displays. */
struct ld_bench_totals {
	int64_t done, errors, late, dropped, inflight, queued;
	int open_conns;
};

struct ld_bench_cfg {
	struct sockaddr_storage addr;
	int threads;
	int connections;       /* opened at the start (per run, spread over threads) */
	int max_connections;   /* open loop may grow to this many when all are busy */
	bool closed;	       /* closed loop, as fast as answers come back */
	struct ld_shape shape; /* open loop: the target rate over time */
	double duration_s;     /* closed loop: how long (open loop: the shape's length) */
	double warmup_s;       /* excluded from the figures (still in the timeline) */
	bool poisson;
	uint64_t seed;
	double timeout_s;
	int64_t max_requests;	      /* closed loop: stop after this many answers (0: no limit) */
	bool errors_4xx;	      /* count 4xx answers as errors */
	struct ld_retry_policy retry; /* max 0: no retries */
	struct ld_bench_workload wl;
	/* tick is called about once a second on the caller's thread with the
	 * timeline point just closed; may be NULL. */
	void (*tick)(void *ctx, const struct ld_bench_point *pt, const struct ld_bench_totals *tot);
	void *tick_ctx;
};

struct ld_bench_result {
	struct ld_hdr latency; /* after warm-up, corrected */
	struct ld_hdr service;
	struct ld_hdr ok_latency; /* corrected, of the 2xx answers only (what shedding admitted) */
	struct ld_hdr kind_latency[LD_BENCH_KINDS]; /* these three: only with wl.per_kind */
	int64_t kind_count[LD_BENCH_KINDS];
	int64_t kind_in_window[LD_BENCH_KINDS];
	int64_t requests;  /* finished after warm-up: answered or failed */
	int64_t scheduled; /* open loop: due after warm-up */
	int64_t in_window; /* answered inside the measured window */
	int64_t errors;
	int64_t err_by_kind[LD_ERR_COUNT];
	int64_t status[600];
	int64_t late, dropped, connects;
	/* Retries sent (or due when the run ended), refused by the budget, and
	 * given up: retries used up, past the timeout, or the run ended. */
	int64_t retries, retry_denied, retry_gave_up;
	/* Requests sent again at once on another connection after the one they
	 * went out on was closed before any byte of an answer (engine.c,
	 * resend_stale); not retries. */
	int64_t resent;
	double window_s;  /* measured window length: duration - warm-up */
	bool interrupted; /* stopped early by ld_bench_stop: the window is shorter */
	double elapsed_s; /* wall time of the whole run, drain included */
	double target_rps, achieved_rps;
	struct ld_bench_point *timeline; /* owned */
	int npoints;
};

/* ld_bench_run runs one load and fills res (which ld_bench_result_release
 * frees). Returns 0, or a negative errno when it could not start (the
 * address, threads); failures of requests are results, not errors. */
int ld_bench_run(const struct ld_bench_cfg *cfg, struct ld_bench_result *res);

void ld_bench_result_release(struct ld_bench_result *res);

/* ld_bench_stop asks a running ld_bench_run to end now (from a signal
 * handler too); what was measured so far is reported. */
void ld_bench_stop(void);

/* ld_bench_stopped is true once ld_bench_stop was called. */
bool ld_bench_stopped(void);

#endif
