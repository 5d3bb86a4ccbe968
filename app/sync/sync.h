/*
 * sync/sync.h - contact sync, what js-contact did, done right: the built-in
 * handlers of install, contact_created, contact_updated and
 * contact_deleted (on when BM_MAPPINGS is set), the import of every
 * external contact, the external -> Botmatic operations modules call, and
 * the external service's webhook route.
 *
 * Every operation keeps the keystore in step and reports failures as
 * {"success":false,"error":...}; nothing is swallowed.
 *
 * The contact events and the external service's changes are jobs of the
 * store's delivery queue (SPEC §9): written before any call, attempted at
 * once within BM_SYNC_DEADLINE_MS (BM_SYNC_MODE=inline) or only queued,
 * and otherwise run by the delivery processes (app_sync_deliver); a job's
 * pair writes are applied in the transaction that finishes it.
 */
#ifndef APP_SYNC_SYNC_H
#define APP_SYNC_SYNC_H

#include <stddef.h>

#include <jansson.h>

#include <botmatic/module.h>

#include "dispatch/dispatch.h"

/* The name the built-in handlers are registered and logged under. */
#define APP_SYNC_MODULE "contact_sync"

/*
 * Registers the built-in handlers and the install hook into reg, after the
 * modules' (so a module's handler for the same event runs first and may
 * decline), through the same calls a module's registrations go through:
 * dispatch does not know contact sync exists.  Returns 0, or -1 with the
 * reason in err.
 */
int app_sync_register(struct app_registry *reg, char *err, size_t errlen);

/*
 * Sets up the external consumer of contact sync for this process, from
 * env->conf, env->reg and env->map: the generic REST one (its own curl
 * handle, in *rest, new: app_extrest_free(); restc is its function table,
 * borrowed by env->consumer) or the one a module registered.  Sets
 * env->ext_id_key too.  who names the process in the log.  Returns 0, or
 * -1 (logged).
 */
int app_sync_consumer_open(struct app_env *env, const char *who,
    struct app_extrest **rest, struct bm_consumer *restc);

/*
 * Imports every external contact of the installation of token, page by
 * page, creating on Botmatic those not linked yet and saving each pair.
 * Returns a new result {"success":..,"imported":n,"skipped":n,"failed":n}.
 */
json_t *app_sync_import(struct app_env *env, const char *reqid,
    const char *token);

/*
 * Queues the import of every external contact of token's installation as
 * a job (one pending import per installation: asked again, the same job).
 * A delivery process runs it page by page, its progress saved with each
 * page.  Returns {"success":true,"queued":true,"job":id} or a failure
 * (new).
 */
json_t *app_sync_import_queue(struct app_env *env, const char *reqid,
    const char *token);

/* The operations of bm_host (see <botmatic/module.h>). */
json_t *app_sync_contact_create(struct bm_ctx *ctx, const json_t *ext);
json_t *app_sync_contact_update(struct bm_ctx *ctx, const json_t *ext);
json_t *app_sync_contacts_update(struct bm_ctx *ctx, const json_t *exts);
json_t *app_sync_contact_delete(struct bm_ctx *ctx, const char *ext_id);

/*
 * Serves POST <endpoint>ext/<install id>/contacts: the external service's
 * change, signed by Standard Webhooks under the installation's secret
 * (auth's app_wh_accept(): get reads the request's headers by lowercase
 * name).  A delivery id already applied answers 200 with "duplicate":
 * true.  Fills ans.
 */
void app_sync_ext_route(struct app_env *env, struct bm_req *req,
    const char *rest, const char *body, size_t len, app_wh_header_fn get,
    void *arg, struct app_answer *ans);

/* How an attempt at a job ended. */
enum app_sync_outcome {
	APP_SYNC_DONE = 0,  /* applied; the job is finished */
	APP_SYNC_FAILED,    /* failed for good (a 4xx, bad data): dead */
	APP_SYNC_RETRY,     /* failed transiently: due again, or dead when the
	                       schedule is exhausted */
	APP_SYNC__MAX
};

/*
 * Runs job j, leased to this process by app_ks_job_claim(), once: a
 * contact event (as its handler would, without a deadline) or one page of
 * an import, then writes the outcome with its effect in one transaction
 * (done, due again on BM_RETRY_SCHEDULE, or dead with its last request and
 * answer).  For the delivery processes.  Logs; returns the outcome.
 */
enum app_sync_outcome app_sync_deliver(struct app_env *env,
    const struct app_ks_job *j);

/*
 * The asynchronous path of a delivery process (many jobs in flight, their
 * calls in m, the generic REST consumer rest): starts job j (stolen) when
 * its kind runs there: contact_created, contact_updated, contact_deleted.
 * Each is a small state machine over its calls (updated: PUT, or POST when
 * not linked or gone; deleted: DELETE then the pair; created: search by
 * email, then POST, or link and PATCH Botmatic, that call blocking), and
 * its outcome is written as app_sync_deliver() writes it.  finished(arg)
 * runs once the outcome is written: at once, or from
 * app_http_multi_run().  Returns 1 when j was taken, 0 when its kind runs
 * on the blocking path (app_sync_deliver; j is still the caller's).
 */
struct app_http_multi;
struct app_extrest;
int app_sync_flight_start(struct app_env *env, struct app_extrest *rest,
    struct app_http_multi *m, struct app_ks_job *j,
    void (*finished)(void *arg), void *arg);

/*
 * A kind of job run by a part above sync (integration events, webhook
 * registration): the jobs whose kind starts with prefix are attempted by
 * fn on the blocking path, with the queue's retries, dead jobs and
 * Idempotency-Keys.  fn returns a result (new; {"success":true} when done,
 * a failure with "status" when the service answered one); a failed call
 * on the outbound path makes a failure transient.  ctx->token is the
 * installation's token, or "@<owner>" for a detached job.  Registered in
 * the master before fork (a small table: at most APP_SYNC_KINDS_MAX).
 * Returns 0, or -1 when full.
 */
#define APP_SYNC_KINDS_MAX 8
typedef json_t *(*app_sync_kind_fn)(struct app_env *env, struct bm_ctx *ctx,
    const char *kind, const json_t *payload);
int app_sync_kind_add(const char *prefix, app_sync_kind_fn fn);

/* How long a delivery process leases a job: its calls' timeouts and a
 * margin.  A holder that dies lets it lapse and the job runs again. */
int64_t app_sync_lease_ms(const struct app_conf *conf);

/* Writes the text form of a Botmatic or external id (a string, or an
 * integer in decimal) into buf.  Returns 0, or -1 for any other value. */
int app_sync_id_text(const json_t *id, char *buf, size_t cap);

#endif
