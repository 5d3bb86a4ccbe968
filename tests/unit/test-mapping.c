/*
 * tests/unit/test-mapping.c - unit tests of mapping/: JavaScript number
 * and text conversions, every built-in transform and its edges, the
 * registry, loading errors, fidelity (64-bit integers, Unicode, invalid
 * UTF-8), accessors and allocation failures.  Prints TAP.
 *
 * Expected values marked "node" were checked against Node.js.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "botmatic/module.h"
#include "mapping/mapping.h"

/* A module's transform is handed to the registry as is. */
_Static_assert(__builtin_types_compatible_p(map_transform_fn,
    bm_transform_fn), "map_transform_fn must match bm_transform_fn");

static int ntest, nfail;

static void
ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", cond ? "ok" : "not ok", ++ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		nfail++;
}

static void
is(const char *got, const char *want, const char *name)
{
	int same = got != NULL && want != NULL ? strcmp(got, want) == 0 :
	    got == want;

	ok(same, "%s", name);
	if (!same)
		printf("#   got:  %s\n#   want: %s\n", got ? got : "(null)",
		    want ? want : "(null)");
}

/* Warnings collected for one run. */
struct warns {
	char text[2048];
};

static void
on_warn(void *arg, const char *field, const char *reason)
{
	struct warns *w = arg;
	size_t n = strlen(w->text);

	snprintf(w->text + n, sizeof(w->text) - n, "%s%s: %s",
	    n ? "\n" : "", field, reason);
}

/*
 * Maps {"v": value} toward `to` through a one-field mapping whose target
 * side has transform (JSON text, or NULL for none).  Returns, in buf, the
 * field's JSON.stringify text, "-" when it was skipped, "WARN reason" when
 * the transform failed, or "LOAD error" / "ERR error".
 */
static const char *
run(char *buf, size_t n, enum map_side to, const char *transform,
    const char *value)
{
	char mtext[4096], tr[2048] = "", err[1024];
	struct map_error merr;
	struct mapping *m = NULL;
	struct warns w = { "" };
	json_t *doc = NULL, *rec = NULL, *out = NULL;
	json_error_t jerr;
	char *s;

	if (transform != NULL)
		snprintf(tr, sizeof(tr), ",\"transform\":%s", transform);
	snprintf(mtext, sizeof(mtext), "[{\"id\":true,\"botmatic\":{\"name\":"
	    "\"id\"},\"ext\":{\"name\":\"xid\"}},{\"botmatic\":{\"name\":\"v\"%s},"
	    "\"ext\":{\"name\":\"v\"%s}}]", to == MAP_BOTMATIC ? tr : "",
	    to == MAP_EXT ? tr : "");
	if ((doc = json_loads(mtext, 0, &jerr)) == NULL) {
		snprintf(buf, n, "BAD TEST JSON %s", jerr.text);
		goto out;
	}
	if ((m = map_load_json(doc, "t.json", NULL, &merr)) == NULL) {
		snprintf(buf, n, "LOAD %s", merr.text);
		goto out;
	}
	snprintf(mtext, sizeof(mtext), "{\"v\":%s}", value);
	if ((rec = json_loads(mtext, 0, &jerr)) == NULL) {
		snprintf(buf, n, "BAD TEST JSON %s", jerr.text);
		goto out;
	}
	if (map_apply(m, rec, to == MAP_EXT ? MAP_BOTMATIC : MAP_EXT, to, &out,
	    on_warn, &w, err, sizeof(err)) == -1) {
		snprintf(buf, n, "ERR %s", err);
		goto out;
	}
	if (w.text[0] != '\0')
		snprintf(buf, n, "WARN %s", w.text);
	else if (json_object_get(out, "v") == NULL)
		snprintf(buf, n, "-");
	else {
		s = map_stringify(json_object_get(out, "v"));
		snprintf(buf, n, "%s", s ? s : "(unprintable)");
		free(s);
	}
out:
	json_decref(doc);
	json_decref(rec);
	json_decref(out);
	map_free(m);
	return buf;
}

/* to botmatic / to ext, one check each */
#define TB(tr, in, want) \
	is(run(buf, sizeof(buf), MAP_BOTMATIC, tr, in), want, \
	    "->botmatic " tr " " in)
#define TE(tr, in, want) \
	is(run(buf, sizeof(buf), MAP_EXT, tr, in), want, "->ext " tr " " in)

