/*
 * procfs.c - /proc and CPU cgroup readers for `ladder bench --profile`.
 */
#include "bench/procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_MAX (256 * 1024)

/* The lines parsed here are short; a fixed buffer per call keeps the
 * sampler allocation-free. */
static int slurp(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	size_t used = 0;

	if (fd < 0)
		return -errno;
	while (used + 1 < n) {
		ssize_t r = read(fd, buf + used, n - 1 - used);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		used += (size_t)r;
	}
	buf[used] = '\0';
out:
	close(fd);
	return rc;
}

static const char *next_line(const char *p)
{
	const char *nl = strchr(p, '\n');
	return nl ? nl + 1 : NULL;
}

int ld_procfs_parse_stat(const char *text, struct ld_procfs_cpu *c)
{
	bool any = false;

	memset(c, 0, sizeof(*c));
	for (const char *p = text; p && *p; p = next_line(p)) {
		unsigned long long v[10] = {0};
		int cpu, k;

		if (!strncmp(p, "cpu", 3) && p[3] >= '0' && p[3] <= '9') {
			k = sscanf(p + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
				   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
			if (k < 5)
				return -EINVAL;
			if (cpu < 0 || cpu >= LD_PROCFS_CPUS)
				continue;
			/* user nice system idle iowait irq softirq steal */
			c->busy[cpu] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
			c->total[cpu] = c->busy[cpu] + v[3] + v[4];
			c->irq[cpu] = v[5] + v[6];
			if (cpu + 1 > c->ncpu)
				c->ncpu = cpu + 1;
			any = true;
		} else if (!strncmp(p, "ctxt ", 5)) {
			c->ctxt = strtoull(p + 5, NULL, 10);
		} else if (!strncmp(p, "procs_running ", 14)) {
			c->procs_running = strtoll(p + 14, NULL, 10);
		}
	}
	return any ? 0 : -EINVAL;
}

int ld_procfs_parse_task_stat(const char *text, struct ld_procfs_task *t)
{
	const char *open = strchr(text, '('), *close = strrchr(text, ')');
	unsigned long long utime, stime;
	const char *p;
	size_t n;
	int field;

	memset(t, 0, sizeof(*t));
	if (!open || !close || close < open || sscanf(text, "%d", &t->tid) != 1)
		return -EINVAL;
	n = (size_t)(close - open - 1);
	if (n >= sizeof(t->comm))
		n = sizeof(t->comm) - 1;
	memcpy(t->comm, open + 1, n);
	t->comm[n] = '\0';
	/* After ')': field 3 (state) onwards; utime is 14, stime 15, processor 39. */
	p = close + 1;
	field = 2;
	utime = stime = 0;
	t->processor = -1;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			break;
		field++;
		if (field == 14)
			utime = strtoull(p, NULL, 10);
		else if (field == 15)
			stime = strtoull(p, NULL, 10);
		else if (field == 39)
			t->processor = (int)strtol(p, NULL, 10);
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	if (field < 15)
		return -EINVAL;
	t->ticks = utime + stime;
	return 0;
}

int ld_procfs_parse_status(const char *text, struct ld_procfs_status *s)
{
	int seen = 0;

	memset(s, 0, sizeof(*s));
	for (const char *p = text; p && *p; p = next_line(p)) {
		if (!strncmp(p, "voluntary_ctxt_switches:", 24)) {
			s->vol_ctxt = strtoull(p + 24, NULL, 10);
			seen++;
		} else if (!strncmp(p, "nonvoluntary_ctxt_switches:", 27)) {
			s->nonvol_ctxt = strtoull(p + 27, NULL, 10);
			seen++;
		} else if (!strncmp(p, "VmRSS:", 6)) {
			s->rss_kb = strtoll(p + 6, NULL, 10);
		} else if (!strncmp(p, "Cpus_allowed_list:", 18)) {
			if (ld_procfs_parse_cpu_list(p + 18, &s->cpus_allowed))
				s->cpus_allowed = 0;
		}
	}
	return seen == 2 ? 0 : -EINVAL;
}

int ld_procfs_parse_cpu_list(const char *text, uint64_t *mask)
{
	const char *p = text;

	*mask = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	for (;;) {
		char *end;
		long a = strtol(p, &end, 10), b;
		if (end == p || a < 0)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				return -EINVAL;
			p = end;
		}
		for (long c = a; c <= b && c < 64; c++)
			*mask |= 1ULL << c;
		if (*p != ',')
			break;
		p++;
	}
	return *p == '\0' || *p == '\n' ? 0 : -EINVAL;
}

static bool virtual_disk(const char *name)
{
	return !strncmp(name, "loop", 4) || !strncmp(name, "ram", 3) || !strncmp(name, "dm-", 3) ||
	       !strncmp(name, "zram", 4) || !strncmp(name, "sr", 2) || !strncmp(name, "md", 2);
}

