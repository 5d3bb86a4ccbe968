#!/usr/bin/env python3
"""The outbound HTTP clients (SPEC sections 4 and 5) against stand-ins on
loopback, through tests/unit/outbound-driver (one call per run, or N in one
process with "repeat N").

Botmatic API client: every call's request as Botmatic receives it (method,
path, query, headers, the JSON body byte for byte), every success shape,
and every failure: the service down, 500, a timeout, a body that is not
JSON, 404, a 201 without an id, an answer over the size limit; token
validation; one TCP connection for several calls.
Generic REST consumer: the same for the six operations, paths and methods
overridden, BM_EXT_ID_FIELD, BM_EXT_LIST_FIELD, BM_EXT_AUTH_HEADER, and a
JSON Web Token fetched once and reused, refetched after it expires or after
a 401 (the call then retried once).  No token or JWT in any log line."""

import base64
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bmtest  # noqa: E402

t = bmtest.Test(requires=())
DRIVER = t.build_file("tests", "unit", "outbound-driver")
if not os.access(DRIVER, os.X_OK):
    bmtest.skip_all("tests/unit/outbound-driver not built (make check "
                    "builds it)")

TOKEN = "tok-Secret-8d41c7e2"          # the Botmatic bearer token
ANSWER_MAX = 8 * 1024 * 1024           # APP_HTTP_ANSWER_MAX
STDERR = []                            # every run's stderr, checked at the end
SECRETS = [TOKEN]                      # must appear in none of it


class Scripted(bmtest.StandIn):
    """A StandIn whose answers a test sets per (method, path) in .script:
    a (status, body[, delay]) tuple, or a function of the Recorded request
    returning one.  It also counts the TCP connections it accepts (each
    one's client address in .accepted), to show keep-alive."""

    def __init__(self):
        super().__init__()
        self.script = {}
        self.accepted = []
        self.route("*", r".*", self._answer)

    def _answer(self, rec):
        a = self.script.get((rec.method, rec.path))
        if a is None:
            return 599, {"error": "nothing scripted"}, 0
        if callable(a):
            a = a(rec)
        return a if len(a) == 3 else (a[0], a[1], 0)

    def start(self):
        super().start()
        orig = self.httpd.process_request

        def counting(request, client_address):
            with self.lock:
                self.accepted.append(client_address)
            orig(request, client_address)
        self.httpd.process_request = counting
        t.defer(self.stop)
        return self

    def reset(self, **script):
        self.clear()
        with self.lock:
            self.accepted.clear()
        self.script = {}

    def connections(self):
        with self.lock:
            return len(self.accepted)


bm = Scripted().start()
ext = Scripted().start()
DOWN = "http://127.0.0.1:%d" % bmtest.free_port()   # nothing listens


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BM_") and not k.startswith("BOTMATIC_")}
    env.update({"BM_DB_HOME": t.tmp, "BOTMATIC_BASE_URL": bm.url,
                "BM_EXT_BASE_URL": ext.url, "BM_HTTP_TIMEOUT": "5000",
                "BM_HTTP_CONNECT_TIMEOUT": "2000", "BM_LOG_LEVEL": "debug"})
    env.update(extra)
    return env


def drive(args, env=None, repeat=None):
    """Runs the driver; returns the list of results it printed (one per
    call).  A run that breaks (exit status, not JSON) is a failed point."""
    argv = [DRIVER] + (["repeat", str(repeat)] if repeat else []) + args
    p = subprocess.run(argv, env=env or base_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    STDERR.append(err)
    try:
        out = [json.loads(line) for line in
               p.stdout.decode("utf-8").splitlines() if line.strip()]
    except ValueError:
        out = None
    if p.returncode != 0 or out is None or len(out) != (repeat or 1):
        t.ok(False, "driver run %r" % (args,), "exit %d" % p.returncode,
             "stdout: %r" % p.stdout[:500], "stderr: %s" % err[-2000:])
        return [None] * (repeat or 1)
    return out


def one(args, env=None):
    return drive(args, env)[0]


def body_is(rec, text, name):
    """The request body is exactly text (JSON.stringify's bytes)."""
    return t.is_(rec.body if rec else None, text.encode("utf-8"), name)


def headers_ok(rec, name, auth="Bearer " + TOKEN, ctype=True):
    """Authorization, Accept and (for a body) Content-Type as sent."""
    got = None if rec is None else (
        rec.headers.get_all("Authorization"), rec.headers.get("Accept"),
        rec.headers.get("Content-Type") if ctype else None)
    want = ([auth] if auth else None, "application/json",
            "application/json" if ctype else None)
    return t.is_(got, want, name)


def only(srv, method=None, path=None):
    """The one request srv received (None, reported, otherwise)."""
    got = srv.received(method, path)
    if len(got) != 1:
        t.diag("expected one request, got %r" % (got,))
        return None
    return got[0]


def failure(result, error, status, name):
    """result is {"success":false,"error":error[,"status":status]}; error
    may be a function checking the text."""
    ok = isinstance(result, dict) and result.get("success") is False and \
        (error(result.get("error", "")) if callable(error) else
         result.get("error") == error) and \
        result.get("status") == status and \
        set(result) <= {"success", "error", "status"}
    return t.ok(ok, name, "got: %r" % (result,),
                "want error %s, status %r" % (
                    "<check>" if callable(error) else repr(error), status))


# ===================================================== Botmatic API client
C = "/api/contacts"

# --- create one contact
bm.reset()
bm.script[("POST", C)] = (201, {"id": 42, "other": "x"})
r = one(["botmatic", "contact_create", TOKEN,
         '{"firstname":"Zoë","score":1.50,"tags":["a/b"],"big":1e21}'])
t.is_(r, {"success": True, "id": 42}, "contact_create: 201 -> the id")
rec = only(bm, "POST", C)
body_is(rec, '{"contact":{"firstname":"Zoë","score":1.5,"tags":["a/b"],'
        '"big":1e+21}}', "contact_create: body as JSON.stringify")
headers_ok(rec, "contact_create: bearer token, Accept, Content-Type")
t.is_(rec and rec.query, {}, "contact_create: no query string")

bm.script[("POST", C)] = (201, {"id": "c-77"})
t.is_(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
      {"success": True, "id": "c-77"}, "contact_create: a string id as sent")
bm.script[("POST", C)] = (201, {"ok": True})
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        lambda e: e.startswith("invalid answer"), 201,
        "contact_create: a 201 without an id fails")