static void
test_stringify(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		/* node: JSON.stringify of each */
		{ "1e21", "1e+21" }, { "1.5e-7", "1.5e-7" }, { "0.1", "0.1" },
		{ "-0.0", "0" }, { "123.456", "123.456" }, { "5e-324", "5e-324" },
		{ "1.7976931348623157e308", "1.7976931348623157e+308" },
		{ "100.0", "100" }, { "1e20", "100000000000000000000" },
		{ "1e-6", "0.000001" }, { "1e-7", "1e-7" },
		{ "0.000001234", "0.000001234" },
		{ "1.2345678901234567e-7", "1.2345678901234566e-7" },
		{ "-1.5", "-1.5" }, { "0.3333333333333333", "0.3333333333333333" },
		{ "123456789012345680000.0", "123456789012345680000" },
		/* integers stay exact where JavaScript would round */
		{ "9007199254740993", "9007199254740993" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "-9223372036854775808", "-9223372036854775808" },
		{ "\"\\u001f\\\"\\\\/\\u00e9\\u2028\\n\\t\\b\\f\\r\"",
		    "\"\\u001f\\\"\\\\/\xc3\xa9\xe2\x80\xa8\\n\\t\\b\\f\\r\"" },
		{ "{\"b\":1,\"a\":[null,true,false]}",
		    "{\"b\":1,\"a\":[null,true,false]}" },
		{ "\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"" },
		{ "\"a\\u0000b\"", "\"a\\u0000b\"" },
		{ "[]", "[]" }, { "{}", "{}" },
	};
	json_t *v, *a = NULL, *deep;
	char *s;
	size_t i;
	int k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = json_loads(cases[i].in, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    NULL);
		s = v ? map_stringify(v) : NULL;
		is(s, cases[i].want, cases[i].in);
		free(s);
		json_decref(v);
	}
	v = json_stringn_nocheck("a\xff", 2);
	ok(map_stringify(v) == NULL, "stringify refuses invalid UTF-8");
	json_decref(v);
	v = json_stringn_nocheck("\xed\xa0\x80", 3);
	ok(map_stringify(v) == NULL, "stringify refuses an encoded surrogate");
	json_decref(v);
	v = json_stringn_nocheck("\xc0\xaf", 2);
	ok(map_stringify(v) == NULL, "stringify refuses an overlong form");
	json_decref(v);
	/* Deeper than any parser gives: refused, not a stack overflow. */
	deep = json_array();
	for (k = 0, v = deep; k < 5000; k++) {
		a = json_array();
		json_array_append_new(v, a);
		v = a;
	}
	ok(map_stringify(deep) == NULL, "stringify refuses 5000 levels");
	json_decref(deep);
}

static void
test_default(void)
{
	static const struct {
		enum map_side to;
		const char *in, *want;
	} cases[] = {
		{ MAP_EXT, "\"123\"", "123" },
		{ MAP_EXT, "\" true \"", "true" },
		{ MAP_EXT, "\"[1,{\\\"a\\\":null}]\"", "[1,{\"a\":null}]" },
		{ MAP_EXT, "\"abc\"", "\"abc\"" },
		{ MAP_EXT, "\"\\\"x\\\"\"", "\"x\"" },
		{ MAP_EXT, "\"12px\"", "\"12px\"" },
		{ MAP_EXT, "\"null\"", "null" },
		{ MAP_EXT, "\" -1.5e+3 \\n\"", "-1500" },
		{ MAP_EXT, "\"1.\"", "\"1.\"" },
		{ MAP_EXT, "\"-\"", "\"-\"" },
		{ MAP_EXT, "\"01\"", "\"01\"" },
		{ MAP_EXT, "\"tru\"", "\"tru\"" },
		{ MAP_EXT, "\"nulls\"", "\"nulls\"" },
		{ MAP_EXT, "\"2018-02-09\"", "\"2018-02-09\"" },
		{ MAP_EXT, "\"[1,\"", "\"[1,\"" },
		/* beyond 64 bits: kept as text rather than rounded */
		{ MAP_EXT, "\"99999999999999999999\"", "\"99999999999999999999\"" },
		{ MAP_EXT, "\"1e400\"", "\"1e400\"" },
		{ MAP_EXT, "{\"a\":\"1\"}", "{\"a\":\"1\"}" },
		{ MAP_BOTMATIC, "{\"url\":\"http://x/y\",\"n\":\"\\u00e9\"}",
		    "\"{\\\"url\\\":\\\"http://x/y\\\",\\\"n\\\":\\\"\xc3\xa9\\\"}\"" },
		{ MAP_BOTMATIC, "[1,2]", "\"[1,2]\"" },
		{ MAP_BOTMATIC, "null", "\"null\"" },
		{ MAP_BOTMATIC, "\"{}\"", "\"{}\"" },
		{ MAP_BOTMATIC, "12", "12" },
	};
	json_t *v, *r;
	char *s, name[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = json_loads(cases[i].in, JSON_DECODE_ANY, NULL);
		r = v ? map_default(cases[i].to, v) : NULL;
		s = r ? map_stringify(r) : NULL;
		snprintf(name, sizeof(name), "default ->%s %s",
		    map_side_name(cases[i].to), cases[i].in);
		is(s, cases[i].want, name);
		free(s);
		json_decref(r);
		json_decref(v);
	}
}

static void
test_int(void)
{
	char buf[2048];

	/* node: parseInt(v, 10) */
	TB("\"int\"", "\"12px\"", "12");
	TB("\"int\"", "\"  -42abc\"", "-42");
	TB("\"int\"", "\"+7\"", "7");
	TB("\"int\"", "\"\\u00a0\\u3000 5\"", "5");
	TB("\"int\"", "\"0x1A\"", "0");
	TB("\"int\"", "\"-0\"", "0");
	TB("\"int\"", "1e21", "1");
	TB("\"int\"", "1.5e-7", "1");
	TB("\"int\"", "12.9", "12");
	TB("\"int\"", "-12.9", "-12");
	TB("\"int\"", "-0.5", "0");
	TB("\"int\"", "4015", "4015");
	TB("\"int\"", "\"9007199254740993\"", "9007199254740993");
	TB("\"int\"", "\"9223372036854775807\"", "9223372036854775807");
	TB("\"int\"", "\"123456789012345678901234\"", "1.2345678901234569e+23");
	TB("\"int\"", "\"abc\"", "WARN v: int: no digits in \"abc\"");
	TB("\"int\"", "\".5\"", "WARN v: int: no digits in \".5\"");
	TB("\"int\"", "\"-\"", "WARN v: int: no digits in \"-\"");
	TB("\"int\"", "true", "WARN v: int: no digits in true");
	TB("\"int\"", "\"\"", "-");
	TB("\"int\"", "null", "-");
	/* toward ext the text is JSON-parsed first, objects reach int */
	TE("\"int\"", "\"[7,8]\"", "7");
	TE("\"int\"", "\"{}\"", "WARN v: int: no digits in {}");
}

