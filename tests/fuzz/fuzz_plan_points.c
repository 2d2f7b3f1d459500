/*
 * fuzz_plan_points.c - the (concurrency, throughput) points parser of
 * `ladder plan fit`, and the USL fit on whatever points it accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan/points.h"
#include "plan/usl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_points p;
	struct ld_usl u;
	char err[512], *text = malloc(size ? size : 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	ld_points_init(&p);
	if (ld_points_parse(&p, "fuzz.csv", text, size, err, sizeof(err)) == 0 && p.count <= 200)
		ld_usl_fit(p.n, p.x, p.count, &u, err, sizeof(err));
	ld_points_release(&p);
	free(text);
	return 0;
}
