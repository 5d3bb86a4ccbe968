/*
 * store/redis.c - the Redis backend's connection: where Redis is
 * (BM_REDIS_URL, or Sentinel), a timeout on the connect and on every
 * command, reconnection after any error, failover following, scripts loaded
 * once and run by EVALSHA, and MULTI/EXEC batches.  While Redis cannot be
 * reached every call fails with STORE_ERROR (the server answers 503) and
 * nothing is half-written: every change is one script or one EXEC.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "store/redis_int.h"

#define RD_TIMEOUT_MS 2000
#define RD_SENTINELS_MAX 16
/* How often, at most, Sentinel is asked again whether the connection still
 * goes to the master (one round trip a second per process). */
#define RD_CONFIRM_MS 1000

/* What rd_send()'s *retry says about a failed command. */
enum {
	RD_FINAL = 0,   /* not worth another try */
	RD_UNKNOWN,     /* the connection failed: it may have run */
	RD_REFUSED      /* refused by a server that is not the master now:
			 * it did not run, another try is safe */
};

struct store__redis {
	redisContext *c;
	char *host, *path;   /* redis://host:port or unix:path */
	int port, db;
	char *sent[RD_SENTINELS_MAX]; /* Sentinel host:port */
	size_t nsent;
	char *master;        /* the master's name for Sentinel */
	char *chost;         /* the address Sentinel gave for c, */
	int cport;           /* and its port */
	long long confirmed; /* when Sentinel last named it (ms, monotonic) */
	int js;              /* pairs in js-redis-key-store's keys */
	char hostname[256];  /* leases' host */
	unsigned timeout_ms;
	char sha[RD_SCRIPT__MAX][41]; /* "" until loaded on this server */
};