static void
test_number(void)
{
	char buf[2048];

	/* node: Number(v) */
	TB("\"number\"", "\"12\"", "12");
	TB("\"number\"", "\" 12.5 \"", "12.5");
	TB("\"number\"", "\"0x1f\"", "31");
	TB("\"number\"", "\"0b101\"", "5");
	TB("\"number\"", "\"0o17\"", "15");
	TB("\"number\"", "\"1e3\"", "1000");
	TB("\"number\"", "\".5\"", "0.5");
	TB("\"number\"", "\"5.\"", "5");
	TB("\"number\"", "\"+.5e1\"", "5");
	TB("\"number\"", "\"\\u3000 7 \\n\"", "7");
	TB("\"number\"", "\" \"", "0");
	TB("\"number\"", "\"9007199254740993\"", "9007199254740993");
	TB("\"number\"", "true", "1");
	TB("\"number\"", "false", "0");
	TB("\"number\"", "2.5", "2.5");
	TB("\"number\"", "\"12px\"",
	    "WARN v: number: not a finite number: \"12px\"");
	TB("\"number\"", "\"Infinity\"",
	    "WARN v: number: not a finite number: \"Infinity\"");
	TB("\"number\"", "\"1e400\"",
	    "WARN v: number: not a finite number: \"1e400\"");
	TB("\"number\"", "\"-0x10\"",
	    "WARN v: number: not a finite number: \"-0x10\"");
	TB("\"number\"", "\"1_0\"",
	    "WARN v: number: not a finite number: \"1_0\"");
	TB("\"number\"", "\"0x\"", "WARN v: number: not a finite number: \"0x\"");
	TB("\"number\"", "\"1e\"", "WARN v: number: not a finite number: \"1e\"");
	TE("\"number\"", "\"[]\"", "0");
	TE("\"number\"", "\"[5]\"", "5");
	TE("\"number\"", "\"[1,2]\"",
	    "WARN v: number: not a finite number: [1,2]");
}

static void
test_string_boolean(void)
{
	char buf[2048];

	TB("\"string\"", "12", "\"12\"");
	TB("\"string\"", "1e21", "\"1e+21\"");
	TB("\"string\"", "-1e-7", "\"-1e-7\"");
	TB("\"string\"", "true", "\"true\"");
	TB("\"string\"", "\"x\"", "\"x\"");
	/* node: String([1,null,[2,3],{}]) */
	TE("\"string\"", "\"[1,null,[2,3],{}]\"", "\"1,,2,3,[object Object]\"");
	/* toward ext "12" parses back to 12: js-mapper's final conversion */
	TE("\"string\"", "12", "12");
	TB("\"boolean\"", "\"x\"", "true");
	TB("\"boolean\"", "\"0\"", "true");
	TB("\"boolean\"", "0", "false");
	TB("\"boolean\"", "0.0", "false");
	TB("\"boolean\"", "false", "false");
	TB("\"boolean\"", "{}", "true");   /* "{}" text toward botmatic */
	TE("\"boolean\"", "\"0\"", "false");
	TE("\"boolean\"", "\"[]\"", "true");
}

static void
test_text(void)
{
	char buf[2048];

	/* node: toLowerCase / toUpperCase / trim */
	TB("\"lower\"", "\"\\u00c9COLE \\u00c7a \\u0178\"",
	    "\"\xc3\xa9" "cole \xc3\xa7" "a \xc3\xbf\"");
	TB("\"upper\"", "\"stra\\u00dfe \\u00ff \\u00b5 \\u0131\"",
	    "\"STRASSE \xc5\xb8 \xce\x9c I\"");
	TB("\"lower\"", "\"\\u0391\\u0392\\u0393 \\u03a3\"",
	    "\"\xce\xb1\xce\xb2\xce\xb3 \xcf\x83\"");
	TB("\"upper\"", "\"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442\"",
	    "\"\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2\"");
	TB("\"upper\"", "\"\\u0142\\u00f1\\ud83d\\ude00\"",
	    "\"\xc5\x81\xc3\x91\xf0\x9f\x98\x80\"");
	TB("\"trim\"", "\" \\u00a0x y\\u3000\\ufeff\\n\"", "\"x y\"");
	TB("\"trim\"", "\"   \"", "\"\"");
	TB("\"upper\"", "42", "\"42\"");
	TB("\"lower\"", "true", "\"true\"");
	TE("\"lower\"", "\"{\\\"a\\\":1}\"",
	    "WARN v: lower: not a string: {\"a\":1}");
	TE("\"upper\"", "\"[1]\"", "WARN v: upper: not a string: [1]");
	TE("[\"trim\",\"lower\"]", "\"  MiXeD \"", "\"mixed\"");
}

