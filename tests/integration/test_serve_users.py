"""Users: POST /v1/users, GET /v1/users/{id}, PATCH /v1/users/{id}."""

import json

import pytest

from ladder_http import (
    DECIMAL_ID,
    PASSWORD,
    RFC3339_MS,
    assert_json_response,
    assert_problem,
    create_user,
    login,
    new_account,
    unique_handle,
)

USER_KEYS = {"id", "handle", "display_name", "created_at", "updated_at"}


def check_user(doc, handle=None, display_name=None):
    assert set(doc) == USER_KEYS, doc
    assert isinstance(doc["id"], str) and DECIMAL_ID.match(doc["id"]), doc
    assert RFC3339_MS.match(doc["created_at"]), doc
    assert RFC3339_MS.match(doc["updated_at"]), doc
    assert doc["updated_at"] >= doc["created_at"], doc
    if handle is not None:
        assert doc["handle"] == handle
    if display_name is not None:
        assert doc["display_name"] == display_name


def test_create_user_201_location_and_shape(client):
    handle = unique_handle("create")
    r = client.post(
        "/v1/users", {"handle": handle, "display_name": "Ada L.", "password": PASSWORD}
    )
    doc = assert_json_response(r, 201)
    check_user(doc, handle, "Ada L.")
    assert r.header("Location") == "/v1/users/" + doc["id"]
    assert PASSWORD not in r.body.decode()
    assert "argon2" not in r.body.decode()


def test_get_user_200_same_as_created_and_no_hash(client):
    user = create_user(client, display_name="Grace")
    r = client.get("/v1/users/" + user["id"])
    doc = assert_json_response(r, 200)
    check_user(doc, user["handle"], "Grace")
    assert doc == user
    assert "password" not in r.body.decode()
    assert "argon2" not in r.body.decode()


def test_ids_are_distinct(client):
    a = create_user(client)
    b = create_user(client)
    assert a["id"] != b["id"]


def test_create_user_accepts_utf8_display_name_and_charset(client):
    handle = unique_handle()
    body = json.dumps(
        {"handle": handle, "display_name": "Zoë 東京", "password": PASSWORD}, ensure_ascii=False
    ).encode()
    r = client.request(
        "POST", "/v1/users", [("Content-Type", "application/json; charset=utf-8")], body
    )
    doc = assert_json_response(r, 201)
    assert doc["display_name"] == "Zoë 東京"
    assert client.get("/v1/users/" + doc["id"]).json()["display_name"] == "Zoë 東京"


def test_unknown_fields_are_ignored(client):
    handle = unique_handle()
    r = client.post(
        "/v1/users",
        {"handle": handle, "display_name": "x", "password": PASSWORD, "admin": True, "id": "1"},
    )
    doc = assert_json_response(r, 201)
    assert doc["id"] != "1"
    assert "admin" not in doc


def test_duplicate_handle_409(client):
    user = create_user(client)
    r = client.post(
        "/v1/users", {"handle": user["handle"], "display_name": "other", "password": PASSWORD}
    )
    assert_problem(r, 409)
    # The first user is untouched.
    assert client.get("/v1/users/" + user["id"]).json()["display_name"] == user["display_name"]


def test_handle_length_bounds_accepted(client):
    # The module's server has a fresh data dir, so a 3-character handle is free.
    r = client.post("/v1/users", {"handle": "q_3", "display_name": "t", "password": PASSWORD})
    assert assert_json_response(r, 201)["handle"] == "q_3"
    h32 = (unique_handle("l") + "_" * 32)[:32]
    r = client.post("/v1/users", {"handle": h32, "display_name": "t", "password": PASSWORD})
    assert assert_json_response(r, 201)["handle"] == h32


def field_names(doc):
    errs = doc.get("errors")
    assert isinstance(errs, list) and errs, doc
    for e in errs:
        assert isinstance(e, dict) and isinstance(e.get("field"), str), doc
        assert isinstance(e.get("message"), str) and e["message"], doc
    return {e["field"] for e in errs}


