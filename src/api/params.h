/*
 * params.h - parsers for the request details the handlers read: query
 * parameters, list cursors and entity-tag lists (RFC 9110 section 13).
 * All take (pointer, length) and never read past it; no allocation.
 */
#ifndef LD_PARAMS_H
#define LD_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ld_etag_list_has says whether the If-Match / If-None-Match list v[0..n)
 * contains tag (quoted). weak=true ignores W/ prefixes (If-None-Match's weak
 * comparison); weak=false never matches a W/ tag (If-Match's strong one). "*"
 * matches. */
bool ld_etag_list_has(const char *v, size_t n, const char *tag, bool weak);

/* ld_if_match_version maps an If-Match list to the version a conditional write
 * expects: 0 for "*", the version of the first strong tag "<id>.<version>"
 * naming item id, or -1 when no tag can match (answer 412 at once). */
int64_t ld_if_match_version(const char *v, size_t n, int64_t id);

/* List cursors: the last id of a page as base64url of 8 big-endian bytes.
 * Opaque to clients; decode refuses anything encode could not produce
 * (returns 0 or -EINVAL). cap >= 12. */
void ld_cursor_encode(int64_t id, char *out, size_t cap);
int ld_cursor_decode(const char *s, size_t n, int64_t *id);

/* ld_query_param finds name=value in a query string (& separated). The value
 * is not percent-decoded: the API's parameters are digits and base64url, and a
 * '%' in them is simply invalid. A bare "name" gives an empty value. */
bool ld_query_param(const char *query, size_t qlen, const char *name, const char **v, size_t *n);

#endif
