#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/auth.h"
#include "base/b64.h"

#define HEX_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HEX_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define HEX_C "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"

/* The cheapest cost libsodium accepts keeps the tests fast. */
#define OPS 1
#define MEM 8192

static char tmpdir[] = "/tmp/ld_test_auth_XXXXXX";

static int init(struct ld_auth *a, const char *spec, char *err)
{
	return ld_auth_init(a, spec, tmpdir, OPS, MEM, 3600, err, 256);
}

/* sign builds a token over an arbitrary payload with a known key, to reach
 * the checks that run after the MAC. */
static void sign(const char *kid, const char *hex, const void *payload, size_t n, char *out)
{
	unsigned char key[32], mac[32];
	size_t len, i;

	for (i = 0; i < 32; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		key[i] = (unsigned char)v;
	}
	len = (size_t)sprintf(out, "%s.", kid);
	len += (size_t)ld_b64url_encode(payload, n, out + len, 200);
	crypto_auth_hmacsha256(mac, (unsigned char *)out, len, key);
	out[len++] = '.';
	ld_b64url_encode(mac, 32, out + len, 200);
}

static void payload16(unsigned char *p, int64_t uid, int64_t exp)
{
	int i;

	for (i = 0; i < 8; i++) {
		p[i] = (unsigned char)((uint64_t)uid >> (56 - 8 * i));
		p[8 + i] = (unsigned char)((uint64_t)exp >> (56 - 8 * i));
	}
}

/* verify copies the token to a buffer of exactly len bytes (no NUL), so the
 * sanitizer build catches a read past the end. */
static int verify(const struct ld_auth *a, const char *tok, size_t len, int64_t now, int64_t *uid)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, tok, len);
	rc = ld_token_verify(a, copy, len, now, uid);
	free(copy);
	return rc;
}

static void test_issue_verify(void)
{
	struct ld_auth a;
	char err[256], tok[LD_TOKEN_MAX];
	int64_t exp = 0, uid = 0;

	CHECK_INT(init(&a, "k1:" HEX_A, err), 0);
	CHECK_INT(a.nkeys, 1);
	CHECK_STR(a.keys[0].kid, "k1");
	CHECK_INT(a.token_ttl_s, 3600);
	CHECK_INT(ld_token_issue(&a, 7312589412937728LL, 1700000000, tok, sizeof(tok), &exp), 0);
	CHECK_INT(exp, 1700003600);
	CHECK_INT(strlen(tok), 2 + 1 + 22 + 1 + 43);
	CHECK(strncmp(tok, "k1.", 3) == 0);
	CHECK_INT(verify(&a, tok, strlen(tok), 1700000000, &uid), 0);
	CHECK_INT(uid, 7312589412937728LL);
	/* The same inputs give the same token (no hidden state). */
	{
		char again[LD_TOKEN_MAX];

		CHECK_INT(
		    ld_token_issue(&a, 7312589412937728LL, 1700000000, again, sizeof(again), NULL),
		    0);
		CHECK_STR(again, tok);
	}
	CHECK_INT(ld_token_issue(&a, 0, 1700000000, tok, sizeof(tok), &exp), -EINVAL);
	CHECK_INT(ld_token_issue(&a, -1, 1700000000, tok, sizeof(tok), &exp), -EINVAL);
	CHECK_INT(ld_token_issue(&a, 1, 1700000000, tok, 40, &exp), -E2BIG);
	ld_auth_release(&a);
}

static void test_expiry_boundary(void)
{
	struct ld_auth a;
	char err[256], tok[LD_TOKEN_MAX];
	int64_t exp, uid = 0;

	CHECK_INT(ld_auth_init(&a, "k1:" HEX_A, tmpdir, OPS, MEM, 60, err, sizeof(err)), 0);
	CHECK_INT(ld_token_issue(&a, 5, 1000, tok, sizeof(tok), &exp), 0);
	CHECK_INT(exp, 1060);
	CHECK_INT(verify(&a, tok, strlen(tok), 1059, &uid), 0);
	CHECK_INT(uid, 5);
	CHECK_INT(verify(&a, tok, strlen(tok), 1060, &uid), -ETIMEDOUT);
	CHECK_INT(verify(&a, tok, strlen(tok), 100000, &uid), -ETIMEDOUT);
	/* A token from the future (clock skew between nodes) is still valid. */
	CHECK_INT(verify(&a, tok, strlen(tok), 0, &uid), 0);
}

