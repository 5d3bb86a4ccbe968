/*
 * <botmatic/module.h> - the interface between botmatic-fcgi and a handler
 * module.
 *
 * A module is a shared object that exports exactly one symbol,
 * bm_module_entry, a struct bm_module (write it with BM_MODULE_DECLARE()).
 * The server loads every module named in BM_MODULES once, in the master
 * process, before it forks its responders: init() runs there and registers
 * handlers through the struct bm_host it is given.  init_process() then runs
 * in every responder after fork (open connections there, never in init()).
 *
 * Both structs that cross this boundary start with their own size and are
 * only ever extended at the end, so a module built against an older header
 * keeps working with a newer server as long as BM_MODULE_ABI is unchanged.
 *
 * JSON values are Jansson's json_t.  A module must link the same libjansson
 * soname as the server (pkg-config --cflags --libs botmatic-module).
 * Ownership, everywhere below:
 *   borrowed - valid until the handler returns; do not decref or keep it.
 *   new      - a new reference handed over; the receiver decrefs it.
 * Memory is never freed across the boundary: a module frees what it
 * allocates, or allocates with bm_host.req_alloc (freed with the request).
 */
#ifndef BOTMATIC_MODULE_H
#define BOTMATIC_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped only on an incompatible change; the loader refuses a mismatch. */
#define BM_MODULE_ABI 1

/* What a handler, hook or auth function returns. */
enum bm_rc {
	BM_OK = 0,   /* success: *reply (an object) is sent with "success":true */
	BM_FAIL,     /* handled, failed: *reply is sent with "success":false, status 200 */
	BM_DECLINED, /* not mine: the next matching handler runs */
	BM_EINPUT,   /* the request is invalid: 400 */
	BM_EAUTH,    /* not authorized: 401 */
	BM_ETEMP,    /* temporary failure, Botmatic may retry: 503 */
	BM_ERROR,    /* internal error: 500 */
	BM_RC__MAX
};

/* Directions for bm_host.map. */
enum bm_map_dir {
	BM_MAP_TO_BOTMATIC = 0,  /* an external record -> a Botmatic contact */
	BM_MAP_TO_EXT,           /* a Botmatic contact -> an external record */
	BM_MAP_DIR__MAX
};

/* Log levels for bm_host.log. */
enum bm_log_level {
	BM_LOG_ERROR = 0,
	BM_LOG_WARN,
	BM_LOG_INFO,
	BM_LOG_DEBUG,
	BM_LOG__MAX
};

struct bm_host;
struct bm_reg;    /* opaque: the registration handle given to init() */
struct bm_req;    /* opaque: the request, for req_alloc */

/*
 * The context of one request, built by the server; every field is borrowed
 * and valid until the handler returns.  Append-only.
 */
struct bm_ctx {
	uint32_t size;              /* sizeof(struct bm_ctx) of the server */
	const char *request_id;     /* the id the server logs this request with */
	const char *kind;           /* "event" or "action" */
	const char *name;           /* the event's or action's name */
	const char *token;          /* auth.token: the bearer token (never log it) */
	json_t *client;             /* auth.client: the installation record, or
	                               what the auth function returned; may be NULL */
	json_t *body;               /* the whole request body */
	const struct bm_host *host; /* the server's services */
	struct bm_req *req;         /* for host->req_alloc */
	const char *module;         /* the name of the module being called */
};

/*
 * An event or action handler.  data is the request's "data" member
 * (borrowed; JSON null when absent).  On BM_OK and BM_FAIL, store a new
 * reference to an object in *reply, normally {"data":...,"type":"data"}; the
 * server steals it.  A handler that returns BM_OK or BM_FAIL without an
 * object gets a 500 answer, logged with the module's name.
 */
typedef enum bm_rc (*bm_handler_fn)(struct bm_ctx *ctx, json_t *data,
    json_t **reply, void *arg);

/*
 * An install or uninstall hook, run after the token was validated with
 * Botmatic.  Returning anything but BM_OK fails the webhook (the hooks of
 * other modules still run on uninstall).
 */
