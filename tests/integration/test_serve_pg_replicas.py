"""Reads on PostgreSQL replicas, and read-your-writes with Ladder-Session
(docs/api.md, docs/store.md).

The replica tests have a PostgreSQL cluster of their own (a primary and a
streaming replica made with pg_basebackup -R), whatever LADDER_STORE the
suite runs with; they pause the replica's replay, or stop it, under the
server's reads. The token tests at the end run on LADDER_STORE.

The servers run with --cache none: what is tested is where the store sends
each read, which a cache hit would hide.
"""

import re
import threading
import time

import pytest

from conftest import LADDER_STORE, run_cli
from ladder_http import assert_problem, create_item, metrics, new_account, poll
from pgreplicas import LOOPS, await_database, await_rotation, lsn, replayed, replica_server

TOKEN = re.compile(r"^v1\.[0-9a-f]{1,16}$")
BAD_TOKEN = (
    "the Ladder-Session header is not a token this service gave out: send back the value of "
    "a write's Ladder-Session response header, or none"
)

REPLICA_READS = 'ladder_pg_reads_total{target="replica1"}'
PRIMARY_READS = 'ladder_pg_reads_total{target="primary"}'
TOKEN_FORCED = "ladder_pg_token_primary_reads_total"
IN_ROTATION = 'ladder_pg_replica_in_rotation{replica="1"}'
UP = 'ladder_pg_replica_up{replica="1"}'
OUTS = 'ladder_pg_replica_rotation_changes_total{replica="1",to="out"}'
INS = 'ladder_pg_replica_rotation_changes_total{replica="1",to="in"}'
REPLICA_BREAKER = 'ladder_breaker_state{dep="replica1",name="store",loop="%d"}'


def delta(after, before, key):
    return after[key] - before[key]


def get_content(c, item_id, session=None):
    r = c.get("/v1/items/" + item_id, headers={"Ladder-Session": session} if session else None)
    assert r.status == 200, r
    return r.json()["content"]


def replica_answer(srv, c, item_id, session=None, series=REPLICA_READS):
    """The item's content when a replica (the one series counts) answered
    this read, else None (c's connection stays on one loop; the metrics come
    from another connection, and count no store read)."""
    before = metrics(srv)
    content = get_content(c, item_id, session)
    return content if delta(metrics(srv), before, series) == 1 else None


# ---- read-your-writes while a replica's replay is paused ----------------------


def test_token_reads_see_the_write_while_replay_is_paused(ladder_server, pgr):
    srv, db = replica_server(ladder_server, pgr, "--max-replica-lag", "1h")
    replica = pgr.replicas[0]
    c = srv.client()
    user, token = new_account(c, "ryw")
    r = c.post("/v1/items", {"content": "one"}, token=token)
    assert r.status == 201, r
    item = r.json()
    s1 = r.header("Ladder-Session")
    assert TOKEN.match(s1), s1
    poll(lambda: replayed(replica, s1), what="the replica at the create")
    # Every loop reads the replica's position (a sample per 100 ms): a read
    # with the create's token is then one a replica may answer.
    poll(lambda: replica_answer(srv, c, item["id"], s1) == "one",
         what="a token read answered by the replica")  # fmt: skip

    replica.replay_pause()
    r = c.put("/v1/items/" + item["id"], {"content": "two"}, token=token,
              headers={"If-Match": r.header("ETag")})  # fmt: skip
    assert r.status == 200, r
    s2 = r.header("Ladder-Session")
    assert TOKEN.match(s2), s2
    assert lsn(s2) > lsn(s1)

    # With the update's token: the write, every time, from the primary (the
    # replica in rotation has not replayed it).
    m0 = metrics(srv)
    for _ in range(50):
        assert get_content(c, item["id"], s2) == "two"
    r = c.get("/v1/users/%s/items" % user["id"], headers={"Ladder-Session": s2})
    assert r.status == 200, r
    assert [i["content"] for i in r.json()["items"]] == ["two"]
    m1 = metrics(srv)
    assert delta(m1, m0, TOKEN_FORCED) == 51
    assert delta(m1, m0, PRIMARY_READS) == 51
    assert delta(m1, m0, REPLICA_READS) == 0

    # Without a token: the replica, stale within the bound (1 h).
    for _ in range(50):
        assert get_content(c, item["id"]) == "one"
    r = c.get("/v1/users/%s/items" % user["id"])
    assert [i["content"] for i in r.json()["items"]] == ["one"]
    m2 = metrics(srv)
    assert delta(m2, m1, REPLICA_READS) == 51
    assert delta(m2, m1, PRIMARY_READS) == 0
    assert m2[IN_ROTATION] == LOOPS

    # The create's token is one the paused replica satisfies.
    for _ in range(10):
        assert get_content(c, item["id"], s1) == "one"
    m3 = metrics(srv)
    assert delta(m3, m2, REPLICA_READS) == 10
    assert delta(m3, m2, TOKEN_FORCED) == 0

    # Replay resumed: the replica catches up, and the update's token is
    # answered there.
    replica.replay_resume()
    poll(lambda: replayed(replica, s2), what="the replica at the update")
    poll(lambda: replica_answer(srv, c, item["id"], s2) == "two",
         what="the update read from the replica")  # fmt: skip
    assert get_content(c, item["id"]) == "two"
    c.close()


