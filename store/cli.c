/*
 * store/cli.c - botmatic-keys, the keystore from the shell (SPEC.md
 * sections 7 and 10).  With no server running, the tool takes store.lock
 * (lock.c), recovers if the last holder died, opens, runs its command and
 * closes.  With a server running, it never opens the store itself: it
 * hands the command to the server's master (control.c), which runs it here,
 * in store_cli_run(), in a child it supervises like a responder.
 *
 * Exit status: 0 done or found, 1 not found (or verify found problems),
 * 2 error, with exactly one line on stderr.
 *
 * JSON lines carry ids as strings; an id that is not valid UTF-8 is written
 * {"hex": "..."} and read back the same way.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "store/cli-hooks.h"
#include "store/cli-migrate.h"
#include "store/cli-outbox.h"
#include "store/cli-services.h"
#include "store/store.h"

#define PROG "botmatic-keys"
/* Lines per transaction when importing. */
#define BATCH 1000
/* Seconds a whole command may take by default (-t). */
#define DEFAULT_TIMEOUT 600
/* How long to wait for another tool's command to end. */
#define LOCK_WAIT_MS 30000
/* Keys per purge transaction. */
#define PURGE_BATCH 1000
/* Arguments a command has at most. */
#define ARGS_MAX 8
/* How long a full recovery may take. */
#define RECOVER_MS (30 * 60 * 1000)

static const char usage[] =
"Usage: " PROG " [-d DIR] [-r URL] [-t SECONDS] COMMAND [ARGS]\n"
"The botmatic-fcgi keystore (a Berkeley DB environment, or Redis), safe to\n"
"use while the server runs (on Berkeley DB the server then runs the\n"
"command) and to kill.\n"
"\n"
"Commands:\n"
"  save INTEGRATION BOTMATIC_ID EXT_ID   link two ids (relinks drop old links)\n"
"  get-ext INTEGRATION BOTMATIC_ID       print the external id\n"
"  get-botmatic INTEGRATION EXT_ID       print the botmatic id\n"
"  delete INTEGRATION BOTMATIC_ID EXT_ID forget both ids' pairs\n"
"  delete-all INTEGRATION                forget every pair; prints the count\n"
"  list INTEGRATION                      pairs as JSON lines (import reads them)\n"
"  installs [--show-tokens]              installations as JSON lines\n"
"  export                                everything as JSON lines (contains\n"
"                                        tokens and secrets: protect it)\n"
"  import [FILE|-]                       read an export\n"
"  import-redis [FILE|-]                 read js-redis-key-store's keys as\n"
"                                        JSON lines {\"key\":..,\"value\":..}\n"
"  verify [--show-tokens]                check that both directions agree\n"
"  import-contacts INSTALL_ID            import every external contact of an\n"
"                                        installation (runs botmatic-fcgi\n"
"                                        --import-contacts with BM_* settings)\n"
"  secret show INSTALL_ID                print the installation's webhook\n"
"                                        secret (whsec_...), for its sender\n"
"  secret rotate INSTALL_ID              draw a new secret and print it; the\n"
"                                        old one stays valid BM_SECRET_GRACE\n"
"                                        seconds (server setting)\n"
"  secret set INSTALL_ID                 keep the secret the external service\n"
"                                        gave (one line on stdin; empty:\n"
"                                        forget it) for shopify, github and\n"
"                                        stripe signatures (SPEC §11)\n"
"  hooks list INSTALL_ID                 the webhooks registered at the\n"
"                                        external service, as JSON lines\n"
"  hooks reconcile INSTALL_ID            queue their registration again (run\n"
"                                        by the server's delivery processes)\n"
"  outbox [list]                         queued deliveries, pending and dead,\n"
"                                        as JSON lines (no token)\n"
"  outbox show ID                        one job with its payload and last\n"
"                                        request and answer\n"
"  outbox retry ID|--dead                send a dead job (or all) again\n"
"  outbox cancel ID                      drop a job\n"
"  service-link INSTALL_ID SVC [GROUP [USER]]\n"
"                                        print a one-time link (10 minutes)\n"
"                                        connecting service SVC (needs\n"
"                                        BM_PUBLIC_URL, BM_ENDPOINT)\n"
"  services INSTALL_ID [--show-tokens]   the installation's services as JSON\n"
"                                        lines\n"
"  services revoke INSTALL_ID SVC [GROUP [USER]]   forget one\n"
"  services rotate-key NEWFILE           re-encrypt every sealed secret\n"
"                                        under NEWFILE's key (server\n"
"                                        stopped), then point\n"
"                                        BM_SECRET_KEY_FILE at it\n"
"  recover                               full recovery (refused while a server\n"
"                                        runs: it recovers by itself)\n"
"  migrate bdb-to-redis|redis-to-bdb     copy installations, pairs, state and\n"
"                                        services from the Berkeley DB in\n"
"                                        -d DIR to the Redis of -r URL or\n"
"                                        back; resumable, the target verified\n"
"\n"
"Options:\n"
"  -d DIR       the environment directory (default: $BM_DB_HOME)\n"
"  -r, --redis URL  use Redis at URL (redis://host:port[/db], unix:/path)\n"
"               instead of BM_STORE, BM_REDIS_URL\n"
"  -t SECONDS   time limit of the whole command (default 600; 0: none)\n"
"  -h, --help   this text\n"
"\n"
"Environment: BM_DB_HOME, BM_DB_DURABILITY (write, the default, or sync),\n"
"BM_SECRET_KEY_FILE (the server's key sealing tokens, when it has one),\n"
"BM_STORE, BM_REDIS_URL, BM_REDIS_SENTINELS, BM_REDIS_MASTER, BM_REDIS_KEYS,\n"
"BM_REDIS_TIMEOUT_MS (as the server reads them).\n"
"Exit status: 0 done or found, 1 not found (verify: problems found),\n"
"2 error.  Tokens are printed only with --show-tokens.  See botmatic-keys(1).\n";

