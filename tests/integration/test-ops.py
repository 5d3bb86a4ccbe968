#!/usr/bin/env python3
"""Operating the server (SPEC §15):

- BM_STATUS_PATH through nginx: JSON, and Prometheus text that Debian's
  python3-prometheus-client parser reads; the counters move as requests are
  sent (requests by status and kind, the duration histogram, outbound calls
  to Botmatic by outcome, reloads); only GET;
- the request log line (method, path, status, duration, client, install id,
  never the token), and BM_LOG_FORMAT=json: every line one JSON object,
  control bytes and invalid UTF-8 in request data escaped;
- botmatic-fcgi -t on good and bad configurations, beside a running server
  it leaves alone;
- sd_notify, seen on a NOTIFY_SOCKET made here: READY=1 once serving;
  a SIGHUP with a bad configuration sends RELOADING=1, then READY=1 with
  STATUS=reload failed: <reason>, and the old generation keeps serving; a
  good one ends with READY=1 once the new responders serve."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test()
binary = t.build_file("botmatic-fcgi")
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client is pure Python, installed for the
    # system python3; a python3 of its own (pyenv) can still read it.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None
with open(t.build_file("config.h")) as f:
    HAVE_SYSTEMD = "#define HAVE_LIBSYSTEMD 1" in f.read()

GOOD, FLAKY, BAD = "ops-good-token", "ops-flaky-token", "ops-bad-token"
HEXID = re.compile(r"install=([0-9a-f]{32})\b")


# --- a Botmatic stand-in: validates GOOD, refuses BAD, 503 for FLAKY --------
def validate(rec):
    tok = rec.form().get("token", [None])[0]
    if tok == FLAKY:
        return 503, {"error": "busy"}, 0
    return 200, {"success": tok == GOOD}, 0


botmatic = t.standin().route("POST", r"/api/integrationtokens/validate",
                             validate)
envfile = os.path.join(t.tmp, "env")
with open(envfile, "w") as f:
    f.write("BM_WORKERS=2\n")
notify_path = os.path.join(t.tmp, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.settimeout(0.2)
notes = []


def notes_until(pred, timeout=20):
    """Reads notifications until pred(notes) or timeout; returns pred's value."""
    end = time.monotonic() + timeout
    while not pred(notes) and time.monotonic() < end:
        try:
            notes.append(notify.recv(4096).decode("utf-8", "replace"))
        except socket.timeout:
            pass
    return pred(notes)


srv = t.server({"BM_AUTH": "validate", "BM_MODULES": t.module("echo"),
                "BM_STATUS_PATH": "/status", "BM_ENV_FILE": envfile,
                "BM_LOG_LEVEL": "info", "BOTMATIC_BASE_URL": botmatic.url,
                "NOTIFY_SOCKET": notify_path})
ngx = t.nginx(srv).start()


def status():
    r = ngx.request("GET", "/status")
    return r.json() if r.status == 200 else {"http": r.status}


def scrape():
    """The Prometheus text, as {sample name + sorted labels: value}, and
    the families by name (type, samples)."""
    r = ngx.request("GET", "/status?format=prometheus")
    text = r.body.decode("utf-8")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {}
    for f in fams.values():
        for s in f.samples:
            key = s.name + "{" + ",".join("%s=%s" % kv for kv in
                                          sorted(s.labels.items())) + "}"
            samples[key] = s.value
    return r, fams, samples


# --- status, JSON ------------------------------------------------------------
if HAVE_SYSTEMD:
    t.ok(notes_until(lambda n: any("READY=1" in x for x in n)),
         "sd_notify: READY=1 once the first responders serve", *notes)
else:
    t.skip("built without libsystemd: no sd_notify", 1)

s0 = status()
resp = s0.get("responders", {})
t.ok(resp.get("busy", 0) >= 1 and resp.get("busy", 0) + resp.get("idle", 0)
     == 2 and "stopping" in resp and "starting" in resp,
     "status JSON: responders by state (the one answering is busy)", s0)
