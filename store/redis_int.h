/*
 * store/redis_int.h - what the Redis backend's files (redis*.c) share: the
 * connection (redis.c) and the way commands and scripts are sent.  Nothing
 * outside store/ includes it.
 *
 * Keys (the project's own layout; "h" is a token's keyed hash, 64 hex
 * digits, so no key holds a token):
 *   bm:hashkey            the HMAC key of token hashes (32 bytes, SET NX
 *                         by the first opener: every host hashes alike)
 *   bm:tok                HASH h -> the token, sealed (crypto.c)
 *   bm:b2e:<h>, bm:e2b:<h> HASH bid -> eid and eid -> bid of integration h
 *   bm:pairs              SET of the h that have pairs (export, verify)
 *   bm:inst:<h>           HASH id, secret, created, settings, ver
 *   bm:instid:<id>        install id -> h
 *   bm:insts              SET of installed h
 *   bm:st:<h>             HASH name -> value (state);  bm:sts SET of h
 *   bm:tombs, bm:tomb:<n> LIST of forgotten hashes, RENAMEd out of the way
 *                         at once and emptied by store_purge_step();
 *                         bm:tombseq their counter
 *   bm:seen:<iid>:<id>    a delivery claim: its time, EXPIREd after the ttl
 *   bm:sv:<iid>:<service\0group\0user>  a service, services.c's record;
 *                         bm:svs:<iid> SET of its suffixes; bm:svi SET of
 *                         install ids
 *   bm:oauth:<hash>       a pending link or state (services.c's entry),
 *                         EXPIREd at its end
 *   bm:job:<id>           HASH, a job (h, contact, kind, payload, last,
 *                         attempts, next_at, created, lease_pid, lease_host,
 *                         dead, sid, lease_ms); bm:jobseq the last id;
 *                         bm:jc:<h>:<contact> LIST, a contact's pending
 *                         line; bm:due ZSET of the lines' heads not yet
 *                         runnable, by next_at; bm:jready STREAM of the
 *                         runnable heads (field id; a job's entry id is
 *                         its sid), group bm:jg, consumers host:pid;
 *                         bm:ji:<h> SET, an integration's jobs;
 *                         bm:jq ZSET of pending ids, bm:jall of all ids;
 *                         bm:jdead SET; bm:jpending, bm:jdeadn counters
 *                         A detached job's h is "@" and its owner's name
 *                         (in clear, no bm:tok entry): no bm:inst:<h>
 *                         to check when claimed, and no uninstall takes
 *                         its bm:ji:@<owner>.
 * botmatic-keys migrate keeps its cursor as state of a reserved token
 * (cli-migrate.h).
 * With BM_REDIS_KEYS=js-redis-key-store, pairs live instead under the
 * Node library's keys, "<token>:b:<bid>" and "<token>:e:<eid>", raw tokens
 * in key names as that library wrote them.
 */
#ifndef BM_STORE_REDIS_INT_H
#define BM_STORE_REDIS_INT_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "store/store_int.h"

/* Scripts, loaded once per connection (SCRIPT LOAD) and run by EVALSHA. */
enum store__rd_script {
	RD_SCRIPT_SAVE = 0,     /* ids_save, own layout */
	RD_SCRIPT_SAVE_JS,      /* ids_save, js-redis-key-store layout */
	RD_SCRIPT_DELETE,
	RD_SCRIPT_DELETE_JS,
	RD_SCRIPT_FORGET,       /* delete_all: rename into a tomb */
	RD_SCRIPT_INSTALL,      /* install_record */
	RD_SCRIPT_INSTALL_PUT,
	RD_SCRIPT_UNINSTALL,
	RD_SCRIPT_SETTINGS,     /* compare-and-set of settings */
	RD_SCRIPT_STATE_SET,
	RD_SCRIPT_CLAIM,        /* delivery claim */
	RD_SCRIPT_PAIR_CHECK,   /* verify: both directions at once */
	RD_SCRIPT_JOB_ADD,
	RD_SCRIPT_JOB_CLAIM,
	RD_SCRIPT_JOB_DONE,
	RD_SCRIPT_JOB_RETRY,
	RD_SCRIPT_JOB_RENEW,
	RD_SCRIPT_JOB_CANCEL,
	RD_SCRIPT_JOB_REVIVE,
	RD_SCRIPT_JOBS_CANCEL,
	RD_SCRIPT_JOB_RELEASE,
	RD_SCRIPT_JOB_HOLDERS,  /* the ready stream's consumers */
	RD_SCRIPT__MAX
};

