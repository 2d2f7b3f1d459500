/*
 * fuzz_idem_key.c - the Idempotency-Key field's parser against arbitrary
 * bytes. What it accepts must be 1..255 printable ASCII characters, and
 * must be exactly the value written back in the one canonical sf-string
 * spelling (every DQUOTE and backslash escaped, nothing else): no second
 * spelling of a key exists, so two requests carry the same key only when
 * their fields say the same string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/idempotency.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[LD_IDEM_KEY_MAX + 1], again[LD_IDEM_KEY_MAX + 1];
	char spelled[2 * LD_IDEM_KEY_MAX + 3];
	size_t i, n = 0;
	int len = ld_idem_key_parse((const char *)data, size, out);

	if (len < 0)
		return 0;
	check(len >= 1 && len <= LD_IDEM_KEY_MAX);
	check(out[len] == '\0');
	spelled[n++] = '"';
	for (i = 0; i < (size_t)len; i++) {
		check(out[i] >= 0x20 && out[i] <= 0x7e);
		if (out[i] == '"' || out[i] == '\\')
			spelled[n++] = '\\';
		spelled[n++] = out[i];
	}
	spelled[n++] = '"';
	check(n == size && memcmp(spelled, data, size) == 0);
	check(ld_idem_key_parse(spelled, n, again) == len);
	check(memcmp(again, out, (size_t)len) == 0);
	return 0;
}
