/*
 * parser.c - strict, incremental, zero-copy HTTP/1.1 request parser and
 * chunked body decoder (RFC 9112). See parser.h for the contract.
 *
 * The request parser works in two passes. The scan pass finds the end of the
 * header block with memchr, one line at a time, and enforces the size limits
 * as soon as they are certain; it keeps its position in the parser, so a
 * request that trickles in byte by byte is still searched only once. The
 * parse pass runs once, over the complete block, and fills in the request
 * with pointers into the caller's buffer (which may have moved between calls,
 * so nothing from an earlier call is kept except offsets).
 *
 * Every check of the scan pass depends only on the bytes before the point
 * where it fires, so the answer is the same however the input is split.
 */
#include "http/parser.h"

#include <limits.h>
#include <string.h>

/* Character classes, one bit each in cls[]. */
#define C_TCHAR	 1 /* token (RFC 9110 5.6.2): method and field names */
#define C_TARGET 2 /* request-target: visible ASCII except '#' */
#define C_VALUE	 4 /* field value: SP, HTAB, VCHAR, obs-text */
#define C_HOST	 8 /* Host: reg-name, IP literal brackets, ':' and port */

/* Generated from the grammar; tests/unit/test_parser.c checks every byte of
 * each class against an independent definition. */
/* clang-format off */
static const unsigned char cls[256] = {
	0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  /* 0x00 */
	0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
	4,  15, 6,  5,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 6,  14, 6,  6,  /* 0x30 */
	6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 6,  14, 7,  15, /* 0x50 */
	7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x80 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x90 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xa0 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xb0 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xc0 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xd0 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xe0 */
	4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xf0 */
};
/* clang-format on */

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/*
 * Request-line states: the scan pass checks the request line byte by byte as
 * it arrives, so a line that can no longer be valid ("GET /\r\n", a CTL in the
 * target) is refused at once instead of waiting for more bytes or the header
 * timeout. It accepts exactly the prefixes of valid request lines, apart from
 * two checks made when the line is complete: the major version (505) and "*"
 * being for OPTIONS only; it notes where the method and the target end, so
 * the parse pass does not walk them again.
 */
enum {
	RL_METHOD0, /* first byte of the method */
	RL_METHOD,  /* more tchars, or the SP after the method */
	RL_TARGET0, /* first byte of the target: '/', '*' or the scheme's 'h' */
	RL_PATH,    /* origin-form path and query, or absolute-form after the authority */
	RL_STAR,    /* after '*': only SP */
	RL_SCHEME,  /* "http://" or "https://", any case; rl_n bytes matched */
	RL_AUTH0,   /* first byte of the authority: it may not be empty */
	RL_AUTH,    /* authority, up to '/', '?' or SP */
	RL_VERSION, /* "HTTP/" DIGIT "." DIGIT CR; rl_n bytes matched */
	RL_LF,	    /* after the CR: only the LF may come */
};

static const char *const method_names[LD_HTTP_METHOD_COUNT] = {
    "OTHER", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
};

void ld_http_limits_default(struct ld_http_limits *lim)
{
	lim->request_line_max = 8192;
	lim->header_line_max = 8192;
	lim->headers_max = 32768;
	lim->fields_max = 100;
}

void ld_http_parser_init(struct ld_http_parser *p, const struct ld_http_limits *lim)
{
	if (lim)
		p->lim = *lim;
	else
		ld_http_limits_default(&p->lim);
	if (p->lim.fields_max > LD_HTTP_FIELDS_CAP)
		p->lim.fields_max = LD_HTTP_FIELDS_CAP;
	if (p->lim.headers_max > INT_MAX)
		p->lim.headers_max = INT_MAX;
	ld_http_parser_reset(p);
}

void ld_http_parser_reset(struct ld_http_parser *p)
{
	p->scanned = 0;
	p->line_start = 0;
	p->end = 0;
	p->lines = 0;
	p->blank = 0;
	p->start = 0;
	p->rl = RL_METHOD0;
	p->rl_n = 0;
	p->rl_tls = 0;
	p->rl_star = 0;
	p->method_end = 0;
	p->target_end = 0;
	p->err = 0;
	p->why = NULL;
}

const char *ld_http_method_name(enum ld_http_method m)
{
	if ((unsigned)m >= LD_HTTP_METHOD_COUNT)
		m = LD_HTTP_OTHER;
	return method_names[m];
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* ieq compares n bytes of a with the lower-case ASCII string b, ignoring the
 * case of a. */
static int ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != (unsigned char)b[i])
			return 0;
	return 1;
}

