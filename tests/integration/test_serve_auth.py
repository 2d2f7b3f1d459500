"""Sessions (POST /v1/sessions) and bearer-token checks.

The module's server gets known token keys (--token-keys) so the tests can
forge tokens the way an attacker or a second node would: expired but
correctly signed, signed with another key, tampered, signed by a rotated key.
"""

import base64
import datetime
import hashlib
import hmac
import os
import struct
import time

import pytest

from ladder_http import (
    DECIMAL_ID,
    PASSWORD,
    RFC3339_MS,
    assert_json_response,
    assert_problem,
    create_user,
    login,
    metrics,
    new_account,
    unique_handle,
)

KEY_SIGN = os.urandom(32)
KEY_OLD = os.urandom(32)
KID_SIGN = "k2"
KID_OLD = "k1"


@pytest.fixture(scope="module")
def server(module_server_factory):
    keys = "%s:%s,%s:%s" % (KID_SIGN, KEY_SIGN.hex(), KID_OLD, KEY_OLD.hex())
    return module_server_factory("--token-keys", keys)


def b64url(raw, padded):
    s = base64.urlsafe_b64encode(raw).decode()
    return s if padded else s.rstrip("=")


def forge(user_id, expires_s, kid, key, padded=False):
    payload = b64url(struct.pack(">qq", int(user_id), int(expires_s)), padded)
    signed = "%s.%s" % (kid, payload)
    sig = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return "%s.%s" % (signed, b64url(sig, padded))


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc
    )


def whoami(client, user, token):
    """A request that needs the token to be valid for user: PATCH own name."""
    return client.patch("/v1/users/" + user["id"], {"display_name": "checked"}, token=token)


def test_login_201_shape(client):
    user = create_user(client)
    before = time.time()
    r = client.post("/v1/sessions", {"handle": user["handle"], "password": PASSWORD})
    doc = assert_json_response(r, 201)
    assert set(doc) == {"token", "expires_at", "user_id"}, doc
    assert doc["user_id"] == user["id"]
    assert isinstance(doc["token"], str) and len(doc["token"]) > 20
    assert DECIMAL_ID.match(doc["user_id"])
    assert RFC3339_MS.match(doc["expires_at"]), doc
    exp = parse_time(doc["expires_at"]).timestamp()
    # Default lifetime is a day: in the future, not beyond a day and a bit.
    assert before < exp <= before + 86400 + 120, (before, doc)
    # The token is "<kid>.<payload>.<sig>" and names the signing key.
    kid, payload, sig = doc["token"].split(".")
    assert kid == KID_SIGN


def test_token_authorises_its_user(client):
    user, token = new_account(client)
    r = whoami(client, user, token)
    assert assert_json_response(r, 200)["display_name"] == "checked"


def test_two_logins_both_valid(client):
    user, t1 = new_account(client)
    t2 = login(client, user["handle"])
    assert whoami(client, user, t1).status == 200
    assert whoami(client, user, t2).status == 200


def _comparable(resp):
    rid = resp.header("X-Request-Id")
    skip = {"x-request-id", "traceparent", "date"}
    headers = sorted((k.lower(), v) for k, v in resp.headers if k.lower() not in skip)
    body = resp.body.replace(rid.encode(), b"<rid>") if rid else resp.body
    return resp.status, headers, body


def test_login_failures_are_indistinguishable(client):
    user = create_user(client)
    wrong = client.post("/v1/sessions", {"handle": user["handle"], "password": "wrong password"})
    unknown = client.post(
        "/v1/sessions", {"handle": unique_handle("nobody"), "password": "wrong password"}
    )
    assert_problem(wrong, 401)
    assert_problem(unknown, 401)
    assert _comparable(wrong) == _comparable(unknown)


def test_login_password_is_case_sensitive(client):
    user = create_user(client)
    r = client.post("/v1/sessions", {"handle": user["handle"], "password": PASSWORD.upper()})
    assert_problem(r, 401)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"password": PASSWORD}, "handle"),
        ({"handle": "someone"}, "password"),
        ({"handle": 5, "password": PASSWORD}, "handle"),
        ({"handle": "someone", "password": False}, "password"),
    ],
)
def test_login_wrong_shape_422(client, body, field):
    r = client.post("/v1/sessions", body)
    doc = assert_problem(r, 422)
    assert field in {e["field"] for e in doc["errors"]}, doc


def test_login_malformed_json_400(client):
    r = client.request(
        "POST", "/v1/sessions", [("Content-Type", "application/json")], b'{"handle":"a"'
    )
    assert_problem(r, 400)


def test_login_wrong_content_type_415(client):
    r = client.request(
        "POST", "/v1/sessions", [("Content-Type", "text/plain")], b'{"handle":"a","password":"b"}'
    )
    assert_problem(r, 415)


# ---- 401 on a protected route ------------------------------------------------


def post_item_with(client, auth_value):
    headers = [("Content-Type", "application/json")]
    if auth_value is not None:
        headers.append(("Authorization", auth_value))
    return client.request("POST", "/v1/items", headers, b'{"content":"hello"}')


def test_missing_token_401(client):
    r = post_item_with(client, None)
    assert_problem(r, 401)
    www = r.header("WWW-Authenticate") or ""
    assert www.startswith("Bearer"), r
    assert "invalid_token" not in www, r


