#!/usr/bin/env python3
"""The keystore as the server uses it (issue: keystore).

1. Modules reach the keystore of the request's installation; uninstall
   forgets the installation, its pairs and its state.
2. A command-line tool killed while it holds locks wedges the responders
   that need them: the master's watchdog escalates (stops every responder,
   recovers the environment) and service comes back.
3. Under load, responders are SIGKILLed at random instants (at least 20
   times, some while others wait for the same keys): every pair whose save
   was answered 200 is in the store afterwards, and service comes back
   within a bounded time after each kill."""
import json
import os
import random
import signal
import subprocess
import threading
import time

import bmtest

t = bmtest.Test()
KILLS = int(os.environ.get("BM_TEST_KILLS", "24"))
t.plan(18)

TOKEN = "tok-ks-3c9e1f"
keys_bin = t.build_file("botmatic-keys")

# A store that cannot be opened stops the start with the path and the reason.
bad = t.server({"BM_DB_HOME": "/dev/null/db", "BM_AUTH": "any"},
               name="badstore", start=False)
st = bad.run_to_exit()
t.ok(st == 1 and bad.grep(r"ERROR .*BM_DB_HOME: .*/dev/null/db.*: "
                          r"Not a directory"),
     "an unusable BM_DB_HOME stops the start with the path and the reason",
     bad.log())
bm = t.botmatic({TOKEN})
srv = t.server({"BOTMATIC_BASE_URL": bm.url, "BM_MODULES": t.module("testmod"),
                "BM_WORKERS": "3", "BM_DB_WATCHDOG": "2",
                "BM_LOG_LEVEL": "info"})
ngx = t.nginx(srv)
modes = {os.path.basename(srv.db): os.stat(srv.db).st_mode & 0o777}
for f in os.listdir(srv.db):
    modes[f] = os.stat(os.path.join(srv.db, f)).st_mode & 0o777
t.ok(modes.pop(os.path.basename(srv.db)) == 0o700 and modes and
     all(m == 0o600 for m in modes.values()),
     "the environment is created 0700, its files 0600", modes)


def keys(*args, **kw):
    return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, **kw)


def stored_pairs():
    """Every pair of TOKEN in the store, from botmatic-keys export."""
    pairs = {}
    for line in keys("export").stdout.decode().splitlines():
        o = json.loads(line)
        if o.get("type") == "pair" and o.get("integration") == TOKEN:
            pairs[o["botmatic_id"]] = o["ext_id"]
    return pairs


def post(body, timeout=30):
    try:
        return ngx.post(body, token=TOKEN, timeout=timeout)
    except Exception as e:     # connection refused, reset, timeout
        return bmtest.Response(0, {}, repr(e).encode())


# --- 1. the module API and uninstall ----------------------------------------
r = post({"event": "install", "data": {"plan": "gold"}})
t.is_(r.status, 200, "install recorded")
r = post({"action": "save", "data": {"bid": "b1", "eid": "e1"}})
t.is_(r.json(), {"data": {"bid": "b1", "eid": "e1"}, "type": "data",
                 "success": True}, "a module saves a pair")
r = post({"action": "get", "data": {"bid": "b1"}})
t.is_(r.json(), {"data": {"eid": "e1"}, "type": "data", "success": True},
      "a module reads it back")
p = keys("get-ext", TOKEN, "b1")
t.ok(p.returncode == 0 and p.stdout.decode().strip() == "e1",
     "botmatic-keys sees the same pair while the server runs", p)
r = post({"action": "state", "data": {"name": "webhook",
                                      "value": {"id": 42}}})
t.is_(r.json()["data"], {"value": {"id": 42}}, "a module keeps state")
r = post({"event": "uninstall"})
t.ok(r.status == 200 and r.json() == {"data": {"event": "uninstall"},
                                      "type": "data", "success": True},
     "uninstall answers the request as data", r)
p1, p2 = keys("get-ext", TOKEN, "b1"), keys("installs")
t.ok(p1.returncode == 1 and p2.stdout.strip() == b"",
     "uninstall forgot the pairs and the installation", p1, p2)
r = post({"action": "get", "data": {"bid": "b1"}})
t.is_(r.status, 401, "and the token is refused afterwards")

# --- 2. a wedging tool --------------------------------------------------------
post({"event": "install"})
# Enough pairs that "list" blocks writing to a pipe nobody reads, inside the
# read transaction of its cursor: it then holds read locks on the pages.
lines = "".join(json.dumps({"type": "pair", "integration": TOKEN,
                            "botmatic_id": "w%05d" % i,
                            "ext_id": "x%05d" % i}) + "\n"
                for i in range(4000))
