## tests/bench/: `make bench` - measurements written to BENCHMARKS.md.
## Never part of all or check (CI stays fast).  BENCH_QUICK=1 for a short
## run (seconds per case) while developing; the full run takes ~20 minutes
## on a 2-core machine.

# The FastCGI ceiling: a minimal pre-forked libfcgi responder, built on
# demand like the other benchmark programs.
EXTRA_PROGRAMS += fcgi-ceiling
BENCH_PROGS += fcgi-ceiling
fcgi_ceiling_SOURCES = tests/bench/fcgi-ceiling.c
fcgi_ceiling_CFLAGS = $(AM_CFLAGS) $(FCGI_CFLAGS)
fcgi_ceiling_LDADD = $(FCGI_LIBS)
CLEANFILES += fcgi-ceiling

EXTRA_DIST += tests/bench/run-bench.py tests/bench/standin-delay.py \
	tests/bench/bench-queue.py tests/bench/bench-drain.py \
	tests/bench/bench-redis.py

# Everything the run needs, then the driver.  It overwrites BENCHMARKS.md
# at the top of the source tree (BENCH_OUT= for another file).
BENCH_OUT = $(abs_top_srcdir)/BENCHMARKS.md
bench: botmatic-fcgi botmatic-keys $(pkglib_LTLIBRARIES) $(BENCH_PROGS)
	@test -n '$(PYTHON3)' || { echo 'make bench: python3 not found'; exit 1; }
	BM_TEST_BUILDDIR='$(abs_top_builddir)' \
	BM_TEST_SRCDIR='$(abs_top_srcdir)' \
	BM_TEST_NGINX="$${BM_TEST_NGINX:-$(NGINX)}" \
	BENCH_WRK="$${BENCH_WRK:-$(WRK)}" \
	BENCH_VALGRIND="$${BENCH_VALGRIND:-$(VALGRIND)}" \
	PYTHONDONTWRITEBYTECODE=1 \
	$(PYTHON3) $(top_srcdir)/tests/bench/run-bench.py '$(BENCH_OUT)'
	$(MAKE) $(AM_MAKEFLAGS) bench-queue
	$(MAKE) $(AM_MAKEFLAGS) bench-redis

# The delivery queue's section of BENCHMARKS.md (also alone, in minutes).
bench-queue: botmatic-fcgi botmatic-keys bench-jobs
	@test -n '$(PYTHON3)' || { echo 'make bench: python3 not found'; exit 1; }
	BM_TEST_BUILDDIR='$(abs_top_builddir)' \
	BM_TEST_SRCDIR='$(abs_top_srcdir)' \
	BM_TEST_NGINX="$${BM_TEST_NGINX:-$(NGINX)}" \
	PYTHONDONTWRITEBYTECODE=1 \
	$(PYTHON3) $(top_srcdir)/tests/bench/bench-queue.py '$(BENCH_OUT)'

# A long queue drained end to end and the delivery process's memory along
# the way (BENCH_DRAIN_N jobs, default 1,000,000: about 16 minutes here);
# prints a table, written into BENCHMARKS.md by hand.
bench-drain: botmatic-fcgi
	@test -n '$(PYTHON3)' || { echo 'make bench: python3 not found'; exit 1; }
	BM_TEST_BUILDDIR='$(abs_top_builddir)' \
	BM_TEST_SRCDIR='$(abs_top_srcdir)' \
	BM_TEST_NGINX="$${BM_TEST_NGINX:-$(NGINX)}" \
	PYTHONDONTWRITEBYTECODE=1 \
	$(PYTHON3) $(top_srcdir)/tests/bench/bench-drain.py

# Redis beside Berkeley DB (SPEC §14): the keystore and the contact_created
# figures with BM_STORE=redis on loopback; its section of BENCHMARKS.md
# (also alone, about 8 minutes).  Needs redis-server.
bench-redis: botmatic-fcgi bench-store $(pkglib_LTLIBRARIES)
	@test -n '$(PYTHON3)' || { echo 'make bench: python3 not found'; exit 1; }
	BM_TEST_BUILDDIR='$(abs_top_builddir)' \
	BM_TEST_SRCDIR='$(abs_top_srcdir)' \
	BM_TEST_NGINX="$${BM_TEST_NGINX:-$(NGINX)}" \
	BM_TEST_REDIS="$${BM_TEST_REDIS:-$(REDIS_SERVER)}" \
	BENCH_WRK="$${BENCH_WRK:-$(WRK)}" \
	PYTHONDONTWRITEBYTECODE=1 \
	$(PYTHON3) $(top_srcdir)/tests/bench/bench-redis.py '$(BENCH_OUT)'

.PHONY: bench bench-queue bench-drain bench-redis
