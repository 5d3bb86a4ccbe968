/*
 * tests/store/test-redis.c - what only the Redis backend has: it starts a
 * redis-server of its own (a free loopback port, a temp dir, AOF with
 * fsync always), stopped by its pid, and checks the js-redis-key-store
 * layout (read with hiredis), that no key holds a token, delete-all in
 * bounded steps (commands per step counted by Redis), an unreachable Redis
 * (the error, nothing written), reconnection after a restart, scripts
 * reloaded after SCRIPT FLUSH, a dead holder's job released and taken
 * over, the delivery queue's ready stream and consumer group (the PEL,
 * XAUTOCLAIM of a killed consumer's job, renewal, nothing left behind),
 * delivery claims expired by Redis, and with a replica and a Sentinel: a
 * failover followed, a planned failover (the old master left running)
 * followed by the handle's own check with no acknowledged save lost after
 * its move, and NOREPLICAS.  Without redis-server it is
 * skipped.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "store/cli-migrate.h"
#include "store/store.h"
#include "tests/tap.h"

#define T0 1700000000000LL

struct server {
	char dir[600];
	char url[64];
	int port;
	pid_t pid;
};

static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static redisContext *
raw(const struct server *sv)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", sv->port, tv);

	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/*
 * Starts redis-server on sv (dir and port already chosen), a replica of
 * port replicaof when it is not 0, or a Sentinel reading the file
 * sentinel when that is not NULL, or (replicaof -1) a master that nobody
 * can demote: REPLICAOF and SLAVEOF renamed, so Sentinel's attempts fail
 * and it keeps taking writes after a failover; 0 or -1.
 */
