#!/usr/bin/env python3
"""The Debian package: debian/ builds botmatic-fcgi and botmatic-fcgi-dev
with `dpkg-buildpackage -us -uc -b` from a copy of the source tree
(DEB_BUILD_OPTIONS=nocheck parallel=2), they hold what they should, and
`botmatic-fcgi -t` runs from the package on a good and a bad environment.

Installing it (dpkg -i) changes the machine, so it happens only as root
with BM_TEST_INSTALL_DEB=1 or CI=true (CI runs on a throwaway machine):
then the installed server checks the shipped /etc/default/botmatic-fcgi as
its own user, and when systemd is PID 1 the socket unit starts the service
on the first request, `systemctl reload` succeeds, and fails with a bad
configuration while the service keeps serving.  A package this test
installed is purged at the end.  Without dpkg-buildpackage or the build
dependencies the whole test is SKIP, with the reason."""

import glob
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test(requires=())
for prog in ("dpkg-buildpackage", "dpkg-checkbuilddeps", "dpkg-deb"):
    if not shutil.which(prog):
        bmtest.skip_all("%s not found (apt-get install dpkg-dev debhelper)"
                        % prog)
src = t.srcdir
if not os.path.exists(os.path.join(src, "debian", "control")):
    bmtest.skip_all("no debian/ in the source tree")

env = {k: v for k, v in os.environ.items()
       if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES") and
       not k.startswith(("BM_", "BOTMATIC_"))}
env["DEB_BUILD_OPTIONS"] = "nocheck parallel=2"


# --- a copy of the source tree ---------------------------------------------
def source_files():
    """The tree's files: git's list in a checkout (tracked and new, not
    ignored), else everything but build directories (a dist tree)."""
    r = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached",
                        "--others", "--exclude-standard"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if r.returncode == 0 and r.stdout:
        return [f for f in r.stdout.decode().split("\0")
                if f and os.path.isfile(os.path.join(src, f))]
    out = []
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(("_build", ".git",
                                                        "autom4te.cache"))]
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), src))
    return out


top = os.path.join(t.tmp, "pkg")
tree = os.path.join(top, "botmatic-fcgi")
for f in source_files():
    dst = os.path.join(tree, f)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(os.path.join(src, f), dst)
    # A dist tree is read-only (distcheck); the build writes into the copy.
    mode = os.stat(os.path.join(src, f)).st_mode
    os.chmod(dst, (mode & 0o777) | 0o200)

r = subprocess.run(["dpkg-checkbuilddeps"], cwd=tree, env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
if r.returncode != 0:
    bmtest.skip_all("build dependencies missing: " +
                    r.stdout.decode(errors="replace").strip().splitlines()[-1])

# --- the build ------------------------------------------------------------------
r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree,
                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   timeout=1800)
debs = {os.path.basename(p).split("_")[0]: p
        for p in glob.glob(os.path.join(top, "*.deb"))}
t.ok(r.returncode == 0 and set(debs) >= {"botmatic-fcgi",
                                          "botmatic-fcgi-dev"},
     "dpkg-buildpackage -us -uc -b builds botmatic-fcgi and "
     "botmatic-fcgi-dev", r.stdout.decode(errors="replace")[-4000:])
if "botmatic-fcgi" not in debs:
    t.done()


def contents(deb):
    r = subprocess.run(["dpkg-deb", "-c", deb], stdout=subprocess.PIPE,
                       text=True)
    return {line.split()[-1].lstrip(".") for line in r.stdout.splitlines()}


have = contents(debs["botmatic-fcgi"])
want = ["/usr/bin/botmatic-fcgi", "/usr/bin/botmatic-keys",
        "/usr/bin/botmatic-map", "/usr/bin/botmatic-schema",
        "/lib/systemd/system/botmatic-fcgi.service",
        "/lib/systemd/system/botmatic-fcgi.socket",
        "/etc/default/botmatic-fcgi",
        "/usr/share/man/man8/botmatic-fcgi.8.gz",
        "/usr/share/man/man1/botmatic-keys.1.gz"]
missing = [w for w in want if w not in have]
mods = [p for p in have if p.endswith("/botmatic-fcgi/echo.so")]
t.ok(not missing and mods and not any(p.endswith(".la") for p in have),
     "botmatic-fcgi holds the server, the tools, the modules, the man pages, "
     "the units and /etc/default/botmatic-fcgi", "missing: %r" % missing)
dev = contents(debs.get("botmatic-fcgi-dev", debs["botmatic-fcgi"]))
t.ok("/usr/include/botmatic/module.h" in dev and
     any(p.endswith("/pkgconfig/botmatic-module.pc") for p in dev),
     "botmatic-fcgi-dev holds <botmatic/module.h> and botmatic-module.pc")

# --- -t from the package's files ------------------------------------------------
root = os.path.join(t.tmp, "root")
subprocess.run(["dpkg-deb", "-x", debs["botmatic-fcgi"], root], check=True)
with open(os.path.join(root, "lib/systemd/system/botmatic-fcgi.service")) as f:
    unit = f.read().splitlines()
