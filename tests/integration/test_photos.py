"""Photos end to end on the single box: POST /v1/photos, PUT the bytes to
the signed URL, complete, a `ladder worker` makes the versions, GET them
(real decoded images of the right size, immutable caching, ETags), list,
delete; and every refusal with its exact status: 413, 415, 422, 429, 403 for
a bad or expired URL, 409 out of order."""

import json
import os
import time

import pytest

from conftest import LadderServer
from ladder_http import Conn, assert_json_response, assert_problem, new_account
from photo_helpers import Worker, decodes, image_size, make_jpeg, png_bomb, worker_store_flags

IMMUTABLE = "public, max-age=31536000, immutable"


class ServerBox:
    """What Worker needs from a box: the server's data directory and store."""

    def __init__(self, root, data):
        self.root = root
        self.data = data
        self.store_flags = worker_store_flags(data)


@pytest.fixture
def photo_server(tmp_path):
    srv = LadderServer(
        tmp_path, flags=["--photo-upload-max", "2MiB", "--photo-uploads", "2", "--sync", "off"]
    )
    srv.start()
    yield srv
    if srv.alive():
        assert srv.stop() == 0


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory):
    return make_jpeg(tmp_path_factory.mktemp("img") / "p.jpg", 2000, 1500)


def start_upload(c, token):
    r = c.request("POST", "/v1/photos", token=token)
    doc = assert_json_response(r, 201)
    assert r.header("Location") == "/v1/photos/" + doc["photo"]["id"]
    return doc


def put_bytes(c, url, data, ctype="application/octet-stream"):
    return c.request("PUT", url, headers=[("Content-Type", ctype)], body=data)


def upload(c, token, data):
    doc = start_upload(c, token)
    r = put_bytes(c, doc["upload"]["url"], data)
    assert r.status == 204, r
    return doc["photo"]["id"]


def test_upload_complete_poll_fetch_every_version(photo_server, tmp_path, jpeg):
    c = photo_server.client()
    user, token = new_account(c, "ph")
    doc = start_upload(c, token)
    p = doc["photo"]
    assert p["status"] == "uploading" and p["user_id"] == user["id"]
    assert doc["upload"]["method"] == "PUT"
    assert doc["upload"]["url"].startswith("/v1/photos/%s/content?expires=" % p["id"])
    assert doc["upload"]["max_bytes"] == 2 * 1024 * 1024
    assert doc["complete"] == "/v1/photos/%s/complete" % p["id"]
    # The bytes go to the signed URL: no bearer token needed.
    r = put_bytes(c, doc["upload"]["url"], jpeg)
    assert r.status == 204, r
    # Not complete yet: no original to fetch.
    assert_problem(c.get("/v1/photos/%s/original" % p["id"]), 404)
    r = c.request("POST", doc["complete"], token=token)
    done = assert_json_response(r, 202)
    assert done["status"] == "processing"
    assert (done["content_type"], done["size"]) == ("image/jpeg", len(jpeg))
    assert (done["width"], done["height"]) == (2000, 1500)
    # The original is there at once, before any thumbnail.
    r = c.get("/v1/photos/%s/original" % p["id"])
    assert r.status == 200 and r.body == jpeg
    assert r.header("Content-Type") == "image/jpeg"
    assert r.header("Cache-Control") == IMMUTABLE
    w = Worker(ServerBox(tmp_path, photo_server.data_dir))
    try:
        deadline = time.monotonic() + 20
        while True:
            r = c.get("/v1/photos/" + p["id"])
            got = assert_json_response(r, 200)
            if got["status"] != "processing" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got["status"] == "ready", got
        assert r.header("Cache-Control") == "no-cache"
        assert sorted(got["versions"]) == ["128", "1600", "512", "original"]
        want = {"128": (128, 96), "512": (512, 384), "1600": (1600, 1200)}
        for name, (ww, hh) in want.items():
            v = got["versions"][name]
            assert v["url"] == "/v1/photos/%s/%s" % (p["id"], name)
            assert (v["width"], v["height"]) == (ww, hh)
            r = c.get(v["url"])
            assert r.status == 200, r
            assert r.header("Content-Type") == "image/jpeg"
            assert r.header("Cache-Control") == IMMUTABLE
            assert r.header("Content-Encoding") is None
            assert len(r.body) == v["size"]
            f = tmp_path / ("got_%s.jpg" % name)
            f.write_bytes(r.body)
            assert image_size(f) == (ww, hh) and decodes(f)
            etag = r.header("ETag")
            assert etag and etag.startswith('"')
            r = c.get(v["url"], headers=[("If-None-Match", etag)])
            assert r.status == 304 and r.header("ETag") == etag
        # Listed, newest first.
        r = c.get("/v1/users/%s/photos" % user["id"])
        lst = assert_json_response(r, 200)
        assert [x["id"] for x in lst["photos"]] == [p["id"]]
        assert lst["next_cursor"] is None
        # Delete: gone from the API at once, its objects removed by the worker.
        assert c.delete("/v1/photos/" + p["id"], token=token).status == 204
        assert_problem(c.get("/v1/photos/" + p["id"]), 404)
        blob_dir = photo_server.data_dir / "blobs" / "photos" / p["id"]
        deadline = time.monotonic() + 20
        while blob_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not blob_dir.exists()
    finally:
        assert w.stop() == 0
    c.close()


