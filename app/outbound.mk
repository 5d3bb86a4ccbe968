## app/: outbound HTTP clients (Botmatic API, external REST consumer) and their tests.
app_libbmapp_a_SOURCES += app/http.c app/http.h app/extrest.c app/extrest.h

# A CLI running one outbound call per invocation (or N in one process), for
# tests/integration/test-outbound.py.
check_PROGRAMS += tests/unit/outbound-driver
tests_unit_outbound_driver_SOURCES = tests/unit/outbound-driver.c
tests_unit_outbound_driver_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
tests_unit_outbound_driver_LDADD = $(APP_LIBS)

TESTS += tests/integration/test-outbound.py
EXTRA_DIST += tests/integration/test-outbound.py
