/*
 * keystore/keystore.h - the server's side of the keystore (store/): one
 * store handle per process, opened after fork, every call timed through a
 * progress mark the caller lends (a responder's shared slot), so the
 * master's watchdog sees a call that never returns (a process killed inside
 * Berkeley DB can wedge the others, see BDB-NOTES).  Depends on core and
 * store/ only.
 * Installations are handed to handlers as JSON: {"install_id", "created",
 * "settings"}; the token and the secret never are.
 */
#ifndef APP_KEYSTORE_KEYSTORE_H
#define APP_KEYSTORE_KEYSTORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

struct store;

/* Longest id (botmatic or external) the store keeps, in bytes. */
#define APP_KS_ID_MAX 512
/* Longest token (integration id) the store keys, in bytes: a longer bearer
 * token belongs to no installation and is refused as such (401). */
#define APP_KS_TOKEN_MAX 512
/* The state holding the secret a rotation replaced: {"secret": hex,
 * "rotated": unix time}.  botmatic-keys writes it. */
#define APP_KS_PREVIOUS_SECRET "bm:webhook-secret-previous"
/* An install id: 128 random bits as 32 lowercase hex digits (store/). */
#define APP_KS_INSTALL_ID_LEN 32
/*
 * Processes beside the responders that may have the store open at once:
 * delivery processes, the master's checker, botmatic-keys and
 * --import-contacts.
 */
#define APP_KS_OTHER_PROCESSES 32

struct app_keystore {
	struct store *st;        /* owned */
	_Atomic int64_t *progress; /* borrowed, may be NULL: the start of the
	                              call in progress (ms), 0 between calls */
	int broken;              /* Berkeley DB asked for recovery: exit */
};

/*
 * Opens the store of conf->db_home for this process; if this open creates
 * the environment, it is sized for 2 * BM_WORKERS_MAX +
 * APP_KS_OTHER_PROCESSES processes.  progress (borrowed,
 * may be NULL) receives app_now_ms() when a call starts and 0 when it
 * returns.  Returns 0, or -1 with the reason (path and Berkeley DB's words)
 * in err.
 */
int app_ks_open(struct app_keystore *ks, const struct app_conf *conf,
    _Atomic int64_t *progress, char *err, size_t errlen);
void app_ks_close(struct app_keystore *ks);

/*
 * The installation of token as JSON in *client (new).  Returns 0 found,
 * 1 not found, -1 error (logged with reqid).
 */
int app_ks_install_get(struct app_keystore *ks, const char *reqid,
    const char *token, json_t **client);

/*
 * Records the installation of token with settings (borrowed, may be NULL).
 * *client (new) is its JSON, with "webhook_secret" (whsec_<base64>, as a
 * Standard Webhooks sender is given it) when with_secret is set
 * (for install hooks registering the external webhook); *created says
 * whether it is new.  Returns 0 or -1 (logged).
 */
int app_ks_install_record(struct app_keystore *ks, const char *reqid,
    const char *token, const json_t *settings, int with_secret,
    json_t **client, int *created);

/*
 * The token and webhook secret of the installation whose install id is id;
 * both new (free()).  Returns 0 found, 1 not found, -1 error (logged).
 */
int app_ks_install_by_id(struct app_keystore *ks, const char *reqid,
    const char *id, char **token, char **secret);

/*
 * The webhook secret a rotation replaced (state "bm:webhook-secret-previous",
 * written by botmatic-keys secret rotate), if it was rotated less than
 * grace_s seconds before now: *secret new (free()), hex.  Returns 0 found,
 * 1 none (or expired), -1 error (logged).
 */
int app_ks_secret_previous(struct app_keystore *ks, const char *reqid,
    const char *token, int64_t now, unsigned grace_s, char **secret);

/*
 * Claims delivery id of install id for ttl_s seconds (store_delivery_claim):
 * returns 0 new, 1 already claimed within ttl_s, -1 error (logged).
 * Release forgets a claim whose delivery failed; returns 0 or -1.
 */
int app_ks_delivery_claim(struct app_keystore *ks, const char *reqid,
    const char *install_id, const char *id, int64_t now, unsigned ttl_s);
int app_ks_delivery_release(struct app_keystore *ks, const char *reqid,
    const char *install_id, const char *id);

/* Forgets the installation, its pairs and state.  Returns 0 or -1. */
int app_ks_install_delete(struct app_keystore *ks, const char *reqid,
    const char *token, size_t *pairs);

/*
 * Sets every member of values (borrowed, an object) in the "settings" of
 * token's installation (a member whose value is null is removed), keeping
 * its other members, in one transaction
 * (the settings page saves there; auth.client.settings carries them).
 * Returns 0, 1 when token has no installation (nothing is created), -1
 * error (logged).
 */
int app_ks_settings_merge(struct app_keystore *ks, const char *reqid,
    const char *token, const json_t *values);

/* Forgets every id pair of integration token; *n (may be NULL) gets how
 * many.  Returns 0 or -1 (logged). */
int app_ks_ids_delete_all(struct app_keystore *ks, const char *reqid,
    const char *token, size_t *n);

/*
 * Id pairs and state of integration token, for handlers.  Return 0 done
 * or found, 1 not found, -1 error (logged).  Strings come back new
 * (free()); state values as new JSON references.
 */
int app_ks_ids_save(struct app_keystore *ks, const char *reqid,
    const char *token, const char *bid, const char *eid);
int app_ks_ext_id_get(struct app_keystore *ks, const char *reqid,
    const char *token, const char *bid, char **eid);
int app_ks_botmatic_id_get(struct app_keystore *ks, const char *reqid,
    const char *token, const char *eid, char **bid);
int app_ks_ids_delete(struct app_keystore *ks, const char *reqid,
    const char *token, const char *bid, const char *eid);
int app_ks_state_get(struct app_keystore *ks, const char *reqid,
    const char *token, const char *name, json_t **value);
int app_ks_state_set(struct app_keystore *ks, const char *reqid,
    const char *token, const char *name, const json_t *value);
int app_ks_state_delete(struct app_keystore *ks, const char *reqid,
    const char *token, const char *name);

#endif
