/*
 * sync/sync.h - contact sync, what js-contact did, done right: the built-in
 * handlers of install, contact_created, contact_updated and
 * contact_deleted (on when BM_MAPPINGS is set), the import of every
 * external contact, the external -> Botmatic operations modules call, and
 * the external service's webhook route.
 *
 * Every operation keeps the keystore in step and reports failures as
 * {"success":false,"error":...}; nothing is swallowed.
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
 * Imports every external contact of the installation of token, page by
 * page, creating on Botmatic those not linked yet and saving each pair.
 * Returns a new result {"success":..,"imported":n,"skipped":n,"failed":n}.
 */
json_t *app_sync_import(struct app_env *env, const char *reqid,
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

/* Writes the text form of a Botmatic or external id (a string, or an
 * integer in decimal) into buf.  Returns 0, or -1 for any other value. */
int app_sync_id_text(const json_t *id, char *buf, size_t cap);

#endif
