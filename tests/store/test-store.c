/*
 * tests/store/test-store.c - every keystore operation, one process: pairs
 * (limits, relinks, not found, delete_all ranges), installations, state,
 * batches, export, verification, persistence, the supervision helpers, and
 * the atomicity of store_install_delete() under SIGKILL.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/store/backend.h"
#include "tests/tap.h"

static struct store *
open_store(struct tap *t, const char *home, enum store_durability d)
{
	struct store_opts o = { .home = home, .durability = d };
	struct store *s = NULL;
	char err[512];
	int rc;

	test_opts(&o);
	rc = store_open(&s, &o, err, sizeof(err));

	if (rc != STORE_OK)
		tap_diag("open: %s", err);
	tap_ok(t, rc == STORE_OK && s != NULL, "open %s", home);
	return s;
}

/* Whether get_ext(integ, bid) gives want (NULL: not found). */
static int
ext_is(struct store *s, const char *integ, const char *bid, const char *want)
{
	char *v = NULL;
	int rc = store_ext_id_get(s, integ, bid, &v), ok;

	ok = want == NULL ? rc == STORE_NOTFOUND && v == NULL :
	    rc == STORE_OK && v != NULL && strcmp(v, want) == 0;
	free(v);
	return ok;
}

static int
bot_is(struct store *s, const char *integ, const char *eid, const char *want)
{
	char *v = NULL;
	int rc = store_botmatic_id_get(s, integ, eid, &v), ok;

	ok = want == NULL ? rc == STORE_NOTFOUND && v == NULL :
	    rc == STORE_OK && v != NULL && strcmp(v, want) == 0;
	free(v);
	return ok;
}

static int
count_fn(void *arg, const char *integ, const char *bid, const char *eid)
{
	(void)integ;
	(void)bid;
	(void)eid;
	(*(size_t *)arg)++;
	return 0;
}

static size_t
count_pairs(struct store *s, const char *integ)
{
	size_t n = 0;

	if (store_ids_foreach(s, integ, count_fn, &n) != STORE_OK)
		return (size_t)-1;
	return n;
}

static int
stop_fn(void *arg, const char *integ, const char *bid, const char *eid)
{
	(void)integ;
	(void)bid;
	(void)eid;
	return ++*(int *)arg == 3 ? 42 : 0;
}

static void
test_files(struct tap *t, const char *home)
{
	static const char *files[] = { "ids-b.db", "ids-e.db", "installs.db",
	    "state.db", "__db.001", "__db.register", "log.0000000001" };
	struct stat st;
	char p[1024];
	size_t i;
	int bad = 0;

	tap_ok(t, stat(home, &st) == 0 && (st.st_mode & 0777) == 0700,
	    "home created 0700");
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", home, files[i]);
		if (stat(p, &st) != 0 || (st.st_mode & 0077) != 0) {
			tap_diag("%s: %s", p, errno ? strerror(errno) :
			    "group or other may access");
			bad = 1;
		}
	}
	tap_ok(t, !bad, "store files are 0600");
}