bm.script[("POST", C)] = (201, {"id": None})
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        lambda e: e.startswith("invalid answer"), 201,
        "contact_create: a null id fails")
bm.script[("POST", C)] = (200, {"id": 1})
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        "HTTP 200", 200, "contact_create: 200 is not Botmatic's 201")
bm.script[("POST", C)] = (201, "<html>created</html>")
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        lambda e: e.startswith("invalid answer: not JSON"), 201,
        "contact_create: a body that is not JSON")
bm.script[("POST", C)] = (500, {"error": "boom"})
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        "HTTP 500", 500, "contact_create: 500")
bm.script[("POST", C)] = (422, {"errors": ["email"]})
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        "HTTP 422", 422, "contact_create: 422")
bm.reset()
failure(one(["botmatic", "contact_create", TOKEN, '[1]']),
        lambda e: e.startswith("invalid argument"), None,
        "contact_create: an array is refused without a request")
failure(one(["botmatic", "contact_create", "", '{"a":1}']),
        "no token", None, "contact_create: no token, no request")
failure(one(["botmatic", "contact_create", "tok\r\nX-Evil: 1", '{"a":1}']),
        "invalid token", None, "contact_create: a token with CR LF refused")
t.is_(bm.received(), [], "argument failures sent nothing")

# --- create many
bm.reset()
answers = [{"success": True, "id": 1}, {"success": False, "error": "dup"}]
bm.script[("POST", C)] = (201, {"contacts": answers})
r = one(["botmatic", "contacts_create", TOKEN, '[{"a":1},{"b":"2"}]'])
t.is_(r, {"success": True, "contacts": answers},
      "contacts_create: 201 -> the per-contact results")
rec = only(bm, "POST", C)
body_is(rec, '{"contacts":[{"a":1},{"b":"2"}]}', "contacts_create: body")
headers_ok(rec, "contacts_create: headers")
bm.script[("POST", C)] = (201, {"contacts": answers[:1]})
failure(one(["botmatic", "contacts_create", TOKEN, '[{"a":1},{"b":"2"}]']),
        lambda e: e.startswith("invalid answer"), 201,
        "contacts_create: an answer of another length fails")
bm.script[("POST", C)] = (201, {"contacts": [1, 2]})
failure(one(["botmatic", "contacts_create", TOKEN, '[{"a":1},{"b":"2"}]']),
        lambda e: e.startswith("invalid answer"), 201,
        "contacts_create: non-object elements fail")
bm.script[("POST", C)] = (201, {"created": 2})
failure(one(["botmatic", "contacts_create", TOKEN, '[{"a":1},{"b":"2"}]']),
        lambda e: e.startswith("invalid answer"), 201,
        "contacts_create: no contacts array fails")

# --- update one
bm.reset()
bm.script[("PATCH", C + "/123")] = (200, {"success": True})
r = one(["botmatic", "contact_update", TOKEN, "123", '{"city":"Lyon"}'])
t.is_(r, {"success": True}, "contact_update: 200")
rec = only(bm, "PATCH", C + "/123")
body_is(rec, '{"contact_id":123,"contact":{"city":"Lyon"}}',
        "contact_update: contact_id a number for a decimal id")
headers_ok(rec, "contact_update: headers")
bm.script[("PATCH", C + "/ab%20c%2Fd%3F")] = (200, "")
t.is_(one(["botmatic", "contact_update", TOKEN, "ab c/d?", '{"x":true}']),
      {"success": True}, "contact_update: 200 with an empty body")
body_is(only(bm, "PATCH", C + "/ab%20c%2Fd%3F"),
        '{"contact_id":"ab c/d?","contact":{"x":true}}',
        "contact_update: id URL-escaped in the path, a string otherwise")
