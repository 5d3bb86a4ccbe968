/*
 * tests/unit/test-schema.c - unit tests of schema/: every keyword, valid
 * and invalid, with the error's location, keyword and message; every
 * compile-time refusal (unknown keywords with their pointer, malformed
 * values, $refs that do not resolve, cycles, nesting); boolean schemas;
 * integer/real equality; Unicode lengths; JSON Pointer escaping; secrets
 * kept out of messages; determinism and threads.  Prints TAP.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "schema/schema.h"
#include "tests/tap.h"

static struct tap t;

/* Compiles schema (JSON text), validates instance (JSON text) and gives
 * "valid", the error line, "COMPILE <error line>" or "JSON <error>". */
static const char *
run(const char *schema, const char *instance)
{
	static char buf[2048];
	struct schema_error err;
	struct schema *s = NULL;
	json_error_t jerr;
	json_t *sd, *id = NULL;
	int r;

	if ((sd = json_loads(schema, JSON_DECODE_ANY, &jerr)) == NULL) {
		snprintf(buf, sizeof(buf), "JSON schema: %s", jerr.text);
		return buf;
	}
	if (schema_compile(sd, &s, &err) == -1) {
		snprintf(buf, sizeof(buf), "COMPILE %s", err.text);
		goto out;
	}
	if (instance == NULL) {
		snprintf(buf, sizeof(buf), "compiled");
		goto out;
	}
	if ((id = json_loads(instance, JSON_DECODE_ANY | JSON_ALLOW_NUL,
	    &jerr)) == NULL) {
		snprintf(buf, sizeof(buf), "JSON instance: %s", jerr.text);
		goto out;
	}
	r = schema_validate(s, id, &err);
	snprintf(buf, sizeof(buf), "%s", r == 0 ? "valid" : r == 1 ?
	    err.text : "ERROR");
	/* The verdict does not depend on whether an error is wanted. */
	if (schema_validate(s, id, NULL) != r)
		snprintf(buf, sizeof(buf), "verdict differs without err");
out:
	json_decref(id);
	json_decref(sd);
	schema_free(s);
	return buf;
}

static void
is(const char *got, const char *want, const char *name)
{
	int same = strcmp(got, want) == 0;

	tap_ok(&t, same, "%s", name);
	if (!same)
		tap_diag("  got:  %s\n#   want: %s", got, want);
}

/* A schema refused at compile time with exactly this line. */
static void
refused(const char *schema, const char *want, const char *name)
{
	char w[1200];

	snprintf(w, sizeof(w), "COMPILE %s", want);
	is(run(schema, NULL), w, name);
}

static void
test_type(void)
{
	is(run("{\"type\":\"string\"}", "\"x\""), "valid", "type: string");
	is(run("{\"type\":\"string\"}", "1"),
	    "(root): type: expected string, got integer",
	    "type: an integer is not a string");
	is(run("{\"type\":\"integer\"}", "1.0"), "valid",
	    "type: 1.0 is an integer");
	is(run("{\"type\":\"integer\"}", "1e2"), "valid",
	    "type: 1e2 is an integer");
	is(run("{\"type\":\"integer\"}", "1.5"),
	    "(root): type: expected integer, got number",
	    "type: 1.5 is not an integer");
	is(run("{\"type\":\"number\"}", "7"), "valid",
	    "type: an integer is a number");
	is(run("{\"type\":[\"string\",\"null\"]}", "null"), "valid",
	    "type: an array of types");
	is(run("{\"type\":[\"string\",\"null\"]}", "[]"),
	    "(root): type: expected null or string, got array",
	    "type: the array's types are listed");
	is(run("{\"type\":\"boolean\"}", "false"), "valid", "type: boolean");
	is(run("{\"type\":\"object\"}", "{}"), "valid", "type: object");
	is(run("{\"type\":\"null\"}", "0"),
	    "(root): type: expected null, got integer", "type: 0 is not null");
}

/* jansson's parser refuses "\u0000" in keys, but code can make one. */
static void
test_nul_key(void)
{
	struct schema_error err;
	struct schema *s = NULL;
	json_t *doc, *v;
	int r;

	doc = json_loads("{\"properties\":{\"a\":{}},"
	    "\"additionalProperties\":false}", 0, NULL);
	v = json_object();
	json_object_setn_new(v, "a\0x", 3, json_integer(1));
	r = schema_compile(doc, &s, &err);
	r = r == 0 ? schema_validate(s, v, &err) : -2;
	tap_ok(&t, r == 1 && strcmp(err.text, "/a\\u0000x: "
	    "additionalProperties: property not allowed") == 0,
	    "a key with a NUL is not taken for its prefix, and is spelt out");
	if (r != 1 || err.text[1] != 'a')
		tap_diag("  got %d: %s", r, err.text);
	schema_free(s);
	json_decref(v);
	json_decref(doc);
}

