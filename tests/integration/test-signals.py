#!/usr/bin/env python3
"""Process management under signals, through a real nginx:

- a responder SIGKILLed while idle is replaced; requests succeed;
- a responder SIGKILLed while serving: only that request fails (502 from
  nginx), the next 20 succeed;
- SIGHUP under a steady stream from several threads: no request fails,
  every responder is replaced, the master stays; a slow request in flight
  completes;
- SIGTERM under load: requests the responders already accepted complete
  with 200 and their full body, the master exits 0, nothing hangs;
- crash loop: responders whose init_process fails exit at once; the master
  keeps running, logs its backoff and does not spin.

Only processes this test started are signalled, each by its PID (checked
to be a child of our master first)."""

import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402
from bmtest import wait_until, pid_alive  # noqa: E402

t = bmtest.Test()
TOKEN = "sig-Token-0d9e8f7a"
WORKERS = 3

srv = t.server({
    "BM_MODULES": t.module("echo") + ":" + t.module("testmod"),
    "BM_AUTH": "module:fixed",
    "BM_MOD_TESTMOD_TOKENS": TOKEN,
    "BM_WORKERS": WORKERS,
    # A fixed pool: the counts of responders below are exact (the dynamic
    # pool has its own test, test-pool.py).
    "BM_WORKERS_MAX": WORKERS,
    "BM_SHUTDOWN_TIMEOUT": 20,
})
ngx = t.nginx(srv)
master = srv.pid


def echo(i, timeout=30):
    """One echo webhook; returns None when it succeeded, else what went
    wrong."""
    data = {"i": i, "pad": "p" * (i % 7 * 100)}
    try:
        r = ngx.post({"action": "echo", "data": data}, token=TOKEN,
                     timeout=timeout)
    except Exception as e:        # refused, reset, timeout
        return repr(e)
    if r.status != 200 or r.json() != {"data": {"echo": data},
                                       "type": "data", "success": True}:
        return repr(r)
    return None


def sleeper(ms, out, key):
    """A slow request in a thread; stores the Response (or the exception)
    in out[key]."""
    def run():
        try:
            out[key] = ngx.post({"action": "sleep", "data": {"ms": ms}},
                                token=TOKEN, timeout=60)
        except Exception as e:
            out[key] = e
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def serving_pids(since, count, timeout=10):
    """The PIDs of the responders that logged "request: start" after since
    (the log's third field), once count such lines exist."""
    lines = srv.wait_log(r" request: start", since=since, count=count,
                         timeout=timeout)
    return [int(l.split()[2]) for l in lines]


def kill_responder(pid, sig=signal.SIGKILL):
    """Signals pid only if it is one of our master's responders."""
    if pid not in srv.responders():
        raise RuntimeError("pid %d is not a responder of %d" % (pid, master))
    os.kill(pid, sig)


def steady_ok(n):
    errs = [e for e in (echo(i) for i in range(n)) if e]
    return errs


# --- SIGKILL an idle responder ---------------------------------------------
pids = srv.responders()
t.is_(len(pids), WORKERS, "%d responders running" % WORKERS)
victim = pids[0]
mark = srv.mark()
kill_responder(victim)
lines = srv.wait_log(r"master: responder %d " % victim, since=mark)
t.ok(lines and re.search(r"killed by signal 9\b", lines[0]),
     "master logs the idle responder killed by signal 9", *lines)
ok = wait_until(lambda: len(srv.responders()) == WORKERS and
                victim not in srv.responders(), 10)
t.ok(ok, "master started a replacement", srv.responders())
t.ok(srv.wait_log(r"master: responder \d+ started", since=mark),
     "the replacement is logged")
errs = steady_ok(20)
t.is_(errs, [], "20 requests after the idle kill succeed")

# --- SIGKILL a responder while it serves ------------------------------------
mark = srv.mark()
out = {}
th = sleeper(4000, out, "slow")
busy = serving_pids(mark, 1)
t.is_(len(busy), 1, "the slow request reached a responder")
if busy:
    kill_responder(busy[0])
th.join(30)
r = out.get("slow")
t.ok(isinstance(r, bmtest.Response) and r.status == 502,
     "the killed responder's request fails with 502 from nginx", repr(r))
t.ok(isinstance(r, bmtest.Response) and r.is_json_type and
     r.json() == {"success": False, "error": "integration unavailable"},
     "that 502 is the shipped JSON (botmatic-errors.conf)", repr(r))
t.ok(not th.is_alive(), "the failed request does not hang")
errs = steady_ok(20)
t.is_(errs, [], "the next 20 requests succeed")
t.ok(wait_until(lambda: len(srv.responders()) == WORKERS, 10),
     "back to %d responders" % WORKERS)

# --- SIGHUP under load -------------------------------------------------------
before = set(srv.responders())
stop = threading.Event()
results = []
lock = threading.Lock()


