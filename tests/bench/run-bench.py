#!/usr/bin/env python3
"""run-bench.py - `make bench`: measures botmatic-fcgi the way it is run
(behind the real nginx, with the shipped configuration, on loopback) and
writes BENCHMARKS.md.

    run-bench.py [OUTPUT]        (default: BENCHMARKS.md of the source tree)

Reuses tests/integration/bmtest.py for the tempdir, the server, nginx and
the process handling (everything stopped by PID, the tempdir removed).

Environment (set by `make bench`):
  BM_TEST_BUILDDIR, BM_TEST_SRCDIR, BM_TEST_NGINX   as for the tests
  BENCH_WRK        wrk binary (Debian: apt-get install wrk)
  BENCH_VALGRIND   valgrind binary (the leak check is skipped without it)
  BENCH_QUICK=1    a short run: seconds per case, small store, for
                   developing this script; the file says it was quick
  BENCH_RUNS, BENCH_DURATION   override the runs per case and seconds per run

Phases: set-up (nginx with the shipped pieces, the server, a second one
with more responders, the FastCGI ceiling, an nginx server block standing
in for Botmatic's API and for the external service); one check request per
case; RSS at rest and after a warm-up; the wrk runs (shipped configuration,
then upstream keepalive at several settings); a low-traffic probe; a
syscall count and a perf profile of the responders (when strace and perf
are there); a mixed load until the server has answered a million requests;
RSS again; the server under valgrind; bench-store and bench-mapping; the
file.  About 20 minutes on 2 cores; BENCH_QUICK=1 about 2.

Nothing here asserts on time: a figure off its target is written down with
its cause, and the exit status is 0 unless the harness itself breaks or the
server answers wrongly.
"""

import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import threading
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import bmtest  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS") or (1 if QUICK else 3))
DURATION = int(os.environ.get("BENCH_DURATION") or (2 if QUICK else 10))
CONNS = 64
WRK_THREADS = 2
WRK_TIMEOUT = 5                # s; wrk counts a request older than this
WORKERS = 2                    # BM_WORKERS and the ceiling's responders
KEEPALIVE = (1, 8, 32, 64)     # upstream keepalive settings measured
MEM_TARGET = 20000 if QUICK else 1000000
WARMUP = 2 if QUICK else 10
MIXED_MIN = 2 if QUICK else 60  # seconds of mixed load at least
VG_SECONDS = 5 if QUICK else 20
STORE_ARGS = ["-n", "20000", "-t", "200000", "-i", "20000"] if QUICK \
    else []                    # bench-store's defaults: 200k, 10M, 1M
MAPPING_N = 10000 if QUICK else 100000

TOKEN = "tok-bench-5a1f0c9e7d2b"
BAD_TOKEN = "tok-not-installed-00000"
ECHO_BODY = '{"action":"echo","data":{"hello":"world"}}'
ECHO_ANSWER = '{"data":{"echo":{"hello":"world"}},"type":"data",' \
    '"success":true}'
UNKNOWN_BODY = '{"action":"nosuch","data":{"hello":"world"}}'
UPDATED_BODY = '{"event":"contact_updated","data":{"id":101,' \
    '"firstname":"Anna","lastname":"Lee","email":"ana@example.com",' \
    '"age":"33"}}'
# %d: a Botmatic id unique to each request (wrk's Lua request()).
CREATED_FMT = '{"event":"contact_created","data":{"id":%d,' \
    '"firstname":"Ana","lastname":"Lee","email":"c%d@example.com",' \
    '"age":"33"}}'

MAPPINGS = [
    # External ids are strings here: the stand-in makes them from nginx's
    # $request_id (32 hex digits), unique to every create.
    {"id": True, "botmatic": {"name": "id"}, "ext": {"name": "id_candidate"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
    {"botmatic": {"name": "lastname"}, "ext": {"name": "nom"}},
    {"botmatic": {"name": "email"}, "ext": {"name": "email",
                                            "transform": "lower"}},
    {"botmatic": {"name": "age", "type": "number"},
     "ext": {"name": "age", "transform": "int"}},
]


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    log(msg)
    sys.exit(1)


def loadavg():
    with open("/proc/loadavg") as f:
        return tuple(float(x) for x in f.read().split()[:3])


def cmd_out(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        return p.stdout.decode("utf-8", "replace").strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return "(%s: %s)" % (argv[0], e)


# ------------------------------------------------------------------ cases

class Case:
    """One wrk load: where it goes, what it sends, what must come back."""

    def __init__(self, key, label, port_attr, path, body=None, token=TOKEN,
                 dynamic=None, status=200, check=None, mode="shipped"):
        self.key = key
        self.label = label
        self.port_attr = port_attr   # resolved against the Bench instance
        self.path = path
        self.body = body
        self.token = token
        self.dynamic = dynamic       # a body format with %d (unique id)
        self.status = status         # every answer must have it
        self.check = check           # fn(Response) -> error text or None
        self.mode = mode


def lua_str(s):
    """s as a Lua long string of level 2 (the bodies hold no "]==]")."""
    assert "]==]" not in s and not s.endswith("]=")
    return "[==[" + s + "]==]"


LUA_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,' ..
    '"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,' ..
    '"p99":%d,"p999":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, math.floor(latency:percentile(50)),
    math.floor(latency:percentile(90)), math.floor(latency:percentile(99)),
    math.floor(latency:percentile(99.9)), latency.max, latency.mean))
end
"""

LUA_THREADS = r"""
nthreads = 0
tid = 0
n = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
"""


def lua_case(case, base):
    """The wrk script of a case; base makes the dynamic ids unique to the
    run (request n of thread t sends id base + t*1e8 + n)."""
    out = ['wrk.method = "POST"',
           'wrk.headers["Content-Type"] = "application/json"',
           'wrk.headers["Authorization"] = %s' % lua_str("Bearer " +
                                                        case.token)]
    if case.dynamic is None:
        out.append("wrk.body = %s" % lua_str(case.body))
    else:
        out.append(LUA_THREADS)
        out.append("fmt = %s" % lua_str(case.dynamic))
        out.append("function request()\n  n = n + 1\n"
                   "  local id = %d + tid * 100000000 + n\n"
                   "  return wrk.format(nil, nil, nil, "
                   "string.format(fmt, id, id))\nend" % base)
    out.append(LUA_DONE)
    return "\n".join(out) + "\n"


# The mixed load of the memory and valgrind phases: every answer the server
# gives under load, the failures included, in turn.
MIXED = [
    (TOKEN, ECHO_BODY),
    (TOKEN, UNKNOWN_BODY),
    (BAD_TOKEN, ECHO_BODY),
    (TOKEN, UPDATED_BODY),
    (TOKEN, None),                       # contact_created, unique id
    (TOKEN, '{"action":"echo","data":{"hello":'),      # 400 invalid JSON
    (TOKEN, '{"hello":"world"}'),        # 403 neither event nor action
    (TOKEN, '[1,2,3]'),                  # 400 not an object
]


def lua_mixed(base):
    out = [LUA_THREADS, "reqs = {}", "fmt = %s" % lua_str(CREATED_FMT)]
    for i, (tok, body) in enumerate(MIXED):
        hdr = '{["Content-Type"] = "application/json", ' \
            '["Authorization"] = %s}' % lua_str("Bearer " + tok)
        out.append("h%d = %s" % (i, hdr))
        if body is None:
            out.append("reqs[%d] = false" % (i + 1))
        else:
            out.append('reqs[%d] = wrk.format("POST", nil, h%d, %s)' %
                       (i + 1, i, lua_str(body)))
    out.append("""\
function request()
  n = n + 1
  local r = reqs[(n %% %d) + 1]
  if r then return r end
  local id = %d + tid * 100000000 + n
  return wrk.format("POST", nil, h%d, string.format(fmt, id, id))
end""" % (len(MIXED), base, [b for _, b in MIXED].index(None)))
    out.append(LUA_DONE)
    return "\n".join(out) + "\n"


def check_json(expected):
    def check(r):
        if r.json() != json.loads(expected):
            return "answered %r, expected %s" % (r, expected)
        return None
    return check


def check_created(r):
    j = r.json() or {}
    if not (j.get("success") is True and
            (j.get("data") or {}).get("success") is True and
            (j.get("data") or {}).get("id")):
        return "answered %r" % (r,)
    return None


def check_refused(r):
    if r.body != b"Not authorized":
        return "answered %r, expected Not authorized" % (r,)
    return None


SHIPPED_CASES = [
    Case("a", "(a) ceiling: nginx `return 200`, same body", "port_static",
         "/", ECHO_BODY, check=check_json(ECHO_ANSWER)),
    Case("b", "(b) FastCGI ceiling: libfcgi responder, fixed JSON",
         "port_shipped", "/ceiling", ECHO_BODY,
         check=check_json(ECHO_ANSWER)),
    Case("c", "(c) `echo` action", "port_shipped", "/", ECHO_BODY,
         check=check_json(ECHO_ANSWER)),
    Case("d", "(d) unknown action", "port_shipped", "/", UNKNOWN_BODY,
         check=check_json('{"success":false,"type":"data","data":{"error":'
                          '"No action \\"nosuch\\" defined"}}')),
    Case("e", "(e) refused token (401)", "port_shipped", "/", ECHO_BODY,
         token=BAD_TOKEN, status=401, check=check_refused),
    Case("f", "(f) `contact_updated`, known id", "port_shipped", "/",
         UPDATED_BODY, check=check_json(
             '{"data":{"success":true},"type":"data","success":true}')),
    Case("g", "(g) `contact_created`, new contact", "port_shipped", "/",
         dynamic=CREATED_FMT, check=check_created),
]


# A diagnostic beside the shipped cases: the same server with more
# responders than cores, for the handlers that wait on the network.
MORE_WORKERS = 8
MORE_CASES = [
    Case("b", "(b) FastCGI ceiling, %d responders" % MORE_WORKERS,
         "port_more", "/ceiling", ECHO_BODY, check=check_json(ECHO_ANSWER),
         mode="more"),
    Case("c", "(c) `echo`, BM_WORKERS=%d" % MORE_WORKERS, "port_more", "/",
         ECHO_BODY, check=check_json(ECHO_ANSWER), mode="more"),
    Case("f", "(f) `contact_updated`, BM_WORKERS=%d" % MORE_WORKERS,
         "port_more", "/", UPDATED_BODY, check=check_json(
             '{"data":{"success":true},"type":"data","success":true}'),
         mode="more"),
]


# The dynamic pool (issue 10): the server with the shipped defaults
# (BM_WORKERS=2, BM_WORKERS_MAX=64) against an external service that
# answers at once, after 50 ms, or never.  contact_updated at CONNS
# connections and, at the same time, echo at POOL_ECHO_CONNS.
POOL_MODES = [("now", 0), ("50 ms", 0.05), ("hung", -1)]
POOL_ECHO_CONNS = 4
POOL_DELAY_S = 0.05
POOL_TARGET_RPS = 906
POOL_WARMUP = 2                # s of contact_updated before the runs
MASTER_GROW_SERVICE_MS = 10    # app/server/master.c


def keepalive_cases(k):
    m = "ka%d" % k
    return [
        Case("b", "(b) FastCGI ceiling", "port_" + m, "/ceiling",
             ECHO_BODY, check=check_json(ECHO_ANSWER), mode=m),
        Case("c", "(c) `echo`", "port_" + m, "/", ECHO_BODY,
             check=check_json(ECHO_ANSWER), mode=m),
        Case("f", "(f) `contact_updated`", "port_" + m, "/", UPDATED_BODY,
             check=check_json('{"data":{"success":true},"type":"data",'
                              '"success":true}'), mode=m),
    ]


# ------------------------------------------------------------------ nginx

class BenchNginx(bmtest.Nginx):
    """bmtest's nginx (same tempdir layout, start and stop by PID), with a
    configuration of several server blocks: the static ceiling, the stand-in
    for Botmatic and the external service, the shipped pieces in front of
    the server and the FastCGI ceiling, and the same with upstream
    keepalive."""

    def __init__(self, test, b):
        super().__init__(test, b.srv.sock, name="nginx")
        self.b = b
        piece = test.src_file("nginx", "botmatic-fastcgi.conf")
        errors = test.src_file("nginx", "botmatic-errors.conf")
        with open(piece) as f:
            text = f.read()
        ka_text, n = re.subn(r"(?m)^(\s*fastcgi_keep_conn\s+)off;",
                             r"\g<1>on;", text)
        if n != 1:
            raise RuntimeError("botmatic-fastcgi.conf: %d fastcgi_keep_conn"
                               " lines" % n)
        ka_piece = os.path.join(self.dir, "botmatic-fastcgi-keepalive.conf")
        with open(ka_piece, "w") as f:
            f.write(ka_text)
        self.port = b.port_static
        temp = os.path.join(self.dir, "temp")
        upstreams, servers = [], []
        for k in KEEPALIVE:
            for name, sock in (("app", b.srv.sock), ("ceil", b.ceil_sock)):
                upstreams.append(
                    "    upstream %s_ka%d {\n        server unix:%s;\n"
                    "        keepalive %d;\n    }" % (name, k, sock, k))
        fcgi_server = """
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        include %(errors)s;
        location = /ceiling {
            fastcgi_pass %(ceil)s;
            include %(piece)s;
        }
        location / {
            fastcgi_pass %(app)s;
            include %(piece)s;
        }
    }"""
        servers.append("    # The shipped configuration: one connection "
                       "per request." + fcgi_server % {
                           "port": b.port_shipped, "errors": errors,
                           "ceil": "unix:" + b.ceil_sock,
                           "app": "unix:" + b.srv.sock, "piece": piece})
        for k in KEEPALIVE:
            servers.append(
                "    # Upstream keepalive %d (per nginx worker) with "
                "fastcgi_keep_conn on." % k + fcgi_server % {
                    "port": getattr(b, "port_ka%d" % k), "errors": errors,
                    "ceil": "ceil_ka%d" % k, "app": "app_ka%d" % k,
                    "piece": ka_piece})
        servers.append("""\
    # The server with BM_WORKERS=%(n)d (shipped configuration).
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        include %(errors)s;
        location = /ceiling {
            fastcgi_pass unix:%(ceil)s;
            include %(piece)s;
        }
        location / {
            fastcgi_pass unix:%(sock)s;
            include %(piece)s;
        }
    }""" % {"port": b.port_more, "errors": errors, "sock": b.more.sock,
            "piece": piece, "n": MORE_WORKERS, "ceil": b.ceil8_sock})
        servers.append("""\
    # The pool cases' server (shipped configuration).
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        include %(errors)s;
        location / {
            fastcgi_pass unix:%(sock)s;
            include %(piece)s;
        }
    }""" % {"port": b.port_pool, "errors": errors, "sock": b.pool_sock,
            "piece": piece})
        servers.append("""\
    # The server under valgrind (shipped configuration).
    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;
        include %(errors)s;
        location / {
            fastcgi_pass unix:%(sock)s;
            include %(piece)s;
        }
    }""" % {"port": b.port_vg, "errors": errors, "sock": b.vg_sock,
            "piece": piece})
        self.conf_text = """\
