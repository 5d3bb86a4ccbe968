/*
 * events/hooks.c - the declared topics registered as webhooks at the
 * external service (SPEC §11), as jobs so that a failing or hanging
 * service never holds a webhook and is retried on BM_RETRY_SCHEDULE:
 *
 *   hooks_reconcile (of an installation, one pending at a time): list the
 *   service's webhooks; keep, for each declared type, the one at our
 *   address with its topic that we created under the current secret;
 *   delete every other one at OUR addresses (duplicates, stale topics,
 *   types no longer declared, hooks made before a secret rotation); create
 *   the missing; keep the ids, with the secret's fingerprint, in the state
 *   "bm:hooks".  Run twice, the second run changes nothing.
 *
 *   hooks_delete (detached: the uninstall that queues it removes the
 *   installation and its jobs, not this one): delete the recorded ids and
 *   whatever else is at the installation's addresses.
 *
 * Webhooks at any other address are never touched.  The calls are the
 * generic REST consumer's (app_extrest_hook) or a module's (reg_hook_ops).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "events/events.h"
#include "events/events_int.h"
#include "keystore/keystore.h"
#include "outbound/outbound.h"
#include "sync/sync.h"

/* Longest address we build. */
#define HK_ADDR_MAX 2048

/* This process's generic REST client for the webhook calls (made on the
 * first job that needs it, after fork). */
static struct app_extrest *hk_rest;

/* The prefix of the installation's addresses: BM_PUBLIC_URL + endpoint +
 * "ext/<install id>/events/".  Returns 0, or -1 when it does not fit. */
