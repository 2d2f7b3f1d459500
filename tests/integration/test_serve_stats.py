"""The server's own profile: GET /debug/stats (ladder-stats/1), who may read
it, the per-request stage times and what they must add up to, the test-only
commit delay, and --stage-timing off."""

import time

import pytest

from ladder_http import assert_problem, create_item, new_account, stats
from ladder_http import stats_route as route
from conftest import LADDER_STORE, skip_unless_sqlite

STAGES = [
    "read", "queue", "auth", "handler", "hash", "cache", "store_queue",
    "store_commit", "store_pool", "store", "render", "write",
]  # fmt: skip
HIST_KEYS = {"count", "sum_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"}
ADMIN = "s3cret-admin-token"


def workload(client):
    """A bit of every kind of request; returns how many went to each route."""
    _, token = new_account(client, "stats")  # POST /v1/users, POST /v1/sessions
    items = [create_item(client, token, "c%d" % i) for i in range(4)]
    for it in items:
        for _ in range(2):
            assert client.get("/v1/items/" + it["id"]).status == 200
    assert client.get("/v1/items/99999999999").status == 404
    r = client.put(
        "/v1/items/" + items[0]["id"], {"content": "x"}, token=token, headers=[("If-Match", "*")]
    )
    assert r.status == 200, r
    assert client.get("/v1/nope").status == 404  # unmatched
    return {
        "POST /v1/users": 1,
        "POST /v1/sessions": 1,
        "POST /v1/items": 4,
        "GET /v1/items/{id}": 9,
        "PUT /v1/items/{id}": 1,
    }


def test_schema(ladder_server):
    # Counts store reads: no cache in front of the store.
    srv = ladder_server("--cache", "none")
    workload(srv.client())
    doc = stats(srv)
    assert doc["schema"] == "ladder-stats/1"
    for key in ("pid", "now_ns", "started_ns", "clock_ticks"):
        assert isinstance(doc[key], int) and doc[key] > 0, key
    assert doc["now_ns"] >= doc["started_ns"]
    assert doc["loops"] == 2
    assert doc["stage_timing"] is True
    names = [r["route"] for r in doc["routes"]]
    for n in (
        "unmatched",
        "POST /v1/users",
        "GET /v1/items/{id}",
        "PUT /v1/items/{id}",
        "DELETE /v1/items/{id}",
        "GET /metrics",
        "GET /debug/stats",
    ):
        assert n in names, names
    for r in doc["routes"]:
        assert set(r["stages"]) == set(STAGES), r["route"]
        assert set(r["total"]) == HIST_KEYS
        assert r["requests"] == r["total"]["count"]
        for s in r["stages"].values():
            assert set(s) == HIST_KEYS
            assert s["count"] <= r["requests"]
    assert [x["loop"] for x in doc["loop_stats"]] == [0, 1]
    for x in doc["loop_stats"]:
        assert x["tid"] > 0 and x["cpu_ns"] > 0, x
        assert set(x["lag"]) == HIST_KEYS
    names = [t["name"] for t in doc["threads"]]
    # PostgreSQL has no writer thread: each loop sends its own writes.
    threads = ("main", "loop-0", "loop-1", "pool")
    if LADDER_STORE != "postgres":
        threads += ("writer",)
    for n in threads:
        assert n in names, names
    if LADDER_STORE == "postgres":
        assert "writer" not in names, names
    st = doc["store"]
    assert st["driver"] == LADDER_STORE
    assert st["queue_cap"] == 8192
    assert st["commits"] >= 6 and st["writes"] >= 6, st
    assert st["batch"]["count"] == st["commits"]
    assert st["batch"]["sum"] == st["writes"]
    assert st["reads"] == 10, st  # 9 GETs and the session's look-up
    if LADDER_STORE == "postgres":
        assert st["writer_busy_ns"] == 0 and st["commit"]["sum_ns"] > 0, st
    else:
        assert st["writer_busy_ns"] >= st["commit"]["sum_ns"] > 0, st
    assert st["pool_in_use"] == 0 and st["pool_size"] == 0


# The total of a request is its own clock (first byte to a clock read after
# its last stage), not the sum of its stages; what lies between the two is
# the few instructions after the last mark. A generous bound per request,
# far below any stage a missing mark would lose on a loaded machine.
GAP_NS_PER_REQUEST = 1_000_000


def sums_problem(r):
    """None when route r's stages add up to its measured total: never more,
    and less by no more than GAP_NS_PER_REQUEST a request."""
    total = r["total"]["sum_ns"]
    parts = sum(s["sum_ns"] for s in r["stages"].values())
    if not 0 <= total - parts <= GAP_NS_PER_REQUEST * r["requests"]:
        return (r["route"], r["requests"], parts, total)
    return None


