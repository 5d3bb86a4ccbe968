/*
 * mapping/mapping.h - field mapping between a Botmatic contact and the
 * external service's record (what @botmatic/js-mapper did).
 *
 * A mappings file is a JSON array with one entry per field:
 *
 *     {"id": true,
 *      "botmatic": {"name": "id"},
 *      "ext": {"name": "id_candidate", "transform": "int"}}
 *
 * map_apply() walks the entries in order exactly as js-mapper's mapTo() did:
 * a field whose source value is absent, "" or null is skipped; the value goes
 * through the default conversion of the target side, then through the target
 * side's transform (if any) and the default conversion again, and once more
 * through the default conversion when stored.  Toward Botmatic the default
 * conversion turns objects, arrays and null into compact JSON text (as
 * JavaScript's JSON.stringify); toward ext it turns a string that parses as
 * JSON into that value.
 *
 * Where this differs from JavaScript, on purpose: integers are kept exactly
 * up to 64 bits (JavaScript rounds past 2^53; jansson refuses a record
 * holding a wider integer, and text holding one is left as text by the
 * default conversion); object keys keep their order even when they look
 * like array indices (JavaScript would move "1", "2" first); lower and
 * upper use one-to-one case mappings of Latin, Greek and Cyrillic (plus
 * sharp s to "SS"), not Unicode's full tables; a transform that cannot
 * convert a value leaves the field out (or fails a "strict" entry) where
 * js-mapper's functions would have thrown or produced NaN.
 *
 * This folder is pure: it reads the mappings file when asked to, and
 * otherwise does no I/O, keeps no global mutable state and prints nothing.
 * Every function is safe to call from several threads on distinct objects; a
 * loaded mapping is read-only and may be shared.
 *
 * Ownership, as everywhere in botmatic-fcgi: "new" values are the caller's
 * to free with the function named; "borrowed" ones stay owned by the callee.
 */
#ifndef BM_MAPPING_H
#define BM_MAPPING_H

#include <stddef.h>

#include <jansson.h>

/*
 * A transform: in and params are borrowed (params is the transform's object
 * in the mappings file, or NULL when it was named by a bare string).  On
 * success store a new reference in *out and return 0; when the value cannot
 * be converted, write a short reason into err (errlen bytes, NUL-terminated)
 * and return -1.  Must stay identical to bm_transform_fn in
 * app/botmatic/module.h.
 */
typedef int (*map_transform_fn)(const json_t *in, const json_t *params,
    json_t **out, char *err, size_t errlen);

/* Transform names a module registered; the built-ins are always known. */
struct map_registry;

/*
 * A new, empty registry (the built-in transforms need no registration).
 * Free it with map_registry_free(), after every mapping loaded with it.
 * Returns NULL when out of memory.
 */
struct map_registry *map_registry_new(void);

/*
 * Makes transform fn known as name (copied) to later loads.  A name is 1 to
 * 64 characters of [A-Za-z0-9_.:-]; it may not be a built-in's name ("int",
 * "number", "string", "boolean", "lower", "upper", "trim", "date", "map") or
 * one already registered.  Returns 0, or -1 with the reason in err.
 */
int map_registry_add(struct map_registry *reg, const char *name,
    map_transform_fn fn, char *err, size_t errlen);

/* Frees reg and the names it copied.  NULL is allowed. */
void map_registry_free(struct map_registry *reg);

/* Why a load failed: one line, naming the file and, where there is one,
 * the entry's index (from 0) and the field, e.g.
 *   mappings.json: entry 3: ext.transform: unknown transform "foo"
 *   mappings.json:4:12: invalid JSON: ... */
struct map_error {
	char text[1024];   /* NUL-terminated message */
};

struct mapping;

/*
 * Reads and validates the mappings file at path.  reg may be NULL (built-in
 * transforms only); when given it must outlive the mapping.  Returns a new
 * mapping (free with map_free()), or NULL with the reason in *err (err may
 * be NULL).
 */
struct mapping *map_load_file(const char *path,
    const struct map_registry *reg, struct map_error *err);

/*
 * As map_load_file(), from entries (borrowed; the mapping keeps its own deep
 * copy).  name stands for the file in messages (NULL: "mappings").
 */
struct mapping *map_load_json(const json_t *entries, const char *name,
    const struct map_registry *reg, struct map_error *err);

/* Frees m.  NULL is allowed. */
void map_free(struct mapping *m);

/* The two sides of every entry. */
enum map_side {
	MAP_BOTMATIC,      /* the Botmatic contact */
	MAP_EXT,           /* the external service's record */
	MAP_SIDE__MAX
};

/*
 * Called once for each field a non-strict transform could not convert (the
 * field is left out of the result).  field is the name on the target side
 * and reason a short text; both are borrowed for the call only.
 */
typedef void (*map_warn_fn)(void *arg, const char *field, const char *reason);

/*
 * Maps record (borrowed, a JSON object) from side `from` to side `to`.  On
 * success stores a new object in *out (the caller decrefs it) and returns 0.
 * Returns -1, with the reason in err (errlen bytes, NUL-terminated) and *out
 * untouched, when the record is not an object, a value it maps is not valid
 * UTF-8 or is nested too deeply, a "strict" entry's transform failed, or
 * memory ran out.  warn may be NULL.
 */
int map_apply(const struct mapping *m, const json_t *record,
    enum map_side from, enum map_side to, json_t **out,
    map_warn_fn warn, void *warn_arg, char *err, size_t errlen);

/* The name of the id entry on that side (on MAP_EXT: the ext id key).
 * Borrowed, valid until map_free(). */
const char *map_id_name(const struct mapping *m, enum map_side side);

/* The number of entries. */
size_t map_count(const struct mapping *m);

/* Entry i's name on that side; borrowed, valid until map_free(). */
const char *map_entry_name(const struct mapping *m, size_t i,
    enum map_side side);

/* Entry i's botmatic.type ("text", "date" or "number"; "text" when the
 * file gives none).  Borrowed, valid until map_free(). */
const char *map_entry_type(const struct mapping *m, size_t i);

/* 1 when entry i is the id entry, else 0. */
int map_entry_is_id(const struct mapping *m, size_t i);

/* Parses "ext" or "botmatic" into *out.  Returns 0, or -1 for anything
 * else. */
int map_side_parse(const char *s, enum map_side *out);

/* "botmatic" or "ext"; borrowed, static. */
const char *map_side_name(enum map_side side);

/*
 * The text JavaScript's JSON.stringify(v) gives: compact, keys in the
 * object's order, "/" and non-ASCII characters left alone, numbers as
 * JavaScript prints them (shortest round trip, 1e+21, 1.5e-7).  Integers
 * are printed exactly, even beyond 2^53 where JavaScript would round.
 * Returns a new string (free()), or NULL when v holds invalid UTF-8, is
 * nested deeper than 4096 levels, or memory ran out.
 */
char *map_stringify(const json_t *v);

/*
 * The default conversion toward side `to` (see above), on v (borrowed).
 * Returns a new reference, or NULL when memory ran out or v cannot be
 * serialised (invalid UTF-8, too deep).
 */
json_t *map_default(enum map_side to, const json_t *v);

#endif /* BM_MAPPING_H */
