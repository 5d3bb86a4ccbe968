#!/usr/bin/env python3
"""BM_STORE=redis when Redis dies or fails over (SPEC §14, issue 16).

3. redis-server (AOF, appendfsync always) SIGKILLed and restarted on the
   same port and directory, three times, under load: every request the
   server answered with success has its pair after the restart, requests
   during the outage answer 503 (the store holds the queue too, so there
   is nothing to queue them in), no pair is half-written (both directions
   or neither), and the server serves again by itself, the same master.
   Then Redis up but refusing writes (maxmemory reached, or
   min-replicas-to-write with no replica): 503, nothing written.
4. A master, a replica and a Sentinel; the server finds the master through
   BM_REDIS_SENTINELS.  Pairs acknowledged before a failover (the replica
   having every byte, checked by replication offsets) are there after it,
   and the server follows the new master without a restart: first a
   SENTINEL FAILOVER (the old master demoted), then the new master
   SIGKILLed (the old one promoted back).

Checks are on answers and on what the store holds; waits are generous
bounds for something that must happen, never measurements."""
import json
import os
import signal
import subprocess
import threading

import bmtest

t = bmtest.Test(requires=("nginx", "server", "redis"))
TOKEN = "tok-crash-5e0a9c"
keys_bin = t.build_file("botmatic-keys")
keyfile = bmtest.secret_key_file(t)
ext = bmtest.ExtContacts(t)
bm = t.botmatic({TOKEN})
bm.route("PATCH", r"/api/contacts/.*", 200, {"success": True})
mapfile = os.path.join(t.tmp, "mappings.json")
with open(mapfile, "w") as f:
    json.dump(bmtest.CONTACT_MAPPINGS, f)
COMMON = {"BM_STORE": "redis", "BM_SECRET_KEY_FILE": keyfile,
          "BOTMATIC_BASE_URL": bm.url, "BM_EXT_BASE_URL": ext.url,
          "BM_MAPPINGS": mapfile, "BM_MODULES": t.module("testmod"),
          "BM_WORKERS": "3", "BM_LOG_LEVEL": "info"}


