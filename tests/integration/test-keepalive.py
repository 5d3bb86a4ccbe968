#!/usr/bin/env python3
"""nginx with upstream keepalive (fastcgi_keep_conn on), which the shipped
configuration does not use: a request that arrives on a connection nginx
kept open is served (a responder waits on its kept connection, not only on
the listening socket)."""
import re

import bmtest

t = bmtest.Test()
t.plan(2)
srv = t.server({"BM_AUTH": "any", "BM_MODULES": t.module("echo"),
                "BM_WORKERS": "2"})
ngx = bmtest.Nginx(t, srv.sock, body_limit="1m")
piece = ngx.dir + "/botmatic-fastcgi.conf"
with open(piece) as f:
    text = f.read()
text, n = re.subn(r"(?m)^(\s*fastcgi_keep_conn\s+)off;", r"\1on;", text)
if n == 0:
    text += "\nfastcgi_keep_conn on;\n"
with open(piece, "w") as f:
    f.write(text)
with open(ngx.conf) as f:
    conf = f.read()
conf = conf.replace("fastcgi_pass unix:%s;" % srv.sock, "fastcgi_pass app;")
conf = conf.replace("http {", "http {\n    upstream app {\n        server "
                    "unix:%s;\n        keepalive 2;\n    }\n" % srv.sock, 1)
with open(ngx.conf, "w") as f:
    f.write(conf)
ngx.start()

# Low traffic: one request at a time, each on a connection nginx kept.
answers = [ngx.post({"action": "echo", "data": i}, token="x", timeout=20)
           for i in range(12)]
t.ok(all(r.status == 200 and r.json()["data"] == {"echo": i}
         for i, r in enumerate(answers)),
     "12 sequential requests over kept connections are all answered",
     [r.status for r in answers])

# No burst here: with upstream keepalive, idle kept connections pin
# responders (one connection each, libfcgi's model), which is why the
# shipped configuration keeps none (README, BENCHMARKS.md).
after = [ngx.post({"action": "echo"}, token="x", timeout=20).status
         for _ in range(6)]
t.ok(after == [200] * 6, "6 more, each answered", after)
t.done()
