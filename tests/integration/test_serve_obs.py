"""Observability: /healthz, /readyz, X-Request-Id, traceparent, JSON request
logs and /metrics (checked by promtool)."""

import re
import shutil
import subprocess

import pytest

from conftest import LADDER_STORE
from ladder_http import (
    SANE_REQUEST_ID,
    TRACEPARENT,
    assert_problem,
    build_request,
    create_item,
    exchange,
    new_account,
)

LOG_KEYS = {
    "time",
    "level",
    "request_id",
    "trace_id",
    "method",
    "route",
    "status",
    "bytes",
    "duration_us",
    "user_id",
}


def test_healthz_and_readyz(client):
    for path in ("/healthz", "/readyz"):
        r = client.get(path)
        assert r.status == 200, r
        assert r.has_header("X-Request-Id")


# ---- X-Request-Id --------------------------------------------------------------


@pytest.mark.parametrize("rid", ["abc-123", "A.b_c:d-9", "x" * 128, "0"])
def test_sane_request_id_echoed(client, rid):
    r = client.get("/healthz", headers=[("X-Request-Id", rid)])
    assert r.header("X-Request-Id") == rid


@pytest.mark.parametrize(
    "rid", ["x" * 129, "has space", "semi;colon", "<script>", "quote\"d", "slash/ed", "é"]
)
def test_insane_request_id_replaced(client, rid):
    r = client.request(
        "GET", "/healthz", [("X-Request-Id", rid.encode("utf-8"))]
    )
    got = r.header("X-Request-Id")
    assert got and got != rid.encode("utf-8").decode("latin-1"), r
    assert SANE_REQUEST_ID.match(got), got


def test_request_id_generated_and_unique(client):
    ids = {client.get("/healthz").header("X-Request-Id") for _ in range(20)}
    assert len(ids) == 20
    assert all(i and SANE_REQUEST_ID.match(i) for i in ids), ids


def test_request_id_generated_form(client):
    """A generated id is the loop's 16-hex-digit prefix, '-', and its request
    counter in lower-case hex: one connection stays on one loop, so the
    prefix is one and the counter grows."""
    ids = [client.get("/healthz").header("X-Request-Id") for _ in range(40)]
    parts = [re.fullmatch(r"([0-9a-f]{16})-([1-9a-f][0-9a-f]*)", i) for i in ids]
    assert all(parts), ids
    assert len({p.group(1) for p in parts}) == 1, ids
    seqs = [int(p.group(2), 16) for p in parts]
    assert all(b > a for a, b in zip(seqs, seqs[1:])), ids


