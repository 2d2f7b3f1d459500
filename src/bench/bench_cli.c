/*
 * bench_cli.c - `ladder bench`: flags, the generic workload, the run modes
 * (constant, stages, presets, breakpoint, closed loop), the live line and
 * the reports. Exit status: 0 done, 1 runtime failure, 2 bad usage (the
 * message names the flag), 3 an --slo threshold broken.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/config.h"
#include "base/file.h"
#include "bench/bench.h"
#include "bench/engine.h"
#include "bench/opts.h"
#include "bench/profile.h"
#include "bench/report.h"
#include "bench/cachestat.h"
#include "bench/scenario.h"
#include "http/client.h"

#define BODY_FILE_MAX (16 * 1024 * 1024)
#define REQ_MAX	      (BODY_FILE_MAX + 64 * 1024)

static const char about_text[] =
    "Requests follow a schedule and never wait for earlier answers; latency is\n"
    "measured from each request's intended send time, so a stalled server shows in\n"
    "the percentiles (no coordinated omission). Service time (actual send to answer)\n"
    "is reported beside it. Durations take us ms s m h; rates are per second.\n";

static const char examples_text[] =
    "  ladder bench --rate 1000 --duration 30s http://127.0.0.1:8080/healthz\n"
    "  ladder bench --rate 2000 --poisson --warmup 5s --duration 1m --json r.json URL\n"
    "  ladder bench --rate max -c 64 --duration 10s http://127.0.0.1:8080/\n"
    "  ladder bench --stages 30s:100,1m:1000,30s:0 --html ramp.html URL\n"
    "  ladder bench --preset spike --rate 200 --duration 2m URL\n"
    "  ladder bench --preset soak --rate 300 --duration 2h --warmup 1m URL\n"
    "  ladder bench --breakpoint 500:500:20000 --step-duration 10s \\\n"
    "               --slo 'p99<5ms,errors<0.1%' URL\n"
    "  ladder bench --rate 500 --duration 30s --slo 'p99<10ms' URL   (CI: exit 3 = broken)\n"
    "  ladder bench -X POST -H 'Content-Type: application/json' --body-file b.json \\\n"
    "               --rate 100 URL\n"
    "  ladder bench --scenario ladder --users 50 --rate 1000 --duration 1m \\\n"
    "               --read-write-ratio 100:1 --zipf-s 1.1 http://127.0.0.1:8080\n"
    "  ladder bench --scenario ladder --photo-share 0.1 --rate 200 http://127.0.0.1:8080\n";

static const char footer_text[] =
    "exit status: 0 done, 1 runtime failure, 2 bad usage, 3 an --slo threshold broken\n";

/* ---- value parsers of the options table ---------------------------------- */

#define OPTS(o)	     ((struct ld_bench_opts *)(o))
#define DBL(o, base) ((double *)(void *)((char *)(base) + (o)->off))

/* WHY writes the reason a value is refused and is -EINVAL. */
#define WHY(...) (snprintf(why, n, __VA_ARGS__), -EINVAL)

static int p_rate(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct ld_bench_opts *b = OPTS(base);

	if (!strcasecmp(v, "max")) {
		b->closed = true;
		return 0;
	}
	if (ld_parse_rate(v, &b->rate) || b->rate <= 0)
		return WHY("'%s' is not a rate (a number > 0 or max)", v);
	b->closed = false;
	return 0;
}

/* p_any_rate: a rate >= 0 (o->data is NULL) */
static int p_any_rate(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (ld_parse_rate(v, DBL(o, base)))
		return WHY("'%s' is not a rate", v);
	return 0;
}

/* p_duration: o->data says the range: "+" (> 0), "0" (>= 0), "t" (0, 1h]. */
static int p_duration(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	const char *kind = o->data;
	double d;

	if (ld_parse_duration(v, &d) || (kind[0] != '0' && d <= 0) || (kind[0] == 't' && d > 3600))
		return kind[0] == 't'	? WHY("'%s' is not a duration in (0, 1h]", v)
		       : kind[0] == '+' ? WHY("'%s' is not a duration (e.g. 30s, 2m)", v)
					: WHY("'%s' is not a duration", v);
	*DBL(o, base) = d;
	return 0;
}

static int p_arrivals(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (!strcmp(v, "poisson"))
		OPTS(base)->poisson = true;
	else if (!strcmp(v, "constant"))
		OPTS(base)->poisson = false;
	else
		return WHY("'%s' is neither constant nor poisson", v);
	return 0;
}

static int p_preset(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (strcmp(v, "spike") && strcmp(v, "soak"))
		return WHY("'%s' is not a preset (spike, soak)", v);
	OPTS(base)->preset = v;
	return 0;
}

