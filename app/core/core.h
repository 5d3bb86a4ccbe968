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
 * Format: "<ISO-8601 UTC time> <LEVEL> <pid> <request id or -> <component>: <message>",
 * or with BM_LOG_FORMAT=json one JSON object a line: {"ts", "level", "pid",
 * "reqid" (null when none), "component", "msg"}, plus the request fields on
 * the request line (app_log_request).  Control characters are escaped
 * either way (\xNN in text, \u00NN in JSON, where invalid UTF-8 becomes
 * U+FFFD) so request data can never forge a line.  Each line goes out in
 * one write(2), so lines of concurrent processes sharing stderr do not
 * interleave.
 */

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
	APP_EXT_HOOKS_LIST,  /* the webhooks registered there (SPEC §11) */
	APP_EXT_HOOK_CREATE,
	APP_EXT_HOOK_DELETE,
	APP_EXT__MAX
};

/* Most entries in BM_RETRY_SCHEDULE. */
#define APP_RETRY_MAX 32

/*
 * One third-party OAuth service, BM_OAUTH_<SVC>_* (SPEC §12).  The URLs
 * are https, or http to a loopback host (127.0.0.1, ::1, localhost: for
 * tests and a provider stand-in on the same machine).
 */
struct app_oauth_svc {
	char *name;          /* <svc> in lower case: [a-z0-9_], 1..32 */
	char *client_id;
	char *client_secret; /* _CLIENT_SECRET or the first line of
	                        _CLIENT_SECRET_FILE; never logged */
	char *authorize_url, *token_url;
	char *scopes;        /* space-separated, may be "" */
};
/* BM_WORKERS_MAX when unset (or BM_WORKERS when larger). */
#define APP_WORKERS_MAX_DEFAULT 64

