#!/usr/bin/env python3
"""BM_STORE=redis shared by several servers, and by a Node integration
(SPEC §14, issue 16).

1. Two servers (two masters, two sockets, two nginx, the same
   BM_SECRET_KEY_FILE) on one Redis, as two hosts would run: install on
   one, contact events on the other, uninstall on either; the pairs are
   seen from both and by botmatic-keys on the Redis; no key or value in
   Redis holds the token.
2. BM_REDIS_KEYS=js-redis-key-store: the pairs this server writes are
   where js-redis-key-store reads them (`<integration>:b:<bid>` -> ext id,
   `<integration>:e:<eid>` -> bid), and pairs written there as the Node
   library does are found by the server's lookups and contact events.
   The database of redis://host:port/db, and unix:/path, are honoured.

Every check is on answers, what the stand-ins received and what Redis
holds; waits are generous bounds for something that must happen."""
import json
import os
import subprocess

import bmtest

t = bmtest.Test(requires=("nginx", "server", "redis"))
TOKEN = "tok-share-3b9d51"
TOKEN_JS = "tok-node-c40e77"
TOKEN_UX = "tok-unix-81f2aa"
keys_bin = t.build_file("botmatic-keys")

rd = t.redis()
keyfile = bmtest.secret_key_file(t)
ext = bmtest.ExtContacts(t)
bm = t.botmatic({TOKEN, TOKEN_JS, TOKEN_UX})
bm.route("PATCH", r"/api/contacts/.*", 200, {"success": True})
mapfile = os.path.join(t.tmp, "mappings.json")
with open(mapfile, "w") as f:
    json.dump(bmtest.CONTACT_MAPPINGS, f)
COMMON = {"BM_STORE": "redis", "BM_SECRET_KEY_FILE": keyfile,
          "BOTMATIC_BASE_URL": bm.url, "BM_EXT_BASE_URL": ext.url,
          "BM_MAPPINGS": mapfile, "BM_MODULES": t.module("testmod"),
          "BM_WORKERS": "2", "BM_LOG_LEVEL": "info"}


