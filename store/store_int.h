/*
 * store/store_int.h - what the store's own files share.  No other folder
 * includes this (nor <db.h>): the rest of the program sees store/store.h.
 */
#ifndef BM_STORE_INT_H
#define BM_STORE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <db.h>

#include "store/store.h"

/* A generation's prefix header: NUL and 16 hex digits (purge.c). */
#define STORE__GEN_HEAD 17
/* Longest key prefix: a generation header and an integration id. */
#define STORE__PFX_MAX (STORE__GEN_HEAD + STORE_ID_MAX)
/* Key buffers: a prefix, a NUL and an id. */
#define STORE__KEY_MAX (STORE__PFX_MAX + 1 + STORE_ID_MAX)

/* A token's keyed hash as it appears in keys: 64 lowercase hex digits. */
#define STORE__HASH_LEN 64
/* Key files: 32 bytes each. */
#define STORE__KEY_BYTES 32
#define STORE__HASH_KEY_FILE "token-hash.key"
#define STORE__SEAL_KEY_FILE "token-seal.key"
/* A sealed token that does not open (a BDB-style error code of ours). */
#define STORE__ESEAL (-30500)
/* The format of the store, kept under this key of tokens.db. */
#define STORE__FORMAT_KEY "!format"
#define STORE__FORMAT 3

/*
 * An installation record as stored: version, created, install id, the
 * webhook secret sealed bound to the install id (crypto.c), settings.
 * Version 1 (format 2 stores) held the secret in clear; migrate.c reseals.
 */
#define STORE__INST_VERSION 2
#define STORE__INST_V1 1
/* crypto.c's seal: a version byte, a 12-byte nonce, the text, a 16-byte tag */
#define STORE__SEAL_OVERHEAD (1 + 12 + 16)
#define STORE__INST_SEALED (STORE_SECRET_LEN + STORE__SEAL_OVERHEAD)
#define STORE__INST_IDOFF (1 + 8)
#define STORE__INST_SECOFF (STORE__INST_IDOFF + STORE_INSTALL_ID_LEN)
#define STORE__INST_HEAD (STORE__INST_SECOFF + STORE__INST_SEALED)
#define STORE__INST_HEAD_V1 (STORE__INST_SECOFF + STORE_SECRET_LEN)

/*
 * A backend: what every public function of store.h that takes a handle
 * does, behind s->ops (ops.c forwards; the arguments and results are those
 * of store.h).  Berkeley DB's is store__bdb_ops (env.c and the files it
 * names), Redis's store__redis_ops (redis*.c).
 */
