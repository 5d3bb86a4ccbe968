/*
 * services/oauth.c - the OAuth 2 code flow with PKCE (RFC 6749, RFC 7636)
 * for third-party services, and their tokens for modules.
 *
 * What seed 002 got wrong and this does not: the state is random and
 * single use, kept server-side bound to the installation, service and
 * scope (only its keyed hash is stored), so nobody attaches an account
 * to another's group; the service is written in one transaction keyed by
 * installation + service + scope (no duplicate rows); tokens are sealed
 * at rest; a refresh is done by one responder at a time under a lease in
 * the record, never with a transaction open across the HTTP call.
 */
#include "config.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keystore/keystore.h"
#include "outbound/outbound.h"
#include "services/services.h"
#include "store/store.h"

/* One client per responder, made at its first OAuth call (after fork). */
static struct app_http *oauth_http;

static const struct app_oauth_svc *
oauth_svc(const struct app_conf *conf, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < conf->n_oauth; i++)
		if (strlen(conf->oauth[i].name) == len &&
		    strncmp(conf->oauth[i].name, name, len) == 0)
			return &conf->oauth[i];
	return NULL;
}

/* The watchdog's mark around a store call (as keystore/ does). */
static void
oauth_mark(struct app_env *env, int on)
{
	if (env->ks->progress != NULL)
		atomic_store(env->ks->progress, on ? app_now_ms() : 0);
}

static int
oauth_store_failed(struct app_env *env, const char *reqid, int rc)
{
	app_log(BM_LOG_ERROR, reqid, "oauth", "store: %s",
	    store_strerror(env->ks->st));
	if (rc == STORE_RUNRECOVERY)
		env->ks->broken = 1;
	return -1;
}

/* --- small text helpers -------------------------------------------------- */

struct oauth_buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
oauth_add(struct oauth_buf *b, const char *s, size_t n)
{
	char *np;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
oauth_adds(struct oauth_buf *b, const char *s)
{
	oauth_add(b, s, strlen(s));
}

/* Appends s escaped for HTML text (as settings/ does): & < > " '. */
static void
oauth_add_html(struct oauth_buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '&': oauth_adds(b, "&amp;"); break;
		case '<': oauth_adds(b, "&lt;"); break;
		case '>': oauth_adds(b, "&gt;"); break;
		case '"': oauth_adds(b, "&quot;"); break;
		case '\'': oauth_adds(b, "&#39;"); break;
		default:
			if ((unsigned char)*s >= 0x20 && *s != 0x7f)
				oauth_add(b, s, 1);
		}
}

/* Appends s percent-encoded (a URL query value or a form field). */
static void
oauth_add_esc(struct oauth_buf *b, const char *s)
{
	char *e = app_http_escape(s);

	if (e == NULL)
		b->failed = 1;
	else
		oauth_adds(b, e);
	free(e);
}

static int
oauth_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The value of name in a query or form body q (percent- and +-decoded),
 * new, or NULL when absent, malformed, holding a NUL or over max bytes.
 */
static char *
oauth_form_get(const char *q, const char *name, size_t max)
{
	size_t nl = strlen(name), n, i, o;
	char *r;

	while (q != NULL && *q != '\0') {
		n = strcspn(q, "&");
		if (n > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
			if (n - nl - 1 > 3 * max ||
			    (r = malloc(n - nl)) == NULL)
				return NULL;
			for (i = nl + 1, o = 0; i < n; i++) {
				int hi, lo;
				if (q[i] == '+')
					r[o++] = ' ';
				else if (q[i] != '%')
					r[o++] = q[i];
				else if (i + 2 < n &&
				    (hi = oauth_hexval(q[i + 1])) >= 0 &&
				    (lo = oauth_hexval(q[i + 2])) >= 0 &&
				    (hi | lo) != 0) {
					r[o++] = (char)(hi << 4 | lo);
					i += 2;
				} else {
					free(r);
					return NULL;
				}
			}
			r[o] = '\0';
			if (o > max) {
				free(r);
				return NULL;
			}
			return r;
		}
		q += n;
		q += *q == '&';
	}
	return NULL;
}

