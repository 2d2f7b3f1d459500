/*
 * b64.h - base64url without padding (RFC 4648 section 5), for tokens and
 * opaque cursors.
 */
#ifndef LD_B64_H
#define LD_B64_H

#include <stddef.h>

/* LD_B64URL_LEN is the encoded length of n bytes (no padding). */
#define LD_B64URL_LEN(n) (((n) / 3) * 4 + (((n) % 3) ? ((n) % 3) + 1 : 0))

/* ld_b64url_encode writes LD_B64URL_LEN(n) chars plus a NUL to out, which has
 * room for cap bytes. Returns the length written, or -E2BIG. */
int ld_b64url_encode(const void *in, size_t n, char *out, size_t cap);

/* ld_b64url_decode decodes n chars into out (cap bytes). Rejects padding,
 * characters outside the url alphabet, an impossible length (n % 4 == 1) and
 * non-zero unused bits (so every value has exactly one spelling). Returns the
 * decoded length, -EINVAL or -E2BIG. */
int ld_b64url_decode(const char *in, size_t n, void *out, size_t cap);

#endif
