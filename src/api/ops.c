/*
 * ops.c - /healthz, /readyz and /metrics, for load balancers and Prometheus.
 */
#include "api/api.h"
#include "obs/metrics.h"

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

void ld_api_metrics(struct ld_api_req *q)
{
	if (ld_metrics_render(&q->r->out_body) != 0) {
		ld_api_problem(q, 500, "metrics exposition failed");
		return;
	}
	q->r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	ld_req_respond(q->r, 200);
}
