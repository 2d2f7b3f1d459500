/*
 * fuzz_plan_assume.c - the capacity planner's assumptions file parser, and
 * everything downstream of an accepted file: validation, the month-by-month
 * model and the text and HTML reports. The input is the file's bytes,
 * copied to an exact-size heap buffer so ASan sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "plan/assume.h"
#include "plan/model.h"
#include "plan/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_assume a;
	struct ld_plan p;
	struct ld_buf b;
	char err[512], *text = malloc(size ? size : 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	ld_assume_defaults(&a);
	if (ld_assume_parse(&a, "fuzz.ini", text, size, err, sizeof(err)) == 0) {
		/* Keep each run short: the model's cost grows with months. */
		if (a.months > 24)
			a.months = 24;
		if (ld_plan_compute(&a, &p, err, sizeof(err)) == 0) {
			ld_buf_init(&b, 1 << 22);
			ld_plan_render(&p, LD_PLAN_TEXT, 1, &b);
			ld_buf_reset(&b);
			ld_plan_render(&p, LD_PLAN_HTML, 3, &b);
			ld_buf_release(&b);
			ld_plan_release(&p);
		}
	} else if (!memchr(err, '\0', sizeof(err))) {
		abort();
	}
	free(text);
	return 0;
}