static void
test_objects(void)
{
	const char *s = "{\"properties\":{\"a\":{\"type\":\"integer\"},"
	    "\"b\":{\"type\":\"string\"}},\"required\":[\"a\",\"b\"]}";
	const char *ap = "{\"properties\":{\"a\":true},"
	    "\"additionalProperties\":{\"type\":\"integer\"}}";

	is(run(s, "{\"a\":1,\"b\":\"x\",\"c\":null}"), "valid",
	    "properties: other properties are allowed by default");
	is(run(s, "{\"a\":\"1\",\"b\":2}"),
	    "/a: type: expected integer, got string",
	    "properties: the first failing property in schema order");
	is(run(s, "{\"b\":2,\"a\":\"1\"}"),
	    "/a: type: expected integer, got string",
	    "properties: schema order, not the value's");
	is(run(s, "{\"a\":1}"), "/b: required: missing property \"b\"",
	    "required: names the missing property's location");
	is(run(s, "[1]"), "valid", "properties and required ignore non-objects");
	is(run(ap, "{\"a\":\"x\",\"z\":3}"), "valid",
	    "additionalProperties: declared properties are not additional");
	is(run(ap, "{\"a\":\"x\",\"z\":\"3\"}"),
	    "/z: type: expected integer, got string",
	    "additionalProperties: a schema checks the others");
	is(run("{\"properties\":{\"a\":{}},\"additionalProperties\":false}",
	    "{\"a\":1,\"b/c~d\":2}"),
	    "/b~1c~0d: additionalProperties: property not allowed",
	    "additionalProperties: false, with pointer escaping");
	is(run("{\"properties\":{\"a\":false}}", "{\"a\":1}"),
	    "/a: properties: property not allowed",
	    "properties: a false schema forbids the property");
	is(run("{\"properties\":{\"a\":false}}", "{\"b\":1}"), "valid",
	    "properties: a false schema allows absence");
	test_nul_key();
}

static void
test_arrays(void)
{
	const char *pi = "{\"prefixItems\":[{\"type\":\"integer\"},"
	    "{\"type\":\"string\"}],\"items\":{\"type\":\"boolean\"}}";

	is(run("{\"items\":{\"type\":\"integer\"}}", "[1,2,\"x\"]"),
	    "/2: type: expected integer, got string", "items: every item");
	is(run("{\"items\":{\"type\":\"integer\"}}", "{\"a\":\"x\"}"), "valid",
	    "items: ignores non-arrays");
	is(run(pi, "[1,\"a\",true,false]"), "valid",
	    "prefixItems then items");
	is(run(pi, "[1,2]"), "/1: type: expected string, got integer",
	    "prefixItems: by position");
	is(run(pi, "[1,\"a\",true,null]"),
	    "/3: type: expected boolean, got null",
	    "items: applies after the prefixItems");
	is(run(pi, "[1]"), "valid", "prefixItems: a shorter array is fine");
	is(run("{\"prefixItems\":[{}],\"items\":false}", "[1,2]"),
	    "/1: items: item not allowed", "items: false");
	is(run("{\"minItems\":2}", "[1]"),
	    "(root): minItems: 1 item, fewer than 2", "minItems");
	is(run("{\"maxItems\":2}", "[1,2,3]"),
	    "(root): maxItems: 3 items, more than 2", "maxItems");
	is(run("{\"maxItems\":2.0,\"minItems\":2}", "[1,2]"), "valid",
	    "min/maxItems: bounds are inclusive; 2.0 is a count");
	is(run("{\"uniqueItems\":true}", "[1,2,1.0]"),
	    "(root): uniqueItems: items 0 and 2 are equal",
	    "uniqueItems: 1 == 1.0");
	is(run("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":[2]},"
	    "{\"b\":[2.0],\"a\":1}]"),
	    "(root): uniqueItems: items 0 and 1 are equal",
	    "uniqueItems: objects compare without order");
	is(run("{\"uniqueItems\":true}", "[0,false,1,true,null,\"1\",[1],"
	    "{\"1\":1},[[1]],{}]"), "valid",
	    "uniqueItems: different types are different");
	is(run("{\"uniqueItems\":false}", "[1,1]"), "valid",
	    "uniqueItems: false checks nothing");
	is(run("{\"uniqueItems\":true}", "[9007199254740993,"
	    "9007199254740992.0]"), "valid",
	    "uniqueItems: 2^53+1 is not 2^53 (compared exactly)");
}

