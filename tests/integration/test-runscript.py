#!/usr/bin/env python3
"""nginx/run.sh, the README's way to run the server: started with
--port <free> --builddir $BM_TEST_BUILDDIR --prefix <tmp>, it prints the
URL once nginx and the server are up; an install and an echo webhook
with the installed token succeed through it (the default auth policy;
BM_WORKERS and BOTMATIC_BASE_URL passed through to the server, the
keystore defaulted into the prefix); SIGINT to the script stops both
children, by PID.  A port already in use makes it fail cleanly, leaving
no process behind."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402
from bmtest import pid_alive, wait_until  # noqa: E402

t = bmtest.Test()
TOKEN = "run-Token-6a7b8c9d"
script = t.src_file("nginx", "run.sh")
botmatic = t.botmatic({TOKEN})


def run(port, prefix):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BM_", "BOTMATIC_"))}
    env.update({"BOTMATIC_BASE_URL": botmatic.url, "BM_WORKERS": "2",
                "NGINX": t.nginx_bin})
    out = open(os.path.join(t.tmp, "run-%d.log" % port), "wb")
    p = bmtest.Proc("run.sh", [script, "--port", str(port), "--builddir",
                               t.builddir, "--prefix", prefix],
                    env, subprocess.PIPE, out)
    t.defer(lambda: p.stop(signal.SIGTERM, 30))
    lines = []

    def reader():
        for line in p.popen.stdout:
            lines.append(line.decode("utf-8", "replace"))
    threading.Thread(target=reader, daemon=True).start()
    return p, lines


# --- a normal run ---------------------------------------------------------
port = bmtest.free_port()
prefix = os.path.join(t.tmp, "prefix")
p, lines = run(port, prefix)
ready = wait_until(lambda: any("is ready at" in l for l in lines) or
                   not p.alive(), 40)
text = "".join(lines)
t.ok(p.alive() and ready, "run.sh reports ready", text,
     bmtest._read(os.path.join(t.tmp, "run-%d.log" % port)))
url = "http://127.0.0.1:%d/" % port
t.ok(url in text and "curl" in text, "it prints the URL and a curl command",
     text)
m = re.search(r"server pid (\d+), nginx pid (\d+)", text)
app_pid, nginx_pid = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
kids = bmtest.children_of(p.pid)
t.ok(m and app_pid in kids and nginx_pid in kids,
     "server and nginx are the script's children", kids, text)
if not ready:
    t.done()

web = bmtest.WebServer()
web.port = port
r = web.post({"event": "install", "data": {}}, token=TOKEN)
t.ok(r.status == 200 and (r.json() or {}).get("success") is True,
     "install through run.sh (BOTMATIC_BASE_URL passed through)", r)
t.is_(len(bmtest.live_children_of(app_pid, "bm-responder")), 2,
      "BM_WORKERS=2 passed through")
t.is_([c.form() for c in botmatic.received()], [{"token": [TOKEN]}],
      "the server validated the token with the stand-in")
r = web.post({"action": "echo", "data": {"hello": "world"}}, token=TOKEN)
t.is_((r.status, r.json()), (200, {"data": {"echo": {"hello": "world"}},
                                   "type": "data", "success": True}),
      "echo webhook with the installed token (the default auth policy, "
      "the echo module loaded by default)")
r = web.post({"action": "echo", "data": {}}, token="not-" + TOKEN)
t.is_(r.status, 401, "another token is refused")
t.ok(app_pid in bmtest.procs_with_env("BM_DB_HOME",
                                      os.path.join(prefix, "db")) and
     os.path.isdir(os.path.join(prefix, "db")),
     "BM_DB_HOME defaults into the prefix")

p.kill(signal.SIGINT)
st = p.wait(40)
t.is_(st, 0, "SIGINT: run.sh exits 0")
t.ok(wait_until(lambda: not pid_alive(app_pid) and not pid_alive(nginx_pid),
                10), "both children are gone")
with socket.socket() as s:
    t.ok(s.connect_ex(("127.0.0.1", port)) != 0, "the port is closed")
t.is_(bmtest.procs_with_env("BM_LISTEN",
                            os.path.join(prefix, "botmatic.sock")), [],
      "no server process left")

# --- the port is taken ------------------------------------------------------
busy = socket.socket()
busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
busy.bind(("127.0.0.1", 0))
busy.listen(1)
port2 = busy.getsockname()[1]
prefix2 = os.path.join(t.tmp, "prefix2")
p2, lines2 = run(port2, prefix2)
st = p2.wait(40)
t.ok(st not in (0, None), "port in use: run.sh fails (status %r)" % st,
     bmtest._read(os.path.join(t.tmp, "run-%d.log" % port2)))
t.is_(bmtest.procs_with_env("BM_LISTEN",
                            os.path.join(prefix2, "botmatic.sock")), [],
      "port in use: the server it started is stopped")
busy.close()

t.done()
