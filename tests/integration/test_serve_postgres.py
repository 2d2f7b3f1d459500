"""The postgres store where it differs from SQLite: the [postgres] settings
(a missing or unreachable primary, the conninfo a secret), `ladder migrate`
run from several processes at once, and what happens while the primary is
unreachable or a connection is cut with ops in flight (docs/store.md).

Each test here has a PostgreSQL cluster of its own (it stops and restarts
it, or holds its locks), whatever LADDER_STORE the suite runs with.
"""

import os
import random
import subprocess
import threading
import time

import pytest

from conftest import LADDER_BIN, free_port, run_cli
from ladder_http import assert_problem, create_item, new_account
from pgcluster import PgCluster

UNAVAILABLE = "the store is not available"
TIMED_OUT = "the store did not answer in time; nothing was changed, retry"
UNKNOWN = (
    "the store became unavailable after the write was sent: the outcome is unknown; "
    "retry with an Idempotency-Key, or read before retrying"
)


@pytest.fixture
def pg():
    c = PgCluster().start()
    yield c
    c.stop()


def pg_server(ladder_server, pg, *flags):
    db = pg.new_database()
    return ladder_server("--store", "postgres", "--pg-primary", pg.conninfo(db), *flags), db


def poll(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def store_depth(srv):
    with srv.conn() as c:
        r = c.request("GET", "/debug/stats")
    assert r.status == 200, r
    return r.json()["store"]["queue_depth"]


def readyz(srv):
    with srv.conn() as c:
        return c.request("GET", "/readyz").status


# ---- configuration ---------------------------------------------------------


def test_missing_primary_is_a_usage_error(tmp_path):
    for cmd in ("serve", "migrate"):
        argv = [cmd, "--store", "postgres", "--data", str(tmp_path / cmd)]
        if cmd == "serve":
            argv += ["--listen", "127.0.0.1:%d" % free_port()]
        p = run_cli(*argv)
        assert p.returncode == 2, (cmd, p.stderr)
        assert (
            "ladder: store postgres: --pg-primary (LADDER_PG_PRIMARY) is not set"
            in p.stderr.decode()
        ), p.stderr


def test_unreachable_primary_at_start_exits_1(tmp_path):
    port = free_port()  # nothing listens there
    p = run_cli(
        "migrate", "--store", "postgres", "--data", str(tmp_path / "d"),
        "--pg-primary", "hostaddr=127.0.0.1 port=%d user=postgres" % port,
    )  # fmt: skip
    assert p.returncode == 1, p.stderr
    err = p.stderr.decode()
    assert "ladder: store postgres: cannot connect to the primary: " in err, err
    assert "%d" % port in err, err


def test_print_config_never_shows_the_conninfo(tmp_path):
    secret = "hunter2-not-to-be-seen"
    p = run_cli(
        "serve", "--store", "postgres", "--data", str(tmp_path / "d"),
        "--pg-primary", "postgresql://ladder:%s@127.0.0.1:5432/ladder" % secret,
        "--pg-pool", "3", "--print-config",
    )  # fmt: skip
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    assert secret not in out and secret not in p.stderr.decode()
    assert "[postgres]" in out, out
    assert "primary = (set)" in out, out
    assert "pool = 3" in out, out


# ---- migrations --------------------------------------------------------------


def test_concurrent_migrations_take_turns(tmp_path, pg):
    """Several processes migrating one empty database at once: the advisory
    lock makes them take turns, so every one succeeds and the schema is
    made once."""
    for round_ in range(3):
        db = pg.new_database()
        procs = [
            subprocess.Popen(
                [LADDER_BIN, "migrate", "--store", "postgres",
                 "--data", str(tmp_path / ("r%d-%d" % (round_, i))),
                 "--pg-primary", pg.conninfo(db)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            for i in range(4)
        ]
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert b"ladder migrate: postgres store is at the current schema" in out
        assert pg.psql("SELECT version FROM ladder_schema", db=db).split() == ["4"]
        assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename IN"
                       " ('users', 'items', 'idempotency_keys', 'photos', 'photo_versions',"
                       " 'jobs')", db=db).split() == ["6"]


# ---- an unreachable primary ---------------------------------------------------


def test_readyz_follows_the_primary(ladder_server, pg):
    srv, db = pg_server(ladder_server, pg)
    c = srv.client()
    user, token = new_account(c, "pgdown")
    item = create_item(c, token, "before the outage")
    pg.halt()
    poll(lambda: readyz(srv) == 503, what="/readyz 503 with the primary down")
    # While every connection is down, ops fail at once: nothing is sent.
    assert_problem(c.post("/v1/items", {"content": "during"}, token=token), 503)
    r = c.get("/v1/items/" + item["id"])
    doc = assert_problem(r, 503)
    assert doc["detail"] == UNAVAILABLE, doc
    assert "store: connection to the primary lost or refused" in srv.stdout_text()
    pg.resume()
    poll(lambda: readyz(srv) == 200, what="/readyz 200 with the primary back")
    assert c.get("/v1/items/" + item["id"]).json()["content"] == "before the outage"
    assert create_item(c, token, "after the outage")["content"] == "after the outage"
    assert pg.psql("SELECT count(*) FROM items", db=db).split() == ["2"]
    c.close()


class TableLock:
    """Holds a lock on a table from a psql session of its own (ACCESS
    EXCLUSIVE: every statement on it waits inside PostgreSQL; SHARE: only
    the writes)."""

    def __init__(self, pg, db, table, mode="ACCESS EXCLUSIVE"):
        self.p = subprocess.Popen(
            ["/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-d", pg.conninfo(db)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.p.stdin.write(
            ("SET application_name = 'locker'; BEGIN; LOCK TABLE %s IN %s MODE;\n"
             % (table, mode)).encode()
        )
        self.p.stdin.flush()
        poll(
            lambda: pg.psql(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = 'locker' AND l.mode = '%sLock'"
                " AND l.granted" % mode.title().replace(" ", ""), db=db,
            ).split() == ["1"],
            what="the table lock",
        )  # fmt: skip

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write(b"ROLLBACK;\n\\q\n")
            self.p.stdin.close()
            self.p.wait(timeout=10)


def waiting_on_lock(pg, db, n):
    return lambda: pg.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND application_name <> 'locker'", db=db,
    ).split() == [str(n)]  # fmt: skip


def in_thread(fn):
    box = {}

    def run():
        try:
            box["r"] = fn()
        except Exception as e:  # reported by the test
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, box


def test_lost_connection_fails_ops_in_flight(ladder_server, pg):
    """A connection cut with a read and a write in flight: both end in
    UNAVAILABLE (503 + Retry-After); the write, whose COMMIT may have
    happened, says its outcome is unknown, and it is not retried. Then the
    pool reconnects."""
    # Deadlines far past the setting-up on a busy machine: the ops must be
    # in flight, not timed out, when the connection goes.
    srv, db = pg_server(ladder_server, pg, "--threads", "1", "--pg-pool", "1",
                        "--store-timeout", "20s")  # fmt: skip
    c = srv.client()
    _, token = new_account(c, "pglost")
    item = create_item(c, token, "x")
    lock = TableLock(pg, db, "items")
    try:
        # The read first: it waits for the lock inside PostgreSQL, and the
        # write is pipelined behind it on the one connection, so the write
        # has had no answer at all when the connection goes. (A statement
        # the server is running when it cuts the session gets an error
        # first: that write would be known not made.)
        rc, r_box = in_thread(lambda: srv.client().get("/v1/items/" + item["id"]))
        poll(waiting_on_lock(pg, db, 1), what="the read waiting for the lock")
        poll(lambda: store_depth(srv) == 1, what="the read in flight")
        wc, w_box = in_thread(lambda: srv.client().post("/v1/items", {"content": "w"},
                                                        token=token))
        poll(lambda: store_depth(srv) == 2, what="both ops in flight")
        pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name <> 'locker'"
            " AND pid <> pg_backend_pid()", db=db,
        )  # fmt: skip
        rc.join(20)
        wc.join(20)
    finally:
        lock.release()
    assert "e" not in r_box and "e" not in w_box, (r_box, w_box)
    assert assert_problem(r_box["r"], 503)["detail"] == UNAVAILABLE
    assert assert_problem(w_box["r"], 503)["detail"] == UNKNOWN
    assert w_box["r"].header("Retry-After") == "1", w_box["r"]
    poll(lambda: readyz(srv) == 200, what="the pool back")
    assert c.get("/v1/items/" + item["id"]).status == 200
    # The cut write was never resent: only the first item exists.
    assert pg.psql("SELECT count(*) FROM items", db=db).split() == ["1"]
    c.close()
    assert "store: connection to the primary lost or refused" in srv.stdout_text()


def test_read_in_flight_times_out_at_its_deadline(ladder_server, pg):
    srv, db = pg_server(ladder_server, pg, "--threads", "1", "--store-timeout", "1s")
    c = srv.client()
    _, token = new_account(c, "pgslow")
    item = create_item(c, token, "x")
    lock = TableLock(pg, db, "items")
    try:
        doc = assert_problem(c.get("/v1/items/" + item["id"]), 503)
        assert doc["detail"] == TIMED_OUT, doc
    finally:
        lock.release()
    # The late answer was dropped; the connection goes on serving.
    assert c.get("/v1/items/" + item["id"]).status == 200
    c.close()


def test_multi_host_conninfo_skips_a_dead_host(ladder_server, pg):
    """libpq tries the hosts in order on a new socket each: the loops'
    non-blocking connects follow it to the live one."""
    db = pg.new_database()
    dead = free_port()
    conninfo = (
        "host=127.0.0.1,127.0.0.1 hostaddr=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s "
        "user=postgres target_session_attrs=read-write" % (dead, pg.port, db)
    )
    srv = ladder_server("--store", "postgres", "--pg-primary", conninfo, "--pg-pool", "2")
    c = srv.client()
    _, token = new_account(c, "pgmulti")
    item = create_item(c, token, "via the second host")
    assert c.get("/v1/items/" + item["id"]).json()["content"] == "via the second host"
    c.close()


def test_write_stuck_past_its_deadline_is_an_unknown_outcome(ladder_server, pg):
    """A write already sent is never timed out as 'not made': it waits for
    its COMMIT's answer up to store_timeout past its deadline, then the
    connection is closed and it ends as on a loss: 503, outcome unknown.
    Here PostgreSQL did go on to commit it once the lock was gone, which is
    why 'unknown' is the honest answer."""
    srv, db = pg_server(ladder_server, pg, "--threads", "1", "--store-timeout", "1s")
    c = srv.client()
    _, token = new_account(c, "pgstuck")
    lock = TableLock(pg, db, "items")
    try:
        doc = assert_problem(c.post("/v1/items", {"content": "stuck"}, token=token), 503)
        assert doc["detail"] == UNKNOWN, doc
    finally:
        lock.release()
    poll(
        lambda: pg.psql("SELECT count(*) FROM items WHERE content = 'stuck'", db=db).split()
        == ["1"],
        what="the cut write committed by the server",
    )
    poll(lambda: readyz(srv) == 200, what="the pool back")
    assert create_item(c, token, "after")["content"] == "after"
    c.close()


def test_create_queued_for_a_batch_times_out_at_its_deadline(ladder_server, pg):
    """An item create queued behind its connection's write batch (not sent)
    ends in TIMEOUT at its deadline: 503 'nothing was changed', and it is
    never made; the batch in flight, stuck on a lock, ends as a write
    stuck past its deadline does (outcome unknown)."""
    srv, db = pg_server(ladder_server, pg, "--threads", "1", "--pg-pool", "1",
                        "--store-timeout", "2s")  # fmt: skip
    c = srv.client()
    _, token = new_account(c, "pgqueued")
    lock = TableLock(pg, db, "items", mode="SHARE")
    try:
        first = in_thread(lambda: srv.client().post("/v1/items", {"content": "stuck"},
                                                    token=token))
        poll(waiting_on_lock(pg, db, 1), what="the batch waiting for the lock")
        doc = assert_problem(c.post("/v1/items", {"content": "queued"}, token=token), 503)
        assert doc["detail"] == TIMED_OUT, doc
        first[0].join(30)
        assert "e" not in first[1], first[1]
        assert assert_problem(first[1]["r"], 503)["detail"] == UNKNOWN
    finally:
        lock.release()
    poll(
        lambda: pg.psql("SELECT count(*) FROM items WHERE content = 'stuck'", db=db).split()
        == ["1"],
        what="the cut batch committed by the server",
    )
    assert pg.psql("SELECT count(*) FROM items WHERE content = 'queued'", db=db).split() == ["0"]
    poll(lambda: readyz(srv) == 200, what="the pool back")
    assert create_item(c, token, "after")["content"] == "after"
    c.close()


# ---- several app nodes on one database ----------------------------------------


def test_two_nodes_make_ids_in_windows_of_their_own(ladder_server, pg):
    """Two app nodes creating at once on one database: each makes its ids in
    its own window of the ids' sequence bits (migration 4), so no create
    clashes with the other node's, whatever the two clocks say."""
    db = pg.new_database()
    flags = (
        "--store", "postgres", "--pg-primary", pg.conninfo(db),
        "--token-keys", "k1:" + os.urandom(32).hex(),  # a token is good on both nodes
    )  # fmt: skip
    nodes = [ladder_server(*flags), ladder_server(*flags)]
    c = nodes[0].client()
    _, token = new_account(c)
    c.close()
    made = {0: [], 1: []}
    bad = []

    def writer(n):
        cl = nodes[n].client()
        try:
            for i in range(150):
                r = cl.post("/v1/items", {"content": "n%d-%d" % (n, i)}, token=token)
                if r.status != 201:
                    bad.append(r)
                    return
                made[n].append(int(r.json()["id"]))
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1, 0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert bad == []
    assert len(made[0]) == len(made[1]) == 300
    windows = [{(i & 1023) // 64 for i in made[n]} for n in (0, 1)]
    assert len(windows[0]) == 1 and len(windows[1]) == 1, windows
    assert windows[0] != windows[1]
    assert pg.psql("SELECT count(DISTINCT id) FROM items", db=db).split() == ["600"]


def test_a_restarted_node_takes_a_free_id_window(ladder_server, pg):
    """Windows are leased (advisory locks held for the node's life), not
    handed out in turn: a node that starts after another stopped takes the
    free window again, so restarts never make two live nodes share one."""
    db = pg.new_database()
    flags = (
        "--store", "postgres", "--pg-primary", pg.conninfo(db),
        "--token-keys", "k1:" + os.urandom(32).hex(),
    )  # fmt: skip

    def window(srv, token):
        c = srv.client()
        try:
            return (int(create_item(c, token, "w")["id"]) & 1023) // 64
        finally:
            c.close()

    a = ladder_server(*flags)
    c = a.client()
    _, token = new_account(c)
    c.close()
    b = ladder_server(*flags)
    wa, wb = window(a, token), window(b, token)
    assert wa != wb
    for _ in range(3):
        a.stop()
        a = ladder_server(*flags)
        assert window(a, token) == wa
        assert window(b, token) == wb


def test_a_node_keeps_its_id_window_when_its_sessions_are_cut(ladder_server, pg):
    """What a failover does to a node's lease: the new primary has none of
    the node's sessions, so none of its locks. Every session of node A is
    cut here (the same for the lease); A's pools reconnect and take its
    window again (shared, docs/store.md), so node B, started once A writes
    again, takes another window instead of A's."""
    db = pg.new_database()
    flags = (
        "--store", "postgres", "--pg-primary", pg.conninfo(db),
        "--token-keys", "k1:" + os.urandom(32).hex(),
    )  # fmt: skip

    def window(srv, token):
        c = srv.client()
        try:
            return (int(create_item(c, token, "w")["id"]) & 1023) // 64
        finally:
            c.close()

    a = ladder_server(*flags)
    c = a.client()
    _, token = new_account(c)
    c.close()
    wa = window(a, token)
    cut = pg.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = '%s' AND pid <> pg_backend_pid()" % db
    )
    assert int(cut) >= 2, cut  # the lease and the loop's pool

    def writes():
        cl = a.client()
        try:
            return cl.post("/v1/items", {"content": "again"}, token=token).status == 201
        finally:
            cl.close()

    poll(writes, what="node A writing again")
    b = ladder_server(*flags)
    assert window(b, token) != wa
    assert window(a, token) == wa


def test_host_name_in_conninfo(ladder_server, pg):
    """A host name (not hostaddr) is looked up on the thread pool, never by
    libpq on a loop, at every connection attempt: the node connects,
    reconnects after an outage, and serves."""
    db = pg.new_database()
    conninfo = "host=localhost port=%d dbname=%s user=postgres" % (pg.port, db)
    srv = ladder_server("--store", "postgres", "--pg-primary", conninfo, "--pg-pool", "2")
    c = srv.client()
    _, token = new_account(c, "pgname")
    item = create_item(c, token, "via localhost")
    assert c.get("/v1/items/" + item["id"]).json()["content"] == "via localhost"
    pg.halt()
    poll(lambda: readyz(srv) == 503, what="/readyz 503 with the primary down")
    pg.resume()
    poll(lambda: readyz(srv) == 200, what="/readyz 200 once localhost answers again")
    assert create_item(c, token, "after")["content"] == "after"
    c.close()


def test_concurrent_reads_each_get_their_own_answer(ladder_server, pg):
    """Reads arriving together may share one batch (one Sync): each is
    answered with its own rows, a missing item with 404, whatever its
    neighbours are."""
    srv, db = pg_server(ladder_server, pg, "--cache", "none")
    c = srv.client()
    _, token = new_account(c, "pgbatch")
    items = [create_item(c, token, "item %d" % i) for i in range(8)]
    c.close()

    def reader(k):
        cc = srv.client()
        try:
            got = []
            for n in range(20):
                it = items[(k + n) % len(items)]
                r = cc.get("/v1/items/" + it["id"])
                got.append((r.status, r.json()["content"]))
                r = cc.get("/v1/items/%d" % (1234567890123 + k))
                got.append((r.status, r.json().get("content")))
            return got
        finally:
            cc.close()

    threads = [in_thread(lambda k=k: reader(k)) for k in range(16)]
    for k, (t, box) in enumerate(threads):
        t.join(timeout=60)
        assert "e" not in box, box
        want = []
        for n in range(20):
            want.append((200, items[(k + n) % len(items)]["content"]))
            want.append((404, None))
        assert box["r"] == want


def batch_buckets(srv):
    """ladder_store_write_batch_size's cumulative buckets, by bound."""
    with srv.conn() as c:
        r = c.request("GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.content().decode().splitlines():
        if line.startswith('ladder_store_write_batch_size_bucket{le="'):
            k, v = line.rsplit(" ", 1)
            out[k.split('"')[1]] = int(v)
    return out


def test_item_creates_share_a_batch_and_each_gets_its_own_answer(ladder_server, pg):
    """Item creates queued while the connection's previous batch commits go
    as one transaction: each gets its own answer (201 with its content; a
    create for an owner that no longer exists 401, without undoing its
    neighbours), the ones made share the batch's one Ladder-Session token,
    and the batch shows in ladder_store_write_batch_size."""
    srv, db = pg_server(ladder_server, pg, "--threads", "1", "--pg-pool", "1",
                        "--cache", "none", "--store-timeout", "20s")  # fmt: skip
    c = srv.client()
    alice, token = new_account(c, "pgwb")
    gone, gone_token = new_account(c, "pgwbgone")
    # Tokens are signed, not stored: this one stays valid for a user whose
    # row is gone, so its create reaches the store with a missing owner.
    pg.psql("DELETE FROM users WHERE id = %s" % gone["id"], db=db)
    before = batch_buckets(srv)
    lock = TableLock(pg, db, "items", mode="SHARE")
    try:
        # The first create waits for the lock inside PostgreSQL, so the
        # connection's batch is in flight and the next ones queue behind
        # it; they all go as the next batch once its COMMIT returns.
        first = in_thread(lambda: srv.client().post("/v1/items", {"content": "first"},
                                                    token=token))
        poll(waiting_on_lock(pg, db, 1), what="the first create waiting for the lock")
        poll(lambda: store_depth(srv) == 1, what="the first create in flight")
        makers = [in_thread(lambda k=k: srv.client().post("/v1/items", {"content": "item %d" % k},
                                                          token=token))
                  for k in range(5)]  # fmt: skip
        orphan = in_thread(lambda: srv.client().post("/v1/items", {"content": "orphan"},
                                                     token=gone_token))
        poll(lambda: store_depth(srv) == 7, what="six creates queued behind the first")
    finally:
        lock.release()
    for t, _ in [first, orphan] + makers:
        t.join(30)
    boxes = [first[1], orphan[1]] + [b for _, b in makers]
    assert all("e" not in b and "r" in b for b in boxes), boxes
    assert first[1]["r"].status == 201, first[1]["r"]
    doc = assert_problem(orphan[1]["r"], 401)
    assert doc["detail"] == "the token's user does not exist"
    sessions = set()
    for k, (_, box) in enumerate(makers):
        r = box["r"]
        assert r.status == 201, r
        assert r.json()["content"] == "item %d" % k
        sessions.add(r.header("Ladder-Session"))
    assert len(sessions) == 1 and None not in sessions, sessions
    after = batch_buckets(srv)
    # One batch of 6 (5 to 8) and no other above 4 since "before".
    assert after["8"] - before["8"] - (after["4"] - before["4"]) == 1, (before, after)
    assert after["+Inf"] - after["8"] == before["+Inf"] - before["8"]
    assert pg.psql("SELECT count(*) FROM items WHERE user_id = %s" % alice["id"],
                   db=db).split() == ["6"]  # fmt: skip
    assert pg.psql("SELECT count(*) FROM items", db=db).split() == ["6"]
    c.close()


def nasty_contents(n, seed):
    """n contents of 1-1024 bytes of UTF-8 made mostly of what an array
    literal or a bytea escape trips on; the first ones fixed."""
    rnd = random.Random(seed)
    bits = ['"', "\\", "{", "}", ",", "'", " ", "NULL", "\\x", "\u00e9", "\u20ac",
            "\U0001f600", "\n", "\t", "a", "(", ")", "$1", ";"]  # fmt: skip
    fixed = ['{"a","b"}', "\\\\x00\\", "a,b,{c}", "NULL", "\u00e9\U0001f600\"'\\", " "]
    out = fixed[:n]
    while len(out) < n:
        s = ""
        want = rnd.randint(1, 1024)
        while True:
            b = rnd.choice(bits)
            if len((s + b).encode()) > want:
                break
            s += b
        out.append(s or "{")
    return out


def test_batched_creates_keep_nasty_content_exactly(ladder_server, pg):
    """Item creates of one write batch go as arrays in one statement: each
    content (quotes, backslashes, braces, commas, multi-byte UTF-8, up to
    1024 bytes) comes back exactly from the API and is stored byte for byte,
    and the batch is one transaction (one Ladder-Session token)."""
    srv, db = pg_server(ladder_server, pg, "--threads", "1", "--pg-pool", "1",
                        "--cache", "none", "--store-timeout", "20s")  # fmt: skip
    c = srv.client()
    alice, token = new_account(c, "pgnasty")
    contents = nasty_contents(24, 8)
    contents[-1] = "\\" * 1024  # the largest, all of it escapes
    lock = TableLock(pg, db, "items", mode="SHARE")
    try:
        first = in_thread(lambda: srv.client().post("/v1/items", {"content": "first"},
                                                    token=token))
        poll(waiting_on_lock(pg, db, 1), what="the first create waiting for the lock")
        poll(lambda: store_depth(srv) == 1, what="the first create in flight")
        makers = [in_thread(lambda s=s: srv.client().post("/v1/items", {"content": s},
                                                          token=token))
                  for s in contents]  # fmt: skip
        poll(lambda: store_depth(srv) == 1 + len(contents),
             what="the creates queued behind the first")
    finally:
        lock.release()
    for t, _ in [first] + makers:
        t.join(30)
    assert first[1]["r"].status == 201, first[1]
    sessions = set()
    for want, (_, box) in zip(contents, makers):
        assert "e" not in box and "r" in box, box
        r = box["r"]
        assert r.status == 201, r
        assert r.json()["content"] == want
        sessions.add(r.header("Ladder-Session"))
        got = c.get("/v1/items/%s" % r.json()["id"], token=token)
        assert got.status == 200, got
        assert got.json()["content"] == want
        stored = pg.psql("SELECT encode(content, 'hex') FROM items WHERE id = %s"
                         % r.json()["id"], db=db).strip()  # fmt: skip
        assert stored == want.encode().hex()
    assert len(sessions) == 1 and None not in sessions, sessions
    assert pg.psql("SELECT count(*) FROM items WHERE user_id = %s" % alice["id"],
                   db=db).split() == [str(1 + len(contents))]  # fmt: skip
    c.close()
