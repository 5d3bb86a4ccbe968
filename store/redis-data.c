/*
 * store/redis-data.c - the Redis backend's data: id pairs, installations,
 * state, delivery claims, the purge of forgotten data, export, batches and
 * verification (the key layout is in redis_int.h).  Every change of more
 * than one key is one Lua script, or one MULTI/EXEC of scripts, so no
 * reader ever sees half of it.  Forgetting an integration RENAMEs its
 * hashes out of the way (O(1), whatever their size) and store_purge_step()
 * empties them in bounded HSCAN/HDEL steps: Redis never blocks on it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/redis_int.h"

/* Keys: a prefix and a hash or an install id, or a js key. */
#define RD_KEY_MAX (32 + STORE__HASH_LEN + 1)
/* Fields asked of one HSCAN or SCAN (a hint to Redis). */
#define RD_SCAN_COUNT 500

/* Moves hash k out of the way into a tomb for the purge. */
#define RD_LUA_TOMB \
	"local function tomb(k)\n" \
	"  if redis.call('EXISTS', k) == 0 then return end\n" \
	"  local t = 'bm:tomb:' .. redis.call('INCR', 'bm:tombseq')\n" \
	"  redis.call('RENAME', k, t)\n" \
	"  redis.call('RPUSH', 'bm:tombs', t)\n" \
	"end\n"

/* KEYS b2e, e2b, bm:pairs, bm:tok; ARGV bid, eid, h, sealed token. */
#define RD_LUA_SAVE \
	"local oe = redis.call('HGET', KEYS[1], ARGV[1])\n" \
	"local ob = redis.call('HGET', KEYS[2], ARGV[2])\n" \
	"if oe and oe ~= ARGV[2] and\n" \
	"    redis.call('HGET', KEYS[2], oe) == ARGV[1] then\n" \
	"  redis.call('HDEL', KEYS[2], oe) end\n" \
	"if ob and ob ~= ARGV[1] and\n" \
	"    redis.call('HGET', KEYS[1], ob) == ARGV[2] then\n" \
	"  redis.call('HDEL', KEYS[1], ob) end\n" \
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n" \
	"redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])\n" \
	"redis.call('SADD', KEYS[3], ARGV[3])\n" \
	"redis.call('HSETNX', KEYS[4], ARGV[3], ARGV[4])\n" \
	"return 1\n"

/* KEYS tok:b:bid, tok:e:eid, bm:pairs, bm:tok; ARGV bid, eid, "tok:", h,
 * sealed token. */
#define RD_LUA_SAVE_JS \
	"local oe = redis.call('GET', KEYS[1])\n" \
	"local ob = redis.call('GET', KEYS[2])\n" \
	"if oe and oe ~= ARGV[2] then\n" \
	"  local k = ARGV[3] .. 'e:' .. oe\n" \
	"  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end\n" \
	"end\n" \
	"if ob and ob ~= ARGV[1] then\n" \
	"  local k = ARGV[3] .. 'b:' .. ob\n" \
	"  if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end\n" \
	"end\n" \
	"redis.call('SET', KEYS[1], ARGV[2])\n" \
	"redis.call('SET', KEYS[2], ARGV[1])\n" \
	"redis.call('SADD', KEYS[3], ARGV[4])\n" \
	"redis.call('HSETNX', KEYS[4], ARGV[4], ARGV[5])\n" \
	"return 1\n"

/* KEYS b2e, e2b; ARGV bid, eid: forgets bid's pair and eid's pair. */
#define RD_LUA_DELETE \
	"local n = 0\n" \
	"local oe = redis.call('HGET', KEYS[1], ARGV[1])\n" \
	"if oe then\n" \
	"  redis.call('HDEL', KEYS[1], ARGV[1])\n" \
	"  if redis.call('HGET', KEYS[2], oe) == ARGV[1] then\n" \
	"    redis.call('HDEL', KEYS[2], oe) end\n" \
	"  n = 1\n" \
	"end\n" \
	"local ob = redis.call('HGET', KEYS[2], ARGV[2])\n" \
	"if ob then\n" \
	"  redis.call('HDEL', KEYS[2], ARGV[2])\n" \
	"  if redis.call('HGET', KEYS[1], ob) == ARGV[2] then\n" \
	"    redis.call('HDEL', KEYS[1], ob) end\n" \
	"  n = 1\n" \
	"end\n" \
	"return n\n"

/* KEYS tok:b:bid, tok:e:eid; ARGV bid, eid, "tok:". */
#define RD_LUA_DELETE_JS \
	"local n = 0\n" \
	"local oe = redis.call('GET', KEYS[1])\n" \
	"if oe then\n" \
	"  redis.call('DEL', KEYS[1])\n" \
	"  local k = ARGV[3] .. 'e:' .. oe\n" \
	"  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end\n" \
	"  n = 1\n" \
	"end\n" \
	"local ob = redis.call('GET', KEYS[2])\n" \
	"if ob then\n" \
	"  redis.call('DEL', KEYS[2])\n" \
	"  local k = ARGV[3] .. 'b:' .. ob\n" \
	"  if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end\n" \
	"  n = 1\n" \
	"end\n" \
	"return n\n"

/* KEYS b2e, e2b, bm:pairs; ARGV h: returns the pairs forgotten. */
#define RD_LUA_FORGET RD_LUA_TOMB \
	"local n = redis.call('HLEN', KEYS[1])\n" \
	"tomb(KEYS[1])\n" \
	"tomb(KEYS[2])\n" \
	"redis.call('SREM', KEYS[3], ARGV[1])\n" \
	"return n\n"

/* KEYS inst, instid of a new id, bm:insts, bm:tok; ARGV h, new id, new
 * secret, now, has settings, settings, sealed token. */
#define RD_LUA_INSTALL \
	"if redis.call('HEXISTS', KEYS[1], 'id') == 1 then\n" \
	"  if ARGV[5] == '1' then\n" \
	"    redis.call('HSET', KEYS[1], 'settings', ARGV[6])\n" \
	"    redis.call('HINCRBY', KEYS[1], 'ver', 1)\n" \
	"  end\n" \
	"else\n" \
	"  redis.call('HSET', KEYS[1], 'id', ARGV[2], 'secret', ARGV[3],\n" \
	"    'created', ARGV[4], 'settings', ARGV[6], 'ver', 1)\n" \
	"  redis.call('SET', KEYS[2], ARGV[1])\n" \
	"  redis.call('SADD', KEYS[3], ARGV[1])\n" \
	"end\n" \
	"redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[7])\n" \
	"return redis.call('HMGET', KEYS[1], 'id', 'secret', 'created',\n" \
	"  'settings')\n"

/* KEYS inst, instid, bm:insts, bm:tok; ARGV h, id, secret, created,
 * settings, sealed token.  -1: the id is another token's. */
#define RD_LUA_INSTALL_PUT \
	"local owner = redis.call('GET', KEYS[2])\n" \
	"if owner and owner ~= ARGV[1] then return -1 end\n" \
	"local old = redis.call('HGET', KEYS[1], 'id')\n" \
	"if old and old ~= ARGV[2] then\n" \
	"  redis.call('DEL', 'bm:instid:' .. old) end\n" \
	"redis.call('HSET', KEYS[1], 'id', ARGV[2], 'secret', ARGV[3],\n" \
	"  'created', ARGV[4], 'settings', ARGV[5])\n" \
	"redis.call('HINCRBY', KEYS[1], 'ver', 1)\n" \
	"redis.call('SET', KEYS[2], ARGV[1])\n" \
	"redis.call('SADD', KEYS[3], ARGV[1])\n" \
	"redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[6])\n" \
	"return 0\n"

/* KEYS inst, b2e, e2b, st; ARGV h.  Returns {anything, pairs}. */
#define RD_LUA_UNINSTALL RD_LUA_TOMB RD_LUA_RMJOB \
	"local any = 0\n" \
	"local iid = redis.call('HGET', KEYS[1], 'id')\n" \
	"if iid then\n" \
	"  any = 1\n" \
	"  redis.call('DEL', KEYS[1], 'bm:instid:' .. iid)\n" \
	"  local svk = 'bm:svs:' .. iid\n" \
	"  for _, m in ipairs(redis.call('SMEMBERS', svk)) do\n" \
	"    redis.call('DEL', 'bm:sv:' .. iid .. ':' .. m) end\n" \
	"  redis.call('DEL', svk)\n" \
	"  redis.call('SREM', 'bm:svi', iid)\n" \
	"end\n" \
	"redis.call('SREM', 'bm:insts', ARGV[1])\n" \
	"local n = redis.call('HLEN', KEYS[2])\n" \
	"if n > 0 or redis.call('EXISTS', KEYS[4]) == 1 then any = 1 end\n" \
	"tomb(KEYS[2])\n" \
	"tomb(KEYS[3])\n" \
	"tomb(KEYS[4])\n" \
	"redis.call('SREM', 'bm:pairs', ARGV[1])\n" \
	"redis.call('SREM', 'bm:sts', ARGV[1])\n" \
	"local jk = 'bm:ji:' .. ARGV[1]\n" \
	"for _, id in ipairs(redis.call('SMEMBERS', jk)) do\n" \
	"  any = 1\n" \
	"  rmjob(id)\n" \
	"end\n" \
	"redis.call('DEL', jk)\n" \
	"redis.call('HDEL', 'bm:tok', ARGV[1])\n" \
	"return {any, n}\n"

/* KEYS inst; ARGV ver, settings.  1 done, 0 moved on, -1 gone. */
#define RD_LUA_SETTINGS \
	"local v = redis.call('HGET', KEYS[1], 'ver')\n" \
	"if not v then return -1 end\n" \
	"if v ~= ARGV[1] then return 0 end\n" \
	"redis.call('HSET', KEYS[1], 'settings', ARGV[2])\n" \
	"redis.call('HINCRBY', KEYS[1], 'ver', 1)\n" \
	"return 1\n"