bm.reset()
bm.script[("PATCH", C + "/0123")] = (200, {})
one(["botmatic", "contact_update", TOKEN, "0123", '{}'])
body_is(only(bm, "PATCH", C + "/0123"), '{"contact_id":"0123","contact":{}}',
        "contact_update: a leading zero keeps the id a string")
bm.script[("PATCH", C + "/9")] = (404, {"error": "not found"})
failure(one(["botmatic", "contact_update", TOKEN, "9", '{}']),
        "resource not found", 404, "contact_update: 404 -> not found")
bm.script[("PATCH", C + "/9")] = (204, "")
failure(one(["botmatic", "contact_update", TOKEN, "9", '{}']),
        "HTTP 204", 204, "contact_update: only 200 is success")

# --- update many
bm.reset()
bm.script[("PATCH", C)] = (200, {"success": True})
items = '[{"contact_id":1,"contact_props":{"a":"b"}}]'
t.is_(one(["botmatic", "contacts_update", TOKEN, items]), {"success": True},
      "contacts_update: 200")
rec = only(bm, "PATCH", C)
body_is(rec, '{"contacts":' + items + '}', "contacts_update: body")
headers_ok(rec, "contacts_update: headers")
bm.reset()
bm.script[("PATCH", C)] = (200, {"success": True})
one(["botmatic", "contacts_update", TOKEN,
     '[{"contact_id":"7","contact_props":{}},'
     '{"contact_id":"007","contact_props":{}}]'])
body_is(only(bm, "PATCH", C), '{"contacts":[{"contact_id":7,"contact_props":'
        '{}},{"contact_id":"007","contact_props":{}}]}',
        "contacts_update: a decimal string id goes as an integer, as in "
        "contact_update; a leading zero stays a string")

# --- delete
bm.reset()
bm.script[("DELETE", C + "/7")] = (204, b"")
t.is_(one(["botmatic", "contact_delete", TOKEN, "7"]), {"success": True},
      "contact_delete: 204")
rec = only(bm, "DELETE", C + "/7")
t.is_(rec and rec.body, b"", "contact_delete: no body")
headers_ok(rec, "contact_delete: headers", ctype=False)
bm.script[("DELETE", C + "/7")] = (404, {})
failure(one(["botmatic", "contact_delete", TOKEN, "7"]),
        "resource not found", 404, "contact_delete: 404 -> not found")
bm.script[("DELETE", C + "/7")] = (200, {})
failure(one(["botmatic", "contact_delete", TOKEN, "7"]),
        "HTTP 200", 200, "contact_delete: only 204 is success")

# --- properties
bm.reset()
bm.script[("POST", "/api/properties")] = (201, {"success": True})
props = '[{"name":"city","type":"text"},{"name":"age","type":"number"}]'
t.is_(one(["botmatic", "properties_create", TOKEN, props]),
      {"success": True}, "properties_create: 201")
rec = only(bm, "POST", "/api/properties")
body_is(rec, '{"properties":' + props + '}', "properties_create: body")
headers_ok(rec, "properties_create: headers")
bm.script[("POST", "/api/properties")] = (404, {})
failure(one(["botmatic", "properties_create", TOKEN, props]), "HTTP 404",
        404, "properties_create: 404 on a collection is HTTP 404")

# --- campaign event
bm.reset()
EV = "/api/campaigns/execute-event"
bm.script[("POST", EV)] = (200, {"success": True})
t.is_(one(["botmatic", "campaign_event", TOKEN, "signed_up", '[5,"6"]']),
      {"success": True}, "campaign_event: 200")
rec = only(bm, "POST", EV)
body_is(rec, '{"event_name":"signed_up","contacts":[5,"6"]}',
        "campaign_event: body")
headers_ok(rec, "campaign_event: headers")
bm.script[("POST", EV)] = (201, {})
failure(one(["botmatic", "campaign_event", TOKEN, "e", '[]']), "HTTP 201",
        201, "campaign_event: only 200 is success")

# --- bots (js-api-client's getAllBots, getBot, updateBot)
bm.reset()
BOTS = [{"id": 1, "name": "One"}, {"id": 2, "name": "Two"}]
bm.script[("GET", "/api/bots")] = (200, BOTS)
t.is_(one(["botmatic", "bots_list", TOKEN]), {"success": True, "bots": BOTS},
      "bots_list: 200, the answer as \"bots\"")
rec = only(bm, "GET", "/api/bots")
t.is_(rec and (rec.query, rec.body), ({"page_size": ["1000"]}, b""),
      "bots_list: GET /api/bots?page_size=1000, no body")
headers_ok(rec, "bots_list: headers", ctype=False)
bm.script[("GET", "/api/bots")] = (200, b"<html>")
failure(one(["botmatic", "bots_list", TOKEN]),
        lambda e: e.startswith("invalid answer"), 200,
        "bots_list: an answer that is not JSON is a failure")
bm.reset()
bm.script[("GET", "/api/bots/42")] = (200, {"id": 42, "name": "Bot"})
t.is_(one(["botmatic", "bot_get", TOKEN, "42"]),
      {"success": True, "bot": {"id": 42, "name": "Bot"}}, "bot_get: 200")