/* reject notes why a request is refused (for the error response's detail)
 * and returns status. */
static int reject(struct ld_http_parser *p, int status, const char *why)
{
	p->why = why;
	return status;
}

/* rl_why names what a request line refused by rl_step got wrong, from the
 * state it was in and the byte that did not fit. */
static const char *rl_why(const struct ld_http_parser *p, unsigned char ch)
{
	switch (p->rl) {
	case RL_METHOD0:
	case RL_METHOD:
		return "the request method is not a token followed by one space";
	case RL_PATH:
	case RL_STAR:
	case RL_AUTH:
		if (ch == '\r')
			return "the request line has no HTTP version";
		return "the request target has a byte that is not allowed";
	case RL_TARGET0:
	case RL_SCHEME:
	case RL_AUTH0:
		return "the request target is not origin-form, absolute-form (http or https, "
		       "with a host) or * for OPTIONS";
	}
	return "the HTTP version is not HTTP/ digit . digit followed by CRLF";
}

/* rl_step moves the request-line check over the byte at buf[at]; false when
 * the line can no longer be valid (the state is then left where the byte did
 * not fit, for rl_why). */
static bool rl_step(struct ld_http_parser *p, const char *buf, size_t at)
{
	unsigned char ch = (unsigned char)buf[at];

	switch (p->rl) {
	case RL_METHOD0:
		if (!IS(ch, C_TCHAR))
			return false;
		p->rl = RL_METHOD;
		return true;
	case RL_METHOD:
		if (ch == ' ') {
			p->rl = RL_TARGET0;
			p->method_end = at;
		}
		return ch == ' ' || IS(ch, C_TCHAR);
	case RL_TARGET0:
		if (ch == '/') {
			p->rl = RL_PATH;
		} else if (ch == '*') {
			p->rl = RL_STAR;
		} else if (lower(ch) == 'h') {
			p->rl = RL_SCHEME;
			p->rl_n = 1;
		} else {
			return false;
		}
		return true;
	case RL_PATH:
		if (ch == ' ') {
			p->rl = RL_VERSION;
			p->rl_n = 0;
			p->target_end = at;
			return true;
		}
		return IS(ch, C_TARGET);
	case RL_STAR:
		if (ch != ' ')
			return false;
		p->rl = RL_VERSION;
		p->rl_n = 0;
		p->target_end = at;
		return true;
	case RL_SCHEME:
		/* The scheme is case-insensitive (RFC 3986 3.1). */
		if (p->rl_n == 4 && !p->rl_tls && lower(ch) == 's')
			p->rl_tls = 1;
		else if (lower(ch) != (unsigned char)(p->rl_tls ? "https://" : "http://")[p->rl_n])
			return false;
		if (++p->rl_n == (p->rl_tls ? 8 : 7))
			p->rl = RL_AUTH0;
		return true;
	case RL_AUTH0:
		if (!IS(ch, C_HOST))
			return false;
		p->rl = RL_AUTH;
		return true;
	case RL_AUTH:
		if (ch == '/' || ch == '?') {
			p->rl = RL_PATH;
		} else if (ch == ' ') {
			p->rl = RL_VERSION;
			p->rl_n = 0;
			p->target_end = at;
		} else if (!IS(ch, C_HOST)) {
			return false;
		}
		return true;
	case RL_VERSION: {
		unsigned n = p->rl_n++;

		if (n < 5)
			return ch == (unsigned char)"HTTP/"[n];
		if (n == 5 || n == 7)
			return ch >= '0' && ch <= '9';
		if (n == 6)
			return ch == '.';
		if (ch != '\r')
			return false;
		p->rl = RL_LF;
		return true;
	}
	}
	return false; /* RL_LF: the scan stops at the LF, so this is not one */
}

/* request_line_done judges a complete request line at buf[ls..i], i its LF:
 * the two checks that need the whole line. */
static int request_line_done(struct ld_http_parser *p, const char *buf, size_t ls, size_t i)
{
	if (p->rl != RL_LF)
		return reject(p, -400, "the request line is malformed");
	/* RFC 9110 6.2 / 15.6.6: a well-formed version we do not speak. The
	 * major digit is the one before ".d\r\n". */
	if (buf[i - 4] != '1')
		return reject(p, -505, "the HTTP version is not supported: only HTTP/1.x is");
	/* RFC 9112 3.2.4: the asterisk-form is only for OPTIONS. */
	if (p->rl_star && (p->method_end - ls != 7 || memcmp(buf + ls, "OPTIONS", 7) != 0))
		return reject(p, -400, "the request target * is only for OPTIONS");
	return 0;
}

