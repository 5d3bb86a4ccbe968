/*
 * mapping/transform.c - the built-in transforms, the registry of a module's
 * transforms, and the compilation of a mappings file's "transform" member
 * into a chain run at map time.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping_private.h"

#define MAX_NAME 64

struct map_registry {
	struct reg_ent {
		char *name;          /* owned */
		map_transform_fn fn;
	} *v;                        /* owned array of n */
	size_t n;
};

static int
fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
cannot(const char *what, const json_t *in, const char *why, char *err,
    size_t errlen)
{
	char desc[64];

	map__describe(in, desc, sizeof(desc));
	return fail(err, errlen, "%s: %s %s", what, why, desc);
}

/* parseInt(String(v), 10): a number goes through its JavaScript text, so
 * 1e21 gives 1 and 0.0000005 gives 5, as in Node. */
static int
xf_int(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	struct map__buf b = { 0 };
	int rc;

	(void)params;
	if (json_is_integer(in)) {
		*out = json_integer(json_integer_value(in));
		rc = *out == NULL ? 1 : 0;
	} else if (map__js_string(in, &b) == -1 || b.oom)
		rc = b.oom ? 1 : -1;
	else
		rc = map__parse_int(b.p, b.len, out);
	map__buf_free(&b);
	if (rc == 1)
		return fail(err, errlen, "int: out of memory");
	if (rc == -1)
		return cannot("int", in, "no digits in", err, errlen);
	return 0;
}

/* Number(v): objects and arrays go through String() as ToPrimitive does. */
static int
xf_number(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	struct map__buf b = { 0 };
	int rc = 0;

	(void)params;
	switch (json_typeof(in)) {
	case JSON_INTEGER:
	case JSON_REAL:
		*out = json_deep_copy(in);
		break;
	case JSON_TRUE:
		*out = json_integer(1);
		break;
	case JSON_FALSE:
	case JSON_NULL:
		*out = json_integer(0);
		break;
	default:
		if (map__js_string(in, &b) == -1 || b.oom)
			rc = b.oom ? 1 : -1;
		else
			rc = map__str_to_number(b.p, b.len, out);
		break;
	}
	map__buf_free(&b);
	if (rc == -1)
		return cannot("number", in, "not a finite number:", err, errlen);
	if (rc == 1 || *out == NULL)
		return fail(err, errlen, "number: out of memory");
	return 0;
}

static int
xf_string(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	struct map__buf b = { 0 };

	(void)params;
	if (map__js_string(in, &b) == -1) {
		map__buf_free(&b);
		return cannot("string", in, "cannot convert", err, errlen);
	}
	*out = b.oom ? NULL : json_stringn(b.len ? b.p : "", b.len);
	map__buf_free(&b);
	if (*out == NULL)
		return fail(err, errlen, "string: out of memory");
	return 0;
}

static int
xf_boolean(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)params;
	*out = json_boolean(map__truthy(in));
	if (*out == NULL)
		return fail(err, errlen, "boolean: out of memory");
	return 0;
}

/* lower, upper and trim work on text: numbers and booleans through their
 * String() form (toward ext "123" was already parsed into 123), anything
 * else fails rather than turn into "[object Object]". */
static int
text_op(const char *what, int op, const json_t *in, json_t **out, char *err,
    size_t errlen)
{
	struct map__buf b = { 0 }, r = { 0 };
	const char *s;
	size_t len;
	int rc = -1;

	if (!json_is_string(in) && !json_is_number(in) && !json_is_boolean(in)) {
		cannot(what, in, "not a string:", err, errlen);
		goto out;
	}
	if (map__js_string(in, &b) == -1) {
		cannot(what, in, "not a string:", err, errlen);
		goto out;
	}
	s = b.len ? b.p : "";
	len = b.len;
	if (op == 't') {
		map__js_trim(&s, &len);
		map__buf_add(&r, s, len);
	} else
		map__case(s, len, op == 'u', &r);
	if (b.oom || r.oom ||
	    (*out = json_stringn(r.len ? r.p : "", r.len)) == NULL) {
		fail(err, errlen, "%s: out of memory", what);
		goto out;
	}
	rc = 0;
out:
	map__buf_free(&b);
	map__buf_free(&r);
	return rc;
}

static int
xf_lower(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)params;
	return text_op("lower", 'l', in, out, err, errlen);
}

static int
xf_upper(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)params;
	return text_op("upper", 'u', in, out, err, errlen);
}

static int
xf_trim(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	(void)params;
	return text_op("trim", 't', in, out, err, errlen);
}

