#!/bin/sh
# tests/fuzz/build-app.sh TARGET - builds one libFuzzer target of the
# server's parsers with clang into $BM_FUZZ_OUT/fuzz-TARGET, from the
# sources it needs and nothing else (no FastCGI, no store).  TARGET "probe"
# only checks that clang can build a libFuzzer program.  Used by
# fuzz-app.sh and by `make` after `configure --enable-fuzzers`.
: "${BM_TEST_BUILDDIR:=.}"
: "${BM_TEST_SRCDIR:=.}"
: "${BM_FUZZ_OUT:=$BM_TEST_BUILDDIR/tests/fuzz}"
: "${CLANG:=clang}"
src=$BM_TEST_SRCDIR
set -e
flags="-g -O1 -std=c11 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
inc="-I$BM_TEST_BUILDDIR -I$src -I$src/app $(pkg-config --cflags jansson libcrypto 2>/dev/null)"
mkdir -p "$BM_FUZZ_OUT"
case $1 in
probe)
	printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$BM_FUZZ_OUT/probe.c"
	exec $CLANG $flags "$BM_FUZZ_OUT/probe.c" -o "$BM_FUZZ_OUT/probe" ;;
request-head)
	srcs="app/fcgi/proto.c app/auth/token.c"; libs="" ;;
envelope)
	srcs="app/dispatch/envelope.c"
	libs=$(pkg-config --libs jansson 2>/dev/null || echo -ljansson) ;;
webhook-sig)
	srcs="app/auth/webhook.c"
	libs=$(pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto) ;;
*)
	echo "build-app.sh: unknown target $1" >&2; exit 2 ;;
esac
files=""
for f in $srcs tests/fuzz/fuzz-$1.c; do files="$files $src/$f"; done
exec $CLANG $flags $inc $files -o "$BM_FUZZ_OUT/fuzz-$1" $libs
