/*
 * fuzz-request-head.c - what the server checks of a request before it reads
 * a body, from bytes an attacker chooses: the input is split at NUL bytes
 * into method, Content-Length, Content-Type, path, request id and
 * Authorization header.  Every check (the method against a route's list
 * too) must return one of its documented answers, its message must be a bounded string, and the token taken from
 * the header must fit its buffer and be a suffix-trimmed part of it.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi.h"

#define NPARTS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *part[NPARTS], err[512], id[72], token[APP_TOKEN_MAX];
	const char *rest;
	size_t i, n = 0, len = 0;
	enum app_route r;
	int st;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* Absent parts are NULL, as absent headers are. */
	part[n++] = buf;
	for (i = 0; i < size && n < NPARTS; i++)
		if (buf[i] == '\0')
			part[n++] = buf + i + 1;
	while (n < NPARTS)
		part[n++] = NULL;

	err[0] = '\0';
	st = app_proto_check_head(part[0], part[1], part[2], 1048576, &len,
	    err, sizeof(err));
	if (st != 0 && st != 400 && st != 405 && st != 411 && st != 413 &&
	    st != 415)
		abort();
	if (st == 0 && len > 1048576)
		abort();
	if (st != 0 && (err[0] == '\0' || strlen(err) >= sizeof(err)))
		abort();
	st = app_proto_check_method(part[0], "GET, POST", err, sizeof(err));
	if (st != 0 && (st != 405 || err[0] == '\0'))
		abort();
	if (part[3] != NULL) {
		/* rest: set for the routes that have one (ext/,
		 * settings/<name>, oauth/), inside path. */
		r = app_proto_route(part[3], "/", &rest);
		if ((r == APP_ROUTE_EXT || r == APP_ROUTE_SETTINGS_ASSET ||
		    r == APP_ROUTE_OAUTH) != (rest != NULL) ||
		    (rest != NULL && (rest < part[3] ||
		    rest > part[3] + strlen(part[3]))))
			abort();
		r = app_proto_route(part[3], "/hook", &rest);
		if (r == APP_ROUTE_EXT &&
		    strncmp(part[3], "/hook/ext/", 10) != 0)
			abort();
	}
	if (app_proto_request_id(part[4], id, sizeof(id)) == 0 &&
	    (strlen(id) == 0 || strlen(id) > 64))
		abort();
	if (app_auth_token(part[5], token, sizeof(token)) == 0) {
		if (strlen(token) >= sizeof(token) || (part[5] != NULL &&
		    token[0] != '\0' && strstr(part[5], token) == NULL))
			abort();
		/* The comparison must agree with strcmp. */
		if (app_auth_token_eq(token, "tok") != (strcmp(token, "tok") == 0))
			abort();
	}
	free(buf);
	return 0;
}