def test_request_id_on_every_kind_of_response(server, client):
    _, token = new_account(client, "rid")
    r = client.post("/v1/items", {"content": "x"}, token=token)
    etag = r.header("ETag")
    path = "/v1/items/" + r.json()["id"]
    responses = [
        r,  # 201
        client.get(path, headers=[("If-None-Match", etag)]),  # 304
        client.get("/v1/nope"),  # 404
        client.request("PATCH", "/v1/items"),  # 405
        client.post("/v1/items", {"content": "x"}),  # 401
        client.delete(path, token=token),  # 204
    ]
    # Errors from the HTTP layer itself.
    responses.append(exchange(server.port, b"GET / HTTP/1.1\r\n\r\n")[0])  # 400
    responses.append(
        exchange(server.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    )  # 414
    statuses = [x.status for x in responses]
    assert statuses == [201, 304, 404, 405, 401, 204, 400, 414], statuses
    for x in responses:
        rid = x.header("X-Request-Id")
        assert rid and SANE_REQUEST_ID.match(rid), x


def test_error_body_names_no_internal_detail(client):
    r = client.get("/v1/nope")
    assert_problem(r, 404)
    assert b"sqlite" not in r.body.lower()


# ---- traceparent ---------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def test_traceparent_continued(server, client):
    tp = "00-%s-%s-01" % (TRACE_ID, PARENT_ID)
    r = client.get("/healthz", headers=[("traceparent", tp), ("X-Request-Id", "trace-cont")])
    m = TRACEPARENT.match(r.header("traceparent") or "")
    assert m, r
    assert m.group(1) == TRACE_ID
    assert m.group(2) != PARENT_ID and m.group(2) != "0" * 16
    rec = server.wait_log(lambda x: x.get("request_id") == "trace-cont")
    assert rec is not None, "no log line for the request"
    assert rec["trace_id"] == TRACE_ID


@pytest.mark.parametrize(
    "tp",
    [
        None,
        "garbage",
        "00-%s-%s-01" % ("0" * 32, PARENT_ID),  # all-zero trace id is invalid
        "00-%s-%s-01" % (TRACE_ID, "0" * 16),  # all-zero parent id is invalid
        "00-%s-%s-01" % (TRACE_ID.upper(), PARENT_ID),  # upper case is invalid
        "ff-%s-%s-01" % (TRACE_ID, PARENT_ID),  # version ff is invalid
    ],
)
def test_traceparent_new_when_absent_or_invalid(server, client, tp):
    rid = "trace-new-%d" % (hash(tp) & 0xFFFFFF)
    headers = [("X-Request-Id", rid)]
    if tp:
        headers.append(("traceparent", tp))
    r = client.get("/healthz", headers=headers)
    m = TRACEPARENT.match(r.header("traceparent") or "")
    assert m, r
    assert m.group(1) != TRACE_ID and m.group(1) != "0" * 32
    rec = server.wait_log(lambda x: x.get("request_id") == rid)
    assert rec is not None
    assert rec["trace_id"] == m.group(1)


def test_new_traces_differ(client):
    a = client.get("/healthz").header("traceparent")
    b = client.get("/healthz").header("traceparent")
    assert TRACEPARENT.match(a) and TRACEPARENT.match(b)
    assert a.split("-")[1] != b.split("-")[1]


# ---- logs ----------------------------------------------------------------------


def test_log_lines_parse_and_have_every_key(server, client):
    user, token = new_account(client, "logger")
    item = create_item(client, token, "logged")
    client.get("/v1/items/" + item["id"], headers=[("X-Request-Id", "log-anon")])
    client.put(
        "/v1/items/" + item["id"],
        {"content": "logged2"},
        token=token,
        headers=[("X-Request-Id", "log-auth"), ("If-Match", "*")],
    )
    anon = server.wait_log(lambda x: x.get("request_id") == "log-anon")
    auth = server.wait_log(lambda x: x.get("request_id") == "log-auth")
    assert anon is not None and auth is not None, "request lines missing from stdout"
    lines = server.log_lines()
    bad = [x for x in lines if not isinstance(x, dict)]
    assert not bad, "stdout lines that are not JSON: %r" % bad[:3]
    requests = [x for x in lines if "request_id" in x]
    assert requests
    for rec in requests:
        missing = LOG_KEYS - set(rec)
        assert not missing, (missing, rec)
    assert anon["method"] == "GET"
    assert anon["route"] == "/v1/items/{id}"
    assert anon["status"] == 200
    assert anon["user_id"] is None
    assert isinstance(anon["bytes"], int) and anon["bytes"] > 0
    assert isinstance(anon["duration_us"], int) and anon["duration_us"] >= 0
    assert re.match(r"^[0-9a-f]{32}$", anon["trace_id"]), anon
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", anon["time"]), anon
    assert (anon["level"], auth["level"]) == ("info", "info"), (anon, auth)
    assert auth["method"] == "PUT" and auth["status"] == 200
    assert auth["route"] == "/v1/items/{id}"
    assert str(auth["user_id"]) == user["id"], auth


def test_log_line_for_http_layer_error(server):
    resp, _ = exchange(
        server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: log-bad\r\nX : y\r\n\r\n"
    )
    assert resp.status == 400
    rid = resp.header("X-Request-Id")
    rec = server.wait_log(lambda x: x.get("request_id") == rid)
    assert rec is not None, "a rejected request is not logged"
    assert rec["status"] == 400


def test_log_route_is_pattern_for_unknown_and_users(server, client):
    client.get("/v1/users/123/items", headers=[("X-Request-Id", "log-list")])
    rec = server.wait_log(lambda x: x.get("request_id") == "log-list")
    assert rec is not None
    assert rec["route"] == "/v1/users/{id}/items", rec


# ---- metrics -------------------------------------------------------------------

REQUIRED_METRICS = [
    "ladder_http_requests_total",
    "ladder_http_request_duration_seconds_bucket",
    "ladder_http_requests_in_flight",
    "ladder_http_open_connections",
    "ladder_store_write_batch_size_bucket",
    "ladder_store_commit_duration_seconds_bucket",
    "ladder_stage_seconds_bucket",
    "ladder_loop_lag_seconds_bucket",
    "ladder_loop_busy_seconds_total",
    "ladder_thread_cpu_seconds_total",
    "ladder_store_writer_busy_seconds_total",
    "ladder_store_write_queue_depth",
    "ladder_store_write_queue_capacity",
    "ladder_store_read_ops_total",
]


def metric_value(text, name, labels):
    """The value of the sample name{labels...}; labels is a dict that must be
    a subset of the sample's labels. None when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


def get_metrics(conn):
    r = conn.request("GET", "/metrics")
    assert r.status == 200, r
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("text/plain"), ctype
    assert "version=0.0.4" in ctype, ctype
    return r.content().decode()


def test_metrics_names_and_promtool(server, client):
    _, token = new_account(client, "metrics")
    posted = {"route": "/v1/items", "method": "POST", "status": "201"}
    with server.conn() as c:
        n0 = metric_value(get_metrics(c), "ladder_http_requests_total", posted) or 0
    create_item(client, token, "for the store metrics")
    with server.conn() as c:
        text = get_metrics(c)
    for name in REQUIRED_METRICS:
        assert re.search(r"^%s(\{| )" % name, text, re.M), "missing %s" % name
    # Declared even while no store error has happened.
    assert "# TYPE ladder_store_errors_total counter" in text.splitlines(), text
    # Counted before the 201 went out: no race with the read above.
    assert metric_value(text, "ladder_http_requests_total", posted) == n0 + 1
    # This connection at least (closed ones may not be reaped yet; the exact
    # count is checked in test_serve_regressions).
    assert metric_value(text, "ladder_http_open_connections", {}) >= 1
    promtool = shutil.which("promtool")
    # A missing checker fails rather than skips: a skip reads as a pass.
    assert promtool is not None, "promtool not installed (scripts/deps.sh test installs it)"
    p = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert p.returncode == 0, (p.stdout + p.stderr).decode()[-3000:]


def test_metrics_counters_move(server):
    with server.conn() as c:
        labels = {"route": "/healthz", "method": "GET", "status": "200"}
        before = get_metrics(c)
        for _ in range(3):
            assert c.request("GET", "/healthz").status == 200
        after = get_metrics(c)
    n0 = metric_value(before, "ladder_http_requests_total", labels) or 0
    n1 = metric_value(after, "ladder_http_requests_total", labels)
    assert n1 == n0 + 3, (n0, n1)
    # The latency histogram of the route counted them too.
    name = "ladder_http_request_duration_seconds_count"
    d0 = metric_value(before, name, {"route": "/healthz"}) or 0
    d1 = metric_value(after, name, {"route": "/healthz"})
    assert d1 == d0 + 3, (d0, d1)
    inf1 = metric_value(
        after, "ladder_http_request_duration_seconds_bucket", {"route": "/healthz", "le": "+Inf"}
    )
    assert inf1 == d1


def test_metrics_count_errors_by_status(server):
    with server.conn() as c:
        labels = {"route": "/v1/items/{id}", "method": "GET", "status": "404"}
        n0 = metric_value(get_metrics(c), "ladder_http_requests_total", labels) or 0
        for _ in range(2):
            assert c.request("GET", "/v1/items/1234567890123").status == 404
        n1 = metric_value(get_metrics(c), "ladder_http_requests_total", labels)
        assert n1 == n0 + 2, (n0, n1)


def test_store_metrics_move_on_writes(server, client):
    _, token = new_account(client, "storem")
    with server.conn() as c:
        before = get_metrics(c)
    b0 = metric_value(before, "ladder_store_write_batch_size_count", {}) or 0
    c0 = metric_value(before, "ladder_store_commit_duration_seconds_count", {}) or 0
    for i in range(3):
        create_item(client, token, "w%d" % i)
    with server.conn() as c:
        after = get_metrics(c)
    b1 = metric_value(after, "ladder_store_write_batch_size_count", {})
    c1 = metric_value(after, "ladder_store_commit_duration_seconds_count", {})
    # One write at a time: three batches of one, each counted before its
    # write was acknowledged.
    assert b1 == b0 + 3, (b0, b1)
    assert c1 == c0 + 3, (c0, c1)
    s0 = metric_value(before, "ladder_store_write_batch_size_sum", {}) or 0
    s1 = metric_value(after, "ladder_store_write_batch_size_sum", {})
    assert s1 == s0 + 3, (s0, s1)


def test_stage_series(server, client):
    _, token = new_account(client, "stagem")
    item = create_item(client, token, "staged")
    assert client.get("/v1/items/" + item["id"]).status == 200
    with server.conn() as c:
        text = get_metrics(c)
    post = {"route": "POST /v1/items", "stage": "store_commit"}
    n = metric_value(text, "ladder_stage_seconds_count", post)
    assert n is not None and n >= 1, n
    assert metric_value(text, "ladder_stage_seconds_bucket", dict(post, le="+Inf")) == n
    assert metric_value(text, "ladder_stage_seconds_sum", post) > 0
    get = {"route": "GET /v1/items/{id}", "stage": "store"}
    assert metric_value(text, "ladder_stage_seconds_count", get) >= 1
    # A stage a route never passes through has no series.
    assert metric_value(text, "ladder_stage_seconds_count", dict(get, stage="store_commit")) is None
    for loop in ("0", "1"):
        assert metric_value(text, "ladder_loop_lag_seconds_count", {"loop": loop}) is not None
    # PostgreSQL has no writer thread: each loop sends its own writes.
    threads = ("loop-0", "loop-1", "main", "pool")
    if LADDER_STORE != "postgres":
        threads += ("writer",)
    for thread in threads:
        v = metric_value(text, "ladder_thread_cpu_seconds_total", {"thread": thread})
        assert v is not None and v >= 0, thread
    assert metric_value(text, "ladder_store_write_queue_capacity", {}) == 8192
    busy = metric_value(text, "ladder_store_writer_busy_seconds_total", {})
    if LADDER_STORE == "postgres":
        assert busy == 0  # no writer thread
    else:
        assert busy > 0


def test_in_flight_gauge_sane(server):
    with server.conn() as c:
        text = get_metrics(c)
    v = metric_value(text, "ladder_http_requests_in_flight", {})
    # The /metrics request itself, received and not yet answered; no other.
    assert v == 1, v


def test_build_request_helper():
    # Guards the helper the smuggling tests rely on: Host and length added.
    data = build_request("POST", "/x", [("A", "b")], b"hi")
    assert data == b"POST /x HTTP/1.1\r\nHost: test\r\nA: b\r\nContent-Length: 2\r\n\r\nhi"
