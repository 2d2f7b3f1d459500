/*
 * client.c - URLs, request bytes and the incremental response parser of the
 * HTTP client (see client.h for the contract).
 */
#include "http/client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
	S_VER, /* "HTTP/1." */
	S_VER_MINOR,
	S_SP1,
	S_CODE,
	S_REASON, /* after the SP that follows the code */
	S_STATUS_LF,
	S_FIELD_START,
	S_NAME,
	S_VAL_OWS,
	S_VAL,
	S_FIELD_LF,
	S_HDR_END_LF,
	S_BODY,	      /* Content-Length bytes */
	S_BODY_CLOSE, /* until the connection closes */
	S_CHUNK_SIZE,
	S_CHUNK_EXT,
	S_CHUNK_SIZE_LF,
	S_CHUNK_DATA,
	S_CHUNK_DATA_CR,
	S_CHUNK_DATA_LF,
	S_TRAILER, /* trailer fields: S_FIELD_START.. with names ignored */
};

/* Field names that decide framing, and Retry-After (a client's backoff);
 * others are validated and skipped. */
enum { F_OTHER, F_CL, F_TE, F_CONN, F_RA, F_LAST = F_RA, F_TRAILER_FLAG = 64 };

static const char *const interesting[] = {NULL, "content-length", "transfer-encoding", "connection",
					  "retry-after"};
static const size_t interesting_len[] = {0, 14, 17, 10, 11};

/* Byte classes: 1 = RFC 9110 tchar, 2 = field value byte (HTAB, SP, VCHAR,
 * obs-text). A table, because the parser looks at every header byte. */
static const unsigned char ctype[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2,
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static bool is_tchar(unsigned char c)
{
	return ctype[c] & 1;
}

static bool is_vbyte(unsigned char c)
{
	return ctype[c] & 2;
}

/* skip_vbytes returns how many value bytes start p[0..n). */
static size_t skip_vbytes(const char *p, size_t n)
{
	size_t j = 0;

	while (j < n && (ctype[(unsigned char)p[j]] & 2))
		j++;
	return j;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int ld_http_url_parse(const char *url, struct ld_http_url *u)
{
	int rc = -EINVAL;
	const char *p, *host, *host_end, *port = NULL, *port_end = NULL, *path;
	size_t hl, pl;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(url, "http://", 7) != 0)
		goto out;
	host = url + 7;
	if (*host == '[') {
		host++;
		host_end = strchr(host, ']');
		if (!host_end)
			goto out;
		p = host_end + 1;
	} else {
		host_end = host + strcspn(host, ":/?#");
		p = host_end;
	}
	if (host_end == host)
		goto out;
	if (*p == ':') {
		port = p + 1;
		port_end = port + strspn(port, "0123456789");
		if (port_end == port || port_end - port > 5)
			goto out;
		p = port_end;
	}
	if (*p != '\0' && *p != '/' && *p != '?')
		goto out;
	path = p;
	for (const char *q = path; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '#')
			goto out;
	hl = (size_t)(host_end - host);
	pl = strlen(path);
	rc = -ENAMETOOLONG;
	if (hl >= sizeof(u->host) || pl + 2 >= sizeof(u->path))
		goto out;
	memcpy(u->host, host, hl);
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)u->host[i] <= 0x20 || u->host[i] == '@')
			goto bad;
	if (port) {
		long v = 0;
		for (const char *q = port; q < port_end; q++)
			v = v * 10 + (*q - '0');
		if (v < 1 || v > 65535)
			goto bad;
		snprintf(u->port, sizeof(u->port), "%ld", v);
	} else {
		strcpy(u->port, "80");
	}
	snprintf(u->path, sizeof(u->path), "%s%s", *path == '/' ? "" : "/", path);
	if (strchr(u->host, ':'))
		snprintf(u->authority, sizeof(u->authority), "[%s]%s%s", u->host, port ? ":" : "",
			 port ? u->port : "");
	else
		snprintf(u->authority, sizeof(u->authority), "%s%s%s", u->host, port ? ":" : "",
			 port ? u->port : "");
	rc = 0;
	goto out;
bad:
	rc = -EINVAL;
out:
	return rc;
}

int ld_http_request_write(struct ld_buf *out, const char *method, const char *authority,
			  const char *path, const char *const *headers, const char *body,
			  size_t body_len)
{
	int rc = 0;

	/* The buffer's first failure sticks, so one look at the end covers
	 * every append. */
	ld_buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, authority);
	for (size_t i = 0; headers && headers[i]; i++) {
		const char *h = headers[i];
		if (strpbrk(h, "\r\n") || !strchr(h, ':') || *h == ':') {
			rc = -EINVAL;
			goto out;
		}
		ld_buf_printf(out, "%s\r\n", h);
	}
	if (body)
		ld_buf_printf(out, "Content-Length: %zu\r\n", body_len);
	ld_buf_append(out, "\r\n", 2);
	if (body && body_len)
		ld_buf_append(out, body, body_len);
	rc = ld_buf_error(out);
