/*
 * store/redis-jobs.c - the delivery queue on Redis, with the semantics of
 * jobs.c.  Scheduling: a job per HASH (bm:job:<id>), its contact's line a
 * LIST (only the head is runnable), and the heads not yet runnable (new,
 * or a retry's backoff) in the ZSET bm:due by due time.  Hand-out and
 * leases: a STREAM, bm:jready, read through the consumer group bm:jg.  A
 * stream hands out in arrival order only, so a job enters it only once it
 * heads its line and is due: claimers "promote" due heads (a bounded batch,
 * ZREM from bm:due and XADD in the same script), then XREADGROUP ... >
 * hands each to one consumer, named host:pid as a lease records it; the
 * job HASH marks the holder and the lease's end (next_at).  A renew is
 * XCLAIM by the same consumer (JUSTID), which resets the entry's idle time;
 * done, retry, dead and cancel XACK and XDEL the entry in the same script
 * as the job's new state, so the stream stays short and the PEL holds
 * exactly the leased jobs.
 *
 * Takeover: a holder that dies (any host) goes silent; any claimer first
 * runs XAUTOCLAIM with min idle = its lease length (lease_until - now, the
 * BM lease), COUNT 1, and takes such an entry over (its delivery count
 * goes up): Redis's own clock, the same for every host.  Lease lengths
 * are per call in store.h, so the job keeps its holder's (lease_ms) and
 * its lease's end (next_at, the holder's clock): an entry XAUTOCLAIM
 * returns whose holder had a longer lease, not ended by the caller's
 * clock, goes back to its holder (XCLAIM JUSTID); and an entry whose
 * lease has ended by the caller's clock is taken (XCLAIM from the PEL)
 * even when Redis saw it idle for less.
 * store_jobs_release() puts the entries of this host's dead processes back
 * into bm:due at once (XACK, XDEL: due now), and deletes their consumers.
 * An entry whose job is gone (cancelled by an uninstall) or dead is XACKed
 * and XDELed when met.  The group is created (XGROUP CREATE ... MKSTREAM)
 * by the first script that needs the stream, BUSYGROUP ignored.
 *
 * Every change is one script; a job's outcome and its pairs are one
 * MULTI/EXEC, WATCHing the job so a job gone meanwhile applies nothing.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_int.h"

/* Consumers looked at by one store_jobs_release(), and the entries
 * released of each, as jobs.c's 256 leases. */
#define RD_RELEASE_SCAN 256
/* Jobs read per round trip when walking. */
#define RD_JOBS_PAGE 200
/* Jobs of a vanished installation dropped by one claim, at most. */
#define RD_CLAIM_SCAN 64
/* Due heads moved into the ready stream by one claim, at most. */
#define RD_PROMOTE_BATCH 32

/* The fields of a job, in the order scripts return them. */
#define RD_JOB_FIELDS "'h', 'kind', 'contact', 'payload', 'last', " \
	"'attempts', 'next_at', 'created', 'lease_pid', 'dead'"

/* Creates the ready stream and its group once (BUSYGROUP ignored). */
#define RD_LUA_GROUP \
	"local function group()\n" \
	"  if redis.call('EXISTS', 'bm:jready') == 0 then\n" \
	"    redis.pcall('XGROUP', 'CREATE', 'bm:jready', 'bm:jg', '0',\n" \
	"      'MKSTREAM')\n" \
	"  end\n" \
	"end\n"

/* ARGV h, contact, kind, payload, now, lease pid, lease end, unique,
 * host, sealed token ('' for a detached job, whose h is "@" and its
 * owner's name).  Returns {id, flags}.  A job leased at once goes into
 * the stream and, by XCLAIM FORCE, the PEL of its holder. */
const char store__rd_lua_job_add[] = RD_LUA_GROUP
	"local line = 'bm:jc:' .. ARGV[1] .. ':' .. ARGV[2]\n"
	"local head = redis.call('LINDEX', line, 0)\n"
	"if ARGV[8] == '1' and head and\n"
	"    redis.call('HGET', 'bm:job:' .. head, 'kind') == ARGV[3] then\n"
	"  return {tonumber(head), 2}\n"
	"end\n"
	"local id = redis.call('INCR', 'bm:jobseq')\n"
	"local at, pid, host, flags = ARGV[5], '0', '', 0\n"
	"if not head and ARGV[6] ~= '0' then\n"
	"  at, pid, host, flags = ARGV[7], ARGV[6], ARGV[9], 1\n"
	"end\n"
	"redis.call('HSET', 'bm:job:' .. id, 'h', ARGV[1], 'contact', ARGV[2],\n"
	"  'kind', ARGV[3], 'payload', ARGV[4], 'last', '', 'attempts', 0,\n"
	"  'next_at', at, 'created', ARGV[5], 'lease_pid', pid,\n"
	"  'lease_host', host, 'dead', 0, 'sid', '')\n"
	"redis.call('RPUSH', line, id)\n"
	"if flags == 1 then\n"
	"  group()\n"
	"  local sid = redis.call('XADD', 'bm:jready', '*', 'id', id)\n"
	"  redis.call('XCLAIM', 'bm:jready', 'bm:jg', host .. ':' .. pid, 0,\n"
	"    sid, 'FORCE', 'JUSTID')\n"
	"  redis.call('HSET', 'bm:job:' .. id, 'sid', sid, 'lease_ms',\n"
	"    ARGV[7] - ARGV[5])\n"
	"elseif not head then redis.call('ZADD', 'bm:due', at, id) end\n"
	"redis.call('SADD', 'bm:ji:' .. ARGV[1], id)\n"
	"redis.call('ZADD', 'bm:jq', id, id)\n"
	"redis.call('ZADD', 'bm:jall', id, id)\n"
	"redis.call('INCR', 'bm:jpending')\n"
	"if ARGV[10] ~= '' then redis.call('HSETNX', 'bm:tok', ARGV[1], ARGV[10])\n"
	"end\n"
	"return {id, flags}\n";

