"""Fixtures shared by the integration tests: start `ladder serve` on a free
loopback port with its data in a temp dir, wait until it is ready, and always
stop it at teardown.

The binary is $LADDER_BIN (default build/rel/ladder); the same suite runs
against the ASan+UBSan build, so a server whose stderr holds a sanitizer
report fails the test that was running when it appeared.

$LADDER_STORE picks the store driver of every server started here (default
sqlite; tests/run.sh runs the suite once more with sqlite-deferred, whose
completions all come on a later loop iteration). A test's own --store flag
comes later on the command line and wins.

$LADDER_CACHE picks the response cache likewise (default none here, so the
store is what the suite tests; tests/run.sh runs it once more with local and
with redis). With redis, one redis-server (redisserver.py) serves the whole
session, and every start of a server gets a key prefix of its own.

With LADDER_STORE=postgres, one PostgreSQL cluster (pgcluster.py) serves the
whole session: started on first use, stopped at the end of the session (also
when tests fail), and every data directory gets a fresh database of its own,
so a restart on the same directory finds its data again.

$LADDER_URL (http://127.0.0.1:PORT) runs the tests against a service that
already runs there, such as a cluster's balancer (deploy/cluster): the
`server` and `client` fixtures reach it, and a test that starts servers of
its own or reads a server's own log is skipped, saying so.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ladder_http import Client, Conn, ConnectionClosed
from pgcluster import PgCluster
from redisserver import RedisServer

REPO = Path(__file__).resolve().parents[2]
LADDER_BIN = os.environ.get("LADDER_BIN") or str(REPO / "build" / "rel" / "ladder")
if not os.path.isabs(LADDER_BIN):
    LADDER_BIN = str(REPO / LADDER_BIN)

# Fast and small: argon2 at its minimum cost, short timeouts so the slow
# client tests finish quickly.
DEFAULT_FLAGS = [
    "--threads", "2",
    "--argon2-ops", "1",
    "--argon2-mem", "64KiB",
    "--header-timeout", "1s",
    "--body-timeout", "1s",
    "--keepalive-timeout", "3s",
    "--shutdown-timeout", "5s",
    # The store's deadline (default 2s) is tested where a test sets it; on a
    # loaded machine a paused disk must not turn other tests' writes into 503.
    "--store-timeout", "10s",
]  # fmt: skip

# For servers that `ladder bench` drives: the defaults above close an idle
# connection after 3 s (keep-alive) or, one that never sent a byte, after 1 s
# (header timeout), and the bench opens its -c connections at the start. A
# close that crosses the bench's next send on that connection is a read error
# (and, with --retries, a retry counted as sent that the server never saw)
# that depends on timing alone; with 60 s for both, no connection is closed
# while a bench run lasts.
BENCH_KEEP_CONNS = ["--keepalive-timeout", "60s", "--header-timeout", "60s"]

LADDER_URL = os.environ.get("LADDER_URL") or ""

# Read here, then dropped from the server's environment with every LADDER_*.
LADDER_STORE = os.environ.get("LADDER_STORE") or "sqlite"
LADDER_CACHE = os.environ.get("LADDER_CACHE") or "none"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
READY_TIMEOUT = 10.0

_servers = []  # every LadderServer started in this session, for the health check

_pg = None  # the session's PostgreSQL cluster (LADDER_STORE=postgres), started on first use
_pg_dbs = {}  # data dir -> database name


def pg_cluster():
    """The session's PostgreSQL cluster, started on first use."""
    global _pg
    if _pg is None:
        _pg = PgCluster().start()
    return _pg


def pg_conninfo_for(data_dir):
    """The conninfo of the database that belongs to data_dir (made on first
    use), as a server on that directory is given with --pg-primary."""
    key = str(Path(data_dir).resolve())
    if key not in _pg_dbs:
        _pg_dbs[key] = pg_cluster().new_database()
    return pg_cluster().conninfo(_pg_dbs[key])


def store_flags(data_dir):
    """The flags that put a server or `ladder migrate` on LADDER_STORE."""
    flags = ["--store", LADDER_STORE]
    if LADDER_STORE == "postgres":
        flags += ["--pg-primary", pg_conninfo_for(data_dir)]
    return flags


