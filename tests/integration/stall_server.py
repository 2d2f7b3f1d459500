#!/usr/bin/env python3
"""A small HTTP/1.1 test server for the `ladder bench` tests.

Threaded (one thread per connection), keep-alive, loopback only. It answers
every request with a short body and can misbehave on purpose:

  --stall-at S --stall-for D   S seconds after the first request, stop
                               answering for D seconds (answers due in that
                               window are held until it ends): a stall of a
                               known length, as a GC pause or a lock would be
  --delay-ms N                 answer every request N ms late
  --status N                   answer with status N
  --max-rps N                  answer 503 to requests beyond N in any one
                               second (a server with a known capacity)
  --answers-per-conn N         answer only the first N requests of a
                               connection; read the next one and close without
                               a word, as a server whose idle timeout fires
                               just as the client sends on the idle connection
                               (0: close under every request; --reset: with a
                               reset, not a FIN)

It prints "PORT <n>" on stdout once it listens (port 0 picks a free one).
"""

import argparse
import socket
import struct
import sys
import threading
import time

BODY = b"ok\n"


class State:
    def __init__(self, args):
        self.args = args
        self.first = None
        self.lock = threading.Lock()
        self.sec = -1
        self.in_sec = 0

    def hold_until(self, now):
        """Returns the time the answer may go out (stall window)."""
        a = self.args
        if a.stall_for <= 0 or self.first is None:
            return now
        start = self.first + a.stall_at
        end = start + a.stall_for
        return end if start <= now < end else now

    def over_capacity(self, now):
        if self.args.max_rps <= 0:
            return False
        with self.lock:
            sec = int(now)
            if sec != self.sec:
                self.sec, self.in_sec = sec, 0
            self.in_sec += 1
            return self.in_sec > self.args.max_rps


def read_request(conn, buf):
    """Reads one request; returns (rest_of_buffer, keep_alive) or None at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    keep = not lines[0].endswith(b"HTTP/1.0")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return rest[length:], keep


def serve_conn(conn, state):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    answered = 0
    try:
        while True:
            got = read_request(conn, buf)
            if got is None:
                return
            buf, keep = got
            limit = state.args.answers_per_conn
            if limit is not None and answered >= limit:
                if state.args.reset:
                    linger = struct.pack("ii", 1, 0)  # on, 0 s: close sends RST
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                return
            answered += 1
            now = time.monotonic()
            with state.lock:
                if state.first is None:
                    state.first = now
            status = state.args.status
            if state.over_capacity(time.time()):
                status = 503
            due = state.hold_until(now) + state.args.delay_ms / 1000.0
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            head = "HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (
                status,
                len(BODY),
                "" if keep else "Connection: close\r\n",
            )
            conn.sendall(head.encode() + BODY)
            if not keep:
                return
    except OSError:
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--stall-at", type=float, default=0)
    p.add_argument("--stall-for", type=float, default=0)
    p.add_argument("--delay-ms", type=float, default=0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--max-rps", type=int, default=0)
    p.add_argument("--answers-per-conn", type=int, default=None)
    p.add_argument("--reset", action="store_true")
    args = p.parse_args()
    state = State(args)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(1024)
    print("PORT %d" % ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(conn, state), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
