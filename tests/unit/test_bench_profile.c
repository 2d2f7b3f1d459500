/*
 * test_bench_profile.c - `ladder bench --profile`: the /proc parsers on
 * captured text, the stats document parser, the step figures from two
 * samples, and the verdict rules on synthetic series of each bottleneck.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/procfs.h"
#include "bench/profile.h"
#include "bench/verdict.h"
#include "unit.h"

static const char stat_text[] = "cpu  7081 29 3414 62393 449 0 237 6 0 0\n"
				"cpu0 3349 15 1366 31976 24 0 102 2 0 0\n"
				"cpu1 3732 14 2047 30416 424 0 134 4 0 0\n"
				"intr 1234 0 0\n"
				"ctxt 987654\n"
				"btime 1700000000\n"
				"processes 12345\n"
				"procs_running 3\n"
				"procs_blocked 0\n";

static void test_parse_stat(void)
{
	struct ld_procfs_cpu c;

	CHECK_INT(ld_procfs_parse_stat(stat_text, &c), 0);
	CHECK_INT(c.ncpu, 2);
	/* user+nice+system+irq+softirq+steal */
	CHECK_INT(c.busy[0], 3349 + 15 + 1366 + 0 + 102 + 2);
	CHECK_INT(c.total[0], 3349 + 15 + 1366 + 102 + 2 + 31976 + 24);
	CHECK_INT(c.busy[1], 3732 + 14 + 2047 + 134 + 4);
	CHECK_INT(c.ctxt, 987654);
	CHECK_INT(c.procs_running, 3);
	CHECK_INT(ld_procfs_parse_stat("intr 1 2\nctxt 5\n", &c), -EINVAL);
}

static void test_parse_task_stat(void)
{
	struct ld_procfs_task t;
	/* A comm with a space and a ')' inside: the name runs to the last ')'. */
	const char *line = "4242 (loop-0 (x)) R 4200 4200 8418 0 -1 4194304 103 0 0 0 "
			   "1500 250 0 0 20 0 3 0 37063 3133440 399 18446744073709551615 1 1 "
			   "1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

	CHECK_INT(ld_procfs_parse_task_stat(line, &t), 0);
	CHECK_INT(t.tid, 4242);
	CHECK_STR(t.comm, "loop-0 (x)");
	CHECK_INT(t.ticks, 1750);
	CHECK_INT(t.processor, 1);
	CHECK_INT(ld_procfs_parse_task_stat("12 (short) R 1 2\n", &t), -EINVAL);
	CHECK_INT(ld_procfs_parse_task_stat("no parens\n", &t), -EINVAL);
}

static void test_parse_status(void)
{
	struct ld_procfs_status s;
	const char *text = "Name:\tladder\nVmRSS:\t   12345 kB\nThreads:\t5\n"
			   "voluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n";

	CHECK_INT(ld_procfs_parse_status(text, &s), 0);
	CHECK_INT(s.rss_kb, 12345);
	CHECK_INT(s.vol_ctxt, 150);
	CHECK_INT(s.nonvol_ctxt, 7);
	CHECK_INT(ld_procfs_parse_status("Name:\tx\n", &s), -EINVAL);
	CHECK_INT(ld_procfs_parse_status("Cpus_allowed_list:\t1\nvoluntary_ctxt_switches:\t1\n"
					 "nonvoluntary_ctxt_switches:\t2\n",
					 &s),
		  0);
	CHECK_INT(s.cpus_allowed, 2);
}

static void test_parse_cpu_list(void)
{
	uint64_t m;

	CHECK_INT(ld_procfs_parse_cpu_list("0-3,8,10-11\n", &m), 0);
	CHECK_INT(m, 0xd0f);
	CHECK_INT(ld_procfs_parse_cpu_list(" 1", &m), 0);
	CHECK_INT(m, 2);
	CHECK_INT(ld_procfs_parse_cpu_list("3-1", &m), -EINVAL);
	CHECK_INT(ld_procfs_parse_cpu_list("x", &m), -EINVAL);
	CHECK_INT(ld_procfs_parse_cpu_list("1,", &m), -EINVAL);
}

