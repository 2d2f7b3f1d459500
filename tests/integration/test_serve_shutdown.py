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

# How long to wait for something that should happen at once (a signal
# handled, a listener closed): generous for a loaded machine, but bounded.
PATIENCE = 8.0


@pytest.fixture
def no_drain_delay():
    """Flags for an immediate stop of accepting on SIGTERM."""
    return ["--drain-delay", "0s"]


def connect_outcome(port):
    """What a new client sees: 'refused', 'closed' (accepted but closed
    without an answer) or the status of the answer to GET /healthz."""
    try:
        c = Conn(port, timeout=PATIENCE)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        # The handshake completed into a listener's backlog and the
        # listener closed before accepting it: the kernel resets it.
        return "closed"
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
        "Authorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
        % (token, len(body))
    )
    # The 100 proves the server has the head: the request is in flight (a
    # fixed sleep would only make that likely), so the signal cannot find
    # the connection idle and close it.
    interim = conn.read_until(b"\r\n\r\n")
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    conn.send(body[:10])
    srv.send_signal(signal.SIGTERM)
    # Stops accepting while the request is still in flight (the server cannot
    # finish before the body is complete, so there is no race with its exit).
    # Until every loop has closed its listener a new connection may still
    # be accepted and closed unanswered; after that it is refused.
    seen = []
    deadline = time.monotonic() + PATIENCE
    while not seen or seen[-1] != "refused":
        assert time.monotonic() < deadline, "listeners still open: %r" % seen[-5:]
        seen.append(connect_outcome(srv.port))
        time.sleep(0.05)
    # Never served once it stopped: only answers from before the signal
    # arrived come first.
    first_not_served = next(i for i, o in enumerate(seen) if o in ("closed", "refused"))
    assert set(seen[first_not_served:]) <= {"closed", "refused"}, seen
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
    unexpected = []  # answers other than 201 and 503, from the writer threads
    lock = threading.Lock()
    # Writers stop on their own only after this long (the server normally
    # goes first): a bound, not a schedule.
    stop = time.monotonic() + 30.0

    def writer(n):
        cl = srv.client(timeout=5.0)
        i = 0
        try:
            while time.monotonic() < stop and i < 2000:
                content = "t%d-%d" % (n, i)
                try:
                    r = cl.post("/v1/items", {"content": content}, token=token)
                except (OSError, ConnectionClosed):
                    return  # the server has gone
                if r.status == 201:
                    with lock:
                        acked.append((r.json()["id"], content))
                elif r.status != 503:
                    with lock:
                        unexpected.append(r)
                    return
                i += 1
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    # The signal lands under load: once every writer has had a few writes
    # acknowledged (polled, bounded), not after a fixed time.
    deadline = time.monotonic() + PATIENCE
    while True:
        with lock:
            if len(acked) >= 40 or unexpected:
                break
        assert time.monotonic() < deadline, "only %d writes acknowledged" % len(acked)
        time.sleep(0.02)
    srv.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(40)
    assert not any(t.is_alive() for t in threads), "writers did not stop"
    assert not unexpected, "answers other than 201/503: %r" % unexpected[:3]
    assert srv.wait() == 0, srv.stderr_tail()
    srv.start()
    c = srv.client()
    try:
        for item_id, content in acked:
            g = c.get("/v1/items/" + item_id)
            assert g.status == 200 and g.json()["content"] == content, (item_id, g)
    finally:
        c.close()


def test_drain_delay_readyz_503_then_exit(ladder_server):
    srv = ladder_server("--drain-delay", "3s")
    # A connection opened before the signal: its requests are answered
    # during the delay whatever the timing of new connections.
    c = srv.conn(timeout=PATIENCE)
    assert c.request("GET", "/readyz").status == 200
    srv.send_signal(signal.SIGTERM)
    # Still serving, but telling the load balancer to go away (polled: the
    # signal takes a moment to arrive).
    deadline = time.monotonic() + PATIENCE
    while True:
        r = c.request("GET", "/readyz")
        if r.status == 503:
            break
        assert r.status == 200, r
        assert time.monotonic() < deadline, "/readyz still 200 after the signal"
        time.sleep(0.05)
    assert r.header("Retry-After") == "1", r
    c.close()
    # New connections are still accepted and served during the delay.
    with srv.conn() as c2:
        h = c2.request("GET", "/healthz")
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
