/*
 * test-settings - the settings page's pieces that need no server: the
 * form decoding (strict: escapes, UTF-8, duplicates, bounds) and the
 * loading of BM_SETTINGS (what the form can serve, what it refuses), and
 * the page's assets.  The page and the save run in
 * tests/integration/test-settings.py.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings/settings.h"
#include "tests/tap.h"

static int
decodes(const char *text, const char *want_json)
{
	json_t *got = NULL, *want = json_loads(want_json, 0, NULL);
	char err[256];
	int ok;

	ok = app_settings_form_decode(text, strlen(text), &got, err,
	    sizeof(err)) == 0 && json_equal(got, want);
	if (!ok)
		tap_diag("decode %s: %s", text, got == NULL ? err : "differs");
	json_decref(got);
	json_decref(want);
	return ok;
}

static int
refused(const char *text, const char *why)
{
	json_t *got = NULL;
	char err[256] = "";
	int ok;

	ok = app_settings_form_decode(text, strlen(text), &got, err,
	    sizeof(err)) < 0 && got == NULL && strstr(err, why) != NULL;
	if (!ok)
		tap_diag("decode %s: %s", text, err);
	json_decref(got);
	return ok;
}

static void
test_decode(struct tap *t)
{
	char big[8192];
	size_t i, o = 0;

	tap_ok(t, decodes("a=1&b=x+y%20z&c=", "{\"a\":\"1\",\"b\":\"x y z\","
	    "\"c\":\"\"}"), "decode: pairs, + and %%20 are spaces, empty value");
	tap_ok(t, decodes("", "{}") && decodes("&&a=1&", "{\"a\":\"1\"}"),
	    "decode: empty text, empty pairs skipped");
	tap_ok(t, decodes("k", "{\"k\":\"\"}"), "decode: a name alone");
	tap_ok(t, decodes("s=%C3%A9%3C", "{\"s\":\"\\u00e9<\"}"),
	    "decode: UTF-8 escapes");
	tap_ok(t, refused("a=%zz", "%-escape") && refused("a=%4", "%-escape") &&
	    refused("a=%", "%-escape"), "decode: a bad or cut %%-escape");
	tap_ok(t, refused("a=%e9", "UTF-8") && refused("%ff=1", "UTF-8"),
	    "decode: a value or name not UTF-8");
	tap_ok(t, refused("a=1&a=2", "twice"), "decode: a name given twice");
	tap_ok(t, refused("a=%00", "NUL") && refused("=1", "empty name"),
	    "decode: a NUL byte, an empty name");
	for (i = 0; i < APP_SETTINGS_FIELDS_MAX * 2 + 1 && o + 16 < sizeof(big);
	    i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "f%zu=&", i);
	tap_ok(t, refused(big, "too many"), "decode: too many fields");
}

/* Loads doc from a file; returns 0 or -1 with err. */
static int
load(const char *dir, const char *doc, struct app_settings **s, char *err,
    size_t errlen)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/s.json", dir);
	if ((fp = fopen(path, "w")) == NULL)
		return -2;
	fputs(doc, fp);
	fclose(fp);
	return app_settings_load(path, s, err, errlen);
}

static void
test_load(struct tap *t, const char *dir)
{
	static const struct { const char *doc, *why; } bad[] = {
		{ "{\"properties\":{\"a\":{\"type\":\"string\","
		  "\"multipleOf\":2}}}", "unknown keyword" },
		{ "{\"properties\":{\"a\":{\"type\":\"object\"}}}",
		  "cannot render" },
		{ "{\"properties\":{\"a\":{\"type\":\"array\"}}}",
		  "cannot render" },
		{ "{\"properties\":{\"a\":{}}}", "cannot render" },
		{ "{\"properties\":{\"a\":{\"enum\":[{}]}}}", "cannot render" },
		{ "{\"properties\":{\"token\":{\"type\":\"string\"}}}",
		  "token" },
		{ "{\"properties\":{\"a b\":{\"type\":\"string\"}}}",
		  "field name" },
		{ "{\"type\":\"object\"}", "properties" },
		{ "{\"properties\":{}}", "properties" },
		{ "[1]", "" },
		{ "{\"a\":1,\"a\":2}", "duplicate" },
	};
	struct app_settings *s = NULL;
	char err[512];
	size_t i, nbad = 0;

	tap_ok(t, load(dir, "{\"type\":\"object\",\"required\":[\"a\"],"
	    "\"$defs\":{\"p\":{\"minimum\":1}},\"properties\":{"
	    "\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\","
	    "\"format\":\"password\"},\"c\":{\"type\":\"integer\","
	    "\"$ref\":\"#/$defs/p\"},\"d\":{\"type\":\"number\"},"
	    "\"e\":{\"type\":\"boolean\"},\"f\":{\"enum\":[\"x\",2]}}}", &s,
	    err, sizeof(err)) == 0 && app_settings_count(s) == 6,
	    "load: every field type the form renders (6 fields)");
	app_settings_free(s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = NULL;
		err[0] = '\0';
		if (load(dir, bad[i].doc, &s, err, sizeof(err)) == -1 &&
		    s == NULL && strstr(err, bad[i].why) != NULL &&
		    strstr(err, "/s.json") != NULL)
			nbad++;
		else
			tap_diag("%s: %s", bad[i].doc, err);
		app_settings_free(s);
	}
	tap_ok(t, nbad == sizeof(bad) / sizeof(bad[0]), "load: %zu schemas "
	    "refused, naming the file and the reason", nbad);
	s = NULL;
	tap_ok(t, app_settings_load("/nonexistent/s.json", &s, err,
	    sizeof(err)) == -1 && s == NULL, "load: a missing file");
}

static void
test_assets(struct tap *t)
{
	struct app_answer ans;

	memset(&ans, 0, sizeof(ans));
	app_settings_asset("settings.js", &ans);
	tap_ok(t, ans.status == 200 && strncmp(ans.content_type,
	    "text/javascript", 15) == 0 && strstr(ans.text, "postMessage(msg, "
	    "origin)") != NULL && strstr(ans.text, "'*'") == NULL,
	    "assets: the script posts to the origin, never to \"*\"");
	app_answer_clear(&ans);
	app_settings_asset("settings.css", &ans);
	tap_ok(t, ans.status == 200 && strncmp(ans.content_type, "text/css",
	    8) == 0 && strstr(ans.headers, "max-age") != NULL,
	    "assets: the stylesheet, cached");
	app_answer_clear(&ans);
	app_settings_asset("../etc/passwd", &ans);
	tap_ok(t, ans.status == 404, "assets: anything else is 404");
	app_answer_clear(&ans);
}

int
main(void)
{
	struct tap tap = { 0 }, *t = &tap;
	char dir[256];

	if (tap_tmpdir(dir, sizeof(dir), "settings") < 0)
		return 99;
	test_decode(t);
	test_load(t, dir);
	test_assets(t);
	tap_rmtree(dir);
	tap_ok(t, t->n == 9 + 3 + 3, "all %d checks ran", 9 + 3 + 3);
	return tap_done(t);
}