@pytest.mark.parametrize(
    "handle",
    ["ab", "x" * 33, "Upper", "has-dash", "has space", "dot.ted", "émile", ""],
    ids=["2", "33", "upper", "dash", "space", "dot", "non-ascii", "empty"],
)
def test_bad_handle_422(client, handle):
    r = client.post("/v1/users", {"handle": handle, "display_name": "t", "password": PASSWORD})
    doc = assert_problem(r, 422)
    assert "handle" in field_names(doc)


@pytest.mark.parametrize("password", ["1234567", "p" * 257, ""], ids=["7", "257", "empty"])
def test_bad_password_length_422(client, password):
    r = client.post(
        "/v1/users", {"handle": unique_handle(), "display_name": "t", "password": password}
    )
    doc = assert_problem(r, 422)
    assert "password" in field_names(doc)


def test_password_length_bounds_accepted(client):
    for pw in ("12345678", "p" * 256, "é" * 4):  # "é"*4 is 8 bytes
        handle = unique_handle()
        r = client.post("/v1/users", {"handle": handle, "display_name": "t", "password": pw})
        assert_json_response(r, 201)
        assert login(client, handle, pw)


def test_password_counts_bytes_not_characters(client):
    # 7 characters, 14 bytes: long enough in bytes.
    handle = unique_handle()
    r = client.post("/v1/users", {"handle": handle, "display_name": "t", "password": "é" * 7})
    assert_json_response(r, 201)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"display_name": "t", "password": PASSWORD}, "handle"),
        ({"handle": "HANDLE", "display_name": "t"}, "password"),
        ({"handle": 12345, "display_name": "t", "password": PASSWORD}, "handle"),
        ({"handle": None, "display_name": "t", "password": PASSWORD}, "handle"),
        ({"handle": "okhandle", "display_name": 7, "password": PASSWORD}, "display_name"),
        ({"handle": "okhandle", "display_name": "t", "password": ["x" * 10]}, "password"),
    ],
)
def test_wrong_shape_fields_422(client, body, field):
    if body.get("handle") == "HANDLE":
        body = dict(body, handle=unique_handle())
    r = client.post("/v1/users", body)
    doc = assert_problem(r, 422)
    assert field in field_names(doc)


@pytest.mark.parametrize("body", [b"[]", b'"user"', b"42", b"null", b"true"])
def test_json_not_an_object_422(client, body):
    r = client.request("POST", "/v1/users", [("Content-Type", "application/json")], body)
    assert_problem(r, 422)


@pytest.mark.parametrize(
    "body",
    [b'{"handle":', b"{handle: 1}", b"", b'{"handle":"abc",}', b"{}}", b"\xef\xbb\xbf{}x"],
)
def test_malformed_json_400(client, body):
    r = client.request("POST", "/v1/users", [("Content-Type", "application/json")], body)
    assert_problem(r, 400)


def test_deeply_nested_json_rejected_not_crashing(client):
    body = b"[" * 30000 + b"]" * 30000
    r = client.request("POST", "/v1/users", [("Content-Type", "application/json")], body)
    doc = assert_problem(r, 400)
    assert doc["detail"].startswith("the body is not valid JSON: "), doc
    assert client.get("/healthz").status == 200


def test_invalid_utf8_in_json_400(client):
    body = b'{"handle":"abc_def","display_name":"bad \xff\xfe","password":"12345678"}'
    r = client.request("POST", "/v1/users", [("Content-Type", "application/json")], body)
    assert_problem(r, 400)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_415(client, ctype):
    body = json.dumps({"handle": unique_handle(), "display_name": "t", "password": PASSWORD})
    headers = [("Content-Type", ctype)] if ctype else []
    r = client.request("POST", "/v1/users", headers, body.encode())
    assert_problem(r, 415)


def test_get_unknown_user_404(client):
    assert_problem(client.get("/v1/users/1234567890123"), 404)


@pytest.mark.parametrize("bad", ["abc", "-1", "0x10", "99999999999999999999999"])
def test_get_user_bad_id_rejected(client, bad):
    # Not a valid id: no such resource (the server does not distinguish).
    doc = assert_problem(client.get("/v1/users/" + bad), 404)
    assert doc["detail"] == "no such resource: ids are positive decimal integers", doc


