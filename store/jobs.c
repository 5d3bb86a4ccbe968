/*
 * store/jobs.c - the durable delivery queue (SPEC §9): jobs written in the
 * same transactions as the id pairs they concern.
 *
 * Databases (all B-trees, big-endian numbers so keys sort as numbers):
 *   jobs.db         seq (8) -> record; seq 0 holds the next seq to give (so
 *                   ids are never reused: they name Idempotency-Keys) and
 *                   the counts of pending and dead jobs
 *   jobs-due.db     next_at (8) | seq (8) -> "": the runnable jobs, i.e. the
 *                   pending job that comes first for its contact, by time
 *   jobs-contact.db hash \0 contact \0 seq (8) -> "": pending jobs of one
 *                   contact in arrival order; the first one is the head
 *   jobs-integ.db   hash \0 seq (8) -> "": every job of an integration,
 *                   pending or dead, so an uninstall finds them all
 *
 * No token is kept here (issue 12): "hash" is the token's keyed hash
 * (store__token_key()), and so is the integration a record names.  A job
 * leaving the store (claim, get, foreach) has it replaced by the token,
 * opened from tokens.db at that moment (job_reveal()); a job whose token is
 * gone belongs to an uninstalled integration.
 *
 * A lease is a due time: claiming a job moves its due entry to the lease's
 * end and records the holder.  A holder that dies simply lets the time pass
 * and the job is due again: delivery is at least once across any kill.
 * Dead jobs leave the due and contact indexes (the next job of that contact
 * becomes runnable) and stay in jobs.db with their last request and answer.
 *
 * Record: version (1) | state (1) | attempts (4) | next_at (8) |
 * lease pid (4) | created (8) | then five strings, each a 4-byte length and
 * its bytes: integration (the hash), kind, contact, payload, last.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define JOB_VERSION 1
#define JOB_HEAD (1 + 1 + 4 + 8 + 4 + 8)
/* integ \0 contact \0 seq */
#define JOB_CKEY_MAX (2 * STORE_ID_MAX + 2 + 8)
/* Jobs a claim drops (installation gone) before it gives up for now. */
#define JOB_CLAIM_SCAN 64

enum { JOB_PENDING = 0, JOB_DEAD = 1 };

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
store_job_free(struct store_job *j)
{
	if (j == NULL)
		return;
	free(j->integ);
	free(j->kind);
	free(j->contact);
	free(j->payload);
	free(j->last);
	free(j);
}

/* Frees what j points to, keeping the struct (zeroed). */
static void
job_clear(struct store_job *j)
{
	free(j->integ);
	free(j->kind);
	free(j->contact);
	free(j->payload);
	free(j->last);
	memset(j, 0, sizeof(*j));
}

/*
 * Replaces the hash j->integ holds in the store by the token, for a job
 * leaving the store.  *gone (may be NULL) is set when no token is kept under
 * that hash any more (uninstalled): j->integ is then "".  Returns 0, or a
 * BDB error or STORE__ESEAL.
 */
static int
job_reveal(struct store *s, DB_TXN *txn, struct store_job *j, int *gone)
{
	char *token = NULL;
	int ret;

	if (gone != NULL)
		*gone = 0;
	/* A detached job's owner is a name in clear, not a token. */
	if (j->integ[0] == '@')
		return 0;
	ret = strlen(j->integ) == STORE__HASH_LEN ?
	    store__token_lookup(s, txn, j->integ, &token) : DB_NOTFOUND;
	if (ret == DB_NOTFOUND) {
		if (gone != NULL)
			*gone = 1;
		if ((token = strdup("")) == NULL)
			return ENOMEM;
		ret = 0;
	}
	if (ret != 0)
		return ret;
	free(j->integ);
	j->integ = token;
	return 0;
}

static int
job_decode(const DBT *key, const DBT *data, struct store_job *j)
{
	const unsigned char *p = data->data, *end;
	char **strs[5];
	uint32_t n;
	size_t i;

	memset(j, 0, sizeof(*j));
	if (key->size != 8 || data->size < JOB_HEAD || p[0] != JOB_VERSION)
		return -1;
	strs[0] = &j->integ;
	strs[1] = &j->kind;
	strs[2] = &j->contact;
	strs[3] = &j->payload;
	strs[4] = &j->last;
	j->id = store__be64_get(key->data);
	j->dead = p[1] == JOB_DEAD;
	j->attempts = get32(p + 2);
	j->next_at = (int64_t)store__be64_get(p + 6);
	j->lease_pid = get32(p + 14);
	j->created = (int64_t)store__be64_get(p + 18);
	end = p + data->size;
	p += JOB_HEAD;
	for (i = 0; i < 5; i++) {
		if (end - p < 4)
			goto bad;
		n = get32(p);
		p += 4;
		if ((size_t)(end - p) < n || memchr(p, '\0', n) != NULL ||
		    (*strs[i] = malloc((size_t)n + 1)) == NULL)
			goto bad;
		memcpy(*strs[i], p, n);
		(*strs[i])[n] = '\0';
		p += n;
	}
	return 0;
bad:
	job_clear(j);
	return -1;
}

/* Writes j under its id; 0 or a BDB error. */
static int
job_put(struct store *s, DB_TXN *txn, const struct store_job *j)
{
	const char *strs[5] = { j->integ, j->kind, j->contact, j->payload,
	    j->last };
	unsigned char kb[8], *buf, *p;
	size_t len = JOB_HEAD, i, n;
	DBT key, data;
	int ret;

	for (i = 0; i < 5; i++)
		len += 4 + strlen(strs[i]);
	if ((buf = malloc(len)) == NULL)
		return ENOMEM;
	buf[0] = JOB_VERSION;
	buf[1] = j->dead ? JOB_DEAD : JOB_PENDING;
	be32(buf + 2, j->attempts);
	store__be64_put(buf + 6, (uint64_t)j->next_at);
	be32(buf + 14, j->lease_pid);
	store__be64_put(buf + 18, (uint64_t)j->created);
	for (i = 0, p = buf + JOB_HEAD; i < 5; i++) {
		n = strlen(strs[i]);
		be32(p, (uint32_t)n);
		memcpy(p + 4, strs[i], n);
		p += 4 + n;
	}
	store__be64_put(kb, j->id);
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kb;
	key.size = 8;
	data.data = buf;
	data.size = (u_int32_t)len;
	ret = s->jobs->put(s->jobs, txn, &key, &data, 0);
	free(buf);
	return ret;
}

