/*
 * file.h - read a whole small file into memory, with a size cap.
 *
 * Configuration-like inputs (assumption files, bench reports, key files,
 * request bodies) are read whole and then parsed. Every such read has a cap,
 * so a wrong path (a log, a device, /dev/zero) fails fast instead of eating
 * memory.
 *
 * Ownership: on success *out is a new buffer of *len bytes followed by a NUL
 * byte (not counted in *len), so it may be handed to C string APIs; the
 * caller free()s it. On error *out and *len are left unchanged and nothing is
 * allocated.
 *
 * Secrets: the bytes read are never left behind in freed memory. When the
 * buffer grows, the old one is wiped before it is freed, and on error the
 * partial buffer is wiped too; a caller reading a secret only needs to wipe
 * *out itself before free().
 *
 * Errors: 0, or a negative errno: -errno from open()/read() (-ENOENT,
 * -EACCES, -EISDIR for a directory, ...), -E2BIG when the file holds more
 * than max bytes, -ENOMEM. The message written to err (errlen bytes, may be
 * 0) names the path: "PATH: No such file or directory", "PATH: larger than
 * N bytes", "PATH: out of memory". A file of exactly max bytes is accepted.
 *
 * Threading: no shared state; safe from any thread.
 */
#ifndef LD_FILE_H
#define LD_FILE_H

#include <stddef.h>

/* LD_FILE_MAX_CAP is the largest max accepted (-EINVAL above it). */
#define LD_FILE_MAX_CAP ((size_t)1 << 30)

/* ld_read_file opens path read-only and reads all of it (at most max
 * bytes). */
int ld_read_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

/* ld_read_fd reads fd from its current offset to the end (at most max
 * bytes), for a caller that already opened and checked it (fstat). fd stays
 * open; path is used only in the error message. */
int ld_read_fd(int fd, const char *path, size_t max, char **out, size_t *len, char *err,
	       size_t errlen);

/* ld_make_dirs creates dir and its missing parents (mkdir -p) with mode 0700:
 * the data directory holds password hashes and the token key. Existing
 * directories are left as they are. 0, or -errno with err naming the
 * directory that could not be made ("data directory: cannot create 'D': ..."). */
int ld_make_dirs(const char *dir, char *err, size_t errlen);

#endif
