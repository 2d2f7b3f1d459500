/*
 * plan_cli.c - `ladder plan`: the command line of the capacity planner.
 *
 *   ladder plan [--assumptions FILE] [--bench REPORT.json] [--KEY VALUE ...]
 *   ladder plan fit [--point N,X ...] [FILE ...]     Universal Scalability Law
 *   ladder plan queue --rate R --service-time S ...  M/M/c sizing
 *   ladder plan fields                               every input, documented
 *
 * Exit status: 0 done, 1 the output could not be written, 2 bad usage or a
 * bad input (the message names the field).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/file.h"
#include "plan/assume.h"
#include "plan/bench_report.h"
#include "plan/erlang.h"
#include "plan/model.h"
#include "plan/num.h"
#include "plan/plan.h"
#include "plan/points.h"
#include "plan/report.h"
#include "plan/usl.h"

#define OUT_MAX	  (64u * 1024 * 1024)
#define FILES_MAX 256

static const char plan_usage[] =
    "[--assumptions FILE] [--bench REPORT.json] [--KEY VALUE ...]\n"
    "                   [--format text|json|markdown|html] [--out FILE] [--every N]\n"
    "       ladder plan fit [--point N,X ...] [POINTS.csv | REPORT.json ...] [--format F]\n"
    "       ladder plan queue --rate R --service-time S [--slo T] [--percentile P]\n"
    "       ladder plan fields";

static const char plan_about[] =
    "Turns a service's assumptions and measured per-node throughput into the\n"
    "resources, storage, bandwidth and cost of each month, and the rungs of the\n"
    "ladder to climb, and when. Later wins: defaults, --assumptions, --bench, flags.\n";

static const char plan_examples[] =
    "  ladder plan\n"
    "  ladder plan --users 10M --months 36 --growth 5% --format html --out plan.html\n"
    "  ladder plan --assumptions examples/assumptions.ini --bench bench.json\n"
    "  ladder plan --users 300 --reads 900/day --writes 37.5M/month --redundancy 0\n"
    "  ladder plan fit --point 1,65 --point 18,996 --point 36,1652 --point 72,1853\n"
    "  ladder plan queue --rate 10000 --service-time 50ms --slo 250ms\n";

static const char plan_notes[] =
    "Numbers take suffixes: 10M, 1B (decimal), 1KB = 1000 B, 1KiB = 1024 B,\n"
    "50ms, 2s, 20%, 3x; rates 1B/month (a bare count is per month), 50M/day, 400/s.\n"
    "`ladder plan fields` lists every input with its default and meaning.\n"
    "\n"
    "Default capacities: 174969 reads/s per app core (GET /v1/items/{id} on one core)\n"
    "and 59359 writes/s of the single-box store (durable POST /v1/items, 64 "
    "clients),\n" LD_ASSUME_MEASURED_ON ";\n"
    "--bench replaces them with your own measurements.\n";

static const char fit_about[] =
    "Fits the Universal Scalability Law X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1))\n"
    "to measured (concurrency N, throughput X) points by non-linear least squares and\n"
    "reports the peak concurrency N* = sqrt((1 - sigma) / kappa), the throughput there,\n"
    "and whether contention (sigma) or coherency (kappa) limits. Needs 3 or more points.\n"
    "\n"
    "Points come from --point N,X, from text files of 'N,X' lines (a CSV header\n"
    "line and # comments are skipped), or from `ladder bench` JSON reports (a file\n"
    "starting with '{'): N = config.connections, X = results.achieved_rps.\n";

static const char fit_examples[] =
    "  ladder plan fit --point 1,65 --point 18,996 --point 36,1652 --point 72,1853 \\\n"
    "      --point 108,1829 --point 144,1775 --point 216,1702\n"
    "  ladder plan fit run-*.json\n";

static const char queue_about[] =
    "M/M/c queueing (Erlang C): the probability a request waits, the mean wait, the\n"
    "response time at a percentile, and Little's law L = lambda W for pools and\n"
    "connections. With --slo, finds the smallest number of servers C whose response\n"
    "time at the percentile is within it; with --servers, evaluates C.\n"
    "With --cores-per-node K, also sizes nodes of K servers each behind a balancer.\n"
    "\n"
    "R is per second (or 1M/day, 30K/min); S and T are durations (50ms, 0.2s).\n";

static const char queue_examples[] =
    "  ladder plan queue --rate 10000 --service-time 50ms --slo 250ms\n"
    "  ladder plan queue --rate 100 --service-time 10ms --servers 2\n";

static const char fields_about[] =
    "Lists every input of `ladder plan` with its section, default and meaning, in\n"
    "the assumptions file's format (key = default # meaning).\n";

static const char fields_examples[] =
    "  ladder plan fields > my-assumptions.ini   # then edit, and: ladder plan --assumptions "
    "my-assumptions.ini\n";

/* parse_cmdline registers the sections on a set for cmd, applies defaults and
 * reads argv; the early options are applied, the rest are left in args for
 * the caller's ld_optset_apply. Returns 0, LD_CONFIG_EXIT_OK after --help, or
 * 2 with the message printed. */
