/*
 * mapping/mapping_private.h - what the files of mapping/ share.  No other
 * folder includes this header.
 */
#ifndef BM_MAPPING_PRIVATE_H
#define BM_MAPPING_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mapping/mapping.h"

/* Deeper values are refused rather than risk the stack: jansson's parser
 * stops at 2048 levels, so only values built in code can get there. */
#define MAP__MAX_DEPTH 4096

/* JavaScript's Date range: +-8.64e15 ms around the epoch. */
#define MAP__DATE_MAX_MS 8640000000000000LL

/* --- jstext.c: UTF-8, strings, JSON.stringify --------------------------- */

/* A growing byte buffer.  oom is set once an append failed; later appends
 * do nothing, so callers check it once at the end. */
struct map__buf {
	char *p;        /* NUL-terminated when len > 0; owned */
	size_t len;
	size_t cap;
	int oom;
};

void map__buf_add(struct map__buf *b, const char *s, size_t n);
void map__buf_addc(struct map__buf *b, char c);
void map__buf_adds(struct map__buf *b, const char *s);
void map__buf_free(struct map__buf *b);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates or code points
 * beyond U+10FFFF), else 0. */
int map__utf8_valid(const char *s, size_t len);

/* Decodes one code point of valid UTF-8 at s (len > 0) into *cp; returns
 * its length in bytes (1 for an invalid byte, decoded as U+FFFD). */
size_t map__utf8_decode(const char *s, size_t len, uint32_t *cp);

/* 1 when cp is JavaScript white space or a line terminator (what trim(),
 * Number() and parseInt() skip). */
int map__js_space(uint32_t cp);

/* Bounds of s[0..len) without JavaScript white space at either end. */
void map__js_trim(const char **s, size_t *len);

/* Appends String(v) to b.  Returns 0, or -1 when v is nested too deeply or
 * holds invalid UTF-8 (memory exhaustion shows in b->oom). */
int map__js_string(const json_t *v, struct map__buf *b);

/* Appends JSON.stringify(v) to b.  Returns 0, or -1 as map__js_string. */
int map__stringify(const json_t *v, struct map__buf *b);

/* 1 when every string and key in v is valid UTF-8 and v is at most
 * MAP__MAX_DEPTH deep, else 0. */
int map__json_valid(const json_t *v);

/* Writes a short quoted excerpt of v (JSON text, cut with "...") into buf,
 * for messages. */
void map__describe(const json_t *v, char *buf, size_t n);

/* Appends s[0..len) to b with letters converted to upper (upper = 1) or
 * lower case.  Covers Latin-1, Latin Extended-A, Greek and Cyrillic
 * one-to-one mappings plus German sharp s to "SS"; other characters are
 * copied unchanged. */
void map__case(const char *s, size_t len, int upper, struct map__buf *b);

/* JavaScript truthiness of v. */
int map__truthy(const json_t *v);

/* --- jsnum.c: JavaScript numbers ----------------------------------------- */

/* Writes Number::toString(d) into buf (at least 32 bytes): "NaN",
 * "Infinity", "1e+21", "1.5e-7", "0.1", "-0" printed as "0". */
void map__num_format(double d, char *buf, size_t n);

/* A JSON number for d: an integer when d is integral and within 2^53, else
 * a real.  Returns a new reference, or NULL when d is not finite or memory
 * ran out. */
json_t *map__number_new(double d);

/* Number(s) for s[0..len).  Stores a new JSON number in *out and returns 0;
 * returns -1 when the result would be NaN or infinite (1 on ENOMEM).  A
 * decimal integer that fits 64 bits stays exact. */
int map__str_to_number(const char *s, size_t len, json_t **out);

/* parseInt(s, 10) for s[0..len), same returns as map__str_to_number. */
int map__parse_int(const char *s, size_t len, json_t **out);

/* --- date.c: the date transform ----------------------------------------- */

enum map__date_kind {
	MAP__DATE_ISO8601,
	MAP__DATE_SQL,
	MAP__DATE_UNIX,
	MAP__DATE_UNIX_MS,
	MAP__DATE_PATTERN,
	MAP__DATE__MAX
};

struct map__date_fmt {
	enum map__date_kind kind;
	const char *pattern;     /* MAP__DATE_PATTERN; borrowed from the doc */
};

struct map__date {
	struct map__date_fmt from;
	struct map__date_fmt to;
	int tz_min;              /* offset from UTC of zone-less values */
	char tz_name[8];         /* "UTC" or "+HH:MM", for %Z */
};

/* Compiles {"from":F,"to":T,"tz":Z} (borrowed) into *d.  Returns 0, or -1
 * with the reason in err. */
int map__date_compile(const json_t *params, struct map__date *d,
    char *err, size_t errlen);

/* Converts in (borrowed) as d says.  0 with a new value in *out, or -1
 * with the reason in err. */
int map__date_apply(const struct map__date *d, const json_t *in,
    json_t **out, char *err, size_t errlen);

/* --- transform.c: compiled transforms and the registry ------------------ */

enum map__xf_kind {
	MAP__XF_FN,              /* a function: built-in or registered */
	MAP__XF_DATE,
	MAP__XF_TABLE,
	MAP__XF__MAX
};

struct map__xf {
	enum map__xf_kind kind;
	const char *name;        /* for messages; borrowed from the doc */
	map_transform_fn fn;     /* MAP__XF_FN */
	const json_t *params;    /* MAP__XF_FN: the object, or NULL; borrowed */
	int registered;          /* MAP__XF_FN: 1 for a module's function */
	struct map__date date;   /* MAP__XF_DATE */
	const json_t *table;     /* MAP__XF_TABLE: borrowed from the doc */
	const json_t *dflt;      /* MAP__XF_TABLE: or NULL; borrowed */
};

/* Compiles a transform spec (a name, an object or a list of them; borrowed,
 * it must outlive the result) into a new array *xf of *nxf elements (free
 * with free()).  Returns 0, or -1 with the reason in err. */
int map__xf_compile(const json_t *spec, const struct map_registry *reg,
    struct map__xf **xf, size_t *nxf, char *err, size_t errlen);

/* Runs the chain xf[0..n) on in (borrowed).  0 with a new value in *out,
 * or -1 with the reason in err. */
int map__xf_run(const struct map__xf *xf, size_t n, const json_t *in,
    json_t **out, char *err, size_t errlen);

#endif /* BM_MAPPING_PRIVATE_H */
