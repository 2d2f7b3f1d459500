/*
 * engine.c - the threads, connections and clocks of `ladder bench` (see
 * engine.h for the model).
 *
 * Hot path budget: per answer one clock read, one parse pass over the bytes
 * in the read buffer (no copy), three histogram increments and one write from
 * bytes prepared beforehand. No allocation after start-up.
 */
#include "bench/engine.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http/client.h"

#define NS_PER_S    1000000000ULL
#define LATE_NS	    1000000ULL /* a send more than 1 ms after its time is late */
#define QUEUE_CAP   (1u << 20) /* waiting requests per thread before drops */
#define SWEEP_MS    20
#define BODY_CAP    (256 * 1024)
#define SCRATCH_CAP (64 * 1024)
#define BACKOFF_NS  (100ULL * 1000000ULL)
#define RESENDS_MAX 3 /* sends of one request after stale connections (resend_stale) */
/* A connection idle this long before a send counts as one that sat open:
 * one opened for the request is used within microseconds of its connect. */
#define IDLE_SAT_NS (1000ULL * 1000ULL)

enum { C_FREE, C_CONNECTING, C_IDLE, C_BUSY, C_CLOSING };

struct worker;

struct conn {
	uv_tcp_t tcp;
	uv_write_t wreq;
	struct worker *w;
	int state;
	bool initial; /* one of the connections opened before the start */
	struct ld_http_resp resp;
	struct ld_bench_req req;
	struct ld_buf scratch;
	struct ld_buf body;
	uint64_t intended, sent, deadline;
	int attempt;	  /* retries made before this send */
	int resends;	  /* times this request was sent again after a stale connection */
	char *owned;	  /* a retry's copy of the request bytes (req.data) */
	uint64_t idle_at; /* when it last became idle */
	bool got_bytes;	  /* a byte of the current answer arrived */
	bool answered;	  /* it carried an answer before */
};

/* A request waiting for its retry. */
struct pending {
	uint64_t intended, due;
	int attempt; /* the retry this is (1 = first) */
	int resends; /* as struct conn's */
	bool resend; /* kept by resend_stale, not a retry */
	int last_status, last_err;
	struct ld_bench_req req; /* req.data is bytes */
	char *bytes;
};

struct worker {
	pthread_t th;
	bool joined;
	int id;
	const struct ld_bench_cfg *cfg;
	uv_loop_t loop;
	uv_async_t wake; /* start and stop requests from the main thread */
	uv_poll_t tpoll;
	uv_timer_t sweep;
	int tfd;
	struct conn *conns;
	int nslots, want_conns, open, connecting;
	int *idle, nidle;
	uint64_t backoff_until;
	struct ld_rng rng;
	/* schedule */
	bool started, sched_done, wl_done, finishing;
	double next_a;
	uint64_t next_ns;
	int64_t sent_count; /* closed loop: requests issued */
	int64_t max_requests;
	uint64_t *q;
	size_t qhead, qlen;
	/* retries waiting for their time */
	struct pending *pend;
	int npend, cappend;
	uv_timer_t rtimer;
	struct ld_retry_budget budget;
	int64_t retries, retry_denied, retry_gave_up;
	int64_t resent; /* requests sent again after a stale connection */
	/* thread-local figures, merged after the run */
	struct ld_hdr lat, svc, oklat, klat[LD_BENCH_KINDS];
	int64_t kcount[LD_BENCH_KINDS], kwin[LD_BENCH_KINDS];
	int64_t requests, scheduled, in_window, errors, late, connects;
	int64_t err_by_kind[LD_ERR_COUNT];
	int64_t status[600];
	/* the current second, read and reset by the main thread under mu */
	pthread_mutex_t mu;
	struct ld_hdr ilat;
	int64_t icount, ierrors, ianswered;
	int64_t iretries, idenied, igave_up; /* retries sent, refused, given up */
	struct ld_bench_totals tot;
	char rbuf[64 * 1024];
};

static atomic_uint_fast64_t g_t0; /* start of the schedule, CLOCK_MONOTONIC ns */
static atomic_int g_ready;	  /* initial connects resolved */
static volatile sig_atomic_t g_stop;
static atomic_int g_stop_sent;

static const char *const err_names[LD_ERR_COUNT] = {
    "connect", "timeout", "read", "write", "parse", "status_5xx", "status_4xx", "dropped"};

const char *ld_bench_err_name(enum ld_bench_err e)
{
	return e < LD_ERR_COUNT ? err_names[e] : "?";
}

void ld_bench_stop(void)
{
	g_stop = 1;
}