def test_partial_photo_ships_its_small_versions(photo_server, tmp_path, jpeg):
    """The partial tier through the API: the 1600 version fails (its
    thumbnailer hangs and is killed at the time limit), the small ones
    ship. The photo is `partial` with the reason naming the version, lists
    the original, 128 and 512 (each served), and 1600 is a 404."""
    c = photo_server.client()
    _, token = new_account(c, "pt")
    pid = upload(c, token, jpeg)
    assert c.request("POST", "/v1/photos/%s/complete" % pid, token=token).status == 202
    w = Worker(ServerBox(tmp_path, photo_server.data_dir), "--job-timeout", "4s",
               env={"LADDER_TEST_THUMBNAILER_FAULT": "hang:1600"})  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            got = assert_json_response(c.get("/v1/photos/" + pid), 200)
            if got["status"] != "processing" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got["status"] == "partial", got
        assert got["reason"] == "1600: over the time limit of 4 s"
        assert sorted(got["versions"]) == ["128", "512", "original"]
        assert (got["versions"]["512"]["width"], got["versions"]["512"]["height"]) == (512, 384)
        for name in ("original", "128", "512"):
            r = c.get(got["versions"][name]["url"])
            assert r.status == 200 and r.header("Cache-Control") == IMMUTABLE
        d = assert_problem(c.get("/v1/photos/%s/1600" % pid), 404)
        assert d["detail"] == "this version does not exist (yet): see the photo's status"
    finally:
        assert w.stop() == 0
    c.close()


def test_photo_list_pages(photo_server, jpeg):
    """A user's photos, newest first, in keyset pages: the limit, the
    cursor of the last row, null at the end; the same 400s as the item
    list."""
    c = photo_server.client()
    user, token = new_account(c, "pl")
    ids = [start_upload(c, token)["photo"]["id"] for _ in range(2)]
    base = "/v1/users/%s/photos" % user["id"]
    page = assert_json_response(c.get(base + "?limit=1"), 200)
    assert [p["id"] for p in page["photos"]] == [ids[1]]
    assert page["photos"][0]["status"] == "uploading" and "versions" not in page["photos"][0]
    page = assert_json_response(c.get(base + "?limit=1&cursor=" + page["next_cursor"]), 200)
    assert [p["id"] for p in page["photos"]] == [ids[0]]
    assert page["next_cursor"] is None
    d = assert_problem(c.get(base + "?limit=0"), 400)
    assert d["detail"] == "limit must be an integer from 1 to 100"
    d = assert_problem(c.get(base + "?cursor=zz"), 400)
    assert d["detail"] == "cursor is not one this server gave out"
    c.close()


