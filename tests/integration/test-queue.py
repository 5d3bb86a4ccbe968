#!/usr/bin/env python3
"""The durable delivery queue end to end (SPEC §9): a real nginx, the
server, and recording stand-ins for Botmatic and the external service (a
stateful fake of a REST contacts API that can hang, answer 503, answer
garbage or an oversized body, refuse with a 4xx, and that honours
Idempotency-Key as a careful service would, and counts the requests it
is handling at once).  Every check is on what the stand-ins received, what
the store holds at the end and the status' gauges, never on timing: waits
are generous bounds for something that must happen.  One delivery process
runs many jobs at once (BM_DELIVERY_CONCURRENCY): 200 jobs in order per
contact with more than one call in flight, and a SIGKILL with 64 calls in
flight."""
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time

import bmtest

# A delivery process opens up to 64 connections at once: a listen backlog
# the default 5 would not give (dropped SYNs cost a second each).
http.server.ThreadingHTTPServer.request_queue_size = 1024

t = bmtest.Test()
TOKEN = "tok-queue-7c1f0a"

MAPPINGS = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "id_candidate", "transform": "int"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
    {"botmatic": {"name": "email"}, "ext": {"name": "email"}},
    {"botmatic": {"name": "age", "type": "number"},
     "ext": {"name": "age", "transform": "int"}},
]


class Ext:
    """The external service.  fail: (status, body, delay) answered to every
    request; fail_path: {path: (status, body, delay)} for some; hang: an
    Event requests wait on (accepted, never answered) until it is set."""

    def __init__(self):
        self.lock = threading.Lock()
        self.contacts = {}
        self.next = 1
        self.fail = None
        self.fail_path = {}
        self.hang = None
        self.delay = 0
        self.keys = {}        # Idempotency-Key -> the id it created
        self.applied = []     # (id, body) of each update applied
        self.slow = 0         # seconds each request takes, counted in flight
        self.flight = 0       # requests being handled now
        self.max_flight = 0   # the most at once since reset

    def handle(self, rec):
        with self.lock:
            self.flight += 1
            self.max_flight = max(self.max_flight, self.flight)
        try:
            if self.slow:
                time.sleep(self.slow)
            return self._handle(rec)
        finally:
            with self.lock:
                self.flight -= 1

    def add(self, c):
        with self.lock:
            c = dict(c, id_candidate=self.next)
            self.contacts[self.next] = c
            self.next += 1
            return c

    def by_email(self, email):
        with self.lock:
            return [c for c in self.contacts.values()
                    if c.get("email") == email]

    def _handle(self, rec):
        hang = self.hang
        if hang is not None:
            hang.wait(60)
        if self.fail:
            return self.fail
        if rec.path in self.fail_path:
            return self.fail_path[rec.path]
        parts = rec.path.strip("/").split("/")
        with self.lock:
            if rec.method == "POST" and parts == ["contacts"]:
                key = rec.headers.get("Idempotency-Key")
                if key and key in self.keys:
                    return 201, {"id_candidate": self.keys[key]}, self.delay
                c = dict(rec.json(), id_candidate=self.next)
                self.contacts[self.next] = c
                if key:
                    self.keys[key] = self.next
                self.next += 1
                return 201, {"id_candidate": c["id_candidate"]}, self.delay
            if rec.method == "GET" and parts == ["contacts"]:
                if "email" in rec.query:
                    found = [c for c in self.contacts.values()
                             if c.get("email") == rec.query["email"][0]]
                    return 200, found[:1], self.delay
                page = int(rec.query["page"][0])
                limit = int(rec.query["limit"][0])
                items = sorted(self.contacts.values(),
                               key=lambda c: c["id_candidate"])
                return 200, {"items": items[(page - 1) * limit:
                                            page * limit]}, self.delay
            if len(parts) == 2 and parts[0] == "contacts":
                cid = int(parts[1])
                if cid not in self.contacts:
                    return 404, {"error": "nope"}, 0
                if rec.method == "PUT":
                    self.contacts[cid].update(rec.json())
                    self.applied.append((cid, rec.json()))
                    return 200, {"ok": True}, self.delay
                if rec.method == "DELETE":
                    del self.contacts[cid]
                    return 204, b"", self.delay
        return 404, {"error": "unexpected"}, 0


