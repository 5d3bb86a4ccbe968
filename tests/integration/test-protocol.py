#!/usr/bin/env python3
"""The webhook protocol (SPEC section 2 and 3) through a real nginx running
the shipped nginx/botmatic-fastcgi.conf, with a stand-in Botmatic that
validates tokens.

Phase 1: BM_AUTH=module:fixed (testmod's auth function), BM_ENDPOINT "/",
the shipped 1 MiB nginx body limit.  Every row of the response table,
dispatch, the error statuses, the Botmatic validation call on install, and
that no token reaches the log.
Phase 2: BM_ENDPOINT=/hook, BM_MAX_BODY=1000 behind an nginx whose limit
is raised: the server's own 413.
Phase 3: the keystore policies, BM_AUTH=installed (the default) and
validate: install records the token, uninstall forgets it, validate asks
Botmatic once per token."""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test()

GOOD = "tok-Good-7f3a9c21"      # Botmatic validates it; installed below
OTHER = "tok-Other-51d2e8b0"    # Botmatic validates it; never installed
BAD = "tok-Refused-90ab33cd"    # Botmatic refuses it
DOWN = "tok-Down-44c1f0e2"      # sent while Botmatic is down
FIX1 = "fix-Token-a1b2c3d4"     # phase 2: accepted by testmod's "fixed"
FIX2 = "fix-Token-e5f6a7b8"
TOKENS = (GOOD, OTHER, BAD, DOWN, FIX1, FIX2)

HTML = "text/html; charset=utf-8"   # what Express sent with a string body
VALIDATE = "/api/integrationtokens/validate"


def expect_json(r, status, body, name):
    """status, a JSON Content-Type, and a body equal to body (key order
    aside)."""
    t.ok(r.status == status and r.is_json_type and r.json() == body, name,
         "expected: %d application/json %s" % (status, json.dumps(body)),
         "     got: %r" % (r,))


def expect_text(r, status, text, name):
    """status, Express's text/html Content-Type, and exactly these bytes."""
    t.ok(r.status == status and r.ctype == HTML and r.body == text, name,
         "expected: %d %s %r" % (status, HTML, text), "     got: %r" % (r,))


def expect_error(r, status, name):
    """status and a JSON error: {"success":false,"error":"<reason>",...}."""
    j = r.json()
    t.ok(r.status == status and r.is_json_type and isinstance(j, dict) and
         j.get("success") is False and isinstance(j.get("error"), str) and
         j["error"] != "", name,
         "expected: %d application/json {\"success\":false,\"error\":...}"
         % status, "     got: %r" % (r,))


def no_handler(kind, name):
    return {"success": False, "type": "data",
            "data": {"error": "No %s \"%s\" defined" % (kind, name)}}


def whoami(r, token_length):
    """What testmod's whoami answers with testmod's auth function; it also
    reports the request id it was given, which must be the X-Request-Id
    the server sent."""
    return {"data": {"client": {"name": "fixture"},
                     "token_length": token_length, "name": "whoami",
                     "request_id": r.header("X-Request-Id")},
            "type": "data", "success": True}


def padded(n, action="echo"):
    """A compact webhook body of exactly n bytes."""
    base = json.dumps({"action": action, "data": {"pad": ""}},
                      separators=(",", ":")).encode()
    return base.replace(b'"pad":""', b'"pad":"' + b"x" * (n - len(base)) +
                        b'"')


# ------------------------------------------------------------------ phase 1
botmatic = t.botmatic({GOOD, OTHER, DOWN})
srv = t.server({
    "BM_MODULES": t.module("echo") + ":" + t.module("testmod"),
    "BM_AUTH": "module:fixed",
    "BM_MOD_TESTMOD_TOKENS": GOOD,
    "BOTMATIC_BASE_URL": botmatic.url,
    "BM_HTTP_CONNECT_TIMEOUT": 2000,
    "BM_HTTP_TIMEOUT": 5000,
    "BM_WORKERS": 2,
})
ngx = t.nginx(srv)
t.diag("nginx on %s, server log %s" % (ngx.url, srv.log_path))

# --- install / uninstall: validated with Botmatic ---------------------------
install = {"event": "install", "data": {"bot_id": 12}}
r = ngx.post(install, token=GOOD)
expect_json(r, 200, {"data": install, "type": "data", "success": True},
            "install with a token Botmatic validates: 200, the request "
            "as data")