static int
server_start_as(struct server *sv, int replicaof, const char *sentinel)
{
	char port[16], log[600], master[16];
	redisContext *c;
	redisReply *r;
	int i;

	snprintf(port, sizeof(port), "%d", sv->port);
	snprintf(master, sizeof(master), "%d", replicaof);
	snprintf(log, sizeof(log), "%.500s/redis.log", sv->dir);
	fflush(stdout);
	if ((sv->pid = fork()) == 0) {
		/* Gone with the test, even when it crashes. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (sentinel != NULL)
			execlp("redis-server", "redis-server", sentinel,
			    "--sentinel", (char *)NULL);
		else if (replicaof == -1)
			execlp("redis-server", "redis-server", "--port", port,
			    "--bind", "127.0.0.1", "--dir", sv->dir, "--save",
			    "", "--appendonly", "yes", "--appendfsync",
			    "always", "--daemonize", "no", "--logfile", log,
			    "--rename-command", "REPLICAOF", "bm-test-replicaof",
			    "--rename-command", "SLAVEOF", "bm-test-slaveof",
			    (char *)NULL);
		else if (replicaof != 0)
			execlp("redis-server", "redis-server", "--port", port,
			    "--bind", "127.0.0.1", "--dir", sv->dir, "--save",
			    "", "--appendonly", "yes", "--appendfsync",
			    "always", "--daemonize", "no", "--logfile", log,
			    "--replicaof", "127.0.0.1", master, (char *)NULL);
		else
			execlp("redis-server", "redis-server", "--port", port,
			    "--bind", "127.0.0.1", "--dir", sv->dir, "--save",
			    "", "--appendonly", "yes", "--appendfsync",
			    "always", "--daemonize", "no", "--logfile", log,
			    (char *)NULL);
		_exit(127);
	}
	if (sv->pid < 0)
		return -1;
	/* Ready when it answers PING (bounded, not a timing). */
	for (i = 0; i < 300; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		if ((c = raw(sv)) != NULL) {
			r = redisCommand(c, "PING");
			if (r != NULL && r->type == REDIS_REPLY_STATUS) {
				freeReplyObject(r);
				redisFree(c);
				return 0;
			}
			if (r != NULL)
				freeReplyObject(r);
			redisFree(c);
		}
		if (waitpid(sv->pid, NULL, WNOHANG) == sv->pid) {
			sv->pid = 0;
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return -1;
}

static int
server_start(struct server *sv)
{
	return server_start_as(sv, 0, NULL);
}

static void
server_stop(struct server *sv)
{
	if (sv->pid > 0) {
		kill(sv->pid, SIGTERM);
		waitpid(sv->pid, NULL, 0);
	}
	sv->pid = 0;
}

/* The sealing key file every open is given: required on Redis. */
static char seal_key[700];

static struct store *
open_redis(struct tap *t, const struct server *sv, const char *home,
    int js)
{
	struct store_opts o = { .home = home, .backend = STORE_BACKEND_REDIS,
	    .redis_url = sv->url, .redis_js_keys = js,
	    .redis_timeout_ms = 5000, .key_file = seal_key };
	struct store *s = NULL;
	char err[512];

	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		tap_diag("open: %s", err);
		tap_ok(t, 0, "open %s", sv->url);
		return NULL;
	}
	return s;
}

/* GET key with hiredis: new string or NULL. */
static char *
raw_get(const struct server *sv, const char *key)
{
	redisContext *c = raw(sv);
	redisReply *r;
	char *v = NULL;

	if (c == NULL)
		return NULL;
	r = redisCommand(c, "GET %s", key);
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		v = strdup(r->str);
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return v;
}

static long long
raw_int(const struct server *sv, const char *cmd)
{
	redisContext *c = raw(sv);
	redisReply *r;
	long long v = -1;

	if (c == NULL)
		return -1;
	r = redisCommand(c, cmd);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return v;
}

/* Redis's count of commands processed so far (INFO stats). */
static long long
commands(const struct server *sv)
{
	redisContext *c = raw(sv);
	redisReply *r;
	const char *p;
	long long v = -1;

	if (c == NULL)
		return -1;
	r = redisCommand(c, "INFO stats");
	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (p = strstr(r->str, "total_commands_processed:")) != NULL)
		v = strtoll(p + 25, NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return v;
}

static int
ext_is(struct store *s, const char *integ, const char *bid, const char *want)
{
	char *v = NULL;
	int rc = store_ext_id_get(s, integ, bid, &v), ok;

	ok = want == NULL ? rc == STORE_NOTFOUND : rc == STORE_OK &&
	    strcmp(v, want) == 0;
	free(v);
	return ok;
}

static void
test_js_layout(struct tap *t, const struct server *sv, const char *home)
{
	struct store *s = open_redis(t, sv, home, 1);
	char *v1, *v2, *v3;
	size_t n = 0, problems = 9;
	int rc;
	redisContext *c;
	redisReply *r;

	if (s == NULL)
		return;
	tap_ok(t, store_ids_save(s, "tokJ", "b1", "e1") == STORE_OK,
	    "js layout: save");
	v1 = raw_get(sv, "tokJ:b:b1");
	v2 = raw_get(sv, "tokJ:e:e1");
	tap_ok(t, v1 != NULL && strcmp(v1, "e1") == 0 && v2 != NULL &&
	    strcmp(v2, "b1") == 0, "the Node library's keys: "
	    "<integration>:b:<bid> -> eid and <integration>:e:<eid> -> bid");
	free(v1);
	free(v2);
	store_ids_save(s, "tokJ", "b1", "e2");
	v1 = raw_get(sv, "tokJ:e:e1");
	v2 = raw_get(sv, "tokJ:e:e2");
	tap_ok(t, v1 == NULL && v2 != NULL && strcmp(v2, "b1") == 0,
	    "a relink removes the stale reverse key in the same script");
	free(v1);
	free(v2);
	/* A pair written by the Node library is read by the server. */
	if ((c = raw(sv)) != NULL) {
		r = redisCommand(c, "MSET tokJ:b:nb ne tokJ:e:ne nb");
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
	}
	tap_ok(t, ext_is(s, "tokJ", "nb", "ne"), "a pair the Node library "
	    "wrote is found");
	{
		char b[16], e[16];
		int i, ok = 1;

		for (i = 0; i < 100 && ok; i++) {
			snprintf(b, sizeof(b), "b%d", i);
			snprintf(e, sizeof(e), "e%d", i);
			ok = store_ids_save(s, "tokM", b, e) == STORE_OK;
		}
		rc = store_ids_delete_all(s, "tokM", &n);
		tap_ok(t, ok && rc == STORE_OK && n == 100 &&
		    ext_is(s, "tokM", "b0", NULL) &&
		    ext_is(s, "tokM", "b99", NULL) &&
		    raw_get(sv, "tokM:e:e50") == NULL, "delete-all of 100 js "
		    "pairs: every key of both directions UNLINKed (%zu)", n);
	}
	/* Glob characters in a token are escaped in SCAN's pattern. */
	store_ids_save(s, "a*", "x", "y");
	store_ids_save(s, "ab", "x", "y");
	store_ids_save(s, "a[b]", "x", "y");
	rc = store_ids_delete_all(s, "a*", &n);
	tap_ok(t, rc == STORE_OK && n == 1 &&
	    ext_is(s, "a*", "x", NULL) && ext_is(s, "ab", "x", "y") &&
	    ext_is(s, "a[b]", "x", "y"), "delete-all of \"a*\" leaves \"ab\" "
	    "and \"a[b]\" alone (%zu)", n);
	tap_ok(t, store_verify(s, NULL, NULL, &problems) == STORE_OK &&
	    problems == 0, "verify on the js layout: consistent");
	if ((c = raw(sv)) != NULL) {
		r = redisCommand(c, "SET tokJ:b:half e9");
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
	}
	rc = store_verify(s, NULL, NULL, &problems);
	tap_ok(t, rc == STORE_OK &&
	    problems == 1, "verify finds a half-written pair (%zu)", problems);
	store_install_record(s, "tokJ", NULL, 0, NULL);
	rc = store_install_delete(s, "tokJ", &n);
	v1 = raw_get(sv, "tokJ:b:b1");
	v2 = raw_get(sv, "tokJ:e:ne");
	tap_ok(t, rc == STORE_OK && n == 3 && v1 == NULL && v2 == NULL &&
	    ext_is(s, "ab", "x", "y"), "uninstall deletes the integration's "
	    "js keys, in SCAN steps (%zu pairs)", n);
	free(v1);
	free(v2);
	v3 = raw_get(sv, "bm:hashkey");
	tap_ok(t, v3 != NULL, "the hash key is kept in Redis, shared by "
	    "every host");
	free(v3);
	store_close(s);
}

/* Whether any key name contains needle (a SCAN of everything). */
static int
key_holds(const struct server *sv, const char *needle)
{
	redisContext *c = raw(sv);
	redisReply *r;
	char cursor[32] = "0";
	size_t i;
	int found = 0;

	if (c == NULL)
		return -1;
	do {
		r = redisCommand(c, "SCAN %s COUNT 1000", cursor);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			found = -1;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++)
			if (strstr(r->element[1]->element[i]->str, needle) !=
			    NULL)
				found = 1;
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	redisFree(c);
	return found;
}

/* Files of dir holding needle: their count, -1 if dir cannot be read. */
static int
files_holding(const char *dir, const char *needle)
{
	char path[1200], *buf;
	struct stat st;
	struct dirent *e;
	FILE *f;
	DIR *d;
	long len;
	size_t nl = strlen(needle), i;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (f = fopen(path, "rb")) == NULL)
			continue;
		if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 &&
		    fseek(f, 0, SEEK_SET) == 0 &&
		    (buf = malloc((size_t)len)) != NULL) {
			if (fread(buf, 1, (size_t)len, f) == (size_t)len)
				for (i = 0; i + nl <= (size_t)len; i++)
					if (memcmp(buf + i, needle, nl) == 0) {
						n++;
						break;
					}
			free(buf);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

static void
test_own_layout(struct tap *t, const struct server *sv, const char *home)
{
	static const char tok[] = "secret-token-Zq81";
	struct store *s = open_redis(t, sv, home, 0);
	struct store_op ops[500];
	char b[500][16], e[500][16];
	long long c0, c1, most = 0;
	size_t n = 0, del, total = 0;
	int i, k, more = 1, steps = 0, ok = 1;

	if (s == NULL)
		return;
	tap_ok(t, store_install_record(s, tok, "{}", 2, NULL) == STORE_OK &&
	    store_ids_save(s, tok, "b1", "e1") == STORE_OK &&
	    store_state_set(s, tok, "n", "v", 1) == STORE_OK,
	    "an installation, a pair and state under a token");
	tap_ok(t, key_holds(sv, tok) == 0, "no key name holds the token");
	{
		char aof[700];

		snprintf(aof, sizeof(aof), "%.500s/appendonlydir", sv->dir);
		tap_ok(t, files_holding(aof, tok) == 0 &&
		    files_holding(aof, "bm:inst:") > 0, "Redis's append-only "
		    "file holds the records but not the token's bytes");
	}
	/* 5,000 pairs, then delete-all: gone at once, purged in steps. */
	for (k = 0; k < 10 && ok; k++) {
		for (i = 0; i < 500; i++) {
			snprintf(b[i], sizeof(b[i]), "b%d", k * 500 + i);
			snprintf(e[i], sizeof(e[i]), "e%d", k * 500 + i);
			memset(&ops[i], 0, sizeof(ops[i]));
			ops[i].kind = STORE_OP_IDS_SAVE;
			ops[i].a = "big";
			ops[i].b = b[i];
			ops[i].c = e[i];
		}
		ok = store_apply(s, ops, 500, NULL) == STORE_OK;
	}
	tap_ok(t, ok && ext_is(s, "big", "b4999", "e4999"), "5000 pairs in "
	    "batches");
	tap_ok(t, store_ids_delete_all(s, "big", &n) == STORE_OK && n == 5000 &&
	    ext_is(s, "big", "b0", NULL) && ext_is(s, "big", "b4999", NULL),
	    "delete-all: 5000 pairs forgotten at once for every reader");
	tap_ok(t, store_ids_save(s, "big", "b0", "new") == STORE_OK &&
	    ext_is(s, "big", "b0", "new"), "a save after it lands in a fresh "
	    "hash");
	while (more && steps < 1000) {
		c0 = commands(sv);
		if (store_purge_step(s, 500, &del, &more) != STORE_OK)
			break;
		c1 = commands(sv);
		if (c1 - c0 > most)
			most = c1 - c0;
		if (del > 500)
			ok = 0;
		total += del;
		steps++;
	}
	tap_ok(t, ok && !more && total == 10000 && steps >= 20,
	    "purged in bounded steps: %zu keys in %d steps of at most 500",
	    total, steps);
	/* The INFO call itself counts one. */
	tap_ok(t, most > 0 && most <= 64, "each step is a bounded number of "
	    "short commands (at most %lld): Redis never blocks on it", most);
	tap_ok(t, ext_is(s, "big", "b0", "new") &&
	    raw_int(sv, "LLEN bm:tombs") == 0, "the purge spared the new pair; "
	    "no tomb left");
	store_close(s);
}

static void
test_outage(struct tap *t, struct server *sv, const char *home)
{
	struct store *s = open_redis(t, sv, home, 0);
	struct store *s2 = NULL;
	struct store_opts o = { .home = home, .backend = STORE_BACKEND_REDIS,
	    .redis_url = sv->url, .redis_timeout_ms = 1000,
	    .key_file = seal_key };
	redisContext *c;
	redisReply *r;
	char err[512];
	int rc;

	if (s == NULL)
		return;
	store_ids_save(s, "tokO", "before", "x");
	server_stop(sv);
	rc = store_ids_save(s, "tokO", "during", "y");
	tap_ok(t, rc == STORE_ERROR && strstr(store_strerror(s), "redis") !=
	    NULL, "Redis unreachable: STORE_ERROR, said clearly (%s)",
	    store_strerror(s));
	rc = store_open(&s2, &o, err, sizeof(err));
	tap_ok(t, rc == STORE_ERROR && s2 == NULL && strstr(err, "127.0.0.1")
	    != NULL, "opening it fails with its address (%s)", err);
	if (server_start(sv) < 0) {
		tap_ok(t, 0, "redis-server restarted");
		store_close(s);
		return;
	}
	tap_ok(t, ext_is(s, "tokO", "before", "x"), "after a restart the "
	    "same handle reconnects; the acknowledged pair survived (AOF)");
	tap_ok(t, ext_is(s, "tokO", "during", NULL), "nothing of the failed "
	    "save was written");
	/* Scripts flushed (a restart without AOF, a failover): reloaded. */
	if ((c = raw(sv)) != NULL) {
		r = redisCommand(c, "SCRIPT FLUSH");
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
	}
	tap_ok(t, store_ids_save(s, "tokO", "after", "z") == STORE_OK &&
	    ext_is(s, "tokO", "after", "z"), "after SCRIPT FLUSH a save "
	    "loads its script again (NOSCRIPT handled)");
	store_close(s);
}

static int
alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

static void
test_takeover(struct tap *t, const struct server *sv, const char *home)
{
	struct store *s = open_redis(t, sv, home, 0);
	struct store_job_spec sp = { .integ = "tokQ", .kind = "k",
	    .contact = "c1", .payload = "{}", .now = T0 };
	struct store_job *j = NULL;
	uint64_t id = 0, id2 = 0;
	size_t n = 0;
	int status = 0, rc;
	pid_t pid;

	if (s == NULL)
		return;
	store_install_record(s, "tokQ", NULL, 0, NULL);
	store_job_add(s, &sp, &id, NULL);
	store_job_add(s, &sp, &id2, NULL);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct store *cs = open_redis(t, sv, home, 0);
		struct store_job *cj = NULL;

		if (cs == NULL || store_job_claim(cs, (uint32_t)getpid(), T0,
		    T0 + 60000, &cj) != STORE_OK || cj->id != id)
			_exit(1);
		/* The lease is in Redis: freeing memory (for valgrind's
		 * count) gives nothing back; the death does the rest. */
		store_job_free(cj);
		store_close(cs);
		store_close(s);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	waitpid(pid, &status, 0);
	tap_ok(t, WIFSIGNALED(status), "a consumer claimed the first job and "
	    "was killed holding it");
	tap_ok(t, store_job_claim(s, 7, T0 + 1000, T0 + 2000, &j) ==
	    STORE_NOTFOUND, "its lease holds the job, and the contact's next "
	    "waits behind it");
	rc = store_jobs_release(s, T0 + 1000, alive, &n);
	tap_ok(t, rc == STORE_OK && n == 1, "the dead holder's lease (this host, pid gone) is "
	    "released (%zu)", n);
	tap_ok(t, store_job_claim(s, 7, T0 + 1000, T0 + 2000, &j) ==
	    STORE_OK && j->id == id && j->lease_pid == 7 &&
	    strcmp(j->integ, "tokQ") == 0, "another consumer takes it over, "
	    "in contact order");
	store_job_free(j);
	j = NULL;
	tap_ok(t, store_job_done(s, id, NULL, 0, NULL, T0) == STORE_OK &&
	    store_job_claim(s, 8, T0 + 1000, T0 + 2000, &j) == STORE_OK &&
	    j->id == id2, "then the contact's second job");
	store_job_free(j);
	store_job_done(s, id2, NULL, 0, NULL, T0);
	store_close(s);
}

/* The id of the job claimed at now until `until` by pid (0 when none). */
static uint64_t
claim_id(struct store *s, uint32_t pid, int64_t now, int64_t until)
{
	struct store_job *j = NULL;
	uint64_t id = 0;

	if (store_job_claim(s, pid, now, until, &j) == STORE_OK)
		id = j->id;
	store_job_free(j);
	return id;
}

/* XPENDING's summary count for the ready stream (-1 on error). */
static long long
pel_count(redisContext *c)
{
	redisReply *r = redisCommand(c, "XPENDING bm:jready bm:jg");
	long long n = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER)
		n = r->element[0]->integer;
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* The only PEL entry's consumer (into who) and delivery count, or -1. */
static long long
pel_one(redisContext *c, char *who, size_t size)
{
	redisReply *r = redisCommand(c, "XPENDING bm:jready bm:jg - + 10");
	long long n = -1;

	*who = '\0';
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->elements == 4) {
		snprintf(who, size, "%s", r->element[0]->element[1]->str);
		n = r->element[0]->element[3]->integer;
	}
	if (r != NULL)
		freeReplyObject(r);
	return n;
}

/* Whether the group has a consumer of that name (XINFO CONSUMERS). */
static int
has_consumer(redisContext *c, const char *name)
{
	redisReply *r = redisCommand(c, "XINFO CONSUMERS bm:jready bm:jg");
	size_t i, k;
	int found = 0;

	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    i < r->elements; i++)
		for (k = 0; k + 1 < r->element[i]->elements; k += 2)
			if (strcmp(r->element[i]->element[k]->str, "name") ==
			    0 && strcmp(r->element[i]->element[k + 1]->str,
			    name) == 0)
				found = 1;
	if (r != NULL)
		freeReplyObject(r);
	return found;
}

