/*
 * file.c - whole-file reads with a cap (see file.h for the contract).
 */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The first buffer holds this much (or max + 1 if smaller): most inputs fit
 * it, and a large cap does not cost a large allocation up front. */
#define FIRST_CHUNK ((size_t)64 * 1024)

/* grow moves the len bytes of *buf into a new buffer of room + 1 bytes,
 * wiping the old one so no copy of the contents stays in freed memory. */
static int grow(char **buf, size_t len, size_t room)
{
	char *nb = malloc(room + 1);

	if (!nb)
		return -ENOMEM;
	memcpy(nb, *buf, len);
	explicit_bzero(*buf, len);
	free(*buf);
	*buf = nb;
	return 0;
}

int ld_read_fd(int fd, const char *path, size_t max, char **out, size_t *len, char *err,
	       size_t errlen)
{
	/* room is how many bytes may be read into buf; max + 1 at most, so
	 * one byte past the cap tells an oversized file from one of max. */
	size_t room, n = 0;
	char *buf = NULL;
	ssize_t r;
	int rc = 0;

	if (errlen)
		err[0] = '\0';
	if (max > LD_FILE_MAX_CAP) {
		rc = -EINVAL;
		if (errlen)
			snprintf(err, errlen, "%s: size cap %zu too large", path, max);
		goto out;
	}
	room = max + 1 < FIRST_CHUNK ? max + 1 : FIRST_CHUNK;
	buf = malloc(room + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		if (n == room) {
			if (room == max + 1)
				break;
			room = room > (max + 1) / 2 ? max + 1 : room * 2;
			rc = grow(&buf, n, room);
			if (rc)
				goto out;
		}
		r = read(fd, buf + n, room - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		rc = -E2BIG;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	if (buf) {
		explicit_bzero(buf, n);
		free(buf);
	}
	if (rc == -E2BIG && errlen)
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
	else if (rc == -ENOMEM && errlen)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (rc && errlen && !err[0])
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

int ld_read_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	rc = ld_read_fd(fd, path, max, out, len, err, errlen);
	close(fd);
out:
	return rc;
}

int ld_make_dirs(const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir), i;
	int rc = 0;

	if (n == 0 || n >= sizeof(tmp)) {
		snprintf(err, errlen, "data directory '%s': bad length", dir);
		rc = -ENAMETOOLONG;
		goto out;
	}
	memcpy(tmp, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "data directory: cannot create '%s': %s", tmp,
				 strerror(errno));
			goto out;
		}
		tmp[i] = dir[i];
	}
out:
	return rc;
}
