"""RFC 9112 / 9110 points over a real socket: absolute-form targets, empty
lines before a request line, an empty Host, HTTP versions, methods the
server does not implement, request lines refused as soon as they cannot be
valid, and the grammar of chunk extensions."""

import socket

import pytest

from ladder_http import (
    Conn,
    assert_json_response,
    assert_problem,
    build_request,
    create_item,
    exchange,
    new_account,
)

BODY = b'{"content":"conformance"}'


@pytest.fixture(scope="module")
def patient(module_server_factory):
    """A server whose header timeout (60 s) is far past the 20 s a read
    below waits: an answer that comes must be the parser's, never the
    timer's."""
    return module_server_factory("--header-timeout", "60s")


def healthz(version="HTTP/1.1", host=b"Host: t\r\n", target=b"/healthz"):
    return b"GET " + target + b" " + version.encode() + b"\r\n" + host + b"\r\n"


# ---- absolute-form (RFC 9112 3.2.2) -------------------------------------------


def test_absolute_form_is_routed_on_its_path(server):
    # The target's authority counts, Host is ignored (but still required).
    with server.conn() as c:
        c.send(healthz(target=b"http://elsewhere.example:8080/healthz", host=b"Host: t\r\n"))
        r = c.read_response()
        assert r.status == 200, r
        c.send(healthz(target=b"HTTPS://[::1]/healthz", host=b"Host: other\r\n"))
        assert c.read_response().status == 200
        # The connection stays usable: nothing was misread.
        c.send(healthz())
        assert c.read_response().status == 200


def test_absolute_form_keeps_the_query(server, client):
    user, token = new_account(client, "absq")
    for i in range(3):
        create_item(client, token, "abs %d" % i)
    target = "http://api.example/v1/users/%s/items?limit=2" % user["id"]
    r = client.request("GET", target, headers={"Authorization": "Bearer " + token})
    doc = assert_json_response(r, 200)
    assert [it["content"] for it in doc["items"]] == ["abs 2", "abs 1"], doc
    assert doc["next_cursor"] is not None, doc


def test_absolute_form_empty_path_is_root(server):
    # "http://a" means "/", which no route serves.
    with server.conn() as c:
        c.send(healthz(target=b"http://a"))
        doc = assert_problem(c.read_response(), 404)
        assert doc["detail"] == "no route matches this path", doc
        c.send(healthz(target=b"http://a?x=1"))
        assert_problem(c.read_response(), 404)


@pytest.mark.parametrize(
    "target",
    [b"http:///healthz", b"http://u@a/healthz", b"ftp://a/healthz", b"http:/a/healthz"],
    ids=["empty-authority", "userinfo", "other-scheme", "one-slash"],
)
def test_absolute_form_malformed_400(server, target):
    resp, closed = exchange(server.port, healthz(target=target))
    assert_problem(resp, 400)
    assert closed


def test_absolute_form_still_needs_host(server):
    resp, closed = exchange(server.port, healthz(target=b"http://a/healthz", host=b""))
    assert_problem(resp, 400)
    assert closed


# ---- empty lines before the request line (RFC 9112 2.2) ----------------------


