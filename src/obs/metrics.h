/*
 * metrics.h - process-wide metrics and their Prometheus text exposition.
 *
 * The set of series is fixed at start-up (routes are known, status codes are
 * a small table), so every update is an add on a preallocated slot: no
 * locks, safe from any thread. The per-request series (requests, bytes,
 * latency, in-flight, connections) are kept per counting thread, so a loop's
 * update is a plain relaxed store, not a locked add (metrics.c, "shards");
 * a thread's first count allocates its shard. Rendering sums the shards
 * without stopping writers; a scrape may see a request counted in one
 * series and not yet in another, which Prometheus tolerates.
 */
#ifndef LD_METRICS_H
#define LD_METRICS_H

#include <stdint.h>

#include "base/buf.h"

/* The label values of the request series, given by the layers that own
 * them (routes by the application, methods and statuses by HTTP), so this
 * module depends on none of them. */
struct ld_metrics_labels {
	const char *const *routes; /* index = route id, at most 32 */
	unsigned nroutes;
	const char *const *methods; /* index = method id, at most 16; [0] also
				     * names every id out of range */
	unsigned nmethods;
	const unsigned *statuses; /* codes with a series of their own (below
				   * 600), at most 32; any other is "other" */
	unsigned nstatuses;
};

/* ld_metrics_init sets the labels once, before any other call: -E2BIG for a
 * set past its ceiling, -EINVAL for a status code of 600 or more. The route
 * and method strings and their arrays must outlive the process; the status
 * codes are copied. */
int ld_metrics_init(const struct ld_metrics_labels *l);

/* ld_metrics_request counts one finished request: route and method are ids
 * into the label arrays, status the HTTP status sent. */
void ld_metrics_request(unsigned route, unsigned method, unsigned status, uint64_t duration_ns,
			uint64_t bytes_out);

/* In-flight requests and open connections (delta +1 / -1). */
void ld_metrics_inflight(int delta);
void ld_metrics_connections(int delta);

/* Bytes of buffers held by idle exchanges in the loops' caches (a delta). */
void ld_metrics_exchange_cache(int64_t delta);

/* Writer thread: one committed batch of n ops that took commit_ns to commit
 * (BEGIN to synced COMMIT). */
void ld_metrics_write_batch(unsigned n, uint64_t commit_ns);

/* A store operation that failed with an error (not NOT_FOUND and the like);
 * kind is a short static label such as "io", "busy", "constraint". */
void ld_metrics_store_error(const char *kind);

/* Requests refused by load shedding (write queue full, draining). */
void ld_metrics_shed(void);

/* ld_metrics_render appends the exposition (format 0.0.4) to out. Returns 0,
 * or out's first error (out has then failed, and holds no partial text). */
int ld_metrics_render(struct ld_buf *out);

#endif
