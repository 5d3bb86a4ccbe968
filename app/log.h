/*
 * log.h - one line per event on stderr.
 *
 * Format: "<ISO-8601 UTC time> <LEVEL> <pid> <request id or -> <component>: <message>".
 * Control characters in the message are escaped (\xNN) so request data can
 * never forge a line.  Each line goes out in one write(2), so lines of
 * concurrent processes sharing stderr do not interleave.
 */
#ifndef APP_LOG_H
#define APP_LOG_H

#include <stdarg.h>

#include <botmatic/module.h>

/* Sets the threshold; called at start-up and on reload only. */
void app_log_set_level(enum bm_log_level lvl);

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

#endif
