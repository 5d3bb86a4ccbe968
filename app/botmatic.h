/*
 * botmatic.h - the Botmatic API client (libcurl), one per responder.
 *
 * The client's curl handle (app/http.c) is created after fork and reused for
 * every call of the responder, so connections to Botmatic are kept alive
 * between requests.  Tokens are sent, never logged.
 *
 * Every call but app_botmatic_validate returns a NEW result object (the
 * caller decrefs it), shaped as <botmatic/module.h>'s "Outbound results":
 *   {"success":true, ...}
 *   {"success":false,"error":"<reason>","status":<HTTP status>}
 * "status" is there when Botmatic answered; "error" is then "HTTP <n>", or
 * "resource not found" for a 404 on a call naming one contact (update,
 * delete), or "invalid answer: ..." for an answer that is not what the call
 * expects; without an answer it is curl's message (connection refused,
 * timeout, answer too large).  An argument that cannot be sent (no token,
 * a token holding control characters, a body that is not the JSON type the
 * call needs) fails without a request.  Each failure is logged once, with
 * the request id, method and path, never the token.  NULL only when out of
 * memory.
 *
 * Success needs exactly the status js-api-client expected: 201 for POST,
 * 200 for PATCH, 204 for DELETE.  Objects are serialised as JavaScript's
 * JSON.stringify would (map_stringify), keys in their order.
 */
#ifndef APP_BOTMATIC_H
#define APP_BOTMATIC_H

#include <stddef.h>

#include <jansson.h>

#include "conf.h"

struct app_botmatic;

/* Returns a new client for conf (borrowed, must outlive it), or NULL. */
struct app_botmatic *app_botmatic_new(const struct app_conf *conf);
void app_botmatic_free(struct app_botmatic *bm);

/*
 * Asks Botmatic whether token belongs to an installation
 * (POST /api/integrationtokens/validate, form field token).  Returns 1 when
 * the answer is JSON with "success": true, 0 otherwise (refusal, transport
 * error, bad answer: each logged, without the token).
 */
int app_botmatic_validate(struct app_botmatic *bm, const char *reqid,
    const char *token);

/*
 * POST /api/contacts {"contact":contact}; contact (borrowed) is an object.
 * 201 with a string or integer "id": {"success":true,"id":<id as sent>};
 * a 201 without one is a failure.
 */
json_t *app_botmatic_contact_create(struct app_botmatic *bm,
    const char *reqid, const char *token, const json_t *contact);

/*
 * POST /api/contacts {"contacts":contacts}; contacts (borrowed) is an
 * array.  201 with {"contacts":[...]}, an array of objects as long as the
 * one sent (Botmatic's {"success","id","error"} per contact, in order):
 * {"success":true,"contacts":[...]}.
 */
json_t *app_botmatic_contacts_create(struct app_botmatic *bm,
    const char *reqid, const char *token, const json_t *contacts);

/*
 * PATCH /api/contacts/{id} {"contact_id":id,"contact":contact}; contact
 * (borrowed) is an object.  200: {"success":true}.  contact_id is what
 * js-api-client sent, the contact's id: a JSON integer when id is written in
 * decimal digits (Botmatic's ids are integers), else the string id (also
 * for a leading zero or more than 64 bits, which an integer would change).
 */
json_t *app_botmatic_contact_update(struct app_botmatic *bm,
    const char *reqid, const char *token, const char *id,
    const json_t *contact);

/*
 * PATCH /api/contacts {"contacts":items}; items (borrowed) is an array of
 * {"contact_id":..,"contact_props":{...}}.  200: {"success":true}.
 */
json_t *app_botmatic_contacts_update(struct app_botmatic *bm,
    const char *reqid, const char *token, const json_t *items);

/* DELETE /api/contacts/{id}.  204: {"success":true}. */
json_t *app_botmatic_contact_delete(struct app_botmatic *bm,
    const char *reqid, const char *token, const char *id);

/*
 * POST /api/properties {"properties":properties}; properties (borrowed) is
 * an array of {"name":..,"type":..}.  201: {"success":true}.
 */
json_t *app_botmatic_properties_create(struct app_botmatic *bm,
    const char *reqid, const char *token, const json_t *properties);

/*
 * POST /api/campaigns/execute-event {"event_name":event_name,
 * "contacts":ids}; ids (borrowed) is an array of Botmatic contact ids.
 * 200: {"success":true}.
 */
json_t *app_botmatic_campaign_event(struct app_botmatic *bm,
    const char *reqid, const char *token, const char *event_name,
    const json_t *ids);

#endif
