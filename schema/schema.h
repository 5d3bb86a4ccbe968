/*
 * schema/schema.h - JSON Schema (2020-12) validation of JSON values: the
 * payloads of integration events (BM_EVENTS) and the settings page's
 * fields (BM_SETTINGS).
 *
 * A schema is compiled once (schema_compile), then any number of values
 * are checked against it (schema_validate).  Compiling refuses what this
 * library would not enforce, so a schema never passes a value its author
 * meant to refuse: the keywords are exactly
 *
 *   type properties required additionalProperties items prefixItems enum
 *   const minimum maximum exclusiveMinimum exclusiveMaximum minLength
 *   maxLength pattern minItems maxItems uniqueItems allOf anyOf oneOf not
 *   $ref $defs
 *
 * plus annotations, accepted and otherwise ignored: $schema, $id (at the
 * root only), $comment, title, description, default, examples, format,
 * deprecated, readOnly, writeOnly.  Boolean schemas (true, false) work
 * anywhere a schema does.  Any other keyword, or a malformed value of a
 * known one, is refused with the schema location as a JSON Pointer:
 *
 *   /properties/total: unknown keyword "multipleOf"
 *   /properties/name: minLength: not a non-negative integer
 *
 * Semantics, where they need saying: "integer" accepts a number with a zero
 * fractional part (1.0); numbers compare by value, exactly, so 1 == 1.0 in
 * enum, const and uniqueItems, and 2^63-1 is not 9.2233720368547758e18;
 * lengths are counted in Unicode code points; pattern is an unanchored
 * search with PCRE2 in UTF mode, made ECMA-262-like ($ only at the very
 * end, \uXXXX escapes, ASCII \d and \w); $ref is "#" or a local JSON
 * Pointer ("#/$defs/name", escaped with ~0, ~1 and %XX) that lands on a
 * subschema of the same document; other keywords beside $ref apply too
 * (2020-12, unlike draft 7).  A $ref cycle that never moves into the value
 * ({"$ref": "#"} at the root) is refused, and so are schemas nested deeper
 * than SCHEMA_DEPTH_MAX.
 *
 * Errors never quote the value's strings (a string may be a password);
 * they give numbers, lengths, types and positions.  A missing required
 * property is reported where it would be, so that the pointer names the
 * field:
 *
 *   /items/2/price: minimum: 3 is less than 5
 *   /customer/email: required: missing property "email"
 *
 * This folder is pure: no I/O, no global mutable state, nothing printed.
 * A compiled schema is read-only; any number of threads may validate with
 * it at once.
 *
 * Ownership, as everywhere in botmatic-fcgi: "new" values are the caller's
 * to free with the function named; "borrowed" ones stay owned by the callee.
 */
#ifndef BM_SCHEMA_H
#define BM_SCHEMA_H

#include <jansson.h>

/* Subschemas nested deeper than this are refused at compile time; a value
 * whose validation goes deeper than SCHEMA_DEPTH_MAX * 4 applications
 * (through $ref recursion) is invalid ("nested too deeply"). */
#define SCHEMA_DEPTH_MAX 128

/* Where and why a schema was refused, or a value was found invalid.
 * Every field is NUL-terminated and bounded; a pointer too long for its
 * field ends in "...". */
struct schema_error {
	/* JSON Pointer (RFC 6901, ~0 and ~1 escaped): the schema location
	 * for compile errors, the value's location for validation errors;
	 * "" is the root. */
	char pointer[512];
	/* The keyword that refused ("minimum", "multipleOf" when unknown),
	 * "" when none (the schema is not an object or boolean). */
	char keyword[64];
	/* One line: "<pointer>: <keyword>: <reason>", the pointer written
	 * "(root)" when empty. */
	char text[1024];
};

struct schema;

/*
 * Compiles doc (borrowed; the schema keeps its own deep copy).  On success
 * stores a new schema in *out (free with schema_free()) and returns 0.
 * Returns -1, *out untouched, with the reason in *err (err may be NULL)
 * when doc is not a valid schema in the sense above, or memory ran out.
 */
int schema_compile(const json_t *doc, struct schema **out,
    struct schema_error *err);

/*
 * Checks instance (borrowed) against s.  Returns 0 when it is valid, 1
 * when it is not, with the first error in schema order in *err (err may
 * be NULL, which also saves the formatting), or -1 when memory ran out
 * (said in *err).  Allocates nothing unless a pattern is matched (one
 * PCRE2 match block per call) or uniqueItems meets more than 16 items (an
 * index of them).
 */
int schema_validate(const struct schema *s, const json_t *instance,
    struct schema_error *err);

/* The schema document s was compiled from; borrowed, valid until
 * schema_free(s).  The settings page reads titles and defaults here. */
const json_t *schema_json(const struct schema *s);

/* Frees s.  NULL is allowed. */
void schema_free(struct schema *s);

#endif /* BM_SCHEMA_H */