/* Nothing in the ready stream nor in its group's PEL. */
static int
stream_empty(redisContext *c)
{
	redisReply *r = redisCommand(c, "XLEN bm:jready");
	int ok = r != NULL && r->type == REDIS_REPLY_INTEGER &&
	    r->integer == 0;

	if (r != NULL)
		freeReplyObject(r);
	return ok && pel_count(c) == 0;
}

/*
 * The ready stream and its consumer group: hand-out by XREADGROUP, the
 * PEL under host:pid, a killed holder's job taken over by XAUTOCLAIM (by
 * Redis's idle time alone: the claimer's clock says the lease still runs),
 * a renewal resetting the idle time, contact order across a retry, and no
 * entry left behind by done, retry or an uninstall.
 */
static void
test_stream(struct tap *t, const struct server *sv, const char *home)
{
	struct store *s = open_redis(t, sv, home, 0);
	struct store_job_spec sp = { .integ = "tokS", .kind = "k",
	    .contact = "s1", .payload = "{}", .now = T0 };
	redisContext *c = raw(sv);
	redisReply *r;
	char host[200], want[260], who[260], dead[260];
	uint64_t a = 0, b = 0, c3 = 0, c3b = 0, d1 = 0, d2 = 0, e[3] = { 0 };
	uint64_t got = 0;
	long long dc;
	int status = 0, i, ok;
	pid_t pid;

	if (s == NULL || c == NULL) {
		tap_ok(t, 0, "stream: a store and a raw connection");
		goto out;
	}
	memset(host, 0, sizeof(host));
	gethostname(host, sizeof(host) - 1);
	store_install_record(s, "tokS", NULL, 0, NULL);
	store_job_add(s, &sp, &a, NULL);
	sp.contact = "s2";
	store_job_add(s, &sp, &b, NULL);
	got = claim_id(s, 61, T0, T0 + 100);
	r = redisCommand(c, "XINFO GROUPS bm:jready");
	ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->elements >= 2 &&
	    strcmp(r->element[0]->element[1]->str, "bm:jg") == 0;
	if (r != NULL)
		freeReplyObject(r);
	tap_ok(t, got == a && ok, "a claim reads the ready stream bm:jready "
	    "through the consumer group bm:jg (XINFO GROUPS)");
	snprintf(want, sizeof(want), "%s:61", host);
	dc = pel_one(c, who, sizeof(who));
	tap_ok(t, dc == 1 && strcmp(who, want) == 0, "the claimed job is in "
	    "the group's PEL under the claimer's consumer name (%s, %lld "
	    "delivery)", who, dc);
	tap_ok(t, store_job_done(s, a, NULL, 0, NULL, T0) == STORE_OK &&
	    claim_id(s, 61, T0, T0 + 100) == b &&
	    store_job_done(s, b, NULL, 0, NULL, T0) == STORE_OK &&
	    stream_empty(c), "every job done: nothing left in the stream or "
	    "the PEL (XACK and XDEL with each)");

	/* A consumer killed holding a job. */
	sp.contact = "s3";
	store_job_add(s, &sp, &c3, NULL);
	store_job_add(s, &sp, &c3b, NULL);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct store *cs = open_redis(t, sv, home, 0);

		if (cs == NULL || claim_id(cs, (uint32_t)getpid(), T0,
		    T0 + 300) != c3)
			_exit(1);
		store_close(cs);
		store_close(s);
		redisFree(c);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	waitpid(pid, &status, 0);
	snprintf(dead, sizeof(dead), "%s:%ld", host, (long)pid);
	snprintf(want, sizeof(want), "%s", dead);
	dc = pel_one(c, who, sizeof(who));
	tap_ok(t, WIFSIGNALED(status) && dc == 1 && strcmp(who, want) == 0,
	    "a consumer claimed a job (lease 300 ms) and was killed holding "
	    "it, in the PEL under its name");
	/* The claimer's clock stays inside the lease (T0 + 1): only Redis's
	 * idle time can hand the job over. */
	for (i = 0, got = 0; i < 200 && got == 0; i++) {
		got = claim_id(s, 62, T0 + 1, T0 + 301);
		if (got == 0)
			usleep(50 * 1000);
	}
	snprintf(want, sizeof(want), "%s:62", host);
	dc = pel_one(c, who, sizeof(who));
	tap_ok(t, got == c3 && dc == 2 && strcmp(who, want) == 0,
	    "once idle past the lease another consumer takes it over through "
	    "XAUTOCLAIM (new owner %s, delivered %lld times)", who, dc);
	tap_ok(t, has_consumer(c, want) && !has_consumer(c, dead),
	    "the killed consumer, holding nothing now, left the group");
	tap_ok(t, store_job_done(s, c3, NULL, 0, NULL, T0) == STORE_OK &&
	    store_job_done(s, c3, NULL, 0, NULL, T0) == STORE_NOTFOUND &&
	    pel_count(c) == 0, "the job is done once");

	/* A long job renews its lease. */
	tap_ok(t, claim_id(s, 63, T0 + 2, T0 + 1002) == c3b,
	    "the contact's next job is claimed (lease 1000 ms)");
	usleep(1200 * 1000);
	tap_ok(t, store_job_renew(s, c3b, 63, T0 + 1002) == STORE_OK &&
	    claim_id(s, 64, T0 + 3, T0 + 1003) == 0, "renewed (XCLAIM JUSTID "
	    "resets the idle time), it is not taken though it ran past a "
	    "lease length");
	for (i = 0, got = 0; i < 200 && got == 0; i++) {
		got = claim_id(s, 64, T0 + 3, T0 + 1003);
		if (got == 0)
			usleep(50 * 1000);
	}
	tap_ok(t, got == c3b && store_job_renew(s, c3b, 63, T0 + 2000) ==
	    STORE_NOTFOUND, "not renewed, it is taken over and the old holder "
	    "has lost it");
	store_job_done(s, c3b, NULL, 0, NULL, T0);

	/* Contact order across a retry of the head. */
	sp.contact = "s4";
	store_job_add(s, &sp, &d1, NULL);
	store_job_add(s, &sp, &d2, NULL);
	tap_ok(t, claim_id(s, 65, T0 + 10, T0 + 1010) == d1 &&
	    store_job_retry(s, d1, 65, T0 + 20, "x", 0) == STORE_OK &&
	    claim_id(s, 65, T0 + 15, T0 + 1015) == 0 && stream_empty(c),
	    "a retried head leaves the stream; its contact's next waits");
	ok = claim_id(s, 65, T0 + 20, T0 + 1020) == d1 &&
	    store_job_done(s, d1, NULL, 0, NULL, T0) == STORE_OK &&
	    claim_id(s, 65, T0 + 20, T0 + 1020) == d2 &&
	    store_job_done(s, d2, NULL, 0, NULL, T0) == STORE_OK;
	tap_ok(t, ok && stream_empty(c), "then the head again, then the next: "
	    "contact order holds; nothing left in the stream or the PEL");

	/* An uninstall cancels claimed and handed-out jobs. */
	store_install_record(s, "tokU", NULL, 0, NULL);
	sp.integ = "tokU";
	sp.contact = "u1";
	store_job_add(s, &sp, &e[0], NULL);
	sp.contact = "u2";
	store_job_add(s, &sp, &e[1], NULL);
	sp.contact = "u3";
	store_job_add(s, &sp, &e[2], NULL);
	/* Two claimed, the third handed out to the stream, unclaimed. */
	got = claim_id(s, 66, T0, T0 + 100);
	ok = e[2] > 0 && got != 0 && claim_id(s, 66, T0, T0 + 100) != got &&
	    pel_count(c) == 2;
	r = redisCommand(c, "XLEN bm:jready");
	ok = ok && r != NULL && r->type == REDIS_REPLY_INTEGER &&
	    r->integer == 3;
	if (r != NULL)
		freeReplyObject(r);
	tap_ok(t, ok, "three jobs in the stream, two of them claimed");
	tap_ok(t, store_install_delete(s, "tokU", NULL) == STORE_OK &&
	    stream_empty(c), "an uninstall of an integration with claimed "
	    "jobs leaves no entry behind");
out:
	if (c != NULL)
		redisFree(c);
	if (s != NULL)
		store_close(s);
}

