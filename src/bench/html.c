/*
 * html.c - the HTML report of `ladder bench`: one self-contained page with
 * the summary and three SVG charts drawn here (latency percentiles over time,
 * the percentile spectrum on a log axis of 1/(1-p), achieved vs target rate),
 * and with --retries what the retries did (their totals, and a chart of
 * them per second).
 * No script and no external resource, so it opens anywhere, offline.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/profile.h"
#include "bench/report.h"

#define W  760.0
#define H  300.0
#define ML 70.0
#define MR 150.0
#define MT 30.0
#define MB 45.0

struct series {
	const char *name;
	const char *color;
	double *x, *y;
	int n;
};

static void esc(struct ld_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			ld_buf_puts(b, "&lt;");
			break;
		case '>':
			ld_buf_puts(b, "&gt;");
			break;
		case '&':
			ld_buf_puts(b, "&amp;");
			break;
		case '"':
			ld_buf_puts(b, "&quot;");
			break;
		default:
			ld_buf_putc(b, *s);
		}
	}
}

/* nice_max rounds v up to 1, 2 or 5 times a power of ten. */
static double nice_max(double v)
{
	double p, f;

	if (!(v > 0))
		return 1;
	p = pow(10, floor(log10(v)));
	f = v / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

static const char *fmt_pct_tick(double decade, char *buf, size_t n)
{
	/* 10^k on the 1/(1-p) axis is the percentile 100 * (1 - 10^-k). */
	if (decade == 0)
		snprintf(buf, n, "0%%");
	else
		snprintf(buf, n, "%.*f%%", decade > 2 ? (int)decade - 2 : 0,
			 100 * (1 - pow(10, -decade)));
	return buf;
}

static void chart(struct ld_buf *b, const char *id, const char *title, const char *xlabel,
		  const char *ylabel, const struct series *s, int ns, bool xlog)
{
	double xmin = 0, xmax = 0, ymax = 0, pw = W - ML - MR, ph = H - MT - MB;
	char tick[32];

	for (int k = 0; k < ns; k++) {
		for (int i = 0; i < s[k].n; i++) {
			double x = xlog ? log10(s[k].x[i]) : s[k].x[i];
			if (x > xmax)
				xmax = x;
			if (s[k].y[i] > ymax)
				ymax = s[k].y[i];
		}
	}
	if (xlog)
		xmax = ceil(xmax < 1 ? 1 : xmax);
	if (xmax <= xmin)
		xmax = xmin + 1;
	ymax = nice_max(ymax * 1.05);
	ld_buf_printf(
	    b,
	    "<h2>%s</h2>\n<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n"
	    "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fbfbfb\" "
	    "stroke=\"#999\"/>\n",
	    title, id, W, H, W, H, ML, MT, pw, ph);
	for (int i = 0; i <= 5; i++) {
		double yv = ymax * i / 5, py = MT + ph - ph * i / 5;
		ld_buf_printf(
		    b,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
		    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
		    ML, py, ML + pw, py, ML - 6, py + 4, yv);
	}
	if (xlog) {
		for (int d = 0; d <= (int)xmax; d++) {
			double px = ML + pw * d / xmax;
			ld_buf_printf(
			    b,
			    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			    "stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
			    "text-anchor=\"middle\">%s</text>\n",
			    px, MT, px, MT + ph, px, MT + ph + 16,
			    fmt_pct_tick(d, tick, sizeof(tick)));
		}
	} else {
		for (int i = 0; i <= 5; i++) {
			double xv = xmin + (xmax - xmin) * i / 5, px = ML + pw * i / 5;
			ld_buf_printf(b,
				      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
				      "text-anchor=\"middle\">%.3g</text>\n",
				      px, MT + ph + 16, xv);
		}
	}
	ld_buf_printf(
	    b,
	    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%s</text>"
	    "<text x=\"14\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
	    "transform=\"rotate(-90 14 %.1f)\">%s</text>\n",
	    ML + pw / 2, H - 8, xlabel, MT + ph / 2, MT + ph / 2, ylabel);
	for (int k = 0; k < ns; k++) {
		ld_buf_printf(b,
			      "<polyline class=\"series\" data-name=\"%s\" data-points=\"%d\" "
			      "fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s points=\"",
			      s[k].name, s[k].n, s[k].color,
			      k == 0 && ns == 2 && !xlog ? " stroke-dasharray=\"6 4\"" : "");
		for (int i = 0; i < s[k].n; i++) {
			double x = xlog ? log10(s[k].x[i]) : s[k].x[i];
			double px = ML + pw * (x - xmin) / (xmax - xmin);
			double py = MT + ph - ph * (s[k].y[i] / ymax);
			ld_buf_printf(b, "%s%.1f,%.1f", i ? " " : "", px, py);
		}
		ld_buf_puts(b, "\"/>\n");
		ld_buf_printf(b,
			      "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"3\" fill=\"%s\"/>"
			      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n",
			      W - MR + 12, MT + 10 + 18 * k, s[k].color, W - MR + 30,
			      MT + 15 + 18 * k, s[k].name);
	}
	ld_buf_puts(b, "</svg>\n");
}

static void row(struct ld_buf *b, const char *name, const struct ld_hdr *h)
{
	static const double ps[] = {50, 90, 95, 99, 99.9, 99.99};

	ld_buf_printf(b, "<tr><th>%s</th>", name);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		ld_buf_printf(b, "<td>%.3f</td>", (double)ld_hdr_percentile(h, ps[i]) / 1e3);
	ld_buf_printf(b, "<td>%.3f</td><td>%.3f</td></tr>\n", (double)ld_hdr_max(h) / 1e3,
		      ld_hdr_mean(h) / 1e3);
}

/* retries_section: with --retries, what the retries did (the totals of
 * the JSON's results.retries) and a chart of them per second. Returns
 * -ENOMEM or 0; append errors stay in b (they stick). */
static int retries_section(struct ld_buf *b, const struct ld_bench_opts *o,
			   const struct ld_bench_result *r)
{
	static const char *const names[3] = {"sent", "denied by the budget", "given up"};
	static const char *const colors[3] = {"#1f78b4", "#e31a1c", "#666"};
	struct series s[3];
	int n = r->npoints, rc = -ENOMEM;

	memset(s, 0, sizeof(s));
	for (int k = 0; k < 3; k++) {
		s[k].name = names[k];
		s[k].color = colors[k];
		s[k].n = n;
		s[k].x = calloc((size_t)n + 1, sizeof(double));
		s[k].y = calloc((size_t)n + 1, sizeof(double));
		if (!s[k].x || !s[k].y)
			goto out;
	}
	for (int i = 0; i < n; i++) {
		const struct ld_bench_point *p = &r->timeline[i];
		int64_t v[3] = {p->retries, p->retry_denied, p->retry_gave_up};

		for (int k = 0; k < 3; k++) {
			s[k].x[i] = p->t;
			s[k].y[i] = p->secs > 0 ? (double)v[k] / p->secs : 0;
		}
	}
	ld_buf_printf(b,
		      "<h2 id=\"retries-summary\">Retries</h2>\n<p>Up to %d retries per request, "
		      "exponential backoff with full jitter from %.0f ms up to %.0f ms (a "
		      "Retry-After is its floor), a retry budget of %g%% of the requests. "
		      "Statuses and errors above are final outcomes.</p>\n"
		      "<table id=\"retries\"><tr><th>retries sent</th><th>denied by the "
		      "budget</th><th>given up</th><th>sent per request</th></tr>\n"
		      "<tr><td>%lld</td><td>%lld</td><td>%lld</td><td>%.4f</td></tr></table>\n",
		      o->retries, o->retry_base_s * 1e3, o->retry_cap_s * 1e3,
		      o->retry_budget * 100, (long long)r->retries, (long long)r->retry_denied,
		      (long long)r->retry_gave_up,
		      r->requests ? (double)r->retries / (double)r->requests : 0.0);
	chart(b, "retries-over-time", "Retries per second", "seconds", "retries/s", s, 3, false);
	rc = 0;
out:
	for (int k = 0; k < 3; k++) {
		free(s[k].x);
		free(s[k].y);
	}
	return rc;
}

/* spectrum_series fills x = 1/(1-p) and y = ms from the percentile iteration;
 * the 100% line has no finite x and is left out. */
static int spectrum_series(const struct ld_hdr *h, struct series *s)
{
	struct ld_hdr_iter it;
	int n = 0, cap = 0;

	ld_hdr_iter_init(&it, h, 5);
	while (ld_hdr_iter_next(&it))
		cap++;
	s->x = calloc((size_t)cap + 1, sizeof(double));
	s->y = calloc((size_t)cap + 1, sizeof(double));
	if (!s->x || !s->y)
		return -ENOMEM;
	ld_hdr_iter_init(&it, h, 5);
	while (ld_hdr_iter_next(&it)) {
		if (it.percentile >= 100 || 1 / (1 - it.percentile / 100) > 1e7)
			continue;
		s->x[n] = 1 / (1 - it.percentile / 100);
		s->y[n] = (double)it.value / 1e3;
		n++;
	}
	s->n = n;
	return 0;
}

static int cmp_offered(const void *a, const void *b)
{
	const struct ld_prof_step *x = *(const struct ld_prof_step *const *)a;
	const struct ld_prof_step *y = *(const struct ld_prof_step *const *)b;
	return (x->offered_rps > y->offered_rps) - (x->offered_rps < y->offered_rps);
}

/* profile_section draws the bottleneck report: the verdict, its checks and
 * two charts against offered load (stage shares, utilisation), one point
 * per breakpoint step (or per sample for a single run), sorted by offered
 * load. Returns -ENOMEM or 0; append errors stay in b (they stick). */
static int profile_section(struct ld_buf *b, const struct ld_profile *p)
{
	static const char *const ucolors[5] = {"#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#666"};
	static const char *const unames[5] = {"loop busy", "writer busy", "generator CPU",
					      "disk busy", "busiest core"};
	static const char *const scolors[LD_ST_COUNT] = {
	    "#1f78b4", "#a6cee3", "#b2df8a", "#b15928", "#33a02c", "#fb9a99",
	    "#e31a1c", "#fdbf6f", "#999999", "#ff7f00", "#cab2d6", "#6a3d9a"};
	const struct ld_prof_verdict *v = ld_profile_verdict(p);
	const struct ld_prof_step *pts = NULL, **ord = NULL;
	struct series sh[LD_ST_COUNT], ut[5];
	int n = 0, nsh = 0, rc = -ENOMEM;

	memset(sh, 0, sizeof(sh));
	memset(ut, 0, sizeof(ut));
	pts = ld_profile_points(p, &n);
	ord = calloc((size_t)n + 1, sizeof(*ord));
	if (!ord)
		goto out;
	for (int i = 0; i < n; i++)
		ord[i] = &pts[i];
	qsort(ord, (size_t)n, sizeof(*ord), cmp_offered);
	for (int k = 0; k < LD_ST_COUNT; k++) {
		bool any = false;
		for (int i = 0; i < n; i++)
			any = any || ord[i]->stage_ns[k] > 0;
		if (!any)
			continue;
		sh[nsh].name = ld_prof_stage_name(k);
		sh[nsh].color = scolors[k];
		sh[nsh].n = n;
		sh[nsh].x = calloc((size_t)n + 1, sizeof(double));
		sh[nsh].y = calloc((size_t)n + 1, sizeof(double));
		if (!sh[nsh].x || !sh[nsh].y)
			goto out;
		for (int i = 0; i < n; i++) {
			sh[nsh].x[i] = ord[i]->offered_rps;
			sh[nsh].y[i] = 100 * ld_prof_share(ord[i], k);
		}
		nsh++;
	}
	for (int k = 0; k < 5; k++) {
		ut[k].name = unames[k];
		ut[k].color = ucolors[k];
		ut[k].n = n;
		ut[k].x = calloc((size_t)n + 1, sizeof(double));
		ut[k].y = calloc((size_t)n + 1, sizeof(double));
		if (!ut[k].x || !ut[k].y)
			goto out;
	}
	for (int i = 0; i < n; i++) {
		const struct ld_prof_step *s = ord[i];
		double y[5] = {s->loop_busy, s->writer_busy,
			       s->gen_allowed > 0 ? s->gen_cpu / s->gen_allowed : 0, s->disk_busy,
			       s->core_busy_max};
		for (int k = 0; k < 5; k++) {
			ut[k].x[i] = s->offered_rps;
			ut[k].y[i] = 100 * y[k];
		}
	}
	ld_buf_puts(
	    b, "<h2 id=\"profile\">Bottleneck report</h2>\n<p id=\"verdict\" data-resource=\"");
	esc(b, ld_prof_kind_name(v->kind));
	ld_buf_puts(b, "\"><b>");
	esc(b, v->line);
	ld_buf_puts(b, "</b></p>\n<ul id=\"checks\">\n");
	for (int i = 0; i < v->nnotes; i++) {
		ld_buf_puts(b, "<li>");
		esc(b, v->notes[i]);
		ld_buf_puts(b, "</li>\n");
	}
	if (v->usl_line[0]) {
		ld_buf_puts(b, "<li>");
		esc(b, v->usl_line);
		ld_buf_puts(b, "</li>\n");
	}
	ld_buf_puts(b, "</ul>\n");
	chart(b, "profile-shares", "Stage shares of the server's time vs offered load",
	      "offered requests/s", "% of request time", sh, nsh, false);
	chart(b, "profile-utilisation", "Utilisation vs offered load", "offered requests/s",
	      "% busy", ut, 5, false);
	rc = 0;
out:
	for (int k = 0; k < LD_ST_COUNT; k++) {
		free(sh[k].x);
		free(sh[k].y);
	}
	for (int k = 0; k < 5; k++) {
		free(ut[k].x);
		free(ut[k].y);
	}
	free(ord);
	return rc;
}

int ld_bench_html(struct ld_buf *b, const struct ld_bench_opts *o, const struct ld_bench_result *r,
		  const struct ld_bench_extra *x)
{
	struct series lat[5], rate[3], spec[2];
	static const char *const names[5] = {"p50", "p90", "p99", "p99.9", "max"};
	static const char *const colors[5] = {"#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#666"};
	int n = r->npoints, rc = -ENOMEM;
	double er = r->requests ? (double)r->errors / (double)r->requests : 0;

	memset(lat, 0, sizeof(lat));
	memset(rate, 0, sizeof(rate));
	memset(spec, 0, sizeof(spec));
	for (int k = 0; k < 5; k++) {
		lat[k].name = names[k];
		lat[k].color = colors[k];
		lat[k].n = n;
		lat[k].x = calloc((size_t)n + 1, sizeof(double));
		lat[k].y = calloc((size_t)n + 1, sizeof(double));
		if (!lat[k].x || !lat[k].y)
			goto out;
	}
	/* good: answers without an error (what a shedding server still
	 * serves: achieved counts its 503s too). */
	for (int k = 0; k < 3; k++) {
		rate[k].name = k == 2 ? "good (no error)" : k ? "achieved" : "target";
		rate[k].color = k == 2 ? "#1b9e77" : k ? "#d95f02" : "#1f78b4";
		rate[k].n = (k == 0 && o->closed) ? 0 : n;
		rate[k].x = calloc((size_t)n + 1, sizeof(double));
		rate[k].y = calloc((size_t)n + 1, sizeof(double));
		if (!rate[k].x || !rate[k].y)
			goto out;
	}
	for (int i = 0; i < n; i++) {
		const struct ld_bench_point *p = &r->timeline[i];
		int64_t v[5] = {p->p50_us, p->p90_us, p->p99_us, p->p999_us, p->max_us};
		for (int k = 0; k < 5; k++) {
			lat[k].x[i] = p->t;
			lat[k].y[i] = (double)v[k] / 1e3;
		}
		rate[0].x[i] = rate[1].x[i] = rate[2].x[i] = p->t;
		rate[0].y[i] = p->target_rps;
		rate[1].y[i] = p->achieved_rps;
		rate[2].y[i] = p->secs > 0 ? (double)(p->count - p->errors) / p->secs : 0;
	}
	if (spectrum_series(&r->latency, &spec[0]) || spectrum_series(&r->service, &spec[1]))
		goto out;
	spec[0].name = o->closed ? "latency (= service)" : "corrected latency";
	spec[0].color = "#d95f02";
	spec[1].name = "service time";
	spec[1].color = "#1b9e77";

	ld_buf_puts(b,
		    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<title>ladder bench report</title>\n<style>body{font-family:sans-serif;"
		    "margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid "
		    "#ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
		    "code{background:#f3f3f3;padding:2px 4px}</style></head><body>\n");
	ld_buf_puts(b, "<h1>ladder bench</h1>\n<p><code>");
	esc(b, o->cmdline);
	ld_buf_printf(b, "</code></p>\n<p>%s. %lld requests in %.2f s measured",
		      o->closed
			  ? "Closed loop at full speed: latency is service time only"
			  : "Open loop: latency measured from each request's intended send time",
		      (long long)r->requests, r->window_s);
	if (o->closed)
		ld_buf_printf(b, ", achieved %.1f/s", r->achieved_rps);
	else
		ld_buf_printf(b, ", target %.1f/s, achieved %.1f/s", r->target_rps,
			      r->achieved_rps);
	ld_buf_printf(b, "; errors %lld (%.3f%%), late %lld, dropped %lld.</p>\n",
		      (long long)r->errors, er * 100, (long long)r->late, (long long)r->dropped);
	ld_buf_puts(b, "<table id=\"summary\"><tr><th>ms</th><th>p50</th><th>p90</th><th>p95</th>"
		       "<th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>mean</th></tr>\n");
	row(b, o->closed ? "service" : "corrected", &r->latency);
	if (!o->closed)
		row(b, "service", &r->service);
	if (x->mix) {
		row(b, "read", &r->kind_latency[0]);
		row(b, "write", &r->kind_latency[1]);
	}
	ld_buf_puts(b, "</table>\n");
	if (o->slo_text) {
		ld_buf_puts(b, "<p>SLO <code>");
		esc(b, o->slo_text);
		ld_buf_printf(b, "</code>: %s ", x->slo_broken ? "<b>broken</b>" : "passed");
		esc(b, x->slo_why);
		ld_buf_puts(b, "</p>\n");
	}
	if (x->nsteps)
		ld_buf_printf(b,
			      "<p>Breakpoint: highest rate that held %.0f/s over %d steps.</p>\n",
			      x->max_rate_held, x->nsteps);
	chart(b, "latency-over-time", "Latency percentiles per second", "seconds", "ms", lat, 5,
	      false);
	chart(b, "spectrum", "Percentile spectrum", "percentile (log scale of 1/(1-p))", "ms", spec,
	      2, true);
	chart(b, "rate", "Achieved vs target rate", "seconds", "requests/s", rate, 3, false);
	if (o->retries && retries_section(b, o, r))
		goto out;
	if (x->profile && profile_section(b, x->profile))
		goto out;
	ld_buf_puts(b, "</body></html>\n");
	/* The buffer's first failure sticks: one look covers every append. */
	rc = ld_buf_error(b);
out:
	for (int k = 0; k < 5; k++) {
		free(lat[k].x);
		free(lat[k].y);
	}
	for (int k = 0; k < 3; k++) {
		free(rate[k].x);
		free(rate[k].y);
	}
	for (int k = 0; k < 2; k++) {
		free(spec[k].x);
		free(spec[k].y);
	}
	return rc;
}