bool ld_bench_stopped(void)
{
	return g_stop != 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t t0(void)
{
	return atomic_load(&g_t0);
}

static void pump(struct worker *w, uint64_t now);
static void conn_close(struct conn *c);
static bool retry_later(struct worker *w, struct conn *c, int status, int err, uint64_t now);
static void arm_retry(struct worker *w, uint64_t now);
static void on_rtimer(uv_timer_t *t);

/* finish records one request's fate: an answer (status > 0) or a failure
 * (err >= 0). Every request ends here exactly once. */
static void finish(struct worker *w, int kind, uint64_t intended, uint64_t sent, uint64_t now,
		   int status, int err)
{
	const struct ld_bench_cfg *cfg = w->cfg;
	uint64_t start = t0(), warm_end = start + (uint64_t)(cfg->warmup_s * 1e9);
	uint64_t win_end =
	    start +
	    (uint64_t)((cfg->closed ? cfg->duration_s : ld_shape_total_s(&cfg->shape)) * 1e9);
	int64_t lat = (int64_t)(now - intended) / 1000;
	int64_t timeout_us = (int64_t)(cfg->timeout_s * 1e6);
	bool per_kind = cfg->wl.per_kind;

	if (err < 0 && status >= 500)
		err = LD_ERR_5XX;
	else if (err < 0 && status >= 400 && cfg->errors_4xx)
		err = LD_ERR_4XX;
	/* A timed-out request took at least the timeout, whatever the clocks say. */
	if (err == LD_ERR_TIMEOUT && lat < timeout_us)
		lat = timeout_us;
	pthread_mutex_lock(&w->mu);
	ld_hdr_record(&w->ilat, lat);
	w->icount++;
	if (status > 0)
		w->ianswered++;
	w->tot.done++;
	if (err >= 0) {
		w->ierrors++;
		w->tot.errors++;
		if (err == LD_ERR_DROPPED)
			w->tot.dropped++;
	}
	pthread_mutex_unlock(&w->mu);
	if (intended < warm_end)
		return;
	ld_hdr_record(&w->lat, lat);
	if (status >= 200 && status < 300)
		ld_hdr_record(&w->oklat, lat);
	if (per_kind) {
		kind = kind >= 0 && kind < LD_BENCH_KINDS ? kind : 0;
		ld_hdr_record(&w->klat[kind], lat);
		w->kcount[kind]++;
	}
	if (sent)
		ld_hdr_record(&w->svc, (int64_t)(now - sent) / 1000);
	w->requests++;
	if (status > 0 && now <= win_end && now >= warm_end) {
		w->in_window++;
		if (per_kind)
			w->kwin[kind]++;
	}
	if (status > 0 && status < 600)
		w->status[status]++;
	if (err >= 0) {
		w->errors++;
		w->err_by_kind[err]++;
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	/* One buffer per thread: every read is parsed before the next. */
	buf->base = c->w->rbuf;
	buf->len = sizeof(c->w->rbuf);
}

static void conn_idle(struct worker *w, struct conn *c, uint64_t now)
{
	c->idle_at = now;
	c->state = C_IDLE;
	w->idle[w->nidle++] = (int)(c - w->conns);
}

static void arm_retry(struct worker *w, uint64_t now)
{
	uint64_t next = 0;

	for (int i = 0; i < w->npend; i++)
		if (!next || w->pend[i].due < next)
			next = w->pend[i].due;
	if (!next || w->finishing)
		return;
	/* Never 0 ms: libuv runs a timer restarted with 0 from its own
	 * callback again in the same pass, and the loop would never poll for
	 * the connection the retry waits for. */
	uv_timer_start(&w->rtimer, on_rtimer, next > now ? (next - now) / 1000000 + 1 : 1, 0);
}

/* count_retry adds one to a retry figure of the run (total, this thread's
 * own) and of the current second (interval, read by the main thread). */
static void count_retry(struct worker *w, int64_t *total, int64_t *interval)
{
	(*total)++;
	pthread_mutex_lock(&w->mu);
	(*interval)++;
	pthread_mutex_unlock(&w->mu);
}

/* keep_pending adds c's request to the ones waiting to be sent again, due
 * at due, with c's attempt and resends (the caller moves them on); NULL
 * when memory ran out. Sends again are rare (the budget, stale
 * connections): they may allocate. A kept request's own copy passes on to
 * the next. */
static struct pending *keep_pending(struct worker *w, struct conn *c, uint64_t due, int status,
				    int err)
{
	struct pending *p;
	char *bytes;

	if (w->npend == w->cappend) {
		int ncap = w->cappend ? 2 * w->cappend : 64;
		struct pending *np = realloc(w->pend, (size_t)ncap * sizeof(*np));

		if (!np)
			return NULL;
		w->pend = np;
		w->cappend = ncap;
	}
	bytes = c->owned;
	c->owned = NULL;
	if (!bytes && (bytes = malloc(c->req.len ? c->req.len : 1)))
		memcpy(bytes, c->req.data, c->req.len);
	if (!bytes)
		return NULL;
	p = &w->pend[w->npend++];
	p->intended = c->intended;
	p->due = due;
	p->attempt = c->attempt;
	p->resends = c->resends;
	p->last_status = status;
	p->last_err = err;
	p->req = c->req;
	p->req.data = bytes;
	p->bytes = bytes;
	p->resend = false;
	return p;
}

/* retry_later keeps c's request for a retry when its outcome is worth one,
 * it may be sent again, and the budget and its deadline allow: true when
 * it was kept (its outcome is then not counted yet). */
static bool retry_later(struct worker *w, struct conn *c, int status, int err, uint64_t now)
{
	const struct ld_bench_cfg *cfg = w->cfg;
	uint64_t delay, timeout = (uint64_t)(cfg->timeout_s * 1e9);
	struct pending *p;

	if (cfg->retry.max <= 0 || w->finishing)
		return false;
	if (!(err < 0 ? ld_retry_status(status) : err == LD_ERR_READ || err == LD_ERR_WRITE))
		return false;
	if (!ld_retry_idempotent(c->req.data, c->req.len))
		return false;
	if (c->attempt >= cfg->retry.max) {
		count_retry(w, &w->retry_gave_up, &w->igave_up);
		return false;
	}
	delay = ld_retry_delay_ns(&cfg->retry, c->attempt + 1, ld_rng_next(&w->rng),
				  err < 0 ? c->resp.retry_after_s : -1);
	if (now + delay > c->intended + timeout) {
		count_retry(w, &w->retry_gave_up,
			    &w->igave_up); /* it would go past the request's time */
		return false;
	}
	if (!ld_retry_budget_take(&w->budget)) {
		count_retry(w, &w->retry_denied, &w->idenied);
		return false;
	}
	if (!(p = keep_pending(w, c, now + delay, status, err))) {
		count_retry(w, &w->retry_gave_up, &w->igave_up);
		return false;
	}
	p->attempt++;
	count_retry(w, &w->retries, &w->iretries);
	arm_retry(w, now);
	return true;
}

/* resend_stale keeps c's request to be sent again at once, on another
 * connection, when c went stale under it: true when kept.
 *
 * A connection that sat open (it answered before, or sat idle for
 * IDLE_SAT_NS or more before this send: opened before the start, or kept
 * as the base pool) may be closed by the server (its keep-alive or header
 * timeout) just as a request goes out on it. The write succeeds, and the
 * read sees the close or a reset before any byte of an answer. The server
 * has not answered, and most likely never read it: as HTTP clients do (RFC
 * 9112, 9.3.1; Go's net/http: a reused connection that fails before the
 * first byte of the answer), a request that may be sent twice
 * (ld_retry_idempotent: a method that is idempotent, or a POST with an
 * Idempotency-Key) goes again, up to RESENDS_MAX times. That is no retry:
 * not after an answer, not for the budget, not counted as one; the run's
 * "resent" counts the sends made (one still waiting when the run ends keeps
 * its error and is no retry given up). A connection opened for the request
 * that fails the same way is a failure (the server is refusing), as is a
 * request that may not be sent twice (it may have been processed). */
static bool resend_stale(struct worker *w, struct conn *c, int err, uint64_t now)
{
	struct pending *p;

	if (w->finishing || (err != LD_ERR_READ && err != LD_ERR_WRITE) || c->got_bytes)
		return false;
	if ((!c->answered && c->sent - c->idle_at < IDLE_SAT_NS) || c->resends >= RESENDS_MAX)
		return false;
	if (!ld_retry_idempotent(c->req.data, c->req.len))
		return false;
	if (!(p = keep_pending(w, c, now, 0, err)))
		return false;
	p->resends++;
	p->resend = true; /* counted in resent once it goes out */
	arm_retry(w, now);
	return true;
}

/* request_done ends the request on c with an answer or a failure; the
 * connection goes back to work or is closed. */
static void request_done(struct conn *c, int status, int err, bool reuse)
{
	struct worker *w = c->w;
	uint64_t now = now_ns();
	bool kept;

	pthread_mutex_lock(&w->mu);
	w->tot.inflight--;
	pthread_mutex_unlock(&w->mu);
	if (status > 0)
		c->answered = true;
	kept = resend_stale(w, c, err, now) || retry_later(w, c, status, err, now);
	if (!kept) {
		finish(w, c->req.kind, c->intended, c->sent, now, status, err);
		if (w->cfg->wl.on_response)
			w->cfg->wl.on_response(w->cfg->wl.ctx, &c->req, err >= 0 ? 0 : status, err,
					       c->req.want_body ? c->body.data : NULL,
					       c->req.want_body ? c->body.len : 0);
	}
	free(c->owned);
	c->owned = NULL;
	if (reuse) {
		conn_idle(w, c, now);
	} else {
		conn_close(c);
	}
	pump(w, now);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	if (status < 0 && status != UV_ECANCELED && c->state == C_BUSY)
		request_done(c, 0, LD_ERR_WRITE, false);
}

/* send_on writes the next request on idle connection c; intended is its
 * planned time (the actual time in closed loop). Returns false when the
 * workload has nothing more to send. */
static void write_req(struct worker *w, struct conn *c, uint64_t now);

static bool send_on(struct worker *w, struct conn *c, uint64_t intended, uint64_t now)
{
	ld_buf_reset(&c->scratch);
	memset(&c->req, 0, sizeof(c->req));
	if (w->cfg->wl.next(w->cfg->wl.ctx, &w->rng, &c->scratch, &c->req) < 0) {
		w->wl_done = true;
		return false;
	}
	c->intended = intended;
	c->attempt = 0;
	c->resends = 0;
	if (w->cfg->retry.max > 0)
		ld_retry_budget_request(&w->budget);
	if (!w->cfg->closed && now - intended > LATE_NS)
		w->late++;
	pthread_mutex_lock(&w->mu);
	if (!w->cfg->closed && now - intended > LATE_NS)
		w->tot.late++;
	pthread_mutex_unlock(&w->mu);
	write_req(w, c, now);
	return true;
}

/* send_retry sends the kept request p on idle connection c. */
static void send_retry(struct worker *w, struct conn *c, struct pending *p, uint64_t now)
{
	c->req = p->req;
	c->owned = p->bytes;
	c->intended = p->intended; /* the latency runs from the first intended send */
	c->attempt = p->attempt;
	c->resends = p->resends;
	if (p->resend)
		w->resent++;
	write_req(w, c, now);
}

/* write_req writes c->req on c. */
static void write_req(struct worker *w, struct conn *c, uint64_t now)
{
	uv_buf_t b;
	int n;

	c->sent = now;
	c->got_bytes = false;
	c->deadline = now + (uint64_t)(w->cfg->timeout_s * 1e9);
	if (c->req.want_body)
		ld_buf_reset(&c->body);
	ld_http_resp_init(&c->resp, c->req.head, c->req.want_body ? &c->body : NULL);
	c->state = C_BUSY;
	pthread_mutex_lock(&w->mu);
	w->tot.inflight++;
	pthread_mutex_unlock(&w->mu);
	b = uv_buf_init((char *)c->req.data, (unsigned)c->req.len);
	n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == (int)c->req.len)
		return;
	if (n < 0 && n != UV_EAGAIN) {
		request_done(c, 0, LD_ERR_WRITE, false);
		return;
	}
	if (n > 0) {
		b.base += n;
		b.len -= (size_t)n;
	}
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0)
		request_done(c, 0, LD_ERR_WRITE, false);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	ssize_t off = 0;

	if (nread > 0) {
		if (c->state != C_BUSY) {
			conn_close(c); /* bytes nobody asked for: the stream is lost */
			return;
		}
		c->got_bytes = true;
		while (off < nread) {
			ssize_t n =
			    ld_http_resp_feed(&c->resp, buf->base + off, (size_t)(nread - off));
			if (n < 0) {
				request_done(c, 0, LD_ERR_PARSE, false);
				return;
			}
			off += n;
			if (c->resp.done)
				break;
		}
		if (c->resp.done) {
			/* Extra bytes after the answer mean the peer is confused. */
			bool reuse = c->resp.keep_alive && off == nread;
			request_done(c, c->resp.status, -1, reuse);
		}
		return;
	}
	if (nread < 0) {
		if (c->state == C_BUSY) {
			if (nread == UV_EOF && ld_http_resp_eof(&c->resp) == 1)
				request_done(c, c->resp.status, -1, false);
			else
				request_done(c, 0, LD_ERR_READ, false);
		} else {
			conn_close(c);
		}
	}
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;

	c->state = C_FREE;
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->state == C_FREE || c->state == C_CLOSING)
		return;
	if (c->state == C_IDLE) {
		for (int i = 0; i < w->nidle; i++) {
			if (w->idle[i] == (int)(c - w->conns)) {
				w->idle[i] = w->idle[--w->nidle];
				break;
			}
		}
	}
	if (c->state == C_CONNECTING)
		w->connecting--;
	c->state = C_CLOSING;
	w->open--;
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	struct worker *w = c->w;
	uint64_t now;

	free(req);
	if (c->initial) {
		c->initial = false;
		atomic_fetch_add(&g_ready, 1);
	}
	if (c->state != C_CONNECTING)
		return;
	w->connecting--;
	if (status < 0) {
		w->connects++;
		w->err_by_kind[LD_ERR_CONNECT]++;
		w->backoff_until = now_ns() + BACKOFF_NS;
		c->state = C_IDLE; /* so conn_close does the bookkeeping */
		w->nidle++;
		w->idle[w->nidle - 1] = (int)(c - w->conns);
		conn_close(c);
		return;
	}
	w->connects++;
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	now = now_ns();
	conn_idle(w, c, now);
	if (w->started)
		pump(w, now);
}