daemon off;
master_process on;
worker_processes %(workers)d;
%(user)s
error_log %(dir)s/error.log warn;
pid %(dir)s/nginx.pid;
worker_rlimit_nofile 16384;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %(temp)s/client_body;
    proxy_temp_path %(temp)s/proxy;
    fastcgi_temp_path %(temp)s/fastcgi;
    uwsgi_temp_path %(temp)s/uwsgi;
    scgi_temp_path %(temp)s/scgi;
    default_type application/octet-stream;

%(upstreams)s

    # (a) The ceiling: nginx answers itself, a body of the echo's size.
    server {
        listen 127.0.0.1:%(static)d;
        location / {
            default_type application/json;
            return 200 '%(answer)s';
        }
    }

    # Botmatic's API and the external service, answered at once by nginx:
    # token validation, properties, contact lookup by email ([]), create
    # (a new id each time: $request_id), update.
    server {
        listen 127.0.0.1:%(ext)d;
        default_type application/json;
        location = /api/integrationtokens/validate {
            return 200 '{"success":true}';
        }
        location = /api/properties {
            return 201 '{"success":true}';
        }
        location = /contacts {
            if ($request_method = POST) {
                return 201 '{"id_candidate":"$request_id"}';
            }
            return 200 '[]';
        }
        location /contacts/ {
            return 200 '{}';
        }
        location / {
            return 404 '{"error":"not found"}';
        }
    }

