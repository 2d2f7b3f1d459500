/*
 * report.c - summary table, JSON report and .hgrm/HTML files of a run.
 */
#include "bench/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const double spectrum[] = {0,	 10,   20,    30,    40,     50,     55,      60,
				  65,	 70,   75,    80,    85,     90,     92.5,    95,
				  96.0,	 97.0, 97.5,  98.0,  98.5,   99.0,   99.25,   99.5,
				  99.75, 99.9, 99.95, 99.99, 99.995, 99.999, 99.9999, 100};

int ld_bench_json_str(struct ld_buf *out, const char *s)
{
	int rc = ld_buf_putc(out, '"');

	for (; rc == 0 && s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			rc = ld_buf_printf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			rc = ld_buf_printf(out, "\\u%04x", c);
		else
			rc = ld_buf_putc(out, (char)c);
	}
	if (rc == 0)
		rc = ld_buf_putc(out, '"');
	return rc;
}

static void num(struct ld_buf *b, double v)
{
	if (isfinite(v))
		ld_buf_printf(b, "%.10g", v);
	else
		ld_buf_puts(b, "null");
}

static void key(struct ld_buf *b, const char *k, bool *first)
{
	if (!*first)
		ld_buf_putc(b, ',');
	*first = false;
	ld_bench_json_str(b, k);
	ld_buf_putc(b, ':');
}

static void kv_num(struct ld_buf *b, const char *k, double v, bool *first)
{
	key(b, k, first);
	num(b, v);
}

static void kv_int(struct ld_buf *b, const char *k, long long v, bool *first)
{
	key(b, k, first);
	ld_buf_printf(b, "%lld", v);
}

static void kv_str(struct ld_buf *b, const char *k, const char *v, bool *first)
{
	key(b, k, first);
	if (v)
		ld_bench_json_str(b, v);
	else
		ld_buf_puts(b, "null");
}

static void kv_bool(struct ld_buf *b, const char *k, bool v, bool *first)
{
	key(b, k, first);
	ld_buf_puts(b, v ? "true" : "false");
}