calls = botmatic.received("POST", VALIDATE)
t.is_(len(calls), 1, "install: one validation call to Botmatic")
if calls:
    c = calls[0]
    t.is_(c.headers.get("Content-Type", "").split(";")[0].strip(),
          "application/x-www-form-urlencoded",
          "validation is a form POST")
    t.is_(c.body, b"token=" + GOOD.encode(), "validation body is token=<token>")
    t.is_(c.form(), {"token": [GOOD]}, "validation form field token")
else:
    t.skip("no validation call recorded", 3)

botmatic.clear()
r = ngx.post({"event": "install", "data": {}}, token=BAD)
expect_text(r, 401, b"Not authorized.",
            "install with a token Botmatic refuses: 401 Not authorized.")
t.is_([c.form() for c in botmatic.received("POST", VALIDATE)],
      [{"token": [BAD]}], "the refused token was sent to Botmatic")
r = ngx.post({"event": "uninstall", "data": {}}, token=BAD)
expect_text(r, 401, b"Not authorized.",
            "uninstall with a token Botmatic refuses: 401 Not authorized.")
r = ngx.post({"event": "install", "data": {}})
expect_text(r, 401, b"Not authorized.",
            "install without Authorization: 401 Not authorized.")

# --- dispatch --------------------------------------------------------------
data = {"text": "h\u00e9llo \u2603", "n": [1, 2.5, None, True],
        "nested": {"a": {"b": "c"}}}
r = ngx.post({"action": "echo", "data": data}, token=GOOD)
expect_json(r, 200, {"data": {"echo": data}, "type": "data",
                     "success": True}, "action echo: 200 R + success:true")
rid = r.header("X-Request-Id")
t.ok(rid and rid != "-", "the answer carries X-Request-Id", r.headers.items())

r = ngx.post({"event": "user_reply", "data": data}, token=GOOD)
expect_json(r, 200, {"data": {"got": data}, "type": "data", "success": True},
            "event user_reply dispatched to the module")
r = ngx.post({"action": "fail", "data": {}}, token=GOOD)
expect_json(r, 200, {"data": {"error": "it failed"}, "type": "data",
                     "success": False},
            "handler failure: 200 E + success:false")
for name in ("nope", "echo2", "xecho", "ech", "ECHO", "echo.", "echo echo"):
    r = ngx.post({"action": name, "data": {}}, token=GOOD)
    expect_json(r, 200, no_handler("action", name),
                "action %r has no handler (anchored patterns)" % name)
r = ngx.post({"action": "echo\n", "data": {}}, token=GOOD)
t.ok(r.json() == no_handler("action", "echo\n") or
     (r.status == 400 and r.is_json_type),
     "action \"echo\\n\" is not echo (no handler, or refused)", r)
r = ngx.post({"event": "no_such_event", "data": {}}, token=GOOD)
expect_json(r, 200, no_handler("event", "no_such_event"),
            "unknown event: No event \"...\" defined")
r = ngx.post({"event": "user_repl", "data": {}}, token=GOOD)
expect_json(r, 200, no_handler("event", "user_repl"),
            "event names match whole: user_repl is not user_reply")
r = ngx.post({"action": "decline", "data": {}}, token=GOOD)
expect_json(r, 200, {"data": {"second": True}, "type": "data",
                     "success": True},
            "a declining handler passes to the next match (decl.*)")
r = ngx.post({"action": "whoami", "data": {}}, token=GOOD)
expect_json(r, 200, whoami(r, len(GOOD)),
            "whoami: auth.token and auth.client (the auth function's)")

r = ngx.post({"action": "echo", "data": {"q": 1}}, token=GOOD, path="/?x=1")
expect_json(r, 200, {"data": {"echo": {"q": 1}}, "type": "data",
                     "success": True},
            "a query string on the endpoint is still the endpoint")
r = ngx.post({"action": "echo", "data": {}}, token=GOOD,
             content_type="application/json; charset=utf-8")
t.is_(r.status, 200, "Content-Type application/json; charset=utf-8 accepted")

# --- auth policy: testmod's "fixed" ------------------------------------------
for tok, why in ((OTHER, "a token Botmatic knows but the policy refuses"),
                 (BAD, "an unknown token"), (GOOD + "x", "a longer token"),
                 (GOOD[:-1], "a prefix of the token")):
    r = ngx.post({"action": "echo", "data": {}}, token=tok)
    expect_text(r, 401, b"Not authorized",
                "action with %s: 401 Not authorized" % why)
r = ngx.post({"action": "echo", "data": {}})
expect_text(r, 401, b"Not authorized",
            "action without Authorization: 401 Not authorized")
