/*
 * fuzz_session_token.c - the Ladder-Session token's parser against arbitrary
 * bytes. What it accepts must be "v1." and 1 to 16 hex digits, and the
 * token written for the value it read must read back to the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/session_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static int is_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tok[LD_SESSION_TOKEN_MAX];
	uint64_t pos = 0, again = 1;
	size_t i, n;

	if (ld_session_token_parse((const char *)data, size, &pos) != 0)
		return 0;
	check(size >= 4 && size <= 19 && memcmp(data, "v1.", 3) == 0);
	for (i = 3; i < size; i++)
		check(is_hex(data[i]));
	n = ld_session_token_format(pos, tok);
	check(n < LD_SESSION_TOKEN_MAX && tok[n] == '\0');
	check(ld_session_token_parse(tok, n, &again) == 0 && again == pos);
	return 0;
}