%(servers)s
}
""" % {"workers": b.nginx_workers,
            "user": "user root;" if bmtest.IS_ROOT else "",
            "dir": self.dir, "temp": temp, "upstreams": "\n".join(upstreams),
            "static": b.port_static, "answer": ECHO_ANSWER,
            "ext": b.port_ext, "servers": "\n\n".join(servers)}
        with open(self.conf, "w") as f:
            f.write(self.conf_text)

    def workers(self):
        return bmtest.children_of(self.proc.pid)

    def reload(self, timeout=90):
        """SIGHUP, then waits until the old workers are gone: they close
        the idle upstream connections they kept, which would otherwise pin
        responders for keepalive_timeout (60 s) into the next case.

        An old worker leaves only when its requests are answered, and a
        botmatic-fcgi responder does not read a request nginx sent on a
        kept connection until a new connection reaches the listening
        socket (see the low-traffic probe): requests on new connections
        (the shipped port) wake them meanwhile."""
        old = set(self.workers())
        self.proc.kill(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        pokes = 0
        while time.monotonic() < deadline:
            if not (old & set(self.workers())) and \
                    len(self.workers()) >= self.b.nginx_workers:
                return pokes
            try:
                bmtest.http_request(self.b.port_shipped, "POST", "/",
                                    ECHO_BODY, token=TOKEN, timeout=2)
                pokes += 1
            except OSError:
                pass
            time.sleep(0.05)
        log("nginx reload: old workers still there after %ds" % timeout)
        self.b.problems.append("nginx reload: old workers still busy after "
                               "%d s" % timeout)
        return pokes


# ------------------------------------------------------------------ memory

def proc_mem(pid, db_dir=None):
    """VmRSS, RssAnon, RssFile, RssShmem in kB from /proc/<pid>/status,
    and "db": the RSS of the mappings of files under db_dir (the Berkeley
    DB environment's regions and databases) from /proc/<pid>/smaps."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0])
        if db_dir:
            db = 0
            in_db = False
            with open("/proc/%d/smaps" % pid) as f:
                for line in f:
                    if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                        parts = line.split(None, 5)
                        in_db = len(parts) == 6 and \
                            parts[5].strip().startswith(db_dir + "/")
                    elif in_db and line.startswith("Rss:"):
                        db += int(line.split()[1])
            out["db"] = db
    except OSError:
        pass
    return out


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return 0
    fields = st[st.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ bench

class Bench:

    def __init__(self, out_path):
        self.out_path = out_path
        self.t = bmtest.Test(requires=())
        self.t0 = time.monotonic()
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_start = loadavg()
        self.loads = []
        self.results = {}        # (mode, key) -> [run dicts]
        self.problems = []       # what went wrong, for the file and report
        self.app_requests = 0    # answered by the server under test
        self.nginx_workers = os.cpu_count() or 2
        self.wrk = os.environ.get("BENCH_WRK") or ""
        self.valgrind = os.environ.get("BENCH_VALGRIND") or ""
        t = self.t
        for prog in ("botmatic-fcgi", "botmatic-keys", "fcgi-ceiling",
                     "bench-store", "bench-mapping"):
            if not os.access(t.build_file(prog), os.X_OK):
                die("%s not built in %s (make bench builds it)" %
                    (prog, t.builddir))
        if not bmtest._executable(t.nginx_bin):
            die("nginx not found (BM_TEST_NGINX); on Debian: "
                "apt-get install nginx-light")
        if not bmtest._executable(self.wrk):
            die("wrk not found (BENCH_WRK); on Debian: apt-get install wrk")
        for name in ("ext", "static", "shipped", "vg", "more", "pool") + tuple(
                "ka%d" % k for k in KEEPALIVE):
            setattr(self, "port_" + name, bmtest.free_port())
        self.ceil_sock = os.path.join(t.tmp, "ceiling.sock")
        self.ceil8_sock = os.path.join(t.tmp, "ceiling-more.sock")
        self.vg_sock = os.path.join(t.tmp, "app-vg.sock")
        self.pool_sock = os.path.join(t.tmp, "app-pool.sock")
        self.mapfile = os.path.join(t.tmp, "mappings.json")
        with open(self.mapfile, "w") as f:
            json.dump(MAPPINGS, f)
        ext = "http://127.0.0.1:%d" % self.port_ext
        self.srv_env = {
            "BM_WORKERS": str(WORKERS), "BM_LOG_LEVEL": "info",
            "BM_MODULES": t.module("echo"), "BM_MAPPINGS": self.mapfile,
            "BM_EXT_BASE_URL": ext, "BOTMATIC_BASE_URL": ext,
            "BM_SHUTDOWN_TIMEOUT": "10"}
        self.srv = t.server(self.srv_env, start=False)
        self.more = t.server(dict(self.srv_env,
                                  BM_WORKERS=str(MORE_WORKERS)),
                             name="more", start=False)
        self.ceil = None
        self.ceil8 = None
        self.ngx = None
        self.vg = None

    # --- set-up
    def start(self):
        t = self.t
        log("starting the server, the FastCGI ceiling and nginx in %s" %
            t.tmp)
        self.srv.start()
        ceil_log = open(os.path.join(t.tmp, "ceiling.log"), "ab")
        t.defer(ceil_log.close)
        for attr, sock, n in (("ceil", self.ceil_sock, WORKERS),
                              ("ceil8", self.ceil8_sock, MORE_WORKERS)):
            proc = bmtest.Proc(
                "fcgi-ceiling", [t.build_file("fcgi-ceiling"), "-s", sock,
                                 "-w", str(n)],
                dict(os.environ), ceil_log, ceil_log)
            setattr(self, attr, proc)
            t.defer(lambda proc=proc: proc.stop(signal.SIGTERM, 10))
            if not bmtest.wait_until(lambda: os.path.exists(sock) or
                                     not proc.alive(), 10):
                die("fcgi-ceiling did not start")
        self.ngx = BenchNginx(t, self)
        self.ngx.start()
        self.install(self.port_shipped, self.srv)
        self.more.start()
        self.install(self.port_more, self.more)

    def install(self, port, srv):
        """install (validated by the stand-in), then one contact_created
        for Botmatic id 101: the pair contact_updated will find."""
        r = bmtest.http_request(port, "POST", "/", json.loads(
            '{"event":"install","data":{}}'), token=TOKEN, timeout=120)
        if r.status != 200 or (r.json() or {}).get("success") is not True:
            die("install failed: %r\n%s" % (r, srv.log()[-3000:]))
        r = bmtest.http_request(port, "POST", "/", CREATED_FMT.replace(
            "%d", "101"), token=TOKEN, timeout=120)
        if check_created(r):
            die("contact_created for 101 failed: %r" % (r,))

    def verify(self, case):
        """One request of the case, checked; the harness stops on a wrong
        answer (the figures would mean nothing)."""
        port = getattr(self, case.port_attr)
        body = case.body if case.dynamic is None else \
            case.dynamic.replace("%d", "7")
        r = bmtest.http_request(port, "POST", case.path, body,
                                token=case.token, timeout=30)
        err = None
        if r.status != case.status:
            err = "status %d, expected %d: %r" % (r.status, case.status, r)
        elif case.check:
            err = case.check(r)
        if err:
            die("case %s %s: %s" % (case.mode, case.label, err))

    # --- wrk
    def wrk_run(self, port, path, script, duration, conns=CONNS,
                threads=WRK_THREADS, tag="run"):
        sfile = os.path.join(self.t.tmp, "wrk-%s.lua" % tag)
        with open(sfile, "w") as f:
            f.write(script)
        argv = [self.wrk, "-t%d" % threads, "-c%d" % conns,
                "-d%ds" % duration, "--timeout", "%ds" % WRK_TIMEOUT,
                "-s", sfile,
                "http://127.0.0.1:%d%s" % (port, path)]
        la = loadavg()
        groups = self.cpu_groups()
        before = {g: {p: cpu_ticks(p) for p in pids}
                  for g, pids in groups.items()}
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=duration + 120)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {g: sum(cpu_ticks(p) - t for p, t in before[g].items()) /
               CLK_TCK for g in groups}
        cpu["wrk"] = (ru1.ru_utime + ru1.ru_stime) - \
            (ru0.ru_utime + ru0.ru_stime)
        text = p.stdout.decode("utf-8", "replace")
        m = re.search(r"^BENCH (\{.*\})$", text, re.M)
        if p.returncode != 0 or not m:
            die("wrk failed (%d):\n%s" % (p.returncode, text))
        res = json.loads(m.group(1))
        res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
        # CPU microseconds per request, by who spent them.
        for g, secs in cpu.items():
            res["cpu_" + g] = 1e6 * secs / max(res["requests"], 1)
        res["load"] = la[0]
        self.loads.append(la[0])
        return res

    def cpu_groups(self):
        """The processes whose CPU time a run measures, by group: nginx's
        workers, and the responders (of both servers and of the ceiling:
        only the one the case loads is busy)."""
        resp = []
        for srv in (self.srv, self.more):
            if srv.proc is not None and srv.proc.alive():
                resp += srv.responders()
        for ceil in (self.ceil, self.ceil8):
            if ceil is not None and ceil.alive():
                resp += bmtest.children_of(ceil.pid)
        return {"nginx": self.ngx.workers() if self.ngx else [],
                "resp": resp}

    def run_case(self, case, run):
        port = getattr(self, case.port_attr)
        base = (run + 1) * 10 ** 10 if case.dynamic else 0
        res = self.wrk_run(port, case.path, lua_case(case, base), DURATION,
                           tag="%s-%s" % (case.mode, case.key))
        bad_status = res["status"] if case.status < 400 else \
            res["requests"] - res["status"]
        res["errors"] = bad_status + res["connect"] + res["read"] + \
            res["write"] + res["timeout"]
        if res["errors"]:
            self.problems.append(
                "%s, %s, run %d: %d errors of %d requests (status %d, "
                "connect %d, read %d, write %d, timeout %d); p99 %.1f ms, "
                "max %.1f ms" % (
                    case.mode, case.label, run + 1, res["errors"],
                    res["requests"], bad_status, res["connect"],
                    res["read"], res["write"], res["timeout"],
                    res["p99"] / 1000, res["max"] / 1000))
        if case.port_attr not in ("port_static", "port_more") and \
                case.path == "/":
            self.app_requests += res["requests"]
        self.results.setdefault((case.mode, case.key), []).append(res)
        log("%-8s %-52s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  "
            "load %.1f%s" % (case.mode, case.label[:52], res["rps"],
                             res["p50"] / 1000, res["p99"] / 1000, res["load"],
                             "  ERRORS %d" % res["errors"] if res["errors"]
                             else ""))
        return res

    def mixed(self, port, seconds, conns=CONNS, threads=WRK_THREADS,
              tag="mixed"):
        # Botmatic ids of the mixed loads: unique across its calls.
        self.mixed_calls = getattr(self, "mixed_calls", 0) + 1
        base = (100 + self.mixed_calls) * 10 ** 10
        res = self.wrk_run(port, "/", lua_mixed(base), seconds, conns,
                           threads, tag)
        # 401, 400 and 403 are among the expected answers: wrk counts
        # them as status errors, so only transport errors are errors.
        res["errors"] = res["connect"] + res["read"] + res["write"] + \
            res["timeout"]
        return res

    # --- phases
    def phase_throughput(self):
        log("throughput: %d run(s) of %d s per case, %d connections" %
            (RUNS, DURATION, CONNS))
        for c in SHIPPED_CASES + MORE_CASES:
            self.verify(c)
        # The keepalive cases are not checked one request at a time: a
        # request on a kept connection can stall at low traffic (see the
        # probe); wrk's status count checks their answers.
        # Warm every path once (caches, libcurl connections) before the
        # first measured run.
        for c in SHIPPED_CASES + MORE_CASES:
            port = getattr(self, c.port_attr)
            self.wrk_run(port, c.path, lua_case(c, 5 * 10 ** 14), 1,
                         tag="warm")
        for run in range(RUNS):
            # The cases alternate; the order turns each run, so no case is
            # always measured right after the same other one.
            group = SHIPPED_CASES + MORE_CASES
            cases = group[run % len(group):] + group[:run % len(group)]
            for c in cases:
                self.run_case(c, run)
        for run in range(RUNS):
            self.run_case(SHIPPED_CASES[0], run + RUNS)   # (a) again
            for k in KEEPALIVE:
                for c in keepalive_cases(k):
                    self.run_case(c, run)
                    # Drop nginx's kept connections before the next case.
                    self.ngx.reload()
                    self.health("after %s %s run %d" % (c.mode, c.label,
                                                         run + 1))

    def probe(self):
        """Low traffic: one request at a time, 0.2 s apart, through the
        shipped configuration and keepalive 1, to the server and to the
        ceiling.  A request unanswered after 3 s is counted as stalled (the
        client gives up; nginx would wait fastcgi_read_timeout, 60 s, then
        answer 504)."""
        self.probes = []
        for mode in ("shipped", "ka1"):
            port = getattr(self, "port_" + mode)
            for path in ("/", "/ceiling"):
                times, stalled = [], 0
                for _ in range(8):
                    t0 = time.monotonic()
                    try:
                        r = bmtest.http_request(port, "POST", path, ECHO_BODY,
                                                token=TOKEN, timeout=3)
                        ok = r.status == 200
                    except OSError:
                        ok = False
                    dt = time.monotonic() - t0
                    if not ok:
                        stalled += 1
                    else:
                        times.append(dt)
                    time.sleep(0.2)
                self.probes.append((mode, path, stalled, times))
                log("probe %s %s: %d of 8 stalled, answered in %s" % (
                    mode, path, stalled, ", ".join("%.1f ms" % (x * 1000)
                                                   for x in times)))
                self.ngx.reload()

    def profile(self):
        """Where a responder's time goes: system calls per request
        (strace -c) for `echo` and the ceiling, and a perf profile of the
        responders under `echo` (by library and by function).  Skipped for
        a tool that is missing or not permitted."""
        self.prof = {"strace": {}, "perf_dso": "", "perf_sym": ""}
        strace = shutil.which("strace")
        perf = shutil.which("perf")
        for name, case, pids in (
                ("echo", SHIPPED_CASES[2], self.srv.responders()),
                ("ceiling", SHIPPED_CASES[1],
                 bmtest.children_of(self.ceil.pid))):
            if not strace:
                break
            out = os.path.join(self.t.tmp, "strace-%s.txt" % name)
            argv = [strace, "-f", "-c", "-o", out]
            for pid in pids:
                argv += ["-p", str(pid)]
            st = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            res = self.wrk_run(self.port_shipped, case.path,
                               lua_case(case, 0), 3, tag="strace")
            st.send_signal(signal.SIGINT)
            st.wait(30)
            calls = {}
            try:
                with open(out) as f:
                    for line in f:
                        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)"
                                     r"\s+(?:(\d+)\s+)?(\w+)\s*$", line)
                        if m and m.group(3) != "total":
                            calls[m.group(3)] = (int(m.group(1)),
                                                 int(m.group(2) or 0))
            except OSError:
                pass
            self.prof["strace"][name] = (res["requests"], calls)
        if perf:
            data = os.path.join(self.t.tmp, "perf.data")
            pids = self.srv.responders()
            pf = subprocess.Popen([perf, "record", "-F", "1999", "-o", data,
                                   "-p", ",".join(map(str, pids))],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            self.wrk_run(self.port_shipped, "/",
                         lua_case(SHIPPED_CASES[2], 0), 5, tag="perf")
            pf.send_signal(signal.SIGINT)
            pf.wait(60)
            for key, sort in (("perf_dso", "dso"), ("perf_sym", "dso,sym")):
                p = subprocess.run(
                    [perf, "report", "-i", data, "--no-children", "--sort",
                     sort, "--stdio", "-g", "none", "--percent-limit", "0.7"],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    timeout=120)
                lines = [l for l in p.stdout.decode("utf-8", "replace")
                         .splitlines() if l.strip() and
                         not l.startswith("#")]
                self.prof[key] = "\n".join(lines[:25])

    def health(self, when):
        """One echo through the shipped configuration; a slow or wrong
        answer is recorded (a stall left behind by the previous case)."""
        t0 = time.monotonic()
        try:
            r = bmtest.http_request(self.port_shipped, "POST", "/",
                                    ECHO_BODY, token=TOKEN, timeout=90)
            ok = r.status == 200
        except OSError as e:
            r, ok = e, False
        dt = time.monotonic() - t0
        if not ok or dt > 1:
            self.problems.append("%s: an echo took %.2f s (%r)" %
                                 (when, dt, r))

    def mem_snapshot(self):
        pids = [self.srv.pid] + self.srv.responders()
        return {pid: proc_mem(pid, self.srv.db) for pid in pids}

    def phase_memory_start(self):
        self.mem_rest = self.mem_snapshot()
        log("memory at rest: %r" % self.mem_rest)
        res = self.mixed(self.port_shipped, WARMUP, tag="warmup")
        self.app_requests_warm = res["requests"]
        time.sleep(1)
        self.mem_warm = self.mem_snapshot()
        log("memory after %d warm-up requests: %r" %
            (res["requests"], self.mem_warm))

    def phase_memory_end(self):
        total = self.app_requests
        res = self.mixed(self.port_shipped, MIXED_MIN, tag="mixed")
        total += res["requests"]
        self.mixed_requests = res["requests"]
        if res["errors"]:
            self.problems.append(
                "mixed load: %d transport errors of %d requests" %
                (res["errors"], res["requests"]))
        chunks = 0
        while total < MEM_TARGET:
            left = MEM_TARGET - total
            secs = max(2, min(60, int(left / 3000) + 1))
            res = self.mixed(self.port_shipped, secs, tag="topup")
            if res["errors"]:
                self.problems.append(
                    "mixed load: %d transport errors of %d requests" %
                    (res["errors"], res["requests"]))
            total += res["requests"]
            chunks += 1
        self.mem_requests = total
        self.mem_topup_chunks = chunks
        time.sleep(1)
        self.mem_after = self.mem_snapshot()
        log("memory after %d requests: %r" % (total, self.mem_after))

    def phase_valgrind(self):
        self.vg_result = None
        if not bmtest._executable(self.valgrind):
            self.problems.append("valgrind not found: leak check skipped "
                                 "(apt-get install valgrind)")
            return
        t = self.t
        vgdir = os.path.join(t.tmp, "vg")
        os.makedirs(vgdir)
        env = dict(self.srv_env, BM_LISTEN=self.vg_sock,
                   BM_SHUTDOWN_TIMEOUT="60", BM_DB_WATCHDOG="60")
        self.vg = t.server(env, name="vg", start=False)
        self.vg_argv = [self.valgrind, "--leak-check=full",
                        "--errors-for-leak-kinds=definite",
                        "--suppressions=" + t.src_file("tests",
                                                       "valgrind.supp"),
                        "--log-file=" + os.path.join(vgdir, "vg.%p.log"),
                        self.vg.binary]
        log("valgrind: starting the server under valgrind")
        self.vg.start(argv=self.vg_argv, timeout=120)
        self.install(self.port_vg, self.vg)
        res = self.mixed(self.port_vg, VG_SECONDS, conns=8, threads=1,
                         tag="vg")
        self.vg_requests = res["requests"] + 2
        pids = [self.vg.pid] + self.vg.responders()
        st = self.vg.stop(timeout=120)
        logs = {}
        for name in sorted(os.listdir(vgdir)):
            with open(os.path.join(vgdir, name), errors="replace") as f:
                logs[name] = f.read()
        self.vg_result = {"status": st, "pids": pids, "logs": logs,
                          "transport_errors": res["errors"]}
        definite = 0
        errors = 0
        for name, text in logs.items():
            m = re.search(r"definitely lost: ([\d,]+) bytes", text)
            if m:
                definite += int(m.group(1).replace(",", ""))
            m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
            if m:
                errors += int(m.group(1).replace(",", ""))
        self.vg_result["definite"] = definite
        self.vg_result["errors"] = errors
        if definite or errors:
            self.problems.append("valgrind: %d bytes definitely lost, %d "
                                 "errors" % (definite, errors))
        log("valgrind: %d requests, %d bytes definitely lost, %d errors, "
            "exit status %s" % (self.vg_requests, definite, errors, st))

    def phase_pool(self):
        """The pool cases: for each behaviour of the external service, a
        fresh server (shipped defaults, one store for all three) and a
        stand-in; contact_updated and echo loaded at once; the responder
        count and their memory sampled meanwhile."""
        t = self.t
        self.pool = []
        db = os.path.join(t.tmp, "db-pool")
        standin = os.path.join(HERE, "standin-delay.py")
        slog = open(os.path.join(t.tmp, "standin-delay.log"), "ab")
        t.defer(slog.close)
        upd = Case("f", "contact_updated", "port_pool", "/", UPDATED_BODY)
        echo = Case("c", "echo", "port_pool", "/", ECHO_BODY)
        for n, (name, delay) in enumerate(POOL_MODES):
            port = bmtest.free_port()
            si = bmtest.Proc("standin-delay", [sys.executable, standin,
                                               str(port), str(delay)],
                             dict(os.environ), slog, slog)
            t.defer(lambda si=si: si.stop(signal.SIGTERM, 10))
            if not bmtest.wait_until(lambda: bmtest._port_open(port) or
                                     not si.alive(), 10):
                die("standin-delay did not start")
            srv = t.server(dict(self.srv_env, BM_LISTEN=self.pool_sock,
                                BM_DB_HOME=db,
                                BM_EXT_BASE_URL="http://127.0.0.1:%d" %
                                port), name="pool%d" % n, start=False)
            srv.start()
            if n == 0:
                self.install(self.port_pool, srv)
            peak = {"n": 0, "rss": 0, "pss": 0}
            stop = threading.Event()

            def sample(srv=srv, peak=peak, stop=stop):
                while not stop.is_set():
                    kids = srv.responders()
                    rss = sum(proc_mem(p).get("VmRSS", 0) for p in kids)
                    if len(kids) > peak["n"]:
                        peak["n"] = len(kids)
                    peak["rss"] = max(peak["rss"], rss)
                    stop.wait(0.1)

            th = threading.Thread(target=sample, daemon=True)
            th.start()
            out = {}
            # The pool grows in the first second (1, 2, 4... a tick): a
            # warm-up, so the runs measure the grown pool.  Not with the
            # hung service: it would only hold every responder longer.
            if delay >= 0:
                self.wrk_run(self.port_pool, "/", lua_case(upd, 0),
                             POOL_WARMUP, tag="pool-warm")

            def load_upd(out=out):
                out["upd"] = self.wrk_run(self.port_pool, "/",
                                          lua_case(upd, 0), DURATION,
                                          tag="pool-upd")

            lt = threading.Thread(target=load_upd, daemon=True)
            lt.start()
            time.sleep(0.5)      # contact_updated first holds responders
            out["echo"] = self.wrk_run(self.port_pool, "/",
                                       lua_case(echo, 0), DURATION,
                                       conns=POOL_ECHO_CONNS, threads=1,
                                       tag="pool-echo")
            lt.join(DURATION + 180)
            stop.set()
            th.join(10)
            grown = len(srv.grep(r"master: pool: every responder busy"))
            st = srv.stop(timeout=60)
            si.stop(signal.SIGTERM, 10)
            for k in ("upd", "echo"):
                r = out.get(k) or {}
                r["errors"] = sum(r.get(f, 0) for f in
                                  ("connect", "read", "write", "timeout"))
            self.pool.append({"name": name, "delay": delay,
                              "upd": out.get("upd") or {},
                              "echo": out["echo"], "peak": peak["n"],
                              "rss": peak["rss"], "grown": grown,
                              "stop": st})
            log("pool %-6s contact_updated %8.0f req/s p50 %7.2f ms p99 "
                "%8.2f ms; echo %6.0f req/s p99 %8.2f ms; %d responders, "
                "%s" % (name, out.get("upd", {}).get("rps", 0),
                        out.get("upd", {}).get("p50", 0) / 1000,
                        out.get("upd", {}).get("p99", 0) / 1000,
                        out["echo"]["rps"], out["echo"]["p99"] / 1000,
                        peak["n"], fmt_kb(peak["rss"])))

    def phase_store(self):
        t = self.t
        sdir = os.path.join(t.tmp, "store")
        os.makedirs(sdir)
        argv = [t.build_file("bench-store")] + STORE_ARGS
        log("bench-store %s (the full size loads 10,000,000 pairs)" %
            " ".join(STORE_ARGS))
        t0 = time.monotonic()
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT,
                           env=dict(os.environ, TMPDIR=sdir), timeout=7200)
        self.store_secs = time.monotonic() - t0
        self.store_out = p.stdout.decode("utf-8", "replace")
        self.store_argv = ["./bench-store"] + STORE_ARGS
        if p.returncode != 0:
            self.problems.append("bench-store exited %d" % p.returncode)
        log(self.store_out.strip())
        argv = [t.build_file("bench-mapping"), str(MAPPING_N)]
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        self.mapping_out = p.stdout.decode("utf-8", "replace")
        self.mapping_argv = ["./bench-mapping", str(MAPPING_N)]
        if p.returncode != 0:
            self.problems.append("bench-mapping exited %d" % p.returncode)
        log(self.mapping_out.strip())

    def stop_servers(self):
        self.srv_errors = []
        self.srv_log_lines = 0
        with open(self.srv.log_path, "rb") as f:
            for line in f:
                self.srv_log_lines += 1
                if re.search(rb" (ERR|WARN) ", line):
                    self.srv_errors.append(line.decode("utf-8", "replace")
                                           .rstrip())
        self.srv.stop()
        self.more.stop()
        self.ceil.stop(signal.SIGTERM, 10)
        self.ceil8.stop(signal.SIGTERM, 10)
        self.ngx.stop()

    def run(self):
        self.start()
        self.phase_memory_start()
        self.phase_throughput()
        self.probe()
        self.profile()
        self.phase_memory_end()
        # The pool grows and shrinks: only a death is a problem.
        deaths = self.srv.grep(r"master: responder \d+ (killed by signal|"
                               r"exited with status [1-9])")
        self.pids_same = not deaths
        if deaths:
            self.problems.append("responders died during the run: %s" %
                                 "; ".join(deaths[:3]))
        self.phase_pool()
        self.phase_valgrind()
        self.stop_servers()
        self.phase_store()
        self.load_end = loadavg()
        self.elapsed = time.monotonic() - self.t0
        text = Report(self).text()
        with open(self.out_path, "w") as f:
            f.write(text)
        log("wrote %s in %.0f s" % (self.out_path, self.elapsed))
        self.t.cleanup()