r = ngx.post({"action": "echo", "data": {}},
             headers={"Authorization": "Basic dXNlcjpwYXNz"})
expect_text(r, 401, b"Not authorized", "Basic auth: 401 Not authorized")
r = ngx.post({"event": "user_reply", "data": {}}, token=OTHER)
expect_text(r, 401, b"Not authorized",
            "event with a refused token: 401 Not authorized")

# --- envelope ----------------------------------------------------------------
r = ngx.post({"data": {"x": 1}}, token=GOOD)
expect_text(r, 403, b"Bad Request",
            "neither event nor action: 403 Bad Request")
r = ngx.post({}, token=GOOD)
expect_text(r, 403, b"Bad Request", "empty object: 403 Bad Request")
for body, why in ((b'{"action":"echo",', "truncated JSON"),
                  (b"not json", "not JSON"),
                  (b"[1,2]", "an array"), (b'"echo"', "a string"),
                  (b"42", "a number"), (b"null", "null"),
                  (b'{"action":"echo","data":{"s":"\xff\xfe"}}',
                   "invalid UTF-8 (0xff)"),
                  (b'{"action":"echo","data":{"s":"\xc0\xaf"}}',
                   "invalid UTF-8 (overlong)"),
                  (b'{"action":"echo"}{"x":1}', "trailing data")):
    r = ngx.post(body, token=GOOD)
    expect_error(r, 400, "%s: 400 JSON error" % why)
r = ngx.post(b"", token=GOOD)
t.ok(r.status in (400, 411) and r.is_json_type,
     "empty body: 400 or 411 JSON error", r)

r = ngx.post({"action": "echo", "data": {}}, token=GOOD,
             content_type="text/plain")
expect_error(r, 415, "Content-Type text/plain: 415 JSON error")
r = ngx.post({"action": "echo", "data": {}}, token=GOOD,
             content_type="application/x-www-form-urlencoded")
expect_error(r, 415, "a form Content-Type: 415 JSON error")

# --- method and path ----------------------------------------------------------
for method in ("GET", "PUT", "DELETE"):
    r = ngx.request(method, "/", b'{"action":"echo"}' if method == "PUT"
                    else None, token=GOOD)
    expect_error(r, 405, "%s on the endpoint: 405 JSON error" % method)
    t.is_(r.header("Allow"), "POST", "%s on the endpoint: Allow: POST" %
          method)
r = ngx.post({"action": "echo", "data": {}}, token=GOOD, path="/other")
expect_error(r, 404, "POST to another path: 404 JSON error")
r = ngx.request("GET", "/other/deeper?x=1", token=GOOD)
expect_error(r, 404, "GET another path: 404 JSON error")

# --- body length -------------------------------------------------------------
r = ngx.raw("POST", headers=[("Authorization", "Bearer " + GOOD),
                             ("Content-Type", "application/json")])
expect_error(r, 411, "POST without Content-Length: 411 JSON error")
r = ngx.raw("POST", headers=[("Authorization", "Bearer " + GOOD),
                             ("Content-Type", "application/json"),
                             ("Transfer-Encoding", "chunked")],
            chunks=[b'{"action":"echo",', b'"data":{"c":1}}'])
expect_json(r, 200, {"data": {"echo": {"c": 1}}, "type": "data",
                     "success": True},
            "chunked body: nginx buffers it and the server answers 200")

big = padded(1048576)
r = ngx.post(big, token=GOOD)
t.ok(r.status == 200 and (r.json() or {}).get("data", {}).get("echo") ==
     json.loads(big)["data"], "a body of exactly 1 MiB is served",
     "got: %r" % (r,))
mark = srv.mark()
r = ngx.post(padded(1048577), token=GOOD)
t.is_((r.status, r.ctype, r.body),
      (413, "application/json",
       b'{"success":false,"error":"request body too large"}'),
      "1 MiB + 1 byte: nginx's 413 as the shipped JSON")
r = ngx.raw("POST", headers=[("Authorization", "Bearer " + GOOD),
                             ("Content-Type", "application/json"),
                             ("Transfer-Encoding", "chunked")],
            chunks=[b" " * 700000, b" " * 700000])
t.is_((r.status, r.is_json_type), (413, True),
      "chunked body over 1 MiB: nginx's JSON 413")
time.sleep(0.3)
t.is_(srv.grep(r"request: ", since=mark), [],
      "bodies over nginx's limit never reach the server")