p = keys("import", "-", input=lines.encode())
t.ok(p.returncode == 0, "4000 pairs imported with botmatic-keys", p)
rd, wr = os.pipe()
tool = subprocess.Popen([keys_bin, "-d", srv.db, "list", TOKEN], stdout=wr,
                        stderr=subprocess.DEVNULL)
os.close(wr)
time.sleep(1.0)                       # it fills the pipe and blocks
tool.kill()                           # dies holding its locks
tool.wait()
mark = srv.mark()
# Writes to the locked pages wait; the watchdog must notice.
r = post({"action": "save", "data": {"bid": "w00001", "eid": "y1"}},
         timeout=60)
escalated = srv.wait_log(r"stuck in a keystore call", 30, since=mark)
t.ok(escalated, "the watchdog saw a responder stuck behind the dead tool's "
     "locks", srv.log()[mark:])
ok = bmtest.wait_until(lambda: post({"action": "save", "data": {
    "bid": "w00002", "eid": "y2"}}, timeout=10).status == 200, 60)
t.ok(ok, "service is back after the recovery")
os.close(rd)

# --- 3. kills under load ------------------------------------------------------
acked = {}                 # bid -> eid answered 200
lock = threading.Lock()
stop = threading.Event()


def client(n):
    i = 0
    rnd = random.Random(n)
    while not stop.is_set():
        i += 1
        bid, eid = "c%d-%d" % (n, i), "e%d-%d" % (n, i)
        r = post({"action": "save", "data": {"bid": bid, "eid": eid}},
                 timeout=60)
        if r.status == 200:
            with lock:
                acked[bid] = eid
        # Everyone also writes the same state key: contention.
        post({"action": "state", "data": {"name": "hot",
                                          "value": rnd.random()}},
             timeout=60)


threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
for th in threads:
    th.start()
worst = 0.0
done = 0
rnd = random.Random(7)
for k in range(KILLS):
    time.sleep(rnd.uniform(0.05, 0.6))
    pids = srv.responders()
    if not pids:
        time.sleep(0.5)
        continue
    victim = rnd.choice(pids)
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        continue
    done += 1
    t0 = time.monotonic()
    # Service is back when a fresh save succeeds.
    bmtest.wait_until(lambda: post({"action": "save", "data": {
        "bid": "probe%d" % k, "eid": "p%d" % k}}, timeout=30).status == 200,
        90)
    worst = max(worst, time.monotonic() - t0)
stop.set()
for th in threads:
    th.join(120)
t.diag("%d kills, %d saves answered 200, worst return to service %.2fs, "
       "escalations %d" % (done, len(acked), worst,
                           len(srv.grep(r"recovering the keystore"))))
t.ok(done >= 20, "at least 20 responders killed under load (%d)" % done)
t.ok(worst < 60, "service came back within 60 s after every kill "
     "(worst %.1fs)" % worst)
stored = stored_pairs()
lost = [b for b, e in acked.items() if stored.get(b) != e]
t.ok(len(acked) > 100 and not lost,
     "every pair whose save was answered 200 is stored (%d)" % len(acked),
     "lost: %r" % lost[:10])

# --- 4. the whole server killed at once, under load ---------------------------
acked.clear()
stop.clear()
threads = [threading.Thread(target=client, args=(n + 10,)) for n in range(4)]
for th in threads:
    th.start()
time.sleep(1.5)
victims = [srv.pid] + srv.children()
for pid in victims:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
srv.proc.wait(10)
for pid in victims:
    bmtest.wait_until(lambda: not bmtest.pid_alive(pid), 10)
stop.set()
for th in threads:
    th.join(120)
srv2 = t.server({"BOTMATIC_BASE_URL": bm.url,
                 "BM_MODULES": t.module("testmod"), "BM_WORKERS": "3",
                 "BM_LOG_LEVEL": "info", "BM_DB_HOME": srv.db}, name="after")
ngx2 = t.nginx(srv2, name="nginx2")
r = ngx2.post({"action": "save", "data": {"bid": "after", "eid": "crash"}},
              token=TOKEN, timeout=60)
t.is_(r.status, 200, "after the whole server was SIGKILLed, a new one "
      "recovers the store at start and serves")
stored = stored_pairs()
lost = [b for b, e in acked.items() if stored.get(b) != e]
t.ok(acked and not lost, "no pair answered 200 before the crash is lost "
     "(%d)" % len(acked), "lost: %r" % lost[:10])
t.done()
