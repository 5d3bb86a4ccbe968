#!/usr/bin/env python3
"""Integration events and webhook registration (issue 13, SPEC §11), with a
real nginx, the server, a Botmatic stand-in and a stand-in external service
("shop") that keeps webhooks (GET/POST /webhooks, DELETE /webhooks/{id}),
records every call, can fail or hang a call, and signs its deliveries.
Every signature is computed here with Python's hmac, hashlib and base64:
an implementation independent of the server's.

- BM_EVENTS refusals (unknown schema keyword, bad JSON Pointer, unknown
  verify scheme) at start and by -t, naming the file, the event, the reason.
- Registration: install twice -> one webhook per topic at our address;
  hooks reconcile changes nothing then; a duplicate at our address is
  deleted; after a secret rotation the hooks are replaced; webhooks at
  other addresses are never touched; a hanging list is retried.
- Deliveries: a valid one fires one campaign event for the right contact
  (ext id through the keystore; email through the external service) and the
  module handler once; redelivery fires nothing; bad, missing, stale
  signature -> 401 and nothing recorded; schema-invalid -> 400 naming the
  field and keyword; invalid JSON -> 400; unknown type or install -> 404;
  too big -> 413; shopify, github and stripe vectors; a handler failing
  transiently is retried, then dead in the outbox.
- SIGHUP with a good file (a new type served) and a bad one (the old kept).
- Uninstall: the webhooks go, even when a delete fails once.

With BM_TEST_EVENTS_STORE=redis (test-events-redis.py) the same on
BM_STORE=redis: a redis-server of the test's own, given to every server,
to botmatic-fcgi -t and to botmatic-keys (BM_STORE, BM_REDIS_URL,
BM_SECRET_KEY_FILE), so delivery_accept, detached jobs, hooks and secret
set run on the Redis backend.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

ON_REDIS = os.environ.get("BM_TEST_EVENTS_STORE") == "redis"
t = bmtest.Test(requires=("nginx", "server", "redis") if ON_REDIS
                else ("nginx", "server"))
# The store every server and botmatic-keys use: {} is Berkeley DB in each
# server's BM_DB_HOME.
STORE = {}
if ON_REDIS:
    rd = t.redis()
    STORE = {"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
             "BM_SECRET_KEY_FILE": bmtest.secret_key_file(t)}
    # botmatic-keys and botmatic-fcgi -t take the store from the
    # environment they inherit.
    os.environ.update(STORE)


def server(env, **kw):
    """t.server() on the test's store."""
    return t.server(dict(env, **STORE), **kw)


TOKEN = "tok-events-5c2d1a"
PUBLIC = "https://bot.example.com"
FOREIGN = "https://elsewhere.example.org/hook"

ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "customer", "total"],
    "properties": {
        "id": {"type": "integer"},
        "total": {"type": "number", "minimum": 0},
        "customer": {"type": "object", "required": ["id"],
                     "properties": {"id": {"type": "integer"},
                                    "email": {"type": "string"}}},
    },
}
EVENTS = {"events": {
    "order_created": {"schema": ORDER_SCHEMA, "topic": "orders/create",
                      "contact": {"ext_id": "/customer/id"},
                      "campaign_event": "new_order"},
    "order_paid": {"schema": ORDER_SCHEMA, "topic": "orders/paid",
                   "contact": {"email": "/customer/email"},
                   "campaign_event": "order_paid", "verify": "shopify"},
    "gh_push": {"verify": "github"},
    "charge": {"verify": "stripe", "schema": {"type": "object",
                                              "required": ["id"]}},
}}
MAPPINGS = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "ext_id", "transform": "int"}},
    {"botmatic": {"name": "email"}, "ext": {"name": "email"}},
]


