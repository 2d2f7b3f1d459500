/*
 * fuzz_bench_stages.c - the --stages parser and the schedule built from it.
 * For any accepted stage list the schedule must be well formed: finite,
 * non-negative counts, and send times that never go backwards.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/shape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_shape sh;
	char spec[512], err[160];
	double total, last = 0, step;

	if (size >= sizeof(spec))
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (ld_shape_parse(&sh, spec, 0, err, sizeof(err)) != 0)
		return 0;
	total = ld_shape_count_at(&sh, ld_shape_total_s(&sh));
	if (!isfinite(total) || total < 0 || !isfinite(ld_shape_total_s(&sh)))
		abort();
	if (total > 1e15)
		return 0; /* rates like 1e300: nothing meaningful to walk */
	step = total / 200 + 1e-9;
	for (double a = 0; a < total; a += step) {
		double t = ld_shape_time_of(&sh, a);
		if (t < 0)
			break;
		if (!isfinite(t) || t + 1e-9 * (1 + t) < last || t > ld_shape_total_s(&sh) + 1e-6)
			abort();
		last = t;
	}
	return 0;
}
