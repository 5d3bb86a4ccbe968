/*
 * store/ops.c - the public face of the store: store_open() picks the
 * backend named by the options, and every other function forwards to the
 * handle's backend (struct store_ops, store_int.h), so callers never know
 * which one runs.  Validation that does not depend on the backend is done
 * by each backend itself, with its own messages.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int
store_open(struct store **out, const struct store_opts *o, char *err,
    size_t errlen)
{
	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (o == NULL) {
		snprintf(err, errlen, "store: no options given");
		return STORE_EINVAL;
	}
	switch (o->backend) {
	case STORE_BACKEND_BDB:
		return store__bdb_open(out, o, err, errlen);
	case STORE_BACKEND_REDIS:
		/* Never the key beside what it seals: a Redis dump or AOF
		 * would open every secret. */
		if (o->key_file == NULL || o->key_file[0] == '\0') {
			snprintf(err, errlen, "BM_SECRET_KEY_FILE: required "
			    "with BM_STORE=redis (the sealing key is never "
			    "kept in Redis)");
			return STORE_EINVAL;
		}
		return store__redis_open(out, o, err, errlen);
	default:
		snprintf(err, errlen, "store: unknown backend %d",
		    (int)o->backend);
		return STORE_EINVAL;
	}
}

int
store_close(struct store *s)
{
	if (s == NULL)
		return 0;
	return s->ops->close(s);
}

const char *
store_strerror(const struct store *s)
{
	return s != NULL ? s->err : "no store";
}

int
store_opts_env(struct store_opts *o, char *err, size_t errlen)
{
	const char *v;
	char *end;
	unsigned long ms;

	if (errlen > 0)
		err[0] = '\0';
	v = getenv("BM_STORE");
	if (v == NULL || v[0] == '\0' || strcmp(v, "bdb") == 0)
		o->backend = STORE_BACKEND_BDB;
	else if (strcmp(v, "redis") == 0)
		o->backend = STORE_BACKEND_REDIS;
	else {
		snprintf(err, errlen, "BM_STORE: expected bdb or redis");
		return STORE_EINVAL;
	}
	v = getenv("BM_REDIS_URL");
	o->redis_url = v != NULL && v[0] != '\0' ? v : NULL;
	v = getenv("BM_REDIS_SENTINELS");
	o->redis_sentinels = v != NULL && v[0] != '\0' ? v : NULL;
	v = getenv("BM_REDIS_MASTER");
	o->redis_master = v != NULL && v[0] != '\0' ? v : NULL;
	v = getenv("BM_REDIS_KEYS");
	if (v == NULL || v[0] == '\0')
		o->redis_js_keys = 0;
	else if (strcmp(v, "js-redis-key-store") == 0)
		o->redis_js_keys = 1;
	else {
		snprintf(err, errlen, "BM_REDIS_KEYS: expected "
		    "js-redis-key-store or nothing");
		return STORE_EINVAL;
	}
	v = getenv("BM_REDIS_TIMEOUT_MS");
	if (v != NULL && v[0] != '\0') {
		errno = 0;
		ms = strtoul(v, &end, 10);
		if (errno != 0 || *end != '\0' || v[0] == '-' || ms == 0 ||
		    ms > 600000) {
			snprintf(err, errlen, "BM_REDIS_TIMEOUT_MS: expected "
			    "milliseconds, 1 to 600000");
			return STORE_EINVAL;
		}
		o->redis_timeout_ms = (unsigned)ms;
	}
	if (o->backend == STORE_BACKEND_REDIS && o->redis_url == NULL &&
	    o->redis_sentinels == NULL) {
		snprintf(err, errlen, "BM_STORE=redis: BM_REDIS_URL or "
		    "BM_REDIS_SENTINELS is required");
		return STORE_EINVAL;
	}
	if (o->redis_sentinels != NULL && o->redis_master == NULL) {
		snprintf(err, errlen, "BM_REDIS_SENTINELS: BM_REDIS_MASTER is "
		    "required with it");
		return STORE_EINVAL;
	}
	return STORE_OK;
}

