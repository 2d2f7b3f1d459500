/*
 * test_media.c - hostile and ordinary images through media.h. Every image
 * is made here, by libvips' savers or by hand (the bomb is a PNG written
 * with zlib): type by magic bytes, the loader allow-list, the pixel limit
 * checked from the header before decoding, corrupt and truncated files,
 * the time limit, and thumbnails of the right size that decode again.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <uv.h>
#include <vips/vips.h>
#include <zlib.h>

#include "media/media.h"

/* make_image: a w x h RGB test card saved by saver ("jpeg", "png", "webp",
 * "tif", "gif"), into a g_malloc'd buffer. */
static void *make_image(int w, int h, const char *suffix, size_t *len)
{
	VipsImage *x = NULL, *rgb = NULL, *card = NULL;
	void *buf = NULL;

	*len = 0;
	/* Gradients (x, y and a constant blue), so the encoders have detail
	 * to chew on. */
	if (vips_xyz(&x, w, h, NULL) != 0)
		return NULL;
	if (vips_bandjoin_const1(x, &rgb, 128, NULL) != 0)
		goto out;
	if (vips_cast(rgb, &card, VIPS_FORMAT_UCHAR, NULL) != 0)
		goto out;
	if (vips_image_write_to_buffer(card, suffix, &buf, len, NULL) != 0)
		buf = NULL;
out:
	if (x)
		g_object_unref(x);
	if (rgb)
		g_object_unref(rgb);
	if (card)
		g_object_unref(card);
	vips_error_clear();
	return buf;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* chunk appends one PNG chunk to out at *n. */
static void chunk(unsigned char *out, size_t *n, const char *type, const unsigned char *data,
		  size_t len)
{
	uLong crc;

	put32(out + *n, (uint32_t)len);
	memcpy(out + *n + 4, type, 4);
	if (len)
		memcpy(out + *n + 8, data, len);
	crc = crc32(0, out + *n + 4, (uInt)(len + 4));
	put32(out + *n + 8 + len, (uint32_t)crc);
	*n += 12 + len;
}

/* make_bomb: a valid 1-bit grey PNG of side x side pixels, all black. Its
 * rows deflate to almost nothing: 20000 x 20000 is ~50 KB on disk and 400
 * million pixels decoded. */
static unsigned char *make_bomb(uint32_t side, size_t *len)
{
	size_t row = 1 + (side + 7) / 8, raw_len = row * side, n = 0;
	unsigned char *raw = calloc(1, raw_len), *out = NULL, ihdr[13];
	uLongf zlen = compressBound((uLong)raw_len);
	unsigned char *z = malloc(zlen);

	if (!raw || !z)
		goto out;
	if (compress2(z, &zlen, raw, (uLong)raw_len, 9) != Z_OK)
		goto out;
	out = malloc(8 + 25 + 12 + zlen + 12);
	if (!out)
		goto out;
	memcpy(out, "\x89PNG\r\n\x1a\n", 8);
	n = 8;
	put32(ihdr, side);
	put32(ihdr + 4, side);
	ihdr[8] = 1;  /* bit depth */
	ihdr[9] = 0;  /* greyscale */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* filter */
	ihdr[12] = 0; /* no interlace */
	chunk(out, &n, "IHDR", ihdr, 13);
	chunk(out, &n, "IDAT", z, zlen);
	chunk(out, &n, "IEND", NULL, 0);
	*len = n;
out:
	free(raw);
	free(z);
	return out;
}

static const struct ld_thumb_limits limits = {50000000, 0};

static void test_sniff(void)
{
	CHECK_INT(ld_media_sniff("\xff\xd8\xff\xe0", 4), LD_MEDIA_JPEG);
	CHECK_INT(ld_media_sniff("\x89PNG\r\n\x1a\n", 8), LD_MEDIA_PNG);
	CHECK_INT(ld_media_sniff("RIFF\x10\0\0\0WEBPVP8 ", 16), LD_MEDIA_WEBP);
	CHECK_INT(ld_media_sniff("RIFF\x10\0\0\0WAVEfmt ", 16), LD_MEDIA_UNKNOWN);
	CHECK_INT(ld_media_sniff("GIF89a", 6), LD_MEDIA_UNKNOWN);
	CHECK_INT(ld_media_sniff("II*\0", 4), LD_MEDIA_UNKNOWN);
	CHECK_INT(ld_media_sniff("\x89PNG", 4), LD_MEDIA_UNKNOWN); /* too short */
	CHECK_INT(ld_media_sniff("", 0), LD_MEDIA_UNKNOWN);
	CHECK_STR(ld_media_type_mime(LD_MEDIA_WEBP), "image/webp");
	CHECK(ld_media_type_mime(LD_MEDIA_UNKNOWN) == NULL);
}

static void check_thumb(const char *suffix, int w, int h, int side, int want_w, int want_h)
{
	size_t len = 0, outlen = 0;
	void *img = make_image(w, h, suffix, &len), *out = NULL;
	char err[256] = "";
	int tw = 0, th = 0, dw = 0, dh = 0;

	CHECK(img != NULL);
	CHECK_INT(
	    ld_media_thumbnail(img, len, side, &limits, &out, &outlen, &tw, &th, err, sizeof(err)),
	    0);
	CHECK_STR(err, "");
	CHECK_INT(tw, want_w);
	CHECK_INT(th, want_h);
	/* The output is a real JPEG of that size. */
	CHECK_INT(ld_media_sniff(out, outlen), LD_MEDIA_JPEG);
	CHECK_INT(ld_media_header(out, outlen, &dw, &dh, err, sizeof(err)), 0);
	CHECK_INT(dw, want_w);
	CHECK_INT(dh, want_h);
	ld_media_free(out);
	g_free(img);
}

static void test_thumbnails(void)
{
	check_thumb(".jpg", 1000, 500, 128, 128, 64);
	check_thumb(".jpg", 1000, 500, 512, 512, 256);
	check_thumb(".png", 300, 600, 128, 64, 128);
	check_thumb(".webp", 800, 800, 512, 512, 512);
	/* Never enlarged. */
	check_thumb(".jpg", 100, 50, 512, 100, 50);
}

static void test_header(void)
{
	size_t len = 0;
	void *img = make_image(321, 123, ".png", &len);
	char err[256] = "";
	int w = 0, h = 0;

	CHECK_INT(ld_media_header(img, len, &w, &h, err, sizeof(err)), 0);
	CHECK_INT(w, 321);
	CHECK_INT(h, 123);
	g_free(img);
	CHECK_INT(ld_media_header("GIF89a....", 10, &w, &h, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "not a JPEG, PNG or WebP image (magic bytes)");
}

static void test_bomb_refused_before_decoding(void)
{
	size_t len = 0, outlen = 0;
	unsigned char *bomb = make_bomb(20000, &len);
	void *out = NULL;
	char err[256] = "";
	int w = 0, h = 0;
	uint64_t t0;

	CHECK(bomb != NULL);
	CHECK(len < 200000);
	CHECK_INT(ld_media_header(bomb, len, &w, &h, err, sizeof(err)), 0);
	CHECK_INT(w, 20000);
	CHECK_INT(h, 20000);
	t0 = uv_hrtime();
	CHECK_INT(
	    ld_media_thumbnail(bomb, len, 128, &limits, &out, &outlen, &w, &h, err, sizeof(err)),
	    -E2BIG);
	CHECK_STR(err, "20000 x 20000 pixels is over the limit of 50000000");
	CHECK(out == NULL);
	(void)t0;
	free(bomb);
}

static void test_corrupt_and_truncated(void)
{
	size_t len = 0, outlen = 0;
	unsigned char *img = make_image(600, 400, ".jpg", &len);
	void *out = NULL;
	char err[256] = "";
	int w = 0, h = 0;
	size_t i;

	CHECK(img != NULL);
	/* Truncated: the header parses, the pixels end early. */
	CHECK_INT(
	    ld_media_thumbnail(img, len / 2, 128, &limits, &out, &outlen, &w, &h, err, sizeof(err)),
	    -EBADMSG);
	CHECK(strncmp(err, "decode: ", 8) == 0);
	CHECK(strchr(err, '\n') == NULL);
	CHECK(out == NULL);
	/* Corrupt: the magic bytes, then garbage. */
	for (i = 3; i < len; i++)
		img[i] = (unsigned char)(i * 131 + 7);
	CHECK_INT(
	    ld_media_thumbnail(img, len, 128, &limits, &out, &outlen, &w, &h, err, sizeof(err)),
	    -EBADMSG);
	CHECK(out == NULL);
	g_free(img);
}

static void test_allow_list(void)
{
	size_t len = 0;
	void *tif = make_image(64, 64, ".tif", &len);
	VipsImage *im = NULL;
	void *out = NULL;
	size_t outlen = 0;
	char err[256] = "";
	int w = 0, h = 0;

	CHECK(tif != NULL);
	/* Ours refuses it by magic bytes... */
	CHECK_INT(
	    ld_media_thumbnail(tif, len, 128, &limits, &out, &outlen, &w, &h, err, sizeof(err)),
	    -EINVAL);
	/* ...and libvips itself may no longer load it, whatever a caller does. */
	im = vips_image_new_from_buffer(tif, len, "", NULL);
	CHECK(im == NULL);
	if (im)
		g_object_unref(im);
	vips_error_clear();
	g_free(tif);
}

static void test_time_limit(void)
{
	size_t len = 0, outlen = 0;
	void *img = make_image(4000, 3000, ".png", &len), *out = NULL;
	struct ld_thumb_limits tight = {50000000, 1e-9};
	char err[256] = "";
	int w = 0, h = 0;

	CHECK(img != NULL);
	CHECK_INT(
	    ld_media_thumbnail(img, len, 1600, &tight, &out, &outlen, &w, &h, err, sizeof(err)),
	    -ETIMEDOUT);
	CHECK_STR(err, "over the time limit of 1e-09 s");
	CHECK(out == NULL);
	g_free(img);
}

int main(int argc, char **argv)
{
	char err[256] = "";

	if (ld_media_init(argv[0], 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	RUN(test_sniff);
	RUN(test_header);
	RUN(test_thumbnails);
	RUN(test_bomb_refused_before_decoding);
	RUN(test_corrupt_and_truncated);
	RUN(test_allow_list);
	RUN(test_time_limit);
	return unit_finish();
}
