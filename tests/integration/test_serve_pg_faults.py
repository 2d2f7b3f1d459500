"""PostgreSQL going away under load (issue 8, "Faults"): a fast shutdown
(what `pg_ctl stop -m fast` does: SIGINT to the postmaster, every session
cut) and a crash (SIGKILL of the postmaster and then of every backend left,
so the restart runs crash recovery), each while a few threads write and
read.

Every request gets an answer before its client timeout, each answer is 2xx
or 503 + Retry-After with a problem document (never a 500, never a hang),
/readyz says 503 while the database is down, every write acknowledged with
a 201 is in PostgreSQL afterwards, and the node recovers by itself once the
database is back on the same port. Each test has a cluster of its own,
whatever LADDER_STORE the suite runs with. Bounded in count (each thread
stops after MAX_REQUESTS) and in time (every wait is a poll with a
deadline); nothing here measures time.
"""

import os
import signal
import threading
import time

import conftest
from ladder_http import Client, create_item, new_account, poll
from test_serve_postgres import TableLock

WRITERS = 2
READERS = 2
MAX_REQUESTS = 3000  # per thread
CLIENT_TIMEOUT = 15.0  # far past the store timeout (2 s) and its grace

# Every answer a 503 may carry here (docs/store.md, "Deadlines, connection
# loss, readiness"): the store down (nothing sent), a reconnect still under
# way at the op's deadline (nothing sent), or the connection lost after a
# write was sent (its outcome unknown).
UNAVAILABLE = "the store is not available"
TIMED_OUT = "the store did not answer in time; nothing was changed, retry"
UNKNOWN = (
    "the store became unavailable after the write was sent: the outcome is unknown; "
    "retry with an Idempotency-Key, or read before retrying"
)
DETAILS_503 = {UNAVAILABLE, TIMED_OUT, UNKNOWN}


# Each wait for a phase of the outage, under load, is allowed longer than
# poll's default.
WAIT = 30.0


def readyz(srv):
    with srv.conn() as c:
        return c.request("GET", "/readyz").status


class Load:
    """WRITERS threads posting items and READERS threads reading them, each
    on a keep-alive client of its own, until stop() or MAX_REQUESTS. Every
    answer (or failure to get one) is recorded with the phase it started in."""

    def __init__(self, srv, token, item_ids):
        self.srv = srv
        self.token = token
        self.item_ids = item_ids
        self.phase = "before"
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (thread, kind, phase, status, detail, retry_after, item id)
        self.failures = []  # (thread, kind, phase, repr of the exception)
        self.threads = [
            threading.Thread(target=self._run, args=("w%d" % i, "write"), name="w%d" % i,
                             daemon=True)
            for i in range(WRITERS)
        ] + [
            threading.Thread(target=self._run, args=("r%d" % i, "read"), name="r%d" % i,
                             daemon=True)
            for i in range(READERS)
        ]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, name, kind):
        c = Client(self.srv.port, timeout=CLIENT_TIMEOUT)
        n = 0
        try:
            while n < MAX_REQUESTS and not self.stopping.is_set():
                phase = self.phase
                try:
                    if kind == "write":
                        r = c.post("/v1/items", {"content": "%s-%d" % (name, n)},
                                   token=self.token)
                    else:
                        r = c.get("/v1/items/" + self.item_ids[n % len(self.item_ids)])
                except Exception as e:  # no answer: a hang or a cut connection
                    with self.lock:
                        self.failures.append((name, kind, phase, repr(e)))
                    c.close()
                    c = Client(self.srv.port, timeout=CLIENT_TIMEOUT)
                    n += 1
                    continue
                detail = iid = None
                ctype = (r.header("Content-Type") or "").split(";")[0].strip()
                if ctype == "application/problem+json":
                    detail = r.json().get("detail")
                elif r.status == 201:
                    iid = r.json()["id"]
                with self.lock:
                    self.answers.append(
                        (name, kind, phase, r.status, detail, r.header("Retry-After"), iid,
                         ctype))
                n += 1
                # Fail-fast 503s come back in microseconds: pace the loop so
                # the count stays bounded over the outage (not a timing
                # assertion: nothing depends on how long this takes).
                time.sleep(0.002)
        finally:
            c.close()

    def count(self, pred):
        with self.lock:
            return sum(1 for a in self.answers if pred(a))

    def seen(self, name, phase, status):
        return self.count(lambda a: a[0] == name and a[2] == phase and a[3] == status)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT * 2)
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, "load threads still waiting for an answer: %r" % alive


