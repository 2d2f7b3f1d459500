#include "obs/metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Fixed ceilings for the label sets given at init: the counters are
 * preallocated so an update never allocates or locks. */
#define ROUTES_MAX   32
#define METHODS_MAX  16
#define STATUSES_MAX 32
#define NSTATUS	     (STATUSES_MAX + 1) /* the last slot counts every other code */

/* Request latency buckets in seconds: 100 us to 10 s covers a cache hit to a
 * timed-out request. */
static const double lat_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				    0.05,   0.1,     0.25,   0.5,   1,	    2.5,   5,	 10};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

/* Commit latency: an fsync is 50 us on NVMe to tens of ms on a busy disk. */
static const double commit_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				       0.01,	0.025,	0.05,	 0.1,	 0.25,	1};
#define NCOMMIT (sizeof(commit_bounds) / sizeof(commit_bounds[0]))

/* Batch sizes: powers of two up to the default batch cap. */
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define NBATCH (sizeof(batch_bounds) / sizeof(batch_bounds[0]))

#define STORE_KINDS_MAX 8

struct hist {
	_Atomic uint64_t bucket[17]; /* per bound, non-cumulative; last = +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns; /* or sum of values for batch sizes */
};

static struct {
	const char *const *routes;
	unsigned nroutes;
	const char *const *methods;
	unsigned nmethods;
	unsigned statuses[STATUSES_MAX];
	unsigned nstatuses;
	time_t start;
	_Atomic uint64_t requests[ROUTES_MAX][METHODS_MAX][NSTATUS];
	_Atomic uint64_t bytes_out[ROUTES_MAX];
	struct hist latency[ROUTES_MAX];
	_Atomic int64_t inflight;
	_Atomic int64_t connections;
	_Atomic uint64_t connections_total;
	_Atomic int64_t xcache_bytes;
	struct hist batch;
	struct hist commit;
	_Atomic uint64_t shed;
	const char *_Atomic store_kind[STORE_KINDS_MAX];
	_Atomic uint64_t store_errors[STORE_KINDS_MAX];
} m;

/* status_slot maps a status code to its slot in O(1); built once by init. */
static unsigned char status_slot[600];

static unsigned status_index(unsigned status)
{
	return status < 600 ? status_slot[status] : NSTATUS - 1;
}

int ld_metrics_init(const struct ld_metrics_labels *l)
{
	int rc = -E2BIG;
	unsigned i;

	if (l->nroutes > ROUTES_MAX || l->nmethods > METHODS_MAX || l->nstatuses > STATUSES_MAX)
		goto out;
	rc = -EINVAL;
	for (i = 0; i < l->nstatuses; i++)
		if (l->statuses[i] >= sizeof(status_slot))
			goto out;
	m.routes = l->routes;
	m.nroutes = l->nroutes;
	m.methods = l->methods;
	m.nmethods = l->nmethods;
	memcpy(m.statuses, l->statuses, l->nstatuses * sizeof(l->statuses[0]));
	m.nstatuses = l->nstatuses;
	memset(status_slot, NSTATUS - 1, sizeof(status_slot));
	for (i = 0; i < l->nstatuses; i++)
		status_slot[l->statuses[i]] = (unsigned char)i;
	m.start = time(NULL);
	rc = 0;
out:
	return rc;
}

static void hist_observe(struct hist *h, const double *bounds, unsigned nb, double v,
			 uint64_t sum_add)
{
	unsigned i = 0;

	while (i < nb && v > bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, sum_add, memory_order_relaxed);
}

void ld_metrics_request(unsigned route, unsigned method, unsigned status, uint64_t duration_ns,
			uint64_t bytes_out)
{
	if (route >= m.nroutes)
		route = m.nroutes ? m.nroutes - 1 : 0;
	if (method >= m.nmethods)
		method = 0; /* the catch-all name (see metrics.h) */
	atomic_fetch_add_explicit(&m.requests[route][method][status_index(status)], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&m.bytes_out[route], bytes_out, memory_order_relaxed);
	hist_observe(&m.latency[route], lat_bounds, NLAT, (double)duration_ns / 1e9, duration_ns);
}

