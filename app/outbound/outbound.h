/*
 * outbound/outbound.h - every call the server makes to another service:
 * the one libcurl request path (http), the Botmatic API client (botmatic)
 * and the generic REST consumer of the external service (extrest).
 * Depends on core and the mapping library only.  Sections: http, Botmatic
 * API, external REST consumer.
 */
#ifndef APP_OUTBOUND_H
#define APP_OUTBOUND_H

#include <stddef.h>
#include <botmatic/module.h>
#include <jansson.h>

#include "core/core.h"

/*
 * http: the one place outbound HTTP requests are made (libcurl), shared
 * by the Botmatic API client (botmatic.c) and the generic REST consumer
 * (extrest.c).
 *
 * One struct app_http per client and responder: its curl easy handle is
 * reused for every call, and curl_easy_reset() between calls keeps the
 * handle's connection cache, so a responder keeps its connections to a
 * service alive from one request to the next.  Every request: http and https
 * only, no redirect followed, TLS verification as libcurl's default (on),
 * the configured connect and total timeouts, an answer of at most
 * APP_HTTP_ANSWER_MAX bytes.
 *
 * Nothing here logs: callers know the request id and what may be shown, and
 * log once through app_http_failure().
 */

/* Largest answer read from Botmatic or the external service. */
#define APP_HTTP_ANSWER_MAX (8UL * 1024 * 1024)

struct app_http;
struct curl_slist;  /* from <curl/curl.h>, included by callers */

/*
 * Returns a new client (free with app_http_free) using conf's timeouts;
 * conf is borrowed and must outlive it.  NULL when out of memory or curl
 * cannot make a handle.  Call after fork: a curl handle is never shared
 * between processes.
 */
struct app_http *app_http_new(const struct app_conf *conf);

/* Frees h and closes its connections.  NULL is allowed. */
void app_http_free(struct app_http *h);

/*
 * Sends one request: method (upper case) to url (http:// or https://),
 * headers (borrowed, may be NULL) and body (NUL-terminated, borrowed; NULL
 * sends none, except that a POST always sends one, empty if need be).
 * "Expect:" is always sent empty, so a large body never waits for a
 * 100-continue.  When an answer arrives, whatever its status, returns 0
 * with *status set and *answer a new NUL-terminated string (free()) of *len
 * bytes (answer and len may be NULL when the body is not wanted).  On a
 * transport error (connection refused, timeout, TLS failure, an answer over
 * APP_HTTP_ANSWER_MAX, out of memory) returns -1 with curl's message in err
 * (errlen bytes, NUL-terminated), *status 0 and *answer NULL.
 */
int app_http_request(struct app_http *h, const char *method, const char *url,
    const struct curl_slist *headers, const char *body, long *status,
    char **answer, size_t *len, char *err, size_t errlen);

/*
 * Delivery of a job (SPEC §9).  Until app_http_job_end(), every request of
 * this process: a POST carries "Idempotency-Key: <idem_prefix>-<step>"
 * (step: a hash of the path, so the same call of the same job has the same
 * key on every attempt) when idem_prefix is not NULL; no request outlasts
 * deadline (CLOCK_MONOTONIC ms, 0: only the configured timeouts), one made
 * after it fails at once with "deadline passed".  Each call is noted for
 * app_http_last() and counted by app_http_job_transient() when it failed
 * in a way worth retrying.
 */
void app_http_job_begin(const char *idem_prefix, int64_t deadline);
void app_http_job_end(void);

/* on: the next calls carry credentials (a JWT fetch): their answers are
 * not kept for app_http_last() and they get no Idempotency-Key. */
void app_http_job_secret(int on);

/* Calls since app_http_job_begin() that failed transiently (no answer,
 * 408, 425, 429, 5xx). */
unsigned app_http_job_transient(void);

/* Whether an answer's status is worth retrying (0: no answer). */
int app_http_status_transient(long status);

/* What the last request sent and got, for a job's record. */
struct app_http_last {
	char method[16];
	char path[256];      /* without the query string (it may hold email) */
	long status;         /* 0: no answer */
	long retry_after;    /* the answer's Retry-After, seconds; -1: none */
	char answer[512];    /* the start of the answer, printable ASCII */
	char error[256];     /* the transport error, or "" */
};

/* Borrowed, valid until the next request. */
const struct app_http_last *app_http_last(void);

/*
 * A job's delivery context for the asynchronous path (caller-owned, one per
 * job in flight): what app_http_job_begin() sets for the blocking path.
 * Set secret for calls carrying credentials; read last and transient after
 * a call finished.
 */
struct app_http_ctx {
	char idem[128];        /* "": no Idempotency-Key */
	int64_t deadline;      /* CLOCK_MONOTONIC ms, 0: none */
	unsigned transient;    /* transient failures since begin */
	int secret;            /* the next calls carry credentials */
	struct app_http_last last;
};
void app_http_ctx_begin(struct app_http_ctx *ctx, const char *idem_prefix,
    int64_t deadline);