static void
rd_fail(struct store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rd_fail(struct store *s, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	n = (size_t)snprintf(s->err, sizeof(s->err), "redis: ");
	va_start(ap, fmt);
	vsnprintf(s->err + n, sizeof(s->err) - n, fmt, ap);
	va_end(ap);
}

void
store__rd_init(struct store__rd_args *a)
{
	a->n = 0;
}

void
store__rd_add(struct store__rd_args *a, const void *p, size_t len)
{
	/* Callers build at most STORE__RD_ARGS_MAX: a programmer's error. */
	if (a->n >= STORE__RD_ARGS_MAX)
		abort();
	a->v[a->n] = p;
	a->l[a->n] = len;
	a->n++;
}

void
store__rd_str(struct store__rd_args *a, const char *p)
{
	store__rd_add(a, p, strlen(p));
}

void
store__rd_int(struct store__rd_args *a, long long v)
{
	int i = a->n;

	if (i >= STORE__RD_ARGS_MAX)
		abort();
	snprintf(a->num[i], sizeof(a->num[i]), "%lld", v);
	store__rd_add(a, a->num[i], strlen(a->num[i]));
}

const char *
store__rd_host(const struct store *s)
{
	return s->rd->hostname;
}

int
store__rd_js(const struct store *s)
{
	return s->rd->js;
}

void
store__rd_key(char *buf, size_t size, const char *prefix, const char *hash)
{
	snprintf(buf, size, "%s%s", prefix, hash);
}

static void
rd_drop(struct store *s)
{
	size_t i;

	if (s->rd->c != NULL)
		redisFree(s->rd->c);
	s->rd->c = NULL;
	for (i = 0; i < RD_SCRIPT__MAX; i++)
		s->rd->sha[i][0] = '\0';
}

static struct timeval
rd_tv(const struct store__redis *r)
{
	struct timeval tv;

	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
	return tv;
}

/* A connection to host:port or path, with both timeouts set; NULL + err. */
static redisContext *
rd_connect_to(struct store *s, const char *host, int port, const char *path)
{
	struct timeval tv = rd_tv(s->rd);
	redisContext *c;

	c = path != NULL ? redisConnectUnixWithTimeout(path, tv) :
	    redisConnectWithTimeout(host, port, tv);
	if (c == NULL) {
		rd_fail(s, "connecting: %s", strerror(ENOMEM));
		return NULL;
	}
	if (c->err) {
		if (path != NULL)
			rd_fail(s, "connecting to %s: %s", path, c->errstr);
		else
			rd_fail(s, "connecting to %s:%d: %s", host, port,
			    c->errstr);
		redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		rd_fail(s, "setting the timeout: %s", c->errstr);
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Splits "host:port" into host (new) and port; -1 if malformed. */
static int
rd_hostport(const char *hp, char **host, int *port)
{
	const char *colon = strrchr(hp, ':');
	char *end;
	long p;

	*host = NULL;
	if (colon == NULL || colon == hp)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || p < 1 ||
	    p > 65535)
		return -1;
	if ((*host = strndup(hp, (size_t)(colon - hp))) == NULL)
		return -1;
	*port = (int)p;
	return 0;
}

/* Asks the Sentinels in turn for the master's address; 0 or -1 + err. */
static int
rd_sentinel(struct store *s, char **host, int *port)
{
	struct store__redis *r = s->rd;
	redisContext *c = NULL;
	redisReply *rep = NULL;
	char *shost = NULL;
	size_t i;
	int sport, rc = -1;
	long p;

	*host = NULL;
	for (i = 0; i < r->nsent && rc != 0; i++) {
		free(shost);
		shost = NULL;
		if (rd_hostport(r->sent[i], &shost, &sport) < 0)
			continue;
		if ((c = rd_connect_to(s, shost, sport, NULL)) == NULL)
			continue;
		rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
		    r->master);
		if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
		    rep->elements == 2 &&
		    rep->element[0]->type == REDIS_REPLY_STRING &&
		    rep->element[1]->type == REDIS_REPLY_STRING) {
			p = strtol(rep->element[1]->str, NULL, 10);
			if (p > 0 && p < 65536 &&
			    (*host = strdup(rep->element[0]->str)) != NULL) {
				*port = (int)p;
				rc = 0;
			}
		} else
			rd_fail(s, "Sentinel %s knows no master %s",
			    r->sent[i], r->master);
		if (rep != NULL)
			freeReplyObject(rep);
		rep = NULL;
		redisFree(c);
		c = NULL;
	}
	free(shost);
	return rc;
}

static long long
rd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * With Sentinel, whether the connection still goes to the master Sentinel
 * names, asked at most every RD_CONFIRM_MS; the connection is dropped
 * when the name changed.  A planned failover (SENTINEL FAILOVER), or a
 * partition, leaves the old master running and taking writes until
 * Sentinel demotes it seconds later, and all it took meanwhile is lost
 * then: waiting for its READONLY is not enough.  Sentinels that cannot be
 * reached leave the connection as it is (they are needed to move, not to
 * write).
 */
static void
rd_confirm(struct store *s)
{
	struct store__redis *r = s->rd;
	char *host = NULL;
	int port = 0;
	long long now;

	if (r->nsent == 0 || r->c == NULL || r->chost == NULL)
		return;
	now = rd_now_ms();
	if (now - r->confirmed < RD_CONFIRM_MS)
		return;
	r->confirmed = now;
	if (rd_sentinel(s, &host, &port) < 0)
		return;
	if (port != r->cport || strcmp(host, r->chost) != 0)
		rd_drop(s);
	free(host);
}

/*
 * Connects (asking Sentinel first when configured) unless connected to
 * the master Sentinel still names (rd_confirm); STORE_OK or error.
 */
