/*
 * store/install.c - installations, keyed by their token's keyed hash
 * (crypto.c), with a secondary index install id -> that hash kept in the
 * same transactions.  The token itself comes back from tokens.db, sealed.
 *
 * Record layout (big-endian, so a dump reads the same on any host):
 *   version (1 byte, 2) | created (8) | install id (32 hex) |
 *   secret (64 hex, sealed bound to the install id: 93 bytes) |
 *   settings (the rest)
 * Version 1 held the secret in clear; migrate.c reseals those at open.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

static int
is_hex(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return p[len] == '\0';
}

int
store__install_decode(const struct store *s, const char *token,
    const DBT *data, struct store_install *in)
{
	const unsigned char *p = data->data;
	size_t i, n, head, slen = 0;
	char *secret = NULL;
	uint64_t t = 0;

	memset(in, 0, sizeof(*in));
	if (data->size < 1)
		return -1;
	head = p[0] == STORE__INST_VERSION ? STORE__INST_HEAD :
	    p[0] == STORE__INST_V1 ? STORE__INST_HEAD_V1 : 0;
	if (head == 0 || data->size < head)
		return -1;
	for (i = 0; i < 8; i++)
		t = t << 8 | p[1 + i];
	in->created = (int64_t)t;
	memcpy(in->install_id, p + STORE__INST_IDOFF, STORE_INSTALL_ID_LEN);
	if (p[0] == STORE__INST_V1)
		memcpy(in->secret, p + STORE__INST_SECOFF, STORE_SECRET_LEN);
	else {
		/* Bound to the install id: a secret moved to another
		 * record does not open there. */
		if (store__unseal(s, in->install_id, STORE_INSTALL_ID_LEN,
		    p + STORE__INST_SECOFF, STORE__INST_SEALED, &secret,
		    &slen) != 0)
			return -1;
		if (slen != STORE_SECRET_LEN) {
			explicit_bzero(secret, slen);
			free(secret);
			return -1;
		}
		memcpy(in->secret, secret, STORE_SECRET_LEN);
		explicit_bzero(secret, slen);
		free(secret);
	}
	n = data->size - head;
	if ((in->token = strdup(token)) == NULL ||
	    (in->settings = malloc(n + 1)) == NULL) {
		free(in->token);
		explicit_bzero(in, sizeof(*in));
		return -1;
	}
	memcpy(in->settings, p + head, n);
	in->settings[n] = '\0';
	in->settings_len = n;
	return 0;
}

/* Writes in's record under hash, its token's, the secret sealed. */
static int
put_record(struct store *s, DB_TXN *txn, const struct store_install *in,
    const char *hash)
{
	unsigned char *buf = NULL, *sealed = NULL;
	uint64_t t = (uint64_t)in->created;
	size_t i, slen = 0;
	DBT key, data;
	int ret;

	if ((ret = store__seal(s, in->install_id, STORE_INSTALL_ID_LEN,
	    in->secret, STORE_SECRET_LEN, &sealed, &slen)) != 0)
		return ret;
	if (slen != STORE__INST_SEALED) {
		ret = EINVAL;
		goto out;
	}
	if ((buf = malloc(STORE__INST_HEAD + in->settings_len + 1)) == NULL) {
		ret = ENOMEM;
		goto out;
	}
	buf[0] = STORE__INST_VERSION;
	for (i = 0; i < 8; i++)
		buf[1 + i] = (unsigned char)(t >> (56 - 8 * i));
	memcpy(buf + STORE__INST_IDOFF, in->install_id, STORE_INSTALL_ID_LEN);
	memcpy(buf + STORE__INST_SECOFF, sealed, STORE__INST_SEALED);
	if (in->settings_len > 0)
		memcpy(buf + STORE__INST_HEAD, in->settings, in->settings_len);
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)hash;
	key.size = STORE__HASH_LEN;
	data.data = buf;
	data.size = (u_int32_t)(STORE__INST_HEAD + in->settings_len);
	ret = s->inst->put(s->inst, txn, &key, &data, 0);
