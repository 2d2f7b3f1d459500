/*
 * sigv4.c - AWS Signature Version 4 (sigv4.h), on libsodium's SHA-256 and
 * HMAC-SHA256. The order of the steps is AWS's: canonical request, its
 * hash in the string to sign, the day's key from a chain of HMACs, the
 * signature as an HMAC of the string to sign.
 */
#include "blob/sigv4.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"

static void hmac(const unsigned char *key, size_t keylen, const char *msg, size_t n,
		 unsigned char out[32])
{
	crypto_auth_hmacsha256_state st;

	/* The streaming form: the first key ("AWS4" + secret) is not 32
	 * bytes, which the one-shot call assumes. */
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, n);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void ld_sigv4_signing_key(const struct ld_sigv4_creds *c, const char *date, unsigned char out[32])
{
	unsigned char k[32];
	char first[4 + 128 + 1];
	int n = snprintf(first, sizeof(first), "AWS4%s", c->secret_key);

	if (n < 0 || (size_t)n >= sizeof(first))
		n = (int)sizeof(first) - 1;
	hmac((const unsigned char *)first, (size_t)n, date, strlen(date), k);
	hmac(k, 32, c->region, strlen(c->region), k);
	hmac(k, 32, c->service, strlen(c->service), k);
	hmac(k, 32, "aws4_request", 12, out);
	sodium_memzero(first, sizeof(first));
	sodium_memzero(k, sizeof(k));
}

void ld_sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char h[32];

	crypto_hash_sha256(h, p, n);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

int ld_sigv4_uri_encode(const char *s, int keep_slash, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
			    ch == '~' || (keep_slash && ch == '/');

		if (n + (plain ? 1 : 3) >= cap)
			return -E2BIG;
		if (plain) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	if (n >= cap)
		return -E2BIG;
	out[n] = '\0';
	return 0;
}

/* signature computes the hex signature of a canonical request made of the
 * given parts (signed_headers is "a;b"). */
static int signature(const struct ld_sigv4_creds *c, const char *method, const char *path,
		     const char *query, const struct ld_sigv4_header *h, unsigned nh,
		     const char *signed_headers, const char *payload_hash, const char *amz_date,
		     char sig[65])
{
	struct ld_buf b;
	unsigned char key[32], mac[32];
	char date[9], creq_hash[65];
	unsigned i;
	int rc;

	if (strlen(amz_date) != 16 || amz_date[8] != 'T' || amz_date[15] != 'Z')
		return -EINVAL;
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	ld_buf_init(&b, 64 * 1024);
	ld_buf_printf(&b, "%s\n%s\n%s\n", method, path, query);
	for (i = 0; i < nh; i++)
		ld_buf_printf(&b, "%s:%s\n", h[i].name, h[i].value);
	ld_buf_printf(&b, "\n%s\n%s", signed_headers, payload_hash);
	rc = ld_buf_error(&b);
	if (rc)
		goto out;
	ld_sigv4_sha256_hex(b.data, b.len, creq_hash);
	ld_buf_reset(&b);
	ld_buf_printf(&b, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date,
		      c->region, c->service, creq_hash);
	rc = ld_buf_error(&b);
	if (rc)
		goto out;
	ld_sigv4_signing_key(c, date, key);
	hmac(key, sizeof(key), b.data, b.len, mac);
	sodium_bin2hex(sig, 65, mac, sizeof(mac));
	sodium_memzero(key, sizeof(key));
out:
	ld_buf_release(&b);
	return rc;
}

int ld_sigv4_authorization(const struct ld_sigv4_creds *c, const char *method, const char *path,
			   const char *query, const struct ld_sigv4_header *h, unsigned nh,
			   const char *payload_hash, const char *amz_date, char *out, size_t cap)
{
	char signed_headers[512], sig[65];
	size_t n = 0;
	unsigned i;
	int rc, w;

	signed_headers[0] = '\0';
	for (i = 0; i < nh; i++) {
		w = snprintf(signed_headers + n, sizeof(signed_headers) - n, "%s%s", i ? ";" : "",
			     h[i].name);
		if (w < 0 || (size_t)w >= sizeof(signed_headers) - n)
			return -E2BIG;
		n += (size_t)w;
	}
	rc = signature(c, method, path, query, h, nh, signed_headers, payload_hash, amz_date, sig);
	if (rc)
		return rc;
	w = snprintf(out, cap,
		     "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
		     "Signature=%s",
		     c->access_key, amz_date, c->region, c->service, signed_headers, sig);
	return w < 0 || (size_t)w >= cap ? -E2BIG : 0;
}

int ld_sigv4_presign(const struct ld_sigv4_creds *c, const char *method, const char *host,
		     const char *path, int64_t expires_s, const char *amz_date, char *out,
		     size_t cap)
{
	struct ld_sigv4_header h = {"host", host};
	char cred[256], cred_enc[512], sig[65];
	int rc, w;

	if (strlen(amz_date) != 16)
		return -EINVAL;
	w = snprintf(cred, sizeof(cred), "%s/%.8s/%s/%s/aws4_request", c->access_key, amz_date,
		     c->region, c->service);
	if (w < 0 || (size_t)w >= sizeof(cred))
		return -E2BIG;
	rc = ld_sigv4_uri_encode(cred, 0, cred_enc, sizeof(cred_enc));
	if (rc)
		return rc;
	/* The query without the signature is itself canonical: the names
	 * are in byte order already. */
	w = snprintf(out, cap,
		     "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
		     "&X-Amz-Expires=%" PRId64 "&X-Amz-SignedHeaders=host",
		     cred_enc, amz_date, expires_s);
	if (w < 0 || (size_t)w >= cap)
		return -E2BIG;
	rc = signature(c, method, path, out, &h, 1, "host", "UNSIGNED-PAYLOAD", amz_date, sig);
	if (rc)
		return rc;
	if ((size_t)w + 17 + 64 >= cap)
		return -E2BIG;
	snprintf(out + w, cap - (size_t)w, "&X-Amz-Signature=%s", sig);
	return 0;
}
