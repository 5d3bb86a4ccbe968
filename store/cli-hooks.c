/*
 * store/cli-hooks.c - botmatic-keys hooks list|reconcile and secret set.
 * The reconcile itself calls the external service, which the store's
 * tool never does: it is queued as the job the server's delivery
 * processes run at install ("hooks_reconcile", one pending per
 * installation), so it works whether or not the server runs, is retried
 * on BM_RETRY_SCHEDULE when the service fails, and shows in the outbox.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "store/cli-hooks.h"
#include "store/store.h"

#define PROG "botmatic-keys"
/* What the server's events part names them (app/events/). */
#define HOOKS_STATE "bm:hooks"
#define HOOKS_KIND "hooks_reconcile"
#define EXTERNAL_STATE STORE_STATE_SECRET_EXTERNAL
/* Longest secret an external service may give, bytes. */
#define EXTERNAL_MAX 256

static int __attribute__((format(printf, 1, 2)))
hooks_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/* The installation of install_id into *in; the exit status on failure. */
static int
hooks_install(struct store *s, const char *cmd, const char *install_id,
    struct store_install **in)
{
	int rc = store_install_get_by_id(s, install_id, in);

	if (rc == STORE_NOTFOUND) {
		fprintf(stderr, PROG ": %s: no installation %s\n", cmd,
		    install_id);
		return 1;
	}
	if (rc != STORE_OK)
		return hooks_fail("%s: %s", cmd, store_strerror(s));
	return 0;
}

static int
hooks_list(struct store *s, const struct store_install *in)
{
	json_error_t je;
	json_t *st = NULL, *h;
	char *val = NULL;
	size_t len = 0, i;
	int rc;

	rc = store_state_get(s, in->token, HOOKS_STATE, &val, &len);
	if (rc == STORE_NOTFOUND)
		return 0;
	if (rc != STORE_OK)
		return hooks_fail("hooks list: %s", store_strerror(s));
	st = json_loadb(val, len, 0, &je);
	free(val);
	json_array_foreach(json_object_get(st, "hooks"), i, h) {
		char *line = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (line != NULL)
			puts(line);
		free(line);
	}
	json_decref(st);
	return fflush(stdout) == 0 ? 0 : hooks_fail("stdout: write failed");
}

static int
hooks_reconcile(struct store *s, const struct store_install *in)
{
	struct store_job_spec sp;
	struct timespec ts;
	uint64_t id = 0;
	unsigned flags = 0;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&sp, 0, sizeof(sp));
	sp.integ = in->token;
	sp.kind = HOOKS_KIND;
	sp.contact = "hooks";
	sp.payload = "{}";
	sp.now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	sp.unique = 1;
	if ((rc = store_job_add(s, &sp, &id, &flags)) != STORE_OK)
		return hooks_fail("hooks reconcile: %s", store_strerror(s));
	printf("{\"queued\":true,\"job\":%llu%s}\n", (unsigned long long)id,
	    (flags & STORE_JOB_EXISTED) ? ",\"existed\":true" : "");
	return fflush(stdout) == 0 ? 0 : hooks_fail("stdout: write failed");
}

int
store_cli_hooks(struct store *s, int argc, char **argv)
{
	struct store_install *in = NULL;
	int ret;

	if (argc != 2 || (strcmp(argv[0], "list") != 0 &&
	    strcmp(argv[0], "reconcile") != 0))
		return hooks_fail("hooks: expected list INSTALL_ID or reconcile "
		    "INSTALL_ID");
	if ((ret = hooks_install(s, "hooks", argv[1], &in)) != 0)
		return ret;
	ret = strcmp(argv[0], "list") == 0 ? hooks_list(s, in) :
	    hooks_reconcile(s, in);
	OPENSSL_cleanse(in->secret, sizeof(in->secret));
	store_install_free(in);
	return ret;
}

int
store_cli_secret_set(struct store *s, const char *install_id)
{
	struct store_install *in = NULL;
	char line[EXTERNAL_MAX + 2], *text = NULL;
	json_t *v = NULL;
	size_t n;
	int ret, rc;

	/* Exit 2 for an unknown install id, as secret show and rotate. */
	if ((ret = hooks_install(s, "secret set", install_id, &in)) != 0)
		return 2;
	ret = 2;
	if (fgets(line, sizeof(line), stdin) == NULL)
		line[0] = '\0';
	n = strcspn(line, "\r\n");
	if (line[n] == '\0' && n > EXTERNAL_MAX) {
		ret = hooks_fail("secret set: longer than %d bytes",
		    EXTERNAL_MAX);
		goto out;
	}
	line[n] = '\0';
	if (n == 0) {
		rc = store_state_delete(s, in->token, EXTERNAL_STATE);
		if (rc != STORE_OK && rc != STORE_NOTFOUND) {
			ret = hooks_fail("secret set: %s", store_strerror(s));
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (strspn(line, " \t") == n || strpbrk(line, "\x7f") != NULL) {
		ret = hooks_fail("secret set: not a secret");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20) {
			ret = hooks_fail("secret set: a control character");
			goto out;
		}
	if ((v = json_pack("{s:s, s:I}", "secret", line, "set",
	    (json_int_t)time(NULL))) == NULL ||
	    (text = json_dumps(v, JSON_COMPACT)) == NULL) {
		ret = hooks_fail("secret set: out of memory");
		goto out;
	}
	if ((rc = store_state_set(s, in->token, EXTERNAL_STATE, text,
	    strlen(text))) != STORE_OK) {
		ret = hooks_fail("secret set: %s", store_strerror(s));
		goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(line, sizeof(line));
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(v);
	OPENSSL_cleanse(in->secret, sizeof(in->secret));
	store_install_free(in);
	return ret;
}