/* BM_PUBLIC_URL + <endpoint>oauth/<svc>/<what>. */
static void
oauth_add_url(struct oauth_buf *b, const struct app_conf *conf,
    const char *svc, const char *what)
{
	size_t el = strlen(conf->endpoint);

	oauth_adds(b, conf->public_url);
	oauth_adds(b, conf->endpoint);
	if (el == 0 || conf->endpoint[el - 1] != '/')
		oauth_adds(b, "/");
	oauth_adds(b, "oauth/");
	oauth_adds(b, svc);
	oauth_adds(b, "/");
	oauth_adds(b, what);
}

/* --- the page ------------------------------------------------------------ */

/* The headers of every page and redirect: nothing runs, nothing is
 * cached, the URL (it carries the code) goes nowhere. */
static const char oauth_headers[] =
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-store\r\n";

/* A short HTML page: title, then text (both escaped here). */
static void
oauth_page(struct app_answer *ans, int status, const char *title,
    const char *text, const char *detail)
{
	struct oauth_buf b = { 0 };

	oauth_adds(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	    "charset=\"utf-8\"><title>");
	oauth_add_html(&b, title);
	oauth_adds(&b, "</title></head>\n<body><h1>");
	oauth_add_html(&b, title);
	oauth_adds(&b, "</h1>\n<p>");
	oauth_add_html(&b, text);
	oauth_adds(&b, "</p>\n");
	if (detail != NULL) {
		oauth_adds(&b, "<p><code>");
		oauth_add_html(&b, detail);
		oauth_adds(&b, "</code></p>\n");
	}
	oauth_adds(&b, "</body></html>\n");
	if (b.failed || (ans->headers = strdup(oauth_headers)) == NULL) {
		free(b.p);
		app_answer_error(ans, 500, "out of memory");
		return;
	}
	ans->status = status;
	ans->content_type = "text/html; charset=utf-8";
	ans->body = b.p;
	ans->body_len = b.len;
}

/* --- the start: 302 to the provider ----------------------------------- */