static void
test_unique_many(void)
{
	char inst[4096];
	size_t n = 0;
	int i;

	/* Past the pairwise loop: the hashed path finds the same pair.
	 * Item i is {"k":[i]} but for the duplicates. */
	n = 0;
	n += (size_t)snprintf(inst + n, sizeof(inst) - n, "[");
	for (i = 0; i < 100; i++) {
		if (i == 93)
			n += (size_t)snprintf(inst + n, sizeof(inst) - n,
			    ",{\"k\":[57.0]}");
		else if (i == 97 || i == 99)
			n += (size_t)snprintf(inst + n, sizeof(inst) - n,
			    ",\"dup\"");
		else
			n += (size_t)snprintf(inst + n, sizeof(inst) - n,
			    "%s{\"k\":[%d]}", i ? "," : "", i);
	}
	snprintf(inst + n, sizeof(inst) - n, "]");
	is(run("{\"uniqueItems\":true}", inst),
	    "(root): uniqueItems: items 57 and 93 are equal",
	    "uniqueItems: 100 items, the first duplicate found by hashing");
	/* The same, without the early pair. */
	n = 0;
	n += (size_t)snprintf(inst + n, sizeof(inst) - n, "[");
	for (i = 0; i < 100; i++)
		n += (size_t)snprintf(inst + n, sizeof(inst) - n,
		    "%s%d", i ? "," : "", i == 99 ? 3 : i);
	snprintf(inst + n, sizeof(inst) - n, "]");
	is(run("{\"uniqueItems\":true}", inst),
	    "(root): uniqueItems: items 3 and 99 are equal",
	    "uniqueItems: 100 items, a late duplicate");
	n = 0;
	n += (size_t)snprintf(inst + n, sizeof(inst) - n, "[");
	for (i = 0; i < 100; i++)
		n += (size_t)snprintf(inst + n, sizeof(inst) - n,
		    "%s%d.5", i ? "," : "", i);
	snprintf(inst + n, sizeof(inst) - n, "]");
	is(run("{\"uniqueItems\":true}", inst), "valid",
	    "uniqueItems: 100 distinct reals");
}

static void
test_values(void)
{
	is(run("{\"enum\":[1,\"a\",null]}", "1.0"), "valid", "enum: 1.0 is 1");
	is(run("{\"enum\":[1,\"a\",null]}", "\"b\""),
	    "(root): enum: not one of [1,\"a\",null]", "enum: not listed");
	is(run("{\"enum\":[[1,2]]}", "[1,2,3]"),
	    "(root): enum: not one of [[1,2]]", "enum: arrays compare whole");
	is(run("{\"enum\":[]}", "1"), "(root): enum: not one of []",
	    "enum: an empty enum allows nothing");
	is(run("{\"const\":{\"a\":[1,{\"b\":2}]}}", "{\"a\":[1.0,{\"b\":2.0}]}"),
	    "valid", "const: deep, numbers by value");
	is(run("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}"),
	    "(root): const: not {\"a\":1}", "const: extra member");
	is(run("{\"const\":null}", "0"), "(root): const: not null",
	    "const: null is not 0");
	is(run("{\"const\":false}", "0"), "(root): const: not false",
	    "const: false is not 0");
	is(run("{\"const\":\"\\u00e9\"}", "\"\\u00e9\""), "valid",
	    "const: a non-ASCII string");
}

static void
test_numbers(void)
{
	is(run("{\"minimum\":5}", "5"), "valid", "minimum: inclusive");
	is(run("{\"minimum\":5}", "4.5"), "(root): minimum: 4.5 is less than 5",
	    "minimum: a real below");
	is(run("{\"maximum\":5.5}", "6"),
	    "(root): maximum: 6 is greater than 5.5", "maximum");
	is(run("{\"exclusiveMinimum\":5}", "5.0"),
	    "(root): exclusiveMinimum: 5 is not greater than 5",
	    "exclusiveMinimum: 5.0 is 5");
	is(run("{\"exclusiveMaximum\":5}", "5"),
	    "(root): exclusiveMaximum: 5 is not less than 5",
	    "exclusiveMaximum");
	is(run("{\"exclusiveMaximum\":5}", "4.999"), "valid",
	    "exclusiveMaximum: just below");
	is(run("{\"maximum\":9007199254740992}", "9007199254740993"),
	    "(root): maximum: 9007199254740993 is greater than "
	    "9007199254740992", "maximum: exact beyond 2^53");
	is(run("{\"maximum\":9223372036854775807}", "9.3e18"),
	    "(root): maximum: 9.3e+18 is greater than 9223372036854775807",
	    "maximum: an integer bound, a real value");
	is(run("{\"minimum\":0.1}", "0"), "(root): minimum: 0 is less than 0.1",
	    "minimum: shortest text for reals");
	is(run("{\"minimum\":5}", "\"4\""), "valid",
	    "minimum: ignores non-numbers");
}

