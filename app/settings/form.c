#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings/settings.h"
#include "settings/settings_int.h"
#include "schema/schema.h"

/* Largest BM_SETTINGS file read. */
#define SETTINGS_FILE_MAX (1024 * 1024)
/* Longest field name: it is an HTML id, a form name and a JSON key. */
#define SETTINGS_NAME_MAX 64

enum settings_kind {
	SETTINGS_STRING = 0,
	SETTINGS_PASSWORD,   /* "format":"password": write-only */
	SETTINGS_INTEGER,
	SETTINGS_NUMBER,
	SETTINGS_BOOLEAN,
	SETTINGS_ENUM,       /* a <select> of the enum's values */
	SETTINGS_KIND__MAX
};

struct settings_field {
	const char *name;        /* borrowed from the schema document */
	const json_t *prop;      /* its schema, borrowed likewise */
	enum settings_kind kind;
	int required;
	struct schema *alone;    /* the field checked on its own (for every
	                            name in error), or NULL when its schema
	                            does not compile apart from the root */
};

struct app_settings {
	struct schema *schema;   /* the whole BM_SETTINGS */
	struct settings_field *f;
	size_t n;
};

/* --- loading ------------------------------------------------------------ */

static int
settings_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= SETTINGS_NAME_MAX && strspn(name,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
	    == len && strcmp(name, "token") != 0;
}

/* The form control of prop, or -1 when the form cannot render it. */
static int
settings_kind(const json_t *prop)
{
	const char *type = json_string_value(json_object_get(prop, "type"));
	const char *format = json_string_value(json_object_get(prop,
	    "format"));
	const json_t *en = json_object_get(prop, "enum"), *v;
	size_t i;

	if (en != NULL) {
		if (!json_is_array(en) || json_array_size(en) == 0)
			return -1;
		json_array_foreach(en, i, v)
			if (!json_is_string(v) && !json_is_number(v))
				return -1;
		return SETTINGS_ENUM;
	}
	if (type == NULL)
		return -1;
	if (strcmp(type, "string") == 0)
		return format != NULL && strcmp(format, "password") == 0 ?
		    SETTINGS_PASSWORD : SETTINGS_STRING;
	if (strcmp(type, "integer") == 0)
		return SETTINGS_INTEGER;
	if (strcmp(type, "number") == 0)
		return SETTINGS_NUMBER;
	if (strcmp(type, "boolean") == 0)
		return SETTINGS_BOOLEAN;
	return -1;
}

/*
 * Compiles the schema of one field alone ({"properties":{name:prop},
 * "required":[name], "$defs":...}) so that every field in error is found,
 * not only the first the whole schema reports.  NULL when it does not
 * compile apart (a $ref into the root): the whole schema still decides.
 */
static struct schema *
settings_alone(const json_t *doc, const char *name, const json_t *prop,
    int required)
{
	struct schema *s = NULL;
	json_t *one;

	one = json_pack("{s:{s:O}}", "properties", name, prop);
	if (one == NULL)
		return NULL;
	if (json_object_get(doc, "$defs") != NULL)
		json_object_set(one, "$defs", json_object_get(doc, "$defs"));
	if (required)
		json_object_set_new(one, "required", json_pack("[s]", name));
	if (schema_compile(one, &s, NULL) < 0)
		s = NULL;
	json_decref(one);
	return s;
}

