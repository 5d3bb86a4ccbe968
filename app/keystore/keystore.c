#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keystore/keystore.h"
#include "store/store.h"

_Static_assert(APP_KS_INSTALL_ID_LEN == STORE_INSTALL_ID_LEN,
    "the install id length is the store's");
_Static_assert(APP_KS_ID_MAX == STORE_ID_MAX, "the id bound is the store's");
_Static_assert(APP_KS_TOKEN_MAX == STORE_ID_MAX,
    "the token bound is the store's");

int
app_ks_open(struct app_keystore *ks, const struct app_conf *conf,
    _Atomic int64_t *progress, char *err, size_t errlen)
{
	struct store_opts opts;

	memset(ks, 0, sizeof(*ks));
	memset(&opts, 0, sizeof(opts));
	opts.home = conf->db_home;
	opts.key_file = conf->secret_key_file;
	opts.backend = conf->store != NULL && strcmp(conf->store, "redis") ==
	    0 ? STORE_BACKEND_REDIS : STORE_BACKEND_BDB;
	opts.redis_url = conf->redis_url;
	opts.redis_sentinels = conf->redis_sentinels;
	opts.redis_master = conf->redis_master;
	opts.redis_js_keys = conf->redis_keys != NULL;
	opts.redis_timeout_ms = conf->redis_timeout_ms;
	opts.durability = conf->durability == APP_DURABILITY_SYNC ?
	    STORE_DURABILITY_SYNC : STORE_DURABILITY_WRITE;
	/*
	 * Sized for the most processes this server can have on it: its
	 * responders at BM_WORKERS_MAX, as many old ones finishing after a
	 * reload, its delivery processes likewise, and the rest (the
	 * master's checker, tools).
	 */
	opts.processes = 2 * (conf->workers_max + conf->delivery_procs) +
	    APP_KS_OTHER_PROCESSES;
	ks->progress = progress;
	if (store_open(&ks->st, &opts, err, errlen) != STORE_OK) {
		ks->st = NULL;
		return -1;
	}
	return 0;
}

int
app_ks_close(struct app_keystore *ks)
{
	int rc = store_close(ks->st);

	ks->st = NULL;
	return rc;
}

/* Marks the start of a call for the master's watchdog. */
static void
ks_begin(struct app_keystore *ks)
{
	if (ks->progress != NULL)
		atomic_store(ks->progress, app_now_ms());
}

/* Ends a call: maps store_rc to 0 / 1 / -1, logging failures once. */
static int
ks_end(struct app_keystore *ks, const char *reqid, const char *what, int rc)
{
	if (ks->progress != NULL)
		atomic_store(ks->progress, 0);
	switch (rc) {
	case STORE_OK:
		return 0;
	case STORE_NOTFOUND:
		return 1;
	case STORE_EINVAL:
		app_log(BM_LOG_WARN, reqid, "keystore", "%s: %s", what,
		    store_strerror(ks->st));
		return -1;
	case STORE_RUNRECOVERY:
		ks->broken = 1;
		app_log(BM_LOG_ERROR, reqid, "keystore", "%s: %s: the responder "
		    "exits so the environment recovers", what,
		    store_strerror(ks->st));
		return -1;
	default:
		app_log(BM_LOG_ERROR, reqid, "keystore", "%s: %s", what,
		    store_strerror(ks->st));
		return -1;
	}
}

/*
 * The secret as a Standard Webhooks sender is given it: "whsec_" and the
 * base64 of its 32 bytes (stored as 64 hex digits).  NULL if malformed.
 */
static json_t *
ks_whsec(const char *hex)
{
	unsigned char key[32], text[6 + 44 + 1];
	unsigned v;
	json_t *j;
	size_t i;

	for (i = 0; i < 32; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return NULL;
		key[i] = (unsigned char)v;
	}
	memcpy(text, "whsec_", 6);
	EVP_EncodeBlock(text + 6, key, 32);
	j = json_string((const char *)text);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(text, sizeof(text));
	return j;
}

static json_t *
ks_install_json(const struct store_install *in, int with_secret)
{
	json_t *settings = NULL, *j;

	if (in->settings != NULL && in->settings_len > 0)
		settings = json_loadb(in->settings, in->settings_len, 0, NULL);
	j = json_pack("{s:s, s:I, s:o}", "install_id", in->install_id,
	    "created", (json_int_t)in->created, "settings",
	    settings != NULL ? settings : json_object());
	if (j != NULL && with_secret)
		json_object_set_new(j, "webhook_secret",
		    ks_whsec(in->secret));
	return j;
}

