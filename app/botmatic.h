/*
 * botmatic.h - the Botmatic API client (libcurl), one per responder.
 *
 * The curl handle is created after fork and reused for every call of the
 * responder, so connections to Botmatic are kept alive between requests.
 * Tokens are sent, never logged.
 */
#ifndef APP_BOTMATIC_H
#define APP_BOTMATIC_H

#include <stddef.h>

#include <jansson.h>

#include "conf.h"

/* Largest answer read from Botmatic or the external service. */
#define APP_HTTP_ANSWER_MAX (8UL * 1024 * 1024)

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

#endif