rec = only(bm, "GET", "/api/bots/42")
headers_ok(rec, "bot_get: headers", ctype=False)
bm.script[("GET", "/api/bots/43")] = (404, {})
failure(one(["botmatic", "bot_get", TOKEN, "43"]), "resource not found", 404,
        "bot_get: 404 -> not found")
bm.reset()
bm.script[("GET", "/api/bots/a%2Fb")] = (200, {"id": "a/b"})
t.is_(one(["botmatic", "bot_get", TOKEN, "a/b"]),
      {"success": True, "bot": {"id": "a/b"}},
      "bot_get: the id is percent-encoded in the path")
bm.reset()
bm.script[("PATCH", "/api/bots/42")] = (200, {"id": 42, "name": "New"})
t.is_(one(["botmatic", "bot_update", TOKEN, "42", '{"name":"New"}']),
      {"success": True, "bot": {"id": 42, "name": "New"}},
      "bot_update: 200")
rec = only(bm, "PATCH", "/api/bots/42")
body_is(rec, '{"bot":{"name":"New"},"is_draft":true}',
        "bot_update: body {bot, is_draft:true}")
headers_ok(rec, "bot_update: headers")
bm.script[("PATCH", "/api/bots/42")] = (200, b"")
t.is_(one(["botmatic", "bot_update", TOKEN, "42", '{"name":"New"}']),
      {"success": True}, "bot_update: an empty 200 is success")
failure(one(["botmatic", "bot_update", TOKEN, "42", '[1]']),
        "invalid argument: bot not an object", None,
        "bot_update: a bot that is not an object is not sent")
bm.script[("PATCH", "/api/bots/42")] = (500, {})
failure(one(["botmatic", "bot_update", TOKEN, "42", '{}']), "HTTP 500", 500,
        "bot_update: 500 -> HTTP 500")

# --- transport failures, bounds
failure(one(["botmatic", "contact_delete", TOKEN, "7"],
            base_env(BOTMATIC_BASE_URL=DOWN)),
        lambda e: "connect" in e.lower(), None,
        "Botmatic down: curl's message, no status")
bm.reset()
bm.script[("POST", EV)] = (200, {"success": True}, 1.5)
t0 = time.monotonic()
r = one(["botmatic", "campaign_event", TOKEN, "e", '[1]'],
        base_env(BM_HTTP_TIMEOUT="300"))
elapsed = time.monotonic() - t0
failure(r, lambda e: "timed out" in e.lower(), None,
        "Botmatic too slow: the timeout's message")
t.ok(elapsed < 1.4, "BM_HTTP_TIMEOUT=300 gives up early",
     "took %.2fs" % elapsed)
bm.script[("POST", C)] = (201, b" " * (ANSWER_MAX + 1))
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
        lambda e: e.startswith("answer larger than"), None,
        "an answer over APP_HTTP_ANSWER_MAX is refused")
bm.script[("POST", C)] = (201, b'{"id":9}' + b" " * (ANSWER_MAX - 8))
t.is_(one(["botmatic", "contact_create", TOKEN, '{"a":1}']),
      {"success": True, "id": 9}, "an answer of exactly the limit is read")
bm.script[("POST", C)] = (302, {"id": 1})
failure(one(["botmatic", "contact_create", TOKEN, '{"a":1}']), "HTTP 302",
        302, "a redirect is not followed")

# --- token validation (refactored onto the shared request code)
bm.reset()
bm.script[("POST", "/api/integrationtokens/validate")] = \
    lambda rec: (200, {"success": rec.form().get("token") == [TOKEN]})
t.is_(one(["botmatic", "validate", TOKEN]), {"valid": True},
      "validate: a token Botmatic knows")
t.is_(one(["botmatic", "validate", "tok+other&x=1"]), {"valid": False},
      "validate: a token it refuses")
recs = bm.received("POST", "/api/integrationtokens/validate")
t.is_([r.form() for r in recs], [{"token": [TOKEN]},
                                 {"token": ["tok+other&x=1"]}],
      "validate: form field token, URL-encoded")

# --- keep-alive: one connection for several calls in one process
bm.reset()
bm.script[("DELETE", C + "/7")] = (204, b"")
out = drive(["botmatic", "contact_delete", TOKEN, "7"], repeat=5)
t.is_(out, [{"success": True}] * 5, "repeat 5: five successes")
t.is_((len(bm.received()), bm.connections()), (5, 1),
      "Botmatic: five calls over one TCP connection")


# ================================================ generic REST consumer
def ext_env(**extra):
    return base_env(**extra)


# --- create
ext.reset()
ext.script[("POST", "/contacts")] = (201, {"id": "e-1"})
r = one(["ext", "create", '{"email":"a@b.c","n":[1,2.5],"o":{"k":null}}'])
t.is_(r, {"success": True, "id": "e-1"}, "ext create: 201 -> the id")
rec = only(ext, "POST", "/contacts")
body_is(rec, '{"email":"a@b.c","n":[1,2.5],"o":{"k":null}}',
        "ext create: the contact is the body")
