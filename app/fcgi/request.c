#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi/fcgi.h"

/* Sends ans as the whole response. */
static void
fcgi_send(FCGX_Request *fr, const struct bm_req *req,
    const struct app_answer *ans, size_t *sent)
{
	char head[512], allow[64], *json = NULL;
	const char *b;
	size_t len;
	int hlen;

	/* As JavaScript's JSON.stringify wrote it: 0.1, not 0.10000000000000001. */
	if (ans->json != NULL)
		json = map_stringify(ans->json);
	if (json != NULL) {
		b = json;
		len = strlen(b);
	} else if (ans->text != NULL) {
		b = ans->text;
		len = strlen(b);
	} else if (ans->body != NULL) {
		b = ans->body;
		len = ans->body_len;
	} else {
		b = "";
		len = 0;
	}
	allow[0] = '\0';
	if (ans->status == 405)
		snprintf(allow, sizeof(allow), "Allow: %s\r\n",
		    ans->allow != NULL ? ans->allow : "POST");
	/* libfcgi's own printf knows no %zu: format here. */
	hlen = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: "
	    "%s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n%s",
	    ans->status, app_proto_reason(ans->status),
	    ans->content_type != NULL ? ans->content_type : "application/json",
	    len, req->id, allow);
	if (hlen > 0 && (size_t)hlen < sizeof(head)) {
		FCGX_PutStr(head, hlen, fr->out);
		if (ans->headers != NULL)
			FCGX_PutStr(ans->headers, (int)strlen(ans->headers),
			    fr->out);
		FCGX_PutStr("\r\n", 2, fr->out);
		FCGX_PutStr(b, (int)len, fr->out);
	}
	*sent = len;
	free(json);
}