before = s0.get("requests_total", {})
codes = [ngx.post({"action": "echo", "data": {"i": i}}, token=GOOD).status
         for i in range(3)]
t.is_(codes, [200] * 3, "echo with a token Botmatic validates: 200")
ngx.post({"action": "echo"}, token=BAD)
ngx.post({"action": "echo"}, token=FLAKY)
ngx.request("GET", "/")
s1 = status()


def cell(s, st, kind):
    return s.get("requests_total", {}).get(st, {}).get(kind, 0)


t.is_((cell(s1, "200", "action") - cell(s0, "200", "action"),
       cell(s1, "401", "action") - cell(s0, "401", "action"),
       cell(s1, "405", "none") - cell(s0, "405", "none"),
       cell(s1, "200", "status") - cell(s0, "200", "status")),
      (3, 2, 1, 1),
      "requests by status and kind move: 3 echoes, 2 tokens Botmatic did "
      "not validate, a GET of the endpoint, a status read")
t.ok(s1.get("requests_by_status", {}).get("200", 0) >=
     cell(s1, "200", "action") + cell(s1, "200", "status"),
     "requests_by_status sums the kinds", s1.get("requests_by_status"))
ob = s1.get("outbound_requests_total", {}).get("botmatic", {})
t.is_((ob.get("ok"), ob.get("http_error"), ob.get("failed")), (2, 1, 0),
      "outbound calls to Botmatic by outcome: GOOD and BAD validated "
      "(answers), FLAKY a 503")
h = s1.get("request_duration_seconds", {})
t.ok(h.get("count") == h.get("buckets", {}).get("+Inf") and
     h.get("count", 0) >= 7 and h.get("sum", -1) >= 0,
     "the duration histogram counts every request", h)
t.ok(s1.get("responder_starts_total") == 2 and
     s1.get("store_recoveries_total") == {"ok": 0, "failed": 0} and
     s1.get("watchdog_escalations_total") == 0 and
     s1.get("reloads_total") == {"ok": 0, "failed": 0},
     "responder starts, store recoveries, watchdog escalations, reloads",
     s1)
t.is_(s1.get("jobs_total"), {"queued": 0, "done": 0, "retried": 0,
                              "dead": 0},
      "the delivery queue's counters: nothing queued without contact sync")

r = ngx.request("POST", "/status", b"{}", token=GOOD)
t.is_((r.status, r.header("Allow")), (405, "GET"),
      "POST to the status path: 405, Allow: GET")

# --- status, Prometheus -------------------------------------------------------
if text_string_to_metric_families is None:
    t.skip("python3-prometheus-client missing", 4)
else:
    r, fams, a = scrape()
    t.ok(r.status == 200 and r.ctype.startswith("text/plain") and
         "version=0.0.4" in r.header("Content-Type", ""),
         "?format=prometheus: text/plain; version=0.0.4",
         r.header("Content-Type"))
    types = {n: f.type for n, f in fams.items()}
    want = {"botmatic_requests": "counter",
            "botmatic_request_duration_seconds": "histogram",
            "botmatic_responders": "gauge",
            "botmatic_outbound_requests": "counter",
            "botmatic_store_recoveries": "counter",
            "botmatic_watchdog_escalations": "counter",
            "botmatic_reloads": "counter",
            "botmatic_jobs": "counter"}
    t.ok(all(types.get(k) == v for k, v in want.items()) and
         all(f.documentation for f in fams.values()),
         "the parser reads every family with its HELP and TYPE", types)
    for i in range(2):
        ngx.post({"action": "echo", "data": {}}, token=GOOD)
    _, _, b = scrape()
    k = 'botmatic_requests_total{kind=action,status=200}'
    hc = "botmatic_request_duration_seconds_count{}"
    t.is_((b.get(k, 0) - a.get(k, 0), b.get(hc, 0) - a.get(hc, 0)),
          (2.0, 3.0), "counters move between two scrapes (2 echoes, and "
          "the first scrape itself in the histogram)")
    t.is_(b.get('botmatic_outbound_requests_total{outcome=ok,'
                'target=botmatic}'), 2.0,
          "outbound: a recorded installation needs no new validation")

