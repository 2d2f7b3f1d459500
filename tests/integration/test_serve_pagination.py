"""GET /v1/users/{id}/items: newest-first keyset pagination."""

import pytest

from conftest import LADDER_URL
from ladder_http import (
    assert_json_response,
    assert_problem,
    create_item,
    create_user,
    new_account,
)

N_ITEMS = 45


@pytest.fixture(scope="module")
def populated(server):
    """A user with 45 items (created in order) and a neighbour with 3;
    returns the user, its token and its item ids newest first."""
    c = server.client()
    try:
        user, token = new_account(c, "pager")
        ids = [create_item(c, token, "item %02d" % i)["id"] for i in range(N_ITEMS)]
        _, ntoken = new_account(c, "neighbour")
        for i in range(3):
            create_item(c, ntoken, "neighbour %d" % i)
    finally:
        c.close()
    # Newest first is id order. One node makes ids in the order it creates
    # them; several nodes behind a balancer (LADDER_URL) make ids ordered to
    # the millisecond only (docs/api.md), so two creates of one millisecond
    # on two nodes may come in either order.
    newest = sorted(ids, key=int, reverse=True)
    if not LADDER_URL:
        assert newest == list(reversed(ids))
    return user, token, newest


def by_id_newest_first(*items):
    return sorted(items, key=lambda it: int(it["id"]), reverse=True)


def walk(client, user_id, limit):
    pages, cursor = [], None
    for _ in range(N_ITEMS + 2):  # bounded: never loops forever
        q = "?limit=%d" % limit
        if cursor is not None:
            q += "&cursor=" + cursor
        r = client.get("/v1/users/%s/items%s" % (user_id, q))
        doc = assert_json_response(r, 200)
        assert set(doc) == {"items", "next_cursor"}, doc
        pages.append(doc["items"])
        cursor = doc["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and cursor, doc
    raise AssertionError("pagination did not end")


def test_walk_pages_of_20_newest_first(client, populated):
    user, _, ids = populated
    pages = walk(client, user["id"], 20)
    assert [len(p) for p in pages] == [20, 20, 5]
    got = [it["id"] for p in pages for it in p]
    assert len(set(got)) == len(got), "duplicates across pages"
    assert got == ids, "not newest first, or gaps"
    contents = [it["content"] for p in pages for it in p]
    assert sorted(contents) == ["item %02d" % i for i in range(N_ITEMS)]
    if not LADDER_URL:
        assert contents == ["item %02d" % i for i in reversed(range(N_ITEMS))]
    for p in pages:
        for it in p:
            assert it["user_id"] == user["id"]
            assert set(it) == {"id", "user_id", "content", "created_at", "updated_at", "version"}


@pytest.mark.parametrize("limit", [1, 7, 44, 45, 100])
def test_walk_other_limits(client, populated, limit):
    user, _, ids = populated
    pages = walk(client, user["id"], limit)
    got = [it["id"] for p in pages for it in p]
    assert got == ids
    assert all(len(p) <= limit for p in pages)
    assert all(len(p) == limit for p in pages[:-1])


def test_default_limit_is_20(client, populated):
    user, _, ids = populated
    doc = client.get("/v1/users/%s/items" % user["id"]).json()
    assert [it["id"] for it in doc["items"]] == ids[:20]
    assert doc["next_cursor"]


def test_user_without_items_empty_list(client):
    user = create_user(client)
    doc = assert_json_response(client.get("/v1/users/%s/items" % user["id"]), 200)
    assert doc == {"items": [], "next_cursor": None}


def test_deleted_and_new_items_reflected(client, populated):
    user, token, ids = populated
    c_user, c_token = new_account(client, "mut")
    b, a = by_id_newest_first(create_item(client, c_token, "a"), create_item(client, c_token, "b"))
    first = client.get("/v1/users/%s/items?limit=1" % c_user["id"]).json()
    assert [it["id"] for it in first["items"]] == [b["id"]]
    assert client.delete("/v1/items/" + b["id"], token=c_token).status == 204
    # The cursor is a key, not an offset: deleting the item on page one does
    # not make page two skip anything.
    second = client.get(
        "/v1/users/%s/items?limit=1&cursor=%s" % (c_user["id"], first["next_cursor"])
    ).json()
    assert [it["id"] for it in second["items"]] == [a["id"]]
    all_items = client.get("/v1/users/%s/items" % c_user["id"]).json()
    assert [it["id"] for it in all_items["items"]] == [a["id"]]


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "", "1.5", "20x"])
def test_bad_limit_400(client, populated, limit):
    user, _, _ = populated
    r = client.get("/v1/users/%s/items?limit=%s" % (user["id"], limit))
    assert_problem(r, 400)


@pytest.mark.parametrize("cursor", ["garbage", "!!!!", "-1", "%00", "x" * 300])
def test_garbage_cursor_400(client, populated, cursor):
    user, _, _ = populated
    r = client.get("/v1/users/%s/items?cursor=%s" % (user["id"], cursor))
    assert_problem(r, 400)


def test_list_of_unknown_user_404(client):
    assert_problem(client.get("/v1/users/1234567890123/items"), 404)