/*
 * ARGV now, pid, lease end, host, most to drop, min idle (the lease
 * length), promote batch.  Promotes due heads into the stream, then looks
 * for a job: a silent holder's (XAUTOCLAIM), a lapsed lease's (the PEL,
 * by the lease end kept in the job), a new entry (XREADGROUP).  Returns
 * the job's id and fields, or {0, dropped} when nothing is runnable.
 */
const char store__rd_lua_job_claim[] = RD_LUA_RMJOB RD_LUA_GROUP
	"local S, G, now = 'bm:jready', 'bm:jg', tonumber(ARGV[1])\n"
	"local me = ARGV[4] .. ':' .. ARGV[2]\n"
	"local dropped, max = 0, tonumber(ARGV[5])\n"
	"group()\n"
	"for _, id in ipairs(redis.call('ZRANGEBYSCORE', 'bm:due', '-inf',\n"
	"    ARGV[1], 'LIMIT', 0, tonumber(ARGV[7]))) do\n"
	"  redis.call('ZREM', 'bm:due', id)\n"
	"  local k = 'bm:job:' .. id\n"
	"  if redis.call('HGET', k, 'dead') == '0' then\n"
	"    redis.call('HSET', k, 'sid', redis.call('XADD', S, '*', 'id', id))\n"
	"  end\n"
	"end\n"
	/* The entry sid (job id) is in this consumer's PEL: lease it, or
	 * give it back, or drop it.  Returns the fields or nil. */
	"local function take(sid, id, auto)\n"
	"  local k = 'bm:job:' .. id\n"
	"  local j = redis.call('HMGET', k, 'h', 'dead', 'sid', 'lease_pid',\n"
	"    'lease_host', 'next_at', 'lease_ms')\n"
	"  if not j[1] or j[2] ~= '0' or j[3] ~= sid then\n"
	"    redis.call('XACK', S, G, sid)\n"
	"    redis.call('XDEL', S, sid)\n"
	"    return nil\n"
	"  end\n"
	"  if j[4] ~= '0' and tonumber(j[6]) > now and not (auto and\n"
	"      tonumber(j[7] or '0') <= tonumber(ARGV[6])) then\n"
	"    redis.call('XCLAIM', S, G, j[5] .. ':' .. j[4], 0, sid, 'JUSTID')\n"
	"    return nil\n"
	"  end\n"
	"  if j[1]:sub(1, 1) ~= '@' and\n"
	"      redis.call('EXISTS', 'bm:inst:' .. j[1]) == 0 then\n"
	"    rmjob(id)\n"
	"    dropped = dropped + 1\n"
	"    return nil\n"
	"  end\n"
	/* Taken over: the old holder's consumer goes once it holds
	 * nothing, so dead processes of other hosts do not pile up. */
	"  local old = j[5] .. ':' .. j[4]\n"
	"  if j[4] ~= '0' and old ~= me and\n"
	"      #redis.call('XPENDING', S, G, '-', '+', 1, old) == 0 then\n"
	"    redis.call('XGROUP', 'DELCONSUMER', S, G, old)\n"
	"  end\n"
	"  redis.call('HSET', k, 'lease_pid', ARGV[2], 'lease_host', ARGV[4],\n"
	"    'next_at', ARGV[3], 'lease_ms', ARGV[6])\n"
	"  local f = redis.call('HMGET', k, " RD_JOB_FIELDS ")\n"
	"  table.insert(f, 1, id)\n"
	"  return f\n"
	"end\n"
	"local cur = '0-0'\n"
	"for i = 1, 16 do\n"
	"  if dropped >= max then return {0, dropped} end\n"
	"  local r = redis.call('XAUTOCLAIM', S, G, me, ARGV[6], cur,\n"
	"    'COUNT', 1)\n"
	"  local e = r[2][1]\n"
	"  if e and type(e[2]) == 'table' then\n"
	"    local f = take(e[1], e[2][2], true)\n"
	"    if f then return f end\n"
	"  end\n"
	"  cur = r[1]\n"
	"  if cur == '0-0' then break end\n"
	"end\n"
	"for _, p in ipairs(redis.call('XPENDING', S, G, '-', '+', 64)) do\n"
	"  if dropped >= max then return {0, dropped} end\n"
	"  local x = redis.call('XRANGE', S, p[1], p[1])\n"
	"  if #x == 0 then redis.call('XACK', S, G, p[1])\n"
	"  else\n"
	"    local j = redis.call('HMGET', 'bm:job:' .. x[1][2][2],\n"
	"      'next_at', 'sid')\n"
	"    if not j[1] or j[2] ~= p[1] or tonumber(j[1]) <= now then\n"
	"      redis.call('XCLAIM', S, G, me, 0, p[1])\n"
	"      local f = take(p[1], x[1][2][2], false)\n"
	"      if f then return f end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"while dropped < max do\n"
	"  local r = redis.call('XREADGROUP', 'GROUP', G, me, 'COUNT', 1,\n"
	"    'STREAMS', S, '>')\n"
	"  if not r then return {0, dropped} end\n"
	"  local e = r[1][2][1]\n"
	"  local f = take(e[1], e[2][2], false)\n"
	"  if f then return f end\n"
	"end\n"
	"return {0, dropped}\n";

/* ARGV id, next payload or '', has next, now.  1 done, 0 gone.  A next
 * step is due now, through bm:due, as a retry is. */
