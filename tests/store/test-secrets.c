/*
 * tests/store/test-secrets.c - tokens at rest (store/crypto.c): after an
 * installation with pairs and state, no file of the environment holds the
 * token (its raw bytes are searched for); the key files are 0600; the
 * token comes back through the API and the export; a key file others may
 * read, or the wrong one, is refused clearly; and a store written in the
 * old format (keys holding raw tokens, made here by a small writer that
 * uses Berkeley DB directly, as the previous code laid it out) is migrated
 * at its first open, every record found again under the new keys.  And the
 * ids of signed deliveries (store/seen.c): claimed once per ttl, released,
 * purged in bounded batches.  The delivery queue (store/jobs.c) too: a
 * store with a pending and a dead job holds no token, a job gives its
 * token back when it is read, and an old store's jobs are migrated.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <db.h>

#include "store/store.h"
#include "tests/tap.h"

#define TOKEN "tok-AT-REST-7f3a9c1e5b2d4068a1c3e5f7091b2d4f"
#define TOKEN2 "tok-OLD-FORMAT-c0ffee0ddba11deadbeef12345678"
#define TOKEN3 "tok-QUEUED-ONLY-5a5a5a5a0f0f0f0f9e9e9e9e1234"
#define IID "0123456789abcdef0123456789abcdef"
#define SECRET "00112233445566778899aabbccddeeff" \
	"00112233445566778899aabbccddeeff"
/* A previous webhook secret and an external service's, kept in state. */
#define PREV "a1b2c3d4e5f60718293a4b5c6d7e8f90" \
	"0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define PREV_JSON "{\"secret\":\"" PREV "\",\"rotated\":1700000000}"
#define EXTERNAL "ext-SHOPIFY-SECRET-9d8c7b6a5f4e3d2c1b0a"

static struct store *
open_with(const char *home, const char *key_file, int *rc, char *err,
    size_t errlen)
{
	struct store_opts o = { .home = home, .key_file = key_file };
	struct store *s = NULL;

	*rc = store_open(&s, &o, err, errlen);
	return s;
}

/* Files of home (not recursive) holding nlen bytes at needle; their count. */
static int
files_holding_mem(const char *home, const void *needle, size_t nlen)
{
	struct dirent *e;
	char path[1024], *buf;
	struct stat st;
	DIR *d;
	FILE *fp;
	size_t n, i;
	int found = 0;

	if ((d = opendir(home)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", home, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if ((buf = malloc((size_t)st.st_size + 1)) == NULL ||
		    (fp = fopen(path, "rb")) == NULL) {
			free(buf);
			found++;
			continue;
		}
		n = fread(buf, 1, (size_t)st.st_size, fp);
		fclose(fp);
		for (i = 0; i + nlen <= n; i++)
			if (memcmp(buf + i, needle, nlen) == 0) {
				tap_diag("%s holds the secret at %zu", path, i);
				found++;
				break;
			}
		free(buf);
	}
	closedir(d);
	return found;
}

static int
files_holding(const char *home, const char *needle)
{
	return files_holding_mem(home, needle, strlen(needle));
}

/*
 * Files of home holding a webhook secret (64 hex) in any of its forms: the
 * hex, its 32 raw bytes, or the base64 of "whsec_" (the bytes, with or
 * without the prefix); their count.
 */
static int
files_holding_secret(const char *home, const char *hex)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[33];
	char text[64];
	unsigned v;
	size_t i, o = 0;
	int n;

	for (i = 0; i < 32; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		raw[i] = (unsigned char)v;
	}
	raw[32] = 0;
	for (i = 0; i < 33; i += 3) {
		v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 |
		    raw[i + 2];
		text[o++] = b64[v >> 18 & 63];
		text[o++] = b64[v >> 12 & 63];
		text[o++] = b64[v >> 6 & 63];
		text[o++] = b64[v & 63];
	}
	/* 32 bytes: 42 full characters, then a partial one and '=': search
	 * the 42 that do not depend on padding. */
	text[42] = '\0';
	n = files_holding(home, hex);
	n += files_holding_mem(home, raw, 32);
	n += files_holding(home, text);
	return n;
}

static int
export_install(void *arg, const struct store_install *in)
{
	if (strcmp(in->token, TOKEN) == 0)
		++*(int *)arg;
	return 0;
}

static int
export_pair(void *arg, const char *integ, const char *bid, const char *eid)
{
	(void)bid;
	(void)eid;
	if (strcmp(integ, TOKEN) == 0)
		++*(int *)arg;
	return 0;
}