/*
 * The asynchronous path: many calls in flight in one process, over
 * libcurl's multi interface.  Every call is set up and its answer handled
 * by the same code as app_http_request() (same limits, Idempotency-Key,
 * Retry-After, note in ctx->last, metrics); nothing here logs.  One per
 * process, made after fork; connections are kept across calls.
 */
struct app_http_multi;

/*
 * A finished call: rc 0 with status and answer (new, NUL-terminated, len
 * bytes: the callee owns it and frees it), or rc -1 with err (transport
 * error, timeout, answer too large) and answer NULL.
 */
typedef void (*app_http_done_fn)(void *arg, int rc, long status,
    char *answer, size_t len, const char *err);

/* At most max (1..1024) calls in flight.  NULL when out of memory. */
struct app_http_multi *app_http_multi_new(const struct app_conf *conf,
    unsigned max);

/* Aborts the calls in flight (no callback) and frees m.  NULL is allowed. */
void app_http_multi_free(struct app_http_multi *m);

/*
 * Starts one call: the arguments as for app_http_request(), ctx borrowed
 * until done runs (url, headers and body are copied).  Returns 0 (done will
 * be called from app_http_multi_run()), or -1 with err set when it cannot
 * start (every slot busy, deadline passed, out of memory): noted in ctx,
 * counted, done not called.
 */
int app_http_multi_add(struct app_http_multi *m, struct app_http_ctx *ctx,
    const char *method, const char *url, const struct curl_slist *headers,
    const char *body, app_http_done_fn done, void *arg, char *err,
    size_t errlen);

/* Calls in flight. */
unsigned app_http_multi_running(const struct app_http_multi *m);

/*
 * Waits at most timeout_ms for the calls to make progress (a signal ends
 * the wait early), then runs done for every call that finished.  Returns
 * how many finished, or -1 when libcurl fails (every call still held).
 */
int app_http_multi_run(struct app_http_multi *m, int timeout_ms);

/*
 * The circuit breaker (breaker.c), per target, in memory shared by every
 * process of the server: after BM_BREAKER_THRESHOLD transient failures in
 * a row the target counts as down, and contact events are queued at once
 * instead of waiting on it, until a call succeeds (the delivery processes'
 * attempts are the probes).
 */
enum app_target {
	APP_TARGET_EXT = 0,      /* the external service */
	APP_TARGET_BOTMATIC,     /* the Botmatic API */
	APP_TARGET__MAX
};

/* Maps the shared state (the master, before fork).  0, or -1 (errno). */
int app_breaker_init(unsigned threshold);
void app_breaker_free(void);

/* 1 when t counts as down.  0 when app_breaker_init() was not called. */
int app_breaker_open(enum app_target t);

/* Notes an outcome at t: ok closes the breaker, a transient failure
 * counts toward opening it.  Logs when it opens or closes. */
void app_breaker_note(enum app_target t, int ok);

/*
 * Appends the headers of a JSON exchange ("Accept: application/json",
 * "Content-Type: application/json") to *list, then extra when not NULL (a
 * whole header line, copied).  Returns 0, or -1 when out of memory (*list
 * then still belongs to the caller, to free with curl_slist_free_all).
 */
int app_http_json_headers(struct curl_slist **list, const char *extra);

/*
 * Returns a new string (free()) holding s percent-encoded for a URL path or
 * query value: every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~) is
 * written %XX.  NULL when out of memory.
 */
char *app_http_escape(const char *s);

/*
 * Returns 1 when s can go into a header line: not empty, no control byte
 * (CR and LF above all: they would end the line and forge another header).
 */
int app_http_header_safe(const char *s);

/*
 * Logs one line (WARN, tagged component and reqid: method, path and the
 * reason) and returns a new result {"success":false,"error":reason,
 * "status":status} ("status" left out when status is 0, i.e. no answer).
 * path must hold nothing secret (no token); the query string is not logged,
 * since it may carry an email address.  NULL only when out of memory.
 */
json_t *app_http_failure(const char *component, const char *reqid,
    const char *method, const char *path, long status, const char *reason);

/*
 * Parses answer (len bytes) strictly (JSON_REJECT_DUPLICATES; any JSON
 * value, not only objects).  Returns a new value, or NULL with a short
 * reason in err.
 */
json_t *app_http_parse(const char *answer, size_t len, char *err,
    size_t errlen);

/*
 * botmatic: the Botmatic API client (libcurl), one per responder.
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
 * {"contact_id":..,"contact_props":{...}}.  200: {"success":true}.  A
 * string contact_id is sent with the type a single update gives it (an
 * integer when written in decimal digits), so both calls agree.
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

/*
 * The bots, as js-api-client read and changed them.  Each expects 200 and
 * an answer that is a JSON object or array (update: or an empty answer).
 *   bots_list: GET /api/bots?page_size=1000 -> {"success":true,"bots":<answer>}
 *   bot_get:   GET /api/bots/{id}           -> {"success":true,"bot":<answer>}
 *   bot_update: PATCH /api/bots/{id} {"bot":bot,"is_draft":true}, bot
 *              (borrowed) an object -> {"success":true[,"bot":<answer>]}
 * A 404 on one bot is "resource not found".
 */