out:
	return rc;
}

void ld_http_resp_init(struct ld_http_resp *r, bool head, struct ld_buf *body)
{
	memset(r, 0, sizeof(*r));
	r->head = head;
	r->body = body;
	r->content_length = -1;
	r->retry_after_s = -1;
}

/* restart_interim forgets an interim 1xx response, keeping the caller's
 * settings, so the final response parses into a clean state. */
static void restart_interim(struct ld_http_resp *r)
{
	bool head = r->head;
	struct ld_buf *body = r->body;
	size_t hb = r->header_bytes;

	ld_http_resp_init(r, head, body);
	r->header_bytes = hb; /* interim responses count against the limit too */
}

/* parse_retry_after reads delay-seconds (RFC 9110 10.2.3); an HTTP-date,
 * or anything else, leaves it unknown (-1): a hint, never an error. */
static void parse_retry_after(struct ld_http_resp *r)
{
	int64_t v = 0;
	size_t i = 0;

	while (i < r->val_len && (r->val[i] == ' ' || r->val[i] == '\t'))
		i++;
	if (r->val_long || i == r->val_len)
		return;
	for (; i < r->val_len; i++) {
		if (r->val[i] < '0' || r->val[i] > '9' || v > 100000000)
			return;
		v = v * 10 + (r->val[i] - '0');
	}
	r->retry_after_s = v;
}

static int parse_content_length(struct ld_http_resp *r)
{
	int64_t v = -1, cur = -1;
	size_t i = 0;

	if (r->val_long)
		return -EPROTO;
	/* A list of identical values ("5, 5") is allowed by RFC 9110 8.6. */
	for (;;) {
		cur = -1;
		while (i < r->val_len && (r->val[i] == ' ' || r->val[i] == '\t'))
			i++;
		while (i < r->val_len && r->val[i] >= '0' && r->val[i] <= '9') {
			if (cur > (INT64_MAX - 9) / 10)
				return -EPROTO;
			cur = (cur < 0 ? 0 : cur * 10) + (r->val[i] - '0');
			i++;
		}
		while (i < r->val_len && (r->val[i] == ' ' || r->val[i] == '\t'))
			i++;
		if (cur < 0 || (v >= 0 && v != cur))
			return -EPROTO;
		v = cur;
		if (i == r->val_len)
			break;
		if (r->val[i] != ',')
			return -EPROTO;
		i++;
	}
	if (r->cl_seen && r->content_length != v)
		return -EPROTO;
	r->cl_seen = true;
	r->content_length = v;
	return 0;
}

/* last_token returns the last comma-separated element of the value. */
static void last_token(const struct ld_http_resp *r, const char **s, size_t *n)
{
	size_t end = r->val_len, start;

	while (end && (r->val[end - 1] == ' ' || r->val[end - 1] == '\t'))
		end--;
	start = end;
	while (start && r->val[start - 1] != ',')
		start--;
	while (start < end && (r->val[start] == ' ' || r->val[start] == '\t'))
		start++;
	*s = r->val + start;
	*n = end - start;
}

static void scan_connection(struct ld_http_resp *r)
{
	size_t i = 0;

	while (i < r->val_len) {
		size_t s, e;
		while (i < r->val_len &&
		       (r->val[i] == ' ' || r->val[i] == '\t' || r->val[i] == ','))
			i++;
		s = i;
		while (i < r->val_len && r->val[i] != ',')
			i++;
		e = i;
		while (e > s && (r->val[e - 1] == ' ' || r->val[e - 1] == '\t'))
			e--;
		if (e - s == 5 && !strncasecmp(r->val + s, "close", 5))
			r->conn_close = true;
		if (e - s == 10 && !strncasecmp(r->val + s, "keep-alive", 10))
			r->conn_keep = true;
	}
}

static int end_field(struct ld_http_resp *r)
{
	const char *t;
	size_t tn;

	while (r->val_len && (r->val[r->val_len - 1] == ' ' || r->val[r->val_len - 1] == '\t'))
		r->val_len--;
	if (++r->fields > LD_HTTP_RESP_FIELDS_MAX)
		return -E2BIG;
	switch (r->name_kind) {
	case F_CL:
		return parse_content_length(r);
	case F_TE:
		if (r->val_long)
			return -EPROTO;
		last_token(r, &t, &tn);
		r->te_seen = true;
		/* The last field line decides; chunked must be the final coding. */
		r->chunked = tn == 7 && !strncasecmp(t, "chunked", 7);
		if (!r->chunked)
			return -EPROTO;
		break;
	case F_CONN:
		scan_connection(r);
		break;
	case F_RA:
		parse_retry_after(r);
		break;
	default:
		break;
	}
	return 0;
}