static int parse_cmdline(struct ld_optset *set, struct ld_args *args, int argc, char **argv,
			 const struct ld_opt_section *secs, size_t nsecs, void *target)
{
	char err[512] = "";
	size_t i;
	int rc;

	for (i = 0; i < nsecs; i++) {
		rc = ld_optset_add(set, &secs[i], target, NULL);
		if (rc < 0) {
			fprintf(stderr, "ladder %s: options table: %s\n", set->cmd, strerror(-rc));
			return 2;
		}
	}
	rc = ld_optset_defaults(set, err, sizeof(err));
	if (rc == 0)
		rc = ld_optset_parse(set, argc, argv, args, err, sizeof(err));
	if (rc == 0)
		rc = ld_optset_apply(set, args, true, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ladder %s: %s\n", set->cmd, err);
		rc = 2;
	}
	return rc;
}

/* apply_rest applies the options parse_cmdline left; 0 or 2 (printed). */
static int apply_rest(struct ld_optset *set, const struct ld_args *args)
{
	char err[512] = "";

	if (ld_optset_apply(set, args, false, err, sizeof(err)) < 0) {
		fprintf(stderr, "ladder %s: %s\n", set->cmd, err);
		return 2;
	}
	return 0;
}

/* emit writes the rendered output to path, or standard output. */
static int emit(const struct ld_buf *b, const char *path)
{
	FILE *f = path ? fopen(path, "w") : stdout;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "ladder plan: %s: %s\n", path, strerror(errno));
		rc = 1;
		goto out;
	}
	if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
		rc = 1;
	if (path ? fclose(f) != 0 : fflush(f) != 0)
		rc = 1;
	if (rc)
		fprintf(stderr, "ladder plan: %s: write failed\n", path ? path : "stdout");
out:
	return rc;
}

/* rate_text spells a default rate as the file would: "1e+09/month". */
static char *rate_text(const struct ld_rate *r, char *out, size_t outlen)
{
	if (r->per_s == 0)
		snprintf(out, outlen, "%g/month", r->n);
	else
		snprintf(out, outlen, "%g/s", r->n / r->per_s);
	return out;
}

static int cmd_fields(int argc, char **argv)
{
	struct ld_assume a;
	char buf[48];
	const char *sec = "";
	size_t i;

	struct ld_optset set;
	struct ld_args *args = malloc(sizeof(*args));
	int rc;

	if (!args)
		return 1;
	ld_optset_init(&set, "plan fields");
	set.summary = "every input of the planner, documented";
	set.usage = "";
	set.about = fields_about;
	set.examples = fields_examples;
	rc = parse_cmdline(&set, args, argc, argv, NULL, 0, NULL);
	free(args);
	if (rc)
		return rc == LD_CONFIG_EXIT_OK ? 0 : rc;
	ld_assume_defaults(&a);
	for (i = 0; i < ld_assume_nfields; i++) {
		const struct ld_assume_field *f = &ld_assume_fields[i];
		const char *base = (const char *)&a + f->offset;
		double v;

		if (strcmp(sec, f->section)) {
			sec = f->section;
			printf("%s[%s]\n", i ? "\n" : "", sec);
		}
		if (f->kind == LD_NUM_RATE) {
			struct ld_rate r;

			memcpy(&r, base, sizeof(r));
			printf("%-24s = %-12s # %s\n", f->key, rate_text(&r, buf, sizeof(buf)),
			       f->doc);
		} else {
			memcpy(&v, base, sizeof(v));
			printf("%-24s = %-12g # %s\n", f->key, v, f->doc);
		}
	}
	return 0;
}

/* What `ladder plan`'s command line fills. */
struct plan_cli {
	const char *assumptions, *bench, *outpath;
	enum ld_plan_format format;
	int every;
	struct ld_assume a;
};

#define PC(field) offsetof(struct plan_cli, field), sizeof(((struct plan_cli *)0)->field), 0