def crash(pg):
    """SIGKILL the postmaster; its backends, orphaned, notice and exit (or
    are killed too), so nothing of the old server holds the port or the
    shared memory when resume() starts it again (with crash recovery)."""
    pm = pg.postmaster_pid()
    assert pm, "no postmaster.pid"
    children = [
        int(d) for d in os.listdir("/proc")
        if d.isdigit() and _ppid(int(d)) == pm
    ]  # fmt: skip
    os.kill(pm, signal.SIGKILL)
    pg.proc.wait(timeout=30)
    pg.proc = None

    def gone():
        return all(not os.path.exists("/proc/%d" % p) or _zombie(p) for p in children)

    try:
        poll(gone, timeout=10.0, what="the orphaned backends to exit")
    except AssertionError:
        for p in children:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        poll(gone, timeout=10.0, what="the orphaned backends, killed")


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def waiting_writes(pg, db):
    return int(pg.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO items%'", db=db,
    ).split()[0])  # fmt: skip


def outage_under_load(ladder_server, pg, take_down, cut_silently):
    db = pg.new_database()
    # No response cache: the test is of the store's outage, and reads a
    # cache answers (Redis keeps entries for a minute) would never see it.
    srv = ladder_server("--store", "postgres", "--pg-primary", pg.conninfo(db),
                        "--threads", "2", "--cache", "none")  # fmt: skip
    c = srv.client()
    _, token = new_account(c, "pgfault")
    item_ids = [create_item(c, token, "seed %d" % i)["id"] for i in range(8)]
    c.close()

    load = Load(srv, token, item_ids).start()
    try:
        poll(lambda: all(load.seen(t.name, "before", 201 if t.name[0] == "w" else 200) >= 10
                         for t in load.threads),
             timeout=WAIT, what="every thread served before the outage")  # fmt: skip
        # Make sure writes are in flight when it goes: lock the items
        # table against writes (reads go on), so the inserts sent wait
        # inside PostgreSQL (the lock dies with the server).
        lock = TableLock(pg, db, "items", "SHARE")
        poll(lambda: waiting_writes(pg, db) > 0, timeout=WAIT,
             what="writes waiting inside PostgreSQL")  # fmt: skip
        load.phase = "down"
        take_down(pg)
        lock.p.kill()  # its session went with the server
        lock.p.wait(timeout=30)
        poll(lambda: readyz(srv) == 503, timeout=WAIT, what="/readyz 503 with the database down")
        # Every thread gets its answers while the database is away.
        poll(lambda: all(load.seen(t.name, "down", 503) >= 3 for t in load.threads),
             timeout=WAIT, what="503s on every thread during the outage")  # fmt: skip
        assert readyz(srv) == 503
        pg.resume()
        load.phase = "back"
        poll(lambda: readyz(srv) == 200, timeout=WAIT, what="/readyz 200 with the database back")
        poll(lambda: all(load.seen(t.name, "back", 201 if t.name[0] == "w" else 200) >= 5
                         for t in load.threads),
             timeout=WAIT, what="every thread served again after the outage")  # fmt: skip
    finally:
        load.stop()

    assert load.failures == [], load.failures[:5]
    for a in load.answers:
        name, kind, phase, status, detail, retry_after, _, ctype = a
        if status == 503:
            assert ctype == "application/problem+json", a
            assert retry_after == "1", a
            assert detail in DETAILS_503, a
            if detail == UNKNOWN:
                assert kind == "write", a
        elif kind == "write":
            assert status == 201, a
        else:
            assert status == 200, a
    assert load.count(lambda a: a[2] == "down" and a[3] == 503) > 0

    if cut_silently:
        # The writes cut in flight said their outcome is unknown.
        assert load.count(lambda a: a[4] == UNKNOWN) > 0

    # Every acknowledged write is in PostgreSQL.
    acked = {a[6] for a in load.answers if a[3] == 201}
    stored = set(pg.psql("SELECT id FROM items", db=db).split())
    assert acked <= stored, sorted(acked - stored)[:5]
    # Reads after the outage see them.
    c = srv.client()
    for iid in sorted(acked)[:20]:
        assert c.get("/v1/items/" + iid).status == 200
    c.close()
    srv.stop()
    assert conftest._new_500s(srv) == []


def test_fast_shutdown_under_load(ladder_server, pg):
    """A fast shutdown fails the statement waiting for the lock with an
    error before it closes the session: that write is known not made (503
    'not available'); others may still be cut with their outcome unknown."""
    outage_under_load(ladder_server, pg, lambda c: c.halt(), cut_silently=False)


def test_postmaster_sigkill_under_load(ladder_server, pg):
    """Backends of a dead postmaster exit without a word: the writes
    waiting inside PostgreSQL end with their outcome unknown."""
    outage_under_load(ladder_server, pg, crash, cut_silently=True)
