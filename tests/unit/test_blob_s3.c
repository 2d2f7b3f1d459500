/*
 * test_blob_s3.c - the blob store contract on the s3 driver, against a real
 * S3 protocol server: s3rver (npm; scripts/deps.sh installs it), started
 * here on a free loopback port with a fresh directory and a bucket, and
 * stopped at the end. s3rver 3.7.1 parses SigV4 (and refuses an unknown
 * access key) but does not check V4 signatures, so their correctness is
 * test_sigv4.c's business (AWS's published examples); this test proves the
 * protocol: paths, methods, statuses, bodies, presigned URLs that a client
 * without our headers can use. LADDER_TEST_S3_ENDPOINT points it at an S3
 * service of one's own instead (bucket "photos", keys S3RVER/S3RVER).
 * Without s3rver the test fails saying so: it cannot pass by not running.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "blob/blob.h"

static char tmpdir[] = "/tmp/ld_test_blob_s3_XXXXXX";
static const char *endpoint;

static struct ld_blob_store *open_s3(const char *access_key)
{
	struct ld_blob_config cfg = {.data_dir = tmpdir,
				     .endpoint = endpoint,
				     .bucket = "photos",
				     .region = "us-east-1",
				     .access_key = access_key,
				     .secret_key = "S3RVER",
				     .path_style = true};
	struct ld_blob_store *s = NULL;
	char err[256] = "";

	CHECK_INT(ld_blob_s3_vt.open(&cfg, &s, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	return s;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct {
		char buf[256];
		size_t len;
	} *c = arg;
	size_t k = size * n;

	if (c->len + k < sizeof(c->buf)) {
		memcpy(c->buf + c->len, p, k);
		c->len += k;
		c->buf[c->len] = '\0';
	}
	return k;
}

/* fetch sends method to url (a presigned URL: no headers of ours) with
 * body (PUT) and returns the status; the answer's start goes to out. */
static long fetch(const char *method, const char *url, const char *body, char *out, size_t cap)
{
	struct {
		char buf[256];
		size_t len;
	} c = {"", 0};
	CURL *e = curl_easy_init();
	long status = 0;

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &c);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	}
	if (curl_easy_perform(e) == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	snprintf(out, cap, "%s", c.buf);
	return status;
}

static void test_put_get_size_remove(void)
{
	struct ld_blob_store *s = open_s3("S3RVER");
	struct ld_blob_writer *w = NULL;
	char *buf = NULL, chunk[1000];
	size_t len = 0, i;
	uint64_t size = 0;

	CHECK_INT(ld_blob_put(&ld_blob_s3_vt, s, "photos/7/original", "hello", 5), 0);
	CHECK_INT(ld_blob_s3_vt.size(s, "photos/7/original", &size), 0);
	CHECK_INT(size, 5);
	CHECK_INT(ld_blob_s3_vt.get(s, "photos/7/original", 100, &buf, &len), 0);
	CHECK_INT(len, 5);
	CHECK_STR(buf, "hello");
	free(buf);
	buf = NULL;
	CHECK_INT(ld_blob_s3_vt.get(s, "photos/7/original", 4, &buf, &len), -E2BIG);
	CHECK(buf == NULL);
	/* Streamed in pieces, one object of the whole length. */
	CHECK_INT(ld_blob_s3_vt.put_begin(s, "photos/8/512.jpg", &w), 0);
	for (i = 0; i < 300; i++) {
		memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
		CHECK_INT(ld_blob_s3_vt.put_write(w, chunk, sizeof(chunk)), 0);
	}
	CHECK_INT(ld_blob_s3_vt.size(s, "photos/8/512.jpg", &size), -ENOENT);
	CHECK_INT(ld_blob_s3_vt.put_commit(w), 0);
	CHECK_INT(ld_blob_s3_vt.get(s, "photos/8/512.jpg", 1 << 20, &buf, &len), 0);
	CHECK_INT(len, 300000);
	if (buf && len == 300000) {
		CHECK_INT(buf[999], 'a');
		CHECK_INT(buf[1000], 'b');
		CHECK_INT(buf[299999], 'a' + 299 % 26);
	}
	free(buf);
	buf = NULL;
	/* An aborted put leaves nothing. */
	CHECK_INT(ld_blob_s3_vt.put_begin(s, "photos/9/original", &w), 0);
	CHECK_INT(ld_blob_s3_vt.put_write(w, "x", 1), 0);
	ld_blob_s3_vt.put_abort(w);
	CHECK_INT(ld_blob_s3_vt.size(s, "photos/9/original", &size), -ENOENT);
	/* Remove, and remove again. */
	CHECK_INT(ld_blob_s3_vt.remove(s, "photos/7/original"), 0);
	CHECK_INT(ld_blob_s3_vt.get(s, "photos/7/original", 100, &buf, &len), -ENOENT);
	CHECK_INT(ld_blob_s3_vt.remove(s, "photos/7/original"), 0);
	CHECK_INT(ld_blob_s3_vt.remove(s, "photos/8/512.jpg"), 0);
	CHECK_INT(ld_blob_s3_vt.get(s, "../x", 100, &buf, &len), -EINVAL);
	ld_blob_s3_vt.close(s);
}

