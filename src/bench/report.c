/*
 * report.c - summary table, JSON report and .hgrm/HTML files of a run.
 */
#include "bench/report.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/json.h"
#include "bench/profile.h"

static const double spectrum[] = {0,	 10,   20,    30,    40,     50,     55,      60,
				  65,	 70,   75,    80,    85,     90,     92.5,    95,
				  96.0,	 97.0, 97.5,  98.0,  98.5,   99.0,   99.25,   99.5,
				  99.75, 99.9, 99.95, 99.99, 99.995, 99.999, 99.9999, 100};

/* Shorthands for one member; the writer places the commas. */
static void kv_num(struct ld_json *j, const char *k, double v)
{
	ld_json_key(j, k);
	ld_json_double(j, v);
}

static void kv_int(struct ld_json *j, const char *k, int64_t v)
{
	ld_json_key(j, k);
	ld_json_int(j, v);
}

/* kv_str writes null for a NULL value (an option not given). */
static void kv_str(struct ld_json *j, const char *k, const char *v)
{
	ld_json_key(j, k);
	if (v)
		ld_json_str(j, v);
	else
		ld_json_null(j);
}

static void kv_bool(struct ld_json *j, const char *k, bool v)
{
	ld_json_key(j, k);
	ld_json_bool(j, v);
}

static void latency_obj(struct ld_json *j, const struct ld_hdr *h)
{
	ld_json_obj_begin(j);
	kv_int(j, "count", h->total);
	kv_int(j, "min", ld_hdr_min(h));
	kv_num(j, "mean", ld_hdr_mean(h));
	kv_int(j, "p50", ld_hdr_percentile(h, 50));
	kv_int(j, "p90", ld_hdr_percentile(h, 90));
	kv_int(j, "p95", ld_hdr_percentile(h, 95));
	kv_int(j, "p99", ld_hdr_percentile(h, 99));
	kv_int(j, "p999", ld_hdr_percentile(h, 99.9));
	kv_int(j, "p9999", ld_hdr_percentile(h, 99.99));
	kv_int(j, "max", ld_hdr_max(h));
	kv_num(j, "stddev", ld_hdr_stddev(h));
	ld_json_obj_end(j);
}

static void cpu_model(char *out, size_t n)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(out, n, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!strncmp(line, "model name", 10) && colon) {
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(out, n, "%s", colon);
			break;
		}
	}
	fclose(f);
}

static void str_array(struct ld_json *j, const char *k, const char *const *v, int n)
{
	ld_json_key(j, k);
	ld_json_arr_begin(j);
	for (int i = 0; i < n; i++)
		ld_json_str(j, v[i]);
	ld_json_arr_end(j);
}

static void config_obj(struct ld_json *j, const struct ld_bench_opts *o)
{
	ld_json_obj_begin(j);
	str_array(j, "urls", o->urls, o->nurls);
	kv_str(j, "mode", o->closed ? "closed" : "open");
	kv_str(j, "method", o->method);
	str_array(j, "headers", o->headers, o->nheaders);
	kv_str(j, "body_file", o->body_file);
	if (o->closed)
		kv_str(j, "rate", "max");
	else
		kv_num(j, "rate", o->rate);
	kv_num(j, "duration_s", o->duration_s);
	kv_num(j, "warmup_s", o->warmup_s);
	kv_num(j, "timeout_s", o->timeout_s);
	kv_int(j, "connections", o->connections);
	kv_int(j, "max_connections", o->max_connections);
	kv_int(j, "threads", o->threads);
	kv_str(j, "arrivals", o->poisson ? "poisson" : "constant");
	ld_json_key(j, "seed");
	ld_json_uint(j, o->seed);
	kv_str(j, "stages", o->stages);
	kv_num(j, "start_rate", o->start_rate);
	kv_str(j, "preset", o->preset);
	kv_str(j, "breakpoint", o->breakpoint);
	kv_num(j, "step_duration_s", o->step_s);
	kv_str(j, "slo", o->slo_text);
	kv_bool(j, "errors_4xx", o->errors_4xx);
	kv_str(j, "scenario", o->scenario ? o->scenario : "generic");
	if (o->scenario) {
		kv_int(j, "users", o->users);
		kv_int(j, "items_per_user", o->items_per_user);
		kv_num(j, "read_ratio", o->read_ratio);
		kv_num(j, "write_ratio", o->write_ratio);
		kv_num(j, "zipf_s", o->zipf_s);
		kv_num(j, "photo_share", o->photo_share);
	}
	kv_str(j, "command", o->cmdline);
	ld_json_obj_end(j);
}