typedef enum bm_rc (*bm_hook_fn)(struct bm_ctx *ctx, json_t *data, void *arg);

/*
 * An auth function, selected with BM_AUTH=module:<name>.  Return BM_OK to
 * accept the token, optionally storing a new reference in *client (the
 * handler's auth.client); BM_EAUTH to refuse it (401); BM_ETEMP or BM_ERROR
 * when it cannot tell (503 / 500).
 */
typedef enum bm_rc (*bm_auth_fn)(struct bm_ctx *ctx, const char *token,
    json_t **client, void *arg);

/*
 * A mapping transform, named in a mappings file.  in and params are
 * borrowed; params is the transform's object in the mappings file for a
 * parameterised transform, NULL for a bare name.  On success store a new
 * reference in *out and return 0; when the value cannot be converted write a
 * short reason into err (errlen bytes, always NUL-terminated) and return -1.
 */
typedef int (*bm_transform_fn)(const json_t *in, const json_t *params,
    json_t **out, char *err, size_t errlen);

/*
 * A settings validator (reg_settings_validate): called when the settings
 * page saves, after the values passed the BM_SETTINGS schema.  settings
 * (borrowed, also ctx->body) holds every field of the form that has a
 * value, as it is about to be saved (a secret left empty already holds
 * its stored value); ctx->client is the installation (its "settings" are
 * still the stored ones), ctx->kind and ctx->name are "settings".
 * Append the names of the fields in error to error_fields (borrowed, an
 * array: json_array_append_new(error_fields, json_string(name))) and
 * return BM_FAIL, or return BM_OK to accept; BM_ETEMP or BM_ERROR when it
 * cannot tell.  Nothing is saved unless every validator returns BM_OK.
 */
typedef enum bm_rc (*bm_settings_validate_fn)(struct bm_ctx *ctx,
    const json_t *settings, json_t *error_fields, void *arg);

/*
 * Outbound results.  Every call toward Botmatic or the external service
 * returns a new JSON object shaped as the Node libraries' results:
 *   {"success": true, "id"?: ..., "contact"?: {...}, "contacts"?: [...]}
 *   {"success": false, "error": "<reason>", "status"?: <HTTP status>}
 * with "error" = "resource not found" when the service answered 404.  NULL
 * only when out of memory.
 */

/*
 * An external service consumer.  The server has one built in (the generic
 * REST consumer, BM_EXT_BASE_URL); a module can register its own with
 * reg_consumer, selected with BM_EXT_CONSUMER=module:<name>.  Contacts are
 * external records (the ext side of the mapping); ids are strings.  The
 * struct is copied at registration.  Append-only.
 */
struct bm_consumer {
	uint32_t size;  /* sizeof(struct bm_consumer) of the module */
	/* POST a new contact: {"success":true,"id":<new id>} */
	json_t *(*create)(struct bm_ctx *ctx, const json_t *contact, void *arg);
	/* {"success":true,"contact":{...}} */
	json_t *(*get)(struct bm_ctx *ctx, const char *id, void *arg);
	/* {"success":true,"contact":{...}}, or "resource not found" */
	json_t *(*get_by_email)(struct bm_ctx *ctx, const char *email,
	    void *arg);
	/* Page page (from 1) of limit contacts: {"success":true,
	 * "contacts":[...]}; an empty or short page is the last. */
	json_t *(*list_page)(struct bm_ctx *ctx, unsigned page, unsigned limit,
	    void *arg);
	/* {"success":true} */
	json_t *(*update)(struct bm_ctx *ctx, const char *id,
	    const json_t *contact, void *arg);
	/* {"success":true} */
	json_t *(*del)(struct bm_ctx *ctx, const char *id, void *arg);
	void *arg;      /* passed back to every function */
};

