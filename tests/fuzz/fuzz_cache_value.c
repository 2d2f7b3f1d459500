/*
 * fuzz_cache_value.c - the redis level's values and keys as they come back
 * from Redis (cache/l2_codec.h), against arbitrary bytes.
 *
 * Input: byte 0 picks the check, the rest is the text.
 *   even  a value: one that decodes has status 200 or 404, an ETag that
 *         fits and holds no control byte, a body inside the input; encoded
 *         again it is the very same bytes (one spelling per value).
 *   odd   a key under prefix "p:": one that parses, written again, is the
 *         very same text, and parses to the same key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/l2_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t n = size ? size - 1 : 0;
	struct ld_cache_value v;
	struct ld_cache_key k, k2;
	char etag[48], out[128];
	size_t len;
	char *enc;

	if (!size)
		return 0;
	if (!(data[0] & 1)) {
		if (!ld_l2_decode(s, n, &v, etag, sizeof(etag)))
			return 0;
		check(v.status == 200 || v.status == 404);
		check(strlen(v.etag) < sizeof(etag));
		for (const char *p = v.etag; *p; p++)
			check((unsigned char)*p >= 0x20 && *p != 0x7f);
		check(v.body >= s && v.body + v.body_len == s + n);
		enc = ld_l2_encode(&v, &len);
		check(enc != NULL);
		check(len == n && memcmp(enc, s, n) == 0);
		free(enc);
		return 0;
	}
	if (!ld_l2_parse_key("p:", s, n, &k))
		return 0;
	check(k.id > 0 && (unsigned)k.kind < LD_CACHE_KINDS);
	check(ld_l2_key(out, sizeof(out), "p:", 'c', &k) == (int)n);
	check(memcmp(out, s, n) == 0);
	check(ld_l2_parse_key("p:", out, n, &k2) && k2.kind == k.kind && k2.id == k.id);
	return 0;
}
