/*
 * testmod - the fixture module the integration tests load: an auth
 * function, actions covering every kind of handler result, an event and an
 * install hook, an integration event handler ("order_created": logs each
 * run; a payload's "fail_times" makes the first runs for its "id" ask to
 * be retried, counted in the state "tm_attempts:<id>"), and with
 * BM_MOD_TESTMOD_HOOK_OPS=1 the external service's webhook operations
 * (reg_hook_ops: a list kept in the process, each call logged).  Settings: BM_MOD_TESTMOD_TOKENS (comma-separated tokens the
 * "fixed" auth accepts), BM_MOD_TESTMOD_FAIL_PROCESS=1 (init_process fails).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <botmatic/module.h>

/* Copied in init() (master, before fork); read-only afterwards. */
static char tm_tokens[1024];
static int tm_fail_process;

static enum bm_rc
tm_auth(struct bm_ctx *ctx, const char *token, json_t **client, void *arg)
{
	size_t tlen = strlen(token);
	const char *p;

	(void)ctx;
	(void)arg;
	if (tlen == 0)
		return BM_EAUTH;
	for (p = tm_tokens; *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (len == tlen && memcmp(p, token, len) == 0) {
			*client = json_pack("{s:s}", "name", "fixture");
			return BM_OK;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return BM_EAUTH;
}

static enum bm_rc
tm_sleep(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	json_int_t ms = json_integer_value(json_object_get(data, "ms"));
	struct timespec ts;

	(void)arg;
	if (ms < 0 || ms > 60000)
		return BM_EINPUT;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	ctx->host->log(ctx, BM_LOG_INFO, "sleeping %lld ms", (long long)ms);
	while (nanosleep(&ts, &ts) != 0)
		continue;
	*reply = json_pack("{s:{s:I}, s:s}", "data", "slept", ms, "type",
	    "data");
	return BM_OK;
}

static enum bm_rc
tm_fail(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)data;
	(void)arg;
	*reply = json_pack("{s:{s:s}, s:s}", "data", "error", "it failed",
	    "type", "data");
	return BM_FAIL;
}

static enum bm_rc
tm_null_reply(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)data;
	(void)arg;
	*reply = NULL;
	return BM_OK;
}

static enum bm_rc
tm_whoami(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)data;
	(void)arg;
	*reply = json_pack("{s:{s:O?, s:I, s:s, s:s}, s:s}", "data", "client",
	    ctx->client, "token_length", (json_int_t)strlen(ctx->token),
	    "name", ctx->name, "request_id", ctx->request_id, "type", "data");
	return BM_OK;
}

static enum bm_rc
tm_decline(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)data;
	(void)reply;
	(void)arg;
	return BM_DECLINED;
}

static enum bm_rc
tm_second(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)data;
	(void)arg;
	*reply = json_pack("{s:{s:b}, s:s}", "data", "second", 1, "type",
	    "data");
	return BM_OK;
}

static enum bm_rc
tm_user_reply(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)arg;
	*reply = json_pack("{s:{s:O}, s:s}", "data", "got", data, "type",
	    "data");
	return BM_OK;
}

/* Keystore through the module API: {"bid":..,"eid":..} */
static enum bm_rc
tm_save(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	const char *bid = json_string_value(json_object_get(data, "bid"));
	const char *eid = json_string_value(json_object_get(data, "eid"));

	(void)arg;
	if (bid == NULL || eid == NULL)
		return BM_EINPUT;
	if (ctx->host->ids_save(ctx, bid, eid) != 0)
		return BM_ETEMP;
	*reply = json_pack("{s:{s:s, s:s}, s:s}", "data", "bid", bid, "eid",
	    eid, "type", "data");
	return BM_OK;
}

static enum bm_rc
tm_get(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	const char *bid = json_string_value(json_object_get(data, "bid"));
	const char *eid = NULL;
	int rc;

	(void)arg;
	if (bid == NULL)
		return BM_EINPUT;
	if ((rc = ctx->host->ext_id_get(ctx, bid, &eid)) < 0)
		return BM_ETEMP;
	*reply = json_pack("{s:{s:s?}, s:s}", "data", "eid", eid, "type",
	    "data");
	return rc == 0 ? BM_OK : BM_FAIL;
}

