#!/bin/bash
# GET /v1/items/{id} hit throughput with the in-process cache against the
# same server without it (docs/cache.md, "Figures").
#
# Two servers, each pinned to core SERVER_CPU with one loop thread, one with
# --cache none and one with --cache local; the load generator (`ladder
# bench --rate max`, closed loop) runs on core CLIENT_CPU against one at a
# time, ROUNDS alternating runs of SECONDS_PER_RUN each; medians reported.
#
# Usage: bench/cache.sh            (ROUNDS=3 SECONDS_PER_RUN=10 CONNS=64)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}
CONNS=${CONNS:-64}
BIN=${LADDER_BIN:-build/rel/ladder}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-cache-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start MODE: starts a server, prints "PORT ITEM_PATH"
start() {
	local mode=$1 port i token hdr
	port=$(free_port)
	mkdir -p "$work/$mode"
	taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$port" --data "$work/$mode" \
		--threads 1 --cache "$mode" --log-requests off --argon2-ops 1 --argon2-mem 64KiB \
		>"$work/$mode.log" 2>&1 &
	pids+=($!)
	for i in $(seq 1 100); do
		curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
		sleep 0.1
	done
	curl -fs -X POST -H 'Content-Type: application/json' \
		-d '{"handle":"bench_user","password":"bench-password"}' \
		"http://127.0.0.1:$port/v1/users" >/dev/null
	token=$(curl -fs -X POST -H 'Content-Type: application/json' \
		-d '{"handle":"bench_user","password":"bench-password"}' \
		"http://127.0.0.1:$port/v1/sessions" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
	hdr="$work/$mode.hdr"
	curl -fs -D "$hdr" -o /dev/null -X POST -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $token" -d "{\"content\":\"$(printf 'x%.0s' $(seq 200))\"}" \
		"http://127.0.0.1:$port/v1/items"
	echo "$port $(awk 'tolower($1)=="location:" {gsub("\r",""); print $2}' "$hdr")"
}

# load URL: prints the achieved requests/s of one run
load() {
	taskset -c "$CLIENT_CPU" "$BIN" bench --rate max -c "$CONNS" --duration "${SECS}s" --quiet \
		--errors-4xx --json "$work/load.json" "$1" >/dev/null
	python3 - "$work/load.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
if r.get("errors", 0):
    print("bench: errors in the run: %s" % r.get("errors_by_kind"), file=sys.stderr)
    sys.exit(1)
print("%.0f" % r["achieved_rps"])
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

read -r pn itn < <(start none)
read -r pl itl < <(start local)
echo "GET /v1/items/{id}: ladder bench --rate max, $CONNS connections, ${SECS}s x $ROUNDS rounds alternated (servers on cpu $SERVER_CPU, load on cpu $CLIENT_CPU)"
: >"$work/none.rps"
: >"$work/local.rps"
for r in $(seq 1 "$ROUNDS"); do
	n=$(load "http://127.0.0.1:$pn$itn")
	l=$(load "http://127.0.0.1:$pl$itl")
	echo "  round $r: none $n/s, local $l/s"
	echo "$n" >>"$work/none.rps"
	echo "$l" >>"$work/local.rps"
done
mn=$(median <"$work/none.rps")
ml=$(median <"$work/local.rps")
hits=$(curl -fs "http://127.0.0.1:$pl/metrics" |
	awk '/^ladder_cache_hits_total\{level="l1",route="\/v1\/items\/\{id\}"\}/ {print $2}')
echo "median: none $mn/s, local $ml/s (x$(python3 -c "print('%.2f' % ($ml / $mn))")); local hits: $hits"
