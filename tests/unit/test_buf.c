#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <wchar.h>

#include "base/buf.h"

static void test_append_and_nul(void)
{
	struct ld_buf b;

	ld_buf_init(&b, 1024);
	CHECK_INT(ld_buf_puts(&b, "hello"), 0);
	CHECK_INT(ld_buf_putc(&b, ' '), 0);
	CHECK_INT(ld_buf_printf(&b, "%d-%s", 42, "x"), 0);
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "hello 42-x");
	CHECK(b.data[b.len] == '\0');
	ld_buf_release(&b);
	CHECK(b.data == NULL);
}

static void test_cap_is_hard(void)
{
	struct ld_buf b;
	char big[100];

	memset(big, 'a', sizeof(big));
	ld_buf_init(&b, 64);
	CHECK_INT(ld_buf_append(&b, big, 60), 0);
	CHECK_INT(ld_buf_append(&b, big, 4), 0); /* exactly at the cap */
	CHECK_INT(b.len, 64);
	CHECK(b.cap <= 64);
	CHECK_INT(ld_buf_error(&b), 0);
	CHECK_INT(ld_buf_putc(&b, 'x'), -E2BIG);
	ld_buf_release(&b);
}

/* An append into room already allocated still honours the cap: a buffer
 * that grew and then had its cap lowered (a reused exchange's) refuses what
 * passes the new cap, by append and by putc. */
static void test_lowered_cap_with_room(void)
{
	struct ld_buf b;
	char big[100];

	memset(big, 'a', sizeof(big));
	ld_buf_init(&b, 1024);
	CHECK_INT(ld_buf_append(&b, big, 100), 0);
	ld_buf_reset(&b);
	CHECK(b.cap >= 100);
	b.max = 10;
	CHECK_INT(ld_buf_append(&b, big, 10), 0);
	CHECK_INT(ld_buf_putc(&b, 'x'), -E2BIG);
	CHECK(b.data == NULL);
	ld_buf_release(&b);
	ld_buf_init(&b, 1024);
	CHECK_INT(ld_buf_append(&b, big, 100), 0);
	ld_buf_reset(&b);
	b.max = 10;
	CHECK_INT(ld_buf_append(&b, big, 11), -E2BIG);
	ld_buf_release(&b);
}

/* The first failed append is final: the bytes go, and every later append,
 * however small, fails with the same code, so a document can never come out
 * with a piece missing from its middle. */
static void test_first_failure_sticks(void)
{
	struct ld_buf b;
	char big[100];

	memset(big, 'a', sizeof(big));
	ld_buf_init(&b, 64);
	CHECK_INT(ld_buf_puts(&b, "head "), 0);
	CHECK_INT(ld_buf_append(&b, big, 60), -E2BIG);
	CHECK_INT(ld_buf_error(&b), -E2BIG);
	CHECK_INT(b.len, 0);
	CHECK(b.data == NULL);
	/* Each of these would fit in an empty buffer, and none goes in. */
	CHECK_INT(ld_buf_putc(&b, 'x'), -E2BIG);
	CHECK_INT(ld_buf_puts(&b, "tail"), -E2BIG);
	CHECK_INT(ld_buf_printf(&b, "%d", 7), -E2BIG);
	CHECK_INT(ld_buf_append(&b, "", 0), -E2BIG);
	CHECK_INT(ld_buf_reserve(&b, 1), -E2BIG);
	CHECK_INT(b.len, 0);
	CHECK(b.data == NULL);
	CHECK_INT(ld_buf_error(&b), -E2BIG);
	/* Reset clears the failure: the buffer is empty and usable again. */
	ld_buf_reset(&b);
	CHECK_INT(ld_buf_error(&b), 0);
	CHECK_INT(ld_buf_puts(&b, "again"), 0);
	CHECK_STR(b.data, "again");
	ld_buf_release(&b);
}

/* The code of the first failure is the one kept, whatever fails later. */
static void test_error_code_preserved(void)
{
	struct ld_buf b;

	ld_buf_init(&b, 64);
	/* "%ls" of a wide string no multibyte sequence spells (the C locale
	 * has none past 0x7f): vsnprintf fails with EILSEQ. */
	CHECK_INT(ld_buf_printf(&b, "%ls", (const wchar_t[]){0x263a, 0}), -EINVAL);
	CHECK_INT(ld_buf_error(&b), -EINVAL);
	CHECK_INT(ld_buf_append(&b, "x", 1), -EINVAL);
	CHECK_INT(ld_buf_puts(&b, "0123456789012345678901234567890123456789"
				  "0123456789012345678901234567890123456789"),
		  -EINVAL);
	CHECK_INT(ld_buf_error(&b), -EINVAL);
	ld_buf_release(&b);
	CHECK_INT(ld_buf_error(&b), 0);
	CHECK_INT(b.max, 64); /* release keeps the cap */
	CHECK_INT(ld_buf_putc(&b, 'y'), 0);
	ld_buf_release(&b);
}

/* A reserve asks for room and loses no bytes: refused, it changes nothing,
 * and a smaller one may follow (the read path of a connection relies on it). */
static void test_reserve_does_not_stick(void)
{
	struct ld_buf b;

	ld_buf_init(&b, 64);
	CHECK_INT(ld_buf_puts(&b, "keep"), 0);
	CHECK_INT(ld_buf_reserve(&b, 61), -E2BIG);
	/* A size that would overflow len + extra is refused, not wrapped. */
	CHECK_INT(ld_buf_reserve(&b, (size_t)-1), -E2BIG);
	CHECK_INT(ld_buf_error(&b), 0);
	CHECK_STR(b.data, "keep");
	CHECK_INT(ld_buf_reserve(&b, 60), 0);
	CHECK(b.cap >= 64);
	CHECK_INT(ld_buf_puts(&b, " going"), 0);
	CHECK_STR(b.data, "keep going");
	ld_buf_release(&b);
}

static void test_consume_reset_steal(void)
{
	struct ld_buf b;
	char *p;
	size_t n;

	ld_buf_init(&b, 1024);
	ld_buf_puts(&b, "abcdef");
	ld_buf_consume(&b, 2);
	CHECK_STR(b.data, "cdef");
	ld_buf_consume(&b, 100);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	ld_buf_puts(&b, "xyz");
	ld_buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK(b.cap > 0); /* memory kept for reuse */
	ld_buf_puts(&b, "keep");
	p = ld_buf_steal(&b, &n);
	CHECK_INT(n, 4);
	CHECK_STR(p, "keep");
	CHECK(b.data == NULL && b.len == 0);
	free(p);
}

static void test_growth_many_appends(void)
{
	struct ld_buf b;
	int i;

	ld_buf_init(&b, 1 << 20);
	for (i = 0; i < 10000; i++)
		CHECK_INT(ld_buf_printf(&b, "%04d", i % 10000), 0);
	CHECK_INT(b.len, 40000);
	CHECK_MEM(b.data + 39996, "9999", 4);
	ld_buf_release(&b);
}

int main(void)
{
	RUN(test_append_and_nul);
	RUN(test_cap_is_hard);
	RUN(test_lowered_cap_with_room);
	RUN(test_first_failure_sticks);
	RUN(test_error_code_preserved);
	RUN(test_reserve_does_not_stick);
	RUN(test_consume_reset_steal);
	RUN(test_growth_many_appends);
	return unit_finish();
}
