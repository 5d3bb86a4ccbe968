#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/sync.h"

/* Longest id handled, as the keystore's. */
#define SYNC_ID_MAX APP_KS_ID_MAX
/* Pages an import reads at most: a service that ignores "page" ends. */
#define SYNC_IMPORT_MAX_PAGES 1000000

/* {"success":false,"error":<formatted>}; new. */
static json_t * __attribute__((format(printf, 1, 2)))
sync_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "success", 0, "error", msg);
}

/* {"success":false,"error":"resource not found"}; new. */
static json_t *
sync_missing(void)
{
	return json_pack("{s:b, s:s}", "success", 0, "error",
	    "resource not found");
}

static int
sync_ok(const json_t *result)
{
	return json_is_true(json_object_get(result, "success"));
}

static int
sync_not_found(const json_t *result)
{
	const char *e = json_string_value(json_object_get(result, "error"));

	return !sync_ok(result) && e != NULL &&
	    strcmp(e, "resource not found") == 0;
}

int
app_sync_id_text(const json_t *id, char *buf, size_t cap)
{
	int n;

	if (json_is_string(id)) {
		size_t len = json_string_length(id);
		if (len == 0 || len >= cap || len > SYNC_ID_MAX ||
		    strlen(json_string_value(id)) != len)
			return -1;
		memcpy(buf, json_string_value(id), len + 1);
		return 0;
	}
	if (json_is_integer(id)) {
		n = snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(id));
		return n > 0 && (size_t)n < cap ? 0 : -1;
	}
	return -1;
}

/* The responder's services, or NULL when contact sync is off. */
static struct app_env *
sync_env(const struct bm_ctx *ctx)
{
	struct app_env *env;

	if (ctx == NULL || ctx->req == NULL || (env = ctx->req->env) == NULL)
		return NULL;
	if (env->map == NULL || env->consumer == NULL) {
		app_log(BM_LOG_ERROR, ctx->request_id, ctx->module, "contact "
		    "sync needs BM_MAPPINGS and an external consumer");
		return NULL;
	}
	return env;
}

/* Maps record toward to; NULL (logged) when a strict entry fails. */
static json_t *
sync_map(struct bm_ctx *ctx, const json_t *record, enum map_side to)
{
	json_t *out = NULL;

	if (ctx->host->map(ctx, record, to == MAP_BOTMATIC ?
	    BM_MAP_TO_BOTMATIC : BM_MAP_TO_EXT, &out) < 0)
		return NULL;
	return out;
}

/*
 * The contact a contact_* event carries: data itself, or data.<event>
 * when data holds exactly that one key and it is an object (borrowed).
 */
static json_t *
sync_event_contact(const struct bm_ctx *ctx, json_t *data)
{
	json_t *inner;

	if (json_is_object(data) && json_object_size(data) == 1 &&
	    (inner = json_object_get(data, ctx->name)) != NULL &&
	    json_is_object(inner))
		return inner;
	return json_is_object(data) ? data : NULL;
}

/* Wraps a result as a handler reply {"data":result,"type":"data"}. */
static enum bm_rc
sync_reply(json_t *result, json_t **reply)
{
	int ok;

	if (result == NULL)
		return BM_ERROR;
	ok = sync_ok(result);
	*reply = json_pack("{s:o, s:s}", "data", result, "type", "data");
	if (*reply == NULL)
		return BM_ERROR;
	return ok ? BM_OK : BM_FAIL;
}

/* The id of contact c under key, as text; -1 when missing or invalid. */
static int
sync_member_id(const json_t *c, const char *key, char *buf, size_t cap)
{
	return app_sync_id_text(json_object_get(c, key), buf, cap);
}

/*
 * Pushes the external values of ext back to the Botmatic contact bid
 * (PATCH), without the id entry.  Returns the API result (new).
 */