def stream(k):
    i = 0
    while not stop.is_set():
        e = echo(k * 100000 + i)
        with lock:
            results.append(e)
        i += 1


threads = [threading.Thread(target=stream, args=(k,), daemon=True)
           for k in range(4)]
for th in threads:
    th.start()
time.sleep(0.5)
mark = srv.mark()
slow = {}
sth = sleeper(1500, slow, "hup")
serving_pids(mark, 1)                 # it is in a responder...
time.sleep(0.1)
srv.kill(signal.SIGHUP)               # ...when the reload begins
t.ok(srv.wait_log(r"master: reloading", since=mark, timeout=5),
     "master logs reloading")
done = srv.wait_log(r"master: reload done", since=mark, timeout=60)
t.ok(done, "master logs reload done")
time.sleep(0.5)
stop.set()
for th in threads:
    th.join(60)
sth.join(30)
t.ok(not any(th.is_alive() for th in threads), "no client thread hangs")
errs = [e for e in results if e]
t.ok(len(results) >= 20 and not errs,
     "no request refused or failed during the reload (%d sent)" %
     len(results), *errs[:10])
r = slow.get("hup")
t.ok(isinstance(r, bmtest.Response) and r.status == 200 and
     r.json() == {"data": {"slept": 1500}, "type": "data", "success": True},
     "a slow request in flight across SIGHUP completes", repr(r))
after = set(srv.responders())
t.ok(len(after) == WORKERS and not (before & after),
     "every responder was replaced", "before %s" % sorted(before),
     "after %s" % sorted(after))
t.ok(srv.proc.alive() and srv.pid == master and
     all(l.split()[2] == str(master) for l in
         srv.grep(r"master: reload(ing| done)", since=mark)),
     "the master PID is unchanged")
t.is_(steady_ok(10), [], "requests succeed after the reload")

# --- SIGTERM under load ------------------------------------------------------
mark = srv.mark()
slow = {}
ths = [sleeper(1500, slow, k) for k in range(WORKERS)]
busy = serving_pids(mark, WORKERS)
t.is_(len(busy), WORKERS, "every responder is serving a slow request")
stop.clear()
results.clear()
late = [threading.Thread(target=stream, args=(k,), daemon=True)
        for k in range(2)]
for th in late:
    th.start()
kids = srv.responders()
t0 = time.monotonic()
srv.kill(signal.SIGTERM)
st = srv.proc.wait(30)
elapsed = time.monotonic() - t0
t.is_(st, 0, "master exits 0 on SIGTERM (%.1fs)" % elapsed)
for th in ths:
    th.join(30)
t.ok(all(isinstance(slow.get(k), bmtest.Response) and
         slow[k].status == 200 and slow[k].json() ==
         {"data": {"slept": 1500}, "type": "data", "success": True}
         for k in range(WORKERS)),
     "requests accepted before SIGTERM complete with 200 and full bodies",
     *[repr(slow.get(k)) for k in range(WORKERS)])
stop.set()
for th in late:
    th.join(60)
t.ok(not any(th.is_alive() for th in late + ths), "no client hangs")
t.ok(all(e is None or "502" in e or "Error" in e for e in results),
     "requests after SIGTERM succeed or fail cleanly",
     *[e for e in results if e][:5])
t.ok(wait_until(lambda: not any(pid_alive(k) for k in kids), 5),
     "no responder outlives the master")
t.is_(srv.grep(r"master: stopped", since=mark)[:1] != [], True,
      "master logs stopped")
t.is_(srv.sanitizer_reports(), [], "no sanitizer report")

# --- crash loop: init_process fails -----------------------------------------
crash = t.server({
    "BM_MODULES": t.module("testmod"),
    "BM_MOD_TESTMOD_FAIL_PROCESS": 1,
    "BM_AUTH": "any",
    "BM_WORKERS": 2,
}, name="crash", start=False)
crash.start(wait=False)
WINDOW = 5.0
time.sleep(WINDOW)
spawns = crash.grep(r"master: responder \d+ started")
t.ok(crash.proc.alive(), "master keeps running while responders fail",
     crash.log()[-2000:])
t.ok(0 < len(spawns) <= 30,
     "spawns are bounded by backoff: %d in %.0fs" % (len(spawns), WINDOW))
t.ok(crash.grep(r"(?i)backoff|back(ing)? off|next start in \d+"),
     "master logs its backoff", *crash.log().splitlines()[-10:])
with open("/proc/%d/stat" % crash.pid) as f:
    fields = f.read().rsplit(")", 1)[1].split()
ticks = int(fields[11]) + int(fields[12])     # utime + stime
hz = os.sysconf("SC_CLK_TCK")
t.ok(ticks / hz < WINDOW * 0.5, "master does not spin (%.2fs CPU)" %
     (ticks / hz))
t.is_(crash.stop(), 0, "a crash-looping server still stops with 0")

t.done()
