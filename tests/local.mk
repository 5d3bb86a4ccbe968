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
	tests/integration/test-settings-browser.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) tests/integration/bmtest.py
# The Debian packaging, built by tests/integration/test-debian.py.
EXTRA_DIST += debian

## The layout of app/: no part includes a part above it (app/README).
TESTS += tests/unit/test-layout.sh
EXTRA_DIST += tests/unit/test-layout.sh app/README
