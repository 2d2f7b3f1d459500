"""The Redis level (--cache redis, docs/cache.md): L1 per loop in front of a
Redis shared by every node. Responses are kept in Redis with their ETag; a
node's L1 copies die when another node's write deletes the key (client
tracking); the stale-fill race is closed by leases, which also make one
node fill a key while the others wait (bounded); Redis killed or paused
under load costs no errors, the breaker opens and closes; a delete that
could not reach Redis is sent when it is back.

Each test starts its own redis-server. Nodes that share it get the same
--redis-prefix; a node with a store of its own (SQLite: one server per data
directory) shows where an answer came from: an item only node A's store
holds, answered by node B, came from Redis."""

import re
import threading
import time


from ladder_http import Client, assert_problem, create_item, metric, metrics, new_account, poll
from redisserver import RedisServer

ITEM = "/v1/items/{id}"


def node(ladder_server, redis, *flags, prefix="n:", threads=1):
    srv = ladder_server(
        "--cache", "redis", "--redis", redis.url, "--redis-prefix", prefix,
        "--threads", str(threads), *flags,
    )  # fmt: skip
    assert poll(lambda: metric(srv, "ladder_redis_up", conn="cache") == threads), srv.stderr_tail()
    return srv


def l2(srv, name, route=ITEM):
    return metric(srv, name, level="l2", route=route)


def test_fill_then_hit_keeps_the_etag(ladder_server, redis):
    srv = node(ladder_server, redis)
    c = srv.client()
    _, token = new_account(c, "rh")
    item = create_item(c, token, "one")
    path = "/v1/items/" + item["id"]
    first = c.get(path)
    assert first.status == 200
    assert l2(srv, "ladder_cache_misses_total") == 1
    assert poll(lambda: l2(srv, "ladder_cache_fills_total") == 1)
    kept = redis.cmd("GET", "n:c:i" + item["id"])
    head, body = kept.split("\n", 1)
    assert head == "200 0 " + first.header("ETag")
    assert body.encode() == first.body
    # Our own SET is a change Redis reports too: the L1 copy the fill made
    # goes, and the next read is a Redis hit that fills L1 under tracking.
    assert poll(lambda: metric(srv, "ladder_cache_tracked_invalidations_total") >= 1)
    second = c.get(path)
    assert second.status == 200 and second.body == first.body
    assert second.header("ETag") == first.header("ETag")
    assert l2(srv, "ladder_cache_hits_total") == 1
    hits = metric(srv, "ladder_cache_hits_total", level="l1", route=ITEM)
    nm = c.get(path, headers={"If-None-Match": first.header("ETag")})
    assert nm.status == 304 and nm.header("ETag") == first.header("ETag")
    assert metric(srv, "ladder_cache_hits_total", level="l1", route=ITEM) == hits + 1
    # A missing id is cached in Redis as its 404.
    assert_problem(c.get("/v1/items/1"), 404)
    assert poll(lambda: (redis.cmd("GET", "n:c:i1") or "").startswith("404 1 "))


def test_another_nodes_write_drops_this_nodes_copy(ladder_server, redis):
    """B answers an item only A's store has: from Redis. B's L1 copy then
    dies when A's write deletes the key (tracking), and B serves the new
    version, never the old one again."""
    a = node(ladder_server, redis)
    b = node(ladder_server, redis)
    ca, cb = a.client(), b.client()
    _, token = new_account(ca, "tr")
    item = create_item(ca, token, "v1")
    path = "/v1/items/" + item["id"]
    r1 = ca.get(path)
    assert r1.status == 200
    assert poll(lambda: l2(a, "ladder_cache_fills_total") == 1)
    rb = cb.get(path)
    assert rb.status == 200 and rb.json()["content"] == "v1"
    assert l2(b, "ladder_cache_hits_total") == 1
    assert cb.get(path).json()["content"] == "v1"
    assert metric(b, "ladder_cache_hits_total", level="l1", route=ITEM) == 1
    tracked = metric(b, "ladder_cache_tracked_invalidations_total")
    w = ca.put(path, {"content": "v2"}, token=token, headers={"If-Match": r1.header("ETag")})
    assert w.status == 200
    assert poll(lambda: metric(b, "ladder_cache_tracked_invalidations_total") > tracked)
    assert ca.get(path).json()["content"] == "v2"  # A refills Redis from its store
    assert poll(lambda: "v2" in (redis.cmd("GET", "n:c:i" + item["id"]) or ""))
    rb = cb.get(path)
    assert rb.status == 200 and rb.json()["content"] == "v2", rb.json()


