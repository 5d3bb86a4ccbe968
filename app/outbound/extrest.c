#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "outbound/outbound.h"
#include "mapping/mapping.h"

/*
 * A cached JWT whose exp is this close is not sent: it could expire on the
 * way, or by the service's clock, and cost a 401 and a retry.
 */
#define XR_JWT_MARGIN 5

struct app_extrest {
	const struct app_conf *conf;  /* borrowed: base URL, paths, methods */
	struct app_http *http;        /* owned: the responder's handle */
	char *id_field;               /* owned: member holding ids */
	char *jwt;                    /* owned: the cached JWT, or NULL */
	time_t jwt_exp;               /* its exp claim; 0 = none (until a 401) */
	int auth_replaced;            /* ext_auth_header is an Authorization
	                                 line, which the JWT replaces */
};

/* The values a path template may name. */
struct xr_vals {
	const char *id;
	const char *email;
	unsigned page, limit;
};

/* The names of the operations, for logs. */
static const char *const xr_op_names[APP_EXT__MAX] = {
	"create", "get", "search", "list", "update", "delete"
};

struct app_extrest *
app_extrest_new(const struct app_conf *conf, const char *id_field, char *err,
    size_t errlen)
{
	struct app_extrest *x = NULL;
	const char *h = conf->ext_auth_header;

	if (conf->ext_base_url == NULL) {
		snprintf(err, errlen, "BM_EXT_BASE_URL is not set");
		goto out;
	}
	if (id_field == NULL || *id_field == '\0')
		id_field = "id";
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (x->id_field = strdup(id_field)) == NULL ||
	    (x->http = app_http_new(conf)) == NULL) {
		snprintf(err, errlen, "out of memory");
		app_extrest_free(x);
		x = NULL;
		goto out;
	}
	x->conf = conf;
	x->auth_replaced = h != NULL && strncasecmp(h, "Authorization:",
	    sizeof("Authorization:") - 1) == 0;
out:
	return x;
}

void
app_extrest_free(struct app_extrest *x)
{
	if (x == NULL)
		return;
	app_http_free(x->http);
	free(x->id_field);
	free(x->jwt);
	free(x);
}

/* A growing string; on out of memory, ok turns 0 and stays so. */
struct xr_str {
	char *s;
	size_t len, cap;
	int ok;
};

