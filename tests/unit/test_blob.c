/*
 * test_blob.c - the blob store contract on the fs driver: keys that could
 * leave the store are refused, puts are all or nothing, a streamed put in
 * many small writes stores the same bytes, removal is idempotent.
 */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob/blob.h"

static char tmpdir[] = "/tmp/ld_test_blob_XXXXXX";

static struct ld_blob_store *open_fs(void)
{
	struct ld_blob_config cfg = {.data_dir = tmpdir};
	struct ld_blob_store *s = NULL;
	char err[256] = "";

	CHECK_INT(ld_blob_fs_vt.open(&cfg, &s, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	return s;
}

/* count_entries counts the names in dir other than . and .. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_keys(void)
{
	char longkey[LD_BLOB_KEY_MAX + 2];

	CHECK(ld_blob_key_ok("photos/1/original"));
	CHECK(ld_blob_key_ok("photos/1/512.jpg"));
	CHECK(ld_blob_key_ok("a"));
	CHECK(ld_blob_key_ok("a/..b/c.")); /* dots inside a name are fine */
	CHECK(!ld_blob_key_ok(NULL));
	CHECK(!ld_blob_key_ok(""));
	CHECK(!ld_blob_key_ok("/etc/passwd"));
	CHECK(!ld_blob_key_ok("photos/../../x"));
	CHECK(!ld_blob_key_ok(".."));
	CHECK(!ld_blob_key_ok("a/./b"));
	CHECK(!ld_blob_key_ok("a//b"));
	CHECK(!ld_blob_key_ok("a/"));
	CHECK(!ld_blob_key_ok("Photos/1"));
	CHECK(!ld_blob_key_ok("a b"));
	CHECK(!ld_blob_key_ok("a\\b"));
	memset(longkey, 'a', LD_BLOB_KEY_MAX);
	longkey[LD_BLOB_KEY_MAX] = '\0';
	CHECK(ld_blob_key_ok(longkey));
	longkey[LD_BLOB_KEY_MAX] = 'a';
	longkey[LD_BLOB_KEY_MAX + 1] = '\0';
	CHECK(!ld_blob_key_ok(longkey));
}

static void test_put_get_remove(void)
{
	struct ld_blob_store *s = open_fs();
	char *buf = NULL, path[512];
	size_t len = 0;
	uint64_t size = 0;
	struct stat st;

	CHECK_INT(ld_blob_put(&ld_blob_fs_vt, s, "photos/7/original", "hello", 5), 0);
	CHECK_INT(ld_blob_fs_vt.size(s, "photos/7/original", &size), 0);
	CHECK_INT(size, 5);
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/7/original", 100, &buf, &len), 0);
	CHECK_INT(len, 5);
	CHECK_STR(buf, "hello");
	free(buf);
	buf = NULL;
	/* The file is where the contract says, private to the owner. */
	snprintf(path, sizeof(path), "%s/blobs/photos/7/original", tmpdir);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	/* A cap smaller than the object. */
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/7/original", 4, &buf, &len), -E2BIG);
	CHECK(buf == NULL);
	/* Replacing is atomic and whole. */
	CHECK_INT(ld_blob_put(&ld_blob_fs_vt, s, "photos/7/original", "bye", 3), 0);
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/7/original", 100, &buf, &len), 0);
	CHECK_INT(len, 3);
	CHECK_STR(buf, "bye");
	free(buf);
	buf = NULL;
	CHECK_INT(ld_blob_fs_vt.remove(s, "photos/7/original"), 0);
	CHECK_INT(ld_blob_fs_vt.size(s, "photos/7/original", &size), -ENOENT);
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/7/original", 100, &buf, &len), -ENOENT);
	/* Removing again is success: removal jobs are retried. */
	CHECK_INT(ld_blob_fs_vt.remove(s, "photos/7/original"), 0);
	/* The emptied photo directory went with its last object. */
	snprintf(path, sizeof(path), "%s/blobs/photos/7", tmpdir);
	CHECK_INT(stat(path, &st), -1);
	/* Bad keys never touch the disk. */
	CHECK_INT(ld_blob_put(&ld_blob_fs_vt, s, "../escape", "x", 1), -EINVAL);
	CHECK_INT(ld_blob_fs_vt.get(s, "../escape", 10, &buf, &len), -EINVAL);
	CHECK_INT(ld_blob_fs_vt.remove(s, "/etc/passwd"), -EINVAL);
	ld_blob_fs_vt.close(s);
}

static void test_streamed_put_and_abort(void)
{
	struct ld_blob_store *s = open_fs();
	struct ld_blob_writer *w = NULL;
	char *buf = NULL, dir[512], chunk[1000];
	size_t len = 0, i;

	/* 3 MB in 1000-byte writes: the writer holds no copy of the bytes. */
	CHECK_INT(ld_blob_fs_vt.put_begin(s, "photos/8/original", &w), 0);
	for (i = 0; i < 3000; i++) {
		memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
		CHECK_INT(ld_blob_fs_vt.put_write(w, chunk, sizeof(chunk)), 0);
	}
	/* Not visible before commit. */
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/8/original", 1 << 23, &buf, &len), -ENOENT);
	CHECK_INT(ld_blob_fs_vt.put_commit(w), 0);
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/8/original", 1 << 23, &buf, &len), 0);
	CHECK_INT(len, 3000000);
	if (buf && len == 3000000) {
		CHECK_INT(buf[0], 'a');
		CHECK_INT(buf[999], 'a');
		CHECK_INT(buf[1000], 'b');
		CHECK_INT(buf[2999999], 'a' + 2999 % 26);
	}
	free(buf);
	buf = NULL;
	/* An aborted put leaves the old object and no temporary file. */
	CHECK_INT(ld_blob_fs_vt.put_begin(s, "photos/8/original", &w), 0);
	CHECK_INT(ld_blob_fs_vt.put_write(w, "partial", 7), 0);
	ld_blob_fs_vt.put_abort(w);
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/8/original", 1 << 23, &buf, &len), 0);
	CHECK_INT(len, 3000000);
	free(buf);
	snprintf(dir, sizeof(dir), "%s/blobs/photos/8", tmpdir);
	CHECK_INT(count_entries(dir), 1);
	CHECK_INT(ld_blob_fs_vt.remove(s, "photos/8/original"), 0);
	ld_blob_fs_vt.close(s);
}

static void test_move(void)
{
	struct ld_blob_store *s = open_fs();
	char *buf = NULL, path[512];
	size_t len = 0;
	struct stat st;

	CHECK_INT(ld_blob_put(&ld_blob_fs_vt, s, "uploads/30/original", "new", 3), 0);
	CHECK_INT(ld_blob_put(&ld_blob_fs_vt, s, "photos/30/original", "old!", 4), 0);
	/* Replaces what was at the target, into a directory made for it. */
	CHECK_INT(ld_blob_fs_vt.move(s, "uploads/30/original", "photos/30/original"), 0);
	CHECK_INT(ld_blob_fs_vt.get(s, "photos/30/original", 100, &buf, &len), 0);
	CHECK_STR(buf, "new");
	free(buf);
	snprintf(path, sizeof(path), "%s/blobs/uploads/30/original", tmpdir);
	CHECK_INT(stat(path, &st), -1);
	/* Nothing to move: -ENOENT, the target left alone. */
	CHECK_INT(ld_blob_fs_vt.move(s, "uploads/30/original", "photos/30/original"), -ENOENT);
	CHECK_INT(ld_blob_fs_vt.size(s, "photos/30/original", &(uint64_t){0}), 0);
	CHECK_INT(ld_blob_put(&ld_blob_fs_vt, s, "uploads/31/original", "x", 1), 0);
	CHECK_INT(ld_blob_fs_vt.move(s, "uploads/31/original", "photos/31/original"), 0);
	CHECK_INT(ld_blob_fs_vt.move(s, "uploads/31/original", "../x"), -EINVAL);
	CHECK_INT(ld_blob_fs_vt.remove(s, "photos/30/original"), 0);
	CHECK_INT(ld_blob_fs_vt.remove(s, "photos/31/original"), 0);
	ld_blob_fs_vt.close(s);
}

static void test_open_errors(void)
{
	struct ld_blob_config cfg = {.data_dir = "/proc/ladder-no-such-dir"};
	struct ld_blob_store *s = NULL;
	char err[256] = "";

	CHECK(ld_blob_fs_vt.open(&cfg, &s, err, sizeof(err)) < 0);
	CHECK(s == NULL);
	CHECK(strstr(err, "blob store fs: cannot create /proc/ladder-no-such-dir") != NULL);
	cfg.data_dir = "";
	CHECK_INT(ld_blob_fs_vt.open(&cfg, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "blob store fs: data directory not set");
	CHECK(ld_blob_driver("fs") == &ld_blob_fs_vt);
	CHECK(ld_blob_driver("nfs") == NULL);
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(test_keys);
	RUN(test_put_get_remove);
	RUN(test_streamed_put_and_abort);
	RUN(test_move);
	RUN(test_open_errors);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			return 1;
	}
	return unit_finish();
}