static int
hk_prefix(const struct app_conf *conf, const char *iid, char *buf,
    size_t cap)
{
	size_t el = strlen(conf->endpoint);
	int n;

	if (conf->public_url == NULL)
		return -1;
	n = snprintf(buf, cap, "%s%s%sext/%s/events/", conf->public_url,
	    conf->endpoint, el > 0 && conf->endpoint[el - 1] == '/' ? "" : "/",
	    iid);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* One webhook call, by the module's operations or the REST consumer.
 * Returns a result (new). */
static json_t *
hk_call(struct app_env *env, struct bm_ctx *ctx, enum app_ext_op op,
    const char *id, const char *topic, const char *address)
{
	const struct app_hook_ops *mo = env->reg->hook_ops;
	char err[300];
	json_t *body, *res;

	if (mo != NULL) {
		ctx->module = mo->module;
		res = op == APP_EXT_HOOKS_LIST ? mo->ops.list(ctx, mo->ops.arg) :
		    op == APP_EXT_HOOK_CREATE ? mo->ops.create(ctx, topic,
		    address, mo->ops.arg) : mo->ops.del(ctx, id, mo->ops.arg);
		ctx->module = "events";
		if (res == NULL || !json_is_object(res)) {
			json_decref(res);
			return json_pack("{s:b, s:s}", "success", 0, "error",
			    "the module's webhook operation returned nothing");
		}
		return res;
	}
	if (hk_rest == NULL && (hk_rest = app_extrest_new(env->conf, "id", err,
	    sizeof(err))) == NULL) {
		app_log(BM_LOG_ERROR, ctx->request_id, "events", "webhooks: %s",
		    err);
		return json_pack("{s:b, s:s}", "success", 0, "error", err);
	}
	body = op == APP_EXT_HOOK_CREATE ? json_pack("{s:s, s:s}", "topic",
	    topic, "address", address) : NULL;
	res = app_extrest_hook(hk_rest, ctx->request_id, op, id, body);
	json_decref(body);
	return res;
}

static int
hk_ok(const json_t *res)
{
	return json_is_true(json_object_get(res, "success"));
}

/* A 404 to a delete: the webhook is gone, which is what we wanted. */
static int
hk_gone(const json_t *res)
{
	return json_integer_value(json_object_get(res, "status")) == 404 ||
	    (json_object_get(res, "status") == NULL &&
	    json_is_string(json_object_get(res, "error")) &&
	    strcmp(json_string_value(json_object_get(res, "error")),
	    "resource not found") == 0);
}

/* An id as text (a string, or an integer in decimal); -1 otherwise. */
static int
hk_id(const json_t *v, char *buf, size_t cap)
{
	return app_sync_id_text(v, buf, cap);
}

/*
 * The fingerprint of the keys deliveries are signed with (the
 * installation's secret and the external one): hooks made under another
 * are replaced.  16 hex digits of a SHA-256, revealing nothing usable.
 */
static int
hk_fingerprint(const char *secret, const char *external, char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c;
	int i, ok;

	if ((c = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, "bm-hooks\n", 9) == 1 &&
	    EVP_DigestUpdate(c, secret, strlen(secret)) == 1 &&
	    EVP_DigestUpdate(c, "\n", 1) == 1 &&
	    (external == NULL || EVP_DigestUpdate(c, external,
	    strlen(external)) == 1) &&
	    EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 8;
	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	for (i = 0; i < 8; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[16] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

/* Whether state (the last reconcile's) recorded webhook id under fp. */
static int
hk_recorded(const json_t *state, const char *fp, const char *id)
{
	const json_t *h;
	char buf[256];
	size_t i;

	if (!json_is_string(json_object_get(state, "fingerprint")) ||
	    strcmp(json_string_value(json_object_get(state, "fingerprint")),
	    fp) != 0)
		return 0;
	json_array_foreach(json_object_get(state, "hooks"), i, h)
		if (hk_id(json_object_get(h, "id"), buf, sizeof(buf)) == 0 &&
		    strcmp(buf, id) == 0)
			return 1;
	return 0;
}

/* Whether kept holds a webhook for type. */
static int
hk_has_type(const json_t *kept, const char *type)
{
	const json_t *h;
	size_t i;

	json_array_foreach(kept, i, h)
		if (strcmp(json_string_value(json_object_get(h, "type")),
		    type) == 0)
			return 1;
	return 0;
}

/* hooks_reconcile of the installation of ctx->token. */
static json_t *
hk_reconcile(struct app_env *env, struct bm_ctx *ctx)
{
	const struct app_events *evs = env->events;
	char prefix[HK_ADDR_MAX], addr[HK_ADDR_MAX], id[256], fp[17];
	const char *iid, *a, *topic, *ext;
	char *token = NULL, *secret = NULL;
	json_t *client = NULL, *extj = NULL, *state = NULL, *list = NULL;
	json_t *kept = NULL, *res = NULL, *h, *r;
	const struct app_event *ev;
	size_t i, pl;
	int rc, created = 0, deleted = 0;

	rc = app_ks_install_get(env->ks, ctx->request_id, ctx->token, &client);
	if (rc != 0) {
		res = rc < 0 ? json_pack("{s:b, s:s, s:i}", "success", 0,
		    "error", "keystore failure", "status", 503) :
		    json_pack("{s:b}", "success", 1); /* uninstalled: nothing */
		goto out;
	}
	iid = json_string_value(json_object_get(client, "install_id"));
	if (iid == NULL || app_ks_install_by_id(env->ks, ctx->request_id, iid,
	    &token, &secret) != 0 || app_ks_state_get(env->ks,
	    ctx->request_id, ctx->token, APP_WH_EXTERNAL_STATE, &extj) < 0 ||
	    app_ks_state_get(env->ks, ctx->request_id, ctx->token,
	    APP_EVENTS_HOOKS_STATE, &state) < 0) {
		res = json_pack("{s:b, s:s, s:i}", "success", 0, "error",
		    "keystore failure", "status", 503);
		goto out;
	}
	ext = json_string_value(json_object_get(extj, "secret"));
	if (evs == NULL || hk_prefix(env->conf, iid, prefix, sizeof(prefix)) <
	    0 || hk_fingerprint(secret, ext, fp) < 0) {
		res = json_pack("{s:b, s:s}", "success", 0, "error", "BM_EVENTS "
		    "and BM_PUBLIC_URL are needed to register webhooks");
		goto out;
	}
	pl = strlen(prefix);
	list = hk_call(env, ctx, APP_EXT_HOOKS_LIST, NULL, NULL, NULL);
	if (list == NULL || !hk_ok(list)) {
		res = list;
		list = NULL;
		goto out;
	}
	if ((kept = json_array()) == NULL)
		goto out;
	json_array_foreach(json_object_get(list, "hooks"), i, h) {
		a = json_string_value(json_object_get(h, "address"));
		topic = json_string_value(json_object_get(h, "topic"));
		/* Not at our addresses: never ours to touch. */
		if (a == NULL || strncmp(a, prefix, pl) != 0 ||
		    hk_id(json_object_get(h, "id"), id, sizeof(id)) < 0)
			continue;
		ev = app_events_find(evs, a + pl);
		if (ev != NULL && ev->topic != NULL && topic != NULL &&
		    strcmp(topic, ev->topic) == 0 &&
		    hk_recorded(state, fp, id) && !hk_has_type(kept, ev->type)) {
			json_array_append_new(kept, json_pack("{s:s, s:s, s:s, "
			    "s:s}", "id", id, "type", ev->type, "topic",
			    ev->topic, "address", a));
			continue;
		}
		/* A duplicate, a stale topic or type, or made under an old
		 * secret: its sender would sign with a key we no longer
		 * accept. */
		r = hk_call(env, ctx, APP_EXT_HOOK_DELETE, id, NULL, NULL);
		if (r == NULL || (!hk_ok(r) && !hk_gone(r))) {
			res = r;
			goto save;
		}
		json_decref(r);
		deleted++;
	}
	for (i = 0; i < evs->n; i++) {
		ev = &evs->ev[i];
		if (ev->topic == NULL || hk_has_type(kept, ev->type))
			continue;
		snprintf(addr, sizeof(addr), "%s%s", prefix, ev->type);
		r = hk_call(env, ctx, APP_EXT_HOOK_CREATE, NULL, ev->topic, addr);
		if (r == NULL || !hk_ok(r) || hk_id(json_object_get(r, "id"), id,
		    sizeof(id)) < 0) {
			res = r;
			goto save;
		}
		json_decref(r);
		json_array_append_new(kept, json_pack("{s:s, s:s, s:s, s:s}",
		    "id", id, "type", ev->type, "topic", ev->topic, "address",
		    addr));
		created++;
	}
	res = json_pack("{s:b, s:i, s:i, s:i}", "success", 1, "kept",
	    (int)json_array_size(kept) - created, "created", created,
	    "deleted", deleted);
save:
	/* What exists now, even after a failure half-way: the next run
	 * starts from it (an unrecorded hook of ours is replaced). */
	if (created > 0 || deleted > 0 || state == NULL || hk_ok(res)) {
		json_t *st = json_pack("{s:s, s:O}", "fingerprint", fp, "hooks",
		    kept);
		if (st == NULL || app_ks_state_set(env->ks, ctx->request_id,
		    ctx->token, APP_EVENTS_HOOKS_STATE, st) < 0) {
			json_decref(res);
			res = json_pack("{s:b, s:s, s:i}", "success", 0, "error",
			    "keystore failure", "status", 503);
		}
		json_decref(st);
	}
	if (hk_ok(res))
		app_log(BM_LOG_INFO, ctx->request_id, "events", "webhooks of %s "
		    "reconciled: %zu registered, %d created, %d deleted", iid,
		    json_array_size(kept), created, deleted);
out:
	if (res == NULL)
		res = json_pack("{s:b, s:s}", "success", 0, "error",
		    "out of memory");
	json_decref(kept);
	json_decref(list);
	json_decref(state);
	json_decref(extj);
	json_decref(client);
	if (token != NULL)
		OPENSSL_cleanse(token, strlen(token));
	free(token);
	if (secret != NULL)
		OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
	return res;
}

/* hooks_delete: payload {"install_id","hooks":[ids]}. */
static json_t *
hk_delete(struct app_env *env, struct bm_ctx *ctx, const json_t *p)
{
	const char *iid = json_string_value(json_object_get(p, "install_id"));
	char prefix[HK_ADDR_MAX], id[256];
	const json_t *h;
	const char *a;
	json_t *list = NULL, *r = NULL;
	size_t i, pl;

	if (iid == NULL || hk_prefix(env->conf, iid, prefix, sizeof(prefix)) <
	    0) {
		r = json_pack("{s:b, s:s}", "success", 0, "error",
		    "damaged job, or no BM_PUBLIC_URL");
		goto out;
	}
	pl = strlen(prefix);
	json_array_foreach(json_object_get(p, "hooks"), i, h) {
		if (hk_id(h, id, sizeof(id)) < 0)
			continue;
		r = hk_call(env, ctx, APP_EXT_HOOK_DELETE, id, NULL, NULL);
		if (r == NULL || (!hk_ok(r) && !hk_gone(r)))
			goto out;
		json_decref(r);
		r = NULL;
	}
	/* And whatever else is at the installation's addresses. */
	list = hk_call(env, ctx, APP_EXT_HOOKS_LIST, NULL, NULL, NULL);
	if (list == NULL || !hk_ok(list)) {
		r = list;
		list = NULL;
		goto out;
	}
	json_array_foreach(json_object_get(list, "hooks"), i, h) {
		a = json_string_value(json_object_get(h, "address"));
		if (a == NULL || strncmp(a, prefix, pl) != 0 ||
		    hk_id(json_object_get(h, "id"), id, sizeof(id)) < 0)
			continue;
		r = hk_call(env, ctx, APP_EXT_HOOK_DELETE, id, NULL, NULL);
		if (r == NULL || (!hk_ok(r) && !hk_gone(r)))
			goto out;
		json_decref(r);
		r = NULL;
	}
	app_log(BM_LOG_INFO, ctx->request_id, "events", "webhooks of "
	    "uninstalled %s deleted", iid);
	r = json_pack("{s:b}", "success", 1);
out:
	json_decref(list);
	return r;
}

json_t *
app_events__run_hooks(struct app_env *env, struct bm_ctx *ctx,
    const char *kind, const json_t *payload)
{
	ctx->module = "events";
	if (strcmp(kind, "hooks_reconcile") == 0)
		return hk_reconcile(env, ctx);
	if (strcmp(kind, "hooks_delete") == 0)
		return hk_delete(env, ctx, payload);
	return json_pack("{s:b, s:s}", "success", 0, "error",
	    "unknown job kind");
}

int
app_events_reconcile_queue(struct app_env *env, const char *reqid,
    const char *token)
{
	json_t *p = json_object();
	uint64_t id = 0;
	int rc;

	if (p == NULL)
		return -1;
	rc = app_ks_job_add(env->ks, reqid, token, "hooks_reconcile", "hooks",
	    p, 1, 0, &id, NULL);
	json_decref(p);
	if (rc == 0)
		app_log(BM_LOG_INFO, reqid, "events", "webhook registration "
		    "queued as job %llu", (unsigned long long)id);
	return rc;
}

/* The install hook: the registration, as a job (never holds install). */
static enum bm_rc
hk_install(struct bm_ctx *ctx, json_t *data, void *arg)
{
	struct app_env *env = ctx->req != NULL ? ctx->req->env : NULL;

	(void)data;
	(void)arg;
	if (env == NULL || env->events == NULL || !env->events->topics)
		return BM_OK;
	return app_events_reconcile_queue(env, ctx->request_id, ctx->token) < 0 ?
	    BM_ETEMP : BM_OK;
}

/*
 * The uninstall hook: the deletion of the installation's webhooks as a
 * detached job, which the uninstall's own cancellation of the
 * installation's jobs leaves alone.
 */
static enum bm_rc
hk_uninstall(struct bm_ctx *ctx, json_t *data, void *arg)
{
	struct app_env *env = ctx->req != NULL ? ctx->req->env : NULL;
	struct app_ks_jobspec js;
	json_t *state = NULL, *ids = NULL, *p = NULL;
	const json_t *h;
	const char *iid;
	char key[64];
	uint64_t id = 0;
	enum bm_rc rc = BM_ETEMP;
	size_t i;

	(void)data;
	(void)arg;
	if (env == NULL || env->events == NULL || !env->events->topics)
		return BM_OK;
	iid = json_string_value(json_object_get(ctx->client, "install_id"));
	if (iid == NULL)
		return BM_OK;  /* not installed: nothing registered */
	if (app_ks_state_get(env->ks, ctx->request_id, ctx->token,
	    APP_EVENTS_HOOKS_STATE, &state) < 0 || (ids = json_array()) ==
	    NULL)
		goto out;
	json_array_foreach(json_object_get(state, "hooks"), i, h)
		json_array_append(ids, json_object_get(h, "id"));
	if ((p = json_pack("{s:s, s:O}", "install_id", iid, "hooks", ids)) ==
	    NULL)
		goto out;
	snprintf(key, sizeof(key), "hooks:%s", iid);
	js.kind = "hooks_delete";
	js.contact = key;
	js.payload = p;
	if (app_ks_job_add_detached(env->ks, ctx->request_id,
	    APP_EVENTS_OWNER, &js, &id) < 0)
		goto out;
	app_log(BM_LOG_INFO, ctx->request_id, "events", "deletion of the "
	    "webhooks of %s queued as job %llu", iid, (unsigned long long)id);
	rc = BM_OK;
out:
	json_decref(p);
	json_decref(ids);
	json_decref(state);
	return rc;
}

int
app_events_register(const struct app_events *evs,
    const struct app_conf *conf, struct app_registry *reg, char *err,
    size_t errlen)
{
	if (evs->topics && conf->public_url == NULL) {
		snprintf(err, errlen, "BM_EVENTS declares topics to register: "
		    "BM_PUBLIC_URL is required");
		return -1;
	}
	if (evs->topics && reg->hook_ops == NULL &&
	    conf->ext_base_url == NULL) {
		snprintf(err, errlen, "BM_EVENTS declares topics to register: "
		    "BM_EXT_BASE_URL (or a module's webhook operations) is "
		    "required");
		return -1;
	}
	if (app_sync_kind_add("ev_", app_events__run_fire) < 0 ||
	    app_sync_kind_add("hooks_", app_events__run_hooks) < 0) {
		snprintf(err, errlen, "too many job kinds");
		return -1;
	}
	if (app_registry_add_hook(reg, 0, "events", hk_install, NULL, err,
	    errlen) < 0 || app_registry_add_hook(reg, 1, "events",
	    hk_uninstall, NULL, err, errlen) < 0)
		return -1;
	return 0;
}