static int
rd_connect(struct store *s)
{
	struct store__redis *r = s->rd;
	redisReply *rep = NULL;
	char *host = NULL;
	int port = 0, rc = STORE_ERROR;

	if (r->c != NULL)
		rd_confirm(s);
	if (r->c != NULL)
		return STORE_OK;
	if (r->nsent > 0) {
		if (rd_sentinel(s, &host, &port) < 0)
			goto out;
		r->c = rd_connect_to(s, host, port, NULL);
	} else
		r->c = rd_connect_to(s, r->host, r->port, r->path);
	if (r->c == NULL)
		goto out;
	if (r->nsent > 0) {
		/* The Sentinels may lag a failover: only a master will do. */
		rep = redisCommand(r->c, "ROLE");
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
		    rep->elements < 1 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    strcmp(rep->element[0]->str, "master") != 0) {
			rd_fail(s, "%s:%d, given by Sentinel, is not a master",
			    host, port);
			goto out;
		}
		free(r->chost);
		r->chost = host;
		host = NULL;
		r->cport = port;
		r->confirmed = rd_now_ms();
	}
	if (r->db != 0) {
		if (rep != NULL)
			freeReplyObject(rep);
		rep = redisCommand(r->c, "SELECT %d", r->db);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			rd_fail(s, "SELECT %d: %s", r->db, rep != NULL ?
			    rep->str : r->c->errstr);
			goto out;
		}
	}
	rc = STORE_OK;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	if (rc != STORE_OK)
		rd_drop(s);
	free(host);
	return rc;
}

/*
 * Whether an error reply means "not the master now" (a failover, or an
 * operator's min-replicas-to-write fence: NOREPLICAS): the command was
 * refused before it ran.
 */
static int
rd_moved(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ERROR &&
	    (strncmp(rep->str, "READONLY", 8) == 0 ||
	    strncmp(rep->str, "LOADING", 7) == 0 ||
	    strncmp(rep->str, "MASTERDOWN", 10) == 0 ||
	    strncmp(rep->str, "NOREPLICAS", 10) == 0);
}

/* Whether a command that failed with retry (RD_*) may be sent again. */
static int
rd_again(int retry, int idem)
{
	/* After a lost connection the command may have run: only an
	 * idempotent one is sent twice. */
	return retry == RD_REFUSED || (retry == RD_UNKNOWN && idem);
}

/*
 * One round trip: *out the reply (error replies included), or NULL with
 * the connection dropped and the message set.  *retry (RD_*) says whether
 * another try on a new connection is worth it, and whether the command
 * may have run.
 */
static int
rd_send(struct store *s, const char *what, int argc, const char **argv,
    const size_t *lens, redisReply **out, int *retry)
{
	redisReply *rep;

	*out = NULL;
	*retry = RD_FINAL;
	if (rd_connect(s) != STORE_OK) {
		/* connecting failed: another try now would too */
		return STORE_ERROR;
	}
	rep = redisCommandArgv(s->rd->c, argc, argv, lens);
	if (rep == NULL) {
		rd_fail(s, "%s: %s", what, s->rd->c->errstr[0] != '\0' ?
		    s->rd->c->errstr : "no answer");
		rd_drop(s);
		*retry = RD_UNKNOWN;
		return STORE_ERROR;
	}
	if (rd_moved(rep)) {
		rd_fail(s, "%s: %s", what, rep->str);
		freeReplyObject(rep);
		rd_drop(s);
		*retry = RD_REFUSED;
		return STORE_ERROR;
	}
	*out = rep;
	return STORE_OK;
}

int
store__rd_cmd(struct store *s, const char *what, int idem,
    struct store__rd_args *a, redisReply **out)
{
	redisReply *rep = NULL;
	int rc, retry, tries = 0;

	*out = NULL;
	do {
		rc = rd_send(s, what, a->n, a->v, a->l, &rep, &retry);
	} while (rc != STORE_OK && rd_again(retry, idem) && ++tries < 2);
	if (rc != STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_ERROR) {
		rd_fail(s, "%s: %s", what, rep->str);
		freeReplyObject(rep);
		return STORE_ERROR;
	}
	*out = rep;
	return STORE_OK;
}

