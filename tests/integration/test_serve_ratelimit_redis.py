"""Rate limits across nodes (--ratelimit-store redis, docs/operations.md):
the nodes sharing one Redis together allow each budget once, not once per
node; while Redis is gone each node enforces its share locally (the budget
divided by --ratelimit-nodes), bounded; when Redis is back the budget is
shared again.

Writes from loopback with --ratelimit-exempt "": anonymous POST /v1/items
answers 401 (no token) after the limiter allowed it, and 429 when the
limiter refused. The window is ten minutes, so nothing refills during a
test: the counts are exact.
"""

from ladder_http import assert_problem, metric, poll

BUDGET = "10/10m"


def node(ladder_server, redis, *flags):
    srv = ladder_server(
        "--threads", "1", "--ratelimit-exempt", "", "--ratelimit-store", "redis",
        "--redis", redis.url, "--redis-prefix", "rlt:", "--ratelimit-nodes", "2",
        "--ratelimit-addr-writes", BUDGET, "--redis-backoff", "20ms",
        "--redis-backoff-max", "100ms", "--redis-breaker-open", "200ms", *flags,
    )  # fmt: skip
    assert poll(lambda: redis_ready(srv)), srv.stderr_tail()
    return srv


def redis_ready(srv):
    return (metric(srv, "ladder_redis_up", conn="ratelimit") == 1
            and metric(srv, "ladder_redis_breaker_state", conn="ratelimit") == 0)  # fmt: skip


def write(srv):
    with srv.conn() as c:
        return c.request("POST", "/v1/items", body=b'{"content":"x"}',
                         headers=[("Content-Type", "application/json")])  # fmt: skip


def tally(srv, n):
    """n writes on srv: (allowed, refused), and the last answer."""
    allowed = refused = 0
    r = None
    for _ in range(n):
        r = write(srv)
        if r.status == 401:
            allowed += 1
        else:
            assert_problem(r, 429)
            refused += 1
    return allowed, refused, r


def source(srv, s):
    return metric(srv, "ladder_ratelimit_source_decisions_total", source=s)


def test_two_nodes_share_one_budget(ladder_server, redis):
    a = node(ladder_server, redis)
    b = node(ladder_server, redis)
    r = write(a)
    assert r.status == 401, r
    # The whole budget, as the local limiter shows it, decided in Redis.
    assert r.header("RateLimit-Policy") == '"addr-writes";q=10;w=600'
    assert r.header("RateLimit") == '"addr-writes";r=9;t=60'
    # Alone each node would allow 10 (and its local share 5): together 10.
    assert tally(a, 7)[:2] == (7, 0)
    allowed, refused, last = tally(b, 4)
    assert (allowed, refused) == (2, 2)
    doc = assert_problem(last, 429)
    assert doc["detail"].startswith(
        "rate limit 'addr-writes' exceeded (10 requests per 600s); retry after "), doc
    ra = int(last.header("Retry-After"))
    assert 0 < ra <= 60, ra
    assert last.header("RateLimit-Policy") == '"addr-writes";q=10;w=600'
    assert last.header("RateLimit").startswith('"addr-writes";r=0;t='), last
    assert tally(a, 2)[:2] == (0, 2)
    # One stored time per key, namespaced, expiring when it is paid off.
    keys = redis.cmd("KEYS", "rlt:rl:*")
    assert keys == ["rlt:rl:addr-writes:a00000000000000000000ffff7f000001"], keys
    assert 0 < redis.cmd("PTTL", keys[0]) <= 600 * 1000 + 1
    assert source(a, "redis") == 10 and source(b, "redis") == 4
    assert source(a, "fallback") == 0 and source(b, "fallback") == 0
    assert metric(a, "ladder_ratelimit_redis_seconds_count") == 10
    assert metric(a, "ladder_ratelimit_decisions_total", budget="addr-writes",
                  decision="limited") == 2  # fmt: skip


def test_redis_gone_each_node_keeps_its_share_then_shared_again(ladder_server, redis):
    a = node(ladder_server, redis)
    b = node(ladder_server, redis)
    assert tally(a, 3)[:2] == (3, 0)

    redis.kill()
    assert poll(lambda: metric(a, "ladder_redis_up", conn="ratelimit") == 0)
    assert poll(lambda: metric(b, "ladder_redis_up", conn="ratelimit") == 0)
    # Each node alone: 10 / 2 nodes = 5, never unlimited.
    allowed, refused, last = tally(a, 8)
    assert (allowed, refused) == (5, 3)
    assert last.header("RateLimit-Policy") == '"addr-writes";q=5;w=600'
    doc = assert_problem(last, 429)
    assert "(5 requests per 600s)" in doc["detail"], doc
    assert tally(b, 7)[:2] == (5, 2)
    assert source(a, "fallback") == 8 and source(b, "fallback") == 7

    # Back (empty: the killed server kept nothing): one shared budget again.
    redis.start()
    assert poll(lambda: redis_ready(a)), a.stderr_tail()
    assert poll(lambda: redis_ready(b)), b.stderr_tail()
    assert tally(a, 7)[:2] == (7, 0)
    r = write(a)
    assert r.header("RateLimit-Policy") == '"addr-writes";q=10;w=600'
    assert tally(b, 4)[:2] == (2, 2)
    assert source(a, "redis") == 3 + 8 and source(b, "redis") == 4


def test_user_budget_shared_and_ipv6_48_in_redis(ladder_server, redis):
    a = node(ladder_server, redis, "--trusted-proxy", "127.0.0.1/32",
             "--ratelimit-addr-reads", "2/10m", "--ratelimit-ipv6-48-scale", "2")  # fmt: skip
    b = node(ladder_server, redis, "--trusted-proxy", "127.0.0.1/32",
             "--ratelimit-addr-reads", "2/10m", "--ratelimit-ipv6-48-scale", "2")  # fmt: skip

    def get(srv, addr):
        with srv.conn() as c:
            return c.request("GET", "/v1/items/1", headers=[("X-Forwarded-For", addr)])

    # Each /64 has 2, the /48 2 x 2, over both nodes.
    assert get(a, "2001:db8:1:1::1").status == 404
    assert get(b, "2001:db8:1:1::2").status == 404
    assert_problem(get(a, "2001:db8:1:1::3"), 429)  # the /64's budget
    assert get(b, "2001:db8:1:2::1").status == 404
    r = get(a, "2001:db8:1:3::1")
    assert r.status == 404, r
    assert r.header("RateLimit-Policy") == '"addr48-reads";q=4;w=600'
    assert r.header("RateLimit") == '"addr48-reads";r=0;t=600'
    doc = assert_problem(get(b, "2001:db8:1:4::1"), 429)
    assert doc["detail"].startswith("rate limit 'addr48-reads' exceeded (4 requests per 600s)")
    keys = sorted(redis.cmd("KEYS", "rlt:rl:addr-reads:n*"))
    assert keys == ["rlt:rl:addr-reads:n20010db80001"], keys


def test_store_redis_needs_a_url(tmp_path):
    from conftest import run_cli

    p = run_cli("serve", "--data", str(tmp_path), "--listen", "127.0.0.1:9",
                "--ratelimit-store", "redis")  # fmt: skip
    assert p.returncode == 2, p
    assert "--ratelimit-store redis needs the Redis server: --redis URL" in p.stderr.decode()
    p = run_cli("serve", "--data", str(tmp_path), "--listen", "127.0.0.1:9",
                "--ratelimit-store", "memcached")  # fmt: skip
    assert p.returncode == 2, p
    assert "--ratelimit-store: 'memcached' is not one of: local|redis" in p.stderr.decode()
