/*
 * dispatch/dispatch.h - from a parsed envelope to an answer: the envelope
 * of SPEC §2, authentication as SPEC §3 (through auth/), the install and
 * uninstall life cycle, then the event or action handlers found in the
 * registry, and the status of the answer.  HTTP statuses are decided here
 * and in fcgi/ only.  Built-in features (contact sync) register into the
 * registry exactly as modules do; dispatch does not know them.
 * Depends on core, outbound, keystore and auth.  Sections: registry,
 * envelope, dispatch.
 */
#ifndef APP_DISPATCH_H
#define APP_DISPATCH_H

#include <regex.h>
#include <stddef.h>

#include <botmatic/module.h>
#include <jansson.h>

#include "core/core.h"
#include "auth/auth.h"
#include "keystore/keystore.h"
#include "outbound/outbound.h"
#include "mapping/mapping.h"

/*
 * The registry: what modules and built-ins registered: action patterns,
 * event names, install/uninstall hooks, auth functions and transforms.
 *
 * Built in the master before fork (regexes are compiled once, there) and
 * only read by responders.  Strings passed in are copied.
 */

struct app_handler {
	char *module;        /* owner's name, for logs */
	char *key;           /* the pattern or the event name */
	regex_t re;          /* compiled ^(key)$, actions only */
	bm_handler_fn fn;
	void *arg;
};

struct app_hook {
	char *module;
	bm_hook_fn fn;
	void *arg;
};

struct app_settings_validator {
	char *module;
	bm_settings_validate_fn fn;
	void *arg;
};

struct app_transform {
	char *module;
	char *name;
	bm_transform_fn fn;
};

struct app_consumer {
	char *module;
	char *name;
	struct bm_consumer c;   /* copied, zero-filled past the module's size */
};

struct app_hook_ops {
	char *module;
	struct bm_hook_ops ops;  /* copied, zero-filled past the module's size */
};

struct app_registry {
	struct app_handler *actions;  size_t nactions;
	struct app_handler *events;   size_t nevents;
	struct app_hook *installs;    size_t ninstalls;
	struct app_hook *uninstalls;  size_t nuninstalls;
	struct app_authfn *auths;     size_t nauths;
	struct app_transform *transforms; size_t ntransforms;
	struct app_consumer *consumers; size_t nconsumers;
	struct app_settings_validator *validators; size_t nvalidators;
	struct app_handler *ext_events; size_t next_events; /* by type */
	struct app_hook_ops *hook_ops;  /* one module's, or NULL */
};

/* Returns a new, empty registry (free with app_registry_free), or NULL. */
struct app_registry *app_registry_new(void);
void app_registry_free(struct app_registry *reg);

/*
 * Each adds one entry owned by module.  Returns 0, or -1 with the reason in
 * err (invalid regex, empty or duplicate name, out of memory).
 */
