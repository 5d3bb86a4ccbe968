/*
 * schema/compile.c - checking a schema document and compiling it into a
 * tree of checks: every keyword known or refused, every value well-formed,
 * every $ref resolved, no $ref cycle that would recurse without end.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_private.h"

/* How a keyword's value is checked. */
enum kind {
	K_CHECK,        /* a validation keyword: compiled into a check */
	K_DEFS,         /* $defs: an object of schemas, checked, no check */
	K_STRING,       /* an annotation holding a string */
	K_BOOL,         /* an annotation holding a boolean */
	K_ARRAY,        /* an annotation holding an array */
	K_ANY,          /* an annotation holding any value */
	K_ID,           /* $id: a string, at the root only */
};

static const struct kwdef {
	const char *name;
	enum kind kind;
	enum schema__kw kw;
} kwdefs[] = {
	{ "type", K_CHECK, SCHEMA__KW_TYPE },
	{ "properties", K_CHECK, SCHEMA__KW_PROPERTIES },
	{ "required", K_CHECK, SCHEMA__KW_REQUIRED },
	{ "additionalProperties", K_CHECK, SCHEMA__KW_ADDITIONAL_PROPERTIES },
	{ "items", K_CHECK, SCHEMA__KW_ITEMS },
	{ "prefixItems", K_CHECK, SCHEMA__KW_PREFIX_ITEMS },
	{ "enum", K_CHECK, SCHEMA__KW_ENUM },
	{ "const", K_CHECK, SCHEMA__KW_CONST },
	{ "minimum", K_CHECK, SCHEMA__KW_MINIMUM },
	{ "maximum", K_CHECK, SCHEMA__KW_MAXIMUM },
	{ "exclusiveMinimum", K_CHECK, SCHEMA__KW_EXCLUSIVE_MINIMUM },
	{ "exclusiveMaximum", K_CHECK, SCHEMA__KW_EXCLUSIVE_MAXIMUM },
	{ "minLength", K_CHECK, SCHEMA__KW_MIN_LENGTH },
	{ "maxLength", K_CHECK, SCHEMA__KW_MAX_LENGTH },
	{ "pattern", K_CHECK, SCHEMA__KW_PATTERN },
	{ "minItems", K_CHECK, SCHEMA__KW_MIN_ITEMS },
	{ "maxItems", K_CHECK, SCHEMA__KW_MAX_ITEMS },
	{ "uniqueItems", K_CHECK, SCHEMA__KW_UNIQUE_ITEMS },
	{ "allOf", K_CHECK, SCHEMA__KW_ALL_OF },
	{ "anyOf", K_CHECK, SCHEMA__KW_ANY_OF },
	{ "oneOf", K_CHECK, SCHEMA__KW_ONE_OF },
	{ "not", K_CHECK, SCHEMA__KW_NOT },
	{ "$ref", K_CHECK, SCHEMA__KW_REF },
	{ "$defs", K_DEFS, SCHEMA__KW__MAX },
	{ "$schema", K_STRING, SCHEMA__KW__MAX },
	{ "$id", K_ID, SCHEMA__KW__MAX },
	{ "$comment", K_STRING, SCHEMA__KW__MAX },
	{ "title", K_STRING, SCHEMA__KW__MAX },
	{ "description", K_STRING, SCHEMA__KW__MAX },
	{ "default", K_ANY, SCHEMA__KW__MAX },
	{ "examples", K_ARRAY, SCHEMA__KW__MAX },
	{ "format", K_STRING, SCHEMA__KW__MAX },
	{ "deprecated", K_BOOL, SCHEMA__KW__MAX },
	{ "readOnly", K_BOOL, SCHEMA__KW__MAX },
	{ "writeOnly", K_BOOL, SCHEMA__KW__MAX },
};

#define NKWDEFS (sizeof(kwdefs) / sizeof(kwdefs[0]))

/* Messages quote at most this much of a schema's value. */
#define DESC_MAX 80

/* The largest length or count a schema may give: beyond, no JSON value
 * could tell the difference. */
#define COUNT_MAX 9007199254740992.0

static const struct kwdef *
kwdef_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NKWDEFS; i++)
		if (strlen(kwdefs[i].name) == len &&
		    memcmp(kwdefs[i].name, name, len) == 0)
			return &kwdefs[i];
	return NULL;
}