/* Reports the error (one line) and gives exit status 2. */
static int __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/* Room for a message about a bad input line. */
#define WHY_LEN 256

/* A store error, with what we were doing. */
static int
fail_store(struct store *s, int rc, const char *what)
{
	(void)rc;
	return fail("%s: %s", what, store_strerror(s));
}

/* Bytes as JSON: a string, or {"hex": ...} if not UTF-8.  New reference. */
static json_t *
bytes_json(const char *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	json_t *j;
	char *hex;
	size_t i;

	if ((j = json_stringn(p, len)) != NULL)
		return j;
	if ((hex = malloc(2 * len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		hex[2 * i] = digits[(unsigned char)p[i] >> 4];
		hex[2 * i + 1] = digits[(unsigned char)p[i] & 15];
	}
	hex[2 * len] = '\0';
	j = json_pack("{s:s}", "hex", hex);
	free(hex);
	return j;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reads bytes back from JSON (string or {"hex"}).  *out is new (free()),
 * NUL-terminated.  Returns NULL on success or what is wrong.
 */
static const char *
json_bytes(const json_t *j, char **out, size_t *len)
{
	const char *h;
	size_t n, i;
	int hi, lo;

	*out = NULL;
	if (json_is_string(j)) {
		n = json_string_length(j);
		if ((*out = malloc(n + 1)) == NULL)
			return "out of memory";
		memcpy(*out, json_string_value(j), n + 1);
		*len = n;
		return NULL;
	}
	if (!json_is_object(j) || json_object_size(j) != 1 ||
	    (h = json_string_value(json_object_get(j, "hex"))) == NULL)
		return "not a string or {\"hex\": ...}";
	n = strlen(h);
	if (n % 2 != 0)
		return "odd number of hex digits";
	if ((*out = malloc(n / 2 + 1)) == NULL)
		return "out of memory";
	for (i = 0; i < n / 2; i++) {
		if ((hi = hexval(h[2 * i])) < 0 ||
		    (lo = hexval(h[2 * i + 1])) < 0) {
			free(*out);
			*out = NULL;
			return "not hex";
		}
		(*out)[i] = (char)(hi << 4 | lo);
	}
	(*out)[n / 2] = '\0';
	*len = n / 2;
	return NULL;
}

/* An id field: bytes, 1..STORE_ID_MAX, no NUL.  NULL or what is wrong. */
static const char *
json_id(const json_t *obj, const char *field, char **out, char *why)
{
	const char *e;
	size_t len;

	if ((e = json_bytes(json_object_get(obj, field), out, &len)) != NULL) {
		snprintf(why, WHY_LEN, "\"%s\": %s", field,
		    json_object_get(obj, field) ? e : "missing");
		return why;
	}
	if (len == 0)
		snprintf(why, WHY_LEN, "\"%s\" is empty", field);
	else if (len > STORE_ID_MAX)
		snprintf(why, WHY_LEN, "\"%s\" is longer than %d bytes",
		    field, STORE_ID_MAX);
	else if (strlen(*out) != len)
		snprintf(why, WHY_LEN, "\"%s\" contains NUL", field);
	else
		return NULL;
	free(*out);
	*out = NULL;
	return why;
}

static int
print_json(json_t *j)
{
	char *s;

	if (j == NULL || (s = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		return -1;
	}
	json_decref(j);
	puts(s);
	free(s);
	return 0;
}

/* --- list, installs, export, verify ------------------------------------- */

struct listing {
	struct store *s;
	int show_tokens;
	size_t problems;
};

static int
installs_fn(void *arg, const struct store_install *in)
{
	struct listing *l = arg;
	json_t *j;

	j = json_pack("{s:s,s:I,s:o}", "install_id", in->install_id,
	    "created", (json_int_t)in->created, "settings",
	    bytes_json(in->settings, in->settings_len));
	if (j != NULL && l->show_tokens)
		json_object_set_new(j, "token",
		    bytes_json(in->token, strlen(in->token)));
	return print_json(j) ? STORE_ERROR : 0;
}

static int
export_install(void *arg, const struct store_install *in)
{
	(void)arg;
	return print_json(json_pack("{s:s,s:o,s:s,s:I,s:s,s:o}", "type",
	    "install", "token", bytes_json(in->token, strlen(in->token)),
	    "install_id", in->install_id, "created", (json_int_t)in->created,
	    "secret", in->secret, "settings",
	    bytes_json(in->settings, in->settings_len))) ? STORE_ERROR : 0;
}

static int
export_pair(void *arg, const char *integ, const char *bid, const char *eid)
{
	(void)arg;
	return print_json(json_pack("{s:s,s:o,s:o,s:o}", "type", "pair",
	    "integration", bytes_json(integ, strlen(integ)), "botmatic_id",
	    bytes_json(bid, strlen(bid)), "ext_id",
	    bytes_json(eid, strlen(eid)))) ? STORE_ERROR : 0;
}

static int
export_state(void *arg, const char *tok, const char *name, const char *v,
    size_t len)
{
	(void)arg;
	return print_json(json_pack("{s:s,s:o,s:o,s:o}", "type", "state",
	    "integration", bytes_json(tok, strlen(tok)), "name",
	    bytes_json(name, strlen(name)), "value", bytes_json(v, len))) ?
	    STORE_ERROR : 0;
}

static void
verify_fn(void *arg, const char *what, const char *integ, const char *bid,
    const char *eid)
{
	struct listing *l = arg;
	struct store_install *in = NULL;
	json_t *j;

	l->problems++;
	j = json_pack("{s:s,s:o,s:o}", "problem", what, "botmatic_id",
	    bytes_json(bid, strlen(bid)), "ext_id",
	    bytes_json(eid, strlen(eid)));
	if (j == NULL)
		return;
	/* Name the installation without revealing its token. */
	if (store_install_get(l->s, integ, &in) == STORE_OK)
		json_object_set_new(j, "install_id",
		    json_string(in->install_id));
	else
		json_object_set_new(j, "install_id", json_null());
	store_install_free(in);
	if (l->show_tokens)
		json_object_set_new(j, "integration",
		    bytes_json(integ, strlen(integ)));
	print_json(j);
}

/* --- import ------------------------------------------------------------- */

/* The input, made rewindable (a pipe is spooled to a temporary file). */
static FILE *
open_input(const char *path, const char **err)
{
	FILE *in, *tmp;
	char buf[65536];
	size_t n;

	*err = NULL;
	if (path == NULL || strcmp(path, "-") == 0)
		in = stdin;
	else if ((in = fopen(path, "r")) == NULL) {
		*err = strerror(errno);
		return NULL;
	}
	if (fseeko(in, 0, SEEK_CUR) == 0)
		return in;
	if ((tmp = tmpfile()) == NULL) {
		*err = strerror(errno);
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, tmp) != n) {
			*err = strerror(errno);
			fclose(tmp);
			tmp = NULL;
			goto out;
		}
	if (ferror(in) || fflush(tmp) != 0 || fseeko(tmp, 0, SEEK_SET) != 0) {
		*err = ferror(in) ? "read error" : strerror(errno);
		fclose(tmp);
		tmp = NULL;
	}
out:
	if (in != stdin)
		fclose(in);
	return tmp;
}

/* Everything one import line became; the strings are new. */
struct rec {
	struct store_op op;
	struct store_install inst;
	char *a, *b, *c, *val;
};

static void
rec_free(struct rec *r)
{
	free(r->a);
	free(r->b);
	free(r->c);
	free(r->val);
	memset(r, 0, sizeof(*r));
}

/* Only these keys, each present. */
static const char *
keys_are(json_t *o, const char *const *keys, char *why)
{
	const char *k;
	json_t *v;
	size_t i, n = 0;

	json_object_foreach(o, k, v) {
		for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
			;
		if (keys[i] == NULL) {
			snprintf(why, WHY_LEN, "unknown key \"%.64s\"", k);
			return why;
		}
		n++;
	}
	for (i = 0; keys[i] != NULL; i++)
		;
	if (n != i)
		return "missing keys";
	return NULL;
}

static int
is_lower_hex(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (hexval(p[i]) < 0 || (p[i] >= 'A' && p[i] <= 'F'))
			return 0;
	return p[len] == '\0';
}

/*
 * Parses one export line into r.  Returns NULL, or what is wrong with it
 * (perhaps written in why, WHY_LEN bytes).
 */
static const char *
parse_line(const char *line, size_t len, struct rec *r, char *why)
{
	static const char *const kpair[] = { "type", "integration",
	    "botmatic_id", "ext_id", NULL };
	static const char *const kstate[] = { "type", "integration", "name",
	    "value", NULL };
	static const char *const kinst[] = { "type", "token", "install_id",
	    "created", "secret", "settings", NULL };
	json_error_t jerr;
	json_t *j;
	const char *type, *e = NULL, *s;
	size_t n;

	memset(r, 0, sizeof(*r));
	if ((j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(why, WHY_LEN, "bad JSON: %s", jerr.text);
		return why;
	}
	if (!json_is_object(j) ||
	    (type = json_string_value(json_object_get(j, "type"))) == NULL) {
		e = "not an object with a \"type\"";
		goto out;
	}
	if (strcmp(type, "pair") == 0) {
		if ((e = keys_are(j, kpair, why)) ||
		    (e = json_id(j, "integration", &r->a, why)) ||
		    (e = json_id(j, "botmatic_id", &r->b, why)) ||
		    (e = json_id(j, "ext_id", &r->c, why)))
			goto out;
		r->op = (struct store_op){ .kind = STORE_OP_IDS_SAVE,
		    .a = r->a, .b = r->b, .c = r->c };
	} else if (strcmp(type, "state") == 0) {
		if ((e = keys_are(j, kstate, why)) ||
		    (e = json_id(j, "integration", &r->a, why)) ||
		    (e = json_id(j, "name", &r->b, why)))
			goto out;
		if ((e = json_bytes(json_object_get(j, "value"), &r->val, &n)))
			goto out;
		if (n > STORE_VALUE_MAX) {
			e = "\"value\" is too large";
			goto out;
		}
		r->op = (struct store_op){ .kind = STORE_OP_STATE_SET,
		    .a = r->a, .b = r->b, .val = r->val, .len = n };
	} else if (strcmp(type, "install") == 0) {
		if ((e = keys_are(j, kinst, why)) ||
		    (e = json_id(j, "token", &r->a, why)))
			goto out;
		s = json_string_value(json_object_get(j, "install_id"));
		if (s == NULL || strlen(s) != STORE_INSTALL_ID_LEN ||
		    !is_lower_hex(s, STORE_INSTALL_ID_LEN)) {
			e = "\"install_id\" is not 32 lowercase hex digits";
			goto out;
		}
		memcpy(r->inst.install_id, s, STORE_INSTALL_ID_LEN + 1);
		s = json_string_value(json_object_get(j, "secret"));
		if (s == NULL || strlen(s) != STORE_SECRET_LEN ||
		    !is_lower_hex(s, STORE_SECRET_LEN)) {
			e = "\"secret\" is not 64 lowercase hex digits";
			goto out;
		}
		memcpy(r->inst.secret, s, STORE_SECRET_LEN + 1);
		if (!json_is_integer(json_object_get(j, "created"))) {
			e = "\"created\" is not an integer";
			goto out;
		}
		r->inst.created = json_integer_value(json_object_get(j,
		    "created"));
		if ((e = json_bytes(json_object_get(j, "settings"), &r->val,
		    &n)))
			goto out;
		if (n > STORE_VALUE_MAX) {
			e = "\"settings\" are too large";
			goto out;
		}
		r->inst.token = r->a;
		r->inst.settings = r->val;
		r->inst.settings_len = n;
		r->op = (struct store_op){ .kind = STORE_OP_INSTALL_PUT,
		    .install = &r->inst };
	} else
		e = "unknown \"type\"";
out:
	json_decref(j);
	if (e != NULL)
		rec_free(r);
	return e;
}

static int
blank(const char *p, size_t n)
{
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' ||
	    p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n == 0;
}

/*
 * Applies n records, as one transaction.  Returns 0 or an exit status
 * (having said which line failed: first is the first record's line).
 */
static int
apply(struct store *s, struct rec *recs, size_t n, const size_t *lines)
{
	struct store_op *ops;
	size_t i, bad = 0;
	int rc, ret = 0;

	if (n == 0)
		return 0;
	if ((ops = calloc(n, sizeof(*ops))) == NULL)
		return fail("out of memory");
	for (i = 0; i < n; i++) {
		ops[i] = recs[i].op;
		if (ops[i].kind == STORE_OP_INSTALL_PUT)
			ops[i].install = &recs[i].inst;
	}
	if ((rc = store_apply(s, ops, n, &bad)) != STORE_OK) {
		if (rc == STORE_EINVAL)
			ret = fail("line %zu: %s", lines[bad],
			    store_strerror(s));
		else
			ret = fail_store(s, rc, "importing");
	}
	free(ops);
	return ret;
}

static int
cmd_import(struct store *s, const char *path)
{
	struct rec *recs = NULL;
	size_t *lines = NULL, cap = 0, lineno, n = 0, i, total = 0;
	const char *e;
	ssize_t len;
	char *line = NULL, why[WHY_LEN];
	FILE *in;
	int pass, ret = 0;

	if ((in = open_input(path, &e)) == NULL)
		return fail("%s: %s", path ? path : "-", e);
	if ((recs = calloc(BATCH, sizeof(*recs))) == NULL ||
	    (lines = calloc(BATCH, sizeof(*lines))) == NULL) {
		ret = fail("out of memory");
		goto out;
	}
	/* Pass 0 checks every line, pass 1 writes: a bad line anywhere
	 * means nothing at all is written. */
	for (pass = 0; pass < 2 && ret == 0; pass++) {
		if (fseeko(in, 0, SEEK_SET) != 0) {
			ret = fail("%s: %s", path ? path : "-",
			    strerror(errno));
			break;
		}
		for (lineno = 1; (len = getline(&line, &cap, in)) >= 0;
		    lineno++) {
			if (blank(line, (size_t)len))
				continue;
			if ((e = parse_line(line, (size_t)len, &recs[n],
			    why))) {
				ret = fail("line %zu: %s", lineno, e);
				break;
			}
			if (pass == 0) {
				rec_free(&recs[n]);
				continue;
			}
			lines[n++] = lineno;
			if (n == BATCH) {
				ret = apply(s, recs, n, lines);
				for (i = 0; i < n; i++)
					rec_free(&recs[i]);
				total += n;
				n = 0;
				if (ret != 0)
					break;
			}
		}
		if (ret == 0 && ferror(in))
			ret = fail("%s: read error", path ? path : "-");
	}
	if (ret == 0) {
		ret = apply(s, recs, n, lines);
		total += n;
	}
	if (ret == 0)
		printf("imported %zu records\n", total);
out:
	for (i = 0; recs != NULL && i < BATCH; i++)
		rec_free(&recs[i]);
	free(recs);
	free(lines);
	free(line);
	if (in != NULL && in != stdin)
		fclose(in);
	return ret;
}

/* One js-redis-key-store key: <integration>:b:<id> or <integration>:e:<id>. */
struct rkey {
	char *integ, *id, *val;
	int fwd;  /* :b: */
	int used; /* imported, or judged */
};

static int
rkey_cmp(const void *x, const void *y)
{
	const struct rkey *a = x, *b = y;
	int c;

	if (a->fwd != b->fwd)
		return a->fwd - b->fwd;
	if ((c = strcmp(a->integ, b->integ)) != 0)
		return c;
	return strcmp(a->id, b->id);
}

/* Splits a Redis key from the right on ":b:" or ":e:".  NULL or why. */
static const char *
redis_key(const char *key, struct rkey *k)
{
	const char *p, *m = NULL;
	size_t ilen;

	for (p = key; (p = strchr(p, ':')) != NULL; p++)
		if ((p[1] == 'b' || p[1] == 'e') && p[2] == ':')
			m = p;
	if (m == NULL)
		return "key has no \":b:\" or \":e:\"";
	ilen = (size_t)(m - key);
	if (ilen == 0 || m[3] == '\0')
		return "empty integration or id in key";
	if (ilen > STORE_ID_MAX || strlen(m + 3) > STORE_ID_MAX)
		return "integration or id longer than 512 bytes in key";
	k->fwd = m[1] == 'b';
	if ((k->integ = strndup(key, ilen)) == NULL ||
	    (k->id = strdup(m + 3)) == NULL)
		return "out of memory";
	return NULL;
}

static struct rkey *
rfind(struct rkey *keys, size_t n, int fwd, const char *integ, const char *id)
{
	struct rkey want = { .integ = (char *)integ, .id = (char *)id,
	    .fwd = fwd };

	return bsearch(&want, keys, n, sizeof(*keys), rkey_cmp);
}

static int
cmd_import_redis(struct store *s, const char *path)
{
	struct rkey *keys = NULL, *k, *o;
	struct store_op *ops = NULL;
	size_t n = 0, cap = 0, lcap = 0, lineno, i, nops = 0, pairs = 0;
	size_t stale = 0;
	json_error_t jerr;
	json_t *j = NULL, *v;
	const char *e, *key;
	char *line = NULL, num[32];
	ssize_t len;
	FILE *in;
	int ret = 0, pass;

	if ((in = open_input(path, &e)) == NULL)
		return fail("%s: %s", path ? path : "-", e);
	for (lineno = 1; (len = getline(&line, &lcap, in)) >= 0; lineno++) {
		if (blank(line, (size_t)len))
			continue;
		if ((j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES,
		    &jerr)) == NULL) {
			ret = fail("line %zu: bad JSON: %s", lineno, jerr.text);
			goto out;
		}
		key = json_string_value(json_object_get(j, "key"));
		v = json_object_get(j, "value");
		if (!json_is_object(j) || json_object_size(j) != 2 ||
		    key == NULL || v == NULL) {
			ret = fail("line %zu: not {\"key\": string, \"value\": "
			    "...}", lineno);
			goto out;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			if ((k = realloc(keys, cap * sizeof(*keys))) == NULL) {
				ret = fail("out of memory");
				goto out;
			}
			keys = k;
		}
		k = &keys[n];
		memset(k, 0, sizeof(*k));
		n++;
		if ((e = redis_key(key, k)) != NULL) {
			ret = fail("line %zu: %s", lineno, e);
			goto out;
		}
		/* Redis holds strings; a dump may give numbers. */
		if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(v));
			k->val = strdup(num);
		} else if (json_is_string(v))
			k->val = strdup(json_string_value(v));
		else {
			ret = fail("line %zu: \"value\" is not a string",
			    lineno);
			goto out;
		}
		if (k->val == NULL || k->val[0] == '\0' ||
		    strlen(k->val) > STORE_ID_MAX ||
		    strlen(k->val) != (json_is_string(v) ?
		    json_string_length(v) : strlen(k->val))) {
			ret = fail("line %zu: \"value\" is empty, longer than "
			    "%d bytes or contains NUL", lineno, STORE_ID_MAX);
			goto out;
		}
		json_decref(j);
		j = NULL;
	}
	if (ferror(in)) {
		ret = fail("%s: read error", path ? path : "-");
		goto out;
	}
	qsort(keys, n, sizeof(*keys), rkey_cmp);
	if ((ops = calloc(BATCH, sizeof(*ops))) == NULL) {
		ret = fail("out of memory");
		goto out;
	}
	/*
	 * The Node library wrote the two keys one after the other and never
	 * removed stale reverse keys.  Pass 0 imports pairs both keys agree
	 * on; pass 1 the halves whose other key is missing (a crash between
	 * the two writes).  A key whose reverse names another id is stale.
	 */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			k = &keys[i];
			if (k->used)
				continue;
			o = rfind(keys, n, !k->fwd, k->integ, k->val);
			if (o != NULL && strcmp(o->val, k->id) != 0) {
				k->used = 1;
				stale++;
				continue;
			}
			if ((o != NULL) != (pass == 0))
				continue;
			k->used = 1;
			if (o != NULL)
				o->used = 1;
			ops[nops++] = (struct store_op){
			    .kind = STORE_OP_IDS_SAVE, .a = k->integ,
			    .b = k->fwd ? k->id : k->val,
			    .c = k->fwd ? k->val : k->id };
			pairs++;
			if (nops == BATCH) {
				if (store_apply(s, ops, nops, NULL) != 0) {
					ret = fail_store(s, -1, "importing");
					goto out;
				}
				nops = 0;
			}
		}
	if (store_apply(s, ops, nops, NULL) != STORE_OK) {
		ret = fail_store(s, -1, "importing");
		goto out;
	}
	printf("imported %zu pairs from %zu keys, skipped %zu stale keys\n",
	    pairs, n, stale);
out:
	json_decref(j);
	for (i = 0; i < n; i++) {
		free(keys[i].integ);
		free(keys[i].id);
		free(keys[i].val);
	}
	free(keys);
	free(ops);
	free(line);
	if (in != NULL && in != stdin)
		fclose(in);
	return ret;
}

