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
	"create", "get", "search", "list", "update", "delete",
	"list webhooks", "create webhook", "delete webhook"
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
 * What both paths do before sending op: a's method and expanded path, the
 * body serialised into *text and the URL into *url (both new).  Returns 0,
 * or -1 with *result a new failure result (logged; NULL when out of
 * memory).
 */
static int
xr_prepare(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const struct xr_vals *v, const json_t *body, struct xr_answer *a,
    char **text, char **url, json_t **result)
{
	const struct app_conf *conf = x->conf;
	size_t n;

	memset(a, 0, sizeof(*a));
	*result = NULL;
	*text = *url = NULL;
	a->method = conf->ext_method[op];
	if ((a->path = xr_path(conf->ext_path[op], v)) == NULL)
		goto nomem;
	if (body != NULL && (*text = map_stringify(body)) == NULL) {
		*result = app_http_failure("extrest", reqid, a->method,
		    a->path, 0, "invalid argument: the contact cannot be "
		    "serialised");
		return -1;
	}
	n = strlen(conf->ext_base_url) + strlen(a->path) + 1;
	if ((*url = malloc(n)) == NULL)
		goto nomem;
	snprintf(*url, n, "%s%s", conf->ext_base_url, a->path);
	return 0;
nomem:
	app_log(BM_LOG_ERROR, reqid, "extrest", "%s: out of memory",
	    xr_op_names[op]);
	return -1;
}

/*
 * The headers of the next send, a JWT fetched first when one is needed
 * (blocking: once per JWT lifetime).  Returns 0, or -1 with *result set as
 * for xr_prepare().
 */
static int
xr_auth(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    struct curl_slist **hdrs, json_t **result)
{
	const struct app_conf *conf = x->conf;

	if (conf->ext_jwt_url != NULL && (x->jwt == NULL ||
	    (x->jwt_exp != 0 && time(NULL) >= x->jwt_exp - XR_JWT_MARGIN)) &&
	    xr_jwt_fetch(x, reqid, result) < 0)
		return -1;
	curl_slist_free_all(*hdrs);
	*hdrs = NULL;
	if (xr_headers(x, hdrs) < 0) {
		app_log(BM_LOG_ERROR, reqid, "extrest", "%s: out of memory",
		    xr_op_names[op]);
		return -1;
	}
	return 0;
}

/*
 * After an answer: a 401 with a JWT drops it; returns 1 when the call is
 * to be sent once more (the first 401), else 0.
 */