/* A new pointer: base with one more token, escaped. */
static char *
ptr_join(const char *base, const char *tok, size_t toklen)
{
	size_t n = strlen(base), i, extra = 0;
	char *p, *q;

	/* A NUL (possible in a key) would end the text: spelt out. */
	for (i = 0; i < toklen; i++)
		extra += tok[i] == '~' || tok[i] == '/' ? 1 : tok[i] == '\0' ? 5 : 0;
	if ((p = malloc(n + 1 + toklen + extra + 1)) == NULL)
		return NULL;
	memcpy(p, base, n);
	q = p + n;
	*q++ = '/';
	for (i = 0; i < toklen; i++) {
		if (tok[i] == '~' || tok[i] == '/') {
			*q++ = '~';
			*q++ = tok[i] == '~' ? '0' : '1';
		} else if (tok[i] == '\0') {
			memcpy(q, "\\u0000", 6);
			q += 6;
		} else
			*q++ = tok[i];
	}
	*q = '\0';
	return p;
}

/* As ptr_join() with a NUL-terminated token, or an index. */
static char *
ptr_join2(const char *base, const char *a, const char *b)
{
	char *ab, *p;

	if ((ab = ptr_join(base, a, strlen(a))) == NULL)
		return NULL;
	p = ptr_join(ab, b, strlen(b));
	free(ab);
	return p;
}

static char *
ptr_join_index(const char *base, const char *kw, size_t i)
{
	char num[32];

	snprintf(num, sizeof(num), "%zu", i);
	return ptr_join2(base, kw, num);
}

static int compile_node(struct schema *s, json_t *v, char *ptr,
    unsigned depth, struct schema__node **out, struct schema_error *err);

/* Compiles v at ptr (new, stolen even on failure) into *out. */
static int
compile_sub(struct schema *s, json_t *v, char *ptr, unsigned depth,
    struct schema__node **out, const char *where, struct schema_error *err)
{
	if (ptr == NULL) {
		schema__err(err, where, "", "out of memory");
		return -1;
	}
	return compile_node(s, v, ptr, depth, out, err);
}

/* Compiles an array of schemas (non-empty) into c->subs. */
static int
compile_array(struct schema *s, json_t *v, const char *ptr, const char *kw,
    unsigned depth, struct schema__check *c, struct schema_error *err)
{
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		schema__err(err, ptr, kw, "not a non-empty array of schemas");
		return -1;
	}
	c->nsubs = json_array_size(v);
	if ((c->subs = calloc(c->nsubs, sizeof(*c->subs))) == NULL) {
		schema__err(err, ptr, kw, "out of memory");
		return -1;
	}
	for (i = 0; i < c->nsubs; i++)
		if (compile_sub(s, json_array_get(v, i),
		    ptr_join_index(ptr, kw, i), depth + 1, &c->subs[i], ptr,
		    err) == -1)
			return -1;
	return 0;
}

/* Reads a non-negative integer (1.0 allowed) into *n. */
static int
get_count(const json_t *v, size_t *n)
{
	double d;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		d = (double)json_integer_value(v);
	} else if (json_is_real(v) && (schema__type_of(v) &
	    SCHEMA__T_INTEGER) && json_real_value(v) >= 0) {
		d = json_real_value(v);
	} else
		return -1;
	/* Larger counts than any value can have are all the same. */
	*n = d >= COUNT_MAX ? (size_t)COUNT_MAX : (size_t)d;
	return 0;
}

static int
compile_type(const json_t *v, const char *ptr, struct schema__check *c,
    struct schema_error *err)
{
	const json_t *t;
	size_t i, n, k;
	unsigned bit;

	n = json_is_array(v) ? json_array_size(v) : 1;
	if (!json_is_string(v) && (!json_is_array(v) || n == 0)) {
		schema__err(err, ptr, "type", "not a type name or a non-empty "
		    "array of them");
		return -1;
	}
	for (i = 0; i < n; i++) {
		t = json_is_array(v) ? json_array_get(v, i) : v;
		bit = 0;
		for (k = 0; json_is_string(t) && k < 7; k++)
			if (strcmp(schema__type_name(1u << k),
			    json_string_value(t)) == 0)
				bit = 1u << k;
		if (bit == 0) {
			char *d = schema__describe(t, DESC_MAX);

			schema__err(err, ptr, "type", "%s is not a type (null, "
			    "boolean, object, array, number, string, integer)",
			    d != NULL ? d : "value");
			free(d);
			return -1;
		}
		if (c->types & bit) {
			schema__err(err, ptr, "type", "\"%s\" appears twice",
			    schema__type_name(bit));
			return -1;
		}
		c->types |= bit;
	}
	return 0;
}

