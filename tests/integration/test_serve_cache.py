"""The in-process response cache (--cache local, docs/cache.md): hits keep
ETags, 304 and gzip; writes are never followed by a stale read, on any loop;
the stale-fill race is closed; the byte budget holds; bad modes are refused."""

import json
import threading
import time

from ladder_http import Client, assert_problem, create_item, metric, new_account, poll


def test_hit_keeps_etag_304_and_gzip(ladder_server):
    srv = ladder_server("--cache", "local", "--threads", "1")
    c = srv.client()
    _, token = new_account(c, "ch")
    item = create_item(c, token, "x" * 1000)  # over gzip_min as JSON
    path = "/v1/items/" + item["id"]
    first = c.get(path)
    assert first.status == 200
    hits = metric(srv, "ladder_cache_hits_total", level="l1", route="/v1/items/{id}")
    plain = c.get(path)
    assert metric(srv, "ladder_cache_hits_total", level="l1", route="/v1/items/{id}") == hits + 1
    assert plain.status == 200 and plain.header("Content-Encoding") is None
    assert plain.body == first.body and plain.header("ETag") == first.header("ETag")
    gz = c.get(path, headers={"Accept-Encoding": "gzip"})
    assert gz.status == 200 and gz.header("Content-Encoding") == "gzip"
    assert gz.content() == first.body
    nm = c.get(path, headers={"If-None-Match": first.header("ETag")})
    assert nm.status == 304 and nm.body == b"" and nm.header("ETag") == first.header("ETag")
    # A missing id is cached too, and a 404 it stays.
    assert_problem(c.get("/v1/items/1"), 404)
    assert_problem(c.get("/v1/items/1"), 404)


def test_stale_fill_is_dropped(ladder_server):
    """A read misses and reads v1; its fill is held (test setting) while a
    write commits v2 and invalidates; the held fill must then be dropped,
    not stored: the next read returns v2."""
    srv = ladder_server("--cache", "local", "--threads", "1", "--test-cache-fill-delay", "1s")
    c = srv.client()
    _, token = new_account(c, "sf")
    item = create_item(c, token, "v1")
    path = "/v1/items/" + item["id"]
    r = c.get(path)
    assert r.status == 200 and r.json()["content"] == "v1"
    w = c.put(path, {"content": "v2"}, token=token, headers={"If-Match": r.header("ETag")})
    assert w.status == 200 and w.json()["version"] == 2
    assert poll(lambda: metric(srv, "ladder_cache_fills_dropped_total", level="l1",
                               route="/v1/items/{id}") >= 1)  # fmt: skip
    assert metric(srv, "ladder_cache_fills_total", level="l1", route="/v1/items/{id}") == 0
    r = c.get(path)
    assert r.status == 200 and r.json()["content"] == "v2", r.json()
    assert r.json()["version"] == 2


