"""A small raw-socket HTTP/1.1 client for the integration tests.

The tests need to send exact bytes (malformed and smuggling-shaped requests,
pipelined requests in one write, trickled headers) and to see exactly what the
server answered and whether it closed the connection afterwards; the standard
library clients normalise too much for that. Standard library only.
"""

import gzip
import json
import re
import select
import socket
import time

DEFAULT_TIMEOUT = 5.0

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DECIMAL_ID = re.compile(r"^[1-9][0-9]{0,19}$")
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class ConnectionClosed(Exception):
    """The server closed the connection before a whole response arrived."""


class Response:
    """One parsed HTTP response. Header names are kept as sent; lookups are
    case-insensitive."""

    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body  # bytes, chunked framing removed, not decompressed
        self.head = head  # raw bytes of status line and header block

    def header(self, name):
        """The first value of header name, or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def content(self):
        """The body, gunzipped when Content-Encoding says gzip."""
        enc = (self.header("Content-Encoding") or "").strip().lower()
        if enc == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def json(self):
        return json.loads(self.content().decode("utf-8"))

    def __repr__(self):
        body = self.body[:300]
        return "<Response %d %r headers=%r body=%r>" % (
            self.status,
            self.reason,
            self.headers,
            body,
        )


def build_request(method, target, headers=None, body=None, version="HTTP/1.1", host="test"):
    """Bytes of one request. headers is a list of (name, value) pairs or a
    dict; Host is added unless host is None or headers has one;
    Content-Length is added for a body unless headers frame it already."""
    if headers is None:
        headers = []
    elif isinstance(headers, dict):
        headers = list(headers.items())
    else:
        headers = list(headers)
    names = {k.lower() for k, _ in headers}
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = []
    if host is not None and "host" not in names:
        lines.append(("Host", host))
    lines.extend(headers)
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(("Content-Length", str(len(body))))
    out = ("%s %s %s\r\n" % (method, target, version)).encode("latin-1")
    for k, v in lines:
        if isinstance(v, bytes):
            out += k.encode("latin-1") + b": " + v + b"\r\n"
        else:
            out += ("%s: %s\r\n" % (k, v)).encode("latin-1")
    out += b"\r\n"
    if body is not None:
        out += body
    return out


def chunked(*parts):
    """A chunked body made of parts (bytes), with the last-chunk."""
    out = b""
    for p in parts:
        if isinstance(p, str):
            p = p.encode("utf-8")
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


class Conn:
    """One TCP connection to the server, with its own read buffer so that
    pipelined responses are split correctly."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False
        self.received = 0  # bytes read so far
        self.last_io = time.monotonic()  # of the last send or receive

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)
        self.last_io = time.monotonic()

    def _fill(self):
        """Reads more bytes into the buffer; False at EOF (or reset)."""
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.last_io = time.monotonic()
        if not chunk:
            self.eof = True
            return False
        self.received += len(chunk)
        self.buf += chunk
        return True

    def peer_closed(self):
        """True when the server has closed the connection (its FIN is
        waiting to be read); never blocks. Bytes that arrive unasked stay in
        the buffer, where the next read_response finds them."""
        if self.eof:
            return True
        readable, _, _ = select.select([self.sock], [], [], 0)
        if readable:
            self._fill()
        return self.eof

    def read_until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = self.buf[: i + len(marker)]
                self.buf = self.buf[i + len(marker) :]
                return out
            if not self._fill():
                raise ConnectionClosed("closed before %r (have %r)" % (marker, self.buf[:200]))

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("closed with %d of %d body bytes" % (len(self.buf), n))
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out

    def read_response(self, method="GET"):
        """Reads one final response (1xx interim responses are skipped).
        method matters for HEAD, whose response has no body."""
        while True:
            head = self.read_until(b"\r\n\r\n")
            text = head.decode("latin-1")
            lines = text[:-4].split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise AssertionError("bad status line %r" % lines[0])
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = []
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if not sep:
                    raise AssertionError("bad header line %r" % line)
                headers.append((k, v.strip()))
            resp = Response(version, status, reason, headers, b"", head)
            if 100 <= status < 200:
                continue
            break
        if method == "HEAD" or status in (204, 304):
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers (none expected) up to the blank line.
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self._read_exact(size)
                self._read_exact(2)
            resp.body = body
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method, target, headers=None, body=None, **kw):
        self.send(build_request(method, target, headers, body, **kw))
        return self.read_response(method)

    def wait_closed(self, timeout=3.0):
        """Waits up to timeout for the server to close the connection.
        Returns (closed, extra): extra is any bytes that arrived meanwhile
        (a well-behaved server sends none after a closing response)."""
        deadline = time.monotonic() + timeout
        extra = self.buf
        self.buf = b""
        if self.eof:
            return True, extra
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, extra
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False, extra
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    self.eof = True
                    return True, extra
                extra += chunk
        finally:
            try:
                self.sock.settimeout(DEFAULT_TIMEOUT)
            except OSError:
                pass


