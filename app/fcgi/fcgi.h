/*
 * fcgi/fcgi.h - the HTTP side of a request, through libfcgi: the route a
 * path takes, the checks of the request head (method, length, type) made
 * before a body is read, reading the body, serving one request (routing
 * to dispatch, to the events route of events/, to the external service's
 * route of sync or to the settings page) and writing the answer.  The
 * checks are pure functions of their arguments, so unit tests drive them
 * directly.  Depends on core, dispatch, sync, events and settings.
 */
#ifndef APP_FCGI_H
#define APP_FCGI_H

#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "core/core.h"
#include "dispatch/dispatch.h"
#include "sync/sync.h"
#include "events/events.h"
#include "settings/settings.h"
#include "services/services.h"

enum app_route {
	APP_ROUTE_NONE = 0,  /* not ours: 404 */
	APP_ROUTE_WEBHOOK,   /* the endpoint Botmatic posts to */
	APP_ROUTE_EXT,       /* <endpoint>ext/...: the external service's */
	APP_ROUTE_SETTINGS,  /* <endpoint>settings: the settings page */
	APP_ROUTE_SETTINGS_ASSET, /* <endpoint>settings/<name>: its files */
	APP_ROUTE_OAUTH,     /* <endpoint>oauth/<svc>/...: SPEC §12 */
	APP_ROUTE__MAX
};

/*
 * Which route path (no query string) takes under endpoint.  For
 * APP_ROUTE_EXT, *rest points at what follows "ext/", for
 * APP_ROUTE_SETTINGS_ASSET at what follows "settings/", for
 * APP_ROUTE_OAUTH at what follows "oauth/" (borrowed from path).
 */
enum app_route app_proto_route(const char *path, const char *endpoint,
    const char **rest);

/*
 * Checks what is known before the body is read.  method, content_length and
 * content_type may be NULL (absent).  Returns 0 and sets *len, or an HTTP
 * status (405, 411, 400, 413, 415) with a message in err.
 */
int app_proto_check_head(const char *method, const char *content_length,
    const char *content_type, unsigned long max_body, size_t *len, char *err,
    size_t errlen);

/*
 * Whether method is one of allow ("GET, POST": a route's methods, as its
 * Allow header says them).  Returns 0, or 405 with a message in err.
 */
int app_proto_check_method(const char *method, const char *allow, char *err,
    size_t errlen);

/*
 * The checks of a body's head: its length (411, 400, 413) and its type,
 * JSON, or also application/x-www-form-urlencoded when accept_form is set
 * (then *form says which).  Returns 0 and sets *len, or an HTTP status with
 * a message in err.  app_proto_check_head is "POST" and this for JSON.
 */
int app_proto_check_body(const char *content_length,
    const char *content_type, unsigned long max_body, int accept_form,
    int *form, size_t *len, char *err, size_t errlen);

/* The reason phrase of a status we send. */
const char *app_proto_reason(int status);

/* Copies id when it is 1..64 of [A-Za-z0-9._-]; returns 0, else -1. */
int app_proto_request_id(const char *id, char *out, size_t cap);

/*
 * Serves one accepted request fr of responder env from start to answer:
 * route, head checks, body, dispatch, answer, one log line.  seq numbers
 * the responder's requests (for a request id when the web server sent
 * none).  Nothing runs after the answer: later work is a job (SPEC §9).
 */
void app_fcgi_serve(struct app_env *env, FCGX_Request *fr, uint64_t seq);

#endif
