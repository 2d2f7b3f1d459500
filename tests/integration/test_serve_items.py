"""Items: POST /v1/items, GET/PUT/DELETE /v1/items/{id}, ETags and
preconditions, ownership, validation and body limits."""

import json

import pytest

from ladder_http import (
    DECIMAL_ID,
    RFC3339_MS,
    assert_json_response,
    assert_problem,
    build_request,
    chunked,
    create_item,
    new_account,
)

ITEM_KEYS = {"id", "user_id", "content", "created_at", "updated_at", "version"}


def check_item(doc, user_id=None, content=None):
    assert set(doc) == ITEM_KEYS, doc
    assert isinstance(doc["id"], str) and DECIMAL_ID.match(doc["id"]), doc
    assert isinstance(doc["user_id"], str) and DECIMAL_ID.match(doc["user_id"]), doc
    assert isinstance(doc["version"], int) and not isinstance(doc["version"], bool), doc
    assert RFC3339_MS.match(doc["created_at"]) and RFC3339_MS.match(doc["updated_at"]), doc
    assert doc["updated_at"] >= doc["created_at"]
    if user_id is not None:
        assert doc["user_id"] == user_id
    if content is not None:
        assert doc["content"] == content


def check_etag(value):
    assert value is not None, "no ETag"
    assert len(value) >= 3 and value.startswith('"') and value.endswith('"'), value
    assert not value.startswith("W/"), value
    return value


@pytest.fixture(scope="module")
def owner(server):
    c = server.client()
    acct = new_account(c, "owner")
    c.close()
    return acct


@pytest.fixture(scope="module")
def other(server):
    c = server.client()
    acct = new_account(c, "other")
    c.close()
    return acct


def test_create_item_201(client, owner):
    user, token = owner
    r = client.post("/v1/items", {"content": "hello, world"}, token=token)
    doc = assert_json_response(r, 201)
    check_item(doc, user["id"], "hello, world")
    assert r.header("Location") == "/v1/items/" + doc["id"]
    check_etag(r.header("ETag"))


def test_get_item_200_with_same_etag(client, owner):
    user, token = owner
    r = client.post("/v1/items", {"content": "read me"}, token=token)
    created, etag = r.json(), r.header("ETag")
    g = client.get("/v1/items/" + created["id"])
    doc = assert_json_response(g, 200)
    assert doc == created
    assert g.header("ETag") == etag


def test_get_item_needs_no_auth_and_owner_is_token_user(client, owner):
    user, token = owner
    # A user_id in the body is ignored: the owner is the token's user.
    r = client.post("/v1/items", {"content": "mine", "user_id": "1"}, token=token)
    doc = assert_json_response(r, 201)
    assert doc["user_id"] == user["id"]
    assert client.get("/v1/items/" + doc["id"]).json()["user_id"] == user["id"]


def test_content_utf8_roundtrip(client, owner):
    _, token = owner
    text = "naïve café — 東京 🚀 \"quoted\" \\ back\nslash\ttab \u0001"
    doc = create_item(client, token, text)
    assert client.get("/v1/items/" + doc["id"]).json()["content"] == text


def test_content_size_bounds(client, owner):
    _, token = owner
    ok = ["x", "a" * 1024, "€" * 341 + "a", "€" * 341]  # 1024 / 1023 bytes
    for content in ok:
        doc = create_item(client, token, content)
        assert client.get("/v1/items/" + doc["id"]).json()["content"] == content


@pytest.mark.parametrize(
    "content",
    ["", "a" * 1025, "€" * 342],  # 0 bytes, 1025 bytes, 342*3 = 1026 bytes
    ids=["empty", "1025-ascii", "342-three-byte"],
)
def test_content_out_of_bounds_422(client, owner, content):
    _, token = owner
    r = client.post("/v1/items", {"content": content}, token=token)
    doc = assert_problem(r, 422)
    assert "content" in {e["field"] for e in doc["errors"]}, doc


