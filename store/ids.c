/*
 * store/ids.c - botmatic id <-> external id pairs per integration.  The
 * integration in a key is its token's keyed hash (crypto.c, purge.c), never
 * the token.
 *
 * Two B-trees hold the two directions, keyed "integration\0id".  Ids hold no
 * NUL, so "tok\0..." and "tok2\0..." never mix and one integration's keys are
 * one contiguous range: delete_all walks just that range.  Every write
 * touches both trees in one transaction, which keeps them a bijection.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Deletes key from db if its value is want (wlen bytes); 0 or BDB error. */
static int
del_if(DB *db, DB_TXN *txn, DBT *key, const char *want, size_t wlen,
    int *deleted)
{
	char cur[STORE_ID_MAX + 1];
	int ret;

	if ((ret = store__get_id(db, txn, key, cur, DB_RMW)) != 0)
		return ret == DB_NOTFOUND ? 0 : ret;
	if (strlen(cur) != wlen || memcmp(cur, want, wlen) != 0)
		return 0;
	if ((ret = db->del(db, txn, key, 0)) == 0 && deleted != NULL)
		*deleted = 1;
	return ret;
}

static int
put(DB *db, DB_TXN *txn, DBT *key, const char *val, size_t len)
{
	DBT data;

	memset(&data, 0, sizeof(data));
	data.data = (void *)val;
	data.size = (u_int32_t)len;
	return db->put(db, txn, key, &data, 0);
}

