#!/usr/bin/env python3
"""Third-party services over OAuth 2 (SPEC §12), through a real nginx,
against a stand-in provider on loopback: a module's link -> the start
(302 checked by hand: client_id, the exact redirect_uri, scope, state,
PKCE S256) -> the callback (the stand-in checks grant_type, code,
redirect_uri, client auth and the code_verifier against the challenge)
-> the service stored -> its token used by the example module
(app/modules/github_link) -> a refresh.  A replayed link, a forged,
replayed or other-service state: 400 and nothing stored.  Two responders
refreshing at once against a provider that rotates refresh tokens and
refuses a used one: one refresh, both answered, the newest kept.
invalid_grant: the next use says a link is needed.  Answers in JSON and
form encoding; a provider down or answering garbage: a clear page,
nothing stored.  The store files hold no token in clear; botmatic-keys
prints none without --show-tokens; uninstall forgets the services; the
configuration is checked at start without echoing a client secret."""
import base64
import hashlib
import json
import os
import subprocess
import threading
import urllib.parse

import bmtest

t = bmtest.Test()
t.plan(49)

GOOD = "tok-oauth-good"
PUBLIC = "https://bot.example.test"
REDIRECT = PUBLIC + "/oauth/github/callback"
CLIENT_ID, CLIENT_SECRET = "cid-123", "CLIENT-SECRET-never-shown-77"
AT1, RT1 = "AT-first-4f1d9a-secret", "RT-first-88c0e2-secret"

key = os.path.join(t.tmp, "seal.key")
with open(key, "wb") as f:
    f.write(os.urandom(32))
os.chmod(key, 0o600)

secret_file = os.path.join(t.tmp, "github.secret")
with open(secret_file, "w") as f:
    f.write(CLIENT_SECRET + "\n")
os.chmod(secret_file, 0o600)

prov = t.standin()
lock = threading.Lock()
issued = {}         # code -> (code_challenge, group) from the authorize step
valid_rt = {}       # refresh token -> next number, used ones removed
current_at = set()  # access tokens /user accepts
n = {"refresh": 0}


def form(rec):
    return {k: v[0] for k, v in urllib.parse.parse_qs(
        rec.body.decode(), keep_blank_values=True).items()}


def token(rec):
    f = form(rec)
    if f.get("client_id") != CLIENT_ID or \
            f.get("client_secret") != CLIENT_SECRET:
        return 401, {"error": "invalid_client"}, 0
    if f.get("grant_type") == "authorization_code":
        code = f.get("code", "")
        if code == "garbage":
            return 200, ("text/html", "<html>oops</html>"), 0
        if code == "hang":      # longer than BM_HTTP_TIMEOUT
            return 200, {"access_token": "late"}, 5
        with lock:
            ch = issued.pop(code, None)
        if ch is None or f.get("redirect_uri") != REDIRECT:
            return 400, {"error": "invalid_grant",
                         "error_description": "bad code or redirect_uri"}, 0
        digest = base64.urlsafe_b64encode(hashlib.sha256(
            f.get("code_verifier", "").encode()).digest()).rstrip(b"=")
        if digest.decode() != ch[0]:
            return 400, {"error": "invalid_grant",
                         "error_description": "PKCE verifier mismatch"}, 0
        if ch[1] == "g-form":     # GitHub without Accept: form-encoded
            with lock:
                valid_rt["RT-form-1"] = 1
            return 200, ("application/x-www-form-urlencoded",
                         "access_token=AT-form-1&token_type=bearer&"
                         "expires_in=30&refresh_token=RT-form-1&scope=repo"), 0
        with lock:
            valid_rt[RT1] = 2
            current_at.add(AT1)
        return 200, {"access_token": AT1, "refresh_token": RT1,
                     "expires_in": 30, "token_type": "bearer",
                     "scope": "repo read:user"}, 0
    if f.get("grant_type") == "refresh_token":
        rt = f.get("refresh_token")
        with lock:
            nxt = valid_rt.pop(rt, None)    # used once, then refused
            n["refresh"] += 1
        if nxt is None or rt == "RT-form-1":
            return 400, {"error": "invalid_grant"}, 0
        at, newrt = "AT-%d-rot" % nxt, "RT-%d-rot" % nxt
        with lock:
            valid_rt[newrt] = nxt + 1
            current_at.add(at)
        # Slow, so that a second responder asks while this one waits.
        return 200, {"access_token": at, "refresh_token": newrt,
                     "expires_in": 3600}, 1.5
    return 400, {"error": "unsupported_grant_type"}, 0


