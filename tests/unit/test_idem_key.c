/*
 * test_idem_key.c - the Idempotency-Key field's syntax (ld_idem_key_parse):
 * one RFC 8941 sf-string of 1 to 255 characters, its two escapes, and every
 * way a value can fail to be one.
 */
#include "unit.h"

#include "api/idempotency.h"

static int parse(const char *v, char *out)
{
	return ld_idem_key_parse(v, strlen(v), out);
}

static void test_valid_keys(void)
{
	char out[LD_IDEM_KEY_MAX + 1], v[LD_IDEM_KEY_MAX + 3];

	CHECK_INT(parse("\"a\"", out), 1);
	CHECK_STR(out, "a");
	CHECK_INT(parse("\"4f7c2a9e-8d1b-4b7e-9a51-0c3e2f6d8b14\"", out), 36);
	CHECK_STR(out, "4f7c2a9e-8d1b-4b7e-9a51-0c3e2f6d8b14");
	/* The two escapes, unescaped; a space and the printable edges. */
	CHECK_INT(parse("\"a\\\"b\"", out), 3);
	CHECK_STR(out, "a\"b");
	CHECK_INT(parse("\"a\\\\b\"", out), 3);
	CHECK_STR(out, "a\\b");
	CHECK_INT(parse("\" ~!\"", out), 3);
	CHECK_STR(out, " ~!");
	/* 255 characters, and 255 once unescaped (more bytes on the wire). */
	v[0] = '"';
	memset(v + 1, 'k', LD_IDEM_KEY_MAX);
	v[LD_IDEM_KEY_MAX + 1] = '"';
	v[LD_IDEM_KEY_MAX + 2] = '\0';
	CHECK_INT(parse(v, out), LD_IDEM_KEY_MAX);
	CHECK_INT(strlen(out), LD_IDEM_KEY_MAX);
	{
		char w[2 * LD_IDEM_KEY_MAX + 3];
		size_t i, n = 0;

		w[n++] = '"';
		for (i = 0; i < LD_IDEM_KEY_MAX; i++) {
			w[n++] = '\\';
			w[n++] = '"';
		}
		w[n++] = '"';
		CHECK_INT(ld_idem_key_parse(w, n, out), LD_IDEM_KEY_MAX);
		CHECK_INT(out[0], '"');
	}
}

static void test_invalid_values(void)
{
	static const char *const bad[] = {
	    "",
	    "\"",
	    "\"\"",
	    "abc",
	    "abc\"",
	    "\"abc",
	    "\"a\"b\"",
	    "\"a\" ",
	    "\"a\";p",
	    "\"a\";p=1",
	    "\"a\",\"b\"",
	    "\"a\\nb\"",
	    "\"a\\",
	    "\"\\\"",
	    "\"tab\there\"",
	    "\"caf\xc3\xa9\"",
	    "\"\x7f\"",
	    ":YQ==:",
	    "?1",
	    "42",
	};
	char out[LD_IDEM_KEY_MAX + 1], v[LD_IDEM_KEY_MAX + 4];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], out) != -1)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_INT(parse(bad[i], out), -1);
	}
	/* 256 characters. */
	v[0] = '"';
	memset(v + 1, 'k', LD_IDEM_KEY_MAX + 1);
	v[LD_IDEM_KEY_MAX + 2] = '"';
	v[LD_IDEM_KEY_MAX + 3] = '\0';
	CHECK_INT(parse(v, out), -1);
	/* A NUL inside the value. */
	CHECK_INT(ld_idem_key_parse("\"a\0b\"", 5, out), -1);
}

int main(void)
{
	RUN(test_valid_keys);
	RUN(test_invalid_values);
	return unit_finish();
}
