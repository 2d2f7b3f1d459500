/*
 * auth.c - argon2id passwords and HMAC-SHA256 bearer tokens (libsodium).
 *
 * Tokens are "<kid>.<b64url(user id BE64 | expiry BE64)>.<b64url(mac)>" with
 * mac = HMAC-SHA256(key[kid], "<kid>.<payload>"). Verification checks the
 * shape, finds the key, checks the MAC in constant time, and only then reads
 * the payload, so nothing an attacker wrote is interpreted before it is
 * proven to come from us.
 */
#include "api/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/argon2_area.h"
#include "base/b64.h"
#include "base/file.h"

#define PAYLOAD_LEN   16
#define PAYLOAD_B64   LD_B64URL_LEN(PAYLOAD_LEN)		  /* 22 */
#define MAC_B64	      LD_B64URL_LEN(crypto_auth_hmacsha256_BYTES) /* 43 */
#define DEFAULT_TTL_S 86400
#define DEFAULT_OPS   2ull
#define DEFAULT_MEM   (19u * 1024u * 1024u)
#define KEY_FILE      "token.key"
#define KEY_FILE_MAX  4096 /* LD_AUTH_KEYS_MAX lines of kid:hex fit easily */

_Static_assert(LD_PWHASH_MAX >= crypto_pwhash_STRBYTES, "argon2 strings must fit");
_Static_assert(LD_AUTH_KEY_LEN == crypto_auth_hmacsha256_KEYBYTES, "HMAC key size");
_Static_assert(LD_AUTH_KID_MAX + 1 + PAYLOAD_B64 + 1 + MAC_B64 + 1 <= LD_TOKEN_MAX,
	       "the longest token fits LD_TOKEN_MAX");

static bool kid_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * parse_key reads one "kid:hex" element s[0..n) (already trimmed) into k.
 * what names the source in messages ("token_keys", "data/token.key") and
 * idx is the 1-based element number. The hex is never echoed.
 */
static int parse_key(const char *s, size_t n, struct ld_auth_key *k, const char *what, unsigned idx,
		     char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', n);
	size_t kl, hl, i;
	unsigned char acc = 0;
	int rc = -EINVAL, hi, lo;

	if (!colon) {
		snprintf(err, errlen, "%s: key %u: want kid:64-hex-chars (no ':' found)", what,
			 idx);
		goto out;
	}
	kl = (size_t)(colon - s);
	hl = n - kl - 1;
	if (kl == 0) {
		snprintf(err, errlen, "%s: key %u: kid is empty", what, idx);
		goto out;
	}
	for (i = 0; i < kl; i++) {
		if (!kid_char(s[i])) {
			snprintf(err, errlen,
				 "%s: key %u: kid '%.*s' has characters outside [A-Za-z0-9_-]",
				 what, idx, (int)(kl < 32 ? kl : 32), s);
			goto out;
		}
	}
	if (kl > LD_AUTH_KID_MAX) {
		snprintf(err, errlen, "%s: key %u: kid '%.*s' is longer than %d characters", what,
			 idx, (int)kl, s, LD_AUTH_KID_MAX);
		goto out;
	}
	if (hl != 2 * LD_AUTH_KEY_LEN) {
		snprintf(err, errlen,
			 "%s: key %u (kid '%.*s'): the key must be %d hex characters (%d bytes), "
			 "not %zu",
			 what, idx, (int)kl, s, 2 * LD_AUTH_KEY_LEN, LD_AUTH_KEY_LEN, hl);
		goto out;
	}
	memcpy(k->kid, s, kl);
	k->kid[kl] = '\0';
	for (i = 0; i < LD_AUTH_KEY_LEN; i++) {
		hi = hexval(colon[1 + 2 * i]);
		lo = hexval(colon[2 + 2 * i]);
		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "%s: key %u (kid '%s'): the key is not hex", what,
				 idx, k->kid);
			goto out;
		}
		k->key[i] = (unsigned char)(hi << 4 | lo);
		acc |= k->key[i];
	}
	/* An all-zero key is a placeholder someone forgot to replace. */
	if (!acc) {
		snprintf(err, errlen, "%s: key %u (kid '%s'): the key is all zeros", what, idx,
			 k->kid);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* parse_keys reads "kid:hex[,kid:hex...]" (white space around elements and
 * one trailing comma allowed) into a->keys. */
static int parse_keys(struct ld_auth *a, const char *spec, const char *what, char *err,
		      size_t errlen)
{
	const char *p = spec, *end, *b, *e;
	unsigned i, j;
	int rc = 0;

	a->nkeys = 0;
	while (*p) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		b = p;
		e = end;
		while (b < e && is_space(*b))
			b++;
		while (e > b && is_space(e[-1]))
			e--;
		if (b == e) {
			/* Only a trailing comma ("k1:...,\n") may leave an empty
			 * element. */
			if (*end == '\0' && a->nkeys > 0)
				break;
			snprintf(err, errlen, "%s: key %u is empty", what, a->nkeys + 1);
			rc = -EINVAL;
			goto out;
		}
		if (a->nkeys == LD_AUTH_KEYS_MAX) {
			snprintf(err, errlen, "%s: more than %d keys", what, LD_AUTH_KEYS_MAX);
			rc = -EINVAL;
			goto out;
		}
		rc = parse_key(b, (size_t)(e - b), &a->keys[a->nkeys], what, a->nkeys + 1, err,
			       errlen);
		if (rc < 0)
			goto out;
		a->nkeys++;
		p = *end ? end + 1 : end;
	}
	if (a->nkeys == 0) {
		snprintf(err, errlen, "%s: no key given", what);
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < a->nkeys; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(a->keys[i].kid, a->keys[j].kid) == 0) {
				snprintf(err, errlen, "%s: kid '%s' appears twice (keys %u and %u)",
					 what, a->keys[i].kid, j + 1, i + 1);
				rc = -EINVAL;
				goto out;
			}
		}
	}
