#!/bin/sh
# tests/unit/test-botmatic-map.sh - the botmatic-map command: options, exit
# statuses, JSON lines, messages.  Prints TAP.
: "${BM_TEST_BUILDDIR:=.}"
: "${BM_TEST_SRCDIR:=.}"
MAP="$BM_TEST_BUILDDIR/botmatic-map"
DATA="$BM_TEST_SRCDIR/tests/data/mapping"
JS="$DATA/js-mapper-ext-to-botmatic"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bm-map.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
# check NAME SHELL-CODE: ok when the code succeeds
check() {
	n=$((n + 1))
	if eval "$2"; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		failed=1
	fi
}
# run STATUS ARGS...: runs botmatic-map into $tmp/out and $tmp/err
run() {
	want=$1
	shift
	"$MAP" "$@" >"$tmp/out" 2>"$tmp/err"
	status=$?
	[ "$status" -eq "$want" ] && return 0
	echo "# status $status, want $want; stderr:"
	sed 's/^/#   /' "$tmp/err"
	return 1
}
# has TEXT FILE: FILE holds TEXT
has() {
	grep -F -q -- "$1" "$2" && return 0
	echo "# no '$1' in:"
	sed 's/^/#   /' "$2"
	return 1
}
# lines N FILE: FILE has N lines
lines() {
	[ "$(wc -l <"$2" | tr -d ' ')" -eq "$1" ] && return 0
	echo "# not $1 lines in:"
	sed 's/^/#   /' "$2"
	return 1
}

echo "1..17"

check "--help exits 0 and shows usage" \
	'run 0 --help && has "usage: botmatic-map" "$tmp/out"'
check "no arguments is a usage error (2)" 'run 2'
check "--from without --to is a usage error" \
	'run 2 -m "$JS/map.json" --from ext'
check "a bad side is a usage error" \
	'run 2 -m "$JS/map.json" --from ext --to crm'
check "--check accepts a good file silently" \
	'run 0 -m "$JS/map.json" --check && [ ! -s "$tmp/out" ]'
check "--check refuses a bad file with 2 and the reason" \
	'run 2 -m "$DATA/load-error-unknown-transform/map.json" --check &&
	has "load-error-unknown-transform/map.json: entry 3: ext.transform: unknown transform \"foo\"" "$tmp/err"'
check "a missing mappings file is 2" 'run 2 -m "$tmp/nope.json" --check'
check "a missing input file is 2" \
	'run 2 -m "$JS/map.json" --from ext --to botmatic "$tmp/nope"'

check "one multi-line object maps to one line" \
	'run 0 -m "$JS/map.json" --from ext --to botmatic "$JS/in.json" &&
	lines 1 "$tmp/out" &&
	has "\"signup_date\":\"2018-02-09T12:44:26.000Z\"" "$tmp/out" &&
	has "\"school\":\"{\\\"id\\\":418," "$tmp/out"'
check "standard input with -" \
	'run 0 -m "$JS/map.json" --from botmatic --to ext - <"$JS/out.json" &&
	has "\"etablissement\":{\"id\":418" "$tmp/out"'

# JSON lines: bad lines are reported by number, good ones still mapped.
cat >"$tmp/in.jsonl" <<'LINES'
{"id": 1, "nom": "A"}
{"id": 2, "nom": }

[1, 2]
{"id": "x", "nom": "D"}
{"id": 5, "validation": 99999999999999999999}
{"id": 6, "date_inscription": "2018-02-09 12:44:26"}
LINES
check "JSON lines: status 1 when a record fails" \
	'run 1 -m "$JS/map.json" --from ext --to botmatic "$tmp/in.jsonl"'
check "JSON lines: the good records are printed, one a line" \
	'lines 3 "$tmp/out" && has "{\"id\":1,\"lastname\":\"A\"}" "$tmp/out" &&
	has "{\"id\":\"x\",\"lastname\":\"D\"}" "$tmp/out" &&
	has "{\"id\":6,\"signup_date\":\"2018-02-09T12:44:26.000Z\"}" "$tmp/out"'
check "JSON lines: invalid JSON names its line" \
	'has "line 2: column" "$tmp/err"'
check "JSON lines: a non-object names its line" \
	'has "line 4: the record is not a JSON object" "$tmp/err"'
check "JSON lines: an integer beyond 64 bits is refused clearly" \
	'has "line 6: column" "$tmp/err" && has "too big integer" "$tmp/err"'

# A transform failure is a warning with the line, unless -q.
printf '{"id": "abc"}\n' >"$tmp/w.jsonl"
check "a transform failure warns with the line and the field" \
	'run 0 -m "$JS/map.json" --from botmatic --to ext "$tmp/w.jsonl" &&
	has "line 1: field \"id\" left out: int: no digits in \"abc\"" "$tmp/err" &&
	has "{}" "$tmp/out"'
check "-q silences warnings" \
	'run 0 -q -m "$JS/map.json" --from botmatic --to ext "$tmp/w.jsonl" &&
	[ ! -s "$tmp/err" ]'

exit $failed
