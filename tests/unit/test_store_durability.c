/*
 * test_store_durability.c - what the SQLite store promises about the disk:
 * everything acknowledged is there after a reopen, close drains the queue,
 * checkpoints keep the WAL bounded, and a failed fsync fails its whole batch
 * and takes the store out of service.
 *
 * `test_store_durability --bench [SECONDS] [DIR] [nosync]` instead measures
 * durable write throughput of the driver alone (64 item creates of 1 KiB in
 * flight on one loop); it asserts nothing.
 */
#include "store_env.h"

#include <sys/resource.h>

#include "base/buf.h"
#include "obs/metrics.h"

static void test_reopen_finds_everything(void)
{
	struct env e;
	struct ld_store_op op;
	int64_t alice, kept, gone, later;

	env_setup(&e);
	e.cfg.synchronous_full = true;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	kept = make_item(&e, alice, "kept");
	gone = make_item(&e, alice, "gone");
	CHECK_INT(item_op(&e, LD_OP_ITEM_UPDATE, kept, alice, 1, "kept v2", &op), LD_STORE_OK);
	CHECK_INT(item_op(&e, LD_OP_ITEM_DELETE, gone, alice, 1, NULL, &op), LD_STORE_OK);
	op_init(&op, LD_OP_USER_UPDATE, NULL);
	op.id = alice;
	snprintf(op.user.display_name, sizeof(op.user.display_name), "Alice 2");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	env_close(&e);

	if (env_open(&e) != 0)
		goto out;
	op_init(&op, LD_OP_USER_GET_BY_HANDLE, NULL);
	snprintf(op.user.handle, sizeof(op.user.handle), "alice");
	CHECK_INT(exec(&e, &op), LD_STORE_OK);
	CHECK_INT(op.user.id, alice);
	CHECK_STR(op.user.display_name, "Alice 2");
	CHECK_INT(op.user.version, 2);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, kept, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_STR(op.item.content, "kept v2");
	CHECK_INT(op.item.version, 2);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, gone, 0, 0, NULL, &op), LD_STORE_NOT_FOUND);
	/* New ids continue above everything stored. */
	later = make_item(&e, alice, "later");
	CHECK(later > gone);
	CHECK_INT(count_items(&e, alice), 2);
out:
	env_cleanup(&e);
}

static void test_close_with_writes_in_flight(void)
{
	static struct ld_store_op ops[50];
	struct env e;
	struct ld_store_op op;
	struct tally t;
	struct ld_store_conn *c;
	int64_t alice;
	unsigned i;

	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	tally_init(&t);
	for (i = 0; i < 50; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		set_content(&ops[i], "late", 4);
		vt->submit(e.c, &ops[i]);
	}
	c = e.c;
	vt->conn_close(c);
	/* After close began: refused at once. */
	op_init(&op, LD_OP_ITEM_GET, &t);
	vt->submit(c, &op);
	CHECK_INT(op.status, LD_STORE_UNAVAILABLE);
	CHECK_INT(vt->ping(c), -EIO);
	e.c = NULL;
	vt->close(e.s);
	e.s = NULL;
	/* The writer finished everything; completions wait in the conn. */
	uv_run(&e.loop, UV_RUN_DEFAULT);
	CHECK_INT(t.done, 51);
	CHECK_INT(t.wrong_thread, 0);
	for (i = 0; i < 50; i++)
		CHECK_INT(ops[i].status, LD_STORE_OK);
	CHECK_INT(uv_loop_close(&e.loop), 0);

	if (env_open(&e) != 0)
		goto out;
	CHECK_INT(count_items(&e, alice), 50);
out:
	env_cleanup(&e);
}

/* The writer hands checkpoints to another thread: pages written through
 * the WAL must reach the database file while the store is open, or the WAL
 * would grow without end. */
static void test_checkpoints_happen(void)
{
	static struct ld_store_op ops[64];
	static char content[1000];
	char path[PATH_MAX + 16];
	struct env e;
	struct stat st;
	struct tally t;
	int64_t alice;
	unsigned round, i, waited;

	memset(content, 'c', sizeof(content));
	env_setup(&e);
	if (env_open(&e) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/ladder.db", e.data);
	alice = make_user(&e, "alice");
	CHECK_INT(stat(path, &st), 0);
	CHECK(st.st_size < 1 << 20);
	/* About 6 MiB of items: several times the checkpoint mark. */
	for (round = 0; round < 100; round++) {
		tally_init(&t);
		for (i = 0; i < 64; i++) {
			op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
			ops[i].actor_id = alice;
			set_content(&ops[i], content, sizeof(content));
			vt->submit(e.c, &ops[i]);
		}
		run_until(&e, &t, 64);
		CHECK_INT(ops[63].status, LD_STORE_OK);
	}
	for (waited = 0; waited < 10000; waited += 10) {
		CHECK_INT(stat(path, &st), 0);
		if (st.st_size > 2 << 20)
			break;
		usleep(10000);
	}
	CHECK(st.st_size > 2 << 20);
	CHECK_INT(count_items(&e, alice), 6400);
out:
	env_cleanup(&e);
}

/* ---- a failing fsync ------------------------------------------------------ */

/*
 * A VFS shim over the default one: once armed, a file that was handed a
 * write containing the marker fails every later sync. Frames of the marked
 * ops reach the WAL, then the COMMIT's fsync fails, exactly as a dying disk
 * would report it.
 */
struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* the default VFS's file, right after this struct */
	bool poisoned;
};