static void test_rotation(void)
{
	struct ld_auth old, both, fresh, imposter;
	char err[256], t_old[LD_TOKEN_MAX], t_new[LD_TOKEN_MAX];
	int64_t exp, uid = 0;

	CHECK_INT(init(&old, "k1:" HEX_A, err), 0);
	CHECK_INT(init(&both, "k2:" HEX_B ", k1:" HEX_A, err), 0);
	CHECK_INT(init(&fresh, "k2:" HEX_B, err), 0);
	CHECK_INT(init(&imposter, "k1:" HEX_C, err), 0);
	CHECK_INT(ld_token_issue(&old, 11, 1000, t_old, sizeof(t_old), &exp), 0);
	CHECK_INT(ld_token_issue(&both, 22, 1000, t_new, sizeof(t_new), &exp), 0);
	/* The first key signs. */
	CHECK(strncmp(t_new, "k2.", 3) == 0);
	/* During rotation both verify. */
	CHECK_INT(verify(&both, t_old, strlen(t_old), 1001, &uid), 0);
	CHECK_INT(uid, 11);
	CHECK_INT(verify(&both, t_new, strlen(t_new), 1001, &uid), 0);
	CHECK_INT(uid, 22);
	/* Once the old key is removed, its tokens are refused. */
	CHECK_INT(verify(&fresh, t_old, strlen(t_old), 1001, &uid), -EPERM);
	CHECK_INT(verify(&fresh, t_new, strlen(t_new), 1001, &uid), 0);
	/* A node that never had the new key refuses its tokens. */
	CHECK_INT(verify(&old, t_new, strlen(t_new), 1001, &uid), -EPERM);
	/* Same kid, different key: the MAC fails. */
	CHECK_INT(verify(&imposter, t_old, strlen(t_old), 1001, &uid), -EPERM);
}

/* Changing any byte of a token to any other value must be caught. */
static void test_tamper_every_byte(void)
{
	struct ld_auth a;
	char err[256], tok[LD_TOKEN_MAX], bad[LD_TOKEN_MAX];
	int64_t exp, uid;
	size_t len, i;
	int c, rejected = 0, tries = 0;

	CHECK_INT(init(&a, "k1:" HEX_A ",k0:" HEX_B, err), 0);
	CHECK_INT(ld_token_issue(&a, 99, 1000, tok, sizeof(tok), &exp), 0);
	len = strlen(tok);
	for (i = 0; i < len; i++) {
		for (c = 0; c < 256; c++) {
			if (c == (unsigned char)tok[i])
				continue;
			memcpy(bad, tok, len);
			bad[i] = (char)c;
			uid = -1;
			tries++;
			if (verify(&a, bad, len, 1001, &uid) != 0 && uid == -1)
				rejected++;
		}
	}
	CHECK_INT(rejected, tries);
	/* Dropping or adding a byte anywhere is caught too. */
	for (i = 0; i < len; i++) {
		memcpy(bad, tok, i);
		memcpy(bad + i, tok + i + 1, len - i - 1);
		CHECK(verify(&a, bad, len - 1, 1001, &uid) != 0);
		memcpy(bad, tok, i);
		bad[i] = 'A';
		memcpy(bad + i + 1, tok + i, len - i);
		CHECK(verify(&a, bad, len + 1, 1001, &uid) != 0);
	}
}

