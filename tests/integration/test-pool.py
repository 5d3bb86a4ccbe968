#!/usr/bin/env python3
"""The dynamic responder pool (SPEC §9, issue 10), through a real nginx:

- the external service hung (it accepts and answers nothing until the test
  lets it) and 32 clients sending contact_updated: the pool grows past
  BM_WORKERS, every one of those requests reaches the service, and echo
  and install are answered while all 32 still wait; the responder count
  (the master's children, from /proc) never passes BM_WORKERS_MAX;
- SIGHUP while grown and loaded: every request is answered (no refusal,
  no 502), every responder is replaced, the pool stays at least as large
  as the load needs;
- a responder of the grown pool SIGKILLed is reaped, logged and replaced
  (supervision covers every slot);
- the load gone, the pool shrinks back to BM_WORKERS after
  BM_WORKERS_IDLE_TIMEOUT, each retired responder logged;
- BM_WORKERS_MAX below BM_WORKERS, and bad values, refused at start with
  one line naming the variable.

Only processes this test started are signalled, by PID."""

import json
import os
import re
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402
from bmtest import wait_until  # noqa: E402

t = bmtest.Test()
TOKEN = "tok-pool-6c1d0e"
WORKERS = 2
WORKERS_MAX = 40
CLIENTS = 32

gate = threading.Event()        # set: the external service answers
ext_lock = threading.Lock()
ext_next = [1]


def ext_handle(rec):
    """The external service: hangs until the gate opens, then answers like
    a contacts API (no contact found by email; created)."""
    gate.wait()
    if rec.method == "GET":
        return 200, [], 0
    if rec.method == "POST":
        with ext_lock:
            ext_next[0] += 1
            return 201, {"id": ext_next[0]}, 0
    return 200, {"ok": True}, 0


def bm_handle(rec):
    if rec.path == "/api/integrationtokens/validate":
        return 200, {"success": rec.form().get("token") == [TOKEN]}, 0
    if rec.path == "/api/properties":
        return 201, {"success": True}, 0
    return 200, {"success": True}, 0


ext = t.standin()
ext.route("*", r"/contacts(/.*)?", ext_handle)
t.defer(gate.set)               # no stand-in thread outlives the test
bm = t.standin()
bm.route("*", r"/api/.*", bm_handle)

mapfile = os.path.join(t.tmp, "mappings.json")
with open(mapfile, "w") as f:
    json.dump([{"id": True, "botmatic": {"name": "id"},
                "ext": {"name": "id"}},
               {"botmatic": {"name": "email"}, "ext": {"name": "email"}}], f)

srv = t.server({
    "BOTMATIC_BASE_URL": bm.url, "BM_EXT_BASE_URL": ext.url,
    "BM_MAPPINGS": mapfile, "BM_MODULES": t.module("echo"),
    "BM_WORKERS": WORKERS, "BM_WORKERS_MAX": WORKERS_MAX,
    "BM_WORKERS_IDLE_TIMEOUT": 2,
    # The hung calls last as long as the test holds the gate.
    "BM_HTTP_TIMEOUT": 300000, "BM_SHUTDOWN_TIMEOUT": 300,
    "BM_LOG_LEVEL": "info", "BM_STATUS_PATH": "/status",
})
ngx = t.nginx(srv)
master = srv.pid


def post(body, timeout=120):
    try:
        return ngx.post(body, token=TOKEN, timeout=timeout)
    except Exception as e:      # refused, reset, timeout
        return e


def echo_ok(i):
    """One echo; None when answered as expected, else what came back."""
    data = {"i": i}
    r = post({"action": "echo", "data": data})
    if isinstance(r, Exception) or r.status != 200 or \
            r.json() != {"data": {"echo": data}, "type": "data",
                         "success": True}:
        return r
    return None


r = post({"event": "install", "data": {}})
t.ok(not isinstance(r, Exception) and r.status == 200 and
     r.json()["success"] is True, "installed", r)
t.is_(len(srv.responders()), WORKERS, "BM_WORKERS responders at start")