out:
	if (rc < 0) {
		sodium_memzero(a->keys, sizeof(a->keys));
		a->nkeys = 0;
	}
	return rc;
}

/* read_key_file loads the keys kept in path (open fd). */
static int read_key_file(struct ld_auth *a, int fd, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int rc = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	/* Refusing would lock an operator out of a running box over a chmod;
	 * a loud warning is the better trade. */
	if (st.st_mode & 0077)
		fprintf(stderr, "ladder: warning: %s may be read by other users (chmod 600 it)\n",
			path);
	/* ld_read_fd leaves no copy of the keys behind in freed memory, so
	 * wiping buf below is enough. */
	rc = ld_read_fd(fd, path, KEY_FILE_MAX, &buf, &len, err, errlen);
	if (rc) {
		/* An oversized key file is bad content, reported as before. */
		if (rc == -E2BIG)
			rc = -EINVAL;
		goto out;
	}
	if (strlen(buf) != len) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		rc = -EINVAL;
		goto out;
	}
	rc = parse_keys(a, buf, path, err, errlen);
out:
	if (buf) {
		sodium_memzero(buf, len);
		free(buf);
	}
	return rc;
}

/*
 * make_key_file writes a fresh random key to path. The key is written to a
 * temporary file, synced, then moved into place without replacing anything
 * (renameat2 RENAME_NOREPLACE, else link): when two processes start on an
 * empty data directory at once, one key wins and both read it, instead of
 * the second silently replacing a key the first already signs with.
 * Returns 0, -EEXIST when another process won (read the file), or an error.
 */