static void
xr_put(struct xr_str *b, const char *s, size_t n)
{
	char *ns;
	size_t cap;

	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 128;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((ns = realloc(b->s, cap)) == NULL) {
			b->ok = 0;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
xr_put_escaped(struct xr_str *b, const char *s)
{
	char *e;

	if ((e = app_http_escape(s)) == NULL) {
		b->ok = 0;
		return;
	}
	xr_put(b, e, strlen(e));
	free(e);
}

/*
 * The template tmpl with {id}, {email}, {page} and {limit} replaced by v's
 * values, percent-encoded (a name without a value becomes empty; any other
 * brace is kept).  Returns a new string (free()), or NULL when out of
 * memory.
 */
static char *
xr_path(const char *tmpl, const struct xr_vals *v)
{
	struct xr_str b = { NULL, 0, 0, 1 };
	char num[24];
	const char *p;

	xr_put(&b, "", 0);
	for (p = tmpl; *p != '\0'; ) {
		if (strncmp(p, "{id}", 4) == 0) {
			xr_put_escaped(&b, v->id != NULL ? v->id : "");
			p += 4;
		} else if (strncmp(p, "{email}", 7) == 0) {
			xr_put_escaped(&b, v->email != NULL ? v->email : "");
			p += 7;
		} else if (strncmp(p, "{page}", 6) == 0) {
			snprintf(num, sizeof(num), "%u", v->page);
			xr_put(&b, num, strlen(num));
			p += 6;
		} else if (strncmp(p, "{limit}", 7) == 0) {
			snprintf(num, sizeof(num), "%u", v->limit);
			xr_put(&b, num, strlen(num));
			p += 7;
		} else {
			xr_put(&b, p, 1);
			p++;
		}
	}
	if (!b.ok) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* The path part of url (after scheme and authority), for logs: the
 * authority may hold credentials. */
static const char *
xr_url_path(const char *url)
{
	const char *p = strstr(url, "://"), *slash;

	if (p == NULL)
		return url;
	slash = strchr(p + 3, '/');
	return slash != NULL ? slash : "/";
}

/*
 * Decodes base64url (RFC 4648 §5, padding optional) of n bytes into a new
 * NUL-terminated buffer (free()) of *outlen bytes.  NULL when s is not
 * base64url or memory ran out.
 */
static char *
xr_b64url(const char *s, size_t n, size_t *outlen)
{
	unsigned long acc = 0;
	unsigned bits = 0;
	size_t i, o = 0;
	char *out;
	int c;

	while (n > 0 && s[n - 1] == '=')
		n--;
	if ((out = malloc(n * 3 / 4 + 2)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c -= 'A';
		else if (c >= 'a' && c <= 'z')
			c = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			c = c - '0' + 52;
		else if (c == '-')
			c = 62;
		else if (c == '_')
			c = 63;
		else {
			free(out);
			return NULL;
		}
		acc = (acc << 6 | (unsigned long)c) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits & 0xff);
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/*
 * The exp claim of jwt (header.payload.signature): seconds since the epoch,
 * or 0 when the payload cannot be read or has no numeric exp.  The
 * signature is not checked: the token is the service's business, and exp
 * only tells when to stop sending it.
 */
static time_t
xr_jwt_exp(const char *jwt)
{
	const char *p = strchr(jwt, '.'), *q;
	json_t *payload = NULL, *exp;
	char *raw = NULL;
	size_t len = 0;
	time_t t = 0;
	double d;

	if (p == NULL || (q = strchr(p + 1, '.')) == NULL)
		goto out;
	if ((raw = xr_b64url(p + 1, (size_t)(q - p - 1), &len)) == NULL)
		goto out;
	payload = json_loadb(raw, len, 0, NULL);
	exp = json_object_get(payload, "exp");
	if (json_is_integer(exp) && json_integer_value(exp) > 0)
		t = (time_t)json_integer_value(exp);
	else if (json_is_real(exp) && (d = json_real_value(exp)) >= 1 &&
	    d < 1e15)
		t = (time_t)d;
out:
	json_decref(payload);
	free(raw);
	return t;
}

static void
xr_jwt_drop(struct app_extrest *x)
{
	if (x->jwt != NULL) {
#ifdef HAVE_EXPLICIT_BZERO
		explicit_bzero(x->jwt, strlen(x->jwt));
#endif
		free(x->jwt);
	}
	x->jwt = NULL;
	x->jwt_exp = 0;
}

/* A failure of the JWT request: "authentication failed: <why>". */
static json_t *
xr_jwt_fail(struct app_extrest *x, const char *reqid, long status,
    const char *why)
{
	char text[400];

	snprintf(text, sizeof(text), "authentication failed: %s", why);
	return app_http_failure("extrest", reqid, "POST",
	    xr_url_path(x->conf->ext_jwt_url), status, text);
}

/*
 * Obtains a new JWT into x->jwt (what js-jwt did on every call).  Returns
 * 0, or -1 with *result a new failure result (logged; NULL when out of
 * memory).
 */
static int
xr_jwt_fetch(struct app_extrest *x, const char *reqid, json_t **result)
{
	const struct app_conf *conf = x->conf;
	struct curl_slist *hdrs = NULL;
	char err[CURL_ERROR_SIZE + 64], why[CURL_ERROR_SIZE + 128];
	char *ans = NULL;
	json_t *answer = NULL, *tok;
	size_t len = 0;
	long status = 0;
	int rc = -1, sent;

	xr_jwt_drop(x);
	if (app_http_json_headers(&hdrs, NULL) < 0)
		goto out;
	/* Its answer is a credential: a job must not keep it. */
	app_http_job_secret(1);
	sent = app_http_request(x->http, "POST", conf->ext_jwt_url, hdrs,
	    conf->ext_jwt_body, &status, &ans, &len, err, sizeof(err));
	app_http_job_secret(0);
	if (sent < 0) {
		*result = xr_jwt_fail(x, reqid, 0, err);
		goto out;
	}
	if (status < 200 || status > 299) {
		snprintf(why, sizeof(why), "HTTP %ld", status);
		*result = xr_jwt_fail(x, reqid, status, why);
		goto out;
	}
	if ((answer = app_http_parse(ans, len, err, sizeof(err))) == NULL) {
		snprintf(why, sizeof(why), "invalid answer: %s", err);
		*result = xr_jwt_fail(x, reqid, status, why);
		goto out;
	}
	tok = json_object_get(answer, conf->ext_jwt_field);
	/* It goes into a header line: no CR or LF may forge another. */
	if (!json_is_string(tok) || !app_http_header_safe(
	    json_string_value(tok))) {
		snprintf(why, sizeof(why), "invalid answer: no token in \"%s\"",
		    conf->ext_jwt_field);
		*result = xr_jwt_fail(x, reqid, status, why);
		goto out;
	}
	if ((x->jwt = strdup(json_string_value(tok))) == NULL)
		goto out;
	x->jwt_exp = xr_jwt_exp(x->jwt);
	app_log(BM_LOG_DEBUG, reqid, "extrest", "new JWT%s", x->jwt_exp ?
	    "" : " without exp: kept until a 401");
	rc = 0;
out:
	if (ans != NULL) {
#ifdef HAVE_EXPLICIT_BZERO
		explicit_bzero(ans, len);
#endif
		free(ans);
	}
	json_decref(answer);
	curl_slist_free_all(hdrs);
	return rc;
}

/*
 * The headers of one call: JSON, BM_EXT_AUTH_HEADER, the JWT.  Returns 0,
 * or -1 when out of memory (*list is the caller's to free either way).
 */
static int
xr_headers(const struct app_extrest *x, struct curl_slist **list)
{
	struct curl_slist *l;
	char *line;
	size_t n;
	int rc;

	if (app_http_json_headers(list, x->jwt != NULL && x->auth_replaced ?
	    NULL : x->conf->ext_auth_header) < 0)
		return -1;
	if (x->jwt == NULL)
		return 0;
	n = strlen(x->jwt) + 32;
	if ((line = malloc(n)) == NULL)
		return -1;
	snprintf(line, n, "Authorization: Bearer %s", x->jwt);
	rc = (l = curl_slist_append(*list, line)) == NULL ? -1 : 0;
	if (l != NULL)
		*list = l;
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(line, n);
#endif
	free(line);
	return rc;
}

/* One call's outcome when the service answered. */
struct xr_answer {
	char *path;     /* the expanded path (new), for logs */
	const char *method;
	long status;
	char *body;     /* new, NUL-terminated */
	size_t len;
};

static void
xr_answer_clear(struct xr_answer *a)
{
	free(a->path);
	free(a->body);
	memset(a, 0, sizeof(*a));
}

/*
 * Sends operation op with v's values and body (borrowed, may be NULL).
 * When the service answers (any status), returns 0 with *a filled (clear
 * with xr_answer_clear).  Otherwise returns -1 with *result a new failure
 * result (logged; NULL when out of memory); *a still needs clearing.  With
 * a JWT, a 401 drops it, fetches another and sends once more.
 */
static int
xr_call(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const struct xr_vals *v, const json_t *body, struct xr_answer *a,
    json_t **result)
{
	const struct app_conf *conf = x->conf;
	struct curl_slist *hdrs = NULL;
	char err[CURL_ERROR_SIZE + 64], *text = NULL, *url = NULL;
	int rc = -1, retried = 0;
	size_t n;

	memset(a, 0, sizeof(*a));
	*result = NULL;
	a->method = conf->ext_method[op];
	if ((a->path = xr_path(conf->ext_path[op], v)) == NULL)
		goto nomem;
	if (body != NULL && (text = map_stringify(body)) == NULL) {
		*result = app_http_failure("extrest", reqid, a->method,
		    a->path, 0, "invalid argument: the contact cannot be "
		    "serialised");
		goto out;
	}
	n = strlen(conf->ext_base_url) + strlen(a->path) + 1;
	if ((url = malloc(n)) == NULL)
		goto nomem;
	snprintf(url, n, "%s%s", conf->ext_base_url, a->path);
again:
	if (conf->ext_jwt_url != NULL && (x->jwt == NULL ||
	    (x->jwt_exp != 0 && time(NULL) >= x->jwt_exp - XR_JWT_MARGIN)) &&
	    xr_jwt_fetch(x, reqid, result) < 0)
		goto out;
	curl_slist_free_all(hdrs);
	hdrs = NULL;
	if (xr_headers(x, &hdrs) < 0)
		goto nomem;
	free(a->body);
	a->body = NULL;
	if (app_http_request(x->http, a->method, url, hdrs, text, &a->status,
	    &a->body, &a->len, err, sizeof(err)) < 0) {
		*result = app_http_failure("extrest", reqid, a->method,
		    a->path, 0, err);
		goto out;
	}
	if (a->status == 401 && conf->ext_jwt_url != NULL && !retried) {
		app_log(BM_LOG_INFO, reqid, "extrest", "%s %s: HTTP 401, "
		    "fetching a new JWT", a->method, xr_op_names[op]);
		xr_jwt_drop(x);
		retried = 1;
		goto again;
	}
	if (a->status == 401 && conf->ext_jwt_url != NULL)
		xr_jwt_drop(x);  /* it does not work: the next call asks anew */
	rc = 0;
	goto out;
nomem:
	app_log(BM_LOG_ERROR, reqid, "extrest", "%s: out of memory",
	    xr_op_names[op]);
out:
	curl_slist_free_all(hdrs);
	free(text);
	free(url);
	return rc;
}

/*
 * The failure for a status the operation does not take: "resource not
 * found" for a 404 where a contact was named or searched, "HTTP <n>"
 * otherwise.
 */
static json_t *
xr_status_fail(const char *reqid, enum app_ext_op op,
    const struct xr_answer *a)
{
	char why[64];

	if (a->status == 404 && op != APP_EXT_CREATE && op != APP_EXT_LIST)
		snprintf(why, sizeof(why), "resource not found");
	else
		snprintf(why, sizeof(why), "HTTP %ld", a->status);
	return app_http_failure("extrest", reqid, a->method, a->path,
	    a->status, why);
}

static json_t *
xr_invalid(const char *reqid, const struct xr_answer *a, const char *what)
{
	char why[400];

	snprintf(why, sizeof(why), "invalid answer: %s", what);
	return app_http_failure("extrest", reqid, a->method, a->path,
	    a->status, why);
}

/* An argument that cannot be sent: no request is made. */
static json_t *
xr_badarg(const struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const char *what)
{
	char why[300];

	snprintf(why, sizeof(why), "invalid argument: %s", what);
	return app_http_failure("extrest", reqid, x->conf->ext_method[op],
	    x->conf->ext_path[op], 0, why);
}

/* Parses a's body; NULL with *result set (logged) when it is not JSON. */
static json_t *
xr_parse(const char *reqid, const struct xr_answer *a, json_t **result)
{
	char err[300];
	json_t *v;

	if ((v = app_http_parse(a->body, a->len, err, sizeof(err))) == NULL)
		*result = xr_invalid(reqid, a, err);
	return v;
}

static const char *
xr_reqid(const struct bm_ctx *ctx)
{
	return ctx != NULL ? ctx->request_id : NULL;
}

static json_t *
xr_create(struct bm_ctx *ctx, const json_t *contact, void *arg)
{
	struct app_extrest *x = arg;
	const char *reqid = xr_reqid(ctx);
	struct xr_vals v = { NULL, NULL, 0, 0 };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *answer = NULL, *result = NULL, *id;

	if (!json_is_object(contact)) {
		result = xr_badarg(x, reqid, APP_EXT_CREATE,
		    "contact not an object");
		goto out;
	}
	if (xr_call(x, reqid, APP_EXT_CREATE, &v, contact, &a, &result) < 0)
		goto out;
	if (a.status != 200 && a.status != 201) {
		result = xr_status_fail(reqid, APP_EXT_CREATE, &a);
		goto out;
	}
	if ((answer = xr_parse(reqid, &a, &result)) == NULL)
		goto out;
	if (!json_is_object(answer)) {
		result = xr_invalid(reqid, &a, "not an object");
		goto out;
	}
	if ((id = json_object_get(answer, x->id_field)) == NULL)
		id = json_object_get(answer, "id");
	if (!json_is_integer(id) &&
	    !(json_is_string(id) && json_string_length(id) > 0)) {
		result = xr_invalid(reqid, &a, "no id");
		goto out;
	}
	result = json_pack("{s:b, s:O}", "success", 1, "id", id);
out:
	json_decref(answer);
	xr_answer_clear(&a);
	return result;
}

static json_t *
xr_contact_result(const json_t *contact)
{
	return json_pack("{s:b, s:O}", "success", 1, "contact", contact);
}

static json_t *
xr_get(struct bm_ctx *ctx, const char *id, void *arg)
{
	struct app_extrest *x = arg;
	const char *reqid = xr_reqid(ctx);
	struct xr_vals v = { id, NULL, 0, 0 };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *answer = NULL, *result = NULL;

	if (id == NULL || *id == '\0') {
		result = xr_badarg(x, reqid, APP_EXT_GET, "no id");
		goto out;
	}
	if (xr_call(x, reqid, APP_EXT_GET, &v, NULL, &a, &result) < 0)
		goto out;
	if (a.status != 200) {
		result = xr_status_fail(reqid, APP_EXT_GET, &a);
		goto out;
	}
	if ((answer = xr_parse(reqid, &a, &result)) == NULL)
		goto out;
	if (!json_is_object(answer)) {
		result = xr_invalid(reqid, &a, "not an object");
		goto out;
	}
	result = xr_contact_result(answer);
out:
	json_decref(answer);
	xr_answer_clear(&a);
	return result;
}

static json_t *
xr_get_by_email(struct bm_ctx *ctx, const char *email, void *arg)
{
	struct app_extrest *x = arg;
	const char *reqid = xr_reqid(ctx);
	struct xr_vals v = { NULL, email, 0, 0 };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *answer = NULL, *result = NULL, *contact;

	if (email == NULL || *email == '\0') {
		result = xr_badarg(x, reqid, APP_EXT_SEARCH, "no email");
		goto out;
	}
	if (xr_call(x, reqid, APP_EXT_SEARCH, &v, NULL, &a, &result) < 0)
		goto out;
	if (a.status != 200) {
		result = xr_status_fail(reqid, APP_EXT_SEARCH, &a);
		goto out;
	}
	if ((answer = xr_parse(reqid, &a, &result)) == NULL)
		goto out;
	if (json_is_array(answer) && json_array_size(answer) == 0) {
		/* A search that found nothing: not a failure of the service,
		 * so neither logged as one nor given a status. */
		result = json_pack("{s:b, s:s}", "success", 0, "error",
		    "resource not found");
		goto out;
	}
	contact = json_is_array(answer) ? json_array_get(answer, 0) : answer;
	if (!json_is_object(contact)) {
		result = xr_invalid(reqid, &a, "not an object or an array of "
		    "objects");
		goto out;
	}
	result = xr_contact_result(contact);
out:
	json_decref(answer);
	xr_answer_clear(&a);
	return result;
}

static json_t *
xr_list_page(struct bm_ctx *ctx, unsigned page, unsigned limit, void *arg)
{
	struct app_extrest *x = arg;
	const char *reqid = xr_reqid(ctx);
	const char *field = x->conf->ext_list_field;
	struct xr_vals v = { NULL, NULL, page, limit };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *answer = NULL, *result = NULL, *list, *item;
	char what[300];
	size_t i;

	if (page == 0 || limit == 0) {
		result = xr_badarg(x, reqid, APP_EXT_LIST,
		    "pages and limits count from 1");
		goto out;
	}
	if (xr_call(x, reqid, APP_EXT_LIST, &v, NULL, &a, &result) < 0)
		goto out;
	if (a.status != 200) {
		result = xr_status_fail(reqid, APP_EXT_LIST, &a);
		goto out;
	}
	if ((answer = xr_parse(reqid, &a, &result)) == NULL)
		goto out;
	list = answer;
	if (json_is_object(answer) && field != NULL)
		list = json_object_get(answer, field);
	if (!json_is_array(list)) {
		if (field != NULL)
			snprintf(what, sizeof(what), "not an array nor an object "
			    "holding one in \"%s\"", field);
		else
			snprintf(what, sizeof(what), "not an array "
			    "(BM_EXT_LIST_FIELD names the member holding it)");
		result = xr_invalid(reqid, &a, what);
		goto out;
	}
	json_array_foreach(list, i, item)
		if (!json_is_object(item)) {
			snprintf(what, sizeof(what), "element %zu not an object",
			    i);
			result = xr_invalid(reqid, &a, what);
			goto out;
		}
	result = json_pack("{s:b, s:O}", "success", 1, "contacts", list);
out:
	json_decref(answer);
	xr_answer_clear(&a);
	return result;
}

/* update and del: any 2xx, whatever the body (services answer 200 with
 * the record, 204 with nothing, or plain text). */
static json_t *
xr_simple(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const char *id, const json_t *contact)
{
	struct xr_vals v = { id, NULL, 0, 0 };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *result = NULL;

	if (id == NULL || *id == '\0') {
		result = xr_badarg(x, reqid, op, "no id");
		goto out;
	}
	if (op == APP_EXT_UPDATE && !json_is_object(contact)) {
		result = xr_badarg(x, reqid, op, "contact not an object");
		goto out;
	}
	if (xr_call(x, reqid, op, &v, contact, &a, &result) < 0)
		goto out;
	if (a.status < 200 || a.status > 299) {
		result = xr_status_fail(reqid, op, &a);
		goto out;
	}
	result = json_pack("{s:b}", "success", 1);
out:
	xr_answer_clear(&a);
	return result;
}

static json_t *
xr_update(struct bm_ctx *ctx, const char *id, const json_t *contact,
    void *arg)
{
	return xr_simple(arg, xr_reqid(ctx), APP_EXT_UPDATE, id, contact);
}

static json_t *
xr_del(struct bm_ctx *ctx, const char *id, void *arg)
{
	return xr_simple(arg, xr_reqid(ctx), APP_EXT_DELETE, id, NULL);
}

void
app_extrest_consumer(struct app_extrest *x, struct bm_consumer *out)
{
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->create = xr_create;
	out->get = xr_get;
	out->get_by_email = xr_get_by_email;
	out->list_page = xr_list_page;
	out->update = xr_update;
	out->del = xr_del;
	out->arg = x;
}
