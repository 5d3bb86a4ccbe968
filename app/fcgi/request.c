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
	char head[512], *body = NULL;
	const char *b;
	size_t len;
	int hlen;

	/* As JavaScript's JSON.stringify wrote it: 0.1, not 0.10000000000000001. */
	if (ans->json != NULL)
		body = map_stringify(ans->json);
	b = body != NULL ? body : ans->text != NULL ? ans->text : "";
	len = strlen(b);
	/* libfcgi's own printf knows no %zu: format here. */
	hlen = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: "
	    "%s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n%s\r\n",
	    ans->status, app_proto_reason(ans->status),
	    ans->content_type != NULL ? ans->content_type : "application/json",
	    len, req->id, ans->status == 405 ? "Allow: POST\r\n" : "");
	if (hlen > 0 && (size_t)hlen < sizeof(head)) {
		FCGX_PutStr(head, hlen, fr->out);
		FCGX_PutStr(b, (int)len, fr->out);
	}
	*sent = len;
	free(body);
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

void
app_fcgi_serve(struct app_env *env, FCGX_Request *fr, uint64_t seq,
    struct app_deferred *def)
{
	char err[512], idbuf[72], pathbuf[2048];
	struct app_envelope envl;
	struct app_answer ans;
	const char *path, *rest, *method;
	struct bm_req req;
	char *body = NULL;
	size_t len = 0, sent = 0;
	int64_t t0 = app_now_us();
	enum app_req_kind kind = APP_KIND_NONE;
	struct app_log_request lr;
	enum app_route route;
	int status;

	memset(&envl, 0, sizeof(envl));
	memset(&ans, 0, sizeof(ans));
	if (app_proto_request_id(FCGX_GetParam("REQUEST_ID", fr->envp), idbuf,
	    sizeof(idbuf)) < 0)
		snprintf(idbuf, sizeof(idbuf), "%lx-%llx", (unsigned long)getpid(),
		    (unsigned long long)seq);
	app_req_init(&req, env, idbuf);
	req.deferred = def;
	method = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	path = fcgi_path(fr, pathbuf, sizeof(pathbuf));
	app_log(BM_LOG_DEBUG, req.id, "request", "start %s %s",
	    method != NULL ? method : "-", path != NULL ? path : "-");

	if (env->conf->status_path != NULL && path != NULL &&
	    strcmp(path, env->conf->status_path) == 0) {
		kind = APP_KIND_STATUS;
		ans.status = fcgi_status(fr, &req, method, &sent);
		goto logged;
	}
	switch ((route = app_proto_route(path, env->conf->endpoint, &rest))) {
	case APP_ROUTE_WEBHOOK:
	case APP_ROUTE_EXT:
		break;
	case APP_ROUTE_NONE:
	case APP_ROUTE__MAX:
	default:
		app_answer_error(&ans, 404, "not found");
		goto send;
	}
	status = app_proto_check_head(method,
	    FCGX_GetParam("CONTENT_LENGTH", fr->envp),
	    FCGX_GetParam("CONTENT_TYPE", fr->envp), env->conf->max_body, &len,
	    err, sizeof(err));
	if (status != 0) {
		app_log(BM_LOG_INFO, req.id, "request", "%s", err);
		app_answer_error(&ans, status, err);
		goto send;
	}
	if ((body = fcgi_read_body(fr, len)) == NULL) {
		app_log(BM_LOG_INFO, req.id, "request", "body shorter than "
		    "Content-Length or out of memory");
		app_answer_error(&ans, 400, "request body shorter than "
		    "Content-Length");
		goto send;
	}
	if (route == APP_ROUTE_EXT) {
		kind = APP_KIND_EXT;
		app_sync_ext_route(env, &req, rest, body, len, fcgi_header,
		    fr, &ans);
		goto send;
	}
	if ((status = app_envelope_parse(body, len, &envl, err,
	    sizeof(err))) != 0) {
		app_log(BM_LOG_INFO, req.id, "request", "%s", err);
		app_answer_error(&ans, status, err);
		goto send;
	}
	kind = envl.action != NULL ? APP_KIND_ACTION : envl.event != NULL ?
	    APP_KIND_EVENT : APP_KIND_NONE;
	app_dispatch(env, &req, &envl, FCGX_GetParam("HTTP_AUTHORIZATION",
	    fr->envp), &ans);
	if (ans.status == 0)
		app_answer_error(&ans, 500, "internal error");
send:
	fcgi_send(fr, &req, &ans, &sent);
logged:
	lr.method = method;
	lr.path = path;
	lr.status = ans.status;
	lr.us = app_now_us() - t0;
	lr.client = FCGX_GetParam("REMOTE_ADDR", fr->envp);
	lr.install = req.install_id[0] != '\0' ? req.install_id : NULL;
	lr.what = ans.what;
	app_log_request(req.id, &lr);
	app_metrics_request(ans.status, kind, lr.us);
	app_answer_clear(&ans);
	app_envelope_free(&envl);
	free(body);
	app_req_release(&req);
}
