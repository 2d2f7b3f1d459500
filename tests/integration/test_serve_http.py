"""HTTP/1.1 behaviour: framing and smuggling-shaped requests, limits,
keep-alive, pipelining, chunked bodies, 100-continue and gzip."""

import gzip
import json

import pytest

from ladder_http import (
    assert_problem,
    build_request,
    chunked,
    create_item,
    create_user,
    exchange,
    new_account,
)

BODY = b'{"handle":"smuggle_x","display_name":"s","password":"12345678"}'


def post_users(extra, body=BODY):
    """A POST /v1/users head with extra raw header lines, then body."""
    return (
        b"POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + extra
        + b"\r\n"
        + body
    )


def get_framed(extra, body):
    """GET /healthz with framing headers and body bytes: any reading of the
    framing other than a rejection answers 200, so a lenient parser cannot
    pass by accident (a body that is bad JSON would hide it)."""
    return b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n" + body


def get_with(lines):
    return b"GET /healthz HTTP/1.1\r\n" + lines + b"\r\n"


TE_CHUNKED = b"Transfer-Encoding: chunked\r\n"

MALFORMED = {
    # Request smuggling shapes: two parsers could disagree where it ends.
    "cl-and-te": get_framed(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-and-cl": get_framed(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"),
    "te-gzip": get_framed(b"Transfer-Encoding: gzip\r\n", b""),
    "te-chunked-not-final": get_framed(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"),
    "te-gzip-chunked": get_framed(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"),
    "te-identity": get_framed(b"Transfer-Encoding: identity\r\n", b""),
    "te-xchunked": get_framed(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    "te-two-fields": get_framed(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"
    ),
    "te-http10": b"GET /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-differing-cl": get_framed(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"abcdef"),
    "cl-list-differing": get_framed(b"Content-Length: 6, 5\r\n", b"abcdef"),
    "cl-plus": get_framed(b"Content-Length: +5\r\n", b"abcde"),
    "cl-negative": get_framed(b"Content-Length: -1\r\n", b""),
    "cl-hex": get_framed(b"Content-Length: 0x5\r\n", b"abcde"),
    "cl-empty": get_framed(b"Content-Length: \r\n", b""),
    "cl-inner-space": get_framed(b"Content-Length: 6 4\r\n", b""),
    "cl-huge": get_framed(b"Content-Length: 99999999999999999999999999\r\n", b""),
    "cl-decimal": get_framed(b"Content-Length: 5.0\r\n", b"abcde"),
    # Field syntax.
    "space-before-colon": get_with(b"Host: t\r\nX-Thing : 1\r\n"),
    "space-before-colon-cl": get_framed(b"Content-Length : 5\r\n", b"abcde"),
    "tab-before-colon": get_with(b"Host: t\r\nX-Thing\t: 1\r\n"),
    "obs-fold": get_with(b"Host: t\r\nX-Folded: a\r\n b\r\n"),
    "obs-fold-tab": get_with(b"Host: t\r\nX-Folded: a\r\n\tb\r\n"),
    "bare-lf-in-field": get_with(b"Host: t\nX-A: b\r\n"),
    "bare-lf-request-line": b"GET /healthz HTTP/1.1\nHost: t\r\n\r\n",
    "bare-lf-everywhere": b"GET /healthz HTTP/1.1\nHost: t\n\n",
    "bare-cr-in-value": get_with(b"Host: t\r\nX-A: a\rb\r\n"),
    "nul-in-value": get_with(b"Host: t\r\nX-A: a\x00b\r\n"),
    "name-not-token": get_with(b"Host: t\r\nX@A: b\r\n"),
    "name-with-space": get_with(b"Host: t\r\nX A: b\r\n"),
    "empty-name": get_with(b"Host: t\r\n: b\r\n"),
    "no-colon": get_with(b"Host: t\r\nJustAName\r\n"),
    # Host.
    "missing-host": get_with(b"Accept: */*\r\n"),
    "two-hosts": get_with(b"Host: t\r\nHost: u\r\n"),
    "two-identical-hosts": get_with(b"Host: t\r\nHost: t\r\n"),
    # Request line.
    "bad-method-token": b"G{T /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "method-with-ctl": b"GE\x01T /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "http-lowercase": b"GET /healthz http/1.1\r\nHost: t\r\n\r\n",
    "http-11-no-dot": b"GET /healthz HTTP/11\r\nHost: t\r\n\r\n",
    "double-space": b"GET  /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "no-version": b"GET /healthz\r\nHost: t\r\n\r\n",
    "target-not-origin-form": b"GET healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    "trailing-space-version": b"GET /healthz HTTP/1.1 \r\nHost: t\r\n\r\n",
    # Chunked body framing.
    "chunk-size-not-hex": get_framed(TE_CHUNKED, b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-empty": get_framed(TE_CHUNKED, b"\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-negative": get_framed(TE_CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-0x": get_framed(TE_CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-space-in": get_framed(TE_CHUNKED, b"5 5\r\nhello\r\n0\r\n\r\n"),
    "chunk-data-no-crlf": get_framed(TE_CHUNKED, b"5\r\nhelloXX0\r\n\r\n"),
    "chunk-data-too-long": get_framed(TE_CHUNKED, b"3\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": get_framed(TE_CHUNKED, b"5\nhello\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_400_and_close(server, name):
    resp, closed = exchange(server.port, MALFORMED[name])
    assert_problem(resp, 400)
    assert resp.has_header("X-Request-Id"), resp
    assert closed, "connection left open after a 400 (%s)" % name


def test_chunk_size_overflow_rejected(server):
    data = post_users(
        b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
    )
    resp, closed = exchange(server.port, data)
    # A chunk size past 64 bits is bad framing, not a big body.
    doc = assert_problem(resp, 400)
    assert doc["detail"] == "a chunk size is not 1 to 16 hex digits", doc
    assert closed


def test_well_formed_request_is_not_closed(server):
    # The counterpart of the 400 tests: the same connection logic keeps a
    # good request's connection open.
    with server.conn() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        # Well within the 3 s keep-alive timeout.
        closed, _ = c.wait_closed(0.5)
    assert not closed


# ---- limits ------------------------------------------------------------------


def test_request_line_too_long_414(server):
    data = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    resp, _ = exchange(server.port, data)
    assert_problem(resp, 414)


def test_request_line_under_limit_is_routed(server):
    data = b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    resp, _ = exchange(server.port, data)
    assert_problem(resp, 404)


def test_header_line_too_long_431(server):
    resp, _ = exchange(server.port, get_with(b"Host: t\r\nX-Big: " + b"a" * 9000 + b"\r\n"))
    assert_problem(resp, 431)


def test_headers_total_too_large_431(server):
    lines = b"Host: t\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"b" * 7000) for i in range(5))
    resp, _ = exchange(server.port, get_with(lines))
    assert_problem(resp, 431)


def test_101_fields_431(server):
    lines = b"Host: t\r\n" + b"".join(b"X-F-%d: v\r\n" % i for i in range(100))
    resp, _ = exchange(server.port, get_with(lines))
    assert_problem(resp, 431)


def test_100_fields_accepted(server):
    lines = b"Host: t\r\n" + b"".join(b"X-F-%d: v\r\n" % i for i in range(99))
    resp, _ = exchange(server.port, get_with(lines))
    assert resp.status == 200, resp


# ---- connection management -----------------------------------------------------


def test_keep_alive_by_default(server):
    with server.conn() as c:
        for i in range(3):
            r = c.request("GET", "/healthz")
            assert r.status == 200
            assert "close" not in (r.header("Connection") or "").lower()
        closed, _ = c.wait_closed(0.3)
        assert not closed
        assert c.request("GET", "/healthz").status == 200


def test_connection_close_honoured(server):
    with server.conn() as c:
        r = c.request("GET", "/healthz", [("Connection", "close")])
        assert r.status == 200
        assert "close" in (r.header("Connection") or "").lower(), r
        closed, extra = c.wait_closed(3.0)
        assert closed and extra == b""


def test_http10_gets_close(server):
    with server.conn() as c:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        closed, _ = c.wait_closed(3.0)
        assert closed


def test_pipelined_three_requests_in_one_write(server, client):
    user, token = new_account(client, "pipe")
    body = json.dumps({"content": "pipelined"}).encode()
    data = (
        build_request("GET", "/healthz", [("X-Request-Id", "pipe-1")])
        + build_request(
            "POST",
            "/v1/items",
            [
                ("X-Request-Id", "pipe-2"),
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer " + token),
            ],
            body,
        )
        + build_request("GET", "/v1/users/" + user["id"], [("X-Request-Id", "pipe-3")])
    )
    with server.conn() as c:
        c.send(data)
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        assert (r1.status, r1.header("X-Request-Id")) == (200, "pipe-1")
        assert (r2.status, r2.header("X-Request-Id")) == (201, "pipe-2")
        assert r2.json()["content"] == "pipelined"
        assert (r3.status, r3.header("X-Request-Id")) == (200, "pipe-3")
        assert r3.json()["id"] == user["id"]
        # Still open and in sync.
        r4 = c.request("GET", "/v1/items/" + r2.json()["id"])
        assert r4.json()["content"] == "pipelined"


def test_pipelined_fifty_in_order(server):
    data = b"".join(
        build_request("GET", "/healthz", [("X-Request-Id", "p-%d" % i)]) for i in range(50)
    )
    with server.conn() as c:
        c.send(data)
        ids = [c.read_response().header("X-Request-Id") for _ in range(50)]
    assert ids == ["p-%d" % i for i in range(50)]


def test_pipelined_request_after_bad_one_not_answered(server):
    # After a 400 the stream is in doubt: what follows must not be executed.
    data = MALFORMED["cl-and-te"] + build_request("GET", "/healthz", [("X-Request-Id", "after")])
    with server.conn() as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400
        closed, extra = c.wait_closed(3.0)
        assert closed
        assert b"after" not in extra


def test_get_with_body_keeps_stream_in_sync(server):
    # A body on a GET is framed by its Content-Length like any other: the
    # bytes after it are the next request, never part of this one.
    inner = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled\r\n\r\n"
    data = build_request(
        "GET", "/healthz", [("X-Request-Id", "outer")], inner
    ) + build_request("GET", "/healthz", [("X-Request-Id", "next")])
    with server.conn() as c:
        c.send(data)
        r1 = c.read_response()
        assert (r1.status, r1.header("X-Request-Id")) == (200, "outer"), r1
        r2 = c.read_response()
        assert (r2.status, r2.header("X-Request-Id")) == (200, "next"), r2
        # Nothing else was answered: the body was not run as a request.
        closed, extra = c.wait_closed(0.5)
        assert (closed, extra) == (False, b"")


def test_head_matches_get_without_body(server, client):
    _, token = new_account(client, "head")
    item = create_item(client, token, "head content")
    path = "/v1/items/" + item["id"]
    with server.conn() as c:
        g = c.request("GET", path)
        h = c.request("HEAD", path)
        assert h.status == 200, h
        assert h.body == b""
        assert h.header("ETag") == g.header("ETag")
        assert h.header("Content-Length") == str(len(g.body))
        # The connection is in sync: no body bytes were sent after the head.
        assert c.request("GET", path).json() == g.json()


def test_query_string_on_plain_routes(client):
    assert client.get("/healthz?probe=1").status == 200


def test_chunked_post_user(client, server):
    payload = json.dumps(
        {"handle": "chunky_user", "display_name": "c", "password": "12345678"}
    ).encode()
    data = build_request(
        "POST",
        "/v1/users",
        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        chunked(payload[:10], payload[10:11], payload[11:]),
    )
    with server.conn() as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 201, r
        assert r.json()["handle"] == "chunky_user"
        # Keep-alive continues after a chunked body.
        assert c.request("GET", "/v1/users/" + r.json()["id"]).status == 200


def test_chunked_body_in_pieces_across_writes(server, client):
    _, token = new_account(client, "pieces")
    head = build_request(
        "POST",
        "/v1/items",
        [
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer " + token),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    )
    body = chunked(b'{"content":', b'"split"}')
    with server.conn() as c:
        c.send(head)
        for i in range(0, len(body), 3):
            c.send(body[i : i + 3])
        r = c.read_response()
    assert r.status == 201, r
    assert r.json()["content"] == "split"


def test_expect_100_continue(server, client):
    _, token = new_account(client, "expect")
    body = b'{"content":"after continue"}'
    with server.conn() as c:
        c.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
            % (token, len(body))
        )
        interim = c.read_until(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100"), interim
        c.send(body)
        r = c.read_response()
    assert r.status == 201 and r.json()["content"] == "after continue", r


# ---- gzip ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def list_path(server):
    c = server.client()
    try:
        user, token = new_account(c, "gz")
        for i in range(20):
            create_item(c, token, ("%02d" % i) * 50)  # 100 bytes each
    finally:
        c.close()
    return "/v1/users/%s/items?limit=20" % user["id"]


def test_gzip_when_accepted(client, list_path):
    plain = client.get(list_path)
    assert plain.status == 200
    assert plain.header("Content-Encoding") is None
    assert len(plain.body) > 1024
    assert len(plain.json()["items"]) == 20
    gz = client.get(list_path, headers=[("Accept-Encoding", "gzip, deflate")])
    assert gz.status == 200
    assert (gz.header("Content-Encoding") or "").lower() == "gzip", gz
    assert "accept-encoding" in (gz.header("Vary") or "").lower(), gz
    assert len(gz.body) < len(plain.body)
    assert gzip.decompress(gz.body) == plain.body


@pytest.mark.parametrize(
    "accept,expect_gzip",
    [
        ("identity", False),
        ("gzip;q=0", False),
        ("br", False),
        ("br, gzip;q=0.5", True),
        ("GZIP", True),
        ("*", True),
    ],
)
def test_gzip_negotiation(client, list_path, accept, expect_gzip):
    r = client.get(list_path, headers=[("Accept-Encoding", accept)])
    assert r.status == 200
    is_gzip = (r.header("Content-Encoding") or "").lower() == "gzip"
    assert is_gzip == expect_gzip, (accept, r.headers)
    assert len(r.json()["items"]) == 20


def test_small_response_not_compressed(client):
    user = create_user(client)
    r = client.get("/v1/users/" + user["id"], headers=[("Accept-Encoding", "gzip")])
    assert r.status == 200
    assert len(r.body) < 1024
    assert r.header("Content-Encoding") is None


def test_long_pipeline_with_back_pressure(server):
    """2000 pipelined requests, sent by one thread while another reads: the
    server must stop reading while its writes are blocked and lose nothing."""
    import threading

    n = 2000
    data = b"".join(
        build_request("GET", "/healthz", [("X-Request-Id", "bp-%d" % i)]) for i in range(n)
    )
    with server.conn(timeout=10.0) as c:
        sender = threading.Thread(target=c.send, args=(data,), daemon=True)
        sender.start()
        ids = [c.read_response().header("X-Request-Id") for _ in range(n)]
        sender.join(10)
    assert ids == ["bp-%d" % i for i in range(n)]


def test_expect_continue_with_too_large_body_413_without_100(server, client):
    _, token = new_account(client, "expect413")
    with server.conn() as c:
        c.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
            % token
        )
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head


def test_header_names_case_insensitive(server, client):
    _, token = new_account(client, "lower")
    body = b'{"content":"lower-case headers"}'
    data = (
        b"POST /v1/items HTTP/1.1\r\nhost: t\r\ncontent-type: APPLICATION/JSON\r\n"
        b"authorization: Bearer " + token.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
        + body
    )
    with server.conn() as c:
        c.send(data)
        r = c.read_response()
    assert r.status == 201, r


def test_chunk_extensions_and_coding_case(server, client):
    # Chunk extensions are legal and ignored; coding names are
    # case-insensitive (RFC 9112 7.1.1, 7).
    _, token = new_account(client, "chext")
    body = b'5;name=value\r\n{"con\r\n' + b"%x\r\n" % 17 + b'tent":"extended"}\r\n0\r\n\r\n'
    data = build_request(
        "POST",
        "/v1/items",
        [
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer " + token),
            ("Transfer-Encoding", "Chunked"),
        ],
        body,
    )
    with server.conn() as c:
        c.send(data)
        r = c.read_response()
    assert r.status == 201, r
    assert r.json()["content"] == "extended"


def test_many_connections_at_once(server):
    import socket as _s

    socks = []
    try:
        for _ in range(200):
            socks.append(_s.create_connection(("127.0.0.1", server.port), timeout=5))
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        ok = 0
        for s in socks:
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok += data.startswith(b"HTTP/1.1 200")
        assert ok == len(socks)
    finally:
        for s in socks:
            s.close()
