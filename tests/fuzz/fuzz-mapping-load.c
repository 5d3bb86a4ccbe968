/*
 * tests/fuzz/fuzz-mapping-load.c - libFuzzer target for the mappings file
 * loader: any JSON document must load or be refused with a message, never
 * crash, leak or read out of bounds.  Built and run by fuzz-mapping.sh.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mapping/mapping.h"

/* A module's transform, so registered names are reachable too. */
static int
xf_echo(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)params;
	(void)err;
	(void)errlen;
	*out = json_deep_copy(in);
	return *out == NULL ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct map_registry *reg = NULL;
	struct map_error err;
	struct mapping *m = NULL;
	json_t *doc = NULL, *rec = NULL, *out = NULL;
	char e[256];
	size_t i;
	int s;

	doc = json_loadb((const char *)data, size, JSON_DECODE_ANY |
	    JSON_ALLOW_NUL, NULL);
	if (doc == NULL)
		goto out;
	if ((reg = map_registry_new()) == NULL ||
	    map_registry_add(reg, "echo", xf_echo, e, sizeof(e)) == -1)
		abort();
	memset(&err, 0, sizeof(err));
	m = map_load_json(doc, "fuzz.json", reg, &err);
	if (m == NULL) {
		/* Every refusal says why, and names the file. */
		if (strncmp(err.text, "fuzz.json", 9) != 0)
			abort();
		goto out;
	}
	/* A loaded mapping answers every accessor... */
	if (map_id_name(m, MAP_EXT) == NULL || map_id_name(m, MAP_BOTMATIC) ==
	    NULL)
		abort();
	for (i = 0; i < map_count(m); i++)
		if (map_entry_name(m, i, MAP_EXT) == NULL ||
		    map_entry_type(m, i) == NULL)
			abort();
	/* ...and maps its own document's first entry as a record. */
	rec = json_is_object(json_array_get(doc, 0)) ?
	    json_deep_copy(json_array_get(doc, 0)) : json_object();
	for (s = 0; s < MAP_SIDE__MAX; s++) {
		if (map_apply(m, rec, (enum map_side)s, (enum map_side)!s, &out,
		    NULL, NULL, e, sizeof(e)) == 0)
			json_decref(out);
		out = NULL;
	}
out:
	json_decref(rec);
	map_free(m);
	map_registry_free(reg);
	json_decref(doc);
	return 0;
}
