/*
 * conn.c - one client connection: read, parse, hand the request to the
 * application, write the response, repeat (keep-alive and pipelining).
 *
 * Lifetime: a connection owns two libuv handles (the socket and its timer) and
 * is freed when both are closed AND no request is with the application. The
 * second condition matters because a write request can outlive its client:
 * the store completes the op, the handler responds into a closing connection,
 * and only then may the memory go.
 *
 * Memory: everything a request needs lives in a struct ld_exchange (see
 * server_int.h), attached in on_alloc when the socket turns readable and
 * detached by maybe_detach once the connection is idle again: state HEAD, no
 * byte of a next request buffered, no handler on the stack and no libuv
 * request (write, shutdown) still pointing into it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/server_int.h"
#include "obs/metrics.h"
#include "obs/stats.h"

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* The read buffer grows in steps of this size; an exchange keeps a buffer of
 * exactly this size when it goes back to the cache, a grown one is freed. */
#define RBUF_STEP 16384
/* Exchanges cached per loop: enough for the requests one loop has in flight
 * at once on a busy server, not a pool as large as the largest burst ever
 * seen. */
#define XFREE_MAX 128
/* Each of the four response buffers grown past this is freed when its
 * exchange is cached, so a cached exchange holds at most RBUF_STEP +
 * 4 * XKEEP_MAX = 32 KiB of buffers and a full cache at most 4 MiB per loop
 * (ladder_http_exchange_cache_bytes counts them). A typical answer (headers
 * and a small JSON body) fits; a large one pays for a malloc instead of
 * pinning 64 KiB buffers for ever after one burst. */
#define XKEEP_MAX (4 * 1024)
/* The cap of a response body; an app may raise it for one answer (a photo
 * original), and finish_request puts it back. */
#define OUT_BODY_MAX (16 * 1024 * 1024)

static void process(struct ld_conn *c);
static void finish_request(struct ld_conn *c);
static void sink_resume(struct ld_body_sink *k);

/* exchange_bytes is what x's buffers hold (the cache's figure). */
static size_t exchange_bytes(const struct ld_exchange *x)
{
	return x->rbuf.cap + x->whdr.cap + x->wgzip.cap + x->req.out_hdrs.cap + x->req.out_body.cap;
}

/* close_body_file closes a response's file body, sent or not. */
static void close_body_file(struct ld_exchange *x)
{
	if (x->req.body_file >= 0)
		close(x->req.body_file);
	x->req.body_file = -1;
	x->file_send = false;
}

/* drop_sink ends a body sink the request will not complete. */
static void drop_sink(struct ld_exchange *x)
{
	if (x->sink) {
		x->sink->abort(x->sink);
		x->sink = NULL;
	}
}

static void exchange_free(struct ld_exchange *x)
{
	drop_sink(x);
	close_body_file(x);
	ld_buf_release(&x->rbuf);
	ld_buf_release(&x->whdr);
	ld_buf_release(&x->wgzip);
	ld_buf_release(&x->req.out_hdrs);
	ld_buf_release(&x->req.out_body);
	free(x);
}

/* exchange_get takes a cached exchange or makes one; NULL when out of memory.
 * Either way it is in the state of a connection waiting for a request. */
static struct ld_exchange *exchange_get(struct ld_worker *w)
{
	struct ld_server *s = w->s;
	struct ld_exchange *x = w->xfree;

	if (x) {
		w->xfree = x->next_free;
		w->nxfree--;
		ld_metrics_exchange_cache(-(int64_t)x->cached_bytes);
	} else {
		x = calloc(1, sizeof(*x) + s->app.app_req_size);
		if (!x)
			return NULL;
		/* Room for a full header block, a full body and one read of the
		 * next pipelined request; the parser and framing enforce the
		 * real limits. */
		ld_buf_init(&x->rbuf,
			    s->cfg.limits.headers_max + s->cfg.max_body + RBUF_STEP + 4096);
		ld_buf_init(&x->whdr, 64 * 1024);
		ld_buf_init(&x->wgzip, 16 * 1024 * 1024);
		ld_buf_init(&x->req.out_hdrs, 16 * 1024);
		ld_buf_init(&x->req.out_body, OUT_BODY_MAX);
		x->req.body_file = -1;
	}
	x->next_free = NULL;
	ld_buf_reset(&x->rbuf);
	ld_http_parser_init(&x->parser, &s->cfg.limits);
	x->req_start_ns = 0;
	x->req_len = 0;
	x->req.h.method_str = NULL;
	return x;
}