/* Loads script id on the current connection. */
static int
rd_load(struct store *s, enum store__rd_script id)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "SCRIPT");
	store__rd_str(&a, "LOAD");
	store__rd_str(&a, store__rd_script_text[id]);
	if ((rc = store__rd_cmd(s, "loading a script", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		rd_fail(s, "loading a script: unexpected answer");
		rc = STORE_ERROR;
	} else
		memcpy(s->rd->sha[id], rep->str, 41);
	freeReplyObject(rep);
	return rc;
}

int
store__rd_eval(struct store *s, const char *what, int idem,
    enum store__rd_script id, int nkeys, struct store__rd_args *a,
    redisReply **out)
{
	const char *argv[STORE__RD_ARGS_MAX + 3];
	size_t lens[STORE__RD_ARGS_MAX + 3];
	char nk[16];
	redisReply *rep = NULL;
	int rc, retry, tries = 0, i;

	*out = NULL;
	for (;;) {
		if (rd_connect(s) != STORE_OK)
			return STORE_ERROR;
		if (s->rd->sha[id][0] == '\0' &&
		    (rc = rd_load(s, id)) != STORE_OK) {
			if (s->rd->c == NULL && idem && ++tries < 2)
				continue;
			return rc;
		}
		snprintf(nk, sizeof(nk), "%d", nkeys);
		argv[0] = "EVALSHA";
		lens[0] = 7;
		argv[1] = s->rd->sha[id];
		lens[1] = 40;
		argv[2] = nk;
		lens[2] = strlen(nk);
		for (i = 0; i < a->n; i++) {
			argv[3 + i] = a->v[i];
			lens[3 + i] = a->l[i];
		}
		rc = rd_send(s, what, a->n + 3, argv, lens, &rep, &retry);
		if (rc != STORE_OK) {
			if (rd_again(retry, idem) && ++tries < 2)
				continue;
			return rc;
		}
		if (rep->type == REDIS_REPLY_ERROR &&
		    strncmp(rep->str, "NOSCRIPT", 8) == 0 && ++tries < 3) {
			/* Flushed (a restart, a failover): load it again. */
			freeReplyObject(rep);
			s->rd->sha[id][0] = '\0';
			continue;
		}
		break;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		rd_fail(s, "%s: %s", what, rep->str);
		freeReplyObject(rep);
		return STORE_ERROR;
	}
	*out = rep;
	return STORE_OK;
}

/* --- MULTI/EXEC batches ------------------------------------------------ */

void
store__rd_batch_init(struct store__rd_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void
store__rd_batch_free(struct store__rd_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		free(b->argv[i]);
		free(b->argvlen[i]);
	}
	for (i = 0; i < b->nowned; i++)
		free(b->owned[i]);
	free(b->argc);
	free(b->argv);
	free(b->argvlen);
	free(b->owned);
	memset(b, 0, sizeof(*b));
}

static int
rd_own(struct store__rd_batch *b, void *p)
{
	void **o;

	if (b->nowned == b->capowned) {
		o = realloc(b->owned, (b->capowned * 2 + 16) * sizeof(*o));
		if (o == NULL)
			return -1;
		b->owned = o;
		b->capowned = b->capowned * 2 + 16;
	}
	b->owned[b->nowned++] = p;
	return 0;
}

int
store__rd_batch_add(struct store__rd_batch *b, int id, int nkeys,
    const struct store__rd_args *a)
{
	const char **argv = NULL;
	size_t *lens = NULL, cap, j = 0;
	char *copy = NULL, nk[16];
	int i;
	void *p;

	if (b->n == b->cap) {
		cap = b->cap * 2 + 16;
		if ((p = realloc(b->argc, cap * sizeof(*b->argc))) == NULL)
			return -1;
		b->argc = p;
		if ((p = realloc(b->argv, cap * sizeof(*b->argv))) == NULL)
			return -1;
		b->argv = p;
		if ((p = realloc(b->argvlen, cap * sizeof(*b->argvlen))) ==
		    NULL)
			return -1;
		b->argvlen = p;
		b->cap = cap;
	}
	if ((argv = calloc((size_t)a->n + 3, sizeof(*argv))) == NULL ||
	    (lens = calloc((size_t)a->n + 3, sizeof(*lens))) == NULL)
		goto fail;
	if (id >= 0 && id < RD_SCRIPT__MAX) {
		snprintf(nk, sizeof(nk), "%d", nkeys);
		if ((copy = strdup(nk)) == NULL || rd_own(b, copy) < 0) {
			free(copy);
			goto fail;
		}
		argv[j] = "EVAL";
		lens[j++] = 4;
		argv[j] = store__rd_script_text[id];
		lens[j++] = strlen(store__rd_script_text[id]);
		argv[j] = copy;
		lens[j++] = strlen(copy);
	}
	for (i = 0; i < a->n; i++, j++) {
		/* Arguments are copied: the caller's buffers may go. */
		if ((copy = malloc(a->l[i] + 1)) == NULL ||
		    rd_own(b, copy) < 0) {
			free(copy);
			goto fail;
		}
		memcpy(copy, a->v[i], a->l[i]);
		argv[j] = copy;
		lens[j] = a->l[i];
	}
	b->argc[b->n] = (int)j;
	b->argv[b->n] = argv;
	b->argvlen[b->n] = lens;
	b->n++;
	return 0;
fail:
	free(argv);
	free(lens);
	return -1;
}

int
store__rd_exec(struct store *s, const char *what, const char *watch,
    store__rd_check_fn check, void *arg, struct store__rd_batch *b,
    redisReply **out)
{
	return store__rd_exec_bin(s, what, watch, watch != NULL ?
	    strlen(watch) : 0, check, arg, b, out);
}

int
store__rd_exec_bin(struct store *s, const char *what, const char *watch,
    size_t wlen, store__rd_check_fn check, void *arg,
    struct store__rd_batch *b, redisReply **out)
{
	const char *wargv[2];
	size_t wlens[2];
	redisContext *c;
	redisReply *rep = NULL;
	unsigned tries = 0, moves = 0;
	size_t i;
	int crc, moved;

	*out = NULL;
again:
	moved = 0;
	if (rd_connect(s) != STORE_OK)
		return STORE_ERROR;
	c = s->rd->c;
	if (watch != NULL) {
		wargv[0] = "WATCH";
		wlens[0] = 5;
		wargv[1] = watch;
		wlens[1] = wlen;
		rep = redisCommandArgv(c, 2, wargv, wlens);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			goto ioerr;
		freeReplyObject(rep);
		rep = NULL;
	}
	if (check != NULL) {
		crc = check(s, arg);
		if (s->rd->c != c) {
			/* The connection, and the WATCH with it, was lost
			 * (and perhaps made again) meanwhile. */
			if (s->rd->c == NULL || ++tries > s->retries)
				return crc != STORE_OK ? crc : STORE_ERROR;
			goto again;
		}
		if (crc != STORE_OK) {
			if ((rep = redisCommand(c, "UNWATCH")) != NULL)
				freeReplyObject(rep);
			rep = NULL;
			return crc;
		}
	}
	/* Pipelined: MULTI, the commands, EXEC, then every answer. */
	if (redisAppendCommand(c, "MULTI") != REDIS_OK)
		goto ioerr;
	for (i = 0; i < b->n; i++)
		if (redisAppendCommandArgv(c, b->argc[i], b->argv[i],
		    b->argvlen[i]) != REDIS_OK)
			goto ioerr;
	if (redisAppendCommand(c, "EXEC") != REDIS_OK)
		goto ioerr;
	for (i = 0; i < b->n + 1; i++) {
		if (redisGetReply(c, (void **)&rep) != REDIS_OK || rep == NULL)
			goto ioerr;
		if (rep->type == REDIS_REPLY_ERROR) {
			/* Refused while queueing: EXEC will discard all. */
			rd_fail(s, "%s: %s", what, rep->str);
			moved |= rd_moved(rep);
		}
		freeReplyObject(rep);
		rep = NULL;
	}
	if (redisGetReply(c, (void **)&rep) != REDIS_OK || rep == NULL)
		goto ioerr;
	if (rep->type == REDIS_REPLY_NIL && watch != NULL) {
		/* The watched key changed: nothing was applied. */
		freeReplyObject(rep);
		rep = NULL;
		if (++tries <= s->retries)
			goto again;
		rd_fail(s, "%s: busy, gave up after %u tries", what, tries);
		return STORE_ERROR;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		if (!moved)
			rd_fail(s, "%s: %s", what, rep->str);
		moved |= rd_moved(rep);
		freeReplyObject(rep);
		rep = NULL;
		if (moved) {
			/* Not the master now, and nothing was applied: once
			 * more on the master Sentinel names now. */
			rd_drop(s);
			if (++moves < 2)
				goto again;
		}
		return STORE_ERROR;
	}
	if (rep->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(rep);
		rd_fail(s, "%s: unexpected answer to EXEC", what);
		return STORE_ERROR;
	}
	for (i = 0; i < rep->elements; i++)
		if (rep->element[i]->type == REDIS_REPLY_ERROR) {
			/* A script failed at run time (a bug of ours, or a
			 * write refused by a replica): the commands before
			 * it did run, so it is not tried again. */
			rd_fail(s, "%s: %s", what, rep->element[i]->str);
			if (rd_moved(rep->element[i]))
				rd_drop(s);
			freeReplyObject(rep);
			return STORE_ERROR;
		}
	*out = rep;
	return STORE_OK;
ioerr:
	if (rep != NULL) {
		if (rep->type == REDIS_REPLY_ERROR)
			rd_fail(s, "%s: %s", what, rep->str);
		freeReplyObject(rep);
	} else
		rd_fail(s, "%s: %s", what, c->errstr[0] != '\0' ? c->errstr :
		    "no answer");
	rd_drop(s);
	return STORE_ERROR;
}

/* --- open and close ---------------------------------------------------- */

/* Parses BM_REDIS_URL into r; -1 with err. */
static int
rd_parse_url(struct store__redis *r, const char *url, char *err,
    size_t errlen)
{
	const char *p, *slash;
	char *hp = NULL, *end;
	long db = 0;
	int rc = -1;

	if (strncmp(url, "unix:", 5) == 0) {
		p = url + 5;
		if (strncmp(p, "//", 2) == 0)
			p += 2;
		if (p[0] != '/') {
			snprintf(err, errlen, "BM_REDIS_URL: unix: needs an "
			    "absolute path");
			return -1;
		}
		if ((r->path = strdup(p)) == NULL)
			goto nomem;
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		snprintf(err, errlen, "BM_REDIS_URL: expected "
		    "redis://host:port[/db] or unix:/path");
		return -1;
	}
	p = url + 8;
	if ((slash = strchr(p, '/')) != NULL) {
		errno = 0;
		db = strtol(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == slash + 1 || db < 0 ||
		    db > 1000000) {
			snprintf(err, errlen, "BM_REDIS_URL: bad database "
			    "number");
			return -1;
		}
	}
	if ((hp = strndup(p, slash != NULL ? (size_t)(slash - p) :
	    strlen(p))) == NULL)
		goto nomem;
	if (strchr(hp, '@') != NULL) {
		/* A password in the URL would be logged with it. */
		snprintf(err, errlen, "BM_REDIS_URL: credentials in the URL "
		    "are not supported");
		goto out;
	}
	if (strchr(hp, ':') == NULL) {
		r->host = hp;
		hp = NULL;
		r->port = 6379;
	} else if (rd_hostport(hp, &r->host, &r->port) < 0) {
		snprintf(err, errlen, "BM_REDIS_URL: expected host:port");
		goto out;
	}
	if (r->host[0] == '\0') {
		snprintf(err, errlen, "BM_REDIS_URL: no host");
		goto out;
	}
	r->db = (int)db;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "BM_REDIS_URL: %s", strerror(ENOMEM));
out:
	free(hp);
	return rc;
}