static void
test_ids(struct tap *t, struct store *s)
{
	char lim[STORE_ID_MAX + 2], *v = NULL;
	int rc;

	tap_ok(t, store_ids_save(s, "i", "b1", "e1") == STORE_OK, "save");
	tap_ok(t, ext_is(s, "i", "b1", "e1"), "get_ext finds it");
	tap_ok(t, bot_is(s, "i", "e1", "b1"), "get_botmatic finds it");
	tap_ok(t, ext_is(s, "i", "nope", NULL), "get_ext: not found");
	tap_ok(t, bot_is(s, "i", "nope", NULL), "get_botmatic: not found");
	tap_ok(t, ext_is(s, "j", "b1", NULL), "other integration: not found");

	rc = store_ids_save(s, "i", "", "e");
	tap_ok(t, rc == STORE_EINVAL && strstr(store_strerror(s),
	    "botmatic id is empty") != NULL, "empty botmatic id refused: %s",
	    store_strerror(s));
	rc = store_ids_save(s, "i", "b", "");
	tap_ok(t, rc == STORE_EINVAL && strstr(store_strerror(s),
	    "external id is empty") != NULL, "empty external id refused");
	rc = store_ids_save(s, "", "b", "e");
	tap_ok(t, rc == STORE_EINVAL && strstr(store_strerror(s),
	    "integration id is empty") != NULL, "empty integration refused");
	rc = store_ext_id_get(s, "i", "", &v);
	tap_ok(t, rc == STORE_EINVAL && v == NULL, "get with empty id refused");
	rc = store_ids_delete_all(s, "", NULL);
	tap_ok(t, rc == STORE_EINVAL, "delete_all of empty integration "
	    "refused");

	memset(lim, 'x', STORE_ID_MAX);
	lim[STORE_ID_MAX] = '\0';
	lim[0] = 'L';
	tap_ok(t, store_ids_save(s, lim, lim, lim) == STORE_OK &&
	    ext_is(s, lim, lim, lim) && bot_is(s, lim, lim, lim),
	    "ids of exactly %d bytes round-trip", STORE_ID_MAX);
	lim[STORE_ID_MAX] = 'y';
	lim[STORE_ID_MAX + 1] = '\0';
	rc = store_ids_save(s, "i", lim, "e");
	tap_ok(t, rc == STORE_EINVAL && strstr(store_strerror(s),
	    "longer than 512 bytes") != NULL, "id of %d bytes refused: %s",
	    STORE_ID_MAX + 1, store_strerror(s));
	tap_ok(t, store_ids_save(s, lim, "b", "e") == STORE_EINVAL &&
	    store_ids_save(s, "i", "b", lim) == STORE_EINVAL,
	    "long integration and external ids refused");
	tap_ok(t, ext_is(s, "i", "b", NULL), "nothing written by refusals");

	tap_ok(t, store_ids_save(s, "ünï", "日本語", "\xff\xfe\x01") ==
	    STORE_OK && ext_is(s, "ünï", "日本語", "\xff\xfe\x01") &&
	    bot_is(s, "ünï", "\xff\xfe\x01", "日本語"),
	    "non-ASCII and non-UTF-8 ids round-trip");
	tap_ok(t, store_ids_save(s, "n", "123", "456") == STORE_OK &&
	    ext_is(s, "n", "123", "456"), "numbers as decimal text");

	/* Relinks keep the bijection. */
	tap_ok(t, store_ids_save(s, "r", "b1", "e1") == STORE_OK &&
	    store_ids_save(s, "r", "b1", "e2") == STORE_OK,
	    "relink b1 -> e2");
	tap_ok(t, ext_is(s, "r", "b1", "e2") && bot_is(s, "r", "e2", "b1") &&
	    bot_is(s, "r", "e1", NULL), "b1 -> e2, and e1's reverse is gone");
	tap_ok(t, store_ids_save(s, "r", "b2", "e2") == STORE_OK &&
	    ext_is(s, "r", "b2", "e2") && bot_is(s, "r", "e2", "b2") &&
	    ext_is(s, "r", "b1", NULL), "b2 takes e2 from b1");
	tap_ok(t, store_ids_save(s, "r", "b2", "e2") == STORE_OK &&
	    ext_is(s, "r", "b2", "e2") && count_pairs(s, "r") == 1,
	    "saving the same pair again changes nothing");
	tap_ok(t, store_ids_save(s, "r", "b3", "e3") == STORE_OK &&
	    store_ids_save(s, "r", "b4", "e4") == STORE_OK &&
	    store_ids_save(s, "r", "b3", "e4") == STORE_OK &&
	    ext_is(s, "r", "b3", "e4") && bot_is(s, "r", "e4", "b3") &&
	    bot_is(s, "r", "e3", NULL) && ext_is(s, "r", "b4", NULL) &&
	    count_pairs(s, "r") == 2, "b3 -> e4 drops b3 -> e3 and b4 -> e4");

	/* Deletes. */
	tap_ok(t, store_ids_delete(s, "r", "b3", "e4") == STORE_OK &&
	    ext_is(s, "r", "b3", NULL) && bot_is(s, "r", "e4", NULL),
	    "delete a pair, both directions");
	tap_ok(t, store_ids_delete(s, "r", "b3", "e4") == STORE_NOTFOUND,
	    "delete again: not found");
	tap_ok(t, store_ids_save(s, "r", "b5", "e5") == STORE_OK &&
	    store_ids_save(s, "r", "b6", "e6") == STORE_OK &&
	    store_ids_delete(s, "r", "b5", "e6") == STORE_OK &&
	    ext_is(s, "r", "b5", NULL) && bot_is(s, "r", "e5", NULL) &&
	    ext_is(s, "r", "b6", NULL) && bot_is(s, "r", "e6", NULL),
	    "delete(b5, e6) removes b5's pair and e6's pair");
	tap_ok(t, store_ids_delete(s, "r", "", "e") == STORE_EINVAL,
	    "delete with empty id refused");
	{
		int n = 0;

		tap_ok(t, store_ids_save(s, "f", "1", "a") == 0 &&
		    store_ids_save(s, "f", "2", "b") == 0 &&
		    store_ids_save(s, "f", "3", "c") == 0 &&
		    store_ids_save(s, "f", "4", "d") == 0 &&
		    store_ids_foreach(s, "f", stop_fn, &n) == 42 && n == 3,
		    "foreach stops when the callback says so");
	}
}

