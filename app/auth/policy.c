#include "config.h"

#include <time.h>

#include "auth/auth.h"

enum bm_rc
app_auth_policy(const struct app_auth *a, struct bm_ctx *ctx, json_t **client)
{
	enum bm_rc rc;
	int64_t now;
	int created;

	*client = NULL;
	switch (a->conf->auth) {
	case APP_AUTH_ANY:
		return BM_OK;
	case APP_AUTH_MODULE:
		if (a->fn == NULL) {
			/* Checked at start: not reached. */
			app_log(BM_LOG_ERROR, ctx->request_id, "auth", "no auth "
			    "function %s", a->conf->auth_module);
			return BM_ERROR;
		}
		ctx->module = a->fn->module;
		rc = a->fn->fn(ctx, ctx->token, client, a->fn->arg);
		ctx->module = NULL;
		if (rc != BM_OK) {
			json_decref(*client);
			*client = NULL;
		}
		if (rc == BM_ETEMP || rc == BM_ERROR)
			app_log(rc == BM_ETEMP ? BM_LOG_WARN : BM_LOG_ERROR,
			    ctx->request_id, a->fn->module, "auth: %s",
			    rc == BM_ETEMP ? "temporary failure" :
			    "handler error");
		return rc;
	case APP_AUTH_INSTALLED:
	case APP_AUTH_VALIDATE:
		if (ctx->token[0] == '\0')
			return BM_EAUTH;
		switch (app_ks_install_get(a->ks, ctx->request_id, ctx->token,
		    client)) {
		case 0:
			return BM_OK;
		case 1:
			break;
		default:
			return BM_ETEMP;
		}
		if (a->conf->auth == APP_AUTH_INSTALLED) {
			app_log(BM_LOG_INFO, ctx->request_id, "auth", "token of "
			    "no installation");
			return BM_EAUTH;
		}
		now = time(NULL);
		if (app_negcache_hit(a->neg, ctx->token, now)) {
			app_log(BM_LOG_INFO, ctx->request_id, "auth", "token "
			    "refused by Botmatic less than %us ago",
			    a->conf->auth_cache_ttl);
			return BM_EAUTH;
		}
		if (!app_botmatic_validate(a->botmatic, ctx->request_id,
		    ctx->token)) {
			app_negcache_put(a->neg, ctx->token, now,
			    a->conf->auth_cache_ttl);
			return BM_EAUTH;
		}
		return app_ks_install_record(a->ks, ctx->request_id,
		    ctx->token, NULL, 0, client, &created) == 0 ? BM_OK :
		    BM_ETEMP;
	case APP_AUTH__MAX:
	default:
		app_log(BM_LOG_ERROR, ctx->request_id, "auth", "no policy");
		return BM_ERROR;
	}
}
