/*
 * store/purge.c - forgetting an integration of any size without a long
 * transaction (SPEC.md section 10).
 *
 * "Token" below is the token as keys hold it: its keyed hash (crypto.c).
 * store__prefix(), store__current_gen() and store__forget() take the token
 * itself and hash it; store__current_gen_keyed() takes the hash, as
 * store__split_prefix() gives it.
 *
 * Pairs and state of a token live under a key prefix.  Generation 0 (every
 * store written before this scheme) uses the token itself: "token\0id".  A
 * later generation g uses "\0" + 16 hex digits of g + token: no real token
 * starts with NUL, so the two never meet, and the prefix still holds no
 * other NUL, so "prefix\0id" splits at its first NUL past the header.
 *
 * gens.db maps a token to its current generations (pairs, state); absent
 * means (0, 0).  Forgetting a token's pairs or state is one short
 * transaction: bump the generation (readers and writers go to the new,
 * empty prefix at once) and record the old prefix in tombs.db.  The data
 * under a tombstoned prefix is then deleted in bounded batches by
 * store_purge_step(), each batch its own transaction, so a save made after
 * a re-install (new generation) can never be eaten by the purge.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* A tombstone's key: kind byte then the prefix. */
#define TOMB_PAIRS 'p'
#define TOMB_STATE 's'

/* Reads token's generations; absent is (0, 0).  0 or a BDB error. */
static int
gens_get(struct store *s, DB_TXN *txn, const char *tok, size_t tlen,
    uint64_t gen[2], u_int32_t flags)
{
	unsigned char buf[16];
	DBT key, data;
	int ret;

	gen[0] = gen[1] = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)tok;
	key.size = (u_int32_t)tlen;
	data.data = buf;
	data.ulen = sizeof(buf);
	data.flags = DB_DBT_USERMEM;
	ret = s->gens->get(s->gens, txn, &key, &data, flags);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	if (data.size != sizeof(buf))
		return EINVAL;
	gen[0] = store__be64_get(buf);
	gen[1] = store__be64_get(buf + 8);
	return 0;
}

static void
prefix_of(const char *tok, size_t tlen, uint64_t gen, char *pfx,
    size_t *plen)
{
	if (gen == 0) {
		memcpy(pfx, tok, tlen);
		*plen = tlen;
		return;
	}
	pfx[0] = '\0';
	snprintf(pfx + 1, STORE__GEN_HEAD, "%016llx", (unsigned long long)gen);
	memcpy(pfx + STORE__GEN_HEAD, tok, tlen);
	*plen = STORE__GEN_HEAD + tlen;
}

/*
 * A token as it appears in keys: its keyed hash (crypto.c), into buf; *tok
 * and *tlen are set to it.  0 or an error.
 */
static int
keyed(const struct store *s, const char **tok, size_t *tlen,
    char buf[STORE__HASH_LEN + 1])
{
	int ret;

	if ((ret = store__token_key(s, *tok, *tlen, buf)) != 0)
		return ret;
	*tok = buf;
	*tlen = STORE__HASH_LEN;
	return 0;
}

int
store__prefix(struct store *s, DB_TXN *txn, const char *tok, size_t tlen,
    int state, char *pfx, size_t *plen)
{
	char th[STORE__HASH_LEN + 1];
	uint64_t gen[2];
	int ret;

	if ((ret = keyed(s, &tok, &tlen, th)) != 0 ||
	    (ret = gens_get(s, txn, tok, tlen, gen, 0)) != 0)
		return ret;
	prefix_of(tok, tlen, gen[state ? 1 : 0], pfx, plen);
	return 0;
}

int
store__split_prefix(const char *key, size_t size, const char **tok,
    size_t *tlen, uint64_t *gen, size_t *plen)
{
	const char *nul, *t = key;
	char hex[17];
	size_t i;

	*gen = 0;
	if (size > 0 && key[0] == '\0') {
		if (size < STORE__GEN_HEAD + 2)
			return -1;
		for (i = 0; i < 16; i++) {
			char c = key[1 + i];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return -1;
			hex[i] = c;
		}
		hex[16] = '\0';
		*gen = strtoull(hex, NULL, 16);
		t = key + STORE__GEN_HEAD;
	}
	nul = memchr(t, '\0', size - (size_t)(t - key));
	if (nul == NULL || nul == t || (size_t)(nul - key) + 1 >= size)
		return -1;
	*tok = t;
	*tlen = (size_t)(nul - t);
	*plen = (size_t)(nul - key);
	return 0;
}