static void test_malformed(void)
{
	struct ld_auth a;
	unsigned char p[32];
	char err[256], tok[256], kid17[32];
	int64_t exp, uid = 0;
	size_t len;

	CHECK_INT(init(&a, "k1:" HEX_A, err), 0);
	CHECK_INT(ld_token_issue(&a, 3, 1000, tok, sizeof(tok), &exp), 0);
	len = strlen(tok);
	/* Segment counts. */
	CHECK_INT(verify(&a, "", 0, 1001, &uid), -EINVAL);
	CHECK_INT(verify(&a, "k1", 2, 1001, &uid), -EINVAL);
	CHECK_INT(verify(&a, tok, 25, 1001, &uid), -EINVAL); /* "k1.<payload>" */
	CHECK_INT(verify(&a, "k1..", 4, 1001, &uid), -EINVAL);
	tok[len] = '.';
	CHECK_INT(verify(&a, tok, len + 1, 1001, &uid), -EINVAL);
	tok[len] = '\0';
	/* Over-long input. */
	memset(kid17, 'a', sizeof(kid17));
	CHECK_INT(verify(&a, kid17, sizeof(kid17), 1001, &uid), -EINVAL);
	/* Unknown kid with a right shape, and a kid too long to exist. */
	sign("k9", HEX_A, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EPERM);
	sign("aaaaaaaaaaaaaaaaa", HEX_A, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EINVAL);
	/* Bad base64 in the MAC. */
	payload16(p, 1, 5000);
	sign("k1", HEX_A, p, 16, tok);
	len = strlen(tok);
	CHECK_INT(verify(&a, tok, len, 1001, &uid), 0);
	tok[len - 5] = '+';
	CHECK_INT(verify(&a, tok, len, 1001, &uid), -EINVAL);
	/* Correctly signed payloads of the wrong length. */
	sign("k1", HEX_A, p, 15, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EINVAL);
	sign("k1", HEX_A, p, 17, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EINVAL);
	/* Correctly signed but not a user. */
	payload16(p, 0, 5000);
	sign("k1", HEX_A, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EINVAL);
	payload16(p, INT64_MIN, 5000);
	sign("k1", HEX_A, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EINVAL);
	/* The MAC is checked before the payload is believed: a bad MAC on an
	 * expired or zero-user payload is a bad MAC. */
	payload16(p, 0, 10);
	sign("k1", HEX_B, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EPERM);
	payload16(p, 4, 10);
	sign("k1", HEX_B, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -EPERM);
	sign("k1", HEX_A, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), -ETIMEDOUT);
	uid = 77;
	payload16(p, 123, 2000);
	sign("k1", HEX_A, p, 16, tok);
	CHECK_INT(verify(&a, tok, strlen(tok), 1001, &uid), 0);
	CHECK_INT(uid, 123);
}

static void test_spec_errors(void)
{
	static const struct {
		const char *spec;
		const char *msg;
	} cases[] = {
	    {"k1:" HEX_A ",a b:" HEX_B,
	     "token_keys: key 2: kid 'a b' has characters outside [A-Za-z0-9_-]"},
	    {"k1" HEX_A, "token_keys: key 1: want kid:64-hex-chars (no ':' found)"},
	    {":" HEX_A, "token_keys: key 1: kid is empty"},
	    {"abcdefghijklmnopq:" HEX_A,
	     "token_keys: key 1: kid 'abcdefghijklmnopq' is longer than 16 characters"},
	    {"k1:abcd",
	     "token_keys: key 1 (kid 'k1'): the key must be 64 hex characters (32 bytes), not 4"},
	    {"k1:" HEX_A "00", "token_keys: key 1 (kid 'k1'): the key must be 64 hex characters "
			       "(32 bytes), not 66"},
	    {"k1:zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	     "token_keys: key 1 (kid 'k1'): the key is not hex"},
	    {"k1:0000000000000000000000000000000000000000000000000000000000000000",
	     "token_keys: key 1 (kid 'k1'): the key is all zeros"},
	    {"k1:" HEX_A ",k1:" HEX_B, "token_keys: kid 'k1' appears twice (keys 1 and 2)"},
	    {"k1:" HEX_A ",,k2:" HEX_B, "token_keys: key 2 is empty"},
	    {",k1:" HEX_A, "token_keys: key 1 is empty"},
	    {" , ", "token_keys: key 1 is empty"},
	    {"a:" HEX_A ",b:" HEX_A ",c:" HEX_A ",d:" HEX_A ",e:" HEX_A ",f:" HEX_A ",g:" HEX_A
	     ",h:" HEX_A ",i:" HEX_A,
	     "token_keys: more than 8 keys"},
	};
	struct ld_auth a;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CHECK_INT(init(&a, cases[i].spec, err), -EINVAL);
		CHECK_STR(err, cases[i].msg);
		/* Key material never appears in a message. */
		CHECK(strstr(err, "9f86d0") == NULL && strstr(err, "60303a") == NULL);
		CHECK_INT(a.nkeys, 0);
	}
	/* White space around elements and a trailing comma are fine. */
	CHECK_INT(init(&a, "  k1:" HEX_A " ,\n\tk_2-x:" HEX_B ",", err), 0);
	CHECK_INT(a.nkeys, 2);
	CHECK_STR(a.keys[1].kid, "k_2-x");
	CHECK_INT(a.keys[0].key[0], 0x9f);
	CHECK_INT(a.keys[1].key[31], 0x52);
	CHECK_INT(init(&a, "ABCDEFGHIJKLMNOP:" HEX_A, err), 0);
	CHECK_STR(a.keys[0].kid, "ABCDEFGHIJKLMNOP");
}

