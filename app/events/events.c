/*
 * events/events.c - the events file (BM_EVENTS), the route receiving the
 * external service's events, and the jobs that fire them: one per module
 * handler of the type ("ev_handler") and the campaign event ("ev_campaign"),
 * written in the transaction that claims the delivery id, so a crash
 * leaves both or neither.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "events/events_int.h"
#include "keystore/keystore.h"
#include "outbound/outbound.h"
#include "schema/schema.h"
#include "sync/sync.h"

/* Longest contact value taken from a payload (an ext id or an email). */
#define EV_CONTACT_MAX 512

/* --- the file ---------------------------------------------------------- */

void
app_events_free(struct app_events *evs)
{
	size_t i;

	if (evs == NULL)
		return;
	for (i = 0; i < evs->n; i++) {
		free(evs->ev[i].type);
		schema_free(evs->ev[i].schema);
		free(evs->ev[i].topic);
		free(evs->ev[i].contact);
		free(evs->ev[i].campaign);
	}
	free(evs->ev);
	free(evs);
}

const struct app_event *
app_events_find(const struct app_events *evs, const char *type)
{
	size_t i;

	for (i = 0; evs != NULL && i < evs->n; i++)
		if (strcmp(evs->ev[i].type, type) == 0)
			return &evs->ev[i];
	return NULL;
}