static json_t *
sync_push_to_botmatic(struct app_env *env, struct bm_ctx *ctx,
    const char *bid, const json_t *ext)
{
	json_t *props, *res;
	const char *idname = map_id_name(env->map, MAP_BOTMATIC);

	if ((props = sync_map(ctx, ext, MAP_BOTMATIC)) == NULL)
		return sync_fail("mapping failed");
	json_object_del(props, idname != NULL ? idname : "id");
	res = app_botmatic_contact_update(env->botmatic, ctx->request_id,
	    ctx->token, bid, props);
	json_decref(props);
	return res;
}

/*
 * The external id eid as the external service writes it: the stored text
 * put through the id entry's transforms (an "int" id goes back as a
 * number), where js-contact sent the stored string.  New reference.
 */
static json_t *
sync_ext_id_value(struct app_env *env, struct bm_ctx *ctx, const char *eid)
{
	const char *bname = map_id_name(env->map, MAP_BOTMATIC);
	json_t *rec, *mapped = NULL, *v = NULL;

	if (bname != NULL && (rec = json_pack("{s:s}", bname, eid)) != NULL) {
		mapped = sync_map(ctx, rec, MAP_EXT);
		json_decref(rec);
		v = json_incref(json_object_get(mapped, env->ext_id_key));
		json_decref(mapped);
	}
	return v != NULL ? v : json_string(eid);
}

/* Creates ext externally and links it to bid.  Returns a result (new). */
static json_t *
sync_create_external(struct app_env *env, struct bm_ctx *ctx,
    const char *bid, const json_t *ext)
{
	char eid[SYNC_ID_MAX + 1];
	json_t *res, *rec;

	/*
	 * The external service gives the new contact its id: js-contact sent
	 * the Botmatic id under the ext id key, which is wrong.
	 */
	if ((rec = json_deep_copy(ext)) == NULL)
		return sync_fail("out of memory");
	json_object_del(rec, env->ext_id_key);
	res = env->consumer->create(ctx, rec, env->consumer->arg);
	json_decref(rec);
	if (res == NULL)
		return sync_fail("out of memory");
	if (!sync_ok(res))
		return res;
	if (app_sync_id_text(json_object_get(res, "id"), eid,
	    sizeof(eid)) < 0) {
		json_decref(res);
		return sync_fail("the external service returned no usable id");
	}
	if (app_ks_ids_save(env->ks, ctx->request_id, ctx->token, bid,
	    eid) != 0) {
		json_decref(res);
		return sync_fail("created externally with id %s, but the id "
		    "pair could not be saved", eid);
	}
	return res;
}

/*
 * What contact_created and contact_updated start with: the contact of the
 * event, its Botmatic id into bid and its mapping toward ext into *ext
 * (new).  Returns NULL, or a failure result (new) to answer with.
 */
static json_t *
sync_event_ext(struct bm_ctx *ctx, json_t *data, char *bid, size_t cap,
    json_t **contact, json_t **ext)
{
	*ext = NULL;
	*contact = sync_event_contact(ctx, data);
	if (*contact == NULL || sync_member_id(*contact, "id", bid, cap) < 0)
		return sync_fail("no contact with an id in data");
	if ((*ext = sync_map(ctx, *contact, MAP_EXT)) == NULL)
		return sync_fail("mapping failed");
	return NULL;
}

/* A creation's result reduced to {"success":true,"id":...}; steals res. */
static json_t *
sync_created_result(json_t *res)
{
	json_t *id;

	if (res == NULL || !sync_ok(res))
		return res;
	id = json_incref(json_object_get(res, "id"));
	json_decref(res);
	return json_pack("{s:b, s:o}", "success", 1, "id", id);
}

