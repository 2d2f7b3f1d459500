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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
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
    "usage: ladder plan [--assumptions FILE] [--bench REPORT.json] [--KEY VALUE ...]\n"
    "                   [--format text|json|markdown|html] [--out FILE] [--every N]\n"
    "       ladder plan fit [--point N,X ...] [POINTS.csv | REPORT.json ...] [--format F]\n"
    "       ladder plan queue --rate R --service-time S [--slo T] [--percentile P]\n"
    "       ladder plan fields\n"
    "\n"
    "Turns a service's assumptions and measured per-node throughput into the\n"
    "resources, storage, bandwidth and cost of each month, and the rungs of the\n"
    "ladder to climb, and when. Later wins: defaults, --assumptions, --bench, flags.\n"
    "\n"
    "options:\n"
    "  --assumptions FILE  key = value file (see examples/assumptions.ini)\n"
    "  --bench FILE        a `ladder bench --json` report: per-node capacities\n"
    "  --KEY VALUE         any input, e.g. --users 10M --writes 1B/month --growth 5%\n"
    "  --set KEY=VALUE     the same, spelled as in the assumptions file\n"
    "  --format F          text (default), json, markdown or html (self-contained)\n"
    "  --out FILE          write there instead of standard output\n"
    "  --every N           tables show every Nth month (and the first and last)\n"
    "\n"
    "Numbers take suffixes: 10M, 1B (decimal), 1KB = 1000 B, 1KiB = 1024 B,\n"
    "50ms, 2s, 20%, 3x; rates 1B/month (a bare count is per month), 50M/day, 400/s.\n"
    "`ladder plan fields` lists every input with its default and meaning.\n"
    "\n"
    "Default capacities: 174969 reads/s per app core (GET /v1/items/{id} on one core)\n"
    "and 59359 writes/s of the single-box store (durable POST /v1/items, 64 "
    "clients),\n" LD_ASSUME_MEASURED_ON ";\n"
    "--bench replaces them with your own measurements.\n"
    "\n"
    "examples:\n"
    "  ladder plan\n"
    "  ladder plan --users 10M --months 36 --growth 5% --format html --out plan.html\n"
    "  ladder plan --assumptions examples/assumptions.ini --bench bench.json\n"
    "  ladder plan fit --point 1,65 --point 18,996 --point 36,1652 --point 72,1853\n"
    "  ladder plan queue --rate 10000 --service-time 50ms --slo 250ms\n";

static const char fit_usage[] =
    "usage: ladder plan fit [--point N,X ...] [FILE ...] [--format text|json]\n"
    "\n"
    "Fits the Universal Scalability Law X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1))\n"
    "to measured (concurrency N, throughput X) points by non-linear least squares and\n"
    "reports the peak concurrency N* = sqrt((1 - sigma) / kappa), the throughput there,\n"
    "and whether contention (sigma) or coherency (kappa) limits. Needs 3 or more points.\n"
    "\n"
    "Points come from --point N,X, from text files of 'N,X' lines (a CSV header\n"
    "line and # comments are skipped), or from `ladder bench` JSON reports (a file\n"
    "starting with '{'): N = config.connections, X = results.achieved_rps.\n"
    "\n"
    "example:\n"
    "  ladder plan fit --point 1,65 --point 18,996 --point 36,1652 --point 72,1853 \\\n"
    "      --point 108,1829 --point 144,1775 --point 216,1702\n"
    "  ladder plan fit run-*.json\n";

