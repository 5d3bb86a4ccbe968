"""bmtest - what the botmatic-fcgi integration tests share.

Standard library only (Debian's python3).  A test script does:

    import bmtest
    t = bmtest.Test()                 # tempdir, cleanup, TAP
    srv = t.server(env={...})         # botmatic-fcgi on <tmp>/app.sock
    ngx = t.nginx(srv)                # a real nginx in front of it
    r = ngx.post({"action": "echo"}, token="...")
    t.ok(r.status == 200, "echo answers 200")
    t.done()

TAP: every check prints "ok N - name" or "not ok N - name"; diagnostics are
"# ..." lines.  The exit status is 0 unless the script itself breaks: a
Python exception exits 1 after printing it as diagnostics, and the TAP
driver reports that as an ERROR.  Everything a test starts (nginx, Apache,
the server, stand-in HTTP servers) is stopped by PID when the test ends,
whatever the way it ends; the tempdir is removed unless BM_TEST_LEAVE=1.

Environment read here (set by `make check`):
  BM_TEST_BUILDDIR  the build tree (botmatic-fcgi, modules)
  BM_TEST_SRCDIR    the source tree (nginx/ configuration pieces)
  BM_TEST_NGINX     nginx binary; a test that needs it SKIPs without it
  BM_TEST_APACHE    apache2 binary; likewise
  BM_TEST_REDIS     redis-server binary (default: PATH); likewise
  BM_TEST_LEAVE=1   keep the tempdir (its path is printed)
"""

import atexit
import http.client
import http.server
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def diag(msg):
    """Print msg as TAP diagnostics, one "# " line per line."""
    for line in str(msg).splitlines() or [""]:
        _out("# " + line)


def skip_all(reason):
    """Skip the whole test: prints "1..0 # SKIP reason" and exits 0."""
    _out("1..0 # SKIP " + reason)
    sys.stdout.flush()
    os._exit(0)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, taken
    at random below the kernel's ephemeral range: a port bind(0) gives
    is one the kernel may hand the next outgoing connection of any
    process (and the tests make thousands), before our server binds it."""
    low = _ephemeral_low()
    rnd = random.SystemRandom()
    for _ in range(64) if low > 12000 else ():
        port = rnd.randrange(10000, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.02):
    """Polls pred() until it returns a true value (returned) or timeout
    seconds pass (returns the last false value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _proc_read(pid, name):
    """/proc/<pid>/<name> as bytes, or None when it cannot be read."""
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except OSError:
        return None


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children_of(pid):
    """The PIDs of pid's children (from /proc/<pid>/task/<pid>/children,
    or by scanning /proc when the kernel lacks that file)."""
    kids = _proc_read(pid, "task/%d/children" % pid)
    if kids is not None:
        return sorted(int(x) for x in kids.split())
    out = []
    for p in _all_pids():
        stat = _proc_read(p, "stat")
        if stat and int(stat[stat.rindex(b")") + 2:].split()[1]) == pid:
            out.append(p)
    return sorted(out)


def _stat_fields(pid):
    """(comm, state) of pid, or None when it is gone."""
    stat = _proc_read(pid, "stat")
    if not stat:
        return None
    i, j = stat.index(b"("), stat.rindex(b")")
    return stat[i + 1:j].decode(errors="replace"), stat[j + 2:j + 3].decode()


def live_children_of(pid, comm=None):
    """pid's children that have not exited (zombies, not yet reaped, are
    left out), only those named comm when given: a master names each
    child for its kind (bm-responder, bm-delivery, bm-purge, bm-tool)."""
    out = []
    for k in children_of(pid):
        f = _stat_fields(k)
        if f and f[1] != "Z" and (comm is None or f[0] == comm):
            out.append(k)
    return out


def procs_with_env(name, value):
    """PIDs of live processes whose environment holds name=value (only
    those this user may read): how a test finds the servers a web server
    or a script started for it."""
    want = ("%s=%s" % (name, value)).encode()
    return sorted(p for p in _all_pids()
                  if want in (_proc_read(p, "environ") or b"").split(b"\0")
                  and pid_alive(p))


# ---------------------------------------------------------------- HTTP client

class Response:
    """An HTTP answer: status (int), headers (case-insensitive .get),
    body (bytes)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def ctype(self):
        """The Content-Type header, or ""."""
        return self.headers.get("Content-Type", "") or ""

    @property
    def is_json_type(self):
        """True when Content-Type is application/json (parameters allowed)."""
        return self.ctype.split(";")[0].strip().lower() == "application/json"

    def json(self):
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def __repr__(self):
        body = self.body if len(self.body) < 300 else self.body[:300] + b"..."
        return "<%d %s %r>" % (self.status, self.ctype, body)


def http_request(port, method, path, body=None, token=None, headers=None,
                 content_type="application/json", host="127.0.0.1",
                 timeout=30):
    """One HTTP/1.1 request on a new connection; returns a Response.

    body: bytes, str, or any other value sent as JSON.  token adds
    "Authorization: Bearer <token>".  content_type None sends none.
    http.client adds Content-Length (0 for a POST without body)."""
    hdrs = {}
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body).encode("utf-8")
    elif isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None and content_type is not None:
        hdrs["Content-Type"] = content_type
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


def http_raw(port, method, path, headers=(), body=b"", chunks=None,
             host="127.0.0.1", timeout=30):
    """A request sent exactly as given: headers is a list of (name, value)
    pairs and nothing is added but Host, so a POST can lack Content-Length.
    chunks, a list of bytes, sends the body with Transfer-Encoding: chunked
    (add that header yourself).  A body the server stops reading (413) is
    not an error: the answer is still read.  Returns a Response."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        try:
            if chunks is not None:
                for c in chunks:
                    conn.send(b"%x\r\n%s\r\n" % (len(c), c))
                conn.send(b"0\r\n\r\n")
            elif body:
                conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.getresponse()
        return Response(r.status, r.headers, r.read())
    finally:
        conn.close()


# ------------------------------------------------------------ FastCGI client

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN = 1, 3, 4, 5
FCGI_STDOUT, FCGI_STDERR = 6, 7


def _fcgi_record(rtype, content, req_id=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBx", 1, rtype, req_id, len(content), pad) + \
        content + b"\0" * pad


def _fcgi_len(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 1 << 31)


def fcgi_request(addr, params, body=b"", timeout=30):
    """One FastCGI responder request straight to the app's socket, without a
    web server.  addr: a unix socket path, or a (host, port) pair.  params:
    dict of CGI variables, str or bytes (CONTENT_LENGTH is added from body
    when missing).
    Returns a Response built from the CGI answer (Status: header, default
    200)."""
    params = dict(params)
    params.setdefault("CONTENT_LENGTH", str(len(body)))
    enc = b""
    for k, v in params.items():
        # bytes go as they are (a test may send bytes that are not UTF-8)
        k, v = k.encode(), v if isinstance(v, bytes) else str(v).encode()
        enc += _fcgi_len(len(k)) + _fcgi_len(len(v)) + k + v
    msg = _fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0))
    for i in range(0, len(enc), 65535):
        msg += _fcgi_record(FCGI_PARAMS, enc[i:i + 65535])
    msg += _fcgi_record(FCGI_PARAMS, b"")
    for i in range(0, len(body), 65535):
        msg += _fcgi_record(FCGI_STDIN, body[i:i + 65535])
    msg += _fcgi_record(FCGI_STDIN, b"")
    out = b""
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(msg)
        buf = b""
        done = False
        while not done:
            data = s.recv(65536)
            if not data:
                break
            buf += data
            while len(buf) >= 8:
                _, rtype, _, clen, pad = struct.unpack("!BBHHBx", buf[:8])
                if len(buf) < 8 + clen + pad:
                    break
                content = buf[8:8 + clen]
                buf = buf[8 + clen + pad:]
                if rtype == FCGI_STDOUT:
                    out += content
                elif rtype == FCGI_END_REQUEST:
                    done = True
    if not done:
        raise ConnectionError("FastCGI connection closed before END_REQUEST")
    m = re.search(rb"\r?\n\r?\n", out)
    head, body = (out[:m.start()], out[m.end():]) if m else (out, b"")
    msg = http.client.parse_headers(io.BytesIO(
        b"\r\n".join(re.split(rb"\r?\n", head)) + b"\r\n\r\n"))
    status = int((msg.get("Status") or "200").split()[0])
    return Response(status, msg, body)


