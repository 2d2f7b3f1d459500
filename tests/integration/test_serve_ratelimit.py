"""Rate limits (docs/api.md, docs/operations.md): GCRA budgets per user and
per client address, reads and writes apart; 429 with Retry-After, a problem
body and the RateLimit-Policy / RateLimit fields of
draft-ietf-httpapi-ratelimit-headers-10; the client address from a trusted
proxy only; health, readiness and metrics never limited; off disables.

No timing: every test sends a burst larger than a budget whose window is
minutes long, so the limit is certain and nothing refills meanwhile. Tests
run with --ratelimit-exempt "" (loopback is exempt by default) and one loop
(the node's budget is divided over the loops) unless they say otherwise.
"""

import pytest

from conftest import run_cli
from ladder_http import assert_problem, metric, new_account

BASE = ["--threads", "1", "--ratelimit-exempt", ""]


def test_runaway_user_meets_429_others_unaffected(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-user-reads", "5/10m")
    c = srv.client()
    user, token = new_account(c)
    path = "/v1/users/%s" % user["id"]

    r = c.get(path, token=token)
    assert r.status == 200, r
    assert r.header("RateLimit-Policy") == '"user-reads";q=5;w=600'
    # One request of five: the next four are free, and the whole quota is
    # back one emission interval (600 s / 5) later.
    assert r.header("RateLimit") == '"user-reads";r=4;t=120'
    for left in (3, 2, 1, 0):
        r = c.get(path, token=token)
        assert r.status == 200, r
        assert r.header("RateLimit").startswith('"user-reads";r=%d;t=' % left), r
    r = c.get(path, token=token)
    doc = assert_problem(r, 429)
    assert doc["detail"].startswith(
        "rate limit 'user-reads' exceeded (5 requests per 600s); retry after "
    ), doc
    ra = int(r.header("Retry-After"))
    # One emission interval, less the moments the burst took.
    assert 60 < ra <= 120, ra
    assert doc["detail"].endswith("retry after %ds" % ra), doc
    assert r.header("RateLimit-Policy") == '"user-reads";q=5;w=600'
    assert r.header("RateLimit").startswith('"user-reads";r=0;t='), r

    # Another user on the same connection and address is not affected.
    other, token2 = new_account(c)
    r = c.get("/v1/users/%s" % other["id"], token=token2)
    assert r.status == 200, r
    assert r.header("RateLimit") == '"user-reads";r=4;t=120'

    # Writes have a budget of their own.
    r = c.post("/v1/items", {"content": "still writing"}, token=token)
    assert r.status == 201, r
    assert r.header("RateLimit-Policy") == '"user-writes";q=600;w=10'

    # Health, readiness and metrics are never limited, nor carry the fields.
    for p in ("/healthz", "/readyz", "/metrics"):
        r = c.get(p, token=token)
        assert r.status == 200, (p, r)
        assert r.header("RateLimit-Policy") is None, (p, r)

    assert metric(srv, "ladder_ratelimit_decisions_total",
                  budget="user-reads", decision="limited") == 1  # fmt: skip
    assert metric(srv, "ladder_ratelimit_decisions_total",
                  budget="user-reads", decision="allowed") == 6  # fmt: skip
    c.close()


def test_healthz_never_limited(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-reads", "2/10m")
    c = srv.client()
    for _ in range(2):
        assert c.get("/v1/items/1").status == 404
    assert_problem(c.get("/v1/items/1"), 429)
    for _ in range(20):
        r = c.get("/healthz")
        assert r.status == 200, r
    c.close()


def test_writes_and_reads_apart_per_address(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-writes", "3/10m", "--ratelimit-addr-reads",
                        "100/10m")  # fmt: skip
    c = srv.client()
    # Sign-up and login are anonymous writes: three, then 429.
    for i in range(3):
        r = c.post("/v1/sessions", {"handle": "nobody%d" % i, "password": "x" * 12})
        assert r.status == 401, r
        assert r.header("RateLimit-Policy") == '"addr-writes";q=3;w=600'
    r = c.post("/v1/sessions", {"handle": "nobody", "password": "x" * 12})
    assert_problem(r, 429)
    r = c.post("/v1/users", {"handle": "late", "display_name": "L", "password": "x" * 12})
    assert_problem(r, 429)
    # Reads from the same address are still served.
    r = c.get("/v1/items/1")
    assert r.status == 404, r
    assert r.header("RateLimit") == '"addr-reads";r=99;t=6'
    c.close()


def test_spoofed_forwarded_for_ignored_from_untrusted_peer(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-reads", "3/10m")
    c = srv.client()
    for i in range(3):
        r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "198.51.100.%d" % i)])
        assert r.status == 404, r
    # A fourth "client" is the same peer: limited.
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "198.51.100.99"),
                                       ("Forwarded", "for=198.51.100.98")])  # fmt: skip
    assert_problem(r, 429)
    assert not any(isinstance(x, dict) and "client" in x for x in srv.log_lines())
    c.close()