/* exchange_put gives x back: to the cache with its buffers (those grown past
 * their usual size freed), or to free() when the cache is full. */
static void exchange_put(struct ld_worker *w, struct ld_exchange *x)
{
	drop_sink(x);
	close_body_file(x);
	if (w->nxfree >= XFREE_MAX) {
		exchange_free(x);
		return;
	}
	if (x->rbuf.cap > RBUF_STEP)
		ld_buf_release(&x->rbuf);
	if (x->whdr.cap > XKEEP_MAX)
		ld_buf_release(&x->whdr);
	if (x->wgzip.cap > XKEEP_MAX)
		ld_buf_release(&x->wgzip);
	if (x->req.out_hdrs.cap > XKEEP_MAX)
		ld_buf_release(&x->req.out_hdrs);
	if (x->req.out_body.cap > XKEEP_MAX)
		ld_buf_release(&x->req.out_body);
	x->cached_bytes = exchange_bytes(x);
	ld_metrics_exchange_cache((int64_t)x->cached_bytes);
	x->next_free = w->xfree;
	w->xfree = x;
	w->nxfree++;
}

void ld__conn_cache_free(struct ld_worker *w)
{
	struct ld_exchange *x;

	while ((x = w->xfree)) {
		w->xfree = x->next_free;
		ld_metrics_exchange_cache(-(int64_t)x->cached_bytes);
		exchange_free(x);
	}
	w->nxfree = 0;
}

/* maybe_detach gives the exchange back once the connection is idle. */
static void maybe_detach(struct ld_conn *c)
{
	if (c->x && !c->closing && c->state == CONN_HEAD && c->x->rbuf.len == 0 && !c->in_handler) {
		exchange_put(c->w, c->x);
		c->x = NULL;
	}
}

static void maybe_free(struct ld_conn *c)
{
	struct ld_worker *w = c->w;

	/* A 100 Continue still with libuv holds c in its callback's data. */
	if (c->handles || c->state == CONN_BUSY || c->continues_inflight)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub(&w->s->conns, 1);
	ld_metrics_connections(-1);
	/* Every libuv request into the exchange has called back by now:
	 * closing a handle cancels its writes and shutdowns first. */
	if (c->x)
		exchange_put(w, c->x);
	free(c);
	ld__worker_maybe_finish(w);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct ld_conn *c = h->data;

	c->handles--;
	maybe_free(c);
}

static void on_wpoll_closed(uv_handle_t *h)
{
	struct ld_conn *c = h->data;

	close(c->wpoll_fd);
	c->wpoll_fd = -1;
	on_handle_closed(h);
}

