/*
 * argon2_area.c - one argon2 work area per hashing thread (argon2_area.h).
 */
/* With _FILE_OFFSET_BITS=64 (the build's pkg-config flags) <sys/mman.h>
 * renames mmap to mmap64, and libsodium calls mmap: the plain names here
 * (off_t is 64 bits either way on a 64-bit system). */
#undef _FILE_OFFSET_BITS

#include "api/argon2_area.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "base/buf.h"

#define RLX memory_order_relaxed

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);

static mmap_fn real_mmap;
static munmap_fn real_munmap;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
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

/* resolve finds the C library's definitions (the next ones after ours:
 * under ASan, its interceptors, which go on to the C library's). */
static void resolve(void)
{
	real_mmap = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	real_munmap = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	have_exit_key = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* forget_area unmaps the thread's kept area unless libsodium holds it. */
static void forget_area(void)
{
	if (area.base && !area.out) {
		real_munmap(area.base, area.len);
		atomic_fetch_sub_explicit(&n_kept, 1, RLX);
	}
	area.base = NULL;
	area.len = 0;
	area.out = area.dirty = false;
}

/* plain is the mapping argon2 asks for: anywhere, anonymous, private,
 * read-write, no file (Debian's libsodium adds MAP_POPULATE: the kernel
 * allocates and zeroes every page up front). */
static bool plain(void *addr, int prot, int flags, int fd)
{
	return !addr && fd == -1 && prot == (PROT_READ | PROT_WRITE) &&
	       (flags & ~(MAP_NORESERVE | MAP_POPULATE)) == (MAP_ANONYMOUS | MAP_PRIVATE);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;

	pthread_once(&resolve_once, resolve);
	if (!area.on || !plain(addr, prot, flags, fd) || len == 0)
		return real_mmap(addr, len, prot, flags, fd, off);
	if (area.base && !area.out && area.len == len) {
		area.out = true;
		atomic_fetch_add_explicit(&n_reused, 1, RLX);
		return area.base;
	}
	p = real_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED || (area.base && area.out))
		return p;
	/* The hash parameters changed (a stored hash made with another
	 * --argon2-mem): the newest size is kept. */
	forget_area();
	area.base = p;
	area.len = len;
	area.out = true;
	atomic_fetch_add_explicit(&n_mapped, 1, RLX);
	atomic_fetch_add_explicit(&n_kept, 1, RLX);
	if (have_exit_key)
		pthread_setspecific(exit_key, &area);
	return p;
}

int munmap(void *addr, size_t len)
{
	pthread_once(&resolve_once, resolve);
	if (area.base && addr == area.base && area.out) {
		if (len == area.len) {
			area.out = false;
			area.dirty = true;
			return 0;
		}
		/* Not the whole area: not argon2's; let it go. */
		area.base = NULL;
		area.out = false;
		atomic_fetch_sub_explicit(&n_kept, 1, RLX);
	}
	return real_munmap(addr, len);
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
