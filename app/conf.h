/*
 * conf.h - the server's configuration, read from the environment once.
 *
 * Every variable goes through one table (conf.c) naming its type, default
 * and bounds; a bad value refuses the whole configuration with one message
 * naming the variable.  The master reads it before forking and again on
 * SIGHUP; responders only ever read the copy they were forked with.
 * (Never getenv() after the first accept: libfcgi may replace environ.)
 */
#ifndef APP_CONF_H
#define APP_CONF_H

#include <stddef.h>
#include <stdio.h>

#include <botmatic/module.h>

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
	int log_json;             /* BM_LOG_FORMAT: 0 text, 1 json */
	char *status_path;        /* BM_STATUS_PATH or NULL (no status) */
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

#endif
