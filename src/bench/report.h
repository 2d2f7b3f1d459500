/*
 * report.h - what `ladder bench` prints and writes: the summary table, the
 * JSON report (schema "ladder-bench/1", read by `ladder plan`), the .hgrm
 * distribution and the self-contained HTML report with SVG charts.
 *
 * Threading: main thread, after the run. Errors: 0 or a negative errno; the
 * message names the file.
 */
#ifndef LD_BENCH_REPORT_H
#define LD_BENCH_REPORT_H

#include <stdio.h>

#include "base/buf.h"
#include "bench/opts.h"

/* ld_bench_summary prints the final table. */
void ld_bench_summary(FILE *f, const struct ld_bench_opts *o, const struct ld_bench_result *r,
		      const struct ld_bench_extra *x);

/* ld_bench_json renders the whole report into out, then a newline.
 * Returns 0, or the error of the JSON writer (-E2BIG when out's cap is
 * reached, -ENOMEM); out has then failed and holds nothing (buf.h). */
int ld_bench_json(struct ld_buf *out, const struct ld_bench_opts *o,
		  const struct ld_bench_result *r, const struct ld_bench_extra *x);

/* ld_bench_html renders the HTML report (inline SVG, no scripts, no
 * network) into out. Returns 0, or out's first append error (-E2BIG when
 * out's cap is reached, -ENOMEM); out has then failed and holds nothing
 * (buf.h). */
int ld_bench_html(struct ld_buf *out, const struct ld_bench_opts *o,
		  const struct ld_bench_result *r, const struct ld_bench_extra *x);

/* ld_bench_write_file writes len bytes to path (replacing it). */
int ld_bench_write_file(const char *path, const char *data, size_t len);

#endif
