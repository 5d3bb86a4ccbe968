/*
 * store/store.h - the keystore: id pairs, installations and integration
 * state in a transactional Berkeley DB environment shared by many processes
 * (the default), or in Redis shared by many hosts (BM_STORE=redis,
 * opts->backend).  Every function below works the same on both, unless it
 * says otherwise; what is said of transactions holds for Redis as one Lua
 * script or one MULTI/EXEC (store/redis*.c).  On Redis a call that cannot
 * reach it (after its timeout) returns STORE_ERROR with nothing written;
 * the next call reconnects.
 *
 * Processes.  Every process that uses the store opens exactly one handle
 * (struct store) of its own, AFTER fork, and never hands it to a child: BDB's
 * DB_REGISTER allows one environment handle per process and a handle copied
 * across fork corrupts the registry.  Handles are for single-threaded
 * processes.  When any call returns STORE_RUNRECOVERY the environment has
 * panicked: the process should call store_close() (which then leaves the
 * environment alone) and exit; the next process to open recovers it.  The
 * supervising process (the pre-fork master) holds no handle at all; it uses
 * store_check_after_death() and store_recover() below.  Who may open at
 * all is decided by store.lock (store_lock_take() below): the server's
 * master and its children, or one tool at a time, never both.
 *
 * Strings.  Integration ids (an installation's token), botmatic ids, external
 * ids and state names are NUL-terminated byte strings: any bytes but NUL, of
 * length 1 to STORE_ID_MAX.  Empty or longer ones are refused with
 * STORE_EINVAL.  Numbers are stored as their decimal text: the caller
 * converts.  Values (installation settings, state values) are byte strings of
 * 0 to STORE_VALUE_MAX bytes; the server stores JSON text in them.
 *
 * Tokens at rest.  An integration id is a bearer token: no key holds it.
 * Every record is keyed by its keyed hash (HMAC-SHA256 under the store's
 * token-hash.key, created 0600 in home at the first open), and the token
 * is kept once, sealed with AES-256-GCM under opts->key_file or the
 * store's token-seal.key (store/crypto.c).  On Redis the hash key is
 * kept in Redis (bm:hashkey), so every host hashes alike, and the sealing
 * key must be opts->key_file (BM_SECRET_KEY_FILE, the same on every
 * host): it is never kept in Redis.  Callers pass and get tokens as
 * before.  A store written with raw tokens in its keys is rewritten at its
 * first open, in one transaction.
 *
 * Errors.  Functions return an enum store_rc.  After a failure,
 * store_strerror() tells what went wrong, with the environment's path and
 * BDB's reason; messages never contain an integration id (it is a secret).
 *
 * Ownership.  "new" results are malloc()ed and freed by the caller with the
 * function named; "borrowed" ones are valid until the named event.
 */
#ifndef BM_STORE_H
#define BM_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Longest id, integration id or state name, in bytes (without the NUL). */
#define STORE_ID_MAX 512
/* Largest settings or state value, in bytes. */
#define STORE_VALUE_MAX (16u * 1024 * 1024)
/* An install id: 128 random bits as 32 lowercase hex digits. */
#define STORE_INSTALL_ID_LEN 32
/* An install secret: 256 random bits as 64 lowercase hex digits. */
#define STORE_SECRET_LEN 64

enum store_rc {
	STORE_OK = 0,           /* done, or found */
	STORE_NOTFOUND = 1,     /* no such key: not an error */
	STORE_ERROR = -1,       /* failed; see store_strerror() */
	STORE_EINVAL = -2,      /* an argument was refused (empty or long id...) */
	STORE_RUNRECOVERY = -3, /* the environment panicked: close and exit */
	STORE_RC__MAX
};

/*
 * How far a commit has gone when it returns.  Both survive the death of any
 * process; only SYNC survives a power cut.  (BDB's DB_TXN_NOSYNC is not
 * offered: it loses commits when a mere process dies.)
 */
enum store_durability {
	STORE_DURABILITY_WRITE = 0, /* written to the OS (DB_TXN_WRITE_NOSYNC) */
	STORE_DURABILITY_SYNC,      /* fsync()ed to disk */
	STORE_DURABILITY__MAX
};

/*
 * Where the store lives.  Berkeley DB: an environment in a directory of this
 * host, the default.  Redis: a server (or a Sentinel-watched set) shared by
 * any number of hosts; everything below works the same on it, except the
 * supervision, the lock and the control socket, which belong to Berkeley
 * DB's process set (see there).
 */
enum store_backend {
	STORE_BACKEND_BDB = 0,
	STORE_BACKEND_REDIS,
	STORE_BACKEND__MAX
};

