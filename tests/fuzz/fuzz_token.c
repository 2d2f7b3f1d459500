/*
 * fuzz_token.c - bearer token verification and base64url against arbitrary
 * bytes.
 *
 * Input: byte 0 picks the check, the rest is the text.
 *   0  base64url decode; whatever decodes must encode back to the very same
 *      text (one spelling per value).
 *   1  token verification with two known keys at a fixed time. A token that
 *      verifies must name a positive user and an unexpired time, and must be
 *      byte for byte the token we would issue for them with that key: no
 *      second spelling of a valid token exists.
 *   2  base64url encode then decode gives the bytes back.
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "base/b64.h"

#define HEX_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HEX_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define NOW   1700000000
#define TTL   3600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

/* by_k1 signs with k1, by_k2 with k2; both verify both. */
static struct ld_auth by_k1, by_k2;

static void setup(void)
{
	static bool done;
	char err[256];

	if (done)
		return;
	check(sodium_init() >= 0);
	check(ld_auth_init(&by_k1, "k1:" HEX_A ",k2:" HEX_B, NULL, 1, 8192, TTL, err,
			   sizeof(err)) == 0);
	check(ld_auth_init(&by_k2, "k2:" HEX_B ",k1:" HEX_A, NULL, 1, 8192, TTL, err,
			   sizeof(err)) == 0);
	done = true;
}

static void decode(const char *s, size_t n)
{
	unsigned char out[256];
	char back[400];
	int len;

	len = ld_b64url_decode(s, n, out, sizeof(out));
	if (len < 0) {
		check(len == -EINVAL || len == -E2BIG);
		return;
	}
	check(LD_B64URL_LEN((size_t)len) == n);
	check(ld_b64url_encode(out, (size_t)len, back, sizeof(back)) == (int)n);
	check(memcmp(back, s, n) == 0);
}

static void verify(const char *s, size_t n)
{
	char again[LD_TOKEN_MAX];
	int64_t uid = 0, exp = 0;
	const struct ld_auth *signer;
	int rc, rc2;

	rc = ld_token_verify(&by_k1, s, n, NOW, &uid);
	rc2 = ld_token_verify(&by_k2, s, n, NOW, &uid);
	check(rc == rc2); /* key order changes who signs, not what verifies */
	if (rc != 0) {
		check(rc == -EINVAL || rc == -EPERM || rc == -ETIMEDOUT);
		return;
	}
	check(uid > 0);
	signer = n > 2 && s[1] == '1' ? &by_k1 : &by_k2;
	/* Find the expiry by issuing at every plausible time is too slow; the
	 * payload carries it, so re-issue from its decoded value instead. */
	{
		unsigned char p[16];
		const char *d1 = memchr(s, '.', n);
		int i;

		check(d1 != NULL);
		check(ld_b64url_decode(d1 + 1, 22, p, sizeof(p)) == 16);
		for (i = 8; i < 16; i++)
			exp = exp << 8 | p[i];
	}
	check(exp > NOW);
	check(ld_token_issue(signer, uid, exp - TTL, again, sizeof(again), NULL) == 0);
	check(strlen(again) == n && memcmp(again, s, n) == 0);
}

static void roundtrip(const uint8_t *p, size_t n)
{
	char enc[LD_B64URL_LEN(512) + 1];
	unsigned char back[512];

	if (n > 512)
		n = 512;
	check(ld_b64url_encode(p, n, enc, sizeof(enc)) == (int)LD_B64URL_LEN(n));
	check(ld_b64url_decode(enc, LD_B64URL_LEN(n), back, n) == (int)n);
	check(memcmp(back, p, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	size_t n;

	if (size < 1)
		return 0;
	setup();
	n = size - 1;
	/* An exact-size copy so a read past the end is caught. */
	s = malloc(n ? n : 1);
	if (!s)
		return 0;
	memcpy(s, data + 1, n);
	switch (data[0] % 3) {
	case 0:
		decode(s, n);
		break;
	case 1:
		verify(s, n);
		break;
	default:
		roundtrip(data + 1, n);
		break;
	}
	free(s);
	return 0;
}
