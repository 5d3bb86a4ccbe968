/*
 * tests/store/test-services.c - the services store (store/services.c):
 * upsert (one record per installation + service + scope, created kept,
 * generation bumped), the refresh lease (one holder, a moved-on record
 * refused, invalid_grant marks it), pending links and states (single
 * use, expiry, another service's refused and burnt), listing, uninstall
 * forgetting them, no token in clear in any file of the environment, and
 * store_rekey: every sealed secret re-encrypted, opened with the new key
 * only.  Runs under valgrind in the second pass.
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

#include "store/store.h"
#include "tests/store/backend.h"
#include "tests/tap.h"

/* A previous webhook secret and an external service's, kept in state. */
#define PREV "a1b2c3d4e5f60718293a4b5c6d7e8f90" \
	"0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define PREV_JSON "{\"secret\":\"" PREV "\",\"rotated\":1700000000}"
#define EXTERNAL "ext-SHOPIFY-SECRET-9d8c7b6a5f4e3d2c1b0a"
#define TOKEN "tok-services-installation-1"
#define ACCESS "AT-in-clear-never-e5b2d4068a1c3e"
#define REFRESH "RT-in-clear-never-7f3a9c1e5b2d40"
#define ACCESS2 "AT-second-0b1c2d3e4f5061728394a5"

static struct store *
open_with(const char *home, const char *key_file, int *rc, char *err,
    size_t errlen)
{
	struct store_opts o = { .home = home, .key_file = key_file };

	test_opts(&o);
	struct store *s = NULL;

	*rc = store_open(&s, &o, err, errlen);
	return s;
}

/* Files of home holding needle: their count (a raw-bytes search). */
static int
files_holding(const char *home, const char *needle)
{
	size_t nlen = strlen(needle), n, i;
	struct dirent *e;
	char path[1024], *buf;
	struct stat st;
	DIR *d;
	FILE *fp;
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
				tap_diag("%s holds %s at %zu", path, needle, i);
				found++;
				break;
			}
		free(buf);
	}
	closedir(d);
	return found;
}

static int
write_key(const char *path, unsigned char fill)
{
	unsigned char k[32];
	int fd, ok;

	memset(k, fill, sizeof(k));
	k[0] = 0x42;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return -1;
	ok = write(fd, k, sizeof(k)) == (ssize_t)sizeof(k);
	close(fd);
	return ok ? 0 : -1;
}

static int
count_fn(void *arg, const struct store_service *sv)
{
	(void)sv;
	(*(int *)arg)++;
	return 0;
}

static int
nservices(struct store *s, const char *iid)
{
	int n = 0;

	if (store_service_foreach(s, iid, count_fn, &n) != STORE_OK)
		return -1;
	return n;
}