/* base64url(SHA-256(verifier)), unpadded: the S256 challenge. */
static int
oauth_challenge(const char *verifier, char out[44])
{
	unsigned char md[32];
	unsigned char b64[48];
	unsigned int mdlen = 0;
	int n, i;

	if (EVP_Digest(verifier, strlen(verifier), md, &mdlen, EVP_sha256(),
	    NULL) != 1 || mdlen != 32)
		return -1;
	n = EVP_EncodeBlock(b64, md, 32);
	for (i = 0; i < n && b64[i] != '='; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' :
		    (char)b64[i];
	out[i] = '\0';
	return 0;
}

static void
oauth_start(struct app_env *env, struct bm_req *req,
    const struct app_oauth_svc *o, const char *query, struct app_answer *ans)
{
	char state[STORE_OAUTH_ID_LEN + 1], ver[STORE_OAUTH_VERIFIER_LEN + 1];
	char chal[44], *link;
	struct oauth_buf b = { 0 };
	int rc;

	if ((link = oauth_form_get(query, "l", STORE_OAUTH_ID_LEN)) == NULL) {
		oauth_page(ans, 400, "Link not valid", "This link is "
		    "incomplete.", NULL);
		return;
	}
	oauth_mark(env, 1);
	rc = store_oauth_link_take(env->ks->st, link, o->name,
	    (int64_t)time(NULL), APP_OAUTH_STATE_TTL, state, ver);
	oauth_mark(env, 0);
	free(link);
	if (rc == STORE_NOTFOUND) {
		app_log(BM_LOG_INFO, req->id, "oauth", "%s: unknown, used or "
		    "expired link", o->name);
		oauth_page(ans, 400, "Link not valid", "This link is unknown, "
		    "was used already, or expired: ask for a new one.", NULL);
		return;
	}
	if (rc != STORE_OK) {
		oauth_store_failed(env, req->id, rc);
		oauth_page(ans, 500, "Error", "The link could not be read.",
		    NULL);
		return;
	}
	if (oauth_challenge(ver, chal) < 0) {
		OPENSSL_cleanse(ver, sizeof(ver));
		oauth_page(ans, 500, "Error", "Internal error.", NULL);
		return;
	}
	OPENSSL_cleanse(ver, sizeof(ver));
	oauth_adds(&b, "Location: ");
	oauth_adds(&b, o->authorize_url);
	oauth_adds(&b, strchr(o->authorize_url, '?') != NULL ? "&" : "?");
	oauth_adds(&b, "response_type=code&client_id=");
	oauth_add_esc(&b, o->client_id);
	oauth_adds(&b, "&redirect_uri=");
	{
		struct oauth_buf r = { 0 };
		oauth_add_url(&r, env->conf, o->name, "callback");
		if (r.failed)
			b.failed = 1;
		else
			oauth_add_esc(&b, r.p);
		free(r.p);
	}
	if (o->scopes[0] != '\0') {
		oauth_adds(&b, "&scope=");
		oauth_add_esc(&b, o->scopes);
	}
	oauth_adds(&b, "&state=");
	oauth_adds(&b, state);
	oauth_adds(&b, "&code_challenge=");
	oauth_adds(&b, chal);
	oauth_adds(&b, "&code_challenge_method=S256\r\n");
	oauth_adds(&b, oauth_headers);
	if (b.failed) {
		free(b.p);
		oauth_page(ans, 500, "Error", "Out of memory.", NULL);
		return;
	}
	ans->status = 302;
	ans->content_type = "text/plain; charset=utf-8";
	ans->text = "";
	ans->headers = b.p;
	app_log(BM_LOG_INFO, req->id, "oauth", "%s: link opened, sent to the "
	    "provider", o->name);
}

/* --- the token endpoint ------------------------------------------------ */

/* What a token endpoint answered. */
struct oauth_grant {
	char *access, *refresh, *scope, *error, *error_desc;
	int64_t expires_in; /* 0: unsaid */
};

static void
oauth_grant_clear(struct oauth_grant *g)
{
	if (g->access != NULL)
		OPENSSL_cleanse(g->access, strlen(g->access));
	if (g->refresh != NULL)
		OPENSSL_cleanse(g->refresh, strlen(g->refresh));
	free(g->access);
	free(g->refresh);
	free(g->scope);
	free(g->error);
	free(g->error_desc);
	memset(g, 0, sizeof(*g));
}

/* A member of a JSON answer as a new string (numbers too), or NULL. */
static char *
oauth_json_str(json_t *o, const char *name, size_t max)
{
	json_t *v = json_object_get(o, name);
	char num[32];

	if (json_is_string(v) && json_string_length(v) <= max &&
	    strlen(json_string_value(v)) == json_string_length(v))
		return strdup(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld",
		    (long long)json_integer_value(v));
		return strdup(num);
	}
	return NULL;
}

/* A token (or scope) we can store and send back in a header: printable. */
static int
oauth_printable(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return s != NULL;
}

/*
 * Parses a token endpoint's answer (JSON, or form-encoded as GitHub's
 * without an Accept header).  Returns 0 with g filled, or -1 (err).
 */
static int
oauth_parse(const char *body, size_t len, struct oauth_grant *g, char *err,
    size_t errlen)
{
	char *ein = NULL;
	json_t *j;
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\n' ||
	    body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i < len && body[i] == '{') {
		if ((j = app_http_parse(body, len, err, errlen)) == NULL)
			return -1;
		g->access = oauth_json_str(j, "access_token", 8192);
		g->refresh = oauth_json_str(j, "refresh_token", 8192);
		g->scope = oauth_json_str(j, "scope", 1024);
		g->error = oauth_json_str(j, "error", 200);
		g->error_desc = oauth_json_str(j, "error_description", 500);
		ein = oauth_json_str(j, "expires_in", 20);
		json_decref(j);
	} else {
		if (strlen(body) != len || memchr(body, '=', len) == NULL) {
			snprintf(err, errlen, "neither JSON nor form-encoded");
			return -1;
		}
		g->access = oauth_form_get(body, "access_token", 8192);
		g->refresh = oauth_form_get(body, "refresh_token", 8192);
		g->scope = oauth_form_get(body, "scope", 1024);
		g->error = oauth_form_get(body, "error", 200);
		g->error_desc = oauth_form_get(body, "error_description", 500);
		ein = oauth_form_get(body, "expires_in", 20);
	}
	if (ein != NULL) {
		char *end;
		long long v = strtoll(ein, &end, 10);
		if (*end == '\0' && v > 0 && v < 10LL * 365 * 86400)
			g->expires_in = v;
		free(ein);
	}
	if (g->error == NULL && (g->access == NULL ||
	    !oauth_printable(g->access) ||
	    (g->refresh != NULL && !oauth_printable(g->refresh)))) {
		snprintf(err, errlen, "no usable access_token in the answer");
		return -1;
	}
	return 0;
}