/* KEYS st, bm:sts, bm:tok; ARGV name, value, h, sealed token. */
#define RD_LUA_STATE_SET \
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n" \
	"redis.call('SADD', KEYS[2], ARGV[3])\n" \
	"redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4])\n" \
	"return 1\n"

/* KEYS claim; ARGV now, ttl: 1 a duplicate, 0 claimed. */
#define RD_LUA_CLAIM \
	"local t = redis.call('GET', KEYS[1])\n" \
	"if t and tonumber(ARGV[1]) - tonumber(t) < tonumber(ARGV[2]) and\n" \
	"    tonumber(ARGV[1]) >= tonumber(t) then return 1 end\n" \
	"redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n" \
	"return 0\n"

/* KEYS b2e, e2b; ARGV bid, eid: both directions read at once. */
#define RD_LUA_PAIR_CHECK \
	"return {redis.call('HGET', KEYS[1], ARGV[1]),\n" \
	"  redis.call('HGET', KEYS[2], ARGV[2])}\n"


const char *const store__rd_script_text[RD_SCRIPT__MAX] = {
	[RD_SCRIPT_SAVE] = RD_LUA_SAVE,
	[RD_SCRIPT_SAVE_JS] = RD_LUA_SAVE_JS,
	[RD_SCRIPT_DELETE] = RD_LUA_DELETE,
	[RD_SCRIPT_DELETE_JS] = RD_LUA_DELETE_JS,
	[RD_SCRIPT_FORGET] = RD_LUA_FORGET,
	[RD_SCRIPT_INSTALL] = RD_LUA_INSTALL,
	[RD_SCRIPT_INSTALL_PUT] = RD_LUA_INSTALL_PUT,
	[RD_SCRIPT_UNINSTALL] = RD_LUA_UNINSTALL,
	[RD_SCRIPT_SETTINGS] = RD_LUA_SETTINGS,
	[RD_SCRIPT_STATE_SET] = RD_LUA_STATE_SET,
	[RD_SCRIPT_CLAIM] = RD_LUA_CLAIM,
	[RD_SCRIPT_PAIR_CHECK] = RD_LUA_PAIR_CHECK,
	[RD_SCRIPT_JOB_ADD] = store__rd_lua_job_add,
	[RD_SCRIPT_JOB_CLAIM] = store__rd_lua_job_claim,
	[RD_SCRIPT_JOB_DONE] = store__rd_lua_job_done,
	[RD_SCRIPT_JOB_RETRY] = store__rd_lua_job_retry,
	[RD_SCRIPT_JOB_RENEW] = store__rd_lua_job_renew,
	[RD_SCRIPT_JOB_REVIVE] = store__rd_lua_job_revive,
	[RD_SCRIPT_JOB_RELEASE] = store__rd_lua_job_release,
	[RD_SCRIPT_JOB_HOLDERS] = store__rd_lua_job_holders,
	[RD_SCRIPT_JOB_CANCEL] = RD_LUA_RMJOB "return rmjob(ARGV[1])\n",
	[RD_SCRIPT_JOBS_CANCEL] = RD_LUA_RMJOB
	    "local n = 0\n"
	    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	    "  n = n + rmjob(id) end\n"
	    "return n\n",
};

/* --- helpers ----------------------------------------------------------- */

/* The hash of a checked token into h; STORE_OK or an error. */
static int
rd_hash(struct store *s, const char *what, const char *token, size_t *tlen,
    char h[STORE__HASH_LEN + 1])
{
	int rc;

	if ((rc = store__check_id(s, what, token, tlen)) != STORE_OK)
		return rc;
	if (store__token_key(s, token, *tlen, h) != 0) {
		snprintf(s->err, sizeof(s->err), "redis: hashing a token: %s",
		    strerror(ENOMEM));
		return STORE_ERROR;
	}
	return STORE_OK;
}

/* The token sealed under its hash: *out new, *outlen bytes. */
static int
rd_seal_token(struct store *s, const char *h, const char *token,
    size_t tlen, unsigned char **out, size_t *outlen)
{
	if (store__seal(s, h, STORE__HASH_LEN, token, tlen, out, outlen) !=
	    0) {
		snprintf(s->err, sizeof(s->err), "redis: sealing a token "
		    "failed");
		return STORE_ERROR;
	}
	return STORE_OK;
}

/* The token of hash h (*token new): STORE_OK, STORE_NOTFOUND or error. */
static int
rd_token(struct store *s, const char *h, char **token)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	*token = NULL;
	store__rd_init(&a);
	store__rd_str(&a, "HGET");
	store__rd_str(&a, "bm:tok");
	store__rd_add(&a, h, STORE__HASH_LEN);
	if ((rc = store__rd_cmd(s, "reading a token", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING)
		rc = STORE_NOTFOUND;
	else if (store__unseal(s, h, STORE__HASH_LEN,
	    (const unsigned char *)rep->str, rep->len, token, NULL) != 0) {
		snprintf(s->err, sizeof(s->err), "redis: a token does not "
		    "decrypt: BM_SECRET_KEY_FILE is not the key it was sealed "
		    "with, or the record is damaged");
		rc = STORE_ERROR;
	}
	freeReplyObject(rep);
	return rc;
}

/* The pair hashes of h. */
static void
rd_pair_keys(const char *h, char *b2e, char *e2b)
{
	store__rd_key(b2e, RD_KEY_MAX, "bm:b2e:", h);
	store__rd_key(e2b, RD_KEY_MAX, "bm:e2b:", h);
}

/* A js key "token:x:id" (new), *len bytes. */
static char *
rd_js_key(const char *token, size_t tlen, char x, const char *id,
    size_t ilen, size_t *len)
{
	char *k = malloc(tlen + 3 + ilen + 1);

	if (k == NULL)
		return NULL;
	memcpy(k, token, tlen);
	k[tlen] = ':';
	k[tlen + 1] = x;
	k[tlen + 2] = ':';
	memcpy(k + tlen + 3, id, ilen);
	k[tlen + 3 + ilen] = '\0';
	*len = tlen + 3 + ilen;
	return k;
}

/* The glob pattern matching "token:x:*" with token's glob characters
 * escaped (new). */
static char *
rd_js_pattern(const char *token, size_t tlen, char x)
{
	char *p = malloc(2 * tlen + 5), *q;
	size_t i;

	if (p == NULL)
		return NULL;
	q = p;
	for (i = 0; i < tlen; i++) {
		if (strchr("*?[]\\^-", token[i]) != NULL)
			*q++ = '\\';
		*q++ = token[i];
	}
	*q++ = ':';
	*q++ = x;
	*q++ = ':';
	*q++ = '*';
	*q = '\0';
	return p;
}

static int
rd_nomem(struct store *s)
{
	snprintf(s->err, sizeof(s->err), "redis: %s", strerror(ENOMEM));
	return STORE_ERROR;
}

/* --- id pairs ---------------------------------------------------------- */

/* Fills a with the script call saving a pair (for a batch too). */
struct rd_pair_call {
	char h[STORE__HASH_LEN + 1];
	char b2e[RD_KEY_MAX], e2b[RD_KEY_MAX];
	char *kb, *ke, *pfx; /* js keys and "token:" */
	size_t kbl, kel, pfxl;
	unsigned char *sealed;
	size_t slen;
};

static void
rd_pair_call_free(struct rd_pair_call *c)
{
	free(c->kb);
	free(c->ke);
	free(c->pfx);
	free(c->sealed);
	memset(c, 0, sizeof(*c));
}

/* Checks integ, bid, eid and prepares c and a for a save (save = 1) or a
 * delete.  *id the script. */
static int
rd_pair_prepare(struct store *s, const char *integ, const char *bid,
    const char *eid, int save, struct rd_pair_call *c,
    struct store__rd_args *a, enum store__rd_script *id)
{
	size_t tlen, blen, elen;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = store__check_id(s, "integration id", integ, &tlen)) != STORE_OK ||
	    (rc = store__check_id(s, "botmatic id", bid, &blen)) != STORE_OK ||
	    (rc = store__check_id(s, "external id", eid, &elen)) != STORE_OK ||
	    (rc = rd_hash(s, "integration id", integ, &tlen, c->h)) != STORE_OK)
		return rc;
	if (save && (rc = rd_seal_token(s, c->h, integ, tlen, &c->sealed,
	    &c->slen)) != STORE_OK)
		return rc;
	store__rd_init(a);
	if (store__rd_js(s)) {
		if ((c->kb = rd_js_key(integ, tlen, 'b', bid, blen, &c->kbl)) ==
		    NULL ||
		    (c->ke = rd_js_key(integ, tlen, 'e', eid, elen, &c->kel)) ==
		    NULL || (c->pfx = malloc(tlen + 2)) == NULL)
			return rd_nomem(s);
		memcpy(c->pfx, integ, tlen);
		c->pfx[tlen] = ':';
		c->pfx[tlen + 1] = '\0';
		c->pfxl = tlen + 1;
		store__rd_add(a, c->kb, c->kbl);
		store__rd_add(a, c->ke, c->kel);
		if (save) {
			store__rd_str(a, "bm:pairs");
			store__rd_str(a, "bm:tok");
		}
		store__rd_add(a, bid, blen);
		store__rd_add(a, eid, elen);
		store__rd_add(a, c->pfx, c->pfxl);
		if (save) {
			store__rd_add(a, c->h, STORE__HASH_LEN);
			store__rd_add(a, c->sealed, c->slen);
		}
		*id = save ? RD_SCRIPT_SAVE_JS : RD_SCRIPT_DELETE_JS;
		return STORE_OK;
	}
	rd_pair_keys(c->h, c->b2e, c->e2b);
	store__rd_str(a, c->b2e);
	store__rd_str(a, c->e2b);
	if (save) {
		store__rd_str(a, "bm:pairs");
		store__rd_str(a, "bm:tok");
	}
	store__rd_add(a, bid, blen);
	store__rd_add(a, eid, elen);
	if (save) {
		store__rd_add(a, c->h, STORE__HASH_LEN);
		store__rd_add(a, c->sealed, c->slen);
	}
	*id = save ? RD_SCRIPT_SAVE : RD_SCRIPT_DELETE;
	return STORE_OK;
}