static void
test_date(void)
{
	char buf[2048];

#define D(f, t) "{\"date\":{\"from\":\"" f "\",\"to\":\"" t "\"}}"
#define DZ(f, t, z) "{\"date\":{\"from\":\"" f "\",\"to\":\"" t "\",\"tz\":\"" z "\"}}"
	TB(D("iso8601", "sql"), "\"2018-02-09T12:44:26.000Z\"",
	    "\"2018-02-09 12:44:26\"");
	TB(D("iso8601", "sql"), "\"2018-02-09T12:44:26Z\"",
	    "\"2018-02-09 12:44:26\"");
	TB(D("iso8601", "iso8601"), "\"2018-02-09T12:44:26+01:00\"",
	    "\"2018-02-09T11:44:26.000Z\"");
	TB(D("iso8601", "iso8601"), "\"2018-02-09T12:44:26.5-02:30\"",
	    "\"2018-02-09T15:14:26.500Z\"");
	TB(D("iso8601", "iso8601"), "\"2018-02-09T12:44:26.123456Z\"",
	    "\"2018-02-09T12:44:26.123Z\"");
	TB(D("iso8601", "iso8601"), "\"1985-04-29\"",
	    "\"1985-04-29T00:00:00.000Z\"");
	TB(D("sql", "iso8601"), "\"2018-02-09 12:44:26\"",
	    "\"2018-02-09T12:44:26.000Z\"");
	TB(D("sql", "unix"), "\"2018-02-09 12:44:26\"", "1518180266");
	TB(D("iso8601", "unix_ms"), "\"2018-02-09T12:44:26.250Z\"",
	    "1518180266250");
	TB(D("unix", "iso8601"), "1518180266", "\"2018-02-09T12:44:26.000Z\"");
	TB(D("unix", "iso8601"), "\"1518180266\"",
	    "\"2018-02-09T12:44:26.000Z\"");
	TB(D("unix", "iso8601"), "1518180266.5",
	    "\"2018-02-09T12:44:26.500Z\"");
	TB(D("unix", "iso8601"), "-1", "\"1969-12-31T23:59:59.000Z\"");
	TB(D("unix_ms", "iso8601"), "-1", "\"1969-12-31T23:59:59.999Z\"");
	TB(D("unix_ms", "unix"), "-1", "-1");
	TB(D("unix", "iso8601"), "253402300800",
	    "\"+010000-01-01T00:00:00.000Z\"");
	TB(D("unix_ms", "iso8601"), "8640000000000000",
	    "\"+275760-09-13T00:00:00.000Z\"");
	TB(D("unix_ms", "iso8601"), "8640000000000001",
	    "WARN v: date: cannot read 8640000000000001 as unix_ms");
	TB(D("unix", "sql"), "253402300800",
	    "WARN v: date: year 10000 does not fit sql");
	TB(D("iso8601", "sql"), "\"2016-02-29T00:00:00Z\"",
	    "\"2016-02-29 00:00:00\"");
	TB(D("iso8601", "sql"), "\"2017-02-29T00:00:00Z\"",
	    "WARN v: date: cannot read \"2017-02-29T00:00:00Z\" as iso8601");
	TB(D("iso8601", "sql"), "\"2018-02-09T24:00:00Z\"",
	    "WARN v: date: cannot read \"2018-02-09T24:00:00Z\" as iso8601");
	TB(D("iso8601", "sql"), "\"yesterday\"",
	    "WARN v: date: cannot read \"yesterday\" as iso8601");
	TB(D("iso8601", "sql"), "true",
	    "WARN v: date: cannot read true as iso8601");
	TB(D("unix", "sql"), "\"soon\"",
	    "WARN v: date: cannot read \"soon\" as unix");
	TB(D("iso8601", "%d/%m/%Y"), "\"2018-02-09T12:44:26Z\"",
	    "\"09/02/2018\"");
	TB(D("%d/%m/%Y %H:%M", "iso8601"), "\"09/02/2018 12:44\"",
	    "\"2018-02-09T12:44:00.000Z\"");
	TB(D("%d/%m/%Y", "iso8601"), "\"31/02/2018\"",
	    "WARN v: date: cannot read \"31/02/2018\" as %d/%m/%Y");
	TB(D("%d/%m/%Y", "iso8601"), "\"09/02/2018 extra\"",
	    "WARN v: date: cannot read \"09/02/2018 extra\" as %d/%m/%Y");
	TB(D("%Y-%m-%dT%H:%M:%S%z", "iso8601"), "\"2018-02-09T12:44:26+0100\"",
	    "\"2018-02-09T11:44:26.000Z\"");
	TB(DZ("sql", "iso8601", "+02:00"), "\"2018-02-09 12:44:26\"",
	    "\"2018-02-09T10:44:26.000Z\"");
	TB(DZ("iso8601", "sql", "-05:30"), "\"2018-02-09T12:44:26Z\"",
	    "\"2018-02-09 07:14:26\"");
	TB(DZ("iso8601", "iso8601", "+02:00"), "\"2018-02-09T12:44:26\"",
	    "\"2018-02-09T10:44:26.000Z\"");
	TB(DZ("iso8601", "iso8601", "+02:00"), "\"2018-02-09T12:44:26Z\"",
	    "\"2018-02-09T12:44:26.000Z\"");
	TB(DZ("unix", "%Y-%m-%d %H:%M %z %Z %s %a %j", "+01:00"), "0",
	    "\"1970-01-01 01:00 +0100 +01:00 0 Thu 001\"");
	TB(D("unix", "%%s %%z"), "0", "\"%s %z\"");
	TB(DZ("sql", "unix", "UTC"), "\"1970-01-01 00:00:00\"", "0");
	/* toward ext "20180209" is a number by then: String() gives it back */
	TE(D("%Y%m%d", "iso8601"), "\"20180209\"",
	    "\"2018-02-09T00:00:00.000Z\"");
	/* ... and the result text is parsed again as js-mapper did */
	TE(D("iso8601", "%Y%m%d"), "\"2018-02-09T00:00:00Z\"", "20180209");
#undef D
#undef DZ
}