/* Reads job id into *j (emptied first); 0, DB_NOTFOUND or an error. */
static int
job_get(struct store *s, DB_TXN *txn, uint64_t id, struct store_job *j,
    u_int32_t flags)
{
	unsigned char kb[8];
	DBT key, data;
	int ret;

	memset(j, 0, sizeof(*j));
	store__be64_put(kb, id);
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kb;
	key.size = 8;
	data.flags = DB_DBT_MALLOC;
	if (id == 0)
		return DB_NOTFOUND; /* the counter, not a job */
	if ((ret = s->jobs->get(s->jobs, txn, &key, &data, flags)) != 0)
		return ret;
	ret = job_decode(&key, &data, j) == 0 ? 0 : EINVAL;
	free(data.data);
	return ret;
}

static int
job_del(struct store *s, DB_TXN *txn, uint64_t id)
{
	unsigned char kb[8];
	DBT key;

	store__be64_put(kb, id);
	memset(&key, 0, sizeof(key));
	key.data = kb;
	key.size = 8;
	return s->jobs->del(s->jobs, txn, &key, 0);
}

/* An index entry with an empty value: put (del = 0) or delete. */
static int
index_op(DB *db, DB_TXN *txn, const void *k, size_t klen, int del)
{
	DBT key, data;
	int ret;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	if (!del)
		return db->put(db, txn, &key, &data, 0);
	ret = db->del(db, txn, &key, 0);
	return ret == DB_NOTFOUND ? 0 : ret;
}

static int
due_op(struct store *s, DB_TXN *txn, int64_t at, uint64_t id, int del)
{
	unsigned char k[16];

	store__be64_put(k, (uint64_t)at);
	store__be64_put(k + 8, id);
	return index_op(s->jobs_due, txn, k, 16, del);
}

/* integ \0 contact (the prefix of a contact's entries); returns length. */
static size_t
ckey_prefix(char *buf, const struct store_job *j)
{
	size_t il = strlen(j->integ), cl = strlen(j->contact);

	memcpy(buf, j->integ, il);
	buf[il] = '\0';
	memcpy(buf + il + 1, j->contact, cl);
	return il + 1 + cl;
}

static int
contact_op(struct store *s, DB_TXN *txn, const struct store_job *j, int del)
{
	char k[JOB_CKEY_MAX];
	size_t n = ckey_prefix(k, j);

	k[n] = '\0';
	store__be64_put((unsigned char *)k + n + 1, j->id);
	return index_op(s->jobs_contact, txn, k, n + 9, del);
}

static int
integ_op(struct store *s, DB_TXN *txn, const struct store_job *j, int del)
{
	char k[STORE_ID_MAX + 9];
	size_t n = strlen(j->integ);

	memcpy(k, j->integ, n);
	k[n] = '\0';
	store__be64_put((unsigned char *)k + n + 1, j->id);
	return index_op(s->jobs_integ, txn, k, n + 9, del);
}

/*
 * The first pending job of j's contact into *head (0 when there is none).
 * Returns 0 or a BDB error.
 */
static int
contact_head(struct store *s, DB_TXN *txn, const struct store_job *j,
    uint64_t *head)
{
	char k[JOB_CKEY_MAX], pfx[JOB_CKEY_MAX];
	size_t plen = ckey_prefix(pfx, j);
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	*head = 0;
	memcpy(k, pfx, plen);
	k[plen] = '\0';
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = k;
	key.size = (u_int32_t)plen + 1;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = s->jobs_contact->cursor(s->jobs_contact, txn, &c, 0)) != 0)
		goto out;
	ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW);
	if (ret == DB_NOTFOUND) {
		ret = 0;
		goto out;
	}
	if (ret == 0 && key.size == plen + 9 &&
	    store__has_prefix(&key, pfx, plen))
		*head = store__be64_get((unsigned char *)k + plen + 1);
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

/*
 * Takes the pending job j out of its contact's line (and out of the due
 * index when it was the head); the next job of that contact, if any,
 * becomes runnable at its own due time.  Returns 0 or a BDB error.
 */
static int
job_unlink(struct store *s, DB_TXN *txn, const struct store_job *j)
{
	struct store_job next;
	uint64_t head;
	int ret;

	if (j->dead)
		return 0;
	if ((ret = contact_head(s, txn, j, &head)) != 0)
		return ret;
	if ((ret = contact_op(s, txn, j, 1)) != 0)
		return ret;
	if (head != j->id)
		return 0;
	if ((ret = due_op(s, txn, j->next_at, j->id, 1)) != 0 ||
	    (ret = contact_head(s, txn, j, &head)) != 0 || head == 0)
		return ret;
	if ((ret = job_get(s, txn, head, &next, DB_RMW)) != 0)
		return ret == DB_NOTFOUND ? EINVAL : ret;
	ret = due_op(s, txn, next.next_at, next.id, 0);
	job_clear(&next);
	return ret;
}

static int meta_move(struct store *s, DB_TXN *txn, int dp, int dd,
    uint64_t *id);

/* Removes j entirely (record and every index entry). */
static int
job_remove(struct store *s, DB_TXN *txn, const struct store_job *j)
{
	int ret;

	if ((ret = meta_move(s, txn, j->dead ? 0 : -1, j->dead ? -1 : 0,
	    NULL)) != 0 ||
	    (ret = job_unlink(s, txn, j)) != 0 ||
	    (ret = integ_op(s, txn, j, 1)) != 0)
		return ret;
	return job_del(s, txn, j->id);
}