/* {"name":..,"value":..}: sets, then reads back. */
static enum bm_rc
tm_state(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	const char *name = json_string_value(json_object_get(data, "name"));
	json_t *value = json_object_get(data, "value"), *back = NULL;

	(void)arg;
	if (name == NULL)
		return BM_EINPUT;
	if (value != NULL && ctx->host->state_set(ctx, name, value) != 0)
		return BM_ETEMP;
	if (ctx->host->state_get(ctx, name, &back) < 0)
		return BM_ETEMP;
	*reply = json_pack("{s:{s:o?}, s:s}", "data", "value", back, "type",
	    "data");
	return BM_OK;
}

/* A transform the mappings file can name: upper-cases a string, adds "!". */
static int
tm_shout(const json_t *in, const json_t *params, json_t **out, char *err,
    size_t errlen)
{
	const char *s = json_string_value(in);
	char buf[256];
	size_t i, len;

	(void)params;
	if (s == NULL || (len = strlen(s)) + 2 > sizeof(buf)) {
		snprintf(err, errlen, "shout wants a short string");
		return -1;
	}
	for (i = 0; i < len; i++)
		buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
	buf[len] = '!';
	buf[len + 1] = '\0';
	*out = json_string(buf);
	return *out != NULL ? 0 : -1;
}

/* Maps data (an external record) to a Botmatic contact. */
static enum bm_rc
tm_map(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	json_t *out = NULL;

	(void)arg;
	if (ctx->host->map(ctx, data, BM_MAP_TO_BOTMATIC, &out) < 0) {
		*reply = json_pack("{s:{s:s}, s:s}", "data", "error",
		    "mapping failed", "type", "data");
		return BM_FAIL;
	}
	*reply = json_pack("{s:o, s:s}", "data", out, "type", "data");
	return BM_OK;
}

/*
 * The external -> Botmatic operations of bm_host:
 * {"op":"create"|"update"|"update_many"|"delete"|"import"|"campaign"|
 *  "properties", ...}; answers the operation's result as data.
 */
static enum bm_rc
tm_sync(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	const char *op = json_string_value(json_object_get(data, "op"));
	json_t *arg1 = json_object_get(data, "arg"), *res = NULL;
	const struct bm_host *h = ctx->host;

	(void)arg;
	if (op == NULL)
		return BM_EINPUT;
	if (strcmp(op, "create") == 0)
		res = h->contact_create(ctx, arg1);
	else if (strcmp(op, "update") == 0)
		res = h->contact_update(ctx, arg1);
	else if (strcmp(op, "update_many") == 0)
		res = h->contacts_update(ctx, arg1);
	else if (strcmp(op, "delete") == 0)
		res = h->contact_delete(ctx, json_string_value(arg1));
	else if (strcmp(op, "import") == 0)
		res = h->contacts_import(ctx);
	else if (strcmp(op, "campaign") == 0)
		res = h->campaign_event(ctx, json_string_value(json_object_get(
		    data, "event")), arg1);
	else if (strcmp(op, "properties") == 0)
		res = h->properties_create(ctx, arg1);
	else
		return BM_EINPUT;
	if (res == NULL)
		return BM_ERROR;
	*reply = json_pack("{s:o, s:s}", "data", res, "type", "data");
	return BM_OK;
}

/*
 * An external consumer kept in the responder's memory (one responder in
 * the tests that use it): contacts get ids "m1", "m2"...  Every call is
 * counted under the name of the operation, readable with action
 * "consumer_calls".
 */
static json_t *tm_contacts;   /* id -> contact; per process, after fork */
static json_t *tm_calls;      /* operation -> count */
static int tm_next = 1;

