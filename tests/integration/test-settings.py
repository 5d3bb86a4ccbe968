#!/usr/bin/env python3
"""The settings page over HTTP (SPEC §13), through a real nginx: 401 for a
missing, bad or uninstalled token (the body's token is the one that
counts), the page's headers (CSP with frame-ancestors), every value
escaped, a password never rendered back and kept when left empty, saves
in the installation (seen by a module as auth.client), errorFields from
the schema and from a module's validator with nothing saved, 413, 400 for
a malformed form, the static assets, 404 without BM_SETTINGS, and a
BM_SETTINGS the form cannot serve refused at start.  Also ids_delete_all
from a module."""
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.parse

import bmtest

t = bmtest.Test()
t.plan(51)

GOOD, OTHER = "tok-settings-good", "tok-settings-other"
ORIGIN = "http://127.0.0.1:%d" % bmtest.free_port()
SECRET = "s3cret-DO-NOT-RENDER"
SCHEMA = {
    "title": "Acme <b>CRM</b>",
    "type": "object",
    "required": ["site"],
    "properties": {
        "site": {"type": "string", "title": "Site <i>URL</i>",
                 "description": "Where \"Acme\" lives", "minLength": 3},
        "api_key": {"type": "string", "format": "password",
                    "title": "API key"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                 "default": 443},
        "ratio": {"type": "number"},
        "enabled": {"type": "boolean", "title": "Enabled"},
        "mode": {"enum": ["fast", "safe"], "default": "safe"},
    },
}

schema_path = os.path.join(t.tmp, "settings.json")
with open(schema_path, "w") as f:
    json.dump(SCHEMA, f)

bm = t.botmatic({GOOD, OTHER})
srv = t.server({"BM_SETTINGS": schema_path, "BM_BOTMATIC_ORIGIN": ORIGIN,
                "BOTMATIC_BASE_URL": bm.url, "BM_MAX_BODY": "4096",
                "BM_MODULES": t.module("testmod")})
ngx = t.nginx(srv)

r = ngx.post({"event": "install", "data": {"from": "botmatic"}}, token=GOOD)
t.is_(r.status, 200, "install GOOD")


def page(query):
    return ngx.request("GET", "/settings" + query, content_type=None)


def save(fields, form=True, token=GOOD):
    body = dict(fields)
    if token is not None:
        body["token"] = token
    if form:
        return ngx.request("POST", "/settings",
                           urllib.parse.urlencode(body),
                           content_type="application/x-www-form-urlencoded")
    return ngx.request("POST", "/settings", body)


def client():
    r = ngx.post({"action": "whoami"}, token=GOOD)
    return (r.json() or {}).get("data", {}).get("client") or {}


# --- who may see the page
r = page("")
t.ok(r.status == 401, "GET without a token: 401", r)
r = page("?token=nope")
t.ok(r.status == 401, "GET with an unknown token: 401", r)
r = page("?token=" + OTHER)
t.ok(r.status == 401, "GET with a token Botmatic knows but no installation "
     "has: 401", r)

r = page("?token=" + GOOD)
html = r.body.decode("utf-8", "replace")
t.ok(r.status == 200 and r.ctype.startswith("text/html"),
     "GET with an installation's token: 200 HTML", r)
csp = r.header("Content-Security-Policy") or ""
t.is_(csp, "default-src 'none'; script-src 'self'; style-src 'self'; "
      "connect-src 'self'; form-action 'self'; frame-ancestors %s; "
      "base-uri 'none'" % ORIGIN, "the CSP: self only, framed by "
      "BM_BOTMATIC_ORIGIN alone")
t.ok(r.header("X-Content-Type-Options") == "nosniff" and
     r.header("Referrer-Policy") == "no-referrer" and
     r.header("Cache-Control") == "no-store",
     "nosniff, no-referrer, no-store", dict(r.headers))
t.ok("<script>" not in html.replace(
    '<script src="/settings/settings.js" defer></script>', "") and
     'src="/settings/settings.js"' in html and
     'href="/settings/settings.css"' in html and "https://" not in html,
     "no inline script, no CDN: the script and stylesheet come from here",
     html)
t.ok('data-token="%s"' % GOOD in html and
     'data-origin="%s"' % ORIGIN in html,
     "the token and the origin reach the script as data- attributes")
