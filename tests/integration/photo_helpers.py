"""What the photo and worker tests share: images made here (libvips' command
line for ordinary ones, zlib for the PNG bomb), a `ladder worker` process on
a free port, and looks at the database the way an operator would: SQLite
directly, or PostgreSQL through psql when LADDER_STORE=postgres (the store
the box and its workers run on)."""

import json
import os
import sqlite3
import struct
import subprocess
import time
import zlib
from pathlib import Path

from conftest import (
    LADDER_BIN,
    LADDER_STORE,
    SANITIZER_MARKERS,
    free_port,
    pg_conninfo_for,
    server_env,
    store_flags,
)
from ladder_http import Conn

# Fast defaults for tests: poll often, no fsync.
WORKER_FLAGS = ["--poll", "20ms", "--sync", "off", "--backoff-base", "0s"]


def make_jpeg(path, width, height):
    """A real JPEG of width x height (a gradient, so it has detail)."""
    subprocess.run(
        ["vips", "xyz", str(path) + ".v", str(width), str(height)], check=True, capture_output=True
    )
    subprocess.run(
        ["vips", "cast", str(path) + ".v", str(path) + "[Q=90]", "uchar"],
        check=True,
        capture_output=True,
    )
    os.unlink(str(path) + ".v")
    return Path(path).read_bytes()


