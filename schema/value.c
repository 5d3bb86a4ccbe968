/*
 * schema/value.c - what validation needs of JSON values: types, exact
 * number comparison, deep equality and hashing (1 == 1.0), UTF-8 lengths,
 * and the text of errors (JSON Pointers, numbers, short descriptions).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_private.h"

/* 2^63 as a double: the first double beyond json_int_t. */
#define TWO63 9223372036854775808.0

static const char *const type_names[] = { "null", "boolean", "object",
    "array", "number", "string", "integer" };

/* 1 when d has no fractional part and fits json_int_t, with it in *i. */
static int
real_as_int(double d, json_int_t *i)
{
	if (!isfinite(d) || d != floor(d) || d < -TWO63 || d >= TWO63)
		return 0;
	*i = (json_int_t)d;
	return 1;
}

/* See schema_private.h. */
unsigned
schema__type_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL: return SCHEMA__T_NULL;
	case JSON_TRUE:
	case JSON_FALSE: return SCHEMA__T_BOOLEAN;
	case JSON_OBJECT: return SCHEMA__T_OBJECT;
	case JSON_ARRAY: return SCHEMA__T_ARRAY;
	case JSON_STRING: return SCHEMA__T_STRING;
	case JSON_INTEGER: return SCHEMA__T_INTEGER;
	case JSON_REAL:
		/* 1.0 is an integer, and so is 1e300. */
		if (isfinite(json_real_value(v)) &&
		    json_real_value(v) == floor(json_real_value(v)))
			return SCHEMA__T_INTEGER;
		return SCHEMA__T_NUMBER;
	}
	return 0;
}

/* See schema_private.h. */
const char *
schema__type_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (bit == 1u << i)
			return type_names[i];
	return "?";
}

/* Compares an integer with a double exactly: converting the integer to
 * double would round beyond 2^53. */
static int
cmp_int_real(json_int_t i, double d)
{
	double t;
	json_int_t ti;

	if (d >= TWO63)
		return -1;
	if (d < -TWO63)
		return 1;
	t = trunc(d);
	ti = (json_int_t)t;
	if (i != ti)
		return i < ti ? -1 : 1;
	if (d > t)
		return -1;
	return d < t ? 1 : 0;
}

/* See schema_private.h. */
int
schema__num_cmp(const json_t *a, const json_t *b)
{
	double x, y;

	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t i = json_integer_value(a), j = json_integer_value(b);

		return i < j ? -1 : i > j;
	}
	if (json_is_integer(a))
		return cmp_int_real(json_integer_value(a), json_real_value(b));
	if (json_is_integer(b))
		return -cmp_int_real(json_integer_value(b), json_real_value(a));
	x = json_real_value(a);
	y = json_real_value(b);
	return x < y ? -1 : x > y;
}

/* See schema_private.h. */
int
schema__equal(const json_t *a, const json_t *b, unsigned depth)
{
	const char *key;
	json_t *va;
	size_t i, n;
	int r;

	if (depth == 0)
		return -1;
	if (json_is_number(a) && json_is_number(b))
		return schema__num_cmp(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		    memcmp(json_string_value(a), json_string_value(b),
		    json_string_length(a)) == 0;
	case JSON_ARRAY:
		if ((n = json_array_size(a)) != json_array_size(b))
			return 0;
		for (i = 0; i < n; i++) {
			r = schema__equal(json_array_get(a, i),
			    json_array_get(b, i), depth - 1);
			if (r != 1)
				return r;
		}
		return 1;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)a, key, va) {
			const json_t *vb = json_object_getn(b, key,
			    SCHEMA__KEYLEN(key));

			if (vb == NULL)
				return 0;
			if ((r = schema__equal(va, vb, depth - 1)) != 1)
				return r;
		}
		return 1;
	default:
		return 1;   /* null, true, false: the type says it all */
	}
}

/* FNV-1a over bytes, continuing from h. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A final mix, so that object members can be combined by addition. */
static uint64_t
mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/* See schema_private.h. */
int
schema__hash(const json_t *v, unsigned depth, uint64_t *out)
{
	uint64_t h = 0xcbf29ce484222325ULL, sub, sum;
	unsigned char t = (unsigned char)json_typeof(v);
	const char *key;
	json_t *m;
	json_int_t i;
	double d;
	size_t k;

	if (depth == 0)
		return -1;
	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL:
		/* Equal numbers hash alike: integral reals as integers. */
		t = JSON_INTEGER;
		h = fnv(h, &t, 1);
		if (json_is_integer(v)) {
			i = json_integer_value(v);
			h = fnv(h, &i, sizeof(i));
		} else if (real_as_int(json_real_value(v), &i)) {
			h = fnv(h, &i, sizeof(i));
		} else {
			d = json_real_value(v);
			h = fnv(h, &d, sizeof(d));
		}
		break;
	case JSON_STRING:
		h = fnv(h, &t, 1);
		h = fnv(h, json_string_value(v), json_string_length(v));
		break;
	case JSON_ARRAY:
		h = fnv(h, &t, 1);
		for (k = 0; k < json_array_size(v); k++) {
			if (schema__hash(json_array_get(v, k), depth - 1,
			    &sub) == -1)
				return -1;
			h = fnv(h, &sub, sizeof(sub));
		}
		break;
	case JSON_OBJECT:
		/* Members in any order: a sum of their hashes. */
		h = fnv(h, &t, 1);
		sum = 0;
		json_object_foreach((json_t *)v, key, m) {
			if (schema__hash(m, depth - 1, &sub) == -1)
				return -1;
			sum += mix(fnv(sub, key, SCHEMA__KEYLEN(key)));
		}
		h = fnv(h, &sum, sizeof(sum));
		break;
	default:
		h = fnv(h, &t, 1);
		break;
	}
	*out = mix(h);
	return 0;
}

