/*
 * report.c - text, Markdown and JSON renderings of a plan.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/num.h"
#include "plan/report.h"

#define COL(head, key, fmt, member, table)                                                         \
	{                                                                                          \
		head, key, fmt, offsetof(struct ld_plan_month, member), table                      \
	}

/* Table 1 is traffic and storage, table 2 resources and cost; 0 is in the
 * JSON only. */
const struct ld_plan_col ld_plan_cols[] = {
    COL("users", "users", LD_COL_SI, users, 0),
    COL("writes/s", "writes_avg", LD_COL_SI, writes_avg, 1),
    COL("peak w/s", "writes_peak", LD_COL_SI, writes_peak, 1),
    COL("reads/s", "reads_avg", LD_COL_SI, reads_avg, 1),
    COL("peak r/s", "reads_peak", LD_COL_SI, reads_peak, 1),
    COL("uploads/s", "uploads_avg", LD_COL_SI, uploads_avg, 0),
    COL("views/s", "views_avg", LD_COL_SI, views_avg, 0),
    COL("new data", "data_new", LD_COL_BYTES, data_new, 1),
    COL("stored", "data_raw", LD_COL_BYTES, data_raw, 1),
    COL("+idx+ovh", "data_indexed", LD_COL_BYTES, data_indexed, 1),
    COL("copies", "copies", LD_COL_INT, copies, 0),
    COL("all copies", "data_total", LD_COL_BYTES, data_total, 1),
    COL("new media", "media_new", LD_COL_BYTES, media_new, 0),
    COL("media", "media_stored", LD_COL_BYTES, media_stored, 1),
    COL("ingress", "ingress_avg", LD_COL_BPS, ingress_avg, 0),
    COL("in peak", "ingress_peak", LD_COL_BPS, ingress_peak, 1),
    COL("egress", "egress_avg", LD_COL_BPS, egress_avg, 0),
    COL("out peak", "egress_peak", LD_COL_BPS, egress_peak, 1),
    COL("via CDN", "cdn_avg", LD_COL_BPS, cdn_avg, 0),
    COL("origin", "origin_avg", LD_COL_BPS, origin_avg, 0),
    COL("origin pk", "origin_peak", LD_COL_BPS, origin_peak, 1),
    COL("servers", "servers_util", LD_COL_SI, servers_util, 0),
    COL("n util", "nodes_util", LD_COL_INT, nodes_util, 2),
    COL("n meas", "nodes_measured", LD_COL_INT, nodes_measured, 2),
    COL("n M/M/k", "nodes_erlang", LD_COL_INT, nodes_erlang, 2),
    COL("latency", "latency_q", LD_COL_SECONDS, latency_q, 2),
    COL("needed", "nodes_needed", LD_COL_INT, nodes_needed, 0),
    COL("app", "nodes_total", LD_COL_INT, nodes_total, 2),
    COL("app avg", "nodes_avg", LD_COL_INT, nodes_avg, 0),
    COL("hot set", "cache_memory", LD_COL_BYTES, cache_memory, 2),
    COL("cache", "cache_nodes", LD_COL_INT, cache_nodes, 2),
    COL("db r/s", "db_reads_peak", LD_COL_SI, db_reads_peak, 0),
    COL("shards", "shards", LD_COL_INT, shards, 2),
    COL("shards_writes", "shards_writes", LD_COL_INT, shards_writes, 0),
    COL("shards_data", "shards_data", LD_COL_INT, shards_data, 0),
    COL("replicas", "replicas", LD_COL_INT, replicas, 2),
    COL("replicas_nocache", "replicas_nocache", LD_COL_INT, replicas_nocache, 0),
    COL("db", "db_nodes", LD_COL_INT, db_nodes, 2),
    COL("inflight", "inflight", LD_COL_SI, inflight, 0),
    COL("db busy", "db_busy", LD_COL_SI, db_busy, 0),
    COL("pool/node", "pool_per_node", LD_COL_INT, pool_per_node, 2),
    COL("jobs/s", "jobs_avg", LD_COL_SI, jobs_avg, 0),
    COL("jobs pk", "jobs_peak", LD_COL_SI, jobs_peak, 0),
    COL("workers", "workers", LD_COL_INT, workers, 2),
    COL("wk nodes", "worker_nodes", LD_COL_INT, worker_nodes, 0),
    COL("cost app", "cost_app", LD_COL_MONEY, cost_app, 0),
    COL("cost db", "cost_db", LD_COL_MONEY, cost_db, 0),
    COL("cost cache", "cost_cache", LD_COL_MONEY, cost_cache, 0),
    COL("cost storage", "cost_storage", LD_COL_MONEY, cost_storage, 0),
    COL("cost object", "cost_object", LD_COL_MONEY, cost_object, 0),
    COL("cost egress", "cost_egress", LD_COL_MONEY, cost_egress, 0),
    COL("cost cdn", "cost_cdn", LD_COL_MONEY, cost_cdn, 0),
    COL("cost/month", "cost_total", LD_COL_MONEY, cost_total, 2),
};