def test_stale_fill_race_is_closed_by_the_lease(ladder_server, redis):
    """A read takes the lease and reads v1; its fill is held (test setting)
    while a write commits v2 and deletes the key and its lease; the held
    fill then finds its lease gone and stores nothing in Redis."""
    srv = node(ladder_server, redis, "--test-cache-fill-delay", "1s")
    c = srv.client()
    _, token = new_account(c, "sl")
    item = create_item(c, token, "v1")
    path = "/v1/items/" + item["id"]
    r = c.get(path)
    assert r.status == 200 and r.json()["content"] == "v1"
    w = c.put(path, {"content": "v2"}, token=token, headers={"If-Match": r.header("ETag")})
    assert w.status == 200
    # The held fill has been answered by Redis, one way or the other.
    fills = ("ladder_cache_fills_total", "ladder_cache_fills_dropped_total")
    assert poll(lambda: sum(l2(srv, m) for m in fills) == 1)
    assert redis.cmd("GET", "n:c:i" + item["id"]) is None
    r = c.get(path)
    assert r.status == 200 and r.json()["content"] == "v2", r.json()
    assert l2(srv, "ladder_cache_fills_dropped_total") == 1


def test_one_node_fills_a_key_while_the_other_waits(ladder_server, redis):
    """A holds the lease (its fill held 8s); B's read waits for A's fill
    instead of reading its own store, and is answered from it. The hold is
    long so that B's read, on a loaded machine, still comes while A's fill
    is held (2s was once too short: B came after the fill, a plain hit)."""
    a = node(ladder_server, redis, "--test-cache-fill-delay", "8s", "--cache-lease", "60s")
    b = node(ladder_server, redis, "--cache-wait", "30s")
    ca = a.client()
    _, token = new_account(ca, "lw")
    item = create_item(ca, token, "shared")
    path = "/v1/items/" + item["id"]
    assert ca.get(path).status == 200
    rb = b.client(timeout=40).get(path)
    assert rb.status == 200 and rb.json()["content"] == "shared"
    assert l2(b, "ladder_cache_coalesced_waits_total") >= 1
    assert l2(b, "ladder_cache_hits_total") == 1
    assert l2(b, "ladder_cache_misses_total") == 0


def test_a_wait_for_another_nodes_fill_is_bounded(ladder_server, redis):
    a = node(ladder_server, redis, "--test-cache-fill-delay", "5s", "--cache-lease", "30s")
    b = node(ladder_server, redis, "--cache-wait", "50ms")
    ca = a.client()
    _, token = new_account(ca, "lb")
    item = create_item(ca, token, "held")
    path = "/v1/items/" + item["id"]
    assert ca.get(path).status == 200
    # B's own store has no such item: past the wait it asks its store.
    assert_problem(b.client().get(path), 404)
    assert metric(b, "ladder_cache_wait_timeouts_total", level="l1", route=ITEM) == 1
    assert l2(b, "ladder_cache_hits_total") == 0


class Load:
    """Reads (items, the list) and writes (creates) from two threads until
    stopped; every answer's status and time is kept."""

    def __init__(self, srv, token, uid, ids):
        self.srv, self.token, self.uid, self.ids = srv, token, uid, ids
        self.stop = threading.Event()
        self.results = []  # (what, status, seconds)
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(2)]

    def run(self, n):
        c = Client(self.srv.port, timeout=10)
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                t0 = time.monotonic()
                if i % 10 == 0:
                    r = c.post("/v1/items", {"content": "w%d" % i}, token=self.token)
                    what = "write"
                elif i % 4 == 0:
                    r = c.get("/v1/users/%s/items" % self.uid)
                    what = "list"
                else:
                    r = c.get("/v1/items/" + self.ids[(i * 7 + n) % len(self.ids)])
                    what = "read"
                self.results.append((what, r.status, time.monotonic() - t0))
        except Exception as e:  # noqa: BLE001 - a client error is a test failure
            self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def check(self):
        assert not self.errors, self.errors
        bad = [(w, s) for w, s, _ in self.results if s != (201 if w == "write" else 200)]
        assert bad == [], bad[:10]
        times = sorted(t for _, _, t in self.results)
        p99 = times[int(len(times) * 0.99)] if times else 0
        print("%d requests, p99 %.1f ms" % (len(times), p99 * 1000))