struct store_ops {
	const char *name; /* "bdb", "redis": for messages */
	int (*close)(struct store *s);
	int (*ids_save)(struct store *s, const char *integ, const char *bid,
	    const char *eid);
	int (*ext_id_get)(struct store *s, const char *integ, const char *bid,
	    char **out);
	int (*botmatic_id_get)(struct store *s, const char *integ,
	    const char *eid, char **out);
	int (*ids_delete)(struct store *s, const char *integ, const char *bid,
	    const char *eid);
	int (*ids_delete_all)(struct store *s, const char *integ,
	    size_t *deleted);
	int (*ids_foreach)(struct store *s, const char *integ,
	    store_pair_fn fn, void *arg);
	int (*install_record)(struct store *s, const char *token,
	    const void *settings, size_t settings_len,
	    struct store_install **out);
	int (*install_get)(struct store *s, const char *token,
	    struct store_install **out);
	int (*install_get_by_id)(struct store *s, const char *install_id,
	    struct store_install **out);
	int (*install_settings_update)(struct store *s, const char *token,
	    store_settings_fn fn, void *arg);
	int (*install_put)(struct store *s, const struct store_install *in);
	int (*install_delete)(struct store *s, const char *token,
	    size_t *pairs);
	int (*install_foreach)(struct store *s, store_install_fn fn,
	    void *arg);
	int (*state_get)(struct store *s, const char *token, const char *name,
	    char **val, size_t *len);
	int (*state_set)(struct store *s, const char *token, const char *name,
	    const void *val, size_t len);
	int (*state_delete)(struct store *s, const char *token,
	    const char *name);
	int (*delivery_claim)(struct store *s, const char *install_id,
	    const char *id, int64_t now, unsigned ttl_s, int *dup);
	int (*delivery_release)(struct store *s, const char *install_id,
	    const char *id);
	int (*job_add)(struct store *s, const struct store_job_spec *sp,
	    uint64_t *id, unsigned *flags);
	int (*delivery_accept)(struct store *s, const char *install_id,
	    const char *id, int64_t now, unsigned ttl_s,
	    const struct store_job_spec *jobs, size_t n, uint64_t *ids,
	    int *dup);
	int (*job_claim)(struct store *s, uint32_t pid, int64_t now,
	    int64_t lease_until, struct store_job **out);
	int (*job_done)(struct store *s, uint64_t id,
	    const struct store_op *ops, size_t n, const char *next_payload,
	    int64_t now);
	int (*job_retry)(struct store *s, uint64_t id, uint32_t pid,
	    int64_t next_at, const char *last, int dead);
	int (*job_renew)(struct store *s, uint64_t id, uint32_t pid,
	    int64_t lease_until);
	int (*job_get)(struct store *s, uint64_t id, struct store_job **out);
	int (*job_foreach)(struct store *s, store_job_fn fn, void *arg);
	int (*job_revive)(struct store *s, uint64_t id, int64_t now,
	    uint64_t *newid);
	int (*jobs_revive_dead)(struct store *s, int64_t now, size_t *count);
	int (*jobs_release)(struct store *s, int64_t now,
	    store_job_alive_fn alive, size_t *count);
	int (*jobs_stats)(struct store *s, struct store_jobs_stats *st);
	int (*job_cancel)(struct store *s, uint64_t id);
	int (*jobs_cancel)(struct store *s, const char *integ, size_t *count);
	int (*purge_step)(struct store *s, size_t max_keys, size_t *deleted,
	    int *more);
	int (*service_put)(struct store *s, const struct store_service *in);
	int (*service_get)(struct store *s, const char *install_id,
	    const char *service, const char *group, const char *user,
	    struct store_service **out);
	int (*service_lease)(struct store *s, const char *install_id,
	    const char *service, const char *group, const char *user,
	    uint64_t gen, int64_t now, unsigned lease_s, int *got);
	int (*service_refreshed)(struct store *s,
	    const struct store_service *in, uint64_t gen);
	int (*service_lease_end)(struct store *s, const char *install_id,
	    const char *service, const char *group, const char *user,
	    uint64_t gen, int needs_link);
	int (*service_delete)(struct store *s, const char *install_id,
	    const char *service, const char *group, const char *user);
	int (*service_foreach)(struct store *s, const char *install_id,
	    store_service_fn fn, void *arg);
	int (*oauth_link_create)(struct store *s, const char *install_id,
	    const char *service, const char *group, const char *user,
	    int64_t now, unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1]);
	int (*oauth_link_take)(struct store *s, const char *link,
	    const char *service, int64_t now, unsigned ttl_s,
	    char state[STORE_OAUTH_ID_LEN + 1],
	    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
	int (*oauth_state_take)(struct store *s, const char *state,
	    const char *service, int64_t now, struct store_service **bound,
	    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
	int (*rekey)(struct store *s, const char *new_key_file, size_t *n);
	int (*export)(struct store *s, const struct store_export_cbs *cbs,
	    void *arg);
	int (*apply)(struct store *s, const struct store_op *ops, size_t n,
	    size_t *bad);
	int (*verify)(struct store *s, store_problem_fn fn, void *arg,
	    size_t *problems);
};

extern const struct store_ops store__bdb_ops;
extern const struct store_ops store__redis_ops;

struct store__redis; /* redis.c: the connection and its settings */

struct store {
	const struct store_ops *ops; /* the backend */
	struct store__redis *rd;     /* Redis's own state, NULL for BDB */
	DB_ENV *env;
	/*
	 * Every "token" of a key or value below is the token's keyed hash
	 * (crypto.c): the public functions hash the tokens they are given and
	 * pass the hash on; the token itself is kept only in tokens, sealed.
	 */
	DB *b2e;     /* "integ\0bid" -> eid */
	DB *e2b;     /* "integ\0eid" -> bid */
	DB *inst;    /* token -> installation record */
	DB *instid;  /* install id -> token */
	DB *state;   /* "token\0name" -> value */
	DB *jobs;         /* the delivery queue (jobs.c): seq -> job */
	DB *jobs_due;     /* next_at|seq of runnable jobs */
	DB *jobs_contact; /* "integ\0contact\0"seq: order per contact */
	DB *jobs_integ;   /* "integ\0"seq: every job of an integration */
	DB *gens;    /* token -> current generations (pairs, state) */
	DB *tombs;   /* kind + prefix of forgotten data -> "" */
	DB *seen;    /* "install id\0delivery id" -> time (8 bytes) */
	DB *seent;   /* time (8) "install id\0delivery id" -> "": for purges */
	DB *tokens;  /* keyed hash of a token -> the token, sealed (crypto.c) */
	DB *svc;     /* "install id\0service\0group\0user" -> service */
	DB *oauth;   /* keyed hash of a link id or state -> pending link */
	char *home;  /* the environment's path, for messages */
	unsigned retries;   /* deadlock retries per transaction */
	unsigned commits;   /* since the last checkpoint attempt */
	int dead;           /* DB_RUNRECOVERY seen: never touch env again */
	char bdbmsg[256];   /* BDB's last own message, to complete ours */
	unsigned char hkey[STORE__KEY_BYTES]; /* HMAC key of token hashes */
	unsigned char ekey[STORE__KEY_BYTES]; /* AES-256-GCM key of tokens */
	/* OpenSSL objects fetched once: a fetch per call costs more than the
	 * HMAC of a token itself. */
	struct evp_mac_ctx_st *hmac; /* HMAC-SHA256 keyed with hkey */
	struct evp_cipher_st *aes;   /* AES-256-GCM */
	char err[1024];     /* store_strerror() */
};

/*
 * A transaction body: does its reads and writes in txn and returns 0 or the
 * BDB error that stopped it (DB_LOCK_DEADLOCK makes the caller retry it from
 * the start, so it must not keep anything from a previous try).  It sets
 * *rc to the call's result: STORE_OK or STORE_NOTFOUND to commit, a
 * negative store_rc (message already set) to abort.
 */
typedef int (*store__txn_fn)(struct store *s, DB_TXN *txn, void *arg,
    int *rc);

/* How store__run() runs a body. */
enum store__run {
	STORE__RUN_TXN = 0,   /* in a transaction, committed, retried */
	STORE__RUN_READ,      /* without a transaction (single reads) */
	STORE__RUN_SCAN,      /* in a read transaction favoured by the deadlock
	                         detector, not retried: callbacks saw data */
	STORE__RUN__MAX
};

int store__run(struct store *s, enum store__run how, const char *what,
    store__txn_fn fn, void *arg);
/* Checkpoints if enough log was written since the last checkpoint. */
void store__checkpoint(struct store *s);

/* Records a BDB failure ("home: what: reason") and returns its store_rc. */
int store__fail(struct store *s, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a refused argument and returns STORE_EINVAL. */
int store__einval(struct store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Checks an id (1..STORE_ID_MAX bytes); what names it in the message. */
int store__check_id(struct store *s, const char *what, const char *id,
    size_t *len);
/* Checks a value's length. */
int store__check_value(struct store *s, const char *what, size_t len);

/* Fills key (buf, STORE__KEY_MAX bytes) with "a\0b". */
void store__key(DBT *key, char *buf, const char *a, size_t alen,
    const char *b, size_t blen);
/*
 * Reads an id-sized value into out (STORE_ID_MAX + 1 bytes, NUL added).
 * Returns 0, DB_NOTFOUND or a BDB error.
 */
int store__get_id(DB *db, DB_TXN *txn, DBT *key, char *out, u_int32_t flags);
/* Whether the key k (klen bytes) starts with "prefix\0". */
int store__has_prefix(const DBT *k, const char *prefix, size_t plen);

/*
 * Deletes every key "prefix\0..." of db with a cursor positioned by
 * DB_SET_RANGE: a walk of that range only.  *n (may be NULL) is increased by
 * the number deleted.  Returns 0 or a BDB error.
 */
int store__delete_range(DB *db, DB_TXN *txn, const char *prefix, size_t plen,
    size_t *n);

/* The bodies store_apply() reuses; arg points at the op's arguments. */
int store__ids_save(struct store *s, DB_TXN *txn, const char *integ,
    size_t ilen, const char *bid, size_t blen, const char *eid, size_t elen,
    int *rc);
int store__ids_delete(struct store *s, DB_TXN *txn, const char *integ,
    size_t ilen, const char *bid, size_t blen, const char *eid, size_t elen,
    int *rc);
int store__install_put(struct store *s, DB_TXN *txn,
    const struct store_install *in, int *rc);
int store__check_install(struct store *s, const struct store_install *in);
int store__state_set(struct store *s, DB_TXN *txn, const char *token,
    size_t tlen, const char *name, size_t nlen, const void *val, size_t len);
int store__state_delete(struct store *s, DB_TXN *txn, const char *token,
    size_t tlen, const char *name, size_t nlen, int *rc);
/*
 * Removes every job of the integration whose token's keyed hash is hash
 * (hlen bytes; pending or dead) in txn: an uninstall's part.  *n (may be
 * NULL) is increased by the number removed.  0 or a BDB error.
 */
int store__jobs_cancel(struct store *s, DB_TXN *txn, const char *hash,
    size_t hlen, size_t *n);
/* seen.c: the checks of a delivery claim, and the claim inside txn
 * (*dup set when already claimed within ttl; nothing written then). */
int store__seen_check(struct store *s, const char *install_id,
    const char *id);
int store__seen_claim(struct store *s, DB_TXN *txn, const char *install_id,
    const char *id, int64_t now, unsigned ttl, int *dup);
/*
 * Format 1 to 2 (migrate.c): job records name their integration by its
 * token's keyed hash, and the contact and integration indexes are rebuilt
 * on it.  *moved is increased by the records rewritten.  0 or an error.
 */
int store__jobs_migrate(struct store *s, DB_TXN *txn, size_t *moved);
/*
 * Generations (purge.c).  store__prefix() fills pfx (STORE__PFX_MAX bytes)
 * with the key prefix of tok's current pairs (state = 0) or state
 * generation: keys are then "pfx\0id".  Returns 0 or a BDB error.
 */
int store__prefix(struct store *s, DB_TXN *txn, const char *tok, size_t tlen,
    int state, char *pfx, size_t *plen);
/* tok's current generation of pairs or state (flags: of the read); 0 or a
 * BDB error. */
int store__current_gen(struct store *s, DB_TXN *txn, const char *tok,
    size_t tlen, int state, uint64_t *gen, u_int32_t flags);
/* The same for a token already hashed (as store__split_prefix() gives). */
int store__current_gen_keyed(struct store *s, DB_TXN *txn, const char *tok,
    size_t tlen, int state, uint64_t *gen, u_int32_t flags);
/*
 * Splits a stored key (size bytes) into its token (*tok, *tlen bytes, not
 * NUL-terminated), generation and prefix length (the id starts at
 * key + *plen + 1).  Returns 0, or -1 if the key is malformed.
 */
int store__split_prefix(const char *key, size_t size, const char **tok,
    size_t *tlen, uint64_t *gen, size_t *plen);
/*
 * Forgets tok's pairs and/or state in txn: tombstones the current prefix
 * and moves to the next generation.  *npairs (may be NULL) gets the number
 * of pairs, *any whether there was anything.  Returns 0 or a BDB error.
 */
int store__forget(struct store *s, DB_TXN *txn, const char *tok, size_t tlen,
    int pairs, int state, size_t *npairs, int *any);

/* --- tokens at rest (crypto.c) --- */

/*
 * Reads (creating at the first open) the hash key and the sealing key
 * (key_file, or the store's own in home), except those keys_set says the
 * caller put in s->hkey, s->ekey already (Redis keeps its own).  Returns 0,
 * or -1 with err filled.
 */
#define STORE__KEYS_HASH 1
#define STORE__KEYS_SEAL 2
int store__crypto_init(struct store *s, unsigned keys_set,
    const char *key_file, char *err, size_t errlen);
/* n random bytes into buf: 0, or -1 with errno. */
int store__crypto_random(unsigned char *buf, size_t n);
/* Wipes n bytes of p (a key) so the compiler cannot skip it. */
void store__crypto_wipe(void *p, size_t n);
/* Frees the OpenSSL objects and wipes the keys from memory. */
void store__crypto_clear(struct store *s);
/* The keyed hash of token (tlen bytes) as it is used in keys. 0 or ENOMEM. */
int store__token_key(const struct store *s, const char *token, size_t tlen,
    char out[STORE__HASH_LEN + 1]);
/* Keeps token sealed under its hash unless it is there already. */
int store__token_remember(struct store *s, DB_TXN *txn, const char *hash,
    const char *token, size_t tlen);
/* The token of hash: *token new; 0, DB_NOTFOUND, STORE__ESEAL or error. */
int store__token_lookup(struct store *s, DB_TXN *txn, const char *hash,
    char **token);
/* Forgets the sealed token of hash (absent is fine). */
int store__token_forget(struct store *s, DB_TXN *txn, const char *hash);
/*
 * Seals plen bytes with AES-256-GCM under the store's key, bound to aad
 * (a record sealed under one key does not open under another): *out new,
 * *outlen bytes.  Unseal: *plain new, NUL-terminated, *plen (may be NULL)
 * bytes.  Both return 0, ENOMEM or EINVAL (does not open).
 */
int store__seal(const struct store *s, const void *aad, size_t aadlen,
    const void *plain, size_t plen, unsigned char **out, size_t *outlen);
int store__unseal(const struct store *s, const void *aad, size_t aadlen,
    const unsigned char *in, size_t len, char **plain, size_t *plen);
/* Reads a key file as BM_SECRET_KEY_FILE is read (32 bytes or 64 hex
 * digits, 0600/0400).  0, or -1 with err filled. */
int store__key_read(const char *path, unsigned char key[STORE__KEY_BYTES],
    char *err, size_t errlen);
/*
 * Services' records (services.c), shared with Redis: the key of a service
 * ("install id\0service\0group\0user", checked; buf SVC_KEY_MAX + 1
 * bytes) and its record (tokens sealed, bound to the key); pending link
 * and state entries likewise.  Encoders give *out or d->data new; decoders return
 * 0, ENOMEM, EINVAL or STORE__ESEAL, pend_decode 1 when the entry is of
 * kind and service and not expired (kbuf gets the service key).
 */
#define STORE__SVC_KEY_MAX (STORE_INSTALL_ID_LEN + STORE_SERVICE_NAME_MAX + \
    2 * STORE_SERVICE_SCOPE_MAX + 3)
int store__svc_key(struct store *s, char *buf, size_t *len,
    const char *install_id, const char *service, const char *group,
    const char *user);
int store__svc_decode(struct store *s, const DBT *k, const DBT *d,
    struct store_service **out);
int store__svc_encode(struct store *s, const DBT *k,
    const struct store_service *sv, DBT *d);
int store__svc_random_hex(char *out, size_t hexlen);
int store__pend_hash(const struct store *s, char kind, const char *id,
    char out[STORE__HASH_LEN + 1]);
int store__pend_id_ok(const char *id);
int store__pend_encode(struct store *s, const char *hash, char kind,
    int64_t expires, const DBT *skey, const char *verifier,
    unsigned char **out, size_t *len);
int store__pend_decode(struct store *s, const char *hash, char kind,
    const char *service, int64_t now, const void *data, size_t size,
    char *kbuf, size_t *klen, char *verifier);
/* The services store (services.c): forgets every service of install id
 * (32 hex digits) in txn; *n (may be NULL) is increased. */
int store__services_forget(struct store *s, DB_TXN *txn,
    const char *install_id, size_t *n);

/*
 * Rewrites a store of format 1 (keys holding raw tokens) to format 2 in
 * one transaction, once: the first opener does it, the others find it
 * done.  Returns a store_rc, the error recorded.
 */
int store__migrate(struct store *s);

/* Decodes an installation record of token (borrowed, copied), unsealing its
 * secret (a version 1 record's is in clear); returns 0, or -1 if it is
 * malformed or its secret does not open. */
int store__install_decode(const struct store *s, const char *token,
    const DBT *data, struct store_install *in);

/*
 * Whether state name (nlen bytes) is one the store seals (store.h's
 * STORE_STATE_SECRET_*).
 */
int store__state_secret(const char *name, size_t nlen);

/*
 * Seals the value of a secret state name bound to aad (the state.db key on
 * BDB: prefix, NUL, name): *out new, *outlen bytes.  Opens one into *plain
 * (new, NUL-terminated), *plen bytes; a value that is not sealed (written
 * before the store sealed them) is given back as it is.
 */
int store__state_seal(const struct store *s, const void *aad, size_t aadlen,
    const void *val, size_t len, unsigned char **out, size_t *outlen);
int store__state_open(const struct store *s, const void *aad, size_t aadlen,
    const void *val, size_t len, char **plain, size_t *plen);

/*
 * Seals, in txn, every value of a secret state name still in clear; *moved
 * counts them.  Sealed ones are left alone, so a second run does nothing.
 */
int store__state_seal_all(struct store *s, DB_TXN *txn, size_t *moved);

/*
 * Rewrites every version 1 installation record (secret in clear) as the
 * current version (secret sealed), in txn; *moved counts them.  Records
 * already current are left alone, so a second run does nothing.
 */
int store__install_seal_all(struct store *s, DB_TXN *txn, size_t *moved);

/*
 * Creates and configures an environment handle exactly as every process
 * must (thread count, isalive, deadlock detection, log removal...), for
 * store_open() and the supervision helpers.  app is passed to BDB's
 * callbacks (may be NULL).  Returns 0 or a BDB error.
 */
int store__env_create(DB_ENV **out, struct store *app, unsigned cache_mb,
    unsigned processes);
/* The flags every process opens with. */
#define STORE__OPEN_FLAGS (DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | \
    DB_INIT_MPOOL | DB_INIT_TXN | DB_RECOVER | DB_REGISTER | DB_FAILCHK)

/* 64-bit big-endian integers in keys and records (they sort as numbers). */
static inline void
store__be64_put(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static inline uint64_t
store__be64_get(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * The Berkeley DB backend's functions (store__bdb_ops), as store.h
 * describes them without the prefix.
 */
int store__bdb_open(struct store **out, const struct store_opts *o,
    char *err, size_t errlen);
int store__bdb_close(struct store *s);
int store__redis_open(struct store **out, const struct store_opts *o,
    char *err, size_t errlen);
int store__bdb_ids_save(struct store *s, const char *integ, const char *bid,
    const char *eid);
int store__bdb_ext_id_get(struct store *s, const char *integ, const char *bid,
    char **out);
int store__bdb_botmatic_id_get(struct store *s, const char *integ,
    const char *eid, char **out);
int store__bdb_ids_delete(struct store *s, const char *integ, const char *bid,
    const char *eid);
int store__bdb_ids_delete_all(struct store *s, const char *integ,
    size_t *deleted);
int store__bdb_ids_foreach(struct store *s, const char *integ,
    store_pair_fn fn, void *arg);
int store__bdb_install_record(struct store *s, const char *token,
    const void *settings, size_t settings_len, struct store_install **out);
int store__bdb_install_get(struct store *s, const char *token,
    struct store_install **out);
int store__bdb_install_get_by_id(struct store *s, const char *install_id,
    struct store_install **out);
int store__bdb_install_settings_update(struct store *s, const char *token,
    store_settings_fn fn, void *arg);
int store__bdb_install_put(struct store *s, const struct store_install *in);
int store__bdb_install_delete(struct store *s, const char *token,
    size_t *pairs);
int store__bdb_install_foreach(struct store *s, store_install_fn fn,
    void *arg);
int store__bdb_state_get(struct store *s, const char *token, const char *name,
    char **val, size_t *len);
int store__bdb_state_set(struct store *s, const char *token, const char *name,
    const void *val, size_t len);
int store__bdb_state_delete(struct store *s, const char *token,
    const char *name);
int store__bdb_delivery_claim(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s, int *dup);
int store__bdb_delivery_release(struct store *s, const char *install_id,
    const char *id);
int store__bdb_job_add(struct store *s, const struct store_job_spec *sp,
    uint64_t *id, unsigned *flags);
int store__bdb_delivery_accept(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s,
    const struct store_job_spec *jobs, size_t n, uint64_t *ids, int *dup);
int store__bdb_job_claim(struct store *s, uint32_t pid, int64_t now,
    int64_t lease_until, struct store_job **out);
int store__bdb_job_done(struct store *s, uint64_t id,
    const struct store_op *ops, size_t n, const char *next_payload,
    int64_t now);
int store__bdb_job_retry(struct store *s, uint64_t id, uint32_t pid,
    int64_t next_at, const char *last, int dead);
int store__bdb_job_renew(struct store *s, uint64_t id, uint32_t pid,
    int64_t lease_until);
int store__bdb_job_get(struct store *s, uint64_t id, struct store_job **out);
int store__bdb_job_foreach(struct store *s, store_job_fn fn, void *arg);
int store__bdb_job_revive(struct store *s, uint64_t id, int64_t now,
    uint64_t *newid);
int store__bdb_jobs_revive_dead(struct store *s, int64_t now, size_t *count);
int store__bdb_jobs_release(struct store *s, int64_t now,
    store_job_alive_fn alive, size_t *count);
int store__bdb_jobs_stats(struct store *s, struct store_jobs_stats *st);
int store__bdb_job_cancel(struct store *s, uint64_t id);
int store__bdb_jobs_cancel(struct store *s, const char *integ, size_t *count);
int store__bdb_purge_step(struct store *s, size_t max_keys, size_t *deleted,
    int *more);
int store__bdb_service_put(struct store *s, const struct store_service *in);
int store__bdb_service_get(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user,
    struct store_service **out);
int store__bdb_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got);
int store__bdb_service_refreshed(struct store *s,
    const struct store_service *in, uint64_t gen);
int store__bdb_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link);
int store__bdb_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user);
int store__bdb_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg);
int store__bdb_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1]);
int store__bdb_oauth_link_take(struct store *s, const char *link,
    const char *service, int64_t now, unsigned ttl_s,
    char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
int store__bdb_oauth_state_take(struct store *s, const char *state,
    const char *service, int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
int store__bdb_rekey(struct store *s, const char *new_key_file, size_t *n);
int store__bdb_export(struct store *s, const struct store_export_cbs *cbs,
    void *arg);
int store__bdb_apply(struct store *s, const struct store_op *ops, size_t n,
    size_t *bad);
int store__bdb_verify(struct store *s, store_problem_fn fn, void *arg,
    size_t *problems);

#endif /* BM_STORE_INT_H */