int
app_ks_install_get(struct app_keystore *ks, const char *reqid,
    const char *token, json_t **client)
{
	struct store_install *in = NULL;
	int rc;

	*client = NULL;
	ks_begin(ks);
	rc = ks_end(ks, reqid, "installation lookup",
	    store_install_get(ks->st, token, &in));
	if (rc == 0 && (*client = ks_install_json(in, 0)) == NULL)
		rc = -1;
	store_install_free(in);
	return rc;
}

int
app_ks_install_record(struct app_keystore *ks, const char *reqid,
    const char *token, const json_t *settings, int with_secret,
    json_t **client, int *created)
{
	struct store_install *in = NULL, *old = NULL;
	char *text = NULL;
	int rc;

	*client = NULL;
	*created = 0;
	if (settings != NULL && (text = json_dumps(settings, JSON_COMPACT |
	    JSON_ENCODE_ANY)) == NULL)
		return -1;
	ks_begin(ks);
	rc = ks_end(ks, reqid, "installation lookup",
	    store_install_get(ks->st, token, &old));
	if (rc < 0)
		goto out;
	*created = rc == 1;
	ks_begin(ks);
	rc = ks_end(ks, reqid, "installation record",
	    store_install_record(ks->st, token, text, text != NULL ?
	    strlen(text) : 0, &in));
	if (rc == 0 && (*client = ks_install_json(in, with_secret)) == NULL)
		rc = -1;
out:
	store_install_free(old);
	store_install_free(in);
	free(text);
	return rc;
}

int
app_ks_install_by_id(struct app_keystore *ks, const char *reqid,
    const char *id, char **token, char **secret)
{
	struct store_install *in = NULL;
	int rc;

	*token = *secret = NULL;
	ks_begin(ks);
	rc = ks_end(ks, reqid, "installation lookup",
	    store_install_get_by_id(ks->st, id, &in));
	if (rc == 0 && ((*token = strdup(in->token)) == NULL ||
	    (*secret = strdup(in->secret)) == NULL)) {
		free(*token);
		*token = NULL;
		rc = -1;
	}
	store_install_free(in);
	return rc;
}

int
app_ks_secret_previous(struct app_keystore *ks, const char *reqid,
    const char *token, int64_t now, unsigned grace_s, char **secret)
{
	json_t *v = NULL;
	const char *hex;
	json_int_t rotated;
	int rc;

	*secret = NULL;
	if ((rc = app_ks_state_get(ks, reqid, token, APP_KS_PREVIOUS_SECRET,
	    &v)) != 0)
		return rc;
	hex = json_string_value(json_object_get(v, "secret"));
	rotated = json_integer_value(json_object_get(v, "rotated"));
	rc = 1;
	if (hex != NULL && strlen(hex) == STORE_SECRET_LEN &&
	    now < rotated + (json_int_t)grace_s)
		rc = (*secret = strdup(hex)) != NULL ? 0 : -1;
	json_decref(v);
	return rc;
}

int
app_ks_delivery_claim(struct app_keystore *ks, const char *reqid,
    const char *install_id, const char *id, int64_t now, unsigned ttl_s)
{
	int rc, dup = 0;

	ks_begin(ks);
	rc = ks_end(ks, reqid, "delivery claim", store_delivery_claim(ks->st,
	    install_id, id, now, ttl_s, &dup));
	return rc < 0 ? -1 : dup;
}

int
app_ks_delivery_release(struct app_keystore *ks, const char *reqid,
    const char *install_id, const char *id)
{
	int rc;

	ks_begin(ks);
	rc = ks_end(ks, reqid, "delivery release",
	    store_delivery_release(ks->st, install_id, id));
	return rc < 0 ? -1 : 0;
}

int
app_ks_install_delete(struct app_keystore *ks, const char *reqid,
    const char *token, size_t *pairs)
{
	int rc;

	ks_begin(ks);
	rc = ks_end(ks, reqid, "installation delete",
	    store_install_delete(ks->st, token, pairs));
	if (rc == 0 && ks->forgot != NULL)
		atomic_store(ks->forgot, 1);
	return rc < 0 ? -1 : 0;
}

int
app_ks_ids_save(struct app_keystore *ks, const char *reqid,
    const char *token, const char *bid, const char *eid)
{
	ks_begin(ks);
	return ks_end(ks, reqid, "save ids",
	    store_ids_save(ks->st, token, bid, eid));
}