static void test_parse_diskstats(void)
{
	struct ld_procfs_disk d[4];
	const char *text =
	    "   7       0 loop0 5 0 10 0 0 0 0 0 0 3 3 0 0 0 0 0 0\n"
	    "   8       0 sda 1000 10 20000 500 4000 300 80000 9000 0 7000 9500 0 0 0 0 10 20\n"
	    "   8       1 sda1 900 10 18000 450 3900 300 79000 8900 0 6900 9300 0 0 0 0 0 0\n"
	    " 259       0 nvme0n1 10 0 80 1 20 0 160 2 0 42 3 0 0 0 0\n"
	    " 259       1 nvme0n1p1 10 0 80 1 20 0 160 2 0 40 3 0 0 0 0\n"
	    " 253       0 dm-0 1 0 8 0 2 0 16 0 0 1 1 0 0 0 0\n";

	CHECK_INT(ld_procfs_parse_diskstats(text, d, 4), 2);
	CHECK_STR(d[0].name, "sda");
	CHECK_INT(d[0].io_ticks_ms, 7000);
	CHECK_INT(d[0].writes, 4000);
	CHECK_STR(d[1].name, "nvme0n1");
	CHECK_INT(d[1].io_ticks_ms, 42);
	CHECK_INT(ld_procfs_parse_diskstats("", d, 4), 0);
	CHECK_INT(ld_procfs_parse_diskstats("garbage\n", d, 4), -EINVAL);
}

static void test_parse_mem_sock(void)
{
	int64_t t, a, s, in, tw;

	CHECK_INT(ld_procfs_parse_meminfo("MemTotal:  8000000 kB\nMemFree: 100 kB\n"
					  "MemAvailable:  6000000 kB\n",
					  &t, &a),
		  0);
	CHECK_INT(t, 8000000);
	CHECK_INT(a, 6000000);
	CHECK_INT(ld_procfs_parse_sockstat("sockets: used 49\nTCP: inuse 34 orphan 0 tw 225 alloc "
					   "34 mem 0\nUDP: inuse 0 mem 0\n",
					   &s, &in, &tw),
		  0);
	CHECK_INT(s, 49);
	CHECK_INT(in, 34);
	CHECK_INT(tw, 225);
	CHECK_INT(ld_procfs_parse_sockstat("sockets: used 1\n", &s, &in, &tw), -EINVAL);
}

static void test_parse_cgroup(void)
{
	struct ld_procfs_cgroup cg;
	char path[64];
	bool v2 = true;

	CHECK_INT(ld_procfs_parse_cgroup_path("9:name=systemd:/\n4:memory:/m\n"
					      "2:cpu,cpuacct:/ladder-test\n0::/\n",
					      path, sizeof(path), &v2),
		  0);
	CHECK_STR(path, "/ladder-test");
	CHECK(!v2);
	/* "cpuset" is not "cpu" */
	CHECK_INT(ld_procfs_parse_cgroup_path("3:cpuset:/a\n0::/b/c\n", path, sizeof(path), &v2),
		  0);
	CHECK_STR(path, "/b/c");
	CHECK(v2);
	CHECK_INT(ld_procfs_parse_cgroup_path("3:cpuset:/a\n", path, sizeof(path), &v2), -ENOENT);
	memset(&cg, 0, sizeof(cg));
	CHECK_INT(ld_procfs_parse_cpu_stat("nr_periods 100\nnr_throttled 90\nthrottled_time "
					   "5000000\n",
					   &cg),
		  0);
	CHECK_INT(cg.nr_periods, 100);
	CHECK_INT(cg.nr_throttled, 90);
	CHECK_INT(cg.throttled_ns, 5000000);
	CHECK_INT(ld_procfs_parse_cpu_stat("usage_usec 1\nnr_periods 4\nnr_throttled 2\n"
					   "throttled_usec 7\n",
					   &cg),
		  0);
	CHECK_INT(cg.throttled_ns, 7000);
}

/* This process, read twice: its own pid is in /proc on any Linux. */
static void test_read_self(void)
{
	struct ld_procfs_snap *s = calloc(1, sizeof(*s));

	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_INT(ld_procfs_snap(getpid(), s), 0);
	CHECK(s->self.ntasks >= 1);
	CHECK(s->target.ntasks >= 1);
	CHECK(s->cpu.ncpu >= 1);
	CHECK(ld_procfs_task_find(&s->self, getpid()) != NULL);
	CHECK(ld_procfs_read_proc(-5, &s->target) < 0);
	free(s);
}