static void
test_claims(struct tap *t, const struct server *sv, const char *home)
{
	static const char iid[] = "0123456789abcdef0123456789abcdef";
	struct store *s = open_redis(t, sv, home, 0);
	long long ttl;
	int dup = -1, d2 = -1;

	if (s == NULL)
		return;
	tap_ok(t, store_delivery_claim(s, iid, "m1", 1000, 300, &dup) ==
	    STORE_OK && dup == 0 && store_delivery_claim(s, iid, "m1", 1100,
	    300, &d2) == STORE_OK && d2 == 1, "a delivery id is new once, "
	    "then a duplicate");
	ttl = raw_int(sv, "TTL bm:seen:0123456789abcdef0123456789abcdef:m1");
	tap_ok(t, ttl > 0 && ttl <= 300, "Redis expires the claim after the "
	    "ttl (EXPIRE, no sweep: %lld s left)", ttl);
	store_close(s);
}

/* The port Sentinel gives for master mm, or -1. */
static int
sentinel_master_port(const struct server *sn)
{
	redisContext *c = raw(sn);
	redisReply *r;
	int port = -1;

	if (c == NULL)
		return -1;
	r = redisCommand(c, "SENTINEL get-master-addr-by-name mm");
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		port = atoi(r->element[1]->str);
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return port;
}

