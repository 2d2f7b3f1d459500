#!/bin/bash
# The cost of per-request stage timing (docs/operations.md, "Where the time
# goes"): GET /v1/items/{id} at full speed against `ladder serve` with
# --stage-timing on and off, ROUNDS alternating runs of SECONDS each, server
# pinned to core 1 with one loop thread, the load generator to core 0 (as
# bench/server.sh). Prints, per setting, the median requests/s and p50 and
# the median server CPU time per request (all its threads, from
# /proc/PID/task/*/schedstat): on a shared machine the throughput swings with
# whatever else runs, the CPU cost of a request much less.
#
# Usage: bench/stage_overhead.sh      (ROUNDS=3 SECONDS_PER_RUN=10 CONNS=64)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}
CONNS=${CONNS:-64}
BIN=${LADDER_BIN:-build/rel/ladder}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-stages.XXXXXX")
data="$PWD/build/stages-data.$$"
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work" "$data"
}
trap cleanup EXIT

. bench/lib.sh

port=$(bench_free_port)
mkdir -p "$data"

start() { # start on|off
	taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$port" --data "$data" --threads 1 \
		--log-requests off --argon2-ops 1 --argon2-mem 64KiB --stage-timing "$1" \
		>"$work/serve.log" 2>&1 &
	pid=$!
	bench_wait_http "http://127.0.0.1:$port/readyz" || exit 1
}
cpu_ns() { # total run time of every thread of the server
	cat /proc/"$pid"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'
}
stop() {
	kill "$pid"
	wait "$pid" || true
	pid=
}

start on
curl -fs -X POST -H 'Content-Type: application/json' \
	-d '{"handle":"bench_user","password":"bench-password"}' "http://127.0.0.1:$port/v1/users" >/dev/null
token=$(curl -fs -X POST -H 'Content-Type: application/json' \
	-d '{"handle":"bench_user","password":"bench-password"}' "http://127.0.0.1:$port/v1/sessions" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
item=$(curl -fs -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
	-d "{\"content\":\"$(printf 'x%.0s' $(seq 1 200))\"}" "http://127.0.0.1:$port/v1/items" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
stop

for round in $(seq 1 "$ROUNDS"); do
	for mode in on off; do
		start "$mode"
		c0=$(cpu_ns)
		taskset -c "$CLIENT_CPU" "$BIN" bench --rate max -c "$CONNS" --duration "${SECS}s" \
			--quiet --json "$work/load.json" "http://127.0.0.1:$port/v1/items/$item" >/dev/null
		c1=$(cpu_ns)
		python3 - "$work/load.json" "$mode" "$((c1 - c0))" >>"$work/results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
lat = r.get("service_time_us") or r["latency_us"]
if r.get("errors", 0):
    sys.exit("stage_overhead: errors in the run: %r" % r.get("errors_by_kind"))
print(sys.argv[2], round(r["achieved_rps"]), lat["p50"], int(sys.argv[3]) / r["requests"])
PY
		stop
	done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for mode in ("on", "off"):
    rps = [float(r[1]) for r in rows if r[0] == mode]
    p50 = [float(r[2]) for r in rows if r[0] == mode]
    cpu = [float(r[3]) for r in rows if r[0] == mode]
    med[mode] = (statistics.median(rps), statistics.median(cpu))
    print("stage-timing %-3s  runs %s req/s  median %.0f req/s, p50 %.1f us, "
          "server CPU %.2f us/request (runs %s)"
          % (mode, " ".join("%.0f" % x for x in rps), med[mode][0], statistics.median(p50),
             med[mode][1] / 1000, " ".join("%.2f" % (x / 1000) for x in cpu)))
print("stage timing costs %.0f ns of server CPU per request (%.1f%%); throughput %+.1f%%"
      % (med["on"][1] - med["off"][1], 100 * (med["on"][1] / med["off"][1] - 1),
         100 * (med["on"][0] / med["off"][0] - 1)))
PY
