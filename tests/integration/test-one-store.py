#!/usr/bin/env python3
"""One store, any process set (SPEC.md section 10, issue 11).

1. A second server on the same BM_DB_HOME is refused and the first one is
   unharmed.
2. With the server running, botmatic-keys hands its command to the master
   (it never opens the store itself); list -> import round trip.
3. The kill loop with the server under load: botmatic-keys commands
   SIGKILLed at random, each round followed by a fresh command: no tool
   hangs, no webhook fails.
4. A tool command running through an escalation fails cleanly (exit 2, one
   line) and service comes back.
5. An uninstall of a large installation (1,000,000 pairs by default,
   BM_TEST_UNINSTALL_PAIRS) under load: answered at once, every other
   request answered, no escalation, the pairs purged in batches.
6. The master SIGKILLed alone: its children are gone within seconds and a
   restart serves again."""
import json
import os
import random
import signal
import subprocess
import threading
import time

import bmtest

t = bmtest.Test()
ROUNDS = int(os.environ.get("BM_TEST_ROUNDS", "30"))
PAIRS = int(os.environ.get("BM_TEST_UNINSTALL_PAIRS", "1000000"))
t.plan(20)

TOKEN = "tok-one-7a1c"
BIG = "tok-big-52e9"
keys_bin = t.build_file("botmatic-keys")
loader = t.build_file("tests", "store", "bulk-load")
bm = t.botmatic({TOKEN, BIG})
ENV = {"BOTMATIC_BASE_URL": bm.url, "BM_MODULES": t.module("testmod"),
       "BM_WORKERS": "3", "BM_DB_WATCHDOG": "5", "BM_LOG_LEVEL": "info"}

# The large installation is loaded before the server starts: one process,
# through the store API (HTTP would take far too long).
t0 = time.monotonic()
db = os.path.join(t.tmp, "db")
p = subprocess.run([loader, db, BIG, str(PAIRS)], stderr=subprocess.PIPE,
                   timeout=600)
t.ok(p.returncode == 0, "%d pairs loaded in %.1fs" %
     (PAIRS, time.monotonic() - t0), p.stderr)

srv = t.server(ENV)
ngx = t.nginx(srv)


def keys(*args, timeout=60, **kw):
    try:
        return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 124, b"", b"timed out")


def post(body, token=TOKEN, timeout=30, n=ngx):
    try:
        return n.post(body, token=token, timeout=timeout)
    except Exception as e:     # connection refused, reset, timeout
        return bmtest.Response(0, {}, repr(e).encode())


r = post({"event": "install"})
t.is_(r.status, 200, "install recorded")

# --- 1. a second server on the same BM_DB_HOME --------------------------------
second = t.server(dict(ENV, BM_DB_HOME=srv.db), name="second", start=False)
st = second.run_to_exit(timeout=30)
t.ok(st == 1 and second.grep(r"ERROR .*already runs on it; one server per "
                             r"BM_DB_HOME"),
     "a second server on the same BM_DB_HOME is refused", second.log())
r = post({"action": "save", "data": {"bid": "s1", "eid": "t1"}})
t.ok(r.status == 200 and not srv.grep(r"recovering the keystore"),
     "the first one is unharmed (no recovery, serves)", r)

# --- 2. tools hand their command to the server --------------------------------
mark = srv.mark()
p = keys("get-ext", TOKEN, "s1")
t.ok(p.returncode == 0 and p.stdout == b"t1\n" and
     srv.wait_log(r"master: tool command \"get-ext\" of pid \d+ runs",
                  5, since=mark),
     "botmatic-keys get-ext runs in the server (handed over)", p)
keys("save", TOKEN, "s2", "t2")
p1 = keys("list", TOKEN)
p2 = keys("-d", os.path.join(t.tmp, "copy"), "import", "-", input=p1.stdout)
p3 = keys("-d", os.path.join(t.tmp, "copy"), "list", TOKEN)
t.ok(p1.returncode == 0 and p2.returncode == 0 and
     p3.stdout == p1.stdout and p1.stdout.count(b"\n") == 2,
     "list | import restores the pairs", p1, p2, p3)
with open(os.path.join(t.tmp, "list.jsonl"), "wb") as f:
    f.write(b'{"type":"pair","integration":"%s","botmatic_id":"s3",'
            b'"ext_id":"t3"}\n' % TOKEN.encode())
p = keys("import", os.path.join(t.tmp, "list.jsonl"))
t.ok(p.returncode == 0 and keys("get-ext", TOKEN, "s3").stdout == b"t3\n",
     "import FILE through the server reads the tool's file", p)
p = keys("recover")
t.ok(p.returncode == 2 and b"recovers the store by itself" in p.stderr and
     len(p.stderr.splitlines()) == 1,
     "recover is refused while a server runs", p)

# --- 3. the kill loop, server under load ---------------------------------------
acked = {}
failures = []
lock = threading.Lock()
stop = threading.Event()


def client(n):
    i = 0
    while not stop.is_set():
        i += 1
        bid, eid = "c%d-%d" % (n, i), "e%d-%d" % (n, i)
        r = post({"action": "save", "data": {"bid": bid, "eid": eid}},
                 timeout=60)
        with lock:
            if r.status == 200:
                acked[bid] = eid
            else:
                failures.append((bid, r.status, r.body[:200]))


def load(n):
    stop.clear()
    th = [threading.Thread(target=client, args=(k + n,)) for k in range(3)]
    for x in th:
        x.start()
    return th


