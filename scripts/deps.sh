#!/bin/sh
# Installs the Debian packages ladder needs to build, test and benchmark.
# Idempotent: only what is missing is installed, and `apt-get update` runs
# only when something is. Usage: scripts/deps.sh [build|test|bench]
set -eu

profile="${1:-test}"

build_pkgs="gcc make pkg-config libuv1-dev libsqlite3-dev libsodium-dev
libjansson-dev zlib1g-dev libinih-dev libvips-dev libcurl4-openssl-dev
libpq-dev libhiredis-dev"
# clang, clang-format and the sanitizer/libFuzzer runtimes of one version
# (Debian 12's): the Makefile calls clang-14 and clang-format-14 by name.
test_pkgs="clang-14 clang-format-14 libclang-rt-14-dev python3 python3-pytest prometheus sqlite3 chromium libvips-tools nodejs
postgresql-15 redis-server patroni etcd-server etcd-client haproxy"
bench_pkgs="wrk nginx-light util-linux curl bc"

case "$profile" in
build) want="$build_pkgs" ;;
test) want="$build_pkgs $test_pkgs" ;;
bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
*)
	echo "deps.sh: unknown profile '$profile' (want build, test or bench)" >&2
	exit 2
	;;
esac

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "deps.sh: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The S3 protocol server the blob tests run against (npm, not Debian).
if [ "$profile" != build ] && ! command -v s3rver >/dev/null 2>&1; then
	echo "deps.sh: installing s3rver (npm)" >&2
	# Debian's nodejs comes without npm; NodeSource's has it built in.
	command -v npm >/dev/null 2>&1 ||
		$SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
	$SUDO npm install -g --no-audit --no-fund s3rver@3.7.1 >/dev/null
fi