/*
 * A command that does not end: whatever the cause (a wedged environment,
 * a lock never released), the tool gives up after its time limit (-t) in
 * one line rather than hanging; the next holder of the lock recovers.
 */
static void
on_alarm(int sig)
{
	static const char msg[] = PROG ": the command overran its time limit "
	    "(-t) and was stopped; the next command recovers the store if "
	    "needed\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(2);
}

/* --- main ----------------------------------------------------------------- */

struct cmd {
	const char *name;
	int min, max; /* arguments */
};

static const struct cmd cmds[] = {
	{ "save", 3, 3 }, { "get-ext", 2, 2 }, { "get-botmatic", 2, 2 },
	{ "delete", 3, 3 }, { "delete-all", 1, 1 }, { "list", 1, 1 },
	{ "installs", 0, 1 }, { "export", 0, 0 }, { "import", 0, 1 },
	{ "import-redis", 0, 1 }, { "verify", 0, 1 }, { "recover", 0, 0 },
	{ "import-contacts", 1, 1 }, { "secret", 2, 2 }, { "outbox", 0, 2 },
	{ "service-link", 2, 4 }, { "services", 1, 5 }, { "hooks", 2, 2 },
	{ "migrate", 1, 1 },
};

/*
 * import-contacts INSTALL_ID: the import needs the Botmatic API, the
 * mapping and the external service, none of which belongs in this tool:
 * it hands over to the server's own one-shot mode, found beside this
 * program (or on PATH), with the same environment.  Returns only on error.
 */