static const char doc_text[] =
    "{\"schema\":\"ladder-stats/1\",\"pid\":4200,\"now_ns\":3000000000,\"started_ns\":1,"
    "\"loops\":1,\"clock_ticks\":100,"
    "\"routes\":[{\"route\":\"GET /v1/items/{id}\",\"requests\":900,"
    "\"total\":{\"count\":900,\"sum_ns\":9000000,\"p99_ns\":30000},"
    "\"stages\":{\"read\":{\"count\":900,\"sum_ns\":1000000},\"store\":{\"count\":900,"
    "\"sum_ns\":2000000},\"render\":{\"count\":900,\"sum_ns\":5000000},"
    "\"write\":{\"count\":900,\"sum_ns\":1000000}}},"
    "{\"route\":\"POST /v1/items\",\"requests\":100,"
    "\"total\":{\"count\":100,\"sum_ns\":4000000,\"p99_ns\":90000},"
    "\"stages\":{\"store_queue\":{\"count\":100,\"sum_ns\":1000000},\"store_commit\":"
    "{\"count\":100,\"sum_ns\":3000000}}},"
    "{\"route\":\"GET /debug/stats\",\"requests\":7,\"total\":{\"count\":7,\"sum_ns\":700},"
    "\"stages\":{\"render\":{\"count\":7,\"sum_ns\":700}}}],"
    "\"loop_stats\":[{\"loop\":0,\"tid\":4201,\"cpu_ns\":500000000,\"busy_ns\":800000000}],"
    "\"threads\":[{\"name\":\"loop-0\",\"tid\":4201,\"cpu_ns\":500000000}],"
    "\"store\":{\"driver\":\"sqlite\",\"writer_busy_ns\":600000000,\"commits\":10,"
    "\"writes\":100,\"commit\":{\"count\":10,\"sum_ns\":30000000,\"p99_ns\":4000000},"
    "\"sync\":{\"count\":10,\"sum_ns\":20000000,\"p99_ns\":1800000},\"queue_depth\":3,"
    "\"queue_cap\":4096}}";

static void test_doc_parse(void)
{
	struct ld_prof_doc d;
	char err[160];

	CHECK_INT(ld_prof_doc_parse(doc_text, strlen(doc_text), &d, err, sizeof(err)), 0);
	CHECK_INT(d.pid, 4200);
	CHECK_INT(d.requests, 1000);
	CHECK_DBL(d.total_ns, 13000000, 0);
	CHECK_DBL(d.stage_ns[LD_ST_RENDER], 5000000, 0);
	CHECK_DBL(d.stage_ns[LD_ST_STORE_COMMIT], 3000000, 0);
	CHECK_INT(d.total_p99_ns, 30000); /* the busiest route's */
	CHECK_INT(d.nloops, 1);
	CHECK_INT(d.loop_tid[0], 4201);
	CHECK_DBL(d.loop_busy_ns[0], 8e8, 0);
	CHECK(d.have_store);
	CHECK_INT(d.commits, 10);
	CHECK_INT(d.sync_p99_ns, 1800000);
	CHECK_INT(d.queue_cap, 4096);
	{
		const char *other = "{\"schema\":\"other/2\",\"pid\":1}";
		CHECK_INT(ld_prof_doc_parse(other, strlen(other), &d, err, sizeof(err)), -EINVAL);
	}
	CHECK(strstr(err, "'other/2', not ladder-stats/1") != NULL);
	CHECK_INT(ld_prof_doc_parse("not json", 8, &d, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "not a JSON object") != NULL);
	CHECK_INT(ld_prof_doc_parse("{\"schema\":\"ladder-stats/1\"}", 27, &d, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "no pid") != NULL);
}

static void add_task(struct ld_procfs_proc *p, int tid, const char *comm, uint64_t ticks, int cpu)
{
	struct ld_procfs_task *t = &p->tasks[p->ntasks++];
	t->tid = tid;
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
	t->ticks = ticks;
	t->processor = cpu;
}