/* conn_open starts a connection in a free slot; false when none is free. */
static bool conn_open(struct worker *w, bool initial)
{
	uv_connect_t *req;

	for (int i = 0; i < w->nslots; i++) {
		struct conn *c = &w->conns[i];
		if (c->state != C_FREE)
			continue;
		req = malloc(sizeof(*req)); /* connects are rare: not the hot path */
		if (!req)
			return false;
		uv_tcp_init(&w->loop, &c->tcp);
		c->tcp.data = c;
		req->data = c;
		c->state = C_CONNECTING;
		c->initial = initial;
		c->answered = false;
		w->open++;
		w->connecting++;
		if (uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&w->cfg->addr,
				   on_connect) < 0) {
			free(req);
			if (initial)
				atomic_fetch_add(&g_ready, 1);
			c->initial = false;
			w->err_by_kind[LD_ERR_CONNECT]++;
			w->backoff_until = now_ns() + BACKOFF_NS;
			conn_close(c);
		}
		return true;
	}
	return false;
}

static uint64_t queue_pop(struct worker *w)
{
	uint64_t v = w->q[w->qhead];

	w->qhead = (w->qhead + 1) % QUEUE_CAP;
	w->qlen--;
	return v;
}

/* queue_unpop puts v back at the head (it was popped and not sent). */
static void queue_unpop(struct worker *w, uint64_t v)
{
	w->qhead = (w->qhead + QUEUE_CAP - 1) % QUEUE_CAP;
	w->q[w->qhead] = v;
	w->qlen++;
}