def check_invalid_token(r):
    assert_problem(r, 401)
    www = r.header("WWW-Authenticate") or ""
    assert www.startswith("Bearer"), r
    assert 'error="invalid_token"' in www, r


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc",
        "Bearer a.b.c",
        "Bearer ..",
        "Bearer k2.!!!!.????",
        "Bearer k2." + "A" * 200 + ".x",
        "Bearer " + "x" * 1000,
    ],
    ids=["short", "three-dots", "empty-parts", "bad-base64", "long-payload", "1000-bytes"],
)
def test_malformed_token_401(client, value):
    check_invalid_token(post_item_with(client, value))


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNzd29yZA==", "Token x"])
def test_malformed_authorization_401(client, value):
    r = post_item_with(client, value)
    assert_problem(r, 401)
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r


def test_bearer_scheme_is_case_insensitive(client):
    # RFC 9110 11.1: the auth scheme is case-insensitive.
    user, token = new_account(client)
    r = post_item_with(client, "bearer " + token)
    assert r.status == 201, r


def test_forged_token_with_server_key_is_accepted(client):
    # Proves the forging below matches the server's format, so the 401s of
    # the next tests are about expiry and keys, not about a wrong layout.
    user, real = new_account(client)
    padded = real.endswith("=") or "=" in real
    tok = forge(user["id"], time.time() + 600, KID_SIGN, KEY_SIGN, padded)
    assert whoami(client, user, tok).status == 200


def test_expired_token_401(client):
    user, real = new_account(client)
    tok = forge(user["id"], time.time() - 60, KID_SIGN, KEY_SIGN)
    r = whoami(client, user, tok)
    check_invalid_token(r)
    assert client.get("/v1/users/" + user["id"]).json()["display_name"] == "Test User"


def test_token_signed_with_another_key_401(client):
    user, _ = new_account(client)
    tok = forge(user["id"], time.time() + 600, KID_SIGN, os.urandom(32))
    check_invalid_token(whoami(client, user, tok))


def test_token_with_unknown_kid_401(client):
    user, _ = new_account(client)
    tok = forge(user["id"], time.time() + 600, "k9", KEY_SIGN)
    check_invalid_token(whoami(client, user, tok))


def test_tampered_token_401(client):
    # Swap the user id inside a real token, keep its signature.
    victim = create_user(client)
    _, token = new_account(client)
    kid, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    _, exp = struct.unpack(">qq", raw)
    evil = b64url(struct.pack(">qq", int(victim["id"]), exp), payload.endswith("="))
    tok = "%s.%s.%s" % (kid, evil, sig)
    check_invalid_token(whoami(client, victim, tok))


def test_token_signed_by_rotated_key_still_verifies(client):
    # Key rotation: k1 no longer signs but still verifies.
    user, _ = new_account(client)
    tok = forge(user["id"], time.time() + 600, KID_OLD, KEY_OLD)
    assert whoami(client, user, tok).status == 200


def test_token_valid_for_another_user_is_403_not_401(client):
    victim = create_user(client)
    _, token = new_account(client)
    assert_problem(whoami(client, victim, token), 403)


def test_tokens_survive_restart_with_generated_key(ladder_server):
    # No --token-keys: the server makes a key under the data dir and keeps it.
    srv = ladder_server()
    c = srv.client()
    user, token = new_account(c)
    c.close()
    assert srv.stop() == 0, srv.stderr_tail()
    assert any(srv.data_dir.iterdir())
    srv.start()
    c = srv.client()
    try:
        r = whoami(c, user, token)
        assert r.status == 200, r
    finally:
        c.close()


def test_token_expires_after_ttl(ladder_server):
    # Tokens expire on whole seconds: issued at second T with a TTL of N they
    # are valid while the clock reads less than T+N, between N-1 and N
    # seconds. With 1s a token issued late in a second would expire before
    # the check below could use it; 2s leaves more than a second.
    srv = ladder_server("--token-ttl", "2s")
    c = srv.client()
    try:
        user = create_user(c)
        r = c.post("/v1/sessions", {"handle": user["handle"], "password": PASSWORD})
        doc = assert_json_response(r, 201)
        exp = parse_time(doc["expires_at"]).timestamp()
        assert exp <= time.time() + 2, doc
        assert whoami(c, user, doc["token"]).status == 200
        # Polled (bounded) rather than one sleep past the expiry.
        deadline = exp + 10.0
        while True:
            r = whoami(c, user, doc["token"])
            if r.status != 200 or time.time() > deadline:
                break
            time.sleep(0.05)
        check_invalid_token(r)
        assert time.time() >= exp, "refused before it expired"
    finally:
        c.close()


def test_password_hashes_reuse_their_threads_argon2_area(server, client):
    # libsodium maps an argon2 work area for each hash; the server keeps one
    # per pool thread instead (src/api/argon2_area.h). A sign-up and four
    # logins are five hashes on libuv's four pool threads (the server the
    # tests start sets no UV_THREADPOOL_SIZE): a login reuses its thread's
    # area at least once, and one area is kept per thread that has hashed.
    if os.environ.get("LADDER_URL"):
        pytest.skip("counts a server's pool threads: the tests' own server only")
    user = create_user(client)
    before = metrics(server)
    for _ in range(4):
        login(client, user["handle"])
    after = metrics(server)
    assert after["ladder_argon2_areas_reused_total"] > before["ladder_argon2_areas_reused_total"]
    assert 1 <= after["ladder_argon2_areas"] <= 4, after["ladder_argon2_areas"]
    assert after["ladder_argon2_areas"] == after["ladder_argon2_areas_mapped_total"] - (
        before["ladder_argon2_areas_mapped_total"] - before["ladder_argon2_areas"]
    ), (before, after)
