/*
 * core/core.h - the bottom of the server: the log, the configuration, the
 * per-request arena and the clock.  It depends on nothing else in app/
 * (only <botmatic/module.h> for the shared enums); every other part may
 * include it.  Sections: log, configuration, request arena, clock.
 */
#ifndef APP_CORE_H
#define APP_CORE_H

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <botmatic/module.h>

/*
 * The log: one line per event on stderr.
 *
 * Format: "<ISO-8601 UTC time> <LEVEL> <pid> <request id or -> <component>: <message>".
 * Control characters in the message are escaped (\xNN) so request data can
 * never forge a line.  Each line goes out in one write(2), so lines of
 * concurrent processes sharing stderr do not interleave.
 */

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

/*
 * The configuration: the server's configuration, read from the environment once.
 *
 * Every variable goes through one table (conf.c) naming its type, default
 * and bounds; a bad value refuses the whole configuration with one message
 * naming the variable.  The master reads it before forking and again on
 * SIGHUP; responders only ever read the copy they were forked with.
 * (Never getenv() after the first accept: libfcgi may replace environ.)
 */

enum app_auth_policy {
	APP_AUTH_INSTALLED = 0, /* the token of a recorded installation */
	APP_AUTH_VALIDATE,      /* unknown tokens validated with Botmatic */
	APP_AUTH_ANY,           /* everything accepted (the Node default) */
	APP_AUTH_MODULE,        /* a module's auth function */
	APP_AUTH__MAX
};

enum app_durability {
	APP_DURABILITY_WRITE = 0, /* DB_TXN_WRITE_NOSYNC: survives any process crash */
	APP_DURABILITY_SYNC,      /* fsync at every commit: survives power loss */
	APP_DURABILITY__MAX
};

/* The operations of the external service, in the order of ext_path. */
enum app_ext_op {
	APP_EXT_CREATE = 0,
	APP_EXT_GET,
	APP_EXT_SEARCH,
	APP_EXT_LIST,
	APP_EXT_UPDATE,
	APP_EXT_DELETE,
	APP_EXT__MAX
};

struct app_conf {
	char *listen;             /* BM_LISTEN; NULL = inherited socket */
	unsigned listen_mode;     /* BM_LISTEN_MODE, for a unix socket */
	unsigned backlog;         /* BM_BACKLOG */
	unsigned workers;         /* BM_WORKERS */
	char *endpoint;           /* BM_ENDPOINT, an absolute path */
	unsigned long max_body;   /* BM_MAX_BODY, bytes */
	enum app_auth_policy auth;/* BM_AUTH */
	char *auth_module;        /* the <name> of BM_AUTH=module:<name> */
	char *db_home;            /* BM_DB_HOME */
	enum app_durability durability; /* BM_DB_DURABILITY */
	char *mappings;           /* BM_MAPPINGS or NULL */
	char *modules;            /* BM_MODULES or NULL, colon-separated */
	enum bm_log_level log_level; /* BM_LOG_LEVEL */
	char *botmatic_base_url;  /* BOTMATIC_BASE_URL, without trailing '/' */
	char *ext_base_url;       /* BM_EXT_BASE_URL or NULL */
	char *ext_auth_header;    /* BM_EXT_AUTH_HEADER or NULL */
	unsigned long http_connect_timeout; /* BM_HTTP_CONNECT_TIMEOUT, ms */
	unsigned long http_timeout;         /* BM_HTTP_TIMEOUT, ms */
	unsigned shutdown_timeout;/* BM_SHUTDOWN_TIMEOUT, seconds */
	unsigned auth_cache_ttl;  /* BM_AUTH_CACHE_TTL, seconds */
	unsigned db_watchdog;     /* BM_DB_WATCHDOG, seconds */
	char *env_file;           /* BM_ENV_FILE or NULL */
	char *ext_consumer;       /* BM_EXT_CONSUMER: "rest" or "module:<name>" */
	char *ext_id_field;       /* BM_EXT_ID_FIELD or NULL (the mapping's ext id key) */
	char *ext_list_field;     /* BM_EXT_LIST_FIELD or NULL (a page is an array) */
	char *ext_path[6];        /* BM_EXT_PATH_{CREATE,GET,SEARCH,LIST,UPDATE,DELETE} */
	char *ext_method[6];      /* BM_EXT_METHOD_{...} likewise */
	char *ext_jwt_url;        /* BM_EXT_JWT_URL or NULL */
	char *ext_jwt_body;       /* BM_EXT_JWT_BODY: JSON credentials posted */
	char *ext_jwt_field;      /* BM_EXT_JWT_FIELD: the token's member */
	unsigned import_on_install; /* BM_IMPORT_ON_INSTALL, 0 or 1 */
	unsigned import_page;     /* BM_IMPORT_PAGE */
	char *secret_key_file;    /* BM_SECRET_KEY_FILE or NULL (the store's) */
	unsigned secret_grace;    /* BM_SECRET_GRACE, seconds */
	char **mod_env;           /* "BM_MOD_<NAME>_<KEY>=value", NULL-terminated */
};

/*
 * Reads the configuration from envp (a NULL-terminated "K=V" array), then
 * from the file named by BM_ENV_FILE when set (its lines override envp).
 * On success fills *conf (free with app_conf_free) and returns 0.  On
 * failure writes one line naming the variable into err and returns -1.
 * Unknown BM_ variables are reported through warn (may be NULL).
 */
int app_conf_load(struct app_conf *conf, char *const *envp, char *err,
    size_t errlen, void (*warn)(const char *msg));

/* Frees what app_conf_load allocated; conf may be zeroed. */
void app_conf_free(struct app_conf *conf);

/* Prints every variable, its meaning and default (for --help). */
void app_conf_usage(FILE *fp);

/* The name of a policy ("installed", ...), for logs. */
const char *app_conf_auth_name(enum app_auth_policy p);

/*
 * The request arena: per-request memory: an arena freed in one go when the request
 * ends, after FCGX_Finish_r.  Nothing allocated here outlives the request.
 */

/* Most a request may allocate from its arena (modules included). */
#define APP_REQ_ARENA_MAX (64UL * 1024 * 1024)

struct app_req_block;
struct app_env;

/* Work a request asks for after its answer has gone out. */
struct app_deferred {
	int import;               /* import every external contact */
	char token[4096];         /* of this installation (zeroed after) */
	char reqid[72];           /* the request's id, for the log */
};

struct bm_req {
	struct app_env *env;          /* the responder's services (borrowed) */
	struct app_deferred *deferred;/* NULL, or where to ask for later work */
	char id[72];                  /* request id, for logs and X-Request-Id */
	struct app_req_block *blocks; /* arena allocations, newest first */
	size_t used;                  /* bytes allocated from the arena */
};

/* Starts a request of responder env: sets its id, empties the arena. */
void app_req_init(struct bm_req *req, struct app_env *env, const char *id);

/*
 * Returns size bytes (aligned for any type) freed by app_req_release, or
 * NULL when out of memory or over APP_REQ_ARENA_MAX.
 */
void *app_req_alloc(struct bm_req *req, size_t size);

/* Frees every allocation of the request. */
void app_req_release(struct bm_req *req);

/* --- clock ------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
int64_t app_now_ms(void);

#endif