static void
test_delete_all(struct tap *t, struct store *s)
{
	static const char *integs[] = { "tok", "tok2", "to", "tok\x01", "tol" };
	char b[32], e[32];
	size_t i, j, n = 99;
	int ok = 1;

	for (i = 0; i < 5; i++)
		for (j = 0; j < 200; j++) {
			snprintf(b, sizeof(b), "b%zu", j);
			snprintf(e, sizeof(e), "e%zu", j);
			ok &= store_ids_save(s, integs[i], b, e) == STORE_OK;
		}
	tap_ok(t, ok && count_pairs(s, "tok") == 200, "5 integrations of 200 "
	    "pairs");
	ok = store_ids_delete_all(s, "tok", &n) == STORE_OK;
	tap_ok(t, ok && n == 200, "delete_all(tok) deletes 200 pairs (%zu)", n);
	tap_ok(t, count_pairs(s, "tok") == 0 && ext_is(s, "tok", "b7", NULL) &&
	    bot_is(s, "tok", "e7", NULL), "tok is empty, both directions");
	for (i = 1; i < 5; i++)
		tap_ok(t, count_pairs(s, integs[i]) == 200 &&
		    ext_is(s, integs[i], "b7", "e7") &&
		    bot_is(s, integs[i], "e199", "b199"),
		    "integration %zu (prefix neighbour) untouched", i);
	tap_ok(t, store_ids_delete_all(s, "none", &n) == STORE_OK && n == 0,
	    "delete_all of an unknown integration: ok, 0");
}