def test_patch_own_display_name(client):
    user, token = new_account(client)
    r = client.patch("/v1/users/" + user["id"], {"display_name": "Renamed"}, token=token)
    doc = assert_json_response(r, 200)
    check_user(doc, user["handle"], "Renamed")
    assert doc["id"] == user["id"]
    assert doc["created_at"] == user["created_at"]
    assert doc["updated_at"] >= user["updated_at"]
    got = client.get("/v1/users/" + user["id"]).json()
    assert got["display_name"] == "Renamed"


def test_patch_handle_not_changed(client):
    # v1 patches display_name only: a handle in the body does not rename.
    user, token = new_account(client)
    r = client.patch(
        "/v1/users/" + user["id"], {"display_name": "d", "handle": "zz_new_handle"}, token=token
    )
    doc = assert_json_response(r, 200)
    assert (doc["handle"], doc["display_name"]) == (user["handle"], "d"), doc
    assert client.get("/v1/users/" + user["id"]).json()["handle"] == user["handle"]


def test_patch_other_user_403(client):
    victim, _ = new_account(client, "victim")
    _, token = new_account(client, "attacker")
    r = client.patch("/v1/users/" + victim["id"], {"display_name": "pwned"}, token=token)
    assert_problem(r, 403)
    assert client.get("/v1/users/" + victim["id"]).json()["display_name"] == "Test User"


def test_patch_without_token_401(client):
    user = create_user(client)
    r = client.patch("/v1/users/" + user["id"], {"display_name": "anon"})
    assert_problem(r, 401)
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r
    assert client.get("/v1/users/" + user["id"]).json()["display_name"] == "Test User"


def test_patch_bad_display_name_type_422(client):
    user, token = new_account(client)
    r = client.patch("/v1/users/" + user["id"], {"display_name": 5}, token=token)
    doc = assert_problem(r, 422)
    assert "display_name" in field_names(doc)


def test_patch_wrong_content_type_415(client):
    user, token = new_account(client)
    r = client.request(
        "PATCH",
        "/v1/users/" + user["id"],
        [("Content-Type", "text/plain"), ("Authorization", "Bearer " + token)],
        b'{"display_name":"x"}',
    )
    assert_problem(r, 415)


def test_users_405_with_allow(client):
    user = create_user(client)
    r = client.request("DELETE", "/v1/users/" + user["id"])
    assert_problem(r, 405)
    allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
    assert allow == {"GET", "HEAD", "PATCH"}, r
    r = client.request("GET", "/v1/users")
    assert_problem(r, 405)
    allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
    assert allow == {"POST"}, r


def test_password_with_nul_is_refused(client):
    # A C string would stop at U+0000 (then "secretpw" would log in too), so
    # the server refuses NUL in a password: valid JSON, so 422, not 400.
    handle = unique_handle("nul")
    r = client.post(
        "/v1/users", {"handle": handle, "display_name": "n", "password": "secretpw\u0000tail"}
    )
    doc = assert_problem(r, 422)
    assert doc["errors"] == [{"field": "password", "message": "must not contain U+0000"}], doc
    assert_problem(client.post("/v1/sessions", {"handle": handle, "password": "secretpw"}), 401)


def test_handle_with_nul_422(client):
    r = client.post(
        "/v1/users", {"handle": "abc\u0000def", "display_name": "n", "password": PASSWORD}
    )
    doc = assert_problem(r, 422)
    assert "handle" in field_names(doc)


def test_display_name_with_nul_422(client):
    handle = unique_handle()
    r = client.post(
        "/v1/users", {"handle": handle, "display_name": "a\u0000b", "password": PASSWORD}
    )
    doc = assert_problem(r, 422)
    assert doc["errors"] == [{"field": "display_name", "message": "must not contain U+0000"}], doc
    # Nothing was created under the handle.
    assert_problem(client.post("/v1/sessions", {"handle": handle, "password": PASSWORD}), 401)
