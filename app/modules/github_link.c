/*
 * github_link - an example of a third-party service over OAuth 2 (SPEC
 * §12): a chat group links its GitHub account, then the bot acts on
 * GitHub with the group's token.
 *
 *   action "github_link"  data {"group_id":..}: answers {"url":..}, the
 *                         one-time link (10 minutes) to send in the chat;
 *                         whoever opens it authorizes GitHub for the group.
 *   action "github_whoami" data {"group_id":..}: calls GET <api>/user
 *                         with the group's token and answers {"login":..},
 *                         or {"link_needed":true} when the group has no
 *                         service or the provider refused its refresh.
 *
 * The service is "github": BM_OAUTH_GITHUB_* configure it (README,
 * "Third-party services").  The API base is BM_MOD_GITHUB_LINK_API_BASE,
 * https://api.github.com by default.  The module calls the API with its
 * own libcurl handle, one per responder (made in init_process()).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <botmatic/module.h>

#define GL_ANSWER_MAX (1024 * 1024)

static char gl_api[512] = "https://api.github.com";
static CURL *gl_curl;

struct gl_body {
	char *p;
	size_t len;
};

static size_t
gl_write(char *data, size_t size, size_t n, void *arg)
{
	struct gl_body *b = arg;
	size_t add = size * n;
	char *np;

	if (b->len + add > GL_ANSWER_MAX ||
	    (np = realloc(b->p, b->len + add + 1)) == NULL)
		return 0;
	memcpy(np + b->len, data, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* The group of the request: data.group_id, a string or a number. */
static const char *
gl_group(json_t *data, char *buf, size_t cap)
{
	json_t *g = json_object_get(data, "group_id");

	if (json_is_string(g) && json_string_length(g) > 0)
		return json_string_value(g);
	if (json_is_integer(g)) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(g));
		return buf;
	}
	return NULL;
}

static enum bm_rc
gl_fail(json_t **reply, const char *msg)
{
	*reply = json_pack("{s:s, s:{s:b, s:s}}", "type", "data", "data",
	    "success", 0, "error", msg);
	return *reply != NULL ? BM_FAIL : BM_ERROR;
}

static int
gl_has_services(const struct bm_ctx *ctx)
{
	return ctx->host->size >= offsetof(struct bm_host, services) +
	    sizeof(ctx->host->services);
}

static enum bm_rc
gl_link(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	char buf[32];
	const char *group = gl_group(data, buf, sizeof(buf)), *url;

	(void)arg;
	if (group == NULL)
		return gl_fail(reply, "data.group_id is missing");
	if (!gl_has_services(ctx) ||
	    ctx->host->service_link(ctx, "github", group, NULL, &url) != 0)
		return gl_fail(reply, "no link could be made");
	*reply = json_pack("{s:s, s:{s:b, s:s}}", "type", "data", "data",
	    "success", 1, "url", url);
	return *reply != NULL ? BM_OK : BM_ERROR;
}

static enum bm_rc
gl_whoami(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	char buf[32], url[600], *auth = NULL;
	const char *group = gl_group(data, buf, sizeof(buf)), *token;
	struct curl_slist *h = NULL, *t;
	struct gl_body body = { NULL, 0 };
	json_t *user = NULL;
	long status = 0;
	enum bm_rc rc = BM_ERROR;
	int r;

	(void)arg;
	if (group == NULL)
		return gl_fail(reply, "data.group_id is missing");
	if (!gl_has_services(ctx))
		return gl_fail(reply, "the server has no services");
	r = ctx->host->service_token(ctx, "github", group, NULL, &token);
	if (r == BM_SERVICE_NOT_LINKED || r == BM_SERVICE_NEEDS_LINK) {
		*reply = json_pack("{s:s, s:{s:b, s:b}}", "type", "data",
		    "data", "success", 0, "link_needed", 1);
		return *reply != NULL ? BM_FAIL : BM_ERROR;
	}
	if (r != 0)
		return BM_ETEMP;
	if (gl_curl == NULL ||
	    (auth = malloc(strlen(token) + 32)) == NULL)
		goto out;
	sprintf(auth, "Authorization: Bearer %s", token);
	snprintf(url, sizeof(url), "%s/user", gl_api);
	if ((t = curl_slist_append(h, auth)) == NULL)
		goto out;
	h = t;
	if ((t = curl_slist_append(h, "Accept: application/json")) == NULL)
		goto out;
	h = t;
	curl_easy_reset(gl_curl);
	curl_easy_setopt(gl_curl, CURLOPT_URL, url);
	curl_easy_setopt(gl_curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(gl_curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(gl_curl, CURLOPT_USERAGENT, "botmatic-fcgi");
	curl_easy_setopt(gl_curl, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(gl_curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(gl_curl, CURLOPT_WRITEFUNCTION, gl_write);
	curl_easy_setopt(gl_curl, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(gl_curl) != CURLE_OK ||
	    curl_easy_getinfo(gl_curl, CURLINFO_RESPONSE_CODE, &status) !=
	    CURLE_OK || status != 200 || body.p == NULL ||
	    (user = json_loads(body.p, 0, NULL)) == NULL ||
	    !json_is_string(json_object_get(user, "login"))) {
		ctx->host->log(ctx, BM_LOG_WARN, "GET /user failed (HTTP %ld)",
		    status);
		rc = BM_ETEMP;
		goto out;
	}
	*reply = json_pack("{s:s, s:{s:b, s:O}}", "type", "data", "data",
	    "success", 1, "login", json_object_get(user, "login"));
	rc = *reply != NULL ? BM_OK : BM_ERROR;
out:
	if (auth != NULL) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	curl_slist_free_all(h);
	free(body.p);
	json_decref(user);
	return rc;
}

static int
gl_init(const struct bm_host *host, struct bm_reg *reg)
{
	const char *api = host->conf(reg, "API_BASE");

	if (api != NULL && *api != '\0') {
		if (strlen(api) >= sizeof(gl_api) ||
		    (strncmp(api, "https://", 8) != 0 &&
		    strncmp(api, "http://127.0.0.1:", 17) != 0)) {
			host->log(NULL, BM_LOG_ERROR, "github_link: "
			    "BM_MOD_GITHUB_LINK_API_BASE: an https URL (http "
			    "only to 127.0.0.1)");
			return -1;
		}
		snprintf(gl_api, sizeof(gl_api), "%s", api);
	}
	if (host->reg_action(reg, "github_link", gl_link, NULL) < 0 ||
	    host->reg_action(reg, "github_whoami", gl_whoami, NULL) < 0)
		return -1;
	return 0;
}

static int
gl_init_process(const struct bm_host *host)
{
	(void)host;
	return (gl_curl = curl_easy_init()) != NULL ? 0 : -1;
}

static void
gl_exit_process(void)
{
	curl_easy_cleanup(gl_curl);
	gl_curl = NULL;
}

BM_MODULE_DECLARE(
	.name = "github_link",
	.version = "1",
	.init = gl_init,
	.init_process = gl_init_process,
	.exit_process = gl_exit_process,
);
