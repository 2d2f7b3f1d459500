"""Idempotency-Key on the item writes (docs/api.md): a replay answers what
the first request answered (status, body, ETag, Location) with
Idempotent-Replayed: true and writes nothing; the same key with another
request is a 422; a repeat while the first is in flight is a 409; a failed
first attempt keeps nothing; keys belong to one user and expire.

Every test runs on the suite's LADDER_STORE (sqlite, sqlite-deferred,
postgres). The in-flight window is made real by holding the database: the
SQLite write lock from a second connection, or a PostgreSQL table lock from
a psql session, so the first request waits inside the store until the test
lets it go.
"""

import json
import os
import socket
import sqlite3
import struct
import subprocess
import time

import pytest

import conftest
from conftest import LADDER_STORE
from ladder_http import Conn, assert_problem, build_request, create_item, metric, new_account, poll
from pgcluster import PG_BIN

BAD_KEY = (
    "Idempotency-Key must be one quoted string (a Structured Fields sf-string) of 1 to 255 "
    "characters"
)
MISMATCH = (
    "this Idempotency-Key was used for another request (a different method, path or body)"
)
IN_FLIGHT = "a request with this Idempotency-Key is being processed; retry to get its answer"


def key_hdr(key):
    return [("Idempotency-Key", key)]


def keyed(client, method, target, key, token, obj=None, headers=()):
    h = key_hdr(key) + list(headers)
    if obj is None:
        return client.request(method, target, h, token=token)
    return client.request(method, target, h, token=token, json_body=obj)


def item_count(client, user_id):
    r = client.get("/v1/users/%s/items?limit=100" % user_id)
    assert r.status == 200, r
    return len(r.json()["items"])


def same_answer(a, b):
    assert a.status == b.status, (a, b)
    assert a.body == b.body, (a, b)
    for h in ("Content-Type", "ETag", "Location"):
        assert a.header(h) == b.header(h), (h, a, b)
    assert a.header("Idempotent-Replayed") is None, a
    assert b.header("Idempotent-Replayed") == "true", b


# ---- replay, mismatch, syntax ----------------------------------------------


def test_create_replay_is_the_same_answer_and_writes_nothing(server, client):
    user, token = new_account(client)
    first = keyed(client, "POST", "/v1/items", '"create-1"', token, {"content": "one"})
    assert first.status == 201, first
    again = keyed(client, "POST", "/v1/items", '"create-1"', token, {"content": "one"})
    same_answer(first, again)
    assert again.header("Location") == "/v1/items/" + first.json()["id"]
    assert item_count(client, user["id"]) == 1
    # A request without the key is an ordinary one.
    create_item(client, token, "one")
    assert item_count(client, user["id"]) == 2


def test_put_and_delete_replay(server, client):
    user, token = new_account(client)
    it = create_item(client, token, "v1")
    target = "/v1/items/" + it["id"]
    etag = '"%s.1"' % it["id"]
    first = keyed(client, "PUT", target, '"put-1"', token, {"content": "v2"}, [("If-Match", etag)])
    assert first.status == 200, first
    assert first.json()["version"] == 2
    # The If-Match is stale now; the replay still answers what the first
    # request answered, and the item stays at version 2.
    again = keyed(client, "PUT", target, '"put-1"', token, {"content": "v2"}, [("If-Match", etag)])
    same_answer(first, again)
    assert client.get(target).json()["version"] == 2

    first = keyed(client, "DELETE", target, '"del-1"', token)
    assert first.status == 204, first
    again = keyed(client, "DELETE", target, '"del-1"', token)
    same_answer(first, again)
    # Without the key, a second delete finds nothing.
    assert_problem(client.delete(target, token=token), 404)
    assert item_count(client, user["id"]) == 0