# --- a handler that returns nothing usable ------------------------------------
before = srv.responders()
mark = srv.mark()
r = ngx.post({"action": "null_reply", "data": {}}, token=GOOD)
expect_error(r, 500, "handler returning no object: 500 JSON error")
t.ok(srv.wait_log(r" (ERROR|WARN) .*testmod", since=mark, timeout=3),
     "the 500 is logged naming the module")
ok = all(ngx.post({"action": "echo", "data": {"i": i}}, token=GOOD).status
         == 200 for i in range(6))
t.ok(ok and srv.proc.alive(), "the server keeps serving after the 500")
t.is_(srv.responders(), before, "no responder died for it")

# --- request id ---------------------------------------------------------------
lines = srv.grep(r"^\S+ \w+ \d+ %s " % rid)
t.ok(any(re.search(r"request: POST / 200 [0-9.]+ms client=\S+ install=", l)
          for l in lines),
     "the log's request line carries the X-Request-Id", "id %r" % rid,
     *lines[:5])

# --- Botmatic down ----------------------------------------------------------
botmatic.stop()
t0 = time.monotonic()
r = ngx.post({"event": "install", "data": {}}, token=DOWN)
expect_text(r, 401, b"Not authorized.",
            "install while Botmatic is down: 401 Not authorized.")
t.ok(time.monotonic() - t0 < 8, "the failed validation does not hang")
r = ngx.post({"action": "echo", "data": {}}, token=GOOD)
t.is_(r.status, 200, "other requests do not need Botmatic")

st = srv.stop()
t.is_(st, 0, "server stops on SIGTERM with status 0")
log = srv.log()
for tok in TOKENS:
    t.ok(tok not in log, "token %s... never in the server log" % tok[:8])
bad = [l for l in log.splitlines()
       if not re.match(
           r"^\d{4}-\d\d-\d\dT\S+ (ERROR|WARN|INFO|DEBUG) \d+ \S+ [\w.-]+: ",
           l)]
t.is_(bad[:5], [], "every log line has the documented format")
t.is_(srv.sanitizer_reports(), [], "no sanitizer report")

# ------------------------------------------------------------------ phase 2
srv2 = t.server({
    "BM_MODULES": t.module("echo") + ":" + t.module("testmod"),
    "BM_AUTH": "module:fixed",
    "BM_MOD_TESTMOD_TOKENS": FIX1 + "," + FIX2,
    "BM_ENDPOINT": "/hook",
    "BM_MAX_BODY": 1000,
    "BOTMATIC_BASE_URL": "http://127.0.0.1:%d" % bmtest.free_port(),
    "BM_WORKERS": 1,
}, name="server2")
ngx2 = t.nginx(srv2, body_limit="4m", name="nginx2")
ngx2.endpoint = "/hook"

r = ngx2.post({"action": "whoami", "data": {}}, token=FIX1)
expect_json(r, 200, whoami(r, len(FIX1)),
            "module auth function: client is what it returned")
r = ngx2.post({"action": "echo", "data": {"k": "v"}}, token=FIX2)
expect_json(r, 200, {"data": {"echo": {"k": "v"}}, "type": "data",
                     "success": True}, "second listed token accepted")
for tok in (GOOD, FIX1 + "," + FIX2, FIX1[:-1]):
    r = ngx2.post({"action": "echo", "data": {}}, token=tok)
    expect_text(r, 401, b"Not authorized",
                "module auth refuses %r: 401 Not authorized" % tok[:12])
r = ngx2.post({"action": "echo", "data": {}}, token=FIX1, path="/")
expect_error(r, 404, "BM_ENDPOINT=/hook: POST / is 404")
r = ngx2.request("GET", None, token=FIX1)
expect_error(r, 405, "GET /hook: 405")

r = ngx2.post(padded(1000), token=FIX1)
t.is_(r.status, 200, "a body of exactly BM_MAX_BODY bytes is served")
mark = srv2.mark()
r = ngx2.post(padded(1001), token=FIX1)
expect_error(r, 413, "BM_MAX_BODY + 1 byte: the server's 413 JSON")
t.ok(srv2.wait_log(r"request: POST /hook 413 ", since=mark, timeout=3),
     "that 413 came from the server (logged)")
r = ngx2.post(padded(2 * 1048576), token=FIX1)
expect_error(r, 413, "2 MiB under nginx's 4m limit: the server's 413 JSON")
r = ngx2.post({"action": "echo", "data": {}}, token=FIX1)
t.is_(r.status, 200, "served normally after the 413s")

t.is_(srv2.stop(), 0, "server 2 stops with status 0")
log = srv2.log()
for tok in (FIX1, FIX2):
    t.ok(tok not in log, "module token %s... never in the log" % tok[:8])
