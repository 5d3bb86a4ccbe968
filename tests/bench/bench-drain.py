#!/usr/bin/env python3
"""make bench-drain: a long queue delivered end to end, and the memory of
the delivery process along the way (issue 10: "no growth of memory over a
million queued jobs delivered").  The server queues every contact event
(BM_SYNC_MODE=queued) sent through nginx by 16 clients while one delivery
process (BM_DELIVERY_CONCURRENCY 64) delivers them to a stand-in that
answers at once; the delivery process's VmRSS is read every
BENCH_DRAIN_STEP jobs delivered.  BENCH_DRAIN_N jobs in all (default
1,000,000; about ten minutes here).  Prints a Markdown table on stdout and
writes nothing else."""
import importlib.util
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import bmtest  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "bench_queue", os.path.join(HERE, "bench-queue.py"))
bq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bq)

N = int(os.environ.get("BENCH_DRAIN_N", "1000000"))
STEP = int(os.environ.get("BENCH_DRAIN_STEP", str(max(N // 10, 1))))


def rss_parts(pid):
    """(RssAnon, RssFile + RssShmem) of pid in kB: the process's own memory,
    and the pages of the shared Berkeley DB regions it has touched (bounded
    by the cache size), told apart."""
    anon = shared = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
                elif line.startswith(("RssFile:", "RssShmem:")):
                    shared += int(line.split()[1])
    except OSError:
        pass
    return anon, shared


def main():
    t = bmtest.Test(requires=("nginx", "server"))
    mapfile = os.path.join(t.tmp, "mappings.json")
    with open(mapfile, "w") as f:
        json.dump(bq.MAPPINGS, f)
    ext = bq.Ext(0.0)
    si = t.standin()
    si.route("*", r"/contacts(/.*)?", ext.handle)
    bm = bmtest.botmatic_standin({bq.TOKEN})
    bm.start()
    t.defer(bm.stop)
    env = {"BOTMATIC_BASE_URL": bm.url, "BM_EXT_BASE_URL": si.url,
           "BM_MAPPINGS": mapfile, "BM_SYNC_MODE": "queued",
           "BM_DELIVERY_PROCS": "1", "BM_DELIVERY_CONCURRENCY": "64",
           "BM_LOG_LEVEL": "info", "BM_WORKERS": "4",
           "BM_HTTP_TIMEOUT": "10000"}
    srv = t.server(env, name="drain")
    ngx = t.nginx(srv, name="nginx-drain")
    r = ngx.post({"event": "install", "data": {}}, token=bq.TOKEN)
    if r.status != 200:
        raise RuntimeError("install failed: %r" % r)
    bmtest.wait_until(lambda: bq.delivery_pids(srv), 30)
    pids = bq.delivery_pids(srv)
    pid = pids[0] if len(pids) == 1 else None
    sender = threading.Thread(target=lambda: bq.events(ngx.port, N, 10 ** 7))
    t0 = time.monotonic()
    sender.start()
    rows = []
    nxt = STEP
    while True:
        with ext.lock:
            done = len(ext.times)
        if done >= nxt or (done >= N):
            anon, shared = rss_parts(pid) if pid else (0, 0)
            rows.append((done, time.monotonic() - t0, anon, shared))
            bq.log("%d delivered, %.0f s, delivery process: %d kB own, "
                   "%d kB shared/file" % rows[-1])
            nxt += STEP
        if done >= N:
            break
        if time.monotonic() - t0 > 7200:
            bq.log("stopped after two hours at %d" % done)
            break
        time.sleep(0.2)
    sender.join()
    srv.stop()
    si.stop()
    t.cleanup()
    print("| jobs delivered | seconds | own memory, RssAnon (kB) | "
          "shared regions and files, RssFile+RssShmem (kB) |")
    print("|---:|---:|---:|---:|")
    for done, secs, anon, shared in rows:
        print("| %d | %.0f | %d | %d |" % (done, secs, anon, shared))


if __name__ == "__main__":
    main()
