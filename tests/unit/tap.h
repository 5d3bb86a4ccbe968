/*
 * tap.h - the few lines of TAP the C unit tests print, for automake's
 * tap-driver.sh: "1..N" first, then "ok n - name" or "not ok n - name".
 */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>

/* The test number; a test program is one process, so a static is enough. */
static int tap_n;

static void
tap_plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
}

static int __attribute__((format(printf, 2, 3)))
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static void __attribute__((format(printf, 1, 2)))
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

#endif
