/*
 * mapping/mapping.c - loading a mappings file and mapping records with it,
 * step for step as js-mapper's mapTo().
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping_private.h"

struct side {
	const char *name;        /* borrowed from mapping.doc */
	struct map__xf *xf;      /* owned; NULL when no transform */
	size_t nxf;
};

struct entry {
	struct side side[MAP_SIDE__MAX];
	const char *type;        /* botmatic.type; borrowed or static */
	int id;
	int strict;
};

struct mapping {
	json_t *doc;             /* owned copy of the entries: names live here */
	struct entry *e;         /* owned array of n */
	size_t n;
	size_t id;               /* index of the id entry */
};

static const char *const side_names[MAP_SIDE__MAX] = { "botmatic", "ext" };

/* Keys an entry and a side may have: anything else is a typo that would
 * otherwise be ignored silently (a misspelt "transform" drops the
 * conversion). */
static const char *const entry_keys[] = { "id", "botmatic", "ext", "strict",
    "comment", NULL };
static const char *const side_keys[] = { "name", "transform", "type", NULL };
static const char *const types[] = { "text", "date", "number", NULL };

static void
seterr(struct map_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
seterr(struct map_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

static int
side_ok(enum map_side s)
{
	return (int)s >= 0 && (int)s < MAP_SIDE__MAX;
}

static int
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

static int
load_side(const char *file, size_t i, json_t *ent, enum map_side s,
    const struct map_registry *reg, struct entry *e, struct map_error *err)
{
	const char *sn = side_names[s], *key;
	json_t *obj, *v;
	char why[512];

	obj = json_object_get(ent, sn);
	if (obj == NULL) {
		seterr(err, "%s: entry %zu: %s: missing", file, i, sn);
		return -1;
	}
	if (!json_is_object(obj)) {
		seterr(err, "%s: entry %zu: %s: not an object", file, i, sn);
		return -1;
	}
	json_object_foreach(obj, key, v) {
		if (!in_list(side_keys, key) ||
		    (s == MAP_EXT && strcmp(key, "type") == 0)) {
			seterr(err, "%s: entry %zu: %s.%.60s: unknown field", file,
			    i, sn, key);
			return -1;
		}
	}
	v = json_object_get(obj, "name");
	if (v == NULL) {
		seterr(err, "%s: entry %zu: %s.name: missing", file, i, sn);
		return -1;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		seterr(err, "%s: entry %zu: %s.name: not a non-empty string",
		    file, i, sn);
		return -1;
	}
	e->side[s].name = json_string_value(v);
	if (s == MAP_BOTMATIC) {
		e->type = "text";
		if ((v = json_object_get(obj, "type")) != NULL) {
			if (!json_is_string(v) ||
			    !in_list(types, json_string_value(v))) {
				map__describe(v, why, 64);
				seterr(err, "%s: entry %zu: botmatic.type: unknown "
				    "type %s (text, date or number)", file, i, why);
				return -1;
			}
			e->type = json_string_value(v);
		}
	}
	if ((v = json_object_get(obj, "transform")) != NULL &&
	    map__xf_compile(v, reg, &e->side[s].xf, &e->side[s].nxf, why,
	    sizeof(why)) == -1) {
		/* A list's element index joins the field: transform[1]: ... */
		seterr(err, "%s: entry %zu: %s.transform%s%s", file, i, sn,
		    why[0] == '[' ? "" : ": ", why);
		return -1;
	}
	return 0;
}

/* Refuses a name used twice on one side: the second would overwrite the
 * first's value in the result. */
static int
check_duplicates(const char *file, const struct mapping *m,
    struct map_error *err)
{
	json_t *seen = NULL, *prev;
	size_t i;
	int s, rc = -1;

	for (s = 0; s < MAP_SIDE__MAX; s++) {
		json_decref(seen);
		if ((seen = json_object()) == NULL) {
			seterr(err, "%s: out of memory", file);
			goto out;
		}
		for (i = 0; i < m->n; i++) {
			prev = json_object_get(seen, m->e[i].side[s].name);
			if (prev != NULL) {
				seterr(err, "%s: entry %zu: %s.name: duplicate name "
				    "\"%.100s\" (also entry %lld)", file, i,
				    side_names[s], m->e[i].side[s].name,
				    (long long)json_integer_value(prev));
				goto out;
			}
			if (json_object_set_new(seen, m->e[i].side[s].name,
			    json_integer((json_int_t)i)) == -1) {
				seterr(err, "%s: out of memory", file);
				goto out;
			}
		}
	}
	rc = 0;
out:
	json_decref(seen);
	return rc;
}

/*
 * Validates entries and builds a mapping from a copy of them; see
 * mapping.h.
 */
struct mapping *
map_load_json(const json_t *entries, const char *name,
    const struct map_registry *reg, struct map_error *err)
{
	struct mapping *m = NULL, *ret = NULL;
	const char *file = name != NULL ? name : "mappings", *key;
	json_t *ent, *v;
	size_t i;
	int have_id = 0;

	if (!json_is_array(entries)) {
		seterr(err, "%s: not a JSON array of entries", file);
		goto out;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->doc = json_deep_copy(entries)) == NULL) {
		seterr(err, "%s: out of memory", file);
		goto out;
	}
	m->n = json_array_size(m->doc);
	if (m->n > 0 && (m->e = calloc(m->n, sizeof(*m->e))) == NULL) {
		seterr(err, "%s: out of memory", file);
		goto out;
	}
	for (i = 0; i < m->n; i++) {
		ent = json_array_get(m->doc, i);
		if (!json_is_object(ent)) {
			seterr(err, "%s: entry %zu: not an object", file, i);
			goto out;
		}
		json_object_foreach(ent, key, v) {
			if (!in_list(entry_keys, key)) {
				seterr(err, "%s: entry %zu: %.60s: unknown field",
				    file, i, key);
				goto out;
			}
		}
		if (load_side(file, i, ent, MAP_BOTMATIC, reg, &m->e[i],
		    err) == -1 ||
		    load_side(file, i, ent, MAP_EXT, reg, &m->e[i], err) == -1)
			goto out;
		if ((v = json_object_get(ent, "strict")) != NULL) {
			if (!json_is_boolean(v)) {
				seterr(err, "%s: entry %zu: strict: not true or "
				    "false", file, i);
				goto out;
			}
			m->e[i].strict = json_is_true(v);
		}
		if ((v = json_object_get(ent, "id")) != NULL) {
			if (!json_is_boolean(v)) {
				seterr(err, "%s: entry %zu: id: not true or false",
				    file, i);
				goto out;
			}
			if (json_is_true(v) && have_id) {
				seterr(err, "%s: entry %zu: id: a second id entry "
				    "(the first is entry %zu)", file, i, m->id);
				goto out;
			}
			if (json_is_true(v)) {
				have_id = 1;
				m->id = i;
				m->e[i].id = 1;
			}
		}
	}
	if (!have_id) {
		seterr(err, "%s: no entry has \"id\": true", file);
		goto out;
	}
	if (check_duplicates(file, m, err) == -1)
		goto out;
	ret = m;
	m = NULL;
out:
	map_free(m);
	return ret;
}

/*
 * Reads path as JSON (duplicate keys refused) and loads it; see mapping.h.
 */
struct mapping *
map_load_file(const char *path, const struct map_registry *reg,
    struct map_error *err)
{
	json_error_t jerr;
	json_t *doc = NULL;
	struct mapping *m = NULL;

	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		if (jerr.line <= 0)   /* could not open or read it */
			seterr(err, "%s: %s", path, jerr.text);
		else
			seterr(err, "%s:%d:%d: invalid JSON: %s", path, jerr.line,
			    jerr.column, jerr.text);
		goto out;
	}
	m = map_load_json(doc, path, reg, err);
out:
	json_decref(doc);
	return m;
}