static void
test_sentinel(struct tap *t, const char *dir, const char *home)
{
	struct server m, rp, sn;
	struct store_opts o = { .home = home, .backend = STORE_BACKEND_REDIS,
	    .redis_master = "mm", .redis_timeout_ms = 2000,
	    .key_file = seal_key };
	struct store *s = NULL;
	redisContext *c;
	redisReply *r;
	char conf[700], sent[64], err[512];
	FILE *f;
	int i, rc = STORE_ERROR, moved = 0, synced = 0;

	memset(&m, 0, sizeof(m));
	memset(&rp, 0, sizeof(rp));
	memset(&sn, 0, sizeof(sn));
	snprintf(m.dir, sizeof(m.dir), "%.500s/m", dir);
	snprintf(rp.dir, sizeof(rp.dir), "%.500s/r", dir);
	snprintf(sn.dir, sizeof(sn.dir), "%.500s/s", dir);
	if (mkdir(m.dir, 0700) != 0 || mkdir(rp.dir, 0700) != 0 ||
	    mkdir(sn.dir, 0700) != 0 || (m.port = free_port()) < 0 ||
	    (rp.port = free_port()) < 0 || (sn.port = free_port()) < 0)
		goto out;
	snprintf(conf, sizeof(conf), "%.500s/sentinel.conf", sn.dir);
	if ((f = fopen(conf, "w")) == NULL)
		goto out;
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s/log\n"
	    "sentinel monitor mm 127.0.0.1 %d 1\n"
	    "sentinel down-after-milliseconds mm 2000\n"
	    "sentinel failover-timeout mm 10000\n", sn.port, sn.dir, sn.dir,
	    m.port);
	fclose(f);
	if (server_start(&m) < 0 || server_start_as(&rp, m.port, NULL) < 0 ||
	    server_start_as(&sn, 0, conf) < 0) {
		tap_ok(t, 0, "a master, a replica and a Sentinel");
		goto out;
	}
	snprintf(sent, sizeof(sent), "127.0.0.1:%d", sn.port);
	o.redis_sentinels = sent;
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK)
		tap_diag("open: %s", err);
	tap_ok(t, s != NULL && store_ids_save(s, "tokS", "b1", "e1") ==
	    STORE_OK && ext_is(s, "tokS", "b1", "e1"), "BM_REDIS_SENTINELS: "
	    "the master found through Sentinel");
	if (s == NULL)
		goto out;
	/* The replica has it (a bound, not a timing). */
	for (i = 0; i < 400 && !synced; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		synced = raw_int(&rp, "EXISTS bm:pairs") == 1;
		if (!synced)
			nanosleep(&ts, NULL);
	}
	if ((c = raw(&sn)) != NULL) {
		r = redisCommand(c, "SENTINEL FAILOVER mm");
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
	}
	for (i = 0; i < 600 && !moved; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		moved = sentinel_master_port(&sn) == rp.port &&
		    raw_int(&m, "EXISTS bm:pairs") >= 0;
		if (!moved)
			nanosleep(&ts, NULL);
	}
	tap_ok(t, synced && moved, "Sentinel failed over to the replica");
	/* The old master turns replica (READONLY) or refuses: the handle
	 * asks Sentinel again; a few calls may fail meanwhile (503s). */
	for (i = 0; i < 100 && rc != STORE_OK; i++) {
		struct timespec ts = { 0, 100 * 1000000L };

		if ((rc = store_ids_save(s, "tokS", "b2", "e2")) != STORE_OK)
			nanosleep(&ts, NULL);
	}
	tap_ok(t, rc == STORE_OK && ext_is(s, "tokS", "b2", "e2") &&
	    ext_is(s, "tokS", "b1", "e1") &&
	    raw_int(&rp, "SCARD bm:pairs") == 1,
	    "the handle followed the failover: saves go to the new master "
	    "(%d calls), which has the old pairs", i);