static int
cmd_import_contacts(const char *home, const char *install_id)
{
	char self[4096], *slash;
	ssize_t n;

	if (setenv("BM_DB_HOME", home, 1) < 0)
		return fail("setenv: %s", strerror(errno));
	n = readlink("/proc/self/exe", self, sizeof(self) - 32);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			strcpy(slash + 1, "botmatic-fcgi");
			execl(self, "botmatic-fcgi", "--import-contacts",
			    install_id, (char *)NULL);
		}
	}
	execlp("botmatic-fcgi", "botmatic-fcgi", "--import-contacts",
	    install_id, (char *)NULL);
	return fail("import-contacts: cannot run botmatic-fcgi: %s",
	    strerror(errno));
}

/* Prints a stored secret (64 hex digits) as senders use it: whsec_ and the
 * base64 of its 32 bytes (Standard Webhooks). */
static int
print_whsec(const char *hex)
{
	unsigned char key[32], text[48];
	unsigned v;
	size_t i;

	for (i = 0; i < 32; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return fail("secret: the stored secret is malformed");
		key[i] = (unsigned char)v;
	}
	EVP_EncodeBlock(text, key, 32);
	OPENSSL_cleanse(key, sizeof(key));
	printf("whsec_%s\n", (const char *)text);
	OPENSSL_cleanse(text, sizeof(text));
	return 0;
}

