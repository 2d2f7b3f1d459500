/*
 * fuzz_bench_slo.c - the --slo parser on arbitrary text. Whatever it accepts
 * must be evaluable, and every accepted term's value must be a finite,
 * non-negative number (an SLO that compares against NaN never breaks).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/slo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ld_hdr h;
	static int ready;
	struct ld_slo s;
	char spec[512], err[160], why[512];

	if (!ready) {
		ld_hdr_init(&h, LD_HDR_HOUR_US, 3);
		for (int i = 1; i < 1000; i++)
			ld_hdr_record(&h, i * 37);
		ready = 1;
	}
	if (size >= sizeof(spec))
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (ld_slo_parse(&s, spec, err, sizeof(err)) != 0)
		return 0;
	if (s.n < 1 || s.n > LD_SLO_TERMS_MAX)
		abort();
	for (int i = 0; i < s.n; i++)
		if (!isfinite(s.t[i].value) || s.t[i].value < 0)
			abort();
	if (ld_slo_check(&s, &h, &h, 0.01, 100, why, sizeof(why)) > s.n)
		abort();
	return 0;
}