def test_forwarded_for_honoured_from_trusted_proxy(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-reads", "3/10m", "--trusted-proxy",
                        "127.0.0.1/32,10.0.0.0/8")  # fmt: skip
    c = srv.client()
    for _ in range(3):
        r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5")])
        assert r.status == 404, r
    assert_problem(c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5")]), 429)
    # What the client put on the left is not taken: the rightmost entry
    # that is not a trusted proxy is.
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "9.9.9.9, 203.0.113.5, 10.1.2.3")])
    assert_problem(r, 429)
    # Another client behind the proxy has its own budget; Forwarded too.
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.6")])
    assert r.status == 404, r
    assert r.header("RateLimit") == '"addr-reads";r=2;t=200'
    c.close()
    # The client behind the proxy is logged.
    assert srv.wait_log(lambda x: x.get("client") == "203.0.113.6" and x.get("status") == 404)


def test_forwarded_header_setting_reads_forwarded_only(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-reads", "3/10m", "--trusted-proxy",
                        "127.0.0.1/32", "--forwarded-header", "forwarded")  # fmt: skip
    c = srv.client()
    for i in range(3):
        # X-Forwarded-For is not the field the proxy writes: ignored.
        r = c.get("/v1/items/1", headers=[("Forwarded", 'for="203.0.113.7:5555";proto=http'),
                                           ("X-Forwarded-For", "198.51.100.%d" % i)])  # fmt: skip
        assert r.status == 404, r
        assert r.header("RateLimit") == '"addr-reads";r=%d;t=%d' % (2 - i, 200 * (i + 1))
    r = c.get("/v1/items/1", headers=[("Forwarded", "for=203.0.113.7")])
    assert_problem(r, 429)
    c.close()
    assert srv.wait_log(lambda x: x.get("client") == "203.0.113.7" and x.get("status") == 404)


def test_client_cannot_pick_its_key_through_trusted_proxy(ladder_server):
    # A proxy on loopback (exempt by default) that appends to
    # X-Forwarded-For and passes the client's Forwarded through.
    srv = ladder_server("--threads", "1", "--ratelimit-addr-reads", "3/10m", "--trusted-proxy",
                        "127.0.0.1/32")  # fmt: skip
    c = srv.client()
    for i in range(3):
        r = c.get("/v1/items/1", headers=[("Forwarded", "for=9.9.9.%d" % i),
                                           ("X-Forwarded-For", "203.0.113.5")])  # fmt: skip
        assert r.status == 404, r
        assert r.header("RateLimit-Policy") == '"addr-reads";q=3;w=600', r
    # Naming loopback in Forwarded does not make it exempt.
    r = c.get("/v1/items/1", headers=[("Forwarded", "for=127.0.0.1"),
                                       ("X-Forwarded-For", "203.0.113.5")])  # fmt: skip
    assert_problem(r, 429)
    # HAProxy's option forwardfor adds a line of its own after the
    # client's: the client's first line is not taken.
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "9.9.9.99"),
                                       ("X-Forwarded-For", "203.0.113.5")])  # fmt: skip
    assert_problem(r, 429)
    assert metric(srv, "ladder_ratelimit_exempt_total") == 0
    c.close()


