/*
 * test_parser.c - conformance corpus for the HTTP/1.1 request parser and the
 * chunked decoder.
 *
 * Every case of the request table is parsed three ways: whole, one byte at a
 * time and in random splits, each step in a fresh heap buffer of exactly the
 * bytes received so far (so a read past the end trips the sanitizer build, and
 * the buffer moves between calls the way a growing read buffer does). All
 * three must agree with the expected outcome, and a rejection that is certain
 * before the end (a request line that can no longer be valid) must come at
 * exactly the byte that makes it so.
 *
 * LD_PARSER_BENCH=1 makes the binary also print ns per parse of a typical
 * request (a figure to read, never asserted).
 */
#include "unit.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "http/parser.h"

#define R(s) .raw = (s), .len = sizeof(s) - 1
#define OK   1

struct want_field {
	const char *name, *value;
};

struct pcase {
	const char *name;
	const char *raw;
	size_t len;
	int status;  /* OK, or the negative status expected */
	size_t at;   /* a rejection: comes once exactly this many bytes are in */
	size_t hdr;  /* expected header_len when not len (a body follows) */
	size_t lead; /* empty lines skipped before the request line, in bytes */
	enum ld_http_method method;
	const char *method_str;		   /* checked when set */
	const char *target, *path, *query; /* query NULL: expected absent */
	const char *authority;		   /* checked when set */
	int minor;
	int64_t cl; /* 0 in the table means -1 (none); use CL(n) for a value */
	bool chunked, keep_alive, expect;
	unsigned nfields;
	struct want_field fields[6]; /* checked when fields[0].name is set */
};

/* Content-Length in the table: stored off by one so that 0 means "absent". */
#define CL(n) .cl = (n) + 1

#define GET11(t) .method = LD_HTTP_GET, .target = (t), .minor = 1, .keep_alive = true
/* Requests for "/" with the given method, version and persistence. */
#define ROOT(m, minor_, ka)                                                                        \
	.method = (m), .target = "/", .path = "/", .minor = (minor_), .keep_alive = (ka)
#define ROOT11(m)	ROOT(m, 1, true)
#define ROOT11_CLOSE(m) ROOT(m, 1, false)
#define ROOT10(m)	ROOT(m, 0, false)
#define ROOT10_KEEP(m)	ROOT(m, 0, true)

