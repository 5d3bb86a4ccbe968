/*
 * store/redis-svc.c - third-party services, OAuth links and states and
 * key rotation on Redis.  A service's record is the one services.c writes
 * (tokens sealed, bound to its key "install id\0service\0group\0user") at
 * bm:sv:<install id>:<service\0group\0user>, indexed by bm:svs:<install id>
 * and bm:svi; a read-modify-write (put, lease, refreshed, lease end) is a
 * WATCH of the record and one MULTI/EXEC, tried again if the record moved.
 * Pending links and states are services.c's entries at bm:oauth:<keyed
 * hash>, EXPIREd by Redis at their end (no sweep), taken by GETDEL.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_int.h"

/* Pending entries: version, kind, expiry (8), key length (2). */
#define RD_PEND_HEAD 12
/* A service record's clear head before its sealed tokens (services.c). */
#define RD_SVC_HEAD 42

struct rd_svc {
	char kbuf[STORE__SVC_KEY_MAX + 1]; /* the record's key (and AAD) */
	size_t klen;
	char *rkey;          /* its Redis key (new) */
	size_t rlen;
};

static int
rd_nomem(struct store *s)
{
	snprintf(s->err, sizeof(s->err), "redis: %s", strerror(ENOMEM));
	return STORE_ERROR;
}

/* The Redis key of a service key: "bm:sv:" iid ":" the rest. */
static int
rd_svc_rkey(struct store *s, struct rd_svc *k)
{
	size_t rest = k->klen - STORE_INSTALL_ID_LEN - 1;

	k->rlen = 6 + STORE_INSTALL_ID_LEN + 1 + rest;
	if ((k->rkey = malloc(k->rlen)) == NULL)
		return rd_nomem(s);
	memcpy(k->rkey, "bm:sv:", 6);
	memcpy(k->rkey + 6, k->kbuf, STORE_INSTALL_ID_LEN);
	k->rkey[6 + STORE_INSTALL_ID_LEN] = ':';
	memcpy(k->rkey + 7 + STORE_INSTALL_ID_LEN,
	    k->kbuf + STORE_INSTALL_ID_LEN + 1, rest);
	return STORE_OK;
}

static int
rd_svc_init(struct store *s, struct rd_svc *k, const char *install_id,
    const char *service, const char *group, const char *user)
{
	int rc;

	memset(k, 0, sizeof(*k));
	if ((rc = store__svc_key(s, k->kbuf, &k->klen, install_id, service,
	    group, user)) != STORE_OK)
		return rc;
	return rd_svc_rkey(s, k);
}