# ------------------------------------------------------------------ report

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_int(x):
    return "{:,.0f}".format(x)


def fmt_kb(kb):
    return "{:,} kB".format(kb)


class Report:

    def __init__(self, b):
        self.b = b

    def runs(self, mode, key):
        return self.b.results.get((mode, key), [])

    def stat(self, mode, key, field):
        return med([r[field] for r in self.runs(mode, key)])

    def ratio(self, mode, key, ref_mode, ref_key):
        """Median over runs of case/reference, paired run by run."""
        a = self.runs(mode, key)
        r = self.runs(ref_mode, ref_key)
        pairs = [x["rps"] / y["rps"] for x, y in zip(a, r) if y["rps"]]
        return med(pairs)

    def text(self):
        b = self.b
        L = []
        w = L.append
        w("# botmatic-fcgi benchmarks")
        w("")
        w("Generated by `make bench` (tests/bench/run-bench.py); do not edit "
          "by hand.%s" % (" **Quick run (BENCH_QUICK=1): seconds per "
                          "case, small store; indicative only.**"
                          if QUICK else ""))
        w("No test asserts on these figures: they are measurements, "
          "written down with the gap to each target and its cause.")
        w("")
        self.machine(w)
        self.summary(w)
        self.targets(w)
        self.more_workers(w)
        self.pool_section(w)
        self.profile(w)
        self.keepalive(w)
        self.memory(w)
        self.valgrind(w)
        self.store(w)
        self.problems(w)
        self.method(w)
        return "\n".join(L) + "\n"

    def machine(self, w):
        b = self.b
        commit = cmd_out(["git", "-C", b.t.srcdir, "rev-parse", "HEAD"])
        dirty = cmd_out(["git", "-C", b.t.srcdir, "status", "--porcelain",
                         "--untracked-files=no"])
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
                cpu = m.group(1) if m else "?"
        except OSError:
            pass
        osname = "?"
        try:
            with open("/etc/os-release") as f:
                m = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
                osname = m.group(1) if m else "?"
        except OSError:
            pass
        w("## Machine and run")
        w("")
        w("| | |")
        w("|---|---|")
        w("| date | %s (UTC), %.0f minutes |" % (
            b.started.strftime("%Y-%m-%d %H:%M"), b.elapsed / 60))
        w("| commit | `%s`%s |" % (commit, " (with uncommitted changes)"
                                  if dirty else ""))
        w("| CPU | %s, %d cores; `nproc` = %s |" % (
            cpu, os.cpu_count() or 0, cmd_out(["nproc"])))
        w("| system | %s, Linux %s |" % (osname, platform.release()))
        w("| nginx | %s, `worker_processes %d` |" % (
            cmd_out([b.t.nginx_bin, "-v"]).replace("nginx version: ", ""),
            b.nginx_workers))
        w("| wrk | %s, %d threads, %d connections, %d s per run, %d "
          "run(s) per case |" % (
              cmd_out([b.wrk, "-v"]).splitlines()[0].split(" [")[0],
              WRK_THREADS, CONNS, DURATION, RUNS))
        w("| server | `BM_WORKERS=%d`, `BM_LOG_LEVEL=info`, "
          "`BM_AUTH=installed`, `BM_DB_DURABILITY=write` (defaults but "
          "the first) |" % WORKERS)
        w("| load average | %.2f %.2f %.2f at the start, %.2f %.2f %.2f at "
          "the end; 1-min load before each wrk run: min %.2f, median "
          "%.2f, max %.2f |" % (b.load_start + b.load_end + (
              min(b.loads), med(b.loads), max(b.loads))))
        w("")
        w("Memory (`free -h` at the end):")
        w("")
        w("```")
        w(cmd_out(["free", "-h"]))
        w("```")
        w("")
        if max(b.loads) > (os.cpu_count() or 1):
            w("The load average exceeded the core count during the run: "
              "other processes (other sessions' tests) shared the CPUs "
              "with nginx, wrk and the server, so absolute figures are "
              "lower and noisier than on an idle machine. The ratios are "
              "measured in the same runs, so they suffer less.")
            w("")
        w("Everything runs on one machine over loopback: wrk, nginx, the "
          "server and the stand-ins share the %d cores, so every figure "
          "includes nginx's and wrk's own CPU time." % (os.cpu_count() or 0))
        w("")

    def summary(self, w):
        w("## Summary: the shipped configuration")
        w("")
        w("Medians of %d run(s) of %d s, %d connections. Ratios are "
          "computed run by run against the ceilings measured in the same "
          "run, then the median is taken." % (RUNS, DURATION, CONNS))
        w("")
        w("| case | req/s | p50 ms | p99 ms | vs (a) | vs (b) | errors | "
          "CPU µs/req: responders | nginx | wrk |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in SHIPPED_CASES:
            if not self.runs("shipped", c.key):
                continue
            errs = sum(r["errors"] for r in self.runs("shipped", c.key))
            w("| %s | %s | %.2f | %.2f | %.0f%% | %s | %s | %.0f | %.0f | "
              "%.0f |" % (
                c.label, fmt_int(self.stat("shipped", c.key, "rps")),
                self.stat("shipped", c.key, "p50") / 1000,
                self.stat("shipped", c.key, "p99") / 1000,
                100 * self.ratio("shipped", c.key, "shipped", "a"),
                "—" if c.key == "a" else "%.0f%%" % (
                    100 * self.ratio("shipped", c.key, "shipped", "b")),
                errs, self.stat("shipped", c.key, "cpu_resp"),
                self.stat("shipped", c.key, "cpu_nginx"),
                self.stat("shipped", c.key, "cpu_wrk")))
        w("")
        w("CPU µs/req: the CPU time (user + system, from `/proc/<pid>/stat` "
          "and wrk's rusage) each group of processes spent during the run, "
          "divided by the requests answered: *responders* are the server's "
          "(or, for (b), the ceiling's; none for (a)), *nginx* its workers, "
          "including the stand-in's work in (f) and (g). With 2 cores "
          "shared by all of them, the sum bounds the throughput.")
        w("")
        w("What each case sends (POST `/`, `Content-Type: application/json`, "
          "`Authorization: Bearer <token>`):")
        w("")
        w("- (a), (b), (c): `%s`; (a) is nginx answering `return 200` with "
          "the %d bytes (c) answers; (b) is `tests/bench/fcgi-ceiling.c`, "
          "%d pre-forked libfcgi responders that read the body and answer "
          "the same bytes with the same headers, behind the same shipped "
          "nginx pieces." % (ECHO_BODY, len(ECHO_ANSWER), WORKERS))
        w("- (d): `%s` (no handler: `success:false`)." % UNKNOWN_BODY)
        w("- (e): the echo body with a token no installation has: 401 from "
          "the `installed` policy (one store read).")
        w("- (f): `%s`: the store read of the ext id, the mapping, one "
          "`PUT /contacts/{ext id}` to the external service (nginx "
          "answering `{}` at once)." % UPDATED_BODY)
        w("- (g): `contact_created` with a Botmatic id unique to every "
          "request (wrk's Lua `request()`), e.g. `%s`: the mapping, "
          "`GET /contacts?email=` (the stand-in answers `[]`), `POST "
          "/contacts` (it answers `{\"id_candidate\":\"$request_id\"}`, a "
          "new id each time), then the pair saved: a real store write (two "
          "B-tree puts in one transaction, `DB_TXN_WRITE_NOSYNC`) for "
          "every request. Two outbound HTTP calls per request. (With a "
          "fixed Botmatic and external id the store finds the pair already "
          "linked and writes nothing, so fixed ids would not measure a "
          "write.)" % (CREATED_FMT % (1, 1)))
        w("")

    def targets(self, w):
        b = self.b
        echo_b = self.ratio("shipped", "c", "shipped", "b")
        echo_p99 = self.stat("shipped", "c", "p99") / 1000
        upd_echo = self.ratio("shipped", "f", "shipped", "c")
        growth = self.mem_growth()
        w("## Targets")
        w("")
        w("| target | measured | reached |")
        w("|---|---|---|")
        w("| `echo` at 85%% or more of the FastCGI ceiling (b) | %.0f%% | "
          "%s |" % (100 * echo_b, "yes" if echo_b >= 0.85 else "**no**"))
        w("| `echo` p99 under 5 ms at %d connections | %.2f ms | %s |" % (
            CONNS, echo_p99, "yes" if echo_p99 < 5 else "**no**"))
        w("| `contact_updated` at 50%% or more of `echo` | %.0f%% | %s |" % (
            100 * upd_echo, "yes" if upd_echo >= 0.5 else "**no**"))
        w("| no RSS growth over %s requests | %s | %s |" % (
            fmt_int(b.mem_requests), growth[0],
            "yes" if growth[1] else "**no**"))
        w("")
        w("### Gaps and their causes")
        w("")
        for line in self.gap_notes(echo_b, echo_p99, upd_echo, growth):
            w("- " + line)
        w("")

    def gap_notes(self, echo_b, echo_p99, upd_echo, growth):
        b = self.b
        out = []
        ceil_p99 = self.stat("shipped", "b", "p99") / 1000
        a_rps = self.stat("shipped", "a", "rps")
        b_rps = self.stat("shipped", "b", "rps")
        out.append(
            "The FastCGI ceiling (b) itself runs at %.0f%% of nginx alone "
            "(a): one unix-socket connection per request (connect, accept, "
            "the FastCGI records, close) and nginx's upstream module cost "
            "more than the responder's work; that part is paid by any "
            "libfcgi application behind nginx." % (100 * b_rps / a_rps))
        cpu = {k: {g: self.stat("shipped", k, "cpu_" + g)
                   for g in ("resp", "nginx", "wrk")} for k in "abcf"}
        tot = {k: sum(v.values()) for k, v in cpu.items()}
        own = cpu["c"]["resp"] - cpu["b"]["resp"]
        if echo_b < 0.85:
            out.append(
                "`echo` reaches %.0f%% of (b). By CPU time, the responders "
                "spend %.0f µs per `echo` request against %.0f µs for the "
                "ceiling's: %+.0f µs of the server's own work (the JSON "
                "parse of the body with the duplicate-key check, the auth "
                "policy's store read — `installed`: a Berkeley DB get of "
                "the installation —, dispatch to the module, the JSON "
                "answer, the request's arena and its log line, one "
                "`write(2)` per request at `BM_LOG_LEVEL=info`), on top of "
                "nginx's %.0f µs and wrk's %.0f µs, all on the same %d "
                "cores: %.0f µs in all against %.0f for (b). The FastCGI "
                "exchange itself costs the same in both; with the cores "
                "shared, each µs the server adds costs throughput.%s The "
                "machine's other load (see above) makes the run-to-run "
                "spread of this ratio large (the runs: %s)." % (
                    100 * echo_b, cpu["c"]["resp"], cpu["b"]["resp"], own,
                    cpu["c"]["nginx"], cpu["c"]["wrk"], os.cpu_count() or 0,
                    tot["c"], tot["b"], self.profile_note(), ", ".join(
                        "%.0f%%" % (100 * x["rps"] / y["rps"]) for x, y in
                        zip(self.runs("shipped", "c"),
                            self.runs("shipped", "b")))))
        else:
            out.append(
                "`echo` is at %.0f%% of (b): the server's own work per "
                "request (%+.0f µs of responder CPU over the ceiling's "
                "%.0f µs: JSON parse, auth store read, dispatch, answer, "
                "log line) is small next to the cost of the FastCGI "
                "exchange in nginx and the responder (the runs: %s)." % (
                    100 * echo_b, own, cpu["b"]["resp"], ", ".join(
                        "%.0f%%" % (100 * x["rps"] / y["rps"]) for x, y in
                        zip(self.runs("shipped", "c"),
                            self.runs("shipped", "b")))))
        echo_rps = self.stat("shipped", "c", "rps")
        more_c = self.ratio("more", "c", "more", "b")
        if self.runs("more", "c"):
            out.append(
                "With %d responders (and a ceiling with as many), `echo` "
                "is at %.0f%% of the ceiling%s (*More responders than "
                "cores*)." % (MORE_WORKERS, 100 * more_c,
                              ": the target is reached at that setting"
                              if more_c >= 0.85 and echo_b < 0.85 else ""))
        if echo_p99 >= 5:
            little = 1000.0 * CONNS / echo_rps
            out.append(
                "`echo` p99 is %.2f ms, the FastCGI ceiling's (b) %.2f ms%s. "
                "With %d connections always waiting for an answer and %d "
                "responders, %d requests sit in the listen backlog at any "
                "time; by Little's law the mean latency is connections / "
                "throughput = %d / %s req/s = %.1f ms%s. A p99 under 5 ms "
                "at %d connections needs well over %s req/s (the mean alone "
                "must be under 5 ms); (b) reaches %s here. %s" % (
                    echo_p99, ceil_p99,
                    ": the target is out of reach of any libfcgi responder "
                    "behind nginx on this machine, not only of this server"
                    if ceil_p99 >= 5 else "",
                    CONNS, WORKERS, CONNS - WORKERS, CONNS,
                    fmt_int(echo_rps), little,
                    ", above the 5 ms target before any tail"
                    if little >= 5 else "",
                    CONNS, fmt_int(CONNS / 0.005), fmt_int(b_rps),
                    "What the server adds over the ceiling at p99 is "
                    "%+.2f ms, the latency side of its CPU cost above." %
                    (echo_p99 - ceil_p99) if echo_p99 > ceil_p99 else
                    "The server's p99 is no worse than the ceiling's (the "
                    "difference, %+.2f ms, is within the run-to-run "
                    "spread)." % (echo_p99 - ceil_p99)))
        else:
            out.append("`echo` p99 is %.2f ms at 64 connections (ceiling "
                       "(b): %.2f ms)." % (echo_p99, ceil_p99))
        more = self.ratio("more", "f", "more", "c")
        why = (
            "each request adds, to what `echo` does, a store read, the "
            "mapping, and one synchronous HTTP call to the external service "
            "(libcurl, its connection kept alive: one connect for the whole "
            "run, checked with strace). By CPU time: responders %.0f µs "
            "per request (`echo`: %.0f), nginx %.0f µs (`echo`: %.0f; it "
            "also plays the external service here, parsing the PUT and "
            "answering it), %.0f µs in all against %.0f: on %d shared "
            "cores the outbound request roughly doubles the CPU a webhook "
            "costs, half of it in the stand-in, which a real deployment "
            "runs elsewhere. With %d responders (*More responders than "
            "cores*) `contact_updated` reaches %.0f%% of `echo` with as "
            "many: %s" % (
                cpu["f"]["resp"], cpu["c"]["resp"], cpu["f"]["nginx"],
                cpu["c"]["nginx"], tot["f"], tot["c"], os.cpu_count() or 0,
                MORE_WORKERS, 100 * more,
                "waiting for the answer is not what limits it, CPU is."
                if more < upd_echo * 1.15 else
                "more responders overlap the waits, so part of the gap is "
                "the responder count: `BM_WORKERS` above the core count "
                "helps handlers that call out."))
        if upd_echo < 0.5:
            out.append("`contact_updated` reaches %.0f%% of `echo`: " %
                       (100 * upd_echo) + why)
        else:
            out.append("`contact_updated` is at %.0f%% of `echo`: " %
                       (100 * upd_echo) + why)
        out.append(growth[2])
        return out

    def profile_note(self):
        pr = getattr(self.b, "prof", None) or {}
        st = pr.get("strace") or {}
        out = ""
        if "echo" in st and "ceiling" in st:
            def per(k):
                reqs, calls = st[k]
                return {n: c[0] / max(reqs, 1) for n, c in calls.items()}
            e, c = per("echo"), per("ceiling")
            why = {"write": "the log line",
                   "ppoll": "the poll on the listening socket before each "
                   "accept", "getpid": "the log line's pid, which glibc no "
                   "longer caches", "futex": "locks"}
            extra = ["%+.0f `%s`%s" % (e.get(n, 0) - c.get(n, 0), n,
                                       " (%s)" % why[n] if n in why else "")
                     for n in sorted(set(e) | set(c))
                     if e.get(n, 0) - c.get(n, 0) >= 0.5]
            out += (" System calls per request: %.0f against the ceiling's "
                    "%.0f: %s." % (
                        sum(e.values()), sum(c.values()),
                        ", ".join(extra)))
        dso = pr.get("perf_dso") or ""
        parts = re.findall(r"([\d.]+)%\s+(\S+)", dso)
        if parts:
            out += (" Where the responders' CPU goes under `echo` (perf): " +
                    ", ".join("%s %s%%" % (name, pct) for pct, name in parts)
                    + "; the kernel share is mostly the context switches "
                    "and socket work of one connection per request, which "
                    "the ceiling pays too.")
        return out

    def mem_growth(self):
        """(summary text, reached?, note)"""
        b = self.b
        worst_anon = 0
        worst_rss = 0
        for pid, after in b.mem_after.items():
            warm = b.mem_warm.get(pid)
            if not warm:
                continue
            worst_anon = max(worst_anon, after.get("RssAnon", 0) -
                             warm.get("RssAnon", 0))
            worst_rss = max(worst_rss, after.get("VmRSS", 0) -
                            warm.get("VmRSS", 0))
        limit = 256
        ok = b.pids_same and worst_anon <= limit
        txt = "largest change after warm-up: RssAnon %+d kB, VmRSS %+d kB" \
            % (worst_anon, worst_rss)
        if ok:
            note = ("RSS: no process's private memory (RssAnon: heap, "
                    "stacks) grew by more than %d kB between the warm-up and "
                    "%s requests later (largest %+d kB, %.2f bytes per "
                    "request, far below any per-request allocation; the "
                    "valgrind run below finds no block lost). VmRSS also "
                    "counts "
                    "the file mappings: the Berkeley DB environment's "
                    "regions and databases in `BM_DB_HOME` (the last "
                    "column) grow as the responders touch more of their "
                    "pages (the cache and the databases grow with every "
                    "contact_created) and are shared between the "
                    "responders, bounded by the environment's regions (a "
                    "32 MB cache by default, plus the log, lock and "
                    "transaction regions) and the databases' size; that is "
                    "not the heap and not a leak." % (limit, fmt_int(
                        b.mem_requests), worst_anon,
                        1024.0 * worst_anon / max(b.mem_requests, 1)))
        elif not b.pids_same:
            note = "RSS: responders were replaced during the run, so the " \
                "comparison is not valid (see Problems)."
        else:
            note = ("RSS: RssAnon grew by %d kB in a process over %s "
                    "requests: see the memory table; valgrind (below) "
                    "tells a leak from allocator growth." %
                    (worst_anon, fmt_int(b.mem_requests)))
        return txt, ok, note

    def pool_section(self, w):
        b = self.b
        rows = getattr(b, "pool", None)
        if not rows:
            return
        w("## The dynamic pool against a slow or hung external service")
        w("")
        w("The server with the shipped defaults (`BM_WORKERS=%d`, "
          "`BM_WORKERS_MAX=64`, `BM_HTTP_TIMEOUT=10000`) in front of an "
          "external service (tests/bench/standin-delay.py) that answers "
          "every call at once, after %d ms, or never (it accepts and holds "
          "the connection). `contact_updated` (one PUT to the service) "
          "at %d connections and, at the same time, `echo` at %d, for %d s "
          "after a %d s `contact_updated` warm-up (none with the hung "
          "service) in which the pool grows; the responder count and the "
          "sum of their VmRSS (shared pages, the Berkeley DB regions and "
          "the libraries, counted in each) sampled every 0.1 s." % (
              WORKERS, POOL_DELAY_S * 1000, CONNS, POOL_ECHO_CONNS,
              DURATION, POOL_WARMUP))
        w("")
        w("| service | `contact_updated` req/s | p50 | p99 | errors | "
          "`echo` req/s | `echo` p50 | `echo` p99 | `echo` errors | "
          "responders reached | their RSS (sum) | growth steps logged |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            u, e = r["upd"], r["echo"]
            w("| %s | %s | %.1f ms | %.1f ms | %d (non-2xx %d) | %s | "
              "%.1f ms | %.1f ms | %d | %d | %s | %d |" % (
                  r["name"], fmt_int(u.get("rps", 0)),
                  u.get("p50", 0) / 1000, u.get("p99", 0) / 1000,
                  u.get("errors", 0), u.get("status", 0),
                  fmt_int(e["rps"]), e["p50"] / 1000, e["p99"] / 1000,
                  e["errors"] + e["status"], r["peak"], fmt_kb(r["rss"]),
                  r["grown"]))
        w("")
        bound = CONNS / POOL_DELAY_S
        slow = [r for r in rows if r["delay"] == POOL_DELAY_S]
        if slow:
            rps = slow[0]["upd"].get("rps", 0)
            need = max(0.8 * bound, POOL_TARGET_RPS)
            w("Target: delivered events with a %d ms service at >= 80%% of "
              "the bound (%d connections / %d ms = %s/s, so %s/s) and above "
              "%d/s; measured %s/s: %s." % (
                  POOL_DELAY_S * 1000, CONNS, POOL_DELAY_S * 1000,
                  fmt_int(bound), fmt_int(0.8 * bound), POOL_TARGET_RPS,
                  fmt_int(rps), "reached" if rps >= need else
                  "**not reached** (gap %s/s)" % fmt_int(need - rps)))
        worst = max(r["echo"]["p99"] for r in rows) / 1000
        w("Target: `echo` p99 under 20 ms whatever the external service "
          "does; worst measured %.1f ms: %s." % (
              worst, "reached" if worst < 20 else "**not reached**"))
        w("")
        w("Why, case by case (a responder serves one request at a time, "
          "so a call to the service holds one for its whole duration; the "
          "pool grows only while every responder is busy, a request waits "
          "and the busy ones take %d ms or more a request, i.e. wait on "
          "something):" % MASTER_GROW_SERVICE_MS)
        w("")
        for r in rows:
            u, e = r["upd"], r["echo"]
            total = u.get("rps", 0) + e["rps"]
            if r["delay"] == 0:
                w("- service answering at once: the pool stayed at %d "
                  "responders, busy with CPU work (a fraction of a "
                  "millisecond a request), where more processes than cores "
                  "add no CPU. The 2 cores are saturated (%s requests/s in "
                  "all, shared with nginx, wrk and the stand-in), and "
                  "`echo`'s requests wait in the same listen backlog, "
                  "first come first served, behind the %d `contact_updated` "
                  "connections: its p99 (%.1f ms) is that queue at "
                  "saturation, not a responder held by the service. The "
                  "backlog has no priority; only less load, more cores or "
                  "a queue of its own for contact events would shorten "
                  "it." % (r["peak"], fmt_int(total), CONNS,
                           e["p99"] / 1000))
            elif r["delay"] > 0:
                w("- service answering after %d ms: the pool grew to %d "
                  "responders (%d growth steps logged), so every "
                  "`contact_updated` connection has one: %s/s against the "
                  "bound of %s/s, p50 %.1f ms for a %d ms call; `echo` p99 "
                  "%.1f ms. What is missing to the bound is the 2 cores "
                  "the %d processes, nginx, wrk and the stand-in share." % (
                      r["delay"] * 1000, r["peak"], r["grown"],
                      fmt_int(u.get("rps", 0)), fmt_int(bound),
                      u.get("p50", 0) / 1000, r["delay"] * 1000,
                      e["p99"] / 1000, r["peak"]))
            else:
                w("- hung service: each `contact_updated` holds a responder "
                  "for `BM_HTTP_TIMEOUT` (10 s), so "
                  "the pool grew to `BM_WORKERS_MAX` (%d reached) and all "
                  "of them were held: `echo` waited in the backlog behind "
                  "them (%s answered in the run). The pool bounds the "
                  "damage (memory: %s for the responders) but cannot "
                  "close this gap; the durable queue of issue 10 does (an "
                  "inline contact event queued after `BM_SYNC_DEADLINE_MS`, "
                  "the circuit breaker), by bounding how long a webhook "
                  "holds a responder." % (r["peak"], fmt_int(e["requests"]),
                                          fmt_kb(r["rss"])))
        w("")

    def more_workers(self, w):
        b = self.b
        if not self.runs("more", "f"):
            return
        w("## More responders than cores")
        w("")
        w("A diagnostic: a second server, identical but for "
          "`BM_WORKERS=%d`, and a second FastCGI ceiling with %d "
          "responders, behind the same shipped nginx pieces, their runs "
          "alternating with the cases above (medians of %d). *vs (b)* is "
          "against the ceiling with as many responders, in the same run." %
          (MORE_WORKERS, MORE_WORKERS, RUNS))
        w("")
        w("| case | req/s | p50 ms | p99 ms | vs (b) | errors | CPU µs/req:"
          " responders | nginx |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for mode, key, label in (
                ("shipped", "b", "(b) FastCGI ceiling, %d responders" %
                 WORKERS),
                ("more", "b", "(b) FastCGI ceiling, %d responders" %
                 MORE_WORKERS),
                ("shipped", "c", "(c) `echo`, BM_WORKERS=%d" % WORKERS),
                ("more", "c", "(c) `echo`, BM_WORKERS=%d" % MORE_WORKERS),
                ("shipped", "f", "(f) `contact_updated`, BM_WORKERS=%d" %
                 WORKERS),
                ("more", "f", "(f) `contact_updated`, BM_WORKERS=%d" %
                 MORE_WORKERS)):
            w("| %s | %s | %.2f | %.2f | %.0f%% | %d | %.0f | %.0f |" % (
                label, fmt_int(self.stat(mode, key, "rps")),
                self.stat(mode, key, "p50") / 1000,
                self.stat(mode, key, "p99") / 1000,
                100 * self.ratio(mode, key, mode, "b"),
                sum(r["errors"] for r in self.runs(mode, key)),
                self.stat(mode, key, "cpu_resp"),
                self.stat(mode, key, "cpu_nginx")))
        w("")
        w("With %d responders, `echo` is at %.0f%% of its ceiling and "
          "`contact_updated` at %.0f%% of `echo` (%.0f%% and %.0f%% with "
          "%d). %s" % (
              MORE_WORKERS, 100 * self.ratio("more", "c", "more", "b"),
              100 * self.ratio("more", "f", "more", "c"),
              100 * self.ratio("shipped", "c", "shipped", "b"),
              100 * self.ratio("shipped", "f", "shipped", "c"), WORKERS,
              "More responders than cores raise every FastCGI figure here, "
              "the ceiling's too: with one responder per core, a responder "
              "waiting for nginx (the parameters, the body, the next "
              "connection) leaves its core to nginx and wrk, but no other "
              "responder can use the spare time; `BM_WORKERS` defaults to "
              "the number of CPUs, which on a host that also runs nginx "
              "leaves throughput unused." if self.stat("more", "c", "rps") >
              1.1 * self.stat("shipped", "c", "rps") else ""))
        w("")

    def profile(self, w):
        b = self.b
        pr = getattr(b, "prof", None)
        if not pr or not (pr["strace"] or pr["perf_dso"]):
            return
        w("## Where a responder's time goes")
        w("")
        if pr["strace"]:
            names = sorted(set().union(*(c for _, c in
                                         pr["strace"].values())))
            w("System calls per request in the responders (`strace -f -c` "
              "attached for a 3 s run; strace slows them, so only the "
              "counts matter):")
            w("")
            w("| | %s |" % " | ".join(pr["strace"]))
            w("|---|%s|" % "|".join("---:" for _ in pr["strace"]))
            tot = {k: 0.0 for k in pr["strace"]}
            for name in sorted(names, key=lambda n: -max(
                    c.get(n, (0, 0))[0] / max(r, 1)
                    for r, c in pr["strace"].values())):
                row = []
                for k, (reqs, calls) in pr["strace"].items():
                    n, err = calls.get(name, (0, 0))
                    tot[k] += n / max(reqs, 1)
                    row.append("%.2f%s" % (n / max(reqs, 1), " (%.2f "
                                           "failed)" % (err / reqs)
                                           if err and reqs else ""))
                w("| `%s` | %s |" % (name, " | ".join(row)))
            w("| total | %s |" % " | ".join("%.2f" % tot[k] for k in tot))
            w("")
        if pr["perf_dso"]:
            w("`perf record -F 1999` of the responders during a 5 s `echo` "
              "run, by library, then by function (entries of 0.7% or "
              "more):")
            w("")
            w("```")
            w(pr["perf_dso"])
            w("")
            w(pr["perf_sym"])
            w("```")
            w("")

    def keepalive(self, w):
        b = self.b
        w("## Upstream keepalive: measured, and why the shipped "
          "configuration has none")
        w("")
        w("The same nginx pieces with `fastcgi_keep_conn on` and an "
          "`upstream { server unix:...; keepalive N; }` (N per nginx "
          "worker: %d workers keep up to %d·N idle connections) against "
          "%d responders. nginx is reloaded after each such case, so its "
          "kept connections do not pin responders into the next one. "
          "Medians of %d run(s); ratios against (a) measured in the same "
          "runs." % (b.nginx_workers, b.nginx_workers, WORKERS, RUNS))
        w("")
        w("`timeouts` is wrk's count: every 2 s, each connection whose "
          "request has waited more than %d s adds one (so a request stuck "
          "for the whole run counts several times); latency percentiles "
          "cover the answered requests only." % WRK_TIMEOUT)
        w("")
        w("| configuration | case | req/s | p50 ms | p99 ms | max ms | "
          "vs (a) | errors+timeouts |")
        w("|---|---|---:|---:|---:|---:|---:|---:|")
        for c in SHIPPED_CASES:
            if c.key not in ("b", "c", "f"):
                continue
            self.ka_row(w, "shipped (no keepalive)", "shipped", c,
                        "shipped")
        for k in KEEPALIVE:
            for c in keepalive_cases(k):
                self.ka_row(w, "keepalive %d" % k, c.mode, c, c.mode)
        w("")
        w("Low traffic (one request at a time, 0.2 s apart, 8 per row; a "
          "request unanswered after 3 s counts as stalled, and nginx would "
          "answer it 504 after `fastcgi_read_timeout`, 60 s):")
        w("")
        w("| configuration | target | stalled | answered in (ms) |")
        w("|---|---|---:|---|")
        for mode, path, stalled, times in b.probes:
            w("| %s | %s | %d of 8 | %s |" % (
                "shipped (no keepalive)" if mode == "shipped" else
                "keepalive %s" % mode[2:],
                "botmatic-fcgi (`echo`)" if path == "/" else
                "FastCGI ceiling", stalled,
                ", ".join("%.1f" % (x * 1000) for x in times) or "—"))
        w("")
        for line in self.ka_conclusion():
            w(line)
        w("")

    def ka_row(self, w, label, mode, c, ratio_mode):
        runs = self.runs(mode, c.key)
        if not runs:
            return
        ref = self.runs("shipped", "a")
        if mode != "shipped":
            ref = ref[RUNS:]          # (a) measured in the keepalive runs
        else:
            ref = ref[:RUNS]
        ratios = [x["rps"] / y["rps"] for x, y in zip(runs, ref)]
        w("| %s | %s | %s | %.2f | %.2f | %.0f | %.0f%% | %d |" % (
            label, c.label, fmt_int(med([r["rps"] for r in runs])),
            med([r["p50"] for r in runs]) / 1000,
            med([r["p99"] for r in runs]) / 1000,
            max(r["max"] for r in runs) / 1000, 100 * med(ratios),
            sum(r["errors"] for r in runs)))

    def ka_conclusion(self):
        echo = self.stat("shipped", "c", "rps")
        echo_p99 = self.stat("shipped", "c", "p99") / 1000
        best = None
        rows = []
        for k in KEEPALIVE:
            rps = self.stat("ka%d" % k, "c", "rps")
            p99 = self.stat("ka%d" % k, "c", "p99") / 1000
            mx = max((r["max"] for r in self.runs("ka%d" % k, "c")),
                     default=0) / 1000
            errs = sum(r["errors"] for r in self.runs("ka%d" % k, "c"))
            rows.append((k, rps, p99, mx, errs))
            if best is None or rps > best[1]:
                best = (k, rps, p99, mx, errs)
        out = ["Conclusion:", ""]
        stalls = {(m, p): st for m, p, st, _ in self.b.probes}
        if stalls.get(("ka1", "/")) and not stalls.get(("ka1", "/ceiling")):
            out.append(
                "- **A server problem, with keepalive only**: at low "
                "traffic, %d of 8 requests nginx sent on a kept connection "
                "to botmatic-fcgi were not answered (the FastCGI ceiling, "
                "a plain `FCGX_Accept_r` loop, answered all 8). The "
                "responder loop (`app/server/worker.c`) waits in `ppoll()` on the "
                "listening socket before each `FCGX_Accept_r()`; after a "
                "request with `FCGI_KEEP_CONN` libfcgi keeps the connection "
                "(`fr.ipcFd`) open and `FCGX_Accept_r()` would read the "
                "next request from it, but the responder sleeps until a "
                "*new* connection reaches the listening socket. Under load "
                "new connections keep arriving, which hides it behind the "
                "pinning every libfcgi responder shows (the multi-second "
                "tails above, the ceiling's included); when traffic is low the request waits for "
                "the next one, or gets nginx's 504 after 60 s. The shipped "
                "configuration never keeps connections, so it is not "
                "affected; the fix is to poll `fr.ipcFd` instead of the "
                "listening socket while it is open." %
                stalls[("ka1", "/")])
        elif stalls.get(("ka1", "/")):
            out.append("- At low traffic, %d of 8 requests on a kept "
                       "connection stalled (ceiling: %d)." % (
                           stalls[("ka1", "/")],
                           stalls.get(("ka1", "/ceiling"), 0)))
        worse = [r for r in rows if r[2] > 2 * echo_p99 or r[4] or
                 r[3] > 1000]
        for k, rps, p99, mx, errs in rows:
            per_run = [r["rps"] for r in self.runs("ka%d" % k, "c")]
            out.append("- keepalive %d: `echo` %s req/s median (runs: %s; "
                       "%+.0f%% against no keepalive), p99 %.2f ms (%.2f "
                       "without), max %.0f ms%s." % (
                           k, fmt_int(rps), ", ".join(fmt_int(x) for x in
                                                      per_run),
                           100 * (rps / echo - 1), p99, echo_p99, mx,
                           ", %d timeouts" % errs if errs else ""))
        lows = [(r["rps"], k, key) for k in KEEPALIVE for key in "bcf"
                for r in self.runs("ka%d" % k, key)]
        if lows:
            lo = min(lows)
            out.append("- The worst run: keepalive %d, case (%s): %s req/s; "
                       "a run whose p99 is below a millisecond and whose "
                       "throughput collapsed is one where all but a few "
                       "connections waited for the whole run (their "
                       "requests never completed, so they are in no "
                       "percentile). The ceiling (b) collapses the same "
                       "way: the pinning is libfcgi's, not the server's." %
                       (lo[1], lo[2], fmt_int(lo[0])))
        out.append("")
        if worse or best[1] < echo * 1.1:
            out.append(
                "The shipped configuration keeps **no upstream keepalive** "
                "(`fastcgi_keep_conn off`, no `keepalive` in an upstream "
                "block): %s A libfcgi responder serves one connection at a "
                "time and, with `fastcgi_keep_conn on`, stays on that "
                "connection after answering; a connection nginx keeps idle "
                "therefore pins a responder, and the requests nginx sends "
                "on new connections wait in the listen backlog until nginx "
                "closes a kept one. The gain keepalive brings (no "
                "connect/accept/close per request) does not pay for that "
                "risk, which grows with the keepalive setting and shrinks "
                "only when responders outnumber kept connections." %
                ("with keepalive the tail latency is worse (p99 up to "
                 "%.0f ms, max up to %.0f ms against %.2f ms p99 without)"
                 " and/or requests fail, at every setting measured." % (
                     max(r[2] for r in rows), max(r[3] for r in rows),
                     echo_p99) if worse else
                 "keepalive gains less than 10%% in throughput at best "
                 "(keepalive %d: %+.0f%%)." % (best[0], 100 * (best[1] /
                                                             echo - 1))))
        else:
            out.append(
                "Keepalive %d gained %+.0f%% without a worse tail in this "
                "run; the shipped configuration nevertheless keeps none, "
                "because the pinning described in README.md appears as "
                "soon as nginx keeps more connections than there are "
                "responders (rows above with more kept connections than "
                "responders), a setting that is easy to get wrong when "
                "BM_WORKERS changes." % (best[0], 100 * (best[1] / echo - 1)))
        return out

    def memory(self, w):
        b = self.b
        w("## Memory")
        w("")
        w("RSS from `/proc/<pid>/status` of the master and each responder "
          "of the server under test: at rest (started, installed, one "
          "contact created), after a %d s mixed warm-up (%s requests), and "
          "after %s more requests (the throughput runs, then %s requests "
          "of mixed load: echo, unknown action, refused token, "
          "contact_updated, contact_created, invalid JSON, neither event "
          "nor action, not an object, in turn). No responder died (the pool "
          "starts and retires some, compared where present in both): %s."
          % (WARMUP, fmt_int(b.app_requests_warm), fmt_int(b.mem_requests),
             fmt_int(b.mem_requests - b.app_requests),
             "yes" if b.pids_same else "**no**"))
        w("")
        w("| process | VmRSS at rest | after warm-up | after %s | change "
          "after warm-up | RssAnon after warm-up → after | Berkeley DB "
          "mappings after warm-up → after |" % fmt_int(b.mem_requests))
        w("|---|---:|---:|---:|---:|---:|---:|")
        for i, pid in enumerate(sorted(b.mem_after, key=lambda p: (
                p != b.srv.pid, p))):
            rest = b.mem_rest.get(pid, {})
            warm = b.mem_warm.get(pid, {})
            after = b.mem_after[pid]
            name = "master" if pid == b.srv.pid else "responder"
            w("| %s (pid %d) | %s | %s | %s | %+d kB | %s → %s | %s → %s |"
              % (name, pid, fmt_kb(rest.get("VmRSS", 0)),
                 fmt_kb(warm.get("VmRSS", 0)),
                 fmt_kb(after.get("VmRSS", 0)),
                 after.get("VmRSS", 0) - warm.get("VmRSS", 0),
                 fmt_kb(warm.get("RssAnon", 0)),
                 fmt_kb(after.get("RssAnon", 0)),
                 fmt_kb(warm.get("db", 0)), fmt_kb(after.get("db", 0))))
        w("")
        w(self.mem_growth()[2])
        w("")

    def valgrind(self, w):
        b = self.b
        w("## Valgrind")
        w("")
        r = b.vg_result
        if r is None:
            w("Skipped: valgrind not found.")
            w("")
            return
        w("The server started under valgrind (command in *Reproduce*), "
          "installed, then %s mixed requests through nginx (%d s, 8 "
          "connections; the same mix as the memory phase), then SIGTERM "
          "to the master; exit status %s. One log per process "
          "(`--log-file=vg.%%p.log`): the master, its %d responders, and "
          "the short-lived child the master forks at start to probe the "
          "store. Definitely lost in all: **%d bytes**; errors in all: "
          "**%d**." % (fmt_int(b.vg_requests), VG_SECONDS, r["status"],
                       WORKERS, r["definite"], r["errors"]))
        w("")
        w("```")
        for name, text in r["logs"].items():
            pid = re.search(r"vg\.(\d+)\.log", name)
            pid = int(pid.group(1)) if pid else 0
            role = "master" if pid == r["pids"][0] else \
                "responder" if pid in r["pids"] else \
                "a short-lived child of the master: the store probe at start"
            w("== %s (%s)" % (name, role))
            for line in text.splitlines():
                line = re.sub(r"^==\d+== ", "", line)
                if re.match(r"\s*(in use at exit|total heap usage|"
                            r"definitely lost|indirectly lost|possibly lost|"
                            r"still reachable|suppressed|ERROR SUMMARY|"
                            r"All heap blocks)", line):
                    w(line)
        w("```")
        w("")
        ctx = {}
        for name, text in r["logs"].items():
            for m in re.finditer(r"==\d+== (Conditional jump[^\n]*|Invalid "
                                 r"[^\n]*|Use of uninitialised[^\n]*|"
                                 r"Syscall param[^\n]*)\n((?:==\d+==    "
                                 r"(?:at|by) [^\n]*\n)+)", text):
                frames = [re.sub(r"^==\d+==\s+(at|by) 0x[0-9A-F]+: ", "",
                                 f) for f in m.group(2).splitlines()]
                key = (m.group(1), frames[0])
                own = [f for f in frames if re.search(r"\(\w+\.c:\d+\)", f)]
                ctx.setdefault(key, [0, own[:3]])[0] += 1
        if ctx:
            w("Error contexts (first frame, then the first frames in "
              "botmatic-fcgi's code):")
            w("")
            for (what, first), (n, own) in ctx.items():
                w("- %s, at `%s`, in %d process(es), from %s" % (
                    what, first, n, " ← ".join("`%s`" % f for f in own)
                    or "(no frame of ours)"))
            w("")
            if all("libdb" in first for (_, first) in ctx):
                w("Every error is inside libdb-5.3 (Debian's build, without "
                  "`--enable-umrw`, leaves parts of its pages and stack "
                  "uninitialised: the same family as the entries of "
                  "`tests/valgrind.supp`, which does not cover this "
                  "frame yet); none is in botmatic-fcgi's code. Adding a "
                  "suppression for it (`Memcheck:Cond`, `fun:__bam_stkrel`) "
                  "to `tests/valgrind.supp` would make the run clean.")
                w("")

    def store(self, w):
        b = self.b
        w("## Store and mapping")
        w("")
        w("`%s` (%.0f s in all, %s), then `%s`:" % (
            " ".join(b.store_argv), b.store_secs,
            "quick sizes" if QUICK else "full sizes: 200,000 saves and "
            "gets per measurement; delete-all of an integration holding "
            "1,000,000 pairs in a store holding 10,000,000 (the 9,000,000 "
            "others spread over 9 integrations, the target loaded in the "
            "middle of the key range)", " ".join(b.mapping_argv)))
        w("")
        w("```")
        w(b.store_out.strip())
        w(b.mapping_out.strip())
        w("```")
        w("")
        m = re.search(r"store load (\d+) pairs: ([\d.]+) s", b.store_out)
        if m:
            w("Loading the store took %s s of the %.0f s (batches of 5,000 "
              "pairs per transaction); the delete-all line is the figure "
              "asked for. Each save is one transaction (`write` "
              "durability, `DB_TXN_WRITE_NOSYNC`) with two puts and the "
              "reads that keep the two directions a bijection; the 2-process "
              "figures are the sum of two processes sharing the "
              "environment." % (m.group(2), b.store_secs))
            w("")

    def problems(self, w):
        b = self.b
        w("## Problems seen")
        w("")
        ka = [p for p in b.problems if re.match(r"ka\d+, ", p)]
        other = [p for p in b.problems if p not in ka]
        if not other and not b.srv_errors:
            w("In the shipped configuration, none: every request of every "
              "case got the expected status (wrk counted no socket error "
              "or timeout), and the server logged no warning or error.")
        for p in other:
            w("- " + p)
        if ka:
            w("")
            w("With upstream keepalive (see that section: the expected "
              "consequence of pinned responders), %d runs of %d had "
              "requests still unanswered after %d s:" % (
                  len(ka), RUNS * 3 * len(KEEPALIVE), WRK_TIMEOUT))
            w("")
            for p in ka:
                w("- " + p)
        if b.srv_errors:
            kinds = {}
            for line in b.srv_errors:
                # time LEVEL pid request-id component: message
                parts = line.split(" ", 4)
                msg = " ".join((parts[1], parts[4])) if len(parts) == 5 \
                    else line
                msg = re.sub(r"[0-9a-f]{32}|\d+", "N", msg)
                kinds[msg] = kinds.get(msg, 0) + 1
            w("- the server under test logged %d warning/error lines (of "
              "%s), by kind (numbers and ids as N):" % (
                  len(b.srv_errors), fmt_int(b.srv_log_lines)))
            w("")
            w("```")
            for msg, n in sorted(kinds.items(), key=lambda x: -x[1])[:10]:
                w("%8d  %s" % (n, msg))
            w("```")
        w("")

    def method(self, w):
        b = self.b
        w("## Reproduce")
        w("")
        w("```")
        w("./autogen.sh && mkdir -p _b && cd _b && ../configure")
        w("make -j2 && make bench          # BENCH_QUICK=1 make bench: "
          "seconds per case")
        w("```")
        w("")
        w("`make bench` builds the server, the modules and the benchmark "
          "programs (`bench-store`, `bench-mapping`, `fcgi-ceiling`), then "
          "runs `tests/bench/run-bench.py`, which starts everything in a "
          "temporary directory, stops it by PID and removes it. The rows "
          "come from these commands (`$T` is that directory):")
        w("")
        w("```")
        w("# the server under test (bmtest.Server: BM_LISTEN=$T/app.sock, "
          "BM_DB_HOME=$T/db)")
        w(" ".join("%s=%s" % (k, v.replace(b.t.tmp, "$T").replace(
            b.t.builddir + "/", "")) for k, v in sorted(b.srv_env.items()))
          + " BM_LISTEN=$T/app.sock BM_DB_HOME=$T/db ./botmatic-fcgi")
        w("# the same with BM_WORKERS=%d, BM_LISTEN=$T/app-more.sock, "
          "BM_DB_HOME=$T/db-more" % MORE_WORKERS)
        w("# the FastCGI ceilings (b)")
        w("./fcgi-ceiling -s $T/ceiling.sock -w %d" % WORKERS)
        w("./fcgi-ceiling -s $T/ceiling-more.sock -w %d" % MORE_WORKERS)
        w("# nginx: the configuration below, then install and one "
          "contact_created for id 101 through it")
        w("nginx -p $T/nginx/ -c $T/nginx/nginx.conf")
        w("# each case: wrk with a script that sets the method, headers and "
          "body, and prints the summary")
        w("wrk -t%d -c%d -d%ds --timeout %ds -s CASE.lua "
          "http://127.0.0.1:PORT/        # /ceiling for (b)" %
          (WRK_THREADS, CONNS, DURATION, WRK_TIMEOUT))
        if b.vg_result is not None:
            w("# valgrind")
            w(" ".join(a.replace(b.t.tmp, "$T").replace(
                b.t.srcdir, "$SRC").replace(b.t.builddir, ".")
                for a in b.vg_argv))
        w(" ".join(b.store_argv))
        w(" ".join(b.mapping_argv))
        w("```")
        w("")
        w("The nginx configuration (paths shortened to `$T`, `$SRC`):")
        w("")
        w("```nginx")
        w(b.ngx.conf_text.replace(b.t.tmp, "$T").replace(b.t.srcdir,
                                                         "$SRC").rstrip())
        w("```")
        w("")
        w("The wrk script of (c), and of (g) (its `request()` makes the "
          "unique ids):")
        w("")
        w("```lua")
        w(lua_case(SHIPPED_CASES[2], 0).replace(TOKEN, "TOKEN").rstrip())
        w("```")
        w("")
        w("```lua")
        w(lua_case(SHIPPED_CASES[6], 10 ** 10).replace(TOKEN, "TOKEN")
          .split("function done")[0].rstrip())
        w("```")
        w("")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("BM_TEST_SRCDIR") or os.path.dirname(
            os.path.dirname(HERE)), "BENCHMARKS.md")
    Bench(out).run()


if __name__ == "__main__":
    main()
