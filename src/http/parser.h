/*
 * parser.h - strict, incremental, zero-copy HTTP/1.1 request parser (RFC 9112).
 *
 * This is the security boundary of the server: anything ambiguous is rejected
 * rather than guessed, because two parsers that disagree about where a request
 * ends is how request smuggling works.
 *
 * Zero-copy: the parsed request points into the caller's buffer (the one
 * exception: the path "/" of an absolute-form target without a path is a
 * constant); the caller keeps those bytes unchanged until it is done with the
 * request.
 * Incremental: the caller appends bytes as they arrive and calls
 * ld_http_parse_request() again with the whole buffer; the parser remembers how
 * far it has scanned, so the cost over a slow trickle stays linear.
 *
 * Threading: a parser belongs to one connection on one thread.
 */
#ifndef LD_HTTP_PARSER_H
#define LD_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum ld_http_method {
	LD_HTTP_OTHER = 0, /* a valid token that is none of the below */
	LD_HTTP_GET,
	LD_HTTP_HEAD,
	LD_HTTP_POST,
	LD_HTTP_PUT,
	LD_HTTP_PATCH,
	LD_HTTP_DELETE,
	LD_HTTP_OPTIONS,
	LD_HTTP_METHOD_COUNT
};

/* Upper bound for limits.fields_max; the field array is sized by it. */
#define LD_HTTP_FIELDS_CAP 256

struct ld_http_limits {
	size_t request_line_max; /* bytes incl. CRLF; longer -> 414 (default 8192) */
	size_t header_line_max;	 /* one field line incl. CRLF; longer -> 431 (8192) */
	size_t headers_max;	 /* request line + all fields + final CRLF; -> 431 (32768) */
	unsigned fields_max;	 /* number of field lines; more -> 431 (100) */
};

/* ld_http_limits_default fills in the defaults of the API note. */
void ld_http_limits_default(struct ld_http_limits *lim);

struct ld_http_field {
	const char *name; /* points into the buffer; not NUL-terminated */
	size_t name_len;
	const char *value; /* leading and trailing OWS removed */
	size_t value_len;
};

struct ld_http_request {
	enum ld_http_method method;
	const char *method_str;
	size_t method_len;
	/* The target as sent: origin-form ("/path?query"), "*" (OPTIONS only)
	 * or absolute-form ("http://host/path?query", http or https, any case). */
	const char *target;
	size_t target_len;
	/* The path to route on: the target up to '?' (origin-form), "*", or
	 * the part of an absolute-form target after its authority, up to '?';
	 * an empty one there is "/" (RFC 9110 4.2.3), pointing at a constant. */
	const char *path;
	size_t path_len;
	const char *query; /* after the first '?', NULL when absent */
	size_t query_len;
	/* Who the request is for: the authority of an absolute-form target
	 * (RFC 9112 3.2.2: Host is then ignored), else the Host value; NULL
	 * on HTTP/1.0 without Host. Never empty. */
	const char *authority;
	size_t authority_len;
	int version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 and any later 1.x */
	struct ld_http_field fields[LD_HTTP_FIELDS_CAP];
	unsigned nfields;
	int64_t content_length; /* -1 when there is no Content-Length */
	bool chunked;		/* Transfer-Encoding: chunked (the only one accepted) */
	bool keep_alive;	/* from version and Connection: close / keep-alive */
	bool expect_continue;	/* Expect: 100-continue */
	size_t header_len;	/* bytes of empty lines skipped before the request
				 * line + request line + fields + blank line */
};

/* Empty lines (CRLF) skipped before a request line; one more is a 400. */
#define LD_HTTP_LEADING_EMPTY_MAX 4