const char store__rd_lua_job_done[] = RD_LUA_RMJOB
	"local k = 'bm:job:' .. ARGV[1]\n"
	"local d = redis.call('HGET', k, 'dead')\n"
	"if not d or d == '1' then return 0 end\n"
	"if ARGV[3] == '1' then\n"
	"  unstream(k)\n"
	"  redis.call('HSET', k, 'payload', ARGV[2], 'attempts', 0,\n"
	"    'next_at', ARGV[4], 'lease_pid', 0, 'lease_host', '',\n"
	"    'last', '')\n"
	"  redis.call('ZADD', 'bm:due', ARGV[4], ARGV[1])\n"
	"  return 1\n"
	"end\n"
	"return rmjob(ARGV[1])\n";

/* The job is held by pid of host (j: HMGET lease_pid, dead, lease_host). */
#define RD_LUA_HELD \
	"local function held(j)\n" \
	"  return j[1] and j[2] ~= '1' and j[1] == ARGV[2] and\n" \
	"    j[3] == ARGV[6]\n" \
	"end\n"

/* ARGV id, pid, next at, last, dead, host.  1 done, 0 not held. */
const char store__rd_lua_job_retry[] = RD_LUA_HELD RD_LUA_UNSTREAM
	"local k = 'bm:job:' .. ARGV[1]\n"
	"local j = redis.call('HMGET', k, 'lease_pid', 'dead', 'lease_host',\n"
	"  'h', 'contact')\n"
	"if not held(j) then return 0 end\n"
	"unstream(k)\n"
	"redis.call('HINCRBY', k, 'attempts', 1)\n"
	"redis.call('HSET', k, 'last', ARGV[4], 'lease_pid', 0,\n"
	"  'lease_host', '', 'next_at', ARGV[3])\n"
	"if ARGV[5] ~= '1' then\n"
	"  redis.call('ZADD', 'bm:due', ARGV[3], ARGV[1])\n"
	"  return 1\n"
	"end\n"
	"local line = 'bm:jc:' .. j[4] .. ':' .. j[5]\n"
	"redis.call('HSET', k, 'dead', 1)\n"
	"redis.call('ZREM', 'bm:due', ARGV[1])\n"
	"redis.call('ZREM', 'bm:jq', ARGV[1])\n"
	"redis.call('LREM', line, 1, ARGV[1])\n"
	"redis.call('SADD', 'bm:jdead', ARGV[1])\n"
	"redis.call('DECR', 'bm:jpending')\n"
	"redis.call('INCR', 'bm:jdeadn')\n"
	"local nh = redis.call('LINDEX', line, 0)\n"
	"if nh then redis.call('ZADD', 'bm:due',\n"
	"  redis.call('HGET', 'bm:job:' .. nh, 'next_at'), nh) end\n"
	"return 1\n";

/* ARGV id, pid, lease end, -, -, host.  1 done, 0 not held.  XCLAIM by
 * the holder itself resets the entry's idle time: no XAUTOCLAIM takes a
 * job whose holder renews.  lease_ms grows by what the renewal adds beyond
 * a lease length (none when renewed to now + the same length). */
const char store__rd_lua_job_renew[] = RD_LUA_HELD
	"local k = 'bm:job:' .. ARGV[1]\n"
	"local j = redis.call('HMGET', k, 'lease_pid', 'dead', 'lease_host',\n"
	"  'sid', 'next_at', 'lease_ms')\n"
	"if not held(j) then return 0 end\n"
	"local ms = math.max(tonumber(j[6] or '0'), ARGV[3] - tonumber(j[5]))\n"
	"redis.call('HSET', k, 'next_at', ARGV[3], 'lease_ms', ms)\n"
	"if j[4] and j[4] ~= '' then\n"
	"  redis.call('XCLAIM', 'bm:jready', 'bm:jg', ARGV[6] .. ':' .. ARGV[2],\n"
	"    0, j[4], 'JUSTID')\n"
	"end\n"
	"return 1\n";

/* ARGV id, now.  The new id, 0 gone, -1 not dead. */
const char store__rd_lua_job_revive[] = RD_LUA_RMJOB
	"local k = 'bm:job:' .. ARGV[1]\n"
	"local j = redis.call('HMGET', k, 'dead', 'h', 'contact', 'kind',\n"
	"  'payload')\n"
	"if not j[1] then return 0 end\n"
	"if j[1] ~= '1' then return -1 end\n"
	"rmjob(ARGV[1])\n"
	"local line = 'bm:jc:' .. j[2] .. ':' .. j[3]\n"
	"local head = redis.call('LINDEX', line, 0)\n"
	"local id = redis.call('INCR', 'bm:jobseq')\n"
	"redis.call('HSET', 'bm:job:' .. id, 'h', j[2], 'contact', j[3],\n"
	"  'kind', j[4], 'payload', j[5], 'last', '', 'attempts', 0,\n"
	"  'next_at', ARGV[2], 'created', ARGV[2], 'lease_pid', 0,\n"
	"  'lease_host', '', 'dead', 0, 'sid', '')\n"
	"redis.call('RPUSH', line, id)\n"
	"if not head then redis.call('ZADD', 'bm:due', ARGV[2], id) end\n"
	"redis.call('SADD', 'bm:ji:' .. j[2], id)\n"
	"redis.call('ZADD', 'bm:jq', id, id)\n"
	"redis.call('ZADD', 'bm:jall', id, id)\n"
	"redis.call('INCR', 'bm:jpending')\n"
	"return id\n";

