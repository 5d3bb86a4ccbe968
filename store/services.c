/*
 * store/services.c - third-party services of an installation (SPEC §12)
 * and the pending steps of their OAuth link.
 *
 * services.db: "install id\0service\0group\0user" -> version (1) | flags
 * (1) | gen (8) | created (8) | updated (8) | expires (8) | lease (8) |
 * sealed "access\0refresh\0scope", the seal bound to the key (a record
 * copied under another key does not open).  Numbers big-endian.
 *
 * oauth-pending.db: keyed hash of "L" + link id or "S" + state ->
 * version (1) | kind (1) | expires (8) | key length (2) | the service key |
 * for a state, the PKCE verifier sealed, bound to the hash.  Neither a
 * link id nor a state is kept as such: the store files do not let anyone
 * finish a link they did not start.
 *
 * A refresh of a service's tokens takes a lease in the record (a short
 * transaction), makes its HTTP call with no transaction open (BDB-NOTES:
 * the watchdog), then saves the new tokens only if the record is still at
 * the generation it leased: two processes never both spend a refresh
 * token the provider rotates.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "store/store_int.h"

#define SVC_VERSION 1
#define SVC_HEAD 42
#define SVC_NEEDS_LINK 1
#define SVC_KEY_MAX (STORE_INSTALL_ID_LEN + STORE_SERVICE_NAME_MAX + \
    2 * STORE_SERVICE_SCOPE_MAX + 3)
#define PEND_VERSION 1
#define PEND_HEAD 12
/* Expired pending entries a creation looks at, at most: they live ten
 * minutes, so the table holds the links of ten minutes. */
#define PEND_PURGE_SCAN 256

