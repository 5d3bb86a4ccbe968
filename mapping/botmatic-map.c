/*
 * botmatic-map - maps JSON records with a mappings file, from the shell.
 *
 *   botmatic-map -m mappings.json --from ext --to botmatic [FILE|-]
 *   botmatic-map -m mappings.json --check
 *
 * The input is one JSON object (which may span lines) or JSON lines; each
 * result is printed as compact JSON on its own line.  Exit status: 0 all
 * mapped, 1 some record failed (reported on stderr with its line number),
 * 2 usage, mappings file or input file error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mapping/mapping.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* What the warning callback needs to say where it is. */
struct ctx {
	unsigned long line;    /* line the current record starts on */
	int quiet;             /* -q: no warnings */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botmatic-map -m MAPPINGS --from SIDE --to SIDE [-q] [FILE|-]\n"
	    "       botmatic-map -m MAPPINGS --check\n"
	    "\n"
	    "Maps one JSON object, or JSON lines (one object per line), from FILE\n"
	    "(standard input when absent or -) with the mappings file, and prints\n"
	    "each result as compact JSON on its own line.\n"
	    "\n"
	    "  -m, --mappings FILE  the mappings file (a JSON array of entries)\n"
	    "  -f, --from SIDE      the records' side: ext or botmatic\n"
	    "  -t, --to SIDE        the side to map to: botmatic or ext\n"
	    "  -c, --check          only validate the mappings file\n"
	    "  -q, --quiet          do not report fields a transform left out\n"
	    "  -h, --help           show this help\n"
	    "\n"
	    "Exit status: 0 ok, 1 some record failed to map, 2 usage or file error.\n");
}

static void
on_warn(void *arg, const char *field, const char *reason)
{
	const struct ctx *c = arg;

	if (!c->quiet)
		fprintf(stderr, "botmatic-map: line %lu: field \"%s\" left out: "
		    "%s\n", c->line, field, reason);
}

/* Reads all of f into a new buffer.  Returns 0, or -1 with errno set. */
static int
slurp(FILE *f, char **bufp, size_t *lenp)
{
	char *buf = NULL, *p;
	size_t len = 0, cap = 0, n;
	int rc = -1;

	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			if ((p = realloc(buf, cap)) == NULL)
				goto out;
			buf = p;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
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

/* Maps one record and prints it.  Returns 0, or -1 after reporting. */
static int
map_one(const struct mapping *m, const json_t *rec, enum map_side from,
    enum map_side to, struct ctx *c)
{
	json_t *out = NULL;
	char err[1024], *text = NULL;
	int rc = -1;

	if (map_apply(m, rec, from, to, &out, on_warn, c, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "botmatic-map: line %lu: %s\n", c->line, err);
		goto out;
	}
	if ((text = map_stringify(out)) == NULL) {
		fprintf(stderr, "botmatic-map: line %lu: out of memory\n",
		    c->line);
		goto out;
	}
	printf("%s\n", text);
	rc = 0;
out:
	free(text);
	json_decref(out);
	return rc;
}

static unsigned long
count_lines(const char *s, size_t n)
{
	unsigned long lines = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\n')
			lines++;
	return lines;
}

/* Maps the input: a single JSON value if the whole input is one, else one
 * record per non-blank line.  Returns the exit status. */
static int
map_input(const struct mapping *m, const char *buf, size_t len,
    enum map_side from, enum map_side to, int quiet)
{
	struct ctx c = { 1, quiet };
	json_error_t jerr;
	json_t *rec;
	const char *line, *nl;
	size_t i, llen;
	int status = 0;

	rec = json_loadb(buf, len, 0, &jerr);
	if (rec != NULL) {
		for (i = 0; i < len && strchr(" \t\r\n", buf[i]) != NULL; i++)
			;
		c.line = 1 + count_lines(buf, i);
		if (map_one(m, rec, from, to, &c) == -1)
			status = EXIT_FAILED;
		json_decref(rec);
		return status;
	}
	for (line = buf; line < buf + len; line = nl + 1, c.line++) {
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		if (nl == NULL)
			nl = buf + len;
		llen = (size_t)(nl - line);
		for (i = 0; i < llen && strchr(" \t\r", line[i]) != NULL; i++)
			;
		if (i == llen)
			continue;
		rec = json_loadb(line, llen, 0, &jerr);
		if (rec == NULL) {
			fprintf(stderr, "botmatic-map: line %lu: column %d: invalid "
			    "JSON: %s\n", c.line, jerr.column, jerr.text);
			status = EXIT_FAILED;
			continue;
		}
		if (map_one(m, rec, from, to, &c) == -1)
			status = EXIT_FAILED;
		json_decref(rec);
	}
	return status;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "mappings", required_argument, NULL, 'm' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "check", no_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct map_error merr;
	struct mapping *m = NULL;
	const char *mpath = NULL, *fromarg = NULL, *toarg = NULL, *in = "-";
	enum map_side from = MAP_EXT, to = MAP_BOTMATIC;
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0;
	int ch, check = 0, quiet = 0, status = EXIT_USAGE;

	while ((ch = getopt_long(argc, argv, "m:f:t:cqh", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': mpath = optarg; break;
		case 'f': fromarg = optarg; break;
		case 't': toarg = optarg; break;
		case 'c': check = 1; break;
		case 'q': quiet = 1; break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (mpath == NULL) {
		fprintf(stderr, "botmatic-map: -m MAPPINGS is required\n");
		usage(stderr);
		goto out;
	}
	if (!check) {
		if (fromarg == NULL || toarg == NULL) {
			fprintf(stderr, "botmatic-map: --from and --to are "
			    "required\n");
			usage(stderr);
			goto out;
		}
		if (map_side_parse(fromarg, &from) == -1 ||
		    map_side_parse(toarg, &to) == -1) {
			fprintf(stderr, "botmatic-map: a side is ext or "
			    "botmatic\n");
			goto out;
		}
		if (argc - optind > 1) {
			fprintf(stderr, "botmatic-map: one input file at most\n");
			usage(stderr);
			goto out;
		}
		if (optind < argc)
			in = argv[optind];
	} else if (optind < argc) {
		fprintf(stderr, "botmatic-map: --check takes no input file\n");
		goto out;
	}
	if ((m = map_load_file(mpath, NULL, &merr)) == NULL) {
		fprintf(stderr, "botmatic-map: %s\n", merr.text);
		goto out;
	}
	if (check) {
		status = 0;
		goto out;
	}
	if (strcmp(in, "-") == 0)
		f = stdin;
	else if ((f = fopen(in, "rb")) == NULL) {
		fprintf(stderr, "botmatic-map: %s: %s\n", in, strerror(errno));
		goto out;
	}
	if (slurp(f, &buf, &len) == -1) {
		fprintf(stderr, "botmatic-map: %s: %s\n", in, strerror(errno));
		goto out;
	}
	status = map_input(m, buf, len, from, to, quiet);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "botmatic-map: standard output: %s\n",
		    strerror(errno));
		status = EXIT_USAGE;
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	free(buf);
	map_free(m);
	return status;
}