/* pump puts waiting requests on idle connections and opens connections
 * when requests wait and none is idle. */
static void pump(struct worker *w, uint64_t now)
{
	int due = 0;

	if (!w->started || w->finishing)
		return;
	/* Retries that are due go first: their clocks have run longest. */
	for (int i = 0; i < w->npend;) {
		struct pending p = w->pend[i];

		if (p.due > now || !w->nidle) {
			due += p.due <= now;
			i++;
			continue;
		}
		w->pend[i] = w->pend[--w->npend];
		send_retry(w, &w->conns[w->idle[--w->nidle]], &p, now);
	}
	/* One connection for each due retry left, counting those on the way. */
	while (due > w->connecting && w->open < w->nslots && now >= w->backoff_until &&
	       conn_open(w, false))
		;
	if (w->cfg->closed) {
		while (w->nidle && !w->wl_done && !g_stop &&
		       (!w->max_requests || w->sent_count < w->max_requests) &&
		       now < t0() + (uint64_t)(w->cfg->duration_s * 1e9)) {
			struct conn *c = &w->conns[w->idle[--w->nidle]];
			if (!send_on(w, c, now, now)) {
				conn_idle(w, c, c->idle_at);
				break;
			}
			w->sent_count++;
		}
	} else {
		while (w->nidle && w->qlen) {
			struct conn *c = &w->conns[w->idle[--w->nidle]];
			/* Off the queue before the send: a write that fails at
			 * once ends the request and pumps again from inside. */
			uint64_t intended = queue_pop(w);

			if (!send_on(w, c, intended, now)) {
				queue_unpop(w, intended);
				conn_idle(w, c, c->idle_at);
				break;
			}
		}
		pthread_mutex_lock(&w->mu);
		w->tot.queued = (int64_t)w->qlen;
		pthread_mutex_unlock(&w->mu);
	}
	/* Grow while requests wait, never beyond the cap; keep the base pool. */
	if (now >= w->backoff_until) {
		while (w->open < w->want_conns && conn_open(w, false))
			;
		while (!w->cfg->closed && w->qlen > (size_t)w->connecting && w->open < w->nslots &&
		       conn_open(w, false))
			;
	}
}

