#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"
#include "host/host_int.h"

static void
host_log(const struct bm_ctx *ctx, enum bm_log_level lvl, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	app_logv(lvl, ctx != NULL ? ctx->request_id : NULL,
	    ctx != NULL && ctx->module != NULL ? ctx->module : "module", -1,
	    fmt, ap);
	va_end(ap);
}

static void *
host_req_alloc(struct bm_req *req, size_t size)
{
	return req == NULL ? NULL : app_req_alloc(req, size);
}

static const char *
host_conf(struct bm_reg *reg, const char *key)
{
	char name[256];
	size_t i, len;
	char **p;

	if (reg == NULL || key == NULL)
		return NULL;
	len = (size_t)snprintf(name, sizeof(name), "BM_MOD_%s_%s=",
	    reg->module, key);
	if (len >= sizeof(name))
		return NULL;
	for (i = 0; i < len; i++)
		name[i] = (char)toupper((unsigned char)name[i]);
	for (p = reg->conf->mod_env; p != NULL && *p != NULL; p++)
		if (strncmp(*p, name, len) == 0)
			return *p + len;
	return NULL;
}

/* Each registration logs its own failure: the module just sees -1. */
static int
host_reg_fail(struct bm_reg *reg)
{
	app_log(BM_LOG_ERROR, NULL, "module", "%s: %s", reg->module, reg->err);
	return -1;
}