def user(rec):
    auth = rec.headers.get("Authorization", "")
    with lock:
        ok = auth.startswith("Bearer ") and auth[7:] in current_at
    return (200, {"login": "octo"}, 0) if ok else (401, {}, 0)


prov.route("POST", r"/token", token)
prov.route("GET", r"/user", user)
down_port = bmtest.free_port()

bm = t.botmatic({GOOD})
env = {"BOTMATIC_BASE_URL": bm.url, "BM_SECRET_KEY_FILE": key,
       "BM_PUBLIC_URL": PUBLIC, "BM_HTTP_TIMEOUT": "3000",
       "BM_MODULES": t.module("github_link"),
       "BM_MOD_GITHUB_LINK_API_BASE": prov.url,
       "BM_OAUTH_GITHUB_CLIENT_ID": CLIENT_ID,
       "BM_OAUTH_GITHUB_CLIENT_SECRET_FILE": secret_file,
       "BM_OAUTH_GITHUB_AUTHORIZE_URL": prov.url + "/login/oauth/authorize",
       "BM_OAUTH_GITHUB_TOKEN_URL": prov.url + "/token",
       "BM_OAUTH_GITHUB_SCOPES": "repo read:user",
       "BM_OAUTH_OTHER_CLIENT_ID": "other-id",
       "BM_OAUTH_OTHER_CLIENT_SECRET": "other-secret",
       "BM_OAUTH_OTHER_AUTHORIZE_URL": prov.url + "/other/authorize",
       "BM_OAUTH_OTHER_TOKEN_URL":
       "http://127.0.0.1:%d/token" % down_port}
srv = t.server(env)
ngx = t.nginx(srv)
keys_bin = t.build_file("botmatic-keys")


def keys(*args):
    return subprocess.run([keys_bin, "-d", srv.db] + list(args),
                          env=dict(os.environ, BM_SECRET_KEY_FILE=key,
                                   BM_PUBLIC_URL=PUBLIC),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)


def action(name, data):
    r = ngx.post({"action": name, "data": data}, token=GOOD)
    j = r.json() or {}
    return r, j.get("data", j)


def get(url):
    p = urllib.parse.urlsplit(url)
    return ngx.request("GET", p.path + ("?" + p.query if p.query else ""),
                       content_type=None)


def services():
    return [json.loads(line) for line in
            keys("services", install_id).stdout.decode().splitlines()]


def start(group):
    """A link for group from the module, opened: (response, query)."""
    r, d = action("github_link", {"group_id": group})
    url = d.get("url", "")
    resp = get(url)
    loc = resp.header("Location", "") or ""
    return url, resp, {k: v[0] for k, v in urllib.parse.parse_qs(
        urllib.parse.urlsplit(loc).query).items()}


r = ngx.post({"event": "install", "data": {}}, token=GOOD)
t.is_(r.status, 200, "install")
install_id = json.loads(keys("installs").stdout.decode().splitlines()[0])[
    "install_id"]

# --- the link and the start --------------------------------------------------
url, resp, q = start("g1")
t.ok(url.startswith(PUBLIC + "/oauth/github/start?l=") and
     len(url.split("l=")[1]) >= 32,
     "service_link: a one-time URL under BM_PUBLIC_URL", url)
t.is_(resp.status, 302, "opening it answers 302")
loc = resp.header("Location", "")
t.ok(loc.startswith(prov.url + "/login/oauth/authorize?"),
     "to the provider's authorize URL", loc)