def test_stage_sums_add_up_per_route(ladder_server):
    srv = ladder_server()
    want = workload(srv.client())
    doc = stats(srv)
    for name, n in want.items():
        r = route(doc, name)
        assert r["requests"] == n, (name, r["requests"])
    # The request log times each request apart from the stage clock: first
    # byte to the response queued, so never more than the stage total,
    # which goes on to the last byte written (its microseconds truncated).
    logged = {}
    for name, n in want.items():
        method, path = name.split(" ", 1)

        def mine(e, method=method, path=path):
            return isinstance(e, dict) and e.get("method") == method and e.get("route") == path

        deadline = time.monotonic() + 10
        while len([e for e in srv.log_lines() if mine(e)]) < n:
            assert time.monotonic() < deadline, (name, "not all requests logged")
            time.sleep(0.05)
        logged[name] = sum(e["duration_us"] for e in srv.log_lines() if mine(e)) * 1000
    for r in doc["routes"]:
        total = r["total"]["sum_ns"]
        assert sums_problem(r) is None, sums_problem(r)
        if r["route"] in logged:
            assert total >= logged[r["route"]], (r["route"], total, logged[r["route"]])
        if r["requests"]:
            assert total > 0, r["route"]
            assert r["stages"]["read"]["count"] == r["requests"], r["route"]
            assert r["stages"]["render"]["count"] == r["requests"], r["route"]
            assert r["stages"]["write"]["count"] == r["requests"], r["route"]


def test_stages_present_where_expected(ladder_server):
    srv = ladder_server("--cache", "none")
    workload(srv.client())
    doc = stats(srv)
    post = route(doc, "POST /v1/items")["stages"]
    for s in ("auth", "handler", "store_queue", "store_commit", "store"):
        assert post[s]["count"] == 4 and post[s]["sum_ns"] > 0, (s, post[s])
    assert post["hash"]["count"] == 0
    get = route(doc, "GET /v1/items/{id}")["stages"]
    assert get["store"]["count"] == 9 and get["store"]["sum_ns"] > 0
    for s in ("store_commit", "store_queue", "auth", "hash"):
        assert get[s]["count"] == 0, (s, get[s])
    sess = route(doc, "POST /v1/sessions")["stages"]
    assert sess["hash"]["count"] == 1 and sess["hash"]["sum_ns"] > 0
    assert sess["store"]["count"] == 1
    users = route(doc, "POST /v1/users")["stages"]
    assert users["hash"]["count"] == 1 and users["store_commit"]["count"] == 1
    for r in doc["routes"]:
        for s in ("queue", "cache", "store_pool"):
            assert r["stages"][s]["count"] == 0, (r["route"], s)


def test_cache_stage_marked_where_the_lookup_is(ladder_server):
    srv = ladder_server("--cache", "local", "--threads", "1")
    workload(srv.client())
    doc = stats(srv)
    get = route(doc, "GET /v1/items/{id}")["stages"]
    # Every GET looks up the cache; only the misses reach the store.
    assert get["cache"]["count"] == 9 and get["cache"]["sum_ns"] > 0
    assert get["store"]["count"] == 5  # each first GET, and the 404
    post = route(doc, "POST /v1/items")["stages"]
    assert post["cache"]["count"] == 0


def test_counters_are_cumulative(ladder_server):
    srv = ladder_server()
    c = srv.client()
    _, token = new_account(c, "cumul")
    item = create_item(c, token, "x")
    a = route(stats(srv), "GET /v1/items/{id}")
    for _ in range(3):
        assert c.get("/v1/items/" + item["id"]).status == 200
    b = route(stats(srv), "GET /v1/items/{id}")
    assert b["requests"] == a["requests"] + 3
    assert b["total"]["sum_ns"] > a["total"]["sum_ns"]
    # The stats route counts its own requests once they are written.
    d = stats(srv)
    assert route(d, "GET /debug/stats")["requests"] >= 2


def test_commit_delay_lands_in_store_commit(ladder_server):
    skip_unless_sqlite("--test-commit-delay sleeps in the SQLite writer thread")
    srv = ladder_server("--test-commit-delay", "40ms")
    c = srv.client()
    _, token = new_account(c, "delay")
    for i in range(3):
        create_item(c, token, "d%d" % i)
    doc = stats(srv)
    st = route(doc, "POST /v1/items")["stages"]
    # Every commit sleeps 40 ms first: the shortest commit is at least that.
    assert st["store_commit"]["count"] == 3
    assert st["store_commit"]["sum_ns"] >= 3 * 40_000_000, st["store_commit"]
    assert st["store_commit"]["p50_ns"] >= 40_000_000, st["store_commit"]
    assert doc["store"]["commit"]["p50_ns"] >= 40_000_000, doc["store"]["commit"]
    r = route(doc, "POST /v1/items")
    assert sums_problem(r) is None, sums_problem(r)


