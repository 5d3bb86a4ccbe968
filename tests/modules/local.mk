## tests/modules/: fixture modules loaded by the real server in the tests.
FIXTURE_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_LTLIBRARIES += tests/modules/testmod.la tests/modules/abimod.la \
	tests/modules/nosym.la tests/modules/initfail.la
tests_modules_testmod_la_SOURCES = tests/modules/testmod.c
tests_modules_testmod_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_modules_testmod_la_LDFLAGS = $(AM_LDFLAGS) $(FIXTURE_LDFLAGS)
tests_modules_testmod_la_LIBADD = $(JANSSON_LIBS)
tests_modules_abimod_la_SOURCES = tests/modules/abimod.c
tests_modules_abimod_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_modules_abimod_la_LDFLAGS = $(AM_LDFLAGS) $(FIXTURE_LDFLAGS)
tests_modules_nosym_la_SOURCES = tests/modules/nosym.c
tests_modules_nosym_la_LDFLAGS = $(AM_LDFLAGS) $(FIXTURE_LDFLAGS)
tests_modules_initfail_la_SOURCES = tests/modules/initfail.c
tests_modules_initfail_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_modules_initfail_la_LDFLAGS = $(AM_LDFLAGS) $(FIXTURE_LDFLAGS)

## tests/unit/: the protocol pieces, without FastCGI.
check_PROGRAMS += tests/unit/test-proto tests/unit/test-conf
TESTS += tests/unit/test-proto tests/unit/test-conf
tests_unit_test_proto_SOURCES = tests/unit/test-proto.c tests/tap.h
tests_unit_test_proto_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_proto_LDADD = $(APP_LIBS)
tests_unit_test_conf_SOURCES = tests/unit/test-conf.c tests/tap.h
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_conf_LDADD = $(APP_LIBS)

## Server-level tests of the mapping and the keystore (tests/integration).
TESTS += tests/integration/test-mapping-server.py
EXTRA_DIST += tests/integration/test-mapping-server.py
TESTS += tests/integration/test-keystore.py
EXTRA_DIST += tests/integration/test-keystore.py
TESTS += tests/integration/test-one-store.py
EXTRA_DIST += tests/integration/test-one-store.py
TESTS += tests/integration/test-sync.py
EXTRA_DIST += tests/integration/test-sync.py
TESTS += tests/integration/test-queue.py
EXTRA_DIST += tests/integration/test-queue.py
TESTS += tests/integration/test-valgrind.py
EXTRA_DIST += tests/integration/test-valgrind.py
TESTS += tests/integration/test-install.py
EXTRA_DIST += tests/integration/test-install.py
TESTS += tests/integration/test-consumer.py
EXTRA_DIST += tests/integration/test-consumer.py
TESTS += tests/integration/test-keepalive.py
EXTRA_DIST += tests/integration/test-keepalive.py
## BM_STORE=redis across servers, Redis crashes and failovers, the queue
## taken over (issue 16): each starts its own redis-server (SKIP without).
TESTS += tests/integration/test-redis-share.py \
	tests/integration/test-redis-crash.py \
	tests/integration/test-redis-queue.py
EXTRA_DIST += tests/integration/test-redis-share.py \
	tests/integration/test-redis-crash.py \
	tests/integration/test-redis-queue.py