/* contact_created: link to an existing external contact, or create one. */
static enum bm_rc
sync_created(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	char bid[SYNC_ID_MAX + 1], eid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	json_t *contact, *ext = NULL, *found = NULL, *res = NULL, *push;
	const char *email;

	(void)arg;
	if (env == NULL)
		return BM_ERROR;
	if ((res = sync_event_ext(ctx, data, bid, sizeof(bid), &contact,
	    &ext)) != NULL)
		goto out;
	email = json_string_value(json_object_get(contact, "email"));
	if (email != NULL && *email != '\0') {
		found = env->consumer->get_by_email(ctx, email,
		    env->consumer->arg);
		if (found == NULL || (!sync_ok(found) && !sync_not_found(found))) {
			res = found != NULL ? found : sync_fail("out of memory");
			found = NULL;
			goto out;
		}
	}
	if (found != NULL && sync_ok(found)) {
		json_t *fc = json_object_get(found, "contact");
		if (sync_member_id(fc, env->ext_id_key, eid, sizeof(eid)) < 0 &&
		    sync_member_id(fc, "id", eid, sizeof(eid)) < 0) {
			res = sync_fail("the external contact found by email has "
			    "no id");
			goto out;
		}
		if (app_ks_ids_save(env->ks, ctx->request_id, ctx->token, bid,
		    eid) != 0) {
			res = sync_fail("the id pair could not be saved");
			goto out;
		}
		push = sync_push_to_botmatic(env, ctx, bid, fc);
		if (!sync_ok(push))
			app_log(BM_LOG_WARN, ctx->request_id, ctx->module,
			    "linked to external %s, but the values could not "
			    "be pushed to Botmatic", eid);
		json_decref(push);
		res = json_pack("{s:b, s:O}", "success", 1, "id",
		    json_object_get(fc, env->ext_id_key) != NULL ?
		    json_object_get(fc, env->ext_id_key) :
		    json_object_get(fc, "id"));
		goto out;
	}
	res = sync_created_result(sync_create_external(env, ctx, bid, ext));
out:
	json_decref(ext);
	json_decref(found);
	return sync_reply(res, reply);
}

/* contact_updated: update the linked external contact, or create it. */
static enum bm_rc
sync_updated(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	char bid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	json_t *contact, *ext = NULL, *res = NULL;
	char *eid = NULL;
	int rc;

	(void)arg;
	if (env == NULL)
		return BM_ERROR;
	if ((res = sync_event_ext(ctx, data, bid, sizeof(bid), &contact,
	    &ext)) != NULL)
		goto out;
	rc = app_ks_ext_id_get(env->ks, ctx->request_id, ctx->token, bid,
	    &eid);
	if (rc < 0) {
		res = sync_fail("the keystore failed");
		goto out;
	}
	if (rc == 0) {
		/* The stored id goes under the ext id key, as js-contact did. */
		json_object_set_new(ext, env->ext_id_key,
		    sync_ext_id_value(env, ctx, eid));
		res = env->consumer->update(ctx, eid, ext, env->consumer->arg);
		if (res != NULL && sync_not_found(res)) {
			/* Gone on the other side: create it again, relinked. */
			app_log(BM_LOG_INFO, ctx->request_id, ctx->module,
			    "external contact %s is gone: creating it again", eid);
			json_decref(res);
			res = sync_create_external(env, ctx, bid, ext);
			goto created;
		}
		if (res != NULL && sync_ok(res)) {
			json_decref(res);
			res = json_pack("{s:b}", "success", 1);
		}
		goto out;
	}
	res = sync_create_external(env, ctx, bid, ext);
created:
	res = sync_created_result(res);
out:
	free(eid);
	json_decref(ext);
	return sync_reply(res != NULL ? res : sync_fail("out of memory"), reply);
}