/*
 * Frees m and everything it owns; see mapping.h.
 */
void
map_free(struct mapping *m)
{
	size_t i;
	int s;

	if (m == NULL)
		return;
	for (i = 0; m->e != NULL && i < m->n; i++)
		for (s = 0; s < MAP_SIDE__MAX; s++)
			free(m->e[i].side[s].xf);
	free(m->e);
	json_decref(m->doc);
	free(m);
}

static int
json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 0 when s[0..len) certainly is not JSON text; 1 when jansson must tell.
 * Most values (names, e-mail addresses, dates such as "2018-02-09 ...")
 * are ruled out here at no cost: a failed parse is the dear part of the
 * default conversion toward ext, and it runs up to three times a field. */
static int
maybe_json(const char *s, size_t len)
{
	size_t i = 0, j;

	while (i < len && json_ws(s[i]))
		i++;
	while (len > i && json_ws(s[len - 1]))
		len--;
	if (i == len)
		return 0;
	switch (s[i]) {
	case '{': case '[': case '"':
		return 1;
	case 't':
		return len - i == 4 && memcmp(s + i, "true", 4) == 0;
	case 'f':
		return len - i == 5 && memcmp(s + i, "false", 5) == 0;
	case 'n':
		return len - i == 4 && memcmp(s + i, "null", 4) == 0;
	default:
		break;
	}
	/* A number, loosely: [-] digits [. digits] [e [+-] digits]. */
	if (s[i] == '-')
		i++;
	for (j = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == j)
		return 0;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
	}
	return i == len;
}