t.ok(q.get("response_type") == "code" and q.get("client_id") == CLIENT_ID
     and q.get("redirect_uri") == REDIRECT and
     q.get("scope") == "repo read:user",
     "response_type, client_id, the exact redirect_uri, the scopes", q)
t.ok(q.get("code_challenge_method") == "S256" and
     len(q.get("code_challenge", "")) == 43 and
     len(q.get("state", "")) >= 32,
     "PKCE S256 and a random state", q)
t.ok(CLIENT_SECRET not in loc and resp.header("Cache-Control") == "no-store"
     and resp.header("Referrer-Policy") == "no-referrer",
     "no client secret in it; no-store, no-referrer")
t.is_(get(url).status, 400, "the link is single use: opened again, 400")

# --- forged, other-service, then the real callback ---------------------------
cb = "/oauth/github/callback?"
r = ngx.request("GET", cb + "code=x&state=" + "a" * 64, content_type=None)
t.ok(r.status == 400 and services() == [], "a forged state: 400, nothing "
     "stored", r)
r = ngx.request("GET", "/oauth/other/callback?code=x&state=" + q["state"],
                content_type=None)
t.is_(r.status, 400, "github's state at another service's callback: 400")
issued["c-burnt"] = (q["code_challenge"], "g1")
r = ngx.request("GET", cb + "code=c-burnt&state=" + q["state"],
                content_type=None)
t.ok(r.status == 400 and services() == [] and "c-burnt" in issued,
     "that state, tried elsewhere, is spent: 400, no exchange, nothing "
     "stored", r)

url, resp, q = start("g1")
issued["code-1"] = (q["code_challenge"], "g1")
r = ngx.request("GET", cb + "code=code-1&state=" + q["state"],
                content_type=None)
body = r.body.decode()
t.ok(r.status == 200 and "connected" in body.lower(),
     "the callback exchanges the code: 200, connected", r)
t.ok(r.header("Content-Security-Policy", "").startswith("default-src "
     "'none'") and r.header("Cache-Control") == "no-store" and
     r.header("Referrer-Policy") == "no-referrer" and "<script" not in body,
     "the page: CSP default-src 'none', no-store, no-referrer, no script")
tok_req = [x for x in prov.received("POST", "/token")
           if form(x).get("code") == "code-1"]
t.ok(len(tok_req) == 1 and form(tok_req[0]).get("grant_type") ==
     "authorization_code" and form(tok_req[0]).get("redirect_uri") ==
     REDIRECT, "the token request: a form POST with the code, the "
     "redirect_uri (the verifier matched the challenge)")
sv = services()
t.ok(len(sv) == 1 and sv[0]["service"] == "github" and
     sv[0]["group"] == "g1" and sv[0]["user"] == "" and
     not sv[0]["needs_link"], "one service stored for the group", sv)
out = keys("services", install_id).stdout.decode()
t.ok(AT1 not in out and RT1 not in out and "access_token" not in out,
     "botmatic-keys services prints no token", out)
out = keys("services", install_id, "--show-tokens").stdout.decode()
t.ok(AT1 in out and RT1 in out, "... unless --show-tokens says so")
r = ngx.request("GET", cb + "code=code-1&state=" + q["state"],
                content_type=None)
t.ok(r.status == 400 and len(services()) == 1, "the callback replayed: 400,"
     " nothing changes", r)

# Linking again updates the one record (no duplicate).
url, resp, q = start("g1")
issued["code-2"] = (q["code_challenge"], "g1")
r = ngx.request("GET", cb + "code=code-2&state=" + q["state"],
                content_type=None)
t.ok(r.status == 200 and len(services()) == 1, "linked again: still one "
     "record", services())

# --- tokens at rest ------------------------------------------------------------
raw = b""
for root, _, files in os.walk(srv.db):
    for fn in files:
        # Regular files only: control.sock is a socket.
        if not os.path.isfile(os.path.join(root, fn)):
            continue
        with open(os.path.join(root, fn), "rb") as f:
            raw += f.read()
t.ok(AT1.encode() not in raw and RT1.encode() not in raw and
     CLIENT_SECRET.encode() not in raw,
     "no file of BM_DB_HOME holds a token or the client secret in clear")