/* Counts TOKEN's values; the secret ones must come in clear. */
static int
export_state(void *arg, const char *token, const char *name,
    const char *val, size_t len)
{
	if (strcmp(token, TOKEN) != 0)
		return 0;
	if (strcmp(name, STORE_STATE_SECRET_PREVIOUS) == 0 &&
	    (len != strlen(PREV_JSON) || strcmp(val, PREV_JSON) != 0))
		return 0;
	if (strcmp(name, STORE_STATE_SECRET_EXTERNAL) == 0 &&
	    (len != strlen(EXTERNAL) || strcmp(val, EXTERNAL) != 0))
		return 0;
	++*(int *)arg;
	return 0;
}

static int
add_job(struct store *s, const char *token, const char *contact,
    uint64_t *id)
{
	struct store_job_spec sp = { .integ = token, .kind = "contact_updated",
	    .contact = contact, .payload = "{\"data\":{\"id\":1}}",
	    .now = 1000 };

	return store_job_add(s, &sp, id, NULL);
}

/*
 * Two jobs of TOKEN, one then dead, one pending; one of TOKEN3 (no
 * installation), which a claim drops.  Every job read gives TOKEN back.
 * Returns 0 when all went as expected.
 */
static int
queue_jobs(struct store *s)
{
	struct store_job *j = NULL, *k = NULL;
	uint64_t a, b, c;
	int ok;

	if (add_job(s, TOKEN3, "c0", &c) != STORE_OK ||
	    add_job(s, TOKEN, "c1", &a) != STORE_OK ||
	    add_job(s, TOKEN, "c2", &b) != STORE_OK)
		return -1;
	/* TOKEN3's comes first: the claim drops it (nobody installed). */
	ok = store_job_claim(s, 42, 2000, 3000, &j) == STORE_OK &&
	    j->id == a && strcmp(j->integ, TOKEN) == 0 &&
	    store_job_get(s, c, &k) == STORE_NOTFOUND &&
	    store_job_retry(s, a, 42, 0, "503 down", 1) == STORE_OK;
	store_job_free(j);
	if (ok) {
		ok = store_job_get(s, a, &k) == STORE_OK && k->dead &&
		    strcmp(k->integ, TOKEN) == 0;
		store_job_free(k);
	}
	(void)b;
	return ok ? 0 : -1;
}

static void
test_fresh(struct tap *t, const char *home)
{
	struct store_install *in = NULL, *got = NULL;
	struct store_export_cbs cbs = { export_install, export_pair,
	    export_state };
	struct store *s;
	struct stat st;
	char err[512], path[1024], secret[65] = "", *v = NULL;
	size_t len;
	int rc, seen = 0;

	s = open_with(home, NULL, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK, "open a new store (%s)", err);
	if (rc != STORE_OK)
		return;
	tap_ok(t, store_install_record(s, TOKEN, "{\"a\":1}", 7, &in) ==
	    STORE_OK && store_ids_save(s, TOKEN, "b1", "e1") == STORE_OK &&
	    store_state_set(s, TOKEN, "cursor", "2", 1) == STORE_OK,
	    "install, a pair and a state value under a token");
	tap_ok(t, store_state_set(s, TOKEN, STORE_STATE_SECRET_PREVIOUS,
	    PREV_JSON, strlen(PREV_JSON)) == STORE_OK &&
	    store_state_set(s, TOKEN, STORE_STATE_SECRET_EXTERNAL, EXTERNAL,
	    strlen(EXTERNAL)) == STORE_OK &&
	    store_state_get(s, TOKEN, STORE_STATE_SECRET_EXTERNAL, &v, &len)
	    == STORE_OK && len == strlen(EXTERNAL) && strcmp(v, EXTERNAL) == 0,
	    "the previous and the external secret kept, given back in clear");
	free(v);
	v = NULL;
	tap_ok(t, in != NULL && store_install_get_by_id(s, in->install_id,
	    &got) == STORE_OK && strcmp(got->token, TOKEN) == 0,
	    "the install id gives the token back");
	store_install_free(got);
	got = NULL;
	tap_ok(t, store_install_get(s, TOKEN, &got) == STORE_OK &&
	    strcmp(got->install_id, in->install_id) == 0 &&
	    store_ext_id_get(s, TOKEN, "b1", &v) == STORE_OK &&
	    strcmp(v, "e1") == 0, "lookups by token find the records");
	store_install_free(got);
	free(v);
	tap_ok(t, queue_jobs(s) == 0, "a pending and a dead job of the "
	    "installation, and one of a token never installed, dropped");
	rc = store_export(s, &cbs, &seen);
	tap_ok(t, rc == STORE_OK && seen == 5,
	    "the export gives the token of the install, pair and state, the "
	    "secret state values in clear (%d)", seen);
	snprintf(secret, sizeof(secret), "%s", in != NULL ? in->secret : "");
	store_install_free(in);
	store_close(s);
	tap_ok(t, files_holding(home, TOKEN) == 0 &&
	    files_holding(home, TOKEN3) == 0,
	    "no file of the environment holds the token's bytes (installed, "
	    "with jobs queued, or only queued)");
	tap_ok(t, strlen(secret) == 64 &&
	    files_holding_secret(home, secret) == 0,
	    "no file of the environment holds the webhook secret (hex, raw "
	    "or whsec_ base64)");
	tap_ok(t, files_holding_secret(home, PREV) == 0 &&
	    files_holding(home, EXTERNAL) == 0,
	    "nor the previous secret (hex, raw, base64) or the external one");
	snprintf(path, sizeof(path), "%s/token-hash.key", home);
	tap_ok(t, stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
	    st.st_size == 32, "token-hash.key: 32 bytes, mode 0600");
	snprintf(path, sizeof(path), "%s/token-seal.key", home);
	tap_ok(t, stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
	    st.st_size == 32, "token-seal.key: 32 bytes, mode 0600");
	s = open_with(home, NULL, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK && store_state_get(s, TOKEN, "cursor", &v,
	    &len) == STORE_OK && len == 1 && v[0] == '2',
	    "reopened: the same keys find the records");
	free(v);
	store_close(s);
}