/* JSON.parse(s) when s parses, else s. */
static json_t *
dflt_ext(const json_t *v)
{
	json_t *parsed;
	json_error_t jerr;

	if (!json_is_string(v) ||
	    !maybe_json(json_string_value(v), json_string_length(v)))
		return json_deep_copy(v);
	/* JSON.parse takes any value and "\u0000"; a number jansson cannot
	 * hold (beyond 64 bits, or 1e400) leaves the text as it was. */
	parsed = json_loadb(json_string_value(v), json_string_length(v),
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (parsed == NULL)
		return json_deep_copy(v);
	return parsed;
}

/* JSON.stringify for objects and arrays, and for null, which JavaScript's
 * typeof calls an object too. */
static json_t *
dflt_botmatic(const json_t *v)
{
	struct map__buf b = { 0 };
	json_t *r = NULL;

	if (!json_is_object(v) && !json_is_array(v) && !json_is_null(v))
		return json_deep_copy(v);
	if (map__stringify(v, &b) == 0 && !b.oom)
		r = json_stringn(b.p, b.len);
	map__buf_free(&b);
	return r;
}

/*
 * The default conversion toward `to`; see mapping.h.
 */
json_t *
map_default(enum map_side to, const json_t *v)
{
	if (v == NULL)
		return NULL;
	return to == MAP_EXT ? dflt_ext(v) : dflt_botmatic(v);
}

/* Replaces *v by its default conversion. */
static int
dflt_in_place(enum map_side to, json_t **v)
{
	json_t *n;

	/* Already in final form: skip the copy. */
	if (to == MAP_BOTMATIC && !json_is_object(*v) && !json_is_array(*v) &&
	    !json_is_null(*v))
		return 0;
	if (to == MAP_EXT && !json_is_string(*v))
		return 0;
	if ((n = map_default(to, *v)) == NULL)
		return -1;
	json_decref(*v);
	*v = n;
	return 0;
}

/*
 * Maps record from one side to the other; see mapping.h.
 */
int
map_apply(const struct mapping *m, const json_t *record, enum map_side from,
    enum map_side to, json_t **out, map_warn_fn warn, void *warn_arg,
    char *err, size_t errlen)
{
	const struct entry *e;
	const struct side *ts;
	const char *fname;
	json_t *res = NULL, *src, *v = NULL, *t = NULL;
	char why[512];
	size_t i;
	int rc = -1;

	if (errlen > 0)
		err[0] = '\0';
	if (m == NULL || out == NULL || !side_ok(from) || !side_ok(to)) {
		snprintf(err, errlen, "invalid arguments");
		goto out;
	}
	if (!json_is_object(record)) {
		snprintf(err, errlen, "the record is not a JSON object");
		goto out;
	}
	if ((res = json_object()) == NULL)
		goto oom;
	for (i = 0; i < m->n; i++) {
		e = &m->e[i];
		ts = &e->side[to];
		fname = e->side[from].name;
		src = json_object_get(record, fname);
		if (src == NULL || json_is_null(src) ||
		    (json_is_string(src) && json_string_length(src) == 0))
			continue;
		if (!map__json_valid(src)) {
			snprintf(err, errlen, "field \"%.100s\": invalid UTF-8 "
			    "or nested too deeply", fname);
			goto out;
		}
		if ((v = map_default(to, src)) == NULL)
			goto oom;
		if (ts->nxf > 0) {
			if (map__xf_run(ts->xf, ts->nxf, v, &t, why,
			    sizeof(why)) == -1) {
				json_decref(v);
				v = NULL;
				if (e->strict) {
					snprintf(err, errlen, "field \"%.100s\": %s",
					    ts->name, why);
					goto out;
				}
				if (warn != NULL)
					warn(warn_arg, ts->name, why);
				continue;
			}
			json_decref(v);
			v = t;
			t = NULL;
			if (dflt_in_place(to, &v) == -1)
				goto oom;
		}
		/* js-mapper converts once more on assignment; toward ext that
		 * parses JSON text that was itself JSON text. */
		if (dflt_in_place(to, &v) == -1)
			goto oom;
		if (json_object_set_new(res, ts->name, v) == -1) {
			v = NULL;
			goto oom;
		}
		v = NULL;
	}
	*out = res;
	res = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	json_decref(v);
	json_decref(res);
	return rc;
}

/*
 * Accessors; see mapping.h.
 */
const char *
map_id_name(const struct mapping *m, enum map_side side)
{
	if (m == NULL || !side_ok(side))
		return NULL;
	return m->e[m->id].side[side].name;
}

size_t
map_count(const struct mapping *m)
{
	return m == NULL ? 0 : m->n;
}

const char *
map_entry_name(const struct mapping *m, size_t i, enum map_side side)
{
	if (m == NULL || i >= m->n || !side_ok(side))
		return NULL;
	return m->e[i].side[side].name;
}

const char *
map_entry_type(const struct mapping *m, size_t i)
{
	if (m == NULL || i >= m->n)
		return NULL;
	return m->e[i].type;
}

int
map_entry_is_id(const struct mapping *m, size_t i)
{
	if (m == NULL || i >= m->n)
		return 0;
	return m->e[i].id;
}

int
map_side_parse(const char *s, enum map_side *out)
{
	int i;

	if (s == NULL)
		return -1;
	for (i = 0; i < MAP_SIDE__MAX; i++)
		if (strcmp(s, side_names[i]) == 0) {
			*out = (enum map_side)i;
			return 0;
		}
	return -1;
}

const char *
map_side_name(enum map_side side)
{
	if (!side_ok(side))
		return "?";
	return side_names[side];
}