struct store_opts {
	const char *home;                 /* environment directory; created 0700 */
	enum store_durability durability; /* of this handle's commits */
	unsigned cache_mb;    /* cache size when the environment is created; 0: 32 */
	unsigned retries;     /* times a deadlocked transaction is retried; 0: 20 */
	unsigned processes;   /* most processes with it open at once (dead ones
	                       * not yet cleaned up included): sizes the
	                       * environment when this open creates it; 0:
	                       * STORE_PROCESSES_DEFAULT; at most
	                       * STORE_PROCESSES_MAX */
	const char *key_file; /* the key sealing tokens (BM_SECRET_KEY_FILE): 32
	                         bytes or 64 hex digits, mode 0600/0400; NULL:
	                         token-seal.key, created in home */
	/* Which backend (BM_STORE) and, for Redis, where it is.  The fields
	 * below are ignored by Berkeley DB; store_opts_env() fills them. */
	enum store_backend backend;
	const char *redis_url;       /* BM_REDIS_URL: redis://host:port[/db]
	                                or unix:/path */
	const char *redis_sentinels; /* BM_REDIS_SENTINELS: host:port,...
	                                (instead of redis_url) */
	const char *redis_master;    /* BM_REDIS_MASTER: the master's name */
	int redis_js_keys;           /* BM_REDIS_KEYS=js-redis-key-store */
	unsigned redis_timeout_ms;   /* BM_REDIS_TIMEOUT_MS: connect and each
	                                command; 0: 2000 */
};

/*
 * Fills o's backend and Redis fields from the environment (BM_STORE,
 * BM_REDIS_URL, BM_REDIS_SENTINELS, BM_REDIS_MASTER, BM_REDIS_KEYS,
 * BM_REDIS_TIMEOUT_MS), leaving the other fields alone.  The strings are
 * borrowed from the environment.  Returns STORE_OK, or STORE_EINVAL with
 * err (errlen bytes) naming the variable.
 */
int store_opts_env(struct store_opts *o, char *err, size_t errlen);

/*
 * The environment is sized for this many processes unless told otherwise:
 * a server with the default pool (64 responders, as many old ones
 * finishing after a reload), its other processes and tools.  Recovery,
 * which rebuilds the regions for whatever server uses them, sizes them
 * for the most.
 */
#define STORE_PROCESSES_DEFAULT 160
#define STORE_PROCESSES_MAX 600

struct store; /* one per process, opened after fork */
struct store_op; /* a write in a batch, below */

/*
 * Opens (creating if needed) the environment opts->home and its databases,
 * running whatever recovery BDB's registry says a dead process left behind.
 * *out is new, closed with store_close().  On failure *out is NULL and err
 * (errlen bytes, may be 0) holds one line with the path and the reason.
 * Returns STORE_OK, STORE_EINVAL, STORE_ERROR or STORE_RUNRECOVERY.
 */
int store_open(struct store **out, const struct store_opts *opts,
    char *err, size_t errlen);

/*
 * Checkpoints and closes.  After STORE_RUNRECOVERY it only frees memory, so
 * the next opener sees the failure and recovers.  NULL is accepted.
 * Returns 0 when the environment was closed cleanly, -1 when it was left
 * for a recovery.
 */
int store_close(struct store *s);

/* The last error's text: borrowed, valid until the next call on s. */
const char *store_strerror(const struct store *s);

/* --- id pairs ---------------------------------------------------------- */

/*
 * Links bid <-> eid in integration integ, in one transaction.  A link either
 * id had before is removed, both directions, so the store stays a bijection.
 * Returns STORE_OK or an error.
 */
int store_ids_save(struct store *s, const char *integ, const char *bid,
    const char *eid);

/*
 * Looks up the external id of bid (store_ext_id_get) or the botmatic id of
 * eid (store_botmatic_id_get).  On STORE_OK *out is new (free()); otherwise
 * it is NULL.  Returns STORE_OK, STORE_NOTFOUND or an error.
 */
int store_ext_id_get(struct store *s, const char *integ, const char *bid,
    char **out);
int store_botmatic_id_get(struct store *s, const char *integ, const char *eid,
    char **out);

/*
 * Forgets bid's pair and eid's pair (both directions of each), as the Node
 * library deleted both keys.  Normally they are the same pair.  Returns
 * STORE_OK if anything was removed, STORE_NOTFOUND if neither was known.
 */
int store_ids_delete(struct store *s, const char *integ, const char *bid,
    const char *eid);

/*
 * Forgets every pair of integ in one short transaction whatever their
 * number: they disappear for every reader at once (a tombstone) and are
 * deleted afterwards, in bounded batches, by store_purge_step().  Pairs
 * saved afterwards are new and never purged.  *deleted (may be NULL) gets
 * the number of pairs forgotten (counting them reads that range).  Returns
 * STORE_OK (also when there was none) or an error.
 */
int store_ids_delete_all(struct store *s, const char *integ, size_t *deleted);