_redis = None  # the session's redis-server (LADDER_CACHE=redis), started on first use
_redis_starts = 0


def cache_flags():
    """The flags that put a server on LADDER_CACHE (with redis: the
    session's server, under a key prefix of this start's own)."""
    global _redis, _redis_starts
    flags = ["--cache", LADDER_CACHE]
    if LADDER_CACHE == "redis":
        if _redis is None:
            _redis = RedisServer().start()
        _redis_starts += 1
        flags += ["--redis", _redis.url, "--redis-prefix", "t%d-%d:" % (os.getpid(), _redis_starts)]
    return flags


def skip_unless_sqlite(why):
    """Skips a test that only makes sense for the SQLite store."""
    if LADDER_STORE != "sqlite" and LADDER_STORE != "sqlite-deferred":
        pytest.skip("SQLite only: " + why)


@pytest.fixture(scope="session", autouse=True)
def _pg_session():
    yield
    global _pg, _redis
    if _pg is not None:
        _pg.stop()
        _pg = None
    if _redis is not None:
        _redis.stop()
        _redis = None


# Clusters and Redis servers of a test's own, whatever LADDER_STORE and
# LADDER_CACHE the suite runs with (the fault tests stop and pause them).


@pytest.fixture
def pg():
    """A PostgreSQL cluster of the test's own (a primary alone)."""
    c = PgCluster().start()
    yield c
    c.stop()


@pytest.fixture
def pgr():
    """A PostgreSQL cluster of the test's own: a primary and one streaming
    replica (pgr.replicas[0])."""
    c = PgCluster().start()
    try:
        c.add_replica()
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


@pytest.fixture
def redis():
    """A redis-server of the test's own."""
    r = RedisServer().start()
    yield r
    r.stop()


def free_port():
    """A loopback port free now. Another process may take it before the
    server binds it: the server then refuses to start ("in use": it never
    shares a port) and LadderServer.start picks another."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def server_env(extra=None):
    """The environment for the server: ours minus LADDER_* (so a developer's
    settings cannot leak into a test), sanitizer options that report and
    exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if extra:
        env.update(extra)
    return env


