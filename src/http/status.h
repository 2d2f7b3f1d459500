/*
 * status.h - the one table of the HTTP statuses ladder may answer with.
 *
 * Each row holds what every layer says about a status: the reason phrase of
 * the status line, and for errors the RFC 9457 problem type slug
 * ("/problems/<slug>") and title of the problem document that answers it.
 * The status line (response.c), the problem documents (api.c and the server's
 * own 500) and the metrics' status series (given the codes at start-up) all
 * read this table, so they cannot disagree about which statuses exist.
 *
 * Pure data and lookups: safe from any thread.
 */
#ifndef LD_HTTP_STATUS_H
#define LD_HTTP_STATUS_H

struct ld_json;

/* More rows than this would not fit the metrics' series (obs/metrics.c
 * refuses them at start-up). */
#define LD_HTTP_STATUS_MAX 32

/* ld_http_reason returns the reason phrase for code, "Unknown" for a code
 * the table does not hold. */
const char *ld_http_reason(int code);

/* ld_http_problem_kind sets the problem slug and title for code; a code
 * without its own problem type (unknown, or not an error) gets "internal". */
void ld_http_problem_kind(int code, const char **slug, const char **title);

/* ld_http_status_codes fills codes[0..max) with the table's codes in
 * ascending order and returns how many it wrote (all of them when max >=
 * LD_HTTP_STATUS_MAX). */
unsigned ld_http_status_codes(unsigned *codes, unsigned max);

/* ld_http_problem_open starts a problem document for status in j: opens the
 * object and writes "type", "title", "status" and "detail". The caller may
 * add members (422's "errors") and closes the object. */
void ld_http_problem_open(struct ld_json *j, int status, const char *detail);

#endif
