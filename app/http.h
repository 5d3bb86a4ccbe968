/*
 * http.h - the one place outbound HTTP requests are made (libcurl), shared
 * by the Botmatic API client (botmatic.c) and the generic REST consumer
 * (extrest.c).
 *
 * One struct app_http per client and responder: its curl easy handle is
 * reused for every call, and curl_easy_reset() between calls keeps the
 * handle's connection cache, so a responder keeps its connections to a
 * service alive from one request to the next.  Every request: http and https
 * only, no redirect followed, TLS verification as libcurl's default (on),
 * the configured connect and total timeouts, an answer of at most
 * APP_HTTP_ANSWER_MAX bytes.
 *
 * Nothing here logs: callers know the request id and what may be shown, and
 * log once through app_http_failure().
 */
#ifndef APP_HTTP_H
#define APP_HTTP_H

#include <stddef.h>

#include <jansson.h>

#include "conf.h"

/* Largest answer read from Botmatic or the external service. */
#define APP_HTTP_ANSWER_MAX (8UL * 1024 * 1024)

struct app_http;
struct curl_slist;  /* from <curl/curl.h>, included by callers */

/*
 * Returns a new client (free with app_http_free) using conf's timeouts;
 * conf is borrowed and must outlive it.  NULL when out of memory or curl
 * cannot make a handle.  Call after fork: a curl handle is never shared
 * between processes.
 */
struct app_http *app_http_new(const struct app_conf *conf);

/* Frees h and closes its connections.  NULL is allowed. */
void app_http_free(struct app_http *h);

/*
 * Sends one request: method (upper case) to url (http:// or https://),
 * headers (borrowed, may be NULL) and body (NUL-terminated, borrowed; NULL
 * sends none, except that a POST always sends one, empty if need be).
 * "Expect:" is always sent empty, so a large body never waits for a
 * 100-continue.  When an answer arrives, whatever its status, returns 0
 * with *status set and *answer a new NUL-terminated string (free()) of *len
 * bytes (answer and len may be NULL when the body is not wanted).  On a
 * transport error (connection refused, timeout, TLS failure, an answer over
 * APP_HTTP_ANSWER_MAX, out of memory) returns -1 with curl's message in err
 * (errlen bytes, NUL-terminated), *status 0 and *answer NULL.
 */
int app_http_request(struct app_http *h, const char *method, const char *url,
    const struct curl_slist *headers, const char *body, long *status,
    char **answer, size_t *len, char *err, size_t errlen);

/*
 * Appends the headers of a JSON exchange ("Accept: application/json",
 * "Content-Type: application/json") to *list, then extra when not NULL (a
 * whole header line, copied).  Returns 0, or -1 when out of memory (*list
 * then still belongs to the caller, to free with curl_slist_free_all).
 */
int app_http_json_headers(struct curl_slist **list, const char *extra);

/*
 * Returns a new string (free()) holding s percent-encoded for a URL path or
 * query value: every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) is
 * written %XX.  NULL when out of memory.
 */
char *app_http_escape(const char *s);

/*
 * Returns 1 when s can go into a header line: not empty, no control byte
 * (CR and LF above all: they would end the line and forge another header).
 */
int app_http_header_safe(const char *s);

/*
 * Logs one line (WARN, tagged component and reqid: method, path and the
 * reason) and returns a new result {"success":false,"error":reason,
 * "status":status} ("status" left out when status is 0, i.e. no answer).
 * path must hold nothing secret (no token); the query string is not logged,
 * since it may carry an email address.  NULL only when out of memory.
 */
json_t *app_http_failure(const char *component, const char *reqid,
    const char *method, const char *path, long status, const char *reason);

/*
 * Parses answer (len bytes) strictly (JSON_REJECT_DUPLICATES; any JSON
 * value, not only objects).  Returns a new value, or NULL with a short
 * reason in err.
 */
json_t *app_http_parse(const char *answer, size_t len, char *err,
    size_t errlen);

#endif
