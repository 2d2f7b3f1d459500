/*
 * html.c - the plan as one self-contained HTML page: inline CSS and SVG
 * line charts, no scripts and no external resources, so it opens offline
 * and can be mailed or archived as one file.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plan/num.h"
#include "plan/report.h"

#define CW 680 /* chart width */
#define CH 280 /* chart height */
#define ML 76  /* left margin (tick labels) */
#define MR 16
#define MT 40 /* top margin (legend) */
#define MB 36

struct series {
	const char *name;
	const char *color;
	size_t off; /* double in struct ld_plan_month */
};

static void esc(struct ld_plan_out *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			ld_plan_out_printf(o, "&amp;");
			break;
		case '<':
			ld_plan_out_printf(o, "&lt;");
			break;
		case '>':
			ld_plan_out_printf(o, "&gt;");
			break;
		case '"':
			ld_plan_out_printf(o, "&quot;");
			break;
		default:
			ld_plan_out_printf(o, "%c", *s);
		}
	}
}

static double month_val(const struct ld_plan_month *m, size_t off)
{
	double v;

	memcpy(&v, (const char *)m + off, sizeof(v));
	return isfinite(v) ? v : 0;
}

/* nice_step picks a tick step of 1, 2 or 5 x 10^k giving about 5 ticks. */
static double nice_step(double max)
{
	double raw = max / 5, mag, f;

	if (!(raw > 0))
		return 1;
	mag = pow(10, floor(log10(raw)));
	f = raw / mag;
	if (f <= 1)
		return mag;
	if (f <= 2)
		return 2 * mag;
	if (f <= 5)
		return 5 * mag;
	return 10 * mag;
}

static void fmt_tick(enum ld_plan_col_fmt fmt, double v, char *out, size_t outlen)
{
	struct ld_plan_col c = {"", "", fmt, 0, 0};

	ld_plan_col_format(&c, v, out, outlen);
}

static void chart(struct ld_plan_out *o, const struct ld_plan *p, const char *title,
		  const struct series *s, size_t ns, enum ld_plan_col_fmt fmt, int markers)
{
	double max = 0, step, top, xs, pw = CW - ML - MR, ph = CH - MT - MB;
	char lab[48];
	size_t k;
	int i, n = p->nmonths;

	for (k = 0; k < ns; k++)
		for (i = 0; i < n; i++)
			max = fmax(max, month_val(&p->months[i], s[k].off));
	step = nice_step(max);
	top = step * ceil(max / step);
	if (!(top > 0))
		top = 1;
	xs = n > 1 ? pw / (n - 1) : 0;
	ld_plan_out_printf(o, "<figure><figcaption>");
	esc(o, title);
	ld_plan_out_printf(o,
			   "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
			   "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
			   CW, CH, CW, CH);
	ld_plan_out_printf(o, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
			   CW, CH);
	for (i = 0; top / step < 50 && i <= (int)(top / step + 0.5); i++) {
		double v = step * i, y = MT + ph - v / top * ph;

		fmt_tick(fmt, v, lab, sizeof(lab));
		ld_plan_out_printf(
		    o,
		    "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
		    "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" class=\"yt\">%s</text>\n",
		    ML, CW - MR, y, y, ML - 6, y + 4, lab);
	}
	for (i = 0; i < n; i++) {
		int m = i + 1, every = n <= 12 ? 1 : n <= 36 ? 6 : n <= 120 ? 12 : 60;

		if (m != 1 && m % every)
			continue;
		ld_plan_out_printf(o, "<text x=\"%.1f\" y=\"%d\" class=\"xt\">%d</text>\n",
				   ML + i * xs, CH - MB + 16, m);
	}
	ld_plan_out_printf(o, "<text x=\"%.1f\" y=\"%d\" class=\"xt\">month</text>\n", ML + pw / 2,
			   CH - 4);
	if (markers) {
		int j, seen, stack;

		/* One line per month with events; its labels stack downwards,
		 * one per distinct rung. */
		for (i = 0; i < p->nevents; i++) {
			const struct ld_plan_event *e = &p->events[i];
			double x = ML + (e->month - 1) * xs;

			for (seen = 0, stack = 0, j = 0; j < i; j++) {
				if (p->events[j].month != e->month)
					continue;
				seen = 1;
				if (p->events[j].rung == e->rung)
					break;
				stack++;
			}
			if (j < i)
				continue; /* this rung is already labelled at this month */
			if (!seen)
				ld_plan_out_printf(o,
						   "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" "
						   "y2=\"%.1f\" stroke=\"#999\" "
						   "stroke-dasharray=\"4 3\"/>\n",
						   x, x, MT, MT + ph);
			ld_plan_out_printf(o, "<text x=\"%.1f\" y=\"%d\" class=\"mk\">R%d</text>\n",
					   x + 3, MT + 10 + 11 * stack, e->rung);
		}
	}
	for (k = 0; k < ns; k++) {
		ld_plan_out_printf(o,
				   "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
				   "points=\"",
				   s[k].color);
		for (i = 0; i < n; i++)
			ld_plan_out_printf(o, "%.1f,%.1f ", ML + i * xs,
					   MT + ph - month_val(&p->months[i], s[k].off) / top * ph);
		ld_plan_out_printf(o, "\"/>\n");
		ld_plan_out_printf(
		    o,
		    "<rect x=\"%zu\" y=\"12\" width=\"12\" height=\"12\" fill=\"%s\"/>"
		    "<text x=\"%zu\" y=\"22\" class=\"lg\">%s</text>\n",
		    ML + k * 150, s[k].color, ML + k * 150 + 16, s[k].name);
	}
	ld_plan_out_printf(o, "</svg></figure>\n");
}

