#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"

/* A name: 1..APP_NAME_MAX bytes, no control characters. */
static int
envelope_name_ok(const char *s)
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
envelope_member(json_t *body, const char *key, const char **out, char *err,
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
	    !envelope_name_ok(json_string_value(v))) {
		snprintf(err, errlen, "\"%s\" must be 1 to %d characters "
		    "without control characters", key, APP_NAME_MAX);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int
app_envelope_parse(const char *buf, size_t len, struct app_envelope *env,
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
	if (envelope_member(env->body, "event", &env->event, err, errlen) < 0 ||
	    envelope_member(env->body, "action", &env->action, err, errlen) < 0)
		goto bad;
	env->data = json_object_get(env->body, "data");
	if (env->data == NULL)
		env->data = json_null();
	return 0;
bad:
	app_envelope_free(env);
	return 400;
}

void
app_envelope_free(struct app_envelope *env)
{
	json_decref(env->body);
	memset(env, 0, sizeof(*env));
}

json_t *
app_answer_unknown_json(const char *kind, const char *name)
{
	char msg[APP_NAME_MAX + 64];

	snprintf(msg, sizeof(msg), "No %s \"%s\" defined", kind, name);
	return json_pack("{s:b, s:s, s:{s:s}}", "success", 0, "type", "data",
	    "data", "error", msg);
}

json_t *
app_answer_error_json(const char *msg)
{
	return json_pack("{s:b, s:s}", "success", 0, "error", msg);
}

int
app_answer_result_json(enum bm_rc rc, json_t *reply, json_t **out)
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
