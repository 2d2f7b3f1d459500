/*
 * procfs.h - the host's side of `ladder bench --profile`: what /proc (and the
 * CPU cgroup) says about the machine, the target process and the generator
 * itself, read into fixed-size snapshots that two of which are diffed.
 *
 * Every parser takes the file's text, so the unit tests feed captured
 * samples; ld_procfs_snap reads the files. Counters are cumulative (jiffies,
 * switches, milliseconds of disk busy time) and keep the kernel's units; the
 * caller diffs two snapshots and divides by the wall time between them.
 * Missing files (a kernel without diskstats, no CPU cgroup) leave their
 * fields zero and clear the matching have_* flag: a profile on a container
 * with half of /proc is thinner, not wrong.
 *
 * Bounded: at most LD_PROCFS_CPUS cores, LD_PROCFS_TASKS threads per process,
 * LD_PROCFS_DISKS disks; the rest is ignored. Threading: no shared state.
 */
#ifndef LD_BENCH_PROCFS_H
#define LD_BENCH_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LD_PROCFS_CPUS	64
#define LD_PROCFS_TASKS 128
#define LD_PROCFS_DISKS 16

/* /proc/stat: per-core jiffies. */
struct ld_procfs_cpu {
	int ncpu;
	uint64_t busy[LD_PROCFS_CPUS];	/* user+nice+system+irq+softirq+steal */
	uint64_t total[LD_PROCFS_CPUS]; /* busy + idle + iowait */
	uint64_t irq[LD_PROCFS_CPUS];	/* irq + softirq (part of busy) */
	uint64_t ctxt;			/* context switches, whole host */
	int64_t procs_running;		/* run queue now (a level, not a counter) */
};

/* One thread from /proc/PID/task/TID/stat. */
struct ld_procfs_task {
	int tid;
	char comm[16];
	uint64_t ticks; /* utime + stime, clock ticks */
	int processor;	/* the core it last ran on */
};

/* /proc/PID/status. */
struct ld_procfs_status {
	uint64_t vol_ctxt, nonvol_ctxt;
	int64_t rss_kb;
	uint64_t cpus_allowed; /* affinity (Cpus_allowed_list), cores 0..63; 0: unknown */
};

/* The CPU cgroup of a process (v1 "cpu" hierarchy or v2 unified). */
struct ld_procfs_cgroup {
	bool have;
	double quota_cores;    /* 0: no quota */
	uint64_t nr_periods;   /* enforcement periods so far */
	uint64_t nr_throttled; /* periods in which it was throttled */
	uint64_t throttled_ns; /* time spent throttled */
	char path[256];	       /* the cgroup's path inside its hierarchy */
};

struct ld_procfs_disk {
	char name[32];
	uint64_t io_ticks_ms; /* time with I/O in flight */
	uint64_t writes;      /* writes completed */
};

/* A process: its threads, status and CPU cgroup. */
struct ld_procfs_proc {
	pid_t pid;
	uint64_t ticks; /* utime + stime of the whole process, ended threads included */
	int ntasks;
	struct ld_procfs_task tasks[LD_PROCFS_TASKS];
	struct ld_procfs_status st; /* switches summed over its threads */
	struct ld_procfs_cgroup cg;
};

/* What one sample of the host holds. */
struct ld_procfs_snap {
	uint64_t mono_ns; /* CLOCK_MONOTONIC when taken */
	struct ld_procfs_cpu cpu;
	struct ld_procfs_proc target, self;
	int ndisks;
	struct ld_procfs_disk disks[LD_PROCFS_DISKS];
	int64_t mem_total_kb, mem_avail_kb;
	int64_t tcp_inuse, tcp_tw, sockets_used;
	double loadavg1;
};

/* The parsers: 0, or -EINVAL when the text is not what the file holds. */
int ld_procfs_parse_stat(const char *text, struct ld_procfs_cpu *c);
/* ld_procfs_parse_task_stat reads one /proc/.../stat line (comm may hold
 * spaces and parentheses: it runs to the last ')'). */
int ld_procfs_parse_task_stat(const char *text, struct ld_procfs_task *t);
int ld_procfs_parse_status(const char *text, struct ld_procfs_status *s);
/* ld_procfs_parse_cpu_list reads "0-3,8,10-11" into a mask of cores 0..63
 * (higher ones ignored). Returns 0 or -EINVAL. */
int ld_procfs_parse_cpu_list(const char *text, uint64_t *mask);
/* ld_procfs_parse_diskstats keeps whole disks only (no partitions, loop, ram
 * or device-mapper devices; a partition is a name whose disk is also listed
 * as a prefix), at most max. Returns the count kept, or -EINVAL. */
int ld_procfs_parse_diskstats(const char *text, struct ld_procfs_disk *d, int max);
int ld_procfs_parse_meminfo(const char *text, int64_t *total_kb, int64_t *avail_kb);
int ld_procfs_parse_sockstat(const char *text, int64_t *sockets, int64_t *inuse, int64_t *tw);
/* ld_procfs_parse_cgroup_path finds the CPU controller's path in
 * /proc/PID/cgroup: the v1 line naming "cpu" (alone or with cpuacct), else
 * the v2 "0::" line (*v2 set). -ENOENT when neither is there. */
int ld_procfs_parse_cgroup_path(const char *text, char *path, size_t n, bool *v2);
/* ld_procfs_parse_cpu_stat reads a cgroup's cpu.stat (v1: throttled_time
 * in ns; v2: throttled_usec). */
int ld_procfs_parse_cpu_stat(const char *text, struct ld_procfs_cgroup *cg);

/* ld_procfs_read_proc fills p for pid (threads, status, CPU cgroup).
 * Returns 0 or -errno when /proc/PID is gone. */
int ld_procfs_read_proc(pid_t pid, struct ld_procfs_proc *p);

/* ld_procfs_snap fills s for the target pid and this process. Returns 0,
 * or the error of reading the target (a failed host-wide file only clears
 * its fields). */
int ld_procfs_snap(pid_t target, struct ld_procfs_snap *s);

/* ld_procfs_task_find returns the thread tid in p, or NULL. */
const struct ld_procfs_task *ld_procfs_task_find(const struct ld_procfs_proc *p, int tid);

#endif