int
store__svc_random_hex(char *out, size_t hexlen)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t n = hexlen / 2, got = 0, i;
	ssize_t r;

	while (got < n) {
		r = getrandom(raw + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		got += (size_t)r;
	}
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[hexlen] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* The key of a service; checks every part.  *len gets its size. */
int
store__svc_key(struct store *s, char *buf, size_t *len, const char *install_id,
    const char *service, const char *group, const char *user)
{
	size_t il, sl, gl, ul, i;

	if (install_id == NULL || strlen(install_id) != STORE_INSTALL_ID_LEN)
		return store__einval(s, "install id is not %d characters",
		    STORE_INSTALL_ID_LEN);
	if (service == NULL || (sl = strlen(service)) == 0 ||
	    sl > STORE_SERVICE_NAME_MAX)
		return store__einval(s, "service name is empty or longer "
		    "than %d", STORE_SERVICE_NAME_MAX);
	for (i = 0; i < sl; i++)
		if (!((service[i] >= 'a' && service[i] <= 'z') ||
		    (service[i] >= '0' && service[i] <= '9') ||
		    service[i] == '_'))
			return store__einval(s, "service name is not "
			    "[a-z0-9_]");
	group = group != NULL ? group : "";
	user = user != NULL ? user : "";
	gl = strlen(group);
	ul = strlen(user);
	if (gl > STORE_SERVICE_SCOPE_MAX || ul > STORE_SERVICE_SCOPE_MAX)
		return store__einval(s, "group or user id is longer than %d "
		    "bytes", STORE_SERVICE_SCOPE_MAX);
	il = STORE_INSTALL_ID_LEN;
	memcpy(buf, install_id, il);
	buf[il] = '\0';
	memcpy(buf + il + 1, service, sl + 1);
	memcpy(buf + il + sl + 2, group, gl + 1);
	memcpy(buf + il + sl + gl + 3, user, ul);
	*len = il + sl + gl + ul + 3;
	return STORE_OK;
}

void
store_service_free(struct store_service *sv)
{
	if (sv == NULL)
		return;
	if (sv->access != NULL)
		OPENSSL_cleanse(sv->access, strlen(sv->access));
	if (sv->refresh != NULL)
		OPENSSL_cleanse(sv->refresh, strlen(sv->refresh));
	free(sv->service);
	free(sv->group);
	free(sv->user);
	/* access, refresh and scope share one allocation. */
	free(sv->access);
	free(sv);
}

/* The next NUL-ended part of a key ending at end (new), *e moved on. */
static char *
svc_part(const char **e, const char *end)
{
	size_t n = *e < end ? strnlen(*e, (size_t)(end - *e)) : 0;
	char *r = strndup(*e < end ? *e : "", n);

	*e += n + 1;
	return r;
}

/* Decodes a record of key k into *out (new).  0, ENOMEM, EINVAL, ESEAL. */
int
store__svc_decode(struct store *s, const DBT *k, const DBT *d,
    struct store_service **out)
{
	const unsigned char *p = d->data;
	const char *kk = k->data, *e, *end = kk + k->size;
	struct store_service *sv;
	size_t plen = 0;
	char *plain = NULL;
	int ret;

	*out = NULL;
	if (d->size < SVC_HEAD || p[0] != SVC_VERSION ||
	    k->size < STORE_INSTALL_ID_LEN + 3)
		return EINVAL;
	if ((ret = store__unseal(s, k->data, k->size, p + SVC_HEAD,
	    d->size - SVC_HEAD, &plain, &plen)) != 0)
		return ret == ENOMEM ? ENOMEM : STORE__ESEAL;
	if ((sv = calloc(1, sizeof(*sv))) == NULL) {
		OPENSSL_cleanse(plain, plen);
		free(plain);
		return ENOMEM;
	}
	memcpy(sv->install_id, kk, STORE_INSTALL_ID_LEN);
	e = kk + STORE_INSTALL_ID_LEN + 1;
	sv->service = svc_part(&e, end);
	sv->group = svc_part(&e, end);
	sv->user = svc_part(&e, end);
	/* plain is "access\0refresh\0scope" and its NUL. */
	sv->access = plain;
	sv->refresh = plain + strlen(plain) + 1;
	if ((size_t)(sv->refresh - plain) > plen)
		sv->refresh = plain + plen;
	sv->scope = sv->refresh + strlen(sv->refresh);
	if ((size_t)(sv->scope - plain) < plen)
		sv->scope++;
	sv->needs_link = p[1] & SVC_NEEDS_LINK;
	sv->gen = store__be64_get(p + 2);
	sv->created = (int64_t)store__be64_get(p + 10);
	sv->updated = (int64_t)store__be64_get(p + 18);
	sv->expires = (int64_t)store__be64_get(p + 26);
	sv->lease_until = (int64_t)store__be64_get(p + 34);
	if (sv->service == NULL || sv->group == NULL || sv->user == NULL) {
		store_service_free(sv);
		return ENOMEM;
	}
	*out = sv;
	return 0;
}

/* Encodes sv's record under key k into *d (data new). */
int
store__svc_encode(struct store *s, const DBT *k, const struct store_service *sv,
    DBT *d)
{
	const char *refresh = sv->refresh != NULL ? sv->refresh : "";
	const char *scope = sv->scope != NULL ? sv->scope : "";
	size_t al = strlen(sv->access), rl = strlen(refresh),
	    sl = strlen(scope), plen = al + rl + sl + 2, slen = 0;
	unsigned char *sealed = NULL, *buf;
	char *plain;
	int ret;

	if ((plain = malloc(plen)) == NULL)
		return ENOMEM;
	memcpy(plain, sv->access, al + 1);
	memcpy(plain + al + 1, refresh, rl + 1);
	memcpy(plain + al + rl + 2, scope, sl);
	ret = store__seal(s, k->data, k->size, plain, plen, &sealed, &slen);
	OPENSSL_cleanse(plain, plen);
	free(plain);
	if (ret != 0)
		return ret;
	if ((buf = malloc(SVC_HEAD + slen)) == NULL) {
		free(sealed);
		return ENOMEM;
	}
	buf[0] = SVC_VERSION;
	buf[1] = sv->needs_link ? SVC_NEEDS_LINK : 0;
	store__be64_put(buf + 2, sv->gen);
	store__be64_put(buf + 10, (uint64_t)sv->created);
	store__be64_put(buf + 18, (uint64_t)sv->updated);
	store__be64_put(buf + 26, (uint64_t)sv->expires);
	store__be64_put(buf + 34, (uint64_t)sv->lease_until);
	memcpy(buf + SVC_HEAD, sealed, slen);
	free(sealed);
	memset(d, 0, sizeof(*d));
	d->data = buf;
	d->size = (u_int32_t)(SVC_HEAD + slen);
	return 0;
}

/* Reads the record of k with a write lock: *sv new, or DB_NOTFOUND. */
static int
svc_read(struct store *s, DB_TXN *txn, DBT *k, struct store_service **sv,
    u_int32_t flags)
{
	DBT d;
	int ret;

	*sv = NULL;
	memset(&d, 0, sizeof(d));
	d.flags = DB_DBT_MALLOC;
	if ((ret = s->svc->get(s->svc, txn, k, &d, flags)) != 0)
		return ret;
	ret = store__svc_decode(s, k, &d, sv);
	free(d.data);
	return ret;
}

static int
svc_write(struct store *s, DB_TXN *txn, DBT *k, const struct store_service *sv)
{
	DBT d;
	int ret;

	if ((ret = store__svc_encode(s, k, sv, &d)) != 0)
		return ret;
	ret = s->svc->put(s->svc, txn, k, &d, 0);
	free(d.data);
	return ret;
}

struct svc_args {
	DBT key;
	char kbuf[SVC_KEY_MAX + 1]; /* + a NUL for state_take */
	const struct store_service *in;
	struct store_service **out;
	uint64_t gen;
	int64_t now;
	unsigned lease_s;
	int *got, needs_link;
};

static int
svc_args_init(struct store *s, struct svc_args *a, const char *install_id,
    const char *service, const char *group, const char *user)
{
	size_t len;
	int rc;

	if ((rc = store__svc_key(s, a->kbuf, &len, install_id, service, group, user))
	    != STORE_OK)
		return rc;
	memset(&a->key, 0, sizeof(a->key));
	a->key.data = a->kbuf;
	a->key.size = (u_int32_t)len;
	return STORE_OK;
}

static int
put_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct svc_args *a = arg;
	struct store_service *old = NULL, nw = *a->in;
	int ret;

	(void)rc;
	ret = svc_read(s, txn, &a->key, &old, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND && ret != STORE__ESEAL &&
	    ret != EINVAL)
		return ret;
	nw.created = old != NULL ? old->created : nw.updated;
	nw.gen = (old != NULL ? old->gen : 0) + 1;
	nw.needs_link = 0;
	nw.lease_until = 0;
	store_service_free(old);
	return svc_write(s, txn, &a->key, &nw);
}