def exchange(port, data, timeout=DEFAULT_TIMEOUT, method="GET"):
    """Sends data on a fresh connection, reads one response, then reports
    whether the server closed the connection. Returns (response, closed)."""
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        resp = c.read_response(method)
        closed, _ = c.wait_closed(3.0)
        return resp, closed


# A keep-alive connection idle this long may be closed by the server's
# keep-alive timeout (3 s in the tests) just as a request goes out on it.
IDLE_RETRY_S = 1.0


class Client:
    """A keep-alive JSON client over one connection (reopened when the server
    closed it). Every request is sent whole and its response read at once.

    A request is sent again on a new connection in one case only: it went
    out on a connection idle for IDLE_RETRY_S or more and not one byte of an
    answer came back (the server's keep-alive close and the send crossed).
    A connection closed at any other time is the server's fault and fails
    the request rather than being papered over.

    With session=True the client is the consistent API client docs/api.md
    describes: it sends back the last Ladder-Session token it was given
    (unless the request names its own), so on a service of several nodes
    and replicas it reads its own writes."""

    def __init__(self, port, timeout=DEFAULT_TIMEOUT, session=False):
        self.port = port
        self.timeout = timeout
        self.conn = None
        self.session = session
        self.session_token = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, target, headers=None, body=None, token=None, json_body=None):
        if headers is None:
            headers = []
        elif isinstance(headers, dict):
            headers = list(headers.items())
        else:
            headers = list(headers)
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/json"))
        if token is not None:
            headers.append(("Authorization", "Bearer " + token))
        if (
            self.session
            and self.session_token
            and not any(k.lower() == "ladder-session" for k, _ in headers)
        ):
            headers.append(("Ladder-Session", self.session_token))
        data = build_request(method, target, headers, body)
        for attempt in (0, 1):
            if self.conn is not None and self.conn.peer_closed():
                self.close()  # closed while idle, seen before sending
            if self.conn is None:
                self.conn = Conn(self.port, timeout=self.timeout)
            idle = time.monotonic() - self.conn.last_io
            received = self.conn.received
            try:
                self.conn.send(data)
                resp = self.conn.read_response(method)
            except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
                crossed = idle >= IDLE_RETRY_S and self.conn.received == received
                self.close()
                if attempt or not crossed:
                    raise
                continue
            conn_hdr = (resp.header("Connection") or "").lower()
            if "close" in conn_hdr:
                self.close()
            if self.session and resp.header("Ladder-Session"):
                self.session_token = resp.header("Ladder-Session")
            return resp
        raise AssertionError("unreachable")

    def get(self, target, headers=None, token=None):
        return self.request("GET", target, headers, token=token)

    def post(self, target, obj, token=None, headers=None):
        return self.request("POST", target, headers, token=token, json_body=obj)

    def put(self, target, obj, token=None, headers=None):
        return self.request("PUT", target, headers, token=token, json_body=obj)

    def patch(self, target, obj, token=None, headers=None):
        return self.request("PATCH", target, headers, token=token, json_body=obj)

    def delete(self, target, token=None, headers=None):
        return self.request("DELETE", target, headers, token=token)