struct ld_http_parser {
	struct ld_http_limits lim;
	size_t scanned; /* bytes already searched for the end of the header block */
	/* After a rejection: what was wrong, a phrase fit for the error
	 * response's detail ("the request line has no HTTP version"); NULL
	 * while nothing was rejected since the last reset. */
	const char *why;
	/* Private scan state, so a request trickling in costs linear time: */
	size_t line_start;	       /* offset of the line being scanned */
	size_t end;		       /* header block length once its blank line is seen, else 0 */
	unsigned lines;		       /* complete lines so far, the request line included */
	unsigned blank;		       /* empty lines skipped before the request line */
	size_t start;		       /* offset of the request line (after those) */
	size_t method_end, target_end; /* offsets of the SPs after them */
	int err;		       /* a request-line rejection, sticky */
	unsigned char rl, rl_n, rl_tls, rl_star; /* request-line check state */
};

/* ld_http_parser_init prepares p for a new request; call it again (or
 * ld_http_parser_reset) before each request on a keep-alive connection.
 * lim is copied; NULL means the defaults. fields_max is clamped to
 * LD_HTTP_FIELDS_CAP and headers_max to INT_MAX (the result is an int). */
void ld_http_parser_init(struct ld_http_parser *p, const struct ld_http_limits *lim);
void ld_http_parser_reset(struct ld_http_parser *p);

/*
 * ld_http_parse_request parses the header block at the start of buf[0..len).
 * buf may have moved since the last call (a grown buffer), but its first
 * p->scanned bytes must be the same; a len below p->scanned starts over.
 * The limits are enforced while the block is still arriving: -414 as soon as
 * request_line_max bytes have come without the request line's LF, -431 as
 * soon as a field line or the block has passed its limit, or a line after
 * fields_max fields starts with anything but the blank line's CR. The request
 * line is checked as it arrives too: -400 as soon as a byte makes it
 * impossible (a CTL, a second SP, "GET /" then CR, "HTTP/1.1x"), and -505 or
 * -400 as soon as its CRLF has come if the version's major is not 1 or "*" is
 * not for OPTIONS; a prefix that may still become valid waits. The answer (and
 * p->why) does not depend on how the bytes were split across calls, and a
 * rejection is final: asked again without a reset, the parser gives it again.
 *
 * Up to LD_HTTP_LEADING_EMPTY_MAX empty lines (CRLF) before the request line
 * are skipped (RFC 9112 2.2): a stray CRLF after a body does not cost the
 * connection. They count in headers_max and header_len; method_str then
 * points past them.
 *
 * Returns:
 *   > 0   the header block is complete and valid; the value is req->header_len
 *         and the body (if any) starts at buf + header_len;
 *   0     more bytes are needed (no limit exceeded so far);
 *   < 0   the request is rejected; the value is minus the status code to send
 *         (-400, -414, -431 or -505; every framing problem is -400), and
 *         p->why says what was wrong in a phrase fit for the response. After
 *         a rejection the connection must be closed once the error response
 *         is written.
 *
 * Rejected with -400: both Content-Length and Transfer-Encoding; a
 * Transfer-Encoding other than exactly "chunked"; a Content-Length that is not
 * all digits, overflows, or repeats (also as a list) with differing values;
 * whitespace between a field name and its colon; a field name that is not a
 * token; obs-fold (a line starting with SP/HTAB); bare CR, bare LF, NUL or other
 * CTLs except HTAB in a field value; a missing or repeated Host on HTTP/1.1, a
 * repeated Host in any version, a Host that is empty or not host[:port]; an
 * invalid method token; a target in neither origin-form, absolute-form with
 * scheme http or https and a non-empty host[:port] authority (no userinfo),
 * nor "*" for OPTIONS (so no authority-form); a version that is not
 * "HTTP/" DIGIT "." DIGIT, case-sensitive; more than LD_HTTP_LEADING_EMPTY_MAX
 * empty lines before the request line. Rejected with -505: a well-formed
 * version whose major is not 1 (HTTP/1.x with any minor is taken as 1.1,
 * RFC 9110 2.5). Lines end in CRLF only.
 *
 * The method is any token: the parser names the ones it knows and leaves
 * "not implemented" (501) to the application, which knows its routes.
 */