/* The fixed built-in names; fn is NULL for those that need parameters. */
static const struct {
	const char *name;
	map_transform_fn fn;
} builtins[] = {
	{ "int", xf_int },
	{ "number", xf_number },
	{ "string", xf_string },
	{ "boolean", xf_boolean },
	{ "lower", xf_lower },
	{ "upper", xf_upper },
	{ "trim", xf_trim },
	{ "date", NULL },
	{ "map", NULL },
};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static int
builtin_index(const char *name)
{
	size_t i;

	for (i = 0; i < NBUILTINS; i++)
		if (strcmp(builtins[i].name, name) == 0)
			return (int)i;
	return -1;
}

static map_transform_fn
registered(const struct map_registry *reg, const char *name)
{
	size_t i;

	if (reg == NULL)
		return NULL;
	for (i = 0; i < reg->n; i++)
		if (strcmp(reg->v[i].name, name) == 0)
			return reg->v[i].fn;
	return NULL;
}

/*
 * Returns a new, empty registry; see mapping.h.
 */
struct map_registry *
map_registry_new(void)
{
	return calloc(1, sizeof(struct map_registry));
}

/*
 * Registers fn under a copy of name; see mapping.h.
 */
int
map_registry_add(struct map_registry *reg, const char *name,
    map_transform_fn fn, char *err, size_t errlen)
{
	struct reg_ent *v;
	char *copy = NULL;
	size_t i, len;

	if (reg == NULL || fn == NULL || name == NULL)
		return fail(err, errlen, "no registry, name or function");
	len = strlen(name);
	if (len == 0 || len > MAX_NAME)
		return fail(err, errlen, "transform name must have 1 to %d "
		    "characters", MAX_NAME);
	for (i = 0; i < len; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789_.:-", name[i]) == NULL)
			return fail(err, errlen, "transform name \"%.64s\": only "
			    "letters, digits and _ . : - are allowed", name);
	if (builtin_index(name) >= 0)
		return fail(err, errlen, "transform \"%s\" is built in", name);
	if (registered(reg, name) != NULL)
		return fail(err, errlen, "transform \"%s\" is already "
		    "registered", name);
	if ((copy = strdup(name)) == NULL ||
	    (v = realloc(reg->v, (reg->n + 1) * sizeof(*v))) == NULL) {
		free(copy);
		return fail(err, errlen, "out of memory");
	}
	reg->v = v;
	reg->v[reg->n].name = copy;
	reg->v[reg->n].fn = fn;
	reg->n++;
	return 0;
}

/*
 * Frees reg; see mapping.h.
 */
void
map_registry_free(struct map_registry *reg)
{
	size_t i;

	if (reg == NULL)
		return;
	for (i = 0; i < reg->n; i++)
		free(reg->v[i].name);
	free(reg->v);
	free(reg);
}

static int
compile_table(const json_t *spec, struct map__xf *xf, char *err,
    size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)spec, key, v) {
		if (strcmp(key, "map") != 0 && strcmp(key, "default") != 0)
			return fail(err, errlen, "map: unknown key \"%.40s\" "
			    "(only \"map\" and \"default\")", key);
	}
	xf->kind = MAP__XF_TABLE;
	xf->name = "map";
	xf->table = json_object_get(spec, "map");
	xf->dflt = json_object_get(spec, "default");
	if (!json_is_object(xf->table))
		return fail(err, errlen, "map: the table must be an object "
		    "{\"value\": replacement, ...}");
	return 0;
}

/* One transform: a name or an object. */
static int
compile_one(const json_t *spec, const struct map_registry *reg,
    struct map__xf *xf, char *err, size_t errlen)
{
	const char *name;
	json_t *params;
	int b;

	memset(xf, 0, sizeof(*xf));
	if (json_is_string(spec)) {
		name = json_string_value(spec);
		if ((b = builtin_index(name)) >= 0) {
			if (builtins[b].fn == NULL)
				return fail(err, errlen, "transform \"%s\" needs "
				    "parameters: {\"%s\": ...}", name, name);
			xf->kind = MAP__XF_FN;
			xf->name = builtins[b].name;
			xf->fn = builtins[b].fn;
			return 0;
		}
		if ((xf->fn = registered(reg, name)) == NULL)
			return fail(err, errlen, "unknown transform \"%.64s\"",
			    name);
		xf->kind = MAP__XF_FN;
		xf->name = name;
		xf->registered = 1;
		return 0;
	}
	if (!json_is_object(spec))
		return fail(err, errlen, "a transform is a name, an object or a "
		    "list of them");
	if (json_object_get(spec, "map") != NULL)
		return compile_table(spec, xf, err, errlen);
	if (json_object_size(spec) != 1)
		return fail(err, errlen, "a transform object has one key, the "
		    "transform's name");
	/* The one key, and its value. */
	name = json_object_iter_key(json_object_iter((json_t *)spec));
	params = json_object_iter_value(json_object_iter((json_t *)spec));
	if (strcmp(name, "date") == 0) {
		xf->kind = MAP__XF_DATE;
		xf->name = "date";
		return map__date_compile(params, &xf->date, err, errlen);
	}
	if (builtin_index(name) >= 0)
		return fail(err, errlen, "transform \"%s\" takes no parameters: "
		    "write \"%s\"", name, name);
	if ((xf->fn = registered(reg, name)) == NULL)
		return fail(err, errlen, "unknown transform \"%.64s\"", name);
	xf->kind = MAP__XF_FN;
	xf->name = name;
	xf->params = spec;
	xf->registered = 1;
	return 0;
}

