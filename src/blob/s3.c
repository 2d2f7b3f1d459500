/*
 * s3.c - the S3 blob driver: any S3-compatible service by endpoint URL,
 * path-style or virtual-host style, requests signed with SigV4 (sigv4.h)
 * and sent with libcurl. Contract in blob.h.
 *
 * A put is written to a temporary file under data_dir/blobs-tmp first and
 * sent on commit in one PUT, so the caller may stream it in pieces and S3
 * still sees a single object of known length (no multipart for the sizes a
 * photo has); S3 makes an object visible whole or not at all. Payloads are
 * sent as UNSIGNED-PAYLOAD (the header signature covers method, path, host
 * and date; TLS protects the bytes).
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "blob/blob.h"
#include "blob/sigv4.h"
#include "obs/log.h"

#define S3_TIMEOUT_S 60

struct ld_blob_store {
	char scheme[8];	 /* "http" or "https" */
	char host[300];	 /* the Host header: endpoint host[:port], with the bucket in front
			  * for virtual-host style */
	char prefix[80]; /* "/bucket" for path style, "" for virtual-host */
	char bucket[64];
	char region[32];
	char access_key[128];
	char secret_key[128];
	char tmpdir[PATH_MAX];
};

struct ld_blob_writer {
	struct ld_blob_store *s;
	int fd;
	int err;
	char key[LD_BLOB_KEY_MAX + 1];
	char tmp[PATH_MAX];
};

