/*
 * tests/bench/bench-store.c - keystore throughput, never run by make check
 * (make bench-store && ./bench-store [options]).
 *
 *   -n N     saves and gets per measurement (default 200000)
 *   -t N     pairs in the store for the delete-all figure (default 10000000)
 *   -i N     pairs of the integration deleted (default 1000000)
 *   -c MB    cache size (default 512)
 *   -s       sync commits (default: write, DB_TXN_WRITE_NOSYNC)
 *   -d DIR   environment (default: a temporary directory, removed)
 *
 * The backend is the server's: BM_STORE, BM_REDIS_URL... from the
 * environment (store_opts_env), Berkeley DB when unset.
 *
 * Prints lines like "store save 1 proc: 123456/s".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/tap.h"

/* Pairs per transaction when loading. */
#define LOAD_BATCH 5000

struct bench {
	struct store_opts o;
	long n, total, integ;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store *
open_or_die(const struct bench *b)
{
	struct store *s = NULL;
	char err[1024];

	if (store_open(&s, &b->o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "bench-store: %s\n", err);
		exit(2);
	}
	return s;
}

/* n saves (or gets) of pairs first..first+n-1 of integration "bench". */
static int
work(const struct bench *b, int get, long first, long n)
{
	struct store *s = open_or_die(b);
	char bid[32], eid[32], *v;
	long i;
	int rc = 0;

	for (i = first; i < first + n && rc >= 0; i++) {
		/* Scattered keys, as ids come from many contacts. */
		snprintf(bid, sizeof(bid), "%ld", (i * 7919L) % 1000003L + i);
		snprintf(eid, sizeof(eid), "ext-%ld", i);
		if (get) {
			rc = store_ext_id_get(s, "bench", bid, &v);
			free(v);
		} else
			rc = store_ids_save(s, "bench", bid, eid);
	}
	if (rc < 0)
		fprintf(stderr, "bench-store: %s\n", store_strerror(s));
	store_close(s);
	return rc < 0;
}

/* Runs the work in procs processes at once; returns the seconds taken. */
static double
run(const struct bench *b, int get, int procs)
{
	pid_t pid[8];
	double t0 = now_s();
	int p, status, bad = 0;

	/* Each run its own pairs: saving a pair already linked writes
	 * nothing and would flatter the figure. */
	for (p = 0; p < procs; p++)
		if ((pid[p] = fork()) == 0)
			_exit(work(b, get, (procs - 1) * b->n +
			    p * (b->n / procs), b->n / procs));
	for (p = 0; p < procs; p++) {
		waitpid(pid[p], &status, 0);
		bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	if (bad) {
		fprintf(stderr, "bench-store: a worker failed\n");
		exit(2);
	}
	return now_s() - t0;
}

/* Loads count pairs into integration integ, in batches. */
static void
load(struct store *s, const char *integ, long count)
{
	struct store_op *ops = calloc(LOAD_BATCH, sizeof(*ops));
	char (*ids)[2][24] = calloc(LOAD_BATCH, sizeof(*ids));
	long i, k = 0;

	if (ops == NULL || ids == NULL) {
		fprintf(stderr, "bench-store: out of memory\n");
		exit(2);
	}

	for (i = 0; i < count; i++) {
		snprintf(ids[k][0], sizeof(ids[k][0]), "%010ld", i);
		snprintf(ids[k][1], sizeof(ids[k][1]), "x%010ld", i);
		ops[k] = (struct store_op){ .kind = STORE_OP_IDS_SAVE,
		    .a = integ, .b = ids[k][0], .c = ids[k][1] };
		if (++k == LOAD_BATCH || i == count - 1) {
			if (store_apply(s, ops, (size_t)k, NULL) != STORE_OK) {
				fprintf(stderr, "bench-store: load: %s\n",
				    store_strerror(s));
				exit(2);
			}
			k = 0;
		}
	}
	free(ops);
	free(ids);
}

int
main(int argc, char **argv)
{
	struct bench b = { .n = 200000, .total = 10000000, .integ = 1000000 };
	struct store *s;
	char dir[512] = "", home[600], tok[64], err[1024];
	double t, t0;
	long others, i, per;
	size_t deleted = 0;
	int ch, procs;

	b.o.cache_mb = 512;
	while ((ch = getopt(argc, argv, "n:t:i:c:sd:")) != -1)
		switch (ch) {
		case 'n': b.n = atol(optarg); break;
		case 't': b.total = atol(optarg); break;
		case 'i': b.integ = atol(optarg); break;
		case 'c': b.o.cache_mb = (unsigned)atol(optarg); break;
		case 's': b.o.durability = STORE_DURABILITY_SYNC; break;
		case 'd': snprintf(home, sizeof(home), "%s", optarg); break;
		default:
			fprintf(stderr, "usage: bench-store [-n N] [-t TOTAL] "
			    "[-i INTEG] [-c MB] [-s] [-d DIR]\n");
			return 2;
		}
	if (home[0] == '\0') {
		if (tap_tmpdir(dir, sizeof(dir), "bench") != 0) {
			fprintf(stderr, "bench-store: mkdtemp: %s\n",
			    strerror(errno));
			return 2;
		}
		snprintf(home, sizeof(home), "%s/env", dir);
	}
	b.o.home = home;
	if (store_opts_env(&b.o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "bench-store: %s\n", err);
		return 2;
	}
	if (b.o.backend == STORE_BACKEND_REDIS)
		printf("store redis %s\n", b.o.redis_url != NULL ?
		    b.o.redis_url : b.o.redis_sentinels);
	else
		printf("store %s commits, %u MB cache, %s\n", b.o.durability ==
		    STORE_DURABILITY_SYNC ? "sync" : "write", b.o.cache_mb,
		    home);
	/* Create the environment first: not part of any figure. */
	store_close(open_or_die(&b));
	for (procs = 1; procs <= 2; procs++) {
		t = run(&b, 0, procs);
		printf("store save %d proc: %.0f/s\n", procs, (double)b.n / t);
		fflush(stdout);
		t = run(&b, 1, procs);
		printf("store get %d proc: %.0f/s\n", procs, (double)b.n / t);
		fflush(stdout);
	}

	/* delete-all of one integration among many. */
	s = open_or_die(&b);
	others = b.total - b.integ;
	per = others / 9 + 1;
	t0 = now_s();
	for (i = 0; i < 10; i++) {
		/* Tokens like the real ones, the target in the middle. */
		snprintf(tok, sizeof(tok), "tok%02ld-3f9c2a7d1e5b4c8a9f0e", i);
		if (i == 5)
			load(s, "target-3f9c2a7d1e5b4c8a9f0e", b.integ);
		else if (others > 0) {
			load(s, tok, per < others ? per : others);
			others -= per;
		}
	}
	printf("store load %ld pairs: %.1f s\n", b.total, now_s() - t0);
	fflush(stdout);
	t0 = now_s();
	if (store_ids_delete_all(s, "target-3f9c2a7d1e5b4c8a9f0e", &deleted)
	    != STORE_OK) {
		fprintf(stderr, "bench-store: delete-all: %s\n",
		    store_strerror(s));
		return 2;
	}
	t = now_s() - t0;
	printf("store delete-all %zu of %ld pairs: %.2f s (%.0f/s)\n",
	    deleted, b.total, t, (double)deleted / t);
	store_close(s);
	if (dir[0] != '\0')
		tap_rmtree(dir);
	return 0;
}