/* Reads and decodes the record: *sv new; STORE_NOTFOUND when absent. */
static int
rd_svc_read(struct store *s, const struct rd_svc *k,
    struct store_service **sv)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	DBT kd, dd;
	int rc, ret;

	*sv = NULL;
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_add(&a, k->rkey, k->rlen);
	if ((rc = store__rd_cmd(s, "reading service", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	if (rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		return STORE_NOTFOUND;
	}
	memset(&kd, 0, sizeof(kd));
	memset(&dd, 0, sizeof(dd));
	kd.data = (void *)k->kbuf;
	kd.size = (u_int32_t)k->klen;
	dd.data = rep->str;
	dd.size = (u_int32_t)rep->len;
	ret = store__svc_decode(s, &kd, &dd, sv);
	freeReplyObject(rep);
	if (ret == STORE__ESEAL) {
		snprintf(s->err, sizeof(s->err), "redis: a service's tokens do "
		    "not decrypt: BM_SECRET_KEY_FILE is not the key they were "
		    "sealed with");
		return STORE_ERROR;
	}
	if (ret != 0) {
		snprintf(s->err, sizeof(s->err), "redis: a malformed service "
		    "record");
		return ret == ENOMEM ? rd_nomem(s) : STORE_ERROR;
	}
	return STORE_OK;
}

/* What a read-modify-write does with the record it read (NULL: none). */
typedef int (*rd_svc_change_fn)(struct store *s, void *arg,
    struct store_service *old, struct store_service *nw);

struct rd_rmw {
	struct rd_svc *k;
	rd_svc_change_fn fn;
	void *arg;
	struct store__rd_batch *b;
	int result;  /* what fn decided: STORE_OK to write, else returned */
};

/* After the WATCH: reads, asks fn, and fills the batch with the write. */
static int
rd_rmw_check(struct store *s, void *arg)
{
	struct rd_rmw *m = arg;
	struct store_service *old = NULL, nw;
	struct store__rd_args a;
	DBT kd, dd;
	int rc, ret;

	store__rd_batch_free(m->b);
	store__rd_batch_init(m->b);
	rc = rd_svc_read(s, m->k, &old);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc;
	memset(&nw, 0, sizeof(nw));
	if ((rc = m->fn(s, m->arg, old, &nw)) != STORE_OK) {
		store_service_free(old);
		return rc;
	}
	memset(&kd, 0, sizeof(kd));
	memset(&dd, 0, sizeof(dd));
	kd.data = m->k->kbuf;
	kd.size = (u_int32_t)m->k->klen;
	ret = store__svc_encode(s, &kd, &nw, &dd);
	store_service_free(old);
	if (ret != 0) {
		snprintf(s->err, sizeof(s->err), "redis: sealing a service "
		    "failed");
		return STORE_ERROR;
	}
	store__rd_init(&a);
	store__rd_str(&a, "SET");
	store__rd_add(&a, m->k->rkey, m->k->rlen);
	store__rd_add(&a, dd.data, dd.size);
	rc = store__rd_batch_add(m->b, -1, 0, &a);
	free(dd.data);
	if (rc < 0)
		return rd_nomem(s);
	/* The indexes: the installation's services, and installations. */
	{
		char skey[16 + STORE_INSTALL_ID_LEN];

		snprintf(skey, sizeof(skey), "bm:svs:%.*s",
		    STORE_INSTALL_ID_LEN, m->k->kbuf);
		store__rd_init(&a);
		store__rd_str(&a, "SADD");
		store__rd_str(&a, skey);
		store__rd_add(&a, m->k->kbuf + STORE_INSTALL_ID_LEN + 1,
		    m->k->klen - STORE_INSTALL_ID_LEN - 1);
		if (store__rd_batch_add(m->b, -1, 0, &a) < 0)
			return rd_nomem(s);
		store__rd_init(&a);
		store__rd_str(&a, "SADD");
		store__rd_str(&a, "bm:svi");
		store__rd_add(&a, m->k->kbuf, STORE_INSTALL_ID_LEN);
		if (store__rd_batch_add(m->b, -1, 0, &a) < 0)
			return rd_nomem(s);
	}
	return STORE_OK;
}

static int
rd_rmw(struct store *s, const char *what, struct rd_svc *k,
    rd_svc_change_fn fn, void *arg)
{
	struct store__rd_batch b;
	struct rd_rmw m = { .k = k, .fn = fn, .arg = arg, .b = &b };
	redisReply *rep = NULL;
	int rc;

	store__rd_batch_init(&b);
	rc = store__rd_exec_bin(s, what, k->rkey, k->rlen, rd_rmw_check, &m,
	    &b, &rep);
	if (rc == STORE_OK)
		freeReplyObject(rep);
	store__rd_batch_free(&b);
	return rc;
}

/* --- put, lease, refreshed, lease end ----------------------------------- */

static int
put_change(struct store *s, void *arg, struct store_service *old,
    struct store_service *nw)
{
	const struct store_service *in = arg;

	(void)s;
	*nw = *in;
	nw->created = old != NULL ? old->created : in->updated;
	nw->gen = (old != NULL ? old->gen : 0) + 1;
	nw->needs_link = 0;
	nw->lease_until = 0;
	return STORE_OK;
}

int
store__rd_service_put(struct store *s, const struct store_service *in)
{
	struct rd_svc k;
	int rc;

	if ((rc = rd_svc_init(s, &k, in->install_id, in->service, in->group,
	    in->user)) == STORE_OK) {
		if (in->access == NULL || in->access[0] == '\0')
			rc = store__einval(s, "a service needs an access "
			    "token");
		else
			rc = rd_rmw(s, "saving service", &k, put_change,
			    (void *)in);
	}
	free(k.rkey);
	return rc;
}

int
store__rd_service_get(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user,
    struct store_service **out)
{
	struct rd_svc k;
	int rc;

	*out = NULL;
	if ((rc = rd_svc_init(s, &k, install_id, service, group, user)) ==
	    STORE_OK)
		rc = rd_svc_read(s, &k, out);
	free(k.rkey);
	return rc;
}

struct lease_args {
	uint64_t gen;
	int64_t now;
	unsigned lease_s;
	int *got;
	int needs_link;
	const struct store_service *in;
};

/* Copies old into nw (strings borrowed from old, which outlives it). */
static void
rd_copy(struct store_service *nw, const struct store_service *old)
{
	*nw = *old;
}

static int
lease_change(struct store *s, void *arg, struct store_service *old,
    struct store_service *nw)
{
	struct lease_args *a = arg;

	(void)s;
	*a->got = 0;
	if (old == NULL)
		return STORE_NOTFOUND;
	if (old->gen != a->gen || old->needs_link ||
	    old->lease_until > a->now)
		return 1; /* not ours: nothing written */
	rd_copy(nw, old);
	nw->lease_until = a->now + (int64_t)a->lease_s;
	*a->got = 1;
	return STORE_OK;
}

int
store__rd_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got)
{
	struct lease_args a = { .gen = gen, .now = now, .lease_s = lease_s,
	    .got = got };
	struct rd_svc k;
	int rc;

	*got = 0;
	if ((rc = rd_svc_init(s, &k, install_id, service, group, user)) ==
	    STORE_OK) {
		rc = rd_rmw(s, "leasing service", &k, lease_change, &a);
		if (rc == 1)
			rc = STORE_OK;
		if (rc != STORE_OK)
			*got = 0;
	}
	free(k.rkey);
	return rc;
}

static int
refreshed_change(struct store *s, void *arg, struct store_service *old,
    struct store_service *nw)
{
	struct lease_args *a = arg;

	(void)s;
	if (old == NULL || old->gen != a->gen)
		return STORE_NOTFOUND;
	rd_copy(nw, old);
	nw->access = a->in->access;
	if (a->in->refresh != NULL)
		nw->refresh = a->in->refresh;
	if (a->in->scope != NULL && a->in->scope[0] != '\0')
		nw->scope = a->in->scope;
	nw->expires = a->in->expires;
	nw->updated = a->in->updated;
	nw->gen = old->gen + 1;
	nw->lease_until = 0;
	nw->needs_link = 0;
	return STORE_OK;
}

int
store__rd_service_refreshed(struct store *s, const struct store_service *in,
    uint64_t gen)
{
	struct lease_args a = { .gen = gen, .in = in };
	struct rd_svc k;
	int rc;

	if ((rc = rd_svc_init(s, &k, in->install_id, in->service, in->group,
	    in->user)) == STORE_OK) {
		if (in->access == NULL || in->access[0] == '\0')
			rc = store__einval(s, "a service needs an access "
			    "token");
		else
			rc = rd_rmw(s, "saving refreshed service", &k,
			    refreshed_change, &a);
	}
	free(k.rkey);
	return rc;
}

static int
lease_end_change(struct store *s, void *arg, struct store_service *old,
    struct store_service *nw)
{
	struct lease_args *a = arg;

	(void)s;
	if (old == NULL || old->gen != a->gen)
		return STORE_NOTFOUND;
	rd_copy(nw, old);
	nw->lease_until = 0;
	if (a->needs_link)
		nw->needs_link = 1;
	return STORE_OK;
}

int
store__rd_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link)
{
	struct lease_args a = { .gen = gen, .needs_link = needs_link };
	struct rd_svc k;
	int rc;

	if ((rc = rd_svc_init(s, &k, install_id, service, group, user)) ==
	    STORE_OK)
		rc = rd_rmw(s, "ending service lease", &k, lease_end_change,
		    &a);
	free(k.rkey);
	return rc;
}