static int
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return chmod(path, mode) == 0 && n == (ssize_t)strlen(text) ? 0 : -1;
}

static void
test_key_file(struct tap *t, const char *dir)
{
	struct store_install *in = NULL, *got = NULL;
	char home[600], ka[600], kb[600], kc[600], err[512];
	struct store *s;
	int rc;

	snprintf(home, sizeof(home), "%s/keyed", dir);
	snprintf(ka, sizeof(ka), "%s/a.key", dir);
	snprintf(kb, sizeof(kb), "%s/b.key", dir);
	snprintf(kc, sizeof(kc), "%s/c.key", dir);
	write_file(ka, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 0600);
	write_file(kb, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0400);
	write_file(kc, "cccccccccccccccccccccccccccccccc", 0644);
	s = open_with(home, kc, &rc, err, sizeof(err));
	tap_ok(t, rc != STORE_OK && s == NULL && strstr(err, kc) != NULL &&
	    strstr(err, "0644") != NULL && strstr(err, "cccc") == NULL,
	    "a key file others may read is refused, named, not shown (%s)",
	    err);
	s = open_with(home, ka, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK && store_install_record(s, TOKEN, NULL, 0,
	    &in) == STORE_OK, "a store sealing with a 64-hex-digit key file");
	store_close(s);
	tap_ok(t, access(home, F_OK) == 0 && files_holding(home, TOKEN) == 0,
	    "no token in its files either");
	s = open_with(home, kb, &rc, err, sizeof(err));
	rc = rc == STORE_OK && in != NULL ?
	    store_install_get_by_id(s, in->install_id, &got) : STORE_OK;
	tap_ok(t, rc == STORE_ERROR && got == NULL &&
	    strstr(store_strerror(s), "BM_SECRET_KEY_FILE") != NULL,
	    "opened with another key, a token does not open: a clear error "
	    "(%s)", s != NULL ? store_strerror(s) : "");
	store_close(s);
	s = open_with(home, ka, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK && store_install_get_by_id(s, in->install_id,
	    &got) == STORE_OK && strcmp(got->token, TOKEN) == 0,
	    "with its key again, it does");
	store_install_free(got);
	store_install_free(in);
	store_close(s);
}

/* --- a store in the old format ------------------------------------------ */

static int
old_put(DB_ENV *env, const char *file, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	DB *db = NULL;
	DBT key, data;
	int ret;

	if ((ret = db_create(&db, env, 0)) != 0)
		return ret;
	if ((ret = db->open(db, NULL, file, NULL, DB_BTREE, DB_CREATE |
	    DB_AUTO_COMMIT, 0600)) == 0) {
		memset(&key, 0, sizeof(key));
		memset(&data, 0, sizeof(data));
		key.data = (void *)k;
		key.size = (u_int32_t)klen;
		data.data = (void *)v;
		data.size = (u_int32_t)vlen;
		ret = db->put(db, NULL, &key, &data, DB_AUTO_COMMIT);
	}
	db->close(db, 0);
	return ret;
}

/*
 * What the code before store/crypto.c wrote for one installation of TOKEN2
 * with settings {"b":2}, one pair b9 <-> e9 and state "cursor" = "7":
 * installs.db token -> version 1 | created | install id | secret |
 * settings; install-ids.db id -> token; ids-b.db / ids-e.db "token\0id";
 * state.db "token\0name".  And one pending job (store/jobs.c as main
 * laid it out before issue 12), id 1 for contact c9: jobs.db seq -> record
 * naming the raw token (seq 0: the next id), jobs-due.db next_at | seq,
 * jobs-contact.db "token\0c9\0seq", jobs-integ.db "token\0seq".
 */