int ld_procfs_parse_diskstats(const char *text, struct ld_procfs_disk *d, int max)
{
	struct ld_procfs_disk all[LD_PROCFS_DISKS * 8];
	int n = 0, kept = 0, lines = 0;

	for (const char *p = text; p && *p; p = next_line(p)) {
		unsigned long long v[11];
		unsigned major, minor;
		char name[32];

		if (sscanf(p, "%u %u %31s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &major, &minor, name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7], &v[8], &v[9], &v[10]) != 14)
			continue; /* an old-style short partition line */
		lines++;
		if (virtual_disk(name) || n == (int)(sizeof(all) / sizeof(all[0])))
			continue;
		snprintf(all[n].name, sizeof(all[n].name), "%s", name);
		all[n].writes = v[4];	   /* field 8: writes completed */
		all[n].io_ticks_ms = v[9]; /* field 13: io_ticks */
		n++;
	}
	for (int i = 0; i < n && kept < max; i++) {
		bool part = false;
		for (int j = 0; j < n && !part; j++) {
			size_t l = strlen(all[j].name);
			/* sda1 of sda, nvme0n1p1 of nvme0n1 */
			part = j != i && !strncmp(all[i].name, all[j].name, l) &&
			       strlen(all[i].name) > l;
		}
		if (!part)
			d[kept++] = all[i];
	}
	return lines || !*text ? kept : -EINVAL;
}

int ld_procfs_parse_meminfo(const char *text, int64_t *total_kb, int64_t *avail_kb)
{
	int seen = 0;

	*total_kb = *avail_kb = 0;
	for (const char *p = text; p && *p; p = next_line(p)) {
		if (!strncmp(p, "MemTotal:", 9)) {
			*total_kb = strtoll(p + 9, NULL, 10);
			seen++;
		} else if (!strncmp(p, "MemAvailable:", 13)) {
			*avail_kb = strtoll(p + 13, NULL, 10);
			seen++;
		}
	}
	return seen == 2 ? 0 : -EINVAL;
}

int ld_procfs_parse_sockstat(const char *text, int64_t *sockets, int64_t *inuse, int64_t *tw)
{
	long long s = -1, in = -1, t = -1;

	for (const char *p = text; p && *p; p = next_line(p)) {
		if (!strncmp(p, "sockets: used ", 14))
			s = strtoll(p + 14, NULL, 10);
		else if (!strncmp(p, "TCP: ", 5)) {
			const char *a = strstr(p, " inuse "), *b = strstr(p, " tw ");
			if (a)
				in = strtoll(a + 7, NULL, 10);
			if (b)
				t = strtoll(b + 4, NULL, 10);
		}
	}
	if (s < 0 || in < 0 || t < 0)
		return -EINVAL;
	*sockets = s;
	*inuse = in;
	*tw = t;
	return 0;
}

int ld_procfs_parse_cgroup_path(const char *text, char *path, size_t n, bool *v2)
{
	const char *unified = NULL;

	for (const char *p = text; p && *p; p = next_line(p)) {
		const char *c1 = strchr(p, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		const char *end = strchr(p, '\n');
		size_t clen, plen;
		bool cpu = false;

		if (!c1 || !c2 || (end && c2 > end))
			continue;
		clen = (size_t)(c2 - c1 - 1);
		plen = end ? (size_t)(end - c2 - 1) : strlen(c2 + 1);
		if (clen == 0) {
			unified = p;
			continue;
		}
		/* the controller list, e.g. "cpu" or "cpu,cpuacct" */
		for (const char *q = c1 + 1; q < c2;) {
			const char *comma = memchr(q, ',', (size_t)(c2 - q));
			size_t l = comma ? (size_t)(comma - q) : (size_t)(c2 - q);
			if (l == 3 && !strncmp(q, "cpu", 3))
				cpu = true;
			q += l + 1;
		}
		if (cpu) {
			snprintf(path, n, "%.*s", (int)plen, c2 + 1);
			*v2 = false;
			return 0;
		}
	}
	if (unified) {
		const char *c2 = strchr(unified, ':') + 1, *end = strchr(c2 + 1, '\n');
		size_t plen = end ? (size_t)(end - c2 - 1) : strlen(c2 + 1);
		snprintf(path, n, "%.*s", (int)plen, c2 + 1);
		*v2 = true;
		return 0;
	}
	return -ENOENT;
}

int ld_procfs_parse_cpu_stat(const char *text, struct ld_procfs_cgroup *cg)
{
	int seen = 0;

	for (const char *p = text; p && *p; p = next_line(p)) {
		if (!strncmp(p, "nr_periods ", 11)) {
			cg->nr_periods = strtoull(p + 11, NULL, 10);
			seen++;
		} else if (!strncmp(p, "nr_throttled ", 13)) {
			cg->nr_throttled = strtoull(p + 13, NULL, 10);
			seen++;
		} else if (!strncmp(p, "throttled_time ", 15)) {
			cg->throttled_ns = strtoull(p + 15, NULL, 10);
		} else if (!strncmp(p, "throttled_usec ", 15)) {
			cg->throttled_ns = strtoull(p + 15, NULL, 10) * 1000;
		}
	}
	return seen == 2 ? 0 : -EINVAL;
}

static void read_cgroup(pid_t pid, struct ld_procfs_cgroup *cg)
{
	static const char *const v1_roots[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
	char path[384], buf[1024], rel[256];
	bool v2 = false;

	memset(cg, 0, sizeof(*cg));
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (slurp(path, buf, sizeof(buf)) ||
	    ld_procfs_parse_cgroup_path(buf, rel, sizeof(rel), &v2))
		return;
	snprintf(cg->path, sizeof(cg->path), "%s", rel);
	if (v2) {
		long long quota, period;
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", rel);
		if (slurp(path, buf, sizeof(buf)))
			return;
		cg->have = true;
		if (sscanf(buf, "%lld %lld", &quota, &period) == 2 && period > 0)
			cg->quota_cores = (double)quota / (double)period;
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.stat", rel);
		if (!slurp(path, buf, sizeof(buf)))
			ld_procfs_parse_cpu_stat(buf, cg);
		return;
	}
	for (size_t i = 0; i < sizeof(v1_roots) / sizeof(v1_roots[0]); i++) {
		long long quota, period;
		snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", v1_roots[i], rel);
		if (slurp(path, buf, sizeof(buf)) || sscanf(buf, "%lld", &quota) != 1)
			continue;
		snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", v1_roots[i], rel);
		if (slurp(path, buf, sizeof(buf)) || sscanf(buf, "%lld", &period) != 1)
			continue;
		cg->have = true;
		if (quota > 0 && period > 0)
			cg->quota_cores = (double)quota / (double)period;
		snprintf(path, sizeof(path), "%s%s/cpu.stat", v1_roots[i], rel);
		if (!slurp(path, buf, sizeof(buf)))
			ld_procfs_parse_cpu_stat(buf, cg);
		return;
	}
}

int ld_procfs_read_proc(pid_t pid, struct ld_procfs_proc *p)
{
	char path[128], buf[4096];
	struct dirent *de;
	DIR *d;
	int rc;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	rc = slurp(path, buf, sizeof(buf));
	if (rc)
		return rc;
	{
		struct ld_procfs_task whole;
		if (ld_procfs_parse_task_stat(buf, &whole))
			return -EINVAL;
		p->ticks = whole.ticks;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	rc = slurp(path, buf, sizeof(buf));
	if (rc)
		return rc;
	if (ld_procfs_parse_status(buf, &p->st))
		return -EINVAL;
	/* The leader's switches are its own; the threads' are summed below
	 * (its affinity is the process's, as taskset sets it). */
	p->st.vol_ctxt = p->st.nonvol_ctxt = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && p->ntasks < LD_PROCFS_TASKS) {
		char tp[320];
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(tp, sizeof(tp), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
		/* A thread that ended between readdir and open is skipped. */
		if (slurp(tp, buf, sizeof(buf)) ||
		    ld_procfs_parse_task_stat(buf, &p->tasks[p->ntasks]))
			continue;
		p->ntasks++;
		snprintf(tp, sizeof(tp), "/proc/%d/task/%s/status", (int)pid, de->d_name);
		if (!slurp(tp, buf, sizeof(buf))) {
			struct ld_procfs_status ts;
			if (!ld_procfs_parse_status(buf, &ts)) {
				p->st.vol_ctxt += ts.vol_ctxt;
				p->st.nonvol_ctxt += ts.nonvol_ctxt;
			}
		}
	}
	closedir(d);
	read_cgroup(pid, &p->cg);
	return 0;
}

int ld_procfs_snap(pid_t target, struct ld_procfs_snap *s)
{
	static _Thread_local char buf[FILE_MAX];
	struct timespec ts;
	int rc;

	memset(s, 0, sizeof(*s));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->mono_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (!slurp("/proc/stat", buf, sizeof(buf)))
		ld_procfs_parse_stat(buf, &s->cpu);
	if (!slurp("/proc/diskstats", buf, sizeof(buf))) {
		int n = ld_procfs_parse_diskstats(buf, s->disks, LD_PROCFS_DISKS);
		s->ndisks = n > 0 ? n : 0;
	}
	if (!slurp("/proc/meminfo", buf, sizeof(buf)))
		ld_procfs_parse_meminfo(buf, &s->mem_total_kb, &s->mem_avail_kb);
	if (!slurp("/proc/net/sockstat", buf, sizeof(buf)))
		ld_procfs_parse_sockstat(buf, &s->sockets_used, &s->tcp_inuse, &s->tcp_tw);
	if (!slurp("/proc/loadavg", buf, sizeof(buf)))
		s->loadavg1 = strtod(buf, NULL);
	rc = ld_procfs_read_proc(getpid(), &s->self);
	if (rc)
		return rc;
	return target > 0 ? ld_procfs_read_proc(target, &s->target) : 0;
}

const struct ld_procfs_task *ld_procfs_task_find(const struct ld_procfs_proc *p, int tid)
{
	for (int i = 0; i < p->ntasks; i++)
		if (p->tasks[i].tid == tid)
			return &p->tasks[i];
	return NULL;
}
