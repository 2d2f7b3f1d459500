/*
 * trace.h - W3C Trace Context (traceparent) and request ids.
 *
 * traceparent is "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>".
 * Version 00 is parsed strictly; a higher version is accepted when its first
 * four fields have the 00 shape (the spec's forward-compatibility rule).
 * All-zero ids are invalid. Hex must be lower-case.
 */
#ifndef LD_TRACE_H
#define LD_TRACE_H

#include <stdbool.h>
#include <stddef.h>

/* ld_traceparent_parse copies the trace id (33 bytes with NUL) and flags (3
 * bytes) when s[0..n) is a valid traceparent; returns 0 or -EINVAL. */
int ld_traceparent_parse(const char *s, size_t n, char *trace_id, char *flags);

/* ld_request_id_ok says whether a client's X-Request-Id may be echoed: 1-128
 * characters of [A-Za-z0-9._:-] (nothing that could split a header or a log). */
bool ld_request_id_ok(const char *s, size_t n);

/* ld_hex_lower writes 2n lower-case hex digits of p[0..n) and a NUL. */
void ld_hex_lower(const unsigned char *p, size_t n, char *out);

#endif