static void machine_obj(struct ld_json *j)
{
	struct utsname u;
	char cpu[256], kernel[300];

	cpu_model(cpu, sizeof(cpu));
	if (uname(&u) == 0)
		snprintf(kernel, sizeof(kernel), "%s %s %s", u.sysname, u.release, u.machine);
	else
		snprintf(kernel, sizeof(kernel), "unknown");
	ld_json_obj_begin(j);
	kv_int(j, "cores", sysconf(_SC_NPROCESSORS_ONLN));
	kv_str(j, "cpu_model", cpu);
	kv_str(j, "kernel", kernel);
	ld_json_obj_end(j);
}

/* target_rps: a closed loop has no target, so null rather than 0. */
static void target_rps(struct ld_json *j, const struct ld_bench_opts *o, double v)
{
	ld_json_key(j, "target_rps");
	if (o->closed)
		ld_json_null(j);
	else
		ld_json_double(j, v);
}

static void results_obj(struct ld_json *j, const struct ld_bench_opts *o,
			const struct ld_bench_result *r, const struct ld_bench_extra *x)
{
	ld_json_obj_begin(j);
	kv_int(j, "requests", r->requests);
	kv_int(j, "scheduled", r->scheduled);
	kv_num(j, "duration_s", r->window_s);
	kv_num(j, "elapsed_s", r->elapsed_s);
	target_rps(j, o, r->target_rps);
	kv_num(j, "achieved_rps", r->achieved_rps);
	kv_int(j, "errors", r->errors);
	kv_num(j, "error_rate", r->requests ? (double)r->errors / (double)r->requests : 0);
	ld_json_key(j, "latency_us");
	latency_obj(j, &r->latency);
	ld_json_key(j, "service_time_us");
	latency_obj(j, &r->service);
	ld_json_key(j, "ok_latency_us");
	latency_obj(j, &r->ok_latency);
	ld_json_key(j, "status");
	ld_json_obj_begin(j);
	for (int s = 0; s < 600; s++) {
		char k[16];
		if (!r->status[s])
			continue;
		snprintf(k, sizeof(k), "%d", s);
		kv_int(j, k, r->status[s]);
	}
	ld_json_obj_end(j);
	ld_json_key(j, "errors_by_kind");
	ld_json_obj_begin(j);
	for (int k = 0; k < LD_ERR_COUNT; k++)
		kv_int(j, ld_bench_err_name((enum ld_bench_err)k), r->err_by_kind[k]);
	ld_json_obj_end(j);
	kv_int(j, "late", r->late);
	kv_int(j, "dropped", r->dropped);
	kv_int(j, "connects", r->connects);
	kv_int(j, "resent", r->resent);
	ld_json_key(j, "retries");
	ld_json_obj_begin(j);
	kv_int(j, "max", o->retries);
	kv_int(j, "sent", r->retries);
	kv_int(j, "denied_by_budget", r->retry_denied);
	kv_int(j, "gave_up", r->retry_gave_up);
	ld_json_obj_end(j);
	kv_int(j, "clamped", r->latency.clamped);
	kv_bool(j, "latency_is_service_time", o->closed);
	kv_bool(j, "interrupted", r->interrupted);
	ld_json_key(j, "slo");
	if (o->slo_text) {
		ld_json_obj_begin(j);
		kv_str(j, "spec", o->slo_text);
		kv_bool(j, "passed", x->slo_broken == 0);
		kv_int(j, "broken", x->slo_broken);
		kv_str(j, "why", x->slo_why);
		ld_json_obj_end(j);
	} else {
		ld_json_null(j);
	}
	ld_json_obj_end(j);
}

