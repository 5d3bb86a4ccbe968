#!/usr/bin/env python3
"""make bench-redis (and the end of make bench): the keystore and
`contact_created` figures of BENCHMARKS.md with BM_STORE=redis, a
redis-server on loopback, beside Berkeley DB, measured in the same run
and interleaved (so other load on the machine hits both alike):

- bench-store with each backend (BM_STORE and BM_REDIS_URL read from the
  environment as the server reads them): saves and gets per second from 1
  and 2 processes, and a delete-all of one integration among others;
- wrk through the shipped nginx pieces against one server per backend:
  (c) echo (one store read: the token's installation), (f)
  contact_updated (the store read of the ext id), (g) contact_created (a
  store write per request), with the CPU each group of processes spent,
  redis-server's included.

Redis runs twice: AOF with `appendfsync always` (what the README asks for
when no acknowledged pair may be lost) and `appendfsync everysec`.  Writes
its section of BENCHMARKS.md between <!-- redis:begin --> and
<!-- redis:end --> (appended when absent).  BENCH_QUICK=1: short runs,
indicative only."""
import datetime
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import bmtest  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "run_bench", os.path.join(HERE, "run-bench.py"))
rb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rb)

QUICK = rb.QUICK
RUNS = rb.RUNS
DURATION = rb.DURATION
STORE_ARGS = ["-n", "5000", "-t", "20000", "-i", "2000"] if QUICK else \
    ["-n", "100000", "-t", "1000000", "-i", "100000"]
BACKENDS = [
    # key, label, Redis appendfsync (None: Berkeley DB)
    ("bdb", "Berkeley DB (`BM_DB_DURABILITY=write`)", None),
    ("always", "Redis, AOF `appendfsync always`", "always"),
    ("everysec", "Redis, AOF `appendfsync everysec`", "everysec"),
]
CASES = [c for c in rb.SHIPPED_CASES if c.key in ("c", "f", "g")]