/* advance computes this thread's next intended time, or ends the schedule. */
static void advance(struct worker *w)
{
	const struct ld_bench_cfg *cfg = w->cfg;
	double t;

	if (cfg->poisson)
		w->next_a += (double)cfg->threads * ld_rng_exp(&w->rng);
	else
		w->next_a += (double)cfg->threads;
	t = ld_shape_time_of(&cfg->shape, w->next_a);
	if (t < 0 || g_stop) {
		w->sched_done = true;
		return;
	}
	w->next_ns = t0() + (uint64_t)(t * 1e9);
}

static void arm(struct worker *w)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (w->sched_done)
		return;
	its.it_value.tv_sec = (time_t)(w->next_ns / NS_PER_S);
	its.it_value.tv_nsec = (long)(w->next_ns % NS_PER_S);
	timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_rtimer(uv_timer_t *t)
{
	struct worker *w = t->data;
	uint64_t now = now_ns();

	pump(w, now);
	arm_retry(w, now);
}

static void on_tick(uv_poll_t *h, int status, int events)
{
	struct worker *w = h->data;
	uint64_t now = now_ns(), expirations;
	uint64_t warm_end = t0() + (uint64_t)(w->cfg->warmup_s * 1e9);

	if (read(w->tfd, &expirations, sizeof(expirations)) < 0) {
		/* EAGAIN: woken for nothing; the schedule below decides. */
	}
	while (!w->sched_done && w->next_ns <= now) {
		if (w->next_ns >= warm_end)
			w->scheduled++;
		if (w->qlen == QUEUE_CAP) {
			/* Nowhere to wait: counted, and in the latency as the timeout. */
			finish(w, 0, w->next_ns, 0,
			       w->next_ns + (uint64_t)(w->cfg->timeout_s * 1e9), 0, LD_ERR_DROPPED);
		} else {
			w->q[(w->qhead + w->qlen) % QUEUE_CAP] = w->next_ns;
			w->qlen++;
		}
		advance(w);
	}
	pump(w, now);
	arm(w);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) {
		if (h->type == UV_TCP) {
			conn_close(h->data);
		} else {
			uv_close(h, NULL);
		}
	}
}

/* finish_run ends the loop: what is still waiting or in flight is counted. */
static void finish_run(struct worker *w, uint64_t now)
{
	w->finishing = true;
	/* Retries and resends not sent yet end with the outcome that made
	 * them; only a retry is one given up. */
	for (int i = 0; i < w->npend; i++) {
		struct pending *p = &w->pend[i];

		finish(w, p->req.kind, p->intended, 0, now, p->last_err < 0 ? p->last_status : 0,
		       p->last_err);
		if (!p->resend)
			count_retry(w, &w->retry_gave_up, &w->igave_up);
		free(p->bytes);
	}
	w->npend = 0;
	while (w->qlen) {
		uint64_t intended = queue_pop(w);
		finish(w, 0, intended, 0, now, 0, LD_ERR_DROPPED);
	}
	for (int i = 0; i < w->nslots; i++) {
		struct conn *c = &w->conns[i];
		if (c->state == C_BUSY && !w->cfg->closed) {
			c->state = C_IDLE; /* so request_done does not recurse */
			finish(w, c->req.kind, c->intended, c->sent, now, 0, LD_ERR_TIMEOUT);
		}
		free(c->owned);
		c->owned = NULL;
	}
	uv_walk(&w->loop, close_walk, NULL);
}