static int
compile_required(const json_t *v, const char *ptr, struct schema_error *err)
{
	size_t i, j;

	if (!json_is_array(v)) {
		schema__err(err, ptr, "required", "not an array of names");
		return -1;
	}
	for (i = 0; i < json_array_size(v); i++) {
		const json_t *a = json_array_get(v, i);

		if (!json_is_string(a)) {
			schema__err(err, ptr, "required", "item %zu is not a "
			    "string", i);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (schema__equal(a, json_array_get(v, j), 2) == 1) {
				schema__err(err, ptr, "required", "\"%.100s\" "
				    "appears twice", json_string_value(a));
				return -1;
			}
	}
	return 0;
}

static int
compile_pattern(const json_t *v, const char *ptr, struct schema__check *c,
    struct schema_error *err)
{
	/* ECMA-262-like: $ only at the very end, \uXXXX, unset back
	 * references match the empty string; no \C. */
	uint32_t opts = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX |
	    PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_BACKSLASH_C;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	int code;

	if (!json_is_string(v)) {
		schema__err(err, ptr, "pattern", "not a string");
		return -1;
	}
	c->re = pcre2_compile((PCRE2_SPTR)json_string_value(v),
	    json_string_length(v), opts, &code, &off, NULL);
	if (c->re == NULL) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		schema__err(err, ptr, "pattern", "does not compile: %s (at "
		    "offset %zu)", (const char *)msg, (size_t)off);
		return -1;
	}
	return 0;
}

/* Checks the value of an annotation or container keyword. */
static int
check_other(struct schema *s, const struct kwdef *d, json_t *v,
    const char *ptr, unsigned depth, struct schema_error *err)
{
	struct schema__node *sub;
	const char *key;
	json_t *m;

	switch (d->kind) {
	case K_ID:
		if (depth != 0) {
			schema__err(err, ptr, d->name, "only the root may have "
			    "an $id (no embedded resources)");
			return -1;
		}
		/* FALLTHROUGH */
	case K_STRING:
		if (!json_is_string(v)) {
			schema__err(err, ptr, d->name, "not a string");
			return -1;
		}
		return 0;
	case K_BOOL:
		if (!json_is_boolean(v)) {
			schema__err(err, ptr, d->name, "not a boolean");
			return -1;
		}
		return 0;
	case K_ARRAY:
		if (!json_is_array(v)) {
			schema__err(err, ptr, d->name, "not an array");
			return -1;
		}
		return 0;
	case K_ANY:
		return 0;
	case K_DEFS:
		if (!json_is_object(v)) {
			schema__err(err, ptr, d->name, "not an object of "
			    "schemas");
			return -1;
		}
		json_object_foreach(v, key, m) {
			char *defs = ptr_join(ptr, d->name, strlen(d->name));

			if (compile_sub(s, m, defs == NULL ? NULL :
			    ptr_join(defs, key, SCHEMA__KEYLEN(key)), depth + 1,
			    &sub, ptr, err) == -1) {
				free(defs);
				return -1;
			}
			free(defs);
		}
		return 0;
	case K_CHECK:
		break;
	}
	return 0;
}

/* Compiles one validation keyword of the object o at ptr into c. */
static int
compile_check(struct schema *s, json_t *o, const struct kwdef *d, json_t *v,
    const char *ptr, unsigned depth, struct schema__check *c,
    struct schema_error *err)
{
	const char *key, *kw = d->name;
	json_t *m, *sib;
	size_t i;

