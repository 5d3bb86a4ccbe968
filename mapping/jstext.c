/*
 * mapping/jstext.c - the text side of JavaScript that js-mapper relied on:
 * JSON.stringify, String(), truthiness, trim() white space and case
 * conversion, over UTF-8 that is checked rather than trusted.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/mapping_private.h"

void
map__buf_add(struct map__buf *b, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1) {
			if (cap > ((size_t)-1) / 2) {
				b->oom = 1;
				return;
			}
			cap *= 2;
		}
		if ((p = realloc(b->p, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
map__buf_addc(struct map__buf *b, char c)
{
	map__buf_add(b, &c, 1);
}

void
map__buf_adds(struct map__buf *b, const char *s)
{
	map__buf_add(b, s, strlen(s));
}

void
map__buf_free(struct map__buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

int
map__utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xC2 && s[i] <= 0xDF) {
			n = 1;
			cp = s[i] & 0x1F;
		} else if (s[i] >= 0xE0 && s[i] <= 0xEF) {
			n = 2;
			cp = s[i] & 0x0F;
		} else if (s[i] >= 0xF0 && s[i] <= 0xF4) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		/* Overlong forms, UTF-16 surrogates and the range's end. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return 0;
		i += n + 1;
	}
	return 1;
}

size_t
map__utf8_decode(const char *str, size_t len, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n, k;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		n = 1;
		c = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		n = 2;
		c = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		n = 3;
		c = s[0] & 0x07;
	} else
		goto bad;
	if (len - 1 < n)
		goto bad;
	for (k = 1; k <= n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			goto bad;
		c = (c << 6) | (s[k] & 0x3F);
	}
	*cp = c;
	return n + 1;
bad:
	*cp = 0xFFFD;
	return 1;
}

int
map__js_space(uint32_t cp)
{
	switch (cp) {
	case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
	case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
	case 0x205F: case 0x3000: case 0xFEFF:
		return 1;
	default:
		return cp >= 0x2000 && cp <= 0x200A;
	}
}

void
map__js_trim(const char **sp, size_t *lenp)
{
	const char *s = *sp;
	size_t len = *lenp, n, back;
	uint32_t cp;

	while (len > 0) {
		n = map__utf8_decode(s, len, &cp);
		if (!map__js_space(cp))
			break;
		s += n;
		len -= n;
	}
	while (len > 0) {
		/* Step back over continuation bytes to a character's start. */
		back = 1;
		while (back < len && back < 4 &&
		    ((unsigned char)s[len - back] & 0xC0) == 0x80)
			back++;
		n = map__utf8_decode(s + len - back, back, &cp);
		if (n != back || !map__js_space(cp))
			break;
		len -= back;
	}
	*sp = s;
	*lenp = len;
}

static void
add_int(struct map__buf *b, json_int_t i)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, i);
	map__buf_adds(b, tmp);
}

static void
add_real(struct map__buf *b, double d)
{
	char tmp[40];

	map__num_format(d, tmp, sizeof(tmp));
	map__buf_adds(b, tmp);
}

/* JSON.stringify's string quoting: the short escapes, \u00xx in lower case
 * for other control characters, everything else as is. */
static int
add_quoted(struct map__buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char esc[7];
	size_t i, run = 0;
	unsigned char c;

	if (!map__utf8_valid(s, len))
		return -1;
	map__buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		map__buf_add(b, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': map__buf_add(b, "\\\"", 2); break;
		case '\\': map__buf_add(b, "\\\\", 2); break;
		case '\b': map__buf_add(b, "\\b", 2); break;
		case '\f': map__buf_add(b, "\\f", 2); break;
		case '\n': map__buf_add(b, "\\n", 2); break;
		case '\r': map__buf_add(b, "\\r", 2); break;
		case '\t': map__buf_add(b, "\\t", 2); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			map__buf_add(b, esc, 6);
			break;
		}
	}
	map__buf_add(b, s + run, len - run);
	map__buf_addc(b, '"');
	return 0;
}