int
store__bdb_service_put(struct store *s, const struct store_service *in)
{
	struct svc_args a = { .in = in };
	int rc;

	if ((rc = svc_args_init(s, &a, in->install_id, in->service, in->group,
	    in->user)) != STORE_OK)
		return rc;
	if (in->access == NULL || in->access[0] == '\0')
		return store__einval(s, "a service needs an access token");
	return store__run(s, STORE__RUN_TXN, "saving service", put_fn, &a);
}

static int
get_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct svc_args *a = arg;
	int ret;

	ret = svc_read(s, txn, &a->key, a->out, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	return ret;
}

int
store__bdb_service_get(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user,
    struct store_service **out)
{
	struct svc_args a = { .out = out };
	int rc;

	*out = NULL;
	if ((rc = svc_args_init(s, &a, install_id, service, group, user))
	    != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_READ, "reading service", get_fn, &a);
}

static int
lease_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct svc_args *a = arg;
	struct store_service *sv = NULL;
	int ret;

	*a->got = 0;
	ret = svc_read(s, txn, &a->key, &sv, DB_RMW);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	if (sv->gen == a->gen && !sv->needs_link && sv->lease_until <= a->now) {
		sv->lease_until = a->now + (int64_t)a->lease_s;
		if ((ret = svc_write(s, txn, &a->key, sv)) == 0)
			*a->got = 1;
	}
	store_service_free(sv);
	return ret;
}

