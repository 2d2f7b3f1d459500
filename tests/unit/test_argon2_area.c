/* The argon2 work area kept per thread (api/argon2_area.h): libsodium's
 * hashes reuse it, give the same answers, leave it zeroed; everything
 * outside a window passes through. */
/* The plain mmap, as libsodium calls it (argon2_area.c says why). */
#undef _FILE_OFFSET_BITS

#include "unit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "api/argon2_area.h"

#define MEM (1u << 20) /* argon2's memory: 1 MiB, 1024 blocks */

static const char pw[] = "correct horse battery staple";
static const unsigned char salt[crypto_pwhash_SALTBYTES] = "0123456789abcde";

static int raw_hash(unsigned char out[32], size_t mem)
{
	return crypto_pwhash(out, 32, pw, strlen(pw), salt, 1, mem, crypto_pwhash_ALG_ARGON2ID13);
}

static int window_hash(unsigned char out[32], size_t mem)
{
	int rc;

	ld_argon2_area_begin();
	rc = raw_hash(out, mem);
	ld_argon2_area_end();
	return rc;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* The installed libsodium maps its area for each hash: the second hash in
 * a window on this thread gets the first one's area back, with the answer
 * of a hash outside any window. If this fails, libsodium stopped mapping
 * (argon2_area.h): the module is then dead weight, not a fault. */
static void test_reuse_same_answer(void)
{
	struct ld_argon2_area_stats s0, s1, s2, s3;
	unsigned char plain[32], a[32], b[32];

	ld_argon2_area_stats(&s0);
	CHECK_INT(raw_hash(plain, MEM), 0);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped);
	CHECK_INT(s1.reused, s0.reused);

	CHECK_INT(window_hash(a, MEM), 0);
	ld_argon2_area_stats(&s2);
	CHECK_INT(s2.mapped + s2.reused, s1.mapped + s1.reused + 1);
	CHECK_INT(s2.kept, s1.kept + (s2.mapped - s1.mapped));

	CHECK_INT(window_hash(b, MEM), 0);
	ld_argon2_area_stats(&s3);
	CHECK_INT(s3.reused, s2.reused + 1);
	CHECK_INT(s3.mapped, s2.mapped);
	CHECK_INT(s3.kept, s2.kept);
	CHECK_MEM(a, plain, 32);
	CHECK_MEM(b, plain, 32);
}

/* What a hash left in the area is zeroed when its window ends: a mapping
 * of the same size inside the next window is the area, all zero. */
static void test_area_zeroed_after(void)
{
	struct ld_argon2_area_stats s0, s1;
	unsigned char out[32], *p;

	CHECK_INT(window_hash(out, MEM), 0);
	ld_argon2_area_stats(&s0);
	ld_argon2_area_begin();
	p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	CHECK(p != MAP_FAILED);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.reused, s0.reused + 1);
	if (p != MAP_FAILED) {
		CHECK(all_zero(p, MEM));
		memset(p, 0xa5, MEM);
		CHECK_INT(munmap(p, MEM), 0);
	}
	ld_argon2_area_end();
	ld_argon2_area_stats(&s0);
	CHECK_INT(s0.kept, s1.kept); /* still kept after its munmap */
}

/* Outside a window, and inside one for anything but a plain anonymous
 * read-write mapping, mmap and munmap are the C library's. */
static void test_pass_through(void)
{
	struct ld_argon2_area_stats s0, s1;
	unsigned char *p, *q;

	ld_argon2_area_stats(&s0);
	p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	CHECK(p != MAP_FAILED);
	ld_argon2_area_begin();
	q = mmap(NULL, MEM, PROT_READ, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	CHECK(q != MAP_FAILED);
	ld_argon2_area_end();
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped);
	CHECK_INT(s1.reused, s0.reused);
	if (p != MAP_FAILED) {
		CHECK(all_zero(p, MEM)); /* a fresh mapping, not the area */
		CHECK_INT(munmap(p, MEM), 0);
	}
	if (q != MAP_FAILED)
		CHECK_INT(munmap(q, MEM), 0);
}

/* Another memory size (a stored hash made with another --argon2-mem)
 * replaces the area: one area per thread, whatever the sizes. */
static void test_other_size_replaces(void)
{
	struct ld_argon2_area_stats s0, s1;
	unsigned char a[32], b[32];

	CHECK_INT(window_hash(a, MEM), 0);
	ld_argon2_area_stats(&s0);
	CHECK_INT(window_hash(b, 2 * MEM), 0);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped + 1);
	CHECK_INT(s1.kept, s0.kept);
	CHECK(memcmp(a, b, 32) != 0);
	CHECK_INT(window_hash(a, MEM), 0); /* and back */
}

static void *hash_thread(void *arg)
{
	unsigned char out[32];

	*(int *)arg = window_hash(out, MEM);
	return NULL;
}

/* A thread that hashed keeps an area until it exits. */
static void test_thread_exit_unmaps(void)
{
	struct ld_argon2_area_stats s0, s1;
	pthread_t t;
	int rc = -1;

	ld_argon2_area_stats(&s0);
	CHECK_INT(pthread_create(&t, NULL, hash_thread, &rc), 0);
	CHECK_INT(pthread_join(t, NULL), 0);
	CHECK_INT(rc, 0);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped + 1);
	CHECK_INT(s1.kept, s0.kept);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_reuse_same_answer);
	RUN(test_area_zeroed_after);
	RUN(test_pass_through);
	RUN(test_other_size_replaces);
	RUN(test_thread_exit_unmaps);
	return unit_finish();
}
