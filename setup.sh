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
	# Installing nginx and apache2 must not start them on port 80 (nor
	# redis-server on 6379: the tests start their own, on free ports).
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

# failures DIR: each failing point of the tests run in DIR, with the
# lines around it in its test's log (a few lines a point).
failures() {
	grep -rl --include='*.trs' -E \
	    '^:global-test-result: (FAIL|ERROR|XPASS)' "$1" 2>/dev/null |
	while read -r trs; do
		log=${trs%.trs}.log
		echo "--- $log"
		awk '/^(FAIL|ERROR|XPASS)/ { for (i = 0; i < n; i++)
		         print "    " keep[(k + i) % 6]; print
		       after = 8; n = 0; next }
		     /^(PASS|SKIP|XFAIL|ok |not ok )/ { n = 0; after = 0; next }
		     after > 0 { print "    " substr($0, 1, 300); after--; next }
		     { keep[(k + n) % 6] = substr($0, 1, 300)
		       if (n < 6) n++; else k = (k + 1) % 6 }' "$log"
	done
}

# check DIR [MAKE ARGS]: make check in DIR; a test that fails is run once
# more (automake's recheck), as the suite kills processes at random
# instants on a machine it shares: what failed the first time is kept in
# the digest, printed at the end whatever the second run says, so a
# flaky test is seen, never hidden.
check() {
	d=$1
	shift
	# Results of an earlier run would be counted with this one's.
	find "$d" -name '*.trs' -exec rm -f {} +
	if make -C "$d" -j"$(nproc)" check "$@"; then
		return 0
	fi
	{
		echo "=== $d: failed on the first run (run again below):"
		failures "$d" | head -n 60
	} >>"$digest"
	make -C "$d" -j"$(nproc)" recheck "$@"
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
	digest=$(mktemp)
	trap 'rm -f "$digest"' EXIT
	# 1. Every test, built with AddressSanitizer and UBSan.
	build _build-test --enable-sanitizers --enable-werror
	rc=0
	check _build-test "$@" || rc=$?
	# 2. Valgrind cannot run sanitized binaries: a plain build runs the C
	# unit tests and the server (test-valgrind.py) under memcheck.
	build _build-vg --enable-werror
	vg="valgrind --quiet --error-exitcode=99 --leak-check=full"
	vg="$vg --errors-for-leak-kinds=definite"
	vg="$vg --suppressions=$top/tests/valgrind.supp"
	# BM_TEST_ATOMIC_PAIRS=0: the kill-in-a-20,000-pair-delete check takes
	# minutes under valgrind; the sanitizer pass above runs it.
	BM_TEST_ATOMIC_PAIRS=0 \
	check _build-vg LOG_COMPILER="$vg" \
		REDIS_LOG_COMPILER="/bin/sh $top/tests/store/with-redis.sh $vg" TESTS="\
		tests/unit/test-proto tests/unit/test-conf tests/unit/test-settings \
		tests/unit/test-mapping \
		tests/unit/test-mapping-data tests/unit/test-schema \
		tests/unit/test-schema-suite tests/store/test-store \
		tests/store/test-secrets tests/store/test-jobs \
		tests/store/test-services tests/store/test-redis \
		tests/store/test-store-redis.redis tests/store/test-jobs-redis.redis \
		tests/store/test-services-redis.redis \
		tests/integration/test-valgrind.py" || rc=$?
	# Last, where a CI log cut to its head and tail still shows them:
	# what failed once and passed when run again, then what failed.
	cat "$digest"
	for d in _build-test _build-vg; do
		[ -d "$d" ] && failures "$d"
	done | head -n 100
	# The totals of both passes, from each test's results (a recheck
	# rewrites test-suite.log with the tests it ran again only).
	find _build-test _build-vg -name '*.trs' 2>/dev/null |
	xargs -r cat | awk '
		/^:test-result: (PASS|XFAIL)/ { p++ }
		/^:test-result: SKIP/ { s++ }
		/^:test-result: (FAIL|XPASS|ERROR)/ { f++ }
		END { if (p + f + s == 0) f = 1
		      printf "%d passed, %d failed, %d skipped\n", p, f, s }'
	exit "$rc"
	;;
*)
	echo "usage: ./setup.sh run [--port N] | ./setup.sh test" >&2
	exit 2
	;;
esac