/*
 * Calls fn for each pair of integ, in botmatic id order (on Redis: in no
 * particular order, HSCAN or SCAN steps), in one read transaction.  The strings are borrowed until fn returns.  A non-zero return
 * from fn stops the walk and is returned.  Otherwise returns STORE_OK or an
 * error.
 */
typedef int (*store_pair_fn)(void *arg, const char *integ, const char *bid,
    const char *eid);
int store_ids_foreach(struct store *s, const char *integ, store_pair_fn fn,
    void *arg);

/* --- installations ----------------------------------------------------- */

struct store_install {
	char *token;         /* the integration id, NUL-terminated */
	char install_id[STORE_INSTALL_ID_LEN + 1]; /* stable, reveals no token */
	char secret[STORE_SECRET_LEN + 1];         /* for HMAC of webhooks */
	int64_t created;     /* unix time of the first record */
	char *settings;      /* opaque bytes, NUL-terminated for convenience */
	size_t settings_len; /* bytes in settings, without that NUL */
};

/* Frees an installation returned by the functions below.  NULL is accepted. */
void store_install_free(struct store_install *in);

/*
 * Records the installation of token.  The first record draws its install id
 * and secret at random and sets created; recording the same token again keeps
 * them (install is idempotent) and replaces the settings, unless settings is
 * NULL, which keeps them too.  *out (may be NULL) gets the record: new, freed
 * with store_install_free().  Returns STORE_OK or an error.
 */
int store_install_record(struct store *s, const char *token,
    const void *settings, size_t settings_len, struct store_install **out);

/*
 * Looks up an installation by token or by install id.  *out is new (freed
 * with store_install_free()), NULL unless STORE_OK.  Returns STORE_OK,
 * STORE_NOTFOUND or an error.
 */
int store_install_get(struct store *s, const char *token,
    struct store_install **out);
int store_install_get_by_id(struct store *s, const char *install_id,
    struct store_install **out);

/*
 * Rewrites the settings of token's installation in one transaction: fn
 * gets the stored settings (borrowed, old_len bytes, NUL-terminated) and
 * stores the new ones in *out (malloc()ed, *out_len bytes; taken and
 * freed by the store), or returns non-zero to leave them as they are (the
 * call then returns STORE_EINVAL).  fn may run more than once (a
 * deadlock retried), so it must not have side effects.  Returns STORE_OK,
 * STORE_NOTFOUND when token has no installation (nothing is created), or
 * an error.
 */
typedef int (*store_settings_fn)(void *arg, const char *old, size_t old_len,
    char **out, size_t *out_len);
int store_install_settings_update(struct store *s, const char *token,
    store_settings_fn fn, void *arg);

/*
 * Writes an installation exactly as given (token, install id, secret,
 * created, settings): how an import restores one.  The ids must be lowercase
 * hex of the right lengths and the install id must not belong to another
 * token.  Returns STORE_OK, STORE_EINVAL or an error.
 */
int store_install_put(struct store *s, const struct store_install *in);

/*
 * Forgets the installation of token, all its id pairs (integration = token)
 * and all its state, in one short transaction whatever their size: the
 * record goes, and pairs and state are tombstoned as store_ids_delete_all()
 * does, for store_purge_step() to delete.  A re-install of token starts
 * empty at once.  Its queued jobs (store_job_add()), pending or dead, are
 * removed in the same transaction.  *pairs (may be NULL) gets the number of pairs forgotten
 * (counting reads their range: responders pass NULL).  Returns STORE_OK if
 * anything was removed, STORE_NOTFOUND if there was nothing, or an error.
 */
int store_install_delete(struct store *s, const char *token, size_t *pairs);

/*
 * Calls fn for each installation, in the order of their keys (keyed hashes
 * of the tokens: no meaningful order), in one read transaction;
 * in is borrowed until fn returns.  A non-zero return from fn stops the walk
 * and is returned.  Otherwise returns STORE_OK or an error.
 */
typedef int (*store_install_fn)(void *arg, const struct store_install *in);
int store_install_foreach(struct store *s, store_install_fn fn, void *arg);

/* --- integration state: named values per installation ------------------ */

/*
 * Gets, sets or deletes the value called name of integration token.  Get:
 * *val is new (free()), NUL-terminated after *len bytes, NULL unless
 * STORE_OK.  Values of a token go when store_install_delete(token) runs,
 * whether or not the installation was recorded.  Return STORE_OK,
 * STORE_NOTFOUND (get, delete) or an error.
 *
 * The values of the names below are secrets: the store seals them
 * (AES-256-GCM under the sealing key, bound to their installation and
 * name) in every backend, and get and the export give them back in clear.
 * Other names are kept as given.
 */
#define STORE_STATE_SECRET_PREVIOUS "bm:webhook-secret-previous"
#define STORE_STATE_SECRET_EXTERNAL "bm:webhook-secret-external"
int store_state_get(struct store *s, const char *token, const char *name,
    char **val, size_t *len);
