## app/: the responder.
bin_PROGRAMS += botmatic-fcgi
botmatic_fcgi_SOURCES = app/main.c
botmatic_fcgi_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(FCGI_CFLAGS)
botmatic_fcgi_LDADD = $(JANSSON_LIBS) $(CURL_LIBS) $(FCGI_LIBS) $(DB_LIBS) $(DL_LIBS)

botmaticincludedir = $(includedir)/botmatic
botmaticinclude_HEADERS = app/botmatic/module.h