int
store__rd_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user)
{
	struct store__rd_batch b;
	struct store__rd_args a;
	redisReply *rep = NULL;
	struct rd_svc k;
	char skey[16 + STORE_INSTALL_ID_LEN];
	int rc;

	store__rd_batch_init(&b);
	if ((rc = rd_svc_init(s, &k, install_id, service, group, user)) !=
	    STORE_OK)
		goto out;
	snprintf(skey, sizeof(skey), "bm:svs:%.*s", STORE_INSTALL_ID_LEN,
	    k.kbuf);
	store__rd_init(&a);
	store__rd_str(&a, "DEL");
	store__rd_add(&a, k.rkey, k.rlen);
	if (store__rd_batch_add(&b, -1, 0, &a) < 0) {
		rc = rd_nomem(s);
		goto out;
	}
	store__rd_init(&a);
	store__rd_str(&a, "SREM");
	store__rd_str(&a, skey);
	store__rd_add(&a, k.kbuf + STORE_INSTALL_ID_LEN + 1,
	    k.klen - STORE_INSTALL_ID_LEN - 1);
	if (store__rd_batch_add(&b, -1, 0, &a) < 0) {
		rc = rd_nomem(s);
		goto out;
	}
	if ((rc = store__rd_exec(s, "deleting service", NULL, NULL, NULL, &b,
	    &rep)) == STORE_OK) {
		rc = rep->elements > 0 &&
		    rep->element[0]->type == REDIS_REPLY_INTEGER &&
		    rep->element[0]->integer > 0 ? STORE_OK : STORE_NOTFOUND;
		freeReplyObject(rep);
	}
out:
	store__rd_batch_free(&b);
	free(k.rkey);
	return rc;
}