t.ok(all(l in unit for l in (
    "ExecStart=/usr/bin/botmatic-fcgi", "ExecReload=/usr/bin/botmatic-fcgi -t",
    "EnvironmentFile=/etc/default/botmatic-fcgi", "Type=notify")),
    "the packaged unit runs /usr/bin/botmatic-fcgi, -t on reload, "
    "Type=notify, /etc/default/botmatic-fcgi")


def check_t(binary, extra, user=None):
    e = {k: v for k, v in env.items() if k != "DEB_BUILD_OPTIONS"}
    e.update(extra)
    argv = [binary, "-t"]
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    r = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return r.returncode, r.stdout.decode(errors="replace"), \
        r.stderr.decode(errors="replace")


echo = root + sorted(mods)[0]
good = {"BM_DB_HOME": os.path.join(t.tmp, "db"), "BM_MODULES": echo}
rc, out, err = check_t(os.path.join(root, "usr/bin/botmatic-fcgi"), good)
t.ok(rc == 0 and "configuration ok" in out,
     "the packaged botmatic-fcgi -t: a good environment (with the packaged "
     "echo module) is ok", out, err)
rc, out, err = check_t(os.path.join(root, "usr/bin/botmatic-fcgi"),
                       dict(good, BM_AUTH="sometimes"))
t.ok(rc == 1 and "BM_AUTH" in err, "... a bad one exits 1 naming the "
     "variable", out, err)

# --- installed, when allowed ------------------------------------------------------
allowed = bmtest.IS_ROOT and (os.environ.get("BM_TEST_INSTALL_DEB") == "1" or
                              os.environ.get("CI") == "true")
if not allowed:
    t.skip("not installing: needs root and BM_TEST_INSTALL_DEB=1 or CI=true",
           5)
    t.done()

was = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "botmatic-fcgi"],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                     text=True).stdout
if "install ok installed" not in was:
    t.defer(lambda: subprocess.run(
        ["dpkg", "--purge", "botmatic-fcgi-dev", "botmatic-fcgi"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
r = subprocess.run(["dpkg", "-i", debs["botmatic-fcgi"],
                    debs["botmatic-fcgi-dev"]], env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   timeout=600)
st = os.stat("/var/lib/botmatic-fcgi") if r.returncode == 0 else None
envst = os.stat("/etc/default/botmatic-fcgi") if r.returncode == 0 else None
t.ok(r.returncode == 0 and st and stat.S_IMODE(st.st_mode) == 0o700 and
     stat.S_IMODE(envst.st_mode) == 0o640,
     "dpkg -i installs both; /var/lib/botmatic-fcgi is 0700, "
     "/etc/default/botmatic-fcgi 0640",
     r.stdout.decode(errors="replace")[-2000:])


def default_env():
    """/etc/default/botmatic-fcgi as systemd's EnvironmentFile reads it."""
    e = {}
    with open("/etc/default/botmatic-fcgi") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                e[k] = v
    return e


rc, out, err = check_t("/usr/bin/botmatic-fcgi", default_env(),
                       user="botmatic")
t.ok(rc == 0 and out == "botmatic-fcgi: configuration ok\n",
     "installed: /usr/bin/botmatic-fcgi -t passes on the shipped "
     "/etc/default/botmatic-fcgi, as user botmatic", out, err)
rc, out, err = check_t("/usr/bin/botmatic-fcgi",
                       dict(default_env(), BM_MAX_BODY="huge"),
                       user="botmatic")
t.ok(rc == 1 and "BM_MAX_BODY" in err,
     "installed: -t on a bad environment exits 1 naming the variable", err)


def pid1():
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


if pid1() != "systemd":
    t.skip("systemd is not PID 1 (PID 1 is %s): the unit is not started"
           % pid1(), 2)
    t.done()


def systemctl(*args):
    return subprocess.run(["systemctl"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120)


t.defer(lambda: systemctl("stop", "botmatic-fcgi.service",
                          "botmatic-fcgi.socket"))
systemctl("daemon-reload")
sock = "/run/botmatic-fcgi/botmatic.sock"
r = systemctl("restart", "botmatic-fcgi.socket")
try:
    ans = bmtest.fcgi_webhook(sock, {"action": "nothing", "data": {}},
                              token="deb-token")
    got = ans.status
except OSError as e:
    got = repr(e)
active = bmtest.wait_until(lambda: systemctl(
    "is-active", "botmatic-fcgi.service").returncode == 0, 30)
t.ok(r.returncode == 0 and got == 401 and active,
     "systemd: the socket starts the service on the first request "
     "(an unknown token: 401)", got, r.stdout.decode(errors="replace"))

saved = open("/etc/default/botmatic-fcgi").read()
ok_reload = systemctl("reload", "botmatic-fcgi.service")
try:
    with open("/etc/default/botmatic-fcgi", "a") as f:
        f.write("BM_WORKERS=none\n")
    bad_reload = systemctl("reload", "botmatic-fcgi.service")
finally:
    with open("/etc/default/botmatic-fcgi", "w") as f:
        f.write(saved)
try:
    still = bmtest.fcgi_webhook(sock, {"action": "x"}, token="t").status
except OSError as e:
    still = repr(e)
t.ok(ok_reload.returncode == 0 and bad_reload.returncode != 0 and
     still == 401,
     "systemctl reload succeeds, fails on a bad configuration, and the "
     "service keeps serving", ok_reload.stdout, bad_reload.stdout, still)
t.done()