void ld_metrics_inflight(int delta)
{
	atomic_fetch_add_explicit(&m.inflight, delta, memory_order_relaxed);
}

void ld_metrics_connections(int delta)
{
	atomic_fetch_add_explicit(&m.connections, delta, memory_order_relaxed);
	if (delta > 0)
		atomic_fetch_add_explicit(&m.connections_total, (uint64_t)delta,
					  memory_order_relaxed);
}

void ld_metrics_exchange_cache(int64_t delta)
{
	atomic_fetch_add_explicit(&m.xcache_bytes, delta, memory_order_relaxed);
}

void ld_metrics_write_batch(unsigned n, uint64_t commit_ns)
{
	hist_observe(&m.batch, batch_bounds, NBATCH, (double)n, n);
	hist_observe(&m.commit, commit_bounds, NCOMMIT, (double)commit_ns / 1e9, commit_ns);
}

void ld_metrics_store_error(const char *kind)
{
	unsigned i;
	const char *expected;

	/* Labels are static strings, so claiming a slot by pointer is enough;
	 * strcmp catches the same text passed from two call sites. */
	for (i = 0; i < STORE_KINDS_MAX; i++) {
		const char *k = atomic_load_explicit(&m.store_kind[i], memory_order_acquire);

		if (!k) {
			expected = NULL;
			if (atomic_compare_exchange_strong(&m.store_kind[i], &expected, kind))
				break;
			k = expected;
		}
		if (k == kind || strcmp(k, kind) == 0)
			break;
	}
	if (i == STORE_KINDS_MAX)
		i = STORE_KINDS_MAX - 1; /* out of slots: fold into the last label */
	atomic_fetch_add_explicit(&m.store_errors[i], 1, memory_order_relaxed);
}

void ld_metrics_shed(void)
{
	atomic_fetch_add_explicit(&m.shed, 1, memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* render_hist writes one histogram's _bucket/_sum/_count lines. labels is
 * either "" or `route="x",` style text to put before le. */
static void render_hist(struct ld_buf *out, const char *name, const char *labels, struct hist *h,
			const double *bounds, unsigned nb, double sum_scale)
{
	uint64_t cum = 0, count;
	unsigned i;
	const char *sep = labels[0] ? "," : "";

	for (i = 0; i < nb; i++) {
		cum += ld(&h->bucket[i]);
		ld_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
			      (unsigned long long)cum);
	}
	cum += ld(&h->bucket[nb]);
	/* Count is read after the buckets and never reported below their sum,
	 * so +Inf == _count holds even while writers race the scrape. */
	count = ld(&h->count);
	if (count < cum)
		count = cum;
	ld_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		      (unsigned long long)count);
	ld_buf_printf(out, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels,
		      labels[0] ? "}" : "", (double)ld(&h->sum_ns) * sum_scale);
	ld_buf_printf(out, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
		      labels[0] ? "}" : "", (unsigned long long)count);
}