out:
	free(sealed);
	free(buf);
	return ret;
}

int
store__install_seal_all(struct store *s, DB_TXN *txn, size_t *moved)
{
	struct store_install in;
	char hash[STORE__HASH_LEN + 1];
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	data.flags = DB_DBT_REALLOC;
	if ((ret = s->inst->cursor(s->inst, txn, &c, 0)) != 0)
		goto out;
	/* Rewriting under the same key: the walk does not meet it again. */
	while ((ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0) {
		if (data.size < 1 ||
		    ((unsigned char *)data.data)[0] != STORE__INST_V1)
			continue;
		if (key.size != STORE__HASH_LEN ||
		    store__install_decode(s, "", &data, &in) != 0) {
			ret = EINVAL;
			goto out;
		}
		memcpy(hash, key.data, STORE__HASH_LEN);
		hash[STORE__HASH_LEN] = '\0';
		ret = put_record(s, txn, &in, hash);
		free(in.token);
		free(in.settings);
		explicit_bzero(&in, sizeof(in));
		explicit_bzero(data.data, data.size);
		if (ret != 0)
			goto out;
		(*moved)++;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	free(key.data);
	free(data.data);
	return ret;
}

/*
 * Reads the record under hash into *in (emptied first), with token as its
 * token; 0, DB_NOTFOUND or error.
 */
static int
get_record(struct store *s, DB_TXN *txn, const char *hash, const char *token,
    struct store_install *in, u_int32_t flags)
{
	DBT key, data;
	int ret;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)hash;
	key.size = STORE__HASH_LEN;
	data.flags = DB_DBT_MALLOC;
	if ((ret = s->inst->get(s->inst, txn, &key, &data, flags)) != 0)
		return ret;
	/* A record that does not decode is damage, not absence. */
	ret = store__install_decode(s, token, &data, in) == 0 ? 0 : EINVAL;
	free(data.data);
	return ret;
}

/* Frees what an installation points to, keeping the struct. */
static void
install_clear(struct store_install *in)
{
	free(in->token);
	free(in->settings);
	memset(in, 0, sizeof(*in));
}

void
store_install_free(struct store_install *in)
{
	if (in == NULL)
		return;
	install_clear(in);
	free(in);
}

struct inst_args {
	const char *token;
	size_t tlen;
	const void *settings;
	size_t settings_len;
	const char *install_id;
	const struct store_install *put;
	struct store_install rec; /* the result */
	size_t pairs;
	int count;           /* count the pairs forgotten */
	store_install_fn fn;
	void *arg;
};

static int
record_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct inst_args *a = arg;
	struct store_install *r = &a->rec;
	char hash[STORE__HASH_LEN + 1];
	DBT key, data;
	unsigned tries;
	char *set;
	int ret;

	(void)rc;
	install_clear(r);
	if ((ret = store__token_key(s, a->token, a->tlen, hash)) != 0)
		return ret;
	ret = get_record(s, txn, hash, a->token, r, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (ret == DB_NOTFOUND) {
		/* First install: draw a fresh id, unique in the index. */
		if ((r->token = strdup(a->token)) == NULL)
			return ENOMEM;
		if ((ret = store__token_remember(s, txn, hash, a->token,
		    a->tlen)) != 0)
			return ret;
		r->created = (int64_t)time(NULL);
		memset(&key, 0, sizeof(key));
		memset(&data, 0, sizeof(data));
		key.data = r->install_id;
		key.size = STORE_INSTALL_ID_LEN;
		data.data = hash;
		data.size = STORE__HASH_LEN;
		for (tries = 0;; tries++) {
			if ((ret = store__svc_random_hex(r->install_id,
			    STORE_INSTALL_ID_LEN)) != 0)
				return ret;
			ret = s->instid->put(s->instid, txn, &key, &data,
			    DB_NOOVERWRITE);
			if (ret != DB_KEYEXIST || tries > 8)
				break;
		}
		if (ret != 0)
			return ret;
		if ((ret = store__svc_random_hex(r->secret,
		    STORE_SECRET_LEN)) != 0)
			return ret;
	} else if (a->settings == NULL)
		return 0; /* same token, no new settings: nothing changes */
	if (a->settings != NULL) {
		if ((set = malloc(a->settings_len + 1)) == NULL)
			return ENOMEM;
		memcpy(set, a->settings, a->settings_len);
		set[a->settings_len] = '\0';
		free(r->settings);
		r->settings = set;
		r->settings_len = a->settings_len;
	} else if (r->settings == NULL && (r->settings = strdup("")) == NULL)
		return ENOMEM;
	return put_record(s, txn, r, hash);
}

/* Hands the result over, or frees it. */
static int
finish(struct inst_args *a, int rc, struct store_install **out)
{
	if (out != NULL && rc == STORE_OK) {
		if ((*out = malloc(sizeof(**out))) == NULL) {
			install_clear(&a->rec);
			return STORE_ERROR;
		}
		**out = a->rec;
	} else
		install_clear(&a->rec);
	return rc;
}

int
store__bdb_install_record(struct store *s, const char *token,
    const void *settings, size_t settings_len, struct store_install **out)
{
	struct inst_args a = { .token = token, .settings = settings,
	    .settings_len = settings_len };
	int rc;

	if (out != NULL)
		*out = NULL;
	if ((rc = store__check_id(s, "token", token, &a.tlen)) != STORE_OK ||
	    (settings != NULL &&
	    (rc = store__check_value(s, "settings", settings_len)) != STORE_OK))
		return rc;
	rc = store__run(s, STORE__RUN_TXN, "recording installation",
	    record_fn, &a);
	rc = finish(&a, rc, out);
	if (rc == STORE_ERROR && s->err[0] == '\0')
		store__fail(s, ENOMEM, "recording installation");
	return rc;
}

struct settings_args {
	const char *token;
	size_t tlen;
	store_settings_fn fn;
	void *arg;
};

static int
settings_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct settings_args *a = arg;
	struct store_install r;
	char hash[STORE__HASH_LEN + 1], *set = NULL;
	size_t len = 0;
	int ret;

	memset(&r, 0, sizeof(r));
	if ((ret = store__token_key(s, a->token, a->tlen, hash)) != 0)
		return ret;
	ret = get_record(s, txn, hash, a->token, &r, DB_RMW);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		goto out;
	if (a->fn(a->arg, r.settings != NULL ? r.settings : "",
	    r.settings_len, &set, &len) != 0 || set == NULL) {
		*rc = store__einval(s, "settings refused by the caller");
		goto out;
	}
	if (len > STORE_VALUE_MAX) {
		*rc = store__einval(s, "settings over %d bytes",
		    STORE_VALUE_MAX);
		goto out;
	}
	free(r.settings);
	r.settings = set;
	r.settings_len = len;
	set = NULL;
	ret = put_record(s, txn, &r, hash);
out:
	free(set);
	install_clear(&r);
	return ret;
}