# --- two responders refresh at once ----------------------------------------
n["refresh"] = 0
res = [None, None]
mark = srv.mark()


def whoami(i):
    res[i] = action("github_whoami", {"group_id": "g1"})


th = [threading.Thread(target=whoami, args=(i,)) for i in (0, 1)]
for x in th:
    x.start()
for x in th:
    x.join(60)
t.ok(all(x is not None and x[0].status == 200 and
         x[1].get("login") == "octo" for x in res),
     "two concurrent uses of an expiring token both answered", res)
t.ok(n["refresh"] == 1 and srv.grep(r"another responder is refreshing",
                                    since=mark),
     "one refresh for the two: the other responder waited on the lease",
     n["refresh"])
out = keys("services", install_id, "--show-tokens").stdout.decode()
t.ok("RT-2-rot" in out and RT1 not in out, "the rotated refresh token is "
     "the one kept", out)
r, d = action("github_whoami", {"group_id": "g1"})
t.ok(r.status == 200 and d.get("login") == "octo" and n["refresh"] == 1,
     "the refreshed token is used as it is", d)

# --- form-encoded answers and invalid_grant ---------------------------------
url, resp, q = start("g-form")
issued["code-f"] = (q["code_challenge"], "g-form")
r = ngx.request("GET", cb + "code=code-f&state=" + q["state"],
                content_type=None)
t.ok(r.status == 200 and any(s["group"] == "g-form" for s in services()),
     "a form-encoded token answer is understood", r)
r, d = action("github_whoami", {"group_id": "g-form"})
t.ok(r.status == 200 and d.get("link_needed") is True,
     "invalid_grant on refresh: the module is told a link is needed", d)
before = n["refresh"]
r, d = action("github_whoami", {"group_id": "g-form"})
t.ok(d.get("link_needed") is True and n["refresh"] == before and
     any(s["group"] == "g-form" and s["needs_link"] for s in services()),
     "... and the next use too, without asking the provider", d)
r, d = action("github_whoami", {"group_id": "nobody"})
t.is_(d.get("link_needed"), True, "a group never linked: link needed")

# --- the provider refuses, is down, answers garbage -------------------------
url, resp, q = start("g-err")
r = ngx.request("GET", cb + "error=access_denied&error_description=" +
                urllib.parse.quote("<script>alert(1)</script>") +
                "&state=" + q["state"], content_type=None)
t.ok(r.status == 400 and b"<script>" not in r.body and
     b"&lt;script&gt;" in r.body and b"access_denied" in r.body,
     "?error= from the provider: shown escaped, 400", r)
t.ok(not any(s["group"] == "g-err" for s in services()), "nothing stored")
url, resp, q = start("g-garbage")
issued["garbage"] = (q["code_challenge"], "g-garbage")
r = ngx.request("GET", cb + "code=garbage&state=" + q["state"],
                content_type=None)
t.ok(r.status == 502 and b"neither JSON nor form" in r.body and
     CLIENT_SECRET.encode() not in r.body and
     not any(s["group"] == "g-garbage" for s in services()),
     "a garbage answer: 502 saying so, nothing stored", r)
url, resp, q = start("g-hang")
r = ngx.request("GET", cb + "code=hang&state=" + q["state"],
                content_type=None)
t.ok(r.status == 502 and b"could not be reached" in r.body and
     not any(s["group"] == "g-hang" for s in services()),
     "the provider hanging: 502 when the timeout ends it, nothing stored", r)
lk = keys("service-link", install_id, "other", "g-down")
url = lk.stdout.decode().strip()
t.ok(lk.returncode == 0 and url.startswith(PUBLIC + "/oauth/other/start?l="),
     "botmatic-keys service-link prints a link", lk)
resp = get(url)
q = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(
    resp.header("Location", "")).query).items()}
r = ngx.request("GET", "/oauth/other/callback?code=x&state=" +
                q.get("state", ""), content_type=None)
t.ok(r.status == 502 and b"could not be reached" in r.body and
     not any(s["service"] == "other" for s in services()),
     "the provider down: 502 saying so, nothing stored", r)
