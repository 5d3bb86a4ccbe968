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
/* (store.h's STORE_STATE_SECRET_PREVIOUS: the store seals its value) */
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
	_Atomic int *forgot;     /* borrowed, may be NULL: set to 1 when an
	                            installation was forgotten, for the
	                            master's purge */
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
/* Closes; returns 0, or -1 if the store was left for a recovery. */
int app_ks_close(struct app_keystore *ks);

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

/*
 * Forgets the installation, its pairs and state (a tombstone: the data is
 * purged later, and the slot's purge flag tells the master).  Returns 0
 * or -1.
 */
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

/*
 * One bounded batch of the purge of forgotten data, timed like every call.
 * *deleted gets the keys deleted, *more whether any is left.  Returns 0
 * or -1 (logged).
 */
int app_ks_purge_step(struct app_keystore *ks, size_t max_keys,
    size_t *deleted, int *more);

/*
 * The delivery queue (SPEC §9, keystore/jobs.c).  A job is data: a kind
 * ("contact_created", "import"...), the contact its order is kept by, and a
 * JSON payload; the store keeps attempts, due time, lease and last answer.
 * Times are the wall clock (jobs outlive the process).
 */

/* The pair writes a job's success makes, collected while it runs and
 * applied in the transaction that finishes it. */
struct app_ks_fxop {
	int del;           /* 0: save the pair, 1: delete it */
	char *bid, *eid;   /* owned */
};

struct app_ks_fx {
	struct app_ks_fxop *ops;  /* owned */
	size_t n, cap;
};

/* Appends a write (ids copied).  Returns 0, or -1 when out of memory. */
int app_ks_fx_add(struct app_ks_fx *fx, int del, const char *bid,
    const char *eid);
/* Empties fx (it may be reused). */
void app_ks_fx_clear(struct app_ks_fx *fx);

/* A job taken from the queue. */
struct app_ks_job {
	uint64_t id;
	unsigned attempts;   /* failed attempts before this one */
	char *token;         /* the installation's token (owned; a secret) */
	char *kind;          /* owned */
	char *contact;       /* owned */
	json_t *payload;     /* owned */
};

void app_ks_job_free(struct app_ks_job *j);

/* Wall-clock milliseconds, the queue's time. */
int64_t app_ks_job_now(void);

/*
 * Adds a job for token (payload borrowed, serialised).  unique: not added
 * when the contact's first pending job has this kind.  lease_ms > 0: when
 * the job is runnable at once, it is leased to this process for lease_ms
 * and *leased is set (the caller attempts it now).  *id gets its id.
 * Returns 0, or -1 (logged).
 */
int app_ks_job_add(struct app_keystore *ks, const char *reqid,
    const char *token, const char *kind, const char *contact,
    const json_t *payload, int unique, int64_t lease_ms, uint64_t *id,
    int *leased);

/*
 * Leases the job due first to this process for lease_ms.  *out is new
 * (app_ks_job_free).  Returns 0 claimed, 1 nothing due, -1 error (logged).
 */
int app_ks_job_claim(struct app_keystore *ks, const char *reqid,
    int64_t lease_ms, struct app_ks_job **out);

/*
 * Job id of token succeeded: fx's writes (may be NULL) and the job's end
 * (or, with next_payload, its next step) in one transaction.  Returns 0,
 * 1 when the job was gone (nothing applied), -1 error (logged).
 */
int app_ks_job_done(struct app_keystore *ks, const char *reqid, uint64_t id,
    const char *token, const struct app_ks_fx *fx, const json_t *next_payload);

/*
 * The attempt failed: due again in delay_ms, or dead; last (borrowed) is
 * what was sent and answered, no secret in it.  Returns 0, 1 when another
 * process holds the job now, -1 error (logged).
 */
int app_ks_job_retry(struct app_keystore *ks, const char *reqid,
    uint64_t id, int64_t delay_ms, const char *last, int dead);

/* Extends this process's lease on job id by lease_ms from now.  Returns
 * 0, 1 not leased to this process any more, -1 error (logged). */
int app_ks_job_renew(struct app_keystore *ks, const char *reqid,
    uint64_t id, int64_t lease_ms);

/*
 * Makes due at once the jobs leased to processes that no longer exist (a
 * delivery process does it when it starts).  Returns 0 or -1 (logged).
 */
int app_ks_jobs_release(struct app_keystore *ks, const char *reqid);

/*
 * The queue's gauges (store_jobs_stats(): counts kept by the store, no
 * scan): pending and dead jobs and the oldest pending job's age in
 * seconds (0 when none).  Returns 0 or -1 (logged).
 */
int app_ks_jobs_stats(struct app_keystore *ks, uint64_t *pending,
    uint64_t *dead, uint64_t *oldest_s);

/* A job to add with app_ks_delivery_accept() or app_ks_job_add_detached(). */
struct app_ks_jobspec {
	const char *kind;
	const char *contact;     /* the key its order is kept by */
	const json_t *payload;   /* borrowed, serialised */
};

/*
 * A signed delivery of install id accepted in one transaction
 * (store_delivery_accept): delivery id claimed for ttl_s seconds and the
 * n jobs of token added, ids[i] getting their ids.  Returns 0 accepted,
 * 1 a duplicate (nothing written), -1 error (logged).
 */
int app_ks_delivery_accept(struct app_keystore *ks, const char *reqid,
    const char *install_id, const char *id, unsigned ttl_s,
    const char *token, const struct app_ks_jobspec *jobs, size_t n,
    uint64_t *ids);

/*
 * Adds a job that belongs to no installation (store_job_spec.detached):
 * owner (1..STORE_JOB_DETACHED_MAX bytes, no secret) names it; it comes
 * back from app_ks_job_claim() with token "@<owner>".  An uninstall does
 * not cancel it: what an uninstall leaves to do outside runs so.  Returns
 * 0, or -1 (logged).
 */
int app_ks_job_add_detached(struct app_keystore *ks, const char *reqid,
    const char *owner, const struct app_ks_jobspec *job, uint64_t *id);

/* Drops job id.  Returns 0, 1 not found, -1 error (logged). */
int app_ks_job_cancel(struct app_keystore *ks, const char *reqid,
    uint64_t id);

#endif