/* skip_target returns the first byte from q before end that may not be in
 * a request target, or the last few bytes' start: eight bytes at a time while
 * they are plain (no byte below 0x21, none above 0x7e, no '#'; the usual bit
 * tricks, exact for a yes/no answer). The caller finishes with the table. */
static const char *skip_target(const char *q, const char *end)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

	while (end - q >= 8) {
		uint64_t x, hash;

		memcpy(&x, q, 8);
		hash = x ^ (ones * '#');
		if (((x - ones * 0x21) & ~x & highs) | (((x + ones) | x) & highs) |
		    ((hash - ones) & ~hash & highs))
			break;
		q += 8;
	}
	return q;
}

/*
 * scan looks for the blank line that ends the header block, starting where
 * the previous call stopped. Returns 1 when found (p->end set), 0 for more
 * bytes, or a negative status. Each limit fires as soon as the bytes seen
 * prove it is passed: a line's LF must come within its limit, the block's last
 * LF within headers_max, and a line after fields_max fields must be the blank
 * one. The request line is checked as its bytes arrive (rl_step).
 */
static int scan(struct ld_http_parser *p, const char *buf, size_t len)
{
	const struct ld_http_limits *lim = &p->lim;
	size_t ls = p->line_start, pos = p->scanned;

	if (p->err)
		return p->err;
	for (;;) {
		size_t lmax = p->lines == 0 ? lim->request_line_max : lim->header_line_max;
		size_t line_lim = lmax > SIZE_MAX - ls ? SIZE_MAX : ls + lmax;
		size_t stop = len, i;
		const char *nl;

		if (stop > line_lim)
			stop = line_lim;
		if (stop > lim->headers_max)
			stop = lim->headers_max;
		if (ls < stop) {
			if (buf[ls] == '\r') {
				/* Only the blank line (or an empty line before
				 * the request line) may start with CR. */
				if (ls + 1 < stop && buf[ls + 1] != '\n')
					return reject(p, -400, "a line starts with a bare CR");
			} else if (p->lines > lim->fields_max) {
				return reject(p, -431, "the request has too many header fields");
			}
		}
		nl = pos < stop ? memchr(buf + pos, '\n', stop - pos) : NULL;
		if (p->lines == 0 && ls < stop && buf[ls] != '\r') {
			size_t to = nl ? (size_t)(nl - buf) : stop, k;

			for (k = pos; k < to; k++) {
				/* Most bytes of a request line are its method,
				 * path and a plain version: those go without the
				 * state machine. */
				if (p->rl == RL_METHOD || p->rl == RL_PATH) {
					unsigned char k_cls = p->rl == RL_PATH ? C_TARGET : C_TCHAR;

					if (p->rl == RL_PATH)
						k = (size_t)(skip_target(buf + k, buf + to) - buf);
					while (k < to && IS(buf[k], k_cls))
						k++;
					if (k == to)
						break;
				} else if (p->rl == RL_VERSION && p->rl_n == 0 && to - k >= 9 &&
					   memcmp(buf + k, "HTTP/1.", 7) == 0 &&
					   buf[k + 7] >= '0' && buf[k + 7] <= '9' &&
					   buf[k + 8] == '\r') {
					p->rl = RL_LF;
					k += 8;
					continue;
				}
				if (!rl_step(p, buf, k))
					return p->err = reject(p, -400,
							       rl_why(p, (unsigned char)buf[k]));
				if (p->rl == RL_STAR)
					p->rl_star = 1;
			}
		}
		if (!nl) {
			if (stop > pos)
				p->scanned = stop;
			if (stop == line_lim)
				return p->lines == 0
					   ? reject(p, -414, "the request line is too long")
					   : reject(p, -431, "a header field line is too long");
			if (stop == lim->headers_max)
				return reject(p, -431, "the request header is too large");
			return 0;
		}
		i = (size_t)(nl - buf);
		if (i == ls || buf[i - 1] != '\r')
			return reject(p, -400, "a line ends in a bare LF, not CRLF");
		if (i - ls == 1) {
			if (p->lines == 0) {
				/* RFC 9112 2.2: empty lines before the request
				 * line (a CRLF after a body, sent by some old
				 * clients) are skipped, a few of them. */
				if (++p->blank > LD_HTTP_LEADING_EMPTY_MAX)
					return p->err = reject(p, -400,
							       "too many empty lines before the "
							       "request line");
				p->scanned = p->line_start = p->start = pos = ls = i + 1;
				continue;
			}
			p->scanned = p->line_start = p->end = i + 1;
			return 1;
		}
		if (p->lines == 0) {
			int rc = request_line_done(p, buf, ls, i);

			if (rc < 0)
				return p->err = rc;
		}
		p->lines++;
		p->scanned = p->line_start = pos = ls = i + 1;
	}
}

