#!/bin/sh
# tests/store/botmatic-keys.sh - the botmatic-keys command, as TAP: every
# subcommand, exit codes, export -> import into a fresh home, the
# js-redis-key-store import, and bad input refused with nothing written.
K="${BM_TEST_BUILDDIR:-.}/botmatic-keys"
n=0
failed=0
ok() { # ok COND-STATUS NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}
is() { # is GOT WANT NAME
	if [ "$1" = "$2" ]; then ok 0 "$3"; else echo "# got [$1] want [$2]"; ok 1 "$3"; fi
}
if [ ! -x "$K" ]; then echo "1..0 # SKIP $K not built"; exit 0; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/bm-keys-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
export BM_DB_HOME="$T/env"
unset BM_DB_DURABILITY

"$K" save tok b1 e1; ok $? "save"
is "$("$K" get-ext tok b1)" e1 "get-ext prints the id"
is "$("$K" get-botmatic tok e1)" b1 "get-botmatic prints the id"
"$K" get-ext tok nope >/dev/null; is $? 1 "get-ext of an unknown id: 1"
"$K" get-botmatic tok2 e1 >/dev/null; is $? 1 "other integration: 1"
"$K" save tok b1 e2 && "$K" get-botmatic tok e1 >/dev/null
is $? 1 "a relink drops the old reverse"
"$K" save tok b2 e3 && "$K" save tok "ünï" "日本" && "$K" save tok2 b1 x
is "$("$K" list tok)" '{"type":"pair","integration":"tok","botmatic_id":"b1","ext_id":"e2"}
{"type":"pair","integration":"tok","botmatic_id":"b2","ext_id":"e3"}
{"type":"pair","integration":"tok","botmatic_id":"ünï","ext_id":"日本"}' "list prints JSON lines"
# list -> import: what list prints, import reads (SPEC 10).
"$K" list tok | "$K" -d "$T/copy" import - >/dev/null; ok $? "list | import -"
is "$("$K" -d "$T/copy" list tok)" "$("$K" list tok)" "list | import restores the pairs"
"$K" list tok >"$T/list.jsonl" && "$K" -d "$T/copy2" import "$T/list.jsonl" >/dev/null
is "$("$K" -d "$T/copy2" get-ext tok "ünï")" "日本" "list > f; import f"
"$K" delete tok b2 e3; ok $? "delete"
"$K" delete tok b2 e3; is $? 1 "delete again: 1"
"$K" save tok2 b2 y && "$K" save to b1 z
is "$("$K" delete-all tok2)" 2 "delete-all prints the count"
is "$("$K" list tok2)" "" "delete-all emptied the integration"
is "$("$K" get-ext to b1)$("$K" get-ext tok b1)" "ze2" "its neighbours are untouched"

# Bad arguments: exit 2, one line on stderr, nothing written.
"$K" save tok "" e 2>"$T/err"; is $? 2 "empty id: 2"
is "$(wc -l <"$T/err")" 1 "one line on stderr"
grep -q "botmatic id is empty" "$T/err"; ok $? "saying the id is empty"
long=$(printf '%0513d' 0)
"$K" save tok "$long" e 2>"$T/err"; is $? 2 "513-byte id: 2"
grep -q "longer than 512 bytes" "$T/err"; ok $? "saying it is too long"
"$K" save tok "$(printf '%0512d' 0)" e512; ok $? "512-byte id accepted"
"$K" frob 2>"$T/err"; is $? 2 "unknown command: 2"
"$K" get-ext tok 2>"$T/err"; is $? 2 "missing argument: 2"
BM_DB_HOME= "$K" list tok 2>"$T/err"; is $? 2 "no home: 2"
grep -q "BM_DB_HOME" "$T/err"; ok $? "naming BM_DB_HOME"
BM_DB_DURABILITY=nosync "$K" list tok 2>"$T/err"; is $? 2 "bad durability: 2"
BM_DB_DURABILITY=sync "$K" save tok s1 s2; ok $? "sync durability"
"$K" -d "$T/other" save x 1 2 && [ -d "$T/other" ]; ok $? "-d DIR"
is "$(stat -c %a "$T/other")" 700 "the home is created 0700"
"$K" --help | grep -q "import-redis"; ok $? "--help lists the commands"

# Installations and state get there through an import.
cat >"$T/in.jsonl" <<'EOF'
{"type":"install","token":"tok","install_id":"0123456789abcdef0123456789abcdef","created":1700000000,"secret":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","settings":"{\"a\":1}"}
{"type":"state","integration":"tok","name":"cursor","value":"{\"page\":2}"}

{"type":"pair","integration":"tok","botmatic_id":"hexy","ext_id":{"hex":"fffe"}}
EOF
"$K" import "$T/in.jsonl" >/dev/null; ok $? "import a file"
is "$("$K" installs)" '{"install_id":"0123456789abcdef0123456789abcdef","created":1700000000,"settings":"{\"a\":1}"}' "installs hides the token"
"$K" installs --show-tokens | grep -q '"token":"tok"'; ok $? "installs --show-tokens shows it"
"$K" export | grep -q '"secret"'; ok $? "export has the secret"
"$K" verify; ok $? "verify: consistent"

# Round trip into a fresh home.
"$K" export >"$T/dump.jsonl"; ok $? "export"
"$K" -d "$T/fresh" import - <"$T/dump.jsonl" >/dev/null; ok $? "import from stdin into a fresh home"
"$K" -d "$T/fresh" export >"$T/dump2.jsonl"
# Records come in the order of their keys, hashes under each store's own key:
# the same lines, in another order.
sort "$T/dump.jsonl" >"$T/dump.sorted"
sort "$T/dump2.jsonl" >"$T/dump2.sorted"
cmp -s "$T/dump.sorted" "$T/dump2.sorted"; ok $? "the re-export holds the same records"
is "$("$K" -d "$T/fresh" get-botmatic tok "$(printf '\377\376')")" hexy "a non-UTF-8 id survives"

# Bad import lines: exit 2 with the line number, nothing written.
before=$("$K" export | wc -l)
printf '{"type":"pair","integration":"n","botmatic_id":"1","ext_id":"2"}\n{"type":"pair",\n' >"$T/bad1"
"$K" import "$T/bad1" 2>"$T/err"; is $? 2 "bad JSON line: 2"
grep -q "^botmatic-keys: line 2: bad JSON" "$T/err"; ok $? "with its line number"
printf '{"type":"pair","integration":"n","botmatic_id":"1","ext_id":"2"}\n{"type":"pair","integration":"n","botmatic_id":"%s","ext_id":"2"}\n' "$long" >"$T/bad2"
"$K" import "$T/bad2" 2>"$T/err"; is $? 2 "over-long id: 2"
grep -q "line 2: \"botmatic_id\" is longer than 512 bytes" "$T/err"; ok $? "saying so"
printf '{"type":"pair","integration":"n","botmatic_id":"1","ext_id":"2","x":1}\n' | "$K" import 2>"$T/err"; is $? 2 "unknown key: 2"
printf '{"type":"pair","integration":"n","botmatic_id":"","ext_id":"2"}\n' | "$K" import 2>"$T/err"; is $? 2 "empty id in import: 2"
is "$("$K" export | wc -l)" "$before" "nothing of the bad imports was written"

# js-redis-key-store's layout.
cat >"$T/redis.jsonl" <<'EOF'
{"key":"int:with:colons:b:123","value":"234"}
{"key":"int:with:colons:e:234","value":"123"}
{"key":"r:b:1","value":"x1"}
{"key":"r:e:x1","value":"2"}
{"key":"r:b:2","value":"x1"}
{"key":"r:b:half","value":"h1"}
{"key":"r:e:num","value":42}
EOF
"$K" import-redis "$T/redis.jsonl" >"$T/out"; ok $? "import-redis"
grep -q "imported 4 pairs from 7 keys, skipped 1 stale" "$T/out"; ok $? "4 pairs, 1 stale key"
is "$("$K" get-ext int:with:colons 123)" 234 "an integration with colons"
is "$("$K" get-botmatic r x1)$("$K" get-ext r 1 2>/dev/null)" 2 "the stale key lost"
is "$("$K" get-botmatic r h1)" half "a half-written pair imported"
is "$("$K" get-ext r 42)" num "a number value"
printf '{"key":"nomarker","value":"1"}\n' | "$K" import-redis 2>"$T/err"; is $? 2 "a key without :b:/:e:: 2"
grep -q "line 1" "$T/err"; ok $? "with its line number"
"$K" verify; ok $? "still consistent"

# Webhook secrets: shown as Standard Webhooks senders take them; rotated.
IID=0123456789abcdef0123456789abcdef
is "$("$K" secret show $IID)" "whsec_ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=" \
    "secret show: whsec_ and the base64 of the 32 bytes"
new=$("$K" secret rotate $IID); ok $? "secret rotate"
case $new in whsec_????????????????????????????????????????????) r=0 ;; *) r=1 ;; esac
ok $r "it prints the new secret"
is "$("$K" secret show $IID)" "$new" "which is now the one shown"
"$K" export | grep -q '"name":"bm:webhook-secret-previous","value":"{\\"secret\\":\\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\\",\\"rotated\\":'
ok $? "the old one is kept, with the time of the rotation"
"$K" secret show ffffffffffffffffffffffffffffffff 2>"$T/err"; is $? 2 "secret of an unknown install id: 2"
"$K" secret peek $IID 2>"$T/err"; is $? 2 "secret peek: 2"
grep -q "show, rotate or set" "$T/err"; ok $? "naming the choices"
# The delivery queue: empty here (the server's tests fill it).
is "$("$K" outbox)" "" "outbox of an empty queue prints nothing"
"$K" outbox show 42 >/dev/null; is $? 1 "outbox show of an unknown job: 1"
"$K" outbox show x 2>"$T/err"; is $? 2 "outbox show of a bad id: 2"
grep -q "not a job id" "$T/err"; ok $? "saying why"
is "$("$K" outbox retry --dead)" 0 "outbox retry --dead with none dead: 0"
"$K" outbox frob 2>/dev/null; is $? 2 "an unknown outbox subcommand: 2"