/*
 * secret show|rotate INSTALL_ID.  A rotation writes the new secret and
 * keeps the old one, with the time, as the installation's state
 * "bm:webhook-secret-previous" in one transaction: the server accepts
 * either for BM_SECRET_GRACE seconds, so the sender can switch meanwhile.
 */
static int
cmd_secret(struct store *s, const char *what, const char *install_id)
{
	static const char digits[] = "0123456789abcdef";
	struct store_install *in = NULL, next;
	unsigned char raw[STORE_SECRET_LEN / 2];
	char prev[128];
	struct store_op ops[2];
	size_t i;
	int rc, ret = 2;

	if (strcmp(what, "set") == 0)
		return store_cli_secret_set(s, install_id);
	if (strcmp(what, "show") != 0 && strcmp(what, "rotate") != 0)
		return fail("secret: expected show, rotate or set, not \"%s\"",
		    what);
	rc = store_install_get_by_id(s, install_id, &in);
	if (rc == STORE_NOTFOUND)
		return fail("secret: no installation %s", install_id);
	if (rc != STORE_OK)
		return fail_store(s, rc, "secret");
	if (strcmp(what, "show") == 0) {
		ret = print_whsec(in->secret) == 0 ? 0 : 2;
		goto out;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		ret = fail("secret: getrandom: %s", strerror(errno));
		goto out;
	}
	next = *in;
	for (i = 0; i < sizeof(raw); i++) {
		next.secret[2 * i] = digits[raw[i] >> 4];
		next.secret[2 * i + 1] = digits[raw[i] & 15];
	}
	next.secret[STORE_SECRET_LEN] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	snprintf(prev, sizeof(prev), "{\"secret\":\"%s\",\"rotated\":%lld}",
	    in->secret, (long long)time(NULL));
	memset(ops, 0, sizeof(ops));
	ops[0].kind = STORE_OP_INSTALL_PUT;
	ops[0].install = &next;
	ops[1].kind = STORE_OP_STATE_SET;
	ops[1].a = in->token;
	ops[1].b = STORE_STATE_SECRET_PREVIOUS;
	ops[1].val = prev;
	ops[1].len = strlen(prev);
	rc = store_apply(s, ops, 2, NULL);
	OPENSSL_cleanse(prev, sizeof(prev));
	if (rc != STORE_OK) {
		OPENSSL_cleanse(next.secret, sizeof(next.secret));
		ret = fail_store(s, rc, "secret rotate");
		goto out;
	}
	ret = print_whsec(next.secret) == 0 ? 0 : 2;
	OPENSSL_cleanse(next.secret, sizeof(next.secret));
out:
	if (in != NULL)
		OPENSSL_cleanse(in->secret, sizeof(in->secret));
	store_install_free(in);
	if (ret == 0 && fflush(stdout) != 0)
		return fail("stdout: %s", strerror(errno));
	return ret;
}

