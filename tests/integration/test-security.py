#!/usr/bin/env python3
"""Nobody in (issue 12): the server read as an attacker or a careless
operator would.

- A refused secret variable (BM_EXT_AUTH_HEADER, BM_EXT_JWT_BODY) stops the
  start with a line naming the variable and the rule, never its value.
- The module loader refuses a file or a directory above it that someone
  else owns or may write, naming the module and the reason.
- A bearer token longer than the store keys (513, 600, 4095 bytes) is a
  plain 401, without a call to Botmatic.
- Deliveries to ext/<install id>/contacts are Standard Webhooks: unsigned,
  wrongly signed, stale, future deliveries are refused and change nothing;
  a replay is answered as a duplicate and applied once; a rotated secret
  and the new one are both valid during the grace (BM_SECRET_GRACE), then
  only the new one.
- nginx/botmatic-limits.conf answers 429 beyond its rate.
"""
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test()
TOKEN = "tok-sec-4b1f0e"

# --- secret variables are never echoed ---------------------------------------
n_servers = [0]


def start_fails(env, name):
    n_servers[0] += 1
    srv = t.server(dict({"BM_WORKERS": 1}, **env),
                   name="%s%d" % (name, n_servers[0]), start=False)
    st = srv.run_to_exit(timeout=20)
    return st, srv.log()


KEY = "sk_live_9f8e7d6c5b4a39281706"
st, log = start_fails({"BM_EXT_AUTH_HEADER": "Bearer " + KEY}, "conf")
t.ok(st not in (None, 0) and "BM_EXT_AUTH_HEADER" in log and
     "secret" in log and KEY not in log and KEY[:10] not in log,
     "a malformed BM_EXT_AUTH_HEADER stops the start, named, value not shown",
     st, log)
PASSWORD = "correct-horse-battery-staple"
st, log = start_fails({"BM_EXT_JWT_BODY": '{"user":"u","password":"%s"' %
                       PASSWORD}, "conf")
t.ok(st not in (None, 0) and "BM_EXT_JWT_BODY" in log and
     PASSWORD not in log and PASSWORD[:10] not in log,
     "a malformed BM_EXT_JWT_BODY stops the start, the password not shown",
     st, log)
st, log = start_fails({"BM_SECRET_GRACE": "ab-very-long-grace"}, "conf")
t.ok(st not in (None, 0) and "BM_SECRET_GRACE" in log and
     "ab-very-long-grace" not in log,
     "a malformed *_SECRET* variable: named, value not shown", st, log)

# --- the module loader -------------------------------------------------------
echo = t.module("echo")


def module_in(dirname, dir_mode, file_mode=0o644, dir_owner=None,
              file_owner=None):
    d = os.path.join(t.tmp, dirname)
    os.mkdir(d)
    p = os.path.join(d, "echo.so")
    shutil.copyfile(echo, p)
    os.chmod(p, file_mode)
    os.chmod(d, dir_mode)
    if dir_owner is not None:
        os.chown(d, dir_owner, -1)
    if file_owner is not None:
        os.chown(p, file_owner, -1)
    return p


def refused(path, reason_rx, what):
    n_servers[0] += 1
    srv = t.server({"BM_MODULES": path, "BM_AUTH": "any", "BM_WORKERS": 1},
                   name="mod%d" % n_servers[0], start=False)
    st = srv.run_to_exit(timeout=20)
    lines = srv.grep(r"ERROR .*module: %s: " % re.escape(path))
    t.ok(st not in (None, 0) and len(lines) == 1 and
         re.search(reason_rx, lines[0]) and
         not srv.grep(r"master: responder \d+ started"),
         "loader: %s is refused at start, module and reason named" % what,
         st, reason_rx, srv.log())


good = module_in("good", 0o755)
n_servers[0] += 1
srv = t.server({"BM_MODULES": good, "BM_AUTH": "any", "BM_WORKERS": 1},
               name="mod%d" % n_servers[0])
t.ok(srv.grep(r"module: %s: loaded echo" % re.escape(good)),
     "loader: a root-owned 0644 module in a 0755 directory loads")