def test_lagging_replica_leaves_rotation_and_comes_back(ladder_server, pgr):
    srv, db = replica_server(ladder_server, pgr, "--max-replica-lag", "500ms")
    replica = pgr.replicas[0]
    c = srv.client()
    user, token = new_account(c, "lag")
    item = create_item(c, token, "one")
    m0 = metrics(srv)

    replica.replay_pause()
    r = c.put("/v1/items/" + item["id"], {"content": "two"}, token=token,
              headers={"If-Match": '"%s.1"' % item["id"]})  # fmt: skip
    assert r.status == 200, r
    # The write the replica misses makes its lag grow from now; past the
    # bound every loop takes it out of rotation.
    poll(lambda: metrics(srv)[IN_ROTATION] == 0, what="the replica out of rotation")
    m1 = metrics(srv)
    assert delta(m1, m0, OUTS) == LOOPS
    assert m1[UP] == LOOPS  # still connected: out for its lag alone
    assert m1['ladder_pg_replica_lag_seconds{replica="1"}'] > 0.5
    with srv.conn() as dc:
        st = dc.request("GET", "/debug/stats").json()["store"]
    assert st["max_replica_lag_ms"] == 500
    assert [(r["replica"], r["in_rotation_loops"], r["up_loops"], r["rotation_outs"])
            for r in st["replicas"]] == [(1, 0, LOOPS, m1[OUTS])]  # fmt: skip
    assert st["replicas"][0]["lag_ms"] > 500

    # Out of rotation: reads without a token come from the primary, fresh.
    for _ in range(30):
        assert get_content(c, item["id"]) == "two"
    m2 = metrics(srv)
    assert delta(m2, m1, PRIMARY_READS) == 30
    assert delta(m2, m1, REPLICA_READS) == 0
    assert delta(m2, m1, TOKEN_FORCED) == 0

    replica.replay_resume()
    poll(lambda: metrics(srv)[IN_ROTATION] == LOOPS, what="the replica back in rotation")
    m3 = metrics(srv)
    assert delta(m3, m0, INS) == LOOPS
    for _ in range(30):
        assert get_content(c, item["id"]) == "two"
    m4 = metrics(srv)
    assert delta(m4, m3, REPLICA_READS) == 30
    assert delta(m4, m3, PRIMARY_READS) == 0
    c.close()


