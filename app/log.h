/*
 * log.h - one line per event on stderr.
 *
 * Format: "<ISO-8601 UTC time> <LEVEL> <pid> <request id or -> <component>: <message>",
 * or with BM_LOG_FORMAT=json one JSON object a line: {"ts", "level", "pid",
 * "reqid" (null when none), "component", "msg"}, plus the request fields on
 * the request line (app_log_request).  Control characters are escaped
 * either way (\xNN in text, \u00NN in JSON, where invalid UTF-8 becomes
 * U+FFFD) so request data can never forge a line.  Each line goes out in
 * one write(2), so lines of concurrent processes sharing stderr do not
 * interleave.
 */
#ifndef APP_LOG_H
#define APP_LOG_H

#include <stdarg.h>
#include <stdint.h>

#include <botmatic/module.h>

/* Sets the threshold; called at start-up and on reload only. */
void app_log_set_level(enum bm_log_level lvl);

/* Selects the line format: 0 text, 1 JSON; at start-up and on reload only. */
void app_log_set_json(int json);

/*
 * Records the pid lines carry; each process calls it once after fork (the
 * master at start, a responder first thing), saving a getpid() per line.
 */
void app_log_set_pid(void);

/* Returns nonzero when lines of level lvl are written. */
int app_log_enabled(enum bm_log_level lvl);

/* Parses "error", "warn", "info" or "debug".  Returns 0, or -1. */
int app_log_level_parse(const char *s, enum bm_log_level *lvl);

/* Writes one line; reqid and component may be NULL. */
void app_log(enum bm_log_level lvl, const char *reqid, const char *component,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* As app_log, with ": <strerror(errno)>" appended. */
void app_log_errno(enum bm_log_level lvl, const char *reqid,
    const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The va_list form of app_log; errnum >= 0 appends strerror(errnum). */
void app_logv(enum bm_log_level lvl, const char *reqid, const char *component,
    int errnum, const char *fmt, va_list ap);

/* The fields of the line logged for every request answered. */
struct app_log_request {
	const char *method;   /* REQUEST_METHOD, or NULL */
	const char *path;     /* without the query string, or NULL */
	int status;           /* HTTP status sent */
	int64_t us;           /* from accept to the answer sent */
	const char *client;   /* REMOTE_ADDR, or NULL */
	const char *install;  /* install id (never the token), or NULL */
	const char *what;     /* event or action name, or NULL */
};

/*
 * Writes the request line at INFO, component "request":
 * "POST /path 200 12.3ms client=127.0.0.1 install=<id or -> [name=<what>]",
 * or its JSON form with method, path, status, duration_ms, client, install
 * and name as members.
 */
void app_log_request(const char *reqid, const struct app_log_request *r);

/*
 * The message of the last ERROR line this process wrote ("" when none),
 * "component: message"; borrowed, valid until the next log call.  For
 * reporting a failure elsewhere (sd_notify STATUS=).
 */
const char *app_log_last_error(void);

#endif