/* Reads exactly len bytes of body.  Returns a new buffer, or NULL. */
static char *
fcgi_read_body(FCGX_Request *fr, size_t len)
{
	char *buf;
	size_t got = 0;

	if ((buf = malloc(len + 1)) == NULL)
		return NULL;
	while (got < len) {
		size_t want = len - got > 65536 ? 65536 : len - got;
		int n = FCGX_GetStr(buf + got, (int)want, fr->in);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != len) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* The path of the request without its query string. */
static const char *
fcgi_path(FCGX_Request *fr, char *buf, size_t cap)
{
	const char *p = FCGX_GetParam("DOCUMENT_URI", fr->envp);
	size_t len;

	if (p != NULL && *p != '\0')
		return p;
	if ((p = FCGX_GetParam("REQUEST_URI", fr->envp)) == NULL)
		p = FCGX_GetParam("SCRIPT_NAME", fr->envp);
	if (p == NULL)
		return NULL;
	len = strcspn(p, "?");
	if (len >= cap)
		return NULL;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

/* Returns 1 when the query string asks for format=prometheus. */
static int
fcgi_wants_prometheus(const char *query)
{
	size_t n;

	while (query != NULL && *query != '\0') {
		n = strcspn(query, "&");
		if (n == 17 && strncmp(query, "format=prometheus", 17) == 0)
			return 1;
		query += n;
		query += *query == '&';
	}
	return 0;
}

/*
 * Answers BM_STATUS_PATH from the shared counters alone: no store call,
 * nothing asked of the master.  Only GET.  Returns the status sent.
 */
static int
fcgi_status(FCGX_Request *fr, const struct bm_req *req, const char *method,
    size_t *sent)
{
	char head[512], *body = NULL;
	const char *ctype = "application/json", *allow = "";
	int status = 200, prom, hlen;

	prom = fcgi_wants_prometheus(FCGX_GetParam("QUERY_STRING", fr->envp));
	if (method == NULL || strcmp(method, "GET") != 0) {
		status = 405;
		allow = "Allow: GET\r\n";
		body = strdup("{\"success\":false,\"error\":\"method not "
		    "allowed\"}");
	} else if ((body = app_metrics_render(prom)) == NULL) {
		status = 500;
		body = strdup("{\"success\":false,\"error\":\"out of "
		    "memory\"}");
		app_log(BM_LOG_ERROR, req->id, "status", "out of memory");
	} else if (prom)
		ctype = "text/plain; version=0.0.4; charset=utf-8";
	*sent = body != NULL ? strlen(body) : 0;
	hlen = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: "
	    "%s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
	    "X-Request-Id: %s\r\n%s\r\n", status, app_proto_reason(status),
	    ctype, *sent, req->id, allow);
	if (hlen > 0 && (size_t)hlen < sizeof(head)) {
		FCGX_PutStr(head, hlen, fr->out);
		if (body != NULL)
			FCGX_PutStr(body, (int)*sent, fr->out);
	}
	free(body);
	return status;
}

/* What one request is, for the handler of its route. */
struct fcgi_call {
	struct app_env *env;
	FCGX_Request *fr;
	struct bm_req *req;
	const char *method;
	const char *rest;      /* what follows the route's prefix, or NULL */
	const char *body;      /* the body, NULL for a GET */
	size_t len;
	int form;              /* the body is form-encoded */
	enum app_req_kind kind;   /* for the counters */
	struct app_envelope envl; /* the webhook's, freed after the log line
	                             (the answer's "what" points into it) */
};

/* The webhook of SPEC §2. */
static void
fcgi_webhook(struct fcgi_call *c, struct app_answer *ans)
{
	char err[512];
	int status;

	if ((status = app_envelope_parse(c->body, c->len, &c->envl, err,
	    sizeof(err))) != 0) {
		app_log(BM_LOG_INFO, c->req->id, "request", "%s", err);
		app_answer_error(ans, status, err);
		return;
	}
	c->kind = c->envl.action != NULL ? APP_KIND_ACTION :
	    c->envl.event != NULL ? APP_KIND_EVENT : APP_KIND_NONE;
	app_dispatch(c->env, c->req, &c->envl,
	    FCGX_GetParam("HTTP_AUTHORIZATION", c->fr->envp), ans);
}

/* A request header by its lowercase name ("webhook-id"), as the web
 * server passes it: HTTP_WEBHOOK_ID.  arg is the FCGX_Request. */
static const char *
fcgi_header(void *arg, const char *name)
{
	FCGX_Request *fr = arg;
	char param[128];
	size_t i, n = strlen(name);

	if (n + 6 > sizeof(param))
		return NULL;
	memcpy(param, "HTTP_", 5);
	for (i = 0; i < n; i++)
		param[5 + i] = name[i] == '-' ? '_' :
		    (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 32) :
		    name[i];
	param[5 + n] = '\0';
	return FCGX_GetParam(param, fr->envp);
}

/* <endpoint>ext/...: the external service's deliveries (Standard
 * Webhooks headers, read through fcgi_header). */
static void
fcgi_ext(struct fcgi_call *c, struct app_answer *ans)
{
	c->kind = APP_KIND_EXT;
	if (app_events_route(c->env, c->req, c->rest, c->body, c->len,
	    fcgi_header, c->fr, ans))
		return;
	app_sync_ext_route(c->env, c->req, c->rest, c->body, c->len,
	    fcgi_header, c->fr, ans);
}

/* <endpoint>settings: the page (GET) and its save (POST). */
static void
fcgi_settings(struct fcgi_call *c, struct app_answer *ans)
{
	c->kind = APP_KIND_SETTINGS;
	if (c->body == NULL)
		app_settings_page(c->env, c->req, FCGX_GetParam("QUERY_STRING",
		    c->fr->envp), ans);
	else
		app_settings_save(c->env, c->req, c->form, c->body, c->len, ans);
}

static void
fcgi_settings_asset(struct fcgi_call *c, struct app_answer *ans)
{
	c->kind = APP_KIND_SETTINGS;
	app_settings_asset(c->rest, ans);
}

/* <endpoint>oauth/<svc>/start and .../callback (SPEC §12). */
static void
fcgi_oauth(struct fcgi_call *c, struct app_answer *ans)
{
	c->kind = APP_KIND_OAUTH;
	app_oauth_route(c->env, c->req, c->rest, FCGX_GetParam("QUERY_STRING",
	    c->fr->envp), ans);
}

/*
 * The routes: their methods (what a 405's Allow says), whether a POST may
 * be form-encoded, and who answers.  A POST has its head checked and its
 * body read before the handler runs; a GET has no body.
 */
static const struct fcgi_route {
	const char *allow;
	int form;
	void (*fn)(struct fcgi_call *, struct app_answer *);
} fcgi_routes[APP_ROUTE__MAX] = {
	[APP_ROUTE_WEBHOOK] = { "POST", 0, fcgi_webhook },
	[APP_ROUTE_EXT] = { "POST", 0, fcgi_ext },
	[APP_ROUTE_SETTINGS] = { "GET, POST", 1, fcgi_settings },
	[APP_ROUTE_SETTINGS_ASSET] = { "GET", 0, fcgi_settings_asset },
	[APP_ROUTE_OAUTH] = { "GET", 0, fcgi_oauth },
};

void
app_fcgi_serve(struct app_env *env, FCGX_Request *fr, uint64_t seq)
{
	char err[512], idbuf[72], pathbuf[2048];
	const struct fcgi_route *rt = NULL;
	struct app_answer ans;
	struct fcgi_call call;
	const char *path;
	struct bm_req req;
	char *body = NULL;
	size_t sent = 0;
	int64_t t0 = app_now_us();
	struct app_log_request lr;
	enum app_route route;
	int status;

	memset(&ans, 0, sizeof(ans));
	memset(&call, 0, sizeof(call));
	call.kind = APP_KIND_NONE;
	if (app_proto_request_id(FCGX_GetParam("REQUEST_ID", fr->envp), idbuf,
	    sizeof(idbuf)) < 0)
		snprintf(idbuf, sizeof(idbuf), "%lx-%llx", (unsigned long)getpid(),
		    (unsigned long long)seq);
	app_req_init(&req, env, idbuf);
	call.env = env;
	call.fr = fr;
	call.req = &req;
	call.method = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	path = fcgi_path(fr, pathbuf, sizeof(pathbuf));
	app_log(BM_LOG_DEBUG, req.id, "request", "start %s %s",
	    call.method != NULL ? call.method : "-", path != NULL ? path : "-");

	if (env->conf->status_path != NULL && path != NULL &&
	    strcmp(path, env->conf->status_path) == 0) {
		call.kind = APP_KIND_STATUS;
		ans.status = fcgi_status(fr, &req, call.method, &sent);
		goto logged;
	}
	route = app_proto_route(path, env->conf->endpoint, &call.rest);
	/* The settings page exists only with BM_SETTINGS. */
	if ((route == APP_ROUTE_SETTINGS || route == APP_ROUTE_SETTINGS_ASSET) &&
	    env->settings == NULL)
		route = APP_ROUTE_NONE;
	if (route <= APP_ROUTE_NONE || route >= APP_ROUTE__MAX ||
	    fcgi_routes[route].fn == NULL) {
		app_answer_error(&ans, 404, "not found");
		goto send;
	}
	rt = &fcgi_routes[route];
	if ((status = app_proto_check_method(call.method, rt->allow, err,
	    sizeof(err))) != 0) {
		app_log(BM_LOG_INFO, req.id, "request", "%s", err);
		app_answer_error(&ans, status, err);
		ans.allow = rt->allow;
		goto send;
	}
	if (strcmp(call.method, "POST") == 0) {
		status = app_proto_check_body(FCGX_GetParam("CONTENT_LENGTH",
		    fr->envp), FCGX_GetParam("CONTENT_TYPE", fr->envp),
		    env->conf->max_body, rt->form, &call.form, &call.len, err,
		    sizeof(err));
		if (status != 0) {
			app_log(BM_LOG_INFO, req.id, "request", "%s", err);
			app_answer_error(&ans, status, err);
			goto send;
		}
		if ((body = fcgi_read_body(fr, call.len)) == NULL) {
			app_log(BM_LOG_INFO, req.id, "request", "body shorter "
			    "than Content-Length or out of memory");
			app_answer_error(&ans, 400, "request body shorter than "
			    "Content-Length");
			goto send;
		}
		call.body = body;
	}
	rt->fn(&call, &ans);
	if (ans.status == 0)
		app_answer_error(&ans, 500, "internal error");
send:
	fcgi_send(fr, &req, &ans, &sent);
logged:
	lr.method = call.method;
	lr.path = path;
	lr.status = ans.status;
	lr.us = app_now_us() - t0;
	lr.client = FCGX_GetParam("REMOTE_ADDR", fr->envp);
	lr.install = req.install_id[0] != '\0' ? req.install_id : NULL;
	lr.what = ans.what;
	app_log_request(req.id, &lr);
	app_metrics_request(ans.status, call.kind, lr.us);
	app_answer_clear(&ans);
	app_envelope_free(&call.envl);
	if (body != NULL) {
		/* A settings body holds the token and maybe a password. */
		explicit_bzero(body, call.len);
		free(body);
	}
	app_req_release(&req);
}
