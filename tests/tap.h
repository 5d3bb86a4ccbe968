/*
 * tests/tap.h - what the C tests share: TAP output for automake's
 * tap-driver.sh ("ok n - name", the plan "1..N" at the end), a
 * temporary directory, removal of a tree.  Header-only; each test is one
 * program.  The counter is the test program's own state, nothing else's.
 */
#ifndef BM_TESTS_TAP_H
#define BM_TESTS_TAP_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tap {
	int n;      /* tests run */
	int failed; /* of which failed */
};

static inline void __attribute__((format(printf, 3, 4)))
tap_ok(struct tap *t, int cond, const char *fmt, ...)
{
	va_list ap;

	t->n++;
	if (!cond)
		t->failed++;
	printf("%sok %d - ", cond ? "" : "not ", t->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline void __attribute__((format(printf, 1, 2)))
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Prints the plan (at the end: TAP allows it) and gives the exit status. */
static inline int
tap_done(const struct tap *t)
{
	printf("1..%d\n", t->n);
	return t->failed > 0;
}

/* A new directory under $TMPDIR (or /tmp); path gets it.  0 or -1. */
static inline int
tap_tmpdir(char *path, size_t len, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	if ((size_t)snprintf(path, len, "%s/bm-%s-XXXXXX", tmp, name) >= len)
		return -1;
	return mkdtemp(path) != NULL ? 0 : -1;
}

static inline int
tap_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Removes a tree (the test's temporary directory). */
static inline void
tap_rmtree(const char *path)
{
	(void)nftw(path, tap_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* BM_TESTS_TAP_H */