static int p_breakpoint(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct ld_bench_opts *b = OPTS(base);

	b->breakpoint = v;
	if (sscanf(v, "%lf:%lf:%lf", &b->bp_start, &b->bp_step, &b->bp_max) != 3 ||
	    !(b->bp_start > 0) || !(b->bp_step > 0) || b->bp_max < b->bp_start)
		return WHY("'%s' is not START:STEP:MAX (rates > 0)", v);
	if ((b->bp_max - b->bp_start) / b->bp_step >= LD_BENCH_STEPS_MAX)
		return WHY("'%s' makes more than 256 steps", v);
	return 0;
}

static int p_slo(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	OPTS(base)->slo_text = v;
	return ld_slo_parse(&OPTS(base)->slo, v, why, n) ? -EINVAL : 0;
}

static int p_method(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	const char *p;

	for (p = v; *p; p++)
		if (!(*p >= 'A' && *p <= 'Z') && *p != '-' && *p != '_')
			return WHY("'%s' is not a method token", v);
	if (!*v)
		return WHY("empty method%s", "");
	OPTS(base)->method = v;
	return 0;
}

static int p_header(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct ld_bench_opts *b = OPTS(base);
	const char *colon = strchr(v, ':'), *p;

	if (!colon || colon == v || strpbrk(v, "\r\n"))
		return WHY("'%s' is not 'Name: value'", v);
	for (p = v; p < colon; p++)
		if (*p == ' ' || *p == '\t')
			return WHY("'%s': no space before the colon", v);
	if (!strncasecmp(v, "host:", 5) || !strncasecmp(v, "content-length:", 15))
		return WHY("'%s' is set by ladder bench itself", v);
	if (b->nheaders == LD_BENCH_HEADERS_MAX)
		return WHY("more than %s headers", "64");
	b->headers[b->nheaders++] = v;
	return 0;
}

static int p_scenario(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (strcmp(v, "ladder"))
		return WHY("'%s' is not a scenario (ladder)", v);
	OPTS(base)->scenario = v;
	return 0;
}

static int p_ratio(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct ld_bench_opts *b = OPTS(base);
	double r, w;

	if (sscanf(v, "%lf:%lf", &r, &w) != 2 || !(r >= 0) || !(w >= 0) || r + w <= 0 ||
	    !isfinite(r) || !isfinite(w))
		return WHY("'%s' is not READ:WRITE (e.g. 100:1)", v);
	b->read_ratio = r;
	b->write_ratio = w;
	return 0;
}

static int p_interval(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	double d;

	if (ld_parse_duration(v, &d) || d < 0.1 || d > 60)
		return WHY("'%s' is not a duration in 100ms..60s", v);
	OPTS(base)->profile_interval_s = d;
	return 0;
}

static int p_zipf(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	char *end;
	double z = strtod(v, &end);

	if (*end || end == v || !(z >= 0) || z > 10)
		return WHY("'%s' is not an exponent in 0..10", v);
	OPTS(base)->zipf_s = z;
	return 0;
}

static int p_share(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	char *end;
	double f = strtod(v, &end);

	if (*end || end == v || !(f >= 0) || f >= 1)
		return WHY("'%s' is not a share from 0 to under 1", v);
	OPTS(base)->photo_share = f;
	return 0;
}

/* p_percent: a share written "10%" or "0.1", from 0 to 100%. */
static int p_percent(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	char *end;
	double f = strtod(v, &end);

	if (end != v && *end == '%' && !end[1])
		f /= 100;
	else if (*end || end == v)
		f = -1;
	if (!(f >= 0) || f > 1)
		return WHY("'%s' is not a share from 0%% to 100%% (as 10%% or 0.1)", v);
	*DBL(o, base) = f;
	return 0;
}

static int p_url(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct ld_bench_opts *b = OPTS(base);

	if (b->nurls == LD_BENCH_URLS_MAX)
		return WHY("more than %s URLs", "64");
	b->urls[b->nurls++] = v;
	return 0;
}

/* ---- the options table -------------------------------------------------- */

#define O(field)                                                                                   \
	offsetof(struct ld_bench_opts, field), sizeof(((struct ld_bench_opts *)0)->field), 0