static int p_format(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (ld_plan_format_parse(v, &((struct plan_cli *)base)->format) == 0)
		return 0;
	snprintf(why, n, "expected text, json, markdown or html, got '%.64s'", v);
	return -EINVAL;
}

/* set_input sets one assumption; why gets ld_assume_set's reason without
 * the key in front when the flag names it already (strip). */
static int set_input(struct plan_cli *c, const char *key, const char *v, bool strip, char *why,
		     size_t n)
{
	char err[512];
	size_t k = strlen(key);

	if (ld_assume_set(&c->a, key, v, err, sizeof(err)) == 0)
		return 0;
	snprintf(why, n, "%s",
		 strip && strncmp(err, key, k) == 0 && err[k] == ':' && err[k + 1] == ' '
		     ? err + k + 2
		     : err);
	return -EINVAL;
}

static int p_set(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	const char *eq = strchr(v, '=');
	char name[64];

	if (!eq || eq == v || (size_t)(eq - v) >= sizeof(name)) {
		snprintf(why, n, "expected KEY=VALUE, got '%.64s'", v);
		return -EINVAL;
	}
	memcpy(name, v, (size_t)(eq - v));
	name[eq - v] = '\0';
	return set_input(base, name, eq + 1, false, why, n);
}

static int p_input(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	const struct ld_assume_field *f = o->data;

	return set_input(base, f->key, v, true, why, n);
}

static const struct ld_opt plan_opts[] = {
    {"assumptions", 0, NULL, NULL, LD_OPT_ARG, PC(assumptions), NULL, 0, 0, NULL, LD_OPT_EARLY,
     NULL, NULL, "FILE", "key = value file (see examples/assumptions.ini)"},
    {"bench", 0, NULL, NULL, LD_OPT_ARG, PC(bench), NULL, 0, 0, NULL, LD_OPT_EARLY, NULL, NULL,
     "FILE", "a `ladder bench --json` report: per-node capacities"},
    {"set", 0, NULL, NULL, LD_OPT_FN, PC(a), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_set, NULL,
     "KEY=VALUE", "any input, spelled as in the assumptions file"},
    {"format", 0, NULL, NULL, LD_OPT_FN, PC(format), "text", 0, 0, NULL, LD_OPT_EARLY, p_format,
     NULL, "F", "text, json, markdown or html (self-contained)"},
    {"out", 0, NULL, NULL, LD_OPT_ARG, PC(outpath), NULL, 0, 0, NULL, LD_OPT_EARLY, NULL, NULL,
     "FILE", "write there instead of standard output"},
    {"every", 0, NULL, NULL, LD_OPT_INT, PC(every), "1", 1, LD_ASSUME_MONTHS_MAX, NULL,
     LD_OPT_EARLY, NULL, NULL, "N", "tables show every Nth month (and the first and last)"},
};

#define ASSUME_OPTS_MAX 64

/* input_section makes one hidden flag per assumption (--users, --write-bytes)
 * from the planner's field table, once. */
static const struct ld_opt_section *input_section(void)
{
	static struct ld_opt opts[ASSUME_OPTS_MAX];
	static char names[ASSUME_OPTS_MAX][40];
	static struct ld_opt_section sec;
	size_t i, j;

	if (sec.nopts)
		return &sec;
	for (i = 0; i < ld_assume_nfields && i < ASSUME_OPTS_MAX; i++) {
		const struct ld_assume_field *f = &ld_assume_fields[i];

		for (j = 0; f->key[j] && j + 1 < sizeof(names[i]); j++)
			names[i][j] = f->key[j] == '_' ? '-' : f->key[j];
		names[i][j] = '\0';
		opts[i] = (struct ld_opt){.flag = names[i],
					  .type = LD_OPT_FN,
					  .off = offsetof(struct plan_cli, a),
					  .size = sizeof(struct ld_assume),
					  .flags = LD_OPT_HIDDEN,
					  .parse = p_input,
					  .data = f,
					  .metavar = "VALUE",
					  .help = f->doc};
	}
	sec.name = "assumptions";
	sec.opts = opts;
	sec.nopts = i;
	sec.help = "--KEY VALUE    any input, e.g. --users 10M --writes 1B/month --growth 5%\n"
		   "                 (the key of `ladder plan fields`, with - or _)";
	return &sec;
}