static void
test_installs(struct tap *t, struct store *s)
{
	struct store_install *a = NULL, *b = NULL, *c = NULL;
	char *v = NULL;
	size_t len = 0, pairs = 0;
	int rc;

	rc = store_install_record(s, "tokA", "{\"x\":1}", 7, &a);
	tap_ok(t, rc == STORE_OK && a != NULL && strlen(a->install_id) == 32 &&
	    strlen(a->secret) == 64 && strcmp(a->token, "tokA") == 0 &&
	    a->settings_len == 7 && strcmp(a->settings, "{\"x\":1}") == 0 &&
	    a->created > 0, "record an installation");
	tap_ok(t, a != NULL && strstr(a->install_id, "tokA") == NULL &&
	    strspn(a->install_id, "0123456789abcdef") == 32 &&
	    strspn(a->secret, "0123456789abcdef") == 64,
	    "install id and secret are hex");
	rc = store_install_record(s, "tokA", "{\"x\":2}", 7, &b);
	tap_ok(t, rc == STORE_OK && a && b &&
	    strcmp(a->install_id, b->install_id) == 0 &&
	    strcmp(a->secret, b->secret) == 0 && a->created == b->created &&
	    strcmp(b->settings, "{\"x\":2}") == 0,
	    "install again: same id, secret and time, new settings");
	store_install_free(b);
	b = NULL;
	rc = store_install_record(s, "tokA", NULL, 0, &b);
	tap_ok(t, rc == STORE_OK && b && strcmp(b->settings, "{\"x\":2}") == 0,
	    "install with no settings keeps them");
	store_install_free(b);
	b = NULL;
	tap_ok(t, store_install_get(s, "tokA", &b) == STORE_OK && a && b &&
	    strcmp(a->secret, b->secret) == 0, "get by token");
	store_install_free(b);
	b = NULL;
	tap_ok(t, a && store_install_get_by_id(s, a->install_id, &b) ==
	    STORE_OK && b && strcmp(b->token, "tokA") == 0, "get by install id");
	store_install_free(b);
	b = NULL;
	tap_ok(t, store_install_get(s, "nope", &b) == STORE_NOTFOUND &&
	    b == NULL && store_install_get_by_id(s,
	    "0123456789abcdef0123456789abcdef", &b) == STORE_NOTFOUND,
	    "unknown token or id: not found");
	tap_ok(t, store_install_get_by_id(s, "xyz", &b) == STORE_EINVAL &&
	    store_install_record(s, "", NULL, 0, NULL) == STORE_EINVAL,
	    "malformed install id and empty token refused");
	tap_ok(t, store_install_record(s, "tokA2", "{}", 2, &c) == STORE_OK &&
	    c && a && strcmp(c->install_id, a->install_id) != 0,
	    "another token, another id");

	/* State. */
	tap_ok(t, store_state_set(s, "tokA", "cursor", "{\"p\":3}", 7) ==
	    STORE_OK && store_state_get(s, "tokA", "cursor", &v, &len) ==
	    STORE_OK && len == 7 && strcmp(v, "{\"p\":3}") == 0, "state set/get");
	free(v);
	v = NULL;
	tap_ok(t, store_state_set(s, "tokA", "cursor", "", 0) == STORE_OK &&
	    store_state_get(s, "tokA", "cursor", &v, &len) == STORE_OK &&
	    len == 0 && v && v[0] == '\0', "empty state value");
	free(v);
	v = NULL;
	tap_ok(t, store_state_get(s, "tokA", "other", &v, &len) ==
	    STORE_NOTFOUND && v == NULL, "state not found");
	tap_ok(t, store_state_set(s, "tokA", "gone", "1", 1) == STORE_OK &&
	    store_state_delete(s, "tokA", "gone") == STORE_OK &&
	    store_state_delete(s, "tokA", "gone") == STORE_NOTFOUND,
	    "state delete, then not found");
	tap_ok(t, store_state_set(s, "tokA", "", "1", 1) == STORE_EINVAL,
	    "empty state name refused");
	tap_ok(t, store_state_set(s, "tokA2", "cursor", "7", 1) == STORE_OK,
	    "state of the other installation");

	/* Forgetting an installation takes its pairs and state. */
	tap_ok(t, store_ids_save(s, "tokA", "b1", "e1") == STORE_OK &&
	    store_ids_save(s, "tokA", "b2", "e2") == STORE_OK &&
	    store_ids_save(s, "tokA2", "b1", "e1") == STORE_OK, "pairs saved");
	rc = store_install_delete(s, "tokA", &pairs);
	tap_ok(t, rc == STORE_OK && pairs == 2, "install_delete (%zu pairs)",
	    pairs);
	tap_ok(t, store_install_get(s, "tokA", &b) == STORE_NOTFOUND && a &&
	    store_install_get_by_id(s, a->install_id, &b) == STORE_NOTFOUND &&
	    ext_is(s, "tokA", "b1", NULL) && bot_is(s, "tokA", "e2", NULL) &&
	    store_state_get(s, "tokA", "cursor", &v, &len) == STORE_NOTFOUND,
	    "installation, index, pairs and state gone");
	tap_ok(t, store_install_get(s, "tokA2", &b) == STORE_OK &&
	    ext_is(s, "tokA2", "b1", "e1") &&
	    store_state_get(s, "tokA2", "cursor", &v, &len) == STORE_OK,
	    "the prefix neighbour tokA2 untouched");
	store_install_free(b);
	b = NULL;
	free(v);
	v = NULL;
	tap_ok(t, store_install_delete(s, "tokA", NULL) == STORE_NOTFOUND,
	    "install_delete again: not found");

	/* Restoring exactly (import). */
	{
		struct store_install in = { .token = "tokR", .created = 12345,
		    .settings = "{}", .settings_len = 2 };

		memset(in.install_id, 'a', 32);
		memset(in.secret, 'b', 64);
		tap_ok(t, store_install_put(s, &in) == STORE_OK &&
		    store_install_get(s, "tokR", &b) == STORE_OK && b &&
		    b->created == 12345 && b->install_id[31] == 'a' &&
		    b->secret[0] == 'b', "install_put restores a record");
		store_install_free(b);
		b = NULL;
		in.token = "tokS";
		tap_ok(t, store_install_put(s, &in) == STORE_EINVAL &&
		    strstr(store_strerror(s), "another") != NULL,
		    "install_put refuses an id of another token");
		in.install_id[3] = 'Z';
		tap_ok(t, store_install_put(s, &in) == STORE_EINVAL,
		    "install_put refuses a malformed id");
	}
	store_install_free(a);
	store_install_free(c);
}

