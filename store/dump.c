/*
 * store/dump.c - whole-store operations: consistent export, batched writes
 * for imports, and the bijection check.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

/* Keys a verification transaction reads before it commits and reports:
 * small enough to hold few locks, large enough to cost little. */
#define VERIFY_BATCH 1000

/*
 * Splits a stored key "prefix\0id" copied into buf (STORE__KEY_MAX + 1):
 * the token is copied NUL-terminated into tok (STORE_ID_MAX + 1), *id
 * points into buf, *gen and *plen describe the prefix.  -1 if malformed.
 */
static int
split_key(const DBT *k, char *buf, char *tok, const char **id, uint64_t *gen,
    size_t *plen)
{
	const char *t;
	size_t tlen;

	if (k->size == 0 || k->size > STORE__KEY_MAX)
		return -1;
	memcpy(buf, k->data, k->size);
	buf[k->size] = '\0';
	if (store__split_prefix(buf, k->size, &t, &tlen, gen, plen) != 0 ||
	    tlen > STORE_ID_MAX)
		return -1;
	memcpy(tok, t, tlen);
	tok[tlen] = '\0';
	*id = buf + *plen + 1;
	return 0;
}

/*
 * Whether a key of tok's generation gen is live (not forgotten and waiting
 * for the purge).  The last answer is kept: keys come sorted by prefix.
 */
struct gen_cache {
	char tok[STORE_ID_MAX + 1];
	uint64_t gen;  /* tok's current generation */
	int valid;
};

static int
gen_live(struct store *s, DB_TXN *txn, struct gen_cache *gc, int state,
    const char *tok, uint64_t gen, u_int32_t flags, int *live)
{
	int ret;

	if (!gc->valid || strcmp(gc->tok, tok) != 0) {
		gc->valid = 0;
		if ((ret = store__current_gen_keyed(s, txn, tok, strlen(tok),
		    state, &gc->gen, flags)) != 0)
			return ret;
		snprintf(gc->tok, sizeof(gc->tok), "%s", tok);
		gc->valid = 1;
	}
	*live = gc->gen == gen;
	return 0;
}

struct export_args {
	const struct store_export_cbs *cbs;
	void *arg;
};

/*
 * The token of hash, for an export: keys hold hashes, the callbacks get
 * tokens.  Keys come in hash order, so the last one found is kept.
 * Returns 0 or an error (a hash without its token is damage).
 */
static int
walk_token(struct store *s, DB_TXN *txn, const char *hash, size_t hlen,
    char last[STORE__HASH_LEN + 1], char **tok)
{
	int ret;

	if (hlen != STORE__HASH_LEN)
		return EINVAL;
	if (*tok != NULL && memcmp(last, hash, STORE__HASH_LEN) == 0)
		return 0;
	if (*tok != NULL) {
		explicit_bzero(*tok, strlen(*tok));
		free(*tok);
		*tok = NULL;
	}
	memcpy(last, hash, STORE__HASH_LEN);
	last[STORE__HASH_LEN] = '\0';
	ret = store__token_lookup(s, txn, last, tok);
	return ret == DB_NOTFOUND ? EINVAL : ret;
}

