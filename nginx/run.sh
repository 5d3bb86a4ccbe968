#!/usr/bin/env bash
# shellcheck disable=SC2317  # stop() and cleanup() run from traps
# run.sh - run botmatic-fcgi behind a private nginx, from the build tree, in
# the foreground.  Ctrl-C (or SIGTERM) stops both.
#
#   nginx/run.sh [--builddir DIR] [--prefix DIR] [--port N]
#
# Everything lives under the prefix (a new temporary directory unless
# --prefix is given): nginx.conf, nginx's logs and temp files, the FastCGI
# socket, and the keystore when BM_DB_HOME is unset.  No system file is
# read or written but the nginx binary and the shipped configuration pieces
# next to this script.  BM_* variables and BOTMATIC_BASE_URL in the
# environment go to the server unchanged (BM_LISTEN is set to the socket
# nginx is given); BM_MODULES defaults to the build tree's example echo
# module.  Set NGINX to use another nginx binary.
set -u

usage() {
	sed -n '3,/^set -u/s/^# \{0,1\}//p' "$0"
}

die() {
	echo "run.sh: $*" >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
builddir=.
prefix=
port=8080
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) [ $# -ge 2 ] || die "--builddir needs a directory"
		builddir=$2; shift 2 ;;
	--builddir=*) builddir=${1#*=}; shift ;;
	--prefix) [ $# -ge 2 ] || die "--prefix needs a directory"
		prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--port) [ $# -ge 2 ] || die "--port needs a number"
		port=$2; shift 2 ;;
	--port=*) port=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

case $port in
'' | *[!0-9]*) die "--port: not a number: $port" ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
	die "--port: out of range: $port"
fi

builddir=$(cd "$builddir" 2>/dev/null && pwd) || die "no directory $builddir"
server=$builddir/botmatic-fcgi
[ -x "$server" ] || die "no botmatic-fcgi in $builddir: run make there, or pass --builddir"

nginx=${NGINX:-$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || die "nginx not found: install it or set NGINX"

own_prefix=
if [ -z "$prefix" ]; then
	prefix=$(mktemp -d "${TMPDIR:-/tmp}/botmatic-run.XXXXXX") || die "mktemp failed"
	own_prefix=1
else
	mkdir -p "$prefix" || die "cannot create $prefix"
fi
prefix=$(cd "$prefix" && pwd)
mkdir -p "$prefix/temp" || die "cannot create $prefix/temp"

app_pid=
nginx_pid=

# stop PID SIGNAL: signal one child of ours, give it 15 s, then SIGKILL.
stop() {
	local pid=$1 sig=$2 i=0
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "run.sh: pid $pid did not stop: SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	trap - INT TERM EXIT
	stop "$nginx_pid" QUIT
	nginx_pid=
	stop "$app_pid" TERM
	app_pid=
	if [ -n "$own_prefix" ] && [ "${BM_RUN_KEEP:-}" != 1 ]; then
		rm -rf "$prefix"
	else
		echo "run.sh: files kept in $prefix" >&2
	fi
}
trap 'echo "run.sh: stopping" >&2; cleanup; exit 0' INT TERM
trap cleanup EXIT

# --- the server ---------------------------------------------------------
sock=$prefix/botmatic.sock
export BM_LISTEN="$sock"
export BM_DB_HOME="${BM_DB_HOME:-$prefix/db}"
if [ -z "${BM_MODULES+set}" ] && [ -f "$builddir/app/modules/.libs/echo.so" ]; then
	export BM_MODULES="$builddir/app/modules/.libs/echo.so"
fi
rm -f "$sock"
"$server" &
app_pid=$!
i=0
until [ -S "$sock" ]; do
	kill -0 "$app_pid" 2>/dev/null || { app_pid=; die "botmatic-fcgi exited (see above)"; }
	[ "$i" -lt 100 ] || die "botmatic-fcgi did not create $sock"
	sleep 0.1
	i=$((i + 1))
done

# --- nginx ----------------------------------------------------------------
user=
[ "$(id -u)" -eq 0 ] && user="user root;"   # workers must reach the socket
cat >"$prefix/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
$user
error_log $prefix/nginx-error.log info;
pid $prefix/nginx.pid;

events {
    worker_connections 256;
}

http {
    access_log $prefix/nginx-access.log;
    client_body_temp_path $prefix/temp/client_body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    default_type application/octet-stream;

    server {
        listen 127.0.0.1:$port;
        server_name localhost;

        include $here/botmatic-errors.conf;

        location / {
            fastcgi_pass unix:$sock;
            include $here/botmatic-fastcgi.conf;
        }
    }
}
EOF
# -e (nginx >= 1.19.5): the startup error log, instead of the compiled-in
# /var/log/nginx/error.log.
eflag=
"$nginx" -h 2>&1 | grep -q -- '-e filename' && eflag="-e $prefix/nginx-error.log"
# shellcheck disable=SC2086
"$nginx" $eflag -p "$prefix/" -c "$prefix/nginx.conf" &
nginx_pid=$!
i=0
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
	if ! kill -0 "$nginx_pid" 2>/dev/null; then
		nginx_pid=
		tail -n 5 "$prefix/nginx-error.log" >&2
		die "nginx exited (port $port in use?)"
	fi
	[ "$i" -lt 100 ] || die "nginx did not listen on 127.0.0.1:$port"
	sleep 0.1
	i=$((i + 1))
done

url=http://127.0.0.1:$port${BM_ENDPOINT:-/}
cat <<EOF
botmatic-fcgi is ready at $url (server pid $app_pid, nginx pid $nginx_pid)
  files: $prefix (nginx logs, socket)${own_prefix:+, removed on exit (--prefix DIR keeps them)}
  keystore: $BM_DB_HOME
  modules: ${BM_MODULES:-none}
Try:
  curl -sS -H 'Authorization: Bearer my-token' -H 'Content-Type: application/json' \\
       -d '{"action":"echo","data":{"hello":"world"}}' $url
EOF
if [ "${BM_AUTH:-installed}" != any ]; then
	cat <<EOF
  (BM_AUTH=${BM_AUTH:-installed}: a token is accepted once a Botmatic-validated
   install recorded it; for a local try, run with BM_AUTH=any)
EOF
fi
echo "Ctrl-C stops both."

# Foreground until a signal, or until either child exits on its own.
wait -n "$app_pid" "$nginx_pid"
status=$?
echo "run.sh: a child exited (status $status), stopping" >&2
exit 1
