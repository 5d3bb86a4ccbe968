/*
 * tests/unit/test-mapping-data.c - the data-driven mapping suite.
 *
 * Each directory under tests/data/mapping/ is one case:
 *   map.json       the mappings file
 *   in.json        the record (omitted for a case that must fail to load)
 *   args           optional "FROM TO" (default "botmatic ext")
 *   out.json       the expected result, compared as JSON.stringify text
 *                  (so key order and number formatting count), or
 *   error          the exact expected error (of the load, or of map_apply)
 *   warnings       optional: the expected warnings, one "field: reason" a
 *                  line; without it the case must warn about nothing
 *   roundtrip      optional: the result mapped back must equal in.json
 *                  (as jansson's json_equal: key order aside)
 * Prints TAP: one test per case.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mapping/mapping.h"

struct warns {
	char text[8192];
	size_t len;
};

static void
on_warn(void *arg, const char *field, const char *reason)
{
	struct warns *w = arg;
	int n;

	n = snprintf(w->text + w->len, sizeof(w->text) - w->len, "%s: %s\n",
	    field, reason);
	if (n > 0 && (size_t)n < sizeof(w->text) - w->len)
		w->len += (size_t)n;
}

/* The contents of dir/name, without trailing newlines, or NULL. */
static char *
slurp(const char *dir, const char *name)
{
	char path[8192], *buf = NULL;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		n = (long)fread(buf, 1, (size_t)n, f);
		while (n > 0 && buf[n - 1] == '\n')
			n--;
		buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

/* Loads expected JSON; integers beyond 64 bits fall back to reals. */
static json_t *
load_json(const char *dir, const char *name)
{
	char path[8192];
	json_t *v;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	v = json_load_file(path, JSON_DECODE_ANY, NULL);
	if (v == NULL)
		v = json_load_file(path, JSON_DECODE_ANY |
		    JSON_DECODE_INT_AS_REAL, NULL);
	return v;
}

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one case; returns 1 when it passes, printing why when not. */
static int
run_case(const char *dir)
{
	struct map_error merr;
	struct mapping *m = NULL;
	struct warns w = { "", 0 };
	json_t *in = NULL, *out = NULL, *want = NULL, *back = NULL;
	char *args = NULL, *error = NULL, *warnings = NULL, *got = NULL;
	char *exp = NULL, *intext = NULL, *backtext = NULL, path[8192];
	char from_s[32] = "botmatic", to_s[32] = "ext", err[1024];
	enum map_side from, to;
	int ok = 0, rt;

	error = slurp(dir, "error");
	warnings = slurp(dir, "warnings");
	if ((args = slurp(dir, "args")) != NULL &&
	    sscanf(args, "%31s %31s", from_s, to_s) != 2) {
		printf("# %s: bad args file\n", dir);
		goto out;
	}
	if (map_side_parse(from_s, &from) == -1 ||
	    map_side_parse(to_s, &to) == -1) {
		printf("# %s: bad sides\n", dir);
		goto out;
	}
	/* Messages name the file as given: load it from inside the case. */
	if (getcwd(path, sizeof(path)) == NULL || chdir(dir) == -1) {
		printf("# %s: cannot enter\n", dir);
		goto out;
	}
	m = map_load_file("map.json", NULL, &merr);
	if (chdir(path) == -1)
		goto out;
	if (m == NULL) {
		if (error == NULL)
			printf("# unexpected load error: %s\n", merr.text);
		else if (strcmp(error, merr.text) != 0)
			printf("# load error\n#   got:  %s\n#   want: %s\n",
			    merr.text, error);
		else
			ok = 1;
		goto out;
	}
	if ((in = load_json(dir, "in.json")) == NULL) {
		printf("# %s: no in.json (or not JSON)\n", dir);
		goto out;
	}
	if (map_apply(m, in, from, to, &out, on_warn, &w, err,
	    sizeof(err)) == -1) {
		if (error == NULL)
			printf("# unexpected map error: %s\n", err);
		else if (strcmp(error, err) != 0)
			printf("# map error\n#   got:  %s\n#   want: %s\n", err,
			    error);
		else
			ok = 1;
		goto out;
	}
	if (error != NULL) {
		printf("# expected the error: %s\n", error);
		goto out;
	}
	if ((want = load_json(dir, "out.json")) == NULL) {
		printf("# %s: no out.json (or not JSON)\n", dir);
		goto out;
	}
	got = map_stringify(out);
	exp = map_stringify(want);
	if (got == NULL || exp == NULL || strcmp(got, exp) != 0) {
		printf("# result\n#   got:  %s\n#   want: %s\n",
		    got ? got : "(null)", exp ? exp : "(null)");
		goto out;
	}
	if (w.len > 0 && w.text[w.len - 1] == '\n')
		w.text[--w.len] = '\0';
	if (strcmp(w.text, warnings ? warnings : "") != 0) {
		printf("# warnings\n#   got:  %s\n#   want: %s\n", w.text,
		    warnings ? warnings : "");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/roundtrip", dir);
	rt = access(path, F_OK) == 0;
	if (rt) {
		if (map_apply(m, out, to, from, &back, NULL, NULL, err,
		    sizeof(err)) == -1) {
			printf("# round trip: %s\n", err);
			goto out;
		}
		/* Key order aside: the result follows the entries' order. */
		intext = map_stringify(in);
		backtext = map_stringify(back);
		if (intext == NULL || backtext == NULL || !json_equal(in, back)) {
			printf("# round trip\n#   got:  %s\n#   want: %s\n",
			    backtext ? backtext : "(null)",
			    intext ? intext : "(null)");
			goto out;
		}
	}
	ok = 1;
out:
	free(args);
	free(error);
	free(warnings);
	free(got);
	free(exp);
	free(intext);
	free(backtext);
	json_decref(in);
	json_decref(out);
	json_decref(want);
	json_decref(back);
	map_free(m);
	return ok;
}

int
main(int argc, char *argv[])
{
	const char *src = getenv("BM_TEST_SRCDIR");
	char base[4096], dir[4096 + 256];
	char **names = NULL, **p;
	size_t n = 0, i;
	DIR *d;
	struct dirent *de;
	int failed = 0;

	if (argc > 1)
		snprintf(base, sizeof(base), "%s", argv[1]);
	else
		snprintf(base, sizeof(base), "%s/tests/data/mapping",
		    src ? src : ".");
	if ((d = opendir(base)) == NULL) {
		printf("Bail out! cannot open %s\n", base);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((p = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (p[n] = strdup(de->d_name)) == NULL) {
			printf("Bail out! out of memory\n");
			return 1;
		}
		names = p;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", base, names[i]);
		if (run_case(dir))
			printf("ok %zu - %s\n", i + 1, names[i]);
		else {
			printf("not ok %zu - %s\n", i + 1, names[i]);
			failed = 1;
		}
		free(names[i]);
	}
	free(names);
	return failed;
}
