/*
 * fs.c - the filesystem blob driver: object KEY is the file
 * data_dir/blobs/KEY. A put writes KEY.tmp.PID.N (O_EXCL, mode 0600), and
 * commit fsyncs it, renames it over KEY and fsyncs the directory, so a crash
 * leaves either the old object or the whole new one, and at worst a stray
 * .tmp file (its name carries the writer's pid and a counter, so two writers
 * of one key never share a temporary file).
 */
#include "blob/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"

struct ld_blob_store {
	char root[PATH_MAX];
};

struct ld_blob_writer {
	int fd;
	int err; /* the first failed write sticks: commit refuses */
	char tmp[PATH_MAX];
	char path[PATH_MAX];
};

static _Atomic unsigned long tmp_seq;

/* mkdirs creates every missing directory of path up to (not including) its
 * last part when leaf is 0, or path itself too when leaf is 1. */
static int mkdirs(const char *path, int leaf)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path), i;

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && !(leaf && tmp[i] == '\0'))
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -errno;
		tmp[i] = path[i];
	}
	return 0;
}

static int key_path(const struct ld_blob_store *s, const char *key, char *out, size_t cap)
{
	int n;

	if (!ld_blob_key_ok(key))
		return -EINVAL;
	n = snprintf(out, cap, "%s/%s", s->root, key);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int fs_open(const struct ld_blob_config *cfg, struct ld_blob_store **out, char *err,
		   size_t errlen)
{
	struct ld_blob_store *s = NULL;
	int rc = -EINVAL, n;

	*out = NULL;
	if (!cfg->data_dir || !cfg->data_dir[0]) {
		snprintf(err, errlen, "blob store fs: data directory not set");
		goto out;
	}
	rc = -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out;
	n = snprintf(s->root, sizeof(s->root), "%s/blobs", cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(s->root) - LD_BLOB_KEY_MAX - 32) {
		snprintf(err, errlen, "blob store fs: data directory path too long");
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = mkdirs(s->root, 1);
	if (rc != 0) {
		snprintf(err, errlen, "blob store fs: cannot create %s: %s", s->root,
			 strerror(-rc));
		goto out;
	}
	*out = s;
	s = NULL;
out:
	free(s);
	return rc;
}

static int fs_put_begin(struct ld_blob_store *s, const char *key, struct ld_blob_writer **out)
{
	struct ld_blob_writer *w;
	int rc, n;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	rc = key_path(s, key, w->path, sizeof(w->path));
	if (rc != 0)
		goto fail;
	n = snprintf(w->tmp, sizeof(w->tmp), "%s.tmp.%ld.%lu", w->path, (long)getpid(),
		     atomic_fetch_add(&tmp_seq, 1));
	if (n < 0 || (size_t)n >= sizeof(w->tmp)) {
		rc = -ENAMETOOLONG;
		goto fail;
	}
	rc = mkdirs(w->path, 0);
	if (rc != 0)
		goto fail;
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		rc = -errno;
		goto fail;
	}
	*out = w;
	return 0;
fail:
	free(w);
	return rc;
}

static int fs_put_write(struct ld_blob_writer *w, const void *p, size_t n)
{
	const char *c = p;

	while (w->err == 0 && n > 0) {
		ssize_t k = write(w->fd, c, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			w->err = k < 0 ? -errno : -EIO;
			break;
		}
		c += k;
		n -= (size_t)k;
	}
	return w->err;
}

static void writer_free(struct ld_blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int fs_put_commit(struct ld_blob_writer *w)
{
	int rc = w->err;

	if (rc != 0)
		goto fail;
	if (fsync(w->fd) != 0) {
		rc = -errno;
		goto fail;
	}
	if (close(w->fd) != 0) {
		w->fd = -1;
		rc = -errno;
		goto fail;
	}
	w->fd = -1;
	if (rename(w->tmp, w->path) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = fsync_dir_of(w->path);
	writer_free(w);
	return rc;
fail:
	unlink(w->tmp);
	writer_free(w);
	return rc;
}

static void fs_put_abort(struct ld_blob_writer *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	writer_free(w);
}

static int fs_get(struct ld_blob_store *s, const char *key, size_t max, char **out, size_t *len)
{
	char path[PATH_MAX];
	int rc = key_path(s, key, path, sizeof(path));

	if (rc != 0)
		return rc;
	return ld_read_file(path, max, out, len, NULL, 0);
}

static int fs_open_fd(struct ld_blob_store *s, const char *key, int *fd, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat st;
	int rc = key_path(s, key, path, sizeof(path)), f;

	if (rc != 0)
		return rc;
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = S_ISREG(st.st_mode) ? -errno : -ENOENT;
		close(f);
		return rc;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int fs_size(struct ld_blob_store *s, const char *key, uint64_t *out)
{
	char path[PATH_MAX];
	struct stat st;
	int rc = key_path(s, key, path, sizeof(path));

	if (rc != 0)
		return rc;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	*out = (uint64_t)st.st_size;
	return 0;
}

static int fs_remove(struct ld_blob_store *s, const char *key)
{
	char path[PATH_MAX];
	int rc = key_path(s, key, path, sizeof(path));

	if (rc != 0)
		return rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	/* Best effort: an emptied photo directory goes too (ENOTEMPTY while
	 * other versions remain is expected). */
	{
		char *slash = strrchr(path, '/');

		if (slash && slash > path + strlen(s->root)) {
			*slash = '\0';
			rmdir(path);
		}
	}
	return 0;
}

static int fs_move(struct ld_blob_store *s, const char *from, const char *to)
{
	char src[PATH_MAX], dst[PATH_MAX];
	int rc = key_path(s, from, src, sizeof(src));

	if (rc == 0)
		rc = key_path(s, to, dst, sizeof(dst));
	if (rc == 0)
		rc = mkdirs(dst, 0);
	if (rc != 0)
		return rc;
	if (rename(src, dst) != 0)
		return -errno;
	/* Both directories: the new name must survive a crash, and the old
	 * one must not come back (it would be moved again). */
	rc = fsync_dir_of(dst);
	if (rc == 0)
		rc = fsync_dir_of(src);
	return rc;
}

static void fs_close(struct ld_blob_store *s)
{
	free(s);
}

const struct ld_blob_vt ld_blob_fs_vt = {
    .name = "fs",
    .open = fs_open,
    .put_begin = fs_put_begin,
    .put_write = fs_put_write,
    .put_commit = fs_put_commit,
    .put_abort = fs_put_abort,
    .get = fs_get,
    .open_fd = fs_open_fd,
    .size = fs_size,
    .remove = fs_remove,
    .move = fs_move,
    .close = fs_close,
};