/* contact_deleted: delete the linked external contact and the pair. */
static enum bm_rc
sync_deleted(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	char bid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	json_t *contact, *res = NULL;
	char *eid = NULL;
	int rc;

	(void)arg;
	if (env == NULL)
		return BM_ERROR;
	contact = sync_event_contact(ctx, data);
	if (contact == NULL || (sync_member_id(contact, "contact_id", bid,
	    sizeof(bid)) < 0 && sync_member_id(contact, "id", bid,
	    sizeof(bid)) < 0)) {
		res = sync_fail("no contact_id in data");
		goto out;
	}
	rc = app_ks_ext_id_get(env->ks, ctx->request_id, ctx->token, bid,
	    &eid);
	if (rc != 0) {
		res = rc < 0 ? sync_fail("the keystore failed") :
		    sync_missing();
		goto out;
	}
	res = env->consumer->del(ctx, eid, env->consumer->arg);
	if (res == NULL)
		goto out;
	/* Already gone on the other side is what we wanted. */
	if (sync_ok(res) || sync_not_found(res)) {
		if (app_ks_ids_delete(env->ks, ctx->request_id, ctx->token, bid,
		    eid) < 0) {
			json_decref(res);
			res = sync_fail("deleted externally, but the id pair "
			    "could not be deleted");
			goto out;
		}
		json_decref(res);
		res = json_pack("{s:b}", "success", 1);
	}
out:
	free(eid);
	return sync_reply(res != NULL ? res : sync_fail("out of memory"), reply);
}

/*
 * The install hook (registered after the modules', so it runs last): the
 * mapped properties exist on Botmatic before the installation is kept, and
 * an import is asked for when BM_IMPORT_ON_INSTALL is set.  A failure
 * rolls the new installation back (dispatch).
 */
static enum bm_rc
sync_install_hook(struct bm_ctx *ctx, json_t *data, void *arg)
{
	struct app_env *env = sync_env(ctx);
	json_t *props = NULL, *res = NULL;
	size_t i, n;

	(void)data;
	(void)arg;
	if (env == NULL)
		return BM_ERROR;
	if ((props = json_array()) == NULL)
		return BM_ERROR;
	n = map_count(env->map);
	for (i = 0; i < n; i++) {
		const char *name = map_entry_name(env->map, i, MAP_BOTMATIC);
		if (map_entry_is_id(env->map, i) || strcmp(name, "id") == 0)
			continue;
		json_array_append_new(props, json_pack("{s:s, s:s}", "name",
		    name, "type", map_entry_type(env->map, i)));
	}
	if (json_array_size(props) > 0)
		res = app_botmatic_properties_create(env->botmatic,
		    ctx->request_id, ctx->token, props);
	else
		res = json_pack("{s:b}", "success", 1);
	json_decref(props);
	if (res == NULL)
		return BM_ERROR;
	if (!sync_ok(res)) {
		/* Logged by the Botmatic client; dispatch rolls back. */
		json_decref(res);
		return BM_FAIL;
	}
	json_decref(res);
	if (env->conf->import_on_install && ctx->req->deferred != NULL) {
		struct app_deferred *d = ctx->req->deferred;
		d->import = 1;
		snprintf(d->token, sizeof(d->token), "%s", ctx->token);
		snprintf(d->reqid, sizeof(d->reqid), "%s", ctx->request_id);
	}
	return BM_OK;
}

/*
 * The answer to install when no module's handler gave one (registered
 * after the modules'): the hook above has done the work.
 */
static enum bm_rc
sync_install_answer(struct bm_ctx *ctx, json_t *data, json_t **reply,
    void *arg)
{
	(void)ctx;
	(void)data;
	(void)arg;
	return sync_reply(json_pack("{s:b}", "success", 1), reply);
}


/* A context for work done outside a webhook (import after the answer). */
static void
sync_ctx_init(struct bm_ctx *ctx, struct bm_req *req, struct app_env *env,
    const char *reqid, const char *token)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->size = sizeof(*ctx);
	ctx->request_id = reqid;
	ctx->kind = "event";
	ctx->name = "import";
	ctx->token = token;
	ctx->host = env->host;
	ctx->req = req;
	ctx->module = APP_SYNC_MODULE;
	req->env = env;
}

/*
 * Imports one page: contacts already linked are skipped, the others are
 * created on Botmatic in one call and their pairs saved.
 */