def fcgi_webhook(addr, body, token=None, method="POST", path="/",
                 content_type="application/json"):
    """A webhook straight over FastCGI, with the CGI variables nginx's
    botmatic-fastcgi.conf sends.  body: bytes, or a value sent as JSON."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    params = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": path, "REQUEST_URI": path,
        "DOCUMENT_URI": path, "QUERY_STRING": "", "CONTENT_TYPE":
        content_type, "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE":
        "CGI/1.1", "SERVER_SOFTWARE": "bmtest", "SERVER_NAME": "localhost",
        "SERVER_ADDR": "127.0.0.1", "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "REQUEST_SCHEME": "http", "HTTP_HOST": "localhost",
        "REQUEST_ID": "%032x" % int(time.time() * 1e6)}
    if token is not None:
        params["HTTP_AUTHORIZATION"] = "Bearer " + token
    return fcgi_request(addr, params, body)


# ---------------------------------------------------- recording stand-in

class Recorded:
    """One request a StandIn received."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path          # without the query string
        self.query = query        # dict: name -> list of values
        self.headers = headers    # http.client.HTTPMessage
        self.body = body          # bytes

    def form(self):
        """The body parsed as application/x-www-form-urlencoded."""
        return urllib.parse.parse_qs(self.body.decode("utf-8", "replace"),
                                     keep_blank_values=True)

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def __repr__(self):
        return "<%s %s %r>" % (self.method, self.path, self.body[:200])


class _StandInHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.owner.lock:
            self.server.owner.conns.add(self.connection)

    def finish(self):
        with self.server.owner.lock:
            self.server.owner.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):
        pass

    def _serve(self):
        owner = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        rec = Recorded(self.command, url.path,
                       urllib.parse.parse_qs(url.query,
                                             keep_blank_values=True),
                       self.headers, body)
        with owner.lock:
            owner.requests.append(rec)
            routes = list(owner.routes)
        status, payload, delay = 404, {"error": "no canned response"}, 0
        for method, rx, answer in routes:
            if method in (self.command, "*") and rx.fullmatch(url.path):
                status, payload, delay = answer(rec) if callable(answer) \
                    else answer
                break
        if delay:
            time.sleep(delay)
        if isinstance(payload, tuple):      # (content type, bytes or str)
            ctype, data = payload
            data = data.encode() if isinstance(data, str) else data
        elif isinstance(payload, bytes):
            data, ctype = payload, "application/octet-stream"
        elif isinstance(payload, str):
            data, ctype = payload.encode(), "text/plain"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class StandIn:
    """A recording HTTP server on 127.0.0.1:<port> in a thread, standing in
    for Botmatic or the external service.

    route(method, path_regex, status, body, delay) adds a canned answer
    (the first matching route wins; body: dict/list sent as JSON, str, or
    bytes, or a (content type, str or bytes) pair; method "*" matches
    any).  route(method, rx, fn) answers with
    fn(recorded) -> (status, body, delay).  .requests lists every request
    received (Recorded), .url is the base URL."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.requests = []
        self.routes = []
        self.conns = set()      # open client connections (keep-alive)
        self.lock = threading.Lock()
        self.httpd = None
        self.thread = None

    def route(self, method, path_rx, status=200, body=None, delay=0):
        rx = re.compile(path_rx)
        answer = status if callable(status) else \
            (status, {} if body is None else body, delay)
        with self.lock:
            self.routes.append((method, rx, answer))
        return self

    def start(self):
        socketserver.TCPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", self.port), _StandInHandler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stops serving: closes the port (new connections are refused) and
        every kept-alive connection (a client reusing one gets an error)."""
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None
            with self.lock:
                conns = list(self.conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def received(self, method=None, path=None):
        """The requests received so far, filtered by method and exact path."""
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and
                    (path is None or r.path == path)]

    def clear(self):
        with self.lock:
            self.requests.clear()


