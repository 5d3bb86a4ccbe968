#!/bin/sh
# Runs a Python test driver; without python3 the test reports SKIP (TAP "1..0").
if [ -z "$BM_TEST_PYTHON" ] || [ ! -x "$BM_TEST_PYTHON" ]; then
	echo "1..0 # SKIP python3 not found"
	exit 0
fi
exec "$BM_TEST_PYTHON" "$@"
