#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"

static char tmpdir[] = "/tmp/ld_test_file_XXXXXX";

/* put writes n bytes of a repeating pattern to tmpdir/name; returns the path. */
static const char *put(const char *name, size_t n)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f)
		return path;
	for (size_t i = 0; i < n; i++)
		fputc('a' + (int)(i % 26), f);
	fclose(f);
	return path;
}

/* pattern_ok: buf holds the pattern put() writes, then a NUL. */
static int pattern_ok(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != 'a' + (int)(i % 26))
			return 0;
	return buf[n] == '\0';
}

static void test_small_file(void)
{
	const char *path = put("small", 5);
	char *out = NULL, err[256];
	size_t len = 99;

	CHECK_INT(ld_read_file(path, 100, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 5);
	CHECK_STR(out, "abcde");
	CHECK_STR(err, "");
	free(out);
}

static void test_empty_file(void)
{
	const char *path = put("empty", 0);
	char *out = NULL, err[256];
	size_t len = 99;

	CHECK_INT(ld_read_file(path, 100, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 0);
	CHECK(out != NULL);
	CHECK_STR(out, "");
	free(out);
	/* Even a cap of zero takes an empty file. */
	out = NULL;
	CHECK_INT(ld_read_file(path, 0, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 0);
	CHECK(out != NULL);
	free(out);
}

static void test_exactly_max_and_one_more(void)
{
	const char *path = put("max", 64);
	char *out = NULL, err[256], want[512];
	size_t len = 0;

	CHECK_INT(ld_read_file(path, 64, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 64);
	CHECK(out && pattern_ok(out, 64));
	free(out);

	out = NULL;
	len = 7;
	CHECK_INT(ld_read_file(path, 63, &out, &len, err, sizeof(err)), -E2BIG);
	CHECK(out == NULL);
	CHECK_INT(len, 7);
	snprintf(want, sizeof(want), "%s: larger than 63 bytes", path);
	CHECK_STR(err, want);

	CHECK_INT(ld_read_file(put("one", 1), 0, &out, &len, err, sizeof(err)), -E2BIG);
	CHECK(out == NULL);
}

/* Files past the first allocation (64 KiB) make the buffer grow; the cap
 * is still exact there. */
static void test_large_file_grows(void)
{
	size_t n = 300 * 1000 + 7;
	const char *path = put("large", n);
	char *out = NULL, err[256], want[512];
	size_t len = 0;

	CHECK_INT(ld_read_file(path, 1 << 20, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, n);
	CHECK(out && pattern_ok(out, n));
	free(out);
	out = NULL;
	CHECK_INT(ld_read_file(path, n, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, n);
	free(out);
	out = NULL;
	CHECK_INT(ld_read_file(path, n - 1, &out, &len, err, sizeof(err)), -E2BIG);
	CHECK(out == NULL);
	snprintf(want, sizeof(want), "%s: larger than %zu bytes", path, n - 1);
	CHECK_STR(err, want);
}

static void test_missing_file(void)
{
	char *out = NULL, err[256], path[256], want[512];
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/nope", tmpdir);
	CHECK_INT(ld_read_file(path, 100, &out, &len, err, sizeof(err)), -ENOENT);
	CHECK(out == NULL);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	CHECK_STR(err, want);
	/* No room for a message is fine too. */
	CHECK_INT(ld_read_file(path, 100, &out, &len, NULL, 0), -ENOENT);
}

static void test_directory(void)
{
	char *out = NULL, err[256], want[512];
	size_t len = 0;

	CHECK_INT(ld_read_file(tmpdir, 100, &out, &len, err, sizeof(err)), -EISDIR);
	CHECK(out == NULL);
	snprintf(want, sizeof(want), "%s: %s", tmpdir, strerror(EISDIR));
	CHECK_STR(err, want);
}

static void test_fd_from_offset_stays_open(void)
{
	const char *path = put("fd", 10);
	char *out = NULL, err[256];
	size_t len = 0;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	CHECK_INT(lseek(fd, 4, SEEK_SET), 4);
	CHECK_INT(ld_read_fd(fd, "fd-name", 6, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 6);
	CHECK_STR(out, "efghij");
	free(out);
	/* Still open (at the end): a second read gives nothing. */
	out = NULL;
	CHECK_INT(ld_read_fd(fd, "fd-name", 6, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 0);
	free(out);
	CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
	out = NULL;
	CHECK_INT(ld_read_fd(fd, "fd-name", 9, &out, &len, err, sizeof(err)), -E2BIG);
	CHECK_STR(err, "fd-name: larger than 9 bytes");
	CHECK(out == NULL);
	close(fd);
	/* A closed descriptor is an error from read(), with the name given. */
	CHECK_INT(ld_read_fd(fd, "fd-name", 9, &out, &len, err, sizeof(err)), -EBADF);
	CHECK(strncmp(err, "fd-name: ", 9) == 0);
}

/* A pipe delivers in pieces; all of them are gathered. */
static void test_pipe_in_pieces(void)
{
	int p[2];
	char *out = NULL, err[256];
	size_t len = 0;

	CHECK_INT(pipe(p), 0);
	CHECK_INT(write(p[1], "abc", 3), 3);
	CHECK_INT(write(p[1], "def", 3), 3);
	close(p[1]);
	CHECK_INT(ld_read_fd(p[0], "pipe", 100, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 6);
	CHECK_STR(out, "abcdef");
	free(out);
	close(p[0]);
}

static void test_absurd_cap_refused(void)
{
	const char *path = put("cap", 1);
	char *out = NULL, err[256];
	size_t len = 0;

	CHECK_INT(ld_read_file(path, (size_t)-1, &out, &len, err, sizeof(err)), -EINVAL);
	CHECK(out == NULL);
	CHECK_INT(ld_read_file(path, LD_FILE_MAX_CAP, &out, &len, err, sizeof(err)), 0);
	CHECK_INT(len, 1);
	free(out);
}

int main(void)
{
	char cmd[300];
	int rc;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_small_file);
	RUN(test_empty_file);
	RUN(test_exactly_max_and_one_more);
	RUN(test_large_file_grows);
	RUN(test_missing_file);
	RUN(test_directory);
	RUN(test_fd_from_offset_stays_open);
	RUN(test_pipe_in_pieces);
	RUN(test_absurd_cap_refused);
	rc = unit_finish();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