/* end_header decides how the body is framed (RFC 9112 6.3). */
static int end_header(struct ld_http_resp *r)
{
	if (r->status >= 100 && r->status < 200) {
		if (r->status == 101)
			return -EPROTO;
		restart_interim(r);
		return 0;
	}
	if (r->te_seen && r->cl_seen)
		return -EPROTO;
	r->keep_alive = r->version_minor >= 1 ? !r->conn_close : (r->conn_keep && !r->conn_close);
	if (r->head || r->status == 204 || r->status == 304) {
		r->done = true;
	} else if (r->chunked) {
		r->state = S_CHUNK_SIZE;
	} else if (r->cl_seen) {
		r->remaining = (uint64_t)r->content_length;
		r->state = S_BODY;
		if (!r->remaining)
			r->done = true;
	} else {
		r->keep_alive = false;
		r->state = S_BODY_CLOSE;
	}
	return 0;
}

static int take_body(struct ld_http_resp *r, const char *p, size_t n)
{
	r->body_bytes += n;
	if (r->body && n)
		return ld_buf_append(r->body, p, n);
	return 0;
}

/* name_byte advances the match of the field name against the interesting
 * names: sub holds the length so far and name_kind, while the name is being
 * read, a bit set of the candidates still matching (bit k for kind k). */
static void name_byte(struct ld_http_resp *r, unsigned char c)
{
	int pos = r->sub++;

	c = (unsigned char)(c | 0x20);
	if (pos == 0)
		r->name_kind = (1 << F_CL) | (1 << F_TE) | (1 << F_CONN) | (1 << F_RA);
	for (int k = F_CL; k <= F_LAST; k++) {
		const char *w = interesting[k];
		if ((r->name_kind & (1 << k)) &&
		    ((size_t)pos >= interesting_len[k] || (unsigned char)w[pos] != c))
			r->name_kind &= ~(1 << k);
	}
}

/* name_done turns the candidate set into the kind of the complete name. */
static int name_done(const struct ld_http_resp *r)
{
	for (int k = F_CL; k <= F_LAST; k++)
		if ((r->name_kind & (1 << k)) && (size_t)r->sub == interesting_len[k])
			return k;
	return F_OTHER;
}

/* name_kind_of classifies a complete field name. */
static int name_kind_of(const char *name, size_t len)
{
	for (int k = F_CL; k <= F_LAST; k++)
		if (len == interesting_len[k] && !strncasecmp(name, interesting[k], len))
			return k;
	return F_OTHER;
}