int
store__current_gen(struct store *s, DB_TXN *txn, const char *tok,
    size_t tlen, int state, uint64_t *gen, u_int32_t flags)
{
	char th[STORE__HASH_LEN + 1];
	int ret;

	if ((ret = keyed(s, &tok, &tlen, th)) != 0)
		return ret;
	return store__current_gen_keyed(s, txn, tok, tlen, state, gen, flags);
}

int
store__current_gen_keyed(struct store *s, DB_TXN *txn, const char *tok,
    size_t tlen, int state, uint64_t *gen, u_int32_t flags)
{
	uint64_t g[2];
	int ret;

	if ((ret = gens_get(s, txn, tok, tlen, g, flags)) != 0)
		return ret;
	*gen = g[state ? 1 : 0];
	return 0;
}

/*
 * Counts the keys of db under prefix, up to max (0: all), without holding
 * their locks.  0, or a BDB error.
 */
static int
range_count(DB *db, DB_TXN *txn, const char *pfx, size_t plen, size_t max,
    size_t *n)
{
	DBC *c = NULL;
	DBT key, data;
	char buf[STORE__KEY_MAX];
	int ret, t;

	*n = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	memcpy(buf, pfx, plen);
	buf[plen] = '\0';
	key.data = buf;
	key.size = (u_int32_t)plen + 1;
	key.ulen = sizeof(buf);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = db->cursor(db, txn, &c, DB_READ_COMMITTED)) != 0)
		goto out;
	for (ret = c->get(c, &key, &data, DB_SET_RANGE); ret == 0;
	    ret = c->get(c, &key, &data, DB_NEXT)) {
		if (!store__has_prefix(&key, pfx, plen))
			break;
		if (++*n == max)
			break;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

static int
tomb_put(struct store *s, DB_TXN *txn, int kind, const char *pfx,
    size_t plen)
{
	char buf[STORE__PFX_MAX + 1];
	DBT key, data;

	buf[0] = (char)kind;
	memcpy(buf + 1, pfx, plen);
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = buf;
	key.size = (u_int32_t)plen + 1;
	return s->tombs->put(s->tombs, txn, &key, &data, 0);
}

int
store__forget(struct store *s, DB_TXN *txn, const char *tok, size_t tlen,
    int pairs, int state, size_t *npairs, int *any)
{
	char pfx[STORE__PFX_MAX], th[STORE__HASH_LEN + 1];
	unsigned char buf[16];
	uint64_t gen[2];
	size_t plen, n;
	DBT key, data;
	int ret, have[2] = { 0, 0 }, i, t;

	*any = 0;
	if (npairs != NULL)
		*npairs = 0;
	if ((ret = keyed(s, &tok, &tlen, th)) != 0 ||
	    (ret = gens_get(s, txn, tok, tlen, gen, DB_RMW)) != 0)
		return ret;
	for (i = 0; i < 2; i++) {
		if (!(i == 0 ? pairs : state))
			continue;
		prefix_of(tok, tlen, gen[i], pfx, &plen);
		if (i == 0) {
			if ((ret = range_count(s->b2e, txn, pfx, plen, 1,
			    &n)) != 0 || (n == 0 && (ret = range_count(s->e2b,
			    txn, pfx, plen, 1, &n)) != 0))
				return ret;
			have[0] = n > 0;
			if (have[0] && npairs != NULL &&
			    (ret = range_count(s->b2e, txn, pfx, plen, 0,
			    npairs)) != 0)
				return ret;
		} else {
			if ((ret = range_count(s->state, txn, pfx, plen, 1,
			    &n)) != 0)
				return ret;
			have[1] = n > 0;
		}
		if (!have[i])
			continue;
		t = i == 0 ? TOMB_PAIRS : TOMB_STATE;
		if ((ret = tomb_put(s, txn, t, pfx, plen)) != 0)
			return ret;
		gen[i]++;
	}
	if (!have[0] && !have[1])
		return 0;
	*any = 1;
	store__be64_put(buf, gen[0]);
	store__be64_put(buf + 8, gen[1]);
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)tok;
	key.size = (u_int32_t)tlen;
	data.data = buf;
	data.size = sizeof(buf);
	return s->gens->put(s->gens, txn, &key, &data, 0);
}