/*
 * POSTs form (secret: never logged) to o's token URL.  Returns 0 with g
 * filled (g->error set when the provider refused), or -1 with a reason
 * fit for the log and the page in err.
 */
static int
oauth_token_call(const struct app_env *env, const struct app_oauth_svc *o,
    const char *form, struct oauth_grant *g, char *err, size_t errlen)
{
	struct curl_slist *h = NULL, *t;
	char *answer = NULL, perr[256];
	size_t len = 0;
	long status = 0;
	int rc = -1;

	memset(g, 0, sizeof(*g));
	if (oauth_http == NULL &&
	    (oauth_http = app_http_new(env->conf)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((t = curl_slist_append(h, "Accept: application/json")) == NULL)
		goto nomem;
	h = t;
	if ((t = curl_slist_append(h, "Content-Type: "
	    "application/x-www-form-urlencoded")) == NULL)
		goto nomem;
	h = t;
	if (app_http_request(oauth_http, "POST", o->token_url, h, form,
	    &status, &answer, &len, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "the provider could not be reached: %s",
		    perr);
		goto out;
	}
	if (oauth_parse(answer, len, g, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "the provider answered HTTP %ld, %s",
		    status, perr);
		oauth_grant_clear(g);
		goto out;
	}
	if (g->error == NULL && (status < 200 || status > 299)) {
		snprintf(err, errlen, "the provider answered HTTP %ld", status);
		oauth_grant_clear(g);
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	curl_slist_free_all(h);
	if (answer != NULL) {
		OPENSSL_cleanse(answer, len);
		free(answer);
	}
	return rc;
}

/* The client's credentials in a form body (RFC 6749 §2.3.1). */
static void
oauth_add_client(struct oauth_buf *b, const struct app_oauth_svc *o)
{
	oauth_adds(b, "&client_id=");
	oauth_add_esc(b, o->client_id);
	oauth_adds(b, "&client_secret=");
	oauth_add_esc(b, o->client_secret);
}

static void
oauth_buf_wipe(struct oauth_buf *b)
{
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->len);
	free(b->p);
}

/* --- the callback ------------------------------------------------------ */

static void
oauth_callback(struct app_env *env, struct bm_req *req,
    const struct app_oauth_svc *o, const char *query, struct app_answer *ans)
{
	char ver[STORE_OAUTH_VERIFIER_LEN + 1], err[512];
	char *state, *code = NULL, *perr = NULL, *pdesc = NULL;
	struct store_service *sv = NULL;
	struct oauth_grant g = { 0 };
	struct oauth_buf f = { 0 }, r = { 0 };
	int rc;

	ver[0] = '\0';
	state = oauth_form_get(query, "state", STORE_OAUTH_ID_LEN);
	if (state == NULL) {
		oauth_page(ans, 400, "Not connected", "The answer of the "
		    "service has no valid state.", NULL);
		goto out;
	}
	oauth_mark(env, 1);
	rc = store_oauth_state_take(env->ks->st, state, o->name,
	    (int64_t)time(NULL), &sv, ver);
	oauth_mark(env, 0);
	if (rc == STORE_NOTFOUND) {
		app_log(BM_LOG_WARN, req->id, "oauth", "%s: callback with an "
		    "unknown, used or expired state", o->name);
		oauth_page(ans, 400, "Not connected", "This answer is unknown, "
		    "was used already, or expired: ask for a new link.", NULL);
		goto out;
	}
	if (rc != STORE_OK) {
		oauth_store_failed(env, req->id, rc);
		oauth_page(ans, 500, "Error", "The link could not be read.",
		    NULL);
		goto out;
	}
	snprintf(req->install_id, sizeof(req->install_id), "%s",
	    sv->install_id);
	perr = oauth_form_get(query, "error", 200);
	if (perr != NULL) {
		pdesc = oauth_form_get(query, "error_description", 500);
		app_log(BM_LOG_INFO, req->id, "oauth", "%s: the provider "
		    "answered error %s", o->name, perr);
		snprintf(err, sizeof(err), "%s%s%s", perr,
		    pdesc != NULL ? ": " : "", pdesc != NULL ? pdesc : "");
		oauth_page(ans, 400, "Not connected", "The service did not "
		    "authorize the connection.", err);
		goto out;
	}
	if ((code = oauth_form_get(query, "code", 2048)) == NULL ||
	    code[0] == '\0') {
		oauth_page(ans, 400, "Not connected", "The answer of the "
		    "service has no code.", NULL);
		goto out;
	}
	oauth_add_url(&r, env->conf, o->name, "callback");
	oauth_adds(&f, "grant_type=authorization_code&code=");
	oauth_add_esc(&f, code);
	oauth_adds(&f, "&redirect_uri=");
	oauth_add_esc(&f, r.p != NULL ? r.p : "");
	oauth_adds(&f, "&code_verifier=");
	oauth_adds(&f, ver);
	oauth_add_client(&f, o);
	if (f.failed || r.failed) {
		oauth_page(ans, 500, "Error", "Out of memory.", NULL);
		goto out;
	}
	if (oauth_token_call(env, o, f.p, &g, err, sizeof(err)) < 0) {
		app_log(BM_LOG_WARN, req->id, "oauth", "%s: code exchange: %s",
		    o->name, err);
		oauth_page(ans, 502, "Not connected", "The service's answer "
		    "could not be used.", err);
		goto out;
	}
	if (g.error != NULL) {
		app_log(BM_LOG_WARN, req->id, "oauth", "%s: code exchange "
		    "refused: %s", o->name, g.error);
		snprintf(err, sizeof(err), "%s%s%s", g.error,
		    g.error_desc != NULL ? ": " : "",
		    g.error_desc != NULL ? g.error_desc : "");
		oauth_page(ans, 502, "Not connected", "The service refused "
		    "the code.", err);
		goto out;
	}
	sv->access = g.access;
	sv->refresh = g.refresh != NULL ? g.refresh : "";
	sv->scope = g.scope != NULL && oauth_printable(g.scope) ? g.scope :
	    "";
	sv->updated = (int64_t)time(NULL);
	sv->expires = g.expires_in > 0 ? sv->updated + g.expires_in : 0;
	oauth_mark(env, 1);
	rc = store_service_put(env->ks->st, sv);
	oauth_mark(env, 0);
	/* The tokens belong to g: the service must not free them. */
	sv->access = NULL;
	if (rc != STORE_OK) {
		oauth_store_failed(env, req->id, rc);
		oauth_page(ans, 500, "Not connected", "The connection could "
		    "not be saved.", NULL);
		goto out;
	}
	app_log(BM_LOG_INFO, req->id, "oauth", "%s: connected (group \"%s\", "
	    "user \"%s\")", o->name, sv->group, sv->user);
	oauth_page(ans, 200, "Connected", "The service is connected. You can "
	    "close this page.", NULL);
out:
	OPENSSL_cleanse(ver, sizeof(ver));
	if (code != NULL)
		OPENSSL_cleanse(code, strlen(code));
	oauth_buf_wipe(&f);
	free(r.p);
	free(state);
	free(code);
	free(perr);
	free(pdesc);
	if (sv != NULL)
		sv->access = sv->refresh = sv->scope = NULL;
	store_service_free(sv);
	oauth_grant_clear(&g);
}

void
app_oauth_route(struct app_env *env, struct bm_req *req, const char *rest,
    const char *query, struct app_answer *ans)
{
	const struct app_oauth_svc *o;
	const char *slash = rest != NULL ? strchr(rest, '/') : NULL;

	if (slash == NULL || (o = oauth_svc(env->conf, rest,
	    (size_t)(slash - rest))) == NULL) {
		app_answer_error(ans, 404, "not found");
		return;
	}
	ans->what = o->name;
	if (strcmp(slash + 1, "start") == 0)
		oauth_start(env, req, o, query, ans);
	else if (strcmp(slash + 1, "callback") == 0)
		oauth_callback(env, req, o, query, ans);
	else
		app_answer_error(ans, 404, "not found");
}

/* --- for modules ------------------------------------------------------- */

int
app_service_link(struct app_env *env, const char *reqid,
    const char *install_id, const char *svc, const char *group,
    const char *user, char **url)
{
	const struct app_oauth_svc *o;
	char id[STORE_OAUTH_ID_LEN + 1];
	struct oauth_buf b = { 0 };
	int rc;

	*url = NULL;
	if (svc == NULL || (o = oauth_svc(env->conf, svc, strlen(svc))) ==
	    NULL) {
		app_log(BM_LOG_ERROR, reqid, "oauth", "service_link: no "
		    "service \"%.64s\" configured (BM_OAUTH_<SVC>_*)",
		    svc != NULL ? svc : "");
		return -1;
	}
	oauth_mark(env, 1);
	rc = store_oauth_link_create(env->ks->st, install_id, o->name, group,
	    user, (int64_t)time(NULL), APP_OAUTH_LINK_TTL, id);
	oauth_mark(env, 0);
	if (rc != STORE_OK)
		return oauth_store_failed(env, reqid, rc);
	oauth_add_url(&b, env->conf, o->name, "start?l=");
	oauth_adds(&b, id);
	if (b.failed) {
		free(b.p);
		app_log(BM_LOG_ERROR, reqid, "oauth", "out of memory");
		return -1;
	}
	*url = b.p;
	return 0;
}

/* Refreshes sv (leased at its gen); 0, APP_SERVICE_NEEDS_LINK or -1. */
static int
oauth_refresh(struct app_env *env, const char *reqid,
    const struct app_oauth_svc *o, struct store_service *sv, char **token)
{
	struct oauth_grant g = { 0 };
	struct oauth_buf f = { 0 };
	struct store_service nw;
	char err[512];
	int rc, ret = -1;

	oauth_adds(&f, "grant_type=refresh_token&refresh_token=");
	oauth_add_esc(&f, sv->refresh);
	oauth_add_client(&f, o);
	if (f.failed) {
		app_log(BM_LOG_ERROR, reqid, "oauth", "out of memory");
		goto end;
	}
	if (oauth_token_call(env, o, f.p, &g, err, sizeof(err)) < 0) {
		app_log(BM_LOG_WARN, reqid, "oauth", "%s: refresh: %s",
		    o->name, err);
		goto end;
	}
	if (g.error != NULL) {
		app_log(BM_LOG_WARN, reqid, "oauth", "%s: refresh refused: %s",
		    o->name, g.error);
		if (strcmp(g.error, "invalid_grant") == 0)
			ret = APP_SERVICE_NEEDS_LINK;
		goto end;
	}
	nw = *sv;
	nw.access = g.access;
	nw.refresh = g.refresh; /* NULL: the old one stays */
	nw.scope = g.scope != NULL && oauth_printable(g.scope) ? g.scope :
	    NULL;
	nw.updated = (int64_t)time(NULL);
	nw.expires = g.expires_in > 0 ? nw.updated + g.expires_in : 0;
	oauth_mark(env, 1);
	rc = store_service_refreshed(env->ks->st, &nw, sv->gen);
	oauth_mark(env, 0);
	if (rc == STORE_NOTFOUND) {
		/* Revoked or relinked meanwhile: this token is stale. */
		app_log(BM_LOG_WARN, reqid, "oauth", "%s: the service changed "
		    "during its refresh", o->name);
		oauth_buf_wipe(&f);
		oauth_grant_clear(&g);
		return -1;
	}
	if (rc != STORE_OK) {
		oauth_store_failed(env, reqid, rc);
		goto end;
	}
	if ((*token = strdup(g.access)) == NULL)
		app_log(BM_LOG_ERROR, reqid, "oauth", "out of memory");
	else
		ret = 0;
	oauth_buf_wipe(&f);
	oauth_grant_clear(&g);
	return ret;
end:
	/* No new tokens: the lease goes (and the link, on invalid_grant). */
	oauth_mark(env, 1);
	rc = store_service_lease_end(env->ks->st, sv->install_id, sv->service,
	    sv->group, sv->user, sv->gen, ret == APP_SERVICE_NEEDS_LINK);
	oauth_mark(env, 0);
	if (rc < 0)
		oauth_store_failed(env, reqid, rc);
	oauth_buf_wipe(&f);
	oauth_grant_clear(&g);
	return ret;
}

int
app_service_token(struct app_env *env, const char *reqid,
    const char *install_id, const char *svc, const char *group,
    const char *user, char **token)
{
	const struct app_oauth_svc *o;
	struct store_service *sv = NULL;
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	int64_t now;
	unsigned waits;
	int rc, got;

	*token = NULL;
	if (svc == NULL || (o = oauth_svc(env->conf, svc, strlen(svc))) ==
	    NULL) {
		app_log(BM_LOG_ERROR, reqid, "oauth", "service_token: no "
		    "service \"%.64s\" configured", svc != NULL ? svc : "");
		return -1;
	}
	/* Another responder refreshing holds a lease of APP_OAUTH_LEASE
	 * seconds at most: wait for its result, a little longer than that. */
	for (waits = 0; waits < 10 * (APP_OAUTH_LEASE + 5); waits++) {
		oauth_mark(env, 1);
		rc = store_service_get(env->ks->st, install_id, o->name, group,
		    user, &sv);
		oauth_mark(env, 0);
		if (rc == STORE_NOTFOUND)
			return APP_SERVICE_NOT_LINKED;
		if (rc != STORE_OK)
			return oauth_store_failed(env, reqid, rc);
		if (sv->needs_link) {
			store_service_free(sv);
			return APP_SERVICE_NEEDS_LINK;
		}
		now = (int64_t)time(NULL);
		if (sv->expires == 0 ||
		    sv->expires > now + APP_OAUTH_REFRESH_MARGIN) {
			*token = strdup(sv->access);
			store_service_free(sv);
			if (*token == NULL) {
				app_log(BM_LOG_ERROR, reqid, "oauth",
				    "out of memory");
				return -1;
			}
			return 0;
		}
		if (sv->refresh[0] == '\0') {
			store_service_free(sv);
			return APP_SERVICE_NEEDS_LINK;
		}
		oauth_mark(env, 1);
		rc = store_service_lease(env->ks->st, install_id, o->name,
		    group, user, sv->gen, now, APP_OAUTH_LEASE, &got);
		oauth_mark(env, 0);
		if (rc < 0) {
			store_service_free(sv);
			return oauth_store_failed(env, reqid, rc);
		}
		if (got) {
			rc = oauth_refresh(env, reqid, o, sv, token);
			store_service_free(sv);
			return rc;
		}
		if (waits == 0)
			app_log(BM_LOG_DEBUG, reqid, "oauth", "%s: another "
			    "responder is refreshing: waiting", o->name);
		store_service_free(sv);
		sv = NULL;
		nanosleep(&ts, NULL);
	}
	app_log(BM_LOG_WARN, reqid, "oauth", "%s: another refresh did not "
	    "finish in time", o->name);
	return -1;
}

int
app_service_delete(struct app_env *env, const char *reqid,
    const char *install_id, const char *svc, const char *group,
    const char *user)
{
	int rc;

	oauth_mark(env, 1);
	rc = store_service_delete(env->ks->st, install_id, svc, group, user);
	oauth_mark(env, 0);
	if (rc == STORE_NOTFOUND)
		return 1;
	return rc == STORE_OK ? 0 : oauth_store_failed(env, reqid, rc);
}

static int
oauth_list_one(void *arg, const struct store_service *sv)
{
	json_t *a = arg;

	return json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,"
	    "s:I,s:b}", "service", sv->service, "group", sv->group, "user",
	    sv->user, "scope", sv->scope, "created", (json_int_t)sv->created,
	    "updated", (json_int_t)sv->updated, "expires",
	    (json_int_t)sv->expires, "needs_link", sv->needs_link)) == 0 ?
	    0 : -1;
}

json_t *
app_services_list(struct app_env *env, const char *reqid,
    const char *install_id)
{
	json_t *a = json_array();
	int rc;

	if (a == NULL) {
		app_log(BM_LOG_ERROR, reqid, "oauth", "out of memory");
		return NULL;
	}
	oauth_mark(env, 1);
	rc = store_service_foreach(env->ks->st, install_id, oauth_list_one, a);
	oauth_mark(env, 0);
	if (rc != STORE_OK) {
		json_decref(a);
		if (rc < 0)
			oauth_store_failed(env, reqid, rc);
		else
			app_log(BM_LOG_ERROR, reqid, "oauth", "out of memory");
		return NULL;
	}
	return a;
}
