/*
 * validate.h - the rules of api.md for request bodies, as pure functions over
 * a parsed JSON object, so they are unit-tested and fuzzed without a server.
 *
 * Each function reads the members it knows (unknown members are ignored),
 * records every broken rule in v (field + message, for a 422), and on success
 * points the out fields into the JSON object's strings: they live as long as
 * the object. jansson has already refused invalid UTF-8 and NUL in strings.
 */
#ifndef LD_VALIDATE_H
#define LD_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

/* The longest password accepted, in bytes: the one cap the validators, the
 * request state that carries a password to the hashing thread and the
 * messages of a 422 are all built from. */
#define LD_PASSWORD_MAX 256

struct ld_api_verr {
	const char *field[8];
	const char *message[8];
	unsigned n;
};

void ld_api_verr_add(struct ld_api_verr *v, const char *field, const char *message);

struct ld_str {
	const char *s;
	size_t n;
};

/* POST /v1/users: handle (3-32 of [a-z0-9_]), display_name (optional, 1-128
 * bytes, no control characters; defaults to the handle), password (8 to
 * LD_PASSWORD_MAX bytes). Returns 0 when valid. */
int ld_validate_user_create(json_t *obj, struct ld_str *handle, struct ld_str *display_name,
			    struct ld_str *password, struct ld_api_verr *v);

/* PATCH /v1/users/{id}: display_name required. */
int ld_validate_user_patch(json_t *obj, struct ld_str *display_name, struct ld_api_verr *v);

/* POST /v1/sessions: handle 1-32 bytes, password 1 to LD_PASSWORD_MAX bytes (loose on
 * purpose: a login never says which rule a guess broke). */
int ld_validate_session(json_t *obj, struct ld_str *handle, struct ld_str *password,
			struct ld_api_verr *v);

/* POST /v1/items and PUT /v1/items/{id}: content 1-1024 bytes. */
int ld_validate_item(json_t *obj, struct ld_str *content, struct ld_api_verr *v);

/* ld_json_parse_body parses a request body the way every route does:
 * duplicate members refused, any JSON value accepted (so a scalar body is a
 * 422 "must be an object", not a 400). NULL with err filled on bad JSON. */
json_t *ld_json_parse_body(const char *p, size_t n, json_error_t *err);

#endif