static void timeline_arr(struct ld_json *j, const struct ld_bench_opts *o,
			 const struct ld_bench_result *r)
{
	ld_json_arr_begin(j);
	for (int i = 0; i < r->npoints; i++) {
		const struct ld_bench_point *p = &r->timeline[i];

		/* Rounded to what a chart can show, to keep the file small. */
		ld_json_obj_begin(j);
		kv_num(j, "t", round(p->t * 1000) / 1000);
		target_rps(j, o, round(p->target_rps * 10) / 10);
		kv_num(j, "achieved_rps", round(p->achieved_rps * 10) / 10);
		kv_int(j, "count", p->count);
		kv_int(j, "p50_us", p->p50_us);
		kv_int(j, "p90_us", p->p90_us);
		kv_int(j, "p99_us", p->p99_us);
		kv_int(j, "p999_us", p->p999_us);
		kv_int(j, "max_us", p->max_us);
		kv_int(j, "errors", p->errors);
		if (o->retries) {
			ld_json_key(j, "retries");
			ld_json_obj_begin(j);
			kv_int(j, "sent", p->retries);
			kv_int(j, "denied_by_budget", p->retry_denied);
			kv_int(j, "gave_up", p->retry_gave_up);
			ld_json_obj_end(j);
		}
		kv_bool(j, "warmup", p->warmup);
		ld_json_obj_end(j);
	}
	ld_json_arr_end(j);
}

/* The spectrum at fixed points, then the HdrHistogram iteration. */
static void percentiles(struct ld_json *j, const struct ld_bench_result *r)
{
	struct ld_hdr_iter it;

	ld_json_key(j, "percentiles");
	ld_json_arr_begin(j);
	for (size_t i = 0; i < sizeof(spectrum) / sizeof(spectrum[0]); i++) {
		ld_json_obj_begin(j);
		kv_num(j, "p", spectrum[i]);
		kv_int(j, "latency_us", ld_hdr_percentile(&r->latency, spectrum[i]));
		kv_int(j, "service_time_us", ld_hdr_percentile(&r->service, spectrum[i]));
		ld_json_obj_end(j);
	}
	ld_json_arr_end(j);
	ld_json_key(j, "distribution");
	ld_json_arr_begin(j);
	ld_hdr_iter_init(&it, &r->latency, 5);
	while (ld_hdr_iter_next(&it)) {
		ld_json_obj_begin(j);
		kv_num(j, "p", it.percentile);
		kv_int(j, "latency_us", it.value);
		kv_int(j, "count", it.count);
		ld_json_obj_end(j);
	}
	ld_json_arr_end(j);
}

/* mix_and_seed: the ladder scenario's read/write split and its seeding. */
static void mix_and_seed(struct ld_json *j, const struct ld_bench_result *r,
			 const struct ld_bench_extra *x)
{
	static const char *const names[2] = {"read", "write"};

	ld_json_key(j, "mix");
	ld_json_obj_begin(j);
	for (int k = 0; k < 2; k++) {
		ld_json_key(j, names[k]);
		ld_json_obj_begin(j);
		kv_int(j, "requests", r->kind_count[k]);
		kv_num(j, "achieved_rps",
		       r->window_s > 0 ? (double)r->kind_in_window[k] / r->window_s : 0);
		ld_json_key(j, "latency_us");
		latency_obj(j, &r->kind_latency[k]);
		ld_json_obj_end(j);
	}
	ld_json_obj_end(j);
	ld_json_key(j, "seed");
	ld_json_obj_begin(j);
	kv_int(j, "users", x->seeded_users);
	kv_int(j, "items", x->seeded_items);
	kv_num(j, "seconds", x->seed_s);
	ld_json_obj_end(j);
	if (x->photos) {
		ld_json_key(j, "photos");
		ld_json_obj_begin(j);
		kv_int(j, "started", x->photos_started);
		kv_int(j, "completed", x->photos_completed);
		kv_int(j, "failed", x->photos_failed);
		kv_int(j, "bytes_each", x->photo_bytes);
		ld_json_obj_end(j);
	}
}