def test_trusted_peer_without_readable_client_shares_one_key(ladder_server):
    srv = ladder_server("--threads", "1", "--ratelimit-addr-reads", "3/10m", "--trusted-proxy",
                        "127.0.0.1/32")  # fmt: skip
    c = srv.client()
    # Unreadable, or no field at all: not the proxy's (exempt) address but
    # one shared key, limited like any other.
    for i, hdrs in enumerate(([("X-Forwarded-For", "x")], [("Forwarded", "x")], [])):
        r = c.get("/v1/items/1", headers=hdrs)
        assert r.status == 404, r
        assert r.header("RateLimit") == '"addr-reads";r=%d;t=%d' % (2 - i, 200 * (i + 1)), r
    assert_problem(c.get("/v1/items/1", headers=[("X-Forwarded-For", "1.2.3.4, y")]), 429)
    # A readable client still has its own budget.
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5")])
    assert r.status == 404, r
    assert r.header("RateLimit") == '"addr-reads";r=2;t=200'
    assert metric(srv, "ladder_ratelimit_exempt_total") == 0
    c.close()
    assert srv.wait_log(lambda x: x.get("client") == "unknown" and x.get("status") == 429)


def test_x_forwarded_for_with_ports_and_brackets(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-reads", "2/10m", "--trusted-proxy",
                        "127.0.0.1/32")  # fmt: skip
    c = srv.client()
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5:5678")])
    assert r.status == 404, r
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5")])
    assert r.status == 404, r
    # The same client, port or not.
    assert_problem(c.get("/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5:1")]), 429)
    r = c.get("/v1/items/1", headers=[("X-Forwarded-For", "[2001:db8::1]:443")])
    assert r.status == 404, r
    assert r.header("RateLimit") == '"addr-reads";r=1;t=300'
    c.close()
    assert srv.wait_log(lambda x: x.get("client") == "2001:db8::1" and x.get("status") == 404)


def test_ipv6_48_has_a_budget_of_its_own(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit-addr-reads", "2/10m", "--ratelimit-ipv6-48-scale",
                        "2", "--trusted-proxy", "127.0.0.1/32")  # fmt: skip
    c = srv.client()

    def get(addr):
        return c.get("/v1/items/1", headers=[("X-Forwarded-For", addr)])

    # Each /64 has 2; the /48 they share has 2 x 2.
    r = get("2001:db8:1:1::1")
    assert r.status == 404, r
    assert r.header("RateLimit-Policy") == '"addr-reads";q=2;w=600'
    assert r.header("RateLimit") == '"addr-reads";r=1;t=300'
    r = get("2001:db8:1:1::2")
    assert r.status == 404, r
    assert_problem(get("2001:db8:1:1::3"), 429)  # the /64's budget
    r = get("2001:db8:1:2::1")
    assert r.status == 404, r
    r = get("2001:db8:1:3::1")
    assert r.status == 404, r
    # The tighter of the two is shown: the /48 has none left.
    assert r.header("RateLimit-Policy") == '"addr48-reads";q=4;w=600'
    assert r.header("RateLimit") == '"addr48-reads";r=0;t=600'
    doc = assert_problem(get("2001:db8:1:4::1"), 429)
    assert doc["detail"].startswith("rate limit 'addr48-reads' exceeded (4 requests per 600s)")
    # Another /48 is untouched.
    r = get("2001:db8:2:1::1")
    assert r.status == 404, r
    assert r.header("RateLimit") == '"addr-reads";r=1;t=300'
    c.close()


