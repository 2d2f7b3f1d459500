"""Photos end to end on object storage: `ladder serve` and `ladder worker`
with --blob-store s3 against s3rver (a real S3 protocol server, started
here). The client PUTs the bytes to a presigned S3 URL (they never pass
through ladder), ladder checks the object at complete, the worker reads
the original from S3 and writes the versions there, version GETs redirect
to presigned S3 GETs, and a delete removes every object."""

import http.client
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import LadderServer, free_port
from ladder_http import assert_json_response, assert_problem, new_account
from photo_helpers import Worker, decodes, image_size, make_jpeg, worker_store_flags


@pytest.fixture
def s3(tmp_path):
    # A missing peer is a broken setup, not a reason to skip: a skipped
    # test passes without testing anything (test_blob_s3.c fails too).
    assert shutil.which("s3rver") is not None, "s3rver missing: scripts/deps.sh test installs it"
    port = free_port()
    d = tmp_path / "s3rver"
    proc = subprocess.Popen(
        ["s3rver", "-d", str(d), "-a", "127.0.0.1", "-p", str(port), "-s",
         "--configure-bucket", "photos"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None, "s3rver exited"
            time.sleep(0.05)
    yield {"endpoint": "http://127.0.0.1:%d" % port, "dir": d}
    proc.terminate()
    proc.wait(timeout=10)


def s3_flags(s3):
    return [
        "--blob-store", "s3", "--s3-endpoint", s3["endpoint"], "--s3-bucket", "photos",
        "--s3-access-key", "S3RVER", "--s3-secret-key", "S3RVER", "--s3-path-style", "on",
    ]  # fmt: skip


def raw(method, url, body=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request(method, u.path + "?" + u.query, body=body)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


class ServerBox:
    def __init__(self, root, data):
        self.root = root
        self.data = data
        self.store_flags = worker_store_flags(data)


def test_photos_on_s3_end_to_end(tmp_path, s3):
    jpeg = make_jpeg(tmp_path / "p.jpg", 1200, 900)
    srv = LadderServer(tmp_path, flags=[*s3_flags(s3), "--sync", "off"])
    srv.start()
    w = None
    try:
        c = srv.client()
        _, token = new_account(c, "s3")
        doc = assert_json_response(c.request("POST", "/v1/photos", token=token), 201)
        pid = doc["photo"]["id"]
        url = doc["upload"]["url"]
        # A presigned S3 URL: the bytes go to the object store directly.
        assert url.startswith(s3["endpoint"] + "/photos/uploads/%s/original?" % pid)
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=900" in url
        status, _ = raw("PUT", url, jpeg)
        assert status == 200
        done = assert_json_response(c.request("POST", doc["complete"], token=token), 202)
        assert (done["size"], done["width"], done["height"]) == (len(jpeg), 1200, 900)
        w = Worker(ServerBox(tmp_path, srv.data_dir), *s3_flags(s3))
        deadline = time.monotonic() + 20
        while True:
            got = assert_json_response(c.get("/v1/photos/" + pid), 200)
            if got["status"] != "processing" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got["status"] == "ready", got
        for name, size in (("128", (128, 96)), ("512", (512, 384)), ("1600", (1200, 900))):
            r = c.get("/v1/photos/%s/%s" % (pid, name))
            assert r.status == 302, r
            loc = r.header("Location")
            assert loc.startswith(s3["endpoint"] + "/photos/photos/%s/%s.jpg?" % (pid, name))
            status, data = raw("GET", loc)
            assert status == 200 and len(data) == got["versions"][name]["size"]
            f = tmp_path / ("v%s.jpg" % name)
            f.write_bytes(data)
            assert image_size(f) == size and decodes(f)
        r = c.get("/v1/photos/%s/original" % pid)
        assert r.status == 302
        assert raw("GET", r.header("Location")) == (200, jpeg)
        # Nothing of the photo was ever written under the data directory.
        assert not (srv.data_dir / "blobs" / "photos" / pid).exists()
        # Delete: the worker removes every object from the bucket.
        assert c.delete("/v1/photos/" + pid, token=token).status == 204
        deadline = time.monotonic() + 20
        left = None
        while time.monotonic() < deadline:
            left = [p for p in s3["dir"].rglob("*") if p.is_file() and "/%s/" % pid in str(p)]
            if not left:
                break
            time.sleep(0.05)
        assert left == []
        c.close()
    finally:
        if w:
            assert w.stop() == 0
        assert srv.stop() == 0


def test_presigned_upload_url_cannot_replace_the_original(tmp_path, s3):
    """A presigned S3 PUT URL cannot be revoked: it stays good until it
    expires, after complete too. It names a staging key, which complete
    copies to the original's key inside the object store (then deletes), so
    a PUT after complete lands in the staging key, never in the original
    that was checked and that GETs serve; a delete removes the straggler
    too."""
    jpeg = make_jpeg(tmp_path / "p.jpg", 600, 400)
    other = make_jpeg(tmp_path / "o.jpg", 300, 200)
    srv = LadderServer(tmp_path, flags=[*s3_flags(s3), "--sync", "off"])
    srv.start()
    w = None
    try:
        c = srv.client()
        _, token = new_account(c, "sr")
        doc = assert_json_response(c.request("POST", "/v1/photos", token=token), 201)
        pid, url = doc["photo"]["id"], doc["upload"]["url"]
        assert raw("PUT", url, jpeg)[0] == 200
        # Not complete: nothing at the original's key yet.
        assert_problem(c.get("/v1/photos/%s/original" % pid), 404)
        done = assert_json_response(c.request("POST", doc["complete"], token=token), 202)
        assert (done["size"], done["width"], done["height"]) == (len(jpeg), 600, 400)
        assert raw("PUT", url, other)[0] == 200
        r = c.get("/v1/photos/%s/original" % pid)
        assert r.status == 302
        assert raw("GET", r.header("Location")) == (200, jpeg)
        assert url.startswith(s3["endpoint"] + "/photos/uploads/%s/original?" % pid)
        assert c.delete("/v1/photos/" + pid, token=token).status == 204
        w = Worker(ServerBox(tmp_path, srv.data_dir), *s3_flags(s3))
        deadline = time.monotonic() + 20
        left = None
        while time.monotonic() < deadline:
            left = [p for p in s3["dir"].rglob("*") if p.is_file() and "/%s/" % pid in str(p)]
            if not left:
                break
            time.sleep(0.05)
        assert left == []
        c.close()
    finally:
        if w:
            assert w.stop() == 0
        assert srv.stop() == 0


def test_s3_settings_are_checked(tmp_path):
    from conftest import run_cli

    r = run_cli("serve", "--data", str(tmp_path / "d"), "--blob-store", "s3",
                "--listen", "127.0.0.1:%d" % free_port())  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.decode() == "ladder serve: s3_endpoint: must be set when blob_store is s3\n"
    r = run_cli("serve", "--blob-store", "gcs")
    assert r.returncode == 2
    assert r.stderr.decode() == "ladder serve: --blob-store: 'gcs' is not one of: fs|s3\n"
