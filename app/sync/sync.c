#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync/sync.h"
#include "outbound/outbound.h"

/* Longest id handled, as the keystore's. */
#define SYNC_ID_MAX APP_KS_ID_MAX
/*
 * The contact key of an installation's import job.  Jobs of a contact event
 * are ordered by the Botmatic id itself, those of the external service's
 * changes by "e:<external id>"; Botmatic's ids are integers, so neither
 * meets this one.
 */
#define SYNC_IMPORT_CONTACT "*import"
/* Pages an import reads at most: a service that ignores "page" ends. */
#define SYNC_IMPORT_MAX_PAGES 1000000

/*
 * The effects of the job this process is running (a process runs one at a
 * time), NULL outside one: its pair writes are collected there and applied
 * in the transaction that finishes the job, not one by one.
 */
static struct app_ks_fx *sync_fx;

/* Saves (del = 0) or deletes a pair: now, or with the running job. */
static int
sync_pair(struct app_env *env, struct bm_ctx *ctx, int del, const char *bid,
    const char *eid)
{
	if (sync_fx != NULL)
		return app_ks_fx_add(sync_fx, del, bid, eid) < 0 ? -1 : 0;
	if (del)
		return app_ks_ids_delete(env->ks, ctx->request_id, ctx->token,
		    bid, eid) < 0 ? -1 : 0;
	return app_ks_ids_save(env->ks, ctx->request_id, ctx->token, bid, eid);
}

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
	if (sync_pair(env, ctx, 0, bid, eid) != 0) {
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

/*
 * contact_created: link to an existing external contact, or create one.
 * A contact already linked (the event delivered again) is answered with
 * its external id: no second external contact.  Returns the result (new).
 */
static json_t *
sync_run_created(struct app_env *env, struct bm_ctx *ctx, json_t *data)
{
	char bid[SYNC_ID_MAX + 1], eid[SYNC_ID_MAX + 1];
	json_t *contact, *ext = NULL, *found = NULL, *res = NULL, *push;
	const char *email;
	char *linked = NULL;
	int rc;

	if ((res = sync_event_ext(ctx, data, bid, sizeof(bid), &contact,
	    &ext)) != NULL)
		goto out;
	rc = app_ks_ext_id_get(env->ks, ctx->request_id, ctx->token, bid,
	    &linked);
	if (rc < 0) {
		res = sync_fail("the keystore failed");
		goto out;
	}
	if (rc == 0) {
		res = json_pack("{s:b, s:o}", "success", 1, "id",
		    sync_ext_id_value(env, ctx, linked));
		free(linked);
		goto out;
	}
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
		if (sync_pair(env, ctx, 0, bid, eid) != 0) {
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
	return res != NULL ? res : sync_fail("out of memory");
}

/* contact_updated: update the linked external contact, or create it. */
static json_t *
sync_run_updated(struct app_env *env, struct bm_ctx *ctx, json_t *data)
{
	char bid[SYNC_ID_MAX + 1];
	json_t *contact, *ext = NULL, *res = NULL;
	char *eid = NULL;
	int rc;

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
	return res != NULL ? res : sync_fail("out of memory");
}

/* contact_deleted: delete the linked external contact and the pair. */
static json_t *
sync_run_deleted(struct app_env *env, struct bm_ctx *ctx, json_t *data)
{
	char bid[SYNC_ID_MAX + 1];
	json_t *contact, *res = NULL;
	char *eid = NULL;
	int rc;

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
		if (sync_pair(env, ctx, 1, bid, eid) < 0) {
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
	return res != NULL ? res : sync_fail("out of memory");
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
	/*
	 * The import is a job a delivery process runs page by page: the
	 * answer never waits for it and no responder is held.  One pending
	 * import per installation: an install delivered again adds none.
	 */
	if (env->conf->import_on_install) {
		if ((res = app_sync_import_queue(env, ctx->request_id,
		    ctx->token)) == NULL || !sync_ok(res)) {
			json_decref(res);
			return BM_ERROR;
		}
		json_decref(res);
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
 * created on Botmatic in one call and their pairs saved.  Returns NULL, or
 * Botmatic's failure (new) when that call failed (counted as failed).
 */
static json_t *
sync_import_page(struct app_env *env, struct bm_ctx *ctx, const json_t *page,
    size_t *imported, size_t *skipped, size_t *failed)
{
	json_t *batch = json_array(), *eids = json_array(), *res = NULL, *c;
	json_t *ret = NULL;
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
		ret = res != NULL ? res : sync_fail("out of memory");
		res = NULL;
		goto out;
	}
	json_array_foreach(json_object_get(res, "contacts"), i, c) {
		char bid[SYNC_ID_MAX + 1];
		const char *e = json_string_value(json_array_get(eids, i));

		if (e == NULL || !sync_ok(c) || sync_member_id(c, "id", bid,
		    sizeof(bid)) < 0 || sync_pair(env, ctx, 0, bid, e) != 0) {
			(*failed)++;
			continue;
		}
		(*imported)++;
	}
out:
	json_decref(res);
	json_decref(batch);
	json_decref(eids);
	return ret;
}

json_t *
app_sync_import_queue(struct app_env *env, const char *reqid,
    const char *token)
{
	json_t *p = json_pack("{s:i}", "page", 1);
	uint64_t id = 0;

	if (p == NULL || app_ks_job_add(env->ks, reqid, token, "import",
	    SYNC_IMPORT_CONTACT, p, 1, 0, &id, NULL) < 0) {
		json_decref(p);
		return sync_fail("the import could not be queued");
	}
	json_decref(p);
	app_log(BM_LOG_INFO, reqid, APP_SYNC_MODULE, "import: queued as job "
	    "%llu", (unsigned long long)id);
	return json_pack("{s:b, s:b, s:I}", "success", 1, "queued", 1, "job",
	    (json_int_t)id);
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
		json_decref(sync_import_page(env, &ctx, contacts, &imported,
		    &skipped, &failed));
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
	    sizeof(bid)) < 0 || sync_pair(env, ctx, 0, bid, eid) != 0) {
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
		if (sync_pair(env, ctx, 1, bid, eid) < 0) {
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

/* Runs an external -> Botmatic op now (no queue).  Returns a result (new). */
static json_t *
sync_run_ext(struct app_env *env, struct bm_ctx *ctx, const char *op,
    const json_t *contact)
{
	char eid[SYNC_ID_MAX + 1];

	if (strcmp(op, "created") == 0)
		return app_sync_contact_create(ctx, contact);
	if (strcmp(op, "updated") == 0)
		return app_sync_contact_update(ctx, contact);
	if (strcmp(op, "deleted") == 0) {
		if (sync_member_id(contact, env->ext_id_key, eid,
		    sizeof(eid)) < 0)
			return sync_fail("the contact has no %s",
			    env->ext_id_key);
		return app_sync_contact_delete(ctx, eid);
	}
	return sync_fail("unknown operation %s", op);
}

static json_t *sync_ext_job(struct app_env *env, struct bm_ctx *ctx,
    const char *op, json_t *contact, int *temp);

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
	int rc, temp = 0;

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
	if (strcmp(op, "created") != 0 && strcmp(op, "updated") != 0 &&
	    strcmp(op, "deleted") != 0) {
		app_answer_error(ans, 400, "op must be created, updated or "
		    "deleted");
		goto out;
	}
	/* A job, as contact events are (SPEC §9). */
	res = sync_ext_job(env, &ctx, op, contact, &temp);
	if (temp) {
		app_answer_error(ans, 503, "temporary failure, try again");
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

/* --- jobs: contact events and imports through the delivery queue ------- */

/* A job's lease beyond the time its calls may take. */
#define SYNC_LEASE_MARGIN_MS 5000
/* Calls a job makes at most (contact_created: search, create or update). */
#define SYNC_JOB_CALLS 4
/* Longest delay a Retry-After is followed for. */
#define SYNC_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

static uint64_t sync_rand_state;

/* xorshift64, seeded per process: jitter needs no cryptography. */
static uint64_t
sync_rand(void)
{
	uint64_t x = sync_rand_state;

	if (x == 0)
		x = ((uint64_t)getpid() << 32) ^ (uint64_t)app_now_ms() ^
		    0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	sync_rand_state = x;
	return x;
}

/*
 * The delay before attempt n (0 the first) of a job: BM_RETRY_SCHEDULE's
 * entry +-20 %, and at least what a Retry-After asked (capped at a day).
 * -1 when the schedule has no attempt n: the job is dead.
 */
static int64_t
sync_retry_delay(const struct app_conf *conf, unsigned n, long retry_after)
{
	int64_t d, j, ra;

	if (n >= conf->retry_n)
		return -1;
	d = conf->retry_ms[n];
	if (d >= 5) {
		j = d / 5;
		d += (int64_t)(sync_rand() % (uint64_t)(2 * j + 1)) - j;
	}
	if (retry_after > 0) {
		ra = (int64_t)retry_after * 1000;
		if (ra > SYNC_RETRY_AFTER_MAX_MS)
			ra = SYNC_RETRY_AFTER_MAX_MS;
		if (ra > d)
			d = ra;
	}
	return d;
}

/* The kinds registered by parts above sync (app_sync_kind_add). */
static struct {
	const char *prefix;
	app_sync_kind_fn fn;
} sync_kinds[APP_SYNC_KINDS_MAX];
static size_t sync_nkinds;

int
app_sync_kind_add(const char *prefix, app_sync_kind_fn fn)
{
	size_t i;

	for (i = 0; i < sync_nkinds; i++)
		if (strcmp(sync_kinds[i].prefix, prefix) == 0) {
			sync_kinds[i].fn = fn;
			return 0;
		}
	if (sync_nkinds == APP_SYNC_KINDS_MAX)
		return -1;
	sync_kinds[sync_nkinds].prefix = prefix;
	sync_kinds[sync_nkinds].fn = fn;
	sync_nkinds++;
	return 0;
}

/* The function registered for kind, or NULL. */
static app_sync_kind_fn
sync_kind(const char *kind)
{
	size_t i;

	for (i = 0; i < sync_nkinds; i++)
		if (strncmp(kind, sync_kinds[i].prefix,
		    strlen(sync_kinds[i].prefix)) == 0)
			return sync_kinds[i].fn;
	return NULL;
}

/* Runs contact event name on data (no queue).  Returns a result (new). */
static json_t *
sync_run_event(struct app_env *env, struct bm_ctx *ctx, const char *name,
    json_t *data)
{
	if (strcmp(name, "contact_created") == 0)
		return sync_run_created(env, ctx, data);
	if (strcmp(name, "contact_updated") == 0)
		return sync_run_updated(env, ctx, data);
	if (strcmp(name, "contact_deleted") == 0)
		return sync_run_deleted(env, ctx, data);
	return sync_fail("unknown job kind %s", name);
}

/*
 * One page of an import job: payload {"page","prev","imported","skipped",
 * "failed"}.  *next (new) is the payload of the next page, NULL when this
 * was the last.  Returns a result (new); a failure of the external service
 * or of Botmatic leaves the page to be tried again.
 */
static json_t *
sync_run_import(struct app_env *env, struct bm_ctx *ctx,
    const json_t *payload, json_t **next)
{
	json_int_t page = json_integer_value(json_object_get(payload, "page"));
	const char *prev = json_string_value(json_object_get(payload, "prev"));
	size_t imported, skipped, failed, n;
	unsigned limit = env->conf->import_page;
	char first[SYNC_ID_MAX + 1] = "";
	json_t *res, *contacts, *bad;

	*next = NULL;
	imported = (size_t)json_integer_value(json_object_get(payload,
	    "imported"));
	skipped = (size_t)json_integer_value(json_object_get(payload,
	    "skipped"));
	failed = (size_t)json_integer_value(json_object_get(payload, "failed"));
	if (page < 1 || page > SYNC_IMPORT_MAX_PAGES)
		return sync_fail("import: page %" JSON_INTEGER_FORMAT " out of "
		    "range", page);
	if (page == 1)
		app_log(BM_LOG_INFO, ctx->request_id, APP_SYNC_MODULE,
		    "import: started");
	res = env->consumer->list_page(ctx, (unsigned)page, limit,
	    env->consumer->arg);
	if (res == NULL || !sync_ok(res))
		return res != NULL ? res : sync_fail("out of memory");
	contacts = json_object_get(res, "contacts");
	n = json_array_size(contacts);
	if (n > 0)
		(void)sync_member_id(json_array_get(contacts, 0),
		    env->ext_id_key, first, sizeof(first));
	if (n > 0 && prev != NULL && first[0] != '\0' &&
	    strcmp(first, prev) == 0) {
		/* A service that ignores "page" would loop for ever. */
		app_log(BM_LOG_WARN, ctx->request_id, APP_SYNC_MODULE, "import: "
		    "page %" JSON_INTEGER_FORMAT " repeats the previous one: "
		    "stopping", page);
		n = 0;
	} else if (n > 0) {
		if ((bad = sync_import_page(env, ctx, contacts, &imported,
		    &skipped, &failed)) != NULL) {
			json_decref(res);
			return bad;
		}
		app_log(BM_LOG_INFO, ctx->request_id, APP_SYNC_MODULE, "import: "
		    "page %" JSON_INTEGER_FORMAT ": %zu contacts; %zu imported, "
		    "%zu already linked, %zu failed so far", page, n, imported,
		    skipped, failed);
	}
	json_decref(res);
	if (n > 0 && n >= limit) {
		*next = json_pack("{s:I, s:s, s:I, s:I, s:I}", "page",
		    page + 1, "prev", first, "imported", (json_int_t)imported,
		    "skipped", (json_int_t)skipped, "failed",
		    (json_int_t)failed);
		return *next != NULL ? json_pack("{s:b}", "success", 1) :
		    sync_fail("out of memory");
	}
	app_log(BM_LOG_INFO, ctx->request_id, APP_SYNC_MODULE, "import: done: "
	    "%zu imported, %zu already linked, %zu failed", imported, skipped,
	    failed);
	return json_pack("{s:b, s:I, s:I, s:I}", "success", 1, "imported",
	    (json_int_t)imported, "skipped", (json_int_t)skipped, "failed",
	    (json_int_t)failed);
}

/* How an attempt ended, from its result and the calls it made. */
static enum app_sync_outcome
sync_outcome(const json_t *res, unsigned transient)
{
	json_int_t st;

	if (res != NULL && sync_ok(res))
		return APP_SYNC_DONE;
	st = json_integer_value(json_object_get(res, "status"));
	if (st == 0)
		return transient > 0 ? APP_SYNC_RETRY : APP_SYNC_FAILED;
	/* A 2xx that could not be understood may be a proxy's page: retry
	 * (the Idempotency-Key covers a POST that did happen). */
	if (app_http_status_transient((long)st) || (st >= 200 && st < 300))
		return APP_SYNC_RETRY;
	return APP_SYNC_FAILED;
}

/* What a job keeps of its last attempt (JSON text, new): no secret. */
static char *
sync_last_text(const json_t *res, const struct app_http_last *l)
{
	const char *e = json_string_value(json_object_get(res, "error"));
	char req[300];
	json_t *o;
	char *text;

	snprintf(req, sizeof(req), "%s %s", l->method, l->path);
	o = json_pack("{s:s, s:I, s:s, s:s}", "request", l->method[0] != '\0' ?
	    req : "", "status", (json_int_t)l->status, "answer", l->answer,
	    "error", e != NULL ? e : l->error);
	text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) :
	    NULL;
	json_decref(o);
	return text;
}

/* "<install id>-<job>[-p<page>]": the Idempotency-Key prefix of a job. */
static void
sync_idem(struct app_env *env, struct bm_ctx *ctx, uint64_t id,
    const json_t *payload, char *buf, size_t cap)
{
	json_t *client = NULL;
	const char *iid = NULL;
	json_int_t page = json_integer_value(json_object_get(payload, "page"));

	if (app_ks_install_get(env->ks, ctx->request_id, ctx->token, &client)
	    == 0)
		iid = json_string_value(json_object_get(client, "install_id"));
	if (page > 0)
		snprintf(buf, cap, "%s-%llu-p%" JSON_INTEGER_FORMAT,
		    iid != NULL ? iid : "0", (unsigned long long)id, page);
	else
		snprintf(buf, cap, "%s-%llu", iid != NULL ? iid : "0",
		    (unsigned long long)id);
	json_decref(client);
}

/*
 * Writes the outcome of an attempt at job id (leased to this process;
 * attempts failed before) of kind, whose result is res, with transient
 * failed calls and l its last exchange: done with the pairs in fx in one
 * transaction (next: the next page of an import); failed for good:
 * dropped when answered inline (the answer says so), dead otherwise;
 * failed transiently: due again on the schedule, or dead.  The one
 * finishing of both paths, blocking and asynchronous.
 */
static enum app_sync_outcome
sync_job_finish(struct app_env *env, struct bm_ctx *ctx, uint64_t id,
    unsigned attempts, const char *kind, const json_t *res,
    const json_t *next, struct app_ks_fx *fx, unsigned transient,
    const struct app_http_last *l, int answered_inline)
{
	enum app_sync_outcome oc;
	char *last = NULL;
	int64_t delay;
	int import = strcmp(kind, "import") == 0, rc;
	int ext = strncmp(kind, "ext_", 4) == 0;

	oc = sync_outcome(res, transient);
	if (!import && sync_kind(kind) == NULL)
		app_breaker_note(ext ? APP_TARGET_BOTMATIC : APP_TARGET_EXT,
		    oc != APP_SYNC_RETRY);
	switch (oc) {
	case APP_SYNC_DONE:
		rc = app_ks_job_done(env->ks, ctx->request_id, id, ctx->token,
		    fx, next);
		if (rc < 0)
			/* Logged; the lease lapses and the job runs again. */
			oc = APP_SYNC_RETRY;
		else if (next == NULL)
			app_metrics_add(APP_METRIC_JOBS, APP_JOB_DONE, 0, 1);
		break;
	case APP_SYNC_FAILED:
		if (answered_inline) {
			(void)app_ks_job_cancel(env->ks, ctx->request_id, id);
			break;
		}
		last = sync_last_text(res, l);
		app_log(BM_LOG_WARN, ctx->request_id, APP_SYNC_MODULE, "job %llu "
		    "(%s) failed for good: kept as dead", (unsigned long long)id,
		    kind);
		(void)app_ks_job_retry(env->ks, ctx->request_id, id, 0,
		    last != NULL ? last : "", 1);
		app_metrics_add(APP_METRIC_JOBS, APP_JOB_DEAD, 0, 1);
		break;
	default:
		last = sync_last_text(res, l);
		delay = sync_retry_delay(env->conf, attempts + 1, l->retry_after);
		if (delay < 0)
			app_log(BM_LOG_WARN, ctx->request_id, APP_SYNC_MODULE,
			    "job %llu (%s): attempt %u failed, the schedule is "
			    "exhausted: kept as dead", (unsigned long long)id,
			    kind, attempts + 1);
		else
			app_log(BM_LOG_INFO, ctx->request_id, APP_SYNC_MODULE,
			    "job %llu (%s): attempt %u failed: next in %lld ms",
			    (unsigned long long)id, kind, attempts + 1,
			    (long long)delay);
		(void)app_ks_job_retry(env->ks, ctx->request_id, id,
		    delay < 0 ? 0 : delay, last != NULL ? last : "", delay < 0);
		app_metrics_add(APP_METRIC_JOBS, delay < 0 ? APP_JOB_DEAD :
		    APP_JOB_RETRIED, 0, 1);
		break;
	}
	free(last);
	return oc;
}

/*
 * Attempts job id of kind on payload on the blocking path, with ctx naming
 * the installation, then writes the outcome (sync_job_finish).  *result
 * is the attempt's result (new).
 */
static enum app_sync_outcome
sync_job_run(struct app_env *env, struct bm_ctx *ctx, uint64_t id,
    unsigned attempts, const char *kind, const json_t *payload,
    int64_t deadline, int answered_inline, json_t **result)
{
	struct app_ks_fx fx = { NULL, 0, 0 };
	json_t *res, *next = NULL;
	enum app_sync_outcome oc;
	app_sync_kind_fn fn = sync_kind(kind);
	char idem[128];
	unsigned transient;

	sync_idem(env, ctx, id, payload, idem, sizeof(idem));
	app_http_job_begin(idem, deadline);
	sync_fx = &fx;
	if (fn != NULL)
		res = fn(env, ctx, kind, payload);
	else if (strcmp(kind, "import") == 0)
		res = sync_run_import(env, ctx, payload, &next);
	else if (strncmp(kind, "ext_", 4) == 0)
		res = sync_run_ext(env, ctx, kind + 4,
		    json_object_get(payload, "contact"));
	else
		res = sync_run_event(env, ctx, kind,
		    json_object_get(payload, "data"));
	sync_fx = NULL;
	transient = app_http_job_transient();
	app_http_job_end();
	oc = sync_job_finish(env, ctx, id, attempts, kind, res, next, &fx,
	    transient, app_http_last(), answered_inline);
	json_decref(next);
	app_ks_fx_clear(&fx);
	*result = res;
	return oc;
}

/* {"data":{"success":true,"queued":true},"type":"data"} (SPEC §9). */
static enum bm_rc
sync_queued_reply(json_t **reply)
{
	app_metrics_add(APP_METRIC_JOBS, APP_JOB_QUEUED, 0, 1);
	*reply = json_pack("{s:{s:b, s:b}, s:s}", "data", "success", 1,
	    "queued", 1, "type", "data");
	return *reply != NULL ? BM_OK : BM_ERROR;
}

/*
 * contact_created, contact_updated, contact_deleted: the event is a job,
 * written first.  Inline, when it is the first of its contact and the
 * external service is not known to be down, it is attempted at once
 * within BM_SYNC_DEADLINE_MS and answered as SPEC §4 says when it succeeds
 * or fails for good; otherwise it is answered queued.
 */
static enum bm_rc
sync_event(struct bm_ctx *ctx, json_t *data, json_t **reply, void *arg)
{
	char bid[SYNC_ID_MAX + 1];
	struct app_env *env = sync_env(ctx);
	json_t *contact, *payload = NULL, *res = NULL;
	enum app_sync_outcome oc;
	uint64_t id = 0;
	int leased = 0, queued, del;
	int64_t lease;

	(void)arg;
	if (env == NULL)
		return BM_ERROR;
	del = strcmp(ctx->name, "contact_deleted") == 0;
	contact = sync_event_contact(ctx, data);
	if (contact == NULL || ((!del || sync_member_id(contact, "contact_id",
	    bid, sizeof(bid)) < 0) && sync_member_id(contact, "id", bid,
	    sizeof(bid)) < 0))
		/* No contact to queue for: answered as before. */
		return sync_reply(sync_run_event(env, ctx, ctx->name, data),
		    reply);
	if ((payload = json_pack("{s:O}", "data", data)) == NULL)
		return BM_ERROR;
	queued = env->conf->sync_queued || app_breaker_open(APP_TARGET_EXT);
	lease = queued ? 0 : (int64_t)env->conf->sync_deadline +
	    SYNC_LEASE_MARGIN_MS;
	if (app_ks_job_add(env->ks, ctx->request_id, ctx->token, ctx->name,
	    bid, payload, 0, lease, &id, &leased) < 0) {
		/* Not queued: Botmatic may deliver it again. */
		json_decref(payload);
		return BM_ETEMP;
	}
	if (!leased) {
		app_log(BM_LOG_INFO, ctx->request_id, APP_SYNC_MODULE, "%s "
		    "queued as job %llu (%s)", ctx->name, (unsigned long long)id,
		    env->conf->sync_queued ? "BM_SYNC_MODE=queued" : queued ?
		    "the external service is down" :
		    "behind a pending job of the contact");
		json_decref(payload);
		return sync_queued_reply(reply);
	}
	oc = sync_job_run(env, ctx, id, 0, ctx->name, payload,
	    app_now_ms() + (int64_t)env->conf->sync_deadline, 1, &res);
	json_decref(payload);
	if (oc == APP_SYNC_RETRY) {
		json_decref(res);
		return sync_queued_reply(reply);
	}
	return sync_reply(res, reply);
}

/*
 * The external service's change (op on contact) as a job, ordered per
 * external id: attempted at once unless BM_SYNC_MODE=queued or Botmatic is
 * known to be down; answered with the op's result, or {"success":true,
 * "queued":true} when it is queued.  *temp is set when it could not even
 * be queued (the caller answers 503: the service may send it again).
 * Returns a result (new), NULL when out of memory.
 */
static json_t *
sync_ext_job(struct app_env *env, struct bm_ctx *ctx, const char *op,
    json_t *contact, int *temp)
{
	char eid[SYNC_ID_MAX + 1], ckey[SYNC_ID_MAX + 1], kind[16];
	json_t *payload, *res = NULL;
	enum app_sync_outcome oc;
	uint64_t id = 0;
	int leased = 0, queued;
	int64_t lease;

	*temp = 0;
	if (sync_member_id(contact, env->ext_id_key, eid, sizeof(eid)) < 0 ||
	    strlen(eid) > SYNC_ID_MAX - 2)
		/* Nothing to order it by: run as before (it fails clearly). */
		return sync_run_ext(env, ctx, op, contact);
	snprintf(ckey, sizeof(ckey), "e:%s", eid);
	snprintf(kind, sizeof(kind), "ext_%s", op);
	if ((payload = json_pack("{s:O}", "contact", contact)) == NULL)
		return NULL;
	queued = env->conf->sync_queued ||
	    app_breaker_open(APP_TARGET_BOTMATIC);
	lease = queued ? 0 : (int64_t)env->conf->sync_deadline +
	    SYNC_LEASE_MARGIN_MS;
	if (app_ks_job_add(env->ks, ctx->request_id, ctx->token, kind, ckey,
	    payload, 0, lease, &id, &leased) < 0) {
		json_decref(payload);
		*temp = 1;
		return NULL;
	}
	if (leased) {
		oc = sync_job_run(env, ctx, id, 0, kind, payload, app_now_ms() +
		    (int64_t)env->conf->sync_deadline, 1, &res);
		if (oc != APP_SYNC_RETRY) {
			json_decref(payload);
			return res;
		}
		json_decref(res);
	} else
		app_log(BM_LOG_INFO, ctx->request_id, APP_SYNC_MODULE, "%s "
		    "queued as job %llu", kind, (unsigned long long)id);
	json_decref(payload);
	app_metrics_add(APP_METRIC_JOBS, APP_JOB_QUEUED, 0, 1);
	return json_pack("{s:b, s:b}", "success", 1, "queued", 1);
}

enum app_sync_outcome
app_sync_deliver(struct app_env *env, const struct app_ks_job *j)
{
	char reqid[64];
	struct bm_req req;
	struct bm_ctx ctx;
	json_t *res = NULL;
	enum app_sync_outcome oc;

	snprintf(reqid, sizeof(reqid), "job-%llu", (unsigned long long)j->id);
	app_req_init(&req, env, reqid);
	sync_ctx_init(&ctx, &req, env, reqid, j->token);
	ctx.name = j->kind;
	if (j->payload == NULL || (sync_kind(j->kind) == NULL &&
	    (env->map == NULL || env->consumer == NULL))) {
		/* Cannot run here at all: kept as dead for the operator. */
		app_log(BM_LOG_WARN, reqid, APP_SYNC_MODULE, "job %llu (%s) cannot "
		    "run (%s): kept as dead", (unsigned long long)j->id, j->kind,
		    j->payload == NULL ? "damaged payload" : "contact sync is off");
		(void)app_ks_job_retry(env->ks, reqid, j->id, 0,
		    "{\"error\":\"cannot run\"}", 1);
		app_req_release(&req);
		return APP_SYNC_FAILED;
	}
	oc = sync_job_run(env, &ctx, j->id, j->attempts, j->kind, j->payload,
	    0, 0, &res);
	if (oc == APP_SYNC_DONE && strcmp(j->kind, "import") != 0)
		app_log(BM_LOG_INFO, reqid, APP_SYNC_MODULE, "job %llu (%s) "
		    "delivered", (unsigned long long)j->id, j->kind);
	json_decref(res);
	app_req_release(&req);
	return oc;
}

/* --- the asynchronous path --------------------------------------------- */

/* A job in flight: its context, its effects, where its state machine is. */
struct sync_flight {
	struct app_env *env;
	struct app_extrest *rest;
	struct app_http_multi *m;
	struct app_ks_job *j;         /* owned */
	struct app_http_ctx hctx;     /* its calls' Idempotency-Key, last */
	struct app_ks_fx fx;          /* its pair writes */
	struct bm_req req;
	struct bm_ctx ctx;
	char reqid[64];
	enum { FL_UPDATE, FL_CREATE, FL_DELETE, FL_SEARCH } step;
	char bid[SYNC_ID_MAX + 1], eid[SYNC_ID_MAX + 1];
	json_t *ext;                  /* the contact mapped toward ext */
	void (*finished)(void *arg);
	void *arg;
};

static void sync_flight_result(void *arg, json_t *res);

/* Writes the outcome of f with its result res (stolen) and frees f. */
static void
sync_flight_end(struct sync_flight *f, json_t *res)
{
	enum app_sync_outcome oc;
	void (*finished)(void *) = f->finished;
	void *arg = f->arg;

	if (res == NULL)
		res = sync_fail("out of memory");
	oc = sync_job_finish(f->env, &f->ctx, f->j->id, f->j->attempts,
	    f->j->kind, res, NULL, &f->fx, f->hctx.transient, &f->hctx.last,
	    0);
	if (oc == APP_SYNC_DONE)
		app_log(BM_LOG_INFO, f->reqid, APP_SYNC_MODULE, "job %llu (%s) "
		    "delivered", (unsigned long long)f->j->id, f->j->kind);
	json_decref(res);
	json_decref(f->ext);
	app_ks_fx_clear(&f->fx);
	app_req_release(&f->req);
	app_ks_job_free(f->j);
	free(f);
	finished(arg);
}

/* Starts the call of step op; a call that ends at once ends the job. */
static void
sync_flight_call(struct sync_flight *f, enum app_ext_op op, const char *id,
    const char *email, const json_t *contact)
{
	json_t *res = NULL;

	f->step = op == APP_EXT_UPDATE ? FL_UPDATE : op == APP_EXT_CREATE ?
	    FL_CREATE : op == APP_EXT_DELETE ? FL_DELETE : FL_SEARCH;
	if (app_extrest_start(f->rest, f->m, &f->hctx, f->reqid, op, id, email,
	    contact, sync_flight_result, f, &res) != 0)
		sync_flight_result(f, res);
}

/* Creates f->ext externally (as sync_create_external). */
static void
sync_flight_create(struct sync_flight *f)
{
	json_t *rec;

	if ((rec = json_deep_copy(f->ext)) == NULL) {
		sync_flight_end(f, sync_fail("out of memory"));
		return;
	}
	json_object_del(rec, f->env->ext_id_key);
	sync_flight_call(f, APP_EXT_CREATE, NULL, NULL, rec);
	json_decref(rec);
}

/* The result of f's current call (stolen): the next step, or the end. */
static void
sync_flight_result(void *arg, json_t *res)
{
	struct sync_flight *f = arg;
	struct app_env *env = f->env;
	json_t *fc, *push, *out;

	if (res == NULL) {
		sync_flight_end(f, NULL);
		return;
	}
	switch (f->step) {
	case FL_UPDATE:
		if (sync_not_found(res)) {
			/* Gone on the other side: create it again, relinked. */
			app_log(BM_LOG_INFO, f->reqid, APP_SYNC_MODULE,
			    "external contact %s is gone: creating it again",
			    f->eid);
			json_decref(res);
			sync_flight_create(f);
			return;
		}
		if (sync_ok(res)) {
			json_decref(res);
			res = json_pack("{s:b}", "success", 1);
		}
		break;
	case FL_CREATE:
		if (!sync_ok(res))
			break;
		if (app_sync_id_text(json_object_get(res, "id"), f->eid,
		    sizeof(f->eid)) < 0) {
			json_decref(res);
			res = sync_fail("the external service returned no "
			    "usable id");
			break;
		}
		if (app_ks_fx_add(&f->fx, 0, f->bid, f->eid) < 0) {
			json_decref(res);
			res = sync_fail("created externally with id %s, but the "
			    "id pair could not be saved", f->eid);
			break;
		}
		res = sync_created_result(res);
		break;
	case FL_DELETE:
		/* Already gone on the other side is what we wanted. */
		if (!sync_ok(res) && !sync_not_found(res))
			break;
		json_decref(res);
		res = app_ks_fx_add(&f->fx, 1, f->bid, f->eid) < 0 ?
		    sync_fail("deleted externally, but the id pair could not "
		    "be deleted") : json_pack("{s:b}", "success", 1);
		break;
	case FL_SEARCH:
		if (sync_not_found(res)) {
			json_decref(res);
			sync_flight_create(f);
			return;
		}
		if (!sync_ok(res))
			break;
		fc = json_object_get(res, "contact");
		if (sync_member_id(fc, env->ext_id_key, f->eid,
		    sizeof(f->eid)) < 0 && sync_member_id(fc, "id", f->eid,
		    sizeof(f->eid)) < 0) {
			json_decref(res);
			res = sync_fail("the external contact found by email has "
			    "no id");
			break;
		}
		if (app_ks_fx_add(&f->fx, 0, f->bid, f->eid) < 0) {
			json_decref(res);
			res = sync_fail("the id pair could not be saved");
			break;
		}
		/* Rare (a contact linked by email): this call blocks. */
		push = sync_push_to_botmatic(env, &f->ctx, f->bid, fc);
		if (!sync_ok(push))
			app_log(BM_LOG_WARN, f->reqid, APP_SYNC_MODULE, "linked to "
			    "external %s, but the values could not be pushed to "
			    "Botmatic", f->eid);
		json_decref(push);
		out = json_pack("{s:b, s:O}", "success", 1, "id",
		    json_object_get(fc, env->ext_id_key) != NULL ?
		    json_object_get(fc, env->ext_id_key) :
		    json_object_get(fc, "id"));
		json_decref(res);
		res = out;
		break;
	}
	sync_flight_end(f, res);
}

int
app_sync_flight_start(struct app_env *env, struct app_extrest *rest,
    struct app_http_multi *m, struct app_ks_job *j,
    void (*finished)(void *arg), void *arg)
{
	struct sync_flight *f;
	json_t *data, *contact, *res = NULL;
	const char *email;
	char idem[128], *linked = NULL;
	int created, deleted, rc;

	created = strcmp(j->kind, "contact_created") == 0;
	deleted = strcmp(j->kind, "contact_deleted") == 0;
	if ((!created && !deleted && strcmp(j->kind, "contact_updated") != 0) ||
	    env->map == NULL || env->consumer == NULL || j->payload == NULL ||
	    rest == NULL || m == NULL)
		return 0;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return 0;  /* the blocking path will run it */
	f->env = env;
	f->rest = rest;
	f->m = m;
	f->j = j;
	f->finished = finished;
	f->arg = arg;
	snprintf(f->reqid, sizeof(f->reqid), "job-%llu",
	    (unsigned long long)j->id);
	app_req_init(&f->req, env, f->reqid);
	sync_ctx_init(&f->ctx, &f->req, env, f->reqid, j->token);
	f->ctx.name = j->kind;
	sync_idem(env, &f->ctx, j->id, j->payload, idem, sizeof(idem));
	app_http_ctx_begin(&f->hctx, idem, 0);
	data = json_object_get(j->payload, "data");

	if (deleted) {
		contact = sync_event_contact(&f->ctx, data);
		if (contact == NULL || (sync_member_id(contact, "contact_id",
		    f->bid, sizeof(f->bid)) < 0 && sync_member_id(contact, "id",
		    f->bid, sizeof(f->bid)) < 0)) {
			res = sync_fail("no contact_id in data");
			goto end;
		}
	} else if ((res = sync_event_ext(&f->ctx, data, f->bid,
	    sizeof(f->bid), &contact, &f->ext)) != NULL)
		goto end;
	rc = app_ks_ext_id_get(env->ks, f->reqid, j->token, f->bid, &linked);
	if (rc < 0) {
		res = sync_fail("the keystore failed");
		goto end;
	}
	if (rc == 0)
		snprintf(f->eid, sizeof(f->eid), "%s", linked);
	if (deleted) {
		if (rc != 0)
			res = sync_missing();
		else
			sync_flight_call(f, APP_EXT_DELETE, f->eid, NULL, NULL);
	} else if (created) {
		email = json_string_value(json_object_get(contact, "email"));
		if (rc == 0)
			res = json_pack("{s:b, s:o}", "success", 1, "id",
			    sync_ext_id_value(env, &f->ctx, linked));
		else if (email != NULL && *email != '\0')
			sync_flight_call(f, APP_EXT_SEARCH, NULL, email, NULL);
		else
			sync_flight_create(f);
	} else if (rc == 0) {
		/* The stored id goes under the ext id key, as js-contact did. */
		json_object_set_new(f->ext, env->ext_id_key,
		    sync_ext_id_value(env, &f->ctx, linked));
		sync_flight_call(f, APP_EXT_UPDATE, f->eid, NULL, f->ext);
	} else
		sync_flight_create(f);
	free(linked);
	/* Set only where no call started (a call may have ended f). */
	if (res != NULL)
		sync_flight_end(f, res);
	return 1;
end:
	free(linked);
	sync_flight_end(f, res);
	return 1;
}

int64_t
app_sync_lease_ms(const struct app_conf *conf)
{
	return (int64_t)conf->http_timeout * SYNC_JOB_CALLS +
	    SYNC_LEASE_MARGIN_MS;
}

int
app_sync_register(struct app_registry *reg, char *err, size_t errlen)
{
	if (app_registry_add_event(reg, APP_SYNC_MODULE, "contact_created",
	    sync_event, NULL, err, errlen) < 0 ||
	    app_registry_add_event(reg, APP_SYNC_MODULE, "contact_updated",
	    sync_event, NULL, err, errlen) < 0 ||
	    app_registry_add_event(reg, APP_SYNC_MODULE, "contact_deleted",
	    sync_event, NULL, err, errlen) < 0 ||
	    app_registry_add_hook(reg, 0, APP_SYNC_MODULE, sync_install_hook,
	    NULL, err, errlen) < 0 ||
	    app_registry_add_event(reg, APP_SYNC_MODULE, "install",
	    sync_install_answer, NULL, err, errlen) < 0)
		return -1;
	return 0;
}

int
app_sync_consumer_open(struct app_env *env, const char *who,
    struct app_extrest **rest, struct bm_consumer *restc)
{
	const struct app_conf *conf = env->conf;
	const struct app_consumer *mc;
	char err[512];

	env->ext_id_key = conf->ext_id_field != NULL ? conf->ext_id_field :
	    map_id_name(env->map, MAP_EXT) != NULL ?
	    map_id_name(env->map, MAP_EXT) : "id";
	if (strcmp(conf->ext_consumer, "rest") == 0) {
		if ((*rest = app_extrest_new(conf, env->ext_id_key, err,
		    sizeof(err))) == NULL) {
			app_log(BM_LOG_ERROR, NULL, who, "external consumer: %s",
			    err);
			return -1;
		}
		app_extrest_consumer(*rest, restc);
		env->consumer = restc;
		return 0;
	}
	/* Checked by the master before fork. */
	if ((mc = app_registry_consumer(env->reg, conf->ext_consumer + 7)) ==
	    NULL)
		return -1;
	env->consumer = &mc->c;
	return 0;
}