int store_state_set(struct store *s, const char *token, const char *name,
    const void *val, size_t len);
int store_state_delete(struct store *s, const char *token, const char *name);

/* --- deliveries seen: ids of signed deliveries from outside ------------ */

/* Longest delivery id, bytes. */
#define STORE_DELIVERY_ID_MAX 255
/* Expired ids purged by one claim, at most: the work of a call is bounded. */
#define STORE_DELIVERY_PURGE_BATCH 64

/*
 * Claims delivery id (1..STORE_DELIVERY_ID_MAX bytes) of installation
 * install_id at time now, in one transaction: when the id was claimed less
 * than ttl_s seconds ago *dup is set to 1 and nothing is written; otherwise
 * it is recorded with now and *dup is 0.  The same transaction forgets up to
 * STORE_DELIVERY_PURGE_BATCH ids of any installation claimed ttl_s or more
 * ago, oldest first, so the table stays bounded by the deliveries of ttl_s.
 * Returns STORE_OK, STORE_EINVAL or an error.
 */
int store_delivery_claim(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s, int *dup);

/*
 * Forgets a claim whose delivery could not be applied, so the sender's retry
 * is applied.  Returns STORE_OK, STORE_NOTFOUND or an error.
 */
int store_delivery_release(struct store *s, const char *install_id,
    const char *id);
/* --- the delivery queue (SPEC §9, jobs.c) ------------------------------ */

/* Longest job kind, bytes. */
#define STORE_JOB_KIND_MAX 64
/* Largest job payload (JSON text), bytes. */
#define STORE_JOB_PAYLOAD_MAX (4u * 1024 * 1024)
/* A job keeps at most this much of its last request and answer. */
#define STORE_JOB_LAST_MAX 4096

/*
 * A job: what to deliver for one contact of one integration, how often it
 * failed and when it is due.  Jobs of one contact run in arrival order: only
 * the first pending one is runnable.  Times are milliseconds since the
 * epoch, given by the caller (so tests control the clock).
 */
struct store_job {
	uint64_t id;         /* arrival order, never reused */
	int dead;            /* the schedule ran out: kept for the operator */
	unsigned attempts;   /* failed attempts so far */
	int64_t next_at;     /* due at; while leased, the lease's end */
	int64_t created;     /* when it was added */
	uint32_t lease_pid;  /* process holding the current lease, or 0 */
	char *integ;         /* the integration id: a secret, never print it */
	char *kind;          /* what to do, the caller's name */
	char *contact;       /* the key jobs are ordered by (any bytes but NUL) */
	char *payload;       /* the caller's JSON text */
	char *last;          /* last request and answer, truncated ("" if none) */
};

/* Frees a job returned below.  NULL is accepted. */
void store_job_free(struct store_job *j);

/* What store_job_add() writes. */
struct store_job_spec {
	const char *integ;     /* 1..STORE_ID_MAX bytes */
	const char *kind;      /* 1..STORE_JOB_KIND_MAX bytes */
	const char *contact;   /* 1..STORE_ID_MAX bytes */
	const char *payload;   /* 1..STORE_JOB_PAYLOAD_MAX bytes */
	int64_t now;           /* created, and due, at */
	uint32_t lease_pid;    /* non-zero: when the job is runnable at once
	                          (first of its contact), lease it to this
	                          process until lease_until */
	int64_t lease_until;
	int unique;            /* when the contact's first pending job has
	                          this kind, add nothing (an import asked for
	                          twice) */
	int detached;          /* integ is not a token but a name of
	                          STORE_JOB_DETACHED_MAX bytes at most, kept
	                          in clear: the job belongs to no
	                          installation, so neither an uninstall
	                          (store_install_delete, store_jobs_cancel)
	                          nor a claim drops it.  It comes back with
	                          integ = "@" followed by that name. */
};

/* Longest name of a detached job's owner, bytes. */
#define STORE_JOB_DETACHED_MAX 48

/* store_job_add()'s *flags. */
#define STORE_JOB_LEASED 1   /* leased to sp->lease_pid: run it now */
#define STORE_JOB_EXISTED 2  /* unique: *id is the job already there */

/*
 * Adds a pending job at the tail of its contact's line, in one transaction.
 * *id gets its id; *flags (may be NULL) the STORE_JOB_* bits.  Returns
 * STORE_OK, STORE_EINVAL or an error.
 */
int store_job_add(struct store *s, const struct store_job_spec *sp,
    uint64_t *id, unsigned *flags);

/*
 * Leases the runnable job due first (next_at <= now) to pid until
 * lease_until.  A holder that dies lets the lease pass and the job is due
 * again.  Jobs of an installation that no longer exists are dropped on the
 * way.  *out is new (store_job_free), NULL unless STORE_OK.  Returns
 * STORE_OK, STORE_NOTFOUND (nothing due) or an error.
 */