int
app_settings_load(const char *path, struct app_settings **out, char *err,
    size_t errlen)
{
	struct app_settings *s = NULL;
	struct schema_error serr;
	const json_t *doc, *props, *req, *prop, *v;
	json_error_t jerr;
	json_t *root = NULL;
	const char *name;
	size_t i, n;
	int rc = -1, kind;

	*out = NULL;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "%s: line %d: %s", path, jerr.line,
		    jerr.text);
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if (schema_compile(root, &s->schema, &serr) < 0) {
		snprintf(err, errlen, "%s: not a schema: %s", path, serr.text);
		goto out;
	}
	doc = schema_json(s->schema);
	props = json_object_get(doc, "properties");
	if (!json_is_object(doc) || !json_is_object(props) ||
	    (n = json_object_size(props)) == 0) {
		snprintf(err, errlen, "%s: the schema needs \"properties\", the "
		    "fields of the form", path);
		goto out;
	}
	if (n > APP_SETTINGS_FIELDS_MAX) {
		snprintf(err, errlen, "%s: more than %d fields", path,
		    APP_SETTINGS_FIELDS_MAX);
		goto out;
	}
	if ((s->f = calloc(n, sizeof(*s->f))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	req = json_object_get(doc, "required");
	json_object_foreach((json_t *)props, name, prop) {
		struct settings_field *f = &s->f[s->n];

		if (!settings_name_ok(name)) {
			snprintf(err, errlen, "%s: /properties/%.80s: a field "
			    "name is 1 to %d of [A-Za-z0-9_.-], and not "
			    "\"token\"", path, name, SETTINGS_NAME_MAX);
			goto out;
		}
		if (!json_is_object(prop) || (kind = settings_kind(prop)) < 0) {
			snprintf(err, errlen, "%s: /properties/%s: a type the "
			    "form cannot render (string, integer, number, "
			    "boolean or enum)", path, name);
			goto out;
		}
		f->name = name;
		f->prop = prop;
		f->kind = (enum settings_kind)kind;
		json_array_foreach(req, i, v)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), name) == 0)
				f->required = 1;
		f->alone = settings_alone(doc, name, prop, f->required);
		s->n++;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	app_settings_free(s);
	json_decref(root);
	return rc;
}

void
app_settings_free(struct app_settings *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		schema_free(s->f[i].alone);
	free(s->f);
	schema_free(s->schema);
	free(s);
}

size_t
app_settings_count(const struct app_settings *s)
{
	return s == NULL ? 0 : s->n;
}

/* --- the answer's head ------------------------------------------------ */

/*
 * The headers of every answer of the page: its policy names the one origin
 * that may frame it; scripts, styles and requests only from here.
 */
static int
settings_headers(struct app_answer *ans, const struct app_conf *conf)
{
	static const char fmt[] =
	    "Content-Security-Policy: default-src 'none'; script-src 'self'; "
	    "style-src 'self'; connect-src 'self'; form-action 'self'; "
	    "frame-ancestors %s; base-uri 'none'\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Cache-Control: no-store\r\n";
	size_t n = sizeof(fmt) + strlen(conf->botmatic_origin);

	free(ans->headers);
	if ((ans->headers = malloc(n)) == NULL)
		return -1;
	snprintf(ans->headers, n, fmt, conf->botmatic_origin);
	return 0;
}

/* A JSON answer of the page (steals j); 500 when j is NULL. */
static void
settings_json(struct app_answer *ans, const struct app_conf *conf, int status,
    json_t *j)
{
	if (j == NULL) {
		app_answer_error(ans, 500, "out of memory");
		return;
	}
	json_decref(ans->json);
	ans->status = status;
	ans->content_type = "application/json";
	ans->json = j;
	if (settings_headers(ans, conf) < 0)
		app_answer_error(ans, 500, "out of memory");
}

static void
settings_unauthorized(struct app_answer *ans, const struct app_conf *conf)
{
	settings_json(ans, conf, 401, json_pack("{s:b, s:s}", "success", 0,
	    "error", "Not authorized"));
}

/*
 * The installation of token in *client (new).  Answers 401 or 503 itself
 * and returns -1 when there is none.
 */
static int
settings_auth(struct app_env *env, struct bm_req *req, const char *token,
    json_t **client, struct app_answer *ans)
{
	*client = NULL;
	if (token == NULL || *token == '\0') {
		app_log(BM_LOG_INFO, req->id, "settings", "no token");
		settings_unauthorized(ans, env->conf);
		return -1;
	}
	switch (app_ks_install_get(env->ks, req->id, token, client)) {
	case 0:
		/* For the request's log line: the install id, never the token. */
		snprintf(req->install_id, sizeof(req->install_id), "%s",
		    json_string_value(json_object_get(*client, "install_id")) !=
		    NULL ? json_string_value(json_object_get(*client,
		    "install_id")) : "");
		return 0;
	case 1:
		app_log(BM_LOG_INFO, req->id, "settings", "token of no "
		    "installation");
		settings_unauthorized(ans, env->conf);
		return -1;
	default:
		/* Logged by the keystore. */
		app_answer_error(ans, 503, "temporary failure, try again");
		return -1;
	}
}