static int
rd_pair_nkeys(enum store__rd_script id)
{
	return id == RD_SCRIPT_SAVE || id == RD_SCRIPT_SAVE_JS ? 4 : 2;
}

int
store__rd_ids_save(struct store *s, const char *integ, const char *bid,
    const char *eid)
{
	struct rd_pair_call c;
	struct store__rd_args a;
	enum store__rd_script id;
	redisReply *rep = NULL;
	int rc;

	if ((rc = rd_pair_prepare(s, integ, bid, eid, 1, &c, &a, &id)) ==
	    STORE_OK &&
	    (rc = store__rd_eval(s, "saving a pair", 1, id,
	    rd_pair_nkeys(id), &a, &rep)) == STORE_OK)
		freeReplyObject(rep);
	rd_pair_call_free(&c);
	return rc;
}

int
store__rd_ids_delete(struct store *s, const char *integ, const char *bid,
    const char *eid)
{
	struct rd_pair_call c;
	struct store__rd_args a;
	enum store__rd_script id;
	redisReply *rep = NULL;
	int rc;

	if ((rc = rd_pair_prepare(s, integ, bid, eid, 0, &c, &a, &id)) ==
	    STORE_OK &&
	    (rc = store__rd_eval(s, "deleting a pair", 1, id,
	    rd_pair_nkeys(id), &a, &rep)) == STORE_OK) {
		rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ?
		    STORE_OK : STORE_NOTFOUND;
		freeReplyObject(rep);
	}
	rd_pair_call_free(&c);
	return rc;
}

/* One direction's lookup: x 'b' (by bid) or 'e' (by eid). */
static int
rd_id_get(struct store *s, const char *integ, const char *id, char x,
    char **out)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], *jk = NULL;
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t tlen, ilen, klen;
	int rc;

	*out = NULL;
	if ((rc = store__check_id(s, "integration id", integ, &tlen)) !=
	    STORE_OK ||
	    (rc = store__check_id(s, x == 'b' ? "botmatic id" : "external id",
	    id, &ilen)) != STORE_OK)
		return rc;
	store__rd_init(&a);
	if (store__rd_js(s)) {
		if ((jk = rd_js_key(integ, tlen, x, id, ilen, &klen)) == NULL)
			return rd_nomem(s);
		store__rd_str(&a, "GET");
		store__rd_add(&a, jk, klen);
	} else {
		if ((rc = rd_hash(s, "integration id", integ, &tlen, h)) !=
		    STORE_OK)
			return rc;
		store__rd_key(key, sizeof(key), x == 'b' ? "bm:b2e:" :
		    "bm:e2b:", h);
		store__rd_str(&a, "HGET");
		store__rd_str(&a, key);
		store__rd_add(&a, id, ilen);
	}
	if ((rc = store__rd_cmd(s, "reading a pair", 1, &a, &rep)) ==
	    STORE_OK) {
		if (rep->type != REDIS_REPLY_STRING)
			rc = STORE_NOTFOUND;
		else if ((*out = strndup(rep->str, rep->len)) == NULL)
			rc = rd_nomem(s);
		freeReplyObject(rep);
	}
	free(jk);
	return rc;
}

int
store__rd_ext_id_get(struct store *s, const char *integ, const char *bid,
    char **out)
{
	return rd_id_get(s, integ, bid, 'b', out);
}

int
store__rd_botmatic_id_get(struct store *s, const char *integ,
    const char *eid, char **out)
{
	return rd_id_get(s, integ, eid, 'e', out);
}

/*
 * Calls fn(arg, key, keylen) for each key SCAN finds matching pattern, a
 * bounded batch per round trip.  A non-zero return of fn stops the walk.
 */
typedef int (*rd_key_fn)(struct store *s, void *arg, const char *key,
    size_t len);