static void
test_strings(void)
{
	is(run("{\"maxLength\":5}", "\"h\\u00e9llo\""), "valid",
	    "maxLength: 5 code points in 6 bytes");
	is(run("{\"maxLength\":1}", "\"\\ud83d\\ude00\""), "valid",
	    "maxLength: one code point beyond the BMP");
	is(run("{\"minLength\":2}", "\"\\ud83d\\ude00\""),
	    "(root): minLength: 1 character, fewer than 2",
	    "minLength: code points, not bytes or UTF-16 units");
	is(run("{\"maxLength\":2}", "\"a\\u0000b\""),
	    "(root): maxLength: 3 characters, more than 2",
	    "maxLength: a NUL is a character");
	is(run("{\"pattern\":\"b+\"}", "\"abbc\""), "valid",
	    "pattern: a search, not anchored");
	is(run("{\"pattern\":\"^a$\"}", "\"a\\n\""),
	    "(root): pattern: does not match \"^a$\"",
	    "pattern: $ only at the very end (ECMA-262)");
	is(run("{\"pattern\":\"^\\\\d$\"}", "\"\\u0663\""),
	    "(root): pattern: does not match \"^\\\\d$\"",
	    "pattern: \\d is ASCII digits only");
	is(run("{\"pattern\":\"^\\\\u0041$\"}", "\"A\""), "valid",
	    "pattern: \\uXXXX escapes");
	is(run("{\"pattern\":\"^.$\"}", "\"\\u00e9\""), "valid",
	    "pattern: UTF-8, . is one code point");
	is(run("{\"pattern\":\"^(a+)+$\"}",
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\""),
	    "(root): pattern: cannot be matched against \"^(a+)+$\": "
	    "match limit exceeded",
	    "pattern: catastrophic backtracking is cut off, and refused");
	is(run("{\"pattern\":\"x\"}", "12"), "valid",
	    "pattern: ignores non-strings");
}

static void
test_secrets(void)
{
	const char *pw = "\"hunter2-secret\"";

	/* A string value never appears in a message. */
	tap_ok(&t, strstr(run("{\"minLength\":20}", pw), "hunter2") == NULL &&
	    strstr(run("{\"maxLength\":2}", pw), "hunter2") == NULL &&
	    strstr(run("{\"enum\":[\"a\"]}", pw), "hunter2") == NULL &&
	    strstr(run("{\"const\":\"a\"}", pw), "hunter2") == NULL &&
	    strstr(run("{\"pattern\":\"^x\"}", pw), "hunter2") == NULL &&
	    strstr(run("{\"type\":\"integer\"}", pw), "hunter2") == NULL &&
	    strstr(run("{\"not\":{}}", pw), "hunter2") == NULL &&
	    strstr(run("{\"uniqueItems\":true}", "[\"hunter2\",\"hunter2\"]"),
	    "hunter2") == NULL, "no message quotes a string value");
	is(run("{\"minLength\":20}", pw),
	    "(root): minLength: 14 characters, fewer than 20",
	    "a too-short secret gets its length only");
}