int store_job_claim(struct store *s, uint32_t pid, int64_t now,
    int64_t lease_until, struct store_job **out);

/*
 * The job id succeeded: applies ops (n pair saves or deletes, as
 * store_apply() takes them) and, in the SAME transaction, deletes the job
 * (the next job of its contact becomes runnable) or, when next_payload is
 * not NULL, keeps it with that payload, due at now, attempts reset (the
 * next page of an import).  Returns STORE_OK, STORE_NOTFOUND (the job is
 * gone: nothing applied), STORE_EINVAL or an error.
 */
int store_job_done(struct store *s, uint64_t id, const struct store_op *ops,
    size_t n, const char *next_payload, int64_t now);

/*
 * The attempt of pid at job id failed: attempts + 1, last (truncated to
 * STORE_JOB_LAST_MAX bytes) kept, due again at next_at, or dead when dead is
 * set (its contact's next job becomes runnable).  Returns STORE_OK,
 * STORE_NOTFOUND (gone, or leased by another process since) or an error.
 */
int store_job_retry(struct store *s, uint64_t id, uint32_t pid,
    int64_t next_at, const char *last, int dead);

/*
 * Extends pid's lease on job id to lease_until (a job still running).
 * Returns STORE_OK, STORE_NOTFOUND (gone, or leased by another process
 * since: the holder must not write its outcome) or an error.
 */
int store_job_renew(struct store *s, uint64_t id, uint32_t pid,
    int64_t lease_until);

/*
 * A signed delivery from outside accepted in ONE transaction: its id
 * claimed as store_delivery_claim() does and the n jobs it fires added
 * (ids[i] gets job i's id; ids may be NULL when n is 0).  When the id was
 * claimed less than ttl_s ago *dup is 1 and nothing is written.  So a
 * crash leaves either the claim with every job or neither.  On Redis one
 * MULTI/EXEC WATCHing the claim's key (another host's claim meanwhile
 * makes it start again, and find the duplicate); with ttl_s 0 nothing is
 * claimed there, as store_delivery_claim().  Returns STORE_OK,
 * STORE_EINVAL or an error.
 */
int store_delivery_accept(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s,
    const struct store_job_spec *jobs, size_t n, uint64_t *ids, int *dup);

/* Job id into *out (new).  Returns STORE_OK, STORE_NOTFOUND or an error. */
int store_job_get(struct store *s, uint64_t id, struct store_job **out);

/*
 * Calls fn for every job, pending and dead, in id order, in one read
 * transaction; j is borrowed until fn returns.  A non-zero return stops the
 * walk and is returned.  Otherwise returns STORE_OK or an error.
 */
typedef int (*store_job_fn)(void *arg, const struct store_job *j);
int store_job_foreach(struct store *s, store_job_fn fn, void *arg);

/*
 * Gives the dead job id a new life: a new pending job (new id *newid, so
 * it is applied after what arrived meanwhile), attempts reset, due at now.
 * Returns STORE_OK, STORE_NOTFOUND, STORE_EINVAL (not dead) or an error.
 */
int store_job_revive(struct store *s, uint64_t id, int64_t now,
    uint64_t *newid);

/* Revives every dead job, in batches; *count gets how many. */
int store_jobs_revive_dead(struct store *s, int64_t now, size_t *count);

/*
 * Makes due at now the jobs leased (until after now) to a process alive()
 * says is gone, so they need not wait for their lease to end: what a
 * delivery process does when it starts (after a crash of the whole
 * server, leases of dead processes would hold jobs back).  Looks at the
 * first 256 leases.  *count (may be NULL) gets how many were released.
 */
typedef int (*store_job_alive_fn)(uint32_t pid);
int store_jobs_release(struct store *s, int64_t now, store_job_alive_fn alive,
    size_t *count);

/*
 * The queue's gauges: pending and dead jobs (counts the store keeps in the
 * transactions that change them) and when the oldest pending job was added
 * (0 when none is pending; found from the first pending id, skipping the
 * dead jobs older than it).  No scan of the queue.
 */
struct store_jobs_stats {
	uint64_t pending, dead;
	int64_t oldest_created;
};
int store_jobs_stats(struct store *s, struct store_jobs_stats *st);

/* Removes job id, pending or dead.  STORE_OK, STORE_NOTFOUND or an error. */
int store_job_cancel(struct store *s, uint64_t id);

/*
 * Removes every job of integ in one transaction (store_install_delete()
 * does it too, in its own).  *count (may be NULL) gets how many.
 */
int store_jobs_cancel(struct store *s, const char *integ, size_t *count);

/*
 * Deletes up to max_keys keys of forgotten pairs or state (tombstones left
 * by store_install_delete() and store_ids_delete_all()), in one
 * transaction, and drops each tombstone whose data is all gone.  *deleted
 * (may be NULL) gets the keys deleted (a pair is two), *more whether
 * tombstones are left: call again until it is 0.  Any number of processes
 * may purge at once.  Returns STORE_OK or an error.
 */