/*
 * The record under seq 0: the next id to give, then the number of pending
 * and of dead jobs, moved in the same transactions as the jobs themselves
 * so the status reads them without a scan.  A store written before the
 * counts existed has only the id (8 bytes): the first move counts the jobs
 * once, in its transaction, before it changes anything.
 */
struct job_meta {
	uint64_t next, pending, dead;
};
#define JOB_META_OLD 8
#define JOB_META_LEN 24

/* Counts the pending and dead jobs of jobs.db into *m (the upgrade). */
static int
meta_count(struct store *s, DB_TXN *txn, struct job_meta *m)
{
	unsigned char hb[2];
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	m->pending = m->dead = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	/* Only the version and state bytes of each record. */
	data.data = hb;
	data.ulen = sizeof(hb);
	data.dlen = sizeof(hb);
	data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	if ((ret = s->jobs->cursor(s->jobs, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0) {
		if (key.size != 8 || store__be64_get(key.data) == 0)
			continue;
		if (data.size == 2 && hb[1] == JOB_DEAD)
			m->dead++;
		else
			m->pending++;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	free(key.data);
	return ret;
}

/*
 * Reads the seq 0 record into *m (write-locked when flags is DB_RMW),
 * counting the jobs when the store predates the counts.  0 or an error.
 */
static int
meta_get(struct store *s, DB_TXN *txn, struct job_meta *m, u_int32_t flags)
{
	unsigned char kb[8], vb[JOB_META_LEN];
	DBT key, data;
	int ret;

	memset(m, 0, sizeof(*m));
	memset(kb, 0, sizeof(kb));
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kb;
	key.size = 8;
	data.data = vb;
	data.ulen = sizeof(vb);
	data.flags = DB_DBT_USERMEM;
	ret = s->jobs->get(s->jobs, txn, &key, &data, flags);
	if (ret == DB_NOTFOUND) {
		m->next = 1;
		return 0;
	}
	if (ret != 0)
		return ret;
	if (data.size != JOB_META_OLD && data.size != JOB_META_LEN)
		return EINVAL;
	m->next = store__be64_get(vb);
	if (data.size == JOB_META_OLD)
		return meta_count(s, txn, m);
	m->pending = store__be64_get(vb + 8);
	m->dead = store__be64_get(vb + 16);
	return 0;
}

static int
meta_put(struct store *s, DB_TXN *txn, const struct job_meta *m)
{
	unsigned char kb[8], vb[JOB_META_LEN];
	DBT key, data;

	memset(kb, 0, sizeof(kb));
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	store__be64_put(vb, m->next);
	store__be64_put(vb + 8, m->pending);
	store__be64_put(vb + 16, m->dead);
	key.data = kb;
	key.size = 8;
	data.data = vb;
	data.size = sizeof(vb);
	return s->jobs->put(s->jobs, txn, &key, &data, 0);
}

/*
 * Moves the counts by dp pending and dd dead jobs.  Called BEFORE the jobs
 * change in the transaction, so an upgrade's count sees them as they were.
 * With id non-NULL, also draws the next id into *id.
 */
static int
meta_move(struct store *s, DB_TXN *txn, int dp, int dd, uint64_t *id)
{
	struct job_meta m;
	int ret;

	if ((ret = meta_get(s, txn, &m, DB_RMW)) != 0)
		return ret;
	/*
	 * Counts below zero would be a bug here: they stay at 0 rather than
	 * fail the transaction, since a gauge must never hold the queue back.
	 */
	m.pending = dp < 0 && m.pending < (uint64_t)-dp ? 0 :
	    m.pending + (uint64_t)(int64_t)dp;
	m.dead = dd < 0 && m.dead < (uint64_t)-dd ? 0 :
	    m.dead + (uint64_t)(int64_t)dd;
	if (id != NULL)
		*id = m.next++;
	return meta_put(s, txn, &m);
}

/* Writes a new pending job at the tail of its contact's line. */
static int
job_insert(struct store *s, DB_TXN *txn, struct store_job *j,
    int64_t lease_until, uint32_t lease_pid, unsigned *flags)
{
	uint64_t head;
	int ret;

	if ((ret = meta_move(s, txn, 1, 0, &j->id)) != 0 ||
	    (ret = contact_op(s, txn, j, 0)) != 0 ||
	    (ret = integ_op(s, txn, j, 0)) != 0 ||
	    (ret = contact_head(s, txn, j, &head)) != 0)
		return ret;
	if (head == j->id) {
		if (lease_pid != 0) {
			j->next_at = lease_until;
			j->lease_pid = lease_pid;
			*flags |= STORE_JOB_LEASED;
		}
		if ((ret = due_op(s, txn, j->next_at, j->id, 0)) != 0)
			return ret;
	}
	return job_put(s, txn, j);
}

/* Copies at most STORE_JOB_LAST_MAX bytes of s, cut on a UTF-8 boundary. */
static char *
last_copy(const char *text)
{
	size_t n = text != NULL ? strlen(text) : 0;
	char *out;

	if (n > STORE_JOB_LAST_MAX) {
		n = STORE_JOB_LAST_MAX;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
	}
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(out, text, n);
	out[n] = '\0';
	return out;
}

struct job_args {
	const struct store_job_spec *sp;
	uint64_t id;
	uint32_t pid;
	int64_t now, at;
	unsigned flags;
	const struct store_op *ops;
	size_t nops;
	const char *next_payload, *last;
	int dead;
	size_t count;
	struct store_job *out;
	store_job_fn fn;
	void *arg;
	const char *integ;     /* the token's keyed hash */
};

static int
check_text(struct store *s, const char *what, const char *v, size_t max)
{
	size_t n;

	if (v == NULL || *v == '\0')
		return store__einval(s, "%s is empty", what);
	n = strnlen(v, max + 1);
	if (n > max)
		return store__einval(s, "%s is longer than %zu bytes", what, max);
	return STORE_OK;
}

static int
add_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	const struct store_job_spec *sp = a->sp;
	struct store_job j, old;
	uint64_t head;
	int ret;

	(void)rc;
	a->flags = 0;
	a->id = 0;
	memset(&j, 0, sizeof(j));
	j.integ = (char *)a->integ;
	j.kind = (char *)sp->kind;
	j.contact = (char *)sp->contact;
	j.payload = (char *)sp->payload;
	j.last = (char *)"";
	j.created = sp->now;
	j.next_at = sp->now;
	if (sp->unique) {
		/* The pending job of this contact with this kind, if any. */
		if ((ret = contact_head(s, txn, &j, &head)) != 0)
			return ret;
		if (head != 0) {
			if ((ret = job_get(s, txn, head, &old, 0)) != 0)
				return ret == DB_NOTFOUND ? EINVAL : ret;
			ret = strcmp(old.kind, sp->kind) == 0;
			job_clear(&old);
			if (ret) {
				a->id = head;
				a->flags = STORE_JOB_EXISTED;
				return 0;
			}
		}
	}
	ret = job_insert(s, txn, &j, sp->lease_until, sp->lease_pid,
	    &a->flags);
	a->id = j.id;
	return ret;
}

/* The integration a job record names: the token's keyed hash, or "@" and
 * the owner's name for a detached job.  hash holds STORE__HASH_LEN + 1. */
static int
job_integ(struct store *s, const struct store_job_spec *sp, char *hash)
{
	size_t n;
	int rc;

	if ((rc = check_text(s, "job kind", sp->kind, STORE_JOB_KIND_MAX)) ||
	    (rc = store__check_id(s, "contact key", sp->contact, &n)) ||
	    (rc = check_text(s, "job payload", sp->payload,
	    STORE_JOB_PAYLOAD_MAX)))
		return rc;
	if (sp->now < 0 || (sp->lease_pid != 0 && sp->lease_until < sp->now))
		return store__einval(s, "job times out of range");
	if (sp->detached) {
		if ((rc = check_text(s, "detached job owner", sp->integ,
		    STORE_JOB_DETACHED_MAX)) != STORE_OK)
			return rc;
		hash[0] = '@';
		memcpy(hash + 1, sp->integ, strlen(sp->integ) + 1);
		return STORE_OK;
	}
	if ((rc = store__check_id(s, "integration id", sp->integ, &n)))
		return rc;
	if (store__token_key(s, sp->integ, strlen(sp->integ), hash) != 0)
		return store__fail(s, ENOMEM, "adding a job");
	return STORE_OK;
}

int
store__bdb_job_add(struct store *s, const struct store_job_spec *sp, uint64_t *id,
    unsigned *flags)
{
	char hash[STORE__HASH_LEN + 1];
	struct job_args a = { .sp = sp, .integ = hash };
	int rc;

	*id = 0;
	if (flags != NULL)
		*flags = 0;
	if ((rc = job_integ(s, sp, hash)) != STORE_OK)
		return rc;
	rc = store__run(s, STORE__RUN_TXN, "adding a job", add_fn, &a);
	if (rc == STORE_OK) {
		*id = a.id;
		if (flags != NULL)
			*flags = a.flags;
	}
	return rc;
}

/* What store_delivery_accept() writes. */
struct accept_args {
	const char *install_id, *id;
	int64_t now;
	unsigned ttl;
	const struct store_job_spec *jobs;
	char (*hashes)[STORE__HASH_LEN + 1];
	size_t n;
	uint64_t *ids;
	int *dup;
};

static int
accept_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct accept_args *aa = arg;
	struct job_args a;
	size_t i;
	int ret;

	if ((ret = store__seen_claim(s, txn, aa->install_id, aa->id, aa->now,
	    aa->ttl, aa->dup)) != 0 || *aa->dup)
		return ret;
	for (i = 0; i < aa->n; i++) {
		memset(&a, 0, sizeof(a));
		a.sp = &aa->jobs[i];
		a.integ = aa->hashes[i];
		if ((ret = add_fn(s, txn, &a, rc)) != 0)
			return ret;
		aa->ids[i] = a.id;
	}
	return 0;
}

int
store__bdb_delivery_accept(struct store *s, const char *install_id,
    const char *id, int64_t now, unsigned ttl_s,
    const struct store_job_spec *jobs, size_t n, uint64_t *ids, int *dup)
{
	struct accept_args aa = { .install_id = install_id, .id = id,
	    .now = now, .ttl = ttl_s, .jobs = jobs, .n = n, .ids = ids,
	    .dup = dup };
	size_t i;
	int rc;

	*dup = 0;
	if ((rc = store__seen_check(s, install_id, id)) != STORE_OK)
		return rc;
	if (n > 0 && (aa.hashes = calloc(n, sizeof(*aa.hashes))) == NULL)
		return store__fail(s, ENOMEM, "accepting a delivery");
	for (i = 0; i < n; i++) {
		ids[i] = 0;
		if ((rc = job_integ(s, &jobs[i], aa.hashes[i])) != STORE_OK)
			goto out;
	}
	rc = store__run(s, STORE__RUN_TXN, "accepting a delivery", accept_fn,
	    &aa);
out:
	free(aa.hashes);
	return rc;
}

/* Whether the installation of hash (installs.db's key) is still recorded. */
static int
install_exists(struct store *s, DB_TXN *txn, const char *hash, int *yes)
{
	DBT key, data;
	int ret;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)hash;
	key.size = (u_int32_t)strlen(hash);
	data.flags = DB_DBT_PARTIAL;
	ret = s->inst->get(s->inst, txn, &key, &data, 0);
	*yes = ret == 0;
	return ret == DB_NOTFOUND ? 0 : ret;
}