static int
stringify(const json_t *v, struct map__buf *b, int depth)
{
	const char *key;
	json_t *item;
	size_t i;
	int first = 1;

	if (depth > MAP__MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		map__buf_addc(b, '{');
		/* Cast: jansson's iteration API takes a non-const object but
		 * does not change it. */
		json_object_foreach((json_t *)v, key, item) {
			if (!first)
				map__buf_addc(b, ',');
			first = 0;
			if (add_quoted(b, key, strlen(key)) == -1)
				return -1;
			map__buf_addc(b, ':');
			if (stringify(item, b, depth + 1) == -1)
				return -1;
		}
		map__buf_addc(b, '}');
		return 0;
	case JSON_ARRAY:
		map__buf_addc(b, '[');
		for (i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				map__buf_addc(b, ',');
			if (stringify(json_array_get(v, i), b, depth + 1) == -1)
				return -1;
		}
		map__buf_addc(b, ']');
		return 0;
	case JSON_STRING:
		return add_quoted(b, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		add_int(b, json_integer_value(v));
		return 0;
	case JSON_REAL:
		add_real(b, json_real_value(v));
		return 0;
	case JSON_TRUE:
		map__buf_add(b, "true", 4);
		return 0;
	case JSON_FALSE:
		map__buf_add(b, "false", 5);
		return 0;
	case JSON_NULL:
	default:
		map__buf_add(b, "null", 4);
		return 0;
	}
}

int
map__stringify(const json_t *v, struct map__buf *b)
{
	return stringify(v, b, 0);
}

/*
 * Returns JSON.stringify(v) as a new string; see mapping.h.
 */
char *
map_stringify(const json_t *v)
{
	struct map__buf b = { 0 };

	if (v == NULL || map__stringify(v, &b) == -1 || b.oom) {
		map__buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* Array.prototype.join(","): null elements print as nothing. */
static int
js_string(const json_t *v, struct map__buf *b, int depth)
{
	size_t i;
	json_t *item;

	if (depth > MAP__MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (!map__utf8_valid(json_string_value(v), json_string_length(v)))
			return -1;
		map__buf_add(b, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_OBJECT:
		map__buf_adds(b, "[object Object]");
		return 0;
	case JSON_ARRAY:
		for (i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				map__buf_addc(b, ',');
			item = json_array_get(v, i);
			if (json_is_null(item))
				continue;
			if (js_string(item, b, depth + 1) == -1)
				return -1;
		}
		return 0;
	default:
		return stringify(v, b, depth);
	}
}

int
map__js_string(const json_t *v, struct map__buf *b)
{
	return js_string(v, b, 0);
}

static int
json_valid(const json_t *v, int depth)
{
	const char *key;
	json_t *item;
	size_t i;

	if (depth > MAP__MAX_DEPTH)
		return 0;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, item) {
			if (!map__utf8_valid(key, strlen(key)) ||
			    !json_valid(item, depth + 1))
				return 0;
		}
		return 1;
	case JSON_ARRAY:
		for (i = 0; i < json_array_size(v); i++)
			if (!json_valid(json_array_get(v, i), depth + 1))
				return 0;
		return 1;
	case JSON_STRING:
		return map__utf8_valid(json_string_value(v),
		    json_string_length(v));
	default:
		return 1;
	}
}

int
map__json_valid(const json_t *v)
{
	return json_valid(v, 0);
}

void
map__describe(const json_t *v, char *buf, size_t n)
{
	struct map__buf b = { 0 };
	size_t max, cut;

	if (n == 0)
		return;
	if (map__stringify(v, &b) == -1 || b.oom) {
		snprintf(buf, n, "(unprintable value)");
		goto out;
	}
	max = n > 48 ? 40 : (n > 4 ? n - 4 : 0);
	if (b.len <= max || n <= 4) {
		snprintf(buf, n, "%s", b.p);
		goto out;
	}
	/* Cut on a character boundary, never inside a UTF-8 sequence. */
	cut = max;
	while (cut > 0 && ((unsigned char)b.p[cut] & 0xC0) == 0x80)
		cut--;
	snprintf(buf, n, "%.*s...", (int)cut, b.p);
out:
	map__buf_free(&b);
}

/* Simple (one to one) case mappings of the scripts Botmatic's users write
 * in; the Unicode tables would be a hundred times larger for characters no
 * contact field holds. */
static uint32_t
to_lower(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 32 : c;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 32;
	if (c == 0x130)
		return 'i';
	if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177) ||
	    (c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
		return (c % 2 == 0) ? c + 1 : c;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return (c % 2 == 1) ? c + 1 : c;
	if (c == 0x178)
		return 0xFF;
	if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
		return c + 32;
	if (c == 0x386)
		return 0x3AC;
	if (c >= 0x388 && c <= 0x38A)
		return c + 37;
	if (c == 0x38C)
		return 0x3CC;
	if (c == 0x38E || c == 0x38F)
		return c + 63;
	if (c >= 0x410 && c <= 0x42F)
		return c + 32;
	if (c >= 0x400 && c <= 0x40F)
		return c + 80;
	return c;
}

static uint32_t
to_upper(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') ? c - 32 : c;
	if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
		return c - 32;
	if (c == 0xFF)
		return 0x178;
	if (c == 0xB5)
		return 0x39C;
	if (c == 0x131)
		return 'I';
	if (c == 0x17F)
		return 'S';
	if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177) ||
	    (c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
		return (c % 2 == 1) ? c - 1 : c;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return (c % 2 == 0) ? c - 1 : c;
	if (c == 0x3C2)
		return 0x3A3;
	if (c >= 0x3B1 && c <= 0x3C9)
		return c - 32;
	if (c == 0x3AC)
		return 0x386;
	if (c >= 0x3AD && c <= 0x3AF)
		return c - 37;
	if (c == 0x3CC)
		return 0x38C;
	if (c == 0x3CD || c == 0x3CE)
		return c - 63;
	if (c >= 0x430 && c <= 0x44F)
		return c - 32;
	if (c >= 0x450 && c <= 0x45F)
		return c - 80;
	return c;
}

static void
add_cp(struct map__buf *b, uint32_t c)
{
	char u[4];

	if (c < 0x80) {
		u[0] = (char)c;
		map__buf_add(b, u, 1);
	} else if (c < 0x800) {
		u[0] = (char)(0xC0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3F));
		map__buf_add(b, u, 2);
	} else if (c < 0x10000) {
		u[0] = (char)(0xE0 | (c >> 12));
		u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		u[2] = (char)(0x80 | (c & 0x3F));
		map__buf_add(b, u, 3);
	} else {
		u[0] = (char)(0xF0 | (c >> 18));
		u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
		u[3] = (char)(0x80 | (c & 0x3F));
		map__buf_add(b, u, 4);
	}
}

void
map__case(const char *s, size_t len, int upper, struct map__buf *b)
{
	size_t n;
	uint32_t cp;

	while (len > 0) {
		n = map__utf8_decode(s, len, &cp);
		if (upper && cp == 0xDF)
			map__buf_add(b, "SS", 2);
		else if (n == 1 && cp == 0xFFFD)
			map__buf_add(b, s, 1);   /* not UTF-8: copy the byte */
		else
			add_cp(b, upper ? to_upper(cp) : to_lower(cp));
		s += n;
		len -= n;
	}
}

int
map__truthy(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;   /* NaN cannot be stored */
	default:
		return 1;
	}
}