static int make_key_file(const char *dir, const char *path, char *err, size_t errlen)
{
	char tmp[1100], line[LD_AUTH_KID_MAX + 2 + 2 * LD_AUTH_KEY_LEN + 2];
	unsigned char key[LD_AUTH_KEY_LEN], kid[3];
	size_t off = 0, len;
	ssize_t n;
	int fd = -1, dfd = -1, rc = 0, i;

	tmp[0] = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "data: cannot create '%s': %s", dir, strerror(errno));
		goto out;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, KEY_FILE) >= sizeof(tmp)) {
		tmp[0] = '\0';
		snprintf(err, errlen, "data: path too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	/* mkstemp makes the file 0600. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		tmp[0] = '\0';
		goto out;
	}
	randombytes_buf(kid, sizeof(kid));
	randombytes_buf(key, sizeof(key));
	len = (size_t)snprintf(line, sizeof(line), "k%02x%02x%02x:", kid[0], kid[1], kid[2]);
	for (i = 0; i < LD_AUTH_KEY_LEN; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%02x", key[i]);
	line[len++] = '\n';
	while (off < len) {
		n = write(fd, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		tmp[0] = '\0';
	} else if (errno == EEXIST) {
		rc = -EEXIST;
		goto out;
	} else if (link(tmp, path) < 0) {
		/* Some file systems lack RENAME_NOREPLACE; link(2) is the older
		 * way to publish a file only if the name is free. */
		rc = -errno;
		if (rc != -EEXIST)
			snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		goto out;
	}
	/* The rename is durable only once the directory is synced. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
out:
	sodium_memzero(line, sizeof(line));
	sodium_memzero(key, sizeof(key));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

static int load_key_file(struct ld_auth *a, const char *data_dir, char *err, size_t errlen)
{
	char path[1100];
	int fd = -1, rc, tries;

	if (!data_dir || !data_dir[0]) {
		snprintf(err, errlen, "token_keys: empty and no data directory to keep a key in");
		rc = -EINVAL;
		goto out;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, KEY_FILE) >= sizeof(path)) {
		snprintf(err, errlen, "data: path too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	for (tries = 0; tries < 2; tries++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
		rc = make_key_file(data_dir, path, err, errlen);
		if (rc < 0 && rc != -EEXIST)
			goto out;
	}
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	rc = read_key_file(a, fd, path, err, errlen);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int ld_auth_init(struct ld_auth *a, const char *spec, const char *data_dir,
		 unsigned long long pw_ops, size_t pw_mem, int64_t token_ttl_s, char *err,
		 size_t errlen)
{
	unsigned char pw[16];
	int rc = 0;

	memset(a, 0, sizeof(*a));
	err[0] = '\0';
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		rc = -ENOSYS;
		goto out;
	}
	a->token_ttl_s = token_ttl_s ? token_ttl_s : DEFAULT_TTL_S;
	a->pw_ops = pw_ops ? pw_ops : DEFAULT_OPS;
	a->pw_mem = pw_mem ? pw_mem : DEFAULT_MEM;
	if (a->token_ttl_s < 1) {
		snprintf(err, errlen, "token_ttl: must be positive");
		rc = -EINVAL;
		goto out;
	}
	if (a->pw_ops < crypto_pwhash_OPSLIMIT_MIN || a->pw_ops > crypto_pwhash_OPSLIMIT_MAX) {
		snprintf(err, errlen,
			 "argon2_ops: %llu is outside libsodium's range (%llu to %llu)", a->pw_ops,
			 (unsigned long long)crypto_pwhash_OPSLIMIT_MIN,
			 (unsigned long long)crypto_pwhash_OPSLIMIT_MAX);
		rc = -EINVAL;
		goto out;
	}
	if (a->pw_mem < crypto_pwhash_MEMLIMIT_MIN || a->pw_mem > crypto_pwhash_MEMLIMIT_MAX) {
		snprintf(err, errlen,
			 "argon2_mem: %zu bytes is outside libsodium's range (%zu to %zu)",
			 a->pw_mem, (size_t)crypto_pwhash_MEMLIMIT_MIN,
			 (size_t)crypto_pwhash_MEMLIMIT_MAX);
		rc = -EINVAL;
		goto out;
	}
	if (spec && spec[0])
		rc = parse_keys(a, spec, "token_keys", err, errlen);
	else
		rc = load_key_file(a, data_dir, err, errlen);
	if (rc < 0)
		goto out;
	/* A login for an unknown handle verifies against this hash, made with the
	 * configured cost, so it takes as long as one for a known handle and the
	 * answer time does not reveal which handles exist. */
	randombytes_buf(pw, sizeof(pw));
	if (crypto_pwhash_str_alg(a->dummy_hash, (const char *)pw, sizeof(pw), a->pw_ops, a->pw_mem,
				  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		snprintf(err, errlen, "argon2_mem: cannot hash with %zu bytes (out of memory)",
			 a->pw_mem);
		rc = -ENOMEM;
		goto out;
	}
out:
	sodium_memzero(pw, sizeof(pw));
	if (rc < 0)
		ld_auth_release(a);
	return rc;
}

void ld_auth_release(struct ld_auth *a)
{
	sodium_memzero(a->keys, sizeof(a->keys));
	a->nkeys = 0;
}

static void put_be64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)u;
		u >>= 8;
	}
}

static int64_t get_be64(const unsigned char *p)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

