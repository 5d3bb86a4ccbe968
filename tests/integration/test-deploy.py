#!/usr/bin/env python3
"""Deployment modes and the shipped samples:

- the ways the server gets its socket: BM_LISTEN unix path (the other
  tests), BM_LISTEN=host:port, an inherited listening socket on fd 0
  (spawn-fcgi, mod_fcgid, systemd StandardInput=socket), and systemd's
  LISTEN_FDS/LISTEN_PID (fd 3);
- configuration: --help lists the fixed variables; a bad value stops the
  start with exit 1 and one line naming the variable;
- nginx/botmatic-fcgi.conf, the production server block, passes `nginx -t`
  and serves a webhook over TLS (paths and ports rewritten into the
  tempdir; needs openssl for a throwaway certificate);
  it serves the status path (BM_STATUS_PATH) to loopback;
- the systemd units pass `systemd-analyze verify` (when it exists), the
  service as make install writes it (Type=notify, ExecReload running
  botmatic-fcgi -t before the SIGHUP, the configured paths).

Requests to the server alone go over FastCGI (bmtest.fcgi_webhook)."""

import http.client
import json
import os
import re
import signal
import shutil
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test(requires=("server",))
binary = t.build_file("botmatic-fcgi")
ECHO = {"action": "echo", "data": {"via": "deploy"}}
ECHOED = {"data": {"echo": {"via": "deploy"}}, "type": "data",
          "success": True}
base_env = {"BM_MODULES": t.module("echo"), "BM_AUTH": "any",
            "BM_WORKERS": 1}


def answer(addr):
    try:
        r = bmtest.fcgi_webhook(addr, ECHO, token="deploy-token")
    except OSError as e:
        return repr(e)
    return r.status, r.json()


# --- BM_LISTEN=host:port ------------------------------------------------------
port = bmtest.free_port()
srv = t.server(dict(base_env, BM_LISTEN="127.0.0.1:%d" % port), name="tcp")
t.is_(answer(("127.0.0.1", port)), (200, ECHOED),
      "BM_LISTEN=127.0.0.1:<port>: FastCGI over TCP")
t.is_(srv.stop(), 0, "TCP server stops with 0")


# --- an inherited socket --------------------------------------------------------
def inherited(name, on_fd3):
    """Starts the server with BM_LISTEN unset and a listening unix socket
    made here, on fd 0 or (on_fd3) as systemd passes it."""
    path = os.path.join(t.tmp, name + ".sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(64)
    srv = t.server(dict(base_env, BM_LISTEN=None), name=name, start=False)
    srv.sock = path
    if on_fd3:
        fd = lsock.fileno()
        srv.start(argv=["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 '
                        'LISTEN_FDNAMES=botmatic.sock; '
                        'export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; '
                        'exec "$0"', binary],
                  pass_fds=(3,), preexec_fn=lambda: os.dup2(fd, 3))
    else:
        srv.start(stdin=lsock.fileno())
    lsock.close()
    return srv


srv = inherited("fd0", on_fd3=False)
t.is_(answer(srv.sock), (200, ECHOED),
      "BM_LISTEN unset: serves the listening socket inherited on fd 0")
t.is_(srv.stop(), 0, "fd 0 server stops with 0")

srv = inherited("fd3", on_fd3=True)
t.is_(answer(srv.sock), (200, ECHOED),
      "BM_LISTEN unset: serves systemd's LISTEN_FDS socket (fd 3)")
t.is_(srv.stop(), 0, "LISTEN_FDS server stops with 0")

# --- configuration --------------------------------------------------------------
r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=10)
out = r.stdout.decode("utf-8", "replace")
missing = [v for v in ("BM_LISTEN", "BM_WORKERS", "BM_ENDPOINT",
                       "BM_MAX_BODY", "BM_AUTH", "BM_DB_HOME", "BM_MAPPINGS",
                       "BM_MODULES", "BM_LOG_LEVEL", "BOTMATIC_BASE_URL",
                       "BM_EXT_BASE_URL", "BM_EXT_AUTH_HEADER")
           if v not in out]
t.ok(r.returncode == 0 and not missing,
     "--help exits 0 and lists every fixed variable", "missing: %s" % missing)

for var, value in (("BM_WORKERS", "abc"), ("BM_WORKERS", "0"),
                   ("BM_MAX_BODY", "-5"), ("BM_MAX_BODY", "12kb"),
                   ("BM_LOG_LEVEL", "loud"), ("BM_AUTH", "bogus"),
                   ("BM_LISTEN_MODE", "999"), ("BM_HTTP_TIMEOUT", "soon"),
                   ("BM_DB_HOME", None)):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BM_", "BOTMATIC_"))}
    env.update(BM_LISTEN=os.path.join(t.tmp, "cfg.sock"),
               BM_DB_HOME=os.path.join(t.tmp, "cfg-db"), BM_WORKERS="1")
    if value is None:
        del env[var]
    else:
        env[var] = value
    try:
        r = subprocess.run([binary], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=10)
        st, err = r.returncode, r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        st, err = None, "still running after 10 s"
    lines = [l for l in err.splitlines() if l.strip()]
    t.ok(st == 1 and len(lines) == 1 and var in lines[0],
         "%s=%s: exit 1 with one line naming it" % (var, value),
         "status %r" % st, *lines)

# --- the production nginx sample, for real -----------------------------------
nginx_bin = t.nginx_bin
openssl = shutil.which("openssl")
if not bmtest._executable(nginx_bin) or not openssl:
    t.skip("nginx or openssl missing", 4)
