/*
 * ops.c - /healthz, /readyz and /metrics, for load balancers and Prometheus.
 */
#include "api/api.h"
#include <string.h>

#include "api/argon2_area.h"
#include "api/idempotency.h"
#include "base/breaker.h"

#include "obs/metrics.h"
#include "obs/stats.h"

void ld_api_healthz(struct ld_api_req *q)
{
	/* Alive means "this loop answers": no dependency is consulted, so a
	 * database outage does not get the process restarted. */
	ld_buf_puts(&q->r->out_body, "{\"status\":\"ok\"}");
	ld_req_header(q->r, "Cache-Control", "no-store");
	ld_req_respond(q->r, 200);
}

void ld_api_readyz(struct ld_api_req *q)
{
	struct ld_store_stats st;
	const char *why = NULL;

	q->api->vt->stats(q->api->store, &st);
	if (ld_server_draining(q->r->loop))
		why = "draining";
	else if (!st.healthy || q->api->vt->ping(q->al->store) != 0)
		why = "store unavailable";
	ld_req_header(q->r, "Cache-Control", "no-store");
	if (why) {
		ld_buf_printf(&q->r->out_body, "{\"status\":\"unavailable\",\"reason\":\"%s\"}",
			      why);
		ld_req_header(q->r, "Retry-After", "1");
		ld_req_respond(q->r, 503);
		return;
	}
	ld_buf_puts(&q->r->out_body, "{\"status\":\"ready\"}");
	ld_req_respond(q->r, 200);
}

void ld_api_store_info(struct ld_api_req *q, struct ld_obs_store_info *st)
{
	struct ld_store_stats ss;

	q->api->vt->stats(q->api->store, &ss);
	memset(st, 0, sizeof(*st));
	st->driver = q->api->vt->name;
	st->queue_depth = ss.queue_depth;
	st->queue_cap = q->api->write_queue_cap;
	st->render = q->api->vt->render_stats;
	st->render_store = q->api->store;
}

/* metrics_gathered runs on this request's loop once every loop has added
 * its figures (stats.h): the per-loop series need that snapshot. */
static void metrics_gathered(const struct ld_obs_snapshot *snap, void *arg)
{
	struct ld_api_req *q = arg;
	struct ld_obs_store_info st;

	/* The wait for the other loops counts as handler time. */
	ld_stage_mark(&q->r->stages, LD_STAGE_HANDLER);
	ld_api_store_info(q, &st);
	ld_api_idem_metrics(&q->r->out_body);
	ld_argon2_area_metrics(&q->r->out_body);
	ld_api_rl_metrics(&q->r->out_body, q->api->cvt == &ld_cache_redis);
	ld_api_adm_metrics(&q->r->out_body);
	if (ld_metrics_render(&q->r->out_body) != 0 ||
	    ld_breaker_render_metrics(&q->r->out_body) != 0 ||
	    ld_obs_render_prom(snap, &st, &q->r->out_body) != 0 ||
	    (q->api->vt->render_metrics &&
	     q->api->vt->render_metrics(q->api->store, &q->r->out_body) != 0) ||
	    (q->api->cvt && q->api->cvt->render_metrics(q->api->cache, &q->r->out_body) != 0)) {
		ld_buf_reset(&q->r->out_body);
		ld_api_problem(q, 500, "metrics exposition failed");
		return;
	}
	q->r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	ld_req_respond(q->r, 200);
}

void ld_api_metrics(struct ld_api_req *q)
{
	ld_obs_gather(&q->obs, q->r->loop->index, metrics_gathered, q);
}
