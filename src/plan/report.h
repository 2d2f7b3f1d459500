/*
 * report.h - a computed plan as a text table, JSON, Markdown or a
 * self-contained HTML page with SVG charts (no scripts, no network).
 *
 * Rendering appends to a caller-owned capped ld_buf and is pure. Errors are
 * sticky inside a render: the first -E2BIG/-ENOMEM from the buffer is
 * returned at the end. Safe from any thread on distinct buffers.
 */
#ifndef LD_PLAN_REPORT_H
#define LD_PLAN_REPORT_H

#include <stddef.h>

#include "base/buf.h"
#include "plan/model.h"

enum ld_plan_format {
	LD_PLAN_TEXT,
	LD_PLAN_JSON,
	LD_PLAN_MARKDOWN,
	LD_PLAN_HTML,
};

/* ld_plan_format_parse maps "text", "json", "markdown" (or "md") and "html";
 * -EINVAL for anything else. */
int ld_plan_format_parse(const char *s, enum ld_plan_format *f);

/* ld_plan_render writes p in format f. Tables in text, Markdown and HTML
 * show every `every`-th month plus the first and the last (every >= 1);
 * JSON always has every month. */
int ld_plan_render(const struct ld_plan *p, enum ld_plan_format f, int every, struct ld_buf *out);

/* The writer both renderers share: printf into o->b, remembering the
 * first error so callers check once. */
struct ld_plan_out {
	struct ld_buf *b;
	int err;
};

void ld_plan_out_printf(struct ld_plan_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ld_plan_render_header writes the assumptions summary, one line each,
 * every line starting with bullet. */
void ld_plan_render_header(struct ld_plan_out *o, const struct ld_plan *p, const char *bullet);

/* ld_plan_render_html is the HTML renderer (html.c). */
int ld_plan_render_html(const struct ld_plan *p, int every, struct ld_buf *out);

/* A per-month figure as the tables show it. */
enum ld_plan_col_fmt {
	LD_COL_INT,	/* a count, whole */
	LD_COL_SI,	/* 1.23M */
	LD_COL_BYTES,	/* 1.23 TB */
	LD_COL_BPS,	/* 1.23 GB/s */
	LD_COL_MONEY,	/* 12.3K */
	LD_COL_SECONDS, /* 12.3 ms */
};

struct ld_plan_col {
	const char *head;
	const char *key; /* JSON member name */
	enum ld_plan_col_fmt fmt;
	size_t off; /* of a double in struct ld_plan_month */
	int table;  /* 1: traffic and storage, 2: resources and cost */
};

extern const struct ld_plan_col ld_plan_cols[];
extern const size_t ld_plan_ncols;

/* ld_plan_col_value reads column c of month m. */
double ld_plan_col_value(const struct ld_plan_col *c, const struct ld_plan_month *m);

/* ld_plan_col_fmt formats v as column c shows it, into out (>= 32 bytes). */
char *ld_plan_col_format(const struct ld_plan_col *c, double v, char *out, size_t outlen);

/* ld_plan_month_shown says whether month index i appears in a table. */
int ld_plan_month_shown(const struct ld_plan *p, int i, int every);

#endif
