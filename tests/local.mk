## tests/: harness pieces shared by every folder's tests.
EXTRA_DIST += tests/run-python.sh
