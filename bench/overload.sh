#!/bin/bash
# Overload: a plateau, not a collapse (issue 11). Part of `make bench`.
#
# The server runs pinned to one core (SERVER_CPU) with one loop thread; the
# generator (`ladder bench`) on another (CLIENT_CPU). The route is the
# login, POST /v1/sessions: its argon2id check runs on the thread pool
# (--argon2-mem 1MiB), so the expensive part of a request is off the loop
# and a 503 costs a small fraction of a served request. For each
# configuration (admission on, the default; then --admission off), in
# ROUNDS alternating rounds:
#
#  1. capacity C: closed loop, `ladder bench --rate max -c CONNS`, 201s per
#     second over SECS;
#  2. the curve: open loop at 0.5x, 1x, 1.5x, 2x C (SECS each; the 0.5x run
#     gives the unloaded p99), then 2x C for OVER_SECS (the overload), then
#     0.5x C for SECS right after it (recovery: the first seconds' p99 in
#     its timeline);
#  3. one HTML report of the whole curve (`--stages`: the same levels in one
#     run, then back to 0.5x): latency per second, target vs achieved vs good
#     (answers without an error) per second.
#
# Goodput is 201 answers per second; the p99 of admitted requests is the
# corrected latency of the 2xx answers only (`ok_latency_us` in the JSON).
# The medians over the rounds are printed as a table; the JSON and HTML
# files stay in OUT (default build/bench-overload).
#
# Usage: bench/overload.sh   (ROUNDS=3 SECS=10 OVER_SECS=30 CONNS=16 MAXCONN=2000)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
OVER_SECS=${OVER_SECS:-30}
CONNS=${CONNS:-16}
MAXCONN=${MAXCONN:-2000}
BIN=${LADDER_BIN:-build/rel/ladder}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
OUT=${OUT:-build/bench-overload}

mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-overload.XXXXXX")
data="$PWD/build/overload-data.$$"
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work" "$data"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_server() { # start_server EXTRA_FLAGS...
	port=$(free_port)
	rm -rf "$data"
	mkdir -p "$data"
	taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$port" --data "$data" --threads 1 \
		--cache none --log-requests off --argon2-ops 1 --argon2-mem 1MiB "$@" \
		>"$work/serve.log" 2>&1 &
	spid=$!
	for _ in $(seq 1 100); do
		curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
		sleep 0.1
	done
	printf '{"handle":"bench_user","password":"bench-password"}' >"$work/login.json"
	curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' \
		--data-binary @"$work/login.json" "http://127.0.0.1:$port/v1/users"
}

stop_server() {
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

load() { # load JSON ARGS...: one ladder bench run against the login
	local json=$1
	shift
	taskset -c "$CLIENT_CPU" "$BIN" bench -q -X POST -H 'Content-Type: application/json' \
		--body-file "$work/login.json" -c "$CONNS" --max-connections "$MAXCONN" --timeout 10s \
		--json "$json" "$@" "http://127.0.0.1:$port/v1/sessions" >/dev/null || true
}

good() { # good JSON: 201s per second of the measured window
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]
print("%.0f" % (r["status"].get("201", 0) / r["duration_s"]))' "$1"
}

