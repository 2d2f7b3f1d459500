#!/bin/bash
# bench/cache_cpu.sh A B: the server's CPU time per cached GET, user and
# system apart, for two ladder binaries side by side (before and after a
# change) and nginx returning the same bytes from memory (docs/cache.md,
# "Figures"). Each server runs `--threads 1 --cache local` (nginx: one
# worker) pinned to core 1, the load (`ladder bench`, binary A, 64
# connections, SECS s) to core 0; first at a fixed RATE (60000/s: the
# robust figure on a machine with other load, every server doing the same
# work per second), then at --rate max; ROUNDS alternated rounds, medians.
# utime and stime come from /proc/PID/stat (clock ticks: the split is
# sampled, so take several rounds).
#
# Usage: bench/cache_cpu.sh build/rel/ladder.before build/rel/ladder
#        (ROUNDS=3 SECS=5 RATE=60000)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${ROUNDS:-3}; SECS=${SECS:-5}; CONNS=64; RATE=${RATE:-60000}
BIN=$A
. bench/lib.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-cache-cpu.XXXXXX"); pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
startl() { local name=$1 bin=$2; PORT=$(bench_free_port); mkdir -p "$work/$name"
 taskset -c 1 "$bin" serve --listen "127.0.0.1:$PORT" --data "$work/$name" --threads 1 --cache local \
  --log-requests off --argon2-ops 1 --argon2-mem 64KiB >"$work/$name.log" 2>&1 & pids+=($!); SPID=$!
 bench_wait_http "http://127.0.0.1:$PORT/readyz"
 python3 - "$PORT" >"$work/$name.path" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
def call(m, p, b, h={}):
    c.request(m, p, json.dumps(b), {"Content-Type": "application/json", **h}); r = c.getresponse(); d = r.read()
    assert r.status < 300, (r.status, d); return r, d
cred = {"handle": "bench_user", "password": "bench-password"}
call("POST", "/v1/users", cred)
tok = json.loads(call("POST", "/v1/sessions", cred)[1])["token"]
r, _ = call("POST", "/v1/items", {"content": "x" * 200}, {"Authorization": "Bearer " + tok}); print(r.getheader("Location"))
PY
}
startl a "$A"; pa=$PORT; sa=$SPID; it=$(cat "$work/a.path")
startl b "$B"; pb=$PORT; sb=$SPID; itb=$(cat "$work/b.path")
curl -fs -D "$work/h" -o "$work/body" "http://127.0.0.1:$pa$it"
etag=$(awk 'tolower($1)=="etag:" {sub(/\r$/, ""); sub(/^[^:]*: */, ""); print}' "$work/h")
curl -fs -o "$work/bodyb" "http://127.0.0.1:$pb$itb"; wc -c "$work/body" "$work/bodyb"
bench_nginx memory 1 nginx "$it" "$work/body" "$etag"; pg=$BENCH_NGINX_PORT; sg=$BENCH_NGINX_WORKER
hz=$(getconf CLK_TCK)
one() { # PID URL RATEARG -> "rps user_us sys_us"
 local pid=$1 url=$2 rate=$3 u0 s0 u1 s1
 read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
 taskset -c 0 "$A" bench --rate "$rate" -c $CONNS --duration ${SECS}s --quiet --errors-4xx --json "$work/l.json" "$url" >/dev/null
 read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
 python3 - "$work/l.json" $((u1-u0)) $((s1-s0)) $hz <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]; u, s, hz = (int(x) for x in sys.argv[2:5]); n = r["requests"]
assert not r.get("errors"), r.get("errors_by_kind")
print(f'{r["achieved_rps"]:.0f} {u*1e6/hz/n:.2f} {s*1e6/hz/n:.2f} {(u+s)*1e6/hz/n:.2f}')
PY
}
for mode in $RATE max; do
 for r in $(seq 1 $ROUNDS); do
  for s in a b g; do
   case $s in a) pid=$sa; url="http://127.0.0.1:$pa$it";; b) pid=$sb; url="http://127.0.0.1:$pb$itb";; g) pid=$sg; url="http://127.0.0.1:$pg$it";; esac
   out=$(one $pid "$url" $mode); echo "$mode $s round $r: rps/s user sys total us/req = $out"; echo "$out" >>"$work/$mode.$s"
  done
 done
 for s in a b g; do
  case $s in a) name="A ($A)";; b) name="B ($B)";; g) name=nginx;; esac
  printf '%s %s median: %s/s, user %s + sys %s = %s us/req\n' $mode "$name" \
   "$(cut -d' ' -f1 $work/$mode.$s | bench_median)" "$(cut -d' ' -f2 $work/$mode.$s | bench_median)" \
   "$(cut -d' ' -f3 $work/$mode.$s | bench_median)" "$(cut -d' ' -f4 $work/$mode.$s | bench_median)"
 done
done
