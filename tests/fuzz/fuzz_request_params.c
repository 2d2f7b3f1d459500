/*
 * fuzz_request_params.c - the small request-detail parsers: router, query
 * parameters, cursors, entity-tag lists, Accept-Encoding, traceparent and
 * request ids. The first byte picks the parser; the rest is its input, copied
 * to an exact-size heap buffer so ASan sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/params.h"
#include "http/negotiate.h"
#include "http/router.h"
#include "obs/trace.h"

static const char *const routes[] = {"unmatched", "/v1/users", "/v1/users/{id}",
				     "/v1/users/{id}/items", "/v1/items/{id}"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ld_route_match m;
	char *p, tid[33], flags[3], enc[16];
	const char *v;
	size_t n;
	int64_t id = 0;
	int r;

	if (size < 1)
		return 0;
	p = malloc(size - 1 ? size - 1 : 1);
	memcpy(p, data + 1, size - 1);
	n = size - 1;
	switch (data[0] % 7) {
	case 0:
		r = ld_router_match(routes, 5, p, n, &m);
		if (r >= 0 && m.param && (m.param < p || m.param + m.param_len > p + n))
			abort();
		break;
	case 1:
		if (ld_query_param(p, n, "cursor", &v, &n) && (v < p || v > p + size))
			abort();
		break;
	case 2:
		if (ld_cursor_decode(p, n, &id) == 0) {
			/* Whatever decodes must encode back to the same text. */
			ld_cursor_encode(id, enc, sizeof(enc));
			if (strlen(enc) != n || memcmp(enc, p, n) != 0)
				abort();
		}
		break;
	case 3:
		(void)ld_etag_list_has(p, n, "\"5.2\"", data[0] & 8);
		break;
	case 4:
		(void)ld_if_match_version(p, n, 5);
		break;
	case 5:
		(void)ld_accepts_gzip(p, n);
		break;
	default:
		if (ld_traceparent_parse(p, n, tid, flags) == 0 && strlen(tid) != 32)
			abort();
		(void)ld_request_id_ok(p, n);
		break;
	}
	free(p);
	return 0;
}