int store_purge_step(struct store *s, size_t max_keys, size_t *deleted,
    int *more);

/* --- third-party services (SPEC §12) ----------------------------------- */

/*
 * One service of an installation: its key is (install id, service, group,
 * user); group and user may be "" (a service of the whole installation,
 * of a group, or of a user).  The tokens are sealed with AES-256-GCM under
 * the store's key (BM_SECRET_KEY_FILE), bound to the record's key; nothing
 * else in the record is secret.
 */
#define STORE_SERVICE_NAME_MAX 64  /* service name: [a-z0-9_], 1..64 */
#define STORE_SERVICE_SCOPE_MAX 256 /* a group or user id, bytes */
#define STORE_OAUTH_ID_LEN 64      /* a link id or a state: 256 random bits */
#define STORE_OAUTH_VERIFIER_LEN 64 /* a PKCE code verifier (hex) */

struct store_service {
	char install_id[STORE_INSTALL_ID_LEN + 1];
	char *service, *group, *user; /* the key; group, user may be "" */
	char *access;        /* the access token (secret) */
	char *refresh;       /* the refresh token (secret), "" when none */
	char *scope;         /* what the provider granted, "" when unsaid */
	int64_t created, updated; /* unix times */
	int64_t expires;     /* unix time the access token expires, 0: unsaid */
	uint64_t gen;        /* bumped by every write of the tokens */
	int needs_link;      /* the provider refused the refresh token */
	int64_t lease_until; /* a refresh in progress until then, or 0 */
};

/* Frees a service returned below.  NULL is accepted. */
void store_service_free(struct store_service *sv);

/*
 * Creates or replaces the service keyed by in's key, in one transaction
 * (a read-then-write race cannot make two): created is kept, gen is
 * bumped, needs_link and the lease are cleared.  Returns STORE_OK,
 * STORE_EINVAL or an error.
 */
int store_service_put(struct store *s, const struct store_service *in);

/*
 * The service of that key: *out new (store_service_free), NULL unless
 * STORE_OK.  Returns STORE_OK, STORE_NOTFOUND or an error.
 */
int store_service_get(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user,
    struct store_service **out);

/*
 * Refresh of a service's tokens by one process at a time, without a
 * transaction held across the HTTP call: lease takes the right to refresh
 * generation gen until now + lease_s (*got 1), unless the record moved on
 * (another gen), needs a link, or another process holds an unexpired lease
 * (*got 0).  refreshed saves the new tokens (refresh NULL keeps the old
 * one) if the record is still at gen, bumps gen and ends the lease; it
 * returns STORE_NOTFOUND when the record moved on.  lease_end ends the
 * lease of gen without new tokens, marking the service as needing a new
 * link when needs_link is set.  Return STORE_OK, STORE_NOTFOUND or an
 * error.
 */
int store_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got);
int store_service_refreshed(struct store *s, const struct store_service *in,
    uint64_t gen);
int store_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link);

/* Forgets one service.  Returns STORE_OK, STORE_NOTFOUND or an error. */
int store_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user);

/*
 * Calls fn for each service of install_id (NULL: of every installation),
 * in one read transaction; sv is borrowed until fn returns, its tokens
 * opened.  A non-zero return from fn stops the walk and is returned.
 */
typedef int (*store_service_fn)(void *arg, const struct store_service *sv);
int store_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg);

/*
 * The OAuth link: link_create keeps a one-time link id for the service
 * key, valid ttl_s seconds, and writes it to id (STORE_OAUTH_ID_LEN hex
 * digits).  link_take consumes link id of service (unknown, used, expired
 * or another service's: STORE_NOTFOUND) and keeps in its place a state
 * bound to the same key, valid ttl_s, with a PKCE verifier: both written
 * to state and verifier.  state_take consumes state of service and gives
 * back the key (*bound new, tokens empty) and the verifier; STORE_NOTFOUND
 * as above.  Only keyed hashes of link ids and states are kept, the
 * verifier sealed.  Each also forgets a bounded batch of expired ones.
 */