static int
rd_scan(struct store *s, const char *pattern, rd_key_fn fn, void *arg)
{
	struct store__rd_args a;
	redisReply *rep = NULL, *keys;
	char cursor[32] = "0";
	size_t i;
	int rc = STORE_OK;

	do {
		store__rd_init(&a);
		store__rd_str(&a, "SCAN");
		store__rd_str(&a, cursor);
		store__rd_str(&a, "MATCH");
		store__rd_str(&a, pattern);
		store__rd_str(&a, "COUNT");
		store__rd_int(&a, RD_SCAN_COUNT);
		if ((rc = store__rd_cmd(s, "scanning keys", 1, &a, &rep)) !=
		    STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(rep);
			snprintf(s->err, sizeof(s->err), "redis: SCAN: "
			    "unexpected answer");
			return STORE_ERROR;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		keys = rep->element[1];
		for (i = 0; i < keys->elements && rc == STORE_OK; i++)
			rc = fn(s, arg, keys->element[i]->str,
			    keys->element[i]->len);
		freeReplyObject(rep);
		rep = NULL;
	} while (rc == STORE_OK && strcmp(cursor, "0") != 0);
	return rc;
}

/*
 * Calls fn(arg, field, flen, value, vlen) for each field of hash key,
 * HSCAN a bounded batch per round trip.  Non-zero from fn stops.
 */
typedef int (*rd_field_fn)(struct store *s, void *arg, const char *f,
    size_t flen, const char *v, size_t vlen);

static int
rd_hscan(struct store *s, const char *key, rd_field_fn fn, void *arg)
{
	struct store__rd_args a;
	redisReply *rep = NULL, *kv;
	char cursor[32] = "0";
	size_t i;
	int rc = STORE_OK;

	do {
		store__rd_init(&a);
		store__rd_str(&a, "HSCAN");
		store__rd_str(&a, key);
		store__rd_str(&a, cursor);
		store__rd_str(&a, "COUNT");
		store__rd_int(&a, RD_SCAN_COUNT);
		if ((rc = store__rd_cmd(s, "scanning a hash", 1, &a, &rep)) !=
		    STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(rep);
			snprintf(s->err, sizeof(s->err), "redis: HSCAN: "
			    "unexpected answer");
			return STORE_ERROR;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		kv = rep->element[1];
		for (i = 0; i + 1 < kv->elements && rc == STORE_OK; i += 2)
			rc = fn(s, arg, kv->element[i]->str,
			    kv->element[i]->len, kv->element[i + 1]->str,
			    kv->element[i + 1]->len);
		freeReplyObject(rep);
		rep = NULL;
	} while (rc == STORE_OK && strcmp(cursor, "0") != 0);
	return rc;
}

/* The same over the members of a set. */
static int
rd_sscan(struct store *s, const char *key, rd_key_fn fn, void *arg)
{
	struct store__rd_args a;
	redisReply *rep = NULL, *m;
	char cursor[32] = "0";
	size_t i;
	int rc = STORE_OK;

	do {
		store__rd_init(&a);
		store__rd_str(&a, "SSCAN");
		store__rd_str(&a, key);
		store__rd_str(&a, cursor);
		store__rd_str(&a, "COUNT");
		store__rd_int(&a, RD_SCAN_COUNT);
		if ((rc = store__rd_cmd(s, "scanning a set", 1, &a, &rep)) !=
		    STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(rep);
			snprintf(s->err, sizeof(s->err), "redis: SSCAN: "
			    "unexpected answer");
			return STORE_ERROR;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		m = rep->element[1];
		for (i = 0; i < m->elements && rc == STORE_OK; i++)
			rc = fn(s, arg, m->element[i]->str, m->element[i]->len);
		freeReplyObject(rep);
		rep = NULL;
	} while (rc == STORE_OK && strcmp(cursor, "0") != 0);
	return rc;
}

/* A walk's callback result, kept apart from the store's own codes. */
struct rd_walk {
	const char *integ;
	store_pair_fn fn;
	void *arg;
	int stop;     /* fn's non-zero return */
	size_t n;
	size_t tlen;
};

static int
rd_pair_field(struct store *s, void *arg, const char *f, size_t flen,
    const char *v, size_t vlen)
{
	struct rd_walk *w = arg;
	char *bid = strndup(f, flen), *eid = strndup(v, vlen);
	int rc = STORE_OK;

	if (bid == NULL || eid == NULL)
		rc = rd_nomem(s);
	else if ((w->stop = w->fn(w->arg, w->integ, bid, eid)) != 0)
		rc = 1;
	free(bid);
	free(eid);
	return rc;
}

/* A js key "token:b:bid" found by SCAN: reads its value and calls fn. */
static int
rd_js_pair_key(struct store *s, void *arg, const char *key, size_t len)
{
	struct rd_walk *w = arg;
	struct store__rd_args a;
	redisReply *rep = NULL;
	char *bid = NULL, *eid = NULL;
	int rc;

	if (len <= w->tlen + 3)
		return STORE_OK;
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_add(&a, key, len);
	if ((rc = store__rd_cmd(s, "reading a pair", 1, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_STRING) {
		bid = strndup(key + w->tlen + 3, len - w->tlen - 3);
		eid = strndup(rep->str, rep->len);
		if (bid == NULL || eid == NULL)
			rc = rd_nomem(s);
		else if ((w->stop = w->fn(w->arg, w->integ, bid, eid)) != 0)
			rc = 1;
	}
	freeReplyObject(rep);
	free(bid);
	free(eid);
	return rc;
}

int
store__rd_ids_foreach(struct store *s, const char *integ, store_pair_fn fn,
    void *arg)
{
	struct rd_walk w = { .integ = integ, .fn = fn, .arg = arg };
	char h[STORE__HASH_LEN + 1], b2e[RD_KEY_MAX], e2b[RD_KEY_MAX];
	char *pat;
	int rc;

	if ((rc = rd_hash(s, "integration id", integ, &w.tlen, h)) != STORE_OK)
		return rc;
	if (store__rd_js(s)) {
		if ((pat = rd_js_pattern(integ, w.tlen, 'b')) == NULL)
			return rd_nomem(s);
		rc = rd_scan(s, pat, rd_js_pair_key, &w);
		free(pat);
	} else {
		rd_pair_keys(h, b2e, e2b);
		rc = rd_hscan(s, b2e, rd_pair_field, &w);
	}
	return w.stop != 0 ? w.stop : rc;
}

/* js layout: what SCAN finds is UNLINKed, RD_UNLINK_MAX keys a command. */
#define RD_UNLINK_MAX (STORE__RD_ARGS_MAX - 1)

struct rd_unlink {
	char *keys[RD_UNLINK_MAX];
	size_t lens[RD_UNLINK_MAX];
	int n;
	size_t done;
};

static int
rd_unlink_flush(struct store *s, struct rd_unlink *u)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	int i, rc = STORE_OK;

	if (u->n > 0) {
		store__rd_init(&a);
		store__rd_str(&a, "UNLINK");
		for (i = 0; i < u->n; i++)
			store__rd_add(&a, u->keys[i], u->lens[i]);
		if ((rc = store__rd_cmd(s, "deleting pairs", 1, &a, &rep)) ==
		    STORE_OK) {
			if (rep->type == REDIS_REPLY_INTEGER)
				u->done += (size_t)rep->integer;
			freeReplyObject(rep);
		}
	}
	for (i = 0; i < u->n; i++)
		free(u->keys[i]);
	u->n = 0;
	return rc;
}

static int
rd_js_del_key(struct store *s, void *arg, const char *key, size_t len)
{
	struct rd_unlink *u = arg;

	if ((u->keys[u->n] = malloc(len)) == NULL)
		return rd_nomem(s);
	memcpy(u->keys[u->n], key, len);
	u->lens[u->n++] = len;
	return u->n == RD_UNLINK_MAX ? rd_unlink_flush(s, u) : STORE_OK;
}

/* UNLINKs every key matching pattern; *n gets how many went. */
static int
rd_js_unlink_all(struct store *s, const char *pattern, size_t *n)
{
	struct rd_unlink u;
	int rc, frc;

	memset(&u, 0, sizeof(u));
	rc = rd_scan(s, pattern, rd_js_del_key, &u);
	frc = rd_unlink_flush(s, &u);
	*n = u.done;
	return rc != STORE_OK ? rc : frc;
}

int
store__rd_ids_delete_all(struct store *s, const char *integ, size_t *deleted)
{
	char h[STORE__HASH_LEN + 1], b2e[RD_KEY_MAX], e2b[RD_KEY_MAX];
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t tlen, nb = 0, ne = 0;
	char *pat;
	int rc;

	if (deleted != NULL)
		*deleted = 0;
	if ((rc = rd_hash(s, "integration id", integ, &tlen, h)) != STORE_OK)
		return rc;
	if (store__rd_js(s)) {
		/*
		 * The Node library's keys cannot be renamed away from its
		 * readers: they go in SCAN steps (never KEYS), pairs vanishing
		 * as the steps run.
		 */
		if ((pat = rd_js_pattern(integ, tlen, 'b')) == NULL)
			return rd_nomem(s);
		rc = rd_js_unlink_all(s, pat, &nb);
		free(pat);
		if (rc == STORE_OK) {
			if ((pat = rd_js_pattern(integ, tlen, 'e')) == NULL)
				return rd_nomem(s);
			rc = rd_js_unlink_all(s, pat, &ne);
			free(pat);
		}
		if (deleted != NULL)
			*deleted = nb;
		return rc;
	}
	rd_pair_keys(h, b2e, e2b);
	store__rd_init(&a);
	store__rd_str(&a, b2e);
	store__rd_str(&a, e2b);
	store__rd_str(&a, "bm:pairs");
	store__rd_add(&a, h, STORE__HASH_LEN);
	if ((rc = store__rd_eval(s, "forgetting pairs", 1, RD_SCRIPT_FORGET,
	    3, &a, &rep)) != STORE_OK)
		return rc;
	if (deleted != NULL && rep->type == REDIS_REPLY_INTEGER)
		*deleted = (size_t)rep->integer;
	freeReplyObject(rep);
	return STORE_OK;
}

/* --- installations ----------------------------------------------------- */

static int
rd_is_hex(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' &&
		    p[i] <= 'f')))
			return 0;
	return p[n] == '\0';
}

/*
 * Seals secret (64 hex) bound to install id into the tail of *buf (new or
 * realloc()ed: its first len bytes kept), STORE__INST_SEALED bytes.
 */
static int
rd_seal_secret(struct store *s, const char *install_id, const char *secret,
    unsigned char **buf, size_t len)
{
	unsigned char *sealed = NULL, *nb;
	size_t slen = 0;

	if (store__seal(s, install_id, STORE_INSTALL_ID_LEN, secret,
	    STORE_SECRET_LEN, &sealed, &slen) != 0 ||
	    slen != STORE__INST_SEALED) {
		free(sealed);
		snprintf(s->err, sizeof(s->err), "redis: sealing an "
		    "installation secret failed");
		return STORE_ERROR;
	}
	if ((nb = realloc(*buf, len + slen)) == NULL) {
		free(sealed);
		return rd_nomem(s);
	}
	memcpy(nb + len, sealed, slen);
	free(sealed);
	*buf = nb;
	return STORE_OK;
}

/*
 * Installations written before the store sealed their secret hold it in
 * clear (64 hex): the first read reseals it, unless it changed meanwhile.
 */
#define RD_LUA_RESEAL \
	"if redis.call('HGET', KEYS[1], 'secret') == ARGV[1] then\n" \
	"  redis.call('HSET', KEYS[1], 'secret', ARGV[2]) end\n" \
	"return 0\n"

static int
rd_install_reseal(struct store *s, const char *key,
    const struct store_install *in)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char *sealed = NULL;
	int rc;

	if ((rc = rd_seal_secret(s, in->install_id, in->secret, &sealed, 0))
	    != STORE_OK)
		return rc;
	store__rd_init(&a);
	store__rd_str(&a, "EVAL");
	store__rd_str(&a, RD_LUA_RESEAL);
	store__rd_str(&a, "1");
	store__rd_str(&a, key);
	store__rd_str(&a, in->secret);
	store__rd_add(&a, sealed, STORE__INST_SEALED);
	rc = store__rd_cmd(s, "sealing an installation secret", 1, &a, &rep);
	free(sealed);
	freeReplyObject(rep);
	return rc;
}

/*
 * An installation from HMGET id secret created settings (rep) and its
 * token: *out new; *clear (may be NULL) set when its secret was in clear.
 * STORE_NOTFOUND when the record is not there.
 */
static int
rd_install_from(struct store *s, const char *token, const redisReply *rep,
    struct store_install **out, int *clear)
{
	struct store_install *in = NULL;
	redisReply **e;

	*out = NULL;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		return STORE_NOTFOUND;
	e = rep->element;
	if (e[0]->len != STORE_INSTALL_ID_LEN ||
	    e[1]->type != REDIS_REPLY_STRING ||
	    (e[1]->len != STORE_SECRET_LEN &&
	    e[1]->len != STORE__INST_SEALED) ||
	    e[2]->type != REDIS_REPLY_STRING) {
		snprintf(s->err, sizeof(s->err), "redis: a malformed "
		    "installation record");
		return STORE_ERROR;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL ||
	    (in->token = strdup(token)) == NULL)
		goto nomem;
	memcpy(in->install_id, e[0]->str, STORE_INSTALL_ID_LEN);
	if (e[1]->len == STORE_SECRET_LEN) {
		/* Written before the store sealed it: the caller reseals. */
		memcpy(in->secret, e[1]->str, STORE_SECRET_LEN);
		if (clear != NULL)
			*clear = 1;
	} else {
		char *plain = NULL;
		size_t plen = 0;

		if (store__unseal(s, in->install_id, STORE_INSTALL_ID_LEN,
		    (const unsigned char *)e[1]->str, e[1]->len, &plain,
		    &plen) != 0 || plen != STORE_SECRET_LEN) {
			if (plain != NULL)
				store__crypto_wipe(plain, plen);
			free(plain);
			store_install_free(in);
			snprintf(s->err, sizeof(s->err), "redis: an "
			    "installation secret does not decrypt: "
			    "BM_SECRET_KEY_FILE is not the key it was sealed "
			    "with, or the record is damaged");
			return STORE_ERROR;
		}
		memcpy(in->secret, plain, STORE_SECRET_LEN);
		store__crypto_wipe(plain, plen);
		free(plain);
	}
	in->created = strtoll(e[2]->str, NULL, 10);
	in->settings_len = e[3]->type == REDIS_REPLY_STRING ? e[3]->len : 0;
	if ((in->settings = malloc(in->settings_len + 1)) == NULL)
		goto nomem;
	if (in->settings_len > 0)
		memcpy(in->settings, e[3]->str, in->settings_len);
	in->settings[in->settings_len] = '\0';
	*out = in;
	return STORE_OK;
nomem:
	store_install_free(in);
	return rd_nomem(s);
}

static int
rd_install_read(struct store *s, const char *token, const char *h,
    struct store_install **out)
{
	char key[RD_KEY_MAX];
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc, clear = 0;