static int
host_reg_action(struct bm_reg *reg, const char *pattern, bm_handler_fn fn,
    void *arg)
{
	if (app_registry_add_action(reg->registry, reg->module, pattern, fn,
	    arg, reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_event(struct bm_reg *reg, const char *name, bm_handler_fn fn,
    void *arg)
{
	if (app_registry_add_event(reg->registry, reg->module, name, fn, arg,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_ext_event(struct bm_reg *reg, const char *type, bm_handler_fn fn,
    void *arg)
{
	if (app_registry_add_ext_event(reg->registry, reg->module, type, fn,
	    arg, reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_hook_ops(struct bm_reg *reg, const struct bm_hook_ops *ops)
{
	if (app_registry_add_hook_ops(reg->registry, reg->module, ops,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_install(struct bm_reg *reg, bm_hook_fn fn, void *arg)
{
	if (app_registry_add_hook(reg->registry, 0, reg->module, fn, arg,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_uninstall(struct bm_reg *reg, bm_hook_fn fn, void *arg)
{
	if (app_registry_add_hook(reg->registry, 1, reg->module, fn, arg,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_auth(struct bm_reg *reg, const char *name, bm_auth_fn fn, void *arg)
{
	if (app_registry_add_auth(reg->registry, reg->module, name, fn, arg,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static int
host_reg_transform(struct bm_reg *reg, const char *name, bm_transform_fn fn)
{
	if (app_registry_add_transform(reg->registry, reg->module, name, fn,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

/*
 * The keystore of ctx's installation, or NULL (logged) when the request
 * has none: no token, or a process without a store.
 */
static struct app_keystore *
host_ks(const struct bm_ctx *ctx)
{
	struct app_env *env;

	if (ctx == NULL || ctx->req == NULL || (env = ctx->req->env) == NULL ||
	    env->ks == NULL || env->ks->st == NULL) {
		app_log(BM_LOG_ERROR, ctx != NULL ? ctx->request_id : NULL,
		    "module", "keystore used outside a request");
		return NULL;
	}
	if (ctx->token == NULL || ctx->token[0] == '\0') {
		app_log(BM_LOG_WARN, ctx->request_id, ctx->module, "keystore: "
		    "the request has no token, so no integration");
		return NULL;
	}
	return env->ks;
}

/* Copies a malloc()ed string into the request arena and frees it. */
static const char *
host_req_strdup(struct bm_req *req, char *s)
{
	size_t len = strlen(s) + 1;
	char *copy = app_req_alloc(req, len);

	if (copy != NULL)
		memcpy(copy, s, len);
	free(s);
	return copy;
}

static int
host_ids_save(struct bm_ctx *ctx, const char *bid, const char *eid)
{
	struct app_keystore *ks = host_ks(ctx);

	return ks == NULL ? -1 :
	    app_ks_ids_save(ks, ctx->request_id, ctx->token, bid, eid);
}

static int
host_id_get(struct bm_ctx *ctx, const char *id, const char **out, int ext)
{
	struct app_keystore *ks = host_ks(ctx);
	char *found = NULL;
	int rc;

	*out = NULL;
	if (ks == NULL)
		return -1;
	rc = ext ? app_ks_ext_id_get(ks, ctx->request_id, ctx->token, id,
	    &found) : app_ks_botmatic_id_get(ks, ctx->request_id, ctx->token,
	    id, &found);
	if (rc == 0 && (*out = host_req_strdup(ctx->req, found)) == NULL)
		return -1;
	return rc;
}

static int
host_ext_id_get(struct bm_ctx *ctx, const char *bid, const char **eid)
{
	return host_id_get(ctx, bid, eid, 1);
}

static int
host_botmatic_id_get(struct bm_ctx *ctx, const char *eid, const char **bid)
{
	return host_id_get(ctx, eid, bid, 0);
}

static int
host_ids_delete(struct bm_ctx *ctx, const char *bid, const char *eid)
{
	struct app_keystore *ks = host_ks(ctx);

	return ks == NULL ? -1 :
	    app_ks_ids_delete(ks, ctx->request_id, ctx->token, bid, eid);
}

static int
host_state_get(struct bm_ctx *ctx, const char *name, json_t **value)
{
	struct app_keystore *ks = host_ks(ctx);

	*value = NULL;
	return ks == NULL ? -1 :
	    app_ks_state_get(ks, ctx->request_id, ctx->token, name, value);
}

static int
host_state_set(struct bm_ctx *ctx, const char *name, const json_t *value)
{
	struct app_keystore *ks = host_ks(ctx);

	return ks == NULL ? -1 :
	    app_ks_state_set(ks, ctx->request_id, ctx->token, name, value);
}

static int
host_state_delete(struct bm_ctx *ctx, const char *name)
{
	struct app_keystore *ks = host_ks(ctx);

	return ks == NULL ? -1 :
	    app_ks_state_delete(ks, ctx->request_id, ctx->token, name);
}

static void
host_map_warn(void *arg, const char *field, const char *reason)
{
	const struct bm_ctx *ctx = arg;

	app_log(BM_LOG_WARN, ctx->request_id, "mapping", "field %s left out: "
	    "%s", field, reason);
}

static int
host_map(struct bm_ctx *ctx, const json_t *record, enum bm_map_dir dir,
    json_t **out)
{
	const struct mapping *map;
	char err[512];

	*out = NULL;
	if (ctx == NULL || ctx->req == NULL || ctx->req->env == NULL ||
	    (map = ctx->req->env->map) == NULL) {
		app_log(BM_LOG_ERROR, ctx != NULL ? ctx->request_id : NULL,
		    "mapping", "no mappings file (BM_MAPPINGS) is loaded");
		return -1;
	}
	if (dir != BM_MAP_TO_BOTMATIC && dir != BM_MAP_TO_EXT)
		return -1;
	if (map_apply(map, record, dir == BM_MAP_TO_BOTMATIC ? MAP_EXT :
	    MAP_BOTMATIC, dir == BM_MAP_TO_BOTMATIC ? MAP_BOTMATIC : MAP_EXT,
	    out, host_map_warn, ctx, err, sizeof(err)) < 0) {
		app_log(BM_LOG_WARN, ctx->request_id, "mapping", "%s", err);
		return -1;
	}
	return 0;
}

static int
host_reg_consumer(struct bm_reg *reg, const char *name,
    const struct bm_consumer *c)
{
	if (app_registry_add_consumer(reg->registry, reg->module, name, c,
	    reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static const struct bm_consumer *
host_consumer(struct bm_ctx *ctx)
{
	if (ctx == NULL || ctx->req == NULL || ctx->req->env == NULL)
		return NULL;
	return ctx->req->env->consumer;
}

/* The Botmatic client of ctx's responder, or NULL (logged). */
static struct app_botmatic *
host_botmatic(struct bm_ctx *ctx)
{
	if (ctx == NULL || ctx->req == NULL || ctx->req->env == NULL ||
	    ctx->token == NULL || ctx->token[0] == '\0') {
		app_log(BM_LOG_ERROR, ctx != NULL ? ctx->request_id : NULL,
		    "module", "Botmatic API used without a request or a token");
		return NULL;
	}
	return ctx->req->env->botmatic;
}

static json_t *
host_contacts_import(struct bm_ctx *ctx)
{
	if (host_botmatic(ctx) == NULL)
		return NULL;
	/* A job: never run inside a responder (SPEC §9). */
	return app_sync_import_queue(ctx->req->env, ctx->request_id,
	    ctx->token);
}

static json_t *
host_properties_create(struct bm_ctx *ctx, const json_t *properties)
{
	struct app_botmatic *bm = host_botmatic(ctx);

	return bm == NULL ? NULL : app_botmatic_properties_create(bm,
	    ctx->request_id, ctx->token, properties);
}

static json_t *
host_campaign_event(struct bm_ctx *ctx, const char *event_name,
    const json_t *ids)
{
	struct app_botmatic *bm = host_botmatic(ctx);

	return bm == NULL ? NULL : app_botmatic_campaign_event(bm,
	    ctx->request_id, ctx->token, event_name, ids);
}

static json_t *
host_botmatic_contact_update(struct bm_ctx *ctx, const char *id,
    const json_t *props)
{
	struct app_botmatic *bm = host_botmatic(ctx);

	return bm == NULL ? NULL : app_botmatic_contact_update(bm,
	    ctx->request_id, ctx->token, id, props);
}

static int
host_reg_settings_validate(struct bm_reg *reg, bm_settings_validate_fn fn,
    void *arg)
{
	if (app_registry_add_settings_validator(reg->registry, reg->module, fn,
	    arg, reg->err, sizeof(reg->err)) < 0)
		return host_reg_fail(reg);
	return 0;
}

static json_t *
host_bots_list(struct bm_ctx *ctx)
{
	struct app_botmatic *bm = host_botmatic(ctx);

	return bm == NULL ? NULL : app_botmatic_bots_list(bm, ctx->request_id,
	    ctx->token);
}

static json_t *
host_bot_get(struct bm_ctx *ctx, const char *id)
{
	struct app_botmatic *bm = host_botmatic(ctx);

	return bm == NULL ? NULL : app_botmatic_bot_get(bm, ctx->request_id,
	    ctx->token, id);
}

static json_t *
host_bot_update(struct bm_ctx *ctx, const char *id, const json_t *bot)
{
	struct app_botmatic *bm = host_botmatic(ctx);

	return bm == NULL ? NULL : app_botmatic_bot_update(bm,
	    ctx->request_id, ctx->token, id, bot);
}

static int
host_ids_delete_all(struct bm_ctx *ctx)
{
	struct app_keystore *ks = host_ks(ctx);

	return ks == NULL ? -1 :
	    app_ks_ids_delete_all(ks, ctx->request_id, ctx->token, NULL);
}

/*
 * The installation id of the request: services are keyed by it, not by
 * the token.  Into buf (APP_KS_INSTALL_ID_LEN + 1); 0 or -1 (logged).
 */
static int
host_install_id(struct bm_ctx *ctx, char *buf)
{
	struct app_keystore *ks = host_ks(ctx);
	json_t *client = NULL;
	const char *id;
	int rc;

	if (ks == NULL)
		return -1;
	if (ctx->token == NULL || (rc = app_ks_install_get(ks, ctx->request_id,
	    ctx->token, &client)) != 0) {
		app_log(BM_LOG_ERROR, ctx->request_id, "module", "services: "
		    "the request has no installation");
		return -1;
	}
	id = json_string_value(json_object_get(client, "install_id"));
	rc = id != NULL && strlen(id) == APP_KS_INSTALL_ID_LEN ? 0 : -1;
	if (rc == 0)
		memcpy(buf, id, APP_KS_INSTALL_ID_LEN + 1);
	json_decref(client);
	return rc;
}

/* s copied into the request's memory, then wiped and freed. */
static const char *
host_req_secret(struct bm_ctx *ctx, char *s)
{
	size_t n = strlen(s) + 1;
	char *r = app_req_alloc(ctx->req, n);

	if (r != NULL)
		memcpy(r, s, n);
	explicit_bzero(s, n);
	free(s);
	return r;
}

static int
host_service_link(struct bm_ctx *ctx, const char *service, const char *group,
    const char *user, const char **url)
{
	char id[APP_KS_INSTALL_ID_LEN + 1], *u = NULL;

	*url = NULL;
	if (host_install_id(ctx, id) < 0 || app_service_link(ctx->req->env,
	    ctx->request_id, id, service, group, user, &u) < 0)
		return -1;
	return (*url = host_req_secret(ctx, u)) != NULL ? 0 : -1;
}

static int
host_service_token(struct bm_ctx *ctx, const char *service,
    const char *group, const char *user, const char **token)
{
	char id[APP_KS_INSTALL_ID_LEN + 1], *t = NULL;
	int rc;

	*token = NULL;
	if (host_install_id(ctx, id) < 0)
		return -1;
	rc = app_service_token(ctx->req->env, ctx->request_id, id, service,
	    group, user, &t);
	if (rc != 0)
		return rc;
	return (*token = host_req_secret(ctx, t)) != NULL ? 0 : -1;
}

static int
host_service_delete(struct bm_ctx *ctx, const char *service,
    const char *group, const char *user)
{
	char id[APP_KS_INSTALL_ID_LEN + 1];

	if (host_install_id(ctx, id) < 0)
		return -1;
	return app_service_delete(ctx->req->env, ctx->request_id, id,
	    service, group, user);
}

static json_t *
host_services(struct bm_ctx *ctx)
{
	char id[APP_KS_INSTALL_ID_LEN + 1];

	if (host_install_id(ctx, id) < 0)
		return NULL;
	return app_services_list(ctx->req->env, ctx->request_id, id);
}

static const struct bm_host host = {
	.size = sizeof(struct bm_host),
	.abi = BM_MODULE_ABI,
	.log = host_log,
	.req_alloc = host_req_alloc,
	.conf = host_conf,
	.reg_action = host_reg_action,
	.reg_event = host_reg_event,
	.reg_install = host_reg_install,
	.reg_uninstall = host_reg_uninstall,
	.reg_auth = host_reg_auth,
	.reg_transform = host_reg_transform,
	.ids_save = host_ids_save,
	.ext_id_get = host_ext_id_get,
	.botmatic_id_get = host_botmatic_id_get,
	.ids_delete = host_ids_delete,
	.state_get = host_state_get,
	.state_set = host_state_set,
	.state_delete = host_state_delete,
	.map = host_map,
	.reg_consumer = host_reg_consumer,
	.consumer = host_consumer,
	.contact_create = app_sync_contact_create,
	.contact_update = app_sync_contact_update,
	.contacts_update = app_sync_contacts_update,
	.contact_delete = app_sync_contact_delete,
	.contacts_import = host_contacts_import,
	.properties_create = host_properties_create,
	.campaign_event = host_campaign_event,
	.botmatic_contact_update = host_botmatic_contact_update,
	.reg_settings_validate = host_reg_settings_validate,
	.bots_list = host_bots_list,
	.bot_get = host_bot_get,
	.bot_update = host_bot_update,
	.ids_delete_all = host_ids_delete_all,
	.service_link = host_service_link,
	.service_token = host_service_token,
	.service_delete = host_service_delete,
	.services = host_services,
	.reg_ext_event = host_reg_ext_event,
	.reg_hook_ops = host_reg_hook_ops,
};

const struct bm_host *
app_host(void)
{
	return &host;
}