static const char queue_usage[] =
    "usage: ladder plan queue --rate R --service-time S [--slo T] [--percentile P]\n"
    "                         [--servers C] [--cores-per-node K] [--format text|json]\n"
    "\n"
    "M/M/c queueing (Erlang C): the probability a request waits, the mean wait, the\n"
    "response time at a percentile, and Little's law L = lambda W for pools and\n"
    "connections. With --slo, finds the smallest number of servers C whose response\n"
    "time at the percentile (default 99%) is within it; with --servers, evaluates C.\n"
    "With --cores-per-node K, also sizes nodes of K servers each behind a balancer.\n"
    "\n"
    "R is per second (or 1M/day, 30K/min); S and T are durations (50ms, 0.2s).\n"
    "\n"
    "examples:\n"
    "  ladder plan queue --rate 10000 --service-time 50ms --slo 250ms\n"
    "  ladder plan queue --rate 100 --service-time 10ms --servers 2\n";

/* opt matches "--name VALUE" or "--name=VALUE" at argv[*i]; returns 1 with
 * *val set, 0 when argv[*i] is another option, -1 when the value is missing. */
static int opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "ladder plan: %s: missing value\n", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

static int is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
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

static const char fields_usage[] =
    "usage: ladder plan fields\n"
    "\n"
    "Lists every input of `ladder plan` with its section, default and meaning, in\n"
    "the assumptions file's format (key = default # meaning).\n"
    "\n"
    "example:\n"
    "  ladder plan fields > my-assumptions.ini   # then edit, and: ladder plan --assumptions "
    "my-assumptions.ini\n";

static int cmd_fields(int argc, char **argv)
{
	struct ld_assume a;
	char buf[48];
	const char *sec = "";
	size_t i;

	if (argc > 1 && is_help(argv[1])) {
		fputs(fields_usage, stdout);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "ladder plan fields: unexpected argument '%s' (see --help)\n",
			argv[1]);
		return 2;
	}
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

