#!/usr/bin/env python3
"""Contact sync through an external consumer a module registers
(BM_EXT_CONSUMER=module:<name>): the built-in handlers call the module's
functions and keep the keystore in step; an unknown consumer name stops the
start."""
import json
import os
import subprocess

import bmtest

t = bmtest.Test()
t.plan(7)
TOKEN = "tok-consumer-1"
bm = t.botmatic({TOKEN})
bm.route("PATCH", r"/api/contacts/.*", 200, {"success": True})
mapfile = os.path.join(t.tmp, "map.json")
with open(mapfile, "w") as f:
    json.dump([{"id": True, "botmatic": {"name": "id"},
                "ext": {"name": "id_candidate"}},
               {"botmatic": {"name": "email"}, "ext": {"name": "email"}},
               {"botmatic": {"name": "firstname"}, "ext": {"name": "prenom"}}],
              f)
env = {"BOTMATIC_BASE_URL": bm.url, "BM_MAPPINGS": mapfile,
       "BM_EXT_CONSUMER": "module:memory", "BM_WORKERS": "1",
       "BM_MODULES": t.module("testmod")}

s = t.server(dict(env, BM_EXT_CONSUMER="module:nothere"), name="bad",
             start=False)
st = s.run_to_exit()
t.ok(st == 1 and s.grep(r"BM_EXT_CONSUMER: no loaded module registered a "
                        r"consumer named \"nothere\""),
     "an unknown consumer stops the start, named", s.log())

srv = t.server(env)
ngx = t.nginx(srv)


def ev(name, data):
    return ngx.post({"event": name, "data": data}, token=TOKEN).json()


def keys(*a):
    p = subprocess.run([t.build_file("botmatic-keys"), "-d", srv.db] +
                       list(a), stdout=subprocess.PIPE, timeout=60)
    return p.stdout.decode().strip()


t.is_(ev("install", {})["success"], True, "install")
r = ev("contact_created", {"id": 7, "email": "a@b.c", "firstname": "A"})
t.is_(r, {"data": {"success": True, "id": "m1"}, "type": "data",
          "success": True}, "contact_created: created by the module's consumer")
t.is_(keys("get-ext", TOKEN, "7"), "m1", "pair saved")
r = ev("contact_updated", {"id": 7, "email": "a@b.c", "firstname": "B"})
t.is_(r["success"], True, "contact_updated through the module's consumer")
r = ev("contact_deleted", {"contact_id": 7})
calls = ngx.post({"action": "consumer_calls"}, token=TOKEN).json()["data"]
t.ok(r["success"] is True and keys("get-ext", TOKEN, "7") == "" and
     calls["contacts"] == {}, "contact_deleted through it; pair gone", r,
     calls)
t.is_({k: v for k, v in calls["calls"].items() if k != "consumer_calls"},
      {"get_by_email": 1, "create": 1, "update": 1, "del": 1},
      "every call went to the module's consumer")
t.done()