# ---- API conveniences shared by the test modules ----------------------------

_seq = [0]


def unique_handle(prefix="u"):
    """A handle that is valid ([a-z0-9_], 3-32) and unique within a run."""
    _seq[0] += 1
    return "%s_%x_%d" % (prefix, int(time.time() * 1000) % 0xFFFFFFF, _seq[0])


PASSWORD = "correct horse battery"


def create_user(client, handle=None, display_name="Test User", password=PASSWORD):
    """Creates a user, asserts 201, returns the user JSON."""
    handle = handle or unique_handle()
    r = client.post(
        "/v1/users", {"handle": handle, "display_name": display_name, "password": password}
    )
    assert r.status == 201, r
    return r.json()


def login(client, handle, password=PASSWORD):
    r = client.post("/v1/sessions", {"handle": handle, "password": password})
    assert r.status == 201, r
    return r.json()["token"]


def new_account(client, prefix="u"):
    """Creates a user and logs in. Returns (user JSON, token)."""
    user = create_user(client, unique_handle(prefix))
    return user, login(client, user["handle"])


def create_item(client, token, content):
    r = client.post("/v1/items", {"content": content}, token=token)
    assert r.status == 201, r
    return r.json()


def assert_problem(resp, status):
    """Asserts an RFC 9457 problem answer with the given status; returns the
    parsed body."""
    assert resp.status == status, resp
    ctype = resp.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/problem+json", resp
    doc = resp.json()
    assert isinstance(doc, dict), doc
    for key in ("type", "title", "status", "detail"):
        assert key in doc, (key, doc)
    assert isinstance(doc["type"], str) and doc["type"], doc
    assert isinstance(doc["title"], str) and doc["title"], doc
    assert isinstance(doc["detail"], str), doc
    assert doc["status"] == status, doc
    # Every response carries a request id, errors included.
    assert SANE_REQUEST_ID.match(resp.header("X-Request-Id") or ""), resp
    return doc


def assert_json_response(resp, status):
    """Asserts a JSON answer (application/json; charset=utf-8, as the API
    note says) with the given status; returns the parsed body."""
    assert resp.status == status, resp
    ctype = (resp.header("Content-Type") or "").lower().replace(" ", "")
    assert ctype == "application/json;charset=utf-8", resp
    assert SANE_REQUEST_ID.match(resp.header("X-Request-Id") or ""), resp
    return resp.json()


# ---- waiting and metrics, shared by the test modules ------------------------


def poll(pred, timeout=20.0, what="condition", interval=0.02):
    """Calls pred until it returns a true value, and returns that value; after
    timeout seconds without one, fails the test naming what it waited for.
    Tests wait for the server's own bookkeeping this way, never by sleeping
    a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def stats(srv, headers=None):
    """GET /debug/stats of srv, checked to be a JSON answer, as a dict."""
    with srv.conn() as c:
        r = c.request("GET", "/debug/stats", headers=headers or [])
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").startswith("application/json"), r
    return r.json()


def stats_route(doc, name):
    """The entry of route name in a /debug/stats document."""
    found = [r for r in doc["routes"] if r["route"] == name]
    assert len(found) == 1, [r["route"] for r in doc["routes"]]
    return found[0]


def metrics(srv):
    """Every sample of srv's /metrics as {'name{labels}': value} (a series
    without labels is keyed by its bare name). Behind a balancer (a server
    with balanced set: conftest's LADDER_URL) each request may reach another
    node, so a test that reads counters is skipped there."""
    if getattr(srv, "balanced", False):
        import pytest

        pytest.skip("reads one node's /metrics; behind a balancer requests reach several")
    with srv.conn() as c:
        r = c.request("GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.content().decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(srv, name, /, **labels):
    """The sum of name's samples whose labels include labels (all of name's
    samples when none are given); fails when no sample matches. srv and name
    are positional only, so a label may be called name."""
    total, found = 0.0, False
    for series, value in metrics(srv).items():
        m = _SERIES.match(series)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
            found = True
    assert found, "no sample of %s with %s in /metrics" % (name, labels)
    return total