def unload(th):
    stop.set()
    for x in th:
        x.join(120)


threads = load(0)
rnd = random.Random(11)
hangs = 0
escalations0 = len(srv.grep(r"recovering the keystore"))
for rd in range(ROUNDS):
    tools = [subprocess.Popen([keys_bin, "-d", srv.db, "save", TOKEN,
                               "k%d-%d" % (rd, w), "v%d-%d" % (rd, w)],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for w in range(3)]
    time.sleep(rnd.uniform(0, 0.1))
    for x in tools:
        x.kill()
        x.wait()
    p = keys("save", TOKEN, "fresh%d" % rd, "f%d" % rd, timeout=20)
    if p.returncode != 0:
        hangs += 1
        t.diag("round %d: fresh save: %r" % (rd, p))
unload(threads)
t.ok(hangs == 0, "%d rounds of killed tools: every fresh command finished "
     "(%d did not)" % (ROUNDS, hangs))
t.ok(not failures and len(acked) > 20, "no webhook failed meanwhile "
     "(%d answered 200)" % len(acked), failures[:5])
stored = {}
for line in keys("list", TOKEN).stdout.decode().splitlines():
    o = json.loads(line)
    stored[o["botmatic_id"]] = o["ext_id"]
lost = [b for b, e in acked.items() if stored.get(b) != e]
lost += ["fresh%d" % k for k in range(ROUNDS)
         if stored.get("fresh%d" % k) != "f%d" % k]
t.ok(not lost and len(srv.grep(r"recovering the keystore")) == escalations0,
     "nothing lost, no escalation", lost[:10])

# --- 4. a tool command through an escalation -----------------------------------
lines = "".join(json.dumps({"type": "pair", "integration": TOKEN,
                            "botmatic_id": "w%05d" % i,
                            "ext_id": "x%05d" % i}) + "\n"
                for i in range(4000))
keys("import", "-", input=lines.encode())
# "list" into a pipe nobody reads blocks inside its read transaction, holding
# read locks: a save to those pages waits, the watchdog escalates, and the
# command (in a child of the master) is killed with the responders.
rfd, wfd = os.pipe()
tool = subprocess.Popen([keys_bin, "-d", srv.db, "list", TOKEN], stdout=wfd,
                        stderr=subprocess.PIPE)
os.close(wfd)
time.sleep(1.0)
mark = srv.mark()
# c0-1 is the first pair listed (its page is read first, so locked).
post({"action": "save", "data": {"bid": "c0-1", "eid": "y1"}}, timeout=60)
escalated = srv.wait_log(r"stuck in a keystore call", 30, since=mark)
try:
    err = tool.communicate(timeout=30)[1]
except subprocess.TimeoutExpired:
    tool.kill()
    err = tool.communicate()[1]
    tool.returncode = None
os.close(rfd)
t.ok(escalated and tool.returncode == 2 and len(err.splitlines()) == 1 and
     b"run it again" in err,
     "a tool command through an escalation fails cleanly: exit 2, one line",
     tool.returncode, err, srv.log()[mark:])
ok = bmtest.wait_until(lambda: post({"action": "save", "data": {
    "bid": "w00002", "eid": "y2"}}, timeout=10).status == 200, 60)
t.ok(ok, "service is back after the escalation")

# --- 5. uninstall of a large installation, under load ---------------------------
acked.clear()
del failures[:]
escalations0 = len(srv.grep(r"recovering the keystore"))
mark = srv.mark()
threads = load(20)
time.sleep(0.5)
t0 = time.monotonic()
r = post({"event": "uninstall"}, token=BIG, timeout=120)
took = time.monotonic() - t0
t.ok(r.status == 200, "the uninstall of %d pairs is answered (%.2fs)" %
     (PAIRS, took), r)
p = keys("get-ext", BIG, "b000000007")
t.ok(p.returncode == 1, "its pairs are gone for readers at once", p)
purged = srv.wait_log(r"purge: done", 600, since=mark)
unload(threads)
t.ok(purged, "the purge finished in batches", srv.log()[mark:][-2000:])
t.ok(not failures and len(acked) > 20 and
     len(srv.grep(r"recovering the keystore")) == escalations0 and
     not srv.grep(r"stuck in a keystore call", since=mark),
     "every other request was answered meanwhile (%d), no escalation" %
     len(acked), failures[:5],
     "\n".join(l for l in srv.log()[mark:].splitlines()
               if " INFO " not in l or "master" in l)[-3000:])
p = keys("export")
big = [l for l in p.stdout.splitlines() if BIG.encode() in l]
t.ok(p.returncode == 0 and not big, "nothing of it is left in an export",
     big[:3])

# --- 6. the master SIGKILLed alone ---------------------------------------------
kids = srv.children()
srv.kill(signal.SIGKILL)
srv.proc.wait(10)
gone = bmtest.wait_until(lambda: not any(bmtest.pid_alive(k) for k in kids),
                         10)
t.ok(kids and gone, "the master SIGKILLed alone: its %d children are gone "
     "within seconds" % len(kids), kids)
srv2 = t.server(dict(ENV, BM_DB_HOME=srv.db), name="again")
ngx2 = t.nginx(srv2, name="nginx2")
r = post({"action": "save", "data": {"bid": "again", "eid": "1"}}, n=ngx2,
         timeout=60)
t.is_(r.status, 200, "a restart on the same BM_DB_HOME serves again")
t.done()