def write(name, obj):
    p = os.path.join(t.tmp, name)
    with open(p, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return p


# --- refusals at start and by -t ---------------------------------------------
n_bad = [0]


def bad_events(event, reason_rx, what):
    path = write("bad-%s.json" % what.replace(" ", "-"), {"events": {
        "fine": {"schema": {"type": "object"}}, "broken": event}})
    n_bad[0] += 1
    srv = server({"BM_EVENTS": path, "BM_AUTH": "any", "BM_WORKERS": 1},
                   name="bad%d" % n_bad[0], start=False)
    st = srv.run_to_exit(timeout=20)
    rx = r"BM_EVENTS: %s: event \"broken\": .*%s" % (re.escape(path),
                                                      reason_rx)
    t.ok(st not in (None, 0) and srv.grep(rx),
         "BM_EVENTS with %s: refused at start, file, event and reason "
         "named" % what, st, srv.log())
    env = dict(srv.env)
    p = subprocess.run([srv.binary, "-t"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    t.ok(p.returncode == 1 and re.search(rx, p.stderr.decode()),
         "botmatic-fcgi -t refuses BM_EVENTS with %s the same way" % what,
         p.returncode, p.stderr.decode())


bad_events({"schema": {"type": "integer", "multipleOf": 2}},
           r"unknown keyword \"multipleOf\"", "an unknown schema keyword")
bad_events({"contact": {"ext_id": "customer/id"}, "campaign_event": "x"},
           r"bad JSON Pointer", "a bad JSON Pointer")
bad_events({"verify": "paypal"}, r"verify: unknown scheme", "an unknown "
           "verify scheme")

example = t.src_file("nginx", "events.json")
p = subprocess.run([t.build_file("botmatic-fcgi"), "-t"], env=dict(
    os.environ, BM_DB_HOME=os.path.join(t.tmp, "db-example"),
    BM_EVENTS=example, BM_PUBLIC_URL=PUBLIC,
    BM_EXT_BASE_URL="http://127.0.0.1:9"), stdout=subprocess.PIPE,
    stderr=subprocess.PIPE, timeout=30)
t.ok(p.returncode == 0 and re.search(r"events: %s: 3 events" %
                                     re.escape(example), p.stderr.decode()),
     "the shipped example nginx/events.json passes -t", p)

# --- the stand-ins -----------------------------------------------------------
campaigns = []
lock = threading.Lock()


def botmatic(rec):
    if rec.path == "/api/integrationtokens/validate":
        ok = rec.form().get("token") == [TOKEN]
        return 200, {"success": ok}, 0
    if rec.path == "/api/campaigns/execute-event":
        with lock:
            campaigns.append(rec.json())
        return 200, {"success": True}, 0
    if rec.path == "/api/properties":
        return 201, {"success": True}, 0
    return 200, {"success": True}, 0


bm_si = t.standin()
bm_si.route("*", r"/api/.*", botmatic)

shop_hooks = {}         # id -> {"id","topic","address"}
shop_next = [100]
shop_fail = {}          # method -> [remaining, status]
shop_hang = {}          # method -> [remaining, seconds]
shop_calls = []


def shop(rec):
    with lock:
        shop_calls.append((rec.method, rec.path))
        f = shop_fail.get(rec.method)
        if f and f[0] > 0:
            f[0] -= 1
            return f[1], {"error": "injected"}, 0
        h = shop_hang.get(rec.method)
        delay = 0
        if h and h[0] > 0:
            h[0] -= 1
            delay = h[1]
        if rec.method == "GET" and rec.path == "/webhooks":
            return 200, list(shop_hooks.values()), delay
        if rec.method == "POST" and rec.path == "/webhooks":
            body = rec.json()
            shop_next[0] += 1
            hid = "wh%d" % shop_next[0]
            shop_hooks[hid] = {"id": hid, "topic": body["topic"],
                               "address": body["address"]}
            return 201, {"id": hid}, delay
        m = re.fullmatch(r"/webhooks/(.+)", rec.path)
        if rec.method == "DELETE" and m:
            if shop_hooks.pop(m.group(1), None) is None:
                return 404, {"error": "no such webhook"}, delay
            return 204, "", delay
        if rec.method == "GET" and rec.path == "/contacts":
            email = rec.query.get("email", [""])[0]
            if email == "ann@example.com":
                return 200, [{"ext_id": 1002, "email": email}], 0
            return 200, [], 0
    return 404, {"error": "no route"}, 0


shop_si = t.standin()
shop_si.route("*", r"/.*", shop)
shop_hooks["foreign1"] = {"id": "foreign1", "topic": "orders/create",
                          "address": FOREIGN}

events_path = write("events.json", EVENTS)
env = {"BOTMATIC_BASE_URL": bm_si.url, "BM_EXT_BASE_URL": shop_si.url,
       "BM_MAPPINGS": write("mappings.json", MAPPINGS),
       "BM_EVENTS": events_path, "BM_PUBLIC_URL": PUBLIC,
       "BM_AUTH": "validate", "BM_MODULES": t.module("testmod"),
       "BM_RETRY_SCHEDULE": "0,1s,1s", "BM_HTTP_TIMEOUT": "1500",
       "BM_MAX_BODY": "65536", "BM_WORKERS": 2}
srv = server(env)
ngx = t.nginx(srv)
keys_bin = t.build_file("botmatic-keys")


def keys(*args, stdin=None):
    return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                          input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def outbox():
    return [json.loads(l) for l in keys("outbox").stdout.decode()
            .splitlines()]


def ours():
    with lock:
        return sorted((h["topic"], h["address"], h["id"])
                      for h in shop_hooks.values() if h["address"] != FOREIGN)


def settled():
    """The queue is empty (every registration job finished)."""
    return bmtest.wait_until(lambda: outbox() == [], 30, 0.2)


# --- registration ------------------------------------------------------------
shop_hang["GET"] = [1, 3]      # the first list hangs past BM_HTTP_TIMEOUT
r = ngx.post({"event": "install", "data": {}}, token=TOKEN)
t.ok(r.status == 200 and r.json()["success"] is True, "install", r)
inst = [json.loads(l) for l in keys("export").stdout.decode().splitlines()
        if json.loads(l).get("type") == "install"][0]
iid = inst["install_id"]
base = "%s/ext/%s/events/" % (PUBLIC, iid)
want = [("orders/create", base + "order_created"),
        ("orders/paid", base + "order_paid")]
ok = bmtest.wait_until(lambda: [h[:2] for h in ours()] == want, 30, 0.2)
t.ok(ok and settled() and shop_hang["GET"][0] == 0,
     "install: one webhook per topic at our address (the list that hung "
     "was retried)", ours(), outbox(), srv.grep("events"))
first = ours()
r = ngx.post({"event": "install", "data": {}}, token=TOKEN)
ok = settled()
t.ok(r.status == 200 and ok and ours() == first,
     "install again: still exactly one per topic, the same ids", ours(),
     first)
listed = sorted((h["topic"], h["address"], h["id"]) for h in
                [json.loads(l) for l in keys("hooks", "list", iid).stdout
                 .decode().splitlines()])
t.ok(listed == first, "botmatic-keys hooks list shows what is registered",
     listed, first)
with lock:
    ncalls = len(shop_calls)
p = keys("hooks", "reconcile", iid)
ok = p.returncode == 0 and b'"queued":true' in p.stdout and \
    bmtest.wait_until(lambda: len(shop_calls) > ncalls, 20) and settled()
with lock:
    since = shop_calls[ncalls:]
t.ok(ok and ours() == first and since == [("GET", "/webhooks")],
     "hooks reconcile when all is in place: a list, nothing created or "
     "deleted", p, since)
with lock:
    shop_hooks["dup1"] = {"id": "dup1", "topic": "orders/create",
                          "address": base + "order_created"}
    shop_hooks["stale1"] = {"id": "stale1", "topic": "orders/old",
                            "address": base + "order_refunded"}
keys("hooks", "reconcile", iid)
ok = bmtest.wait_until(lambda: ours() == first, 20, 0.2) and settled()
t.ok(ok, "a duplicate and a stale webhook at our address are deleted, the "
     "registered ones kept", ours(), first)
p = keys("secret", "rotate", iid)
secret_old = None
secret = p.stdout.decode().strip()
keys("hooks", "reconcile", iid)
ok = bmtest.wait_until(lambda: [h[:2] for h in ours()] == want and
                       not set(h[2] for h in ours()) & set(h[2] for h in
                                                           first), 20, 0.2)
t.ok(p.returncode == 0 and ok and settled(),
     "after a secret rotation, the webhooks made with the old secret are "
     "replaced", ours(), first)
second = ours()
t.ok(shop_hooks.get("foreign1", {}).get("address") == FOREIGN,
     "the webhook at another address was never touched")

# --- deliveries --------------------------------------------------------------
keys("save", TOKEN, "42", "1001")
keys("save", TOKEN, "43", "1002")
seq = [0]


def order(oid, cust=1001, total=10.5, **extra):
    body = {"id": oid, "total": total, "customer": {
        "id": cust, "email": "ann@example.com"}}
    body.update(extra)
    return json.dumps(body).encode()


def post(type_, raw, hdrs, inst_id=None):
    return ngx.raw("POST", "/ext/%s/events/%s" % (inst_id or iid, type_),
                   [("Content-Type", "application/json"),
                    ("Content-Length", str(len(raw)))] + list(hdrs),
                   body=raw)


def sw(raw, msg_id=None, ts=None, key_text=None):
    """Standard Webhooks, computed here: HMAC-SHA256 of id.ts.body under
    the decoded whsec_ key."""
    seq[0] += 1
    msg_id = msg_id or "msg_%d" % seq[0]
    ts = int(time.time()) if ts is None else ts
    key = base64.b64decode((key_text or secret)[6:])
    mac = hmac.new(key, b"%s.%d." % (msg_id.encode(), ts) + raw,
                   hashlib.sha256).digest()
    return [("webhook-id", msg_id), ("webhook-timestamp", str(ts)),
            ("webhook-signature", "v1," + base64.b64encode(mac).decode())]


def n_campaigns():
    with lock:
        return len(campaigns)


def handler_runs(oid):
    return len(srv.grep(r"testmod: ext_event order_created id %d attempt" %
                        oid))


raw = order(1)
h = sw(raw)
r = post("order_created", raw, h)
ok = bmtest.wait_until(lambda: n_campaigns() == 1 and handler_runs(1) == 1,
                       20, 0.1) and settled()
t.ok(r.status == 200 and r.json() == {"success": True, "id": h[0][1]} and
     ok and campaigns[0] == {"event_name": "new_order", "contacts": [42]},
     "a valid delivery: 200 with its id, one campaign event for the contact "
     "linked to the ext id", r, campaigns)
t.ok(handler_runs(1) == 1 and srv.grep(r"testmod: ext_event order_created "
                                       r"id 1 attempt 1 client yes"),
     "the module handler (reg_ext_event) ran once, with the installation as "
     "its client", srv.grep("ext_event"))
r = post("order_created", raw, h)
time.sleep(1.5)
t.ok(r.status == 200 and r.json() == {"success": True, "id": h[0][1],
                                      "duplicate": True} and
     n_campaigns() == 1 and handler_runs(1) == 1 and outbox() == [],
     "redelivery: 200 duplicate, nothing fired again", r, campaigns)
if ON_REDIS:
    seen = rd.client.scan_all("bm:seen:%s:*" % iid)
    t.ok(len(seen) >= 1 and rd.client.cmd("EXISTS", "bm:instid:" + iid) == 1,
         "on Redis: the installation and the delivery claims are Redis "
         "keys (bm:instid:, bm:seen:)", seen)


def nothing_recorded(r, what, raw, hdr_fn):
    before = (n_campaigns(), outbox())
    t.ok(r.status == 401 and (n_campaigns(), outbox()) == before,
         "%s: 401, no job" % what, r)
    # No claim either: the same id, properly signed, is accepted afterwards.
    return before


raw = order(2)
mid = "msg_refused_1"
now = int(time.time())
for what, hdrs in (
        ("unsigned", []),
        ("signature missing", sw(raw, mid)[:2]),
        ("signed with another secret", sw(raw, mid, key_text="whsec_" +
                                          "A" * 43 + "=")),
        ("stale (400 s old)", sw(raw, mid, ts=now - 400)),
        ("body changed", sw(raw + b" ", mid)),
        ("with another scheme's headers only",
         [("X-Shopify-Webhook-Id", mid), ("X-Shopify-Hmac-Sha256", "x")])):
    nothing_recorded(post("order_created", raw, hdrs), what, raw, None)
r = post("order_created", raw, sw(raw, mid))
ok = bmtest.wait_until(lambda: n_campaigns() == 2, 20, 0.1)
t.ok(r.status == 200 and "duplicate" not in r.json() and ok,
     "after those refusals the same delivery id is still new: no claim was "
     "recorded", r)

raw = order(3, total=-1)
r = post("order_created", raw, sw(raw))
j = r.json() if r.is_json_type else {}
t.ok(r.status == 400 and j.get("pointer") == "/total" and
     j.get("keyword") == "minimum" and "/total" in j.get("error", "") and
     "minimum" in j.get("error", ""),
     "schema-invalid payload: 400 naming the field (/total) and keyword", r)
raw = json.dumps({"id": 4, "total": 1}).encode()
r = post("order_created", raw, sw(raw))
j = r.json() if r.is_json_type else {}
t.ok(r.status == 400 and j.get("keyword") == "required" and
     "customer" in j.get("error", ""), "a missing required field: 400 "
     "naming it and \"required\"", r)
raw = b'{"id": 5, "total": '
r = post("order_created", raw, sw(raw))
t.ok(r.status == 400 and "not valid JSON" in r.body.decode(),
     "invalid JSON, signed: 400", r)
raw = order(6)
r = post("no_such_type", raw, sw(raw))
t.ok(r.status == 404, "unknown type: 404", r)
r = post("order_created", raw, sw(raw), inst_id="0" * 32)
t.ok(r.status == 404, "unknown install id: 404", r)
raw = order(7, pad="x" * 70000)
r = post("order_created", raw, sw(raw))
t.ok(r.status == 413, "a payload over the limit: 413", r)
t.ok(n_campaigns() == 2 and outbox() == [], "none of those fired anything",
     campaigns, outbox())

# --- the other schemes -------------------------------------------------------
whsec_text = secret.encode()       # their key without `secret set`


def shopify(raw, key, mid):
    mac = hmac.new(key, raw, hashlib.sha256).digest()
    return [("X-Shopify-Webhook-Id", mid), ("X-Shopify-Topic", "orders/paid"),
            ("X-Shopify-Hmac-Sha256", base64.b64encode(mac).decode())]


raw = order(8, cust=1002)
r = post("order_paid", raw, shopify(raw, whsec_text, "shop-1"))
ok = bmtest.wait_until(lambda: n_campaigns() == 3, 20, 0.1)
t.ok(r.status == 200 and r.json()["id"] == "shop-1" and ok and
     campaigns[-1] == {"event_name": "order_paid", "contacts": [43]},
     "shopify: signed with the whsec_ text, accepted; the contact found by "
     "email through the external service, then the keystore", r, campaigns)
p = keys("secret", "set", iid, stdin=b"shpss_0123456789abcdef\n")
raw = order(9, cust=1002)
r_old = post("order_paid", raw, shopify(raw, whsec_text, "shop-2"))
r_new = post("order_paid", raw, shopify(raw, b"shpss_0123456789abcdef",
                                        "shop-2"))
t.ok(p.returncode == 0 and r_old.status == 401 and r_new.status == 200,
     "botmatic-keys secret set: the service's secret is the shopify key "
     "from then on", p, r_old, r_new)
r = post("order_paid", raw, shopify(raw, b"shpss_0123456789abcdef",
                                    "shop-2"))
t.ok(r.status == 200 and r.json().get("duplicate") is True,
     "shopify: X-Shopify-Webhook-Id deduplicates", r)
GH = b"shpss_0123456789abcdef"
raw = json.dumps({"ref": "refs/heads/main"}).encode()
sig = "sha256=" + hmac.new(GH, raw, hashlib.sha256).hexdigest()
r = post("gh_push", raw, [("X-GitHub-Delivery", "gh-1"),
                          ("X-Hub-Signature-256", sig)])
r_bad = post("gh_push", raw, [("X-GitHub-Delivery", "gh-2"),
                              ("X-Hub-Signature-256", sig[:-2] + "00")])
r_dup = post("gh_push", raw, [("X-GitHub-Delivery", "gh-1"),
                              ("X-Hub-Signature-256", sig)])
t.ok(r.status == 200 and r.json()["id"] == "gh-1" and r_bad.status == 401
     and r_dup.json().get("duplicate") is True,
     "github: X-Hub-Signature-256 (hex HMAC of the body) checked, "
     "X-GitHub-Delivery deduplicates", r, r_bad, r_dup)


def stripe(raw, key, ts=None):
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(key, b"%d." % ts + raw, hashlib.sha256).hexdigest()
    return [("Stripe-Signature", "t=%d,v1=%s,v0=ignored" % (ts, mac))]


raw = json.dumps({"id": "evt_1", "type": "charge.succeeded"}).encode()
r = post("charge", raw, stripe(raw, GH))
r_dup = post("charge", raw, stripe(raw, GH))
r_stale = post("charge", raw, stripe(raw, GH, ts=int(time.time()) - 600))
t.ok(r.status == 200 and r.json()["id"] == "evt_1" and
     r_dup.json().get("duplicate") is True and r_stale.status == 401,
     "stripe: t=,v1= checked with a 5-minute tolerance; the payload's id "
     "deduplicates", r, r_dup, r_stale)
keys("secret", "set", iid, stdin=b"\n")

# --- a handler failing transiently -------------------------------------------
raw = order(10, fail_times=2)
r = post("order_created", raw, sw(raw))
ok = bmtest.wait_until(lambda: handler_runs(10) == 3, 30, 0.2) and settled()
t.ok(r.status == 200 and ok, "a handler asking to be retried runs again on "
     "BM_RETRY_SCHEDULE, and is done on its third attempt",
     srv.grep("ext_event order_created id 10"))
raw = order(11, fail_times=99)
r = post("order_created", raw, sw(raw))
ok = bmtest.wait_until(lambda: any(j.get("state") == "dead" and j.get("kind") ==
                                   "ev_handler" for j in outbox()), 30, 0.2)
t.ok(r.status == 200 and ok and handler_runs(11) == 3,
     "one failing at every attempt is dead after the schedule, visible in "
     "botmatic-keys outbox", outbox())
for j in outbox():
    keys("outbox", "cancel", str(j["id"]))

# --- SIGHUP --------------------------------------------------------------------
ev2 = json.loads(json.dumps(EVENTS))
ev2["events"]["refund"] = {"verify": "standard-webhooks"}
with open(events_path, "w") as f:
    json.dump(ev2, f)
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"events: %s: 5 events" % re.escape(events_path), 20, mark)
time.sleep(1)
raw = b'{"r": 1}'
r = post("refund", raw, sw(raw))
t.ok(r.status == 200, "SIGHUP with a good file: the new type is served", r)
with open(events_path, "w") as f:
    json.dump({"events": {"refund": {"verify": "nope"}}}, f)
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"BM_EVENTS: .*event \"refund\": verify: unknown scheme", 20,
             mark)
time.sleep(1)
raw = b'{"r": 2}'
r = post("refund", raw, sw(raw))
raw = order(12)
r2 = post("order_created", raw, sw(raw))
t.ok(r.status == 200 and r2.status == 200,
     "SIGHUP with a bad file: refused, logged, the running one kept", r, r2)
with open(events_path, "w") as f:
    json.dump(EVENTS, f)
settled()

# --- uninstall -----------------------------------------------------------------
with lock:
    shop_fail["DELETE"] = [1, 503]
r = ngx.post({"event": "uninstall", "data": {}}, token=TOKEN)
ok = bmtest.wait_until(lambda: ours() == [] and outbox() == [], 30, 0.2)
with lock:
    deletes = [c for c in shop_calls if c[0] == "DELETE"]
t.ok(r.status == 200 and r.json()["success"] is True and ok and
     shop_fail["DELETE"][0] == 0,
     "uninstall: answered at once; the webhooks are deleted by a job that "
     "retried the delete that failed", r, ours(), outbox())
t.ok(shop_hooks.get("foreign1", {}).get("address") == FOREIGN and
     keys("hooks", "list", iid).returncode == 1,
     "the webhook at another address is still there; the installation and "
     "its record of webhooks are gone", deletes)
log = srv.log()
t.ok(secret[6:] not in log and TOKEN not in log and
     "shpss_0123456789abcdef" not in log, "no token or secret in the log")
srv.stop()
reports = srv.sanitizer_reports()

# --- a module's webhook operations (reg_hook_ops) ----------------------------
srv2 = server({"BOTMATIC_BASE_URL": bm_si.url, "BM_AUTH": "validate",
                 "BM_EVENTS": write("events2.json", {"events": {
                     "order_created": {"topic": "orders/create"}}}),
                 "BM_PUBLIC_URL": PUBLIC, "BM_MODULES": t.module("testmod"),
                 "BM_MOD_TESTMOD_HOOK_OPS": "1", "BM_WORKERS": 1},
                name="hookops")
ngx2 = t.nginx(srv2, name="nginx2")
r = ngx2.post({"event": "install", "data": {}}, token=TOKEN)
p = subprocess.run([keys_bin, "-d", srv2.db, "export"],
                   stdout=subprocess.PIPE, timeout=60)
iid2 = [json.loads(l) for l in p.stdout.decode().splitlines()
        if json.loads(l).get("type") == "install"][0]["install_id"]
addr2 = "%s/ext/%s/events/order_created" % (PUBLIC, iid2)
created = bmtest.wait_until(lambda: srv2.grep(
    r"testmod: hook_ops create orders/create %s -> tm-1" %
    re.escape(addr2)), 20, 0.2)
hl = subprocess.run([keys_bin, "-d", srv2.db, "hooks", "list", iid2],
                    stdout=subprocess.PIPE, timeout=60).stdout.decode()
t.ok(r.status == 200 and created and '"id":"tm-1"' in hl and
     len(srv2.grep("hook_ops create")) == 1,
     "without BM_EXT_BASE_URL, a module's webhook operations register the "
     "topic", r, hl, srv2.grep("hook_ops"))
mark = srv2.mark()
r = ngx2.post({"event": "uninstall", "data": {}}, token=TOKEN)
deleted = bmtest.wait_until(lambda: srv2.grep(
    r"testmod: hook_ops delete tm-1 \(@events\)", mark), 20, 0.2)
t.ok(r.status == 200 and deleted, "uninstall: the module's delete runs in "
     "the detached job (ctx->token \"@events\")", srv2.grep("hook_ops"))
srv2.stop()
reports += srv2.sanitizer_reports()
t.ok(not reports, "no sanitizer report", reports)
t.done()
