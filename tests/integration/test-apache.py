#!/usr/bin/env python3
"""Apache httpd in front of botmatic-fcgi (testmod's auth function), from
the shipped nginx/apache-botmatic-fcgi.conf:

1. mod_proxy_fcgi to the app's unix socket: the protocol's core rows, and
   the bearer token arrives (CGIPassAuth On).  A control Apache without
   CGIPassAuth shows the token is dropped then (401).
2. mod_fcgid (-DBOTMATIC_USE_FCGID): Apache spawns botmatic-fcgi itself,
   the listening socket on fd 0 (BM_LISTEN unset), BM_WORKERS=1.  Skipped
   when mod_fcgid is not installed."""

import os
import pwd
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test(requires=("apache", "server"))

GOOD = "ap-Good-3c4d5e6f7a"
OTHER = "ap-Other-8b9c0d1e2f"
BAD = "ap-Bad-0a1b2c3d4e"
HTML = "text/html; charset=utf-8"


def expect(r, status, ctype_json, body, name):
    if ctype_json:
        good = r.status == status and r.is_json_type and r.json() == body
    else:
        good = r.status == status and r.ctype == HTML and r.body == body
    t.ok(good, name, "expected: %d %r" % (status, body), "     got: %r" % (r,))


def core_rows(web, botmatic, label):
    """The protocol's core rows through web (testmod's auth function
    accepts GOOD only)."""
    botmatic.clear()
    install = {"event": "install", "data": {"via": label}}
    expect(web.post(install, token=GOOD), 200, True,
           {"data": install, "type": "data", "success": True},
           "%s: install with a valid token: 200" % label)
    t.is_([c.form() for c in botmatic.received()],
          [{"token": [GOOD]}],
          "%s: the bearer token reached Botmatic's validation" % label)
    expect(web.post({"event": "install", "data": {}}, token=BAD), 401,
           False, b"Not authorized.", "%s: install refused: 401" % label)
    data = {"x": [1, "\u00e9"]}
    expect(web.post({"action": "echo", "data": data}, token=GOOD), 200, True,
           {"data": {"echo": data}, "type": "data", "success": True},
           "%s: echo action" % label)
    r = web.post({"action": "whoami", "data": {}}, token=GOOD)
    t.is_(((r.json() or {}).get("data") or {}).get("token_length"),
          len(GOOD), "%s: the handler sees the whole token" % label)
    expect(web.post({"action": "fail", "data": {}}, token=GOOD), 200, True,
           {"data": {"error": "it failed"}, "type": "data",
            "success": False}, "%s: handler failure" % label)
    expect(web.post({"action": "nope", "data": {}}, token=GOOD), 200, True,
           {"success": False, "type": "data",
            "data": {"error": "No action \"nope\" defined"}},
           "%s: no handler" % label)
    expect(web.post({"action": "echo", "data": {}}, token=OTHER), 401,
           False, b"Not authorized", "%s: token refused: 401" % label)
    expect(web.post({"data": {}}, token=GOOD), 403, False, b"Bad Request",
           "%s: neither event nor action: 403" % label)
    r = web.post(b'{"action":', token=GOOD)
    t.ok(r.status == 400 and r.is_json_type, "%s: invalid JSON: 400" % label,
         r)
    r = web.request("GET", "/", token=GOOD)
    t.ok(r.status == 405 and r.header("Allow") == "POST" and r.is_json_type,
         "%s: GET: 405 Allow: POST" % label, r)
    r = web.post({"action": "echo"}, token=GOOD, path="/elsewhere")
    t.ok(r.status == 404 and r.is_json_type, "%s: other path: 404" % label,
         r)
    r = web.post({"action": "echo"}, token=GOOD, content_type="text/plain")
    t.ok(r.status == 415 and r.is_json_type, "%s: text/plain: 415" % label,
         r)


botmatic = t.botmatic({GOOD, OTHER})

# --- 1. mod_proxy_fcgi --------------------------------------------------------
srv = t.server({
    "BM_MODULES": t.module("echo") + ":" + t.module("testmod"),
    "BM_AUTH": "module:fixed",
    "BM_MOD_TESTMOD_TOKENS": GOOD,
    "BOTMATIC_BASE_URL": botmatic.url,
    "BM_WORKERS": 2,
})
ap = t.apache(srv)
t.diag("apache on %s" % ap.url)
core_rows(ap, botmatic, "proxy_fcgi")
r = ap.post(b'{"action":"echo","data":{"p":"' + b"x" * 1048576 + b'"}}',
            token=GOOD)