/* --- forwarding: every function below is its backend's ---------------- */

int
store_ids_save(struct store *s, const char *integ, const char *bid,
    const char *eid)
{
	return s->ops->ids_save(s, integ, bid, eid);
}

int
store_ext_id_get(struct store *s, const char *integ, const char *bid,
    char **out)
{
	return s->ops->ext_id_get(s, integ, bid, out);
}

int
store_botmatic_id_get(struct store *s, const char *integ, const char *eid,
    char **out)
{
	return s->ops->botmatic_id_get(s, integ, eid, out);
}

int
store_ids_delete(struct store *s, const char *integ, const char *bid,
    const char *eid)
{
	return s->ops->ids_delete(s, integ, bid, eid);
}

int
store_ids_delete_all(struct store *s, const char *integ, size_t *deleted)
{
	return s->ops->ids_delete_all(s, integ, deleted);
}

int
store_ids_foreach(struct store *s, const char *integ, store_pair_fn fn,
    void *arg)
{
	return s->ops->ids_foreach(s, integ, fn, arg);
}

int
store_install_record(struct store *s, const char *token, const void *settings,
    size_t settings_len, struct store_install **out)
{
	return s->ops->install_record(s, token, settings, settings_len, out);
}

int
store_install_get(struct store *s, const char *token,
    struct store_install **out)
{
	return s->ops->install_get(s, token, out);
}

int
store_install_get_by_id(struct store *s, const char *install_id,
    struct store_install **out)
{
	return s->ops->install_get_by_id(s, install_id, out);
}

int
store_install_settings_update(struct store *s, const char *token,
    store_settings_fn fn, void *arg)
{
	return s->ops->install_settings_update(s, token, fn, arg);
}

int
store_install_put(struct store *s, const struct store_install *in)
{
	return s->ops->install_put(s, in);
}

int
store_install_delete(struct store *s, const char *token, size_t *pairs)
{
	return s->ops->install_delete(s, token, pairs);
}

int
store_install_foreach(struct store *s, store_install_fn fn, void *arg)
{
	return s->ops->install_foreach(s, fn, arg);
}

int
store_state_get(struct store *s, const char *token, const char *name,
    char **val, size_t *len)
{
	return s->ops->state_get(s, token, name, val, len);
}

int
store_state_set(struct store *s, const char *token, const char *name,
    const void *val, size_t len)
{
	return s->ops->state_set(s, token, name, val, len);
}

int
store_state_delete(struct store *s, const char *token, const char *name)
{
	return s->ops->state_delete(s, token, name);
}

int
store_delivery_claim(struct store *s, const char *install_id, const char *id,
    int64_t now, unsigned ttl_s, int *dup)
{
	return s->ops->delivery_claim(s, install_id, id, now, ttl_s, dup);
}

int
store_delivery_release(struct store *s, const char *install_id, const char *id)
{
	return s->ops->delivery_release(s, install_id, id);
}

int
store_job_add(struct store *s, const struct store_job_spec *sp, uint64_t *id,
    unsigned *flags)
{
	return s->ops->job_add(s, sp, id, flags);
}

int
store_delivery_accept(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s,
    const struct store_job_spec *jobs, size_t n, uint64_t *ids, int *dup)
{
	return s->ops->delivery_accept(s, install_id, id, now, ttl_s, jobs, n,
	    ids, dup);
}

int
store_job_claim(struct store *s, uint32_t pid, int64_t now,
    int64_t lease_until, struct store_job **out)
{
	return s->ops->job_claim(s, pid, now, lease_until, out);
}

int
store_job_done(struct store *s, uint64_t id, const struct store_op *ops,
    size_t n, const char *next_payload, int64_t now)
{
	return s->ops->job_done(s, id, ops, n, next_payload, now);
}

int
store_job_retry(struct store *s, uint64_t id, uint32_t pid, int64_t next_at,
    const char *last, int dead)
{
	return s->ops->job_retry(s, id, pid, next_at, last, dead);
}

