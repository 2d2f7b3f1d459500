/*
 * blob_opts.h - the [blob] settings (which blob store, and S3's endpoint,
 * bucket and keys), shared by `ladder serve` and `ladder worker` so both
 * spell them alike: --blob-store, --s3-endpoint, LADDER_S3_BUCKET, ...
 */
#ifndef LD_BLOB_OPTS_H
#define LD_BLOB_OPTS_H

#include <stdbool.h>

#include "base/config.h"
#include "blob/blob.h"

struct ld_blob_opts {
	char store[8]; /* "fs" or "s3" */
	char endpoint[256];
	char bucket[64];
	char region[32];
	char access_key[128];
	char secret_key[256];
	bool path_style;
};

extern const struct ld_opt_section ld_blob_section;
#define LD_BLOB_NOPTS 7

/* ld_blob_open_opts opens the configured store (fs under data_dir, or s3);
 * errors name the setting. */
int ld_blob_open_opts(const struct ld_blob_opts *o, const char *data_dir,
		      const struct ld_blob_vt **vt, struct ld_blob_store **s, char *err,
		      size_t errlen);

#endif