def botmatic_standin(tokens):
    """A StandIn answering like Botmatic's token validation:
    POST /api/integrationtokens/validate with form field token answers
    {"success":true} for a token in tokens (a set, may change later),
    {"success":false} otherwise.  Not started."""
    s = StandIn()

    def validate(rec):
        got = rec.form().get("token", [None])
        ok = len(got) == 1 and got[0] in tokens
        return 200, {"success": ok}, 0
    s.route("POST", r"/api/integrationtokens/validate", validate)
    s.route("POST", r"/api/properties", 201, {"success": True})
    return s


# ------------------------------------------------------------- processes

class Proc:
    """A child process started with subprocess, stopped by its PID only."""

    def __init__(self, name, argv, env, stdout, stderr, **popen_kw):
        self.name = name
        self.argv = argv
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        self.popen = subprocess.Popen(argv, env=env, stdout=stdout,
                                      stderr=stderr, **popen_kw)
        self.pid = self.popen.pid
        self.status = None

    def alive(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        """The exit status (negative: killed by that signal), or None when
        still running after timeout seconds."""
        try:
            self.status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.status

    def kill(self, sig):
        """Sends sig to the process while it runs."""
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends sig, waits up to timeout seconds, then SIGKILL.  Returns the
        exit status; .killed tells whether SIGKILL was needed."""
        self.killed = False
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                self.killed = True
                diag("%s (pid %d) did not stop in %ds: SIGKILL" %
                     (self.name, self.pid, timeout))
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        self.status = self.popen.returncode
        return self.status


class Server:
    """botmatic-fcgi from the build tree on a unix socket in the tempdir."""

    def __init__(self, test, env=None, name="server"):
        self.test = test
        self.name = name
        self.binary = os.path.join(test.builddir, "botmatic-fcgi")
        sfx = "" if name == "server" else "-" + name
        self.sock = os.path.join(test.tmp, "app%s.sock" % sfx)
        self.log_path = os.path.join(test.tmp, name + ".log")
        self.db = os.path.join(test.tmp, "db" + sfx)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("BM_", "BOTMATIC_"))}
        self.env.update({
            "BM_LISTEN": self.sock,
            "BM_LISTEN_MODE": "0666",
            "BM_DB_HOME": self.db,
            "BM_WORKERS": "2",
            "BM_LOG_LEVEL": "debug",
            "BM_SHUTDOWN_TIMEOUT": "10",
        })
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = str(v)
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, wait=True, timeout=20, argv=None, **popen_kw):
        """Starts the server (stderr to <tmp>/<name>.log).  wait: until it
        logs "master: listening" and its responders exist; fails the test
        script (exception) when it exits or times out first.  argv and
        popen_kw (stdin, pass_fds...) change how it is started, e.g. with
        an inherited socket."""
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("no server binary at " + self.binary)
        if self.env.get("BM_LISTEN") == self.sock and \
                os.path.exists(self.sock):
            os.unlink(self.sock)
        self._log = open(self.log_path, "ab")
        self.proc = Proc(self.name, argv or [self.binary], self.env,
                         subprocess.DEVNULL, self._log, **popen_kw)
        self.test._cleanup.append(self.stop)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        """Waits for the listening line and every responder."""
        workers = int(self.env.get("BM_WORKERS", "1"))
        ok = wait_until(lambda: not self.proc.alive() or (
            self.grep(r"master: listening on ") and
            len(self.responders()) >= workers), timeout)
        if not self.proc.alive() or not ok:
            diag(self.log())
            raise RuntimeError("%s did not start (status %s)" %
                               (self.name, self.proc.popen.poll()))

    def run_to_exit(self, timeout=20):
        """Starts the server expecting it to exit by itself (a refused
        configuration).  Returns the exit status, None if still running
        after timeout (then it is stopped)."""
        self.start(wait=False)
        st = self.proc.wait(timeout)
        if st is None:
            self.stop()
        return st

    def log(self):
        """The whole log so far, as text."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """A position in the log, for grep/wait_log(since=...)."""
        return len(self.log())

    def grep(self, rx, since=0):
        """The log lines after since matching regex rx (re.search)."""
        r = re.compile(rx)
        return [l for l in self.log()[since:].splitlines() if r.search(l)]

    def wait_log(self, rx, timeout=10, since=0, count=1):
        """Waits until count log lines after since match rx; returns them
        (possibly fewer on timeout)."""
        wait_until(lambda: len(self.grep(rx, since)) >= count, timeout)
        return self.grep(rx, since)

    def responders(self):
        """The master's responders (not its delivery processes, nor a
        purge or tool command passing by), by PID."""
        if not self.proc or not self.proc.alive():
            return []
        return live_children_of(self.proc.pid, "bm-responder")

    def children(self):
        """Every live child of the master, by PID."""
        if not self.proc or not self.proc.alive():
            return []
        return live_children_of(self.proc.pid)

    def kill(self, sig):
        """Sends sig to the master."""
        self.proc.kill(sig)

    def stop(self, timeout=20):
        """SIGTERM to the master, wait, SIGKILL after timeout; returns its
        exit status (None when it was never started)."""
        if not self.proc:
            return None
        kids = children_of(self.proc.pid) if self.proc.alive() else []
        st = self.proc.stop(signal.SIGTERM, timeout)
        for k in kids:      # a responder that outlived a SIGKILLed master
            if wait_until(lambda: not pid_alive(k), 5) is False:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not self._log.closed:
            self._log.close()
        return st

    def sanitizer_reports(self):
        """Lines of the log written by ASan/UBSan/LSan/valgrind."""
        return self.grep(r"(ERROR: (Address|Leak)Sanitizer|runtime error:"
                         r"|==\d+== (Invalid|Conditional))")


class WebServer:
    """What nginx and Apache wrappers share: the port and HTTP helpers."""

    endpoint = "/"

    def request(self, method, path=None, body=None, **kw):
        return http_request(self.port, method,
                            self.endpoint if path is None else path,
                            body, **kw)

    def post(self, body, token=None, path=None, **kw):
        """POST body (JSON unless bytes/str) to the endpoint."""
        return self.request("POST", path, body, token=token, **kw)

    def raw(self, method, path=None, headers=(), **kw):
        hdrs = list(headers)
        return http_raw(self.port, method,
                        self.endpoint if path is None else path, hdrs, **kw)

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, self.endpoint)

    def _launch(self, name, argv, env, timeout):
        """Starts the web server (output to <dir>/stderr.log) and waits for
        its port; on failure prints its logs and raises."""
        self._out = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = Proc(name, argv, env, self._out, self._out)
        self.test._cleanup.append(self.stop)
        up = wait_until(lambda: not self.proc.alive() or
                        _port_open(self.port), timeout)
        if not self.proc.alive() or not up:
            diag(_read(os.path.join(self.dir, "stderr.log")))
            diag(_read(self.error_log))
            raise RuntimeError("%s did not start" % name)
        return self

    def _halt(self, sig, timeout):
        """Stops it by PID with sig (SIGKILL after timeout); its status."""
        if self.proc:
            st = self.proc.stop(sig, timeout)
            self._out.close()
            return st
        return None


class Nginx(WebServer):
    """A real nginx in the tempdir, in front of a Server's socket, running
    the shipped nginx/botmatic-fastcgi.conf and nginx/botmatic-errors.conf.

    body_limit replaces the shipped client_max_body_size (e.g. "10m").
    limit_rate includes the shipped nginx/botmatic-limits.conf with that
    rate (e.g. "1r/m") and loopback no longer exempt, and limits the
    location with it (no burst)."""

    def __init__(self, test, app_sock, body_limit=None, name="nginx",
                 limit_rate=None):
        self.test = test
        self.binary = os.environ.get("BM_TEST_NGINX", "")
        self.dir = os.path.join(test.tmp, name)
        self.port = free_port()
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, "temp", d), exist_ok=True)
        piece = test.src_file("nginx", "botmatic-fastcgi.conf")
        errors = test.src_file("nginx", "botmatic-errors.conf")
        if body_limit is not None:
            with open(piece) as f:
                text = f.read()
            text, n = re.subn(r"(?m)^(\s*client_max_body_size\s+)\S+;",
                              r"\g<1>%s;" % body_limit, text)
            if n != 1:
                raise RuntimeError("botmatic-fastcgi.conf: %d "
                                   "client_max_body_size lines" % n)
            piece = os.path.join(self.dir, "botmatic-fastcgi.conf")
            with open(piece, "w") as f:
                f.write(text)
        limits_http = limits_loc = ""
        if limit_rate is not None:
            with open(test.src_file("nginx", "botmatic-limits.conf")) as f:
                text = f.read()
            text, n = re.subn(r"rate=\S+;", "rate=%s;" % limit_rate, text)
            text, m = re.subn(r"(?m)^\s*(127\.0\.0\.1|::1)\s+\"\";\n", "",
                              text)
            if n != 1 or m != 2:
                raise RuntimeError("botmatic-limits.conf: %d rates, %d "
                                   "loopback lines" % (n, m))
            lim = os.path.join(self.dir, "botmatic-limits.conf")
            with open(lim, "w") as f:
                f.write(text)
            limits_http = "include %s;" % lim
            limits_loc = "limit_req zone=botmatic_unknown;"
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.conf = os.path.join(self.dir, "nginx.conf")
        temp = os.path.join(self.dir, "temp")
        with open(self.conf, "w") as f:
            f.write("""\