int
store__bdb_install_settings_update(struct store *s, const char *token,
    store_settings_fn fn, void *arg)
{
	struct settings_args a = { .token = token, .fn = fn, .arg = arg };
	int rc;

	if ((rc = store__check_id(s, "token", token, &a.tlen)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "saving settings", settings_fn,
	    &a);
}

static int
get_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct inst_args *a = arg;
	char hash[STORE__HASH_LEN + 1], *tok = NULL;
	DBT key, data;
	int ret;

	install_clear(&a->rec);
	if (a->install_id != NULL) {
		memset(&key, 0, sizeof(key));
		memset(&data, 0, sizeof(data));
		key.data = (void *)a->install_id;
		key.size = STORE_INSTALL_ID_LEN;
		data.data = hash;
		data.ulen = STORE__HASH_LEN;
		data.flags = DB_DBT_USERMEM;
		ret = s->instid->get(s->instid, txn, &key, &data, 0);
		if (ret == 0 && data.size != STORE__HASH_LEN)
			ret = EINVAL;
		hash[STORE__HASH_LEN] = '\0';
		if (ret == 0)
			ret = store__token_lookup(s, txn, hash, &tok);
		if (ret == 0)
			ret = get_record(s, txn, hash, tok, &a->rec, 0);
		if (tok != NULL) {
			explicit_bzero(tok, strlen(tok));
			free(tok);
		}
	} else if ((ret = store__token_key(s, a->token, a->tlen, hash)) == 0)
		ret = get_record(s, txn, hash, a->token, &a->rec, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	return ret;
}

int
store__bdb_install_get(struct store *s, const char *token,
    struct store_install **out)
{
	struct inst_args a = { .token = token };
	int rc;

	*out = NULL;
	if ((rc = store__check_id(s, "token", token, &a.tlen)) != STORE_OK)
		return rc;
	rc = store__run(s, STORE__RUN_READ, "getting installation", get_fn,
	    &a);
	return finish(&a, rc, out);
}

int
store__bdb_install_get_by_id(struct store *s, const char *install_id,
    struct store_install **out)
{
	struct inst_args a = { .install_id = install_id };
	int rc;

	*out = NULL;
	if (install_id == NULL || strlen(install_id) != STORE_INSTALL_ID_LEN ||
	    !is_hex(install_id, STORE_INSTALL_ID_LEN))
		return store__einval(s, "install id is not %d lowercase hex "
		    "digits", STORE_INSTALL_ID_LEN);
	/* Two reads that must agree: a transaction. */
	rc = store__run(s, STORE__RUN_TXN, "getting installation", get_fn,
	    &a);
	return finish(&a, rc, out);
}

int
store__check_install(struct store *s, const struct store_install *in)
{
	size_t tlen;
	int rc;

	if ((rc = store__check_id(s, "token", in->token, &tlen)) != STORE_OK)
		return rc;
	if (!is_hex(in->install_id, STORE_INSTALL_ID_LEN))
		return store__einval(s, "install id is not %d lowercase hex "
		    "digits", STORE_INSTALL_ID_LEN);
	if (!is_hex(in->secret, STORE_SECRET_LEN))
		return store__einval(s, "secret is not %d lowercase hex digits",
		    STORE_SECRET_LEN);
	if (in->settings == NULL && in->settings_len > 0)
		return store__einval(s, "settings missing");
	return store__check_value(s, "settings", in->settings_len);
}

int
store__install_put(struct store *s, DB_TXN *txn,
    const struct store_install *in, int *rc)
{
	struct store_install old = { 0 };
	char hash[STORE__HASH_LEN + 1], cur[STORE__HASH_LEN + 1];
	size_t tlen = strlen(in->token);
	DBT key, data;
	int ret;

	if ((ret = store__token_key(s, in->token, tlen, hash)) != 0 ||
	    (ret = store__token_remember(s, txn, hash, in->token, tlen)) != 0)
		return ret;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)in->install_id;
	key.size = STORE_INSTALL_ID_LEN;
	data.data = cur;
	data.ulen = STORE__HASH_LEN;
	data.flags = DB_DBT_USERMEM;
	ret = s->instid->get(s->instid, txn, &key, &data, DB_RMW);
	if (ret == 0 && (data.size != STORE__HASH_LEN ||
	    memcmp(cur, hash, STORE__HASH_LEN) != 0)) {
		*rc = store__einval(s, "install id %s belongs to another "
		    "installation", in->install_id);
		return 0;
	}
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	ret = get_record(s, txn, hash, in->token, &old, DB_RMW);
	if (ret == 0 && strcmp(old.install_id, in->install_id) != 0) {
		/* Re-keyed: the old id no longer leads here. */
		key.data = old.install_id;
		ret = s->instid->del(s->instid, txn, &key, 0);
		key.data = (void *)in->install_id;
	}
	install_clear(&old);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	memset(&data, 0, sizeof(data));
	data.data = hash;
	data.size = STORE__HASH_LEN;
	if ((ret = s->instid->put(s->instid, txn, &key, &data, 0)) != 0)
		return ret;
	return put_record(s, txn, in, hash);
}