def test_token_read_goes_to_the_replica_that_has_it(ladder_server, pgr):
    """Two replicas, one paused: a read with the token of a write the paused
    one lacks is answered by the other (its own replay position is what
    counts, not any replica's), never by the paused one, and not by the
    primary either. The token works on another node of the same database."""
    pgr.add_replica()
    r1 = pgr.replicas[0]
    srv, db = replica_server(ladder_server, pgr, "--max-replica-lag", "1h")
    other, _ = replica_server(ladder_server, pgr, "--max-replica-lag", "1h", db=db)
    c = srv.client()
    user, token = new_account(c, "two")
    item = create_item(c, token, "one")
    r1.replay_pause()
    r = c.put("/v1/items/" + item["id"], {"content": "two"}, token=token,
              headers={"If-Match": '"%s.1"' % item["id"]})  # fmt: skip
    assert r.status == 200, r
    s2 = r.header("Ladder-Session")
    r2_reads = 'ladder_pg_reads_total{target="replica2"}'
    poll(lambda: replica_answer(srv, c, item["id"], s2, r2_reads) == "two",
         what="the token read on replica 2")  # fmt: skip
    m0 = metrics(srv)
    for _ in range(30):
        assert get_content(c, item["id"], s2) == "two"
    m1 = metrics(srv)
    assert delta(m1, m0, r2_reads) == 30
    assert delta(m1, m0, REPLICA_READS) == 0
    assert delta(m1, m0, PRIMARY_READS) == 0
    assert delta(m1, m0, TOKEN_FORCED) == 0

    # The other node never saw the write: the token alone sends its reads
    # to a node that has it.
    oc = other.client()
    for _ in range(30):
        assert get_content(oc, item["id"], s2) == "two"
    o1 = metrics(other)
    assert o1[REPLICA_READS] == 0
    assert o1[r2_reads] + o1[PRIMARY_READS] == 30
    r1.replay_resume()
    c.close()
    oc.close()


# ---- a replica stopped under read load ----------------------------------------


class Readers:
    """Threads that read items in a loop until stopped, keeping every
    answer that was not a 200 with the item's own content."""

    def __init__(self, srv, items, n=4):
        self.srv = srv
        self.items = items
        self.stop_ev = threading.Event()
        self.bad = []
        self.count = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]
        for t in self.threads:
            t.start()

    def run(self, k):
        c = self.srv.client()
        i = k
        try:
            while not self.stop_ev.is_set():
                it = self.items[i % len(self.items)]
                i += 1
                r = c.get("/v1/items/" + it["id"])
                with self.lock:
                    self.count += 1
                    if r.status != 200 or r.json()["content"] != it["content"]:
                        self.bad.append(r)
        except Exception as e:  # reported by the test
            with self.lock:
                self.bad.append(e)
        finally:
            c.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=30)


def test_replica_stopped_under_read_load(ladder_server, pgr):
    srv, db = replica_server(ladder_server, pgr)
    replica = pgr.replicas[0]
    c = srv.client()
    user, token = new_account(c, "stop")
    items = [create_item(c, token, "item %d" % i) for i in range(5)]
    poll(lambda: replayed(replica, "v1.%x" % int(
        pgr.psql("SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn").strip())),
        what="the replica at the items")  # fmt: skip
    readers = Readers(srv, items)
    try:
        m0 = metrics(srv)
        poll(lambda: delta(metrics(srv), m0, REPLICA_READS) >= 50, what="reads on the replica")
        replica.halt()
        poll(lambda: metrics(srv)[UP] == 0, what="the replica down on every loop")
        # Its breaker opens on every loop (connections lost, reconnects
        # refused), and it stays out of rotation until the breaker closes.
        poll(lambda: all(metrics(srv)[REPLICA_BREAKER % i] == 1 for i in range(LOOPS)),
             what="the replica's breaker open on every loop")  # fmt: skip
        m1 = metrics(srv)
        assert m1[IN_ROTATION] == 0
        poll(lambda: delta(metrics(srv), m1, PRIMARY_READS) >= 50, what="reads on the primary")
        assert delta(metrics(srv), m1, REPLICA_READS) == 0
        replica.resume()
        poll(lambda: metrics(srv)[IN_ROTATION] == LOOPS, what="the replica back")
        assert all(metrics(srv)[REPLICA_BREAKER % i] == 0 for i in range(LOOPS))
        m2 = metrics(srv)
        poll(lambda: delta(metrics(srv), m2, REPLICA_READS) >= 50, what="reads on the replica")
    finally:
        readers.stop()
    assert readers.bad == []
    assert readers.count >= 150
    assert "store: connection to a replica lost or refused" in srv.stdout_text()
    assert '"msg":"replica1 breaker open"' in srv.stdout_text()
    c.close()


