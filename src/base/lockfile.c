#include "base/lockfile.h"

#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* holder_pid reads the pid the holder wrote. The holder writes it just after
 * it took the lock, so an empty file is retried for a moment. 0 when there
 * is none. */
static long holder_pid(int fd)
{
	struct timespec pause = {0, 5 * 1000 * 1000};
	char buf[32];
	ssize_t n;
	long pid = 0;
	char *end;
	int tries;

	for (tries = 0; tries < 40; tries++) {
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			pid = strtol(buf, &end, 10);
			if (end != buf && *end == '\n' && pid > 0)
				return pid;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

int ld_lockfile_acquire(struct ld_lockfile *lf, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX], line[32];
	int fd = -1, rc, n;
	long pid;

	lf->fd = -1;
	rc = ld_make_dirs(dir, err, errlen);
	if (rc)
		goto out;
	n = snprintf(path, sizeof(path), "%s/%s", dir, LD_LOCKFILE_NAME);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "data directory '%s': path too long", dir);
		rc = -ENAMETOOLONG;
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "data directory lock '%s': %s", path, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		if (rc == -EWOULDBLOCK) {
			rc = -EBUSY;
			pid = holder_pid(fd);
			if (pid)
				snprintf(err, errlen,
					 "data directory '%s' is locked by pid %ld (another ladder "
					 "serve or migrate; one process per data directory)",
					 dir, pid);
			else
				snprintf(
				    err, errlen,
				    "data directory '%s' is locked by another process (another "
				    "ladder serve or migrate; one process per data directory)",
				    dir);
		} else {
			snprintf(err, errlen, "data directory lock '%s': %s", path, strerror(-rc));
		}
		goto out;
	}
	/* Ours now: replace whatever pid a previous holder left. */
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		rc = -errno;
		snprintf(err, errlen, "data directory lock '%s': %s", path, strerror(errno));
		goto out;
	}
	lf->fd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void ld_lockfile_release(struct ld_lockfile *lf)
{
	if (lf->fd < 0)
		return;
	/* Emptied while still locked, so no new holder's pid is erased. */
	if (ftruncate(lf->fd, 0) != 0) {
		/* The old pid stays behind, which only a refusal message would
		 * read, and only while a new holder has not yet written its own. */
	}
	close(lf->fd);
	lf->fd = -1;
}
