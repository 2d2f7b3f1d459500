"""`ladder bench --profile` on bottlenecks built on purpose: the report must
name the resource that was made the limit, and the server's stage shares
must add up to its measured time.

- the server's CPU: `ladder serve --threads 1` moved into a CPU cgroup with a
  small quota, under an offered rate far above what that quota serves;
- commit latency: `--test-commit-delay` makes every commit wait, under a
  write-only load;
- the load generator: `ladder bench` itself runs inside the capped cgroup.

The caps are deep (a tenth of a core) so the verdict does not depend on how
noisy the machine is. CPU cgroups need root and the cgroup v1 "cpu"
hierarchy or cgroup v2 with the cpu controller; without them those tests
skip. Every cgroup made here is removed at teardown, its processes moved
back to the root group first; every server is stopped by the fixtures.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import browser
from conftest import LADDER_BIN, skip_unless_sqlite

STALL_SERVER = str(Path(__file__).resolve().parent / "stall_server.py")
V1_CPU = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")


def _cgroup_kind():
    if os.geteuid() != 0:
        return None
    if (V1_CPU / "cpu.cfs_quota_us").exists() or (V1_CPU / "tasks").exists():
        return "v1"
    ctl = V2_ROOT / "cgroup.subtree_control"
    if ctl.exists() and "cpu" in ctl.read_text().split():
        return "v2"
    return None


CGROUP = _cgroup_kind()
needs_cgroup = pytest.mark.skipif(CGROUP is None, reason="needs root and a CPU cgroup hierarchy")


class CpuCap:
    """One CPU cgroup with a quota of `cores` (e.g. 0.1 = a tenth of a core)."""

    def __init__(self, name, cores):
        root = V1_CPU if CGROUP == "v1" else V2_ROOT
        self.root = root
        self.path = root / name
        self.path.mkdir()
        period = 100000
        quota = int(period * cores)
        if CGROUP == "v1":
            (self.path / "cpu.cfs_period_us").write_text(str(period))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text("%d %d" % (quota, period))

    def add(self, pid):
        (self.path / "cgroup.procs").write_text(str(pid))

    def wrap(self, argv):
        """argv run inside the cgroup: a shell joins it, then execs argv."""
        return ["sh", "-c", 'echo $$ > "%s" && exec "$@"' % (self.path / "cgroup.procs"), "sh",
                *argv]  # fmt: skip

    def remove(self):
        procs = (self.path / "cgroup.procs").read_text().split()
        for pid in procs:
            try:
                (self.root / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # it exited meanwhile
        self.path.rmdir()


@pytest.fixture
def cpu_cap():
    made = []

    def make(cores):
        c = CpuCap("ladder-test-%d-%d" % (os.getpid(), len(made)), cores)
        made.append(c)
        return c

    yield make
    for c in made:
        c.remove()


def run_bench(args, wrap=None, timeout=120):
    argv = [LADDER_BIN, "bench", "-q", *args]
    if wrap:
        argv = wrap(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def profile_of(tmp_path, args, wrap=None, rc=0):
    out = tmp_path / "r.json"
    p = run_bench(["--json", str(out), *args], wrap=wrap)
    assert p.returncode == rc, p.stdout + p.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "ladder-bench/1"
    return doc["profile"], p


def assert_shares_add_up(prof, tol=0.02):
    """The stages account for the server's time. tol is the report's own 2%
    unless the server runs throttled by its cgroup: a loop thread stopped by
    the throttle between two stage marks adds that pause to no stage (the
    gap is the scheduler's, not missing instrumentation), so under a tight
    cap the sum is only checked to within tol."""
    v = prof["verdict"]
    step = prof["steps"][v["step"]]
    assert step["requests"] > 0
    assert abs(sum(step["shares"].values()) - 1) <= tol, step["shares"]
    if tol == 0.02:
        assert v["shares_ok"], v["notes"]
        assert any(n.startswith("stage shares add up to ") for n in v["notes"]), v["notes"]
    else:
        assert abs(v["shares_sum"] - 1) <= tol, v["notes"]


def base_url(srv):
    return "http://127.0.0.1:%d" % srv.port


@needs_cgroup
def test_server_cpu_capped_names_app_cpu(tmp_path, ladder_server, cpu_cap):
    srv = ladder_server("--threads", "1")
    cap = cpu_cap(0.03)  # /healthz costs ~12 us of CPU: ~2500/s at this cap
    cap.add(srv.proc.pid)
    url = base_url(srv)
    prof, p = profile_of(
        tmp_path,
        ["--rate", "6000", "-d", "4s", "-c", "8", "--timeout", "2s", "--profile", url,
         url + "/healthz"],
    )  # fmt: skip
    v = prof["verdict"]
    assert v["resource"] == "app CPU", p.stdout
    assert v["line"].startswith("app CPU: the server used 0.0"), v["line"]
    assert "of the 0.03 cores its CPU cgroup allows (throttled in " in v["line"], v["line"]
    assert "loop thread 0 " in v["line"]
    assert v["line"].endswith("; give the server more CPU (its cap), add loop threads or nodes "
                              "(rung 3)"), v["line"]  # fmt: skip
    step = prof["steps"][0]
    assert step["server"]["quota_cores"] == pytest.approx(0.03)
    assert_shares_add_up(prof, tol=0.15)
    assert "verdict: app CPU: the server used " in p.stdout
    assert "\nprofile: server pid %d, 1 loop(s), 1 step(s)" % srv.proc.pid in p.stdout


def test_commit_delay_names_commit_latency(tmp_path, ladder_server):
    skip_unless_sqlite("--test-commit-delay sleeps in the SQLite writer thread")
    srv = ladder_server("--threads", "1", "--test-commit-delay", "20ms")
    url = base_url(srv)
    prof, p = profile_of(
        tmp_path,
        ["--scenario", "ladder", "--users", "4", "--items-per-user", "1",
         "--read-write-ratio", "0:1", "--rate", "600", "-d", "4s", "-c", "32",
         "--max-connections", "64", "--timeout", "5s", "--profile", url, url],
    )  # fmt: skip
    v = prof["verdict"]
    assert v["resource"] == "commit latency", p.stdout
    assert v["line"].startswith("commit latency: writer busy "), v["line"]
    store = prof["steps"][0]["store"]
    assert store["commit_mean_ns"] >= 20e6, store  # the delay is inside every commit
    assert store["writes_per_commit"] > 1, store
    assert_shares_add_up(prof)
    assert "verdict: commit latency: writer busy " in p.stdout


@needs_cgroup
def test_generator_capped_names_generator(tmp_path, ladder_server, cpu_cap):
    srv = ladder_server("--threads", "1")
    cap = cpu_cap(0.1)
    url = base_url(srv)
    prof, p = profile_of(
        tmp_path,
        ["--rate", "20000", "-d", "4s", "-c", "8", "--timeout", "2s", "--profile", url,
         url + "/healthz"],
        wrap=cap.wrap,
    )  # fmt: skip
    v = prof["verdict"]
    assert v["resource"] == "load generator", p.stdout
    assert v["line"].startswith("the load generator: "), v["line"]
    assert "capped at 0.10 cores by its CPU cgroup" in v["line"], v["line"]
    assert "the figures measure it, not the server" in v["line"]
    gen = prof["steps"][0]["generator"]
    assert gen["quota_cores"] == pytest.approx(0.1)
    assert gen["allowed_cores"] == pytest.approx(0.1)
    assert_shares_add_up(prof)


def test_breakpoint_profile_steps_usl_and_html(tmp_path, ladder_server):
    """A breakpoint run: one profile step per rate, the USL line over them,
    and the HTML report's two charts with a point per step."""
    srv = ladder_server("--threads", "1")
    url = base_url(srv)
    html = tmp_path / "r.html"
    prof, p = profile_of(
        tmp_path,
        ["--breakpoint", "200:200:800", "--step-duration", "1s", "--slo", "errors<50%",
         "--html", str(html), "--profile", url, url + "/healthz"],
    )  # fmt: skip
    assert [s["offered_rps"] for s in prof["steps"]] == [200, 400, 600, 800]
    assert prof["usl"] is not None and prof["usl"]["base_rps"] == 200
    assert prof["usl"]["line"].startswith("USL over 4 steps (N = offered / 200/s)")
    assert "  USL over 4 steps" in p.stdout
    text = html.read_text()
    for chart in ("profile-shares", "profile-utilisation"):
        assert 'id="%s"' % chart in text, chart
    assert 'id="verdict" data-resource="%s"' % prof["verdict"]["resource"] in text
    sec = text[text.index('id="profile-utilisation"'):]
    counts = [int(n) for n in re.findall(r'data-points="(\d+)"', sec)]
    assert counts == [4, 4, 4, 4, 4], counts
    names = re.findall(r'data-name="([^"]+)"', sec)
    assert names == ["loop busy", "writer busy", "generator CPU", "disk busy", "busiest core"]
    if browser.CHROMIUM:
        dom = browser.render(html, tmp_path / "profile.png")
        assert 'id="profile-utilisation"' in dom


def test_profile_flag_errors(tmp_path):
    p = run_bench(["--profile-interval", "0", "--profile", "http://127.0.0.1:1",
                   "http://127.0.0.1:1/"])  # fmt: skip
    assert p.returncode == 2
    assert "ladder bench: --profile-interval: '0' is not a duration in 100ms..60s" in p.stderr
    p = run_bench(["--profile", "ftp://x", "http://127.0.0.1:1/"])
    assert p.returncode == 1
    assert "ladder bench: --profile: 'ftp://x' is not an http:// URL" in p.stderr


def test_profile_needs_a_stats_document(tmp_path):
    """A server that is not ladder: the run does not start, and says why."""
    proc = subprocess.Popen([sys.executable, STALL_SERVER, "--port", "0"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        port = int(proc.stdout.readline().split()[1])
        url = "http://127.0.0.1:%d" % port
        p = run_bench(["--rate", "10", "-d", "1s", "--profile", url, url + "/"])
        assert p.returncode == 1
        assert "ladder bench: --profile: the stats document is not a JSON object" in p.stderr
    finally:
        proc.kill()
        proc.wait(timeout=5)