int
main(void)
{
	char dir[512], home[600], key1[600], key2[600], err[512];
	char link[STORE_OAUTH_ID_LEN + 1], state[STORE_OAUTH_ID_LEN + 1];
	char ver[STORE_OAUTH_VERIFIER_LEN + 1];
	char ver2[STORE_OAUTH_VERIFIER_LEN + 1];
	char iid[STORE_INSTALL_ID_LEN + 1], st2[STORE_OAUTH_ID_LEN + 1];
	char whsec[STORE_SECRET_LEN + 1];
	char longsvc[STORE_SERVICE_NAME_MAX + 1];
	char longid[STORE_SERVICE_SCOPE_MAX + 1];
	struct store_service in = { 0 }, *sv = NULL, *b = NULL;
	struct store_install *inst = NULL;
	struct tap t = { 0, 0 };
	struct store *s;
	uint64_t gen;
	size_t n = 0;
	int rc, got = -1, got2 = -1;

	if (tap_tmpdir(dir, sizeof(dir), "services") != 0) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(home, sizeof(home), "%s/db", dir);
	snprintf(key1, sizeof(key1), "%s/key1", dir);
	snprintf(key2, sizeof(key2), "%s/key2", dir);
	if (write_key(key1, 1) < 0 || write_key(key2, 2) < 0) {
		printf("Bail out! key files\n");
		return 1;
	}
	s = open_with(home, key1, &rc, err, sizeof(err));
	if (rc != STORE_OK) {
		printf("Bail out! open: %s\n", err);
		return 1;
	}
	rc = store_install_record(s, TOKEN, "{}", 2, &inst);
	tap_ok(&t, rc == STORE_OK, "an installation");
	memcpy(iid, inst->install_id, sizeof(iid));
	memcpy(whsec, inst->secret, sizeof(whsec));
	store_install_free(inst);
	tap_ok(&t, store_state_set(s, TOKEN, STORE_STATE_SECRET_PREVIOUS,
	    PREV_JSON, strlen(PREV_JSON)) == STORE_OK &&
	    store_state_set(s, TOKEN, STORE_STATE_SECRET_EXTERNAL, EXTERNAL,
	    strlen(EXTERNAL)) == STORE_OK,
	    "the previous and the external webhook secrets kept in state");

	/* --- upsert ------------------------------------------------------- */
	memcpy(in.install_id, iid, sizeof(iid));
	in.service = "github";
	in.group = "g1";
	in.user = "";
	in.access = ACCESS;
	in.refresh = REFRESH;
	in.scope = "repo";
	in.updated = 1000;
	in.expires = 4600;
	tap_ok(&t, store_service_put(s, &in) == STORE_OK, "put");
	in.updated = 2000;
	tap_ok(&t, store_service_put(s, &in) == STORE_OK &&
	    nservices(s, iid) == 1, "put again: still one record");
	rc = store_service_get(s, iid, "github", "g1", NULL, &sv);
	tap_ok(&t, rc == STORE_OK && sv != NULL &&
	    strcmp(sv->access, ACCESS) == 0 &&
	    strcmp(sv->refresh, REFRESH) == 0 &&
	    strcmp(sv->scope, "repo") == 0 && sv->created == 1000 &&
	    sv->updated == 2000 && sv->gen == 2 && sv->expires == 4600 &&
	    strcmp(sv->group, "g1") == 0 && strcmp(sv->user, "") == 0,
	    "get: the tokens back, created kept, generation 2");
	gen = sv != NULL ? sv->gen : 0;
	store_service_free(sv);
	sv = NULL;
	in.group = "g2";
	in.user = "u1";
	tap_ok(&t, store_service_put(s, &in) == STORE_OK &&
	    nservices(s, iid) == 2 &&
	    store_service_get(s, iid, "github", "g1", "u1", &sv) ==
	    STORE_NOTFOUND, "another scope is another record");
	in.service = "Bad Name";
	tap_ok(&t, store_service_put(s, &in) == STORE_EINVAL,
	    "a bad service name is refused");
	in.service = "github";
	in.group = "g1";
	in.user = "";

	/* --- lease, refresh ---------------------------------------------- */
	rc = store_service_lease(s, iid, "github", "g1", "", gen, 5000, 30,
	    &got);
	store_service_lease(s, iid, "github", "g1", "", gen, 5001, 30, &got2);
	tap_ok(&t, rc == STORE_OK && got == 1 && got2 == 0,
	    "one lease at a time");
	store_service_lease(s, iid, "github", "g1", "", gen, 5031, 30, &got2);
	tap_ok(&t, got2 == 1, "an expired lease can be taken over");
	in.access = ACCESS2;
	in.refresh = "RT-2";
	in.expires = 9000;
	in.updated = 5040;
	tap_ok(&t, store_service_refreshed(s, &in, gen) == STORE_OK,
	    "the refreshed tokens saved at the leased generation");
	tap_ok(&t, store_service_refreshed(s, &in, gen) == STORE_NOTFOUND,
	    "a second save at the old generation is refused");
	rc = store_service_get(s, iid, "github", "g1", "", &sv);
	tap_ok(&t, rc == STORE_OK && strcmp(sv->access, ACCESS2) == 0 &&
	    strcmp(sv->refresh, "RT-2") == 0 && sv->gen == gen + 1 &&
	    sv->lease_until == 0, "the record moved on, lease ended");
	gen = sv != NULL ? sv->gen : 0;
	store_service_free(sv);
	sv = NULL;
	store_service_lease(s, iid, "github", "g1", "", gen, 6000, 30, &got);
	tap_ok(&t, got == 1 && store_service_lease_end(s, iid, "github", "g1",
	    "", gen, 1) == STORE_OK &&
	    store_service_get(s, iid, "github", "g1", "", &sv) == STORE_OK &&
	    sv->needs_link == 1, "invalid_grant: the lease ends, needs a link");
	store_service_free(sv);
	sv = NULL;
	store_service_lease(s, iid, "github", "g1", "", gen, 7000, 30, &got);
	tap_ok(&t, got == 0, "no lease on a service needing a link");

	/* --- links and states -------------------------------------------- */
	tap_ok(&t, store_oauth_link_create(s, iid, "github", "g3", "", 100,
	    600, link) == STORE_OK && strlen(link) == STORE_OAUTH_ID_LEN,
	    "a link");
	rc = store_oauth_link_take(s, link, "other", 101, 600, state, ver);
	tap_ok(&t, rc == STORE_NOTFOUND &&
	    store_oauth_link_take(s, link, "github", 101, 600, state, ver) ==
	    STORE_NOTFOUND, "another service's link: refused, and burnt");
	store_oauth_link_create(s, iid, "github", "g3", "", 100, 600, link);
	tap_ok(&t, store_oauth_link_take(s, link, "github", 700, 600, state,
	    ver) == STORE_NOTFOUND, "an expired link is refused");
	store_oauth_link_create(s, iid, "github", "g3", "u3", 100, 600, link);
	rc = store_oauth_link_take(s, link, "github", 200, 600, state, ver);
	tap_ok(&t, rc == STORE_OK && strlen(state) == STORE_OAUTH_ID_LEN &&
	    strlen(ver) == STORE_OAUTH_VERIFIER_LEN, "the link taken: a state "
	    "and a verifier");
	tap_ok(&t, store_oauth_link_take(s, link, "github", 201, 600, st2,
	    ver2) == STORE_NOTFOUND, "the link is single use");
	rc = store_oauth_state_take(s, state, "github", 300, &b, ver2);
	tap_ok(&t, rc == STORE_OK && b != NULL &&
	    strcmp(b->install_id, iid) == 0 &&
	    strcmp(b->service, "github") == 0 && strcmp(b->group, "g3") == 0 &&
	    strcmp(b->user, "u3") == 0 && strcmp(ver, ver2) == 0,
	    "the state gives back the key and the verifier");
	store_service_free(b);
	b = NULL;
	tap_ok(&t, store_oauth_state_take(s, state, "github", 301, &b, ver2) ==
	    STORE_NOTFOUND, "the state is single use");
	store_oauth_link_create(s, iid, "github", "", "", 100, 600, link);
	store_oauth_link_take(s, link, "github", 200, 600, state, ver);
	tap_ok(&t, store_oauth_state_take(s, state, "github", 801, &b, ver2) ==
	    STORE_NOTFOUND, "an expired state is refused");
	store_oauth_link_create(s, iid, "github", "", "", 100, 600, link);
	store_oauth_link_take(s, link, "github", 200, 600, state, ver);
	tap_ok(&t, store_oauth_state_take(s, state, "other", 300, &b, ver2) ==
	    STORE_NOTFOUND && store_oauth_state_take(s, state, "github", 300,
	    &b, ver2) == STORE_NOTFOUND,
	    "another service's state: refused, and burnt");
	tap_ok(&t, store_oauth_state_take(s, "0123", "github", 300, &b, ver2)
	    == STORE_NOTFOUND, "a malformed state: not found");
	/* The longest key there is: every part at its maximum. */
	memset(longsvc, 'a', STORE_SERVICE_NAME_MAX);
	longsvc[STORE_SERVICE_NAME_MAX] = '\0';
	memset(longid, 'g', STORE_SERVICE_SCOPE_MAX);
	longid[STORE_SERVICE_SCOPE_MAX] = '\0';
	rc = store_oauth_link_create(s, iid, longsvc, longid, longid, 100, 600,
	    link);
	if (rc == STORE_OK)
		rc = store_oauth_link_take(s, link, longsvc, 200, 600, state,
		    ver);
	if (rc == STORE_OK)
		rc = store_oauth_state_take(s, state, longsvc, 300, &b, ver2);
	tap_ok(&t, rc == STORE_OK && b != NULL &&
	    strcmp(b->service, longsvc) == 0 && strcmp(b->group, longid) == 0 &&
	    strcmp(b->user, longid) == 0, "the longest key goes through a link "
	    "and a state");
	store_service_free(b);
	b = NULL;
	longid[STORE_SERVICE_SCOPE_MAX - 1] = 'x';
	tap_ok(&t, store_oauth_link_create(s, iid, "github", "", "", 100, 600,
	    link) == STORE_OK && store_service_get(s, iid, "github", longid,
	    "", &sv) == STORE_NOTFOUND, "a long group is a key like any");
	{
		char toolong[STORE_SERVICE_SCOPE_MAX + 2];

		memset(toolong, 'g', sizeof(toolong) - 1);
		toolong[sizeof(toolong) - 1] = '\0';
		tap_ok(&t, store_oauth_link_create(s, iid, "github", toolong,
		    "", 100, 600, link) == STORE_EINVAL,
		    "a group id over %d bytes is refused",
		    STORE_SERVICE_SCOPE_MAX);
	}
	/* A pending state stays for the rekey below. */
	store_oauth_link_create(s, iid, "github", "g9", "", 100, 600, link);
	store_oauth_link_take(s, link, "github", 200, 600, state, ver);

	/* --- at rest, rotation, uninstall -------------------------------- */
	store_close(s);
	{
		/* On Redis: its append-only files (with-redis.sh's dir). */
		char aof[700];
		const char *where = home;

		if (test_redis() && getenv("REDIS_DIR") != NULL) {
			snprintf(aof, sizeof(aof), "%s/appendonlydir",
			    getenv("REDIS_DIR"));
			where = aof;
		}
		tap_ok(&t, files_holding(where, ACCESS) == 0 &&
		    files_holding(where, REFRESH) == 0 &&
		    files_holding(where, ACCESS2) == 0 &&
		    files_holding(where, ver) == 0 &&
		    files_holding(where, state) == 0,
		    "no file of the store holds a token, verifier or state");
		tap_ok(&t, strlen(whsec) == STORE_SECRET_LEN &&
		    files_holding(where, whsec) == 0,
		    "nor the installation's webhook secret");
		tap_ok(&t, files_holding(where, PREV) == 0 &&
		    files_holding(where, EXTERNAL) == 0,
		    "nor the previous or the external secret");
	}
	s = open_with(home, key1, &rc, err, sizeof(err));
	if (rc == STORE_OK)
		rc = store_rekey(s, key2, &n);
	/* The installation's token and webhook secret, its previous and
	 * external secrets, 2 services, 1 pending verifier. */
	tap_ok(&t, rc == STORE_OK && n == 7, "rotate-key: %zu secrets "
	    "re-encrypted", n);
	store_close(s);
	s = open_with(home, key1, &rc, err, sizeof(err));
	tap_ok(&t, rc == STORE_OK && store_service_get(s, iid, "github", "g2",
	    "u1", &sv) < 0, "the old key opens nothing any more");
	store_service_free(sv);
	sv = NULL;
	store_close(s);
	s = open_with(home, key2, &rc, err, sizeof(err));
	tap_ok(&t, rc == STORE_OK && store_service_get(s, iid, "github", "g2",
	    "u1", &sv) == STORE_OK && strcmp(sv->access, ACCESS) == 0,
	    "the new key opens the services");
	store_service_free(sv);
	sv = NULL;
	tap_ok(&t, store_install_get(s, TOKEN, &inst) == STORE_OK &&
	    strcmp(inst->secret, whsec) == 0,
	    "... and the installation tokens and webhook secret");
	{
		char *v1 = NULL, *v2 = NULL;
		size_t l1 = 0, l2 = 0;

		tap_ok(&t, store_state_get(s, TOKEN,
		    STORE_STATE_SECRET_PREVIOUS, &v1, &l1) == STORE_OK &&
		    strcmp(v1, PREV_JSON) == 0 && store_state_get(s, TOKEN,
		    STORE_STATE_SECRET_EXTERNAL, &v2, &l2) == STORE_OK &&
		    l2 == strlen(EXTERNAL) && strcmp(v2, EXTERNAL) == 0,
		    "... and the previous and external secrets");
		free(v1);
		free(v2);
	}
	store_install_free(inst);
	tap_ok(&t, store_oauth_state_take(s, state, "github", 300, &b, ver2) ==
	    STORE_OK && strcmp(ver, ver2) == 0,
	    "... and the pending verifiers");
	store_service_free(b);
	b = NULL;
	tap_ok(&t, store_rekey(s, "/nonexistent/key", &n) == STORE_EINVAL,
	    "rotate-key to a missing file: refused");
	tap_ok(&t, store_service_delete(s, iid, "github", "g2", "u1") ==
	    STORE_OK && store_service_delete(s, iid, "github", "g2", "u1") ==
	    STORE_NOTFOUND && nservices(s, iid) == 1, "delete one");
	tap_ok(&t, store_install_delete(s, TOKEN, NULL) == STORE_OK &&
	    nservices(s, iid) == 0 && nservices(s, NULL) == 0,
	    "uninstall forgets every service of the installation");
	store_close(s);
	tap_rmtree(dir);
	return tap_done(&t);
}
