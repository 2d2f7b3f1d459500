/*
 * response.c - response header assembly, gzip, and the per-request ids and
 * accounting (log line, metrics) done when a response is queued.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "base/json.h"
#include "http/negotiate.h"
#include "http/server_int.h"
#include "http/status.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/trace.h"

/* xorshift128+: fast, and seeded from the CSPRNG per loop. Trace and span
 * ids need uniqueness, not secrecy. */
uint64_t ld__rand64(struct ld_worker *w)
{
	uint64_t x = w->rng[0], y = w->rng[1];

	w->rng[0] = y;
	x ^= x << 23;
	w->rng[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
	return w->rng[1] + y;
}

static void rand_hex(struct ld_worker *w, char *out, size_t nbytes)
{
	unsigned char b[16];
	uint64_t v;
	size_t i;

	for (i = 0; i < nbytes; i += 8) {
		v = ld__rand64(w);
		memcpy(b + i, &v, nbytes - i < 8 ? nbytes - i : 8);
	}
	ld_hex_lower(b, nbytes, out);
}

/* reqid_format writes prefix (16 hex digits), '-' and seq in lower-case hex
 * to out with a NUL (what "%s-%llx" would), and returns its length: by
 * hand, as a request without an X-Request-Id of its own needs one, and
 * snprintf was a visible share of a cached GET's CPU. */
static size_t reqid_format(const char *prefix, uint64_t seq, char *out)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[16];
	size_t n = 16, k = sizeof(tmp);

	memcpy(out, prefix, n);
	out[n++] = '-';
	do {
		tmp[--k] = digits[seq & 15];
		seq >>= 4;
	} while (seq);
	memcpy(out + n, tmp + k, sizeof(tmp) - k);
	n += sizeof(tmp) - k;
	out[n] = '\0';
	return n;
}

void ld__request_ids(struct ld_worker *w, struct ld_req *r)
{
	const struct ld_http_field *f;

	f = r->h.nfields ? ld_http_find(&r->h, "x-request-id") : NULL;
	if (f && ld_request_id_ok(f->value, f->value_len)) {
		memcpy(r->request_id, f->value, f->value_len);
		r->request_id[f->value_len] = '\0';
		r->request_id_len = f->value_len;
	} else {
		r->request_id_len = reqid_format(w->reqid_prefix, ++w->reqid_seq, r->request_id);
	}
	f = r->h.nfields ? ld_http_find(&r->h, "traceparent") : NULL;
	if (!f || ld_traceparent_parse(f->value, f->value_len, r->trace_id, r->trace_flags)) {
		rand_hex(w, r->trace_id, 16);
		memcpy(r->trace_flags, "00", 3);
	}
	rand_hex(w, r->span_id, 8);
	f = r->h.nfields ? ld_http_find(&r->h, "accept-encoding") : NULL;
	r->accept_gzip = f && ld_accepts_gzip(f->value, f->value_len);
}

void ld_req_header(struct ld_req *r, const char *name, const char *fmt, ...)
{
	va_list ap;

	ld_buf_puts(&r->out_hdrs, name);
	ld_buf_puts(&r->out_hdrs, ": ");
	va_start(ap, fmt);
	ld_buf_vprintf(&r->out_hdrs, fmt, ap);
	va_end(ap);
	ld_buf_puts(&r->out_hdrs, "\r\n");
}

void ld_req_header_str(struct ld_req *r, const char *name, const char *value)
{
	ld_buf_puts(&r->out_hdrs, name);
	ld_buf_puts(&r->out_hdrs, ": ");
	ld_buf_puts(&r->out_hdrs, value);
	ld_buf_puts(&r->out_hdrs, "\r\n");
}

static void put_uint(struct ld_buf *b, uint64_t v)
{
	char tmp[24];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	ld_buf_append(b, tmp + n, sizeof(tmp) - n);
}