/* Two samples two seconds apart give per-second figures. */
static void test_step_from(void)
{
	struct ld_prof_doc a, b;
	struct ld_procfs_snap *ha = calloc(1, sizeof(*ha)), *hb = calloc(1, sizeof(*hb));
	struct ld_prof_step s;

	CHECK(ha && hb);
	if (!ha || !hb)
		goto out;
	memset(&a, 0, sizeof(a));
	a.now_ns = 1000000000;
	a.clock_ticks = 100;
	a.nloops = 1;
	a.loop_tid[0] = 11;
	b = a;
	b.now_ns = 3000000000;
	b.requests = 2000;
	b.total_ns = 2e9;
	b.stage_ns[LD_ST_RENDER] = 1.2e9;
	b.stage_ns[LD_ST_READ] = 0.8e9;
	b.loop_busy_ns[0] = 1.8e9; /* 90% of 2 s */
	b.loop_cpu_ns[0] = 1.0e9;  /* 50% */
	b.writer_busy_ns = 0.5e9;
	b.commits = 200;
	b.writes = 400;
	b.commit_count = 200;
	b.commit_sum_ns = 0.4e9;
	ha->mono_ns = 1000000000;
	hb->mono_ns = 3000000000;
	ha->cpu.ncpu = hb->cpu.ncpu = 2;
	ha->cpu.busy[0] = 100;
	ha->cpu.total[0] = 200;
	hb->cpu.busy[0] = 290; /* +190 of +200 */
	hb->cpu.total[0] = 400;
	ha->cpu.total[1] = 200;
	hb->cpu.busy[1] = 20;
	hb->cpu.total[1] = 400;
	add_task(&ha->target, 11, "loop-0", 1000, 0);
	add_task(&hb->target, 11, "loop-0", 1100, 0);
	add_task(&ha->target, 12, "writer", 10, 0);
	add_task(&hb->target, 12, "writer", 60, 0);
	add_task(&ha->self, 21, "ladder", 0, 1);
	add_task(&hb->self, 21, "ladder", 150, 1);
	hb->self.ticks = 160; /* 10 more of a thread that ended meanwhile */
	ha->self.cg.have = hb->self.cg.have = true;
	hb->self.cg.quota_cores = 0.8;
	hb->self.cg.nr_periods = 20;
	hb->self.cg.nr_throttled = 15;
	hb->ndisks = ha->ndisks = 1;
	snprintf(ha->disks[0].name, 32, "sda");
	snprintf(hb->disks[0].name, 32, "sda");
	hb->disks[0].io_ticks_ms = 500;
	ld_prof_step_from(&a, &b, ha, hb, 1, &s);
	CHECK_DBL(s.wall_s, 2, 1e-9);
	CHECK_INT(s.requests, 2000);
	CHECK_DBL(s.achieved_rps, 1000, 1e-9);
	CHECK_DBL(ld_prof_share(&s, LD_ST_RENDER), 0.6, 1e-9);
	CHECK_DBL(s.loop_busy, 0.9, 1e-9);
	CHECK_DBL(s.loop_cpu, 0.5, 1e-9);
	CHECK_DBL(s.loop_cpu_per_req_ns, 500000, 1e-6);
	CHECK_DBL(s.writer_busy, 0.25, 1e-9);
	CHECK_DBL(s.commits_per_s, 100, 1e-9);
	CHECK_DBL(s.writes_per_commit, 2, 1e-9);
	CHECK_DBL(s.commit_mean_ns, 2e6, 1e-6);
	CHECK_DBL(s.server_cpu, 0.75, 1e-9); /* 100 + 50 ticks in 2 s */
	CHECK_INT(s.nthreads, 2);
	CHECK_STR(s.threads[0].name, "loop-0");
	CHECK_DBL(s.threads[0].busy, 0.5, 1e-9);
	CHECK_DBL(s.gen_cpu, 0.8, 1e-9);
	CHECK_DBL(s.gen_allowed, 0.8, 1e-9); /* the quota, below 1 thread */
	CHECK_DBL(s.gen_throttled, 0.75, 1e-9);
	CHECK_INT(s.gen_core, 1);
	CHECK_DBL(s.gen_thread_max, 0.75, 1e-9);
	CHECK_DBL(s.core_busy_max, 0.95, 1e-9);
	CHECK_DBL(s.core_busy_mean, 0.525, 1e-9);
	CHECK_DBL(s.disk_busy, 0.25, 1e-9);
	CHECK_STR(s.disk, "sda");
out:
	free(ha);
	free(hb);
}

/* A step with no resource busy: the server keeps up with offered. */
static struct ld_prof_step idle_step(double offered)
{
	struct ld_prof_step s;