/* The stored settings of client (borrowed), an object or NULL. */
static json_t *
settings_current(json_t *client)
{
	json_t *cur = json_object_get(client, "settings");

	return json_is_object(cur) ? cur : NULL;
}

/* --- the page ---------------------------------------------------------- */

/* A value of an enum or a number as the form writes it (new), or NULL. */
static char *
settings_text(const json_t *v)
{
	char buf[64];

	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld",
		    (long long)json_integer_value(v));
		return strdup(buf);
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return strdup(buf);
	}
	return NULL;
}

static void
settings_field_html(struct settings_buf *b, const struct settings_field *f,
    const json_t *cur)
{
	const char *title = json_string_value(json_object_get(f->prop,
	    "title"));
	const char *desc = json_string_value(json_object_get(f->prop,
	    "description"));
	const json_t *v = json_object_get(cur, f->name), *en, *e;
	char *text = NULL;
	size_t i;

	if (v == NULL || json_is_null(v))
		v = json_object_get(f->prop, "default");
	settings__buf_add(b, "<div class=\"field\">\n<label for=\"f-");
	settings__buf_esc(b, f->name);
	settings__buf_add(b, "\">");
	settings__buf_esc(b, title != NULL ? title : f->name);
	if (f->required)
		settings__buf_add(b, " <span class=\"req\" aria-hidden=\"true\">"
		    "*</span>");
	settings__buf_add(b, "</label>\n");
	switch (f->kind) {
	case SETTINGS_ENUM:
		settings__buf_add(b, "<select");
		break;
	case SETTINGS_STRING:
	case SETTINGS_PASSWORD:
	case SETTINGS_INTEGER:
	case SETTINGS_NUMBER:
	case SETTINGS_BOOLEAN:
	case SETTINGS_KIND__MAX:
	default:
		settings__buf_add(b, "<input");
		break;
	}
	settings__buf_add(b, " id=\"f-");
	settings__buf_esc(b, f->name);
	settings__buf_add(b, "\" name=\"");
	settings__buf_esc(b, f->name);
	settings__buf_add(b, "\"");
	if (desc != NULL) {
		settings__buf_add(b, " aria-describedby=\"d-");
		settings__buf_esc(b, f->name);
		settings__buf_add(b, "\"");
	}
	if (f->required && f->kind != SETTINGS_BOOLEAN)
		settings__buf_add(b, " aria-required=\"true\"");
	switch (f->kind) {
	case SETTINGS_PASSWORD:
		/* Write-only: what is stored never goes back to a browser. */
		settings__buf_add(b, " type=\"password\" value=\"\" "
		    "autocomplete=\"new-password\"");
		if (json_is_string(v) && json_string_length(v) > 0 &&
		    json_object_get(cur, f->name) != NULL)
			settings__buf_add(b, " placeholder=\"(unchanged)\"");
		settings__buf_add(b, ">\n");
		break;
	case SETTINGS_STRING:
		settings__buf_add(b, " type=\"text\" value=\"");
		if (json_is_string(v))
			settings__buf_esc(b, json_string_value(v));
		settings__buf_add(b, "\">\n");
		break;
	case SETTINGS_INTEGER:
	case SETTINGS_NUMBER:
		settings__buf_add(b, f->kind == SETTINGS_INTEGER ?
		    " type=\"number\" step=\"1\" value=\"" :
		    " type=\"number\" step=\"any\" value=\"");
		if (json_is_number(v) && (text = settings_text(v)) != NULL)
			settings__buf_esc(b, text);
		settings__buf_add(b, "\">\n");
		break;
	case SETTINGS_BOOLEAN:
		settings__buf_add(b, " type=\"checkbox\" value=\"true\"");
		if (json_is_true(v))
			settings__buf_add(b, " checked");
		settings__buf_add(b, ">\n");
		break;
	case SETTINGS_ENUM:
		settings__buf_add(b, ">\n");
		if (!f->required)
			settings__buf_add(b, "<option value=\"\"></option>\n");
		en = json_object_get(f->prop, "enum");
		json_array_foreach(en, i, e) {
			char *et = settings_text(e);
			if (et == NULL) {
				b->failed = 1;
				break;
			}
			settings__buf_add(b, "<option value=\"");
			settings__buf_esc(b, et);
			settings__buf_add(b, "\"");
			if (v != NULL && json_equal((json_t *)v, e))
				settings__buf_add(b, " selected");
			settings__buf_add(b, ">");
			settings__buf_esc(b, et);
			settings__buf_add(b, "</option>\n");
			free(et);
		}
		settings__buf_add(b, "</select>\n");
		break;
	case SETTINGS_KIND__MAX:
	default:
		break;
	}
	if (desc != NULL) {
		settings__buf_add(b, "<p class=\"help\" id=\"d-");
		settings__buf_esc(b, f->name);
		settings__buf_add(b, "\">");
		settings__buf_esc(b, desc);
		settings__buf_add(b, "</p>\n");
	}
	settings__buf_add(b, "</div>\n");
	free(text);
}