static int
xr_again(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const struct xr_answer *a, int *retried)
{
	if (a->status != 401 || x->conf->ext_jwt_url == NULL)
		return 0;
	xr_jwt_drop(x);  /* it does not work: the next call asks anew */
	if (*retried)
		return 0;
	app_log(BM_LOG_INFO, reqid, "extrest", "%s %s: HTTP 401, fetching a "
	    "new JWT", a->method, xr_op_names[op]);
	*retried = 1;
	return 1;
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
	struct curl_slist *hdrs = NULL;
	char err[CURL_ERROR_SIZE + 64], *text = NULL, *url = NULL;
	int rc = -1, retried = 0;

	if (xr_prepare(x, reqid, op, v, body, a, &text, &url, result) < 0)
		goto out;
	do {
		if (xr_auth(x, reqid, op, &hdrs, result) < 0)
			goto out;
		free(a->body);
		a->body = NULL;
		if (app_http_request(x->http, a->method, url, hdrs, text,
		    &a->status, &a->body, &a->len, err, sizeof(err)) < 0) {
			*result = app_http_failure("extrest", reqid, a->method,
			    a->path, 0, err);
			goto out;
		}
	} while (xr_again(x, reqid, op, a, &retried));
	rc = 0;
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

	if (a->status == 404 && op != APP_EXT_CREATE && op != APP_EXT_LIST &&
	    op != APP_EXT_HOOKS_LIST && op != APP_EXT_HOOK_CREATE)
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

/*
 * What the service's answer a to op means, as the consumer function
 * returns it (new): the interpretation both paths share, for create,
 * search, update and delete.
 */
static json_t *
xr_result(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const struct xr_answer *a)
{
	json_t *answer = NULL, *result = NULL, *id, *contact;

	switch (op) {
	case APP_EXT_CREATE:
		if (a->status != 200 && a->status != 201) {
			result = xr_status_fail(reqid, op, a);
			break;
		}
		if ((answer = xr_parse(reqid, a, &result)) == NULL)
			break;
		if (!json_is_object(answer)) {
			result = xr_invalid(reqid, a, "not an object");
			break;
		}
		if ((id = json_object_get(answer, x->id_field)) == NULL)
			id = json_object_get(answer, "id");
		if (!json_is_integer(id) &&
		    !(json_is_string(id) && json_string_length(id) > 0)) {
			result = xr_invalid(reqid, a, "no id");
			break;
		}
		result = json_pack("{s:b, s:O}", "success", 1, "id", id);
		break;
	case APP_EXT_SEARCH:
		if (a->status != 200) {
			result = xr_status_fail(reqid, op, a);
			break;
		}
		if ((answer = xr_parse(reqid, a, &result)) == NULL)
			break;
		if (json_is_array(answer) && json_array_size(answer) == 0) {
			/* A search that found nothing: not a failure of the
			 * service, so neither logged as one nor given a
			 * status. */
			result = json_pack("{s:b, s:s}", "success", 0, "error",
			    "resource not found");
			break;
		}
		contact = json_is_array(answer) ? json_array_get(answer, 0) :
		    answer;
		if (!json_is_object(contact)) {
			result = xr_invalid(reqid, a, "not an object or an "
			    "array of objects");
			break;
		}
		result = json_pack("{s:b, s:O}", "success", 1, "contact",
		    contact);
		break;
	default:
		/* update and del: any 2xx, whatever the body (services answer
		 * 200 with the record, 204 with nothing, or plain text). */
		if (a->status < 200 || a->status > 299)
			result = xr_status_fail(reqid, op, a);
		else
			result = json_pack("{s:b}", "success", 1);
		break;
	}
	json_decref(answer);
	return result;
}

/* The arguments of op checked before anything is sent: NULL or a failure
 * result (new, logged). */
static json_t *
xr_check(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const char *id, const char *email, const json_t *contact)
{
	if ((op == APP_EXT_UPDATE || op == APP_EXT_DELETE) &&
	    (id == NULL || *id == '\0'))
		return xr_badarg(x, reqid, op, "no id");
	if ((op == APP_EXT_CREATE || op == APP_EXT_UPDATE) &&
	    !json_is_object(contact))
		return xr_badarg(x, reqid, op, "contact not an object");
	if (op == APP_EXT_SEARCH && (email == NULL || *email == '\0'))
		return xr_badarg(x, reqid, op, "no email");
	return NULL;
}

/* create, search, update, delete on the blocking path. */
static json_t *
xr_blocking(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const char *id, const char *email, const json_t *contact)
{
	struct xr_vals v = { id, email, 0, 0 };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *result;

	if ((result = xr_check(x, reqid, op, id, email, contact)) != NULL)
		return result;
	if (xr_call(x, reqid, op, &v, contact, &a, &result) == 0)
		result = xr_result(x, reqid, op, &a);
	xr_answer_clear(&a);
	return result;
}

static json_t *
xr_create(struct bm_ctx *ctx, const json_t *contact, void *arg)
{
	return xr_blocking(arg, xr_reqid(ctx), APP_EXT_CREATE, NULL, NULL,
	    contact);
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
	return xr_blocking(arg, xr_reqid(ctx), APP_EXT_SEARCH, NULL, email,
	    NULL);
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

static json_t *
xr_update(struct bm_ctx *ctx, const char *id, const json_t *contact,
    void *arg)
{
	return xr_blocking(arg, xr_reqid(ctx), APP_EXT_UPDATE, id, NULL,
	    contact);
}

static json_t *
xr_del(struct bm_ctx *ctx, const char *id, void *arg)
{
	return xr_blocking(arg, xr_reqid(ctx), APP_EXT_DELETE, id, NULL,
	    NULL);
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

/* --- the asynchronous path ------------------------------------------- */

/* One operation in flight. */
struct xr_async {
	struct app_extrest *x;
	struct app_http_multi *m;
	struct app_http_ctx *ctx;     /* borrowed: the job's */
	enum app_ext_op op;
	char reqid[128];
	struct xr_answer a;
	char *text, *url;
	struct curl_slist *hdrs;
	int retried;
	app_extrest_done_fn done;
	void *arg;
};

static void
xr_async_free(struct xr_async *xa)
{
	xr_answer_clear(&xa->a);
	free(xa->text);
	free(xa->url);
	curl_slist_free_all(xa->hdrs);
	free(xa);
}

static void xr_async_done(void *arg, int rc, long status, char *answer,
    size_t len, const char *err);

/* Sends xa's call.  Returns 0 in flight, or -1 with *result set. */
static int
xr_async_send(struct xr_async *xa, json_t **result)
{
	char err[CURL_ERROR_SIZE + 64];

	if (xr_auth(xa->x, xa->reqid, xa->op, &xa->hdrs, result) < 0)
		return -1;
	if (app_http_multi_add(xa->m, xa->ctx, xa->a.method, xa->url,
	    xa->hdrs, xa->text, xr_async_done, xa, err, sizeof(err)) < 0) {
		*result = app_http_failure("extrest", xa->reqid, xa->a.method,
		    xa->a.path, 0, err);
		return -1;
	}
	return 0;
}

static void
xr_async_done(void *arg, int rc, long status, char *answer, size_t len,
    const char *err)
{
	struct xr_async *xa = arg;
	json_t *result = NULL;

	free(xa->a.body);
	xa->a.body = answer;
	xa->a.len = len;
	xa->a.status = status;
	if (rc < 0)
		result = app_http_failure("extrest", xa->reqid, xa->a.method,
		    xa->a.path, 0, err != NULL ? err : "failed");
	else if (xr_again(xa->x, xa->reqid, xa->op, &xa->a, &xa->retried)) {
		if (xr_async_send(xa, &result) == 0)
			return;  /* sent once more: done runs later */
	} else
		result = xr_result(xa->x, xa->reqid, xa->op, &xa->a);
	xa->done(xa->arg, result);
	xr_async_free(xa);
}

int
app_extrest_start(struct app_extrest *x, struct app_http_multi *m,
    struct app_http_ctx *ctx, const char *reqid, enum app_ext_op op,
    const char *id, const char *email, const json_t *contact,
    app_extrest_done_fn done, void *arg, json_t **result)
{
	struct xr_vals v = { id, email, 0, 0 };
	struct xr_async *xa;

	*result = NULL;
	if ((*result = xr_check(x, reqid, op, id, email, contact)) != NULL)
		return 1;
	if ((xa = calloc(1, sizeof(*xa))) == NULL) {
		app_log(BM_LOG_ERROR, reqid, "extrest", "%s: out of memory",
		    xr_op_names[op]);
		return 1;
	}
	xa->x = x;
	xa->m = m;
	xa->ctx = ctx;
	xa->op = op;
	xa->done = done;
	xa->arg = arg;
	snprintf(xa->reqid, sizeof(xa->reqid), "%s", reqid != NULL ? reqid :
	    "-");
	if (xr_prepare(x, reqid, op, &v, contact, &xa->a, &xa->text, &xa->url,
	    result) < 0 || xr_async_send(xa, result) < 0) {
		xr_async_free(xa);
		return 1;
	}
	return 0;
}

json_t *
app_extrest_hook(struct app_extrest *x, const char *reqid, enum app_ext_op op,
    const char *id, const json_t *body)
{
	struct xr_vals v = { id, NULL, 0, 0 };
	struct xr_answer a = { NULL, NULL, 0, NULL, 0 };
	json_t *answer = NULL, *result = NULL, *hid;

	if (op == APP_EXT_HOOK_DELETE && (id == NULL || *id == '\0'))
		return xr_badarg(x, reqid, op, "no id");
	if (op == APP_EXT_HOOK_CREATE && !json_is_object(body))
		return xr_badarg(x, reqid, op, "webhook not an object");
	if (xr_call(x, reqid, op, &v, op == APP_EXT_HOOK_CREATE ? body : NULL,
	    &a, &result) < 0)
		goto out;
	if (a.status < 200 || a.status > 299) {
		result = xr_status_fail(reqid, op, &a);
		goto out;
	}
	switch (op) {
	case APP_EXT_HOOKS_LIST:
		if ((answer = xr_parse(reqid, &a, &result)) == NULL)
			break;
		if (!json_is_array(answer)) {
			result = xr_invalid(reqid, &a, "not an array");
			break;
		}
		result = json_pack("{s:b, s:O}", "success", 1, "hooks", answer);
		break;
	case APP_EXT_HOOK_CREATE:
		if ((answer = xr_parse(reqid, &a, &result)) == NULL)
			break;
		hid = json_object_get(answer, "id");
		if (!json_is_integer(hid) &&
		    !(json_is_string(hid) && json_string_length(hid) > 0)) {
			result = xr_invalid(reqid, &a, "no id");
			break;
		}
		result = json_pack("{s:b, s:O}", "success", 1, "id", hid);
		break;
	default:
		result = json_pack("{s:b}", "success", 1);
		break;
	}
out:
	json_decref(answer);
	xr_answer_clear(&a);
	return result;
}
