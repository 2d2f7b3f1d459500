/*
 * blob_opts.c - the [blob] settings and opening the store they describe.
 */
#include "blob/blob_opts.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define O(field) offsetof(struct ld_blob_opts, field), sizeof(((struct ld_blob_opts *)0)->field), 0

/* clang-format off */
static const struct ld_opt blob_opts[LD_BLOB_NOPTS] = {
    {"blob-store", 0, "blob_store", "LADDER_BLOB_STORE", LD_OPT_STR, O(store), "fs", 1, 0, "fs|s3",
     0, NULL, NULL, "fs|s3", "where photo bytes live: fs (DATA/blobs) or s3"},
    {"s3-endpoint", 0, "s3_endpoint", "LADDER_S3_ENDPOINT", LD_OPT_STR, O(endpoint), "", 0, 0,
     NULL, 0, NULL, NULL, "URL", "an S3-compatible service: http(s)://host[:port]"},
    {"s3-bucket", 0, "s3_bucket", "LADDER_S3_BUCKET", LD_OPT_STR, O(bucket), "", 0, 0, NULL, 0,
     NULL, NULL, "NAME", "the bucket photo objects go to"},
    {"s3-region", 0, "s3_region", "LADDER_S3_REGION", LD_OPT_STR, O(region), "us-east-1", 1, 0,
     NULL, 0, NULL, NULL, "NAME", "the region requests are signed for"},
    {"s3-access-key", 0, "s3_access_key", "LADDER_S3_ACCESS_KEY", LD_OPT_STR, O(access_key), "",
     0, 0, NULL, 0, NULL, NULL, "KEY", "access key id"},
    {"s3-secret-key", 0, "s3_secret_key", "LADDER_S3_SECRET_KEY", LD_OPT_STR, O(secret_key), "",
     0, 0, NULL, LD_OPT_SECRET, NULL, NULL, "KEY", "secret access key"},
    {"s3-path-style", 0, "s3_path_style", "LADDER_S3_PATH_STYLE", LD_OPT_BOOL, O(path_style),
     "off", 0, 0, NULL, 0, NULL, NULL, "BOOL",
     "endpoint/bucket/key instead of bucket.endpoint/key (most self-hosted services)"},
};
/* clang-format on */

const struct ld_opt_section ld_blob_section = {"blob", blob_opts, LD_BLOB_NOPTS, NULL};

int ld_blob_open_opts(const struct ld_blob_opts *o, const char *data_dir,
		      const struct ld_blob_vt **vt, struct ld_blob_store **s, char *err,
		      size_t errlen)
{
	struct ld_blob_config bc = {
	    .data_dir = data_dir,
	    .endpoint = o->endpoint,
	    .bucket = o->bucket,
	    .region = o->region,
	    .access_key = o->access_key,
	    .secret_key = o->secret_key,
	    .path_style = o->path_style,
	};
	const char *missing = NULL;

	*vt = ld_blob_driver(o->store);
	if (!*vt) {
		snprintf(err, errlen, "blob_store: unknown store '%s' (known: fs, s3)", o->store);
		return -EINVAL;
	}
	if (*vt == &ld_blob_s3_vt) {
		if (!o->endpoint[0])
			missing = "s3_endpoint";
		else if (!o->bucket[0])
			missing = "s3_bucket";
		else if (!o->access_key[0])
			missing = "s3_access_key";
		else if (!o->secret_key[0])
			missing = "s3_secret_key";
		if (missing) {
			snprintf(err, errlen, "%s: must be set when blob_store is s3", missing);
			return -EINVAL;
		}
	}
	return (*vt)->open(&bc, s, err, errlen);
}
