/*
 * opts.h - the options of one `ladder bench` invocation, as parsed from the
 * command line, and the pieces of a run that the reports need.
 *
 * Ownership: strings point into argv or are owned by the struct (freed by
 * ld_bench_opts_release). Threading: filled on the main thread, then only
 * read.
 */
#ifndef LD_BENCH_OPTS_H
#define LD_BENCH_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/cachestat.h"
#include "bench/engine.h"
#include "bench/slo.h"

struct ld_profile;

#define LD_BENCH_URLS_MAX    64
#define LD_BENCH_HEADERS_MAX 64
#define LD_BENCH_STEPS_MAX   256

struct ld_bench_opts {
	const char *urls[LD_BENCH_URLS_MAX];
	int nurls;
	const char *method;
	const char *headers[LD_BENCH_HEADERS_MAX + 1]; /* NULL-terminated */
	int nheaders;
	const char *body_file;
	char *body; /* file contents, owned */
	size_t body_len;
	bool closed; /* --rate max or no rate */
	double rate;
	double duration_s, warmup_s, timeout_s;
	int connections, max_connections, threads;
	bool poisson;
	uint64_t seed;
	const char *stages;
	double start_rate;
	const char *preset;
	const char *breakpoint; /* "start:step:max" */
	double bp_start, bp_step, bp_max, step_s;
	const char *slo_text;
	struct ld_slo slo;
	bool errors_4xx, quiet;
	/* --retries and its backoff and budget (bench/retry.h) */
	int retries;
	double retry_base_s, retry_cap_s, retry_budget;
	const char *json_path, *html_path, *hgrm_path;
	const char *profile_url; /* --profile: the server's base URL */
	double profile_interval_s;
	/* the ladder scenario */
	const char *scenario;
	int users, items_per_user, seed_concurrency;
	double read_ratio, write_ratio;
	double zipf_s;
	double photo_share;	/* of the mix's requests: photo upload steps */
	const char *photo_file; /* the photo uploaded (else one made here) */
	char cmdline[2048];
};

/* One step of a breakpoint search. */
struct ld_bench_step {
	double rate, achieved_rps, error_rate;
	int64_t requests, errors;
	int64_t p50_us, p99_us, p999_us, max_us;
	bool held;
	char why[256];
};

/* What a run produced beyond the engine's result, for the reports. */
struct ld_bench_extra {
	bool mix;   /* the ladder scenario: read/write split */
	int nsteps; /* breakpoint steps (0: not a breakpoint run) */
	struct ld_bench_step steps[LD_BENCH_STEPS_MAX];
	double max_rate_held; /* 0 when none held */
	int slo_broken;	      /* terms broken in the final figures */
	char slo_why[512];
	int64_t seeded_users, seeded_items;
	/* The photo mix (photo_share > 0): uploads started (POST /v1/photos
	 * answered 201), completed (POST .../complete answered 202), failed
	 * (a step answered otherwise, or failed), and the photo's size. */
	bool photos;
	int64_t photos_started, photos_completed, photos_failed, photo_bytes;
	double seed_s;
	struct ld_profile *profile; /* --profile, owned by the caller */
	/* The ladder scenario: the server's cache counters over the run (its
	 * /metrics before and after); has_cache when both reads had them. */
	bool has_cache;
	struct ld_cache_stat cache;
};

#endif
