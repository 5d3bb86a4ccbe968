#!/bin/sh
# tests/store/kill-loop.sh - botmatic-keys killed at any instant, no server
# running (SPEC.md section 10): 30 rounds of a few tools SIGKILLed at a
# random moment, each followed by a fresh command that must finish within
# seconds (store.lock: the next holder recovers), and nothing a command
# reported as saved may be lost.  Before store.lock, about one round in ten
# hung for ever.
K="${BM_TEST_BUILDDIR:-.}/botmatic-keys"
ROUNDS=30
n=0
failed=0
ok() { # ok COND-STATUS NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
if [ ! -x "$K" ]; then echo "1..0 # SKIP $K not built"; exit 0; fi
if ! command -v timeout >/dev/null; then echo "1..0 # SKIP no timeout(1)"; exit 0; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/bm-kill-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
export BM_DB_HOME="$T/env"
unset BM_DB_DURABILITY

# A random delay of 0 to 99 ms, from the kernel's random source.
rnd_sleep() {
	sleep "0.0$(od -An -N1 -tu1 /dev/urandom | tr -d ' ' | cut -c1)$(od -An -N1 -tu1 /dev/urandom | tr -d ' ' | cut -c1)"
}

"$K" save warm b0 e0 >/dev/null
hangs=0
lost=0
saved=""
r=0
while [ $r -lt $ROUNDS ]; do
	r=$((r + 1))
	# Three tools at once, each saving a few pairs, killed together.
	pids=""
	for w in 1 2 3; do
		( i=0; while [ $i -lt 20 ]; do
			i=$((i + 1))
			"$K" save loop "r$r-w$w-$i" "x$r-w$w-$i" >/dev/null 2>&1 &&
			    echo "r$r-w$w-$i" >>"$T/saved.$w"
		done ) &
		pids="$pids $!"
	done
	rnd_sleep
	# The subshells and whatever botmatic-keys they run right now.
	for p in $pids; do
		for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill -9 "$c" 2>/dev/null; done
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	# The fresh command: must end within seconds, and succeed.
	timeout 20 "$K" save fresh "f$r" "g$r" >/dev/null 2>"$T/err.$r"
	st=$?
	if [ $st -ne 0 ]; then
		hangs=$((hangs + 1))
		echo "# round $r: fresh save exited $st: $(cat "$T/err.$r")"
	fi
done
echo "# $(cat "$T"/err.* | grep -c recovered) rounds found a killed holder and recovered"
ok $([ $hangs -eq 0 ]; echo $?) "$ROUNDS rounds of kills: every fresh command finished ($hangs did not)"
r=0
while [ $r -lt $ROUNDS ]; do
	r=$((r + 1))
	[ "$(timeout 20 "$K" get-ext fresh "f$r")" = "g$r" ] || lost=$((lost + 1))
done
for w in 1 2 3; do
	[ -f "$T/saved.$w" ] || continue
	for b in $(cat "$T/saved.$w"); do
		[ "$(timeout 20 "$K" get-ext loop "$b")" = "x${b#r}" ] || {
			# the ext id is "x" + the bid without its leading "r"
			lost=$((lost + 1)); echo "# lost $b"; }
	done
done
ok $([ $lost -eq 0 ]; echo $?) "no saved pair lost ($lost lost, $(cat "$T"/saved.* 2>/dev/null | wc -l) saved by killed tools)"
timeout 60 "$K" verify >/dev/null 2>"$T/verr"
ok $? "verify finds both directions agree"
echo "1..$n"
exit $failed
