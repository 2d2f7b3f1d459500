#include "obs/metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * The series every request moves live in shards, one per thread that
 * counts (the loop threads): a shard has one writer, so its adds are a
 * relaxed load and store, not a locked read-modify-write, and no cache line
 * moves between loops that answer the same route. A cached GET made a dozen
 * locked adds here, about 5 ns each on one core and far more once two loops
 * shared the lines. Renders sum the shards with relaxed loads (a counter is
 * never torn, only possibly a request behind). Past SHARDS_MAX threads, or
 * when a shard cannot be allocated, a thread counts into the spill shard
 * with atomic adds. A shard is never freed: a thread that ends leaves its
 * counts (and its gauges balanced). Every slot is unsigned: a gauge adds
 * its deltas modulo 2^64 and is read back as signed, so one sum serves
 * counters and gauges alike.
 */
#define SHARDS_MAX 64

struct shard {
	_Atomic uint64_t requests[ROUTES_MAX][METHODS_MAX][NSTATUS];
	_Atomic uint64_t bytes_out[ROUTES_MAX];
	struct hist latency[ROUTES_MAX];
	_Atomic uint64_t inflight;    /* gauge */
	_Atomic uint64_t connections; /* gauge */
	_Atomic uint64_t connections_total;
	_Atomic uint64_t xcache_bytes; /* gauge */
	bool shared;		       /* the spill shard: more than one writer */
};

static struct shard *_Atomic shards[SHARDS_MAX];
static _Atomic unsigned nshards;
static struct shard spill = {.shared = true};
static _Thread_local struct shard *mine;

static struct {
	const char *const *routes;
	unsigned nroutes;
	const char *const *methods;
	unsigned nmethods;
	unsigned statuses[STATUSES_MAX];
	unsigned nstatuses;
	time_t start;
	struct hist batch;  /* writer thread, once a batch */
	struct hist commit; /* idem */
	_Atomic uint64_t shed;
	const char *_Atomic store_kind[STORE_KINDS_MAX];
	_Atomic uint64_t store_errors[STORE_KINDS_MAX];
} m;

/* my_shard is the calling thread's shard, claimed on its first count. */
static struct shard *my_shard(void)
{
	unsigned i;
	struct shard *sh;

	if (mine)
		return mine;
	mine = &spill;
	i = atomic_fetch_add_explicit(&nshards, 1, memory_order_relaxed);
	if (i < SHARDS_MAX && (sh = calloc(1, sizeof(*sh)))) {
		atomic_store_explicit(&shards[i], sh, memory_order_release);
		mine = sh;
	}
	return mine;
}

/* add counts v into slot p of shard sh: its only writer loads and stores,
 * the spill shard's many add atomically. */
static inline void add(const struct shard *sh, _Atomic uint64_t *p, uint64_t v)
{
	if (sh->shared)
		atomic_fetch_add_explicit(p, v, memory_order_relaxed);
	else
		atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
				      memory_order_relaxed);
}

/* shard_at is shard i of the render's walk: the spill shard, then every
 * claimed one (NULL: a slot whose allocation failed). */
static struct shard *shard_at(unsigned i)
{
	return i == 0 ? &spill : atomic_load_explicit(&shards[i - 1], memory_order_acquire);
}

static unsigned shard_walk_len(void)
{
	unsigned n = atomic_load_explicit(&nshards, memory_order_relaxed);

	return 1 + (n < SHARDS_MAX ? n : SHARDS_MAX);
}

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

/* bucket_of is the index of the first bound v does not exceed (nb: +Inf). */
static unsigned bucket_of(const double *bounds, unsigned nb, double v)
{
	unsigned i = 0;

	while (i < nb && v > bounds[i])
		i++;
	return i;
}