static int
rd_parse_sentinels(struct store__redis *r, const char *list,
    const char *master, char *err, size_t errlen)
{
	const char *p = list, *comma;
	char *one, *h;
	int port;

	while (*p != '\0') {
		comma = strchr(p, ',');
		one = strndup(p, comma != NULL ? (size_t)(comma - p) :
		    strlen(p));
		if (one == NULL || rd_hostport(one, &h, &port) < 0 ||
		    r->nsent == RD_SENTINELS_MAX) {
			free(one);
			snprintf(err, errlen, "BM_REDIS_SENTINELS: expected "
			    "host:port,... (at most %d)", RD_SENTINELS_MAX);
			return -1;
		}
		free(h);
		r->sent[r->nsent++] = one;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (r->nsent == 0 || master == NULL || master[0] == '\0') {
		snprintf(err, errlen, "BM_REDIS_SENTINELS: needs addresses and "
		    "BM_REDIS_MASTER");
		return -1;
	}
	if ((r->master = strdup(master)) == NULL) {
		snprintf(err, errlen, "BM_REDIS_MASTER: %s", strerror(ENOMEM));
		return -1;
	}
	return 0;
}

/*
 * A key kept in Redis under name (SET NX of 32 random bytes by the first
 * opener, then GET): every host gets the same.  STORE_OK or an error.
 */
static int
rd_shared_key(struct store *s, const char *name,
    unsigned char key[STORE__KEY_BYTES])
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char fresh[STORE__KEY_BYTES];
	int rc;

	if (store__crypto_random(fresh, sizeof(fresh)) < 0) {
		rd_fail(s, "getrandom: %s", strerror(errno));
		return STORE_ERROR;
	}
	store__rd_init(&a);
	store__rd_str(&a, "SET");
	store__rd_str(&a, name);
	store__rd_add(&a, fresh, sizeof(fresh));
	store__rd_str(&a, "NX");
	rc = store__rd_cmd(s, "creating a key", 1, &a, &rep);
	store__crypto_wipe(fresh, sizeof(fresh));
	if (rep != NULL)
		freeReplyObject(rep);
	rep = NULL;
	if (rc != STORE_OK)
		return rc;
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_str(&a, name);
	if ((rc = store__rd_cmd(s, "reading a key", 1, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING || rep->len != STORE__KEY_BYTES) {
		rd_fail(s, "%s is not a 32-byte key", name);
		rc = STORE_ERROR;
	} else
		memcpy(key, rep->str, STORE__KEY_BYTES);
	freeReplyObject(rep);
	return rc;
}

static int
rd_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	if (s->rd != NULL) {
		rd_drop(s);
		free(s->rd->host);
		free(s->rd->path);
		for (i = 0; i < s->rd->nsent; i++)
			free(s->rd->sent[i]);
		free(s->rd->master);
		free(s->rd->chost);
		free(s->rd);
	}
	store__crypto_clear(s);
	free(s->home);
	free(s);
	return 0;
}

int
store__redis_open(struct store **out, const struct store_opts *o, char *err,
    size_t errlen)
{
	struct store *s = NULL;
	int rc = STORE_EINVAL;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->rd = calloc(1, sizeof(*s->rd))) == NULL) {
		snprintf(err, errlen, "redis: %s", strerror(ENOMEM));
		rc = STORE_ERROR;
		goto out;
	}
	s->ops = &store__redis_ops;
	s->retries = o->retries > 0 ? o->retries : 20;
	s->rd->js = o->redis_js_keys;
	if (gethostname(s->rd->hostname, sizeof(s->rd->hostname) - 1) != 0)
		snprintf(s->rd->hostname, sizeof(s->rd->hostname), "localhost");
	s->rd->timeout_ms = o->redis_timeout_ms > 0 ? o->redis_timeout_ms :
	    RD_TIMEOUT_MS;
	if (o->redis_sentinels != NULL) {
		if (rd_parse_sentinels(s->rd, o->redis_sentinels,
		    o->redis_master, err, errlen) < 0)
			goto out;
	} else if (o->redis_url == NULL) {
		snprintf(err, errlen, "BM_STORE=redis: BM_REDIS_URL or "
		    "BM_REDIS_SENTINELS is required");
		goto out;
	} else if (rd_parse_url(s->rd, o->redis_url, err, errlen) < 0)
		goto out;
	if (o->home != NULL && o->home[0] != '\0' &&
	    (s->home = strdup(o->home)) == NULL) {
		snprintf(err, errlen, "redis: %s", strerror(ENOMEM));
		rc = STORE_ERROR;
		goto out;
	}
	rc = STORE_ERROR;
	/*
	 * The hash key every host must share lives in Redis (SET NX by the
	 * first opener); the sealing key never does: it is BM_SECRET_KEY_FILE,
	 * the same file on every host (store_open refused a Redis store
	 * without one), so a dump of Redis holds nothing it could open.
	 */
	if (rd_shared_key(s, "bm:hashkey", s->hkey) != STORE_OK) {
		snprintf(err, errlen, "%s", s->err);
		goto out;
	}
	if (store__crypto_init(s, STORE__KEYS_HASH, o->key_file, err,
	    errlen) < 0)
		goto out;
	*out = s;
	s = NULL;
	rc = STORE_OK;
