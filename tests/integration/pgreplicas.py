"""Servers reading on PostgreSQL replicas, for the tests that have a cluster
of their own (conftest's pgr fixture: a primary and a streaming replica):
a server started once the replicas have its database and it has every
replica in rotation, and where a replica's replay stands against a
Ladder-Session token."""

from ladder_http import metrics, poll

LOOPS = 2  # conftest's --threads


def lsn(token):
    """The WAL position a Ladder-Session token (v1.<hex>) stands for."""
    return int(token[3:], 16)


def replayed(replica, token):
    """The replica has replayed at least token's position (asked of it)."""
    v = replica.psql("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn").strip()
    return int(v) >= lsn(token)


def await_database(pg, db):
    """Waits until every replica of pg has database db (pg_basebackup -R
    replicas learn of it by replay)."""
    for replica in pg.replicas:
        poll(
            lambda: replica.psql("SELECT count(*) FROM pg_database WHERE datname = '%s'" % db)
            .split() == ["1"],
            what="the database on the replica",
        )  # fmt: skip


def await_rotation(srv, n):
    """Waits until srv has its n replicas in rotation on every loop."""
    for k in range(1, n + 1):
        key = 'ladder_pg_replica_in_rotation{replica="%d"}' % k
        poll(lambda: metrics(srv)[key] == LOOPS, what="replica %d in rotation" % k)


def replica_server(ladder_server, pg, *flags, db=None):
    """A server on database db of pg (default: a new one), its reads on pg's
    replicas, started once the replicas have the database and the server has
    every replica in rotation on every loop."""
    db = db or pg.new_database()
    await_database(pg, db)
    srv = ladder_server(
        "--store", "postgres", "--cache", "none", "--pg-primary", pg.conninfo(db),
        "--pg-replicas", ",".join(r.conninfo(db) for r in pg.replicas), *flags,
    )  # fmt: skip
    await_rotation(srv, len(pg.replicas))
    return srv, db