	memset(&s, 0, sizeof(s));
	s.offered_rps = s.achieved_rps = offered;
	s.wall_s = 5;
	s.requests = (int64_t)(offered * 5);
	s.total_ns = (double)s.requests * 100000; /* 100 us each */
	s.stage_ns[LD_ST_READ] = s.total_ns * 0.1;
	s.stage_ns[LD_ST_STORE] = s.total_ns * 0.2;
	s.stage_ns[LD_ST_RENDER] = s.total_ns * 0.6;
	s.stage_ns[LD_ST_WRITE] = s.total_ns * 0.1;
	s.p99_us = 300;
	s.loops = 1;
	s.loop_cpu_per_req_ns = 50000; /* 50 us of CPU per request */
	s.loop_busy = s.loop_cpu = offered * 50e-6;
	s.gen_allowed = 1;
	s.gen_cpu = s.gen_thread_max = 0.1;
	s.ncpu = 2;
	return s;
}

static bool has_note(const struct ld_prof_verdict *v, const char *part)
{
	for (int i = 0; i < v->nnotes; i++)
		if (strstr(v->notes[i], part))
			return true;
	return false;
}

/* The server's CPU: one loop capped by a cgroup. */
static void test_verdict_app_cpu(void)
{
	struct ld_prof_step st[3] = {idle_step(500), idle_step(1000), idle_step(2000)};
	struct ld_prof_verdict v;

	/* Capped at 0.15 cores: it serves 3000/s x 50 us = 15% CPU while the
	 * loop is busy (waiting for CPU) all the time. */
	st[2].achieved_rps = 3000;
	st[2].offered_rps = 8000;
	st[2].requests = 15000;
	st[2].total_ns = 15000 * 1e5;
	for (int k = 0; k < LD_ST_COUNT; k++)
		st[2].stage_ns[k] = idle_step(1).stage_ns[k] / 5 * 15000 / 1;
	st[2].stage_ns[LD_ST_READ] = st[2].total_ns * 0.1;
	st[2].stage_ns[LD_ST_STORE] = st[2].total_ns * 0.2;
	st[2].stage_ns[LD_ST_RENDER] = st[2].total_ns * 0.61;
	st[2].stage_ns[LD_ST_WRITE] = st[2].total_ns * 0.09;
	st[2].loop_busy = 0.98;
	st[2].loop_cpu = 0.15;
	st[2].server_cpu = 0.15;
	st[2].server_quota = 0.15;
	st[2].server_throttled = 0.9;
	st[2].p99_us = 900000;
	ld_prof_judge(st, 3, &v);
	CHECK_INT(v.kind, LD_PROF_APP_CPU);
	CHECK_STR(ld_prof_kind_name(v.kind), "app CPU");
	CHECK_STR(v.line,
		  "app CPU: the server used 0.15 of the 0.15 cores its CPU cgroup allows "
		  "(throttled in 90% of periods), loop thread 0 98% busy, 61% of request "
		  "time in JSON and gzip, 20% in store calls; give the server more CPU (its "
		  "cap), add loop threads or nodes (rung 3)");
	CHECK(v.shares_ok);
	/* U = X S: 3000/s x 50 us = 15% against 98% busy: the cap explains it. */
	CHECK(!v.law_ok);
	CHECK(has_note(&v, "utilisation law disagrees for the loop: 98% busy measured, but 3000/s "
			   "x 50.0 us = 15%: the loop waits for CPU it is not given (its cgroup "
			   "caps the server at 0.15 cores, throttled in 90% of periods)"));
}

/* Commit latency: every commit waits, the writer is never idle. */
static void test_verdict_commit(void)
{
	struct ld_prof_step st[1] = {idle_step(400)};
	struct ld_prof_verdict v;

	st[0].offered_rps = 2000;
	st[0].achieved_rps = 1000;
	st[0].writer_busy = 0.96;
	st[0].commits_per_s = 32;
	st[0].commit_mean_ns = 30e6; /* 32/s x 30 ms = 96% */
	st[0].writes_per_commit = 31;
	st[0].sync_p99_ns = 1800000;
	st[0].commit_p99_ns = 31000000;
	st[0].queue_depth = 900;
	st[0].queue_cap = 4096;
	ld_prof_judge(st, 1, &v);
	CHECK_INT(v.kind, LD_PROF_COMMIT);
	CHECK(!strncmp(v.line, "commit latency: writer busy 96%, fsync p99 1.8 ms", 49));
	CHECK(strstr(v.line, "31 writes per commit") != NULL);
	CHECK(v.law_ok);
	CHECK(has_note(&v, "utilisation law holds for the writer: 96% busy, 32/s x 30000.0 us = "
			   "96%"));
	CHECK(!v.have_usl); /* one step */
}

/* Pinned on a core of its own that its work and its sockets' interrupts
 * fill (the server's core less busy): the generator is the limit. */