static uv_once_t curl_once = UV_ONCE_INIT;
static _Atomic unsigned long tmp_seq;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int copy(char *dst, size_t cap, const char *src)
{
	int n = snprintf(dst, cap, "%s", src ? src : "");

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int s3_open(const struct ld_blob_config *cfg, struct ld_blob_store **out, char *err,
		   size_t errlen)
{
	struct ld_blob_store *s = NULL;
	const char *hp;
	int rc = -EINVAL, n;

	*out = NULL;
	uv_once(&curl_once, curl_init);
	if (!cfg->endpoint || !cfg->bucket || !cfg->bucket[0] || !cfg->access_key ||
	    !cfg->secret_key || !cfg->data_dir) {
		snprintf(err, errlen,
			 "blob store s3: endpoint, bucket, keys and data dir must be set");
		goto out;
	}
	if (strncmp(cfg->endpoint, "http://", 7) == 0) {
		hp = cfg->endpoint + 7;
	} else if (strncmp(cfg->endpoint, "https://", 8) == 0) {
		hp = cfg->endpoint + 8;
	} else {
		snprintf(err, errlen,
			 "blob store s3: endpoint '%.100s' is not http(s)://host[:port]",
			 cfg->endpoint);
		goto out;
	}
	if (!hp[0] || strchr(hp, '/') || strlen(cfg->bucket) > 63) {
		snprintf(err, errlen, "blob store s3: endpoint '%.100s' or bucket is malformed",
			 cfg->endpoint);
		goto out;
	}
	rc = -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out;
	snprintf(s->scheme, sizeof(s->scheme), "%s", hp == cfg->endpoint + 7 ? "http" : "https");
	rc = -ENAMETOOLONG;
	if (cfg->path_style) {
		if (copy(s->host, sizeof(s->host), hp) ||
		    snprintf(s->prefix, sizeof(s->prefix), "/%s", cfg->bucket) < 0)
			goto fail;
	} else {
		n = snprintf(s->host, sizeof(s->host), "%s.%s", cfg->bucket, hp);
		if (n < 0 || (size_t)n >= sizeof(s->host))
			goto fail;
	}
	if (copy(s->bucket, sizeof(s->bucket), cfg->bucket) ||
	    copy(s->region, sizeof(s->region),
		 cfg->region && cfg->region[0] ? cfg->region : "us-east-1") ||
	    copy(s->access_key, sizeof(s->access_key), cfg->access_key) ||
	    copy(s->secret_key, sizeof(s->secret_key), cfg->secret_key))
		goto fail;
	n = snprintf(s->tmpdir, sizeof(s->tmpdir), "%s/blobs-tmp", cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(s->tmpdir) - 64)
		goto fail;
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "blob store s3: cannot create %s: %s", cfg->data_dir,
			 strerror(errno));
		goto fail;
	}
	if (mkdir(s->tmpdir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "blob store s3: cannot create %s: %s", s->tmpdir,
			 strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (rc == -ENAMETOOLONG)
		snprintf(err, errlen, "blob store s3: a setting is too long");
	free(s);
out:
	return rc;
}

static void amz_now(char out[17])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int object_path(const struct ld_blob_store *s, const char *key, char *out, size_t cap)
{
	char enc[LD_BLOB_KEY_MAX * 3 + 1];
	int n;

	if (!ld_blob_key_ok(key))
		return -EINVAL;
	if (ld_sigv4_uri_encode(key, 1, enc, sizeof(enc)) != 0)
		return -ENAMETOOLONG;
	n = snprintf(out, cap, "%s/%s", s->prefix, enc);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

struct sink {
	CURL *e;
	char *data;
	size_t len, max;
	bool over;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *k = arg;
	size_t n = size * nmemb;
	long status = 0;
	char *d;

	curl_easy_getinfo(k->e, CURLINFO_RESPONSE_CODE, &status);
	if (!k->max || status >= 300)
		return n; /* not wanted, or an error document: dropped */
	if (k->len + n > k->max) {
		k->over = true;
		return 0;
	}
	d = realloc(k->data, k->len + n + 1);
	if (!d)
		return 0;
	k->data = d;
	memcpy(d + k->len, p, n);
	k->len += n;
	d[k->len] = '\0';
	return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *arg)
{
	int fd = *(int *)arg;
	ssize_t n = fd < 0 ? 0 : read(fd, p, size * nmemb); /* a copy: no body */

	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

/*
 * request sends one signed request. fd/len: a PUT body; src: for a PUT,
 * the "/bucket/key" of a server-side copy (x-amz-copy-source; the body is
 * then empty), else NULL; k: where a GET's body goes (max 0: dropped);
 * *status gets the HTTP status, *clen the Content-Length of a HEAD. 0 when
 * the exchange happened (whatever its status), -EIO when it did not.
 */
static int request(struct ld_blob_store *s, const char *method, const char *key, int fd,
		   uint64_t len, const char *src, struct sink *k, long *status, curl_off_t *clen)
{
	const struct ld_sigv4_creds c = {s->access_key, s->secret_key, s->region, "s3"};
	char path[LD_BLOB_KEY_MAX * 3 + 128], url[2048], date[17], auth[512], h1[600], h2[64];
	char h3[LD_BLOB_KEY_MAX * 3 + 128];
	struct ld_sigv4_header hs[4];
	struct curl_slist *hl = NULL;
	CURL *e = NULL;
	CURLcode cc;
	unsigned nh = 0;
	int rc;

	rc = object_path(s, key, path, sizeof(path));
	if (rc)
		return rc;
	snprintf(url, sizeof(url), "%s://%s%s", s->scheme, s->host, path);
	amz_now(date);
	/* Sorted by name, as SigV4 wants; S3 wants every x-amz- header
	 * signed. */
	hs[nh++] = (struct ld_sigv4_header){"host", s->host};
	hs[nh++] = (struct ld_sigv4_header){"x-amz-content-sha256", "UNSIGNED-PAYLOAD"};
	if (src)
		hs[nh++] = (struct ld_sigv4_header){"x-amz-copy-source", src};
	hs[nh++] = (struct ld_sigv4_header){"x-amz-date", date};
	rc = ld_sigv4_authorization(&c, method, path, "", hs, nh, "UNSIGNED-PAYLOAD", date, auth,
				    sizeof(auth));
	if (rc)
		return rc;
	rc = -EIO;
	e = curl_easy_init();
	if (!e)
		goto out;
	snprintf(h1, sizeof(h1), "Authorization: %s", auth);
	snprintf(h2, sizeof(h2), "x-amz-date: %s", date);
	hl = curl_slist_append(hl, h1);
	hl = curl_slist_append(hl, h2);
	if (src) {
		snprintf(h3, sizeof(h3), "x-amz-copy-source: %s", src);
		hl = curl_slist_append(hl, h3);
	}
	hl = curl_slist_append(hl, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
	if (!hl)
		goto out;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)S3_TIMEOUT_S);
	k->e = e;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &fd);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	}
	cc = curl_easy_perform(e);
	if (cc != CURLE_OK) {
		if (k->over) {
			rc = -E2BIG;
			goto out;
		}
		ld_log_event("error", "blob store s3: request failed",
			     (const char *const[]){"method", method, "key", key, "error",
						   curl_easy_strerror(cc), NULL});
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	if (clen)
		curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, clen);
	rc = 0;
out:
	curl_slist_free_all(hl);
	if (e)
		curl_easy_cleanup(e);
	return rc;
}

static int status_rc(const char *method, const char *key, long status)
{
	char st[16];

	if (status >= 200 && status < 300)
		return 0;
	if (status == 404)
		return -ENOENT;
	snprintf(st, sizeof(st), "%ld", status);
	ld_log_event("error", "blob store s3: refused",
		     (const char *const[]){"method", method, "key", key, "status", st, NULL});
	return status == 403 ? -EACCES : -EIO;
}

static int s3_put_begin(struct ld_blob_store *s, const char *key, struct ld_blob_writer **out)
{
	struct ld_blob_writer *w;
	int n;

	*out = NULL;
	if (!ld_blob_key_ok(key))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->s = s;
	snprintf(w->key, sizeof(w->key), "%s", key);
	n = snprintf(w->tmp, sizeof(w->tmp), "%s/put.%ld.%lu", s->tmpdir, (long)getpid(),
		     atomic_fetch_add(&tmp_seq, 1));
	if (n < 0 || (size_t)n >= sizeof(w->tmp)) {
		free(w);
		return -ENAMETOOLONG;
	}
	w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		n = -errno;
		free(w);
		return n;
	}
	*out = w;
	return 0;
}