def test_same_key_another_request_is_422(server, client):
    _, token = new_account(client)
    it = create_item(client, token, "x")
    assert keyed(client, "POST", "/v1/items", '"k"', token, {"content": "a"}).status == 201
    before = metric(server, "ladder_idempotency_mismatches_total")
    # Another body, another method and path: each is another request.
    r = keyed(client, "POST", "/v1/items", '"k"', token, {"content": "b"})
    assert assert_problem(r, 422)["detail"] == MISMATCH
    r = keyed(client, "DELETE", "/v1/items/" + it["id"], '"k"', token)
    assert assert_problem(r, 422)["detail"] == MISMATCH
    assert metric(server, "ladder_idempotency_mismatches_total") == before + 2
    # The item was not deleted.
    assert client.get("/v1/items/" + it["id"]).status == 200


@pytest.mark.parametrize(
    "value",
    [
        "plain-token",  # not quoted
        '""',  # empty
        '"' + "a" * 256 + '"',  # too long
        '"abc',  # unterminated
        '"a\\nb"',  # an escape sf-string does not have
        '"abc";p=1',  # parameters
        '"a" "b"',
        '"caf\xe9"',  # not ASCII
    ],
)
def test_malformed_key_is_400(server, client, value):
    user, token = new_account(client)
    r = client.request(
        "POST", "/v1/items", [("Idempotency-Key", value.encode("latin-1"))], token=token,
        json_body={"content": "x"},
    )  # fmt: skip
    assert assert_problem(r, 400)["detail"] == BAD_KEY
    assert item_count(client, user["id"]) == 0


def test_two_key_fields_are_400(server, client):
    _, token = new_account(client)
    r = client.request(
        "POST", "/v1/items", [("Idempotency-Key", '"a"'), ("Idempotency-Key", '"a"')],
        token=token, json_body={"content": "x"},
    )  # fmt: skip
    assert assert_problem(r, 400)["detail"] == BAD_KEY


def test_longest_key_and_escapes_are_keys(server, client):
    user, token = new_account(client)
    longest = '"' + "k" * 255 + '"'
    a = keyed(client, "POST", "/v1/items", longest, token, {"content": "x"})
    assert a.status == 201, a
    assert keyed(client, "POST", "/v1/items", longest, token, {"content": "x"}).header(
        "Idempotent-Replayed"
    ) == "true"
    # "a\"b" and "a\\b" are two keys: both write.
    for k in ('"a\\"b"', '"a\\\\b"'):
        r = keyed(client, "POST", "/v1/items", k, token, {"content": "x"})
        assert r.status == 201 and r.header("Idempotent-Replayed") is None, r
    assert item_count(client, user["id"]) == 3


def test_keys_belong_to_their_user(server, client):
    ua, ta = new_account(client)
    ub, tb = new_account(client)
    a = keyed(client, "POST", "/v1/items", '"shared"', ta, {"content": "same"})
    b = keyed(client, "POST", "/v1/items", '"shared"', tb, {"content": "same"})
    assert a.status == 201 and b.status == 201, (a, b)
    assert b.header("Idempotent-Replayed") is None, b
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["user_id"] == ub["id"]
    assert item_count(client, ua["id"]) == 1 and item_count(client, ub["id"]) == 1


def test_failed_first_attempt_keeps_nothing(server, client):
    user, token = new_account(client)
    # Invalid content: 422, nothing kept, so the fixed retry is processed.
    r = keyed(client, "POST", "/v1/items", '"retry-me"', token, {"content": 5})
    assert r.status == 422, r
    r = keyed(client, "POST", "/v1/items", '"retry-me"', token, {"content": "fixed"})
    assert r.status == 201 and r.header("Idempotent-Replayed") is None, r
    it = r.json()
    # A stale If-Match: 412 kept nothing; the retry with the right one writes.
    target = "/v1/items/" + it["id"]
    r = keyed(client, "PUT", target, '"p"', token, {"content": "b"}, [("If-Match", '"%s.7"' % it["id"])])
    assert r.status == 412, r
    r = keyed(client, "PUT", target, '"p"', token, {"content": "b"}, [("If-Match", '"%s.1"' % it["id"])])
    assert r.status == 200 and r.header("Idempotent-Replayed") is None, r
    assert r.json()["version"] == 2


