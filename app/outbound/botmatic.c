#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "outbound/outbound.h"
#include "mapping/mapping.h"

struct app_botmatic {
	const struct app_conf *conf;  /* borrowed: base URL */
	struct app_http *http;        /* owned: the responder's handle */
};

/* How a call may go wrong, for bm_call's caller to know the id mattered. */
enum bm_target {
	BM_COLLECTION = 0,  /* /api/contacts, /api/properties, ... */
	BM_ONE,             /* /api/contacts/{id}: a 404 is "not found" */
	BM_TARGET__MAX
};

struct app_botmatic *
app_botmatic_new(const struct app_conf *conf)
{
	struct app_botmatic *bm;

	if ((bm = calloc(1, sizeof(*bm))) == NULL)
		return NULL;
	bm->conf = conf;
	if ((bm->http = app_http_new(conf)) == NULL) {
		free(bm);
		return NULL;
	}
	return bm;
}

void
app_botmatic_free(struct app_botmatic *bm)
{
	if (bm == NULL)
		return;
	app_http_free(bm->http);
	free(bm);
}

/* base + path, new (free()), or NULL. */
static char *
bm_url(const struct app_botmatic *bm, const char *path)
{
	size_t n = strlen(bm->conf->botmatic_base_url) + strlen(path) + 1;
	char *url;

	if ((url = malloc(n)) != NULL)
		snprintf(url, n, "%s%s", bm->conf->botmatic_base_url, path);
	return url;
}

/*
 * One call to the API.  body (borrowed) is sent as JSON when not NULL.  When
 * Botmatic answers exactly the status expect, returns 0 with *answer the
 * parsed answer (new; NULL when the body was empty).  Otherwise returns -1
 * with *result a new failure result (logged here; NULL only when out of
 * memory).  A non-empty answer must be JSON even when the caller does not
 * read it: anything else (a proxy's HTML page, say) is not Botmatic
 * agreeing.
 */
