#include "unit.h"

#include <errno.h>

#include "base/lines.h"

static void test_lines_and_numbers(void)
{
	const char text[] = "a\n\nccc\nlast";
	struct ld_lines l;
	char line[8], err[64];

	ld_lines_init(&l, "f", text, sizeof(text) - 1);
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), 1);
	CHECK_STR(line, "a");
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), 1);
	CHECK_STR(line, "");
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), 1);
	CHECK_STR(line, "ccc");
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), 1);
	CHECK_STR(line, "last"); /* no final newline */
	CHECK_INT(l.lineno, 4);
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), 0);
}

static void test_cap_and_nul(void)
{
	const char text[] = "1234567\n12345678\n";
	const char nul[] = "ok\nb\0d\n";
	struct ld_lines l;
	char line[9], err[64];

	ld_lines_init(&l, "caps", text, sizeof(text) - 1);
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), 1); /* exactly max */
	CHECK_INT(ld_lines_next(&l, line, 7, err, sizeof(err)), -E2BIG);
	CHECK_STR(err, "caps:2: line longer than 7 bytes");
	ld_lines_init(&l, "nul", nul, sizeof(nul) - 1);
	CHECK_INT(ld_lines_next(&l, line, 8, err, sizeof(err)), 1);
	CHECK_INT(ld_lines_next(&l, line, 8, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "nul:2: NUL byte in line");
}

int main(void)
{
	RUN(test_lines_and_numbers);
	RUN(test_cap_and_nul);
	return unit_finish();
}