/* A type is a path segment we can route: [a-z0-9_.-], 1..64. */
static int
ev_type_ok(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n <= APP_EVENT_TYPE_MAX && strcmp(t, ".") != 0 &&
	    strcmp(t, "..") != 0 &&
	    strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* RFC 6901: "" or "/"-separated tokens, "~" only as ~0 or ~1.  Returns
 * NULL when p is one, else the reason (static). */
static const char *
ev_pointer_check(const char *p)
{
	const char *q;

	if (*p == '\0')
		return "an empty pointer names the whole payload, not a contact";
	if (*p != '/')
		return "a JSON Pointer starts with \"/\"";
	for (q = p; *q != '\0'; q++)
		if (*q == '~' && q[1] != '0' && q[1] != '1')
			return "\"~\" not followed by 0 or 1";
	return NULL;
}

const json_t *
app_events__pointer(const json_t *doc, const char *p)
{
	char tok[256];
	const char *end;
	size_t n, i, o;
	char *e;
	unsigned long idx;

	while (doc != NULL && *p == '/') {
		p++;
		end = p + strcspn(p, "/");
		n = (size_t)(end - p);
		if (n >= sizeof(tok))
			return NULL;
		for (i = o = 0; i < n; i++) {
			if (p[i] == '~' && i + 1 < n) {
				tok[o++] = p[i + 1] == '1' ? '/' : '~';
				i++;
			} else
				tok[o++] = p[i];
		}
		tok[o] = '\0';
		if (json_is_object(doc))
			doc = json_object_get(doc, tok);
		else if (json_is_array(doc)) {
			if (o == 0 || (o > 1 && tok[0] == '0') ||
			    strspn(tok, "0123456789") != o)
				return NULL;
			idx = strtoul(tok, &e, 10);
			doc = json_array_get(doc, idx);
		} else
			return NULL;
		p = end;
	}
	return *p == '\0' ? doc : NULL;
}

static const char *const ev_members[] = {
	"schema", "topic", "contact", "campaign_event", "verify", NULL
};

/* One event of the file; err gets the reason alone. */
static int
ev_load_one(struct app_event *ev, const char *type, const json_t *o,
    char *err, size_t errlen)
{
	struct schema_error serr;
	const json_t *v, *c;
	const char *key, *why, *ptr;
	size_t i;
	int sc;

	if (!ev_type_ok(type)) {
		snprintf(err, errlen, "the type must be 1 to %d characters of "
		    "a-z, 0-9, \"_\", \".\", \"-\"", APP_EVENT_TYPE_MAX);
		return -1;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen, "not an object");
		return -1;
	}
	json_object_foreach((json_t *)o, key, v) {
		for (i = 0; ev_members[i] != NULL; i++)
			if (strcmp(key, ev_members[i]) == 0)
				break;
		if (ev_members[i] == NULL) {
			snprintf(err, errlen, "unknown member \"%.64s\" (schema, "
			    "topic, contact, campaign_event, verify)", key);
			return -1;
		}
	}
	if ((ev->type = strdup(type)) == NULL)
		goto nomem;
	ev->scheme = APP_WH_STANDARD;
	if ((v = json_object_get(o, "verify")) != NULL) {
		if (!json_is_string(v) ||
		    (sc = app_wh_scheme_parse(json_string_value(v))) < 0) {
			snprintf(err, errlen, "verify: unknown scheme (standard-"
			    "webhooks, shopify, github, stripe)");
			return -1;
		}
		ev->scheme = (enum app_wh_scheme)sc;
	}
	if ((v = json_object_get(o, "schema")) != NULL &&
	    schema_compile(v, &ev->schema, &serr) < 0) {
		snprintf(err, errlen, "schema: %.900s", serr.text);
		return -1;
	}
	if ((v = json_object_get(o, "topic")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 256 ||
		    !app_http_header_safe(json_string_value(v))) {
			snprintf(err, errlen, "topic: not a string of 1 to 256 "
			    "printable characters");
			return -1;
		}
		if ((ev->topic = strdup(json_string_value(v))) == NULL)
			goto nomem;
	}
	if ((v = json_object_get(o, "campaign_event")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 256) {
			snprintf(err, errlen, "campaign_event: not a string of 1 "
			    "to 256 characters");
			return -1;
		}
		if ((ev->campaign = strdup(json_string_value(v))) == NULL)
			goto nomem;
	}
	if ((c = json_object_get(o, "contact")) != NULL) {
		if (!json_is_object(c) || json_object_size(c) != 1 ||
		    (json_object_get(c, "ext_id") == NULL &&
		    json_object_get(c, "email") == NULL)) {
			snprintf(err, errlen, "contact: expected {\"ext_id\": "
			    "<JSON Pointer>} or {\"email\": <JSON Pointer>}");
			return -1;
		}
		ev->by_email = json_object_get(c, "email") != NULL;
		v = json_object_get(c, ev->by_email ? "email" : "ext_id");
		ptr = json_string_value(v);
		if (ptr == NULL || (why = ev_pointer_check(ptr)) != NULL) {
			snprintf(err, errlen, "contact: bad JSON Pointer: %s",
			    ptr == NULL ? "not a string" : why);
			return -1;
		}
		if ((ev->contact = strdup(ptr)) == NULL)
			goto nomem;
	}
	if (ev->campaign != NULL && ev->contact == NULL) {
		snprintf(err, errlen, "campaign_event needs a contact");
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
app_events_load(const char *path, struct app_events **out, char *err,
    size_t errlen)
{
	struct app_events *evs = NULL;
	json_error_t je;
	json_t *root = NULL, *events, *v;
	const char *type;
	char why[1024];
	int ret = -1;

	*out = NULL;
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
		goto out;
	}
	events = json_object_get(root, "events");
	if (!json_is_object(root) || !json_is_object(events) ||
	    json_object_size(root) != 1) {
		snprintf(err, errlen, "%s: expected {\"events\": {\"<type>\": "
		    "{...}, ...}}", path);
		goto out;
	}
	if ((evs = calloc(1, sizeof(*evs))) == NULL ||
	    (json_object_size(events) > 0 && (evs->ev = calloc(
	    json_object_size(events), sizeof(*evs->ev))) == NULL)) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	json_object_foreach(events, type, v) {
		if (ev_load_one(&evs->ev[evs->n], type, v, why,
		    sizeof(why)) < 0) {
			evs->n++;
			snprintf(err, errlen, "%s: event \"%.64s\": %s", path,
			    type, why);
			goto out;
		}
		if (evs->ev[evs->n].topic != NULL)
			evs->topics = 1;
		evs->n++;
	}
	*out = evs;
	evs = NULL;
	ret = 0;
out:
	app_events_free(evs);
	json_decref(root);
	return ret;
}

/* --- the route ---------------------------------------------------------- */

/* The contact's value at ev->contact: a string or an integer, as text. */
static int
ev_contact_value(const struct app_event *ev, const json_t *payload,
    char *buf, size_t cap)
{
	const json_t *v = app_events__pointer(payload, ev->contact);

	if (json_is_string(v) && json_string_length(v) > 0 &&
	    json_string_length(v) < cap && strlen(json_string_value(v)) ==
	    json_string_length(v)) {
		memcpy(buf, json_string_value(v), json_string_length(v) + 1);
		return 0;
	}
	if (json_is_integer(v) && !ev->by_email) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return 0;
	}
	return -1;
}