srv.stop()
refused(module_in("ww", 0o777), r"directory \S+/ww is writable by group or "
        r"others \(mode 0777\)", "a module in a world-writable directory")
refused(module_in("gw", 0o775), r"directory \S+/gw is writable by group",
        "a module in a group-writable directory")
refused(module_in("fgw", 0o755, 0o664), r"refused: writable by group",
        "a group-writable module file")
if bmtest.IS_ROOT:
    nobody = pwd.getpwnam("nobody").pw_uid
    refused(module_in("fown", 0o755, file_owner=nobody),
            r"refused: owned by uid %d" % nobody,
            "a module file owned by another user")
    refused(module_in("down", 0o755, dir_owner=nobody),
            r"directory \S+/down is owned by uid %d" % nobody,
            "a module in a directory owned by another user")
else:
    t.skip("chown needs root", 2)
# A symbolic link is followed: the directories checked are the real ones.
link = os.path.join(t.tmp, "good", "link.so")
os.symlink(module_in("ww2", 0o777), link)
refused(link, r"directory \S+/ww2 is writable", "a link to a module in a "
        "world-writable directory")

# --- contact sync for the rest -----------------------------------------------
MAPPINGS = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "ext_id", "transform": "int"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
]
ext_si = t.standin()
ext_si.route("*", r"/contacts.*", status=200, body={"ext_id": 1})
bm_fail = [0]
bm_fail_status = [500]


def botmatic(rec):
    if rec.path == "/api/integrationtokens/validate":
        return 200, {"success": rec.form().get("token") == [TOKEN]}, 0
    if rec.path == "/api/contacts" and rec.method == "POST":
        if bm_fail[0] > 0:
            bm_fail[0] -= 1
            return bm_fail_status[0], {"error": "boom"}, 0
        return 201, {"id": 7000 + len(bm_si.received("POST",
                                                     "/api/contacts"))}, 0
    if rec.path == "/api/properties":
        return 201, {"success": True}, 0
    return 200, {"success": True}, 0


bm_si = t.standin()
bm_si.route("*", r"/api/.*", botmatic)
mapfile = os.path.join(t.tmp, "mappings.json")
with open(mapfile, "w") as f:
    json.dump(MAPPINGS, f)
env = {"BOTMATIC_BASE_URL": bm_si.url, "BM_EXT_BASE_URL": ext_si.url,
       "BM_MAPPINGS": mapfile, "BM_AUTH": "validate",
       "BM_HTTP_TIMEOUT": "2000"}
srv = t.server(env)
ngx = t.nginx(srv)
keys_bin = t.build_file("botmatic-keys")


def keys(*args):
    return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


# --- token sizes -------------------------------------------------------------
for n in (513, 600, 4095):
    bm_si.clear()
    r = ngx.post({"event": "contact_created", "data": {"id": 1}},
                 token="x" * n)
    r2 = ngx.post({"event": "install", "data": {}}, token="y" * n)
    t.ok(r.status == 401 and r2.status == 401 and not bm_si.requests,
         "a %d-byte bearer token is a 401 (event and install), Botmatic not "
         "asked" % n, r, r2, bm_si.requests)
r = ngx.post({"event": "contact_created", "data": {"id": 1}},
             token="z" * 512)
t.ok(r.status == 401 and len(bm_si.received(
    "POST", "/api/integrationtokens/validate")) == 1,
     "a 512-byte unknown token is validated with Botmatic, then a 401", r)

# --- Standard Webhooks deliveries --------------------------------------------
r = ngx.post({"event": "install", "data": {}}, token=TOKEN)
t.ok(r.status == 200 and r.json()["success"] is True, "install", r)
inst = [json.loads(l) for l in keys("export").stdout.decode().splitlines()
        if json.loads(l).get("type") == "install"][0]


def files_holding(d, needle):
    found = []
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                if needle in f.read():
                    found.append(name)
    return found


