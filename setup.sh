#!/bin/sh
# setup.sh - from a fresh clone on Debian 12 (as root) to a running server
# or a tested build.
#
#   ./setup.sh run [--port N]   install what is missing, build, and serve
#                               127.0.0.1:8080 through nginx in the foreground
#   ./setup.sh test             install what is missing, build with
#                               AddressSanitizer and UBSan, run every test
#
# Builds go to _build/ (run) and _build-test/ (test); nothing outside the
# clone is written except the Debian packages it installs.
set -eu

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"

PACKAGES="build-essential autoconf automake libtool pkg-config \
libfcgi-dev libjansson-dev libcurl4-openssl-dev libssl-dev libdb5.3-dev \
nginx-light apache2 libapache2-mod-fcgid python3 clang valgrind wrk curl \
ca-certificates libpcre2-dev json-schema-test-suite libsystemd-dev \
python3-prometheus-client debhelper dpkg-dev fakeroot adduser \
chromium chromium-driver python3-selenium libhiredis-dev redis-server"

install_packages() {
	missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing="$missing $p"
	done
	# nginx (any flavour) already there is fine.
	case "$missing" in
	*nginx-light*)
		if command -v nginx >/dev/null 2>&1 ||
			[ -x /usr/sbin/nginx ]; then
			missing=$(echo "$missing" | sed 's/ nginx-light//')
		fi ;;
	esac
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup.sh: missing packages:$missing (run as root)" >&2
		exit 1
	fi
	echo "setup.sh: installing$missing"
	# Installing nginx and apache2 must not start them on port 80.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy=yes
	fi
	export DEBIAN_FRONTEND=noninteractive
	rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends \
		$missing; } || rc=$?
	[ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d
	[ "$rc" -eq 0 ] || { echo "setup.sh: apt-get failed" >&2; exit 1; }
}

build() {
	dir=$1
	shift
	[ -x configure ] || ./autogen.sh
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ]; then
		(cd "$dir" && "$top/configure" "$@")
	fi
	make -C "$dir" -j"$(nproc)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
	install_packages
	build _build
	exec "$top/nginx/run.sh" --builddir "$top/_build" "$@"
	;;
test)
	install_packages
	# 1. Every test, built with AddressSanitizer and UBSan.
	build _build-test --enable-sanitizers --enable-werror
	rc=0
	rm -f _build-test/test-suite.log _build-vg/test-suite.log
	make -C _build-test -j"$(nproc)" check "$@" || rc=$?
	# 2. Valgrind cannot run sanitized binaries: a plain build runs the C
	# unit tests and the server (test-valgrind.py) under memcheck.
	build _build-vg --enable-werror
	vg="valgrind --quiet --error-exitcode=99 --leak-check=full"
	vg="$vg --errors-for-leak-kinds=definite"
	vg="$vg --suppressions=$top/tests/valgrind.supp"
	# BM_TEST_ATOMIC_PAIRS=0: the kill-in-a-20,000-pair-delete check takes
	# minutes under valgrind; the sanitizer pass above runs it.
	BM_TEST_ATOMIC_PAIRS=0 \
	make -C _build-vg -j"$(nproc)" check LOG_COMPILER="$vg" TESTS="\
		tests/unit/test-proto tests/unit/test-conf tests/unit/test-settings \
		tests/unit/test-mapping \
		tests/unit/test-mapping-data tests/unit/test-schema \
		tests/unit/test-schema-suite tests/store/test-store \
		tests/store/test-secrets tests/store/test-jobs \
		tests/store/test-services tests/store/test-redis \
		tests/integration/test-valgrind.py" || rc=$?
	logs=""
	for l in _build-test/test-suite.log _build-vg/test-suite.log; do
		[ -f "$l" ] && logs="$logs $l"
	done
	if [ -n "$logs" ]; then
		# shellcheck disable=SC2086
		awk '/^# (PASS|XFAIL):/ { p += $3 }
		     /^# SKIP:/ { s += $3 }
		     /^# (FAIL|XPASS|ERROR):/ { f += $3 }
		     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' \
			$logs
	else
		echo "0 passed, 1 failed"
	fi
	exit "$rc"
	;;
*)
	echo "usage: ./setup.sh run [--port N] | ./setup.sh test" >&2
	exit 2
	;;
esac
