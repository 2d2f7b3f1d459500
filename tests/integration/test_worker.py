"""`ladder worker` against a real data directory: thumbnails end to end
(decoded, of the right size), hostile images ending in their documented
status without harming the worker, a worker SIGKILLed mid-job whose job
another worker completes once, the dead state after repeated failures,
removal of a deleted photo's objects, metrics, and a clean SIGTERM drain.

Photos are put in place the way the API does it (row, object, then the
update that queues the job through the outbox trigger)."""

import os
import time

import pytest

from ladder_http import Conn
from photo_helpers import (
    Box,
    Worker,
    decodes,
    image_size,
    interlaced_png_bomb,
    make_jpeg,
    png_bomb,
)


@pytest.fixture
def box(tmp_path):
    b = Box(tmp_path)
    yield b
    b.db.close()


@pytest.fixture(scope="module")
def jpeg_3000(tmp_path_factory):
    return make_jpeg(tmp_path_factory.mktemp("img") / "big.jpg", 3000, 2000)


def test_thumbnails_end_to_end(box, jpeg_3000):
    w = Worker(box)
    try:
        pid = box.add_photo(jpeg_3000)
        p = box.wait_status(pid, ("ready", "partial", "failed"))
        assert p == {"status": "ready", "reason": "", "width": 3000, "height": 2000, "version": 2}
        v = box.versions(pid)
        assert sorted(v) == ["128", "1600", "512"]
        want = {"128": (128, 85), "512": (512, 341), "1600": (1600, 1067)}
        for name, (ww, hh) in want.items():
            path = box.blob(pid, name + ".jpg")
            assert (v[name]["width"], v[name]["height"]) == (ww, hh)
            assert v[name]["size"] == path.stat().st_size
            assert image_size(path) == (ww, hh)
            assert decodes(path)
            assert v[name]["etag"].startswith('"') and len(v[name]["etag"]) == 18
        # The original is untouched, and the job is gone.
        assert box.blob(pid, "original").read_bytes() == jpeg_3000
        assert box.jobs() == []
        # A small original is never enlarged.
        small = make_jpeg(box.root / "small.jpg", 300, 200)
        pid = box.add_photo(small)
        assert box.wait_status(pid, ("ready",))["status"] == "ready"
        v = box.versions(pid)
        assert (v["512"]["width"], v["512"]["height"]) == (300, 200)
        assert (v["1600"]["width"], v["1600"]["height"]) == (300, 200)
        assert (v["128"]["width"], v["128"]["height"]) == (128, 85)
    finally:
        assert w.stop() == 0
    assert any(e.get("msg") == "worker stopped cleanly" for e in w.logs())