def keys(env, *args, timeout=120):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("BM_", "BOTMATIC_"))}
    e.update({k: v for k, v in env.items() if v is not None})
    try:
        return subprocess.run([keys_bin] + [str(a) for a in args],
                              env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as x:
        return subprocess.CompletedProcess(x.cmd, 124, b"", b"timed out")


def listed(env):
    """{bid: eid} of TOKEN's pairs, None when botmatic-keys failed."""
    p = keys(env, "list", TOKEN)
    if p.returncode != 0:
        bmtest.diag("botmatic-keys list: %r" % (p,))
        return None
    out = {}
    for line in p.stdout.decode().splitlines():
        j = json.loads(line)
        out[j["botmatic_id"]] = j["ext_id"]
    return out


def post(ngx, body, timeout=60):
    try:
        return ngx.post(body, token=TOKEN, timeout=timeout)
    except Exception as e:     # noqa: BLE001 - counted as "other"
        return bmtest.Response(0, {}, repr(e).encode())


def success(r):
    j = r.json() if r.status == 200 else None
    return j if isinstance(j, dict) and j.get("success") is True else None


class Load:
    """Clients saving fresh pairs (testmod's save, one store transaction)
    and sending contact_created for fresh contacts, until stopped.
    .acked: {bid: eid} answered with success; .refused: bids answered
    503; .other: (bid, status, body) of anything else."""

    def __init__(self, ngx, tag, savers=3, creators=1):
        self.ngx, self.tag = ngx, tag
        self.lock = threading.Lock()
        self.acked, self.refused, self.other = {}, [], []
        self.queued = set()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._saver, args=(k,))
                        for k in range(savers)] + \
            [threading.Thread(target=self._creator, args=(k,))
             for k in range(creators)]
        for th in self.threads:
            th.start()

    def _record(self, bid, r, eid):
        with self.lock:
            if eid is not None:
                self.acked[bid] = eid
            elif r.status == 503:
                self.refused.append(bid)
            else:
                self.other.append((bid, r.status, r.body[:160]))

    def _saver(self, k):
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            bid = "%s-s%d-%d" % (self.tag, k, i)
            r = post(self.ngx, {"action": "save",
                                "data": {"bid": bid, "eid": "x" + bid}})
            self._record(bid, r, "x" + bid if success(r) else None)

    def _creator(self, k):
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            bid = str(1000000 + 100000 * k + i)
            r = post(self.ngx, {"event": "contact_created", "data": {
                "id": int(bid), "email": "c%s@example.com" % bid}})
            j = success(r)
            d = j.get("data") if j else None
            eid = None
            if isinstance(d, dict) and d.get("queued"):
                with self.lock:
                    self.queued.add(bid)
                eid = "queued"
            elif isinstance(d, dict) and d.get("id") is not None:
                eid = str(d["id"])
            self._record(bid, r, eid)

    def count(self):
        with self.lock:
            return len(self.acked), len(self.refused)

    def stop(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(120)


def lost_pairs(acked, pairs):
    """Acked pairs not in pairs ({bid: eid}); a queued contact counts as
    kept when its bid has any ext id."""
    return {b: e for b, e in acked.items()
            if (b not in pairs if e == "queued" else pairs.get(b) != e)}


# --- 3. Redis SIGKILLed and restarted under load --------------------------
rd = t.redis("redis-aof", appendfsync="always")
KENV = {"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
        "BM_SECRET_KEY_FILE": keyfile}
srv = t.server(dict(COMMON, BM_REDIS_URL=rd.url), name="aof")
ngx = t.nginx(srv, name="nginx-aof")
master_pid = srv.pid
r = post(ngx, {"event": "install", "data": {}})
t.ok(success(r), "install", r)

load = Load(ngx, "k")
rounds = []
for rd_no in range(3):
    a0, _ = load.count()
    progressed = bmtest.wait_until(lambda: load.count()[0] >= a0 + 60, 60)
    _, f0 = load.count()
    bmtest.diag("round %d: SIGKILL redis-server %d" % (rd_no, rd.pid))
    rd.kill(signal.SIGKILL)
    refused = bmtest.wait_until(lambda: load.count()[1] >= f0 + 5, 60)
    rd.restart()
    a1, _ = load.count()
    back = bmtest.wait_until(lambda: load.count()[0] >= a1 + 30, 60)
    rounds.append((bool(progressed), bool(refused), bool(back)))
load.stop()
t.ok(all(p for p, _, _ in rounds),
     "under load before each kill (%d requests acknowledged in all)"
     % len(load.acked), rounds)
t.ok(all(f for _, f, _ in rounds) and not load.other,
     "while Redis is down requests answer 503 (%d of them), nothing else"
     % len(load.refused), load.other[:5])
# A responder the pool started while Redis was down cannot open the store
# and exits; the master must not take that for a wedged Berkeley DB and
# stop every responder (their requests would get nginx's 502).
t.ok(not srv.grep(r"stopping every responder"),
     "no responder stopped for a dead one: nothing to recover in Redis",
     srv.grep(r"exited with status [1-9]|stopping every responder")[:5])
t.ok(all(b for _, _, b in rounds) and srv.proc.alive() and
     srv.pid == master_pid,
     "after each restart the same server acknowledges requests again "
     "by itself", rounds)
# Queued contacts (if any) are delivered once Redis is back.
bmtest.wait_until(lambda: not keys(KENV, "outbox").stdout.strip(), 60)
pairs = listed(KENV)
lost = lost_pairs(load.acked, pairs or {})
t.ok(pairs is not None and not lost,
     "every acknowledged pair (%d) is in the store after the restarts"
     % len(load.acked), "lost: %r" % sorted(lost.items())[:10])
# Nothing half-written: what a refused request left is both directions of
# its pair or nothing; every pair's reverse lookup agrees.
mine = {b: e for b, e in (pairs or {}).items() if b.startswith("k-")}
half = []
for b in load.refused:
    if b.startswith("k-"):
        rev = keys(KENV, "get-botmatic", TOKEN, "x" + b)
        fwd = (pairs or {}).get(b)
        if (fwd is None) != (rev.returncode == 1) or \
                (fwd is not None and rev.stdout.decode().strip() != b):
            half.append((b, fwd, rev.returncode, rev.stdout))
v = keys(KENV, "verify")
t.ok(not half and v.returncode == 0 and
     all(e == "x" + b for b, e in mine.items()),
     "no pair half-written: refused saves left both directions or neither "
     "(%d refused saves, %d of them stored), botmatic-keys verify agrees"
     % (sum(1 for b in load.refused if b.startswith("k-")),
        sum(1 for b in load.refused if b in mine)), half[:5], v)

# Redis up but refusing writes: full (maxmemory with noeviction, the
# default policy) or fenced (min-replicas-to-write with no replica), as
# the README's configuration does.  Answered 503, nothing written; served
# again once lifted.
refusals = []
for name, on_cmd, off_cmd in (
        ("maxmemory", lambda: rd.cmd("CONFIG", "SET", "maxmemory", max(
            1, int(rd.client.info("memory")["used_memory"]) // 2)),
         lambda: rd.cmd("CONFIG", "SET", "maxmemory", 0)),
        ("min-replicas-to-write", lambda: rd.cmd(
            "CONFIG", "SET", "min-replicas-to-write", 1),
         lambda: rd.cmd("CONFIG", "SET", "min-replicas-to-write", 0))):
    on_cmd()
    r = post(ngx, {"action": "save", "data": {"bid": "full-" + name,
                                              "eid": "x"}})
    off_cmd()
    p = keys(KENV, "get-ext", TOKEN, "full-" + name)
    r2 = post(ngx, {"action": "save", "data": {"bid": "ok-" + name,
                                               "eid": "y"}})
    refusals.append((name, r.status, p.returncode, bool(success(r2))))
t.ok(all(st == 503 and rc == 1 and ok for _, st, rc, ok in refusals),
     "Redis refusing writes (full, or no replica for min-replicas-to-write):"
     " 503, nothing written, served again once lifted", refusals)
t.ok(not srv.grep(TOKEN) and not srv.sanitizer_reports(),
     "no token in the log, no sanitizer report", srv.sanitizer_reports()[:3])
srv.stop()

# --- 4. Sentinel: a replica promoted, then the new master killed ---------
m = t.redis("redis-m", appendfsync="always")
rp = t.redis("redis-r", appendfsync="always",
             args=["--replicaof", "127.0.0.1", str(m.port)])
sen = t.sentinel(m, master_name="bm", down_ms=1000, failover_ms=5000)
SEN = {"BM_REDIS_SENTINELS": sen.addr, "BM_REDIS_MASTER": "bm"}
known = bmtest.wait_until(
    lambda: any(("port", str(rp.port)) in zip(x[::2], x[1::2])
                for x in sen.client.try_cmd("SENTINEL", "replicas", "bm")
                or []), 30)
srv = t.server(dict(COMMON, **SEN), name="sen")
ngx = t.nginx(srv, name="nginx-sen")
master_pid = srv.pid
r = post(ngx, {"event": "install", "data": {}})
before = {}
for i in range(100):
    bid = "pre-%d" % i
    if success(post(ngx, {"action": "save",
                          "data": {"bid": bid, "eid": "x" + bid}})):
        before[bid] = "x" + bid
synced = bmtest.wait_until(lambda: bmtest.redis_in_sync(m, rp), 30)
t.ok(success(r) and len(before) == 100 and synced and known,
     "through Sentinel: install and 100 pairs acknowledged, the replica in "
     "sync (offsets equal)", r, len(before))


def role(rd):
    try:
        return rd.client.info("replication").get("role")
    except (bmtest.RespError, OSError):
        return None


def on(rd, ld):
    """Whether the last pair ld acknowledged is on rd (botmatic-keys on
    that Redis alone)."""
    with ld.lock:
        last = list(ld.acked.items())[-1:]
    if not last:
        return False
    p = keys(dict(KENV, BM_REDIS_URL=rd.url), "get-ext", TOKEN, last[0][0])
    return p.returncode == 0 and p.stdout.decode().strip() == last[0][1]


def failover(kind, old, new, tag, trigger):
    """Load on, trigger(), wait for Sentinel to name new, then for the
    server to write to it (the last pair acknowledged is there) and to
    acknowledge requests again; load off.  Returns the load, with
    .after_moved: the pairs acknowledged once Sentinel named new."""
    ld = Load(ngx, tag, savers=2, creators=0)
    bmtest.wait_until(lambda: ld.count()[0] >= 20, 30)
    bmtest.diag("%s: master %d -> %d" % (kind, old.port, new.port))
    trigger()
    moved = bmtest.wait_until(
        lambda: sen.master_addr() == ("127.0.0.1", new.port) and
        role(new) == "master", 60)
    with ld.lock:
        acked_then = set(ld.acked)
    a1, _ = ld.count()
    back = bmtest.wait_until(lambda: ld.count()[0] >= a1 + 30 and
                             on(new, ld), 90, interval=0.2)
    ld.stop()
    ld.moved, ld.back = bool(moved), bool(back)
    ld.after_moved = {b: e for b, e in ld.acked.items()
                      if b not in acked_then}
    return ld


ld = failover("SENTINEL FAILOVER", m, rp, "f1",
              lambda: sen.cmd("SENTINEL", "FAILOVER", "bm"))
after = {}
for i in range(20):
    bid = "post1-%d" % i
    if success(post(ngx, {"action": "save",
                          "data": {"bid": bid, "eid": "x" + bid}})):
        after[bid] = "x" + bid
# The old master is demoted by Sentinel (a replica of the new one, its
# data replaced by the new master's); what it acknowledged meanwhile is
# gone.  Checked once it is a replica in sync, so nothing is counted
# that would disappear later.
demoted = bmtest.wait_until(lambda: role(m) == "slave" and
                            bmtest.redis_in_sync(rp, m), 60)
ON_R = dict(KENV, BM_REDIS_URL=rp.url)
pairs = listed(ON_R) or {}
t.ok(ld.moved and ld.back and len(after) == 20 and
     srv.pid == master_pid and srv.proc.alive(),
     "after SENTINEL FAILOVER the same server follows the new master: "
     "writes succeed again", ld.moved, ld.back, len(after))
t.ok(demoted and not lost_pairs(before, pairs),
     "on the new master, once the old one is its replica: the 100 pairs "
     "acknowledged before the failover", demoted,
     sorted(lost_pairs(before, pairs))[:5])
t.ok(not lost_pairs(after, pairs),
     "and the 20 written once the server writes to the new master",
     "lost: %d of 20: %r" % (len(lost_pairs(after, pairs)),
                             sorted(lost_pairs(after, pairs))[:5]))
t.ok(not ld.other, "during the failover requests answered success or 503 "
     "(%d acknowledged, %d refused)" % (len(ld.acked), len(ld.refused)),
     ld.other[:5])
# What the old master acknowledged before Sentinel demoted it is lost:
# counted, for the README and the report (asynchronous replication: the
# server only learns of a failover from an error on its connection).
bmtest.diag("acknowledged during the failover and not on the new master: "
            "%d of %d; of those acknowledged after Sentinel named the new "
            "master: %d of %d" % (
                len(lost_pairs(ld.acked, pairs)), len(ld.acked),
                len(lost_pairs(ld.after_moved, pairs)), len(ld.after_moved)))

# The old master is now a replica of the new one; once it has every byte,
# the new master is SIGKILLed and Sentinel promotes the old one back.
synced = bmtest.wait_until(lambda: bmtest.redis_in_sync(rp, m), 60)
before2 = dict(pairs)
ld2 = failover("SIGKILL of the master", rp, m, "f2",
               lambda: rp.kill(signal.SIGKILL))
after2 = {}
for i in range(20):
    bid = "post2-%d" % i
    if success(post(ngx, {"action": "save",
                          "data": {"bid": bid, "eid": "x" + bid}})):
        after2[bid] = "x" + bid
pairs2 = listed(dict(KENV, BM_REDIS_URL=m.url)) or {}
t.ok(synced and ld2.moved and ld2.back and len(after2) == 20 and
     srv.pid == master_pid,
     "the new master SIGKILLed: Sentinel promotes the old one and the same "
     "server writes to it", synced, ld2.moved, ld2.back, len(after2))
t.ok(not lost_pairs(before2, pairs2) and not lost_pairs(after2, pairs2) and
     not ld2.other,
     "every pair acknowledged before the kill (%d) and after it is there; "
     "requests in between answered success or 503" % len(before2),
     sorted(lost_pairs(before2, pairs2))[:5], ld2.other[:5])
p = keys(dict(KENV, BM_REDIS_URL=None, **SEN), "get-ext", TOKEN, "post2-3")
t.ok(p.returncode == 0 and p.stdout == b"xpost2-3\n",
     "botmatic-keys finds the master through BM_REDIS_SENTINELS too", p)
t.ok(not srv.grep(TOKEN) and not srv.sanitizer_reports(),
     "no token in the log, no sanitizer report", srv.sanitizer_reports()[:3])
t.done()