static json_t *
tm_counted(const char *op)
{
	if (tm_contacts == NULL) {
		tm_contacts = json_object();
		tm_calls = json_object();
	}
	json_object_set_new(tm_calls, op, json_integer(
	    json_integer_value(json_object_get(tm_calls, op)) + 1));
	return tm_contacts;
}

static json_t *
tm_c_create(struct bm_ctx *ctx, const json_t *contact, void *arg)
{
	json_t *all = tm_counted("create");
	char id[32];

	(void)ctx;
	(void)arg;
	snprintf(id, sizeof(id), "m%d", tm_next++);
	json_object_set_new(all, id, json_deep_copy(contact));
	return json_pack("{s:b, s:s}", "success", 1, "id", id);
}

static json_t *
tm_c_get(struct bm_ctx *ctx, const char *id, void *arg)
{
	json_t *c = json_object_get(tm_counted("get"), id);

	(void)ctx;
	(void)arg;
	if (c == NULL)
		return json_pack("{s:b, s:s}", "success", 0, "error",
		    "resource not found");
	return json_pack("{s:b, s:O}", "success", 1, "contact", c);
}

static json_t *
tm_c_by_email(struct bm_ctx *ctx, const char *email, void *arg)
{
	const char *id;
	json_t *c;

	(void)ctx;
	(void)arg;
	json_object_foreach(tm_counted("get_by_email"), id, c) {
		const char *e = json_string_value(json_object_get(c, "email"));
		if (e != NULL && strcmp(e, email) == 0) {
			json_t *r = json_deep_copy(c);
			json_object_set_new(r, "id_candidate", json_string(id));
			return json_pack("{s:b, s:o}", "success", 1, "contact", r);
		}
	}
	return json_pack("{s:b, s:s}", "success", 0, "error",
	    "resource not found");
}

static json_t *
tm_c_list(struct bm_ctx *ctx, unsigned page, unsigned limit, void *arg)
{
	(void)ctx;
	(void)page;
	(void)limit;
	(void)arg;
	tm_counted("list_page");
	return json_pack("{s:b, s:[]}", "success", 1, "contacts");
}

static json_t *
tm_c_update(struct bm_ctx *ctx, const char *id, const json_t *contact,
    void *arg)
{
	json_t *all = tm_counted("update");

	(void)ctx;
	(void)arg;
	if (json_object_get(all, id) == NULL)
		return json_pack("{s:b, s:s}", "success", 0, "error",
		    "resource not found");
	json_object_set_new(all, id, json_deep_copy(contact));
	return json_pack("{s:b}", "success", 1);
}

static json_t *
tm_c_del(struct bm_ctx *ctx, const char *id, void *arg)
{
	json_t *all = tm_counted("del");

	(void)ctx;
	(void)arg;
	if (json_object_del(all, id) < 0)
		return json_pack("{s:b, s:s}", "success", 0, "error",
		    "resource not found");
	return json_pack("{s:b}", "success", 1);
}

static enum bm_rc
tm_consumer_calls(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)ctx;
	(void)data;
	(void)arg;
	tm_counted("consumer_calls");
	*reply = json_pack("{s:{s:O, s:O}, s:s}", "data", "calls", tm_calls,
	    "contacts", tm_contacts, "type", "data");
	return BM_OK;
}

static const struct bm_consumer tm_consumer = {
	.size = sizeof(struct bm_consumer),
	.create = tm_c_create,
	.get = tm_c_get,
	.get_by_email = tm_c_by_email,
	.list_page = tm_c_list,
	.update = tm_c_update,
	.del = tm_c_del,
};

static void
tm_exit_process(void)
{
	json_decref(tm_contacts);
	json_decref(tm_calls);
	tm_contacts = tm_calls = NULL;
}

static enum bm_rc
tm_install(struct bm_ctx *ctx, json_t *data, void *arg)
{
	(void)data;
	(void)arg;
	ctx->host->log(ctx, BM_LOG_INFO, "install hook ran");
	return BM_OK;
}