static void
ev_answer(struct app_answer *ans, json_t *o)
{
	if (o == NULL) {
		app_answer_error(ans, 500, "out of memory");
		return;
	}
	ans->status = 200;
	ans->content_type = "application/json";
	ans->json = o;
}

/* The jobs an accepted delivery of ev fires into jobs (payloads new),
 * *n of them.  Returns 0, or -1 with the reason for a 400 in why. */
static int
ev_jobs(struct app_env *env, const struct app_event *ev,
    const struct app_wh_delivery *d, json_t *payload, struct app_ks_jobspec
    *jobs, json_t **payloads, size_t cap, size_t *n, char *contact_key,
    char *why, size_t whylen)
{
	const struct app_registry *reg = env->reg;
	char value[EV_CONTACT_MAX];
	size_t i;

	*n = 0;
	snprintf(contact_key, APP_WH_ID_MAX + 8, "ev:%s", d->id);
	for (i = 0; i < reg->next_events; i++) {
		if (strcmp(reg->ext_events[i].key, ev->type) != 0)
			continue;
		/* The campaign event always has its place. */
		if (*n == cap - 1) {
			app_log(BM_LOG_WARN, NULL, "events", "%s: more than %zu "
			    "handlers: the others are not run", ev->type,
			    cap - 1);
			break;
		}
		payloads[*n] = json_pack("{s:s, s:s, s:s, s:O}", "type",
		    ev->type, "module", reg->ext_events[i].module, "delivery",
		    d->id, "data", payload);
		jobs[*n].kind = "ev_handler";
		jobs[*n].contact = contact_key;
		jobs[*n].payload = payloads[*n];
		if (payloads[*n] == NULL)
			return -2;
		(*n)++;
	}
	if (ev->campaign != NULL && *n < cap) {
		if (ev_contact_value(ev, payload, value, sizeof(value)) < 0) {
			snprintf(why, whylen, "%s: the contact (%s) is missing or "
			    "not a string%s", ev->contact, ev->by_email ?
			    "email" : "ext id", ev->by_email ? "" :
			    " or an integer");
			return -1;
		}
		payloads[*n] = json_pack("{s:s, s:s, s:s, s:s}", "type",
		    ev->type, "campaign_event", ev->campaign, "delivery", d->id,
		    ev->by_email ? "email" : "ext_id", value);
		jobs[*n].kind = "ev_campaign";
		jobs[*n].contact = contact_key;
		jobs[*n].payload = payloads[*n];
		if (payloads[*n] == NULL)
			return -2;
		(*n)++;
	}
	return 0;
}

/* Jobs one delivery fires at most (handlers and the campaign event). */
#define EV_JOBS_MAX 33

