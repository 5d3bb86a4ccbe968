/*
 * tests/store/backend.h - the C store tests run against either backend:
 * the store is chosen from the environment as the server chooses it
 * (BM_STORE, BM_REDIS_URL...; tests/store/with-redis.sh sets them around
 * a redis-server of its own), and the parts that test Berkeley DB's own
 * machinery (files, locks, recovery) ask test_redis() to skip themselves.
 */
#ifndef BM_TESTS_STORE_BACKEND_H
#define BM_TESTS_STORE_BACKEND_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Whether the tests run on Redis (BM_STORE=redis). */
static inline int
test_redis(void)
{
	const char *v = getenv("BM_STORE");

	return v != NULL && strcmp(v, "redis") == 0;
}

/*
 * Fills o's backend from the environment, and on Redis its key file
 * (BM_SECRET_KEY_FILE, which with-redis.sh writes: required there) unless
 * the test set one; bails out if it is bad.
 */
static inline void
test_opts(struct store_opts *o)
{
	char err[512];

	if (store_opts_env(o, err, sizeof(err)) != STORE_OK) {
		printf("Bail out! %s\n", err);
		exit(1);
	}
	if (test_redis() && (o->key_file == NULL || o->key_file[0] == '\0'))
		o->key_file = getenv("BM_SECRET_KEY_FILE");
}

#endif /* BM_TESTS_STORE_BACKEND_H */
