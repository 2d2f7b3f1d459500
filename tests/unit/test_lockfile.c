#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/lockfile.h"

static char tmpdir[] = "/tmp/ld_test_lockfile_XXXXXX";

static const char *sub(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* contents returns the lock file's text (at most 63 bytes). */
static const char *contents(const char *dir)
{
	static char buf[64];
	char path[300];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, LD_LOCKFILE_NAME);
	buf[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return "(missing)";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_acquire_writes_pid_release_empties(void)
{
	struct ld_lockfile lf;
	char err[512] = "", want[32];
	const char *dir = sub("a");

	CHECK_INT(ld_lockfile_acquire(&lf, dir, err, sizeof(err)), 0);
	CHECK(lf.fd >= 0);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	CHECK_STR(contents(dir), want);
	ld_lockfile_release(&lf);
	CHECK_INT(lf.fd, -1);
	CHECK_STR(contents(dir), "");
	ld_lockfile_release(&lf); /* twice is harmless */
	CHECK_INT(ld_lockfile_acquire(&lf, dir, err, sizeof(err)), 0);
	ld_lockfile_release(&lf);
}

/* The lock is per open file, so a second acquire in this process is refused
 * just as another process's would be, and names this process. */
static void test_second_holder_refused_with_pid(void)
{
	struct ld_lockfile a, b;
	char err[512] = "", want[512];
	const char *dir = sub("b");

	CHECK_INT(ld_lockfile_acquire(&a, dir, err, sizeof(err)), 0);
	CHECK_INT(ld_lockfile_acquire(&b, dir, err, sizeof(err)), -EBUSY);
	CHECK_INT(b.fd, -1);
	snprintf(want, sizeof(want), "data directory '%s' is locked by pid %ld (", dir,
		 (long)getpid());
	CHECK(strncmp(err, want, strlen(want)) == 0);
	ld_lockfile_release(&a);
	CHECK_INT(ld_lockfile_acquire(&b, dir, err, sizeof(err)), 0);
	ld_lockfile_release(&b);
}

/* A holder killed with SIGKILL leaves its pid in the file but no lock. */
static void test_killed_holder_leaves_no_lock(void)
{
	struct ld_lockfile lf;
	char err[512] = "", want[32];
	const char *dir = sub("c");
	int ready[2], status;
	pid_t pid;
	char ch;

	CHECK_INT(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		if (ld_lockfile_acquire(&lf, dir, err, sizeof(err)) != 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	CHECK_INT(read(ready[0], &ch, 1), 1);
	close(ready[0]);
	CHECK_INT(ld_lockfile_acquire(&lf, dir, err, sizeof(err)), -EBUSY);
	snprintf(want, sizeof(want), "pid %ld ", (long)pid);
	CHECK(strstr(err, want) != NULL);
	kill(pid, SIGKILL);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	CHECK_STR(contents(dir), want);
	CHECK_INT(ld_lockfile_acquire(&lf, dir, err, sizeof(err)), 0);
	ld_lockfile_release(&lf);
}

static void test_creates_missing_parents(void)
{
	struct ld_lockfile lf;
	char err[512] = "";
	const char *dir = sub("d/e/f");
	struct stat st;

	CHECK_INT(ld_lockfile_acquire(&lf, dir, err, sizeof(err)), 0);
	CHECK_INT(stat(dir, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_INT(st.st_mode & 0777, 0700);
	ld_lockfile_release(&lf);
}

static void test_dir_under_a_file_fails_naming_it(void)
{
	struct ld_lockfile lf;
	char err[512] = "", want[300];
	FILE *f = fopen(sub("file"), "w");

	CHECK(f != NULL);
	if (f)
		fclose(f);
	CHECK_INT(ld_lockfile_acquire(&lf, sub("file/x"), err, sizeof(err)), -ENOTDIR);
	CHECK_INT(lf.fd, -1);
	snprintf(want, sizeof(want), "data directory: cannot create '%s': ", sub("file/x"));
	CHECK(strncmp(err, want, strlen(want)) == 0);
}

int main(void)
{
	char cmd[300];
	int rc;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_acquire_writes_pid_release_empties);
	RUN(test_second_holder_refused_with_pid);
	RUN(test_killed_holder_leaves_no_lock);
	RUN(test_creates_missing_parents);
	RUN(test_dir_under_a_file_fails_naming_it);
	rc = unit_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
