/*
 * store/env.c - the environment: open, close, errors, and the transaction
 * runner that every operation goes through (deadlock retries, checkpoints,
 * DB_RUNRECOVERY).
 *
 * The open sequence is the one measured in BDB-NOTES.md: thread count and
 * isalive (failchk needs both), automatic deadlock detection, and
 * DB_RECOVER | DB_REGISTER | DB_FAILCHK on every open, so that the
 * replacement of a dead process runs failchk rather than a recovery that
 * would panic the live ones.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

/*
 * Per process sharing the environment (store_opts.processes), lockers: one
 * per open database (16: dbs[] below), per transaction and per cursor
 * outside one, with room.  With BDB 5.3's default (1,000 in all) 400
 * processes opening at once hung and 600 corrupted memory; 16 each let 600
 * open (measured, with 7 databases: one more for each database beyond).
 */
#define LOCKERS_PER_PROCESS 25
/*
 * Locks: a transaction holds one per B-tree page it touched, so deleting a
 * large integration (or exporting the store, one page per ~60 pairs) needs
 * many.  BDB 5.3 sizes the region for the maximum, about 110 bytes a lock:
 * 500,000 is a 55 MB region file, enough to delete an integration of
 * several million pairs or export a store of tens of millions in one
 * transaction.
 */
#define LOCK_MAX 500000
/* Concurrent transactions. */
#define TXN_MAX 1024
/* A checkpoint is tried every CKP_EVERY commits of a process, and taken if
 * CKP_KBYTES of log were written since the last one: it bounds recovery
 * time and lets DB_LOG_AUTO_REMOVE drop old log files. */
#define CKP_EVERY 256
#define CKP_KBYTES 8192

static const struct {
	const char *file;
	size_t off;
} dbs[] = {
	{ "ids-b.db", offsetof(struct store, b2e) },
	{ "ids-e.db", offsetof(struct store, e2b) },
	{ "installs.db", offsetof(struct store, inst) },
	{ "install-ids.db", offsetof(struct store, instid) },
	{ "state.db", offsetof(struct store, state) },
	{ "jobs.db", offsetof(struct store, jobs) },
	{ "jobs-due.db", offsetof(struct store, jobs_due) },
	{ "jobs-contact.db", offsetof(struct store, jobs_contact) },
	{ "jobs-integ.db", offsetof(struct store, jobs_integ) },
	{ "gens.db", offsetof(struct store, gens) },
	{ "tombs.db", offsetof(struct store, tombs) },
	{ "seen.db", offsetof(struct store, seen) },
	{ "seen-time.db", offsetof(struct store, seent) },
	{ "tokens.db", offsetof(struct store, tokens) },
	{ "services.db", offsetof(struct store, svc) },
	{ "oauth-pending.db", offsetof(struct store, oauth) },
};

static DB **
db_slot(struct store *s, size_t i)
{
	return (DB **)(void *)((char *)s + dbs[i].off);
}

/*
 * failchk's question: is this process still there?  kill(pid, 0) says yes
 * for a zombie and for a process being torn down by a SIGKILL (its pid
 * lingers while it is in fsync, then until it is reaped), and BDB would
 * then wait for ever on the locks it held.  /proc/PID/stat's state field
 * tells: Z (zombie) and X (dead) are dead, as is a pid that is gone.
 */
static int
is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	char path[64], buf[512], *p, st;
	unsigned pflags;
	ssize_t n;
	int fd;

	(void)env;
	(void)tid;
	(void)flags;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ESRCH ? 0 :
		    kill(pid, 0) == 0 || errno == EPERM;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0; /* gone while we looked */
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, the state follows
	 * the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %c %*d %*d %*d %*d %*d %u", &st, &pflags) != 2)
		return 1;
	/* PF_EXITING (0x4): killed and on its way out, it runs no more of
	 * its own code. */
	return !(st == 'Z' || st == 'X' || st == 'x' || (pflags & 0x4) != 0);
}

