/*
 * media.c - libvips behind media.h. The contract and the threat model are
 * in the header.
 */
#include "media/media.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <vips/vips.h>

/* JPEG output: quality 80 is where the size stops dropping fast and
 * artefacts are not yet visible at thumbnail sizes. */
#define OUT_QUALITY 80

enum ld_media_type ld_media_sniff(const void *p, size_t n)
{
	const unsigned char *b = p;

	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
		return LD_MEDIA_JPEG;
	if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
		return LD_MEDIA_PNG;
	if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
		return LD_MEDIA_WEBP;
	return LD_MEDIA_UNKNOWN;
}

const char *ld_media_type_mime(enum ld_media_type t)
{
	switch (t) {
	case LD_MEDIA_JPEG:
		return "image/jpeg";
	case LD_MEDIA_PNG:
		return "image/png";
	case LD_MEDIA_WEBP:
		return "image/webp";
	default:
		return NULL;
	}
}

static uv_once_t init_once = UV_ONCE_INIT;
static int init_rc;
static char init_err[200];
static const char *init_argv0;
static unsigned init_threads;

/* libvips warns on stderr about every bad tile of a hostile image; the
 * error that matters comes back through vips_error_buffer, and a worker's
 * stderr is for its JSON log lines. */
static void quiet(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
}

static void do_init(void)
{
	static const char *const allowed[] = {"VipsForeignLoadJpeg", "VipsForeignLoadPng",
					      "VipsForeignLoadWebp"};
	unsigned i;

	if (VIPS_INIT(init_argv0 ? init_argv0 : "ladder") != 0) {
		snprintf(init_err, sizeof(init_err), "libvips: %s", vips_error_buffer());
		vips_error_clear();
		init_rc = -EIO;
		return;
	}
	/* Blocking a class blocks its subclasses; unblocking the three base
	 * classes opens their file, buffer and source loaders again. */
	vips_operation_block_set("VipsForeignLoad", TRUE);
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		vips_operation_block_set(allowed[i], FALSE);
	g_log_set_handler("VIPS",
			  G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO |
			      G_LOG_LEVEL_DEBUG,
			  quiet, NULL);
	vips_cache_set_max(0);
	if (init_threads)
		vips_concurrency_set((int)init_threads);
}

int ld_media_init(const char *argv0, unsigned threads, char *err, size_t errlen)
{
	init_argv0 = argv0;
	init_threads = threads;
	uv_once(&init_once, do_init);
	if (init_rc != 0 && err && errlen)
		snprintf(err, errlen, "%s", init_err);
	return init_rc;
}

/* take_error moves libvips' thread-local error text into err, on one line. */
static void take_error(char *err, size_t errlen, const char *prefix)
{
	const char *e = vips_error_buffer();
	size_t n, i;

	if (err && errlen) {
		snprintf(err, errlen, "%s%s", prefix, e && e[0] ? e : "libvips error");
		n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		for (i = 0; i < n; i++)
			if (err[i] == '\n')
				err[i] = ' ';
	}
	vips_error_clear();
}

/* open_header makes an image from buf with the loader of its sniffed type;
 * libvips reads only the header until pixels are asked for. */