t.ok(CLIENT_SECRET not in srv.log() and AT1 not in srv.log() and
     "other-secret" not in srv.log(), "the log holds no secret nor token")

# --- rotate-key, with the server stopped ------------------------------------
srv.stop()
key2 = os.path.join(t.tmp, "seal-2.key")
with open(key2, "wb") as f:
    f.write(os.urandom(32))
os.chmod(key2, 0o600)
p = keys("services", "rotate-key", key2)
t.ok(p.returncode == 0 and int(p.stdout.decode().strip() or 0) >= 3,
     "botmatic-keys services rotate-key re-encrypts (installation token, "
     "services)", p)
key = key2
srv.env["BM_SECRET_KEY_FILE"] = key2
srv.start()
out = keys("services", install_id, "--show-tokens").stdout.decode()
r, d = action("github_whoami", {"group_id": "g1"})
t.ok("RT-2-rot" in out and r.status == 200 and d.get("login") == "octo",
     "the server on the new key finds the installation and its services", d)

# --- revoke, uninstall -------------------------------------------------------
p = keys("services", "revoke", install_id, "github", "g-form")
t.ok(p.returncode == 0 and not any(s["group"] == "g-form"
                                   for s in services()),
     "botmatic-keys services revoke forgets one", p)
t.ok(len(services()) >= 1, "others stay")
r = ngx.post({"event": "uninstall", "data": {}}, token=GOOD)
t.is_(r.status, 200, "uninstall")
t.is_(services(), [], "uninstall forgets every service of the installation")

# --- configuration at start -------------------------------------------------
def check(extra):
    e = dict(srv.env)
    e.update(extra)
    for k in [k for k, v in extra.items() if v is None]:
        e.pop(k, None)
    p = subprocess.run([t.build_file("botmatic-fcgi"), "-t"], env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace")


st, out = check({"BM_PUBLIC_URL": None})
t.ok(st != 0 and "BM_PUBLIC_URL" in out, "no BM_PUBLIC_URL: refused", out)
st, out = check({"BM_OAUTH_GITHUB_TOKEN_URL": "http://example.com/token"})
t.ok(st != 0 and "BM_OAUTH_GITHUB_TOKEN_URL" in out and
     CLIENT_SECRET not in out, "a plain-http token URL off loopback: "
     "refused, no secret echoed", out)
st, out = check({"BM_OAUTH_GITHUB_CLIENT_SECRET_FILE": None})
t.ok(st != 0 and "CLIENT_SECRET" in out, "no client secret: refused", out)
st, out = check({"BM_OAUTH_GITHUB_CLIENT_SECRET": CLIENT_SECRET})
t.ok(st != 0 and "give one" in out and CLIENT_SECRET not in out,
     "a secret and a secret file: refused, the secret not echoed", out)
st, out = check({"BM_OAUTH_GITHUB_CLIENT_SCOPE": "x"})
t.ok(st != 0 and "BM_OAUTH_GITHUB_CLIENT_SCOPE" in out,
     "an unknown BM_OAUTH_ variable (a typo): refused", out)
st, out = check({"BM_SECRET_KEY_FILE": None})
t.ok(st != 0 and "BM_SECRET_KEY_FILE" in out, "a service without "
     "BM_SECRET_KEY_FILE: refused", out)

# The key file is read at start: others may read it, or it is short.
for what, data, mode in (("readable by others", os.urandom(32), 0o644),
                         ("short", os.urandom(16), 0o600)):
    bad = os.path.join(t.tmp, "bad-%d.key" % mode)
    with open(bad, "wb") as f:
        f.write(data)
    os.chmod(bad, mode)
    b = t.server(dict(env, BM_SECRET_KEY_FILE=bad), name="bad%o" % mode,
                 start=False)
    try:
        b.start(timeout=20)
        started = True
    except RuntimeError:
        started = False
    b.stop()
    t.ok(not started and bad in b.log(), "a key file %s: the server does "
         "not start, naming it" % what, b.log()[-400:])
t.done()