static const struct ld_opt load_opts[] = {
    {"rate", 'r', NULL, NULL, LD_OPT_FN, O(rate), "max", 0, 0, NULL, 0, p_rate, NULL, "N|max",
     "target requests/s, or max: closed loop at full speed"},
    {"duration", 'd', NULL, NULL, LD_OPT_FN, O(duration_s), "10s", 0, 0, NULL, 0, p_duration, "+",
     "D", "run length"},
    {"warmup", 0, NULL, NULL, LD_OPT_FN, O(warmup_s), "0s", 0, 0, NULL, 0, p_duration, "0", "D",
     "leading time excluded from the figures"},
    {"arrivals", 0, NULL, NULL, LD_OPT_FN, O(poisson), "constant", 0, 0, NULL, 0, p_arrivals, NULL,
     "KIND", "constant or poisson (seeded by --seed)"},
    {"poisson", 0, NULL, NULL, LD_OPT_SWITCH, O(poisson), NULL, 0, 0, NULL, 0, NULL, NULL, NULL,
     "same as --arrivals poisson"},
    {"seed", 0, NULL, NULL, LD_OPT_U64, O(seed), "1", 0, LONG_MAX, NULL, 0, NULL, NULL, "N",
     "PRNG seed for arrivals and key choice"},
    {"stages", 0, NULL, NULL, LD_OPT_ARG, O(stages), NULL, 0, 0, NULL, 0, NULL, NULL, "LIST",
     "ramp: \"30s:100,1m:1000,30s:0\" (linear between targets, from --start-rate)"},
    {"start-rate", 0, NULL, NULL, LD_OPT_FN, O(start_rate), "0", 0, 0, NULL, 0, p_any_rate, NULL,
     "N", "where --stages starts"},
    {"preset", 0, NULL, NULL, LD_OPT_FN, O(preset), NULL, 0, 0, NULL, 0, p_preset, NULL, "NAME",
     "spike: 35% base rate, 10x for 20% with 5% ramps, base;\n"
     "soak: constant --rate for --duration (set it long)"},
    {"breakpoint", 0, NULL, NULL, LD_OPT_FN, O(breakpoint), NULL, 0, 0, NULL, 0, p_breakpoint, NULL,
     "S:STEP:MAX",
     "step the rate from S by STEP up to MAX, each for --step-duration,\n"
     "until --slo breaks; reports the highest rate that held"},
    {"step-duration", 0, NULL, NULL, LD_OPT_FN, O(step_s), "10s", 0, 0, NULL, 0, p_duration, "+",
     "D", "length of one breakpoint step"},
    {"slo", 0, NULL, NULL, LD_OPT_FN, O(slo_text), NULL, 0, 0, NULL, 0, p_slo, NULL, "SPEC",
     "thresholds, e.g. 'p99<5ms,p99.9<20ms,errors<0.1%,rps>900';\n"
     "exit status 3 when one breaks (service.p99 for service time;\n"
     "a bare number is ms)"},
};

static const struct ld_opt conn_opts[] = {
    {"connections", 'c', NULL, NULL, LD_OPT_INT, O(connections), "16", 1, 100000, NULL, 0, NULL,
     NULL, "N", "connections opened at the start"},
    {"max-connections", 0, NULL, NULL, LD_OPT_INT, O(max_connections), NULL, 1, 100000, NULL, 0,
     NULL, NULL, "N", "open loop: open more, up to N, while requests wait (at least -c)"},
    {"threads", 't', NULL, NULL, LD_OPT_INT, O(threads), "1", 1, 256, NULL, 0, NULL, NULL, "N",
     "event-loop threads"},
    {"timeout", 0, NULL, NULL, LD_OPT_FN, O(timeout_s), "10s", 0, 0, NULL, 0, p_duration, "t", "D",
     "per request; a timeout counts as an error and as at least D\n"
     "in the latency figures"},
    {"errors-4xx", 0, NULL, NULL, LD_OPT_SWITCH, O(errors_4xx), NULL, 0, 0, NULL, 0, NULL, NULL,
     NULL, "count 4xx answers as errors (5xx always are)"},
    {"retries", 0, NULL, NULL, LD_OPT_INT, O(retries), "0", 0, 10, NULL, 0, NULL, NULL, "N",
     "retry an idempotent request (GET, HEAD, PUT, DELETE, POST with\n"
     "Idempotency-Key) up to N times on 429, 503 or a failed connection"},
    {"retry-base", 0, NULL, NULL, LD_OPT_FN, O(retry_base_s), "50ms", 0, 0, NULL, 0, p_duration,
     "t", "D", "first retry waits random(0, D); doubling per retry (full jitter)"},
    {"retry-cap", 0, NULL, NULL, LD_OPT_FN, O(retry_cap_s), "2s", 0, 0, NULL, 0, p_duration, "t",
     "D", "longest backoff (a Retry-After is the floor)"},
    {"retry-budget", 0, NULL, NULL, LD_OPT_FN, O(retry_budget), "10%", 0, 0, NULL, 0, p_percent,
     NULL, "P", "retries at most P of the requests (token bucket)"},
};

