"""One server per address and one process per data directory (issue 7).

SO_REUSEPORT lets any socket that sets it join a listening group, so a second
`ladder serve` on a taken port used to start, print "listening" and take a
share of the connections, reading and writing its own database. It must now
refuse (exit 1, the address and "in use" in the message), whatever listens
there. And each data directory is locked (flock on ladder.lock, holder's pid
inside) by the server or `ladder migrate` that uses it.
"""

import json
import socket
import subprocess
import time

from conftest import DEFAULT_FLAGS, LADDER_BIN, free_port, server_env
from ladder_http import ConnectionClosed, Conn

START_TIMEOUT = 20  # a refused start exits at once; a start that is not refused hangs


def serve_cli(ladder_cli, port, data):
    return ladder_cli(
        "serve", "--listen", "127.0.0.1:%d" % port, "--data", str(data), *DEFAULT_FLAGS,
        timeout=START_TIMEOUT,
    )  # fmt: skip


def wait_ready(proc, port, timeout=10.0):
    """Polls GET /readyz until 200 or the process exits; the last status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with Conn(port, timeout=2.0) as c:
                last = c.request("GET", "/readyz").status
            if last == 200:
                break
        except (OSError, ConnectionClosed):  # not listening yet
            pass
        time.sleep(0.05)
    return last


def assert_address_in_use(p, port):
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, err)
    assert "127.0.0.1:%d" % port in err, err
    assert "in use" in err.lower(), err
    assert "listening" not in err, err


def test_second_serve_on_same_port_other_dir_is_refused(ladder_server, ladder_cli, tmp_path):
    first = ladder_server()
    p = serve_cli(ladder_cli, first.port, tmp_path / "other")
    assert_address_in_use(p, first.port)
    # Refused before it made a database of its own.
    assert not (tmp_path / "other" / "ladder.db").exists()
    # The first one still has the port to itself.
    for _ in range(20):
        with first.conn() as c:
            assert c.request("GET", "/readyz").status == 200


def test_second_serve_on_same_port_same_dir_is_refused_by_the_dir_lock(ladder_server, ladder_cli):
    # The data directory is locked before any listener is opened, so this
    # start is refused by the directory lock; the port alone is tested with
    # another directory above and in test_two_serves_started_at_once_*.
    first = ladder_server()
    p = serve_cli(ladder_cli, first.port, first.data_dir)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, err)
    assert "data directory '%s' is locked by pid %d" % (first.data_dir, first.proc.pid) in err
    assert "listening" not in err
    assert first.alive()


def popen_serve(port, data, err_path, out_path=None):
    """Starts a server; stderr (and stdout, the JSON log, when out_path is
    given) go to files."""
    with open(err_path, "wb") as fe, open(out_path or "/dev/null", "wb") as fo:
        return subprocess.Popen(
            [LADDER_BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--data", str(data),
             *DEFAULT_FLAGS],
            stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=server_env(),
        )  # fmt: skip


def stop(p):
    if p.poll() is None:
        p.terminate()
    return p.wait(timeout=15)


def test_two_serves_started_at_once_on_one_port_only_one_runs(tmp_path):
    port = free_port()
    errs = [tmp_path / "a.stderr", tmp_path / "b.stderr"]
    procs = [popen_serve(port, tmp_path / "a", errs[0]), popen_serve(port, tmp_path / "b", errs[1])]
    try:
        # Bounded: a refused start exits at once; the other becomes ready.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.05)
        exited = [i for i, p in enumerate(procs) if p.poll() is not None]
        assert len(exited) == 1, [e.read_text() for e in errs]
        loser, winner = exited[0], 1 - exited[0]
        err = errs[loser].read_text()
        assert procs[loser].returncode == 1, err
        assert "cannot listen on 127.0.0.1:%d" % port in err, err
        assert "in use" in err.lower(), err
        assert "listening" not in err, err
        assert wait_ready(procs[winner], port) == 200, errs[winner].read_text()
    finally:
        rcs = [stop(p) for p in procs]
    assert rcs[winner] == 0, errs[winner].read_text()


def test_start_up_lock_held_by_another_process_warns_and_starts(tmp_path):
    # Any local user can bind the abstract name the server uses as its
    # start-up lock (src/http/server.c, take_startup_mutex). That must not
    # stop the server: the probe is the real check, the lock only a help.
    port = free_port()
    squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    squatter.bind("\0ladder-listen-tcp-%d" % port)
    err_path, out_path = tmp_path / "serve.stderr", tmp_path / "serve.log"
    try:
        p = popen_serve(port, tmp_path / "d", err_path, out_path)
        try:
            assert wait_ready(p, port, timeout=START_TIMEOUT) == 200, err_path.read_text()
            warns = [
                e for e in map(json.loads, out_path.read_text().splitlines())
                if e["level"] == "warn"
            ]  # fmt: skip
            assert [e["msg"] for e in warns] == [
                "start-up lock for port %d still held by another process after 5000 ms: "
                "checking the port without it" % port
            ], out_path.read_text()
        finally:
            rc = stop(p)
    finally:
        squatter.close()
    assert rc == 0, err_path.read_text()


def test_reuseport_listener_of_another_program_blocks_start(ladder_cli, tmp_path):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    try:
        p = serve_cli(ladder_cli, port, tmp_path / "d")
    finally:
        s.close()
    assert_address_in_use(p, port)


def test_plain_listener_of_another_program_blocks_start(ladder_cli, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    try:
        p = serve_cli(ladder_cli, port, tmp_path / "d")
    finally:
        s.close()
    assert_address_in_use(p, port)


def test_wildcard_listener_blocks_start_on_loopback(ladder_cli, tmp_path):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", 0))
    s.listen(16)
    port = s.getsockname()[1]
    try:
        p = serve_cli(ladder_cli, port, tmp_path / "d")
    finally:
        s.close()
    assert_address_in_use(p, port)


def test_restart_on_same_port_after_stop(ladder_server, tmp_path):
    # The server closes first (Connection: close), so its side of these
    # connections sits in TIME_WAIT on the port: that is no listener, and the
    # same port must be taken again at once.
    first = ladder_server()
    port = first.port
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        s.close()
    assert first.stop() == 0
    err_path = tmp_path / "again.stderr"
    with open(err_path, "wb") as fe:
        p = subprocess.Popen(
            [LADDER_BIN, "serve", "--listen", "127.0.0.1:%d" % port,
             "--data", str(first.data_dir), *DEFAULT_FLAGS],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=fe, env=server_env(),
        )  # fmt: skip
    try:
        assert wait_ready(p, port) == 200, err_path.read_text()
    finally:
        if p.poll() is None:
            p.terminate()
        assert p.wait(timeout=15) == 0, err_path.read_text()


def test_two_serves_on_one_dir(ladder_server, ladder_cli):
    first = ladder_server()
    p = serve_cli(ladder_cli, free_port(), first.data_dir)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, err)
    assert "data directory '%s' is locked by pid %d" % (first.data_dir, first.proc.pid) in err
    assert "listening" not in err
    assert first.alive()


def test_migrate_while_serving_is_refused(ladder_server, ladder_cli):
    first = ladder_server()
    p = ladder_cli("migrate", "--data", str(first.data_dir))
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, err)
    assert "ladder migrate: data directory '%s' is locked by pid %d" % (
        first.data_dir,
        first.proc.pid,
    ) in err
    assert p.stdout == b""
    with first.conn() as c:
        assert c.request("GET", "/readyz").status == 200


def test_lock_file_holds_the_pid_and_is_emptied_on_stop(ladder_server, ladder_cli):
    first = ladder_server()
    lock = first.data_dir / "ladder.lock"
    assert lock.read_text() == "%d\n" % first.proc.pid
    assert first.stop() == 0
    assert lock.read_text() == ""
    p = ladder_cli("migrate", "--data", str(first.data_dir))
    assert p.returncode == 0, p.stderr


def test_sigkilled_server_leaves_no_stale_lock(ladder_server, ladder_cli):
    first = ladder_server()
    pid = first.proc.pid
    first.kill()  # SIGKILL: no clean-up of any kind
    lock = first.data_dir / "ladder.lock"
    assert lock.read_text() == "%d\n" % pid  # the file stays, the lock does not
    p = ladder_cli("migrate", "--data", str(first.data_dir))
    assert p.returncode == 0, p.stderr
    first.start()  # a new server on the same directory
    assert lock.read_text() == "%d\n" % first.proc.pid
    with first.conn() as c:
        assert c.request("GET", "/readyz").status == 200


def test_migrate_creates_and_releases_the_dir(ladder_cli, tmp_path):
    data = tmp_path / "a" / "b"
    p = ladder_cli("migrate", "--data", str(data))
    assert p.returncode == 0, p.stderr
    assert (data / "ladder.db").exists()
    assert (data / "ladder.lock").read_text() == ""
    p = ladder_cli("migrate", "--data", str(data))
    assert p.returncode == 0, p.stderr