int ld_metrics_render(struct ld_buf *out)
{
	unsigned r, me, s, i;
	char labels[128];

	ld_buf_puts(out, "# HELP ladder_http_requests_total HTTP requests answered, by route, "
			 "method and status.\n"
			 "# TYPE ladder_http_requests_total counter\n");
	for (r = 0; r < m.nroutes; r++)
		for (me = 0; me < m.nmethods; me++)
			for (s = 0; s < NSTATUS; s++) {
				uint64_t v = ld(&m.requests[r][me][s]);
				char code[8];

				if (!v)
					continue;
				if (s >= m.nstatuses)
					snprintf(code, sizeof(code), "other");
				else
					snprintf(code, sizeof(code), "%u", m.statuses[s]);
				ld_buf_printf(
				    out,
				    "ladder_http_requests_total{route=\"%s\",method=\"%s\","
				    "status=\"%s\"} %llu\n",
				    m.routes[r], m.methods[me], code, (unsigned long long)v);
			}
	ld_buf_puts(out, "# HELP ladder_http_response_bytes_total Response bytes written, by "
			 "route.\n"
			 "# TYPE ladder_http_response_bytes_total counter\n");
	for (r = 0; r < m.nroutes; r++)
		ld_buf_printf(out, "ladder_http_response_bytes_total{route=\"%s\"} %llu\n",
			      m.routes[r], (unsigned long long)ld(&m.bytes_out[r]));
	ld_buf_puts(out, "# HELP ladder_http_request_duration_seconds Time from the first byte "
			 "of a request to its response queued, by route.\n"
			 "# TYPE ladder_http_request_duration_seconds histogram\n");
	for (r = 0; r < m.nroutes; r++) {
		snprintf(labels, sizeof(labels), "route=\"%s\"", m.routes[r]);
		render_hist(out, "ladder_http_request_duration_seconds", labels, &m.latency[r],
			    lat_bounds, NLAT, 1e-9);
	}
	ld_buf_printf(out,
		      "# HELP ladder_http_requests_in_flight Requests received and not yet "
		      "answered.\n"
		      "# TYPE ladder_http_requests_in_flight gauge\n"
		      "ladder_http_requests_in_flight %lld\n"
		      "# HELP ladder_http_open_connections Client connections open now.\n"
		      "# TYPE ladder_http_open_connections gauge\n"
		      "ladder_http_open_connections %lld\n"
		      "# HELP ladder_http_connections_total Client connections accepted.\n"
		      "# TYPE ladder_http_connections_total counter\n"
		      "ladder_http_connections_total %llu\n"
		      "# HELP ladder_http_shed_total Requests refused with 503 to shed load.\n"
		      "# TYPE ladder_http_shed_total counter\n"
		      "ladder_http_shed_total %llu\n"
		      "# HELP ladder_http_exchange_cache_bytes Buffer bytes held by idle "
		      "request states cached for reuse.\n"
		      "# TYPE ladder_http_exchange_cache_bytes gauge\n"
		      "ladder_http_exchange_cache_bytes %lld\n",
		      (long long)atomic_load(&m.inflight), (long long)atomic_load(&m.connections),
		      (unsigned long long)ld(&m.connections_total), (unsigned long long)ld(&m.shed),
		      (long long)atomic_load(&m.xcache_bytes));
	ld_buf_puts(out, "# HELP ladder_store_write_batch_size Writes committed per transaction "
			 "(group commit).\n"
			 "# TYPE ladder_store_write_batch_size histogram\n");
	render_hist(out, "ladder_store_write_batch_size", "", &m.batch, batch_bounds, NBATCH, 1);
	ld_buf_puts(out, "# HELP ladder_store_commit_duration_seconds Time to commit and sync one "
			 "write batch.\n"
			 "# TYPE ladder_store_commit_duration_seconds histogram\n");
	render_hist(out, "ladder_store_commit_duration_seconds", "", &m.commit, commit_bounds,
		    NCOMMIT, 1e-9);
	ld_buf_puts(out, "# HELP ladder_store_errors_total Store operations that failed, by "
			 "kind.\n"
			 "# TYPE ladder_store_errors_total counter\n");
	for (i = 0; i < STORE_KINDS_MAX; i++) {
		const char *k = atomic_load(&m.store_kind[i]);

		if (k)
			ld_buf_printf(out, "ladder_store_errors_total{kind=\"%s\"} %llu\n", k,
				      (unsigned long long)ld(&m.store_errors[i]));
	}
	/* The buffer's first failure sticks (and empties it), so a truncated
	 * exposition is never handed out and one check at the end covers
	 * every line. */
	return ld_buf_printf(out,
			     "# HELP ladder_process_start_time_seconds Start time of the process "
			     "since the Unix epoch.\n"
			     "# TYPE ladder_process_start_time_seconds gauge\n"
			     "ladder_process_start_time_seconds %lld\n",
			     (long long)m.start);
}