static const struct ld_opt req_opts[] = {
    {NULL, 0, NULL, NULL, LD_OPT_FN, O(urls), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_url, NULL, "URL",
     "the URLs"},
    {"method", 'X', NULL, NULL, LD_OPT_FN, O(method), "GET", 0, 0, NULL, 0, p_method, NULL, "M",
     "GET, POST, ..."},
    {"header", 'H', NULL, NULL, LD_OPT_FN, O(headers), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_header,
     NULL, "'N: v'", "extra header"},
    {"body-file", 0, NULL, NULL, LD_OPT_ARG, O(body_file), NULL, 0, 0, NULL, 0, NULL, NULL, "F",
     "request body (Content-Length is set)"},
};

static const struct ld_opt scen_opts[] = {
    {"scenario", 0, NULL, NULL, LD_OPT_FN, O(scenario), NULL, 0, 0, NULL, 0, p_scenario, NULL,
     "NAME", "ladder: sign up users, create items, then read and write them"},
    {"users", 0, NULL, NULL, LD_OPT_INT, O(users), "50", 1, 10000000, NULL, 0, NULL, NULL, "N",
     "users to create first (argon2id makes this slow)"},
    {"items-per-user", 0, NULL, NULL, LD_OPT_INT, O(items_per_user), "5", 1, 10000, NULL, 0, NULL,
     NULL, "M", "items per user"},
    {"seed-concurrency", 0, NULL, NULL, LD_OPT_INT, O(seed_concurrency), "8", 1, 1024, NULL, 0,
     NULL, NULL, "N", "requests in flight while seeding"},
    {"read-write-ratio", 0, NULL, NULL, LD_OPT_FN, O(read_ratio), "100:1", 0, 0, NULL, 0, p_ratio,
     NULL, "R:W", "reads per writes"},
    {"zipf-s", 0, NULL, NULL, LD_OPT_FN, O(zipf_s), "1.0", 0, 0, NULL, 0, p_zipf, NULL, "S",
     "skew of user and item popularity (0 = uniform)"},
    {"photo-share", 0, NULL, NULL, LD_OPT_FN, O(photo_share), "0", 0, 0, NULL, 0, p_share, NULL,
     "F",
     "share of the mix that is photo upload steps:\n"
     "POST /v1/photos, PUT the bytes, complete"},
    {"photo-file", 0, NULL, NULL, LD_OPT_ARG, O(photo_file), NULL, 0, 0, NULL, 0, NULL, NULL,
     "FILE", "the photo uploaded (at most 48 KiB; default: a 640x480 JPEG made here)"},
};

static const struct ld_opt out_opts[] = {
    {"quiet", 'q', NULL, NULL, LD_OPT_SWITCH, O(quiet), NULL, 0, 0, NULL, 0, NULL, NULL, NULL,
     "no live line"},
    {"json", 0, NULL, NULL, LD_OPT_ARG, O(json_path), NULL, 0, 0, NULL, 0, NULL, NULL, "FILE",
     "report for `ladder plan` (schema ladder-bench/1)"},
    {"html", 0, NULL, NULL, LD_OPT_ARG, O(html_path), NULL, 0, 0, NULL, 0, NULL, NULL, "FILE",
     "self-contained HTML report with SVG charts"},
    {"hgrm", 0, NULL, NULL, LD_OPT_ARG, O(hgrm_path), NULL, 0, 0, NULL, 0, NULL, NULL, "FILE",
     "HdrHistogram percentile distribution (ms)"},
    {"profile", 0, NULL, NULL, LD_OPT_ARG, O(profile_url), NULL, 0, 0, NULL, 0, NULL, NULL, "URL",
     "sample the server's /debug/stats (URL = its base, same host)\n"
     "and /proc while the load runs; print a bottleneck report\n"
     "(also in --json and --html)"},
    {"profile-interval", 0, NULL, NULL, LD_OPT_FN, O(profile_interval_s), "1s", 0, 0, NULL, 0,
     p_interval, NULL, "D", "sampling period of --profile"},
};

#define SEC(name, opts, help)                                                                      \
	{                                                                                          \
		name, opts, sizeof(opts) / sizeof(opts[0]), help                                   \
	}

static const struct ld_opt_section bench_sections[] = {
    SEC("load", load_opts, NULL),
    SEC("connections", conn_opts, NULL),
    SEC("requests", req_opts,
	"generic workload: several URLs are used round-robin, same host and port"),
    SEC("ladder scenario", scen_opts, "--scenario ladder URL-of-the-service"),
    SEC("output", out_opts, NULL),
};

static int bad(const char *flag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const char *flag, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ladder bench: %s: ", flag);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see ladder bench --help)\n");
	return 2;
}

/* parse_args fills o from the table; returns 0, 2 for bad usage (message
 * printed) or -1 after --help. */
