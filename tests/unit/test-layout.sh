#!/bin/sh
# test-layout.sh - app/ is in parts, each including only the public
# headers of the parts below it (app/README).  Reads the #include lines of
# every file of app/ and prints one TAP point per part.
src=${BM_TEST_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
order="core outbound keystore auth dispatch sync events settings services host delivery fcgi server"
rank() {
	r=0
	for p in $order; do
		r=$((r + 1))
		[ "$p" = "$1" ] && { echo $r; return; }
	done
	echo 0
}
n=0
for p in $order; do n=$((n + 1)); done
echo "1..$((n + 2))"
i=0
for p in $order; do
	i=$((i + 1))
	me=$(rank "$p")
	bad=""
	for f in "$src"/app/"$p"/*.[ch]; do
		[ -e "$f" ] || continue
		for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
			case "$inc" in
			config.h|mapping/*|store/*|schema/*) continue ;;
			"$p"/*) continue ;;
			*/*_int.h) bad="$bad ${f#"$src"/}:$inc(private)"; continue ;;
			esac
			q=${inc%%/*}
			r=$(rank "$q")
			if [ "$r" -eq 0 ] || [ "$r" -ge "$me" ]; then
				bad="$bad ${f#"$src"/}:$inc"
			fi
		done
	done
	if [ -z "$bad" ]; then
		echo "ok $i - app/$p includes only parts below it"
	else
		echo "not ok $i - app/$p includes parts above it or private headers:$bad"
	fi
done
# Every file of app/ lives in a part (main.c and the installed header aside).
stray=$(cd "$src" && ls app/*.[ch] 2>/dev/null | grep -v '^app/main\.c$')
if [ -z "$stray" ]; then
	echo "ok $((i + 1)) - no source file outside a part but app/main.c"
else
	echo "not ok $((i + 1)) - files outside a part: $stray"
fi
# Each part has exactly one public header, named after it.
missing=""
for p in $order; do
	[ -f "$src/app/$p/$p.h" ] || missing="$missing $p"
	pub=$(ls "$src/app/$p"/*.h | grep -v '_int\.h$' | wc -l)
	[ "$pub" -eq 1 ] || missing="$missing $p($pub public headers)"
done
if [ -z "$missing" ]; then
	echo "ok $((i + 2)) - each part has one public header, <part>/<part>.h"
else
	echo "not ok $((i + 2)) - parts without their one public header:$missing"
fi
