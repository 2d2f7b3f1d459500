#!/usr/bin/env python3
"""Memory per idle keep-alive connection of a running `ladder serve`.

Usage: idle_conns.py PID PORT N

Opens N connections to 127.0.0.1:PORT and reads the server's resident memory
(VmRSS of PID) three times: before, once the server has accepted all N (its
ladder_http_open_connections gauge says so), and after every connection has
served one GET /healthz and is idle again. Prints one line per figure:

  accepted_bytes_per_conn B
  after_request_bytes_per_conn B

RSS is what the kernel charges the process, so it includes libuv's handles,
the allocator's overhead and any buffer kept per connection; the kernel's own
socket buffers are not in it (they are not the server's to release).
"""

import re
import socket
import sys
import time

REQ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def read_response(s, buf=b""):
    """Reads one response with a Content-Length body; returns the rest."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed in the body")
        rest += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("unexpected response: %r" % head[:80])
    return rest[n:]


def open_gauge(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    m = re.search(rb"(?m)^ladder_http_open_connections (\d+)", data)
    if not m:
        raise RuntimeError("no ladder_http_open_connections in /metrics")
    return int(m.group(1)) - 1  # the /metrics connection itself


def wait_gauge(port, want, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        n = open_gauge(port)
        if n == want:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("server has %d connections open, want %d" % (n, want))
        time.sleep(0.05)


def measure(pid, port, n, settle=0.2):
    """Returns (bytes per connection just accepted, after one request each)."""
    # Warm up what the first requests allocate once (store, zlib, logs).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(50):
            s.sendall(REQ)
            read_response(s)
    wait_gauge(port, 0)
    time.sleep(settle)
    base = rss_bytes(pid)
    conns = []
    try:
        for _ in range(n):
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        wait_gauge(port, n)
        time.sleep(settle)
        accepted = rss_bytes(pid)
        # One request on each, 64 at a time, so the figure is the idle cost
        # after a request and not the peak of n requests in flight at once.
        for i in range(0, n, 64):
            batch = conns[i : i + 64]
            for s in batch:
                s.sendall(REQ)
            for s in batch:
                if read_response(s):
                    raise RuntimeError("bytes after the response")
        time.sleep(settle)
        served = rss_bytes(pid)
    finally:
        for s in conns:
            s.close()
    return (accepted - base) / n, (served - base) / n


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    a, b = measure(pid, port, n)
    print("accepted_bytes_per_conn %.0f" % a)
    print("after_request_bytes_per_conn %.0f" % b)


if __name__ == "__main__":
    main()