static void
test_table_chain(void)
{
	char buf[2048];

	TB("{\"map\":{\"M\":\"male\",\"F\":\"female\"}}", "\"M\"", "\"male\"");
	TB("{\"map\":{\"M\":\"male\"}}", "\"X\"",
	    "WARN v: map: no entry for \"X\"");
	TB("{\"map\":{\"M\":\"male\"},\"default\":\"other\"}", "\"X\"",
	    "\"other\"");
	TB("{\"map\":{\"1\":\"one\",\"true\":\"yes\"}}", "1", "\"one\"");
	TB("{\"map\":{\"1\":\"one\",\"true\":\"yes\"}}", "true", "\"yes\"");
	/* a table value that is an object is stringified toward botmatic */
	TB("{\"map\":{\"a\":{\"k\":[1]}}}", "\"a\"", "\"{\\\"k\\\":[1]}\"");
	TB("{\"map\":{\"a\":1},\"default\":null}", "\"b\"", "\"null\"");
	TE("{\"map\":{\"a\":1},\"default\":null}", "\"b\"", "null");
	TB("[\"trim\",{\"map\":{\"m\":\"Male\"}},\"upper\"]", "\"  m \"",
	    "\"MALE\"");
	TB("[\"trim\",\"int\",{\"map\":{\"3\":\"three\"}}]", "\" 3kg\"",
	    "\"three\"");
	TB("[\"int\",\"upper\"]", "\"x\"", "WARN v: int: no digits in \"x\"");
}

static void
test_strict_warn(void)
{
	const char *mtext =
	    "[{\"id\":true,\"botmatic\":{\"name\":\"id\"},\"ext\":{\"name\":\"id\","
	    "\"transform\":\"int\"}},"
	    "{\"strict\":true,\"botmatic\":{\"name\":\"age\"},\"ext\":{\"name\":"
	    "\"age\",\"transform\":\"int\"}},"
	    "{\"botmatic\":{\"name\":\"n\"},\"ext\":{\"name\":\"n\",\"transform\":"
	    "\"number\"}}]";
	struct mapping *m;
	struct map_error merr;
	struct warns w = { "" };
	json_t *doc, *rec, *out = NULL;
	char err[1024], *s = NULL;
	int rc;

	doc = json_loads(mtext, 0, NULL);
	m = map_load_json(doc, NULL, NULL, &merr);
	ok(m != NULL, "strict mapping loads");
	rec = json_loads("{\"id\":\"x\",\"age\":\"12\",\"n\":\"y\"}", 0, NULL);
	rc = map_apply(m, rec, MAP_BOTMATIC, MAP_EXT, &out, on_warn, &w, err,
	    sizeof(err));
	s = rc == 0 ? map_stringify(out) : NULL;
	is(s, "{\"age\":12}", "failed non-strict fields are left out");
	is(w.text, "id: int: no digits in \"x\"\nn: number: not a finite "
	    "number: \"y\"", "each left-out field warns once");
	free(s);
	json_decref(out);
	out = NULL;
	json_decref(rec);
	rec = json_loads("{\"id\":1,\"age\":\"old\"}", 0, NULL);
	rc = map_apply(m, rec, MAP_BOTMATIC, MAP_EXT, &out, NULL, NULL, err,
	    sizeof(err));
	ok(rc == -1 && out == NULL, "a strict failure fails the mapping");
	is(err, "field \"age\": int: no digits in \"old\"", "strict message");
	json_decref(rec);
	rec = json_loads("[1]", 0, NULL);
	rc = map_apply(m, rec, MAP_BOTMATIC, MAP_EXT, &out, NULL, NULL, err,
	    sizeof(err));
	ok(rc == -1, "a non-object record fails");
	is(err, "the record is not a JSON object", "non-object message");
	json_decref(rec);
	rec = json_object();
	json_object_set_new(rec, "n", json_stringn_nocheck("\xc3(", 2));
	rc = map_apply(m, rec, MAP_BOTMATIC, MAP_EXT, &out, NULL, NULL, err,
	    sizeof(err));
	ok(rc == -1, "invalid UTF-8 in a record fails");
	is(err, "field \"n\": invalid UTF-8 or nested too deeply",
	    "invalid UTF-8 message");
	json_decref(rec);
	rc = map_apply(m, NULL, MAP_BOTMATIC, MAP_EXT, &out, NULL, NULL, err,
	    sizeof(err));
	ok(rc == -1, "a NULL record fails");
	rc = map_apply(m, doc, (enum map_side)7, MAP_EXT, &out, NULL, NULL, err,
	    sizeof(err));
	ok(rc == -1, "a bad side fails");
	json_decref(doc);
	map_free(m);
}

/* A module's transforms. */
static int
xf_phone(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	const char *cc = "+33";

	if (!json_is_string(in)) {
		snprintf(err, errlen, "not text");
		return -1;
	}
	if (params != NULL)
		cc = json_string_value(json_object_get(json_object_get(params,
		    "phone"), "cc"));
	*out = json_sprintf("%s %s", cc ? cc : "?", json_string_value(in));
	return 0;
}

static int
xf_null_out(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)in; (void)params; (void)err; (void)errlen;
	*out = NULL;
	return 0;
}

static int
xf_bad_utf8(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)in; (void)params; (void)err; (void)errlen;
	*out = json_stringn_nocheck("\xff", 1);
	return 0;
}