def test_logged_client_not_carried_to_next_request(ladder_server):
    srv = ladder_server(*BASE, "--trusted-proxy", "127.0.0.1/32")
    with srv.conn() as c:
        r = c.request("GET", "/v1/items/1", headers=[("X-Forwarded-For", "203.0.113.5")])
        assert r.status == 404, r
        r = c.request("GET", "/healthz")
        assert r.status == 200, r
    rec = srv.wait_log(lambda x: x.get("route") == "/healthz")
    assert rec is not None
    assert "client" not in rec, rec


def test_off_disables(ladder_server):
    srv = ladder_server(*BASE, "--ratelimit", "off", "--ratelimit-addr-reads", "2/10m")
    c = srv.client()
    for _ in range(10):
        r = c.get("/v1/items/1")
        assert r.status == 404, r
        assert r.header("RateLimit-Policy") is None, r
    c.close()


def test_loopback_exempt_by_default(ladder_server):
    srv = ladder_server("--ratelimit-addr-reads", "2/10m")
    c = srv.client()
    for _ in range(10):
        r = c.get("/v1/items/1")
        assert r.status == 404, r
        assert r.header("RateLimit-Policy") is None, r
    assert metric(srv, "ladder_ratelimit_exempt_total") == 10
    c.close()


def test_budget_divided_over_loops(ladder_server):
    srv = ladder_server("--threads", "2", "--ratelimit-exempt", "", "--ratelimit-addr-reads",
                        "10/10m")  # fmt: skip
    c = srv.client()
    r = c.get("/v1/items/1")
    assert r.status == 404, r
    assert r.header("RateLimit-Policy") == '"addr-reads";q=5;w=600'
    c.close()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ratelimit-user-reads", "5"],
         "--ratelimit-user-reads: '5' is not a budget (QUOTA/WINDOW"),
        (["--ratelimit-addr-writes", "0/1s"],
         "--ratelimit-addr-writes: '0/1s' is not a budget"),
        (["--trusted-proxy", "10.0.0.0/40"],
         "trusted_proxy (--trusted-proxy): '10.0.0.0/40' is not an address or CIDR"),
        (["--forwarded-header", "x-real-ip"],
         "--forwarded-header: 'x-real-ip' is not one of: x-forwarded-for|forwarded"),
        (["--ratelimit-ipv6-48-scale", "0"], "--ratelimit-ipv6-48-scale"),
        (["--ratelimit-exempt", "localhost"],
         "(--ratelimit-exempt): 'localhost' is not an address or CIDR"),
    ],
)  # fmt: skip
def test_bad_settings_exit_2(tmp_path, flags, message):
    p = run_cli("serve", "--data", str(tmp_path), "--listen", "127.0.0.1:9", *flags)
    assert p.returncode == 2, p
    assert message in p.stderr.decode(), p.stderr


def test_photo_byte_upload_not_charged(ladder_server):
    # Sign-up and login take the whole anonymous write budget; the PUT of
    # the bytes to the signed URL carries no token, and is not limited: the
    # POST that handed out the URL was (user-writes).
    srv = ladder_server(*BASE, "--ratelimit-addr-writes", "2/10m")
    c = srv.client()
    _, token = new_account(c)
    assert_problem(c.post("/v1/sessions", {"handle": "x", "password": "y" * 12}), 429)
    for _ in range(2):
        r = c.request("POST", "/v1/photos", token=token)
        assert r.status == 201, r
        assert r.header("RateLimit-Policy") == '"user-writes";q=600;w=10'
        url = r.json()["upload"]["url"]
        r = c.request("PUT", url, headers=[("Content-Type", "application/octet-stream")],
                      body=b"\xff\xd8" + b"x" * 100)  # fmt: skip
        assert r.status == 204, r
        assert r.header("RateLimit-Policy") is None, r
    c.close()