/*
 * Lua: takes job key k's entry (field sid) out of the ready stream: XACK
 * (out of the group's PEL) and XDEL (out of the stream, kept short).
 */
#define RD_LUA_UNSTREAM \
	"local function unstream(k)\n" \
	"  local sid = redis.call('HGET', k, 'sid')\n" \
	"  if sid and sid ~= '' then\n" \
	"    redis.call('XACK', 'bm:jready', 'bm:jg', sid)\n" \
	"    redis.call('XDEL', 'bm:jready', sid)\n" \
	"    redis.call('HSET', k, 'sid', '')\n" \
	"  end\n" \
	"end\n"

/*
 * Lua: removes job id (pending or dead) from every index, the ready stream
 * included; the next job of its contact becomes runnable.  Returns 1, or
 * 0 if it was not there.
 */
#define RD_LUA_RMJOB RD_LUA_UNSTREAM \
	"local function rmjob(id)\n" \
	"  local k = 'bm:job:' .. id\n" \
	"  local j = redis.call('HMGET', k, 'h', 'contact', 'dead')\n" \
	"  if not j[1] then return 0 end\n" \
	"  unstream(k)\n" \
	"  redis.call('DEL', k)\n" \
	"  redis.call('ZREM', 'bm:jall', id)\n" \
	"  redis.call('SREM', 'bm:ji:' .. j[1], id)\n" \
	"  if j[3] == '1' then\n" \
	"    redis.call('SREM', 'bm:jdead', id)\n" \
	"    redis.call('DECR', 'bm:jdeadn')\n" \
	"  else\n" \
	"    local line = 'bm:jc:' .. j[1] .. ':' .. j[2]\n" \
	"    local head = redis.call('LINDEX', line, 0)\n" \
	"    redis.call('LREM', line, 1, id)\n" \
	"    redis.call('ZREM', 'bm:due', id)\n" \
	"    redis.call('ZREM', 'bm:jq', id)\n" \
	"    redis.call('DECR', 'bm:jpending')\n" \
	"    if head == id then\n" \
	"      local nh = redis.call('LINDEX', line, 0)\n" \
	"      if nh then redis.call('ZADD', 'bm:due',\n" \
	"        redis.call('HGET', 'bm:job:' .. nh, 'next_at'), nh) end\n" \
	"    end\n" \
	"  end\n" \
	"  return 1\n" \
	"end\n"

/* The scripts of the queue (redis-jobs.c). */
extern const char store__rd_lua_job_add[], store__rd_lua_job_claim[],
    store__rd_lua_job_done[], store__rd_lua_job_retry[],
    store__rd_lua_job_renew[], store__rd_lua_job_revive[],
    store__rd_lua_job_release[], store__rd_lua_job_holders[];

/* The text of each script (redis-data.c, redis-jobs.c). */
extern const char *const store__rd_script_text[RD_SCRIPT__MAX];

/* A command being built: arguments are borrowed until it is sent. */
#define STORE__RD_ARGS_MAX 32
struct store__rd_args {
	int n;
	const char *v[STORE__RD_ARGS_MAX];
	size_t l[STORE__RD_ARGS_MAX];
	char num[STORE__RD_ARGS_MAX][24]; /* room for numbers given by value */
};

void store__rd_init(struct store__rd_args *a);
void store__rd_add(struct store__rd_args *a, const void *p, size_t len);
void store__rd_str(struct store__rd_args *a, const char *p);
void store__rd_int(struct store__rd_args *a, long long v);