def run_cli(*args, env=None, timeout=20):
    """Runs the binary to completion (for --help, bad flags, --print-config)."""
    return subprocess.run(
        [LADDER_BIN, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env=server_env(env),
    )


def read_text(path):
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def parse_log(text):
    """The complete lines of a log (the server writes each line whole; text
    after the last newline is one still being written), each parsed as JSON
    or, when it does not parse, kept as a string."""
    out = []
    for line in text.split("\n")[:-1]:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(line)
    return out


class LadderServer:
    """One `ladder serve` process (and its restarts) on one data directory."""

    def __init__(self, workdir, flags=(), env=None, data_dir=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.flags = list(flags)
        self.env = env
        self.proc = None
        self.port = None
        self.starts = 0
        self.stdout_paths = []
        self.stderr_paths = []
        self.expect_alive = False
        self.reported = False
        self.returncode = None
        self.seen_500 = 0  # log lines with status 500 already reported
        _servers.append(self)

    # -- life cycle --

    def start(self, flags=None, wait_ready=True):
        """Starts the server (again, on the same data dir). flags replaces the
        extra flags given at construction when not None."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if flags is not None:
            self.flags = list(flags)
        last_err = ""
        for _ in range(5):
            self.port = free_port()
            self.starts += 1
            out = self.workdir / ("stdout.%d.log" % self.starts)
            err = self.workdir / ("stderr.%d.log" % self.starts)
            self.stdout_paths.append(out)
            self.stderr_paths.append(err)
            argv = [
                LADDER_BIN, "serve",
                "--listen", "127.0.0.1:%d" % self.port,
                "--data", str(self.data_dir),
                *store_flags(self.data_dir),
                *cache_flags(),
                *DEFAULT_FLAGS, *self.flags,
            ]  # fmt: skip
            with open(out, "wb") as fo, open(err, "wb") as fe:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=server_env(self.env)
                )
            self.returncode = None
            self.expect_alive = True
            if not wait_ready:
                return self
            status = self.wait_ready(READY_TIMEOUT)
            if status == 200:
                return self
            self.expect_alive = False
            last_err = read_text(err)  # this start's alone
            # The start-up error below carries any sanitizer report already.
            self.reported = self.sanitizer_report() is not None
            if self.proc.poll() is None:
                self.kill()
                raise AssertionError(
                    "server not ready after %.0fs (last /readyz: %s); stderr:\n%s"
                    % (READY_TIMEOUT, status, last_err[-3000:])
                )
            self.returncode = self.proc.returncode
            if "in use" in last_err.lower():
                continue  # someone took the port between the pick and the bind
            raise AssertionError(
                "server exited with %s at start-up; argv=%r stderr:\n%s"
                % (self.proc.returncode, argv, last_err[-3000:])
            )
        raise AssertionError("could not bind a free port after 5 tries:\n" + self.stderr_tail())

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Waits for this start's "listening" log line (its own stdout: so
        the answers below come from this process, not from whatever else
        might listen there), then polls GET /readyz until 200. Returns the
        last status seen (None when nothing answered) or 200."""
        deadline = time.monotonic() + timeout
        log = self.stdout_paths[-1]
        while not any(
            isinstance(x, dict) and x.get("msg") == "listening" for x in parse_log(read_text(log))
        ):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.02)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return last
            try:
                with Conn(self.port, timeout=2.0) as c:
                    last = c.request("GET", "/readyz").status
                if last == 200:
                    return last
            except (OSError, ConnectionClosed):  # a loop thread not started yet
                pass
            time.sleep(0.05)
        return last

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        """Sends sig; the server is expected to exit after it."""
        self.expect_alive = False
        self.proc.send_signal(sig)

    def wait(self, timeout=15):
        """Waits for the process to exit; returns its exit status."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server did not exit within %ss" % timeout)
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends sig and waits for the exit; returns the exit status."""
        self.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        self.expect_alive = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.returncode = self.proc.wait(timeout=10)
        return self.returncode

    def restart(self, flags=None):
        """SIGTERM (if running), then start again on the same data dir."""
        if self.alive():
            self.stop()
        return self.start(flags)

    # -- what it wrote --

    def stderr_text(self):
        return "".join(read_text(p) for p in self.stderr_paths)

    def stdout_text(self):
        return "".join(read_text(p) for p in self.stdout_paths)

    def stderr_tail(self, n=3000):
        """For assertion messages: the end of everything it wrote on stderr."""
        return "stderr tail:\n" + self.stderr_text()[-n:]

    def sanitizer_report(self):
        text = self.stderr_text()
        for m in SANITIZER_MARKERS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200) : i + 4000]
        return None

    def log_lines(self):
        """Every complete stdout line parsed as JSON (a line that does not
        parse is returned as a string, so a test can fail on it)."""
        out = []
        for p in self.stdout_paths:
            out.extend(parse_log(read_text(p)))
        return out

    def wait_log(self, pred, timeout=5.0):
        """Polls stdout for a parsed log line for which pred is true."""
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.log_lines():
                if isinstance(rec, dict) and pred(rec):
                    return rec
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    # -- clients --

    def conn(self, timeout=5.0):
        return Conn(self.port, timeout=timeout)

    def client(self, timeout=5.0):
        return Client(self.port, timeout=timeout)


class RemoteServer:
    """The service at $LADDER_URL, as far as a test may use it: clients.
    What only a server of the test's own has (its process, its log) skips
    the test."""

    def __init__(self, url):
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d{1,5})/?", url)
        if not m:
            raise pytest.UsageError(
                "LADDER_URL=%r: want http://127.0.0.1:PORT (the tests reach loopback only)" % url
            )
        self.port = int(m.group(1))
        self.proc = None
        self.balanced = True  # each request may reach another node

    def alive(self):
        return True

    def _own(self, what):
        pytest.skip("reads %s, which a server at LADDER_URL does not share" % what)

    def log_lines(self):
        self._own("the server's request log")

    def wait_log(self, pred, timeout=5.0):
        self._own("the server's request log")

    def stderr_text(self):
        self._own("the server's stderr")

    def conn(self, timeout=5.0):
        return Conn(self.port, timeout=timeout)

    def client(self, timeout=5.0):
        # Several nodes behind it: read-your-writes needs the session token.
        return Client(self.port, timeout=timeout, session=True)