out:
	store_close(s);
	server_stop(&sn);
	server_stop(&rp);
	server_stop(&m);
}

/*
 * Whether sv answers ROLE "master".  A connection each time: Sentinel's
 * CLIENT KILL at a promotion ends older ones.
 */
static int
is_master(const struct server *sv)
{
	redisContext *c = raw(sv);
	redisReply *r;
	int yes;

	if (c == NULL)
		return 0;
	r = redisCommand(c, "ROLE");
	yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0;
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return yes;
}

/* Whether key exists on sv. */
static int
has_key(const struct server *sv, const char *key)
{
	char cmd[80];

	snprintf(cmd, sizeof(cmd), "EXISTS %.60s", key);
	return raw_int(sv, cmd) == 1;
}

/* CONFIG SET min-replicas-to-write n on sv. */
static void
min_replicas(const struct server *sv, int n)
{
	redisContext *c = raw(sv);
	redisReply *r;

	if (c == NULL)
		return;
	r = redisCommand(c, "CONFIG SET min-replicas-to-write %d", n);
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
}

#define FW_BEFORE 50            /* pairs saved before the failover */
#define FW_MAX (FW_BEFORE + 6000) /* a bound on the saves, not a timing */
#define FW_AFTER 30             /* acknowledged on the new master, then stop */

/*
 * A planned failover (SENTINEL FAILOVER) while the handle keeps saving,
 * the old master left running and still a master (it cannot be demoted
 * here: that is what makes the handle's own check matter, as in the
 * seconds before Sentinel demotes it, or in a partition).  The handle must
 * move to the new master by itself, and every save acknowledged from then
 * on, and every one before the failover, is on the new master.  The js
 * layout keeps the pairs' keys readable ("tokF:b:<bid>").
 */
