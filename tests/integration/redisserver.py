"""A throwaway redis-server for the tests: a free loopback port, its files in
a temp dir, no persistence, always stopped and removed. kill(), pause() and
resume() (SIGSTOP/SIGCONT) and start() again on the same port serve the
fault tests; cmd() speaks RESP2 to it for checks (the values in Redis)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REDIS_BIN = os.environ.get("LADDER_REDIS_BIN") or "redis-server"
START_TIMEOUT = 10.0


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisServer:
    def __init__(self, maxmemory="64mb"):
        self.dir = tempfile.mkdtemp(prefix="ladder-redis-")
        self.port = None
        self.proc = None
        self.maxmemory = maxmemory
        self.paused = False

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        """Starts it (again: on the same port once it had one)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        for _ in range(5):
            if self.port is None or self.proc is None:
                port = self.port or _free_port()
            else:
                port = self.port
            argv = [
                REDIS_BIN, "--port", str(port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--appendonly", "no",
                "--maxmemory", self.maxmemory, "--maxmemory-policy", "allkeys-lru",
                "--protected-mode", "no", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
            ]  # fmt: skip
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.cmd("PING", port=port) == "PONG":
                        self.port = port
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            self._reap()
            if self.port is not None:
                raise RuntimeError("redis-server did not come back on port %d" % self.port)
        raise RuntimeError("redis-server did not start:\n" + self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def _reap(self):
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
                self.paused = False
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self):
        """SIGKILL: gone at once, its data with it."""
        self._reap()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self):
        self._reap()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cmd(self, *args, port=None, timeout=2.0):
        """One command; the reply as str, int, None or a list."""
        s = socket.create_connection(("127.0.0.1", port or self.port), timeout=timeout)
        try:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read(f)
        finally:
            s.close()


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise OSError("bad reply %r" % line)
