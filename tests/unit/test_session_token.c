#include "unit.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "api/session_token.h"

static int parse(const char *s, uint64_t *pos)
{
	return ld_session_token_parse(s, strlen(s), pos);
}

static void test_round_trip(void)
{
	static const uint64_t v[] = {0, 1, 0x3036748, 0x16B3748FFULL, UINT64_MAX};
	char tok[LD_SESSION_TOKEN_MAX];
	uint64_t back;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = ld_session_token_format(v[i], tok);

		CHECK_INT(n, strlen(tok));
		CHECK(n < LD_SESSION_TOKEN_MAX);
		back = 12345;
		CHECK_INT(ld_session_token_parse(tok, n, &back), 0);
		CHECK(back == v[i]);
	}
	ld_session_token_format(0x3036748, tok);
	CHECK_STR(tok, "v1.3036748");
	ld_session_token_format(UINT64_MAX, tok);
	CHECK_STR(tok, "v1.ffffffffffffffff");
	ld_session_token_format(0, tok);
	CHECK_STR(tok, "v1.0");
}

static void test_either_case_and_leading_zeros(void)
{
	uint64_t pos = 0;

	CHECK_INT(parse("v1.ABCdef", &pos), 0);
	CHECK(pos == 0xabcdef);
	CHECK_INT(parse("v1.0000000000000001", &pos), 0);
	CHECK(pos == 1);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
	    "",		 "v1.",	   "v1",      "v2.10", "V1.10",	  "1.10",
	    "v1.10 ",	 " v1.10", "v1.1g",   "v1.-1", "v1.0x10", "v1.10000000000000000",
	    "v1.1,v1.2", "v1.1/2", "session", "v1..1",
	};
	uint64_t pos = 77;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(parse(bad[i], &pos), -EINVAL);
		if (pos != 77)
			fprintf(stderr, "pos changed by '%s'\n", bad[i]);
		CHECK(pos == 77); /* untouched on failure */
	}
	/* The length is the token's: a NUL inside is a byte like another. */
	CHECK_INT(ld_session_token_parse("v1.1\0"
					 "2",
					 6, &pos),
		  -EINVAL);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_either_case_and_leading_zeros);
	RUN(test_malformed);
	return unit_finish();
}