static void
test_combinators(void)
{
	const char *any = "{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":3}]}";
	const char *one = "{\"oneOf\":[{\"type\":\"integer\"},"
	    "{\"minimum\":2}]}";

	is(run("{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "2"), "valid",
	    "allOf: all hold");
	is(run("{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "4"),
	    "(root): maximum: 4 is greater than 3",
	    "allOf: the first failing subschema's error");
	is(run(any, "5"), "valid", "anyOf: one holds");
	is(run(any, "1"), "(root): anyOf: valid against none of the 2 "
	    "subschemas; subschema 0: (root): type: expected string, got "
	    "integer", "anyOf: none holds, the first says why");
	is(run(one, "1"), "valid", "oneOf: exactly one");
	is(run(one, "3"), "(root): oneOf: valid against subschemas 0 and 1, "
	    "and exactly one must hold", "oneOf: two hold");
	is(run(one, "1.5"), "(root): oneOf: valid against none of the 2 "
	    "subschemas; subschema 0: (root): type: expected integer, got "
	    "number", "oneOf: none holds");
	is(run("{\"not\":{\"type\":\"null\"}}", "null"),
	    "(root): not: valid against the schema in \"not\"", "not");
	is(run("{\"not\":{\"type\":\"null\"}}", "0"), "valid", "not: holds");
	is(run("{\"properties\":{\"a\":{\"anyOf\":[{\"properties\":{\"b\":"
	    "{\"type\":\"string\"}}}, false]}}}", "{\"a\":{\"b\":1}}"),
	    "/a: anyOf: valid against none of the 2 subschemas; subschema 0: "
	    "/a/b: type: expected string, got integer",
	    "anyOf: the inner error keeps its own location");
	is(run("{\"maxLength\":1,\"type\":\"integer\"}", "\"abc\""),
	    "(root): maxLength: 3 characters, more than 1",
	    "errors come in schema order (1)");
	is(run("{\"type\":\"integer\",\"maxLength\":1}", "\"abc\""),
	    "(root): type: expected integer, got string",
	    "errors come in schema order (2)");
}

static void
test_refs(void)
{
	const char *tree = "{\"type\":\"object\",\"properties\":{\"v\":"
	    "{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":"
	    "{\"$ref\":\"#\"}}},\"additionalProperties\":false}";

	is(run("{\"$defs\":{\"pos\":{\"minimum\":0}},\"items\":"
	    "{\"$ref\":\"#/$defs/pos\"}}", "[1,-1]"),
	    "/1: minimum: -1 is less than 0", "$ref: to $defs");
	is(run(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":\"x\"}]}]}"),
	    "/kids/0/kids/0/v: type: expected integer, got string",
	    "$ref: \"#\" recursion down a tree");
	is(run("{\"$defs\":{\"a/b\":{\"type\":\"string\"},\"c~d\":"
	    "{\"type\":\"integer\"},\"e%f\":{\"type\":\"null\"}},\"prefixItems\":"
	    "[{\"$ref\":\"#/$defs/a~1b\"},{\"$ref\":\"#/$defs/c~0d\"},"
	    "{\"$ref\":\"#/$defs/e%25f\"}]}", "[\"x\",1,null]"), "valid",
	    "$ref: ~1, ~0 and %XX escapes");
	is(run("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":"
	    "\"#/$defs/c\"},\"c\":{\"type\":\"string\"}},\"$ref\":"
	    "\"#/$defs/a\"}", "1"),
	    "(root): type: expected string, got integer",
	    "$ref: a chain of refs");
	is(run("{\"$defs\":{\"arr\":{\"type\":\"array\"}},\"$ref\":"
	    "\"#/$defs/arr\",\"maxItems\":1}", "[1,2]"),
	    "(root): maxItems: 2 items, more than 1",
	    "$ref: keywords beside it apply (2020-12)");
	is(run("{\"$defs\":{\"no\":false},\"$ref\":\"#/$defs/no\"}", "1"),
	    "(root): $ref: no value is valid against the schema false",
	    "$ref: to a false schema");
	is(run("{\"$defs\":{\"a\":{\"$defs\":{\"b\":{\"const\":1}}}},\"$ref\":"
	    "\"#/$defs/a/$defs/b\"}", "1"), "valid", "$ref: nested $defs");
	is(run("{\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"$ref\":"
	    "\"#/properties/a\"}}}", "{\"b\":\"x\"}"),
	    "/b: type: expected integer, got string",
	    "$ref: any local pointer to a subschema");
	is(run("{\"anyOf\":[{\"$ref\":\"#/$defs/x\"}],\"$defs\":{\"x\":"
	    "{\"items\":{\"$ref\":\"#\"}}}}", "[[[[]]]]"), "valid",
	    "$ref: a cycle that goes into the value is fine");
}

static void
test_booleans(void)
{
	is(run("true", "{\"anything\":[1]}"), "valid", "true accepts all");
	is(run("false", "null"),
	    "(root): false: no value is valid against the schema false",
	    "false refuses all");
	is(run("{}", "[1,{}]"), "valid", "{} accepts all");
	is(run("{\"allOf\":[true,false]}", "1"),
	    "(root): allOf: no value is valid against the schema false",
	    "false inside allOf");
	is(run("{\"not\":false}", "1"), "valid", "not false");
}

static void
test_annotations(void)
{
	is(run("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
	    "\"$id\":\"https://example.com/s\",\"$comment\":\"c\",\"title\":\"T\","
	    "\"description\":\"D\",\"default\":3,\"examples\":[1],\"format\":"
	    "\"password\",\"deprecated\":false,\"readOnly\":true,\"writeOnly\":"
	    "false,\"type\":\"string\"}", "\"abc\""), "valid",
	    "annotations are accepted and check nothing");
	is(run("{\"format\":\"email\"}", "\"not an email\""), "valid",
	    "format is an annotation");
	is(run("{\"default\":\"x\",\"type\":\"integer\"}", "1"), "valid",
	    "default is not checked against the schema");
}

static void
test_refusals(void)
{
	refused("{\"type\":\"object\",\"properties\":{\"total\":"
	    "{\"multipleOf\":2}}}",
	    "/properties/total: unknown keyword \"multipleOf\"",
	    "unknown keyword, with its schema location");
	refused("{\"properties\":{\"a/b\":{\"items\":{\"contains\":{}}}}}",
	    "/properties/a~1b/items: unknown keyword \"contains\"",
	    "unknown keyword: the pointer is escaped");
	refused("{\"$defs\":{\"x\":{\"if\":true}}}",
	    "/$defs/x: unknown keyword \"if\"", "unknown keyword in $defs");
	refused("{\"additionalItems\":false}",
	    "(root): unknown keyword \"additionalItems\"",
	    "draft 7's additionalItems is refused");
	refused("{\"definitions\":{}}",
	    "(root): unknown keyword \"definitions\"",
	    "draft 7's definitions is refused");
	refused("{\"minLength\":-1}",
	    "(root): minLength: not a non-negative integer", "minLength -1");
	refused("{\"maxLength\":1.5}",
	    "(root): maxLength: not a non-negative integer", "maxLength 1.5");
	refused("{\"minItems\":\"2\"}",
	    "(root): minItems: not a non-negative integer", "minItems \"2\"");
	refused("{\"maxItems\":-3}",
	    "(root): maxItems: not a non-negative integer", "maxItems -3");
	refused("{\"minimum\":\"3\"}", "(root): minimum: not a number",
	    "minimum \"3\"");
	refused("{\"exclusiveMaximum\":true}",
	    "(root): exclusiveMaximum: not a number",
	    "draft 4's boolean exclusiveMaximum");
	refused("{\"type\":\"text\"}", "(root): type: \"text\" is not a type "
	    "(null, boolean, object, array, number, string, integer)",
	    "type: unknown name");
	refused("{\"type\":[]}", "(root): type: not a type name or a "
	    "non-empty array of them", "type: empty array");
	refused("{\"type\":[\"string\",\"string\"]}",
	    "(root): type: \"string\" appears twice", "type: twice");
	refused("{\"properties\":[]}",
	    "(root): properties: not an object of schemas", "properties: array");
	refused("{\"properties\":{\"a\":3}}",
	    "/properties/a: not a schema (an object or a boolean)",
	    "properties: a member is not a schema");
	refused("{\"required\":\"a\"}", "(root): required: not an array of "
	    "names", "required: a string");
	refused("{\"required\":[\"a\",1]}",
	    "(root): required: item 1 is not a string", "required: a number");
	refused("{\"required\":[\"a\",\"a\"]}",
	    "(root): required: \"a\" appears twice", "required: twice");
	refused("{\"additionalProperties\":\"no\"}",
	    "/additionalProperties: not a schema (an object or a boolean)",
	    "additionalProperties: a string");
	refused("{\"items\":[{}]}", "(root): items: an array of schemas is "
	    "draft 7's form: in 2020-12 that is prefixItems",
	    "items: draft 7's array form");
	refused("{\"prefixItems\":[]}",
	    "(root): prefixItems: not a non-empty array of schemas",
	    "prefixItems: empty");
	refused("{\"enum\":{}}", "(root): enum: not an array", "enum: object");
	refused("{\"pattern\":\"(\"}", "(root): pattern: does not compile: "
	    "missing closing parenthesis (at offset 1)",
	    "pattern: does not compile");
	refused("{\"pattern\":5}", "(root): pattern: not a string",
	    "pattern: a number");
	refused("{\"uniqueItems\":1}", "(root): uniqueItems: not a boolean",
	    "uniqueItems: a number");
	refused("{\"anyOf\":[]}",
	    "(root): anyOf: not a non-empty array of schemas", "anyOf: empty");
	refused("{\"allOf\":{}}",
	    "(root): allOf: not a non-empty array of schemas", "allOf: object");
	refused("{\"oneOf\":[{},null]}",
	    "/oneOf/1: not a schema (an object or a boolean)",
	    "oneOf: a member is null");
	refused("{\"not\":[]}", "/not: not a schema (an object or a boolean)",
	    "not: an array");
	refused("{\"$defs\":[]}", "(root): $defs: not an object of schemas",
	    "$defs: an array");
	refused("{\"$ref\":5}", "(root): $ref: not a string", "$ref: a number");
	refused("{\"$ref\":\"#/$defs/missing\"}", "(root): $ref: "
	    "\"#/$defs/missing\" does not resolve to a subschema of this "
	    "document", "$ref: does not resolve");
	refused("{\"properties\":{\"a\":{\"$ref\":\"#/properties/a/type\"}}}",
	    "/properties/a: $ref: \"#/properties/a/type\" does not resolve to "
	    "a subschema of this document", "$ref: to a non-schema");
	refused("{\"$ref\":\"https://example.com/s.json\"}", "(root): $ref: "
	    "\"https://example.com/s.json\" is not a local reference (\"#\" "
	    "or \"#/$defs/...\")", "$ref: remote");
	refused("{\"$ref\":\"other.json#/$defs/a\"}", "(root): $ref: "
	    "\"other.json#/$defs/a\" is not a local reference (\"#\" or "
	    "\"#/$defs/...\")", "$ref: another document");
	refused("{\"$ref\":\"#node\"}", "(root): $ref: \"#node\": plain-name "
	    "fragments ($anchor) are not supported", "$ref: an anchor");
	refused("{\"$ref\":\"#/$defs/a%zz\"}", "(root): $ref: "
	    "\"#/$defs/a%zz\": bad %-escape, or out of memory",
	    "$ref: a bad %-escape");
	refused("{\"$ref\":\"#\"}", "(root): $ref: leads back to the root "
	    "without going into the value (an endless loop)",
	    "$ref cycle: # at the root");
	refused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"not\":"
	    "{\"$ref\":\"#/$defs/a\"}}}}", "/$defs/b/not: $ref: leads back to "
	    "/$defs/a without going into the value (an endless loop)",
	    "$ref cycle: through not, even unused");
	refused("{\"anyOf\":[{\"type\":\"string\"},{\"$ref\":\"#\"}]}",
	    "/anyOf/1: $ref: leads back to the root without going into the "
	    "value (an endless loop)", "$ref cycle: through anyOf");
	refused("{\"properties\":{\"a\":{\"$id\":\"x\"}}}",
	    "/properties/a: $id: only the root may have an $id (no embedded "
	    "resources)", "$id below the root");
	refused("{\"title\":5}", "(root): title: not a string", "title: 5");
	refused("{\"deprecated\":\"yes\"}", "(root): deprecated: not a boolean",
	    "deprecated: a string");
	refused("{\"examples\":1}", "(root): examples: not an array",
	    "examples: a number");
	refused("{\"$schema\":1}", "(root): $schema: not a string",
	    "$schema: a number");
	refused("5", "(root): not a schema (an object or a boolean)",
	    "a number is not a schema");
	refused("null", "(root): not a schema (an object or a boolean)",
	    "null is not a schema");
}