static int cmd_plan(int argc, char **argv)
{
	const char *assumptions = NULL, *bench = NULL, *outpath = NULL, *fmt = "text", *v;
	enum ld_plan_format f;
	struct ld_assume a;
	struct ld_plan p = {0};
	struct ld_buf out;
	char err[512];
	long every = 1;
	int i, r, rc = 2;

	ld_buf_init(&out, OUT_MAX);
	/* Pass 1: where the inputs come from and where the output goes. */
	for (i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			fputs(plan_usage, stdout);
			rc = 0;
			goto out;
		}
		if ((r = opt(argc, argv, &i, "--assumptions", &v)) != 0)
			assumptions = v;
		else if ((r = opt(argc, argv, &i, "--bench", &v)) != 0)
			bench = v;
		else if ((r = opt(argc, argv, &i, "--format", &v)) != 0)
			fmt = v;
		else if ((r = opt(argc, argv, &i, "--out", &v)) != 0)
			outpath = v;
		else if ((r = opt(argc, argv, &i, "--every", &v)) != 0) {
			char *end;

			every = strtol(v, &end, 10);
			if (*end || every < 1 || every > LD_ASSUME_MONTHS_MAX) {
				fprintf(stderr,
					"ladder plan: --every: expected a whole number of "
					"months >= 1, got '%s'\n",
					v);
				goto out;
			}
		} else if (argv[i][0] == '-' && argv[i][1] == '-' && i + 1 < argc &&
			   !strchr(argv[i], '='))
			i++; /* an input override and its value: pass 2 */
		if (r < 0)
			goto out;
	}
	if (ld_plan_format_parse(fmt, &f)) {
		fprintf(stderr,
			"ladder plan: --format: expected text, json, markdown or html, "
			"got '%s'\n",
			fmt);
		goto out;
	}
	ld_assume_defaults(&a);
	if (assumptions && ld_assume_load(&a, assumptions, err, sizeof(err))) {
		fprintf(stderr, "ladder plan: %s\n", err);
		goto out;
	}
	if (bench) {
		struct ld_bench_report br;

		if (ld_bench_report_load(bench, &br, err, sizeof(err))) {
			fprintf(stderr, "ladder plan: %s\n", err);
			goto out;
		}
		ld_bench_report_apply(&br, bench, &a);
	}
	/* Pass 2: overrides, in order, so the last one wins. */
	for (i = 1; i < argc; i++) {
		const char *key = argv[i], *eq;
		char name[64];

		if ((r = opt(argc, argv, &i, "--assumptions", &v)) != 0 ||
		    (r = opt(argc, argv, &i, "--bench", &v)) != 0 ||
		    (r = opt(argc, argv, &i, "--format", &v)) != 0 ||
		    (r = opt(argc, argv, &i, "--out", &v)) != 0 ||
		    (r = opt(argc, argv, &i, "--every", &v)) != 0)
			continue;
		if ((r = opt(argc, argv, &i, "--set", &v)) != 0) {
			if (r < 0)
				goto out;
			eq = strchr(v, '=');
			if (!eq || eq == v || (size_t)(eq - v) >= sizeof(name)) {
				fprintf(stderr,
					"ladder plan: --set: expected KEY=VALUE, got '%s'\n", v);
				goto out;
			}
			memcpy(name, v, (size_t)(eq - v));
			name[eq - v] = '\0';
			if (ld_assume_set(&a, name, eq + 1, err, sizeof(err))) {
				fprintf(stderr, "ladder plan: %s\n", err);
				goto out;
			}
			continue;
		}
		if (strncmp(key, "--", 2) != 0) {
			fprintf(stderr, "ladder plan: unexpected argument '%s' (see --help)\n",
				key);
			goto out;
		}
		key += 2;
		eq = strchr(key, '=');
		if (eq) {
			if ((size_t)(eq - key) >= sizeof(name)) {
				fprintf(stderr, "ladder plan: %.60s: unknown option\n", argv[i]);
				goto out;
			}
			memcpy(name, key, (size_t)(eq - key));
			name[eq - key] = '\0';
			v = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", key);
			if (!ld_assume_find(name)) {
				fprintf(stderr,
					"ladder plan: --%.60s: unknown option (see --help)\n", key);
				goto out;
			}
			if (i + 1 >= argc) {
				fprintf(stderr, "ladder plan: --%s: missing value\n", name);
				goto out;
			}
			v = argv[++i];
		}
		if (ld_assume_set(&a, name, v, err, sizeof(err))) {
			fprintf(stderr, "ladder plan: %s\n", err);
			goto out;
		}
	}
	if (ld_plan_compute(&a, &p, err, sizeof(err))) {
		fprintf(stderr, "ladder plan: %s\n", err);
		goto out;
	}
	if (ld_plan_render(&p, f, (int)every, &out)) {
		fprintf(stderr, "ladder plan: the report does not fit in %u bytes\n", OUT_MAX);
		rc = 1;
		goto out;
	}
	rc = emit(&out, outpath);
out:
	ld_plan_release(&p);
	ld_buf_release(&out);
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

static int cmd_fit(int argc, char **argv)
{
	const char *fmt = "text", *v;
	struct ld_points pts;
	struct ld_usl u;
	struct ld_buf out;
	char err[512];
	int i, r, rc = 2;

	ld_points_init(&pts);
	ld_buf_init(&out, OUT_MAX);
	for (i = 1; i < argc; i++) {
		double n, x;

		if (is_help(argv[i])) {
			fputs(fit_usage, stdout);
			rc = 0;
			goto out;
		}
		if ((r = opt(argc, argv, &i, "--format", &v)) != 0) {
			if (r < 0)
				goto out;
			fmt = v;
		} else if ((r = opt(argc, argv, &i, "--point", &v)) != 0) {
			if (r < 0)
				goto out;
			if (ld_points_parse_one(v, &n, &x, err, sizeof(err)) ||
			    ld_points_add(&pts, n, x)) {
				fprintf(stderr, "ladder plan fit: --point %s: %s\n", v, err);
				goto out;
			}
		} else if ((r = opt(argc, argv, &i, "--points", &v)) != 0) {
			if (r < 0 || add_file(&pts, v, err, sizeof(err))) {
				if (r >= 0)
					fprintf(stderr, "ladder plan fit: %s\n", err);
				goto out;
			}
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "ladder plan fit: %s: unknown option (see --help)\n",
				argv[i]);
			goto out;
		} else if (add_file(&pts, argv[i], err, sizeof(err))) {
			fprintf(stderr, "ladder plan fit: %s\n", err);
			goto out;
		}
	}
	if (strcmp(fmt, "text") != 0 && strcmp(fmt, "json") != 0) {
		fprintf(stderr, "ladder plan fit: --format: expected text or json, got '%s'\n",
			fmt);
		goto out;
	}
	if (ld_usl_fit(pts.n, pts.x, pts.count, &u, err, sizeof(err))) {
		fprintf(stderr, "ladder plan fit: %s\n", err);
		goto out;
	}
	rc = !strcmp(fmt, "json") ? fit_json(&pts, &u, &out) : fit_text(&pts, &u, &out);
	rc = rc ? 1 : emit(&out, NULL);