void ld__conn_close(struct ld_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	if (c->wpoll_fd >= 0)
		uv_close((uv_handle_t *)&c->wpoll, on_wpoll_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

bool ld__conn_idle(const struct ld_conn *c)
{
	return c->state == CONN_HEAD && (!c->x || c->x->rbuf.len == 0);
}

void ld__conn_drain(struct ld_conn *c)
{
	if (ld__conn_idle(c))
		ld__conn_close(c);
	else
		c->close_after = true;
}

static void on_timer(uv_timer_t *t);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/*
 * Timers are lazy: arm() records a deadline and touches libuv's timer heap
 * only when the new deadline is earlier than the one the timer is set for.
 * A keep-alive request would otherwise start and stop the timer three times;
 * now a later deadline waits for the timer to fire and re-arm itself.
 */
static void arm(struct ld_conn *c, uint64_t ms)
{
	uint64_t due = uv_now(&c->w->l.uv) + ms;

	if (c->closing)
		return;
	c->deadline = due;
	if (c->timer_due && c->timer_due <= due)
		return;
	c->timer_due = due;
	uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* disarm drops the deadline; a pending timer will fire and find none. */
static void disarm(struct ld_conn *c)
{
	c->deadline = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ld_conn *c = h->data;
	struct ld_buf *rb;

	buf->base = NULL;
	buf->len = 0;
	/* The socket is readable: an idle connection takes its exchange now.
	 * Without one the read fails with UV_ENOBUFS and the connection goes. */
	if (!c->x && !(c->x = exchange_get(c->w)))
		return;
	rb = &c->x->rbuf;
	/* Grow in 16 KiB steps up to the cap; at the cap, offer what is left
	 * (maybe nothing, which libuv reports as UV_ENOBUFS). */
	if (ld_buf_reserve(rb, RBUF_STEP) != 0 && rb->max > rb->len)
		ld_buf_reserve(rb, rb->max - rb->len);
	if (rb->data) {
		buf->base = rb->data + rb->len;
		buf->len = rb->cap - rb->len;
	}
}

static void update_reading(struct ld_conn *c)
{
	bool want = !c->closing && !c->peer_gone &&
		    (c->state == CONN_HEAD || (c->state == CONN_BODY && !c->x->sink_full));

	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/* prepare_req sets up the per-request fields shared by normal dispatch and
 * errors raised by the HTTP layer. */
static void prepare_req(struct ld_conn *c)
{
	struct ld_exchange *x = c->x;
	struct ld_req *r = &x->req;
	struct ld_server *s = c->w->s;

	r->loop = &c->w->l;
	r->conn = c;
	r->start_ns = x->req_start_ns ? x->req_start_ns : ld_now_ns();
	ld_stage_clock_start(&r->stages, r->start_ns, ld_obs_stage_timing());
	r->route = 0;
	r->profile_route = 0;
	r->user_id = 0;
	r->client[0] = '\0'; /* the exchange may have served another client */
	r->content_type = NULL;
	r->sink = NULL;
	close_body_file(x);
	ld_buf_reset(&r->out_hdrs);
	ld_buf_reset(&r->out_body);
	memset(x->app_state, 0, s->app.app_req_size);
	r->app = x->app_state;
	ld__request_ids(c->w, r);
	c->responded = false;
	ld_metrics_inflight(1);
}

/* repoint_header parses the (complete, already valid) header block again,
 * so every field points into the read buffer as it is now: the buffer may
 * have been reallocated while the body arrived. Microseconds, and only when
 * the buffer moved. */
static void repoint_header(struct ld_conn *c)
{
	struct ld_exchange *x = c->x;
	struct ld_http_parser p;

	if (x->req.h.method_str == x->rbuf.data)
		return;
	ld_http_parser_init(&p, &c->w->s->cfg.limits);
	(void)ld_http_parse_request(&p, x->rbuf.data, x->rbuf.len, &x->req.h);
}

static void http_error(struct ld_conn *c, int status, const char *detail)
{
	struct ld_server *s = c->w->s;
	struct ld_exchange *x = c->x;

	if (c->header_parsed) {
		repoint_header(c);
	} else {
		/* The header never parsed: nothing in it may be trusted. */
		memset(&x->req.h, 0, sizeof(x->req.h));
		x->req.h.content_length = -1;
		x->req.h.version_minor = 1;
	}
	/* The client may still be sending what we refused: read and drop it
	 * before closing, or the kernel answers it with a reset that can
	 * destroy our error response before the client reads it. */
	c->linger = true;
	drop_sink(x);
	x->req.body = NULL;
	x->req.body_len = 0;
	x->req_len = x->rbuf.len;
	c->close_after = true;
	c->state = CONN_BUSY;
	disarm(c);
	prepare_req(c);
	/* The read stage ends where the handler's first step begins: one
	 * reading for both. */
	ld_stage_mark_at(&x->req.stages, LD_STAGE_READ, ld_req_step_begin(&x->req));
	c->in_handler = true;
	s->app.on_http_error(&x->req, status, detail, s->app.arg);
	c->in_handler = false;
}

static void on_timer(uv_timer_t *t)
{
	struct ld_conn *c = t->data;
	uint64_t now = uv_now(&c->w->l.uv);

	c->timer_due = 0;
	if (!c->deadline)
		return;
	if (now < c->deadline) {
		/* The deadline moved later since the timer was set. */
		c->timer_due = c->deadline;
		uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
		return;
	}
	c->deadline = 0;
	switch (c->state) {
	case CONN_HEAD:
		if (!c->x || c->x->rbuf.len == 0 || ld_http_parser_idle(&c->x->parser)) {
			/* Idle keep-alive (or a connection that never spoke,
			 * or sent only the empty lines the parser skips). */
			ld__conn_close(c);
		} else {
			http_error(c, 408, "the request header did not arrive in time");
			process(c);
		}
		break;
	case CONN_BODY:
		http_error(c, 408, "the request body stalled");
		process(c);
		break;
	case CONN_WRITING:
		/* The client does not read its response: give up on it. */
		ld__conn_close(c);
		break;
	case CONN_LINGER:
		ld__conn_close(c);
		break;
	case CONN_BUSY:
		break;
	}
}

/* start_body decides the framing once the header is parsed. Returns 0 to go
 * on, -1 when an error response was started. */
static int start_body(struct ld_conn *c)
{
	struct ld_server *s = c->w->s;
	struct ld_exchange *x = c->x;
	struct ld_http_request *h = &x->req.h;
	int rc = 0;

	uint64_t max = s->cfg.max_body, route_max;

	x->chunk_in = 0;
	x->chunk_out = 0;
	/* The read buffer keeps its cap whatever the route's: a larger body
	 * goes to a sink as it arrives, or is refused below. */
	if (s->app.body_max && (route_max = s->app.body_max(h, s->app.arg)) > 0)
		max = route_max;
	x->sunk = 0;
	if (h->chunked) {
		ld_http_chunked_init(&x->chunked, max);
	} else if (h->content_length >= 0) {
		if ((uint64_t)h->content_length > max) {
			http_error(c, 413, "the request body is larger than the limit");
			rc = -1;
			goto out;
		}
	}
	/* Past the size checks: a sink is only opened for a body that may
	 * arrive. */
	if (h->chunked || h->content_length > 0) {
		int refuse = 0;
		const char *why = NULL;

		x->sink_full = false;
		if (s->app.body_sink)
			x->sink = s->app.body_sink(h, s->app.arg, &refuse, &why);
		if (x->sink) {
			x->sink->resume = sink_resume;
			x->sink->resume_arg = c;
			x->sink->loop = &c->w->l;
		}
		/* A body allowed past max_body but with nowhere to go (the
		 * sink could not open: no memory, disk full, no descriptors)
		 * would have to be held whole in memory, up to the route's
		 * cap, once per such request: refuse it before reading any. */
		if (!x->sink && !refuse && max > s->cfg.max_body) {
			refuse = 503;
			why = "the upload cannot be stored now; retry after a moment";
		}
		if (!x->sink && refuse) {
			http_error(c, refuse, why ? why : "the request body was refused");
			rc = -1;
			goto out;
		}
	}
	c->state = CONN_BODY;
	arm(c, s->cfg.body_timeout_ms);
out:
	return rc;
}

/* sink_resume: the sink has room again; read on (body_sink's contract). */
static void sink_resume(struct ld_body_sink *k)
{
	struct ld_conn *c = k->resume_arg;

	if (c->closing || !c->x || c->x->sink != k || !c->x->sink_full)
		return;
	c->x->sink_full = false;
	arm(c, c->w->s->cfg.body_timeout_ms);
	process(c);
}

/* sink_ready hands the body bytes that arrived (have of them at base) to
 * the sink and drops them from the read buffer, so the buffer never holds
 * more than the header and one read. Same returns as body_ready; -500 when
 * the sink refused. */
static int sink_ready(struct ld_exchange *x, char *base, size_t have)
{
	struct ld_http_request *h = &x->req.h;
	size_t consumed = 0, produced = 0, take;
	int rc;

	if (h->chunked) {
		/* Decode in place, then pass the payload on and drop what was
		 * consumed; the decoder keeps its own state and total. */
		rc = ld_http_chunked_decode(&x->chunked, base, base, have, &consumed, &produced);
		if (rc < 0)
			return rc;
	} else {
		uint64_t need = (uint64_t)h->content_length - x->sunk;

		take = have < need ? have : (size_t)need;
		consumed = produced = take;
		rc = x->sunk + take == (uint64_t)h->content_length;
	}
	if (produced) {
		int wr = x->sink->write(x->sink, base, produced);

		if (wr < 0)
			return -500;
		x->sink_full = wr == LD_SINK_FULL;
	}
	x->sunk += produced;
	memmove(base, base + consumed, have - consumed);
	x->rbuf.len -= consumed;
	x->rbuf.data[x->rbuf.len] = '\0';
	if (rc == 1) {
		x->req.body = NULL;
		x->req.body_len = (size_t)x->sunk;
		x->req_len = h->header_len;
	}
	return rc;
}

/* body_ready returns 1 when the whole body is in rbuf (and sets req.body),
 * 0 when more is needed, or minus a status code. */
static int body_ready(struct ld_conn *c)
{
	struct ld_exchange *x = c->x;
	struct ld_http_request *h = &x->req.h;
	char *base = x->rbuf.data + h->header_len;
	size_t have = x->rbuf.len - h->header_len;
	size_t consumed = 0, produced = 0;
	int rc;

	if (x->sink) {
		rc = sink_ready(x, base, have);
		goto out;
	}
	if (h->chunked) {
		rc = ld_http_chunked_decode(&x->chunked, base + x->chunk_out, base + x->chunk_in,
					    have - x->chunk_in, &consumed, &produced);
		x->chunk_in += consumed;
		x->chunk_out += produced;
		if (rc < 0)
			goto out;
		/* Squeeze out the chunk framing already decoded so a body of
		 * many tiny chunks cannot need more buffer than its payload. */
		if (x->chunk_in > x->chunk_out) {
			size_t rest = have - x->chunk_in;

			memmove(base + x->chunk_out, base + x->chunk_in, rest);
			x->rbuf.len -= x->chunk_in - x->chunk_out;
			x->rbuf.data[x->rbuf.len] = '\0';
			x->chunk_in = x->chunk_out;
		}
		if (rc == 1) {
			x->req.body = base;
			x->req.body_len = x->chunk_out;
			x->req_len = h->header_len + x->chunk_in;
		}
	} else {
		size_t need = h->content_length > 0 ? (size_t)h->content_length : 0;

		rc = have >= need;
		if (rc) {
			x->req.body = need ? base : NULL;
			x->req.body_len = need;
			x->req_len = h->header_len + need;
		}
	}
out:
	return rc;
}

static void dispatch(struct ld_conn *c)
{
	struct ld_server *s = c->w->s;

	struct ld_exchange *x = c->x;

	repoint_header(c);
	if (!x->sink && (x->req.h.chunked || x->req.body_len))
		x->req.body = x->rbuf.data + x->req.h.header_len;
	if (!x->req.h.keep_alive)
		c->close_after = true;
	c->state = CONN_BUSY;
	disarm(c);
	prepare_req(c);
	/* The handler owns the sink from here on. */
	x->req.sink = x->sink;
	x->sink = NULL;
	ld_stage_mark_at(&x->req.stages, LD_STAGE_READ, ld_req_step_begin(&x->req));
	c->in_handler = true;
	s->app.on_request(&x->req, s->app.arg);
	c->in_handler = false;
}

/*
 * Each 100 Continue has a write request of its own, freed in its callback.
 * libuv runs a write's callback one loop turn after the write, even when the
 * bytes went out at once, so one request per connection cannot be reused: a
 * pipelined second request that also expects a 100 can be answered in the
 * same turn, and writing with a request still on libuv's completed list
 * corrupts that list. The line itself is static, so the write points into
 * neither the exchange nor the connection; only wr->data does, which is why
 * the connection waits for continues_inflight to reach 0 before it is freed.
 */
struct continue_write {
	uv_write_t wr;
	struct ld_conn *c;
};

static void on_continue_written(uv_write_t *wr, int status)
{
	struct continue_write *cw = wr->data;
	struct ld_conn *c = cw->c;

	free(cw);
	c->continues_inflight--;
	maybe_detach(c);
	maybe_free(c);
}

/* send_continue queues a 100 Continue; 0, or -1 with the connection closing
 * (out of memory or a dead socket: the body would never be asked for). */
static int send_continue(struct ld_conn *c)
{
	uv_buf_t b = uv_buf_init((char *)continue_100, sizeof(continue_100) - 1);
	struct continue_write *cw = malloc(sizeof(*cw));

	if (!cw)
		goto fail;
	cw->c = c;
	cw->wr.data = cw;
	/* A queued write, not a try: a partial 100 line would corrupt the
	 * response that follows it, and libuv keeps queued writes in order. */
	if (uv_write(&cw->wr, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) != 0) {
		free(cw);
		goto fail;
	}
	c->continues_inflight++;
	return 0;
fail:
	ld__conn_close(c);
	return -1;
}

static void process(struct ld_conn *c)
{
	struct ld_server *s = c->w->s;
	int rc;

	while (!c->closing && (c->state == CONN_HEAD || c->state == CONN_BODY)) {
		struct ld_exchange *x = c->x;

		if (c->state == CONN_HEAD) {
			if (!x || x->rbuf.len == 0)
				break;
			if (!x->req_start_ns) {
				x->req_start_ns = ld_now_ns();
				arm(c, s->cfg.header_timeout_ms);
			}
			rc =
			    ld_http_parse_request(&x->parser, x->rbuf.data, x->rbuf.len, &x->req.h);
			if (rc == 0)
				break;
			if (rc < 0) {
				http_error(c, -rc,
					   x->parser.why ? x->parser.why
							 : "the request is malformed");
				break;
			}
			c->header_parsed = true;
			if (start_body(c) < 0)
				break;
		}
		rc = body_ready(c);
		if (rc < 0) {
			http_error(c, -rc,
				   -rc == 413	    ? "the request body is larger than the limit"
				   : -rc == 500	    ? "the request body could not be stored"
				   : x->chunked.why ? x->chunked.why
						    : "the chunked request body is malformed");
			break;
		}
		if (rc == 0 && x->sink_full) {
			/* The sink writes what it has: no reading, and no
			 * body timeout (the stall is ours), until it resumes. */
			disarm(c);
			break;
		}
		if (rc == 0) {
			if (x->req.h.expect_continue && !c->sent_continue) {
				c->sent_continue = true;
				(void)send_continue(c);
			}
			break;
		}
		dispatch(c);
	}
	update_reading(c);
	maybe_detach(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct ld_conn *c = stream->data;

	if (nread > 0) {
		c->x->rbuf.len += (size_t)nread;
		c->x->rbuf.data[c->x->rbuf.len] = '\0';
		if (c->state == CONN_BODY)
			arm(c, c->w->s->cfg.body_timeout_ms);
		process(c);
	} else if (nread == UV_ENOBUFS && !c->x) {
		/* No memory for an exchange: nothing can be answered. */
		ld__conn_close(c);
	} else if (nread == UV_ENOBUFS && c->x->rbuf.len < c->x->rbuf.max) {
		/* Room left under the cap, so the buffer could not grow: out of
		 * memory, not a request too large. Telling the client 413 would
		 * be a lie, and an answer needs memory too: close. */
		ld__conn_close(c);
	} else if (nread == UV_ENOBUFS) {
		/* At the cap: only reachable with a header block or body past
		 * their caps, which the parser and framing checks refuse first. */
		http_error(c, 413, "the request is larger than the limit");
		process(c);
	} else if (nread < 0) {
		c->peer_gone = true;
		if (c->state == CONN_HEAD || c->state == CONN_BODY)
			ld__conn_close(c);
		else
			c->close_after = true;
	} else {
		/* Nothing to read after all (EAGAIN): an idle connection does
		 * not keep the exchange on_alloc gave it. */
		maybe_detach(c);
	}
}

/* stages_end records the request's stage times once its response is out
 * (or given up on); wrote says whether the write stage ran. */
static void stages_end(struct ld_conn *c, bool wrote)
{
	struct ld_req *r = &c->x->req;
	uint64_t end;

	if (!r->stages.on)
		return;
	/* The end is a clock reading of its own, from the request's start_ns:
	 * the stats' total is then a measurement the stages can be checked
	 * against (a stretch no mark charged shows as total > sum). The write
	 * mark's reading is that end; without a write, the render mark just
	 * taken in the same step is (ld_req_respond's reading). */
	end = wrote ? ld_now_ns() : ld_req_now(r);
	if (wrote)
		ld_stage_mark_at(&r->stages, LD_STAGE_WRITE, end);
	ld_obs_record(c->w->l.index, r->profile_route, &r->stages, end);
	r->stages.on = false;
}

/* At most this much of a file per loop turn: one connection's large body
 * does not hold the loop while others wait. */
#define FILE_TURN_MAX (4u << 20)

static void send_file(struct ld_conn *c);

static void on_wpoll(uv_poll_t *p, int status, int events)
{
	struct ld_conn *c = p->data;

	uv_poll_stop(p);
	if (status < 0 || c->closing) {
		stages_end(c, true);
		c->state = CONN_HEAD;
		ld__conn_close(c);
		return;
	}
	send_file(c);
}

/* wait_writable calls send_file again once the socket takes more. */
static int wait_writable(struct ld_conn *c)
{
	uv_os_fd_t fd;

	if (c->wpoll_fd < 0) {
		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
			return -1;
		c->wpoll_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (c->wpoll_fd < 0)
			return -1;
		if (uv_poll_init(&c->w->l.uv, &c->wpoll, c->wpoll_fd) != 0) {
			close(c->wpoll_fd);
			c->wpoll_fd = -1;
			return -1;
		}
		c->wpoll.data = c;
		c->handles++;
	}
	return uv_poll_start(&c->wpoll, UV_WRITABLE, on_wpoll) == 0 ? 0 : -1;
}

/* send_file sends the response's file body (its header is out) with
 * sendfile(2), as much as the socket takes; then the request is finished
 * like any other. */
static void send_file(struct ld_conn *c)
{
	struct ld_exchange *x = c->x;
	uint64_t len = x->req.body_file_len, turn = 0;
	uv_os_fd_t sock;

	if (uv_fileno((uv_handle_t *)&c->tcp, &sock) != 0)
		goto fail;
	while (x->file_off < len) {
		off_t off = (off_t)x->file_off;
		uint64_t left = len - x->file_off;
		ssize_t n;

		if (turn >= FILE_TURN_MAX) {
			/* Yield: the socket is writable, so the poll fires on
			 * the next turn. */
			if (wait_writable(c) != 0)
				goto fail;
			return;
		}
		n = sendfile(sock, x->req.body_file, &off, left < (1u << 20) ? left : (1u << 20));
		if (n > 0) {
			x->file_off += (uint64_t)n;
			turn += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_writable(c) != 0)
				goto fail;
			c->state = CONN_WRITING;
			arm(c, c->w->s->cfg.write_timeout_ms);
			return;
		}
		goto fail; /* an error, or the file shorter than it was said to be */
	}
	close_body_file(x);
	finish_request(c);
	if (!c->in_handler)
		process(c);
	return;
fail:
	/* Part of the body may be out: the stream is in doubt. */
	stages_end(c, true);
	c->state = CONN_HEAD;
	ld__conn_close(c);
}

static void on_write(uv_write_t *wr, int status)
{
	struct ld_conn *c = wr->data;

	if (status < 0 || c->closing) {
		stages_end(c, true);
		c->state = CONN_HEAD;
		ld__conn_close(c);
		maybe_free(c);
		return;
	}
	if (c->x->file_send) {
		send_file(c);
		return;
	}
	finish_request(c);
	process(c);
}

/*
 * Lingering close (as nginx's lingering_close): after an error response,
 * shut our side down and discard what the client still sends, for at most
 * LINGER_MS or until it closes, then close.
 */
#define LINGER_MS 2000

static void linger_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static _Thread_local char sink[16384];

	buf->base = sink;
	buf->len = sizeof(sink);
}

static void linger_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	if (nread < 0)
		ld__conn_close(stream->data);
}

static void on_linger_shutdown(uv_shutdown_t *req, int status)
{
	struct ld_conn *c = req->data;

	if (status < 0 || c->closing) {
		ld__conn_close(c);
		return;
	}
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = uv_read_start((uv_stream_t *)&c->tcp, linger_alloc, linger_read) == 0;
	if (!c->reading)
		ld__conn_close(c);
}

static void start_linger(struct ld_conn *c)
{
	c->state = CONN_LINGER;
	c->x->shutdown_req.data = c;
	if (uv_shutdown(&c->x->shutdown_req, (uv_stream_t *)&c->tcp, on_linger_shutdown) != 0) {
		ld__conn_close(c);
		return;
	}
	arm(c, LINGER_MS);
}

/* finish_request runs once the response is fully written. */
static void finish_request(struct ld_conn *c)
{
	struct ld_server *s = c->w->s;
	struct ld_exchange *x = c->x;

	stages_end(c, true);
	close_body_file(x);
	ld_buf_consume(&x->rbuf, x->req_len);
	x->req_len = 0;
	x->req.h.method_str = NULL;
	/* A larger answer an app allowed itself was for this request only;
	 * exchange_put frees the grown buffers. */
	x->rbuf.max = s->cfg.limits.headers_max + s->cfg.max_body + RBUF_STEP + 4096;
	x->req.out_body.max = OUT_BODY_MAX;
	c->header_parsed = false;
	ld_http_parser_reset(&x->parser);
	x->req_start_ns = 0;
	c->sent_continue = false;
	c->state = CONN_HEAD;
	if (c->close_after || c->peer_gone || atomic_load(&s->stage) >= 1) {
		if (c->linger && !c->peer_gone && atomic_load(&s->stage) < 2)
			start_linger(c);
		else
			ld__conn_close(c);
		return;
	}
	if (x->rbuf.len == 0)
		arm(c, s->cfg.keepalive_timeout_ms);
}

bool ld_req_client_gone(const struct ld_req *r)
{
	const struct ld_conn *c = r->conn;
	uv_os_fd_t fd;
	char b;
	ssize_t n;

	if (c->closing || c->peer_gone)
		return true;
	if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
		return true;
	n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		return false; /* a pipelined request waits: the client is there */
	if (n == 0)
		return true;
	return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

void ld_req_close_after(struct ld_req *r)
{
	r->conn->close_after = true;
}

void ld_req_respond(struct ld_req *r, int status)
{
	struct ld_conn *c = r->conn;
	struct ld_exchange *x = c->x;
	struct ld_server *s = c->w->s;
	size_t total = 0, done;
	uint64_t now;
	int n;
	unsigned i;

	c->responded = true;
	ld_metrics_inflight(-1);
	if (atomic_load(&s->stage) >= 1)
		c->close_after = true;
	/* One clock reading once the answer is built (or not: the client is
	 * gone) serves the render mark, the app's on_respond (the admission
	 * limiter's latency sample) and the request's latency: they all end
	 * here. It begins the step, so stages_end can reuse it. */
	if (!c->closing && ld__response_build(c, status) != 0)
		status = 500; /* the answer could not be assembled: a 500 replaced it */
	now = ld_req_step_begin(r);
	ld_stage_mark_at(&r->stages, LD_STAGE_RENDER, now);
	if (s->app.on_respond)
		s->app.on_respond(r, status, s->app.arg);
	if (c->closing) {
		/* The client is gone (or we cut it): count and log the request,
		 * build nothing, then let the connection go. */
		ld__response_account(c, status, 0, now);
		stages_end(c, false);
		c->state = CONN_HEAD;
		maybe_free(c);
		return;
	}
	if (x->nwbufs == 0) {
		ld__response_account(c, status, 0, now);
		stages_end(c, false);
		c->state = CONN_HEAD;
		ld__conn_close(c);
		return;
	}
	for (i = 0; i < x->nwbufs; i++)
		total += x->wbufs[i].len;
	ld__response_account(c, status, total + (x->file_send ? x->req.body_file_len : 0), now);
	n = uv_try_write((uv_stream_t *)&c->tcp, x->wbufs, x->nwbufs);
	done = n > 0 ? (size_t)n : 0;
	if (n < 0 && n != UV_EAGAIN) {
		stages_end(c, true);
		c->state = CONN_HEAD;
		ld__conn_close(c);
		return;
	}
	if (done == total && x->file_send) {
		send_file(c);
		return;
	}
	if (done == total) {
		finish_request(c);
		if (!c->in_handler)
			process(c);
		return;
	}
	/* Partial write: queue the rest and wait for the client to drain. */
	for (i = 0; i < x->nwbufs && done >= x->wbufs[i].len; i++)
		done -= x->wbufs[i].len;
	x->wbufs[i].base += done;
	x->wbufs[i].len -= done;
	c->state = CONN_WRITING;
	x->wreq.data = c;
	if (uv_write(&x->wreq, (uv_stream_t *)&c->tcp, x->wbufs + i, x->nwbufs - i, on_write) < 0) {
		stages_end(c, true);
		c->state = CONN_HEAD;
		ld__conn_close(c);
		return;
	}
	arm(c, s->cfg.write_timeout_ms);
}

void ld__conn_accept(struct ld_worker *w)
{
	struct ld_server *s = w->s;
	struct ld_conn *c;

	/* Only the connection itself: its exchange comes with its first byte. */
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->w = w;
	uv_tcp_init(&w->l.uv, &c->tcp);
	uv_timer_init(&w->l.uv, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	c->wpoll_fd = -1;
	c->state = CONN_HEAD;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add(&s->conns, 1);
	ld_metrics_connections(1);
	if (uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)&c->tcp) != 0) {
		ld__conn_close(c);
		return;
	}
	if (atomic_load(&s->conns) > s->cfg.max_connections || atomic_load(&s->stage) >= 1) {
		/* Over the connection cap: refuse by closing rather than let
		 * every connection slow down. */
		ld_metrics_shed();
		ld__conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	arm(c, s->cfg.header_timeout_ms);
	update_reading(c);
}
