/*
 * keystore/jobs.c - the server's side of the delivery queue (store/jobs.c):
 * JSON payloads, the wall clock, the collected pair writes of a job, each
 * call marked for the watchdog and its failure logged once.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore/keystore_int.h"
#include "store/store.h"

int
app_ks_fx_add(struct app_ks_fx *fx, int del, const char *bid,
    const char *eid)
{
	struct app_ks_fxop *ops, *op;

	if (fx->n == fx->cap) {
		size_t cap = fx->cap > 0 ? fx->cap * 2 : 8;
		if ((ops = realloc(fx->ops, cap * sizeof(*ops))) == NULL)
			return -1;
		fx->ops = ops;
		fx->cap = cap;
	}
	op = &fx->ops[fx->n];
	op->del = del;
	op->bid = strdup(bid);
	op->eid = strdup(eid);
	if (op->bid == NULL || op->eid == NULL) {
		free(op->bid);
		free(op->eid);
		return -1;
	}
	fx->n++;
	return 0;
}

void
app_ks_fx_clear(struct app_ks_fx *fx)
{
	size_t i;

	for (i = 0; i < fx->n; i++) {
		free(fx->ops[i].bid);
		free(fx->ops[i].eid);
	}
	free(fx->ops);
	memset(fx, 0, sizeof(*fx));
}

void
app_ks_job_free(struct app_ks_job *j)
{
	if (j == NULL)
		return;
	if (j->token != NULL)
		explicit_bzero(j->token, strlen(j->token));
	free(j->token);
	free(j->kind);
	free(j->contact);
	json_decref(j->payload);
	free(j);
}

int64_t
app_ks_job_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
app_ks_job_add(struct app_keystore *ks, const char *reqid, const char *token,
    const char *kind, const char *contact, const json_t *payload, int unique,
    int64_t lease_ms, uint64_t *id, int *leased)
{
	struct store_job_spec sp;
	unsigned flags = 0;
	char *text;
	int rc;

	*id = 0;
	if (leased != NULL)
		*leased = 0;
	if ((text = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER))
	    == NULL) {
		app_log(BM_LOG_ERROR, reqid, "keystore", "queueing a job: out of "
		    "memory");
		return -1;
	}
	memset(&sp, 0, sizeof(sp));
	sp.integ = token;
	sp.kind = kind;
	sp.contact = contact;
	sp.payload = text;
	sp.now = app_ks_job_now();
	sp.unique = unique;
	if (lease_ms > 0) {
		sp.lease_pid = (uint32_t)getpid();
		sp.lease_until = sp.now + lease_ms;
	}
	app_ks__begin(ks);
	rc = store_job_add(ks->st, &sp, id, &flags);
	rc = app_ks__end(ks, reqid, "queueing a job", rc);
	free(text);
	if (rc == 0 && leased != NULL)
		*leased = (flags & STORE_JOB_LEASED) != 0;
	return rc < 0 ? -1 : 0;
}

int
app_ks_job_claim(struct app_keystore *ks, const char *reqid,
    int64_t lease_ms, struct app_ks_job **out)
{
	struct store_job *sj = NULL;
	struct app_ks_job *j = NULL;
	int64_t now = app_ks_job_now();
	json_error_t je;
	int rc;

	*out = NULL;
	app_ks__begin(ks);
	rc = store_job_claim(ks->st, (uint32_t)getpid(), now, now + lease_ms,
	    &sj);
	if ((rc = app_ks__end(ks, reqid, "taking a job", rc)) != 0)
		return rc;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->token = strdup(sj->integ)) == NULL ||
	    (j->kind = strdup(sj->kind)) == NULL ||
	    (j->contact = strdup(sj->contact)) == NULL) {
		app_log(BM_LOG_ERROR, reqid, "keystore", "taking a job: out of "
		    "memory");
		rc = -1;
		goto out;
	}
	j->id = sj->id;
	j->attempts = sj->attempts;
	if ((j->payload = json_loads(sj->payload, JSON_REJECT_DUPLICATES,
	    &je)) == NULL) {
		/* Stored by us: a payload that does not parse is damage. */
		app_log(BM_LOG_ERROR, reqid, "keystore", "job %llu: payload is "
		    "not JSON: %s", (unsigned long long)sj->id, je.text);
	}
	*out = j;
	j = NULL;
out:
	app_ks_job_free(j);
	store_job_free(sj);
	return rc;
}