def test_timed_out_first_attempt_keeps_nothing(ladder_server):
    conftest.skip_unless_sqlite("the test holds the SQLite database's write lock")
    srv = ladder_server("--store-timeout", "1s")
    c = srv.client()
    user, token = new_account(c)
    lock = SqliteLock(srv)
    try:
        r = keyed(c, "POST", "/v1/items", '"t"', token, {"content": "x"})
        assert assert_problem(r, 503)["detail"] == (
            "the store did not answer in time; nothing was changed, retry"
        )
    finally:
        lock.release()
    r = keyed(c, "POST", "/v1/items", '"t"', token, {"content": "x"})
    assert r.status == 201 and r.header("Idempotent-Replayed") is None, r
    assert item_count(c, user["id"]) == 1
    c.close()


# ---- in flight ---------------------------------------------------------------


class SqliteLock:
    """The SQLite database's write lock, held from a second connection."""

    def __init__(self, srv):
        self.db = sqlite3.connect(str(srv.data_dir / "ladder.db"), timeout=10, isolation_level=None)
        self.db.execute("BEGIN IMMEDIATE")

    def release(self):
        if self.db is not None:
            self.db.execute("ROLLBACK")
            self.db.close()
            self.db = None


class PgLock:
    """ACCESS EXCLUSIVE on the items table, from a psql session, so the
    server's write waits inside PostgreSQL."""

    def __init__(self, srv):
        pg = conftest.pg_cluster()
        self.conninfo = conftest.pg_conninfo_for(srv.data_dir)
        self.p = subprocess.Popen(
            [os.path.join(PG_BIN, "psql"), "-X", "-q", "-d", self.conninfo],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.p.stdin.write(
            b"SET application_name = 'locker'; BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE;\n"
        )
        self.p.stdin.flush()
        db = self.conninfo.split("dbname=")[1].split()[0]
        self.pg, self.db = pg, db
        poll(
            lambda: pg.psql(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = 'locker' AND l.mode = 'AccessExclusiveLock'"
                " AND l.granted", db=db,
            ).split() == ["1"],
            what="the table lock",
        )  # fmt: skip

    def waiting(self):
        return self.pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND application_name <> 'locker'", db=self.db,
        ).split() == ["1"]  # fmt: skip

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write(b"ROLLBACK;\n\\q\n")
            self.p.stdin.close()
            self.p.wait(timeout=10)


def hold_store(srv):
    return PgLock(srv) if LADDER_STORE == "postgres" else SqliteLock(srv)


def raw_request(method, target, key, token, obj=None):
    headers = [("Authorization", "Bearer " + token), ("Idempotency-Key", key)]
    body = None
    if obj is not None:
        body = json.dumps(obj).encode()
        headers.append(("Content-Type", "application/json"))
    return build_request(method, target, headers, body)


def test_repeat_while_in_flight_is_409(ladder_server):
    # The SQLite writer waits for a held lock up to its busy timeout (5 s):
    # a store deadline below it keeps a slow run a 503, never a 500.
    srv = ladder_server("--store-timeout", "4s")
    c = srv.client()
    user, token = new_account(c)
    conflicts = metric(srv, "ladder_idempotency_conflicts_total")
    lock = hold_store(srv)
    first = Conn(srv.port, timeout=20)
    try:
        first.send(raw_request("POST", "/v1/items", '"inflight"', token, {"content": "x"}))
        # The first request is in flight (registered, waiting in the store).
        poll(lambda: metric(srv, "ladder_idempotency_in_flight") == 1, what="in flight")
        if LADDER_STORE == "postgres":
            poll(lock.waiting, what="the write waiting for the lock")
        r = keyed(c, "POST", "/v1/items", '"inflight"', token, {"content": "x"})
        assert assert_problem(r, 409)["detail"] == IN_FLIGHT
        assert r.header("Retry-After") == "1"
        assert metric(srv, "ladder_idempotency_conflicts_total") == conflicts + 1
    finally:
        lock.release()
    r1 = first.read_response("POST")
    first.close()
    assert r1.status == 201 and r1.header("Idempotent-Replayed") is None, r1
    r3 = keyed(c, "POST", "/v1/items", '"inflight"', token, {"content": "x"})
    same_answer(r1, r3)
    assert metric(srv, "ladder_idempotency_in_flight") == 0
    assert item_count(c, user["id"]) == 1
    c.close()