json_t *app_botmatic_bots_list(struct app_botmatic *bm, const char *reqid,
    const char *token);
json_t *app_botmatic_bot_get(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *id);
json_t *app_botmatic_bot_update(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *id, const json_t *bot);

/*
 * extrest: the generic REST consumer: the default struct bm_consumer,
 * speaking JSON to BM_EXT_BASE_URL (SPEC §4).
 *
 * Each operation sends its configured method (BM_EXT_METHOD_*) to
 * BM_EXT_BASE_URL + its path template (BM_EXT_PATH_*), where {id}, {email},
 * {page} and {limit} are replaced by the values, percent-encoded; create and
 * update send the contact as the JSON body.  Results are <botmatic/module.h>'s
 * "Outbound results", new objects:
 *   create        200/201 and an object holding the new id under id_field
 *                 (else "id"), a string or an integer:
 *                 {"success":true,"id":<as sent>}
 *   get           200 and an object: {"success":true,"contact":{...}}
 *   get_by_email  200 and a non-empty array (its first element) or an
 *                 object: {"success":true,"contact":{...}}; [] is not found
 *                 (no "status": the service did not fail)
 *   list_page     200 and an array of objects, or an object holding one
 *                 under BM_EXT_LIST_FIELD: {"success":true,"contacts":[...]}
 *   update, del   any 2xx: {"success":true}
 * A 404 to get, get_by_email, update or del is {"success":false,"error":
 * "resource not found","status":404}; any other status is "HTTP <n>" (a 404
 * to create or list_page too: it names a wrong path, not a missing contact);
 * an answer that is not the JSON expected is "invalid answer: ..."; no answer
 * is curl's message.  Each failure is logged once with the request id,
 * method and path (without the query string, which may carry an email).
 *
 * Authentication: BM_EXT_AUTH_HEADER is sent as a whole header line.  With
 * BM_EXT_JWT_URL, a JSON Web Token is obtained by POSTing BM_EXT_JWT_BODY
 * there and taking the answer's member BM_EXT_JWT_FIELD, then sent as
 * "Authorization: Bearer <jwt>" (and BM_EXT_AUTH_HEADER then only when it
 * is not an Authorization header itself).  The token is kept in the
 * struct (one per responder) until its "exp" claim passes, or, without
 * one, until the service answers 401; a 401 drops it, fetches a new one and
 * retries that call once.  The JWT is never logged.
 */

struct app_extrest;

/*
 * Returns a new consumer (free with app_extrest_free), with its own curl
 * handle: make it after fork, one per responder.  id_field is the member
 * holding ids in answers (the caller resolves BM_EXT_ID_FIELD, else the
 * mapping's ext id key, else "id"); copied.  conf is borrowed and must
 * outlive it.  NULL on error (no BM_EXT_BASE_URL, out of memory) with the
 * reason in err (errlen bytes, NUL-terminated).
 */
struct app_extrest *app_extrest_new(const struct app_conf *conf,
    const char *id_field, char *err, size_t errlen);

/* Frees x, its cached JWT and its connections.  NULL is allowed. */
void app_extrest_free(struct app_extrest *x);

/*
 * Fills *out (size included) with functions calling into x (out->arg = x);
 * x must outlive every use of them.  ctx may be NULL in those calls (no
 * request id in the logs).
 */
void app_extrest_consumer(struct app_extrest *x, struct bm_consumer *out);

/*
 * The asynchronous path of create, get_by_email, update and del (op
 * APP_EXT_CREATE, _SEARCH, _UPDATE, _DELETE): the same request and the same
 * result as the functions above, the call made in m with the job context
 * ctx (borrowed until done runs).  id, email and contact as those
 * functions take them (borrowed, copied).  A JWT still to be fetched is
 * fetched first, blocking (once per token).  Returns 0 when the call is in
 * flight: done(arg, result) runs from app_http_multi_run() with the result
 * (new, the callee's).  Returns 1 when it ended at once (bad argument, no
 * JWT, no slot), with *result set (new; logged like any failure).
 */
typedef void (*app_extrest_done_fn)(void *arg, json_t *result);

/*
 * The external service's webhooks (SPEC §11), blocking: op
 * APP_EXT_HOOKS_LIST (200, an array: {"success":true,"hooks":[...]}),
 * APP_EXT_HOOK_CREATE with body (borrowed) {"topic","address"} (2xx, an
 * object holding "id": {"success":true,"id":..}) or APP_EXT_HOOK_DELETE of
 * id (any 2xx: {"success":true}; 404: "resource not found"), on the paths
 * BM_EXT_HOOKS_PATH_* with the consumer's authentication.  A new result,
 * failures logged as for the contact operations.
 */
json_t *app_extrest_hook(struct app_extrest *x, const char *reqid,
    enum app_ext_op op, const char *id, const json_t *body);
int app_extrest_start(struct app_extrest *x, struct app_http_multi *m,
    struct app_http_ctx *ctx, const char *reqid, enum app_ext_op op,
    const char *id, const char *email, const json_t *contact,
    app_extrest_done_fn done, void *arg, json_t **result);

#endif