/* The settings page's module check: a "site" holding "forbidden" is refused. */
static enum bm_rc
tm_settings_validate(struct bm_ctx *ctx, const json_t *settings,
    json_t *error_fields, void *arg)
{
	const char *site = json_string_value(json_object_get(settings, "site"));

	(void)arg;
	if (ctx->client == NULL)
		return BM_ERROR;
	if (site != NULL && strstr(site, "forbidden") != NULL) {
		json_array_append_new(error_fields, json_string("site"));
		return BM_FAIL;
	}
	return BM_OK;
}

/* Every pair of the installation, forgotten (js-redis-key-store's deleteAllIds). */
static enum bm_rc
tm_delete_all(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	(void)data;
	(void)arg;
	if (ctx->host->ids_delete_all(ctx) != 0)
		return BM_ETEMP;
	*reply = json_pack("{s:{}, s:s}", "data", "type", "data");
	return BM_OK;
}

static enum bm_rc
tm_ext_event(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	json_int_t fail = json_integer_value(json_object_get(data,
	    "fail_times"));
	json_t *id = json_object_get(data, "id"), *prev = NULL, *n;
	char name[128];
	json_int_t attempts;

	(void)reply;
	(void)arg;
	snprintf(name, sizeof(name), "tm_attempts:%" JSON_INTEGER_FORMAT,
	    json_integer_value(id));
	if (ctx->host->state_get(ctx, name, &prev) < 0)
		return BM_ETEMP;
	attempts = json_integer_value(prev) + 1;
	json_decref(prev);
	if ((n = json_integer(attempts)) == NULL)
		return BM_ERROR;
	if (ctx->host->state_set(ctx, name, n) < 0) {
		json_decref(n);
		return BM_ETEMP;
	}
	json_decref(n);
	ctx->host->log(ctx, BM_LOG_INFO, "ext_event %s id %" JSON_INTEGER_FORMAT
	    " attempt %" JSON_INTEGER_FORMAT " client %s", ctx->name,
	    json_integer_value(id), attempts, json_string_value(
	    json_object_get(ctx->client, "install_id")) != NULL ? "yes" : "no");
	return attempts <= fail ? BM_ETEMP : BM_OK;
}

/* reg_hook_ops: webhooks kept in this process (one delivery process). */
#define TM_HOOKS_MAX 16
static struct {
	char id[16], topic[64], address[512];
} tm_hooks[TM_HOOKS_MAX];
static int tm_nhooks, tm_hook_seq, tm_hook_ops;

static json_t *
tm_hooks_list(struct bm_ctx *ctx, void *arg)
{
	json_t *a = json_array();
	int i;

	(void)arg;
	ctx->host->log(ctx, BM_LOG_INFO, "hook_ops list (%s)",
	    ctx->token != NULL && ctx->token[0] == '@' ? ctx->token :
	    "installed");
	for (i = 0; a != NULL && i < tm_nhooks; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "id",
		    tm_hooks[i].id, "topic", tm_hooks[i].topic, "address",
		    tm_hooks[i].address));
	return json_pack("{s:b, s:o}", "success", 1, "hooks", a);
}

static json_t *
tm_hooks_create(struct bm_ctx *ctx, const char *topic, const char *address,
    void *arg)
{
	(void)arg;
	if (tm_nhooks == TM_HOOKS_MAX || strlen(topic) >= 64 ||
	    strlen(address) >= 512)
		return json_pack("{s:b, s:s}", "success", 0, "error", "full");
	snprintf(tm_hooks[tm_nhooks].id, 16, "tm-%d", ++tm_hook_seq);
	strcpy(tm_hooks[tm_nhooks].topic, topic);
	strcpy(tm_hooks[tm_nhooks].address, address);
	ctx->host->log(ctx, BM_LOG_INFO, "hook_ops create %s %s -> %s", topic,
	    address, tm_hooks[tm_nhooks].id);
	return json_pack("{s:b, s:s}", "success", 1, "id",
	    tm_hooks[tm_nhooks++].id);
}

