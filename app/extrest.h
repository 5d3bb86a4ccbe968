/*
 * extrest.h - the generic REST consumer: the default struct bm_consumer,
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
#ifndef APP_EXTREST_H
#define APP_EXTREST_H

#include <stddef.h>

#include <botmatic/module.h>

#include "conf.h"

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

#endif
