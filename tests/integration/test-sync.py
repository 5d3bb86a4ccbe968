#!/usr/bin/env python3
"""Contact sync end to end (SPEC §4, §5): a real nginx, the server with a
mappings file, and recording stand-ins for Botmatic and for the external
service (a small stateful fake of a REST contacts API).  Each step asserts
what each stand-in received and what the store holds."""
import hashlib
import hmac
import json
import os
import subprocess
import threading

import bmtest

t = bmtest.Test()
TOKEN = "tok-sync-9d2e71"

MAPPINGS = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "id_candidate", "transform": "int"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
    {"botmatic": {"name": "lastname"}, "ext": {"name": "nom"}},
    {"botmatic": {"name": "email"}, "ext": {"name": "email"}},
    {"botmatic": {"name": "age", "type": "number"},
     "ext": {"name": "age", "transform": "int"}},
]


class Ext:
    """The external service: contacts in memory, ids from 1, id_candidate."""

    def __init__(self):
        self.lock = threading.Lock()
        self.contacts = {}
        self.next = 1
        self.fail = None     # (status, body, delay) answered to everything

    def add(self, c):
        with self.lock:
            c = dict(c, id_candidate=self.next)
            self.contacts[self.next] = c
            self.next += 1
            return c

    def handle(self, rec):
        if self.fail:
            return self.fail
        parts = rec.path.strip("/").split("/")
        with self.lock:
            if rec.method == "POST" and parts == ["contacts"]:
                c = dict(rec.json(), id_candidate=self.next)
                self.contacts[self.next] = c
                self.next += 1
                return 201, {"id_candidate": c["id_candidate"]}, 0
            if rec.method == "GET" and parts == ["contacts"]:
                if "email" in rec.query:
                    e = rec.query["email"][0]
                    return 200, [c for c in self.contacts.values()
                                 if c.get("email") == e][:1], 0
                page = int(rec.query["page"][0])
                limit = int(rec.query["limit"][0])
                allc = [self.contacts[k] for k in sorted(self.contacts)]
                return 200, {"items": allc[(page - 1) * limit:
                                           page * limit]}, 0
            if len(parts) == 2 and parts[0] == "contacts":
                k = int(parts[1]) if parts[1].isdigit() else -1
                if k not in self.contacts:
                    return 404, {"error": "no such contact"}, 0
                if rec.method == "PUT":
                    self.contacts[k] = dict(rec.json(), id_candidate=k)
                    return 200, {"ok": True}, 0
                if rec.method == "DELETE":
                    del self.contacts[k]
                    return 204, b"", 0
                if rec.method == "GET":
                    return 200, self.contacts[k], 0
        return 400, {"error": "unexpected"}, 0


class Botmatic:
    """Botmatic's API: validation, properties, contacts."""

    def __init__(self):
        self.next = 1000
        self.lock = threading.Lock()
        self.fail_properties = False

    def handle(self, rec):
        p = rec.path
        if p == "/api/integrationtokens/validate":
            return 200, {"success": rec.form().get("token") == [TOKEN]}, 0
        if p == "/api/properties":
            return (500, {"error": "boom"}, 0) if self.fail_properties \
                else (201, {"success": True}, 0)
        if p == "/api/contacts" and rec.method == "POST":
            body = rec.json()
            with self.lock:
                if "contacts" in body:
                    out = []
                    for _ in body["contacts"]:
                        out.append({"success": True, "id": self.next})
                        self.next += 1
                    return 201, {"contacts": out}, 0
                self.next += 1
                return 201, {"id": self.next - 1}, 0
        if p.startswith("/api/contacts") and rec.method in ("PATCH",):
            return 200, {"success": True}, 0
        if p == "/api/campaigns/execute-event":
            return 200, {"success": True}, 0
        if p.startswith("/api/contacts/") and rec.method == "DELETE":
            return 204, b"", 0
        return 404, {"error": "unexpected"}, 0


ext, bmapi = Ext(), Botmatic()
ext_si = t.standin()
ext_si.route("*", r"/contacts(/.*)?", ext.handle)
bm_si = t.standin()
bm_si.route("*", r"/api/.*", bmapi.handle)