t.ok("Acme &lt;b&gt;CRM&lt;/b&gt;" in html and
     "Site &lt;i&gt;URL&lt;/i&gt;" in html and
     "Where &quot;Acme&quot; lives" in html and "<b>CRM" not in html,
     "titles and descriptions are escaped", html)
t.ok('value="443"' in html and
     '<option value="safe" selected>' in html,
     "defaults fill fields without a value", html)

# --- a save, and what it leaves behind
XSS = '"><script>alert(1)</script>'
r = save({"site": XSS, "api_key": SECRET, "port": "8080",
          "ratio": "0.5", "enabled": "true", "mode": "fast"})
t.is_(r.json(), {"success": True}, "POST form: saved, {\"success\":true}")
t.ok(r.header("Cache-Control") == "no-store" and
     "frame-ancestors" in (r.header("Content-Security-Policy") or ""),
     "the save's answer carries the page's headers")
c = client().get("settings", {})
t.is_({k: c.get(k) for k in ("site", "api_key", "port", "ratio", "enabled",
                             "mode", "from")},
      {"site": XSS, "api_key": SECRET, "port": 8080, "ratio": 0.5,
       "enabled": True, "mode": "fast", "from": "botmatic"},
      "a module reads the saved values, typed, in auth.client.settings "
      "(the install's data kept)")

r = page("?token=" + GOOD)
html = r.body.decode("utf-8", "replace")
t.ok(XSS not in html and "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
     in html, "a saved <script> value is rendered escaped", html)
t.ok(SECRET not in html and 'placeholder="(unchanged)"' in html,
     "the password is never rendered back", html)
t.ok('value="8080"' in html and "checked" in html and
     '<option value="fast" selected>' in html,
     "the page shows the saved values")

r = save({"site": "https://acme.example", "api_key": "", "port": "8081"})
c = client().get("settings", {})
t.ok(r.json() == {"success": True} and c.get("api_key") == SECRET and
     c.get("site") == "https://acme.example" and c.get("port") == 8081 and
     c.get("enabled") is False,
     "an empty password keeps the stored one; an unchecked box (absent) "
     "is false", r, c)

r = save({"site": "https://acme.example", "port": "8081", "ratio": ""})
c = client().get("settings", {})
t.ok(r.json() == {"success": True} and "ratio" not in c and
     c.get("port") == 8081, "a field cleared is removed from the settings",
     r, c)

# --- refusals change nothing
before = client().get("settings")
r = save({"site": "x", "port": "abc", "ratio": "1e999", "mode": "turbo"})
j = r.json() or {}
t.ok(r.status == 200 and j.get("success") is False and
     sorted(j.get("errorFields", [])) == ["mode", "port", "ratio", "site"],
     "invalid values: success false, every field in error named", r)
t.is_(client().get("settings"), before, "...and nothing was saved")
r = save({"site": "", "port": "70000"})
t.ok(sorted((r.json() or {}).get("errorFields", [])) == ["port", "site"],
     "a required field cleared and an integer over its maximum", r)
r = save({"site": "https://forbidden.example"})
t.ok(r.json() == {"success": False, "errorFields": ["site"]} and
     client().get("settings") == before,
     "a module's validator refuses a value: errorFields, nothing saved", r)
r = save({"site": "https://acme.example", "port": "9"}, token=None)
t.ok(r.status == 401 and client().get("settings") == before,
     "POST without a token: 401, nothing saved", r)
r = ngx.request("POST", "/settings?token=" + GOOD,
                urllib.parse.urlencode({"token": "nope", "port": "9"}),
                content_type="application/x-www-form-urlencoded")
t.ok(r.status == 401 and client().get("settings") == before,
     "the body's token is the one that counts (a good one in the query "
     "does not help)", r)
r = save({"site": "https://acme.example"}, token=OTHER)
t.ok(r.status == 401, "POST with a token of no installation: 401", r)

r = save({"site": "https://json.example", "port": 7, "enabled": True},
         form=False)
c = client().get("settings", {})
t.ok(r.json() == {"success": True} and c.get("port") == 7 and
     c.get("site") == "https://json.example" and c.get("api_key") == SECRET,
     "POST JSON: saved (the password absent is kept)", r, c)
