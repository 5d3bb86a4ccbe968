/*
 * set_property - action "<property>_<value>" sets a property of the
 * contact the bot talks to, e.g. action "plan_premium" sets "plan" to
 * "premium".  The properties it answers for are listed in
 * BM_MOD_SET_PROPERTY_PROPERTIES (comma-separated), so it never catches
 * actions meant for other modules.
 *
 * The contact is data.contact_id (or data.id), as Botmatic sends it with
 * an action; the property is set through the Botmatic API
 * (PATCH /api/contacts/{id}) with the installation's token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <botmatic/module.h>

#define SP_MAX_PROPS 32
#define SP_NAME_MAX 64

struct sp_prop {
	char name[SP_NAME_MAX + 1];
};

/* Written in init() (master, before fork), only read afterwards. */
static struct sp_prop sp_props[SP_MAX_PROPS];
static size_t sp_nprops;

static enum bm_rc
sp_action(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	const struct sp_prop *prop = arg;
	const char *value = ctx->name + strlen(prop->name) + 1;
	json_t *id = json_object_get(data, "contact_id"), *props, *res;
	char idbuf[32];
	const char *cid;

	if (id == NULL)
		id = json_object_get(data, "id");
	if (json_is_integer(id)) {
		snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(id));
		cid = idbuf;
	} else if (json_is_string(id) && json_string_length(id) > 0)
		cid = json_string_value(id);
	else {
		*reply = json_pack("{s:s, s:{s:b, s:s}}", "type", "data", "data",
		    "success", 0, "error", "data.contact_id is missing");
		return *reply != NULL ? BM_FAIL : BM_ERROR;
	}
	if ((props = json_pack("{s:s}", prop->name, value)) == NULL)
		return BM_ERROR;
	res = ctx->host->botmatic_contact_update(ctx, cid, props);
	json_decref(props);
	if (res == NULL)
		return BM_ERROR;
	if (!json_is_true(json_object_get(res, "success"))) {
		ctx->host->log(ctx, BM_LOG_WARN, "setting %s failed", prop->name);
		*reply = json_pack("{s:s, s:o}", "type", "data", "data", res);
		return *reply != NULL ? BM_FAIL : BM_ERROR;
	}
	json_decref(res);
	*reply = json_pack("{s:s, s:{s:b, s:s, s:s}}", "type", "data", "data",
	    "success", 1, "property", prop->name, "value", value);
	return *reply != NULL ? BM_OK : BM_ERROR;
}

static int
sp_init(const struct bm_host *host, struct bm_reg *reg)
{
	const char *list = host->conf(reg, "PROPERTIES");
	char pattern[SP_NAME_MAX + 8];
	const char *p;

	sp_nprops = 0;
	if (list == NULL || *list == '\0') {
		host->log(NULL, BM_LOG_WARN, "set_property: "
		    "BM_MOD_SET_PROPERTY_PROPERTIES is empty: no action");
		return 0;
	}
	for (p = list; *p != '\0';) {
		size_t len = strcspn(p, ",");
		struct sp_prop *prop;

		if (len == 0 || len > SP_NAME_MAX ||
		    strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789") < len ||
		    sp_nprops == SP_MAX_PROPS) {
			host->log(NULL, BM_LOG_ERROR, "set_property: bad "
			    "property list (want up to %d names of [a-z0-9])",
			    SP_MAX_PROPS);
			return -1;
		}
		prop = &sp_props[sp_nprops++];
		memcpy(prop->name, p, len);
		prop->name[len] = '\0';
		snprintf(pattern, sizeof(pattern), "%s_.+", prop->name);
		if (host->reg_action(reg, pattern, sp_action, prop) < 0)
			return -1;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

BM_MODULE_DECLARE(
	.name = "set_property",
	.version = "1.0",
	.init = sp_init,
);
