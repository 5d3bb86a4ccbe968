#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch/dispatch.h"

#define CT_JSON "application/json"
/* What Express sent with res.send("text"): kept for byte-for-byte answers. */
#define CT_TEXT "text/html; charset=utf-8"

void
app_answer_error(struct app_answer *ans, int status, const char *msg)
{
	json_decref(ans->json);
	ans->status = status;
	ans->content_type = CT_JSON;
	ans->text = NULL;
	ans->json = app_answer_error_json(msg);
}

void
app_answer_clear(struct app_answer *ans)
{
	json_decref(ans->json);
	free(ans->body);
	free(ans->headers);
	memset(ans, 0, sizeof(*ans));
}

static void
answer_text(struct app_answer *ans, int status, const char *text)
{
	json_decref(ans->json);
	ans->json = NULL;
	ans->status = status;
	ans->content_type = CT_TEXT;
	ans->text = text;
}

/*
 * Maps a handler's return to the answer.  module names the handler for
 * the log line when the result is unusable.  logged says the failure was
 * logged where it happened (the keystore, a hook): it is not logged again.
 */
static void
answer_result(struct app_answer *ans, const struct bm_req *req,
    const char *module, const char *what, enum bm_rc rc, json_t *reply,
    int logged)
{
	json_t *out = NULL;
	int status;

	switch (rc) {
	case BM_OK:
	case BM_FAIL:
		status = app_answer_result_json(rc, reply, &out);
		if (status != 200) {
			app_log(BM_LOG_ERROR, req->id, module, "%s: the handler "
			    "returned no JSON object", what);
			app_answer_error(ans, 500, "the handler returned no "
			    "usable result");
			return;
		}
		ans->status = 200;
		ans->content_type = CT_JSON;
		ans->json = out;
		return;
	case BM_EAUTH:
		json_decref(reply);
		answer_text(ans, 401, "Not authorized");
		return;
	case BM_EINPUT:
		if (json_is_object(reply)) {
			json_object_set_new(reply, "success", json_false());
			ans->status = 400;
			ans->content_type = CT_JSON;
			ans->json = reply;
			return;
		}
		json_decref(reply);
		app_answer_error(ans, 400, "invalid request data");
		return;
	case BM_ETEMP:
		json_decref(reply);
		if (!logged)
			app_log(BM_LOG_WARN, req->id, module, "%s: temporary "
			    "failure", what);
		app_answer_error(ans, 503, "temporary failure, try again");
		return;
	case BM_DECLINED:
	case BM_ERROR:
	case BM_RC__MAX:
	default:
		json_decref(reply);
		if (!logged)
			app_log(BM_LOG_ERROR, req->id, module, "%s: handler "
			    "error (%d)", what, (int)rc);
		app_answer_error(ans, 500, "internal error");
		return;
	}
}

/* Runs the handlers matching kind/name until one does not decline. */
static void
dispatch_handlers(struct app_env *env, struct bm_ctx *ctx,
    const struct app_envelope *envl, int is_action, struct app_answer *ans)
{
	const struct app_handler *h;
	char what[APP_NAME_MAX + 16];
	size_t pos = 0;

	snprintf(what, sizeof(what), "%s %s", ctx->kind, ctx->name);
	while ((h = app_registry_next(env->reg, is_action, ctx->name, &pos)) !=
	    NULL) {
		json_t *reply = NULL;
		enum bm_rc rc;

		ctx->module = h->module;
		rc = h->fn(ctx, envl->data, &reply, h->arg);
		if (rc == BM_DECLINED) {
			json_decref(reply);
			continue;
		}
		answer_result(ans, ctx->req, h->module, what, rc, reply, 0);
		return;
	}
	ctx->module = NULL;
	app_log(BM_LOG_INFO, ctx->request_id, "dispatch", "no handler for %s",
	    what);
	ans->status = 200;
	ans->content_type = CT_JSON;
	ans->json = app_answer_unknown_json(ctx->kind, ctx->name);
	if (ans->json == NULL)
		app_answer_error(ans, 500, "out of memory");
}

/* Keeps the installation's id for the request's log line (never the token). */
static void
dispatch_note_install(struct bm_req *req, const json_t *client)
{
	const char *id = json_string_value(json_object_get(client,
	    "install_id"));

	if (id != NULL)
		snprintf(req->install_id, sizeof(req->install_id), "%s", id);
}

/*
 * install and uninstall: Botmatic validated the token.  Every hook runs
 * (on uninstall even after one failed, so no module keeps stale state; on
 * install the first failure stops, and a new installation is rolled back),
 * then the handlers registered for the event, if any.  Built-ins (contact
 * sync) take part through the same hooks and handlers.
 */
