"""Degraded modes (docs/operations.md, "Circuit breakers and degraded
modes"): what the service still does when a dependency is down.

- The PostgreSQL primary stopped, a replica up (--pg-replicas): the
  primary's breaker opens on every loop; reads are answered by the replica
  (200), writes fail at once with 503 + Retry-After; once the primary is
  back, the breaker closes by itself and writes go through again.
- The store down for reads, --cache local: with --cache-serve-stale, a
  response cached before the outage is served past its TTL, 200, marked
  stale (Cache-Status: ladder; hit; detail=stale, and Warning 110); a read
  never cached gets 503. Without the setting, 503 once the entry expires.

(Replicas down -> reads on the primary: test_serve_pg_replicas.py's
test_replica_stopped_under_read_load, which also checks the replica's
breaker. Redis down -> the store: test_serve_cache_redis.py.)

Each test has a PostgreSQL cluster of its own, whatever LADDER_STORE the
suite runs with. Nothing here measures time: every wait is a poll with a
deadline.
"""

import os

import pytest

from ladder_http import create_item, metrics, new_account, poll
from pgcluster import PG_BIN
from pgreplicas import LOOPS, replayed, replica_server
from test_serve_postgres import TableLock

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(PG_BIN, "postgres")),
    reason="PostgreSQL server binaries not found in " + PG_BIN,
)

UNAVAILABLE = "the store is not available"
TIMED_OUT = "the store did not answer in time; nothing was changed, retry"
STALE = "ladder; hit; detail=stale"
WARNING = '110 - "Response is Stale"'


def breaker(dep, loop):
    return 'ladder_breaker_state{dep="%s",name="store",loop="%d"}' % (dep, loop)


def breakers(srv, dep):
    m = metrics(srv)
    return [m[breaker(dep, i)] for i in range(LOOPS)]


def fills(srv):
    m = metrics(srv)
    return sum(v for k, v in m.items() if k.startswith("ladder_cache_fills_total{"))


def test_primary_down_reads_on_the_replica_writes_503(ladder_server, pgr):
    # With the cache on: a fill reads the primary, so with the primary's
    # breaker open the replica answers it, and nothing is filled.
    srv, db = replica_server(ladder_server, pgr, "--cache", "local")
    replica = pgr.replicas[0]
    c = srv.client()
    user, token = new_account(c, "pdown")
    items = [create_item(c, token, "item %d" % i) for i in range(3)]
    flush = int(pgr.psql("SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn").strip())
    poll(lambda: replayed(replica, "v1.%x" % flush), what="the replica at the items")
    assert breakers(srv, "primary") == [0] * LOOPS

    pgr.halt()  # the primary only: the replica goes on answering
    poll(lambda: breakers(srv, "primary") == [1] * LOOPS, what="the primary's breaker open")
    f0 = fills(srv)
    for it in items:
        r = c.get("/v1/items/" + it["id"])
        assert r.status == 200, r
        assert r.json()["content"] == it["content"]
    r = c.get("/v1/users/" + user["id"])
    assert r.status == 200, r
    assert fills(srv) == f0
    r = c.post("/v1/items", {"content": "while the primary is down"}, token=token)
    assert r.status == 503, r
    assert r.json()["detail"] == UNAVAILABLE
    assert r.header("Retry-After") == "1"
    m = metrics(srv)
    assert m['ladder_breaker_refused_total{dep="primary",name="store",loop="0"}'] + m[
        'ladder_breaker_refused_total{dep="primary",name="store",loop="1"}'] >= 1

    pgr.resume()
    poll(lambda: breakers(srv, "primary") == [0] * LOOPS, what="the primary's breaker closed")
    r = c.post("/v1/items", {"content": "after"}, token=token)
    assert r.status == 201, r
    out = srv.stdout_text()
    assert '"msg":"primary breaker open"' in out
    assert '"msg":"primary breaker closed"' in out
    c.close()


def test_primary_breaker_closes_without_traffic(ladder_server, pg):
    """No replicas (no position samples) and no requests: once the primary
    is back, a reconnected connection's probe after the open period closes
    the breaker on every loop by itself (only /metrics is asked meanwhile,
    which reads no store). The open period (6 s) is longer than the
    reconnect backoff's cap (5 s), so the reconnect itself always comes
    within it and cannot be the trial: the probe must be."""
    srv = ladder_server("--store", "postgres", "--pg-primary", pg.conninfo(pg.new_database()),
                        "--cache", "none", "--pg-breaker-open", "6s")  # fmt: skip
    pg.halt()
    poll(lambda: breakers(srv, "primary") == [1] * LOOPS, what="the primary's breaker open")
    pg.resume()
    poll(lambda: breakers(srv, "primary") == [0] * LOOPS, timeout=40,
         what="the breaker closed by itself")  # fmt: skip
    m = metrics(srv)
    for i in range(LOOPS):
        key = 'ladder_breaker_transitions_total{dep="primary",name="store",loop="%d",to="%s"}'
        assert m[key % (i, "half-open")] >= 1
        assert m[key % (i, "closed")] >= 1
    c = srv.client()
    assert c.get("/readyz").status == 200
    c.close()