	store__rd_key(key, sizeof(key), "bm:inst:", h);
	store__rd_init(&a);
	store__rd_str(&a, "HMGET");
	store__rd_str(&a, key);
	store__rd_str(&a, "id");
	store__rd_str(&a, "secret");
	store__rd_str(&a, "created");
	store__rd_str(&a, "settings");
	if ((rc = store__rd_cmd(s, "getting installation", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	rc = rd_install_from(s, token, rep, out, &clear);
	freeReplyObject(rep);
	if (rc == STORE_OK && clear &&
	    (rc = rd_install_reseal(s, key, *out)) != STORE_OK) {
		store_install_free(*out);
		*out = NULL;
	}
	return rc;
}

int
store__rd_install_record(struct store *s, const char *token,
    const void *settings, size_t settings_len, struct store_install **out)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], idkey[RD_KEY_MAX];
	char id[STORE_INSTALL_ID_LEN + 1], secret[STORE_SECRET_LEN + 1];
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char *sealed = NULL;
	size_t tlen, slen = 0;
	int rc, clear = 0;

	if (out != NULL)
		*out = NULL;
	if ((rc = rd_hash(s, "token", token, &tlen, h)) != STORE_OK ||
	    (rc = store__check_value(s, "settings", settings_len)) !=
	    STORE_OK)
		return rc;
	if (store__svc_random_hex(id, STORE_INSTALL_ID_LEN) != 0 ||
	    store__svc_random_hex(secret, STORE_SECRET_LEN) != 0) {
		snprintf(s->err, sizeof(s->err), "redis: getrandom: %s",
		    strerror(errno));
		return STORE_ERROR;
	}
	if ((rc = rd_seal_token(s, h, token, tlen, &sealed, &slen)) !=
	    STORE_OK ||
	    (rc = rd_seal_secret(s, id, secret, &sealed, slen)) != STORE_OK) {
		store__crypto_wipe(secret, sizeof(secret));
		free(sealed);
		return rc;
	}
	store__rd_key(key, sizeof(key), "bm:inst:", h);
	store__rd_key(idkey, sizeof(idkey), "bm:instid:", id);
	store__rd_init(&a);
	store__rd_str(&a, key);
	store__rd_str(&a, idkey);
	store__rd_str(&a, "bm:insts");
	store__rd_str(&a, "bm:tok");
	store__rd_add(&a, h, STORE__HASH_LEN);
	store__rd_str(&a, id);
	store__rd_add(&a, sealed + slen, STORE__INST_SEALED);
	store__rd_int(&a, (long long)time(NULL));
	store__rd_str(&a, settings != NULL ? "1" : "0");
	store__rd_add(&a, settings != NULL ? settings : "", settings != NULL ?
	    settings_len : 0);
	store__rd_add(&a, sealed, slen);
	rc = store__rd_eval(s, "recording installation", 1,
	    RD_SCRIPT_INSTALL, 4, &a, &rep);
	store__crypto_wipe(secret, sizeof(secret));
	free(sealed);
	if (rc != STORE_OK)
		return rc;
	if (out != NULL && (rc = rd_install_from(s, token, rep, out,
	    &clear)) == STORE_NOTFOUND) {
		snprintf(s->err, sizeof(s->err), "redis: recording "
		    "installation: not found after writing it");
		rc = STORE_ERROR;
	}
	freeReplyObject(rep);
	if (out != NULL && rc == STORE_OK && clear &&
	    (rc = rd_install_reseal(s, key, *out)) != STORE_OK) {
		store_install_free(*out);
		*out = NULL;
	}
	return rc;
}

int
store__rd_install_get(struct store *s, const char *token,
    struct store_install **out)
{
	char h[STORE__HASH_LEN + 1];
	size_t tlen;
	int rc;

	*out = NULL;
	if ((rc = rd_hash(s, "token", token, &tlen, h)) != STORE_OK)
		return rc;
	return rd_install_read(s, token, h, out);
}

int
store__rd_install_get_by_id(struct store *s, const char *install_id,
    struct store_install **out)
{
	char key[RD_KEY_MAX], h[STORE__HASH_LEN + 1], *token = NULL;
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	*out = NULL;
	if (install_id == NULL ||
	    strnlen(install_id, STORE_INSTALL_ID_LEN + 1) !=
	    STORE_INSTALL_ID_LEN || !rd_is_hex(install_id,
	    STORE_INSTALL_ID_LEN))
		return store__einval(s, "install id is not %d lowercase hex "
		    "digits", STORE_INSTALL_ID_LEN);
	store__rd_key(key, sizeof(key), "bm:instid:", install_id);
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_str(&a, key);
	if ((rc = store__rd_cmd(s, "getting installation", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING || rep->len != STORE__HASH_LEN) {
		freeReplyObject(rep);
		return STORE_NOTFOUND;
	}
	memcpy(h, rep->str, STORE__HASH_LEN + 1);
	freeReplyObject(rep);
	if ((rc = rd_token(s, h, &token)) == STORE_OK)
		rc = rd_install_read(s, token, h, out);
	free(token);
	return rc;
}

int
store__rd_install_settings_update(struct store *s, const char *token,
    store_settings_fn fn, void *arg)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], ver[32];
	struct store__rd_args a;
	redisReply *rep = NULL;
	char *nv = NULL;
	size_t tlen, nlen = 0;
	unsigned tries;
	int rc;

	if ((rc = rd_hash(s, "token", token, &tlen, h)) != STORE_OK)
		return rc;
	store__rd_key(key, sizeof(key), "bm:inst:", h);
	/* Optimistic: read, compute, write if the version did not move. */
	for (tries = 0; tries <= s->retries; tries++) {
		store__rd_init(&a);
		store__rd_str(&a, "HMGET");
		store__rd_str(&a, key);
		store__rd_str(&a, "ver");
		store__rd_str(&a, "settings");
		if ((rc = store__rd_cmd(s, "reading settings", 1, &a, &rep)) !=
		    STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING) {
			freeReplyObject(rep);
			return STORE_NOTFOUND;
		}
		snprintf(ver, sizeof(ver), "%s", rep->element[0]->str);
		nv = NULL;
		if (fn(arg, rep->element[1]->type == REDIS_REPLY_STRING ?
		    rep->element[1]->str : "", rep->element[1]->type ==
		    REDIS_REPLY_STRING ? rep->element[1]->len : 0, &nv,
		    &nlen) != 0) {
			freeReplyObject(rep);
			free(nv);
			return store__einval(s, "settings left as they are");
		}
		freeReplyObject(rep);
		rep = NULL;
		if ((rc = store__check_value(s, "settings", nlen)) != STORE_OK) {
			free(nv);
			return rc;
		}
		store__rd_init(&a);
		store__rd_str(&a, key);
		store__rd_str(&a, ver);
		store__rd_add(&a, nv != NULL ? nv : "", nv != NULL ? nlen : 0);
		rc = store__rd_eval(s, "writing settings", 1,
		    RD_SCRIPT_SETTINGS, 1, &a, &rep);
		free(nv);
		if (rc != STORE_OK)
			return rc;
		rc = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
		freeReplyObject(rep);
		if (rc == 1)
			return STORE_OK;
		if (rc == -1)
			return STORE_NOTFOUND;
	}
	snprintf(s->err, sizeof(s->err), "redis: writing settings: busy, gave "
	    "up after %u tries", tries);
	return STORE_ERROR;
}

/* Prepares install_put's script call; *sealed new (the sealed token, *slen
 * bytes, then the sealed secret). */
static int
rd_install_put_args(struct store *s, const struct store_install *in,
    char *h, char *key, char *idkey, unsigned char **sealed, size_t *slen,
    char *created, size_t csize, struct store__rd_args *a)
{
	size_t tlen;
	int rc;

	if ((rc = store__check_install(s, in)) != STORE_OK ||
	    (rc = rd_hash(s, "token", in->token, &tlen, h)) != STORE_OK ||
	    (rc = rd_seal_token(s, h, in->token, tlen, sealed, slen)) !=
	    STORE_OK ||
	    (rc = rd_seal_secret(s, in->install_id, in->secret, sealed,
	    *slen)) != STORE_OK)
		return rc;
	store__rd_key(key, RD_KEY_MAX, "bm:inst:", h);
	store__rd_key(idkey, RD_KEY_MAX, "bm:instid:", in->install_id);
	snprintf(created, csize, "%lld", (long long)in->created);
	store__rd_init(a);
	store__rd_str(a, key);
	store__rd_str(a, idkey);
	store__rd_str(a, "bm:insts");
	store__rd_str(a, "bm:tok");
	store__rd_add(a, h, STORE__HASH_LEN);
	store__rd_str(a, in->install_id);
	store__rd_add(a, *sealed + *slen, STORE__INST_SEALED);
	store__rd_str(a, created);
	store__rd_add(a, in->settings != NULL ? in->settings : "",
	    in->settings != NULL ? in->settings_len : 0);
	store__rd_add(a, *sealed, *slen);
	return STORE_OK;
}

int
store__rd_install_put(struct store *s, const struct store_install *in)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], idkey[RD_KEY_MAX];
	char created[32];
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char *sealed = NULL;
	size_t slen = 0;
	int rc;

	if ((rc = rd_install_put_args(s, in, h, key, idkey, &sealed, &slen,
	    created, sizeof(created), &a)) == STORE_OK &&
	    (rc = store__rd_eval(s, "writing installation", 1,
	    RD_SCRIPT_INSTALL_PUT, 4, &a, &rep)) == STORE_OK) {
		if (rep->type == REDIS_REPLY_INTEGER && rep->integer < 0)
			rc = store__einval(s, "install id belongs to another "
			    "token");
		freeReplyObject(rep);
	}
	free(sealed);
	return rc;
}

