#!/bin/sh
# tests/store/with-redis.sh [WRAPPER...] PROGRAM [ARGS...] - runs a store test against a
# redis-server of its own: started on a free loopback port in a temp dir
# (AOF on, fsync always, no RDB), BM_STORE=redis and BM_REDIS_URL exported
# around PROGRAM, stopped by its pid afterwards.  Without redis-server the
# test is skipped (TAP "1..0 # SKIP"), so the suite passes anywhere.
#
# Also sourced by the Redis shell tests (WITH_REDIS_LIB=1): then it only
# defines redis_start / redis_stop.

redis_start() {
	REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bm-redis-XXXXXX") || return 1
	REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
		--dir "$REDIS_DIR" --save '' --appendonly yes \
		--appendfsync always --daemonize no \
		--logfile "$REDIS_DIR/redis.log" >/dev/null 2>&1 &
	REDIS_PID=$!
	i=0
	while ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 100 ] || ! kill -0 "$REDIS_PID" 2>/dev/null; then
			echo "# redis-server did not start:" >&2
			sed 's/^/# /' "$REDIS_DIR/redis.log" >&2
			return 1
		fi
		sleep 0.1
	done
	BM_STORE=redis
	BM_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
	# Required on Redis (the sealing key is never kept there): 32 random
	# bytes, 0600, outside the Redis dir the tests search for secrets.
	BM_SECRET_KEY_FILE="$REDIS_DIR.seal.key"
	(umask 077 && head -c 32 /dev/urandom >"$BM_SECRET_KEY_FILE") ||
		return 1
	export BM_STORE BM_REDIS_URL BM_SECRET_KEY_FILE REDIS_PORT REDIS_PID \
		REDIS_DIR
}

redis_stop() {
	if [ -n "${REDIS_PID:-}" ]; then
		kill "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
		REDIS_PID=
	fi
	[ -n "${REDIS_DIR:-}" ] && rm -rf "$REDIS_DIR" "$REDIS_DIR.seal.key"
	REDIS_DIR=
}

[ -n "${WITH_REDIS_LIB:-}" ] && return 0

if ! command -v redis-server >/dev/null 2>&1 ||
	! command -v redis-cli >/dev/null 2>&1; then
	echo "1..0 # SKIP redis-server or redis-cli not installed"
	exit 0
fi
# As the log compiler of a X-redis.redis test (its last argument, perhaps behind
# a wrapper such as valgrind): run the program it names instead.
last=
for a in "$@"; do last=$a; done
case "$last" in
*.redis)
	prog="${BM_TEST_BUILDDIR:-.}/tests/store/$(basename "$last" -redis.redis)"
	if [ ! -x "$prog" ]; then echo "1..0 # SKIP $prog not built"; exit 0; fi
	n=$#
	i=0
	for a in "$@"; do
		i=$((i + 1))
		[ "$i" -eq 1 ] && set --
		if [ "$i" -eq "$n" ]; then set -- "$@" "$prog"; else set -- "$@" "$a"; fi
	done ;;
esac
if ! command -v "$1" >/dev/null 2>&1; then echo "1..0 # SKIP $1 not found"; exit 0; fi
trap redis_stop EXIT
trap 'exit 1' INT TERM
redis_start || { echo "Bail out! could not start redis-server"; exit 1; }
"$@"
