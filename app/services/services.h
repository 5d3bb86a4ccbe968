/*
 * services/services.h - third-party services over OAuth 2 (SPEC §12): the
 * link a module or an operator hands out, the start and callback routes
 * (<endpoint>oauth/<svc>/start and .../callback, PKCE S256, a single-use
 * state kept server-side), the token of a service for modules (refreshed
 * within a minute of expiry, one refresh at a time per service), its
 * deletion and the list.  Calls core, outbound (the libcurl path),
 * keystore (the store's services and pending links) and dispatch (the
 * answer, struct app_env).  Tokens are never logged nor put in an answer.
 */
#ifndef APP_SERVICES_SERVICES_H
#define APP_SERVICES_SERVICES_H

#include <jansson.h>

#include "dispatch/dispatch.h"

/* How long a link, then a state, is valid; the refresh margin; the lease
 * one responder holds while it refreshes a service. */
#define APP_OAUTH_LINK_TTL 600
#define APP_OAUTH_STATE_TTL 600
#define APP_OAUTH_REFRESH_MARGIN 60
#define APP_OAUTH_LEASE 30

/* What app_service_token returns besides 0 and -1. */
#define APP_SERVICE_NOT_LINKED 1
#define APP_SERVICE_NEEDS_LINK 2

/*
 * GET <endpoint>oauth/<rest>: rest is "<svc>/start" (query l=<link id>:
 * 302 to the provider) or "<svc>/callback" (query code and state, or
 * error and state: a small HTML page).  Fills ans.
 */
void app_oauth_route(struct app_env *env, struct bm_req *req,
    const char *rest, const char *query, struct app_answer *ans);

/*
 * A one-time link (APP_OAUTH_LINK_TTL seconds) under BM_PUBLIC_URL that
 * links service svc of installation install_id for group and user (NULL
 * or "" for none).  *url new (free()).  Returns 0, or -1 (logged: an
 * unknown service, a bad argument, the store).
 */
int app_service_link(struct app_env *env, const char *reqid,
    const char *install_id, const char *svc, const char *group,
    const char *user, char **url);

/*
 * A valid access token of that service: *token new (free(), never log
 * it), refreshed first when it expires within APP_OAUTH_REFRESH_MARGIN
 * seconds.  Returns 0, APP_SERVICE_NOT_LINKED, APP_SERVICE_NEEDS_LINK
 * (the provider refused the refresh token, or the token expired without
 * one) or -1 (logged).
 */
int app_service_token(struct app_env *env, const char *reqid,
    const char *install_id, const char *svc, const char *group,
    const char *user, char **token);

/* Forgets one service.  Returns 0, 1 when there was none, -1 (logged). */
int app_service_delete(struct app_env *env, const char *reqid,
    const char *install_id, const char *svc, const char *group,
    const char *user);

/*
 * The services of install_id without secrets: a new array of
 * {"service","group","user","scope","created","updated","expires",
 * "needs_link"}, or NULL (logged).
 */
json_t *app_services_list(struct app_env *env, const char *reqid,
    const char *install_id);

#endif