class Botmatic:
    """Botmatic: token validation, properties, contacts created in
    batches (an Idempotency-Key seen before gets the same answer)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next = 50000
        self.keys = {}
        self.created = 0
        self.down = False

    def handle(self, rec):
        p = rec.path
        if self.down and p.startswith("/api/contacts"):
            return 503, {"error": "maintenance"}, 0
        if p == "/api/integrationtokens/validate":
            return 200, {"success": rec.form().get("token") == [TOKEN]}, 0
        if p == "/api/properties":
            return 201, {"success": True}, 0
        with self.lock:
            if p == "/api/contacts" and rec.method == "POST":
                key = rec.headers.get("Idempotency-Key")
                if key and key in self.keys:
                    return 201, self.keys[key], 0
                if "contact" in (rec.json() or {}):
                    self.next += 1
                    return 201, {"id": self.next - 1}, 0
                out = []
                for _ in rec.json()["contacts"]:
                    out.append({"success": True, "id": self.next})
                    self.next += 1
                    self.created += 1
                ans = {"contacts": out}
                if key:
                    self.keys[key] = ans
                return 201, ans, 0
            if p.startswith("/api/contacts") and rec.method == "PATCH":
                return 200, {"success": True}, 0
        return 404, {"error": "unexpected"}, 0


ext, bmapi = Ext(), Botmatic()
ext_si = t.standin()
ext_si.route("*", r"/contacts(/.*)?", ext.handle)
bm_si = t.standin()
bm_si.route("*", r"/api/.*", bmapi.handle)
mapfile = t.tmp + "/mappings.json"
with open(mapfile, "w") as f:
    json.dump(MAPPINGS, f)
BASE = {"BOTMATIC_BASE_URL": bm_si.url, "BM_EXT_BASE_URL": ext_si.url,
        "BM_MAPPINGS": mapfile, "BM_EXT_LIST_FIELD": "items",
        "BM_WORKERS": "4", "BM_MODULES": t.module("echo"),
        "BM_SYNC_DEADLINE_MS": "500", "BM_HTTP_TIMEOUT": "10000",
        "BM_STATUS_PATH": "/status",
        "BM_RETRY_SCHEDULE": "0,100ms,200ms,300ms,500ms,1s,1s,1s,1s,1s,1s,"
        "1s,1s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s"}
keys_bin = t.build_file("botmatic-keys")
QUEUED = {"data": {"success": True, "queued": True}, "type": "data",
          "success": True}


def keys(srv, *args):
    return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


def files_holding(d, needle):
    """The files of directory d holding the bytes needle."""
    found = []
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                if needle in f.read():
                    found.append(name)
    return found


def outbox(srv):
    return [json.loads(l) for l in
            keys(srv, "outbox").stdout.decode().splitlines()]


def pairs(srv):
    p = keys(srv, "list", TOKEN)
    return {json.loads(l)["botmatic_id"]: json.loads(l)["ext_id"]
            for l in p.stdout.decode().splitlines()}


def delivery_pids(srv):
    """The delivery processes the master runs now (from its log)."""
    started = [int(m) for l in srv.grep(r"delivery process \d+ started")
               for m in re.findall(r"delivery process (\d+) started", l)]
    return [p for p in started if bmtest.pid_alive(p) and
            p in srv.children()]


def responder_pids(srv):
    started = [int(m) for l in srv.grep(r"responder \d+ started")
               for m in re.findall(r"responder (\d+) started", l)]
    return [p for p in started if bmtest.pid_alive(p) and
            p in srv.children()]


servers = []


def gauge(ngx, name):
    """A gauge of the status, from its JSON (None when absent)."""
    st = ngx.request("GET", "/status").json() or {}
    return st.get(name)


def start(name, **env):
    srv = t.server(dict(BASE, **env), name=name)
    ngx = t.nginx(srv, name="nginx-" + name)
    servers.append(srv)
    r = ngx.post({"event": "install", "data": {}}, token=TOKEN)
    if r.status != 200:
        raise RuntimeError("install failed: %r" % r)
    return srv, ngx


def event(ngx, name, data, timeout=30):
    return ngx.post({"event": name, "data": data}, token=TOKEN,
                    timeout=timeout)


# --- the external service hangs while 32 clients send contact events -------
srv, ngx = start("a")
ext.hang = threading.Event()
answers = {}


def client(i):
    try:
        answers[i] = event(ngx, "contact_created", {
            "id": 1000 + i, "firstname": "H%d" % i,
            "email": "h%d@example.com" % i})
    except Exception as e:   # noqa: BLE001 - reported by the check below
        answers[i] = e


threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
for th in threads:
    th.start()
# While they wait: actions that never call out, and install, are answered.
echo = ngx.post({"action": "echo", "data": {"x": 1}}, token=TOKEN, timeout=20)
inst = event(ngx, "install", {}, timeout=20)
for th in threads:
    th.join(60)
t.ok(echo.status == 200 and echo.json()["data"] == {"echo": {"x": 1}} and
     inst.status == 200 and inst.json()["success"] is True,
     "with the external service hung, echo and install are answered",
     echo, inst)
t.ok(all(not isinstance(a, Exception) and a.status == 200 and
         a.json() == QUEUED for a in answers.values()) and
     len(answers) == 32, "all 32 contact events answered queued:true",
     [a for a in answers.values() if isinstance(a, Exception) or
      a.json() != QUEUED][:3])
t.ok(srv.grep(r"breaker: the external service failed \d+ times in a row"),
     "the circuit breaker opened: later events did not wait")
ext.hang.set()
ext.hang = None
ok = bmtest.wait_until(lambda: len(pairs(srv)) == 32 and not outbox(srv), 120)
dups = [i for i in range(32) if len(ext.by_email("h%d@example.com" % i)) != 1]
t.ok(ok and not dups, "once the service answers, every event is applied, "
     "each contact created once", len(pairs(srv)), outbox(srv)[:3], dups)
t.ok(srv.grep(r"breaker: the external service answers again"),
     "the breaker closed after a successful delivery")
posts = ext_si.received("POST", "/contacts")
t.ok(posts and all(re.fullmatch(r"[0-9a-f]{32}-\d+-[0-9a-f]{8}",
                                p.headers.get("Idempotency-Key") or "")
                   for p in posts),
     "every POST carries an Idempotency-Key <install id>-<job>-<step>",
     [p.headers.get("Idempotency-Key") for p in posts[:3]])

# --- the external service down (503): nothing lost, order kept per contact --
ext.fail = (503, {"error": "down"}, 0)
mark = srv.mark()
ids = [1000, 1001, 1002, 1003]
bad = []
for n in range(1, 6):
    for bid in ids:
        r = event(ngx, "contact_updated", {"id": bid, "age": n})
        if r.status != 200 or r.json() != QUEUED:
            bad.append(r)
t.ok(not bad, "20 updates during the outage: every one answered queued", bad)
srv.wait_log(r"job \d+ \(contact_updated\): attempt \d+ failed", 30,
             since=mark, count=3)
# The queue's gauges: the 20 updates pending, the oldest one ageing.
up = bmtest.wait_until(lambda: gauge(ngx, "jobs_queued") == 20 and
                       (gauge(ngx, "jobs_oldest_age_seconds") or 0) >= 1, 30)
t.ok(up, "status gauges while the service is down: jobs_queued 20, the "
     "oldest pending job's age grows", gauge(ngx, "jobs_queued"),
     gauge(ngx, "jobs_oldest_age_seconds"), len(outbox(srv)))
# Issue 12: queued jobs name their installation by the token's keyed hash;
# the token itself is only in tokens.db, sealed.  Searched for while the
# jobs wait (every file of BM_DB_HOME: databases, log files, key files).
held = outbox(srv)
t.ok(len(held) >= 4 and all(j["install_id"] == held[0]["install_id"] and
                            re.fullmatch(r"[0-9a-f]{32}", j["install_id"])
                            for j in held) and
     files_holding(srv.db, TOKEN.encode()) == [],
     "with jobs queued during the outage, outbox names their install id "
     "and no file of BM_DB_HOME holds the token's bytes",
     held[:2], files_holding(srv.db, TOKEN.encode()))
ext.fail = None
ok = bmtest.wait_until(lambda: not outbox(srv), 120)
down = bmtest.wait_until(lambda: gauge(ngx, "jobs_queued") == 0 and
                         gauge(ngx, "jobs_oldest_age_seconds") == 0, 30)
t.ok(down, "status gauges once delivered: jobs_queued and the oldest age "
     "back to 0", gauge(ngx, "jobs_queued"),
     gauge(ngx, "jobs_oldest_age_seconds"))
eids = {bid: int(pairs(srv)[str(bid)]) for bid in ids}
seqs = {bid: [b.get("age") for c, b in ext.applied if c == eids[bid]]
        for bid in ids}
t.ok(ok and all(s == sorted(s) and set(s) == {1, 2, 3, 4, 5}
                for s in seqs.values()) and
     all(ext.contacts[eids[b]]["age"] == 5 for b in ids),
     "when it is back, every update applied, in arrival order per contact",
     seqs)

# --- a reload replaces the delivery process; queued jobs still go out --------
old_pids = delivery_pids(srv)
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"reload done", 60, since=mark)
ok = bmtest.wait_until(lambda: delivery_pids(srv) and
                       not set(delivery_pids(srv)) & set(old_pids), 60)
ext.fail = (503, {}, 0)
r = event(ngx, "contact_updated", {"id": 1000, "age": 6})
ext.fail = None
done = bmtest.wait_until(lambda: not outbox(srv) and
                         ext.contacts[eids[1000]]["age"] == 6, 60)
t.ok(ok and r.json() == QUEUED and done, "after a reload a new delivery "
     "process runs; a job queued then is delivered", old_pids,
     delivery_pids(srv))

# --- SIGKILL delivery processes and responders with jobs in flight -----------
srv.stop()
srv, ngx = start("c", BM_SYNC_MODE="queued", BM_DELIVERY_PROCS="2",
                 BM_HTTP_TIMEOUT="2000")
ext.delay = 0.05
sent = {}


def sender(lo, hi):
    for i in range(lo, hi):
        try:
            sent[i] = event(ngx, "contact_created", {
                "id": 3000 + i, "email": "k%d@example.com" % i})
        except Exception as e:   # noqa: BLE001
            sent[i] = e


threads = [threading.Thread(target=sender, args=(k * 10, k * 10 + 10))
           for k in range(4)]
for th in threads:
    th.start()
kills = 0
for _ in range(3):
    bmtest.wait_until(lambda: len(delivery_pids(srv)) == 2, 20)
    time.sleep(0.3)
    for pid in delivery_pids(srv)[:1]:
        kills += 1
        bmtest.diag("SIGKILL delivery process %d" % pid)
        os.kill(pid, signal.SIGKILL)
    resp = responder_pids(srv)
    if resp:
        bmtest.diag("SIGKILL responder %d" % resp[0])
        os.kill(resp[0], signal.SIGKILL)
for th in threads:
    th.join(60)
# Botmatic delivers again an event it got no answer for.
for i, r in sent.items():
    if isinstance(r, Exception) or r.status != 200:
        sent[i] = event(ngx, "contact_created", {
            "id": 3000 + i, "email": "k%d@example.com" % i})
t.ok(all(r.status == 200 and r.json() == QUEUED for r in sent.values()),
     "every event answered queued (some after a redelivery)",
     [r for r in sent.values() if r.status != 200][:3])
ok = bmtest.wait_until(lambda: len(pairs(srv)) == 40 and not outbox(srv),
                       180)
dups = [i for i in range(40) if len(ext.by_email("k%d@example.com" % i))
        != 1]
t.ok(ok and not dups and kills == 3,
     "delivery processes and responders SIGKILLed: every contact created "
     "once, every pair stored", len(pairs(srv)), outbox(srv)[:3], dups)
keyset = {}
for p in ext_si.received("POST", "/contacts"):
    e = (p.json() or {}).get("email", "")
    if e.startswith("k"):
        keyset.setdefault(e, set()).add(p.headers.get("Idempotency-Key"))
t.ok(all(len(v) == 1 for v in keyset.values()),
     "a POST sent again after a kill carried the same Idempotency-Key",
     {k: v for k, v in keyset.items() if len(v) > 1})
ext.delay = 0
srv.stop()

# --- one delivery process, many calls in flight: delivered once, in order --
srv, ngx = start("m", BM_SYNC_MODE="queued", BM_DELIVERY_PROCS="1",
                 BM_DELIVERY_CONCURRENCY="16")
with ext.lock:
    ext.max_flight = 0
    ext.applied.clear()
ext.slow = 0.1
bad = []
for n in range(1, 5):           # 50 contacts x 4 updates = 200 jobs
    for i in range(50):
        r = event(ngx, "contact_updated", {
            "id": 5000 + i, "email": "m%d@example.com" % i, "age": n})
        if r.status != 200 or r.json() != QUEUED:
            bad.append(r)
ok = bmtest.wait_until(lambda: not outbox(srv) and len(pairs(srv)) >= 50,
                       180)
ext.slow = 0
made = {i: ext.by_email("m%d@example.com" % i) for i in range(50)}
once = all(len(v) == 1 for v in made.values())
seqs = {i: [b.get("age") for c, b in ext.applied
            if made[i] and c == made[i][0]["id_candidate"]]
        for i in range(50)} if once else {}
t.ok(not bad and ok and once and
     all(seqs[i] == [2, 3, 4] and made[i][0]["age"] == 4 for i in range(50)),
     "200 queued updates of 50 contacts through one delivery process: each "
     "contact created once, then updated in arrival order", bad[:3],
     len(outbox(srv)), {i: (len(made[i]), seqs.get(i)) for i in range(3)})
t.ok(ext.max_flight > 1 and len(delivery_pids(srv)) == 1,
     "the external service saw more than one call in flight at once from "
     "the one delivery process (BM_DELIVERY_CONCURRENCY)", ext.max_flight,
     delivery_pids(srv))
srv.stop()

# --- SIGKILL of a delivery process with many calls in flight ---------------
srv, ngx = start("k64", BM_SYNC_MODE="queued", BM_DELIVERY_PROCS="1",
                 BM_DELIVERY_CONCURRENCY="64", BM_HTTP_TIMEOUT="5000")
with ext.lock:
    ext.max_flight = 0
ext.slow = 1.0
bad = []
for i in range(100):
    # Unknown contacts: the first call of each job is the creation.
    r = event(ngx, "contact_updated", {"id": 8000 + i,
                                       "email": "x%d@example.com" % i})
    if r.status != 200 or r.json() != QUEUED:
        bad.append(r)
busy = bmtest.wait_until(lambda: ext.flight >= 64, 60, interval=0.01)
killed = delivery_pids(srv)
for pid in killed:
    os.kill(pid, signal.SIGKILL)
in_flight = ext.flight
ok = bmtest.wait_until(lambda: not outbox(srv) and len(
    [1 for i in range(100) if ext.by_email("x%d@example.com" % i)]) == 100,
    180)
ext.slow = 0
dups = [i for i in range(100) if len(ext.by_email("x%d@example.com" % i))
        != 1]
posts = {}
for p in ext_si.received("POST", "/contacts"):
    e = (p.json() or {}).get("email", "")
    if e.startswith("x"):
        posts.setdefault(e, []).append(p.headers.get("Idempotency-Key"))
twice = {e: k for e, k in posts.items() if len(k) > 1}
t.ok(not bad and busy and len(killed) == 1 and ok and not dups,
     "the delivery process SIGKILLed with %d calls in flight: every "
     "contact created once after its replacement ran" % in_flight,
     bad[:3], killed, len(outbox(srv)), dups[:5])
t.ok(twice and all(len(set(k)) == 1 for k in twice.values()),
     "POSTs sent twice (%d) carried the same Idempotency-Key both times"
     % len(twice), {e: k for e, k in list(twice.items())[:3]})
srv.stop()

# --- a job that keeps failing dies; outbox retry revives it; bad answers ------
srv, ngx = start("b", BM_RETRY_SCHEDULE="0,100ms,100ms")
r = event(ngx, "contact_created", {"id": 7001, "email": "d1@example.com"})
eid = r.json()["data"]["id"]
ext.fail_path = {"/contacts/%d" % eid: (503, {"error": "busy"}, 0)}
mark = srv.mark()
r = event(ngx, "contact_updated", {"id": 7001, "age": 41})
srv.wait_log(r"schedule is exhausted: kept as dead", 30, since=mark)
jobs = outbox(srv)
dead = bmtest.wait_until(lambda: gauge(ngx, "jobs_dead") == 1 and
                         gauge(ngx, "jobs_queued") == 0, 30)
t.ok(dead, "the status gauge counts the dead job (jobs_dead 1, none "
     "queued)", gauge(ngx, "jobs_dead"), gauge(ngx, "jobs_queued"))
t.ok(r.json() == QUEUED and len(jobs) == 1 and jobs[0]["state"] == "dead"
     and jobs[0]["attempts"] == 3 and
     json.loads(jobs[0]["last"])["request"] == "PUT /contacts/%d" % eid and
     json.loads(jobs[0]["last"])["status"] == 503,
     "a job failing past the schedule is kept dead with its last request "
     "and answer", jobs)
show = json.loads(keys(srv, "outbox", "show", str(jobs[0]["id"]))
                  .stdout.decode() or "null")
t.ok(show and show["payload"]["data"] == {"id": 7001, "age": 41} and
     TOKEN not in json.dumps(show) and len(show["install_id"]) == 32,
     "outbox show: the payload, the install id, never the token", show)
ext.fail_path = {}
p = keys(srv, "outbox", "retry", str(jobs[0]["id"]))
ok = bmtest.wait_until(lambda: not outbox(srv) and
                       ext.contacts.get(eid, {}).get("age") == 41, 30)
t.ok(p.returncode == 0 and ok, "outbox retry ID: delivered this time", p)

# A 4xx that must not be retried: answered as before, nothing queued.
r = event(ngx, "contact_created", {"id": 7002, "email": "d2@example.com"})
eid2 = r.json()["data"]["id"]
ext.fail_path = {"/contacts/%d" % eid2: (422, {"error": "invalid"}, 0)}
ext_si.clear()
r = event(ngx, "contact_updated", {"id": 7002, "age": 9})
time.sleep(0.5)
t.ok(r.json()["success"] is False and r.json()["data"]["status"] == 422 and
     not outbox(srv) and len(ext_si.received("PUT")) == 1,
     "a 422: answered success:false at once, not queued, not retried", r)
ext.fail_path = {}

# Garbage and an oversized answer to the creation: retried, then dead, the
# store unchanged.
mark = srv.mark()
before = pairs(srv)
ext.fail_path = {"/contacts": (201, "<html>garbage", 0)}
r1 = event(ngx, "contact_created", {"id": 7003, "email": "d3@example.com"})
srv.wait_log(r"schedule is exhausted", 30, since=mark)
ext.fail_path = {"/contacts": (201, b"x" * (9 * 1024 * 1024), 0)}
mark = srv.mark()
r2 = event(ngx, "contact_created", {"id": 7004, "email": "d4@example.com"})
srv.wait_log(r"schedule is exhausted", 60, since=mark)
ext.fail_path = {}
jobs = {j["contact"]: j for j in outbox(srv)}
lg = {c: json.loads(j["last"]) for c, j in jobs.items()}
t.ok(r1.json() == QUEUED and r2.json() == QUEUED and
     jobs.get("7003", {}).get("state") == "dead" and
     "garbage" in lg["7003"]["answer"] and
     jobs.get("7004", {}).get("state") == "dead" and
     "larger than" in lg["7004"]["error"] and pairs(srv) == before,
     "garbage and oversized answers: retried, then dead, store unchanged",
     lg)
p = keys(srv, "outbox", "retry", "--dead")
ok = bmtest.wait_until(lambda: not outbox(srv) and "7003" in pairs(srv) and
                       "7004" in pairs(srv), 30)
t.ok(p.returncode == 0 and p.stdout.strip() == b"2" and ok,
     "outbox retry --dead: both delivered", p)
r = event(ngx, "contact_created", {"id": 7001, "email": "d1@example.com"})
t.ok(r.json() == {"data": {"success": True, "id": eid}, "type": "data",
                  "success": True} and len(ext.by_email("d1@example.com"))
     == 1, "contact_created for a linked contact: its id, nothing created",
     r)
# The external service's changes are jobs too: Botmatic down, queued, dead
# after the schedule, then sent again.
inst = [json.loads(l) for l in keys(srv, "export").stdout.decode()
        .splitlines() if json.loads(l).get("type") == "install"][0]
raw = json.dumps({"op": "created", "contact": {"id_candidate": 9001,
                                               "prenom": "Ext"}}).encode()
whsec = keys(srv, "secret", "show", inst["install_id"]).stdout.decode().strip()
bmapi.down = True
mark = srv.mark()
r = ngx.raw("POST", "/ext/%s/contacts" % inst["install_id"],
            [("Content-Type", "application/json"),
             ("Content-Length", str(len(raw)))] +
            bmtest.webhook_headers(whsec, raw), body=raw)
srv.wait_log(r"job \d+ \(ext_created\).*kept as dead", 30, since=mark)
jobs = outbox(srv)
t.ok(r.status == 200 and r.json() == {"success": True, "queued": True} and
     len(jobs) == 1 and jobs[0]["kind"] == "ext_created" and
     jobs[0]["contact"] == "e:9001" and jobs[0]["state"] == "dead" and
     "9001" not in pairs(srv).values(),
     "a change from the external service with Botmatic down: queued, then "
     "dead, nothing stored", r, jobs)
bmapi.down = False
keys(srv, "outbox", "retry", "--dead")
ok = bmtest.wait_until(lambda: "9001" in pairs(srv).values() and
                       not outbox(srv), 30)
t.ok(ok, "sent again once Botmatic is back: created there, pair stored",
     pairs(srv))
# Uninstall cancels the installation's jobs in its transaction.
ext.fail = (503, {}, 0)
event(ngx, "contact_updated", {"id": 7001, "age": 1})
had = len(outbox(srv))
event(ngx, "uninstall", {})
t.ok(had == 1 and not outbox(srv), "uninstall cancelled the pending job",
     had)
st = ngx.request("GET", "/status").json() or {}
jt = st.get("jobs_total", {})
t.ok(all(jt.get(k, 0) > 0 for k in ("queued", "done", "retried", "dead")),
     "the status counts jobs queued, done, retried and dead", jt)
ext.fail = None
srv.stop()

# --- import: killed half-way it resumes; twice creates no duplicate ----------
with ext.lock:
    ext.contacts.clear()
for i in range(200):
    ext.add({"prenom": "I%d" % i, "email": "i%d@example.com" % i})
ext.delay = 0.05
srv, ngx = start("d", BM_IMPORT_ON_INSTALL="1", BM_IMPORT_PAGE="10",
                 BM_HTTP_TIMEOUT="2000")
srv.wait_log(r"import: page 5:", 60)
for pid in delivery_pids(srv):
    os.kill(pid, signal.SIGKILL)
before_kill = [int(q.query["page"][0]) for q in ext_si.received("GET")
               if "page" in q.query]
mark = srv.mark()
srv.wait_log(r"import: done", 120, since=mark)
after = [int(q.query["page"][0]) for q in ext_si.received("GET")
         if "page" in q.query][len(before_kill):]
t.ok(len(pairs(srv)) == 200 and bmapi.created == 200 and after and
     min(after) >= max(before_kill) - 1,
     "an import killed half-way resumes where it stopped, 200 contacts "
     "created once", len(pairs(srv)), bmapi.created, before_kill, after)
mark = srv.mark()
bm_si.clear()
event(ngx, "install", {})
srv.wait_log(r"import: done", 60, since=mark)
t.ok(not bm_si.received("POST", "/api/contacts") and
     srv.grep(r"import: done: 0 imported, 200 already linked", since=mark),
     "importing twice creates no duplicate")
ext.delay = 0
t.ok(not any(s.grep(TOKEN) for s in servers), "no token in any log")
t.done()
