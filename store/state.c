/*
 * store/state.c - named values per integration, keyed "token\0name" so that
 * store_install_delete() removes them with one range walk.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

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
	return s->state->put(s->state, txn, &key, &data, 0);
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
