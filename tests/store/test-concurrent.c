/*
 * tests/store/test-concurrent.c - PROCS processes open one fresh
 * environment at the same instant and save and read overlapping pairs:
 * the same shared pairs (identical in every process), pairs of their own,
 * and one hot botmatic id that they all relink.  Afterwards every committed
 * pair is checked, the hot id has exactly one partner, the store is still
 * a bijection, and a concurrent first install gave everyone the same id.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/store/backend.h"
#include "tests/tap.h"

enum { PROCS = 4, SHARED = 500, OWN = 500, HOT = 100 };

static int
worker(const char *home, int p, int go)
{
	struct store_opts o = { .home = home };
	struct store_install *in = NULL;
	struct store *s = NULL;
	char b[64], e[64], integ[32], err[512], *v = NULL, path[1024];
	int i, k, bad = 0, fd;

	test_opts(&o);
	/* Everyone starts at once: the parent closes the pipe. */
	(void)!read(go, b, 1);
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "worker %d: %s\n", p, err);
		return 100;
	}
	for (k = 0; k < SHARED; k++) {
		i = (k + p * SHARED / PROCS) % SHARED;
		snprintf(b, sizeof(b), "b%d", i);
		snprintf(e, sizeof(e), "e%d", i);
		if (store_ids_save(s, "shared", b, e) != STORE_OK) {
			fprintf(stderr, "save: %s\n", store_strerror(s));
			bad++;
		}
		if (store_ext_id_get(s, "shared", b, &v) != STORE_OK ||
		    strcmp(v, e) != 0)
			bad++;
		free(v);
		v = NULL;
		snprintf(integ, sizeof(integ), "own%d", p);
		snprintf(e, sizeof(e), "x%d-%d", p, k);
		if (store_ids_save(s, integ, b, e) != STORE_OK)
			bad++;
		if (k < HOT) {
			snprintf(e, sizeof(e), "hot%d-%d", p, k);
			if (store_ids_save(s, "hot", "hb", e) != STORE_OK) {
				fprintf(stderr, "hot: %s\n", store_strerror(s));
				bad++;
			}
			/* Read load on what the others write; the answer
			 * depends on the timing. */
			if (store_botmatic_id_get(s, "hot", e, &v) < 0)
				bad++;
			free(v);
			v = NULL;
		}
		if (k == SHARED / 2) {
			if (store_install_record(s, "shared-token", "{}", 2,
			    &in) != STORE_OK)
				bad++;
			snprintf(path, sizeof(path), "%s.id%d", home, p);
			if (in != NULL && (fd = open(path, O_WRONLY | O_CREAT,
			    0600)) >= 0) {
				(void)!write(fd, in->install_id,
				    STORE_INSTALL_ID_LEN);
				close(fd);
			}
			store_install_free(in);
			in = NULL;
		}
	}
	store_close(s);
	return bad > 99 ? 99 : bad;
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

int
main(void)
{
	struct tap t = { 0 };
	struct store_opts o = { 0 };
	struct store *s = NULL;
	char dir[512], home[600], err[512], b[64], e[64], integ[32], *v;
	char ids[PROCS][STORE_INSTALL_ID_LEN + 1], path[1024];
	pid_t pids[PROCS];
	size_t n, problems = 99;
	int go[2], i, p, status, bad, fd;

	if (tap_tmpdir(dir, sizeof(dir), "conc") != 0 || pipe(go) != 0) {
		printf("Bail out! %s\n", strerror(errno));
		return 1;
	}
	snprintf(home, sizeof(home), "%s/env", dir);
	for (p = 0; p < PROCS; p++)
		if ((pids[p] = fork()) == 0) {
			close(go[1]);
			_exit(worker(home, p, go[0]));
		}
	close(go[0]);
	close(go[1]);
	for (p = 0; p < PROCS; p++) {
		waitpid(pids[p], &status, 0);
		tap_ok(&t, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "process %d: every save and read succeeded (status %d)",
		    p, status);
	}
	o.home = home;
	test_opts(&o);
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		tap_ok(&t, 0, "open: %s", err);
		goto out;
	}
	bad = 0;
	for (i = 0; i < SHARED; i++) {
		snprintf(b, sizeof(b), "b%d", i);
		snprintf(e, sizeof(e), "e%d", i);
		v = NULL;
		if (store_ext_id_get(s, "shared", b, &v) != STORE_OK ||
		    strcmp(v, e) != 0)
			bad++;
		free(v);
		v = NULL;
		if (store_botmatic_id_get(s, "shared", e, &v) != STORE_OK ||
		    strcmp(v, b) != 0)
			bad++;
		free(v);
		for (p = 0; p < PROCS; p++) {
			snprintf(integ, sizeof(integ), "own%d", p);
			v = NULL;
			if (store_ext_id_get(s, integ, b, &v) != STORE_OK ||
			    strncmp(v, "x", 1) != 0)
				bad++;
			free(v);
		}
	}
	tap_ok(&t, bad == 0, "all %d shared and %d own pairs present (%d bad)",
	    SHARED, PROCS * OWN, bad);
	n = 0;
	v = NULL;
	bad = store_ids_foreach(s, "hot", count_fn, &n) != STORE_OK ||
	    store_ext_id_get(s, "hot", "hb", &v) != STORE_OK;
	tap_ok(&t, !bad && n == 1, "the hot id has exactly one partner "
	    "(%zu pairs, %s)", n, v ? v : "none");
	free(v);
	bad = store_verify(s, NULL, NULL, &problems) != STORE_OK;
	tap_ok(&t, !bad && problems == 0, "still a bijection (%zu problems)",
	    problems);
	bad = 0;
	for (p = 0; p < PROCS; p++) {
		snprintf(path, sizeof(path), "%s.id%d", home, p);
		memset(ids[p], 0, sizeof(ids[p]));
		if ((fd = open(path, O_RDONLY)) < 0 ||
		    read(fd, ids[p], STORE_INSTALL_ID_LEN) !=
		    STORE_INSTALL_ID_LEN)
			bad++;
		if (fd >= 0)
			close(fd);
		if (p > 0 && strcmp(ids[p], ids[0]) != 0)
			bad++;
	}
	tap_ok(&t, bad == 0, "a concurrent first install gave one install id");
	store_close(s);
out:
	tap_rmtree(dir);
	return tap_done(&t);
}
