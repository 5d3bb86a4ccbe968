/*
 * dispatch.h - from a parsed envelope to an answer: authentication as
 * SPEC §3, then the event or action handlers, then the success envelope.
 * HTTP statuses are decided here and in proto.c only.
 */
#ifndef APP_DISPATCH_H
#define APP_DISPATCH_H

#include <jansson.h>

#include "botmatic.h"
#include "conf.h"
#include "keystore.h"
#include "mapping/mapping.h"
#include "negcache.h"
#include "proto.h"
#include "registry.h"
#include "req.h"

/* What a responder holds for the life of its process. */
struct app_env {
	const struct app_conf *conf;       /* borrowed */
	const struct app_registry *reg;    /* borrowed */
	struct app_botmatic *botmatic;     /* owned by the responder */
	struct app_keystore *ks;           /* owned by the responder */
	struct app_negcache *neg;          /* shared by every responder */
	const struct mapping *map;         /* BM_MAPPINGS or NULL (borrowed) */
	const struct bm_consumer *consumer;/* the external consumer, or NULL */
	const char *ext_id_key;            /* member holding external ids */
};

/* An answer to send. */
struct app_answer {
	int status;
	const char *content_type;   /* static string */
	json_t *json;               /* body when JSON (owned) */
	const char *text;           /* body when plain text (static) */
	const char *what;           /* "event install", ... for the log line */
};

/*
 * Answers one webhook.  authorization is the raw header value or NULL.
 * Fills ans (release with app_answer_clear).
 */
void app_dispatch(struct app_env *env, struct bm_req *req,
    const struct app_envelope *envl, const char *authorization,
    struct app_answer *ans);

/* Sets ans to a JSON error {"success":false,"error":msg} with status. */
void app_answer_error(struct app_answer *ans, int status, const char *msg);

void app_answer_clear(struct app_answer *ans);

#endif