static int
bm_call(struct app_botmatic *bm, const char *reqid, const char *token,
    const char *method, const char *path, enum bm_target target,
    const json_t *body, long expect, json_t **answer, json_t **result)
{
	struct curl_slist *hdrs = NULL;
	char *url = NULL, *auth = NULL, *text = NULL, *ans = NULL;
	char err[CURL_ERROR_SIZE + 64], why[CURL_ERROR_SIZE + 128];
	size_t len = 0, n;
	long status = 0;
	int rc = -1;

	*answer = NULL;
	*result = NULL;
	if (token == NULL || *token == '\0') {
		*result = app_http_failure("botmatic", reqid, method, path, 0,
		    "no token");
		goto out;
	}
	/* A CR or LF would end the header line and start another one. */
	if (!app_http_header_safe(token)) {
		*result = app_http_failure("botmatic", reqid, method, path, 0,
		    "invalid token");
		goto out;
	}
	if (body != NULL && (text = map_stringify(body)) == NULL) {
		*result = app_http_failure("botmatic", reqid, method, path, 0,
		    "invalid argument: the body cannot be serialised");
		goto out;
	}
	n = strlen(token) + 32;
	if ((url = bm_url(bm, path)) == NULL || (auth = malloc(n)) == NULL)
		goto nomem;
	snprintf(auth, n, "Authorization: Bearer %s", token);
	if (app_http_json_headers(&hdrs, auth) < 0)
		goto nomem;
	if (app_http_request(bm->http, method, url, hdrs, text, &status, &ans,
	    &len, err, sizeof(err)) < 0) {
		*result = app_http_failure("botmatic", reqid, method, path, 0,
		    err);
		goto out;
	}
	if (status != expect) {
		if (status == 404 && target == BM_ONE)
			snprintf(why, sizeof(why), "resource not found");
		else
			snprintf(why, sizeof(why), "HTTP %ld", status);
		*result = app_http_failure("botmatic", reqid, method, path,
		    status, why);
		goto out;
	}
	if (len > 0 && (*answer = app_http_parse(ans, len, err,
	    sizeof(err))) == NULL) {
		snprintf(why, sizeof(why), "invalid answer: %s", err);
		*result = app_http_failure("botmatic", reqid, method, path,
		    status, why);
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	app_log(BM_LOG_ERROR, reqid, "botmatic", "%s %s: out of memory",
	    method, path);
out:
	if (auth != NULL) {
#ifdef HAVE_EXPLICIT_BZERO
		explicit_bzero(auth, strlen(auth));
#endif
		free(auth);
	}
	curl_slist_free_all(hdrs);
	free(url);
	free(text);
	free(ans);
	return rc;
}

/* A failure found in an answer with the expected status. */
static json_t *
bm_invalid(const char *reqid, const char *method, const char *path,
    long status, const char *what)
{
	char why[300];

	snprintf(why, sizeof(why), "invalid answer: %s", what);
	return app_http_failure("botmatic", reqid, method, path, status, why);
}

/* An argument the call cannot send; no request is made. */
static json_t *
bm_badarg(const char *reqid, const char *method, const char *path,
    const char *what)
{
	char why[300];

	snprintf(why, sizeof(why), "invalid argument: %s", what);
	return app_http_failure("botmatic", reqid, method, path, 0, why);
}

/* {"success":true}, new. */
static json_t *
bm_success(void)
{
	return json_pack("{s:b}", "success", 1);
}

/* "/api/contacts/" + id escaped: new (free()), or NULL. */
static char *
bm_contact_path(const char *id)
{
	char *esc, *path = NULL;
	size_t n;

	if ((esc = app_http_escape(id)) == NULL)
		return NULL;
	n = strlen(esc) + sizeof("/api/contacts/");
	if ((path = malloc(n)) != NULL)
		snprintf(path, n, "/api/contacts/%s", esc);
	free(esc);
	return path;
}

/*
 * Wraps value (borrowed) as {key: value} and calls; the shape of every
 * collection call.  Returns what bm_call returns.
 */
static int
bm_call_wrapped(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *method, const char *path, const char *key,
    const json_t *value, long expect, json_t **answer, json_t **result)
{
	json_t *body;
	int rc;

	*answer = NULL;
	*result = NULL;
	if ((body = json_object()) == NULL ||
	    json_object_set(body, key, (json_t *)value) < 0) {
		json_decref(body);
		return -1;
	}
	rc = bm_call(bm, reqid, token, method, path, BM_COLLECTION, body,
	    expect, answer, result);
	json_decref(body);
	return rc;
}

json_t *
app_botmatic_contact_create(struct app_botmatic *bm, const char *reqid,
    const char *token, const json_t *contact)
{
	static const char path[] = "/api/contacts";
	json_t *answer = NULL, *result = NULL, *id;

	if (!json_is_object(contact)) {
		result = bm_badarg(reqid, "POST", path, "contact not an object");
		goto out;
	}
	if (bm_call_wrapped(bm, reqid, token, "POST", path, "contact",
	    contact, 201, &answer, &result) < 0)
		goto out;
	/* js-api-client took body.id when truthy; 0 is a valid id here. */
	id = json_object_get(answer, "id");
	if (!json_is_integer(id) &&
	    !(json_is_string(id) && json_string_length(id) > 0)) {
		result = bm_invalid(reqid, "POST", path, 201, "no id");
		goto out;
	}
	result = json_pack("{s:b, s:O}", "success", 1, "id", id);
out:
	json_decref(answer);
	return result;
}

json_t *
app_botmatic_contacts_create(struct app_botmatic *bm, const char *reqid,
    const char *token, const json_t *contacts)
{
	static const char path[] = "/api/contacts";
	json_t *answer = NULL, *result = NULL, *list, *item;
	size_t i;

	if (!json_is_array(contacts)) {
		result = bm_badarg(reqid, "POST", path, "contacts not an array");
		goto out;
	}
	if (bm_call_wrapped(bm, reqid, token, "POST", path, "contacts",
	    contacts, 201, &answer, &result) < 0)
		goto out;
	/*
	 * The caller pairs the answers with what it sent, index by index
	 * (to save id pairs): a list of another length cannot be paired.
	 */
	list = json_object_get(answer, "contacts");
	if (!json_is_array(list)) {
		result = bm_invalid(reqid, "POST", path, 201,
		    "no \"contacts\" array");
		goto out;
	}
	if (json_array_size(list) != json_array_size(contacts)) {
		result = bm_invalid(reqid, "POST", path, 201,
		    "\"contacts\" not as long as the list sent");
		goto out;
	}
	json_array_foreach(list, i, item)
		if (!json_is_object(item)) {
			result = bm_invalid(reqid, "POST", path, 201,
			    "\"contacts\" holds a non-object");
			goto out;
		}
	result = json_pack("{s:b, s:O}", "success", 1, "contacts", list);
out:
	json_decref(answer);
	return result;
}

/*
 * The contact_id member of an update, as js-api-client sent contact.id:
 * Botmatic's ids are integers, so an id written in decimal digits goes as a
 * JSON integer; anything else (or a number with a leading zero, or one too
 * large for 64 bits, which an integer would change) as the string given.
 * Returns a new value, or NULL when out of memory.
 */
static json_t *
bm_contact_id(const char *id)
{
	size_t len = strlen(id);
	long long v;
	char *end;

	if (len > 0 && strspn(id, "0123456789") == len &&
	    (id[0] != '0' || len == 1)) {
		errno = 0;
		v = strtoll(id, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer((json_int_t)v);
	}
	return json_string(id);
}

json_t *
app_botmatic_contact_update(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *id, const json_t *contact)
{
	json_t *body = NULL, *cid = NULL, *answer = NULL, *result = NULL;
	char *path = NULL;

	if (id == NULL || *id == '\0') {
		result = bm_badarg(reqid, "PATCH", "/api/contacts/", "no id");
		goto out;
	}
	if ((path = bm_contact_path(id)) == NULL)
		goto out;
	if (!json_is_object(contact)) {
		result = bm_badarg(reqid, "PATCH", path, "contact not an object");
		goto out;
	}
	if ((cid = bm_contact_id(id)) == NULL) {
		result = bm_badarg(reqid, "PATCH", path, "id not UTF-8");
		goto out;
	}
	if ((body = json_object()) == NULL ||
	    json_object_set(body, "contact_id", cid) < 0 ||
	    json_object_set(body, "contact", (json_t *)contact) < 0)
		goto out;
	if (bm_call(bm, reqid, token, "PATCH", path, BM_ONE, body, 200,
	    &answer, &result) < 0)
		goto out;
	result = bm_success();
out:
	json_decref(cid);
	json_decref(body);
	json_decref(answer);
	free(path);
	return result;
}

json_t *
app_botmatic_contacts_update(struct app_botmatic *bm, const char *reqid,
    const char *token, const json_t *items)
{
	static const char path[] = "/api/contacts";
	json_t *answer = NULL, *result = NULL, *sent = NULL, *it, *cid;
	const char *id;
	size_t i;

	if (!json_is_array(items)) {
		result = bm_badarg(reqid, "PATCH", path, "contacts not an array");
		goto out;
	}
	/* contact_id has the type of a single update's (bm_contact_id). */
	if ((sent = json_deep_copy(items)) == NULL)
		goto out;
	json_array_foreach(sent, i, it) {
		if ((id = json_string_value(json_object_get(it, "contact_id")))
		    == NULL)
			continue;
		if ((cid = bm_contact_id(id)) == NULL ||
		    json_object_set_new(it, "contact_id", cid) < 0)
			goto out;
	}
	if (bm_call_wrapped(bm, reqid, token, "PATCH", path, "contacts",
	    sent, 200, &answer, &result) < 0)
		goto out;
	result = bm_success();
out:
	json_decref(sent);
	json_decref(answer);
	return result;
}

json_t *
app_botmatic_contact_delete(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *id)
{
	json_t *answer = NULL, *result = NULL;
	char *path = NULL;

	if (id == NULL || *id == '\0') {
		result = bm_badarg(reqid, "DELETE", "/api/contacts/", "no id");
		goto out;
	}
	if ((path = bm_contact_path(id)) == NULL)
		goto out;
	if (bm_call(bm, reqid, token, "DELETE", path, BM_ONE, NULL, 204,
	    &answer, &result) < 0)
		goto out;
	result = bm_success();
out:
	json_decref(answer);
	free(path);
	return result;
}

json_t *
app_botmatic_properties_create(struct app_botmatic *bm, const char *reqid,
    const char *token, const json_t *properties)
{
	static const char path[] = "/api/properties";
	json_t *answer = NULL, *result = NULL;

	if (!json_is_array(properties)) {
		result = bm_badarg(reqid, "POST", path,
		    "properties not an array");
		goto out;
	}
	if (bm_call_wrapped(bm, reqid, token, "POST", path, "properties",
	    properties, 201, &answer, &result) < 0)
		goto out;
	result = bm_success();
out:
	json_decref(answer);
	return result;
}

json_t *
app_botmatic_campaign_event(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *event_name, const json_t *ids)
{
	static const char path[] = "/api/campaigns/execute-event";
	json_t *body = NULL, *name = NULL, *answer = NULL, *result = NULL;

	if (event_name == NULL || *event_name == '\0') {
		result = bm_badarg(reqid, "POST", path, "no event name");
		goto out;
	}
	if (!json_is_array(ids)) {
		result = bm_badarg(reqid, "POST", path, "ids not an array");
		goto out;
	}
	/* json_string refuses invalid UTF-8 (or runs out of memory). */
	if ((name = json_string(event_name)) == NULL) {
		result = bm_badarg(reqid, "POST", path, "event name not UTF-8");
		goto out;
	}
	if ((body = json_object()) == NULL ||
	    json_object_set(body, "event_name", name) < 0 ||
	    json_object_set(body, "contacts", (json_t *)ids) < 0)
		goto out;
	if (bm_call(bm, reqid, token, "POST", path, BM_COLLECTION, body, 200,
	    &answer, &result) < 0)
		goto out;
	result = bm_success();
out:
	json_decref(name);
	json_decref(body);
	json_decref(answer);
	return result;
}

/* "/api/bots/" + id escaped: new (free()), or NULL. */
static char *
bm_bot_path(const char *id)
{
	char *esc, *path = NULL;
	size_t n;

	if ((esc = app_http_escape(id)) == NULL)
		return NULL;
	n = strlen(esc) + sizeof("/api/bots/");
	if ((path = malloc(n)) != NULL)
		snprintf(path, n, "/api/bots/%s", esc);
	free(esc);
	return path;
}

/* {"success":true, key: answer}; an empty answer is a failure. */
static json_t *
bm_answer_as(const char *reqid, const char *method, const char *path,
    const char *key, json_t *answer)
{
	if (answer == NULL || (!json_is_object(answer) &&
	    !json_is_array(answer)))
		return bm_invalid(reqid, method, path, 200,
		    "not a JSON object or array");
	return json_pack("{s:b, s:O}", "success", 1, key, answer);
}

json_t *
app_botmatic_bots_list(struct app_botmatic *bm, const char *reqid,
    const char *token)
{
	/* js-api-client's getAllBots: one page, as large as Botmatic allows. */
	static const char path[] = "/api/bots?page_size=1000";
	json_t *answer = NULL, *result = NULL;

	if (bm_call(bm, reqid, token, "GET", path, BM_COLLECTION, NULL, 200,
	    &answer, &result) < 0)
		goto out;
	result = bm_answer_as(reqid, "GET", path, "bots", answer);
out:
	json_decref(answer);
	return result;
}

json_t *
app_botmatic_bot_get(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *id)
{
	json_t *answer = NULL, *result = NULL;
	char *path = NULL;

	if (id == NULL || *id == '\0') {
		result = bm_badarg(reqid, "GET", "/api/bots/", "no id");
		goto out;
	}
	if ((path = bm_bot_path(id)) == NULL)
		goto out;
	if (bm_call(bm, reqid, token, "GET", path, BM_ONE, NULL, 200, &answer,
	    &result) < 0)
		goto out;
	result = bm_answer_as(reqid, "GET", path, "bot", answer);
out:
	json_decref(answer);
	free(path);
	return result;
}

json_t *
app_botmatic_bot_update(struct app_botmatic *bm, const char *reqid,
    const char *token, const char *id, const json_t *bot)
{
	json_t *body = NULL, *answer = NULL, *result = NULL;
	char *path = NULL;

	if (id == NULL || *id == '\0') {
		result = bm_badarg(reqid, "PATCH", "/api/bots/", "no id");
		goto out;
	}
	if ((path = bm_bot_path(id)) == NULL)
		goto out;
	if (!json_is_object(bot)) {
		result = bm_badarg(reqid, "PATCH", path, "bot not an object");
		goto out;
	}
	/* As js-api-client's updateBot: the change is saved as a draft. */
	if ((body = json_object()) == NULL ||
	    json_object_set(body, "bot", (json_t *)bot) < 0 ||
	    json_object_set_new(body, "is_draft", json_true()) < 0)
		goto out;
	if (bm_call(bm, reqid, token, "PATCH", path, BM_ONE, body, 200,
	    &answer, &result) < 0)
		goto out;
	result = answer != NULL ? bm_answer_as(reqid, "PATCH", path, "bot",
	    answer) : bm_success();
out:
	json_decref(body);
	json_decref(answer);
	free(path);
	return result;
}

int
app_botmatic_validate(struct app_botmatic *bm, const char *reqid,
    const char *token)
{
	static const char path[] = "/api/integrationtokens/validate";
	struct curl_slist *hdrs = NULL, *l;
	char *url = NULL, *esc = NULL, *form = NULL, *ans = NULL;
	char err[CURL_ERROR_SIZE + 64];
	json_t *answer = NULL;
	size_t len = 0, n;
	long status = 0;
	int valid = 0;

	if (token == NULL || *token == '\0') {
		app_log(BM_LOG_INFO, reqid, "auth", "no token to validate");
		goto out;
	}
	if ((url = bm_url(bm, path)) == NULL ||
	    (esc = app_http_escape(token)) == NULL ||
	    (form = malloc((n = strlen(esc) + 7))) == NULL ||
	    (l = curl_slist_append(hdrs, "Accept: application/json")) == NULL) {
		app_log(BM_LOG_ERROR, reqid, "auth", "out of memory");
		goto out;
	}
	hdrs = l;
	snprintf(form, n, "token=%s", esc);
	/* The form's Content-Type is libcurl's default for a POST body. */
	if (app_http_request(bm->http, "POST", url, hdrs, form, &status, &ans,
	    &len, err, sizeof(err)) < 0) {
		app_log(BM_LOG_WARN, reqid, "auth", "token validation with "
		    "Botmatic failed: %s", err);
		goto out;
	}
	answer = json_loadb(ans, len, 0, NULL);
	if (!json_is_object(answer)) {
		app_log(BM_LOG_WARN, reqid, "auth", "token validation: Botmatic "
		    "answered %ld with no JSON object", status);
		goto out;
	}
	valid = json_is_true(json_object_get(answer, "success"));
	if (!valid)
		app_log(BM_LOG_INFO, reqid, "auth", "Botmatic refused the token "
		    "(status %ld)", status);
out:
	json_decref(answer);
	curl_slist_free_all(hdrs);
	free(url);
	free(esc);
	free(form);
	free(ans);
	return valid;
}