static void test_verdict_generator_pinned(void)
{
	struct ld_prof_step st[1] = {idle_step(36000)};
	struct ld_prof_verdict v;

	st[0].gen_cpu = 0.82;
	st[0].gen_thread_max = 0.65;
	st[0].gen_pinned = 1;
	st[0].gen_core0 = 0;
	st[0].gen_cores_busy = 0.97;
	st[0].gen_cores_irq = 0.10;
	st[0].late_frac = 0.225;
	st[0].loop_busy = 0.77;
	st[0].loop_cpu = 0.7;
	st[0].server_pinned = 1;
	st[0].server_core0 = 1;
	st[0].server_cores_busy = 0.81;
	st[0].server_cpu = 0.75;
	ld_prof_judge(st, 1, &v);
	CHECK_INT(v.kind, LD_PROF_GENERATOR);
	CHECK_STR(v.line, "the load generator: its core 0 (its affinity) was 97% busy (the "
			  "generator 0.82 cores, interrupts 0.10; 22% of sends late), the figures "
			  "measure it, not the server; give the generator more CPU (lift its cap, "
			  "-t threads, its own core or machine) before reading the server's "
			  "figures");
	/* The server's core full too: both limits are said. */
	st[0].server_cores_busy = 0.99;
	st[0].server_cpu = 0.97;
	st[0].loop_busy = 0.99;
	ld_prof_judge(st, 1, &v);
	CHECK_INT(v.kind, LD_PROF_GENERATOR);
	CHECK(strstr(v.line, "before reading the server's figures; the server is at its limit too "
			     "(app CPU 99%): this rate is a floor of its capacity") != NULL);
	/* Its core full of other processes' work instead: not the generator. */
	st[0].gen_cpu = 0.3;
	ld_prof_judge(st, 1, &v);
	CHECK(v.kind != LD_PROF_GENERATOR);
}

/* The generator capped: its allowance is used up, the server idles. */
static void test_verdict_generator(void)
{
	struct ld_prof_step st[1] = {idle_step(300)};
	struct ld_prof_verdict v;

	st[0].offered_rps = 5000;
	st[0].gen_quota = 0.1;
	st[0].gen_allowed = 0.1;
	st[0].gen_cpu = 0.1;
	st[0].gen_thread_max = 0.1;
	st[0].gen_throttled = 0.95;
	st[0].late_frac = 0.8;
	/* The server looks starved too (its loop idles): still the generator. */
	ld_prof_judge(st, 1, &v);
	CHECK_INT(v.kind, LD_PROF_GENERATOR);
	CHECK(!strncmp(v.line,
		       "the load generator: its core was 100% busy (0.10 of 0.10 cores, capped at "
		       "0.10 cores by its CPU cgroup, throttled; 80% of sends late), the figures "
		       "measure it, not the server",
		       150));
	/* On a busy host it may not even get its share, but it is throttled
	 * in nearly every period: still the limit. */
	st[0].gen_cpu = st[0].gen_thread_max = 0.05;
	ld_prof_judge(st, 1, &v);
	CHECK_INT(v.kind, LD_PROF_GENERATOR);
	CHECK(!strncmp(
	    v.line, "the load generator: it hit its CPU cap in 95% of periods (0.05 of 0.10 cores",
	    76));
}

static void test_verdict_none(void)
{
	struct ld_prof_step st[2] = {idle_step(100), idle_step(200)};
	struct ld_prof_verdict v;

	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_NONE);
	CHECK(!strncmp(v.line, "no resource saturated at 200/s: app CPU 1%", 42));
	CHECK(strstr(v.line, "offer more load to find the limit") != NULL);
	/* Latency rose 100x while everything idled: a stall, not capacity. */
	st[1].p99_us = 86000;
	st[1].loop_busy = st[1].loop_cpu = 0.65;
	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_NONE);
	CHECK_STR(v.line, "no resource saturated at 200/s: app CPU 65%, writer 0%, disk 0%, "
			  "generator 10%, yet latency rose; repeat the step; a latency rise with "
			  "idle resources is a stall (another process, the network), not capacity");
	/* Busier (80%) with latency up: named, as likely. */
	st[1].loop_busy = st[1].loop_cpu = 0.8;
	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_APP_CPU);
	CHECK(!strncmp(v.line, "app CPU (likely; below 90%): loop thread 0 80% busy", 51));
	ld_prof_judge(st, 0, &v);
	CHECK_INT(v.kind, LD_PROF_INCONCLUSIVE);
}