static sqlite3_vfs shim_vfs;
static sqlite3_vfs *real_vfs;
static atomic_bool shim_armed;
static const char shim_marker[] = "FAIL-THE-SYNC";

#define REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (atomic_load(&shim_armed) && memmem(p, (size_t)n, shim_marker, strlen(shim_marker)))
		((struct shim_file *)f)->poisoned = true;
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
	if (atomic_load(&shim_armed) && ((struct shim_file *)f)->poisoned)
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int shim_lock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int shim_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int shim_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int shim_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int shim_caps(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int shim_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods shim_io = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_size,
    shim_lock,
    shim_unlock,
    shim_reserved,
    shim_fcntl,
    shim_sector,
    shim_caps,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
		     int *out_flags)
{
	struct shim_file *sf = (struct shim_file *)f;
	int rc;

	sf->real = (sqlite3_file *)(sf + 1);
	sf->poisoned = false;
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
	sf->base.pMethods = sf->real->pMethods ? &shim_io : NULL;
	return rc;
}

static void test_commit_failure(void)
{
	struct env e;
	struct ld_store_op ops[4], op;
	struct ld_store_stats st;
	struct tally t;
	sqlite3 *lock;
	int64_t alice;
	unsigned i;

	real_vfs = sqlite3_vfs_find(NULL);
	shim_vfs = *real_vfs;
	shim_vfs.pNext = NULL;
	shim_vfs.zName = "ladder-test-failsync";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	CHECK_INT(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);

	env_setup(&e);
	e.cfg.synchronous_full = true;
	if (env_open(&e) != 0)
		goto out;
	alice = make_user(&e, "alice");
	make_item(&e, alice, "fine");
	atomic_store(&shim_armed, true);

	/* ops[0] commits alone; ops[1..3] carry the marker and share the
	 * transaction whose COMMIT cannot sync. */
	tally_init(&t);
	lock = hold_write_lock(&e);
	for (i = 0; i < 4; i++) {
		op_init(&ops[i], LD_OP_ITEM_CREATE, &t);
		ops[i].actor_id = alice;
		if (i == 0)
			set_content(&ops[i], "before", 6);
		else
			set_content(&ops[i], shim_marker, strlen(shim_marker));
		vt->submit(e.c, &ops[i]);
		if (i == 0)
			wait_taken(&e);
	}
	release_write_lock(lock);
	run_until(&e, &t, 4);
	CHECK_INT(ops[0].status, LD_STORE_OK);
	/* The COMMIT failed on an I/O error: the store is unusable, and the
	 * batch's fate unknown (its frames may be in the WAL). */
	CHECK(!ops[0].outcome_unknown);
	for (i = 1; i < 4; i++) {
		CHECK_INT(ops[i].status, LD_STORE_UNAVAILABLE);
		CHECK(ops[i].outcome_unknown);
	}
	stats(&e, &st);
	CHECK(!st.healthy);
	CHECK_INT(st.errors, 3);
	CHECK_INT(vt->ping(e.c), -EIO);

	/* Unhealthy: writes are refused at once, reads still answer and see
	 * none of the failed batch. */
	op_init(&op, LD_OP_ITEM_CREATE, &t);
	op.actor_id = alice;
	set_content(&op, "after", 5);
	op.outcome_unknown = true; /* submit clears it */
	vt->submit(e.c, &op);
	CHECK_INT(op.status, LD_STORE_UNAVAILABLE);
	CHECK(!op.outcome_unknown);
	CHECK_INT(t.done, 5);
	CHECK_INT(item_op(&e, LD_OP_ITEM_GET, ops[0].item.id, 0, 0, NULL, &op), LD_STORE_OK);
	CHECK_INT(count_items(&e, alice), 2);
out:
	atomic_store(&shim_armed, false);
	env_cleanup(&e);
	sqlite3_vfs_unregister(&shim_vfs);
	sqlite3_vfs_register(real_vfs, 1);
}

/* ---- throughput (not a test) ---------------------------------------------- */

#define BENCH_IN_FLIGHT 64
#define BENCH_SAMPLES	(1u << 22)

struct bench {
	struct env *e;
	struct ld_store_op ops[BENCH_IN_FLIGHT];
	uint64_t started[BENCH_IN_FLIGHT];
	uint32_t *lat_us; /* capped: BENCH_SAMPLES */
	uint64_t nlat, done, failed, deadline;
	unsigned inflight;
};

