/*
 * fuzz_plan_bench.c - the planner's reader of `ladder bench` JSON reports,
 * and applying an accepted report to the assumptions.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan/assume.h"
#include "plan/bench_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_bench_report r;
	struct ld_assume a;
	char err[512], *text = malloc(size ? size : 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	if (ld_bench_report_parse("fuzz.json", text, size, &r, err, sizeof(err)) == 0) {
		if (!isfinite(r.achieved_rps) || r.achieved_rps < 0)
			abort();
		ld_assume_defaults(&a);
		ld_bench_report_apply(&r, "fuzz.json", &a);
		if (!memchr(a.capacity_source, '\0', sizeof(a.capacity_source)))
			abort();
	}
	free(text);
	return 0;
}