struct app_conf {
	char *listen;             /* BM_LISTEN; NULL = inherited socket */
	unsigned listen_mode;     /* BM_LISTEN_MODE, for a unix socket */
	unsigned backlog;         /* BM_BACKLOG */
	unsigned workers;         /* BM_WORKERS: the pool's floor */
	unsigned workers_max;     /* BM_WORKERS_MAX: the pool's ceiling */
	unsigned workers_idle_timeout; /* BM_WORKERS_IDLE_TIMEOUT, seconds */
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
	char *ext_path[APP_EXT__MAX];   /* BM_EXT_PATH_{CREATE,GET,SEARCH,LIST,
	                                   UPDATE,DELETE}, BM_EXT_HOOKS_PATH_
	                                   {LIST,CREATE,DELETE} */
	char *ext_method[APP_EXT__MAX]; /* BM_EXT_METHOD_{...} likewise */
	char *ext_jwt_url;        /* BM_EXT_JWT_URL or NULL */
	char *ext_jwt_body;       /* BM_EXT_JWT_BODY: JSON credentials posted */
	char *ext_jwt_field;      /* BM_EXT_JWT_FIELD: the token's member */
	unsigned import_on_install; /* BM_IMPORT_ON_INSTALL, 0 or 1 */
	unsigned import_page;     /* BM_IMPORT_PAGE */
	char *secret_key_file;    /* BM_SECRET_KEY_FILE or NULL (the store's) */
	char *store;              /* BM_STORE: "bdb" or "redis" */
	char *redis_url;          /* BM_REDIS_URL or NULL */
	char *redis_sentinels;    /* BM_REDIS_SENTINELS or NULL */
	char *redis_master;       /* BM_REDIS_MASTER or NULL */
	char *redis_keys;         /* BM_REDIS_KEYS or NULL (own layout) */
	unsigned redis_timeout_ms; /* BM_REDIS_TIMEOUT_MS */
	unsigned secret_grace;    /* BM_SECRET_GRACE, seconds */
	char *settings;           /* BM_SETTINGS or NULL (no settings page) */
	char *events;             /* BM_EVENTS or NULL (no integration events) */
	char *botmatic_origin;    /* BM_BOTMATIC_ORIGIN: scheme://host[:port] */
	char **mod_env;           /* "BM_MOD_<NAME>_<KEY>=value", NULL-terminated */
	unsigned sync_queued;     /* BM_SYNC_MODE: 0 inline, 1 queued */
	unsigned long sync_deadline; /* BM_SYNC_DEADLINE_MS */
	int64_t retry_ms[APP_RETRY_MAX]; /* BM_RETRY_SCHEDULE: delay before
	                             attempt i (ms); retry_ms[0] is the first */
	unsigned retry_n;         /* entries in retry_ms: attempts in all */
	unsigned delivery_procs;  /* BM_DELIVERY_PROCS */
	unsigned delivery_concurrency; /* BM_DELIVERY_CONCURRENCY */
	unsigned breaker_threshold; /* BM_BREAKER_THRESHOLD */
	char *public_url;         /* BM_PUBLIC_URL (no trailing /) or NULL */
	struct app_oauth_svc *oauth; /* BM_OAUTH_<SVC>_*, n_oauth of them */
	size_t n_oauth;
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

struct bm_req {
	struct app_env *env;          /* the responder's services (borrowed) */
	char id[72];                  /* request id, for logs and X-Request-Id */
	char install_id[40];          /* its installation's id once known, or "" */
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

/* CLOCK_MONOTONIC in microseconds. */
int64_t app_now_us(void);

/*
 * --- metrics: the server's counters, and the status answer built from
 * them (BM_STATUS_PATH, SPEC §15): JSON, or Prometheus text exposition.
 *
 * The counters are plain atomics in memory the master maps MAP_SHARED
 * before the first fork, beside the responders' slots: every process adds
 * to them without a lock, a responder killed mid-request leaves every
 * counter whole, and reading the status costs one pass over that memory
 * (no store call, no message to the master).  Until app_metrics_attach()
 * runs (command-line modes, unit tests), counting does nothing.
 *
 * Adding a counter or a gauge is one row in the family table of
 * metrics.c, one enum app_metric value and, when it has labels, one enum
 * here for their values; app_metrics_add() counts, app_metrics_set() sets.
 */

/* The families; their names, help and labels are the table in metrics.c. */
enum app_metric {
	APP_METRIC_REQUESTS = 0,    /* counter: {status, kind} */
	APP_METRIC_DURATION,        /* histogram: request duration, seconds */
	APP_METRIC_OUTBOUND,        /* counter: {target, outcome} */
	APP_METRIC_RESPONDER_STARTS,/* counter: responders forked */
	APP_METRIC_RESPONDER_EXITS, /* counter: {how} */
	APP_METRIC_RECOVERIES,      /* counter: {result} store recoveries */
	APP_METRIC_WATCHDOG,        /* counter: watchdog escalations */
	APP_METRIC_RELOADS,         /* counter: {result} */
	APP_METRIC_JOBS,            /* counter: {outcome} of the queue's jobs */
	APP_METRIC_POOL_GROWS,      /* counter: responders added by the pool */
	APP_METRIC_POOL_RETIRES,    /* counter: idle responders retired */
	APP_METRIC_POOL_TARGET,     /* gauge: responders the pool aims at */
	APP_METRIC_JOBS_QUEUED,     /* gauge: pending jobs (delivery sets) */
	APP_METRIC_JOBS_DEAD,       /* gauge: dead jobs (delivery sets) */
	APP_METRIC_JOBS_OLDEST,     /* gauge: oldest pending job's age, s */
	APP_METRIC__MAX
};

/* The outcome label of the delivery queue's jobs. */
enum app_job_outcome {
	APP_JOB_QUEUED = 0,    /* an event answered queued:true */
	APP_JOB_DONE,          /* a job applied (inline or delivered) */
	APP_JOB_RETRIED,       /* an attempt failed: due again later */
	APP_JOB_DEAD,          /* a job kept as dead */
	APP_JOB__MAX
};

/* The kind label of a request. */
enum app_req_kind {
	APP_KIND_EVENT = 0,  /* {"event":...} */
	APP_KIND_ACTION,     /* {"action":...} */
	APP_KIND_EXT,        /* a change posted by the external service */
	APP_KIND_STATUS,     /* BM_STATUS_PATH */
	APP_KIND_SETTINGS,   /* the settings page, its save and its files */
	APP_KIND_OAUTH,      /* an OAuth link's start or callback */
	APP_KIND_NONE,       /* refused before its kind was known */
	APP_KIND__MAX
};

/* The target label of an outbound call. */
enum app_out_target {
	APP_OUT_BOTMATIC = 0,  /* BOTMATIC_BASE_URL */
	APP_OUT_EXT,           /* the external service (and its JWT URL) */
	APP_OUT_TARGET__MAX
};

/* The outcome label of an outbound call. */
enum app_out_outcome {
	APP_OUT_OK = 0,        /* an answer with a 2xx status */
	APP_OUT_HTTP_ERROR,    /* an answer with another status */
	APP_OUT_FAILED,        /* no answer: refused, timeout, TLS, too large */
	APP_OUT_OUTCOME__MAX
};

/* The how label of a responder's end. */
enum app_exit_how {
	APP_EXIT_EXPECTED = 0, /* stopped by a stop or a reload */
	APP_EXIT_UNEXPECTED,   /* crashed, killed or exited by itself */
	APP_EXIT__MAX
};

/* The result label of recoveries and reloads. */
enum app_result {
	APP_RESULT_OK = 0,
	APP_RESULT_FAILED,
	APP_RESULT__MAX
};

/* Bytes of shared memory app_metrics_attach() needs. */
size_t app_metrics_size(void);

/* The state label of the responders gauge. */
enum app_resp_state {
	APP_RESP_STARTING = 0,
	APP_RESP_IDLE,
	APP_RESP_BUSY,
	APP_RESP_STOPPING,
	APP_RESP__MAX
};

/*
 * Counts the responders in each state into count (the server's slots,
 * read when a status is rendered).
 */
typedef void (*app_metrics_states_fn)(uint64_t count[APP_RESP__MAX]);

/*
 * Makes this process (and those it forks afterwards) count into shm:
 * app_metrics_size() bytes of zeroed MAP_SHARED memory, suitably aligned,
 * that must outlive every process.  states fills the responders gauge.
 */
void app_metrics_attach(void *shm, app_metrics_states_fn states);

/*
 * Adds n to the cell of family m at labels (a, b): the values of its first
 * and second label (0 when it has fewer).  Out-of-range labels are ignored.
 */
void app_metrics_add(enum app_metric m, unsigned a, unsigned b, uint64_t n);

/*
 * Sets the gauge cell of family m at labels (a, b) to v (its owner, e.g.
 * the master, publishes it there).  Out-of-range labels are ignored.
 */
void app_metrics_set(enum app_metric m, unsigned a, unsigned b, uint64_t v);

/* Counts one finished request: its HTTP status, kind and duration. */
void app_metrics_request(int status, enum app_req_kind kind, int64_t us);

/*
 * Returns the status as a new NUL-terminated string (free()), JSON when
 * prometheus is 0, else Prometheus text exposition format 0.0.4.  NULL
 * when out of memory or not attached.
 */
char *app_metrics_render(int prometheus);


#endif