FAULT_FLAGS = (
    "--redis-timeout", "100ms", "--redis-connect-timeout", "200ms",
    "--redis-backoff-max", "200ms", "--redis-breaker-open", "300ms",
)  # fmt: skip


def fault_setup(ladder_server, redis):
    srv = node(ladder_server, redis, *FAULT_FLAGS, threads=2)
    c = srv.client()
    user, token = new_account(c, "fl")
    ids = [create_item(c, token, "i%d" % i)["id"] for i in range(20)]
    return srv, token, user["id"], ids


def breaker_cycles(srv, fault, heal):
    """fault(), then the breaker opens and the node stays ready; heal(),
    then the connections come back and the breaker closes."""
    opens = metric(srv, "ladder_redis_breaker_opens_total", conn="cache")
    # The same breaker in the series every dependency's breaker has.
    generic = metric(srv, "ladder_breaker_transitions_total", dep="redis", name="cache", to="open")
    fault()
    assert poll(lambda: metric(srv, "ladder_redis_breaker_opens_total", conn="cache") > opens)
    assert metric(srv, "ladder_breaker_transitions_total", dep="redis", name="cache", to="open") > generic
    assert srv.client().get("/readyz").status == 200
    bypass = metric(srv, "ladder_cache_bypass_total", level="l2", route=ITEM)
    assert poll(lambda: metric(srv, "ladder_cache_bypass_total", level="l2", route=ITEM) > bypass)
    heal()
    assert poll(lambda: metric(srv, "ladder_redis_up", conn="cache") == 2)
    assert poll(lambda: metric(srv, "ladder_redis_breaker_state", conn="cache") == 0)
    assert metric(srv, "ladder_breaker_state", dep="redis", name="cache") == 0
    hits = l2(srv, "ladder_cache_hits_total") + metric(
        srv, "ladder_cache_hits_total", level="l1", route=ITEM
    )
    assert poll(
        lambda: l2(srv, "ladder_cache_hits_total")
        + metric(srv, "ladder_cache_hits_total", level="l1", route=ITEM)
        > hits
    )


def test_redis_killed_and_restarted_under_load(ladder_server, redis):
    srv, token, uid, ids = fault_setup(ladder_server, redis)
    with Load(srv, token, uid, ids) as load:
        assert poll(lambda: l2(srv, "ladder_cache_hits_total") > 0)
        breaker_cycles(srv, redis.kill, redis.start)
    load.check()
    assert "redis breaker open" in srv.stdout_text()
    assert "redis breaker closed" in srv.stdout_text()


def test_redis_paused_under_load(ladder_server, redis):
    srv, token, uid, ids = fault_setup(ladder_server, redis)
    with Load(srv, token, uid, ids) as load:
        assert poll(lambda: l2(srv, "ladder_cache_hits_total") > 0)
        breaker_cycles(srv, redis.pause, redis.resume)
    load.check()
    assert metric(srv, "ladder_redis_errors_total", conn="cache", kind="timeout") >= 1


def test_a_delete_that_missed_redis_is_sent_when_it_is_back(ladder_server, redis):
    """Redis paused: a write's delete times out, the write is answered (200),
    the delete is kept; once Redis answers again it is sent before this
    node reads, and the old version is gone from Redis."""
    srv = node(ladder_server, redis, *FAULT_FLAGS)
    c = srv.client()
    _, token = new_account(c, "pd")
    item = create_item(c, token, "v1")
    path = "/v1/items/" + item["id"]
    r = c.get(path)
    key = "n:c:i" + item["id"]
    assert poll(lambda: redis.cmd("GET", key) is not None)
    redis.pause()
    try:
        w = c.put(path, {"content": "v2"}, token=token, headers={"If-Match": r.header("ETag")})
        assert w.status == 200
        assert metric(srv, "ladder_cache_pending_deletes", level="l2") >= 1
    finally:
        redis.resume()
    assert poll(lambda: metric(srv, "ladder_cache_pending_deletes", level="l2") == 0)
    assert poll(lambda: redis.cmd("GET", key) is None or "v2" in redis.cmd("GET", key))
    assert c.get(path).json()["content"] == "v2"