def png_bomb(side=20000):
    """A valid 1-bit greyscale PNG of side x side pixels: ~50 KB that decode
    to side^2 pixels."""
    row = b"\0" + b"\0" * ((side + 7) // 8)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def interlaced_png_bomb(side=20000):
    """An Adam7-interlaced 8-bit greyscale PNG of side x side pixels: ~400 KB.
    An interlaced PNG cannot be decoded a strip at a time: the loader holds
    the whole image (side^2 bytes, 400 MB for 20000) however small the
    thumbnail."""
    z = zlib.compressobj(9)
    parts = []
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):  # fmt: skip
        w, h = (side - x0 + dx - 1) // dx, (side - y0 + dy - 1) // dy
        row = b"\0" * (w + 1)
        parts.extend(z.compress(row) for _ in range(h))
    data = b"".join(parts) + z.flush()

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def image_size(path):
    """Width and height as libvips reads them (a decode check: vipsheader
    parses the file)."""
    out = subprocess.run(
        ["vipsheader", "-f", "width", str(path)], check=True, capture_output=True, text=True
    ).stdout
    w = int(out.strip())
    out = subprocess.run(
        ["vipsheader", "-f", "height", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return w, int(out.strip())


def decodes(path):
    """True when libvips can decode every pixel of the file."""
    r = subprocess.run(["vips", "avg", str(path)], capture_output=True)
    return r.returncode == 0


def worker_store_flags(data_dir):
    """The flags that put a worker (or `ladder migrate`) on the store of the
    servers here: postgres, or SQLite in data_dir (what sqlite-deferred
    stores in, too)."""
    return store_flags(data_dir) if LADDER_STORE == "postgres" else []


class _PgRows:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return self.rows


class PgDb:
    """The few calls the tests make on a sqlite3 connection, on PostgreSQL:
    one psql per statement (autocommit, as the sqlite3 connection is), `?`
    parameters as SQL literals, a SELECT's rows as tuples of JSON values
    (so numbers are numbers)."""

    PSQL = "/usr/lib/postgresql/15/bin/psql"

    def __init__(self, conninfo):
        self.conninfo = conninfo

    @staticmethod
    def _literal(v):
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return "'" + str(v).replace("'", "''") + "'"

    def execute(self, sql, args=()):
        parts = sql.split("?")
        assert len(parts) == len(args) + 1, (sql, args)
        text = parts[0] + "".join(self._literal(a) + p for a, p in zip(args, parts[1:]))
        select = text.lstrip().upper().startswith("SELECT")
        if select:
            text = "SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM (%s) t" % text
        r = subprocess.run(
            [self.PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.conninfo, "-c", text],
            capture_output=True, timeout=30,
        )  # fmt: skip
        assert r.returncode == 0, (text, r.stderr.decode(errors="replace"))
        rows = []
        if select:
            rows = [tuple(d.values()) for d in json.loads(r.stdout.decode() or "[]")]
        return _PgRows(rows)

    def close(self):
        pass


class Box:
    """A data directory made by `ladder migrate`, with one user, where tests
    put photos the way the API does (row, object, then the upload-complete
    update whose trigger queues the job). On LADDER_STORE=postgres the
    database is the PostgreSQL one of that data directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.data = self.root / "data"
        self.store_flags = worker_store_flags(self.data)
        r = subprocess.run(
            [LADDER_BIN, "migrate", "--data", str(self.data), *self.store_flags],
            capture_output=True,
            env=server_env(),
            timeout=20,
        )
        assert r.returncode == 0, r.stderr
        if LADDER_STORE == "postgres":
            self.db = PgDb(pg_conninfo_for(self.data))
        else:
            self.db = sqlite3.connect(
                str(self.data / "ladder.db"), timeout=10, isolation_level=None
            )
            self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("INSERT INTO users VALUES (1, 'alice', 'Alice', 'x', 1, 1, 1)")
        self.next_id = 1000

    def blob(self, photo, name):
        return self.data / "blobs" / "photos" / str(photo) / name

    def add_photo(self, content, content_type="image/jpeg", complete=True):
        self.next_id += 1
        pid = self.next_id
        now = int(time.time() * 1000)
        self.db.execute(
            "INSERT INTO photos VALUES (?, 1, 'uploading', ?, 0, 0, 0, '', ?, ?, 1)",
            (pid, content_type, now, now),
        )
        path = self.blob(pid, "original")
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is not None:
            path.write_bytes(content)
        if complete:
            self.complete(pid, len(content or b""))
        return pid

    def complete(self, pid, size):
        self.db.execute(
            "UPDATE photos SET status = 'processing', size = ?, updated_ms = ? WHERE id = ?",
            (size, int(time.time() * 1000), pid),
        )

    def photo(self, pid):
        row = self.db.execute(
            "SELECT status, reason, width, height, version FROM photos WHERE id = ?", (pid,)
        ).fetchone()
        return row and dict(zip(("status", "reason", "width", "height", "version"), row))

    def versions(self, pid):
        rows = self.db.execute(
            "SELECT name, width, height, size, etag FROM photo_versions WHERE photo_id = ?"
            " ORDER BY width",
            (pid,),
        ).fetchall()
        return {r[0]: {"width": r[1], "height": r[2], "size": r[3], "etag": r[4]} for r in rows}

    def jobs(self, where="true", args=()):
        return self.db.execute(
            "SELECT id, kind, subject, state, attempts, lease_owner, last_error FROM jobs WHERE "
            + where,
            args,
        ).fetchall()

    def wait_status(self, pid, statuses, timeout=20.0):
        deadline = time.monotonic() + timeout
        p = None
        while time.monotonic() < deadline:
            p = self.photo(pid)
            if p and p["status"] in statuses:
                return p
            time.sleep(0.02)
        raise AssertionError("photo %d never reached %s; last %r" % (pid, statuses, p))

    def wait_jobs(self, where, args, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        rows = []
        while time.monotonic() < deadline:
            rows = self.jobs(where, args)
            if len(rows) == n:
                return rows
            time.sleep(0.02)
        raise AssertionError("never %d jobs where %s; last %r" % (n, where, rows))


class Worker:
    """One `ladder worker` process on a Box."""

    def __init__(self, box, *flags, env=None):
        self.box = box
        self.port = free_port()
        self.n = getattr(box, "_workers", 0) + 1
        box._workers = self.n
        self.err_path = box.root / ("worker.%d.err" % self.n)
        self.out_path = box.root / ("worker.%d.out" % self.n)
        argv = [
            LADDER_BIN, "worker",
            "--data", str(box.data),
            *getattr(box, "store_flags", []),
            "--listen", "127.0.0.1:%d" % self.port,
            *WORKER_FLAGS, *flags,
        ]  # fmt: skip
        with open(self.err_path, "wb") as fe, open(self.out_path, "wb") as fo:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                env=server_env(env),
            )
        self.wait_ready()

    def get(self, path):
        with Conn(self.port, timeout=5.0) as c:
            return c.request("GET", path)

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "worker exited: " + self.stderr()
            try:
                if self.get("/readyz").status == 200:
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise AssertionError("worker not ready: " + self.stderr())

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def logs(self):
        """The JSON log lines (stdout), parsed."""
        out = []
        for line in self.out_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def stop(self, timeout=15):
        self.proc.terminate()
        rc = self.proc.wait(timeout=timeout)
        self.check_clean()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def check_clean(self):
        text = self.stderr()
        for m in SANITIZER_MARKERS:
            assert m not in text, text[-3000:]