/* move is a server-side copy and a delete of the source. */
static void test_move(void)
{
	struct ld_blob_store *s = open_s3("S3RVER");
	char *buf = NULL;
	size_t len = 0;
	uint64_t size = 0;

	CHECK_INT(ld_blob_put(&ld_blob_s3_vt, s, "uploads/30/original", "new bytes", 9), 0);
	CHECK_INT(ld_blob_put(&ld_blob_s3_vt, s, "photos/30/original", "old", 3), 0);
	CHECK_INT(ld_blob_s3_vt.move(s, "uploads/30/original", "photos/30/original"), 0);
	CHECK_INT(ld_blob_s3_vt.get(s, "photos/30/original", 100, &buf, &len), 0);
	CHECK_STR(buf, "new bytes");
	free(buf);
	CHECK_INT(ld_blob_s3_vt.size(s, "uploads/30/original", &size), -ENOENT);
	/* Nothing to move: -ENOENT, the target left alone. */
	CHECK_INT(ld_blob_s3_vt.move(s, "uploads/30/original", "photos/30/original"), -ENOENT);
	CHECK_INT(ld_blob_s3_vt.size(s, "photos/30/original", &size), 0);
	CHECK_INT(size, 9);
	CHECK_INT(ld_blob_s3_vt.move(s, "uploads/30/original", "../x"), -EINVAL);
	CHECK_INT(ld_blob_s3_vt.remove(s, "photos/30/original"), 0);
	ld_blob_s3_vt.close(s);
}

static void test_unknown_access_key_is_refused(void)
{
	struct ld_blob_store *s = open_s3("NOSUCHKEY");

	CHECK_INT(ld_blob_put(&ld_blob_s3_vt, s, "photos/1/original", "x", 1), -EACCES);
	ld_blob_s3_vt.close(s);
}

static void test_presigned_urls(void)
{
	struct ld_blob_store *s = open_s3("S3RVER"), *bad = open_s3("NOSUCHKEY");
	char url[2048], got[256];
	char *buf = NULL;
	size_t len = 0;

	/* A client PUTs straight to the store with the URL alone. */
	CHECK_INT(ld_blob_s3_vt.presign(s, "PUT", "photos/20/original", 600, url, sizeof(url)), 0);
	CHECK(strncmp(url, endpoint, strlen(endpoint)) == 0);
	CHECK(strstr(url, "/photos/photos/20/original?X-Amz-Algorithm=AWS4-HMAC-SHA256&") != NULL);
	CHECK_INT(fetch("PUT", url, "direct bytes", got, sizeof(got)), 200);
	CHECK_INT(ld_blob_s3_vt.get(s, "photos/20/original", 100, &buf, &len), 0);
	CHECK_STR(buf, "direct bytes");
	free(buf);
	CHECK_INT(ld_blob_s3_vt.presign(s, "GET", "photos/20/original", 600, url, sizeof(url)), 0);
	CHECK_INT(fetch("GET", url, NULL, got, sizeof(got)), 200);
	CHECK_STR(got, "direct bytes");
	/* Signed for an unknown access key: refused. */
	CHECK_INT(ld_blob_s3_vt.presign(bad, "GET", "photos/20/original", 600, url, sizeof(url)),
		  0);
	CHECK_INT(fetch("GET", url, NULL, got, sizeof(got)), 403);
	CHECK_INT(ld_blob_s3_vt.remove(s, "photos/20/original"), 0);
	ld_blob_s3_vt.close(s);
	ld_blob_s3_vt.close(bad);
}

static void test_open_errors(void)
{
	struct ld_blob_config cfg = {.data_dir = tmpdir,
				     .endpoint = "ftp://x",
				     .bucket = "b",
				     .access_key = "a",
				     .secret_key = "s"};
	struct ld_blob_store *s = NULL;
	char err[256] = "";

	CHECK_INT(ld_blob_s3_vt.open(&cfg, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "blob store s3: endpoint 'ftp://x' is not http(s)://host[:port]");
	cfg.endpoint = "http://h:1";
	cfg.bucket = "";
	CHECK_INT(ld_blob_s3_vt.open(&cfg, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "blob store s3: endpoint, bucket, keys and data dir must be set");
	CHECK(ld_blob_driver("s3") == &ld_blob_s3_vt);
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &n) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int listening(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* start_s3rver runs s3rver on a free port; its pid, or -1. */
static pid_t start_s3rver(char *url, size_t cap)
{
	char dir[512], portstr[16];
	int port = free_port(), i;
	pid_t pid = -1;

	snprintf(dir, sizeof(dir), "%s/s3rver", tmpdir);
	snprintf(portstr, sizeof(portstr), "%d", port);
	{
		char *argv[] = {"s3rver", "-d",	       dir,
				"-a",	  "127.0.0.1", "-p",
				portstr,  "-s",	       "--configure-bucket",
				"photos", NULL};

		posix_spawn_file_actions_t fa;
		int rc;

		/* Its banner would mix with this test's output. */
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		rc = port > 0 ? posix_spawnp(&pid, "s3rver", &fa, NULL, argv, environ) : -1;
		posix_spawn_file_actions_destroy(&fa);
		if (rc != 0)
			return -1;
	}
	/* Up to 20 s for node to start on a loaded machine. */
	for (i = 0; i < 400 && !listening(port); i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		nanosleep(&ts, NULL);
	}
	if (!listening(port)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	snprintf(url, cap, "http://127.0.0.1:%d", port);
	return pid;
}

int main(void)
{
	static char url[64];
	char cmd[128];
	pid_t pid = -1;
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	endpoint = getenv("LADDER_TEST_S3_ENDPOINT");
	if (!endpoint || !endpoint[0]) {
		pid = start_s3rver(url, sizeof(url));
		if (pid < 0) {
			fprintf(stderr, "test_blob_s3: cannot start s3rver (npm install -g "
					"s3rver@3.7.1; scripts/deps.sh test does it)\n");
			return 1;
		}
		endpoint = url;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_put_get_size_remove);
	RUN(test_move);
	RUN(test_unknown_access_key_is_refused);
	RUN(test_presigned_urls);
	RUN(test_open_errors);
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	rc = system(cmd);
	(void)rc;
	return unit_finish();
}