int
store__bdb_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got)
{
	struct svc_args a = { .gen = gen, .now = now, .lease_s = lease_s,
	    .got = got };
	int rc;

	*got = 0;
	if ((rc = svc_args_init(s, &a, install_id, service, group, user))
	    != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "leasing service", lease_fn, &a);
}

static int
refreshed_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct svc_args *a = arg;
	struct store_service *sv = NULL, nw;
	int ret;

	ret = svc_read(s, txn, &a->key, &sv, DB_RMW);
	if (ret == DB_NOTFOUND || (ret == 0 && sv->gen != a->gen)) {
		store_service_free(sv);
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	nw = *sv;
	nw.access = a->in->access;
	if (a->in->refresh != NULL)
		nw.refresh = a->in->refresh;
	if (a->in->scope != NULL && a->in->scope[0] != '\0')
		nw.scope = a->in->scope;
	nw.expires = a->in->expires;
	nw.updated = a->in->updated;
	nw.gen = sv->gen + 1;
	nw.lease_until = 0;
	nw.needs_link = 0;
	ret = svc_write(s, txn, &a->key, &nw);
	store_service_free(sv);
	return ret;
}

int
store__bdb_service_refreshed(struct store *s, const struct store_service *in,
    uint64_t gen)
{
	struct svc_args a = { .in = in, .gen = gen };
	int rc;

	if ((rc = svc_args_init(s, &a, in->install_id, in->service, in->group,
	    in->user)) != STORE_OK)
		return rc;
	if (in->access == NULL || in->access[0] == '\0')
		return store__einval(s, "a service needs an access token");
	return store__run(s, STORE__RUN_TXN, "saving refreshed service",
	    refreshed_fn, &a);
}

static int
lease_end_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct svc_args *a = arg;
	struct store_service *sv = NULL;
	int ret;

	ret = svc_read(s, txn, &a->key, &sv, DB_RMW);
	if (ret == DB_NOTFOUND || (ret == 0 && sv->gen != a->gen)) {
		store_service_free(sv);
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	sv->lease_until = 0;
	if (a->needs_link)
		sv->needs_link = 1;
	ret = svc_write(s, txn, &a->key, sv);
	store_service_free(sv);
	return ret;
}

int
store__bdb_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link)
{
	struct svc_args a = { .gen = gen, .needs_link = needs_link };
	int rc;

	if ((rc = svc_args_init(s, &a, install_id, service, group, user))
	    != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "ending service lease",
	    lease_end_fn, &a);
}

static int
delete_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct svc_args *a = arg;
	int ret;

	ret = s->svc->del(s->svc, txn, &a->key, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	return ret;
}

int
store__bdb_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user)
{
	struct svc_args a = { 0 };
	int rc;

	if ((rc = svc_args_init(s, &a, install_id, service, group, user))
	    != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "deleting service", delete_fn,
	    &a);
}

int
store__services_forget(struct store *s, DB_TXN *txn, const char *install_id,
    size_t *n)
{
	return store__delete_range(s->svc, txn, install_id,
	    STORE_INSTALL_ID_LEN, n);
}

struct each_args {
	const char *install_id;
	store_service_fn fn;
	void *arg;
};