static int parse_args(int argc, char **argv, struct ld_bench_opts *o)
{
	struct ld_optset *set = NULL;
	struct ld_args *args = NULL;
	char err[512] = "";
	size_t used = 0, i;
	int rc = 2;

	memset(o, 0, sizeof(*o));
	for (int k = 0; k < argc && used < sizeof(o->cmdline) - 1; k++) {
		int w = snprintf(o->cmdline + used, sizeof(o->cmdline) - used, "%s%s", k ? " " : "",
				 k == 0 ? "ladder bench" : argv[k]);
		used += w > 0 ? (size_t)w : 0;
	}
	if (used >= sizeof(o->cmdline))
		o->cmdline[sizeof(o->cmdline) - 1] = '\0';
	set = malloc(sizeof(*set));
	args = malloc(sizeof(*args));
	if (!set || !args) {
		fprintf(stderr, "ladder bench: out of memory\n");
		rc = 1;
		goto out;
	}
	ld_optset_init(set, "bench");
	set->summary = "open-loop HTTP/1.1 load generator with honest percentiles";
	set->usage = "[options] URL...";
	set->about = about_text;
	set->examples = examples_text;
	set->footer = footer_text;
	for (i = 0; i < sizeof(bench_sections) / sizeof(bench_sections[0]); i++)
		if (ld_optset_add(set, &bench_sections[i], o, NULL) < 0)
			goto table_bug;
	if (ld_optset_defaults(set, err, sizeof(err)) < 0)
		goto table_bug;
	rc = ld_optset_parse(set, argc, argv, args, err, sizeof(err));
	if (rc == LD_CONFIG_EXIT_OK) {
		rc = -1;
		goto out;
	}
	if (rc == 0)
		rc = ld_optset_apply(set, args, false, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ladder bench: %s\n(see ladder bench --help)\n", err);
		rc = 2;
		goto out;
	}
	rc = 2;
	if (o->nurls == 0) {
		bad("URL", "no URL given%s", "");
		goto out;
	}
	if (o->stages || o->preset || o->breakpoint) {
		int modes = !!o->stages + !!o->preset + !!o->breakpoint;
		if (modes > 1) {
			bad("--stages", "pick one of --stages, --preset, --breakpoint%s", "");
			goto out;
		}
		if (o->preset && o->closed) {
			bad("--preset", "needs --rate (the base rate)%s", "");
			goto out;
		}
		o->closed = false;
	}
	if (o->breakpoint && !o->slo_text) {
		bad("--breakpoint", "needs --slo (what must hold)%s", "");
		goto out;
	}
	if (o->body_file) {
		/* The body is owned by o; the message names the path and why. */
		if (ld_read_file(o->body_file, BODY_FILE_MAX, &o->body, &o->body_len, err,
				 sizeof(err))) {
			bad("--body-file", "%s", err);
			goto out;
		}
	}
	if (!o->max_connections || o->max_connections < o->connections)
		o->max_connections = o->connections;
	if (o->threads > o->connections)
		o->threads = o->connections;
	rc = 0;
	goto out;
table_bug:
	fprintf(stderr, "ladder bench: options table: %s\n", err[0] ? err : "a name is taken");
	rc = 1;
out:
	free(args);
	free(set);
	return rc;
}

/* The generic workload: prebuilt request bytes, one per URL, round-robin.
 * A POST with --retries and no Idempotency-Key of the caller's is built
 * for each request instead, with a key of its own, so that a retry is the
 * same logical write and the server can replay it. */
struct generic {
	struct ld_buf reqs[LD_BENCH_URLS_MAX];
	int n;
	bool head;
	bool keyed;
	const struct ld_bench_opts *o;
	struct ld_http_url urls[LD_BENCH_URLS_MAX]; /* keyed only */
};

static bool has_idem_key(const char *const *headers)
{
	for (; headers && *headers; headers++)
		if (!strncasecmp(*headers, "idempotency-key:", 16))
			return true;
	return false;
}

static int generic_next(void *ctx, struct ld_rng *rng, struct ld_buf *scratch,
			struct ld_bench_req *req)
{
	struct generic *g = ctx;
	/* A per-thread counter needs no lock; ng is only read. */
	static _Thread_local unsigned rr;
	unsigned i = rr++ % (unsigned)g->n;
	const struct ld_buf *b = &g->reqs[i];

	if (g->keyed) {
		const char *hdrs[LD_BENCH_HEADERS_MAX + 2];
		char key[64];
		int k = 0;

		for (; k < g->o->nheaders; k++)
			hdrs[k] = g->o->headers[k];
		/* Random per request (the thread's seeded generator): unique
		 * across threads and runs with different seeds. */
		snprintf(key, sizeof(key), "Idempotency-Key: \"lb-%016llx%016llx\"",
			 (unsigned long long)ld_rng_next(rng),
			 (unsigned long long)ld_rng_next(rng));
		hdrs[k++] = key;
		hdrs[k] = NULL;
		if (ld_http_request_write(scratch, g->o->method, g->urls[i].authority,
					  g->urls[i].path, hdrs, g->o->body, g->o->body_len))
			return -1;
		req->data = scratch->data;
		req->len = scratch->len;
		return 0;
	}
	req->data = b->data;
	req->len = b->len;
	req->head = g->head;
	return 0;
}

