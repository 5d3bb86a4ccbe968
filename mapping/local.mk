## mapping/: the field mapping library, its CLI, tests and benchmark.

noinst_LIBRARIES += mapping/libbmmapping.a
mapping_libbmmapping_a_SOURCES = \
	mapping/mapping.h \
	mapping/mapping_private.h \
	mapping/mapping.c \
	mapping/transform.c \
	mapping/date.c \
	mapping/jsnum.c \
	mapping/jstext.c
mapping_libbmmapping_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)

# The library's users link it and jansson (and libm, for jsnum.c).
MAPPING_LIBS = mapping/libbmmapping.a $(JANSSON_LIBS) -lm

bin_PROGRAMS += botmatic-map
botmatic_map_SOURCES = mapping/botmatic-map.c
botmatic_map_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
botmatic_map_LDADD = $(MAPPING_LIBS)
dist_man_MANS += man/botmatic-map.1

# Unit tests (TAP), and the data-driven suite: one case per directory.
check_PROGRAMS += tests/unit/test-mapping tests/unit/test-mapping-data
TESTS += tests/unit/test-mapping tests/unit/test-mapping-data \
	tests/unit/test-botmatic-map.sh tests/fuzz/fuzz-mapping.sh
tests_unit_test_mapping_SOURCES = tests/unit/test-mapping.c
tests_unit_test_mapping_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_mapping_LDADD = $(MAPPING_LIBS)
tests_unit_test_mapping_data_SOURCES = tests/unit/test-mapping-data.c
tests_unit_test_mapping_data_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_mapping_data_LDADD = $(MAPPING_LIBS)
EXTRA_DIST += tests/data/mapping tests/unit/test-botmatic-map.sh \
	tests/fuzz/fuzz-mapping.sh tests/fuzz/fuzz-mapping-load.c \
	tests/fuzz/fuzz-mapping-apply.c tests/fuzz/README

# Benchmark: built on demand (make bench-mapping), never run by make check.
EXTRA_PROGRAMS += bench-mapping
BENCH_PROGS += bench-mapping
bench_mapping_SOURCES = tests/bench/bench-mapping.c
bench_mapping_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_mapping_LDADD = $(MAPPING_LIBS)
CLEANFILES += bench-mapping
