/*
 * store/state.c - named values per integration, keyed "token\0name" so that
 * store_install_delete() removes them with one range walk.  The values of
 * the secret names (store.h) are sealed (crypto.c) bound to that key;
 * ones written before the store sealed them are in clear, and the format 3
 * migration (migrate.c) seals them.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* crypto.c's seal starts with its version byte; a clear secret value (JSON,
 * or printable text: cli-hooks.c refuses control characters) never does. */
#define SEALED_BYTE 1

int
store__state_secret(const char *name, size_t nlen)
{
	static const char *const names[] = { STORE_STATE_SECRET_PREVIOUS,
	    STORE_STATE_SECRET_EXTERNAL };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == nlen && memcmp(names[i], name, nlen)
		    == 0)
			return 1;
	return 0;
}

int
store__state_seal(const struct store *s, const void *aad, size_t aadlen,
    const void *val, size_t len, unsigned char **out, size_t *outlen)
{
	return store__seal(s, aad, aadlen, val, len, out, outlen);
}

int
store__state_open(const struct store *s, const void *aad, size_t aadlen,
    const void *val, size_t len, char **plain, size_t *plen)
{
	const unsigned char *p = val;

	if (len > 0 && p[0] == SEALED_BYTE)
		return store__unseal(s, aad, aadlen, p, len, plain, plen) == 0 ?
		    0 : STORE__ESEAL;
	if ((*plain = malloc(len + 1)) == NULL)
		return ENOMEM;
	if (len > 0)
		memcpy(*plain, val, len);
	(*plain)[len] = '\0';
	*plen = len;
	return 0;
}

/* Whether key (a state.db key: prefix, NUL, name) names a secret. */
static int
key_secret(const DBT *key)
{
	const char *k = key->data, *nul;

	nul = memrchr(k, '\0', key->size);
	return nul != NULL && store__state_secret(nul + 1,
	    key->size - (size_t)(nul + 1 - k));
}

int
store__state_seal_all(struct store *s, DB_TXN *txn, size_t *moved)
{
	unsigned char *sealed = NULL;
	size_t slen = 0;
	DBC *c = NULL;
	DBT key, data, nd;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	if ((ret = s->state->cursor(s->state, txn, &c, 0)) != 0)
		return ret;
	while ((ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0) {
		if (!key_secret(&key) || (data.size > 0 &&
		    ((unsigned char *)data.data)[0] == SEALED_BYTE))
			continue;
		if ((ret = store__state_seal(s, key.data, key.size, data.data,
		    data.size, &sealed, &slen)) != 0)
			break;
		memset(&nd, 0, sizeof(nd));
		nd.data = sealed;
		nd.size = (u_int32_t)slen;
		ret = c->put(c, &key, &nd, DB_CURRENT);
		free(sealed);
		if (ret != 0)
			break;
		(*moved)++;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	if ((t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

struct state_args {
	const char *token, *name;
	size_t tlen, nlen;
	const void *val;
	size_t len;
	char **out;
	size_t *outlen;
};

static int
check2(struct store *s, struct state_args *a)
{
	int rc;

	if ((rc = store__check_id(s, "token", a->token, &a->tlen)) ||
	    (rc = store__check_id(s, "state name", a->name, &a->nlen)))
		return rc;
	return STORE_OK;
}

int
store__state_set(struct store *s, DB_TXN *txn, const char *token,
    size_t tlen, const char *name, size_t nlen, const void *val, size_t len)
{
	char k[STORE__KEY_MAX], pfx[STORE__PFX_MAX], th[STORE__HASH_LEN + 1];
	unsigned char *sealed = NULL;
	DBT key, data;
	int ret;

	if ((ret = store__token_key(s, token, tlen, th)) != 0 ||
	    (ret = store__token_remember(s, txn, th, token, tlen)) != 0 ||
	    (ret = store__prefix(s, txn, token, tlen, 1, pfx, &tlen)) != 0)
		return ret;
	store__key(&key, k, pfx, tlen, name, nlen);
	memset(&data, 0, sizeof(data));
	data.data = (void *)val;
	data.size = (u_int32_t)len;
	if (store__state_secret(name, nlen)) {
		if ((ret = store__state_seal(s, key.data, key.size, val, len,
		    &sealed, &len)) != 0)
			return ret;
		data.data = sealed;
		data.size = (u_int32_t)len;
	}
	ret = s->state->put(s->state, txn, &key, &data, 0);
	free(sealed);
	return ret;
}

int
store__state_delete(struct store *s, DB_TXN *txn, const char *token,
    size_t tlen, const char *name, size_t nlen, int *rc)
{
	char k[STORE__KEY_MAX], pfx[STORE__PFX_MAX];
	DBT key;
	int ret;

	if ((ret = store__prefix(s, txn, token, tlen, 1, pfx, &tlen)) != 0)
		return ret;
	store__key(&key, k, pfx, tlen, name, nlen);
	ret = s->state->del(s->state, txn, &key, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		ret = 0;
	}
	return ret;
}

static int
get_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct state_args *a = arg;
	char k[STORE__KEY_MAX], pfx[STORE__PFX_MAX];
	DBT key, data;
	size_t plen;
	int ret;

	if ((ret = store__prefix(s, txn, a->token, a->tlen, 1, pfx, &plen))
	    != 0)
		return ret;
	store__key(&key, k, pfx, plen, a->name, a->nlen);
	memset(&data, 0, sizeof(data));
	data.flags = DB_DBT_MALLOC;
	ret = s->state->get(s->state, txn, &key, &data, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	if (store__state_secret(a->name, a->nlen)) {
		ret = store__state_open(s, key.data, key.size, data.data,
		    data.size, a->out, a->outlen);
		explicit_bzero(data.data, data.size);
		free(data.data);
		return ret;
	}
	/* Room for the NUL callers may rely on. */
	if ((*a->out = malloc((size_t)data.size + 1)) == NULL) {
		free(data.data);
		return ENOMEM;
	}
	if (data.size > 0)
		memcpy(*a->out, data.data, data.size);
	(*a->out)[data.size] = '\0';
	*a->outlen = data.size;
	free(data.data);
	return 0;
}

int
store__bdb_state_get(struct store *s, const char *token, const char *name,
    char **val, size_t *len)
{
	struct state_args a = { .token = token, .name = name, .out = val,
	    .outlen = len };
	int rc;

	*val = NULL;
	*len = 0;
	if ((rc = check2(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_READ, "getting state", get_fn, &a);
}

static int
set_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct state_args *a = arg;

	(void)rc;
	return store__state_set(s, txn, a->token, a->tlen, a->name, a->nlen,
	    a->val, a->len);
}

int
store__bdb_state_set(struct store *s, const char *token, const char *name,
    const void *val, size_t len)
{
	struct state_args a = { .token = token, .name = name, .val = val,
	    .len = len };
	int rc;

	if ((rc = check2(s, &a)) != STORE_OK ||
	    (rc = store__check_value(s, "state value", len)) != STORE_OK)
		return rc;
	if (val == NULL && len > 0)
		return store__einval(s, "state value missing");
	return store__run(s, STORE__RUN_TXN, "setting state", set_fn, &a);
}

static int
delete_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct state_args *a = arg;

	return store__state_delete(s, txn, a->token, a->tlen, a->name,
	    a->nlen, rc);
}

int
store__bdb_state_delete(struct store *s, const char *token, const char *name)
{
	struct state_args a = { .token = token, .name = name };
	int rc;

	if ((rc = check2(s, &a)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "deleting state", delete_fn, &a);
}
