/*
 * store/cli-migrate.c - botmatic-keys migrate (cli-migrate.h): the
 * source's export (installations, then pairs, then state), record by
 * record, into batches for the target, the number of records already
 * copied kept in the target by the same batch; then the services.  Writes
 * are idempotent (a pair saved twice, an installation put twice, are the
 * same), so the records of a batch whose commit was lost to a kill are
 * simply copied again.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/cli-migrate.h"
#include "store/store.h"

/* Records per batch: one store_apply() each. */
#define MIGRATE_BATCH 500
#define CURSOR_NAME "cursor"

struct migrate {
	struct store *dst;
	struct store_op ops[MIGRATE_BATCH + 1];
	struct store_install ins[MIGRATE_BATCH]; /* copies of installs */
	char *strs[MIGRATE_BATCH * 3];           /* copies of strings */
	size_t nstrs;
	size_t n;        /* ops in the batch */
	size_t seen;     /* records walked */
	size_t skip;     /* records copied by an earlier run */
	size_t copied;   /* records in dst, the batch's included */
	char cursor[32];
	int failed;
};

static void
batch_clear(struct migrate *m)
{
	size_t i;

	for (i = 0; i < m->nstrs; i++)
		free(m->strs[i]);
	m->nstrs = 0;
	m->n = 0;
}

static const char *
keep(struct migrate *m, const char *p, size_t len)
{
	char *c = malloc(len + 1);

	if (c == NULL)
		return NULL;
	memcpy(c, p, len);
	c[len] = '\0';
	m->strs[m->nstrs++] = c;
	return c;
}

/* Sends the batch with the cursor; 0 or -1 (message printed). */
static int
flush(struct migrate *m)
{
	struct store_op *cur;
	size_t bad = 0;
	int rc;

	if (m->n == 0)
		return 0;
	snprintf(m->cursor, sizeof(m->cursor), "%zu", m->copied);
	cur = &m->ops[m->n];
	memset(cur, 0, sizeof(*cur));
	cur->kind = STORE_OP_STATE_SET;
	cur->a = STORE_CLI_MIGRATE_TOKEN;
	cur->b = CURSOR_NAME;
	cur->val = m->cursor;
	cur->len = strlen(m->cursor);
	rc = store_apply(m->dst, m->ops, m->n + 1, &bad);
	batch_clear(m);
	if (rc != STORE_OK) {
		fprintf(stderr, "botmatic-keys: migrate: writing the batch "
		    "before record %zu (its op %zu): %s\n", m->copied, bad,
		    store_strerror(m->dst));
		return -1;
	}
	return 0;
}

/* Whether this record was copied by an earlier run; else room for it. */
static int
take(struct migrate *m)
{
	if (m->seen++ < m->skip)
		return 0;
	return 1;
}

static int
after(struct migrate *m)
{
	m->n++;
	m->copied++;
	if (m->n == MIGRATE_BATCH && flush(m) < 0) {
		m->failed = 1;
		return 1;
	}
	return 0;
}

static int
mig_install(void *arg, const struct store_install *in)
{
	struct migrate *m = arg;
	struct store_install *c;

	if (!take(m))
		return 0;
	c = &m->ins[m->n];
	*c = *in;
	if ((c->token = (char *)keep(m, in->token, strlen(in->token))) ==
	    NULL || (c->settings = (char *)keep(m, in->settings,
	    in->settings_len)) == NULL)
		goto nomem;
	memset(&m->ops[m->n], 0, sizeof(m->ops[m->n]));
	m->ops[m->n].kind = STORE_OP_INSTALL_PUT;
	m->ops[m->n].install = c;
	return after(m);
nomem:
	fprintf(stderr, "botmatic-keys: migrate: %s\n", strerror(ENOMEM));
	m->failed = 1;
	return 1;
}

static int
mig_pair(void *arg, const char *integ, const char *bid, const char *eid)
{
	struct migrate *m = arg;
	struct store_op *op;

	if (strcmp(integ, STORE_CLI_MIGRATE_TOKEN) == 0 || !take(m))
		return 0;
	op = &m->ops[m->n];
	memset(op, 0, sizeof(*op));
	op->kind = STORE_OP_IDS_SAVE;
	if ((op->a = keep(m, integ, strlen(integ))) == NULL ||
	    (op->b = keep(m, bid, strlen(bid))) == NULL ||
	    (op->c = keep(m, eid, strlen(eid))) == NULL) {
		fprintf(stderr, "botmatic-keys: migrate: %s\n",
		    strerror(ENOMEM));
		m->failed = 1;
		return 1;
	}
	return after(m);
}

