/*
 * store/cli-services.c - botmatic-keys service-link, services, services
 * revoke and services rotate-key.  A link is the same one-time URL a
 * module gets (10 minutes); it needs BM_PUBLIC_URL and BM_ENDPOINT as the
 * server has them.  Nothing secret is printed unless --show-tokens says so.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "store/cli-services.h"
#include "store/store.h"

#define KS_PROG "botmatic-keys"
#define KS_LINK_TTL 600

static int
ks_fail_store(struct store *s, int rc, const char *what)
{
	if (rc == STORE_NOTFOUND)
		return 1;
	fprintf(stderr, KS_PROG ": %s: %s\n", what, store_strerror(s));
	return 2;
}

/* The installation must exist: a link for no one is refused. */
static int
ks_install_known(struct store *s, const char *id)
{
	struct store_install *in = NULL;
	int rc = store_install_get_by_id(s, id, &in);

	store_install_free(in);
	if (rc == STORE_NOTFOUND)
		fprintf(stderr, KS_PROG ": no installation %s\n", id);
	return rc;
}

static int
ks_link(struct store *s, int argc, char **argv)
{
	const char *pub = getenv("BM_PUBLIC_URL"), *ep = getenv("BM_ENDPOINT");
	char id[STORE_OAUTH_ID_LEN + 1];
	size_t pl, el;
	int rc;

	if (pub == NULL || *pub == '\0') {
		fprintf(stderr, KS_PROG ": service-link: BM_PUBLIC_URL is not "
		    "set (the server's)\n");
		return 2;
	}
	if (ep == NULL || *ep == '\0')
		ep = "/";
	if ((rc = ks_install_known(s, argv[0])) != STORE_OK)
		return ks_fail_store(s, rc, "service-link");
	rc = store_oauth_link_create(s, argv[0], argv[1], argc > 2 ? argv[2] :
	    "", argc > 3 ? argv[3] : "", (int64_t)time(NULL), KS_LINK_TTL, id);
	if (rc != STORE_OK)
		return ks_fail_store(s, rc, "service-link");
	pl = strlen(pub);
	while (pl > 0 && pub[pl - 1] == '/')
		pl--;
	el = strlen(ep);
	printf("%.*s%s%soauth/%s/start?l=%s\n", (int)pl, pub, ep,
	    ep[el - 1] == '/' ? "" : "/", argv[1], id);
	return fflush(stdout) == 0 ? 0 : 2;
}

static int
ks_list_one(void *arg, const struct store_service *sv)
{
	int show = *(int *)arg;
	json_t *o;
	char *line;

	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:b}", "install_id",
	    sv->install_id, "service", sv->service, "group", sv->group, "user",
	    sv->user, "scope", sv->scope, "created", (json_int_t)sv->created,
	    "updated", (json_int_t)sv->updated, "expires",
	    (json_int_t)sv->expires, "needs_link", sv->needs_link);
	if (o != NULL && show) {
		json_object_set_new(o, "access_token", json_string(sv->access));
		json_object_set_new(o, "refresh_token",
		    json_string(sv->refresh));
	}
	if (o == NULL || (line = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return -1;
	}
	puts(line);
	free(line);
	json_decref(o);
	return 0;
}

int
store_cli_services(struct store *s, const char *cmd, int argc, char **argv)
{
	size_t n = 0;
	int rc, show = 0;

	if (strcmp(cmd, "service-link") == 0) {
		if (argc < 2 || argc > 4) {
			fprintf(stderr, KS_PROG ": service-link INSTALL_ID SVC "
			    "[GROUP [USER]]\n");
			return 2;
		}
		return ks_link(s, argc, argv);
	}
	if (argc >= 1 && strcmp(argv[0], "revoke") == 0) {
		if (argc < 3 || argc > 5) {
			fprintf(stderr, KS_PROG ": services revoke INSTALL_ID "
			    "SVC [GROUP [USER]]\n");
			return 2;
		}
		rc = store_service_delete(s, argv[1], argv[2], argc > 3 ?
		    argv[3] : "", argc > 4 ? argv[4] : "");
		return rc == STORE_OK ? 0 : ks_fail_store(s, rc, "revoke");
	}
	if (argc >= 1 && strcmp(argv[0], "rotate-key") == 0) {
		if (argc != 2) {
			fprintf(stderr, KS_PROG ": services rotate-key "
			    "NEWFILE\n");
			return 2;
		}
		if ((rc = store_rekey(s, argv[1], &n)) != STORE_OK)
			return ks_fail_store(s, rc, "rotate-key");
		printf("%zu\n", n);
		fprintf(stderr, KS_PROG ": %zu secrets re-encrypted: set "
		    "BM_SECRET_KEY_FILE=%s before the server starts\n", n,
		    argv[1]);
		return fflush(stdout) == 0 ? 0 : 2;
	}
	if (argc == 2 && strcmp(argv[1], "--show-tokens") == 0)
		show = 1;
	else if (argc != 1) {
		fprintf(stderr, KS_PROG ": services INSTALL_ID "
		    "[--show-tokens]\n");
		return 2;
	}
	if ((rc = store_service_foreach(s, argv[0], ks_list_one, &show)) !=
	    STORE_OK)
		return rc > 0 ? 2 : ks_fail_store(s, rc, "services");
	return fflush(stdout) == 0 ? 0 : 2;
}