# --- the request log line --------------------------------------------------------
lines = srv.grep(r" INFO \d+ \S+ request: ")
st = [l for l in lines if "request: GET /status 200 " in l]
t.ok(st and re.search(r"request: GET /status 200 \d+\.\dms "
                      r"client=127\.0\.0\.1 install=-$", st[0]),
     "request line: method, path, status, duration, client, install",
     *lines[:3])
echo = [l for l in lines if "request: POST / 200 " in l]
t.ok(echo and all(HEXID.search(l) for l in echo) and
     echo[0].endswith("name=echo"),
     "a validated request's line carries its install id, not the token",
     *echo[:2])
t.ok(GOOD not in srv.log() and FLAKY not in srv.log(),
     "no token anywhere in the log")

# --- botmatic-fcgi -t ----------------------------------------------------------
def check(extra, drop=()):
    env = dict(srv.env)
    env.pop("NOTIFY_SOCKET", None)
    for k in drop:
        env.pop(k, None)
    env.update(extra)
    r = subprocess.run([binary, "-t"], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return (r.returncode, r.stdout.decode("utf-8", "replace"),
            r.stderr.decode("utf-8", "replace"))


rc, out, err = check({})
t.ok(rc == 0 and out == "botmatic-fcgi: configuration ok\n",
     "-t with the running server's own configuration: exit 0, ok", out, err)
r = ngx.post({"action": "echo", "data": {}}, token=GOOD)
t.ok(r.status == 200 and len(srv.responders()) == 2,
     "the running server is untouched by -t")
notafile = os.path.join(t.tmp, "plain-file")
with open(notafile, "w") as f:
    f.write("x")
badmap = os.path.join(t.tmp, "bad-map.json")
with open(badmap, "w") as f:
    f.write('[{"botmatic": {"name": "a"}}]')
for name, extra, drop, rx in (
        ("a bad BM_WORKERS", {"BM_WORKERS": "lots"}, ("BM_ENV_FILE",),
         r"BM_WORKERS"),
        ("BM_DB_HOME missing", {}, ("BM_DB_HOME",), r"BM_DB_HOME"),
        ("BM_DB_HOME a file", {"BM_DB_HOME": notafile}, (),
         r"BM_DB_HOME: .*not a directory"),
        ("a missing module", {"BM_MODULES": "/nonexistent/mod.so"}, (),
         r"/nonexistent/mod\.so"),
        ("a bad mappings file", {"BM_MAPPINGS": badmap,
                                 "BM_EXT_BASE_URL": "http://127.0.0.1:1"},
         (), r"BM_MAPPINGS"),
        ("BM_STATUS_PATH = BM_ENDPOINT", {"BM_STATUS_PATH": "/"}, (),
         r"BM_STATUS_PATH")):
    rc, out, err = check(extra, drop)
    t.ok(rc == 1 and out == "" and re.search(rx, err) and
         err.endswith("botmatic-fcgi: configuration test failed\n"),
         "-t with %s: exit 1, says why" % name, err)

# --- reloads ---------------------------------------------------------------------
pids = sorted(srv.responders())
notes.clear()
with open(envfile, "w") as f:
    f.write("BM_WORKERS=many\n")
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"reload failed", since=mark)
if HAVE_SYSTEMD:
    ok = notes_until(lambda n: any("STATUS=reload failed" in x for x in n))
    t.ok(ok and notes[0].startswith("RELOADING=1") and
         any(re.search(r"^READY=1\nSTATUS=reload failed: conf: BM_WORKERS:",
                       x) for x in notes),
         "bad reload: RELOADING=1, then READY=1 and STATUS=reload failed: "
         "<reason>", *notes)
