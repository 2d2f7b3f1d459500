#!/bin/bash
# The photo half of `make bench` (issue: photos, "How fast").
#
#  1. Thumbnails per second per worker core: `ladder worker --concurrency 1`
#     pinned to one core makes the three versions (128, 512, 1600 px on the
#     long side) of PHOTOS originals, against Debian's `vipsthumbnail`, a
#     process per image and version, making the same three versions of the
#     same images on the same core (VIPS_CONCURRENCY=1 for both). The
#     worker's time runs from its start to the last photo `ready`, start-up
#     and queue included.
#  2. The queue's claim + complete throughput on SQLite (jobs/s), durable
#     (fsync per transaction) and not; then on PostgreSQL (bench/queue_pg.sh).
#
# Usage: bench/thumbs.sh   (PHOTOS=30 WIDTH=3000 HEIGHT=2000 ROUNDS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

PHOTOS=${PHOTOS:-30}
WIDTH=${WIDTH:-3000}
HEIGHT=${HEIGHT:-2000}
ROUNDS=${ROUNDS:-3}
BIN=${LADDER_BIN:-build/rel/ladder}
CPU=${SERVER_CPU:-1}
QUEUE_JOBS=${QUEUE_JOBS:-20000}

work=$(mktemp -d "${TMPDIR:-/tmp}/ladder-thumbs.XXXXXX")
# On a real disk: the durable queue figure needs a real fsync.
data="$PWD/build/thumbs-data.$$"
wpid=""
cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work" "$data"
}
trap cleanup EXIT

command -v vipsthumbnail >/dev/null || {
	echo "bench/thumbs.sh: vipsthumbnail missing (apt-get install libvips-tools)" >&2
	exit 1
}

# Originals: a smooth gradient with noise on top, so the decoder and the
# encoders have photo-like work (a flat image would flatter both sides).
mkdir -p "$work/img"
vips gaussnoise "$work/noise.v" "$WIDTH" "$HEIGHT" --sigma 40 --mean 128
vips xyz "$work/xy.v" "$WIDTH" "$HEIGHT"
vips bandjoin_const "$work/xy.v" "$work/xy3.v" 64
vips add "$work/xy3.v" "$work/noise.v" "$work/sum.v"
vips cast "$work/sum.v" "$work/base.jpg[Q=90]" uchar
for i in $(seq 1 "$PHOTOS"); do cp "$work/base.jpg" "$work/img/$i.jpg"; done

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ladder_round: a fresh data dir with PHOTOS photos queued, one worker on
# one core; prints the seconds to the last `ready`.
ladder_round() {
	rm -rf "$data"
	"$BIN" migrate --data "$data" >/dev/null
	python3 - "$data" "$work/img" "$PHOTOS" <<'PY'
import os, sqlite3, sys, time
data, img, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(os.path.join(data, "ladder.db"), isolation_level=None)
db.execute("INSERT INTO users VALUES (1, 'b', 'b', 'x', 1, 1, 1)")
now = int(time.time() * 1000)
db.execute("BEGIN")
for i in range(1, n + 1):
    pid = 1000 + i
    d = os.path.join(data, "blobs", "photos", str(pid))
    os.makedirs(d)
    with open(os.path.join(img, "%d.jpg" % i), "rb") as f, open(os.path.join(d, "original"), "wb") as o:
        o.write(f.read())
    db.execute("INSERT INTO photos VALUES (?, 1, 'uploading', 'image/jpeg', 0, 0, 0, '', ?, ?, 1)", (pid, now, now))
    db.execute("UPDATE photos SET status = 'processing' WHERE id = ?", (pid,))
db.execute("COMMIT")
PY
	local port t0 t1
	port=$(free_port)
	t0=$(date +%s.%N)
	VIPS_CONCURRENCY=1 taskset -c "$CPU" "$BIN" worker --data "$data" --listen "127.0.0.1:$port" \
		--concurrency 1 --poll 5ms --sync off >"$work/worker.log" 2>&1 &
	wpid=$!
	python3 - "$data" "$PHOTOS" <<'PY'
import os, sqlite3, sys, time
db = sqlite3.connect(os.path.join(sys.argv[1], "ladder.db"), timeout=30)
deadline = time.time() + 600
while time.time() < deadline:
    ready = db.execute("SELECT count(*) FROM photos WHERE status = 'ready'").fetchone()[0]
    bad = db.execute("SELECT count(*) FROM photos WHERE status IN ('partial', 'failed')").fetchone()[0]
    if bad:
        sys.exit("bench: %d photos did not come out ready" % bad)
    if ready == int(sys.argv[2]):
        sys.exit(0)
    time.sleep(0.002)
sys.exit("bench: the worker did not finish")
PY
	t1=$(date +%s.%N)
	kill "$wpid"
	wait "$wpid" || true
	wpid=""
	echo "$t1 - $t0" | bc -l
}

vips_round() {
	local t0 t1
	rm -rf "$work/out"
	mkdir -p "$work/out"
	t0=$(date +%s.%N)
	VIPS_CONCURRENCY=1 taskset -c "$CPU" sh -c '
		out=$1; shift
		for f in "$@"; do
			b=$(basename "$f" .jpg)
			for s in 128 512 1600; do
				vipsthumbnail "$f" -s "${s}x${s}>" -o "$out/${b}_$s.jpg[Q=80,strip]"
			done
		done' sh "$work/out" "$work"/img/*.jpg
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "originals: $PHOTOS JPEGs of ${WIDTH}x${HEIGHT}, 3 versions each, one core (cpu $CPU)"
lt=()
vt=()
for r in $(seq 1 "$ROUNDS"); do
	lt+=("$(ladder_round)")
	vt+=("$(vips_round)")
done
lsec=$(printf '%s\n' "${lt[@]}" | median)
vsec=$(printf '%s\n' "${vt[@]}" | median)
lrate=$(echo "$PHOTOS * 3 / $lsec" | bc -l)
vrate=$(echo "$PHOTOS * 3 / $vsec" | bc -l)
printf 'ladder worker:  %.1f thumbnails/s per core (median of %d: %.2f s)\n' "$lrate" "$ROUNDS" "$lsec"
printf 'vipsthumbnail:  %.1f thumbnails/s per core (median of %d: %.2f s)\n' "$vrate" "$ROUNDS" "$vsec"
printf 'ratio:          %.2fx vipsthumbnail\n' "$(echo "$lrate / $vrate" | bc -l)"

echo
echo "== job queue on SQLite: claim + complete, one connection =="
qb="build/rel/bench/queue_bench"
mkdir -p "$(dirname "$qb")"
# shellcheck disable=SC2046
cc -std=c17 -O2 -D_GNU_SOURCE -Isrc -o "$qb" bench/queue_bench.c build/rel/libladder.a \
	$(pkg-config --cflags --libs libuv sqlite3 libsodium jansson zlib inih vips libcurl libpq) \
	-lm -pthread
for sync in 1 0; do
	rm -rf "$data"
	mkdir -p "$data"
	read -r n rate < <(taskset -c "$CPU" "$qb" "$data" "$QUEUE_JOBS" "$sync")
	printf '%s: %d jobs, %.0f jobs/s\n' "$([ "$sync" = 1 ] && echo "durable (fsync)" || echo "sync off      ")" "$n" "$rate"
done

echo
echo "== job queue on PostgreSQL: claim + complete =="
bench/queue_pg.sh "$qb"
