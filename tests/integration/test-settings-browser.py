#!/usr/bin/env python3
"""The settings page in a real browser (SPEC §13): headless Chromium,
driven by Selenium through chromedriver, loads a parent "Botmatic" page
from one origin (a stand-in at http://127.0.0.1:P1, BM_BOTMATIC_ORIGIN)
that frames the page served by the server through nginx at
http://localhost:P2 (another origin), plus a frame of a third origin
(http://127.0.0.1:P3).  The parent records every message it receives in
its DOM.  Checked: iframe_loaded on load, a save triggered by the parent's
{post_form:true} (the values then in the installation, seen by a module
as auth.client), iframe_saved with its success, a bad field marked
(class is-invalid, aria-invalid) and nothing saved, and a {post_form:true}
from the third origin ignored.  SKIP when chromium, chromedriver or
python3-selenium is missing."""
import json
import os
import shutil
import sys

# The tests may run under a python3 without Debian's python3-selenium
# (a pyenv one first on PATH): use the system's when it has it.
try:
    import selenium  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and \
            os.path.realpath(sys.executable) != "/usr/bin/python3" and \
            not os.environ.get("BM_TEST_REEXEC"):
        os.environ["BM_TEST_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

import bmtest

CHROMIUM = os.environ.get("BM_TEST_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")
DRIVER = os.environ.get("BM_TEST_CHROMEDRIVER") or shutil.which(
    "chromedriver") or ("/usr/bin/chromedriver" if os.path.exists(
        "/usr/bin/chromedriver") else None)
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:
    bmtest.skip_all("python3-selenium not installed")
if not CHROMIUM or not DRIVER:
    bmtest.skip_all("chromium or chromedriver not installed")

t = bmtest.Test()
t.plan(15)

GOOD = "tok-browser-good"
SECRET = "browser-secret-value"
SCHEMA = {
    "title": "Browser test",
    "type": "object",
    "required": ["site"],
    "properties": {
        "site": {"type": "string", "title": "Site", "minLength": 3},
        "api_key": {"type": "string", "format": "password"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "enabled": {"type": "boolean"},
        "mode": {"enum": ["fast", "safe"]},
    },
}
schema_path = os.path.join(t.tmp, "settings.json")
with open(schema_path, "w") as f:
    json.dump(SCHEMA, f)

# Two stand-ins: Botmatic's page (also its API) and a third origin.
bm = bmtest.botmatic_standin({GOOD})
third = bmtest.StandIn()
ORIGIN = bm.url                       # http://127.0.0.1:P1
srv = t.server({"BM_SETTINGS": schema_path, "BM_BOTMATIC_ORIGIN": ORIGIN,
                "BOTMATIC_BASE_URL": bm.url,
                "BM_MODULES": t.module("testmod")})
ngx = t.nginx(srv)
PAGE_ORIGIN = "http://localhost:%d" % ngx.port   # another origin
PARENT = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Botmatic</title></head><body>
<iframe id="settings" src="%(page)s/settings?token=%(token)s"
        width="640" height="480"></iframe>
<iframe id="third" src="%(third)s/third.html" width="100" height="100">
</iframe>
<ul id="log"></ul>
<script>
window.addEventListener('message', function (ev) {
  var li = document.createElement('li');
  li.className = 'msg';
  li.setAttribute('data-origin', ev.origin);
  li.textContent = JSON.stringify(ev.data);
  document.getElementById('log').appendChild(li);
});
function postForm() {
  document.getElementById('settings').contentWindow.postMessage(
    {post_form: true}, '%(page)s');
}
</script></body></html>
""" % {"page": PAGE_ORIGIN, "token": GOOD, "third": third.url}
THIRD = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body>third party</body></html>"""
bm.route("GET", r"/parent\.html", 200, ("text/html; charset=utf-8", PARENT))
third.route("GET", r"/third\.html", 200, ("text/html; charset=utf-8", THIRD))
bm.start()
t.defer(bm.stop)
third.start()
t.defer(third.stop)

r = ngx.post({"event": "install", "data": {}}, token=GOOD)
t.is_(r.status, 200, "install GOOD")


def settings():
    r = ngx.post({"action": "whoami"}, token=GOOD)
    return ((r.json() or {}).get("data", {}).get("client") or {}).get(
        "settings", {})


# --- the browser: a temp profile, chromedriver on a free port, by PID
profile = os.path.join(t.tmp, "chromium-profile")
os.makedirs(profile)
opts = webdriver.ChromeOptions()
opts.binary_location = CHROMIUM
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--no-first-run",
          "--no-default-browser-check", "--disable-extensions",
          "--disable-background-networking", "--disable-sync",
          "--no-proxy-server", "--user-data-dir=" + profile,
          "--host-resolver-rules=MAP localhost 127.0.0.1"):
    opts.add_argument(a)
service = Service(DRIVER, port=bmtest.free_port(),
                  log_path=os.path.join(t.tmp, "chromedriver.log"))
driver = webdriver.Chrome(service=service, options=opts)


def quit_browser():
    try:
        driver.quit()
    finally:
        service.stop()


t.defer(quit_browser)
driver.set_page_load_timeout(30)
driver.set_script_timeout(30)


def messages():
    """What the parent received: [(origin, data)]."""
    driver.switch_to.default_content()
    out = []
    for li in driver.find_elements(By.CSS_SELECTOR, "#log li.msg"):
        try:
            out.append((li.get_attribute("data-origin"),
                        json.loads(li.get_attribute("textContent"))))
        except ValueError:
            out.append((li.get_attribute("data-origin"), None))
    return out


def saved_messages():
    return [d["iframe_saved"] for o, d in messages()
            if isinstance(d, dict) and "iframe_saved" in d]


def wait_saved(count):
    bmtest.wait_until(lambda: len(saved_messages()) >= count, 20)
    return saved_messages()


def in_frame():
    driver.switch_to.default_content()
    driver.switch_to.frame(driver.find_element(By.ID, "settings"))


def fill(name, value):
    el = driver.find_element(By.NAME, name)
    el.clear()
    el.send_keys(value)


driver.get(bm.url + "/parent.html")
bmtest.wait_until(lambda: any(isinstance(d, dict) and "iframe_loaded" in d
                              for o, d in messages()), 20)
loaded = [(o, d) for o, d in messages()
          if isinstance(d, dict) and "iframe_loaded" in d]
t.ok(len(loaded) == 1 and loaded[0][0] == PAGE_ORIGIN and
     isinstance(loaded[0][1]["iframe_loaded"].get("height"), int) and
     loaded[0][1]["iframe_loaded"]["height"] > 0,
     "the parent got {iframe_loaded:{height}} from the page's origin",
     messages())

# The page is loaded inside the frame, its script and stylesheet applied
# (the CSP let them in: 'self').
in_frame()
t.ok(driver.find_element(By.ID, "bm-settings").get_attribute(
    "data-token") == GOOD and driver.execute_script(
    "return getComputedStyle(document.querySelector('label'))"
    ".fontWeight") in ("600", "bold"),
     "the framed page rendered, with its stylesheet")

fill("site", "https://acme.example")
fill("api_key", SECRET)
fill("port", "8443")
driver.find_element(By.NAME, "enabled").click()
Select(driver.find_element(By.NAME, "mode")).select_by_value("fast")
driver.switch_to.default_content()
driver.execute_script("postForm()")
got = wait_saved(1)
t.is_(got, [{"success": True}], "post_form from the parent: "
      "{iframe_saved:{success:true}}")
s = settings()
t.is_({k: s.get(k) for k in ("site", "api_key", "port", "enabled", "mode")},
      {"site": "https://acme.example", "api_key": SECRET, "port": 8443,
       "enabled": True, "mode": "fast"},
      "the values are saved in the installation (auth.client.settings)")

# A bad field: marked, named, nothing saved.
in_frame()
fill("port", "0")
fill("site", "https://other.example")
driver.switch_to.default_content()
driver.execute_script("postForm()")
got = wait_saved(2)
t.is_(got[1:], [{"success": False}], "an invalid port: "
      "{iframe_saved:{success:false}}")
in_frame()
port = driver.find_element(By.NAME, "port")
site = driver.find_element(By.NAME, "site")
t.ok("is-invalid" in (port.get_attribute("class") or "") and
     port.get_attribute("aria-invalid") == "true",
     "the field in error is marked (class is-invalid, aria-invalid)",
     port.get_attribute("outerHTML"))
t.ok("is-invalid" not in (site.get_attribute("class") or "") and
     site.get_attribute("aria-invalid") is None,
     "a valid field is not marked", site.get_attribute("outerHTML"))
t.is_(settings().get("site"), "https://acme.example",
      "nothing was saved")
# A third origin asks for a save: ignored.
fill("port", "8444")
fill("site", "https://third.example")
mark = srv.mark()
driver.switch_to.default_content()
driver.switch_to.frame(driver.find_element(By.ID, "third"))
driver.execute_script("window.parent.frames[0].postMessage("
                      "{post_form: true}, '*');"
                      "window.parent.frames[0].postMessage("
                      "JSON.stringify({post_form: true}), '*');")
# Nothing can be awaited for a message that must not act: give it the time
# a save takes here, then look.
bmtest.wait_until(lambda: len(saved_messages()) > 2 or
                  srv.grep(r"name=settings_save", mark), 3)
t.ok(len(saved_messages()) == 2 and not srv.grep(r"name=settings_save",
                                                 mark),
     "{post_form:true} from a third origin is ignored (no save request, "
     "no iframe_saved)", saved_messages(), srv.log()[mark:])
t.is_(settings().get("site"), "https://acme.example",
      "...and nothing changed in the installation")

# The parent still can.
driver.switch_to.default_content()
driver.execute_script("postForm()")
got = wait_saved(3)
s = settings()
t.ok(got[2:] == [{"success": True}] and s.get("port") == 8444 and
     s.get("site") == "https://third.example" and
     s.get("api_key") == SECRET,
     "the parent's next post_form saves (the password left empty kept)",
     got, s)
t.ok(all(o == PAGE_ORIGIN for o, d in messages()),
     "every message the parent got came from the page's origin",
     messages())

# Loaded again, the page shows the saved values but never the password.
driver.get(bm.url + "/parent.html")
bmtest.wait_until(lambda: any(isinstance(d, dict) and "iframe_loaded" in d
                              for o, d in messages()), 20)
in_frame()
key = driver.find_element(By.NAME, "api_key")
t.ok(key.get_attribute("value") == "" and
     key.get_attribute("placeholder") == "(unchanged)" and
     SECRET not in driver.page_source and
     driver.find_element(By.NAME, "port").get_attribute("value") == "8444",
     "reloaded: the saved values shown, the password not in the page",
     key.get_attribute("outerHTML"))
t.ok(not srv.sanitizer_reports(), "no sanitizer report")
t.done()
