/*
 * b64.c - base64url without padding (RFC 4648 section 5).
 *
 * Decoding is strict so every byte string has exactly one spelling: a token
 * or cursor that decodes is the one we issued, not a variant of it.
 */
#include "base/b64.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* sextet maps a character to its 6-bit value, or -1 outside the alphabet. */
static int sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int ld_b64url_encode(const void *in, size_t n, char *out, size_t cap)
{
	const unsigned char *p = in;
	size_t len, i, o = 0;
	uint32_t v;
	int rc;

	if (n > (size_t)INT_MAX / 4 * 3 - 3) {
		rc = -E2BIG;
		goto out;
	}
	len = LD_B64URL_LEN(n);
	if (cap < len + 1) {
		rc = -E2BIG;
		goto out;
	}
	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	rc = (int)o;
out:
	return rc;
}

int ld_b64url_decode(const char *in, size_t n, void *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned char *d = out;
	size_t len, i, o = 0, tail = n % 4;
	uint32_t v;
	int a, b, c, e, rc;

	/* One leftover character carries only 6 bits: no byte ends there. */
	if (tail == 1) {
		rc = -EINVAL;
		goto out;
	}
	len = n / 4 * 3 + (tail ? tail - 1 : 0);
	if (len > (size_t)INT_MAX) {
		rc = -E2BIG;
		goto out;
	}
	if (len > cap) {
		rc = -E2BIG;
		goto out;
	}
	for (i = 0; i + 4 <= n; i += 4) {
		a = sextet(s[i]);
		b = sextet(s[i + 1]);
		c = sextet(s[i + 2]);
		e = sextet(s[i + 3]);
		if ((a | b | c | e) < 0) {
			rc = -EINVAL;
			goto out;
		}
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)e;
		d[o++] = (unsigned char)(v >> 16);
		d[o++] = (unsigned char)(v >> 8);
		d[o++] = (unsigned char)v;
	}
	if (tail) {
		a = sextet(s[i]);
		b = sextet(s[i + 1]);
		c = tail == 3 ? sextet(s[i + 2]) : 0;
		if ((a | b | c) < 0) {
			rc = -EINVAL;
			goto out;
		}
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		/* The bits past the last whole byte must be zero (canonical form):
		 * 4 of them after 2 characters, 2 after 3. */
		if ((tail == 2 && (v & 0xffff)) || (tail == 3 && (v & 0xff))) {
			rc = -EINVAL;
			goto out;
		}
		d[o++] = (unsigned char)(v >> 16);
		if (tail == 3)
			d[o++] = (unsigned char)(v >> 8);
	}
	rc = (int)o;
out:
	return rc;
}