	c->kw = d->kw;
	c->name = d->name;
	c->value = v;
	switch (d->kw) {
	case SCHEMA__KW_TYPE:
		return compile_type(v, ptr, c, err);
	case SCHEMA__KW_PROPERTIES:
		if (!json_is_object(v)) {
			schema__err(err, ptr, kw, "not an object of schemas");
			return -1;
		}
		c->nsubs = json_object_size(v);
		if (c->nsubs > 0 && (c->subs = calloc(c->nsubs,
		    sizeof(*c->subs))) == NULL) {
			schema__err(err, ptr, kw, "out of memory");
			return -1;
		}
		i = 0;
		json_object_foreach(v, key, m) {
			char *p = ptr_join(ptr, kw, strlen(kw));

			if (compile_sub(s, m, p == NULL ? NULL :
			    ptr_join(p, key, SCHEMA__KEYLEN(key)), depth + 1,
			    &c->subs[i++], ptr, err) == -1) {
				free(p);
				return -1;
			}
			free(p);
		}
		return 0;
	case SCHEMA__KW_REQUIRED:
		return compile_required(v, ptr, err);
	case SCHEMA__KW_ADDITIONAL_PROPERTIES:
		sib = json_object_get(o, "properties");
		c->props = json_is_object(sib) ? sib : NULL;
		return compile_sub(s, v, ptr_join(ptr, kw, strlen(kw)),
		    depth + 1, &c->sub, ptr, err);
	case SCHEMA__KW_ITEMS:
		if (json_is_array(v)) {
			schema__err(err, ptr, kw, "an array of schemas is draft "
			    "7's form: in 2020-12 that is prefixItems");
			return -1;
		}
		sib = json_object_get(o, "prefixItems");
		c->num = json_is_array(sib) ? json_array_size(sib) : 0;
		return compile_sub(s, v, ptr_join(ptr, kw, strlen(kw)),
		    depth + 1, &c->sub, ptr, err);
	case SCHEMA__KW_PREFIX_ITEMS:
	case SCHEMA__KW_ALL_OF:
	case SCHEMA__KW_ANY_OF:
	case SCHEMA__KW_ONE_OF:
		return compile_array(s, v, ptr, kw, depth, c, err);
	case SCHEMA__KW_ENUM:
		if (!json_is_array(v)) {
			schema__err(err, ptr, kw, "not an array");
			return -1;
		}
		/* FALLTHROUGH */
	case SCHEMA__KW_CONST:
		if ((c->desc = schema__describe(v, DESC_MAX)) == NULL) {
			schema__err(err, ptr, kw, "out of memory");
			return -1;
		}
		return 0;
	case SCHEMA__KW_MINIMUM:
	case SCHEMA__KW_MAXIMUM:
	case SCHEMA__KW_EXCLUSIVE_MINIMUM:
	case SCHEMA__KW_EXCLUSIVE_MAXIMUM:
		if (!json_is_number(v)) {
			schema__err(err, ptr, kw, "not a number");
			return -1;
		}
		return 0;
	case SCHEMA__KW_MIN_LENGTH:
	case SCHEMA__KW_MAX_LENGTH:
	case SCHEMA__KW_MIN_ITEMS:
	case SCHEMA__KW_MAX_ITEMS:
		if (get_count(v, &c->num) == -1) {
			schema__err(err, ptr, kw, "not a non-negative integer");
			return -1;
		}
		return 0;
	case SCHEMA__KW_PATTERN:
		if (compile_pattern(v, ptr, c, err) == -1)
			return -1;
		if ((c->desc = schema__describe(v, DESC_MAX)) == NULL) {
			schema__err(err, ptr, kw, "out of memory");
			return -1;
		}
		return 0;
	case SCHEMA__KW_UNIQUE_ITEMS:
		if (!json_is_boolean(v)) {
			schema__err(err, ptr, kw, "not a boolean");
			return -1;
		}
		return 0;
	case SCHEMA__KW_NOT:
		return compile_sub(s, v, ptr_join(ptr, kw, strlen(kw)),
		    depth + 1, &c->sub, ptr, err);
	case SCHEMA__KW_REF:
		/* Resolved once every node is known: see resolve_refs(). */
		if (!json_is_string(v)) {
			schema__err(err, ptr, kw, "not a string");
			return -1;
		}
		if ((c->desc = schema__describe(v, DESC_MAX)) == NULL) {
			schema__err(err, ptr, kw, "out of memory");
			return -1;
		}
		return 0;
	case SCHEMA__KW__MAX:
		break;
	}
	return 0;
}

/* Adds node n (owned) to s's list and index. */
static int
node_add(struct schema *s, struct schema__node *n)
{
	struct schema__node **p;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;

		if ((p = realloc(s->nodes, cap * sizeof(*p))) == NULL)
			return -1;
		s->nodes = p;
		s->cap = cap;
	}
	s->nodes[s->n] = n;
	if (json_object_set_new(s->index, n->ptr,
	    json_integer((json_int_t)s->n)) == -1)
		return -1;
	s->n++;
	return 0;
}

static void
node_free(struct schema__node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nchecks; i++) {
		free(n->checks[i].subs);
		pcre2_code_free(n->checks[i].re);
		free(n->checks[i].desc);
	}
	free(n->checks);
	free(n->ptr);
	free(n);
}

/* Compiles v at ptr (new; stolen even on failure) into *out: a node that
 * s owns from then on. */