t.ok(inst["token"] == TOKEN and files_holding(srv.db, TOKEN.encode()) == []
     and keys("get-ext", TOKEN, "nothing").returncode == 1,
     "after an install through the server, no file of BM_DB_HOME holds the "
     "token's bytes (and botmatic-keys still takes the token)",
     files_holding(srv.db, TOKEN.encode()))
iid = inst["install_id"]
p = keys("secret", "show", iid)
secret = p.stdout.decode().strip()
t.ok(p.returncode == 0 and re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret),
     "botmatic-keys secret show prints whsec_<base64>", p)
path = "/ext/%s/contacts" % iid
n_made = [0]


def deliver(body, hdrs):
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return ngx.raw("POST", path, [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(raw)))] +
                   list(hdrs), body=raw)


def contact(i):
    n_made[0] += 1
    return json.dumps({"op": "created", "contact": {
        "ext_id": i, "prenom": "P%d" % i}}).encode()


def state():
    pairs = keys("list", TOKEN).stdout
    return pairs, len(bm_si.received("POST", "/api/contacts"))


def refused_delivery(raw, hdrs, what):
    before = state()
    r = deliver(raw, hdrs)
    t.ok(r.status == 401 and state() == before,
         "delivery %s: 401, nothing changed" % what, r, state(), before)


raw = contact(1)
now = int(time.time())
refused_delivery(raw, [], "unsigned")
refused_delivery(raw, bmtest.webhook_headers(secret, raw)[:2], "without "
                 "webhook-signature")
refused_delivery(raw, bmtest.webhook_headers("whsec_" + "A" * 43 + "=", raw),
                 "signed with another secret")
refused_delivery(raw, bmtest.webhook_headers(secret, raw, ts=now - 400),
                 "stale (400 s old)")
refused_delivery(raw, bmtest.webhook_headers(secret, raw, ts=now + 400),
                 "from the future (400 s ahead)")
h = bmtest.webhook_headers(secret, raw)
refused_delivery(raw + b" ", h, "whose body was changed")
tampered = [(k, v if k != "webhook-id" else v + "x") for k, v in h]
refused_delivery(raw, tampered, "whose id was changed")

before = state()
r = deliver(raw, h)
after = state()
t.ok(r.status == 200 and r.json()["success"] is True and
     after[1] == before[1] + 1 and after[0] != before[0],
     "a signed delivery is applied", r)
r = deliver(raw, h)
t.ok(r.status == 200 and r.json() == {"success": True, "duplicate": True} and
     state() == after, "the same delivery replayed: 200 duplicate, applied "
     "once", r)
h2 = bmtest.webhook_headers(secret, raw, msg_id=h[0][1],
                            ts=int(time.time()) - 1)
r = deliver(raw, h2)
t.ok(r.status == 200 and r.json().get("duplicate") is True and
     state() == after, "the same id re-signed with another timestamp: "
     "still a duplicate", r)

# A delivery that could not be applied is not remembered: its retry is.
# (A refusal for good, 4xx: a transient failure is queued, below.)
bm_fail[0] = 1
bm_fail_status[0] = 422
raw = contact(2)
h = bmtest.webhook_headers(secret, raw)
r1 = deliver(raw, h)
r2 = deliver(raw, h)
t.ok(r1.status == 200 and r1.json()["success"] is False and
     r2.status == 200 and r2.json()["success"] is True and
     "duplicate" not in r2.json(),
     "a delivery that failed is applied when retried with its id", r1, r2)
# One Botmatic could not take now (500) is queued (SPEC §9): accepted, so
# its retry is a duplicate, and the job applies it once.
bm_fail[0] = 1
bm_fail_status[0] = 500
raw = contact(8)
h = bmtest.webhook_headers(secret, raw)
before = state()
r1 = deliver(raw, h)
r2 = deliver(raw, h)
ok = bmtest.wait_until(lambda: state()[1] == before[1] + 2 and
                       keys("outbox").stdout == b"", 60)
t.ok(r1.status == 200 and r1.json() == {"success": True, "queued": True}
     and r2.status == 200 and r2.json() == {"success": True,
                                            "duplicate": True} and ok,
     "a delivery queued is accepted: its retry is a duplicate, the job "
     "applies it once", r1, r2, state(), before)