static void
sync_import_page(struct app_env *env, struct bm_ctx *ctx, const json_t *page,
    size_t *imported, size_t *skipped, size_t *failed)
{
	json_t *batch = json_array(), *eids = json_array(), *res = NULL, *c;
	char eid[SYNC_ID_MAX + 1];
	size_t i;

	if (batch == NULL || eids == NULL)
		goto out;
	json_array_foreach(page, i, c) {
		char *known = NULL;
		json_t *mapped;
		int rc;

		if (sync_member_id(c, env->ext_id_key, eid, sizeof(eid)) < 0) {
			app_log(BM_LOG_WARN, ctx->request_id, APP_SYNC_MODULE,
			    "import: a contact without %s skipped", env->ext_id_key);
			(*failed)++;
			continue;
		}
		rc = app_ks_botmatic_id_get(env->ks, ctx->request_id, ctx->token,
		    eid, &known);
		free(known);
		if (rc == 0) {
			(*skipped)++;
			continue;
		}
		if (rc < 0 || (mapped = sync_map(ctx, c, MAP_BOTMATIC)) == NULL) {
			(*failed)++;
			continue;
		}
		/* Botmatic assigns the id of a new contact. */
		json_object_del(mapped, map_id_name(env->map, MAP_BOTMATIC));
		json_array_append_new(batch, mapped);
		json_array_append_new(eids, json_string(eid));
	}
	if (json_array_size(batch) == 0)
		goto out;
	res = app_botmatic_contacts_create(env->botmatic, ctx->request_id,
	    ctx->token, batch);
	if (res == NULL || !sync_ok(res)) {
		/* A refusal was logged by the Botmatic client. */
		if (res == NULL)
			app_log(BM_LOG_ERROR, ctx->request_id, APP_SYNC_MODULE,
			    "import: out of memory");
		*failed += json_array_size(batch);
		goto out;
	}
	json_array_foreach(json_object_get(res, "contacts"), i, c) {
		char bid[SYNC_ID_MAX + 1];
		const char *e = json_string_value(json_array_get(eids, i));

		if (e == NULL || !sync_ok(c) || sync_member_id(c, "id", bid,
		    sizeof(bid)) < 0 || app_ks_ids_save(env->ks,
		    ctx->request_id, ctx->token, bid, e) != 0) {
			(*failed)++;
			continue;
		}
		(*imported)++;
	}
out:
	json_decref(res);
	json_decref(batch);
	json_decref(eids);
}

json_t *
app_sync_import(struct app_env *env, const char *reqid, const char *token)
{
	size_t imported = 0, skipped = 0, failed = 0;
	char first[SYNC_ID_MAX + 1] = "", prev[SYNC_ID_MAX + 1] = "";
	unsigned limit = env->conf->import_page, page;
	struct bm_req req;
	struct bm_ctx ctx;
	json_t *res = NULL;
	int ok = 1;

	app_req_init(&req, env, reqid);
	sync_ctx_init(&ctx, &req, env, reqid, token);
	if (env->map == NULL || env->consumer == NULL)
		return sync_fail("contact sync is off (no BM_MAPPINGS)");
	app_log(BM_LOG_INFO, reqid, APP_SYNC_MODULE, "import: started");
	for (page = 1; page <= SYNC_IMPORT_MAX_PAGES; page++) {
		json_t *contacts;
		size_t n;

		res = env->consumer->list_page(&ctx, page, limit,
		    env->consumer->arg);
		if (res == NULL || !sync_ok(res)) {
			/* A failure was logged by the consumer. */
			if (res == NULL)
				app_log(BM_LOG_ERROR, reqid, APP_SYNC_MODULE,
				    "import: out of memory");
			ok = 0;
			break;
		}
		contacts = json_object_get(res, "contacts");
		if ((n = json_array_size(contacts)) == 0)
			break;
		/* A service that ignores "page" would loop for ever. */
		if (sync_member_id(json_array_get(contacts, 0), env->ext_id_key,
		    first, sizeof(first)) == 0 && strcmp(first, prev) == 0) {
			app_log(BM_LOG_WARN, reqid, APP_SYNC_MODULE, "import: page "
			    "%u repeats the previous one: stopping", page);
			ok = 0;
			break;
		}
		memcpy(prev, first, sizeof(prev));
		sync_import_page(env, &ctx, contacts, &imported, &skipped,
		    &failed);
		app_log(BM_LOG_INFO, reqid, APP_SYNC_MODULE, "import: page %u: "
		    "%zu contacts; %zu imported, %zu already linked, %zu failed "
		    "so far", page, n, imported, skipped, failed);
		json_decref(res);
		res = NULL;
		app_req_release(&req);
		if (n < limit)
			break;
	}
	json_decref(res);
	app_req_release(&req);
	app_log(BM_LOG_INFO, reqid, APP_SYNC_MODULE, "import: done: %zu "
	    "imported, %zu already linked, %zu failed", imported, skipped,
	    failed);
	return json_pack("{s:b, s:I, s:I, s:I}", "success", ok && failed == 0,
	    "imported", (json_int_t)imported, "skipped", (json_int_t)skipped,
	    "failed", (json_int_t)failed);
}

