#!/bin/sh
# tests/store/redis-keys.sh - botmatic-keys on Redis (-r URL), as TAP: the
# commands (secret set and hooks list|reconcile too), and migrate both
# ways: Berkeley DB -> Redis killed half-way and resumed from the cursor
# kept in the target, verified, the exports
# equal; then Redis -> a fresh Berkeley DB, likewise.  Starts a
# redis-server of its own (tests/store/with-redis.sh); skipped without one.
K="${BM_TEST_BUILDDIR:-.}/botmatic-keys"
L="${BM_TEST_BUILDDIR:-.}/tests/store/bulk-load"
S="${BM_TEST_SRCDIR:-.}"
n=0
ok() { # ok COND-STATUS NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
is() { # is GOT WANT NAME
	if [ "$1" = "$2" ]; then ok 0 "$3"; else echo "# got [$1] want [$2]"; ok 1 "$3"; fi
}
if [ ! -x "$K" ] || [ ! -x "$L" ]; then echo "1..0 # SKIP not built"; exit 0; fi
if ! command -v redis-server >/dev/null 2>&1 ||
	! command -v redis-cli >/dev/null 2>&1; then
	echo "1..0 # SKIP redis-server or redis-cli not installed"
	exit 0
fi
WITH_REDIS_LIB=1 . "$S/tests/store/with-redis.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/bm-rkeys-XXXXXX") || exit 1
MPID=
cleanup() {
	[ -n "$MPID" ] && kill -9 "$MPID" 2>/dev/null
	redis_stop
	rm -rf "$T"
}
trap cleanup EXIT
redis_start || { echo "Bail out! could not start redis-server"; exit 1; }
URL=$BM_REDIS_URL
unset BM_STORE BM_REDIS_URL BM_DB_DURABILITY
# One sealing key for every store of the test (a server's
# BM_SECRET_KEY_FILE): tokens sealed by one run open in the next.
head -c 32 /dev/urandom > "$T/seal.key" && chmod 600 "$T/seal.key"
export BM_SECRET_KEY_FILE="$T/seal.key"
export BM_DB_HOME="$T/a"
R="$K -r $URL"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# --- the commands on Redis ---------------------------------------------
$R save tokZq81 b1 e1; ok $? "save on Redis"
is "$($R get-ext tokZq81 b1)" e1 "get-ext"
is "$($R get-botmatic tokZq81 e1)" b1 "get-botmatic"
$R get-ext tokZq81 nope >/dev/null; is $? 1 "get-ext of an unknown id: 1"
$R save tokZq81 b1 e2 && $R get-botmatic tokZq81 e1 >/dev/null
is $? 1 "a relink drops the old reverse"
is "$($R list tokZq81)" '{"type":"pair","integration":"tokZq81","botmatic_id":"b1","ext_id":"e2"}' "list"
$R list tokZq81 > "$T/l" && $R delete-all tokZq81 >/dev/null && $R import "$T/l"
is "$($R get-ext tokZq81 b1)" e2 "list > f; delete-all; import f"
is "$($R delete-all tokZq81)" 1 "delete-all prints the count"
$R get-ext tokZq81 b1 >/dev/null; is $? 1 "delete-all emptied the integration"
$R verify; ok $? "verify: consistent"
$R recover 2>/dev/null; is $? 2 "recover: nothing to do on Redis, said so"
$R outbox; ok $? "outbox on Redis"
is "$(rcli --scan --pattern '*Zq81*' | wc -l | tr -d ' ')" 0 \
	"no key name holds the token"
# --- the external service's secret and webhooks on Redis (SPEC 11) -----
IID=0123456789abcdef0123456789abcdef
printf '%s\n' '{"type":"install","token":"tokHq81","install_id":"0123456789abcdef0123456789abcdef","created":1700000000,"secret":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","settings":"{}"}' |
	$R import -; ok $? "an installation on Redis"
echo "shpss_given-by-the-shop" | $R secret set $IID; ok $? "secret set on Redis"
$R export | grep -q '"name":"bm:webhook-secret-external","value":"{\\"secret\\":\\"shpss_given-by-the-shop\\"'
ok $? "kept as the installation's external secret"
# Sealed at rest: no value of any key, nor the AOF, holds either secret.
leaks=0
for k in $(rcli --scan); do
	case "$(rcli TYPE "$k")" in
	hash) v=$(rcli --raw HGETALL "$k") ;;
	string) v=$(rcli --raw GET "$k") ;;
	*) v=$(rcli --raw DUMP "$k") ;;
	esac
	case "$v" in
	*shpss_given-by-the-shop*|*00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff*)
		echo "# $k holds a secret in clear"; leaks=$((leaks + 1)) ;;
	esac
done
is "$leaks" 0 "no Redis value holds the webhook or the external secret"
grep -rqa -e shpss_given-by-the-shop \
	-e 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
	"$REDIS_DIR"/appendonly*
