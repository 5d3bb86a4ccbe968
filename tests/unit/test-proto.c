/* Unit tests of the protocol pieces (app/proto.c): no FastCGI needed. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi.h"
#include "tests/tap.h"

static int
dump_is(json_t *j, const char *want)
{
	char *s = json_dumps(j, JSON_COMPACT);
	int ok = s != NULL && strcmp(s, want) == 0;

	if (!ok)
		tap_diag("got %s, want %s", s != NULL ? s : "(null)", want);
	free(s);
	return ok;
}

static void
test_route(struct tap *t)
{
	const char *rest;

	tap_ok(t, app_proto_route("/", "/", &rest) == APP_ROUTE_WEBHOOK,
	    "route: / on /");
	tap_ok(t, app_proto_route("/x", "/", &rest) == APP_ROUTE_NONE,
	    "route: /x on / is not ours");
	tap_ok(t, app_proto_route("/hook", "/hook", &rest) == APP_ROUTE_WEBHOOK &&
	    app_proto_route("/hook/", "/hook", &rest) == APP_ROUTE_WEBHOOK,
	    "route: /hook and /hook/ on /hook");
	tap_ok(t, app_proto_route("/hookx", "/hook", &rest) == APP_ROUTE_NONE,
	    "route: /hookx on /hook is not ours");
	tap_ok(t, app_proto_route("/ext/abc/contacts", "/", &rest) ==
	    APP_ROUTE_EXT && strcmp(rest, "abc/contacts") == 0,
	    "route: external route under /");
	tap_ok(t, app_proto_route("/hook/ext/abc/contacts", "/hook", &rest) ==
	    APP_ROUTE_EXT && strcmp(rest, "abc/contacts") == 0,
	    "route: external route under /hook");
	tap_ok(t, app_proto_route(NULL, "/", &rest) == APP_ROUTE_NONE,
	    "route: no path");
}

static void
test_head(struct tap *t)
{
	char err[256];
	size_t len = 99;

	tap_ok(t, app_proto_check_head("GET", "2", NULL, 100, &len, err,
	    sizeof(err)) == 405, "head: GET is 405");
	tap_ok(t, app_proto_check_head(NULL, "2", NULL, 100, &len, err,
	    sizeof(err)) == 405, "head: no method is 405");
	tap_ok(t, app_proto_check_head("POST", NULL, NULL, 100, &len, err,
	    sizeof(err)) == 411, "head: no Content-Length is 411");
	tap_ok(t, app_proto_check_head("POST", "", NULL, 100, &len, err,
	    sizeof(err)) == 411, "head: empty Content-Length is 411");
	tap_ok(t, app_proto_check_head("POST", "100", "application/json", 100,
	    &len, err, sizeof(err)) == 0 && len == 100,
	    "head: length at the limit accepted");
	tap_ok(t, app_proto_check_head("POST", "101", NULL, 100, &len, err,
	    sizeof(err)) == 413, "head: limit + 1 is 413");
	tap_ok(t, app_proto_check_head("POST", "99999999999999999999", NULL, 100,
	    &len, err, sizeof(err)) == 413, "head: huge length is 413");
	tap_ok(t, app_proto_check_head("POST", "-1", NULL, 100, &len, err,
	    sizeof(err)) == 400, "head: negative length is 400");
	tap_ok(t, app_proto_check_head("POST", "1x", NULL, 100, &len, err,
	    sizeof(err)) == 400, "head: junk length is 400");
	tap_ok(t, app_proto_check_head("POST", " 1", NULL, 100, &len, err,
	    sizeof(err)) == 400, "head: spaced length is 400");
	tap_ok(t, app_proto_check_head("POST", "2",
	    "application/json; charset=utf-8", 100, &len, err,
	    sizeof(err)) == 0, "head: JSON with charset accepted");
	tap_ok(t, app_proto_check_head("POST", "2", "application/vnd.x+json", 100,
	    &len, err, sizeof(err)) == 0, "head: +json accepted");
	tap_ok(t, app_proto_check_head("POST", "2", "text/plain", 100, &len, err,
	    sizeof(err)) == 415, "head: text/plain is 415");
	tap_ok(t, app_proto_check_head("POST", "2",
	    "application/x-www-form-urlencoded", 100, &len, err,
	    sizeof(err)) == 415, "head: form is 415");
	tap_ok(t, app_proto_check_head("POST", "2", "application/jsonx", 100,
	    &len, err, sizeof(err)) == 415, "head: application/jsonx is 415");
}

/* The settings page's routes and the checks its table uses. */
static void
test_settings_routes(struct tap *t)
{
	char err[256];
	const char *rest;
	size_t len;
	int form = -1;

	tap_ok(t, app_proto_route("/settings", "/", &rest) ==
	    APP_ROUTE_SETTINGS && app_proto_route("/hook/settings", "/hook",
	    &rest) == APP_ROUTE_SETTINGS, "route: <endpoint>settings");
	tap_ok(t, app_proto_route("/hook/settings/settings.js", "/hook", &rest)
	    == APP_ROUTE_SETTINGS_ASSET && strcmp(rest, "settings.js") == 0,
	    "route: <endpoint>settings/<file>");
	tap_ok(t, app_proto_route("/settingsx", "/", &rest) == APP_ROUTE_NONE &&
	    app_proto_route("/hooksettings", "/hook", &rest) == APP_ROUTE_NONE,
	    "route: settingsx and hooksettings are not ours");
	tap_ok(t, app_proto_check_method("GET", "GET, POST", err, sizeof(err))
	    == 0 && app_proto_check_method("POST", "GET, POST", err,
	    sizeof(err)) == 0, "method: GET and POST in \"GET, POST\"");
	tap_ok(t, app_proto_check_method("PUT", "GET, POST", err, sizeof(err))
	    == 405 && app_proto_check_method("GE", "GET", err, sizeof(err)) ==
	    405 && app_proto_check_method(NULL, "GET", err, sizeof(err)) == 405
	    && app_proto_check_method("", "GET", err, sizeof(err)) == 405,
	    "method: PUT, a prefix, none, empty: 405");
	tap_ok(t, app_proto_check_body("5", "application/x-www-form-urlencoded;"
	    " charset=UTF-8", 100, 1, &form, &len, err, sizeof(err)) == 0 &&
	    form == 1 && len == 5, "body: a form accepted where forms are");
	tap_ok(t, app_proto_check_body("5", "application/json", 100, 1, &form,
	    &len, err, sizeof(err)) == 0 && form == 0,
	    "body: JSON too, flagged as not a form");
	tap_ok(t, app_proto_check_body("5", "multipart/form-data", 100, 1,
	    &form, &len, err, sizeof(err)) == 415 &&
	    app_proto_check_body("101", "application/x-www-form-urlencoded",
	    100, 1, &form, &len, err, sizeof(err)) == 413,
	    "body: multipart is 415, over the limit 413");
}