/* The ready stream's consumers (host:pid), for store_jobs_release(). */
const char store__rd_lua_job_holders[] = RD_LUA_GROUP
	"group()\n"
	"local names = {}\n"
	"for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', 'bm:jready',\n"
	"    'bm:jg')) do\n"
	"  for i = 1, #c, 2 do\n"
	"    if c[i] == 'name' then table.insert(names, c[i + 1]) end\n"
	"  end\n"
	"end\n"
	"return names\n";

/* ARGV pid, host, now, most: consumer host:pid is dead; the jobs it
 * leased go back to bm:due, due now (not to the caller: the claim that
 * follows takes them in order), and the consumer is deleted once it holds
 * nothing.  Returns how many leases were released. */
const char store__rd_lua_job_release[] = RD_LUA_UNSTREAM
	"local S, G = 'bm:jready', 'bm:jg'\n"
	"local c = ARGV[2] .. ':' .. ARGV[1]\n"
	"local n = 0\n"
	"local p = redis.call('XPENDING', S, G, '-', '+', tonumber(ARGV[4]), c)\n"
	"for _, e in ipairs(p) do\n"
	"  local x = redis.call('XRANGE', S, e[1], e[1])\n"
	"  local k = #x > 0 and 'bm:job:' .. x[1][2][2] or nil\n"
	"  local j = k and redis.call('HMGET', k, 'lease_pid', 'lease_host',\n"
	"    'dead', 'sid') or {}\n"
	"  local mine = j[1] == ARGV[1] and j[2] == ARGV[2]\n"
	"  if not k or j[3] ~= '0' or j[4] ~= e[1] then\n"
	"    redis.call('XACK', S, G, e[1])\n"
	"    redis.call('XDEL', S, e[1])\n"
	"  elseif j[1] ~= '0' and not mine then\n"
	/* Another's lease: back to its holder. */
	"    redis.call('XCLAIM', S, G, j[2] .. ':' .. j[1], 0, e[1], 'JUSTID')\n"
	"  else\n"
	"    unstream(k)\n"
	"    redis.call('HSET', k, 'lease_pid', 0, 'lease_host', '',\n"
	"      'next_at', ARGV[3])\n"
	"    redis.call('ZADD', 'bm:due', ARGV[3], x[1][2][2])\n"
	"    if mine then n = n + 1 end\n"
	"  end\n"
	"end\n"
	"if #redis.call('XPENDING', S, G, '-', '+', 1, c) == 0 then\n"
	"  redis.call('XGROUP', 'DELCONSUMER', S, G, c)\n"
	"end\n"
	"return n\n";

static int
rd_nomem(struct store *s)
{
	snprintf(s->err, sizeof(s->err), "redis: %s", strerror(ENOMEM));
	return STORE_ERROR;
}

static int
rd_check_text(struct store *s, const char *what, const char *v, size_t max)
{
	size_t n;

	if (v == NULL || *v == '\0')
		return store__einval(s, "%s is empty", what);
	n = strnlen(v, max + 1);
	if (n > max)
		return store__einval(s, "%s is longer than %zu bytes", what,
		    max);
	return STORE_OK;
}

static int
rd_hash(struct store *s, const char *token, char h[STORE__HASH_LEN + 1])
{
	if (store__token_key(s, token, strlen(token), h) != 0)
		return rd_nomem(s);
	return STORE_OK;
}

/* The token of hash h: *token new; NULL when it is not kept (or does not
 * open): the caller decides. */
static int
rd_token_of(struct store *s, const char *h, size_t hlen, char **token)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	*token = NULL;
	store__rd_init(&a);
	store__rd_str(&a, "HGET");
	store__rd_str(&a, "bm:tok");
	store__rd_add(&a, h, hlen);
	if ((rc = store__rd_cmd(s, "reading a token", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_STRING && hlen == STORE__HASH_LEN)
		(void)store__unseal(s, h, STORE__HASH_LEN,
		    (const unsigned char *)rep->str, rep->len, token, NULL);
	freeReplyObject(rep);
	return STORE_OK;
}

static char *
rd_dup(const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING)
		return strdup("");
	return strndup(r->str, r->len);
}

static long long
rd_num(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtoll(r->str, NULL, 10);
	return 0;
}

/*
 * A job from id and the fields of RD_JOB_FIELDS (e[0..9]): *out new.
 * *notoken says its token was not found (integ is then "").
 */
static int
rd_job_from(struct store *s, uint64_t id, redisReply **e,
    struct store_job **out, int *notoken)
{
	struct store_job *j;
	char *token = NULL;
	int rc;

	*out = NULL;
	if (notoken != NULL)
		*notoken = 0;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return rd_nomem(s);
	/* A detached job's owner ("@" and a name) is kept in clear. */
	if (e[0]->type == REDIS_REPLY_STRING && e[0]->len > 0 &&
	    e[0]->str[0] == '@')
		token = strndup(e[0]->str, e[0]->len);
	else if (e[0]->type == REDIS_REPLY_STRING &&
	    (rc = rd_token_of(s, e[0]->str, e[0]->len, &token)) != STORE_OK) {
		free(j);
		return rc;
	}
	if (token == NULL && notoken != NULL)
		*notoken = 1;
	j->id = id;
	j->integ = token != NULL ? token : strdup("");
	j->kind = rd_dup(e[1]);
	j->contact = rd_dup(e[2]);
	j->payload = rd_dup(e[3]);
	j->last = rd_dup(e[4]);
	j->attempts = (unsigned)rd_num(e[5]);
	j->next_at = rd_num(e[6]);
	j->created = rd_num(e[7]);
	j->lease_pid = (uint32_t)rd_num(e[8]);
	j->dead = rd_num(e[9]) == 1;
	if (j->integ == NULL || j->kind == NULL || j->contact == NULL ||
	    j->payload == NULL || j->last == NULL) {
		store_job_free(j);
		return rd_nomem(s);
	}
	*out = j;
	return STORE_OK;
}

