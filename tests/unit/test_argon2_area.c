/* The argon2 work area kept per thread (api/argon2_area.h): libsodium's
 * hashes reuse it, give the same answers, leave it zeroed; everything
 * outside a window passes through. */
/* The plain mmap, as libsodium calls it (argon2_area.c says why). */
#undef _FILE_OFFSET_BITS

#include "unit.h"

#include <errno.h>
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

/* area_now returns the calling thread's kept area of MEM bytes (a mapping
 * inside a window gets it back), after a hash has made one. */
static void *area_now(void)
{
	void *p;

	ld_argon2_area_begin();
	p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (p != MAP_FAILED)
		munmap(p, MEM);
	ld_argon2_area_end();
	return p;
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
 * of a hash outside any window. This fails on purpose when a libsodium
 * stops mapping its area (argon2_area.h): hashing still works then, but the
 * module is dead weight and should go. */
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
 * read-write mapping, mmap and munmap are the C library's: fresh mappings,
 * never the area. An unmap of a part of the area, inside a window or not,
 * makes it no longer the area. */
static void test_pass_through(void)
{
	struct ld_argon2_area_stats s0, s1;
	unsigned char out[32], *p, *q, *kept;

	CHECK_INT(window_hash(out, MEM), 0);
	kept = area_now();
	CHECK(kept != MAP_FAILED);
	ld_argon2_area_stats(&s0);
	p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	CHECK(p != MAP_FAILED && p != kept);
	ld_argon2_area_begin();
	q = mmap(NULL, MEM, PROT_READ, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	CHECK(q != MAP_FAILED && q != kept);
	ld_argon2_area_end();
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped);
	CHECK_INT(s1.reused, s0.reused);
	if (p != MAP_FAILED)
		CHECK_INT(munmap(p, MEM), 0);
	if (q != MAP_FAILED)
		CHECK_INT(munmap(q, MEM), 0);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.kept, s0.kept); /* unmapping those left the area alone */

	/* Its upper half unmapped: forgotten, the lower half is the caller's. */
	CHECK_INT(munmap(kept + MEM / 2, MEM / 2), 0);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.kept, s0.kept - 1);
	CHECK_INT(munmap(kept, MEM / 2), 0);
	CHECK_INT(window_hash(out, MEM), 0); /* a new one */
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped + 1);
	CHECK_INT(s1.kept, s0.kept);
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

struct thread_arg {
	int rc;
	void *area;
};

static void *hash_thread(void *arg)
{
	struct thread_arg *t = arg;
	unsigned char out[32];

	t->rc = window_hash(out, MEM);
	t->area = area_now();
	return NULL;
}

/* A thread that hashed keeps an area until it exits, and then it is
 * unmapped (msync on an unmapped range fails with ENOMEM). */
static void test_thread_exit_unmaps(void)
{
	struct ld_argon2_area_stats s0, s1;
	struct thread_arg t = {.rc = -1, .area = MAP_FAILED};
	pthread_t th;

	ld_argon2_area_stats(&s0);
	CHECK_INT(pthread_create(&th, NULL, hash_thread, &t), 0);
	CHECK_INT(pthread_join(th, NULL), 0);
	CHECK_INT(t.rc, 0);
	CHECK(t.area != MAP_FAILED);
	ld_argon2_area_stats(&s1);
	CHECK_INT(s1.mapped, s0.mapped + 1);
	CHECK_INT(s1.kept, s0.kept);
	if (t.area != MAP_FAILED) {
		errno = 0;
		CHECK_INT(msync(t.area, MEM, MS_ASYNC), -1);
		CHECK_INT(errno, ENOMEM);
	}
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