def test_a_write_while_the_breaker_stays_open_after_a_reconnect_reaches_redis(
    ladder_server, redis
):
    """Redis paused past the command deadline: the breaker opens. Once Redis
    answers, the connection comes back (its set-up sends the kept delete)
    while the breaker stays open (--redis-breaker-open 3s). A write then is
    answered and its delete kept; it must still reach Redis once the breaker
    closes: the old value another node put back is deleted, the gauge ends
    at 0, and the key's slot is read from Redis again (not bypassed)."""
    srv = node(ladder_server, redis, *FAULT_FLAGS[:-1], "3s")
    c = srv.client()
    _, token = new_account(c, "bo")
    item = create_item(c, token, "v1")
    path = "/v1/items/" + item["id"]
    key = "n:c:i" + item["id"]
    r = c.get(path)
    assert poll(lambda: redis.cmd("GET", key) is not None)
    old = redis.cmd("GET", key)
    opens = metric(srv, "ladder_redis_breaker_opens_total", conn="cache")
    redis.pause()
    try:
        w = c.put(path, {"content": "v2"}, token=token, headers={"If-Match": r.header("ETag")})
        assert w.status == 200
        assert poll(lambda: metric(srv, "ladder_redis_breaker_opens_total", conn="cache") > opens)
    finally:
        redis.resume()
    assert poll(lambda: metric(srv, "ladder_redis_up", conn="cache") == 1)
    assert poll(lambda: metric(srv, "ladder_cache_pending_deletes", level="l2") == 0)
    assert redis.cmd("GET", key) is None
    # Another node that read v1 before the write fills it back meanwhile.
    assert redis.cmd("SET", key, old) == "OK"
    assert metric(srv, "ladder_redis_breaker_state", conn="cache") == 1
    w = c.put(path, {"content": "v3"}, token=token, headers={"If-Match": w.header("ETag")})
    assert w.status == 200
    # The item's key and its owner's list.
    assert metric(srv, "ladder_cache_pending_deletes", level="l2") == 2
    assert poll(lambda: metric(srv, "ladder_redis_breaker_state", conn="cache") == 0)
    assert poll(lambda: metric(srv, "ladder_cache_pending_deletes", level="l2") == 0)
    assert redis.cmd("GET", key) is None
    misses = l2(srv, "ladder_cache_misses_total")
    got = c.get(path)
    assert got.status == 200 and got.json()["content"] == "v3"
    assert l2(srv, "ladder_cache_misses_total") == misses + 1
    assert poll(lambda: "v3" in (redis.cmd("GET", key) or ""))


def test_a_host_name_in_the_url_is_resolved_and_used(ladder_server, redis):
    """redis://localhost:PORT: the name is resolved off the loop, the
    connection comes up, and a read is filled into Redis and hit there."""
    srv = ladder_server(
        "--cache", "redis", "--redis", "redis://localhost:%d" % redis.port,
        "--redis-prefix", "h:", "--threads", "1",
    )  # fmt: skip
    assert poll(lambda: metric(srv, "ladder_redis_up", conn="cache") == 1), srv.stderr_tail()
    c = srv.client()
    _, token = new_account(c, "hn")
    item = create_item(c, token, "v1")
    path = "/v1/items/" + item["id"]
    assert c.get(path).status == 200
    assert poll(lambda: l2(srv, "ladder_cache_fills_total") == 1)
    assert "v1" in redis.cmd("GET", "h:c:i" + item["id"])


def test_settings_checked_and_password_never_printed(ladder_cli, tmp_path):
    r = ladder_cli("serve", "--data", str(tmp_path), "--cache", "redis")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "ladder serve: --cache redis needs the Redis server: --redis URL "
        "(LADDER_REDIS, [redis] redis_url)"
    )
    r = ladder_cli("serve", "--data", str(tmp_path), "--cache", "redis", "--redis", "http://x")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "ladder serve: --redis: 'http://x' is not a redis:// URL (redis://host:port[/db])"
    )
    r = ladder_cli(
        "serve", "--data", str(tmp_path), "--cache", "redis", "--redis", "redis://:hunter2@h:1"
    )
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "hunter2" not in err
    assert err.strip() == (
        "ladder serve: --redis: a password in the URL is refused (it would be printed); "
        "set --redis-password or LADDER_REDIS_PASSWORD"
    )
    r = ladder_cli(
        "serve", "--redis", "redis://127.0.0.1:7000/3", "--redis-password", "hunter2",
        "--print-config",
    )  # fmt: skip
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "hunter2" not in out
    assert "redis_url = redis://127.0.0.1:7000/3" in out