/* BDB's own explanation of a failure, kept to complete our message. */
static void
errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	struct store *s = env->app_private;

	(void)pfx;
	if (s != NULL)
		snprintf(s->bdbmsg, sizeof(s->bdbmsg), "%s", msg);
}

/*
 * BDB's informational messages (failchk's "Freeing read locks...") would go
 * to stdout, which in a responder may be anything: they are not errors, so
 * they are dropped.
 */
static void
msgcall(const DB_ENV *env, const char *msg)
{
	(void)env;
	(void)msg;
}

/* A panic anywhere means no further call may touch the environment. */
static void
event(DB_ENV *env, u_int32_t ev, void *info)
{
	struct store *s = env->app_private;

	(void)info;
	if (s != NULL && (ev == DB_EVENT_PANIC || ev == DB_EVENT_REG_PANIC))
		s->dead = 1;
}

int
store__env_create(DB_ENV **out, struct store *app, unsigned cache_mb,
    unsigned processes)
{
	DB_ENV *env = NULL;
	int ret;

	*out = NULL;
	if ((ret = db_env_create(&env, 0)) != 0)
		goto out;
	env->app_private = app;
	env->set_errcall(env, errcall);
	env->set_msgcall(env, msgcall);
	if ((ret = env->set_event_notify(env, event)) != 0 ||
	    (ret = env->set_thread_count(env, processes)) != 0 ||
	    (ret = env->set_lk_max_lockers(env, processes *
	    LOCKERS_PER_PROCESS)) != 0 ||
	    (ret = env->set_isalive(env, is_alive)) != 0 ||
	    (ret = env->set_lk_detect(env, DB_LOCK_DEFAULT)) != 0 ||
	    (ret = env->set_cachesize(env, cache_mb / 1024,
	    (cache_mb % 1024) * 1024 * 1024, 1)) != 0 ||
	    (ret = env->set_lk_max_locks(env, LOCK_MAX)) != 0 ||
	    (ret = env->set_lk_max_objects(env, LOCK_MAX)) != 0 ||
	    (ret = env->set_tx_max(env, TXN_MAX)) != 0 ||
	    (ret = env->set_lg_filemode(env, 0600)) != 0 ||
	    (ret = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1)) != 0)
		goto out;
	*out = env;
	env = NULL;
out:
	if (env != NULL)
		env->close(env, 0);
	return ret;
}

static void
vformat(struct store *s, const char *fmt, va_list ap)
{
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
}

int
store__fail(struct store *s, int ret, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (ret == DB_RUNRECOVERY)
		s->dead = 1;
	if (ret == STORE__ESEAL)
		snprintf(s->err, sizeof(s->err), "%s: %s: a token does not "
		    "decrypt: BM_SECRET_KEY_FILE is not the key it was sealed "
		    "with, or the record is damaged", s->home, what);
	else if (s->bdbmsg[0] != '\0')
		snprintf(s->err, sizeof(s->err), "%s: %s: %s (%s)", s->home,
		    what, db_strerror(ret), s->bdbmsg);
	else
		snprintf(s->err, sizeof(s->err), "%s: %s: %s", s->home, what,
		    db_strerror(ret));
	s->bdbmsg[0] = '\0';
	return s->dead ? STORE_RUNRECOVERY : STORE_ERROR;
}

int
store__einval(struct store *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vformat(s, fmt, ap);
	va_end(ap);
	return STORE_EINVAL;
}

int
store__check_id(struct store *s, const char *what, const char *id,
    size_t *len)
{
	size_t n;

	if (id == NULL || *id == '\0')
		return store__einval(s, "%s is empty", what);
	n = strnlen(id, STORE_ID_MAX + 1);
	if (n > STORE_ID_MAX)
		return store__einval(s, "%s is longer than %d bytes", what,
		    STORE_ID_MAX);
	*len = n;
	return STORE_OK;
}

int
store__check_value(struct store *s, const char *what, size_t len)
{
	if (len > STORE_VALUE_MAX)
		return store__einval(s, "%s is larger than %u bytes", what,
		    STORE_VALUE_MAX);
	return STORE_OK;
}

