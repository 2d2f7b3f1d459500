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

#include "base/file.h"
#include "bench/bench.h"
#include "bench/engine.h"
#include "bench/opts.h"
#include "bench/report.h"
#include "bench/scenario.h"
#include "http/client.h"

#define BODY_FILE_MAX (16 * 1024 * 1024)
#define REQ_MAX	      (BODY_FILE_MAX + 64 * 1024)

static const char usage_text[] =
    "usage: ladder bench [options] URL...\n"
    "\n"
    "Open-loop HTTP/1.1 load generator. Requests follow a schedule and never wait for\n"
    "earlier answers; latency is measured from each request's intended send time, so\n"
    "a stalled server shows in the percentiles (no coordinated omission). Service time\n"
    "(actual send to answer) is reported beside it.\n"
    "\n"
    "load:\n"
    "  -r, --rate N|max        target requests/s (\"max\": closed loop, full speed; the\n"
    "                          default when neither --rate nor --stages is given)\n"
    "  -d, --duration D        run length (10s; units us ms s m h)\n"
    "      --warmup D          leading time excluded from the figures (0)\n"
    "      --arrivals KIND     constant (default) or poisson (seeded by --seed)\n"
    "      --poisson           same as --arrivals poisson\n"
    "      --seed N            PRNG seed for arrivals and key choice (1)\n"
    "      --stages LIST       ramp: \"30s:100,1m:1000,30s:0\" (linear between targets,\n"
    "                          from --start-rate, default 0)\n"
    "      --preset NAME       spike: 35% base rate, 10x for 20% with 5% ramps, base;\n"
    "                          soak: constant --rate for --duration (set it long)\n"
    "      --breakpoint S:STEP:MAX  step the rate from S by STEP up to MAX, each for\n"
    "                          --step-duration (10s), until --slo breaks; reports the\n"
    "                          highest rate that held\n"
    "      --slo SPEC          thresholds, e.g. 'p99<5ms,p99.9<20ms,errors<0.1%,rps>900';\n"
    "                          exit status 3 when one breaks (service.p99 for service\n"
    "                          time; a bare number is ms)\n"
    "connections:\n"
    "  -c, --connections N     connections opened at the start (16)\n"
    "      --max-connections N open loop: open more, up to N, while requests wait (=-c)\n"
    "  -t, --threads N         event-loop threads (1)\n"
    "      --timeout D         per request (10s); a timeout counts as an error and as at\n"
    "                          least D in the latency figures\n"
    "      --errors-4xx        count 4xx answers as errors (5xx always are)\n"
    "requests (generic workload; several URLs are used round-robin, same host):\n"
    "  -X, --method M          GET (default), POST, ...\n"
    "  -H, --header 'N: v'     extra header, repeatable\n"
    "      --body-file F       request body (Content-Length is set)\n"
    "ladder scenario (--scenario ladder URL-of-the-service):\n"
    "      --users N           users to create first (50; argon2id makes this slow)\n"
    "      --items-per-user M  items per user (5)\n"
    "      --seed-concurrency N  requests in flight while seeding (8)\n"
    "      --read-write-ratio R:W  (100:1)\n"
    "      --zipf-s S          skew of user and item popularity (1.0; 0 = uniform)\n"
    "output:\n"
    "  -q, --quiet             no live line\n"
    "      --json FILE         report for `ladder plan` (schema ladder-bench/1)\n"
    "      --html FILE         self-contained HTML report with SVG charts\n"
    "      --hgrm FILE         HdrHistogram percentile distribution (ms)\n"
    "\n"
    "examples:\n"
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
    "\n"
    "exit status: 0 done, 1 runtime failure, 2 bad usage, 3 an --slo threshold broken\n";

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

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/* parse_args fills o; returns 0, 2 for bad usage (message printed) or -1
 * after --help. */