# The external service's secret and webhooks (SPEC 11).
echo "shpss_given-by-the-shop" | "$K" secret set $IID; ok $? "secret set reads stdin"
"$K" export | grep -q '"name":"bm:webhook-secret-external","value":"{\\"secret\\":\\"shpss_given-by-the-shop\\"'
ok $? "kept as the installation's external secret"
is "$("$K" secret show $IID)" "$new" "secret show still prints the installation's own"
echo | "$K" secret set $IID; ok $? "an empty line"
"$K" export | grep -q 'bm:webhook-secret-external'; is $? 1 "forgets it"
printf 'a\001b\n' | "$K" secret set $IID 2>"$T/err"; is $? 2 "a control character: 2"
echo x | "$K" secret set ffffffffffffffffffffffffffffffff 2>"$T/err"; is $? 2 "secret set of an unknown install id: 2"
is "$("$K" hooks list $IID)" "" "hooks list with none registered prints nothing"
"$K" hooks list ffffffffffffffffffffffffffffffff 2>/dev/null; is $? 1 "hooks list of an unknown install id: 1"
is "$("$K" hooks reconcile $IID | sed 's/[0-9][0-9]*/N/')" '{"queued":true,"job":N}' "hooks reconcile queues a job"
is "$("$K" hooks reconcile $IID | sed 's/[0-9][0-9]*/N/')" '{"queued":true,"job":N,"existed":true}' "one at a time"
"$K" outbox | grep -q '"kind":"hooks_reconcile"'; ok $? "it is in the outbox"
"$K" hooks frob $IID 2>/dev/null; is $? 2 "an unknown hooks subcommand: 2"

# Full recovery, as after a crash of the whole server (nothing else open).
"$K" recover; ok $? "recover"
is "$("$K" get-ext int:with:colons 123)" 234 "data survives recovery"

echo "1..$n"
exit $failed
