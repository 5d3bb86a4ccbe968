#!/bin/sh
# tests/fuzz/fuzz-mapping.sh - builds the mapping fuzz targets with clang's
# libFuzzer, ASan and UBSan in a temporary directory and runs each briefly
# from a seed corpus made of tests/data/mapping.  Prints TAP; SKIP without
# clang or libFuzzer.  Longer runs: see tests/fuzz/README.
: "${BM_TEST_BUILDDIR:=.}"
: "${BM_TEST_SRCDIR:=.}"
: "${CLANG:=clang}"
: "${BM_FUZZ_RUNS:=20000}"
: "${BM_FUZZ_SECONDS:=15}"
src=$BM_TEST_SRCDIR
data=$src/tests/data/mapping

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "1..0 # SKIP clang not found"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bm-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! $CLANG $flags "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
	echo "1..0 # SKIP $CLANG cannot build libFuzzer targets"
	exit 0
fi
jcflags=$(pkg-config --cflags jansson 2>/dev/null)
jlibs=$(pkg-config --libs jansson 2>/dev/null || echo -ljansson)

# Seeds: each mappings file for the loader; mappings, NUL, record for map().
mkdir -p "$tmp/load" "$tmp/apply"
i=0
for d in "$data"/*/; do
	i=$((i + 1))
	cp "$d/map.json" "$tmp/load/seed$i"
	if [ -f "$d/in.json" ]; then
		{ cat "$d/map.json"; printf '\000'; cat "$d/in.json"; } >"$tmp/apply/seed$i"
		cp "$d/in.json" "$tmp/apply/rec$i"
	fi
done

echo "1..4"
n=0
failed=0
for t in load apply; do
	n=$((n + 1))
	if $CLANG $flags -std=c11 -I"$BM_TEST_BUILDDIR" -I"$src" $jcflags \
	    "$src"/mapping/mapping.c "$src"/mapping/transform.c \
	    "$src"/mapping/date.c "$src"/mapping/jsnum.c "$src"/mapping/jstext.c \
	    "$src/tests/fuzz/fuzz-mapping-$t.c" -o "$tmp/fuzz-$t" $jlibs -lm \
	    >"$tmp/cc-$t.log" 2>&1; then
		echo "ok $n - build fuzz-mapping-$t"
	else
		echo "not ok $n - build fuzz-mapping-$t"
		sed 's/^/# /' "$tmp/cc-$t.log"
		failed=1
		n=$((n + 1))
		echo "not ok $n - run fuzz-mapping-$t # not built"
		continue
	fi
	n=$((n + 1))
	# Crash reproducers are kept in the build tree.
	mkdir -p "$BM_TEST_BUILDDIR/tests/fuzz"
	if "$tmp/fuzz-$t" -runs="$BM_FUZZ_RUNS" -max_total_time="$BM_FUZZ_SECONDS" \
	    -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
	    -artifact_prefix="$BM_TEST_BUILDDIR/tests/fuzz/crash-$t-" \
	    "$tmp/$t" >"$tmp/run-$t.log" 2>&1; then
		echo "ok $n - run fuzz-mapping-$t ($(grep -c . "$tmp/run-$t.log") log lines, $(tail -n 1 "$tmp/run-$t.log" | cut -c1-60))"
	else
		echo "not ok $n - run fuzz-mapping-$t"
		tail -n 40 "$tmp/run-$t.log" | sed 's/^/# /'
		failed=1
	fi
done
exit $failed