/* --- walks -------------------------------------------------------------- */

/* Calls fn for each service of install id iid (32 hex digits). */
static int
rd_svc_each(struct store *s, const char *iid, store_service_fn fn,
    void *arg)
{
	struct store__rd_args a;
	struct store_service *sv = NULL;
	redisReply *rep = NULL, *m;
	struct rd_svc k;
	char skey[16 + STORE_INSTALL_ID_LEN];
	size_t i;
	int rc = STORE_OK;

	snprintf(skey, sizeof(skey), "bm:svs:%.*s", STORE_INSTALL_ID_LEN, iid);
	store__rd_init(&a);
	store__rd_str(&a, "SMEMBERS");
	store__rd_str(&a, skey);
	if ((rc = store__rd_cmd(s, "listing services", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements &&
	    rc == STORE_OK; i++) {
		m = rep->element[i];
		if (m->len + STORE_INSTALL_ID_LEN + 1 > STORE__SVC_KEY_MAX)
			continue;
		memset(&k, 0, sizeof(k));
		memcpy(k.kbuf, iid, STORE_INSTALL_ID_LEN);
		k.kbuf[STORE_INSTALL_ID_LEN] = '\0';
		memcpy(k.kbuf + STORE_INSTALL_ID_LEN + 1, m->str, m->len);
		k.klen = STORE_INSTALL_ID_LEN + 1 + m->len;
		if ((rc = rd_svc_rkey(s, &k)) != STORE_OK)
			break;
		rc = rd_svc_read(s, &k, &sv);
		free(k.rkey);
		if (rc == STORE_NOTFOUND) {
			rc = STORE_OK; /* deleted meanwhile */
			continue;
		}
		if (rc == STORE_OK && (rc = fn(arg, sv)) != 0) {
			store_service_free(sv);
			break;
		}
		store_service_free(sv);
		sv = NULL;
	}
	freeReplyObject(rep);
	return rc;
}

int
store__rd_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t i;
	int rc;

	if (install_id != NULL) {
		if (strlen(install_id) != STORE_INSTALL_ID_LEN)
			return store__einval(s, "install id is not %d "
			    "characters", STORE_INSTALL_ID_LEN);
		return rd_svc_each(s, install_id, fn, arg);
	}
	store__rd_init(&a);
	store__rd_str(&a, "SMEMBERS");
	store__rd_str(&a, "bm:svi");
	if ((rc = store__rd_cmd(s, "listing services", 1, &a, &rep)) !=
	    STORE_OK)
		return rc;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements &&
	    rc == STORE_OK; i++)
		if (rep->element[i]->len == STORE_INSTALL_ID_LEN)
			rc = rd_svc_each(s, rep->element[i]->str, fn, arg);
	freeReplyObject(rep);
	return rc;
}

/* --- OAuth links and states --------------------------------------------- */

/* Keeps a pending entry at bm:oauth:<hash> until its end. */
static int
rd_pend_put(struct store *s, const char *hash, char kind, int64_t now,
    unsigned ttl, const char *skey, size_t sklen, const char *verifier)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	char key[16 + STORE__HASH_LEN];
	DBT kd;
	int rc;

	memset(&kd, 0, sizeof(kd));
	kd.data = (void *)skey;
	kd.size = (u_int32_t)sklen;
	if (store__pend_encode(s, hash, kind, now + (int64_t)ttl, &kd,
	    verifier, &buf, &len) != 0)
		return rd_nomem(s);
	snprintf(key, sizeof(key), "bm:oauth:%s", hash);
	store__rd_init(&a);
	store__rd_str(&a, "SET");
	store__rd_str(&a, key);
	store__rd_add(&a, buf, len);
	store__rd_str(&a, "EX");
	store__rd_int(&a, ttl > 0 ? (long long)ttl : 1);
	rc = store__rd_cmd(s, "keeping a link", 1, &a, &rep);
	free(buf);
	if (rc == STORE_OK)
		freeReplyObject(rep);
	return rc;
}