static void on_sweep(uv_timer_t *t)
{
	struct worker *w = t->data;
	const struct ld_bench_cfg *cfg = w->cfg;
	uint64_t now = now_ns(), timeout = (uint64_t)(cfg->timeout_s * 1e9);
	uint64_t end =
	    t0() +
	    (uint64_t)((cfg->closed ? cfg->duration_s : ld_shape_total_s(&cfg->shape)) * 1e9);
	int busy = 0;

	if (!w->started || w->finishing)
		return;
	for (int i = 0; i < w->nslots; i++) {
		struct conn *c = &w->conns[i];
		if (c->state != C_BUSY)
			continue;
		if (now >= c->deadline)
			request_done(c, 0, LD_ERR_TIMEOUT, false);
		else
			busy++;
	}
	/* Requests that waited for a connection longer than the timeout. */
	while (w->qlen && w->q[w->qhead] + timeout <= now) {
		uint64_t intended = queue_pop(w);
		finish(w, 0, intended, 0, now, 0, LD_ERR_TIMEOUT);
	}
	if (g_stop && !w->sched_done)
		w->sched_done = true;
	pump(w, now);
	/* What pump just sent (a due retry, a queued request) is in flight
	 * too: the run is not over while it is. */
	busy = 0;
	for (int i = 0; i < w->nslots; i++)
		busy += w->conns[i].state == C_BUSY;
	if (cfg->closed) {
		bool over = now >= end || g_stop || w->wl_done ||
			    (w->max_requests && w->sent_count >= w->max_requests);
		/* Closed loop: answers still on the wire after the end are not
		 * waited for (as wrk); a seeding run waits for its last ones. */
		if (over && ((busy == 0 && w->npend == 0) || now >= end || g_stop))
			finish_run(w, now);
		return;
	}
	if (w->sched_done &&
	    ((busy == 0 && w->qlen == 0 && w->npend == 0) || now >= end + timeout || g_stop))
		finish_run(w, now);
}