int
store__rd_install_delete(struct store *s, const char *token, size_t *pairs)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], b2e[RD_KEY_MAX];
	char e2b[RD_KEY_MAX], st[RD_KEY_MAX];
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t tlen, js = 0;
	int rc, any;

	if (pairs != NULL)
		*pairs = 0;
	if ((rc = rd_hash(s, "token", token, &tlen, h)) != STORE_OK)
		return rc;
	store__rd_key(key, sizeof(key), "bm:inst:", h);
	rd_pair_keys(h, b2e, e2b);
	store__rd_key(st, sizeof(st), "bm:st:", h);
	store__rd_init(&a);
	store__rd_str(&a, key);
	store__rd_str(&a, b2e);
	store__rd_str(&a, e2b);
	store__rd_str(&a, st);
	store__rd_add(&a, h, STORE__HASH_LEN);
	if ((rc = store__rd_eval(s, "deleting installation", 1,
	    RD_SCRIPT_UNINSTALL, 4, &a, &rep)) != STORE_OK)
		return rc;
	any = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->integer != 0;
	if (pairs != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements == 2)
		*pairs = (size_t)rep->element[1]->integer;
	freeReplyObject(rep);
	if (store__rd_js(s)) {
		/* The Node library's keys go in SCAN steps. */
		if ((rc = store__rd_ids_delete_all(s, token, &js)) != STORE_OK)
			return rc;
		if (pairs != NULL)
			*pairs = js;
		any = any || js > 0;
	}
	return any ? STORE_OK : STORE_NOTFOUND;
}

struct rd_inst_walk {
	store_install_fn fn;
	void *arg;
	int stop;
};

static int
rd_inst_member(struct store *s, void *arg, const char *m, size_t len)
{
	struct rd_inst_walk *w = arg;
	struct store_install *in = NULL;
	char h[STORE__HASH_LEN + 1], *token = NULL;
	int rc;

	if (len != STORE__HASH_LEN)
		return STORE_OK;
	memcpy(h, m, len);
	h[len] = '\0';
	if ((rc = rd_token(s, h, &token)) == STORE_NOTFOUND)
		return STORE_OK;
	if (rc == STORE_OK && (rc = rd_install_read(s, token, h, &in)) ==
	    STORE_OK && (w->stop = w->fn(w->arg, in)) != 0)
		rc = 1;
	if (rc == STORE_NOTFOUND)
		rc = STORE_OK; /* deleted meanwhile */
	store_install_free(in);
	free(token);
	return rc;
}

int
store__rd_install_foreach(struct store *s, store_install_fn fn, void *arg)
{
	struct rd_inst_walk w = { .fn = fn, .arg = arg };
	int rc = rd_sscan(s, "bm:insts", rd_inst_member, &w);

	return w.stop != 0 ? w.stop : rc;
}

/* --- state ------------------------------------------------------------- */

/* What a secret state value is bound to: the token's hash, NUL, its name;
 * its length. */
static size_t
rd_state_aad(char *buf, const char *h, const char *name, size_t nlen)
{
	memcpy(buf, h, STORE__HASH_LEN);
	buf[STORE__HASH_LEN] = '\0';
	memcpy(buf + STORE__HASH_LEN + 1, name, nlen);
	return STORE__HASH_LEN + 1 + nlen;
}

/* Opens v (vlen bytes) of state name of hash h into *out (new), *olen:
 * a secret name's sealed value unsealed, any other copied. */
static int
rd_state_value(struct store *s, const char *h, const char *name,
    size_t nlen, const char *v, size_t vlen, char **out, size_t *olen)
{
	char aad[STORE__HASH_LEN + 1 + STORE_ID_MAX];

	if (store__state_secret(name, nlen)) {
		if (store__state_open(s, aad, rd_state_aad(aad, h, name, nlen),
		    v, vlen, out, olen) != 0) {
			snprintf(s->err, sizeof(s->err), "redis: a secret "
			    "state value does not decrypt: BM_SECRET_KEY_FILE "
			    "is not the key it was sealed with, or it is "
			    "damaged");
			return STORE_ERROR;
		}
		return STORE_OK;
	}
	if ((*out = malloc(vlen + 1)) == NULL)
		return rd_nomem(s);
	memcpy(*out, v, vlen);
	(*out)[vlen] = '\0';
	*olen = vlen;
	return STORE_OK;
}

int
store__rd_state_get(struct store *s, const char *token, const char *name,
    char **val, size_t *len)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX];
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t tlen, nlen;
	int rc;

	*val = NULL;
	if (len != NULL)
		*len = 0;
	if ((rc = rd_hash(s, "token", token, &tlen, h)) != STORE_OK ||
	    (rc = store__check_id(s, "state name", name, &nlen)) != STORE_OK)
		return rc;
	store__rd_key(key, sizeof(key), "bm:st:", h);
	store__rd_init(&a);
	store__rd_str(&a, "HGET");
	store__rd_str(&a, key);
	store__rd_add(&a, name, nlen);
	if ((rc = store__rd_cmd(s, "reading state", 1, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING)
		rc = STORE_NOTFOUND;
	else {
		size_t olen = 0;

		rc = rd_state_value(s, h, name, nlen, rep->str, rep->len, val,
		    &olen);
		if (rc == STORE_OK && len != NULL)
			*len = olen;
	}
	freeReplyObject(rep);
	return rc;
}

/* Prepares a state write (val NULL: a delete): *sealed new (the sealed
 * token, *slen bytes, then a secret name's sealed value). */
static int
rd_state_args(struct store *s, const char *token, const char *name,
    const void *val, size_t len, char *h, char *key, unsigned char **sealed,
    size_t *slen, struct store__rd_args *a)
{
	size_t tlen, nlen;
	int rc;

	if ((rc = rd_hash(s, "token", token, &tlen, h)) != STORE_OK ||
	    (rc = store__check_id(s, "state name", name, &nlen)) != STORE_OK)
		return rc;
	store__rd_key(key, RD_KEY_MAX, "bm:st:", h);
	store__rd_init(a);
	if (val == NULL) {
		store__rd_str(a, "HDEL");
		store__rd_str(a, key);
		store__rd_add(a, name, nlen);
		return STORE_OK;
	}
	if ((rc = store__check_value(s, "state value", len)) != STORE_OK ||
	    (rc = rd_seal_token(s, h, token, tlen, sealed, slen)) != STORE_OK)
		return rc;
	if (store__state_secret(name, nlen)) {
		char aad[STORE__HASH_LEN + 1 + STORE_ID_MAX];
		unsigned char *sv = NULL, *nb;
		size_t svlen = 0;

		if (store__state_seal(s, aad, rd_state_aad(aad, h, name, nlen),
		    val, len, &sv, &svlen) != 0)
			return rd_nomem(s);
		if ((nb = realloc(*sealed, *slen + svlen)) == NULL) {
			free(sv);
			return rd_nomem(s);
		}
		memcpy(nb + *slen, sv, svlen);
		free(sv);
		*sealed = nb;
		val = nb + *slen;
		len = svlen;
	}
	store__rd_str(a, key);
	store__rd_str(a, "bm:sts");
	store__rd_str(a, "bm:tok");
	store__rd_add(a, name, nlen);
	store__rd_add(a, len > 0 ? val : "", len);
	store__rd_add(a, h, STORE__HASH_LEN);
	store__rd_add(a, *sealed, *slen);
	return STORE_OK;
}

int
store__rd_state_set(struct store *s, const char *token, const char *name,
    const void *val, size_t len)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX];
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char *sealed = NULL;
	size_t slen = 0;
	int rc;

	if (val == NULL && len > 0)
		return store__einval(s, "state value missing");
	if ((rc = rd_state_args(s, token, name, val != NULL ? val : "", len,
	    h, key, &sealed, &slen, &a)) == STORE_OK &&
	    (rc = store__rd_eval(s, "writing state", 1, RD_SCRIPT_STATE_SET,
	    3, &a, &rep)) == STORE_OK)
		freeReplyObject(rep);
	free(sealed);
	return rc;
}

int
store__rd_state_delete(struct store *s, const char *token, const char *name)
{
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX];
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	if ((rc = rd_state_args(s, token, name, NULL, 0, h, key, NULL, NULL,
	    &a)) == STORE_OK &&
	    (rc = store__rd_cmd(s, "deleting state", 1, &a, &rep)) ==
	    STORE_OK) {
		rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ?
		    STORE_OK : STORE_NOTFOUND;
		freeReplyObject(rep);
	}
	return rc;
}

/* --- delivery claims --------------------------------------------------- */

static int
rd_seen_key(struct store *s, const char *install_id, const char *id,
    char **key, size_t *klen)
{
	size_t dlen;

	*key = NULL;
	if (install_id == NULL ||
	    strnlen(install_id, STORE_INSTALL_ID_LEN + 1) !=
	    STORE_INSTALL_ID_LEN || !rd_is_hex(install_id,
	    STORE_INSTALL_ID_LEN))
		return store__einval(s, "install id is not %d lowercase hex "
		    "digits", STORE_INSTALL_ID_LEN);
	if (id == NULL || id[0] == '\0' ||
	    (dlen = strnlen(id, STORE_DELIVERY_ID_MAX + 1)) >
	    STORE_DELIVERY_ID_MAX)
		return store__einval(s, "delivery id is empty or longer than "
		    "%d bytes", STORE_DELIVERY_ID_MAX);
	*klen = 8 + STORE_INSTALL_ID_LEN + 1 + dlen;
	if ((*key = malloc(*klen + 1)) == NULL)
		return rd_nomem(s);
	snprintf(*key, *klen + 1, "bm:seen:%s:%s", install_id, id);
	return STORE_OK;
}

int
store__rd_seen_key(struct store *s, const char *install_id, const char *id,
    char **key, size_t *klen)
{
	return rd_seen_key(s, install_id, id, key, klen);
}

