/*
 * events/events.h - integration events (SPEC §11): what an external
 * service sends about its own objects, declared in BM_EVENTS; the route
 * receiving them (signature, delivery id, schema, then the jobs that fire
 * them, written in the transaction that claims the delivery id); the jobs
 * themselves (module handlers, the campaign event); and the registration
 * of the declared topics as webhooks at the external service (a reconcile
 * job at install and on demand, a detached deletion job at uninstall).
 * Depends on core, outbound, keystore, auth, dispatch, sync (its job
 * kinds: app_sync_kind_add) and schema/.
 */
#ifndef APP_EVENTS_H
#define APP_EVENTS_H

#include <stddef.h>

#include <botmatic/module.h>
#include <jansson.h>

#include "core/core.h"
#include "auth/auth.h"
#include "dispatch/dispatch.h"

/* Longest event type (a path segment: [a-z0-9_.-]). */
#define APP_EVENT_TYPE_MAX 64
/* The installation state holding the registered webhooks. */
#define APP_EVENTS_HOOKS_STATE "bm:hooks"
/* The owner of the detached jobs an uninstall leaves (store_job_spec). */
#define APP_EVENTS_OWNER "events"

/* One declared event: a value of the loaded set. */
struct app_event {
	char *type;               /* the key in "events": the route's <type> */
	struct schema *schema;    /* its payload's schema, or NULL (any JSON) */
	char *topic;              /* registered at the external service, or
	                             NULL (not registered) */
	char *contact;            /* JSON Pointer to the contact in the
	                             payload, or NULL */
	int by_email;             /* contact is an email, not an ext id */
	char *campaign;           /* campaign_event to fire, or NULL */
	enum app_wh_scheme scheme;/* verify */
};

/* The loaded BM_EVENTS. */
struct app_events {
	struct app_event *ev;
	size_t n;
	int topics;               /* some event has a topic */
};

/*
 * Loads and checks the events file path: every event's schema compiled
 * (an unknown keyword refused), its pointer parsed, its verify scheme
 * known, no unknown member.  *out is new (app_events_free).  Returns 0, or
 * -1 with "<path>: event \"<type>\": <reason>" in err.
 */
int app_events_load(const char *path, struct app_events **out, char *err,
    size_t errlen);
void app_events_free(struct app_events *evs);

/* The event of type, or NULL.  Borrowed from evs. */
const struct app_event *app_events_find(const struct app_events *evs,
    const char *type);

/*
 * Checks what the events need of conf and reg (BM_PUBLIC_URL for topics,
 * an external service's webhook API) and registers the install and
 * uninstall hooks and the job kinds.  In the master, before fork, after
 * the modules.  Returns 0, or -1 with the reason in err.
 */
int app_events_register(const struct app_events *evs,
    const struct app_conf *conf, struct app_registry *reg, char *err,
    size_t errlen);

/*
 * Serves POST <endpoint>ext/<install id>/events/<type>; rest is what
 * follows "ext/".  get reads the request's headers by lowercase name.
 * Fills ans: 404 unknown install id or type, 401 bad or missing
 * signature, 400 payload not JSON or not valid against the schema (the
 * error naming the instance location and keyword), 503 store failure,
 * 200 {"success":true,"id":<delivery id>} (with "duplicate":true for a
 * delivery id accepted in the last 7 days, nothing fired).  Returns 1
 * when rest is such a path (ans filled), 0 when it is not (ans untouched).
 */
int app_events_route(struct app_env *env, struct bm_req *req,
    const char *rest, const char *body, size_t len, app_wh_header_fn get,
    void *arg, struct app_answer *ans);

/*
 * Queues the reconcile of the installation of token's webhooks (one
 * pending at a time).  Returns 0, or -1 (logged).
 */
int app_events_reconcile_queue(struct app_env *env, const char *reqid,
    const char *token);

#endif