int ld_http_parse_request(struct ld_http_parser *p, const char *buf, size_t len,
			  struct ld_http_request *req);

/* ld_http_parser_idle is true while everything scanned since the last reset
 * is skipped empty lines (or nothing): no request has begun, so a timeout
 * then is an idle connection's, not a slow request's. */
bool ld_http_parser_idle(const struct ld_http_parser *p);

/* ld_http_findn returns the first field named name[0..n) (ASCII
 * case-insensitive), or NULL. ld_http_find is the same for a string: inline,
 * so that a literal name's length is known at compile time (a request looks
 * up half a dozen fields). */
const struct ld_http_field *ld_http_findn(const struct ld_http_request *req, const char *name,
					  size_t n);
static inline const struct ld_http_field *ld_http_find(const struct ld_http_request *req,
						       const char *name)
{
	return ld_http_findn(req, name, strlen(name));
}

/* ld_http_method_name returns "GET", "POST", ... or "OTHER". */
const char *ld_http_method_name(enum ld_http_method m);

/*
 * Chunked request bodies. The decoder works in place: it reads encoded bytes
 * from in[0..in_len) and writes payload bytes to out, where out may equal or
 * precede in (the payload never overtakes its encoding), so a connection can
 * decode inside its own read buffer. Chunk extensions are checked against
 * their grammar (RFC 9112 7.1.1: *( BWS ";" BWS token [ BWS "=" BWS
 * ( token / quoted-string ) ] )) and then ignored; trailer fields are read and
 * discarded (they are not allowed to change framing).
 */
/* A chunk-size line (extensions included) or one trailer line, CRLF included,
 * may be this long; the trailer section as a whole, LD_HTTP_TRAILERS_MAX; the
 * extensions of all chunks of a body together (each chunk's from the ';' or
 * BWS after its size to its CR, CR included), LD_HTTP_CHUNK_EXTS_MAX. */
#define LD_HTTP_CHUNK_LINE_MAX 4096
#define LD_HTTP_TRAILERS_MAX   16384
#define LD_HTTP_CHUNK_EXTS_MAX 16384

struct ld_http_chunked {
	int state;	    /* private */
	uint64_t remaining; /* bytes left in the current chunk */
	uint64_t total;	    /* payload bytes produced so far */
	uint64_t max;	    /* payload cap; passing it -> -413 */
	size_t line_len;    /* length of the current size/trailer line, capped */
	size_t trailer_len; /* bytes of the trailer section so far, capped */
	size_t ext_len;	    /* bytes of chunk extensions so far, capped */
	const char *why;    /* after a -400: what was wrong, a phrase; else NULL */
};

void ld_http_chunked_init(struct ld_http_chunked *c, uint64_t max_body);

/*
 * ld_http_chunked_decode consumes as much of in[0..in_len) as it can.
 * *consumed receives the encoded bytes used, *produced the payload bytes
 * written to out. Returns 1 when the final chunk and trailers are complete (any
 * bytes after that belong to the next request), 0 when more input is needed,
 * -400 for malformed encoding (bad hex, missing CRLF, size overflow, a chunk
 * extension off its grammar, a size or trailer line over 4 KiB, extensions
 * past their cap; c->why then says which, in a phrase), -413 when the payload
 * passes max.
 *
 * When it returns 0 all of in was consumed (a partial size line is kept in
 * the state, not in the buffer). It never writes past out + *produced, and
 * *produced <= *consumed. The -413 comes as soon as a chunk size would pass
 * max, before its data. Errors and completion are sticky: later calls return
 * the same value and consume nothing.
 */
int ld_http_chunked_decode(struct ld_http_chunked *c, char *out, const char *in, size_t in_len,
			   size_t *consumed, size_t *produced);

#endif