static void breakpoint_obj(struct ld_json *j, const struct ld_bench_extra *x)
{
	ld_json_key(j, "breakpoint");
	ld_json_obj_begin(j);
	kv_num(j, "max_rate_held", x->max_rate_held);
	ld_json_key(j, "steps");
	ld_json_arr_begin(j);
	for (int i = 0; i < x->nsteps; i++) {
		const struct ld_bench_step *s = &x->steps[i];

		ld_json_obj_begin(j);
		kv_num(j, "rate", s->rate);
		kv_num(j, "achieved_rps", s->achieved_rps);
		kv_int(j, "requests", s->requests);
		kv_int(j, "errors", s->errors);
		kv_num(j, "error_rate", s->error_rate);
		kv_int(j, "p50_us", s->p50_us);
		kv_int(j, "p99_us", s->p99_us);
		kv_int(j, "p999_us", s->p999_us);
		kv_int(j, "max_us", s->max_us);
		kv_bool(j, "held", s->held);
		kv_str(j, "why", s->why);
		ld_json_obj_end(j);
	}
	ld_json_arr_end(j);
	ld_json_obj_end(j);
}

int ld_bench_json(struct ld_buf *b, const struct ld_bench_opts *o, const struct ld_bench_result *r,
		  const struct ld_bench_extra *x)
{
	struct ld_json j;
	int rc;

	ld_json_init(&j, b);
	ld_json_obj_begin(&j);
	kv_str(&j, "schema", "ladder-bench/1");
	ld_json_key(&j, "config");
	config_obj(&j, o);
	ld_json_key(&j, "machine");
	machine_obj(&j);
	ld_json_key(&j, "results");
	results_obj(&j, o, r, x);
	ld_json_key(&j, "timeline");
	timeline_arr(&j, o, r);
	percentiles(&j, r);
	if (x->mix)
		mix_and_seed(&j, r, x);
	if (x->nsteps)
		breakpoint_obj(&j, x);
	if (x->has_cache) {
		ld_json_key(&j, "cache");
		ld_json_obj_begin(&j);
		ld_cache_stat_json(&j, &x->cache);
		ld_json_obj_end(&j);
	}
	if (x->profile) {
		ld_json_key(&j, "profile");
		ld_profile_json(&j, x->profile);
	}
	ld_json_obj_end(&j);
	rc = ld_json_finish(&j);
	if (rc == 0)
		rc = ld_buf_putc(b, '\n');
	return rc;
}

static void fmt_us(char *out, size_t n, int64_t us)
{
	if (us < 1000)
		snprintf(out, n, "%lldus", (long long)us);
	else if (us < 1000000)
		snprintf(out, n, "%.2fms", (double)us / 1e3);
	else
		snprintf(out, n, "%.3fs", (double)us / 1e6);
}

static void lat_row(FILE *f, const char *name, const struct ld_hdr *h)
{
	static const double ps[] = {50, 90, 95, 99, 99.9, 99.99};
	char v[32];

	fprintf(f, "  %-14s", name);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		fmt_us(v, sizeof(v), ld_hdr_percentile(h, ps[i]));
		fprintf(f, " %9s", v);
	}
	fmt_us(v, sizeof(v), ld_hdr_max(h));
	fprintf(f, " %9s", v);
	fmt_us(v, sizeof(v), (int64_t)ld_hdr_mean(h));
	fprintf(f, " %9s\n", v);
}