int
app_events_route(struct app_env *env, struct bm_req *req, const char *rest,
    const char *body, size_t len, app_wh_header_fn get, void *arg,
    struct app_answer *ans)
{
	char install_id[APP_KS_INSTALL_ID_LEN + 1], type[APP_EVENT_TYPE_MAX + 1];
	char contact_key[APP_WH_ID_MAX + 8], why[600];
	struct app_ks_jobspec jobs[EV_JOBS_MAX];
	json_t *payloads[EV_JOBS_MAX];
	uint64_t ids[EV_JOBS_MAX];
	const struct app_event *ev;
	struct app_wh_delivery d;
	struct schema_error serr;
	json_error_t je;
	char *token = NULL, *secret = NULL;
	json_t *payload = NULL;
	const char *t;
	size_t n = 0, i, tl;
	int rc;

	/* <32 hex>/events/<type> */
	if (strlen(rest) < APP_KS_INSTALL_ID_LEN + 8 ||
	    strspn(rest, "0123456789abcdef") != APP_KS_INSTALL_ID_LEN ||
	    strncmp(rest + APP_KS_INSTALL_ID_LEN, "/events/", 8) != 0)
		return 0;
	memcpy(install_id, rest, APP_KS_INSTALL_ID_LEN);
	install_id[APP_KS_INSTALL_ID_LEN] = '\0';
	t = rest + APP_KS_INSTALL_ID_LEN + 8;
	tl = strlen(t);
	ans->what = "ext event";
	if (tl == 0 || tl > APP_EVENT_TYPE_MAX ||
	    (ev = app_events_find(env->events, t)) == NULL) {
		app_log(BM_LOG_INFO, req->id, "events", "unknown event type");
		app_answer_error(ans, 404, "unknown event type");
		goto out;
	}
	memcpy(type, t, tl + 1);
	rc = app_ks_install_by_id(env->ks, req->id, install_id, &token,
	    &secret);
	if (rc < 0) {
		app_answer_error(ans, 503, "temporary failure, try again");
		goto out;
	}
	if (rc != 0) {
		app_log(BM_LOG_INFO, req->id, "events", "unknown installation");
		app_answer_error(ans, 404, "unknown installation");
		goto out;
	}
	/* The raw bytes first: nothing of an unsigned body is parsed. */
	switch (app_wh_check(env->ks, env->conf, req->id, ev->scheme, get, arg,
	    token, secret, body, len, &d)) {
	case APP_WH_ACCEPT:
		break;
	case APP_WH_TEMP:
		app_answer_error(ans, 503, "temporary failure, try again");
		goto out;
	default:
		app_answer_error(ans, 401, "bad signature");
		goto out;
	}
	snprintf(req->install_id, sizeof(req->install_id), "%s", install_id);
	if ((payload = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL) {
		snprintf(why, sizeof(why), "payload is not valid JSON: line %d: "
		    "%s", je.line, je.text);
		app_log(BM_LOG_INFO, req->id, "events", "%s: %s", type, why);
		app_answer_error(ans, 400, why);
		goto out;
	}
	/* Stripe names the delivery in the payload, now signed. */
	if (d.id[0] == '\0' && app_wh_set_id(&d, json_string_value(
	    json_object_get(payload, "id")) != NULL ? json_string_value(
	    json_object_get(payload, "id")) : "") < 0) {
		app_answer_error(ans, 400, "the payload has no event \"id\"");
		goto out;
	}
	if (ev->schema != NULL &&
	    (rc = schema_validate(ev->schema, payload, &serr)) != 0) {
		if (rc < 0) {
			app_answer_error(ans, 500, "out of memory");
			goto out;
		}
		app_log(BM_LOG_INFO, req->id, "events", "%s: invalid payload: "
		    "%s", type, serr.text);
		ans->status = 400;
		ans->content_type = "application/json";
		ans->json = json_pack("{s:b, s:s, s:s, s:s}", "success", 0,
		    "error", serr.text, "pointer", serr.pointer, "keyword",
		    serr.keyword);
		if (ans->json == NULL)
			app_answer_error(ans, 500, "out of memory");
		goto out;
	}
	if ((rc = ev_jobs(env, ev, &d, payload, jobs, payloads, EV_JOBS_MAX,
	    &n, contact_key, why, sizeof(why))) < 0) {
		if (rc == -2) {
			app_answer_error(ans, 500, "out of memory");
			goto out;
		}
		app_log(BM_LOG_INFO, req->id, "events", "%s: %s", type, why);
		app_answer_error(ans, 400, why);
		goto out;
	}
	rc = app_ks_delivery_accept(env->ks, req->id, install_id, d.id,
	    APP_WH_DEDUP_TTL, token, jobs, n, ids);
	if (rc < 0) {
		app_answer_error(ans, 503, "temporary failure, try again");
		goto out;
	}
	if (rc == 1) {
		app_log(BM_LOG_INFO, req->id, "events", "%s: delivery %s already "
		    "accepted: nothing fired", type, d.id);
		ev_answer(ans, json_pack("{s:b, s:s, s:b}", "success", 1, "id",
		    d.id, "duplicate", 1));
		goto out;
	}
	app_log(BM_LOG_INFO, req->id, "events", "%s: delivery %s accepted, "
	    "%zu job%s queued", type, d.id, n, n == 1 ? "" : "s");
	app_metrics_add(APP_METRIC_JOBS, APP_JOB_QUEUED, 0, n);
	ev_answer(ans, json_pack("{s:b, s:s}", "success", 1, "id", d.id));
out:
	for (i = 0; i < n; i++)
		json_decref(payloads[i]);
	json_decref(payload);
	if (token != NULL)
		explicit_bzero(token, strlen(token));
	free(token);
	if (secret != NULL)
		explicit_bzero(secret, strlen(secret));
	free(secret);
	return 1;
}

/* --- the jobs that fire them -------------------------------------------- */

/* A failure result: transient (retried) or for good. */
static json_t *
ev_fail(int transient, const char *fmt, const char *a)
{
	char why[600];

	snprintf(why, sizeof(why), fmt, a);
	return transient ? json_pack("{s:b, s:s, s:i}", "success", 0, "error",
	    why, "status", 503) : json_pack("{s:b, s:s}", "success", 0,
	    "error", why);
}

/* ev_handler: the module's handler of the type, once. */
static json_t *
ev_run_handler(struct app_env *env, struct bm_ctx *ctx, const json_t *p)
{
	const char *type = json_string_value(json_object_get(p, "type"));
	const char *module = json_string_value(json_object_get(p, "module"));
	const struct app_registry *reg = env->reg;
	const struct app_handler *h = NULL;
	json_t *reply = NULL, *client = NULL, *res;
	enum bm_rc rc;
	size_t i;

	for (i = 0; type != NULL && module != NULL && i < reg->next_events;
	    i++)
		if (strcmp(reg->ext_events[i].key, type) == 0 &&
		    strcmp(reg->ext_events[i].module, module) == 0) {
			h = &reg->ext_events[i];
			break;
		}
	if (h == NULL)
		return ev_fail(0, "no handler of module %s for this type (not "
		    "loaded any more?)", module != NULL ? module : "?");
	if (app_ks_install_get(env->ks, ctx->request_id, ctx->token, &client)
	    < 0)
		return ev_fail(1, "%s", "keystore failure");
	ctx->kind = "ext_event";
	ctx->name = type;
	ctx->module = h->module;
	ctx->client = client;
	ctx->body = json_object_get(p, "data");
	rc = h->fn(ctx, json_object_get(p, "data"), &reply, h->arg);
	ctx->client = NULL;
	json_decref(client);
	json_decref(reply);
	if (rc == BM_OK)
		res = json_pack("{s:b}", "success", 1);
	else if (rc == BM_ETEMP)
		res = ev_fail(1, "handler of module %s asked to be retried",
		    h->module);
	else
		res = ev_fail(0, "handler of module %s failed", h->module);
	return res;
}

/* The Botmatic id of the payload's contact (new), or a failure (*res). */
static char *
ev_botmatic_id(struct app_env *env, struct bm_ctx *ctx, const json_t *p,
    json_t **res)
{
	const char *eid = json_string_value(json_object_get(p, "ext_id"));
	const char *email = json_string_value(json_object_get(p, "email"));
	char idbuf[EV_CONTACT_MAX];
	json_t *found = NULL;
	char *bid = NULL;
	int rc;

	*res = NULL;
	if (eid == NULL && email != NULL) {
		/*
		 * SPEC §5 has no contact search on Botmatic: the email is
		 * looked up on the external service (the consumer's
		 * get_by_email), whose contact's ext id is then linked.
		 */
		if (env->consumer == NULL || env->consumer->get_by_email ==
		    NULL) {
			*res = ev_fail(0, "%s", "a contact by email needs contact "
			    "sync (BM_MAPPINGS and an external consumer)");
			goto out;
		}
		found = env->consumer->get_by_email(ctx, email,
		    env->consumer->arg);
		if (found == NULL || !json_is_true(json_object_get(found,
		    "success"))) {
			/* Not found, or the service failed (retried). */
			*res = found != NULL ? found : ev_fail(0, "%s",
			    "out of memory");
			found = NULL;
			goto out;
		}
		if (app_sync_id_text(json_object_get(json_object_get(found,
		    "contact"), env->ext_id_key), idbuf, sizeof(idbuf)) < 0) {
			*res = ev_fail(0, "the external contact found by email has "
			    "no %s", env->ext_id_key);
			goto out;
		}
		eid = idbuf;
	}
	if (eid == NULL) {
		*res = ev_fail(0, "%s", "damaged job: no contact");
		goto out;
	}
	rc = app_ks_botmatic_id_get(env->ks, ctx->request_id, ctx->token, eid,
	    &bid);
	if (rc < 0)
		*res = ev_fail(1, "%s", "keystore failure");
	else if (rc == 1)
		*res = ev_fail(0, "%s", "no Botmatic contact is linked to the "
		    "event's contact");
out:
	json_decref(found);
	return bid;
}

/* ev_campaign: the campaign event for the contact's Botmatic id. */
static json_t *
ev_run_campaign(struct app_env *env, struct bm_ctx *ctx, const json_t *p)
{
	const char *name = json_string_value(json_object_get(p,
	    "campaign_event"));
	json_t *res = NULL, *ids = NULL, *id;
	char *bid, *e;

	if (name == NULL)
		return ev_fail(0, "%s", "damaged job: no campaign_event");
	if ((bid = ev_botmatic_id(env, ctx, p, &res)) == NULL)
		return res;
	/* Botmatic's ids are integers: sent as one when written so. */
	(void)strtoull(bid, &e, 10);
	id = bid[0] >= '1' && bid[0] <= '9' && *e == '\0' && strlen(bid) < 19 ?
	    json_integer((json_int_t)strtoll(bid, NULL, 10)) : json_string(bid);
	if ((ids = json_array()) != NULL && id != NULL)
		json_array_append(ids, id);
	json_decref(id);
	res = ids != NULL ? app_botmatic_campaign_event(env->botmatic,
	    ctx->request_id, ctx->token, name, ids) : NULL;
	if (res != NULL && json_is_true(json_object_get(res, "success")))
		app_log(BM_LOG_INFO, ctx->request_id, "events", "campaign event "
		    "%s fired for Botmatic contact %s", name, bid);
	json_decref(ids);
	free(bid);
	return res;
}

json_t *
app_events__run_fire(struct app_env *env, struct bm_ctx *ctx,
    const char *kind, const json_t *payload)
{
	if (strcmp(kind, "ev_handler") == 0)
		return ev_run_handler(env, ctx, payload);
	if (strcmp(kind, "ev_campaign") == 0)
		return ev_run_campaign(env, ctx, payload);
	return ev_fail(0, "unknown job kind %s", kind);
}