static int
claim_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	unsigned char kb[16];
	DBC *c = NULL;
	DBT key, data;
	unsigned scanned;
	uint64_t id;
	int ret = 0, t, yes;

	job_clear(a->out);
	a->count = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kb;
	key.ulen = sizeof(kb);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	for (scanned = 0; scanned < JOB_CLAIM_SCAN; scanned++) {
		if ((ret = s->jobs_due->cursor(s->jobs_due, txn, &c, 0)) != 0)
			return ret;
		ret = c->get(c, &key, &data, DB_FIRST | DB_RMW);
		t = c->close(c);
		c = NULL;
		if (ret == DB_NOTFOUND)
			break;
		if (ret == 0)
			ret = t;
		if (ret != 0)
			return ret;
		if (key.size != 16)
			return EINVAL;
		if ((int64_t)store__be64_get(kb) > a->now)
			break;
		if ((ret = job_get(s, txn, store__be64_get(kb + 8), a->out, DB_RMW)) != 0)
			return ret == DB_NOTFOUND ? EINVAL : ret;
		yes = 1;
		/* A detached job outlives any installation. */
		if (a->out->integ[0] != '@' && (ret = install_exists(s, txn,
		    a->out->integ, &yes)) != 0)
			return ret;
		if (!yes) {
			/* Uninstalled meanwhile: nobody to deliver for. */
			if ((ret = job_remove(s, txn, a->out)) != 0)
				return ret;
			job_clear(a->out);
			a->count++;
			continue;
		}
		if ((ret = due_op(s, txn, a->out->next_at, a->out->id, 1)) != 0)
			return ret;
		a->out->next_at = a->at;
		a->out->lease_pid = a->pid;
		if ((ret = due_op(s, txn, a->at, a->out->id, 0)) != 0 ||
		    (ret = job_put(s, txn, a->out)) != 0)
			return ret;
		/* Its token, opened now: the record keeps only the hash. */
		if ((ret = job_reveal(s, txn, a->out, &yes)) != 0)
			return ret;
		if (!yes)
			return 0;
		/*
		 * Installed, yet no token kept: damage.  Kept as dead for the
		 * operator rather than failing every claim after it.
		 */
		id = a->out->id;
		job_clear(a->out);
		if ((ret = job_get(s, txn, id, a->out, DB_RMW)) != 0 ||
		    (ret = meta_move(s, txn, -1, 1, NULL)) != 0 ||
		    (ret = job_unlink(s, txn, a->out)) != 0)
			return ret;
		free(a->out->last);
		if ((a->out->last = strdup("{\"error\":\"the installation's "
		    "token is missing\"}")) == NULL)
			return ENOMEM;
		a->out->dead = 1;
		a->out->lease_pid = 0;
		if ((ret = job_put(s, txn, a->out)) != 0)
			return ret;
		job_clear(a->out);
		continue;
	}
	job_clear(a->out);
	*rc = STORE_NOTFOUND;
	return 0;
}

