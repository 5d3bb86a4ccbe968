/*
 * proto.h - the Botmatic webhook protocol, without FastCGI: checking the
 * request head, parsing the envelope, building the answers of SPEC §2.
 * Pure functions of their arguments, so unit tests drive them directly.
 */
#ifndef APP_PROTO_H
#define APP_PROTO_H

#include <stddef.h>

#include <jansson.h>

#include <botmatic/module.h>

/* Longest event or action name accepted. */
#define APP_NAME_MAX 256
/* Longest Authorization header accepted. */
#define APP_TOKEN_MAX 4096

enum app_route {
	APP_ROUTE_NONE = 0,  /* not ours: 404 */
	APP_ROUTE_WEBHOOK,   /* the endpoint Botmatic posts to */
	APP_ROUTE_EXT,       /* <endpoint>ext/...: the external service's */
	APP_ROUTE__MAX
};

/*
 * Which route path (no query string) takes under endpoint.  For
 * APP_ROUTE_EXT, *rest points at what follows "ext/" (borrowed from path).
 */
enum app_route app_proto_route(const char *path, const char *endpoint,
    const char **rest);

/*
 * Checks what is known before the body is read.  method, content_length and
 * content_type may be NULL (absent).  Returns 0 and sets *len, or an HTTP
 * status (405, 411, 400, 413, 415) with a message in err.
 */
int app_proto_check_head(const char *method, const char *content_length,
    const char *content_type, unsigned long max_body, size_t *len, char *err,
    size_t errlen);

/* A parsed request body. */
struct app_envelope {
	json_t *body;        /* the whole body (owned: app_proto_envelope_free) */
	json_t *data;        /* body.data, or JSON null (borrowed from body) */
	const char *event;   /* body.event when a non-empty string, else NULL */
	const char *action;  /* body.action likewise */
};

/*
 * Parses and validates a body of len bytes.  Returns 0, or 400 with the
 * reason in err (not UTF-8 JSON, not an object, duplicate keys, a field of
 * the wrong type).
 */
int app_proto_envelope(const char *buf, size_t len, struct app_envelope *env,
    char *err, size_t errlen);
void app_proto_envelope_free(struct app_envelope *env);

/*
 * The token of an Authorization header value ("Bearer <token>", or the
 * whole value as the Node library accepted), written into out (cap bytes).
 * Returns 0 with out = "" when there is none, -1 when it is over the cap.
 */
int app_proto_token(const char *authorization, char *out, size_t cap);

/* Compares two NUL-terminated strings in time independent of where they
 * differ.  Returns 1 when equal. */
int app_proto_token_eq(const char *a, const char *b);

/* {"success":false,"type":"data","data":{"error":"No <kind> \"<name>\" defined"}}; new. */
json_t *app_proto_unknown(const char *kind, const char *name);

/* {"success":false,"error":msg}; new, NULL when out of memory. */
json_t *app_proto_error(const char *msg);

/*
 * Turns what a handler returned into the answer: BM_OK / BM_FAIL with an
 * object add "success": true / false (status 200).  Steals reply.  Returns
 * the HTTP status and stores the body in *out (new), or returns 500 with
 * *out NULL when the result is unusable (the caller logs and answers).
 */
int app_proto_result(enum bm_rc rc, json_t *reply, json_t **out);

/* The reason phrase of a status we send. */
const char *app_proto_reason(int status);

/* Copies id when it is 1..64 of [A-Za-z0-9._-]; returns 0, else -1. */
int app_proto_request_id(const char *id, char *out, size_t cap);

#endif