static enum ld_http_method method_of(const char *m, size_t n)
{
	/* Methods are case-sensitive (RFC 9110 9.1): "get" is some other token. */
	switch (n) {
	case 3:
		if (memcmp(m, "GET", 3) == 0)
			return LD_HTTP_GET;
		if (memcmp(m, "PUT", 3) == 0)
			return LD_HTTP_PUT;
		break;
	case 4:
		if (memcmp(m, "POST", 4) == 0)
			return LD_HTTP_POST;
		if (memcmp(m, "HEAD", 4) == 0)
			return LD_HTTP_HEAD;
		break;
	case 5:
		if (memcmp(m, "PATCH", 5) == 0)
			return LD_HTTP_PATCH;
		break;
	case 6:
		if (memcmp(m, "DELETE", 6) == 0)
			return LD_HTTP_DELETE;
		break;
	case 7:
		if (memcmp(m, "OPTIONS", 7) == 0)
			return LD_HTTP_OPTIONS;
		break;
	}
	return LD_HTTP_OTHER;
}

/* split_target sets path and query from an origin-form target (or the part
 * of an absolute-form one after its authority) at t[0..n), n > 0. */
static void split_target(const char *t, size_t n, struct ld_http_request *req)
{
	const char *qm = memchr(t, '?', n);

	req->path = t;
	req->path_len = qm ? (size_t)(qm - t) : n;
	req->query = qm ? qm + 1 : NULL;
	req->query_len = qm ? n - req->path_len - 1 : 0;
}

/* absolute_form reads "http://authority[/path][?query]" (or https, any case)
 * at t[0..n). The authority is a non-empty host[:port] without userinfo. An
 * empty path is "/" (RFC 9110 4.2.3), which then points at a constant. */
static bool absolute_form(const char *t, size_t n, struct ld_http_request *req)
{
	const char *e = t + n, *a, *q;

	if (n > 7 && ieq(t, "http://", 7))
		a = t + 7;
	else if (n > 8 && ieq(t, "https://", 8))
		a = t + 8;
	else
		return false;
	for (q = a; q < e && IS(*q, C_HOST); q++)
		;
	if (q == a || (q < e && *q != '/' && *q != '?'))
		return false;
	req->authority = a;
	req->authority_len = (size_t)(q - a);
	if (q < e && *q == '/') {
		split_target(q, (size_t)(e - q), req);
	} else {
		req->path = "/";
		req->path_len = 1;
		req->query = q < e ? q + 1 : NULL;
		req->query_len = q < e ? (size_t)(e - q - 1) : 0;
	}
	return true;
}

/* parse_request_line fills in the request from the request line the scan
 * has checked (method SP target SP version CRLF) and returns the next line,
 * or NULL. */
static const char *parse_request_line(const struct ld_http_parser *p, const char *buf,
				      struct ld_http_request *req)
{
	const char *s = buf + p->start, *t = buf + p->method_end + 1, *q = buf + p->target_end;

	/* The scan has checked every byte and noted where the parts end. */
	req->method_str = s;
	req->method_len = p->method_end - p->start;
	req->method = method_of(s, req->method_len);
	req->target = t;
	req->target_len = (size_t)(q - t);
	if (*t == '/') {
		split_target(t, req->target_len, req);
	} else if (req->target_len == 1 && *t == '*' && req->method == LD_HTTP_OPTIONS) {
		req->path = t;
		req->path_len = 1;
		req->query = NULL;
		req->query_len = 0;
	} else if (!absolute_form(t, req->target_len, req)) {
		/* authority-form (CONNECT), other schemes, userinfo. */
		return NULL;
	}

	/* HTTP/1.x with any minor is served as 1.1 (RFC 9110 2.5); the scan
	 * has answered other majors with 505. */
	q++;
	if (memcmp(q, "HTTP/1.", 7) != 0)
		return NULL;
	req->version_minor = q[7] == '0' ? 0 : 1;
	return q + 10;
}