static void latency_obj(struct ld_buf *b, const struct ld_hdr *h)
{
	bool f = true;

	ld_buf_putc(b, '{');
	kv_int(b, "count", h->total, &f);
	kv_int(b, "min", ld_hdr_min(h), &f);
	kv_num(b, "mean", ld_hdr_mean(h), &f);
	kv_int(b, "p50", ld_hdr_percentile(h, 50), &f);
	kv_int(b, "p90", ld_hdr_percentile(h, 90), &f);
	kv_int(b, "p95", ld_hdr_percentile(h, 95), &f);
	kv_int(b, "p99", ld_hdr_percentile(h, 99), &f);
	kv_int(b, "p999", ld_hdr_percentile(h, 99.9), &f);
	kv_int(b, "p9999", ld_hdr_percentile(h, 99.99), &f);
	kv_int(b, "max", ld_hdr_max(h), &f);
	kv_num(b, "stddev", ld_hdr_stddev(h), &f);
	ld_buf_putc(b, '}');
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

static void config_obj(struct ld_buf *b, const struct ld_bench_opts *o)
{
	bool f = true;

	ld_buf_putc(b, '{');
	key(b, "urls", &f);
	ld_buf_putc(b, '[');
	for (int i = 0; i < o->nurls; i++) {
		if (i)
			ld_buf_putc(b, ',');
		ld_bench_json_str(b, o->urls[i]);
	}
	ld_buf_putc(b, ']');
	kv_str(b, "mode", o->closed ? "closed" : "open", &f);
	kv_str(b, "method", o->method, &f);
	key(b, "headers", &f);
	ld_buf_putc(b, '[');
	for (int i = 0; i < o->nheaders; i++) {
		if (i)
			ld_buf_putc(b, ',');
		ld_bench_json_str(b, o->headers[i]);
	}
	ld_buf_putc(b, ']');
	kv_str(b, "body_file", o->body_file, &f);
	key(b, "rate", &f);
	if (o->closed)
		ld_buf_puts(b, "\"max\"");
	else
		num(b, o->rate);
	kv_num(b, "duration_s", o->duration_s, &f);
	kv_num(b, "warmup_s", o->warmup_s, &f);
	kv_num(b, "timeout_s", o->timeout_s, &f);
	kv_int(b, "connections", o->connections, &f);
	kv_int(b, "max_connections", o->max_connections, &f);
	kv_int(b, "threads", o->threads, &f);
	kv_str(b, "arrivals", o->poisson ? "poisson" : "constant", &f);
	kv_int(b, "seed", (long long)o->seed, &f);
	kv_str(b, "stages", o->stages, &f);
	kv_num(b, "start_rate", o->start_rate, &f);
	kv_str(b, "preset", o->preset, &f);
	kv_str(b, "breakpoint", o->breakpoint, &f);
	kv_num(b, "step_duration_s", o->step_s, &f);
	kv_str(b, "slo", o->slo_text, &f);
	kv_bool(b, "errors_4xx", o->errors_4xx, &f);
	kv_str(b, "scenario", o->scenario ? o->scenario : "generic", &f);
	if (o->scenario) {
		kv_int(b, "users", o->users, &f);
		kv_int(b, "items_per_user", o->items_per_user, &f);
		kv_num(b, "read_ratio", o->read_ratio, &f);
		kv_num(b, "write_ratio", o->write_ratio, &f);
		kv_num(b, "zipf_s", o->zipf_s, &f);
	}
	kv_str(b, "command", o->cmdline, &f);
	ld_buf_putc(b, '}');
}

int ld_bench_json(struct ld_buf *b, const struct ld_bench_opts *o, const struct ld_bench_result *r,
		  const struct ld_bench_extra *x)
{
	struct utsname u;
	char cpu[256], kernel[300];
	bool f = true, g;
	struct ld_hdr_iter it;

	cpu_model(cpu, sizeof(cpu));
	if (uname(&u) == 0)
		snprintf(kernel, sizeof(kernel), "%s %s %s", u.sysname, u.release, u.machine);
	else
		snprintf(kernel, sizeof(kernel), "unknown");
	ld_buf_putc(b, '{');
	kv_str(b, "schema", "ladder-bench/1", &f);
	key(b, "config", &f);
	config_obj(b, o);
	key(b, "machine", &f);
	g = true;
	ld_buf_putc(b, '{');
	kv_int(b, "cores", sysconf(_SC_NPROCESSORS_ONLN), &g);
	kv_str(b, "cpu_model", cpu, &g);
	kv_str(b, "kernel", kernel, &g);
	ld_buf_putc(b, '}');

	key(b, "results", &f);
	g = true;
	ld_buf_putc(b, '{');
	kv_int(b, "requests", r->requests, &g);
	kv_int(b, "scheduled", r->scheduled, &g);
	kv_num(b, "duration_s", r->window_s, &g);
	kv_num(b, "elapsed_s", r->elapsed_s, &g);
	key(b, "target_rps", &g);
	if (o->closed)
		ld_buf_puts(b, "null");
	else
		num(b, r->target_rps);
	kv_num(b, "achieved_rps", r->achieved_rps, &g);
	kv_int(b, "errors", r->errors, &g);
	kv_num(b, "error_rate", r->requests ? (double)r->errors / (double)r->requests : 0, &g);
	key(b, "latency_us", &g);
	latency_obj(b, &r->latency);
	key(b, "service_time_us", &g);
	latency_obj(b, &r->service);
	key(b, "status", &g);
	ld_buf_putc(b, '{');
	{
		bool h = true;
		for (int s = 0; s < 600; s++) {
			char k[16];
			if (!r->status[s])
				continue;
			snprintf(k, sizeof(k), "%d", s);
			kv_int(b, k, r->status[s], &h);
		}
	}
	ld_buf_putc(b, '}');
	key(b, "errors_by_kind", &g);
	ld_buf_putc(b, '{');
	{
		bool h = true;
		for (int k = 0; k < LD_ERR_COUNT; k++)
			kv_int(b, ld_bench_err_name((enum ld_bench_err)k), r->err_by_kind[k], &h);
	}
	ld_buf_putc(b, '}');
	kv_int(b, "late", r->late, &g);
	kv_int(b, "dropped", r->dropped, &g);
	kv_int(b, "connects", r->connects, &g);
	kv_int(b, "clamped", r->latency.clamped, &g);
	kv_bool(b, "latency_is_service_time", o->closed, &g);
	kv_bool(b, "interrupted", r->interrupted, &g);
	key(b, "slo", &g);
	if (o->slo_text) {
		bool h = true;
		ld_buf_putc(b, '{');
		kv_str(b, "spec", o->slo_text, &h);
		kv_bool(b, "passed", x->slo_broken == 0, &h);
		kv_int(b, "broken", x->slo_broken, &h);
		kv_str(b, "why", x->slo_why, &h);
		ld_buf_putc(b, '}');
	} else {
		ld_buf_puts(b, "null");
	}
	ld_buf_putc(b, '}');

	key(b, "timeline", &f);
	ld_buf_putc(b, '[');
	for (int i = 0; i < r->npoints; i++) {
		const struct ld_bench_point *p = &r->timeline[i];
		bool h = true;
		if (i)
			ld_buf_putc(b, ',');
		ld_buf_putc(b, '{');
		kv_num(b, "t", round(p->t * 1000) / 1000, &h);
		key(b, "target_rps", &h);
		if (o->closed)
			ld_buf_puts(b, "null");
		else
			num(b, round(p->target_rps * 10) / 10);
		kv_num(b, "achieved_rps", round(p->achieved_rps * 10) / 10, &h);
		kv_int(b, "count", p->count, &h);
		kv_int(b, "p50_us", p->p50_us, &h);
		kv_int(b, "p90_us", p->p90_us, &h);
		kv_int(b, "p99_us", p->p99_us, &h);
		kv_int(b, "p999_us", p->p999_us, &h);
		kv_int(b, "max_us", p->max_us, &h);
		kv_int(b, "errors", p->errors, &h);
		kv_bool(b, "warmup", p->warmup, &h);
		ld_buf_putc(b, '}');
	}
	ld_buf_putc(b, ']');

	/* The spectrum at fixed points, then the HdrHistogram iteration. */
	key(b, "percentiles", &f);
	ld_buf_putc(b, '[');
	for (size_t i = 0; i < sizeof(spectrum) / sizeof(spectrum[0]); i++) {
		bool h = true;
		if (i)
			ld_buf_putc(b, ',');
		ld_buf_putc(b, '{');
		kv_num(b, "p", spectrum[i], &h);
		kv_int(b, "latency_us", ld_hdr_percentile(&r->latency, spectrum[i]), &h);
		kv_int(b, "service_time_us", ld_hdr_percentile(&r->service, spectrum[i]), &h);
		ld_buf_putc(b, '}');
	}
	ld_buf_putc(b, ']');
	key(b, "distribution", &f);
	ld_buf_putc(b, '[');
	ld_hdr_iter_init(&it, &r->latency, 5);
	g = true;
	while (ld_hdr_iter_next(&it)) {
		bool h = true;
		if (!g)
			ld_buf_putc(b, ',');
		g = false;
		ld_buf_putc(b, '{');
		kv_num(b, "p", it.percentile, &h);
		kv_int(b, "latency_us", it.value, &h);
		kv_int(b, "count", it.count, &h);
		ld_buf_putc(b, '}');
	}
	ld_buf_putc(b, ']');

	if (x->mix) {
		static const char *const names[2] = {"read", "write"};
		key(b, "mix", &f);
		ld_buf_putc(b, '{');
		for (int k = 0; k < 2; k++) {
			bool h = true;
			if (k)
				ld_buf_putc(b, ',');
			ld_bench_json_str(b, names[k]);
			ld_buf_puts(b, ":{");
			kv_int(b, "requests", r->kind_count[k], &h);
			kv_num(b, "achieved_rps",
			       r->window_s > 0 ? (double)r->kind_in_window[k] / r->window_s : 0,
			       &h);
			key(b, "latency_us", &h);
			latency_obj(b, &r->kind_latency[k]);
			ld_buf_putc(b, '}');
		}
		ld_buf_putc(b, '}');
		key(b, "seed", &f);
		g = true;
		ld_buf_putc(b, '{');
		kv_int(b, "users", x->seeded_users, &g);
		kv_int(b, "items", x->seeded_items, &g);
		kv_num(b, "seconds", x->seed_s, &g);
		ld_buf_putc(b, '}');
	}
	if (x->nsteps) {
		key(b, "breakpoint", &f);
		g = true;
		ld_buf_putc(b, '{');
		kv_num(b, "max_rate_held", x->max_rate_held, &g);
		key(b, "steps", &g);
		ld_buf_putc(b, '[');
		for (int i = 0; i < x->nsteps; i++) {
			const struct ld_bench_step *s = &x->steps[i];
			bool h = true;
			if (i)
				ld_buf_putc(b, ',');
			ld_buf_putc(b, '{');
			kv_num(b, "rate", s->rate, &h);
			kv_num(b, "achieved_rps", s->achieved_rps, &h);
			kv_int(b, "requests", s->requests, &h);
			kv_int(b, "errors", s->errors, &h);
			kv_num(b, "error_rate", s->error_rate, &h);
			kv_int(b, "p50_us", s->p50_us, &h);
			kv_int(b, "p99_us", s->p99_us, &h);
			kv_int(b, "p999_us", s->p999_us, &h);
			kv_int(b, "max_us", s->max_us, &h);
			kv_bool(b, "held", s->held, &h);
			kv_str(b, "why", s->why, &h);
			ld_buf_putc(b, '}');
		}
		ld_buf_puts(b, "]}");
	}
	ld_buf_puts(b, "}\n");
	return b->len && b->data[b->len - 1] == '\n' ? 0 : -E2BIG;
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
