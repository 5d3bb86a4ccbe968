## app/: the responder.
bin_PROGRAMS += botmatic-fcgi
noinst_LIBRARIES += app/libbmapp.a
# Everything but main(), so unit tests link the same objects.
app_libbmapp_a_SOURCES = \
	app/botmatic/module.h \
	app/botmatic.c app/botmatic.h \
	app/conf.c app/conf.h \
	app/dispatch.c app/dispatch.h \
	app/keystore.c app/keystore.h \
	app/listen.c app/listen.h \
	app/log.c app/log.h \
	app/master.c app/master.h \
	app/metrics.c app/metrics.h \
	app/module.c app/module.h \
	app/negcache.c app/negcache.h \
	app/notify.c app/notify.h \
	app/proto.c app/proto.h \
	app/registry.c app/registry.h \
	app/req.c app/req.h \
	app/sync.c app/sync.h \
	app/worker.c app/worker.h
app_libbmapp_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(FCGI_CFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS)
APP_LIBS = app/libbmapp.a mapping/libbmmapping.a store/libbmstore.a $(JANSSON_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(FCGI_LIBS) $(DB_LIBS) $(DL_LIBS) $(SYSTEMD_LIBS)

botmatic_fcgi_SOURCES = app/main.c
botmatic_fcgi_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
botmatic_fcgi_LDADD = $(APP_LIBS)

botmaticincludedir = $(includedir)/botmatic
botmaticinclude_HEADERS = app/botmatic/module.h

# Example modules, installed to $(pkglibdir).
MODULE_LDFLAGS = -module -avoid-version -shared -export-symbols-regex '^bm_module_entry$$'
pkglib_LTLIBRARIES += app/modules/echo.la app/modules/set_property.la
app_modules_echo_la_SOURCES = app/modules/echo.c
app_modules_echo_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
app_modules_echo_la_LDFLAGS = $(AM_LDFLAGS) $(MODULE_LDFLAGS)
app_modules_echo_la_LIBADD = $(JANSSON_LIBS)
app_modules_set_property_la_SOURCES = app/modules/set_property.c
app_modules_set_property_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
app_modules_set_property_la_LDFLAGS = $(AM_LDFLAGS) $(MODULE_LDFLAGS)
app_modules_set_property_la_LIBADD = $(JANSSON_LIBS)

dist_man_MANS += man/botmatic-fcgi.8