def log(msg):
    sys.stderr.write("bench-redis: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    log(msg)
    sys.exit(1)


def bench_store(t, env):
    """bench-store's figures ({name: number}) and its output."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("BM_")}
    e.update(env)
    p = subprocess.run([t.build_file("bench-store")] + STORE_ARGS, env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=7200)
    text = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        die("bench-store failed (%d):\n%s" % (p.returncode, text))
    figs = {}
    for m in re.finditer(r"^store (save|get) (\d) proc: (\d+)/s$", text,
                         re.M):
        figs["%s%s" % (m.group(1), m.group(2))] = int(m.group(3))
    m = re.search(r"^store delete-all (\d+) of (\d+) pairs: ([\d.]+) s",
                  text, re.M)
    if m:
        figs["delall"] = float(m.group(3))
        figs["delall_n"] = int(m.group(1))
        figs["total"] = int(m.group(2))
    m = re.search(r"^store load (\d+) pairs: ([\d.]+) s", text, re.M)
    if m:
        figs["load"] = float(m.group(2))
    return figs, text


class Nginx(bmtest.Nginx):
    """The stand-in for Botmatic and the external service (nginx answering
    at once, as in run-bench.py) and one server block per backend, each
    with the shipped botmatic-fastcgi.conf and botmatic-errors.conf."""

    def __init__(self, t, servers, ext_port, workers):
        super().__init__(t, servers[0][1].sock, name="nginx")
        piece = t.src_file("nginx", "botmatic-fastcgi.conf")
        errors = t.src_file("nginx", "botmatic-errors.conf")
        blocks = []
        for port, srv in servers:
            blocks.append("""\
    server {
        listen 127.0.0.1:%d;
        server_name localhost;
        include %s;
        location / {
            fastcgi_pass unix:%s;
            include %s;
        }
    }""" % (port, errors, srv.sock, piece))
        temp = os.path.join(self.dir, "temp")
        self.port = ext_port
        with open(self.conf, "w") as f:
            f.write("""\
daemon off;
master_process on;
worker_processes %(workers)d;
%(user)s
error_log %(dir)s/error.log warn;
pid %(dir)s/nginx.pid;
worker_rlimit_nofile 16384;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path %(temp)s/client_body;
    proxy_temp_path %(temp)s/proxy;
    fastcgi_temp_path %(temp)s/fastcgi;
    uwsgi_temp_path %(temp)s/uwsgi;
    scgi_temp_path %(temp)s/scgi;
    server {
        listen 127.0.0.1:%(ext)d;
        default_type application/json;
        location = /api/integrationtokens/validate {
            return 200 '{"success":true}';
        }
        location = /api/properties {
            return 201 '{"success":true}';
        }
        location = /contacts {
            if ($request_method = POST) {
                return 201 '{"id_candidate":"$request_id"}';
            }
            return 200 '[]';
        }
        location /contacts/ {
            return 200 '{}';
        }
        location / {
            return 404 '{"error":"not found"}';
        }
    }
%(blocks)s
}
""" % {"workers": workers, "user": "user root;" if bmtest.IS_ROOT else "",
                "dir": self.dir, "temp": temp, "ext": ext_port,
                "blocks": "\n".join(blocks)})

    def workers(self):
        return bmtest.children_of(self.proc.pid)


def wrk_run(t, wrk, port, script, tag, groups):
    """One wrk run; its BENCH line as a dict with rps and CPU µs/req of
    each group ({name: fn() -> [pids]}, listed before and after the run:
    the dynamic pool may start responders meanwhile) and of wrk."""
    sfile = os.path.join(t.tmp, "wrk-%s.lua" % tag)
    with open(sfile, "w") as f:
        f.write(script)
    argv = [wrk, "-t%d" % rb.WRK_THREADS, "-c%d" % rb.CONNS,
            "-d%ds" % DURATION, "--timeout", "%ds" % rb.WRK_TIMEOUT,
            "-s", sfile, "http://127.0.0.1:%d/" % port]
    la = rb.loadavg()
    before = {g: {p: rb.cpu_ticks(p) for p in fn()}
              for g, fn in groups.items()}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=DURATION + 120)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = p.stdout.decode("utf-8", "replace")
    m = re.search(r"^BENCH (\{.*\})$", text, re.M)
    if p.returncode != 0 or not m:
        die("wrk failed (%d):\n%s" % (p.returncode, text))
    res = json.loads(m.group(1))
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    n = max(res["requests"], 1)
    for g, ticks in before.items():
        # A process gone since (a responder retired) takes its time with
        # it: counted as nothing, never negative.
        spent = sum(max(0, rb.cpu_ticks(q) - ticks.get(q, 0))
                    for q in set(ticks) | set(groups[g]()))
        res["cpu_" + g] = 1e6 * spent / rb.CLK_TCK / n
    res["cpu_wrk"] = 1e6 * ((ru1.ru_utime + ru1.ru_stime) -
                            (ru0.ru_utime + ru0.ru_stime)) / n
    res["errors"] = res["status"] + res["connect"] + res["read"] + \
        res["write"] + res["timeout"]
    res["load"] = la[0]
    return res


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(HERE)), "BENCHMARKS.md")
    t = bmtest.Test(requires=("nginx", "server", "redis"))
    wrk = os.environ.get("BENCH_WRK") or ""
    if not bmtest._executable(wrk):
        die("wrk not found (BENCH_WRK); on Debian: apt-get install wrk")
    if not os.access(t.build_file("bench-store"), os.X_OK):
        die("bench-store not built (make bench-redis builds it)")
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = rb.loadavg()
    keyfile = bmtest.secret_key_file(t)
    redis_version = subprocess.run(
        [bmtest.redis_binary(), "--version"], stdout=subprocess.PIPE
    ).stdout.decode().split(" v=")[-1].split()[0]

    # --- the store alone -----------------------------------------------
    store = {}
    store_text = {}
    for key, label, fsync in BACKENDS:
        env = {}
        if fsync:
            rd = t.redis("redis-store-" + key, appendfsync=fsync)
            env = {"BM_STORE": "redis", "BM_REDIS_URL": rd.url,
                   "BM_SECRET_KEY_FILE": keyfile}
        log("bench-store %s, %s" % (" ".join(STORE_ARGS), label))
        store[key], store_text[key] = bench_store(t, env)
        log("  %r" % store[key])
        if fsync:
            rd.stop()

    # --- the server through nginx -------------------------------------
    mapfile = os.path.join(t.tmp, "mappings.json")
    with open(mapfile, "w") as f:
        json.dump(rb.MAPPINGS, f)
    ext_port = bmtest.free_port()
    ext = "http://127.0.0.1:%d" % ext_port
    base_env = {"BM_WORKERS": str(rb.WORKERS), "BM_LOG_LEVEL": "info",
                "BM_MODULES": t.module("echo"), "BM_MAPPINGS": mapfile,
                "BM_EXT_BASE_URL": ext, "BOTMATIC_BASE_URL": ext,
                "BM_SHUTDOWN_TIMEOUT": "10"}
    servers, redises, ports = {}, {}, {}
    for key, label, fsync in BACKENDS:
        env = dict(base_env)
        if fsync:
            redises[key] = t.redis("redis-" + key, appendfsync=fsync)
            env.update({"BM_STORE": "redis",
                        "BM_REDIS_URL": redises[key].url,
                        "BM_SECRET_KEY_FILE": keyfile})
        servers[key] = t.server(env, name="srv-" + key, start=False)
        ports[key] = bmtest.free_port()
    ngx = Nginx(t, [(ports[k], servers[k]) for k, _, _ in BACKENDS],
                ext_port, os.cpu_count() or 2)
    for key, _, _ in BACKENDS:
        servers[key].start()
    ngx.start()
    for key, _, _ in BACKENDS:
        r = bmtest.http_request(ports[key], "POST", "/", {
            "event": "install", "data": {}}, token=rb.TOKEN, timeout=120)
        r2 = bmtest.http_request(ports[key], "POST", "/", rb.CREATED_FMT
                                 .replace("%d", "101"), token=rb.TOKEN,
                                 timeout=120)
        if r.status != 200 or rb.check_created(r2):
            die("%s: install or contact_created failed: %r %r\n%s" % (
                key, r, r2, servers[key].log()[-2000:]))
        for c in CASES:
            body = c.body if c.dynamic is None else \
                c.dynamic.replace("%d", "7")
            r = bmtest.http_request(ports[key], "POST", "/", body,
                                    token=c.token, timeout=30)
            err = c.check(r) if r.status == c.status else \
                "status %d" % r.status
            if err:
                die("%s, case %s: %s" % (key, c.label, err))
    results = {}
    problems = []
    for run in range(RUNS):
        for c in CASES:
            for key, label, _ in BACKENDS:
                groups = {"resp": servers[key].responders,
                          "nginx": ngx.workers}
                if key in redises:
                    groups["redis"] = lambda k=key: [redises[k].pid]
                base = (run + 1) * 10 ** 10 if c.dynamic else 0
                res = wrk_run(t, wrk, ports[key], rb.lua_case(c, base),
                              "%s-%s" % (key, c.key), groups)
                results.setdefault((key, c.key), []).append(res)
                if res["errors"]:
                    problems.append("%s, %s, run %d: %d errors of %d" % (
                        label, c.label, run + 1, res["errors"],
                        res["requests"]))
                log("%-9s %-40s %8.0f req/s  p99 %7.2f ms  load %.1f%s" % (
                    key, c.label[:40], res["rps"], res["p99"] / 1000,
                    res["load"], "  ERRORS %d" % res["errors"]
                    if res["errors"] else ""))
    warnings = {k: s.grep(r" (WARN|ERROR) ") for k, s in servers.items()}
    load1 = rb.loadavg()
    minutes = (datetime.datetime.now(datetime.timezone.utc) -
               started).total_seconds() / 60
    t.cleanup()

    # --- the section ------------------------------------------------------
    med = rb.med
    L = ["<!-- redis:begin -->", "",
         "## Redis beside Berkeley DB (SPEC §14)", "",
         "`tests/bench/bench-redis.py` (`make bench-redis`, also run at the "
         "end of `make bench`), %s, %.0f minutes, %s; redis-server %s on "
         "loopback (TCP), on the same 2 cores as everything else, AOF on "
         "the same ext4 disk, no RDB snapshots; load average %s at the "
         "start, %s at the end." % (
             started.strftime("%Y-%m-%d %H:%M UTC"), minutes,
             "BENCH_QUICK" if QUICK else "full",
             redis_version, " ".join("%.2f" % x for x in load0),
             " ".join("%.2f" % x for x in load1)), "",
         "### The keystore alone", "",
         "`./bench-store %s` once per backend (BM_STORE and BM_REDIS_URL "
         "from the environment, as the server reads them): each save is one "
         "atomic change of both directions (a Berkeley DB transaction; a "
         "Lua script on Redis), each get one read; the 2-process figures "
         "are the sum of two processes." % " ".join(STORE_ARGS), "",
         "| backend | save, 1 proc | get, 1 proc | save, 2 procs | "
         "get, 2 procs | delete-all of one integration |",
         "|---|---:|---:|---:|---:|---:|"]
    for key, label, _ in BACKENDS:
        s = store[key]
        L.append("| %s | %s/s | %s/s | %s/s | %s/s | %s |" % (
            label, *(rb.fmt_int(s.get(k, 0)) for k in
                     ("save1", "get1", "save2", "get2")),
            "%s pairs of %s in %.2f s" % (
                rb.fmt_int(s.get("delall_n", 0)),
                rb.fmt_int(s.get("total", 0)), s.get("delall", 0))
            if "delall" in s else "-"))
    L += ["", "### Through nginx: the server with each backend", "",
          "Medians of %d run(s) of %d s, %d connections, the backends "
          "interleaved run by run; bodies as in the summary's (c), (f) and "
          "(g); `BM_WORKERS=%d`.  CPU µs/req as in the summary, plus "
          "redis-server's own." % (RUNS, DURATION, rb.CONNS, rb.WORKERS), "",
          "| case | backend | req/s | vs Berkeley DB | p50 ms | p99 ms | "
          "errors | CPU µs/req: responders | redis-server | nginx | wrk |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in CASES:
        bdb = med([r["rps"] for r in results[("bdb", c.key)]])
        for key, label, _ in BACKENDS:
            rs = results[(key, c.key)]
            rps = med([r["rps"] for r in rs])
            L.append("| %s | %s | %s | %s | %.2f | %.2f | %d | %.0f | %s | "
                     "%.0f | %.0f |" % (
                         c.label, label, rb.fmt_int(rps),
                         "—" if key == "bdb" else "%.0f%%" % (
                             100.0 * rps / bdb),
                         med([r["p50"] for r in rs]) / 1000,
                         med([r["p99"] for r in rs]) / 1000,
                         sum(r["errors"] for r in rs),
                         med([r["cpu_resp"] for r in rs]),
                         "%.0f" % med([r["cpu_redis"] for r in rs])
                         if key != "bdb" else "—",
                         med([r["cpu_nginx"] for r in rs]),
                         med([r["cpu_wrk"] for r in rs])))
    L += ["", "Errors: %s.  Warnings or errors in the servers' logs: %s." % (
        "; ".join(problems) if problems else "none",
        ", ".join("%s %d" % (k, len(v)) for k, v in warnings.items())), ""]
    for k, v in warnings.items():
        kinds = {}
        for line in v:
            # One example of each kind of line (numbers masked).
            kinds.setdefault(re.sub(r"\d+", "N", line.split(" ", 2)[-1]),
                             line)
        if kinds:
            L += ["", "%s's server logged, by kind (one example each):" % k,
                  "", "```"] + [ex[:300] for ex in kinds.values()][:8] + \
                ["```", ""]
    L += ["<!-- redis:gap -->", "", "bench-store's output:", "", "```"]
    for key, label, _ in BACKENDS:
        L.append("# " + label)
        L += [ln for ln in store_text[key].strip().splitlines()
              if not ln.startswith("store write commits")]
    L += ["```", "", "<!-- redis:end -->", ""]
    section = "\n".join(L)
    try:
        with open(out) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if "<!-- redis:begin -->" in text:
        # The written explanation of the gap (after the redis:gap marker,
        # by hand) is kept when the figures are measured again.
        old = re.search(r"<!-- redis:gap -->\n(.*?)\nbench-store's output:",
                        text, re.S)
        if old:
            section = section.replace(
                "<!-- redis:gap -->\n\n",
                "<!-- redis:gap -->\n" + old.group(1) + "\n", 1)
        text = re.sub(r"<!-- redis:begin -->.*?<!-- redis:end -->\n?",
                      lambda m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(out, "w") as f:
        f.write(text)
    log("wrote the Redis section of %s" % out)


if __name__ == "__main__":
    main()