/* {"not": {"not": ... {}}} n levels deep, as text. */
static char *
nested_nots(int n)
{
	char *s = malloc((size_t)n * 9 + 3), *p = s;
	int i;

	for (i = 0; i < n; i++)
		p += sprintf(p, "{\"not\":");
	p += sprintf(p, "{}");
	for (i = 0; i < n; i++)
		*p++ = '}';
	*p = '\0';
	return s;
}

static void
test_depth(void)
{
	struct schema_error err;
	struct schema *s = NULL;
	json_t *v, *inner, *doc;
	char *txt, want[256];
	int i, r;

	txt = nested_nots(SCHEMA_DEPTH_MAX);
	is(run(txt, "1"), "valid", "schemas nested SCHEMA_DEPTH_MAX deep");
	free(txt);
	txt = nested_nots(SCHEMA_DEPTH_MAX + 1);
	tap_ok(&t, strncmp(run(txt, NULL), "COMPILE /not/not/not", 20) == 0 &&
	    strstr(run(txt, NULL), "not: schemas nested deeper than 128 "
	    "levels") == NULL && strstr(run(txt, NULL), ": schemas nested "
	    "deeper than 128 levels") != NULL,
	    "one level more is refused, at its location");
	free(txt);

	/* A recursive schema meets a value deeper than validation goes. */
	doc = json_loads("{\"properties\":{\"a\":{\"$ref\":\"#\"}}}", 0, NULL);
	r = schema_compile(doc, &s, &err);
	tap_ok(&t, r == 0, "a recursive schema compiles");
	v = json_object();
	for (i = 0; i < 2000; i++) {
		inner = json_object();
		json_object_set_new(inner, "a", v);
		v = inner;
	}
	r = schema_validate(s, v, &err);
	snprintf(want, sizeof(want), "nested too deeply (over %d levels of "
	    "schemas)", SCHEMA_DEPTH_MAX * 4);
	tap_ok(&t, r == 1 && (strcmp(err.keyword, "$ref") == 0 ||
	    strcmp(err.keyword, "properties") == 0) &&
	    strstr(err.text, want) != NULL && strlen(err.pointer) < 512 &&
	    strcmp(err.pointer + strlen(err.pointer) - 3, "...") == 0,
	    "a value 2000 levels deep is invalid, not a stack overflow; the "
	    "long pointer ends in \"...\"");
	tap_diag("  %.60s ... %s", err.text, err.text + strlen(err.text) -
	    (strlen(err.text) > 80 ? 80 : strlen(err.text)));
	json_decref(v);
	schema_free(s);
	json_decref(doc);
}