/* The endpoint with a trailing '/': where "settings" hangs. */
static void
settings_base(struct settings_buf *b, const char *endpoint)
{
	settings__buf_esc(b, endpoint);
	if (endpoint[strlen(endpoint) - 1] != '/')
		settings__buf_add(b, "/");
}

void
app_settings_page(struct app_env *env, struct bm_req *req, const char *query,
    struct app_answer *ans)
{
	const struct app_settings *s = env->settings;
	struct settings_buf b;
	json_t *q = NULL, *client = NULL;
	const char *title, *token;
	char err[256];
	size_t i;

	memset(&b, 0, sizeof(b));
	ans->what = "settings_page";
	if (query != NULL && app_settings_form_decode(query, strlen(query), &q,
	    err, sizeof(err)) < 0) {
		app_log(BM_LOG_INFO, req->id, "settings", "query: %s", err);
		app_answer_error(ans, 400, err);
		goto out;
	}
	token = json_string_value(json_object_get(q, "token"));
	if (settings_auth(env, req, token, &client, ans) < 0)
		goto out;
	title = json_string_value(json_object_get(schema_json(s->schema),
	    "title"));
	if (title == NULL)
		title = "Settings";
	settings__buf_add(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">\n<title>");
	settings__buf_esc(&b, title);
	settings__buf_add(&b, "</title>\n<link rel=\"stylesheet\" href=\"");
	settings_base(&b, env->conf->endpoint);
	settings__buf_add(&b, "settings/settings.css\">\n<script src=\"");
	settings_base(&b, env->conf->endpoint);
	settings__buf_add(&b, "settings/settings.js\" defer></script>\n"
	    "</head>\n<body>\n<form id=\"bm-settings\" method=\"post\" "
	    "novalidate action=\"");
	settings_base(&b, env->conf->endpoint);
	/* The token reaches the script here, never in an inline script. */
	settings__buf_add(&b, "settings\" data-token=\"");
	settings__buf_esc(&b, token);
	settings__buf_add(&b, "\" data-origin=\"");
	settings__buf_esc(&b, env->conf->botmatic_origin);
	settings__buf_add(&b, "\">\n<h1>");
	settings__buf_esc(&b, title);
	settings__buf_add(&b, "</h1>\n");
	for (i = 0; i < s->n; i++)
		settings_field_html(&b, &s->f[i], settings_current(client));
	settings__buf_add(&b, "<p class=\"status\" role=\"status\" "
	    "aria-live=\"polite\"></p>\n<button type=\"submit\">Save</button>\n"
	    "</form>\n</body>\n</html>\n");
	if (b.failed || settings_headers(ans, env->conf) < 0) {
		app_log(BM_LOG_ERROR, req->id, "settings", "out of memory");
		app_answer_error(ans, 500, "out of memory");
		goto out;
	}
	ans->status = 200;
	ans->content_type = "text/html; charset=utf-8";
	ans->body = b.p;
	ans->body_len = b.len;
	b.p = NULL;
out:
	if (b.p != NULL) {
		explicit_bzero(b.p, b.cap);
		free(b.p);
	}
	json_decref(client);
	json_decref(q);
}

