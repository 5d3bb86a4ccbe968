/*
 * auth/auth.h - who may call: the bearer token taken from the request and
 * compared in constant time, Standard Webhooks signatures of deliveries
 * from outside (checked, and their ids claimed so a replay is not applied),
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

/* --- signed deliveries from outside (SPEC §11) ------------------------- */

/*
 * The signature schemes a delivery may use (SPEC §11).  Each is a case in
 * app_wh_parse() (which headers, which signatures) and in the text
 * wh_mac() signs; app_wh_verify() works on what the parse produced.
 */
enum app_wh_scheme {
	APP_WH_STANDARD = 0, /* webhook-id, -timestamp and -signature */
	APP_WH_SHOPIFY,      /* X-Shopify-Hmac-Sha256: base64 HMAC of the body;
	                        id X-Shopify-Webhook-Id */
	APP_WH_GITHUB,       /* X-Hub-Signature-256: sha256=<hex HMAC of the
	                        body>; id X-GitHub-Delivery */
	APP_WH_STRIPE,       /* Stripe-Signature: t=<ts>,v1=<hex HMAC of
	                        "ts.body">; id the payload's "id" */
	APP_WH__MAX
};

/* The scheme called name ("standard-webhooks", "shopify", "github",
 * "stripe"), or -1; and the name of a scheme (static). */
int app_wh_scheme_parse(const char *name);
const char *app_wh_scheme_name(enum app_wh_scheme scheme);

/* Longest delivery id kept, bytes. */
#define APP_WH_ID_MAX 255
/* Signatures looked at in one header (a sender rotating names two). */
#define APP_WH_SIGS_MAX 8
/* How far a delivery's timestamp may be from our clock, seconds. */
#define APP_WH_TOLERANCE 300
/* Longest key accepted (a decoded whsec_ secret), bytes. */
#define APP_WH_KEY_MAX 64

/* A delivery's signature headers, parsed: a value, owns nothing. */
struct app_wh_delivery {
	enum app_wh_scheme scheme;
	char id[APP_WH_ID_MAX + 1];      /* the delivery id, printable ASCII */
	char ts[24];                     /* the timestamp as sent (digits),
	                                    "" for a scheme without one */
	int64_t t;                       /* the same, as a number */
	int timed;                       /* a timestamp was signed: check it */
	size_t nsig;                     /* candidate signatures found */
	unsigned char sig[APP_WH_SIGS_MAX][32]; /* decoded HMAC-SHA256s */
};

/* Returns the value of HTTP header name (lowercase, e.g. "webhook-id") of
 * the request, or NULL when absent: how the parser reads headers. */
typedef const char *(*app_wh_header_fn)(void *arg, const char *name);

/*
 * Parses the headers scheme uses into *d.  Bounded: an id over
 * APP_WH_ID_MAX or with control characters, a timestamp that is not 1 to
 * 12 digits, no signature of a known version: refused.  Unknown signature
 * versions are skipped (Standard Webhooks and Stripe let a sender add
 * them).  Stripe's delivery id is in the payload, read only once the
 * signature holds: d->id is then "" (app_wh_set_id()).  Returns 0, or -1
 * with *why (static text) naming what is wrong.
 */
int app_wh_parse(enum app_wh_scheme scheme, app_wh_header_fn get,
    void *arg, struct app_wh_delivery *d, const char **why);

/* Sets d's id (Stripe: the payload's "id", once the signature held).
 * Returns 0, or -1 when it is empty, too long or not printable. */
int app_wh_set_id(struct app_wh_delivery *d, const char *id);

/*
 * Checks d against body (len bytes) at time now: the timestamp (when the
 * scheme signs one) within APP_WH_TOLERANCE seconds either way, and one
 * of d's signatures equal, in constant time, to the HMAC-SHA256 under one
 * of the nkeys keys (keys[i], klen[i] bytes: the current secret and,
 * during a rotation's grace, the previous one) of the scheme's signed
 * text ("id.timestamp.body", the body, or "timestamp.body").  Returns 0
 * when it holds, -1 with *why (static text: "stale", "from the future",
 * "bad signature").
 */