int
store_job_renew(struct store *s, uint64_t id, uint32_t pid,
    int64_t lease_until)
{
	return s->ops->job_renew(s, id, pid, lease_until);
}

int
store_job_get(struct store *s, uint64_t id, struct store_job **out)
{
	return s->ops->job_get(s, id, out);
}

int
store_job_foreach(struct store *s, store_job_fn fn, void *arg)
{
	return s->ops->job_foreach(s, fn, arg);
}

int
store_job_revive(struct store *s, uint64_t id, int64_t now, uint64_t *newid)
{
	return s->ops->job_revive(s, id, now, newid);
}

int
store_jobs_revive_dead(struct store *s, int64_t now, size_t *count)
{
	return s->ops->jobs_revive_dead(s, now, count);
}

int
store_jobs_release(struct store *s, int64_t now, store_job_alive_fn alive,
    size_t *count)
{
	return s->ops->jobs_release(s, now, alive, count);
}

int
store_jobs_stats(struct store *s, struct store_jobs_stats *st)
{
	return s->ops->jobs_stats(s, st);
}

int
store_job_cancel(struct store *s, uint64_t id)
{
	return s->ops->job_cancel(s, id);
}

int
store_jobs_cancel(struct store *s, const char *integ, size_t *count)
{
	return s->ops->jobs_cancel(s, integ, count);
}

int
store_purge_step(struct store *s, size_t max_keys, size_t *deleted, int *more)
{
	return s->ops->purge_step(s, max_keys, deleted, more);
}

int
store_service_put(struct store *s, const struct store_service *in)
{
	return s->ops->service_put(s, in);
}

int
store_service_get(struct store *s, const char *install_id, const char *service,
    const char *group, const char *user, struct store_service **out)
{
	return s->ops->service_get(s, install_id, service, group, user, out);
}

int
store_service_lease(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int64_t now, unsigned lease_s, int *got)
{
	return s->ops->service_lease(s, install_id, service, group, user, gen,
	    now, lease_s, got);
}

int
store_service_refreshed(struct store *s, const struct store_service *in,
    uint64_t gen)
{
	return s->ops->service_refreshed(s, in, gen);
}

int
store_service_lease_end(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, uint64_t gen,
    int needs_link)
{
	return s->ops->service_lease_end(s, install_id, service, group, user,
	    gen, needs_link);
}

int
store_service_delete(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user)
{
	return s->ops->service_delete(s, install_id, service, group, user);
}

int
store_service_foreach(struct store *s, const char *install_id,
    store_service_fn fn, void *arg)
{
	return s->ops->service_foreach(s, install_id, fn, arg);
}

int
store_oauth_link_create(struct store *s, const char *install_id,
    const char *service, const char *group, const char *user, int64_t now,
    unsigned ttl_s, char id[STORE_OAUTH_ID_LEN + 1])
{
	return s->ops->oauth_link_create(s, install_id, service, group, user,
	    now, ttl_s, id);
}

int
store_oauth_link_take(struct store *s, const char *link, const char *service,
    int64_t now, unsigned ttl_s, char state[STORE_OAUTH_ID_LEN + 1],
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	return s->ops->oauth_link_take(s, link, service, now, ttl_s, state,
	    verifier);
}

int
store_oauth_state_take(struct store *s, const char *state, const char *service,
    int64_t now, struct store_service **bound,
    char verifier[STORE_OAUTH_VERIFIER_LEN + 1])
{
	return s->ops->oauth_state_take(s, state, service, now, bound,
	    verifier);
}

int
store_rekey(struct store *s, const char *new_key_file, size_t *n)
{
	return s->ops->rekey(s, new_key_file, n);
}

int
store_export(struct store *s, const struct store_export_cbs *cbs, void *arg)
{
	return s->ops->export(s, cbs, arg);
}

int
store_apply(struct store *s, const struct store_op *ops, size_t n, size_t *bad)
{
	return s->ops->apply(s, ops, n, bad);
}

int
store_verify(struct store *s, store_problem_fn fn, void *arg, size_t *problems)
{
	return s->ops->verify(s, fn, arg, problems);
}