static int s3_put_write(struct ld_blob_writer *w, const void *p, size_t n)
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
	close(w->fd);
	unlink(w->tmp);
	free(w);
}

static int s3_put_commit(struct ld_blob_writer *w)
{
	struct sink k = {0};
	struct stat st;
	long status = 0;
	int rc = w->err;

	if (rc == 0 && (fstat(w->fd, &st) != 0 || lseek(w->fd, 0, SEEK_SET) != 0))
		rc = -errno;
	if (rc == 0)
		rc = request(w->s, "PUT", w->key, w->fd, (uint64_t)st.st_size, NULL, &k, &status,
			     NULL);
	if (rc == 0)
		rc = status_rc("PUT", w->key, status);
	free(k.data);
	writer_free(w);
	return rc;
}

static void s3_put_abort(struct ld_blob_writer *w)
{
	if (w)
		writer_free(w);
}

static int s3_get(struct ld_blob_store *s, const char *key, size_t max, char **out, size_t *len)
{
	struct sink k = {.max = max};
	long status = 0;
	int rc = request(s, "GET", key, -1, 0, NULL, &k, &status, NULL);

	if (rc == 0)
		rc = status_rc("GET", key, status);
	if (rc == 0 && !k.data) {
		k.data = malloc(1); /* an empty object */
		if (!k.data)
			rc = -ENOMEM;
		else
			k.data[0] = '\0';
	}
	if (rc) {
		free(k.data);
		return rc;
	}
	*out = k.data;
	*len = k.len;
	return 0;
}

static int s3_size(struct ld_blob_store *s, const char *key, uint64_t *out)
{
	struct sink k = {0};
	curl_off_t clen = -1;
	long status = 0;
	int rc = request(s, "HEAD", key, -1, 0, NULL, &k, &status, &clen);

	if (rc == 0)
		rc = status_rc("HEAD", key, status);
	if (rc == 0 && clen < 0)
		rc = -EIO;
	if (rc == 0)
		*out = (uint64_t)clen;
	return rc;
}

static int s3_remove(struct ld_blob_store *s, const char *key)
{
	struct sink k = {0};
	long status = 0;
	int rc = request(s, "DELETE", key, -1, 0, NULL, &k, &status, NULL);

	if (rc == 0)
		rc = status_rc("DELETE", key, status);
	return rc == -ENOENT ? 0 : rc; /* gone already: done */
}

/* s3_move: S3 has no rename; a server-side copy (the bytes stay in the
 * object store), then a delete of the source. A reader of to sees the old
 * object or the whole copy. */
static int s3_move(struct ld_blob_store *s, const char *from, const char *to)
{
	struct sink k = {.max = 4096};
	char enc[LD_BLOB_KEY_MAX * 3 + 1], src[LD_BLOB_KEY_MAX * 3 + 80];
	long status = 0;
	int rc, n;

	if (!ld_blob_key_ok(from) || !ld_blob_key_ok(to))
		return -EINVAL;
	if (ld_sigv4_uri_encode(from, 1, enc, sizeof(enc)) != 0)
		return -ENAMETOOLONG;
	n = snprintf(src, sizeof(src), "/%s/%s", s->bucket, enc);
	if (n < 0 || (size_t)n >= sizeof(src))
		return -ENAMETOOLONG;
	rc = request(s, "PUT", to, -1, 0, src, &k, &status, NULL);
	if (rc == 0)
		rc = status_rc("COPY", from, status);
	/* A copy can fail after its 200 has been sent: the error is then in
	 * the body. */
	if (rc == 0 && k.data && strstr(k.data, "<Error>")) {
		ld_log_event("error", "blob store s3: copy failed",
			     (const char *const[]){"from", from, "to", to, NULL});
		rc = -EIO;
	}
	free(k.data);
	if (rc == 0)
		rc = s3_remove(s, from);
	return rc;
}

static int s3_presign(struct ld_blob_store *s, const char *method, const char *key,
		      int64_t expires_s, char *out, size_t cap)
{
	const struct ld_sigv4_creds c = {s->access_key, s->secret_key, s->region, "s3"};
	char path[LD_BLOB_KEY_MAX * 3 + 128], date[17], q[1024];
	int rc, n;

	rc = object_path(s, key, path, sizeof(path));
	if (rc)
		return rc;
	amz_now(date);
	rc = ld_sigv4_presign(&c, method, s->host, path, expires_s, date, q, sizeof(q));
	if (rc)
		return rc;
	n = snprintf(out, cap, "%s://%s%s?%s", s->scheme, s->host, path, q);
	return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

static void s3_close(struct ld_blob_store *s)
{
	free(s);
}

const struct ld_blob_vt ld_blob_s3_vt = {
    .name = "s3",
    .open = s3_open,
    .put_begin = s3_put_begin,
    .put_write = s3_put_write,
    .put_commit = s3_put_commit,
    .put_abort = s3_put_abort,
    .get = s3_get,
    .size = s3_size,
    .remove = s3_remove,
    .move = s3_move,
    .close = s3_close,
    .presign = s3_presign,
};