/*
 * The external id of ext into eid and the Botmatic id linked to it into
 * *bid (new, NULL when not linked).  Returns NULL, or a failure result
 * (new): no external id, or the keystore failed.
 */
static json_t *
sync_ext_link(struct app_env *env, struct bm_ctx *ctx, const json_t *ext,
    char *eid, size_t cap, char **bid)
{
	*bid = NULL;
	if (sync_member_id(ext, env->ext_id_key, eid, cap) < 0)
		return sync_fail("the contact has no %s", env->ext_id_key);
	if (app_ks_botmatic_id_get(env->ks, ctx->request_id, ctx->token, eid,
	    bid) < 0)
		return sync_fail("the keystore failed");
	return NULL;
}

json_t *
app_sync_contact_create(struct bm_ctx *ctx, const json_t *ext)
{
	char eid[SYNC_ID_MAX + 1], bid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	json_t *mapped = NULL, *res = NULL;
	char *known = NULL;

	if (env == NULL)
		return sync_fail("contact sync is off");
	if ((res = sync_ext_link(env, ctx, ext, eid, sizeof(eid), &known)) !=
	    NULL)
		return res;
	if (known != NULL) {
		free(known);
		return sync_fail("external contact %s is already linked", eid);
	}
	if ((mapped = sync_map(ctx, ext, MAP_BOTMATIC)) == NULL)
		return sync_fail("mapping failed");
	json_object_del(mapped, map_id_name(env->map, MAP_BOTMATIC));
	res = app_botmatic_contact_create(env->botmatic, ctx->request_id,
	    ctx->token, mapped);
	json_decref(mapped);
	if (res == NULL || !sync_ok(res))
		return res;
	if (app_sync_id_text(json_object_get(res, "id"), bid,
	    sizeof(bid)) < 0 || app_ks_ids_save(env->ks, ctx->request_id,
	    ctx->token, bid, eid) != 0) {
		json_decref(res);
		return sync_fail("created on Botmatic, but the id pair could not "
		    "be saved");
	}
	return res;
}

json_t *
app_sync_contact_update(struct bm_ctx *ctx, const json_t *ext)
{
	char eid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	char *bid = NULL;
	json_t *res;

	if (env == NULL)
		return sync_fail("contact sync is off");
	if ((res = sync_ext_link(env, ctx, ext, eid, sizeof(eid), &bid)) !=
	    NULL)
		return res;
	if (bid == NULL)
		return sync_missing();
	res = sync_push_to_botmatic(env, ctx, bid, ext);
	free(bid);
	return res;
}

