/*
 * metrics.h - process-wide metrics and their Prometheus text exposition.
 *
 * The set of series is fixed at start-up (routes are known, status codes are
 * a small table), so every update is a relaxed atomic add on a preallocated
 * slot: no locks, no allocation, safe from any thread. Rendering reads the
 * atomics without stopping writers; a scrape may see a request counted in one
 * series and not yet in another, which Prometheus tolerates.
 */
#ifndef LD_METRICS_H
#define LD_METRICS_H

#include <stdint.h>

#include "base/buf.h"

/* ld_metrics_init sets the route names (index = route id) once, before any
 * other call. The strings must outlive the process. */
int ld_metrics_init(const char *const *route_names, unsigned nroutes);

/* ld_metrics_request counts one finished request. method is an
 * enum ld_http_method, status the HTTP status sent. */
void ld_metrics_request(unsigned route, unsigned method, unsigned status, uint64_t duration_ns,
			uint64_t bytes_out);

/* In-flight requests and open connections (delta +1 / -1). */
void ld_metrics_inflight(int delta);
void ld_metrics_connections(int delta);

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