# --- the service hangs, 32 clients wait on it ---------------------------------
peak = [0]
sampling = threading.Event()


def sample():
    while not sampling.is_set():
        peak[0] = max(peak[0], len(srv.responders()))
        sampling.wait(0.01)


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
answers = {}


def contact(i):
    answers[i] = post({"event": "contact_updated",
                       "data": {"id": 500 + i,
                                "email": "c%d@example.com" % i}})


clients = [threading.Thread(target=contact, args=(i,), daemon=True)
           for i in range(CLIENTS)]
for th in clients:
    th.start()
reached = wait_until(lambda: len(ext.received()) >= CLIENTS, 120)
t.ok(reached, "the pool grew until all %d contact_updated reached the hung "
     "service (%d did)" % (CLIENTS, len(ext.received())))
t.ok(len(srv.grep(r"master: pool: every responder busy")) >= 1,
     "the growth is logged")

bad = [e for e in (echo_ok(i) for i in range(5)) if e is not None]
pending = sum(th.is_alive() for th in clients)
t.ok(not bad and pending == CLIENTS,
     "echo answered 5 times while the %d clients still wait on the "
     "service" % pending, bad)
r = post({"event": "install", "data": {}})
pending = sum(th.is_alive() for th in clients)
t.ok(not isinstance(r, Exception) and r.status == 200 and
     r.json()["success"] is True and pending == CLIENTS,
     "install answered while they still wait", r)
sampling.set()
sampler.join()
t.ok(CLIENTS + 1 <= peak[0] <= WORKERS_MAX,
     "responders reached: %d, above the %d hung requests and at most "
     "BM_WORKERS_MAX=%d" % (peak[0], CLIENTS, WORKERS_MAX))
started = len(srv.grep(r"master: responder \d+ started"))
t.ok(WORKERS + 1 <= started <= WORKERS_MAX,
     "%d responders started in all, none past the max" % started)

# --- SIGHUP while grown and loaded ----------------------------------------------
before = set(srv.responders())
mark = srv.mark()
stream_stop = threading.Event()
stream_bad = []
stream_n = [0]


def stream(k):
    i = 0
    while not stream_stop.is_set():
        e = echo_ok(k * 100000 + i)
        stream_n[0] += 1
        if e is not None:
            stream_bad.append(e)
        i += 1


streams = [threading.Thread(target=stream, args=(k,), daemon=True)
           for k in range(4)]
for th in streams:
    th.start()