daemon off;
master_process on;
worker_processes 1;
%(user)s
error_log %(dir)s/error.log info;
pid %(dir)s/nginx.pid;

events {
    worker_connections 256;
}

http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(temp)s/client_body;
    proxy_temp_path %(temp)s/proxy;
    fastcgi_temp_path %(temp)s/fastcgi;
    uwsgi_temp_path %(temp)s/uwsgi;
    scgi_temp_path %(temp)s/scgi;
    default_type application/octet-stream;
    %(limits_http)s

    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;

        include %(errors)s;

        location / {
            %(limits_loc)s
            fastcgi_pass unix:%(sock)s;
            include %(piece)s;
        }
    }
}
""" % {"user": "user root;" if IS_ROOT else "", "dir": self.dir,
                "temp": temp, "port": self.port, "errors": errors,
                "sock": app_sock, "piece": piece,
                "limits_http": limits_http, "limits_loc": limits_loc})

    def start(self, timeout=15):
        argv = [self.binary, "-p", self.dir + "/", "-c", self.conf]
        if _nginx_has_e(self.binary):
            argv[1:1] = ["-e", self.error_log]   # not /var/log/nginx
        return self._launch("nginx", argv, dict(os.environ), timeout)

    def stop(self):
        return self._halt(signal.SIGQUIT, 15)


_nginx_e_cache = {}


def _nginx_has_e(binary):
    """nginx >= 1.19.5 takes -e (the startup error log); older ones open
    their compiled-in path before reading the configuration."""
    if binary not in _nginx_e_cache:
        out = subprocess.run([binary, "-v"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT).stdout.decode()
        m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
        _nginx_e_cache[binary] = bool(m) and \
            tuple(int(x) for x in m.groups()) >= (1, 19, 5)
    return _nginx_e_cache[binary]


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ------------------------------------------------------------------- test

class Test:
    """One test script: TAP counters, a tempdir, and everything to stop.

    requires: names among "nginx", "apache", "server", "redis": SKIP the
    whole test when the program is not available."""

    def __init__(self, requires=("nginx", "server")):
        self.n = 0
        self.failed = 0
        self.planned = None
        self._cleanup = []
        self._cleaned = False
        self.builddir = os.environ.get("BM_TEST_BUILDDIR") or os.getcwd()
        self.srcdir = os.environ.get("BM_TEST_SRCDIR") or os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.nginx_bin = os.environ.get("BM_TEST_NGINX", "")
        self.apache_bin = os.environ.get("BM_TEST_APACHE", "")
        if "nginx" in requires and not _executable(self.nginx_bin):
            skip_all("nginx not found (set BM_TEST_NGINX)")
        if "apache" in requires and not _executable(self.apache_bin):
            skip_all("apache2 not found (set BM_TEST_APACHE)")
        if "server" in requires and not _executable(
                os.path.join(self.builddir, "botmatic-fcgi")):
            skip_all("botmatic-fcgi not built in " + self.builddir)
        if "redis" in requires and not redis_binary():
            skip_all("redis-server not found (install redis-server or set "
                     "BM_TEST_REDIS)")
        self.tmp = tempfile.mkdtemp(prefix="bmtest-")
        # Web server workers may run as another user (Apache as www-data):
        # they must reach the app's socket inside.
        os.chmod(self.tmp, 0o755)
        atexit.register(self._atexit)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        sys.excepthook = self._excepthook

    # --- TAP
    def plan(self, n):
        """Prints the plan "1..n" (call once, before or after the tests)."""
        self.planned = n
        _out("1..%d" % n)

    def ok(self, cond, name, *why, todo=None):
        """One test point; on failure the extra arguments are diagnostics.
        todo: a reason this point is expected to fail for now (TAP TODO:
        reported as XFAIL, and as XPASS, a failure, once it passes)."""
        self.n += 1
        name = name.replace("#", "\\#").replace("\n", " ")
        _out("%sok %d - %s%s" % ("" if cond else "not ", self.n, name,
                                 " # TODO " + todo if todo else ""))
        if not cond and not todo:
            self.failed += 1
            for w in why:
                diag("  " + (w if isinstance(w, str) else repr(w)))
        return bool(cond)

    def is_(self, got, expected, name):
        return self.ok(got == expected, name, "expected: %r" % (expected,),
                       "     got: %r" % (got,))

    def skip(self, reason, count=1):
        for _ in range(count):
            self.n += 1
            _out("ok %d # SKIP %s" % (self.n, reason))

    def diag(self, msg):
        diag(msg)

    def done(self):
        """Ends the test: prints the plan if none was printed, stops what
        was started, removes the tempdir.  Exit status 0 (failures are in
        the TAP lines)."""
        if self.planned is None:
            _out("1..%d" % self.n)
        elif self.planned != self.n:
            diag("planned %d tests but ran %d" % (self.planned, self.n))
        self.cleanup()
        sys.exit(0)

    # --- helpers
    def src_file(self, *parts):
        return os.path.join(self.srcdir, *parts)

    def build_file(self, *parts):
        return os.path.join(self.builddir, *parts)

    def module(self, name):
        """Path of a built module: "echo" (app/modules) or a fixture
        (tests/modules)."""
        for d in (("app", "modules", ".libs"), ("tests", "modules", ".libs")):
            p = self.build_file(*d, name + ".so")
            if os.path.exists(p):
                return p
        raise RuntimeError("module %s.so not built" % name)

    def server(self, env=None, name="server", start=True):
        """A Server, started (and ready) unless start is False."""
        s = Server(self, env, name)
        return s.start() if start else s

    def nginx(self, server_or_sock, body_limit=None, name="nginx",
              limit_rate=None):
        sock = server_or_sock if isinstance(server_or_sock, str) else \
            server_or_sock.sock
        return Nginx(self, sock, body_limit, name, limit_rate).start()

    def apache(self, server_or_sock=None, **kw):
        sock = server_or_sock if isinstance(server_or_sock, (str, type(None))) \
            else server_or_sock.sock
        return Apache(self, sock, **kw).start()

    def redis(self, name="redis", **kw):
        """A Redis of the test's own, started (see Redis)."""
        return Redis(self, name=name, **kw).start()

    def sentinel(self, master, **kw):
        """A Sentinel monitoring master, started (see Sentinel)."""
        return Sentinel(self, master, **kw).start()

    def standin(self, port=None):
        s = StandIn(port).start()
        self._cleanup.append(s.stop)
        return s

    def botmatic(self, tokens):
        s = botmatic_standin(tokens).start()
        self._cleanup.append(s.stop)
        return s

    def defer(self, fn):
        """Runs fn() at cleanup, before what was started earlier."""
        self._cleanup.append(fn)

    # --- the end, whatever it is
    def cleanup(self):
        if self._cleaned:
            return
        self._cleaned = True
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception as e:     # keep stopping the rest
                diag("cleanup: %r" % (e,))
        if os.environ.get("BM_TEST_LEAVE") == "1":
            diag("left " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _atexit(self):
        self.cleanup()

    def _on_signal(self, signum, frame):
        diag("caught signal %d, stopping" % signum)
        self.cleanup()
        os._exit(1)

    def _excepthook(self, etype, value, tb):
        diag("test script died:")
        diag("".join(traceback.format_exception(etype, value, tb)))
        self.cleanup()
        sys.stdout.flush()
        os._exit(1)


def whsec(secret_hex):
    """The whsec_ text of an installation's secret (64 hex digits), as
    botmatic-keys secret show prints it."""
    import base64
    return "whsec_" + base64.b64encode(bytes.fromhex(secret_hex)).decode()


_wh_seq = [0]


def webhook_headers(secret, raw, msg_id=None, ts=None, extra_secrets=()):
    """Standard Webhooks headers signing raw (bytes) with secret (whsec_...
    or 64 hex digits): webhook-id (fresh unless given), webhook-timestamp
    (now unless given), webhook-signature naming one v1 signature per
    secret (secret, then extra_secrets)."""
    import base64
    import hashlib
    import hmac
    if msg_id is None:
        _wh_seq[0] += 1
        msg_id = "msg_%d_%d" % (os.getpid(), _wh_seq[0])
    if ts is None:
        ts = int(time.time())
    sigs = []
    for sec in (secret,) + tuple(extra_secrets):
        key = base64.b64decode(sec[6:]) if sec.startswith("whsec_") else \
            bytes.fromhex(sec)
        mac = hmac.new(key, b"%s.%d." % (msg_id.encode(), ts) + raw,
                       hashlib.sha256).digest()
        sigs.append("v1," + base64.b64encode(mac).decode())
    return [("webhook-id", msg_id), ("webhook-timestamp", str(ts)),
            ("webhook-signature", " ".join(sigs))]


def _executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


# ------------------------------------------------------------------ Apache

APACHE_MODULES = "/usr/lib/apache2/modules"


def apache_user():
    """The (user, group) Apache's children run as when started by root:
    www-data where it exists (Debian), else nobody."""
    import grp
    import pwd
    for user in ("www-data", "nobody"):
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            continue
        try:
            return user, grp.getgrgid(pw.pw_gid).gr_name
        except KeyError:
            return user, "#%d" % pw.pw_gid
    raise RuntimeError("no www-data or nobody user for Apache")


class Apache(WebServer):
    """Apache httpd (BM_TEST_APACHE) in the tempdir, run with -DFOREGROUND
    from a generated minimal httpd.conf that Includes the shipped
    nginx/apache-botmatic-fcgi.conf.

    defines: names for Define before the Include (BOTMATIC_SOCKET is set
    to the app socket); modules: the LoadModule names beyond the MPM and
    authz_core; body: configuration used instead of the Include (for a
    control run without the shipped file); extra: lines after it."""

    def __init__(self, test, app_sock=None, defines=None,
                 modules=("proxy", "proxy_fcgi"), body=None, extra="",
                 name="apache"):
        self.test = test
        self.binary = test.apache_bin
        self.dir = os.path.join(test.tmp, name)
        self.port = free_port()
        self.proc = None
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf = os.path.join(self.dir, "httpd.conf")
        moddir = os.environ.get("BM_TEST_APACHE_MODULES", APACHE_MODULES)
        loads = "\n".join(
            "LoadModule %s_module %s/mod_%s.so" % (m, moddir, m)
            for m in ("mpm_event", "authz_core") + tuple(modules))
        defs = dict(defines or {})
        if app_sock:
            defs.setdefault("BOTMATIC_SOCKET", app_sock)
        defs = "\n".join("Define %s %s" % (k, v) if v is not None else
                         "Define %s" % k for k, v in defs.items())
        if body is None:
            body = "Include %s" % test.src_file("nginx",
                                                "apache-botmatic-fcgi.conf")
        user = ""
        if IS_ROOT:     # Apache refuses to run its children as root
            user = "User %s\nGroup %s\n" % apache_user()
        with open(self.conf, "w") as f:
            f.write("""\
ServerRoot "%(dir)s"
DefaultRuntimeDir "%(dir)s/run"
PidFile "%(dir)s/httpd.pid"
ErrorLog "%(dir)s/error.log"
LogLevel info
Listen 127.0.0.1:%(port)d
ServerName 127.0.0.1
DocumentRoot "%(dir)s"
%(loads)s
%(user)s
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
CustomLog "%(dir)s/access.log" "%%h %%t \\"%%r\\" %%>s %%b"

%(defs)s
%(body)s
%(extra)s
""" % {"dir": self.dir, "port": self.port, "loads": loads, "user": user,
                "defs": defs, "body": body, "extra": extra})

    def start(self, timeout=20):
        argv = [self.binary, "-d", self.dir, "-f", self.conf, "-DFOREGROUND"]
        env = dict(os.environ)
        env.pop("BM_LISTEN", None)
        return self._launch("apache", argv, env, timeout)

    def stop(self):
        return self._halt(signal.SIGTERM, 20)


# ------------------------------------------------------------------- Redis

def redis_binary():
    """The redis-server to run: BM_TEST_REDIS (set by make check from
    configure), else the one on PATH or in /usr/bin; "" when none."""
    b = os.environ.get("BM_TEST_REDIS") or shutil.which("redis-server") \
        or "/usr/bin/redis-server"
    return b if _executable(b) else ""


class RespError(Exception):
    """An error reply (-ERR ...) from Redis."""


class Resp:
    """A tiny RESP2 client: enough to check what the server wrote and to
    write keys as another program (js-redis-key-store) would.  One
    connection, reopened after any error; cmd() returns str (bulk and
    simple strings, decoded as UTF-8 with replacement), int, None, or a
    list, and raises RespError on an error reply, OSError when Redis
    cannot be reached."""

    def __init__(self, host="127.0.0.1", port=6379, unix=None, timeout=10,
                 raw=False):
        self.addr = unix if unix else (host, port)
        self.timeout = timeout
        self.raw = raw          # bulk strings as bytes, undecoded
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _connect(self):
        family = socket.AF_UNIX if isinstance(self.addr, str) else \
            socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.addr)
        except OSError:
            s.close()
            raise
        self.sock, self.buf = s, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            return data if self.raw else data.decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line[:80])

    def cmd(self, *args):
        """Sends one command, returns its reply (RespError raised)."""
        enc = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            enc += b"$%d\r\n%s\r\n" % (len(a), a)
        for attempt in (0, 1):
            # A kept connection Redis closed since (a restart, a
            # failover's CLIENT KILL) is opened again once.
            stale = self.sock is not None and attempt == 0
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(enc)
                r = self._reply()
                break
            except (OSError, ValueError):
                self.close()
                if not stale:
                    raise
        if isinstance(r, RespError):
            raise r
        return r

    def try_cmd(self, *args):
        """cmd(), but any failure (error reply, Redis down) is None."""
        try:
            return self.cmd(*args)
        except (RespError, OSError):
            return None

    def scan_all(self, match="*"):
        """Every key of the selected database (SCAN, never KEYS)."""
        keys, cursor = [], "0"
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "MATCH", match,
                                     "COUNT", 1000)
            keys.extend(batch)
            if cursor in ("0", b"0"):
                return sorted(set(keys))

    def info(self, section):
        """INFO section as a dict of its name:value lines."""
        out = {}
        for line in (self.cmd("INFO", section) or "").splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out


