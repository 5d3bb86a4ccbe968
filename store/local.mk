## store/: the Berkeley DB keystore, its CLI, tests and benchmark.
noinst_LIBRARIES += store/libbmstore.a
store_libbmstore_a_SOURCES = store/store.h store/store_int.h \
	store/ops.c store/redis.c store/redis_int.h store/redis-data.c \
	store/redis-jobs.c store/redis-svc.c \
	store/env.c store/ids.c store/install.c store/state.c store/dump.c \
	store/seen.c store/crypto.c store/migrate.c store/services.c \
	store/supervise.c store/purge.c store/lock.c store/control.c \
	store/cli.c store/jobs.c store/cli-outbox.c store/cli-outbox.h \
	store/cli-hooks.c store/cli-hooks.h \
	store/cli-services.c store/cli-services.h store/cli-migrate.c \
	store/cli-migrate.h
store_libbmstore_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS) \
	$(HIREDIS_CFLAGS)

## Tests: TAP programs.
STORE_TEST_LIBS = store/libbmstore.a $(DB_LIBS) $(HIREDIS_LIBS) $(CRYPTO_LIBS)
check_PROGRAMS += tests/store/test-store
tests_store_test_store_SOURCES = tests/store/test-store.c tests/tap.h
tests_store_test_store_LDADD = $(STORE_TEST_LIBS)
TESTS += tests/store/test-store
check_PROGRAMS += tests/store/test-concurrent tests/store/test-chaos
tests_store_test_concurrent_SOURCES = tests/store/test-concurrent.c \
	tests/tap.h
tests_store_test_concurrent_LDADD = $(STORE_TEST_LIBS)
tests_store_test_chaos_SOURCES = tests/store/test-chaos.c tests/tap.h
tests_store_test_chaos_LDADD = $(STORE_TEST_LIBS)
TESTS += tests/store/test-concurrent tests/store/test-chaos
check_PROGRAMS += tests/store/test-secrets
tests_store_test_secrets_SOURCES = tests/store/test-secrets.c tests/tap.h
tests_store_test_secrets_LDADD = $(STORE_TEST_LIBS)
TESTS += tests/store/test-secrets
check_PROGRAMS += tests/store/test-jobs
tests_store_test_jobs_SOURCES = tests/store/test-jobs.c tests/tap.h
tests_store_test_jobs_LDADD = $(STORE_TEST_LIBS)
TESTS += tests/store/test-jobs
check_PROGRAMS += tests/store/test-services
tests_store_test_services_SOURCES = tests/store/test-services.c tests/tap.h
tests_store_test_services_LDADD = $(STORE_TEST_LIBS)
TESTS += tests/store/test-services
# What only Redis has (it starts its own redis-server).
check_PROGRAMS += tests/store/test-redis
tests_store_test_redis_SOURCES = tests/store/test-redis.c tests/tap.h
tests_store_test_redis_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
tests_store_test_redis_LDADD = $(STORE_TEST_LIBS)
TESTS += tests/store/test-redis
# The contract suite on Redis: the same programs against a redis-server
# of their own (tests/store/with-redis.sh; skipped without redis-server).
REDIS_TESTS = tests/store/test-store-redis.redis \
	tests/store/test-concurrent-redis.redis \
	tests/store/test-jobs-redis.redis \
	tests/store/test-services-redis.redis
TESTS += $(REDIS_TESTS)
EXTRA_DIST += $(REDIS_TESTS) tests/store/with-redis.sh tests/store/backend.h
# A loader for tests/integration/test-one-store.py.
check_PROGRAMS += tests/store/bulk-load
tests_store_bulk_load_SOURCES = tests/store/bulk-load.c
tests_store_bulk_load_LDADD = $(STORE_TEST_LIBS)

## The command-line tool.
bin_PROGRAMS += botmatic-keys
botmatic_keys_SOURCES = store/botmatic-keys.c
botmatic_keys_CFLAGS = $(AM_CFLAGS)
botmatic_keys_LDADD = store/libbmstore.a $(JANSSON_LIBS) $(CRYPTO_LIBS) $(DB_LIBS) $(HIREDIS_LIBS)
dist_man_MANS += man/botmatic-keys.1
TESTS += tests/store/botmatic-keys.sh tests/store/kill-loop.sh \
	tests/store/redis-keys.sh
EXTRA_DIST += tests/store/botmatic-keys.sh tests/store/kill-loop.sh \
	tests/store/redis-keys.sh

## Benchmark: built on demand (make bench-store), never by all or check.
EXTRA_PROGRAMS += bench-store
BENCH_PROGS += bench-store
bench_store_SOURCES = tests/bench/bench-store.c tests/tap.h
bench_store_LDADD = store/libbmstore.a $(DB_LIBS) $(HIREDIS_LIBS) $(CRYPTO_LIBS)
CLEANFILES += bench-store
EXTRA_PROGRAMS += bench-jobs
BENCH_PROGS += bench-jobs
bench_jobs_SOURCES = tests/bench/bench-jobs.c tests/tap.h
bench_jobs_LDADD = store/libbmstore.a $(DB_LIBS) $(HIREDIS_LIBS) $(CRYPTO_LIBS)
CLEANFILES += bench-jobs
EXTRA_DIST += tests/valgrind.supp