def test_stage_timing_off(ladder_server):
    srv = ladder_server("--stage-timing", "off", "--cache", "none")
    workload(srv.client())
    doc = stats(srv)
    assert doc["stage_timing"] is False
    for r in doc["routes"]:
        assert r["requests"] == 0 and r["total"]["sum_ns"] == 0, r["route"]
    # The rest of the document still moves.
    assert doc["store"]["commits"] >= 6
    assert doc["store"]["reads"] == 10


# ---- who may read it -----------------------------------------------------------


def test_loopback_may_read_without_token(ladder_server):
    srv = ladder_server("--admin-token", ADMIN)
    assert stats(srv)["schema"] == "ladder-stats/1"


def test_token_only_refuses_loopback_without_token(ladder_server):
    srv = ladder_server("--debug-allow", "token", "--admin-token", ADMIN)
    with srv.conn() as c:
        r = c.request("GET", "/debug/stats")
        doc = assert_problem(r, 403)
        assert "admin token" in doc["detail"], doc
        for bad in ("Bearer wrong", "Bearer " + ADMIN + "x", ADMIN, "Bearer " + ADMIN[:-1]):
            r = c.request("GET", "/debug/stats", headers=[("Authorization", bad)])
            assert_problem(r, 403)
    doc = stats(srv, headers=[("Authorization", "Bearer " + ADMIN)])
    assert doc["schema"] == "ladder-stats/1"


def test_token_only_needs_a_token(ladder_cli, tmp_path):
    p = ladder_cli("serve", "--data", str(tmp_path), "--debug-allow", "token")
    assert p.returncode == 2, p
    err = p.stderr.decode()
    assert "debug_allow token (flag) needs admin_token" in err, err


def test_debug_allow_bad_value(ladder_cli, tmp_path):
    p = ladder_cli("serve", "--data", str(tmp_path), "--debug-allow", "everyone")
    assert p.returncode == 2, p
    err = p.stderr.decode()
    assert "--debug-allow: 'everyone' is not one of: loopback|token" in err, err


def test_admin_token_never_printed(ladder_cli, tmp_path):
    p = ladder_cli("serve", "--data", str(tmp_path), "--admin-token", ADMIN, "--print-config")
    assert p.returncode == 0, p
    out = p.stdout.decode()
    assert ADMIN not in out
    assert "admin_token = (set)" in out, out


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_debug_stats_is_get_only(server, method):
    with server.conn() as c:
        r = c.request(method, "/debug/stats")
    assert_problem(r, 405)
    assert r.header("Allow") == "GET, HEAD"


def test_concurrent_snapshots_under_load(ladder_server):
    """Many readers on several loops at once, while writes go on: every
    snapshot is answered, and every one holds whole requests only."""
    import threading

    srv = ladder_server("--threads", "4")
    c = srv.client()
    _, token = new_account(c, "conc")
    stop = threading.Event()
    errors = []

    writes = [0]

    def writer():
        # An exception here would end the thread silently: record it.
        try:
            w = srv.client()
            while not stop.is_set():
                r = w.post("/v1/items", {"content": "w"}, token=token)
                writes[0] += 1
                if r.status != 201:
                    errors.append(("write", r.status))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(("writer", repr(e)))

    def reader(n):
        try:
            with srv.conn() as conn:
                for i in range(n):
                    path = "/debug/stats" if (i % 2) == 0 else "/metrics"
                    r = conn.request("GET", path)
                    if r.status != 200:
                        errors.append((path, r.status))
                        continue
                    if path == "/debug/stats":
                        for rt in r.json()["routes"]:
                            if sums_problem(rt):
                                errors.append(sums_problem(rt))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    w = threading.Thread(target=writer)
    w.start()
    readers = [threading.Thread(target=reader, args=(6,)) for _ in range(12)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(60)
    stop.set()
    w.join(60)
    # A thread still running after its deadline is a hang, not a pass.
    assert not [t for t in readers + [w] if t.is_alive()], "a client thread hung"
    assert not errors, errors[:5]
    assert writes[0] > 0, "the writer made no request"
    doc = stats(srv)
    assert route(doc, "GET /debug/stats")["requests"] >= 36
    assert route(doc, "GET /metrics")["requests"] >= 36
