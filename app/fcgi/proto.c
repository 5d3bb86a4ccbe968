#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fcgi/fcgi.h"

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
	if (strcmp(p, "settings") == 0)
		return APP_ROUTE_SETTINGS;
	if (strncmp(p, "settings/", 9) == 0) {
		*rest = p + 9;
		return APP_ROUTE_SETTINGS_ASSET;
	}
	if (strncmp(p, "oauth/", 6) == 0) {
		*rest = p + 6;
		return APP_ROUTE_OAUTH;
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
app_proto_check_method(const char *method, const char *allow, char *err,
    size_t errlen)
{
	size_t mlen = method == NULL ? 0 : strlen(method);
	const char *p;

	for (p = allow; mlen > 0 && *p != '\0'; p += strspn(p, ", ")) {
		size_t n = strcspn(p, ", ");
		if (n == mlen && strncmp(p, method, n) == 0)
			return 0;
		p += n;
	}
	snprintf(err, errlen, "method not allowed: use %s", allow);
	return 405;
}

/* The media type of a Content-Type value is exactly type (n bytes). */
static int
proto_type_is(const char *ct, size_t tlen, const char *type)
{
	return tlen == strlen(type) && strncasecmp(ct, type, tlen) == 0;
}

int
app_proto_check_body(const char *content_length, const char *content_type,
    unsigned long max_body, int accept_form, int *form, size_t *len,
    char *err, size_t errlen)
{
	size_t tlen;
	int over;

	if (form != NULL)
		*form = 0;
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
		if (accept_form && proto_type_is(content_type, tlen,
		    "application/x-www-form-urlencoded")) {
			*form = 1;
			return 0;
		}
		if (!(proto_type_is(content_type, tlen, "application/json") ||
		    (tlen > 17 && strncasecmp(content_type, "application/", 12)
		    == 0 && strncasecmp(content_type + tlen - 5, "+json", 5)
		    == 0))) {
			snprintf(err, errlen, "unsupported Content-Type: "
			    "expected application/json%s", accept_form ?
			    " or application/x-www-form-urlencoded" : "");
			return 415;
		}
	}
	return 0;
}

int
app_proto_check_head(const char *method, const char *content_length,
    const char *content_type, unsigned long max_body, size_t *len, char *err,
    size_t errlen)
{
	int status;

	if ((status = app_proto_check_method(method, "POST", err, errlen)) != 0)
		return status;
	return app_proto_check_body(content_length, content_type, max_body, 0,
	    NULL, len, err, errlen);
}

const char *
app_proto_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
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
