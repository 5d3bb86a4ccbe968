/*
 * tests/store/bulk-load.c - loads N pairs into one integration, fast,
 * through the store API in one process (for the large-uninstall test:
 * HTTP would take far too long).  Takes store.lock like any tool; on
 * Redis (BM_STORE=redis, BM_REDIS_URL) there is no lock to take.
 * Usage: bulk-load HOME TOKEN N.  Exit 0 or 2 (one line on stderr).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define BATCH 5000

int
main(int argc, char **argv)
{
	struct store_opts o = { 0 };
	struct store_lock *lock = NULL;
	struct store_lock_info li;
	struct store *s = NULL;
	struct store_op *ops = NULL;
	char (*b)[24] = NULL, (*e)[24] = NULL, err[1024];
	long n, i, k;
	int ret = 2, clean = 0;

	if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: bulk-load HOME TOKEN N\n");
		return 2;
	}
	if (store_opts_env(&o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "bulk-load: %s\n", err);
		return 2;
	}
	if (o.backend == STORE_BACKEND_REDIS)
		goto open;
	if (store_lock_take(&lock, argv[1], 0, 30000, &li, err, sizeof(err))
	    != STORE_LOCK_TAKEN) {
		fprintf(stderr, "bulk-load: %s: store.lock is not free %s\n",
		    argv[1], err);
		return 2;
	}
	if (li.dirty && store_recover(argv[1], 60000, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "bulk-load: %s\n", err);
		goto out;
	}
open:
	o.home = argv[1];
	o.durability = STORE_DURABILITY_WRITE;
	/* The key the server and botmatic-keys seal tokens with, if any. */
	o.key_file = getenv("BM_SECRET_KEY_FILE");
	o.cache_mb = 128;
	if (store_open(&s, &o, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "bulk-load: %s\n", err);
		goto out;
	}
	if ((ops = calloc(BATCH, sizeof(*ops))) == NULL ||
	    (b = calloc(BATCH, sizeof(*b))) == NULL ||
	    (e = calloc(BATCH, sizeof(*e))) == NULL) {
		fprintf(stderr, "bulk-load: out of memory\n");
		goto out;
	}
	if (store_install_record(s, argv[2], "{}", 2, NULL) != STORE_OK) {
		fprintf(stderr, "bulk-load: %s\n", store_strerror(s));
		goto out;
	}
	for (i = 0; i < n; i += k) {
		for (k = 0; k < BATCH && i + k < n; k++) {
			snprintf(b[k], sizeof(b[k]), "b%09ld", i + k);
			snprintf(e[k], sizeof(e[k]), "e%09ld", i + k);
			ops[k] = (struct store_op){ .kind = STORE_OP_IDS_SAVE,
			    .a = argv[2], .b = b[k], .c = e[k] };
		}
		if (store_apply(s, ops, (size_t)k, NULL) != STORE_OK) {
			fprintf(stderr, "bulk-load: %s\n", store_strerror(s));
			goto out;
		}
	}
	ret = 0;
out:
	clean = store_close(s) == 0;
	store_lock_release(lock, clean);
	free(ops);
	free(b);
	free(e);
	return ret;
}