/* Deletes up to *left keys of db under prefix; *left goes down. */
static int
delete_some(DB *db, DB_TXN *txn, const char *pfx, size_t plen, size_t *left,
    size_t *n)
{
	DBC *c = NULL;
	DBT key, data;
	char buf[STORE__KEY_MAX];
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	memcpy(buf, pfx, plen);
	buf[plen] = '\0';
	key.data = buf;
	key.size = (u_int32_t)plen + 1;
	key.ulen = sizeof(buf);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = db->cursor(db, txn, &c, 0)) != 0)
		goto out;
	for (ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW);
	    ret == 0 && *left > 0;
	    ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) {
		if (!store__has_prefix(&key, pfx, plen))
			break;
		if ((ret = c->del(c, 0)) != 0)
			goto out;
		(*left)--;
		(*n)++;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

struct purge_args {
	size_t max;
	size_t done;  /* keys deleted by this step */
	int more;     /* tombstones left after it */
};

/* One batch: the first tombstone, up to max keys of its range. */
static int
purge_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct purge_args *a = arg;
	char buf[STORE__PFX_MAX + 2];
	DBC *c = NULL;
	DBT key, data;
	size_t left = a->max, plen;
	int ret, t, kind;

	(void)rc;
	a->done = 0;
	a->more = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = buf;
	key.ulen = sizeof(buf);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = s->tombs->cursor(s->tombs, txn, &c, 0)) != 0)
		goto out;
	if ((ret = c->get(c, &key, &data, DB_FIRST | DB_RMW)) != 0) {
		if (ret == DB_NOTFOUND)
			ret = 0;
		goto out;
	}
	if (key.size < 2 || key.size > STORE__PFX_MAX + 1) {
		ret = c->del(c, 0); /* not ours: drop it rather than loop */
		a->more = 1;
		goto out;
	}
	kind = buf[0];
	plen = key.size - 1;
	if (kind == TOMB_PAIRS) {
		if ((ret = delete_some(s->b2e, txn, buf + 1, plen, &left,
		    &a->done)) != 0 ||
		    (ret = delete_some(s->e2b, txn, buf + 1, plen, &left,
		    &a->done)) != 0)
			goto out;
	} else if ((ret = delete_some(s->state, txn, buf + 1, plen, &left,
	    &a->done)) != 0)
		goto out;
	/* Budget left over: the range is empty, the tombstone goes. */
	if (left > 0 && (ret = c->del(c, 0)) != 0)
		goto out;
	if (left == 0)
		a->more = 1;
	else if ((ret = c->get(c, &key, &data, DB_NEXT)) == 0)
		a->more = 1;
	else if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

int
store__bdb_purge_step(struct store *s, size_t max_keys, size_t *deleted,
    int *more)
{
	struct purge_args a = { .max = max_keys > 0 ? max_keys : 1 };
	int rc;

	*more = 0;
	if (deleted != NULL)
		*deleted = 0;
	rc = store__run(s, STORE__RUN_TXN, "purging forgotten data",
	    purge_fn, &a);
	/*
	 * A large purge writes a lot of log and dirties many pages: the
	 * purge pays for the checkpoint itself, rather than leaving it to the
	 * next responder whose save crosses the threshold (a flush of many
	 * pages inside a webhook's call, which the watchdog would time).
	 */
	if (rc == STORE_OK && a.done > 0 && !s->dead)
		store__checkpoint(s);
	if (rc == STORE_OK) {
		*more = a.more;
		if (deleted != NULL)
			*deleted = a.done;
	}
	return rc;
}