# ---- expiry -------------------------------------------------------------------


def test_expired_keys_are_reaped_and_then_processed_afresh(ladder_server):
    srv = ladder_server(
        "--idempotency-retention", "200ms", "--idempotency-reap-interval", "50ms",
        "--idempotency-reap-batch", "2",
    )  # fmt: skip
    c = srv.client()
    user, token = new_account(c)
    first = [keyed(c, "POST", "/v1/items", '"e%d"' % i, token, {"content": "x"}) for i in range(5)]
    assert all(r.status == 201 for r in first), first
    # Five keys, two per batch: the reaper takes them all in three.
    poll(lambda: metric(srv, "ladder_idempotency_reaped_total") == 5, what="five keys reaped")
    r = keyed(c, "POST", "/v1/items", '"e0"', token, {"content": "x"})
    assert r.status == 201 and r.header("Idempotent-Replayed") is None, r
    assert r.json()["id"] != first[0].json()["id"]
    assert item_count(c, user["id"]) == 6
    c.close()


def test_expired_key_not_yet_reaped_is_replaced(ladder_server):
    # The reaper comes by once an hour: an expired row is still there, and
    # a request with its key must be processed afresh all the same.
    srv = ladder_server(
        "--idempotency-retention", "100ms", "--idempotency-reap-interval", "1h"
    )  # fmt: skip
    c = srv.client()
    user, token = new_account(c)
    first = keyed(c, "POST", "/v1/items", '"old"', token, {"content": "x"})
    assert first.status == 201, first
    # Each repeat is a replay until the key expires; then one writes.
    fresh = poll(
        lambda: (lambda r: r if r.header("Idempotent-Replayed") is None else None)(
            keyed(c, "POST", "/v1/items", '"old"', token, {"content": "x"})
        ),
        what="the key to expire",
    )
    assert fresh.status == 201, fresh
    assert fresh.json()["id"] != first.json()["id"]
    # The old row was replaced in place: nothing was reaped.
    assert metric(srv, "ladder_idempotency_reaped_total") == 0
    assert item_count(c, user["id"]) == 2
    c.close()


# ---- the dropped-connection client -----------------------------------------


