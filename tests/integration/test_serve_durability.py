"""Nothing acknowledged is lost: 8 writers POST items while the server is
SIGKILLed mid-load; after a restart on the same data directory every item the
server answered 201 for reads back with its exact content."""

import threading
import time

from ladder_http import ConnectionClosed, new_account

WRITERS = 8
KILL_AFTER_ACKS = 1000  # the kill lands mid-load, once this many are acknowledged
PATIENCE = 20.0  # bound on reaching that on a slow machine
MAX_PER_WRITER = 5000  # bounds the run on a fast machine


def test_acknowledged_writes_survive_sigkill(ladder_server):
    srv = ladder_server()
    c = srv.client()
    tokens = [new_account(c, "dur%d" % n) for n in range(WRITERS)]
    c.close()

    acked = []  # (id, user_id, content) for every 201
    errors = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n):
        user, token = tokens[n]
        cl = srv.client(timeout=5.0)
        try:
            for i in range(MAX_PER_WRITER):
                if stop.is_set():
                    return
                # Distinct, multi-byte content so a mix-up cannot pass.
                content = "w%d-%d-ü-%s" % (n, i, "x" * (i % 50))
                try:
                    r = cl.post("/v1/items", {"content": content}, token=token)
                except (OSError, ConnectionClosed):
                    return  # the server is gone: stop, nothing acknowledged
                if r.status != 201:
                    with lock:
                        errors.append(r)
                    return
                doc = r.json()
                with lock:
                    acked.append((doc["id"], user["id"], content))
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    # Kill once the load is under way (polled, bounded), not after a fixed
    # time that a slow machine may spend starting the writers.
    deadline = time.monotonic() + PATIENCE
    while True:
        with lock:
            if len(acked) >= KILL_AFTER_ACKS or errors:
                break
        if not any(t.is_alive() for t in threads):
            break  # every writer finished its MAX_PER_WRITER: kill anyway
        assert time.monotonic() < deadline, "only %d writes acknowledged" % len(acked)
        time.sleep(0.01)
    srv.kill()
    stop.set()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads), "writers did not stop"
    assert not errors, "writes refused under load: %r" % errors[:3]

    srv.start()  # same data dir
    c = srv.client()
    try:
        missing = []
        for item_id, user_id, content in acked:
            g = c.get("/v1/items/" + item_id)
            if g.status != 200:
                missing.append((item_id, g.status))
                continue
            doc = g.json()
            assert doc["content"] == content, (item_id, doc, content)
            assert doc["user_id"] == user_id
        assert not missing, "%d of %d acknowledged items lost, e.g. %r" % (
            len(missing),
            len(acked),
            missing[:5],
        )
        # The lists agree with the point reads, and ids were not reused.
        ids = [a[0] for a in acked]
        assert len(set(ids)) == len(ids), "an id was acknowledged twice"
        user0 = tokens[0][0]
        mine = {a[0] for a in acked if a[1] == user0["id"]}
        listed = set()
        cursor = None
        for _ in range(MAX_PER_WRITER // 100 + 2):
            q = "/v1/users/%s/items?limit=100" % user0["id"]
            if cursor:
                q += "&cursor=" + cursor
            doc = c.get(q).json()
            listed.update(it["id"] for it in doc["items"])
            cursor = doc["next_cursor"]
            if not cursor:
                break
        assert mine <= listed
    finally:
        c.close()
    print("durability: %d acknowledged writes, all read back" % len(acked))