void
store__key(DBT *key, char *buf, const char *a, size_t alen, const char *b,
    size_t blen)
{
	memcpy(buf, a, alen);
	buf[alen] = '\0';
	memcpy(buf + alen + 1, b, blen);
	memset(key, 0, sizeof(*key));
	key->data = buf;
	key->size = (u_int32_t)(alen + 1 + blen);
}

int
store__get_id(DB *db, DB_TXN *txn, DBT *key, char *out, u_int32_t flags)
{
	DBT data;
	int ret;

	memset(&data, 0, sizeof(data));
	data.data = out;
	data.ulen = STORE_ID_MAX;
	data.flags = DB_DBT_USERMEM;
	if ((ret = db->get(db, txn, key, &data, flags)) != 0)
		return ret;
	out[data.size] = '\0';
	return 0;
}

int
store__has_prefix(const DBT *k, const char *prefix, size_t plen)
{
	return k->size > plen && memcmp(k->data, prefix, plen) == 0 &&
	    ((const char *)k->data)[plen] == '\0';
}

int
store__delete_range(DB *db, DB_TXN *txn, const char *prefix, size_t plen,
    size_t *n)
{
	DBC *c = NULL;
	DBT key, data;
	char buf[STORE__KEY_MAX];
	int ret, t;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	if ((ret = db->cursor(db, txn, &c, 0)) != 0)
		goto out;
	memcpy(buf, prefix, plen);
	buf[plen] = '\0';
	key.data = buf;
	key.size = (u_int32_t)plen + 1;
	key.ulen = sizeof(buf);
	key.flags = DB_DBT_USERMEM;
	/* Only the key matters: read no data. */
	data.flags = DB_DBT_PARTIAL;
	for (ret = c->get(c, &key, &data, DB_SET_RANGE | DB_RMW); ret == 0;
	    ret = c->get(c, &key, &data, DB_NEXT | DB_RMW)) {
		if (!store__has_prefix(&key, prefix, plen))
			break;
		if ((ret = c->del(c, 0)) != 0)
			goto out;
		if (n != NULL)
			(*n)++;
	}
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

/* Checkpoints now and then so logs can go and recovery stays short. */
static void
maybe_checkpoint(struct store *s)
{
	int ret;

	if (++s->commits < CKP_EVERY)
		return;
	s->commits = 0;
	ret = s->env->txn_checkpoint(s->env, CKP_KBYTES, 0, 0);
	if (ret == DB_RUNRECOVERY)
		s->dead = 1;
}

void
store__checkpoint(struct store *s)
{
	int ret;

	s->commits = 0;
	ret = s->env->txn_checkpoint(s->env, CKP_KBYTES, 0, 0);
	if (ret == DB_RUNRECOVERY)
		s->dead = 1;
}

/* A short, growing, jittered pause so deadlocked peers do not meet again. */
static void
backoff(unsigned attempt)
{
	struct timespec ts;
	long us = 50L << (attempt < 8 ? attempt : 8);

	us += (long)((unsigned)getpid() * 7919u % 97u) * (long)(attempt + 1);
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
}

int
store__run(struct store *s, enum store__run how, const char *what,
    store__txn_fn fn, void *arg)
{
	DB_TXN *txn = NULL;
	unsigned attempt;
	int ret = 0, rc = STORE_OK;

	if (s->dead)
		return store__fail(s, DB_RUNRECOVERY, "%s", what);
	s->bdbmsg[0] = '\0';
	for (attempt = 0;; attempt++) {
		rc = STORE_OK;
		if (how != STORE__RUN_READ) {
			if ((ret = s->env->txn_begin(s->env, NULL, &txn, 0))
			    != 0) {
				txn = NULL;
				goto fail;
			}
			/* A scan cannot be retried once its callbacks ran:
			 * make the detector pick the writers instead. */
			if (how == STORE__RUN_SCAN &&
			    (ret = txn->set_priority(txn, UINT32_MAX)) != 0)
				goto fail;
		}
		ret = fn(s, txn, arg, &rc);
		if (ret == 0 && rc >= 0 && txn != NULL) {
			ret = txn->commit(txn, 0);
			txn = NULL;
			if (ret == 0 && how == STORE__RUN_TXN)
				maybe_checkpoint(s);
		}
		if (ret == 0)
			break;
		if (txn != NULL) {
			(void)txn->abort(txn);
			txn = NULL;
		}
		if ((ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED) ||
		    how == STORE__RUN_SCAN || attempt >= s->retries)
			goto fail;
		backoff(attempt);
	}
	if (rc < 0 && txn != NULL)
		(void)txn->abort(txn);
	return rc;
fail:
	if (txn != NULL)
		(void)txn->abort(txn);
	if (ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED)
		return store__fail(s, ret, "%s (after %u retries)", what,
		    attempt);
	return store__fail(s, ret, "%s", what);
}

/* Opens one database, retrying when a concurrent creator deadlocks us. */
static int
open_db(struct store *s, size_t i)
{
	DB *db = NULL;
	unsigned attempt;
	int ret = 0;

	for (attempt = 0; attempt <= s->retries; attempt++) {
		if ((ret = db_create(&db, s->env, 0)) != 0)
			return ret;
		ret = db->open(db, NULL, dbs[i].file, NULL, DB_BTREE,
		    DB_CREATE | DB_AUTO_COMMIT, 0600);
		if (ret == 0) {
			*db_slot(s, i) = db;
			return 0;
		}
		(void)db->close(db, 0);
		if (ret != DB_LOCK_DEADLOCK && ret != DB_LOCK_NOTGRANTED)
			break;
		backoff(attempt);
	}
	return ret;
}

int
store__bdb_open(struct store **out, const struct store_opts *o, char *err,
    size_t errlen)
{
	struct store *s = NULL;
	char *reg = NULL;
	size_t i;
	int ret, rc = STORE_ERROR;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (o == NULL || o->home == NULL || o->home[0] == '\0') {
		snprintf(err, errlen, "store: no environment directory given");
		return STORE_EINVAL;
	}
	if (o->durability >= STORE_DURABILITY__MAX) {
		snprintf(err, errlen, "%s: unknown durability %d", o->home,
		    (int)o->durability);
		return STORE_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->home = strdup(o->home)) == NULL) {
		snprintf(err, errlen, "%s: %s", o->home, strerror(ENOMEM));
		goto out;
	}
	s->ops = &store__bdb_ops;
	s->retries = o->retries > 0 ? o->retries : 20;
	/* Owner only: tokens and secrets live here. */
	if (mkdir(s->home, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create: %s", s->home,
		    strerror(errno));
		goto out;
	}
	if ((ret = store__env_create(&s->env, s,
	    o->cache_mb > 0 ? o->cache_mb : 32, o->processes == 0 ?
	    STORE_PROCESSES_DEFAULT : o->processes > STORE_PROCESSES_MAX ?
	    STORE_PROCESSES_MAX : o->processes)) != 0) {
		store__fail(s, ret, "configuring environment");
		goto fail;
	}
	if (o->durability == STORE_DURABILITY_WRITE &&
	    (ret = s->env->set_flags(s->env, DB_TXN_WRITE_NOSYNC, 1)) != 0) {
		store__fail(s, ret, "configuring environment");
		goto fail;
	}
	if ((ret = s->env->open(s->env, s->home, STORE__OPEN_FLAGS, 0600))
	    != 0) {
		/* A failed open leaves a handle that may only be closed. */
		store__fail(s, ret, "opening environment");
		(void)s->env->close(s->env, 0);
		s->env = NULL;
		goto fail;
	}
	/* BDB creates its registry 0660 whatever we ask; make it ours. */
	if (asprintf(&reg, "%s/__db.register", s->home) >= 0)
		(void)chmod(reg, 0600);
	for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		if ((ret = open_db(s, i)) != 0) {
			store__fail(s, ret, "opening %s", dbs[i].file);
			goto fail;
		}
	if (store__crypto_init(s, 0, o->key_file, err, errlen) < 0) {
		rc = STORE_ERROR;
		goto out;
	}
	if (store__migrate(s) != STORE_OK)
		goto fail;
	*out = s;
	s = NULL;
	rc = STORE_OK;
	goto out;
fail:
	snprintf(err, errlen, "%s", s->err);
	rc = s->dead ? STORE_RUNRECOVERY : STORE_ERROR;
out:
	free(reg);
	store__bdb_close(s);
	return rc;
}