/* content_length parses a Content-Length value, which may be a list of equal
 * values ("5, 5", RFC 9110 8.6), into *cl; a value already in *cl (from an
 * earlier field) must be equal too. */
static int content_length(const char *v, size_t n, int64_t *cl)
{
	size_t i = 0;

	for (;;) {
		int64_t x = 0;

		if (i == n || v[i] < '0' || v[i] > '9')
			return -400;
		while (i < n && v[i] >= '0' && v[i] <= '9') {
			int d = v[i++] - '0';

			if (x > (INT64_MAX - d) / 10)
				return -400;
			x = x * 10 + d;
		}
		if (*cl >= 0 && *cl != x)
			return -400;
		*cl = x;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (i == n)
			return 0;
		if (v[i++] != ',')
			return -400;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
	}
}

/* connection notes "close" and "keep-alive" in a Connection list; other
 * options (Upgrade, hop-by-hop field names) do not concern the parser. */
static void connection(const char *v, size_t n, int *close, int *keep)
{
	size_t i = 0;

	while (i < n) {
		size_t a, b;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		a = i;
		while (i < n && v[i] != ',')
			i++;
		b = i;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (b - a == 5 && ieq(v + a, "close", 5))
			*close = 1;
		else if (b - a == 10 && ieq(v + a, "keep-alive", 10))
			*keep = 1;
	}
}

static int host_ok(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!IS(v[i], C_HOST))
			return 0;
	return 1;
}

/* What the field lines said about framing, gathered before it is judged. */
struct seen {
	unsigned hosts, te;
	int bad_te, close, keep;
	const char *why; /* what a field got wrong */
};

/* field looks at the fields that matter to framing and connection handling.
 * Names are compared by length first, so most fields cost one switch. */
static int field(const struct ld_http_field *f, struct ld_http_request *req, struct seen *s)
{
	switch (f->name_len) {
	case 4:
		if (ieq(f->name, "host", 4)) {
			/* An http(s) URI has a non-empty host (RFC 9110 4.2.1),
			 * so an empty Host is invalid (RFC 9112 3.2). With an
			 * absolute-form target Host is still required and
			 * checked, but its value is ignored (3.2.2). */
			s->hosts++;
			if (!f->value_len || !host_ok(f->value, f->value_len)) {
				s->why = "the Host field is empty or not host[:port]";
				return -400;
			}
			if (!req->authority) {
				req->authority = f->value;
				req->authority_len = f->value_len;
			}
		}
		break;
	case 6:
		if (ieq(f->name, "expect", 6) && f->value_len == 12 &&
		    ieq(f->value, "100-continue", 12))
			req->expect_continue = true;
		break;
	case 10:
		if (ieq(f->name, "connection", 10))
			connection(f->value, f->value_len, &s->close, &s->keep);
		break;
	case 14:
		if (ieq(f->name, "content-length", 14) &&
		    content_length(f->value, f->value_len, &req->content_length) < 0) {
			s->why = "the Content-Length is not one number, or differs between values";
			return -400;
		}
		break;
	case 17:
		if (ieq(f->name, "transfer-encoding", 17)) {
			s->te++;
			/* Only a lone "chunked": a list or a second field would mean
			 * another coding or chunked applied twice. */
			if (f->value_len != 7 || !ieq(f->value, "chunked", 7))
				s->bad_te = 1;
		}
		break;
	}
	return 0;
}

/*
 * skip_value returns the first byte from q on that may not appear in a field
 * value (a CTL other than HTAB, or DEL). Values are the bulk of a request, so
 * it tests eight bytes at a time while they are plain (no byte below 0x20, no
 * DEL: the usual bit tricks, exact for a yes/no answer) and falls back to the
 * table for the rest; there is always a CR before limit + 2.
 */
static const char *skip_value(const char *q, const char *limit)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

	while (limit - q >= 8) {
		uint64_t x, del;

		memcpy(&x, q, 8);
		del = x ^ (ones * 0x7f);
		if (((x - ones * 0x20) & ~x & highs) | ((del - ones) & ~del & highs))
			break;
		q += 8;
	}
	while (IS(*q, C_VALUE))
		q++;
	return q;
}

/* parse_fields reads the field lines from q up to the blank line at end - 2. */
static int parse_fields(const struct ld_http_parser *p, const char *q, const char *end,
			struct ld_http_request *req, struct seen *s)
{
	const char *last = end - 2;