struct live {
	const struct ld_bench_opts *o;
	bool tty;
};

static void on_tick(void *ctx, const struct ld_bench_point *p, const struct ld_bench_totals *t)
{
	struct live *l = ctx;
	char target[32];

	if (l->o->quiet)
		return;
	if (l->o->closed)
		snprintf(target, sizeof(target), "max");
	else
		snprintf(target, sizeof(target), "%.0f/s", p->target_rps);
	fprintf(stderr,
		"%s[%6.1fs] target %s  achieved %.0f/s  p50 %.2fms  p99 %.2fms  errors %lld  "
		"inflight %lld  queued %lld  conns %d%s%s",
		l->tty ? "\r\033[K" : "", p->t, target, p->achieved_rps, (double)p->p50_us / 1e3,
		(double)p->p99_us / 1e3, (long long)t->errors, (long long)t->inflight,
		(long long)t->queued, t->open_conns, p->warmup ? "  (warm-up)" : "",
		l->tty ? "" : "\n");
	fflush(stderr);
}

static void on_signal(int sig)
{
	ld_bench_stop();
}

static int resolve(const struct ld_http_url *u, struct sockaddr_storage *addr)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc || !res)
		return -EHOSTUNREACH;
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

static int write_reports(const struct ld_bench_opts *o, const struct ld_bench_result *r,
			 const struct ld_bench_extra *x)
{
	struct ld_buf b;
	int rc = 0;

	ld_buf_init(&b, 256 * 1024 * 1024);
	if (o->json_path) {
		rc = ld_bench_json(&b, o, r, x);
		if (!rc)
			rc = ld_bench_write_file(o->json_path, b.data, b.len);
		if (rc) {
			fprintf(stderr, "ladder bench: --json: cannot write '%s': %s\n",
				o->json_path, strerror(-rc));
			goto out;
		}
	}
	if (o->html_path) {
		ld_buf_reset(&b);
		rc = ld_bench_html(&b, o, r, x);
		if (!rc)
			rc = ld_bench_write_file(o->html_path, b.data, b.len);
		if (rc) {
			fprintf(stderr, "ladder bench: --html: cannot write '%s': %s\n",
				o->html_path, strerror(-rc));
			goto out;
		}
	}
	if (o->hgrm_path) {
		FILE *f = fopen(o->hgrm_path, "w");
		rc = f ? ld_hdr_write_hgrm(&r->latency, f, 1000.0) : -errno;
		if (f && fclose(f) && !rc)
			rc = -EIO;
		if (rc) {
			fprintf(stderr, "ladder bench: --hgrm: cannot write '%s': %s\n",
				o->hgrm_path, strerror(-rc));
			goto out;
		}
	}
out:
	ld_buf_release(&b);
	return rc;
}

static double error_rate(const struct ld_bench_result *r)
{
	return r->requests ? (double)r->errors / (double)r->requests : 0;
}

/* breakpoint runs one constant-rate step per rate until the SLO breaks;
 * res ends up holding the last step that held (or the first one). */
static int breakpoint(struct ld_bench_opts *o, struct ld_bench_cfg *cfg,
		      struct ld_bench_result *res, struct ld_bench_extra *x)
{
	struct ld_bench_result step;
	bool have = false;
	int rc = 0;

	for (double rate = o->bp_start; rate <= o->bp_max + 1e-9 && x->nsteps < LD_BENCH_STEPS_MAX;
	     rate += o->bp_step) {
		struct ld_bench_step *s = &x->steps[x->nsteps++];
		ld_shape_constant(&cfg->shape, rate, o->step_s);
		cfg->warmup_s = 0;
		if (!o->quiet)
			fprintf(stderr, "ladder bench: breakpoint step %d at %.0f/s\n", x->nsteps,
				rate);
		rc = x->profile ? ld_profile_run(x->profile, cfg, &step, rate)
				: ld_bench_run(cfg, &step);
		if (rc) {
			x->nsteps--;
			break;
		}
		s->rate = rate;
		s->achieved_rps = step.achieved_rps;
		s->requests = step.requests;
		s->errors = step.errors;
		s->error_rate = error_rate(&step);
		s->p50_us = ld_hdr_percentile(&step.latency, 50);
		s->p99_us = ld_hdr_percentile(&step.latency, 99);
		s->p999_us = ld_hdr_percentile(&step.latency, 99.9);
		s->max_us = ld_hdr_max(&step.latency);
		s->held = ld_slo_check(&o->slo, &step.latency, &step.service, s->error_rate,
				       step.achieved_rps, s->why, sizeof(s->why)) == 0;
		if (s->held || !have) {
			if (have)
				ld_bench_result_release(res);
			*res = step;
			have = true;
		} else {
			ld_bench_result_release(&step);
		}
		if (!s->held || ld_bench_stopped())
			break;
		x->max_rate_held = rate;
		if (!o->quiet && isatty(2))
			fprintf(stderr, "\n");
	}
	if (!have && !rc)
		rc = -EINVAL;
	return rc;
}