/* Takes (GETDEL: once, whatever comes next) the entry of hash; 1 found
 * and valid, with the service key in kbuf. */
static int
rd_pend_take(struct store *s, const char *hash, char kind,
    const char *service, int64_t now, char *kbuf, size_t *klen,
    char *verifier, int *found)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	char key[16 + STORE__HASH_LEN];
	int rc;

	*found = 0;
	snprintf(key, sizeof(key), "bm:oauth:%s", hash);
	store__rd_init(&a);
	store__rd_str(&a, "GETDEL");
	store__rd_str(&a, key);
	if ((rc = store__rd_cmd(s, "taking a link", 0, &a, &rep)) != STORE_OK)
		return rc;
	if (rep->type == REDIS_REPLY_STRING)
		*found = store__pend_decode(s, hash, kind, service, now,
		    rep->str, rep->len, kbuf, klen, verifier);
	freeReplyObject(rep);
	return STORE_OK;
}

int
store__rd_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1])
{
	char kbuf[STORE__SVC_KEY_MAX + 1], hash[STORE__HASH_LEN + 1];
	size_t klen;
	int rc;

	id[0] = '\0';
	if ((rc = store__svc_key(s, kbuf, &klen, install_id, service, group,
	    user)) != STORE_OK)
		return rc;
	if (store__svc_random_hex(id, STORE_OAUTH_ID_LEN) != 0 ||
	    store__pend_hash(s, 'L', id, hash) != 0) {
		id[0] = '\0';
		return rd_nomem(s);
	}
	if ((rc = rd_pend_put(s, hash, 'L', now, ttl_s, kbuf, klen, NULL)) !=
	    STORE_OK)
		id[0] = '\0';
	return rc;
}

int
store__rd_oauth_link_take(struct store *s, const char *link,
    const char *service, int64_t now, unsigned ttl_s,
    char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	char kbuf[STORE__SVC_KEY_MAX + 1], hash[STORE__HASH_LEN + 1];
	size_t klen = 0;
	int rc, found;

	state[0] = verifier[0] = '\0';
	if (link == NULL || !store__pend_id_ok(link) || service == NULL)
		return STORE_NOTFOUND;
	if (store__pend_hash(s, 'L', link, hash) != 0)
		return rd_nomem(s);
	if ((rc = rd_pend_take(s, hash, 'L', service, now, kbuf, &klen, NULL,
	    &found)) != STORE_OK)
		return rc;
	if (!found)
		return STORE_NOTFOUND;
	/* The link is spent; a failure from here asks the user for a new
	 * link, nothing else is left behind. */
	if (store__svc_random_hex(state, STORE_OAUTH_ID_LEN) != 0 ||
	    store__svc_random_hex(verifier, STORE_OAUTH_VERIFIER_LEN) != 0 ||
	    store__pend_hash(s, 'S', state, hash) != 0)
		rc = rd_nomem(s);
	else
		rc = rd_pend_put(s, hash, 'S', now, ttl_s, kbuf, klen,
		    verifier);
	if (rc != STORE_OK)
		state[0] = verifier[0] = '\0';
	return rc;
}

int
store__rd_oauth_state_take(struct store *s, const char *state,
    const char *service, int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	char kbuf[STORE__SVC_KEY_MAX + 1], hash[STORE__HASH_LEN + 1];
	struct store_service *sv;
	const char *kk;
	size_t klen = 0;
	int rc, found;

	*bound = NULL;
	verifier[0] = '\0';
	if (state == NULL || !store__pend_id_ok(state) || service == NULL)
		return STORE_NOTFOUND;
	if (store__pend_hash(s, 'S', state, hash) != 0)
		return rd_nomem(s);
	if ((rc = rd_pend_take(s, hash, 'S', service, now, kbuf, &klen,
	    verifier, &found)) != STORE_OK)
		return rc;
	if (!found) {
		verifier[0] = '\0';
		return STORE_NOTFOUND;
	}
	kbuf[klen] = '\0';
	kk = kbuf;
	if ((sv = calloc(1, sizeof(*sv))) == NULL)
		return rd_nomem(s);
	memcpy(sv->install_id, kk, STORE_INSTALL_ID_LEN);
	kk += STORE_INSTALL_ID_LEN + 1;
	sv->service = strdup(kk);
	kk += strlen(kk) + 1;
	sv->group = strdup(kk);
	kk += strlen(kk) + 1;
	sv->user = strdup(kk);
	if (sv->service == NULL || sv->group == NULL || sv->user == NULL) {
		store_service_free(sv);
		return rd_nomem(s);
	}
	*bound = sv;
	return STORE_OK;
}