t.is_(r.status, 413, "proxy_fcgi: a body over LimitRequestBody: 413")
r = ap.post({"action": "echo", "data": {}}, token=GOOD)
t.is_(r.status, 200, "proxy_fcgi: served after the 413")

# The control: the same Location without CGIPassAuth.
bare = t.apache(srv, name="apache-bare", body="""\
<Location "/">
    ProxyPass "unix:%s|fcgi://botmatic-fcgi/"
    ProxyFCGIBackendType GENERIC
    Require all granted
</Location>""" % srv.sock)
r = bare.post({"action": "echo", "data": {}}, token=GOOD)
t.ok(r.status == 401,
     "control: without CGIPassAuth Apache drops Authorization (401)", r)
bare.stop()
ap.stop()
t.is_(srv.stop(), 0, "server stops with 0")
log = srv.log()
t.ok(all(tok not in log for tok in (GOOD, OTHER, BAD)),
     "no token in the server log")

# --- 2. mod_fcgid ---------------------------------------------------------------
moddir = os.environ.get("BM_TEST_APACHE_MODULES", bmtest.APACHE_MODULES)
if not os.path.exists(os.path.join(moddir, "mod_fcgid.so")):
    t.skip("mod_fcgid not installed", 6)
    t.done()

def short_copy(module):
    """A copy of a module at a short path: mod_fcgid cuts FcgidInitialEnv
    values at 128 bytes, and a build tree's paths (distcheck's) can be
    longer than that."""
    d = os.path.join(t.tmp, "m")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, module + ".so")
    shutil.copyfile(t.module(module), p)
    os.chmod(p, 0o644)
    return p


db = os.path.join(t.tmp, "fcgid-db")
os.makedirs(db)
fcgid_dir = os.path.join(t.tmp, "fcgid")
os.makedirs(fcgid_dir)
if bmtest.IS_ROOT:          # mod_fcgid runs the app as Apache's User
    pw = pwd.getpwnam(bmtest.apache_user()[0])
    for d in (db, fcgid_dir):
        os.chown(d, pw.pw_uid, pw.pw_gid)
extra = """\
FcgidIPCDir "%(dir)s"
FcgidProcessTableFile "%(dir)s/shm"
FcgidInitialEnv BM_MODULES %(mods)s
FcgidInitialEnv BOTMATIC_BASE_URL %(url)s
FcgidInitialEnv BM_LOG_LEVEL debug
FcgidInitialEnv BM_AUTH module:fixed
FcgidInitialEnv BM_MOD_TESTMOD_TOKENS %(good)s
FcgidMinProcessesPerClass 0
FcgidMaxProcessesPerClass 1
""" % {"dir": fcgid_dir, "url": botmatic.url,
       "mods": ":".join(short_copy(m) for m in ("echo", "testmod")),
       "good": GOOD}
fc = t.apache(None, name="apache-fcgid", modules=("fcgid",),
              defines={"BOTMATIC_USE_FCGID": None,
                       "BOTMATIC_BINARY": srv.binary,
                       "BOTMATIC_DB_HOME": db},
              extra=extra)
r = fc.post({"event": "install", "data": {}}, token=GOOD)
t.ok(r.status == 200 and (r.json() or {}).get("success") is True,
     "mod_fcgid: install through a server on inherited fd 0", r,
     bmtest._read(fc.error_log)[-3000:])
data = {"via": "fcgid"}
expect(fc.post({"action": "echo", "data": data}, token=GOOD), 200, True,
       {"data": {"echo": data}, "type": "data", "success": True},
       "mod_fcgid: echo action")
expect(fc.post({"action": "echo", "data": {}}, token=OTHER), 401, False,
       b"Not authorized", "mod_fcgid: token refused: 401")
apps = bmtest.procs_with_env("BM_DB_HOME", db)
t.ok(apps, "mod_fcgid started the server (pids %s)" % apps)
t.is_(fc.stop(), 0, "mod_fcgid: Apache stops with 0")
t.ok(bmtest.wait_until(lambda: not any(bmtest.pid_alive(p) for p in apps),
                       15), "mod_fcgid: its servers are gone with Apache",
     [p for p in apps if bmtest.pid_alive(p)])

t.done()