json_t *
app_sync_contacts_update(struct bm_ctx *ctx, const json_t *exts)
{
	char eid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	json_t *items, *c, *res;
	size_t i, skipped = 0;

	if (env == NULL)
		return sync_fail("contact sync is off");
	if (!json_is_array(exts))
		return sync_fail("contacts must be an array");
	if ((items = json_array()) == NULL)
		return NULL;
	json_array_foreach(exts, i, c) {
		json_t *props;
		char *bid = NULL;

		if (sync_member_id(c, env->ext_id_key, eid, sizeof(eid)) < 0 ||
		    app_ks_botmatic_id_get(env->ks, ctx->request_id, ctx->token,
		    eid, &bid) != 0 || (props = sync_map(ctx, c, MAP_BOTMATIC)) == NULL) {
			free(bid);
			skipped++;
			continue;
		}
		json_object_del(props, map_id_name(env->map, MAP_BOTMATIC));
		json_array_append_new(items, json_pack("{s:s, s:o}",
		    "contact_id", bid, "contact_props", props));
		free(bid);
	}
	if (json_array_size(items) == 0)
		res = json_pack("{s:b}", "success", 1);
	else
		res = app_botmatic_contacts_update(env->botmatic,
		    ctx->request_id, ctx->token, items);
	json_decref(items);
	if (res != NULL)
		json_object_set_new(res, "skipped", json_integer(
		    (json_int_t)skipped));
	return res;
}

json_t *
app_sync_contact_delete(struct bm_ctx *ctx, const char *eid)
{
	struct app_env *env = sync_env(ctx);
	char *bid = NULL;
	json_t *res;
	int rc;

	if (env == NULL)
		return sync_fail("contact sync is off");
	rc = app_ks_botmatic_id_get(env->ks, ctx->request_id, ctx->token, eid,
	    &bid);
	if (rc != 0)
		return rc < 0 ? sync_fail("the keystore failed") :
		    sync_missing();
	res = app_botmatic_contact_delete(env->botmatic, ctx->request_id,
	    ctx->token, bid);
	if (res != NULL && (sync_ok(res) || sync_not_found(res))) {
		if (app_ks_ids_delete(env->ks, ctx->request_id, ctx->token, bid,
		    eid) < 0) {
			json_decref(res);
			res = sync_fail("deleted on Botmatic, but the id pair "
			    "could not be deleted");
		} else if (!sync_ok(res)) {
			json_decref(res);
			res = json_pack("{s:b}", "success", 1);
		}
	}
	free(bid);
	return res;
}

void
app_sync_ext_route(struct app_env *env, struct bm_req *req, const char *rest,
    const char *body, size_t len, app_wh_header_fn get, void *arg,
    struct app_answer *ans)
{
	char install_id[APP_KS_INSTALL_ID_LEN + 1];
	struct app_wh_delivery d;
	int claimed = 0;
	char *token = NULL, *secret = NULL;
	json_t *msg = NULL, *res = NULL, *contact;
	struct bm_ctx ctx;
	const char *op, *slash;
	size_t idlen;
	int rc;