/* date_line brings w->date (and date_len) to this second. */
static void date_line(struct ld_worker *w)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != w->date_sec) {
		w->date_sec = now;
		gmtime_r(&now, &tm);
		w->date_len =
		    strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	}
}

/* gzip_body compresses r->out_body into c->x->wgzip; 0 when it did. */
static int gzip_body(struct ld_conn *c)
{
	struct ld_worker *w = c->w;
	struct ld_req *r = &c->x->req;
	int rc = -1;

	if (!w->z_ready) {
		/* Level 1: most of the saving for JSON at a fraction of the
		 * CPU of the default level. 31 = gzip wrapper, 32 KiB window. */
		if (deflateInit2(&w->z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			goto out;
		w->z_ready = true;
	} else {
		deflateReset(&w->z);
	}
	ld_buf_reset(&c->x->wgzip);
	if (ld_buf_reserve(&c->x->wgzip, deflateBound(&w->z, r->out_body.len)))
		goto out;
	w->z.next_in = (Bytef *)r->out_body.data;
	w->z.avail_in = (uInt)r->out_body.len;
	w->z.next_out = (Bytef *)c->x->wgzip.data;
	w->z.avail_out = (uInt)c->x->wgzip.cap;
	if (deflate(&w->z, Z_FINISH) != Z_STREAM_END)
		goto out;
	c->x->wgzip.len = c->x->wgzip.cap - w->z.avail_out;
	rc = 0;
out:
	return rc;
}

/* assemble writes the status line and header block for status into
 * c->x->whdr and points c->x->wbufs at it and the body. The buffers' first failure
 * sticks, so one look at each at the end says whether the block is whole. */
static int assemble(struct ld_conn *c, int status)
{
	struct ld_worker *w = c->w;
	struct ld_server *s = w->s;
	struct ld_req *r = &c->x->req;
	struct ld_buf *h = &c->x->whdr;
	bool head = r->h.method == LD_HTTP_HEAD;
	bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
	const char *body = r->out_body.data;
	size_t body_len = r->out_body.len;
	bool gz = false, file = r->body_file >= 0;
	int rc;

	if (file)
		body_len = (size_t)r->body_file_len;
	if (no_body)
		body_len = 0;
	c->x->file_send = file && body_len && !head;
	c->x->file_off = 0;
	if (!file && !no_body && s->cfg.gzip && r->accept_gzip && body_len >= s->cfg.gzip_min &&
	    gzip_body(c) == 0 && c->x->wgzip.len < body_len) {
		gz = true;
		body = c->x->wgzip.data;
		body_len = c->x->wgzip.len;
	}
	/* Appends, not printf: this runs once per response and vfprintf was a
	 * visible share of a GET's CPU. */
	ld_buf_reset(h);
	ld_buf_puts(h, "HTTP/1.1 ");
	put_uint(h, (uint64_t)status);
	ld_buf_putc(h, ' ');
	ld_buf_puts(h, ld_http_reason(status));
	ld_buf_puts(h, "\r\n");
	date_line(w);
	ld_buf_append(h, w->date, w->date_len);
	if (!no_body) {
		ld_buf_puts(h, "Content-Type: ");
		ld_buf_puts(h,
			    r->content_type ? r->content_type : "application/json; charset=utf-8");
		ld_buf_puts(h, "\r\nContent-Length: ");
		put_uint(h, body_len);
		ld_buf_puts(h, "\r\n");
	}
	if (gz)
		ld_buf_puts(h, "Content-Encoding: gzip\r\n");
	if (s->cfg.gzip && !no_body && !file && r->out_body.len >= s->cfg.gzip_min)
		ld_buf_puts(h, "Vary: Accept-Encoding\r\n");
	ld_buf_puts(h, "X-Request-Id: ");
	ld_buf_append(h, r->request_id, r->request_id_len);
	/* The ids are of fixed length (W3C trace context): 32, 16, 2. */
	ld_buf_puts(h, "\r\ntraceparent: 00-");
	ld_buf_append(h, r->trace_id, sizeof(r->trace_id) - 1);
	ld_buf_putc(h, '-');
	ld_buf_append(h, r->span_id, sizeof(r->span_id) - 1);
	ld_buf_putc(h, '-');
	ld_buf_append(h, r->trace_flags, sizeof(r->trace_flags) - 1);
	ld_buf_puts(h, "\r\n");
	if (c->close_after)
		ld_buf_puts(h, "Connection: close\r\n");
	else if (r->h.version_minor == 0)
		ld_buf_puts(h, "Connection: keep-alive\r\n");
	ld_buf_append(h, r->out_hdrs.data, r->out_hdrs.len);
	ld_buf_puts(h, "\r\n");
	/* The application's header lines and body count as much as ours: a
	 * line it lost to the cap, or a body cut short, is no answer to send. */
	rc = ld_buf_error(&r->out_hdrs);
	if (!rc)
		rc = ld_buf_error(&r->out_body);
	if (!rc)
		rc = ld_buf_error(h);
	c->x->nwbufs = 0;
	if (rc)
		goto out;
	c->x->wbufs[c->x->nwbufs++] = uv_buf_init(h->data, (unsigned)h->len);
	if (body_len && !head && !file)
		c->x->wbufs[c->x->nwbufs++] = uv_buf_init((char *)body, (unsigned)body_len);
out:
	return rc;
}

/* internal_error replaces the answer that could not be assembled with a 500
 * problem document of the server's own: no header line of the application's
 * (they are what may have overflowed) and a body written here. */
static int internal_error(struct ld_conn *c, int status, int err)
{
	struct ld_req *r = &c->x->req;
	struct ld_json j;
	char what[64];
	int rc;

	snprintf(what, sizeof(what), "%d (error %d)", status, err);
	ld_log_event("error", "response could not be assembled; sent 500 instead",
		     (const char *const[]){"request_id", r->request_id, "status", what, NULL});
	ld_buf_reset(&r->out_hdrs);
	ld_buf_reset(&r->out_body);
	if (r->body_file >= 0) {
		close(r->body_file);
		r->body_file = -1;
	}
	ld_json_init(&j, &r->out_body);
	ld_http_problem_open(&j, 500,
			     "the response could not be assembled within the server's limits; "
			     "see the server log");
	ld_json_obj_end(&j);
	rc = ld_json_finish(&j);
	if (rc)
		ld_buf_reset(&r->out_body); /* an empty 500 rather than half a document */
	r->content_type = rc ? "text/plain; charset=utf-8" : "application/problem+json";
	return assemble(c, 500);
}

int ld__response_build(struct ld_conn *c, int status)
{
	int rc = assemble(c, status);

	if (rc == 0)
		goto out;
	/* When not even the 500 fits (no memory for a few hundred bytes),
	 * c->x->nwbufs stays 0 and the caller closes the connection. */
	(void)internal_error(c, status, rc);
out:
	return rc;
}

void ld__response_account(struct ld_conn *c, int status, uint64_t bytes, uint64_t now_ns)
{
	struct ld_worker *w = c->w;
	struct ld_server *s = w->s;
	struct ld_req *r = &c->x->req;
	uint64_t duration = now_ns - r->start_ns;
	struct ld_log_request e;

	ld_metrics_request(r->route, (unsigned)r->h.method, (unsigned)status, duration, bytes);
	if (!s->cfg.log_requests)
		return;
	e.request_id = r->request_id;
	e.trace_id = r->trace_id;
	/* NULL when the request line never parsed ("OTHER" for unknown tokens). */
	e.method = r->h.method_str ? ld_http_method_name(r->h.method) : NULL;
	e.route = s->app.route_names[r->route];
	e.status = status;
	e.bytes = bytes;
	e.duration_ns = duration;
	e.user_id = r->user_id;
	e.client = r->client[0] ? r->client : NULL;
	ld_log_request_line(&w->log, &e);
	if (w->log.len > 32 * 1024)
		ld__worker_log_flush(w);
}