/*
 * Checks sp and fills h with the integration its job names (the token's
 * keyed hash, or "@" and the owner's name for a detached job; h holds
 * STORE__HASH_LEN + 1) and a with the job_add script's arguments, which
 * borrow sp, h and *sealed (new: the sealed token, NULL when detached).
 */
static int
rd_job_args(struct store *s, const struct store_job_spec *sp, char *h,
    struct store__rd_args *a, unsigned char **sealed)
{
	size_t n, slen = 0;
	int rc;

	*sealed = NULL;
	if ((rc = rd_check_text(s, "job kind", sp->kind, STORE_JOB_KIND_MAX)) ||
	    (rc = store__check_id(s, "contact key", sp->contact, &n)) ||
	    (rc = rd_check_text(s, "job payload", sp->payload,
	    STORE_JOB_PAYLOAD_MAX)))
		return rc;
	if (sp->now < 0 || (sp->lease_pid != 0 && sp->lease_until < sp->now))
		return store__einval(s, "job times out of range");
	if (sp->detached) {
		if ((rc = rd_check_text(s, "detached job owner", sp->integ,
		    STORE_JOB_DETACHED_MAX)) != STORE_OK)
			return rc;
		h[0] = '@';
		memcpy(h + 1, sp->integ, strlen(sp->integ) + 1);
	} else {
		if ((rc = store__check_id(s, "integration id", sp->integ,
		    &n)) != STORE_OK ||
		    (rc = rd_hash(s, sp->integ, h)) != STORE_OK)
			return rc;
		if (store__seal(s, h, STORE__HASH_LEN, sp->integ,
		    strlen(sp->integ), sealed, &slen) != 0) {
			snprintf(s->err, sizeof(s->err),
			    "redis: sealing a token failed");
			return STORE_ERROR;
		}
	}
	store__rd_init(a);
	store__rd_str(a, h);
	store__rd_str(a, sp->contact);
	store__rd_str(a, sp->kind);
	store__rd_str(a, sp->payload);
	store__rd_int(a, (long long)sp->now);
	store__rd_int(a, (long long)sp->lease_pid);
	store__rd_int(a, (long long)sp->lease_until);
	store__rd_str(a, sp->unique ? "1" : "0");
	store__rd_str(a, store__rd_host(s));
	store__rd_add(a, *sealed != NULL ? (const void *)*sealed : "", slen);
	return STORE_OK;
}

int
store__rd_job_add(struct store *s, const struct store_job_spec *sp,
    uint64_t *id, unsigned *flags)
{
	char h[STORE__HASH_LEN + 1];
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char *sealed = NULL;
	int rc;

	*id = 0;
	if (flags != NULL)
		*flags = 0;
	if ((rc = rd_job_args(s, sp, h, &a, &sealed)) != STORE_OK)
		goto out;
	/* Not idempotent: never sent twice. */
	if ((rc = store__rd_eval(s, "adding a job", 0, RD_SCRIPT_JOB_ADD, 0,
	    &a, &rep)) != STORE_OK)
		goto out;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
		*id = (uint64_t)rep->element[0]->integer;
		if (flags != NULL)
			*flags = (unsigned)rep->element[1]->integer;
	}
	freeReplyObject(rep);
out:
	free(sealed);
	return rc;
}

/* Marks job id dead at once: its token is missing (damage). */
static int
rd_job_bury(struct store *s, uint64_t id, uint32_t pid)
{
	return store__rd_job_retry(s, id, pid, 0, "{\"error\":\"the "
	    "installation's token is missing\"}", 1);
}

int
store__rd_job_claim(struct store *s, uint32_t pid, int64_t now,
    int64_t lease_until, struct store_job **out)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	uint64_t id;
	int rc, notoken, tries;

	*out = NULL;
	if (pid == 0 || lease_until < now)
		return store__einval(s, "a lease needs a holder and an end");
	for (tries = 0; tries < RD_CLAIM_SCAN; tries++) {
		store__rd_init(&a);
		store__rd_int(&a, (long long)now);
		store__rd_int(&a, (long long)pid);
		store__rd_int(&a, (long long)lease_until);
		store__rd_str(&a, store__rd_host(s));
		store__rd_int(&a, RD_CLAIM_SCAN);
		/* XAUTOCLAIM's min idle: this claimer's lease length. */
		store__rd_int(&a, (long long)(lease_until - now));
		store__rd_int(&a, RD_PROMOTE_BATCH);
		/* Sent again after a lost answer, it leases the same job
		 * again to the same holder or the next one: harmless. */
		if ((rc = store__rd_eval(s, "claiming a job", 1,
		    RD_SCRIPT_JOB_CLAIM, 0, &a, &rep)) != STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 11) {
			freeReplyObject(rep);
			return STORE_NOTFOUND;
		}
		id = (uint64_t)strtoull(rep->element[0]->str, NULL, 10);
		rc = rd_job_from(s, id, rep->element + 1, out, &notoken);
		freeReplyObject(rep);
		rep = NULL;
		if (rc != STORE_OK)
			return rc;
		if (!notoken)
			return STORE_OK;
		/* Kept as dead for the operator; the claim goes on. */
		store_job_free(*out);
		*out = NULL;
		if ((rc = rd_job_bury(s, id, pid)) != STORE_OK &&
		    rc != STORE_NOTFOUND)
			return rc;
	}
	return STORE_NOTFOUND;
}

/* job_done's check, after the WATCH: the job is still there. */
struct rd_done {
	char key[48];
};

