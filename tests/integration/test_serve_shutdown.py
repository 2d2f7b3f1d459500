"""Graceful shutdown on SIGTERM/SIGINT: in-flight requests finish, idle
connections close, new connections are refused, exit status 0; with
--drain-delay, /readyz answers 503 for a while first."""

import json
import signal
import socket
import threading
import time

import pytest

from ladder_http import ConnectionClosed, Conn, create_item, new_account


@pytest.fixture
def no_drain_delay(serve_help):
    """Flags for an immediate stop of accepting on SIGTERM."""
    return ["--drain-delay", "0s"] if "--drain-delay" in serve_help else []


def connect_outcome(port):
    """What a new client sees: 'refused', 'closed' (accepted but closed
    without an answer) or the status of the answer to GET /healthz."""
    try:
        c = Conn(port, timeout=3.0)
    except ConnectionRefusedError:
        return "refused"
    try:
        r = c.request("GET", "/healthz")
        return r.status
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        return "closed"
    finally:
        c.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_server_exits_0_and_closes_keepalive(ladder_server, no_drain_delay, sig):
    # A long keep-alive timeout: if shutdown waited for idle connections
    # instead of closing them it would hit the 5 s deadline and exit 1.
    srv = ladder_server("--keepalive-timeout", "60s", *no_drain_delay)
    idle = srv.conn(timeout=10.0)
    assert idle.request("GET", "/healthz").status == 200
    srv.send_signal(sig)
    closed, extra = idle.wait_closed(10.0)
    idle.close()
    assert closed, "idle keep-alive connection not closed on shutdown"
    assert extra == b""
    assert srv.wait() == 0, srv.stderr_tail()
    assert connect_outcome(srv.port) == "refused"


def test_in_flight_request_completes(ladder_server, no_drain_delay):
    srv = ladder_server("--keepalive-timeout", "60s", "--body-timeout", "5s", *no_drain_delay)
    c = srv.client()
    user, token = new_account(c)
    c.close()
    body = json.dumps({"content": "written during shutdown"}).encode()
    conn = srv.conn(timeout=10.0)
    conn.send(
        "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (token, len(body))
    )
    conn.send(body[:10])
    time.sleep(0.2)  # the server has the head and is waiting for the body
    srv.send_signal(signal.SIGTERM)
    # Stops accepting while the request is still in flight (the server cannot
    # finish before the body is complete, so there is no race with its exit).
    outcome = None
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        outcome = connect_outcome(srv.port)
        if outcome in ("refused", "closed"):
            break
        time.sleep(0.1)
    assert outcome in ("refused", "closed"), "still serving new connections: %r" % outcome
    assert srv.alive(), "server exited with a request in flight"
    conn.send(body[10:])
    r = conn.read_response()
    assert r.status == 201, r
    item = r.json()
    closed, _ = conn.wait_closed(10.0)
    conn.close()
    assert closed
    assert srv.wait() == 0, srv.stderr_tail()
    # The acknowledged write is there after a restart.
    srv.start()
    c = srv.client()
    try:
        g = c.get("/v1/items/" + item["id"])
        assert g.status == 200 and g.json()["content"] == "written during shutdown"
    finally:
        c.close()


def test_acknowledged_writes_survive_sigterm_under_load(ladder_server, no_drain_delay):
    srv = ladder_server(*no_drain_delay)
    c = srv.client()
    _, token = new_account(c)
    c.close()
    acked = []
    lock = threading.Lock()
    stop = time.monotonic() + 5.0

    def writer(n):
        cl = srv.client(timeout=5.0)
        i = 0
        try:
            while time.monotonic() < stop and i < 2000:
                content = "t%d-%d" % (n, i)
                try:
                    r = cl.post("/v1/items", {"content": content}, token=token)
                except (OSError, ConnectionClosed):
                    return
                if r.status == 201:
                    with lock:
                        acked.append((r.json()["id"], content))
                elif r.status != 503:
                    raise AssertionError(r)
                i += 1
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    srv.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(20)
    assert srv.wait() == 0, srv.stderr_tail()
    assert acked, "no write was acknowledged before the signal"
    srv.start()
    c = srv.client()
    try:
        for item_id, content in acked:
            g = c.get("/v1/items/" + item_id)
            assert g.status == 200 and g.json()["content"] == content, (item_id, g)
    finally:
        c.close()


def test_drain_delay_readyz_503_then_exit(ladder_server, serve_help):
    if "--drain-delay" not in serve_help:
        pytest.skip("ladder serve has no --drain-delay")
    srv = ladder_server("--drain-delay", "3s")
    srv.send_signal(signal.SIGTERM)
    # Still accepting, but telling the load balancer to go away (polled: the
    # signal takes a moment to arrive; well inside the 3 s delay).
    deadline = time.monotonic() + 2.0
    while True:
        with srv.conn() as c:
            r = c.request("GET", "/readyz")
            if r.status == 503 or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert r.status == 503, r
    assert r.has_header("Retry-After"), r
    with srv.conn() as c:
        h = c.request("GET", "/healthz")
        assert h.status == 200, h
    assert srv.wait() == 0, srv.stderr_tail()
    assert connect_outcome(srv.port) == "refused"


def test_new_connections_refused_after_exit_and_port_reusable(ladder_server, no_drain_delay):
    srv = ladder_server(*no_drain_delay)
    port = srv.port
    assert srv.stop() == 0, srv.stderr_tail()
    assert connect_outcome(port) == "refused"
    # The port is free again (no lingering listener).
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    finally:
        s.close()
