#!/usr/bin/env python3
"""make bench, the delivery queue (SPEC §9): jobs delivered per second by
the delivery processes against their bound (connections / latency: each
delivery process has one call in flight), with the external service
answering at once, after 50 ms, or never; then bench-jobs, a million jobs
through the store with the memory along the way.  Writes its section of
BENCHMARKS.md between the markers <!-- queue:begin --> and
<!-- queue:end --> (appended when absent), after run-bench.py wrote the
rest.  BENCH_QUICK=1: small counts, indicative only."""
import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import bmtest  # noqa: E402

# The stand-in answers in two writes (head, then body): without TCP_NODELAY
# Nagle holds the body until curl's delayed ACK, 40 ms a call, which would
# be measured instead of the server.
bmtest._StandInHandler.disable_nagle_algorithm = True

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
N = 60 if QUICK else 400
JOBS_ARGS = ["-n", "20000", "-w", "5000"] if QUICK else \
    ["-n", "1000000", "-w", "100000"]
TOKEN = "tok-bench-queue-31d9"
MAPPINGS = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "id_candidate", "transform": "int"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
]


def log(msg):
    sys.stderr.write("bench-queue: %s\n" % msg)
    sys.stderr.flush()


class Ext:
    """Creates contacts after delay seconds; hang: never answers."""

    def __init__(self, delay=0.0, hang=False):
        self.delay, self.hang = delay, hang
        self.lock = threading.Lock()
        self.times = []
        self.next = 1
        self.stop = threading.Event()

    def handle(self, rec):
        if self.hang:
            self.stop.wait(600)
            return 503, {}, 0
        with self.lock:
            self.times.append(time.monotonic())
            i = self.next
            self.next += 1
        return 201, {"id_candidate": i}, self.delay