void ld_bench_summary(FILE *f, const struct ld_bench_opts *o, const struct ld_bench_result *r,
		      const struct ld_bench_extra *x)
{
	double er = r->requests ? (double)r->errors / (double)r->requests : 0;

	fprintf(f, "\nladder bench: %s, %s\n", o->nurls ? o->urls[0] : "",
		o->closed ? "closed loop (full speed)" : "open loop");
	if (o->closed)
		fprintf(f, "  note: closed loop waits for each answer before the next request, so "
			   "latency here is service time only.\n");
	fprintf(f, "  requests   %lld in %.2fs measured (%.2fs warm-up excluded)%s\n",
		(long long)r->requests, r->window_s, o->warmup_s,
		r->interrupted ? "  INTERRUPTED" : "");
	if (o->closed)
		fprintf(f, "  rate       achieved %.1f/s\n", r->achieved_rps);
	else
		fprintf(f, "  rate       target %.1f/s  achieved %.1f/s  (scheduled %lld)\n",
			r->target_rps, r->achieved_rps, (long long)r->scheduled);
	fprintf(f, "  %-14s %9s %9s %9s %9s %9s %9s %9s %9s\n", "latency", "p50", "p90", "p95",
		"p99", "p99.9", "p99.99", "max", "mean");
	lat_row(f, o->closed ? "service" : "corrected", &r->latency);
	if (!o->closed)
		lat_row(f, "service", &r->service);
	if (x->mix) {
		lat_row(f, "read", &r->kind_latency[0]);
		lat_row(f, "write", &r->kind_latency[1]);
		fprintf(f, "  mix        read %lld  write %lld\n", (long long)r->kind_count[0],
			(long long)r->kind_count[1]);
		if (x->photos)
			fprintf(f,
				"  photos     started %lld  completed %lld  failed %lld  (%lld "
				"bytes each)\n",
				(long long)x->photos_started, (long long)x->photos_completed,
				(long long)x->photos_failed, (long long)x->photo_bytes);
	}
	if (x->has_cache) {
		double hr = ld_cache_stat_ratio(&x->cache);

		if (hr >= 0)
			fprintf(
			    f,
			    "  cache      hit ratio %.1f%%  (L1 hits %.0f, L2 hits %.0f, of %.0f "
			    "look-ups; the server's /metrics)\n",
			    100 * hr, x->cache.hits[LD_CSTAT_L1], x->cache.hits[LD_CSTAT_L2],
			    ld_cache_stat_lookups(&x->cache));
		else
			fprintf(f, "  cache      no look-ups in the run (the server's /metrics)\n");
	}
	fprintf(f, "  status    ");
	for (int s = 0; s < 600; s++)
		if (r->status[s])
			fprintf(f, " %d:%lld", s, (long long)r->status[s]);
	fprintf(f, "\n  errors     %lld (%.3f%%)", (long long)r->errors, er * 100);
	for (int k = 0; k < LD_ERR_COUNT; k++)
		if (r->err_by_kind[k])
			fprintf(f, "  %s:%lld", ld_bench_err_name((enum ld_bench_err)k),
				(long long)r->err_by_kind[k]);
	fprintf(f, "\n");
	if (!o->closed)
		fprintf(f, "  late       %lld sent >1ms after their time   dropped %lld\n",
			(long long)r->late, (long long)r->dropped);
	if (r->resent)
		fprintf(f,
			"  resent     %lld sent again on another connection: the server closed "
			"an idle one as they went out (not retries)\n",
			(long long)r->resent);
	if (o->retries)
		fprintf(f,
			"  retries    %lld sent   %lld denied by the budget   %lld given up "
			"(statuses above are final outcomes)\n",
			(long long)r->retries, (long long)r->retry_denied,
			(long long)r->retry_gave_up);
	if (r->latency.clamped)
		fprintf(f, "  clamped    %lld values beyond the histogram range\n",
			(long long)r->latency.clamped);
	if (x->nsteps) {
		fprintf(f, "  breakpoint %-8s %10s %9s %9s %8s\n", "rate", "achieved", "p99",
			"p99.9", "errors");
		for (int i = 0; i < x->nsteps; i++) {
			const struct ld_bench_step *s = &x->steps[i];
			char a[32], b[32];
			fmt_us(a, sizeof(a), s->p99_us);
			fmt_us(b, sizeof(b), s->p999_us);
			fprintf(f, "             %-8.0f %10.1f %9s %9s %7.3f%% %s\n", s->rate,
				s->achieved_rps, a, b, s->error_rate * 100,
				s->held ? "held" : s->why);
		}
		fprintf(f, "  max rate that held: %.0f/s\n", x->max_rate_held);
	}
	if (o->slo_text)
		fprintf(f, "  slo        %s: %s%s\n", o->slo_text,
			x->slo_broken ? "BROKEN - " : "passed", x->slo_broken ? x->slo_why : "");
	if (x->profile)
		ld_profile_text(f, x->profile);
}

int ld_bench_write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f)
		return -errno;
	if (fwrite(data, 1, len, f) != len)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	return rc;
}
