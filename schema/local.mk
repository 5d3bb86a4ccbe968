## schema/: the JSON Schema (2020-12) library, its CLI and tests.

noinst_LIBRARIES += schema/libbmschema.a
schema_libbmschema_a_SOURCES = \
	schema/schema.h \
	schema/schema_private.h \
	schema/compile.c \
	schema/validate.c \
	schema/value.c
schema_libbmschema_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(PCRE2_CFLAGS)

# The library's users link it, jansson, PCRE2 and libm.
SCHEMA_LIBS = schema/libbmschema.a $(JANSSON_LIBS) $(PCRE2_LIBS) -lm

bin_PROGRAMS += botmatic-schema
botmatic_schema_SOURCES = schema/botmatic-schema.c
botmatic_schema_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
botmatic_schema_LDADD = $(SCHEMA_LIBS)
dist_man_MANS += man/botmatic-schema.1

# Unit tests (TAP); the official JSON-Schema-Test-Suite (draft 7 files,
# translated where 2020-12 only renamed things; SKIP when the Debian
# package json-schema-test-suite is absent); the CLI.
check_PROGRAMS += tests/unit/test-schema tests/unit/test-schema-suite
TESTS += tests/unit/test-schema tests/unit/test-schema-suite \
	tests/unit/test-botmatic-schema.sh
tests_unit_test_schema_SOURCES = tests/unit/test-schema.c tests/tap.h
tests_unit_test_schema_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) -pthread
tests_unit_test_schema_LDADD = $(SCHEMA_LIBS) -lpthread
tests_unit_test_schema_suite_SOURCES = tests/unit/test-schema-suite.c \
	tests/tap.h
tests_unit_test_schema_suite_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	-DBM_SCHEMA_SUITE_DIR='"$(JSON_SCHEMA_TEST_SUITE)"'
tests_unit_test_schema_suite_LDADD = $(SCHEMA_LIBS)
EXTRA_DIST += tests/unit/test-botmatic-schema.sh