else:
    d = os.path.join(t.tmp, "prod")
    os.makedirs(os.path.join(d, "temp"))
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "1", "-subj", "/CN=integration.example.com",
                    "-keyout", d + "/key.pem", "-out", d + "/cert.pem"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    srv = t.server(dict(base_env, BM_STATUS_PATH="/status"), name="prod")
    https_port, http_port = bmtest.free_port(), bmtest.free_port()
    with open(t.src_file("nginx", "botmatic-fcgi.conf")) as f:
        sample = f.read()
    subs = ((r"listen 443 ", "listen 127.0.0.1:%d " % https_port),
            (r"listen 80;", "listen 127.0.0.1:%d;" % http_port),
            (r"(?m)^\s*listen \[::\].*$", ""),
            (r"/etc/ssl/certs/\S+;", d + "/cert.pem;"),
            (r"/etc/ssl/private/\S+;", d + "/key.pem;"),
            (r"/var/log/nginx/", d + "/"),
            (r"snippets/", t.src_file("nginx") + "/"),
            (r"unix:/run/botmatic-fcgi/botmatic.sock", "unix:" + srv.sock))
    for rx, rep in subs:
        sample, n = re.subn(rx, rep, sample)
        if n == 0:
            raise RuntimeError("botmatic-fcgi.conf: no %r to rewrite" % rx)
    with open(os.path.join(d, "sites.conf"), "w") as f:
        f.write(sample)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("""daemon off;
worker_processes 1;
%s
error_log %s/error.log;
pid %s/nginx.pid;
events { worker_connections 64; }
http {
    client_body_temp_path %s/temp/cb;
    fastcgi_temp_path %s/temp/fc;
    proxy_temp_path %s/temp/px;
    uwsgi_temp_path %s/temp/uw;
    scgi_temp_path %s/temp/sc;
    include %s/sites.conf;
}
""" % (("user root;" if bmtest.IS_ROOT else ""), d, d, d, d, d, d, d, d))
    argv = [nginx_bin, "-e", d + "/error.log", "-p", d + "/",
            "-c", d + "/nginx.conf"]
    r = subprocess.run(argv + ["-t"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    t.ok(r.returncode == 0, "nginx -t accepts the production sample",
         r.stdout.decode("utf-8", "replace"))
    ngx = bmtest.Proc("nginx-prod", argv, dict(os.environ),
                      subprocess.DEVNULL, subprocess.DEVNULL)
    t.defer(lambda: ngx.stop(signal.SIGQUIT))
    bmtest.wait_until(lambda: bmtest._port_open(https_port), 10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        c = http.client.HTTPSConnection("127.0.0.1", https_port, context=ctx,
                                        timeout=10)
        c.request("POST", "/", body=json.dumps(ECHO),
                  headers={"Content-Type": "application/json",
                           "Authorization": "Bearer deploy-token"})
        resp = c.getresponse()
        got = (resp.status, json.loads(resp.read()))
        c.close()
    except Exception as e:
        got = repr(e)
    t.is_(got, (200, ECHOED), "the production sample serves a webhook over "
          "TLS")
    try:
        c = http.client.HTTPSConnection("127.0.0.1", https_port, context=ctx,
                                        timeout=10)
        c.request("GET", "/status")
        resp = c.getresponse()
        got = (resp.status, sorted(json.loads(resp.read())["responders"]))
        c.close()
    except Exception as e:
        got = repr(e)
    t.is_(got, (200, ["busy", "idle", "starting", "stopping"]),
          "the production sample serves /status to 127.0.0.1")
    r = bmtest.http_request(http_port, "POST", "/x", b"{}")
    t.is_((r.status, r.header("Location")),
          (301, "https://127.0.0.1/x"), "plain HTTP redirects to HTTPS")
    ngx.stop(signal.SIGQUIT)
    srv.stop()

# --- systemd units --------------------------------------------------------------
sa = shutil.which("systemd-analyze")
if not sa:
    t.skip("systemd-analyze missing", 1)
else:
    d = os.path.join(t.tmp, "units")
    os.makedirs(d)
    # The service as make install writes it, pointing at this build.
    with open(t.build_file("nginx", "botmatic-fcgi.service")) as f:
        service = f.read()
    m = re.search(r"(?m)^ExecStart=(\S+)/botmatic-fcgi$", service)
    bindir = m.group(1) if m else "?"
    with open(t.src_file("nginx", "botmatic-fcgi.socket")) as f:
        socket_unit = f.read()
    for u, text in (("botmatic-fcgi.socket", socket_unit),
                    ("botmatic-fcgi.service",
                     service.replace(bindir + "/botmatic-fcgi", binary))):
        with open(os.path.join(d, u), "w") as f:
            f.write(text)
    r = subprocess.run([sa, "verify", os.path.join(d, "botmatic-fcgi.socket"),
                        os.path.join(d, "botmatic-fcgi.service")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    t.ok(r.returncode == 0 and not out.strip(),
         "systemd-analyze verify: the units are clean", out)

# What `systemctl reload` runs, in order, and how the service says it is up.
want = ["Type=notify", "ExecStart=%s/botmatic-fcgi" % bindir,
        "ExecReload=%s/botmatic-fcgi -t" % bindir,
        "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure"]
lines = service.splitlines()
t.ok(all(w in lines for w in want) and
     not re.search(r"@[a-z]+@", service) and
     lines.index(want[2]) < lines.index(want[3]),
     "the generated service: Type=notify, -t then SIGHUP on reload, "
     "Restart=on-failure, no placeholder left",
     *[w for w in want if w not in lines])

t.done()