static int cmd_plan(int argc, char **argv)
{
	struct ld_opt_section secs[2] = {
	    {"input and output", plan_opts, sizeof(plan_opts) / sizeof(plan_opts[0]), NULL}};
	struct ld_optset set;
	struct ld_args *args = malloc(sizeof(*args));
	struct plan_cli *c = calloc(1, sizeof(*c));
	struct ld_plan p = {0};
	struct ld_buf out;
	char err[512];
	int rc = 2;

	ld_buf_init(&out, OUT_MAX);
	if (!args || !c) {
		rc = 1;
		goto out;
	}
	secs[1] = *input_section();
	if (ld_assume_nfields > ASSUME_OPTS_MAX) {
		fprintf(stderr, "ladder plan: more inputs than ASSUME_OPTS_MAX\n");
		rc = 1;
		goto out;
	}
	ld_optset_init(&set, "plan");
	set.summary = "capacity planner: assumptions and measurements to servers and cost";
	set.usage = plan_usage;
	set.about = plan_about;
	set.examples = plan_examples;
	set.notes = plan_notes;
	set.fold_underscore = true;
	ld_assume_defaults(&c->a);
	/* Pass 1 (early options): where the inputs come from and where the
	 * output goes. */
	rc = parse_cmdline(&set, args, argc, argv, secs, 2, c);
	if (rc) {
		rc = rc == LD_CONFIG_EXIT_OK ? 0 : rc;
		goto out;
	}
	rc = 2;
	if (c->assumptions && ld_assume_load(&c->a, c->assumptions, err, sizeof(err))) {
		fprintf(stderr, "ladder plan: %s\n", err);
		goto out;
	}
	if (c->bench) {
		struct ld_bench_report br;

		if (ld_bench_report_load(c->bench, &br, err, sizeof(err))) {
			fprintf(stderr, "ladder plan: %s\n", err);
			goto out;
		}
		ld_bench_report_apply(&br, c->bench, &c->a);
	}
	/* Pass 2: overrides, in order, so the last one wins. */
	if (apply_rest(&set, args))
		goto out;
	if (ld_plan_compute(&c->a, &p, err, sizeof(err))) {
		fprintf(stderr, "ladder plan: %s\n", err);
		goto out;
	}
	if (ld_plan_render(&p, c->format, c->every, &out)) {
		fprintf(stderr, "ladder plan: the report does not fit in %u bytes\n", OUT_MAX);
		rc = 1;
		goto out;
	}
	rc = emit(&out, c->outpath);
out:
	ld_plan_release(&p);
	ld_buf_release(&out);
	free(c);
	free(args);
	return rc;
}

/* add_file adds the points in one file: a bench report gives one point. */
static int add_file(struct ld_points *pts, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0, k = 0;
	int rc;

	rc = ld_read_file(path, LD_BENCH_REPORT_MAX, &text, &len, err, errlen);
	if (rc)
		goto out;
	while (k < len && (text[k] == ' ' || text[k] == '\n' || text[k] == '\t' || text[k] == '\r'))
		k++;
	if (k < len && text[k] == '{') {
		struct ld_bench_report br;

		rc = ld_bench_report_parse(path, text, len, &br, err, errlen);
		if (rc)
			goto out;
		if (!br.has_connections) {
			snprintf(err, errlen, "%s: config.connections: missing (needed as N)",
				 path);
			rc = -EINVAL;
			goto out;
		}
		rc = ld_points_add(pts, br.connections, br.achieved_rps);
		if (rc)
			snprintf(err, errlen, "%s: too many points", path);
	} else {
		rc = ld_points_parse(pts, path, text, len, err, errlen);
	}
out:
	free(text);
	return rc;
}

static int fit_json(const struct ld_points *pts, const struct ld_usl *u, struct ld_buf *out)
{
	json_t *root, *arr;
	char *s = NULL;
	size_t i;
	int rc = -ENOMEM;

	arr = json_array();
	for (i = 0; arr && i < pts->count; i++)
		json_array_append_new(arr,
				      json_pack("{s:f, s:f, s:f}", "n", pts->n[i], "x", pts->x[i],
						"fitted", ld_usl_eval(u, pts->n[i])));
	root = json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:s, s:i, s:o}", "model", "usl",
			 "sigma", u->sigma, "kappa", u->kappa, "lambda", u->lambda, "r2", u->r2,
			 "rmse", u->rmse, "peak_n",
			 isfinite(u->peak_n) ? json_real(u->peak_n) : json_null(), "peak_x",
			 isfinite(u->peak_x) ? json_real(u->peak_x) : json_null(), "limit",
			 u->limit, "iterations", u->iterations, "points", arr);
	if (root)
		s = json_dumps(root,
			       JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	if (s)
		rc = ld_buf_printf(out, "%s\n", s);
	free(s);
	json_decref(root);
	return rc;
}