static int parse_args(int argc, char **argv, struct ld_bench_opts *o)
{
	size_t used = 0;

	memset(o, 0, sizeof(*o));
	o->method = "GET";
	o->duration_s = 10;
	o->timeout_s = 10;
	o->connections = 16;
	o->threads = 1;
	o->seed = 1;
	o->closed = true;
	o->step_s = 10;
	o->users = 50;
	o->items_per_user = 5;
	o->seed_concurrency = 8;
	o->read_ratio = 100;
	o->write_ratio = 1;
	o->zipf_s = 1.0;
	for (int i = 0; i < argc && used < sizeof(o->cmdline) - 1; i++) {
		int w = snprintf(o->cmdline + used, sizeof(o->cmdline) - used, "%s%s", i ? " " : "",
				 i == 0 ? "ladder bench" : argv[i]);
		used += w > 0 ? (size_t)w : 0;
	}
	if (used >= sizeof(o->cmdline))
		o->cmdline[sizeof(o->cmdline) - 1] = '\0';
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *val = NULL, *eq = NULL;
		char flag[64];
		long n;
		bool takes;

		if (a[0] != '-' || !strcmp(a, "-")) {
			if (o->nurls == LD_BENCH_URLS_MAX)
				return bad("URL", "more than %s URLs", "64");
			o->urls[o->nurls++] = a;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return -1;
		}
		snprintf(flag, sizeof(flag), "%s", a);
		if (!strncmp(a, "--", 2) && (eq = strchr(flag, '='))) {
			*eq = '\0';
			val = a + (eq - flag) + 1;
		}
		takes = strcmp(flag, "--poisson") && strcmp(flag, "-q") &&
			strcmp(flag, "--quiet") && strcmp(flag, "--errors-4xx");
		if (takes && !val) {
			if (i + 1 >= argc)
				return bad(flag, "needs a value%s", "");
			val = argv[++i];
		}
		if (!takes && val)
			return bad(flag, "takes no value (got '%s')", val);
		if (!strcmp(flag, "-r") || !strcmp(flag, "--rate")) {
			if (!strcasecmp(val, "max")) {
				o->closed = true;
			} else if (ld_parse_rate(val, &o->rate) || o->rate <= 0) {
				return bad(flag, "'%s' is not a rate (a number > 0 or max)", val);
			} else {
				o->closed = false;
			}
		} else if (!strcmp(flag, "-d") || !strcmp(flag, "--duration")) {
			if (ld_parse_duration(val, &o->duration_s) || o->duration_s <= 0)
				return bad(flag, "'%s' is not a duration (e.g. 30s, 2m)", val);
		} else if (!strcmp(flag, "--warmup")) {
			if (ld_parse_duration(val, &o->warmup_s))
				return bad(flag, "'%s' is not a duration", val);
		} else if (!strcmp(flag, "--timeout")) {
			if (ld_parse_duration(val, &o->timeout_s) || o->timeout_s <= 0 ||
			    o->timeout_s > 3600)
				return bad(flag, "'%s' is not a duration in (0, 1h]", val);
		} else if (!strcmp(flag, "--step-duration")) {
			if (ld_parse_duration(val, &o->step_s) || o->step_s <= 0)
				return bad(flag, "'%s' is not a duration", val);
		} else if (!strcmp(flag, "-c") || !strcmp(flag, "--connections")) {
			if (parse_int(val, 1, 100000, &n))
				return bad(flag, "'%s' is not a count in 1..100000", val);
			o->connections = (int)n;
		} else if (!strcmp(flag, "--max-connections")) {
			if (parse_int(val, 1, 100000, &n))
				return bad(flag, "'%s' is not a count in 1..100000", val);
			o->max_connections = (int)n;
		} else if (!strcmp(flag, "-t") || !strcmp(flag, "--threads")) {
			if (parse_int(val, 1, 256, &n))
				return bad(flag, "'%s' is not a count in 1..256", val);
			o->threads = (int)n;
		} else if (!strcmp(flag, "--arrivals")) {
			if (!strcmp(val, "poisson"))
				o->poisson = true;
			else if (strcmp(val, "constant"))
				return bad(flag, "'%s' is neither constant nor poisson", val);
		} else if (!strcmp(flag, "--poisson")) {
			o->poisson = true;
		} else if (!strcmp(flag, "--seed")) {
			if (parse_int(val, 0, LONG_MAX, &n))
				return bad(flag, "'%s' is not a non-negative integer", val);
			o->seed = (uint64_t)n;
		} else if (!strcmp(flag, "--stages")) {
			o->stages = val;
		} else if (!strcmp(flag, "--start-rate")) {
			if (ld_parse_rate(val, &o->start_rate))
				return bad(flag, "'%s' is not a rate", val);
		} else if (!strcmp(flag, "--preset")) {
			if (strcmp(val, "spike") && strcmp(val, "soak"))
				return bad(flag, "'%s' is not a preset (spike, soak)", val);
			o->preset = val;
		} else if (!strcmp(flag, "--breakpoint")) {
			o->breakpoint = val;
			if (sscanf(val, "%lf:%lf:%lf", &o->bp_start, &o->bp_step, &o->bp_max) !=
				3 ||
			    !(o->bp_start > 0) || !(o->bp_step > 0) || o->bp_max < o->bp_start)
				return bad(flag, "'%s' is not START:STEP:MAX (rates > 0)", val);
			if ((o->bp_max - o->bp_start) / o->bp_step >= LD_BENCH_STEPS_MAX)
				return bad(flag, "'%s' makes more than 256 steps", val);
		} else if (!strcmp(flag, "--slo")) {
			char err[160];
			o->slo_text = val;
			if (ld_slo_parse(&o->slo, val, err, sizeof(err)))
				return bad(flag, "%s", err);
		} else if (!strcmp(flag, "--errors-4xx")) {
			o->errors_4xx = true;
		} else if (!strcmp(flag, "-q") || !strcmp(flag, "--quiet")) {
			o->quiet = true;
		} else if (!strcmp(flag, "-X") || !strcmp(flag, "--method")) {
			for (const char *p = val; *p; p++)
				if (!(*p >= 'A' && *p <= 'Z') && *p != '-' && *p != '_')
					return bad(flag, "'%s' is not a method token", val);
			if (!*val)
				return bad(flag, "empty method%s", "");
			o->method = val;
		} else if (!strcmp(flag, "-H") || !strcmp(flag, "--header")) {
			const char *colon = strchr(val, ':');
			if (!colon || colon == val || strpbrk(val, "\r\n"))
				return bad(flag, "'%s' is not 'Name: value'", val);
			for (const char *p = val; p < colon; p++)
				if (*p == ' ' || *p == '\t')
					return bad(flag, "'%s': no space before the colon", val);
			if (!strncasecmp(val, "host:", 5) ||
			    !strncasecmp(val, "content-length:", 15))
				return bad(flag, "'%s' is set by ladder bench itself", val);
			if (o->nheaders == LD_BENCH_HEADERS_MAX)
				return bad(flag, "more than %s headers", "64");
			o->headers[o->nheaders++] = val;
		} else if (!strcmp(flag, "--body-file")) {
			o->body_file = val;
		} else if (!strcmp(flag, "--json")) {
			o->json_path = val;
		} else if (!strcmp(flag, "--html")) {
			o->html_path = val;
		} else if (!strcmp(flag, "--hgrm")) {
			o->hgrm_path = val;
		} else if (!strcmp(flag, "--scenario")) {
			if (strcmp(val, "ladder"))
				return bad(flag, "'%s' is not a scenario (ladder)", val);
			o->scenario = val;
		} else if (!strcmp(flag, "--users")) {
			if (parse_int(val, 1, 10000000, &n))
				return bad(flag, "'%s' is not a count in 1..10000000", val);
			o->users = (int)n;
		} else if (!strcmp(flag, "--items-per-user")) {
			if (parse_int(val, 1, 10000, &n))
				return bad(flag, "'%s' is not a count in 1..10000", val);
			o->items_per_user = (int)n;
		} else if (!strcmp(flag, "--seed-concurrency")) {
			if (parse_int(val, 1, 1024, &n))
				return bad(flag, "'%s' is not a count in 1..1024", val);
			o->seed_concurrency = (int)n;
		} else if (!strcmp(flag, "--read-write-ratio")) {
			if (sscanf(val, "%lf:%lf", &o->read_ratio, &o->write_ratio) != 2 ||
			    !(o->read_ratio >= 0) || !(o->write_ratio >= 0) ||
			    o->read_ratio + o->write_ratio <= 0 || !isfinite(o->read_ratio) ||
			    !isfinite(o->write_ratio))
				return bad(flag, "'%s' is not READ:WRITE (e.g. 100:1)", val);
		} else if (!strcmp(flag, "--zipf-s")) {
			char *end;
			o->zipf_s = strtod(val, &end);
			if (*end || end == val || !(o->zipf_s >= 0) || o->zipf_s > 10)
				return bad(flag, "'%s' is not an exponent in 0..10", val);
		} else {
			return bad(flag, "unknown option%s", "");
		}
	}
	if (o->nurls == 0)
		return bad("URL", "no URL given%s", "");
	if (o->stages || o->preset || o->breakpoint) {
		int modes = !!o->stages + !!o->preset + !!o->breakpoint;
		if (modes > 1)
			return bad("--stages", "pick one of --stages, --preset, --breakpoint%s",
				   "");
		if (o->preset && o->closed)
			return bad("--preset", "needs --rate (the base rate)%s", "");
		o->closed = false;
	}
	if (o->breakpoint && !o->slo_text)
		return bad("--breakpoint", "needs --slo (what must hold)%s", "");
	if (o->body_file) {
		char err[256] = "";

		/* The body is owned by o; the message names the path and why. */
		if (ld_read_file(o->body_file, BODY_FILE_MAX, &o->body, &o->body_len, err,
				 sizeof(err)))
			return bad("--body-file", "%s", err);
	}
	if (!o->max_connections || o->max_connections < o->connections)
		o->max_connections = o->connections;
	if (o->threads > o->connections)
		o->threads = o->connections;
	return 0;
}