/*
 * The external service's webhooks (SPEC §11), for an API that does not
 * look like the generic REST one (GET/POST /webhooks, DELETE
 * /webhooks/{id}): registered with reg_hook_ops, used by the registration
 * of BM_EVENTS' topics instead of the generic calls.  ctx->token is the
 * installation's token while it is installed, "@events" for the deletions
 * left after an uninstall (the installation is gone then).  Results as
 * above, new objects:
 *   list:   {"success":true,"hooks":[{"id":..,"topic":..,"address":..}...]}
 *   create: {"success":true,"id":<the new webhook's id>}
 *   del:    {"success":true}, or "resource not found" (taken as done)
 * A failure with a transient "status" (408, 425, 429, 5xx) or none (no
 * answer) is retried on BM_RETRY_SCHEDULE.  The struct is copied at
 * registration.  Append-only.
 */
struct bm_hook_ops {
	uint32_t size;  /* sizeof(struct bm_hook_ops) of the module */
	json_t *(*list)(struct bm_ctx *ctx, void *arg);
	json_t *(*create)(struct bm_ctx *ctx, const char *topic,
	    const char *address, void *arg);
	json_t *(*del)(struct bm_ctx *ctx, const char *id, void *arg);
	void *arg;      /* passed back to every function */
};

/*
 * Services of the server, given to init() and reachable from every context.
 * Append-only: check size before using a member added after your header.
 */
struct bm_host {
	uint32_t size;   /* sizeof(struct bm_host) of the server */
	uint32_t abi;    /* BM_MODULE_ABI of the server */