static int
mig_state(void *arg, const char *tok, const char *name, const char *val,
    size_t len)
{
	struct migrate *m = arg;
	struct store_op *op;

	/* The source's own cursor (it was a target once) is not data. */
	if (strcmp(tok, STORE_CLI_MIGRATE_TOKEN) == 0 || !take(m))
		return 0;
	op = &m->ops[m->n];
	memset(op, 0, sizeof(*op));
	op->kind = STORE_OP_STATE_SET;
	if ((op->a = keep(m, tok, strlen(tok))) == NULL ||
	    (op->b = keep(m, name, strlen(name))) == NULL ||
	    (op->val = keep(m, val, len)) == NULL) {
		fprintf(stderr, "botmatic-keys: migrate: %s\n",
		    strerror(ENOMEM));
		m->failed = 1;
		return 1;
	}
	op->len = len;
	return after(m);
}

/* Services go after the rest, every run (a put of the same is harmless). */
struct svc_copy {
	struct store *dst;
	size_t n;
	int failed;
};

static int
mig_service(void *arg, const struct store_service *sv)
{
	struct svc_copy *c = arg;

	if (store_service_put(c->dst, sv) != STORE_OK) {
		fprintf(stderr, "botmatic-keys: migrate: a service: %s\n",
		    store_strerror(c->dst));
		c->failed = 1;
		return 1;
	}
	c->n++;
	return 0;
}

static void
problem(void *arg, const char *what, const char *integ, const char *bid,
    const char *eid)
{
	(void)arg;
	(void)integ; /* a token: never printed */
	fprintf(stderr, "botmatic-keys: migrate: verify: %s (%s, %s)\n", what,
	    bid, eid);
}

int
store_cli_migrate(struct store *src, struct store *dst)
{
	struct store_export_cbs cbs = { mig_install, mig_pair, mig_state };
	struct store_jobs_stats st;
	struct migrate *m;
	char *v = NULL;
	size_t len = 0, problems = 0;
	int rc, ret = 2;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		fprintf(stderr, "botmatic-keys: migrate: %s\n",
		    strerror(ENOMEM));
		return 2;
	}
	m->dst = dst;
	/*
	 * Queued jobs are not copied (their leases, order and ids belong to
	 * the backend): a migrate that left them behind would lose events, so
	 * it starts only once the source's queue has drained.
	 */
	if (store_jobs_stats(src, &st) != STORE_OK) {
		fprintf(stderr, "botmatic-keys: migrate: %s\n",
		    store_strerror(src));
		goto out;
	}
	if (st.pending > 0 || st.dead > 0) {
		fprintf(stderr, "botmatic-keys: migrate: the source holds %llu "
		    "queued and %llu dead jobs: let the queue drain (see "
		    "botmatic-keys outbox) before migrating; nothing copied\n",
		    (unsigned long long)st.pending,
		    (unsigned long long)st.dead);
		goto out;
	}
	rc = store_state_get(dst, STORE_CLI_MIGRATE_TOKEN, CURSOR_NAME, &v,
	    &len);
	if (rc == STORE_OK) {
		m->skip = strtoull(v, NULL, 10);
		m->copied = m->skip;
		fprintf(stderr, "botmatic-keys: migrate: resuming after %zu "
		    "records\n", m->skip);
	} else if (rc != STORE_NOTFOUND) {
		fprintf(stderr, "botmatic-keys: migrate: %s\n",
		    store_strerror(dst));
		goto out;
	}
	free(v);
	v = NULL;
	rc = store_export(src, &cbs, m);
	if (m->failed)
		goto out;
	if (rc != STORE_OK) {
		fprintf(stderr, "botmatic-keys: migrate: reading: %s\n",
		    store_strerror(src));
		goto out;
	}
	if (flush(m) < 0)
		goto out;
	/* Services (their tokens opened and sealed again under the
	 * target's key): a new generation, no lease, created kept as the
	 * last update. */
	{
		struct svc_copy c = { .dst = dst };

		rc = store_service_foreach(src, NULL, mig_service, &c);
		if (c.failed)
			goto out;
		if (rc != STORE_OK) {
			fprintf(stderr, "botmatic-keys: migrate: reading "
			    "services: %s\n", store_strerror(src));
			goto out;
		}
		m->copied += c.n;
	}
	/* Done: the cursor goes (a next migrate starts from the top). */
	rc = store_install_delete(dst, STORE_CLI_MIGRATE_TOKEN, NULL);
	if (rc != STORE_OK && rc != STORE_NOTFOUND) {
		fprintf(stderr, "botmatic-keys: migrate: %s\n",
		    store_strerror(dst));
		goto out;
	}
	if (store_verify(dst, problem, NULL, &problems) != STORE_OK) {
		fprintf(stderr, "botmatic-keys: migrate: verify: %s\n",
		    store_strerror(dst));
		goto out;
	}
	fprintf(stderr, "botmatic-keys: migrate: %zu records copied, target "
	    "verified: %zu problems\n", m->copied, problems);
	ret = problems > 0 ? 1 : 0;
out:
	batch_clear(m);
	free(v);
	free(m);
	return ret;
}