	/* <install id>/contacts */
	slash = strchr(rest, '/');
	idlen = slash != NULL ? (size_t)(slash - rest) : 0;
	if (idlen != APP_KS_INSTALL_ID_LEN || strcmp(slash, "/contacts") != 0 ||
	    strspn(rest, "0123456789abcdef") < idlen) {
		app_answer_error(ans, 404, "not found");
		goto out;
	}
	memcpy(install_id, rest, idlen);
	install_id[idlen] = '\0';
	if (env->map == NULL || env->consumer == NULL) {
		app_answer_error(ans, 404, "contact sync is off");
		goto out;
	}
	rc = app_ks_install_by_id(env->ks, req->id, install_id, &token,
	    &secret);
	if (rc < 0) {
		app_answer_error(ans, 503, "temporary failure, try again");
		goto out;
	}
	/* Unknown installation and bad signature look alike from outside. */
	if (rc != 0) {
		app_log(BM_LOG_INFO, req->id, "ext", "refused: unknown "
		    "installation");
		app_answer_error(ans, 401, "bad signature");
		goto out;
	}
	switch (app_wh_accept(env->ks, env->conf, req->id, APP_WH_STANDARD,
	    get, arg, install_id, token, secret, body, len, &d)) {
	case APP_WH_ACCEPT:
		claimed = 1;
		break;
	case APP_WH_DUPLICATE:
		ans->status = 200;
		ans->content_type = "application/json";
		ans->json = json_pack("{s:b,s:b}", "success", 1, "duplicate",
		    1);
		if (ans->json == NULL)
			app_answer_error(ans, 500, "out of memory");
		goto out;
	case APP_WH_TEMP:
		app_answer_error(ans, 503, "temporary failure, try again");
		goto out;
	case APP_WH_REFUSED:
	case APP_WH_RESULT__MAX:
	default:
		app_answer_error(ans, 401, "bad signature");
		goto out;
	}
	/* Signed by the installation's secret: its id goes in the log. */
	snprintf(req->install_id, sizeof(req->install_id), "%s", install_id);
	msg = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	op = json_string_value(json_object_get(msg, "op"));
	contact = json_object_get(msg, "contact");
	if (op == NULL || !json_is_object(contact)) {
		app_answer_error(ans, 400, "expected {\"op\":\"created\"|"
		    "\"updated\"|\"deleted\",\"contact\":{...}}");
		goto out;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.size = sizeof(ctx);
	ctx.request_id = req->id;
	ctx.kind = "ext";
	ctx.name = op;
	ctx.token = token;
	ctx.host = env->host;
	ctx.req = req;
	ctx.module = "ext";
	ans->what = "ext";
	if (strcmp(op, "created") == 0)
		res = app_sync_contact_create(&ctx, contact);
	else if (strcmp(op, "updated") == 0)
		res = app_sync_contact_update(&ctx, contact);
	else if (strcmp(op, "deleted") == 0) {
		char eid[SYNC_ID_MAX + 1];
		if (sync_member_id(contact, env->ext_id_key, eid,
		    sizeof(eid)) < 0)
			res = sync_fail("the contact has no %s", env->ext_id_key);
		else
			res = app_sync_contact_delete(&ctx, eid);
	} else {
		app_answer_error(ans, 400, "op must be created, updated or "
		    "deleted");
		goto out;
	}
	if (res == NULL) {
		app_answer_error(ans, 500, "out of memory");
		goto out;
	}
	ans->status = 200;
	ans->content_type = "application/json";
	ans->json = res;
	res = NULL;
out:
	/* Not applied: the sender's retry of this id must be. */
	if (claimed && (ans->status != 200 || !sync_ok(ans->json)))
		app_wh_release(env->ks, req->id, install_id, &d);
	json_decref(res);
	json_decref(msg);
	if (token != NULL)
		explicit_bzero(token, strlen(token));
	free(token);
	free(secret);
}

int
app_sync_register(struct app_registry *reg, char *err, size_t errlen)
{
	if (app_registry_add_event(reg, APP_SYNC_MODULE, "contact_created",
	    sync_created, NULL, err, errlen) < 0 ||
	    app_registry_add_event(reg, APP_SYNC_MODULE, "contact_updated",
	    sync_updated, NULL, err, errlen) < 0 ||
	    app_registry_add_event(reg, APP_SYNC_MODULE, "contact_deleted",
	    sync_deleted, NULL, err, errlen) < 0 ||
	    app_registry_add_hook(reg, 0, APP_SYNC_MODULE, sync_install_hook,
	    NULL, err, errlen) < 0 ||
	    app_registry_add_event(reg, APP_SYNC_MODULE, "install",
	    sync_install_answer, NULL, err, errlen) < 0)
		return -1;
	return 0;
}
