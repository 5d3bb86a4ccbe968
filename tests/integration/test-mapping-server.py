#!/usr/bin/env python3
"""The mappings file inside the server: loaded at start with the modules'
transforms, refused at start with the file, entry and reason, reloaded on
SIGHUP, and reachable from modules (bm_host.map)."""
import json
import os
import signal

import bmtest

t = bmtest.Test()
t.plan(10)

GOOD = [
    {"id": True, "botmatic": {"name": "id"},
     "ext": {"name": "ext_id", "transform": "int"}},
    {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}},
    # "shout" is the fixture module's transform.
    {"botmatic": {"name": "nick", "transform": "shout"},
     "ext": {"name": "pseudo"}},
    {"botmatic": {"name": "signup", "type": "date",
                  "transform": {"date": {"from": "sql", "to": "iso8601"}}},
     "ext": {"name": "inscription"}},
]


def write(name, content):
    path = os.path.join(t.tmp, name)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


good = write("map.json", GOOD)
env = {"BM_AUTH": "any", "BM_MODULES": t.module("testmod"),
       "BM_MAPPINGS": good, "BM_EXT_BASE_URL": "http://127.0.0.1:9"}

# Refusals at start: the line names the file, the entry and the reason.
bad = write("bad.json", [GOOD[0], {"botmatic": {"name": "x",
                                                "transform": "nope"},
                                   "ext": {"name": "y"}}])
s = t.server(dict(env, BM_MAPPINGS=bad), name="bad", start=False)
st = s.run_to_exit()
lines = s.grep(r"ERROR .*mapping")
t.ok(st == 1 and any("bad.json: entry 1" in l and "unknown transform" in l
                     and "nope" in l for l in lines),
     "unknown transform refused at start with file, entry and reason",
     "status %r" % st, s.log())

broken = write("broken.json", '[{"id": true,\n "botmatic": }]')
s = t.server(dict(env, BM_MAPPINGS=broken), name="broken", start=False)
st = s.run_to_exit()
t.ok(st == 1 and s.grep(r"broken.json:2:\d+: invalid JSON"),
     "bad JSON refused at start with line and column", s.log())

# The module's transform needs the module: without it the file is refused.
s = t.server(dict(env, BM_MODULES=None, BM_AUTH="any"), name="nomod",
             start=False)
st = s.run_to_exit()
t.ok(st == 1 and s.grep(r"unknown transform \"shout\""),
     "a module's transform is unknown without the module", s.log())

s = t.server(dict(env, BM_EXT_BASE_URL=None), name="noext", start=False)
st = s.run_to_exit()
t.ok(st == 1 and s.grep(r"BM_EXT_BASE_URL: required"),
     "contact sync without an external service refused at start", s.log())

srv = t.server(env)
ngx = t.nginx(srv)
t.ok(srv.grep(r"mapping: .*map.json: 4 fields, ext id key ext_id"),
     "mappings loaded at start", srv.log())

rec = {"ext_id": "12", "prenom": "Zoé", "pseudo": "zed",
       "inscription": "2018-02-09 12:44:26", "other": 1}
r = ngx.post({"action": "map", "data": rec}, token="tok")
t.is_(r.json(), {"data": {"id": "12", "firstname": "Zoé", "nick": "ZED!",
                          "signup": "2018-02-09T12:44:26.000Z"},
                 "type": "data", "success": True},
      "a module maps a record with built-in and module transforms")

r = ngx.post({"action": "map", "data": {"ext_id": 1, "pseudo": 5}},
             token="tok")
t.is_(r.json(), {"data": {"id": 1}, "type": "data", "success": True},
      "a value a transform cannot convert is left out")
t.ok(srv.grep(r"WARN .* mapping: field nick left out"),
     "and that is logged as a warning naming the field")

# SIGHUP reads the file again.
GOOD[1]["botmatic"]["name"] = "first_name"
write("map.json", GOOD)
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"master: reload done", 20, since=mark)
r = ngx.post({"action": "map", "data": {"ext_id": 3, "prenom": "Ana"}},
             token="tok")
t.is_(r.json(), {"data": {"id": 3, "first_name": "Ana"}, "type": "data",
                 "success": True}, "SIGHUP reloads the mappings file")

# A broken file on reload keeps the server running on the old one.
write("map.json", "[")
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"reload failed", 20, since=mark)
r = ngx.post({"action": "map", "data": {"ext_id": 4, "prenom": "Bo"}},
             token="tok")
t.is_(r.status, 200, "a broken file on reload is refused and service goes on")
t.done()