struct seen {
	size_t installs, pairs, states;
};

static int
ex_install(void *arg, const struct store_install *in)
{
	(void)in;
	((struct seen *)arg)->installs++;
	return 0;
}

static int
ex_pair(void *arg, const char *i, const char *b, const char *e)
{
	(void)i;
	(void)b;
	(void)e;
	((struct seen *)arg)->pairs++;
	return 0;
}

static int
ex_state(void *arg, const char *tok, const char *name, const char *v,
    size_t len)
{
	(void)tok;
	(void)name;
	(void)v;
	(void)len;
	((struct seen *)arg)->states++;
	return 0;
}

static void
problem(void *arg, const char *what, const char *i, const char *b,
    const char *e)
{
	(void)arg;
	tap_diag("problem: %s (%s %s %s)", what, i, b, e);
}

static void
test_bulk(struct tap *t, struct store *s)
{
	struct store_op ops[3] = {
		{ .kind = STORE_OP_IDS_SAVE, .a = "bulk", .b = "1", .c = "x" },
		{ .kind = STORE_OP_STATE_SET, .a = "bulk", .b = "n", .val = "v",
		    .len = 1 },
		{ .kind = STORE_OP_IDS_SAVE, .a = "bulk", .b = "", .c = "y" },
	};
	struct store_export_cbs cbs = { ex_install, ex_pair, ex_state };
	struct seen seen = { 0 };
	size_t bad = 99, problems = 99;
	int rc;

	tap_ok(t, store_apply(s, ops, 3, &bad) == STORE_EINVAL && bad == 2 &&
	    ext_is(s, "bulk", "1", NULL), "a batch with a bad op writes "
	    "nothing and names the op");
	tap_ok(t, store_apply(s, ops, 2, &bad) == STORE_OK &&
	    ext_is(s, "bulk", "1", "x"), "a good batch is applied");
	rc = store_export(s, &cbs, &seen);
	if (rc != STORE_OK)
		tap_diag("export: %s", store_strerror(s));
	tap_ok(t, rc == STORE_OK &&
	    seen.installs == 2 && seen.states == 2 && seen.pairs > 800,
	    "export sees %zu installs, %zu pairs, %zu states", seen.installs,
	    seen.pairs, seen.states);
	tap_ok(t, store_verify(s, problem, NULL, &problems) == STORE_OK &&
	    problems == 0, "verify: a bijection");
}