int
store__bdb_job_claim(struct store *s, uint32_t pid, int64_t now,
    int64_t lease_until, struct store_job **out)
{
	struct store_job *j;
	struct job_args a = { .pid = pid, .now = now, .at = lease_until };
	int rc;

	*out = NULL;
	if (pid == 0 || lease_until < now)
		return store__einval(s, "a lease needs a holder and an end");
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return store__fail(s, ENOMEM, "claiming a job");
	a.out = j;
	rc = store__run(s, STORE__RUN_TXN, "claiming a job", claim_fn, &a);
	if (rc == STORE_OK)
		*out = j;
	else
		store_job_free(j);
	return rc;
}

static int
done_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	struct store_job j;
	const struct store_op *op;
	size_t i, il, bl, el;
	int ret, r = STORE_OK;

	if ((ret = job_get(s, txn, a->id, &j, DB_RMW)) == DB_NOTFOUND) {
		/* Finished or cancelled by someone else: their effect holds. */
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	for (i = 0; i < a->nops && ret == 0; i++) {
		op = &a->ops[i];
		il = strlen(op->a);
		bl = strlen(op->b);
		el = strlen(op->c);
		if (op->kind == STORE_OP_IDS_SAVE)
			ret = store__ids_save(s, txn, op->a, il, op->b, bl,
			    op->c, el, &r);
		else
			ret = store__ids_delete(s, txn, op->a, il, op->b, bl,
			    op->c, el, &r);
	}
	if (ret != 0)
		goto out;
	if (a->next_payload != NULL && !j.dead) {
		/* The next step of the same job, due at once. */
		char *p = strdup(a->next_payload);

		if (p == NULL) {
			ret = ENOMEM;
			goto out;
		}
		free(j.payload);
		j.payload = p;
		if ((ret = due_op(s, txn, j.next_at, j.id, 1)) != 0)
			goto out;
		j.next_at = a->now;
		j.attempts = 0;
		j.lease_pid = 0;
		if ((ret = due_op(s, txn, j.next_at, j.id, 0)) != 0)
			goto out;
		ret = job_put(s, txn, &j);
		goto out;
	}
	ret = job_remove(s, txn, &j);
out:
	job_clear(&j);
	return ret;
}

int
store__bdb_job_done(struct store *s, uint64_t id, const struct store_op *ops,
    size_t n, const char *next_payload, int64_t now)
{
	struct job_args a = { .id = id, .ops = ops, .nops = n,
	    .next_payload = next_payload, .now = now };
	size_t i, l;
	int rc;

	for (i = 0; i < n; i++) {
		if (ops[i].kind != STORE_OP_IDS_SAVE &&
		    ops[i].kind != STORE_OP_IDS_DELETE)
			return store__einval(s, "a job's effect is a pair saved "
			    "or deleted");
		if ((rc = store__check_id(s, "integration id", ops[i].a, &l)) ||
		    (rc = store__check_id(s, "botmatic id", ops[i].b, &l)) ||
		    (rc = store__check_id(s, "external id", ops[i].c, &l)))
			return rc;
	}
	if (next_payload != NULL && (rc = check_text(s, "job payload",
	    next_payload, STORE_JOB_PAYLOAD_MAX)) != STORE_OK)
		return rc;
	return store__run(s, STORE__RUN_TXN, "finishing a job", done_fn, &a);
}