int
map__xf_compile(const json_t *spec, const struct map_registry *reg,
    struct map__xf **xfp, size_t *nxfp, char *err, size_t errlen)
{
	struct map__xf *xf = NULL;
	char sub[512];
	size_t n, i;
	int rc = -1;

	n = json_is_array(spec) ? json_array_size(spec) : 1;
	if (n == 0) {
		fail(err, errlen, "empty list of transforms");
		goto out;
	}
	if ((xf = calloc(n, sizeof(*xf))) == NULL) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	if (!json_is_array(spec)) {
		if (compile_one(spec, reg, xf, err, errlen) == -1)
			goto out;
	} else {
		for (i = 0; i < n; i++) {
			if (json_is_array(json_array_get(spec, i))) {
				fail(err, errlen, "[%zu]: a list inside a list", i);
				goto out;
			}
			if (compile_one(json_array_get(spec, i), reg, &xf[i], sub,
			    sizeof(sub)) == -1) {
				fail(err, errlen, "[%zu]: %s", i, sub);
				goto out;
			}
		}
	}
	*xfp = xf;
	*nxfp = n;
	xf = NULL;
	rc = 0;
out:
	free(xf);
	return rc;
}

static int
run_table(const struct map__xf *xf, const json_t *in, json_t **out,
    char *err, size_t errlen)
{
	struct map__buf key = { 0 };
	const json_t *hit = NULL;
	int rc = -1;

	/* table[v] as in JavaScript: the key is String(v). */
	if (map__js_string(in, &key) == -1 || key.oom) {
		cannot("map", in, "cannot use as a key:", err, errlen);
		goto out;
	}
	if (key.len > 0 && strlen(key.p) == key.len)
		hit = json_object_get(xf->table, key.p);
	else if (key.len == 0)
		hit = json_object_get(xf->table, "");
	if (hit == NULL)
		hit = xf->dflt;
	if (hit == NULL) {
		cannot("map", in, "no entry for", err, errlen);
		goto out;
	}
	if ((*out = json_deep_copy(hit)) == NULL) {
		fail(err, errlen, "map: out of memory");
		goto out;
	}
	rc = 0;
out:
	map__buf_free(&key);
	return rc;
}

static int
run_one(const struct map__xf *xf, const json_t *in, json_t **out, char *err,
    size_t errlen)
{
	char sub[512];

	switch (xf->kind) {
	case MAP__XF_DATE:
		return map__date_apply(&xf->date, in, out, err, errlen);
	case MAP__XF_TABLE:
		return run_table(xf, in, out, err, errlen);
	case MAP__XF_FN:
	default:
		break;
	}
	if (!xf->registered)
		return xf->fn(in, xf->params, out, err, errlen);
	/* A module's function: trust nothing it returns. */
	*out = NULL;
	sub[0] = '\0';
	if (xf->fn(in, xf->params, out, sub, sizeof(sub)) != 0) {
		json_decref(*out);
		*out = NULL;
		sub[sizeof(sub) - 1] = '\0';
		return fail(err, errlen, "%s: %s", xf->name,
		    sub[0] ? sub : "failed");
	}
	if (*out == NULL)
		return fail(err, errlen, "%s: returned no value", xf->name);
	if (!map__json_valid(*out)) {
		json_decref(*out);
		*out = NULL;
		return fail(err, errlen, "%s: returned invalid UTF-8 or a too "
		    "deep value", xf->name);
	}
	return 0;
}

int
map__xf_run(const struct map__xf *xf, size_t n, const json_t *in,
    json_t **out, char *err, size_t errlen)
{
	json_t *cur = NULL, *next = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		next = NULL;
		if (run_one(&xf[i], i == 0 ? in : cur, &next, err, errlen) != 0) {
			json_decref(cur);
			return -1;
		}
		json_decref(cur);
		cur = next;
	}
	*out = cur;
	return 0;
}