# ---- the token on whatever store the suite runs ---------------------------------


def test_session_token_on_the_suite_store(ladder_server):
    """Postgres answers every write with a token; SQLite (one node) gives
    none. Both accept a well-formed token on any request (SQLite ignores
    it) and refuse a malformed one, naming the header."""
    srv = ladder_server()
    c = srv.client()
    user, token = new_account(c, "tok")
    r = c.post("/v1/items", {"content": "x"}, token=token)
    assert r.status == 201, r
    if LADDER_STORE == "postgres":
        assert TOKEN.match(r.header("Ladder-Session")), r
    else:
        assert r.header("Ladder-Session") is None, r
    item = r.json()
    assert get_content(c, item["id"], "v1.16b3748") == "x"
    assert get_content(c, item["id"], "v1.0") == "x"
    # A read's answer carries no token (nothing was written).
    assert c.get("/v1/items/" + item["id"]).header("Ladder-Session") is None

    for bad in ("", "v2.10", "v1.", "v1.xyz", "v1." + "f" * 17, "v1.1, v1.2", "0/16B3748"):
        r = c.get("/v1/items/" + item["id"], headers={"Ladder-Session": bad})
        assert assert_problem(r, 400)["detail"] == BAD_TOKEN, (bad, r)
        r = c.post("/v1/items", {"content": "not made"}, token=token,
                   headers={"Ladder-Session": bad})  # fmt: skip
        assert assert_problem(r, 400)["detail"] == BAD_TOKEN, (bad, r)
    r = c.get("/v1/users/%s/items" % user["id"])
    assert [i["content"] for i in r.json()["items"]] == ["x"]
    # A replayed answer (Idempotency-Key) carries a token as good as the
    # first answer's.
    key = {"Idempotency-Key": '"ryw-%s"' % user["id"]}
    first = c.post("/v1/items", {"content": "keyed"}, token=token, headers=key)
    again = c.post("/v1/items", {"content": "keyed"}, token=token, headers=key)
    assert (first.status, again.status) == (201, 201), (first, again)
    assert again.header("Idempotent-Replayed") == "true", again
    if LADDER_STORE == "postgres":
        assert lsn(again.header("Ladder-Session")) >= lsn(first.header("Ladder-Session"))
    else:
        assert again.header("Ladder-Session") is None, again
    c.delete("/v1/items/" + first.json()["id"], token=token)
    # Every kind of write answers with a token on postgres.
    other = create_item(c, token, "gone soon")
    for r, status in (
        (c.patch("/v1/users/" + user["id"], {"display_name": "T"}, token=token), 200),
        (c.put("/v1/items/" + item["id"], {"content": "y"}, token=token,
               headers={"If-Match": '"%s.1"' % item["id"]}), 200),
        (c.delete("/v1/items/" + other["id"], token=token), 204),
    ):  # fmt: skip
        assert r.status == status, r
        if LADDER_STORE == "postgres":
            assert TOKEN.match(r.header("Ladder-Session")), r
        else:
            assert r.header("Ladder-Session") is None, r
    c.close()


# ---- configuration ---------------------------------------------------------------


def test_print_config_never_shows_the_replicas(tmp_path):
    p = run_cli(
        "serve", "--store", "postgres", "--data", str(tmp_path / "d"),
        "--pg-primary", "postgresql://ladder:pw-primary@127.0.0.1:5432/ladder",
        "--pg-replicas",
        "postgresql://ladder:pw-one@127.0.0.1:5433/ladder,hostaddr=127.0.0.1 password=pw-two",
        "--max-replica-lag", "250ms", "--print-config",
    )  # fmt: skip
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    for secret in ("pw-primary", "pw-one", "pw-two", "5433"):
        assert secret not in out and secret not in p.stderr.decode(), secret
    assert "replicas = (set) ; flag" in out, out
    assert "max_replica_lag = 250ms ; flag" in out, out


