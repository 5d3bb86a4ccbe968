#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dispatch.h"
#include "keystore.h"
#include "log.h"
#include "module.h"
#include "req.h"
#include "sync.h"

struct app_module {
	char *path;
	void *dl;
	struct bm_module def;  /* zeroed, then min(size, ours) copied in */
};

struct app_modules {
	struct app_module *v;
	size_t n;
};

/* The registration handle: valid only while one module's init() runs. */
struct bm_reg {
	struct app_registry *registry;
	const struct app_conf *conf;
	const char *module;
	char err[256];
};

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
	return app_sync_import(ctx->req->env, ctx->request_id, ctx->token);
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
};

const struct bm_host *
app_host(void)
{
	return &host;
}

static int
module_name_ok(const char *name)
{
	size_t len = name == NULL ? 0 : strlen(name);

	return len > 0 && len <= 64 &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/*
 * Loads one module into m.  Returns 0, or -1 with the reason in err (the
 * caller prefixes the path).
 */
static int
module_load_one(struct app_module *m, const char *path,
    const struct app_modules *loaded, struct app_registry *registry,
    const struct app_conf *conf, char *err, size_t errlen)
{
	const struct bm_module *entry;
	struct bm_reg reg;
	struct stat st;
	uint32_t size;
	size_t i;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (path[0] != '/') {
		snprintf(err, errlen, "not an absolute path");
		goto out;
	}
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	/* Anyone who can write it could run code in every responder. */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "refused: writable by group or others "
		    "(mode %04o)", (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((m->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "dlopen: %s", dlerror());
		goto out;
	}
	if ((entry = dlsym(m->dl, "bm_module_entry")) == NULL) {
		snprintf(err, errlen, "missing symbol bm_module_entry (not a "
		    "botmatic-fcgi module?)");
		goto out;
	}
	if (entry->abi != BM_MODULE_ABI) {
		snprintf(err, errlen, "ABI mismatch: module has %u, server has "
		    "%u (rebuild it against this <botmatic/module.h>)",
		    (unsigned)entry->abi, (unsigned)BM_MODULE_ABI);
		goto out;
	}
	size = entry->size;
	if (size < offsetof(struct bm_module, init) + sizeof(entry->init)) {
		snprintf(err, errlen, "bm_module_entry too small (%u bytes)",
		    (unsigned)size);
		goto out;
	}
	memcpy(&m->def, entry, size < sizeof(m->def) ? size : sizeof(m->def));
	if (!module_name_ok(m->def.name)) {
		snprintf(err, errlen, "invalid module name (want [a-z0-9_]{1,64})");
		goto out;
	}
	for (i = 0; i < loaded->n; i++)
		if (strcmp(loaded->v[i].def.name, m->def.name) == 0) {
			snprintf(err, errlen, "a module named \"%s\" is already "
			    "loaded from %s", m->def.name, loaded->v[i].path);
			goto out;
		}
	if (m->def.init == NULL) {
		snprintf(err, errlen, "no init function");
		goto out;
	}
	memset(&reg, 0, sizeof(reg));
	reg.registry = registry;
	reg.conf = conf;
	reg.module = m->def.name;
	if (m->def.init(&host, &reg) != 0) {
		snprintf(err, errlen, "init failed");
		goto out;
	}
	app_log(BM_LOG_INFO, NULL, "module", "%s: loaded %s %s", path,
	    m->def.name, m->def.version != NULL ? m->def.version : "");
	rc = 0;
out:
	if (rc < 0) {
		if (m->dl != NULL)
			dlclose(m->dl);
		free(m->path);
		memset(m, 0, sizeof(*m));
	}
	return rc;
}

int
app_modules_load(const struct app_conf *conf, struct app_registry *registry,
    struct app_modules **out, char *err, size_t errlen)
{
	struct app_modules *mods = NULL;
	char *list = NULL, *path, *save = NULL;
	char why[512];
	int rc = -1;

	if ((mods = calloc(1, sizeof(*mods))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (conf->modules == NULL) {
		rc = 0;
		goto out;
	}
	if ((list = strdup(conf->modules)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (path = strtok_r(list, ":", &save); path != NULL;
	    path = strtok_r(NULL, ":", &save)) {
		struct app_module *v;

		if ((v = realloc(mods->v, (mods->n + 1) * sizeof(*v))) ==
		    NULL) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		mods->v = v;
		if (module_load_one(&v[mods->n], path, mods, registry, conf, why,
		    sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s", path, why);
			goto out;
		}
		mods->n++;
	}
	rc = 0;
out:
	free(list);
	if (rc < 0) {
		app_modules_unload(mods);
		mods = NULL;
	}
	*out = mods;
	return rc;
}

int
app_modules_init_process(struct app_modules *mods)
{
	size_t i;

	for (i = 0; i < mods->n; i++) {
		const struct bm_module *d = &mods->v[i].def;
		if (d->init_process != NULL && d->init_process(&host) != 0) {
			app_log(BM_LOG_ERROR, NULL, "module",
			    "%s: init_process failed", d->name);
			return -1;
		}
	}
	return 0;
}

void
app_modules_exit_process(struct app_modules *mods)
{
	size_t i;

	for (i = mods != NULL ? mods->n : 0; i > 0; i--)
		if (mods->v[i - 1].def.exit_process != NULL)
			mods->v[i - 1].def.exit_process();
}

void
app_modules_unload(struct app_modules *mods)
{
	size_t i;

	if (mods == NULL)
		return;
	for (i = mods->n; i > 0; i--) {
		struct app_module *m = &mods->v[i - 1];
		if (m->def.fini != NULL)
			m->def.fini();
		dlclose(m->dl);
		free(m->path);
	}
	free(mods->v);
	free(mods);
}