static int
env_rc(const char *body, struct app_envelope *env)
{
	char err[256];
	int rc = app_envelope_parse(body, strlen(body), env, err, sizeof(err));

	if (rc != 0)
		tap_diag("%s -> %s", body, err);
	return rc;
}

static void
test_envelope(struct tap *t)
{
	struct app_envelope env;
	static const char bad_utf8[] = "{\"event\":\"a\xff\"}";

	tap_ok(t, env_rc("{\"event\":\"install\",\"data\":{\"a\":1}}", &env) ==
	    0 && strcmp(env.event, "install") == 0 && env.action == NULL &&
	    json_is_object(env.data), "envelope: event with data");
	app_envelope_free(&env);
	tap_ok(t, env_rc("{\"action\":\"echo\"}", &env) == 0 &&
	    strcmp(env.action, "echo") == 0 && json_is_null(env.data),
	    "envelope: action without data has null data");
	app_envelope_free(&env);
	tap_ok(t, env_rc("{\"foo\":1}", &env) == 0 && env.event == NULL &&
	    env.action == NULL, "envelope: neither (403 decided later)");
	app_envelope_free(&env);
	tap_ok(t, env_rc("{\"event\":\"\",\"action\":null}", &env) == 0 &&
	    env.event == NULL && env.action == NULL,
	    "envelope: empty and null count as absent");
	app_envelope_free(&env);
	tap_ok(t, env_rc("[1,2]", &env) == 400, "envelope: array is 400");
	tap_ok(t, env_rc("\"x\"", &env) == 400, "envelope: string is 400");
	tap_ok(t, env_rc("{\"event\":", &env) == 400, "envelope: truncated is 400");
	tap_ok(t, env_rc("", &env) == 400, "envelope: empty body is 400");
	tap_ok(t, env_rc(bad_utf8, &env) == 400, "envelope: invalid UTF-8 is 400");
	tap_ok(t, env_rc("{\"event\":\"a\",\"event\":\"b\"}", &env) == 400,
	    "envelope: duplicate keys are 400");
	tap_ok(t, env_rc("{\"event\":5}", &env) == 400,
	    "envelope: numeric event is 400");
	tap_ok(t, env_rc("{\"action\":{\"x\":1}}", &env) == 400,
	    "envelope: object action is 400");
	tap_ok(t, env_rc("{\"action\":\"a\\nb\"}", &env) == 400,
	    "envelope: control character in a name is 400");
	tap_ok(t, env_rc("{\"action\":\"a\\u0000b\"}", &env) == 400,
	    "envelope: NUL in a name is 400");
	{
		char big[600];
		memset(big, 'a', sizeof(big));
		memcpy(big, "{\"action\":\"", 11);
		memcpy(big + sizeof(big) - 3, "\"}", 3);
		tap_ok(t, env_rc(big, &env) == 400, "envelope: over-long name is 400");
	}
	{
		/* Deep nesting is refused by the parser, not the stack. */
		size_t depth = 100000, i;
		char *deep = malloc(depth * 2 + 16);
		strcpy(deep, "{\"data\":");
		for (i = 0; i < depth; i++)
			deep[8 + i] = '[';
		for (i = 0; i < depth; i++)
			deep[8 + depth + i] = ']';
		strcpy(deep + 8 + 2 * depth, "}");
		tap_ok(t, env_rc(deep, &env) == 400, "envelope: deep nesting is 400");
		free(deep);
	}
}