mapfile = os.path.join(t.tmp, "mappings.json")
with open(mapfile, "w") as f:
    json.dump(MAPPINGS, f)
env = {"BOTMATIC_BASE_URL": bm_si.url, "BM_EXT_BASE_URL": ext_si.url,
       "BM_MAPPINGS": mapfile, "BM_EXT_LIST_FIELD": "items",
       "BM_EXT_AUTH_HEADER": "X-Api-Key: ext-secret-key",
       "BM_HTTP_TIMEOUT": "1500", "BM_IMPORT_PAGE": "30",
       "BM_MODULES": t.module("set_property") + ":" + t.module("testmod"),
       "BM_MOD_SET_PROPERTY_PROPERTIES": "plan,status",
       # Queued jobs stay queued here, to be looked at (test-queue.py
       # covers their delivery).
       "BM_DELIVERY_PROCS": "0"}
srv = t.server(env)
ngx = t.nginx(srv)
keys_bin = t.build_file("botmatic-keys")


def keys(*args):
    return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


def ext_of(bid):
    p = keys("get-ext", TOKEN, str(bid))
    return p.stdout.decode().strip() if p.returncode == 0 else None


def pairs():
    p = keys("list", TOKEN)
    return {json.loads(l)["botmatic_id"]: json.loads(l)["ext_id"]
            for l in p.stdout.decode().splitlines()}


def post(body, token=TOKEN, **kw):
    return ngx.post(body, token=token, **kw)


def event(name, data):
    return post({"event": name, "data": data})


# --- install ------------------------------------------------------------------
bm_si.clear()
r = event("install", {})
t.is_(r.json(), {"data": {"success": True}, "type": "data", "success": True},
      "install answers as js-contact did")
props = bm_si.received("POST", "/api/properties")
t.ok(len(props) == 1 and props[0].json() == {"properties": [
    {"name": "firstname", "type": "text"}, {"name": "lastname", "type": "text"},
    {"name": "email", "type": "text"}, {"name": "age", "type": "number"}]} and
     props[0].headers.get("Authorization") == "Bearer " + TOKEN,
     "install created every mapped property but id, with the token", props)
r = event("install", {})
t.ok(r.status == 200 and r.json()["success"] is True and
     len(keys("installs").stdout.splitlines()) == 1,
     "install delivered twice: same answer, one installation")

# --- contact_created: new ---------------------------------------------------------
ext_si.clear()
r = event("contact_created", {"id": 101, "firstname": "Ana", "lastname": "Lee",
                              "email": "ana@example.com", "age": "33"})
eid = ext_of(101)
t.ok(r.status == 200 and r.json() == {"data": {"success": True, "id": 1},
                                      "type": "data", "success": True},
     "contact_created (new): answer carries the external id", r)
got = [(q.method, q.path, q.query) for q in ext_si.requests]
created = ext_si.received("POST", "/contacts")
t.ok(got[0] == ("GET", "/contacts", {"email": ["ana@example.com"]}) and
     len(created) == 1 and created[0].json() == {
         "prenom": "Ana", "nom": "Lee", "email": "ana@example.com", "age": 33}
     and created[0].headers.get("X-Api-Key") == "ext-secret-key",
     "looked up by email, then created with the mapped record (no "
     "Botmatic id in it)", got, created)
t.is_(eid, "1", "the id pair is stored")

# --- contact_created: exists by email ------------------------------------------------
old = ext.add({"prenom": "Bob", "nom": "Old", "email": "bob@example.com",
               "age": 50})
ext_si.clear()
bm_si.clear()
r = event("contact_created", {"contact_created": {
    "id": 102, "firstname": "Bobby", "email": "bob@example.com"}})
t.is_(r.json(), {"data": {"success": True, "id": old["id_candidate"]},
                 "type": "data", "success": True},
      "contact_created (exists by email; contact nested under the event "
      "name): linked")
patch = bm_si.received("PATCH", "/api/contacts/102")
t.ok(not ext_si.received("POST", "/contacts") and len(patch) == 1 and
     patch[0].json() == {"contact_id": 102, "contact": {
         "firstname": "Bob", "lastname": "Old", "email": "bob@example.com",
         "age": 50}},
     "nothing created externally; the external values pushed to Botmatic",
     patch)