/* cache_before reads the server's cache counters before the run (after
 * seeding, whose reads are not the mix's); a server without /metrics or
 * without a cache just gives no figure. */
static void cache_before(const struct ld_http_url *u, const struct sockaddr_storage *addr,
			 struct ld_cache_stat *s)
{
	char err[256];

	if (ld_cache_stat_fetch(addr, u->authority, u->path, s, err, sizeof(err)))
		fprintf(stderr, "ladder bench: no cache figures: %s\n", err);
}

/* cache_after reads them again and keeps the difference in x. */
static void cache_after(const struct ld_http_url *u, const struct sockaddr_storage *addr,
			const struct ld_cache_stat *before, struct ld_bench_extra *x)
{
	struct ld_cache_stat s;
	char err[256];

	if (!before->found)
		return;
	if (ld_cache_stat_fetch(addr, u->authority, u->path, &s, err, sizeof(err))) {
		fprintf(stderr, "ladder bench: no cache figures: %s\n", err);
		return;
	}
	ld_cache_stat_delta(before, &s, &x->cache);
	x->has_cache = x->cache.found;
}

int ld_bench_main(int argc, char **argv)
{
	struct ld_bench_opts o;
	struct ld_bench_cfg cfg;
	struct ld_bench_result res;
	struct ld_bench_extra *x = NULL;
	struct ld_http_url u0, u;
	struct generic *g = NULL;
	struct ld_scenario *sc = NULL;
	struct ld_cache_stat cstat0 = {0};
	struct live live;
	struct sigaction sa, old_int, old_term;
	bool have_res = false, sig_set = false;
	int64_t answered = 0;
	int rc;

	memset(&res, 0, sizeof(res));
	rc = parse_args(argc, argv, &o);
	if (rc) {
		rc = rc < 0 ? 0 : rc;
		goto out;
	}
	rc = 2;
	if (ld_http_url_parse(o.urls[0], &u0)) {
		bad("URL", "'%s' is not an http:// URL", o.urls[0]);
		goto out;
	}
	x = calloc(1, sizeof(*x));
	g = calloc(1, sizeof(*g));
	if (!x || !g) {
		rc = 1;
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (resolve(&u0, &cfg.addr)) {
		fprintf(stderr, "ladder bench: URL: cannot resolve '%s'\n", u0.host);
		goto out;
	}
	cfg.threads = o.threads;
	cfg.connections = o.connections;
	cfg.max_connections = o.max_connections;
	cfg.closed = o.closed;
	cfg.duration_s = o.duration_s;
	cfg.warmup_s = o.warmup_s;
	cfg.poisson = o.poisson;
	cfg.seed = o.seed;
	cfg.timeout_s = o.timeout_s;
	cfg.errors_4xx = o.errors_4xx;
	cfg.retry.max = o.retries;
	cfg.retry.base_ns = (uint64_t)(o.retry_base_s * 1e9);
	cfg.retry.cap_ns = (uint64_t)(o.retry_cap_s * 1e9);
	cfg.retry.budget_milli = (unsigned)(o.retry_budget * 1000 + 0.5);
	cfg.retry.budget_cap = 10;
	live.o = &o;
	live.tty = isatty(2);
	cfg.tick = on_tick;
	cfg.tick_ctx = &live;
	if (o.stages) {
		char err[160];
		if (ld_shape_parse(&cfg.shape, o.stages, o.start_rate, err, sizeof(err))) {
			bad("--stages", "%s", err);
			goto out;
		}
		o.duration_s = ld_shape_total_s(&cfg.shape);
	} else if (o.preset) {
		ld_shape_preset(&cfg.shape, o.preset, o.rate, o.duration_s);
	} else if (!o.closed) {
		ld_shape_constant(&cfg.shape, o.rate, o.duration_s);
	}
	if (!o.closed && o.warmup_s >= ld_shape_total_s(&cfg.shape) && !o.breakpoint) {
		bad("--warmup", "leaves nothing to measure within the run%s", "");
		goto out;
	}
	if (o.profile_url) {
		char err[256];
		if (ld_profile_open(&x->profile, o.profile_url, o.profile_interval_s, o.threads,
				    err, sizeof(err))) {
			fprintf(stderr, "ladder bench: --profile: %s\n", err);
			rc = 1;
			goto out;
		}
	}
	/* Writing to a closed socket must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sig_set = true;

	if ((o.photo_share > 0 || o.photo_file) && !o.scenario) {
		bad(o.photo_share > 0 ? "--photo-share" : "--photo-file",
		    "drives the ladder scenario's photo uploads: it needs --scenario ladder%s", "");
		goto out;
	}
	if (o.scenario) {
		char err[256];
		if (o.nurls != 1) {
			bad("--scenario", "wants exactly one URL, the service's base (got %s)",
			    "several");
			goto out;
		}
		if (ld_scenario_setup(&sc, &o, &u0, &cfg.addr, x, err, sizeof(err))) {
			fprintf(stderr, "ladder bench: --scenario ladder: %s\n", err);
			rc = 1;
			goto out;
		}
		ld_scenario_workload(sc, &cfg.wl);
		x->mix = true;
		cache_before(&u0, &cfg.addr, &cstat0);
	} else {
		for (int i = 0; i < o.nurls; i++) {
			int e;
			if (ld_http_url_parse(o.urls[i], &u)) {
				bad("URL", "'%s' is not an http:// URL", o.urls[i]);
				goto out;
			}
			if (strcmp(u.authority, u0.authority)) {
				bad("URL", "'%s': every URL must name the same host and port",
				    o.urls[i]);
				goto out;
			}
			g->urls[i] = u;
			ld_buf_init(&g->reqs[i], REQ_MAX);
			e = ld_http_request_write(&g->reqs[i], o.method, u.authority, u.path,
						  o.headers, o.body, o.body_len);
			if (e) {
				bad("--header", "cannot build the request (%s)", strerror(-e));
				goto out;
			}
		}
		g->n = o.nurls;
		g->head = !strcmp(o.method, "HEAD");
		g->o = &o;
		g->keyed = o.retries > 0 && !strcmp(o.method, "POST") && !has_idem_key(o.headers);
		/* A keyed request is built in its connection's 64 KiB buffer. */
		if (g->keyed && o.body_len > 48 * 1024) {
			bad("--retries",
			    "a POST retried with a key of its own takes a body of at most 48 KiB "
			    "(or give -H 'Idempotency-Key: ...')%s",
			    "");
			goto out;
		}
		cfg.wl.next = generic_next;
		cfg.wl.ctx = g;
	}

	if (o.breakpoint) {
		rc = breakpoint(&o, &cfg, &res, x);
	} else {
		rc = x->profile ? ld_profile_run(x->profile, &cfg, &res, 0)
				: ld_bench_run(&cfg, &res);
	}
	if (x->profile)
		ld_profile_finish(x->profile);
	if (rc) {
		fprintf(stderr, "ladder bench: the run could not start: %s\n", strerror(-rc));
		rc = 1;
		goto out;
	}
	have_res = true;
	if (sc) {
		ld_scenario_photos(sc, x);
		cache_after(&u0, &cfg.addr, &cstat0, x);
	}
	if (!o.quiet && live.tty)
		fprintf(stderr, "\n");
	if (o.slo_text && !o.breakpoint)
		x->slo_broken = ld_slo_check(&o.slo, &res.latency, &res.service, error_rate(&res),
					     res.achieved_rps, x->slo_why, sizeof(x->slo_why));
	if (o.breakpoint && x->max_rate_held <= 0) {
		x->slo_broken = 1;
		snprintf(x->slo_why, sizeof(x->slo_why), "no step held (first: %s)",
			 x->nsteps ? x->steps[0].why : "none run");
	}
	ld_bench_summary(stdout, &o, &res, x);
	fflush(stdout);
	rc = write_reports(&o, &res, x) ? 1 : 0;
	if (rc == 0 && x->slo_broken) {
		fprintf(stderr, "ladder bench: --slo broken: %s\n", x->slo_why);
		rc = 3;
	}
	for (int st = 0; st < 600; st++)
		answered += res.status[st];
	if (rc == 0 && answered == 0 && res.err_by_kind[LD_ERR_CONNECT]) {
		fprintf(stderr, "ladder bench: no request got through (connect errors: %lld)\n",
			(long long)res.err_by_kind[LD_ERR_CONNECT]);
		rc = 1;
	}
out:
	if (sig_set) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
	}
	if (have_res)
		ld_bench_result_release(&res);
	if (g)
		for (int i = 0; i < LD_BENCH_URLS_MAX; i++)
			ld_buf_release(&g->reqs[i]);
	if (sc)
		ld_scenario_free(sc);
	free(g);
	if (x)
		ld_profile_free(x->profile);
	free(x);
	free(o.body);
	return rc;
}