static int
run(struct store *s, const char *cmd, int argc, char **argv)
{
	struct store_export_cbs cbs = { export_install, export_pair,
	    export_state };
	struct listing l = { .s = s };
	char *v = NULL;
	size_t n = 0;
	int rc;

	if (strcmp(cmd, "save") == 0)
		rc = store_ids_save(s, argv[0], argv[1], argv[2]);
	else if (strcmp(cmd, "get-ext") == 0 ||
	    strcmp(cmd, "get-botmatic") == 0) {
		rc = cmd[4] == 'e' ? store_ext_id_get(s, argv[0], argv[1], &v) :
		    store_botmatic_id_get(s, argv[0], argv[1], &v);
		if (rc == STORE_OK)
			puts(v);
		free(v);
	} else if (strcmp(cmd, "delete") == 0)
		rc = store_ids_delete(s, argv[0], argv[1], argv[2]);
	else if (strcmp(cmd, "delete-all") == 0) {
		if ((rc = store_ids_delete_all(s, argv[0], &n)) == STORE_OK)
			printf("%zu\n", n);
	} else if (strcmp(cmd, "list") == 0)
		rc = store_ids_foreach(s, argv[0], export_pair, NULL);
	else if (strcmp(cmd, "installs") == 0) {
		l.show_tokens = argc > 0;
		rc = store_install_foreach(s, installs_fn, &l);
	} else if (strcmp(cmd, "export") == 0)
		rc = store_export(s, &cbs, NULL);
	else if (strcmp(cmd, "import") == 0)
		return cmd_import(s, argc > 0 ? argv[0] : NULL);
	else if (strcmp(cmd, "import-redis") == 0)
		return cmd_import_redis(s, argc > 0 ? argv[0] : NULL);
	else if (strcmp(cmd, "secret") == 0)
		return cmd_secret(s, argv[0], argv[1]);
	else if (strcmp(cmd, "hooks") == 0)
		return store_cli_hooks(s, argc, argv);
	else if (strcmp(cmd, "outbox") == 0)
		return store_cli_outbox(s, argc, argv);
	else if (strcmp(cmd, "service-link") == 0 ||
	    strcmp(cmd, "services") == 0)
		return store_cli_services(s, cmd, argc, argv);
	else {
		l.show_tokens = argc > 0;
		if ((rc = store_verify(s, verify_fn, &l, &n)) == STORE_OK &&
		    n > 0) {
			fprintf(stderr, PROG ": %zu problems\n", n);
			return 1;
		}
	}
	if (rc == STORE_NOTFOUND)
		return 1;
	if (rc != STORE_OK)
		return fail_store(s, rc, cmd);
	if (fflush(stdout) != 0)
		return fail("stdout: %s", strerror(errno));
	return 0;
}

