#include "api/validate.h"

#include <string.h>

#include "store/store.h"

/* STR(LD_PASSWORD_MAX) spells the cap in the messages, so they follow it. */
#define STR_(x) #x
#define STR(x)	STR_(x)

void ld_api_verr_add(struct ld_api_verr *v, const char *field, const char *message)
{
	if (v->n < sizeof(v->field) / sizeof(v->field[0])) {
		v->field[v->n] = field;
		v->message[v->n] = message;
		v->n++;
	}
}

json_t *ld_json_parse_body(const char *p, size_t n, json_error_t *err)
{
	/* Duplicate keys are ambiguous (which one wins differs between
	 * parsers), so they are refused rather than guessed. */
	/* U+0000 is valid JSON, so it parses here and the validators refuse it
	 * as a broken rule (422): no field of ours may hold it, since C
	 * strings, logs and PostgreSQL text all stop or fail at it. */
	return json_loadb(p ? p : "", n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
			  err);
}

/* string_member reads an optional string member: 1 present, 0 absent, -1 of
 * the wrong type (recorded). */
static int string_member(json_t *obj, const char *name, struct ld_str *out, struct ld_api_verr *v)
{
	json_t *m = json_object_get(obj, name);

	if (!m)
		return 0;
	if (!json_is_string(m)) {
		ld_api_verr_add(v, name, "must be a string");
		return -1;
	}
	out->s = json_string_value(m);
	out->n = json_string_length(m);
	if (memchr(out->s, '\0', out->n)) {
		ld_api_verr_add(v, name, "must not contain U+0000");
		return -1;
	}
	return 1;
}

static void required_len(json_t *obj, const char *name, struct ld_str *out, size_t min, size_t max,
			 const char *msg, struct ld_api_verr *v)
{
	int rc = string_member(obj, name, out, v);

	if (rc == 0)
		ld_api_verr_add(v, name, "is required");
	else if (rc == 1 && (out->n < min || out->n > max))
		ld_api_verr_add(v, name, msg);
}

static int not_object(json_t *obj, struct ld_api_verr *v)
{
	if (json_is_object(obj))
		return 0;
	ld_api_verr_add(v, "(body)", "must be a JSON object");
	return -1;
}

static int handle_ok(const struct ld_str *h)
{
	size_t i;

	if (h->n < 3 || h->n > LD_HANDLE_MAX)
		return 0;
	for (i = 0; i < h->n; i++) {
		char c = h->s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

/* display_name_check: 1-128 bytes, no control characters (they are only
 * ever a mistake, or an attack on someone's terminal or log viewer). */
static const char *display_name_check(const struct ld_str *d)
{
	size_t i;

	if (d->n < 1 || d->n > LD_DISPLAY_NAME_MAX)
		return "must be 1-128 bytes of UTF-8";
	for (i = 0; i < d->n; i++)
		if ((unsigned char)d->s[i] < 0x20 || d->s[i] == 0x7f)
			return "must not contain control characters";
	return NULL;
}

int ld_validate_user_create(json_t *obj, struct ld_str *handle, struct ld_str *display_name,
			    struct ld_str *password, struct ld_api_verr *v)
{
	const char *msg;
	int rc;

	if (not_object(obj, v))
		goto out;
	rc = string_member(obj, "handle", handle, v);
	if (rc == 0)
		ld_api_verr_add(v, "handle", "is required");
	else if (rc == 1 && !handle_ok(handle))
		ld_api_verr_add(v, "handle", "must be 3-32 characters of a-z, 0-9 and _");
	rc = string_member(obj, "display_name", display_name, v);
	if (rc == 1 && (msg = display_name_check(display_name)))
		ld_api_verr_add(v, "display_name", msg);
	else if (rc == 0)
		*display_name = *handle; /* defaults to the handle */
	required_len(obj, "password", password, 8, LD_PASSWORD_MAX,
		     "must be 8-" STR(LD_PASSWORD_MAX) " bytes", v);
out:
	return v->n ? -1 : 0;
}

int ld_validate_user_patch(json_t *obj, struct ld_str *display_name, struct ld_api_verr *v)
{
	const char *msg;
	int rc;

	if (not_object(obj, v))
		goto out;
	rc = string_member(obj, "display_name", display_name, v);
	if (rc == 0)
		ld_api_verr_add(v, "display_name", "is required");
	else if (rc == 1 && (msg = display_name_check(display_name)))
		ld_api_verr_add(v, "display_name", msg);
out:
	return v->n ? -1 : 0;
}

int ld_validate_session(json_t *obj, struct ld_str *handle, struct ld_str *password,
			struct ld_api_verr *v)
{
	if (not_object(obj, v))
		goto out;
	required_len(obj, "handle", handle, 1, LD_HANDLE_MAX, "must be 1-32 bytes", v);
	required_len(obj, "password", password, 1, LD_PASSWORD_MAX,
		     "must be 1-" STR(LD_PASSWORD_MAX) " bytes", v);
out:
	return v->n ? -1 : 0;
}

int ld_validate_item(json_t *obj, struct ld_str *content, struct ld_api_verr *v)
{
	if (not_object(obj, v))
		goto out;
	required_len(obj, "content", content, 1, LD_CONTENT_MAX, "must be 1-1024 bytes of UTF-8",
		     v);
out:
	return v->n ? -1 : 0;
}