/* Every core busy, little of it ours: the host is the limit. */
static void test_verdict_host_cpu(void)
{
	struct ld_prof_step st[2] = {idle_step(1000), idle_step(6000)};
	struct ld_prof_verdict v;

	st[1].p99_us = 29000; /* latency climbed 100x */
	st[1].loop_busy = st[1].loop_cpu = 0.14;
	st[1].server_cpu = 0.14;
	st[1].gen_cpu = 0.16;
	st[1].ncpu = 2;
	st[1].core_busy_mean = st[1].core_busy_max = 1.0;
	st[1].run_queue = 12;
	st[1].irq_cores = 0.2;
	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_HOST_CPU);
	CHECK_STR(v.line, "host CPU: all 2 cores 100% busy, run queue 12; the server used 0.14 "
			  "cores, the generator 0.16, interrupts 0.20, other processes 1.50: "
			  "requests wait for a core, not for the server; measure on a quieter "
			  "machine, or give the server and the generator cores of their own "
			  "(taskset)");
	/* The same cores filled by the server itself: app CPU, not the host. */
	st[1].loop_busy = st[1].loop_cpu = 0.99;
	st[1].server_cpu = 1.0;
	st[1].gen_cpu = 0.5;
	st[1].loop_core = 1;
	st[1].loop_core_busy = 1.0;
	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_APP_CPU);
	CHECK_STR(v.line, "app CPU: loop thread 0 99% busy (99% of a core in CPU time) on core 1, "
			  "100% busy; 60% of request time in JSON and gzip, 20% in store calls; "
			  "add loop threads or nodes (rung 3)");
}

/* Pinned to one core (taskset) that its threads, interrupts and others
 * fill: the server's CPU is the limit though its loop is not 90% busy. */
static void test_verdict_pinned_core(void)
{
	struct ld_prof_step st[2] = {idle_step(4000), idle_step(32000)};
	struct ld_prof_verdict v;

	st[1].achieved_rps = 30800;
	st[1].p99_us = 390000;
	st[1].loop_busy = 0.74;
	st[1].loop_cpu = 0.58;
	st[1].server_cpu = 0.62;
	st[1].server_pinned = 1;
	st[1].server_core0 = 1;
	st[1].server_cores_busy = 0.97;
	st[1].server_cores_irq = 0.25;
	st[1].core_busy_mean = 0.9;
	st[1].gen_cpu = 0.57;
	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_APP_CPU);
	CHECK_STR(v.line, "app CPU: the server's core 1 (its affinity) 97% busy: the server 0.62 "
			  "cores (loop thread 0 74% busy, 58% CPU), interrupts 0.25, others 0.10; "
			  "60% of request time in JSON and gzip, 20% in store calls; add loop "
			  "threads or nodes (rung 3)");
	/* The same core full of other processes' work: the host's verdict. */
	st[1].loop_busy = st[1].loop_cpu = 0.12;
	st[1].server_cpu = 0.13;
	st[1].server_cores_busy = 0.93;
	st[1].server_cores_irq = 0.07;
	st[1].run_queue = 17;
	ld_prof_judge(st, 2, &v);
	CHECK_INT(v.kind, LD_PROF_HOST_CPU);
	CHECK_STR(v.line, "host CPU: the server's core 1 (its affinity) 93% busy, 0.73 cores of "
			  "it other processes' (the server 0.13, interrupts 0.07), run queue 17: "
			  "requests wait for a core, not for the server; measure on a quieter "
			  "machine, or give the server and the generator cores of their own "
			  "(taskset)");
}

/* The writer's busy clock and its commits disagree: said, not hidden. */
static void test_law_disagrees(void)
{
	struct ld_prof_step st[1] = {idle_step(100)};
	struct ld_prof_verdict v;

	st[0].writer_busy = 0.9;
	st[0].commits_per_s = 100;
	st[0].commit_mean_ns = 1e6; /* 100/s x 1 ms = 10% */
	st[0].offered_rps = 200;
	ld_prof_judge(st, 1, &v);
	CHECK_INT(v.kind, LD_PROF_COMMIT);
	CHECK(!v.law_ok);
	CHECK(has_note(&v, "utilisation law disagrees for the writer: 90% busy measured, but "
			   "100/s x 1000.0 us = 10%: the writer spends time outside commits"));
}

/* The loop: CPU per request at the lightest step overestimates a busy one
 * (more requests per pass of the loop); the law says so instead of failing
 * silently. */