def test_refusals_have_exact_statuses(photo_server, jpeg):
    c = photo_server.client()
    _, token = new_account(c, "rf")
    _, other = new_account(c, "ot")
    # 401 without a token.
    assert_problem(c.request("POST", "/v1/photos"), 401)
    # 413: larger than --photo-upload-max, refused before the body is read.
    doc = start_upload(c, token)
    big = b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024)
    d = assert_problem(put_bytes(c, doc["upload"]["url"], big), 413)
    assert d["detail"] == "the request body is larger than the limit"
    c.close()
    # 415: the wrong magic bytes, whatever the name or Content-Type says.
    r = put_bytes(c, doc["upload"]["url"], b"GIF89a" + b"\0" * 64, "image/jpeg")
    assert r.status == 204
    d = assert_problem(c.request("POST", doc["complete"], token=token), 415)
    assert d["detail"] == "the bytes are not a JPEG, PNG or WebP image (by their magic bytes)"
    # 422: a decompression bomb, refused from its header.
    r = put_bytes(c, doc["upload"]["url"], png_bomb(), "image/png")
    assert r.status == 204
    d = assert_problem(c.request("POST", doc["complete"], token=token), 422)
    assert d["detail"] == "20000 x 20000 pixels is over the limit of 50000000"
    # 403: another user's photo; 409: completing twice.
    assert r.status == 204
    put_bytes(c, doc["upload"]["url"], jpeg)
    assert_problem(c.request("POST", doc["complete"], token=other), 403)
    assert c.request("POST", doc["complete"], token=token).status == 202
    d = assert_problem(c.request("POST", doc["complete"], token=token), 409)
    assert d["detail"] == "the photo is processing, not uploading"
    # The bytes of a completed photo never change.
    d = assert_problem(put_bytes(c, doc["upload"]["url"], jpeg), 409)
    assert d["detail"] == "the photo is processing: its bytes can no longer change"
    # 409: completing with nothing uploaded.
    doc2 = start_upload(c, token)
    d = assert_problem(c.request("POST", doc2["complete"], token=token), 409)
    assert d["detail"] == "no bytes were uploaded for this photo"
    # 429: the in-flight cap (2 here; doc2 and doc3 are in flight).
    start_upload(c, token)
    r = c.request("POST", "/v1/photos", token=token)
    d = assert_problem(r, 429)
    assert d["detail"] == (
        "2 uploads are in flight, the most allowed: complete one, or let its URL expire"
    )
    assert r.header("Retry-After") == "900"
    # 403: a tampered or foreign signature, a URL for another photo.
    url = doc2["upload"]["url"]
    small = jpeg[:1000]
    d = assert_problem(put_bytes(c, url[:-2] + ("AA" if url[-2:] != "AA" else "BB"), small), 403)
    assert d["detail"] == "the upload URL's signature does not match"
    pid, pid2 = doc["photo"]["id"], doc2["photo"]["id"]
    d = assert_problem(put_bytes(c, url.replace("/%s/" % pid2, "/%s/" % pid), small), 403)
    assert d["detail"] == "the upload URL's signature does not match"
    d = assert_problem(put_bytes(c, "/v1/photos/%s/content" % pid2, small), 403)
    assert d["detail"] == "an upload needs the URL POST /v1/photos gave out"
    # Without a valid URL a request keeps the ordinary body cap: nobody
    # can make the server take upload_max bytes without one.
    d = assert_problem(put_bytes(c, "/v1/photos/%s/content" % pid2, jpeg), 413)
    c.close()
    # 404 for versions that do not exist yet, and for a missing photo.
    assert_problem(c.get("/v1/photos/%s/128" % pid), 404)
    assert_problem(c.get("/v1/photos/999999999"), 404)
    c.close()