int app_registry_add_action(struct app_registry *reg, const char *module,
    const char *pattern, bm_handler_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_event(struct app_registry *reg, const char *module,
    const char *name, bm_handler_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_hook(struct app_registry *reg, int uninstall,
    const char *module, bm_hook_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_auth(struct app_registry *reg, const char *module,
    const char *name, bm_auth_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_transform(struct app_registry *reg, const char *module,
    const char *name, bm_transform_fn fn, char *err, size_t errlen);

int app_registry_add_settings_validator(struct app_registry *reg,
    const char *module, bm_settings_validate_fn fn, void *arg, char *err,
    size_t errlen);

int app_registry_add_consumer(struct app_registry *reg, const char *module,
    const char *name, const struct bm_consumer *c, char *err, size_t errlen);

/*
 * Integration event handlers (bm_host.reg_ext_event), by type, and the
 * webhook operations of one module (bm_host.reg_hook_ops: a second is
 * refused).  Return 0, or -1 with the reason in err.
 */
int app_registry_add_ext_event(struct app_registry *reg, const char *module,
    const char *type, bm_handler_fn fn, void *arg, char *err, size_t errlen);
int app_registry_add_hook_ops(struct app_registry *reg, const char *module,
    const struct bm_hook_ops *ops, char *err, size_t errlen);

/*
 * The next handler for kind ("event"/"action") and name after index *pos
 * (start with *pos = 0), in registration order; NULL when none is left.
 * Borrowed from the registry.
 */
const struct app_handler *app_registry_next(const struct app_registry *reg,
    int is_action, const char *name, size_t *pos);

/* The consumer registered under name, or NULL. */
const struct app_consumer *app_registry_consumer(const struct app_registry *reg,
    const char *name);

/* The auth function registered under name, or NULL. */
const struct app_authfn *app_registry_auth(const struct app_registry *reg,
    const char *name);

/* --- the envelope ------------------------------------------------------ */

/* Longest event or action name accepted. */
#define APP_NAME_MAX 256

/* A parsed request body. */
struct app_envelope {
	json_t *body;        /* the whole body (owned: app_envelope_free) */
	json_t *data;        /* body.data, or JSON null (borrowed from body) */
	const char *event;   /* body.event when a non-empty string, else NULL */
	const char *action;  /* body.action likewise */
};

/*
 * Parses and validates a body of len bytes.  Returns 0, or 400 with the
 * reason in err (not UTF-8 JSON, not an object, duplicate keys, a field of
 * the wrong type).
 */
int app_envelope_parse(const char *buf, size_t len, struct app_envelope *env,
    char *err, size_t errlen);
void app_envelope_free(struct app_envelope *env);

/* {"success":false,"type":"data","data":{"error":"No <kind> \"<name>\" defined"}}; new. */
json_t *app_answer_unknown_json(const char *kind, const char *name);

/* {"success":false,"error":msg}; new, NULL when out of memory. */
json_t *app_answer_error_json(const char *msg);

/*
 * Turns what a handler returned into the answer: BM_OK / BM_FAIL with an
 * object add "success": true / false (status 200).  Steals reply.  Returns
 * the HTTP status and stores the body in *out (new), or returns 500 with
 * *out NULL when the result is unusable (the caller logs and answers).
 */
int app_answer_result_json(enum bm_rc rc, json_t *reply, json_t **out);

/* --- dispatch ---------------------------------------------------------- */

struct app_settings;
struct app_events;

/* What a responder holds for the life of its process. */
struct app_env {
	const struct app_conf *conf;       /* borrowed */
	const struct app_registry *reg;    /* borrowed */
	struct app_botmatic *botmatic;     /* owned by the responder */
	struct app_keystore *ks;           /* owned by the responder */
	struct app_negcache *neg;          /* shared by every responder */
	const struct mapping *map;         /* BM_MAPPINGS or NULL (borrowed) */
	const struct bm_consumer *consumer;/* the external consumer, or NULL */
	const char *ext_id_key;            /* member holding external ids */
	const struct bm_host *host;        /* the services given to handlers
	                                      (host/), set by the responder */
	const struct app_settings *settings; /* BM_SETTINGS (settings/), or
	                                      NULL: no settings page */
	const struct app_events *events;   /* BM_EVENTS (events/), or NULL */
};

/* An answer to send. */
struct app_answer {
	int status;
	const char *content_type;   /* static string */
	json_t *json;               /* body when JSON (owned) */
	const char *text;           /* body when plain text (static) */
	const char *what;           /* "event install", ... for the log line */
	char *body;                 /* body of body_len bytes (owned, free()),
	                               when neither json nor text */
	size_t body_len;
	char *headers;              /* more header lines, each ending in
	                               CRLF (owned, free()), or NULL */
	const char *allow;          /* Allow of a 405 (static), NULL: POST */
};

/*
 * Answers one webhook.  authorization is the raw header value or NULL.
 * Fills ans (release with app_answer_clear).
 */
void app_dispatch(struct app_env *env, struct bm_req *req,
    const struct app_envelope *envl, const char *authorization,
    struct app_answer *ans);

/* Sets ans to a JSON error {"success":false,"error":msg} with status. */
void app_answer_error(struct app_answer *ans, int status, const char *msg);

void app_answer_clear(struct app_answer *ans);

#endif