int
store__bdb_close(struct store *s)
{
	size_t i;
	DB *db;
	int rc = 0;

	if (s == NULL)
		return 0;
	/*
	 * After a panic, closing would unregister this process from BDB's
	 * registry and hide the failure from the next opener, which must
	 * recover.  Exiting with the handle open leaves the evidence.
	 */
	if (s->env != NULL && !s->dead) {
		for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
			if ((db = *db_slot(s, i)) != NULL)
				(void)db->close(db, 0);
		(void)s->env->txn_checkpoint(s->env, 0, 0, 0);
		if (s->env->close(s->env, 0) != 0)
			rc = -1;
	} else if (s->env != NULL)
		rc = -1;
	store__crypto_clear(s);
	free(s->home);
	free(s);
	return rc;
}

/* The Berkeley DB backend (store_int.h). */
const struct store_ops store__bdb_ops = {
	.name = "bdb",
	.close = store__bdb_close,
	.ids_save = store__bdb_ids_save,
	.ext_id_get = store__bdb_ext_id_get,
	.botmatic_id_get = store__bdb_botmatic_id_get,
	.ids_delete = store__bdb_ids_delete,
	.ids_delete_all = store__bdb_ids_delete_all,
	.ids_foreach = store__bdb_ids_foreach,
	.install_record = store__bdb_install_record,
	.install_get = store__bdb_install_get,
	.install_get_by_id = store__bdb_install_get_by_id,
	.install_settings_update = store__bdb_install_settings_update,
	.install_put = store__bdb_install_put,
	.install_delete = store__bdb_install_delete,
	.install_foreach = store__bdb_install_foreach,
	.state_get = store__bdb_state_get,
	.state_set = store__bdb_state_set,
	.state_delete = store__bdb_state_delete,
	.delivery_claim = store__bdb_delivery_claim,
	.delivery_release = store__bdb_delivery_release,
	.job_add = store__bdb_job_add,
	.delivery_accept = store__bdb_delivery_accept,
	.job_claim = store__bdb_job_claim,
	.job_done = store__bdb_job_done,
	.job_retry = store__bdb_job_retry,
	.job_renew = store__bdb_job_renew,
	.job_get = store__bdb_job_get,
	.job_foreach = store__bdb_job_foreach,
	.job_revive = store__bdb_job_revive,
	.jobs_revive_dead = store__bdb_jobs_revive_dead,
	.jobs_release = store__bdb_jobs_release,
	.jobs_stats = store__bdb_jobs_stats,
	.job_cancel = store__bdb_job_cancel,
	.jobs_cancel = store__bdb_jobs_cancel,
	.purge_step = store__bdb_purge_step,
	.service_put = store__bdb_service_put,
	.service_get = store__bdb_service_get,
	.service_lease = store__bdb_service_lease,
	.service_refreshed = store__bdb_service_refreshed,
	.service_lease_end = store__bdb_service_lease_end,
	.service_delete = store__bdb_service_delete,
	.service_foreach = store__bdb_service_foreach,
	.oauth_link_create = store__bdb_oauth_link_create,
	.oauth_link_take = store__bdb_oauth_link_take,
	.oauth_state_take = store__bdb_oauth_state_take,
	.rekey = store__bdb_rekey,
	.export = store__bdb_export,
	.apply = store__bdb_apply,
	.verify = store__bdb_verify,
};