/* A long key of multi-byte characters: the pointer is cut between
 * characters, never inside one. */
static void
utf8_cut_check(const char *ch, const char *name)
{
	struct schema_error err;
	struct schema *s = NULL;
	json_t *doc, *v, *p = NULL, *x = NULL;
	char key[2100] = "";
	size_t n = strlen(ch), i;
	int r, shift;

	for (shift = 0; shift < 4; shift++) {
		/* Shifted by 0 to 3 ASCII bytes, to land the cut anywhere. */
		memset(key, 'a', (size_t)shift);
		for (i = (size_t)shift; i + n < 2000; i += n)
			memcpy(key + i, ch, n);
		key[i] = '\0';
		doc = json_loads("{\"additionalProperties\":false}", 0, NULL);
		v = json_object();
		json_object_set_new(v, key, json_true());
		r = schema_compile(doc, &s, &err) == 0 ?
		    schema_validate(s, v, &err) : -2;
		p = json_string(err.pointer);
		x = json_string(err.text);
		tap_ok(&t, r == 1 && p != NULL && x != NULL &&
		    strcmp(err.pointer + strlen(err.pointer) - 3, "...") == 0,
		    "a long key of %s characters (+%d) is cut between "
		    "characters", name, shift);
		json_decref(p);
		json_decref(x);
		schema_free(s);
		s = NULL;
		json_decref(v);
		json_decref(doc);
	}
}