int
store__rd_delivery_claim(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s, int *dup)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	char *key = NULL;
	size_t klen;
	int rc;

	*dup = 0;
	if ((rc = rd_seen_key(s, install_id, id, &key, &klen)) != STORE_OK)
		return rc;
	if (ttl_s == 0)
		goto out; /* nothing is remembered for no time at all */
	/* The time compared is the caller's; Redis's EXPIRE forgets it. */
	store__rd_init(&a);
	store__rd_add(&a, key, klen);
	store__rd_int(&a, (long long)now);
	store__rd_int(&a, (long long)ttl_s);
	if ((rc = store__rd_eval(s, "claiming a delivery", 0, RD_SCRIPT_CLAIM,
	    1, &a, &rep)) == STORE_OK) {
		*dup = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
		freeReplyObject(rep);
	}
out:
	free(key);
	return rc;
}

int
store__rd_delivery_release(struct store *s, const char *install_id,
    const char *id)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	char *key = NULL;
	size_t klen;
	int rc;

	if ((rc = rd_seen_key(s, install_id, id, &key, &klen)) != STORE_OK)
		return rc;
	store__rd_init(&a);
	store__rd_str(&a, "DEL");
	store__rd_add(&a, key, klen);
	if ((rc = store__rd_cmd(s, "releasing a delivery", 1, &a, &rep)) ==
	    STORE_OK) {
		rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ?
		    STORE_OK : STORE_NOTFOUND;
		freeReplyObject(rep);
	}
	free(key);
	return rc;
}

/* --- purge ------------------------------------------------------------- */

int
store__rd_purge_step(struct store *s, size_t max_keys, size_t *deleted,
    int *more)
{
	struct store__rd_args a;
	redisReply *rep = NULL, *f;
	char tomb[64];
	size_t done = 0, i, n;
	int rc = STORE_OK, gone;

	if (deleted != NULL)
		*deleted = 0;
	*more = 0;
	if (max_keys == 0)
		max_keys = 1;
	while (done < max_keys) {
		store__rd_init(&a);
		store__rd_str(&a, "LINDEX");
		store__rd_str(&a, "bm:tombs");
		store__rd_str(&a, "0");
		if ((rc = store__rd_cmd(s, "purging", 1, &a, &rep)) != STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_STRING ||
		    rep->len >= sizeof(tomb)) {
			freeReplyObject(rep);
			break;
		}
		memcpy(tomb, rep->str, rep->len + 1);
		freeReplyObject(rep);
		/* One bounded HSCAN page of the tomb, then HDEL of it. */
		store__rd_init(&a);
		store__rd_str(&a, "HSCAN");
		store__rd_str(&a, tomb);
		store__rd_str(&a, "0");
		store__rd_str(&a, "COUNT");
		store__rd_int(&a, (long long)(max_keys - done < RD_SCAN_COUNT ?
		    max_keys - done : RD_SCAN_COUNT));
		if ((rc = store__rd_cmd(s, "purging", 1, &a, &rep)) != STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(rep);
			snprintf(s->err, sizeof(s->err), "redis: purging: "
			    "unexpected answer");
			return STORE_ERROR;
		}
		f = rep->element[1];
		n = f->elements / 2;
		gone = n == 0;
		if (n > max_keys - done)
			n = max_keys - done;
		for (i = 0; i < n; ) {
			size_t k;

			store__rd_init(&a);
			store__rd_str(&a, "HDEL");
			store__rd_str(&a, tomb);
			for (k = 0; k < STORE__RD_ARGS_MAX - 2 && i < n;
			    k++, i++)
				store__rd_add(&a, f->element[2 * i]->str,
				    f->element[2 * i]->len);
			{
				redisReply *r2 = NULL;

				if ((rc = store__rd_cmd(s, "purging", 1, &a,
				    &r2)) != STORE_OK) {
					freeReplyObject(rep);
					return rc;
				}
				if (r2->type == REDIS_REPLY_INTEGER)
					done += (size_t)r2->integer;
				freeReplyObject(r2);
			}
		}
		freeReplyObject(rep);
		rep = NULL;
		if (gone) {
			/* Empty (an emptied hash no longer exists): drop it. */
			store__rd_init(&a);
			store__rd_str(&a, "LREM");
			store__rd_str(&a, "bm:tombs");
			store__rd_str(&a, "1");
			store__rd_str(&a, tomb);
			if ((rc = store__rd_cmd(s, "purging", 1, &a, &rep)) !=
			    STORE_OK)
				return rc;
			freeReplyObject(rep);
		}
	}
	store__rd_init(&a);
	store__rd_str(&a, "LLEN");
	store__rd_str(&a, "bm:tombs");
	if ((rc = store__rd_cmd(s, "purging", 1, &a, &rep)) != STORE_OK)
		return rc;
	*more = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
	freeReplyObject(rep);
	if (deleted != NULL)
		*deleted = done;
	return STORE_OK;
}

/* --- export, batches, verification ------------------------------------- */

struct rd_export {
	const struct store_export_cbs *cbs;
	void *arg;
	int stop;
	char *token;    /* of the hash being walked */
	size_t tlen;
};

static int
rd_export_state_field(struct store *s, void *arg, const char *f,
    size_t flen, const char *v, size_t vlen)
{
	struct rd_export *x = arg;
	char h[STORE__HASH_LEN + 1];
	char *name = strndup(f, flen), *val = NULL;
	size_t tlen, olen = 0;
	int rc;

	/* Secret values in clear: the export is the operator's backup. */
	if (name == NULL)
		rc = rd_nomem(s);
	else if ((rc = rd_hash(s, "token", x->token, &tlen, h)) == STORE_OK &&
	    (rc = rd_state_value(s, h, name, flen, v, vlen, &val, &olen)) ==
	    STORE_OK && (x->stop = x->cbs->state(x->arg, x->token, name, val,
	    olen)) != 0)
		rc = 1;
	if (val != NULL)
		store__crypto_wipe(val, olen);
	free(name);
	free(val);
	return rc;
}

/* A member h of bm:pairs or bm:sts: walks its hash. */
static int
rd_export_member(struct store *s, void *arg, const char *m, size_t len,
    int pairs)
{
	struct rd_export *x = arg;
	struct rd_walk w = { .fn = x->cbs->pair, .arg = x->arg };
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], e2b[RD_KEY_MAX];
	int rc;

	if (len != STORE__HASH_LEN)
		return STORE_OK;
	memcpy(h, m, len);
	h[len] = '\0';
	if ((rc = rd_token(s, h, &x->token)) != STORE_OK)
		return rc == STORE_NOTFOUND ? STORE_OK : rc;
	x->tlen = strlen(x->token);
	if (pairs) {
		w.integ = x->token;
		rd_pair_keys(h, key, e2b);
		rc = rd_hscan(s, key, rd_pair_field, &w);
		x->stop = w.stop;
	} else {
		store__rd_key(key, sizeof(key), "bm:st:", h);
		rc = rd_hscan(s, key, rd_export_state_field, x);
	}
	free(x->token);
	x->token = NULL;
	return rc;
}

static int
rd_export_pairs(struct store *s, void *arg, const char *m, size_t len)
{
	return rd_export_member(s, arg, m, len, 1);
}

static int
rd_export_states(struct store *s, void *arg, const char *m, size_t len)
{
	return rd_export_member(s, arg, m, len, 0);
}

/* js layout: "token:b:bid" keys, split at the first ":b:". */
static int
rd_export_js_key(struct store *s, void *arg, const char *key, size_t len)
{
	struct rd_export *x = arg;
	struct rd_walk w = { .fn = x->cbs->pair, .arg = x->arg };
	const char *sep = NULL;
	char *token;
	size_t i;
	int rc;

	for (i = 1; i + 3 <= len; i++)
		if (memcmp(key + i, ":b:", 3) == 0) {
			sep = key + i;
			break;
		}
	if (sep == NULL)
		return STORE_OK;
	if ((token = strndup(key, (size_t)(sep - key))) == NULL)
		return rd_nomem(s);
	w.integ = token;
	w.tlen = (size_t)(sep - key);
	rc = rd_js_pair_key(s, &w, key, len);
	x->stop = w.stop;
	free(token);
	return rc;
}

int
store__rd_export(struct store *s, const struct store_export_cbs *cbs,
    void *arg)
{
	struct rd_export x = { .cbs = cbs, .arg = arg };
	int rc = STORE_OK;

	/* Not a snapshot: Redis has no read transaction over a walk. */
	if (cbs->install != NULL)
		rc = store__rd_install_foreach(s, cbs->install, arg);
	if (rc == STORE_OK && cbs->pair != NULL)
		rc = store__rd_js(s) ? rd_scan(s, "*:b:*", rd_export_js_key,
		    &x) : rd_sscan(s, "bm:pairs", rd_export_pairs, &x);
	if (rc == STORE_OK && cbs->state != NULL)
		rc = rd_sscan(s, "bm:sts", rd_export_states, &x);
	free(x.token);
	return x.stop != 0 ? x.stop : rc;
}