@pytest.mark.parametrize(
    "replicas,message",
    [
        ("hostaddr=127.0.0.1 port=1,,hostaddr=127.0.0.1 port=2", "replica 2 is empty"),
        ("hostaddr=127.0.0.1 port=1,", "replica 2 is empty"),
        ("hostaddr=127.0.0.1 port=1,nonsense=1 password=pw-secret",
         "replica 2 is not a valid conninfo: libpq cannot parse it"),
        (",".join("hostaddr=127.0.0.%d" % i for i in range(1, 10)), "more than 8 replicas"),
        ("host=127.0.0.1,127.0.0.2 port=1,2",
         "replica 1 is not a valid conninfo: it names several hosts (host): give each replica "
         "its own entry"),
        ("hostaddr=127.0.0.1 port=1,postgresql://127.0.0.1:1,127.0.0.2:2/db",
         "replica 2 is not a valid conninfo: it names several hosts (host): give each replica "
         "its own entry"),
    ],
)  # fmt: skip
def test_bad_replica_list_is_a_usage_error(tmp_path, replicas, message):
    # Checked before anything connects: the primary here does not exist.
    p = run_cli(
        "migrate", "--store", "postgres", "--data", str(tmp_path / "d"),
        "--pg-primary", "hostaddr=127.0.0.1 port=1", "--pg-replicas", replicas,
    )  # fmt: skip
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert "ladder: store postgres: --pg-replicas: " + message in err, err
    assert "pw-secret" not in err


def test_max_replica_lag_range(tmp_path):
    p = run_cli("serve", "--store", "postgres", "--data", str(tmp_path / "d"),
                "--max-replica-lag", "5ms", "--print-config")  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert "--max-replica-lag" in p.stderr.decode(), p.stderr


def test_cache_fills_come_from_the_primary(ladder_server, pgr):
    """A response cache is filled from the primary: with the replica's
    replay paused and a bound of an hour, a read that misses the cache
    still fills it with the update, never with the replica's older row
    (a cache shared by the nodes would keep that for its whole TTL)."""
    srv, db = replica_server(ladder_server, pgr, "--max-replica-lag", "1h", "--cache", "local")
    replica = pgr.replicas[0]
    c = srv.client()
    _, token = new_account(c, "fill")
    item = create_item(c, token, "one")
    poll(lambda: replica.psql("SELECT count(*) FROM items", db=db).split() == ["1"],
         what="the create on the replica")  # fmt: skip
    replica.replay_pause()
    r = c.put("/v1/items/" + item["id"], {"content": "two"}, token=token,
              headers={"If-Match": '"%s.1"' % item["id"]})  # fmt: skip
    assert r.status == 200, r
    m0 = metrics(srv)
    for _ in range(20):
        assert get_content(c, item["id"]) == "two"
    m1 = metrics(srv)
    # The first read missed and filled from the primary; the rest were hits.
    assert delta(m1, m0, PRIMARY_READS) == 1
    assert delta(m1, m0, REPLICA_READS) == 0
    replica.replay_resume()
    c.close()


def test_token_covers_a_commit_made_with_synchronous_commit_off(ladder_server, pgr):
    """Tokens hold with synchronous_commit off (here the database's
    setting): COMMIT returns before its record is flushed, so the token is
    then the insert position, past the commit (pg_replica.c). The WAL
    writer is slowed to 10 s. PostgreSQL 15 here flushed such commits
    before the replica's position was next sampled, so a token taken from
    the flush position passed this test too: it checks the tokens under
    that setting, not the choice of position."""
    db = pgr.new_database()
    pgr.psql("ALTER SYSTEM SET wal_writer_delay = '10s'")
    pgr.psql("SELECT pg_reload_conf()")
    pgr.psql("ALTER DATABASE %s SET synchronous_commit = off" % db)
    srv, _ = replica_server(ladder_server, pgr, "--max-replica-lag", "1h", db=db)
    c = srv.client()
    _, token = new_account(c, "async")
    for i in range(3):
        r = c.post("/v1/items", {"content": "async %d" % i}, token=token)
        assert r.status == 201, r
        s = r.header("Ladder-Session")
        assert TOKEN.match(s), s
        # Read with the token for a while: long enough for the replica to
        # replay a token that was only the flush position, and for the
        # server to sample that (every 100 ms); each answer must have it.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            g = c.get("/v1/items/" + r.json()["id"], headers={"Ladder-Session": s})
            assert g.status == 200, g
            assert g.json()["content"] == "async %d" % i
            time.sleep(0.02)
    c.close()


