/*
 * router.h - matches a request path against a fixed table of patterns.
 *
 * A pattern is a path whose segments are literal or "{name}"; a "{name}"
 * segment matches one non-empty segment (no '/') and is captured. At most one
 * capture per pattern is needed by the API, so that is all the router keeps.
 * Matching is exact: no trailing-slash or case folding, no percent-decoding
 * (the API's paths are plain ASCII; anything else simply does not match).
 *
 * Threading: the table is read-only; matching allocates nothing.
 */
#ifndef LD_ROUTER_H
#define LD_ROUTER_H

#include <stddef.h>

struct ld_route_match {
	const char *param; /* captured segment, points into the path */
	size_t param_len;
};

/* ld_router_match returns the index of the first pattern matching
 * path[0..len), or -1. */
int ld_router_match(const char *const *patterns, unsigned n, const char *path, size_t len,
		    struct ld_route_match *m);

#endif
