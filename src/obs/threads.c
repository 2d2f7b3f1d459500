/*
 * threads.c - the thread registry and per-thread CPU time (see threads.h).
 */
#include "obs/threads.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

static struct {
	uv_once_t once;
	uv_mutex_t mu;
	unsigned n;
	int tid[LD_THREADS_MAX];
	char name[LD_THREADS_MAX][LD_THREAD_NAME_MAX];
} reg = {.once = UV_ONCE_INIT};

static void reg_init(void)
{
	uv_mutex_init(&reg.mu);
}

int ld_thread_self(void)
{
	return (int)syscall(SYS_gettid);
}

void ld_thread_register(const char *name)
{
	int tid = ld_thread_self();
	unsigned i;

	uv_once(&reg.once, reg_init);
	uv_mutex_lock(&reg.mu);
	for (i = 0; i < reg.n && reg.tid[i] != tid; i++)
		;
	if (i == reg.n && reg.n < LD_THREADS_MAX)
		reg.tid[reg.n++] = tid;
	if (i < reg.n)
		snprintf(reg.name[i], sizeof(reg.name[i]), "%s", name);
	uv_mutex_unlock(&reg.mu);
}

/* read_small reads a procfs file into buf (NUL-terminated); bytes or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

uint64_t ld_thread_cpu_ns(int tid)
{
	char path[64], buf[512], *p;
	unsigned long long v = 0, ut = 0, st = 0;
	long tick;

	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	if (read_small(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%llu", &v) == 1)
		return v;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	/* The command name may hold spaces and parentheses: fields count
	 * from the last ')'. utime and stime are fields 14 and 15. */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	tick = sysconf(_SC_CLK_TCK);
	return (ut + st) * (1000000000ull / (unsigned long long)(tick > 0 ? tick : 100));
}

unsigned ld_threads_read(struct ld_thread_cpu *out, unsigned max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int pid = (int)getpid();
	unsigned n = 0, i;

	if (!d)
		return 0;
	uv_once(&reg.once, reg_init);
	while (n < max && (e = readdir(d)) != NULL) {
		int tid = atoi(e->d_name);

		if (tid <= 0)
			continue;
		out[n].tid = tid;
		snprintf(out[n].name, sizeof(out[n].name), "%s", tid == pid ? "main" : "pool");
		uv_mutex_lock(&reg.mu);
		for (i = 0; i < reg.n; i++)
			if (reg.tid[i] == tid)
				snprintf(out[n].name, sizeof(out[n].name), "%s", reg.name[i]);
		uv_mutex_unlock(&reg.mu);
		out[n].cpu_ns = ld_thread_cpu_ns(tid);
		n++;
	}
	closedir(d);
	return n;
}