class Redis:
    """A redis-server of the test's own: 127.0.0.1:<free port> and a unix
    socket in <tmp>/<name>/, never daemonized, no RDB snapshots (--save
    ''), AOF with appendfsync as given (None: no AOF), stopped by PID.
    restart() starts it again on the same port and directory (its AOF);
    args: more command-line options (e.g. ["--replicaof", host, port])."""

    def __init__(self, test, name="redis", appendfsync="always", args=(),
                 port=None):
        self.test = test
        self.name = name
        self.binary = redis_binary()
        self.port = port or free_port()
        self.dir = os.path.join(test.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.unix = os.path.join(self.dir, "redis.sock")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.appendfsync = appendfsync
        self.args = list(args)
        self.proc = None
        self._out = None
        self.client = Resp(port=self.port)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def argv(self):
        a = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--unixsocket", self.unix,
             "--unixsocketperm", "700", "--daemonize", "no",
             "--logfile", self.log_path, "--save", ""]
        if self.appendfsync:
            a += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            a += ["--appendonly", "no"]
        return a + self.args

    def start(self, timeout=30):
        """Starts it and waits until it answers PING (its AOF loaded)."""
        if not self.binary:
            raise RuntimeError("redis-server not found (BM_TEST_REDIS)")
        self._out = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = Proc(self.name, self.argv(), dict(os.environ),
                         self._out, self._out)
        self.test._cleanup.append(self.stop)
        ok = wait_until(lambda: not self.proc.alive() or
                        self.client.try_cmd("PING") == "PONG", timeout)
        if not self.proc.alive() or not ok:
            diag(_read(self.log_path))
            raise RuntimeError("%s did not start" % self.name)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def kill(self, sig=signal.SIGKILL):
        """Sends sig by PID and, for SIGKILL, waits until it is gone."""
        self.client.close()
        self.proc.kill(sig)
        if sig == signal.SIGKILL:
            self.proc.wait(30)

    def restart(self, timeout=30):
        """Starts it again on the same port and directory."""
        if self.proc and self.proc.alive():
            self.stop()
        return self.start(timeout)

    def stop(self):
        self.client.close()
        if self.proc and self.proc.popen.poll() is None:
            self.proc.stop(signal.SIGTERM, 20)
        if self._out and not self._out.closed:
            self._out.close()

    def cmd(self, *args):
        return self.client.cmd(*args)

    def log(self):
        return _read(self.log_path)