static void
be(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

static int
old_jobs(DB_ENV *env)
{
	static const char *strs[5] = { TOKEN2, "contact_updated", "c9",
	    "{\"data\":{\"id\":9}}", "" };
	unsigned char rec[512], seq[8], due[16], k[256], *p;
	size_t tl = strlen(TOKEN2), i, n;
	int ret;

	memset(rec, 0, sizeof(rec));
	rec[0] = 1;                     /* version; pending, 0 attempts */
	be(rec + 6, 1000, 8);           /* next_at */
	be(rec + 18, 1000, 8);          /* created */
	p = rec + 26;
	for (i = 0; i < 5; i++) {
		n = strlen(strs[i]);
		be(p, n, 4);
		memcpy(p + 4, strs[i], n);
		p += 4 + n;
	}
	be(seq, 0, 8);
	be(due, 2, 8);
	if ((ret = old_put(env, "jobs.db", seq, 8, due, 8)) != 0)
		return ret;
	be(seq, 1, 8);
	if ((ret = old_put(env, "jobs.db", seq, 8, rec,
	    (size_t)(p - rec))) != 0)
		return ret;
	be(due, 1000, 8);
	be(due + 8, 1, 8);
	if ((ret = old_put(env, "jobs-due.db", due, 16, "", 0)) != 0)
		return ret;
	memcpy(k, TOKEN2, tl + 1);
	memcpy(k + tl + 1, "c9", 3);
	be(k + tl + 4, 1, 8);
	if ((ret = old_put(env, "jobs-contact.db", k, tl + 12, "", 0)) != 0)
		return ret;
	be(k + tl + 1, 1, 8);
	return old_put(env, "jobs-integ.db", k, tl + 9, "", 0);
}

static int
old_store(const char *home)
{
	unsigned char rec[1 + 8 + 32 + 64 + 7];
	char k[256];
	size_t tl = strlen(TOKEN2);
	DB_ENV *env = NULL;
	int ret, i;

	if (mkdir(home, 0700) != 0 || (ret = db_env_create(&env, 0)) != 0)
		return -1;
	ret = env->open(env, home, DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG |
	    DB_INIT_MPOOL | DB_INIT_TXN, 0600);
	rec[0] = 1;
	for (i = 0; i < 8; i++)
		rec[1 + i] = (unsigned char)((uint64_t)1700000000 >> (56 - 8 * i));
	memcpy(rec + 9, IID, 32);
	memcpy(rec + 41, SECRET, 64);
	memcpy(rec + 105, "{\"b\":2}", 7);
	if (ret == 0)
		ret = old_put(env, "installs.db", TOKEN2, tl, rec, sizeof(rec));
	if (ret == 0)
		ret = old_put(env, "install-ids.db", IID, 32, TOKEN2, tl);
	memcpy(k, TOKEN2, tl + 1);
	memcpy(k + tl + 1, "b9", 2);
	if (ret == 0)
		ret = old_put(env, "ids-b.db", k, tl + 3, "e9", 2);
	memcpy(k + tl + 1, "e9", 2);
	if (ret == 0)
		ret = old_put(env, "ids-e.db", k, tl + 3, "b9", 2);
	memcpy(k + tl + 1, "cursor", 6);
	if (ret == 0)
		ret = old_put(env, "state.db", k, tl + 7, "7", 1);
	memcpy(k + tl + 1, STORE_STATE_SECRET_EXTERNAL,
	    strlen(STORE_STATE_SECRET_EXTERNAL));
	if (ret == 0)
		ret = old_put(env, "state.db", k, tl + 1 +
		    strlen(STORE_STATE_SECRET_EXTERNAL), EXTERNAL,
		    strlen(EXTERNAL));
	if (ret == 0)
		ret = old_jobs(env);
	env->close(env, 0);
	return ret == 0 ? 0 : -1;
}

/*
 * Whether any record of file (a dump of its key/data pairs through BDB)
 * holds needle: 1, 0, or -1 on error.
 */
static int
dump_holds(const char *home, const char *file, const char *needle)
{
	size_t nlen = strlen(needle), i;
	DB_ENV *env = NULL;
	DB *db = NULL;
	DBC *c = NULL;
	DBT key, data;
	int ret, found = 0;

	if (db_env_create(&env, 0) != 0)
		return -1;
	if ((ret = env->open(env, home, DB_JOINENV, 0)) != 0 ||
	    (ret = db_create(&db, env, 0)) != 0 ||
	    (ret = db->open(db, NULL, file, NULL, DB_UNKNOWN, DB_RDONLY,
	    0)) != 0 || (ret = db->cursor(db, NULL, &c, 0)) != 0)
		goto out;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0)
		for (i = 0; i + nlen <= data.size; i++)
			if (memcmp((char *)data.data + i, needle, nlen) == 0)
				found = 1;
	if (ret == DB_NOTFOUND)
		ret = 0;
out:
	if (c != NULL)
		c->close(c);
	if (db != NULL)
		db->close(db, 0);
	env->close(env, 0);
	return ret != 0 ? -1 : found;
}