static int
each_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct each_args *a = arg;
	struct store_service *sv;
	DBC *c = NULL;
	DBT k, d;
	u_int32_t flag = DB_NEXT;
	int ret, t;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	if ((ret = s->svc->cursor(s->svc, txn, &c, 0)) != 0)
		return ret;
	if (a->install_id != NULL) {
		k.data = (void *)a->install_id;
		k.size = STORE_INSTALL_ID_LEN;
		flag = DB_SET_RANGE;
	}
	while ((ret = c->get(c, &k, &d, flag)) == 0) {
		flag = DB_NEXT;
		if (a->install_id != NULL && !store__has_prefix(&k,
		    a->install_id, STORE_INSTALL_ID_LEN))
			break;
		if ((ret = store__svc_decode(s, &k, &d, &sv)) != 0)
			break;
		*rc = a->fn(a->arg, sv);
		store_service_free(sv);
		if (*rc != 0)
			break;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	if ((t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

int
store__bdb_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg)
{
	struct each_args a = { install_id, fn, arg };

	if (install_id != NULL && strlen(install_id) != STORE_INSTALL_ID_LEN)
		return store__einval(s, "install id is not %d characters",
		    STORE_INSTALL_ID_LEN);
	return store__run(s, STORE__RUN_SCAN, "listing services", each_fn,
	    &a);
}

/* --- pending links and states ------------------------------------------ */

/* The key of a link id or state in oauth-pending.db: its keyed hash. */
int
store__pend_hash(const struct store *s, char kind, const char *id,
    char out[STORE__HASH_LEN + 1])
{
	char buf[STORE_OAUTH_ID_LEN + 2];
	size_t n = strnlen(id, STORE_OAUTH_ID_LEN + 1);

	if (n != STORE_OAUTH_ID_LEN)
		return EINVAL;
	buf[0] = kind;
	memcpy(buf + 1, id, n);
	return store__token_key(s, buf, n + 1, out);
}

/* Forgets up to PEND_PURGE_SCAN entries' worth of expired ones. */
static int
pend_purge(struct store *s, DB_TXN *txn, int64_t now)
{
	DBC *c = NULL;
	DBT k, d;
	int ret, t, n = 0;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	d.flags = DB_DBT_PARTIAL;
	d.dlen = PEND_HEAD;
	if ((ret = s->oauth->cursor(s->oauth, txn, &c, 0)) != 0)
		return ret;
	while (n++ < PEND_PURGE_SCAN &&
	    (ret = c->get(c, &k, &d, DB_NEXT | DB_RMW)) == 0)
		if (d.size < 10 ||
		    (int64_t)store__be64_get((unsigned char *)d.data + 2) <= now)
			if ((ret = c->del(c, 0)) != 0)
				break;
	if (ret == DB_NOTFOUND)
		ret = 0;
	if ((t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

int
store__pend_encode(struct store *s, const char *hash, char kind,
    int64_t expires, const DBT *skey, const char *verifier,
    unsigned char **out, size_t *len)
{
	unsigned char *buf, *sealed = NULL;
	size_t slen = 0;
	int ret;

	*out = NULL;
	if (verifier != NULL && (ret = store__seal(s, hash, STORE__HASH_LEN,
	    verifier, strlen(verifier), &sealed, &slen)) != 0)
		return ret;
	if ((buf = malloc(PEND_HEAD + skey->size + slen)) == NULL) {
		free(sealed);
		return ENOMEM;
	}
	buf[0] = PEND_VERSION;
	buf[1] = (unsigned char)kind;
	store__be64_put(buf + 2, (uint64_t)expires);
	buf[10] = (unsigned char)(skey->size >> 8);
	buf[11] = (unsigned char)skey->size;
	memcpy(buf + PEND_HEAD, skey->data, skey->size);
	if (sealed != NULL)
		memcpy(buf + PEND_HEAD + skey->size, sealed, slen);
	free(sealed);
	*out = buf;
	*len = PEND_HEAD + skey->size + slen;
	return 0;
}

/* Writes a pending entry: kind, expiry, the service key, maybe sealed. */
static int
pend_put(struct store *s, DB_TXN *txn, const char *hash, char kind,
    int64_t expires, const DBT *skey, const char *verifier)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	DBT k, d;
	int ret;

	if ((ret = store__pend_encode(s, hash, kind, expires, skey, verifier,
	    &buf, &len)) != 0)
		return ret;
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = (void *)hash;
	k.size = STORE__HASH_LEN;
	d.data = buf;
	d.size = (u_int32_t)len;
	ret = s->oauth->put(s->oauth, txn, &k, &d, 0);
	free(buf);
	return ret;
}

struct pend_args {
	struct svc_args sa;      /* the service key */
	const char *id, *service;
	int64_t now;
	unsigned ttl;
	char *out_id, *verifier;
	struct store_service **bound;
};

int
store__pend_decode(struct store *s, const char *hash, char kind,
    const char *service, int64_t now, const void *data, size_t size,
    char *kbuf, size_t *klenp, char *verifier)
{
	const unsigned char *p = data;
	char *v = NULL;
	size_t klen, vlen = 0, sl = strlen(service);
	int found = 0;

	if (size < PEND_HEAD || p[0] != PEND_VERSION || p[1] != kind ||
	    (int64_t)store__be64_get(p + 2) <= now)
		goto out;
	klen = (size_t)p[10] << 8 | p[11];
	if (klen > SVC_KEY_MAX || PEND_HEAD + klen > size ||
	    klen < STORE_INSTALL_ID_LEN + sl + 2 ||
	    memcmp(p + PEND_HEAD + STORE_INSTALL_ID_LEN + 1, service,
	    sl + 1) != 0)
		goto out;
	memcpy(kbuf, p + PEND_HEAD, klen);
	*klenp = klen;
	if (verifier != NULL) {
		if (store__unseal(s, hash, STORE__HASH_LEN,
		    p + PEND_HEAD + klen, size - PEND_HEAD - klen, &v,
		    &vlen) != 0 ||
		    vlen != STORE_OAUTH_VERIFIER_LEN)
			goto out;
		memcpy(verifier, v, vlen + 1);
	}
	found = 1;
out:
	if (v != NULL) {
		OPENSSL_cleanse(v, vlen);
		free(v);
	}
	return found;
}

/*
 * Consumes the pending entry of hash: it must be of kind and service and
 * not expired.  Fills a->sa.key with its service key; *verifier (may be
 * NULL) gets the sealed verifier opened.  *found 0 when refused.
 */
static int
pend_take(struct store *s, DB_TXN *txn, const char *hash, char kind,
    struct pend_args *a, char *verifier, int *found)
{
	size_t klen = 0;
	DBT k, d;
	int ret;

	*found = 0;
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = (void *)hash;
	k.size = STORE__HASH_LEN;
	d.flags = DB_DBT_MALLOC;
	ret = s->oauth->get(s->oauth, txn, &k, &d, DB_RMW);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	/* Used once, whatever comes next: a forged or late use burns it. */
	if ((ret = s->oauth->del(s->oauth, txn, &k, 0)) != 0)
		goto out;
	*found = store__pend_decode(s, hash, kind, a->service, a->now,
	    d.data, d.size, a->sa.kbuf, &klen, verifier);
	if (*found) {
		memset(&a->sa.key, 0, sizeof(a->sa.key));
		a->sa.key.data = a->sa.kbuf;
		a->sa.key.size = (u_int32_t)klen;
	}
out:
	free(d.data);
	return ret;
}

static int
link_create_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct pend_args *a = arg;
	char hash[STORE__HASH_LEN + 1];
	int ret;

	(void)rc;
	if ((ret = pend_purge(s, txn, a->now)) != 0 ||
	    (ret = store__svc_random_hex(a->out_id, STORE_OAUTH_ID_LEN)) != 0 ||
	    (ret = store__pend_hash(s, 'L', a->out_id, hash)) != 0)
		return ret;
	return pend_put(s, txn, hash, 'L', a->now + (int64_t)a->ttl,
	    &a->sa.key, NULL);
}

int
store__bdb_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1])
{
	struct pend_args a = { .now = now, .ttl = ttl_s, .out_id = id };
	int rc;

	id[0] = '\0';
	if ((rc = svc_args_init(s, &a.sa, install_id, service, group, user))
	    != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "creating link", link_create_fn,
	    &a);
}

static int
link_take_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct pend_args *a = arg;
	char hash[STORE__HASH_LEN + 1];
	int ret, found;

	if ((ret = store__pend_hash(s, 'L', a->id, hash)) != 0 ||
	    (ret = pend_take(s, txn, hash, 'L', a, NULL, &found)) != 0)
		return ret;
	if (!found) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if ((ret = store__svc_random_hex(a->out_id, STORE_OAUTH_ID_LEN)) != 0 ||
	    (ret = store__svc_random_hex(a->verifier, STORE_OAUTH_VERIFIER_LEN))
	    != 0 ||
	    (ret = store__pend_hash(s, 'S', a->out_id, hash)) != 0)
		return ret;
	return pend_put(s, txn, hash, 'S', a->now + (int64_t)a->ttl,
	    &a->sa.key, a->verifier);
}

