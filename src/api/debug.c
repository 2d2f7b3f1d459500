/*
 * debug.c - GET /debug/stats: the server's own profile as one JSON document
 * (docs/api.md), for `ladder bench --profile` and people.
 *
 * Who may read it: a loopback peer, or a request carrying the configured
 * admin token as a bearer token. With debug_allow = token the peer address
 * counts for nothing (for a proxy on the same host, where every client looks
 * like loopback). The document names threads and internal figures, nothing
 * secret, but it is not for the public either.
 */
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"

static bool token_ok(struct ld_api_req *q)
{
	const char *want = q->api->admin_token;
	const struct ld_http_field *f = ld_http_find(&q->r->h, "authorization");
	size_t n = want ? strlen(want) : 0;

	if (!n || !f || f->value_len != 7 + n || strncasecmp(f->value, "Bearer ", 7) != 0)
		return false;
	/* Constant time: the comparison must not tell how much matched. */
	return sodium_memcmp(f->value + 7, want, n) == 0;
}

static void gathered(const struct ld_obs_snapshot *snap, void *arg)
{
	struct ld_api_req *q = arg;
	struct ld_obs_store_info st;

	/* The wait for the other loops counts as handler time. */
	ld_stage_mark(&q->r->stages, LD_STAGE_HANDLER);
	ld_api_store_info(q, &st);
	if (ld_obs_render_json(snap, &st, &q->r->out_body) != 0) {
		ld_buf_reset(&q->r->out_body);
		ld_api_problem(q, 500, "the stats document could not be written");
		return;
	}
	ld_req_header(q->r, "Cache-Control", "no-store");
	ld_req_respond(q->r, 200);
}

void ld_api_debug_stats(struct ld_api_req *q)
{
	bool ok = token_ok(q) || (!q->api->debug_token_only && ld_req_peer_loopback(q->r));

	if (!ok) {
		ld_api_problem(q, 403,
			       q->api->debug_token_only
				   ? "the debug route needs the admin token (Authorization: Bearer)"
				   : "the debug route is for loopback clients or the admin token");
		return;
	}
	ld_obs_gather(&q->obs, q->r->loop->index, gathered, q);
}