def keys(env, *args, timeout=60):
    """botmatic-keys on the Redis store that env names (no -d)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("BM_", "BOTMATIC_"))}
    e.update(env)
    try:
        return subprocess.run([keys_bin] + [str(a) for a in args],
                              env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as x:
        return subprocess.CompletedProcess(x.cmd, 124, b"", b"timed out")


def listed(env, token):
    p = keys(env, "list", token)
    out = {}
    for line in p.stdout.decode().splitlines():
        try:
            j = json.loads(line)
            out[j["botmatic_id"]] = j["ext_id"]
        except (ValueError, KeyError):
            pass
    return out


def post(ngx, body, token=TOKEN):
    try:
        return ngx.post(body, token=token, timeout=30)
    except Exception as e:     # noqa: BLE001 - reported by the checks
        return bmtest.Response(0, {}, repr(e).encode())


def ok_json(r):
    j = r.json() if r.status == 200 else None
    return j if isinstance(j, dict) and j.get("success") is True else None


def get(ngx, bid, token=TOKEN):
    """The ext id the server's keystore gives for bid (testmod's get:
    success with the id, or success:false with null when unknown)."""
    r = post(ngx, {"action": "get", "data": {"bid": bid}}, token)
    j = r.json() if r.status == 200 else None
    d = j.get("data") if isinstance(j, dict) else None
    if isinstance(d, dict) and "eid" in d and \
            (d["eid"] is None) == (j.get("success") is False):
        return d["eid"]
    return "<failed: %r>" % (r,)


# --- 1. two servers on one Redis ------------------------------------------
SHARED = dict(COMMON, BM_REDIS_URL=rd.url)
a = t.server(SHARED, name="a")

# Without BM_SECRET_KEY_FILE a Redis store is refused (the sealing key is
# never kept in Redis): by botmatic-fcgi -t and by botmatic-keys, in one
# line naming the variable; and no sealing key is in Redis.
nokey = {k: v for k, v in a.env.items() if k != "BM_SECRET_KEY_FILE"}
chk = subprocess.run([t.build_file("botmatic-fcgi"), "-t"], env=nokey,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     timeout=60)
out = chk.stdout.decode("utf-8", "replace").strip()
t.ok(chk.returncode != 0 and
     any("BM_SECRET_KEY_FILE: required with BM_STORE=redis" in line
         for line in out.splitlines()),
     "BM_STORE=redis without BM_SECRET_KEY_FILE: -t refuses, naming it", out)
kp = keys({"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
           "BM_DB_HOME": os.path.join(t.tmp, "nokey")}, "outbox")
err = kp.stderr.decode("utf-8", "replace").strip()
t.ok(kp.returncode == 2 and "BM_SECRET_KEY_FILE" in err and
     len(err.splitlines()) == 1,
     "... and so does botmatic-keys", err)
na = t.nginx(a, name="nginx-a")
b = t.server(SHARED, name="b")
nb = t.nginx(b, name="nginx-b")
servers = [a, b]

r = post(na, {"event": "install", "data": {}})
t.ok(ok_json(r), "install through server A", r)
r = post(nb, {"action": "whoami"})
t.ok(ok_json(r), "server B accepts the token A recorded (BM_AUTH=installed)",
     r)

created = {}
for i in range(5):
    r = post(nb, {"event": "contact_created", "data": {
        "id": 100 + i, "email": "s%d@example.com" % i}})
    j = ok_json(r)
    created[str(100 + i)] = str(j["data"].get("id")) if j and \
        isinstance(j.get("data"), dict) else None
t.ok(all(created.values()) and len(ext.posts) == 5 and
     all(len(ext.by_email("s%d@example.com" % i)) == 1 for i in range(5)),
     "5 contact_created through server B: each created once on the "
     "external service", created, ext.posts)
seen_a = {bid: get(na, bid) for bid in created}
seen_b = {bid: get(nb, bid) for bid in created}
t.ok(seen_a == created and seen_b == created,
     "the 5 pairs are seen from both servers", created, seen_a, seen_b)
KENV = {"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
        "BM_SECRET_KEY_FILE": keyfile}
lst = listed(KENV, TOKEN)
p = keys(KENV, "get-botmatic", TOKEN, created["102"])
t.ok(lst == created and p.returncode == 0 and p.stdout == b"102\n",
     "botmatic-keys on the Redis lists the 5 pairs and finds one by ext id",
     lst, p)
p = keys(KENV, "save", TOKEN, "900", "9900")
t.ok(p.returncode == 0 and get(na, "900") == "9900" and
     get(nb, "900") == "9900",
     "a pair botmatic-keys saves is seen by both servers", p)

ext.si.clear()
r = post(na, {"event": "contact_updated", "data": {
    "id": 101, "email": "s1@example.com", "firstname": "Ann"}})
puts = ext.si.received("PUT")
t.ok(ok_json(r) and [q.path for q in puts] ==
     ["/contacts/%s" % created["101"]] and not ext.si.received("POST"),
     "contact_updated through server A updates the contact server B "
     "created (no second creation)", r, ext.si.requests)

vals = bmtest.redis_values(bmtest.Resp(port=rd.port, raw=True))
with open(keyfile, "rb") as f:
    key = f.read()
leaks = sorted(k for k, v in vals.items()
               if TOKEN.encode() in k + v or key in v or
               key.hex().encode() in v)
t.ok(vals and not leaks,
     "no Redis key or value holds the token (%d keys) or the bytes of "
     "BM_SECRET_KEY_FILE" % len(vals), leaks[:5])

r = post(nb, {"event": "uninstall", "data": {}})
t.ok(ok_json(r), "uninstall through server B", r)
ra = post(na, {"action": "whoami"})
p = keys(KENV, "get-ext", TOKEN, "101")
t.ok(ra.status == 401 and p.returncode == 1,
     "at once server A refuses the token and botmatic-keys finds no pair",
     ra, p)
gone = bmtest.wait_until(lambda: listed(KENV, TOKEN) == {}, 30)
t.ok(gone, "botmatic-keys lists nothing for the installation",
     listed(KENV, TOKEN))

r = post(nb, {"event": "install", "data": {}})
r2 = post(na, {"action": "save", "data": {"bid": "7", "eid": "77"}})
fresh = get(nb, "101")
r3 = post(na, {"event": "uninstall", "data": {}})
rb = post(nb, {"action": "whoami"})
t.ok(ok_json(r) and ok_json(r2) and fresh is None and ok_json(r3) and
     rb.status == 401,
     "installed again through B starts empty; uninstall through A is "
     "seen by B", r, r2, fresh, r3, rb)

# --- 2. js-redis-key-store's key layout ----------------------------------
rj = t.redis("redis-js")
JS = dict(COMMON, BM_REDIS_URL=rj.url + "/3",
          BM_REDIS_KEYS="js-redis-key-store")
c = t.server(JS, name="c")
nc = t.nginx(c, name="nginx-c")
servers.append(c)
db3 = bmtest.Resp(port=rj.port)
db3.cmd("SELECT", 3)
db0 = bmtest.Resp(port=rj.port)
# Another integration's pair, written by Node in the same database.
db3.cmd("SET", "other-int:b:1", "5001")
db3.cmd("SET", "other-int:e:5001", "1")

r = post(nc, {"event": "install", "data": {}}, TOKEN_JS)
r2 = post(nc, {"action": "save", "data": {"bid": "b1", "eid": "e1"}},
          TOKEN_JS)
t.ok(ok_json(r) and ok_json(r2) and
     db3.cmd("GET", TOKEN_JS + ":b:b1") == "e1" and
     db3.cmd("GET", TOKEN_JS + ":e:e1") == "b1" and
     db0.cmd("GET", TOKEN_JS + ":b:b1") is None,
     "a saved pair is at <integration>:b:<bid> and <integration>:e:<eid> "
     "in database 3 of redis://host:port/3 (not in 0)", r, r2,
     db3.scan_all(TOKEN_JS + ":*"))
r = post(nc, {"event": "contact_created", "data": {
    "id": 11, "email": "js11@example.com"}}, TOKEN_JS)
j = ok_json(r)
eid = str(j["data"].get("id")) if j else None
t.ok(eid and db3.cmd("GET", TOKEN_JS + ":b:11") == eid and
     db3.cmd("GET", TOKEN_JS + ":e:" + eid) == "11",
     "contact_created stores its pair under the library's two keys", r)
post(nc, {"action": "save", "data": {"bid": "b1", "eid": "e2"}}, TOKEN_JS)
t.ok(db3.cmd("GET", TOKEN_JS + ":b:b1") == "e2" and
     db3.cmd("GET", TOKEN_JS + ":e:e2") == "b1" and
     db3.cmd("EXISTS", TOKEN_JS + ":e:e1") == 0,
     "relinking b1 to e2 removes the stale :e:e1 key (a bijection)",
     db3.scan_all(TOKEN_JS + ":*"))

# Pairs written by the Node library: SET both keys, numbers in decimal.
cid = ext.add({"email": "node77@example.com"}, cid=9077)
ext.add({"email": "node78@example.com"}, cid=9078)
for bid, e in (("77", "9077"), ("78", "9078")):
    db3.cmd("SET", "%s:b:%s" % (TOKEN_JS, bid), e)
    db3.cmd("SET", "%s:e:%s" % (TOKEN_JS, e), bid)
KJS = {"BM_STORE": "redis", "BM_REDIS_URL": rj.url + "/3",
       "BM_REDIS_KEYS": "js-redis-key-store", "BM_SECRET_KEY_FILE": keyfile}
p1 = keys(KJS, "get-ext", TOKEN_JS, "77")
p2 = keys(KJS, "get-botmatic", TOKEN_JS, "9078")
t.ok(get(nc, "77", TOKEN_JS) == "9077" and p1.stdout == b"9077\n" and
     p2.stdout == b"78\n",
     "pairs written as js-redis-key-store does are found by the server and "
     "by botmatic-keys", p1, p2)
ext.si.clear()
r = post(nc, {"event": "contact_updated", "data": {
    "id": 77, "email": "node77@example.com", "firstname": "Nod"}}, TOKEN_JS)
t.ok(ok_json(r) and [q.path for q in ext.si.received("PUT")] ==
     ["/contacts/9077"] and not ext.si.received("POST") and
     ext.contacts[9077].get("prenom") == "Nod",
     "contact_updated for a Node-written pair updates that external contact",
     r, ext.si.requests)
ext.si.clear()
r = post(nc, {"event": "contact_deleted", "data": {"contact_id": 78}},
         TOKEN_JS)
t.ok(ok_json(r) and [q.path for q in ext.si.received("DELETE")] ==
     ["/contacts/9078"] and 9078 not in ext.contacts and
     db3.cmd("EXISTS", TOKEN_JS + ":b:78", TOKEN_JS + ":e:9078") == 0,
     "contact_deleted for a Node-written pair deletes it externally and "
     "both keys", r, ext.si.requests)

# unix:/path (database 0), another installation on the same Redis.
d = t.server(dict(COMMON, BM_REDIS_URL="unix:" + rj.unix,
                  BM_REDIS_KEYS="js-redis-key-store"), name="d")
nd = t.nginx(d, name="nginx-d")
servers.append(d)
r = post(nd, {"event": "install", "data": {}}, TOKEN_UX)
r2 = post(nd, {"action": "save", "data": {"bid": "u1", "eid": "v1"}},
          TOKEN_UX)
t.ok(ok_json(r) and ok_json(r2) and
     db0.cmd("GET", TOKEN_UX + ":b:u1") == "v1" and
     db3.cmd("GET", TOKEN_UX + ":b:u1") is None,
     "BM_REDIS_URL=unix:/path reaches Redis (database 0)", r, r2)

r = post(nc, {"event": "uninstall", "data": {}}, TOKEN_JS)
gone = bmtest.wait_until(lambda: db3.scan_all(TOKEN_JS + ":*") == [], 30)
t.ok(ok_json(r) and gone and
     db3.cmd("GET", "other-int:b:1") == "5001" and
     db3.cmd("GET", "other-int:e:5001") == "1" and
     db0.cmd("GET", TOKEN_UX + ":b:u1") == "v1",
     "uninstall deletes every key of that integration and no other "
     "integration's", r, db3.scan_all(TOKEN_JS + ":*")[:5])

t.ok(not any(s.grep(tok) for s in servers
             for tok in (TOKEN, TOKEN_JS, TOKEN_UX)),
     "no token in any server's log")
t.ok(not any(s.sanitizer_reports() for s in servers),
     "no sanitizer report", [s.sanitizer_reports()[:3] for s in servers])
t.done()