else:
    t.skip("built without libsystemd: no sd_notify", 1)
r = ngx.post({"action": "echo", "data": {}}, token=GOOD)
t.ok(r.status == 200 and sorted(srv.responders()) == pids,
     "after a bad reload the old generation keeps serving", pids,
     srv.responders())
t.is_(status().get("reloads_total"), {"ok": 0, "failed": 1},
      "reloads_total counts the failure")

notes.clear()
with open(envfile, "w") as f:
    f.write("BM_WORKERS=3\n")
mark = srv.mark()
srv.kill(signal.SIGHUP)
done = srv.wait_log(r"master: reload done", since=mark, timeout=30)
if HAVE_SYSTEMD:
    ok = notes_until(lambda n: any("(reloaded)" in x for x in n))
    t.ok(ok and notes[0].startswith("RELOADING=1") and
         any(x.startswith("READY=1\nSTATUS=serving with 3 responders")
             for x in notes),
         "good reload: RELOADING=1, then READY=1 once the new generation "
         "serves", *notes)
else:
    t.skip("built without libsystemd: no sd_notify", 1)
s2 = status()
t.ok(done and s2.get("reloads_total") == {"ok": 1, "failed": 1} and
     sum(s2.get("responders", {}).values()) == 3,
     "the good reload is counted, 3 responders serve", s2)
t.is_(srv.stop(), 0, "the server stops with 0")
t.ok(not srv.sanitizer_reports(), "no sanitizer report",
     *srv.sanitizer_reports()[:5])

# --- BM_LOG_FORMAT=json ----------------------------------------------------------
js = t.server({"BM_AUTH": "any", "BM_MODULES": t.module("echo"),
               "BM_LOG_FORMAT": "json", "BM_LOG_LEVEL": "debug",
               "BM_WORKERS": 1}, name="json", start=False)
js.start(wait=False)
# bmtest waits for the text form of the listening line; this one is JSON.
t.ok(bmtest.wait_until(lambda: js.grep(r'"msg":"listening on ') and
                       len(js.responders()) == 1, 20),
     "the server starts with BM_LOG_FORMAT=json", js.log())
r = bmtest.fcgi_webhook(js.sock, {"action": "echo", "data": {}},
                        token="json-token")
odd = bmtest.fcgi_request(js.sock, {
    "REQUEST_METHOD": "GET", "DOCUMENT_URI": b"/x\n\x1b[31m fake\xff\"",
    "REQUEST_URI": "/x", "REMOTE_ADDR": "127.0.0.1"})
js.wait_log(r'"component":"request".*"method"', count=2)
js.stop()
raw = open(js.log_path, "rb").read()
objs, bad = [], []
for line in raw.split(b"\n")[:-1]:
    try:
        objs.append(json.loads(line.decode("utf-8")))
    except ValueError:
        bad.append(line)
t.ok(objs and not bad and all({"ts", "level", "pid", "reqid", "msg"} <=
                              set(o) for o in objs),
     "BM_LOG_FORMAT=json: every line is one JSON object with ts, level, "
     "pid, reqid, msg", *[repr(b) for b in bad[:3]])
reqs = [o for o in objs if o.get("component") == "request" and "method" in o]
t.ok(len(reqs) == 2 and reqs[0]["method"] == "POST" and
     reqs[0]["path"] == "/" and reqs[0]["status"] == 200 and
     isinstance(reqs[0]["duration_ms"], float) and
     reqs[0]["client"] == "127.0.0.1" and reqs[0]["install"] is None,
     "the request line's fields are members", reqs[:1])
t.ok(len(reqs) == 2 and reqs[1]["path"] == "/x\n\x1b[31m fake\ufffd\"" and
     reqs[1]["status"] == 404,
     "control bytes and invalid UTF-8 in the path stay inside the string",
     reqs[1:])
t.done()
