/*
 * tests/unit/test-schema-suite.c - schema/ against the official
 * JSON-Schema-Test-Suite, as Debian's json-schema-test-suite installs it
 * (BM_SCHEMA_SUITE_DIR, default the configure-time
 * JSON_SCHEMA_TEST_SUITE; SKIP when absent).  Prints TAP: one point per
 * test of every case of every draft 7 file, then counts per file.
 *
 * Debian's 2.0.0 has no draft 2020-12 directory.  The draft 7 files are
 * run with draft 7's spellings translated to 2020-12's, mechanically and
 * only in schema positions: "definitions" is "$defs" (and "#/definitions/"
 * in a $ref "#/$defs/"), an array "items" is "prefixItems" with
 * "additionalItems" then "items", and "additionalItems" beside no array
 * "items" is dropped (draft 7 ignores it there).  Tests whose expected
 * result 2020-12 changed are listed in `changed` with the reason and
 * checked against the 2020-12 result.
 *
 * A case whose schema uses a keyword outside schema/'s list must be
 * refused at compile time: it is counted as "refused: unsupported keyword
 * X", and so is a $ref or $id this library refuses on purpose (remote
 * references, embedded $id).  Any other refusal is a failure.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "schema/schema.h"
#include "tests/tap.h"

#ifndef BM_SCHEMA_SUITE_DIR
#define BM_SCHEMA_SUITE_DIR "/usr/share/json-schema-test-suite"
#endif

/* Tests whose draft 7 expectation 2020-12 reverses. */
static const struct changed {
	const char *file, *cas, *test;
	int valid;                  /* the 2020-12 result */
	const char *why;
} changed[] = {
	{ "ref.json", "ref overrides any sibling keywords",
	  "ref valid, maxItems ignored", 0,
	  "2020-12 applies keywords beside $ref (draft 7 ignored them)" },
};

/* Optional files not run, and why. */
static const struct {
	const char *file, *why;
} not_run[] = {
	{ "optional/bignum.json", "integers beyond 64 bits: jansson refuses "
	  "to read them" },
	{ "optional/ecmascript-regex.json", "asserts \"format\", an "
	  "annotation in 2020-12" },
	{ "optional/format/", "asserts \"format\", an annotation in 2020-12" },
};

/* The keywords schema/ supports (a refusal naming one is a failure). */
static const char *const supported[] = { "type", "properties", "required",
    "additionalProperties", "items", "prefixItems", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "uniqueItems", "allOf", "anyOf", "oneOf", "not", "$ref", "$defs",
    "$schema", "$id", "$comment", "title", "description", "default",
    "examples", "format", "deprecated", "readOnly", "writeOnly", NULL };

/* Per file, and per refused keyword, counts for the final summary. */
struct count {
	char name[128];
	int passed, failed, refused, changed;
};

static struct count files[64], refusals[64];
static size_t nfiles, nrefusals;

static struct count *
count_for(struct count *t, size_t *n, const char *name)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	if (*n == 64)
		return &t[63];
	snprintf(t[*n].name, sizeof(t[*n].name), "%s", name);
	return &t[(*n)++];
}

static int
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

/* --- translation, draft 7 to 2020-12 ----------------------------------- */

static json_t *tr_schema(const json_t *v);

/* Keywords whose value is an object of schemas, an array of schemas, a
 * schema. */
static const char *const kw_map[] = { "properties", "patternProperties",
    "definitions", "$defs", "dependencies", NULL };
static const char *const kw_array[] = { "allOf", "anyOf", "oneOf", NULL };
static const char *const kw_one[] = { "not", "additionalProperties",
    "contains", "propertyNames", "if", "then", "else", NULL };

static json_t *
tr_map(const json_t *v)
{
	const char *key;
	json_t *m, *out;

	if (!json_is_object(v))
		return json_deep_copy(v);
	out = json_object();
	json_object_foreach((json_t *)v, key, m)
		json_object_set_new(out, key, json_is_array(m) ?
		    json_deep_copy(m) : tr_schema(m));
	return out;
}

static json_t *
tr_array(const json_t *v)
{
	json_t *out;
	size_t i;

	if (!json_is_array(v))
		return json_deep_copy(v);
	out = json_array();
	for (i = 0; i < json_array_size(v); i++)
		json_array_append_new(out, tr_schema(json_array_get(v, i)));
	return out;
}