class Sentinel(Redis):
    """A Redis Sentinel (redis-server CONF --sentinel) from a generated
    configuration: it monitors master (a Redis) as master_name with quorum
    1, a short down-after-milliseconds and failover-timeout.  Its
    configuration file is its own (Sentinel rewrites it)."""

    def __init__(self, test, master, master_name="bm", name="sentinel",
                 down_ms=1000, failover_ms=5000):
        super().__init__(test, name=name, appendfsync=None)
        self.master_name = master_name
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
                    "logfile %s\nprotected-mode no\n"
                    "sentinel monitor %s 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds %s %d\n"
                    "sentinel failover-timeout %s %d\n"
                    "sentinel parallel-syncs %s 1\n" % (
                        self.port, self.dir, self.log_path, master_name,
                        master.port, master_name, down_ms, master_name,
                        failover_ms, master_name))

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def argv(self):
        return [self.binary, self.conf, "--sentinel"]

    def master_addr(self):
        """(host, port) of the master Sentinel names now, or None."""
        r = self.client.try_cmd("SENTINEL", "get-master-addr-by-name",
                                self.master_name)
        return (r[0], int(r[1])) if r else None


def redis_in_sync(master, replica):
    """True once replica is connected to master and has every byte of its
    replication stream (the offsets agree): a write acknowledged by the
    master before this is on the replica."""
    m = master.client.try_cmd("INFO", "replication") or ""
    r = replica.client.try_cmd("INFO", "replication") or ""
    mo = re.search(r"master_repl_offset:(\d+)", m)
    ro = re.search(r"slave_repl_offset:(\d+)", r)
    up = "master_link_status:up" in r
    return bool(mo and ro and up and int(mo.group(1)) == int(ro.group(1)))


