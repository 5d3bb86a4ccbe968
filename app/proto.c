#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"

enum app_route
app_proto_route(const char *path, const char *endpoint, const char **rest)
{
	size_t elen = strlen(endpoint);
	const char *p;

	*rest = NULL;
	if (path == NULL)
		return APP_ROUTE_NONE;
	if (strcmp(path, endpoint) == 0)
		return APP_ROUTE_WEBHOOK;
	/* "/hook" and "/hook/" are the same endpoint. */
	if (elen > 1 && endpoint[elen - 1] != '/' &&
	    strncmp(path, endpoint, elen) == 0 && strcmp(path + elen, "/") == 0)
		return APP_ROUTE_WEBHOOK;
	if (strncmp(path, endpoint, elen) != 0)
		return APP_ROUTE_NONE;
	p = path + elen;
	if (endpoint[elen - 1] != '/') {
		if (*p != '/')
			return APP_ROUTE_NONE;
		p++;
	}
	if (strncmp(p, "ext/", 4) != 0)
		return APP_ROUTE_NONE;
	*rest = p + 4;
	return APP_ROUTE_EXT;
}

/* Strict decimal length: digits only, at most max. */
static int
proto_parse_length(const char *s, unsigned long max, size_t *len, int *over)
{
	unsigned long v = 0;
	const char *p;

	*over = 0;
	if (*s == '\0' || strlen(s) > 20)
		return -1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (v > (max - (unsigned long)(*p - '0')) / 10) {
			*over = 1;
			/* Keep checking the syntax of what remains. */
			v = max;
			continue;
		}
		if (!*over)
			v = v * 10 + (unsigned long)(*p - '0');
	}
	if (*over || v > max) {
		*over = 1;
		return -1;
	}
	*len = (size_t)v;
	return 0;
}

int
app_proto_check_head(const char *method, const char *content_length,
    const char *content_type, unsigned long max_body, size_t *len, char *err,
    size_t errlen)
{
	size_t tlen;
	int over;

	if (method == NULL || strcmp(method, "POST") != 0) {
		snprintf(err, errlen, "method not allowed: use POST");
		return 405;
	}
	if (content_length == NULL || *content_length == '\0') {
		snprintf(err, errlen, "Content-Length required");
		return 411;
	}
	if (proto_parse_length(content_length, max_body, len, &over) < 0) {
		if (over) {
			snprintf(err, errlen, "request body too large (limit "
			    "%lu bytes)", max_body);
			return 413;
		}
		snprintf(err, errlen, "invalid Content-Length");
		return 400;
	}
	/* A missing type is taken as JSON; any other type is refused. */
	if (content_type != NULL && *content_type != '\0') {
		tlen = strcspn(content_type, "; \t");
		if (!((tlen == 16 &&
		    strncasecmp(content_type, "application/json", 16) == 0) ||
		    (tlen > 17 && strncasecmp(content_type, "application/", 12)
		    == 0 && strncasecmp(content_type + tlen - 5, "+json", 5)
		    == 0))) {
			snprintf(err, errlen, "unsupported Content-Type: "
			    "expected application/json");
			return 415;
		}
	}
	return 0;
}

/* A name: 1..APP_NAME_MAX bytes, no control characters. */
static int
proto_name_ok(const char *s)
{
	size_t len = strlen(s);
	const unsigned char *p;

	if (len == 0 || len > APP_NAME_MAX)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/*
 * Validates one envelope member: absent, null, false and "" count as
 * absent (the Node library tested truthiness); a string must be a valid
 * name; anything else is refused.
 */
static int
proto_member(json_t *body, const char *key, const char **out, char *err,
    size_t errlen)
{
	json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v) || json_is_false(v) ||
	    (json_is_string(v) && json_string_length(v) == 0))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"%s\" must be a string", key);
		return -1;
	}
	if (strlen(json_string_value(v)) != json_string_length(v) ||
	    !proto_name_ok(json_string_value(v))) {
		snprintf(err, errlen, "\"%s\" must be 1 to %d characters "
		    "without control characters", key, APP_NAME_MAX);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int
app_proto_envelope(const char *buf, size_t len, struct app_envelope *env,
    char *err, size_t errlen)
{
	json_error_t jerr;

	memset(env, 0, sizeof(*env));
	env->body = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (env->body == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return 400;
	}
	if (!json_is_object(env->body)) {
		snprintf(err, errlen, "the body must be a JSON object");
		goto bad;
	}
	if (proto_member(env->body, "event", &env->event, err, errlen) < 0 ||
	    proto_member(env->body, "action", &env->action, err, errlen) < 0)
		goto bad;
	env->data = json_object_get(env->body, "data");
	if (env->data == NULL)
		env->data = json_null();
	return 0;
bad:
	app_proto_envelope_free(env);
	return 400;
}

void
app_proto_envelope_free(struct app_envelope *env)
{
	json_decref(env->body);
	memset(env, 0, sizeof(*env));
}

int
app_proto_token(const char *authorization, char *out, size_t cap)
{
	const char *p = authorization;
	size_t len;

	out[0] = '\0';
	if (p == NULL)
		return 0;
	if (strncasecmp(p, "Bearer ", 7) == 0)
		p += 7;
	p += strspn(p, " \t");
	len = strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len >= cap)
		return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int
app_proto_token_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = (unsigned char)(la != lb);
	volatile unsigned char acc = 0;

	/* Walk the expected length whatever the input, compare every byte. */
	for (i = 0; i < lb; i++)
		acc |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
	return (acc | diff) == 0;
}

json_t *
app_proto_unknown(const char *kind, const char *name)
{
	char msg[APP_NAME_MAX + 64];

	snprintf(msg, sizeof(msg), "No %s \"%s\" defined", kind, name);
	return json_pack("{s:b, s:s, s:{s:s}}", "success", 0, "type", "data",
	    "data", "error", msg);
}

json_t *
app_proto_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "success", 0, "error", msg);
}

int
app_proto_result(enum bm_rc rc, json_t *reply, json_t **out)
{
	*out = NULL;
	if ((rc != BM_OK && rc != BM_FAIL) || !json_is_object(reply)) {
		json_decref(reply);
		return 500;
	}
	if (json_object_set_new(reply, "success",
	    json_boolean(rc == BM_OK)) < 0) {
		json_decref(reply);
		return 500;
	}
	*out = reply;
	return 200;
}

const char *
app_proto_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

int
app_proto_request_id(const char *id, char *out, size_t cap)
{
	size_t len = id == NULL ? 0 : strlen(id);

	if (len == 0 || len > 64 || len >= cap || strspn(id,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
	    != len)
		return -1;
	memcpy(out, id, len + 1);
	return 0;
}