t.is_(ext_of(102), str(old["id_candidate"]), "the pair is stored")

# --- contact_updated: known and unknown ------------------------------------------------
ext_si.clear()
r = event("contact_updated", {"id": 101, "firstname": "Anna",
                              "email": "ana@example.com"})
put = ext_si.received("PUT", "/contacts/1")
t.ok(r.json() == {"data": {"success": True}, "type": "data",
                  "success": True} and len(put) == 1 and
     put[0].json() == {"id_candidate": 1, "prenom": "Anna",
                       "email": "ana@example.com"},
     "contact_updated (known): PUT with the ext id key set", r, put)
r = event("contact_updated", {"id": 103, "firstname": "Cy"})
t.ok(r.json()["success"] is True and r.json()["data"].get("id") and
     ext_of(103) == str(r.json()["data"]["id"]),
     "contact_updated (unknown): created and the pair saved", r)

# --- contact_deleted --------------------------------------------------------------------
ext_si.clear()
r = event("contact_deleted", {"contact_id": 101})
t.ok(r.json() == {"data": {"success": True}, "type": "data",
                  "success": True} and
     len(ext_si.received("DELETE", "/contacts/1")) == 1 and
     ext_of(101) is None, "contact_deleted: deleted externally, pair gone", r)
r = event("contact_deleted", {"contact_id": 101})
t.is_(r.json()["data"], {"success": False, "error": "resource not found"},
      "contact_deleted for an unknown contact: not found, clearly")

# --- transient failures: queued (SPEC §9), the store unchanged ------------------------------


def outbox():
    return [json.loads(l) for l in keys("outbox").stdout.decode().splitlines()]


QUEUED = {"data": {"success": True, "queued": True}, "type": "data",
          "success": True}
before = pairs()
for label, fail in (("external service 500", (500, {"e": 1}, 0)),
                    ("answer not JSON", (201, "<html>oops", 0)),
                    ("timeout", (201, {"id_candidate": 99}, 3))):
    ext.fail = fail
    r = event("contact_created", {"id": 201, "firstname": "F",
                                  "email": "f@example.com"})
    ext.fail = None
    jobs = outbox()
    t.ok(r.status == 200 and r.json() == QUEUED and pairs() == before and
         len(jobs) == 1 and jobs[0]["contact"] == "201" and
         jobs[0]["kind"] == "contact_created" and jobs[0]["attempts"] == 1
         and TOKEN not in json.dumps(jobs),
         "contact_created with %s: queued, store unchanged, one job" % label,
         r, jobs)
    keys("outbox", "cancel", str(jobs[0]["id"]) if jobs else "0")
ext_si.stop()
r = event("contact_updated", {"id": 102, "firstname": "G"})
jobs = outbox()
t.ok(r.json() == QUEUED and pairs() == before and len(jobs) == 1,
     "contact_updated with the external service down: queued", r, jobs)
keys("outbox", "cancel", str(jobs[0]["id"]) if jobs else "0")
ext_si.start()
# The external contact vanished: updating recreates and relinks it.
with ext.lock:
    del ext.contacts[old["id_candidate"]]
r = event("contact_updated", {"id": 102, "firstname": "Bob"})
t.ok(r.json()["success"] is True and ext_of(102) != str(old["id_candidate"]),
     "contact_updated after a 404: created again, relinked", r)
t.is_(post({"event": "contact_created", "data": {"firstname": "x"}}).json(
    )["data"], {"success": False, "error": "no contact with an id in data"},
    "a contact without id: a clear failure")

# --- set_property module, through the Botmatic API ------------------------------------------
bm_si.clear()
r = post({"action": "plan_gold", "data": {"contact_id": 55}})
pt = bm_si.received("PATCH", "/api/contacts/55")
t.ok(r.json() == {"type": "data", "data": {"success": True,
                                           "property": "plan",
                                           "value": "gold"},
                  "success": True} and len(pt) == 1 and
     pt[0].json() == {"contact_id": 55, "contact": {"plan": "gold"}},
     "set_property: action plan_gold sets plan on the contact", r, pt)

# --- the external route: signed changes from the external service ----------------------------
inst = [json.loads(l) for l in keys("export").stdout.decode().splitlines()
        if json.loads(l).get("type") == "install"][0]
