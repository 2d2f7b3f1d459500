"""Overload control (docs/operations.md, "Overload"): the concurrency limit
and its wait queue, shedding with 503 + Retry-After, health checks during
overload, the Request-Timeout budget and work whose client went away.

The servers here pin the limit to 1 and the queue to 1 entry
(--admission-min-limit/--admission-max-limit/--admission-queue), with the
queue's delay limits far longer than any test (so only what a test does
sheds), and make every SQLite commit sleep (--test-commit-delay): one write
holds the only slot for that long. Each step waits for the server's own
gauges (/metrics, never limited) before the next, so nothing depends on
timing; the commit delay is only how long the slot stays taken.
"""

import json
import pytest

from conftest import skip_unless_sqlite
from ladder_http import (
    Conn,
    assert_problem,
    build_request,
    create_user,
    login,
    metric,
    poll,
    stats,
    stats_route,
    unique_handle,
)

COMMIT_DELAY = "2s"
TINY = [
    "--threads", "1",
    "--admission-initial-limit", "1",
    "--admission-min-limit", "1",
    "--admission-max-limit", "1",
    "--admission-queue", "1",
    "--admission-queue-target", "60s",
    "--admission-queue-interval", "60s",
    "--test-commit-delay", COMMIT_DELAY,
]  # fmt: skip

FULL = "the server is overloaded: too many requests are waiting; retry after a moment"
QUEUE_DEADLINE = (
    "the request's time budget ran out while it waited for capacity "
    "(Request-Timeout, or the server's request deadline)"
)
STORE_DEADLINE = (
    "the request's time budget ran out before the store was asked "
    "(Request-Timeout, or the server's request deadline); nothing was changed"
)


def wait_metric(srv, name, value, **labels):
    poll(
        lambda: metric(srv, name, **labels) == value,
        what="%s%r to be %r" % (name, labels, value),
    )


def inflight(srv):
    return metric(srv, "ladder_admission_inflight", loop="0")


def queued(srv):
    return metric(srv, "ladder_admission_queue_length", loop="0")


def shed(srv, reason, cls):
    return metric(srv, "ladder_admission_shed_total", reason=reason, **{"class": cls})


def queue_stage(srv, route):
    """The queue stage of route in /debug/stats: its count and sum_ns."""
    q = stats_route(stats(srv), route)["stages"]["queue"]
    return q["count"], q["sum_ns"]


def account(srv):
    c = srv.client()
    try:
        user = create_user(c, unique_handle("ov"))
        return user, login(c, user["handle"])
    finally:
        c.close()