r = save({"site": "https://json.example", "port": "7"}, form=False)
t.is_((r.json() or {}).get("errorFields"), ["port"],
      "POST JSON: a string for an integer is an error field")

# --- bodies
r = ngx.request("POST", "/settings", "site=" + "a" * 5000 + "&token=" + GOOD,
                content_type="application/x-www-form-urlencoded")
t.ok(r.status == 413 and r.is_json_type, "a body over BM_MAX_BODY: 413", r)
for bad, why in (("token=%s&site=%%zz" % GOOD, "a bad %-escape"),
                 ("token=%s&site=%%e9" % GOOD, "not UTF-8"),
                 ("token=%s&site=a&site=b" % GOOD, "a field given twice")):
    r = ngx.request("POST", "/settings", bad,
                    content_type="application/x-www-form-urlencoded")
    t.ok(r.status == 400 and r.is_json_type, "malformed form (%s): 400" % why,
         r)
r = ngx.request("POST", "/settings", "hello", content_type="text/plain")
t.is_(r.status, 415, "another Content-Type: 415")
t.is_(client().get("settings"), c, "none of those saved anything")

# --- routes and assets
r = ngx.request("GET", "/settings/settings.js", content_type=None)
t.ok(r.status == 200 and r.ctype.startswith("text/javascript") and
     b"postMessage" in r.body and "max-age" in (r.header("Cache-Control")
                                                 or "") and
     r.header("X-Content-Type-Options") == "nosniff",
     "settings.js: JavaScript, cached, nosniff", r)
r = ngx.request("GET", "/settings/settings.css", content_type=None)
t.ok(r.status == 200 and r.ctype.startswith("text/css"), "settings.css", r)
r = ngx.request("GET", "/settings/other.js", content_type=None)
t.is_(r.status, 404, "another file: 404")
r = ngx.request("PUT", "/settings", "x")
t.ok(r.status == 405 and r.header("Allow") == "GET, POST",
     "PUT on the page: 405, Allow: GET, POST", r)
r = ngx.request("GET", "/", content_type=None)
t.ok(r.status == 405 and r.header("Allow") == "POST",
     "GET on the endpoint stays 405, Allow: POST (SPEC §2)", r)

# --- ids_delete_all for modules
ngx.post({"action": "save", "data": {"bid": "1", "eid": "e1"}}, token=GOOD)
ngx.post({"action": "save", "data": {"bid": "2", "eid": "e2"}}, token=GOOD)
r = ngx.post({"action": "delete_all"}, token=GOOD)
g1 = ngx.post({"action": "get", "data": {"bid": "1"}}, token=GOOD).json()
g2 = ngx.post({"action": "get", "data": {"bid": "2"}}, token=GOOD).json()
t.ok(r.json() == {"data": {}, "type": "data", "success": True} and
     g1.get("success") is False and g2.get("success") is False and
     client().get("settings", {}).get("port") == 7,
     "ids_delete_all forgets the installation's pairs, not the "
     "installation", r, g1, g2)

t.ok(srv.grep(r"request: POST /settings 200 \S+ client=\S+ "
             r"install=[0-9a-f]{32} name=settings_save$") and
     srv.grep(r"request: GET /settings 200 \S+ client=\S+ "
              r"install=[0-9a-f]{32} name=settings_page$"),
     "the request lines name the installation (its id) and the page")
t.ok(not srv.sanitizer_reports() and SECRET not in srv.log() and
     GOOD not in srv.log(), "no sanitizer report; neither the token nor "
     "the password in the log")

# --- SIGHUP reads BM_SETTINGS again; a bad one keeps the running form
SCHEMA["properties"]["region"] = {"type": "string", "title": "Region"}
with open(schema_path, "w") as f:
    json.dump(SCHEMA, f)
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"master: reload done", 60, since=mark)
html = page("?token=" + GOOD).body.decode("utf-8", "replace")
t.ok('name="region"' in html, "SIGHUP: the page has the new field", html)
with open(schema_path, "w") as f:
    json.dump({"properties": {"x": {"type": "object"}}}, f)