int
app_ks_job_done(struct app_keystore *ks, const char *reqid, uint64_t id,
    const char *token, const struct app_ks_fx *fx, const json_t *next_payload)
{
	struct store_op *ops = NULL;
	char *next = NULL;
	size_t i, n = fx != NULL ? fx->n : 0;
	int rc = -1;

	if (n > 0 && (ops = calloc(n, sizeof(*ops))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		ops[i].kind = fx->ops[i].del ? STORE_OP_IDS_DELETE :
		    STORE_OP_IDS_SAVE;
		ops[i].a = token;
		ops[i].b = fx->ops[i].bid;
		ops[i].c = fx->ops[i].eid;
	}
	if (next_payload != NULL && (next = json_dumps(next_payload,
	    JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto nomem;
	app_ks__begin(ks);
	rc = store_job_done(ks->st, id, ops, n, next, app_ks_job_now());
	rc = app_ks__end(ks, reqid, "finishing a job", rc);
	goto out;
nomem:
	app_log(BM_LOG_ERROR, reqid, "keystore", "finishing a job: out of "
	    "memory");
out:
	free(ops);
	free(next);
	return rc;
}

int
app_ks_job_retry(struct app_keystore *ks, const char *reqid, uint64_t id,
    int64_t delay_ms, const char *last, int dead)
{
	int rc;

	app_ks__begin(ks);
	rc = store_job_retry(ks->st, id, (uint32_t)getpid(),
	    app_ks_job_now() + (delay_ms > 0 ? delay_ms : 0), last, dead);
	return app_ks__end(ks, reqid, "rescheduling a job", rc);
}

int
app_ks_job_renew(struct app_keystore *ks, const char *reqid, uint64_t id,
    int64_t lease_ms)
{
	int rc;

	app_ks__begin(ks);
	rc = store_job_renew(ks->st, id, (uint32_t)getpid(),
	    app_ks_job_now() + lease_ms);
	return app_ks__end(ks, reqid, "renewing a lease", rc);
}

/* kill(pid, 0): a process we may not signal is alive too. */
static int
ks_pid_alive(uint32_t pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int
app_ks_jobs_release(struct app_keystore *ks, const char *reqid)
{
	size_t n = 0;
	int rc;

	app_ks__begin(ks);
	rc = store_jobs_release(ks->st, app_ks_job_now(), ks_pid_alive, &n);
	rc = app_ks__end(ks, reqid, "releasing leases", rc);
	if (rc == 0 && n > 0)
		app_log(BM_LOG_INFO, reqid, "keystore", "%zu jobs leased to "
		    "processes that are gone are due again", n);
	return rc;
}

int
app_ks_jobs_stats(struct app_keystore *ks, uint64_t *pending, uint64_t *dead,
    uint64_t *oldest_s)
{
	struct store_jobs_stats st;
	int64_t now;
	int rc;

	*pending = *dead = *oldest_s = 0;
	app_ks__begin(ks);
	rc = store_jobs_stats(ks->st, &st);
	if ((rc = app_ks__end(ks, NULL, "counting jobs", rc)) != 0)
		return rc;
	*pending = st.pending;
	*dead = st.dead;
	now = app_ks_job_now();
	if (st.oldest_created > 0 && now > st.oldest_created)
		*oldest_s = (uint64_t)((now - st.oldest_created) / 1000);
	return 0;
}

int
app_ks_job_cancel(struct app_keystore *ks, const char *reqid, uint64_t id)
{
	int rc;

	app_ks__begin(ks);
	rc = store_job_cancel(ks->st, id);
	return app_ks__end(ks, reqid, "dropping a job", rc);
}

int
app_ks_delivery_accept(struct app_keystore *ks, const char *reqid,
    const char *install_id, const char *id, unsigned ttl_s,
    const char *token, const struct app_ks_jobspec *jobs, size_t n,
    uint64_t *ids)
{
	struct store_job_spec *sp = NULL;
	char **texts = NULL;
	int64_t now = app_ks_job_now();
	size_t i;
	int rc = -1, dup = 0;

	if (n > 0 && ((sp = calloc(n, sizeof(*sp))) == NULL ||
	    (texts = calloc(n, sizeof(*texts))) == NULL))
		goto nomem;
	for (i = 0; i < n; i++) {
		if ((texts[i] = json_dumps(jobs[i].payload, JSON_COMPACT |
		    JSON_PRESERVE_ORDER)) == NULL)
			goto nomem;
		sp[i].integ = token;
		sp[i].kind = jobs[i].kind;
		sp[i].contact = jobs[i].contact;
		sp[i].payload = texts[i];
		sp[i].now = now;
	}
	app_ks__begin(ks);
	rc = store_delivery_accept(ks->st, install_id, id, now / 1000, ttl_s,
	    sp, n, ids, &dup);
	rc = app_ks__end(ks, reqid, "accepting a delivery", rc);
	if (rc == 0 && dup)
		rc = 1;
	goto out;
nomem:
	app_log(BM_LOG_ERROR, reqid, "keystore", "accepting a delivery: out "
	    "of memory");
out:
	for (i = 0; texts != NULL && i < n; i++)
		free(texts[i]);
	free(texts);
	free(sp);
	return rc < 0 ? -1 : rc;
}

int
app_ks_job_add_detached(struct app_keystore *ks, const char *reqid,
    const char *owner, const struct app_ks_jobspec *job, uint64_t *id)
{
	struct store_job_spec sp;
	char *text;
	int rc;

	*id = 0;
	if ((text = json_dumps(job->payload, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) == NULL) {
		app_log(BM_LOG_ERROR, reqid, "keystore", "queueing a job: out of "
		    "memory");
		return -1;
	}
	memset(&sp, 0, sizeof(sp));
	sp.integ = owner;
	sp.detached = 1;
	sp.kind = job->kind;
	sp.contact = job->contact;
	sp.payload = text;
	sp.now = app_ks_job_now();
	app_ks__begin(ks);
	rc = store_job_add(ks->st, &sp, id, NULL);
	rc = app_ks__end(ks, reqid, "queueing a job", rc);
	free(text);
	return rc < 0 ? -1 : 0;
}