	while (q < last) {
		struct ld_http_field *f;
		const char *name = q, *v, *ve;
		size_t name_len;
		int rc;

		/* A line starting with SP/HTAB (obs-fold), a space before the
		 * colon or any non-token byte all stop here. */
		while (IS(*q, C_TCHAR))
			q++;
		if (q == name || *q != ':') {
			s->why = "a header field line is not token \":\" value (or is folded)";
			return -400;
		}
		name_len = (size_t)(q - name);
		q++;
		while (*q == ' ' || *q == '\t')
			q++;
		v = q;
		q = skip_value(q, last);
		/* The value stops at a CTL: only the CR of CRLF is allowed. */
		if (*q != '\r' || q[1] != '\n') {
			s->why = "a header field value has a control byte";
			return -400;
		}
		ve = q;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		q += 2;
		if (req->nfields >= p->lim.fields_max) {
			/* the scan has already counted; kept as a guard */
			s->why = "the request has too many header fields";
			return -431;
		}
		f = &req->fields[req->nfields++];
		f->name = name;
		f->name_len = name_len;
		f->value = v;
		f->value_len = (size_t)(ve - v);
		rc = field(f, req, s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int ld_http_parse_request(struct ld_http_parser *p, const char *buf, size_t len,
			  struct ld_http_request *req)
{
	struct seen s = {0};
	const char *q;
	int rc;

	if (len < p->scanned) /* not the same buffer grown: start over */
		ld_http_parser_reset(p);
	if (!p->end) {
		rc = scan(p, buf, len);
		if (rc <= 0)
			return rc;
	}

	req->nfields = 0;
	req->content_length = -1;
	req->chunked = false;
	req->expect_continue = false;
	req->authority = NULL;
	req->authority_len = 0;
	q = parse_request_line(p, buf, req);
	if (!q)
		return reject(p, -400, "the request line is malformed");
	rc = parse_fields(p, q, buf + p->end, req, &s);
	if (rc < 0)
		return reject(p, rc, s.why);

	/* RFC 9112 3.2: a 1.1 request has exactly one Host; more than one is
	 * ambiguous in any version. */
	if (s.hosts > 1)
		return reject(p, -400, "the Host field is repeated");
	if (req->version_minor == 1 && s.hosts == 0)
		return reject(p, -400, "an HTTP/1.1 request needs a Host field");
	if (s.te) {
		/* RFC 9112 6.1: TE with CL, or TE in 1.0, means faulty framing. */
		if (s.bad_te || s.te > 1)
			return reject(p, -400, "the Transfer-Encoding is not a lone chunked");
		if (req->content_length >= 0)
			return reject(p, -400, "both Content-Length and Transfer-Encoding");
		if (req->version_minor == 0)
			return reject(p, -400, "Transfer-Encoding on an HTTP/1.0 request");
		req->chunked = true;
	}
	/* RFC 9110 10.1.1: an HTTP/1.0 client cannot expect 100-continue. */
	if (req->version_minor == 0)
		req->expect_continue = false;
	req->keep_alive = !s.close && (req->version_minor == 1 || s.keep);
	req->header_len = p->end;
	return (int)p->end;
}

bool ld_http_parser_idle(const struct ld_http_parser *p)
{
	return !p->err && !p->end && p->lines == 0 && p->rl == RL_METHOD0;
}

const struct ld_http_field *ld_http_findn(const struct ld_http_request *req, const char *name,
					  size_t n)
{
	unsigned i;

	for (i = 0; i < req->nfields; i++) {
		const struct ld_http_field *f = &req->fields[i];
		size_t j;

		if (f->name_len != n)
			continue;
		for (j = 0; j < n; j++)
			if (lower((unsigned char)f->name[j]) != lower((unsigned char)name[j]))
				break;
		if (j == n)
			return f;
	}
	return NULL;
}

/*
 * Chunked decoder states. Framing bytes are walked one at a time (size lines
 * and trailers are short); chunk data is moved down with one memmove per
 * stretch, which is what lets the payload be decoded inside the buffer it
 * arrived in.
 */
enum {
	CK_SIZE0, /* first hex digit of a chunk size */
	CK_SIZE,  /* more hex digits */
	/* Chunk extensions (RFC 9112 7.1.1), checked and then ignored:
	 * *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
	CK_BWS,	     /* BWS after the size or a value: only ';' may follow */
	CK_EXT0,     /* after ';': BWS, then the name */
	CK_EXT_NAME, /* name tchars */
	CK_NAME_BWS, /* BWS after the name: '=' or the next ';' */
	CK_VAL0,     /* after '=': BWS, then a token or a quoted string */
	CK_VAL_TOK,  /* token value */
	CK_VAL_QS,   /* inside the quoted string */
	CK_VAL_QP,   /* after a backslash in it */
	CK_VAL_END,  /* after the closing quote */
	CK_SIZE_LF,  /* LF of the size line */
	CK_DATA,     /* chunk data */
	CK_DATA_CR,  /* CRLF after the data */
	CK_DATA_LF,
	CK_TR_START, /* first byte of a trailer line, or CR of the final CRLF */
	CK_TR_NAME,
	CK_TR_VALUE,
	CK_TR_LF,
	CK_END_LF, /* LF of the final CRLF */
	CK_DONE,
	CK_BAD, /* sticky: -400 */
	CK_BIG, /* sticky: -413 */
};

void ld_http_chunked_init(struct ld_http_chunked *c, uint64_t max_body)
{
	memset(c, 0, sizeof(*c));
	c->state = CK_SIZE0;
	c->max = max_body;
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = lower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* size_done judges the chunk size once its digits have ended; the cap is
 * checked here, before any data, so an oversized body is refused at once. */
static int size_done(struct ld_http_chunked *c, unsigned char ch)
{
	if (c->remaining > c->max - c->total)
		return CK_BIG;
	if (ch == ';' || ch == ' ' || ch == '\t')
		c->ext_len++; /* the first byte of the extensions */
	if (ch == ';')
		return CK_EXT0;
	if (ch == ' ' || ch == '\t')
		return CK_BWS;
	if (ch == '\r')
		return CK_SIZE_LF;
	return CK_BAD;
}

/* ext_step moves over one byte of the chunk extensions. Whitespace may only
 * come where the grammar has BWS: not before the CR, and never inside a name
 * or a token. */
static int ext_step(int state, unsigned char ch)
{
	bool ws = ch == ' ' || ch == '\t';

	switch (state) {
	case CK_BWS:
		return ws ? CK_BWS : ch == ';' ? CK_EXT0 : CK_BAD;
	case CK_EXT0:
		return ws ? CK_EXT0 : IS(ch, C_TCHAR) ? CK_EXT_NAME : CK_BAD;
	case CK_EXT_NAME:
		if (IS(ch, C_TCHAR))
			return CK_EXT_NAME;
		/* fall through - what may follow a name */
	case CK_NAME_BWS:
		if (ws)
			return CK_NAME_BWS;
		if (ch == '=')
			return CK_VAL0;
		if (ch == ';')
			return CK_EXT0;
		return ch == '\r' && state == CK_EXT_NAME ? CK_SIZE_LF : CK_BAD;
	case CK_VAL0:
		if (ws)
			return CK_VAL0;
		if (ch == '"')
			return CK_VAL_QS;
		return IS(ch, C_TCHAR) ? CK_VAL_TOK : CK_BAD;
	case CK_VAL_TOK:
		if (IS(ch, C_TCHAR))
			return CK_VAL_TOK;
		/* fall through - what may follow a value */
	case CK_VAL_END:
		if (ws)
			return CK_BWS;
		if (ch == ';')
			return CK_EXT0;
		return ch == '\r' ? CK_SIZE_LF : CK_BAD;
	case CK_VAL_QS:
		/* qdtext is a value byte but DQUOTE and backslash. */
		if (ch == '"')
			return CK_VAL_END;
		if (ch == '\\')
			return CK_VAL_QP;
		return IS(ch, C_VALUE) ? CK_VAL_QS : CK_BAD;
	case CK_VAL_QP:
		return IS(ch, C_VALUE) ? CK_VAL_QS : CK_BAD;
	}
	return CK_BAD;
}

/* step moves the state machine over one framing byte and returns the new
 * state. */
static int step(struct ld_http_chunked *c, unsigned char ch)
{
	int d;

	switch (c->state) {
	case CK_SIZE0:
		d = hexval(ch);
		if (d < 0)
			return CK_BAD;
		c->remaining = (uint64_t)d;
		return CK_SIZE;
	case CK_SIZE:
		d = hexval(ch);
		if (d < 0)
			return size_done(c, ch);
		/* line_len counts this digit: more than 16 would overflow. */
		if (c->line_len > 16)
			return CK_BAD;
		c->remaining = c->remaining << 4 | (uint64_t)d;
		return CK_SIZE;
	case CK_BWS:
	case CK_EXT0:
	case CK_EXT_NAME:
	case CK_NAME_BWS:
	case CK_VAL0:
	case CK_VAL_TOK:
	case CK_VAL_QS:
	case CK_VAL_QP:
	case CK_VAL_END:
		/* The extensions of the whole body share one cap: a body of
		 * one-byte chunks must not carry kilobytes of them each. */
		if (++c->ext_len > LD_HTTP_CHUNK_EXTS_MAX) {
			c->why = "the chunk extensions of the body are too long";
			return CK_BAD;
		}
		return ext_step(c->state, ch);
	case CK_SIZE_LF:
		if (ch != '\n')
			return CK_BAD;
		c->line_len = 0;
		return c->remaining ? CK_DATA : CK_TR_START;
	case CK_DATA_CR:
		return ch == '\r' ? CK_DATA_LF : CK_BAD;
	case CK_DATA_LF:
		return ch == '\n' ? CK_SIZE0 : CK_BAD;
	case CK_TR_START:
		if (ch == '\r')
			return CK_END_LF;
		/* Anything but a token here (SP: obs-fold, LF: bare) is refused. */
		return IS(ch, C_TCHAR) ? CK_TR_NAME : CK_BAD;
	case CK_TR_NAME:
		if (ch == ':')
			return CK_TR_VALUE;
		return IS(ch, C_TCHAR) ? CK_TR_NAME : CK_BAD;
	case CK_TR_VALUE:
		if (ch == '\r')
			return CK_TR_LF;
		return IS(ch, C_VALUE) ? CK_TR_VALUE : CK_BAD;
	case CK_TR_LF:
		if (ch != '\n')
			return CK_BAD;
		c->line_len = 0;
		return CK_TR_START;
	case CK_END_LF:
		return ch == '\n' ? CK_DONE : CK_BAD;
	}
	return CK_BAD;
}

/* chunk_why names what the byte refused in state got wrong. */
static const char *chunk_why(int state)
{
	switch (state) {
	case CK_SIZE0:
	case CK_SIZE:
		return "a chunk size is not 1 to 16 hex digits";
	case CK_SIZE_LF:
		return "a chunk size line does not end in CRLF";
	case CK_DATA_CR:
	case CK_DATA_LF:
		return "chunk data is not followed by CRLF";
	case CK_TR_START:
	case CK_TR_NAME:
	case CK_TR_VALUE:
	case CK_TR_LF:
		return "a trailer field line is malformed";
	case CK_END_LF:
		return "the chunked body does not end in CRLF";
	}
	return "a chunk extension is malformed";
}

int ld_http_chunked_decode(struct ld_http_chunked *c, char *out, const char *in, size_t in_len,
			   size_t *consumed, size_t *produced)
{
	size_t i = 0, o = 0;
	int rc = 0, prev;

	while (i < in_len && c->state < CK_DONE) {
		if (c->state == CK_DATA) {
			size_t n = in_len - i;

			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			/* out + o never passes in + i: every chunk's data comes
			 * after at least its size line. */
			if (out + o != in + i)
				memmove(out + o, in + i, n);
			o += n;
			i += n;
			c->remaining -= n;
			c->total += n;
			if (!c->remaining)
				c->state = CK_DATA_CR;
			continue;
		}
		if (c->state >= CK_TR_START) {
			if (++c->trailer_len > LD_HTTP_TRAILERS_MAX) {
				c->state = CK_BAD;
				c->why = "the trailer section is too large";
				i++;
				break;
			}
		}
		if (c->state != CK_DATA_CR && c->state != CK_DATA_LF &&
		    ++c->line_len > LD_HTTP_CHUNK_LINE_MAX) {
			c->why = c->state >= CK_TR_START ? "a trailer line is too long"
							 : "a chunk size line is too long";
			c->state = CK_BAD;
			i++;
			break;
		}
		prev = c->state;
		c->state = step(c, (unsigned char)in[i++]);
		if (c->state == CK_BAD && !c->why)
			c->why = chunk_why(prev);
	}

	if (c->state == CK_DONE)
		rc = 1;
	else if (c->state == CK_BAD)
		rc = -400;
	else if (c->state == CK_BIG)
		rc = -413;
	*consumed = i;
	*produced = o;
	return rc;
}
