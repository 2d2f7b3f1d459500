/*
 * pool.h - what a thread pool worker does before its work.
 *
 * The event loops and the thread pool share the cores. A loop's work is
 * short (parse, route, answer a cache hit, shed a request with a 503); a
 * pool job is long and CPU-bound (an argon2id hash takes milliseconds). At
 * the same priority the scheduler shares a core evenly between a loop and
 * every busy pool thread, so in an overload a loop would get a fifth of a
 * core behind four hashing threads, and every request, admitted or shed,
 * would wait for it: the queueing the admission control keeps out of the
 * server would come back in the run queue. A pool thread therefore runs at a
 * lower priority (nice LD_POOL_NICE) than the loops: a loop that has work
 * takes the core at once, and the pool still gets all of it that the loops
 * leave (a nice level weighs shares; it never starves a thread).
 */
#ifndef LD_BASE_POOL_H
#define LD_BASE_POOL_H

#define LD_POOL_NICE 10

/* ld_pool_worker_enter lowers the calling thread's priority to
 * LD_POOL_NICE, once per thread (later calls cost a thread-local test). Call
 * it first in every uv_queue_work work callback. A failure (a sandbox that
 * forbids setpriority) leaves the priority as it was: the pool works, only
 * without the loops' precedence. */
void ld_pool_worker_enter(void);

#endif