/* --- key rotation -------------------------------------------------------- */

struct rd_rekey {
	unsigned char okey[STORE__KEY_BYTES], nkey[STORE__KEY_BYTES];
	struct store__rd_batch b;
	size_t n;
};

/*
 * Re-seals the sealed part of value v (vlen bytes, past skip) bound to
 * aad, and queues SET key (or HSET hkey field when field is not NULL).
 */
static int
rd_reseal(struct store *s, struct rd_rekey *r, const char *key, size_t klen,
    const char *field, size_t flen, const char *v, size_t vlen, size_t skip,
    const void *aad, size_t aadlen, long long ttl_ms)
{
	struct store__rd_args a;
	unsigned char *sealed = NULL, *buf = NULL;
	char *plain = NULL;
	size_t plen = 0, slen = 0;
	int ret, rc = STORE_ERROR;

	if (skip >= vlen)
		return STORE_OK;
	memcpy(s->ekey, r->okey, STORE__KEY_BYTES);
	ret = store__unseal(s, aad, aadlen, (const unsigned char *)v + skip,
	    vlen - skip, &plain, &plen);
	memcpy(s->ekey, r->nkey, STORE__KEY_BYTES);
	if (ret != 0) {
		snprintf(s->err, sizeof(s->err), "redis: re-encrypting: a "
		    "secret does not decrypt under the current key");
		goto out;
	}
	ret = store__seal(s, aad, aadlen, plain, plen, &sealed, &slen);
	store__crypto_wipe(plain, plen);
	if (ret != 0 || (buf = malloc(skip + slen)) == NULL) {
		rc = rd_nomem(s);
		goto out;
	}
	memcpy(buf, v, skip);
	memcpy(buf + skip, sealed, slen);
	store__rd_init(&a);
	store__rd_str(&a, field != NULL ? "HSET" : "SET");
	store__rd_add(&a, key, klen);
	if (field != NULL)
		store__rd_add(&a, field, flen);
	store__rd_add(&a, buf, skip + slen);
	if (ttl_ms > 0) {
		store__rd_str(&a, "PX");
		store__rd_int(&a, ttl_ms);
	}
	if (store__rd_batch_add(&r->b, -1, 0, &a) < 0) {
		rc = rd_nomem(s);
		goto out;
	}
	r->n++;
	rc = STORE_OK;
out:
	memcpy(s->ekey, r->okey, STORE__KEY_BYTES);
	free(plain);
	free(sealed);
	free(buf);
	return rc;
}

static int
rd_rekey_tokens(struct store *s, struct rd_rekey *r)
{
	struct store__rd_args a;
	redisReply *rep = NULL;
	size_t i;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "HGETALL");
	store__rd_str(&a, "bm:tok");
	if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &rep)) != STORE_OK)
		return rc;
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements &&
	    rc == STORE_OK; i += 2)
		rc = rd_reseal(s, r, "bm:tok", 6, rep->element[i]->str,
		    rep->element[i]->len, rep->element[i + 1]->str,
		    rep->element[i + 1]->len, 0, rep->element[i]->str,
		    rep->element[i]->len, 0);
	freeReplyObject(rep);
	return rc;
}

/* Every installation's webhook secret (bound to its install id); one still
 * in clear (written before the store sealed it) is left to its first
 * read, which seals it under the key of the day. */
static int
rd_rekey_installs(struct store *s, struct rd_rekey *r)
{
	struct store__rd_args a;
	redisReply *hs = NULL, *v = NULL;
	char key[16 + STORE__HASH_LEN];
	size_t i;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "SMEMBERS");
	store__rd_str(&a, "bm:insts");
	if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &hs)) != STORE_OK)
		return rc;
	for (i = 0; hs->type == REDIS_REPLY_ARRAY && i < hs->elements &&
	    rc == STORE_OK; i++) {
		if (hs->element[i]->len != STORE__HASH_LEN)
			continue;
		snprintf(key, sizeof(key), "bm:inst:%s", hs->element[i]->str);
		store__rd_init(&a);
		store__rd_str(&a, "HMGET");
		store__rd_str(&a, key);
		store__rd_str(&a, "id");
		store__rd_str(&a, "secret");
		if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &v)) !=
		    STORE_OK)
			break;
		if (v->type == REDIS_REPLY_ARRAY && v->elements == 2 &&
		    v->element[0]->type == REDIS_REPLY_STRING &&
		    v->element[0]->len == STORE_INSTALL_ID_LEN &&
		    v->element[1]->type == REDIS_REPLY_STRING &&
		    v->element[1]->len == STORE__INST_SEALED)
			rc = rd_reseal(s, r, key, strlen(key), "secret", 6,
			    v->element[1]->str, v->element[1]->len, 0,
			    v->element[0]->str, STORE_INSTALL_ID_LEN, 0);
		freeReplyObject(v);
		v = NULL;
	}
	freeReplyObject(hs);
	return rc;
}