/*
 * Reads, for update, job a->id as leased by a->pid into *j (job_clear()).
 * DB_NOTFOUND when it is gone, dead, or leased again by another process
 * meanwhile; 0, or a BDB error.
 */
static int
job_get_held(struct store *s, DB_TXN *txn, const struct job_args *a,
    struct store_job *j)
{
	int ret;

	if ((ret = job_get(s, txn, a->id, j, DB_RMW)) != 0)
		return ret;
	if (j->dead || j->lease_pid != a->pid) {
		job_clear(j);
		return DB_NOTFOUND;
	}
	return 0;
}

static int
retry_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	struct store_job j;
	char *last = NULL;
	int ret;

	if ((ret = job_get_held(s, txn, a, &j)) != 0) {
		if (ret == DB_NOTFOUND) {
			*rc = STORE_NOTFOUND;
			ret = 0;
		}
		return ret;
	}
	if ((last = last_copy(a->last)) == NULL) {
		ret = ENOMEM;
		goto out;
	}
	free(j.last);
	j.last = last;
	j.attempts++;
	j.lease_pid = 0;
	if (a->dead) {
		if ((ret = meta_move(s, txn, -1, 1, NULL)) != 0 ||
		    (ret = job_unlink(s, txn, &j)) != 0)
			goto out;
		j.dead = 1;
	} else {
		if ((ret = due_op(s, txn, j.next_at, j.id, 1)) != 0)
			goto out;
		j.next_at = a->at;
		if ((ret = due_op(s, txn, j.next_at, j.id, 0)) != 0)
			goto out;
	}
	ret = job_put(s, txn, &j);
out:
	job_clear(&j);
	return ret;
}

int
store__bdb_job_retry(struct store *s, uint64_t id, uint32_t pid, int64_t next_at,
    const char *last, int dead)
{
	struct job_args a = { .id = id, .pid = pid, .at = next_at,
	    .last = last != NULL ? last : "", .dead = dead };

	if (next_at < 0)
		return store__einval(s, "job time out of range");
	return store__run(s, STORE__RUN_TXN, "rescheduling a job", retry_fn,
	    &a);
}

static int
renew_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	struct store_job j;
	int ret;

	if ((ret = job_get_held(s, txn, a, &j)) != 0) {
		if (ret == DB_NOTFOUND) {
			*rc = STORE_NOTFOUND;
			ret = 0;
		}
		return ret;
	}
	/* The lease is the due time: move the job's due entry. */
	if ((ret = due_op(s, txn, j.next_at, j.id, 1)) == 0) {
		j.next_at = a->at;
		if ((ret = due_op(s, txn, j.next_at, j.id, 0)) == 0)
			ret = job_put(s, txn, &j);
	}
	job_clear(&j);
	return ret;
}

int
store__bdb_job_renew(struct store *s, uint64_t id, uint32_t pid,
    int64_t lease_until)
{
	struct job_args a = { .id = id, .pid = pid, .at = lease_until };

	if (lease_until < 0)
		return store__einval(s, "job time out of range");
	return store__run(s, STORE__RUN_TXN, "renewing a lease", renew_fn, &a);
}

static int
get_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	int ret;

	job_clear(a->out);
	ret = job_get(s, txn, a->id, a->out, 0);
	if (ret == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret == 0)
		ret = job_reveal(s, txn, a->out, NULL);
	return ret;
}

int
store__bdb_job_get(struct store *s, uint64_t id, struct store_job **out)
{
	struct job_args a = { .id = id };
	int rc;

	*out = NULL;
	if ((a.out = calloc(1, sizeof(*a.out))) == NULL)
		return store__fail(s, ENOMEM, "getting a job");
	rc = store__run(s, STORE__RUN_READ, "getting a job", get_fn, &a);
	if (rc == STORE_OK)
		*out = a.out;
	else
		store_job_free(a.out);
	return rc;
}

