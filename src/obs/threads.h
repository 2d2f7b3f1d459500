/*
 * threads.h - names for the process's threads and their CPU time, read from
 * the kernel's own per-thread counters.
 *
 * A thread that matters (a loop, the store's writer) registers itself under a
 * name; every other thread of the process (libuv's thread pool, which hashes
 * passwords) is reported as "pool". CPU time comes from
 * /proc/self/task/TID/schedstat (nanoseconds of run time, as the scheduler
 * accounts it), or from utime + stime in .../stat (clock ticks) where
 * schedstat is missing. Reading procfs never touches a disk.
 */
#ifndef LD_THREADS_H
#define LD_THREADS_H

#include <stdint.h>

#define LD_THREADS_MAX	   128
#define LD_THREAD_NAME_MAX 24

/* ld_thread_register names the calling thread (name is copied, cut to
 * LD_THREAD_NAME_MAX - 1 bytes); registering again renames it. Any thread. */
void ld_thread_register(const char *name);

/* ld_thread_self is the kernel's id of the calling thread. */
int ld_thread_self(void);

struct ld_thread_cpu {
	int tid;
	char name[LD_THREAD_NAME_MAX];
	uint64_t cpu_ns;
};

/* ld_threads_read fills up to max entries, one per live thread of the process
 * (registered name, "main" for the process's first thread, else "pool"), and
 * returns how many; 0 when /proc cannot be read. */
unsigned ld_threads_read(struct ld_thread_cpu *out, unsigned max);

/* ld_thread_cpu_ns is one thread's CPU time, 0 when it is gone. */
uint64_t ld_thread_cpu_ns(int tid);

#endif
