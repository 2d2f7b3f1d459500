/*
 * fuzz_plan_num.c - the planner's number parser ("10M", "1KiB", "50ms",
 * "20%", "50M/day") and formatters. The first byte picks the kind; the rest
 * is a NUL-terminated string in an exact-size heap buffer.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan/num.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ld_num_kind kind;
	struct ld_rate r;
	double v = 0;
	char err[160], out[32], *s;
	int rc;

	if (size < 1)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	kind = (enum ld_num_kind)(data[0] % 7);
	if (kind == LD_NUM_RATE) {
		rc = ld_num_parse(s, kind, &r, err, sizeof(err));
		if (rc == 0) {
			if (!isfinite(r.n) || r.per_s < 0)
				abort();
			v = ld_rate_per_s(&r, 2.5e6);
		}
	} else {
		rc = ld_num_parse(s, kind, &v, err, sizeof(err));
		if (rc == 0 && !isfinite(v))
			abort();
	}
	if (rc == 0) {
		ld_num_fmt_si(v, out, sizeof(out));
		ld_num_fmt_bytes(v, out, sizeof(out));
		ld_num_fmt_duration(v, out, sizeof(out));
	}
	free(s);
	return 0;
}