ssize_t ld_http_resp_feed(struct ld_http_resp *r, const char *p, size_t n)
{
	size_t i = 0;
	int rc = 0;

	while (i < n && !r->done) {
		unsigned char c;

		if (r->state == S_BODY || r->state == S_CHUNK_DATA) {
			size_t take = n - i;
			if ((uint64_t)take > r->remaining)
				take = (size_t)r->remaining;
			rc = take_body(r, p + i, take);
			if (rc)
				goto out;
			i += take;
			r->remaining -= take;
			if (!r->remaining) {
				if (r->state == S_BODY)
					r->done = true;
				else
					r->state = S_CHUNK_DATA_CR;
			}
			continue;
		}
		if (r->state == S_BODY_CLOSE) {
			rc = take_body(r, p + i, n - i);
			if (rc)
				goto out;
			i = n;
			continue;
		}
		c = (unsigned char)p[i++];
		if (++r->header_bytes > LD_HTTP_RESP_HEADER_MAX) {
			rc = -E2BIG;
			goto out;
		}
		rc = -EPROTO;
		switch (r->state) {
		case S_VER:
			if (c != (unsigned char)"HTTP/1."[r->sub])
				goto out;
			if (++r->sub == 7)
				r->state = S_VER_MINOR;
			break;
		case S_VER_MINOR:
			if (c != '0' && c != '1')
				goto out;
			r->version_minor = c - '0';
			r->state = S_SP1;
			break;
		case S_SP1:
			if (c != ' ')
				goto out;
			r->state = S_CODE;
			r->sub = 0;
			break;
		case S_CODE:
			if (r->sub < 3) {
				if (c < '0' || c > '9' || (r->sub == 0 && c == '0'))
					goto out;
				r->status = r->status * 10 + (c - '0');
				r->sub++;
			} else if (c == ' ') {
				r->state = S_REASON;
			} else {
				goto out;
			}
			break;
		case S_REASON:
			if (c == '\r') {
				r->state = S_STATUS_LF;
			} else if (!is_vbyte(c)) {
				goto out;
			} else {
				size_t k = skip_vbytes(p + i, n - i);
				i += k;
				r->header_bytes += k;
			}
			break;
		case S_STATUS_LF:
		case S_FIELD_LF:
			if (c != '\n')
				goto out;
			if (r->state == S_FIELD_LF && !(r->name_kind & F_TRAILER_FLAG)) {
				rc = end_field(r);
				if (rc)
					goto out;
			}
			r->state = S_FIELD_START;
			break;
		case S_FIELD_START:
			if (c == '\r') {
				r->state = S_HDR_END_LF;
				break;
			}
			if (!is_tchar(c)) /* also rejects obs-fold (SP or HTAB) */
				goto out;
			r->state = S_NAME;
			r->sub = 0;
			r->val_len = 0;
			r->val_long = false;
			if (r->hex_digits != -1) {
				/* Fast path: the whole name is in this read. */
				size_t e = i, len;
				while (e < n && is_tchar((unsigned char)p[e]))
					e++;
				if (e < n && p[e] == ':') {
					len = e - i + 1;
					r->name_kind = name_kind_of(p + i - 1, len);
					r->sub = (int)len;
					r->header_bytes += len;
					i = e + 1;
					r->state = S_VAL_OWS;
					break;
				}
			}
			if (r->hex_digits == -1) {
				r->name_kind = F_TRAILER_FLAG; /* a trailer: not interpreted */
				r->sub = 1;
			} else {
				name_byte(r, c);
			}
			break;
		case S_NAME:
			if (c == ':') {
				if (!(r->name_kind & F_TRAILER_FLAG))
					r->name_kind = name_done(r);
				r->state = S_VAL_OWS;
			} else if (!is_tchar(c)) {
				goto out;
			} else if (!(r->name_kind & F_TRAILER_FLAG)) {
				name_byte(r, c);
			}
			break;
		case S_VAL_OWS:
			if (c == ' ' || c == '\t')
				break;
			r->state = S_VAL;
			/* fall through */
		case S_VAL:
			if (c == '\r') {
				r->state = S_FIELD_LF;
			} else if (!is_vbyte(c)) {
				goto out;
			} else if (r->name_kind != F_OTHER && !(r->name_kind & F_TRAILER_FLAG)) {
				if (r->val_len < sizeof(r->val))
					r->val[r->val_len++] = (char)c;
				else
					r->val_long = true;
			} else {
				/* A value nobody reads: check the rest of it in one pass. */
				size_t k = skip_vbytes(p + i, n - i);
				i += k;
				r->header_bytes += k;
			}
			break;
		case S_HDR_END_LF:
			if (c != '\n')
				goto out;
			if (r->hex_digits == -1) {
				r->done = true; /* end of the trailer section */
				break;
			}
			rc = end_header(r);
			if (rc)
				goto out;
			/* A body counts against nothing but the body cap. */
			r->header_bytes = 0;
			break;
		case S_CHUNK_SIZE: {
			int h = hexval(c);
			if (h >= 0) {
				if (++r->hex_digits > 15)
					goto out;
				r->remaining = (r->remaining << 4) | (uint64_t)h;
			} else if (r->hex_digits == 0) {
				goto out;
			} else if (c == ';' || c == ' ' || c == '\t') {
				r->state = S_CHUNK_EXT;
			} else if (c == '\r') {
				r->state = S_CHUNK_SIZE_LF;
			} else {
				goto out;
			}
			break;
		}
		case S_CHUNK_EXT:
			if (c == '\r')
				r->state = S_CHUNK_SIZE_LF;
			else if (!is_vbyte(c))
				goto out;
			break;
		case S_CHUNK_SIZE_LF:
			if (c != '\n')
				goto out;
			if (r->remaining) {
				r->state = S_CHUNK_DATA;
				r->hex_digits = 0;
				/* The limit is per size line, so many chunks are fine. */
				r->header_bytes = 0;
			} else {
				r->hex_digits = -1; /* marks the trailer section */
				r->state = S_FIELD_START;
			}
			break;
		case S_CHUNK_DATA_CR:
			if (c != '\r')
				goto out;
			r->state = S_CHUNK_DATA_LF;
			break;
		case S_CHUNK_DATA_LF:
			if (c != '\n')
				goto out;
			r->state = S_CHUNK_SIZE;
			r->hex_digits = 0;
			r->remaining = 0;
			break;
		default:
			goto out;
		}
		rc = 0;
	}
out:
	return rc ? (ssize_t)rc : (ssize_t)i;
}

int ld_http_resp_eof(struct ld_http_resp *r)
{
	if (r->done)
		return 0;
	if (r->state == S_BODY_CLOSE) {
		r->done = true;
		return 1;
	}
	if (r->state == S_VER && r->sub == 0 && r->header_bytes == 0)
		return 0;
	return -EPROTO;
}
