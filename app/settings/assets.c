#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "settings/settings.h"
#include "settings/settings_int.h"

/* --- the page's buffer ------------------------------------------------- */

static void
settings__buf_addn(struct settings_buf *b, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
settings__buf_add(struct settings_buf *b, const char *s)
{
	settings__buf_addn(b, s, strlen(s));
}

void
settings__buf_esc(struct settings_buf *b, const char *s)
{
	size_t run;

	while (*s != '\0') {
		run = strcspn(s, "&<>\"'");
		settings__buf_addn(b, s, run);
		s += run;
		switch (*s) {
		case '&': settings__buf_add(b, "&amp;"); break;
		case '<': settings__buf_add(b, "&lt;"); break;
		case '>': settings__buf_add(b, "&gt;"); break;
		case '"': settings__buf_add(b, "&quot;"); break;
		case '\'': settings__buf_add(b, "&#39;"); break;
		default: return;
		}
		s++;
	}
}

/* --- the script and the stylesheet ------------------------------------- */

/*
 * js-integration's protocol, to BM_BOTMATIC_ORIGIN only: the origin and
 * the token come from the form's data- attributes (the policy allows no
 * inline script), messages go to that origin alone, and only a message
 * from that origin and from the parent window starts a save.
 */
static const char settings_js[] =
"(function () {\n"
"  'use strict';\n"
"  var form = document.getElementById('bm-settings');\n"
"  if (!form) { return; }\n"
"  var origin = form.getAttribute('data-origin');\n"
"  var token = form.getAttribute('data-token');\n"
"  var status = form.querySelector('.status');\n"
"  var busy = false;\n"
"\n"
"  function tell(msg) {\n"
"    if (window.parent && window.parent !== window) {\n"
"      window.parent.postMessage(msg, origin);\n"
"    }\n"
"  }\n"
"\n"
"  function mark(fields) {\n"
"    var els = form.querySelectorAll('input[name], select[name]');\n"
"    for (var i = 0; i < els.length; i++) {\n"
"      var bad = fields.indexOf(els[i].name) >= 0;\n"
"      els[i].classList.toggle('is-invalid', bad);\n"
"      if (bad) { els[i].setAttribute('aria-invalid', 'true'); }\n"
"      else { els[i].removeAttribute('aria-invalid'); }\n"
"    }\n"
"  }\n"
"\n"
"  function done(res) {\n"
"    var fields = res && Array.isArray(res.errorFields) ? res.errorFields : [];\n"
"    var ok = !!(res && res.success === true);\n"
"    busy = false;\n"
"    mark(fields);\n"
"    status.textContent = ok ? 'Saved.' : 'Not saved: check the fields marked.';\n"
"    form.setAttribute('data-saved', ok ? 'true' : 'false');\n"
"    tell({ iframe_saved: { success: ok } });\n"
"  }\n"
"\n"
"  function save() {\n"
"    if (busy) { return; }\n"
"    busy = true;\n"
"    var body = new URLSearchParams();\n"
"    body.append('token', token);\n"
"    var els = form.querySelectorAll('input[name], select[name]');\n"
"    for (var i = 0; i < els.length; i++) {\n"
"      var el = els[i];\n"
"      body.append(el.name, el.type === 'checkbox' ? (el.checked ? 'true' : 'false') : el.value);\n"
"    }\n"
"    fetch(form.getAttribute('action'), {\n"
"      method: 'POST', credentials: 'omit', cache: 'no-store',\n"
"      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },\n"
"      body: body.toString()\n"
"    }).then(function (r) {\n"
"      return r.json().catch(function () { return { success: false }; });\n"
"    }).then(done, function () { done({ success: false }); });\n"
"  }\n"
"\n"
"  window.addEventListener('message', function (ev) {\n"
"    if (ev.origin !== origin || ev.source !== window.parent) { return; }\n"
"    var d = ev.data;\n"
"    if (typeof d === 'string') {\n"
"      try { d = JSON.parse(d); } catch (e) { return; }\n"
"    }\n"
"    if (d && d.post_form === true) { save(); }\n"
"  });\n"
"  form.addEventListener('submit', function (ev) { ev.preventDefault(); save(); });\n"
"  tell({ iframe_loaded: { height: Math.ceil(document.documentElement.scrollHeight) } });\n"
"})();\n";

static const char settings_css[] =
"html { font: 15px/1.5 system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif; color: #222; }\n"
"body { margin: 0; padding: 1rem 1.25rem; }\n"
"h1 { font-size: 1.25rem; margin: 0 0 1rem; }\n"
".field { margin: 0 0 1rem; }\n"
"label { display: block; font-weight: 600; margin-bottom: .25rem; }\n"
"input[type=text], input[type=password], input[type=number], select {\n"
"  box-sizing: border-box; width: 100%; max-width: 32rem; padding: .4rem .6rem;\n"
"  border: 1px solid #bbb; border-radius: 4px; font: inherit; }\n"
"input:focus, select:focus { outline: 2px solid #3273dc; outline-offset: 1px; }\n"
".is-invalid { border-color: #d93025 !important; background: #fff5f5; }\n"
".help { color: #666; font-size: .875rem; margin: .25rem 0 0; }\n"
".req { color: #d93025; }\n"
".status { min-height: 1.5em; }\n"
"button { padding: .4rem 1rem; border: 0; border-radius: 4px; background: #3273dc; color: #fff; font: inherit; }\n";

void
app_settings_asset(const char *name, struct app_answer *ans)
{
	const char *type, *text;

	if (strcmp(name, "settings.js") == 0) {
		type = "text/javascript; charset=utf-8";
		text = settings_js;
	} else if (strcmp(name, "settings.css") == 0) {
		type = "text/css; charset=utf-8";
		text = settings_css;
	} else {
		app_answer_error(ans, 404, "not found");
		return;
	}
	/* Compiled in: they change with the binary only. */
	if ((ans->headers = strdup("Cache-Control: public, max-age=3600\r\n"
	    "X-Content-Type-Options: nosniff\r\n")) == NULL) {
		app_answer_error(ans, 500, "out of memory");
		return;
	}
	ans->what = "settings_asset";
	ans->status = 200;
	ans->content_type = type;
	ans->text = text;
}
