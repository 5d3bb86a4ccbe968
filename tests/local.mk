## tests/: harness pieces shared by every folder's tests.
EXTRA_DIST += tests/run-python.sh

## tests/integration/: Python drivers (stdlib only) that print TAP.  They
## start the real server from the build tree, a real nginx or Apache
## (BM_TEST_NGINX, BM_TEST_APACHE: SKIP when empty) and stand-in HTTP
## servers, all on loopback and in a private tempdir (kept with
## BM_TEST_LEAVE=1).
INTEGRATION_TESTS = \
	tests/integration/test-protocol.py \
	tests/integration/test-modules.py \
	tests/integration/test-signals.py \
	tests/integration/test-pool.py \
	tests/integration/test-apache.py \
	tests/integration/test-deploy.py \
	tests/integration/test-runscript.py \
	tests/integration/test-ops.py \
	tests/integration/test-debian.py \
	tests/integration/test-settings.py \
	tests/integration/test-settings-browser.py \
	tests/integration/test-security.py \
	tests/integration/test-oauth.py \
	tests/integration/test-events.py \
	tests/integration/test-events-redis.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) tests/integration/bmtest.py
# The Debian packaging, built by tests/integration/test-debian.py.
EXTRA_DIST += debian

## The layout of app/: no part includes a part above it (app/README).
TESTS += tests/unit/test-layout.sh
EXTRA_DIST += tests/unit/test-layout.sh app/README

## tests/fuzz/: libFuzzer targets of the server's parsers (tests/fuzz/README):
## the request head checks and bearer token, the envelope, the Standard
## Webhooks headers.  `make check` runs each briefly (SKIP without clang);
## `configure --enable-fuzzers` also builds them in tests/fuzz/ with every
## `make`, for long runs.
FUZZ_APP_TARGETS = request-head envelope webhook-sig
FUZZ_APP_BUILD = BM_TEST_SRCDIR='$(abs_top_srcdir)' \
	BM_TEST_BUILDDIR='$(abs_top_builddir)' CLANG='$(CLANG)' \
	$(SHELL) $(top_srcdir)/tests/fuzz/build-app.sh
TESTS += tests/fuzz/fuzz-app.sh
EXTRA_DIST += tests/fuzz/fuzz-app.sh tests/fuzz/build-app.sh \
	tests/fuzz/fuzz-request-head.c tests/fuzz/fuzz-envelope.c \
	tests/fuzz/fuzz-webhook-sig.c tests/fuzz/corpus
if FUZZERS
FUZZ_APP_BINS = tests/fuzz/fuzz-request-head tests/fuzz/fuzz-envelope \
	tests/fuzz/fuzz-webhook-sig
all-local: $(FUZZ_APP_BINS)
CLEANFILES += $(FUZZ_APP_BINS) tests/fuzz/probe tests/fuzz/probe.c
tests/fuzz/fuzz-request-head: $(top_srcdir)/tests/fuzz/fuzz-request-head.c \
    $(top_srcdir)/app/fcgi/proto.c $(top_srcdir)/app/auth/token.c \
    $(top_srcdir)/app/fcgi/fcgi.h $(top_srcdir)/app/auth/auth.h config.h
	$(AM_V_GEN)$(FUZZ_APP_BUILD) request-head
tests/fuzz/fuzz-envelope: $(top_srcdir)/tests/fuzz/fuzz-envelope.c \
    $(top_srcdir)/app/dispatch/envelope.c \
    $(top_srcdir)/app/dispatch/dispatch.h config.h
	$(AM_V_GEN)$(FUZZ_APP_BUILD) envelope
tests/fuzz/fuzz-webhook-sig: $(top_srcdir)/tests/fuzz/fuzz-webhook-sig.c \
    $(top_srcdir)/app/auth/webhook.c $(top_srcdir)/app/auth/auth.h config.h
	$(AM_V_GEN)$(FUZZ_APP_BUILD) webhook-sig
endif