def test_no_stale_read_after_ack_across_loops(ladder_server):
    srv = ladder_server("--cache", "local", "--threads", "2")
    c = srv.client()
    _, token = new_account(c, "st")
    items = [create_item(c, token, "v1")["id"] for _ in range(3)]
    acked = {i: 1 for i in items}  # highest version acknowledged
    lock = threading.Lock()
    stop = threading.Event()
    errors = []
    reads = [0]

    def writer(iid):
        cl = Client(srv.port)
        version = 1
        while not stop.is_set():
            r = cl.put("/v1/items/" + iid, {"content": "w"}, token=token,
                       headers={"If-Match": '"%s.%d"' % (iid, version)})
            if r.status != 200:
                errors.append(("put", r.status))
                return
            version = r.json()["version"]
            with lock:
                acked[iid] = version

    def reader():
        cl = Client(srv.port)
        n = 0
        while not stop.is_set():
            iid = items[n % len(items)]
            n += 1
            with lock:
                floor = acked[iid]
            r = cl.get("/v1/items/" + iid)
            if r.status != 200:
                errors.append(("get", r.status))
                return
            if r.json()["version"] < floor:
                errors.append(("stale", iid, r.json()["version"], floor))
            reads[0] += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in items]
    threads += [threading.Thread(target=reader) for _ in range(12)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []
    assert reads[0] > 100
    # The cache did answer some of them: this tested the cache, not the store.
    assert metric(srv, "ladder_cache_hits_total", level="l1", route="/v1/items/{id}") > 0
    # Both loops served reads, so writes on one loop met copies on the other.
    loops = json.loads(srv.client().get("/debug/stats").body)["loop_stats"]
    assert [x["loop"] for x in loops] == [0, 1]
    assert all(x["reads"] > 0 for x in loops), loops


def test_budget_holds_over_a_larger_key_space(ladder_server):
    srv = ladder_server("--cache", "local", "--threads", "1", "--cache-bytes", "64KiB")
    c = srv.client()
    for i in range(1, 3001):
        assert c.get("/v1/items/%d" % i).status == 404
        if i % 500 == 0:
            used = metric(srv, "ladder_cache_bytes", level="l1")
            assert 0 < used <= 64 * 1024, used
    assert metric(srv, "ladder_cache_budget_bytes", level="l1") == 64 * 1024
    assert metric(srv, "ladder_cache_evictions_total", level="l1", route="/v1/items/{id}") > 2000
    assert metric(srv, "ladder_cache_bytes", level="l1") <= 64 * 1024


def test_user_and_list_invalidated_by_writes(ladder_server):
    srv = ladder_server("--cache", "local", "--threads", "1")
    c = srv.client()
    user, token = new_account(c, "ul")
    upath, lpath = "/v1/users/" + user["id"], "/v1/users/%s/items" % user["id"]
    assert c.get(upath).json()["display_name"] == user["display_name"]
    assert c.get(lpath).json()["items"] == []
    assert c.get(lpath).json()["items"] == []  # a hit
    item = create_item(c, token, "first")
    assert [i["id"] for i in c.get(lpath).json()["items"]] == [item["id"]]
    assert c.patch(upath, {"display_name": "Renamed"}, token=token).status == 200
    assert c.get(upath).json()["display_name"] == "Renamed"
    assert c.request("DELETE", "/v1/items/" + item["id"], token=token).status == 204
    assert c.get(lpath).json()["items"] == []
    assert_problem(c.get("/v1/items/" + item["id"]), 404)


def test_cache_modes_refused(ladder_cli):
    r = ladder_cli("serve", "--cache", "bogus")
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (
        "ladder serve: --cache: 'bogus' is not a cache mode (none, local, redis)"
    )


def test_reads_of_a_key_being_filled_wait_for_the_fill(ladder_server):
    """The fill is held 3s (test setting); a second read of the key in that
    time waits behind it and is answered from it, not from the store."""
    srv = ladder_server("--cache", "local", "--threads", "1", "--test-cache-fill-delay", "3s",
                        "--cache-wait", "30s")
    c = srv.client()
    _, token = new_account(c, "co")
    item = create_item(c, token, "one")
    path = "/v1/items/" + item["id"]
    first = c.get(path)
    assert first.status == 200
    second = Client(srv.port).get(path)
    assert second.status == 200 and second.body == first.body
    assert second.header("ETag") == first.header("ETag")
    route = "/v1/items/{id}"
    assert metric(srv, "ladder_cache_coalesced_waits_total", level="l1", route=route) == 1
    assert metric(srv, "ladder_cache_misses_total", level="l1", route=route) == 1
    assert metric(srv, "ladder_cache_fills_total", level="l1", route=route) == 1
    assert metric(srv, "ladder_cache_hits_total", level="l1", route=route) == 1
    assert metric(srv, "ladder_cache_wait_timeouts_total", level="l1", route=route) == 0


def test_a_wait_behind_a_slow_fill_is_bounded(ladder_server):
    """With the fill held 3s and --cache-wait 50ms, the waiting read gives up
    on the fill and reads the store itself."""
    srv = ladder_server("--cache", "local", "--threads", "1", "--test-cache-fill-delay", "3s",
                        "--cache-wait", "50ms")
    c = srv.client()
    _, token = new_account(c, "bw")
    item = create_item(c, token, "one")
    path = "/v1/items/" + item["id"]
    assert c.get(path).status == 200
    r = Client(srv.port).get(path)
    assert r.status == 200 and r.json()["content"] == "one"
    route = "/v1/items/{id}"
    assert metric(srv, "ladder_cache_coalesced_waits_total", level="l1", route=route) == 1
    assert metric(srv, "ladder_cache_wait_timeouts_total", level="l1", route=route) == 1
    assert metric(srv, "ladder_cache_hits_total", level="l1", route=route) == 0
