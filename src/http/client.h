/*
 * client.h - the client side of HTTP/1.1 for `ladder bench`: URLs, request
 * bytes and a strict incremental response parser.
 *
 * The response parser is a byte-at-a-time state machine, so it needs no
 * buffer of its own: the caller feeds whatever a read returned, in place, and
 * a response split across any number of reads parses the same as one read.
 * Only the fields that decide framing (Content-Length, Transfer-Encoding,
 * Connection) and Retry-After (for a client's backoff) are remembered; other fields are checked and
 * skipped. The body is skipped too, unless the caller asks for it to be copied into a capped buffer
 * (the ladder scenario reads ids and tokens from bodies).
 *
 * Strict (RFC 9112): a status line "HTTP/1.x SP 3DIGIT SP reason"; lines end
 * in CRLF; field names are tokens with no space before the colon; no obs-fold;
 * no CTL but HTAB in values; Content-Length all digits and consistent;
 * Transfer-Encoding only with a final "chunked" and never with
 * Content-Length. Anything else is -EPROTO: a load generator that guesses
 * would count broken answers as good ones.
 *
 * Threading: a parser belongs to one connection on one thread.
 */
#ifndef LD_HTTP_CLIENT_H
#define LD_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

/* Limits on what a response may spend before the body. */
#define LD_HTTP_RESP_HEADER_MAX (64 * 1024)
#define LD_HTTP_RESP_FIELDS_MAX 256

struct ld_http_url {
	char host[256];	     /* as written (brackets removed for IPv6) */
	char port[8];	     /* decimal, "80" by default */
	char path[2048];     /* origin-form: path and query, "/" when empty */
	char authority[300]; /* host[:port] for the Host header */
};

/* ld_http_url_parse splits "http://host[:port][/path]". Only http is
 * supported (a load generator measuring TLS measures TLS). Returns 0,
 * -EINVAL for a malformed URL, -ENAMETOOLONG when a part is too long. */
int ld_http_url_parse(const char *url, struct ld_http_url *u);

/* ld_http_request_write appends one request to out: request line, Host,
 * the extra header lines (each "Name: value", no CRLF; NULL-terminated list
 * or NULL), Content-Length when body is non-NULL, then the body. Returns 0 or
 * the buffer's error; -EINVAL for a header line that has CR or LF in it or
 * no colon. */
int ld_http_request_write(struct ld_buf *out, const char *method, const char *authority,
			  const char *path, const char *const *headers, const char *body,
			  size_t body_len);

struct ld_http_resp {
	/* Results, valid once done is set. */
	int status;		/* 100..999 */
	int version_minor;	/* 0 or 1 */
	bool keep_alive;	/* the connection may carry another request */
	bool done;		/* a whole response was consumed */
	int64_t content_length; /* -1 when absent */
	int64_t retry_after_s;	/* Retry-After in seconds; -1 when absent or a date */
	bool chunked;
	uint64_t body_bytes; /* payload bytes seen (decoded) */
	struct ld_buf *body; /* when non-NULL, payload is appended here (capped) */

	/* Private state. */
	bool head; /* answer to HEAD: no body whatever the fields say */
	bool conn_close, conn_keep;
	bool te_seen, cl_seen;
	int state;
	int sub; /* position inside a fixed token */
	size_t header_bytes;
	unsigned fields;
	uint64_t remaining; /* body or chunk bytes still to come */
	int name_kind;	    /* which interesting field is being read */
	char val[128];	    /* value of an interesting field, truncated */
	size_t val_len;
	bool val_long;
	int hex_digits;
};

/* ld_http_resp_init prepares r for the next response; head is true when the
 * request was HEAD. body may be NULL. */
void ld_http_resp_init(struct ld_http_resp *r, bool head, struct ld_buf *body);

/*
 * ld_http_resp_feed consumes bytes of p[0..n) and returns how many it used
 * (>= 0) or -EPROTO for a malformed response (then the connection is
 * useless), -E2BIG when the header passes LD_HTTP_RESP_HEADER_MAX or the
 * body buffer's cap. It stops right after the end of a response, with
 * r->done set; bytes after that belong to the next response, for which the
 * caller calls ld_http_resp_init again. Interim 1xx responses (except 101,
 * an error here) are skipped.
 */
ssize_t ld_http_resp_feed(struct ld_http_resp *r, const char *p, size_t n);

/* ld_http_resp_eof tells the parser the peer closed. Returns 1 when that
 * completes a response whose body runs until close (r->done is then set), 0
 * when no response had started, -EPROTO when one was cut short. */
int ld_http_resp_eof(struct ld_http_resp *r);

#endif