headers_ok(rec, "ext create: Accept, Content-Type, no Authorization",
           auth=None)
ext.script[("POST", "/contacts")] = (200, {"id": 17})
t.is_(one(["ext", "create", '{}']), {"success": True, "id": 17},
      "ext create: 200 with an integer id")
ext.script[("POST", "/contacts")] = (201, {"ref": "r-9", "id": 1})
t.is_(one(["ext", "create", '{}'], ext_env(BM_EXT_ID_FIELD="ref")),
      {"success": True, "id": "r-9"}, "ext create: BM_EXT_ID_FIELD")
ext.script[("POST", "/contacts")] = (201, {"id": 3})
t.is_(one(["ext", "create", '{}'], ext_env(BM_EXT_ID_FIELD="ref")),
      {"success": True, "id": 3}, "ext create: else \"id\"")
ext.script[("POST", "/contacts")] = (201, {"name": "x"})
failure(one(["ext", "create", '{}']), lambda e: e.startswith(
        "invalid answer"), 201, "ext create: a 201 without an id fails")
ext.script[("POST", "/contacts")] = (201, [{"id": 1}])
failure(one(["ext", "create", '{}']), lambda e: e.startswith(
        "invalid answer"), 201, "ext create: an array is not the answer")
ext.script[("POST", "/contacts")] = (202, {"id": 1})
failure(one(["ext", "create", '{}']), "HTTP 202", 202,
        "ext create: 202 is not 200/201")
ext.script[("POST", "/contacts")] = (404, {})
failure(one(["ext", "create", '{}']), "HTTP 404", 404,
        "ext create: 404 names a wrong path, not a missing contact")

# --- get
ext.reset()
ext.script[("GET", "/contacts/e%201%2F2")] = (200, {"id": "e 1/2", "n": 1})
t.is_(one(["ext", "get", "e 1/2"]),
      {"success": True, "contact": {"id": "e 1/2", "n": 1}},
      "ext get: 200 -> the contact, id URL-encoded in the path")
rec = only(ext, "GET", "/contacts/e%201%2F2")
t.is_(rec and rec.body, b"", "ext get: no body")
ext.script[("GET", "/contacts/e%201%2F2")] = (404, {"error": "nope"})
failure(one(["ext", "get", "e 1/2"]), "resource not found", 404,
        "ext get: 404 -> resource not found")
ext.script[("GET", "/contacts/e%201%2F2")] = (200, "not json {")
failure(one(["ext", "get", "e 1/2"]),
        lambda e: e.startswith("invalid answer: not JSON"), 200,
        "ext get: a body that is not JSON")
ext.script[("GET", "/contacts/e%201%2F2")] = (200, [1])
failure(one(["ext", "get", "e 1/2"]),
        lambda e: e.startswith("invalid answer"), 200,
        "ext get: not an object")
ext.script[("GET", "/contacts/e%201%2F2")] = (500, {})
failure(one(["ext", "get", "e 1/2"]), "HTTP 500", 500, "ext get: 500")

# --- get by email
EMAIL = "ann+test@ex.org"
ext.reset()
ext.script[("GET", "/contacts")] = (200, [{"id": 1, "email": EMAIL},
                                          {"id": 2}])
t.is_(one(["ext", "get_by_email", EMAIL]),
      {"success": True, "contact": {"id": 1, "email": EMAIL}},
      "ext get_by_email: an array -> its first element")
rec = only(ext, "GET", "/contacts")
t.is_(rec and rec.query, {"email": [EMAIL]},
      "ext get_by_email: ?email= URL-encoded ('+' as %2B)")
ext.script[("GET", "/contacts")] = (200, {"id": 3})
t.is_(one(["ext", "get_by_email", EMAIL]),
      {"success": True, "contact": {"id": 3}},
      "ext get_by_email: an object -> the contact")
ext.script[("GET", "/contacts")] = (200, [])
failure(one(["ext", "get_by_email", EMAIL]), "resource not found", None,
        "ext get_by_email: [] -> not found")
ext.script[("GET", "/contacts")] = (404, {})
failure(one(["ext", "get_by_email", EMAIL]), "resource not found", 404,
        "ext get_by_email: 404 -> not found")
ext.script[("GET", "/contacts")] = (200, ["x"])
failure(one(["ext", "get_by_email", EMAIL]),
        lambda e: e.startswith("invalid answer"), 200,
        "ext get_by_email: an array of non-objects")

# --- list a page
ext.reset()
page = [{"id": 1}, {"id": 2}]
ext.script[("GET", "/contacts")] = (200, page)
t.is_(one(["ext", "list_page", "2", "30"]),
      {"success": True, "contacts": page}, "ext list_page: an array")
rec = only(ext, "GET", "/contacts")
t.is_(rec and rec.query, {"page": ["2"], "limit": ["30"]},
      "ext list_page: ?page=2&limit=30")
ext.script[("GET", "/contacts")] = (200, {"data": page, "total": 2})
t.is_(one(["ext", "list_page", "1", "30"], ext_env(BM_EXT_LIST_FIELD="data")),
      {"success": True, "contacts": page}, "ext list_page: BM_EXT_LIST_FIELD")
