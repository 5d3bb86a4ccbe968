#!/usr/bin/env python3
"""The server under valgrind (memcheck): the master and its responders
serve a mix of every kind of request -- the protocol's answers, a module,
the keystore, contact sync with its outbound calls (queued: the delivery
process runs them on its asynchronous path), signed deliveries from the
external service, integration events (their registration at install,
deliveries of each signature scheme, the jobs they fire), the settings
page, an OAuth link with its
callback, token and refresh, a reload -- then stop,
with no memory error and no definite leak in any process.  SKIP without
valgrind."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess

import bmtest

VALGRIND = shutil.which("valgrind")
if not VALGRIND:
    bmtest.skip_all("valgrind not found")
t = bmtest.Test()
if "sanitize" in open(t.build_file("config.log"), errors="replace").read() \
        and "enable-sanitizers" in open(t.build_file("config.log"),
                                        errors="replace").read():
    bmtest.skip_all("a sanitizer build: valgrind runs on the plain build")
t.plan(4)

TOKEN = "tok-vg-1"
ext = t.standin()
ext.route("GET", r"/contacts", 200, [])
ext.route("POST", r"/contacts", 201, {"id_candidate": 7})
ext.route("PUT", r"/contacts/.*", 200, {})
ext.route("DELETE", r"/contacts/.*", 204, b"")
# A stand-in OAuth provider: the code, then a refresh, then the API.
ext.route("POST", r"/oauth/token", lambda rec: (200, {
    "access_token": "at-vg", "refresh_token": "rt-vg",
    "expires_in": 30 if b"authorization_code" in rec.body else 3600}, 0))
ext.route("GET", r"/user", 200, {"login": "vg"})
ext.route("GET", r"/webhooks", 200, [{"id": "old", "topic": "orders/create",
                                      "address": "https://elsewhere.test/"}])
ext.route("POST", r"/webhooks", 201, {"id": "w1"})
ext.route("DELETE", r"/webhooks/.*", 204, b"")
bm = t.botmatic({TOKEN})
bm.route("POST", r"/api/contacts", 201, {"id": 99})
mapfile = os.path.join(t.tmp, "map.json")
with open(mapfile, "w") as f:
    json.dump([{"id": True, "botmatic": {"name": "id"},
                "ext": {"name": "id_candidate", "transform": "int"}},
               {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
               {"botmatic": {"name": "d", "transform": {"date": {
                   "from": "sql", "to": "iso8601"}}},
                "ext": {"name": "d"}}], f)
setfile = os.path.join(t.tmp, "settings.json")
with open(setfile, "w") as f:
    json.dump({"required": ["site"], "properties": {
        "site": {"type": "string", "minLength": 3},
        "key": {"type": "string", "format": "password"},
        "port": {"type": "integer", "minimum": 1},
        "on": {"type": "boolean"}, "mode": {"enum": ["a", 2]}}}, f)
evfile = os.path.join(t.tmp, "events.json")
with open(evfile, "w") as f:
    json.dump({"events": {
        "order_created": {"schema": {"type": "object", "required": ["id"],
                                     "properties": {"id": {"minimum": 0}}},
                          "topic": "orders/create",
                          "contact": {"ext_id": "/customer/id"},
                          "campaign_event": "new_order"},
        "paid": {"verify": "shopify"}, "push": {"verify": "github"},
        "charge": {"verify": "stripe"}}}, f)
sealkey = os.path.join(t.tmp, "seal.key")
with open(sealkey, "wb") as f:
    f.write(os.urandom(32))
os.chmod(sealkey, 0o600)
vglog = os.path.join(t.tmp, "valgrind.%p.log")
supp = t.src_file("tests", "valgrind.supp")
argv = [VALGRIND, "--quiet", "--leak-check=full",
        "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
        "--child-silent-after-fork=no", "--log-file=" + vglog,
        "--suppressions=" + supp, t.build_file("botmatic-fcgi")]
srv = bmtest.Server(t, {"BOTMATIC_BASE_URL": bm.url,
                        "BM_EXT_BASE_URL": ext.url, "BM_MAPPINGS": mapfile,
                        "BM_SETTINGS": setfile, "BM_EVENTS": evfile,
                        "BM_MODULES": t.module("echo") + ":" +
                        t.module("testmod") + ":" +
                        t.module("github_link"), "BM_WORKERS": "1",
                        "BM_SECRET_KEY_FILE": sealkey,
                        "BM_PUBLIC_URL": "https://bot.example.test",
                        "BM_MOD_GITHUB_LINK_API_BASE": ext.url,
                        "BM_OAUTH_GITHUB_CLIENT_ID": "cid",
                        "BM_OAUTH_GITHUB_CLIENT_SECRET": "csecret",
                        "BM_OAUTH_GITHUB_AUTHORIZE_URL": ext.url + "/auth",
                        "BM_OAUTH_GITHUB_TOKEN_URL": ext.url + "/oauth/token",
                        "BM_OAUTH_GITHUB_SCOPES": "repo",
                        "BM_LOG_LEVEL": "info", "BM_STATUS_PATH": "/status",
                        "BM_SYNC_MODE": "queued"})
srv.start(argv=argv, timeout=120)
ngx = t.nginx(srv)

bodies = [
    ({"event": "install", "data": {"a": 1}}, 200),
    ({"action": "echo", "data": {"x": [1, 2.5, "é"]}}, 200),
    ({"action": "nope"}, 200),
    ({"foo": 1}, 403),
    ({"action": "null_reply"}, 500),
    ({"action": "save", "data": {"bid": "b1", "eid": "e1"}}, 200),
    ({"action": "get", "data": {"bid": "b1"}}, 200),
    ({"action": "state", "data": {"name": "n", "value": {"v": 1}}}, 200),
    ({"action": "map", "data": {"id_candidate": 3, "prenom": "A",
                                "d": "2018-02-09 12:44:26"}}, 200),
    ({"event": "contact_created", "data": {"id": 5, "firstname": "A"}}, 200),
    ({"event": "contact_updated", "data": {"id": 5, "firstname": "B"}}, 200),
    ({"event": "contact_deleted", "data": {"contact_id": 5}}, 200),
]
ok = True
for _ in range(3):
    for body, status in bodies:
        r = ngx.post(body, token=TOKEN, timeout=60)
        if r.status != status:
            ok = False
            t.diag("%r -> %r" % (body, r))
    for raw in (b"{", b"[1]", b"\xff"):
        r = ngx.post(raw, token=TOKEN, timeout=60)
        ok = ok and r.status == 400
    for q, status in (("?token=" + TOKEN, 200), ("?token=bad", 401),
                      ("?token=%zz", 400), ("/settings.js", 200)):
        path = "/settings" + (q if q[0] == "/" else q)
        r = ngx.request("GET", path, content_type=None, timeout=60)
        ok = ok and r.status == status
    FORM = "application/x-www-form-urlencoded"
    for body, ctype, want in (
            ("token=%s&site=abcd&key=k&port=80&on=true&mode=2" % TOKEN,
             FORM, {"success": True}),
            ("token=%s&site=x&port=zero&mode=b" % TOKEN, FORM,
             {"success": False, "errorFields": ["mode", "port", "site"]}),
            (json.dumps({"token": TOKEN, "site": "json", "key": ""}),
             "application/json", {"success": True})):
        r = ngx.request("POST", "/settings", body, content_type=ctype,
                        timeout=60)
        got = r.json() or {}
        got["errorFields"] = sorted(got.get("errorFields", []))
        want.setdefault("errorFields", [])
        if got != want:
            ok = False
            t.diag("settings %s -> %r" % (body, r))
r = ngx.post({"action": "echo"}, token="bad-token", timeout=60)
ok = ok and r.status == 401
# The status, both forms, rendered from the shared counters.
for path in ("/status", "/status?format=prometheus"):
    r = ngx.request("GET", path, timeout=60)
    ok = ok and r.status == 200 and b"requests_total" in r.body


def jobs_done():
    st = ngx.request("GET", "/status", timeout=60).json() or {}
    return st.get("jobs_total", {}).get("done", 0)


# The 9 contact events, delivered by the delivery process.
drained = bmtest.wait_until(lambda: jobs_done() >= 9, 120, interval=0.5)
ok = ok and drained
if not drained:
    t.diag("jobs done: %r" % jobs_done())
r = ngx.post({"action": "echo"}, token="t" * 600, timeout=60)
ok = ok and r.status == 401
# Signed deliveries from the external service: applied, replayed, stale.
p = subprocess.run([t.build_file("botmatic-keys"), "-d", srv.db, "export"],
                   env=dict(os.environ, BM_SECRET_KEY_FILE=sealkey),
                   stdout=subprocess.PIPE, timeout=120)
inst = [json.loads(l) for l in p.stdout.decode().splitlines()
        if json.loads(l).get("type") == "install"][0]
raw = json.dumps({"op": "updated", "contact": {"id_candidate": 7,
                                               "prenom": "C"}}).encode()
hdrs = [("Content-Type", "application/json"),
        ("Content-Length", str(len(raw)))]
path = "/ext/%s/contacts" % inst["install_id"]
sig = bmtest.webhook_headers(inst["secret"], raw)
for hs, status in ((sig, 200), (sig, 200), (bmtest.webhook_headers(
        inst["secret"], raw, ts=1), 401), ([], 401)):
    r = ngx.raw("POST", path, hdrs + hs, body=raw, timeout=60)
    if r.status != status:
        ok = False
        t.diag("delivery -> %r" % (r,))
# Integration events: each scheme signed, a replay, refusals; the jobs.
ended = jobs_done()
st = ngx.request("GET", "/status", timeout=60).json() or {}
ended += st.get("jobs_total", {}).get("dead", 0)
ev = "/ext/%s/events/" % inst["install_id"]
text = bmtest.whsec(inst["secret"]).encode()
raw = json.dumps({"id": 1, "customer": {"id": 7}}).encode()
now = int(__import__("time").time())
mac = hmac.new(text, raw, hashlib.sha256)
stripe = hmac.new(text, b"%d." % now + raw, hashlib.sha256).hexdigest()
sig = bmtest.webhook_headers(inst["secret"], raw)
for typ, hs, status in (
        ("order_created", sig, 200), ("order_created", sig, 200),
        ("order_created", [], 401), ("nope", sig, 404),
        ("paid", [("X-Shopify-Webhook-Id", "s1"), ("X-Shopify-Hmac-Sha256",
                                                    base64.b64encode(
                                                        mac.digest())
                                                    .decode())], 200),
        ("push", [("X-GitHub-Delivery", "g1"), ("X-Hub-Signature-256",
                                                "sha256=" + mac.hexdigest())],
         200),
        ("charge", [("Stripe-Signature", "t=%d,v1=%s" % (now, stripe))],
         400)):     # no "id" in the payload: Stripe's event id is required
    r = ngx.raw("POST", ev + typ, hdrs[:1] + [("Content-Length",
                                               str(len(raw)))] + hs,
                body=raw, timeout=60)
    if r.status != status:
        ok = False
        t.diag("event %s -> %r" % (typ, r))
for bad in (b'{"id": -1}', b'{"id": '):
    r = ngx.raw("POST", ev + "order_created", hdrs[:1] + [
        ("Content-Length", str(len(bad)))] +
        bmtest.webhook_headers(inst["secret"], bad), body=bad, timeout=60)
    ok = ok and r.status == 400


def jobs_ended():
    st = ngx.request("GET", "/status", timeout=60).json() or {}
    jt = st.get("jobs_total", {})
    return jt.get("done", 0) + jt.get("dead", 0)


# The module handler's job and the campaign event's (dead: no contact is
# linked to ext id 7 any more), run by the delivery process.
ok = ok and bmtest.wait_until(lambda: jobs_ended() >= ended + 2, 120, 0.5)
# An OAuth link: the start, a forged callback, the callback, the token
# used and refreshed by the example module.
r = ngx.post({"action": "github_link", "data": {"group_id": "g"}},
             token=TOKEN, timeout=60)
link = ((r.json() or {}).get("data") or {}).get("url", "")
r = ngx.request("GET", link.replace("https://bot.example.test", ""),
                content_type=None, timeout=60)
state = re.search(r"[?&]state=([0-9a-f]+)", r.header("Location", "") or "")
for q, status in (("code=c&state=" + "0" * 64, 400),
                  ("code=c&state=" + (state.group(1) if state else ""),
                   200)):
    r = ngx.request("GET", "/oauth/github/callback?" + q, content_type=None,
                    timeout=60)
    if r.status != status:
        ok = False
        t.diag("oauth callback %s -> %r" % (q, r))
r = ngx.post({"action": "github_whoami", "data": {"group_id": "g"}},
             token=TOKEN, timeout=60)
if ((r.json() or {}).get("data") or {}).get("login") != "vg":
    ok = False
    t.diag("github_whoami -> %r" % (r,))
t.ok(ok, "every request answered as expected under valgrind")

mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"master: reload done", 120, since=mark)
r = ngx.post({"action": "echo"}, token=TOKEN, timeout=60)
t.is_(r.status, 200, "a reload under valgrind")
t.is_(srv.stop(timeout=120), 0, "the master stops with 0")

reports, seen = [], 0
for name in os.listdir(t.tmp):
    if name.startswith("valgrind.") and name.endswith(".log"):
        seen += 1
        with open(os.path.join(t.tmp, name), errors="replace") as f:
            text = f.read()
        if re.search(r"(Invalid|uninitialised|definitely lost|"
                     r"Mismatched|overlap)", text):
            reports.append((name, text[:3000]))
# The master, the reload's trial child, the store probe and the responders.
t.ok(seen >= 4 and not reports,
     "no memory error and no definite leak in any of %d processes" % seen,
     *["%s:\n%s" % r for r in reports])
t.done()