/* Decodes a pointer token (%XX, ~1, ~0) into buf. */
static void
token_decode(const char *t, size_t n, char *buf, size_t len)
{
	size_t i, o = 0;
	char hex[3] = { 0, 0, 0 };

	for (i = 0; i < n && o + 1 < len; i++) {
		if (t[i] == '%' && i + 2 < n) {
			hex[0] = t[i + 1];
			hex[1] = t[i + 2];
			buf[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else if (t[i] == '~' && i + 1 < n) {
			buf[o++] = t[i + 1] == '1' ? '/' : '~';
			i++;
		} else
			buf[o++] = t[i];
	}
	buf[o] = '\0';
}

/* A $ref's pointer, with renamed tokens renamed: walks the draft 7
 * document to know which tokens are keywords. */
static json_t *
tr_ref(const json_t *root, const char *ref)
{
	enum { SCHEMA, NAME, DATA } state = SCHEMA;
	const json_t *cur = root;
	char out[1024], tok[256];
	const char *p, *e;
	size_t n;

	if (strncmp(ref, "#/", 2) != 0)
		return json_string(ref);
	snprintf(out, sizeof(out), "#");
	for (p = ref + 2; ; p = e + 1) {
		const char *name;

		e = strchr(p, '/');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		token_decode(p, n, tok, sizeof(tok));
		name = NULL;
		if (state == SCHEMA && json_is_object(cur)) {
			const json_t *items = json_object_get(cur, "items");

			if (strcmp(tok, "definitions") == 0)
				name = "$defs";
			else if (strcmp(tok, "items") == 0 &&
			    json_is_array(items))
				name = "prefixItems";
			else if (strcmp(tok, "additionalItems") == 0 &&
			    json_is_array(items))
				name = "items";
			if (in_list(kw_map, tok) || in_list(kw_array, tok) ||
			    (strcmp(tok, "items") == 0 && json_is_array(items)))
				state = NAME;
			else if (!in_list(kw_one, tok) &&
			    strcmp(tok, "items") != 0 &&
			    strcmp(tok, "additionalItems") != 0)
				state = DATA;
		} else if (state == NAME)
			state = SCHEMA;
		if (json_is_object(cur))
			cur = json_object_get(cur, tok);
		else if (json_is_array(cur))
			cur = json_array_get(cur, (size_t)atol(tok));
		else
			cur = NULL;
		n = strlen(out);
		if (name != NULL)
			snprintf(out + n, sizeof(out) - n, "/%s", name);
		else
			snprintf(out + n, sizeof(out) - n, "/%.*s",
			    (int)(e != NULL ? (size_t)(e - p) : strlen(p)), p);
		if (e == NULL)
			break;
	}
	return json_string(out);
}

static const json_t *tr_root;

static json_t *
tr_schema(const json_t *v)
{
	const json_t *items;
	const char *key;
	json_t *m, *out;

	if (!json_is_object(v))
		return json_deep_copy(v);
	items = json_object_get(v, "items");
	out = json_object();
	json_object_foreach((json_t *)v, key, m) {
		if (strcmp(key, "definitions") == 0)
			json_object_set_new(out, "$defs", tr_map(m));
		else if (in_list(kw_map, key))
			json_object_set_new(out, key, tr_map(m));
		else if (in_list(kw_array, key))
			json_object_set_new(out, key, tr_array(m));
		else if (in_list(kw_one, key))
			json_object_set_new(out, key, tr_schema(m));
		else if (strcmp(key, "items") == 0)
			json_object_set_new(out, json_is_array(m) ?
			    "prefixItems" : "items", json_is_array(m) ?
			    tr_array(m) : tr_schema(m));
		else if (strcmp(key, "additionalItems") == 0) {
			if (json_is_array(items))
				json_object_set_new(out, "items",
				    tr_schema(m));
		} else if (strcmp(key, "$ref") == 0 && json_is_string(m))
			json_object_set_new(out, key, tr_ref(tr_root,
			    json_string_value(m)));
		else
			json_object_set_new(out, key, json_deep_copy(m));
	}
	return out;
}

/* --- running ------------------------------------------------------------ */

/* Is this refusal one the library makes on purpose?  Returns a new
 * reason for the summary, or NULL (a failure). */
static const char *
refusal_reason(const struct schema_error *err, char *buf, size_t len)
{
	if (strstr(err->text, "unknown keyword") != NULL &&
	    !in_list(supported, err->keyword)) {
		snprintf(buf, len, "unsupported keyword %s", err->keyword);
		return buf;
	}
	if (strcmp(err->keyword, "$ref") == 0 &&
	    strstr(err->text, "not a local reference") != NULL) {
		snprintf(buf, len, "remote $ref");
		return buf;
	}
	if (strcmp(err->keyword, "$id") == 0) {
		snprintf(buf, len, "$id below the root");
		return buf;
	}
	return NULL;
}

static const struct changed *
find_changed(const char *file, const char *cas, const char *test)
{
	size_t i;

	for (i = 0; i < sizeof(changed) / sizeof(changed[0]); i++)
		if (strcmp(changed[i].file, file) == 0 &&
		    strcmp(changed[i].cas, cas) == 0 &&
		    strcmp(changed[i].test, test) == 0)
			return &changed[i];
	return NULL;
}

static void
run_case(struct tap *t, const char *file, const json_t *c)
{
	const char *cdesc = json_string_value(json_object_get(c, "description"));
	const json_t *tests = json_object_get(c, "tests"), *test;
	struct count *fc = count_for(files, &nfiles, file);
	struct schema_error err;
	struct schema *s = NULL;
	const char *why = NULL;
	char reason[128];
	json_t *doc;
	size_t i;

	tr_root = json_object_get(c, "schema");
	doc = tr_schema(tr_root);
	if (doc == NULL || schema_compile(doc, &s, &err) == -1) {
		why = doc != NULL ? refusal_reason(&err, reason,
		    sizeof(reason)) : NULL;
		json_array_foreach(tests, i, test) {
			const char *tdesc = json_string_value(
			    json_object_get(test, "description"));

			if (why != NULL) {
				tap_ok(t, 1, "%s: %s: %s # SKIP refused: %s",
				    file, cdesc, tdesc, why);
				fc->refused++;
			} else {
				tap_ok(t, 0, "%s: %s: %s", file, cdesc, tdesc);
				tap_diag("  refused: %s", doc != NULL ?
				    err.text : "translation failed");
				fc->failed++;
			}
		}
		if (why != NULL) {
			struct count *rc = count_for(refusals, &nrefusals, why);

			rc->refused += (int)json_array_size(tests);
		}
		json_decref(doc);
		return;
	}
	json_array_foreach(tests, i, test) {
		const char *tdesc = json_string_value(json_object_get(test,
		    "description"));
		int want = json_is_true(json_object_get(test, "valid")), r, good;
		const struct changed *ch = find_changed(file, cdesc, tdesc);

		if (ch != NULL)
			want = ch->valid;
		r = schema_validate(s, json_object_get(test, "data"), &err);
		/* An invalid verdict must come with its error line. */
		good = r == !want && (r == 0 || (err.text[0] != '\0' &&
		    strncmp(err.text, err.pointer[0] != '\0' ? err.pointer :
		    "(root)", strlen(err.pointer[0] != '\0' ? err.pointer :
		    "(root)")) == 0));
		if (ch != NULL) {
			tap_ok(t, good, "%s: %s: %s (2020-12: %s, because %s)",
			    file, cdesc, tdesc, want ? "valid" : "invalid",
			    ch->why);
			if (good)
				fc->changed++;
		} else
			tap_ok(t, good, "%s: %s: %s", file, cdesc, tdesc);
		if (!good) {
			tap_diag("  got %d (%s), want %s", r, r != 0 ? err.text :
			    "valid", want ? "valid" : "invalid");
			fc->failed++;
		} else if (ch == NULL)
			fc->passed++;
	}
	schema_free(s);
	json_decref(doc);
}

static void
run_file(struct tap *t, const char *dir, const char *name)
{
	json_error_t jerr;
	json_t *cases, *c;
	char path[2048];
	size_t i;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return;
	if ((cases = json_load_file(path, 0, &jerr)) == NULL ||
	    !json_is_array(cases)) {
		tap_ok(t, 0, "%s: loads", name);
		tap_diag("  %s", jerr.text);
		json_decref(cases);
		return;
	}
	json_array_foreach(cases, i, c)
		run_case(t, name, c);
	json_decref(cases);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .json files of dir (prefix names them in messages), sorted. */
static size_t
list_json(const char *dir, const char *prefix, char **names, size_t max)
{
	struct dirent *de;
	size_t n = 0, l;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		if ((names[n] = malloc(strlen(prefix) + l + 1)) == NULL)
			break;
		sprintf(names[n++], "%s%s", prefix, de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	return n;
}

int
main(void)
{
	struct tap t = { 0, 0 };
	const char *base = getenv("BM_SCHEMA_SUITE_DIR");
	char dir[1024], opt[1024 + 16];
	char *names[128];
	struct stat st;
	size_t n, i, k;
	int skip;

	if (base == NULL || *base == '\0')
		base = BM_SCHEMA_SUITE_DIR;
	snprintf(dir, sizeof(dir), "%s/tests/draft7", base);
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		printf("1..0 # SKIP no JSON-Schema-Test-Suite at %s (Debian "
		    "package json-schema-test-suite)\n", dir);
		return 0;
	}
	n = list_json(dir, "", names, 64);
	snprintf(opt, sizeof(opt), "%s/optional", dir);
	n += list_json(opt, "optional/", names + n, 64);
	for (i = 0; i < n; i++) {
		skip = 0;
		for (k = 0; k < sizeof(not_run) / sizeof(not_run[0]); k++)
			if (strcmp(names[i], not_run[k].file) == 0)
				skip = 1;
		if (!skip)
			run_file(&t, dir, names[i]);
		free(names[i]);
	}

	tap_diag("per file: passed, failed, refused (unsupported), "
	    "passed with the 2020-12 result");
	for (i = 0; i < nfiles; i++)
		tap_diag("  %-34s %3d passed %3d failed %3d refused %d changed",
		    files[i].name, files[i].passed, files[i].failed,
		    files[i].refused, files[i].changed);
	for (i = 0; i < nrefusals; i++)
		tap_diag("refused: %s: %d tests", refusals[i].name,
		    refusals[i].refused);
	for (k = 0; k < sizeof(not_run) / sizeof(not_run[0]); k++)
		tap_diag("not run: %s: %s", not_run[k].file, not_run[k].why);
	return tap_done(&t);
}