int store_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1]);
int store_oauth_link_take(struct store *s, const char *link,
    const char *service, int64_t now, unsigned ttl_s,
    char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
int store_oauth_state_take(struct store *s, const char *state,
    const char *service, int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);

/*
 * Re-encrypts every sealed secret of the store (installation tokens,
 * service tokens, pending verifiers) under the key in new_key_file, in one
 * transaction; the handle then uses the new key.  No other process may
 * have the store open (each keeps the key it read); the operator points
 * BM_SECRET_KEY_FILE at the new file before the next start.  *n (may be
 * NULL) gets the number of records.  Returns STORE_OK, STORE_EINVAL (the
 * file: the reason in store_strerror) or an error.
 */
int store_rekey(struct store *s, const char *new_key_file, size_t *n);

/* --- whole store: export, batches, verification ------------------------ */

typedef int (*store_state_fn)(void *arg, const char *token, const char *name,
    const char *val, size_t len);

/* What store_export() calls; a NULL member skips that kind. */
struct store_export_cbs {
	store_install_fn install; /* every installation, first */
	store_pair_fn pair;       /* then every pair, by integration */
	store_state_fn state;     /* then every state value */
};

/*
 * Walks the whole store in ONE read transaction, so what the callbacks see is
 * a consistent snapshot (on Redis: not a snapshot, writes running meanwhile
 * may or may not be seen).  Arguments are borrowed until each callback returns;
 * a non-zero return stops the walk and is returned.  Otherwise returns
 * STORE_OK or an error.  A long export delays writers to the pages it has
 * read (they wait, they are not lost).
 */
int store_export(struct store *s, const struct store_export_cbs *cbs,
    void *arg);

/* One write in a batch given to store_apply(). */
enum store_op_kind {
	STORE_OP_IDS_SAVE = 0, /* a = integration, b = botmatic id, c = ext id */
	STORE_OP_IDS_DELETE,   /* a, b, c as above */
	STORE_OP_INSTALL_PUT,  /* install, as store_install_put() */
	STORE_OP_STATE_SET,    /* a = token, b = name, val/len = value */
	STORE_OP_STATE_DELETE, /* a = token, b = name */
	STORE_OP__MAX
};

struct store_op {
	enum store_op_kind kind;
	const char *a, *b, *c;               /* strings, as the kind says */
	const void *val;                     /* STORE_OP_STATE_SET's value */
	size_t len;                          /* its length */
	const struct store_install *install; /* STORE_OP_INSTALL_PUT's record */
};

/*
 * Applies n writes in ONE transaction (all or none), retried as a whole on
 * deadlock.  Every op is validated before anything is written; when one is
 * refused, *bad (may be NULL) gets its index.  Meant for imports and bulk
 * loads: keep batches to a few thousand ops.  Returns STORE_OK, STORE_EINVAL
 * or an error.
 */
int store_apply(struct store *s, const struct store_op *ops, size_t n,
    size_t *bad);

/*
 * Checks that the two directions are a bijection: every botmatic -> ext entry
 * has the matching ext -> botmatic entry and the other way round.  Each
 * problem found (confirmed inside a transaction, so writes running meanwhile
 * do not cause false alarms) is passed to fn with a short description
 * ("botmatic->ext entry without reverse", "... whose reverse differs", the
 * same for ext->botmatic, "malformed key"), the integration (its token;
 * the key as stored when the token cannot be found) and the pair as stored
 * in the direction where it was seen (bid, eid).  *problems (may be
 * NULL) gets the count.  Returns STORE_OK (whatever the count) or an error.
 */
typedef void (*store_problem_fn)(void *arg, const char *what,
    const char *integ, const char *bid, const char *eid);
int store_verify(struct store *s, store_problem_fn fn, void *arg,
    size_t *problems);

/* --- supervision: for the master, which holds no handle ----------------- */
/*
 * Supervision, the lock and the control socket (below) are Berkeley DB's:
 * they take the directory home, whatever the backend.  With Redis the
 * server still runs them on its BM_DB_HOME, whose environment then stays
 * empty: a check or recovery there is quick and changes nothing in Redis,
 * and tools open Redis directly (no hand-over).
 */

enum store_check {
	STORE_CHECK_CLEAN = 0,          /* dead process cleaned up by failchk */
	STORE_CHECK_RECOVERY_NEEDED = 1, /* failchk failed or recovery ran */
	STORE_CHECK_HUNG = 2,           /* the checker overran: it was killed */
	STORE_CHECK__MAX
};

/*
 * Run by the supervisor after a process using home died.  The caller MUST
 * have reaped the dead process with waitpid() first (an unreaped child still
 * looks alive to kill(pid, 0) and its locks would never be freed), and must
 * not reap other children with waitpid(-1, ...) meanwhile (this call forks
 * and reaps its own checker).  The checker opens the environment as every
 * process does, runs failchk and closes; after timeout_ms it is SIGKILLed and
 * reaped.  Returns a STORE_CHECK_* value, or STORE_ERROR with err filled (the
 * checker could not be started, or it failed for another reason).
 * CLEAN means the survivors may carry on and only the dead one is restarted;
 * anything else means escalate: SIGKILL and reap every process using home,
 * then store_recover().
 */
int store_check_after_death(const char *home, int timeout_ms, char *err,
    size_t errlen);

/*
 * Runs a full recovery of home in a fresh forked process, killed after
 * timeout_ms.  No other process may have home open: the caller has SIGKILLed
 * and reaped every one.  The master also calls it when it starts, before
 * forking anything that opens home: after a crash of the whole server (no
 * supervisor saw those deaths) a plain open may hang for ever in failchk.
 * The regions are rebuilt with the default cache size (32 MB), for
 * STORE_PROCESSES_MAX processes.  Returns
 * STORE_OK, or STORE_ERROR with err filled.
 */
int store_recover(const char *home, int timeout_ms, char *err, size_t errlen);

/* --- who opens the store: one server, or one tool at a time ------------ */

enum store_lock_rc {
	STORE_LOCK_TAKEN = 0,   /* ours: open the store (recover first if dirty) */
	STORE_LOCK_SERVER = 1,  /* a server holds it: hand the command over */
	STORE_LOCK_BUSY = 2,    /* another tool held it for all of wait_ms */
	STORE_LOCK_ERROR = -1,  /* err says why */
	STORE_LOCK__MAX
};

/* What store_lock_take() found. */
struct store_lock_info {
	int dirty;         /* a holder died without a clean close: recover */
	long holder_pid;   /* the pid written in the lock (0: none) */
	int holder_server; /* it was a server */
};

struct store_lock;

/*
 * Takes the exclusive lock BM_DB_HOME/store.lock (creating home 0700 if
 * needed) that every process opening the store outside a server's
 * supervision must hold: a server's master (server = 1) for its life, a
 * tool (server = 0) for one command.  Waits up to wait_ms while another
 * tool holds it; returns at once when a server does.  A server's lock file
 * is opened without O_CLOEXEC so that its children keep the lock: it is
 * released only when the master and all its children are gone.  *out is
 * new, freed with store_lock_release().  Returns a store_lock_rc; err
 * (errlen bytes) is filled on STORE_LOCK_ERROR.
 */
int store_lock_take(struct store_lock **out, const char *home, int server,
    int wait_ms, struct store_lock_info *info, char *err, size_t errlen);

/* The lock's file descriptor (children of a server keep it open). */
int store_lock_fd(const struct store_lock *l);

/*
 * Releases the lock.  clean says every store handle this holder (and its
 * children) had was closed: the pid is then erased, otherwise it stays
 * for the next holder, which recovers.  NULL is accepted.
 */
void store_lock_release(struct store_lock *l, int clean);

/* --- handing a tool's command to the running server --------------------- */

#define STORE_CONTROL_NOSERVER (-2) /* nobody listens: try the lock again */
#define STORE_CONTROL_KILLED 1000   /* status: 1000 + the signal */

/*
 * Sends argv (argc strings, the command and its arguments as given to
 * botmatic-keys) with the file descriptors fds (stdin, stdout, stderr of
 * the command) to the server listening on home/control.sock and waits for
 * the command to end.  *status gets its exit status (0, 1 or 2).  Returns
 * 0, STORE_CONTROL_NOSERVER (*status 2, nobody listens) or -1 with err set
 * (refused, or the server stopped or killed the command).
 */
int store_control_call(const char *home, int argc, char *const *argv,
    const int fds[3], int *status, char *err, size_t errlen);

/* A command received by the server; everything in it is owned by it. */
struct store_control_req {
	int conn;     /* the connection, for store_control_reply() */
	int fds[3];   /* the command's stdin, stdout, stderr */
	long pid;     /* the client's pid, for the log */
	int argc;
	char **argv;  /* NULL-terminated, pointing into buf */
	char *buf;
};

/*
 * Server side.  store_control_listen() creates home/control.sock (0600,
 * replacing a stale one) and returns its non-blocking descriptor, or -1
 * with err.  store_control_accept() takes one pending command: returns 1
 * with *out new (store_control_free()), 0 if none is pending, -1 with err
 * when a client was refused (not root nor our uid, malformed).
 * store_control_reply() sends the status: an exit status, or
 * STORE_CONTROL_KILLED + signal.  store_control_unlink() removes the
 * socket at a clean stop.
 */
int store_control_listen(const char *home, char *err, size_t errlen);
int store_control_accept(int lfd, struct store_control_req **out, char *err,
    size_t errlen);
void store_control_reply(struct store_control_req *r, int status);
void store_control_free(struct store_control_req *r);
void store_control_unlink(const char *home);

/* --- botmatic-keys ------------------------------------------------------ */

/*
 * botmatic-keys' main: parses argv (as main() gets it), takes the lock,
 * hands the command to the server if one runs, otherwise recovers if a
 * holder died, opens, runs it and closes.  Returns the exit status (0, 1,
 * 2), having printed one line on stderr for 2.
 */
int store_cli_main(int argc, char **argv);

/*
 * Runs one command (argv[0] is the command, as sent over the control
 * socket) on home in this process, which a server's master supervises and
 * whose lock it holds: no lock, no recovery.  durability as the server's.
 * Returns the exit status.
 */
int store_cli_run(const char *home, enum store_durability durability,
    int argc, char **argv);

#endif /* BM_STORE_H */