out:
	rd_close(s);
	return rc;
}

const struct store_ops store__redis_ops = {
	.name = "redis",
	.close = rd_close,
	.ids_save = store__rd_ids_save,
	.ext_id_get = store__rd_ext_id_get,
	.botmatic_id_get = store__rd_botmatic_id_get,
	.ids_delete = store__rd_ids_delete,
	.ids_delete_all = store__rd_ids_delete_all,
	.ids_foreach = store__rd_ids_foreach,
	.install_record = store__rd_install_record,
	.install_get = store__rd_install_get,
	.install_get_by_id = store__rd_install_get_by_id,
	.install_settings_update = store__rd_install_settings_update,
	.install_put = store__rd_install_put,
	.install_delete = store__rd_install_delete,
	.install_foreach = store__rd_install_foreach,
	.state_get = store__rd_state_get,
	.state_set = store__rd_state_set,
	.state_delete = store__rd_state_delete,
	.delivery_claim = store__rd_delivery_claim,
	.delivery_release = store__rd_delivery_release,
	.job_add = store__rd_job_add,
	.delivery_accept = store__rd_delivery_accept,
	.job_claim = store__rd_job_claim,
	.job_done = store__rd_job_done,
	.job_retry = store__rd_job_retry,
	.job_renew = store__rd_job_renew,
	.job_get = store__rd_job_get,
	.job_foreach = store__rd_job_foreach,
	.job_revive = store__rd_job_revive,
	.jobs_revive_dead = store__rd_jobs_revive_dead,
	.jobs_release = store__rd_jobs_release,
	.jobs_stats = store__rd_jobs_stats,
	.job_cancel = store__rd_job_cancel,
	.jobs_cancel = store__rd_jobs_cancel,
	.purge_step = store__rd_purge_step,
	.service_put = store__rd_service_put,
	.service_get = store__rd_service_get,
	.service_lease = store__rd_service_lease,
	.service_refreshed = store__rd_service_refreshed,
	.service_lease_end = store__rd_service_lease_end,
	.service_delete = store__rd_service_delete,
	.service_foreach = store__rd_service_foreach,
	.oauth_link_create = store__rd_oauth_link_create,
	.oauth_link_take = store__rd_oauth_link_take,
	.oauth_state_take = store__rd_oauth_state_take,
	.rekey = store__rd_rekey,
	.export = store__rd_export,
	.apply = store__rd_apply,
	.verify = store__rd_verify,
};