static int
compile_node(struct schema *s, json_t *v, char *ptr, unsigned depth,
    struct schema__node **out, struct schema_error *err)
{
	struct schema__node *n = NULL;
	const struct kwdef *d;
	const char *key;
	json_t *m;
	size_t nchecks = 0;
	int rc = -1;

	if (depth > SCHEMA_DEPTH_MAX) {
		schema__err(err, ptr, "", "schemas nested deeper than %d "
		    "levels", SCHEMA_DEPTH_MAX);
		goto out;
	}
	if (!json_is_object(v) && !json_is_boolean(v)) {
		schema__err(err, ptr, "", "not a schema (an object or a "
		    "boolean)");
		goto out;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		schema__err(err, ptr, "", "out of memory");
		goto out;
	}
	n->ptr = ptr;
	ptr = NULL;
	n->boolean = json_is_boolean(v) ? json_is_true(v) : -1;
	/* Every keyword known before any is compiled, so that a typo is
	 * reported as such rather than as an error further in. */
	json_object_foreach(v, key, m) {
		size_t klen = SCHEMA__KEYLEN(key);

		if ((d = kwdef_find(key, klen)) == NULL) {
			schema__err(err, n->ptr, "", "unknown keyword \"%.60s\"",
			    key);
			if (err != NULL)
				snprintf(err->keyword, sizeof(err->keyword),
				    "%s", key);
			goto out;
		}
		if (d->kind == K_CHECK && !(d->kw == SCHEMA__KW_UNIQUE_ITEMS &&
		    json_is_false(m)))
			nchecks++;
	}
	if (nchecks > 0 &&
	    (n->checks = calloc(nchecks, sizeof(*n->checks))) == NULL) {
		schema__err(err, n->ptr, "", "out of memory");
		goto out;
	}
	if (node_add(s, n) == -1) {
		schema__err(err, n->ptr, "", "out of memory");
		goto out;
	}
	*out = n;
	n = NULL;        /* s owns it now */
	json_object_foreach(v, key, m) {
		d = kwdef_find(key, SCHEMA__KEYLEN(key));
		if (d->kind != K_CHECK) {
			if (check_other(s, d, m, (*out)->ptr, depth, err) == -1)
				goto out;
			continue;
		}
		if (d->kw == SCHEMA__KW_UNIQUE_ITEMS && json_is_false(m))
			continue;
		if (compile_check(s, v, d, m, (*out)->ptr, depth,
		    &(*out)->checks[(*out)->nchecks++], err) == -1)
			goto out;
	}
	rc = 0;
out:
	free(ptr);
	node_free(n);
	return rc;
}

