## app/: the server, in parts (app/README): core < outbound < keystore <
## auth < dispatch < sync < events < settings < host < delivery < fcgi < server;
## main.c on top.
bin_PROGRAMS += botmatic-fcgi
noinst_LIBRARIES += app/libbmapp.a
# Everything but main(), so unit tests link the same objects.
app_libbmapp_a_SOURCES = \
	app/botmatic/module.h \
	app/core/core.h app/core/log.c app/core/conf.c app/core/req.c \
	app/core/clock.c app/core/metrics.c \
	app/outbound/outbound.h app/outbound/http.c app/outbound/botmatic.c \
	app/outbound/extrest.c app/outbound/breaker.c \
	app/keystore/keystore.h app/keystore/keystore_int.h \
	app/keystore/keystore.c app/keystore/jobs.c \
	app/auth/auth.h app/auth/token.c app/auth/webhook.c app/auth/delivery.c \
	app/auth/negcache.c \
	app/auth/policy.c \
	app/dispatch/dispatch.h app/dispatch/registry.c \
	app/dispatch/envelope.c app/dispatch/dispatch.c \
	app/sync/sync.h app/sync/sync.c \
	app/events/events.h app/events/events_int.h app/events/events.c \
	app/events/hooks.c \
	app/settings/settings.h app/settings/settings_int.h \
	app/settings/form.c app/settings/assets.c \
	app/services/services.h app/services/oauth.c \
	app/host/host.h app/host/host_int.h app/host/loader.c app/host/trust.c \
	app/host/services.c \
	app/delivery/delivery.h app/delivery/delivery.c \
	app/fcgi/fcgi.h app/fcgi/proto.c app/fcgi/request.c \
	app/server/server.h app/server/master.c app/server/worker.c \
	app/server/listen.c app/server/notify.c
app_libbmapp_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(FCGI_CFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS)
APP_LIBS = app/libbmapp.a mapping/libbmmapping.a store/libbmstore.a $(SCHEMA_LIBS) $(JANSSON_LIBS) $(CURL_LIBS) $(CRYPTO_LIBS) $(FCGI_LIBS) $(DB_LIBS) $(HIREDIS_LIBS) $(DL_LIBS) $(SYSTEMD_LIBS)

botmatic_fcgi_SOURCES = app/main.c
botmatic_fcgi_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
botmatic_fcgi_LDADD = $(APP_LIBS)

botmaticincludedir = $(includedir)/botmatic
botmaticinclude_HEADERS = app/botmatic/module.h

# Example modules, installed to $(pkglibdir).
MODULE_LDFLAGS = -module -avoid-version -shared -export-symbols-regex '^bm_module_entry$$'
pkglib_LTLIBRARIES += app/modules/echo.la app/modules/set_property.la \
	app/modules/github_link.la
app_modules_echo_la_SOURCES = app/modules/echo.c
app_modules_echo_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
app_modules_echo_la_LDFLAGS = $(AM_LDFLAGS) $(MODULE_LDFLAGS)
app_modules_echo_la_LIBADD = $(JANSSON_LIBS)
app_modules_set_property_la_SOURCES = app/modules/set_property.c
app_modules_set_property_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
app_modules_set_property_la_LDFLAGS = $(AM_LDFLAGS) $(MODULE_LDFLAGS)
app_modules_set_property_la_LIBADD = $(JANSSON_LIBS)
app_modules_github_link_la_SOURCES = app/modules/github_link.c
app_modules_github_link_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
app_modules_github_link_la_LDFLAGS = $(AM_LDFLAGS) $(MODULE_LDFLAGS)
app_modules_github_link_la_LIBADD = $(JANSSON_LIBS) $(CURL_LIBS)

dist_man_MANS += man/botmatic-fcgi.8


# Outbound: a CLI running one outbound call per invocation (or N in one process), for
# tests/integration/test-outbound.py.
check_PROGRAMS += tests/unit/outbound-driver
tests_unit_outbound_driver_SOURCES = tests/unit/outbound-driver.c
tests_unit_outbound_driver_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
tests_unit_outbound_driver_LDADD = $(APP_LIBS)

TESTS += tests/integration/test-outbound.py
EXTRA_DIST += tests/integration/test-outbound.py

# The settings page's pieces without a server (the page itself:
# tests/integration/test-settings.py and test-settings-browser.py).
check_PROGRAMS += tests/unit/test-settings
TESTS += tests/unit/test-settings
tests_unit_test_settings_SOURCES = tests/unit/test-settings.c tests/tap.h
tests_unit_test_settings_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_settings_LDADD = $(APP_LIBS)