static void
test_token(struct tap *t)
{
	char tok[16];

	tap_ok(t, app_auth_token("Bearer abc", tok, sizeof(tok)) == 0 &&
	    strcmp(tok, "abc") == 0, "token: Bearer abc");
	tap_ok(t, app_auth_token("bearer  abc ", tok, sizeof(tok)) == 0 &&
	    strcmp(tok, "abc") == 0, "token: case and spaces");
	tap_ok(t, app_auth_token("abc", tok, sizeof(tok)) == 0 &&
	    strcmp(tok, "abc") == 0, "token: bare value, as the Node library");
	tap_ok(t, app_auth_token(NULL, tok, sizeof(tok)) == 0 && tok[0] == '\0',
	    "token: none");
	tap_ok(t, app_auth_token("Bearer 0123456789abcdef", tok, sizeof(tok)) ==
	    -1, "token: over the cap refused");
	tap_ok(t, app_auth_token_eq("abc", "abc"), "token_eq: equal");
	tap_ok(t, !app_auth_token_eq("abd", "abc"), "token_eq: last byte");
	tap_ok(t, !app_auth_token_eq("ab", "abc"), "token_eq: prefix");
	tap_ok(t, !app_auth_token_eq("abcd", "abc"), "token_eq: longer");
	tap_ok(t, !app_auth_token_eq("", "abc") && app_auth_token_eq("", ""),
	    "token_eq: empty");
}

static void
test_answers(struct tap *t)
{
	json_t *out, *j;

	j = app_answer_unknown_json("action", "do \"it\"");
	tap_ok(t, dump_is(j, "{\"success\":false,\"type\":\"data\",\"data\":"
	    "{\"error\":\"No action \\\"do \\\"it\\\"\\\" defined\"}}"),
	    "unknown action body, quotes escaped");
	json_decref(j);
	j = app_answer_unknown_json("event", "x");
	tap_ok(t, dump_is(j, "{\"success\":false,\"type\":\"data\",\"data\":"
	    "{\"error\":\"No event \\\"x\\\" defined\"}}"), "unknown event body");
	json_decref(j);

	tap_ok(t, app_answer_result_json(BM_OK, json_pack("{s:{s:i},s:s}", "data", "a",
	    1, "type", "data"), &out) == 200 && dump_is(out,
	    "{\"data\":{\"a\":1},\"type\":\"data\",\"success\":true}"),
	    "result: success adds success:true");
	json_decref(out);
	tap_ok(t, app_answer_result_json(BM_FAIL, json_pack("{s:s}", "type", "data"),
	    &out) == 200 && dump_is(out, "{\"type\":\"data\",\"success\":false}"),
	    "result: failure adds success:false");
	json_decref(out);
	tap_ok(t, app_answer_result_json(BM_OK, json_pack("{s:b,s:i}", "success", 0,
	    "x", 1), &out) == 200 && dump_is(out, "{\"success\":true,\"x\":1}"),
	    "result: success overrides a handler's own success");
	json_decref(out);
	tap_ok(t, app_answer_result_json(BM_OK, NULL, &out) == 500 && out == NULL,
	    "result: no reply is 500");
	tap_ok(t, app_answer_result_json(BM_OK, json_pack("[i]", 1), &out) == 500 &&
	    out == NULL, "result: array reply is 500");
	tap_ok(t, app_answer_result_json(BM_ERROR, json_object(), &out) == 500,
	    "result: BM_ERROR is 500");
	j = app_answer_error_json("boom");
	tap_ok(t, dump_is(j, "{\"success\":false,\"error\":\"boom\"}"),
	    "error body");
	json_decref(j);
}

static void
test_request_id(struct tap *t)
{
	char id[72];

	tap_ok(t, app_proto_request_id("abc-123_x.y", id, sizeof(id)) == 0 &&
	    strcmp(id, "abc-123_x.y") == 0, "request id: accepted");
	tap_ok(t, app_proto_request_id("a b", id, sizeof(id)) < 0 &&
	    app_proto_request_id("", id, sizeof(id)) < 0 &&
	    app_proto_request_id(NULL, id, sizeof(id)) < 0 &&
	    app_proto_request_id("a\nb", id, sizeof(id)) < 0,
	    "request id: junk refused");
}

int
main(void)
{
	struct tap tap = { 0 }, *t = &tap;

	test_route(t);
	test_head(t);
	test_envelope(t);
	test_token(t);
	test_answers(t);
	test_request_id(t);
	test_settings_routes(t);
	/* A check that silently stopped running is a failure too. */
	tap_ok(t, t->n == 7 + 15 + 16 + 10 + 9 + 2 + 8, "all %d checks ran",
	    7 + 15 + 16 + 10 + 9 + 2 + 8);
	return tap_done(t);
}