static int
xf_fail_noerr(const json_t *in, const json_t *params, json_t **out,
    char *err, size_t errlen)
{
	(void)in; (void)params; (void)err; (void)errlen;
	*out = json_string("leaked?");   /* must be released by the caller */
	return -1;
}

static void
test_registry(void)
{
	struct map_registry *reg = map_registry_new();
	struct map_error merr;
	struct mapping *m;
	struct warns w = { "" };
	json_t *doc, *rec, *out = NULL;
	char err[256], *s = NULL;

	ok(reg != NULL, "registry_new");
	ok(map_registry_add(reg, "phone", xf_phone, err, sizeof(err)) == 0,
	    "add a transform");
	ok(map_registry_add(reg, "phone", xf_phone, err, sizeof(err)) == -1,
	    "a duplicate is refused");
	is(err, "transform \"phone\" is already registered", "duplicate message");
	ok(map_registry_add(reg, "int", xf_phone, err, sizeof(err)) == -1,
	    "a built-in name is refused");
	is(err, "transform \"int\" is built in", "built-in message");
	ok(map_registry_add(reg, "a b", xf_phone, err, sizeof(err)) == -1,
	    "a bad name is refused");
	is(err, "transform name \"a b\": only letters, digits and _ . : - are "
	    "allowed", "bad name message");
	ok(map_registry_add(reg, "", xf_phone, err, sizeof(err)) == -1,
	    "an empty name is refused");
	ok(map_registry_add(reg, "x", NULL, err, sizeof(err)) == -1,
	    "a NULL function is refused");
	map_registry_add(reg, "nullout", xf_null_out, err, sizeof(err));
	map_registry_add(reg, "badutf8", xf_bad_utf8, err, sizeof(err));
	map_registry_add(reg, "failsilent", xf_fail_noerr, err, sizeof(err));

	doc = json_loads("[{\"id\":true,\"botmatic\":{\"name\":\"id\"},\"ext\":"
	    "{\"name\":\"id\"}},"
	    "{\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\",\"transform\":"
	    "\"phone\"}},"
	    "{\"botmatic\":{\"name\":\"b\"},\"ext\":{\"name\":\"b\",\"transform\":"
	    "{\"phone\":{\"cc\":\"+44\"}}}},"
	    "{\"botmatic\":{\"name\":\"c\"},\"ext\":{\"name\":\"c\",\"transform\":"
	    "[\"trim\",\"phone\"]}},"
	    "{\"botmatic\":{\"name\":\"d\"},\"ext\":{\"name\":\"d\",\"transform\":"
	    "\"nullout\"}},"
	    "{\"botmatic\":{\"name\":\"e\"},\"ext\":{\"name\":\"e\",\"transform\":"
	    "\"badutf8\"}},"
	    "{\"botmatic\":{\"name\":\"f\"},\"ext\":{\"name\":\"f\",\"transform\":"
	    "\"failsilent\"}},"
	    "{\"botmatic\":{\"name\":\"g\"},\"ext\":{\"name\":\"g\",\"transform\":"
	    "\"phone\"}}]", 0, NULL);
	m = map_load_json(doc, "r.json", reg, &merr);
	ok(m != NULL, "a mapping using registered transforms loads");
	if (m == NULL)
		printf("# %s\n", merr.text);
	rec = json_loads("{\"a\":\"06 12\",\"b\":\"77-00\",\"c\":\" 1 \",\"d\":1,"
	    "\"e\":1,\"f\":1,\"g\":[1]}", 0, NULL);
	if (m != NULL && map_apply(m, rec, MAP_BOTMATIC, MAP_EXT, &out, on_warn,
	    &w, err, sizeof(err)) == 0)
		s = map_stringify(out);
	is(s, "{\"a\":\"+33 06 12\",\"b\":\"+44 77-00\",\"c\":\"+33 1\"}",
	    "registered transforms run, with their parameters");
	is(w.text, "d: nullout: returned no value\n"
	    "e: badutf8: returned invalid UTF-8 or a too deep value\n"
	    "f: failsilent: failed\n"
	    "g: phone: not text", "a module's failures become warnings");
	free(s);
	json_decref(out);
	json_decref(rec);
	map_free(m);
	m = map_load_json(doc, "r.json", NULL, &merr);
	ok(m == NULL, "without the registry the names are unknown");
	is(merr.text, "r.json: entry 1: ext.transform: unknown transform "
	    "\"phone\"", "unknown registered transform message");
	json_decref(doc);
	map_registry_free(reg);
	map_registry_free(NULL);
}

