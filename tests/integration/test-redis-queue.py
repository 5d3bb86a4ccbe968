#!/usr/bin/env python3
"""BM_STORE=redis: queued jobs survive a server's death (SPEC §14, §9;
issue 16).

5. Server A queues 40 contact_created events (BM_SYNC_MODE=queued); its
   delivery process claims them and has calls in flight to a slow
   external service when it is SIGKILLed by PID, and A's master with it
   (stopped first, so it cannot start another), as a host that dies.
   Server B, on another socket with its own nginx and the same Redis,
   finishes them: every job is delivered at least once, none is lost
   (40 contacts, each created once thanks to the Idempotency-Key, 40
   pairs, an empty outbox), and a job A had in flight is sent again by B
   with the same Idempotency-Key.

Checks are on what the stand-ins received and what the store holds;
waits are generous bounds for something that must happen."""
import http.server
import json
import os
import re
import signal
import subprocess

import bmtest

# A delivery process opens many connections at once.
http.server.ThreadingHTTPServer.request_queue_size = 256
# The calls of the killed delivery process find their connection gone:
# expected here, not worth a traceback each.
http.server.ThreadingHTTPServer.handle_error = lambda *a: None

t = bmtest.Test(requires=("nginx", "server", "redis"))
TOKEN = "tok-queue-r-2d7f30"
N = 40
keys_bin = t.build_file("botmatic-keys")
keyfile = bmtest.secret_key_file(t)
rd = t.redis(appendfsync="always")
ext = bmtest.ExtContacts(t)
bm = t.botmatic({TOKEN})
bm.route("PATCH", r"/api/contacts/.*", 200, {"success": True})
mapfile = os.path.join(t.tmp, "mappings.json")
with open(mapfile, "w") as f:
    json.dump(bmtest.CONTACT_MAPPINGS, f)
ENV = {"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
       "BM_SECRET_KEY_FILE": keyfile, "BOTMATIC_BASE_URL": bm.url,
       "BM_EXT_BASE_URL": ext.url, "BM_MAPPINGS": mapfile,
       "BM_WORKERS": "2", "BM_LOG_LEVEL": "info", "BM_SYNC_MODE": "queued",
       "BM_DELIVERY_PROCS": "1", "BM_DELIVERY_CONCURRENCY": "16",
       "BM_HTTP_TIMEOUT": "3000",
       "BM_RETRY_SCHEDULE": "0,200ms,500ms,1s,1s,2s,2s,2s,2s,2s,2s,2s,2s"}
KENV = {"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
        "BM_SECRET_KEY_FILE": keyfile}
QUEUED = {"data": {"success": True, "queued": True}, "type": "data",
          "success": True}


def keys(*args):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("BM_", "BOTMATIC_"))}
    e.update(KENV)
    try:
        return subprocess.run([keys_bin] + [str(a) for a in args],
                              env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired as x:
        return subprocess.CompletedProcess(x.cmd, 124, b"", b"timed out")


def pairs():
    out = {}
    for line in keys("list", TOKEN).stdout.decode().splitlines():
        j = json.loads(line)
        out[j["botmatic_id"]] = j["ext_id"]
    return out


def outbox():
    p = keys("outbox")
    return None if p.returncode != 0 else p.stdout.decode().splitlines()


def delivery_pids(srv):
    started = [int(m) for l in srv.grep(r"delivery process \d+ started")
               for m in re.findall(r"delivery process (\d+) started", l)]
    return [p for p in started if bmtest.pid_alive(p) and
            p in srv.children()]


a = t.server(ENV, name="a")
na = t.nginx(a, name="nginx-a")
r = na.post({"event": "install", "data": {}}, token=TOKEN)
t.ok(r.status == 200 and (r.json() or {}).get("success") is True,
     "install through server A", r)

ext.slow = 1.0
answers = [na.post({"event": "contact_created", "data": {
    "id": 4000 + i, "email": "q%d@example.com" % i}}, token=TOKEN,
    timeout=30) for i in range(N)]
t.ok(all(x.status == 200 and x.json() == QUEUED for x in answers),
     "%d contact_created through A answered queued" % N,
     [x for x in answers if x.json() != QUEUED][:3])

# Killed once the first creations are on their way: some jobs then wait
# on their lookup, some on their creation.
busy = bmtest.wait_until(lambda: ext.flight >= 8 and sum(
    1 for m, _, _ in list(ext.arrived) if m == "POST") >= 4, 60,
    interval=0.01)
dpids = delivery_pids(a)
a.kill(signal.SIGSTOP)         # the master cannot replace what dies
for pid in dpids:
    os.kill(pid, signal.SIGKILL)
in_flight = ext.flight
with ext.lock:
    n_before = len(ext.arrived)
    touched = {e for _, e, _ in ext.arrived}
a.kill(signal.SIGKILL)
gone = bmtest.wait_until(lambda: not any(bmtest.pid_alive(p)
                                         for p in dpids + [a.pid]), 30)
# A's jobs not finished: touched by A, no pair stored by A.
done_by_a = set(pairs())
claimed = {e for e in touched
           if str(4000 + int(e[1:].split("@")[0])) not in done_by_a}
t.ok(busy and len(dpids) == 1 and gone and claimed,
     "A's delivery process SIGKILLed with %d calls in flight (%d jobs "
     "claimed and unfinished), then A's master" % (in_flight, len(claimed)),
     dpids, claimed)

b = t.server(ENV, name="b")
nb = t.nginx(b, name="nginx-b")
ext.slow = 0
done = bmtest.wait_until(lambda: len(pairs()) == N and outbox() == [], 240,
                         interval=0.5)
made = {i: len(ext.by_email("q%d@example.com" % i)) for i in range(N)}
t.ok(done and all(v == 1 for v in made.values()),
     "server B delivered every job: %d pairs, an empty outbox, each contact "
     "created once" % N, len(pairs()), (outbox() or [])[:3],
     {i: v for i, v in made.items() if v != 1})
got = pairs()
t.ok(all(got.get(str(4000 + i)) ==
         str(ext.by_email("q%d@example.com" % i)[0]["id_candidate"])
         for i in range(N) if made[i] == 1),
     "each pair links the Botmatic id to the contact created for it")
with ext.lock:
    later = ext.arrived[n_before:]
    posts = [(e, k) for m, e, k in ext.arrived if m == "POST"]
taken = {e for _, e, _ in later}
keys_of = {e: {k for em, k in posts if em == e} for e in claimed}
t.ok(claimed <= taken and all(len(k) <= 1 for k in keys_of.values()),
     "B took over every job A held: it called the service again for each "
     "(%d), never creating one with a second Idempotency-Key"
     % len(claimed), sorted(claimed - taken)[:5],
     {e: k for e, k in keys_of.items() if len(k) > 1})
t.ok(not b.grep(TOKEN) and not a.grep(TOKEN) and
     not b.sanitizer_reports() and not a.sanitizer_reports(),
     "no token in the logs, no sanitizer report", b.sanitizer_reports()[:3])
t.done()