def test_upload_url_cannot_replace_a_completed_original(photo_server, tmp_path, jpeg):
    """The upload URL writes a staging key that no GET reaches; complete
    moves it to the original's key. Once complete, the still-valid URL can
    no longer change the original: its PUT is refused with 409 and the
    original stays the bytes that were checked."""
    c = photo_server.client()
    _, token = new_account(c, "sk")
    doc = start_upload(c, token)
    pid, url = doc["photo"]["id"], doc["upload"]["url"]
    staged = photo_server.data_dir / "blobs" / "uploads" / pid / "original"
    final = photo_server.data_dir / "blobs" / "photos" / pid / "original"
    assert put_bytes(c, url, jpeg).status == 204
    assert staged.read_bytes() == jpeg
    assert not final.exists()
    assert c.request("POST", doc["complete"], token=token).status == 202
    assert final.read_bytes() == jpeg
    assert not staged.exists()
    other = make_jpeg(tmp_path / "other.jpg", 300, 200)
    d = assert_problem(put_bytes(c, url, other), 409)
    assert d["detail"] == "the photo is processing: its bytes can no longer change"
    assert not staged.exists()
    r = c.get("/v1/photos/%s/original" % pid)
    assert r.status == 200 and r.body == jpeg
    c.close()


def wait_for(cond, secs=10):
    """Polls cond until it holds or secs pass; returns its last value."""
    deadline = time.monotonic() + secs
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def temp_files(pdir):
    """The temporary objects of uploads in progress under a photo's
    directory."""
    return sorted(p.name for p in pdir.glob("original.tmp.*")) if pdir.is_dir() else []


def read_head(raw):
    """The first response head on a raw connection, 1xx included: (status
    line, {header: value})."""
    lines = raw.read_until(b"\r\n\r\n").decode("latin-1")[:-4].split("\r\n")
    return lines[0], {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}


