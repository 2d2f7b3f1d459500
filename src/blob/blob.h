/*
 * blob.h - object storage for photo bytes, behind a const function table like
 * the store's: `fs` (files under the data directory) today, `s3` next.
 * Photo bytes never go into the database; the database holds keys.
 *
 * Keys are relative names of 1..LD_BLOB_KEY_MAX bytes made of [a-z0-9._-]
 * and '/', with no empty, "." or ".." part and no leading or trailing '/'
 * ("photos/123/original", "photos/123/512.jpg"). Anything else is -EINVAL,
 * so a key can never name a file outside the store.
 *
 * Writes are all or nothing: put_begin opens a temporary object, put_write
 * appends (any number of times, any size, so a caller streaming a request
 * body needs only its own chunk in memory), put_commit makes it visible under
 * its key atomically and durably (fs: fsync the file, rename it over the key,
 * fsync the directory), put_abort throws it away. A reader sees either the
 * old object or the whole new one, never a part. Both commit and abort free
 * the writer.
 *
 * Errors: 0 or a negative errno (-ENOENT for a missing key, -E2BIG when an
 * object is larger than the caller's cap, -EINVAL for a bad key, -EIO or
 * what the system said).
 *
 * Threading: every call blocks on I/O; a store may be shared by threads (it
 * holds no mutable state), a writer belongs to one thread at a time. On an
 * event loop call them from uv_queue_work, or accept a local disk's latency.
 */
#ifndef LD_BLOB_H
#define LD_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LD_BLOB_KEY_MAX 200

struct ld_blob_config {
	const char *data_dir; /* fs: objects under data_dir/blobs; s3: temporary files */
	/* s3: any S3-compatible service. endpoint is "http(s)://host[:port]";
	 * path_style puts the bucket in the path (endpoint/bucket/key), else
	 * in the host name (bucket.host/key). */
	const char *endpoint;
	const char *bucket;
	const char *region;
	const char *access_key;
	const char *secret_key;
	bool path_style;
};

struct ld_blob_store;
struct ld_blob_writer;

struct ld_blob_vt {
	const char *name;
	int (*open)(const struct ld_blob_config *cfg, struct ld_blob_store **out, char *err,
		    size_t errlen);
	int (*put_begin)(struct ld_blob_store *s, const char *key, struct ld_blob_writer **out);
	int (*put_write)(struct ld_blob_writer *w, const void *p, size_t n);
	int (*put_commit)(struct ld_blob_writer *w);
	void (*put_abort)(struct ld_blob_writer *w);
	/* get reads the whole object (at most max bytes) into a new buffer
	 * the caller free()s; a NUL follows the len bytes. */
	int (*get)(struct ld_blob_store *s, const char *key, size_t max, char **out, size_t *len);
	/* open_fd (NULL when the store has no files: s3) opens the object
	 * for reading: *fd (the caller closes it) and its size, so a server
	 * can sendfile it instead of reading it into memory. */
	int (*open_fd)(struct ld_blob_store *s, const char *key, int *fd, uint64_t *size);
	/* size tells an object's size without reading it. */
	int (*size)(struct ld_blob_store *s, const char *key, uint64_t *out);
	/* remove deletes an object; a missing one is success (removal jobs
	 * run again after a crash). */
	int (*remove)(struct ld_blob_store *s, const char *key);
	/* move makes the object at from the object at to (replacing what
	 * was there) and removes from: all or nothing for a reader of to
	 * (fs: rename, then fsync the directory; s3: a server-side copy, then
	 * a delete of from). -ENOENT when from does not exist (to is left
	 * alone). It is how an upload leaves its staging key: see
	 * docs/photos.md. */
	int (*move)(struct ld_blob_store *s, const char *from, const char *to);
	void (*close)(struct ld_blob_store *s);
	/* presign (NULL when the store has no URLs of its own: fs) writes an
	 * absolute URL that lets its holder send method ("PUT", "GET") for key
	 * directly to the store for expires_s seconds. */
	int (*presign)(struct ld_blob_store *s, const char *method, const char *key,
		       int64_t expires_s, char *out, size_t cap);
};

extern const struct ld_blob_vt ld_blob_fs_vt;
extern const struct ld_blob_vt ld_blob_s3_vt;

/* ld_blob_driver returns the driver called name ("fs"), or NULL. */
const struct ld_blob_vt *ld_blob_driver(const char *name);

/* ld_blob_key_ok says whether key is a valid key (see above). */
int ld_blob_key_ok(const char *key);

/* ld_blob_put stores len bytes under key in one go (begin, write, commit). */
int ld_blob_put(const struct ld_blob_vt *vt, struct ld_blob_store *s, const char *key,
		const void *p, size_t len);

#endif