static void test_cost_limits(void)
{
	struct ld_auth a;
	char err[256];

	CHECK_INT(ld_auth_init(&a, "k1:" HEX_A, tmpdir, OPS, 4096, 60, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "argon2_mem: 4096 bytes is outside libsodium's range") == err);
	CHECK_INT(ld_auth_init(&a, "k1:" HEX_A, tmpdir, OPS, MEM, -5, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "token_ttl: must be positive");
	/* Zero keeps the defaults (the default memory cost is not paid here:
	 * ops is set). */
	CHECK_INT(ld_auth_init(&a, "k1:" HEX_A, tmpdir, OPS, MEM, 0, err, sizeof(err)), 0);
	CHECK_INT(a.token_ttl_s, 86400);
	CHECK_INT(a.pw_ops, 1);
	CHECK_INT(a.pw_mem, 8192);
}

static void test_passwords(void)
{
	struct ld_auth a;
	char err[256], h1[LD_PWHASH_MAX], h2[LD_PWHASH_MAX];
	const char *pw = "correct horse battery staple";

	CHECK_INT(init(&a, "k1:" HEX_A, err), 0);
	CHECK_INT(ld_password_hash(&a, pw, strlen(pw), h1), 0);
	CHECK(strncmp(h1, "$argon2id$v=19$m=8,t=1,p=1$", 27) == 0);
	CHECK_INT(ld_password_verify(h1, pw, strlen(pw)), 0);
	CHECK_INT(ld_password_verify(h1, pw, strlen(pw) - 1), -EPERM);
	CHECK_INT(ld_password_verify(h1, "Correct horse battery staple", strlen(pw)), -EPERM);
	CHECK_INT(ld_password_verify(h1, "", 0), -EPERM);
	/* Salted: the same password hashes differently each time. */
	CHECK_INT(ld_password_hash(&a, pw, strlen(pw), h2), 0);
	CHECK(strcmp(h1, h2) != 0);
	CHECK_INT(ld_password_verify(h2, pw, strlen(pw)), 0);
	/* Passwords may hold any bytes, NUL included; length is what counts. */
	CHECK_INT(ld_password_hash(&a, "a\0b", 3, h2), 0);
	CHECK_INT(ld_password_verify(h2, "a\0b", 3), 0);
	CHECK_INT(ld_password_verify(h2, "a\0c", 3), -EPERM);
	CHECK_INT(ld_password_verify(h2, "a", 1), -EPERM);
	/* Garbage in the stored hash is a mismatch, not a crash. */
	CHECK_INT(ld_password_verify("", pw, strlen(pw)), -EPERM);
	CHECK_INT(ld_password_verify("$argon2id$v=19$m=8,t=1,p=1$xx", pw, strlen(pw)), -EPERM);
	/* The dummy hash has the configured cost and matches nothing typed. */
	CHECK(strncmp(a.dummy_hash, "$argon2id$v=19$m=8,t=1,p=1$", 27) == 0);
	CHECK_INT(ld_password_verify(a.dummy_hash, pw, strlen(pw)), -EPERM);
	CHECK_INT(ld_password_verify(a.dummy_hash, "", 0), -EPERM);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_key_file(void)
{
	struct ld_auth a, b;
	char err[1024], dir[128], path[160], content[1024], tok[LD_TOKEN_MAX];
	struct stat st;
	int64_t exp, uid = 0;
	FILE *f;
	size_t n, i;

	/* A data directory that does not exist yet is made. */
	snprintf(dir, sizeof(dir), "%s/data1", tmpdir);
	snprintf(path, sizeof(path), "%s/token.key", dir);
	CHECK_INT(ld_auth_init(&a, NULL, dir, OPS, MEM, 60, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(count_entries(dir), 1); /* no temporary file left behind */
	f = fopen(path, "r");
	n = f ? fread(content, 1, sizeof(content) - 1, f) : 0;
	if (f)
		fclose(f);
	content[n] = '\0';
	CHECK_INT(n, 1 + 6 + 1 + 64 + 1);
	CHECK(content[0] == 'k' && content[7] == ':' && content[n - 1] == '\n');
	for (i = 1; i < n - 1; i++)
		if (i != 7)
			CHECK(strchr("0123456789abcdef", content[i]) != NULL);
	CHECK_INT(a.nkeys, 1);
	CHECK_MEM(a.keys[0].kid, content, 7);

	/* The second start reuses the key: old tokens stay valid. */
	CHECK_INT(ld_token_issue(&a, 8, 1000, tok, sizeof(tok), &exp), 0);
	CHECK_INT(ld_auth_init(&b, "", dir, OPS, MEM, 60, err, sizeof(err)), 0);
	CHECK_STR(b.keys[0].kid, a.keys[0].kid);
	CHECK_MEM(b.keys[0].key, a.keys[0].key, 32);
	CHECK_INT(verify(&b, tok, strlen(tok), 1001, &uid), 0);
	CHECK_INT(uid, 8);
	CHECK_INT(count_entries(dir), 1);

	/* Its content is validated like token_keys, naming the file. */
	f = fopen(path, "w");
	fputs("k1:abc\n", f);
	fclose(f);
	CHECK_INT(ld_auth_init(&b, NULL, dir, OPS, MEM, 60, err, sizeof(err)), -EINVAL);
	snprintf(content, sizeof(content),
		 "%s: key 1 (kid 'k1'): the key must be 64 hex characters (32 bytes), not 3", path);
	CHECK_STR(err, content);
	f = fopen(path, "w");
	fclose(f);
	CHECK_INT(ld_auth_init(&b, NULL, dir, OPS, MEM, 60, err, sizeof(err)), -EINVAL);
	snprintf(content, sizeof(content), "%s: no key given", path);
	CHECK_STR(err, content);
	/* An operator may keep several keys there to rotate a single box. */
	f = fopen(path, "w");
	fputs("k2:" HEX_B ",\nk1:" HEX_A "\n", f);
	fclose(f);
	CHECK_INT(ld_auth_init(&b, NULL, dir, OPS, MEM, 60, err, sizeof(err)), 0);
	CHECK_INT(b.nkeys, 2);
	CHECK_STR(b.keys[1].kid, "k1");
	/* A directory where the file should be is refused. */
	unlink(path);
	mkdir(path, 0700);
	CHECK_INT(ld_auth_init(&b, NULL, dir, OPS, MEM, 60, err, sizeof(err)) < 0, 1);
	rmdir(path);
	CHECK_INT(ld_auth_init(&b, NULL, "", OPS, MEM, 60, err, sizeof(err)), -EINVAL);
}

/* Processes that start at once on an empty data directory end up with the
 * same key: the file is published without replacing an existing one. */
static void test_key_file_race(void)
{
	char dir[128], err[256], line[LD_AUTH_KID_MAX + 1 + 2 * LD_AUTH_KEY_LEN + 2];
	char first[sizeof(line)] = "";
	int fds[2], i, status, agree = 0;
	pid_t pids[6];
	struct ld_auth a;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/race", tmpdir);
	CHECK_INT(pipe(fds), 0);
	for (i = 0; i < 6; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char out[sizeof(line)];
			size_t k;
			int n;

			close(fds[0]);
			if (ld_auth_init(&a, NULL, dir, OPS, MEM, 60, err, sizeof(err)) != 0)
				_exit(1);
			n = snprintf(out, sizeof(out), "%s:", a.keys[0].kid);
			for (k = 0; k < 32; k++)
				n += snprintf(out + n, sizeof(out) - (size_t)n, "%02x",
					      a.keys[0].key[k]);
			out[n++] = '\n';
			/* One short write per child: atomic on a pipe. */
			_exit(write(fds[1], out, (size_t)n) == n ? 0 : 1);
		}
	}
	close(fds[1]);
	for (i = 0; i < 6; i++) {
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	f = fdopen(fds[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!first[0])
			memcpy(first, line, sizeof(line));
		agree += strcmp(first, line) == 0;
	}
	if (f)
		fclose(f);
	CHECK_INT(agree, 6);
	CHECK_INT(count_entries(dir), 1);
}

int main(void)
{
	char cmd[600];
	int rc;

	if (sodium_init() < 0 || !mkdtemp(tmpdir)) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	RUN(test_issue_verify);
	RUN(test_expiry_boundary);
	RUN(test_rotation);
	RUN(test_tamper_every_byte);
	RUN(test_malformed);
	RUN(test_spec_errors);
	RUN(test_cost_limits);
	RUN(test_passwords);
	RUN(test_key_file);
	RUN(test_key_file_race);
	rc = unit_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return rc;
}