def post_item(token, tail=b""):
    return (
        build_request(
            "POST",
            "/v1/items",
            [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
            BODY,
        )
        + tail
    )


def test_stray_crlf_after_a_body_keeps_the_connection(server, client):
    _, token = new_account(client, "crlf")
    with server.conn() as c:
        # The CRLF alone after the body, then the next request later.
        c.send(post_item(token, b"\r\n"))
        assert c.read_response().status == 201
        c.send(healthz())
        assert c.read_response().status == 200
        # The CRLF in the same write as the next request.
        c.send(post_item(token, b"\r\n" + healthz()))
        assert c.read_response().status == 201
        assert c.read_response().status == 200
        closed, extra = c.wait_closed(0.5)
    assert not closed and extra == b""


def test_four_empty_lines_skipped_five_refused(server):
    with server.conn() as c:
        c.send(b"\r\n" * 4 + healthz())
        assert c.read_response().status == 200
    resp, closed = exchange(server.port, b"\r\n" * 5 + healthz())
    assert_problem(resp, 400)
    assert closed


def test_only_empty_lines_then_silence_is_an_idle_close(server, client):
    # A connection that sent a stray CRLF and then nothing is idle: at the
    # (1 s) header timeout it is closed without an unasked-for 408.
    _, token = new_account(client, "idle")
    with server.conn() as c:
        c.send(post_item(token, b"\r\n"))
        assert c.read_response().status == 201
        closed, extra = c.wait_closed(15.0)
    assert closed and extra == b""


# ---- Host ----------------------------------------------------------------------


@pytest.mark.parametrize("host", [b"Host:\r\n", b"Host: \t \r\n"], ids=["empty", "blank"])
def test_empty_host_400(server, host):
    resp, closed = exchange(server.port, healthz(host=host))
    doc = assert_problem(resp, 400)
    assert doc["detail"] == "the Host field is empty or not host[:port]", doc
    assert closed


# ---- versions (RFC 9110 2.5, 15.6.6) -------------------------------------------


@pytest.mark.parametrize("version", ["HTTP/1.2", "HTTP/1.9"])
def test_later_1x_minor_is_served_as_1_1(server, version):
    with server.conn() as c:
        c.send(healthz(version))
        r = c.read_response()
        assert r.status == 200, r
        assert r.version == "HTTP/1.1", r
        # Persistent, as a 1.1 request is.
        c.send(healthz(version))
        assert c.read_response().status == 200


def test_http_1_2_still_needs_host(server):
    resp, closed = exchange(server.port, healthz("HTTP/1.2", host=b""))
    assert_problem(resp, 400)
    assert closed


@pytest.mark.parametrize(
    "data",
    [healthz("HTTP/2.0"), healthz("HTTP/3.0"), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
    ids=["2.0", "3.0", "h2-preface"],
)
def test_other_major_versions_505(server, data):
    resp, closed = exchange(server.port, data)
    doc = assert_problem(resp, 505)
    assert resp.reason == "HTTP Version Not Supported", resp
    assert doc["type"] == "/problems/http-version-not-supported", doc
    assert doc["detail"] == "the HTTP version is not supported: only HTTP/1.x is", doc
    assert resp.version == "HTTP/1.1", resp
    assert closed


# ---- methods: 501 for one no route implements, 405 for one a route lacks -------


@pytest.mark.parametrize(
    "method,target",
    [("PROPFIND", "/healthz"), ("get", "/healthz"), ("OPTIONS", "/healthz"),
     ("OPTIONS", "*"), ("TRACE", "/no/such/route"), ("CONNECT", "/v1/items")],
)  # fmt: skip
def test_unimplemented_method_501(server, method, target):
    with server.conn() as c:
        c.send(build_request(method, target))
        r = c.read_response()
        doc = assert_problem(r, 501)
        assert r.reason == "Not Implemented", r
        assert doc["type"] == "/problems/not-implemented", doc
        assert doc["detail"] == "the server does not implement this method", doc
        assert not r.has_header("Allow"), r
        # A well-formed request: the connection stays.
        c.send(healthz())
        assert c.read_response().status == 200


def test_known_method_on_a_route_without_it_stays_405(server):
    with server.conn() as c:
        c.send(build_request("PUT", "/healthz", body=b""))
        r = c.read_response()
    assert_problem(r, 405)
    assert r.header("Allow") == "GET, HEAD", r


# ---- request lines refused at once ---------------------------------------------


IMPOSSIBLE_WHY = {
    b"GET /\r\n": "the request line has no HTTP version",
    b"GET / \r\n": "the HTTP version is not HTTP/ digit . digit followed by CRLF",
    b"GET /\x01": "the request target has a byte that is not allowed",
    b"GET / HTTP/1.1x": "the HTTP version is not HTTP/ digit . digit followed by CRLF",
    b"GET / HTTP/2.0\r\n": "the HTTP version is not supported: only HTTP/1.x is",
    b"\r\n\rX": "a line starts with a bare CR",
}


@pytest.mark.parametrize(
    "data,status",
    [(b"GET /\r\n", 400), (b"GET / \r\n", 400), (b"GET /\x01", 400),
     (b"GET / HTTP/1.1x", 400), (b"GET / HTTP/2.0\r\n", 505), (b"\r\n\rX", 400)],
    ids=["no-version", "empty-version", "ctl-in-target", "junk-after-version",
         "http2-line", "bare-cr-after-empty-line"],
)  # fmt: skip
def test_impossible_request_line_answered_at_once(patient, data, status):
    # Nothing more is sent: the old parser waited for the 60 s header
    # timeout, so this read (20 s) would time out.
    with Conn(patient.port, timeout=20.0) as c:
        c.send(data)
        try:
            r = c.read_response()
        except socket.timeout:
            pytest.fail("no answer to %r before the header timeout" % data)
        doc = assert_problem(r, status)
        assert doc["detail"] == IMPOSSIBLE_WHY[data], doc
        closed, _ = c.wait_closed(5.0)
    assert closed


def test_possible_prefix_waits_then_is_served(patient):
    with Conn(patient.port, timeout=20.0) as c:
        c.send(b"GET http://a/healthz HTTP/1.")
        closed, extra = c.wait_closed(0.3)
        assert not closed and extra == b""
        c.send(b"1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200


# ---- chunk extensions (RFC 9112 7.1.1) -----------------------------------------


def chunked_healthz(body):
    """GET /healthz with a chunked body: any reading of a malformed body but
    a refusal answers 200."""
    return b"GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body


BAD_EXTENSIONS = {
    "no-name": b"5;\r\nhello\r\n0\r\n\r\n",
    "value-without-name": b"5;=x\r\nhello\r\n0\r\n\r\n",
    "space-in-name": b"5;a b\r\nhello\r\n0\r\n\r\n",
    "trailing-space": b"5;a \r\nhello\r\n0\r\n\r\n",
    "empty-value": b"5;a=\r\nhello\r\n0\r\n\r\n",
    "value-not-token": b"5;a=b/c\r\nhello\r\n0\r\n\r\n",
    "unclosed-quote": b'5;a="b\r\nhello\r\n0\r\n\r\n',
    "text-after-quote": b'5;a="b"c\r\nhello\r\n0\r\n\r\n',
    "on-last-chunk": b"5\r\nhello\r\n0;(\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_EXTENSIONS))
def test_bad_chunk_extension_400(server, name):
    resp, closed = exchange(server.port, chunked_healthz(BAD_EXTENSIONS[name]))
    doc = assert_problem(resp, 400)
    assert doc["detail"] == "a chunk extension is malformed", doc
    assert closed


def test_good_chunk_extensions_accepted(server):
    body = b'5 ; a = "q\\"x" ;b;c=d\r\nhello\r\n0;last\r\n\r\n'
    with server.conn() as c:
        c.send(chunked_healthz(body))
        assert c.read_response().status == 200
        c.send(healthz())
        assert c.read_response().status == 200


def test_chunk_extensions_capped_per_body(server):
    # 200 one-byte chunks with 100 bytes of extensions each: 20000 bytes,
    # past the 16384 a body may carry, though each line is short.
    one = b"1;" + b"x" * 98 + b"\r\nz\r\n"
    resp, closed = exchange(server.port, chunked_healthz(one * 200 + b"0\r\n\r\n"))
    doc = assert_problem(resp, 400)
    assert doc["detail"] == "the chunk extensions of the body are too long", doc
    assert closed
    # The same payload with short extensions is fine.
    with server.conn() as c:
        c.send(chunked_healthz(b"1;x\r\nz\r\n" * 200 + b"0\r\n\r\n"))
        assert c.read_response().status == 200
