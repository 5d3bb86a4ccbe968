## nginx/: deployment samples for nginx, Apache and systemd, and the
## script that runs the server behind a private nginx from the build tree.
## The samples are installed as documentation examples, the systemd units
## in $(systemdsystemunitdir) (configure --with-systemdsystemunitdir); all
## of it is in the tarball, where the integration tests run nginx with the
## fastcgi pieces.
examplesdir = $(docdir)/examples
dist_examples_DATA = \
	nginx/botmatic-fastcgi.conf \
	nginx/botmatic-errors.conf \
	nginx/botmatic-limits.conf \
	nginx/botmatic-fcgi.conf \
	nginx/apache-botmatic-fcgi.conf \
	nginx/botmatic-fcgi.default \
	nginx/events.json
EXTRA_DIST += nginx/run.sh nginx/botmatic-fcgi.service.in

systemdsystemunit_DATA = nginx/botmatic-fcgi.service
dist_systemdsystemunit_DATA = nginx/botmatic-fcgi.socket
CLEANFILES += nginx/botmatic-fcgi.service

# Written at make time, not by configure: @bindir@ is only final here
# (configure leaves it as ${exec_prefix}/bin).
nginx/botmatic-fcgi.service: $(srcdir)/nginx/botmatic-fcgi.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) nginx && \
	sed -e 's|@bindir[@]|$(bindir)|g' \
	    -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    $(srcdir)/nginx/botmatic-fcgi.service.in > $@.tmp && mv $@.tmp $@