/* --- the save ---------------------------------------------------------- */

/* Adds name to the array fields unless it is there already. */
static void
settings_error_field(json_t *fields, const char *name)
{
	const json_t *v;
	size_t i;

	json_array_foreach(fields, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return;
	json_array_append_new(fields, json_string(name));
}

/* Strict decimal integer: an optional '-', then digits. */
static int
settings_parse_int(const char *s, json_int_t *v)
{
	size_t len = strlen(s), d = s[0] == '-' ? 1 : 0;
	long long x;
	char *end;

	if (len == d || len - d > 18 || strspn(s + d, "0123456789") != len - d)
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = (json_int_t)x;
	return 0;
}

static int
settings_parse_num(const char *s, double *v)
{
	char *end;

	if (*s == '\0' || strspn(s, "0123456789+-.eE") != strlen(s))
		return -1;
	errno = 0;
	*v = strtod(s, &end);
	return errno == 0 && *end == '\0' && isfinite(*v) ? 0 : -1;
}

/*
 * The value of a field submitted as text (a form): a new value, json null
 * for "unset", or NULL when the text is not a value of the field.
 */
static json_t *
settings_from_text(const struct settings_field *f, const char *t)
{
	const json_t *en, *e;
	json_int_t iv;
	double dv;
	size_t i;

	if (f->kind == SETTINGS_BOOLEAN) {
		if (strcmp(t, "true") == 0 || strcmp(t, "on") == 0 ||
		    strcmp(t, "1") == 0)
			return json_true();
		if (strcmp(t, "false") == 0 || strcmp(t, "0") == 0 ||
		    *t == '\0')
			return json_false();
		return NULL;
	}
	if (*t == '\0')
		return json_null();
	switch (f->kind) {
	case SETTINGS_STRING:
	case SETTINGS_PASSWORD:
		return json_string(t);
	case SETTINGS_INTEGER:
		return settings_parse_int(t, &iv) == 0 ? json_integer(iv) : NULL;
	case SETTINGS_NUMBER:
		if (settings_parse_int(t, &iv) == 0)
			return json_integer(iv);
		return settings_parse_num(t, &dv) == 0 ? json_real(dv) : NULL;
	case SETTINGS_ENUM:
		en = json_object_get(f->prop, "enum");
		json_array_foreach(en, i, e) {
			char *et = settings_text(e);
			int eq = et != NULL && strcmp(et, t) == 0;
			free(et);
			if (eq)
				return json_incref((json_t *)e);
		}
		return NULL;
	case SETTINGS_BOOLEAN:
	case SETTINGS_KIND__MAX:
	default:
		return NULL;
	}
}

/*
 * What the submission sub (form strings when form, else JSON values) makes
 * of the stored settings cur: *next (new) holds every field's new value,
 * json null for one cleared; fields it cannot take go to errs.  A password
 * left empty keeps what is stored; a field absent keeps it too, but for a
 * form's checkbox, which a browser leaves out when unchecked.
 */
static int
settings_next(const struct app_settings *s, const json_t *sub, int form,
    const json_t *cur, json_t **next, json_t *errs)
{
	json_t *n;
	size_t i;

	if ((*next = n = json_object()) == NULL)
		return -1;
	for (i = 0; i < s->n; i++) {
		const struct settings_field *f = &s->f[i];
		const json_t *in = json_object_get(sub, f->name);
		const json_t *old = json_object_get(cur, f->name);
		json_t *v = NULL;

		if (in == NULL && form && f->kind == SETTINGS_BOOLEAN)
			v = json_false();
		else if (in == NULL || (f->kind == SETTINGS_PASSWORD &&
		    (json_is_null(in) || (json_is_string(in) &&
		    json_string_length(in) == 0)))) {
			if (old == NULL)
				continue;
			v = json_incref((json_t *)old);
		} else if (form) {
			if ((v = settings_from_text(f, json_string_value(in)))
			    == NULL) {
				settings_error_field(errs, f->name);
				continue;
			}
		} else
			v = json_incref((json_t *)in);
		if (json_object_set_new(n, f->name, v) < 0)
			return -1;
	}
	return 0;
}

/* The field a validation error points at: its first token, unescaped. */
static void
settings_pointer_field(const char *ptr, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	if (*ptr++ != '/')
		return;
	for (; *ptr != '\0' && *ptr != '/' && o + 1 < cap; ptr++) {
		if (ptr[0] == '~' && ptr[1] == '1') {
			out[o++] = '/';
			ptr++;
		} else if (ptr[0] == '~' && ptr[1] == '0') {
			out[o++] = '~';
			ptr++;
		} else
			out[o++] = *ptr;
	}
	out[o] = '\0';
}

/* Runs the modules' validators; BM_OK, BM_FAIL (errs filled) or an error. */
static enum bm_rc
settings_modules(struct app_env *env, struct bm_req *req, const char *token,
    json_t *client, const json_t *values, json_t *errs)
{
	const struct app_registry *reg = env->reg;
	enum bm_rc rc, out = BM_OK;
	struct bm_ctx ctx;
	size_t i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.size = sizeof(ctx);
	ctx.request_id = req->id;
	ctx.kind = "settings";
	ctx.name = "settings";
	ctx.token = token;
	ctx.client = client;
	ctx.body = (json_t *)values;
	ctx.host = env->host;
	ctx.req = req;
	for (i = 0; reg != NULL && i < reg->nvalidators; i++) {
		ctx.module = reg->validators[i].module;
		rc = reg->validators[i].fn(&ctx, values, errs,
		    reg->validators[i].arg);
		if (rc == BM_OK)
			continue;
		if (rc != BM_FAIL) {
			app_log(BM_LOG_ERROR, req->id, ctx.module, "settings "
			    "validator failed (%d)", (int)rc);
			return rc == BM_ETEMP ? BM_ETEMP : BM_ERROR;
		}
		out = BM_FAIL;
	}
	return out;
}

void
app_settings_save(struct app_env *env, struct bm_req *req, int form,
    const char *body, size_t len, struct app_answer *ans)
{
	const struct app_settings *s = env->settings;
	json_t *sub = NULL, *client = NULL, *next = NULL, *check = NULL;
	json_t *errs = NULL;
	struct schema_error serr;
	json_error_t jerr;
	char err[256], field[SETTINGS_NAME_MAX + 1];
	const char *token, *key;
	json_t *v;
	enum bm_rc rc;
	size_t i;
	int invalid = 0;

	ans->what = "settings_save";
	if (form) {
		if (app_settings_form_decode(body, len, &sub, err,
		    sizeof(err)) < 0) {
			app_log(BM_LOG_INFO, req->id, "settings", "%s", err);
			app_answer_error(ans, 400, err);
			goto out;
		}
	} else if ((sub = json_loadb(body, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL || !json_is_object(sub)) {
		snprintf(err, sizeof(err), "invalid JSON: %s", sub == NULL ?
		    jerr.text : "not an object");
		app_log(BM_LOG_INFO, req->id, "settings", "%s", err);
		app_answer_error(ans, 400, err);
		goto out;
	}
	/* The token of the body is the one that counts, and the only one. */
	token = json_string_value(json_object_get(sub, "token"));
	if (settings_auth(env, req, token, &client, ans) < 0)
		goto out;
	if ((errs = json_array()) == NULL ||
	    settings_next(s, sub, form, settings_current(client), &next,
	    errs) < 0 || (check = json_object()) == NULL)
		goto nomem;
	/* What is validated and what modules see: cleared fields absent. */
	json_object_foreach(next, key, v)
		if (!json_is_null(v) && json_object_set(check, key, v) < 0)
			goto nomem;
	for (i = 0; i < s->n; i++)
		if (s->f[i].alone != NULL &&
		    schema_validate(s->f[i].alone, check, NULL) != 0)
			settings_error_field(errs, s->f[i].name);
	switch (schema_validate(s->schema, check, &serr)) {
	case 0:
		break;
	case 1:
		/* A rule across fields, or a field checked only here. */
		invalid = 1;
		settings_pointer_field(serr.pointer, field, sizeof(field));
		if (field[0] != '\0')
			settings_error_field(errs, field);
		app_log(BM_LOG_INFO, req->id, "settings", "invalid: %s",
		    serr.text);
		break;
	default:
		goto nomem;
	}
	if (json_array_size(errs) == 0 && !invalid) {
		rc = settings_modules(env, req, token, client, check, errs);
		if (rc == BM_ETEMP || rc == BM_ERROR) {
			app_answer_error(ans, rc == BM_ETEMP ? 503 : 500,
			    rc == BM_ETEMP ? "temporary failure, try again" :
			    "internal error");
			goto out;
		}
		invalid = rc != BM_OK;
	}
	if (json_array_size(errs) > 0 || invalid) {
		settings_json(ans, env->conf, 200, json_pack("{s:b, s:O}",
		    "success", 0, "errorFields", errs));
		goto out;
	}
	switch (app_ks_settings_merge(env->ks, req->id, token, next)) {
	case 0:
		app_log(BM_LOG_INFO, req->id, "settings", "saved %zu fields",
		    json_object_size(check));
		settings_json(ans, env->conf, 200, json_pack("{s:b}", "success",
		    1));
		break;
	case 1:
		/* Uninstalled between the check and the save. */
		settings_unauthorized(ans, env->conf);
		break;
	default:
		app_answer_error(ans, 503, "temporary failure, try again");
		break;
	}
	goto out;
nomem:
	app_log(BM_LOG_ERROR, req->id, "settings", "out of memory");
	app_answer_error(ans, 500, "out of memory");
out:
	json_decref(errs);
	json_decref(check);
	json_decref(next);
	json_decref(client);
	json_decref(sub);
}

/* --- form decoding ----------------------------------------------------- */

static int
settings_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes p[0..len) ('+' is a space) into out (len + 1 bytes). */
static int
settings_unescape(const char *p, size_t len, char *out, size_t *olen)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (p[i] == '+')
			out[o++] = ' ';
		else if (p[i] == '%') {
			if (i + 2 >= len)
				return -1;
			if ((hi = settings_hex((unsigned char)p[i + 1])) < 0 ||
			    (lo = settings_hex((unsigned char)p[i + 2])) < 0)
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			out[o++] = p[i];
	}
	out[o] = '\0';
	*olen = o;
	return 0;
}

int
app_settings_form_decode(const char *text, size_t len, json_t **out,
    char *err, size_t errlen)
{
	const char *p = text, *end = text + len, *amp, *eq;
	char *name = NULL, *value = NULL;
	json_t *obj = NULL, *v;
	size_t nlen, vlen, pairs = 0;
	int rc = -1;

	*out = NULL;
	if ((obj = json_object()) == NULL || (name = malloc(len + 1)) == NULL ||
	    (value = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	while (p < end) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp == p) {
			p++;
			continue;
		}
		if (++pairs > APP_SETTINGS_FIELDS_MAX * 2) {
			snprintf(err, errlen, "too many fields");
			goto out;
		}
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL)
			eq = amp;
		if (settings_unescape(p, (size_t)(eq - p), name, &nlen) < 0 ||
		    settings_unescape(eq < amp ? eq + 1 : amp, eq < amp ?
		    (size_t)(amp - eq - 1) : 0, value, &vlen) < 0) {
			snprintf(err, errlen, "malformed form encoding: a bad "
			    "%%-escape");
			goto out;
		}
		if (nlen == 0 || memchr(name, '\0', nlen) != NULL ||
		    memchr(value, '\0', vlen) != NULL) {
			snprintf(err, errlen, "malformed form encoding: an "
			    "empty name or a NUL byte");
			goto out;
		}
		if (json_object_get(obj, name) != NULL) {
			snprintf(err, errlen, "malformed form encoding: a "
			    "field given twice");
			goto out;
		}
		/* json_stringn refuses what is not UTF-8. */
		if ((v = json_stringn(value, vlen)) == NULL ||
		    json_object_setn_new(obj, name, nlen, v) < 0) {
			snprintf(err, errlen, "malformed form encoding: not "
			    "UTF-8");
			goto out;
		}
		p = amp < end ? amp + 1 : end;
	}
	*out = obj;
	obj = NULL;
	rc = 0;
out:
	if (value != NULL) {
		explicit_bzero(value, len + 1);
		free(value);
	}
	free(name);
	json_decref(obj);
	return rc;
}