/* What the command line says. */
struct opts {
	const char *home;
	const char *redis;       /* -r URL */
	unsigned timeout;        /* seconds for the whole command; 0: none */
	const struct cmd *c;
	int argc;                /* the command's arguments... */
	char **argv;             /* ...after the command's name */
	char **cmdv;             /* the command and its arguments */
};

/* Parses argv; returns -1 when done (help), 0 or an exit status >0. */
static int
parse(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "redis", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cmd;
	char *end;
	unsigned long t;
	size_t i;
	int ch;

	o->timeout = DEFAULT_TIMEOUT;
	optind = 1;
	/* "+": stop at the command, so that ids may start with '-'. */
	while ((ch = getopt_long(argc, argv, "+d:r:t:h", longs, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o->home = optarg;
			break;
		case 'r':
			o->redis = optarg;
			break;
		case 't':
			errno = 0;
			t = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || optarg[0] == '\0' ||
			    optarg[0] == '-' || t > 86400)
				return fail("-t: \"%s\" is not a number of "
				    "seconds from 0 to 86400", optarg);
			o->timeout = (unsigned)t;
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return fail("bad option (try --help)");
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return fail("no command (try --help)");
	cmd = argv[0];
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, cmd) == 0)
			o->c = &cmds[i];
	if (o->c == NULL)
		return fail("unknown command \"%s\" (try --help)", cmd);
	o->cmdv = argv;
	o->argc = argc - 1;
	o->argv = argv + 1;
	if (o->argc < o->c->min || o->argc > o->c->max)
		return fail("%s: wrong number of arguments (try --help)", cmd);
	if ((strcmp(cmd, "installs") == 0 || strcmp(cmd, "verify") == 0) &&
	    o->argc == 1 && strcmp(o->argv[0], "--show-tokens") != 0)
		return fail("%s: unknown argument \"%s\"", cmd, o->argv[0]);
	return 0;
}

/* Opens, runs, closes: the part shared by the tool and the server. */
static int
open_run(const struct store_opts *so, struct opts *o, int standalone,
    int *clean)
{
	struct store *s = NULL;
	char err[1024];
	int ret;

	*clean = 0;
	if (store_open(&s, so, err, sizeof(err)) != STORE_OK)
		return fail("%s", err);
	ret = run(s, o->c->name, o->argc, o->argv);
	/*
	 * What delete-all forgot is deleted now, in batches; under a server
	 * its master's purge does it.  Killed meanwhile, the tombstone stays
	 * and the next purge resumes.
	 */
	if (ret == 0 && standalone && strcmp(o->c->name, "delete-all") == 0) {
		int more = 1;

		while (more && ret == 0)
			if (store_purge_step(s, PURGE_BATCH, NULL, &more) !=
			    STORE_OK)
				ret = fail_store(s, -1, "purging");
	}
	*clean = store_close(s) == 0;
	return ret;
}

int
store_cli_run(const char *home, enum store_durability dur, int argc,
    char **argv)
{
	struct store_opts so = { 0 };
	struct opts o = { .home = home };
	int ret, clean;

	if ((ret = parse(argc, argv, &o)) != 0)
		return ret < 0 ? 0 : ret;
	if (strcmp(o.c->name, "recover") == 0)
		return fail("recover: the server is running; it recovers the "
		    "store by itself");
	if (strcmp(o.c->name, "migrate") == 0)
		return fail("migrate: the server is running: stop it first");
	if (o.timeout > 0) {
		signal(SIGALRM, on_alarm);
		alarm(o.timeout);
	}
	/* The server's own store: Berkeley DB (Redis needs no hand-over). */
	so.home = home;
	so.durability = dur;
	so.key_file = getenv("BM_SECRET_KEY_FILE");
	return open_run(&so, &o, 0, &clean);
}

/*
 * Hands the command to the server.  A file argument is opened here (the
 * server's working directory is not ours, nor perhaps its rights) and
 * passed as the command's stdin.
 */
static int
hand_over(struct opts *o, const char *home, int *nosrv)
{
	char *v[ARGS_MAX + 4], tbuf[16], err[1024];
	int fds[3] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO };
	int n = 0, i, st, rc, in = -1;

	*nosrv = 0;
	snprintf(tbuf, sizeof(tbuf), "%u", o->timeout);
	v[n++] = "-t";
	v[n++] = tbuf;
	v[n++] = o->cmdv[0];
	if ((strcmp(o->c->name, "import") == 0 ||
	    strcmp(o->c->name, "import-redis") == 0) && o->argc == 1 &&
	    strcmp(o->argv[0], "-") != 0) {
		if ((in = open(o->argv[0], O_RDONLY | O_CLOEXEC)) < 0)
			return fail("%s: %s", o->argv[0], strerror(errno));
		fds[0] = in;
		v[n++] = "-";
	} else
		for (i = 0; i < o->argc; i++)
			v[n++] = o->argv[i];
	v[n] = NULL;
	fflush(stdout);
	rc = store_control_call(home, n, v, fds, &st, err, sizeof(err));
	if (in >= 0)
		close(in);
	if (rc == STORE_CONTROL_NOSERVER) {
		*nosrv = 1;
		return 2;
	}
	if (rc != 0)
		return fail("%s", err);
	return st;
}

/* Opens both stores and copies one into the other (cli-migrate.c). */
static int
migrate(const struct store_opts *bdb, const struct store_opts *rd,
    const char *way, int *clean)
{
	struct store *b = NULL, *r = NULL;
	char err[1024];
	int ret = 2;

	*clean = 1;
	if (strcmp(way, "bdb-to-redis") != 0 &&
	    strcmp(way, "redis-to-bdb") != 0)
		return fail("migrate: \"%s\" is not bdb-to-redis or "
		    "redis-to-bdb", way);
	if (rd->redis_url == NULL && rd->redis_sentinels == NULL)
		return fail("migrate: no Redis: give -r URL or set "
		    "BM_REDIS_URL");
	if (store_open(&b, bdb, err, sizeof(err)) != STORE_OK) {
		ret = fail("%s", err);
		goto out;
	}
	if (store_open(&r, rd, err, sizeof(err)) != STORE_OK) {
		ret = fail("%s", err);
		goto out;
	}
	ret = way[0] == 'b' ? store_cli_migrate(b, r) : store_cli_migrate(r, b);
	if (ret == 0 && way[0] == 'r') {
		/* The cursor's tombstone in the Berkeley DB target. */
		int more = 1;

		while (more && store_purge_step(b, PURGE_BATCH, NULL, &more) ==
		    STORE_OK)
			;
	}
out:
	store_close(r);
	*clean = store_close(b) == 0;
	if (!*clean && ret == 0)
		ret = 2;
	return ret;
}