mark = srv.mark()
srv.kill(signal.SIGHUP)
srv.wait_log(r"master: reload failed", 60, since=mark)
html = page("?token=" + GOOD).body.decode("utf-8", "replace")
t.ok('name="region"' in html and
     srv.grep(r"BM_SETTINGS: .*cannot render", mark),
     "SIGHUP with a schema the form cannot serve: refused and logged, the "
     "running form kept", srv.log()[mark:])

# --- a module built against the header before these additions still loads
# and runs: struct bm_host only grew at its end (the size prefix).
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
hdr = open(t.src_file("app", "botmatic", "module.h")).read()
cut = re.sub(r"\n\t/\* --- added with the settings page.*?\n};",
             "\n};", hdr, count=1, flags=re.S)
if not CC or cut == hdr:
    t.skip("no C compiler" if not CC else "module.h: no marker to cut at")
else:
    inc = os.path.join(t.tmp, "old", "botmatic")
    os.makedirs(inc)
    with open(os.path.join(inc, "module.h"), "w") as f:
        f.write(cut)
    src = os.path.join(t.tmp, "old", "oldmod.c")
    with open(src, "w") as f:
        f.write(r'''#include <botmatic/module.h>
static enum bm_rc
hi(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)data; (void)arg;
	*reply = json_pack("{s:{s:s,s:i}, s:s}", "data", "old", ctx->name,
	    "ids_save", ctx->host->ids_save != NULL, "type", "data");
	return BM_OK;
}
static int
init(const struct bm_host *host, struct bm_reg *reg)
{
	return host->reg_action(reg, "old_hi", hi, NULL);
}
BM_MODULE_DECLARE(.name = "oldmod", .version = "0", .init = init);
''')
    so = os.path.join(t.tmp, "old", "oldmod.so")
    cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "jansson"],
                            stdout=subprocess.PIPE, text=True).stdout.split()
    p = subprocess.run([CC, "-shared", "-fPIC", "-I" + os.path.dirname(inc),
                        src, "-o", so] + cflags, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    os.chmod(so, 0o644)
    old = t.server({"BOTMATIC_BASE_URL": bm.url, "BM_AUTH": "any",
                    "BM_MODULES": so + ":" + t.module("testmod")},
                   name="old")
    r = bmtest.fcgi_webhook(old.sock, {"action": "old_hi"}, token="x")
    t.ok(p.returncode == 0 and r.json() == {
        "data": {"old": "old_hi", "ids_save": 1}, "type": "data",
        "success": True}, "a module built against the older header (struct "
         "bm_host without the additions) loads beside a new one and runs",
         p.stdout.decode("utf-8", "replace"), r)
    old.stop()

# --- without BM_SETTINGS there is no page
plain = t.server({"BOTMATIC_BASE_URL": bm.url}, name="plain")
r = bmtest.fcgi_request(plain.sock, {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/settings",
    "REQUEST_URI": "/settings?token=" + GOOD, "DOCUMENT_URI": "/settings",
    "QUERY_STRING": "token=" + GOOD})
t.is_(r.status, 404, "without BM_SETTINGS: /settings is 404")

# --- schemas the form cannot serve stop the start
for doc, want, what in (
        ({"properties": {"a": {"type": "string", "multipleOf": 2}}},
         "unknown keyword", "not a schema the library compiles"),
        ({"properties": {"a": {"type": "object"}}},
         "cannot render", "an object property"),
        ({"properties": {"token": {"type": "string"}}},
         "token", "a field named token"),
        ("{not json", "line 1", "not JSON")):
    p = os.path.join(t.tmp, "bad.json")
    with open(p, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    bad = t.server({"BM_SETTINGS": p}, name="bad", start=False)
    st = bad.run_to_exit()
    line = [l for l in bad.log().splitlines() if "BM_SETTINGS" in l]
    t.ok(st == 1 and line and p in line[-1] and want in line[-1],
         "BM_SETTINGS refused at start (%s), naming the file and the "
         "reason" % what, st, line)
    os.unlink(bad.log_path)
# botmatic-fcgi -t checks it as a start would.
chk = subprocess.run([t.build_file("botmatic-fcgi"), "-t"],
                     env=dict(srv.env, BM_SETTINGS=p),
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     timeout=60)
out = chk.stdout.decode("utf-8", "replace")
t.ok(chk.returncode == 1 and "BM_SETTINGS" in out and p in out,
     "botmatic-fcgi -t refuses it too, naming the file", out)
t.done()