def peak_rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_upload_streams_to_disk_with_bounded_memory(tmp_path, jpeg):
    """A 48 MiB upload, announced and chunked: the server's peak memory grows
    by far less than the body (it is written to a temporary object as it
    arrives, never held whole), and the bytes stored are exactly those
    sent."""
    srv = LadderServer(tmp_path, flags=["--photo-upload-max", "64MiB", "--sync", "off"])
    srv.start()
    try:
        c = srv.client()
        _, token = new_account(c, "st")
        big = jpeg + bytes(range(256)) * ((48 << 20) // 256)
        before = peak_rss_kib(srv.proc.pid)
        doc = start_upload(c, token)
        r = put_bytes(c, doc["upload"]["url"], big)
        assert r.status == 204, r
        grown = peak_rss_kib(srv.proc.pid) - before
        assert grown < 16 * 1024, "peak RSS grew by %d KiB for a 48 MiB body" % grown
        stored = srv.data_dir / "blobs/uploads" / doc["photo"]["id"] / "original"
        assert stored.read_bytes() == big
        # Chunked, in pieces of odd sizes.
        doc = start_upload(c, token)
        parts = [jpeg[:1], jpeg[1:5000], jpeg[5000:]]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        r = c.request(
            "PUT", doc["upload"]["url"], headers=[("Transfer-Encoding", "chunked")], body=body
        )
        assert r.status == 204, r
        stored = srv.data_dir / "blobs/uploads" / doc["photo"]["id"] / "original"
        assert stored.read_bytes() == jpeg
        d = assert_json_response(c.request("POST", doc["complete"], token=token), 202)
        assert d["size"] == len(jpeg)
        # A body cut off mid-way leaves nothing behind: no object, no
        # temporary file, once the server has seen the connection go.
        doc = start_upload(c, token)
        c.close()

        pdir = srv.data_dir / "blobs/uploads" / doc["photo"]["id"]
        with Conn(srv.port) as raw:
            raw.send(
                b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n"
                % doc["upload"]["url"].encode()
                + jpeg[:50000]
            )
            # Close only once the server has the temporary object open:
            # before that there is nothing to clean up, and nothing tested.
            assert wait_for(lambda: temp_files(pdir) != []), "no temporary object appeared"
        assert wait_for(lambda: temp_files(pdir) == []), temp_files(pdir)
        assert list(pdir.iterdir()) == []
        c.close()
    finally:
        assert srv.stop() == 0


def thread_io(pid):
    """{tid: (rchar, wchar)}: what each thread of pid read and wrote
    through system calls (sockets and files alike)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            f = dict(ln.split(": ") for ln in open("/proc/%d/task/%s/io" % (pid, tid)).read().splitlines())
        except OSError:
            continue
        out[int(tid)] = (int(f["rchar"]), int(f["wchar"]))
    return out


def test_upload_is_written_off_the_loop_thread(tmp_path, jpeg):
    """The loop thread reads the upload's 48 MiB from the socket, and the
    pool's threads write them to the file: the loop never waits on the
    disk. Per-thread I/O counters tell which did what."""
    srv = LadderServer(tmp_path, flags=["--photo-upload-max", "64MiB", "--sync", "off"])
    srv.start()
    try:
        c = srv.client()
        _, token = new_account(c, "ol")
        big = jpeg + bytes(range(256)) * ((48 << 20) // 256)
        start = thread_io(srv.proc.pid)
        doc = start_upload(c, token)
        assert put_bytes(c, doc["upload"]["url"], big).status == 204
        stored = srv.data_dir / "blobs/uploads" / doc["photo"]["id"] / "original"
        assert stored.read_bytes() == big
        io = thread_io(srv.proc.pid)
        delta = {t: (r - start.get(t, (0, 0))[0], w - start.get(t, (0, 0))[1]) for t, (r, w) in io.items()}
        readers = [t for t, (r, _) in delta.items() if r >= len(big)]
        assert len(readers) == 1, delta
        assert delta[readers[0]][1] < 1 << 20, delta
        # The pool's threads take the write jobs in turn.
        others = sum(w for t, (_, w) in delta.items() if t != readers[0])
        assert others >= len(big), delta
        c.close()
    finally:
        assert srv.stop() == 0


def test_large_version_is_sent_from_its_file(tmp_path, jpeg):
    """A 48 MiB original: its GET is sent with sendfile from the file, not
    read into memory, so the server's peak memory does not grow by the
    body (complete reads the upload to check it: the peak is measured after
    that); the bytes are exactly the original's, on a keep-alive connection
    that then answers the next request; the ETag's 304 has no body; a HEAD
    has the length and no body."""
    srv = LadderServer(tmp_path, flags=["--photo-upload-max", "64MiB", "--sync", "off"])
    srv.start()
    try:
        c = srv.client()
        _, token = new_account(c, "sf")
        big = jpeg + bytes(range(256)) * ((48 << 20) // 256)
        doc = start_upload(c, token)
        assert put_bytes(c, doc["upload"]["url"], big).status == 204
        assert c.request("POST", doc["complete"], token=token).status == 202
        url = "/v1/photos/%s/original" % doc["photo"]["id"]
        before = peak_rss_kib(srv.proc.pid)
        r = c.get(url)
        assert r.status == 200
        assert r.body == big
        assert r.header("Content-Length") == str(len(big))
        assert r.header("Content-Type") == "image/jpeg"
        assert r.header("Content-Encoding") is None
        assert r.header("Cache-Control") == IMMUTABLE
        grown = peak_rss_kib(srv.proc.pid) - before
        assert grown < 8 * 1024, "peak RSS grew by %d KiB for a 48 MiB GET" % grown
        etag = r.header("ETag")
        assert etag == '"%s.original"' % doc["photo"]["id"]
        # The same connection goes on: the file was the whole body.
        r = c.get(url, headers=[("If-None-Match", etag)])
        assert r.status == 304 and r.body == b"" and r.header("ETag") == etag
        r = c.request("HEAD", url)
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == str(len(big))
        assert c.get("/v1/photos/" + doc["photo"]["id"]).status == 200
        c.close()
    finally:
        assert srv.stop() == 0


def test_expired_upload_url_is_refused(tmp_path, jpeg):
    srv = LadderServer(tmp_path, flags=["--photo-url-ttl", "1s", "--sync", "off"])
    srv.start()
    try:
        c = srv.client()
        _, token = new_account(c, "ex")
        doc = start_upload(c, token)
        expires = int(doc["upload"]["url"].split("expires=")[1].split("&")[0])
        while time.time() < expires + 1.05:
            time.sleep(0.05)
        d = assert_problem(put_bytes(c, doc["upload"]["url"], jpeg[:1000]), 403)
        assert d["detail"] == "the upload URL has expired; start a new upload"
        c.close()
    finally:
        assert srv.stop() == 0


def test_only_the_upload_route_takes_a_large_body(photo_server, jpeg):
    """--photo-upload-max raises the body cap of the upload route alone:
    the same 100 KB on a JSON route is still over max_body (64 KiB)."""
    c = photo_server.client()
    _, token = new_account(c, "bm")
    body = b'{"content":"' + b"x" * 100000 + b'"}'
    r = c.request(
        "POST", "/v1/items", headers=[("Content-Type", "application/json")], body=body, token=token
    )
    d = assert_problem(r, 413)
    assert d["detail"] == "the request body is larger than the limit"
    c.close()
    doc = start_upload(c, token)
    # 300 KB: the bytes are only checked at complete.
    r = put_bytes(c, doc["upload"]["url"], jpeg + b"\0" * (300000 - len(jpeg)))
    assert r.status == 204, r
    assert (photo_server.data_dir / "blobs/uploads" / doc["photo"]["id"] / "original").stat().st_size == 300000
    # And the connection goes on with ordinary requests after the large one.
    r = c.request(
        "POST", "/v1/items", headers=[("Content-Type", "application/json")], body=body, token=token
    )
    assert_problem(r, 413)
    c.close()


def test_upload_that_cannot_be_stored_is_refused_before_its_body(tmp_path, jpeg):
    """When the upload's temporary object cannot be opened (here its photo
    directory is a plain file: ENOTDIR, as a full disk or no descriptors
    would fail it), the server answers 503 at once instead of 100 Continue:
    it never holds the body in memory instead."""
    srv = LadderServer(tmp_path, flags=["--photo-upload-max", "64MiB", "--sync", "off"])
    srv.start()
    try:
        c = srv.client()
        _, token = new_account(c, "ns")
        doc = start_upload(c, token)
        uploads = srv.data_dir / "blobs/uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        (uploads / doc["photo"]["id"]).write_bytes(b"in the way")
        with Conn(srv.port) as raw:
            raw.send(
                b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n"
                b"Expect: 100-continue\r\n\r\n" % doc["upload"]["url"].encode()
            )
            line, hdrs = read_head(raw)
            assert line == "HTTP/1.1 503 Service Unavailable"
            assert hdrs["retry-after"] == "1"
            assert hdrs["content-type"] == "application/problem+json"
            body = json.loads(raw._read_exact(int(hdrs["content-length"])))
            assert body["status"] == 503
            assert body["detail"] == "the upload cannot be stored now; retry after a moment"
        rec = srv.wait_log(lambda r: r.get("msg") == "upload refused: its bytes cannot be stored")
        assert rec is not None
        assert (rec["level"], rec["photo_id"], rec["error"]) == (
            "warn",
            doc["photo"]["id"],
            "Not a directory",
        )
        # Once the way is clear the same URL takes the upload.
        (uploads / doc["photo"]["id"]).unlink()
        r = put_bytes(c, doc["upload"]["url"], jpeg)
        assert r.status == 204, r
        c.close()
    finally:
        assert srv.stop() == 0


def test_one_upload_at_a_time_per_photo(photo_server, jpeg):
    """The upload URL may be reused, but not by two uploads at once: while
    one is streaming, another to the same photo is refused with 409 before
    its body is read."""
    c = photo_server.client()
    _, token = new_account(c, "pa")
    doc = start_upload(c, token)
    url = doc["upload"]["url"].encode()
    pdir = photo_server.data_dir / "blobs/uploads" / doc["photo"]["id"]
    with Conn(photo_server.port) as first:
        first.send(
            b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (url, len(jpeg))
            + jpeg[:1000]
        )
        assert wait_for(lambda: temp_files(pdir) != []), "no temporary object appeared"
        with Conn(photo_server.port) as second:
            second.send(
                b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                b"Expect: 100-continue\r\n\r\n" % (url, len(jpeg))
            )
            line, hdrs = read_head(second)
            assert line == "HTTP/1.1 409 Conflict"
            body = json.loads(second._read_exact(int(hdrs["content-length"])))
            assert body["detail"] == "another upload of this photo is in progress"
        first.send(jpeg[1000:])
        assert first.read_response("PUT").status == 204
    # One at a time, not once: the first is done, so the URL works again.
    r = put_bytes(c, doc["upload"]["url"], jpeg)
    assert r.status == 204, r
    assert (pdir / "original").read_bytes() == jpeg
    c.close()


def test_no_complete_while_an_upload_streams(photo_server, jpeg):
    """A complete moves the staging key and checks it: while an upload of
    the photo is streaming into it, complete is refused with 409 (it would
    check bytes about to be replaced); once that upload is done it goes."""
    c = photo_server.client()
    _, token = new_account(c, "pc")
    doc = start_upload(c, token)
    url = doc["upload"]["url"].encode()
    assert put_bytes(c, doc["upload"]["url"], jpeg).status == 204
    pdir = photo_server.data_dir / "blobs/uploads" / doc["photo"]["id"]
    with Conn(photo_server.port) as up:
        up.send(
            b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (url, len(jpeg))
            + jpeg[:1000]
        )
        assert wait_for(lambda: temp_files(pdir) != []), "no temporary object appeared"
        d = assert_problem(c.request("POST", doc["complete"], token=token), 409)
        assert d["detail"] == "an upload of this photo is in progress: complete it after"
        up.send(jpeg[1000:])
        assert up.read_response("PUT").status == 204
    done = assert_json_response(c.request("POST", doc["complete"], token=token), 202)
    assert done["size"] == len(jpeg)
    c.close()


def test_slow_upload_that_crosses_expiry_is_kept(tmp_path, jpeg):
    """The URL is checked when the upload's header arrives; an upload that
    started in time is not thrown away because its bytes took longer than
    what was left of the URL's life."""
    srv = LadderServer(tmp_path, flags=["--photo-url-ttl", "1s", "--sync", "off"])
    srv.start()
    try:
        c = srv.client()
        _, token = new_account(c, "sl")
        doc = start_upload(c, token)
        url = doc["upload"]["url"]
        expires = int(url.split("expires=")[1].split("&")[0])
        pdir = srv.data_dir / "blobs/uploads" / doc["photo"]["id"]
        with Conn(srv.port) as raw:
            raw.send(
                b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                % (url.encode(), len(jpeg))
                + jpeg[:1000]
            )
            assert wait_for(lambda: temp_files(pdir) != []), "no temporary object appeared"
            # Slow, not stalled: a byte now and then (under the body
            # timeout) until the URL has expired.
            sent = 1000
            while time.time() < expires + 1.05:
                time.sleep(0.2)
                raw.send(jpeg[sent : sent + 1])
                sent += 1
            raw.send(jpeg[sent:])
            r = raw.read_response("PUT")
            assert r.status == 204, r
        assert (pdir / "original").read_bytes() == jpeg
        # A new upload on the expired URL is still refused.
        d = assert_problem(put_bytes(c, url, jpeg[:1000]), 403)
        assert d["detail"] == "the upload URL has expired; start a new upload"
        c.close()
    finally:
        assert srv.stop() == 0