static void table(struct ld_plan_out *o, const struct ld_plan *p, int which, int every)
{
	char cell[48];
	size_t c;
	int i;

	ld_plan_out_printf(o, "<table><thead><tr><th>month</th><th>rung</th>");
	for (c = 0; c < ld_plan_ncols; c++)
		if (ld_plan_cols[c].table == which)
			ld_plan_out_printf(o, "<th>%s</th>", ld_plan_cols[c].head);
	ld_plan_out_printf(o, "</tr></thead><tbody>\n");
	for (i = 0; i < p->nmonths; i++) {
		if (!ld_plan_month_shown(p, i, every))
			continue;
		ld_plan_out_printf(o, "<tr><td>%d</td><td>%d</td>", p->months[i].month,
				   p->months[i].rung);
		for (c = 0; c < ld_plan_ncols; c++) {
			const struct ld_plan_col *col = &ld_plan_cols[c];

			if (col->table == which)
				ld_plan_out_printf(
				    o, "<td>%s</td>",
				    ld_plan_col_format(col, ld_plan_col_value(col, &p->months[i]),
						       cell, sizeof(cell)));
		}
		ld_plan_out_printf(o, "</tr>\n");
	}
	ld_plan_out_printf(o, "</tbody></table>\n");
}

#define OFF(member) offsetof(struct ld_plan_month, member)

