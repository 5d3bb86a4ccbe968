/*
 * events/events_int.h - what the files of events/ share; no other part
 * includes it.
 */
#ifndef APP_EVENTS_INT_H
#define APP_EVENTS_INT_H

#include "events/events.h"

/* The value at JSON Pointer p in doc (borrowed), or NULL. */
const json_t *app_events__pointer(const json_t *doc, const char *p);

/* The job kinds (app_sync_kind_fn): "ev_handler" and "ev_campaign"
 * (events.c), "hooks_reconcile" and "hooks_delete" (hooks.c). */
json_t *app_events__run_fire(struct app_env *env, struct bm_ctx *ctx,
    const char *kind, const json_t *payload);
json_t *app_events__run_hooks(struct app_env *env, struct bm_ctx *ctx,
    const char *kind, const json_t *payload);

#endif