def test_two_nodes_on_one_postgres_writes_and_reads_hot_keys(ladder_server, redis):
    """Two nodes on one PostgreSQL and one Redis; writers on both nodes and
    readers on both, on three hot items. A read that starts after a write
    was acknowledged by its own node never returns an older version (on
    either loop); the other node converges once Redis's invalidation
    reaches it (the documented bound: its delivery), and the largest lag
    seen is reported."""
    from pgcluster import PgCluster

    pg = PgCluster().start()
    try:
        db = pg.new_database()
        flags = (
            "--store", "postgres", "--pg-primary", pg.conninfo(db),
            "--token-keys", "k1:" + "5a" * 32,
            # L1 copies would outlive the test: only tracking can end them.
            "--cache-ttl", "10m",
        )  # fmt: skip
        a = node(ladder_server, redis, *flags, threads=2)
        b = node(ladder_server, redis, *flags, threads=2)
        nodes = {"a": a, "b": b}
        _, token = new_account(a.client(), "pg2")
        ids = [create_item(a.client(), token, "v1")["id"] for _ in range(3)]
        acks = []  # (node, item, version, time acknowledged)
        reads = []  # (node, item, version, time started)
        errors = []
        stop = threading.Event()

        def writer(iid, n):
            c = {k: Client(s.port, timeout=10) for k, s in nodes.items()}
            try:
                etag = c["a"].get("/v1/items/" + iid).header("ETag")
                for i in range(n):
                    who = "a" if i % 2 == 0 else "b"
                    r = c[who].put(
                        "/v1/items/" + iid, {"content": "w%d" % i}, token=token,
                        headers={"If-Match": etag},
                    )  # fmt: skip
                    if r.status != 200:
                        errors.append(("write", who, r.status))
                        return
                    acks.append((who, iid, r.json()["version"], time.monotonic()))
                    etag = r.header("ETag")
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        def reader(who, k):
            c = Client(nodes[who].port, timeout=10)
            i = k
            try:
                while not stop.is_set():
                    iid = ids[i % len(ids)]
                    i += 1
                    t0 = time.monotonic()
                    r = c.get("/v1/items/" + iid)
                    if r.status != 200:
                        errors.append(("read", who, r.status))
                        return
                    reads.append((who, iid, r.json()["version"], t0))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        rs = [threading.Thread(target=reader, args=(w, k)) for w in nodes for k in range(2)]
        ws = [threading.Thread(target=writer, args=(iid, 40)) for iid in ids]
        for t in rs + ws:
            t.start()
        for t in ws:
            t.join(timeout=120)
        stop.set()
        for t in rs:
            t.join(timeout=30)
        assert errors == [], errors[:5]
        assert len(acks) == 120 and len(reads) > 50
        stale_own = []
        lag = 0.0
        for who, iid, version, t0 in reads:
            for awho, aiid, av, at in acks:
                if aiid != iid or at >= t0 or version >= av:
                    continue
                if awho == who:
                    stale_own.append((who, iid, version, av))
                else:
                    # Served an older version than the other node had
                    # acknowledged: how long after that acknowledgement.
                    lag = max(lag, t0 - at)
        assert stale_own == [], stale_own[:5]
        # Both nodes converge on the last version of every item; then B
        # holds a copy in L1 (two reads: the second is a hit), A writes,
        # and B serves the new version once Redis's report reaches it.
        final = {iid: max(v for _, i, v, _ in acks if i == iid) for iid in ids}
        for srv in (a, b):
            for iid, v in final.items():
                assert poll(lambda: srv.client().get("/v1/items/" + iid).json()["version"] == v)
        cb = b.client()
        for iid in ids:
            path = "/v1/items/" + iid
            hits = metric(b, "ladder_cache_hits_total", level="l1", route=ITEM)
            assert poll(lambda: cb.get(path).status == 200 and metric(
                b, "ladder_cache_hits_total", level="l1", route=ITEM) > hits)
            etag = a.client().get(path).header("ETag")
            w = a.client().put(path, {"content": "last"}, token=token, headers={"If-Match": etag})
            assert w.status == 200
            assert poll(lambda: cb.get(path).json()["content"] == "last")
        print("reads %d, writes %d, largest cross-node lag %.2f ms" % (len(reads), len(acks), lag * 1000))
    finally:
        for srv in ladder_server.servers:
            srv.kill()
        pg.stop()


