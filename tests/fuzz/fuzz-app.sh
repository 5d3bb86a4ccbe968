#!/bin/sh
# tests/fuzz/fuzz-app.sh - the server's request parsers under libFuzzer
# (clang, ASan, UBSan): the request head checks and the bearer token
# (fuzz-request-head), the envelope of SPEC §2 (fuzz-envelope), the
# Standard Webhooks headers and signature (fuzz-webhook-sig).  Each is run
# briefly from its seed corpus in tests/fuzz/corpus/<target>.  Uses the
# targets `configure --enable-fuzzers` built in tests/fuzz/ when they are
# there; otherwise builds them in a temporary directory.  Prints TAP; SKIP
# without clang or libFuzzer.  Longer runs: see tests/fuzz/README.
: "${BM_TEST_BUILDDIR:=.}"
: "${BM_TEST_SRCDIR:=.}"
: "${CLANG:=clang}"
: "${BM_FUZZ_RUNS:=20000}"
: "${BM_FUZZ_SECONDS:=10}"
src=$BM_TEST_SRCDIR
targets="request-head envelope webhook-sig"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bm-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

built=1
for t in $targets; do
	[ -x "$BM_TEST_BUILDDIR/tests/fuzz/fuzz-$t" ] || built=0
done
if [ $built = 0 ]; then
	if ! command -v "$CLANG" >/dev/null 2>&1; then
		echo "1..0 # SKIP clang not found"
		exit 0
	fi
	if ! BM_FUZZ_OUT="$tmp" BM_TEST_SRCDIR="$src" \
	    BM_TEST_BUILDDIR="$BM_TEST_BUILDDIR" CLANG="$CLANG" \
	    sh "$src/tests/fuzz/build-app.sh" probe >"$tmp/probe.log" 2>&1; then
		echo "1..0 # SKIP $CLANG cannot build libFuzzer targets"
		exit 0
	fi
fi

echo "1..6"
n=0
failed=0
for t in $targets; do
	n=$((n + 1))
	bin=$BM_TEST_BUILDDIR/tests/fuzz/fuzz-$t
	if [ $built = 1 ]; then
		echo "ok $n - fuzz-$t built by configure --enable-fuzzers"
	elif BM_FUZZ_OUT="$tmp" BM_TEST_SRCDIR="$src" \
	    BM_TEST_BUILDDIR="$BM_TEST_BUILDDIR" CLANG="$CLANG" \
	    sh "$src/tests/fuzz/build-app.sh" "$t" >"$tmp/cc-$t.log" 2>&1; then
		bin=$tmp/fuzz-$t
		echo "ok $n - build fuzz-$t"
	else
		echo "not ok $n - build fuzz-$t"
		sed 's/^/# /' "$tmp/cc-$t.log"
		failed=1
		n=$((n + 1))
		echo "not ok $n - run fuzz-$t # not built"
		continue
	fi
	n=$((n + 1))
	# The corpus in the tree is read only: new inputs go to a copy.
	mkdir -p "$tmp/corpus-$t" "$BM_TEST_BUILDDIR/tests/fuzz"
	cp "$src/tests/fuzz/corpus/$t"/* "$tmp/corpus-$t"/
	if "$bin" -runs="$BM_FUZZ_RUNS" -max_total_time="$BM_FUZZ_SECONDS" \
	    -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	    -artifact_prefix="$BM_TEST_BUILDDIR/tests/fuzz/crash-$t-" \
	    "$tmp/corpus-$t" >"$tmp/run-$t.log" 2>&1; then
		echo "ok $n - run fuzz-$t ($(grep -o 'Done [0-9]* runs' "$tmp/run-$t.log"))"
	else
		echo "not ok $n - run fuzz-$t"
		tail -n 40 "$tmp/run-$t.log" | sed 's/^/# /'
		failed=1
	fi
done
exit $failed