@pytest.mark.parametrize(
    "body",
    [{}, {"content": 5}, {"content": None}, {"content": ["a"]}, {"text": "a"}],
)
def test_content_wrong_shape_422(client, owner, body):
    _, token = owner
    r = client.post("/v1/items", body, token=token)
    doc = assert_problem(r, 422)
    assert "content" in {e["field"] for e in doc["errors"]}, doc


def test_item_body_not_object_422(client, owner):
    _, token = owner
    r = client.request(
        "POST",
        "/v1/items",
        [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
        b'["content"]',
    )
    assert_problem(r, 422)


def test_item_invalid_utf8_400(client, owner):
    _, token = owner
    for body in (b'{"content":"\xc3\x28"}', b'{"content":"\xed\xa0\x80"}', b'{"content":"\xff"}'):
        r = client.request(
            "POST",
            "/v1/items",
            [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
            body,
        )
        assert_problem(r, 400)


def test_item_malformed_json_400(client, owner):
    _, token = owner
    r = client.request(
        "POST",
        "/v1/items",
        [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
        b'{"content": "unterminated}',
    )
    assert_problem(r, 400)


def test_item_wrong_content_type_415(client, owner):
    _, token = owner
    r = client.request(
        "POST",
        "/v1/items",
        [("Content-Type", "text/json"), ("Authorization", "Bearer " + token)],
        b'{"content":"x"}',
    )
    assert_problem(r, 415)


def test_item_content_type_with_charset_accepted(client, owner):
    _, token = owner
    r = client.request(
        "POST",
        "/v1/items",
        [
            ("Content-Type", "Application/JSON; charset=UTF-8"),
            ("Authorization", "Bearer " + token),
        ],
        b'{"content":"x"}',
    )
    assert_json_response(r, 201)


def test_create_item_without_token_401(client):
    r = client.post("/v1/items", {"content": "anon"})
    assert_problem(r, 401)
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer")


def test_get_unknown_item_404(client):
    assert_problem(client.get("/v1/items/1234567890123"), 404)
    assert_problem(client.get("/v1/items/notanumber"), 404)


def test_unknown_route_404(client):
    for path in ("/v1/nope", "/v2/items", "/", "/v1/items/1/extra"):
        assert_problem(client.get(path), 404)


def allow_set(r):
    return {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}


def test_405_with_allow(client, owner):
    _, token = owner
    item = create_item(client, token, "for 405")
    r = client.request("PATCH", "/v1/items/" + item["id"])
    assert_problem(r, 405)
    assert allow_set(r) == {"GET", "HEAD", "PUT", "DELETE"}, r
    r = client.request("GET", "/v1/items")
    assert_problem(r, 405)
    assert allow_set(r) == {"POST"}, r
    r = client.request("POST", "/healthz", body=b"")
    assert_problem(r, 405)
    assert allow_set(r) == {"GET", "HEAD"}, r
    r = client.request("DELETE", "/v1/users/1/items")
    assert_problem(r, 405)
    assert allow_set(r) == {"GET", "HEAD"}, r


# ---- conditional requests ----------------------------------------------------


def test_if_none_match_304(client, owner):
    _, token = owner
    r = client.post("/v1/items", {"content": "cache me"}, token=token)
    item, etag = r.json(), r.header("ETag")
    path = "/v1/items/" + item["id"]
    for value in (etag, "*", '"nope", %s' % etag, '"a",%s,"b"' % etag):
        g = client.get(path, headers=[("If-None-Match", value)])
        assert g.status == 304, (value, g)
        assert g.header("ETag") == etag
        assert g.body == b""
        assert g.header("Content-Length") is None, g
    g = client.get(path, headers=[("If-None-Match", '"something-else"')])
    assert g.status == 200 and g.json()["content"] == "cache me"
    # The connection is still usable after a 304 (no stray body bytes).
    assert client.get(path).status == 200


def test_put_requires_if_match_428(client, owner):
    _, token = owner
    item = create_item(client, token, "v1")
    r = client.put("/v1/items/" + item["id"], {"content": "v2"}, token=token)
    assert_problem(r, 428)
    assert client.get("/v1/items/" + item["id"]).json()["content"] == "v1"


def test_put_with_current_etag_200_and_new_etag(client, owner):
    user, token = owner
    r = client.post("/v1/items", {"content": "v1"}, token=token)
    item, etag1 = r.json(), r.header("ETag")
    path = "/v1/items/" + item["id"]
    p = client.put(path, {"content": "v2"}, token=token, headers=[("If-Match", etag1)])
    doc = assert_json_response(p, 200)
    check_item(doc, user["id"], "v2")
    assert doc["id"] == item["id"]
    assert doc["version"] > item["version"]
    assert doc["created_at"] == item["created_at"]
    etag2 = check_etag(p.header("ETag"))
    assert etag2 != etag1
    g = client.get(path)
    assert g.json()["content"] == "v2" and g.header("ETag") == etag2
    # The old ETag no longer matches: a lost update is refused.
    stale = client.put(path, {"content": "v3"}, token=token, headers=[("If-Match", etag1)])
    assert_problem(stale, 412)
    assert client.get(path).json()["content"] == "v2"
    # If-None-Match with the old ETag now returns the new representation.
    g = client.get(path, headers=[("If-None-Match", etag1)])
    assert g.status == 200 and g.json()["content"] == "v2"


def test_put_if_match_star(client, owner):
    _, token = owner
    item = create_item(client, token, "star")
    p = client.put(
        "/v1/items/" + item["id"], {"content": "star2"}, token=token, headers=[("If-Match", "*")]
    )
    assert assert_json_response(p, 200)["content"] == "star2"


def test_put_mismatch_412(client, owner):
    _, token = owner
    item = create_item(client, token, "keep")
    p = client.put(
        "/v1/items/" + item["id"],
        {"content": "lost"},
        token=token,
        headers=[("If-Match", '"not-the-etag"')],
    )
    assert_problem(p, 412)
    assert client.get("/v1/items/" + item["id"]).json()["content"] == "keep"


def test_put_validation_422(client, owner):
    _, token = owner
    r = client.post("/v1/items", {"content": "valid"}, token=token)
    item, etag = r.json(), r.header("ETag")
    p = client.put(
        "/v1/items/" + item["id"], {"content": ""}, token=token, headers=[("If-Match", etag)]
    )
    assert_problem(p, 422)
    assert client.get("/v1/items/" + item["id"]).json()["content"] == "valid"


def test_put_other_users_item_403(client, owner, other):
    _, token = owner
    _, other_token = other
    r = client.post("/v1/items", {"content": "owned"}, token=token)
    item, etag = r.json(), r.header("ETag")
    p = client.put(
        "/v1/items/" + item["id"], {"content": "x"}, token=other_token, headers=[("If-Match", etag)]
    )
    assert_problem(p, 403)
    assert client.get("/v1/items/" + item["id"]).json()["content"] == "owned"


def test_put_without_token_401(client, owner):
    _, token = owner
    r = client.post("/v1/items", {"content": "owned"}, token=token)
    item, etag = r.json(), r.header("ETag")
    p = client.put("/v1/items/" + item["id"], {"content": "x"}, headers=[("If-Match", etag)])
    assert_problem(p, 401)


def test_put_unknown_item_404(client, owner):
    _, token = owner
    p = client.put(
        "/v1/items/1234567890123", {"content": "x"}, token=token, headers=[("If-Match", "*")]
    )
    assert_problem(p, 404)


def test_delete_204_then_404(client, owner):
    _, token = owner
    item = create_item(client, token, "bye")
    path = "/v1/items/" + item["id"]
    d = client.delete(path, token=token)
    assert d.status == 204, d
    assert d.body == b""
    assert_problem(client.get(path), 404)
    assert_problem(client.delete(path, token=token), 404)


def test_delete_if_match(client, owner):
    _, token = owner
    r = client.post("/v1/items", {"content": "conditional"}, token=token)
    item, etag = r.json(), r.header("ETag")
    path = "/v1/items/" + item["id"]
    assert_problem(client.delete(path, token=token, headers=[("If-Match", '"x"')]), 412)
    assert client.get(path).status == 200
    assert client.delete(path, token=token, headers=[("If-Match", etag)]).status == 204
    assert client.get(path).status == 404


def test_delete_other_users_item_403(client, owner, other):
    _, token = owner
    _, other_token = other
    item = create_item(client, token, "not yours")
    assert_problem(client.delete("/v1/items/" + item["id"], token=other_token), 403)
    assert client.get("/v1/items/" + item["id"]).status == 200


def test_delete_without_token_401(client, owner):
    _, token = owner
    item = create_item(client, token, "anon delete")
    assert_problem(client.delete("/v1/items/" + item["id"]), 401)
    assert client.get("/v1/items/" + item["id"]).status == 200


# ---- body framing and size ---------------------------------------------------


def test_post_without_length_411(server, owner):
    _, token = owner
    with server.conn() as c:
        c.send(
            "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer %s\r\n\r\n" % token
        )
        r = c.read_response()
    assert_problem(r, 411)


def test_chunked_post_item(server, owner):
    user, token = owner
    body = chunked(b'{"con', b'tent":"chunked ', b'body"}')
    with server.conn() as c:
        c.send(
            build_request(
                "POST",
                "/v1/items",
                [
                    ("Content-Type", "application/json"),
                    ("Authorization", "Bearer " + token),
                    ("Transfer-Encoding", "chunked"),
                ],
                body,
            )
        )
        r = c.read_response()
        doc = assert_json_response(r, 201)
        assert doc["content"] == "chunked body"
        g = c.request("GET", "/v1/items/" + doc["id"])
        assert g.json()["content"] == "chunked body"


def test_body_over_default_max_413(server, owner):
    _, token = owner
    body = json.dumps({"content": "x" * (64 * 1024)}).encode()
    assert len(body) > 64 * 1024
    with server.conn() as c:
        c.send(
            build_request(
                "POST",
                "/v1/items",
                [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
                body,
            )
        )
        r = c.read_response()
    assert_problem(r, 413)


@pytest.fixture(scope="module")
def small_server(module_server_factory):
    return module_server_factory("--max-body", "1KiB")


def test_max_body_flag_413_and_limit_inclusive(small_server):
    c = small_server.client()
    try:
        _, token = new_account(c)
        # Exactly 1024 bytes of body passes the size check (and is valid).
        body = b'{"content":"' + b"a" * (1024 - 14) + b'"}'
        assert len(body) == 1024
        r = c.request(
            "POST",
            "/v1/items",
            [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
            body,
        )
        assert r.status == 201, r
        body = b'{"content":"' + b"a" * (1025 - 14) + b'"}'
        r = c.request(
            "POST",
            "/v1/items",
            [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
            body,
        )
        assert_problem(r, 413)
    finally:
        c.close()


def test_max_body_applies_to_chunked(small_server):
    c = small_server.client()
    try:
        _, token = new_account(c)
    finally:
        c.close()
    body = chunked(b'{"content":"', b"b" * 600, b"b" * 600, b'"}')
    with small_server.conn() as conn:
        conn.send(
            build_request(
                "POST",
                "/v1/items",
                [
                    ("Content-Type", "application/json"),
                    ("Authorization", "Bearer " + token),
                    ("Transfer-Encoding", "chunked"),
                ],
                body,
            )
        )
        r = conn.read_response()
    assert_problem(r, 413)


# ---- edge cases a client can hit ----------------------------------------------


def test_content_with_nul_422(client, owner):
    # "\u0000" is valid JSON and U+0000 valid UTF-8, so not a 400; the
    # server refuses it as breaking a rule (a C string would cut it short).
    _, token = owner
    r = client.post("/v1/items", {"content": "before\u0000after"}, token=token)
    doc = assert_problem(r, 422)
    assert doc["errors"] == [{"field": "content", "message": "must not contain U+0000"}], doc


def test_lone_surrogate_escape_400(client, owner):
    _, token = owner
    r = client.request(
        "POST",
        "/v1/items",
        [("Content-Type", "application/json"), ("Authorization", "Bearer " + token)],
        b'{"content":"\\ud800"}',
    )
    doc = assert_problem(r, 400)
    assert doc["detail"].startswith("the body is not valid JSON: "), doc


@pytest.mark.parametrize("bad", ["18446744073709551616", "99999999999999999999999", "-5", "1e5"])
def test_item_id_out_of_range_404(client, bad):
    assert_problem(client.get("/v1/items/" + bad), 404)


def test_weak_etag_matches_if_none_match_only(client, owner):
    # RFC 9110: If-None-Match compares weakly, If-Match strongly.
    _, token = owner
    r = client.post("/v1/items", {"content": "weak"}, token=token)
    item, etag = r.json(), r.header("ETag")
    path = "/v1/items/" + item["id"]
    assert client.get(path, headers=[("If-None-Match", "W/" + etag)]).status == 304
    p = client.put(path, {"content": "x"}, token=token, headers=[("If-Match", "W/" + etag)])
    assert_problem(p, 412)


def test_version_increments_by_one(client, owner):
    _, token = owner
    r = client.post("/v1/items", {"content": "v"}, token=token)
    item, etag = r.json(), r.header("ETag")
    versions = [item["version"]]
    for i in range(3):
        p = client.put(
            "/v1/items/" + item["id"], {"content": "v%d" % i}, token=token, headers=[("If-Match", etag)]
        )
        assert p.status == 200, p
        etag = p.header("ETag")
        versions.append(p.json()["version"])
    assert versions == list(range(versions[0], versions[0] + 4)), versions


def _concurrently(server, n, make_request):
    """Sends n requests at once on n connections (all heads written before
    any is read) and returns the responses."""
    import threading

    conns = [server.conn(timeout=10.0) for _ in range(n)]
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        try:
            barrier.wait(5)
            conns[i].send(make_request(i))
            out[i] = conns[i].read_response()
        finally:
            conns[i].close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return out


def test_concurrent_puts_with_same_etag_one_wins(server, client, owner):
    """If-Match must be checked atomically with the write: of ten updates
    racing from the same version exactly one succeeds."""
    _, token = owner
    r = client.post("/v1/items", {"content": "race"}, token=token)
    item, etag = r.json(), r.header("ETag")

    def put(i):
        body = json.dumps({"content": "winner %d" % i}).encode()
        return build_request(
            "PUT",
            "/v1/items/" + item["id"],
            [
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer " + token),
                ("If-Match", etag),
            ],
            body,
        )

    resps = _concurrently(server, 10, put)
    statuses = sorted(x.status for x in resps)
    assert statuses == [200] + [412] * 9, statuses
    winner = [x for x in resps if x.status == 200][0].json()
    final = client.get("/v1/items/" + item["id"]).json()
    assert final["content"] == winner["content"]
    assert final["version"] == item["version"] + 1


def test_concurrent_same_handle_one_201_rest_409(server):
    handle = "race_%d" % (id(server) % 100000)

    def post(i):
        body = json.dumps(
            {"handle": handle, "display_name": "r%d" % i, "password": "12345678"}
        ).encode()
        return build_request("POST", "/v1/users", [("Content-Type", "application/json")], body)

    resps = _concurrently(server, 8, post)
    statuses = sorted(x.status for x in resps)
    assert statuses == [201] + [409] * 7, statuses


def test_etag_stable_across_restart(ladder_server):
    # A client's cached ETag stays valid when the server restarts (and on
    # any node): it is derived from the stored item, not from the process.
    srv = ladder_server()
    c = srv.client()
    _, token = new_account(c)
    r = c.post("/v1/items", {"content": "stable"}, token=token)
    item, etag = r.json(), r.header("ETag")
    c.close()
    assert srv.stop() == 0, srv.stderr_tail()
    srv.start()
    c = srv.client()
    try:
        g = c.get("/v1/items/" + item["id"], headers=[("If-None-Match", etag)])
        assert g.status == 304, g
    finally:
        c.close()
