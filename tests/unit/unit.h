/*
 * unit.h - the whole unit-test framework: checks that print both values, a
 * runner that counts tests, and a closing "N passed, N failed" line per file.
 *
 * A test is a `static void test_x(void)`; main() calls RUN(test_x) for each and
 * returns unit_finish(). A failed check marks the running test failed and
 * carries on, so one run shows every broken expectation. Crashes are caught by
 * the sanitizer build, not here.
 */
#ifndef LD_UNIT_H
#define LD_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed, unit_cur_failed;
static const char *unit_cur_name;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,       \
				unit_cur_name, #cond);                                             \
			unit_cur_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define CHECK_INT(a, b)                                                                            \
	do {                                                                                       \
		long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);                      \
		if (unit_a_ != unit_b_) {                                                          \
			fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n", __FILE__,    \
				__LINE__, unit_cur_name, #a, #b, unit_a_, unit_b_);                \
			unit_cur_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define CHECK_DBL(a, b, tol)                                                                       \
	do {                                                                                       \
		double unit_a_ = (double)(a), unit_b_ = (double)(b);                               \
		if (!(unit_a_ - unit_b_ <= (tol) && unit_b_ - unit_a_ <= (tol))) {                 \
			fprintf(stderr, "%s:%d: %s: %s ~ %s failed: %.9g vs %.9g (tol %g)\n",      \
				__FILE__, __LINE__, unit_cur_name, #a, #b, unit_a_, unit_b_,       \
				(double)(tol));                                                    \
			unit_cur_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *unit_a_ = (a), *unit_b_ = (b);                                         \
		if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) {                       \
			fprintf(stderr, "%s:%d: %s: %s == %s failed: \"%s\" != \"%s\"\n",          \
				__FILE__, __LINE__, unit_cur_name, #a, #b,                         \
				unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)");       \
			unit_cur_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

/* CHECK_MEM compares len bytes; a and b need not be NUL-terminated. */
#define CHECK_MEM(a, b, len)                                                                       \
	do {                                                                                       \
		if (memcmp((a), (b), (len)) != 0) {                                                \
			fprintf(stderr, "%s:%d: %s: %s == %s failed: \"%.*s\" != \"%.*s\"\n",      \
				__FILE__, __LINE__, unit_cur_name, #a, #b, (int)(len), (a),        \
				(int)(len), (b));                                                  \
			unit_cur_failed = 1;                                                       \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		unit_cur_name = #fn;                                                               \
		unit_cur_failed = 0;                                                               \
		fn();                                                                              \
		if (unit_cur_failed) {                                                             \
			unit_failed++;                                                             \
			fprintf(stderr, "FAIL %s\n", #fn);                                         \
		} else {                                                                           \
			unit_passed++;                                                             \
		}                                                                                  \
	} while (0)

static inline int unit_finish(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
