/*
 * test_tiers.c - a photo's status from its versions: ready, partial with
 * each missing version named, failed with the error said once, and a long
 * reason cut inside its buffer.
 */
#include "unit.h"

#include "jobs/tiers.h"

static const char *const names[3] = {"128", "512", "1600"};

static void test_ready(void)
{
	const char *errs[3] = {"", "", ""};
	char reason[64] = "stale";

	CHECK_STR(ld_photo_tiers(3, names, errs, reason, sizeof(reason)), "ready");
	CHECK_STR(reason, "");
}

static void test_partial(void)
{
	const char *errs[3] = {"", "", "over the time limit of 10 s"};
	const char *two[3] = {"", "decode: x", "over the time limit of 10 s"};
	char reason[128];

	CHECK_STR(ld_photo_tiers(3, names, errs, reason, sizeof(reason)), "partial");
	CHECK_STR(reason, "1600: over the time limit of 10 s");
	CHECK_STR(ld_photo_tiers(3, names, two, reason, sizeof(reason)), "partial");
	CHECK_STR(reason, "512: decode: x; 1600: over the time limit of 10 s");
}

static void test_failed(void)
{
	const char *errs[3] = {"decode: VipsJpeg: Premature end of input file",
			       "decode: VipsJpeg: Premature end of input file",
			       "decode: VipsJpeg: Premature end of input file"};
	char reason[128];

	CHECK_STR(ld_photo_tiers(3, names, errs, reason, sizeof(reason)), "failed");
	CHECK_STR(reason, "decode: VipsJpeg: Premature end of input file");
}

static void test_cut(void)
{
	const char *errs[3] = {"", "aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"};
	char reason[16 + 1];

	memset(reason, 'z', sizeof(reason));
	CHECK_STR(ld_photo_tiers(3, names, errs, reason, 16), "partial");
	CHECK_INT(strlen(reason), 15);
	CHECK_STR(reason, "512: aaaaaaaaaa");
	CHECK_INT(reason[16], 'z'); /* nothing written past the cap */
}

int main(void)
{
	RUN(test_ready);
	RUN(test_partial);
	RUN(test_failed);
	RUN(test_cut);
	return unit_finish();
}