static int
foreach_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	struct store_job j;
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	data.flags = DB_DBT_REALLOC;
	if ((ret = s->jobs->cursor(s->jobs, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0) {
		if (key.size == 8 && store__be64_get(key.data) == 0)
			continue; /* the counter */
		if (job_decode(&key, &data, &j) != 0) {
			ret = EINVAL;
			goto out;
		}
		if ((ret = job_reveal(s, txn, &j, NULL)) != 0) {
			job_clear(&j);
			goto out;
		}
		t = a->fn(a->arg, &j);
		job_clear(&j);
		if (t != 0) {
			*rc = t;
			break;
		}
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	free(key.data);
	free(data.data);
	return ret;
}

int
store__bdb_job_foreach(struct store *s, store_job_fn fn, void *arg)
{
	struct job_args a = { .fn = fn, .arg = arg };

	return store__run(s, STORE__RUN_SCAN, "listing jobs", foreach_fn, &a);
}

/* Revives the dead job id as a new pending job at the tail of its line. */
static int
revive_one(struct store *s, DB_TXN *txn, uint64_t id, int64_t now,
    uint64_t *newid, int *rc)
{
	struct store_job j;
	unsigned flags = 0;
	int ret;

	if ((ret = job_get(s, txn, id, &j, DB_RMW)) == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	if (!j.dead) {
		*rc = store__einval(s, "job %llu is not dead",
		    (unsigned long long)id);
		goto out;
	}
	/* job_insert() counts it pending again. */
	if ((ret = meta_move(s, txn, 0, -1, NULL)) != 0 ||
	    (ret = integ_op(s, txn, &j, 1)) != 0 ||
	    (ret = job_del(s, txn, j.id)) != 0)
		goto out;
	/* A new id: it is applied after what arrived since it died. */
	j.dead = 0;
	j.attempts = 0;
	j.lease_pid = 0;
	j.next_at = now;
	ret = job_insert(s, txn, &j, 0, 0, &flags);
	*newid = j.id;
out:
	job_clear(&j);
	return ret;
}

static int
revive_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;

	return revive_one(s, txn, a->id, a->now, &a->out->id, rc);
}

int
store__bdb_job_revive(struct store *s, uint64_t id, int64_t now, uint64_t *newid)
{
	struct store_job box;
	struct job_args a = { .id = id, .now = now, .out = &box };
	int rc;

	*newid = 0;
	memset(&box, 0, sizeof(box));
	rc = store__run(s, STORE__RUN_TXN, "reviving a job", revive_fn, &a);
	if (rc == STORE_OK)
		*newid = box.id;
	return rc;
}

/* Collects the ids of dead jobs (bounded), to revive them in batches. */
struct dead_ids {
	uint64_t ids[256];
	size_t n;
	uint64_t after;
};

static int
collect_dead(void *arg, const struct store_job *j)
{
	struct dead_ids *d = arg;

	if (!j->dead || j->id <= d->after)
		return 0;
	d->ids[d->n++] = j->id;
	return d->n == sizeof(d->ids) / sizeof(d->ids[0]) ? 1 : 0;
}

struct revive_batch {
	struct dead_ids *d;
	int64_t now;
	size_t done;
};

static int
revive_batch_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct revive_batch *b = arg;
	uint64_t newid;
	size_t i;
	int ret, r;

	b->done = 0;
	for (i = 0; i < b->d->n; i++) {
		r = STORE_OK;
		if ((ret = revive_one(s, txn, b->d->ids[i], b->now, &newid,
		    &r)) != 0)
			return ret;
		if (r == STORE_OK)
			b->done++;
	}
	(void)rc;
	return 0;
}

int
store__bdb_jobs_revive_dead(struct store *s, int64_t now, size_t *count)
{
	struct dead_ids d;
	struct revive_batch b = { .d = &d, .now = now };
	int rc;

	*count = 0;
	memset(&d, 0, sizeof(d));
	/* Batches of dead jobs: a revived one gets a higher id, past after. */
	for (;;) {
		uint64_t last;

		d.n = 0;
		rc = store_job_foreach(s, collect_dead, &d);
		if (rc < 0)
			return rc;
		if (d.n == 0)
			return STORE_OK;
		last = d.ids[d.n - 1];
		if ((rc = store__run(s, STORE__RUN_TXN, "reviving jobs",
		    revive_batch_fn, &b)) != STORE_OK)
			return rc;
		*count += b.done;
		d.after = last;
	}
}

static int
cancel_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;
	struct store_job j;
	int ret;

	if ((ret = job_get(s, txn, a->id, &j, DB_RMW)) == DB_NOTFOUND) {
		*rc = STORE_NOTFOUND;
		return 0;
	}
	if (ret != 0)
		return ret;
	ret = job_remove(s, txn, &j);
	job_clear(&j);
	return ret;
}

int
store__bdb_job_cancel(struct store *s, uint64_t id)
{
	struct job_args a = { .id = id };

	return store__run(s, STORE__RUN_TXN, "cancelling a job", cancel_fn, &a);
}

int
store__jobs_cancel(struct store *s, DB_TXN *txn, const char *hash,
    size_t hlen, size_t *n)
{
	char k[STORE_ID_MAX + 9];
	struct store_job j;
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	data.flags = DB_DBT_PARTIAL;
	key.data = k;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	/*
	 * One job at a time: job_remove() touches the index the cursor walks,
	 * so the cursor is reopened at the start of the range each time.
	 */
	for (;;) {
		memcpy(k, hash, hlen);
		k[hlen] = '\0';
		key.size = (u_int32_t)hlen + 1;
		if ((ret = s->jobs_integ->cursor(s->jobs_integ, txn, &c, 0))
		    != 0)
			return ret;
		ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW);
		t = c->close(c);
		c = NULL;
		if (ret == DB_NOTFOUND)
			return 0;
		if (ret == 0)
			ret = t;
		if (ret != 0)
			return ret;
		if (key.size != hlen + 9 || !store__has_prefix(&key, hash, hlen))
			return 0;
		ret = job_get(s, txn, store__be64_get((unsigned char *)k + hlen + 1), &j,
		    DB_RMW);
		if (ret == DB_NOTFOUND) {
			/* A stray index entry: drop it. */
			if ((ret = index_op(s->jobs_integ, txn, k, key.size, 1))
			    != 0)
				return ret;
			continue;
		}
		if (ret != 0)
			return ret;
		ret = job_remove(s, txn, &j);
		job_clear(&j);
		if (ret != 0)
			return ret;
		if (n != NULL)
			(*n)++;
	}
}

static int
cancel_integ_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct job_args *a = arg;

	(void)rc;
	a->count = 0;
	return store__jobs_cancel(s, txn, a->integ, STORE__HASH_LEN, &a->count);
}

int
store__bdb_jobs_cancel(struct store *s, const char *integ, size_t *count)
{
	char hash[STORE__HASH_LEN + 1];
	struct job_args a = { .integ = hash };
	size_t n;
	int rc;

	if (count != NULL)
		*count = 0;
	if ((rc = store__check_id(s, "integration id", integ, &n)) !=
	    STORE_OK)
		return rc;
	if (store__token_key(s, integ, n, hash) != 0)
		return store__fail(s, ENOMEM, "cancelling jobs");
	rc = store__run(s, STORE__RUN_TXN, "cancelling jobs", cancel_integ_fn,
	    &a);
	if (rc == STORE_OK && count != NULL)
		*count = a.count;
	return rc;
}

struct release_args {
	int64_t now;
	store_job_alive_fn alive;
	size_t count;
};

