/*
 * stats_int.h - the snapshot that stats.c gathers and stats_render.c writes
 * out. Not for use outside src/obs.
 */
#ifndef LD_STATS_INT_H
#define LD_STATS_INT_H

#include "obs/hdr.h"
#include "obs/stages.h"
#include "obs/stats.h"

/* The writer thread's figures (guarded by their own mutex in stats.c). */
struct ld_obs_writer {
	struct ld_hdr batch;  /* ops per committed batch */
	struct ld_hdr commit; /* ns, BEGIN .. COMMIT returned */
	struct ld_hdr sync;   /* ns, COMMIT issued .. returned (the WAL fsync) */
	uint64_t commit_sum_ns, sync_sum_ns;
	uint64_t busy_ns; /* batch taken .. every op handed back */
	uint64_t commits; /* batches committed */
	uint64_t batches; /* batches taken, failed ones included */
	uint64_t writes;  /* ops in committed batches */
	int tid;
};

/* One loop as the snapshot saw it. */
struct ld_obs_loop_view {
	struct ld_hdr lag; /* ns late, per timer tick */
	uint64_t lag_sum_ns;
	uint64_t reads;
	uint64_t busy_ns;
	int tid;
	bool open;
};

struct ld_obs_snapshot {
	const char *const *routes;
	unsigned nloops;
	bool stage_timing;
	uint64_t started_ns, now_ns;
	struct ld_stage_set stages; /* every loop merged */
	struct ld_obs_loop_view *loops;
	struct ld_obs_writer w;
};

#endif