def test_replica_named_by_host_name(ladder_server, pgr):
    """A replica's conninfo with a host name (no hostaddr) is resolved off
    the loop like the primary's: the replica joins the rotation and answers
    reads."""
    db = pgr.new_database()
    await_database(pgr, db)
    named = ",".join(
        "host=localhost port=%d dbname=%s user=postgres" % (r.port, db) for r in pgr.replicas
    )
    srv = ladder_server(
        "--store", "postgres", "--cache", "none", "--pg-primary", pgr.conninfo(db),
        "--pg-replicas", named,
    )  # fmt: skip
    await_rotation(srv, len(pgr.replicas))
    c = srv.client()
    _, token = new_account(c, "repname")
    r = c.post("/v1/items", {"content": "via a named replica"}, token=token)
    assert r.status == 201, r
    item = r.json()
    # A read without a token may go to a replica that has not replayed the
    # create yet (a 404 then): wait until every replica has.
    session = r.header("Ladder-Session")
    for replica in pgr.replicas:
        poll(lambda: replayed(replica, session), what="the replica at the create")
    poll(
        lambda: replica_answer(srv, c, item["id"]) == "via a named replica",
        what="a replica answering the read",
    )
    c.close()


BATCH_ONE = 'ladder_store_write_batch_size_bucket{le="1"}'
BATCH_ALL = 'ladder_store_write_batch_size_bucket{le="+Inf"}'


def test_every_batched_create_has_a_token_the_replica_honours(ladder_server, pgr):
    """Item creates made in write batches (one transaction, one commit
    position read after its COMMIT for all of them): with the replica's
    replay paused, no create's token is one the replica satisfies, so each
    token read goes to the primary and sees its item; once the replica has
    replayed the last token, every token read is the replica's and sees its
    item too."""
    srv, db = replica_server(ladder_server, pgr, "--max-replica-lag", "1h", "--pg-pool", "1")
    replica = pgr.replicas[0]
    c = srv.client()
    _, token = new_account(c, "rywbatch")
    replica.replay_pause()

    def maker(k):
        cc = srv.client()
        try:
            out = []
            for n in range(8):
                r = cc.post("/v1/items", {"content": "w%d.%d" % (k, n)}, token=token)
                out.append((r.status, r.json().get("id"), r.json().get("content"),
                            r.header("Ladder-Session")))  # fmt: skip
            return out
        finally:
            cc.close()

    created = []
    for _ in range(10):
        before = metrics(srv)
        threads = []
        for k in range(8):
            box = {}
            t = threading.Thread(target=lambda k=k, box=box: box.update(r=maker(k)))
            t.start()
            threads.append((t, box))
        for t, box in threads:
            t.join(60)
            assert "r" in box, "a client thread did not finish"
            created += box["r"]
        after = metrics(srv)
        if delta(after, before, BATCH_ONE) < delta(after, before, BATCH_ALL):
            break  # a batch of more than one create happened
    else:
        raise AssertionError("no write batch of more than one create in 10 rounds")
    for status, item_id, content, session in created:
        assert status == 201 and TOKEN.match(session or ""), (status, session)

    m0 = metrics(srv)
    for _, item_id, content, session in created:
        assert get_content(c, item_id, session) == content
    m1 = metrics(srv)
    assert delta(m1, m0, TOKEN_FORCED) == len(created)
    assert delta(m1, m0, REPLICA_READS) == 0

    replica.replay_resume()
    last = max((s for *_, s in created), key=lsn)
    poll(lambda: replayed(replica, last), what="the replica at the last create")
    poll(lambda: replica_answer(srv, c, created[-1][1], last) == created[-1][2],
         what="a token read answered by the replica")  # fmt: skip
    m2 = metrics(srv)
    for _, item_id, content, session in created:
        assert get_content(c, item_id, session) == content
    m3 = metrics(srv)
    assert delta(m3, m2, REPLICA_READS) == len(created)
    c.close()