/* A link id or state as given: 64 lowercase hex digits. */
int
store__pend_id_ok(const char *id)
{
	size_t i;

	for (i = 0; i < STORE_OAUTH_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id[i] == '\0';
}

int
store__bdb_oauth_link_take(struct store *s, const char *link,
    const char *service, int64_t now, unsigned ttl_s,
    char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	struct pend_args a = { .id = link, .service = service, .now = now,
	    .ttl = ttl_s, .out_id = state, .verifier = verifier };

	state[0] = verifier[0] = '\0';
	if (link == NULL || !store__pend_id_ok(link) || service == NULL)
		return STORE_NOTFOUND;
	return store__run(s, STORE__RUN_TXN, "taking link", link_take_fn, &a);
}

static int
state_take_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct pend_args *a = arg;
	char hash[STORE__HASH_LEN + 1];
	int ret, found;

	if ((ret = store__pend_hash(s, 'S', a->id, hash)) != 0 ||
	    (ret = pend_take(s, txn, hash, 'S', a, a->verifier, &found)) != 0)
		return ret;
	if (!found)
		*rc = STORE_NOTFOUND;
	return 0;
}

int
store__bdb_oauth_state_take(struct store *s, const char *state,
    const char *service, int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	struct pend_args a = { .id = state, .service = service, .now = now,
	    .verifier = verifier };
	struct store_service *sv;
	const char *kk;
	int rc;

	*bound = NULL;
	verifier[0] = '\0';
	if (state == NULL || !store__pend_id_ok(state) || service == NULL)
		return STORE_NOTFOUND;
	rc = store__run(s, STORE__RUN_TXN, "taking state", state_take_fn, &a);
	if (rc != STORE_OK)
		return rc;
	/* The key: install id, service, group, user, each NUL-ended but
	 * the last, which ends with the key. */
	a.sa.kbuf[a.sa.key.size] = '\0';
	kk = a.sa.kbuf;
	if ((sv = calloc(1, sizeof(*sv))) == NULL)
		return store__fail(s, ENOMEM, "taking state");
	memcpy(sv->install_id, kk, STORE_INSTALL_ID_LEN);
	kk += STORE_INSTALL_ID_LEN + 1;
	sv->service = strdup(kk);
	kk += strlen(kk) + 1;
	sv->group = strdup(kk);
	kk += strlen(kk) + 1;
	sv->user = strdup(kk);
	if (sv->service == NULL || sv->group == NULL || sv->user == NULL) {
		store_service_free(sv);
		return store__fail(s, ENOMEM, "taking state");
	}
	*bound = sv;
	return STORE_OK;
}

