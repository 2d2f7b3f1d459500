#include "unit.h"

#include <errno.h>
#include <stdlib.h>

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

static void test_cap_is_hard_and_unchanged_on_error(void)
{
	struct ld_buf b;
	char big[100];

	memset(big, 'a', sizeof(big));
	ld_buf_init(&b, 64);
	CHECK_INT(ld_buf_append(&b, big, 60), 0);
	CHECK_INT(ld_buf_append(&b, big, 5), -E2BIG);
	CHECK_INT(b.len, 60);
	CHECK_INT(ld_buf_append(&b, big, 4), 0); /* exactly at the cap */
	CHECK_INT(b.len, 64);
	CHECK_INT(ld_buf_putc(&b, 'x'), -E2BIG);
	CHECK_INT(ld_buf_printf(&b, "%s", "y"), -E2BIG);
	CHECK_INT(b.len, 64);
	CHECK(b.cap <= 64);
	/* A size that would overflow len + extra is refused, not wrapped. */
	CHECK_INT(ld_buf_reserve(&b, (size_t)-1), -E2BIG);
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
	RUN(test_cap_is_hard_and_unchanged_on_error);
	RUN(test_consume_reset_steal);
	RUN(test_growth_many_appends);
	return unit_finish();
}