static int fit_text(const struct ld_points *pts, const struct ld_usl *u, struct ld_buf *out)
{
	struct ld_plan_out o = {out, 0};
	size_t i;

	ld_plan_out_printf(&o,
			   "USL fit of %zu points (Levenberg-Marquardt, %d iterations)\n"
			   "  sigma  (contention) %.6g\n"
			   "  kappa  (coherency)  %.6g\n"
			   "  lambda (one unit)   %.6g /s\n"
			   "  R^2 %.5f, RMSE %.4g /s\n",
			   pts->count, u->iterations, u->sigma, u->kappa, u->lambda, u->r2,
			   u->rmse);
	if (isfinite(u->peak_n))
		ld_plan_out_printf(
		    &o,
		    "  peak: N* = sqrt((1 - sigma) / kappa) = %.1f, X(N*) = %.5g /s; "
		    "more concurrency lowers throughput\n",
		    u->peak_n, u->peak_x);
	else if (isfinite(u->peak_x))
		ld_plan_out_printf(&o,
				   "  no peak (kappa = 0): throughput approaches lambda / sigma = "
				   "%.5g /s\n",
				   u->peak_x);
	else
		ld_plan_out_printf(&o, "  scales linearly over the measured range\n");
	if (!strcmp(u->limit, "contention"))
		ld_plan_out_printf(&o, "  limit: contention (serialised work: locks, one writer, a "
				       "shared queue) dominates at the peak\n");
	else if (!strcmp(u->limit, "coherency"))
		ld_plan_out_printf(&o, "  limit: coherency (crosstalk between units: cache-line "
				       "and lock ping-pong, replication chatter) dominates\n");
	else
		ld_plan_out_printf(&o, "  limit: none seen\n");
	ld_plan_out_printf(&o, "\n%10s %12s %12s %10s\n", "N", "measured", "fitted", "residual");
	for (i = 0; i < pts->count; i++) {
		double fx = ld_usl_eval(u, pts->n[i]);

		ld_plan_out_printf(&o, "%10g %12.5g %12.5g %+10.4g\n", pts->n[i], pts->x[i], fx,
				   pts->x[i] - fx);
	}
	return o.err;
}

/* What `ladder plan fit`'s command line fills. */
struct fit_cli {
	struct ld_points pts;
	bool json;
};

static int p_fit_format(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) {
		snprintf(why, n, "expected text or json, got '%.64s'", v);
		return -EINVAL;
	}
	((struct fit_cli *)base)->json = !strcmp(v, "json");
	return 0;
}

static int p_point(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct fit_cli *f = base;
	char err[256] = "";
	double pn, px;

	if (ld_points_parse_one(v, &pn, &px, err, sizeof(err)) || ld_points_add(&f->pts, pn, px)) {
		snprintf(why, n, "'%.64s': %s", v, err[0] ? err : "too many points");
		return -EINVAL;
	}
	return 0;
}

static int p_points_file(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	return add_file(&((struct fit_cli *)base)->pts, v, why, n) ? -EINVAL : 0;
}

#define FC(field) offsetof(struct fit_cli, field), sizeof(((struct fit_cli *)0)->field), 0

static const struct ld_opt fit_opts[] = {
    {NULL, 0, NULL, NULL, LD_OPT_FN, FC(pts), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_points_file, NULL,
     "FILE", "points file or bench report"},
    {"point", 0, NULL, NULL, LD_OPT_FN, FC(pts), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_point, NULL,
     "N,X", "one measured point: concurrency N, throughput X"},
    {"points", 0, NULL, NULL, LD_OPT_FN, FC(pts), NULL, 0, 0, NULL, LD_OPT_REPEAT, p_points_file,
     NULL, "FILE", "a file of points or a bench report (as a FILE argument)"},
    {"format", 0, NULL, NULL, LD_OPT_FN, FC(json), "text", 0, 0, NULL, 0, p_fit_format, NULL, "F",
     "text or json"},
};

