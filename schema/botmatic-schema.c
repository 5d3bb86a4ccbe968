/*
 * botmatic-schema - checks a JSON Schema, and JSON values against it, from
 * the shell, with the library the server uses.
 *
 *   botmatic-schema SCHEMA_FILE                  check the schema only
 *   botmatic-schema SCHEMA_FILE INSTANCE|-       check one JSON value
 *   botmatic-schema --lines SCHEMA_FILE [FILE|-] one value per line
 *
 * The verdict goes to the standard output: "valid", or the first error
 * ("/items/2/price: minimum: 3 is less than 5"); with --lines, one per
 * non-blank line, prefixed with "line N: ".  Exit status: 0 valid, 1 some
 * value invalid (or not JSON), 2 bad schema, usage or I/O error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "schema/schema.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 2

/* Input larger than this is refused rather than read into memory. */
#define INPUT_MAX (64UL * 1024 * 1024)

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botmatic-schema [--lines] SCHEMA_FILE [INSTANCE_FILE|-]\n"
	    "\n"
	    "Checks that SCHEMA_FILE is a JSON Schema (2020-12) that\n"
	    "botmatic-fcgi accepts, then checks the JSON value in INSTANCE_FILE\n"
	    "(- for the standard input) against it.  Prints \"valid\" or the\n"
	    "first error.\n"
	    "\n"
	    "  -l, --lines  the input holds one JSON value per line (JSON lines);\n"
	    "               one verdict per line, as \"line N: ...\"\n"
	    "  -h, --help   show this help\n"
	    "\n"
	    "Exit status: 0 valid, 1 a value is invalid or not JSON, 2 bad\n"
	    "schema, usage or I/O error.\n");
}

/* Reads all of f (at most INPUT_MAX bytes) into a new buffer.  Returns 0,
 * or -1 with errno set. */
static int
slurp(FILE *f, char **bufp, size_t *lenp)
{
	char *buf = NULL, *p;
	size_t len = 0, cap = 0, n;
	int rc = -1;

	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			if (cap > INPUT_MAX + 1) {
				if (len > INPUT_MAX) {
					errno = EFBIG;
					goto out;
				}
				cap = INPUT_MAX + 2;
			}
			if ((p = realloc(buf, cap)) == NULL)
				goto out;
			buf = p;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (len > INPUT_MAX) {
			errno = EFBIG;
			goto out;
		}
		if (n == 0)
			break;
	}
	if (ferror(f))
		goto out;
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Checks one JSON text and prints the verdict after prefix.  Returns 0
 * valid, 1 invalid or not JSON, 2 out of memory. */
static int
check_text(const struct schema *s, const char *text, size_t len,
    const char *prefix)
{
	struct schema_error err;
	json_error_t jerr;
	json_t *v;
	int r;

	v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	    &jerr);
	if (v == NULL) {
		printf("%sinvalid JSON at line %d, column %d: %s\n", prefix,
		    jerr.line, jerr.column, jerr.text);
		return EXIT_INVALID;
	}
	r = schema_validate(s, v, &err);
	json_decref(v);
	if (r == -1) {
		fprintf(stderr, "botmatic-schema: %s%s\n", prefix, err.text);
		return EXIT_USAGE;
	}
	printf("%s%s\n", prefix, r == 0 ? "valid" : err.text);
	return r;
}

/* One value per non-blank line.  Returns the exit status. */
static int
check_lines(const struct schema *s, const char *buf, size_t len)
{
	const char *line, *nl;
	char prefix[48];
	unsigned long no = 1;
	size_t i, llen;
	int status = 0, r;

	for (line = buf; line < buf + len; line = nl + 1, no++) {
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		if (nl == NULL)
			nl = buf + len;
		llen = (size_t)(nl - line);
		for (i = 0; i < llen && strchr(" \t\r", line[i]) != NULL; i++)
			;
		if (i == llen)
			continue;
		snprintf(prefix, sizeof(prefix), "line %lu: ", no);
		r = check_text(s, line, llen, prefix);
		if (r == EXIT_USAGE)
			return r;
		if (r != 0)
			status = EXIT_INVALID;
	}
	return status;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "lines", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct schema_error err;
	struct schema *s = NULL;
	json_error_t jerr;
	json_t *doc = NULL;
	const char *spath, *in = NULL;
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0;
	int ch, lines = 0, status = EXIT_USAGE;

	while ((ch = getopt_long(argc, argv, "lh", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': lines = 1; break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (argc - optind < 1 || argc - optind > 2) {
		usage(stderr);
		goto out;
	}
	spath = argv[optind];
	if (argc - optind == 2)
		in = argv[optind + 1];
	else if (lines)
		in = "-";
	doc = json_load_file(spath, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		if (jerr.line < 1)
			fprintf(stderr, "botmatic-schema: %s\n", jerr.text);
		else
			fprintf(stderr, "botmatic-schema: %s:%d:%d: invalid "
			    "JSON: %s\n", spath, jerr.line, jerr.column,
			    jerr.text);
		goto out;
	}
	if (schema_compile(doc, &s, &err) == -1) {
		fprintf(stderr, "botmatic-schema: %s: %s\n", spath, err.text);
		goto out;
	}
	if (in == NULL) {
		printf("valid\n");
		status = 0;
		goto flush;
	}
	if (strcmp(in, "-") == 0)
		f = stdin;
	else if ((f = fopen(in, "rb")) == NULL) {
		fprintf(stderr, "botmatic-schema: %s: %s\n", in, strerror(errno));
		goto out;
	}
	if (slurp(f, &buf, &len) == -1) {
		fprintf(stderr, "botmatic-schema: %s: %s\n",
		    f == stdin ? "standard input" : in, strerror(errno));
		goto out;
	}
	status = lines ? check_lines(s, buf, len) : check_text(s, buf, len, "");
flush:
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "botmatic-schema: standard output: %s\n",
		    strerror(errno));
		status = EXIT_USAGE;
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	free(buf);
	schema_free(s);
	json_decref(doc);
	return status;
}
