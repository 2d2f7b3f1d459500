"""Slow clients: header and body timeouts (408 then close), slow-loris, and
idle keep-alive connections. The module's server runs with 1 s header and
body timeouts and a 3 s keep-alive timeout (see conftest.DEFAULT_FLAGS)."""

import select
import socket
import time

from ladder_http import assert_problem, new_account

# How long a test is willing to wait for a timeout that should fire after
# 1 s (or 3 s for keep-alive): generous, because machines are noisy, but
# bounded so that a server that never times out fails instead of hanging.
PATIENCE = 8.0


def expect_408_and_close(c):
    c.settimeout(PATIENCE)
    r = c.read_response()
    assert_problem(r, 408)  # (with its X-Request-Id)
    closed, extra = c.wait_closed(PATIENCE)
    assert closed, "connection still open after 408"
    assert extra == b""
    return r


def test_header_stalled_408(server):
    with server.conn() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # no blank line
        expect_408_and_close(c)


def test_request_line_stalled_408(server):
    with server.conn() as c:
        c.send(b"GET /hea")
        expect_408_and_close(c)


def test_body_stalled_408(server, client):
    _, token = new_account(client, "stall")
    with server.conn() as c:
        c.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"content\":" % token
        )
        expect_408_and_close(c)


def test_chunked_body_stalled_408(server, client):
    _, token = new_account(client, "stallc")
    with server.conn() as c:
        c.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"con" % token
        )
        expect_408_and_close(c)


def test_slow_loris_cut_at_header_deadline(server):
    """One header byte every 200 ms never leaves the connection idle for a
    whole second, so only a total header deadline stops it. The client keeps
    trickling for up to PATIENCE seconds; the server must answer 408 and
    close before the client gives up."""
    c = server.conn()
    try:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        deadline = time.monotonic() + PATIENCE
        got_data = False
        send_failed = False
        while time.monotonic() < deadline:
            try:
                c.sock.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                send_failed = True
                break
            readable, _, _ = select.select([c.sock], [], [], 0.2)
            if readable:
                got_data = True
                break
        assert not send_failed, "connection reset before the 408 could be read"
        assert got_data, "server still reading a trickled header after %ss" % PATIENCE
        expect_408_and_close(c)
    finally:
        c.close()


def test_body_trickle_is_not_cut_while_it_progresses(server, client):
    """The body timeout is an idle timeout: a body that keeps arriving (a
    byte every 300 ms, 2.4 s in all, past the 1 s body timeout) completes."""
    _, token = new_account(client, "trickle")
    body = b'{"content":"tr"}'
    with server.conn() as c:
        c.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (token, len(body))
        )
        for i in range(0, len(body), 2):
            time.sleep(0.3)
            c.send(body[i : i + 2])
        r = c.read_response()
    assert r.status == 201, r
    assert r.json()["content"] == "tr"


def test_idle_keepalive_closed_without_response(server):
    with server.conn() as c:
        assert c.request("GET", "/healthz").status == 200
        closed, extra = c.wait_closed(PATIENCE)
        assert closed, "idle keep-alive connection not closed"
        assert extra == b"", "server sent bytes to an idle connection: %r" % extra


def test_connection_that_sends_nothing_is_closed(server):
    with server.conn() as c:
        closed, extra = c.wait_closed(PATIENCE)
        assert closed
        # Nothing was asked, so nothing is answered.
        assert extra == b"", extra


def test_server_still_serves_after_timeouts(server):
    # Many stalled connections at once must not wedge the server.
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        with server.conn() as c:
            assert c.request("GET", "/healthz").status == 200
    finally:
        for s in socks:
            s.close()
