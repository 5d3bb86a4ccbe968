/*
 * schema/validate.c - checking a value against a compiled schema.  The
 * value's location is a chain of frames on the stack, turned into a JSON
 * Pointer only when an error is reported; branches that may fail without
 * the value failing (anyOf, oneOf, not) run without an error to fill.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_private.h"

/* Where in the value validation is: a key of an object or an index of
 * an array, below up.  NULL is the root. */
struct at {
	const struct at *up;
	const char *key;        /* borrowed; NULL for an index */
	size_t keylen;
	size_t index;
};

/* One validation call's state. */
struct vctx {
	const struct schema *s;
	struct schema_error *err;   /* NULL while trying a branch */
	pcre2_match_data *md;       /* created at the first pattern */
};

static void
at_text(const struct at *at, char *buf, size_t len)
{
	char num[32];

	if (at == NULL) {
		buf[0] = '\0';
		return;
	}
	at_text(at->up, buf, len);
	if (at->key != NULL)
		schema__ptr_add(buf, len, at->key, at->keylen);
	else {
		snprintf(num, sizeof(num), "%zu", at->index);
		schema__ptr_add(buf, len, num, strlen(num));
	}
}

/* Reports an error at `at`; returns 1 (invalid) for the caller to pass
 * on. */
static int
fail(struct vctx *c, const struct at *at, const char *keyword,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(struct vctx *c, const struct at *at, const char *keyword,
    const char *fmt, ...)
{
	char ptr[sizeof(c->err->pointer)], msg[sizeof(c->err->text)];
	va_list ap;

	if (c->err == NULL)
		return 1;
	at_text(at, ptr, sizeof(ptr));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	schema__err(c->err, ptr, keyword, "%s", msg);
	return 1;
}

/* As fail(), wrapping the error a branch left in c->err. */
static int
fail_wrap(struct vctx *c, const struct at *at, const char *keyword,
    const char *prefix)
{
	char ptr[sizeof(c->err->pointer)];

	if (c->err == NULL)
		return 1;
	at_text(at, ptr, sizeof(ptr));
	schema__err_wrap(c->err, ptr, keyword, prefix);
	return 1;
}

static int validate(struct vctx *c, const struct schema__node *n,
    const json_t *v, const struct at *at, unsigned depth, const char *via);

/* Runs n on v as a branch: its errors are not the value's. */
static int
try(struct vctx *c, const struct schema__node *n, const json_t *v,
    const struct at *at, unsigned depth, const char *via)
{
	struct schema_error *err = c->err;
	int r;

	c->err = NULL;
	r = validate(c, n, v, at, depth, via);
	c->err = err;
	return r;
}

static int
check_type(struct vctx *c, const struct schema__check *k, const json_t *v,
    const struct at *at)
{
	unsigned t = schema__type_of(v), bit;
	char want[128] = "";
	size_t n;

	if ((k->types & t) ||
	    (t == SCHEMA__T_INTEGER && (k->types & SCHEMA__T_NUMBER)))
		return 0;
	for (bit = 1; bit <= SCHEMA__T_INTEGER; bit <<= 1) {
		if (!(k->types & bit))
			continue;
		n = strlen(want);
		snprintf(want + n, sizeof(want) - n, "%s%s",
		    n > 0 ? " or " : "", schema__type_name(bit));
	}
	return fail(c, at, "type", "expected %s, got %s", want,
	    schema__type_name(t));
}

/* The first pair of equal items (smallest second index, then first) of
 * more items than the pairwise loop takes: hashes sorted, equal hashes
 * compared. */
struct hashed {
	uint64_t h;
	size_t i;
};

static int
hashed_cmp(const void *a, const void *b)
{
	const struct hashed *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int
unique_hashed(struct vctx *c, const json_t *v, const struct at *at,
    size_t *di, size_t *dj)
{
	size_t n = json_array_size(v), g, a, b;
	struct hashed *t;
	int rc = -1, r;

	if ((t = malloc(n * sizeof(*t))) == NULL) {
		fail(c, at, "uniqueItems", "out of memory");
		return -1;
	}
	for (a = 0; a < n; a++) {
		t[a].i = a;
		if (schema__hash(json_array_get(v, a), SCHEMA__VALIDATE_DEPTH,
		    &t[a].h) == -1) {
			rc = fail(c, at, "uniqueItems", "an item is nested too "
			    "deeply to compare");
			goto out;
		}
	}
	qsort(t, n, sizeof(*t), hashed_cmp);
	*dj = n;
	for (g = 0; g < n; g = b) {
		for (b = g + 1; b < n && t[b].h == t[g].h; b++)
			;
		/* In a group, by index: the first earlier equal item. */
		for (a = g + 1; a < b && t[a].i < *dj; a++) {
			size_t e;

			for (e = g; e < a; e++) {
				r = schema__equal(json_array_get(v, t[e].i),
				    json_array_get(v, t[a].i),
				    SCHEMA__VALIDATE_DEPTH);
				if (r == 1) {
					*di = t[e].i;
					*dj = t[a].i;
					break;
				}
			}
			if (e < a)
				break;
		}
	}
	rc = *dj < n ? 1 : 0;
out:
	free(t);
	return rc;
}

static int
check_unique(struct vctx *c, const json_t *v, const struct at *at)
{
	size_t n = json_array_size(v), i = 0, j = 0;
	int r;

	if (n <= SCHEMA__UNIQUE_PAIRWISE) {
		for (j = 1; j < n; j++)
			for (i = 0; i < j; i++) {
				r = schema__equal(json_array_get(v, i),
				    json_array_get(v, j),
				    SCHEMA__VALIDATE_DEPTH);
				if (r == -1)
					return fail(c, at, "uniqueItems", "an "
					    "item is nested too deeply to "
					    "compare");
				if (r == 1)
					goto dup;
			}
		return 0;
	}
	if ((r = unique_hashed(c, v, at, &i, &j)) != 1)
		return r;
dup:
	return fail(c, at, "uniqueItems", "items %zu and %zu are equal", i, j);
}

static int
check_pattern(struct vctx *c, const struct schema__check *k,
    const json_t *v, const struct at *at)
{
	PCRE2_UCHAR msg[128];
	int r;

	if (c->md == NULL &&
	    (c->md = pcre2_match_data_create(1, NULL)) == NULL) {
		fail(c, at, "pattern", "out of memory");
		return -1;
	}
	r = pcre2_match(k->re, (PCRE2_SPTR)json_string_value(v),
	    json_string_length(v), 0, 0, c->md, c->s->mctx);
	if (r >= 0)
		return 0;
	if (r == PCRE2_ERROR_NOMATCH)
		return fail(c, at, "pattern", "does not match %s", k->desc);
	if (r == PCRE2_ERROR_NOMEMORY) {
		fail(c, at, "pattern", "out of memory");
		return -1;
	}
	/* Limits reached: the value is refused rather than waited for. */
	pcre2_get_error_message(r, msg, sizeof(msg));
	return fail(c, at, "pattern", "cannot be matched against %s: %s",
	    k->desc, (const char *)msg);
}

/* anyOf, oneOf: how many branches hold (stopping at 2 for oneOf). */
static int
check_of(struct vctx *c, const struct schema__check *k, const json_t *v,
    const struct at *at, unsigned depth)
{
	size_t i, nvalid = 0, first = 0;
	char why[128];
	int r;

	for (i = 0; i < k->nsubs; i++) {
		r = try(c, k->subs[i], v, at, depth + 1, k->name);
		if (r == -1)
			return -1;
		if (r == 1)
			continue;
		if (k->kw == SCHEMA__KW_ANY_OF)
			return 0;
		if (nvalid++ == 1)
			return fail(c, at, k->name, "valid against subschemas "
			    "%zu and %zu, and exactly one must hold", first, i);
		first = i;
	}
	if (nvalid == 1)
		return 0;
	if (c->err == NULL)
		return 1;
	/* Why the first branch failed says the most about a near miss. */
	r = validate(c, k->subs[0], v, at, depth + 1, k->name);
	if (r != 1)
		return r == 0 ? fail(c, at, k->name, "no subschema holds") : r;
	snprintf(why, sizeof(why), "valid against none of the %zu "
	    "subschemas; subschema 0: ", k->nsubs);
	return fail_wrap(c, at, k->name, why);
}

/* Runs one keyword; 0 holds, 1 fails, -1 out of memory. */
static int
check(struct vctx *c, const struct schema__check *k, const json_t *v,
    const struct at *at, unsigned depth)
{
	char a[64], b[64];
	const char *key;
	json_t *m;
	size_t i, n;
	int r, cmp;

	switch (k->kw) {
	case SCHEMA__KW_TYPE:
		return check_type(c, k, v, at);
	case SCHEMA__KW_PROPERTIES:
		if (!json_is_object(v))
			return 0;
		i = 0;
		json_object_foreach((json_t *)k->value, key, m) {
			struct at in = { at, key, SCHEMA__KEYLEN(key), 0 };
			const json_t *pv = json_object_getn(v, key, in.keylen);

			if (pv != NULL && (r = validate(c, k->subs[i], pv, &in,
			    depth + 1, k->name)) != 0)
				return r;
			i++;
		}
		return 0;
	case SCHEMA__KW_REQUIRED:
		if (!json_is_object(v))
			return 0;
		for (i = 0; i < json_array_size(k->value); i++) {
			const json_t *name = json_array_get(k->value, i);
			struct at in = { at, json_string_value(name),
			    json_string_length(name), 0 };

			if (json_object_getn(v, in.key, in.keylen) == NULL)
				return fail(c, &in, "required", "missing "
				    "property \"%.100s\"", in.key);
		}
		return 0;
	case SCHEMA__KW_ADDITIONAL_PROPERTIES:
		if (!json_is_object(v))
			return 0;
		json_object_foreach((json_t *)v, key, m) {
			struct at in = { at, key, SCHEMA__KEYLEN(key), 0 };

			if (k->props != NULL &&
			    json_object_getn(k->props, key, in.keylen) != NULL)
				continue;
			if ((r = validate(c, k->sub, m, &in, depth + 1,
			    k->name)) != 0)
				return r;
		}
		return 0;
	case SCHEMA__KW_ITEMS:
	case SCHEMA__KW_PREFIX_ITEMS:
		if (!json_is_array(v))
			return 0;
		n = json_array_size(v);
		if (k->kw == SCHEMA__KW_PREFIX_ITEMS && n > k->nsubs)
			n = k->nsubs;
		for (i = k->kw == SCHEMA__KW_ITEMS ? k->num : 0; i < n; i++) {
			struct at in = { at, NULL, 0, i };

			if ((r = validate(c, k->kw == SCHEMA__KW_ITEMS ?
			    k->sub : k->subs[i], json_array_get(v, i), &in,
			    depth + 1, k->name)) != 0)
				return r;
		}
		return 0;
	case SCHEMA__KW_ENUM:
		for (i = 0; i < json_array_size(k->value); i++) {
			r = schema__equal(v, json_array_get(k->value, i),
			    SCHEMA__VALIDATE_DEPTH);
			if (r == 1)
				return 0;
		}
		return fail(c, at, "enum", "not one of %s", k->desc);
	case SCHEMA__KW_CONST:
		if (schema__equal(v, k->value, SCHEMA__VALIDATE_DEPTH) == 1)
			return 0;
		return fail(c, at, "const", "not %s", k->desc);
	case SCHEMA__KW_MINIMUM:
	case SCHEMA__KW_MAXIMUM:
	case SCHEMA__KW_EXCLUSIVE_MINIMUM:
	case SCHEMA__KW_EXCLUSIVE_MAXIMUM:
		if (!json_is_number(v))
			return 0;
		cmp = schema__num_cmp(v, k->value);
		if ((k->kw == SCHEMA__KW_MINIMUM && cmp >= 0) ||
		    (k->kw == SCHEMA__KW_MAXIMUM && cmp <= 0) ||
		    (k->kw == SCHEMA__KW_EXCLUSIVE_MINIMUM && cmp > 0) ||
		    (k->kw == SCHEMA__KW_EXCLUSIVE_MAXIMUM && cmp < 0))
			return 0;
		if (c->err == NULL)
			return 1;
		schema__num_text(v, a, sizeof(a));
		schema__num_text(k->value, b, sizeof(b));
		return fail(c, at, k->name, "%s is %s %s", a,
		    k->kw == SCHEMA__KW_MINIMUM ? "less than" :
		    k->kw == SCHEMA__KW_MAXIMUM ? "greater than" :
		    k->kw == SCHEMA__KW_EXCLUSIVE_MINIMUM ?
		    "not greater than" : "not less than", b);
	case SCHEMA__KW_MIN_LENGTH:
	case SCHEMA__KW_MAX_LENGTH:
		if (!json_is_string(v))
			return 0;
		n = schema__utf8_len(json_string_value(v),
		    json_string_length(v));
		if (k->kw == SCHEMA__KW_MIN_LENGTH ? n >= k->num : n <= k->num)
			return 0;
		return fail(c, at, k->name, "%zu character%s, %s than %zu", n,
		    n == 1 ? "" : "s",
		    k->kw == SCHEMA__KW_MIN_LENGTH ? "fewer" : "more", k->num);
	case SCHEMA__KW_PATTERN:
		if (!json_is_string(v))
			return 0;
		return check_pattern(c, k, v, at);
	case SCHEMA__KW_MIN_ITEMS:
	case SCHEMA__KW_MAX_ITEMS:
		if (!json_is_array(v))
			return 0;
		n = json_array_size(v);
		if (k->kw == SCHEMA__KW_MIN_ITEMS ? n >= k->num : n <= k->num)
			return 0;
		return fail(c, at, k->name, "%zu item%s, %s than %zu", n,
		    n == 1 ? "" : "s",
		    k->kw == SCHEMA__KW_MIN_ITEMS ? "fewer" : "more", k->num);
	case SCHEMA__KW_UNIQUE_ITEMS:
		if (!json_is_array(v))
			return 0;
		return check_unique(c, v, at);
	case SCHEMA__KW_ALL_OF:
		for (i = 0; i < k->nsubs; i++)
			if ((r = validate(c, k->subs[i], v, at, depth + 1,
			    k->name)) != 0)
				return r;
		return 0;
	case SCHEMA__KW_ANY_OF:
	case SCHEMA__KW_ONE_OF:
		return check_of(c, k, v, at, depth);
	case SCHEMA__KW_NOT:
		r = try(c, k->sub, v, at, depth + 1, k->name);
		if (r != 0)
			return r == 1 ? 0 : r;
		return fail(c, at, "not", "valid against the schema in \"not\"");
	case SCHEMA__KW_REF:
		return validate(c, k->sub, v, at, depth + 1, k->name);
	case SCHEMA__KW__MAX:
		break;
	}
	return 0;
}

/* What a false schema says, by the keyword that applied it. */
static int
fail_false(struct vctx *c, const struct at *at, const char *via)
{
	if (strcmp(via, "properties") == 0 ||
	    strcmp(via, "additionalProperties") == 0)
		return fail(c, at, via, "property not allowed");
	if (strcmp(via, "items") == 0 || strcmp(via, "prefixItems") == 0)
		return fail(c, at, via, "item not allowed");
	return fail(c, at, via[0] != '\0' ? via : "false", "no value is "
	    "valid against the schema false");
}

static int
validate(struct vctx *c, const struct schema__node *n, const json_t *v,
    const struct at *at, unsigned depth, const char *via)
{
	size_t i;
	int r;

	if (n->boolean == 1)
		return 0;
	if (n->boolean == 0)
		return fail_false(c, at, via);
	if (depth > SCHEMA__VALIDATE_DEPTH)
		return fail(c, at, via[0] != '\0' ? via : "$ref", "nested too "
		    "deeply (over %d levels of schemas)",
		    SCHEMA__VALIDATE_DEPTH);
	for (i = 0; i < n->nchecks; i++)
		if ((r = check(c, &n->checks[i], v, at, depth)) != 0)
			return r;
	return 0;
}

/* See schema.h. */
int
schema_validate(const struct schema *s, const json_t *instance,
    struct schema_error *err)
{
	struct vctx c = { s, err, NULL };
	int r;

	if (err != NULL)
		memset(err, 0, sizeof(*err));
	if (instance == NULL)
		return fail(&c, NULL, "", "no value");
	r = validate(&c, s->root, instance, NULL, 0, "");
	pcre2_match_data_free(c.md);
	return r;
}
