#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/b64.h"

/* RFC 4648 section 10 vectors; none of them use '+' or '/', so they read the
 * same in the url alphabet. */
static void test_rfc4648_vectors(void)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	char out[32], back[32];
	size_t i, n;

	for (i = 0; i < 7; i++) {
		n = strlen(plain[i]);
		CHECK_INT(ld_b64url_encode(plain[i], n, out, sizeof(out)), strlen(enc[i]));
		CHECK_STR(out, enc[i]);
		CHECK_INT(LD_B64URL_LEN(n), strlen(enc[i]));
		CHECK_INT(ld_b64url_decode(enc[i], strlen(enc[i]), back, sizeof(back)), n);
		CHECK_MEM(back, plain[i], n);
	}
}

/* The two characters that differ from standard base64 ('+' -> '-', '/' ->
 * '_') appear where the 6-bit groups are 62 and 63. */
static void test_url_alphabet(void)
{
	static const unsigned char a[] = {0xfb, 0xef, 0xbe}, b[] = {0xff, 0xff, 0xff},
				   c[] = {0xfb, 0xff};
	unsigned char back[8];
	char out[16];

	CHECK_INT(ld_b64url_encode(a, 3, out, sizeof(out)), 4);
	CHECK_STR(out, "----");
	CHECK_INT(ld_b64url_encode(b, 3, out, sizeof(out)), 4);
	CHECK_STR(out, "____");
	CHECK_INT(ld_b64url_encode(c, 2, out, sizeof(out)), 3);
	CHECK_STR(out, "-_8");
	CHECK_INT(ld_b64url_decode("-_8", 3, back, sizeof(back)), 2);
	CHECK_MEM(back, c, 2);
	CHECK_INT(ld_b64url_decode("+/8", 3, back, sizeof(back)), -EINVAL);
}

static void test_roundtrip_random(void)
{
	unsigned char in[300], back[300];
	char enc[LD_B64URL_LEN(300) + 1];
	size_t n, i;
	int round;

	srand(12345);
	for (round = 0; round < 3; round++) {
		for (n = 0; n <= 300; n++) {
			for (i = 0; i < n; i++)
				in[i] = (unsigned char)rand();
			CHECK_INT(ld_b64url_encode(in, n, enc, sizeof(enc)), LD_B64URL_LEN(n));
			CHECK_INT(strlen(enc), LD_B64URL_LEN(n));
			CHECK_INT(ld_b64url_decode(enc, strlen(enc), back, n), n);
			CHECK(memcmp(in, back, n) == 0);
		}
	}
}

static void test_rejects(void)
{
	unsigned char out[64];
	char buf[16];
	int c;

	/* Padding is not part of this encoding. */
	CHECK_INT(ld_b64url_decode("Zg==", 4, out, sizeof(out)), -EINVAL);
	CHECK_INT(ld_b64url_decode("Zm8=", 4, out, sizeof(out)), -EINVAL);
	/* Impossible lengths. */
	CHECK_INT(ld_b64url_decode("Z", 1, out, sizeof(out)), -EINVAL);
	CHECK_INT(ld_b64url_decode("Zm9vY", 5, out, sizeof(out)), -EINVAL);
	/* Non-zero unused bits: "Zh" would also decode to "f" without the
	 * canonical check, "Zm9" to "fo". */
	CHECK_INT(ld_b64url_decode("Zh", 2, out, sizeof(out)), -EINVAL);
	CHECK_INT(ld_b64url_decode("Zm9", 3, out, sizeof(out)), -EINVAL);
	CHECK_INT(ld_b64url_decode("Zm9vYh", 6, out, sizeof(out)), -EINVAL);
	CHECK_INT(ld_b64url_decode("Zm9vYmF", 7, out, sizeof(out)), -EINVAL);
	/* Every byte outside the alphabet, in every position of a group and in
	 * a tail. */
	for (c = 0; c < 256; c++) {
		int pos;
		bool in_alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				(c >= '0' && c <= '9') || c == '-' || c == '_';

		if (in_alpha)
			continue;
		for (pos = 0; pos < 4; pos++) {
			memcpy(buf, "AAAAAA", 7);
			buf[pos] = (char)c;
			CHECK_INT(ld_b64url_decode(buf, 4, out, sizeof(out)), -EINVAL);
			CHECK_INT(ld_b64url_decode(buf + (pos < 2 ? 0 : 2), 4 - (pos < 2 ? 0 : 2),
						   out, sizeof(out)),
				  -EINVAL);
		}
		buf[0] = 'Q';
		buf[1] = 'Q';
		buf[2] = (char)c;
		CHECK_INT(ld_b64url_decode(buf, 3, out, sizeof(out)), -EINVAL);
	}
	/* Output room: exactly enough works, one byte less is -E2BIG. */
	CHECK_INT(ld_b64url_decode("Zm9vYmFy", 8, out, 6), 6);
	CHECK_INT(ld_b64url_decode("Zm9vYmFy", 8, out, 5), -E2BIG);
	CHECK_INT(ld_b64url_decode("Zm9vYg", 6, out, 3), -E2BIG);
	CHECK_INT(ld_b64url_encode("foobar", 6, buf, 9), 8);
	CHECK_INT(ld_b64url_encode("foobar", 6, buf, 8), -E2BIG); /* no room for NUL */
	CHECK_INT(ld_b64url_encode("f", 1, buf, 2), -E2BIG);
	CHECK_INT(ld_b64url_encode("", 0, buf, 1), 0);
	CHECK_STR(buf, "");
	CHECK_INT(ld_b64url_encode("", 0, buf, 0), -E2BIG);
}

/* Exactly one spelling per value: of the 64 characters that may end a
 * 2-character tail only 4 decode, and of those ending a 3-character tail
 * only 16. */
static void test_canonical_count(void)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char out[4];
	char buf[4];
	int i, ok2 = 0, ok3 = 0;

	for (i = 0; i < 64; i++) {
		buf[0] = 'Q';
		buf[1] = alpha[i];
		ok2 += ld_b64url_decode(buf, 2, out, sizeof(out)) == 1;
		buf[1] = 'Q';
		buf[2] = alpha[i];
		ok3 += ld_b64url_decode(buf, 3, out, sizeof(out)) == 2;
	}
	CHECK_INT(ok2, 4);
	CHECK_INT(ok3, 16);
}

int main(void)
{
	RUN(test_rfc4648_vectors);
	RUN(test_url_alphabet);
	RUN(test_roundtrip_random);
	RUN(test_rejects);
	RUN(test_canonical_count);
	return unit_finish();
}
