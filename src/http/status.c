/*
 * status.c - the status table (see status.h for the contract).
 */
#include "http/status.h"

#include <stdio.h>

#include "base/json.h"

struct row {
	int code;
	const char *reason; /* RFC 9110 reason phrase */
	const char *slug;   /* problem type; NULL for a status that is no error */
	const char *title;  /* problem title */
};

/* Ascending by code. 1xx is absent on purpose: the only interim response is
 * 100 Continue, written as a fixed line by the connection and never counted
 * as an answer. */
static const struct row rows[] = {
    {200, "OK", NULL, NULL},
    {201, "Created", NULL, NULL},
    {202, "Accepted", NULL, NULL},
    {204, "No Content", NULL, NULL},
    {302, "Found", NULL, NULL},
    {304, "Not Modified", NULL, NULL},
    {400, "Bad Request", "bad-request", "Bad request"},
    {401, "Unauthorized", "unauthorized", "Authentication required"},
    {403, "Forbidden", "forbidden", "Not allowed"},
    {404, "Not Found", "not-found", "Not found"},
    {405, "Method Not Allowed", "method-not-allowed", "Method not allowed"},
    {408, "Request Timeout", "request-timeout", "Request timeout"},
    {409, "Conflict", "conflict", "Conflict"},
    {411, "Length Required", "length-required", "Length required"},
    {412, "Precondition Failed", "precondition-failed", "Precondition failed"},
    {413, "Content Too Large", "too-large", "Request body too large"},
    {414, "URI Too Long", "uri-too-long", "Request line too long"},
    {415, "Unsupported Media Type", "unsupported-media-type", "Unsupported media type"},
    {422, "Unprocessable Content", "validation", "Validation failed"},
    {428, "Precondition Required", "precondition-required", "Precondition required"},
    {429, "Too Many Requests", "too-many-requests", "Too many requests"},
    {431, "Request Header Fields Too Large", "header-too-large", "Request header too large"},
    {500, "Internal Server Error", "internal", "Internal server error"},
    {501, "Not Implemented", "not-implemented", "Not implemented"},
    {503, "Service Unavailable", "unavailable", "Service unavailable"},
    {505, "HTTP Version Not Supported", "http-version-not-supported", "HTTP version not supported"},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

_Static_assert(NROWS <= LD_HTTP_STATUS_MAX, "the status table outgrew LD_HTTP_STATUS_MAX");

static const struct row *find(int code)
{
	unsigned lo = 0, hi = NROWS;

	/* Binary search: this runs for every response's status line. */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (rows[mid].code == code)
			return &rows[mid];
		if (rows[mid].code < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *ld_http_reason(int code)
{
	const struct row *r = find(code);

	return r ? r->reason : "Unknown";
}

void ld_http_problem_kind(int code, const char **slug, const char **title)
{
	const struct row *r = find(code);

	if (!r || !r->slug)
		r = find(500);
	*slug = r->slug;
	*title = r->title;
}

unsigned ld_http_status_codes(unsigned *codes, unsigned max)
{
	unsigned i;

	for (i = 0; i < NROWS && i < max; i++)
		codes[i] = (unsigned)rows[i].code;
	return i;
}

void ld_http_problem_open(struct ld_json *j, int status, const char *detail)
{
	const char *slug, *title;
	char type[64];

	ld_http_problem_kind(status, &slug, &title);
	snprintf(type, sizeof(type), "/problems/%s", slug);
	ld_json_obj_begin(j);
	ld_json_key(j, "type");
	ld_json_str(j, type);
	ld_json_key(j, "title");
	ld_json_str(j, title);
	ld_json_key(j, "status");
	ld_json_int(j, status);
	ld_json_key(j, "detail");
	ld_json_str(j, detail);
}