static json_t *
tm_hooks_del(struct bm_ctx *ctx, const char *id, void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < tm_nhooks; i++)
		if (strcmp(tm_hooks[i].id, id) == 0) {
			tm_hooks[i] = tm_hooks[--tm_nhooks];
			ctx->host->log(ctx, BM_LOG_INFO, "hook_ops delete %s (%s)",
			    id, ctx->token != NULL && ctx->token[0] == '@' ?
			    ctx->token : "installed");
			return json_pack("{s:b}", "success", 1);
		}
	return json_pack("{s:b, s:s, s:i}", "success", 0, "error",
	    "resource not found", "status", 404);
}

static const struct bm_hook_ops tm_hook_ops_table = {
	.size = sizeof(struct bm_hook_ops),
	.list = tm_hooks_list,
	.create = tm_hooks_create,
	.del = tm_hooks_del,
};

static int
tm_init(const struct bm_host *host, struct bm_reg *reg)
{
	const char *tokens = host->conf(reg, "TOKENS");
	const char *fail = host->conf(reg, "FAIL_PROCESS");
	const char *hook_ops = host->conf(reg, "HOOK_OPS");

	if (tokens != NULL && strlen(tokens) < sizeof(tm_tokens))
		strcpy(tm_tokens, tokens);
	tm_fail_process = fail != NULL && strcmp(fail, "1") == 0;
	tm_hook_ops = hook_ops != NULL && strcmp(hook_ops, "1") == 0;
	if (host->reg_auth(reg, "fixed", tm_auth, NULL) < 0 ||
	    host->reg_action(reg, "sleep", tm_sleep, NULL) < 0 ||
	    host->reg_action(reg, "fail", tm_fail, NULL) < 0 ||
	    host->reg_action(reg, "null_reply", tm_null_reply, NULL) < 0 ||
	    host->reg_action(reg, "whoami", tm_whoami, NULL) < 0 ||
	    host->reg_action(reg, "decline", tm_decline, NULL) < 0 ||
	    host->reg_action(reg, "decl.*", tm_second, NULL) < 0 ||
	    host->reg_action(reg, "save", tm_save, NULL) < 0 ||
	    host->reg_action(reg, "get", tm_get, NULL) < 0 ||
	    host->reg_action(reg, "state", tm_state, NULL) < 0 ||
	    host->reg_action(reg, "map", tm_map, NULL) < 0 ||
	    host->reg_action(reg, "sync", tm_sync, NULL) < 0 ||
	    host->reg_action(reg, "consumer_calls", tm_consumer_calls,
	    NULL) < 0 ||
	    host->reg_consumer(reg, "memory", &tm_consumer) < 0 ||
	    host->reg_transform(reg, "shout", tm_shout) < 0 ||
	    host->reg_event(reg, "user_reply", tm_user_reply, NULL) < 0 ||
	    host->reg_install(reg, tm_install, NULL) < 0)
		return -1;
	/* Members added later: a module checks the server has them. */
	if (host->size < offsetof(struct bm_host, ids_delete_all) +
	    sizeof(host->ids_delete_all))
		return 0;
	if (host->reg_settings_validate(reg, tm_settings_validate, NULL) < 0 ||
	    host->reg_action(reg, "delete_all", tm_delete_all, NULL) < 0)
		return -1;
	if (host->size < offsetof(struct bm_host, reg_ext_event) +
	    sizeof(host->reg_ext_event))
		return 0;
	if (host->reg_ext_event(reg, "order_created", tm_ext_event, NULL) < 0)
		return -1;
	if (tm_hook_ops && host->reg_hook_ops(reg, &tm_hook_ops_table) < 0)
		return -1;
	return 0;
}

static int
tm_init_process(const struct bm_host *host)
{
	if (tm_fail_process) {
		host->log(NULL, BM_LOG_ERROR, "testmod: failing init_process "
		    "as asked");
		return -1;
	}
	return 0;
}

BM_MODULE_DECLARE(
	.name = "testmod",
	.version = "test",
	.init = tm_init,
	.init_process = tm_init_process,
	.exit_process = tm_exit_process,
);