failure(one(["ext", "list_page", "1", "30"]),
        lambda e: e.startswith("invalid answer"), 200,
        "ext list_page: an object without BM_EXT_LIST_FIELD")
ext.script[("GET", "/contacts")] = (200, {"items": page})
failure(one(["ext", "list_page", "1", "30"], ext_env(BM_EXT_LIST_FIELD="data")),
        lambda e: e.startswith("invalid answer"), 200,
        "ext list_page: the list field missing")
ext.script[("GET", "/contacts")] = (200, [{"id": 1}, 2])
failure(one(["ext", "list_page", "1", "30"]),
        lambda e: e.startswith("invalid answer"), 200,
        "ext list_page: elements must be objects")
ext.script[("GET", "/contacts")] = (200, [])
t.is_(one(["ext", "list_page", "9", "30"]), {"success": True, "contacts": []},
      "ext list_page: an empty page")

# --- update
ext.reset()
ext.script[("PUT", "/contacts/e1")] = (204, b"")
t.is_(one(["ext", "update", "e1", '{"id":"e1","city":"Nice"}']),
      {"success": True}, "ext update: 204")
rec = only(ext, "PUT", "/contacts/e1")
body_is(rec, '{"id":"e1","city":"Nice"}', "ext update: the contact is the body")
headers_ok(rec, "ext update: headers", auth=None)
ext.script[("PUT", "/contacts/e1")] = (200, "OK")
t.is_(one(["ext", "update", "e1", '{}']), {"success": True},
      "ext update: 200 with any body")
ext.script[("PUT", "/contacts/e1")] = (404, {})
failure(one(["ext", "update", "e1", '{}']), "resource not found", 404,
        "ext update: 404 -> not found")
ext.script[("PUT", "/contacts/e1")] = (409, {})
failure(one(["ext", "update", "e1", '{}']), "HTTP 409", 409,
        "ext update: 409")

# --- delete
ext.reset()
ext.script[("DELETE", "/contacts/e1")] = (200, {"deleted": True})
t.is_(one(["ext", "delete", "e1"]), {"success": True}, "ext delete: 200")
rec = only(ext, "DELETE", "/contacts/e1")
t.is_(rec and rec.body, b"", "ext delete: no body")
ext.script[("DELETE", "/contacts/e1")] = (404, {})
failure(one(["ext", "delete", "e1"]), "resource not found", 404,
        "ext delete: 404 -> not found")
ext.script[("DELETE", "/contacts/e1")] = (500, {})
failure(one(["ext", "delete", "e1"]), "HTTP 500", 500, "ext delete: 500")

# --- transport failures, bounds
failure(one(["ext", "get", "e1"], ext_env(BM_EXT_BASE_URL=DOWN)),
        lambda e: "connect" in e.lower(), None,
        "ext down: curl's message, no status")
ext.reset()
ext.script[("GET", "/contacts/e1")] = (200, {"id": "e1"}, 1.5)
t0 = time.monotonic()
r = one(["ext", "get", "e1"], ext_env(BM_HTTP_TIMEOUT="300"))
elapsed = time.monotonic() - t0
failure(r, lambda e: "timed out" in e.lower(), None,
        "ext too slow: the timeout's message")
t.ok(elapsed < 1.4, "ext: BM_HTTP_TIMEOUT=300 gives up early",
     "took %.2fs" % elapsed)
ext.script[("GET", "/contacts/e1")] = (200, b"[" + b" " * ANSWER_MAX + b"]")
failure(one(["ext", "get", "e1"]),
        lambda e: e.startswith("answer larger than"), None,
        "ext: an answer over the limit is refused")

# --- paths and methods overridden
ext.reset()
over = ext_env(
    BM_EXT_PATH_CREATE="/v2/people", BM_EXT_METHOD_CREATE="PUT",
    BM_EXT_PATH_GET="/v2/people/{id}/card",
    BM_EXT_PATH_SEARCH="/v2/find?mail={email}&exact=1",
    BM_EXT_METHOD_SEARCH="POST",
    BM_EXT_PATH_LIST="/v2/people?p={page}&n={limit}",
    BM_EXT_PATH_UPDATE="/v2/people/{id}", BM_EXT_METHOD_UPDATE="PATCH",
    BM_EXT_PATH_DELETE="/v2/people/{id}/remove", BM_EXT_METHOD_DELETE="POST")
ext.script[("PUT", "/v2/people")] = (201, {"id": 5})
ext.script[("GET", "/v2/people/x%3Fy/card")] = (200, {"id": "x?y"})
ext.script[("POST", "/v2/find")] = (200, [{"id": 6}])
ext.script[("GET", "/v2/people")] = (200, [])
ext.script[("PATCH", "/v2/people/5")] = (200, {})
ext.script[("POST", "/v2/people/5/remove")] = (204, b"")
got = [one(["ext", "create", '{"a":1}'], over),
       one(["ext", "get", "x?y"], over),
       one(["ext", "get_by_email", "b@c.d"], over),
       one(["ext", "list_page", "3", "7"], over),
       one(["ext", "update", "5", '{"a":2}'], over),
       one(["ext", "delete", "5"], over)]