def test_primary_breaker_opens_on_the_failure_rate_with_no_failures_in_a_row(ladder_server,
                                                                           pg):
    """The primary cuts the node's one connection again and again
    (pg_terminate_backend), each time only once the reconnect is set up and
    a read was answered on it: every failure (a lost connection) comes
    between successes, so --pg-breaker-failures 2 never sees two in a row.
    The rate (25% of at least 6 outcomes in the window) opens the breaker
    anyway; the log line names the rule, and writes then fail at once."""
    db = pg.new_database()
    srv = ladder_server("--store", "postgres", "--pg-primary", pg.conninfo(db), "--cache", "none",
                        "--threads", "1", "--pg-pool", "1", "--pg-breaker-failures", "2",
                        "--pg-breaker-failure-rate", "25", "--pg-breaker-min-calls", "6",
                        "--pg-breaker-window", "10m", "--pg-breaker-open", "10m")  # fmt: skip
    c = srv.client()
    _, token = new_account(c, "rate")
    path = "/v1/items/" + create_item(c, token, "one")["id"]
    backends = ("SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity"
                " WHERE datname = '%s' AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'" % db)  # fmt: skip
    state = breaker("primary", 0)
    kills = 0
    while metrics(srv)[state] == 0:
        assert kills < 40, srv.stdout_text()[-3000:]
        before = set(pg.psql(backends).strip().split(","))
        assert before != {""}
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (%s)"
                % ",".join(before))  # fmt: skip
        kills += 1
        # A new connection, and a read answered on it (or the breaker open),
        # before the next cut.
        poll(lambda: not (set(pg.psql(backends).strip().split(",")) & before),
             what="the killed connection gone")  # fmt: skip
        poll(lambda: metrics(srv)[state] == 1 or c.get(path, token=token).status == 200,
             what="a read answered on the new connection")  # fmt: skip
    assert metrics(srv)[state] == 1
    assert kills >= 2
    opened = [line for line in srv.stdout_text().splitlines()
              if '"msg":"primary breaker open"' in line]  # fmt: skip
    assert len(opened) == 1, opened
    assert '"rule":"rate"' in opened[0], opened
    r = c.post("/v1/items", {"content": "while open"}, token=token)
    assert r.status == 503, r
    assert r.json()["detail"] == UNAVAILABLE
    assert r.header("Retry-After") == "1"
    c.close()


def slow_reads_server(ladder_server, pg, who):
    """A server on a database of its own whose primary breaker opens on two
    read timeouts in a row (--store-timeout 500ms, the rate rule off, open
    for 10 minutes), a client with an account and the path of one item:
    (db, srv, client, token, path)."""
    db = pg.new_database()
    srv = ladder_server("--store", "postgres", "--pg-primary", pg.conninfo(db), "--cache", "none",
                        "--threads", "1", "--pg-pool", "1", "--store-timeout", "500ms",
                        "--pg-breaker-failures", "2", "--pg-breaker-failure-rate", "0",
                        "--pg-breaker-open", "10m")  # fmt: skip
    c = srv.client()
    _, token = new_account(c, who)
    return db, srv, c, token, "/v1/items/" + create_item(c, token, "one")["id"]


def test_read_timeouts_open_the_primary_breaker_a_client_budget_does_not(ladder_server, pg):
    """Reads that wait on a lock inside PostgreSQL past --store-timeout are
    the primary's failures: two in a row (--pg-breaker-failures 2, the rate
    off) open its breaker, and the next read fails at once. Reads cut short
    by a client's own smaller budget (Request-Timeout) time out the same
    way but say nothing of the node: however many, the breaker stays
    closed."""
    db, srv, c, token, path = slow_reads_server(ladder_server, pg, "slow")
    state = breaker("primary", 0)
    lock = TableLock(pg, db, "items")
    try:
        for _ in range(3):
            r = c.get(path, token=token, headers={"Request-Timeout": "100"})
            assert r.status == 503, r
            assert r.json()["detail"] == TIMED_OUT
        assert metrics(srv)[state] == 0
        for _ in range(2):
            r = c.get(path, token=token)
            assert r.status == 503, r
            assert r.json()["detail"] == TIMED_OUT
        assert metrics(srv)[state] == 1
        r = c.get(path, token=token)
        assert r.status == 503, r
        assert r.json()["detail"] == UNAVAILABLE
    finally:
        lock.release()
    opened = [line for line in srv.stdout_text().splitlines()
              if '"msg":"primary breaker open"' in line]  # fmt: skip
    assert len(opened) == 1, opened
    assert '"rule":"in-a-row"' in opened[0], opened
    assert '"why":"a read got no answer within the store timeout"' in opened[0], opened
    c.close()


