/*
 * test_sigv4.c - the SigV4 signer against AWS's published examples: the
 * day's key of the "deriving the signing key" example, the IAM ListUsers
 * request of the signing guide, and the S3 API reference's GET Object (with
 * a Range header) and presigned GET of examplebucket/test.txt. A test S3
 * server (s3rver) accepts unsigned requests, so these vectors are what
 * proves the signatures right.
 */
#include "unit.h"

#include <errno.h>
#include <sodium.h>

#include "blob/sigv4.h"

static void test_signing_key(void)
{
	const struct ld_sigv4_creds c = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
					 "us-east-1", "iam"};
	unsigned char k[32];
	char hex[65];

	ld_sigv4_signing_key(&c, "20120215", k);
	sodium_bin2hex(hex, sizeof(hex), k, sizeof(k));
	CHECK_STR(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void test_iam_list_users(void)
{
	const struct ld_sigv4_creds c = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
					 "us-east-1", "iam"};
	const struct ld_sigv4_header h[] = {
	    {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
	    {"host", "iam.amazonaws.com"},
	    {"x-amz-date", "20150830T123600Z"},
	};
	char empty[65], auth[512];

	ld_sigv4_sha256_hex("", 0, empty);
	CHECK_STR(empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_INT(ld_sigv4_authorization(&c, "GET", "/", "Action=ListUsers&Version=2010-05-08", h,
					 3, empty, "20150830T123600Z", auth, sizeof(auth)),
		  0);
	CHECK_STR(auth,
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
		  "aws4_request, SignedHeaders=content-type;host;x-amz-date, "
		  "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

static const struct ld_sigv4_creds s3 = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};

static void test_s3_get_object_with_range(void)
{
	const struct ld_sigv4_header h[] = {
	    {"host", "examplebucket.s3.amazonaws.com"},
	    {"range", "bytes=0-9"},
	    {"x-amz-content-sha256",
	     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"x-amz-date", "20130524T000000Z"},
	};
	char auth[512];

	CHECK_INT(ld_sigv4_authorization(
		      &s3, "GET", "/test.txt", "", h, 4,
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		      "20130524T000000Z", auth, sizeof(auth)),
		  0);
	CHECK_STR(auth,
		  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
		  "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
		  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_s3_presigned_get(void)
{
	char q[1024];

	CHECK_INT(ld_sigv4_presign(&s3, "GET", "examplebucket.s3.amazonaws.com", "/test.txt", 86400,
				   "20130524T000000Z", q, sizeof(q)),
		  0);
	CHECK_STR(
	    q, "X-Amz-Algorithm=AWS4-HMAC-SHA256"
	       "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
	       "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
	       "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	/* Any change to what is signed changes the signature. */
	CHECK_INT(ld_sigv4_presign(&s3, "PUT", "examplebucket.s3.amazonaws.com", "/test.txt", 86400,
				   "20130524T000000Z", q, sizeof(q)),
		  0);
	CHECK(strstr(q, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") ==
	      NULL);
	/* Too small an output, a malformed date. */
	CHECK_INT(ld_sigv4_presign(&s3, "GET", "h", "/t", 60, "20130524T000000Z", q, 100), -E2BIG);
	CHECK_INT(ld_sigv4_presign(&s3, "GET", "h", "/t", 60, "2013-05-24", q, sizeof(q)), -EINVAL);
}

static void test_uri_encode(void)
{
	char out[64];

	CHECK_INT(ld_sigv4_uri_encode("photos/12/a b+c~d.jpg", 1, out, sizeof(out)), 0);
	CHECK_STR(out, "photos/12/a%20b%2Bc~d.jpg");
	CHECK_INT(ld_sigv4_uri_encode("a/b", 0, out, sizeof(out)), 0);
	CHECK_STR(out, "a%2Fb");
	CHECK_INT(ld_sigv4_uri_encode("\xc3\xa9", 0, out, sizeof(out)), 0);
	CHECK_STR(out, "%C3%A9");
	CHECK_INT(ld_sigv4_uri_encode("abc", 0, out, 3), -E2BIG);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_signing_key);
	RUN(test_iam_list_users);
	RUN(test_s3_get_object_with_range);
	RUN(test_s3_presigned_get);
	RUN(test_uri_encode);
	return unit_finish();
}