def events(port, n, first, threads=16):
    """n contact_updated events for unknown contacts (one creation each),
    from threads clients; returns (answered queued, seconds)."""
    ok = [0]
    lock = threading.Lock()

    def client(k):
        for i in range(k, n, threads):
            body = {"event": "contact_updated", "data": {
                "id": first + i, "firstname": "B%d" % i}}
            r = bmtest.http_request(port, "POST", "/", body, token=TOKEN,
                                    timeout=60)
            if r.status == 200 and (r.json() or {}).get("data", {}).get(
                    "queued") is True:
                with lock:
                    ok[0] += 1
    t0 = time.monotonic()
    ths = [threading.Thread(target=client, args=(k,))
           for k in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return ok[0], time.monotonic() - t0


def deliver_case(t, mapfile, delay, procs, hang=False):
    ext = Ext(delay, hang)
    si = t.standin()
    si.route("*", r"/contacts(/.*)?", ext.handle)
    bm = bmtest.botmatic_standin({TOKEN})
    bm.start()
    t.defer(bm.stop)
    env = {"BOTMATIC_BASE_URL": bm.url, "BM_EXT_BASE_URL": si.url,
           "BM_MAPPINGS": mapfile, "BM_SYNC_MODE": "queued",
           "BM_DELIVERY_PROCS": "0", "BM_LOG_LEVEL": "info",
           "BM_WORKERS": "4", "BM_HTTP_TIMEOUT": "2000"}
    name = "q%d-%d%s" % (int(delay * 1000), procs, "-hang" if hang else "")
    srv = t.server(env, name=name)
    ngx = t.nginx(srv, name="nginx-" + name)
    r = ngx.post({"event": "install", "data": {}}, token=TOKEN)
    if r.status != 200:
        raise RuntimeError("install failed: %r" % r)
    answered, secs = events(ngx.port, N, 10 ** 6)
    srv.stop()
    # The same store, now with delivery processes: they drain the queue.
    srv.env["BM_DELIVERY_PROCS"] = str(procs)
    if hang:
        # Inline, so the events below meet the deadline, then the breaker.
        srv.env["BM_SYNC_MODE"] = "inline"
    t0 = time.monotonic()
    srv.start()
    if hang:
        time.sleep(10)
        delivered, rate = 0, 0.0
        a2, s2 = events(ngx.port, N, 2 * 10 ** 6)
        ext.stop.set()
        srv.stop()
        si.stop()
        return {"delay": "never", "procs": procs, "queued": answered,
                "ingest": answered / secs, "delivered": 0, "rate": 0.0,
                "bound": 0.0, "during": a2 / s2, "during_ok": a2}
    bmtest.wait_until(lambda: len(ext.times) >= N, 600, interval=0.05)
    srv.stop()
    si.stop()
    with ext.lock:
        ts = list(ext.times)
    delivered = len(ts)
    span = (ts[-1] - ts[0]) if delivered > 1 else 0
    rate = (delivered - 1) / span if span > 0 else 0.0
    bound = procs / delay if delay > 0 else 0.0
    log("latency %s, %d delivery processes: %d/%d delivered, %.0f jobs/s "
        "(bound %s), startup %.1f s" % (
            "%d ms" % (delay * 1000), procs, delivered, N, rate,
            "%.0f/s" % bound if bound else "CPU", ts[0] - t0 if ts else 0))
    return {"delay": "%d ms" % (delay * 1000), "procs": procs,
            "queued": answered, "ingest": answered / secs,
            "delivered": delivered, "rate": rate, "bound": bound}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(HERE)), "BENCHMARKS.md")
    t = bmtest.Test(requires=("nginx", "server"))
    mapfile = os.path.join(t.tmp, "mappings.json")
    with open(mapfile, "w") as f:
        json.dump(MAPPINGS, f)
    rows = []
    for delay, procs in ((0.0, 1), (0.05, 1), (0.05, 4)):
        rows.append(deliver_case(t, mapfile, delay, procs))
    rows.append(deliver_case(t, mapfile, 0.0, 1, hang=True))
    log("bench-jobs %s" % " ".join(JOBS_ARGS))
    p = subprocess.run([t.build_file("bench-jobs")] + JOBS_ARGS,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=7200)
    jobs_out = p.stdout.decode("utf-8", "replace")
    log(jobs_out.strip().splitlines()[-1] if jobs_out.strip() else
        "bench-jobs printed nothing")
    t.cleanup()

    lines = ["<!-- queue:begin -->", "", "## The delivery queue (SPEC §9)",
             "",
             "`tests/bench/bench-queue.py`, run by `make bench` after the "
             "rest (%s, %s): %d `contact_updated` events for unknown "
             "contacts (one creation on the external service each) queued "
             "through nginx with `BM_SYNC_MODE=queued` and no delivery "
             "process, then the server restarted with `BM_DELIVERY_PROCS` "
             "processes draining the queue; the rate is between the first "
             "and the last creation the stand-in received.  A delivery "
             "process has one call in flight (blocking calls, one job at a "
             "time), so its bound is 1 / latency; more processes, more "
             "calls in flight." % (
                 datetime.datetime.now(datetime.timezone.utc).strftime(
                     "%Y-%m-%d %H:%M UTC"),
                 "BENCH_QUICK" if QUICK else "full", N), "",
             "| external service | delivery processes | events answered "
             "queued | queued/s | jobs delivered | jobs/s | bound "
             "(connections / latency) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %d | %d/%d | %.0f | %d | %.0f | %s |" % (
            "answers " + ("at once" if r["delay"] == "0 ms" else
                          "after " + r["delay"]) if r["delay"] != "never"
            else "never answers (hung)", r["procs"], r["queued"], N,
            r["ingest"], r["delivered"], r["rate"],
            "%.0f/s" % r["bound"] if r["bound"] else
            ("0: nothing can be delivered" if r["delay"] == "never" else
             "the CPU")))
    hung = [r for r in rows if r["delay"] == "never"][0]
    lines += ["", "With the service hung, the delivery process waits out "
              "`BM_HTTP_TIMEOUT` on each attempt, and meanwhile %d/%d more "
              "events, sent with `BM_SYNC_MODE=inline`, were answered "
              "queued (%.0f/s): the first ones after the deadline, the "
              "rest at once once the circuit breaker opened." % (
                  hung["during_ok"], N, hung["during"]), "",
              "A million jobs through the store (`./bench-jobs %s`: added "
              "in rounds, each drained by claim + finish with its pair, "
              "the memory of the process and the size of the database "
              "files after each round; a plain build, no sanitizer):" %
              " ".join(JOBS_ARGS), "", "```"]
    lines += jobs_out.strip().splitlines()
    lines += ["```", "", "<!-- queue:end -->", ""]
    section = "\n".join(lines)
    try:
        with open(out) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if "<!-- queue:begin -->" in text:
        text = re.sub(r"<!-- queue:begin -->.*?<!-- queue:end -->\n?",
                      lambda m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(out, "w") as f:
        f.write(text)
    log("wrote the queue section of %s" % out)


if __name__ == "__main__":
    main()
