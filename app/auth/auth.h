/*
 * auth/auth.h - who may call: the bearer token taken from the request and
 * compared in constant time, HMAC signatures of deliveries from outside,
 * the tokens Botmatic refused (a cache shared by every responder), and the
 * auth policy of SPEC §3 (BM_AUTH) for every request but install and
 * uninstall.  Depends on core, outbound (token validation) and keystore
 * (installations).
 */
#ifndef APP_AUTH_H
#define APP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <botmatic/module.h>
#include <jansson.h>

#include "core/core.h"
#include "keystore/keystore.h"
#include "outbound/outbound.h"

/* --- tokens and signatures --------------------------------------------- */

/* Longest Authorization header accepted. */
#define APP_TOKEN_MAX 4096

/*
 * The token of an Authorization header value ("Bearer <token>", or the
 * whole value as the Node library accepted), written into out (cap bytes).
 * Returns 0 with out = "" when there is none, -1 when it is over the cap.
 */
int app_auth_token(const char *authorization, char *out, size_t cap);

/* Compares two NUL-terminated strings in time independent of where they
 * differ (b is the expected value).  Returns 1 when equal. */
int app_auth_token_eq(const char *a, const char *b);

/*
 * Checks signature, the lowercase or uppercase hex of HMAC-SHA256(key,
 * body) with an optional "sha256=" prefix, in constant time.  signature may
 * be NULL (absent).  Returns 1 when it matches, 0 otherwise.
 */
int app_auth_hmac_verify(const char *key, const char *body, size_t len,
    const char *signature);

/*
 * The negative cache: tokens Botmatic refused, remembered for a short time by
 * every responder at once (BM_AUTH=validate), so a flood of requests with a
 * bad token does not become a flood of calls to Botmatic.
 *
 * The table lives in memory the master maps shared before forking.  It
 * holds keyed 64-bit hashes, never tokens; a lost race between two
 * responders costs at most one extra validation.
 */

#define APP_NEGCACHE_SLOTS 4096

struct app_negcache;

/* Maps a new table (MAP_SHARED); NULL on failure.  Call before fork. */
struct app_negcache *app_negcache_new(void);
void app_negcache_free(struct app_negcache *nc);

/* Remembers that token was refused until now_s + ttl_s. */
void app_negcache_put(struct app_negcache *nc, const char *token,
    int64_t now_s, unsigned ttl_s);

/* Returns 1 when token was refused and the refusal has not expired. */
int app_negcache_hit(struct app_negcache *nc, const char *token,
    int64_t now_s);

/* --- the auth policy --------------------------------------------------- */

/* An auth function a module registered (BM_AUTH=module:<name>). */
struct app_authfn {
	char *module;
	char *name;
	bm_auth_fn fn;
	void *arg;
};

/* What the policy may use: borrowed from the responder. */
struct app_auth {
	const struct app_conf *conf;
	struct app_keystore *ks;
	struct app_botmatic *botmatic;
	struct app_negcache *neg;      /* shared refusal cache */
	const struct app_authfn *fn;   /* BM_AUTH=module:<name>, else NULL */
};

/*
 * Applies BM_AUTH to ctx->token (every request but install/uninstall).
 * Returns BM_OK with *client set (new reference, may be NULL for "any"),
 * BM_EAUTH when refused, or BM_ETEMP / BM_ERROR, each failure logged once
 * here or by the keystore.
 */
enum bm_rc app_auth_policy(const struct app_auth *a, struct bm_ctx *ctx,
    json_t **client);

#endif
