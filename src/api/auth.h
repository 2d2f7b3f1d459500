/*
 * auth.h - passwords (argon2id) and stateless signed bearer tokens.
 *
 * Token: "<kid>.<payload>.<sig>" where payload is base64url of the 16 bytes
 * user id (int64 big-endian) + expiry (Unix seconds, int64 big-endian) and sig
 * is base64url of HMAC-SHA256(key[kid], "<kid>.<payload>"). Any node holding
 * the keys verifies a token without a lookup. Several keys may verify (key
 * rotation); the first key signs. Comparison of MACs is constant time.
 *
 * Threading: a configured ld_auth is read-only and may be shared by every
 * thread. Password hashing takes tens of milliseconds and memory by design:
 * call it from a worker thread (uv_queue_work), never on an event loop.
 */
#ifndef LD_AUTH_H
#define LD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define LD_AUTH_KEYS_MAX 8
#define LD_AUTH_KID_MAX	 16
#define LD_AUTH_KEY_LEN	 32
#define LD_TOKEN_MAX	 160 /* bytes of a token incl. NUL, with room to spare */
#define LD_PWHASH_MAX	 128 /* argon2id encoded string incl. NUL */

struct ld_auth_key {
	char kid[LD_AUTH_KID_MAX + 1]; /* [A-Za-z0-9_-]{1,16} */
	unsigned char key[LD_AUTH_KEY_LEN];
};

struct ld_auth {
	struct ld_auth_key keys[LD_AUTH_KEYS_MAX];
	unsigned nkeys;			/* keys[0] signs, all verify */
	int64_t token_ttl_s;		/* default 86400 */
	unsigned long long pw_ops;	/* argon2id passes (default 2) */
	size_t pw_mem;			/* argon2id memory in bytes (default 19 MiB) */
	char dummy_hash[LD_PWHASH_MAX]; /* verified against when a handle is unknown */
};

/*
 * ld_auth_init sets defaults, loads the keys and prepares the dummy hash.
 * spec is "kid:64-hex-chars[,kid:hex...]" (the first signs); when spec is NULL
 * or empty the key is read from data_dir/token.key, and made there (random,
 * mode 0600) when absent, so a single box keeps its tokens valid across
 * restarts. pw_ops/pw_mem of 0 keep the defaults; values under libsodium's
 * minimum are refused. Needs sodium_init() done. Errors name the offending
 * setting in err. Returns 0 or a negative errno.
 */
int ld_auth_init(struct ld_auth *a, const char *spec, const char *data_dir,
		 unsigned long long pw_ops, size_t pw_mem, int64_t token_ttl_s, char *err,
		 size_t errlen);

/* ld_auth_release wipes the keys from memory; init may be called again. */
void ld_auth_release(struct ld_auth *a);

/* ld_token_issue writes a token for user_id valid until now_s + ttl into out
 * (cap bytes, at least LD_TOKEN_MAX) and the expiry into *expires_s. */
int ld_token_issue(const struct ld_auth *a, int64_t user_id, int64_t now_s, char *out, size_t cap,
		   int64_t *expires_s);

/* ld_token_verify checks tok[0..len). Returns 0 and sets *user_id when the
 * token is well formed, signed by a known key and not expired at now_s
 * (a token is valid while now_s < its expiry);
 * -EINVAL when malformed, -EPERM for an unknown kid or bad signature,
 * -ETIMEDOUT when expired. */
int ld_token_verify(const struct ld_auth *a, const char *tok, size_t len, int64_t now_s,
		    int64_t *user_id);

/* ld_password_hash writes the argon2id encoded hash of pw into out
 * (LD_PWHASH_MAX bytes). Returns 0 or -ENOMEM (the memory cost failed). */
int ld_password_hash(const struct ld_auth *a, const char *pw, size_t len, char *out);

/* ld_password_verify returns 0 when pw matches hash, -EPERM when not. */
int ld_password_verify(const char *hash, const char *pw, size_t len);

#endif