static const struct pcase cases[] = {
    /* ---- accepted ---- */
    {"minimal 1.1", R("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), OK, ROOT11(LD_HTTP_GET), .nfields = 1,
     .fields = {{"Host", "a"}}},
    {"minimal 1.0 without Host", R("GET / HTTP/1.0\r\n\r\n"), OK, ROOT10(LD_HTTP_GET)},
    {"query split", R("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: a\r\n\r\n"), OK, GET11("/a/b?x=1&y=2"),
     .path = "/a/b", .query = "x=1&y=2", .nfields = 1},
    {"empty query", R("GET /? HTTP/1.1\r\nHost: a\r\n\r\n"), OK, GET11("/?"), .path = "/",
     .query = "", .nfields = 1},
    {"second ? stays in query", R("GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n"), OK, GET11("/a?b?c"),
     .path = "/a", .query = "b?c", .nfields = 1},
    {"visible ASCII target",
     R("GET /a-._~!$&'()*+,;=:@%20/\"<>[]{}|\\^`?q=/? HTTP/1.1\r\nHost: a\r\n\r\n"), OK,
     GET11("/a-._~!$&'()*+,;=:@%20/\"<>[]{}|\\^`?q=/?"),
     .path = "/a-._~!$&'()*+,;=:@%20/\"<>[]{}|\\^`", .query = "q=/?", .nfields = 1},
    {"browser GET",
     R("GET /v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 "
       "(X11; Linux x86_64)\r\nAccept: application/json\r\nAccept-Encoding: gzip, "
       "deflate\r\nAuthorization: Bearer abc.def\r\n\r\n"),
     OK, GET11("/v1/users/42"), .path = "/v1/users/42", .nfields = 5,
     .fields = {{"Host", "api.example.com"},
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"},
		{"Accept", "application/json"},
		{"Accept-Encoding", "gzip, deflate"},
		{"Authorization", "Bearer abc.def"}}},
    {"POST with body", R("POST /v1/items HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"),
     OK, .hdr = 55, .method = LD_HTTP_POST, .target = "/v1/items", .path = "/v1/items", .minor = 1,
     .keep_alive = true, CL(5), .nfields = 2},
    {"CL zero", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), OK,
     ROOT11(LD_HTTP_POST), CL(0), .nfields = 2},
    {"CL leading zeros", R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 00012\r\n\r\n"), OK,
     ROOT11(LD_HTTP_PUT), CL(12), .nfields = 2},
    {"CL INT64_MAX", R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"),
     OK, ROOT11(LD_HTTP_PUT), .cl = INT64_MAX, .nfields = 2},
    {"CL OWS around the value", R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:  5\t \r\n\r\n"), OK,
     ROOT11(LD_HTTP_PUT), CL(5), .nfields = 2, .fields = {{"Host", "a"}, {"Content-Length", "5"}}},
    {"CL list of equal values", R("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 ,\t5,5\r\n\r\n"),
     OK, ROOT11(LD_HTTP_PUT), CL(5), .nfields = 2},
    {"CL repeated equal",
     R("PUT / HTTP/1.1\r\nContent-Length: 7\r\nHost: a\r\ncontent-length: "
       "007\r\n\r\n"),
     OK, ROOT11(LD_HTTP_PUT), CL(7), .nfields = 3},
    {"TE chunked", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), OK,
     ROOT11(LD_HTTP_POST), .chunked = true, .nfields = 2},
    {"TE CHUNKED any case with OWS",
     R("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: \t CHUNKED \r\n\r\n"), OK,
     ROOT11(LD_HTTP_POST), .chunked = true, .nfields = 2},
    {"1.0 keep-alive", R("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), OK,
     ROOT10_KEEP(LD_HTTP_GET), .nfields = 1},
    {"1.0 Keep-Alive case", R("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), OK,
     ROOT10_KEEP(LD_HTTP_GET), .nfields = 1},
    {"1.0 keep-alive and close", R("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), OK,
     ROOT10(LD_HTTP_GET), .nfields = 1},
    {"1.0 other connection option", R("GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n"), OK,
     ROOT10(LD_HTTP_GET), .nfields = 1},
    {"1.1 close", R("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), OK,
     ROOT11_CLOSE(LD_HTTP_GET), .nfields = 2},
    {"1.1 close in a list", R("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade ,CLOSE\r\n\r\n"),
     OK, ROOT11_CLOSE(LD_HTTP_GET), .nfields = 2},
    {"1.1 close in a second field",
     R("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nconnection: close\r\n\r\n"), OK,
     ROOT11_CLOSE(LD_HTTP_GET), .nfields = 3},
    {"1.1 'closed' is not close", R("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"), OK,
     ROOT11(LD_HTTP_GET), .nfields = 2},
    {"expect 100-continue",
     R("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"), OK,
     ROOT11(LD_HTTP_PUT), CL(3), .expect = true, .nfields = 3},
    {"expect something else", R("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), OK,
     ROOT11(LD_HTTP_PUT), .nfields = 2},
    {"expect ignored on 1.0", R("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), OK,
     ROOT10(LD_HTTP_PUT), .nfields = 1},
    {"OPTIONS *", R("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .method = LD_HTTP_OPTIONS,
     .target = "*", .path = "*", .minor = 1, .keep_alive = true, .nfields = 1},
    {"HEAD", R("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .method = LD_HTTP_HEAD, .target = "/x",
     .path = "/x", .minor = 1, .keep_alive = true, .nfields = 1},
    {"PATCH", R("PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .method = LD_HTTP_PATCH,
     .target = "/x", .path = "/x", .minor = 1, .keep_alive = true, .nfields = 1},
    {"DELETE", R("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .method = LD_HTTP_DELETE,
     .target = "/x", .path = "/x", .minor = 1, .keep_alive = true, .nfields = 1},
    {"OPTIONS path", R("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .method = LD_HTTP_OPTIONS,
     .target = "/x", .path = "/x", .minor = 1, .keep_alive = true, .nfields = 1},
    {"unknown method token", R("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n"), OK,
     .method = LD_HTTP_OTHER, .method_str = "PROPFIND", .target = "/", .path = "/", .minor = 1,
     .keep_alive = true, .nfields = 1},
    {"methods are case-sensitive", R("get / HTTP/1.1\r\nHost: a\r\n\r\n"), OK,
     .method = LD_HTTP_OTHER, .method_str = "get", .target = "/", .path = "/", .minor = 1,
     .keep_alive = true, .nfields = 1},
    {"every tchar in a method", R("!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\nHost: a\r\n\r\n"), OK,
     .method = LD_HTTP_OTHER, .method_str = "!#$%&'*+-.^_`|~09azAZ", .target = "/", .path = "/",
     .minor = 1, .keep_alive = true, .nfields = 1},
    {"GETX is not GET", R("GETX / HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .method = LD_HTTP_OTHER,
     .method_str = "GETX", .target = "/", .path = "/", .minor = 1, .keep_alive = true,
     .nfields = 1},
    {"obs-text and inner whitespace in a value",
     R("GET / HTTP/1.1\r\nHost: a\r\nX-Name: \t caf\xc3\xa9 \xff\t x \t\r\n\r\n"), OK,
     ROOT11(LD_HTTP_GET), .nfields = 2,
     .fields = {{"Host", "a"}, {"X-Name", "caf\xc3\xa9 \xff\t x"}}},
    {"empty values", R("GET / HTTP/1.1\r\nHost: a\r\nX-A:\r\nX-B: \t \r\n\r\n"), OK,
     ROOT11(LD_HTTP_GET), .nfields = 3, .fields = {{"Host", "a"}, {"X-A", ""}, {"X-B", ""}}},
    {"field names are case-insensitive",
     R("POST / HTTP/1.1\r\nHOST: a\r\ncOnTeNt-LeNgTh: 3\r\n\r\n"), OK, ROOT11(LD_HTTP_POST), CL(3),
     .nfields = 2},
    {"Host with port", R("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), OK,
     ROOT11(LD_HTTP_GET), .nfields = 1},
    {"Host IPv6 literal", R("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), OK, ROOT11(LD_HTTP_GET),
     .nfields = 1},
    {"Host is the authority", R("GET / HTTP/1.1\r\nHost: a.example:80\r\n\r\n"), OK,
     ROOT11(LD_HTTP_GET), .authority = "a.example:80", .nfields = 1},
    {"same-length names that are not special",
     R("GET / HTTP/1.1\r\nHost: a\r\nHosx: 1 2\r\nContent-Lengtx: -1\r\nTransfer-Encodinx: "
       "gzip\r\nExpecx: 100-continue\r\nConnectiox: close\r\n\r\n"),
     OK, ROOT11(LD_HTTP_GET), .nfields = 6},
    {"body bytes after the block are not read",
     R("GET / HTTP/1.1\r\nHost: a\r\n\r\n\n\r\x00garbage"), OK, .hdr = 27, ROOT11(LD_HTTP_GET),
     .nfields = 1},

    /* ---- RFC 9112 2.2: empty lines before the request line ---- */
    {"leading empty line", R("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), OK, .lead = 2,
     ROOT11(LD_HTTP_GET), .nfields = 1},
    {"four leading empty lines", R("\r\n\r\n\r\n\r\nPOST / HTTP/1.0\r\n\r\n"), OK, .lead = 8,
     ROOT10(LD_HTTP_POST)},
    {"five leading empty lines", R("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
     .at = 10},
    {"leading bare LF", R("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 3},
    {"leading bare CR", R("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 2},
    {"leading SP CRLF", R(" \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 1},

    /* ---- RFC 9112 3.2.2: absolute-form ---- */
    {"absolute-form", R("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), OK, GET11("http://a/"),
     .path = "/", .authority = "a", .nfields = 1},
    {"absolute-form routes on its path, Host ignored",
     R("GET http://api.example:8080/v1/users/7?x=1&y HTTP/1.1\r\nHost: other\r\n\r\n"), OK,
     GET11("http://api.example:8080/v1/users/7?x=1&y"), .path = "/v1/users/7", .query = "x=1&y",
     .authority = "api.example:8080", .nfields = 1, .fields = {{"Host", "other"}}},
    {"absolute-form https in any case", R("PUT HtTpS://[::1]:8443/p HTTP/1.1\r\nHost: x\r\n\r\n"),
     OK, .method = LD_HTTP_PUT, .target = "HtTpS://[::1]:8443/p", .path = "/p",
     .authority = "[::1]:8443", .minor = 1, .keep_alive = true, .nfields = 1},
    {"absolute-form empty path is /", R("GET http://a HTTP/1.1\r\nHost: a\r\n\r\n"), OK,
     GET11("http://a"), .path = "/", .authority = "a", .nfields = 1},
    {"absolute-form empty path with a query", R("GET http://a?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"), OK,
     GET11("http://a?q=1"), .path = "/", .query = "q=1", .authority = "a", .nfields = 1},
    {"absolute-form on 1.0 without Host", R("GET http://a/x HTTP/1.0\r\n\r\n"), OK,
     .method = LD_HTTP_GET, .target = "http://a/x", .path = "/x", .authority = "a"},
    {"absolute-form still needs Host on 1.1", R("GET http://a/ HTTP/1.1\r\n\r\n"), -400},
    {"absolute-form with an empty Host", R("GET http://a/ HTTP/1.1\r\nHost:\r\n\r\n"), -400},
    {"absolute-form empty authority", R("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
     .at = 12},
    {"absolute-form empty authority at the end", R("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
     .at = 12},
    {"absolute-form userinfo", R("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 13},
    {"absolute-form other scheme", R("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 5},
    {"absolute-form scheme httpx", R("GET httpx://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 9},
    {"absolute-form without //", R("GET http:a/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 10},
    {"absolute-form fragment", R("GET http://a/#x HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 14},
    {"absolute-form SP in authority", R("GET http://a b/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400,
     .at = 14},

    /* ---- request line ---- */
    {"double space after method", R("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"double space before version", R("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"trailing space after version", R("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -400},
    {"tab as separator", R("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"leading space", R(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"no method", R("/ HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"method not a token", R("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"method with obs-text", R("G\xc9T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"lower-case version", R("GET / http/1.1\r\nHost: a\r\n\r\n"), -400},
    {"lower-case version at its first byte", R("GET / hTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 7},
    {"HTTP/1.2 is 1.1", R("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), OK, ROOT11(LD_HTTP_GET),
     .nfields = 1},
    {"HTTP/1.9 is 1.1, even closing", R("GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n"),
     OK, ROOT11_CLOSE(LD_HTTP_GET), .nfields = 2},
    {"HTTP/1.2 still needs Host", R("GET / HTTP/1.2\r\n\r\n"), -400},
    {"HTTP/2.0 is 505", R("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -505, .at = 16},
    {"HTTP/3.0 is 505", R("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), -505, .at = 16},
    {"HTTP/0.9 written out is 505", R("GET / HTTP/0.9\r\n\r\n"), -505, .at = 16},
    {"HTTP/2 preface is 505", R("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), -505, .at = 16},
    {"HTTP/2.0 after a bad target is 400", R("GET /a#b HTTP/2.0\r\nHost: a\r\n\r\n"), -400,
     .at = 7},
    {"HTTP/1.10", R("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), -400, .at = 15},
    {"HTTP/10.1", R("GET / HTTP/10.1\r\nHost: a\r\n\r\n"), -400, .at = 13},
    {"HTTP/1", R("GET / HTTP/1\r\nHost: a\r\n\r\n"), -400, .at = 13},
    {"HTTP/1.1x", R("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), -400, .at = 15},
    {"HTTP/1.1 CR CR", R("GET / HTTP/1.1\r\rHost: a\r\n\r\n"), -400, .at = 16},
    {"HTTP/0.9 line", R("GET /\r\n\r\n"), -400, .at = 6},
    {"HTTP/0.9 line, more to come", R("GET /\r\nHost: a\r\n\r\n"), -400, .at = 6},
    {"no version", R("GET / \r\nHost: a\r\n\r\n"), -400, .at = 7},
    {"no version at the block end", R("GET / \r\n\r\n"), -400, .at = 7},
    {"version cut short at the block end", R("GET / HTTP/\r\n\r\n"), -400, .at = 12},
    {"CTL in the target", R("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 6},
    {"authority-form", R("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), -400, .at = 9},
    {"* for GET", R("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 16},
    {"* for OPTIONSX", R("OPTIONSX * HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 21},
    {"*x for OPTIONS", R("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), -400, .at = 10},
    {"empty target", R("GET  HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"fragment in target", R("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"DEL in target", R("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"byte >= 0x80 in target", R("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"NUL in target", R("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"), -400},
    {"bare CR in request line", R("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), -400},

    /* ---- line endings ---- */
    {"bare LF everywhere", R("GET / HTTP/1.1\nHost: a\n\n"), -400},
    {"bare LF after a field", R("GET / HTTP/1.1\r\nHost: a\n\r\n"), -400},
    {"bare LF as the blank line", R("GET / HTTP/1.1\r\nHost: a\r\n\n"), -400},
    {"bare CR in a value", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), -400},
    {"bare CR ending a value", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n"), -400},
    {"bare CR starting a line", R("GET / HTTP/1.1\r\nHost: a\r\n\rX: a\r\n\r\n"), -400},
    {"bare CR as the blank line", R("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), -400},

    /* ---- field lines ---- */
    {"obs-fold with SP", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), -400},
    {"obs-fold with HTAB", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), -400},
    {"space before colon", R("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400},
    {"tab before colon", R("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), -400},
    {"no colon", R("GET / HTTP/1.1\r\nHost: a\r\nX-Foo\r\n\r\n"), -400},
    {"empty name", R("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"), -400},
    {"name not a token", R("GET / HTTP/1.1\r\nHost: a\r\nX(Y): x\r\n\r\n"), -400},
    {"space inside name", R("GET / HTTP/1.1\r\nHost: a\r\nX Y: x\r\n\r\n"), -400},
    {"obs-text in name", R("GET / HTTP/1.1\r\nHost: a\r\nX\xe9: x\r\n\r\n"), -400},
    {"NUL in name", R("GET / HTTP/1.1\r\nHost: a\r\nX\0: x\r\n\r\n"), -400},
    {"NUL in value", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), -400},
    {"SOH in value", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n"), -400},
    {"US in value", R("GET / HTTP/1.1\r\nHost: a\r\nX: \x1f\r\n\r\n"), -400},
    {"DEL in value", R("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), -400},
    {"VT in value", R("GET / HTTP/1.1\r\nHost: a\r\nX: \va\r\n\r\n"), -400},

    /* ---- Host ---- */
    {"1.1 without Host", R("GET / HTTP/1.1\r\nX: a\r\n\r\n"), -400},
    {"two Hosts", R("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), -400},
    {"two Hosts on 1.0", R("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -400},
    {"Host with space", R("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400},
    {"Host with slash", R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -400},
    {"Host with userinfo", R("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), -400},
    {"Host with obs-text", R("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"), -400},
    {"Host empty", R("GET / HTTP/1.1\r\nHost:\r\n\r\n"), -400},
    {"Host only whitespace", R("GET / HTTP/1.1\r\nHost: \t \r\n\r\n"), -400},
    {"Host empty on 1.0", R("GET / HTTP/1.0\r\nHost:\r\n\r\n"), -400},

    /* ---- Content-Length ---- */
    {"CL +5", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), -400},
    {"CL 5 5", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n"), -400},
    {"CL -1", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), -400},
    {"CL hex", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), -400},
    {"CL trailing letter", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"), -400},
    {"CL exponent", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n"), -400},
    {"CL empty", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n"), -400},
    {"CL VT before", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \v5\r\n\r\n"), -400},
    {"CL NBSP before",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xa0"
       "5\r\n\r\n"),
     -400},
    {"CL INT64_MAX + 1",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"), -400},
    {"CL 2^64", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n"),
     -400},
    {"CL huge", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
     -400},
    {"CL list differing", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,6\r\n\r\n"), -400},
    {"CL fields differing",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), -400},
    {"CL empty list element", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n"),
     -400},
    {"CL trailing comma", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), -400},
    {"CL leading comma", R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\n"), -400},

    /* ---- Transfer-Encoding ---- */
    {"CL and TE",
     R("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
       "chunked\r\n\r\n"),
     -400},
    {"TE and CL",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: "
       "0\r\n\r\n"),
     -400},
    {"TE space before colon",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"), -400},
    {"TE xchunked", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), -400},
    {"TE chunked, identity",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), -400},
    {"TE gzip, chunked",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -400},
    {"TE identity", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), -400},
    {"TE empty", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), -400},
    {"TE chunked twice",
     R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n"),
     -400},
    {"TE with obs-text", R("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xff\r\n\r\n"),
     -400},
    {"TE on 1.0", R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400},
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64: deterministic, so a failure reproduces. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* copy returns a heap buffer holding exactly buf[0..n) (n may be 0). */
static char *copy(const char *buf, size_t n)
{
	char *b = malloc(n ? n : 1);

	if (!b)
		abort();
	memcpy(b, buf, n);
	return b;
}

static size_t expected_hdr(const struct pcase *c)
{
	return c->hdr ? c->hdr : c->len;
}

static int in_buf(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/* check_request compares an accepted request with the case's expectations. */
static void check_request(const struct pcase *c, const char *buf, int rc,
			  const struct ld_http_request *r)
{
	size_t hdr = expected_hdr(c);
	unsigned i;

	CHECK_INT(rc, hdr);
	CHECK_INT(r->header_len, hdr);
	if (rc <= 0)
		return;
	CHECK_INT(r->method, c->method);
	if (c->method_str) {
		CHECK_INT(r->method_len, strlen(c->method_str));
		CHECK_MEM(r->method_str, c->method_str, r->method_len);
	}
	CHECK(r->method_str == buf + c->lead);
	CHECK_INT(r->target_len, strlen(c->target));
	CHECK_MEM(r->target, c->target, r->target_len);
	CHECK(in_buf(r->target, r->target_len, buf, hdr));
	CHECK_INT(r->path_len, strlen(c->path));
	CHECK_MEM(r->path, c->path, r->path_len);
	/* origin-form and "*": the path starts the target; absolute-form: it
	 * ends it (but for the query), or is the constant "/". */
	if (c->target[0] == '/' || c->target[0] == '*')
		CHECK(r->path == r->target);
	else if (!in_buf(r->path, r->path_len, buf, hdr))
		CHECK(r->path_len == 1 && r->path[0] == '/');
	else
		CHECK(r->path > r->target && r->path < r->target + r->target_len);
	if (c->query) {
		CHECK(r->query != NULL);
		if (r->query) {
			CHECK_INT(r->query_len, strlen(c->query));
			CHECK_MEM(r->query, c->query, r->query_len);
			CHECK(r->query + r->query_len == r->target + r->target_len);
			CHECK(r->query[-1] == '?');
		}
	} else {
		CHECK(r->query == NULL);
	}
	if (c->authority) {
		CHECK(r->authority != NULL);
		if (r->authority) {
			CHECK_INT(r->authority_len, strlen(c->authority));
			CHECK_MEM(r->authority, c->authority, r->authority_len);
			CHECK(in_buf(r->authority, r->authority_len, buf, hdr));
		}
	} else if (c->minor == 0 && !ld_http_find(r, "host") && r->target[0] == '/') {
		CHECK(r->authority == NULL);
	}
	CHECK_INT(r->version_minor, c->minor);
	CHECK_INT(r->content_length, c->cl == INT64_MAX ? INT64_MAX : c->cl - 1);
	CHECK_INT(r->chunked, c->chunked);
	CHECK_INT(r->keep_alive, c->keep_alive);
	CHECK_INT(r->expect_continue, c->expect);
	CHECK_INT(r->nfields, c->nfields);
	for (i = 0; i < r->nfields && i < LD_HTTP_FIELDS_CAP; i++) {
		CHECK(in_buf(r->fields[i].name, r->fields[i].name_len, buf, hdr));
		CHECK(in_buf(r->fields[i].value, r->fields[i].value_len, buf, hdr));
	}
	for (i = 0; i < 6 && c->fields[i].name; i++) {
		CHECK_INT(r->fields[i].name_len, strlen(c->fields[i].name));
		CHECK_MEM(r->fields[i].name, c->fields[i].name, r->fields[i].name_len);
		CHECK_INT(r->fields[i].value_len, strlen(c->fields[i].value));
		CHECK_MEM(r->fields[i].value, c->fields[i].value, r->fields[i].value_len);
	}
}

/* feed parses c->raw arriving in the pieces given by cuts (ascending, the
 * last equal to len) and checks each step: 0 while incomplete, then the
 * expected outcome, and scanned never past what has arrived. */
static void feed(const struct pcase *c, const struct ld_http_limits *lim, const size_t *cuts,
		 size_t ncuts, const char *how)
{
	static struct ld_http_request req;
	struct ld_http_parser p;
	int failed_before = unit_cur_failed;
	size_t i;

	unit_cur_failed = 0;
	ld_http_parser_init(&p, lim);
	for (i = 0; i < ncuts; i++) {
		size_t n = cuts[i];
		char *b = copy(c->raw, n);
		int rc = ld_http_parse_request(&p, b, n, &req);

		CHECK(p.scanned <= n);
		if (c->status == OK && n < expected_hdr(c)) {
			CHECK_INT(rc, 0);
		} else if (c->status != OK && c->at && n < c->at) {
			CHECK_INT(rc, 0); /* not certain yet */
		} else if (c->status == OK) {
			check_request(c, b, rc, &req);
			free(b);
			break;
		} else if (rc != 0 || n == c->len || c->at) {
			CHECK_INT(rc, c->status);
			free(b);
			break;
		}
		free(b);
	}
	if (unit_cur_failed)
		fprintf(stderr, "  ^ case \"%s\" fed %s\n", c->name, how);
	unit_cur_failed |= failed_before;
}

/* run_case parses one case whole, byte by byte and in random splits. */
static void run_case(const struct pcase *c, const struct ld_http_limits *lim)
{
	size_t *cuts = malloc((c->len + 1) * sizeof(*cuts));
	size_t i, n;
	int round;

	if (!cuts)
		abort();
	cuts[0] = c->len;
	feed(c, lim, cuts, 1, "whole");
	/* Byte by byte costs len^2 / 2 copies: done up to the default
	 * limits, beyond that only the random splits, in bigger steps. */
	if (c->len <= 40000) {
		for (i = 0; i < c->len; i++)
			cuts[i] = i + 1;
		feed(c, lim, cuts, c->len, "byte by byte");
	}
	for (round = 0; round < 8; round++) {
		size_t at = 0, most = round < 4 ? 8 : 64;

		if (c->len > 40000)
			most = 4096;
		n = 0;
		while (at < c->len) {
			at += 1 + rnd() % most;
			if (at > c->len)
				at = c->len;
			cuts[n++] = at;
		}
		feed(c, lim, cuts, n, "in random splits");
	}
	free(cuts);
}

static void test_corpus(void)
{
	size_t i;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], NULL);
}

/* ---- every byte of each character class ---- */

static int is_tchar(int b)
{
	return b < 0x80 && (isalnum(b) || (b && strchr("!#$%&'*+-.^_`|~", b)));
}

static int parse_once(const char *raw, size_t len)
{
	static struct ld_http_request req;
	struct ld_http_parser p;
	char *b = copy(raw, len);
	int rc;

	ld_http_parser_init(&p, NULL);
	rc = ld_http_parse_request(&p, b, len, &req);
	free(b);
	return rc;
}

/* with_byte builds fmt with its one '@' replaced by byte b, and parses it. */
static int with_byte(const char *fmt, int b)
{
	char raw[256];
	size_t n = strlen(fmt), at = (size_t)(strchr(fmt, '@') - fmt);

	memcpy(raw, fmt, n);
	raw[at] = (char)b;
	return parse_once(raw, n);
}

static void test_byte_classes(void)
{
	int b;

	for (b = 0; b < 256; b++) {
		int rc, want_ok, at;

		rc = with_byte("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", b);
		CHECK_INT(rc > 0, is_tchar(b));
		/* "X:Y: v" is the field X with the value "Y: v". */
		rc = with_byte("GET / HTTP/1.1\r\nHost: a\r\nX@Y: v\r\n\r\n", b);
		CHECK_INT(rc > 0, is_tchar(b) || b == ':');
		want_ok = b == '\t' || b == ' ' || (b >= 0x21 && b <= 0x7e) || b >= 0x80;
		rc = with_byte("GET / HTTP/1.1\r\nHost: a\r\nX: a@b\r\n\r\n", b);
		CHECK_INT(rc > 0, want_ok);
		/* Long values are checked several bytes at a time: try the byte
		 * at each place of a word, followed by more fields. */
		for (at = 0; at < 9; at++) {
			char fmt[] =
			    "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789abcdefgh\r\nY: z\r\n\r\n";

			fmt[29 + at] = '@';
			rc = with_byte(fmt, b);
			CHECK_INT(rc > 0, want_ok);
		}
		rc = with_byte("GET /a@b HTTP/1.1\r\nHost: a\r\n\r\n", b);
		want_ok = b >= 0x21 && b <= 0x7e && b != '#';
		CHECK_INT(rc > 0, want_ok);
		/* Long paths are checked eight bytes at a time too. */
		for (at = 0; at < 9; at++) {
			char fmt[] = "GET /0123456789abcdefgh HTTP/1.1\r\nHost: a\r\n\r\n";

			fmt[6 + at] = '@';
			rc = with_byte(fmt, b);
			CHECK_INT(rc > 0, want_ok);
		}
		rc = with_byte("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", b);
		want_ok = b < 0x80 && (isalnum(b) || (b && strchr("-._~!$&'()*+,;=:%[]", b)));
		CHECK_INT(rc > 0, want_ok);
		if (unit_cur_failed) {
			fprintf(stderr, "  ^ byte 0x%02x\n", b);
			break;
		}
	}
}

/* ---- limits ---- */

/* build writes a request: a request line of rl bytes ("GET /aaa HTTP/1.1"),
 * "Host: a", then nf fields whose lines (CRLF included) are fl[i] bytes (at
 * least 8), then the blank line. Returns the length. */
static size_t build(char *out, size_t rl, const size_t *fl, unsigned nf)
{
	size_t n, k;
	unsigned i;

	n = (size_t)sprintf(out, "GET /");
	for (k = 0; k < rl - strlen("GET / HTTP/1.1\r\n"); k++)
		out[n++] = 'a';
	n += (size_t)sprintf(out + n, " HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < nf; i++) {
		size_t start = n;

		n += (size_t)sprintf(out + n, "X%u: ", i);
		while (n - start < fl[i] - 2)
			out[n++] = 'v';
		out[n++] = '\r';
		out[n++] = '\n';
	}
	out[n++] = '\r';
	out[n++] = '\n';
	return n;
}

/* build_total writes a request of exactly total bytes, spreading the fields
 * evenly so that no line passes header_line_max. */
static size_t build_total(char *out, const struct ld_http_limits *lim, size_t total, size_t *fl)
{
	size_t rest = total - 16 - 9 - 2, k, i;

	k = (rest + lim->header_line_max - 1) / lim->header_line_max;
	for (i = 0; i < k; i++)
		fl[i] = rest / k + (i < rest % k);
	CHECK(k + 1 <= lim->fields_max);
	CHECK(rest / k >= 8);
	return build(out, 16, fl, (unsigned)k);
}

/* expect_limit runs one generated request (from build) through run_case,
 * and for a rejection also checks that it comes at byte fires_at. */
static void expect_limit(const struct ld_http_limits *lim, const char *raw, size_t len, int want,
			 size_t fires_at, const char *what)
{
	struct pcase c = {.name = what, .raw = raw, .len = len, .status = want};
	static struct ld_http_request req;
	struct ld_http_parser p;
	const char *sp = memchr(raw + 4, ' ', len - 4);
	size_t tlen = sp ? (size_t)(sp - (raw + 4)) : 0, i;
	char *target = malloc(tlen + 1);
	int rc;

	if (!target)
		abort();
	memcpy(target, raw + 4, tlen);
	target[tlen] = 0;
	c.method = LD_HTTP_GET;
	c.target = c.path = target;
	c.minor = 1;
	c.keep_alive = true;
	for (i = 0; i + 1 < len; i++)
		c.nfields += raw[i] == '\r' && raw[i + 1] == '\n';
	c.nfields -= 2; /* the request line and the blank line */
	run_case(&c, lim);
	free(target);
	if (want == OK)
		return;
	/* The rejection comes as soon as it is certain, not at the end. */
	ld_http_parser_init(&p, lim);
	rc = ld_http_parse_request(&p, raw, fires_at - 1, &req);
	CHECK_INT(rc, 0);
	rc = ld_http_parse_request(&p, raw, fires_at, &req);
	CHECK_INT(rc, want);
	if (unit_cur_failed)
		fprintf(stderr, "  ^ limit case \"%s\"\n", what);
}

static void limits_with(const struct ld_http_limits *lim)
{
	size_t cap = lim->headers_max + lim->request_line_max + 2 * lim->header_line_max +
		     LD_HTTP_FIELDS_CAP * (size_t)16;
	char *raw = malloc(cap);
	size_t *fl = malloc((LD_HTTP_FIELDS_CAP + 1) * sizeof(*fl));
	size_t n, i;

	if (!raw || !fl)
		abort();
	/* The request line at exactly its limit, and one byte over: refused
	 * when the limit's worth of bytes has come without a LF. */
	n = build(raw, lim->request_line_max, NULL, 0);
	expect_limit(lim, raw, n, OK, 0, "request line at the limit");
	n = build(raw, lim->request_line_max + 1, NULL, 0);
	expect_limit(lim, raw, n, -414, lim->request_line_max, "request line one over");

	/* One field line (after the 16-byte request line and 9-byte Host). */
	fl[0] = lim->header_line_max;
	n = build(raw, 16, fl, 1);
	expect_limit(lim, raw, n, OK, 0, "field line at the limit");
	fl[0] = lim->header_line_max + 1;
	n = build(raw, 16, fl, 1);
	expect_limit(lim, raw, n, -431, 25 + lim->header_line_max, "field line one over");

	/* The whole block. */
	n = build_total(raw, lim, lim->headers_max, fl);
	CHECK_INT(n, lim->headers_max);
	expect_limit(lim, raw, n, OK, 0, "headers at the limit");
	n = build_total(raw, lim, lim->headers_max + 1, fl);
	CHECK_INT(n, lim->headers_max + 1);
	expect_limit(lim, raw, n, -431, lim->headers_max, "headers one over");

	/* fields_max fields (Host is one), and one more: refused at the first
	 * byte of the extra line. */
	for (i = 0; i < LD_HTTP_FIELDS_CAP; i++)
		fl[i] = 12;
	n = build(raw, 16, fl, lim->fields_max - 1);
	expect_limit(lim, raw, n, OK, 0, "fields at the limit");
	n = build(raw, 16, fl, lim->fields_max);
	expect_limit(lim, raw, n, -431, 25 + (lim->fields_max - 1) * (size_t)12 + 1,
		     "fields one over");
	free(fl);
	free(raw);
}

static void test_limits_small(void)
{
	struct ld_http_limits lim = {
	    .request_line_max = 64, .header_line_max = 48, .headers_max = 200, .fields_max = 5};

	rng_state = 42;
	limits_with(&lim);
}

static void test_limits_default(void)
{
	struct ld_http_limits lim;

	ld_http_limits_default(&lim);
	CHECK_INT(lim.request_line_max, 8192);
	CHECK_INT(lim.header_line_max, 8192);
	CHECK_INT(lim.headers_max, 32768);
	CHECK_INT(lim.fields_max, 100);
	rng_state = 43;
	limits_with(&lim);
}

static void test_fields_cap_clamped(void)
{
	struct ld_http_limits lim;
	struct ld_http_parser p;

	ld_http_limits_default(&lim);
	lim.fields_max = 100000;
	lim.headers_max = (size_t)1 << 40;
	ld_http_parser_init(&p, &lim);
	CHECK_INT(p.lim.fields_max, LD_HTTP_FIELDS_CAP);
	CHECK_INT(p.lim.headers_max, 0x7fffffff);
	lim.fields_max = LD_HTTP_FIELDS_CAP;
	lim.headers_max = 1 << 17;
	rng_state = 44;
	limits_with(&lim);
}

/* A line limit and the block limit reached by the same byte: the line's
 * status wins, whichever way the bytes arrive. */
static void test_limit_order(void)
{
	struct ld_http_limits lim = {
	    .request_line_max = 32, .header_line_max = 32, .headers_max = 32, .fields_max = 5};
	char raw[64];

	memset(raw, 'a', sizeof(raw));
	memcpy(raw, "GET /", 5);
	rng_state = 45;
	expect_limit(&lim, raw, sizeof(raw), -414, 32, "request line and block at once");
	lim.request_line_max = 64;
	expect_limit(&lim, raw, sizeof(raw), -431, 32, "block before the request line");
}

/* ---- incremental behaviour ---- */

static void test_trickle_scans_once(void)
{
	static const char raw[] = "GET /x HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaa"
				  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	static struct ld_http_request req;
	struct ld_http_parser p;
	size_t n;

	ld_http_parser_init(&p, NULL);
	for (n = 1; n < sizeof(raw) - 1; n++) {
		CHECK_INT(ld_http_parse_request(&p, raw, n, &req), 0);
		/* Everything received has been searched, once. */
		CHECK_INT(p.scanned, n);
	}
	CHECK_INT(ld_http_parse_request(&p, raw, n, &req), n);
	/* Called again without a reset: the same answer. */
	CHECK_INT(ld_http_parse_request(&p, raw, n, &req), n);
	CHECK_INT(req.nfields, 2);
	/* A shorter buffer than was scanned is a new request. */
	CHECK_INT(ld_http_parse_request(&p, raw, 10, &req), 0);
	CHECK_INT(p.scanned, 10);
}

static void test_pipelined(void)
{
	static const char raw[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
				  "POST /b?q HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
				  "GET /c HTTP/1.0\r\n\r\n"
				  "GET /d HTTP/1.1\r\nHo";
	static struct ld_http_request req;
	struct ld_http_parser p;
	size_t off = 0, len = sizeof(raw) - 1;
	int rc;

	ld_http_parser_init(&p, NULL);
	rc = ld_http_parse_request(&p, raw, len, &req);
	CHECK_INT(rc, 28);
	CHECK_INT(req.header_len, 28);
	CHECK_INT(req.method, LD_HTTP_GET);
	CHECK_MEM(req.target, "/a", 2);
	off += req.header_len;

	ld_http_parser_reset(&p);
	rc = ld_http_parse_request(&p, raw + off, len - off, &req);
	CHECK_INT(rc, 50);
	CHECK_INT(req.method, LD_HTTP_POST);
	CHECK_INT(req.content_length, 3);
	CHECK_MEM(req.query, "q", 1);
	CHECK_MEM(raw + off + req.header_len, "abc", 3);
	off += req.header_len + 3;

	ld_http_parser_reset(&p);
	rc = ld_http_parse_request(&p, raw + off, len - off, &req);
	CHECK_INT(rc, 19);
	CHECK_INT(req.version_minor, 0);
	CHECK(!req.keep_alive);
	off += req.header_len;

	ld_http_parser_init(&p, NULL);
	rc = ld_http_parse_request(&p, raw + off, len - off, &req);
	CHECK_INT(rc, 0);
	CHECK_MEM(raw + off, "GET /d", 6);
}

/* A prefix that may still become a valid request waits for more bytes, and
 * a rejection stays: asked again, the parser gives the same answer. */
static void test_prefixes_wait(void)
{
	static const char *const wait[] = {"G",
					   "GET",
					   "GET ",
					   "GET /",
					   "GET /a?",
					   "GET / HTTP/",
					   "GET / HTTP/1",
					   "GET / HTTP/1.",
					   "GET / HTTP/1.1",
					   "GET / HTTP/1.1\r",
					   "GET / HTTP/2.0\r",
					   "GET h",
					   "GET HTTPS:/",
					   "GET http://",
					   "GET http://a",
					   "GET http://a:",
					   "OPTIONS *",
					   "\r",
					   "\r\n",
					   "\r\n\r\n\r\n\r\n",
					   "\r\n\r\n\r\n\r\n\r",
					   "\r\nGET"};
	static struct ld_http_request req;
	struct ld_http_parser p;
	size_t i;

	for (i = 0; i < sizeof(wait) / sizeof(wait[0]); i++) {
		CHECK_INT(parse_once(wait[i], strlen(wait[i])), 0);
		if (unit_cur_failed) {
			fprintf(stderr, "  ^ prefix \"%s\"\n", wait[i]);
			break;
		}
	}
	ld_http_parser_init(&p, NULL);
	CHECK_INT(ld_http_parse_request(&p, "GET / HTTP/2.0\r\n", 16, &req), -505);
	CHECK_INT(ld_http_parse_request(&p, "GET / HTTP/2.0\r\nHost: a\r\n", 25, &req), -505);
	ld_http_parser_init(&p, NULL);
	CHECK_INT(ld_http_parse_request(&p, "GET /\r", 6, &req), -400);
	CHECK_INT(ld_http_parse_request(&p, "GET /\r\n", 7, &req), -400);
	/* A reset parser starts afresh. */
	ld_http_parser_reset(&p);
	CHECK_INT(ld_http_parse_request(&p, "GET / HTTP/1.0\r\n\r\n", 18, &req), 18);
}

/* A rejection says what was wrong, in a phrase for the response. */
static void test_reasons(void)
{
	static const struct {
		const char *raw, *why;
		int status;
	} reqs[] = {
	    {"GET /\r\n", "the request line has no HTTP version", -400},
	    {"GET /a\x01", "the request target has a byte that is not allowed", -400},
	    {"G(T / HTTP/1.1\r\n", "the request method is not a token followed by one space", -400},
	    {"GET ftp://a/ HTTP/1.1\r\n",
	     "the request target is not origin-form, absolute-form (http or https, with a host) or "
	     "* for OPTIONS",
	     -400},
	    {"GET / HTTP/1.1x", "the HTTP version is not HTTP/ digit . digit followed by CRLF",
	     -400},
	    {"GET / HTTP/2.0\r\n", "the HTTP version is not supported: only HTTP/1.x is", -505},
	    {"GET * HTTP/1.1\r\n", "the request target * is only for OPTIONS", -400},
	    {"\r\n\r\n\r\n\r\n\r\n", "too many empty lines before the request line", -400},
	    {"GET / HTTP/1.1\n", "a line ends in a bare LF, not CRLF", -400},
	    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", "the Host field is empty or not host[:port]", -400},
	    {"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "the Host field is repeated", -400},
	    {"GET / HTTP/1.1\r\n\r\n", "an HTTP/1.1 request needs a Host field", -400},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n",
	     "a header field line is not token \":\" value (or is folded)", -400},
	    {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
	     "a header field value has a control byte", -400},
	    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n",
	     "the Content-Length is not one number, or differs between values", -400},
	    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	     "the Transfer-Encoding is not a lone chunked", -400},
	    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
	     "both Content-Length and Transfer-Encoding", -400},
	};
	static const struct {
		const char *raw, *why;
	} bodies[] = {
	    {"5;a \r\n", "a chunk extension is malformed"},
	    {"g\r\n", "a chunk size is not 1 to 16 hex digits"},
	    {"5\r\nhelloX", "chunk data is not followed by CRLF"},
	    {"5\rx", "a chunk size line does not end in CRLF"},
	    {"0\r\nX : y\r\n", "a trailer field line is malformed"},
	};
	static struct ld_http_request req;
	struct ld_http_parser p;
	struct ld_http_chunked ck;
	size_t i, used, made;
	char out[64];

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		ld_http_parser_init(&p, NULL);
		CHECK_INT(ld_http_parse_request(&p, reqs[i].raw, strlen(reqs[i].raw), &req),
			  reqs[i].status);
		CHECK(p.why != NULL);
		if (p.why)
			CHECK_STR(p.why, reqs[i].why);
	}
	ld_http_parser_init(&p, NULL);
	CHECK(ld_http_parse_request(&p, "GET / HTTP/1.0\r\n\r\n", 18, &req) > 0);
	CHECK(p.why == NULL);
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		ld_http_chunked_init(&ck, 100);
		CHECK_INT(ld_http_chunked_decode(&ck, out, bodies[i].raw, strlen(bodies[i].raw),
						 &used, &made),
			  -400);
		CHECK(ck.why != NULL);
		if (ck.why)
			CHECK_STR(ck.why, bodies[i].why);
	}
}

static void test_find_and_names(void)
{
	static const char raw[] =
	    "GET / HTTP/1.1\r\nHost: a\r\nX-Thing: one\r\nx-thing: two\r\n\r\n";
	static struct ld_http_request req;
	struct ld_http_parser p;
	const struct ld_http_field *f;

	ld_http_parser_init(&p, NULL);
	CHECK(ld_http_parse_request(&p, raw, sizeof(raw) - 1, &req) > 0);
	f = ld_http_find(&req, "X-THING");
	CHECK(f != NULL);
	if (f)
		CHECK_MEM(f->value, "one", 3);
	CHECK(ld_http_find(&req, "X-Thin") == NULL);
	CHECK(ld_http_find(&req, "X-Things") == NULL);
	CHECK(ld_http_find(&req, "host") == &req.fields[0]);
	CHECK_STR(ld_http_method_name(LD_HTTP_GET), "GET");
	CHECK_STR(ld_http_method_name(LD_HTTP_HEAD), "HEAD");
	CHECK_STR(ld_http_method_name(LD_HTTP_POST), "POST");
	CHECK_STR(ld_http_method_name(LD_HTTP_PUT), "PUT");
	CHECK_STR(ld_http_method_name(LD_HTTP_PATCH), "PATCH");
	CHECK_STR(ld_http_method_name(LD_HTTP_DELETE), "DELETE");
	CHECK_STR(ld_http_method_name(LD_HTTP_OPTIONS), "OPTIONS");
	CHECK_STR(ld_http_method_name(LD_HTTP_OTHER), "OTHER");
	CHECK_STR(ld_http_method_name(LD_HTTP_METHOD_COUNT), "OTHER");
}

/* ---- chunked bodies ---- */

struct ccase {
	const char *name;
	const char *raw;
	size_t len;
	int status;	     /* 1, or -400 / -413 */
	const char *payload; /* expected decoded bytes when status is 1 */
	size_t end;	     /* expected consumed when not len (bytes follow) */
	uint64_t max;	     /* 0: 1 MiB */
};

static const struct ccase ccases[] = {
    {"one chunk", R("5\r\nhello\r\n0\r\n\r\n"), 1, "hello"},
    {"empty body", R("0\r\n\r\n"), 1, ""},
    {"several chunks", R("5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"), 1, "hello world!"},
    {"upper and lower hex", R("A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n"), 1,
     "0123456789abcdefghijk"},
    {"leading zeros", R("0005\r\nhello\r\n000\r\n\r\n"), 1, "hello"},
    {"16 digits", R("0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n"), 1, "hello"},
    {"extensions", R("5;name=value\r\nhello\r\n0;last\r\n\r\n"), 1, "hello"},
    {"extension with BWS and quotes", R("5 \t; a = \"x y\" ;b\r\nhello\r\n0\r\n\r\n"), 1, "hello"},
    {"extensions of every shape",
     R("5;a;b=c;d=\"\";e=\"q\\\"\\\\ \t\xff\";f\t=\tg\t;h\r\nhello\r\n0;!#$%&'*+-.^_`|~=x\r\n\r\n"),
     1, "hello"},
    {"quoted value then ;", R("5;a=\"x\";b\r\nhello\r\n0\r\n\r\n"), 1, "hello"},
    {"trailers", R("5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\nZ: a \xff b\r\n\r\n"), 1, "hello"},
    {"data with CRLF inside", R("4\r\n\r\n\r\n\r\n0\r\n\r\n"), 1, "\r\n\r\n"},
    {"next request follows", R("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 1, "abc", 13},
    {"payload at exactly max", R("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), 1, "helloworld", 0, 10},

    {"empty size", R("\r\nhello\r\n0\r\n\r\n"), -400},
    {"not hex", R("g\r\nhello\r\n0\r\n\r\n"), -400},
    {"negative", R("-5\r\nhello\r\n0\r\n\r\n"), -400},
    {"0x prefix", R("0x5\r\nhello\r\n0\r\n\r\n"), -400},
    {"plus sign", R("+5\r\nhello\r\n0\r\n\r\n"), -400},
    {"17 digits", R("00000000000000005\r\nhello\r\n0\r\n\r\n"), -400},
    {"overflow", R("10000000000000000\r\n"), -400},
    {"space then CRLF", R("5 \r\nhello\r\n0\r\n\r\n"), -400},
    {"space inside the size", R("5 5\r\nhello\r\n0\r\n\r\n"), -400},
    {"bare LF after size", R("5\nhello\r\n0\r\n\r\n"), -400},
    {"bare CR after size", R("5\rhello\r\n0\r\n\r\n"), -400},
    {"bare LF in extension", R("5;a\nb\r\nhello\r\n0\r\n\r\n"), -400},
    {"NUL in extension", R("5;a\0\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension without a name", R("5;\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension only BWS", R("5; \r\nhello\r\n0\r\n\r\n"), -400},
    {"extension value without a name", R("5;=x\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension empty between ;", R("5;a;;b\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension name not a token", R("5;a(b)\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension name with obs-text", R("5;a\xff\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension space inside the name", R("5;a b\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension space before CR", R("5;a \r\nhello\r\n0\r\n\r\n"), -400},
    {"extension space after a value", R("5;a=b \r\nhello\r\n0\r\n\r\n"), -400},
    {"extension space after a quoted value", R("5;a=\"b\" \r\nhello\r\n0\r\n\r\n"), -400},
    {"extension empty value", R("5;a=\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension two =", R("5;a==b\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension value not a token", R("5;a=b/c\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension space inside a value", R("5;a=b c\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension text after a quoted value", R("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension quote never closed", R("5;a=\"b\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension DEL in a quoted value", R("5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension CTL after a backslash", R("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n"), -400},
    {"extension on the last chunk", R("5\r\nhello\r\n0;a=(\r\n\r\n"), -400},
    {"data longer than size", R("5\r\nhelloX\r\n0\r\n\r\n"), -400},
    {"data shorter than size", R("5\r\nhell\r\n0\r\n\r\n"), -400},
    {"LF only after data", R("5\r\nhello\n0\r\n\r\n"), -400},
    {"CR only after data", R("5\r\nhello\r0\r\n\r\n"), -400},
    {"trailer obs-fold", R("0\r\nX: a\r\n b\r\n\r\n"), -400},
    {"trailer without colon", R("0\r\nX\r\n\r\n"), -400},
    {"trailer space before colon", R("0\r\nX : a\r\n\r\n"), -400},
    {"trailer bare LF", R("0\r\nX: a\n\r\n"), -400},
    {"trailer NUL", R("0\r\nX: a\0\r\n\r\n"), -400},
    {"last CR without LF", R("0\r\n\rX"), -400},
    {"LF as the last line", R("0\r\n\n"), -400},
    {"payload one over max", R("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"), -413, .max = 10},
    {"huge size refused before data", R("ffffffffffffffff\r\n"), -413},
};

/* decode_split decodes c->raw in place, arriving in random pieces (or byte by
 * byte), the way a connection decodes inside its read buffer: decoded payload
 * at the front, encoded bytes not yet used after it. Each step works in a
 * fresh heap buffer of exactly the bytes received. */
static int decode_split(const struct ccase *c, int byte_by_byte, char **payload, size_t *plen,
			size_t *used)
{
	struct ld_http_chunked ck;
	char *buf = NULL;
	size_t have = 0, pout = 0, pin = 0;
	int rc = 0;

	ld_http_chunked_init(&ck, c->max ? c->max : 1 << 20);
	while (have < c->len) {
		size_t step = byte_by_byte ? 1 : 1 + rnd() % 7, consumed, produced;
		char *nb;

		if (step > c->len - have)
			step = c->len - have;
		nb = malloc(have + step);
		if (!nb)
			abort();
		if (have)
			memcpy(nb, buf, have);
		memcpy(nb + have, c->raw + have, step);
		free(buf);
		buf = nb;
		have += step;
		rc = ld_http_chunked_decode(&ck, buf + pout, buf + pin, have - pin, &consumed,
					    &produced);
		CHECK(consumed <= have - pin);
		CHECK(pout + produced <= pin + consumed);
		/* What was not consumed is untouched. */
		CHECK(memcmp(buf + pin + consumed, c->raw + pin + consumed,
			     have - pin - consumed) == 0);
		pout += produced;
		pin += consumed;
		if (rc != 0)
			break;
		CHECK_INT(pin, have); /* everything so far is used when it wants more */
	}
	*payload = buf;
	*plen = pout;
	*used = pin;
	return rc;
}

static void test_chunked_corpus(void)
{
	size_t i;

	rng_state = 7;
	for (i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
		const struct ccase *c = &ccases[i];
		int mode, failed_before = unit_cur_failed;

		unit_cur_failed = 0;
		for (mode = 0; mode < 6; mode++) {
			char *out;
			size_t plen, used;
			int rc = decode_split(c, mode == 0, &out, &plen, &used);

			CHECK_INT(rc, c->status);
			if (c->status == 1) {
				CHECK_INT(used, c->end ? c->end : c->len);
				CHECK_INT(plen, strlen(c->payload));
				CHECK_MEM(out, c->payload, plen);
			}
			free(out);
		}
		if (unit_cur_failed)
			fprintf(stderr, "  ^ chunked case \"%s\"\n", c->name);
		unit_cur_failed |= failed_before;
	}
}

static void test_chunked_whole_and_sticky(void)
{
	static const char enc[] = "3\r\nabc\r\n0\r\n\r\nNEXT";
	char buf[sizeof(enc)];
	struct ld_http_chunked ck;
	size_t consumed, produced;

	/* out == in: the payload lands at the front of the same buffer. */
	memcpy(buf, enc, sizeof(enc));
	ld_http_chunked_init(&ck, 100);
	CHECK_INT(ld_http_chunked_decode(&ck, buf, buf, sizeof(enc) - 1, &consumed, &produced), 1);
	CHECK_INT(consumed, sizeof(enc) - 1 - 4);
	CHECK_INT(produced, 3);
	CHECK_MEM(buf, "abc", 3);
	CHECK_INT(ck.total, 3);
	CHECK_MEM(buf + consumed, "NEXT", 4);
	/* Done stays done and takes nothing more. */
	CHECK_INT(ld_http_chunked_decode(&ck, buf, buf + consumed, 4, &consumed, &produced), 1);
	CHECK_INT(consumed, 0);
	CHECK_INT(produced, 0);

	/* An error stays an error. */
	ld_http_chunked_init(&ck, 100);
	CHECK_INT(ld_http_chunked_decode(&ck, buf, "z\r\n", 3, &consumed, &produced), -400);
	CHECK_INT(ld_http_chunked_decode(&ck, buf, "0\r\n\r\n", 5, &consumed, &produced), -400);
	CHECK_INT(consumed, 0);
	ld_http_chunked_init(&ck, 2);
	CHECK_INT(ld_http_chunked_decode(&ck, buf, "3\r\n", 3, &consumed, &produced), -413);
	CHECK_INT(ld_http_chunked_decode(&ck, buf, "0\r\n\r\n", 5, &consumed, &produced), -413);
}

/* cap_case decodes head, then pattern repeated reps times, then tail, and
 * expects want (and, when 1, the payload). */
static void cap_case(const char *head, const char *pattern, size_t reps, const char *tail, int want,
		     const char *payload)
{
	size_t h = strlen(head), pl = strlen(pattern), t = strlen(tail), i;
	char *raw = malloc(h + reps * pl + t), *out;
	struct ccase c = {.name = head, .raw = raw, .status = want, .payload = payload};
	size_t plen, used;

	if (!raw)
		abort();
	memcpy(raw, head, h);
	for (i = 0; i < reps; i++)
		memcpy(raw + h + i * pl, pattern, pl);
	memcpy(raw + h + reps * pl, tail, t);
	c.len = h + reps * pl + t;
	CHECK_INT(decode_split(&c, 0, &out, &plen, &used), want);
	if (want == 1) {
		CHECK_INT(plen, strlen(payload));
		CHECK_MEM(out, payload, plen);
	}
	free(out);
	free(raw);
}

/* The size line and trailer lines are capped at LD_HTTP_CHUNK_LINE_MAX bytes
 * with their CRLF, the trailer section at LD_HTTP_TRAILERS_MAX: each at
 * exactly the cap, then one byte over. */
static void test_chunked_line_caps(void)
{
	size_t cap = LD_HTTP_CHUNK_LINE_MAX, sec = LD_HTTP_TRAILERS_MAX - 2, i;
	char line[128], tail[128];

	rng_state = 8;
	/* 100-byte trailer lines, then a last one to fill the section. */
	memset(line, 'v', sizeof(line));
	memcpy(line, "X:", 2);
	memcpy(line + 98, "\r\n", 3);
	for (i = 0; i < 2; i++) {
		int want = i ? -400 : 1;

		/* "5;xx..x\r\n": 2 + (cap - 4 + i) + 2 bytes. */
		cap_case("5;", "x", cap - 4 + i, "\r\nhello\r\n0\r\n\r\n", want, "hello");
		/* "X: vv..v\r\n": 3 + (cap - 5 + i) + 2 bytes. */
		cap_case("0\r\nX: ", "v", cap - 5 + i, "\r\n\r\n", want, "");
		/* sec / 100 lines of 100 bytes, one of sec % 100 + i bytes, CRLF. */
		memset(tail, 'v', sizeof(tail));
		memcpy(tail, "X:", 2);
		memcpy(tail + sec % 100 + i - 2, "\r\n\r\n", 5);
		cap_case("0\r\n", line, sec / 100, tail, want, "");
	}
}

/* The extensions of a whole body share LD_HTTP_CHUNK_EXTS_MAX bytes (each
 * chunk's from the ';' after its size to its CR): many small chunks cannot
 * each carry a size line's worth. Exactly at the cap, then one byte over. */
static void test_chunked_ext_cap(void)
{
	size_t cap = LD_HTTP_CHUNK_EXTS_MAX, reps = cap / 100, i, k;
	char chunk[128], head[128], payload[256];

	CHECK(reps + 2 <= sizeof(payload) && cap % 100 + 1 + 7 <= sizeof(head));
	rng_state = 9;
	/* "1;" + 98 tchars + CR: 100 bytes of extensions, then one byte of data. */
	memset(chunk, 'x', 100);
	memcpy(chunk, "1;", 2);
	strcpy(chunk + 100, "\r\nz\r\n");
	for (k = 0; k <= reps; k++)
		payload[k] = 'z';
	payload[k] = 0;
	for (i = 0; i < 2; i++) {
		size_t rest = cap % 100 + i;

		/* A first chunk with rest bytes of them, then reps of 100. */
		memset(head, 'y', rest);
		memcpy(head, "1;", 2);
		strcpy(head + rest, "\r\nz\r\n");
		cap_case(head, chunk, reps, "0\r\n\r\n", i ? -400 : 1, payload);
	}
}

/* ---- optional figure: ns per parse of a typical request ---- */

static void bench(void)
{
	static const char raw[] = "GET /v1/users/7312589412937728/items?limit=20 HTTP/1.1\r\n"
				  "Host: api.example.com\r\n"
				  "User-Agent: ladder-bench/1\r\n"
				  "Accept: application/json\r\n"
				  "Accept-Encoding: gzip\r\n"
				  "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2ln\r\n"
				  "\r\n";
	static struct ld_http_request req;
	struct ld_http_parser p;
	struct timespec a, b;
	long i, n = 2000000, sink = 0;
	double ns;

	ld_http_parser_init(&p, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		ld_http_parser_reset(&p);
		sink += ld_http_parse_request(&p, raw, sizeof(raw) - 1, &req);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
	printf("bench: %.1f ns per parse of a %zu-byte GET with 5 fields (%ld)\n", ns,
	       sizeof(raw) - 1, sink / n);
}

int main(void)
{
	RUN(test_corpus);
	RUN(test_byte_classes);
	RUN(test_limits_small);
	RUN(test_limits_default);
	RUN(test_fields_cap_clamped);
	RUN(test_limit_order);
	RUN(test_trickle_scans_once);
	RUN(test_pipelined);
	RUN(test_prefixes_wait);
	RUN(test_reasons);
	RUN(test_find_and_names);
	RUN(test_chunked_corpus);
	RUN(test_chunked_whole_and_sticky);
	RUN(test_chunked_line_caps);
	RUN(test_chunked_ext_cap);
	if (getenv("LD_PARSER_BENCH"))
		bench();
	return unit_finish();
}