/*
 * Sends a and reads its reply into *out (new, freeReplyObject(); NULL
 * unless STORE_OK).  Connects first when there is no connection; with
 * Sentinel, a connection is first confirmed (at most once a second) to go
 * to the master Sentinel names now, and made again when it does not.  A
 * READONLY / LOADING / MASTERDOWN / NOREPLICAS answer ("not the master
 * now": the command did not run) drops the connection and the command is
 * sent once more on a new one (Sentinel asked again, ROLE checked); an I/O
 * error drops it too, and the command is sent again only when idem says it
 * may run twice (it may have run).  An error reply is a failure.  what
 * names the operation in the message.  Returns STORE_OK or STORE_ERROR
 * (message set; it never holds an argument: they may be tokens).
 */
int store__rd_cmd(struct store *s, const char *what, int idem,
    struct store__rd_args *a, redisReply **out);

/*
 * Runs script id with a's arguments (keys first: nkeys of them), by
 * EVALSHA, loading it again when Redis answers NOSCRIPT (after a restart
 * or a failover).  As store__rd_cmd() otherwise.
 */
int store__rd_eval(struct store *s, const char *what, int idem,
    enum store__rd_script id, int nkeys, struct store__rd_args *a,
    redisReply **out);

/*
 * Sends n commands (argc[i] arguments each) as one MULTI ... EXEC, so
 * they apply all together or not at all, and nothing runs between them.
 * watch (may be NULL) is WATCHed first, and check (may be NULL) run after
 * the WATCH: a non-zero check aborts with its value (a store_rc).  When
 * the watched key changed before EXEC, the whole is tried again, up to
 * s->retries times; when it was refused as by store__rd_cmd() (not the
 * master now: nothing applied), once more on a new connection.  Scripts
 * inside are sent by EVAL.  Returns a store_rc.
 */
struct store__rd_batch {
	size_t n, cap;
	int *argc;
	const char ***argv;
	size_t **argvlen;
	void **owned; /* buffers to free with the batch */
	size_t nowned, capowned;
};
void store__rd_batch_init(struct store__rd_batch *b);
void store__rd_batch_free(struct store__rd_batch *b);
/* Appends a copy of a (an EVAL of script id when id < RD_SCRIPT__MAX). */
int store__rd_batch_add(struct store__rd_batch *b, int id, int nkeys,
    const struct store__rd_args *a);
typedef int (*store__rd_check_fn)(struct store *s, void *arg);
int store__rd_exec(struct store *s, const char *what, const char *watch,
    store__rd_check_fn check, void *arg, struct store__rd_batch *b,
    redisReply **out);

/* This host's name, which leases record beside the pid: a pid means
 * something only on its own host. */
const char *store__rd_host(const struct store *s);

/* The same with a watched key of wlen bytes (NULs allowed). */
int store__rd_exec_bin(struct store *s, const char *what, const char *watch,
    size_t wlen, store__rd_check_fn check, void *arg,
    struct store__rd_batch *b, redisReply **out);

/* The key of a delivery claim, "bm:seen:<install id>:<id>", into *key
 * (new, *klen bytes), the ids checked (redis-data.c). */
int store__rd_seen_key(struct store *s, const char *install_id,
    const char *id, char **key, size_t *klen);

/* Whether pairs use the js-redis-key-store layout. */
int store__rd_js(const struct store *s);

/* "prefix" + hash into buf (at least 16 + STORE__HASH_LEN + 1 bytes). */
void store__rd_key(char *buf, size_t size, const char *prefix,
    const char *hash);

/* The backend's functions (store__redis_ops), as store.h describes them:
 * redis-data.c and redis-jobs.c. */
int store__rd_ids_save(struct store *s, const char *integ, const char *bid,
    const char *eid);
int store__rd_ext_id_get(struct store *s, const char *integ, const char *bid,
    char **out);
int store__rd_botmatic_id_get(struct store *s, const char *integ,
    const char *eid, char **out);