const size_t ld_plan_ncols = sizeof(ld_plan_cols) / sizeof(ld_plan_cols[0]);

void ld_plan_out_printf(struct ld_plan_out *o, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (o->err)
		return;
	va_start(ap, fmt);
	rc = ld_buf_vprintf(o->b, fmt, ap);
	va_end(ap);
	if (rc)
		o->err = rc;
}

int ld_plan_format_parse(const char *s, enum ld_plan_format *f)
{
	int rc = 0;

	if (!strcmp(s, "text"))
		*f = LD_PLAN_TEXT;
	else if (!strcmp(s, "json"))
		*f = LD_PLAN_JSON;
	else if (!strcmp(s, "markdown") || !strcmp(s, "md"))
		*f = LD_PLAN_MARKDOWN;
	else if (!strcmp(s, "html"))
		*f = LD_PLAN_HTML;
	else
		rc = -EINVAL;
	return rc;
}

double ld_plan_col_value(const struct ld_plan_col *c, const struct ld_plan_month *m)
{
	double v;

	memcpy(&v, (const char *)m + c->off, sizeof(v));
	return v;
}

char *ld_plan_col_format(const struct ld_plan_col *c, double v, char *out, size_t outlen)
{
	size_t n;

	switch (c->fmt) {
	case LD_COL_INT:
		snprintf(out, outlen, "%.0f", v);
		break;
	case LD_COL_SI:
	case LD_COL_MONEY:
		ld_num_fmt_si(v, out, outlen);
		break;
	case LD_COL_BYTES:
		ld_num_fmt_bytes(v, out, outlen);
		break;
	case LD_COL_SECONDS:
		ld_num_fmt_duration(v, out, outlen);
		break;
	case LD_COL_BPS:
		ld_num_fmt_bytes(v, out, outlen);
		n = strlen(out);
		if (n + 3 < outlen)
			memcpy(out + n, "/s", 3);
		break;
	}
	return out;
}

int ld_plan_month_shown(const struct ld_plan *p, int i, int every)
{
	if (i == 0 || i == p->nmonths - 1 || every <= 1)
		return 1;
	return (i + 1) % every == 0;
}

void ld_plan_render_header(struct ld_plan_out *o, const struct ld_plan *p, const char *bullet)
{
	const struct ld_assume *a = &p->a;
	char b[6][32], cap[sizeof(a->capacity_source) + 64];
	double spm = a->seconds_per_month;

	ld_plan_out_printf(o,
			   "%s%d months from %s users, %s writes and %s reads a month "
			   "(%s writes/s, %s reads/s on average), growth %.3g%%/month\n",
			   bullet, p->nmonths, ld_num_fmt_si(a->users, b[0], 32),
			   ld_num_fmt_si(ld_rate_per_s(&a->writes, spm) * spm, b[1], 32),
			   ld_num_fmt_si(ld_rate_per_s(&a->reads, spm) * spm, b[2], 32),
			   ld_num_fmt_si(ld_rate_per_s(&a->writes, spm), b[3], 32),
			   ld_num_fmt_si(ld_rate_per_s(&a->reads, spm), b[4], 32), a->growth * 100);
	ld_plan_out_printf(o,
			   "%sa month is %s s; peak is %.3gx average; %s per write; %.3g database "
			   "copies\n",
			   bullet, ld_num_fmt_si(spm, b[0], 32), a->peak_ratio,
			   ld_num_fmt_bytes(a->write_bytes, b[1], 32), a->replication);
	ld_plan_out_printf(o, "%sper-node capacity: %s\n", bullet,
			   ld_assume_capacity_text(a, cap, sizeof(cap)));
	ld_plan_out_printf(o, "%scache hit ratio: %.4g%%, %s; hot share %.4g%% (an input)\n",
			   bullet, a->cache_hit_ratio * 100, a->cache_source,
			   a->cache_hot_share * 100);
	ld_plan_out_printf(o,
			   "%sapp nodes: %.0f cores, %s per request, %.0f%% target utilisation, "
			   "p%.4g <= %s, N+%.0f\n",
			   bullet, a->node_cores, ld_num_fmt_duration(a->request_time, b[0], 32),
			   a->target_utilisation * 100, a->slo_percentile * 100,
			   ld_num_fmt_duration(a->slo_latency, b[1], 32), a->redundancy);
}