static void
test_failover_writes(struct tap *t, const char *dir, const char *home)
{
	struct server m, rp, sn;
	struct store_opts o = { .home = home, .backend = STORE_BACKEND_REDIS,
	    .redis_master = "mm", .redis_timeout_ms = 2000,
	    .redis_js_keys = 1, .key_file = seal_key };
	struct store *s = NULL;
	redisContext *c = NULL;
	redisReply *r;
	static unsigned char acked[FW_MAX];
	char conf[700], sent[64], err[512], bid[32], eid[32], key[48];
	FILE *f;
	int i, n, rc, sw = -1, after = 0, before_ok = 1, synced = 0;
	int asked = 0, lost = 0, missing = 0, failed = 0, still = 0;

	memset(&m, 0, sizeof(m));
	memset(&rp, 0, sizeof(rp));
	memset(&sn, 0, sizeof(sn));
	memset(acked, 0, sizeof(acked));
	snprintf(m.dir, sizeof(m.dir), "%.500s/fm", dir);
	snprintf(rp.dir, sizeof(rp.dir), "%.500s/fr", dir);
	snprintf(sn.dir, sizeof(sn.dir), "%.500s/fs", dir);
	if (mkdir(m.dir, 0700) != 0 || mkdir(rp.dir, 0700) != 0 ||
	    mkdir(sn.dir, 0700) != 0 || (m.port = free_port()) < 0 ||
	    (rp.port = free_port()) < 0 || (sn.port = free_port()) < 0)
		goto out;
	snprintf(conf, sizeof(conf), "%.500s/sentinel.conf", sn.dir);
	if ((f = fopen(conf, "w")) == NULL)
		goto out;
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s/log\n"
	    "sentinel monitor mm 127.0.0.1 %d 1\n"
	    "sentinel down-after-milliseconds mm 2000\n"
	    "sentinel failover-timeout mm 10000\n", sn.port, sn.dir, sn.dir,
	    m.port);
	fclose(f);
	if (server_start_as(&m, -1, NULL) < 0 ||
	    server_start_as(&rp, m.port, NULL) < 0 ||
	    server_start_as(&sn, 0, conf) < 0) {
		tap_ok(t, 0, "failover: a master, a replica and a Sentinel");
		goto out;
	}
	snprintf(sent, sizeof(sent), "127.0.0.1:%d", sn.port);
	o.redis_sentinels = sent;
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		tap_diag("open: %s", err);
		tap_ok(t, 0, "failover: open through Sentinel");
		goto out;
	}
	for (i = 0; i < FW_BEFORE; i++) {
		snprintf(bid, sizeof(bid), "b%d", i);
		snprintf(eid, sizeof(eid), "e%d", i);
		before_ok &= store_ids_save(s, "tokF", bid, eid) == STORE_OK;
	}
	/* The replica has them all: one connection, applied in order. */
	snprintf(key, sizeof(key), "tokF:b:b%d", FW_BEFORE - 1);
	for (i = 0; i < 400 && !synced; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		if (!(synced = has_key(&rp, key)))
			nanosleep(&ts, NULL);
	}
	/* Until Sentinel takes it (it may not know the replica yet). */
	for (i = 0; i < 200 && !asked && synced; i++) {
		struct timespec ts = { 0, 100 * 1000000L };

		if ((c = raw(&sn)) != NULL) {
			r = redisCommand(c, "SENTINEL FAILOVER mm");
			asked = r != NULL && r->type == REDIS_REPLY_STATUS;
			if (r != NULL)
				freeReplyObject(r);
			redisFree(c);
			c = NULL;
		}
		if (!asked)
			nanosleep(&ts, NULL);
	}
	tap_ok(t, before_ok && synced && asked, "failover: %d pairs saved "
	    "and on the replica, then SENTINEL FAILOVER", FW_BEFORE);
	/*
	 * Saves go on.  Save n moved to the new master when the replica
	 * was already a master before it was sent (so nothing reaches it
	 * by replication from the old one) and has it right after.
	 */
	for (n = FW_BEFORE; n < FW_MAX && after < FW_AFTER && asked; n++) {
		struct timespec ts = { 0, 5 * 1000000L };
		int promoted = is_master(&rp);

		snprintf(bid, sizeof(bid), "b%d", n);
		snprintf(eid, sizeof(eid), "e%d", n);
		rc = store_ids_save(s, "tokF", bid, eid);
		acked[n] = rc == STORE_OK;
		failed += rc != STORE_OK;
		snprintf(key, sizeof(key), "tokF:b:b%d", n);
		if (acked[n] && promoted && sw < 0 && has_key(&rp, key))
			sw = n;
		if (sw >= 0 && acked[n])
			after++;
		nanosleep(&ts, NULL);
	}
	still = is_master(&m);
	tap_ok(t, sw >= 0 && still, "failover: the handle moved to the new "
	    "master by itself, the old one still a master taking writes "
	    "(save %d of %d; %d refused meanwhile)", sw, n, failed);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "tokF:b:b%d", i);
		if (!acked[i] && i >= FW_BEFORE)
			continue;
		if (has_key(&rp, key))
			continue;
		if (i < FW_BEFORE || (sw >= 0 && i >= sw))
			missing++;
		else
			lost++;
	}
	if (lost > 0)
		tap_diag("%d saves acknowledged by the old master between "
		    "the promotion and the handle's move (its next check, "
		    "at most a second later) are not on the new master",
		    lost);
	snprintf(bid, sizeof(bid), "b%d", n - 1);
	snprintf(eid, sizeof(eid), "e%d", n - 1);
	tap_ok(t, sw >= 0 && missing == 0 && ext_is(s, "tokF", "b0", "e0") &&
	    ext_is(s, "tokF", bid, eid), "failover: every save acknowledged "
	    "before the failover and after the move (%d) is on the new "
	    "master (%d missing)", after, missing);
	/*
	 * An operator's fence on the new master (min-replicas-to-write, its
	 * replica being gone): NOREPLICAS is "not the master now"; Sentinel
	 * still names it, so the save fails as a store error (503) and
	 * writes nothing; lifted, the same handle saves again.
	 */
	min_replicas(&rp, 1);
	rc = store_ids_save(s, "tokF", "fenced", "ef");
	tap_ok(t, rc == STORE_ERROR && strstr(store_strerror(s),
	    "NOREPLICAS") != NULL && !has_key(&rp, "tokF:b:fenced"),
	    "NOREPLICAS: a store error, nothing written (%s)",
	    store_strerror(s));
	min_replicas(&rp, 0);
	tap_ok(t, store_ids_save(s, "tokF", "fenced", "ef") == STORE_OK &&
	    has_key(&rp, "tokF:b:fenced"), "fence lifted: the handle saves "
	    "again");