static void
dispatch_lifecycle(struct app_env *env, struct bm_ctx *ctx,
    const struct app_envelope *envl, int uninstall, struct app_answer *ans)
{
	const struct app_registry *reg = env->reg;
	const struct app_hook *hooks = uninstall ? reg->uninstalls :
	    reg->installs;
	size_t n = uninstall ? reg->nuninstalls : reg->ninstalls, i, pos = 0;
	enum bm_rc failed = BM_OK;
	json_t *client = NULL;
	int created = 0, rc;

	/* Record first, so hooks and handlers see auth.client. */
	if (!uninstall)
		rc = app_ks_install_record(env->ks, ctx->request_id, ctx->token,
		    json_is_null(envl->data) ? NULL : envl->data, 1, &client,
		    &created);
	else
		rc = app_ks_install_get(env->ks, ctx->request_id, ctx->token,
		    &client);
	if (rc < 0) {
		answer_result(ans, ctx->req, "keystore", ctx->name, BM_ETEMP,
		    NULL, 1);
		return;
	}
	ctx->client = client;
	dispatch_note_install(ctx->req, client);
	if (client != NULL && !uninstall) {
		/* Where the external service posts its changes (fcgi/). */
		char path[512];
		const char *ep = env->conf->endpoint;
		snprintf(path, sizeof(path), "%s%sext/%s/contacts", ep,
		    ep[strlen(ep) - 1] == '/' ? "" : "/",
		    json_string_value(json_object_get(client, "install_id")));
		json_object_set_new(client, "webhook_path", json_string(path));
	}

	for (i = 0; i < n; i++) {
		enum bm_rc hrc;

		ctx->module = hooks[i].module;
		hrc = hooks[i].fn(ctx, envl->data, hooks[i].arg);
		if (hrc != BM_OK) {
			app_log(BM_LOG_WARN, ctx->request_id, hooks[i].module,
			    "%s hook failed (%d)", ctx->name, (int)hrc);
			if (failed == BM_OK)
				failed = hrc;
			if (!uninstall)
				break;
		}
	}
	ctx->module = NULL;
	/* A failed first install leaves nothing behind; Botmatic retries. */
	if (failed != BM_OK && created)
		app_ks_install_delete(env->ks, ctx->request_id, ctx->token, NULL);
	if (uninstall && app_ks_install_delete(env->ks, ctx->request_id,
	    ctx->token, NULL) < 0 && failed == BM_OK)
		failed = BM_ETEMP;  /* logged by the keystore */
	if (failed != BM_OK) {
		json_t *reply = json_pack("{s:s, s:{s:s}}", "type", "data",
		    "data", "error", uninstall ? "uninstall failed" :
		    "install failed");
		/* The hook or the keystore logged why. */
		answer_result(ans, ctx->req, "dispatch", ctx->name,
		    failed == BM_FAIL || failed == BM_DECLINED ? BM_FAIL : failed,
		    reply, 1);
		goto out;
	}
	if (app_registry_next(reg, 0, ctx->name, &pos) != NULL) {
		dispatch_handlers(env, ctx, envl, 0, ans);
		goto out;
	}
	/* What the Node integrations answered: the request itself. */
	ans->status = 200;
	ans->content_type = CT_JSON;
	ans->json = json_pack("{s:O, s:s, s:b}", "data", envl->body, "type",
	    "data", "success", 1);
	if (ans->json == NULL)
		app_answer_error(ans, 500, "out of memory");
out:
	ctx->client = NULL;
	json_decref(client);
}

void
app_dispatch(struct app_env *env, struct bm_req *req,
    const struct app_envelope *envl, const char *authorization,
    struct app_answer *ans)
{
	char token[APP_TOKEN_MAX];
	struct app_auth auth;
	struct bm_ctx ctx;
	json_t *client = NULL;
	enum bm_rc rc;

	memset(ans, 0, sizeof(*ans));
	memset(&ctx, 0, sizeof(ctx));
	ctx.size = sizeof(ctx);
	ctx.request_id = req->id;
	ctx.body = envl->body;
	ctx.host = env->host;
	ctx.req = req;
	ctx.token = token;
	if (app_auth_token(authorization, token, sizeof(token)) < 0) {
		app_log(BM_LOG_INFO, req->id, "auth", "Authorization header "
		    "too long");
		answer_text(ans, 401, "Not authorized");
		goto out;
	}
	/*
	 * No installation can hold a token longer than the store keys: it is
	 * refused like any unknown token, not as a temporary failure of the
	 * store (which Botmatic would retry).
	 */
	if (strlen(token) > APP_KS_TOKEN_MAX) {
		app_log(BM_LOG_INFO, req->id, "auth", "token longer than %d "
		    "bytes", APP_KS_TOKEN_MAX);
		answer_text(ans, 401, "Not authorized");
		goto out;
	}

	/* install/uninstall: only Botmatic can say the token is genuine. */
	if (envl->event != NULL && (strcmp(envl->event, "install") == 0 ||
	    strcmp(envl->event, "uninstall") == 0)) {
		ctx.kind = "event";
		ctx.name = envl->event;
		ans->what = envl->event;
		if (!app_botmatic_validate(env->botmatic, req->id, token)) {
			answer_text(ans, 401, "Not authorized.");
			goto out;
		}
		dispatch_lifecycle(env, &ctx, envl,
		    strcmp(envl->event, "uninstall") == 0, ans);
		goto out;
	}

	auth.conf = env->conf;
	auth.ks = env->ks;
	auth.botmatic = env->botmatic;
	auth.neg = env->neg;
	auth.fn = env->conf->auth == APP_AUTH_MODULE ?
	    app_registry_auth(env->reg, env->conf->auth_module) : NULL;
	if ((rc = app_auth_policy(&auth, &ctx, &client)) != BM_OK) {
		/* A keystore failure was logged by the keystore. */
		if (rc == BM_ETEMP || rc == BM_ERROR)
			answer_result(ans, req, "auth", "auth", rc, NULL, 1);
		else
			answer_text(ans, 401, "Not authorized");
		goto out;
	}
	ctx.client = client;
	dispatch_note_install(req, client);
	if (envl->action != NULL) {
		ctx.kind = "action";
		ctx.name = envl->action;
		ans->what = envl->action;
		dispatch_handlers(env, &ctx, envl, 1, ans);
	} else if (envl->event != NULL) {
		ctx.kind = "event";
		ctx.name = envl->event;
		ans->what = envl->event;
		dispatch_handlers(env, &ctx, envl, 0, ans);
	} else {
		app_log(BM_LOG_INFO, req->id, "dispatch", "neither an event nor "
		    "an action");
		answer_text(ans, 403, "Bad Request");
	}
out:
	json_decref(client);
	explicit_bzero(token, sizeof(token));
}