/* --- key rotation ------------------------------------------------------- */

struct rekey_args {
	unsigned char nkey[STORE__KEY_BYTES];
	size_t n;
};

/* Re-seals every value of db past skip bytes, bound to aad_fn's choice. */
static int
rekey_db(struct store *s, DB_TXN *txn, DB *db, int kind, unsigned char *okey,
    unsigned char *nkey, size_t *n)
{
	unsigned char *sealed = NULL, *buf;
	size_t skip, plen = 0, slen = 0, klen, olen, tail;
	char *plain = NULL;
	DBC *c = NULL;
	DBT k, d, nd;
	const void *aad;
	size_t aadlen;
	int ret, t;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	if ((ret = db->cursor(db, txn, &c, 0)) != 0)
		return ret;
	while ((ret = c->get(c, &k, &d, DB_NEXT | DB_RMW)) == 0) {
		const unsigned char *p = d.data;

		aad = k.data;
		aadlen = k.size;
		olen = 0; /* the sealed part runs to the end */
		if (kind == 3) {        /* installs.db: the webhook secret */
			if (d.size < STORE__INST_HEAD ||
			    p[0] != STORE__INST_VERSION)
				continue;
			aad = p + STORE__INST_IDOFF;
			aadlen = STORE_INSTALL_ID_LEN;
			skip = STORE__INST_SECOFF;
			olen = STORE__INST_SEALED;
		} else if (kind == 4) { /* state.db: the secret names' */
			const char *nul = memrchr(k.data, '\0', k.size);

			if (nul == NULL || d.size == 0 || p[0] != 1 ||
			    !store__state_secret(nul + 1, k.size -
			    (size_t)(nul + 1 - (const char *)k.data)))
				continue;
			skip = 0;
		} else if (kind == 0) { /* tokens.db: the hash is the key */
			if (k.size != STORE__HASH_LEN)
				continue;       /* "!format" and the like */
			skip = 0;
		} else if (kind == 1) { /* services.db */
			if (d.size < SVC_HEAD)
				continue;
			skip = SVC_HEAD;
		} else {                /* oauth-pending.db: states only */
			if (d.size < PEND_HEAD || p[1] != 'S')
				continue;
			klen = (size_t)p[10] << 8 | p[11];
			skip = PEND_HEAD + klen;
			if (skip >= d.size)
				continue;
		}
		if (olen == 0)
			olen = d.size - skip;
		tail = d.size - skip - olen;
		memcpy(s->ekey, okey, STORE__KEY_BYTES);
		if ((ret = store__unseal(s, aad, aadlen, p + skip,
		    olen, &plain, &plen)) != 0) {
			ret = STORE__ESEAL;
			break;
		}
		memcpy(s->ekey, nkey, STORE__KEY_BYTES);
		ret = store__seal(s, aad, aadlen, plain, plen, &sealed, &slen);
		OPENSSL_cleanse(plain, plen);
		free(plain);
		plain = NULL;
		if (ret != 0)
			break;
		if ((buf = malloc(skip + slen + tail)) == NULL) {
			free(sealed);
			ret = ENOMEM;
			break;
		}
		memcpy(buf, p, skip);
		memcpy(buf + skip, sealed, slen);
		memcpy(buf + skip + slen, p + skip + olen, tail);
		free(sealed);
		memset(&nd, 0, sizeof(nd));
		nd.data = buf;
		nd.size = (u_int32_t)(skip + slen + tail);
		ret = c->put(c, &k, &nd, DB_CURRENT);
		free(buf);
		if (ret != 0)
			break;
		(*n)++;
	}
	memcpy(s->ekey, okey, STORE__KEY_BYTES);
	if (ret == DB_NOTFOUND)
		ret = 0;
	if ((t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

static int
rekey_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct rekey_args *a = arg;
	unsigned char okey[STORE__KEY_BYTES];
	int ret;

	(void)rc;
	a->n = 0;
	memcpy(okey, s->ekey, sizeof(okey));
	if ((ret = rekey_db(s, txn, s->tokens, 0, okey, a->nkey, &a->n)) == 0 &&
	    (ret = rekey_db(s, txn, s->svc, 1, okey, a->nkey, &a->n)) == 0 &&
	    (ret = rekey_db(s, txn, s->oauth, 2, okey, a->nkey, &a->n)) == 0 &&
	    (ret = rekey_db(s, txn, s->inst, 3, okey, a->nkey, &a->n)) == 0)
		ret = rekey_db(s, txn, s->state, 4, okey, a->nkey, &a->n);
	OPENSSL_cleanse(okey, sizeof(okey));
	return ret;
}

int
store__bdb_rekey(struct store *s, const char *new_key_file, size_t *n)
{
	struct rekey_args a;
	char err[512];
	int rc;

	if (n != NULL)
		*n = 0;
	if (new_key_file == NULL ||
	    store__key_read(new_key_file, a.nkey, err, sizeof(err)) < 0)
		return store__einval(s, "%s", new_key_file == NULL ?
		    "no key file" : err);
	rc = store__run(s, STORE__RUN_TXN, "re-encrypting secrets", rekey_fn,
	    &a);
	if (rc == STORE_OK) {
		memcpy(s->ekey, a.nkey, STORE__KEY_BYTES);
		if (n != NULL)
			*n = a.n;
	}
	OPENSSL_cleanse(a.nkey, sizeof(a.nkey));
	return rc;
}