is $? 1 "nor the AOF"
BM_SECRET_KEY_FILE= $R outbox 2>"$T/nokey"; is $? 2 "no BM_SECRET_KEY_FILE on Redis: 2"
grep -q 'BM_SECRET_KEY_FILE.*required' "$T/nokey" && [ "$(wc -l < "$T/nokey")" -eq 1 ]
ok $? "one line naming BM_SECRET_KEY_FILE"
is "$(rcli EXISTS bm:sealkey)" 0 "no sealing key kept in Redis"
echo | $R secret set $IID; ok $? "secret set of an empty line"
$R export | grep -q 'bm:webhook-secret-external'; is $? 1 "forgets it"
printf 'a\001b\n' | $R secret set $IID 2>/dev/null; is $? 2 "a control character: 2"
echo x | $R secret set ffffffffffffffffffffffffffffffff 2>/dev/null
is $? 2 "secret set of an unknown install id: 2"
is "$($R hooks list $IID)" "" "hooks list with none registered prints nothing"
$R hooks list ffffffffffffffffffffffffffffffff 2>/dev/null
is $? 1 "hooks list of an unknown install id: 1"
is "$($R hooks reconcile $IID | sed 's/[0-9][0-9]*/N/')" '{"queued":true,"job":N}' "hooks reconcile queues a job on Redis"
is "$($R hooks reconcile $IID | sed 's/[0-9][0-9]*/N/')" '{"queued":true,"job":N,"existed":true}' "one at a time"
$R outbox | grep -q '"kind":"hooks_reconcile"'; ok $? "it is in the outbox"
is "$(rcli --scan --pattern '*Hq81*' | wc -l | tr -d ' ')" 0 \
	"no key name holds that token either"
# --- migrate bdb-to-redis, killed, resumed -----------------------------
rcli FLUSHALL >/dev/null
"$L" "$T/a" big 100000; ok $? "100,000 pairs in Berkeley DB"
"$K" save small b1 e1 && "$K" save small b2 e2
printf '%s\n' '{"type":"install","token":"tokI","install_id":"0123456789abcdef0123456789abcdef","created":1700000000,"secret":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","settings":"{\"x\":1}"}' \
	'{"type":"state","integration":"tokI","name":"cursor","value":"7"}' |
	"$K" import -; ok $? "an installation and state"
# A queued job in the source: the migrate refuses (it would be lost).
"$K" hooks reconcile 0123456789abcdef0123456789abcdef >/dev/null
"$K" -r "$URL" migrate bdb-to-redis 2> "$T/m0"
is $? 2 "migrate refuses while the source holds a queued job"
grep -q "let the queue drain" "$T/m0"; ok $? "... saying why"
is "$("$K" -r "$URL" get-ext small b1)" "" "... and copies nothing"
JOB=$("$K" outbox | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p' | head -n 1)
"$K" outbox cancel "$JOB" >/dev/null; ok $? "the job cancelled (the queue drained)"
"$K" -r "$URL" migrate bdb-to-redis 2> "$T/m1" &
MPID=$!
# Killed once the migrate has written part of the pairs (a bound, not a
# timing: it waits for Redis to hold some).  The largest integration's
# count: SCAN may name small's 2 pairs first.
copied() {
	for k in $(rcli --scan --pattern 'bm:b2e:*'); do rcli HLEN "$k"; done |
		sort -n | tail -1 | grep . || echo 0
}
i=0
while [ "$(copied)" -lt 1000 ] 2>/dev/null; do
	i=$((i + 1)); [ "$i" -gt 3000 ] && break
	kill -0 "$MPID" 2>/dev/null || break
	sleep 0.05
done
kill -9 "$MPID" 2>/dev/null
wait "$MPID" 2>/dev/null
MPID=
part=$(copied)
[ "$part" -gt 0 ] && [ "$part" -lt 100000 ]
ok $? "the migrate was killed half-way ($part pairs copied)"
"$K" -r "$URL" migrate bdb-to-redis 2> "$T/m2"; ok $? "migrate again"
grep -q 'resuming after [1-9][0-9]* records' "$T/m2"
ok $? "it resumed from the cursor: $(head -1 "$T/m2")"
grep -q '0 problems' "$T/m2"; ok $? "the target verified"
$R verify; ok $? "botmatic-keys verify on Redis"
"$K" export | sort > "$T/e-bdb"
$R export | sort > "$T/e-redis"
cmp -s "$T/e-bdb" "$T/e-redis"
ok $? "Redis holds exactly what Berkeley DB held ($(wc -l < "$T/e-bdb") records)"
is "$($R get-ext big b000012345)" e000012345 "a pair of the killed half"
is "$(rcli --scan --pattern 'bm:st:*' | wc -l | tr -d ' ')" 1 \
	"the cursor is gone (only tokI's state is left)"
# --- migrate redis-to-bdb into a fresh home ------------------------------
BM_DB_HOME="$T/b" "$K" -r "$URL" migrate redis-to-bdb 2> "$T/m3"
ok $? "migrate redis-to-bdb"
BM_DB_HOME="$T/b" "$K" verify; ok $? "the Berkeley DB target verifies"
BM_DB_HOME="$T/b" "$K" export | sort > "$T/e-b"
cmp -s "$T/e-b" "$T/e-redis"; ok $? "the round trip kept every record"
BM_DB_HOME="$T/b" "$K" -r "$URL" migrate bdb-to-redis 2>/dev/null
ok $? "a second migrate over the same data is harmless"
echo "1..$n"
