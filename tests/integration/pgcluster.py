"""A throwaway PostgreSQL 15 cluster for the tests: initdb into a temp dir,
a postmaster on a free loopback port (no TCP outside 127.0.0.1, its socket in
its own dir), databases made on demand, and always stopped and removed.

initdb refuses to run as root: as root, the cluster runs as the `postgres`
user (runuser) in a directory that user owns.

add_replica() makes a streaming replica of a running primary with
`pg_basebackup -R` (hot standby, on a free port of its own); the primary's
stop() stops its replicas too.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("LADDER_PG_BIN") or "/usr/lib/postgresql/15/bin"
START_TIMEOUT = 30.0


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgCluster:
    def __init__(self):
        self.dir = None
        self.proc = None
        self.port = None
        self.ndb = 0
        self.as_root = os.geteuid() == 0
        self.replicas = []

    def _cmd(self, *argv):
        if self.as_root:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def _make_dir(self):
        self.dir = tempfile.mkdtemp(prefix="ladder-pg-")
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _init_data(self, data):
        """Makes the data directory: initdb (a replica copies its primary's)."""
        r = subprocess.run(
            self._cmd(
                os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres",
                "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
            ),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout.decode(errors="replace"))

    def start(self):
        self._make_dir()
        try:
            self._init_data(os.path.join(self.dir, "data"))
        except Exception:
            self.stop()
            raise
        last = ""
        for _ in range(5):
            self.port = _free_port()
            if self._launch():
                return self
            last = self.log_tail()
            if "in use" not in last:
                break
        self.stop()
        raise RuntimeError("postgres did not start:\n" + last)

    def _launch(self):
        data = os.path.join(self.dir, "data")
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            self._cmd(
                os.path.join(PG_BIN, "postgres"), "-D", data, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=" + self.dir,
                "-c", "max_connections=300",
            ),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        if self._wait_up():
            return True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None
        return False

    def halt(self):
        """Stops the postmaster (fast shutdown: every session is cut) and
        keeps the cluster for resume()."""
        self._halt()

    def resume(self):
        """Starts the halted cluster again on the same port."""
        if not self._launch():
            raise RuntimeError("postgres did not restart:\n" + self.log_tail())

    def _wait_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            r = subprocess.run(
                [os.path.join(PG_BIN, "pg_isready"), "-q", "-h", "127.0.0.1",
                 "-p", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if r.returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def log_tail(self, n=3000):
        try:
            with open(os.path.join(self.dir, "postgres.log"), "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def conninfo(self, db="postgres"):
        # hostaddr: libpq never resolves a name (which would block a loop).
        return "hostaddr=127.0.0.1 port=%d dbname=%s user=postgres" % (self.port, db)

    def psql(self, sql, db="postgres", check=True):
        """Runs one statement; returns its unaligned, tuples-only output."""
        r = subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.conninfo(db), "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
        if check and r.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, r.stderr.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def new_database(self):
        self.ndb += 1
        name = "ladder_t%d" % self.ndb
        self.psql("CREATE DATABASE %s" % name)
        return name

    def _halt(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # SIGINT to the postmaster itself (runuser may stand between):
            # fast shutdown, open sessions are cut.
            pid = self.postmaster_pid()
            try:
                os.kill(pid or self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def add_replica(self):
        """A streaming replica of this (running) primary, started and
        caught up; stopped with the primary."""
        r = PgReplica(self).start()
        self.replicas.append(r)
        return r

    def stop(self):
        for r in self.replicas:
            r.stop()
        self.replicas = []
        self._halt()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class PgReplica(PgCluster):
    """A hot standby streaming from primary, made by pg_basebackup -R (the
    copy carries the primary's settings; the replica gets its own port and
    socket directory on the command line)."""

    def __init__(self, primary):
        super().__init__()
        self.primary = primary

    def _init_data(self, data):
        r = subprocess.run(
            self._cmd(
                os.path.join(PG_BIN, "pg_basebackup"), "-D", data, "-R", "-X", "stream",
                "-c", "fast", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            ),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError("pg_basebackup failed:\n" + r.stdout.decode(errors="replace"))

    def new_database(self):
        raise RuntimeError("a replica is read-only: make databases on the primary")

    def replay_pause(self):
        """Pauses WAL replay and waits until it is paused."""
        self.psql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + START_TIMEOUT
        while self.psql("SELECT pg_get_wal_replay_pause_state()").strip() != "paused":
            if time.monotonic() > deadline:
                raise RuntimeError("replay did not pause")
            time.sleep(0.02)

    def replay_resume(self):
        self.psql("SELECT pg_wal_replay_resume()")