/* See schema_private.h. */
size_t
schema__utf8_len(const char *s, size_t len)
{
	size_t i, n = 0;

	/* jansson holds valid UTF-8: count all but continuation bytes. */
	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* See schema_private.h. */
void
schema__num_text(const json_t *v, char *buf, size_t len)
{
	double d;
	int prec;

	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return;
	}
	d = json_real_value(v);
	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
	snprintf(buf, len, "%.17g", d);
}

/* Length of the longest prefix of s[0..n) that does not split a UTF-8
 * sequence. */
static size_t
utf8_cut(const char *s, size_t n)
{
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* See schema_private.h. */
char *
schema__describe(const json_t *v, size_t max)
{
	char *s;
	size_t n;

	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL || max < 4 || (n = strlen(s)) <= max)
		return s;
	n = utf8_cut(s, max - 3);
	memcpy(s + n, "...", 4);
	return s;
}

/* Length of s[0..n) without a multi-byte sequence left incomplete at its
 * end (when s is being written and s[n] is not yet). */
static size_t
utf8_trim_partial(const char *s, size_t n)
{
	size_t k = n, need;
	unsigned char lead;

	while (k > 0 && ((unsigned char)s[k - 1] & 0xc0) == 0x80)
		k--;
	if (k == 0 || (lead = (unsigned char)s[k - 1]) < 0xc0)
		return n;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	return n - (k - 1) < need ? k - 1 : n;
}

/* See schema_private.h. */
void
schema__ptr_add(char *buf, size_t len, const char *tok, size_t toklen)
{
	size_t n = strlen(buf), i;
	const char *esc;
	size_t elen;

	if (len < 5 || (n >= 3 && strcmp(buf + n - 3, "...") == 0))
		return;
	/* Room is kept for "..." at every step. */
	if (n + 1 + 3 >= len)
		goto full;
	buf[n++] = '/';
	for (i = 0; i < toklen; i++) {
		char c[2] = { tok[i], '\0' };

		/* A NUL (possible in a key) would end the text: spelt out. */
		esc = tok[i] == '~' ? "~0" : tok[i] == '/' ? "~1" :
		    tok[i] == '\0' ? "\\u0000" : c;
		elen = strlen(esc);
		if (n + elen + 3 >= len) {
			n = utf8_trim_partial(buf, n);
			buf[n] = '\0';
			goto full;
		}
		memcpy(buf + n, esc, elen);
		n += elen;
	}
	buf[n] = '\0';
	return;
full:
	n = strlen(buf);
	memcpy(buf + n, "...", 4);
}

static void
compose(struct schema_error *err)
{
	snprintf(err->text, sizeof(err->text), "%s: %s%s",
	    err->pointer[0] != '\0' ? err->pointer : "(root)",
	    err->keyword, err->keyword[0] != '\0' ? ": " : "");
}

/* See schema_private.h. */
void
schema__err(struct schema_error *err, const char *pointer,
    const char *keyword, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err == NULL)
		return;
	n = strlen(pointer);
	if (n < sizeof(err->pointer))
		memcpy(err->pointer, pointer, n + 1);
	else {
		n = utf8_cut(pointer, sizeof(err->pointer) - 4);
		memcpy(err->pointer, pointer, n);
		memcpy(err->pointer + n, "...", 4);
	}
	snprintf(err->keyword, sizeof(err->keyword), "%s", keyword);
	compose(err);
	n = strlen(err->text);
	va_start(ap, fmt);
	vsnprintf(err->text + n, sizeof(err->text) - n, fmt, ap);
	va_end(ap);
}

/* See schema_private.h. */
void
schema__err_wrap(struct schema_error *err, const char *pointer,
    const char *keyword, const char *prefix)
{
	char inner[sizeof(err->text)];

	if (err == NULL)
		return;
	memcpy(inner, err->text, sizeof(inner));
	schema__err(err, pointer, keyword, "%s%s", prefix, inner);
}