def test_a_timed_out_reads_late_answer_is_not_a_success(ladder_server, pg):
    """A read given up on past --store-timeout is the primary's failure; its
    answer, when it comes later, must not count as a success that resets
    the failures in a row. Each read here times out and is then answered
    (the lock is released until it is): two in a row still open the
    breaker."""
    db, srv, c, token, path = slow_reads_server(ladder_server, pg, "late")
    state = breaker("primary", 0)

    def waiting():
        return pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name <> 'locker' AND wait_event_type = 'Lock'", db=db,
        ).split()  # fmt: skip

    for n in range(2):
        assert metrics(srv)[state] == 0, n
        lock = TableLock(pg, db, "items")
        try:
            r = c.get(path, token=token)
            assert r.status == 503, r
            assert r.json()["detail"] == TIMED_OUT
            assert waiting() == ["1"]  # the read still waits inside PostgreSQL
        finally:
            lock.release()
        # Its late answer arrives once the lock is gone.
        poll(lambda: waiting() == ["0"], what="the timed-out read to be answered")
    assert metrics(srv)[state] == 1
    c.close()


def stale_server(ladder_server, pg, *flags):
    """One loop (so a keep-alive client always meets the L1 it filled), a
    short TTL, the store on pg."""
    return ladder_server(
        "--store", "postgres", "--pg-primary", pg.conninfo(pg.new_database()),
        "--cache", "local", "--threads", "1", "--cache-ttl", "200ms", *flags,
    )  # fmt: skip


def test_store_down_serves_cached_reads_marked_stale(ladder_server, pg):
    srv = stale_server(ladder_server, pg, "--cache-serve-stale", "1h")
    c = srv.client()
    user, token = new_account(c, "stale")
    cached = create_item(c, token, "cached before the outage")
    never = create_item(c, token, "never read")
    r = c.get("/v1/items/" + cached["id"])
    assert r.status == 200, r
    assert r.header("Cache-Status") is None
    etag = r.header("ETag")

    pg.halt()

    def stale_answer():
        r = c.get("/v1/items/" + cached["id"])
        assert r.status == 200, r  # a hit first, stale once the TTL is past
        return r if r.header("Cache-Status") == STALE else None

    r = poll(stale_answer, what="the cached item served stale")
    assert r.header("Warning") == WARNING
    assert r.header("ETag") == etag
    assert r.json()["content"] == "cached before the outage"
    r = c.get("/v1/items/" + never["id"])
    assert r.status == 503, r
    assert r.json()["detail"] == UNAVAILABLE
    assert r.header("Retry-After") == "1"
    assert r.header("Cache-Status") is None
    m = metrics(srv)
    assert m['ladder_cache_stale_served_total{level="l1",route="/v1/items/{id}"}'] >= 1

    pg.resume()

    def fresh_answer():
        r = c.get("/v1/items/" + cached["id"])
        assert r.status == 200, r
        return r.header("Cache-Status") is None and r.header("Warning") is None

    poll(fresh_answer, what="the item served fresh again")
    c.close()


def test_store_down_without_serve_stale_is_503(ladder_server, pg):
    srv = stale_server(ladder_server, pg)
    c = srv.client()
    user, token = new_account(c, "nostale")
    item = create_item(c, token, "cached")
    assert c.get("/v1/items/" + item["id"]).status == 200

    pg.halt()

    def unavailable():
        r = c.get("/v1/items/" + item["id"])
        if r.status == 200:  # still a hit: the TTL is not past yet
            assert r.header("Cache-Status") is None, r
            return None
        return r

    r = poll(unavailable, what="the read failing once the entry expired")
    assert r.status == 503, r
    assert r.json()["detail"] == UNAVAILABLE
    assert r.header("Cache-Status") is None
    assert r.header("Warning") is None
    pg.resume()
    poll(lambda: c.get("/v1/items/" + item["id"]).status == 200, what="the store back")
    c.close()