def slow_write(srv, token, content="held"):
    """Sends a POST /v1/items (it takes the commit delay) on a connection of
    its own, without reading the answer; waits until it holds the slot."""
    c = Conn(srv.port, timeout=30)
    body = json.dumps({"content": content})
    c.send(
        build_request(
            "POST",
            "/v1/items",
            [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
            body,
        )
    )
    wait_metric(srv, "ladder_admission_inflight", 1, loop="0")
    return c


def send(srv, method, target, headers=(), body=None):
    c = Conn(srv.port, timeout=30)
    c.send(build_request(method, target, list(headers), body))
    return c


@pytest.fixture
def tiny(ladder_server):
    skip_unless_sqlite("--test-commit-delay sleeps in the SQLite writer thread")
    return ladder_server(*TINY)


def test_full_queue_sheds_with_503_and_health_answers(tiny):
    user, token = account(tiny)
    a = slow_write(tiny, token)
    b = send(tiny, "GET", "/v1/users/%s" % user["id"])
    wait_metric(tiny, "ladder_admission_queue_length", 1, loop="0")
    with tiny.conn() as c:
        r = c.request("GET", "/v1/users/%s" % user["id"])
        doc = assert_problem(r, 503)
        assert doc["detail"] == FULL
        assert r.header("Retry-After") == "1"
        # Health, readiness and metrics are never limited, queued or shed.
        assert c.request("GET", "/healthz").status == 200
        r = c.request("GET", "/readyz")
        assert r.status == 200, r
        assert c.request("GET", "/metrics").status == 200
    assert shed(tiny, "queue_full", "read") == 1
    assert queued(tiny) == 1  # b still waits
    r = a.read_response("POST")
    assert r.status == 201, r
    r = b.read_response()
    assert r.status == 200, r
    assert r.json()["id"] == user["id"]
    assert metric(tiny, "ladder_admission_dequeued_total", loop="0") == 1
    # b's wait is its queue stage; the one shed on arrival never queued.
    count, ns = queue_stage(tiny, "GET /v1/users/{id}")
    assert count == 1 and ns > 0, (count, ns)
    assert queue_stage(tiny, "POST /v1/items")[0] == 0
    a.close()
    b.close()


def test_budget_expires_in_queue_without_a_store_call(tiny):
    user, token = account(tiny)
    a = slow_write(tiny, token)
    before = metric(tiny, "ladder_store_read_ops_total")
    b = send(tiny, "GET", "/v1/users/%s" % user["id"], [("Request-Timeout", "100")])
    r = b.read_response()
    doc = assert_problem(r, 503)
    assert doc["detail"] == QUEUE_DEADLINE
    assert r.header("Retry-After") == "1"
    assert shed(tiny, "deadline", "read") == 1
    assert metric(tiny, "ladder_store_read_ops_total") == before  # the read was never made
    assert inflight(tiny) == 1  # the write still holds the slot
    # The wait that ended in the shed is the queue stage of the read.
    count, ns = queue_stage(tiny, "GET /v1/users/{id}")
    assert count == 1 and ns > 0, (count, ns)
    r = a.read_response("POST")
    assert r.status == 201, r
    a.close()
    b.close()


def test_client_gone_while_queued_is_dropped_not_done(tiny):
    user, token = account(tiny)
    a = slow_write(tiny, token, "first")
    b = send(
        tiny,
        "POST",
        "/v1/items",
        [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
        json.dumps({"content": "never"}),
    )
    wait_metric(tiny, "ladder_admission_queue_length", 1, loop="0")
    b.close()
    poll(lambda: shed(tiny, "client_gone", "write") == 1, what="a client_gone shed")
    assert queued(tiny) == 0
    r = a.read_response("POST")
    assert r.status == 201, r
    a.close()
    with tiny.conn() as c:
        r = c.request("GET", "/v1/users/%s/items" % user["id"])
        assert r.status == 200, r
        assert [it["content"] for it in r.json()["items"]] == ["first"]


def test_shed_writes_last(ladder_server):
    skip_unless_sqlite("--test-commit-delay sleeps in the SQLite writer thread")
    srv = ladder_server(*TINY, "--shed-writes-last")
    user, token = account(srv)
    a = slow_write(srv, token, "first")
    b = send(srv, "GET", "/v1/users/%s" % user["id"])
    wait_metric(srv, "ladder_admission_queue_length", 1, loop="0")
    # A write arriving at a full queue takes the queued read's place.
    c = send(
        srv,
        "POST",
        "/v1/items",
        [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
        json.dumps({"content": "second"}),
    )
    r = b.read_response()
    assert assert_problem(r, 503)["detail"] == FULL
    assert shed(srv, "queue_full", "read") == 1
    assert queued(srv) == 1
    # ... and a read arriving now is refused: the queue is full of a write.
    with srv.conn() as d:
        r = d.request("GET", "/v1/users/%s" % user["id"])
        assert assert_problem(r, 503)["detail"] == FULL
    assert shed(srv, "queue_full", "read") == 2
    r = a.read_response("POST")
    assert r.status == 201, r
    r = c.read_response("POST")
    assert r.status == 201, r
    for x in (a, b, c):
        x.close()


def test_request_timeout_header(server):
    with server.conn() as c:
        for bad in ("abc", "0", "-5", "1.5", "1000000000", " ", "10ms"):
            r = c.request("GET", "/v1/users/1", [("Request-Timeout", bad)])
            doc = assert_problem(r, 400)
            assert doc["detail"] == (
                "the Request-Timeout header must be a whole number of milliseconds "
                "from 1 to 999999999"
            ), bad
        r = c.request("GET", "/v1/users/999999", [("Request-Timeout", "5000")])
        assert_problem(r, 404)
        # Health checks take no budget: the header is not looked at.
        assert c.request("GET", "/healthz", [("Request-Timeout", "abc")]).status == 200


def test_budget_spent_before_the_store_call(ladder_server):
    """A sign-up hashes its password on the thread pool first (64 MiB of
    argon2id: far more than a millisecond on any machine); with a 1 ms
    budget the write is then never sent to the store, and the handle is
    still free."""
    srv = ladder_server("--argon2-mem", "64MiB")
    handle = unique_handle("late")
    body = {"handle": handle, "display_name": "Late", "password": "correct horse battery"}
    c = srv.client()
    try:
        r = c.request("POST", "/v1/users", [("Request-Timeout", "1")], json_body=body)
        doc = assert_problem(r, 503)
        assert doc["detail"] == STORE_DEADLINE
        assert r.header("Retry-After") == "1"
        assert metric(srv, "ladder_deadline_expired_total", where="store") == 1
        r = c.post("/v1/users", body)
        assert r.status == 201, r
    finally:
        c.close()


def test_settings_in_print_config_and_checked(ladder_cli, tmp_path):
    out = ladder_cli("serve", "--print-config", "--admission-queue", "7", "--shed-writes-last")
    text = out.stdout.decode()
    assert out.returncode == 0, out
    assert "[admission]" in text
    assert "admission_queue = 7 ; flag" in text
    assert "shed_writes_last = on ; flag" in text
    assert "admission_queue_target = 5ms ; default" in text
    out = ladder_cli(
        "serve", "--data", str(tmp_path), "--listen", "127.0.0.1:1",
        "--admission-min-limit", "9", "--admission-max-limit", "3",
    )  # fmt: skip
    assert out.returncode == 2, out
    assert (
        "--admission-min-limit (9) is above --admission-max-limit (3)"
        in out.stderr.decode()
    )