int
app_ks_ext_id_get(struct app_keystore *ks, const char *reqid,
    const char *token, const char *bid, char **eid)
{
	ks_begin(ks);
	return ks_end(ks, reqid, "get ext id",
	    store_ext_id_get(ks->st, token, bid, eid));
}

int
app_ks_botmatic_id_get(struct app_keystore *ks, const char *reqid,
    const char *token, const char *eid, char **bid)
{
	ks_begin(ks);
	return ks_end(ks, reqid, "get botmatic id",
	    store_botmatic_id_get(ks->st, token, eid, bid));
}

int
app_ks_ids_delete(struct app_keystore *ks, const char *reqid,
    const char *token, const char *bid, const char *eid)
{
	ks_begin(ks);
	return ks_end(ks, reqid, "delete ids",
	    store_ids_delete(ks->st, token, bid, eid));
}

int
app_ks_state_get(struct app_keystore *ks, const char *reqid,
    const char *token, const char *name, json_t **value)
{
	char *val = NULL;
	size_t len = 0;
	int rc;

	*value = NULL;
	ks_begin(ks);
	rc = ks_end(ks, reqid, "get state",
	    store_state_get(ks->st, token, name, &val, &len));
	if (rc == 0 && (*value = json_loadb(val, len, JSON_DECODE_ANY,
	    NULL)) == NULL) {
		app_log(BM_LOG_ERROR, reqid, "keystore", "state value is not "
		    "JSON");
		rc = -1;
	}
	free(val);
	return rc;
}

int
app_ks_state_set(struct app_keystore *ks, const char *reqid,
    const char *token, const char *name, const json_t *value)
{
	char *text;
	int rc;

	if ((text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return -1;
	ks_begin(ks);
	rc = ks_end(ks, reqid, "set state",
	    store_state_set(ks->st, token, name, text, strlen(text)));
	free(text);
	return rc;
}

int
app_ks_state_delete(struct app_keystore *ks, const char *reqid,
    const char *token, const char *name)
{
	ks_begin(ks);
	return ks_end(ks, reqid, "delete state",
	    store_state_delete(ks->st, token, name));
}

/* For the other files of keystore/ (jobs.c): the same call marks. */
void
app_ks__begin(struct app_keystore *ks)
{
	ks_begin(ks);
}

int
app_ks__end(struct app_keystore *ks, const char *reqid, const char *what,
    int rc)
{
	return ks_end(ks, reqid, what, rc);
}

int
app_ks_purge_step(struct app_keystore *ks, size_t max_keys, size_t *deleted,
    int *more)
{
	ks_begin(ks);
	return ks_end(ks, NULL, "purge", store_purge_step(ks->st, max_keys,
	    deleted, more)) < 0 ? -1 : 0;
}

/* Inside the store's transaction: the stored settings with values set. */
static int
ks_settings_merge_fn(void *arg, const char *old, size_t old_len, char **out,
    size_t *out_len)
{
	const json_t *values = arg;
	json_t *set = NULL, *v;
	const char *key;
	int rc = -1;

	*out = NULL;
	if (old_len > 0)
		set = json_loadb(old, old_len, 0, NULL);
	/* Botmatic's install data may be anything: settings need an object. */
	if (!json_is_object(set)) {
		json_decref(set);
		if ((set = json_object()) == NULL)
			goto out;
	}
	json_object_foreach((json_t *)values, key, v) {
		if (json_is_null(v))
			json_object_del(set, key);
		else if (json_object_set(set, key, v) < 0)
			goto out;
	}
	if ((*out = json_dumps(set, JSON_COMPACT)) == NULL)
		goto out;
	*out_len = strlen(*out);
	rc = 0;
out:
	json_decref(set);
	return rc;
}

int
app_ks_settings_merge(struct app_keystore *ks, const char *reqid,
    const char *token, const json_t *values)
{
	if (!json_is_object(values))
		return -1;
	ks_begin(ks);
	return ks_end(ks, reqid, "settings save",
	    store_install_settings_update(ks->st, token, ks_settings_merge_fn,
	    (void *)values));
}

int
app_ks_ids_delete_all(struct app_keystore *ks, const char *reqid,
    const char *token, size_t *n)
{
	int rc;

	ks_begin(ks);
	rc = ks_end(ks, reqid, "delete all pairs",
	    store_ids_delete_all(ks->st, token, n));
	/* The pairs are tombstoned: the master's purge deletes them. */
	if (rc == 0 && ks->forgot != NULL)
		atomic_store(ks->forgot, 1);
	return rc < 0 ? -1 : 0;
}