t.is_(srv2.sanitizer_reports(), [], "no sanitizer report (server 2)")

# ------------------------------------------------------------------ phase 3
botmatic3 = t.botmatic({GOOD, OTHER})


def policy_server(policy, name):
    """A server with BM_AUTH=policy (None: the default), or None when this
    build refuses the policy for want of the keystore (then one TODO
    point is printed)."""
    env = {"BM_MODULES": t.module("echo") + ":" + t.module("testmod"),
           "BOTMATIC_BASE_URL": botmatic3.url, "BM_WORKERS": 2,
           "BM_AUTH": policy}
    srv = t.server(env, name=name, start=False)
    srv.start(wait=False)
    bmtest.wait_until(lambda: not srv.proc.alive() or
                      srv.grep(r"master: listening on "), 20)
    if not srv.proc.alive() and srv.grep(r"keystore"):
        t.ok(False, "BM_AUTH=%s serves" % (policy or "installed (default)"),
             todo="the keystore has not landed: " +
             srv.grep(r"keystore")[0].split(": ", 1)[-1])
        return None
    srv.wait_ready()
    return srv, t.nginx(srv, name="nginx-" + name), env


ps = policy_server(None, "installed")
if ps:
    srv3, ngx3, env3 = ps
    r = ngx3.post({"action": "echo", "data": {}}, token=GOOD)
    expect_text(r, 401, b"Not authorized",
                "installed: a token before its install: 401")
    install = {"event": "install", "data": {"bot": 1}}
    r = ngx3.post(install, token=GOOD)
    expect_json(r, 200, {"data": install, "type": "data", "success": True},
                "installed: install validated by Botmatic: 200")
    r = ngx3.post(install, token=GOOD)
    t.is_(r.status, 200, "installed: install again (idempotent): 200")
    r = ngx3.post({"action": "echo", "data": {"a": 1}}, token=GOOD)
    expect_json(r, 200, {"data": {"echo": {"a": 1}}, "type": "data",
                         "success": True},
                "installed: the installed token is accepted")
    r = ngx3.post({"action": "whoami", "data": {}}, token=GOOD)
    d = (r.json() or {}).get("data") or {}
    t.ok(r.status == 200 and d.get("token_length") == len(GOOD) and
         isinstance(d.get("client"), dict),
         "installed: auth.client is the installation record", r)
    r = ngx3.post({"action": "echo", "data": {}}, token=OTHER)
    expect_text(r, 401, b"Not authorized",
                "installed: a token Botmatic knows but never installed: 401")
    t.is_(srv3.stop(), 0, "installed: server stops with 0")
    srv3 = t.server(env3, name="installed")     # same socket, same BM_DB_HOME
    r = ngx3.post({"action": "echo", "data": {"b": 2}}, token=GOOD)
    t.is_(r.status, 200, "installed: the installation survives a restart")
    uninstall = {"event": "uninstall", "data": {"bot": 1}}
    r = ngx3.post(uninstall, token=GOOD)
    expect_json(r, 200, {"data": uninstall, "type": "data", "success": True},
                "installed: uninstall answers the request as data")
    r = ngx3.post({"action": "echo", "data": {}}, token=GOOD)
    expect_text(r, 401, b"Not authorized",
                "installed: the token is refused after uninstall")
    t.is_(srv3.stop(), 0, "installed: server stops with 0")
    t.ok(all(tok not in srv3.log() for tok in TOKENS),
         "installed: no token in the log")

ps = policy_server("validate", "validate")
if ps:
    srv4, ngx4, _ = ps
    botmatic3.clear()
    for i in range(3):
        r = ngx4.post({"action": "echo", "data": {"i": i}}, token=OTHER)
        t.is_(r.status, 200, "validate: a token Botmatic validates (%d)" % i)
    t.is_(len(botmatic3.received("POST", VALIDATE)), 1,
          "validate: Botmatic asked once, then the token is recorded")
    botmatic3.clear()
    for i in range(3):
        r = ngx4.post({"action": "echo", "data": {}}, token=BAD)
        expect_text(r, 401, b"Not authorized",
                    "validate: a token Botmatic refuses: 401 (%d)" % i)
    t.is_(len(botmatic3.received("POST", VALIDATE)), 1,
          "validate: the refusal is cached")
    t.is_(srv4.stop(), 0, "validate: server stops with 0")
    t.ok(all(tok not in srv4.log() for tok in TOKENS),
         "validate: no token in the log")

t.done()