/* SIGKILL a child in the middle of install_delete: all or nothing. */
static void
test_delete_atomic(struct tap *t, const char *home)
{
	/* 0 skips this under valgrind, where it takes many minutes. */
	long npairs = getenv("BM_TEST_ATOMIC_PAIRS") ?
	    atol(getenv("BM_TEST_ATOMIC_PAIRS")) : 20000;
	struct store *s;
	struct store_op *ops;
	char (*ids)[24], err[512];
	struct timespec t0, t1;
	long us = 0;
	size_t i, n;
	int round, ok = 1, status, chk;
	pid_t pid;

	if (npairs <= 0) {
		printf("ok %d - install_delete killed at random # SKIP "
		    "BM_TEST_ATOMIC_PAIRS=0\n", ++t->n);
		return;
	}
	ops = calloc(npairs, sizeof(*ops));
	ids = calloc(npairs, sizeof(*ids));
	for (round = 0; round < 6 && ops && ids; round++) {
		if ((s = open_store(t, home, STORE_DURABILITY_WRITE)) == NULL)
			break;
		for (i = 0; i < (size_t)npairs; i++) {
			snprintf(ids[i], sizeof(ids[i]), "%zu", i);
			ops[i] = (struct store_op){ .kind = STORE_OP_IDS_SAVE,
			    .a = "atom", .b = ids[i], .c = ids[i] };
		}
		ok &= store_install_record(s, "atom", "{}", 2, NULL) == 0 &&
		    store_state_set(s, "atom", "k", "v", 1) == 0 &&
		    store_apply(s, ops, npairs, NULL) == STORE_OK;
		store_close(s);
		if ((pid = fork()) == 0) {
			struct store_opts o = { .home = home };

			if (store_open(&s, &o, err, sizeof(err)) != STORE_OK)
				_exit(2);
			_exit(store_install_delete(s, "atom", NULL) ? 3 : 0);
		}
		if (round == 0) {
			/* Time a whole open and delete... */
			clock_gettime(CLOCK_MONOTONIC, &t0);
			waitpid(pid, &status, 0);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			us = (t1.tv_sec - t0.tv_sec) * 1000000L +
			    (t1.tv_nsec - t0.tv_nsec) / 1000;
		} else {
			/* ...then kill it anywhere in that time, or after. */
			usleep((useconds_t)(rand() % (us * 3 / 2 + 1)));
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		chk = store_check_after_death(home, 2000, err, sizeof(err));
		if (chk != STORE_CHECK_CLEAN &&
		    store_recover(home, 10000, err, sizeof(err)) != STORE_OK) {
			tap_diag("recover: %s", err);
			ok = 0;
			break;
		}
		if ((s = open_store(t, home, STORE_DURABILITY_WRITE)) == NULL)
			break;
		{
			struct store_install *in = NULL;
			char *v = NULL;
			size_t len;
			int inst = store_install_get(s, "atom", &in) == 0;
			int st = store_state_get(s, "atom", "k", &v, &len) == 0;

			n = count_pairs(s, "atom");
			tap_diag("round %d: %s, check %d: install %d state %d "
			    "pairs %zu (delete takes %ld ms)", round,
			    WIFSIGNALED(status) ? "killed" : "finished", chk,
			    inst, st, n, us / 1000);
			ok &= (inst && st && n == (size_t)npairs) ||
			    (!inst && !st && n == 0);
			store_install_free(in);
			free(v);
			ok &= store_install_delete(s, "atom", NULL) >= 0;
		}
		store_close(s);
	}
	tap_ok(t, ok, "install_delete killed at random: all or nothing");
	free(ops);
	free(ids);
}

/* Counts export's pairs and states of one token. */
struct count {
	const char *tok;
	size_t pairs, states;
};

static int
count_pair(void *arg, const char *integ, const char *bid, const char *eid)
{
	struct count *c = arg;

	(void)bid;
	(void)eid;
	c->pairs += strcmp(integ, c->tok) == 0;
	return 0;
}

static int
count_state(void *arg, const char *tok, const char *name, const char *v,
    size_t len)
{
	struct count *c = arg;

	(void)name;
	(void)v;
	(void)len;
	c->states += strcmp(tok, c->tok) == 0;
	return 0;
}

/*
 * Forgetting is a tombstone (SPEC 10): the installation is gone for
 * readers at once, its data goes in bounded batches, and what is saved
 * after a re-install is never eaten by the purge of the old one.
 */
static void
test_purge(struct tap *t, struct store *s)
{
	struct store_op ops[500];
	struct store_export_cbs cbs = { NULL, count_pair, count_state };
	struct count c = { .tok = "big" };
	char b[500][16], e[500][16];
	size_t i, pairs = 0, del, total = 0, problems = 99;
	int more = 1, steps = 0, ok = 1;

	/* What earlier tests forgot goes first, so the counts below are
	 * this test's own. */
	while (store_purge_step(s, 1000, NULL, &more) == STORE_OK && more)
		;
	for (i = 0; i < 500; i++) {
		snprintf(b[i], sizeof(b[i]), "b%zu", i);
		snprintf(e[i], sizeof(e[i]), "e%zu", i);
		ops[i] = (struct store_op){ .kind = STORE_OP_IDS_SAVE,
		    .a = "big", .b = b[i], .c = e[i] };
	}
	ok = store_install_record(s, "big", "{}", 2, NULL) == STORE_OK &&
	    store_apply(s, ops, 500, NULL) == STORE_OK &&
	    store_state_set(s, "big", "st", "1", 1) == STORE_OK &&
	    store_ids_save(s, "bigger", "b1", "keep") == STORE_OK;
	tap_ok(t, ok, "an installation of 500 pairs and a state value");
	tap_ok(t, store_install_delete(s, "big", &pairs) == STORE_OK &&
	    pairs == 500, "install_delete: one short transaction, 500 pairs "
	    "forgotten (%zu)", pairs);
	{
		char *v = NULL;
		size_t len = 0;
		struct store_install *in = NULL;

		tap_ok(t, ext_is(s, "big", "b7", NULL) &&
		    bot_is(s, "big", "e7", NULL) &&
		    store_state_get(s, "big", "st", &v, &len) ==
		    STORE_NOTFOUND && store_install_get(s, "big", &in) ==
		    STORE_NOTFOUND, "forgotten at once for every reader");
	}
	tap_ok(t, store_export(s, &cbs, &c) == STORE_OK && c.pairs == 0 &&
	    c.states == 0, "export skips forgotten data (%zu pairs)", c.pairs);
	/* Re-installed before the purge: new data in a new generation. */
	ok = store_install_record(s, "big", "{}", 2, NULL) == STORE_OK &&
	    store_ids_save(s, "big", "b7", "new7") == STORE_OK &&
	    store_state_set(s, "big", "st", "2", 1) == STORE_OK;
	tap_ok(t, ok && ext_is(s, "big", "b7", "new7") &&
	    bot_is(s, "big", "e8", NULL), "re-install: a save lands in the "
	    "new generation, old pairs stay invisible");
	/* One step takes part of it: verify sees no half-purged pair. */
	tap_ok(t, store_purge_step(s, 300, &del, &more) == STORE_OK &&
	    del == 300 && more == 1, "a purge step deletes at most max_keys "
	    "(%zu), more left", del);
	total = del;
	tap_ok(t, store_verify(s, NULL, NULL, &problems) == STORE_OK &&
	    problems == 0, "verify ignores a half-purged generation (%zu)",
	    problems);
	while (more && steps++ < 100) {
		if (store_purge_step(s, 300, &del, &more) != STORE_OK)
			break;
		total += del;
	}
	tap_ok(t, !more && total == 1001, "purged in batches: 1000 keys of "
	    "pairs and 1 of state (%zu in %d steps)", total, steps + 1);
	{
		char *v = NULL;
		size_t len = 0;
		int sok = store_state_get(s, "big", "st", &v, &len) ==
		    STORE_OK && len == 1 && v[0] == '2';

		free(v);
		tap_ok(t, ext_is(s, "big", "b7", "new7") &&
		    bot_is(s, "big", "new7", "b7") && sok &&
		    ext_is(s, "bigger", "b1", "keep"), "the purge spared the "
		    "new generation and the neighbour");
	}
	c.pairs = c.states = 0;
	tap_ok(t, store_export(s, &cbs, &c) == STORE_OK && c.pairs == 1 &&
	    c.states == 1, "export shows the new generation only");
	tap_ok(t, store_purge_step(s, 300, &del, &more) == STORE_OK &&
	    del == 0 && more == 0, "nothing left to purge");
	/* delete_all is a tombstone too, and keeps the state. */
	tap_ok(t, store_ids_delete_all(s, "big", &pairs) == STORE_OK &&
	    pairs == 1 && ext_is(s, "big", "b7", NULL),
	    "delete_all forgets the new generation's pair");
	{
		char *v = NULL;
		size_t len = 0;

		tap_ok(t, store_state_get(s, "big", "st", &v, &len) ==
		    STORE_OK, "delete_all keeps the state");
		free(v);
	}
	while (store_purge_step(s, 1000, NULL, &more) == STORE_OK && more)
		;
	tap_ok(t, store_install_delete(s, "big", NULL) == STORE_OK &&
	    store_install_delete(s, "big", NULL) == STORE_NOTFOUND,
	    "install_delete, then again: not found");
}

/* Takes the lock in a child; its exit status is the store_lock_rc. */
static int
lock_in_child(const char *home, int server, int release)
{
	struct store_lock *l = NULL;
	struct store_lock_info li;
	char err[256];
	int st = 0, rc;
	pid_t pid = fork();

	if (pid == 0) {
		rc = store_lock_take(&l, home, server, 100, &li, err,
		    sizeof(err));
		if (rc == STORE_LOCK_TAKEN && release)
			store_lock_release(l, 1);
		_exit(rc < 0 ? 99 : rc);	/* dies holding it unless released */
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* store.lock: one holder, busy or server answers, a dead holder's pid. */
static void
test_lock(struct tap *t, const char *home)
{
	struct store_lock *l = NULL;
	struct store_lock_info li;
	char err[256];
	int rc;

	rc = store_lock_take(&l, home, 0, 100, &li, err, sizeof(err));
	tap_ok(t, rc == STORE_LOCK_TAKEN && !li.dirty, "a tool takes the "
	    "lock (%d %s)", rc, err);
	tap_ok(t, lock_in_child(home, 0, 1) == STORE_LOCK_BUSY,
	    "another tool waits, bounded, then is told it is busy");
	store_lock_release(l, 1);
	tap_ok(t, lock_in_child(home, 0, 1) == STORE_LOCK_TAKEN,
	    "released: the next one takes it");
	tap_ok(t, lock_in_child(home, 0, 0) == STORE_LOCK_TAKEN,
	    "a holder that dies without releasing...");
	rc = store_lock_take(&l, home, 1, 100, &li, err, sizeof(err));
	tap_ok(t, rc == STORE_LOCK_TAKEN && li.dirty && li.holder_pid > 0 &&
	    !li.holder_server, "...leaves its pid: the next holder must "
	    "recover (pid %ld)", li.holder_pid);
	tap_ok(t, lock_in_child(home, 0, 1) == STORE_LOCK_SERVER,
	    "a tool finds the server holding it");
	tap_ok(t, lock_in_child(home, 1, 1) == STORE_LOCK_SERVER,
	    "a second server is told a server holds it");
	store_lock_release(l, 1);
	rc = store_lock_take(&l, home, 0, 100, &li, err, sizeof(err));
	tap_ok(t, rc == STORE_LOCK_TAKEN && !li.dirty, "after a clean "
	    "release nothing is left to recover");
	store_lock_release(l, 1);
}

int
main(void)
{
	struct tap t = { 0 };
	struct store *s;
	char dir[512], home[600], err[512];
	int rc;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	if (tap_tmpdir(dir, sizeof(dir), "store") != 0) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(home, sizeof(home), "%s/env", dir);
	{
		struct store_opts o = { .home = "" };

		tap_ok(&t, store_open(&s, &o, err, sizeof(err)) ==
		    STORE_EINVAL && s == NULL, "open without a home refused");
	}
	/* Before any handle exists: its children fork a small process
	 * (valgrind checks each child's memory at its exit). */
	if (!test_redis())
		test_lock(&t, home);
	if ((s = open_store(&t, home, STORE_DURABILITY_SYNC)) == NULL)
		goto out;
	if (!test_redis())
		test_files(&t, home);
	test_ids(&t, s);
	test_delete_all(&t, s);
	test_installs(&t, s);
	test_bulk(&t, s);
	test_purge(&t, s);
	store_close(s);

	/* Committed data survives a close and reopen, by another handle. */
	if ((s = open_store(&t, home, STORE_DURABILITY_WRITE)) == NULL)
		goto out;
	tap_ok(&t, ext_is(s, "i", "b1", "e1") && ext_is(s, "tok2", "b7", "e7"),
	    "pairs persist across close and open");
	store_close(s);
	if (test_redis())
		goto out; /* the rest is Berkeley DB's recovery */

	rc = store_check_after_death(home, 5000, err, sizeof(err));
	tap_ok(&t, rc == STORE_CHECK_CLEAN, "check_after_death on a quiet "
	    "environment: clean (%d %s)", rc, err);
	rc = store_recover(home, 10000, err, sizeof(err));
	tap_ok(&t, rc == STORE_OK, "store_recover with nobody attached (%s)",
	    err);
	if ((s = open_store(&t, home, STORE_DURABILITY_WRITE)) == NULL)
		goto out;
	tap_ok(&t, ext_is(s, "i", "b1", "e1"), "pairs survive recovery");
	store_close(s);
	rc = store_check_after_death("/nonexistent/dir", 5000, err,
	    sizeof(err));
	tap_ok(&t, rc == STORE_ERROR && strstr(err, "/nonexistent/dir") != NULL,
	    "check on a missing home: error naming it (%s)", err);

	test_delete_atomic(&t, home);
out:
	tap_rmtree(dir);
	return tap_done(&t);
}
