#!/bin/sh
# tests/unit/test-botmatic-schema.sh - the botmatic-schema command: exit
# statuses, verdicts, messages, JSON lines, bad input.  Prints TAP.
: "${BM_TEST_BUILDDIR:=.}"
CMD="$BM_TEST_BUILDDIR/botmatic-schema"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bm-schema.XXXXXX") || exit 1
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
# run STATUS ARGS...: runs botmatic-schema into $tmp/out and $tmp/err
run() {
	want=$1
	shift
	"$CMD" "$@" >"$tmp/out" 2>"$tmp/err"
	status=$?
	[ "$status" -eq "$want" ] && return 0
	echo "# status $status, want $want; stdout, stderr:"
	sed 's/^/#   /' "$tmp/out" "$tmp/err"
	return 1
}
# same FILE TEXT: FILE holds exactly the line TEXT
same() {
	[ "$(cat "$1")" = "$2" ] && return 0
	echo "# want '$2', got:"
	sed 's/^/#   /' "$1"
	return 1
}
# has TEXT FILE: FILE holds TEXT
has() {
	grep -F -q -- "$1" "$2" && return 0
	echo "# no '$1' in:"
	sed 's/^/#   /' "$2"
	return 1
}

cat >"$tmp/order.json" <<'EOF'
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "items": {"type": "array", "items": {"$ref": "#/$defs/item"}}
  },
  "required": ["items"],
  "$defs": {
    "item": {
      "type": "object",
      "properties": {"price": {"type": "number", "minimum": 5}},
      "required": ["price"]
    }
  }
}
EOF
printf '{"items": [{"price": 6}, {"price": 5.5}, {"price": 3}]}\n' \
	>"$tmp/bad.json"
printf '{"items": [{"price": 6}]}\n' >"$tmp/good.json"

echo "1..20"

check "--help exits 0 and shows usage" \
	'run 0 --help && has "usage: botmatic-schema" "$tmp/out"'
check "no arguments is a usage error (2)" \
	'run 2 && has "usage: botmatic-schema" "$tmp/err"'
check "three arguments is a usage error (2)" \
	'run 2 "$tmp/order.json" "$tmp/good.json" extra'
check "an unknown option is a usage error (2)" \
	'run 2 --frobnicate "$tmp/order.json"'
check "a schema alone is checked: valid, 0" \
	'run 0 "$tmp/order.json" && same "$tmp/out" "valid"'
check "a valid instance: valid, 0" \
	'run 0 "$tmp/order.json" "$tmp/good.json" && same "$tmp/out" "valid"'
check "an invalid instance: the error line, 1" \
	'run 1 "$tmp/order.json" "$tmp/bad.json" &&
	same "$tmp/out" "/items/2/price: minimum: 3 is less than 5" &&
	[ ! -s "$tmp/err" ]'
check "standard input with -" \
	'run 1 "$tmp/order.json" - <"$tmp/bad.json" &&
	same "$tmp/out" "/items/2/price: minimum: 3 is less than 5"'

printf '{"type": "object", "properties": {"total": {"multipleOf": 2}}}' \
	>"$tmp/unknown.json"
check "an unknown keyword: refused with its pointer, 2" \
	'run 2 "$tmp/unknown.json" &&
	same "$tmp/err" "botmatic-schema: $tmp/unknown.json: /properties/total: unknown keyword \"multipleOf\"" &&
	[ ! -s "$tmp/out" ]'
printf '{"minLength": -1}' >"$tmp/neg.json"
check "a malformed value: refused, 2" \
	'run 2 "$tmp/neg.json" "$tmp/good.json" &&
	has "(root): minLength: not a non-negative integer" "$tmp/err"'
printf '{"type": "object",\n "properties": }\n' >"$tmp/notjson.json"
check "a schema that is not JSON: file, line and column, 2" \
	'run 2 "$tmp/notjson.json" &&
	has "notjson.json:2:16: invalid JSON" "$tmp/err"'
check "a missing schema file: 2" \
	'run 2 "$tmp/nope.json" && has "nope.json" "$tmp/err"'
check "a missing instance file: 2" \
	'run 2 "$tmp/order.json" "$tmp/nope.json" &&
	has "nope.json: No such file or directory" "$tmp/err"'
printf '{"items": [' >"$tmp/trunc.json"
check "an instance that is not JSON: said on stdout, 1" \
	'run 1 "$tmp/order.json" "$tmp/trunc.json" &&
	has "invalid JSON at line 1" "$tmp/out"'

# Deeper than jansson's parser goes (2048): refused as not JSON.
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "["; for (i = 0; i < 3000; i++) printf "]"; print "" }' \
	>"$tmp/deep.json"
check "an instance nested too deeply: 1, with the reason" \
	'run 1 "$tmp/order.json" "$tmp/deep.json" &&
	has "maximum parsing depth reached" "$tmp/out"'
awk 'BEGIN { for (i = 0; i < 200; i++) printf "{\"not\":"; printf "{}"; for (i = 0; i < 200; i++) printf "}"; print "" }' \
	>"$tmp/deepschema.json"
check "a schema nested too deeply: refused, 2" \
	'run 2 "$tmp/deepschema.json" &&
	has ": schemas nested deeper than 128 levels" "$tmp/err"'
printf '{"$ref": "#"}' >"$tmp/loop.json"
check "a \$ref cycle: refused, 2" \
	'run 2 "$tmp/loop.json" && has "(an endless loop)" "$tmp/err"'

cat >"$tmp/in.jsonl" <<'LINES'
{"items": [{"price": 9}]}
{"items": [{"price": 1}]}

{"items": 
{"orders": []}
LINES
check "--lines: one verdict per line, 1 when any fails" \
	'run 1 --lines "$tmp/order.json" "$tmp/in.jsonl" &&
	[ "$(wc -l <"$tmp/out" | tr -d " ")" -eq 4 ] &&
	has "line 1: valid" "$tmp/out" &&
	has "line 2: /items/0/price: minimum: 1 is less than 5" "$tmp/out" &&
	has "line 4: invalid JSON at line 1" "$tmp/out" &&
	has "line 5: /items: required: missing property \"items\"" "$tmp/out"'
check "--lines reads standard input when no file is given" \
	'printf "{\"items\": []}\n{\"items\": []}\n" |
	run 0 --lines "$tmp/order.json" && has "line 2: valid" "$tmp/out"'
check "a string value is never echoed in a message" \
	'printf "{\"properties\": {\"pw\": {\"minLength\": 20}}}" >"$tmp/pw.json" &&
	printf "{\"pw\": \"hunter2-secret\"}" |
	run 1 "$tmp/pw.json" - && ! grep -q hunter2 "$tmp/out" "$tmp/err" &&
	same "$tmp/out" "/pw: minLength: 14 characters, fewer than 20"'

exit $failed
