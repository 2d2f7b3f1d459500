"""The primary's timeline on /metrics (ladder_pg_primary_timeline), the
signal of deploy/prometheus/alerts.yml's "primary changed" alert: a replica
promoted after its primary stopped starts a new timeline, and a server whose
multi-host conninfo finds it there reports the new one.

The test has a PostgreSQL cluster of its own (a primary and a streaming
replica), whatever LADDER_STORE the suite runs with.
"""

from ladder_http import metrics, new_account, poll
from pgreplicas import await_database

TIMELINE = "ladder_pg_primary_timeline"


def test_primary_timeline_follows_a_promotion(ladder_server, pgr):
    db = pgr.new_database()
    replica = pgr.replicas[0]
    await_database(pgr, db)
    # Both nodes in one conninfo: libpq takes the one that accepts writes.
    conninfo = (
        "hostaddr=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=postgres "
        "target_session_attrs=read-write connect_timeout=2" % (pgr.port, replica.port, db)
    )
    srv = ladder_server("--store", "postgres", "--cache", "none", "--pg-primary", conninfo)
    m = metrics(srv)
    assert m[TIMELINE] == 1.0
    c = srv.client()
    _, token = new_account(c, "tl")
    assert c.post("/v1/items", {"content": "before"}, token=token).status == 201

    # The primary goes: the last timeline seen stays while none answers.
    pgr.halt()
    assert metrics(srv)[TIMELINE] == 1.0
    # The replica is promoted (pg_promote waits for it).
    assert replica.psql("SELECT pg_promote()").strip() == "t"

    # The server's connections find the promoted node: writes come back,
    # and the gauge says the primary changed.
    def written():
        try:
            return c.post("/v1/items", {"content": "after"}, token=token).status == 201
        except OSError:
            c.close()
            return False

    poll(written, what="a write on the promoted replica")
    assert metrics(srv)[TIMELINE] == 2.0
    c.close()

