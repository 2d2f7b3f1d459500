"""The store contract seen from HTTP: a store op has a deadline
(--store-timeout), past which the request gets 503 + Retry-After and a write
is not made; /readyz reports a writer that cannot get the database without
doing I/O itself; shutdown with such a writer still finishes.

The writer is stalled the way a real deployment stalls it: another process
(here the test, through Python's sqlite3) holds the database's write lock.
"""

import json
import signal
import sqlite3
import threading
import time

import pytest

from conftest import skip_unless_sqlite
from ladder_http import Conn, assert_problem, create_item, new_account

TIMEOUT_DETAIL = "the store did not answer in time; nothing was changed, retry"


class WriteLock:
    """Holds the write lock of a server's database (BEGIN IMMEDIATE from a
    second connection) until release()."""

    def __init__(self, srv):
        self.db = sqlite3.connect(
            str(srv.data_dir / "ladder.db"), timeout=10.0, isolation_level=None
        )
        self.db.execute("BEGIN IMMEDIATE")

    def release(self):
        if self.db is not None:
            self.db.execute("ROLLBACK")
            self.db.close()
            self.db = None


@pytest.fixture
def write_lock():
    skip_unless_sqlite("the test holds the SQLite database's write lock")
    locks = []

    def take(srv):
        lock = WriteLock(srv)
        locks.append(lock)
        return lock

    yield take
    for lock in locks:
        lock.release()


def poll_status(srv, target, want, timeout=10.0):
    """GETs target until it answers want (bounded); returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        with srv.conn() as c:
            r = c.request("GET", target)
        if r.status == want or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def items_of(client, user_id):
    r = client.get("/v1/users/%s/items?limit=100" % user_id)
    assert r.status == 200, r
    return r.json()["items"]


def test_write_past_deadline_is_503_and_not_made(ladder_server, write_lock):
    srv = ladder_server("--store-timeout", "1s")
    c = srv.client()
    user, token = new_account(c)
    create_item(c, token, "before")
    lock = write_lock(srv)
    r = c.post("/v1/items", {"content": "during the stall"}, token=token)
    doc = assert_problem(r, 503)
    assert doc["detail"] == TIMEOUT_DETAIL
    assert r.header("Retry-After") == "1"
    with srv.conn() as mc:
        metrics = mc.request("GET", "/metrics").body.decode()
    assert 'ladder_store_errors_total{kind="timeout"} 1\n' in metrics
    # Reads do not need the write lock: they still answer.
    assert [it["content"] for it in items_of(c, user["id"])] == ["before"]
    lock.release()
    # 503 meant "not made": it does not appear once the lock is free.
    create_item(c, token, "after")
    assert [it["content"] for it in items_of(c, user["id"])] == ["after", "before"]
    c.close()


def test_readyz_reports_a_stalled_writer(ladder_server, write_lock):
    srv = ladder_server("--store-timeout", "1s")
    c = srv.client()
    _, token = new_account(c)
    lock = write_lock(srv)
    assert_problem(c.post("/v1/items", {"content": "x"}, token=token), 503)
    # The writer has not got the database for longer than an op may take.
    r = poll_status(srv, "/readyz", 503)
    assert r.status == 503, r
    assert r.json() == {"status": "unavailable", "reason": "store unavailable"}
    assert r.header("Retry-After") == "1"
    lock.release()
    # It recovers by itself, with no write to prove it.
    r = poll_status(srv, "/readyz", 200)
    assert r.status == 200, r
    assert r.json() == {"status": "ready"}
    create_item(c, token, "writable again")
    c.close()


def in_flight(srv):
    with srv.conn() as c:
        r = c.request("GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith("ladder_http_requests_in_flight "):
            return int(line.split()[1])
    raise AssertionError("no in-flight gauge in /metrics")


def test_shutdown_with_stalled_writer_finishes(ladder_server, write_lock):
    srv = ladder_server("--store-timeout", "1s", "--shutdown-timeout", "5s", "--drain-delay", "0s")
    c = srv.client()
    _, token = new_account(c)
    c.close()
    lock = write_lock(srv)
    body = json.dumps({"content": "stalled"}).encode()
    conns = []
    for _ in range(3):
        conn = Conn(srv.port, timeout=10.0)
        conn.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (token, len(body))
        )
        conn.send(body)
        conns.append(conn)
    # All three wait for the store (the gauge counts the /metrics request too).
    deadline = time.monotonic() + 10.0
    while in_flight(srv) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert in_flight(srv) == 4
    srv.send_signal(signal.SIGTERM)
    for conn in conns:
        doc = assert_problem(conn.read_response("POST"), 503)
        assert doc["detail"] == TIMEOUT_DETAIL
        conn.close()
    # Within the shutdown timeout, lock still held: in-flight requests were
    # answered at their deadline and the store closed without committing.
    assert srv.wait(timeout=5.0) == 0, srv.stderr_tail()
    assert "stopped cleanly" in srv.stdout_text()
    lock.release()
