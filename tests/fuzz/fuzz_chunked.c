/*
 * fuzz_chunked.c - the chunked body decoder against arbitrary bytes.
 *
 * Input: byte 0 seeds the split points, byte 1 picks the payload cap, the rest
 * is the encoded body. It is decoded in place whole, then again as it would
 * arrive over a connection: in random pieces, each step in a fresh heap buffer
 * of exactly the bytes received, decoded payload at the front and unused
 * encoded bytes after it. Both must agree on the outcome, the bytes used and
 * the payload (and, for a refusal, the reason); no call may produce more than
 * it consumed, touch bytes past what it consumed, or pass the cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_http_chunked ck;
	const uint8_t *in;
	uint64_t max, seed;
	char *whole, *buf = NULL;
	size_t len, consumed, produced, have = 0, pout = 0, pin = 0;
	const char *whole_why;
	int rc, rc2 = 0;

	if (size < 2)
		return 0;
	seed = data[0] * 0x9e3779b97f4a7c15ULL + 1;
	max = data[1] == 255 ? UINT64_MAX : (uint64_t)data[1] * 16;
	in = data + 2;
	len = size - 2;

	/* Whole, out == in. */
	whole = malloc(len ? len : 1);
	if (!whole)
		abort();
	if (len)
		memcpy(whole, in, len);
	ld_http_chunked_init(&ck, max);
	rc = ld_http_chunked_decode(&ck, whole, whole, len, &consumed, &produced);
	check(rc == 1 || rc == 0 || rc == -400 || rc == -413);
	check((rc == -400) == (ck.why != NULL)); /* a refusal says why */
	whole_why = ck.why;
	check(consumed <= len && produced <= consumed && ck.total == produced && ck.total <= max);
	check(memcmp(whole + consumed, in + consumed, len - consumed) == 0);
	if (rc == 0)
		check(consumed == len);

	/* Piece by piece. */
	ld_http_chunked_init(&ck, max);
	while (have < len) {
		size_t step, c2, p2;
		char *nb;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		step = 1 + (size_t)(seed % (seed & 1 ? 4 : 64));
		if (step > len - have)
			step = len - have;
		nb = malloc(have + step);
		if (!nb)
			abort();
		if (have)
			memcpy(nb, buf, have);
		memcpy(nb + have, in + have, step);
		free(buf);
		buf = nb;
		have += step;
		rc2 = ld_http_chunked_decode(&ck, buf + pout, buf + pin, have - pin, &c2, &p2);
		check(c2 <= have - pin);
		check(pout + p2 <= pin + c2);
		check(memcmp(buf + pin + c2, in + pin + c2, have - pin - c2) == 0);
		pout += p2;
		pin += c2;
		check(ck.total == pout && ck.total <= max);
		if (rc2 != 0)
			break;
		check(pin == have);
	}
	check(rc2 == rc);
	check(ck.why == whole_why); /* the same reason, however it arrived */
	check(pin == consumed && pout == produced);
	if (produced)
		check(memcmp(buf, whole, produced) == 0);
	free(buf);
	free(whole);
	return 0;
}
