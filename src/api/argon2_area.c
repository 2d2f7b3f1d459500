/*
 * argon2_area.c - one argon2 work area per hashing thread (argon2_area.h).
 *
 * mmap and munmap here replace the C library's for the whole process: keep
 * them cheap and safe outside a window (one thread-local test, then the
 * real call), and never allocate in them.
 */
/* With _FILE_OFFSET_BITS=64 (the build's pkg-config flags) <sys/mman.h>
 * renames mmap to mmap64, and libsodium calls mmap: the plain names here
 * (off_t is 64 bits either way on a 64-bit system), and mmap64 below for a
 * library built with large-file flags. */
#undef _FILE_OFFSET_BITS

#include "api/argon2_area.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/buf.h"

#define RLX memory_order_relaxed

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);

/* The next definitions after ours (with gcc's shared ASan runtime, its
 * interceptors, which go on to the C library's; with a static one, as in
 * the clang fuzz build, the C library's). Found by a constructor, before
 * main and any thread; a call before that, or from inside dlsym, goes to
 * the kernel directly. */
static mmap_fn real_mmap;
static munmap_fn real_munmap;
static pthread_key_t exit_key;
static bool have_exit_key;
static _Atomic uint64_t n_mapped, n_reused, n_kept;

/* The thread's area: base/len while kept; out while libsodium holds it
 * (between its mmap and its munmap); dirty once a hash has used it. */
static _Thread_local struct {
	void *base;
	size_t len;
	bool out, dirty, on;
} area;

static void forget_area(void);

static void on_thread_exit(void *unused)
{
	(void)unused;
	forget_area();
}

__attribute__((constructor)) static void resolve(void)
{
	mmap_fn m = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	munmap_fn u = (munmap_fn)dlsym(RTLD_NEXT, "munmap");

	if (!m || !u) {
		fprintf(stderr, "ladder: cannot find the C library's mmap and munmap (%s)\n",
			dlerror());
		abort();
	}
	real_mmap = m;
	real_munmap = u;
	have_exit_key = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (real_mmap)
		return real_mmap(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int sys_munmap(void *addr, size_t len)
{
	if (real_munmap)
		return real_munmap(addr, len);
	return (int)syscall(SYS_munmap, addr, len);
}

/* forget_area stops keeping the thread's area, and unmaps it unless
 * libsodium holds it (its munmap then goes to the C library). */
static void forget_area(void)
{
	if (area.base) {
		if (!area.out)
			sys_munmap(area.base, area.len);
		atomic_fetch_sub_explicit(&n_kept, 1, RLX);
	}
	area.base = NULL;
	area.len = 0;
	area.out = area.dirty = false;
}

/* plain is the mapping argon2 asks for: anywhere, anonymous, private,
 * read-write, no file (libsodium adds MAP_POPULATE: the kernel allocates
 * and zeroes every page up front). */
static bool plain(void *addr, int prot, int flags, int fd)
{
	return !addr && fd == -1 && prot == (PROT_READ | PROT_WRITE) &&
	       (flags & ~(MAP_NORESERVE | MAP_POPULATE)) == (MAP_ANONYMOUS | MAP_PRIVATE);
}

/* Early returns in mmap and munmap: each case hands the call on as it is,
 * and a wrapper that every library goes through reads best flat. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	if (!area.on || !plain(addr, prot, flags, fd) || len == 0)
		return sys_mmap(addr, len, prot, flags, fd, off);
	if (area.base && !area.out && area.len == len) {
		area.out = true;
		atomic_fetch_add_explicit(&n_reused, 1, RLX);
		return area.base;
	}
	if (area.base && area.out) /* a second mapping in one hash: not kept */
		return sys_mmap(addr, len, prot, flags, fd, off);
	/* None yet, or one of another size (a stored hash made with another
	 * --argon2-mem): the old one goes first, so that two are never mapped
	 * at once, and the newest size is kept. */
	forget_area();
	p = sys_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED)
		return p;
	area.base = p;
	area.len = len;
	area.out = true;
	atomic_fetch_add_explicit(&n_mapped, 1, RLX);
	atomic_fetch_add_explicit(&n_kept, 1, RLX);
	if (have_exit_key)
		pthread_setspecific(exit_key, &area);
	return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	const char *a = addr, *b = area.base;

	if (b && addr == area.base && len == area.len && area.out) {
		area.out = false;
		area.dirty = true;
		return 0;
	}
	/* Any other unmap that touches the area (a part of it, or a range
	 * around it): not argon2's, so the area is no longer ours to keep or
	 * to zero. */
	if (b && a < b + area.len && b < a + len) {
		area.out = true; /* forget_area must not unmap it: the caller does */
		forget_area();
	}
	return sys_munmap(addr, len);
}

void ld_argon2_area_begin(void)
{
	area.on = true;
}

void ld_argon2_area_end(void)
{
	area.on = false;
	if (area.base && !area.out && area.dirty) {
		explicit_bzero(area.base, area.len);
		area.dirty = false;
	}
}

void ld_argon2_area_stats(struct ld_argon2_area_stats *out)
{
	out->mapped = atomic_load_explicit(&n_mapped, RLX);
	out->reused = atomic_load_explicit(&n_reused, RLX);
	out->kept = atomic_load_explicit(&n_kept, RLX);
}

void ld_argon2_area_metrics(struct ld_buf *out)
{
	struct ld_argon2_area_stats s;

	ld_argon2_area_stats(&s);
	ld_buf_printf(out,
		      "# HELP ladder_argon2_areas_mapped_total Argon2 work areas mapped afresh for "
		      "a password hash.\n"
		      "# TYPE ladder_argon2_areas_mapped_total counter\n"
		      "ladder_argon2_areas_mapped_total %llu\n"
		      "# HELP ladder_argon2_areas_reused_total Password hashes that reused their "
		      "thread's argon2 work area.\n"
		      "# TYPE ladder_argon2_areas_reused_total counter\n"
		      "ladder_argon2_areas_reused_total %llu\n"
		      "# HELP ladder_argon2_areas Argon2 work areas kept mapped (one per thread "
		      "that has hashed).\n"
		      "# TYPE ladder_argon2_areas gauge\n"
		      "ladder_argon2_areas %llu\n",
		      (unsigned long long)s.mapped, (unsigned long long)s.reused,
		      (unsigned long long)s.kept);
}