int
store__ids_save(struct store *s, DB_TXN *txn, const char *integ, size_t ilen,
    const char *bid, size_t blen, const char *eid, size_t elen, int *rc)
{
	char kb[STORE__KEY_MAX], ke[STORE__KEY_MAX], kx[STORE__KEY_MAX];
	char olde[STORE_ID_MAX + 1], oldb[STORE_ID_MAX + 1];
	char pfx[STORE__PFX_MAX], th[STORE__HASH_LEN + 1];
	DBT keyb, keye, keyx;
	int ret, haveb, havee;

	*rc = STORE_OK;
	/* The token kept sealed, for whoever needs it back (crypto.c). */
	if ((ret = store__token_key(s, integ, ilen, th)) != 0 ||
	    (ret = store__token_remember(s, txn, th, integ, ilen)) != 0)
		return ret;
	/* The integration's current generation: a forgotten one is not
	 * touched (purge.c). */
	if ((ret = store__prefix(s, txn, integ, ilen, 0, pfx, &ilen)) != 0)
		return ret;
	integ = pfx;
	store__key(&keyb, kb, integ, ilen, bid, blen);
	store__key(&keye, ke, integ, ilen, eid, elen);
	/* Write locks from the start: read-then-upgrade deadlocks. */
	ret = store__get_id(s->b2e, txn, &keyb, olde, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	havee = ret == 0;
	ret = store__get_id(s->e2b, txn, &keye, oldb, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	haveb = ret == 0;
	if (havee && haveb && strlen(olde) == elen &&
	    memcmp(olde, eid, elen) == 0 && strlen(oldb) == blen &&
	    memcmp(oldb, bid, blen) == 0)
		return 0; /* already linked: nothing to write */
	/* bid was linked to another ext id: that one's reverse goes. */
	if (havee && (strlen(olde) != elen || memcmp(olde, eid, elen) != 0)) {
		store__key(&keyx, kx, integ, ilen, olde, strlen(olde));
		if ((ret = del_if(s->e2b, txn, &keyx, bid, blen, NULL)) != 0)
			return ret;
	}
	/* eid was linked to another botmatic id: that one's forward goes. */
	if (haveb && (strlen(oldb) != blen || memcmp(oldb, bid, blen) != 0)) {
		store__key(&keyx, kx, integ, ilen, oldb, strlen(oldb));
		if ((ret = del_if(s->b2e, txn, &keyx, eid, elen, NULL)) != 0)
			return ret;
	}
	if ((ret = put(s->b2e, txn, &keyb, eid, elen)) != 0)
		return ret;
	return put(s->e2b, txn, &keye, bid, blen);
}

int
store__ids_delete(struct store *s, DB_TXN *txn, const char *integ,
    size_t ilen, const char *bid, size_t blen, const char *eid, size_t elen,
    int *rc)
{
	char k[STORE__KEY_MAX], kx[STORE__KEY_MAX], v[STORE_ID_MAX + 1];
	char pfx[STORE__PFX_MAX];
	DBT key, keyx;
	int ret, any = 0;

	if ((ret = store__prefix(s, txn, integ, ilen, 0, pfx, &ilen)) != 0)
		return ret;
	integ = pfx;
	/* bid's pair, both directions. */
	store__key(&key, k, integ, ilen, bid, blen);
	ret = store__get_id(s->b2e, txn, &key, v, DB_RMW);
	if (ret == 0) {
		if ((ret = s->b2e->del(s->b2e, txn, &key, 0)) != 0)
			return ret;
		any = 1;
		store__key(&keyx, kx, integ, ilen, v, strlen(v));
		if ((ret = del_if(s->e2b, txn, &keyx, bid, blen, NULL)) != 0)
			return ret;
	} else if (ret != DB_NOTFOUND)
		return ret;
	/* eid's pair, both directions (already gone if it was the same). */
	store__key(&key, k, integ, ilen, eid, elen);
	ret = store__get_id(s->e2b, txn, &key, v, DB_RMW);
	if (ret == 0) {
		if ((ret = s->e2b->del(s->e2b, txn, &key, 0)) != 0)
			return ret;
		any = 1;
		store__key(&keyx, kx, integ, ilen, v, strlen(v));
		if ((ret = del_if(s->b2e, txn, &keyx, eid, elen, NULL)) != 0)
			return ret;
	} else if (ret != DB_NOTFOUND)
		return ret;
	*rc = any ? STORE_OK : STORE_NOTFOUND;
	return 0;
}

struct ids_args {
	const char *integ, *bid, *eid;
	size_t ilen, blen, elen;
	char **out;
	size_t *count;
	store_pair_fn fn;
	void *arg;
};

static int
check3(struct store *s, struct ids_args *a)
{
	int rc;

	if ((rc = store__check_id(s, "integration id", a->integ, &a->ilen)) ||
	    (a->bid != NULL &&
	    (rc = store__check_id(s, "botmatic id", a->bid, &a->blen))) ||
	    (a->eid != NULL &&
	    (rc = store__check_id(s, "external id", a->eid, &a->elen))))
		return rc;
	return STORE_OK;
}

static int
save_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct ids_args *a = arg;

	return store__ids_save(s, txn, a->integ, a->ilen, a->bid, a->blen,
	    a->eid, a->elen, rc);
}

int
store__bdb_ids_save(struct store *s, const char *integ, const char *bid,
    const char *eid)
{
	struct ids_args a = { .integ = integ, .bid = bid, .eid = eid };
	int rc;

	if ((rc = check3(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "saving ids", save_fn, &a);
}

static int
get_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct ids_args *a = arg;
	char k[STORE__KEY_MAX], v[STORE_ID_MAX + 1], pfx[STORE__PFX_MAX];
	DBT key;
	DB *db = a->bid != NULL ? s->b2e : s->e2b;
	size_t plen;
	int ret;

	if ((ret = store__prefix(s, txn, a->integ, a->ilen, 0, pfx, &plen))
	    != 0)
		return ret;
	if (a->bid != NULL)
		store__key(&key, k, pfx, plen, a->bid, a->blen);
	else
		store__key(&key, k, pfx, plen, a->eid, a->elen);
	ret = store__get_id(db, txn, &key, v, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	if ((*a->out = strdup(v)) == NULL)
		return ENOMEM;
	return 0;
}

int
store__bdb_ext_id_get(struct store *s, const char *integ, const char *bid,
    char **out)
{
	struct ids_args a = { .integ = integ, .bid = bid, .out = out };
	int rc;

	*out = NULL;
	if ((rc = check3(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_READ, "getting external id", get_fn,
	    &a);
}

int
store__bdb_botmatic_id_get(struct store *s, const char *integ, const char *eid,
    char **out)
{
	struct ids_args a = { .integ = integ, .eid = eid, .out = out };
	int rc;

	*out = NULL;
	if ((rc = check3(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_READ, "getting botmatic id", get_fn,
	    &a);
}

static int
delete_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct ids_args *a = arg;

	return store__ids_delete(s, txn, a->integ, a->ilen, a->bid, a->blen,
	    a->eid, a->elen, rc);
}

int
store__bdb_ids_delete(struct store *s, const char *integ, const char *bid,
    const char *eid)
{
	struct ids_args a = { .integ = integ, .bid = bid, .eid = eid };
	int rc;

	if ((rc = check3(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "deleting ids", delete_fn, &a);
}

static int
delete_all_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct ids_args *a = arg;
	int any;

	(void)rc;
	/* One short transaction whatever the size: the pairs become a
	 * tombstoned generation that store_purge_step() deletes later. */
	return store__forget(s, txn, a->integ, a->ilen, 1, 0, a->count, &any);
}

int
store__bdb_ids_delete_all(struct store *s, const char *integ, size_t *deleted)
{
	size_t n = 0;
	struct ids_args a = { .integ = integ, .count = deleted ? &n : NULL };
	int rc;

	if ((rc = check3(s, &a)) != STORE_OK)
		goto out;
	rc = store__run(s, STORE__RUN_TXN, "deleting all ids",
	    delete_all_fn, &a);
out:
	if (deleted != NULL)
		*deleted = rc == STORE_OK ? n : 0;
	return rc;
}

static int
foreach_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct ids_args *a = arg;
	DBC *c = NULL;
	DBT key, data;
	char kbuf[STORE__KEY_MAX + 1], vbuf[STORE_ID_MAX + 1];
	char pfx_copy[STORE__PFX_MAX];
	size_t plen;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	if ((ret = store__prefix(s, txn, a->integ, a->ilen, 0, kbuf, &plen))
	    != 0)
		goto out;
	if ((ret = s->b2e->cursor(s->b2e, txn, &c, 0)) != 0)
		goto out;
	memcpy(pfx_copy, kbuf, plen);
	kbuf[plen] = '\0';
	key.data = kbuf;
	key.size = (u_int32_t)plen + 1;
	key.ulen = STORE__KEY_MAX;
	key.flags = DB_DBT_USERMEM;
	data.data = vbuf;
	data.ulen = STORE_ID_MAX;
	data.flags = DB_DBT_USERMEM;
	for (ret = c->get(c, &key, &data, DB_SET_RANGE); ret == 0;
	    ret = c->get(c, &key, &data, DB_NEXT)) {
		if (!store__has_prefix(&key, pfx_copy, plen))
			break;
		kbuf[key.size] = '\0';
		vbuf[data.size] = '\0';
		if ((t = a->fn(a->arg, a->integ, kbuf + plen + 1, vbuf))
		    != 0) {
			*rc = t;
			break;
		}
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

int
store__bdb_ids_foreach(struct store *s, const char *integ, store_pair_fn fn,
    void *arg)
{
	struct ids_args a = { .integ = integ, .fn = fn, .arg = arg };
	int rc;

	if ((rc = check3(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_SCAN, "listing ids", foreach_fn, &a);
}