int
store_cli_main(int argc, char **argv)
{
	struct store_lock *lock = NULL;
	struct store_lock_info info;
	struct store_opts so = { 0 }, bdb;
	struct timespec t0, t;
	struct opts o = { 0 };
	enum store_durability dur;
	const char *d;
	char err[1024], home[PATH_MAX];
	int ret, rc, nosrv, clean = 0, is_migrate;
	long waited;

	o.home = getenv("BM_DB_HOME");
	if ((ret = parse(argc, argv, &o)) != 0)
		return ret < 0 ? 0 : ret;
	if (store_opts_env(&so, err, sizeof(err)) != STORE_OK &&
	    o.redis == NULL)
		return fail("%s", err);
	if (o.redis != NULL) {
		so.backend = STORE_BACKEND_REDIS;
		so.redis_url = o.redis;
		so.redis_sentinels = NULL;
	}
	is_migrate = strcmp(o.c->name, "migrate") == 0;
	d = getenv("BM_DB_DURABILITY");
	if (d == NULL || *d == '\0' || strcmp(d, "write") == 0)
		dur = STORE_DURABILITY_WRITE;
	else if (strcmp(d, "sync") == 0)
		dur = STORE_DURABILITY_SYNC;
	else
		return fail("BM_DB_DURABILITY: \"%s\" is not sync or write", d);
	so.durability = dur;
	/* The server's key: the tokens it sealed open with it only. */
	so.key_file = getenv("BM_SECRET_KEY_FILE");
	if (so.backend == STORE_BACKEND_REDIS && !is_migrate) {
		/* Redis: no lock, no hand-over, nothing to recover. */
		if (strcmp(o.c->name, "recover") == 0)
			return fail("recover: nothing to recover on Redis");
		if (strcmp(o.c->name, "import-contacts") == 0)
			return cmd_import_contacts(o.home != NULL ? o.home : "",
			    o.argv[0]);
		so.home = o.home != NULL && *o.home != '\0' ? o.home : NULL;
		if (o.timeout > 0) {
			signal(SIGALRM, on_alarm);
			alarm(o.timeout);
		}
		ret = open_run(&so, &o, 1, &clean);
		alarm(0);
		return ret;
	}
	if (o.home == NULL || *o.home == '\0')
		return fail("no environment: give -d DIR or set BM_DB_HOME");
	/* The server's working directory is not ours. */
	if (mkdir(o.home, 0700) != 0 && errno != EEXIST)
		return fail("%s: cannot create: %s", o.home, strerror(errno));
	if (realpath(o.home, home) == NULL)
		return fail("%s: %s", o.home, strerror(errno));
	if (strcmp(o.c->name, "import-contacts") == 0) {
		/* Only the server's binary can import; with a server running
		 * its master runs it, otherwise botmatic-fcgi does. */
		ret = hand_over(&o, home, &nosrv);
		if (!nosrv)
			return ret;
		return cmd_import_contacts(home, o.argv[0]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rc = store_lock_take(&lock, home, 0, LOCK_WAIT_MS, &info, err,
		    sizeof(err));
		if (rc == STORE_LOCK_TAKEN)
			break;
		if (rc == STORE_LOCK_ERROR)
			return fail("%s", err);
		if (rc == STORE_LOCK_BUSY)
			return fail("%s: another command (pid %ld) has held the "
			    "store for %d s; try again later", home,
			    info.holder_pid, LOCK_WAIT_MS / 1000);
		if (is_migrate)
			return fail("migrate: a server (pid %ld) runs on %s: "
			    "stop it first", info.holder_pid, home);
		if (strcmp(o.c->name, "recover") == 0)
			return fail("recover: a server (pid %ld) runs on %s: it "
			    "recovers the store by itself; stop it first to "
			    "recover by hand", info.holder_pid, home);
		ret = hand_over(&o, home, &nosrv);
		if (!nosrv)
			return ret;
		/* The server is starting or stopping: try again, bounded. */
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000L +
		    (t.tv_nsec - t0.tv_nsec) / 1000000L;
		if (waited > LOCK_WAIT_MS)
			return fail("%s: a server (pid %ld) holds the store but "
			    "does not answer on control.sock", home,
			    info.holder_pid);
		usleep(50000);
	}
	/* From here the whole command is bounded, recovery included. */
	if (o.timeout > 0) {
		signal(SIGALRM, on_alarm);
		alarm(o.timeout);
	}
	if (strcmp(o.c->name, "recover") == 0 || info.dirty) {
		/* The lock's last holder died with the store open (the lock
		 * is free only once its memory is gone): nobody else has the
		 * environment, a full recovery is safe. */
		if (store_recover(home, RECOVER_MS, err, sizeof(err)) !=
		    STORE_OK) {
			ret = fail("%s", err);
			goto out;
		}
		if (info.dirty)
			fprintf(stderr, PROG ": recovered %s after process %ld "
			    "died with it open\n", home, info.holder_pid);
		if (strcmp(o.c->name, "recover") == 0) {
			clean = 1;
			ret = 0;
			goto out;
		}
	}
	bdb = so;
	bdb.backend = STORE_BACKEND_BDB;
	bdb.home = home;
	if (is_migrate)
		ret = migrate(&bdb, &so, o.argv[0], &clean);
	else
		ret = open_run(&bdb, &o, 1, &clean);
out:
	alarm(0);
	store_lock_release(lock, clean);
	return ret;
}