/* Walks every key/value of db, calling one of the callbacks. */
static int
walk(struct store *s, DB *db, DB_TXN *txn, struct export_args *a, int *rc)
{
	struct store_install in;
	struct gen_cache gc = { .valid = 0 };
	DBC *c = NULL;
	DBT key, data;
	char kbuf[STORE__KEY_MAX + 1], vbuf[STORE_ID_MAX + 1];
	char integ[STORE_ID_MAX + 1];
	char last[STORE__HASH_LEN + 1], *tok = NULL;
	const char *id;
	uint64_t gen;
	size_t plen;
	int ret, t = 0, live;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.flags = DB_DBT_REALLOC;
	data.flags = DB_DBT_REALLOC;
	if ((ret = db->cursor(db, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0) {
		if (db == s->inst) {
			if ((ret = walk_token(s, txn, key.data, key.size, last,
			    &tok)) != 0)
				goto out;
			if (store__install_decode(s, tok, &data, &in) != 0) {
				ret = EINVAL;
				goto out;
			}
			t = a->cbs->install(a->arg, &in);
			explicit_bzero(in.token, strlen(in.token));
			free(in.token);
			free(in.settings);
		} else if (split_key(&key, kbuf, integ, &id, &gen, &plen)
		    != 0) {
			ret = EINVAL;
			goto out;
		} else if ((ret = gen_live(s, txn, &gc, db == s->state, integ,
		    gen, DB_READ_COMMITTED, &live)) != 0)
			goto out;
		else if (!live)
			continue; /* forgotten, waiting for the purge */
		else if ((ret = walk_token(s, txn, integ, strlen(integ), last,
		    &tok)) != 0)
			goto out;
		else if (db == s->b2e) {
			if (data.size > STORE_ID_MAX) {
				ret = EINVAL;
				goto out;
			}
			memcpy(vbuf, data.data, data.size);
			vbuf[data.size] = '\0';
			t = a->cbs->pair(a->arg, tok, id, vbuf);
		} else {
			/* Values get a NUL past their end, as promised;
			 * secret ones in clear (the export is the
			 * operator's backup). */
			char *v = NULL;
			size_t vlen = data.size;

			if (store__state_secret(id, strlen(id))) {
				if ((ret = store__state_open(s, key.data,
				    key.size, data.data, data.size, &v,
				    &vlen)) != 0)
					goto out;
			} else if ((v = malloc((size_t)data.size + 1)) ==
			    NULL) {
				ret = ENOMEM;
				goto out;
			} else {
				if (data.size > 0)
					memcpy(v, data.data, data.size);
				v[data.size] = '\0';
			}
			t = a->cbs->state(a->arg, tok, id, v, vlen);
			explicit_bzero(v, vlen);
			free(v);
		}
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
	if (tok != NULL) {
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	free(key.data);
	free(data.data);
	return ret;
}

static int
export_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct export_args *a = arg;
	int ret = 0;

	if (a->cbs->install != NULL &&
	    ((ret = walk(s, s->inst, txn, a, rc)) != 0 || *rc != 0))
		return ret;
	if (a->cbs->pair != NULL &&
	    ((ret = walk(s, s->b2e, txn, a, rc)) != 0 || *rc != 0))
		return ret;
	if (a->cbs->state != NULL)
		ret = walk(s, s->state, txn, a, rc);
	return ret;
}

int
store__bdb_export(struct store *s, const struct store_export_cbs *cbs, void *arg)
{
	struct export_args a = { .cbs = cbs, .arg = arg };

	return store__run(s, STORE__RUN_SCAN, "exporting", export_fn, &a);
}

/* Lengths of an op's strings, checked. */
struct op_len {
	size_t a, b, c;
};

static int
check_op(struct store *s, const struct store_op *op, struct op_len *l)
{
	int rc = STORE_OK;

	switch (op->kind) {
	case STORE_OP_IDS_SAVE:
	case STORE_OP_IDS_DELETE:
		if ((rc = store__check_id(s, "integration id", op->a, &l->a)) ||
		    (rc = store__check_id(s, "botmatic id", op->b, &l->b)) ||
		    (rc = store__check_id(s, "external id", op->c, &l->c)))
			return rc;
		break;
	case STORE_OP_INSTALL_PUT:
		if (op->install == NULL)
			return store__einval(s, "installation missing");
		return store__check_install(s, op->install);
	case STORE_OP_STATE_SET:
	case STORE_OP_STATE_DELETE:
		if ((rc = store__check_id(s, "token", op->a, &l->a)) ||
		    (rc = store__check_id(s, "state name", op->b, &l->b)))
			return rc;
		if (op->kind == STORE_OP_STATE_SET &&
		    ((rc = store__check_value(s, "state value", op->len)) ||
		    (op->val == NULL && op->len > 0)))
			return rc ? rc : store__einval(s, "state value missing");
		break;
	default:
		return store__einval(s, "unknown operation %d", (int)op->kind);
	}
	return rc;
}

struct apply_args {
	const struct store_op *ops;
	size_t n;
	struct op_len *len;
	size_t *bad;
};

static int
apply_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct apply_args *a = arg;
	const struct store_op *op;
	const struct op_len *l;
	size_t i;
	int ret = 0, r;

	for (i = 0; i < a->n && ret == 0; i++) {
		op = &a->ops[i];
		l = &a->len[i];
		r = STORE_OK;
		switch (op->kind) {
		case STORE_OP_IDS_SAVE:
			ret = store__ids_save(s, txn, op->a, l->a, op->b, l->b,
			    op->c, l->c, &r);
			break;
		case STORE_OP_IDS_DELETE:
			ret = store__ids_delete(s, txn, op->a, l->a, op->b,
			    l->b, op->c, l->c, &r);
			break;
		case STORE_OP_INSTALL_PUT:
			ret = store__install_put(s, txn, op->install, &r);
			break;
		case STORE_OP_STATE_SET:
			ret = store__state_set(s, txn, op->a, l->a, op->b,
			    l->b, op->val, op->len);
			break;
		case STORE_OP_STATE_DELETE:
			ret = store__state_delete(s, txn, op->a, l->a, op->b,
			    l->b, &r);
			break;
		default:
			break;
		}
		/* Not found is fine in a batch; a refusal aborts it. */
		if (ret == 0 && r < 0) {
			*rc = r;
			if (a->bad != NULL)
				*a->bad = i;
			break;
		}
	}
	return ret;
}

int
store__bdb_apply(struct store *s, const struct store_op *ops, size_t n,
    size_t *bad)
{
	struct apply_args a = { .ops = ops, .n = n, .bad = bad };
	size_t i;
	int rc = STORE_OK;

	if (n == 0)
		return STORE_OK;
	if ((a.len = calloc(n, sizeof(*a.len))) == NULL)
		return store__fail(s, ENOMEM, "applying a batch");
	for (i = 0; i < n; i++)
		if ((rc = check_op(s, &ops[i], &a.len[i])) != STORE_OK) {
			if (bad != NULL)
				*bad = i;
			goto out;
		}
	rc = store__run(s, STORE__RUN_TXN, "applying a batch", apply_fn, &a);
out:
	free(a.len);
	return rc;
}

/* One problem found by a verification batch, reported after its commit. */
struct problem {
	const char *what;
	int malformed;
	char key[STORE__KEY_MAX + 1];
	char val[STORE_ID_MAX + 1];
};

struct verify_args {
	DB *db, *other;            /* the direction walked, the reverse */
	int forward;               /* db is botmatic -> ext */
	char last[STORE__KEY_MAX]; /* resume after this key... */
	u_int32_t lastlen;         /* ...of this length (0: from the start) */
	int done;
	struct problem *p;         /* VERIFY_BATCH of them */
	size_t np;
};

static int
verify_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct verify_args *a = arg;
	DBC *c = NULL;
	DBT key, data, rkey;
	char kbuf[STORE__KEY_MAX + 1], vbuf[STORE_ID_MAX + 1];
	char rk[STORE__KEY_MAX], rv[STORE_ID_MAX + 1];
	char tok[STORE_ID_MAX + 1], raw[STORE__KEY_MAX];
	struct gen_cache gc = { .valid = 0 };
	const char *id, *what;
	uint64_t gen;
	size_t seen = 0, plen;
	int ret, t, malformed, live;
	u_int32_t flag;

	(void)rc;
	a->np = 0;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = kbuf;
	key.ulen = STORE__KEY_MAX;
	key.flags = DB_DBT_USERMEM;
	data.data = vbuf;
	data.ulen = STORE_ID_MAX;
	data.flags = DB_DBT_USERMEM;
	if ((ret = a->db->cursor(a->db, txn, &c, 0)) != 0)
		goto out;
	if (a->lastlen > 0) {
		memcpy(kbuf, a->last, a->lastlen);
		key.size = a->lastlen;
		flag = DB_SET_RANGE;
	} else
		flag = DB_FIRST;
	for (ret = c->get(c, &key, &data, flag); ret == 0;
	    ret = c->get(c, &key, &data, DB_NEXT)) {
		if (flag == DB_SET_RANGE && key.size == a->lastlen &&
		    memcmp(kbuf, a->last, a->lastlen) == 0)
			continue; /* done in the previous batch */
		if (seen++ == VERIFY_BATCH)
			break;
		memcpy(a->last, kbuf, key.size);
		a->lastlen = key.size;
		vbuf[data.size] = '\0';
		what = NULL;
		malformed = 0;
		memcpy(raw, kbuf, key.size);
		if (split_key(&key, kbuf, tok, &id, &gen, &plen) != 0) {
			malformed = 1;
			what = "malformed key";
		} else if ((ret = gen_live(s, txn, &gc, 0, tok, gen, 0,
		    &live)) != 0)
			goto out;
		else if (!live)
			; /* forgotten: half purged is expected */
		else {
			store__key(&rkey, rk, raw, plen, vbuf, data.size);
			ret = store__get_id(a->other, txn, &rkey, rv, 0);
			if (ret == DB_NOTFOUND)
				what = a->forward ?
				    "botmatic->ext entry without reverse" :
				    "ext->botmatic entry without reverse";
			else if (ret != 0)
				goto out;
			else if (strcmp(rv, id) != 0)
				what = a->forward ?
				    "botmatic->ext entry whose reverse differs" :
				    "ext->botmatic entry whose reverse differs";
			ret = 0;
		}
		if (what != NULL) {
			a->p[a->np].what = what;
			a->p[a->np].malformed = malformed;
			if (malformed)
				a->p[a->np].key[0] = '\0';
			else {
				/* "token\0id": the caller splits it. */
				size_t tl = strlen(tok), il = strlen(id);

				memcpy(a->p[a->np].key, tok, tl + 1);
				memcpy(a->p[a->np].key + tl + 1, id, il + 1);
			}
			memcpy(a->p[a->np].val, vbuf, data.size + 1);
			a->np++;
		}
		/* split_key wrote a NUL into kbuf; the cursor's key is in
		 * a->last, which is all DB_NEXT needs from us. */
		memcpy(kbuf, a->last, a->lastlen);
	}
	if (ret == DB_NOTFOUND) {
		a->done = 1;
		ret = 0;
	}
out:
	if (c != NULL && (t = c->close(c)) != 0 && ret == 0)
		ret = t;
	return ret;
}

struct token_args {
	const char *hash;
	char *token; /* the result, new */
};

static int
token_fn(struct store *s, DB_TXN *txn, void *arg, int *rc)
{
	struct token_args *a = arg;
	int ret;

	ret = store__token_lookup(s, txn, a->hash, &a->token);
	if (ret == DB_NOTFOUND || ret == STORE__ESEAL) {
		*rc = STORE_NOTFOUND;
		ret = 0;
	}
	return ret;
}

int
store__bdb_verify(struct store *s, store_problem_fn fn, void *arg,
    size_t *problems)
{
	struct token_args ta;
	struct verify_args a;
	const char *integ, *bid, *eid;
	size_t i, count = 0;
	int dir, rc = STORE_OK;

	memset(&a, 0, sizeof(a));
	if ((a.p = calloc(VERIFY_BATCH, sizeof(*a.p))) == NULL) {
		rc = store__fail(s, ENOMEM, "verifying");
		goto out;
	}
	for (dir = 0; dir < 2; dir++) {
		a.db = dir == 0 ? s->b2e : s->e2b;
		a.other = dir == 0 ? s->e2b : s->b2e;
		a.forward = dir == 0;
		a.lastlen = 0;
		a.done = 0;
		while (!a.done) {
			/* Each batch is its own transaction: a consistent
			 * view of both directions, few locks held. */
			rc = store__run(s, STORE__RUN_TXN, "verifying",
			    verify_fn, &a);
			if (rc != STORE_OK)
				goto out;
			for (i = 0; i < a.np; i++) {
				integ = a.p[i].key;
				bid = a.p[i].malformed ? "" :
				    integ + strlen(integ) + 1;
				eid = a.p[i].val;
				if (!a.forward) {
					eid = bid;
					bid = a.p[i].val;
				}
				/* Reported by token, as callers know them; a
				 * key whose token is not there as it is. */
				ta.hash = integ;
				ta.token = NULL;
				if (!a.p[i].malformed &&
				    strlen(integ) == STORE__HASH_LEN &&
				    store__run(s, STORE__RUN_READ,
				    "verifying", token_fn, &ta) == STORE_OK)
					integ = ta.token;
				if (fn != NULL)
					fn(arg, a.p[i].what, integ, bid, eid);
				if (ta.token != NULL) {
					explicit_bzero(ta.token,
					    strlen(ta.token));
					free(ta.token);
				}
				count++;
			}
		}
	}
out:
	free(a.p);
	if (problems != NULL)
		*problems = count;
	return rc;
}