for round in $(seq 1 "$ROUNDS"); do
	for mode in on off; do
		tag="$mode.$round"
		start_server --admission "$mode"
		load "$OUT/cap.$tag.json" --rate max --duration "${SECS}s"
		cap=$(good "$OUT/cap.$tag.json")
		echo "round $round, admission $mode: capacity $cap/s" >&2
		for x in 0.5 1 1.5 2; do
			rate=$(python3 -c "print(max(1, round($cap * $x)))")
			load "$OUT/x$x.$tag.json" --rate "$rate" --duration "${SECS}s"
		done
		rate2=$(python3 -c "print(max(1, round($cap * 2)))")
		rateh=$(python3 -c "print(max(1, round($cap * 0.5)))")
		load "$OUT/over.$tag.json" --rate "$rate2" --duration "${OVER_SECS}s"
		load "$OUT/after.$tag.json" --rate "$rateh" --duration "${SECS}s"
		if [ "$round" = 1 ]; then
			r1=$(python3 -c "print(max(1, round($cap)))")
			r15=$(python3 -c "print(max(1, round($cap * 1.5)))")
			taskset -c "$CLIENT_CPU" "$BIN" bench -q -X POST \
				-H 'Content-Type: application/json' --body-file "$work/login.json" \
				-c "$CONNS" --max-connections "$MAXCONN" --timeout 10s \
				--start-rate "$rateh" \
				--stages "${SECS}s:$rateh,1s:$r1,${SECS}s:$r1,1s:$r15,${SECS}s:$r15,1s:$rate2,${OVER_SECS}s:$rate2,1s:$rateh,${SECS}s:$rateh" \
				--json "$OUT/curve.$mode.json" --html "$OUT/curve.$mode.html" \
				"http://127.0.0.1:$port/v1/sessions" >/dev/null || true
		fi
		stop_server
	done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def res(name):
    return json.load(open("%s/%s" % (out, name)))["results"]

def good(r):
    return r["status"].get("201", 0) / r["duration_s"]

def p99_ok(r):
    return r["ok_latency_us"]["p99"] / 1000.0

def seconds(name):
    return [p["p99_us"] / 1000.0 for p in json.load(open("%s/%s" % (out, name)))["timeline"]]

def recovery(name, unloaded):
    """The first second of the run after the overload whose p99 is within
    2x the unloaded p99. A single second's p99 is noisy: the unloaded run's
    own seconds pass over that bound too (over() counts them), so "stays
    within it" would measure the noise, not the recovery."""
    for i, v in enumerate(seconds(name)):
        if v <= 2 * unloaded:
            return i + 1
    return float("nan")

def over(name, unloaded):
    """How many seconds of a run have a p99 over 2x the unloaded p99."""
    return sum(1 for v in seconds(name) if v > 2 * unloaded)

med = statistics.median
for mode in ("on", "off"):
    tags = ["%s.%d" % (mode, k) for k in range(1, rounds + 1)]
    cap = med(good(res("cap.%s.json" % t)) for t in tags)
    unl = med(p99_ok(res("x0.5.%s.json" % t)) for t in tags)
    print("admission %s: capacity %.0f/s (closed loop), unloaded p99 %.2f ms (0.5x)" % (mode, cap, unl))
    print("  %-8s %10s %10s %9s %12s" % ("offered", "offered/s", "good/s", "good/cap", "p99 2xx ms"))
    for x in ("0.5", "1", "1.5", "2"):
        rs = [res("x%s.%s.json" % (x, t)) for t in tags]
        print("  %-8s %10.0f %10.0f %8.0f%% %12.2f" % (x + "x", med(r["target_rps"] for r in rs),
              med(good(r) for r in rs), 100 * med(good(r) for r in rs) / cap,
              med(p99_ok(r) for r in rs)))
    rs = [res("over.%s.json" % t) for t in tags]
    g, p = med(good(r) for r in rs), med(p99_ok(r) for r in rs)
    rec = med(recovery("after.%s.json" % t, unl) for t in tags)
    late = med(over("after.%s.json" % t, unl) for t in tags)
    base = med(over("x0.5.%s.json" % t, unl) for t in tags)
    print("  2x for the long run: goodput %.0f/s = %.0f%% of capacity (target >= 90%%), "
          "p99 of 2xx %.2f ms = %.1fx unloaded (target <= 2x); back within 2x unloaded p99 "
          "in second %.0f after it ended (seconds over it: %.0f of the %d after it, %.0f of the "
          "unloaded run's)" % (g, 100 * g / cap, p, p / unl if unl else float("nan"), rec, late,
                              len(seconds("after.%s.json" % tags[0])), base))
PY
echo "reports: $OUT/curve.on.html $OUT/curve.off.html (and the JSON of every run)"
