/*
 * settings/settings_int.h - what the files of settings/ share: a growing
 * buffer for the page, with HTML escaping.  No other part includes it.
 */
#ifndef APP_SETTINGS_INT_H
#define APP_SETTINGS_INT_H

#include <stddef.h>

/* Grows as text is added; failed stays set once memory ran out. */
struct settings_buf {
	char *p;        /* malloc()ed, NUL-terminated; NULL while empty */
	size_t len, cap;
	int failed;
};

/* Appends s as it is (markup of our own). */
void settings__buf_add(struct settings_buf *b, const char *s);

/* Appends s escaped for HTML text and quoted attributes: & < > " '. */
void settings__buf_esc(struct settings_buf *b, const char *s);

#endif