static int
release_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct release_args *a = arg;
	uint64_t ids[256];
	unsigned char kb[16];
	struct store_job j;
	DBC *c = NULL;
	DBT key, data;
	size_t n = 0, i;
	int ret, t;

	(void)rc;
	a->count = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kb;
	key.ulen = sizeof(kb);
	key.flags = DB_DBT_USERMEM;
	data.flags = DB_DBT_PARTIAL;
	/* Leases end in the future: they sort after now in the due index. */
	store__be64_put(kb, (uint64_t)a->now);
	memset(kb + 8, 0, 8);
	key.size = 16;
	if ((ret = s->jobs_due->cursor(s->jobs_due, txn, &c, 0)) != 0)
		return ret;
	for (ret = c->get(c, &key, &data, DB_SET_RANGE); ret == 0 &&
	    n < sizeof(ids) / sizeof(ids[0]);
	    ret = c->get(c, &key, &data, DB_NEXT)) {
		if (key.size == 16)
			ids[n++] = store__be64_get(kb + 8);
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	if ((t = c->close(c)) != 0 && ret == 0)
		ret = t;
	if (ret != 0)
		return ret;
	for (i = 0; i < n; i++) {
		if ((ret = job_get(s, txn, ids[i], &j, DB_RMW)) != 0) {
			if (ret == DB_NOTFOUND)
				continue;
			return ret;
		}
		if (j.lease_pid != 0 && !j.dead && !a->alive(j.lease_pid)) {
			if ((ret = due_op(s, txn, j.next_at, j.id, 1)) == 0) {
				j.next_at = a->now;
				j.lease_pid = 0;
				if ((ret = due_op(s, txn, j.next_at, j.id, 0)) == 0)
					ret = job_put(s, txn, &j);
			}
			a->count++;
		}
		job_clear(&j);
		if (ret != 0)
			return ret;
	}
	return 0;
}

int
store__bdb_jobs_release(struct store *s, int64_t now, store_job_alive_fn alive,
    size_t *count)
{
	struct release_args a = { .now = now, .alive = alive };
	int rc;

	if (count != NULL)
		*count = 0;
	rc = store__run(s, STORE__RUN_TXN, "releasing leases", release_fn, &a);
	if (rc == STORE_OK && count != NULL)
		*count = a.count;
	return rc;
}

static int
stats_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct store_jobs_stats *st = arg;
	unsigned char kb[8], hb[JOB_HEAD];
	struct job_meta m;
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	(void)rc;
	memset(st, 0, sizeof(*st));
	if ((ret = meta_get(s, txn, &m, 0)) != 0)
		return ret;
	st->pending = m.pending;
	st->dead = m.dead;
	if (m.pending == 0)
		return 0;
	/*
	 * Ids grow with time: the first pending record is the oldest.  Only
	 * record heads are read; dead jobs before it are skipped.
	 */
	memset(kb, 0, sizeof(kb));
	store__be64_put(kb, 1);
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kb;
	key.size = 8;
	key.ulen = sizeof(kb);
	key.flags = DB_DBT_USERMEM;
	data.data = hb;
	data.ulen = sizeof(hb);
	data.dlen = sizeof(hb);
	data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	if ((ret = s->jobs->cursor(s->jobs, txn, &c, 0)) != 0)
		goto out;
	for (ret = c->get(c, &key, &data, DB_SET_RANGE); ret == 0;
	    ret = c->get(c, &key, &data, DB_NEXT)) {
		if (key.size != 8 || data.size != JOB_HEAD)
			continue;
		if (hb[1] != JOB_DEAD) {
			st->oldest_created = (int64_t)store__be64_get(hb + 18);
			break;
		}
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

int
store__bdb_jobs_stats(struct store *s, struct store_jobs_stats *st)
{
	return store__run(s, STORE__RUN_SCAN, "counting jobs", stats_fn, st);
}

/* Deletes every entry of an index, in txn. */
static int
index_clear(DB *db, DB_TXN *txn)
{
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_PARTIAL;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = db->cursor(db, txn, &c, 0)) != 0)
		return ret;
	while ((ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0)
		if ((ret = c->del(c, 0)) != 0)
			break;
	if (ret == DB_NOTFOUND)
		ret = 0;
	if ((t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

int
store__jobs_migrate(struct store *s, DB_TXN *txn, size_t *moved)
{
	char hash[STORE__HASH_LEN + 1];
	uint64_t *ids = NULL, *nids;
	size_t n = 0, cap = 0, i, tlen;
	struct store_job j;
	DBC *c = NULL;
	DBT key, data;
	int ret, t;

	memset(&j, 0, sizeof(j));
	/* The ids first: records are rewritten after the walk. */
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	data.flags = DB_DBT_PARTIAL;
	if ((ret = s->jobs->cursor(s->jobs, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) == 0) {
		if (key.size != 8 || store__be64_get(key.data) == 0)
			continue; /* the counter */
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nids = realloc(ids, cap * sizeof(*ids))) == NULL) {
				ret = ENOMEM;
				goto out;
			}
			ids = nids;
		}
		ids[n++] = store__be64_get(key.data);
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
	t = c->close(c);
	c = NULL;
	if (ret == 0)
		ret = t;
	if (ret != 0)
		goto out;
	/* The indexes are keyed by the raw token: rebuilt on the hash. */
	if ((ret = index_clear(s->jobs_contact, txn)) != 0 ||
	    (ret = index_clear(s->jobs_integ, txn)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((ret = job_get(s, txn, ids[i], &j, DB_RMW)) != 0)
			goto out;
		tlen = strlen(j.integ);
		if (tlen == 0 || tlen > STORE_ID_MAX) {
			ret = EINVAL;
			goto out;
		}
		if ((ret = store__token_key(s, j.integ, tlen, hash)) != 0 ||
		    (ret = store__token_remember(s, txn, hash, j.integ,
		    tlen)) != 0)
			goto out;
		explicit_bzero(j.integ, tlen);
		free(j.integ);
		if ((j.integ = strdup(hash)) == NULL) {
			ret = ENOMEM;
			goto out;
		}
		if ((ret = integ_op(s, txn, &j, 0)) != 0 ||
		    (!j.dead && (ret = contact_op(s, txn, &j, 0)) != 0) ||
		    (ret = job_put(s, txn, &j)) != 0)
			goto out;
		job_clear(&j);
		(*moved)++;
	}
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	job_clear(&j);
	free(key.data);
	free(ids);
	return ret;
}
