#!/bin/bash
# Runs every libFuzzer target for SECONDS each (default 20) on its seed corpus
# (tests/fuzz/corpus/<target>/, read-only: new inputs go to a temp dir) and
# its dictionary (tests/fuzz/<target>.dict) when there is one. Expects
# `make BUILD=fuzz fuzz-build` done. Ends with "N passed, N failed" where each
# target is one test. A crash leaves its input in tests/fuzz/ (crash-*).
# FUZZ_SEED fixes libFuzzer's seed (make test uses 1, so a CI run explores
# what the last run explored and a failure reproduces); empty = random.
set -u
cd "$(dirname "$0")/../.."
secs="${1:-20}"
# FUZZ_JOBS targets run at once (default: one per core), each in its own
# process with its own temp dir; their logs are printed in target order.
jobs="${FUZZ_JOBS:-$(nproc)}"
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# run_one BIN: one target; leaves RESULTS/NAME.log and RESULTS/NAME.ok (pass)
# or RESULTS/NAME.fail.
run_one() {
	local bin="$1" name seed work
	name=$(basename "$bin")
	seed="tests/fuzz/corpus/$name"
	work=$(mktemp -d)
	local args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		${FUZZ_SEED:+-seed="$FUZZ_SEED"}
		-artifact_prefix=tests/fuzz/ "$work")
	[ -d "$seed" ] && args+=("$seed")
	[ -f "tests/fuzz/$name.dict" ] && args=(-dict="tests/fuzz/$name.dict" "${args[@]}")
	if "$bin" "${args[@]}" >"$results/$name.log" 2>&1; then
		touch "$results/$name.ok"
	else
		touch "$results/$name.fail"
	fi
	rm -rf "$work"
}

bins=()
for bin in build/fuzz/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	bins+=("$bin")
	echo "fuzz: $(basename "$bin") for ${secs}s"
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	run_one "$bin" &
done
wait

passed=0
failed=0
for bin in "${bins[@]}"; do
	name=$(basename "$bin")
	if [ -e "$results/$name.ok" ]; then
		passed=$((passed + 1))
		grep -E 'stat::number_of_executed_units' "$results/$name.log" | sed "s/^/  $name /"
	else
		failed=$((failed + 1))
		tail -n 60 "$results/$name.log"
		echo "FAIL fuzz $name"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
