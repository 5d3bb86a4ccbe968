#!/usr/bin/env python3
"""Module loading (BM_MODULES): a good module loads and answers; a module
with the wrong ABI, without bm_module_entry, whose init() fails, a path
that does not exist, or a group/world-writable file each stop the start
with a nonzero exit and one log line "module: <path>: <reason>", before any
responder is started.

No web server is needed: requests go straight to the app's socket over
FastCGI (bmtest.fcgi_request)."""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test(requires=("server",))


def webhook(srv, body, token="any-token"):
    """POST body (bytes) to the endpoint over FastCGI."""
    return bmtest.fcgi_webhook(srv.sock, body, token)


def copy_module(name, mode, as_name):
    p = os.path.join(t.tmp, as_name)
    shutil.copyfile(t.module(name), p)
    os.chmod(p, mode)
    return p


n_servers = 0


def refused(modules, reason_rx, what):
    """Starts the server with BM_MODULES=modules and checks it refuses to
    start because of the last path in it, with reason_rx in the line."""
    global n_servers
    n_servers += 1
    path = modules.split(":")[-1]
    srv = t.server({"BM_MODULES": modules, "BM_AUTH": "any",
                    "BM_WORKERS": 1}, name="refused%d" % n_servers,
                   start=False)
    st = srv.run_to_exit(timeout=20)
    t.ok(st is not None and st != 0, "%s: the start stops (status %r)" %
         (what, st), srv.log())
    lines = srv.grep(r"module: %s: " % re.escape(path))
    t.ok(len(lines) == 1 and re.search(reason_rx, lines[0].split(
        "module: %s: " % path, 1)[1], re.I) and
        re.search(r" ERROR ", lines[0]),
        "%s: one ERROR line \"module: <path>: <reason>\"" % what,
        "reason should match /%s/" % reason_rx, *srv.log().splitlines())
    t.is_(srv.grep(r"master: responder \d+ started"), [],
          "%s: no responder was started" % what)
    t.is_(srv.sanitizer_reports(), [], "%s: no sanitizer report" % what)


# --- a good module ----------------------------------------------------------
for i, (path, what) in enumerate((
        (t.module("echo"), "echo.so from the build tree"),
        (copy_module("echo", 0o644, "echo-copy.so"),
         "a 0644 copy of echo.so"))):
    srv = t.server({"BM_MODULES": path, "BM_AUTH": "any", "BM_WORKERS": 1},
                   name="good%d" % i)
    r = webhook(srv, b'{"action":"echo","data":{"m":"\xc3\xa9"}}')
    t.is_((r.status, r.json()), (200, {"data": {"echo": {"m": "\u00e9"}},
                                       "type": "data", "success": True}),
          "%s loads and answers the echo action" % what)
    t.is_(srv.stop(), 0, "%s: server stops with 0" % what)

srv = t.server({"BM_MODULES": t.module("echo") + ":" + t.module("testmod"),
                "BM_AUTH": "any", "BM_WORKERS": 1}, name="two")
r = webhook(srv, b'{"action":"sleep","data":{"ms":10}}')
t.is_((r.status, r.json()), (200, {"data": {"slept": 10}, "type": "data",
                                   "success": True}),
      "two modules load; the second's action answers")
r = webhook(srv, b'{"action":"echo","data":1}')
t.is_(r.status, 200, "the first's action answers too")
t.is_(srv.stop(), 0, "server with two modules stops with 0")

# --- refused ones -----------------------------------------------------------
refused(t.module("abimod"), r"abi", "wrong ABI (abimod.so)")
refused(t.module("nosym"), r"bm_module_entry", "no bm_module_entry (nosym.so)")
refused(t.module("initfail"), r"init", "init() fails (initfail.so)")
refused(os.path.join(t.tmp, "no-such-module.so"), r"\S",
        "a path that does not exist")
refused(copy_module("echo", 0o664, "echo-gw.so"), r"writable",
        "a group-writable .so")
refused(copy_module("echo", 0o646, "echo-ww.so"), r"writable",
        "a world-writable .so")
refused(t.module("echo") + ":" + t.module("abimod"), r"abi",
        "a bad module after a good one")
with open(os.path.join(t.tmp, "garbage.so"), "wb") as f:
    f.write(b"this is not an ELF file\n")
os.chmod(os.path.join(t.tmp, "garbage.so"), 0o644)
refused(os.path.join(t.tmp, "garbage.so"), r"\S", "a file that is not ELF")

t.done()