path = "/ext/%s/contacts" % inst["install_id"]


def ext_post(raw, hdrs=None):
    """Posts raw with the Standard Webhooks headers hdrs (None: unsigned)."""
    return ngx.raw("POST", path, [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(raw)))] +
                   list(hdrs or []), body=raw)


def signed(body, secret=inst["secret"]):
    raw = json.dumps(body).encode()
    return raw, bmtest.webhook_headers(secret, raw)


before = pairs()
bm_si.clear()
raw, sig = signed({"op": "created", "contact": {
    "id_candidate": 500, "prenom": "Eve", "email": "eve@example.com"}})
bad = bmtest.webhook_headers("ab" * 32, raw)
r = ext_post(raw, bad)
t.ok(r.status == 401 and pairs() == before and not bm_si.requests,
     "external route: a bad signature is refused with 401, nothing changed",
     r)
r = ext_post(raw)
t.ok(r.status == 401 and pairs() == before,
     "external route: no signature is refused with 401")
r = ext_post(raw, [("X-Botmatic-Signature", "sha256=" + hmac.new(
    inst["secret"].encode(), raw, hashlib.sha256).hexdigest())])
t.ok(r.status == 401 and pairs() == before,
     "external route: the old X-Botmatic-Signature alone is refused")
r = ext_post(raw, sig)
made = bm_si.received("POST", "/api/contacts")
t.ok(r.status == 200 and r.json()["success"] is True and len(made) == 1 and
     made[0].json() == {"contact": {"firstname": "Eve",
                                    "email": "eve@example.com"}} and
     pairs().get(str(r.json()["id"])) == "500",
     "external route: a signed creation creates on Botmatic, pair saved",
     r, made)
bid = str(r.json()["id"])
raw, sig = signed({"op": "updated", "contact": {"id_candidate": 500,
                                                "prenom": "Eva"}})
r = ext_post(raw, sig)
t.ok(r.json() == {"success": True} and bm_si.received(
    "PATCH", "/api/contacts/" + bid)[-1].json() == {
    "contact_id": int(bid), "contact": {"firstname": "Eva"}},
    "external route: a signed update patches the linked contact", r)
raw, sig = signed({"op": "deleted", "contact": {"id_candidate": 500}})
r = ext_post(raw, sig)
t.ok(r.json() == {"success": True} and bid not in pairs() and
     bm_si.received("DELETE", "/api/contacts/" + bid),
     "external route: a signed deletion deletes it and the pair", r)

# --- the same operations called by a module through <botmatic/module.h> ----------------------
def sync(op, arg=None, **kw):
    body = dict({"op": op}, **kw)
    if arg is not None:
        body["arg"] = arg
    return post({"action": "sync", "data": body}).json()


bm_si.clear()
r = sync("create", {"id_candidate": 600, "prenom": "Mo"})
mo = str(r["data"].get("id"))
t.ok(r["data"]["success"] is True and pairs().get(mo) == "600",
     "module: contact_create creates on Botmatic and saves the pair", r)
r = sync("create", {"id_candidate": 600, "prenom": "Mo"})
t.ok(r["data"]["success"] is False and "already linked" in
     r["data"]["error"], "module: creating a linked contact again is refused",
     r)
bm_si.clear()
r = sync("update_many", [{"id_candidate": 600, "prenom": "Moe"},
                         {"id_candidate": 999, "prenom": "Nobody"}])
many = bm_si.received("PATCH", "/api/contacts")
t.ok(r["data"]["success"] is True and r["data"]["skipped"] == 1 and
     len(many) == 1 and many[0].json() == {"contacts": [
         {"contact_id": int(mo), "contact_props": {"firstname": "Moe"}}]},
     "module: contacts_update patches the linked ones, skips the others "
     "(contact_id an integer, as in a single update)",
     r, many)
bm_si.clear()
r = sync("campaign", [int(mo)], event="welcome")
ev = bm_si.received("POST", "/api/campaigns/execute-event")
t.ok(len(ev) == 1 and ev[0].json() == {"event_name": "welcome",
                                       "contacts": [int(mo)]},
     "module: campaign_event fires the event for the contacts", r, ev)