static int cmd_fit(int argc, char **argv)
{
	static const struct ld_opt_section sec = {"points and output", fit_opts,
						  sizeof(fit_opts) / sizeof(fit_opts[0]), NULL};
	struct ld_optset set;
	struct ld_args *args = malloc(sizeof(*args));
	struct fit_cli f = {0};
	struct ld_usl u;
	struct ld_buf out;
	char err[512];
	int rc = 2;

	ld_points_init(&f.pts);
	ld_buf_init(&out, OUT_MAX);
	if (!args) {
		rc = 1;
		goto out;
	}
	ld_optset_init(&set, "plan fit");
	set.summary = "fit the Universal Scalability Law to measured points";
	set.usage = "[--point N,X ...] [FILE ...] [--format text|json]";
	set.about = fit_about;
	set.examples = fit_examples;
	rc = parse_cmdline(&set, args, argc, argv, &sec, 1, &f);
	if (rc == 0)
		rc = apply_rest(&set, args);
	if (rc) {
		rc = rc == LD_CONFIG_EXIT_OK ? 0 : rc;
		goto out;
	}
	rc = 2;
	if (ld_usl_fit(f.pts.n, f.pts.x, f.pts.count, &u, err, sizeof(err))) {
		fprintf(stderr, "ladder plan fit: %s\n", err);
		goto out;
	}
	rc = f.json ? fit_json(&f.pts, &u, &out) : fit_text(&f.pts, &u, &out);
	rc = rc ? 1 : emit(&out, NULL);
out:
	ld_points_release(&f.pts);
	ld_buf_release(&out);
	free(args);
	return rc;
}

/* parse_per_second reads a rate where a bare count means per second. */
static int parse_per_second(const char *s, double *out, char *err, size_t errlen)
{
	struct ld_rate r;
	int rc;

	if (!strchr(s, '/')) {
		rc = ld_num_parse(s, LD_NUM_COUNT, out, err, errlen);
		goto out;
	}
	rc = ld_num_parse(s, LD_NUM_RATE, &r, err, errlen);
	if (!rc && r.per_s == 0) {
		snprintf(err, errlen,
			 "a month's length is not known here: use /s, /min, /h or "
			 "/day");
		rc = -EINVAL;
	}
	if (!rc)
		*out = r.n / r.per_s;
out:
	return rc;
}

struct queue_args {
	double rate, service, slo, p, servers, k;
	bool json;
	int have_rate;
};

static int queue_report(const struct queue_args *q, struct ld_buf *out)
{
	struct ld_plan_out o = {out, 0};
	struct ld_mmc m, row;
	double c, lo, nodes = 0, qt;
	char b[4][32];
	int rc = 0, sized, ok_nodes = 0;
	json_t *root = NULL, *rows = NULL;
	char *s = NULL;

	if (q->servers > 0) {
		rc = ld_mmc_eval(q->rate, q->service, q->servers, &m);
		sized = 0;
	} else {
		rc = ld_mmc_size(q->rate, q->service, q->slo, q->p, &m);
		sized = 1;
	}
	if (rc == -ERANGE) {
		fprintf(stderr,
			"ladder plan queue: slo: %g s cannot be met at p%g: the service time "
			"alone exceeds it (%g s at that percentile)\n",
			q->slo, q->p * 100, q->service * log(1 / (1 - q->p)));
		rc = 2;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "ladder plan queue: inputs out of range\n");
		rc = 2;
		goto out;
	}
	if (m.a >= m.c) {
		fprintf(stderr,
			"ladder plan queue: servers: %.0f servers cannot keep up with %.4g erlangs "
			"offered (the queue grows without bound)\n",
			m.c, m.a);
		rc = 2;
		goto out;
	}
	if (q->k > 0 && q->slo > 0) {
		struct ld_mmc nm;

		ok_nodes = !ld_mmc_size_nodes(q->rate, q->service, q->k, q->slo, q->p, &nodes, &nm);
	}
	qt = ld_mmc_resp_quantile(&m, q->p);
	if (q->json) {
		rows = json_array();
		lo = floor(m.a) + 1;
		for (c = lo; rows && c <= m.c + 2 && c - lo < 64; c++) {
			if (ld_mmc_eval(q->rate, q->service, c, &row))
				continue;
			json_array_append_new(
			    rows,
			    json_pack("{s:f, s:f, s:f, s:f, s:f, s:o}", "servers", c, "utilisation",
				      row.rho, "p_wait", row.pwait, "mean_wait_s", row.wq,
				      "mean_response_s", row.w, "quantile_s",
				      json_real(ld_mmc_resp_quantile(&row, q->p))));
		}
		root = json_pack(
		    "{s:s, s:f, s:f, s:f, s:f, s:b, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o, "
		    "s:o}",
		    "model", "M/M/c", "rate", q->rate, "service_time_s", q->service,
		    "offered_erlangs", m.a, "percentile", q->p, "sized_for_slo", sized, "servers",
		    m.c, "utilisation", m.rho, "p_wait", m.pwait, "mean_wait_s", m.wq,
		    "mean_response_s", m.w, "quantile_s", qt, "little_in_system", m.l,
		    "little_waiting", m.lq, "nodes", ok_nodes ? json_real(nodes) : json_null(),
		    "table", rows ? rows : json_null());
		rows = NULL;
		s = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
						JSON_REAL_PRECISION(10))
			 : NULL;
		if (!s) {
			rc = 1;
			goto out;
		}
		ld_plan_out_printf(&o, "%s\n", s);
		rc = o.err ? 1 : 0;
		goto out;
	}
	ld_plan_out_printf(&o, "M/M/c: %s/s arriving, %s mean service: offered load %.4g erlangs\n",
			   ld_num_fmt_si(q->rate, b[0], 32),
			   ld_num_fmt_duration(q->service, b[1], 32), m.a);
	if (sized)
		ld_plan_out_printf(&o, "smallest server count with p%.4g response <= %s: %.0f\n",
				   q->p * 100, ld_num_fmt_duration(q->slo, b[0], 32), m.c);
	ld_plan_out_printf(
	    &o,
	    "  servers %.0f, utilisation %.1f%%\n"
	    "  P(wait) = C(c, A) = %.6g (Erlang C)\n"
	    "  mean wait %s, mean response %s, p%.4g response %s\n"
	    "  Little's law: %.4g requests in the system on average (%.4g waiting)\n",
	    m.c, m.rho * 100, m.pwait, ld_num_fmt_duration(m.wq, b[0], 32),
	    ld_num_fmt_duration(m.w, b[1], 32), q->p * 100, ld_num_fmt_duration(qt, b[2], 32), m.l,
	    m.lq);
	if (q->k > 0 && q->slo > 0) {
		if (ok_nodes)
			ld_plan_out_printf(
			    &o,
			    "  as nodes of %.0f servers behind a balancer (one queue "
			    "each): %.0f nodes\n",
			    q->k, nodes);
		else
			ld_plan_out_printf(&o,
					   "  as nodes of %.0f servers: the objective cannot "
					   "be met\n",
					   q->k);
	}
	ld_plan_out_printf(&o, "\n%8s %8s %10s %12s %12s %12s\n", "servers", "util", "P(wait)",
			   "mean wait", "mean resp", "quantile");
	lo = floor(m.a) + 1;
	if (m.c - lo > 12)
		lo = m.c - 12;
	for (c = lo; c <= m.c + 2; c++) {
		if (ld_mmc_eval(q->rate, q->service, c, &row))
			continue;
		ld_plan_out_printf(&o, "%8.0f %7.1f%% %10.4g %12s %12s %12s%s\n", c, row.rho * 100,
				   row.pwait, ld_num_fmt_duration(row.wq, b[0], 32),
				   ld_num_fmt_duration(row.w, b[1], 32),
				   ld_num_fmt_duration(ld_mmc_resp_quantile(&row, q->p), b[2], 32),
				   c == m.c ? "  <-" : "");
	}
	rc = o.err ? 1 : 0;