def test_hostile_images_end_in_failed_without_harm(box, jpeg_3000):
    w = Worker(box)
    try:
        bomb = box.add_photo(png_bomb(), "image/png")
        truncated = box.add_photo(jpeg_3000[: len(jpeg_3000) // 2])
        corrupt = box.add_photo(b"\xff\xd8\xff\xe0" + bytes((i * 131 + 7) & 255 for i in range(5000)))
        wrong = box.add_photo(b"GIF89a" + b"\0" * 100, "image/jpeg")
        p = box.wait_status(bomb, ("ready", "partial", "failed"))
        assert p["status"] == "failed"
        assert p["reason"] == "20000 x 20000 pixels is over the limit of 50000000"
        p = box.wait_status(wrong, ("ready", "partial", "failed"))
        assert p["status"] == "failed"
        assert p["reason"] == "not a JPEG, PNG or WebP image (magic bytes)"
        # Truncated: the header parses, the pixels end early. Corrupt: the
        # header itself is garbage after the magic bytes.
        for pid, prefix in ((truncated, "decode: VipsJpeg: "), (corrupt, "bad header: VipsJpeg: ")):
            p = box.wait_status(pid, ("ready", "partial", "failed"))
            assert p["status"] == "failed", p
            assert p["reason"].startswith(prefix), p
            assert box.versions(pid) == {}
        # No retries for a bad image: the jobs are done, not dead.
        assert box.jobs() == []
        # The originals stay (a failed thumbnail never loses the photo).
        assert box.blob(bomb, "original").stat().st_size == len(png_bomb())
        # The worker is unharmed and goes on with the next photo.
        assert w.get("/healthz").status == 200
        good = box.add_photo(jpeg_3000)
        assert box.wait_status(good, ("ready", "partial", "failed"))["status"] == "ready"
        m = w.get("/metrics").body.decode()
        assert 'ladder_jobs_total{kind="thumbnail",outcome="completed"} 5' in m
        assert 'ladder_thumbnails_total{version="128",result="failed"} 4' in m
        assert 'ladder_thumbnails_total{version="1600",result="ok"} 1' in m
        assert 'ladder_queue_jobs{state="ready"} 0' in m
        assert 'ladder_thumbnail_seconds_count{version="512"} 5' in m
    finally:
        assert w.stop() == 0


def thumbnailers(pid):
    """The worker's thumbnailer children (pids)."""
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            kids = open("/proc/%d/task/%s/children" % (pid, task)).read().split()
        except OSError:
            continue
        for k in kids:
            try:
                argv = open("/proc/%s/cmdline" % k, "rb").read().split(b"\0")
            except OSError:
                continue
            if argv[1:2] == [b"thumbnailer"]:
                out.append(int(k))
    return out


def gone(pid):
    """The process is reaped (not even a zombie)."""
    return not os.path.exists("/proc/%d" % pid)


def wait_for(cond, secs=20):
    deadline = time.monotonic() + secs
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


@pytest.mark.skipif(
    os.environ.get("LADDER_BUILD") == "asan",
    reason="AddressSanitizer reserves terabytes of address space: no RLIMIT_AS holds there",
)
def test_memory_limit_holds_for_a_decoder_that_holds_the_whole_image(box, jpeg_3000):
    """An interlaced 20000 x 20000 PNG (400 KB) that the pixel limit lets
    through: its loader must hold the whole image, 400 MB, however small the
    thumbnail. Under --job-memory 256MiB every version fails with the
    memory limit as the reason, the photo is failed, its original stays,
    and the worker goes on (its own memory never held the image)."""
    w = Worker(box, "--max-pixels", "500000000", "--job-memory", "256MiB")
    try:
        bomb = box.add_photo(interlaced_png_bomb(), "image/png")
        p = box.wait_status(bomb, ("ready", "partial", "failed"), timeout=60)
        assert p["status"] == "failed", p
        assert p["reason"] == "over the memory limit of 256 MiB"
        assert box.versions(bomb) == {}
        assert box.jobs() == []
        assert box.blob(bomb, "original").stat().st_size == len(interlaced_png_bomb())
        good = box.add_photo(jpeg_3000)
        assert box.wait_status(good, ("ready", "partial", "failed"))["status"] == "ready"
        assert w.get("/healthz").status == 200
        # The image was decoded in the child, never in the worker.
        rss = [ln for ln in open("/proc/%d/status" % w.proc.pid) if ln.startswith("VmHWM:")]
        assert int(rss[0].split()[1]) < 200 * 1024, rss
    finally:
        assert w.stop() == 0


def test_time_limit_holds_for_a_decoder_stuck_in_one_call(box, jpeg_3000):
    """A decoder stuck inside one call never reports progress, so libvips'
    own time limit cannot fire; the worker kills the child at the deadline.
    The child is made to hang on the 1600 version: that version fails with
    the time limit, the small ones ship (partial), the hung child is killed
    and reaped, and the next photo gets a fresh child (which hangs on its
    1600 too: partial again) while the worker stays healthy."""
    w = Worker(box, "--job-timeout", "4s", env={"LADDER_TEST_THUMBNAILER_FAULT": "hang:1600"})
    try:
        pid = box.add_photo(jpeg_3000)
        assert wait_for(lambda: thumbnailers(w.proc.pid) != []), "no thumbnailer started"
        first = thumbnailers(w.proc.pid)
        p = box.wait_status(pid, ("ready", "partial", "failed"))
        assert p["status"] == "partial", p
        assert p["reason"] == "1600: over the time limit of 4 s"
        assert sorted(box.versions(pid)) == ["128", "512"]
        assert image_size(box.blob(pid, "512.jpg")) == (512, 341)
        assert not box.blob(pid, "1600.jpg").exists()
        assert wait_for(lambda: all(gone(k) for k in first)), first
        assert box.jobs() == []
        small = box.add_photo(make_jpeg(box.root / "s.jpg", 600, 400))
        p = box.wait_status(small, ("ready", "partial", "failed"))
        assert p["status"] == "partial" and p["reason"] == "1600: over the time limit of 4 s"
        assert w.get("/healthz").status == 200
    finally:
        assert w.stop() == 0


def test_a_decoder_crash_fails_its_version_only(box, jpeg_3000):
    """A child that dies on a version (an abort here) fails that version
    with the signal, and the next version runs in a fresh child."""
    w = Worker(box, env={"LADDER_TEST_THUMBNAILER_FAULT": "crash:512"})
    try:
        pid = box.add_photo(jpeg_3000)
        p = box.wait_status(pid, ("ready", "partial", "failed"))
        assert p["status"] == "partial", p
        assert p["reason"] == "512: the decoder died (signal 6, Aborted)"
        assert sorted(box.versions(pid)) == ["128", "1600"]
        assert image_size(box.blob(pid, "1600.jpg")) == (1600, 1067)
        assert box.jobs() == []
    finally:
        assert w.stop() == 0


def test_sigkilled_worker_job_is_completed_once_by_another(box, jpeg_3000):
    # The original is a FIFO: worker A blocks reading it, holding the lease,
    # until the test decides. That is "mid-job" without any timing guess.
    pid = box.add_photo(None, complete=False)
    fifo = box.blob(pid, "original")
    os.mkfifo(fifo)
    box.complete(pid, len(jpeg_3000))
    a = Worker(box, "--lease", "2s", "--job-timeout", "300ms")
    rows = box.wait_jobs("state = 'leased' AND subject = ?", (pid,), 1)
    assert rows[0][4] == 1  # attempts
    owner_a = rows[0][5]
    a.kill()
    a.check_clean()
    # The bytes arrive; A is dead and never read them.
    fifo.unlink()
    fifo.write_bytes(jpeg_3000)
    assert box.photo(pid)["status"] == "processing"
    # B takes the job once A's short lease has run out; B's own lease and
    # job timeout are the defaults (10 s a version: under ASan on a busy
    # core, the 300 ms that A's lease needed has run out on a thumbnail).
    b = Worker(box)
    try:
        p = box.wait_status(pid, ("ready", "partial", "failed"))
        # One change only: processing -> ready, by B.
        assert p["status"] == "ready" and p["version"] == 2
        assert sorted(box.versions(pid)) == ["128", "1600", "512"]
        assert box.jobs() == []
        done = [e for e in b.logs() if e.get("msg") == "job completed"]
        assert len(done) == 1
        assert done[0]["attempts"] == "2" and done[0]["subject"] == str(pid)
        assert owner_a.endswith(":0") and str(a.proc.pid) in owner_a
    finally:
        assert b.stop() == 0


def test_repeated_failures_end_dead_and_the_photo_failed(box):
    # An original the blob store cannot read (a directory) is not the
    # image's fault: retried, then dead, and the photo says why.
    pid = box.add_photo(None, complete=False)
    box.blob(pid, "original").mkdir()
    box.complete(pid, 10)
    w = Worker(box, "--max-attempts", "3", "--backoff-max", "50ms")
    try:
        rows = box.wait_jobs("state = 'dead'", (), 1)
        _, kind, subject, state, attempts, owner, last_error = rows[0]
        assert (kind, subject, attempts, owner) == ("thumbnail", pid, 3, "")
        assert last_error == "reading the original: Is a directory"
        p = box.photo(pid)
        assert p["status"] == "failed"
        assert p["reason"] == "gave up after 3 attempts: reading the original: Is a directory"
        m = w.get("/metrics").body.decode()
        assert 'ladder_jobs_total{kind="thumbnail",outcome="retried"} 2' in m
        assert 'ladder_jobs_total{kind="thumbnail",outcome="dead"} 1' in m
        assert 'ladder_queue_jobs{state="dead"} 1' in m
        assert "ladder_job_attempts_total 3" in m
    finally:
        assert w.stop() == 0


def test_deleted_photo_objects_are_removed(box, jpeg_3000):
    w = Worker(box)
    try:
        pid = box.add_photo(jpeg_3000)
        box.wait_status(pid, ("ready",))
        assert box.blob(pid, "512.jpg").exists()
        box.db.execute("DELETE FROM photos WHERE id = ?", (pid,))
        deadline = time.monotonic() + 20
        while box.blob(pid, "original").parent.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not box.blob(pid, "original").parent.exists()
        box.wait_jobs("true", (), 0)
        assert box.versions(pid) == {}
    finally:
        assert w.stop() == 0


def test_bad_flags_name_the_flag(box):
    from conftest import run_cli

    r = run_cli("worker", "--data", str(box.data), "--lease", "10s", "--job-timeout", "5s")
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "ladder worker: --lease: must be longer than 3 x --job-timeout plus 1s "
        "(a job's versions run under one lease)\n"
    )
    r = run_cli("worker", "--concurrency", "0")
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "ladder worker: --concurrency: 0 is out of range (1 to 256)\n(see ladder worker --help)\n"
    )
    from conftest import free_port

    r = run_cli(
        "worker", "--data", str(box.root / "nowhere"), "--listen", "127.0.0.1:%d" % free_port()
    )
    assert r.returncode == 1
    assert "ladder worker: queue: open " in r.stderr.decode()


