/*
 * blob.c - what every blob driver shares: the driver table, key checks and
 * the one-shot put.
 */
#include "blob/blob.h"

#include <errno.h>
#include <string.h>

const struct ld_blob_vt *ld_blob_driver(const char *name)
{
	if (name && strcmp(name, "fs") == 0)
		return &ld_blob_fs_vt;
	if (name && strcmp(name, "s3") == 0)
		return &ld_blob_s3_vt;
	return NULL;
}

int ld_blob_key_ok(const char *key)
{
	size_t n, i, part = 0;

	if (!key)
		return 0;
	n = strnlen(key, LD_BLOB_KEY_MAX + 1);
	if (n == 0 || n > LD_BLOB_KEY_MAX || key[0] == '/' || key[n - 1] == '/')
		return 0;
	for (i = 0; i <= n; i++) {
		char c = key[i];

		if (c == '/' || c == '\0') {
			/* part bytes end at i: empty, "." and ".." are refused. */
			if (part == 0 || (part == 1 && key[i - 1] == '.') ||
			    (part == 2 && key[i - 1] == '.' && key[i - 2] == '.'))
				return 0;
			part = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
		part++;
	}
	return 1;
}

int ld_blob_put(const struct ld_blob_vt *vt, struct ld_blob_store *s, const char *key,
		const void *p, size_t len)
{
	struct ld_blob_writer *w = NULL;
	int rc;

	rc = vt->put_begin(s, key, &w);
	if (rc != 0)
		goto out;
	rc = vt->put_write(w, p, len);
	if (rc != 0) {
		vt->put_abort(w);
		goto out;
	}
	rc = vt->put_commit(w);
out:
	return rc;
}