out:
	free(s);
	json_decref(root);
	json_decref(rows);
	return rc;
}

static int p_qrate(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	struct queue_args *q = base;

	q->have_rate = 1;
	return parse_per_second(v, &q->rate, why, n) ? -EINVAL : 0;
}

/* p_num reads a number of kind o->data (enum ld_num_kind) into the double. */
static int p_num(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	const enum ld_num_kind *kind = o->data;

	return ld_num_parse(v, *kind, (char *)base + o->off, why, n) ? -EINVAL : 0;
}

static int p_qformat(const struct ld_opt *o, void *base, const char *v, char *why, size_t n)
{
	if (strcmp(v, "text") && strcmp(v, "json")) {
		snprintf(why, n, "expected text or json, got '%.64s'", v);
		return -EINVAL;
	}
	((struct queue_args *)base)->json = !strcmp(v, "json");
	return 0;
}

static const enum ld_num_kind k_duration = LD_NUM_DURATION, k_fraction = LD_NUM_FRACTION,
			      k_count = LD_NUM_COUNT;

#define QA(field) offsetof(struct queue_args, field), sizeof(((struct queue_args *)0)->field), 0

static const struct ld_opt queue_opts[] = {
    {"rate", 0, NULL, NULL, LD_OPT_FN, QA(rate), NULL, 0, 0, NULL, 0, p_qrate, NULL, "R",
     "arrivals per second (or 1M/day, 30K/min)"},
    {"service-time", 0, NULL, NULL, LD_OPT_FN, QA(service), NULL, 0, 0, NULL, 0, p_num, &k_duration,
     "S", "mean service time of one request"},
    {"slo", 0, NULL, NULL, LD_OPT_FN, QA(slo), NULL, 0, 0, NULL, 0, p_num, &k_duration, "T",
     "response time objective at the percentile: size the servers for it"},
    {"slo-p99", 0, NULL, NULL, LD_OPT_FN, QA(slo), NULL, 0, 0, NULL, LD_OPT_HIDDEN, p_num,
     &k_duration, "T", "the same as --slo"},
    {"percentile", 0, NULL, NULL, LD_OPT_FN, QA(p), "99%", 0, 0, NULL, 0, p_num, &k_fraction, "P",
     "the percentile of --slo"},
    {"servers", 0, NULL, NULL, LD_OPT_FN, QA(servers), NULL, 0, 0, NULL, 0, p_num, &k_count, "C",
     "evaluate C servers instead of sizing"},
    {"cores-per-node", 0, NULL, NULL, LD_OPT_FN, QA(k), NULL, 0, 0, NULL, 0, p_num, &k_count, "K",
     "also size nodes of K servers each"},
    {"format", 0, NULL, NULL, LD_OPT_FN, QA(json), "text", 0, 0, NULL, 0, p_qformat, NULL, "F",
     "text or json"},
};

