"""The ladder scenario of `ladder bench` against a real `ladder serve`: seeding
through the API (users, sessions, items), then the read/write mix with real
bearer tokens, the photo uploads of --photo-share, and a clear failure
against a server that is not ladder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LADDER_STORE
from photo_helpers import make_jpeg
from test_bench import LADDER_BIN, STALL_SERVER


def run_bench(*args, timeout=90):
    return subprocess.run(
        [LADDER_BIN, "bench", "-q", *args], capture_output=True, text=True, timeout=timeout
    )


def test_scenario_seeds_then_drives_the_mix(tmp_path, ladder_server):
    # The test defaults close an idle connection after 3s (keep-alive) or,
    # one that never sent a byte, after 1s (header timeout). A close that
    # crosses the bench's next send on that connection is a read error that
    # depends on timing; with 60s for both, no connection is closed while
    # the bench runs.
    srv = ladder_server("--keepalive-timeout", "60s", "--header-timeout", "60s")
    out = tmp_path / "r.json"
    p = run_bench(
        "--scenario", "ladder", "--users", "8", "--items-per-user", "3",
        "--rate", "200", "--duration", "2s", "--read-write-ratio", "4:1",
        "--zipf-s", "1.1", "--json", str(out), "http://127.0.0.1:%d" % srv.port,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    d = json.loads(out.read_text())
    assert d["seed"]["users"] == 8
    assert d["seed"]["items"] == 24
    r = d["results"]
    assert r["requests"] == 400
    assert r["errors"] == 0, r["errors_by_kind"]
    # Reads answer 200, writes (POST /v1/items with a token) 201: nothing else.
    assert set(r["status"]) == {"200", "201"}, r["status"]
    mix = d["mix"]
    assert mix["read"]["requests"] + mix["write"]["requests"] == 400
    assert int(r["status"].get("201", 0)) == mix["write"]["requests"]
    # 4:1 -> a fifth are writes; binomial sd is 8, allow 5 sd.
    assert 40 <= mix["write"]["requests"] <= 120, mix
    for kind in ("read", "write"):
        assert {"p50", "p99", "max"} <= set(mix[kind]["latency_us"])
    assert d["config"]["scenario"] == "ladder"
    assert d["config"]["zipf_s"] == 1.1
    assert "mix        read" in p.stdout


def test_scenario_against_a_server_that_is_not_ladder():
    proc = subprocess.Popen(
        [sys.executable, STALL_SERVER, "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline().split()[1])
        p = run_bench(
            "--scenario", "ladder", "--users", "3", "--rate", "10", "--duration", "1s",
            "http://127.0.0.1:%d" % port, timeout=30,
        )  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    assert p.returncode == 1
    assert "--scenario ladder" in p.stderr and "POST /v1/users" in p.stderr


# The postgres store does not carry photo ops yet (docs/store.md).
@pytest.mark.skipif(LADDER_STORE == "postgres", reason="photos are not in the postgres store yet")
def test_scenario_drives_photo_uploads(tmp_path, ladder_server):
    """--photo-share: part of the mix is photo uploads, each three requests
    as a client makes them (POST /v1/photos 201, PUT of the bytes to the
    signed URL 204, complete 202). Every upload the bench completed is a
    photo the server has, its original the bench's bytes."""
    srv = ladder_server("--keepalive-timeout", "60s", "--header-timeout", "60s")
    photo = make_jpeg(tmp_path / "p.jpg", 320, 240)
    out = tmp_path / "r.json"
    p = run_bench(
        "--scenario", "ladder", "--users", "4", "--items-per-user", "2",
        "--rate", "200", "--duration", "2s", "--read-write-ratio", "4:1",
        "--photo-share", "0.3", "--photo-file", str(tmp_path / "p.jpg"),
        "--json", str(out), "http://127.0.0.1:%d" % srv.port,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    d = json.loads(out.read_text())
    r, ph = d["results"], d["photos"]
    assert r["errors"] == 0, r["errors_by_kind"]
    assert ph["failed"] == 0, (ph, r["status"])
    assert ph["bytes_each"] == len(photo)
    # 400 requests, ~30% of them photo steps: ~40 uploads; far more than 5.
    assert ph["completed"] >= 5, ph
    # Every upload completed made one 202; each started one made a 204 or
    # is one of the few still under way when the run ended.
    assert int(r["status"]["202"]) == ph["completed"]
    assert ph["completed"] <= int(r["status"]["204"]) <= ph["started"]
    assert set(r["status"]) == {"200", "201", "202", "204"}, r["status"]
    assert d["config"]["photo_share"] == 0.3
    assert "photos     started %d  completed %d" % (ph["started"], ph["completed"]) in p.stdout
    originals = list((srv.data_dir / "blobs" / "photos").glob("*/original"))
    assert len(originals) == ph["completed"]
    assert all(o.read_bytes() == photo for o in originals)


def test_photo_flags_need_the_scenario(tmp_path):
    p = run_bench("--photo-share", "0.2", "--rate", "10", "--duration", "1s", "http://127.0.0.1:1/")
    assert p.returncode == 2
    assert "--photo-share" in p.stderr and "needs --scenario ladder" in p.stderr
    p = run_bench("--scenario", "ladder", "--photo-share", "1.5", "http://127.0.0.1:1/")
    assert p.returncode == 2
    assert "--photo-share" in p.stderr and "'1.5' is not a share from 0 to under 1" in p.stderr
