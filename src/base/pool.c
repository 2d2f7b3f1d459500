/*
 * pool.c - a pool worker's priority (pool.h).
 */
#include "base/pool.h"

#include <sys/resource.h>

static _Thread_local int entered;

void ld_pool_worker_enter(void)
{
	if (entered)
		return;
	entered = 1;
	/* On Linux PRIO_PROCESS with who = 0 sets the calling thread's nice
	 * value, not the whole process's (threads have their own). */
	(void)setpriority(PRIO_PROCESS, 0, LD_POOL_NICE);
}