static int cmd_queue(int argc, char **argv)
{
	static const struct ld_opt_section sec = {"queue and output", queue_opts,
						  sizeof(queue_opts) / sizeof(queue_opts[0]), NULL};
	struct queue_args q = {0};
	struct ld_optset set;
	struct ld_args *args = malloc(sizeof(*args));
	struct ld_buf out;
	int rc = 2, have_rate;

	ld_buf_init(&out, OUT_MAX);
	if (!args) {
		rc = 1;
		goto out;
	}
	ld_optset_init(&set, "plan queue");
	set.summary = "M/M/c sizing: servers for a rate, a service time and an objective";
	set.usage = "--rate R --service-time S [--slo T] [--percentile P]\n"
		    "                         [--servers C] [--cores-per-node K] [--format "
		    "text|json]";
	set.about = queue_about;
	set.examples = queue_examples;
	rc = parse_cmdline(&set, args, argc, argv, &sec, 1, &q);
	if (rc == 0)
		rc = apply_rest(&set, args);
	if (rc) {
		rc = rc == LD_CONFIG_EXIT_OK ? 0 : rc;
		goto out;
	}
	rc = 2;
	have_rate = q.have_rate;
	if (!have_rate || !(q.rate > 0) || q.rate > 1e12) {
		fprintf(stderr, "ladder plan queue: --rate: %s\n",
			have_rate ? "must be above 0 and at most 1e12 per second" : "missing");
		goto out;
	}
	if (!(q.service > 0) || q.service > 86400) {
		fprintf(stderr, "ladder plan queue: --service-time: %s\n",
			q.service == 0 ? "missing or zero" : "must be in (0, 1 day]");
		goto out;
	}
	if (!(q.p >= 0.5 && q.p < 1)) {
		fprintf(stderr, "ladder plan queue: --percentile: must be in [50%%, 100%%)\n");
		goto out;
	}
	if (q.servers != floor(q.servers) || q.servers < 0 || q.servers > LD_ERLANG_C_MAX) {
		fprintf(stderr, "ladder plan queue: --servers: must be a whole number in [1, %g]\n",
			LD_ERLANG_C_MAX);
		goto out;
	}
	if (q.k != floor(q.k) || q.k < 0 || q.k > 4096) {
		fprintf(stderr, "ladder plan queue: --cores-per-node: must be a whole number in "
				"[1, 4096]\n");
		goto out;
	}
	if (q.servers == 0 && !(q.slo > 0)) {
		fprintf(stderr, "ladder plan queue: --slo: missing (or give --servers)\n");
		goto out;
	}
	if (q.rate * q.service > LD_ERLANG_C_MAX) {
		fprintf(stderr, "ladder plan queue: --rate: offered load above %g erlangs\n",
			LD_ERLANG_C_MAX);
		goto out;
	}
	rc = queue_report(&q, &out);
	if (!rc)
		rc = emit(&out, NULL);
out:
	ld_buf_release(&out);
	free(args);
	return rc;
}

int ld_plan_main(int argc, char **argv)
{
	int rc;

	if (argc > 1 && !strcmp(argv[1], "fit"))
		rc = cmd_fit(argc - 1, argv + 1);
	else if (argc > 1 && !strcmp(argv[1], "queue"))
		rc = cmd_queue(argc - 1, argv + 1);
	else if (argc > 1 && !strcmp(argv[1], "fields"))
		rc = cmd_fields(argc - 1, argv + 1);
	else
		rc = cmd_plan(argc, argv);
	return rc;
}
