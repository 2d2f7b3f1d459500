#!/bin/bash
# Runs the test suites and ends with one line "N passed, N failed".
#
#   tests/run.sh            everything: unit + integration on the release build,
#                           integration again with the sqlite-deferred store
#                           (every store op completes on a later loop
#                           iteration), again with the postgres store,
#                           unit + integration on the ASan+UBSan
#                           build, then a bounded libFuzzer run of every target
#   tests/run.sh unit       unit tests of the release build only
#   tests/run.sh integration
#   tests/run.sh integration-deferred
#   tests/run.sh integration-cache   integration with --cache local
#   tests/run.sh integration-redis   integration with --cache redis
#   tests/run.sh integration-postgres   the suite with every server on the
#                           postgres store (a PostgreSQL 15 the tests start)
#   tests/run.sh integration-postgres-cache   the API files on postgres with
#                           --cache local, then with --cache redis
#   tests/run.sh prometheus promtool on deploy/prometheus: the config and the
#                           alert rules check, the alerts' unit tests pass
#
# The deferred-store and cache variants run the API files (api_files below),
# not the whole suite: the rest does not change with the store or cache, and
# running it six times kept `make test` over its 30 minutes.
#
# FUZZ_SECONDS (default 20) bounds each fuzz target in the full run.
set -u
cd "$(dirname "$0")/.."

what="${1:-all}"
passed=0
failed=0
failures=()

# add_counts NAME OUTPUT_FILE RC [SECONDS]: reads "N passed" / "N failed" from a runner's
# summary (ours or pytest's) and adds them; a runner that exits non-zero with
# no failure counted (a crash, a sanitizer report) counts as one failure.
add_counts() {
	local name="$1" out="$2" rc="$3" secs="${4:-}" p f e line
	line=$(grep -E '([0-9]+ passed|[0-9]+ failed|[0-9]+ errors?)' "$out" | tail -n 1)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | head -n1 | cut -d' ' -f1)
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | head -n1 | cut -d' ' -f1)
	e=$(grep -oE '[0-9]+ errors?' <<<"$line" | head -n1 | cut -d' ' -f1)
	p=${p:-0}
	f=$(( ${f:-0} + ${e:-0} ))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failures+=("$name")
	fi
	printf '%-40s %s passed, %s failed%s\n' "$name" "$p" "$f" "${secs:+ ($secs s)}"
}

run_unit() {
	local build="$1" t out rc
	for t in build/"$build"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		out=$(mktemp)
		timeout 600 "$t" >"$out" 2>&1
		rc=$?
		[ "$rc" -ne 0 ] && cat "$out"
		add_counts "unit/$build/$(basename "$t")" "$out" "$rc"
		rm -f "$out"
	done
}

# The API suites: every file whose servers answer the API through the store
# and the cache. The store and cache variants run these alone; the files left
# out test the CLI, the bench and the planner, or start their own store or
# cache (their behaviour does not change with LADDER_STORE/LADDER_CACHE), and
# run once in the full suite.
api_files="test_serve_items.py test_serve_users.py test_serve_auth.py
test_serve_pagination.py test_serve_idempotency.py test_serve_conformance.py
test_serve_regressions.py test_serve_durability.py test_serve_store.py
test_serve_cache.py test_serve_http.py test_serve_stats.py
test_serve_ratelimit.py test_serve_shutdown.py"
# The store variants also run what touches the store beyond the API:
# photos and deadlines.
store_files="$api_files test_photos.py test_serve_timeouts.py"

# run_integration BUILD [STORE [CACHE [FILES]]]: the integration suite (or
# the named files of it) against build/BUILD, every server on store driver
# STORE (default sqlite) with response cache CACHE (default none).
run_integration() {
	local build="$1" store="${2:-sqlite}" cache="${3:-none}" files="${4:-}"
	local name="integration/$1" out rc paths=(tests/integration) f t0=$SECONDS
	[ "$store" != sqlite ] && name="$name/$store"
	[ "$cache" != none ] && name="$name/cache-$cache"
	if [ -n "$files" ]; then
		name="$name (API files)"
		paths=()
		for f in $files; do paths+=("tests/integration/$f"); done
	fi
	out=$(mktemp)
	LADDER_BIN="$PWD/build/$build/ladder" LADDER_BUILD="$build" LADDER_STORE="$store" \
		LADDER_CACHE="$cache" \
		timeout 1200 /usr/bin/python3 -m pytest -q -p no:cacheprovider "${paths[@]}" \
		>"$out" 2>&1
	rc=$?
	# pytest exits 5 when it collected nothing: that is a failure here.
	tail -n 40 "$out"
	[ "$rc" -ne 0 ] && grep -E '^(FAILED|ERROR)' "$out"
	add_counts "$name" "$out" "$rc" $((SECONDS - t0))
	rm -f "$out"
}

# run_prometheus: each promtool step counts as one test.
run_prometheus() {
	local out p=0 f=0 step
	out=$(mktemp)
	for step in "check config prometheus.yml" "check rules alerts.yml" "test rules alerts_test.yml"; do
		# shellcheck disable=SC2086 # the step is words on purpose
		if (cd deploy/prometheus && timeout 120 promtool $step) >>"$out" 2>&1; then
			p=$((p + 1))
		else
			f=$((f + 1))
		fi
	done
	[ "$f" -ne 0 ] && cat "$out"
	echo "$p passed, $f failed" >>"$out"
	add_counts "prometheus (promtool)" "$out" 0
	rm -f "$out"
}

run_fuzz() {
	local secs="${FUZZ_SECONDS:-20}" out rc t0=$SECONDS
	out=$(mktemp)
	FUZZ_SEED="${FUZZ_SEED-1}" tests/fuzz/run.sh "$secs" >"$out" 2>&1
	rc=$?
	tail -n 30 "$out"
	add_counts "fuzz (${secs}s per target)" "$out" "$rc" $((SECONDS - t0))
	rm -f "$out"
}

case "$what" in
unit) run_unit rel ;;
integration) run_integration rel ;;
integration-deferred) run_integration rel sqlite-deferred none "$store_files" ;;
integration-cache) run_integration rel sqlite local "$api_files" ;;
integration-redis) run_integration rel sqlite redis "$api_files" ;;
integration-postgres) run_integration rel postgres ;;
integration-postgres-cache)
	run_integration rel postgres local "$api_files"
	run_integration rel postgres redis "$api_files"
	;;
prometheus) run_prometheus ;;
all)
	run_unit rel
	run_prometheus
	run_integration rel
	# Release build only: the "completes later" path, without doubling the
	# slow sanitizer run.
	run_integration rel sqlite-deferred none "$store_files"
	# Every API test again with the in-process cache in front of the store,
	# and with L1 in front of Redis (the suite's own redis-server).
	run_integration rel sqlite local "$api_files"
	run_integration rel sqlite redis "$api_files"
	# The whole suite on PostgreSQL, then its API files with each cache.
	run_integration rel postgres
	run_integration rel postgres local "$api_files"
	run_integration rel postgres redis "$api_files"
	run_unit asan
	run_integration asan
	run_fuzz
	;;
*)
	echo "run.sh: unknown suite '$what' (want unit, integration, integration-deferred, integration-cache, integration-redis, integration-postgres, integration-postgres-cache, prometheus or all)" >&2
	exit 2
	;;
esac

if [ "${#failures[@]}" -ne 0 ]; then
	echo "failing suites: ${failures[*]}"
fi
echo "all suites: ${SECONDS} s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