t.is_([g and g.get("success") for g in got], [True] * 6,
      "BM_EXT_PATH_*/BM_EXT_METHOD_*: every operation succeeds")
t.is_([(r.method, r.path, r.query, r.body) for r in ext.received()],
      [("PUT", "/v2/people", {}, b'{"a":1}'),
       ("GET", "/v2/people/x%3Fy/card", {}, b""),
       ("POST", "/v2/find", {"mail": ["b@c.d"], "exact": ["1"]}, b""),
       ("GET", "/v2/people", {"p": ["3"], "n": ["7"]}, b""),
       ("PATCH", "/v2/people/5", {}, b'{"a":2}'),
       ("POST", "/v2/people/5/remove", {}, b"")],
      "BM_EXT_PATH_*/BM_EXT_METHOD_*: the requests as configured")

# --- BM_EXT_AUTH_HEADER
ext.reset()
APIKEY = "key-Ext-3c9e51aa"
ext.script[("GET", "/contacts/e1")] = (200, {"id": "e1"})
one(["ext", "get", "e1"], ext_env(BM_EXT_AUTH_HEADER="X-Api-Key: " + APIKEY))
rec = only(ext, "GET", "/contacts/e1")
t.is_(rec and rec.headers.get_all("X-Api-Key"), [APIKEY],
      "BM_EXT_AUTH_HEADER sent as a header line")
ext.reset()
ext.script[("GET", "/contacts/e1")] = (200, {"id": "e1"})
one(["ext", "get", "e1"],
    ext_env(BM_EXT_AUTH_HEADER="Authorization: Basic " + APIKEY))
headers_ok(only(ext, "GET", "/contacts/e1"),
           "BM_EXT_AUTH_HEADER may be the Authorization line",
           auth="Basic " + APIKEY, ctype=False)
SECRETS.append(APIKEY)