/* Every sealed value of a secret state name (store.h), bound to the
 * token's hash, NUL, the name. */
static int
rd_rekey_states(struct store *s, struct rd_rekey *r)
{
	static const char *const names[] = { STORE_STATE_SECRET_PREVIOUS,
	    STORE_STATE_SECRET_EXTERNAL };
	char key[16 + STORE__HASH_LEN], aad[STORE__HASH_LEN + 1 + 64];
	struct store__rd_args a;
	redisReply *hs = NULL, *v = NULL;
	size_t i, j, nlen;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "SMEMBERS");
	store__rd_str(&a, "bm:sts");
	if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &hs)) != STORE_OK)
		return rc;
	for (i = 0; hs->type == REDIS_REPLY_ARRAY && i < hs->elements &&
	    rc == STORE_OK; i++) {
		if (hs->element[i]->len != STORE__HASH_LEN)
			continue;
		snprintf(key, sizeof(key), "bm:st:%s", hs->element[i]->str);
		store__rd_init(&a);
		store__rd_str(&a, "HMGET");
		store__rd_str(&a, key);
		for (j = 0; j < 2; j++)
			store__rd_str(&a, names[j]);
		if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &v)) !=
		    STORE_OK)
			break;
		for (j = 0; v->type == REDIS_REPLY_ARRAY && j < v->elements &&
		    j < 2 && rc == STORE_OK; j++) {
			/* Sealed ones only (crypto.c's version byte): a clear
			 * one from before is sealed at its next write. */
			if (v->element[j]->type != REDIS_REPLY_STRING ||
			    v->element[j]->len == 0 || v->element[j]->str[0] !=
			    1)
				continue;
			nlen = strlen(names[j]);
			memcpy(aad, hs->element[i]->str, STORE__HASH_LEN);
			aad[STORE__HASH_LEN] = '\0';
			memcpy(aad + STORE__HASH_LEN + 1, names[j], nlen);
			rc = rd_reseal(s, r, key, strlen(key), names[j], nlen,
			    v->element[j]->str, v->element[j]->len, 0, aad,
			    STORE__HASH_LEN + 1 + nlen, 0);
		}
		freeReplyObject(v);
		v = NULL;
	}
	freeReplyObject(hs);
	return rc;
}

/* Every service record of every installation. */
static int
rd_rekey_services(struct store *s, struct rd_rekey *r)
{
	struct store__rd_args a;
	redisReply *ids = NULL, *mem = NULL, *v = NULL;
	struct rd_svc k;
	char skey[16 + STORE_INSTALL_ID_LEN];
	size_t i, j;
	int rc;

	store__rd_init(&a);
	store__rd_str(&a, "SMEMBERS");
	store__rd_str(&a, "bm:svi");
	if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &ids)) != STORE_OK)
		return rc;
	for (i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements &&
	    rc == STORE_OK; i++) {
		if (ids->element[i]->len != STORE_INSTALL_ID_LEN)
			continue;
		snprintf(skey, sizeof(skey), "bm:svs:%s", ids->element[i]->str);
		store__rd_init(&a);
		store__rd_str(&a, "SMEMBERS");
		store__rd_str(&a, skey);
		if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &mem)) !=
		    STORE_OK)
			break;
		for (j = 0; mem->type == REDIS_REPLY_ARRAY &&
		    j < mem->elements && rc == STORE_OK; j++) {
			if (mem->element[j]->len + STORE_INSTALL_ID_LEN + 1 >
			    STORE__SVC_KEY_MAX)
				continue;
			memset(&k, 0, sizeof(k));
			memcpy(k.kbuf, ids->element[i]->str,
			    STORE_INSTALL_ID_LEN);
			memcpy(k.kbuf + STORE_INSTALL_ID_LEN + 1,
			    mem->element[j]->str, mem->element[j]->len);
			k.klen = STORE_INSTALL_ID_LEN + 1 +
			    mem->element[j]->len;
			if ((rc = rd_svc_rkey(s, &k)) != STORE_OK)
				break;
			store__rd_init(&a);
			store__rd_str(&a, "GET");
			store__rd_add(&a, k.rkey, k.rlen);
			if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a,
			    &v)) == STORE_OK) {
				if (v->type == REDIS_REPLY_STRING)
					rc = rd_reseal(s, r, k.rkey, k.rlen,
					    NULL, 0, v->str, v->len,
					    RD_SVC_HEAD, k.kbuf, k.klen, 0);
				freeReplyObject(v);
			}
			free(k.rkey);
		}
		freeReplyObject(mem);
		mem = NULL;
	}
	freeReplyObject(ids);
	return rc;
}