/* hist_observe adds v to a histogram that several threads may write. */
static void hist_observe(struct hist *h, const double *bounds, unsigned nb, double v,
			 uint64_t sum_add)
{
	atomic_fetch_add_explicit(&h->bucket[bucket_of(bounds, nb, v)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, sum_add, memory_order_relaxed);
}

void ld_metrics_request(unsigned route, unsigned method, unsigned status, uint64_t duration_ns,
			uint64_t bytes_out)
{
	struct shard *sh = my_shard();
	unsigned b = bucket_of(lat_bounds, NLAT, (double)duration_ns / 1e9);
	struct hist *h;

	if (route >= m.nroutes)
		route = m.nroutes ? m.nroutes - 1 : 0;
	if (method >= m.nmethods)
		method = 0; /* the catch-all name (see metrics.h) */
	add(sh, &sh->requests[route][method][status_index(status)], 1);
	add(sh, &sh->bytes_out[route], bytes_out);
	h = &sh->latency[route];
	add(sh, &h->bucket[b], 1);
	add(sh, &h->count, 1);
	add(sh, &h->sum_ns, duration_ns);
}

void ld_metrics_inflight(int delta)
{
	struct shard *sh = my_shard();

	add(sh, &sh->inflight, (uint64_t)(int64_t)delta);
}

void ld_metrics_connections(int delta)
{
	struct shard *sh = my_shard();

	add(sh, &sh->connections, (uint64_t)(int64_t)delta);
	if (delta > 0)
		add(sh, &sh->connections_total, (uint64_t)delta);
}

void ld_metrics_exchange_cache(int64_t delta)
{
	struct shard *sh = my_shard();

	add(sh, &sh->xcache_bytes, (uint64_t)delta);
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

/* A histogram as rendered: one, or the sum of the shards' for a route. */
struct hist_sum {
	uint64_t bucket[17], count, sum;
};

/* hist_add adds h into t, the buckets before the count, so a render never
 * reports a count below its buckets' sum (render_hist holds it there too). */
static void hist_add(struct hist_sum *t, struct hist *h, unsigned nb)
{
	for (unsigned i = 0; i <= nb; i++)
		t->bucket[i] += ld(&h->bucket[i]);
	t->count += ld(&h->count);
	t->sum += ld(&h->sum_ns);
}

/* slot_sum is a slot's total over every shard; the slot is named by its
 * place in the spill shard (&spill.bytes_out[r]), the same in each. */
static uint64_t slot_sum(_Atomic uint64_t *in_spill)
{
	size_t off = (size_t)((char *)in_spill - (char *)&spill);
	uint64_t v = 0;

	for (unsigned k = 0, n = shard_walk_len(); k < n; k++) {
		struct shard *sh = shard_at(k);

		if (sh)
			v += ld((_Atomic uint64_t *)((char *)sh + off));
	}
	return v;
}

/* gauge_sum reads a gauge slot's total as the signed value it is (a shard
 * alone may be below zero when a gauge moves up on one thread and down on
 * another). */
static long long gauge_sum(_Atomic uint64_t *in_spill)
{
	return (long long)(int64_t)slot_sum(in_spill);
}

/* render_hist writes one histogram's _bucket/_sum/_count lines. labels is
 * either "" or `route="x",` style text to put before le. */
static void render_hist(struct ld_buf *out, const char *name, const char *labels,
			const struct hist_sum *h, const double *bounds, unsigned nb,
			double sum_scale)
{
	uint64_t cum = 0, count;
	unsigned i;
	const char *sep = labels[0] ? "," : "";

	for (i = 0; i < nb; i++) {
		cum += h->bucket[i];
		ld_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
			      (unsigned long long)cum);
	}
	cum += h->bucket[nb];
	/* Count is read after the buckets and never reported below their sum,
	 * so +Inf == _count holds even while writers race the scrape. */
	count = h->count;
	if (count < cum)
		count = cum;
	ld_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		      (unsigned long long)count);
	ld_buf_printf(out, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels,
		      labels[0] ? "}" : "", (double)h->sum * sum_scale);
	ld_buf_printf(out, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
		      labels[0] ? "}" : "", (unsigned long long)count);
}

int ld_metrics_render(struct ld_buf *out)
{
	unsigned r, me, s, i, k, ns = shard_walk_len();
	char labels[128];
	struct hist_sum hs;

	ld_buf_puts(out, "# HELP ladder_http_requests_total HTTP requests answered, by route, "
			 "method and status.\n"
			 "# TYPE ladder_http_requests_total counter\n");
	for (r = 0; r < m.nroutes; r++)
		for (me = 0; me < m.nmethods; me++)
			for (s = 0; s < NSTATUS; s++) {
				uint64_t v = slot_sum(&spill.requests[r][me][s]);
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
			      m.routes[r], (unsigned long long)slot_sum(&spill.bytes_out[r]));
	ld_buf_puts(out, "# HELP ladder_http_request_duration_seconds Time from the first byte "
			 "of a request to its response queued, by route.\n"
			 "# TYPE ladder_http_request_duration_seconds histogram\n");
	for (r = 0; r < m.nroutes; r++) {
		snprintf(labels, sizeof(labels), "route=\"%s\"", m.routes[r]);
		memset(&hs, 0, sizeof(hs));
		for (k = 0; k < ns; k++)
			if (shard_at(k))
				hist_add(&hs, &shard_at(k)->latency[r], NLAT);
		render_hist(out, "ladder_http_request_duration_seconds", labels, &hs, lat_bounds,
			    NLAT, 1e-9);
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
		      gauge_sum(&spill.inflight), gauge_sum(&spill.connections),
		      (unsigned long long)slot_sum(&spill.connections_total),
		      (unsigned long long)ld(&m.shed), gauge_sum(&spill.xcache_bytes));
	ld_buf_puts(out, "# HELP ladder_store_write_batch_size Writes committed per transaction "
			 "(group commit).\n"
			 "# TYPE ladder_store_write_batch_size histogram\n");
	memset(&hs, 0, sizeof(hs));
	hist_add(&hs, &m.batch, NBATCH);
	render_hist(out, "ladder_store_write_batch_size", "", &hs, batch_bounds, NBATCH, 1);
	ld_buf_puts(out, "# HELP ladder_store_commit_duration_seconds Time to commit and sync one "
			 "write batch.\n"
			 "# TYPE ladder_store_commit_duration_seconds histogram\n");
	memset(&hs, 0, sizeof(hs));
	hist_add(&hs, &m.commit, NCOMMIT);
	render_hist(out, "ladder_store_commit_duration_seconds", "", &hs, commit_bounds, NCOMMIT,
		    1e-9);
	ld_buf_puts(out, "# HELP ladder_store_errors_total Store operations that failed, by "
			 "kind.\n"
			 "# TYPE ladder_store_errors_total counter\n");
	for (i = 0; i < STORE_KINDS_MAX; i++) {
		const char *kind = atomic_load(&m.store_kind[i]);

		if (kind)
			ld_buf_printf(out, "ladder_store_errors_total{kind=\"%s\"} %llu\n", kind,
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
