#include "unit.h"

#include "api/validate.h"

static json_t *parse(const char *s)
{
	json_error_t e;

	return ld_json_parse_body(s, strlen(s), &e);
}

static int has_field(const struct ld_api_verr *v, const char *f)
{
	unsigned i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(v->field[i], f))
			return 1;
	return 0;
}

static void test_user_create_ok_and_default_name(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str h, d, p;
	json_t *o = parse("{\"handle\":\"ada_1\",\"password\":\"12345678\",\"extra\":1}");

	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), 0);
	CHECK_INT(v.n, 0);
	CHECK_INT(h.n, 5);
	CHECK_MEM(d.s, "ada_1", 5); /* display name defaults to the handle */
	CHECK_INT(p.n, 8);
	json_decref(o);
}

static void test_user_create_every_rule(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str h, d, p;
	json_t *o =
	    parse("{\"handle\":\"Ada\",\"display_name\":\"a\\u0007b\",\"password\":\"short\"}");

	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), -1);
	CHECK_INT(v.n, 3);
	CHECK(has_field(&v, "handle"));
	CHECK(has_field(&v, "display_name"));
	CHECK(has_field(&v, "password"));
	json_decref(o);

	v.n = 0;
	o = parse("{\"handle\":12,\"password\":[]}");
	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), -1);
	CHECK(has_field(&v, "handle") && has_field(&v, "password"));
	json_decref(o);

	v.n = 0;
	o = parse("{}");
	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), -1);
	CHECK_INT(v.n, 2); /* handle and password required */
	json_decref(o);

	/* Lengths at and past their limits. */
	v.n = 0;
	o = parse("{\"handle\":\"abcdefghijklmnopqrstuvwxyz012345\",\"password\":\"12345678\"}");
	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), 0); /* 32 chars */
	json_decref(o);
	v.n = 0;
	o = parse("{\"handle\":\"abcdefghijklmnopqrstuvwxyz0123456\",\"password\":\"12345678\"}");
	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), -1); /* 33 chars */
	json_decref(o);
}

static void test_not_an_object(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str c;
	json_t *o = parse("[1,2]");

	CHECK(o != NULL);
	CHECK_INT(ld_validate_item(o, &c, &v), -1);
	CHECK(has_field(&v, "(body)"));
	json_decref(o);
}

static void test_item_content_bytes_not_chars(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str c;
	char buf[4200];
	size_t i, n = 0;
	json_t *o;

	/* 341 x U+20AC (3 bytes) = 1023 bytes: fine; 342 = 1026: refused. */
	n = (size_t)sprintf(buf, "{\"content\":\"");
	for (i = 0; i < 341; i++)
		n += (size_t)sprintf(buf + n, "\xe2\x82\xac");
	sprintf(buf + n, "\"}");
	o = parse(buf);
	CHECK_INT(ld_validate_item(o, &c, &v), 0);
	CHECK_INT(c.n, 1023);
	json_decref(o);
	sprintf(buf + n, "\xe2\x82\xac\"}");
	v.n = 0;
	o = parse(buf);
	CHECK_INT(ld_validate_item(o, &c, &v), -1);
	json_decref(o);
	v.n = 0;
	o = parse("{\"content\":\"\"}");
	CHECK_INT(ld_validate_item(o, &c, &v), -1);
	json_decref(o);
}

static void test_parse_rules(void)
{
	json_error_t e;

	CHECK(ld_json_parse_body("{\"a\":1,\"a\":2}", 13, &e) == NULL); /* duplicates */
	CHECK(ld_json_parse_body("{\"a\":\"\xff\"}", 9, &e) == NULL);	/* bad UTF-8 */
	CHECK(ld_json_parse_body("", 0, &e) == NULL);
	CHECK(ld_json_parse_body("{} x", 4, &e) == NULL); /* trailing garbage */
}

static void test_nul_is_a_broken_rule(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str c;
	json_t *o = parse("{\"content\":\"a\\u0000b\"}");

	CHECK(o != NULL); /* valid JSON: not a 400 */
	CHECK_INT(ld_validate_item(o, &c, &v), -1);
	CHECK(has_field(&v, "content"));
	json_decref(o);
}

static void test_session_and_patch(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str h, p, d;
	json_t *o = parse("{\"handle\":\"x\",\"password\":\"y\"}");

	CHECK_INT(ld_validate_session(o, &h, &p, &v), 0);
	json_decref(o);
	v.n = 0;
	o = parse("{\"display_name\":\"\"}");
	CHECK_INT(ld_validate_user_patch(o, &d, &v), -1);
	CHECK(has_field(&v, "display_name"));
	json_decref(o);
}

/* password_body makes {"handle":"ada",...,"password":"ppp..."} with n bytes
 * of password. */
static json_t *password_body(size_t n)
{
	char buf[LD_PASSWORD_MAX + 64];

	snprintf(buf, sizeof(buf), "{\"handle\":\"ada\",\"password\":\"%0*d\"}", (int)n, 0);
	return parse(buf);
}

/* Both password rules stop at LD_PASSWORD_MAX, the cap the request state
 * that carries a password to the hashing thread is sized by, and say so. */
static void test_password_cap(void)
{
	struct ld_api_verr v = {.n = 0};
	struct ld_str h, d, p;
	json_t *o = password_body(LD_PASSWORD_MAX);

	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), 0);
	CHECK_INT(p.n, LD_PASSWORD_MAX);
	CHECK_INT(ld_validate_session(o, &h, &p, &v), 0);
	json_decref(o);
	o = password_body(LD_PASSWORD_MAX + 1);
	CHECK_INT(ld_validate_user_create(o, &h, &d, &p, &v), -1);
	CHECK_INT(v.n, 1);
	CHECK_STR(v.field[0], "password");
	CHECK_STR(v.message[0], "must be 8-256 bytes");
	v.n = 0;
	CHECK_INT(ld_validate_session(o, &h, &p, &v), -1);
	CHECK_INT(v.n, 1);
	CHECK_STR(v.message[0], "must be 1-256 bytes");
	json_decref(o);
}

int main(void)
{
	RUN(test_user_create_ok_and_default_name);
	RUN(test_user_create_every_rule);
	RUN(test_not_an_object);
	RUN(test_item_content_bytes_not_chars);
	RUN(test_parse_rules);
	RUN(test_nul_is_a_broken_rule);
	RUN(test_session_and_patch);
	RUN(test_password_cap);
	return unit_finish();
}
