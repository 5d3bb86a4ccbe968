/*
 * tests/fuzz/fuzz-mapping-apply.c - libFuzzer target for map_apply() and
 * JSON.stringify.
 *
 * The input is a mappings document, a NUL byte, and a record.  When the
 * first part does not load, a fixed mapping that puts every built-in
 * transform on fields "a" to "q" is used, so any record exercises them.
 * Each record is mapped both ways; every result must stringify into JSON
 * that reads back as the same value.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mapping/mapping.h"

static const char fixed[] =
    "[{\"id\":true,\"botmatic\":{\"name\":\"id\"},\"ext\":{\"name\":\"xid\","
    "\"transform\":\"int\"}},"
    "{\"botmatic\":{\"name\":\"a\",\"transform\":\"number\"},\"ext\":{\"name\":"
    "\"a\",\"transform\":\"int\"}},"
    "{\"botmatic\":{\"name\":\"b\",\"transform\":\"string\"},\"ext\":{\"name\":"
    "\"b\",\"transform\":\"boolean\"}},"
    "{\"botmatic\":{\"name\":\"c\",\"transform\":[\"trim\",\"upper\"]},\"ext\":"
    "{\"name\":\"c\",\"transform\":\"lower\"}},"
    "{\"botmatic\":{\"name\":\"d\",\"transform\":{\"date\":{\"from\":\"iso8601\","
    "\"to\":\"sql\"}}},\"ext\":{\"name\":\"d\",\"transform\":{\"date\":{\"from\":"
    "\"sql\",\"to\":\"iso8601\",\"tz\":\"+05:30\"}}}},"
    "{\"botmatic\":{\"name\":\"e\",\"transform\":{\"date\":{\"from\":\"unix\","
    "\"to\":\"%a %d %b %Y %H:%M:%S %z %Z %j %s\"}}},\"ext\":{\"name\":\"e\","
    "\"transform\":{\"date\":{\"from\":\"%d/%m/%Y %H:%M %z\",\"to\":\"unix_ms\"}}}},"
    "{\"botmatic\":{\"name\":\"f\",\"transform\":{\"date\":{\"from\":\"unix_ms\","
    "\"to\":\"iso8601\"}}},\"ext\":{\"name\":\"f\",\"transform\":{\"date\":{\"from\":"
    "\"iso8601\",\"to\":\"unix\",\"tz\":\"-11:00\"}}}},"
    "{\"botmatic\":{\"name\":\"g\",\"transform\":{\"map\":{\"M\":\"male\",\"1\":[1]},"
    "\"default\":null}},\"ext\":{\"name\":\"g\",\"transform\":{\"map\":{\"male\":"
    "\"M\"}}}},"
    "{\"strict\":true,\"botmatic\":{\"name\":\"h\",\"transform\":\"int\"},\"ext\":"
    "{\"name\":\"h\",\"transform\":\"number\"}},"
    "{\"botmatic\":{\"name\":\"i\"},\"ext\":{\"name\":\"i\"}},"
    "{\"botmatic\":{\"name\":\"q\",\"transform\":[\"string\",\"int\",\"string\"]},"
    "\"ext\":{\"name\":\"q\",\"transform\":[\"string\",\"number\",\"boolean\"]}}]";

/* Same value, numbers compared as numbers (100.0 prints as 100). */
static int
same(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return json_number_value(a) == json_number_value(b);
	}
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		    memcmp(json_string_value(a), json_string_value(b),
		    json_string_length(a)) == 0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)a, key, v)
			if (json_object_get(b, key) == NULL ||
			    !same(v, json_object_get(b, key)))
				return 0;
		return 1;
	default:
		return 1;
	}
}

static void
check_text(const json_t *v)
{
	char *text;
	json_t *back;

	if ((text = map_stringify(v)) == NULL)
		return;   /* out of memory, or a value it must refuse */
	back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	/* A real of 2^63 or more prints as digits, as JavaScript does: valid
	 * JSON that jansson reads only as a real. */
	if (back == NULL)
		back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL |
		    JSON_DECODE_INT_AS_REAL, NULL);
	if (back == NULL || !same(v, back))
		abort();
	json_decref(back);
	free(text);
}

static void
on_warn(void *arg, const char *field, const char *reason)
{
	(void)arg;
	if (field == NULL || reason == NULL || reason[0] == '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	struct mapping *m = NULL;
	json_t *doc = NULL, *rec = NULL, *out = NULL, *d = NULL;
	const char *rtext = (const char *)data;
	size_t rlen = size;
	char err[512];
	int s;

	if (nul != NULL) {
		doc = json_loadb((const char *)data, (size_t)(nul - data), 0,
		    NULL);
		m = doc ? map_load_json(doc, NULL, NULL, NULL) : NULL;
		rtext = (const char *)nul + 1;
		rlen = size - (size_t)(nul - data) - 1;
	}
	if (m == NULL) {
		json_decref(doc);
		doc = json_loads(fixed, 0, NULL);
		if ((m = map_load_json(doc, NULL, NULL, NULL)) == NULL)
			abort();
	}
	rec = json_loadb(rtext, rlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (rec == NULL)
		goto out;
	check_text(rec);
	/* The default conversion toward ext skips the parse only for text
	 * that cannot be JSON: it must agree with a plain parse. */
	if (json_is_string(rec)) {
		json_t *parsed = json_loadb(json_string_value(rec),
		    json_string_length(rec), JSON_DECODE_ANY | JSON_ALLOW_NUL,
		    NULL);

		d = map_default(MAP_EXT, rec);
		if (d != NULL && !same(d, parsed != NULL ? parsed : rec))
			abort();
		json_decref(parsed);
		json_decref(d);
	}
	for (s = 0; s < MAP_SIDE__MAX; s++) {
		if ((d = map_default((enum map_side)s, rec)) != NULL)
			check_text(d);
		json_decref(d);
		if (map_apply(m, rec, (enum map_side)!s, (enum map_side)s, &out,
		    on_warn, NULL, err, sizeof(err)) == 0) {
			if (!json_is_object(out))
				abort();
			check_text(out);
			json_decref(out);
		} else if (err[0] == '\0')
			abort();
		out = NULL;
	}
out:
	json_decref(rec);
	json_decref(doc);
	map_free(m);
	return 0;
}