static int
put_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct inst_args *a = arg;

	return store__install_put(s, txn, a->put, rc);
}

int
store__bdb_install_put(struct store *s, const struct store_install *in)
{
	struct inst_args a = { .put = in };
	int rc;

	if ((rc = store__check_install(s, in)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "writing installation", put_fn,
	    &a);
}

static int
delete_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct inst_args *a = arg;
	struct store_install old = { 0 };
	char hash[STORE__HASH_LEN + 1];
	DBT key;
	size_t njobs = 0, st = 0;
	int ret, found, any;

	a->pairs = 0;
	if ((ret = store__token_key(s, a->token, a->tlen, hash)) != 0)
		return ret;
	ret = get_record(s, txn, hash, a->token, &old, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	found = ret == 0;
	memset(&key, 0, sizeof(key));
	if (found) {
		key.data = old.install_id;
		key.size = STORE_INSTALL_ID_LEN;
		ret = s->instid->del(s->instid, txn, &key, 0);
		/* Its third-party services go with it (SPEC §12). */
		if (ret == 0 || ret == DB_NOTFOUND)
			ret = store__services_forget(s, txn, old.install_id,
			    &st);
		install_clear(&old);
		if (ret != 0 && ret != DB_NOTFOUND)
			return ret;
		key.data = hash;
		key.size = STORE__HASH_LEN;
		if ((ret = s->inst->del(s->inst, txn, &key, 0)) != 0)
			return ret;
	}
	/*
	 * Pairs and state become a tombstone, purged in batches later: this
	 * transaction stays short whatever the installation's size.  Its
	 * queued deliveries go with it, in the same transaction.  The sealed
	 * token goes at once: nothing may give it back any more.
	 */
	if ((ret = store__forget(s, txn, a->token, a->tlen, 1, 1,
	    a->count ? &a->pairs : NULL, &any)) != 0 ||
	    (ret = store__jobs_cancel(s, txn, hash, STORE__HASH_LEN,
	    &njobs)) != 0 ||
	    (ret = store__token_forget(s, txn, hash)) != 0)
		return ret;
	*rc = found || any || njobs > 0 ? STORE_OK : STORE_NOTFOUND;
	return 0;
}

int
store__bdb_install_delete(struct store *s, const char *token, size_t *pairs)
{
	struct inst_args a = { .token = token, .count = pairs != NULL };
	int rc;

	if (pairs != NULL)
		*pairs = 0;
	if ((rc = store__check_id(s, "token", token, &a.tlen)) != STORE_OK)
		return rc;
	rc = store__run(s, STORE__RUN_TXN, "deleting installation",
	    delete_fn, &a);
	if (pairs != NULL && rc == STORE_OK)
		*pairs = a.pairs;
	return rc;
}

static int
foreach_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct inst_args *a = arg;
	struct store_install in;
	char hash[STORE__HASH_LEN + 1], *tok;
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	data.flags = DB_DBT_REALLOC;
	if ((ret = s->inst->cursor(s->inst, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0) {
		if (key.size != STORE__HASH_LEN) {
			ret = EINVAL;
			goto out;
		}
		memcpy(hash, key.data, STORE__HASH_LEN);
		hash[STORE__HASH_LEN] = '\0';
		if ((ret = store__token_lookup(s, txn, hash, &tok)) != 0)
			goto out;
		t = store__install_decode(s, tok, &data, &in);
		explicit_bzero(tok, strlen(tok));
		free(tok);
		if (t != 0) {
			ret = EINVAL;
			goto out;
		}
		t = a->fn(a->arg, &in);
		install_clear(&in);
		if (t != 0) {
			*rc = t;
			break;
		}
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	free(key.data);
	free(data.data);
	return ret;
}

int
store__bdb_install_foreach(struct store *s, store_install_fn fn, void *arg)
{
	struct inst_args a = { .fn = fn, .arg = arg };

	return store__run(s, STORE__RUN_SCAN, "listing installations",
	    foreach_fn, &a);
}