static int open_header(const void *buf, size_t len, VipsImage **out, char *err, size_t errlen)
{
	enum ld_media_type t = ld_media_sniff(buf, len);
	int rc;

	*out = NULL;
	switch (t) {
	case LD_MEDIA_JPEG:
		rc = vips_jpegload_buffer((void *)buf, len, out, "fail_on", VIPS_FAIL_ON_ERROR,
					  NULL);
		break;
	case LD_MEDIA_PNG:
		rc =
		    vips_pngload_buffer((void *)buf, len, out, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
		break;
	case LD_MEDIA_WEBP:
		rc = vips_webpload_buffer((void *)buf, len, out, "fail_on", VIPS_FAIL_ON_ERROR,
					  NULL);
		break;
	default:
		snprintf(err, errlen, "not a JPEG, PNG or WebP image (magic bytes)");
		return -EINVAL;
	}
	if (rc != 0) {
		take_error(err, errlen, "bad header: ");
		return -EBADMSG;
	}
	return 0;
}

int ld_media_header(const void *buf, size_t len, int *width, int *height, char *err, size_t errlen)
{
	VipsImage *im = NULL;
	int rc = open_header(buf, len, &im, err, errlen);

	if (rc != 0)
		return rc;
	*width = vips_image_get_width(im);
	*height = vips_image_get_height(im);
	g_object_unref(im);
	return 0;
}

/* The time limit: libvips reports progress on an image that asks for it
 * (the "eval" signal, from its worker threads), and a killed image stops
 * every pipeline computing it with an error. */
struct deadline {
	uint64_t until_ns;
	_Atomic bool hit;
};

static void on_eval(VipsImage *im, VipsProgress *progress, void *data)
{
	struct deadline *d = data;

	if (d->until_ns && uv_hrtime() > d->until_ns) {
		atomic_store(&d->hit, true);
		vips_image_set_kill(im, TRUE);
	}
}

int ld_media_thumbnail(const void *buf, size_t len, int long_side,
		       const struct ld_thumb_limits *lim, void **out, size_t *outlen, int *w,
		       int *h, char *err, size_t errlen)
{
	VipsImage *im = NULL;
	struct deadline d = {0};
	int rc, iw = 0, ih = 0;

	*out = NULL;
	*outlen = 0;
	/* Pixels first, from the header: nothing is decoded yet. */
	rc = ld_media_header(buf, len, &iw, &ih, err, errlen);
	if (rc != 0)
		goto out;
	if (lim && lim->max_pixels && (uint64_t)iw * (uint64_t)ih > lim->max_pixels) {
		snprintf(err, errlen, "%d x %d pixels is over the limit of %llu", iw, ih,
			 (unsigned long long)lim->max_pixels);
		rc = -E2BIG;
		goto out;
	}
	if (vips_thumbnail_buffer((void *)buf, len, &im, long_side, "height", long_side, "size",
				  VIPS_SIZE_DOWN, "option_string", "fail_on=error", NULL) != 0) {
		take_error(err, errlen, "decode: ");
		rc = -EBADMSG;
		goto out;
	}
	if (lim && lim->timeout_s > 0) {
		d.until_ns = uv_hrtime() + (uint64_t)(lim->timeout_s * 1e9);
		vips_image_set_progress(im, TRUE);
		g_signal_connect(im, "eval", G_CALLBACK(on_eval), &d);
	}
	if (vips_jpegsave_buffer(im, out, outlen, "Q", OUT_QUALITY, "strip", TRUE, NULL) != 0) {
		if (atomic_load(&d.hit)) {
			vips_error_clear();
			snprintf(err, errlen, "over the time limit of %g s", lim->timeout_s);
			rc = -ETIMEDOUT;
		} else {
			take_error(err, errlen, "decode: ");
			rc = -EBADMSG;
		}
		*out = NULL;
		*outlen = 0;
		goto out;
	}
	*w = vips_image_get_width(im);
	*h = vips_image_get_height(im);
	rc = 0;
out:
	if (im) {
		/* The handler points at this frame: disconnect before d goes. */
		g_signal_handlers_disconnect_by_data(im, &d);
		g_object_unref(im);
	}
	return rc;
}

void ld_media_free(void *p)
{
	g_free(p);
}

int ld_media_sample_jpeg(int width, int height, void **out, size_t *outlen)
{
	/* x and y ramps and their sum as three bands: every pixel differs
	 * a little from its neighbours, as a photo's do. */
	VipsImage *im[8] = {NULL};
	unsigned i;
	int rc = -EIO;

	*out = NULL;
	*outlen = 0;
	if (vips_xyz(&im[0], width, height, NULL) || vips_extract_band(im[0], &im[1], 0, NULL) ||
	    vips_extract_band(im[0], &im[2], 1, NULL) || vips_add(im[1], im[2], &im[3], NULL) ||
	    vips_bandjoin((VipsImage *[]){im[1], im[2], im[3]}, &im[4], 3, NULL) ||
	    vips_linear1(im[4], &im[5], 255.0 / (width + height), 0, NULL) ||
	    vips_cast(im[5], &im[6], VIPS_FORMAT_UCHAR, NULL) ||
	    vips_copy(im[6], &im[7], "interpretation", VIPS_INTERPRETATION_sRGB, NULL) ||
	    vips_jpegsave_buffer(im[7], out, outlen, "Q", OUT_QUALITY, NULL))
		vips_error_clear();
	else
		rc = 0;
	for (i = 0; i < sizeof(im) / sizeof(im[0]); i++)
		if (im[i])
			g_object_unref(im[i]);
	return rc;
}