# ------------------------------------------- an external contacts service

CONTACT_MAPPINGS = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "id_candidate", "transform": "int"}},
    {"botmatic": {"name": "email"}, "ext": {"name": "email"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
]


class ExtContacts:
    """A stateful fake of the generic REST consumer's contacts API
    (SPEC §4), on a StandIn: POST /contacts (an Idempotency-Key seen before
    gets the id it created), GET /contacts?email=, PUT and DELETE
    /contacts/{id}.  slow: seconds each request takes (counted in
    .flight); fail: (status, body, delay) answered to everything.
    .contacts maps id -> contact; .posts lists (email, Idempotency-Key) of
    every POST answered, in order; .arrived lists (method, email,
    Idempotency-Key) of every POST and lookup by email as it arrives
    (before the slow part: a caller killed meanwhile is in it)."""

    def __init__(self, test):
        self.lock = threading.Lock()
        self.contacts = {}
        self.next = 1
        self.keys = {}
        self.posts = []
        self.arrived = []
        self.slow = 0
        self.fail = None
        self.flight = 0
        self.si = test.standin()
        self.si.route("*", r"/contacts(/.*)?", self.handle)
        self.url = self.si.url

    def add(self, contact, cid=None):
        """Puts a contact in as if created on the service; its id."""
        with self.lock:
            cid = cid if cid is not None else self.next
            self.next = max(self.next, cid + 1)
            self.contacts[cid] = dict(contact, id_candidate=cid)
            return cid

    def by_email(self, email):
        with self.lock:
            return [c for c in self.contacts.values()
                    if c.get("email") == email]

    def handle(self, rec):
        with self.lock:
            self.flight += 1
            if rec.path == "/contacts" and rec.method in ("GET", "POST"):
                email = (rec.json() or {}).get("email") if \
                    rec.method == "POST" else \
                    rec.query.get("email", [None])[0]
                self.arrived.append((rec.method, email,
                                     rec.headers.get("Idempotency-Key")))
        try:
            if self.slow:
                time.sleep(self.slow)
            if self.fail:
                return self.fail
            return self._handle(rec)
        finally:
            with self.lock:
                self.flight -= 1

    def _handle(self, rec):
        parts = rec.path.strip("/").split("/")
        with self.lock:
            if rec.method == "POST" and parts == ["contacts"]:
                body = rec.json() or {}
                key = rec.headers.get("Idempotency-Key")
                self.posts.append((body.get("email"), key))
                if key and key in self.keys:
                    return 201, {"id_candidate": self.keys[key]}, 0
                cid = self.next
                self.next += 1
                self.contacts[cid] = dict(body, id_candidate=cid)
                if key:
                    self.keys[key] = cid
                return 201, {"id_candidate": cid}, 0
            if rec.method == "GET" and parts == ["contacts"]:
                email = rec.query.get("email", [None])[0]
                found = [c for c in self.contacts.values()
                         if email is not None and c.get("email") == email]
                return 200, found[:1], 0
            if len(parts) == 2 and parts[0] == "contacts" and \
                    parts[1].isdigit():
                cid = int(parts[1])
                if cid not in self.contacts:
                    return 404, {"error": "not found"}, 0
                if rec.method == "GET":
                    return 200, self.contacts[cid], 0
                if rec.method == "PUT":
                    self.contacts[cid].update(rec.json() or {})
                    return 200, {"ok": True}, 0
                if rec.method == "DELETE":
                    del self.contacts[cid]
                    return 204, b"", 0
        return 404, {"error": "unexpected"}, 0


def secret_key_file(test, name="secret.key"):
    """A BM_SECRET_KEY_FILE (32 random bytes, 0600) in the tempdir: every
    server sharing a Redis store is given the same one."""
    path = os.path.join(test.tmp, name)
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)
    return path


def redis_values(client):
    """Every key of client's selected database with its value (strings,
    and the members of hashes, lists, sets, sorted sets and streams,
    joined by NUL bytes) as bytes: what a scan for leaked secrets reads.
    Keys are bytes when client is raw (Resp(raw=True)), else text."""
    out = {}
    for k in client.scan_all():
        kind = client.try_cmd("TYPE", k)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            v = client.try_cmd("GET", k)
        elif kind == "hash":
            v = client.try_cmd("HGETALL", k)
        elif kind == "list":
            v = client.try_cmd("LRANGE", k, 0, -1)
        elif kind == "set":
            v = client.try_cmd("SMEMBERS", k)
        elif kind == "zset":
            v = client.try_cmd("ZRANGE", k, 0, -1, "WITHSCORES")
        elif kind == "stream":
            v = client.try_cmd("XRANGE", k, "-", "+")
        else:
            v = None
        out[k] = b"\0".join(_flat(v))
    return out


def _flat(v):
    """The bytes of every string in a RESP reply, depth first."""
    if isinstance(v, list):
        return [b for x in v for b in _flat(x)]
    if isinstance(v, bytes):
        return [v]
    return [] if v is None else [str(v).encode()]