static void test_law_loop_cpu_fell(void)
{
	struct ld_prof_step st[2] = {idle_step(4000), idle_step(32000)};
	struct ld_prof_verdict v;

	st[0].loop_cpu_per_req_ns = 35800;
	st[1].requests = 30844 * 5;
	st[1].loop_cpu_per_req_ns = 18800;
	st[1].loop_busy = 0.74;
	st[1].loop_cpu = 0.58;
	ld_prof_judge(st, 2, &v);
	CHECK(!v.law_ok);
	CHECK(has_note(&v, "utilisation law disagrees for the loop: 74% busy measured, but "
			   "30844/s x 35.8 us = 110%: CPU per request fell with load (35.8 us at "
			   "the lightest step, 18.8 us here: more requests per pass of the loop)"));
}

static void test_shares_do_not_add_up(void)
{
	struct ld_prof_step st[1] = {idle_step(100)};
	struct ld_prof_verdict v;

	st[0].stage_ns[LD_ST_RENDER] -= st[0].total_ns * 0.1; /* 10% lost between stages */
	ld_prof_judge(st, 1, &v);
	CHECK(!v.shares_ok);
	CHECK_DBL(v.shares_sum, 0.9, 1e-9);
	CHECK(has_note(&v, "stage shares do NOT add up: 90.0% of the server's time (500 requests): "
			   "0.010 ms per request falls between stages"));
	st[0].stage_ns[LD_ST_RENDER] += st[0].total_ns * 0.1;
	ld_prof_judge(st, 1, &v);
	CHECK(v.shares_ok);
	CHECK(has_note(&v, "stage shares add up to 100.0% of the server's time (500 requests, "
			   "mean 0.100 ms)"));
}

/* Breakpoint steps on a USL curve: the fit finds sigma and kappa back and
 * says where 10% of linear scaling is lost. */
static void test_usl(void)
{
	struct ld_prof_step st[8];
	struct ld_usl u = {.sigma = 0.05, .kappa = 0.002, .lambda = 1000};
	struct ld_prof_verdict v;

	for (int i = 0; i < 8; i++) {
		st[i] = idle_step(1000.0 * (i + 1));
		st[i].achieved_rps = ld_usl_eval(&u, i + 1);
	}
	ld_prof_judge(st, 8, &v);
	CHECK(v.have_usl);
	CHECK_DBL(v.usl.sigma, 0.05, 1e-4);
	CHECK_DBL(v.usl.kappa, 0.002, 1e-5);
	CHECK_DBL(v.usl_base, 1000, 0);
	/* 0.002 N^2 + 0.048 N - 0.16111 = 0 -> N = 2.98518 */
	CHECK_DBL(v.contention_rps, 2985.2, 1);
	CHECK(strstr(v.usl_line, "USL over 8 steps (N = offered / 1000/s): sigma 0.0500") != NULL);
	CHECK(strstr(v.usl_line, "10% below linear at 2985/s offered, contention (sigma)") != NULL);
	CHECK(strstr(v.usl_line, "peak") != NULL);
	/* Linear steps: the fit's contention point lies far past them, and
	 * the line says it is an extrapolation. */
	for (int i = 0; i < 3; i++)
		st[i].achieved_rps = st[i].offered_rps * (1 - 0.001 * i);
	ld_prof_judge(st, 3, &v);
	CHECK(v.have_usl);
	CHECK(strstr(v.usl_line, "no sign of contention up to 3000/s (extrapolated: 10% below "
				 "linear at ") != NULL);
}

int main(void)
{
	RUN(test_parse_stat);
	RUN(test_parse_task_stat);
	RUN(test_parse_status);
	RUN(test_parse_diskstats);
	RUN(test_parse_cpu_list);
	RUN(test_parse_mem_sock);
	RUN(test_parse_cgroup);
	RUN(test_read_self);
	RUN(test_doc_parse);
	RUN(test_step_from);
	RUN(test_verdict_app_cpu);
	RUN(test_verdict_commit);
	RUN(test_verdict_generator);
	RUN(test_verdict_generator_pinned);
	RUN(test_verdict_none);
	RUN(test_verdict_host_cpu);
	RUN(test_verdict_pinned_core);
	RUN(test_law_disagrees);
	RUN(test_law_loop_cpu_fell);
	RUN(test_shares_do_not_add_up);
	RUN(test_usl);
	return unit_finish();
}