# --- JSON Web Tokens
def b64url(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(n, exp=None):
    claims = {"sub": "svc", "n": n}
    if exp is not None:
        claims["exp"] = exp
    jwt = "%s.%s.sig-%d-f00d" % (b64url({"alg": "HS256", "typ": "JWT"}),
                                 b64url(claims), n)
    SECRETS.append(jwt)
    return jwt


class JwtIssuer:
    """POST /auth answers the next token of a list; the service accepts
    only the token issued last (a 401 for anything else)."""

    def __init__(self, tokens, field="token"):
        self.tokens = list(tokens)
        self.issued = []
        self.field = field

    def auth(self, rec):
        tok = self.tokens[min(len(self.issued), len(self.tokens) - 1)]
        self.issued.append(tok)
        return 200, {self.field: tok, "expires_in": 3600}, 0

    def guarded(self, answer):
        def fn(rec):
            if not self.issued or rec.headers.get("Authorization") != \
                    "Bearer " + self.issued[-1]:
                return 401, {"error": "bad token"}, 0
            return answer
        return fn


JWT_BODY = '{"user":"svc","pass":"pw-Ext-77ab"}'
SECRETS.append("pw-Ext-77ab")


def jwt_env(**extra):
    env = {"BM_EXT_JWT_URL": ext.url + "/auth", "BM_EXT_JWT_BODY": JWT_BODY}
    env.update(extra)
    return ext_env(**env)


def auths(rec_list):
    return [r.headers.get("Authorization") for r in rec_list]


# fetched once, reused over several calls in one process (no exp: kept)
ext.reset()
iss = JwtIssuer([make_jwt(1), make_jwt(2)])
ext.script[("POST", "/auth")] = iss.auth
ext.script[("GET", "/contacts/e1")] = iss.guarded((200, {"id": "e1"}))
out = drive(["ext", "get", "e1"], jwt_env(), repeat=3)
t.is_(out, [{"success": True, "contact": {"id": "e1"}}] * 3,
      "JWT: three calls succeed")
recs = ext.received("POST", "/auth")
t.is_(len(recs), 1, "JWT: fetched once for three calls")
body_is(recs[0] if recs else None, JWT_BODY, "JWT: BM_EXT_JWT_BODY posted")
headers_ok(recs[0] if recs else None, "JWT request: JSON headers",
           auth=None)
t.is_(auths(ext.received("GET")), ["Bearer " + iss.tokens[0]] * 3,
      "JWT: sent as Authorization: Bearer on every call")
t.is_(ext.connections(), 1,
      "JWT fetch and three calls over one TCP connection")

# a 401 drops it: fetched once more, the call retried once
ext.reset()
iss = JwtIssuer([make_jwt(3), make_jwt(4)])
ext.script[("POST", "/auth")] = iss.auth
calls = []


def revoke_on_second(rec):
    calls.append(rec)
    if len(calls) == 2:     # the service revokes the first token
        iss.issued.append("revoked")
    return iss.guarded((200, {"id": "e1"}))(rec)


ext.script[("GET", "/contacts/e1")] = revoke_on_second
out = drive(["ext", "get", "e1"], jwt_env(), repeat=3)
t.is_(out, [{"success": True, "contact": {"id": "e1"}}] * 3,
      "JWT 401: every call succeeds in the end")
t.is_(len(ext.received("POST", "/auth")), 2, "JWT 401: fetched again once")
t.is_(auths(ext.received("GET")),
      ["Bearer " + iss.tokens[0]] * 2 + ["Bearer " + iss.tokens[1]] * 2,
      "JWT 401: the call retried once with the new token, which is kept")

# a 401 to the retry too: a failure, no loop
ext.reset()
iss = JwtIssuer([make_jwt(5), make_jwt(6)])
ext.script[("POST", "/auth")] = iss.auth
ext.script[("GET", "/contacts/e1")] = (401, {"error": "never"})
failure(one(["ext", "get", "e1"], jwt_env()), "HTTP 401", 401,
        "JWT: a 401 after the retry fails")
t.is_((len(ext.received("POST", "/auth")), len(ext.received("GET"))), (2, 2),
      "JWT: one refetch and one retry only")

# exp passed: a new token for every call; exp ahead: one for all
ext.reset()
past = int(time.time()) - 60
iss = JwtIssuer([make_jwt(7, past), make_jwt(8, past), make_jwt(9, past)])
ext.script[("POST", "/auth")] = iss.auth
ext.script[("GET", "/contacts/e1")] = iss.guarded((200, {"id": "e1"}))
out = drive(["ext", "get", "e1"], jwt_env(), repeat=3)
t.is_([o and o.get("success") for o in out], [True] * 3,
      "JWT expired: calls succeed")
t.is_(len(ext.received("POST", "/auth")), 3,
      "JWT expired (exp claim passed): fetched for every call")
ext.reset()
iss = JwtIssuer([make_jwt(10, int(time.time()) + 3600), make_jwt(11)],
                field="access_token")
ext.script[("POST", "/auth")] = iss.auth
ext.script[("GET", "/contacts/e1")] = iss.guarded((200, {"id": "e1"}))
out = drive(["ext", "get", "e1"], jwt_env(BM_EXT_JWT_FIELD="access_token"),
            repeat=3)
t.is_([o and o.get("success") for o in out], [True] * 3,
      "JWT exp ahead, BM_EXT_JWT_FIELD: calls succeed")
t.is_(len(ext.received("POST", "/auth")), 1,
      "JWT exp ahead: fetched once")

# the JWT replaces an Authorization BM_EXT_AUTH_HEADER, not another header
ext.reset()
iss = JwtIssuer([make_jwt(12)])
ext.script[("POST", "/auth")] = iss.auth
ext.script[("GET", "/contacts/e1")] = iss.guarded((200, {"id": "e1"}))
one(["ext", "get", "e1"], jwt_env(
    BM_EXT_AUTH_HEADER="Authorization: Basic " + APIKEY))
one(["ext", "get", "e1"], jwt_env(BM_EXT_AUTH_HEADER="X-Api-Key: " + APIKEY))
recs = ext.received("GET")
t.is_([(r.headers.get_all("Authorization"), r.headers.get("X-Api-Key"))
       for r in recs],
      [(["Bearer " + iss.tokens[0]], None),
       (["Bearer " + iss.tokens[0]], APIKEY)],
      "JWT with BM_EXT_AUTH_HEADER: one Authorization, other headers kept")

# the token service failing
ext.reset()
ext.script[("POST", "/auth")] = (403, {"error": "bad credentials"})
failure(one(["ext", "get", "e1"], jwt_env()),
        "authentication failed: HTTP 403", 403,
        "JWT refused: the call fails without being sent")
t.is_(ext.received("GET"), [], "JWT refused: no call made")
ext.script[("POST", "/auth")] = (200, {"jwt": "x"})
failure(one(["ext", "get", "e1"], jwt_env()),
        lambda e: e.startswith("authentication failed: invalid answer"), 200,
        "JWT answer without BM_EXT_JWT_FIELD")
ext.script[("POST", "/auth")] = (200, {"token": "a\r\nX-Evil: 1"})
failure(one(["ext", "get", "e1"], jwt_env()),
        lambda e: e.startswith("authentication failed: invalid answer"), 200,
        "JWT holding CR LF refused")
t.is_(ext.received("GET"), [], "no call sent without a usable JWT")
failure(one(["ext", "get", "e1"], jwt_env(BM_EXT_JWT_URL=DOWN + "/auth")),
        lambda e: e.startswith("authentication failed: ") and
        "connect" in e.lower(), None, "JWT service down")

# ===================================================== logs
logs = "".join(STDERR)
leaked = [s for s in SECRETS if s in logs]
t.is_(leaked, [], "no token, JWT, credential or key in the driver's stderr")
t.ok("outbound-test" in logs and "WARN" in logs,
     "failures are logged with the request id")
LOGLINE = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z (ERROR|WARN|INFO|DEBUG) "
                     r"\d+ \S+ (botmatic|extrest|auth): \S")
bad = [line for line in logs.splitlines() if not LOGLINE.match(line)]
t.is_(bad, [], "every stderr line is one log line of the server's format")

t.done()
