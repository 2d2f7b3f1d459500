/*
 * lockfile.h - one process per data directory.
 *
 * Two servers (or a server and `ladder migrate`) writing the same SQLite file
 * is how a database ends up with two writer queues and two views of what was
 * acknowledged, so each process that opens a data directory first takes an
 * exclusive lock on DIR/ladder.lock and holds it until it exits.
 *
 * The lock is an flock(2) on the open file, not the file's existence: the
 * kernel drops it when the process ends however it ends (exit, crash,
 * SIGKILL), so there is never a stale lock to clean up by hand. The file is
 * left in place; it holds the holder's pid, which is read only to name the
 * holder in the refusal, never to decide anything (a pid can be reused).
 * flock rather than fcntl(F_SETLK): a POSIX record lock is dropped when the
 * process closes ANY descriptor of the file, which a library might do.
 *
 * Threading: acquire and release from one thread; the lock is per process.
 */
#ifndef LD_LOCKFILE_H
#define LD_LOCKFILE_H

#include <stddef.h>

#define LD_LOCKFILE_NAME "ladder.lock"

struct ld_lockfile {
	int fd; /* -1 when not held */
};

/*
 * ld_lockfile_acquire creates dir (and missing parents, mode 0700) when it
 * does not exist, then takes the lock without waiting. Returns 0 with lf
 * held; -EBUSY when another process holds it (err: "data directory 'DIR' is
 * locked by pid N (...)", or "by another process" when the pid cannot be
 * read); another negative errno when the directory or file cannot be made or
 * opened (err names the path and the reason).
 */
int ld_lockfile_acquire(struct ld_lockfile *lf, const char *dir, char *err, size_t errlen);

/* ld_lockfile_release empties the pid, then drops the lock (no-op when not
 * held). */
void ld_lockfile_release(struct ld_lockfile *lf);

#endif
