/*
 * store/migrate.c - from format 1 (every key held the raw token, in any
 * generation of purge.c's prefixes, and in gens.db and tombs.db) to format
 * 2 (keys hold the token's keyed hash, the token is sealed in tokens.db;
 * jobs.c's records and indexes name the hash too, store__jobs_migrate()), in
 * one transaction at the first open by the new code; and from format 2 to
 * format 3 (installation records seal their webhook secret, and the secret
 * state names their values: install.c's store__install_seal_all() and
 * state.c's store__state_seal_all(), also run after a format 1 rewrite).  tokens.db holds the
 * format under STORE__FORMAT_KEY; its absence means format 1, or a new
 * store (then there is nothing to rewrite).  The transaction first takes a
 * write lock on that key, so processes opening at once wait for the one
 * migrating and then find the work done.
 *
 * Each database is read whole into memory, then rewritten: new keys must
 * not be met again by the walk.  A keystore of a few million pairs needs a
 * few hundred MB for the time of that open.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* How a database holds tokens. */
enum mig_kind {
	MIG_KEY = 0,    /* the key is the token (installs.db, gens.db) */
	MIG_PREFIX,     /* the key is "prefix\0id" (ids, state; purge.c) */
	MIG_VALUE,      /* the value is the token (install-ids.db) */
	MIG_TOMB,       /* the key is a kind byte and a prefix (tombs.db) */
	MIG__MAX
};

struct mig_rec {
	DBT key, data; /* malloc()ed copies */
};

static void
mig_free(struct mig_rec *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i].key.data != NULL)
			explicit_bzero(v[i].key.data, v[i].key.size);
		if (v[i].data.data != NULL)
			explicit_bzero(v[i].data.data, v[i].data.size);
		free(v[i].key.data);
		free(v[i].data.data);
	}
	free(v);
}