static void text_table(struct ld_plan_out *o, const struct ld_plan *p, int table, int every)
{
	size_t w[64], c, k;
	char cell[48];
	int i;

	for (c = 0, k = 0; c < ld_plan_ncols && k < 64; c++) {
		if (ld_plan_cols[c].table != table)
			continue;
		w[k] = strlen(ld_plan_cols[c].head);
		for (i = 0; i < p->nmonths; i++) {
			size_t n;

			if (!ld_plan_month_shown(p, i, every))
				continue;
			n = strlen(ld_plan_col_format(
			    &ld_plan_cols[c], ld_plan_col_value(&ld_plan_cols[c], &p->months[i]),
			    cell, sizeof(cell)));
			if (n > w[k])
				w[k] = n;
		}
		k++;
	}
	ld_plan_out_printf(o, "month rung");
	for (c = 0, k = 0; c < ld_plan_ncols; c++)
		if (ld_plan_cols[c].table == table)
			ld_plan_out_printf(o, "  %*s", (int)w[k++], ld_plan_cols[c].head);
	ld_plan_out_printf(o, "\n");
	for (i = 0; i < p->nmonths; i++) {
		if (!ld_plan_month_shown(p, i, every))
			continue;
		ld_plan_out_printf(o, "%5d %4d", p->months[i].month, p->months[i].rung);
		for (c = 0, k = 0; c < ld_plan_ncols; c++) {
			const struct ld_plan_col *col = &ld_plan_cols[c];

			if (col->table != table)
				continue;
			ld_plan_out_printf(o, "  %*s", (int)w[k++],
					   ld_plan_col_format(col,
							      ld_plan_col_value(col, &p->months[i]),
							      cell, sizeof(cell)));
		}
		ld_plan_out_printf(o, "\n");
	}
}

static void timeline(struct ld_plan_out *o, const struct ld_plan *p, const char *bullet)
{
	int i;

	if (!p->nevents)
		ld_plan_out_printf(o, "%snothing breaks within %d months\n", bullet, p->nmonths);
	for (i = 0; i < p->nevents; i++) {
		const struct ld_plan_event *e = &p->events[i];

		ld_plan_out_printf(o, "%smonth %d: %s -> %s\n", bullet, e->month, e->text,
				   ld_plan_rung_names[e->rung]);
	}
}

static void render_text(struct ld_plan_out *o, const struct ld_plan *p, int every)
{
	ld_plan_out_printf(o, "ladder plan\n\n");
	ld_plan_render_header(o, p, "  ");
	ld_plan_out_printf(o, "  costs use EXAMPLE prices (replace them with yours)\n");
	ld_plan_out_printf(o, "\nWhat breaks first, and when\n");
	timeline(o, p, "  ");
	ld_plan_out_printf(o, "\nTraffic and storage (per second; sizes at month end)\n");
	text_table(o, p, 1, every);
	ld_plan_out_printf(o, "\nResources and cost (at peak; cost per month at EXAMPLE prices)\n");
	text_table(o, p, 2, every);
	ld_plan_out_printf(o, "\nn util = peak RPS x request time / utilisation / cores; n meas = "
			      "measured per-node capacity; n M/M/k = latency objective (Erlang C); "
			      "app = the largest + spares\n");
}

static void md_table(struct ld_plan_out *o, const struct ld_plan *p, int table, int every)
{
	char cell[48];
	size_t c;
	int i;

	ld_plan_out_printf(o, "| month | rung |");
	for (c = 0; c < ld_plan_ncols; c++)
		if (ld_plan_cols[c].table == table)
			ld_plan_out_printf(o, " %s |", ld_plan_cols[c].head);
	ld_plan_out_printf(o, "\n|---:|---:|");
	for (c = 0; c < ld_plan_ncols; c++)
		if (ld_plan_cols[c].table == table)
			ld_plan_out_printf(o, "---:|");
	ld_plan_out_printf(o, "\n");
	for (i = 0; i < p->nmonths; i++) {
		if (!ld_plan_month_shown(p, i, every))
			continue;
		ld_plan_out_printf(o, "| %d | %d |", p->months[i].month, p->months[i].rung);
		for (c = 0; c < ld_plan_ncols; c++) {
			const struct ld_plan_col *col = &ld_plan_cols[c];

			if (col->table == table)
				ld_plan_out_printf(
				    o, " %s |",
				    ld_plan_col_format(col, ld_plan_col_value(col, &p->months[i]),
						       cell, sizeof(cell)));
		}
		ld_plan_out_printf(o, "\n");
	}
}