	/* Logs one line at level lvl, tagged with the module and the request
	 * id when ctx is not NULL.  Never pass a token. */
	void (*log)(const struct bm_ctx *ctx, enum bm_log_level lvl,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
	/* Memory freed with the request; NULL when out of memory. */
	void *(*req_alloc)(struct bm_req *req, size_t size);
	/* The value of BM_MOD_<MODULE>_<KEY> (upper case) read at start, or
	 * NULL.  Borrowed, valid for the life of the process. */
	const char *(*conf)(struct bm_reg *reg, const char *key);

	/* Registration, only valid inside init().  Each returns 0, or -1 with
	 * the reason logged (bad pattern, duplicate name, out of memory). */
	/* An action: pattern is a POSIX extended regex that must match the
	 * whole action name (it is anchored ^(...)$). */
	int (*reg_action)(struct bm_reg *reg, const char *pattern,
	    bm_handler_fn fn, void *arg);
	/* An event, by exact name (any name, not only Botmatic's). */
	int (*reg_event)(struct bm_reg *reg, const char *name,
	    bm_handler_fn fn, void *arg);
	int (*reg_install)(struct bm_reg *reg, bm_hook_fn fn, void *arg);
	int (*reg_uninstall)(struct bm_reg *reg, bm_hook_fn fn, void *arg);
	/* An auth function, selected with BM_AUTH=module:<name>. */
	int (*reg_auth)(struct bm_reg *reg, const char *name, bm_auth_fn fn,
	    void *arg);
	/* A transform usable in the mappings file under name. */
	int (*reg_transform)(struct bm_reg *reg, const char *name,
	    bm_transform_fn fn);

	/*
	 * The keystore of the request's installation: the integration id is
	 * auth.token, as in the Node libraries.  Ids are strings (write
	 * numbers in decimal), 1 to 512 bytes.  Each returns 0 done or found,
	 * 1 not found, -1 error (logged; also when the request has no token).
	 * Strings handed back are allocated from the request: valid until it
	 * ends, never freed by the module.
	 */
	/* Links the two ids; a stale link of either is removed in the same
	 * transaction, so the two directions stay a bijection. */
	int (*ids_save)(struct bm_ctx *ctx, const char *botmatic_id,
	    const char *ext_id);
	int (*ext_id_get)(struct bm_ctx *ctx, const char *botmatic_id,
	    const char **ext_id);
	int (*botmatic_id_get)(struct bm_ctx *ctx, const char *ext_id,
	    const char **botmatic_id);
	int (*ids_delete)(struct bm_ctx *ctx, const char *botmatic_id,
	    const char *ext_id);
	/* Named JSON values kept per installation, forgotten at uninstall.
	 * state_get stores a new reference in *value; state_set borrows. */
	int (*state_get)(struct bm_ctx *ctx, const char *name, json_t **value);
	int (*state_set)(struct bm_ctx *ctx, const char *name,
	    const json_t *value);
	int (*state_delete)(struct bm_ctx *ctx, const char *name);

	/*
	 * Maps record (borrowed) through the mappings file (BM_MAPPINGS) in
	 * direction dir, as js-mapper's map() did.  On 0 *out is a new
	 * object; -1 when no mappings file is loaded or a "strict" entry
	 * failed (logged).  Fields a transform could not convert are left out
	 * and logged as warnings.
	 */
	int (*map)(struct bm_ctx *ctx, const json_t *record,
	    enum bm_map_dir dir, json_t **out);

	/* Registers an external consumer (init() only); 0 or -1. */
	int (*reg_consumer)(struct bm_reg *reg, const char *name,
	    const struct bm_consumer *consumer);
	/* The external consumer in use (BM_EXT_CONSUMER), or NULL. */
	const struct bm_consumer *(*consumer)(struct bm_ctx *ctx);

	/*
	 * External service -> Botmatic, for the installation of ctx, keeping
	 * the keystore in step, as js-contact's functions did.  Contacts are
	 * external records, mapped to Botmatic by the mappings file; each
	 * returns a new result object (see above).
	 */
	/* Creates the contact on Botmatic and saves the id pair. */
	json_t *(*contact_create)(struct bm_ctx *ctx, const json_t *ext_contact);
	/* Updates the Botmatic contact linked to the ext id key's value. */
	json_t *(*contact_update)(struct bm_ctx *ctx, const json_t *ext_contact);
	/* Updates many at once; contacts without a link are skipped. */
	json_t *(*contacts_update)(struct bm_ctx *ctx,
	    const json_t *ext_contacts);
	/* Deletes the Botmatic contact linked to ext_id, and the pair. */
	json_t *(*contact_delete)(struct bm_ctx *ctx, const char *ext_id);
	/* Queues an import of every external contact: a job the delivery
	 * processes run page by page (asked again while one is pending, the
	 * same job); running it again creates no duplicate.
	 * {"success":true,"queued":true,"job":n} */
	json_t *(*contacts_import)(struct bm_ctx *ctx);
	/* Creates properties: [{"name":..,"type":..}, ...] */
	json_t *(*properties_create)(struct bm_ctx *ctx,
	    const json_t *properties);
	/* Fires event_name of the campaigns for Botmatic contact ids. */
	json_t *(*campaign_event)(struct bm_ctx *ctx, const char *event_name,
	    const json_t *botmatic_ids);
	/* Sets properties of one Botmatic contact, by its Botmatic id. */
	json_t *(*botmatic_contact_update)(struct bm_ctx *ctx,
	    const char *botmatic_id, const json_t *props);

	/* --- added with the settings page; check size before use ---------- */

	/* A validator of the settings page's values (init() only); 0 or -1.
	 * The saved settings reach handlers as ctx->client "settings". */
	int (*reg_settings_validate)(struct bm_reg *reg,
	    bm_settings_validate_fn fn, void *arg);
	/* The bots, as js-api-client's getAllBots, getBot and updateBot:
	 * GET /api/bots?page_size=1000 -> {"success":true,"bots":...};
	 * GET /api/bots/{id} -> {"success":true,"bot":{...}};
	 * PATCH /api/bots/{id} {"bot":bot,"is_draft":true} ->
	 * {"success":true,"bot"?:{...}}.  New result objects (see above). */
	json_t *(*bots_list)(struct bm_ctx *ctx);
	json_t *(*bot_get)(struct bm_ctx *ctx, const char *id);
	json_t *(*bot_update)(struct bm_ctx *ctx, const char *id,
	    const json_t *bot);
	/* Forgets every id pair of the request's installation (what
	 * js-redis-key-store's deleteAllIds did); 0 or -1 (logged). */
	int (*ids_delete_all)(struct bm_ctx *ctx);

	/* --- added with third-party services (SPEC §12); check size ------- */

	/*
	 * Services over OAuth 2 (BM_OAUTH_<SVC>_*) of the request's
	 * installation, each for a group and/or a user (NULL or "" for none).
	 * service_link: a one-time URL, valid 10 minutes, to send the person
	 * who will authorize; *url allocated from the request.  0 or -1.
	 * service_token: a valid access token (refreshed first when it
	 * expires within a minute), allocated from the request: send it,
	 * never log it.  Returns 0; BM_SERVICE_NOT_LINKED; BM_SERVICE_NEEDS_LINK
	 * when the provider refused the refresh (send a new link); -1 error
	 * (logged).  service_delete: 0, 1 when there was none, -1.
	 * services: a new array of {"service","group","user","scope",
	 * "created","updated","expires","needs_link"} (no token), or NULL.
	 */
	int (*service_link)(struct bm_ctx *ctx, const char *service,
	    const char *group, const char *user, const char **url);
	int (*service_token)(struct bm_ctx *ctx, const char *service,
	    const char *group, const char *user, const char **token);
	int (*service_delete)(struct bm_ctx *ctx, const char *service,
	    const char *group, const char *user);
	json_t *(*services)(struct bm_ctx *ctx);

	/* --- added with integration events (SPEC §11); check size --------- */

	/*
	 * A handler of the integration event type (a key of BM_EVENTS'
	 * "events"; init() only; 0 or -1).  Each accepted delivery of that
	 * type queues one job per handler, run once by a delivery process
	 * (never again for a duplicate delivery): ctx->kind "ext_event",
	 * ctx->name the type, ctx->token the installation's, ctx->client its
	 * record; data the payload, as validated against the event's schema.
	 * Return BM_OK when done (reply may stay NULL), BM_ETEMP to be
	 * retried on BM_RETRY_SCHEDULE (dead when it runs out: botmatic-keys
	 * outbox), anything else fails it for good (kept as dead).
	 */
	int (*reg_ext_event)(struct bm_reg *reg, const char *type,
	    bm_handler_fn fn, void *arg);
	/* The external service's webhook operations (init() only; one
	 * module at most): see struct bm_hook_ops.  0 or -1. */
	int (*reg_hook_ops)(struct bm_reg *reg, const struct bm_hook_ops *ops);
};

/* What bm_host.service_token returns besides 0 and -1. */
#define BM_SERVICE_NOT_LINKED 1
#define BM_SERVICE_NEEDS_LINK 2

/* What a module exports as bm_module_entry.  Append-only. */
struct bm_module {
	uint32_t size;          /* set by BM_MODULE_DECLARE */
	uint32_t abi;           /* set by BM_MODULE_DECLARE */
	const char *name;       /* [a-z0-9_]+, unique among loaded modules */
	const char *version;    /* free text, logged at load */
	/* Master, before fork: register handlers.  0 or -1 (the start stops,
	 * naming the module).  Required. */
	int (*init)(const struct bm_host *host, struct bm_reg *reg);
	/* Each responder, after fork: 0 or -1 (the responder exits).  Optional. */
	int (*init_process)(const struct bm_host *host);
	/* Each responder, before it exits.  Optional. */
	void (*exit_process)(void);
	/* Master, before the module is unloaded (exit or reload).  Optional. */
	void (*fini)(void);
};

/* Declares the module's entry point. */
#define BM_MODULE_DECLARE(...)                                              \
	__attribute__((visibility("default")))                              \
	const struct bm_module bm_module_entry = {                          \
		.size = sizeof(struct bm_module),                           \
		.abi = BM_MODULE_ABI,                                       \
		__VA_ARGS__                                                 \
	}

#ifdef __cplusplus
}
#endif

#endif /* BOTMATIC_MODULE_H */