srv.kill(signal.SIGHUP)
srv.wait_log(r"master: reloading", since=mark)
# Half the old responders replaced while the hung requests hold theirs.
wait_until(lambda: len(srv.grep(r"master: responder \d+ started",
                                mark)) >= len(before) // 2, 120)
gate.set()
for th in clients:
    th.join(120)
done = srv.wait_log(r"master: reload done", timeout=120, since=mark)
stream_stop.set()
for th in streams:
    th.join(120)
t.ok(not stream_bad and stream_n[0] > 0,
     "%d echo requests during the reload: every one answered 200" %
     stream_n[0], stream_bad[:3])
got = [answers.get(i) for i in range(CLIENTS)]
bad = [a for a in got if isinstance(a, Exception) or a is None or
       a.status != 200 or a.json().get("success") is not True]
t.ok(not bad, "the %d contact_updated held across the reload all answered "
     "200 with success" % CLIENTS, bad[:3])
after = set(srv.responders())
t.ok(done and not (before & after),
     "reload done: no responder of the old generation left", before & after)
idled = len(srv.grep(r"master: pool: responder \d+ idle for", mark))
t.ok(srv.pid == master and len(after) + idled >= len(before) and
     len(after) <= WORKERS_MAX,
     "the master stays; the reload kept the grown pool: %d responders "
     "after it (+%d retired idle since the load ended) for %d before" %
     (len(after), idled, len(before)))
ngx_errors = [l for l in open(ngx.access_log).read().splitlines()
              if re.search(r'" (50[0-9]) ', l)]
t.ok(not ngx_errors, "nginx logged no 5xx", ngx_errors[:3])

# --- supervision covers every slot: a responder of the grown pool SIGKILLed ----
mark = srv.mark()
victim = max(srv.responders())          # the latest slot taken
os.kill(victim, signal.SIGKILL)
dead = srv.wait_log(r"master: responder %d killed by signal 9" % victim,
                    since=mark)
refilled = srv.wait_log(r"master: responder \d+ started", since=mark)
t.ok(dead and refilled and victim not in srv.responders(),
     "a SIGKILLed responder of the grown pool (pid %d) is reaped, logged "
     "and replaced" % victim, dead, refilled)
t.ok(echo_ok(2) is None, "echo answered after that death")

# --- the load gone, the pool shrinks back -----------------------------------------
grown = set(srv.responders())
back = wait_until(lambda: len(srv.responders()) == WORKERS, 120)
final = set(srv.responders())
t.ok(back, "the pool shrank back to BM_WORKERS=%d (%d now)" %
     (WORKERS, len(final)))
gone = grown - final
unlogged = [p for p in gone
            if not srv.grep(r"master: pool: responder %d idle for \d+ ms: "
                            r"retired" % p)]
t.ok(len(gone) == len(grown) - WORKERS and not unlogged,
     "each of the %d retired responders logged" % len(gone), unlogged)
t.ok(echo_ok(1) is None, "echo still answered after the shrink")
t.is_(len(srv.responders()), WORKERS, "no growth for one request")


def metric(text, name):
    for line in text.splitlines():
        if line.startswith("botmatic_" + name + " "):
            return float(line.split()[1])
    return None


r = ngx.request("GET", "/status?format=prometheus")
prom = r.body.decode() if r.status == 200 else ""
added = sum(int(m) for m in re.findall(
    r"master: pool: every responder busy and a request waiting: (\d+) more",
    "\n".join(srv.grep(r"master: pool: every responder busy"))))
retired = len(srv.grep(r"master: pool: responder \d+ idle for \d+ ms: "
                       r"retired"))
t.ok(added > 0 and metric(prom, "pool_grows_total") == added and
     metric(prom, "pool_retires_total") == retired and
     metric(prom, "pool_target_responders") == WORKERS,
     "status: pool_grows_total (%s), pool_retires_total (%s) and "
     "pool_target_responders match the log (%d added, %d retired)" % (
         metric(prom, "pool_grows_total"), metric(prom, "pool_retires_total"),
         added, retired), prom[-600:])
t.is_(srv.stop(), 0, "the master stops cleanly")
t.is_(srv.sanitizer_reports(), [], "no sanitizer report")

# --- bad settings refused at start --------------------------------------------------
for i, (env, rx) in enumerate([
        ({"BM_WORKERS": 4, "BM_WORKERS_MAX": 3},
         r"BM_WORKERS_MAX: 3 is below BM_WORKERS \(4\)"),
        ({"BM_WORKERS_MAX": 0}, r"BM_WORKERS_MAX: invalid value \"0\""),
        ({"BM_WORKERS_MAX": "lots"},
         r"BM_WORKERS_MAX: invalid value \"lots\""),
        ({"BM_WORKERS_MAX": 257}, r"BM_WORKERS_MAX: invalid value"),
        ({"BM_WORKERS_IDLE_TIMEOUT": 0},
         r"BM_WORKERS_IDLE_TIMEOUT: invalid value \"0\""),
        ({"BM_WORKERS_IDLE_TIMEOUT": "-5"},
         r"BM_WORKERS_IDLE_TIMEOUT: invalid value")]):
    bad_srv = t.server(env, name="bad%d" % i, start=False)
    st = bad_srv.run_to_exit()
    lines = [l for l in bad_srv.log().splitlines() if l.strip()]
    t.ok(st == 1 and len(lines) == 1 and re.search(rx, lines[0]) and
         not os.path.exists(bad_srv.db),
         "refused at start, one line: %s" % " ".join(
             "%s=%s" % kv for kv in env.items()), st, lines)

t.done()