static void on_wake(uv_async_t *a)
{
	struct worker *w = a->data;
	uint64_t now = now_ns();

	if (w->started)
		return; /* a stop: the sweep timer notices g_stop */
	w->started = true;
	if (!w->cfg->closed) {
		w->next_a =
		    w->cfg->poisson ? (double)w->cfg->threads * ld_rng_exp(&w->rng) : (double)w->id;
		w->next_a -= w->cfg->poisson ? 0 : (double)w->cfg->threads;
		advance(w);
		arm(w);
	}
	pump(w, now);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int worker_init(struct worker *w, const struct ld_bench_cfg *cfg, int id)
{
	int rc = -ENOMEM, share = cfg->connections / cfg->threads, cap;

	w->id = id;
	w->cfg = cfg;
	w->tfd = -1;
	w->want_conns = share + (id < cfg->connections % cfg->threads ? 1 : 0);
	cap = cfg->max_connections / cfg->threads +
	      (id < cfg->max_connections % cfg->threads ? 1 : 0);
	w->nslots = cap > w->want_conns ? cap : w->want_conns;
	if (w->nslots < 1)
		w->nslots = 1;
	if (cfg->max_requests)
		w->max_requests = cfg->max_requests / cfg->threads +
				  (id < cfg->max_requests % cfg->threads ? 1 : 0);
	ld_rng_seed(&w->rng, cfg->seed * 1000003ULL + (uint64_t)id);
	pthread_mutex_init(&w->mu, NULL);
	w->conns = calloc((size_t)w->nslots, sizeof(*w->conns));
	w->idle = calloc((size_t)w->nslots + 1, sizeof(int));
	if (!w->conns || !w->idle)
		goto out;
	if (!cfg->closed && !(w->q = malloc(QUEUE_CAP * sizeof(uint64_t))))
		goto out;
	for (int i = 0; i < w->nslots; i++) {
		w->conns[i].w = w;
		ld_buf_init(&w->conns[i].scratch, SCRATCH_CAP);
		ld_buf_init(&w->conns[i].body, BODY_CAP);
	}
	if (ld_hdr_init(&w->lat, LD_HDR_HOUR_US, 3) || ld_hdr_init(&w->svc, LD_HDR_HOUR_US, 3) ||
	    ld_hdr_init(&w->oklat, LD_HDR_HOUR_US, 3) || ld_hdr_init(&w->ilat, LD_HDR_HOUR_US, 3))
		goto out;
	for (int k = 0; k < LD_BENCH_KINDS; k++)
		if (ld_hdr_init(&w->klat[k], LD_HDR_HOUR_US, 3))
			goto out;
	rc = uv_loop_init(&w->loop);
	if (rc)
		goto out;
	uv_async_init(&w->loop, &w->wake, on_wake);
	w->wake.data = w;
	uv_timer_init(&w->loop, &w->sweep);
	w->sweep.data = w;
	uv_timer_init(&w->loop, &w->rtimer);
	w->rtimer.data = w;
	ld_retry_budget_init(&w->budget, &cfg->retry);
	uv_timer_start(&w->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	if (!cfg->closed) {
		w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (w->tfd < 0) {
			rc = -errno;
			goto out;
		}
		uv_poll_init(&w->loop, &w->tpoll, w->tfd);
		w->tpoll.data = w;
		uv_poll_start(&w->tpoll, UV_READABLE, on_tick);
	}
	for (int i = 0; i < w->want_conns; i++)
		conn_open(w, true);
	rc = 0;
out:
	return rc;
}

static void worker_release(struct worker *w)
{
	if (w->cfg) {
		uv_loop_close(&w->loop);
		if (w->tfd >= 0)
			close(w->tfd);
	}
	for (int i = 0; w->conns && i < w->nslots; i++) {
		ld_buf_release(&w->conns[i].scratch);
		ld_buf_release(&w->conns[i].body);
	}
	for (int i = 0; i < w->npend; i++)
		free(w->pend[i].bytes);
	free(w->pend);
	for (int i = 0; w->conns && i < w->nslots; i++)
		free(w->conns[i].owned);
	free(w->conns);
	free(w->idle);
	free(w->q);
	ld_hdr_release(&w->lat);
	ld_hdr_release(&w->svc);
	ld_hdr_release(&w->oklat);
	ld_hdr_release(&w->ilat);
	for (int k = 0; k < LD_BENCH_KINDS; k++)
		ld_hdr_release(&w->klat[k]);
	pthread_mutex_destroy(&w->mu);
}

static int add_point(struct ld_bench_result *res, int *cap, const struct ld_bench_point *p)
{
	if (res->npoints == *cap) {
		int ncap = *cap ? *cap * 2 : 128;
		struct ld_bench_point *np;
		if (ncap > 10 * 1000 * 1000)
			return -E2BIG; /* four months of seconds: enough */
		np = realloc(res->timeline, (size_t)ncap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		res->timeline = np;
		*cap = ncap;
	}
	res->timeline[res->npoints++] = *p;
	return 0;
}

/* collect closes one interval: every thread's current second merged. */
static void collect(struct worker *ws, int n, struct ld_hdr *tmp, const struct ld_bench_cfg *cfg,
		    double t_prev, double t_now, struct ld_bench_point *p,
		    struct ld_bench_totals *tot)
{
	int64_t answered = 0;

	ld_hdr_reset(tmp);
	memset(p, 0, sizeof(*p));
	memset(tot, 0, sizeof(*tot));
	for (int i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		pthread_mutex_lock(&w->mu);
		ld_hdr_merge(tmp, &w->ilat);
		ld_hdr_reset(&w->ilat);
		p->count += w->icount;
		p->errors += w->ierrors;
		answered += w->ianswered;
		w->icount = w->ierrors = w->ianswered = 0;
		p->retries += w->iretries;
		p->retry_denied += w->idenied;
		p->retry_gave_up += w->igave_up;
		w->iretries = w->idenied = w->igave_up = 0;
		tot->done += w->tot.done;
		tot->errors += w->tot.errors;
		tot->late += w->tot.late;
		tot->dropped += w->tot.dropped;
		tot->inflight += w->tot.inflight;
		tot->queued += w->tot.queued;
		pthread_mutex_unlock(&w->mu);
		tot->open_conns += w->open; /* racy read, display only */
	}
	p->t = t_now;
	p->secs = t_now - t_prev;
	if (p->secs <= 0)
		p->secs = 1e-9;
	p->achieved_rps = (double)answered / p->secs;
	if (!cfg->closed)
		p->target_rps = (ld_shape_count_at(&cfg->shape, t_now) -
				 ld_shape_count_at(&cfg->shape, t_prev)) /
				p->secs;
	p->p50_us = ld_hdr_percentile(tmp, 50);
	p->p90_us = ld_hdr_percentile(tmp, 90);
	p->p99_us = ld_hdr_percentile(tmp, 99);
	p->p999_us = ld_hdr_percentile(tmp, 99.9);
	p->max_us = ld_hdr_max(tmp);
	p->warmup = t_prev < cfg->warmup_s;
}

static void merge_results(struct worker *ws, int n, struct ld_bench_result *res)
{
	for (int i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		ld_hdr_merge(&res->latency, &w->lat);
		ld_hdr_merge(&res->service, &w->svc);
		ld_hdr_merge(&res->ok_latency, &w->oklat);
		for (int k = 0; k < LD_BENCH_KINDS; k++) {
			ld_hdr_merge(&res->kind_latency[k], &w->klat[k]);
			res->kind_count[k] += w->kcount[k];
			res->kind_in_window[k] += w->kwin[k];
		}
		res->requests += w->requests;
		res->scheduled += w->scheduled;
		res->in_window += w->in_window;
		res->errors += w->errors;
		res->late += w->late;
		res->connects += w->connects;
		res->retries += w->retries;
		res->retry_denied += w->retry_denied;
		res->retry_gave_up += w->retry_gave_up;
		res->resent += w->resent;
		for (int k = 0; k < LD_ERR_COUNT; k++)
			res->err_by_kind[k] += w->err_by_kind[k];
		for (int k = 0; k < 600; k++)
			res->status[k] += w->status[k];
	}
	res->dropped = res->err_by_kind[LD_ERR_DROPPED];
}

static int alive(struct worker *ws, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		if (ws[i].joined)
			continue;
		if (pthread_tryjoin_np(ws[i].th, NULL) == EBUSY)
			k++;
		else
			ws[i].joined = true;
	}
	return k;
}

int ld_bench_run(const struct ld_bench_cfg *cfg, struct ld_bench_result *res)
{
	int rc = 0, n = cfg->threads, started = 0, cap = 0;
	struct worker *ws = NULL;
	struct ld_hdr tmp;
	uint64_t start, deadline;
	double total, t_prev = 0, t_stop = -1;

	memset(res, 0, sizeof(*res));
	memset(&tmp, 0, sizeof(tmp));
	if (n < 1 || cfg->connections < 1 || !cfg->wl.next)
		return -EINVAL;
	atomic_store(&g_ready, 0);
	atomic_store(&g_stop_sent, 0);
	/* Far in the future until the start, so nothing counts as warm-up early. */
	atomic_store(&g_t0, now_ns() + 3600 * NS_PER_S);
	if (ld_hdr_init(&res->latency, LD_HDR_HOUR_US, 3) ||
	    ld_hdr_init(&res->service, LD_HDR_HOUR_US, 3) ||
	    ld_hdr_init(&res->ok_latency, LD_HDR_HOUR_US, 3) ||
	    ld_hdr_init(&tmp, LD_HDR_HOUR_US, 3)) {
		rc = -ENOMEM;
		goto out;
	}
	for (int k = 0; k < LD_BENCH_KINDS; k++)
		if (ld_hdr_init(&res->kind_latency[k], LD_HDR_HOUR_US, 3)) {
			rc = -ENOMEM;
			goto out;
		}
	ws = calloc((size_t)n, sizeof(*ws));
	if (!ws) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		rc = worker_init(&ws[i], cfg, i);
		if (rc)
			goto out_threads;
	}
	for (int i = 0; i < n; i++) {
		if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i])) {
			rc = -EAGAIN;
			goto out_threads;
		}
		started++;
	}
	/* Let the first connections come up so the first requests do not all
	 * wait for a handshake (they still would be counted if they did). */
	deadline = now_ns() + 2 * NS_PER_S;
	while (atomic_load(&g_ready) < cfg->connections && now_ns() < deadline && !g_stop)
		usleep(1000);
	start = now_ns();
	atomic_store(&g_t0, start);
	for (int i = 0; i < n; i++)
		uv_async_send(&ws[i].wake);
	total = cfg->closed ? cfg->duration_s : ld_shape_total_s(&cfg->shape);
	for (int sec = 1;; sec++) {
		struct ld_bench_point p;
		struct ld_bench_totals tot;
		uint64_t due = start + (uint64_t)sec * NS_PER_S;
		int left = n;
		double t_now;

		while (now_ns() < due && (left = alive(ws, n)) > 0) {
			if (g_stop && t_stop < 0)
				t_stop = (double)(now_ns() - start) / 1e9;
			if (g_stop && !atomic_exchange(&g_stop_sent, 1))
				for (int i = 0; i < n; i++)
					if (!ws[i].joined)
						uv_async_send(&ws[i].wake);
			usleep(20000);
		}
		t_now = (double)(now_ns() - start) / 1e9;
		collect(ws, n, &tmp, cfg, t_prev, t_now, &p, &tot);
		t_prev = t_now;
		if (p.count || p.retries || p.retry_denied || p.retry_gave_up ||
		    (left && p.secs > 0.05))
			add_point(res, &cap, &p);
		if (cfg->tick && left)
			cfg->tick(cfg->tick_ctx, &p, &tot);
		if (!left)
			break;
	}
	started = 0; /* all joined by alive() */
	res->elapsed_s = (double)(now_ns() - start) / 1e9;
	merge_results(ws, n, res);
	/* Interrupted: the window ends where the run did. */
	res->interrupted = t_stop >= 0 && t_stop < total;
	if (res->interrupted)
		total = t_stop;
	res->window_s = total - cfg->warmup_s;
	if (res->window_s > 0)
		res->achieved_rps = (double)res->in_window / res->window_s;
	if (!cfg->closed && res->window_s > 0)
		res->target_rps = (ld_shape_count_at(&cfg->shape, total) -
				   ld_shape_count_at(&cfg->shape, cfg->warmup_s)) /
				  res->window_s;
out_threads:
	if (rc && started) {
		ld_bench_stop();
		for (int i = 0; i < n; i++)
			uv_async_send(&ws[i].wake);
	}
	for (int i = 0; i < started; i++)
		if (!ws[i].joined)
			pthread_join(ws[i].th, NULL);
	for (int i = 0; i < n; i++)
		worker_release(&ws[i]);
out:
	free(ws);
	ld_hdr_release(&tmp);
	return rc;
}

void ld_bench_result_release(struct ld_bench_result *res)
{
	ld_hdr_release(&res->latency);
	ld_hdr_release(&res->service);
	ld_hdr_release(&res->ok_latency);
	for (int k = 0; k < LD_BENCH_KINDS; k++)
		ld_hdr_release(&res->kind_latency[k]);
	free(res->timeline);
	res->timeline = NULL;
}