/* The generic workload: prebuilt request bytes, one per URL, round-robin. */
struct generic {
	struct ld_buf reqs[LD_BENCH_URLS_MAX];
	int n;
	bool head;
};

static int generic_next(void *ctx, struct ld_rng *rng, struct ld_buf *scratch,
			struct ld_bench_req *req)
{
	struct generic *g = ctx;
	/* A per-thread counter needs no lock; ng is only read. */
	static _Thread_local unsigned rr;
	const struct ld_buf *b = &g->reqs[rr++ % (unsigned)g->n];

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
		rc = ld_bench_run(cfg, &step);
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

int ld_bench_main(int argc, char **argv)
{
	struct ld_bench_opts o;
	struct ld_bench_cfg cfg;
	struct ld_bench_result res;
	struct ld_bench_extra *x = NULL;
	struct ld_http_url u0, u;
	struct generic *g = NULL;
	struct ld_scenario *sc = NULL;
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
	/* Writing to a closed socket must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sig_set = true;

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
		cfg.wl.next = generic_next;
		cfg.wl.ctx = g;
	}

	if (o.breakpoint) {
		rc = breakpoint(&o, &cfg, &res, x);
	} else {
		rc = ld_bench_run(&cfg, &res);
	}
	if (rc) {
		fprintf(stderr, "ladder bench: the run could not start: %s\n", strerror(-rc));
		rc = 1;
		goto out;
	}
	have_res = true;
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
	free(x);
	free(o.body);
	return rc;
}