int app_wh_verify(const struct app_wh_delivery *d,
    const unsigned char *const *keys, const size_t *klen, size_t nkeys,
    const char *body, size_t len, int64_t now, const char **why);

/* The name of the state value holding a secret the external service gave. */
/* (store.h's STORE_STATE_SECRET_EXTERNAL: the store seals its value) */
#define APP_WH_EXTERNAL_STATE "bm:webhook-secret-external"

/* A delivery id is remembered this long: a replay within it is not applied
 * again (Standard Webhooks senders retry for up to a few days). */
#define APP_WH_DEDUP_TTL (7u * 86400u)

enum app_wh_result {
	APP_WH_ACCEPT = 0,  /* signed, fresh, new: apply it */
	APP_WH_DUPLICATE,   /* signed, but its id was applied already: 200 */
	APP_WH_REFUSED,     /* unsigned, stale, future, bad signature: 401 */
	APP_WH_TEMP,        /* the keystore failed: 503 */
	APP_WH_RESULT__MAX
};

/*
 * The signature check alone, without claiming the id: the headers of
 * scheme parsed and verified on the raw body with the installation's keys
 * (see app_wh_accept).  Standard Webhooks' key is the decoded bytes of the
 * installation's whsec_ secret; shopify, github and stripe use the bytes of
 * the secret the external service gave (botmatic-keys secret set, state
 * "bm:webhook-secret-external") or, when none was given, the bytes of the
 * text "whsec_<base64>" (botmatic-keys secret show).  Returns APP_WH_ACCEPT,
 * APP_WH_REFUSED (logged with its reason) or APP_WH_TEMP.
 */
enum app_wh_result app_wh_check(struct app_keystore *ks, const struct app_conf *conf,
    const char *reqid, enum app_wh_scheme scheme, app_wh_header_fn get,
    void *arg, const char *token, const char *secret, const char *body,
    size_t len, struct app_wh_delivery *d);

/*
 * The whole check of a delivery to installation install_id, whose token and
 * secret (hex) the caller looked up (borrowed): the headers of scheme
 * parsed, the signature verified on the raw body with the secret and, for
 * conf->secret_grace seconds after a rotation, the previous one, then its id
 * claimed for APP_WH_DEDUP_TTL.  Nothing is written unless it returns
 * APP_WH_ACCEPT; then *d holds the delivery, and a caller that could not
 * apply it calls app_wh_release() so the sender's retry is applied.  Each
 * refusal is logged once here with its reason (never a secret).
 */
enum app_wh_result app_wh_accept(struct app_keystore *ks,
    const struct app_conf *conf, const char *reqid,
    enum app_wh_scheme scheme, app_wh_header_fn get, void *arg,
    const char *install_id, const char *token, const char *secret,
    const char *body, size_t len, struct app_wh_delivery *d);
void app_wh_release(struct app_keystore *ks, const char *reqid,
    const char *install_id, const struct app_wh_delivery *d);

/*
 * Decodes standard base64 (with its '=' padding; no line breaks) of src
 * (srclen bytes) into out (cap bytes).  Returns the decoded length, or -1
 * when src is not base64 or does not fit.
 */
long app_wh_base64_decode(const char *src, size_t srclen, unsigned char *out,
    size_t cap);

/*
 * The key of a stored installation secret (64 lowercase hex digits) into
 * key (32 bytes), and its text as shown to operators and senders,
 * "whsec_<base64 of the key>", into text (cap >= 52 bytes).  Return 0, or
 * -1 when hex is malformed.
 */
int app_wh_secret_key(const char *hex, unsigned char key[32]);
int app_wh_secret_text(const char *hex, char *text, size_t cap);

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