static struct bench bench;

static void bench_done(struct ld_store_op *op)
{
	size_t i = (size_t)(op - bench.ops);
	uint64_t now = uv_hrtime();

	bench.inflight--;
	bench.done++;
	if (op->status != LD_STORE_OK)
		bench.failed++;
	if (bench.nlat < BENCH_SAMPLES)
		bench.lat_us[bench.nlat++] = (uint32_t)((now - bench.started[i]) / 1000);
	if (now < bench.deadline) {
		bench.started[i] = now;
		bench.inflight++;
		vt->submit(bench.e->c, op);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* metric_value finds "name value" in a Prometheus exposition. */
static double metric_value(const char *text, const char *name)
{
	const char *p = text;
	size_t n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
		p += n;
	}
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* bench_main: --bench [SECONDS] [DIR] [nosync] */
static int bench_main(int argc, char **argv)
{
	static char content[LD_CONTENT_MAX];
	struct env e;
	struct ld_store_stats st0, st1;
	struct ld_buf m;
	double secs = argc > 2 ? atof(argv[2]) : 5, wall, cpu0;
	uint64_t t0;
	unsigned i;
	int64_t owner;

	if (argc > 3)
		setenv("TMPDIR", argv[3], 1);
	env_setup(&e);
	e.cfg.synchronous_full = !(argc > 4 && strcmp(argv[4], "nosync") == 0);
	if (secs <= 0 || env_open(&e) != 0)
		return 2;
	memset(content, 'x', sizeof(content));
	owner = make_user(&e, "bench");
	bench.e = &e;
	bench.lat_us = calloc(BENCH_SAMPLES, sizeof(uint32_t));
	if (!bench.lat_us)
		return 2;
	vt->stats(e.s, &st0);
	cpu0 = cpu_seconds();
	t0 = uv_hrtime();
	bench.deadline = t0 + (uint64_t)(secs * 1e9);
	for (i = 0; i < BENCH_IN_FLIGHT; i++) {
		memset(&bench.ops[i], 0, sizeof(bench.ops[i]));
		bench.ops[i].kind = LD_OP_ITEM_CREATE;
		bench.ops[i].actor_id = owner;
		bench.ops[i].done = bench_done;
		set_content(&bench.ops[i], content, sizeof(content));
		bench.started[i] = uv_hrtime();
		bench.inflight++;
		vt->submit(e.c, &bench.ops[i]);
	}
	while (bench.inflight > 0)
		uv_run(&e.loop, UV_RUN_ONCE);
	wall = (double)(uv_hrtime() - t0) / 1e9;
	vt->stats(e.s, &st1);
	qsort(bench.lat_us, bench.nlat, sizeof(uint32_t), cmp_u32);
	ld_buf_init(&m, 1 << 20);
	ld_metrics_render(&m);
	printf("store bench: %s, %u in flight, %zu-byte item creates, %s\n", e.data,
	       BENCH_IN_FLIGHT, sizeof(content),
	       e.cfg.synchronous_full ? "synchronous=FULL" : "synchronous=NORMAL");
	printf("writes        %llu in %.2f s (%llu failed)\n", (unsigned long long)bench.done, wall,
	       (unsigned long long)bench.failed);
	printf("throughput    %.0f writes/s\n", (double)bench.done / wall);
	printf("batches       %llu commits, mean %.1f ops per commit\n",
	       (unsigned long long)(st1.commits - st0.commits),
	       (double)(st1.committed_ops - st0.committed_ops) /
		   (double)(st1.commits - st0.commits ? st1.commits - st0.commits : 1));
	printf(
	    "commit        mean %.3f ms (BEGIN to synced COMMIT)\n",
	    metric_value(m.data ? m.data : "", "ladder_store_commit_duration_seconds_sum") /
		metric_value(m.data ? m.data : "", "ladder_store_commit_duration_seconds_count") *
		1e3);
	if (getenv("LADDER_BENCH_METRICS"))
		fputs(m.data ? m.data : "", stdout);
	if (bench.nlat)
		printf("op latency    p50 %u us, p99 %u us, max %u us (submit to done)\n",
		       bench.lat_us[bench.nlat / 2], bench.lat_us[bench.nlat * 99 / 100],
		       bench.lat_us[bench.nlat - 1]);
	printf("cpu           %.1f us per write (all threads)\n",
	       (cpu_seconds() - cpu0) * 1e6 / (double)(bench.done ? bench.done : 1));
	ld_buf_release(&m);
	free(bench.lat_us);
	env_cleanup(&e);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
		return bench_main(argc, argv);
	RUN(test_reopen_finds_everything);
	RUN(test_close_with_writes_in_flight);
	RUN(test_checkpoints_happen);
	RUN(test_commit_failure);
	return unit_finish();
}