int ld_plan_render_html(const struct ld_plan *p, int every, struct ld_buf *out)
{
	static const struct series traffic[] = {
	    {"peak reads/s", "#1f77b4", OFF(reads_peak)},
	    {"peak writes/s", "#d62728", OFF(writes_peak)},
	    {"database reads/s", "#2ca02c", OFF(db_reads_peak)},
	};
	static const struct series storage[] = {
	    {"content stored", "#1f77b4", OFF(data_raw)},
	    {"with indexes", "#ff7f0e", OFF(data_indexed)},
	    {"all copies", "#d62728", OFF(data_total)},
	    {"media", "#9467bd", OFF(media_stored)},
	};
	static const struct series nodes[] = {
	    {"app nodes", "#1f77b4", OFF(nodes_total)},
	    {"database nodes", "#d62728", OFF(db_nodes)},
	    {"cache nodes", "#2ca02c", OFF(cache_nodes)},
	    {"worker nodes", "#9467bd", OFF(worker_nodes)},
	};
	static const struct series bandwidth[] = {
	    {"egress (users)", "#1f77b4", OFF(egress_avg)},
	    {"origin egress", "#d62728", OFF(origin_avg)},
	    {"ingress", "#2ca02c", OFF(ingress_avg)},
	};
	static const struct series cost[] = {
	    {"total", "#000000", OFF(cost_total)},
	    {"app + workers", "#1f77b4", OFF(cost_app)},
	    {"database", "#d62728", OFF(cost_db)},
	    {"storage", "#ff7f0e", OFF(cost_storage)},
	};
	struct ld_plan_out o = {out, 0};
	int i;

	ld_plan_out_printf(&o,
			   "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			   "<title>ladder plan</title>\n<style>\n"
			   "body{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1100px}"
			   "table{border-collapse:collapse;margin:8px 0 24px;font-size:12px}"
			   "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
			   "th{background:#f3f3f3}figure{display:inline-block;margin:8px}"
			   "figcaption{font-weight:bold}.yt{font-size:11px;text-anchor:end}"
			   ".xt{font-size:11px;text-anchor:middle}.lg{font-size:12px}"
			   ".mk{font-size:10px;fill:#555}.note{color:#a00}\n"
			   "</style></head><body>\n<h1>Capacity plan</h1>\n<ul>\n");
	{
		/* The summary lines are the text report's, escaped line by line. */
		struct ld_buf hb;
		struct ld_plan_out ho;
		char *line, *save = NULL;

		ld_buf_init(&hb, 1 << 16);
		ho.b = &hb;
		ho.err = 0;
		ld_plan_render_header(&ho, p, "");
		if (!ho.err && hb.data) {
			for (line = strtok_r(hb.data, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				ld_plan_out_printf(&o, "<li>");
				esc(&o, line);
				ld_plan_out_printf(&o, "</li>\n");
			}
		}
		if (ho.err)
			o.err = ho.err;
		ld_buf_release(&hb);
	}
	ld_plan_out_printf(&o, "<li class=\"note\">costs use EXAMPLE prices: replace them with "
			       "yours</li>\n</ul>\n<h2>What breaks first, and when</h2>\n<ol>\n");
	for (i = 0; i < p->nevents; i++) {
		ld_plan_out_printf(&o, "<li><b>month %d</b>: ", p->events[i].month);
		esc(&o, p->events[i].text);
		ld_plan_out_printf(&o, " &rarr; <b>");
		esc(&o, ld_plan_rung_names[p->events[i].rung]);
		ld_plan_out_printf(&o, "</b></li>\n");
	}
	if (!p->nevents)
		ld_plan_out_printf(&o, "<li>nothing breaks within %d months</li>\n", p->nmonths);
	ld_plan_out_printf(&o, "</ol>\n<h2>Charts</h2>\n");
	chart(&o, p, "Peak requests per second", traffic, 3, LD_COL_SI, 0);
	chart(&o, p, "Storage at month end", storage, 4, LD_COL_BYTES, 0);
	chart(&o, p, "Nodes at peak (dashed: rung events)", nodes, 4, LD_COL_INT, 1);
	chart(&o, p, "Average bandwidth", bandwidth, 3, LD_COL_BPS, 0);
	chart(&o, p, "Cost per month (EXAMPLE prices)", cost, 4, LD_COL_MONEY, 1);
	ld_plan_out_printf(&o, "<h2>Traffic and storage</h2>\n<p>Per second; sizes at month "
			       "end.</p>\n");
	table(&o, p, 1, every);
	ld_plan_out_printf(&o, "<h2>Resources and cost</h2>\n<p>At peak; cost per month at "
			       "EXAMPLE prices.</p>\n");
	table(&o, p, 2, every);
	ld_plan_out_printf(&o, "</body></html>\n");
	return o.err;
}