/* Decodes %XX in s[0..len) into a new string; NULL when malformed. */
static char *
percent_decode(const char *s, size_t len, size_t *outlen)
{
	char *p, *q, hex[3] = { 0, 0, 0 };
	size_t i;

	if ((p = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0, q = p; i < len; i++) {
		if (s[i] != '%') {
			*q++ = s[i];
			continue;
		}
		if (i + 2 >= len) {
			free(p);
			return NULL;
		}
		hex[0] = s[i + 1];
		hex[1] = s[i + 2];
		if (strspn(hex, "0123456789abcdefABCDEF") != 2) {
			free(p);
			return NULL;
		}
		*q++ = (char)strtol(hex, NULL, 16);
		i += 2;
	}
	*q = '\0';
	*outlen = (size_t)(q - p);
	return p;
}

/* Finds the node $ref names; NULL with the reason in err. */
static struct schema__node *
resolve(const struct schema *s, const struct schema__node *from,
    const struct schema__check *c, struct schema_error *err)
{
	const char *ref = json_string_value(c->value);
	size_t len = json_string_length(c->value), plen;
	struct schema__node *target = NULL;
	const json_t *i;
	char *p = NULL;

	if (len == 0 || ref[0] != '#') {
		schema__err(err, from->ptr, "$ref", "%s is not a local "
		    "reference (\"#\" or \"#/$defs/...\")", c->desc);
		goto out;
	}
	if (len > 1 && ref[1] != '/') {
		schema__err(err, from->ptr, "$ref", "%s: plain-name fragments "
		    "($anchor) are not supported", c->desc);
		goto out;
	}
	if ((p = percent_decode(ref + 1, len - 1, &plen)) == NULL) {
		schema__err(err, from->ptr, "$ref", "%s: bad %%-escape, or out "
		    "of memory", c->desc);
		goto out;
	}
	if ((i = json_object_getn(s->index, p, plen)) == NULL) {
		schema__err(err, from->ptr, "$ref", "%s does not resolve to a "
		    "subschema of this document", c->desc);
		goto out;
	}
	target = s->nodes[json_integer_value(i)];
out:
	free(p);
	return target;
}

static int
resolve_refs(struct schema *s, struct schema_error *err)
{
	size_t i, k;

	for (i = 0; i < s->n; i++)
		for (k = 0; k < s->nodes[i]->nchecks; k++) {
			struct schema__check *c = &s->nodes[i]->checks[k];

			if (c->kw != SCHEMA__KW_REF)
				continue;
			if ((c->sub = resolve(s, s->nodes[i], c, err)) == NULL)
				return -1;
		}
	return 0;
}

/* Walks the keywords that apply a subschema to the same value (allOf,
 * anyOf, oneOf, not, $ref) from n, reached from `from` through keyword kw:
 * reaching an open node again is a loop validation would never leave. */
static int
find_cycle(struct schema__node *n, const struct schema__node *from,
    const char *kw, unsigned depth, struct schema_error *err)
{
	size_t k, j;

	if (n->mark == 2)
		return 0;
	if (n->mark == 1) {
		schema__err(err, from->ptr, kw, "leads back to %s without "
		    "going into the value (an endless loop)",
		    n->ptr[0] != '\0' ? n->ptr : "the root");
		return -1;
	}
	if (depth > SCHEMA__VALIDATE_DEPTH) {
		schema__err(err, n->ptr, kw, "subschemas applied to the same "
		    "value nest deeper than %d levels", SCHEMA__VALIDATE_DEPTH);
		return -1;
	}
	n->mark = 1;
	for (k = 0; k < n->nchecks; k++) {
		struct schema__check *c = &n->checks[k];

		switch (c->kw) {
		case SCHEMA__KW_REF:
		case SCHEMA__KW_NOT:
			if (find_cycle(c->sub, n, c->name, depth + 1,
			    err) == -1)
				return -1;
			break;
		case SCHEMA__KW_ALL_OF:
		case SCHEMA__KW_ANY_OF:
		case SCHEMA__KW_ONE_OF:
			for (j = 0; j < c->nsubs; j++)
				if (find_cycle(c->subs[j], n, c->name,
				    depth + 1, err) == -1)
					return -1;
			break;
		default:
			break;
		}
	}
	n->mark = 2;
	return 0;
}

/* Creates the match context, bounding every pattern's work, when some
 * pattern needs it. */
static int
make_match_context(struct schema *s)
{
	size_t i, k;

	for (i = 0; i < s->n; i++)
		for (k = 0; k < s->nodes[i]->nchecks; k++)
			if (s->nodes[i]->checks[k].re != NULL)
				goto found;
	return 0;
found:
	if ((s->mctx = pcre2_match_context_create(NULL)) == NULL)
		return -1;
	pcre2_set_match_limit(s->mctx, SCHEMA__MATCH_LIMIT);
	pcre2_set_depth_limit(s->mctx, SCHEMA__MATCH_LIMIT);
	pcre2_set_heap_limit(s->mctx, SCHEMA__HEAP_LIMIT_KIB);
	return 0;
}

/* See schema.h. */
int
schema_compile(const json_t *doc, struct schema **out,
    struct schema_error *err)
{
	struct schema *s = NULL;
	char *root = NULL;
	size_t i;
	int rc = -1;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (doc == NULL) {
		schema__err(err, "", "", "no schema");
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->doc = json_deep_copy(doc)) == NULL ||
	    (s->index = json_object()) == NULL || (root = strdup("")) == NULL) {
		schema__err(err, "", "", "out of memory");
		goto out;
	}
	if (compile_node(s, s->doc, root, 0, &s->root, err) == -1)
		goto out;
	if (resolve_refs(s, err) == -1)
		goto out;
	for (i = 0; i < s->n; i++)
		if (find_cycle(s->nodes[i], s->nodes[i], "", 0, err) == -1)
			goto out;
	if (make_match_context(s) == -1) {
		schema__err(err, "", "", "out of memory");
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	schema_free(s);
	return rc;
}

/* See schema.h. */
const json_t *
schema_json(const struct schema *s)
{
	return s->doc;
}

/* See schema.h. */
void
schema_free(struct schema *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	json_decref(s->index);
	json_decref(s->doc);
	pcre2_match_context_free(s->mctx);
	free(s);
}