/* Reads every record of db into *out (new), *n of them. */
static int
mig_read(DB *db, DB_TXN *txn, struct mig_rec **out, size_t *n)
{
	struct mig_rec *v = NULL, *nv;
	size_t cap = 0, len = 0;
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_MALLOC;
	data.flags = DB_DBT_MALLOC;
	if ((ret = db->cursor(db, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0) {
		if (len == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(key.data);
				free(data.data);
				ret = ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[len].key = key;
		v[len].data = data;
		v[len].key.flags = v[len].data.flags = 0;
		len++;
		memset(&key, 0, sizeof(key));
		memset(&data, 0, sizeof(data));
		key.flags = DB_DBT_MALLOC;
		data.flags = DB_DBT_MALLOC;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	if (ret != 0) {
		mig_free(v, len);
		v = NULL;
		len = 0;
	}
	*out = v;
	*n = len;
	return ret;
}

/* Rewrites the records of db that hold a raw token; *moved counts them. */
static int
mig_db(struct store *s, DB_TXN *txn, DB *db, enum mig_kind kind,
    size_t *moved)
{
	char hash[STORE__HASH_LEN + 1], kbuf[STORE__KEY_MAX + 1];
	struct mig_rec *v = NULL;
	const char *tok;
	size_t n = 0, i, tlen, head, plen, rest;
	uint64_t gen;
	DBT key, data;
	int ret;

	if ((ret = mig_read(db, txn, &v, &n)) != 0)
		return ret;
	*moved += n;
	for (i = 0; i < n && ret == 0; i++) {
		key = v[i].key;
		data = v[i].data;
		/* Where the token is: at tok, tlen bytes, with head bytes of
		 * key before it kept (a kind byte, a generation header). */
		head = 0;
		if (kind == MIG_VALUE) {
			tok = data.data;
			tlen = data.size;
		} else if (kind == MIG_PREFIX) {
			if (store__split_prefix(key.data, key.size, &tok, &tlen,
			    &gen, &plen) != 0) {
				ret = EINVAL;
				break;
			}
			head = (size_t)(tok - (const char *)key.data);
		} else if (kind == MIG_TOMB) {
			head = key.size > 1 && ((char *)key.data)[1] == '\0' ?
			    1 + STORE__GEN_HEAD : 1;
			if (key.size <= head) {
				ret = EINVAL;
				break;
			}
			tok = (char *)key.data + head;
			tlen = key.size - head;
		} else {
			tok = key.data;
			tlen = key.size;
		}
		if (tlen == 0 || tlen > STORE_ID_MAX ||
		    memchr(tok, '\0', tlen) != NULL) {
			ret = EINVAL;
			break;
		}
		if ((ret = store__token_key(s, tok, tlen, hash)) != 0 ||
		    (ret = store__token_remember(s, txn, hash, tok, tlen)) != 0)
			break;
		if (kind == MIG_VALUE) {
			data.data = hash;
			data.size = STORE__HASH_LEN;
			ret = db->put(db, txn, &key, &data, 0);
			continue;
		}
		if ((ret = db->del(db, txn, &v[i].key, 0)) != 0)
			break;
		/* head | hash | what followed the token */
		memcpy(kbuf, key.data, head);
		memcpy(kbuf + head, hash, STORE__HASH_LEN);
		rest = key.size - head - tlen;
		memcpy(kbuf + head + STORE__HASH_LEN,
		    (char *)key.data + head + tlen, rest);
		key.data = kbuf;
		key.size = (u_int32_t)(head + STORE__HASH_LEN + rest);
		ret = db->put(db, txn, &key, &data, 0);
	}
	mig_free(v, n);
	return ret;
}

static int
migrate_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	size_t *moved = arg;
	char fmt[8] = "";
	DBT key, data;
	int ret;

	(void)rc;
	*moved = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)STORE__FORMAT_KEY;
	key.size = sizeof(STORE__FORMAT_KEY) - 1;
	data.data = fmt;
	data.ulen = sizeof(fmt) - 1;
	data.flags = DB_DBT_USERMEM;
	ret = s->tokens->get(s->tokens, txn, &key, &data, DB_RMW);
	if (ret == 0) {
		fmt[data.size] = '\0';
		if (atoi(fmt) == STORE__FORMAT)
			return 0;
		if (atoi(fmt) > STORE__FORMAT || atoi(fmt) < 2) {
			*rc = store__einval(s, "store format %s is not this "
			    "program's (%d)", fmt, STORE__FORMAT);
			return 0;
		}
		/* Format 2: only the installation secrets to seal. */
		if ((ret = store__install_seal_all(s, txn, moved)) != 0 ||
		    (ret = store__state_seal_all(s, txn, moved)) != 0)
			return ret;
		goto done;
	}
	if (ret != DB_NOTFOUND)
		return ret;
	if ((ret = mig_db(s, txn, s->inst, MIG_KEY, moved)) != 0 ||
	    (ret = mig_db(s, txn, s->instid, MIG_VALUE, moved)) != 0 ||
	    (ret = mig_db(s, txn, s->b2e, MIG_PREFIX, moved)) != 0 ||
	    (ret = mig_db(s, txn, s->e2b, MIG_PREFIX, moved)) != 0 ||
	    (ret = mig_db(s, txn, s->state, MIG_PREFIX, moved)) != 0 ||
	    (ret = mig_db(s, txn, s->gens, MIG_KEY, moved)) != 0 ||
	    (ret = mig_db(s, txn, s->tombs, MIG_TOMB, moved)) != 0 ||
	    (ret = store__jobs_migrate(s, txn, moved)) != 0 ||
	    (ret = store__install_seal_all(s, txn, moved)) != 0 ||
	    (ret = store__state_seal_all(s, txn, moved)) != 0)
		return ret;
done:
	snprintf(fmt, sizeof(fmt), "%d", STORE__FORMAT);
	memset(&data, 0, sizeof(data));
	data.data = fmt;
	data.size = (u_int32_t)strlen(fmt);
	return s->tokens->put(s->tokens, txn, &key, &data, 0);
}

int
store__migrate(struct store *s)
{
	size_t moved = 0;
	int rc;

	rc = store__run(s, STORE__RUN_TXN, "migrating the store format",
	    migrate_fn, &moved);
	/* The log files that still hold raw tokens can go at once. */
	if (rc == STORE_OK && moved > 0)
		(void)s->env->txn_checkpoint(s->env, 0, 0, DB_FORCE);
	return rc;
}
