/*
 * schema/schema_private.h - what the files of schema/ share.  No other
 * folder includes this header.
 */
#ifndef BM_SCHEMA_PRIVATE_H
#define BM_SCHEMA_PRIVATE_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <pcre2.h>

#include "schema/schema.h"

/* A key's length in bytes: since jansson 2.14 a key may hold "\u0000",
 * and a key cut at its NUL would be taken for another. */
#if JANSSON_VERSION_HEX >= 0x020e00
#define SCHEMA__KEYLEN(key) \
	json_object_iter_key_len(json_object_key_to_iter(key))
#else
#define SCHEMA__KEYLEN(key) strlen(key)
#define json_object_getn(o, k, n) json_object_get((o), (k))
#endif

/* Validation may go deeper than the schema's nesting only through $ref
 * recursion, one level of the value at a time. */
#define SCHEMA__VALIDATE_DEPTH (SCHEMA_DEPTH_MAX * 4)

/* Up to this many items uniqueItems compares pairwise, allocating
 * nothing; beyond, it sorts hashes. */
#define SCHEMA__UNIQUE_PAIRWISE 16

/* Bounds on a pattern's work, so that a catastrophic pattern fails one
 * value instead of holding a responder. */
#define SCHEMA__MATCH_LIMIT 1000000
#define SCHEMA__HEAP_LIMIT_KIB 8192

/* The JSON types, as bits of a type check. */
enum schema__type {
	SCHEMA__T_NULL = 1 << 0,
	SCHEMA__T_BOOLEAN = 1 << 1,
	SCHEMA__T_OBJECT = 1 << 2,
	SCHEMA__T_ARRAY = 1 << 3,
	SCHEMA__T_NUMBER = 1 << 4,
	SCHEMA__T_STRING = 1 << 5,
	SCHEMA__T_INTEGER = 1 << 6,
};

/* The keywords that check something, in the order of the table in
 * compile.c. */
enum schema__kw {
	SCHEMA__KW_TYPE,
	SCHEMA__KW_PROPERTIES,
	SCHEMA__KW_REQUIRED,
	SCHEMA__KW_ADDITIONAL_PROPERTIES,
	SCHEMA__KW_ITEMS,
	SCHEMA__KW_PREFIX_ITEMS,
	SCHEMA__KW_ENUM,
	SCHEMA__KW_CONST,
	SCHEMA__KW_MINIMUM,
	SCHEMA__KW_MAXIMUM,
	SCHEMA__KW_EXCLUSIVE_MINIMUM,
	SCHEMA__KW_EXCLUSIVE_MAXIMUM,
	SCHEMA__KW_MIN_LENGTH,
	SCHEMA__KW_MAX_LENGTH,
	SCHEMA__KW_PATTERN,
	SCHEMA__KW_MIN_ITEMS,
	SCHEMA__KW_MAX_ITEMS,
	SCHEMA__KW_UNIQUE_ITEMS,
	SCHEMA__KW_ALL_OF,
	SCHEMA__KW_ANY_OF,
	SCHEMA__KW_ONE_OF,
	SCHEMA__KW_NOT,
	SCHEMA__KW_REF,
	SCHEMA__KW__MAX
};

struct schema__node;

/* One keyword of a schema object, compiled.  Fields unused by a keyword
 * stay zero. */
struct schema__check {
	enum schema__kw kw;
	const char *name;          /* the keyword; static */
	unsigned types;            /* type: enum schema__type bits */
	const json_t *value;       /* borrowed from the schema's copy: the
	                            * enum array, const value, bound, the
	                            * properties object, the required array */
	size_t num;                /* min/maxLength, min/maxItems; items:
	                            * how many prefixItems come first */
	struct schema__node **subs;   /* owned array (nodes owned by the
	                               * schema): properties (in the order of
	                               * value's keys), prefixItems, allOf... */
	const char **names;        /* properties: the names, borrowed */
	size_t nsubs;
	struct schema__node *sub;  /* additionalProperties, items, not, the
	                            * $ref target; owned by the schema */
	const json_t *props;       /* additionalProperties: the sibling
	                            * properties object, or NULL */
	pcre2_code *re;            /* pattern; owned */
	char *desc;                /* new: the value as text for messages
	                            * (enum, const, pattern, $ref) */
};

/* A compiled schema: a boolean schema or an object's checks in the order
 * the schema gives its keywords (so errors come in schema order). */
struct schema__node {
	char *ptr;                 /* owned: its JSON Pointer in the document */
	int boolean;               /* -1: an object; else its value */
	struct schema__check *checks;  /* owned array of nchecks */
	size_t nchecks;
	int mark;                  /* cycle search: 0 new, 1 open, 2 done */
};

struct schema {
	json_t *doc;                    /* owned copy of the document */
	struct schema__node *root;      /* one of nodes */
	struct schema__node **nodes;    /* owned array of n owned nodes */
	size_t n;
	size_t cap;
	json_t *index;                  /* owned: pointer -> node number */
	pcre2_match_context *mctx;      /* owned; NULL without patterns */
};

/* --- value.c: JSON values, text, errors -------------------------------- */

/* The type bit of v: SCHEMA__T_INTEGER for integers and integral reals,
 * SCHEMA__T_NUMBER for other reals. */
unsigned schema__type_of(const json_t *v);

/* "integer", "string"...: the name of one type bit; static. */
const char *schema__type_name(unsigned bit);

/* Compares two numbers exactly (integers and reals mixed): -1, 0 or 1. */
int schema__num_cmp(const json_t *a, const json_t *b);

/* Deep equality, numbers by value.  Returns 1, 0, or -1 when nested
 * deeper than depth levels. */
int schema__equal(const json_t *a, const json_t *b, unsigned depth);

/* A hash agreeing with schema__equal.  Returns 0, or -1 when nested deeper
 * than depth levels. */
int schema__hash(const json_t *v, unsigned depth, uint64_t *out);

/* The number of code points in the UTF-8 string s[0..len). */
size_t schema__utf8_len(const char *s, size_t len);

/* Writes number v into buf (shortest text that reads back the same). */
void schema__num_text(const json_t *v, char *buf, size_t len);

/* A new compact JSON text of v cut to at most max bytes (ending in "...")
 * for messages, or NULL when memory ran out. */
char *schema__describe(const json_t *v, size_t max);

/* Appends one reference token, escaped (~0, ~1), to the pointer in
 * buf[0..len), keeping it NUL-terminated; a pointer too long ends in
 * "...". */
void schema__ptr_add(char *buf, size_t len, const char *tok, size_t toklen);

/* Fills err (may be NULL): pointer, keyword and the message from fmt. */
void schema__err(struct schema_error *err, const char *pointer,
    const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Puts "<pointer>: <keyword>: <prefix><err's former text>" into err,
 * the former text starting after its own pointer. */
void schema__err_wrap(struct schema_error *err, const char *pointer,
    const char *keyword, const char *prefix);

#endif /* BM_SCHEMA_PRIVATE_H */