# --- rotation ----------------------------------------------------------------
p = keys("secret", "rotate", iid)
new = p.stdout.decode().strip()
t.ok(p.returncode == 0 and new.startswith("whsec_") and new != secret and
     keys("secret", "show", iid).stdout.decode().strip() == new,
     "botmatic-keys secret rotate prints a new secret, now the one shown", p)
raw = contact(3)
r_old = deliver(raw, bmtest.webhook_headers(secret, raw))
raw = contact(4)
r_new = deliver(raw, bmtest.webhook_headers(new, raw))
raw = contact(5)
r_both = deliver(raw, bmtest.webhook_headers("whsec_" + "B" * 43 + "=", raw,
                                             extra_secrets=(new,)))
t.ok(r_old.status == 200 and r_new.status == 200 and r_both.status == 200,
     "during the grace, the old and the new secret are both valid (and a "
     "header naming two signatures)", r_old, r_new, r_both)

# The grace over: a server with BM_SECRET_GRACE=0 on the same store.
db = srv.db
srv.stop()
srv = t.server(dict(env, BM_SECRET_GRACE="0", BM_DB_HOME=db),
               name="nograce")
srv.db = db
ngx = t.nginx(srv, name="nginx2")
raw = contact(6)
refused_delivery(raw, bmtest.webhook_headers(secret, raw),
                 "signed with the rotated secret after the grace")
raw = contact(7)
r = deliver(raw, bmtest.webhook_headers(new, raw))
t.ok(r.status == 200 and r.json()["success"] is True,
     "after the grace, the new secret is valid", r)

# --- nginx's sample limit for senders that are not Botmatic ------------------
lim = t.nginx(srv, name="nginx-limits", limit_rate="1r/m")
bm_si.clear()
r1 = lim.post({"event": "install", "data": {}}, token="bogus-1")
r2 = lim.post({"event": "install", "data": {}}, token="bogus-2")
t.ok(r1.status == 401 and r2.status == 429 and
     r2.json() == {"success": False, "error": "too many requests"} and
     len(bm_si.received("POST", "/api/integrationtokens/validate")) == 1,
     "nginx/botmatic-limits.conf: beyond the rate, an install is answered "
     "429 (JSON) without reaching the server", r1, r2)

# --- BM_SECRET_KEY_FILE, from BM_ENV_FILE: the tool's commands use it -----
keyfile = os.path.join(t.tmp, "seal.key")
with open(keyfile, "w") as f:
    f.write("ab" * 32 + "\n")
os.chmod(keyfile, 0o600)
envfile = os.path.join(t.tmp, "keyed.env")
with open(envfile, "w") as f:
    f.write("BM_SECRET_KEY_FILE=%s\n" % keyfile)
ks = t.server(dict(env, BM_ENV_FILE=envfile), name="keyed")
kngx = t.nginx(ks, name="nginx-keyed")
r = kngx.post({"event": "install", "data": {}}, token=TOKEN)
p = subprocess.run([keys_bin, "-d", ks.db, "installs", "--show-tokens"],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   env={k: v for k, v in os.environ.items()
                        if not k.startswith("BM_")}, timeout=60)
t.ok(r.status == 200 and p.returncode == 0 and
     TOKEN.encode() in p.stdout and
     files_holding(ks.db, TOKEN.encode()) == [] and
     not os.path.exists(os.path.join(ks.db, "token-seal.key")),
     "with BM_SECRET_KEY_FILE (set in BM_ENV_FILE) the server seals with "
     "it, and botmatic-keys, handed to the running server, opens the token",
     r, p)
ks.stop()

log = open(os.path.join(t.tmp, "server.log"), "rb").read() + \
    open(os.path.join(t.tmp, "nograce.log"), "rb").read()
t.ok(TOKEN.encode() not in log and secret[6:].encode() not in log and
     new[6:].encode() not in log and inst["secret"].encode() not in log and
     len(log) > 0,
     "no token or secret in the logs")
t.done()
