/*
 * media.h - image checks and thumbnails (libvips), for hostile input.
 *
 * Every byte a user uploads is assumed to be an attack:
 *   - the type is decided by magic bytes (ld_media_sniff), never by a name
 *     or a declared Content-Type, and only JPEG, PNG and WebP are known;
 *   - libvips may run only those three loaders (ld_media_init blocks every
 *     VipsForeignLoad class, then unblocks the three: an allow-list, not
 *     libvips' own "untrusted" deny-list, which leaves TIFF, GIF and HEIF on);
 *   - the pixel count is read from the header and refused before anything
 *     is decoded (a 1 MB PNG can declare 20000 x 20000 pixels);
 *   - decoding runs with fail_on=error, so a truncated or corrupt file is an
 *     error, not a half-grey thumbnail;
 *   - each thumbnail has a time limit (the pipeline is killed when it runs
 *     past it), and libvips' operation cache is off, so a long-running
 *     worker's memory is what its jobs in flight use, bounded by the pixel
 *     limit.
 *
 * Errors: 0 or a negative errno (-EINVAL wrong magic bytes, -E2BIG too many
 * pixels, -ETIMEDOUT time limit, -EBADMSG the image would not decode,
 * -ENOMEM); err gets a short reason fit for a photo's `reason` field.
 *
 * Threading: ld_media_init once per process before any other call; then
 * every function may be called from any thread.
 */
#ifndef LD_MEDIA_H
#define LD_MEDIA_H

#include <stddef.h>
#include <stdint.h>

enum ld_media_type {
	LD_MEDIA_UNKNOWN = 0,
	LD_MEDIA_JPEG,
	LD_MEDIA_PNG,
	LD_MEDIA_WEBP,
};

/* ld_media_sniff tells the type from the first bytes (12 are enough). */
enum ld_media_type ld_media_sniff(const void *p, size_t n);

/* ld_media_type_mime: "image/jpeg", "image/png", "image/webp", or NULL. */
const char *ld_media_type_mime(enum ld_media_type t);

/* ld_media_init starts libvips with the loader allow-list, no operation
 * cache, and `threads` worker threads per pipeline (0: libvips' default).
 * Idempotent. */
int ld_media_init(const char *argv0, unsigned threads, char *err, size_t errlen);

/* ld_media_header reads width and height from the header only (nothing is
 * decoded). -EINVAL for a type other than the three, -EBADMSG when the
 * header does not parse. */
int ld_media_header(const void *buf, size_t len, int *width, int *height, char *err, size_t errlen);

struct ld_thumb_limits {
	uint64_t max_pixels; /* of the original; 50e6 */
	double timeout_s;    /* per thumbnail; 0 = none */
};

/*
 * ld_media_thumbnail makes a JPEG whose long side is at most long_side
 * pixels (never enlarged), rotated upright, metadata stripped. *out is a new
 * buffer the caller releases with ld_media_free; *w and *h are its size.
 */
int ld_media_thumbnail(const void *buf, size_t len, int long_side,
		       const struct ld_thumb_limits *lim, void **out, size_t *outlen, int *w,
		       int *h, char *err, size_t errlen);

void ld_media_free(void *p);

/* ld_media_sample_jpeg makes a width x height JPEG of a smooth colour
 * gradient (a load generator's photo: it compresses to a few KB per
 * 100 000 pixels). *out is released with ld_media_free. */
int ld_media_sample_jpeg(int width, int height, void **out, size_t *outlen);

#endif