static int
rd_done_check(struct store *s, void *arg)
{
	struct rd_done *d = arg;
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "HGET");
	store__rd_str(&a, d->key);
	store__rd_str(&a, "dead");
	if ((rc = store__rd_cmd(s, "finishing a job", 0, &a, &rep)) !=
	    STORE_OK)
		return rc;
	rc = rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "0") == 0 ?
	    STORE_OK : STORE_NOTFOUND;
	freeReplyObject(rep);
	return rc;
}

int store__rd_batch_ops(struct store *s, struct store__rd_batch *b,
    const struct store_op *ops, size_t n, size_t *bad);

int
store__rd_job_done(struct store *s, uint64_t id, const struct store_op *ops,
    size_t n, const char *next_payload, int64_t now)
{
	struct store__rd_batch b;
	struct store__rd_args a;
	struct rd_done d;
	redisReply *rep = NULL;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (ops[i].kind != STORE_OP_IDS_SAVE &&
		    ops[i].kind != STORE_OP_IDS_DELETE)
			return store__einval(s, "a job's effect is a pair saved "
			    "or deleted");
	if (next_payload != NULL && (rc = rd_check_text(s, "job payload",
	    next_payload, STORE_JOB_PAYLOAD_MAX)) != STORE_OK)
		return rc;
	store__rd_batch_init(&b);
	if ((rc = store__rd_batch_ops(s, &b, ops, n, NULL)) != STORE_OK)
		goto out;
	store__rd_init(&a);
	store__rd_int(&a, (long long)id);
	store__rd_str(&a, next_payload != NULL ? next_payload : "");
	store__rd_str(&a, next_payload != NULL ? "1" : "0");
	store__rd_int(&a, (long long)now);
	if (store__rd_batch_add(&b, RD_SCRIPT_JOB_DONE, 0, &a) < 0) {
		rc = rd_nomem(s);
		goto out;
	}
	snprintf(d.key, sizeof(d.key), "bm:job:%llu", (unsigned long long)id);
	if ((rc = store__rd_exec(s, "finishing a job", d.key, rd_done_check,
	    &d, &b, &rep)) == STORE_OK)
		freeReplyObject(rep);
out:
	store__rd_batch_free(&b);
	return rc;
}

/* retry and renew: ARGV id, pid, time, last, dead, host. */
static int
rd_held_call(struct store *s, const char *what, enum store__rd_script sc,
    uint64_t id, uint32_t pid, int64_t at, const char *last, int dead)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t llen;
	int rc;

	if (at < 0)
		return store__einval(s, "job time out of range");
	/* At most STORE_JOB_LAST_MAX bytes, cut on a UTF-8 boundary. */
	llen = last != NULL ? strnlen(last, STORE_JOB_LAST_MAX + 1) : 0;
	if (llen > STORE_JOB_LAST_MAX) {
		llen = STORE_JOB_LAST_MAX;
		while (llen > 0 && ((unsigned char)last[llen] & 0xc0) == 0x80)
			llen--;
	}
	store__rd_init(&a);
	store__rd_int(&a, (long long)id);
	store__rd_int(&a, (long long)pid);
	store__rd_int(&a, (long long)at);
	store__rd_add(&a, last != NULL ? last : "", llen);
	store__rd_str(&a, dead ? "1" : "0");
	store__rd_str(&a, store__rd_host(s));
	if ((rc = store__rd_eval(s, what, 0, sc, 0, &a, &rep)) != STORE_OK)
		return rc;
	rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ?
	    STORE_OK : STORE_NOTFOUND;
	freeReplyObject(rep);
	return rc;
}

int
store__rd_job_retry(struct store *s, uint64_t id, uint32_t pid,
    int64_t next_at, const char *last, int dead)
{
	return rd_held_call(s, "rescheduling a job", RD_SCRIPT_JOB_RETRY, id,
	    pid, next_at, last, dead);
}

int
store__rd_job_renew(struct store *s, uint64_t id, uint32_t pid,
    int64_t lease_until)
{
	return rd_held_call(s, "renewing a lease", RD_SCRIPT_JOB_RENEW, id,
	    pid, lease_until, NULL, 0);
}