def _new_500s(srv):
    """Request log lines with status 500 not reported yet: 500 is only for
    bugs, so any one fails the test that caused it."""
    lines = [
        x for x in srv.log_lines() if isinstance(x, dict) and x.get("status") == 500
    ]
    new = lines[srv.seen_500 :]
    srv.seen_500 = len(lines)
    return new


def _health_problem(srv):
    rep = srv.sanitizer_report()
    if rep:
        return "sanitizer report from the server:\n" + rep
    if srv.expect_alive and srv.proc is not None and srv.proc.poll() is not None:
        return "server died unexpectedly (exit %s); stderr tail:\n%s" % (
            srv.proc.returncode,
            srv.stderr_text()[-3000:],
        )
    return None


@pytest.fixture(autouse=True)
def _server_health():
    """After every test: fail it when any server has a sanitizer report or
    died without being told to, so the failure lands on the test that caused
    it (each problem is reported once)."""
    yield
    problems = []
    for srv in _servers:
        if srv.proc is None:
            continue
        bad = _new_500s(srv)
        if bad:
            problems.append("the server answered 500 (a bug):\n" + "\n".join(map(str, bad[:5])))
        if srv.reported:
            continue
        p = _health_problem(srv)
        if p:
            srv.reported = True
            problems.append(p)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


TEARDOWN_TIMEOUT = 20.0


def _teardown(servers):
    """Stops every server that still runs with SIGTERM, as an operator would:
    its loops flush the request log lines they buffer (SIGKILL would lose the
    last ones, and a 500 among them would go unseen) and the ASan build runs
    its leak check at exit. A server that does not exit, or exits non-zero,
    fails the test that owns it."""
    problems = []
    for srv in servers:
        if srv.alive():
            was_expected = srv.expect_alive
            srv.send_signal(signal.SIGTERM)
            try:
                rc = srv.wait(TEARDOWN_TIMEOUT)
            except AssertionError:
                rc = None
                problems.append(
                    "server did not exit within %.0fs of SIGTERM at teardown; %s"
                    % (TEARDOWN_TIMEOUT, srv.stderr_tail())
                )
            if rc is not None and rc != 0 and was_expected and srv.sanitizer_report() is None:
                problems.append(
                    "server exited %s on SIGTERM at teardown; %s" % (rc, srv.stderr_tail())
                )
        srv.kill()
        bad = _new_500s(srv)
        if bad:
            problems.append("the server answered 500 (a bug):\n" + "\n".join(map(str, bad[:5])))
        if not srv.reported:
            rep = srv.sanitizer_report()
            if rep:
                srv.reported = True
                problems.append("sanitizer report from the server:\n" + rep)
        if srv in _servers:
            _servers.remove(srv)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


class _Factory:
    def __init__(self, base):
        self.base = Path(base)
        self.servers = []

    def __call__(self, *flags, env=None, data_dir=None, start=True):
        """Makes a server with extra flags; starts it unless start=False."""
        if LADDER_URL:
            pytest.skip("starts a server of its own (LADDER_URL runs against one that runs)")
        srv = LadderServer(
            self.base / ("srv%d" % len(self.servers)), flags=flags, env=env, data_dir=data_dir
        )
        self.servers.append(srv)
        if start:
            srv.start()
        return srv


@pytest.fixture
def ladder_server(tmp_path):
    """Factory: ladder_server('--max-body', '1KiB') starts a server of the
    test's own; every one is killed at teardown."""
    f = _Factory(tmp_path)
    yield f
    _teardown(f.servers)


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Factory like ladder_server, for servers shared by a module's tests."""
    f = _Factory(tmp_path_factory.mktemp("serve"))
    yield f
    _teardown(f.servers)


@pytest.fixture(scope="module")
def server(module_server_factory):
    """A server with the default test flags, shared by a module's tests (or
    the service at $LADDER_URL)."""
    if LADDER_URL:
        return RemoteServer(LADDER_URL)
    return module_server_factory()


@pytest.fixture(scope="session")
def ladder_cli():
    """run_cli: runs the binary to completion and returns the
    CompletedProcess (stdout, stderr as bytes)."""
    return run_cli


@pytest.fixture(scope="session")
def serve_help():
    """The text of `ladder serve --help` (to find optional flags)."""
    return run_cli("serve", "--help").stdout.decode(errors="replace")


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()