/* Adds op to batch b (validated there); buffers kept in b. */
static int
rd_batch_op(struct store *s, struct store__rd_batch *b,
    const struct store_op *op)
{
	struct rd_pair_call c;
	struct store__rd_args a;
	enum store__rd_script id;
	char h[STORE__HASH_LEN + 1], key[RD_KEY_MAX], idkey[RD_KEY_MAX];
	char created[32];
	unsigned char *sealed = NULL;
	size_t slen = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	switch (op->kind) {
	case STORE_OP_IDS_SAVE:
	case STORE_OP_IDS_DELETE:
		rc = rd_pair_prepare(s, op->a, op->b, op->c,
		    op->kind == STORE_OP_IDS_SAVE, &c, &a, &id);
		if (rc == STORE_OK && store__rd_batch_add(b, (int)id,
		    rd_pair_nkeys(id), &a) < 0)
			rc = rd_nomem(s);
		rd_pair_call_free(&c);
		return rc;
	case STORE_OP_INSTALL_PUT:
		if (op->install == NULL)
			return store__einval(s, "installation missing");
		/* The id's owner is checked by the script: a batch cannot
		 * stop half-way, so check it first. */
		rc = rd_install_put_args(s, op->install, h, key, idkey,
		    &sealed, &slen, created, sizeof(created), &a);
		if (rc == STORE_OK && store__rd_batch_add(b,
		    RD_SCRIPT_INSTALL_PUT, 4, &a) < 0)
			rc = rd_nomem(s);
		free(sealed);
		return rc;
	case STORE_OP_STATE_SET:
		if (op->val == NULL && op->len > 0)
			return store__einval(s, "state value missing");
		rc = rd_state_args(s, op->a, op->b, op->val != NULL ? op->val :
		    "", op->len, h, key, &sealed, &slen, &a);
		if (rc == STORE_OK && store__rd_batch_add(b,
		    RD_SCRIPT_STATE_SET, 3, &a) < 0)
			rc = rd_nomem(s);
		free(sealed);
		return rc;
	case STORE_OP_STATE_DELETE:
		rc = rd_state_args(s, op->a, op->b, NULL, 0, h, key, NULL,
		    NULL, &a);
		if (rc == STORE_OK && store__rd_batch_add(b, -1, 0, &a) < 0)
			rc = rd_nomem(s);
		return rc;
	default:
		return store__einval(s, "unknown operation %d",
		    (int)op->kind);
	}
}

/* Every op into b, validated; *bad the index of a refused one. */
int store__rd_batch_ops(struct store *s, struct store__rd_batch *b,
    const struct store_op *ops, size_t n, size_t *bad);

int
store__rd_batch_ops(struct store *s, struct store__rd_batch *b,
    const struct store_op *ops, size_t n, size_t *bad)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = rd_batch_op(s, b, &ops[i])) != STORE_OK) {
			if (bad != NULL)
				*bad = i;
			return rc;
		}
	return STORE_OK;
}

/* install_put ops: an install id another token holds refuses the batch
 * before anything is sent (a script cannot undo the others). */
static int
rd_check_owners(struct store *s, const struct store_op *ops, size_t n,
    size_t *bad)
{
	struct store_install *cur = NULL;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (ops[i].kind != STORE_OP_INSTALL_PUT)
			continue;
		rc = store__rd_install_get_by_id(s,
		    ops[i].install->install_id, &cur);
		if (rc == STORE_OK && strcmp(cur->token,
		    ops[i].install->token) != 0)
			rc = store__einval(s, "install id belongs to another "
			    "token");
		else if (rc == STORE_NOTFOUND)
			rc = STORE_OK;
		store_install_free(cur);
		cur = NULL;
		if (rc != STORE_OK) {
			if (bad != NULL)
				*bad = i;
			return rc;
		}
	}
	return STORE_OK;
}

int
store__rd_apply(struct store *s, const struct store_op *ops, size_t n,
    size_t *bad)
{
	struct store__rd_batch b;
	redisReply *rep = NULL;
	int rc;

	store__rd_batch_init(&b);
	if ((rc = store__rd_batch_ops(s, &b, ops, n, bad)) == STORE_OK &&
	    (rc = rd_check_owners(s, ops, n, bad)) == STORE_OK &&
	    b.n > 0 &&
	    (rc = store__rd_exec(s, "applying a batch", NULL, NULL, NULL, &b,
	    &rep)) == STORE_OK)
		freeReplyObject(rep);
	store__rd_batch_free(&b);
	return rc;
}

struct rd_verify {
	store_problem_fn fn;
	void *arg;
	size_t problems;
	const char *h;
	char *token;
	int dir; /* 0: b2e walked, 1: e2b walked */
	char b2e[RD_KEY_MAX], e2b[RD_KEY_MAX];
};

static int
rd_verify_field(struct store *s, void *arg, const char *f, size_t flen,
    const char *v, size_t vlen)
{
	struct rd_verify *x = arg;
	struct store__rd_args a;
	redisReply *rep = NULL, *fw, *bk;
	char *k = NULL, *val = NULL;
	int rc;

	/* Read both directions at once: a save running meanwhile is seen
	 * whole or not at all. */
	store__rd_init(&a);
	store__rd_str(&a, x->dir == 0 ? x->b2e : x->e2b);
	store__rd_str(&a, x->dir == 0 ? x->e2b : x->b2e);
	store__rd_add(&a, f, flen);
	store__rd_add(&a, v, vlen);
	if ((rc = store__rd_eval(s, "verifying", 1, RD_SCRIPT_PAIR_CHECK, 2,
	    &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
		freeReplyObject(rep);
		return STORE_OK;
	}
	fw = rep->element[0];
	bk = rep->element[1];
	if (fw->type == REDIS_REPLY_STRING && (bk->type != REDIS_REPLY_STRING ||
	    bk->len != flen || memcmp(bk->str, f, flen) != 0)) {
		k = strndup(f, flen);
		val = strndup(fw->str, fw->len);
		if (k == NULL || val == NULL)
			rc = rd_nomem(s);
		else {
			x->problems++;
			if (x->fn != NULL)
				x->fn(x->arg, x->dir == 0 ?
				    (bk->type == REDIS_REPLY_STRING ?
				    "botmatic->ext entry whose reverse differs" :
				    "botmatic->ext entry without reverse") :
				    (bk->type == REDIS_REPLY_STRING ?
				    "ext->botmatic entry whose reverse differs" :
				    "ext->botmatic entry without reverse"),
				    x->token != NULL ? x->token : x->h,
				    x->dir == 0 ? k : val, x->dir == 0 ? val : k);
		}
	}
	free(k);
	free(val);
	freeReplyObject(rep);
	return rc;
}

static int
rd_verify_member(struct store *s, void *arg, const char *m, size_t len)
{
	struct rd_verify *x = arg;
	char h[STORE__HASH_LEN + 1];
	int rc;

	if (len != STORE__HASH_LEN)
		return STORE_OK;
	memcpy(h, m, len);
	h[len] = '\0';
	x->h = h;
	if ((rc = rd_token(s, h, &x->token)) != STORE_OK &&
	    rc != STORE_NOTFOUND)
		return rc;
	rd_pair_keys(h, x->b2e, x->e2b);
	x->dir = 0;
	rc = rd_hscan(s, x->b2e, rd_verify_field, x);
	if (rc == STORE_OK) {
		x->dir = 1;
		rc = rd_hscan(s, x->e2b, rd_verify_field, x);
	}
	free(x->token);
	x->token = NULL;
	return rc;
}

/* js layout: each "T:b:B" = E must have "T:e:E" = B, and back. */
struct rd_verify_js {
	store_problem_fn fn;
	void *arg;
	size_t problems;
	char x; /* 'b' or 'e': the direction walked */
};

static int
rd_verify_js_key(struct store *s, void *arg, const char *key, size_t len)
{
	struct rd_verify_js *x = arg;
	char sep[4] = { ':', x->x, ':', '\0' }, *tok = NULL, *id = NULL;
	char *rk = NULL, *val = NULL;
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t i, tl = 0, rkl;
	int rc = STORE_OK;

	for (i = 1; i + 3 <= len; i++)
		if (memcmp(key + i, sep, 3) == 0) {
			tl = i;
			break;
		}
	if (tl == 0)
		return STORE_OK;
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_add(&a, key, len);
	if ((rc = store__rd_cmd(s, "verifying", 1, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING)
		goto out;
	if ((tok = strndup(key, tl)) == NULL ||
	    (id = strndup(key + tl + 3, len - tl - 3)) == NULL ||
	    (val = strndup(rep->str, rep->len)) == NULL ||
	    (rk = rd_js_key(tok, tl, x->x == 'b' ? 'e' : 'b', val,
	    rep->len, &rkl)) == NULL) {
		rc = rd_nomem(s);
		goto out;
	}
	freeReplyObject(rep);
	rep = NULL;
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_add(&a, rk, rkl);
	if ((rc = store__rd_cmd(s, "verifying", 1, &a, &rep)) != STORE_OK)
		goto out;
	if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, id) != 0) {
		x->problems++;
		if (x->fn != NULL)
			x->fn(x->arg, x->x == 'b' ?
			    (rep->type == REDIS_REPLY_STRING ?
			    "botmatic->ext entry whose reverse differs" :
			    "botmatic->ext entry without reverse") :
			    (rep->type == REDIS_REPLY_STRING ?
			    "ext->botmatic entry whose reverse differs" :
			    "ext->botmatic entry without reverse"), tok,
			    x->x == 'b' ? id : val, x->x == 'b' ? val : id);
	}
out:
	if (rep != NULL)
		freeReplyObject(rep);
	free(tok);
	free(id);
	free(val);
	free(rk);
	return rc;
}

int
store__rd_verify(struct store *s, store_problem_fn fn, void *arg,
    size_t *problems)
{
	struct rd_verify x = { .fn = fn, .arg = arg };
	struct rd_verify_js j = { .fn = fn, .arg = arg, .x = 'b' };
	int rc;

	if (problems != NULL)
		*problems = 0;
	if (store__rd_js(s)) {
		rc = rd_scan(s, "*:b:*", rd_verify_js_key, &j);
		if (rc == STORE_OK) {
			j.x = 'e';
			rc = rd_scan(s, "*:e:*", rd_verify_js_key, &j);
		}
		if (problems != NULL)
			*problems = j.problems;
		return rc;
	}
	rc = rd_sscan(s, "bm:pairs", rd_verify_member, &x);
	if (problems != NULL)
		*problems = x.problems;
	return rc;
}