int ld_token_issue(const struct ld_auth *a, int64_t user_id, int64_t now_s, char *out, size_t cap,
		   int64_t *expires_s)
{
	const struct ld_auth_key *k = &a->keys[0];
	unsigned char payload[PAYLOAD_LEN], mac[crypto_auth_hmacsha256_BYTES];
	size_t kl = strlen(k->kid), len;
	int64_t exp;
	int rc = 0;

	if (a->nkeys == 0) {
		rc = -EINVAL;
		goto out;
	}
	if (user_id <= 0 || now_s < 0 || now_s > INT64_MAX - a->token_ttl_s) {
		rc = -EINVAL;
		goto out;
	}
	if (cap < kl + 1 + PAYLOAD_B64 + 1 + MAC_B64 + 1) {
		rc = -E2BIG;
		goto out;
	}
	exp = now_s + a->token_ttl_s;
	put_be64(payload, user_id);
	put_be64(payload + 8, exp);
	memcpy(out, k->kid, kl);
	out[kl] = '.';
	len = kl + 1;
	len += (size_t)ld_b64url_encode(payload, sizeof(payload), out + len, cap - len);
	crypto_auth_hmacsha256(mac, (const unsigned char *)out, len, k->key);
	out[len++] = '.';
	ld_b64url_encode(mac, sizeof(mac), out + len, cap - len);
	if (expires_s)
		*expires_s = exp;
out:
	return rc;
}

int ld_token_verify(const struct ld_auth *a, const char *tok, size_t len, int64_t now_s,
		    int64_t *user_id)
{
	const struct ld_auth_key *k = NULL;
	unsigned char payload[PAYLOAD_LEN], mac[crypto_auth_hmacsha256_BYTES],
	    want[crypto_auth_hmacsha256_BYTES];
	const char *d1, *d2;
	size_t kl, i;
	int64_t uid, exp;
	int rc = -EINVAL;

	if (len >= LD_TOKEN_MAX)
		goto out;
	/* Shape: exactly three segments with the right lengths. */
	d1 = memchr(tok, '.', len);
	if (!d1)
		goto out;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
		goto out;
	kl = (size_t)(d1 - tok);
	if (kl == 0 || kl > LD_AUTH_KID_MAX || (size_t)(d2 - d1 - 1) != PAYLOAD_B64 ||
	    len - (size_t)(d2 + 1 - tok) != MAC_B64)
		goto out;
	if (ld_b64url_decode(d2 + 1, MAC_B64, mac, sizeof(mac)) != (int)sizeof(mac))
		goto out;
	for (i = 0; i < a->nkeys; i++) {
		if (strlen(a->keys[i].kid) == kl && memcmp(a->keys[i].kid, tok, kl) == 0) {
			k = &a->keys[i];
			break;
		}
	}
	if (!k) {
		rc = -EPERM;
		goto out;
	}
	crypto_auth_hmacsha256(want, (const unsigned char *)tok, (size_t)(d2 - tok), k->key);
	if (sodium_memcmp(want, mac, sizeof(mac)) != 0) {
		rc = -EPERM;
		goto out;
	}
	/* Signed by us: from here on the payload may be trusted. */
	if (ld_b64url_decode(d1 + 1, PAYLOAD_B64, payload, sizeof(payload)) != PAYLOAD_LEN)
		goto out;
	uid = get_be64(payload);
	exp = get_be64(payload + 8);
	if (uid <= 0)
		goto out;
	if (now_s >= exp) {
		rc = -ETIMEDOUT;
		goto out;
	}
	*user_id = uid;
	rc = 0;
out:
	return rc;
}

int ld_password_hash(const struct ld_auth *a, const char *pw, size_t len, char *out)
{
	int rc = 0;

	if (len > crypto_pwhash_PASSWD_MAX) {
		rc = -EINVAL;
		goto out;
	}
	ld_argon2_area_begin();
	if (crypto_pwhash_str_alg(out, pw, len, a->pw_ops, a->pw_mem,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		rc = -ENOMEM;
	ld_argon2_area_end();
out:
	return rc;
}

int ld_password_verify(const char *hash, const char *pw, size_t len)
{
	int rc;

	ld_argon2_area_begin();
	rc = crypto_pwhash_str_verify(hash, pw, len) == 0 ? 0 : -EPERM;
	ld_argon2_area_end();
	return rc;
}