static void
verify_fn_count(void *arg, const char *what, const char *integ,
    const char *bid, const char *eid)
{
	(void)what;
	(void)integ;
	(void)bid;
	(void)eid;
	++*(int *)arg;
}

static void
test_migration(struct tap *t, const char *dir)
{
	struct store_install *got = NULL;
	struct store_job *j = NULL;
	char home[600], err[512], *v = NULL;
	struct store *s;
	size_t len = 0;
	uint64_t id = 0;
	int rc, rc2, problems = 0;

	snprintf(home, sizeof(home), "%s/old", dir);
	rc = old_store(home);
	tap_ok(t, rc == 0, "a store in the old format");
	if (rc != 0)
		return;
	tap_ok(t, files_holding(home, TOKEN2) > 0,
	    "the old format holds the token (the check can see it)");
	s = open_with(home, NULL, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK, "its first open migrates it (%s)", err);
	if (rc != STORE_OK)
		return;
	/* The next open finds the work done (one handle per process). */
	store_close(s);
	s = open_with(home, NULL, &rc2, err, sizeof(err));
	tap_ok(t, rc2 == STORE_OK, "the next open finds it migrated (%s)", err);
	if (rc2 != STORE_OK)
		return;
	tap_ok(t, store_install_get(s, TOKEN2, &got) == STORE_OK &&
	    strcmp(got->install_id, IID) == 0 &&
	    strcmp(got->secret, SECRET) == 0 && got->created == 1700000000 &&
	    strcmp(got->settings, "{\"b\":2}") == 0,
	    "the installation is found by its token, unchanged");
	store_install_free(got);
	got = NULL;
	tap_ok(t, store_install_get_by_id(s, IID, &got) == STORE_OK &&
	    strcmp(got->token, TOKEN2) == 0,
	    "and by its install id, with its token");
	store_install_free(got);
	tap_ok(t, store_ext_id_get(s, TOKEN2, "b9", &v) == STORE_OK &&
	    strcmp(v, "e9") == 0, "the pair is found both ways (1)");
	free(v);
	tap_ok(t, store_botmatic_id_get(s, TOKEN2, "e9", &v) == STORE_OK &&
	    strcmp(v, "b9") == 0, "the pair is found both ways (2)");
	free(v);
	tap_ok(t, store_state_get(s, TOKEN2, "cursor", &v, &len) ==
	    STORE_OK && len == 1 && v[0] == '7', "the state value is found");
	free(v);
	tap_ok(t, store_state_get(s, TOKEN2, STORE_STATE_SECRET_EXTERNAL, &v,
	    &len) == STORE_OK && len == strlen(EXTERNAL) &&
	    strcmp(v, EXTERNAL) == 0, "the external secret is found");
	free(v);
	tap_ok(t, store_verify(s, verify_fn_count, &problems, NULL) ==
	    STORE_OK && problems == 0, "verify: both directions agree");
	/* The job: its record and indexes now name the token's hash. */
	tap_ok(t, add_job(s, TOKEN2, "c9", &id) == STORE_OK && id == 2 &&
	    store_job_claim(s, 42, 2000, 3000, &j) == STORE_OK &&
	    j->id == 1 && strcmp(j->integ, TOKEN2) == 0 &&
	    strcmp(j->contact, "c9") == 0 &&
	    strcmp(j->payload, "{\"data\":{\"id\":9}}") == 0,
	    "the old job is migrated: claimed first, its token given back, "
	    "the new job of its contact queued behind it");
	store_job_free(j);
	j = NULL;
	tap_ok(t, store_job_claim(s, 42, 2000, 3000, &j) == STORE_NOTFOUND,
	    "the contact's line kept its order across the migration");
	/* The secrets: pages the rewrite freed may keep them too; the
	 * records themselves (read through BDB) must not. */
	store_close(s);
	tap_ok(t, dump_holds(home, "installs.db", SECRET) == 0 &&
	    dump_holds(home, "state.db", EXTERNAL) == 0,
	    "the migrated installation record and external secret are "
	    "sealed, not in clear");
	s = open_with(home, NULL, &rc, err, sizeof(err));
	if (rc != STORE_OK)
		return;
	tap_ok(t, store_install_delete(s, TOKEN2, &len) == STORE_OK &&
	    len == 1 && store_ext_id_get(s, TOKEN2, "b9", &v) ==
	    STORE_NOTFOUND && store_job_get(s, 1, &j) == STORE_NOTFOUND &&
	    store_job_get(s, 2, &j) == STORE_NOTFOUND,
	    "uninstall removes the migrated records, jobs too (found by the "
	    "token's hash)");
	store_close(s);
	/* Pages freed by the rewrite, and the log of the old writes, may
	 * keep old bytes until reused: README says how to get a clean copy. */
	tap_diag("after migration, %d files still hold old bytes",
	    files_holding(home, TOKEN2));

}

