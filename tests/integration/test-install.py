#!/usr/bin/env python3
"""`make install` puts the server, the module header, the pkg-config file,
the man pages, the example modules, the deployment samples and the systemd
units (in $(systemdsystemunitdir), pointing at the installed server) in
place, and
a module built out of tree with pkg-config against the installed header
(the README's example, verbatim) loads into the server and answers."""
import os
import re
import shutil
import subprocess

import bmtest

t = bmtest.Test()
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
PKG = shutil.which("pkg-config")
if not CC or not PKG:
    bmtest.skip_all("no C compiler or pkg-config")
t.plan(6)

dest = os.path.join(t.tmp, "dest")
env = {k: v for k, v in os.environ.items()
       if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
p = subprocess.run(["make", "-C", t.builddir, "install", "DESTDIR=" + dest],
                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   timeout=600)
t.ok(p.returncode == 0, "make install DESTDIR=... succeeds",
     p.stdout.decode(errors="replace")[-3000:])

found = {}
for root, _, files in os.walk(dest):
    for f in files:
        found.setdefault(f, os.path.join(root, f))
want = ["botmatic-fcgi", "botmatic-keys", "botmatic-map", "module.h",
        "botmatic-module.pc", "botmatic-fcgi.8", "botmatic-keys.1",
        "botmatic-map.1", "echo.so", "set_property.so",
        "botmatic-fcgi.conf", "botmatic-fastcgi.conf", "botmatic-errors.conf",
        "apache-botmatic-fcgi.conf", "botmatic-fcgi.service",
        "botmatic-fcgi.socket", "botmatic-fcgi.default"]
missing = [w for w in want if w not in found]
t.ok(not missing and found["module.h"].endswith("/include/botmatic/module.h"),
     "installed: server, tools, header, .pc, man pages, modules, samples",
     "missing: %r" % missing)

# The units: where systemd looks under the prefix, naming the installed
# server and the configured environment file.
bindir = os.path.dirname(found.get("botmatic-fcgi", "/"))[len(dest):]
unitdir = os.path.dirname(found.get("botmatic-fcgi.service", "/"))
service = open(found["botmatic-fcgi.service"]).read() \
    if "botmatic-fcgi.service" in found else ""
t.ok(unitdir.endswith("/lib/systemd/system") and
     os.path.exists(os.path.join(unitdir, "botmatic-fcgi.socket")) and
     "\nExecStart=%s/botmatic-fcgi\n" % bindir in service and
     "\nExecReload=%s/botmatic-fcgi -t\n" % bindir in service and
     re.search(r"(?m)^EnvironmentFile=/\S+/default/botmatic-fcgi$", service)
     and not re.search(r"@[a-z]+@", service),
     "the systemd units are installed in lib/systemd/system with the "
     "configured paths", unitdir, bindir)

# The README's module, as a user would build it.
readme = open(t.src_file("README.md")).read()
m = re.search(r"```c\n(.*?)```", readme, re.S)
src = os.path.join(t.tmp, "hello.c")
with open(src, "w") as f:
    f.write(m.group(1))
pcdir = os.path.dirname(found["botmatic-module.pc"])
penv = dict(env, PKG_CONFIG_PATH=pcdir, PKG_CONFIG_SYSROOT_DIR=dest)
cflags = subprocess.run([PKG, "--cflags", "botmatic-module"], env=penv,
                        stdout=subprocess.PIPE, text=True).stdout.split()
libs = subprocess.run([PKG, "--libs", "jansson"], env=penv,
                      stdout=subprocess.PIPE, text=True).stdout.split()
so = os.path.join(t.tmp, "hello.so")
p = subprocess.run([CC, "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"] +
                   cflags + [src, "-o", so] + libs, env=penv,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
t.ok(p.returncode == 0 and any(c.startswith("-I" + dest) for c in cflags),
     "the README's module builds out of tree against the installed header",
     cflags, p.stdout.decode(errors="replace"))
os.chmod(so, 0o644)

srv = t.server({"BM_AUTH": "any", "BM_MODULES": so})
ngx = t.nginx(srv)
r = ngx.post({"action": "hello_world", "data": {"a": 1}}, token="x")
t.is_(r.json(), {"data": {"hello": "hello_world", "you_sent": {"a": 1}},
                 "type": "data", "success": True},
      "it loads into the server and answers")
r = ngx.post({"action": "hello"}, token="x")
t.is_(r.json()["data"], {"error": "No action \"hello\" defined"},
      "its pattern is anchored")
t.done()