static void
test_pointer(void)
{
	char schema[8192], inst[8192], key[1000];

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(schema, sizeof(schema), "{\"additionalProperties\":false}");
	snprintf(inst, sizeof(inst), "{\"%s\":1}", key);
	tap_ok(&t, strncmp(run(schema, inst), "/kkkk", 5) == 0 &&
	    strstr(run(schema, inst), "...: additionalProperties: property "
	    "not allowed") != NULL, "a pointer too long is cut with \"...\"");
	utf8_cut_check("\xc3\xa9", "2-byte");
	utf8_cut_check("\xe2\x82\xac", "3-byte");
	utf8_cut_check("\xf0\x9f\x98\x80", "4-byte");
	is(run("{\"properties\":{\"~\":{\"properties\":{\"/\":false}}}}",
	    "{\"~\":{\"/\":1}}"), "/~0/~1: properties: property not allowed",
	    "RFC 6901 escaping of ~ and /");
	is(run("{\"properties\":{\"\":{\"type\":\"string\"}}}", "{\"\":1}"),
	    "/: type: expected string, got integer",
	    "the empty key is \"/\", the root \"(root)\"");
}

static void
test_api(void)
{
	struct schema_error err;
	struct schema *s = NULL;
	json_t *doc, *v;
	int r;

	doc = json_loads("{\"title\":\"T\",\"properties\":{\"a\":{\"minimum\":1}}}",
	    0, NULL);
	r = schema_compile(doc, &s, &err);
	tap_ok(&t, r == 0 && json_equal(schema_json(s), doc) &&
	    schema_json(s) != doc, "schema_json gives the schema's own copy");
	json_object_set_new(json_object_get(json_object_get(doc,
	    "properties"), "a"), "minimum", json_integer(100));
	v = json_loads("{\"a\":5}", 0, NULL);
	tap_ok(&t, schema_validate(s, v, &err) == 0,
	    "changing the document after compiling changes nothing");
	tap_ok(&t, schema_validate(s, NULL, &err) == 1 &&
	    strcmp(err.text, "(root): no value") == 0, "a NULL value is invalid");
	schema_free(s);
	s = NULL;
	tap_ok(&t, schema_compile(NULL, &s, NULL) == -1 && s == NULL &&
	    schema_compile(doc, &s, NULL) == 0 && s != NULL,
	    "err may be NULL; a failed compile leaves *out alone");
	schema_free(s);
	schema_free(NULL);
	json_decref(v);
	json_decref(doc);
}

/* Threads share one compiled schema (with a pattern and uniqueItems). */
struct job {
	const struct schema *s;
	int bad;
};

static void *
worker(void *arg)
{
	struct job *j = arg;
	struct schema_error err;
	json_t *good, *bad;
	int i;

	good = json_loads("{\"id\":\"ab12\",\"tags\":[1,2,3,4,5,6,7,8,9,10,"
	    "11,12,13,14,15,16,17,18,19,20]}", 0, NULL);
	bad = json_loads("{\"id\":\"ab12\",\"tags\":[1,2,3,4,5,6,7,8,9,10,"
	    "11,12,13,14,15,16,17,18,19,3]}", 0, NULL);
	for (i = 0; i < 300; i++) {
		if (schema_validate(j->s, good, &err) != 0)
			j->bad++;
		if (schema_validate(j->s, bad, &err) != 1 ||
		    strcmp(err.text, "/tags: uniqueItems: items 2 and 19 are "
		    "equal") != 0)
			j->bad++;
	}
	json_decref(good);
	json_decref(bad);
	return NULL;
}

static void
test_threads(void)
{
	struct schema *s = NULL;
	struct job jobs[4];
	pthread_t th[4];
	json_t *doc;
	int i, bad = 0, started = 0;

	doc = json_loads("{\"properties\":{\"id\":{\"pattern\":"
	    "\"^[a-z]+[0-9]+$\"},\"tags\":{\"uniqueItems\":true}}}", 0, NULL);
	if (schema_compile(doc, &s, NULL) == -1) {
		tap_ok(&t, 0, "threads: the schema compiles");
		json_decref(doc);
		return;
	}
	for (i = 0; i < 4; i++) {
		jobs[i].s = s;
		jobs[i].bad = 0;
		if (pthread_create(&th[i], NULL, worker, &jobs[i]) == 0)
			started++;
		else
			jobs[i].bad = 1;
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		bad += jobs[i].bad;
	tap_ok(&t, started == 4 && bad == 0, "4 threads validate with one "
	    "compiled schema and agree (%d wrong)", bad);
	schema_free(s);
	json_decref(doc);
}

int
main(void)
{
	test_type();
	test_objects();
	test_arrays();
	test_unique_many();
	test_values();
	test_numbers();
	test_strings();
	test_secrets();
	test_combinators();
	test_refs();
	test_booleans();
	test_annotations();
	test_refusals();
	test_depth();
	test_pointer();
	test_api();
	test_threads();
	return tap_done(&t);
}