/* --- verify names a problem by token ------------------------------------ */

struct problem_seen {
	int n, by_token;
};

static void
problem_fn(void *arg, const char *what, const char *integ, const char *bid,
    const char *eid)
{
	struct problem_seen *p = arg;

	(void)what;
	p->n++;
	if (strcmp(integ, TOKEN) == 0 && strcmp(bid, "b5") == 0 &&
	    strcmp(eid, "e5") == 0)
		p->by_token++;
}

/* Empties ids-e.db of home behind the store's back (no handle open). */
static int
drop_reverse(const char *home)
{
	DB_ENV *env = NULL;
	DB *db = NULL;
	u_int32_t n = 0;
	int ret;

	if ((ret = db_env_create(&env, 0)) != 0)
		return -1;
	if ((ret = env->open(env, home, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN, 0600)) == 0 &&
	    (ret = db_create(&db, env, 0)) == 0 &&
	    (ret = db->open(db, NULL, "ids-e.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0600)) == 0)
		ret = db->truncate(db, NULL, &n, DB_AUTO_COMMIT);
	if (db != NULL)
		db->close(db, 0);
	env->close(env, 0);
	return ret == 0 ? 0 : -1;
}

/* Deletes every sealed token of home's tokens.db (not its format). */
static int
drop_tokens(const char *home)
{
	DB_ENV *env = NULL;
	DB_TXN *txn = NULL;
	DB *db = NULL;
	DBC *c = NULL;
	DBT key, data;
	int ret, n = 0;

	if ((ret = db_env_create(&env, 0)) != 0)
		return -1;
	if ((ret = env->open(env, home, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN, 0600)) == 0 &&
	    (ret = db_create(&db, env, 0)) == 0 &&
	    (ret = db->open(db, NULL, "tokens.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0600)) == 0 &&
	    (ret = env->txn_begin(env, NULL, &txn, 0)) == 0 &&
	    (ret = db->cursor(db, txn, &c, 0)) == 0) {
		memset(&key, 0, sizeof(key));
		memset(&data, 0, sizeof(data));
		while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0)
			if (key.size != 7 || memcmp(key.data, "!format", 7) != 0) {
				if ((ret = c->del(c, 0)) != 0)
					break;
				n++;
			}
		c->close(c);
	}
	if (txn != NULL && (ret == DB_NOTFOUND ? txn->commit(txn, 0) :
	    txn->abort(txn)) != 0)
		ret = -1;
	if (db != NULL)
		db->close(db, 0);
	env->close(env, 0);
	return ret == DB_NOTFOUND && n > 0 ? 0 : -1;
}

/*
 * Makes home a format 2 store, as the code before sealing webhook secrets
 * left it: every installation record back to version 1 with secret (64
 * hex) in clear, state value name of every token set to val in clear, and
 * "!format" = "2"; in one transaction.  0 or -1.
 */
static int
to_format2(const char *home, const char *secret, const char *name,
    const char *val)
{
	DB_ENV *env = NULL;
	DB_TXN *txn = NULL;
	DB *inst = NULL, *st = NULL, *tok = NULL;
	DBC *c = NULL;
	DBT key, data, nd;
	unsigned char buf[1024];
	size_t nlen = strlen(name), n;
	int ret, moved = 0;

	if (db_env_create(&env, 0) != 0)
		return -1;
	if ((ret = env->open(env, home, DB_CREATE | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_INIT_TXN, 0600)) != 0 ||
	    (ret = db_create(&inst, env, 0)) != 0 ||
	    (ret = inst->open(inst, NULL, "installs.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0600)) != 0 ||
	    (ret = db_create(&st, env, 0)) != 0 ||
	    (ret = st->open(st, NULL, "state.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0600)) != 0 ||
	    (ret = db_create(&tok, env, 0)) != 0 ||
	    (ret = tok->open(tok, NULL, "tokens.db", NULL, DB_BTREE,
	    DB_AUTO_COMMIT, 0600)) != 0 ||
	    (ret = env->txn_begin(env, NULL, &txn, 0)) != 0 ||
	    (ret = inst->cursor(inst, txn, &c, 0)) != 0)
		goto out;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	/* version 2: 1 | created 8 | id 32 | sealed 93 | settings */
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0) {
		if (data.size < 134 || data.size - 134 + 105 > sizeof(buf)) {
			ret = EINVAL;
			break;
		}
		buf[0] = 1;
		memcpy(buf + 1, (char *)data.data + 1, 40);
		memcpy(buf + 41, secret, 64);
		n = data.size - 134;
		memcpy(buf + 105, (char *)data.data + 134, n);
		memset(&nd, 0, sizeof(nd));
		nd.data = buf;
		nd.size = (u_int32_t)(105 + n);
		if ((ret = c->put(c, &key, &nd, DB_CURRENT)) != 0)
			break;
		moved++;
	}
	c->close(c);
	c = NULL;
	if (ret != DB_NOTFOUND || (ret = st->cursor(st, txn, &c, 0)) != 0)
		goto out;
	while ((ret = c->get(c, &key, &data, DB_NEXT)) == 0) {
		if (key.size <= nlen || memcmp((char *)key.data + key.size -
		    nlen, name, nlen) != 0)
			continue;
		memset(&nd, 0, sizeof(nd));
		nd.data = (void *)val;
		nd.size = (u_int32_t)strlen(val);
		if ((ret = c->put(c, &key, &nd, DB_CURRENT)) != 0)
			break;
		moved++;
	}
	c->close(c);
	c = NULL;
	if (ret != DB_NOTFOUND)
		goto out;
	memset(&key, 0, sizeof(key));
	memset(&nd, 0, sizeof(nd));
	key.data = "!format";
	key.size = 7;
	nd.data = "2";
	nd.size = 1;
	ret = tok->put(tok, txn, &key, &nd, 0);
out:
	if (c != NULL)
		c->close(c);
	if (txn != NULL && (ret == 0 ? txn->commit(txn, 0) :
	    txn->abort(txn)) != 0)
		ret = -1;
	if (inst != NULL)
		inst->close(inst, 0);
	if (st != NULL)
		st->close(st, 0);
	if (tok != NULL)
		tok->close(tok, 0);
	env->close(env, 0);
	return ret == 0 && moved >= 2 ? 0 : -1;
}

/*
 * A format 2 store (secrets in clear) is resealed at its first open: the
 * secrets come back the same, and no record holds them in clear.
 */
static void
test_format2(struct tap *t, const char *dir)
{
	struct store_install *in = NULL;
	char home[600], err[512], secret[65] = "", *v = NULL;
	struct store *s;
	size_t len = 0;
	int rc;

	snprintf(home, sizeof(home), "%s/fmt2", dir);
	s = open_with(home, NULL, &rc, err, sizeof(err));
	if (rc == STORE_OK && (rc = store_install_record(s, TOKEN, "{}", 2,
	    &in)) == STORE_OK)
		rc = store_state_set(s, TOKEN, STORE_STATE_SECRET_EXTERNAL, "x",
		    1);
	if (in != NULL)
		snprintf(secret, sizeof(secret), "%s", in->secret);
	store_install_free(in);
	in = NULL;
	store_close(s);
	rc = rc == STORE_OK ? to_format2(home, secret,
	    STORE_STATE_SECRET_EXTERNAL, EXTERNAL) : -1;
	tap_ok(t, rc == 0 && dump_holds(home, "installs.db", secret) == 1 &&
	    dump_holds(home, "state.db", EXTERNAL) == 1,
	    "a format 2 store: the secrets in clear (the check can see them)");
	if (rc != 0)
		return;
	s = open_with(home, NULL, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK && store_install_get(s, TOKEN, &in) ==
	    STORE_OK && strcmp(in->secret, secret) == 0 &&
	    store_state_get(s, TOKEN, STORE_STATE_SECRET_EXTERNAL, &v, &len)
	    == STORE_OK && strcmp(v, EXTERNAL) == 0,
	    "its first open reseals them: the same secrets come back (%s)",
	    err);
	store_install_free(in);
	free(v);
	store_close(s);
	tap_ok(t, dump_holds(home, "installs.db", secret) == 0 &&
	    dump_holds(home, "state.db", EXTERNAL) == 0,
	    "and no record holds them in clear any more");
}

/*
 * A job of an installation whose sealed token is gone (damage): the claim
 * keeps it as dead, saying why, and gives the next job instead of failing
 * every claim.
 */
static void
test_job_damage(struct tap *t, const char *dir)
{
	struct store_job *j = NULL;
	char home[600], err[512];
	struct store *s;
	uint64_t a = 0, b = 0;
	int rc;

	snprintf(home, sizeof(home), "%s/damage", dir);
	s = open_with(home, NULL, &rc, err, sizeof(err));
	rc = rc == STORE_OK ? store_install_record(s, TOKEN, NULL, 0, NULL) :
	    rc;
	if (rc == STORE_OK && (add_job(s, TOKEN, "c1", &a) != STORE_OK ||
	    add_job(s, TOKEN, "c1", &b) != STORE_OK))
		rc = STORE_ERROR;
	store_close(s);
	if (rc == STORE_OK)
		rc = drop_tokens(home);
	s = rc == 0 ? open_with(home, NULL, &rc, err, sizeof(err)) : NULL;
	rc = s != NULL ? store_job_claim(s, 42, 2000, 3000, &j) : STORE_ERROR;
	store_job_free(j);
	j = NULL;
	tap_ok(t, rc == STORE_NOTFOUND && store_job_get(s, a, &j) ==
	    STORE_OK && j->dead && strstr(j->last, "token is missing") !=
	    NULL && strcmp(j->integ, "") == 0,
	    "a job whose installation lost its sealed token is kept as dead, "
	    "saying why, and the claim goes on (%d)", rc);
	store_job_free(j);
	store_close(s);
}

static void
test_verify(struct tap *t, const char *dir)
{
	struct problem_seen p = { 0, 0 };
	char home[600], err[512];
	struct store *s;
	int rc;

	snprintf(home, sizeof(home), "%s/verify", dir);
	s = open_with(home, NULL, &rc, err, sizeof(err));
	rc = rc == STORE_OK ? store_ids_save(s, TOKEN, "b5", "e5") : rc;
	store_close(s);
	if (rc == STORE_OK)
		rc = drop_reverse(home);
	s = rc == 0 ? open_with(home, NULL, &rc, err, sizeof(err)) : NULL;
	rc = s != NULL ? store_verify(s, problem_fn, &p, NULL) : STORE_ERROR;
	tap_ok(t, rc == STORE_OK && p.n == 1 && p.by_token == 1,
	    "verify reports a pair without its reverse by its token, not its "
	    "key (%d problems, %d by token)", p.n, p.by_token);
	store_close(s);
}

/* --- delivery ids (store/seen.c) ---------------------------------------- */

static void
test_deliveries(struct tap *t, const char *dir)
{
	char home[600], err[512], id[32], big[STORE_DELIVERY_ID_MAX + 2];
	struct store *s;
	int rc, dup = -1, d2 = -1, d3 = -1, gone = 0, i;

	snprintf(home, sizeof(home), "%s/seen", dir);
	s = open_with(home, NULL, &rc, err, sizeof(err));
	tap_ok(t, rc == STORE_OK, "open (%s)", err);
	if (rc != STORE_OK)
		return;
	tap_ok(t, store_delivery_claim(s, IID, "msg_1", 1000, 100, &dup) ==
	    STORE_OK && dup == 0 &&
	    store_delivery_claim(s, IID, "msg_1", 1099, 100, &d2) ==
	    STORE_OK && d2 == 1 &&
	    store_delivery_claim(s, "fedcba9876543210fedcba9876543210",
	    "msg_1", 1099, 100, &d3) == STORE_OK && d3 == 0,
	    "a delivery id is new once, then a duplicate within the ttl (per "
	    "installation)");
	tap_ok(t, store_delivery_claim(s, IID, "msg_1", 1100, 100, &dup) ==
	    STORE_OK && dup == 0, "after the ttl it is new again");
	tap_ok(t, store_delivery_release(s, IID, "msg_1") == STORE_OK &&
	    store_delivery_claim(s, IID, "msg_1", 1101, 100, &dup) ==
	    STORE_OK && dup == 0, "a released claim is new again");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tap_ok(t, store_delivery_claim(s, IID, big, 1101, 100, &dup) ==
	    STORE_EINVAL && store_delivery_claim(s, "short", "m", 1101, 100,
	    &dup) == STORE_EINVAL,
	    "an over-long delivery id or a malformed install id is refused");
	/* 100 claims at 2000, then one at 3000: one batch of the expired
	 * ones goes, the rest stays for the next claims. */
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "e%03d", i);
		if (store_delivery_claim(s, IID, id, 2000, 100, &dup) !=
		    STORE_OK)
			break;
	}
	rc = store_delivery_claim(s, IID, "late", 3000, 100, &dup);
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "e%03d", i);
		if (store_delivery_release(s, IID, id) == STORE_NOTFOUND)
			gone++;
	}
	tap_ok(t, rc == STORE_OK && gone >= STORE_DELIVERY_PURGE_BATCH &&
	    gone < 100, "a claim purges one bounded batch of expired ids "
	    "(%d of 100)", gone);
	store_close(s);
}

int
main(void)
{
	struct tap t = { 0 };
	char dir[512], home[600];

	if (tap_tmpdir(dir, sizeof(dir), "secrets") != 0) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(home, sizeof(home), "%s/env", dir);
	test_fresh(&t, home);
	test_key_file(&t, dir);
	test_migration(&t, dir);
	test_format2(&t, dir);
	test_deliveries(&t, dir);
	test_verify(&t, dir);
	test_job_damage(&t, dir);
	tap_ok(&t, t.n == 44, "all 44 checks ran");
	tap_rmtree(dir);
	return tap_done(&t);
}