r = sync("delete", "600")
t.ok(r["data"]["success"] is True and mo not in pairs(),
     "module: contact_delete deletes on Botmatic and forgets the pair", r)

# --- uninstall --------------------------------------------------------------------------------
r = event("uninstall", {})
t.ok(r.status == 200 and r.json()["success"] is True and pairs() == {},
     "uninstall: every pair of the installation gone", r)

# --- install failing on properties: nothing recorded ------------------------------------------
bmapi.fail_properties = True
r = event("install", {})
bmapi.fail_properties = False
t.ok(r.status == 200 and r.json()["success"] is False and
     keys("installs").stdout.strip() == b"",
     "install whose properties fail: success:false, nothing recorded", r)

# --- import of 1000 contacts over many pages, after the answer ---------------------------------
with ext.lock:
    ext.contacts.clear()
for i in range(1000):
    ext.add({"prenom": "P%d" % i, "email": "p%d@example.com" % i})
srv.stop()
srv = t.server(dict(env, BM_IMPORT_ON_INSTALL="1", BM_DELIVERY_PROCS="1"),
               name="import")
ngx2 = t.nginx(srv, name="nginx2")
bm_si.clear()
mark = srv.mark()
r = ngx2.post({"event": "install", "data": {}}, token=TOKEN)
t.is_(r.status, 200, "install with BM_IMPORT_ON_INSTALL=1 answers at once")
done = srv.wait_log(r"import: done", 120, since=mark)
batches = bm_si.received("POST", "/api/contacts")
p = subprocess.run([keys_bin, "-d", srv.db, "list", TOKEN],
                   stdout=subprocess.PIPE, timeout=60)
t.ok(done and len(batches) == 34 and
     all(len(b.json()["contacts"]) <= 30 for b in batches) and
     len(p.stdout.splitlines()) == 1000,
     "1000 contacts imported in pages of 30, 1000 pairs stored",
     done, len(batches), len(p.stdout.splitlines()))
mark = srv.mark()
bm_si.clear()
r = ngx2.post({"event": "install", "data": {}}, token=TOKEN)
srv.wait_log(r"import: done", 120, since=mark)
t.ok(not bm_si.received("POST", "/api/contacts") and
     srv.grep(r"import: done: 0 imported, 1000 already linked", since=mark),
     "importing again creates no duplicate")
# On demand: from the command line (with the server's environment, while it
# runs), then from a module.
for i in range(5):
    ext.add({"prenom": "Q%d" % i, "email": "q%d@example.com" % i})
inst2 = [json.loads(l) for l in keys("installs").stdout.decode().splitlines()]
p = subprocess.run([t.build_file("botmatic-fcgi"), "--import-contacts",
                    inst2[0]["install_id"]], env=srv.env,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
out = json.loads(p.stdout.decode() or "null")
t.ok(p.returncode == 0 and out == {"success": True, "imported": 5,
                                   "skipped": 1000, "failed": 0},
     "botmatic-fcgi --import-contacts imports what is new, once", p)
for i in range(3):
    ext.add({"prenom": "R%d" % i, "email": "r%d@example.com" % i})
kenv = {k: v for k, v in srv.env.items() if k != "BM_DB_HOME"}
p = subprocess.run([keys_bin, "-d", srv.db, "import-contacts",
                    inst2[0]["install_id"]], env=kenv,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
out = json.loads(p.stdout.decode() or "null")
t.ok(p.returncode == 0 and out == {"success": True, "imported": 3,
                                   "skipped": 1005, "failed": 0},
     "botmatic-keys import-contacts does the same", p)
mark = srv.mark()
r = ngx2.post({"action": "sync", "data": {"op": "import"}}, token=TOKEN)
srv.wait_log(r"import: done", 120, since=mark)
t.ok(r.json()["data"].get("success") is True and
     r.json()["data"].get("queued") is True and
     srv.grep(r"import: done: 0 imported, 1008 already linked", since=mark),
     "a module's import is queued as a job and finds nothing new", r)
t.ok(not srv.grep(TOKEN) and not srv.grep("ext-secret-key") and
     not srv.grep(inst["secret"]), "no token or secret in the log")
t.done()
