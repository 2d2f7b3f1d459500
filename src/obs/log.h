/*
 * log.h - structured logs: one JSON object per line on stdout.
 *
 * Request lines are built into a caller's buffer (each loop thread batches its
 * lines and writes them with one write(2)); event lines (start, stop, errors)
 * are rare and written at once under a lock so lines never interleave.
 */
#ifndef LD_LOG_H
#define LD_LOG_H

#include <stdint.h>

#include "base/buf.h"

struct ld_log_request {
	const char *request_id;
	const char *trace_id;
	const char *method; /* may be NULL (unparsable request) */
	const char *route;
	int status;
	uint64_t bytes;
	uint64_t duration_ns;
	int64_t user_id;    /* 0 = anonymous */
	const char *client; /* the client behind a trusted proxy, or NULL (not logged) */
};

/* ld_log_request_line appends one line (with '\n') to out. Returns 0, or an
 * error with no part of the line in out: -E2BIG / -ENOMEM when out has no
 * room for a line (what it holds is kept), or, in the rare case of a line
 * longer than the room reserved, out's failure (out is then reset: the lines
 * it held are lost with its memory, since a buffer's first failure is
 * final). */
int ld_log_request_line(struct ld_buf *out, const struct ld_log_request *e);

/* ld_log_event writes {"time","level","msg",...} now. level is "info",
 * "warn" or "error"; kv is NULL or pairs of strings ending in NULL. */
void ld_log_event(const char *level, const char *msg, const char *const *kv);

/* ld_log_write writes a batch of ready lines to stdout (whole, retrying on
 * short writes). */
void ld_log_write(const char *p, size_t n);

#endif