def test_store_flags_are_checked(tmp_path):
    from conftest import free_port, run_cli

    r = run_cli("worker", "--store", "postgres")
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "ladder worker: --pg-primary (LADDER_PG_PRIMARY): must be set with --store postgres\n"
    )
    r = run_cli("worker", "--store", "mysql")
    assert r.returncode == 2
    assert r.stderr.decode() == (
        "ladder worker: --store: 'mysql' is not one of: sqlite|postgres\n"
        "(see ladder worker --help)\n"
    )
    # A primary that does not answer: the queue says so, the password never.
    r = run_cli(
        "worker",
        "--store", "postgres",
        "--pg-primary", "hostaddr=127.0.0.1 port=%d password=s3cret" % free_port(),
        "--data", str(tmp_path),
        "--listen", "127.0.0.1:%d" % free_port(),
    )  # fmt: skip
    err = r.stderr.decode()
    assert r.returncode == 1
    assert err.startswith("ladder worker: queue: cannot connect to the primary: ")
    assert "s3cret" not in err


def test_sigterm_stops_claiming_during_the_http_drain(box, jpeg_3000):
    """The job threads stop at the signal, not once the HTTP drain is over:
    a job queued while a slow client holds the drain open stays `ready`,
    for the next worker, with no attempt spent."""
    w = Worker(box)
    try:
        with Conn(w.port) as slow:
            # A request whose body is still to come: the drain waits for it.
            # The 100 proves the worker has read its head (bytes still in the
            # kernel's buffer would leave the connection idle, and the drain
            # would close it at once).
            slow.send(
                b"GET /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                b"Content-Length: 5\r\n\r\n"
            )
            interim = slow.read_until(b"\r\n\r\n")
            assert interim.startswith(b"HTTP/1.1 100 "), interim
            w.proc.terminate()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                e.get("msg") == "SIGTERM: draining" for e in w.logs()
            ):
                time.sleep(0.02)
            assert any(e.get("msg") == "SIGTERM: draining" for e in w.logs())
            pid = box.add_photo(jpeg_3000)
            # The old worker went on polling (every 20 ms) through the drain;
            # give it many polls' worth of time to take the job.
            time.sleep(1.0)
            assert w.proc.poll() is None, "the drain did not wait for the request"
            slow.send(b"hello")
            r = slow.read_response()
            assert (r.status, r.header("Connection")) == (200, "close")
        assert w.proc.wait(timeout=15) == 0
        w.check_clean()
    finally:
        if w.proc.poll() is None:
            w.kill()
    rows = box.jobs("subject = ?", (pid,))
    assert [r[1:] for r in rows] == [("thumbnail", pid, "ready", 0, "", "")]
    assert box.photo(pid)["status"] == "processing"
    assert any(e.get("msg") == "worker stopped cleanly" for e in w.logs())
