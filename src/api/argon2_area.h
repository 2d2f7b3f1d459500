/*
 * argon2_area.h - one argon2 work area per hashing thread, kept between
 * hashes instead of mapped and unmapped for each.
 *
 * Why: libsodium (1.0.18, Debian 12) maps its argon2 work area for every
 * hash with MAP_POPULATE and unmaps it after, so each hash has the kernel
 * allocate and zero every page of --argon2-mem afresh, and its munmap takes
 * the process's mmap lock for writing while the other threads hash. On the
 * development machine, one core, m = 1 MiB, t = 1: 570-670 us a hash, 250
 * us with the area reused. libsodium takes no allocator, and Debian's
 * libargon2, which does, is the portable reference build (1.2 ms a hash on
 * the same core), so the area is kept here, underneath libsodium.
 *
 * How: this module defines mmap, mmap64 and munmap for the whole process,
 * every library included (the dynamic linker resolves a library's calls to
 * the executable's definitions). A call outside a hashing window, or one
 * that is not a plain anonymous read-write private mapping, goes to the C
 * library's as is. Inside a window (between ld_argon2_area_begin and
 * ld_argon2_area_end on one thread) such a mapping is kept as the thread's
 * area (one: a mapping of another size replaces it); the next window's
 * mapping of the same size gets it back, and libsodium's munmap of it keeps
 * it. ld_argon2_area_end zeroes what the hash left in it: munmap would have
 * given the pages back to the kernel, libsodium does not wipe them, and the
 * first argon2 blocks let a guess at the password be checked with two
 * BLAKE2b hashes instead of the memory-hard work. A thread that exits
 * unmaps its area.
 *
 * Cost: each thread that hashes keeps one area mapped, the size of the last
 * hash's memory (the libuv pool's threads: UV_THREADPOOL_SIZE, 4 by default,
 * x --argon2-mem, or x the memory of older stored hashes while they are
 * verified), and zeroing it after each hash (about a tenth of a hash's time
 * at 1 MiB). If a libsodium stops mapping its area (it allocated with malloc
 * instead, say), nothing here matches and hashing works as before;
 * ld_argon2_area_stats shows it (reused stays 0), and a unit test fails on
 * purpose to say so.
 */
#ifndef LD_API_ARGON2_AREA_H
#define LD_API_ARGON2_AREA_H

#include <stdint.h>

/* ld_argon2_area_begin opens the calling thread's hashing window: call it
 * right before a libsodium crypto_pwhash call, and ld_argon2_area_end right
 * after, on the same thread. Windows do not nest, and nothing but that one
 * crypto_pwhash call runs inside one (a plain mapping it made would be
 * kept and zeroed as the area). */
void ld_argon2_area_begin(void);
void ld_argon2_area_end(void);

struct ld_argon2_area_stats {
	uint64_t mapped; /* areas mapped afresh inside a window */
	uint64_t reused; /* mappings inside a window answered with a kept area */
	uint64_t kept;	 /* areas mapped now (one per thread that has hashed) */
};

/* ld_argon2_area_stats reads the process-wide counters. */
void ld_argon2_area_stats(struct ld_argon2_area_stats *out);

struct ld_buf;

/* ld_argon2_area_metrics appends them in the Prometheus text format:
 * ladder_argon2_areas_mapped_total, ladder_argon2_areas_reused_total and
 * the gauge ladder_argon2_areas. */
void ld_argon2_area_metrics(struct ld_buf *out);

#endif