int store__rd_ids_delete(struct store *s, const char *integ, const char *bid,
    const char *eid);
int store__rd_ids_delete_all(struct store *s, const char *integ,
    size_t *deleted);
int store__rd_ids_foreach(struct store *s, const char *integ, store_pair_fn fn,
    void *arg);
int store__rd_install_record(struct store *s, const char *token,
    const void *settings, size_t settings_len, struct store_install **out);
int store__rd_install_get(struct store *s, const char *token,
    struct store_install **out);
int store__rd_install_get_by_id(struct store *s, const char *install_id,
    struct store_install **out);
int store__rd_install_settings_update(struct store *s, const char *token,
    store_settings_fn fn, void *arg);
int store__rd_install_put(struct store *s, const struct store_install *in);
int store__rd_install_delete(struct store *s, const char *token,
    size_t *pairs);
int store__rd_install_foreach(struct store *s, store_install_fn fn, void *arg);
int store__rd_state_get(struct store *s, const char *token, const char *name,
    char **val, size_t *len);
int store__rd_state_set(struct store *s, const char *token, const char *name,
    const void *val, size_t len);
int store__rd_state_delete(struct store *s, const char *token,
    const char *name);
int store__rd_delivery_claim(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s, int *dup);
int store__rd_delivery_release(struct store *s, const char *install_id,
    const char *id);
int store__rd_job_add(struct store *s, const struct store_job_spec *sp,
    uint64_t *id, unsigned *flags);
int store__rd_delivery_accept(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s,
    const struct store_job_spec *jobs, size_t n, uint64_t *ids, int *dup);
int store__rd_job_claim(struct store *s, uint32_t pid, int64_t now,
    int64_t lease_until, struct store_job **out);
int store__rd_job_done(struct store *s, uint64_t id,
    const struct store_op *ops, size_t n, const char *next_payload,
    int64_t now);
int store__rd_job_retry(struct store *s, uint64_t id, uint32_t pid,
    int64_t next_at, const char *last, int dead);
int store__rd_job_renew(struct store *s, uint64_t id, uint32_t pid,
    int64_t lease_until);
int store__rd_job_get(struct store *s, uint64_t id, struct store_job **out);
int store__rd_job_foreach(struct store *s, store_job_fn fn, void *arg);
int store__rd_job_revive(struct store *s, uint64_t id, int64_t now,
    uint64_t *newid);
int store__rd_jobs_revive_dead(struct store *s, int64_t now, size_t *count);
int store__rd_jobs_release(struct store *s, int64_t now,
    store_job_alive_fn alive, size_t *count);
int store__rd_jobs_stats(struct store *s, struct store_jobs_stats *st);
int store__rd_job_cancel(struct store *s, uint64_t id);
int store__rd_jobs_cancel(struct store *s, const char *integ, size_t *count);
int store__rd_purge_step(struct store *s, size_t max_keys, size_t *deleted,
    int *more);
int store__rd_service_put(struct store *s, const struct store_service *in);
int store__rd_service_get(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user,
    struct store_service **out);
int store__rd_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got);
int store__rd_service_refreshed(struct store *s,
    const struct store_service *in, uint64_t gen);
int store__rd_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link);
int store__rd_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user);
int store__rd_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg);
int store__rd_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1]);
int store__rd_oauth_link_take(struct store *s, const char *link,
    const char *service, int64_t now, unsigned ttl_s,
    char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
int store__rd_oauth_state_take(struct store *s, const char *state,
    const char *service, int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1]);
int store__rd_rekey(struct store *s, const char *new_key_file, size_t *n);
int store__rd_export(struct store *s, const struct store_export_cbs *cbs,
    void *arg);
int store__rd_apply(struct store *s, const struct store_op *ops, size_t n,
    size_t *bad);
int store__rd_verify(struct store *s, store_problem_fn fn, void *arg,
    size_t *problems);
#endif /* BM_STORE_REDIS_INT_H */