out:
	store_close(s);
	server_stop(&sn);
	server_stop(&rp);
	server_stop(&m);
}

/* migrate copies services too, their tokens readable on the target. */
static void
test_migrate_services(struct tap *t, const struct server *sv,
    const char *dir)
{
	struct store_opts bo = { 0 };
	struct store_service in, *got = NULL;
	struct store *b = NULL, *r = NULL;
	char bhome[700], rhome[700], err[512];
	int rc, status = 2, saved;

	snprintf(bhome, sizeof(bhome), "%.500s/mig-bdb", dir);
	snprintf(rhome, sizeof(rhome), "%.500s/mig-redis", dir);
	bo.home = bhome;
	if (store_open(&b, &bo, err, sizeof(err)) != STORE_OK ||
	    (r = open_redis(t, sv, rhome, 0)) == NULL) {
		tap_ok(t, 0, "open both stores (%s)", err);
		goto out;
	}
	memset(&in, 0, sizeof(in));
	memcpy(in.install_id, "00112233445566778899aabbccddeeff", 33);
	in.service = (char *)"crm";
	in.group = (char *)"";
	in.user = (char *)"u1";
	in.access = (char *)"access-Tk9";
	in.refresh = (char *)"refresh-Tk9";
	in.scope = (char *)"read";
	in.updated = 1700000000;
	in.expires = 1700003600;
	saved = store_install_record(b, "tokV", NULL, 0, NULL) == STORE_OK &&
	    store_service_put(b, &in) == STORE_OK;
	fflush(stdout);
	fflush(stderr);
	status = store_cli_migrate(b, r);
	rc = store_service_get(r, in.install_id, "crm", "", "u1", &got);
	tap_ok(t, saved && status == 0 && rc == STORE_OK &&
	    strcmp(got->access, "access-Tk9") == 0 &&
	    strcmp(got->refresh, "refresh-Tk9") == 0 &&
	    strcmp(got->scope, "read") == 0 && got->expires == 1700003600,
	    "migrate copies a service, its tokens opened on the target "
	    "(status %d, %d)", status, rc);
	store_service_free(got);
out:
	store_close(r);
	store_close(b);
}

/* 32 random bytes, 0600, as crypto.c reads a key file. */
static int
write_seal_key(const char *path)
{
	unsigned char k[32];
	FILE *in, *out;
	int ok;

	if ((in = fopen("/dev/urandom", "rb")) == NULL)
		return -1;
	ok = fread(k, 1, sizeof(k), in) == sizeof(k);
	fclose(in);
	if (!ok || (out = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(k, 1, sizeof(k), out) == sizeof(k);
	if (fclose(out) != 0 || chmod(path, 0600) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

/* Without BM_SECRET_KEY_FILE a Redis store is refused, saying so: the
 * sealing key is never kept in Redis beside what it seals. */
static void
test_key_required(struct tap *t, const struct server *sv, const char *home)
{
	struct store_opts o = { .home = home, .backend = STORE_BACKEND_REDIS,
	    .redis_url = sv->url, .redis_timeout_ms = 5000 };
	struct store *s = NULL;
	char err[512];
	redisContext *c;
	redisReply *r;
	int rc, n = -1;

	rc = store_open(&s, &o, err, sizeof(err));
	tap_ok(t, rc == STORE_EINVAL && s == NULL &&
	    strstr(err, "BM_SECRET_KEY_FILE") != NULL &&
	    strchr(err, '\n') == NULL,
	    "no key file: refused, one line naming BM_SECRET_KEY_FILE (%s)",
	    err);
	store_close(s);
	if ((c = redisConnect("127.0.0.1", sv->port)) != NULL && !c->err &&
	    (r = redisCommand(c, "EXISTS bm:sealkey")) != NULL) {
		n = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
		freeReplyObject(r);
	}
	if (c != NULL)
		redisFree(c);
	tap_ok(t, n == 0, "and no sealing key is kept in Redis");
}

int
main(void)
{
	struct tap t = { 0 };
	struct server sv;
	char home[600];

	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("1..0 # SKIP redis-server not installed\n");
		return 0;
	}
	memset(&sv, 0, sizeof(sv));
	if (tap_tmpdir(sv.dir, 512, "redis") != 0 ||
	    (sv.port = free_port()) < 0) {
		printf("Bail out! %s\n", strerror(errno));
		return 1;
	}
	snprintf(sv.url, sizeof(sv.url), "redis://127.0.0.1:%d", sv.port);
	snprintf(home, sizeof(home), "%.500s/home", sv.dir);
	snprintf(seal_key, sizeof(seal_key), "%.500s/seal.key", sv.dir);
	if (write_seal_key(seal_key) < 0) {
		printf("Bail out! %s: %s\n", seal_key, strerror(errno));
		tap_rmtree(sv.dir);
		return 1;
	}
	if (server_start(&sv) < 0) {
		printf("Bail out! redis-server did not start (%s)\n", sv.dir);
		tap_rmtree(sv.dir);
		return 1;
	}
	test_key_required(&t, &sv, home);
	test_js_layout(&t, &sv, home);
	test_own_layout(&t, &sv, home);
	test_takeover(&t, &sv, home);
	test_stream(&t, &sv, home);
	test_claims(&t, &sv, home);
	test_migrate_services(&t, &sv, sv.dir);
	test_outage(&t, &sv, home);
	server_stop(&sv);
	test_sentinel(&t, sv.dir, home);
	test_failover_writes(&t, sv.dir, home);
	tap_rmtree(sv.dir);
	return tap_done(&t);
}
