/*
 * stats.h - the server's own profile: request stage histograms per loop,
 * event-loop lag, per-thread CPU time and the store writer's saturation,
 * gathered into one consistent snapshot for /debug/stats (JSON) and /metrics.
 *
 * Who writes what. Each loop thread owns its stage set (stages.h), its lag
 * histogram and its counters, and is the only thread that touches them while
 * it runs: recording a request costs no lock and no atomic. The writer thread
 * records each batch into writer-owned histograms under a mutex of their own
 * (one lock per batch, i.e. per fsync, never per request).
 *
 * How a snapshot is taken. A reader never reads a running loop's histograms
 * from another thread (the counts are plain integers being written). Instead
 * ld_obs_gather() asks every loop, through a uv_async handle, to merge its own
 * figures into one shared accumulator between two of its callbacks; the last
 * loop to do so completes the snapshot and the requester's loop is woken to
 * render it. A loop's contribution is therefore always whole requests, so in
 * a snapshot the stage sums of a route add up to its total exactly. A loop
 * that has already stopped (drain) has final figures, merged directly. One
 * gather runs at a time; requests that arrive meanwhile are queued and served
 * by the next one, so every snapshot is younger than the request it answers.
 *
 * Threading: ld_obs_init/fini on the main thread, before the loops start and
 * after they all stopped. Everything else says which thread may call it.
 */
#ifndef LD_STATS_H
#define LD_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "obs/stages.h"

struct ld_obs_config {
	unsigned nloops;
	const char *const *route_names; /* must outlive the process */
	unsigned nroutes;
	bool stage_timing; /* false: no stage clock is read or recorded */
};

/* ld_obs_init allocates the per-loop state; 0, -EINVAL or -ENOMEM. */
int ld_obs_init(const struct ld_obs_config *cfg);
void ld_obs_fini(void);

/* ld_obs_stage_timing says whether requests should run a stage clock. */
bool ld_obs_stage_timing(void);

/* ld_obs_loop_open attaches loop index (< nloops) before it runs: the lag
 * timer, the gather wake-up, idle-time accounting. Call before uv_run of
 * that loop (any thread). 0 or a negative libuv error. */
int ld_obs_loop_open(unsigned index, uv_loop_t *loop);

/* ld_obs_loop_close detaches it for good: its figures are final from here on.
 * On the loop thread (or before the loop ever ran); the loop must run once
 * more to close the handles. */
void ld_obs_loop_close(unsigned index);

/* ld_obs_record adds one finished request that ended at end_ns (same clock
 * as the stage clock); on loop index's thread. */
void ld_obs_record(unsigned index, unsigned route, const struct ld_stage_clock *c, uint64_t end_ns);

/* ld_obs_count_read counts a store op served inline on the loop. */
void ld_obs_count_read(unsigned index);

/* ld_obs_writer_batch records one batch of n ops from the writer thread,
 * committed or failed: taken (the writer took it), commit_start (BEGIN), sync_start (COMMIT
 * issued), commit_end (COMMIT returned), done (every op handed back). */
void ld_obs_writer_batch(unsigned n, bool committed, uint64_t taken, uint64_t commit_start,
			 uint64_t sync_start, uint64_t commit_end, uint64_t done);

/* What the store driver says about itself at render time. */
struct ld_store;
struct ld_json;

struct ld_obs_store_info {
	const char *driver;
	unsigned queue_depth, queue_cap;
	unsigned pool_in_use, pool_size;
	/* The driver's own members of /debug/stats' store object (NULL:
	 * none), written by render(render_store, j). */
	void (*render)(struct ld_store *s, struct ld_json *j);
	struct ld_store *render_store;
};

struct ld_obs_snapshot;
typedef void (*ld_obs_cb)(const struct ld_obs_snapshot *snap, void *arg);

/* A pending gather; the caller owns the memory (e.g. in its per-request
 * state) until cb has run. */
struct ld_obs_waiter {
	ld_obs_cb cb;
	void *arg;
	unsigned loop;
	bool ready; /* the snapshot is complete (under the gather's lock) */
	struct ld_obs_waiter *next;
};

/* ld_obs_gather takes a snapshot for a request on loop index and calls
 * cb(snapshot, arg) exactly once, later, on that loop's thread; the
 * snapshot is valid only during the call. On loop index's thread. */
void ld_obs_gather(struct ld_obs_waiter *w, unsigned index, ld_obs_cb cb, void *arg);

/* ld_obs_render_json appends the ladder-stats/1 document (docs/api.md). */
int ld_obs_render_json(const struct ld_obs_snapshot *s, const struct ld_obs_store_info *st,
		       struct ld_buf *out);

/* ld_obs_render_prom appends the Prometheus series of the snapshot:
 * ladder_stage_seconds, ladder_loop_lag_seconds, ladder_loop_busy_seconds_total,
 * ladder_thread_cpu_seconds_total, ladder_store_writer_busy_seconds_total,
 * ladder_store_write_queue_depth (docs/operations.md). */
int ld_obs_render_prom(const struct ld_obs_snapshot *s, const struct ld_obs_store_info *st,
		       struct ld_buf *out);

#endif