static void render_markdown(struct ld_plan_out *o, const struct ld_plan *p, int every)
{
	ld_plan_out_printf(o, "# Capacity plan\n\n");
	ld_plan_render_header(o, p, "- ");
	ld_plan_out_printf(o, "- **costs use EXAMPLE prices** (replace them with yours)\n");
	ld_plan_out_printf(o, "\n## What breaks first, and when\n\n");
	timeline(o, p, "- ");
	ld_plan_out_printf(o, "\n## Traffic and storage\n\nPer second; sizes at month end.\n\n");
	md_table(o, p, 1, every);
	ld_plan_out_printf(o, "\n## Resources and cost\n\nAt peak; cost per month at EXAMPLE "
			      "prices.\n\n");
	md_table(o, p, 2, every);
}

/* json_num adds a number, or null for NaN and infinities (JSON has none). */
static int json_num(json_t *obj, const char *key, double v)
{
	return json_object_set_new(obj, key, isfinite(v) ? json_real(v) : json_null());
}

static json_t *json_plan(const struct ld_plan *p)
{
	json_t *root = json_object(), *as = json_object(), *months = json_array(),
	       *tl = json_array();
	char cap[sizeof(p->a.capacity_source) + 64];
	size_t f, c;
	int i, bad = !root || !as || !months || !tl;

	for (f = 0; !bad && f < ld_assume_nfields; f++)
		bad |= json_num(as, ld_assume_fields[f].key,
				ld_assume_value(&p->a, &ld_assume_fields[f]));
	for (i = 0; !bad && i < p->nmonths; i++) {
		const struct ld_plan_month *m = &p->months[i];
		json_t *mo = json_object();

		bad |= !mo || json_array_append_new(months, mo);
		if (bad)
			break;
		bad |= json_object_set_new(mo, "month", json_integer(m->month));
		bad |= json_object_set_new(mo, "rung", json_integer(m->rung));
		for (c = 0; c < ld_plan_ncols; c++)
			bad |= json_num(mo, ld_plan_cols[c].key,
					ld_plan_col_value(&ld_plan_cols[c], m));
		bad |= json_object_set_new(mo, "erlang_ok", json_boolean(m->erlang_ok));
		bad |= json_object_set_new(mo, "cache_in_use", json_boolean(m->cache_in_use));
		bad |= json_object_set_new(mo, "box_fits", json_boolean(m->box_fits));
		bad |= json_object_set_new(mo, "box_holds", json_boolean(m->box_holds));
	}
	for (i = 0; !bad && i < p->nevents; i++) {
		const struct ld_plan_event *e = &p->events[i];
		json_t *ev = json_pack("{s:i, s:i, s:s, s:s, s:s}", "month", e->month, "rung",
				       e->rung, "rung_name", ld_plan_rung_names[e->rung], "what",
				       e->what, "text", e->text);

		bad |= !ev || json_array_append_new(tl, ev);
	}
	if (!bad) {
		bad |= json_object_set_new(root, "schema", json_string("ladder-plan/1"));
		bad |= json_object_set_new(root, "assumptions", as);
		as = NULL;
		bad |= json_object_set_new(
		    root, "capacity_source",
		    json_string(ld_assume_capacity_text(&p->a, cap, sizeof(cap))));
		bad |= json_object_set_new(root, "cache_source", json_string(p->a.cache_source));
		bad |= json_object_set_new(root, "prices_are_examples", json_true());
		bad |= json_object_set_new(
		    root, "prices_note",
		    json_string("costs use EXAMPLE prices: replace them with yours"));
		bad |= json_object_set_new(root, "timeline", tl);
		tl = NULL;
		bad |= json_object_set_new(root, "months", months);
		months = NULL;
	}
	json_decref(as);
	json_decref(tl);
	json_decref(months);
	if (bad) {
		json_decref(root);
		root = NULL;
	}
	return root;
}

static void render_json(struct ld_plan_out *o, const struct ld_plan *p)
{
	json_t *root = json_plan(p);
	char *s = NULL;

	if (!root) {
		o->err = -ENOMEM;
		goto out;
	}
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	if (!s) {
		o->err = -ENOMEM;
		goto out;
	}
	ld_plan_out_printf(o, "%s\n", s);
out:
	free(s);
	json_decref(root);
}

int ld_plan_render(const struct ld_plan *p, enum ld_plan_format f, int every, struct ld_buf *out)
{
	struct ld_plan_out o = {out, 0};

	if (every < 1)
		every = 1;
	switch (f) {
	case LD_PLAN_TEXT:
		render_text(&o, p, every);
		break;
	case LD_PLAN_MARKDOWN:
		render_markdown(&o, p, every);
		break;
	case LD_PLAN_JSON:
		render_json(&o, p);
		break;
	case LD_PLAN_HTML:
		o.err = ld_plan_render_html(p, every, out);
		break;
	}
	return o.err;
}