static void
test_load_errors(void)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{}", "e.json: not a JSON array of entries" },
		{ "[]", "e.json: no entry has \"id\": true" },
		{ "[1]", "e.json: entry 0: not an object" },
		{ "[{\"ext\":{\"name\":\"a\"}}]", "e.json: entry 0: botmatic: missing" },
		{ "[{\"botmatic\":{\"name\":\"a\"}}]", "e.json: entry 0: ext: missing" },
		{ "[{\"botmatic\":[],\"ext\":{}}]",
		    "e.json: entry 0: botmatic: not an object" },
		{ "[{\"botmatic\":{},\"ext\":{}}]",
		    "e.json: entry 0: botmatic.name: missing" },
		{ "[{\"botmatic\":{\"name\":\"\"},\"ext\":{}}]",
		    "e.json: entry 0: botmatic.name: not a non-empty string" },
		{ "[{\"botmatic\":{\"name\":\"a\\u0000b\"},\"ext\":{}}]",
		    "e.json: entry 0: botmatic.name: not a non-empty string" },
		{ "[{\"botmatic\":{\"name\":1},\"ext\":{}}]",
		    "e.json: entry 0: botmatic.name: not a non-empty string" },
		{ "[{\"botmatic\":{\"name\":\"a\",\"tranform\":\"int\"},\"ext\":{}}]",
		    "e.json: entry 0: botmatic.tranform: unknown field" },
		{ "[{\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\",\"type\":"
		    "\"text\"}}]", "e.json: entry 0: ext.type: unknown field" },
		{ "[{\"ID\":true,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\"}}]",
		    "e.json: entry 0: ID: unknown field" },
		{ "[{\"botmatic\":{\"name\":\"a\",\"type\":\"bool\"},\"ext\":{\"name\":"
		    "\"a\"}}]",
		    "e.json: entry 0: botmatic.type: unknown type \"bool\" (text, "
		    "date or number)" },
		{ "[{\"id\":1,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\"}}]",
		    "e.json: entry 0: id: not true or false" },
		{ "[{\"strict\":\"yes\",\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":"
		    "\"a\"}}]", "e.json: entry 0: strict: not true or false" },
		{ "[{\"id\":false,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\"}}]",
		    "e.json: no entry has \"id\": true" },
		{ "[{\"id\":true,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\"}},"
		    "{\"id\":true,\"botmatic\":{\"name\":\"b\"},\"ext\":{\"name\":\"b\"}}]",
		    "e.json: entry 1: id: a second id entry (the first is entry 0)" },
		{ "[{\"id\":true,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\"}},"
		    "{\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"b\"}}]",
		    "e.json: entry 1: botmatic.name: duplicate name \"a\" (also entry 0)" },
		{ "[{\"id\":true,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":\"a\"}},"
		    "{\"botmatic\":{\"name\":\"b\"},\"ext\":{\"name\":\"a\"}}]",
		    "e.json: entry 1: ext.name: duplicate name \"a\" (also entry 0)" },
#define T(tr) "[{\"id\":true,\"botmatic\":{\"name\":\"a\"},\"ext\":{\"name\":" \
	    "\"a\",\"transform\":" tr "}}]"
		{ T("\"foo\""), "e.json: entry 0: ext.transform: unknown transform "
		    "\"foo\"" },
		{ T("[\"trim\",\"foo\"]"), "e.json: entry 0: ext.transform[1]: "
		    "unknown transform \"foo\"" },
		{ T("[]"), "e.json: entry 0: ext.transform: empty list of transforms" },
		{ T("[[\"int\"]]"), "e.json: entry 0: ext.transform[0]: a list "
		    "inside a list" },
		{ T("12"), "e.json: entry 0: ext.transform: a transform is a name, "
		    "an object or a list of them" },
		{ T("{}"), "e.json: entry 0: ext.transform: a transform object has "
		    "one key, the transform's name" },
		{ T("{\"foo\":{}}"), "e.json: entry 0: ext.transform: unknown "
		    "transform \"foo\"" },
		{ T("{\"int\":{}}"), "e.json: entry 0: ext.transform: transform "
		    "\"int\" takes no parameters: write \"int\"" },
		{ T("\"date\""), "e.json: entry 0: ext.transform: transform \"date\" "
		    "needs parameters: {\"date\": ...}" },
		{ T("\"map\""), "e.json: entry 0: ext.transform: transform \"map\" "
		    "needs parameters: {\"map\": ...}" },
		{ T("{\"date\":\"iso8601\"}"), "e.json: entry 0: ext.transform: "
		    "date: parameters must be an object {\"from\":...,\"to\":...}" },
		{ T("{\"date\":{\"to\":\"sql\"}}"), "e.json: entry 0: ext.transform: "
		    "date.from: missing" },
		{ T("{\"date\":{\"from\":\"sql\"}}"), "e.json: entry 0: "
		    "ext.transform: date.to: missing" },
		{ T("{\"date\":{\"from\":1,\"to\":\"sql\"}}"), "e.json: entry 0: "
		    "ext.transform: date.from: not a string" },
		{ T("{\"date\":{\"from\":\"iso\",\"to\":\"sql\"}}"), "e.json: entry 0: "
		    "ext.transform: date.from: unknown format \"iso\" (iso8601, sql, "
		    "unix, unix_ms or a strftime pattern)" },
		{ T("{\"date\":{\"from\":\"%s\",\"to\":\"sql\"}}"), "e.json: entry 0: "
		    "ext.transform: date.from: %s cannot be read, use \"unix\"" },
		{ T("{\"date\":{\"from\":\"sql\",\"to\":\"%Y%\"}}"), "e.json: entry 0: "
		    "ext.transform: date.to: the pattern ends with %" },
		{ T("{\"date\":{\"from\":\"sql\",\"to\":\"unix\",\"tz\":\"Europe/Paris\"}}"),
		    "e.json: entry 0: ext.transform: date.tz: unsupported time zone "
		    "\"Europe/Paris\" (UTC or an offset such as +01:00)" },
		{ T("{\"date\":{\"from\":\"sql\",\"to\":\"unix\",\"tz\":\"+25:00\"}}"),
		    "e.json: entry 0: ext.transform: date.tz: unsupported time zone "
		    "\"+25:00\" (UTC or an offset such as +01:00)" },
		{ T("{\"date\":{\"from\":\"sql\",\"to\":\"unix\",\"tz\":1}}"),
		    "e.json: entry 0: ext.transform: date.tz: not a string" },
		{ T("{\"date\":{\"from\":\"sql\",\"to\":\"unix\",\"zone\":\"UTC\"}}"),
		    "e.json: entry 0: ext.transform: date: unknown parameter \"zone\"" },
		{ T("{\"map\":[1]}"), "e.json: entry 0: ext.transform: map: the table "
		    "must be an object {\"value\": replacement, ...}" },
		{ T("{\"map\":{},\"else\":1}"), "e.json: entry 0: ext.transform: map: "
		    "unknown key \"else\" (only \"map\" and \"default\")" },
		{ T("[\"trim\",{\"date\":{\"from\":\"x\",\"to\":\"sql\"}}]"),
		    "e.json: entry 0: ext.transform[1]: date.from: unknown format "
		    "\"x\" (iso8601, sql, unix, unix_ms or a strftime pattern)" },
