/*
 * store/seen.c - the ids of signed deliveries already applied, so a replay
 * within the sender's retry window (7 days for Standard Webhooks) is not
 * applied twice.  Two B-trees in the same transactions: "install id\0id" ->
 * the claim's time, and its time index (8 bytes big-endian, then the same
 * key) that purges walk from the oldest, a bounded batch per claim.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "store/store_int.h"

/* A time-index key: 8 bytes of time, then "install id\0id". */
#define SEEN_TKEY_MAX (8 + STORE_INSTALL_ID_LEN + 1 + STORE_DELIVERY_ID_MAX)

struct seen_args {
	const char *install_id, *id;
	size_t ilen, dlen;
	int64_t now;
	unsigned ttl;
	int *dup;
};

static void
seen_tkey(DBT *key, unsigned char *buf, int64_t t, const DBT *k)
{
	uint64_t u = (uint64_t)t;
	int i;

	for (i = 0; i < 8; i++)
		buf[i] = (unsigned char)(u >> (56 - 8 * i));
	memcpy(buf + 8, k->data, k->size);
	memset(key, 0, sizeof(*key));
	key->data = buf;
	key->size = 8 + k->size;
}

static int64_t
seen_time(const unsigned char *p)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

/* Forgets up to STORE_DELIVERY_PURGE_BATCH claims made before cutoff. */
static int
seen_purge(struct store *s, DB_TXN *txn, int64_t cutoff)
{
	unsigned char kbuf[SEEN_TKEY_MAX];
	DBC *c = NULL;
	DBT key, data, pk;
	int ret, t, n = 0;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kbuf;
	key.ulen = sizeof(kbuf);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = s->seent->cursor(s->seent, txn, &c, 0)) != 0)
		goto out;
	while (n < STORE_DELIVERY_PURGE_BATCH &&
	    (ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0) {
		if (key.size <= 8 || seen_time(kbuf) >= cutoff)
			break;
		memset(&pk, 0, sizeof(pk));
		pk.data = kbuf + 8;
		pk.size = key.size - 8;
		if ((ret = s->seen->del(s->seen, txn, &pk, 0)) != 0 &&
		    ret != DB_NOTFOUND)
			goto out;
		if ((ret = c->del(c, 0)) != 0)
			goto out;
		n++;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

/* Reads the time of claim k into *t; 0, DB_NOTFOUND or an error. */
static int
seen_get(struct store *s, DB_TXN *txn, DBT *k, int64_t *t)
{
	unsigned char v[8];
	DBT data;
	int ret;

	memset(&data, 0, sizeof(data));
	data.data = v;
	data.ulen = sizeof(v);
	data.flags = DB_DBT_USERMEM;
	if ((ret = s->seen->get(s->seen, txn, k, &data, DB_RMW)) != 0)
		return ret;
	if (data.size != 8)
		return EINVAL;
	*t = seen_time(v);
	return 0;
}

static int
claim_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct seen_args *a = arg;
	unsigned char tbuf[SEEN_TKEY_MAX], v[8];
	char kbuf[STORE__KEY_MAX];
	DBT key, tkey, data, empty;
	int64_t old;
	int ret;

	(void)rc;
	*a->dup = 0;
	store__key(&key, kbuf, a->install_id, a->ilen, a->id, a->dlen);
	ret = seen_get(s, txn, &key, &old);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (ret == 0 && old > a->now - (int64_t)a->ttl) {
		*a->dup = 1;
		return 0;
	}
	if (ret == 0) {
		/* Expired but not purged yet: its index entry goes. */
		seen_tkey(&tkey, tbuf, old, &key);
		if ((ret = s->seent->del(s->seent, txn, &tkey, 0)) != 0 &&
		    ret != DB_NOTFOUND)
			return ret;
	}
	seen_tkey(&tkey, tbuf, a->now, &key);
	memcpy(v, tbuf, 8);
	memset(&data, 0, sizeof(data));
	data.data = v;
	data.size = 8;
	memset(&empty, 0, sizeof(empty));
	if ((ret = s->seen->put(s->seen, txn, &key, &data, 0)) != 0 ||
	    (ret = s->seent->put(s->seent, txn, &tkey, &empty, 0)) != 0)
		return ret;
	return seen_purge(s, txn, a->now - (int64_t)a->ttl);
}

static int
seen_check(struct store *s, struct seen_args *a)
{
	int rc;

	if ((rc = store__check_id(s, "install id", a->install_id, &a->ilen))
	    != STORE_OK || (rc = store__check_id(s, "delivery id", a->id,
	    &a->dlen)) != STORE_OK)
		return rc;
	if (a->ilen != STORE_INSTALL_ID_LEN)
		return store__einval(s, "install id is not %d characters",
		    STORE_INSTALL_ID_LEN);
	if (a->dlen > STORE_DELIVERY_ID_MAX)
		return store__einval(s, "delivery id is longer than %d bytes",
		    STORE_DELIVERY_ID_MAX);
	return STORE_OK;
}

int
store__seen_check(struct store *s, const char *install_id, const char *id)
{
	struct seen_args a = { .install_id = install_id, .id = id };

	return seen_check(s, &a);
}

int
store__seen_claim(struct store *s, DB_TXN *txn, const char *install_id,
    const char *id, int64_t now, unsigned ttl, int *dup)
{
	struct seen_args a = { .install_id = install_id, .id = id, .now = now,
	    .ttl = ttl, .dup = dup, .ilen = strlen(install_id),
	    .dlen = strlen(id) };

	return claim_fn(s, txn, &a, NULL);
}

int
store__bdb_delivery_claim(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s, int *dup)
{
	struct seen_args a = { .install_id = install_id, .id = id, .now = now,
	    .ttl = ttl_s, .dup = dup };
	int rc;

	*dup = 0;
	if ((rc = seen_check(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "claiming delivery", claim_fn,
	    &a);
}

static int
release_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct seen_args *a = arg;
	unsigned char tbuf[SEEN_TKEY_MAX];
	char kbuf[STORE__KEY_MAX];
	DBT key, tkey;
	int64_t old;
	int ret;

	store__key(&key, kbuf, a->install_id, a->ilen, a->id, a->dlen);
	ret = seen_get(s, txn, &key, &old);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	seen_tkey(&tkey, tbuf, old, &key);
	if ((ret = s->seent->del(s->seent, txn, &tkey, 0)) != 0 &&
	    ret != DB_NOTFOUND)
		return ret;
	return s->seen->del(s->seen, txn, &key, 0);
}

int
store__bdb_delivery_release(struct store *s, const char *install_id,
    const char *id)
{
	struct seen_args a = { .install_id = install_id, .id = id };
	int rc;

	if ((rc = seen_check(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "releasing delivery",
	    release_fn, &a);
}