out:
	ld_points_release(&pts);
	ld_buf_release(&out);
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
	int json;
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

static int cmd_queue(int argc, char **argv)
{
	struct queue_args q = {0, 0, 0, 0.99, 0, 0, 0};
	struct ld_buf out;
	const char *v;
	char err[256];
	int i, r, rc = 2, have_rate = 0;

	ld_buf_init(&out, OUT_MAX);
	for (i = 1; i < argc; i++) {
		const char *what = NULL;

		if (is_help(argv[i])) {
			fputs(queue_usage, stdout);
			rc = 0;
			goto out;
		}
		if ((r = opt(argc, argv, &i, "--rate", &v)) != 0) {
			what = "rate";
			if (r > 0 && parse_per_second(v, &q.rate, err, sizeof(err)))
				goto bad;
			have_rate = 1;
		} else if ((r = opt(argc, argv, &i, "--service-time", &v)) != 0) {
			what = "service-time";
			if (r > 0 && ld_num_parse(v, LD_NUM_DURATION, &q.service, err, sizeof(err)))
				goto bad;
		} else if ((r = opt(argc, argv, &i, "--slo", &v)) != 0 ||
			   (r = opt(argc, argv, &i, "--slo-p99", &v)) != 0) {
			what = "slo";
			if (r > 0 && ld_num_parse(v, LD_NUM_DURATION, &q.slo, err, sizeof(err)))
				goto bad;
		} else if ((r = opt(argc, argv, &i, "--percentile", &v)) != 0) {
			what = "percentile";
			if (r > 0 && ld_num_parse(v, LD_NUM_FRACTION, &q.p, err, sizeof(err)))
				goto bad;
		} else if ((r = opt(argc, argv, &i, "--servers", &v)) != 0) {
			what = "servers";
			if (r > 0 && ld_num_parse(v, LD_NUM_COUNT, &q.servers, err, sizeof(err)))
				goto bad;
		} else if ((r = opt(argc, argv, &i, "--cores-per-node", &v)) != 0) {
			what = "cores-per-node";
			if (r > 0 && ld_num_parse(v, LD_NUM_COUNT, &q.k, err, sizeof(err)))
				goto bad;
		} else if ((r = opt(argc, argv, &i, "--format", &v)) != 0) {
			if (r > 0 && strcmp(v, "text") && strcmp(v, "json")) {
				fprintf(stderr, "ladder plan queue: --format: expected text or "
						"json\n");
				goto out;
			}
			q.json = r > 0 && !strcmp(v, "json");
		} else {
			fprintf(stderr, "ladder plan queue: %s: unknown option (see --help)\n",
				argv[i]);
			goto out;
		}
		if (r < 0)
			goto out;
		continue;
	bad:
		fprintf(stderr, "ladder plan queue: --%s: %s\n", what, err);
		goto out;
	}
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