#undef T
	};
	struct map_error merr;
	struct mapping *m;
	json_t *doc;
	size_t i;
	char name[64];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		doc = json_loads(cases[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    NULL);
		snprintf(merr.text, sizeof(merr.text), "(no error)");
		m = doc ? map_load_json(doc, "e.json", NULL, &merr) : NULL;
		snprintf(name, sizeof(name), "load error %zu", i);
		is(m == NULL ? merr.text : "(loaded)", cases[i].want, name);
		map_free(m);
		json_decref(doc);
	}
	ok(map_load_json(NULL, NULL, NULL, NULL) == NULL,
	    "a NULL document with no error struct fails quietly");
	m = map_load_file("/nonexistent/m.json", NULL, &merr);
	ok(m == NULL && strncmp(merr.text, "/nonexistent/m.json: unable to open",
	    35) == 0, "an unreadable file is named: %s", merr.text);
}

static void
test_accessors(void)
{
	const char *src = getenv("BM_TEST_SRCDIR");
	char path[4096];
	struct map_error merr;
	struct mapping *m;
	enum map_side s;

	snprintf(path, sizeof(path), "%s/tests/data/mapping/"
	    "js-mapper-botmatic-to-ext/map.json", src ? src : ".");
	m = map_load_file(path, NULL, &merr);
	ok(m != NULL, "js-mapper's mappings load");
	if (m == NULL) {
		printf("# %s\n", merr.text);
		return;
	}
	/* js-mapper's getExtIdKey() test */
	is(map_id_name(m, MAP_EXT), "id", "ext id key");
	is(map_id_name(m, MAP_BOTMATIC), "id", "botmatic id name");
	ok(map_count(m) == 11, "count");
	is(map_entry_name(m, 5, MAP_EXT), "date_inscription", "entry name ext");
	is(map_entry_name(m, 5, MAP_BOTMATIC), "signup_date", "entry name bm");
	is(map_entry_type(m, 5), "date", "entry type");
	is(map_entry_type(m, 1), "text", "default type");
	is(map_entry_type(m, 6), "number", "number type");
	ok(map_entry_is_id(m, 0) && !map_entry_is_id(m, 1), "is_id");
	ok(map_entry_name(m, 11, MAP_EXT) == NULL && map_entry_type(m, 99) ==
	    NULL && !map_entry_is_id(m, 11), "out of range is NULL");
	ok(map_side_parse("ext", &s) == 0 && s == MAP_EXT &&
	    map_side_parse("botmatic", &s) == 0 && s == MAP_BOTMATIC &&
	    map_side_parse("EXT", &s) == -1 && map_side_parse(NULL, &s) == -1,
	    "side_parse");
	map_free(m);
	map_free(NULL);
}

/* Fails the Nth allocation jansson makes, to walk every error path. */
static int chaos_left;

static void *
chaos_malloc(size_t n)
{
	if (chaos_left-- == 0)
		return NULL;
	return malloc(n);
}

static void
test_chaos(void)
{
	const char *src = getenv("BM_TEST_SRCDIR");
	char path[4096], err[256];
	struct map_error merr;
	struct mapping *m;
	json_t *rec = NULL, *out;
	int n, rc, passed = 0;

	snprintf(path, sizeof(path), "%s/tests/data/mapping/"
	    "js-mapper-ext-to-botmatic/in.json", src ? src : ".");
	rec = json_load_file(path, 0, NULL);
	snprintf(path, sizeof(path), "%s/tests/data/mapping/"
	    "js-mapper-ext-to-botmatic/map.json", src ? src : ".");
	/* Until a run needs fewer allocations than the one made to fail:
	 * each failing run must fail cleanly (ASan and valgrind watch). */
	for (n = 0; n < 100000; n++) {
		chaos_left = n;
		out = NULL;
		json_set_alloc_funcs(chaos_malloc, free);
		m = map_load_file(path, NULL, &merr);
		rc = m == NULL ? -1 : map_apply(m, rec, MAP_EXT, MAP_BOTMATIC,
		    &out, NULL, NULL, err, sizeof(err));
		json_set_alloc_funcs(malloc, free);
		json_decref(out);
		map_free(m);
		if (chaos_left >= 0) {
			passed = rc == 0;
			break;
		}
	}
	ok(rec != NULL && passed, "every allocation failure is handled "
	    "(%d allocations)", n);
	json_decref(rec);
}

int
main(void)
{
	test_stringify();
	test_default();
	test_int();
	test_number();
	test_string_boolean();
	test_text();
	test_date();
	test_table_chain();
	test_strict_warn();
	test_registry();
	test_load_errors();
	test_accessors();
	test_chaos();
	printf("1..%d\n", ntest);
	return nfail ? 1 : 0;
}