int
store__rd_job_get(struct store *s, uint64_t id, struct store_job **out)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	char key[48];
	int rc;

	*out = NULL;
	snprintf(key, sizeof(key), "bm:job:%llu", (unsigned long long)id);
	store__rd_init(&a);
	store__rd_str(&a, "HMGET");
	store__rd_str(&a, key);
	store__rd_str(&a, "h");
	store__rd_str(&a, "kind");
	store__rd_str(&a, "contact");
	store__rd_str(&a, "payload");
	store__rd_str(&a, "last");
	store__rd_str(&a, "attempts");
	store__rd_str(&a, "next_at");
	store__rd_str(&a, "created");
	store__rd_str(&a, "lease_pid");
	store__rd_str(&a, "dead");
	if ((rc = store__rd_cmd(s, "reading a job", 1, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 10 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		rc = STORE_NOTFOUND;
	else
		rc = rd_job_from(s, id, rep->element, out, NULL);
	freeReplyObject(rep);
	return rc;
}

/* Ids of bm:jall (or another ZSET by id) after `after`, a page. */
static int
rd_ids_page(struct store *s, const char *zset, uint64_t after,
    redisReply **out)
{
	struct store__rd_args a;
	char from[32];

	snprintf(from, sizeof(from), "(%llu", (unsigned long long)after);
	store__rd_init(&a);
	store__rd_str(&a, "ZRANGEBYSCORE");
	store__rd_str(&a, zset);
	store__rd_str(&a, from);
	store__rd_str(&a, "+inf");
	store__rd_str(&a, "LIMIT");
	store__rd_str(&a, "0");
	store__rd_int(&a, RD_JOBS_PAGE);
	return store__rd_cmd(s, "listing jobs", 1, &a, out);
}

int
store__rd_job_foreach(struct store *s, store_job_fn fn, void *arg)
{
	struct store_job *j = NULL;
	redisReply *rep = NULL;
	uint64_t after = 0, id;
	size_t i, n;
	int rc, stop;

	do {
		if ((rc = rd_ids_page(s, "bm:jall", after, &rep)) != STORE_OK)
			return rc;
		n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
		for (i = 0; i < n; i++) {
			id = strtoull(rep->element[i]->str, NULL, 10);
			after = id;
			rc = store__rd_job_get(s, id, &j);
			if (rc == STORE_NOTFOUND)
				continue; /* gone meanwhile */
			if (rc != STORE_OK) {
				freeReplyObject(rep);
				return rc;
			}
			stop = fn(arg, j);
			store_job_free(j);
			j = NULL;
			if (stop != 0) {
				freeReplyObject(rep);
				return stop;
			}
		}
		freeReplyObject(rep);
		rep = NULL;
	} while (n == RD_JOBS_PAGE);
	return STORE_OK;
}

int
store__rd_job_revive(struct store *s, uint64_t id, int64_t now,
    uint64_t *newid)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	if (newid != NULL)
		*newid = 0;
	if (now < 0)
		return store__einval(s, "job time out of range");
	store__rd_init(&a);
	store__rd_int(&a, (long long)id);
	store__rd_int(&a, (long long)now);
	if ((rc = store__rd_eval(s, "reviving a job", 0, RD_SCRIPT_JOB_REVIVE,
	    0, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_INTEGER || rep->integer == 0)
		rc = STORE_NOTFOUND;
	else if (rep->integer < 0)
		rc = store__einval(s, "job %llu is not dead",
		    (unsigned long long)id);
	else if (newid != NULL)
		*newid = (uint64_t)rep->integer;
	freeReplyObject(rep);
	return rc;
}

int
store__rd_jobs_revive_dead(struct store *s, int64_t now, size_t *count)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t i, n, done = 0;
	int rc;

	if (count != NULL)
		*count = 0;
	do {
		store__rd_init(&a);
		store__rd_str(&a, "SRANDMEMBER");
		store__rd_str(&a, "bm:jdead");
		store__rd_int(&a, RD_JOBS_PAGE);
		if ((rc = store__rd_cmd(s, "reviving jobs", 1, &a, &rep)) !=
		    STORE_OK)
			return rc;
		n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
		for (i = 0; i < n; i++) {
			rc = store__rd_job_revive(s,
			    strtoull(rep->element[i]->str, NULL, 10), now,
			    NULL);
			if (rc == STORE_OK)
				done++;
			else if (rc != STORE_NOTFOUND && rc != STORE_EINVAL) {
				freeReplyObject(rep);
				return rc;
			}
		}
		freeReplyObject(rep);
		rep = NULL;
	} while (n > 0);
	if (count != NULL)
		*count = done;
	return STORE_OK;
}

int
store__rd_jobs_release(struct store *s, int64_t now,
    store_job_alive_fn alive, size_t *count)
{
	struct store__rd_args a;
	redisReply *rep = NULL, *r2 = NULL;
	const char *host = store__rd_host(s), *name;
	size_t i, n, hlen = strlen(host), done = 0;
	unsigned long pid;
	char *end;
	int rc = STORE_OK;

	if (count != NULL)
		*count = 0;
	store__rd_init(&a);
	if ((rc = store__rd_eval(s, "releasing leases", 1,
	    RD_SCRIPT_JOB_HOLDERS, 0, &a, &rep)) != STORE_OK)
		return rc;
	n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
	if (n > RD_RELEASE_SCAN)
		n = RD_RELEASE_SCAN;
	for (i = 0; i < n; i++) {
		if (rep->element[i]->type != REDIS_REPLY_STRING)
			continue;
		name = rep->element[i]->str;
		/* Only this host's pids can be asked about. */
		if (strncmp(name, host, hlen) != 0 || name[hlen] != ':')
			continue;
		errno = 0;
		pid = strtoul(name + hlen + 1, &end, 10);
		if (errno != 0 || *end != '\0' || pid == 0 ||
		    pid > UINT32_MAX || alive((uint32_t)pid))
			continue;
		store__rd_init(&a);
		store__rd_int(&a, (long long)pid);
		store__rd_str(&a, host);
		store__rd_int(&a, (long long)now);
		store__rd_int(&a, RD_RELEASE_SCAN);
		if ((rc = store__rd_eval(s, "releasing leases", 1,
		    RD_SCRIPT_JOB_RELEASE, 0, &a, &r2)) != STORE_OK)
			goto out;
		if (r2->type == REDIS_REPLY_INTEGER && r2->integer > 0)
			done += (size_t)r2->integer;
		freeReplyObject(r2);
		r2 = NULL;
	}
out:
	freeReplyObject(rep);
	if (count != NULL)
		*count = done;
	return rc;
}

int
store__rd_jobs_stats(struct store *s, struct store_jobs_stats *st)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	char key[48];
	int rc;

	memset(st, 0, sizeof(*st));
	store__rd_init(&a);
	store__rd_str(&a, "MGET");
	store__rd_str(&a, "bm:jpending");
	store__rd_str(&a, "bm:jdeadn");
	if ((rc = store__rd_cmd(s, "reading queue stats", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
		st->pending = (uint64_t)rd_num(rep->element[0]);
		st->dead = (uint64_t)rd_num(rep->element[1]);
	}
	freeReplyObject(rep);
	store__rd_init(&a);
	store__rd_str(&a, "ZRANGE");
	store__rd_str(&a, "bm:jq");
	store__rd_str(&a, "0");
	store__rd_str(&a, "0");
	if ((rc = store__rd_cmd(s, "reading queue stats", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1) {
		snprintf(key, sizeof(key), "bm:job:%s", rep->element[0]->str);
		freeReplyObject(rep);
		store__rd_init(&a);
		store__rd_str(&a, "HGET");
		store__rd_str(&a, key);
		store__rd_str(&a, "created");
		if ((rc = store__rd_cmd(s, "reading queue stats", 1, &a,
		    &rep)) != STORE_OK)
			return rc;
		st->oldest_created = rd_num(rep);
	}
	freeReplyObject(rep);
	return STORE_OK;
}

int
store__rd_job_cancel(struct store *s, uint64_t id)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	int rc;

	store__rd_init(&a);
	store__rd_int(&a, (long long)id);
	if ((rc = store__rd_eval(s, "cancelling a job", 1,
	    RD_SCRIPT_JOB_CANCEL, 0, &a, &rep)) != STORE_OK)
		return rc;
	rc = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 ? STORE_OK :
	    STORE_NOTFOUND;
	freeReplyObject(rep);
	return rc;
}

int
store__rd_jobs_cancel(struct store *s, const char *integ, size_t *count)
{
	char h[STORE__HASH_LEN + 1], key[16 + STORE__HASH_LEN];
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t n;
	int rc;

	if (count != NULL)
		*count = 0;
	if ((rc = store__check_id(s, "integration id", integ, &n)) !=
	    STORE_OK || (rc = rd_hash(s, integ, h)) != STORE_OK)
		return rc;
	snprintf(key, sizeof(key), "bm:ji:%s", h);
	store__rd_init(&a);
	store__rd_str(&a, key);
	if ((rc = store__rd_eval(s, "cancelling jobs", 1,
	    RD_SCRIPT_JOBS_CANCEL, 1, &a, &rep)) != STORE_OK)
		return rc;
	if (count != NULL && rep->type == REDIS_REPLY_INTEGER)
		*count = (size_t)rep->integer;
	freeReplyObject(rep);
	return STORE_OK;
}

/* --- a signed delivery accepted with its jobs --------------------------- */

/* delivery_accept's check, after the WATCH of the claim's key. */
struct rd_accept {
	const char *key;
	size_t klen;
	int64_t now;
	unsigned ttl;
	int dup;
};

/* As the claim script decides: claimed less than ttl ago is a duplicate,
 * which aborts the batch (STORE_NOTFOUND, told apart by a->dup). */
static int
rd_accept_check(struct store *s, void *arg)
{
	struct rd_accept *d = arg;
	struct store__rd_args a;
	redisReply *rep = NULL;
	long long t;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_add(&a, d->key, d->klen);
	if ((rc = store__rd_cmd(s, "accepting a delivery", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_STRING) {
		t = rd_num(rep);
		d->dup = d->now - t < (long long)d->ttl && d->now >= t;
	}
	freeReplyObject(rep);
	return d->dup ? STORE_NOTFOUND : STORE_OK;
}

/*
 * One MULTI/EXEC WATCHing the claim's key: the claim (SET with its
 * expiry) and every job's add script, so Redis applies all or nothing; a
 * claim made by another process between the check and EXEC makes EXEC
 * apply nothing and the whole is tried again, finding the duplicate.
 */
int
store__rd_delivery_accept(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s,
    const struct store_job_spec *jobs, size_t n, uint64_t *ids, int *dup)
{
	char h[STORE__HASH_LEN + 1];
	struct rd_accept d = { .now = now, .ttl = ttl_s };
	struct store__rd_batch b;
	struct store__rd_args a;
	redisReply *rep = NULL, *e;
	unsigned char *sealed = NULL;
	char *key = NULL;
	size_t i, first;
	int rc;

	*dup = 0;
	store__rd_batch_init(&b);
	if ((rc = store__rd_seen_key(s, install_id, id, &key, &d.klen)) !=
	    STORE_OK)
		goto out;
	d.key = key;
	if (ttl_s > 0) {
		/* Nothing is remembered for no time at all (as a claim). */
		store__rd_init(&a);
		store__rd_str(&a, "SET");
		store__rd_add(&a, key, d.klen);
		store__rd_int(&a, (long long)now);
		store__rd_str(&a, "EX");
		store__rd_int(&a, (long long)ttl_s);
		if (store__rd_batch_add(&b, -1, 0, &a) < 0) {
			rc = rd_nomem(s);
			goto out;
		}
	}
	first = b.n;
	for (i = 0; i < n; i++) {
		ids[i] = 0;
		if ((rc = rd_job_args(s, &jobs[i], h, &a, &sealed)) !=
		    STORE_OK)
			goto out;
		rc = store__rd_batch_add(&b, RD_SCRIPT_JOB_ADD, 0, &a);
		free(sealed);
		sealed = NULL;
		if (rc < 0) {
			rc = rd_nomem(s);
			goto out;
		}
	}
	rc = store__rd_exec_bin(s, "accepting a delivery", key, d.klen,
	    ttl_s > 0 ? rd_accept_check : NULL, &d, &b, &rep);
	if (rc == STORE_NOTFOUND && d.dup) {
		*dup = 1;
		rc = STORE_OK;
		goto out;
	}
	if (rc != STORE_OK)
		goto out;
	for (i = 0; i < n && first + i < rep->elements; i++) {
		e = rep->element[first + i];
		if (e->type == REDIS_REPLY_ARRAY && e->elements == 2)
			ids[i] = (uint64_t)e->element[0]->integer;
	}
	freeReplyObject(rep);
out:
	store__rd_batch_free(&b);
	free(key);
	return rc;
}
