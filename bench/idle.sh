#!/bin/bash
# Memory per idle keep-alive connection (issue 7): IDLE_CONNS connections
# (10,000 by default) to a one-loop `ladder serve`, measured by the growth of
# its resident memory just after accept and after one request on each.
# Fails when either figure passes IDLE_MAX_BYTES (4096 by default).
#
# Usage: bench/idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${IDLE_CONNS:-10000}
MAX=${IDLE_MAX_BYTES:-4096}
BIN=${LADDER_BIN:-build/rel/ladder}

# The client and the server each hold N sockets.
need=$((N + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
	ulimit -n "$need" 2>/dev/null || {
		echo "bench/idle.sh: needs 'ulimit -n $need' (hard limit $(ulimit -Hn))" >&2
		exit 1
	}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-idle.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Timeouts long enough that no connection is closed while it is measured.
"$BIN" serve --listen "127.0.0.1:$port" --data "$work/data" --threads 1 \
	--max-connections $((N + 100)) --header-timeout 10m --keepalive-timeout 10m \
	--log-requests off --argon2-ops 1 --argon2-mem 64KiB >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
	sleep 0.1
done

echo "idle keep-alive connections: $N to one loop thread (limit $MAX bytes each)"
python3 bench/idle_conns.py "$pid" "$port" "$N" >"$work/idle.out"
accepted=$(awk '$1 == "accepted_bytes_per_conn" {print $2}' "$work/idle.out")
served=$(awk '$1 == "after_request_bytes_per_conn" {print $2}' "$work/idle.out")
printf '  just accepted:        %6s bytes per connection\n' "$accepted"
printf '  after one request:    %6s bytes per connection\n' "$served"
if [ "$accepted" -gt "$MAX" ] || [ "$served" -gt "$MAX" ]; then
	echo "bench/idle.sh: more than $MAX bytes per idle connection" >&2
	exit 1
fi
