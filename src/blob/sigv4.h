/*
 * sigv4.h - AWS Signature Version 4, as S3 and every S3-compatible service
 * check it: the Authorization header of a request, and presigned URLs (the
 * signature in the query, so a client can PUT or GET one object directly,
 * the bytes never passing through an app node). libcurl 7.88 signs headers
 * (CURLOPT_AWS_SIGV4) but cannot presign, so the project signs itself;
 * this module is checked against AWS's published examples.
 *
 * The caller gives the canonical parts: the path already URI-encoded (each
 * segment; '/' kept), the query already canonical (names and values
 * encoded, sorted by name; "" for none), the headers to sign with lower-case
 * names, sorted, values trimmed. amz_date is "YYYYMMDDTHHMMSSZ" (UTC).
 *
 * Errors: 0, or -E2BIG when an output does not fit its cap, -EINVAL for a
 * malformed amz_date.
 *
 * Threading: pure functions; any thread.
 */
#ifndef LD_SIGV4_H
#define LD_SIGV4_H

#include <stddef.h>
#include <stdint.h>

struct ld_sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
};

struct ld_sigv4_header {
	const char *name; /* lower case */
	const char *value;
};

/* ld_sigv4_signing_key derives the day's key (32 bytes) for date
 * "YYYYMMDD". */
void ld_sigv4_signing_key(const struct ld_sigv4_creds *c, const char *date, unsigned char out[32]);

/*
 * ld_sigv4_authorization writes the Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=HEX". payload_hash is the hex SHA-256 of
 * the body, or "UNSIGNED-PAYLOAD".
 */
int ld_sigv4_authorization(const struct ld_sigv4_creds *c, const char *method, const char *path,
			   const char *query, const struct ld_sigv4_header *h, unsigned nh,
			   const char *payload_hash, const char *amz_date, char *out, size_t cap);

/*
 * ld_sigv4_presign writes the query string of a presigned URL for method on
 * host + path, valid expires_s seconds from amz_date, signing only the host
 * header (what a browser's PUT or GET can be trusted to send):
 * "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...&X-Amz-Date=...
 * &X-Amz-Expires=...&X-Amz-SignedHeaders=host&X-Amz-Signature=HEX".
 */
int ld_sigv4_presign(const struct ld_sigv4_creds *c, const char *method, const char *host,
		     const char *path, int64_t expires_s, const char *amz_date, char *out,
		     size_t cap);

/* ld_sigv4_uri_encode writes s encoded the SigV4 way (unreserved
 * A-Za-z0-9-._~ kept, every other byte %XX upper case; '/' kept when
 * keep_slash). */
int ld_sigv4_uri_encode(const char *s, int keep_slash, char *out, size_t cap);

/* ld_sigv4_sha256_hex writes the hex SHA-256 of p (65 bytes with the NUL). */
void ld_sigv4_sha256_hex(const void *p, size_t n, char out[65]);

#endif
