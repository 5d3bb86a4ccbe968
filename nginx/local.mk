## nginx/: deployment samples for nginx, Apache and systemd, and the
## script that runs the server behind a private nginx from the build tree.
## The samples are installed as documentation examples; all of it is in the
## tarball, where the integration tests run nginx with the fastcgi pieces.
examplesdir = $(docdir)/examples
dist_examples_DATA = \
	nginx/botmatic-fastcgi.conf \
	nginx/botmatic-errors.conf \
	nginx/botmatic-limits.conf \
	nginx/botmatic-fcgi.conf \
	nginx/apache-botmatic-fcgi.conf \
	nginx/botmatic-fcgi.socket \
	nginx/botmatic-fcgi.service
EXTRA_DIST += nginx/run.sh