def test_redis_maxmemory_holds_and_answers_stay_right(ladder_server):
    """A key space larger than Redis's maxmemory: Redis evicts (and reports
    the evicted keys it told us of), every answer is still the right one."""
    r = RedisServer(maxmemory="1500kb").start()  # about 600 KB over its own use
    try:
        srv = node(ladder_server, r, "--cache-bytes", "64KiB", "--sync", "off")
        c = srv.client()
        _, token = new_account(c, "mm")
        items = {}
        for i in range(1500):
            content = ("%04d" % i) * 250  # 1 KB each: 1.5 MB in all
            items[create_item(c, token, content)["id"]] = content
        for _ in range(2):
            for iid, content in items.items():
                got = c.get("/v1/items/" + iid)
                assert got.status == 200 and got.json()["content"] == content
        info = r.cmd("INFO", "memory") + r.cmd("INFO", "stats")
        used = int(re.search(r"^used_memory:(\d+)", info, re.M).group(1))
        evicted = int(re.search(r"^evicted_keys:(\d+)", info, re.M).group(1))
        assert evicted > 0
        assert used <= 1500 * 1024 + 256 * 1024  # maxmemory, give or take a command's buffers
        assert metric(srv, "ladder_cache_bytes", level="l1") <= metric(
            srv, "ladder_cache_budget_bytes", level="l1"
        )
    finally:
        r.stop()


def test_redis_restarted_empty_one_store_read_per_hot_key(ladder_server, redis):
    """Redis killed and started again empty: once the loops are back, many
    concurrent readers of a few hot keys, on both loops, cause one lease
    (one store read for Redis) per key, not one per reader or per loop."""
    srv = node(ladder_server, redis, *FAULT_FLAGS, "--cache-lease", "30s", "--cache-wait", "10s",
               threads=2)
    c = srv.client()
    _, token = new_account(c, "re")
    ids = [create_item(c, token, "hot%d" % i)["id"] for i in range(3)]
    for iid in ids:
        assert c.get("/v1/items/" + iid).status == 200
    redis.kill()
    assert poll(lambda: metric(srv, "ladder_redis_up", conn="cache") == 0)
    redis.start()
    assert poll(lambda: metric(srv, "ladder_redis_up", conn="cache") == 2)
    assert poll(lambda: metric(srv, "ladder_redis_breaker_state", conn="cache") == 0)
    misses = l2(srv, "ladder_cache_misses_total")
    statuses = []

    def reader(k):
        rc = Client(srv.port, timeout=20)
        for i in range(30):
            statuses.append(rc.get("/v1/items/" + ids[(i + k) % len(ids)]).status)

    ts = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert statuses == [200] * 240
    assert l2(srv, "ladder_cache_misses_total") - misses == len(ids)
    assert l2(srv, "ladder_cache_hits_total") >= 1


def test_breaker_opens_on_the_failure_rate_with_no_failures_in_a_row(ladder_server, redis):
    """Redis cuts the cache connection again and again (CLIENT KILL), each
    time after the reconnect's set-up was answered: every failure (a lost
    connection) comes between successes, so --redis-breaker-failures 2
    never sees two in a row. The rate (20% of at least 8 outcomes in the
    window) opens the breaker anyway, and the log line names the rule."""
    srv = node(ladder_server, redis, "--redis-breaker-failures", "2",
               "--redis-breaker-failure-rate", "20", "--redis-breaker-min-calls", "8",
               "--redis-breaker-window", "10m", "--redis-breaker-open", "10m")  # fmt: skip
    state = 'ladder_breaker_state{dep="redis",name="cache",loop="0"}'
    kills = 0
    while metrics(srv)[state] == 0:
        assert kills < 40, srv.stdout_text()[-3000:]
        ok = metric(srv, "ladder_redis_connects_total", conn="cache", result="ok")
        assert redis.cmd("CLIENT", "KILL", "TYPE", "normal") >= 1
        kills += 1
        # Back and set up again (its set-up's answers are successes)
        # before the next cut.
        assert poll(lambda: metric(srv, "ladder_redis_connects_total", conn="cache", result="ok")
                    > ok and metric(srv, "ladder_redis_up", conn="cache") == 1)  # fmt: skip
    assert metrics(srv)[state] == 1
    # More than one cut was needed: the rate opened it, not a first failure.
    assert kills >= 2
    opened = [line for line in srv.stdout_text().splitlines()
              if '"msg":"redis breaker open"' in line and '"name":"cache"' in line]  # fmt: skip
    assert len(opened) == 1, opened
    assert '"rule":"rate"' in opened[0], opened
    # Open: reads go straight to the store, none fails.
    c = srv.client()
    _, token = new_account(c, "rate")
    item = create_item(c, token, "while open")
    assert c.get("/v1/items/" + item["id"]).status == 200