/* Pending states: their verifiers, bound to the entry's hash. */
static int
rd_rekey_pend_key(struct store *s, struct rd_rekey *r, const char *key,
    size_t len)
{
	struct store__rd_args a;
	redisReply *v = NULL, *ttl = NULL;
	const unsigned char *p;
	size_t klen;
	int rc;

	if (len != 9 + STORE__HASH_LEN)
		return STORE_OK;
	store__rd_init(&a);
	store__rd_str(&a, "GET");
	store__rd_add(&a, key, len);
	if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &v)) != STORE_OK)
		return rc;
	store__rd_init(&a);
	store__rd_str(&a, "PTTL");
	store__rd_add(&a, key, len);
	if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &ttl)) !=
	    STORE_OK) {
		freeReplyObject(v);
		return rc;
	}
	p = (const unsigned char *)v->str;
	if (v->type == REDIS_REPLY_STRING && v->len > RD_PEND_HEAD &&
	    p[1] == 'S' && ttl->type == REDIS_REPLY_INTEGER &&
	    ttl->integer > 0) {
		klen = (size_t)p[10] << 8 | p[11];
		rc = rd_reseal(s, r, key, len, NULL, 0, v->str, v->len,
		    RD_PEND_HEAD + klen, key + 9, STORE__HASH_LEN,
		    ttl->integer);
	}
	freeReplyObject(v);
	freeReplyObject(ttl);
	return rc;
}

static int
rd_rekey_pending(struct store *s, struct rd_rekey *r)
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
		store__rd_str(&a, "bm:oauth:*");
		store__rd_str(&a, "COUNT");
		store__rd_int(&a, 500);
		if ((rc = store__rd_cmd(s, "re-encrypting", 1, &a, &rep)) !=
		    STORE_OK)
			return rc;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
			freeReplyObject(rep);
			return STORE_ERROR;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		keys = rep->element[1];
		for (i = 0; i < keys->elements && rc == STORE_OK; i++)
			rc = rd_rekey_pend_key(s, r, keys->element[i]->str,
			    keys->element[i]->len);
		freeReplyObject(rep);
	} while (rc == STORE_OK && strcmp(cursor, "0") != 0);
	return rc;
}

int
store__rd_rekey(struct store *s, const char *new_key_file, size_t *n)
{
	struct rd_rekey *r;
	redisReply *rep = NULL;
	char err[512];
	int rc;

	if (n != NULL)
		*n = 0;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return rd_nomem(s);
	store__rd_batch_init(&r->b);
	if (new_key_file == NULL ||
	    store__key_read(new_key_file, r->nkey, err, sizeof(err)) < 0) {
		rc = store__einval(s, "%s", new_key_file == NULL ?
		    "no key file" : err);
		goto out;
	}
	memcpy(r->okey, s->ekey, STORE__KEY_BYTES);
	/* Read everything, then write it all in one MULTI/EXEC: a failure
	 * leaves every secret under the old key. */
	if ((rc = rd_rekey_tokens(s, r)) != STORE_OK ||
	    (rc = rd_rekey_installs(s, r)) != STORE_OK ||
	    (rc = rd_rekey_states(s, r)) != STORE_OK ||
	    (rc = rd_rekey_services(s, r)) != STORE_OK ||
	    (rc = rd_rekey_pending(s, r)) != STORE_OK)
		goto out;
	if (r->b.n > 0 && (rc = store__rd_exec(s, "re-encrypting", NULL, NULL,
	    NULL, &r->b, &rep)) != STORE_OK)
		goto out;
	if (rep != NULL)
		freeReplyObject(rep);
	memcpy(s->ekey, r->nkey, STORE__KEY_BYTES);
	if (n != NULL)
		*n = r->n;
out:
	store__rd_batch_free(&r->b);
	store__crypto_wipe(r, sizeof(*r));
	free(r);
	return rc;
}