def send_and_reset(port, data):
    """Sends data, then resets the connection (SO_LINGER 0) without reading
    a byte of the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    return s


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def retry_until_answered(srv, data, method):
    """A retrying client: the same request (same key) until an answer that
    is not 409 comes back, on a fresh connection each time."""
    deadline = time.monotonic() + 20
    while True:
        with Conn(srv.port, timeout=10) as c:
            c.send(data)
            r = c.read_response(method)
        if r.status != 409:
            return r
        assert time.monotonic() < deadline, r
        time.sleep(0.02)


def test_retries_after_dropped_connections_write_once(ladder_server):
    """Every write's first answer is lost: the connection is reset after
    the server committed and before the client read a byte. The client
    retries each with the same key; the user ends with exactly one item per
    create, each update applied once, each delete once."""
    srv = ladder_server()
    c = srv.client()
    user, token = new_account(c)
    replays = metric(srv, "ladder_idempotency_replays_total")
    created = []
    for i in range(6):
        data = raw_request("POST", "/v1/items", '"c%d"' % i, token, {"content": "n%d" % i})
        s = send_and_reset(srv.port, data)
        # Cut between the commit and the read: the item is there.
        poll(lambda: item_count(c, user["id"]) == i + 1, what="the create committed")
        reset(s)
        r = retry_until_answered(srv, data, "POST")
        assert r.status == 201 and r.header("Idempotent-Replayed") == "true", r
        created.append(r.json())
    assert item_count(c, user["id"]) == 6
    # Updates: each applied once (version 2, not 3).
    for it in created[:2]:
        target = "/v1/items/" + it["id"]
        data = raw_request("PUT", target, '"u' + it["id"] + '"', token, {"content": "new"})
        data = data.replace(b"\r\n\r\n", b"\r\nIf-Match: *\r\n\r\n", 1)
        s = send_and_reset(srv.port, data)
        poll(lambda: c.get(target).json()["version"] == 2, what="the update committed")
        reset(s)
        r = retry_until_answered(srv, data, "PUT")
        assert r.status == 200 and r.header("Idempotent-Replayed") == "true", r
        assert r.json()["version"] == 2
        assert c.get(target).json()["version"] == 2
    # Deletes: 204 for the retry too, not 404.
    for it in created[2:4]:
        target = "/v1/items/" + it["id"]
        data = raw_request("DELETE", target, '"d' + it["id"] + '"', token)
        s = send_and_reset(srv.port, data)
        poll(lambda: c.get(target).status == 404, what="the delete committed")
        reset(s)
        r = retry_until_answered(srv, data, "DELETE")
        assert r.status == 204 and r.header("Idempotent-Replayed") == "true", r
    assert metric(srv, "ladder_idempotency_replays_total") == replays + 10
    # Cut at once, wherever the server is: commit done or not, in flight or
    # not, the retries still make one item per logical write.
    for i in range(10):
        data = raw_request("POST", "/v1/items", '"fast%d"' % i, token, {"content": "f%d" % i})
        reset(send_and_reset(srv.port, data))
        r = retry_until_answered(srv, data, "POST")
        assert r.status == 201, r
    items = c.get("/v1/users/%s/items?limit=100" % user["id"]).json()["items"]
    contents = sorted(it["content"] for it in items)
    assert contents == sorted(["n4", "n5", "new", "new"] + ["f%d" % i for i in range(10)])
    c.close()


# ---- two nodes on one PostgreSQL database -----------------------------------


def test_two_nodes_one_key_write_once(ladder_server, pg):
    """Two processes share a database: their in-flight registries do not see
    each other, the table's primary key does. Both requests wait in
    PostgreSQL behind a table lock; once it is gone, one commits and the
    other's write is undone (409); its retry is a replay."""
    db = pg.new_database()
    flags = (
        "--store", "postgres", "--pg-primary", pg.conninfo(db), "--store-timeout", "10s",
        "--token-keys", "k1:" + os.urandom(32).hex(),  # a token is good on both nodes
    )  # fmt: skip
    a = ladder_server(*flags)
    b = ladder_server(*flags)
    ca, cb = a.client(), b.client()
    user, token = new_account(ca)
    data = raw_request("POST", "/v1/items", '"two-nodes"', token, {"content": "x"})
    lock = subprocess.Popen(
        [os.path.join(PG_BIN, "psql"), "-X", "-q", "-d", pg.conninfo(db)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conns = []
    try:
        lock.stdin.write(
            b"SET application_name = 'locker'; BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE;\n"
        )
        lock.stdin.flush()
        poll(
            lambda: pg.psql(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.application_name = 'locker' AND l.granted"
                " AND l.mode = 'AccessExclusiveLock'", db=db,
            ).split() == ["1"],
            what="the table lock",
        )  # fmt: skip
        for srv in (a, b):
            conn = Conn(srv.port, timeout=30)
            conn.send(data)
            conns.append(conn)
        poll(
            lambda: pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND application_name <> 'locker'", db=db,
            ).split() == ["2"],
            what="both writes waiting in PostgreSQL",
        )  # fmt: skip
    finally:
        lock.stdin.write(b"ROLLBACK;\n\\q\n")
        lock.stdin.close()
        lock.wait(timeout=10)
    answers = sorted((c.read_response("POST") for c in conns), key=lambda r: r.status)
    for c in conns:
        c.close()
    assert [r.status for r in answers] == [201, 409], answers
    assert assert_problem(answers[1], 409)["detail"] == IN_FLIGHT
    assert pg.psql("SELECT count(*) FROM items", db=db).split() == ["1"]
    for c in (ca, cb):
        r = keyed(c, "POST", "/v1/items", '"two-nodes"', token, {"content": "x"})
        same_answer(answers[0], r)
    ca.close()
    cb.close()
